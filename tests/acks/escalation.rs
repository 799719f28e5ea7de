//! No acknowledgement: a reminder before the deadline, then the county's duty staff, then the city's, then
//! the province's — each once, also when the daemon restarts in between.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

fn ids(msgs: &[hazeflow::notify::OutboxMessage]) -> BTreeSet<String> {
    msgs.iter().map(|m| m.recipient.key.clone()).collect()
}

fn missing_names(m: &hazeflow::notify::OutboxMessage) -> BTreeSet<String> {
    m.data["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_acknowledgement_a_reminder_goes_then_the_county_the_city_and_the_province_are_told_once_each_across_restarts() {
    // Wednesday 08:05: orange for Taiyuan, due 12:05. The departments answer at once; the enterprises do not.
    let (app, id) = orange_issued_wednesday_morning().await;
    app.ack_departments(&id).await;
    let (cement, scripted, coking) = (cement(), scripted(), coking());

    // 10:30: nothing yet.
    app.set_clock("2026-12-02 10:30");
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert!(app.sent("ack_reminder").is_empty());

    // 11:05, an hour before the deadline: one reminder to each enterprise.
    app.set_clock("2026-12-02 11:05");
    let reminders = app.wait_sent("ack_reminder", 3).await;
    let to: BTreeSet<&str> = reminders.iter().map(|m| m.recipient.address.as_str()).collect();
    assert_eq!(to, BTreeSet::from([cement.email, scripted.email, coking.email]));

    // 11:30 the daemon is stopped; it is down over the deadline and starts again at 12:10.
    app.set_clock("2026-12-02 11:30");
    let clock = app.clock.clone();
    let dir = app.stop().await;
    clock.set(shanghai("2026-12-02 12:10"));
    let app = spawn_in(dir, clock).await;

    // → the overdue timer fires once at start: 小店区's own duty officer (白雪, on shift 08:30–17:30) hears of
    // its two enterprises; 迎泽区 keeps no roster, so Taiyuan's day shift (王芳) hears of the coking plant.
    let overdue = app.wait_sent("ack_overdue", 2).await;
    assert_eq!(
        ids(&overdue),
        BTreeSet::from(["xd-bai-xue".to_string(), "ty-wang-fang".to_string()])
    );
    let county = overdue.iter().find(|m| m.recipient.key == "xd-bai-xue").unwrap();
    assert_eq!(
        missing_names(county),
        BTreeSet::from([cement.name.to_string(), scripted.name.to_string()])
    );
    assert_eq!(
        (county.data["count"].as_u64(), county.data["inspections_opened"].as_u64()),
        (Some(2), Some(2)),
        "{}",
        county.data
    );
    let city = overdue.iter().find(|m| m.recipient.key == "ty-wang-fang").unwrap();
    assert_eq!(missing_names(city), BTreeSet::from([coking.name.to_string()]));
    let (subject, text) = app.delivered(&county.id).await;
    assert_eq!(subject, "【逾期未确认】小店区2家单位未确认太原市重污染天气橙色预警应急响应任务");
    assert!(
        text.contains("白雪同志") && text.contains("王建国") && text.contains("13800000001"),
        "{text}"
    );
    assert_eq!(app.sent("ack_reminder").len(), 3, "no reminder is sent twice after the restart");

    // 12:30: the coking plant answers.
    app.set_clock("2026-12-02 12:30");
    let key = TestApp::of(&app.assignments(&id, Some("active")).await, &coking.uscc)["key"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = app
        .post_json(
            &format!("/api/v1/acks/{}", app.token(&key)),
            None,
            &json!({ "step": "received", "name": "赵磊", "phone": "13800000003" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // 14:05, two hours on: the city's duty staff hear of the two still missing in 小店区.
    app.set_clock("2026-12-02 14:05");
    let escalated = app.wait_sent("ack_escalated", 1).await;
    assert_eq!(escalated[0].recipient.key, "ty-wang-fang");
    assert_eq!(escalated[0].data["tier_region"], TAIYUAN);
    assert_eq!(
        missing_names(&escalated[0]),
        BTreeSet::from([cement.name.to_string(), scripted.name.to_string()])
    );
    let (subject, _) = app.delivered(&escalated[0].id).await;
    assert_eq!(
        subject,
        "【逾期上报】太原市：2家单位逾期仍未确认太原市重污染天气橙色预警应急响应任务"
    );

    // Another restart, with no time passing: nothing fires again.
    let clock = app.clock.clone();
    let dir = app.stop().await;
    let app = spawn_in(dir, clock).await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!((app.sent("ack_overdue").len(), app.sent("ack_escalated").len()), (2, 1));

    // 16:05: the province's duty officer on the day shift (张伟).
    app.set_clock("2026-12-02 16:05");
    let escalated = app.wait_sent("ack_escalated", 2).await;
    let province = escalated
        .iter()
        .find(|m| m.data["tier_region"] == "140000")
        .expect("the province is told");
    assert_eq!(province.recipient.key, "sx-zhang-wei");
    assert_eq!(province.data["count"].as_u64(), Some(2));

    // The chain has ended: the evening brings nothing more, and the log has one record per step.
    app.set_clock("2026-12-02 22:00");
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(
        (
            app.sent("ack_reminder").len(),
            app.sent("ack_overdue").len(),
            app.sent("ack_escalated").len()
        ),
        (3, 2, 2)
    );
    assert_eq!(
        (
            app.records("ack_reminded").len(),
            app.records("ack_overdue").len(),
            app.records("ack_escalated").len()
        ),
        (1, 1, 2)
    );
    // Only the second stage's timers are left: the measures are due in place at the start, 12-03 00:00.
    let timers = app.state.engine.store.read(hazeflow::engine::escalate::pending).unwrap();
    assert!(
        !timers.is_empty()
            && timers
                .iter()
                .all(|t| t.stage == hazeflow::domain::ack_step::AckStep::InPlace && t.deadline == shanghai("2026-12-03 00:00")),
        "{timers:#?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_superseded_or_lifted_batch_is_neither_reminded_nor_reported() {
    let (app, id) = orange_issued_wednesday_morning().await;
    // 09:00: red supersedes orange (deadline 11:00, reminder at 10:30); the orange timers find nothing to do.
    app.set_clock("2026-12-02 09:00");
    app.propose(TAIYUAN, &red_forecast("2026-12-02 08:50", "2026-12-02"), "red").await;
    app.sign(&id, HEAD).await;
    app.ack_departments(&id).await;
    for uscc in [cement().uscc, scripted().uscc, coking().uscc] {
        let key = TestApp::of(&app.assignments(&id, Some("active")).await, &uscc)["key"]
            .as_str()
            .unwrap()
            .to_string();
        let (status, body) = app.ack_in_place(&app.token(&key), "值班", "13800000000").await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // Past every orange and red timer of both stages (orange's measures were due in place at 12-03 00:00):
    // acknowledged and superseded assignments are chased by nobody.
    app.set_clock("2026-12-03 06:00");
    eventually("every timer has fired", || async {
        app.state
            .engine
            .store
            .read(hazeflow::engine::escalate::pending)
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(
        (
            app.sent("ack_reminder").len(),
            app.sent("ack_overdue").len(),
            app.sent("ack_escalated").len()
        ),
        (0, 0, 0)
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duty_officer_told_of_several_counties_gets_one_digest_per_cycle_with_dashboard_links_that_fits_a_phone() {
    // Two more plants in Taiyuan counties without a roster of their own (杏花岭区, 万柏林区): with 迎泽区's
    // coking plant, three counties fall back to Taiyuan's duty officer (王芳) at the deadline.
    let dir = tempfile::TempDir::new().unwrap();
    let settings = settings_in(dir.path());
    let list = settings.list_seed.clone().unwrap().join("enterprises.csv");
    let code = |county: &str, org: &str| hazeflow::registry::Uscc::from_parts("91", county, org).unwrap().to_string();
    let mut text = std::fs::read_to_string(&list).unwrap();
    text.push_str(&format!(
        "{},太原市杏花岭机械有限公司,140107,3311,,,0.1,0.1,0.1,0.1,钱一,qian.yi@xhl.example.cn,13800000005\n\
         {},太原市万柏林化工有限公司,140109,2614,,,0.1,0.1,0.1,0.1,周二,zhou.er@wbl.example.cn,13800000006\n",
        code("140107", "MA0K7A1B"),
        code("140109", "MA0K8C2D"),
    ));
    std::fs::write(&list, text).unwrap();
    let app = TestApp::start(dir, hazeflow::clock::Clock::manual(shanghai("2026-12-02 08:00")), settings).await;
    let id = app
        .propose(TAIYUAN, &orange_forecast("2026-12-02 07:30", "2026-12-02"), "orange")
        .await;
    app.set_clock("2026-12-02 08:05");
    app.sign(&id, DEPUTY).await;
    app.ack_departments(&id).await;

    // 12:06: 小店区's officer hears of her county; 王芳 gets ONE mail for the three counties, not three.
    app.set_clock("2026-12-02 12:06");
    let overdue = app.wait_sent("ack_overdue", 2).await;
    assert_eq!(
        ids(&overdue),
        BTreeSet::from(["xd-bai-xue".to_string(), "ty-wang-fang".to_string()])
    );
    let city = overdue.iter().find(|m| m.recipient.key == "ty-wang-fang").unwrap();
    let sections: Vec<&str> = city.data["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["tier_region_name"].as_str().unwrap())
        .collect();
    assert_eq!(sections, ["迎泽区", "杏花岭区", "万柏林区"]);
    assert_eq!(city.data["total"], 3);
    let (subject, text) = app.delivered(&city.id).await;
    assert_eq!(
        subject,
        "【逾期未确认】3家单位未确认重污染天气应急响应任务（迎泽区、杏花岭区、万柏林区）"
    );
    for name in ["太原市迎泽焦化有限公司", "太原市杏花岭机械有限公司", "太原市万柏林化工有限公司"] {
        assert!(text.contains(name), "{name} in {text}");
    }
    // Links go to the dashboard's pages (a browser shows them after login), never to the API.
    assert!(!text.contains("/api/v1/"), "{text}");
    assert!(text.contains(&format!("https://hazeflow.example.cn/warnings/{id}")), "{text}");

    // The HTML part fits a 390 px phone: no tables, nothing with a fixed width above it, long codes wrap.
    let path = app
        .state
        .settings
        .mail
        .dir_in(&app.state.settings.data_dir)
        .join(format!("{}.eml", city.id));
    let bytes = std::fs::read(path).unwrap();
    let mail = mail_parser::MessageParser::default().parse(&bytes).unwrap();
    let html = mail.body_html(0).unwrap().to_string();
    assert!(!html.contains("<table"), "{html}");
    assert!(html.contains("viewport") && html.contains("max-width:640px;width:100%"), "{html}");
    assert!(html.contains("word-break:break-all"), "{html}");
    for px in html
        .split("width:")
        .skip(1)
        .filter_map(|w| w.split("px").next()?.trim().parse::<u32>().ok())
    {
        assert!(
            px <= 390 || html.contains(&format!("max-width:{px}px")),
            "a {px} px width in {html}"
        );
    }
    // The next steps (escalation) keep to one mail per person per cycle too.
    app.set_clock("2026-12-02 14:06");
    let escalated = app.wait_sent("ack_escalated", 1).await;
    assert_eq!(
        escalated[0].data["sections"].as_array().map(Vec::len),
        Some(1),
        "one section: Taiyuan, with everyone still missing"
    );
    app.stop().await;
}
