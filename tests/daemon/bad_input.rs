//! Bad input, each with its clear error and nothing else changed: malformed files in the inbox, bad
//! HTTP bodies, unknown ids, missing or wrong tokens. (A signer without the right and a broken
//! playbook reload are in `flow`.)

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const TAIYUAN: &str = "140100";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_files_in_the_inbox_are_set_aside_with_file_line_column_and_nothing_else_changes() {
    let app = spawn_app(clock()).await;
    let seq = app.last_seq().await;

    // A file still being written, under a temporary name: left alone.
    std::fs::create_dir_all(app.inbox()).expect("the inbox");
    std::fs::write(
        app.inbox().join("incoming.csv.part"),
        "# issued_at: 2026-12-01 14:00\nregion,date,aqi\n140100,2026-12-0",
    )
    .expect("written");

    // Three bad files: GBK instead of UTF-8, an unknown column, a missing day.
    let mut gbk = b"# issued_at: 2026-12-01 14:00\n# source: ".to_vec();
    gbk.extend([0xbc, 0xe0, 0xb2, 0xe2, 0xd6, 0xd0, 0xd0, 0xc4]); // 监测中心 in GBK
    gbk.extend(b"\nregion,date,aqi\n140100,2026-12-01,230\n140100,2026-12-02,240\n");
    app.drop_in_inbox("gbk.csv", gbk);
    app.drop_in_inbox(
        "extra-column.csv",
        "# issued_at: 2026-12-01 14:00\n# source: 省监测中心\nregion,date,aqi,humidity\n140100,2026-12-01,230,80\n",
    );
    app.drop_in_inbox("gap.csv", "# issued_at: 2026-12-01 14:00\n# source: 省监测中心\nregion,date,aqi\n140100,2026-12-01,230\n140100,2026-12-02,240\n140100,2026-12-04,250\n");

    // → each moves to rejected/ with FILE.error saying where and why.
    let rejected = app.inbox().join("rejected");
    eventually("the three files are rejected", || async {
        (files_in(&rejected).len() == 6).then_some(())
    })
    .await;
    assert_eq!(
        files_in(&rejected),
        [
            "extra-column.csv",
            "extra-column.csv.error",
            "gap.csv",
            "gap.csv.error",
            "gbk.csv",
            "gbk.csv.error"
        ]
    );
    let error = |name: &str| std::fs::read_to_string(rejected.join(format!("{name}.error"))).expect("an error file");
    assert_eq!(error("gbk.csv"), "gbk.csv:2:11: bytes are not valid UTF-8\n");
    assert_eq!(
        error("extra-column.csv"),
        "extra-column.csv:3:17: unknown column \"humidity\" (expected region, date, aqi, pm25, pm10, so2, no2, co, o3_8h, o3_1h, primary)\n"
    );
    assert_eq!(
        error("gap.csv"),
        "gap.csv:6:1: region 140100 has no value for 2026-12-03 (dates must be consecutive)\n"
    );
    assert_eq!(files_in(&app.inbox()), ["incoming.csv.part"], "only the file being written is left");
    assert!(!app.inbox().join("processed").exists(), "nothing was accepted");

    // Nothing else changed: no forecast, no consultation, no warning; only the three rejections
    // are in the audit log.
    assert_eq!(app.warnings().await, Vec::<Value>::new());
    let events = app.events().await;
    let new: Vec<&Value> = events.iter().filter(|r| r["seq"].as_u64() > Some(seq)).collect();
    assert_eq!(
        new.iter().map(|r| r["type"].as_str().unwrap_or("?")).collect::<Vec<_>>(),
        ["forecast_rejected"; 3]
    );
    let mut logged: Vec<(&str, &str, &str)> = new
        .iter()
        .map(|r| {
            (
                r["file"].as_str().unwrap_or("?"),
                r["via"].as_str().unwrap_or("?"),
                r["error"].as_str().unwrap_or("?"),
            )
        })
        .collect();
    logged.sort();
    assert_eq!(logged[2], ("gbk.csv", "inbox", "gbk.csv:2:11: bytes are not valid UTF-8"));
    let (_, metrics) = app.get_text("/metrics").await;
    assert!(
        metrics.contains("hazeflow_forecasts_total{outcome=\"accepted\"} 0\nhazeflow_forecasts_total{outcome=\"rejected\"} 3\n"),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_http_bodies_get_400_with_the_reason_and_only_rejected_forecasts_leave_an_audit_record() {
    let app = spawn_app(clock()).await;
    let seq = app.last_seq().await;

    // Forecasts: a word for a number in CSV, broken JSON, an unknown JSON field.
    let (status, body) = app
        .submit_file(
            "bad.csv",
            "# issued_at: 2026-12-01 14:00\nregion,date,aqi\n140100,2026-12-01,230\n140100,2026-12-02,high\n",
        )
        .await;
    assert_eq!(
        (status, &body),
        (
            StatusCode::BAD_REQUEST,
            &json!({ "error": "bad.csv:4:19: aqi \"high\" is not a number" })
        )
    );
    let (status, body) = app.submit("{\"issued_at\": \"2026-12-01 14:00\", \"values\": [").await;
    assert_eq!(
        (status, &body),
        (
            StatusCode::BAD_REQUEST,
            &json!({ "error": "request body:1:45: invalid JSON: EOF while parsing a list" })
        )
    );
    let (status, body) = app
        .submit(
            json!({ "issued_at": "2026-12-01 14:00", "values": [{ "region": TAIYUAN, "date": "2026-12-01", "humidity": 80 }] }).to_string(),
        )
        .await;
    assert_eq!(
        (status, &body),
        (
            StatusCode::BAD_REQUEST,
            &json!({ "error": "request body: values[0].humidity: unknown field \"humidity\"" })
        )
    );

    // Directives: an unknown field, a time that is not a time, a level no playbook defines, a
    // region that does not exist.
    let good = json!({ "id": "D1", "name": "调度令", "min_level": "orange", "regions": [TAIYUAN], "from": "2026-12-01 16:00" });
    let with = |k: &str, v: Value| {
        let mut d = good.clone();
        d[k] = v;
        d
    };
    let cases = [
        (with("priority", json!("high")), "invalid JSON body: unknown field `priority`"),
        (
            with("from", json!("tomorrow")),
            "from: \"tomorrow\" is not a time (RFC 3339 or YYYY-MM-DD HH:MM)",
        ),
        (
            with("min_level", json!("purple")),
            "undefined level \"purple\" in playbook shanxi@2024.1",
        ),
        (with("regions", json!(["149900"])), "regions: unknown region 149900"),
        (with("until", json!("2026-12-01 15:00")), "until: must be after from"),
    ];
    for (directive, error) in cases {
        let (status, body) = app.post_json("/api/v1/directives", Some(HEAD), &directive).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{directive} → {body}");
        assert!(body["error"].as_str().is_some_and(|e| e.starts_with(error)), "{directive} → {body}");
    }

    // A sign-off body that is not JSON.
    let (status, body) = app
        .post_body("/api/v1/warnings/140100-20261201-1/sign", Some(HEAD), "{signer:")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| e.starts_with("invalid JSON body: ")),
        "{body}"
    );
    // An `after` that is not a number.
    let (status, _) = app.get("/api/v1/events?after=yesterday", Some(HEAD)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Nothing changed but three audit records of the rejected forecasts, with their errors.
    assert_eq!(app.warnings().await, Vec::<Value>::new());
    assert_eq!(
        app.get("/api/v1/directives", Some(HEAD)).await.1,
        json!({ "directives": [], "next_after": null })
    );
    let events = app.events().await;
    let new: Vec<(&str, &str, &str, &str)> = events
        .iter()
        .filter(|r| r["seq"].as_u64() > Some(seq))
        .map(|r| {
            (
                r["type"].as_str().unwrap_or("?"),
                r["file"].as_str().unwrap_or("?"),
                r["via"].as_str().unwrap_or("?"),
                r["error"].as_str().unwrap_or("?"),
            )
        })
        .collect();
    assert_eq!(
        new,
        [
            (
                "forecast_rejected",
                "bad.csv",
                "http:王市长",
                "bad.csv:4:19: aqi \"high\" is not a number"
            ),
            (
                "forecast_rejected",
                "request body",
                "http:王市长",
                "request body:1:45: invalid JSON: EOF while parsing a list"
            ),
            (
                "forecast_rejected",
                "request body",
                "http:王市长",
                "request body: values[0].humidity: unknown field \"humidity\""
            ),
        ]
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_warning_id_is_404_for_show_sign_lift_and_cancel() {
    let app = spawn_app(clock()).await;
    let seq = app.last_seq().await;
    let id = "140100-20261201-9";
    let expected = json!({ "error": format!("no warning {id}") });
    assert_eq!(
        app.get(&format!("/api/v1/warnings/{id}"), Some(DUTY)).await,
        (StatusCode::NOT_FOUND, expected.clone())
    );
    for action in ["sign", "lift", "cancel"] {
        assert_eq!(
            app.post(&format!("/api/v1/warnings/{id}/{action}"), Some(HEAD)).await,
            (StatusCode::NOT_FOUND, expected.clone()),
            "{action}"
        );
    }
    let (status, body) = app.post("/api/v1/directives/D9/lift", Some(HEAD)).await;
    assert_eq!((status, body), (StatusCode::NOT_FOUND, json!({ "error": "no directive D9" })));
    assert_eq!(app.last_seq().await, seq);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_endpoints_answer_401_without_a_token_or_with_a_wrong_one_and_record_nothing() {
    let app = spawn_app(clock()).await;
    let seq = app.last_seq().await;
    let csv = forecast_csv(
        "2026-12-01 14:00",
        "省生态环境监测和应急保障中心",
        TAIYUAN,
        "2026-12-01",
        &[120, 160, 230, 240, 180, 120, 100],
    );
    let unauthorized = json!({ "error": "a staff bearer token is required (Authorization: Bearer …)" });
    for token in [None, Some("hazeflow-demo-but-wrong"), Some("")] {
        assert_eq!(
            app.get("/api/v1/warnings", token).await,
            (StatusCode::UNAUTHORIZED, unauthorized.clone()),
            "{token:?}"
        );
        assert_eq!(app.get("/api/v1/events", token).await.0, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(
            app.post_body("/api/v1/forecasts", token, csv.clone()).await,
            (StatusCode::UNAUTHORIZED, unauthorized.clone()),
            "{token:?}"
        );
        assert_eq!(
            app.post("/api/v1/consultations", token).await.0,
            StatusCode::UNAUTHORIZED,
            "{token:?}"
        );
        assert_eq!(
            app.post("/api/v1/playbooks/reload", token).await.0,
            StatusCode::UNAUTHORIZED,
            "{token:?}"
        );
        assert_eq!(
            app.post("/api/v1/warnings/140100-20261201-1/sign", token).await.0,
            StatusCode::UNAUTHORIZED,
            "{token:?}"
        );
    }
    // The demo token of the default config is not among this daemon's staff... unless configured:
    // the test config keeps it, so it works, as the README promises.
    assert_eq!(app.get("/api/v1/warnings", Some("hazeflow-demo")).await.0, StatusCode::OK);
    assert_eq!(app.last_seq().await, seq, "nothing was recorded");
    app.stop().await;
}
