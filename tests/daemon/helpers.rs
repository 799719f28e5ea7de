//! `spawn_app()`: the real daemon ([`TestApp`] of `tests/common`) with the shipped playbooks and
//! roster, no list, and three staff tokens, started once its due consultation slot has been held;
//! plus what these tests do to it: forecasts over HTTP and through the inbox, the event log page by
//! page, a playbook made stricter.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use hazeflow::clock::Clock;
use hazeflow::config::Settings;
use reqwest::StatusCode;
use serde_json::Value;
use tempfile::TempDir;

pub use crate::common::*;

/// The settings of a test daemon living in `dir`.
pub fn settings_in(dir: &Path) -> Settings {
    let s = base_settings(dir);
    s.validate().expect("the test settings are valid");
    s
}

/// Makes the Taiyuan playbook in `books` stricter, as version 2026.2: orange needs the head's
/// signature. Returns the new text.
pub fn make_orange_the_heads_to_sign(books: &Path) -> String {
    let path = books.join("taiyuan.yaml");
    let taiyuan = std::fs::read_to_string(&path).expect("taiyuan.yaml");
    let stricter = taiyuan.replace("version: \"2026.1\"", "version: \"2026.2\"") + "\nlevels:\n  - id: orange\n    sign_off: head\n";
    assert!(stricter.contains("2026.2") && stricter.contains("sign_off: head"), "{stricter}");
    std::fs::write(&path, &stricter).expect("written");
    stricter
}

/// Starts the daemon in a fresh temporary folder.
pub async fn spawn_app(clock: Clock) -> TestApp {
    spawn_app_with(TempDir::new().expect("a temporary folder"), clock, |_| {}).await
}

/// Starts the daemon in `dir` (fresh or left by an earlier run), after `tweak` has had its say on
/// the settings, and waits until it has held the consultation slot that is due.
pub async fn spawn_app_with(dir: TempDir, clock: Clock, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = settings_in(dir.path());
    tweak(&mut settings);
    let app = TestApp::start(dir, clock, settings).await;
    app.settled().await;
    app
}

impl TestApp {
    /// `POST /api/v1/forecasts` of a file's content, as the head's staff.
    pub async fn submit(&self, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
        self.post_body("/api/v1/forecasts", Some(HEAD), body).await
    }

    /// `POST /api/v1/forecasts` of a file's content under its file name (`x-file-name`), as the
    /// head's staff.
    pub async fn submit_file(&self, name: &str, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
        Self::send(
            self.http()
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
            out.extend(page);
            // `next_after` is null once nothing follows.
            match body["next_after"].as_u64() {
                Some(next) => after = next,
                None => return out,
            }
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
            (last > 0 && hazeflow::workers::schedule::due_slot(&self.state.engine, since, self.clock.now()).is_none()).then_some(())
        })
        .await;
    }
}

/// The `kind` of each lifecycle event of a warning's history, in order.
/// The kinds of a warning's events, leaving out the timeline updates (`replanned`, `extended`) that every
/// consultation may add.
pub fn kinds(history: &[Value]) -> Vec<String> {
    history
        .iter()
        .map(|r| r["event"]["kind"].as_str().unwrap_or("?").to_string())
        .filter(|k| k != "replanned" && k != "extended")
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

/// `promtool check metrics` (Debian's prometheus package) accepts the text: help and type for every
/// family, names and units as Prometheus wants them. Skipped with a note where promtool is missing,
/// except in CI, which installs it. Used on the in-process daemon's `/metrics` (tests/daemon/api.rs)
/// and on the real binary's (tests/daemon/restart.rs).
pub fn promtool_accepts(text: &str) {
    use std::io::Write;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but promtool cannot run ({e}): .ci/run installs prometheus")
        }
        Err(e) => {
            eprintln!("promtool not run ({e}): install Debian's prometheus package to check /metrics");
            return;
        }
    };
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics:\n{said}\n---\n{text}"
    );
}

/// The `.eml` files a daemon's delivery has written into its mail folder (`dir/data/mail`).
pub(crate) fn mails_in(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir.join("data/mail"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                .collect()
        })
        .unwrap_or_default()
}
