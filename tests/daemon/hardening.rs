//! Issue 13: forecast issue times bounded, only complete inbox files read, HTTP limits.

use std::io::Write;
use std::time::Duration;

use hazeflow::domain::region::RegionCode;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

const TAIYUAN: &str = "140100";

/// The id of the current forecast of a region, as the store has it.
fn current_forecast(app: &TestApp, region: &str) -> Option<String> {
    let code = RegionCode::parse(region).expect("a code");
    app.state
        .engine
        .store
        .read(|r| r.latest_forecast(code))
        .expect("the store reads")
        .map(|f| f.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forecast_issued_in_the_future_or_too_long_ago_is_refused_and_the_current_forecast_is_the_latest_received() {
    // The clock: 2026-12-01 15:00 in Taiyuan.
    let app = spawn_app(clock()).await;
    let week = [120, 160, 230, 240, 180, 120, 100];

    // 2099 over HTTP (CSV): refused at the issued_at line, naming the setting.
    let (status, body) = app
        .submit_file("future.csv", forecast_csv("2099-01-01 00:00", SOURCE, TAIYUAN, "2026-12-02", &week))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let error = body["error"].as_str().expect("an error");
    assert!(
        error.starts_with("future.csv:1:1: issued_at 2099-01-01T00:00:00+08:00 lies in the future"),
        "{error}"
    );
    assert!(error.contains("60 minutes ahead of now, forecast.max_ahead_minutes"), "{error}");
    // … and as JSON: the field is named.
    let doc = json!({ "issued_at": "2099-01-01T00:00:00+08:00", "source": SOURCE,
        "values": [{ "region": TAIYUAN, "date": "2026-12-02", "aqi": 231 }] });
    let (status, body) = app.submit_file("future.json", doc.to_string()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("future.json: issued_at: issued_at")),
        "{body}"
    );
    // Older than the longest playbook horizon (7 days): refused too.
    let (status, body) = app
        .submit_file("old.csv", forecast_csv("2026-11-20 16:00", SOURCE, TAIYUAN, "2026-11-21", &week))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("is too old") && e.contains("7 days before now")),
        "{body}"
    );
    // Through the inbox: rejected with the same reason beside the file.
    app.drop_in_inbox(
        "future-inbox.csv",
        forecast_csv("2099-01-01 00:00", SOURCE, TAIYUAN, "2026-12-02", &week),
    );
    let reason = eventually("the inbox rejects the 2099 forecast", || async {
        std::fs::read_to_string(app.inbox().join("rejected/future-inbox.csv.error")).ok()
    })
    .await;
    assert!(
        reason.starts_with("future-inbox.csv:1:1: issued_at 2099-01-01T00:00:00+08:00 lies in the future"),
        "{reason}"
    );
    assert_eq!(current_forecast(&app, TAIYUAN), None, "nothing was recorded for Taiyuan");

    // Within the margin (50 minutes ahead): accepted; then one issued earlier but received later
    // becomes the current forecast (the latest received).
    let (status, ahead) = app
        .submit(forecast_csv("2026-12-01 15:50", SOURCE, TAIYUAN, "2026-12-02", &week))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ahead}");
    assert_eq!(current_forecast(&app, TAIYUAN).as_deref(), ahead["id"].as_str());
    let (status, later) = app
        .submit(forecast_csv(
            "2026-12-01 14:00",
            SOURCE,
            TAIYUAN,
            "2026-12-02",
            &[60, 60, 60, 60, 60, 60, 60],
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{later}");
    assert_eq!(current_forecast(&app, TAIYUAN).as_deref(), later["id"].as_str());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forecast_margin_set_by_the_environment_variable_is_used() {
    let app = spawn_app_with(tempfile::TempDir::new().expect("a folder"), clock(), |s| {
        s.apply_env(|k| (k == "HAZEFLOW_FORECAST_MAX_AHEAD_MINUTES").then(|| "5".to_string()))
            .expect("the variable applies");
    })
    .await;
    let (status, body) = app
        .submit(forecast_csv("2026-12-01 15:10", SOURCE, TAIYUAN, "2026-12-02", &[100, 100]))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("5 minutes ahead")), "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_pausing_mid_line_does_not_get_half_a_file_recorded_and_part_files_are_ignored() {
    // Polls every 200 ms: the grace for an incomplete last line is 10 unchanged polls (2 s).
    let app = spawn_app_with(tempfile::TempDir::new().expect("a folder"), clock(), |s| s.inbox.poll_ms = 200).await;
    let inbox = app.inbox();
    std::fs::create_dir_all(&inbox).expect("the inbox");
    let full = forecast_csv(
        "2026-12-01 14:00",
        SOURCE,
        TAIYUAN,
        "2026-12-02",
        &[250, 320, 280, 220, 150, 120, 100],
    );
    // A writer that stops in the middle of a row ("140100,2026-12-03,3", itself a valid row) for
    // 1.5 s: seven polls see the file unchanged.
    let cut = full.find("2026-12-03,").expect("the third row") + "2026-12-03,3".len();
    let path = inbox.join("slow.csv");
    let mut f = std::fs::File::create(&path).expect("created");
    f.write_all(&full.as_bytes()[..cut]).expect("first half");
    f.flush().expect("flushed");
    // Files being written under temporary names are never read.
    std::fs::write(inbox.join("other.csv.part"), "garbage").expect("a part file");
    std::fs::write(inbox.join(".hidden.csv"), "garbage").expect("a dot file");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(path.exists(), "the half file is still waiting in the inbox");
    assert!(files_in(&inbox.join("processed")).is_empty() && files_in(&inbox.join("rejected")).is_empty());
    f.write_all(&full.as_bytes()[cut..]).expect("the rest");
    f.flush().expect("flushed");
    drop(f);
    eventually("the whole file is processed", || async {
        files_in(&inbox.join("processed")).contains(&"slow.csv".to_string()).then_some(())
    })
    .await;
    let code = RegionCode::parse(TAIYUAN).expect("a code");
    let f = app
        .state
        .engine
        .store
        .read(|r| r.latest_forecast(code))
        .expect("reads")
        .expect("a forecast");
    let values: Vec<Option<u16>> = f.series[&code].iter().map(|d| d.aqi).collect();
    assert_eq!(values.len(), 7, "the whole file, not the first rows: {values:?}");
    assert_eq!(values[1], Some(320));
    assert!(
        inbox.join("other.csv.part").exists() && inbox.join(".hidden.csv").exists(),
        "never touched"
    );
    assert!(files_in(&inbox.join("rejected")).is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_left_without_a_final_newline_is_read_after_the_grace() {
    let app = spawn_app(clock()).await;
    let full = forecast_csv("2026-12-01 14:00", SOURCE, TAIYUAN, "2026-12-02", &[100, 110]);
    let trimmed = full.trim_end().to_string();
    std::fs::create_dir_all(app.inbox()).expect("the inbox");
    std::fs::write(app.inbox().join("no-newline.csv"), trimmed).expect("written");
    eventually("the file is read after the grace", || async {
        files_in(&app.inbox().join("processed"))
            .contains(&"no-newline.csv".to_string())
            .then_some(())
    })
    .await;
    app.stop().await;
}

/// Reads from a raw connection until it is closed or `within` passes: what arrived, and whether it
/// was closed.
async fn read_until_closed(stream: &mut tokio::net::TcpStream, within: Duration) -> (String, bool) {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&out).to_string(), true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&out).to_string(), false),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_slow_bodies_are_cut_off_and_the_connection_limit_keeps_the_server_answering() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app_with(tempfile::TempDir::new().expect("a folder"), clock(), |s| {
        s.http.header_timeout_secs = 1;
        s.http.body_timeout_secs = 1;
        s.http.max_connections = 8;
    })
    .await;
    // Slow headers: half a request line, then nothing. Disconnected after the 1 s timeout.
    let started = std::time::Instant::now();
    let mut slow = tokio::net::TcpStream::connect(app.addr).await.expect("connects");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .expect("written");
    let (_, closed) = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    assert!(closed, "a slow-header client is disconnected");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "after the timeout: {took:?}"
    );

    // Slow body: headers promise 100 bytes, 10 arrive. 408 with a JSON error after 1 s.
    let mut slow = tokio::net::TcpStream::connect(app.addr).await.expect("connects");
    slow.write_all(
        format!("POST /api/v1/forecasts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {HEAD}\r\nContent-Length: 100\r\n\r\nregion,dat")
            .as_bytes(),
    )
    .await
    .expect("written");
    let (answer, _) = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("\"error\":\"the body did not arrive within 1 s (http.body_timeout_secs)\""),
        "{answer}"
    );

    // 40 silent connections against a limit of 8: /healthz still answers (the silent ones are
    // dropped after the header timeout, the waiting ones served in turn).
    let mut silent = Vec::new();
    for _ in 0..40 {
        silent.push(tokio::net::TcpStream::connect(app.addr).await.expect("connects"));
    }
    let started = std::time::Instant::now();
    let (status, body) = app.get("/healthz", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    drop(silent);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_3_mb_forecast_is_accepted_a_larger_one_is_413_json_and_every_api_error_is_json() {
    let app = spawn_app_with(tempfile::TempDir::new().expect("a folder"), clock(), |s| {
        s.inbox.max_bytes = 4 << 20
    })
    .await;
    // 3 MB: the forecast with 3 MB of comment lines (a producer's provenance notes).
    let mut big = forecast_csv("2026-12-01 14:00", SOURCE, TAIYUAN, "2026-12-02", &[100, 110, 120]);
    let note = format!("# note: {}\n", "x".repeat(1000));
    while big.len() < 3 << 20 {
        big.insert_str(0, &note);
    }
    let (status, body) = app.submit_file("big.csv", big.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Over inbox.max_bytes (4 MiB here): 413 as JSON, naming the limit.
    big.push_str(&note.repeat(1200));
    let (status, body) = app.submit_file("huge.csv", big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(
        body["error"],
        format!("the body is larger than the limit of {} bytes (inbox.max_bytes)", 4 << 20)
    );
    // Errors from the router and the extractors: JSON too.
    for (what, req, expected) in [
        (
            "unknown path",
            app.http().get(app.url("/api/v1/nothing-here")).bearer_auth(HEAD),
            StatusCode::NOT_FOUND,
        ),
        (
            "wrong method",
            app.http().delete(app.url("/api/v1/warnings")).bearer_auth(HEAD),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            "bad query",
            app.http().get(app.url("/api/v1/events?after=abc")).bearer_auth(HEAD),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad JSON",
            app.http().post(app.url("/api/v1/directives")).bearer_auth(HEAD).body("{"),
            StatusCode::BAD_REQUEST,
        ),
        ("no token", app.http().get(app.url("/api/v1/warnings")), StatusCode::UNAUTHORIZED),
    ] {
        let resp = req.send().await.expect("answers");
        assert_eq!(resp.status(), expected, "{what}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .is_ok_and(|c| c.starts_with("application/json")),
            "{what}: {:?}",
            resp.headers()
        );
        let v: serde_json::Value = resp.json().await.expect("a JSON body");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{what}: {v}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_carries_the_security_headers_and_private_pages_are_not_cached() {
    let app = spawn_app(clock()).await;
    for (path, no_store) in [
        ("/public", false),
        ("/ack/not-a-real-token", true),
        ("/login", true),
        ("/", true),
        ("/healthz", true),
        ("/api/v1/warnings", true),
    ] {
        let resp = app.http().get(app.url(path)).send().await.expect("answers");
        let h = resp.headers();
        assert!(h.contains_key("content-security-policy"), "{path}: {h:?}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        if no_store {
            assert_eq!(h["cache-control"], "no-store", "{path}");
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_json_keys_and_unmeasurable_concentrations_are_refused_over_http() {
    let app = spawn_app(clock()).await;
    let dup = r#"{"issued_at": "2026-12-01T14:00:00+08:00", "source": "s",
        "values": [{"region": "140100", "date": "2026-12-02", "aqi": 120, "aqi": 320}]}"#;
    let (status, body) = app.submit_file("dup.json", dup).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "dup.json: values[0].aqi: key \"aqi\" appears twice");
    let csv = "# issued_at: 2026-12-01 14:00\nregion,date,pm25\n140100,2026-12-02,1e308\n";
    let (status, body) = app.submit_file("huge.csv", csv).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("huge.csv:3:19: pm25 1e308 µg/m³ is above 1000 µg/m³")),
        "{body}"
    );
    assert_eq!(current_forecast(&app, TAIYUAN), None);
    app.stop().await;
}
