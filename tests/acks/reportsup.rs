//! Reports up of decisions and the after-episode summary (总结评估), and the re-publication while a
//! warning is in force, through the real daemon with a real SMTP sink: Taiyuan's orange warning is
//! signed (its issue report goes to the province's office, kept with its deadline), published again
//! every 4 h (playbooks/shanxi.yaml `republish_hours`: a valid CAP `Update`, a reminder to each
//! enterprise not yet in place — once per interval, also across a restart), then lifted (the lift
//! report, then the summary with the figures per county, as a page and a Word file).

use mail_parser::MimeHeaders;
use reqwest::StatusCode;
use serde_json::json;

use crate::common::document_xml;
use crate::common::validate_cap;
use crate::helpers::*;
use crate::reports::{UPPER, ack, kept, start, upper_mails};
use crate::smtp::SmtpServer;

/// The upper tier's mails whose subject starts with `prefix`, once there are `n`.
async fn upper_with(smtp: &SmtpServer, prefix: &str, n: usize) -> Vec<(String, String)> {
    let pick = || {
        upper_mails(smtp)
            .into_iter()
            .filter(|(s, _)| s.starts_with(prefix))
            .collect::<Vec<_>>()
    };
    eventually(&format!("{n} mails {prefix} to the upper tier"), || async {
        (pick().len() >= n).then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let got = pick();
    assert_eq!(got.len(), n, "{got:#?}");
    got
}

/// The warning's re-publication records: (seq, n, reminders).
fn republished(app: &TestApp, id: &str) -> Vec<(u64, u64, u64)> {
    app.records("warning")
        .into_iter()
        .filter(|r| r["warning_id"] == id && r["event"]["kind"] == "republished")
        .map(|r| {
            (
                r["seq"].as_u64().unwrap_or(0),
                r["event"]["n"].as_u64().unwrap_or(0),
                r["event"]["reminders"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    shanghai(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_and_the_summary_go_up_and_a_warning_in_force_is_published_again_each_interval_once() {
    let smtp = SmtpServer::start(0, None);
    let app = start(tempfile::TempDir::new().expect("a folder"), "2026-12-02 08:00", &smtp).await;
    let (cement, scripted, coking) = (cement(), scripted(), coking());

    // 08:05: orange signed → the issue report, mailed to the province's office, kept with its deadline.
    let id = app
        .propose(TAIYUAN, &orange_forecast("2026-12-02 07:30", "2026-12-02"), "orange")
        .await;
    app.set_clock("2026-12-02 08:05");
    app.sign(&id, DEPUTY).await;
    let mails = upper_with(&smtp, "【预警信息报送】", 1).await;
    let (subject, text) = &mails[0];
    assert_eq!(subject, "【预警信息报送】太原市重污染天气橙色预警发布情况报告");
    assert!(text.starts_with("山西省重污染天气应急指挥部办公室："), "{text}");
    assert!(
        text.contains("太原市于2026年12月2日 08:05发布重污染天气橙色预警（Ⅱ级应急响应）"),
        "{text}"
    );
    assert!(text.contains("共对3家企业下达应急减排措施"), "{text}");
    assert!(text.contains("报送时限：2026年12月2日 10:05前"), "{text}");
    let issue = kept(&app, &format!("{id}.event.01")).await;
    assert_eq!(issue["report"]["kind"], "issue");
    assert_eq!(issue["report"]["to"]["email"], UPPER);
    assert_eq!(issue["report"]["deadline"], json!(at("2026-12-02 10:05")));
    // The page says when it went out against the deadline.
    let session = login(&app, DUTY).await;
    let (status, html) = page(&app, &format!("/reports/{id}.event.01"), &session).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("报送时限：2026年12月2日 10:05前"), "{html}");
    assert!(
        html.contains("已于2026年12月2日 08:05发送至yjb@shanxi.example.cn，在报送时限内"),
        "{html}"
    );

    // The cement works is in place; the chemical works has confirmed receipt only; the coking plant nothing.
    app.set_clock("2026-12-02 08:35");
    ack(&app, &id, &cement.uscc, "received").await;
    ack(&app, &id, &cement.uscc, "in_place").await;
    ack(&app, &id, &scripted.uscc, "received").await;

    // In force from its start; nothing is published again before 4 h have passed.
    let w = app.warning_of(TAIYUAN).await.expect("the warning");
    let start_at: chrono::DateTime<chrono::Utc> = serde_json::from_value(w["start"].clone()).expect("a start");
    app.clock.set(start_at + chrono::Duration::minutes(1));
    eventually("the warning starts", || async {
        app.warning_of(TAIYUAN).await.filter(|w| w["status"] == "active")
    })
    .await;
    app.clock.set(start_at + chrono::Duration::minutes(239));
    tokio::time::sleep(std::time::Duration::from_millis(2000)).await;
    assert!(republished(&app, &id).is_empty());
    assert!(app.sent("measures_reminder").is_empty());

    // 4 h after the start: one re-publication, a reminder to the two enterprises not in place.
    app.clock.set(start_at + chrono::Duration::hours(4));
    let reminders = app.wait_sent("measures_reminder", 2).await;
    let mut to: Vec<&str> = reminders.iter().map(|m| m.recipient.address.as_str()).collect();
    to.sort_unstable();
    let mut want = vec![scripted.email, coking.email];
    want.sort_unstable();
    assert_eq!(to, want);
    let address = reminders[0].recipient.address.clone();
    let (subject, text) = eventually("the reminder at the SMTP sink", || async {
        smtp.received()
            .iter()
            .filter(|r| r.to.contains(&address))
            .map(|r| {
                let m = r.parsed();
                (
                    m.subject().unwrap_or_default().to_string(),
                    m.body_text(0).map(|t| t.to_string()).unwrap_or_default(),
                )
            })
            .find(|(s, _)| s.contains("持续"))
    })
    .await;
    assert_eq!(
        subject,
        "【橙色预警持续】太原市重污染天气橙色预警仍在执行，请落实应急减排措施并确认"
    );
    assert!(text.contains("仍在执行中") && text.contains("/ack/"), "{text}");
    let once = republished(&app, &id);
    assert_eq!(once.iter().map(|r| (r.1, r.2)).collect::<Vec<_>>(), [(1, 2)]);
    // Its CAP message is an Update of the episode, valid against CAP 1.2; the feed lists it.
    let cap_id = format!("{id}-{}", once[0].0);
    let (status, xml) = app.get_text(&format!("/public/cap/{cap_id}.xml")).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    assert!(xml.contains("<msgType>Update</msgType>") && xml.contains("<references>"), "{xml}");
    assert!(xml.contains("持续执行"), "{xml}");
    let xml_dir = tempfile::TempDir::new().expect("a folder");
    validate_cap(xml_dir.path(), &cap_id, &xml);
    let (_, feed) = app.get_text("/public/feed.atom").await;
    assert!(feed.contains(&cap_id), "{feed}");

    // A restart within the interval publishes nothing again.
    let dir = app.stop().await;
    let app = start(dir, "2026-12-02 08:00", &smtp).await;
    app.clock.set(start_at + chrono::Duration::hours(4) + chrono::Duration::minutes(30));
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(republished(&app, &id).len(), 1);
    assert_eq!(app.sent("measures_reminder").len(), 2);

    // The chemical works confirms its measures; at 8 h only the coking plant is reminded.
    ack(&app, &id, &scripted.uscc, "in_place").await;
    app.clock.set(start_at + chrono::Duration::hours(8));
    let reminders = app.wait_sent("measures_reminder", 3).await;
    assert_eq!(
        reminders.iter().filter(|m| m.recipient.address == coking.email).count(),
        2,
        "{reminders:#?}"
    );
    assert_eq!(
        republished(&app, &id).iter().map(|r| (r.1, r.2)).collect::<Vec<_>>(),
        [(1, 2), (2, 1)]
    );

    // 9 h after the start: lifted → the lift report, then the summary (总结评估).
    app.clock.set(start_at + chrono::Duration::hours(9));
    let (status, body) = app
        .post_json(
            &format!("/api/v1/warnings/{id}/lift"),
            Some(HEAD),
            &json!({ "reason": "空气质量好转" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mails = upper_with(&smtp, "【预警信息报送】", 2).await;
    assert_eq!(mails[1].0, "【预警信息报送】太原市重污染天气橙色预警解除情况报告");
    assert!(mails[1].1.contains("解除重污染天气橙色预警（Ⅱ级应急响应）"), "{}", mails[1].1);
    let lift = kept(&app, &format!("{id}.event.02")).await;
    assert_eq!(lift["report"]["kind"], "lift");

    let mails = upper_with(&smtp, "【总结评估】", 1).await;
    let (subject, text) = &mails[0];
    assert_eq!(
        subject,
        &format!("【总结评估】太原市重污染天气应急响应总结评估报告（预警编号{id}）")
    );
    assert!(text.contains("一、预警过程") && text.contains("三、确认情况（按地区）"), "{text}");
    // The Word file goes with it (the upper tier has no login for the link).
    assert!(text.contains("Word 文件：见附件"), "{text}");
    let (name, docx) = smtp
        .received()
        .iter()
        .map(|r| r.parsed())
        .filter(|m| m.subject().is_some_and(|s| s.starts_with("【总结评估】")))
        .find_map(|m| {
            m.attachments()
                .next()
                .map(|a| (a.attachment_name().unwrap_or_default().to_string(), a.contents().to_vec()))
        })
        .expect("the summary's mail has an attachment");
    assert_eq!(name, format!("太原市重污染天气应急响应总结评估报告（预警编号{id}）.docx"));
    let xml = document_xml(&docx);
    assert!(xml.contains("三、确认情况（按地区）") && xml.contains("小店区"), "{xml}");
    let summary = kept(&app, &format!("{id}.summary")).await;
    assert_eq!(summary["report"]["kind"], "summary");
    // Per county: assigned, received, on time, rate, in place, rate.
    let rows = |heading: &str| -> Vec<Vec<String>> {
        summary["report"]["sections"]
            .as_array()
            .expect("sections")
            .iter()
            .find(|s| s["heading"] == heading)
            .and_then(|s| serde_json::from_value(s["rows"].clone()).ok())
            .unwrap_or_else(|| panic!("no {heading} in {summary:#}"))
    };
    let acks = rows("三、确认情况（按地区）");
    let row = |name: &str| {
        acks.iter()
            .find(|r| r[0] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name}: {acks:?}"))
    };
    assert_eq!(row("小店区")[1..7], ["2", "2", "2", "100.0%", "2", "100.0%"]);
    assert_eq!(row("迎泽区")[1..7], ["1", "0", "0", "0.0%", "0", "0.0%"]);
    let levels = rows("一、预警过程");
    assert_eq!(levels.len(), 1, "{levels:?}");
    assert_eq!(levels[0][0], "橙色预警");
    // Held from the issue (08:05) to the lift (09:00 the next day), as episode::build counts.
    assert_eq!(levels[0][3], "24.9");
    // The Word file says the same.
    let xml = app.docx_xml(&format!("/api/v1/reports/{id}.summary/docx"), DUTY).await;
    for want in [
        "太原市重污染天气应急响应总结评估报告",
        "山西省重污染天气应急指挥部办公室：",
        "三、确认情况（按地区）",
        "小店区",
        "100.0%",
        "五、减排效果",
    ] {
        assert!(xml.contains(want), "word/document.xml lacks {want}: {xml}");
    }
    // Exactly once: a restart makes no second summary.
    let dir = app.stop().await;
    let app = start(dir, "2026-12-02 08:00", &smtp).await;
    app.clock.set(start_at + chrono::Duration::hours(10));
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let made = app.records("report_made");
    let summaries = made.iter().filter(|r| r.to_string().contains(&format!("\"{id}.summary\""))).count();
    assert_eq!(summaries, 1, "{made:#?}");
    assert_eq!(upper_mails(&smtp).iter().filter(|(s, _)| s.starts_with("【总结评估】")).count(), 1);
    let _ = app.stop().await;
}

/// The kinds of a warning's history, in order.
async fn history_kinds(app: &TestApp, id: &str) -> Vec<String> {
    let (status, w) = app.get(&format!("/api/v1/warnings/{id}"), Some(HEAD)).await;
    assert_eq!(status, StatusCode::OK, "{w}");
    w["history"]
        .as_array()
        .expect("a history")
        .iter()
        .filter_map(|r| r["event"]["kind"].as_str().map(str::to_string))
        .collect()
}

/// A kept decision report: its kind, deadline and mail.
async fn decided(app: &TestApp, id: &str, kind: &str, deadline: &str) {
    let r = kept(app, id).await;
    assert_eq!(r["report"]["kind"], kind, "{r:#}");
    assert_eq!(r["report"]["deadline"], json!(at(deadline)), "{r:#}");
    assert_eq!(r["report"]["to"]["email"], UPPER, "{r:#}");
    assert_eq!(r["report"]["message"], format!("{id}-upper-email"), "{r:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_level_change_a_withdrawn_change_and_a_cancellation_each_go_up_once_in_words_of_their_own() {
    let smtp = SmtpServer::start(0, None);
    let app = start(tempfile::TempDir::new().expect("a folder"), "2026-12-02 08:00", &smtp).await;
    let id = app
        .propose(TAIYUAN, &orange_forecast("2026-12-02 07:30", "2026-12-02"), "orange")
        .await;
    app.set_clock("2026-12-02 08:05");
    app.sign(&id, DEPUTY).await;
    upper_with(&smtp, "【预警信息报送】", 1).await;
    assert!(
        history_kinds(&app, &id)
            .await
            .ends_with(&["issued".to_string(), "scheduled".to_string()])
    );

    // 08:30: a forecast above 300 on Friday: red from Friday 00:00 is proposed (the planned lift on
    // Monday withdrawn: reported), the 市长 signs it (the level change: reported).
    app.set_clock("2026-12-02 08:30");
    let csv = forecast_csv(
        "2026-12-02 08:25",
        SOURCE,
        TAIYUAN,
        "2026-12-02",
        &[120, 160, 230, 320, 240, 120, 100],
    );
    let (status, body) = app.post_body("/api/v1/forecasts", Some(HEAD), csv).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    eventually("red is proposed", || async {
        app.warning_of(TAIYUAN).await.filter(|w| w["pending_change"]["level"] == "red")
    })
    .await;
    app.sign(&id, HEAD).await;
    let mails = upper_with(&smtp, "【预警信息报送】", 3).await;
    let (subject, text) = &mails[1];
    assert_eq!(subject, "【预警信息报送】太原市重污染天气预警调整撤回情况报告");
    assert!(text.starts_with("山西省重污染天气应急指挥部办公室："), "{text}");
    assert!(
        text.contains("太原市于2026年12月2日 08:30撤回原定于2026年12月7日 00:00解除预警的决定"),
        "{text}"
    );
    assert!(
        text.contains("重污染天气橙色预警继续执行") && text.contains("报送时限：2026年12月2日 10:30前"),
        "{text}"
    );
    let (subject, text) = &mails[2];
    assert_eq!(subject, "【预警信息报送】太原市重污染天气预警调整情况报告（调整为红色预警）");
    assert!(
        text.contains("太原市于2026年12月2日 08:30决定自2026年12月4日 00:00起将重污染天气预警由橙色预警调整为红色预警（Ⅰ级应急响应）"),
        "{text}"
    );
    assert!(
        text.contains("共对3家企业下达应急减排措施") && text.contains("报送时限：2026年12月2日 10:30前"),
        "{text}"
    );
    decided(&app, &format!("{id}.event.02"), "withdraw", "2026-12-02 10:30").await;
    decided(&app, &format!("{id}.event.03"), "adjust", "2026-12-02 10:30").await;

    // 09:00: the forecast is orange again: the upgrade is withdrawn and the Monday lift decided again
    // in one consultation: one report, of the lift, saying what it withdrew.
    app.set_clock("2026-12-02 09:00");
    let (status, body) = app
        .post_body("/api/v1/forecasts", Some(HEAD), orange_forecast("2026-12-02 08:55", "2026-12-02"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mails = upper_with(&smtp, "【预警信息报送】", 4).await;
    let (subject, text) = &mails[3];
    assert_eq!(subject, "【预警信息报送】太原市重污染天气橙色预警解除情况报告");
    assert!(
        text.contains(
            "太原市于2026年12月2日 09:00撤回原定于2026年12月4日 00:00起将预警调整为红色预警的决定，决定于2026年12月7日 00:00解除重污染天气橙色预警"
        ),
        "{text}"
    );
    decided(&app, &format!("{id}.event.04"), "lift", "2026-12-02 11:00").await;

    // 09:30: called off before its start (Thursday 00:00): a cancellation, with the tasks it ended.
    app.set_clock("2026-12-02 09:30");
    let (status, body) = app
        .post_json(
            &format!("/api/v1/warnings/{id}/cancel"),
            Some(DEPUTY),
            &json!({ "reason": "预报好转" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mails = upper_with(&smtp, "【预警信息报送】", 5).await;
    let (subject, text) = &mails[4];
    assert_eq!(subject, "【预警信息报送】太原市重污染天气橙色预警取消情况报告");
    assert!(
        text.contains(
            "太原市于2026年12月2日 09:30决定取消原定于2026年12月3日 00:00起执行的重污染天气橙色预警（预报好转），自2026年12月2日 09:30起生效"
        ),
        "{text}"
    );
    assert!(
        text.contains("共对3家企业下达应急减排措施") && text.contains("小店区／2／"),
        "{text}"
    );
    decided(&app, &format!("{id}.event.05"), "cancel", "2026-12-02 11:30").await;
    // Each went out once (and the summary follows the cancellation).
    upper_with(&smtp, "【总结评估】", 1).await;
    let mut subjects: Vec<String> = upper_mails(&smtp).into_iter().map(|(s, _)| s).collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), 6, "{subjects:#?}");
    let (_, list) = app.get(&format!("/api/v1/reports?warning={id}"), Some(DUTY)).await;
    let kinds: Vec<&str> = list["reports"]
        .as_array()
        .expect("reports")
        .iter()
        .filter_map(|r| r["report"]["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["issue", "withdraw", "adjust", "lift", "cancel", "summary"]);
    let _ = app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drills_decisions_summary_and_re_publication_are_marked_as_a_drill_and_leave_the_real_counts_alone() {
    let smtp = SmtpServer::start(0, None);
    let app = start(tempfile::TempDir::new().expect("a folder"), "2026-12-02 08:00", &smtp).await;
    let cement = cement();
    // 08:05: the real orange warning (from Thursday 00:00), signed.
    let real = app
        .propose(TAIYUAN, &orange_forecast("2026-12-02 07:30", "2026-12-02"), "orange")
        .await;
    app.set_clock("2026-12-02 08:05");
    app.sign(&real, DEPUTY).await;
    upper_with(&smtp, "【预警信息报送】", 1).await;
    let (_, public_before) = app.get_text("/public").await;
    let (_, feed_before) = app.get_text("/public/feed.atom").await;

    // 08:10: a drill's red warning for Taiyuan, in force at once, signed by the 市长.
    app.set_clock("2026-12-02 08:10");
    let (status, sub) = app
        .post_body(
            "/api/v1/forecasts?exercise=true",
            Some(DUTY),
            red_forecast("2026-12-02 08:08", "2026-12-02"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sub}");
    let drill = eventually("the drill proposal", || async {
        let (_, d) = app.get("/api/v1/drills", Some(DUTY)).await;
        d["drills"]
            .as_array()
            .and_then(|l| l.iter().find(|w| w["status"] == "pending"))
            .and_then(|w| w["id"].as_str().map(str::to_string))
    })
    .await;
    app.sign(&drill, HEAD).await;
    // Its issue report: every copy 【演练】, kept under the drill's id.
    let mails = upper_with(&smtp, "【演练】", 1).await;
    let (subject, text) = &mails[0];
    assert_eq!(subject, "【演练】【预警信息报送】太原市重污染天气红色预警发布情况报告");
    assert!(text.starts_with("【演练】本通知为重污染天气应急演练，不是真实预警"), "{text}");
    assert!(text.contains("发布重污染天气红色预警（Ⅰ级应急响应）"), "{text}");
    let issue = kept(&app, &format!("{drill}.event.01")).await;
    assert_eq!(
        (issue["report"]["kind"].as_str(), issue["report"]["exercise"].as_bool()),
        (Some("issue"), Some(true))
    );
    // The drill's cement works confirms receipt (the real task is not acknowledged by it).
    let key = TestApp::of(&app.assignments(&drill, Some("active")).await, &cement.uscc)["key"]
        .as_str()
        .expect("a key")
        .to_string();
    let (status, body) = app
        .post_json(
            &format!("/api/v1/acks/{}", app.token(&key)),
            None,
            &json!({ "step": "received", "name": "王建国", "phone": "13800000001" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // 12:00: both daily reports; the real one counts the real tasks only.
    app.set_clock("2026-12-02 12:00");
    eventually("the real daily report", || async {
        let (s, _) = app.get(&format!("/api/v1/reports/{real}.daily.20261202"), Some(DUTY)).await;
        (s == StatusCode::OK).then_some(())
    })
    .await;
    let r = kept(&app, &format!("{real}.daily.20261202")).await;
    assert_eq!(
        (r["report"]["total"]["assigned"].as_u64(), r["report"]["total"]["received"].as_u64()),
        (Some(3), Some(0)),
        "{r:#}"
    );

    // 4 h after its start: the drill is published again, its reminders 【演练】; the real warning (not
    // yet in force) is not.
    let w = app.get(&format!("/api/v1/warnings/{drill}"), Some(HEAD)).await.1["warning"].clone();
    assert_eq!(w["status"], "active", "{w:#}");
    let start_at: chrono::DateTime<chrono::Utc> = serde_json::from_value(w["start"].clone()).expect("a start");
    app.clock.set(start_at + chrono::Duration::hours(4));
    let reminders = app.wait_sent("measures_reminder", 3).await;
    assert!(
        reminders
            .iter()
            .all(|m| m.data["warning_id"] == drill.as_str() && m.data["exercise"] == true),
        "{reminders:#?}"
    );
    let (subject, text) = eventually("a drill reminder at the SMTP sink", || async {
        smtp.received()
            .iter()
            .map(|r| {
                let m = r.parsed();
                (
                    m.subject().unwrap_or_default().to_string(),
                    m.body_text(0).map(|t| t.to_string()).unwrap_or_default(),
                )
            })
            .find(|(s, _)| s.contains("持续"))
    })
    .await;
    assert_eq!(
        subject,
        "【演练】【红色预警持续】太原市重污染天气红色预警仍在执行，请落实应急减排措施并确认"
    );
    assert!(text.starts_with("【演练】"), "{text}");
    assert_eq!(republished(&app, &drill).len(), 1);
    assert!(republished(&app, &real).is_empty());
    // Its CAP Update is an exercise; the public page and the feed know nothing of it.
    let cap_id = format!("{drill}-{}", republished(&app, &drill)[0].0);
    let (status, xml) = app.get_text(&format!("/public/cap/{cap_id}.xml")).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    assert!(
        xml.contains("<status>Exercise</status>") && xml.contains("<msgType>Update</msgType>"),
        "{xml}"
    );

    // The drill ends: its lift report and its summary, both 【演练】.
    let (status, body) = app
        .post_json(
            &format!("/api/v1/warnings/{drill}/lift"),
            Some(HEAD),
            &json!({ "reason": "演练结束" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mails = upper_with(&smtp, "【演练】", 4).await;
    let subjects: Vec<&str> = mails.iter().map(|(s, _)| s.as_str()).collect();
    assert!(
        subjects.contains(&"【演练】【预警信息报送】太原市重污染天气红色预警解除情况报告"),
        "{subjects:#?}"
    );
    assert!(
        subjects.contains(&"【演练】【日报】太原市重污染天气红色预警应急响应日报（2026年12月2日）"),
        "{subjects:#?}"
    );
    assert!(
        subjects.contains(&format!("【演练】【总结评估】太原市重污染天气应急响应总结评估报告（预警编号{drill}）").as_str()),
        "{subjects:#?}"
    );
    assert!(mails.iter().all(|(_, t)| t.starts_with("【演练】")), "{mails:#?}");
    let summary = kept(&app, &format!("{drill}.summary")).await;
    assert_eq!(summary["report"]["exercise"], true);
    // The real mails to the upper tier never say 演练; the real warning's reports are its own.
    let real_mails: Vec<(String, String)> = upper_mails(&smtp).into_iter().filter(|(s, _)| !s.starts_with("【演练】")).collect();
    assert_eq!(real_mails.len(), 2, "{real_mails:#?}");
    assert!(
        real_mails.iter().all(|(s, t)| !s.contains("演练") && !t.contains("演练")),
        "{real_mails:#?}"
    );
    let (_, list) = app.get(&format!("/api/v1/reports?warning={real}"), Some(DUTY)).await;
    let ids: Vec<&str> = list["reports"]
        .as_array()
        .expect("reports")
        .iter()
        .filter_map(|r| r["report"]["id"].as_str())
        .collect();
    assert_eq!(ids, [format!("{real}.daily.20261202"), format!("{real}.event.01")]);
    let (_, public) = app.get_text("/public").await;
    assert!(!public.contains(&drill) && !public.contains("演练"), "{public}");
    assert!(public_before.contains(&real) && public.contains(&real));
    let (_, feed) = app.get_text("/public/feed.atom").await;
    assert_eq!(feed.matches("<entry>").count(), feed_before.matches("<entry>").count(), "{feed}");
    assert!(!feed.contains(&drill), "{feed}");
    let w = app.get(&format!("/api/v1/warnings/{real}"), Some(HEAD)).await.1["warning"].clone();
    assert_eq!(w["status"], "issued", "{w:#}");
    let _ = app.stop().await;
}
