//! Everyone told, from start to end, over a real SMTP conversation: the daemon mails through the
//! in-process SMTP server of the `notify` tests, and these tests parse what arrived there. Each
//! enterprise of Taiyuan's list and each department of Taiyuan with a contact on the shipped roster
//! gets exactly one start notice, one change notice (an upgrade) and one end notice (a lift, or a
//! cancel): the subject, the time the measures take effect or end, the measure lines (each naming its
//! line or process, or 全厂) or the department's duty, and a link that opens its acknowledgement page.
//! Each is reminded once when the deadline passes; the duty officers get one overdue digest each per
//! cycle, and the inspections opened for overdue enterprises are closed when the warning ends.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::smtp::{Received, SmtpServer, smtp_to};

/// Starts the daemon of these tests (the test list, the shipped roster and templates) mailing through
/// `smtp`, at a time of the Shanxi wall clock.
async fn spawn_with_smtp(at: &str, smtp: &SmtpServer) -> TestApp {
    let dir = tempfile::TempDir::new().expect("a temporary folder");
    let mut settings = settings_in(dir.path());
    smtp_to(&mut settings, smtp.port);
    settings.mail.rate_per_sec = 0.0;
    TestApp::start(dir, hazeflow::clock::Clock::manual(shanghai(at)), settings).await
}

/// One delivered mail, parsed.
#[derive(Debug, Clone)]
struct Mail {
    to: String,
    subject: String,
    body: String,
}

fn parse(r: &Received) -> Mail {
    let m = r.parsed();
    Mail {
        to: r.to.first().cloned().unwrap_or_default(),
        subject: m.subject().unwrap_or_default().to_string(),
        body: m.body_text(0).map(|t| t.to_string()).unwrap_or_default(),
    }
}

/// The mails delivered so far whose subject starts with one of `prefixes`, by recipient address.
fn by_recipient(smtp: &SmtpServer, prefixes: &[&str]) -> BTreeMap<String, Vec<Mail>> {
    let mut out: BTreeMap<String, Vec<Mail>> = BTreeMap::new();
    for m in smtp.received().iter().map(parse) {
        if prefixes.iter().any(|p| m.subject.starts_with(p)) {
            out.entry(m.to.clone()).or_default().push(m);
        }
    }
    out
}

/// Waits until every address of `to` has a mail whose subject starts with `prefix`, then a moment more
/// to see that no second one follows; returns one mail per address.
async fn each_once(smtp: &SmtpServer, to: &BTreeSet<String>, prefix: &str) -> BTreeMap<String, Mail> {
    eventually(&format!("{} mails {prefix}", to.len()), || async {
        let got = by_recipient(smtp, &[prefix]);
        to.iter().all(|a| got.contains_key(a)).then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let got = by_recipient(smtp, &[prefix]);
    let mut out = BTreeMap::new();
    for a in to {
        let mine = &got[a];
        assert_eq!(mine.len(), 1, "{a} gets exactly one {prefix} mail: {mine:#?}");
        out.insert(a.clone(), mine[0].clone());
    }
    // Duty staff hear of the warning too (with subjects of their own); nobody else.
    let roster = hazeflow::notify::Roster::load(std::path::Path::new(ROSTER_FILE)).expect("the shipped roster");
    let staff: BTreeSet<String> = roster.people().map(|p| p.email.clone()).collect();
    let strangers: Vec<&String> = got.keys().filter(|a| !to.contains(*a) && !staff.contains(*a)).collect();
    assert!(strangers.is_empty(), "{prefix} mails to nobody expected: {strangers:?}");
    out
}

/// The acknowledgement link in a mail's text.
fn link(m: &Mail) -> String {
    let start = m
        .body
        .find("https://hazeflow.example.cn/ack/")
        .unwrap_or_else(|| panic!("no link in {m:#?}"));
    m.body[start..]
        .split_whitespace()
        .next()
        .expect("a link")
        .trim_start_matches("https://hazeflow.example.cn")
        .to_string()
}

/// The numbered measure lines of an enterprise's mail (`1. 1#熟料线：限产20%`).
fn numbered_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| {
            l.split_once(". ")
                .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        })
        .map(|l| l.split_once(". ").map(|(_, rest)| rest.to_string()).unwrap_or_default())
        .collect()
}

/// Taiyuan's departments with duties at `level`, as (id, its contact's address on the shipped roster).
fn department_addresses() -> BTreeMap<String, String> {
    let roster = hazeflow::notify::Roster::load(std::path::Path::new(ROSTER_FILE)).expect("the shipped roster");
    let taiyuan = hazeflow::domain::region::RegionCode::parse(TAIYUAN).expect("a code");
    hazeflow::registry::shanxi_defaults()
        .departments
        .iter()
        .filter(|d| d.duties.contains_key("orange") && d.duties.contains_key("red"))
        .map(|d| {
            let c = roster.department_contacts(taiyuan, &d.id);
            assert_eq!(c.len(), 1, "one contact of {} in the shipped roster", d.id);
            (d.id.clone(), c[0].email.clone())
        })
        .collect()
}

/// The enterprises of Taiyuan on the test list, by their 责任人's address.
fn enterprise_addresses() -> BTreeMap<String, Firm> {
    [cement(), scripted(), coking()]
        .into_iter()
        .map(|f| (f.email.to_string(), f))
        .collect()
}

/// The ack page a link opens: status and text.
async fn page(app: &TestApp, link: &str) -> (StatusCode, String) {
    app.get_text(link).await
}

/// Checks a start or change notice: the subject, when the measures apply, the lines or the duty, and
/// a link to a page that can be acknowledged.
async fn check_notice(app: &TestApp, m: &Mail, subject_start: &str, applies: &str, firms: &BTreeMap<String, Firm>) {
    assert!(m.subject.starts_with(subject_start), "{}: {}", m.to, m.subject);
    assert!(m.body.contains(&format!("自{applies}起执行")), "{}: {}", m.to, m.body);
    if let Some(f) = firms.get(&m.to) {
        assert!(m.body.contains(f.name), "{}", m.body);
        let lines = numbered_lines(&m.body);
        assert!(!lines.is_empty(), "{}", m.body);
        for l in &lines {
            let (subject, _) = l.split_once('：').unwrap_or_else(|| panic!("{l} names no line, process or 全厂"));
            assert!(!subject.is_empty(), "{l}");
        }
    } else {
        assert!(m.body.contains("贵部门职责："), "{}", m.body);
    }
    let (status, html) = page(app, &link(m)).await;
    assert_eq!(status, StatusCode::OK, "{}: {html}", m.to);
    assert!(
        html.contains("<form method=\"post\""),
        "{}: the page takes an acknowledgement",
        m.to
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_then_a_lift_tells_every_enterprise_and_department_once_each_of_the_start_the_change_and_the_end() {
    let smtp = SmtpServer::start(0, None);
    let app = spawn_with_smtp("2026-12-02 08:00", &smtp).await;
    let firms = enterprise_addresses();
    let departments = department_addresses();
    assert_eq!(departments.len(), 9, "{departments:?}");
    let everyone: BTreeSet<String> = firms.keys().cloned().chain(departments.values().cloned()).collect();

    // Wednesday 08:05: orange from tomorrow 00:00 is signed.
    let id = app
        .propose(TAIYUAN, &orange_forecast("2026-12-02 07:30", "2026-12-02"), "orange")
        .await;
    app.set_clock("2026-12-02 08:05");
    app.sign(&id, DEPUTY).await;
    let start = each_once(&smtp, &everyone, "【橙色预警】").await;
    for m in start.values() {
        check_notice(&app, m, "【橙色预警】太原市重污染天气橙色预警", "2026年12月3日 00:00", &firms).await;
    }

    // 09:00: red from now; the head signs: one 【调整】 each, in force at once.
    app.set_clock("2026-12-02 09:00");
    app.propose(TAIYUAN, &red_forecast("2026-12-02 08:50", "2026-12-02"), "red").await;
    app.sign(&id, HEAD).await;
    let change = each_once(&smtp, &everyone, "【调整】").await;
    for m in change.values() {
        check_notice(&app, m, "【调整】太原市重污染天气预警调整为红色预警", "2026年12月2日 09:00", &firms).await;
    }
    // The orange link now says its task was replaced and points to the red one.
    let old = &start[firms.keys().next().expect("a firm")];
    let (status, html) = page(&app, &link(old)).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(html.contains("本任务已被新的预警级别任务替代"), "{html}");

    // Nobody acknowledges. Red's deadline is 11:00: at 11:05 each duty officer on shift gets one digest
    // for this cycle — 小店区's (白雪) for its two plants; Taiyuan's day shift (王芳) one for 迎泽区's
    // plant and the city's departments together.
    app.set_clock("2026-12-02 11:05");
    let overdue = eventually("the overdue digests", || async {
        let got = app.sent("ack_overdue");
        (got.len() >= 2).then_some(got)
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let overdue_now = app.sent("ack_overdue");
    assert_eq!(overdue_now.len(), overdue.len());
    let per_officer: BTreeMap<String, usize> = overdue_now.iter().fold(BTreeMap::new(), |mut m, x| {
        *m.entry(x.recipient.key.clone()).or_default() += 1;
        m
    });
    assert_eq!(
        per_officer,
        BTreeMap::from([("ty-wang-fang".to_string(), 1), ("xd-bai-xue".to_string(), 1)]),
        "one digest per officer per cycle"
    );
    let wang = overdue_now
        .iter()
        .find(|m| m.recipient.key == "ty-wang-fang")
        .expect("王芳's digest");
    let sections = wang.data["sections"].as_array().expect("sections");
    let departments_listed: u64 = sections.iter().filter_map(|s| s["departments"].as_u64()).sum();
    assert_eq!(departments_listed, 9, "{}", wang.data);
    let inspections = |status: &'static str| {
        let app = &app;
        let id = id.clone();
        async move {
            let (code, body) = app
                .get(&format!("/api/v1/inspections?warning={id}&status={status}"), Some(DUTY))
                .await;
            assert_eq!(code, StatusCode::OK, "{body}");
            body["inspections"].as_array().cloned().unwrap_or_default()
        }
    };
    assert_eq!(inspections("open").await.len(), 3, "one inspection per overdue enterprise");
    // The reminder (due 10:30) fired with the overdue report: every enterprise and department contact
    // got one, saying the deadline has passed, with its link.
    let reminded = each_once(&smtp, &everyone, "【逾期未确认】").await;
    for m in reminded.values() {
        assert!(m.subject.contains("请于2026年12月2日 11:00前确认"), "{}: {}", m.to, m.subject);
        assert!(m.body.contains("确认时限（2026年12月2日 11:00）已过"), "{}: {}", m.to, m.body);
        let (status, _) = page(&app, &link(m)).await;
        assert_eq!(status, StatusCode::OK, "{}", m.to);
    }

    // 12:00: the head lifts it by hand. Everyone told before hears of the end once, at once.
    app.set_clock("2026-12-02 12:00");
    let (status, body) = app
        .post_json(
            &format!("/api/v1/warnings/{id}/lift"),
            Some(HEAD),
            &json!({ "reason": "空气质量好转" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let end = each_once(&smtp, &everyone, "【解除】").await;
    for m in end.values() {
        assert!(m.subject.contains("于2026年12月2日 12:00解除"), "{}: {}", m.to, m.subject);
        assert!(m.body.contains("执行至2026年12月2日 12:00"), "{}: {}", m.to, m.body);
        let (status, html) = page(&app, &link(m)).await;
        assert_eq!(status, StatusCode::GONE, "{}", m.to);
        assert!(html.contains("预警已解除") && !html.contains("<form method=\"post\""), "{html}");
    }
    // The inspections no longer needed are closed.
    assert!(inspections("open").await.is_empty());
    let closed = inspections("not_needed").await;
    assert_eq!(closed.len(), 3, "{closed:#?}");

    // No other notice went to the enterprises or departments (besides the reminders before the
    // deadline): one start, one change, one end each.
    let all = by_recipient(&smtp, &["【橙色预警】", "【红色预警】", "【调整】", "【解除】", "【取消】"]);
    for a in &everyone {
        let subjects: Vec<&str> = all[a].iter().map(|m| m.subject.as_str()).collect();
        let kinds: Vec<&str> = subjects
            .iter()
            .map(|s| &s[..s.find('】').map_or(0, |i| i + '】'.len_utf8())])
            .collect();
        assert_eq!(kinds, ["【橙色预警】", "【调整】", "【解除】"], "{a}: {subjects:#?}");
    }
    let _ = app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_before_the_start_tells_every_enterprise_and_department_once_and_their_pages_say_cancelled() {
    let smtp = SmtpServer::start(0, None);
    let app = spawn_with_smtp("2026-12-02 08:00", &smtp).await;
    let firms = enterprise_addresses();
    let departments = department_addresses();
    let everyone: BTreeSet<String> = firms.keys().cloned().chain(departments.values().cloned()).collect();

    let id = app
        .propose(TAIYUAN, &orange_forecast("2026-12-02 07:30", "2026-12-02"), "orange")
        .await;
    app.set_clock("2026-12-02 08:05");
    app.sign(&id, DEPUTY).await;
    let start = each_once(&smtp, &everyone, "【橙色预警】").await;

    // 10:00, before the 00:00 start: the deputy head cancels it.
    app.set_clock("2026-12-02 10:00");
    let (status, body) = app
        .post_json(
            &format!("/api/v1/warnings/{id}/cancel"),
            Some(DEPUTY),
            &json!({ "reason": "会商结果调整" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let end = each_once(&smtp, &everyone, "【取消】").await;
    for (a, m) in &end {
        assert!(m.subject.contains("已取消"), "{a}: {}", m.subject);
        assert!(m.body.contains("原定自2026年12月3日 00:00起执行"), "{a}: {}", m.body);
        assert!(m.body.contains("无需执行"), "{a}: {}", m.body);
        // Both the start link and the end link now say 已取消, not 已解除.
        for l in [link(m), link(&start[a])] {
            let (status, html) = page(&app, &l).await;
            assert_eq!(status, StatusCode::GONE, "{a}");
            assert!(html.contains("预警已取消") && !html.contains("已解除"), "{a}: {html}");
        }
    }
    let all = by_recipient(&smtp, &["【橙色预警】", "【调整】", "【解除】", "【取消】"]);
    for a in &everyone {
        assert_eq!(all[a].len(), 2, "{a}: a start and a cancel: {:#?}", all[a]);
    }
    let progress: Value = app.progress(&id).await;
    assert_eq!(progress["total"]["assigned"], 0, "nothing in force after the cancel: {progress}");
    let _ = app.stop().await;
}
