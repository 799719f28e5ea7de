//! `spawn_app()`: the real daemon on port 0 with a temporary folder, the shipped playbooks, a manual
//! clock and staff tokens; forecasts over the JSON API; and a cookie-carrying plain-HTTP "browser"
//! for the tests that need none.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use hazeflow::app::Application;
use hazeflow::clock::Clock;
use hazeflow::config::{self, Settings, StaffToken};
use hazeflow::web::AppState;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, HeaderMap, LOCATION, SET_COOKIE};
use serde_json::Value;
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The shipped playbooks folder (with the dashboard templates under `templates/dashboard/`).
pub const PLAYBOOKS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks");

/// The head on duty (省长 / 市长): may sign every level.
pub const HEAD: &str = "token-of-the-head-on-duty";
/// Their name.
pub const HEAD_NAME: &str = "王省长";
/// A duty officer (值班员): may sign nothing that needs sign-off.
pub const DUTY: &str = "token-of-the-duty-officer";
/// Their name.
pub const DUTY_NAME: &str = "值班员小张";

/// Taiyuan (太原市), governed by playbooks/taiyuan.yaml.
pub const TAIYUAN: &str = "140100";
/// Jinzhong (晋中市), governed by playbooks/shanxi.yaml.
pub const JINZHONG: &str = "140700";
/// Linfen (临汾市), governed by playbooks/shanxi.yaml.
pub const LINFEN: &str = "141000";

/// How long a test waits for the daemon to reach a state.
const PATIENCE: Duration = Duration::from_secs(20);

/// A time on the wall clocks of Shanxi: `"2026-12-01 15:00"` (Asia/Shanghai).
pub fn shanghai(s: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap_or_else(|e| panic!("{s}: {e}"));
    Shanghai
        .from_local_datetime(&naive)
        .single()
        .expect("an unambiguous local time")
        .with_timezone(&Utc)
}

/// 2026-12-01 15:00 in Taiyuan, an hour before the afternoon consultation.
pub fn clock() -> Clock {
    Clock::manual(shanghai("2026-12-01 15:00"))
}

/// The forecast of the afternoon of 2026-12-01: Taiyuan calls for orange (above 200 on two days),
/// Jinzhong for yellow (above 150 on two days), Linfen for red (above 200 for four days, above 300
/// on one).
pub fn three_city_forecast() -> String {
    let mut out = String::from("# issued_at: 2026-12-01 14:00\n# source: 省生态环境监测和应急保障中心\nregion,date,aqi\n");
    let series: [(&str, [u32; 7]); 3] = [
        (TAIYUAN, [120, 160, 230, 240, 180, 120, 100]),
        (JINZHONG, [120, 160, 170, 140, 120, 100, 90]),
        (LINFEN, [150, 260, 320, 280, 210, 140, 100]),
    ];
    for (region, aqi) in series {
        for (i, v) in aqi.iter().enumerate() {
            out.push_str(&format!("{region},2026-12-{:02},{v}\n", i + 1));
        }
    }
    out
}

/// A forecast of one region: seven days from 2026-12-01, issued at 14:00 that day.
pub fn forecast_of(region: &str, aqi: [u32; 7]) -> String {
    let mut out = String::from("# issued_at: 2026-12-01 14:00\n# source: 省生态环境监测和应急保障中心\nregion,date,aqi\n");
    for (i, v) in aqi.iter().enumerate() {
        out.push_str(&format!("{region},2026-12-{:02},{v}\n", i + 1));
    }
    out
}

/// A task notice the daemon mailed to an enterprise: an `.eml` file in the mail folder, parsed.
#[derive(Debug, Clone)]
pub struct Notice {
    /// The file's name.
    pub file: String,
    /// The recipient's address.
    pub to: String,
    /// The subject.
    pub subject: String,
    /// The enterprise, as the greeting names it.
    pub enterprise: String,
    /// The measures as listed, one per line (`1#生产线：限产50%（以用电量核定）`).
    pub measures: Vec<String>,
    /// The acknowledgement link as written in the mail.
    pub link: String,
}

/// A running daemon.
pub struct TestApp {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its shared state.
    pub state: Arc<AppState>,
    /// Its folder.
    _dir: TempDir,
    shutdown: CancellationToken,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    /// A client that does not follow redirects (tests look at them).
    pub http: reqwest::Client,
}

/// Starts the daemon in a fresh temporary folder with the head and the duty officer as staff, plus
/// whoever `extra` adds as `(name, role, token)`.
pub async fn spawn_app(extra: &[(&str, &str, &str)]) -> TestApp {
    let dir = TempDir::new().expect("a temporary folder");
    let mut s = Settings::parse("config/default.yaml", config::DEFAULT_YAML).expect("the embedded default parses");
    s.data_dir = dir.path().join("data");
    s.inbox.dir = dir.path().join("inbox");
    s.inbox.poll_ms = 20;
    s.http.listen = "127.0.0.1:0".into();
    s.playbooks = PathBuf::from(PLAYBOOKS);
    s.demo = false;
    s.shutdown_deadline_secs = 5;
    s.staff.tokens.clear();
    let staff = [(HEAD_NAME, "head", HEAD), (DUTY_NAME, "duty_officer", DUTY)];
    for (name, role, token) in staff.iter().chain(extra.iter()) {
        s.staff.tokens.push(StaffToken {
            name: (*name).into(),
            role: (*role).into(),
            sha256: config::hash_token(token),
        });
    }
    s.validate().expect("the test settings are valid");
    let app = Application::build(s, clock()).await.expect("the daemon builds");
    let addr = SocketAddr::from(([127, 0, 0, 1], app.port()));
    let state = app.state();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("an HTTP client");
    TestApp {
        addr,
        state,
        _dir: dir,
        shutdown,
        handle: Some(handle),
        http,
    }
}

impl TestApp {
    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// An absolute URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `POST /api/v1/forecasts` as the head; the daemon holds a consultation on it.
    pub async fn submit_forecast(&self, csv: &str) {
        let r = self
            .http
            .post(self.url("/api/v1/forecasts"))
            .bearer_auth(HEAD)
            .body(csv.to_string())
            .send()
            .await
            .expect("the daemon answers");
        let status = r.status();
        assert_eq!(status, StatusCode::CREATED, "{}", r.text().await.unwrap_or_default());
    }

    /// `GET /api/v1/warnings` as the head.
    pub async fn warnings(&self) -> Vec<Value> {
        let r = self
            .http
            .get(self.url("/api/v1/warnings"))
            .bearer_auth(HEAD)
            .send()
            .await
            .expect("the daemon answers");
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.expect("JSON");
        body["warnings"].as_array().cloned().unwrap_or_default()
    }

    /// The current warning of a region, if any.
    pub async fn warning_of(&self, region: &str) -> Option<Value> {
        self.warnings().await.into_iter().find(|w| w["region"] == region)
    }

    /// Waits until every region named has a warning pending sign-off; returns their ids in order.
    pub async fn pending(&self, regions: &[&str]) -> Vec<String> {
        let until = Instant::now() + PATIENCE;
        loop {
            let ws = self.warnings().await;
            let ids: Vec<Option<String>> = regions
                .iter()
                .map(|r| {
                    ws.iter()
                        .find(|w| w["region"] == *r && w["status"] == "pending")
                        .and_then(|w| w["id"].as_str().map(str::to_string))
                })
                .collect();
            if ids.iter().all(Option::is_some) {
                return ids.into_iter().flatten().collect();
            }
            assert!(Instant::now() < until, "timed out waiting for proposals in {regions:?}: {ws:?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Completes a minimal 会商意见 of the consultation that proposed warning `id` (every proposal
    /// accepted) over the API, as the head: Shanxi's playbooks sign a consultation's proposal only
    /// once its record is completed (`record_before_sign`).
    pub async fn complete_record(&self, id: &str) -> u64 {
        let forms = self.api(&format!("/api/v1/approvals?warning={id}")).await;
        let seq = forms["approvals"]
            .as_array()
            .into_iter()
            .flatten()
            .rev()
            .find_map(|f| f["form"]["consultation"].as_u64())
            .unwrap_or_else(|| panic!("a consultation proposed {id}: {forms}"));
        let r = self
            .http
            .post(self.url(&format!("/api/v1/consultations/{seq}/opinion")))
            .bearer_auth(HEAD)
            .json(&serde_json::json!({
                "units": [{ "name": "省生态环境监测和应急保障中心", "people": ["张明"] }],
                "weather": "静稳天气，扩散条件差", "trend": "污染持续", "primary_pollutant": "PM2.5"
            }))
            .send()
            .await
            .expect("the daemon answers");
        let status = r.status();
        assert_eq!(status, StatusCode::CREATED, "{}", r.text().await.unwrap_or_default());
        seq
    }

    /// `POST /api/v1/warnings/{id}/sign` as the head.
    pub async fn sign(&self, id: &str) {
        let r = self
            .http
            .post(self.url(&format!("/api/v1/warnings/{id}/sign")))
            .bearer_auth(HEAD)
            .json(&serde_json::json!({ "without_record": "本测试不涉及会商意见" }))
            .send()
            .await
            .expect("the daemon answers");
        let status = r.status();
        assert_eq!(status, StatusCode::OK, "{}", r.text().await.unwrap_or_default());
    }

    /// `GET` a JSON API path as the duty officer.
    pub async fn api(&self, path: &str) -> Value {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(DUTY)
            .send()
            .await
            .expect("the daemon answers");
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        r.json().await.expect("JSON")
    }

    /// The task notices mailed to enterprises whose subject contains `subject`, sorted by file name,
    /// once they have all been written (the count stays the same for half a second).
    pub async fn task_notices(&self, subject: &str) -> Vec<Notice> {
        let dir = self.state.settings.mail.dir_in(&self.state.settings.data_dir);
        let until = Instant::now() + PATIENCE;
        let mut seen = usize::MAX;
        loop {
            let mut found: Vec<Notice> = std::fs::read_dir(&dir)
                .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect::<Vec<_>>())
                .unwrap_or_default()
                .into_iter()
                .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                .filter_map(|p| read_notice(&p))
                .filter(|n| n.subject.contains(subject))
                .collect();
            if !found.is_empty() && found.len() == seen {
                found.sort_by(|a, b| a.file.cmp(&b.file));
                return found;
            }
            seen = found.len();
            assert!(
                Instant::now() < until,
                "timed out waiting for task notices \"{subject}\" in {}",
                dir.display()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Logs in over plain HTTP as a browser would (nonce cookie + CSRF field); returns the `Cookie`
    /// header value of the session.
    pub async fn login(&self, token: &str) -> String {
        let (nonce, csrf) = self.login_form().await;
        let r = self
            .http
            .post(self.url("/login"))
            .header(COOKIE, format!("hazeflow_login={nonce}"))
            .form(&[("token", token), ("csrf", csrf.as_str())])
            .send()
            .await
            .expect("the daemon answers");
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "a good login redirects");
        assert_eq!(header(r.headers(), LOCATION), "/");
        let session = set_cookie(r.headers(), "hazeflow_session").expect("a session cookie");
        format!("hazeflow_session={}", session.value)
    }

    /// `GET /login`: the nonce cookie and the form's CSRF token.
    pub async fn login_form(&self) -> (String, String) {
        let r = self.http.get(self.url("/login")).send().await.expect("the daemon answers");
        assert_eq!(r.status(), StatusCode::OK);
        let nonce = set_cookie(r.headers(), "hazeflow_login").expect("a login nonce cookie").value;
        let html = r.text().await.expect("a page");
        (nonce, hidden_field(&html, "csrf").expect("a CSRF field on the login form"))
    }

    /// GET a page with a session cookie: status, headers, body.
    pub async fn page(&self, path: &str, cookie: Option<&str>) -> (StatusCode, HeaderMap, String) {
        let mut req = self.http.get(self.url(path));
        if let Some(c) = cookie {
            req = req.header(COOKIE, c);
        }
        let r = req.send().await.expect("the daemon answers");
        let (status, headers) = (r.status(), r.headers().clone());
        (status, headers, r.text().await.expect("a body"))
    }

    /// POST a form with a session cookie: status, headers, body.
    pub async fn post_form(&self, path: &str, cookie: Option<&str>, fields: &[(&str, &str)]) -> (StatusCode, HeaderMap, String) {
        let mut req = self.http.post(self.url(path)).form(fields);
        if let Some(c) = cookie {
            req = req.header(COOKIE, c);
        }
        let r = req.send().await.expect("the daemon answers");
        let (status, headers) = (r.status(), r.headers().clone());
        (status, headers, r.text().await.expect("a body"))
    }

    /// The number of records in the event log.
    pub fn last_seq(&self) -> u64 {
        self.state.engine.store.read(|r| r.last_seq()).expect("the store reads")
    }

    /// The kinds of the records after `seq` (other stages record things of their own in the
    /// background, so tests look for the kinds they care about).
    pub fn kinds_since(&self, seq: u64) -> Vec<String> {
        let records = self
            .state
            .engine
            .store
            .read(|r| r.events_after(seq, 10_000))
            .expect("the store reads");
        records.iter().map(|r| r.body.kind().to_string()).collect()
    }

    /// Stops the daemon and checks that it stopped cleanly.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            let result = tokio::time::timeout(Duration::from_secs(10), h)
                .await
                .expect("the daemon stops within its deadline");
            result.expect("the run loop did not panic").expect("the daemon stopped cleanly");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Parses a mailed task notice; `None` for other mail (no acknowledgement link).
fn read_notice(path: &std::path::Path) -> Option<Notice> {
    let bytes = std::fs::read(path).ok()?;
    let m = mail_parser::MessageParser::default().parse(&bytes)?;
    let text = m.body_text(0)?.to_string();
    let link = text.lines().map(str::trim).find(|l| l.contains("/ack/"))?.to_string();
    let enterprise = text.lines().next()?.split('（').next()?.trim().to_string();
    let measures = text
        .lines()
        .skip_while(|l| !l.starts_with("本单位应急减排措施"))
        .skip(1)
        .map(str::trim)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(". ").map(|(_, m)| m.to_string()))
        .collect();
    Some(Notice {
        file: path.file_name()?.to_string_lossy().into_owned(),
        to: m.to()?.first()?.address()?.to_string(),
        subject: m.subject()?.to_string(),
        enterprise,
        measures,
        link,
    })
}

/// A header as text ("" when absent).
pub fn header(h: &HeaderMap, name: reqwest::header::HeaderName) -> String {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

/// A cookie set by a response.
pub struct SetCookie {
    /// Its value.
    pub value: String,
    /// The attributes as written (`Path=/; HttpOnly; …`).
    pub attributes: String,
}

/// The `Set-Cookie` for `name`, if the response sets it.
pub fn set_cookie(h: &HeaderMap, name: &str) -> Option<SetCookie> {
    h.get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
        let (pair, attributes) = v.split_once(';').unwrap_or((v, ""));
        let value = pair.trim().strip_prefix(name)?.strip_prefix('=')?;
        Some(SetCookie {
            value: value.to_string(),
            attributes: attributes.trim().to_string(),
        })
    })
}

/// The value of the first hidden field `name` in a page.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    Some(html[start..].split('"').next()?.to_string())
}
