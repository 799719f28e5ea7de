//! A drill (演练) end to end, beside a real warning of the same region, over a real SMTP conversation:
//! Taiyuan is under a real orange warning when a drill's red forecast comes in. The drill runs the
//! whole chain — proposal, sign-off, assignments, notices, acknowledgements, CAP — every mail marked
//! 【演练】, its ack pages saying so, its CAP `status` `Exercise` (valid against the OASIS schema),
//! never on the public page or in the feed; the real warning, its assignments, the public messages
//! and the counts of `/metrics` stay exactly as they were; each one's end leaves the other running.
//! The drill report gives the minutes from the notice to each acknowledgement stage per county.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::smtp::{SmtpServer, smtp_to};

/// The lines of `/metrics` that count warnings, consultations and forecasts.
async fn counts(app: &TestApp) -> Vec<String> {
    let (status, text) = app.get_text("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    text.lines()
        .filter(|l| {
            ["hazeflow_warnings{", "hazeflow_consultations_total ", "hazeflow_forecasts_total{"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(str::to_string)
        .collect()
}

/// Waits until every message of the outbox is sent and the SMTP server has them all; returns how many.
async fn all_delivered(app: &TestApp, smtp: &SmtpServer) -> usize {
    eventually("every queued message is delivered", || async {
        let all = app.outbox();
        let sent = all.iter().all(|m| m.status == hazeflow::notify::outbox::Status::Sent);
        (sent && !all.is_empty() && smtp.received().len() >= all.len()).then_some(all.len())
    })
    .await
}

/// The seq of the first record of `kind` in a warning's history.
async fn seq_of(app: &TestApp, id: &str, kind: &str) -> u64 {
    let (status, w) = app.get(&format!("/api/v1/warnings/{id}"), Some(HEAD)).await;
    assert_eq!(status, StatusCode::OK, "{w}");
    w["history"]
        .as_array()
        .expect("a history")
        .iter()
        .find(|r| r["event"]["kind"] == kind)
        .and_then(|r| r["seq"].as_u64())
        .unwrap_or_else(|| panic!("no {kind} record in {w:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_runs_the_whole_chain_marked_as_a_drill_and_leaves_the_real_warning_and_the_counts_alone() {
    let smtp = SmtpServer::start(0, None);
    let dir = tempfile::TempDir::new().expect("a temporary folder");
    let mut settings = settings_in(dir.path());
    smtp_to(&mut settings, smtp.port);
    settings.mail.rate_per_sec = 0.0;
    let app = TestApp::start(dir, hazeflow::clock::Clock::manual(shanghai("2026-12-02 08:00")), settings).await;

    // 08:05 — the real orange warning of Taiyuan, signed; everyone told.
    let real = app
        .propose(TAIYUAN, &orange_forecast("2026-12-02 07:30", "2026-12-02"), "orange")
        .await;
    app.set_clock("2026-12-02 08:05");
    app.sign(&real, DEPUTY).await;
    let real_assignments = app.assignments(&real, None).await;
    assert!(real_assignments.len() >= 3, "{real_assignments:#?}");
    let real_messages = all_delivered(&app, &smtp).await;
    let real_mails = smtp.received().len();
    let before = counts(&app).await;
    assert!(before.iter().any(|l| l.contains("level=\"orange\"")), "{before:?}");
    let warnings_before = app.warnings().await;
    let real_before = app.get(&format!("/api/v1/warnings/{real}"), Some(HEAD)).await.1["warning"].clone();
    let progress_before = app.progress(&real).await;
    let (_, feed_before) = app.get_text("/public/feed.atom").await;

    // 08:10 — a drill's red forecast for Taiyuan (a CSV marked by the sender, as `hazeflow forecast
    // submit --exercise` sends it) is consulted at once for the drill lane: a drill proposal.
    app.set_clock("2026-12-02 08:10");
    let (status, sub) = app
        .post_body(
            "/api/v1/forecasts?exercise=true",
            Some(DUTY),
            red_forecast("2026-12-02 08:08", "2026-12-02"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sub}");
    assert_eq!(sub["exercise"], true, "{sub}");
    let (_, drills) = app.get("/api/v1/drills", Some(DUTY)).await;
    let drill = drills["drills"]
        .as_array()
        .and_then(|l| l.iter().find(|w| w["region"] == TAIYUAN && w["status"] == "pending"))
        .unwrap_or_else(|| panic!("a drill proposal for Taiyuan: {drills:#}"));
    assert_eq!(
        (drill["level"].as_str(), drill["exercise"].as_bool()),
        (Some("red"), Some(true)),
        "{drill}"
    );
    let drill = drill["id"].as_str().expect("an id").to_string();
    assert!(drill.contains("-D"), "a drill's id says so: {drill}");
    assert_ne!(drill, real);
    // Red needs the head (市长), for a drill as for real.
    let (status, body) = app
        .post_json(
            &format!("/api/v1/warnings/{drill}/sign"),
            Some(DEPUTY),
            &serde_json::json!({ "without_record": "本测试不涉及会商意见" }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    app.sign(&drill, HEAD).await;

    // The real warning is untouched: not raised to red, its list and counts as they were.
    assert_eq!(
        app.warnings().await,
        warnings_before,
        "GET /api/v1/warnings lists the real warnings only"
    );
    let real_now = app.get(&format!("/api/v1/warnings/{real}"), Some(HEAD)).await.1["warning"].clone();
    assert_eq!(real_now, real_before);
    assert_eq!(counts(&app).await, before, "the counts of /metrics do not count the drill");

    // The drill's assignments: the same enterprises, their real tasks still in force beside them.
    let drill_assignments = app.assignments(&drill, Some("active")).await;
    let firms = [cement(), scripted(), coking()];
    for f in &firms {
        let a = TestApp::of(&drill_assignments, &f.uscc);
        assert_eq!((a["level"].as_str(), a["exercise"].as_bool()), (Some("red"), Some(true)), "{a}");
    }
    assert_eq!(app.assignments(&real, Some("active")).await.len(), real_assignments.len());

    // Every mail of the drill — the duty staff's proposal and issue notices, each enterprise's and
    // department's task — says 【演练】 in its subject and opens with the drill line.
    let total = all_delivered(&app, &smtp).await;
    assert!(total > real_messages, "the drill was told");
    let mails = smtp.received();
    let drill_mails: Vec<_> = mails[real_mails..].iter().map(|r| r.parsed()).collect();
    assert_eq!(drill_mails.len(), total - real_messages);
    let mut told = BTreeSet::new();
    for m in &drill_mails {
        let subject = m.subject().unwrap_or_default();
        let body = m.body_text(0).map(|t| t.to_string()).unwrap_or_default();
        assert!(subject.starts_with("【演练】"), "{subject}");
        assert!(
            body.starts_with("【演练】本通知为重污染天气应急演练，不是真实预警"),
            "{subject}\n{body}"
        );
        told.extend(m.to().and_then(|a| a.first()).and_then(|a| a.address()).map(str::to_string));
    }
    for f in &firms {
        assert!(told.contains(f.email), "{} was told of the drill: {told:?}", f.email);
    }
    let subjects: Vec<String> = drill_mails.iter().map(|m| m.subject().unwrap_or_default().to_string()).collect();
    assert!(subjects.iter().any(|s| s.starts_with("【演练】【红色预警】")), "{subjects:#?}");

    // The enterprise's page says it is a drill; it acknowledges as for real.
    let cement_key = TestApp::of(&drill_assignments, &cement().uscc)["key"].as_str().unwrap().to_string();
    let token = app.token(&cement_key);
    let (status, page) = app.get_text(&format!("/ack/{token}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("<title>【演练】太原市重污染天气") && page.contains("这是重污染天气应急演练任务，不是真实预警"),
        "{page}"
    );
    app.set_clock("2026-12-02 08:25");
    let (status, body) = app.ack_in_place(&token, "王建国", "13800000001").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.set_clock("2026-12-02 08:30");
    let scripted_key = TestApp::of(&drill_assignments, &scripted().uscc)["key"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = app
        .post_json(
            &format!("/api/v1/acks/{}", app.token(&scripted_key)),
            None,
            &json!({ "step": "received", "name": "李明", "phone": "13800000002" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The real tasks were not acknowledged by the drill's answers.
    assert_eq!(app.progress(&real).await, progress_before);

    // Public: the page and the feed hold the real warning only; the drill's CAP message is `Exercise`
    // and valid, the real one `Actual`.
    let (_, public) = app.get_text("/public").await;
    assert!(
        public.contains(&real) && !public.contains(&drill),
        "the public page never shows a drill"
    );
    let (_, feed) = app.get_text("/public/feed.atom").await;
    assert_eq!(feed.matches("<entry>").count(), feed_before.matches("<entry>").count());
    assert!(!feed.contains(&drill), "{feed}");
    let xml_dir = tempfile::TempDir::new().unwrap();
    let cap_id = format!("{drill}-{}", seq_of(&app, &drill, "issued").await);
    let (status, xml) = app.get_text(&format!("/public/cap/{cap_id}.xml")).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    assert!(xml.contains("<status>Exercise</status>") && xml.contains("<note>演练："), "{xml}");
    validate_cap(xml_dir.path(), &cap_id, &xml);
    let real_cap = format!("{real}-{}", seq_of(&app, &real, "issued").await);
    let (_, xml) = app.get_text(&format!("/public/cap/{real_cap}.xml")).await;
    assert!(xml.contains("<status>Actual</status>") && !xml.contains("<note>"), "{xml}");

    // The drill report: minutes from the notice (08:10) to each stage, per county.
    let (status, report) = app.get(&format!("/api/v1/drills/{drill}/report"), Some(DUTY)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let xiaodian = report["regions"]
        .as_array()
        .and_then(|l| l.iter().find(|r| r["region"] == XIAODIAN))
        .unwrap_or_else(|| panic!("小店区 in {report:#}"));
    assert_eq!(xiaodian["assigned"], 2, "{xiaodian}");
    assert_eq!(
        xiaodian["received"],
        json!({ "done": 2, "missing": 0, "median": 15.0, "p90": 20.0, "max": 20.0 })
    );
    assert_eq!(
        xiaodian["in_place"],
        json!({ "done": 1, "missing": 1, "median": 15.0, "p90": 15.0, "max": 15.0 })
    );
    let yingze = report["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["region"] == YINGZE)
        .unwrap();
    assert_eq!(
        (yingze["received"]["done"].as_u64(), yingze["received"]["max"].clone()),
        (Some(0), Value::Null)
    );
    // The after-episode summary of a drill says so too; a real warning has no drill report.
    let (_, summary) = app.get(&format!("/api/v1/warnings/{drill}/summary"), Some(DUTY)).await;
    assert_eq!(summary["warning"]["exercise"], true, "{summary:#}");
    let (status, _) = app.get(&format!("/api/v1/drills/{real}/report"), Some(DUTY)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The CLI prints the same for duty staff, in Chinese.
    let bin = env!("CARGO_BIN_EXE_hazeflow");
    let args = [
        "drill",
        "report",
        &drill,
        "--server",
        &format!("http://{}", app.addr),
        "--token",
        DUTY,
    ]
    .map(str::to_string);
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin)
            .args(args)
            .env_remove("HAZEFLOW_TOKEN")
            .output()
            .expect("the CLI runs")
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    let row = table.lines().find(|l| l.starts_with("小店区")).unwrap_or_else(|| panic!("{table}"));
    assert!(table.starts_with(&format!("【演练】{drill}")), "{table}");
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        ["小店区", "2", "|", "2", "0", "15", "20", "20", "|", "1", "1", "15", "15", "15"],
        "{table}"
    );

    // The real warning's end leaves the drill running: the real one is cancelled (it begins at 00:00
    // of a later day), the drill (in force since today) lifted; each told apart.
    app.set_clock("2026-12-02 08:40");
    let (status, body) = app
        .post_json(
            &format!("/api/v1/warnings/{real}/cancel"),
            Some(DEPUTY),
            &json!({ "reason": "预报好转" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, w) = app.get(&format!("/api/v1/warnings/{drill}"), Some(HEAD)).await;
    assert!(["issued", "active"].contains(&w["warning"]["status"].as_str().unwrap()), "{w:#}");
    assert_eq!(app.assignments(&drill, Some("active")).await.len(), drill_assignments.len());
    let (status, body) = app
        .post_json(
            &format!("/api/v1/warnings/{drill}/lift"),
            Some(HEAD),
            &json!({ "reason": "演练结束" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    all_delivered(&app, &smtp).await;
    let subjects: Vec<String> = smtp.received()[real_mails..]
        .iter()
        .map(|r| r.parsed().subject().unwrap_or_default().to_string())
        .collect();
    let cancelled: Vec<&String> = subjects.iter().filter(|s| s.contains("【取消】")).collect();
    let lifted: Vec<&String> = subjects.iter().filter(|s| s.contains("【解除】")).collect();
    assert!(
        !cancelled.is_empty() && cancelled.iter().all(|s| !s.starts_with("【演练】")),
        "{subjects:#?}"
    );
    assert!(
        !lifted.is_empty() && lifted.iter().all(|s| s.starts_with("【演练】")),
        "{subjects:#?}"
    );
    let (_, w) = app.get(&format!("/api/v1/warnings/{real}"), Some(HEAD)).await;
    assert_eq!(w["warning"]["status"], "cancelled");
    assert_eq!(counts(&app).await.iter().filter(|l| l.starts_with("hazeflow_warnings{")).count(), 0);
    // `hazeflow verify` rebuilds both lanes from the log and finds the stored views as they should be.
    let diffs = app.state.engine.store.read(|r| r.verify_views()).expect("the views read");
    assert!(diffs.is_empty(), "{diffs:#?}");
    app.stop().await;
}
