//! `spawn_app()`: the real daemon (`Application::build` + `run_until_stopped`) on port 0, a temporary
//! folder for its data and inbox, the shipped playbooks, a manual clock and three staff tokens; plus
//! what the tests do to it: HTTP calls with a token, files dropped into the inbox, waiting for a state.

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
use reqwest::StatusCode;
use serde_json::Value;
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The shipped playbooks folder.
pub const PLAYBOOKS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks");

/// A deputy head (分管副市长): may sign yellow and orange.
pub const DEPUTY: &str = "token-of-the-deputy-head";
/// Their name, as it appears in the history.
pub const DEPUTY_NAME: &str = "李副市长";
/// A head (市长): may sign every level.
pub const HEAD: &str = "token-of-the-head";
/// Their name.
pub const HEAD_NAME: &str = "王市长";
/// A duty officer (值班员): may sign nothing that needs sign-off.
pub const DUTY: &str = "token-of-the-duty-officer";
/// Their name.
pub const DUTY_NAME: &str = "值班员小张";

/// How long a test waits for the daemon to reach a state.
const PATIENCE: Duration = Duration::from_secs(15);

/// A time on the wall clocks of Shanxi: `"2026-12-01 15:00"` (Asia/Shanghai).
pub fn shanghai(s: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap_or_else(|e| panic!("{s}: {e}"));
    Shanghai
        .from_local_datetime(&naive)
        .single()
        .expect("an unambiguous local time")
        .with_timezone(&Utc)
}

/// The manual clock every timeline starts on: 2026-12-01 15:00 in Taiyuan, an hour before the
/// afternoon consultation.
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

/// The settings of a test daemon living in `dir`.
pub fn settings_in(dir: &Path) -> Settings {
    let mut s = Settings::parse("config/default.yaml", config::DEFAULT_YAML).expect("the embedded default parses");
    s.data_dir = dir.join("data");
    s.inbox.dir = dir.join("inbox");
    s.inbox.poll_ms = 20;
    s.http.listen = "127.0.0.1:0".into();
    s.playbooks = PathBuf::from(PLAYBOOKS);
    s.roster = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/config/roster.yaml"));
    s.measures = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/measures/shanxi.yaml"));
    // No emergency reduction list: these tests are about the warnings themselves.
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
    s.validate().expect("the test settings are valid");
    s
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

/// Makes the Taiyuan playbook in `books` stricter, as version 2024.2: orange needs the head's
/// signature. Returns the new text.
pub fn make_orange_the_heads_to_sign(books: &Path) -> String {
    let path = books.join("taiyuan.yaml");
    let taiyuan = std::fs::read_to_string(&path).expect("taiyuan.yaml");
    let stricter = taiyuan
        .replace("version: \"2024.1\"", "version: \"2024.2\"")
        .replace("levels:\n", "levels:\n  - id: orange\n    sign_off: head\n");
    assert!(stricter.contains("2024.2") && stricter.contains("sign_off: head"), "{stricter}");
    std::fs::write(&path, &stricter).expect("written");
    stricter
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
}

/// Starts the daemon in a fresh temporary folder.
pub async fn spawn_app(clock: Clock) -> TestApp {
    spawn_app_with(TempDir::new().expect("a temporary folder"), clock, |_| {}).await
}

/// Starts the daemon in `dir` (fresh or left by an earlier run), after `tweak` has had its say on
/// the settings.
pub async fn spawn_app_with(dir: TempDir, clock: Clock, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = settings_in(dir.path());
    tweak(&mut settings);
    let app = Application::build(settings, clock.clone()).await.expect("the daemon builds");
    let addr = SocketAddr::from(([127, 0, 0, 1], app.port()));
    let state = app.state();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("an HTTP client");
    let app = TestApp {
        addr,
        state,
        clock,
        dir,
        shutdown,
        handle,
        http,
    };
    app.settled().await;
    app
}

impl TestApp {
    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let resp = req.send().await.expect("the daemon answers");
        let status = resp.status();
        let text = resp.text().await.expect("a body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    fn auth(req: reqwest::RequestBuilder, token: Option<&str>) -> reqwest::RequestBuilder {
        match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// GET with a staff token (or none): status and JSON body (a string when the body is not JSON).
    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        Self::send(Self::auth(self.http.get(self.url(path)), token)).await
    }

    /// GET of a plain-text page (`/metrics`).
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

    /// `POST /api/v1/forecasts` of a file's content, as the head's staff.
    pub async fn submit(&self, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
        self.post_body("/api/v1/forecasts", Some(HEAD), body).await
    }

    /// `POST /api/v1/forecasts` of a file's content under its file name (`x-file-name`), as the
    /// head's staff.
    pub async fn submit_file(&self, name: &str, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
        Self::send(
            self.http
                .post(self.url("/api/v1/forecasts"))
                .bearer_auth(HEAD)
                .header("x-file-name", name)
                .body(body),
        )
        .await
    }

    /// The inbox folder.
    pub fn inbox(&self) -> PathBuf {
        self.state.settings.inbox.dir.clone()
    }

    /// Drops a file into the inbox the way a sender should: written under a temporary name, then
    /// renamed into place.
    pub fn drop_in_inbox(&self, name: &str, bytes: impl AsRef<[u8]>) {
        let inbox = self.inbox();
        std::fs::create_dir_all(&inbox).expect("the inbox exists");
        let tmp = inbox.join(format!("{name}.part"));
        std::fs::write(&tmp, bytes).expect("the file is written");
        std::fs::rename(&tmp, inbox.join(name)).expect("the file is renamed into the inbox");
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

    /// The whole event log, read page by page through `GET /api/v1/events?after=`.
    pub async fn events(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let (status, body) = self.get(&format!("/api/v1/events?after={after}&limit=1000"), Some(HEAD)).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let page = body["events"].as_array().cloned().unwrap_or_default();
            if page.is_empty() {
                return out;
            }
            after = body["next_after"].as_u64().expect("next_after with a page");
            out.extend(page);
        }
    }

    /// The last sequence number of the log, as `/healthz` reports it.
    pub async fn last_seq(&self) -> u64 {
        let (status, body) = self.get("/healthz", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["last_seq"].as_u64().expect("last_seq")
    }

    /// Waits until the scheduler has held the latest consultation slot that is due (a fresh daemon
    /// holds the last one of the past day when it starts; a moved clock may make another due).
    pub async fn settled(&self) {
        eventually("the due consultation slot is held", || async {
            let last = self
                .state
                .engine
                .store
                .read(|r| r.counter("last_consultation_slot"))
                .expect("the store reads");
            let since = DateTime::<Utc>::from_timestamp(last as i64, 0).expect("a time");
            (last > 0 && hazeflow::schedule::due_slot(&self.state, since, self.clock.now()).is_none()).then_some(())
        })
        .await;
    }

    /// Moves the clock to a time in Asia/Shanghai.
    pub fn set_clock(&self, to: &str) {
        self.clock.set(shanghai(to));
    }

    /// Stops the daemon as SIGTERM would, checks that it stopped cleanly and that its views agree
    /// with its event log, and hands back its folder.
    pub async fn stop(self) -> TempDir {
        let diffs = self.state.engine.store.read(|r| r.verify_views()).expect("the store reads");
        assert!(diffs.is_empty(), "the views differ from the log: {diffs:?}");
        self.shutdown.cancel();
        let result = tokio::time::timeout(Duration::from_secs(10), self.handle)
            .await
            .expect("the daemon stops within its deadline");
        result.expect("the run loop did not panic").expect("the daemon stopped cleanly");
        drop(self.state);
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

/// The `kind` of each lifecycle event of a warning's history, in order.
pub fn kinds(history: &[Value]) -> Vec<String> {
    history
        .iter()
        .map(|r| r["event"]["kind"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// The names of the files in a folder, sorted (empty when it does not exist).
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.path().is_file())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}
