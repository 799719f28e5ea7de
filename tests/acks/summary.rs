//! The after-episode summary (总结评估), over HTTP and from the CLI.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

async fn ack(app: &TestApp, id: &str, uscc: &str, step: &str) {
    let key = TestApp::of(&app.assignments(id, Some("active")).await, uscc)["key"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = app
        .post_json(
            &format!("/api/v1/acks/{}", app.token(&key)),
            None,
            &json!({ "step": step, "name": "值班", "phone": "13800000000", "lines": app.lines_to_tick(&app.token(&key)).await }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

fn close(v: &Value, want: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - want).abs() < 1e-6)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_episode_summary_tells_levels_acknowledgement_rates_and_times_inspections_and_reductions_against_the_targets() {
    let (app, id) = orange_issued_wednesday_morning().await;
    let (cement, scripted, coking) = (cement(), scripted(), coking());
    app.ack_departments(&id).await;

    // Cement answers after 30 min and is in place after an hour; the chemical works after two hours.
    app.set_clock("2026-12-02 08:35");
    ack(&app, &id, &cement.uscc, "received").await;
    app.set_clock("2026-12-02 09:05");
    ack(&app, &id, &cement.uscc, "in_place").await;
    app.set_clock("2026-12-02 10:05");
    ack(&app, &id, &scripted.uscc, "received").await;
    // 12:06: the coking plant is overdue → an inspection, found compliant.
    app.set_clock("2026-12-02 12:06");
    let task = eventually("the inspection task", || async {
        let (_, v) = app.get(&format!("/api/v1/inspections?warning={id}"), Some(DUTY)).await;
        v["inspections"][0]["id"].as_str().map(str::to_string)
    })
    .await;
    let (status, body) = app
        .post_json(
            &format!("/api/v1/inspections/{task}/result"),
            Some(DUTY),
            &json!({ "compliant": true, "note": "已延长出焦时间" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // 13:00: upgrade to red; nobody answers that one.
    app.set_clock("2026-12-02 13:00");
    app.propose(TAIYUAN, &red_forecast("2026-12-02 12:50", "2026-12-02"), "red").await;
    app.sign(&id, HEAD).await;

    let (status, s) = app.get(&format!("/api/v1/warnings/{id}/summary"), Some(DUTY)).await;
    assert_eq!(status, StatusCode::OK, "{s}");

    // Levels: orange from 08:05 to 13:00, then red.
    let levels: Vec<(&str, Value, Value)> = s["levels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["level"].as_str().unwrap(), l["from"].clone(), l["to"].clone()))
        .collect();
    assert_eq!(
        levels,
        vec![
            ("orange", json!(shanghai("2026-12-02 08:05")), json!(shanghai("2026-12-02 13:00"))),
            ("red", json!(shanghai("2026-12-02 13:00")), Value::Null)
        ]
    );
    assert!(close(&s["levels"][0]["hours"], 4.92), "{}", s["levels"][0]);

    // Assignments per level: three enterprises and every department each; the orange ones superseded.
    let n = app.state.defaults.departments.len() as u64;
    for level in ["orange", "red"] {
        let a = &s["assignments"][level];
        assert_eq!(
            (a["enterprises"].as_u64(), a["departments"].as_u64(), a["negotiated"].as_u64()),
            (Some(3), Some(n), Some(0)),
            "{level}: {a}"
        );
    }
    assert_eq!(s["assignments"]["orange"]["superseded"].as_u64(), Some(3 + n));

    // 小店区: four notices (two per level), two received — after 30 and 120 minutes — one in place after 60.
    let xd = &s["acknowledgements"]["by_region"][XIAODIAN];
    assert_eq!(xd["name"], "小店区");
    assert_eq!(
        (
            xd["assigned"].as_u64(),
            xd["received"].as_u64(),
            xd["on_time"].as_u64(),
            xd["in_place"].as_u64()
        ),
        (Some(4), Some(2), Some(2), Some(1)),
        "{xd}"
    );
    assert!(
        close(&xd["received_rate"], 0.5) && close(&xd["received_minutes_median"], 30.0) && close(&xd["received_minutes_p90"], 120.0),
        "{xd}"
    );
    assert!(close(&xd["in_place_minutes_median"], 60.0), "{xd}");
    let yz = &s["acknowledgements"]["by_region"][YINGZE];
    assert_eq!((yz["assigned"].as_u64(), yz["received"].as_u64()), (Some(2), Some(0)));
    assert!(yz["received_minutes_median"].is_null());
    let total = &s["acknowledgements"]["total"];
    assert_eq!(
        (total["assigned"].as_u64(), total["received"].as_u64()),
        (Some(2 * (3 + n)), Some(n + 2)),
        "the departments answered at 08:05: {total}"
    );

    // Inspections: the one task, found compliant.
    let i = &s["inspections"];
    assert_eq!(
        (
            i["total"].as_u64(),
            i["open"].as_u64(),
            i["compliant"].as_u64(),
            i["non_compliant"].as_u64()
        ),
        (Some(1), Some(0), Some(1), Some(0)),
        "{i}"
    );
    assert_eq!(i["list"][0]["uscc"], coking.uscc.as_str());

    // Reductions at orange, t/day of SO2: cement 2.0 × 20 % + chemical works 0.4 × 50 % + coking 1.0 × 40 % = 1.0,
    // against 20 % of Taiyuan's 10 t/day = 2.0: short. At red the target is 30 % = 3.0.
    let orange = &s["reductions"][0];
    assert_eq!(
        (orange["level"].as_str(), orange["enterprises"].as_u64()),
        (Some("orange"), Some(3))
    );
    assert!(
        close(&orange["expected"]["so2"], 1.0) && close(&orange["target"]["so2"], 2.0),
        "{orange}"
    );
    assert!(orange["short"].as_array().unwrap().contains(&json!("so2")), "{orange}");
    assert!(orange["basis"].as_str().unwrap().contains("太原市"), "{orange}");
    let red = &s["reductions"][1];
    assert!(
        close(&red["target"]["so2"], 3.0) && close(&red["target_percent"]["so2"], 30.0),
        "{red}"
    );

    // The CLI prints the same for people, and the JSON with --json.
    let bin = env!("CARGO_BIN_EXE_hazeflow");
    let server = format!("http://{}", app.addr);
    let id2 = id.clone();
    let cli = move |json: bool| {
        let mut args = vec![
            "episode".to_string(),
            "summary".into(),
            id2.clone(),
            "--server".into(),
            server.clone(),
            "--token".into(),
            DUTY.into(),
        ];
        if json {
            args.push("--json".into());
        }
        std::process::Command::new(bin)
            .args(args)
            .env_remove("HAZEFLOW_TOKEN")
            .output()
            .expect("the CLI runs")
    };
    let out = tokio::task::spawn_blocking(move || (cli(false), cli(true))).await.unwrap();
    assert!(out.0.status.success(), "{}", String::from_utf8_lossy(&out.0.stderr));
    let table = String::from_utf8(out.0.stdout).unwrap();
    for want in [
        "预警 140100-",
        "橙色预警",
        "140105 小店区",
        "监督检查  共1项",
        "未达到减排目标：SO2",
    ] {
        assert!(table.contains(want), "the table has {want}:\n{table}");
    }
    let json: Value = serde_json::from_slice(&out.1.stdout).expect("JSON");
    assert_eq!(json["acknowledgements"]["total"], s["acknowledgements"]["total"]);

    // Unknown warnings and missing tokens.
    assert_eq!(
        app.get("/api/v1/warnings/no-such/summary", Some(DUTY)).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("/api/v1/warnings/{id}/summary"), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_whole_society_emissions_for_the_region_the_target_is_reported_unknown() {
    let (app, id) = orange_issued_wednesday_morning().await;
    std::fs::write(
        app.state.settings.list_seed.as_ref().unwrap().join("whole_society_emissions.csv"),
        "region,so2,nox,pm,vocs\n140200,5,5,5,5\n",
    )
    .unwrap();
    let (status, s) = app.get(&format!("/api/v1/warnings/{id}/summary"), Some(DUTY)).await;
    assert_eq!(status, StatusCode::OK, "{s}");
    let r = &s["reductions"][0];
    assert!(r["target"].is_null() && r["society"].is_null(), "{r}");
    assert!(r["basis"].as_str().unwrap().starts_with("未知："), "{r}");
    assert!(close(&r["expected"]["so2"], 1.0), "{r}");
    // A broken table, then none at all: still 未知, and why, in Chinese (duty staff read it on the warning's page).
    let society = app.state.settings.list_seed.as_ref().unwrap().join("whole_society_emissions.csv");
    std::fs::write(&society, "region,so2,nox,pm,vocs\n140100,-1,5,5,5\n").unwrap();
    let basis = |s: &serde_json::Value| s["reductions"][0]["basis"].as_str().unwrap().to_string();
    let english = |t: &str| {
        t.split(|c: char| !c.is_ascii()).any(|run| {
            run.split_whitespace()
                .filter(|w| w.chars().all(|c| c.is_ascii_alphabetic()))
                .count()
                >= 3
        })
    };
    let (_, s) = app.get(&format!("/api/v1/warnings/{id}/summary"), Some(DUTY)).await;
    let b = basis(&s);
    assert!(
        b.starts_with("未知：") && b.contains("whole_society_emissions.csv:2:") && !english(&b),
        "{b}"
    );
    std::fs::remove_file(&society).unwrap();
    let (_, s) = app.get(&format!("/api/v1/warnings/{id}/summary"), Some(DUTY)).await;
    let b = basis(&s);
    assert!(
        b.starts_with("未知：") && b.contains("whole_society_emissions.csv") && !english(&b),
        "{b}"
    );
    app.stop().await;
}
