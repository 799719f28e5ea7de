//! Issue 13 item 4: the store when the disk fails (a real tmpfs that fills up), files that are not
//! a store, and `hazeflow verify` on damaged files.

use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::helpers::*;

const TAIYUAN: &str = "140100";

/// A tmpfs of `size` mounted at a folder, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts one, or says why it cannot (not root, no `mount`, a container without the right).
    fn mount(at: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("mount -t tmpfs failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes zeros into `path` until the file system is full.
fn fill(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).expect("the filler");
    let chunk = vec![0u8; 64 << 10];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
}

fn week(i: u32) -> Vec<u32> {
    (0..7).map(|d| 60 + (i * 7 + d) % 90).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_makes_healthz_503_with_the_reason_and_the_store_writes_again_once_space_is_freed_and_the_duty_staff_are_told() {
    if on_postgres() {
        // The embedded file's own fault (its file system, its bytes); it runs in the default suite.
        return;
    }
    let dir = TempDir::new().expect("a folder");
    let data = dir.path().join("data");
    let mount = match Tmpfs::mount(&data, "24m") {
        Ok(m) => m,
        Err(why) => {
            println!("SKIPPED: no tmpfs can be mounted here ({why}); the disk-full test needs root");
            return;
        }
    };
    // The clock: Tuesday 2026-12-01 15:00, the province's duty officer 张伟 on shift.
    let app = spawn_app_with(dir, clock(), |_| {}).await;
    let (status, _) = app.get("/healthz", None).await;
    assert_eq!(status, StatusCode::OK);

    fill(&data.join("filler"));
    let mut refused = None;
    for i in 0..400 {
        let csv = forecast_csv("2026-12-01 14:00", &format!("{SOURCE}{i}"), TAIYUAN, "2026-12-02", &week(i));
        let (status, body) = app.submit_file(&format!("f{i}.csv"), csv).await;
        if status.is_server_error() {
            refused = Some((i, body));
            break;
        }
    }
    let (failed_at, body) = refused.expect("a write fails once the disk is full");
    assert!(body["error"].as_str().is_some(), "a JSON error: {body}");

    // While writes fail: 503 with the reason, and another write is refused with it — also after
    // several reopen attempts (250 ms, 500 ms, 1 s): an empty commit succeeds on a full disk and
    // must not put the store back in service.
    tokio::time::sleep(std::time::Duration::from_millis(2000)).await;
    let (status, health) = app.get("/healthz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{health}");
    assert_eq!(health["status"], "store_failing", "{health}");
    let reason = health["reason"].as_str().expect("a reason");
    assert!(reason.contains("No space left on device"), "{reason}");
    let csv = forecast_csv("2026-12-01 14:00", "refused", TAIYUAN, "2026-12-02", &week(999));
    let (status, body) = app.submit_file("refused.csv", csv).await;
    assert!(status.is_server_error(), "{status} {body}");
    assert!(
        body["error"].as_str().unwrap_or_default().contains("No space left on device"),
        "{body}"
    );

    // Space again: the store is reopened by itself and writes.
    std::fs::remove_file(data.join("filler")).expect("the filler goes");
    eventually("healthz is ok again", || async {
        let (status, body) = app.get("/healthz", None).await;
        (status == StatusCode::OK).then_some(body)
    })
    .await;
    let csv = forecast_csv("2026-12-01 14:00", "after", TAIYUAN, "2026-12-02", &week(failed_at));
    let (status, body) = app.submit_file("after.csv", csv).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // The outage is recorded and told to the province's duty officer, in Chinese.
    let outage = eventually("the outage is recorded", || async {
        app.records("store_outage").into_iter().next()
    })
    .await;
    assert!(
        outage["data"]["reason"].as_str().unwrap_or_default().contains("No space left"),
        "{outage}"
    );
    assert!(outage["data"]["refused"].as_u64().unwrap_or(0) >= 1, "{outage}");
    let told = eventually("the duty staff are told", || async {
        let msgs: Vec<_> = app.outbox().into_iter().filter(|m| m.template == "store_fault").collect();
        (!msgs.is_empty()).then_some(msgs)
    })
    .await;
    assert!(told.iter().any(|m| m.recipient.name == "张伟"), "{told:?}");
    assert_eq!(told[0].data["outage"]["cause"], "磁盘空间已满", "{:?}", told[0].data);
    let dir = app.stop().await;
    drop(mount);
    drop(dir);
}

fn config_for(dir: &Path) -> PathBuf {
    let text = hazeflow::config::DEFAULT_YAML
        .replace("demo: true", "demo: false")
        .replace("./data", &format!("{}/data", dir.display()));
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).expect("the config");
    path
}

fn hazeflow(args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hazeflow"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("HAZEFLOW_") || k == "RUST_LOG") {
        cmd.env_remove(k);
    }
    cmd.args(args).env("HAZEFLOW_LIST_SEED", "").output().expect("hazeflow runs")
}

fn sha(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).expect("the file")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_or_foreign_store_file_is_refused_at_start_naming_it_and_left_as_it_was() {
    for (what, bytes) in [
        ("empty", Vec::new()),
        ("foreign", b"SQLite format 3\0 not a redb file at all".to_vec()),
    ] {
        let dir = TempDir::new().expect("a folder");
        let db = dir.path().join("data").join("hazeflow.redb");
        std::fs::create_dir_all(db.parent().expect("a parent")).expect("data");
        std::fs::write(&db, &bytes).expect("the file");
        let settings = settings_in(dir.path());
        let err = match hazeflow::app::Application::build(settings, clock()).await {
            Ok(_) => panic!("{what}: the daemon started on it"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains(&db.display().to_string()), "{what}: {err}");
        assert!(err.contains("refusing to start on it"), "{what}: {err}");
        assert_eq!(std::fs::read(&db).expect("still there"), bytes, "{what}: the file changed");
        // The CLI says the same and exits non-zero.
        let config = config_for(dir.path());
        let out = hazeflow(&["verify", "--config", config.to_str().expect("utf-8")]);
        assert!(!out.status.success(), "{what}");
        assert_eq!(std::fs::read(&db).expect("still there"), bytes, "{what}: verify changed the file");
    }
}

/// A store with forecasts, a consultation, a signed warning and its notices: the daemon run, then
/// stopped.
async fn a_store() -> (TempDir, PathBuf) {
    let app = spawn_app(clock()).await;
    let (status, body) = app
        .submit(forecast_csv(
            "2026-12-01 14:00",
            SOURCE,
            TAIYUAN,
            "2026-12-02",
            &[160, 230, 240, 250, 180, 120, 100],
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app.post("/api/v1/consultations", Some(HEAD)).await;
    assert!(status.is_success(), "{body}");
    let w = eventually("a proposal", || async { app.warning_of(TAIYUAN).await }).await;
    let id = w["id"].as_str().expect("an id").to_string();
    let (status, body) = app
        .post_json(
            &format!("/api/v1/warnings/{id}/sign"),
            Some(HEAD),
            &serde_json::json!({ "without_record": "本测试不涉及会商意见" }),
        )
        .await;
    assert!(status.is_success(), "{body}");
    for i in 0..30 {
        let csv = forecast_csv("2026-12-01 14:30", &format!("{SOURCE}{i}"), "140200", "2026-12-02", &week(i));
        let (status, body) = app.submit_file(&format!("d{i}.csv"), csv).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let dir = app.stop().await;
    let db = dir.path().join("data").join("hazeflow.redb");
    (dir, db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reads_a_sound_store_without_changing_a_byte_and_reports_flipped_bits_without_a_panic() {
    if on_postgres() {
        // The embedded file's own fault (its file system, its bytes); it runs in the default suite.
        return;
    }
    let (dir, db) = a_store().await;
    let config = config_for(dir.path());
    let config = config.to_str().expect("utf-8");
    let before = sha(&db);
    let out = hazeflow(&["verify", "--config", config]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("every table decodes and the views agree with the log"), "{stdout}");
    assert_eq!(sha(&db), before, "verify changed the sound file");

    // What the daemon reads from the sound file: its whole log and outbox.
    let sound = std::fs::read(&db).expect("the file");
    let reference = read_back(&sound).await;

    // Flipped bits in several places, each on its own copy of the sound file. Verify must never pass
    // a file the daemon then reads differently (or not at all): a flip it passes landed in space no
    // committed page uses, and the daemon started on that file reads exactly what it read before.
    let len = sound.len();
    let mut damaged_found = 0;
    // Spread over the file, each on a byte that holds something (a zero byte is more likely free space).
    let places: Vec<usize> = [4096, len / 7, len / 3, len / 2, 2 * len / 3, 5 * len / 6, len - 4096]
        .iter()
        .map(|from| (*from..len).find(|i| sound[*i] != 0).unwrap_or(*from))
        .collect();
    for at in &places {
        let mut bytes = sound.clone();
        bytes[*at] ^= 0b0101_0101;
        std::fs::write(&db, &bytes).expect("the damaged file");
        let before = sha(&db);
        let out = hazeflow(&["verify", "--config", config]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(sha(&db), before, "verify changed the damaged file (byte {at})");
        assert!(
            !stderr.contains("panicked at") || stderr.contains("damaged:"),
            "a raw panic at byte {at}: {stderr}"
        );
        assert!(out.status.code().is_some(), "verify was killed at byte {at}: {stderr}");
        if out.status.success() {
            assert_eq!(
                read_back(&bytes).await,
                reference,
                "verify passed byte {at}, but the daemon reads that file differently"
            );
        } else {
            damaged_found += 1;
            assert!(
                stdout.contains("problems: the store is damaged or inconsistent"),
                "byte {at}: {stdout}"
            );
            assert!(
                stderr.contains("damaged: ") && stderr.contains(&db.display().to_string()),
                "byte {at}: {stderr}"
            );
        }
    }
    // How many land in pages a committed tree uses depends on the layout; at least one does.
    assert!(damaged_found >= 1, "none of {} flips reported", places.len());
    println!(
        "{damaged_found} of {} flips reported as damage, the others read back identically",
        places.len()
    );
}

/// Opens a copy of a store file as the daemon does and reads back its whole log, outbox and views
/// (as JSON).
async fn read_back(file: &[u8]) -> Vec<serde_json::Value> {
    let dir = TempDir::new().expect("a folder");
    let path = dir.path().join("hazeflow.redb");
    std::fs::write(&path, file).expect("the copy");
    let store = hazeflow::store::Store::open(&path).expect("the store opens");
    let out = store
        .read(|r| {
            let mut out: Vec<serde_json::Value> = r.events_after(0, usize::MAX)?.iter().map(|r| serde_json::json!(r)).collect();
            out.extend(hazeflow::notify::outbox::all_messages(r)?.iter().map(|m| serde_json::json!(m)));
            out.extend(r.region_states()?.iter().map(|(c, s)| serde_json::json!([c, s])));
            out.push(serde_json::json!(r.verify_views()?));
            Ok(out)
        })
        .expect("the store reads");
    store.close();
    out
}

/// The real binary on a disk that fills up: once a commit works again, the outage loop records the
/// outage inside a job span of its own (`job{kind=outage, outages, since}`), in the JSON log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_records_a_store_outage_in_a_job_span_of_its_own_once_the_disk_has_room_again() {
    if on_postgres() {
        return;
    }
    let dir = TempDir::new().expect("a folder");
    let data = dir.path().join("data");
    let mount = match Tmpfs::mount(&data, "24m") {
        Ok(m) => m,
        Err(why) => {
            println!("SKIPPED: no tmpfs can be mounted here ({why}); the disk-full test needs root");
            return;
        }
    };
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("a client");
    let port = free_port();
    let config = crate::restart::write_config(dir.path(), port);
    // The log outside the full disk.
    let log = dir.path().join("daemon.json.log");
    let mut daemon = crate::restart::hazeflow_command(dir.path())
        .args(["daemon", "--config"])
        .arg(&config)
        .env("HAZEFLOW_LOG_FORMAT", "json")
        .env("HAZEFLOW_LOG_LEVEL", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("a log file"))
        .spawn()
        .expect("the daemon starts");
    crate::restart::answering(&mut daemon, port, &http, &log).await;
    let base = format!("http://127.0.0.1:{port}");
    fill(&data.join("filler"));
    let mut refused = false;
    for i in 0..400 {
        let csv = forecast_csv("2026-12-01 14:00", &format!("{SOURCE}{i}"), TAIYUAN, "2026-12-02", &week(i));
        let resp = http
            .post(format!("{base}/api/v1/forecasts"))
            .bearer_auth("hazeflow-demo")
            .header("content-type", "text/csv")
            .header("x-file-name", format!("f{i}.csv"))
            .body(csv)
            .send()
            .await
            .expect("an answer");
        if resp.status().is_server_error() {
            refused = true;
            break;
        }
    }
    assert!(refused, "a forecast is refused once the disk is full");
    std::fs::remove_file(data.join("filler")).expect("the filler goes");
    let lines = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
            .collect()
    };
    let recorded = eventually("the outage is recorded", || async {
        lines()
            .into_iter()
            .find(|l| l["fields"]["message"] == "store outage recorded; the duty staff are told")
    })
    .await;
    assert_eq!(recorded["span"]["name"], "job", "{recorded}");
    assert_eq!(recorded["span"]["kind"], "outage", "{recorded}");
    assert!(recorded["span"]["outages"].as_u64().is_some_and(|n| n >= 1), "{recorded}");
    assert!(
        recorded["span"]["since"]
            .as_str()
            .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
        "{recorded}"
    );
    daemon.kill().await.expect("stopped");
    drop(mount);
}
