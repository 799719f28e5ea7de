//! The HTTP API and the CLI on a running daemon: forecasts as CSV and JSON, duplicates, health,
//! metrics, the audit log in pages, and `hazeflow warnings …` against the test daemon.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const TAIYUAN: &str = "140100";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forecast_posted_as_csv_or_as_json_is_recorded_once_however_often_and_in_whichever_form_it_comes() {
    let app = spawn_app(clock()).await;

    // 15:00: the forecast centre posts its CSV → 201, recorded.
    let csv = forecast_csv(
        "2026-12-01 14:00",
        "省生态环境监测和应急保障中心",
        TAIYUAN,
        "2026-12-01",
        &[120, 160, 230, 240, 180, 120, 100],
    );
    let (status, first) = app.submit(csv.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(
        (first["duplicate"].as_bool(), first["regions"].as_u64()),
        (Some(false), Some(1)),
        "{first}"
    );
    let id = first["id"].as_str().expect("an id").to_string();
    eventually("the consultation on it proposes orange", || async { app.warning_of(TAIYUAN).await }).await;

    // 15:01: the same CSV again (a retry) → 200, duplicate, nothing new recorded.
    let seq = app.last_seq().await;
    let (status, again) = app.submit(csv).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        (again["id"].as_str(), again["duplicate"].as_bool(), again["seq"].as_u64()),
        (Some(id.as_str()), Some(true), Some(0)),
        "{again}"
    );

    // 15:02: the same forecast as JSON is the same forecast → 200, duplicate.
    let days = [
        "2026-12-01",
        "2026-12-02",
        "2026-12-03",
        "2026-12-04",
        "2026-12-05",
        "2026-12-06",
        "2026-12-07",
    ];
    let values: Vec<Value> = days
        .iter()
        .zip([120, 160, 230, 240, 180, 120, 100])
        .map(|(d, a)| json!({ "region": TAIYUAN, "date": d, "aqi": a }))
        .collect();
    let same = json!({ "issued_at": "2026-12-01T14:00:00+08:00", "source": "省生态环境监测和应急保障中心", "values": values });
    let (status, body) = app.submit(same.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["id"].as_str(), body["duplicate"].as_bool()),
        (Some(id.as_str()), Some(true)),
        "{body}"
    );
    assert_eq!(app.last_seq().await, seq, "a duplicate writes nothing");

    // 15:03: the same CSV dropped into the inbox: taken in and moved aside, not recorded again (the
    // inbox still asks for a consultation: a file read again after a crash must not miss one).
    app.drop_in_inbox(
        "taiyuan-again.csv",
        forecast_csv(
            "2026-12-01 14:00",
            "省生态环境监测和应急保障中心",
            TAIYUAN,
            "2026-12-01",
            &[120, 160, 230, 240, 180, 120, 100],
        ),
    );
    eventually("the inbox file is processed", || async {
        (files_in(&app.inbox().join("processed")) == ["taiyuan-again.csv"]).then_some(())
    })
    .await;
    let (_, metrics) = app.get_text("/metrics").await;
    assert!(metrics.contains("hazeflow_forecasts_total{outcome=\"accepted\"} 1\n"), "{metrics}");

    // 16:10: a new JSON forecast, with concentrations for Datong → 201, AQI computed.
    app.set_clock("2026-12-01 16:10");
    let json_forecast = json!({ "issued_at": "2026-12-01 16:00", "source": "省生态环境监测和应急保障中心", "values": [
        { "region": "140200", "date": "2026-12-02", "pm25": 80 },
        { "region": "140200", "date": "2026-12-03", "pm25": 160, "pm10": null },
    ]});
    let (status, body) = app.submit(json_forecast.to_string()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["duplicate"], false);
    let second = body["id"].as_str().expect("an id").to_string();

    // The log holds each forecast exactly once, as it came in.
    let events = app.events().await;
    let accepted: Vec<&Value> = events.iter().filter(|r| r["type"] == "forecast_accepted").collect();
    assert_eq!(accepted.len(), 2);
    assert_eq!(
        (
            accepted[0]["forecast"]["id"].as_str(),
            accepted[0]["via"].as_str(),
            accepted[0]["actor"].as_str()
        ),
        (Some(id.as_str()), Some("http:王市长"), Some("http:王市长"))
    );
    assert_eq!(accepted[1]["forecast"]["id"], second.as_str());
    assert_eq!(
        accepted[1]["forecast"]["series"]["140200"][1]["aqi"], 210,
        "PM2.5 160 µg/m³ is AQI 210 (HJ 633-2026)"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_forecast_sent_by_eight_clients_at_once_is_recorded_once() {
    let app = Arc::new(spawn_app(clock()).await);
    let csv = forecast_csv(
        "2026-12-01 14:00",
        "省生态环境监测和应急保障中心",
        TAIYUAN,
        "2026-12-01",
        &[60, 70, 80],
    );
    let mut senders = Vec::new();
    for _ in 0..8 {
        let (app, csv) = (app.clone(), csv.clone());
        senders.push(tokio::spawn(async move { app.submit(csv).await }));
    }
    let mut answers = Vec::new();
    for s in senders {
        answers.push(s.await.expect("a sender"));
    }
    let created: Vec<&Value> = answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).map(|(_, b)| b).collect();
    let duplicates = answers
        .iter()
        .filter(|(s, b)| *s == StatusCode::OK && b["duplicate"] == true)
        .count();
    assert_eq!((created.len(), duplicates), (1, 7), "{answers:?}");
    assert!(answers.iter().all(|(_, b)| b["id"] == created[0]["id"]));
    let accepted = app.events().await.iter().filter(|r| r["type"] == "forecast_accepted").count();
    assert_eq!(accepted, 1);
    let app = Arc::into_inner(app).expect("the only owner");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_answer_without_a_token_and_count_warnings_consultations_and_forecasts() {
    let app = spawn_app(clock()).await;
    let (status, health) = app.get("/healthz", None).await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["status"], "ok");
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
            "taiyuan@2026.1",
            "xinzhou@2024.1",
            "yangquan@2024.1",
            "yuncheng@2024.1"
        ])
    );

    // One good forecast (→ an orange proposal) and one bad.
    let csv = forecast_csv(
        "2026-12-01 14:00",
        "省生态环境监测和应急保障中心",
        TAIYUAN,
        "2026-12-01",
        &[120, 160, 230, 240, 180, 120, 100],
    );
    assert_eq!(app.submit(csv).await.0, StatusCode::CREATED);
    assert_eq!(
        app.submit("region,date,aqi\n140100,2026-12-01,abc\n").await.0,
        StatusCode::BAD_REQUEST
    );
    eventually("orange is proposed", || async { app.warning_of(TAIYUAN).await }).await;

    let (status, text) = app.get_text("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let lines: Vec<&str> = text.lines().collect();
    for expected in [
        "# TYPE hazeflow_warnings gauge",
        "hazeflow_warnings{level=\"orange\",status=\"pending\"} 1",
        "hazeflow_forecasts_total{outcome=\"accepted\"} 1",
        "hazeflow_forecasts_total{outcome=\"rejected\"} 1",
    ] {
        assert!(lines.contains(&expected), "/metrics has {expected:?}:\n{text}");
    }
    let number = |name: &str| -> u64 {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in\n{text}"))
    };
    assert!(
        number("hazeflow_consultations_total") >= 1,
        "the consultation on the forecast is counted"
    );
    assert_eq!(
        number("hazeflow_events_total"),
        app.last_seq().await,
        "one count per record in the log"
    );
    // The writer's work: the forecast, the consultation and the proposal were committed by it.
    let batches = number("hazeflow_store_commit_seconds_count");
    assert!(batches >= 1, "{text}");
    assert!(
        number("hazeflow_store_jobs_total") >= batches,
        "a commit carries at least one job:\n{text}"
    );
    for expected in [
        "hazeflow_reloads_total{outcome=\"ok\"} 1",
        "hazeflow_reload_last_ok 1",
        "hazeflow_deliveries_total{channel=\"email\",outcome=\"failed\"} 0",
        "# TYPE hazeflow_outbox_oldest_due_seconds gauge",
        "# TYPE process_resident_memory_bytes gauge",
    ] {
        assert!(
            lines.contains(&expected) || text.contains(expected),
            "/metrics has {expected:?}:\n{text}"
        );
    }
    assert!(text.contains("hazeflow_build_info{version=\""), "{text}");
    assert!(number("process_resident_memory_bytes") > 0, "{text}");
    promtool_accepts(&text);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_is_read_in_pages_after_a_sequence_number() {
    let app = spawn_app(clock()).await;
    // Records written before each answer: a directive (an issue for every Datong region) and five
    // rejected forecasts.
    let directive = json!({ "id": "D1", "name": "调度令", "min_level": "yellow", "regions": ["140200"], "from": "2026-12-02 00:00" });
    assert_eq!(
        app.post_json("/api/v1/directives", Some(HEAD), &directive).await.0,
        StatusCode::CREATED
    );
    for n in 0..5 {
        assert_eq!(
            app.submit_file(&format!("bad-{n}.csv"), "region,date\n").await.0,
            StatusCode::BAD_REQUEST
        );
    }
    let all = app.events().await;
    let last = app.last_seq().await;
    assert_eq!(
        all.iter().map(|r| r["seq"].as_u64().unwrap_or(0)).collect::<Vec<_>>(),
        (1..=last).collect::<Vec<_>>(),
        "gap-free, in order"
    );

    // Two at a time: each page starts after the last one's next_after, null once nothing follows
    // (a full last page may be followed by an empty one).
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let (status, body) = app.get(&format!("/api/v1/events?after={after}&limit=2"), Some(DUTY)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let page = body["events"].as_array().cloned().unwrap_or_default();
        assert!(page.len() <= 2);
        if let Some(first) = page.first() {
            assert_eq!(first["seq"], after + 1);
        }
        paged.extend(page);
        match body["next_after"].as_u64() {
            Some(next) => after = next,
            None => break,
        }
    }
    assert_eq!(paged, all);
    let (status, body) = app.get(&format!("/api/v1/events?after={}", last - 1), Some(DUTY)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["events"].as_array().map(Vec::len), Some(1));
    assert_eq!(body["next_after"], Value::Null, "nothing follows");
    app.stop().await;
}

/// Runs the real `hazeflow` binary with arguments; (exit code, stdout, stderr).
pub async fn hazeflow(args: &[&str]) -> (Option<i32>, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_hazeflow"))
        .args(args)
        .env_remove("HAZEFLOW_SERVER")
        .env_remove("HAZEFLOW_TOKEN")
        .env_remove("RUST_LOG")
        .output()
        .await
        .expect("the hazeflow binary runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_submits_lists_and_signs_warnings_on_the_running_daemon() {
    let app = spawn_app(clock()).await;
    let server = app.base();
    let file = app.dir.path().join("taiyuan-20261201.csv");
    std::fs::write(
        &file,
        forecast_csv(
            "2026-12-01 14:00",
            "省生态环境监测和应急保障中心",
            TAIYUAN,
            "2026-12-01",
            &[120, 160, 230, 240, 180, 120, 100],
        ),
    )
    .expect("written");
    let file = file.to_str().expect("a UTF-8 path");

    // The duty officer hands the forecast over with `hazeflow forecast submit`.
    let (code, out, err) = hazeflow(&["forecast", "submit", file, "--server", &server, "--token", DUTY]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with("forecast ") && out.contains(" recorded (1 regions)"), "{out}");
    let w = eventually("orange is proposed", || async { app.warning_of(TAIYUAN).await }).await;
    let id = w["id"].as_str().expect("an id");

    // `hazeflow warnings list` shows it awaiting sign-off.
    let (code, out, err) = hazeflow(&["warnings", "list", "--server", &server, "--token", DEPUTY]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with(id) && l.contains("太原市") && l.contains("orange") && l.ends_with("(awaiting sign-off)")),
        "{out}"
    );
    assert!(out.ends_with("1 warnings, 1 awaiting sign-off\n"), "{out}");

    // The duty officer may not sign it (exit 1, the reason on stderr); the deputy head may.
    let (code, out, err) = hazeflow(&["warnings", "sign", "--pending", "--server", &server, "--token", DUTY]).await;
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains("403 Forbidden: role \"duty_officer\" may not sign a orange warning (needs deputy_head)"),
        "{err}"
    );
    // Shanxi signs a consultation's proposal once its 会商意见 is completed (`record_before_sign`): the
    // deputy head is refused (exit 1, the reason in Chinese on stderr, naming the consultation)…
    let (code, out, err) = hazeflow(&["warnings", "sign", "--pending", "--server", &server, "--token", DEPUTY]).await;
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains("409 Conflict: 须先完成会商意见") && err.contains("号会商提出") && err.contains("/consultations/"),
        "{err}"
    );
    assert!(out.ends_with("0 signed, 1 refused\n"), "{out}");
    assert_eq!(app.warning_of(TAIYUAN).await.expect("the warning")["status"], "pending");
    // …unless they say why (`--without-record`): signed, the reason kept on the 审批表.
    let why = "会商专家未能到场，先行签发";
    let (code, out, err) = hazeflow(&[
        "warnings",
        "sign",
        "--pending",
        "--without-record",
        why,
        "--server",
        &server,
        "--token",
        DEPUTY,
    ])
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.ends_with("1 signed, 0 refused\n"), "{out}");
    assert_eq!(app.warning_of(TAIYUAN).await.expect("the warning")["status"], "issued");
    let (status, forms) = app.get(&format!("/api/v1/approvals?warning={id}"), Some(DUTY)).await;
    assert_eq!(status, StatusCode::OK, "{forms}");
    assert_eq!(forms["approvals"][0]["form"]["without_record"], why, "{forms}");

    // `hazeflow consult --now` holds a consultation and prints its proposals.
    let (code, out, err) = hazeflow(&["consult", "--now", "--server", &server, "--token", DUTY]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.lines().any(|l| l.starts_with("140100  orange ")), "{out}");
    assert!(out.ends_with("consultation held over 1 regions\n"), "{out}");

    // A wrong token: a clear error and a non-zero exit.
    let (code, out, err) = hazeflow(&["warnings", "list", "--server", &server, "--token", "guess"]).await;
    assert_ne!(code, Some(0), "{out}");
    assert!(err.contains("401 Unauthorized"), "{err}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_county_under_an_active_city_warning_reports_its_level_and_the_warning_it_comes_from() {
    let app = spawn_app(clock()).await;
    let f = forecast_csv(
        "2026-12-01 14:00",
        "省生态环境监测和应急保障中心",
        TAIYUAN,
        "2026-12-01",
        &[120, 160, 230, 240, 180, 120, 100],
    );
    let (status, body) = app.submit(f).await;
    assert!(status.is_success(), "{body}");
    let w = eventually("an orange proposal for Taiyuan", || async { app.warning_of(TAIYUAN).await }).await;
    let id = w["id"].as_str().expect("an id").to_string();
    let region = |body: &Value, code: &str| -> Value {
        body["regions"]
            .as_array()
            .expect("regions")
            .iter()
            .find(|r| r["region"] == code)
            .unwrap_or_else(|| panic!("{code} listed"))
            .clone()
    };
    // Proposed, then issued: nothing is in force yet, the city's own warning shows its status.
    let (status, body) = app.get("/api/v1/regions", Some(DUTY)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["regions"].as_array().map(Vec::len),
        Some(129),
        "Shanxi's province, cities and counties"
    );
    assert_eq!(region(&body, TAIYUAN)["own_warning"]["status"], "pending");
    assert_eq!(region(&body, "140105")["in_force"], Value::Null);
    app.set_clock("2026-12-01 15:10");
    let (status, body) = app
        .post_json(
            &format!("/api/v1/warnings/{id}/sign"),
            Some(DEPUTY),
            &serde_json::json!({ "without_record": "本测试不涉及会商意见" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Past the start: 小店区 (140105) is under Taiyuan's orange, 新荣区 (140212, Datong) under nothing.
    app.set_clock("2026-12-03 01:00");
    eventually("the warning starts", || async {
        app.warning_of(TAIYUAN).await.filter(|w| w["status"] == "active")
    })
    .await;
    let (_, body) = app.get("/api/v1/regions", Some(DUTY)).await;
    let county = region(&body, "140105");
    assert_eq!(county["name"], "小店区");
    assert_eq!(county["tier"], "county");
    assert_eq!(county["own_warning"], Value::Null, "{county}");
    let f = &county["in_force"];
    assert_eq!(
        (
            f["level"].as_str(),
            f["warning"].as_str(),
            f["region"].as_str(),
            f["region_name"].as_str(),
            f["inherited"].as_bool()
        ),
        (Some("orange"), Some(id.as_str()), Some(TAIYUAN), Some("太原市"), Some(true)),
        "{county}"
    );
    let city = region(&body, TAIYUAN);
    assert_eq!(
        (city["in_force"]["inherited"].as_bool(), city["own_warning"]["status"].as_str()),
        (Some(false), Some("active"))
    );
    for code in ["140212", "140200", "140000"] {
        assert_eq!(region(&body, code)["in_force"], Value::Null, "{code}");
    }
    let (status, _) = app.get("/api/v1/regions", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_cli_style_global_options_json_output_directives_events_acks_and_exit_codes() {
    let app = spawn_app(clock()).await;
    let server = app.base();
    // Global options before the command's name; a directive issued and listed as JSON.
    let (code, out, err) = hazeflow(&[
        "--server",
        &server,
        "--token",
        HEAD,
        "directives",
        "issue",
        "--id",
        "晋气指〔2026〕3号",
        "--name",
        "区域应急指令",
        "--min-level",
        "yellow",
        "--regions",
        "140200",
        "--from",
        "2026-12-02 00:00",
    ])
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with("directive 晋气指〔2026〕3号 issued:"), "{out}");
    let (code, out, err) = hazeflow(&["--output", "json", "--server", &server, "--token", DUTY, "directives", "list"]).await;
    assert_eq!(code, Some(0), "{err}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["directives"][0]["id"], "晋气指〔2026〕3号");
    assert_eq!(v["directives"][0]["active"], true);
    // The same options after the name; the audit log in pages.
    let (code, out, _) = hazeflow(&["events", "--limit", "2", "--server", &server, "--token", DUTY]).await;
    assert_eq!(code, Some(0));
    assert!(
        out.lines()
            .last()
            .is_some_and(|l| l.starts_with("2 events after 0; the next page: --after 2")),
        "{out}"
    );
    let (code, out, _) = hazeflow(&["events", "--output", "json", "--server", &server, "--token", DUTY]).await;
    assert_eq!(code, Some(0));
    let v: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["events"][0]["seq"], 1);
    // Exit codes: 1 failed (no such warning), 2 usage, 3 daemon unreachable.
    let (code, _, err) = hazeflow(&["acks", "no-such-warning", "--server", &server, "--token", DUTY]).await;
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("404"), "{err}");
    let (code, _, _) = hazeflow(&["consult", "--server", &server]).await;
    assert_eq!(code, Some(2), "consult without --now is a usage error");
    let (code, _, err) = hazeflow(&["warnings", "list", "--server", &format!("http://127.0.0.1:{}", free_port())]).await;
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("cannot reach the daemon"), "{err}");
    // Completions for a shell.
    let (code, out, _) = hazeflow(&["completions", "bash"]).await;
    assert_eq!(code, Some(0));
    assert!(out.contains("_hazeflow") && out.contains("directives"), "a bash completion script");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_consultation_over_every_region_of_shanxi_proposes_once_per_region_that_qualifies_under_its_own_playbook() {
    // Every code of the province (the province, its 11 cities and every county), in turn orange, yellow or clean.
    let regions = hazeflow::domain::region::Regions::shanxi();
    let all: Vec<(String, String)> = regions.all().map(|r| (r.code.to_string(), regions.name(r.code))).collect();
    assert_eq!(all.len(), 129, "Shanxi's province, cities and counties");
    let series = |i: usize| -> (&str, [u32; 7]) {
        match i % 3 {
            0 => ("orange", [120, 160, 230, 240, 180, 120, 100]),
            1 => ("yellow", [120, 210, 120, 100, 100, 100, 100]),
            _ => ("none", [80, 90, 70, 60, 60, 60, 60]),
        }
    };
    let mut csv = String::from("# issued_at: 2026-12-01 14:00\n# source: 省生态环境监测和应急保障中心\nregion,date,aqi\n");
    for (i, (code, _)) in all.iter().enumerate() {
        for (d, aqi) in series(i).1.iter().enumerate() {
            csv.push_str(&format!("{code},2026-12-{:02},{aqi}\n", d + 1));
        }
    }
    let app = spawn_app(clock()).await;
    let (status, body) = app.submit(csv).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // One consultation assessed every region: no unknown region, none left out, each at its level.
    let held = eventually("the consultation on the forecast is held", || async {
        let (_, body) = app.get("/api/v1/consultations", Some(DUTY)).await;
        body["consultations"]
            .as_array()?
            .iter()
            .find(|c| c["trigger"] == "forecast received")
            .cloned()
    })
    .await;
    let assessments = held["assessments"].as_array().expect("assessments");
    assert_eq!(assessments.len(), all.len(), "{held}");
    for (i, (code, name)) in all.iter().enumerate() {
        let a = assessments
            .iter()
            .find(|a| a["region"] == code.as_str())
            .unwrap_or_else(|| panic!("{code} {name} assessed"));
        let level = a["level"].as_str().unwrap_or("none");
        assert_eq!(level, series(i).0, "{code} {name}: {a}");
    }

    // One proposal per region that qualifies, under the playbook of its city (the province's for itself).
    let want: Vec<&(String, String)> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| series(*i).0 != "none")
        .map(|(_, r)| r)
        .collect();
    let warnings = eventually("every qualifying region has its proposal", || async {
        let w = app.warnings().await;
        (w.len() >= want.len()).then_some(w)
    })
    .await;
    assert_eq!(warnings.len(), want.len());
    let city_playbook = [
        ("1401", "taiyuan@2026.1"),
        ("1402", "datong@2024.1"),
        ("1403", "yangquan@2024.1"),
        ("1404", "changzhi@2024.1"),
        ("1405", "jincheng@2024.1"),
        ("1406", "shuozhou@2024.1"),
        ("1407", "jinzhong@2024.1"),
        ("1408", "yuncheng@2024.1"),
        ("1409", "xinzhou@2024.1"),
        ("1410", "linfen@2024.1"),
        ("1411", "lvliang@2024.1"),
    ];
    for (code, name) in want {
        let w = warnings
            .iter()
            .find(|w| w["region"] == code.as_str())
            .unwrap_or_else(|| panic!("{code} {name} has a proposal"));
        assert_eq!(w["status"], "pending", "{w}");
        let pin = city_playbook
            .iter()
            .find(|(prefix, _)| code.starts_with(prefix))
            .map_or("shanxi@2024.1", |(_, pin)| pin);
        assert_eq!(w["playbook"], pin, "{code} {name}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_reports_work_while_the_daemon_holds_the_store_by_asking_it() {
    if on_postgres() {
        // About the embedded file the daemon locks; it runs in the default suite.
        return;
    }
    // The daemon holds its store (the file is locked); the list it seeded is the shipped one.
    let app = spawn_app_with(tempfile::TempDir::new().expect("a folder"), clock(), |s| {
        s.list_seed = Some(std::path::PathBuf::from("seeds/registry"));
    })
    .await;
    let site = app.dir.path().join("site.yaml");
    std::fs::write(&site, format!("data_dir: {}\n", app.state.settings.data_dir.display())).expect("written");
    let site = site.display().to_string();
    let server = app.base();
    // The same report from the seed folder, offline: what the daemon's list must give.
    let (code, expected, err) = hazeflow(&["registry", "reductions", "--json", "--list", "seeds/registry"]).await;
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = hazeflow(&[
        "registry",
        "reductions",
        "--json",
        "--config",
        &site,
        "--server",
        &server,
        "--token",
        DUTY,
    ])
    .await;
    assert_eq!(code, Some(0), "{err}");
    let got: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(got, serde_json::from_str::<Value>(&expected).expect("JSON"));
    assert!(err.contains("through the daemon at"), "{err}");
    // An enterprise's notice board, the same.
    let uscc = "91140302663810557X";
    let (code, expected, err) = hazeflow(&["registry", "board", uscc, "--list", "seeds/registry"]).await;
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = hazeflow(&["registry", "board", uscc, "--config", &site, "--server", &server, "--token", DUTY]).await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, expected);
    // Without a token the daemon refuses, and the CLI says why (exit 1); an unreachable daemon is 3.
    let (code, _, err) = hazeflow(&["registry", "board", uscc, "--config", &site, "--server", &server]).await;
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("401"), "{err}");
    let (code, _, err) = hazeflow(&[
        "registry",
        "board",
        uscc,
        "--config",
        &site,
        "--server",
        &format!("http://127.0.0.1:{}", free_port()),
    ])
    .await;
    assert_eq!(code, Some(3), "{err}");
    app.stop().await;
}
