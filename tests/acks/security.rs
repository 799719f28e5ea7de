//! Tokens act only on their own assignment; wrong, superseded and ended tokens change nothing; staff
//! endpoints need a staff token; names are shown as text.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

fn received() -> Value {
    json!({ "step": "received", "name": "王建国", "phone": "13800000001" })
}

/// The log's last sequence number once it has stood still for a second: what the previous step set
/// going in the background (the consultation's or the decision's follow-up records) is done, so that
/// a later difference is the step under test.
async fn settled(seq: &impl Fn() -> u64) -> u64 {
    let mut last = seq();
    let mut still = std::time::Instant::now();
    while still.elapsed() < std::time::Duration::from_secs(1) {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let now = seq();
        if now != last {
            (last, still) = (now, std::time::Instant::now());
        }
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_superseded_ended_or_other_enterprises_token_gets_404_or_410_and_changes_nothing() {
    let (app, id) = orange_issued_wednesday_morning().await;
    let (cement, scripted) = (cement(), scripted());
    let orange = app.assignments(&id, Some("active")).await;
    let cement_key = TestApp::of(&orange, &cement.uscc)["key"].as_str().unwrap().to_string();
    let scripted_key = TestApp::of(&orange, &scripted.uscc)["key"].as_str().unwrap().to_string();
    let seq = || app.state.engine.store.read(|r| r.last_seq()).unwrap();

    // A wrong token (well-formed, or not): 404 on the page, the form and the API; nothing recorded.
    let before = settled(&seq).await;
    for token in ["0123456789abcdef0123456789abcdef", "x", "..%2F..%2Fetc%2Fpasswd"] {
        let (status, html) = app.get_text(&format!("/ack/{token}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{token}");
        assert!(html.contains("链接无效"), "{html}");
        let (status, _, _) = app
            .post_form(&format!("/ack/{token}"), &[("step", "received"), ("name", "a"), ("phone", "1")])
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = app.post_json(&format!("/api/v1/acks/{token}"), None, &received()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    assert_eq!(seq(), before, "nothing was recorded");

    // Another enterprise's token acts on that enterprise only: the body cannot name another assignment.
    let (status, _) = app
        .post_json(
            &format!("/api/v1/acks/{}", app.token(&scripted_key)),
            None,
            &json!({ "step": "received", "name": "x", "phone": "1", "assignment": cement_key }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, v) = app
        .post_json(&format!("/api/v1/acks/{}", app.token(&scripted_key)), None, &received())
        .await;
    assert_eq!((status, v["assignment"].as_str()), (StatusCode::OK, Some(scripted_key.as_str())));
    let cement_now = TestApp::of(&app.assignments(&id, Some("active")).await, &cement.uscc);
    assert_eq!(cement_now["acks"], json!([]), "the cement works' assignment is untouched");

    // Red supersedes orange: the old token says so (410) and points to the current task; nothing changes.
    app.set_clock("2026-12-02 09:00");
    app.propose(TAIYUAN, &red_forecast("2026-12-02 08:50", "2026-12-02"), "red").await;
    app.sign(&id, HEAD).await;
    let red_key = TestApp::of(&app.assignments(&id, Some("active")).await, &cement.uscc)["key"]
        .as_str()
        .unwrap()
        .to_string();
    let before = settled(&seq).await;
    let old = format!("/ack/{}", app.token(&cement_key));
    let (status, html) = app.get_text(&old).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(
        html.contains("本任务已被新的预警级别任务替代") && html.contains(&app.token(&red_key)),
        "and links to the current task: {html}"
    );
    assert!(!html.contains("<form"), "no form on a superseded task: {html}");
    let (status, _, _) = app
        .post_form(&old, &[("step", "received"), ("name", "王建国"), ("phone", "13800000001")])
        .await;
    assert_eq!(status, StatusCode::GONE);
    let (status, v) = app
        .post_json(&format!("/api/v1/acks/{}", app.token(&cement_key)), None, &received())
        .await;
    assert_eq!(status, StatusCode::GONE, "{v}");
    assert_eq!(v["current"], json!(format!("/ack/{}", app.token(&red_key))));
    assert_eq!(seq(), before, "nothing was recorded");
    let all = app.assignments(&id, None).await;
    assert_eq!(all.iter().find(|a| a["key"] == cement_key.as_str()).unwrap()["acks"], json!([]));

    // Lifted: the current token has expired (410) and still changes nothing.
    let w = app.warning_of(TAIYUAN).await.unwrap();
    let start: chrono::DateTime<chrono::Utc> = serde_json::from_value(w["start"].clone()).unwrap();
    app.clock.set(start + chrono::Duration::hours(1));
    eventually("the warning starts", || async {
        app.warning_of(TAIYUAN).await.filter(|w| w["status"] == "active")
    })
    .await;
    let (status, body) = app.post_json(&format!("/api/v1/warnings/{id}/lift"), Some(HEAD), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let before = settled(&seq).await;
    let (status, html) = app.get_text(&format!("/ack/{}", app.token(&red_key))).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(html.contains("预警已解除，本任务已结束"), "{html}");
    let (status, _) = app
        .post_json(&format!("/api/v1/acks/{}", app.token(&red_key)), None, &received())
        .await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(seq(), before);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_endpoints_need_a_staff_token_and_names_with_markup_show_as_text() {
    let (app, id) = orange_issued_wednesday_morning().await;
    let scripted = scripted();

    // Without a token, or with a wrong one: 401.
    let gets = [
        format!("/api/v1/warnings/{id}/acks"),
        format!("/api/v1/warnings/{id}/assignments"),
        format!("/api/v1/warnings/{id}/summary"),
        format!("/api/v1/warnings/{id}/negotiated"),
        format!("/api/v1/enterprises/{}", scripted.uscc),
        "/api/v1/inspections".to_string(),
        "/api/v1/inspections/x".to_string(),
    ];
    for path in &gets {
        assert_eq!(app.get(path, None).await.0, StatusCode::UNAUTHORIZED, "GET {path}");
        assert_eq!(
            app.get(path, Some("not-a-staff-token")).await.0,
            StatusCode::UNAUTHORIZED,
            "GET {path}"
        );
    }
    let posts = [
        (
            format!("/api/v1/warnings/{id}/negotiated"),
            json!({ "uscc": scripted.uscc, "commitment": "x", "reductions": { "so2": 1 } }),
        ),
        ("/api/v1/inspections".to_string(), json!({ "warning": id, "uscc": scripted.uscc })),
        ("/api/v1/inspections/x/result".to_string(), json!({ "compliant": true })),
    ];
    let before = app.state.engine.store.read(|r| r.last_seq()).unwrap();
    for (path, body) in &posts {
        assert_eq!(app.post_json(path, None, body).await.0, StatusCode::UNAUTHORIZED, "POST {path}");
        assert_eq!(
            app.post_json(path, Some("not-a-staff-token"), body).await.0,
            StatusCode::UNAUTHORIZED,
            "POST {path}"
        );
    }
    assert_eq!(app.state.engine.store.read(|r| r.last_seq()).unwrap(), before);

    // The chemical works' registered name carries a script tag: its page shows it as text.
    let key = TestApp::of(&app.assignments(&id, Some("active")).await, &scripted.uscc)["key"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, html) = app.get_text(&format!("/ack/{}", app.token(&key))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;小店化工有限公司"),
        "{html}"
    );
    // And the reminder email's HTML part.
    app.set_clock("2026-12-02 11:05");
    let reminders = app.wait_sent("ack_reminder", 3).await;
    let m = reminders.iter().find(|m| m.recipient.address == scripted.email).unwrap();
    let path = app
        .state
        .settings
        .mail
        .dir_in(&app.state.settings.data_dir)
        .join(format!("{}.eml", m.id));
    let bytes = eventually("the reminder is delivered", || async { std::fs::read(&path).ok() }).await;
    let parsed = mail_parser::MessageParser::default().parse(&bytes).unwrap();
    let html = parsed.body_html(0).unwrap().to_string();
    assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"), "{html}");

    // And a name typed into the form.
    let (status, _, _) = app
        .post_form(
            &format!("/ack/{}", app.token(&key)),
            &[("step", "received"), ("name", "<img src=x onerror=alert(1)>"), ("phone", "1")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, html) = app.get_text(&format!("/ack/{}", app.token(&key))).await;
    assert!(
        !html.contains("<img") && html.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{html}"
    );

    app.stop().await;
}
