//! Restarts: a clean stop and start shows the same state and history; a SIGKILL in the middle of a
//! burst of forecasts loses nothing that was acknowledged, records nothing twice, and leaves views
//! that agree with the log; a daemon that was down holds the missed consultation once. And SIGHUP on
//! the real binary: the roster is reloaded without a restart, a broken one refused.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::helpers::*;

const TAIYUAN: &str = "140100";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_stopped_and_started_again_on_the_same_folder_shows_the_same_warnings_and_history() {
    // 15:00: an orange proposal, signed at 15:10; a directive for Datong; a rejected file.
    let app = spawn_app(clock()).await;
    let csv = forecast_csv(
        "2026-12-01 14:00",
        "省生态环境监测和应急保障中心",
        TAIYUAN,
        "2026-12-01",
        &[120, 160, 230, 240, 180, 120, 100],
    );
    app.drop_in_inbox("taiyuan.csv", csv);
    app.drop_in_inbox("broken.csv", "region,date\n");
    let w = eventually("orange is proposed", || async { app.warning_of(TAIYUAN).await }).await;
    let id = w["id"].as_str().expect("an id").to_string();
    app.set_clock("2026-12-01 15:10");
    assert_eq!(
        app.post_json(
            &format!("/api/v1/warnings/{id}/sign"),
            Some(DEPUTY),
            &serde_json::json!({ "without_record": "本测试不涉及会商意见" })
        )
        .await
        .0,
        StatusCode::OK
    );
    let directive = json!({ "id": "D1", "name": "调度令", "min_level": "yellow", "regions": ["140200"], "from": "2026-12-02 00:00" });
    assert_eq!(
        app.post_json("/api/v1/directives", Some(HEAD), &directive).await.0,
        StatusCode::CREATED
    );
    eventually("the broken file is rejected", || async {
        (files_in(&app.inbox().join("rejected")).len() == 2).then_some(())
    })
    .await;
    let before = snapshot(&app, &id).await;

    // 15:20: the daemon is stopped and started again on the same folder, at the same time.
    let clock = app.clock.clone();
    let dir = app.stop().await;
    clock.set(shanghai("2026-12-01 15:20"));
    let app = spawn_app_with(dir, clock, |_| {}).await;
    assert_eq!(
        snapshot(&app, &id).await,
        before,
        "the same warnings, directives, consultations and history"
    );

    // And it carries on from there: past the start, the warning becomes active.
    app.set_clock("2026-12-03 01:00");
    eventually("the warning starts after the restart", || async {
        app.warning_of(TAIYUAN).await.filter(|w| w["status"] == "active")
    })
    .await;
    let history = crate::flow::history_of(&app, &id).await;
    assert_eq!(kinds(&history), ["proposed", "issued", "scheduled", "started"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_episode_keeps_its_playbook_version_across_a_reload_and_a_restart() {
    let dir = tempfile::TempDir::new().expect("a folder");
    let books = dir.path().join("playbooks");
    copy_dir(Path::new(PLAYBOOKS), &books);
    let on_books = |b: PathBuf| move |s: &mut hazeflow::config::Settings| s.playbooks = b;
    let app = spawn_app_with(dir, clock(), on_books(books.clone())).await;

    // 15:00: orange is proposed for Taiyuan under taiyuan@2026.1 (a deputy head signs orange).
    let csv = forecast_csv(
        "2026-12-01 14:00",
        "省生态环境监测和应急保障中心",
        TAIYUAN,
        "2026-12-01",
        &[120, 160, 230, 240, 180, 120, 100],
    );
    app.drop_in_inbox("taiyuan.csv", csv);
    let w = eventually("orange is proposed", || async { app.warning_of(TAIYUAN).await }).await;
    let id = w["id"].as_str().expect("an id").to_string();

    // 15:05: version 2026.2 (orange needs the head) is reloaded; 15:10 the daemon restarts.
    make_orange_the_heads_to_sign(&books);
    assert_eq!(app.post("/api/v1/playbooks/reload", Some(HEAD)).await.0, StatusCode::OK);
    let clock = app.clock.clone();
    let dir = app.stop().await;
    clock.set(shanghai("2026-12-01 15:10"));
    let app = spawn_app_with(dir, clock, on_books(books.clone())).await;
    let (_, health) = app.get("/healthz", None).await;
    assert_eq!(
        health["playbooks"],
        json!([
            "changzhi@2024.1",
            "datong@2024.1",
            "jincheng@2024.1",
            "jinzhong@2024.1",
            "linfen@2024.1",
            "lvliang@2024.1",
            "shanxi@2024.1",
            "shuozhou@2024.1",
            "taiyuan@2026.2",
            "xinzhou@2024.1",
            "yangquan@2024.1",
            "yuncheng@2024.1"
        ])
    );

    // 15:15: the episode still follows 2026.1: the deputy head signs it.
    app.set_clock("2026-12-01 15:15");
    let (status, body) = app
        .post_json(
            &format!("/api/v1/warnings/{id}/sign"),
            Some(DEPUTY),
            &serde_json::json!({ "without_record": "本测试不涉及会商意见" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let w = app.warning_of(TAIYUAN).await.expect("the warning");
    assert_eq!(
        (w["status"].as_str(), w["playbook"].as_str()),
        (Some("issued"), Some("taiyuan@2026.1")),
        "{w}"
    );
    app.stop().await;
}

/// What a user sees of a daemon's state: warnings, one warning with its history, directives,
/// consultations, and the whole log.
async fn snapshot(app: &TestApp, id: &str) -> Vec<Value> {
    let mut out = vec![json!(app.warnings().await)];
    for path in [
        format!("/api/v1/warnings/{id}"),
        "/api/v1/directives".into(),
        "/api/v1/consultations?limit=100".into(),
    ] {
        let (status, body) = app.get(&path, Some(HEAD)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        out.push(body);
    }
    out.push(json!(app.events().await));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_that_was_down_over_several_consultation_slots_holds_one_consultation_when_it_starts() {
    // Up at 15:00 with a forecast: the consultation on it is held.
    let app = spawn_app(clock()).await;
    let csv = forecast_csv(
        "2026-12-01 14:00",
        "省生态环境监测和应急保障中心",
        TAIYUAN,
        "2026-12-01",
        &[60, 60, 60, 60, 60, 60, 60],
    );
    assert_eq!(app.submit(csv).await.0, StatusCode::CREATED);
    eventually("the consultation on the forecast is held", || async {
        (scheduled(&app).await.1 == 1).then_some(())
    })
    .await;
    let (slots_before, _) = scheduled(&app).await;

    // Down from 15:05 to 2026-12-02 17:00: the slots of 12-01 16:00, 12-02 09:00, 10:00 and 16:00
    // are missed.
    let clock = app.clock.clone();
    let dir = app.stop().await;
    clock.set(shanghai("2026-12-02 17:00"));
    let app = spawn_app_with(dir, clock, |_| {}).await;

    // → one consultation, for the latest missed slot, and no more: two on-demand consultations go
    // through the scheduler after it, and still only that one slot was held.
    let latest = eventually("the missed slot is held", || async {
        let (slots, _) = scheduled(&app).await;
        (slots.len() > slots_before.len()).then(|| slots[0].clone())
    })
    .await;
    assert!(latest.ends_with("2026-12-02 16:00"), "the latest missed slot: {latest}");
    for n in 2..=3 {
        app.state.trigger_consultation();
        eventually("the on-demand consultation is held", || async {
            (scheduled(&app).await.1 == n).then_some(())
        })
        .await;
    }
    let (slots, _) = scheduled(&app).await;
    assert_eq!(
        slots.len(),
        slots_before.len() + 1,
        "one missed slot held, not one per missed slot: {slots:?}"
    );
    app.stop().await;
}

/// The triggers of the scheduled consultations held (newest first), and how many were held on
/// demand.
async fn scheduled(app: &TestApp) -> (Vec<String>, usize) {
    let (_, body) = app.get("/api/v1/consultations?limit=100", Some(HEAD)).await;
    let triggers: Vec<String> = body["consultations"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|c| c["trigger"].as_str().unwrap_or("?").to_string())
        .collect();
    let on_demand = triggers.iter().filter(|t| *t == "forecast received").count();
    (triggers.into_iter().filter(|t| t != "forecast received").collect(), on_demand)
}

/// The embedded default configuration, pointed at `dir` and `port`, with the demo off.
pub(crate) fn write_config(dir: &Path, port: u16) -> PathBuf {
    let root = env!("CARGO_MANIFEST_DIR");
    let text = hazeflow::config::DEFAULT_YAML
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
        .replace("demo: true", "demo: false")
        .replace("./data", &format!("{}/data", dir.display()))
        .replace("./playbooks", &format!("{root}/playbooks"))
        .replace("./seeds", &format!("{root}/seeds"))
        .replace("./config/", &format!("{root}/config/"));
    assert!(
        text.contains(&format!("listen: 127.0.0.1:{port}")) && text.contains("demo: false") && !text.contains("./data"),
        "{text}"
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).expect("the config is written");
    path
}

/// The real `hazeflow` binary, with none of the caller's `HAZEFLOW_*` settings.
pub(crate) fn hazeflow_command(dir: &Path) -> Command {
    hazeflow_command_in(dir, &[])
}

/// As [`hazeflow_command`], run by `launcher` (such as `ip netns exec NS`), which then runs the binary.
pub(crate) fn hazeflow_command_in(dir: &Path, launcher: &[&str]) -> Command {
    let exe = env!("CARGO_BIN_EXE_hazeflow");
    let mut cmd = match launcher.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("HAZEFLOW_") || k == "RUST_LOG") {
        cmd.env_remove(k);
    }
    // No emergency reduction list to import: this is about forecasts.
    cmd.env("HAZEFLOW_LOG_LEVEL", "warn")
        .env("HAZEFLOW_LIST_SEED", "")
        .current_dir(dir)
        .kill_on_drop(true);
    cmd
}

/// The first error of the first reload the daemon on `port` recorded as refused (waiting for it).
async fn refused_reload(http: &reqwest::Client, port: u16) -> String {
    let refused = eventually("the refusal is recorded", || async {
        records_of(http, port, "playbooks_reloaded")
            .await
            .into_iter()
            .find(|r| r["errors"].as_array().is_some_and(|e| !e.is_empty()))
    })
    .await;
    refused["errors"][0].as_str().expect("an error").to_string()
}

/// Starts `hazeflow daemon --config` and waits until it answers `/healthz`.
async fn start_daemon(dir: &Path, port: u16, http: &reqwest::Client) -> Child {
    start_daemon_with(dir, port, http, |text| text).await
}

/// As [`start_daemon`], with the configuration's text changed by `tweak` first.
pub(crate) async fn start_daemon_with(dir: &Path, port: u16, http: &reqwest::Client, tweak: impl FnOnce(String) -> String) -> Child {
    let config = write_config(dir, port);
    let text = std::fs::read_to_string(&config).expect("the config");
    std::fs::write(&config, tweak(text)).expect("the config is written");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("daemon.log"))
        .expect("a log file");
    let mut child = hazeflow_command(dir)
        .arg("daemon")
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the daemon starts");
    answering(&mut child, port, http, &dir.join("daemon.log")).await;
    child
}

/// Waits until the daemon answers `GET /healthz` with 200 (at most 15 s); panics with its log
/// (`log`, when it was written there) if it exits first.
pub(crate) async fn answering(child: &mut Child, port: u16, http: &reqwest::Client, log: &Path) {
    answering_at(child, &format!("127.0.0.1:{port}"), http, log).await;
}

/// As [`answering`], for a daemon listening at `addr` (`host:port`).
pub(crate) async fn answering_at(child: &mut Child, addr: &str, http: &reqwest::Client, log: &Path) {
    let url = format!("http://{addr}/healthz");
    let started = std::time::Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the daemon exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if http.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "the daemon does not answer /healthz");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_in_the_middle_of_a_burst_of_forecasts_keeps_every_acknowledged_one_exactly_once() {
    let dir = tempfile::TempDir::new().expect("a folder");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client");
    let port = free_port();
    let mut daemon = start_daemon(dir.path(), port, &http).await;

    // 16 senders submit distinct forecasts as fast as they can, each noting what was acknowledged.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let count = Arc::new(AtomicUsize::new(0));
    let mut senders = Vec::new();
    for sender in 0..16 {
        let (http, acked, count) = (http.clone(), acked.clone(), count.clone());
        let url = format!("http://127.0.0.1:{port}/api/v1/forecasts");
        senders.push(tokio::spawn(async move {
            for n in 0..1000 {
                let csv = forecast_csv(
                    "2026-12-01 14:00",
                    &format!("sender {sender}, forecast {n}"),
                    TAIYUAN,
                    "2026-12-01",
                    &[50 + n % 50, 60, 70],
                );
                let Ok(resp) = http.post(&url).bearer_auth("hazeflow-demo").body(csv).send().await else {
                    return;
                };
                if !resp.status().is_success() {
                    return;
                }
                let Ok(body) = resp.json::<Value>().await else { return };
                assert_eq!(body["duplicate"], false, "{body}");
                acked
                    .lock()
                    .expect("the list")
                    .push(body["id"].as_str().expect("an id").to_string());
                count.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }

    // Once 64 have been acknowledged, with more in flight: SIGKILL.
    eventually("64 forecasts are acknowledged", || async {
        (count.load(Ordering::SeqCst) >= 64).then_some(())
    })
    .await;
    daemon.kill().await.expect("SIGKILL");
    for s in senders {
        s.await.expect("a sender finished");
    }
    let acked: Vec<String> = acked.lock().expect("the list").clone();
    assert!(acked.len() >= 64);
    assert_eq!(acked.iter().collect::<BTreeSet<_>>().len(), acked.len(), "distinct forecasts");

    // Started again: every acknowledged forecast is in the log, none twice.
    let port = free_port();
    let mut daemon = start_daemon(dir.path(), port, &http).await;
    let mut recorded: BTreeMap<String, usize> = BTreeMap::new();
    let mut after = 0;
    loop {
        let resp = http
            .get(format!("http://127.0.0.1:{port}/api/v1/events?after={after}&limit=1000"))
            .bearer_auth("hazeflow-demo")
            .send()
            .await
            .expect("events");
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.expect("JSON");
        let page = body["events"].as_array().cloned().unwrap_or_default();
        let Some(last) = page.last() else { break };
        after = last["seq"].as_u64().expect("a seq");
        for r in page.iter().filter(|r| r["type"] == "forecast_accepted") {
            *recorded
                .entry(r["forecast"]["id"].as_str().expect("an id").to_string())
                .or_default() += 1;
        }
    }
    let lost: Vec<&String> = acked.iter().filter(|id| !recorded.contains_key(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged forecasts were lost: {lost:?}",
        lost.len(),
        acked.len()
    );
    eprintln!("acknowledged {}, recorded {}", acked.len(), recorded.len());
    let twice: Vec<(&String, &usize)> = recorded.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "recorded twice: {twice:?}");

    // SIGTERM: it stops cleanly (exit 0) within its deadline.
    let pid = daemon.id().expect("a running daemon").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(15), daemon.wait())
        .await
        .expect("it exits within the deadline")
        .expect("an exit status");
    assert!(
        exit.success(),
        "{exit}: {}",
        std::fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default()
    );

    // `hazeflow verify`: the views agree with the log.
    let out = hazeflow_command(dir.path())
        .arg("verify")
        .arg("--config")
        .arg(dir.path().join("config.yaml"))
        .output()
        .await
        .expect("verify runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout
            .trim_end()
            .ends_with("events; every table decodes and the views agree with the log"),
        "{stdout}"
    );
}

/// Sends a signal to a child process with `kill`.
/// SIGTERM, then the daemon must exit with success within 15 s.
async fn stop_cleanly(daemon: &mut Child) {
    signal(daemon, "TERM");
    let exit = tokio::time::timeout(Duration::from_secs(15), daemon.wait())
        .await
        .expect("it exits within the deadline")
        .expect("an exit status");
    assert!(exit.success(), "{exit}");
}

fn signal(child: &Child, name: &str) {
    let pid = child.id().expect("a running daemon").to_string();
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// The records of a kind in the daemon's log, over HTTP.
async fn records_of(http: &reqwest::Client, port: u16, kind: &str) -> Vec<Value> {
    let resp = http
        .get(format!("http://127.0.0.1:{port}/api/v1/events?after=0&limit=1000"))
        .bearer_auth("hazeflow-demo")
        .send()
        .await
        .expect("events");
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("JSON");
    body["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r["type"] == kind || r["kind"] == kind)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_roster_of_the_running_binary_and_refuses_a_broken_one() {
    let dir = tempfile::TempDir::new().expect("a folder");
    let roster = dir.path().join("roster.yaml");
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/roster.yaml"), &roster).expect("a copy");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client");
    let port = free_port();
    let line = format!("roster: {}/config/roster.yaml", env!("CARGO_MANIFEST_DIR"));
    let mut daemon = start_daemon_with(dir.path(), port, &http, |text| {
        assert!(text.contains(&line), "{text}");
        text.replace(&line, &format!("roster: {}", roster.display()))
    })
    .await;

    // A new duty officer joins Taiyuan's roster; SIGHUP puts the roster live and records it.
    let text = std::fs::read_to_string(&roster).expect("the roster");
    let anchor = "  \"140100\":   # 太原市\n";
    assert!(text.contains(anchor));
    let added = text.replace(
        anchor,
        &format!("{anchor}    - {{ id: ty-zhou-min, name: 周敏, role: duty_officer, email: zhou.min@ty.example.cn, shifts: [{{ days: [daily], from: \"12:00\", to: \"20:00\" }}] }}\n"),
    );
    std::fs::write(&roster, &added).expect("written");
    signal(&daemon, "HUP");
    let reloaded = eventually("the reload is recorded", || async {
        records_of(&http, port, "notify_reloaded").await.pop()
    })
    .await;
    assert_eq!(reloaded["actor"], "SIGHUP", "{reloaded}");
    assert_eq!(reloaded["data"]["people"], 63, "one more than the 62 shipped: {reloaded}");

    // A broken roster: SIGHUP refuses it with its place, and the daemon runs on.
    std::fs::write(&roster, added.replace("from: \"12:00\"", "from: \"noon\"")).expect("written");
    signal(&daemon, "HUP");
    let error = refused_reload(&http, port).await;
    assert!(
        error.starts_with(&format!("{}:", roster.display())) && error.contains("\"noon\" is not a time of day"),
        "{error}"
    );
    assert_eq!(records_of(&http, port, "notify_reloaded").await.len(), 1);
    let health = http
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .expect("the daemon answers");
    assert!(health.status().is_success());
    stop_cleanly(&mut daemon).await;
}

/// The status of `GET /api/v1/warnings` with a bearer token.
async fn status_with(http: &reqwest::Client, port: u16, token: &str) -> StatusCode {
    http.get(format!("http://127.0.0.1:{port}/api/v1/warnings"))
        .bearer_auth(token)
        .send()
        .await
        .expect("the daemon answers")
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_rereads_the_staff_tokens_file_so_a_revoked_token_stops_working_and_a_broken_file_changes_nothing() {
    let dir = tempfile::TempDir::new().expect("a folder");
    let tokens = dir.path().join("staff-tokens.csv");
    let line = |name: &str, role: &str, token: &str| format!("{name},{role},{}\n", hazeflow::config::hash_token(token));
    std::fs::write(
        &tokens,
        format!(
            "# name,role,sha256\n{}{}",
            line("甲", "head", "alpha-token"),
            line("乙", "duty_officer", "beta-token")
        ),
    )
    .expect("the tokens file");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client");
    let port = free_port();
    let mut daemon = start_daemon_with(dir.path(), port, &http, |text| {
        assert!(text.contains("tokens_file: null"), "{text}");
        text.replace("tokens_file: null", &format!("tokens_file: {}", tokens.display()))
    })
    .await;
    assert_eq!(status_with(&http, port, "alpha-token").await, StatusCode::OK);
    assert_eq!(status_with(&http, port, "beta-token").await, StatusCode::OK);
    assert_eq!(status_with(&http, port, "gamma-token").await, StatusCode::UNAUTHORIZED);

    // 乙 leaves, 丙 joins: SIGHUP reads the file again, no restart.
    std::fs::write(
        &tokens,
        format!("{}{}", line("甲", "head", "alpha-token"), line("丙", "duty_officer", "gamma-token")),
    )
    .expect("the tokens file");
    signal(&daemon, "HUP");
    eventually("the new token works", || async {
        (status_with(&http, port, "gamma-token").await == StatusCode::OK).then_some(())
    })
    .await;
    assert_eq!(status_with(&http, port, "beta-token").await, StatusCode::UNAUTHORIZED);
    assert_eq!(status_with(&http, port, "alpha-token").await, StatusCode::OK);
    // The configuration's own token is not the file's: it stays.
    assert_eq!(status_with(&http, port, "hazeflow-demo").await, StatusCode::OK);

    // A broken file (a hash cut short, 丙 removed): the reload over the API says where, and the old tokens stay.
    std::fs::write(&tokens, format!("{}丁,head,abc123\n", line("甲", "head", "alpha-token"))).expect("the tokens file");
    let resp = http
        .post(format!("http://127.0.0.1:{port}/api/v1/playbooks/reload"))
        .bearer_auth("alpha-token")
        .send()
        .await
        .expect("the daemon answers");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.expect("a JSON error");
    let error = body.to_string();
    assert!(
        error.contains(&format!("{}:2:8: the sha256 of 丁 is not 64 hex digits", tokens.display())),
        "{body}"
    );
    assert_eq!(
        status_with(&http, port, "gamma-token").await,
        StatusCode::OK,
        "the old tokens stay live"
    );

    // Mended: `hazeflow reload` puts it live.
    std::fs::write(&tokens, line("甲", "head", "alpha-token")).expect("the tokens file");
    let out = hazeflow_command(dir.path())
        .args(["--server", &format!("http://127.0.0.1:{port}"), "--token", "alpha-token", "reload"])
        .output()
        .await
        .expect("hazeflow reload runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(status_with(&http, port, "gamma-token").await, StatusCode::UNAUTHORIZED);
    assert_eq!(status_with(&http, port, "alpha-token").await, StatusCode::OK);

    stop_cleanly(&mut daemon).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_rereads_the_tokens_of_the_config_file_and_of_the_environment_file_all_or_nothing() {
    let dir = tempfile::TempDir::new().expect("a folder");
    let env_file = dir.path().join("hazeflow.env");
    std::fs::write(&env_file, "# secrets\nHAZEFLOW_STAFF_TOKENS=乙:duty_officer:env-beta\n").expect("the env file");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client");
    let port = free_port();
    let config = write_config(dir.path(), port);
    let text = std::fs::read_to_string(&config).expect("the config");
    let demo_sha = hazeflow::config::hash_token("hazeflow-demo");
    assert!(text.contains(&demo_sha), "{text}");
    let mut daemon = hazeflow_command(dir.path())
        .args(["daemon", "--config"])
        .arg(&config)
        .env("HAZEFLOW_ENV_FILE", &env_file)
        // What systemd's EnvironmentFile= put into the process at start: with an environment file
        // named, the tokens come from that file alone.
        .env("HAZEFLOW_STAFF_TOKENS", "丙:head:process-gamma")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the daemon starts");
    answering(&mut daemon, port, &http, &dir.path().join("no log")).await;
    assert_eq!(status_with(&http, port, "hazeflow-demo").await, StatusCode::OK);
    assert_eq!(status_with(&http, port, "env-beta").await, StatusCode::OK);
    assert_eq!(status_with(&http, port, "process-gamma").await, StatusCode::UNAUTHORIZED);

    // The demo token leaves the config file for 丁's, 乙 leaves the environment file for 戊: SIGHUP.
    std::fs::write(
        &config,
        text.replace(&demo_sha, &hazeflow::config::hash_token("config-delta"))
            .replace("name: 演示值班员", "name: 丁"),
    )
    .expect("the config");
    std::fs::write(&env_file, "export HAZEFLOW_STAFF_TOKENS=\"戊:head:env-epsilon\"\n").expect("the env file");
    signal(&daemon, "HUP");
    eventually("the new tokens work", || async {
        (status_with(&http, port, "env-epsilon").await == StatusCode::OK
            && status_with(&http, port, "config-delta").await == StatusCode::OK)
            .then_some(())
    })
    .await;
    assert_eq!(status_with(&http, port, "hazeflow-demo").await, StatusCode::UNAUTHORIZED);
    assert_eq!(status_with(&http, port, "env-beta").await, StatusCode::UNAUTHORIZED);

    // 乙 back in the environment file, but the config file broken: nothing changes, the error names the place.
    std::fs::write(&env_file, "HAZEFLOW_STAFF_TOKENS=戊:head:env-epsilon,乙:duty_officer:env-beta\n").expect("the env file");
    let good = std::fs::read_to_string(&config).expect("the config");
    std::fs::write(&config, good.replace("shutdown_deadline_secs: 10", "shutdown_deadline_secs: soon")).expect("the config");
    let reload = || async {
        let resp = http
            .post(format!("http://127.0.0.1:{port}/api/v1/playbooks/reload"))
            .bearer_auth("env-epsilon")
            .send()
            .await
            .expect("the daemon answers");
        (resp.status(), resp.json::<Value>().await.expect("JSON"))
    };
    let (status, body) = reload().await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let error = body["error"].as_str().expect("an error");
    assert!(
        error.contains(&format!("{}:", config.display())) && error.contains("shutdown_deadline_secs"),
        "{error}"
    );
    assert_eq!(
        status_with(&http, port, "env-beta").await,
        StatusCode::UNAUTHORIZED,
        "all or nothing"
    );
    assert_eq!(status_with(&http, port, "config-delta").await, StatusCode::OK);

    // A broken environment file likewise names its line.
    std::fs::write(&config, &good).expect("the config");
    std::fs::write(&env_file, "HAZEFLOW_STAFF_TOKENS=戊:head:env-epsilon\nnot a setting\n").expect("the env file");
    let (status, body) = reload().await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let error = body["error"].as_str().expect("an error");
    assert!(
        error.contains(&format!("{}:2:1: expected KEY=VALUE", env_file.display())),
        "{error}"
    );

    // Both mended: 乙 works again.
    std::fs::write(&env_file, "HAZEFLOW_STAFF_TOKENS=戊:head:env-epsilon,乙:duty_officer:env-beta\n").expect("the env file");
    let (status, body) = reload().await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(status_with(&http, port, "env-beta").await, StatusCode::OK);

    // The ack-link key rotated with the CLI beside the running daemon, put live by `hazeflow reload`.
    let out = hazeflow_command(dir.path())
        .args(["token-key", "rotate", "--config"])
        .arg(&config)
        .output()
        .await
        .expect("hazeflow token-key runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("made k2 ("));
    let out = hazeflow_command(dir.path())
        .args(["--server", &format!("http://127.0.0.1:{port}"), "--token", "env-epsilon", "reload"])
        .output()
        .await
        .expect("hazeflow reload runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("ack-link keys k1, k2 (k2 signs)"), "{text}");
    stop_cleanly(&mut daemon).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_file_with_only_what_differs_runs_the_daemon_without_the_demo_token_and_its_files_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::TempDir::new().expect("a folder");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client");
    let port = free_port();
    let root = env!("CARGO_MANIFEST_DIR");
    let config = dir.path().join("site.yaml");
    // Only what differs: where, which port, the shipped files by absolute path, one staff token.
    std::fs::write(
        &config,
        format!(
            "data_dir: {data}\nplaybooks: {root}/playbooks\nmeasures: {root}/playbooks/measures/shanxi.yaml\nroster: {root}/config/roster.yaml\nhttp:\n  listen: 127.0.0.1:{port}\nstaff:\n  tokens:\n    - {{ name: 值班员, role: duty_officer, sha256: {sha} }}\n",
            data = dir.path().join("data").display(),
            sha = hazeflow::config::hash_token("site-secret"),
        ),
    )
    .expect("the file");
    let start = || async {
        let mut child = hazeflow_command(dir.path())
            .args(["daemon", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the daemon starts");
        answering(&mut child, port, &http, &dir.path().join("no log")).await;
        child
    };
    let mut daemon = start().await;
    let api = format!("http://127.0.0.1:{port}/api/v1/warnings");
    let with = |token: &str| http.get(&api).bearer_auth(token).send();
    assert_eq!(with("site-secret").await.expect("an answer").status(), StatusCode::OK);
    assert_eq!(
        with("hazeflow-demo").await.expect("an answer").status(),
        StatusCode::UNAUTHORIZED,
        "the demo token of the defaults is not inherited by a site's file"
    );
    let data = dir.path().join("data");
    let mode = |p: &Path| std::fs::metadata(p).expect("the file is there").permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the data folder is its owner's only");
    assert_eq!(mode(&data.join("token-keys")), 0o700, "the link keys' folder is its owner's only");
    assert_eq!(
        mode(&data.join("session-keys")),
        0o700,
        "the session keys' folder is its owner's only"
    );
    for f in ["hazeflow.redb", "token-keys/k1.key", "session-keys/k1.key"] {
        assert_eq!(mode(&data.join(f)), 0o600, "{f} is its owner's only");
    }
    assert!(!data.join("session.key").exists(), "a new data folder has no legacy key");
    let key = std::fs::read_to_string(data.join("session-keys/k1.key")).expect("the key");
    daemon.kill().await.expect("stopped");
    let mut daemon = start().await;
    assert_eq!(
        std::fs::read_to_string(data.join("session-keys/k1.key")).expect("the key"),
        key,
        "the dashboard's form key is kept across a restart"
    );
    daemon.kill().await.expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_systemd_the_daemon_says_ready_once_it_listens_pings_the_watchdog_and_says_stopping() {
    let dir = tempfile::TempDir::new().expect("a folder");
    let socket_path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).expect("a notify socket");
    socket.set_read_timeout(Some(Duration::from_secs(15))).expect("a timeout");
    let port = free_port();
    let config = write_config(dir.path(), port);
    let mut daemon = hazeflow_command(dir.path())
        .args(["daemon", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "200000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the daemon starts");
    let said = move || -> String {
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf).expect("systemd is told something within 15 s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let said = Arc::new(Mutex::new(said));
    let next = || {
        let said = said.clone();
        async move {
            tokio::task::spawn_blocking(move || (said.lock().expect("the socket"))())
                .await
                .expect("read")
        }
    };
    assert_eq!(next().await, "READY=1", "readiness comes first");
    let health = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .expect("it listens when ready");
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(next().await, "WATCHDOG=1", "then the watchdog, every 100 ms");
    assert_eq!(next().await, "WATCHDOG=1");
    let pid = daemon.id().expect("running").to_string();
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(term.success());
    let mut rest = Vec::new();
    loop {
        let m = next().await;
        rest.push(m.clone());
        if m == "STOPPING=1" {
            break;
        }
        assert!(rest.len() < 100, "no STOPPING=1 after SIGTERM: {rest:?}");
    }
    let status = tokio::time::timeout(Duration::from_secs(15), daemon.wait())
        .await
        .expect("it stops")
        .expect("status");
    assert!(status.success(), "a clean stop: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_backups_taken_while_the_daemon_writes_each_restore_into_a_store_that_verifies() {
    let dir = tempfile::TempDir::new().expect("a folder");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client");
    let port = free_port();
    let mut daemon = start_daemon(dir.path(), port, &http).await;
    let config = dir.path().join("config.yaml");

    // Four senders keep the writer busy with distinct forecasts while the backups are taken.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut senders = Vec::new();
    for sender in 0..4 {
        let (http, stop) = (http.clone(), stop.clone());
        let url = format!("http://127.0.0.1:{port}/api/v1/forecasts");
        senders.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let csv = forecast_csv(
                    "2026-12-01 14:00",
                    &format!("backup sender {sender}, {n}"),
                    TAIYUAN,
                    "2026-12-01",
                    &[60 + n % 40, 70, 80],
                );
                let _ = http.post(&url).bearer_auth("hazeflow-demo").body(csv).send().await;
                n += 1;
            }
        }));
    }
    let backup = |out: PathBuf| {
        hazeflow_command(dir.path())
            .arg("backup")
            .arg(&out)
            .arg("--config")
            .arg(&config)
            .args(["--server", &format!("http://127.0.0.1:{port}"), "--token", "hazeflow-demo"])
            .output()
    };
    let mut events = Vec::new();
    for i in 0..5 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let out = dir.path().join(format!("backup-{i}.redb"));
        let done = backup(out.clone()).await.expect("the command runs");
        let said = String::from_utf8_lossy(&done.stdout).to_string();
        assert!(done.status.success(), "backup {i}: {said}{}", String::from_utf8_lossy(&done.stderr));
        assert!(
            said.contains("through the running daemon") && said.contains("its views agree with its log"),
            "{said}"
        );
        let n: u64 = said
            .split(": ")
            .nth(1)
            .and_then(|t| t.split(' ').next())
            .and_then(|t| t.parse().ok())
            .expect("the event count");
        events.push(n);
    }
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        let _ = s.await;
    }
    assert!(
        events.windows(2).all(|w| w[0] <= w[1]) && events[4] > events[0],
        "later backups hold more of the log: {events:?}"
    );
    // Refused: an existing name is never overwritten.
    let again = backup(dir.path().join("backup-0.redb")).await.expect("the command runs");
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("never overwrites"));
    daemon.kill().await.expect("stopped");
    let _ = daemon.wait().await;

    // With the daemon stopped, a backup is taken from the file.
    let offline = backup(dir.path().join("backup-offline.redb")).await.expect("the command runs");
    assert!(String::from_utf8_lossy(&offline.stdout).contains("from the file"), "{offline:?}");

    // Each backup restores into a fresh folder whose store `hazeflow verify` accepts.
    for (i, n) in events.iter().enumerate() {
        let other = tempfile::TempDir::new().expect("a folder");
        let cfg = write_config(other.path(), free_port());
        let restored = hazeflow_command(other.path())
            .arg("restore")
            .arg(dir.path().join(format!("backup-{i}.redb")))
            .arg("--config")
            .arg(&cfg)
            .output()
            .await
            .expect("restore runs");
        assert!(restored.status.success(), "restore {i}: {restored:?}");
        assert!(
            String::from_utf8_lossy(&restored.stdout).contains(&format!("{n} events")),
            "{restored:?}"
        );
        let verified = hazeflow_command(other.path())
            .arg("verify")
            .arg("--config")
            .arg(&cfg)
            .output()
            .await
            .expect("verify runs");
        assert!(verified.status.success(), "verify of restored backup {i}: {verified:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_log_has_the_start_line_an_access_line_per_request_with_its_id_and_actor_and_no_ack_token() {
    let dir = tempfile::TempDir::new().expect("a folder");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client");
    let port = free_port();
    let config = write_config(dir.path(), port);
    let log = dir.path().join("daemon.log");
    let mut daemon = hazeflow_command(dir.path())
        .args(["daemon", "--config"])
        .arg(&config)
        .env("HAZEFLOW_LOG_LEVEL", "info")
        .env("HAZEFLOW_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("a log file"))
        .spawn()
        .expect("the daemon starts");
    let base = format!("http://127.0.0.1:{port}");
    answering(&mut daemon, port, &http, &log).await;
    let csv = forecast_csv("2026-12-01 14:00", "log test", TAIYUAN, "2026-12-01", &[60, 70, 80]);
    let resp = http
        .post(format!("{base}/api/v1/forecasts"))
        .bearer_auth("hazeflow-demo")
        .header("X-Request-Id", "req-log-test-1")
        .body(csv)
        .send()
        .await
        .expect("an answer");
    assert_eq!(resp.headers()["x-request-id"], "req-log-test-1", "the id is sent back");
    let secret = "0123456789abcdef0123456789abcdef";
    let _ = http.get(format!("{base}/ack/{secret}")).send().await.expect("an answer");
    // State changes asked for by a person are logged with who asked (the engine's sign, lift, cancel
    // and directives the same way).
    for path in ["/api/v1/consultations", "/api/v1/playbooks/reload"] {
        let resp = http
            .post(format!("{base}{path}"))
            .bearer_auth("hazeflow-demo")
            .send()
            .await
            .expect("an answer");
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
    }
    // A job (a file from the inbox, the consultation it brings on) logs inside a span of its own.
    let inbox = dir.path().join("data/inbox");
    std::fs::create_dir_all(&inbox).expect("the inbox");
    let csv = forecast_csv("2026-12-01 15:00", "log test", TAIYUAN, "2026-12-02", &[60, 70, 80]);
    std::fs::write(inbox.join("job.csv.part"), csv).expect("written");
    std::fs::rename(inbox.join("job.csv.part"), inbox.join("job.csv")).expect("renamed");
    for _ in 0..100 {
        let so_far = std::fs::read_to_string(&log).unwrap_or_default();
        if so_far.contains("forecast accepted from the inbox") && so_far.matches("consultation held on a new forecast").count() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    daemon.kill().await.expect("stopped");
    let text = std::fs::read_to_string(&log).expect("the log");
    assert!(!text.contains('\u{1b}'), "no colour codes in a log file");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let banner = lines
        .iter()
        .find(|l| l["fields"]["message"] == "hazeflow is running")
        .unwrap_or_else(|| panic!("a start line in\n{text}"));
    assert_eq!(banner["fields"]["dashboard"], format!("http://127.0.0.1:{port}/"));
    assert!(
        banner["fields"]["public_page"].as_str().is_some_and(|p| p.ends_with("/public")),
        "{banner}"
    );
    assert!(banner["fields"]["mail"].as_str().is_some_and(|p| p.ends_with("/mail")), "{banner}");
    let access = lines
        .iter()
        .find(|l| l["fields"]["message"] == "answered" && l["span"]["id"] == "req-log-test-1")
        .unwrap_or_else(|| panic!("an access line for the request in\n{text}"));
    assert_eq!(access["span"]["method"], "POST");
    assert_eq!(access["span"]["path"], "/api/v1/forecasts");
    assert_eq!(access["span"]["actor"], "演示值班员", "the token's holder");
    assert_eq!(access["fields"]["status"], 201);
    assert!(!text.contains(secret), "an ack token never reaches the log");
    let accepted = lines
        .iter()
        .find(|l| l["fields"]["message"] == "forecast accepted from the inbox")
        .unwrap_or_else(|| panic!("the inbox line in\n{text}"));
    assert_eq!(accepted["span"]["name"], "job", "{accepted}");
    assert_eq!(accepted["span"]["kind"], "inbox", "{accepted}");
    assert_eq!(accepted["span"]["file"], "job.csv", "{accepted}");
    let held: Vec<&Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "consultation held on a new forecast")
        .collect();
    assert!(
        !held.is_empty()
            && held
                .iter()
                .all(|l| l["span"]["kind"] == "consultation" && l["span"]["trigger"] == "forecast received"),
        "{text}"
    );
    for action in ["submit forecast", "consult now", "reload"] {
        let line = lines
            .iter()
            .find(|l| l["fields"]["action"] == action)
            .unwrap_or_else(|| panic!("a line for {action} in\n{text}"));
        assert_eq!(line["fields"]["actor"], "演示值班员", "{line}");
        assert_eq!(line["level"], "INFO", "{line}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "answered" && l["span"]["path"] == "/ack/…"),
        "{text}"
    );
}

/// The CSRF token of the first form of a dashboard page.
fn csrf_of(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a form with a CSRF token")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_form_signed_before_a_session_key_rotation_is_accepted_after_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::TempDir::new().expect("a folder");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    // A data folder of an earlier release: its single session key, read as k0.
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data");
    std::fs::write(data.join("session.key"), hex::encode([5u8; 32])).expect("the legacy key");
    let port = free_port();
    let mut daemon = start_daemon(dir.path(), port, &http).await;
    let config = dir.path().join("config.yaml");
    let base = format!("http://127.0.0.1:{port}");
    let cookie = format!("{}=hazeflow-demo", hazeflow::web::dashboard::SESSION_COOKIE);
    let form = || async {
        let page = http
            .get(format!("{base}/consultations"))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("the page");
        assert_eq!(page.status(), StatusCode::OK);
        csrf_of(&page.text().await.expect("HTML"))
    };
    let post = |csrf: String| async {
        let r = http
            .post(format!("{base}/consultations/run"))
            .header("cookie", &cookie)
            .form(&[("csrf", csrf)])
            .send()
            .await
            .expect("posted");
        r.status()
    };
    let before = form().await;
    assert!(before.starts_with("k0."), "the legacy key signs until a rotation: {before}");

    // Rotated with the CLI beside the running daemon, put live by `hazeflow reload`.
    let out = hazeflow_command(dir.path())
        .args(["token-key", "rotate", "--session", "--config"])
        .arg(&config)
        .output()
        .await
        .expect("hazeflow token-key runs");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("made session key k1 ("),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = data.join("session-keys/k1.key");
    assert_eq!(std::fs::metadata(&key).expect("k1").permissions().mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::metadata(data.join("session-keys"))
            .expect("the folder")
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    let out = hazeflow_command(dir.path())
        .args(["--server", &base, "--token", "hazeflow-demo", "reload"])
        .output()
        .await
        .expect("hazeflow reload runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("dashboard session keys k0, k1 (k1 signs)"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The form served before the rotation is accepted after it; the new forms name k1.
    assert_eq!(
        post(before.clone()).await,
        StatusCode::SEE_OTHER,
        "signed by k0 before the rotation"
    );
    let after = form().await;
    assert!(after.starts_with("k1."), "the newest signs: {after}");
    assert_eq!(post(after.clone()).await, StatusCode::SEE_OTHER);
    // A token of an earlier release (no key id) is read as k0's; a forged one is refused.
    let legacy = before.trim_start_matches("k0.").to_string();
    assert_eq!(post(legacy).await, StatusCode::SEE_OTHER, "a token without a key id is k0's");
    assert_ne!(
        post(after.replacen("k1.", "k0.", 1)).await,
        StatusCode::SEE_OTHER,
        "k1's MAC under k0"
    );
    let out = hazeflow_command(dir.path())
        .args(["token-key", "list", "--session", "--config"])
        .arg(&config)
        .output()
        .await
        .expect("hazeflow token-key runs");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("k0\t") && said.contains("k1\tsigns new dashboard forms"), "{said}");

    // Once k0's file is gone (and the daemon reloaded), what k0 signed is refused.
    std::fs::remove_file(data.join("session.key")).expect("removed");
    let out = hazeflow_command(dir.path())
        .args(["--server", &base, "--token", "hazeflow-demo", "reload"])
        .output()
        .await
        .expect("hazeflow reload runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_ne!(post(before).await, StatusCode::SEE_OTHER, "k0 removed");
    assert_eq!(post(after).await, StatusCode::SEE_OTHER);
    stop_cleanly(&mut daemon).await;
}

/// A daemon run from the binary in `dir` (its log in `dir/{log_name}`, `env` added), with an orange
/// proposal for Lüliang posted over HTTP and signed: its round is fanned out into notices, which are
/// sent. What the tests read afterwards.
struct SignedLuliang {
    daemon: tokio::process::Child,
    base: String,
    token: &'static str,
    log: PathBuf,
    /// The signed warning.
    id: String,
    /// The configuration file the daemon was started with.
    config: PathBuf,
}

async fn signed_luliang(dir: &Path, log_name: &str, env: &[(&str, &str)]) -> SignedLuliang {
    signed_luliang_with(dir, log_name, env, |text| text).await
}

/// As [`signed_luliang`], with the configuration's text changed by `tweak` first.
async fn signed_luliang_with(dir: &Path, log_name: &str, env: &[(&str, &str)], tweak: impl FnOnce(String) -> String) -> SignedLuliang {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client");
    let port = free_port();
    let config = write_config(dir, port);
    let text = std::fs::read_to_string(&config).expect("the config");
    std::fs::write(&config, tweak(text)).expect("the config is written");
    let root = env!("CARGO_MANIFEST_DIR");
    let log = dir.join(log_name);
    let mut daemon = hazeflow_command(dir)
        .args(["daemon", "--config"])
        .arg(&config)
        .envs(env.iter().copied())
        .env("HAZEFLOW_LIST_SEED", format!("{root}/tests/fixtures/registry/good"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("a log file"))
        .spawn()
        .expect("the daemon starts");
    answering(&mut daemon, port, &http, &log).await;
    let base = format!("http://127.0.0.1:{port}");
    let token = "hazeflow-demo";
    let now = chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("+08:00"));
    let csv = forecast_csv(
        &now.format("%Y-%m-%d %H:%M").to_string(),
        "省生态环境监测和应急保障中心",
        "141100",
        &(now.date_naive() + chrono::Duration::days(1)).to_string(),
        &[160, 230, 240, 250, 180, 120, 100],
    );
    let posted = http
        .post(format!("{base}/api/v1/forecasts"))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .expect("posted");
    assert_eq!(posted.status(), StatusCode::CREATED, "{}", posted.text().await.unwrap_or_default());
    let id = eventually("a proposal for Lüliang", || async {
        let v: Value = http
            .get(format!("{base}/api/v1/warnings"))
            .bearer_auth(token)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        v["warnings"]
            .as_array()?
            .iter()
            .find(|w| w["region"] == "141100")
            .and_then(|w| w["id"].as_str().map(str::to_string))
    })
    .await;
    let signed = http
        .post(format!("{base}/api/v1/warnings/{id}/sign"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "without_record": "本测试不涉及会商意见" }))
        .send()
        .await
        .expect("signed");
    assert_eq!(signed.status(), StatusCode::OK, "{}", signed.text().await.unwrap_or_default());
    SignedLuliang {
        daemon,
        base,
        token,
        log,
        id,
        config,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_fan_out_and_delivery_spans_and_list_fields_as_json_arrays() {
    let dir = tempfile::TempDir::new().expect("a folder");
    let SignedLuliang {
        mut daemon,
        base,
        token,
        log,
        id,
        ..
    } = signed_luliang(
        dir.path(),
        "daemon.json.log",
        &[
            ("HAZEFLOW_LOG_FORMAT", "json"),
            ("HAZEFLOW_LOG_LEVEL", "info,hazeflow::notify::deliver=debug"),
        ],
    )
    .await;
    let lines = || -> Vec<Value> {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
            .collect()
    };
    let message = |l: &Value| l["fields"]["message"].as_str().unwrap_or_default().to_string();
    eventually("the fan-out's and a delivery's lines", || async {
        let all = lines();
        let fanned = all.iter().any(|l| message(l).starts_with("notices queued"));
        let sent = all.iter().any(|l| message(l) == "sent" && l["span"]["round"].is_u64());
        (fanned && sent).then_some(())
    })
    .await;
    // `hazeflow reload`: its line lists the playbook versions.
    let out = hazeflow_command(dir.path())
        .args(["--server", &base, "--token", token, "reload"])
        .output()
        .await
        .expect("hazeflow reload runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    stop_cleanly(&mut daemon).await;

    let all = lines();
    // A list field is a JSON array, not a string holding one.
    let reload = all
        .iter()
        .find(|l| message(l).starts_with("playbooks reloaded"))
        .expect("the reload's line");
    let versions = reload["fields"]["versions"]
        .as_array()
        .unwrap_or_else(|| panic!("versions is an array: {reload}"));
    assert!(
        !versions.is_empty() && versions.iter().all(|v| v.as_str().is_some_and(|s| s.contains('@'))),
        "{reload}"
    );
    assert_eq!(reload["span"]["name"], "request", "{reload}");
    // The fan-out's chunk runs in a span `job` naming the warning and the round.
    let fanned = all
        .iter()
        .find(|l| message(l).starts_with("notices queued"))
        .expect("a fan-out line");
    assert_eq!(fanned["span"]["kind"], "fanout", "{fanned}");
    assert_eq!(fanned["span"]["warning"], id.as_str(), "{fanned}");
    let round = fanned["span"]["round"].as_u64().unwrap_or_else(|| panic!("a round: {fanned}"));
    assert!(fanned["span"]["messages"].as_u64().is_some_and(|n| n > 0), "{fanned}");
    // A message's delivery runs in a span `job` naming the message and its warning, and for an
    // assignment's notice its round.
    let deliveries: Vec<&Value> = all
        .iter()
        .filter(|l| message(l) == "sent" && l["span"]["warning"] == id.as_str())
        .collect();
    assert!(
        deliveries
            .iter()
            .all(|l| l["span"]["kind"] == "delivery" && l["span"]["message"].is_string()),
        "{deliveries:?}"
    );
    let sent = deliveries
        .iter()
        .find(|l| l["span"]["round"].is_u64())
        .unwrap_or_else(|| panic!("a delivery of an assignment's notice: {deliveries:?}"));
    assert_eq!(sent["span"]["round"].as_u64(), Some(round), "{sent}");
    assert!(
        sent["span"]["template"]
            .as_str()
            .is_some_and(|t| t.starts_with("assignment_") || t.starts_with("department_")),
        "{sent}"
    );
    // The claim that took it lists the messages it claimed, as an array.
    let claimed = all
        .iter()
        .find(|l| message(l) == "messages claimed for sending")
        .expect("a claim's line");
    assert!(claimed["fields"]["messages"].as_array().is_some_and(|m| !m.is_empty()), "{claimed}");
}

/// The files that hold personal data are their owner's only from the start: each `.eml` file of the
/// mail folder (names and addresses) and every backup (the whole store), taken through the daemon or
/// from the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_files_and_backups_hold_personal_data_and_are_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::TempDir::new().expect("a folder");
    let SignedLuliang {
        mut daemon,
        base,
        token,
        config,
        ..
    } = signed_luliang(dir.path(), "daemon.log", &[]).await;
    let mail = dir.path().join("data").join("mail");
    let emls = || mails_in(dir.path());
    eventually("mail written to the folder", || async { (!emls().is_empty()).then_some(()) }).await;
    let mode = |p: &Path| std::fs::metadata(p).expect("the file is there").permissions().mode() & 0o777;
    assert_eq!(mode(&mail), 0o700, "the mail folder is its owner's only");
    for f in emls() {
        assert_eq!(mode(&f), 0o600, "{} holds names and addresses: its owner's only", f.display());
    }
    let backup = |out: PathBuf| {
        hazeflow_command(dir.path())
            .arg("backup")
            .arg(&out)
            .arg("--config")
            .arg(&config)
            .args(["--server", &base, "--token", token])
            .output()
    };
    let online = dir.path().join("online.redb");
    let done = backup(online.clone()).await.expect("the command runs");
    assert!(done.status.success(), "{done:?}");
    assert_eq!(mode(&online), 0o600, "a backup taken through the daemon is its owner's only");
    daemon.kill().await.expect("stopped");
    let _ = daemon.wait().await;
    let offline = dir.path().join("offline.redb");
    let done = backup(offline.clone()).await.expect("the command runs");
    assert!(String::from_utf8_lossy(&done.stdout).contains("from the file"), "{done:?}");
    assert_eq!(mode(&offline), 0o600, "a backup taken from the file is its owner's only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_name_the_warning_of_a_request_and_of_the_report_loops_job() {
    let dir = tempfile::TempDir::new().expect("a folder");
    let SignedLuliang {
        mut daemon,
        base,
        token,
        log,
        id,
        ..
    } = signed_luliang(
        dir.path(),
        "daemon.json.log",
        &[("HAZEFLOW_LOG_FORMAT", "json"), ("HAZEFLOW_LOG_LEVEL", "info")],
    )
    .await;
    let http = reqwest::Client::new();
    // The API's warning, the dashboard's page of it (answered with the login page's redirect: no
    // session), and a lift, which brings on the after-episode summary (`reports.summary: true`).
    for (path, request) in [
        (format!("/api/v1/warnings/{id}"), "req-api-warning"),
        (format!("/warnings/{id}"), "req-page-warning"),
        ("/api/v1/warnings".to_string(), "req-list"),
    ] {
        let resp = http
            .get(format!("{base}{path}"))
            .bearer_auth(token)
            .header("X-Request-Id", request)
            .send()
            .await
            .expect("an answer");
        assert!(resp.status().as_u16() < 500, "{path}: {}", resp.status());
    }
    let lifted = http
        .post(format!("{base}/api/v1/warnings/{id}/lift"))
        .bearer_auth(token)
        .header("X-Request-Id", "req-lift")
        .json(&json!({ "reason": "空气质量好转" }))
        .send()
        .await
        .expect("an answer");
    assert_eq!(lifted.status(), StatusCode::OK, "{}", lifted.text().await.unwrap_or_default());
    let lines = || -> Vec<Value> {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
            .collect()
    };
    let message = |l: &Value| l["fields"]["message"].as_str().unwrap_or_default().to_string();
    let summary = eventually("the summary's line", || async {
        lines().into_iter().find(|l| message(l) == "after-episode summary made")
    })
    .await;
    stop_cleanly(&mut daemon).await;
    let all = lines();
    let answered = |request: &str| -> Value {
        all.iter()
            .find(|l| message(l) == "answered" && l["span"]["id"] == request)
            .cloned()
            .unwrap_or_else(|| panic!("an access line for {request}"))
    };
    // A request whose path names a warning carries it; a list's does not.
    for request in ["req-api-warning", "req-page-warning", "req-lift"] {
        let line = answered(request);
        assert_eq!(line["span"]["name"], "request", "{line}");
        assert_eq!(line["span"]["warning"], id.as_str(), "{line}");
    }
    assert!(answered("req-list")["span"].get("warning").is_none(), "{}", answered("req-list"));
    // So does what the lift logs while it runs (the state change and who asked).
    let during_lift: Vec<&Value> = all.iter().filter(|l| l["span"]["id"] == "req-lift").collect();
    assert!(
        during_lift.len() >= 2 && during_lift.iter().all(|l| l["span"]["warning"] == id.as_str()),
        "{during_lift:?}"
    );
    // The report loop's summary runs in a job naming its warning.
    assert_eq!(summary["span"]["name"], "job", "{summary}");
    assert_eq!(summary["span"]["kind"], "summary", "{summary}");
    assert_eq!(summary["span"]["warning"], id.as_str(), "{summary}");
    assert!(
        summary["fields"]["report"].as_str().is_some_and(|r| r.contains(id.as_str())),
        "the summary made: {summary}"
    );
}

/// A sample's value in Prometheus text: the line of `name` whose labels include every `labels` pair.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let rest = series.strip_prefix(name)?;
        if !(rest.is_empty() || rest.starts_with('{')) {
            return None;
        }
        labels
            .iter()
            .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
            .then(|| value.parse().ok())
            .flatten()
    })
}

/// The sum of a family's samples whose labels include every `labels` pair.
fn total(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| labels.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

/// The real binary's `/metrics`, scraped over HTTP once a warning is signed and its round fanned out
/// and sent: `promtool check metrics` accepts it, and the families an operator graphs and alerts on are
/// there with values that fit what was done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binarys_metrics_pass_promtool_and_count_the_signed_warning_its_messages_and_the_build() {
    let dir = tempfile::TempDir::new().expect("a folder");
    let SignedLuliang {
        mut daemon,
        base,
        token,
        id,
        ..
    } = signed_luliang(dir.path(), "daemon.log", &[]).await;
    let http = reqwest::Client::new();
    let scrape = || async {
        let resp = http.get(format!("{base}/metrics")).send().await.expect("an answer");
        assert_eq!(resp.status(), StatusCode::OK);
        let kind = resp.headers()["content-type"].to_str().unwrap_or_default().to_string();
        assert!(kind.starts_with("text/plain"), "{kind}");
        resp.text().await.expect("a body")
    };
    // The fan-out's messages are queued and some sent (the mail goes to files in data/mail).
    let text = eventually("messages queued and sent", || async {
        let text = scrape().await;
        (total(&text, "hazeflow_notifications_queued_total", &[]) > 0.0
            && total(&text, "hazeflow_deliveries_total", &[("outcome", "sent")]) > 0.0)
            .then_some(text)
    })
    .await;
    promtool_accepts(&text);
    let warning = staff_json(&http, &format!("{base}/api/v1/warnings/{id}"), token).await;
    let status = warning["warning"]["status"].as_str().expect("a status").to_lowercase();
    assert_eq!(
        sample(&text, "hazeflow_warnings", &[("level", "orange"), ("status", &status)]),
        Some(1.0),
        "the signed warning ({status}):\n{text}"
    );
    assert_eq!(
        sample(&text, "hazeflow_build_info", &[("version", env!("CARGO_PKG_VERSION"))]),
        Some(1.0),
        "{text}"
    );
    // The outbox's depth is what was queued and not yet sent or given up.
    let queued = total(&text, "hazeflow_notifications_queued_total", &[]);
    let done = total(&text, "hazeflow_deliveries_total", &[("outcome", "sent")])
        + total(&text, "hazeflow_deliveries_total", &[("outcome", "failed")]);
    let depth = total(&text, "hazeflow_outbox_messages", &[]);
    assert!(
        done > 0.0 && depth >= 0.0 && depth == queued - done,
        "queued {queued}, done {done}, depth {depth}:\n{text}"
    );
    assert!(
        sample(&text, "hazeflow_acknowledgements", &[("level", "orange"), ("state", "assigned")]).is_some_and(|n| n > 0.0),
        "the round's assignments:\n{text}"
    );
    assert_eq!(sample(&text, "hazeflow_reload_last_ok", &[]), Some(1.0), "{text}");
    assert!(sample(&text, "hazeflow_events_total", &[]).is_some_and(|n| n > 0.0), "{text}");
    let started = sample(&text, "process_start_time_seconds", &[]).expect("process_start_time_seconds");
    let now = chrono::Utc::now().timestamp() as f64;
    assert!(started <= now && now - started < 600.0, "started {started}, now {now}");
    assert!(
        sample(&text, "process_resident_memory_bytes", &[]).is_some_and(|n| n > 0.0),
        "{text}"
    );
    stop_cleanly(&mut daemon).await;
}

/// The decoded subjects of the `.eml` files in `dir/data/mail`.
fn mail_subjects(dir: &Path) -> Vec<String> {
    mails_in(dir)
        .into_iter()
        .filter_map(|p| {
            let raw = std::fs::read(p).ok()?;
            let msg = mail_parser::MessageParser::default().parse(&raw)?;
            msg.subject().map(str::to_string)
        })
        .collect()
}

/// SIGHUP on the binary re-reads the notice templates: a broken template is refused with its file,
/// line and column and the old ones stay live; a mended, changed one is what the next notices say.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_templates_of_the_running_binary_and_refuses_a_broken_one() {
    let dir = tempfile::TempDir::new().expect("a folder");
    let root = env!("CARGO_MANIFEST_DIR");
    let playbooks = dir.path().join("playbooks");
    crate::common::copy_dir(&Path::new(root).join("playbooks"), &playbooks);
    let line = format!("{root}/playbooks");
    let SignedLuliang {
        mut daemon,
        base,
        token,
        id,
        ..
    } = signed_luliang_with(dir.path(), "daemon.log", &[], |text| {
        assert!(text.contains(&line), "{text}");
        text.replace(&line, &playbooks.display().to_string())
    })
    .await;
    let http = reqwest::Client::new();
    eventually("the start notices of both enterprises of Lüliang written", || async {
        (mail_subjects(dir.path()).iter().filter(|s| s.contains("应急减排任务通知")).count() == 2).then_some(())
    })
    .await;
    let subject = playbooks.join("templates/notify/assignment_cancelled.subject.j2");
    let shipped = std::fs::read_to_string(&subject).expect("the template");
    assert!(shipped.starts_with("【取消】"), "{shipped}");

    // Broken: refused with its place; the shipped template stays live.
    std::fs::write(&subject, shipped.replace("{{ level_name }}", "{{ level_name }")).expect("written");
    signal(&daemon, "HUP");
    let error = refused_reload(&http, port_of(&base)).await;
    assert!(
        error.starts_with(&format!("{}:1:", subject.display())) && error.contains("unexpected `}`"),
        "{error}"
    );

    // Mended with new words: SIGHUP puts it live, and the notices of the lift (before the start: a
    // cancellation, 无需执行) carry them.
    std::fs::write(&subject, shipped.replace("【取消】", "【取消·模板已更新】")).expect("written");
    signal(&daemon, "HUP");
    eventually("the mended templates are accepted", || async {
        let all = records_of(&http, port_of(&base), "playbooks_reloaded").await;
        all.last().filter(|r| r["errors"].as_array().is_none_or(Vec::is_empty)).cloned()
    })
    .await;
    let lifted = http
        .post(format!("{base}/api/v1/warnings/{id}/lift"))
        .bearer_auth(token)
        .json(&json!({ "reason": "空气质量好转" }))
        .send()
        .await
        .expect("an answer");
    assert_eq!(lifted.status(), StatusCode::OK, "{}", lifted.text().await.unwrap_or_default());
    // Both enterprises of Lüliang on the list (the coking plant and the cement works) were told of the
    // start, so both are told of the cancellation, each in its own mail. (A file the daemon is still
    // writing may parse with its subject cut short: wait for whole ones.)
    let new = eventually("the cancellation notices written", || async {
        let new: Vec<String> = mail_subjects(dir.path())
            .into_iter()
            .filter(|s| s.starts_with("【取消·模板已更新】"))
            .collect();
        (new.len() == 2 && new.iter().all(|s| s.ends_with("无需执行"))).then_some(new)
    })
    .await;
    assert_eq!(new, ["【取消·模板已更新】吕梁市重污染天气橙色预警已取消，应急减排措施无需执行"; 2]);
    assert!(
        !mail_subjects(dir.path())
            .iter()
            .any(|s| s.ends_with("应急减排措施无需执行") && s.starts_with("【取消】")),
        "no enterprise's cancellation with the old words"
    );
    stop_cleanly(&mut daemon).await;
}

/// The port of a `http://127.0.0.1:PORT` base.
fn port_of(base: &str) -> u16 {
    base.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port")
}

/// A staff GET answered with JSON.
async fn staff_json(http: &reqwest::Client, url: &str, token: &str) -> Value {
    http.get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("an answer")
        .json()
        .await
        .expect("JSON")
}

/// The acknowledgement links (`/ack/{token}`) in the notices written so far.
fn ack_links(dir: &Path) -> BTreeSet<String> {
    mails_in(dir)
        .into_iter()
        .filter_map(|p| {
            let raw = std::fs::read(p).ok()?;
            let msg = mail_parser::MessageParser::default().parse(&raw)?;
            Some(msg.body_text(0)?.to_string())
        })
        .flat_map(|text| {
            text.split("/ack/")
                .skip(1)
                .filter_map(|rest| {
                    let token: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                        .collect();
                    (token.len() > 16).then_some(token)
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// An acknowledgement answered 200 is kept when the daemon is SIGKILLed before the store file's next
/// durable commit: it is in the journal beside the file (one fdatasync per batch of them), and the
/// next start redoes it before it serves, with the name and time it was given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_answered_before_a_sigkill_are_redone_from_the_journal_at_the_next_start() {
    let dir = tempfile::TempDir::new().expect("a folder");
    // No checkpoint by time: the store file holds the acknowledgements durably only after a commit
    // that something else makes.
    let env = [("HAZEFLOW_STORE_CHECKPOINT_MS", "3600000")];
    let SignedLuliang {
        mut daemon,
        base,
        token,
        id,
        config,
        ..
    } = signed_luliang(dir.path(), "daemon.log", &env).await;
    let http = reqwest::Client::new();
    // Both enterprises of Lüliang are told of the start, each with its link.
    let links = eventually("the start notices of both Lüliang enterprises", || async {
        let told = mail_subjects(dir.path()).iter().filter(|s| s.contains("应急减排任务通知")).count();
        let links = ack_links(dir.path());
        (told == 2 && links.len() >= 2).then_some(links)
    })
    .await;
    // Let the delivery of the rest (departments) be recorded first: what follows is acknowledgements only.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // All but the last link before the kill; the last after the restart, before a clean stop.
    let (before, last) = {
        let mut all: Vec<String> = links.iter().cloned().collect();
        let last = all.pop().expect("links");
        (all, last)
    };
    let mut given = BTreeSet::new();
    for (i, link) in before.iter().enumerate() {
        let name = format!("值班人{i}");
        let r = http
            .post(format!("{base}/api/v1/acks/{link}"))
            .json(&json!({ "step": "received", "name": name, "phone": "13800000000" }))
            .send()
            .await
            .expect("an answer");
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap_or_default());
        given.insert(name);
    }
    let journal = dir.path().join("data/hazeflow.redb.journal");
    daemon.kill().await.expect("SIGKILL");
    let leftover = std::fs::read(&journal).expect("the journal beside the store");
    assert!(
        !leftover.is_empty(),
        "the acknowledgements were in the journal when the daemon was killed"
    );
    // A backup of the stopped file alone would miss them: refused, naming the journal, nothing written.
    let out = dir.path().join("backup.redb");
    let backup = hazeflow_command(dir.path())
        .arg("backup")
        .arg(&out)
        .arg("--config")
        .arg(&config)
        .output()
        .await
        .expect("the backup command runs");
    let said = String::from_utf8_lossy(&backup.stderr);
    assert!(
        !backup.status.success() && said.contains("hazeflow.redb.journal") && said.contains("start the daemon once"),
        "{said}"
    );
    assert!(!out.exists(), "no backup written");

    let log = dir.path().join("daemon.after-kill.log");
    let mut daemon = hazeflow_command(dir.path())
        .args(["daemon", "--config"])
        .arg(&config)
        .envs(env)
        .env(
            "HAZEFLOW_LIST_SEED",
            format!("{}/tests/fixtures/registry/good", env!("CARGO_MANIFEST_DIR")),
        )
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("a log file"))
        .spawn()
        .expect("the daemon starts again");
    answering(&mut daemon, port_of(&base), &http, &log).await;
    let v = staff_json(&http, &format!("{base}/api/v1/warnings/{id}/assignments?limit=1000"), token).await;
    let received: BTreeSet<String> = v["assignments"]
        .as_array()
        .expect("assignments")
        .iter()
        .flat_map(|a| a["acks"].as_array().cloned().unwrap_or_default())
        .filter(|k| k["step"] == "received")
        .filter_map(|k| k["name"].as_str().map(str::to_string))
        .collect();
    assert_eq!(received, given, "every acknowledgement answered 200 before the kill is recorded");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("acknowledgements redone from the store's journal"), "{text}");
    assert_eq!(std::fs::metadata(&journal).expect("the journal").len(), 0, "emptied once redone");
    // One more, then a clean stop: it is in the file itself, and the journal is empty.
    let r = http
        .post(format!("{base}/api/v1/acks/{last}"))
        .json(&json!({ "step": "received", "name": "最后一位", "phone": "13800000000" }))
        .send()
        .await
        .expect("an answer");
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap_or_default());
    stop_cleanly(&mut daemon).await;
    assert_eq!(
        std::fs::metadata(&journal).expect("the journal").len(),
        0,
        "a clean stop empties the journal"
    );
    let store = hazeflow::store::Store::open(&dir.path().join("data/hazeflow.redb")).expect("the store opens");
    let acknowledged = store
        .read(|r| r.events_after(0, usize::MAX))
        .expect("the log")
        .into_iter()
        .filter(|r| {
            matches!(
                r.body,
                hazeflow::store::RecordBody::Other(hazeflow::store::events::Event::Acknowledged(_))
            )
        })
        .count();
    store.close();
    drop(store);
    assert_eq!(acknowledged, links.len(), "each acknowledgement once in the log, the last one too");

    // A restore puts the backup in place and moves a journal left beside the old file aside with it:
    // the restored store does not redo acknowledgements made after its backup.
    let taken = hazeflow_command(dir.path())
        .arg("backup")
        .arg(&out)
        .arg("--config")
        .arg(&config)
        .output()
        .await
        .expect("the backup command runs");
    assert!(taken.status.success(), "{taken:?}");
    std::fs::write(&journal, &leftover).expect("a journal left over");
    let restored = hazeflow_command(dir.path())
        .arg("restore")
        .arg(&out)
        .arg("--config")
        .arg(&config)
        .output()
        .await
        .expect("restore runs");
    assert!(restored.status.success(), "{restored:?}");
    assert!(
        std::fs::metadata(&journal).map_or(true, |m| m.len() == 0),
        "no journal of the old file beside the restored one"
    );
    let aside: Vec<PathBuf> = std::fs::read_dir(dir.path().join("data"))
        .expect("the data folder")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains(".before-restore-") && p.to_string_lossy().ends_with(".journal"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(std::fs::read(&aside[0]).expect("the journal kept aside"), leftover);
}
