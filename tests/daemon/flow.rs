//! The flow of an episode, as duty staff live it: a forecast arrives, the consultation proposes a
//! level, the right person signs, the warning starts, a worse forecast upgrades it, a clean one
//! lifts it after the lift window. Directives and playbook reloads on a running daemon.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// Taiyuan (太原市), governed by playbooks/taiyuan.yaml: yellow/orange signed by a deputy head, red
/// by the head, lifted after 48 h below the level.
const TAIYUAN: &str = "140100";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forecast_in_the_inbox_becomes_an_orange_warning_that_is_signed_upgraded_to_red_and_lifted_after_the_lift_window() {
    // 2026-12-01 15:00: the forecast centre drops its forecast into the inbox: Taiyuan above 150 for
    // four days from tomorrow, above 200 on two of them.
    let app = spawn_app(clock()).await;
    let orange = forecast_csv("2026-12-01 14:00", "省生态环境监测和应急保障中心", TAIYUAN, "2026-12-01", &[120, 160, 230, 240, 180, 120, 100]);
    app.drop_in_inbox("taiyuan-20261201-1400.csv", &orange);

    // → a consultation is held on it and proposes orange, awaiting a deputy head's signature.
    let w = eventually("the consultation proposes a warning for Taiyuan", || async { app.warning_of(TAIYUAN).await }).await;
    assert_eq!((w["status"].as_str(), w["level"].as_str(), w["pending_sign_off"].as_bool()), (Some("pending"), Some("orange"), Some(true)), "{w}");
    assert_eq!(w["playbook"], "taiyuan@2024.1");
    let id = w["id"].as_str().expect("an id").to_string();
    assert_eq!(id, "140100-20261201-1");
    let (status, body) = app.get("/api/v1/consultations", Some(DUTY)).await;
    assert_eq!(status, StatusCode::OK);
    let held = &body["consultations"][0];
    assert_eq!(held["trigger"], "forecast received", "{held}");
    let assessment = held["assessments"].as_array().expect("assessments").iter().find(|a| a["region"] == TAIYUAN).expect("Taiyuan assessed").clone();
    assert_eq!(assessment["level"], "orange", "{assessment}");
    assert!(assessment["rule"].as_str().is_some_and(|r| r.contains("200") || r.contains("150")), "the rule that fired is named: {assessment}");
    let orange_id = assessment["forecast_id"].as_str().expect("the forecast used").to_string();
    assert_eq!(files_in(&app.inbox().join("processed")), ["taiyuan-20261201-1400.csv"]);
    assert!(files_in(&app.inbox()).is_empty(), "the inbox is empty again");

    // 15:05: the duty officer tries to sign: refused, and nothing changes.
    let seq = app.last_seq().await;
    let before = app.warnings().await;
    let (status, body) = app.post(&format!("/api/v1/warnings/{id}/sign"), Some(DUTY)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "role \"duty_officer\" may not sign a orange warning (needs deputy_head)");
    assert_eq!(app.last_seq().await, seq, "a refused signature is not recorded");
    assert_eq!(app.warnings().await, before);

    // 15:10: the deputy head signs → issued, starting at least 24 h (the lead time) later.
    app.set_clock("2026-12-01 15:10");
    let (status, body) = app.post(&format!("/api/v1/warnings/{id}/sign"), Some(DEPUTY)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let w = app.warning_of(TAIYUAN).await.expect("the warning");
    assert_eq!((w["status"].as_str(), w["level"].as_str(), w["pending_sign_off"].as_bool()), (Some("issued"), Some("orange"), Some(false)), "{w}");
    let start: chrono::DateTime<chrono::Utc> = serde_json::from_value(w["start"].clone()).expect("a start");
    assert!(start >= shanghai("2026-12-02 15:10"), "starts after the 24 h lead time: {start}");

    // 2026-12-03 01:00, past the start: the clock tick makes it active.
    app.set_clock("2026-12-03 01:00");
    assert!(start <= app.clock.now());
    eventually("the warning starts", || async { app.warning_of(TAIYUAN).await.filter(|w| w["status"] == "active") }).await;

    // 01:05: a worse forecast (above 300 tomorrow, above 200 for four days) calls for red, which only
    // the head may sign; the orange stays in force meanwhile.
    app.set_clock("2026-12-03 01:05");
    let red = forecast_csv("2026-12-03 00:30", "省生态环境监测和应急保障中心", TAIYUAN, "2026-12-03", &[260, 320, 280, 220, 150, 120, 100]);
    app.drop_in_inbox("taiyuan-20261203-0030.csv", &red);
    let w = eventually("the consultation proposes red", || async { app.warning_of(TAIYUAN).await.filter(|w| w["pending_change"]["level"] == "red") }).await;
    assert_eq!((w["status"].as_str(), w["level"].as_str(), w["pending_sign_off"].as_bool()), (Some("active"), Some("orange"), Some(true)), "{w}");
    let (status, body) = app.post(&format!("/api/v1/warnings/{id}/sign"), Some(DEPUTY)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "role \"deputy_head\" may not sign a red warning (needs head)");
    let (status, body) = app.post_json(&format!("/api/v1/warnings/{id}/sign"), Some(HEAD), &json!({ "role": "head" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let w = app.warning_of(TAIYUAN).await.expect("the warning");
    assert_eq!((w["status"].as_str(), w["level"].as_str(), w["pending_sign_off"].as_bool()), (Some("active"), Some("red"), Some(false)), "{w}");

    // 02:00: a clean forecast: the lift window (48 h in Taiyuan) starts, red holds meanwhile.
    app.set_clock("2026-12-03 02:00");
    let clean = forecast_csv("2026-12-03 01:45", "省生态环境监测和应急保障中心", TAIYUAN, "2026-12-03", &[90, 80, 70, 60, 60, 60, 60]);
    app.drop_in_inbox("taiyuan-20261203-0145.csv", &clean);
    eventually("the consultation sees Taiyuan below red", || async { history_of(&app, &id).await.iter().any(|r| r["event"]["kind"] == "below").then_some(()) }).await;
    let w = app.warning_of(TAIYUAN).await.expect("the warning");
    assert_eq!((w["status"].as_str(), w["level"].as_str()), (Some("active"), Some("red")), "{w}");

    // 2026-12-05 01:30, 47.5 h later: still red.
    app.set_clock("2026-12-05 01:30");
    assert_eq!(app.state.engine.tick().await.expect("a tick"), vec![], "nothing happens before the lift window is over");
    assert_eq!(app.warning_of(TAIYUAN).await.expect("the warning")["status"], "active");

    // 02:01, 48 h after the clean forecast: lifted.
    app.set_clock("2026-12-05 02:01");
    let w = eventually("the warning is lifted", || async { app.warning_of(TAIYUAN).await.filter(|w| w["status"] == "lifted") }).await;
    let ended: chrono::DateTime<chrono::Utc> = serde_json::from_value(w["ended_at"].clone()).expect("an end");
    assert_eq!(ended, shanghai("2026-12-05 02:00"), "lifted when the 48 h lift window ran out");

    // The history tells the whole story, in order, with who did what and on which forecast.
    let history = history_of(&app, &id).await;
    let story: Vec<(String, String, Option<String>)> = history
        .iter()
        .map(|r| (r["event"]["kind"].as_str().unwrap_or("?").to_string(), r["actor"].as_str().unwrap_or("?").to_string(), r["event"]["forecast_id"].as_str().map(str::to_string)))
        .collect();
    let ids = forecast_ids(&app).await;
    let (red_id, clean_id) = (ids[1].clone(), ids[2].clone());
    assert_eq!(ids[0], orange_id);
    let s = |k: &str, a: &str, f: Option<&String>| (k.to_string(), a.to_string(), f.cloned());
    assert_eq!(
        story,
        vec![
            s("proposed", "consultation", Some(&orange_id)),
            s("issued", DEPUTY_NAME, None),
            s("started", "clock", None),
            s("change_proposed", "consultation", Some(&red_id)),
            s("level_changed", HEAD_NAME, None),
            s("below", "consultation", Some(&clean_id)),
            s("lifted", "clock", None),
        ]
    );
    assert!(history.iter().all(|r| r["playbook"] == "taiyuan@2024.1" && r["warning_id"] == id.as_str()), "every event names the episode and its playbook");
    assert_eq!(history[4]["event"]["from"], "orange");
    assert_eq!(history[4]["event"]["to"], "red");
    assert!(history.windows(2).all(|p| p[0]["seq"].as_u64() < p[1]["seq"].as_u64()));
    assert_eq!(files_in(&app.inbox().join("processed")), ["taiyuan-20261201-1400.csv", "taiyuan-20261203-0030.csv", "taiyuan-20261203-0145.csv"]);
    app.stop().await;
}

/// `GET /api/v1/warnings/{id}`'s history.
pub async fn history_of(app: &TestApp, id: &str) -> Vec<Value> {
    let (status, body) = app.get(&format!("/api/v1/warnings/{id}"), Some(DUTY)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["history"].as_array().cloned().unwrap_or_default()
}

/// The ids of the accepted forecasts, in the order they were recorded.
pub async fn forecast_ids(app: &TestApp) -> Vec<String> {
    app.events().await.iter().filter(|r| r["type"] == "forecast_accepted").map(|r| r["forecast"]["id"].as_str().unwrap_or("?").to_string()).collect()
}
