//! Two stages, each with its own deadline: 收到 by the playbook's acknowledgement deadline, 措施已落实
//! by the measures' start plus the playbook's `in_place_after_start_hours`, each with its reminder and
//! overdue report; the deadlines are said in the notice, on the acknowledgement page and on the
//! dashboard. 措施已落实 is taken only when every line of the task is ticked — on the page (boxes start
//! unticked, each required) and by the server, for the form and for JSON alike.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

/// The checkbox inputs of a page (`<input type="checkbox" name="line" …>`).
fn checkboxes(html: &str) -> Vec<String> {
    html.split("<input type=\"checkbox\" name=\"line\"")
        .skip(1)
        .map(|s| s.split('>').next().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measures_in_place_is_taken_only_with_every_line_ticked_on_the_page_and_over_json() {
    // Wednesday 08:05: orange for Taiyuan. The cement plant (grade B) has two measure lines at orange.
    let (app, id) = orange_issued_wednesday_morning().await;
    let cement = cement();
    let active = app.assignments(&id, Some("active")).await;
    let key = TestApp::of(&active, &cement.uscc)["key"].as_str().unwrap().to_string();
    let token = app.token(&key);
    let link = format!("/ack/{token}");

    // 08:30: 收到 from the phone; nothing to tick for that.
    app.set_clock("2026-12-02 08:30");
    let (_, html) = app.get_text(&link).await;
    assert!(checkboxes(&html).is_empty(), "no lines to tick before 收到: {html}");
    let (status, _, _) = app
        .post_form(&link, &[("step", "received"), ("name", "王建国"), ("phone", "13800000001")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    // The page now lists every measure line with a box, none ticked, each required.
    let (_, html) = app.get_text(&link).await;
    let boxes = checkboxes(&html);
    assert_eq!(boxes.len(), 2, "one box per measure line: {html}");
    assert!(
        boxes.iter().all(|b| b.contains("required") && !b.contains("checked")),
        "each box required and unticked: {boxes:?}"
    );
    for item in ["限产20%", "停止使用国四及以下重型载货车辆（含燃气）进行物料运输"] {
        assert!(
            html.split("<fieldset").nth(1).is_some_and(|f| f.contains(item)),
            "the box of \"{item}\" is labelled with its line: {html}"
        );
    }

    // 09:40: one line ticked of two → refused, the page says which is left; nothing recorded.
    app.set_clock("2026-12-02 09:40");
    let (status, _, html) = app
        .post_form(
            &link,
            &[("step", "in_place"), ("name", "王建国"), ("phone", "13800000001"), ("line", "1")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(
        html.contains("请逐项核实并勾选全部2项措施后再确认“措施已落实”（尚未勾选：第2项）"),
        "{html}"
    );
    // Over JSON: no lines, or a line that is not on the page, are refused the same way.
    for (lines, left) in [(json!([]), "第1、2项"), (json!(["1", "3"]), "第2项")] {
        let (status, v) = app
            .post_json(
                &format!("/api/v1/acks/{token}"),
                None,
                &json!({ "step": "in_place", "name": "王建国", "phone": "13800000001", "lines": lines }),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{lines}: {v}");
        assert!(
            v["error"].as_str().unwrap_or_default().contains(&format!("尚未勾选：{left}")),
            "{v}"
        );
    }
    let progress = app.progress(&id).await;
    assert_eq!(progress["regions"][XIAODIAN]["in_place"].as_u64(), Some(0), "{progress}");
    let (_, html) = app.get_text(&link).await;
    assert!(!html.contains("✓ 措施已落实"), "{html}");

    // Both ticked → taken; the record keeps the lines' words, and the page shows them back.
    let (status, location, html) = app
        .post_form(
            &link,
            &[
                ("step", "in_place"),
                ("name", "王建国"),
                ("phone", "13800000001"),
                ("line", "1"),
                ("line", "2"),
                ("note", "熟料线已限产20%"),
            ],
        )
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (StatusCode::SEE_OTHER, Some(link.as_str())),
        "{html}"
    );
    let (_, html) = app.get_text(&link).await;
    assert!(html.contains("✓ 措施已落实：2026年12月2日 09:40，王建国"), "{html}");
    assert!(
        html.contains("已落实：") && html.contains("限产20%"),
        "the lines confirmed are shown back: {html}"
    );
    let a = TestApp::of(&app.assignments(&id, Some("active")).await, &cement.uscc);
    let in_place = a["acks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["step"] == "in_place")
        .cloned()
        .unwrap();
    let recorded: Vec<&str> = in_place["lines"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    assert_eq!(recorded.len(), 2, "{in_place}");
    assert!(recorded[0].contains("限产20%") || recorded[1].contains("限产20%"), "{recorded:?}");
    let progress = app.progress(&id).await;
    assert_eq!(progress["regions"][XIAODIAN]["in_place"].as_u64(), Some(1), "{progress}");

    // A department confirms its duty the same way: one box, its duty, required.
    let dept = active.iter().find(|a| a["party"]["type"] == "department").unwrap();
    let dtoken = app.token(dept["key"].as_str().unwrap());
    let (status, v) = app
        .post_json(
            &format!("/api/v1/acks/{dtoken}"),
            None,
            &json!({ "step": "in_place", "name": "部门值班", "phone": "0351-1234567" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a department ticks its duty too: {v}");
    let (status, _, _) = app
        .post_form(
            &format!("/ack/{dtoken}"),
            &[("step", "received"), ("name", "部门值班"), ("phone", "0351-1234567")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, html) = app.get_text(&format!("/ack/{dtoken}")).await;
    let boxes = checkboxes(&html);
    assert_eq!(boxes.len(), 1, "{html}");
    assert!(html.contains(dept["duty"].as_str().unwrap()), "{html}");
    let (status, v) = app
        .post_json(
            &format!("/api/v1/acks/{dtoken}"),
            None,
            &json!({ "step": "in_place", "name": "部门值班", "phone": "0351-1234567", "lines": ["1"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    app.stop().await;
}

/// The test daemon with the shipped measure defaults but for orange's 措施已落实 deadline: six hours
/// after the measures' start.
async fn spawn_with_in_place_after_six_hours(at: &str) -> TestApp {
    let dir = tempfile::TempDir::new().expect("a temporary folder");
    let shipped = std::fs::read_to_string(MEASURES).expect("the shipped measure defaults");
    let orange = "    escalate_every_hours: 2\n    in_place_after_start_hours: 0\n    reduction_target_percent: { so2: 20";
    assert_eq!(shipped.matches(orange).count(), 1, "orange's settings in {MEASURES}");
    let measures = dir.path().join("measures.yaml");
    std::fs::write(
        &measures,
        shipped.replace(
            orange,
            &orange.replace("in_place_after_start_hours: 0", "in_place_after_start_hours: 6"),
        ),
    )
    .expect("the measure defaults written");
    let mut settings = settings_in(dir.path());
    settings.measures = measures;
    TestApp::start(dir, hazeflow::clock::Clock::manual(shanghai(at)), settings).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measures_in_place_are_due_by_the_playbooks_deadline_said_in_the_notice_the_page_and_the_dashboard() {
    // Wednesday 08:05: orange for Taiyuan from Thursday 00:00; 收到 due 12:05, 措施已落实 due 06:00 on
    // Thursday (the start plus the six hours of this playbook).
    let app = spawn_with_in_place_after_six_hours("2026-12-02 08:00").await;
    let id = app
        .propose(TAIYUAN, &orange_forecast("2026-12-02 07:30", "2026-12-02"), "orange")
        .await;
    app.set_clock("2026-12-02 08:05");
    app.sign(&id, DEPUTY).await;
    app.ack_departments(&id).await;
    let cement = cement();
    let a = TestApp::of(&app.assignments(&id, Some("active")).await, &cement.uscc);
    let at = |v: &serde_json::Value| serde_json::from_value::<chrono::DateTime<chrono::Utc>>(v.clone()).unwrap();
    assert_eq!(at(&a["applies_from"]), shanghai("2026-12-03 00:00"), "{a}");
    assert_eq!(at(&a["ack_deadline"]), shanghai("2026-12-02 12:05"), "{a}");
    assert_eq!(at(&a["in_place_deadline"]), shanghai("2026-12-03 06:00"), "{a}");
    let token = app.token(a["key"].as_str().unwrap());

    // The notice, as delivered (.eml), says both deadlines.
    let notice = eventually("the cement plant's notice", || async {
        app.sent("assignment_issued")
            .into_iter()
            .find(|m| m.recipient.address == cement.email)
    })
    .await;
    let (_, text) = app.delivered(&notice.id).await;
    assert!(
        text.contains("请于2026年12月2日 12:05前确认收到，并于2026年12月3日 06:00前落实措施后再次确认“措施已落实”"),
        "{text}"
    );
    // The acknowledgement page says both.
    let (_, html) = app.get_text(&format!("/ack/{token}")).await;
    assert!(
        html.contains("确认收到截止时间：<strong>2026年12月2日 12:05</strong>")
            && html.contains("措施落实截止时间：<strong>2026年12月3日 06:00</strong>"),
        "{html}"
    );
    // The dashboard's warning page says both; the enterprise's page too.
    let dashboard = |path: String| {
        let url = app.url(&path);
        async move {
            reqwest::Client::new()
                .get(url)
                .header("cookie", format!("hazeflow_session={DUTY}"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let page = dashboard(format!("/warnings/{id}")).await;
    let deadlines = page
        .split("class=\"deadlines\"")
        .nth(1)
        .unwrap_or_default()
        .split("</p>")
        .next()
        .unwrap_or_default();
    assert!(
        deadlines.contains("确认收到时限 <strong class=\"nw\">2026-12-02 12:05</strong>")
            && deadlines.contains("措施落实时限 <strong class=\"nw\">2026-12-03 06:00</strong>"),
        "{page}"
    );
    let page = dashboard(format!("/list/{}", cement.uscc)).await;
    let cell = page.split("data-label=\"落实时限\"").nth(1).unwrap_or_default();
    assert!(
        cell.split("</td>").next().unwrap_or_default().contains("2026-12-03 06:00"),
        "{page}"
    );

    // 09:00: 收到 by everyone, so only the second stage remains.
    app.set_clock("2026-12-02 09:00");
    for firm in [crate::helpers::cement(), scripted(), coking()] {
        let k = TestApp::of(&app.assignments(&id, Some("active")).await, &firm.uscc)["key"]
            .as_str()
            .unwrap()
            .to_string();
        let (status, v) = app
            .post_json(
                &format!("/api/v1/acks/{}", app.token(&k)),
                None,
                &json!({ "step": "received", "name": "值班", "phone": "13800000000" }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    // Thursday 00:10, past the measures' start: not yet due, so no one is reminded or reported
    // (the deadline of the earlier code was the start itself).
    app.set_clock("2026-12-03 00:10");
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let in_place = |template: &str| {
        app.sent(template)
            .into_iter()
            .filter(|m| m.data["stage"] == "in_place")
            .collect::<Vec<_>>()
    };
    assert!(in_place("ack_reminder").is_empty() && in_place("ack_overdue").is_empty());
    let progress = app.progress(&id).await;
    assert_eq!(progress["total"]["in_place_overdue"].as_u64(), Some(0), "{progress}");

    // 05:05, an hour before the deadline: each enterprise is reminded, with the deadline in its words.
    app.set_clock("2026-12-03 05:05");
    let reminders = app.wait_sent("ack_reminder", 3).await;
    assert!(reminders.iter().all(|m| m.data["stage"] == "in_place"), "{reminders:#?}");
    let mine = reminders.iter().find(|m| m.recipient.address == cement.email).unwrap();
    let (subject, text) = app.delivered(&mine.id).await;
    assert!(
        text.contains("请于2026年12月3日 06:00（措施落实截止时间）前落实下列措施"),
        "{subject}\n{text}"
    );

    // The cement plant confirms its lines; at 06:05 the others are reported overdue, not it.
    let (status, v) = app.ack_in_place(&token, "王建国", "13800000001").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    app.set_clock("2026-12-03 06:05");
    let named = |overdue: &[hazeflow::notify::OutboxMessage]| -> Vec<String> {
        overdue
            .iter()
            .flat_map(|m| m.data["sections"].as_array().cloned().unwrap_or_default())
            .flat_map(|s| s["missing"].as_array().cloned().unwrap_or_default())
            .map(|x| x["name"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let overdue = eventually("the in-place overdue reports of both plants left", || async {
        let got = in_place("ack_overdue");
        (named(&got).len() >= 2).then_some(got)
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let mut all = named(&in_place("ack_overdue"));
    all.sort();
    let mut want = vec![scripted().name.to_string(), coking().name.to_string()];
    want.sort();
    assert_eq!(
        all, want,
        "the plants without 措施已落实 are reported, once each, not the cement plant"
    );
    let (_, text) = app.delivered(&overdue[0].id).await;
    assert!(text.contains("的应急减排措施落实时限（2026年12月3日 06:00）已过"), "{text}");
    let progress = app.progress(&id).await;
    assert_eq!(progress["total"]["in_place_overdue"].as_u64(), Some(2), "{progress}");
    app.stop().await;
}
