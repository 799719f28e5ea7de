//! Fixture stores for format upgrades (issue 14). `tests/fixtures/stores/format-N/` holds a store
//! written by a build of format `N` (`hazeflow.redb`) and its event log as that build served it
//! (`events.json`). Every later build must open each of them — upgrading it in place, after a backup
//! beside it — and keep every event; `hazeflow verify` must then pass. The fixtures are never
//! regenerated: a build of a new format adds its own beside the old ones.
//!
//! Made with `cargo test --test daemon make_the_format_fixture -- --ignored`, by the build whose
//! format it is (it refuses to overwrite a fixture that exists): a list of two enterprises, an orange
//! proposal for Lüliang signed (assignments, timers, notices in the outbox), a directive, a
//! consultation on demand and a reload.

use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

use hazeflow::store::{Checked, FORMAT_VERSION, Store};

fn fixture_dir(format: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/stores/format-{format}"))
}

/// The formats of the fixtures kept in the repository, oldest first.
fn fixture_formats() -> Vec<u32> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stores");
    let mut out: Vec<u32> = std::fs::read_dir(&root)
        .expect("tests/fixtures/stores")
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_prefix("format-")?.parse().ok())
        .collect();
    out.sort_unstable();
    out
}

/// The events a fixture's build served.
fn kept_events(format: u32) -> Vec<Value> {
    let text = std::fs::read_to_string(fixture_dir(format).join("events.json")).expect("events.json");
    let kept: Value = serde_json::from_str(&text).expect("JSON");
    let kept = kept["events"].as_array().cloned().expect("events");
    assert!(kept.len() > 20, "a fixture with a history");
    kept
}

/// `hazeflow verify` (the real binary) on the store of `data`: its stdout, after asserting it passed.
fn verify(data: &Path) -> String {
    let config = data.with_file_name("verify.yaml");
    std::fs::write(&config, format!("data_dir: {}\n", data.display())).expect("a config");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hazeflow"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("HAZEFLOW_") || k == "RUST_LOG") {
        cmd.env_remove(k);
    }
    let out = cmd
        .arg("verify")
        .arg("--config")
        .arg(&config)
        .arg("--scratch")
        .arg(data.parent().expect("a parent"))
        .output()
        .expect("verify runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && stdout.contains("every table decodes and the views agree with the log"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn with_list(s: &mut hazeflow::config::Settings) {
    s.list_seed = Some(PathBuf::from("tests/fixtures/registry/good"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes tests/fixtures/stores/format-N; run by hand with the build of that format"]
async fn make_the_format_fixture() {
    let out = fixture_dir(FORMAT_VERSION);
    assert!(
        !out.exists(),
        "{} exists: a fixture is made once, by the build of its format, and never again (the next format adds its own)",
        out.display()
    );
    let app = spawn_app_with(tempfile::TempDir::new().expect("a folder"), clock(), with_list).await;
    let f = forecast_csv(
        "2026-12-01 14:00",
        "省生态环境监测和应急保障中心",
        "141100",
        "2026-12-02",
        &[160, 230, 240, 250, 180, 120, 100],
    );
    let (status, body) = app.submit(f).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let w = eventually("a proposal for Lüliang", || async { app.warning_of("141100").await }).await;
    let id = w["id"].as_str().expect("an id").to_string();
    let (status, body) = app
        .post_json(
            &format!("/api/v1/warnings/{id}/sign"),
            Some(HEAD),
            &serde_json::json!({ "without_record": "本测试不涉及会商意见" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    eventually("the list's enterprises assigned", || async {
        let (_, b) = app.get(&format!("/api/v1/warnings/{id}/assignments"), Some(HEAD)).await;
        b["assignments"].as_array().is_some_and(|a| !a.is_empty()).then_some(())
    })
    .await;
    let directive = json!({
        "id": "晋气指〔2026〕9号", "name": "区域应急指令", "min_level": "yellow", "regions": ["140200"],
        "from": "2026-12-02 00:00", "until": "2026-12-04 00:00",
    });
    let (status, body) = app.post_json("/api/v1/directives", Some(HEAD), &directive).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app.post("/api/v1/consultations", Some(HEAD)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app.post("/api/v1/playbooks/reload", Some(HEAD)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Let the fan-out and delivery settle, so the outbox and the cursors are in the file too.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let events = app.events().await;
    let db = app.state.settings.db_path();
    let dir = app.stop().await;
    std::fs::create_dir_all(&out).expect("the fixture folder");
    std::fs::copy(&db, out.join("hazeflow.redb")).expect("the store copied");
    let text = serde_json::to_string_pretty(&json!({ "format": FORMAT_VERSION, "events": events })).expect("JSON");
    std::fs::write(out.join("events.json"), text + "\n").expect("events.json written");
    drop(dir);
}

/// Starts the daemon on a copy of the format-`format` fixture and checks every event is kept and
/// the fixture's warning is there; returns the stopped daemon's folder.
async fn start_on_a_copy(format: u32, tweak: impl FnOnce(&mut hazeflow::config::Settings)) -> (tempfile::TempDir, Vec<Value>) {
    let kept = kept_events(format);
    let app = spawn_app_with(copy_of(format), clock(), |s| {
        with_list(s);
        tweak(s);
    })
    .await;
    let now = app.events().await;
    assert!(
        now.len() >= kept.len() && now[..kept.len()] == kept[..],
        "every event of the format-{format} store is kept, in order (then what this start added)"
    );
    let w = app.warning_of("141100").await.expect("the fixture's warning is there");
    assert_eq!(w["level"], "orange", "{w}");
    (app.stop().await, kept)
}

/// A temporary folder whose `data/hazeflow.redb` is a copy of the fixture (which never changes).
fn copy_of(format: u32) -> tempfile::TempDir {
    let dir = tempfile::TempDir::new().expect("a folder");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data");
    std::fs::copy(fixture_dir(format).join("hazeflow.redb"), data.join("hazeflow.redb")).expect("copied");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_store_opens_upgraded_in_place_with_a_backup_and_keeps_every_event() {
    if on_postgres() {
        // Embedded files of earlier formats; the PostgreSQL upgrade has its own test below.
        return;
    }
    let formats = fixture_formats();
    assert!(formats.contains(&2), "the format-2 fixture is kept: {formats:?}");
    assert!(
        formats.contains(&FORMAT_VERSION),
        "this build's format has its fixture (make_the_format_fixture): {formats:?}"
    );
    for format in formats {
        // `hazeflow verify` of this build accepts the old file as it is, and changes no byte of it.
        let dir = copy_of(format);
        let db = dir.path().join("data/hazeflow.redb");
        let before = std::fs::read(&db).expect("the copy");
        let said = verify(db.parent().expect("data"));
        assert_eq!(std::fs::read(&db).expect("the copy"), before, "verify changed the file");
        if format < FORMAT_VERSION {
            assert!(said.contains(&format!("format {format}: older than")), "{said}");
        }
        drop(dir);

        let (dir, kept) = start_on_a_copy(format, |_| {}).await;
        let data = dir.path().join("data");
        let backup = data.join(format!("hazeflow.redb.format-{format}.bak"));
        if format < FORMAT_VERSION {
            // The backup written before the step: the store as it was, every event of the fixture.
            let scratch = tempfile::TempDir::new().expect("a folder");
            let old = Checked::open_copy(&backup, scratch.path()).expect("the backup opens");
            let (version, events) = old.read(|r| Ok((r.format_version()?, r.event_count()?))).expect("the backup reads");
            assert_eq!((version, events), (Some(format), kept.len() as u64), "the backup is the old store");
        } else {
            assert!(!backup.exists(), "a store of the current format is not backed up at start");
        }
        // Upgraded in place: this build's format, and the history says how it got there.
        let store = Store::open(&data.join("hazeflow.redb")).expect("opens");
        let (version, history) = store.read(|r| Ok((r.format_version()?, r.store_history()?))).expect("reads");
        store.close();
        assert_eq!(version, Some(FORMAT_VERSION));
        let steps: Vec<(u32, &str)> = history.iter().map(|h| (h.format, h.how.as_str())).collect();
        if format == 2 {
            assert_eq!(steps, [(2, "found"), (3, "upgraded")], "{history:?}");
            assert_eq!(
                history[0].at,
                Some("2026-12-01T07:00:00Z".parse().expect("a time")),
                "the log's first record"
            );
            assert_eq!(history[1].events, kept.len() as u64, "{history:?}");
            assert_eq!(history[1].backup.as_deref(), Some(backup.to_str().expect("UTF-8")));
        }
        assert_eq!(history.last().map(|h| h.format), Some(FORMAT_VERSION), "{history:?}");
        // And `hazeflow verify` passes on the upgraded store, naming its history.
        let said = verify(&data);
        assert!(said.contains(&format!("history: format {FORMAT_VERSION}")), "{said}");
        assert!(!said.contains("older than"), "{said}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_store_of_format_2_is_upgraded_by_the_daemon_after_a_backup() {
    let Some(cluster) = crate::common::pg::PgCluster::start_or_skip() else {
        return;
    };
    let url = cluster.database("upgrade");
    // The format-2 fixture moved into PostgreSQL: the file is opened (upgraded, as every open does),
    // copied, and the copy put back to format 2 (format 3 differs from 2 by the history alone).
    let source_dir = copy_of(2);
    let source = Store::open(&source_dir.path().join("data/hazeflow.redb")).expect("the fixture opens");
    let pg = Store::open_postgres(&url).expect("PostgreSQL opens");
    pg.copy_from(&source).await.expect("copied");
    pg.close();
    source.close();
    let sql = {
        let url = url.clone();
        move |statement: &'static str| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("connects");
                c.batch_execute(statement).expect("runs");
            })
            .join()
            .expect("the statement ran");
        }
    };
    sql("UPDATE hazeflow_meta SET v = '\\x02000000'::bytea WHERE k = 'format_version'; DELETE FROM hazeflow_meta WHERE k = 'history'");
    // A command refuses it: the daemon upgrades.
    let refused = Store::open_postgres_client(&url).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(refused.contains("has format 2, older than"), "{refused}");

    let (dir, kept) = start_on_a_copy(2, |s| s.store.url = Some(url.clone())).await;
    // The backup before the step: an embedded file of the format-2 store, in the data folder.
    let backups: Vec<PathBuf> = std::fs::read_dir(dir.path().join("data/backups"))
        .expect("data/backups")
        .map(|e| e.expect("an entry").path())
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    let name = backups[0].file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
    assert!(name.starts_with("hazeflow-format-2-") && name.ends_with(".redb"), "{name}");
    let scratch = tempfile::TempDir::new().expect("a folder");
    let old = Checked::open_copy(&backups[0], scratch.path()).expect("the backup opens");
    let (version, events) = old.read(|r| Ok((r.format_version()?, r.event_count()?))).expect("the backup reads");
    assert_eq!((version, events), (Some(2), kept.len() as u64));
    // Upgraded, and it checks as `hazeflow verify` checks a file.
    let pg = Store::open_postgres_client(&url).expect("a current store opens");
    let (version, history, problems) = pg
        .read(|r| {
            let mut p = r.check_tables()?.problems;
            p.extend(r.verify_views()?);
            Ok((r.format_version()?, r.store_history()?, p))
        })
        .expect("reads");
    pg.close();
    assert_eq!(version, Some(FORMAT_VERSION));
    assert_eq!(problems, Vec::<String>::new());
    let steps: Vec<(u32, &str)> = history.iter().map(|h| (h.format, h.how.as_str())).collect();
    assert_eq!(steps, [(2, "found"), (3, "upgraded")], "{history:?}");
}
