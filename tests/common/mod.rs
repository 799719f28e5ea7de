//! What the daemon test binaries (`daemon`, `notify`, `acks`) share, included by each with
//! `#[path = "../common/mod.rs"] mod common;` and re-exported by its `helpers`: the real daemon
//! (`Application::build` + `run_until_stopped`) on port 0 in a temporary folder with a manual clock
//! ([`TestApp::start`]), the settings every test daemon starts from ([`base_settings`]), three staff
//! tokens, HTTP calls with or without a token, forecasts, the Shanxi wall clock and [`eventually`].
//! What only one binary needs stays in its own `helpers.rs`.

// Each binary uses a different part of this module.
#![allow(dead_code)]

pub mod pg;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use hazeflow::app::Application;
use hazeflow::clock::Clock;
use hazeflow::config::{self, Settings, StaffToken};
use hazeflow::notify::OutboxMessage;
use hazeflow::web::AppState;
use reqwest::StatusCode;
use serde_json::Value;
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The shipped playbooks folder (with `templates/`).
pub const PLAYBOOKS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks");
/// The shipped duty roster.
pub const ROSTER_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/roster.yaml");
/// The shipped measure defaults.
pub const MEASURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/measures/shanxi.yaml");

/// A deputy head (分管副市长): may sign yellow and orange.
pub const DEPUTY: &str = "token-of-the-deputy-head";
/// Their name, as it appears in the history.
pub const DEPUTY_NAME: &str = "李副市长";
/// A head (市长): may sign every level.
pub const HEAD: &str = "token-of-the-head";
/// Their name.
pub const HEAD_NAME: &str = "王市长";
/// A duty officer (值班员): may sign nothing that needs sign-off; records inspections.
pub const DUTY: &str = "token-of-the-duty-officer";
/// Their name.
pub const DUTY_NAME: &str = "值班员小张";

/// Who issues the forecasts of the tests.
pub const SOURCE: &str = "省生态环境监测和应急保障中心";

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

/// The manual clock most timelines start on: Tuesday 2026-12-01 15:00 in Taiyuan, an hour before the
/// afternoon consultation, the day shift on duty.
pub fn clock() -> Clock {
    Clock::manual(shanghai("2026-12-01 15:00"))
}

/// A forecast CSV for one region: daily AQI from `first` on.
pub fn forecast_csv(issued_at: &str, source: &str, region: &str, first: &str, aqi: &[u32]) -> String {
    let first = NaiveDate::parse_from_str(first, "%Y-%m-%d").expect("a date");
    let mut out = format!("# issued_at: {issued_at}\n# source: {source}\nregion,date,aqi\n");
    for (i, v) in aqi.iter().enumerate() {
        out.push_str(&format!("{region},{},{v}\n", first + chrono::Duration::days(i as i64)));
    }
    out
}

/// Copies a folder with everything in it (a playbooks folder with its templates).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("the target folder");
    for entry in std::fs::read_dir(from).expect("the source folder").map(|e| e.expect("an entry")) {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("a copy");
        }
    }
}

/// A free port on localhost (nothing listens on it when this returns).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The settings every test daemon living in `dir` starts from: the embedded default with its data
/// and inbox in `dir`, port 0, a fast inbox poll, the shipped playbooks, roster and measure defaults,
/// no list, no demo, and the three staff tokens. Not yet validated: each binary adds its own.
pub fn base_settings(dir: &Path) -> Settings {
    let mut s = Settings::parse("config/default.yaml", config::DEFAULT_YAML).expect("the embedded default parses");
    s.data_dir = dir.join("data");
    s.inbox.dir = dir.join("inbox");
    s.inbox.poll_ms = 20;
    s.http.listen = "127.0.0.1:0".into();
    s.playbooks = PathBuf::from(PLAYBOOKS);
    s.roster = PathBuf::from(ROSTER_FILE);
    s.measures = PathBuf::from(MEASURES);
    s.list_seed = None;
    s.demo = false;
    s.shutdown_deadline_secs = 5;
    for (name, role, token) in [
        (DEPUTY_NAME, "deputy_head", DEPUTY),
        (HEAD_NAME, "head", HEAD),
        (DUTY_NAME, "duty_officer", DUTY),
    ] {
        s.staff.tokens.push(StaffToken {
            name: name.into(),
            role: role.into(),
            sha256: config::hash_token(token),
        });
    }
    s
}

/// A running daemon and what a test needs to talk to it.
pub struct TestApp {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its shared state (engine, store, settings).
    pub state: Arc<AppState>,
    /// The clock it runs on.
    pub clock: Clock,
    /// Its folder (data, inbox).
    pub dir: TempDir,
    /// Stops it.
    pub shutdown: CancellationToken,
    /// Its run loop.
    pub handle: JoinHandle<anyhow::Result<()>>,
    http: reqwest::Client,
    /// The PostgreSQL cluster it keeps its store in (`HAZEFLOW_TEST_STORE=postgres`), in its folder.
    pg: Option<pg::PgCluster>,
}

/// Whether the test daemons keep their store in PostgreSQL (`HAZEFLOW_TEST_STORE=postgres`: the suite
/// run again against the other backend; each daemon gets a cluster in its own folder).
pub fn on_postgres() -> bool {
    std::env::var("HAZEFLOW_TEST_STORE").is_ok_and(|v| v == "postgres")
}

impl TestApp {
    /// Builds the daemon with `settings` and runs it until [`TestApp::stop`]. The HTTP client does
    /// not follow redirects (a test sees the `Location` it is sent to).
    pub async fn start(dir: TempDir, clock: Clock, mut settings: Settings) -> TestApp {
        let pg = (on_postgres() && settings.store.url.is_none()).then(|| {
            let cluster = pg::PgCluster::start_in(&dir.path().join("pg"));
            settings.store.url = Some(cluster.url("postgres"));
            cluster
        });
        let app = Application::build(settings, clock.clone()).await.expect("the daemon builds");
        let addr = SocketAddr::from(([127, 0, 0, 1], app.port()));
        let state = app.state();
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(app.run_until_stopped(shutdown.clone()));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client");
        TestApp {
            addr,
            state,
            clock,
            dir,
            shutdown,
            handle,
            http,
            pg,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address of a path.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The HTTP client (no redirects followed).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `word/document.xml` of the Word file at `path`, fetched with `token` as a user downloads it (200).
    pub async fn docx_xml(&self, path: &str, token: &str) -> String {
        let resp = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("the daemon answers");
        assert_eq!(resp.status(), reqwest::StatusCode::OK, "{path}");
        document_xml(&resp.bytes().await.expect("a body"))
    }

    /// Sends a request: status and JSON body (a string when the body is not JSON).
    pub async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
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

    /// GET with a staff token (or none): status and JSON body.
    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        Self::send(Self::auth(self.http.get(self.url(path)), token)).await
    }

    /// GET without a token of a page or plain text (`/metrics`, `/ack/…`): status and text.
    pub async fn get_text(&self, path: &str) -> (StatusCode, String) {
        let resp = self.http.get(self.url(path)).send().await.expect("the daemon answers");
        (resp.status(), resp.text().await.expect("a body"))
    }

    /// POST of a JSON body.
    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
        Self::send(Self::auth(self.http.post(self.url(path)).json(body), token)).await
    }

    /// POST of raw bytes (a forecast file, a broken body).
    pub async fn post_body(&self, path: &str, token: Option<&str>, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
        Self::send(Self::auth(self.http.post(self.url(path)).body(body), token)).await
    }

    /// POST with no body.
    pub async fn post(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        Self::send(Self::auth(self.http.post(self.url(path)), token)).await
    }

    /// Moves the clock to a time in Asia/Shanghai.
    pub fn set_clock(&self, to: &str) {
        self.clock.set(shanghai(to));
    }

    /// `GET /api/v1/warnings` (as the head): the current warning per region.
    pub async fn warnings(&self) -> Vec<Value> {
        let (status, body) = self.get("/api/v1/warnings", Some(HEAD)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["warnings"].as_array().cloned().unwrap_or_default()
    }

    /// The current warning of one region, if it has one.
    pub async fn warning_of(&self, region: &str) -> Option<Value> {
        self.warnings().await.into_iter().find(|w| w["region"] == region)
    }

    /// Every message in the outbox.
    pub fn outbox(&self) -> Vec<OutboxMessage> {
        self.state
            .engine
            .store
            .read(hazeflow::notify::outbox::all_messages)
            .expect("the outbox reads")
    }

    /// The records of a kind in the event log (`playbooks_reloaded`, or an `Other` kind such as
    /// `notify_reloaded`), as JSON.
    pub fn records(&self, kind: &str) -> Vec<Value> {
        self.state
            .engine
            .store
            .read(|r| r.events_after(0, usize::MAX))
            .expect("the log reads")
            .into_iter()
            .filter(|r| r.body.kind() == kind)
            .map(|r| serde_json::to_value(&r).expect("JSON"))
            .collect()
    }

    /// Stops the daemon as SIGTERM would, checks that it stopped cleanly and that its views agree
    /// with its event log, and hands back its folder.
    pub async fn stop(self) -> TempDir {
        let diffs = self.state.engine.store.read(|r| r.verify_views()).expect("the store reads");
        assert!(diffs.is_empty(), "the views differ from the log: {diffs:?}");
        self.shutdown.cancel();
        let result = tokio::time::timeout(Duration::from_secs(15), self.handle)
            .await
            .expect("the daemon stops within its deadline");
        result.expect("the run loop did not panic").expect("the daemon stopped cleanly");
        drop(self.state);
        drop(self.pg);
        self.dir
    }
}

/// Polls `probe` until it gives `Some`, and returns that; panics naming `what` when it takes longer
/// than the test's patience.
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
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The CAP 1.2 schema from OASIS.
pub const CAP_XSD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/CAP-v1.2.xsd");

/// Validates a CAP document against the OASIS schema with xmllint. Without xmllint: skipped with a
/// note on a developer's machine, a failure in CI.
pub fn validate_cap(dir: &Path, id: &str, xml: &str) {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    if std::process::Command::new("xmllint").arg("--version").output().is_err() {
        assert!(!ci, "xmllint is required in CI (Debian package libxml2-utils)");
        eprintln!("SKIPPED: CAP schema validation of {id}: xmllint is not installed (apt-get install libxml2-utils)");
        return;
    }
    let file = dir.join(format!("{id}.xml"));
    std::fs::write(&file, xml).expect("the CAP file is written");
    let out = std::process::Command::new("xmllint")
        .args(["--noout", "--schema", CAP_XSD])
        .arg(&file)
        .output()
        .expect("xmllint runs");
    assert!(
        out.status.success(),
        "{id} does not validate against CAP 1.2:\n{}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `GET /healthz` of a daemon on `port`: (role, term), or nothing while it does not answer (any
/// status: a 503 still says the role).
pub async fn role_of(http: &reqwest::Client, port: u16) -> Option<(String, u64)> {
    role_at(http, &format!("127.0.0.1:{port}")).await
}

/// As [`role_of`], for a daemon listening at `addr` (`host:port`).
pub async fn role_at(http: &reqwest::Client, addr: &str) -> Option<(String, u64)> {
    let body: Value = http.get(format!("http://{addr}/healthz")).send().await.ok()?.json().await.ok()?;
    Some((body["role"].as_str()?.to_string(), body["term"].as_u64()?))
}

/// The value of cookie `name` set by a response.
fn cookie(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.split(';')
                .next()?
                .trim()
                .strip_prefix(name)?
                .strip_prefix('=')
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

/// Logs in to the dashboard as a browser would; returns the session's `Cookie` header.
pub async fn login(app: &TestApp, token: &str) -> String {
    let r = app.http().get(app.url("/login")).send().await.expect("the daemon answers");
    let nonce = cookie(&r, "hazeflow_login");
    let html = r.text().await.expect("a page");
    let marker = "name=\"csrf\" value=\"";
    let csrf = html[html.find(marker).expect("a CSRF field") + marker.len()..]
        .split('"')
        .next()
        .expect("its value")
        .to_string();
    let r = app
        .http()
        .post(app.url("/login"))
        .header(reqwest::header::COOKIE, format!("hazeflow_login={nonce}"))
        .form(&[("token", token), ("csrf", csrf.as_str())])
        .send()
        .await
        .expect("the daemon answers");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    format!("hazeflow_session={}", cookie(&r, "hazeflow_session"))
}

/// A dashboard page with the session: status and HTML.
pub async fn page(app: &TestApp, path: &str, session: &str) -> (StatusCode, String) {
    let r = app
        .http()
        .get(app.url(path))
        .header(reqwest::header::COOKIE, session)
        .send()
        .await
        .expect("the daemon answers");
    // Attribute values come escaped (`&#x2f;` for `/`); read them as a browser does.
    (r.status(), r.text().await.expect("a page").replace("&#x2f;", "/"))
}

/// `word/document.xml` of a .docx, read with `unzip` as anyone checking the file would.
pub fn document_xml(bytes: &[u8]) -> String {
    use std::io::Write;
    let mut f = tempfile::NamedTempFile::new().expect("a temporary file");
    f.write_all(bytes).expect("written");
    let out = std::process::Command::new("unzip")
        .args(["-p", &f.path().display().to_string(), "word/document.xml"])
        .output()
        .expect("unzip runs");
    assert!(out.status.success(), "unzip: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8")
}
