//! Drills (演练) started the three ways a bureau starts one — a file marked `# exercise: true` in the
//! inbox, `hazeflow forecast submit --exercise`, a directive with `"exercise": true` — each run in the
//! regions' drill lanes: drill warnings listed apart, the real proposal of the same region, the real
//! consultations and the real directives exactly as they were.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api::hazeflow;
use crate::helpers::*;

const TAIYUAN: &str = "140100";
const DATONG: &str = "140200";
const JINZHONG: &str = "140700";

/// The drill warnings, by region.
async fn drills(app: &TestApp) -> Vec<Value> {
    let (status, body) = app.get("/api/v1/drills", Some(DUTY)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["drills"].as_array().cloned().unwrap_or_default()
}

/// The consultations, newest first.
async fn consultations(app: &TestApp) -> Vec<Value> {
    let (status, body) = app.get("/api/v1/consultations", Some(DUTY)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["consultations"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drills_from_the_inbox_the_cli_and_a_directive_run_in_the_drill_lanes_and_leave_the_real_warnings_alone() {
    let app = spawn_app(clock()).await;
    // 15:00: the real forecast proposes orange for Taiyuan.
    let (status, body) = app
        .submit(forecast_csv(
            "2026-12-01 14:00",
            SOURCE,
            TAIYUAN,
            "2026-12-01",
            &[120, 160, 230, 240, 180, 120, 100],
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let real = eventually("a real proposal for Taiyuan", || async { app.warning_of(TAIYUAN).await }).await;
    assert_eq!((real["level"].as_str(), real["status"].as_str()), (Some("orange"), Some("pending")));
    let warnings_before = app.warnings().await;
    let real_consultations = consultations(&app).await.len();

    // A drill's file in the inbox, marked in the file: a red drill proposal for Taiyuan.
    let drill = forecast_csv(
        "2026-12-01 14:30",
        SOURCE,
        TAIYUAN,
        "2026-12-01",
        &[260, 320, 280, 220, 150, 120, 100],
    )
    .replacen("\nregion,", "\n# exercise: true\nregion,", 1);
    app.drop_in_inbox("drill-taiyuan.csv", &drill);
    let d = eventually("a drill proposal for Taiyuan", || async {
        drills(&app).await.into_iter().find(|w| w["region"] == TAIYUAN)
    })
    .await;
    assert_eq!(
        (d["level"].as_str(), d["status"].as_str(), d["exercise"].as_bool()),
        (Some("red"), Some("pending"), Some(true)),
        "{d}"
    );
    eventually("the drill's file is processed", || async {
        (files_in(&app.inbox().join("processed")) == ["drill-taiyuan.csv"]).then_some(())
    })
    .await;
    // Its consultation is the drill's, marked; no real consultation followed it.
    let held = consultations(&app).await;
    assert_eq!(
        (held[0]["exercise"].as_bool(), held[0]["trigger"].as_str()),
        (Some(true), Some("演练"))
    );
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let held = consultations(&app).await;
    assert_eq!(held.iter().filter(|c| c["exercise"] != true).count(), real_consultations);

    // `hazeflow forecast submit --exercise`: a plain CSV, made a drill's by the sender.
    let file = app.dir.path().join("jinzhong.csv");
    std::fs::write(
        &file,
        forecast_csv(
            "2026-12-01 14:40",
            SOURCE,
            JINZHONG,
            "2026-12-01",
            &[120, 160, 230, 240, 180, 120, 100],
        ),
    )
    .unwrap();
    let server = app.base();
    let (code, out, err) = hazeflow(&[
        "--server",
        &server,
        "--token",
        HEAD,
        "forecast",
        "submit",
        "--exercise",
        file.to_str().unwrap(),
    ])
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.starts_with("drill forecast ") && out.contains("recorded and consulted for the drill"),
        "{out}"
    );
    assert!(
        drills(&app)
            .await
            .iter()
            .any(|w| w["region"] == JINZHONG && w["status"] == "pending")
    );

    // A drill's directive over Datong: issued at once in the drill lanes of Datong and its counties.
    let directive = json!({
        "id": "演练调度令-1", "name": "重污染天气应急演练调度令", "min_level": "orange", "regions": [DATONG],
        "from": "2026-12-02 00:00", "exercise": true,
    });
    let (status, body) = app.post_json("/api/v1/directives", Some(HEAD), &directive).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let datong = drills(&app)
        .await
        .into_iter()
        .find(|w| w["region"] == DATONG)
        .expect("a drill for Datong");
    assert_eq!(
        (datong["level"].as_str(), datong["status"].as_str()),
        (Some("orange"), Some("issued")),
        "{datong}"
    );

    // The real warnings are exactly as they were: Taiyuan's orange proposal, nothing in Datong or Jinzhong.
    assert_eq!(app.warnings().await, warnings_before);
    // The drill is signed by its id; the real proposal still waits for its own signature.
    let id = d["id"].as_str().unwrap();
    let (status, body) = app
        .post_json(
            &format!("/api/v1/warnings/{id}/sign"),
            Some(HEAD),
            &serde_json::json!({ "without_record": "本测试不涉及会商意见" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let real_now = app.warning_of(TAIYUAN).await.expect("the real proposal");
    assert_eq!(
        (real_now["id"].clone(), real_now["status"].as_str()),
        (real["id"].clone(), Some("pending"))
    );

    // `hazeflow drill list` names the three drills.
    let (code, out, err) = hazeflow(&["--server", &server, "--token", DUTY, "drill", "list"]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.trim_end().ends_with("drill warnings") && out.contains(id), "{out}");
}
