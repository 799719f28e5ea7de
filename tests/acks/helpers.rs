//! `spawn_app()`: the real daemon ([`TestApp`] of `tests/common`) with the shipped playbooks, roster
//! and templates, three staff tokens and a small emergency reduction list (four enterprises in
//! Taiyuan and Datong, seeded from CSV files in the documented format); plus what these tests do to
//! it: issuing warnings, assignments and acknowledgements, reading the outbox and the `.eml` files.

use std::path::Path;
use std::time::Duration;

use hazeflow::clock::Clock;
use hazeflow::config::Settings;
use hazeflow::notify::OutboxMessage;
use hazeflow::registry::Uscc;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;

pub use crate::common::*;

/// Taiyuan (太原市), governed by playbooks/taiyuan.yaml.
pub const TAIYUAN: &str = "140100";
/// 小店区, a county of Taiyuan with its own duty roster (weekdays 08:30–17:30).
pub const XIAODIAN: &str = "140105";
/// 迎泽区, a county of Taiyuan without a roster of its own.
pub const YINGZE: &str = "140106";

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

/// The settings of a test daemon living in `dir`: the test list as the seed, public links on
/// https://hazeflow.example.cn.
pub fn settings_in(dir: &Path) -> Settings {
    let mut s = base_settings(dir);
    s.http.public_url = "https://hazeflow.example.cn".into();
    let list = dir.join("list");
    write_list(&list);
    s.list_seed = Some(list);
    s.validate().expect("the test settings are valid");
    s
}

/// Starts the daemon in a fresh folder at a time of the Shanxi wall clock.
pub async fn spawn_app(at: &str) -> TestApp {
    spawn_in(TempDir::new().expect("a temporary folder"), Clock::manual(shanghai(at))).await
}

/// Starts the daemon in `dir` (fresh or left by an earlier run).
pub async fn spawn_in(dir: TempDir, clock: Clock) -> TestApp {
    let settings = settings_in(dir.path());
    TestApp::start(dir, clock, settings).await
}

impl TestApp {
    /// POST of a form (the acknowledgement page): status, `Location`, body.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> (StatusCode, Option<String>, String) {
        let resp = self
            .http()
            .post(self.url(path))
            .form(fields)
            .send()
            .await
            .expect("the daemon answers");
        let location = resp.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
        (resp.status(), location, resp.text().await.expect("a body"))
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
            .post_json(
                &format!("/api/v1/warnings/{id}/sign"),
                Some(token),
                &serde_json::json!({ "without_record": "本测试不涉及会商意见" }),
            )
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
            .read(|r| hazeflow::engine::assign::token_of_key(r, &tokens, assignment_key))
            .unwrap()
            .unwrap_or_else(|| panic!("no assignment {assignment_key}"))
    }

    /// The acknowledgement progress of a warning.
    pub async fn progress(&self, id: &str) -> Value {
        let (status, body) = self.get(&format!("/api/v1/warnings/{id}/acks"), Some(DUTY)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// The numbers of the lines the acknowledgement page at `token` asks to tick before 措施已落实
    /// (`1`, `2`, …), read from the page as a phone would get it.
    pub async fn lines_to_tick(&self, token: &str) -> Vec<String> {
        let (status, html) = self.get_text(&format!("/ack/{token}")).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        html.split("name=\"line\" value=\"")
            .skip(1)
            .filter_map(|s| s.split('"').next().map(str::to_string))
            .collect()
    }

    /// 收到 (if not yet given), then 措施已落实 over JSON with every line of the page ticked.
    pub async fn ack_in_place(&self, token: &str, name: &str, phone: &str) -> (StatusCode, Value) {
        let path = format!("/api/v1/acks/{token}");
        let (status, v) = self
            .post_json(&path, None, &json!({ "step": "received", "name": name, "phone": phone }))
            .await;
        if status != StatusCode::OK {
            return (status, v);
        }
        let lines = self.lines_to_tick(token).await;
        self.post_json(
            &format!("/api/v1/acks/{token}"),
            None,
            &json!({ "step": "in_place", "name": name, "phone": phone, "lines": lines }),
        )
        .await
    }

    /// Acknowledges every department assignment of a warning, both stages (so that tests follow the
    /// enterprises).
    pub async fn ack_departments(&self, id: &str) {
        for a in self
            .assignments(id, Some("active"))
            .await
            .iter()
            .filter(|a| a["party"]["type"] == "department")
        {
            let key = a["key"].as_str().expect("a key");
            let (status, body) = self.ack_in_place(&self.token(key), "部门值班", "0351-1234567").await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
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
}

/// Taiyuan above 200 for two days from tomorrow: orange.
pub fn orange_forecast(issued_at: &str, first: &str) -> String {
    forecast_csv(issued_at, SOURCE, TAIYUAN, first, &[120, 160, 230, 240, 180, 120, 100])
}

/// Taiyuan above 300 and above 200 for three days: red.
pub fn red_forecast(issued_at: &str, first: &str) -> String {
    forecast_csv(issued_at, SOURCE, TAIYUAN, first, &[260, 320, 280, 220, 150, 120, 100])
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
