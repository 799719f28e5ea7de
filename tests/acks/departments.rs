//! Departments are told through their contacts on the roster; a department without a contact is
//! shown as such (无联系人) — in the progress and on the warning page — and is not reported overdue
//! or escalated, since nobody told it.

use std::collections::BTreeSet;

use reqwest::StatusCode;

use crate::helpers::*;

/// The test daemon with the shipped roster but for Taiyuan's police contact (公安局), left out.
async fn spawn_without_taiyuans_police_contact(at: &str) -> TestApp {
    let dir = tempfile::TempDir::new().expect("a temporary folder");
    let shipped = std::fs::read_to_string(ROSTER_FILE).expect("the shipped roster");
    let police = shipped
        .lines()
        .find(|l| l.trim_start().starts_with("police:") && l.contains("police.yj@ty.example.cn"))
        .expect("Taiyuan's police contact on the shipped roster")
        .to_string();
    let roster = dir.path().join("roster.yaml");
    std::fs::write(&roster, shipped.replace(&format!("{police}\n"), "")).expect("the roster written");
    let mut settings = settings_in(dir.path());
    settings.roster = roster;
    TestApp::start(dir, hazeflow::clock::Clock::manual(shanghai(at)), settings).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_department_without_a_contact_is_shown_as_such_and_neither_reminded_nor_reported_overdue() {
    // Wednesday 08:05: orange for Taiyuan, 收到 due 12:05.
    let app = spawn_without_taiyuans_police_contact("2026-12-02 08:00").await;
    let id = app
        .propose(TAIYUAN, &orange_forecast("2026-12-02 07:30", "2026-12-02"), "orange")
        .await;
    app.set_clock("2026-12-02 08:05");
    app.sign(&id, DEPUTY).await;

    // Every Taiyuan department with a contact gets its notice with its duty and link; the police
    // department, without one, gets nothing.
    let departments = app.state.defaults.departments.len();
    let notices = app.wait_sent("department_issued", departments - 1).await;
    let to: BTreeSet<&str> = notices.iter().map(|m| m.recipient.address.as_str()).collect();
    assert_eq!(to.len(), departments - 1, "{to:?}");
    assert!(
        to.iter().all(|a| a.ends_with("@ty.example.cn")) && !to.contains("police.yj@ty.example.cn"),
        "{to:?}"
    );
    let (subject, text) = app.delivered(&notices[0].id).await;
    assert!(subject.contains("应急职责通知"), "{subject}");
    assert!(
        text.contains("贵部门职责") && text.contains("https://hazeflow.example.cn/ack/"),
        "{text}"
    );

    // The progress counts it as without a contact, not as missing a deadline.
    let progress = app.progress(&id).await;
    assert_eq!(progress["total"]["no_contact"].as_u64(), Some(1), "{progress}");
    let police = progress["missing"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["party"]["id"] == "police")
        .cloned()
        .expect("the police department is missing");
    assert_eq!(police["no_contact"], true, "{police}");

    // The departments with a contact answer both steps; the enterprises do not.
    for a in app
        .assignments(&id, Some("active"))
        .await
        .iter()
        .filter(|a| a["party"]["type"] == "department" && a["party"]["id"] != "police")
    {
        let (status, v) = app
            .ack_in_place(&app.token(a["key"].as_str().unwrap()), "部门值班", "0351-1234567")
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }

    // 11:05: the enterprises are reminded; no department is (the police department cannot be).
    app.set_clock("2026-12-02 11:05");
    app.wait_sent("ack_reminder", 3).await;
    assert!(app.sent("department_reminder").is_empty());

    // 12:10, past the deadline: the overdue digests name the enterprises, never the police department.
    app.set_clock("2026-12-02 12:10");
    let overdue = app.wait_sent("ack_overdue", 2).await;
    for m in &overdue {
        for s in m.data["sections"].as_array().unwrap() {
            assert_eq!(s["departments"].as_u64(), Some(0), "{s}");
        }
    }
    let progress = app.progress(&id).await;
    assert_eq!(
        (progress["total"]["overdue"].as_u64(), progress["total"]["no_contact"].as_u64()),
        (Some(3), Some(1)),
        "three enterprises overdue, the police department without a contact: {progress}"
    );

    // The warning's page says so: 无联系人 in the missing list, and what to do about it.
    let page = reqwest::Client::new()
        .get(app.url(&format!("/warnings/{id}")))
        .header("cookie", format!("hazeflow_session={DUTY}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("无联系人（未通知）的部门 <strong class=\"bad\">1</strong>"), "{page}");
    let row = page
        .split("<tr")
        .find(|r| r.contains("公安") && r.contains("部门"))
        .unwrap_or_else(|| panic!("a row for the police department: {page}"));
    assert!(row.contains("无联系人") && !row.contains("已逾期"), "{row}");
    app.stop().await;
}
