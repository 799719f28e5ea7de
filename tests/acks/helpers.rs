//! `spawn_app()`: the real daemon on port 0 with a temporary folder, the shipped playbooks, roster and
//! templates, a manual clock, three staff tokens and a small emergency reduction list (five
//! enterprises in Taiyuan and Datong, seeded from CSV files in the documented format); plus what the
//! tests do to it: HTTP calls, issuing a warning, reading the outbox and the `.eml` files.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use hazeflow::app::{AppState, Application};
use hazeflow::clock::Clock;
use hazeflow::config::{self, Settings, StaffToken};
use hazeflow::notify::OutboxMessage;
use hazeflow::registry::Uscc;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The shipped playbooks folder.
pub const PLAYBOOKS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks");

/// A deputy head (分管副市长): signs yellow and orange.
pub const DEPUTY: &str = "token-of-the-deputy-head";
/// A head (市长): signs every level.
pub const HEAD: &str = "token-of-the-head";
/// A duty officer, who also records inspections.
pub const DUTY: &str = "token-of-the-duty-officer";
/// The duty officer's name, as recorded.
pub const DUTY_NAME: &str = "值班员小张";

/// Taiyuan (太原市), governed by playbooks/taiyuan.yaml.
pub const TAIYUAN: &str = "140100";
/// 小店区, a county of Taiyuan with its own duty roster (weekdays 08:30–17:30).
pub const XIAODIAN: &str = "140105";
/// 迎泽区, a county of Taiyuan without a roster of its own.
pub const YINGZE: &str = "140106";

const PATIENCE: Duration = Duration::from_secs(20);

/// An enterprise of the test list.
pub struct Firm {
    /// Its credit code.
    pub uscc: String,
    /// Its name.
    pub name: &'static str,
    /// Its county.
    pub county: &'static str,
    /// Its 责任人's email.
    pub email: &'static str,
}

fn uscc(county: &str, org: &str) -> String {
    Uscc::from_parts("91", county, org)
        .expect("a valid credit code")
        .as_str()
        .to_string()
}

/// 太原市晋阳水泥有限公司, cement, grade B, 小店区: orange → 限产20% and no old trucks.
pub fn cement() -> Firm {
    Firm {
        uscc: uscc(XIAODIAN, "MA0K3T7W"),
        name: "太原市晋阳水泥有限公司",
        county: XIAODIAN,
        email: "wang.jianguo@jinyang-cement.example.cn",
    }
}

/// A chemical works in 小店区 whose registered name carries markup, ungraded: orange → 限产50%.
pub fn scripted() -> Firm {
    Firm {
        uscc: uscc(XIAODIAN, "MA0K4R2X"),
        name: "<script>alert(1)</script>小店化工有限公司",
        county: XIAODIAN,
        email: "li.ming@xiaodian-chem.example.cn",
    }
}

/// 太原市迎泽焦化有限公司, coking, grade B, 迎泽区, with its own measure at orange on line 2#焦炉.
pub fn coking() -> Firm {
    Firm {
        uscc: uscc(YINGZE, "MA0K5P8Q"),
        name: "太原市迎泽焦化有限公司",
        county: YINGZE,
        email: "zhao.lei@yingze-coke.example.cn",
    }
}

/// A Datong foundry (大同市新荣区): outside Taiyuan, never assigned by a Taiyuan warning.
pub fn datong() -> Firm {
    Firm {
        uscc: uscc("140212", "MA0K6N3M"),
        name: "大同市新荣铸造有限公司",
        county: "140212",
        email: "sun.hao@xinrong-foundry.example.cn",
    }
}

/// The seed folder: `enterprises.csv`, `measures.csv` (formats in `hazeflow::registry` docs) and
/// `whole_society_emissions.csv`.
pub fn write_list(dir: &Path) {
    std::fs::create_dir_all(dir).expect("the list folder");
    let (c, s, k, d) = (cement(), scripted(), coking(), datong());
    let enterprises = format!(
        "# test list\nuscc,name,county,industry_code,key_industry,grade,so2,nox,pm,vocs,contact_name,contact_email,contact_phone\n\
         {},{},{},3011,cement,B,2.0,4.0,1.0,0.5,王建国,{},13800000001\n\
         {},{},{},2614,,,0.4,0.6,0.2,1.0,李明,{},13800000002\n\
         {},{},{},2521,coking,B,1.0,2.0,0.8,0.6,赵磊,{},13800000003\n\
         {},{},{},3391,,,0.3,0.3,0.3,0.1,孙浩,{},13800000004\n",
        c.uscc,
        c.name,
        c.county,
        c.email,
        s.uscc,
        s.name,
        s.county,
        s.email,
        k.uscc,
        k.name,
        k.county,
        k.email,
        d.uscc,
        d.name,
        d.county,
        d.email,
    );
    let measures = format!(
        "uscc,record,line,name,capacity,unit,level,measure,value,process,so2,nox,pm,vocs,note\n\
         {k},line,L2,2#焦炉,3000,t/d,,,,,,,,,\n\
         {k},measure,L2,,,,orange,extend_coking_hours,48,,0.4,0.4,0.4,0.4,延长出焦时间\n",
        k = k.uscc
    );
    std::fs::write(dir.join("enterprises.csv"), enterprises).expect("enterprises.csv");
    std::fs::write(dir.join("measures.csv"), measures).expect("measures.csv");
    std::fs::write(
        dir.join("whole_society_emissions.csv"),
        "region,so2,nox,pm,vocs\n140100,10,20,10,20\n",
    )
    .expect("emissions");
}

/// A time on the wall clocks of Shanxi: `"2026-12-02 08:00"`.
pub fn shanghai(s: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap_or_else(|e| panic!("{s}: {e}"));
    Shanghai
        .from_local_datetime(&naive)
        .single()
        .expect("an unambiguous local time")
        .with_timezone(&Utc)
}

/// A forecast CSV for one region: daily AQI from `first` on.
pub fn forecast_csv(issued_at: &str, region: &str, first: &str, aqi: &[u32]) -> String {
    let first = NaiveDate::parse_from_str(first, "%Y-%m-%d").expect("a date");
    let mut out = format!("# issued_at: {issued_at}\n# source: 省生态环境监测和应急保障中心\nregion,date,aqi\n");
    for (i, v) in aqi.iter().enumerate() {
        out.push_str(&format!("{region},{},{v}\n", first + chrono::Duration::days(i as i64)));
    }
    out
}

/// The settings of a test daemon living in `dir`.
pub fn settings_in(dir: &Path) -> Settings {
    let mut s = Settings::parse("config/default.yaml", config::DEFAULT_YAML).expect("the embedded default parses");
    s.data_dir = dir.join("data");
    s.inbox.dir = dir.join("inbox");
    s.inbox.poll_ms = 50;
    s.http.listen = "127.0.0.1:0".into();
    s.http.public_url = "https://hazeflow.example.cn".into();
    s.playbooks = PathBuf::from(PLAYBOOKS);
    s.roster = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/config/roster.yaml"));
    s.measures = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/measures/shanxi.yaml"));
    let list = dir.join("list");
    write_list(&list);
    s.list_seed = Some(list);
    s.demo = false;
    s.shutdown_deadline_secs = 5;
    for (name, role, token) in [
        ("李副市长", "deputy_head", DEPUTY),
        ("王市长", "head", HEAD),
        (DUTY_NAME, "duty_officer", DUTY),
    ] {
        s.staff.tokens.push(StaffToken {
            name: name.into(),
            role: role.into(),
            sha256: config::hash_token(token),
        });
    }
    s.validate().expect("the test settings are valid");
    s
}

/// A running daemon.
pub struct TestApp {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its shared state.
    pub state: Arc<AppState>,
    /// Its clock.
    pub clock: Clock,
    /// Its folder.
    pub dir: TempDir,
    shutdown: CancellationToken,
    handle: JoinHandle<anyhow::Result<()>>,
    http: reqwest::Client,
}

/// Starts the daemon in a fresh folder at a time of the Shanxi wall clock.
pub async fn spawn_app(at: &str) -> TestApp {
    spawn_in(TempDir::new().expect("a temporary folder"), Clock::manual(shanghai(at))).await
}

/// Starts the daemon in `dir` (fresh or left by an earlier run).
pub async fn spawn_in(dir: TempDir, clock: Clock) -> TestApp {
    let settings = settings_in(dir.path());
    let app = Application::build(settings, clock.clone()).await.expect("the daemon builds");
    let addr = SocketAddr::from(([127, 0, 0, 1], app.port()));
    let state = app.state();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    TestApp {
        addr,
        state,
        clock,
        dir,
        shutdown,
        handle,
        http,
    }
}

impl TestApp {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let resp = req.send().await.expect("the daemon answers");
        let status = resp.status();
        let text = resp.text().await.expect("a body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    fn auth(req: reqwest::RequestBuilder, token: Option<&str>) -> reqwest::RequestBuilder {
        match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// GET with a staff token or none.
    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        Self::send(Self::auth(self.http.get(self.url(path)), token)).await
    }

    /// GET of a page: status and text.
    pub async fn page(&self, path: &str) -> (StatusCode, String) {
        let resp = self.http.get(self.url(path)).send().await.expect("the daemon answers");
        (resp.status(), resp.text().await.expect("a body"))
    }

    /// POST of a form (the acknowledgement page): status, `Location`, body.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> (StatusCode, Option<String>, String) {
        let resp = self
            .http
            .post(self.url(path))
            .form(fields)
            .send()
            .await
            .expect("the daemon answers");
        let location = resp.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
        (resp.status(), location, resp.text().await.expect("a body"))
    }

    /// POST of JSON with a staff token or none.
    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
        Self::send(Self::auth(self.http.post(self.url(path)).json(body), token)).await
    }

    /// POST of raw bytes.
    pub async fn post_body(&self, path: &str, token: Option<&str>, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
        Self::send(Self::auth(self.http.post(self.url(path)).body(body), token)).await
    }

    /// Moves the clock to a Shanxi wall-clock time.
    pub fn set_clock(&self, to: &str) {
        self.clock.set(shanghai(to));
    }

    /// The current warning of a region.
    pub async fn warning_of(&self, region: &str) -> Option<Value> {
        let (status, body) = self.get("/api/v1/warnings", Some(HEAD)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["warnings"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .find(|w| w["region"] == region)
    }

    /// Submits a forecast and waits for the consultation to propose `level`; returns the warning id.
    pub async fn propose(&self, region: &str, csv: &str, level: &str) -> String {
        let (status, body) = self.post_body("/api/v1/forecasts", Some(HEAD), csv.to_string()).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let w = eventually(&format!("a {level} proposal for {region}"), || async {
            self.warning_of(region)
                .await
                .filter(|w| w["level"] == level && w["status"] == "pending" || w["pending_change"]["level"] == level)
        })
        .await;
        w["id"].as_str().expect("an id").to_string()
    }

    /// Signs a warning with a token.
    pub async fn sign(&self, id: &str, token: &str) {
        let (status, body) = self
            .post_json(&format!("/api/v1/warnings/{id}/sign"), Some(token), &json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// Every assignment of a warning (`status` = active, superseded, ended, or all).
    pub async fn assignments(&self, id: &str, status: Option<&str>) -> Vec<Value> {
        let q = status.map(|s| format!("&status={s}")).unwrap_or_default();
        let (code, body) = self
            .get(&format!("/api/v1/warnings/{id}/assignments?limit=1000{q}"), Some(DUTY))
            .await;
        assert_eq!(code, StatusCode::OK, "{body}");
        body["assignments"].as_array().cloned().unwrap_or_default()
    }

    /// The enterprise assignment of a USCC among `list`.
    pub fn of(list: &[Value], uscc: &str) -> Value {
        list.iter()
            .find(|a| a["party"]["uscc"] == uscc)
            .cloned()
            .unwrap_or_else(|| panic!("no assignment of {uscc} in {list:#?}"))
    }

    /// The acknowledgement token of an assignment, as its notice carries it.
    pub fn token(&self, assignment_key: &str) -> String {
        let tokens = self.state.tokens.clone();
        self.state
            .engine
            .store
            .read(|r| hazeflow::assign::token_of_key(r, &tokens, assignment_key))
            .unwrap()
            .unwrap_or_else(|| panic!("no assignment {assignment_key}"))
    }

    /// The acknowledgement progress of a warning.
    pub async fn progress(&self, id: &str) -> Value {
        let (status, body) = self.get(&format!("/api/v1/warnings/{id}/acks"), Some(DUTY)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Acknowledges every department assignment of a warning (so that tests follow the enterprises).
    pub async fn ack_departments(&self, id: &str) {
        for a in self
            .assignments(id, Some("active"))
            .await
            .iter()
            .filter(|a| a["party"]["type"] == "department")
        {
            let key = a["key"].as_str().expect("a key");
            let (status, body) = self
                .post_json(
                    &format!("/api/v1/acks/{}", self.token(key)),
                    None,
                    &json!({ "step": "received", "name": "部门值班", "phone": "0351-1234567" }),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }

    /// Every message in the outbox.
    pub fn outbox(&self) -> Vec<OutboxMessage> {
        self.state
            .engine
            .store
            .read(hazeflow::notify::outbox::all_messages)
            .expect("the outbox reads")
    }

    /// Messages of one template, as (recipient key, message).
    pub fn sent(&self, template: &str) -> Vec<OutboxMessage> {
        self.outbox().into_iter().filter(|m| m.template == template).collect()
    }

    /// Waits until `n` messages of a template are in the outbox, and a moment more to see that no
    /// more follow; returns them.
    pub async fn wait_sent(&self, template: &str, n: usize) -> Vec<OutboxMessage> {
        eventually(&format!("{n} {template} messages"), || async {
            (self.sent(template).len() >= n).then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        let got = self.sent(template);
        assert_eq!(
            got.len(),
            n,
            "exactly {n} {template} messages: {:#?}",
            got.iter().map(|m| (&m.id, &m.recipient.key)).collect::<Vec<_>>()
        );
        got
    }

    /// The delivered `.eml` file of a message, parsed: (subject, text body).
    pub async fn delivered(&self, id: &str) -> (String, String) {
        let path = self
            .state
            .settings
            .mail
            .dir_in(&self.state.settings.data_dir)
            .join(format!("{id}.eml"));
        let bytes = eventually(&format!("{} is delivered", path.display()), || async { std::fs::read(&path).ok() }).await;
        let m = mail_parser::MessageParser::default().parse(&bytes).expect("a parsable message");
        (
            m.subject().unwrap_or_default().to_string(),
            m.body_text(0).map(|t| t.to_string()).unwrap_or_default(),
        )
    }

    /// The records of a kind in the event log.
    pub fn records(&self, kind: &str) -> Vec<Value> {
        let all = self
            .state
            .engine
            .store
            .read(|r| r.events_after(0, usize::MAX))
            .expect("the log reads");
        all.into_iter()
            .filter(|r| r.body.kind() == kind)
            .map(|r| serde_json::to_value(&r).expect("json"))
            .collect()
    }

    /// Stops the daemon as SIGTERM would and hands back its folder.
    pub async fn stop(self) -> (TempDir, Clock) {
        self.shutdown.cancel();
        let r = tokio::time::timeout(Duration::from_secs(10), self.handle)
            .await
            .expect("the daemon stops in time");
        r.expect("no panic").expect("a clean stop");
        drop(self.state);
        (self.dir, self.clock)
    }
}

/// Polls `probe` until it gives `Some`.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < until, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Taiyuan above 200 for two days from tomorrow: orange.
pub fn orange_forecast(issued_at: &str, first: &str) -> String {
    forecast_csv(issued_at, TAIYUAN, first, &[120, 160, 230, 240, 180, 120, 100])
}

/// Taiyuan above 300 and above 200 for three days: red.
pub fn red_forecast(issued_at: &str, first: &str) -> String {
    forecast_csv(issued_at, TAIYUAN, first, &[260, 320, 280, 220, 150, 120, 100])
}

/// An orange warning for Taiyuan issued at 08:05 on Wednesday 2026-12-02 (its deadline 12:05); the
/// daemon started at 08:00. Returns the daemon and the warning id.
pub async fn orange_issued_wednesday_morning() -> (TestApp, String) {
    let app = spawn_app("2026-12-02 08:00").await;
    let id = app
        .propose(TAIYUAN, &orange_forecast("2026-12-02 07:30", "2026-12-02"), "orange")
        .await;
    app.set_clock("2026-12-02 08:05");
    app.sign(&id, DEPUTY).await;
    (app, id)
}
