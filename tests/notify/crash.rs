//! Issue 13 item 8: after kill -9 in the middle of delivery, the messages sent twice are at most the
//! messages that were in flight (the mail lane's concurrency): the real binary, a real SMTP server on
//! a socket, Message-IDs counted at the server.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::Utc;
use chrono_tz::Asia::Shanghai;
use serde_json::Value;
use tokio::process::{Child, Command};

use crate::helpers::*;

/// The mail lane's concurrency: the messages in flight at a kill.
pub(crate) const CONCURRENCY: usize = 8;

/// The daemon's configuration: the defaults with this folder, this port, mail at full speed; the
/// store in `store_url` (PostgreSQL) when given.
fn config(dir: &Path, port: u16, store_url: Option<&str>) -> PathBuf {
    let root = env!("CARGO_MANIFEST_DIR");
    let text = hazeflow::config::DEFAULT_YAML
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
        .replace("demo: true", "demo: false")
        .replace("./data", &format!("{}/data", dir.display()))
        .replace("./playbooks", &format!("{root}/playbooks"))
        .replace("./seeds", &format!("{root}/seeds"))
        .replace("./config/", &format!("{root}/config/"))
        .replace("rate_per_sec: 50 ", "rate_per_sec: 0 ")
        .replace("concurrency: 8 ", &format!("concurrency: {CONCURRENCY} "));
    assert!(
        text.contains("rate_per_sec: 0 ") && text.contains(&format!("concurrency: {CONCURRENCY} ")),
        "{text}"
    );
    let text = match store_url {
        Some(url) => format!("{text}\nstore:\n  url: \"{url}\"\n"),
        None => text,
    };
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).expect("the config");
    path
}

async fn start(dir: &Path, port: u16, smtp: u16, http: &reqwest::Client) -> Child {
    start_node(dir, port, smtp, http, None).await
}

/// The `hazeflow` binary as a daemon in `dir` on `port`, mailing to the SMTP server on `smtp`, its
/// store in `store_url` when given; returns once it answers `/healthz`.
pub(crate) async fn start_node(dir: &Path, port: u16, smtp: u16, http: &reqwest::Client, store_url: Option<&str>) -> Child {
    let config = config(dir, port, store_url);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("daemon.log"))
        .expect("a log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hazeflow"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("HAZEFLOW_") || k == "RUST_LOG") {
        cmd.env_remove(k);
    }
    let mut child = cmd
        .arg("daemon")
        .arg("--config")
        .arg(&config)
        .env("HAZEFLOW_LOG_LEVEL", "warn")
        .env("HAZEFLOW_SMTP_HOST", "127.0.0.1")
        .env("HAZEFLOW_SMTP_PORT", smtp.to_string())
        .env("HAZEFLOW_SMTP_TLS", "none")
        .env("HAZEFLOW_STAFF_TOKENS", format!("{HEAD_NAME}:head:{HEAD}"))
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("the daemon starts");
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the daemon exited with {status}: {}",
                std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default()
            );
        }
        let url = format!("http://127.0.0.1:{port}/healthz");
        if http.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
            return child;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the daemon does not answer");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the SMTP server has accepted nothing new for 3 s (at most `within`).
pub(crate) async fn settled(smtp: &SmtpServer, within: Duration) {
    let started = Instant::now();
    let mut last = (smtp.received().len(), Instant::now());
    loop {
        let n = smtp.received().len();
        if n != last.0 {
            last = (n, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(3) {
            return;
        }
        assert!(started.elapsed() < within, "delivery does not settle");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Message-ID → how many times the server accepted it.
pub(crate) fn counts(smtp: &SmtpServer) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for m in smtp.received() {
        *out.entry(m.message_id()).or_default() += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_during_delivery_at_most_the_messages_in_flight_are_sent_again() {
    let dir = tempfile::TempDir::new().expect("a folder");
    let smtp = SmtpServer::start(0, None);
    let port = free_port();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("a client");
    let mut daemon = start(dir.path(), port, smtp.port, &http).await;
    let base = format!("http://127.0.0.1:{port}");

    // An orange forecast for Taiyuan from tomorrow, issued now: proposed, then signed by the head, so
    // every enterprise of Taiyuan on the seed list gets its notice.
    let now = Utc::now().with_timezone(&Shanghai);
    let tomorrow = (now + chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
    let csv = forecast_csv(
        &now.format("%Y-%m-%d %H:%M").to_string(),
        SOURCE,
        "140100",
        &tomorrow,
        &[235, 245, 190, 120, 90, 80, 70],
    );
    let resp = http
        .post(format!("{base}/api/v1/forecasts"))
        .bearer_auth(HEAD)
        .body(csv)
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status().as_u16(), 201, "{}", resp.text().await.unwrap_or_default());
    let id = eventually("orange is proposed for Taiyuan", || async {
        let body: Value = http
            .get(format!("{base}/api/v1/warnings"))
            .bearer_auth(HEAD)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        body["warnings"]
            .as_array()?
            .iter()
            .find(|w| w["region"] == "140100" && w["status"] == "pending")
            .and_then(|w| w["id"].as_str().map(str::to_string))
    })
    .await;
    let resp = http
        .post(format!("{base}/api/v1/warnings/{id}/sign"))
        .bearer_auth(HEAD)
        .json(&serde_json::json!({ "without_record": "本测试不涉及会商意见" }))
        .send()
        .await
        .expect("sent");
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap_or_default());

    // kill -9 once the notices are flowing.
    let started = Instant::now();
    while smtp.received().len() < 40 {
        assert!(started.elapsed() < Duration::from_secs(60), "the notices do not flow");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    daemon.start_kill().expect("SIGKILL");
    daemon.wait().await.expect("it died");
    let at_kill = smtp.received().len();

    // Started again: it sends what was left, the interrupted ones again with their ids.
    let _daemon = start(dir.path(), port, smtp.port, &http).await;
    settled(&smtp, Duration::from_secs(120)).await;
    let counts = counts(&smtp);
    let twice: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    let distinct = counts.len();
    eprintln!(
        "{at_kill} accepted before kill -9, {distinct} distinct in all, {} sent again",
        twice.len()
    );
    assert!(
        at_kill < distinct,
        "the kill came after delivery had ended ({at_kill} of {distinct})"
    );
    assert!(distinct >= 200, "only {distinct} messages: {counts:?}");
    assert!(counts.values().all(|n| *n <= 2), "{twice:?}");
    assert!(
        twice.len() <= CONCURRENCY,
        "{} messages were sent again, more than the {CONCURRENCY} in flight: {twice:?}",
        twice.len()
    );
}
