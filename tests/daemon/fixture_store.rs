//! Fixture stores for format upgrades (issue 14, item 2). `tests/fixtures/stores/format-N/` holds a
//! store written by a build of format `N` (`hazeflow.redb`) and its event log as that build served it
//! (`events.json`). Every later build must open it — upgrading it in place once a migration exists —
//! and keep every event. Today the fixture is of the current format (2), so this test guards the next
//! format change: bumping `FORMAT_VERSION` without a migration makes it fail ("cannot be read in
//! place").
//!
//! Made (again) with `cargo test --test daemon make_the_format_fixture -- --ignored`, by the build
//! whose format it is: a list of two enterprises, an orange proposal for Lüliang signed (assignments,
//! timers, notices in the outbox), a directive, a consultation on demand and a reload.

use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// The format of the fixture kept in the repository.
const FIXTURE_FORMAT: u32 = 2;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/stores/format-{FIXTURE_FORMAT}"))
}

fn with_list(s: &mut hazeflow::config::Settings) {
    s.list_seed = Some(PathBuf::from("tests/fixtures/registry/good"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes tests/fixtures/stores/format-N; run by hand with the build of that format"]
async fn make_the_format_fixture() {
    assert_eq!(
        hazeflow::store::FORMAT_VERSION,
        FIXTURE_FORMAT,
        "a fixture is made by the build of its own format: add format-{} beside the old one and keep both",
        hazeflow::store::FORMAT_VERSION
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
    let (status, body) = app.post(&format!("/api/v1/warnings/{id}/sign"), Some(HEAD)).await;
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
    let out = fixture_dir();
    std::fs::create_dir_all(&out).expect("the fixture folder");
    std::fs::copy(&db, out.join("hazeflow.redb")).expect("the store copied");
    let text = serde_json::to_string_pretty(&json!({ "format": FIXTURE_FORMAT, "events": events })).expect("JSON");
    std::fs::write(out.join("events.json"), text + "\n").expect("events.json written");
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_of_the_previous_format_opens_and_keeps_every_event() {
    if on_postgres() {
        // An embedded file of an earlier format; it runs in the default suite.
        return;
    }
    let fixture = fixture_dir();
    let kept: Value = serde_json::from_str(&std::fs::read_to_string(fixture.join("events.json")).expect("events.json")).expect("JSON");
    let kept = kept["events"].as_array().cloned().expect("events");
    assert!(kept.len() > 20, "a fixture with a history");
    // A copy: the fixture in the repository never changes.
    let dir = tempfile::TempDir::new().expect("a folder");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data");
    std::fs::copy(fixture.join("hazeflow.redb"), data.join("hazeflow.redb")).expect("copied");
    let app = spawn_app_with(dir, clock(), with_list).await;
    let now = app.events().await;
    assert!(
        now.len() >= kept.len() && now[..kept.len()] == kept[..],
        "every event of the format-{FIXTURE_FORMAT} store is kept, in order (then what this start added)"
    );
    let w = app.warning_of("141100").await.expect("the fixture's warning is there");
    assert_eq!(w["level"], "orange", "{w}");
    app.stop().await;
}
