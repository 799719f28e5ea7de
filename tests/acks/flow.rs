//! A warning assigns each enterprise of its region its own measures, an upgrade supersedes them with new
//! ones, a lift ends them; an enterprise acknowledges from its link and nobody reminds it afterwards.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orange_warning_assigns_each_taiyuan_enterprise_its_measures_an_upgrade_supersedes_them_and_the_lift_ends_them() {
    // Wednesday 08:05: the deputy head signs an orange warning for Taiyuan.
    let (app, id) = orange_issued_wednesday_morning().await;
    let (cement, scripted, coking, datong) = (cement(), scripted(), coking(), datong());

    // → the three Taiyuan enterprises and every department with duties get orange assignments, due in 4 h;
    // Datong's foundry gets none.
    let departments = app.state.defaults.departments.len();
    let active = app.assignments(&id, Some("active")).await;
    let enterprises: Vec<&str> = active
        .iter()
        .filter(|a| a["party"]["type"] == "enterprise")
        .map(|a| a["party"]["uscc"].as_str().unwrap())
        .collect();
    let mut want = vec![cement.uscc.as_str(), scripted.uscc.as_str(), coking.uscc.as_str()];
    want.sort();
    let mut got = enterprises.clone();
    got.sort();
    assert_eq!(got, want);
    assert!(!enterprises.contains(&datong.uscc.as_str()));
    assert_eq!(active.iter().filter(|a| a["party"]["type"] == "department").count(), departments);
    assert!(active.iter().all(|a| a["level"] == "orange"), "{active:#?}");
    let deadline: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(TestApp::of(&active, &cement.uscc)["ack_deadline"].clone()).unwrap();
    assert_eq!(deadline, shanghai("2026-12-02 12:05"));
    assert_eq!(TestApp::of(&active, &coking.uscc)["party"]["county"], YINGZE);

    // Each enterprise's page shows its own measures at orange: cement B → 限产20% and no old trucks;
    // the coking plant its own 一厂一策 measure on 2#焦炉; the ungraded chemical works 限产50%.
    let page = |uscc: &str| {
        let key = TestApp::of(&active, uscc)["key"].as_str().unwrap().to_string();
        format!("/ack/{}", app.token(&key))
    };
    let (status, html) = app.get_text(&page(&cement.uscc)).await;
    assert_eq!(status, StatusCode::OK);
    for want in [
        "太原市晋阳水泥有限公司",
        "橙色预警",
        "限产20%",
        "停止使用国四及以下重型载货车辆（含燃气）进行物料运输",
        "2026年12月2日 12:05",
        "收到",
    ] {
        assert!(html.contains(want), "the cement page shows {want}: {html}");
    }
    let (_, html) = app.get_text(&page(&coking.uscc)).await;
    assert!(html.contains("2#焦炉：出焦时间延长至48小时"), "{html}");
    assert!(!html.contains("限产20%"));
    let (_, html) = app.get_text(&page(&scripted.uscc)).await;
    assert!(html.contains("限产50%"), "{html}");

    // 09:00: a worse forecast; the head signs red.
    app.set_clock("2026-12-02 09:00");
    app.propose(TAIYUAN, &red_forecast("2026-12-02 08:50", "2026-12-02"), "red").await;
    app.sign(&id, HEAD).await;

    // → every orange assignment is superseded by a red one, due in 2 h.
    let all = app.assignments(&id, None).await;
    let superseded: Vec<_> = all.iter().filter(|a| a["status"]["state"] == "superseded").collect();
    let active = app.assignments(&id, Some("active")).await;
    assert_eq!((superseded.len(), active.len()), (3 + departments, 3 + departments), "{all:#?}");
    assert!(
        superseded
            .iter()
            .all(|a| a["level"] == "orange" && active.iter().any(|n| n["key"] == a["status"]["by"]))
    );
    assert!(active.iter().all(|a| a["level"] == "red"));
    let deadline: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(TestApp::of(&active, &cement.uscc)["ack_deadline"].clone()).unwrap();
    assert_eq!(deadline, shanghai("2026-12-02 11:00"));
    let red_link = format!("/ack/{}", app.token(TestApp::of(&active, &cement.uscc)["key"].as_str().unwrap()));
    let (_, html) = app.get_text(&red_link).await;
    assert!(
        html.contains("红色预警") && html.contains("<li>全厂：停产"),
        "red measures for cement B: {html}"
    );
    let (status, _) = app.get_text(&page(&cement.uscc)).await;
    assert_eq!(status, StatusCode::GONE, "the orange link says it was superseded");

    // After the start, the head lifts it → every assignment has ended.
    let w = app.warning_of(TAIYUAN).await.unwrap();
    let start: chrono::DateTime<chrono::Utc> = serde_json::from_value(w["start"].clone()).unwrap();
    app.clock.set(start + chrono::Duration::hours(1));
    eventually("the warning starts", || async {
        app.warning_of(TAIYUAN).await.filter(|w| w["status"] == "active")
    })
    .await;
    let (status, body) = app
        .post_json(
            &format!("/api/v1/warnings/{id}/lift"),
            Some(HEAD),
            &json!({ "reason": "空气质量好转" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let all = app.assignments(&id, None).await;
    assert_eq!(all.iter().filter(|a| a["status"]["state"] == "ended").count(), 3 + departments);
    assert_eq!(app.assignments(&id, Some("active")).await.len(), 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enterprise_acknowledges_from_its_link_progress_shows_it_and_no_reminder_follows() {
    let (app, id) = orange_issued_wednesday_morning().await;
    app.ack_departments(&id).await;
    let cement = cement();
    let key = TestApp::of(&app.assignments(&id, Some("active")).await, &cement.uscc)["key"]
        .as_str()
        .unwrap()
        .to_string();
    let link = format!("/ack/{}", app.token(&key));

    // 08:30, on the phone: the page, then "收到" with a name and a phone.
    app.set_clock("2026-12-02 08:30");
    let (status, location, _) = app
        .post_form(&link, &[("step", "received"), ("name", "王建国"), ("phone", "13800000001")])
        .await;
    assert_eq!((status, location.as_deref()), (StatusCode::SEE_OTHER, Some(link.as_str())));
    let (_, html) = app.get_text(&link).await;
    assert!(html.contains("✓ 已收到：2026年12月2日 08:30，王建国"), "{html}");
    assert!(html.contains("措施已落实"), "the next step is offered: {html}");

    // 09:40: measures in place, over JSON; saying it twice changes nothing.
    app.set_clock("2026-12-02 09:40");
    let lines = app.lines_to_tick(&app.token(&key)).await;
    assert!(!lines.is_empty(), "the page asks for each measure line");
    let body = json!({ "step": "in_place", "name": "王建国", "phone": "13800000001", "note": "熟料线已限产20%", "lines": lines });
    let (status, v) = app.post_json(&format!("/api/v1/acks/{}", app.token(&key)), None, &body).await;
    assert_eq!((status, v["changed"].as_bool()), (StatusCode::OK, Some(true)), "{v}");
    let (status, v) = app.post_json(&format!("/api/v1/acks/{}", app.token(&key)), None, &body).await;
    assert_eq!((status, v["changed"].as_bool()), (StatusCode::OK, Some(false)), "{v}");

    // → progress: 小店区 has two enterprises, one received and in place; the missing list names the other two.
    let p = app.progress(&id).await;
    let xd = &p["regions"][XIAODIAN];
    assert_eq!(
        (
            xd["assigned"].as_u64(),
            xd["received"].as_u64(),
            xd["in_place"].as_u64(),
            xd["overdue"].as_u64()
        ),
        (Some(2), Some(1), Some(1), Some(0)),
        "{p}"
    );
    let missing: Vec<&str> = p["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["party"]["uscc"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(missing.len(), 2, "{p}");
    assert!(!missing.contains(&cement.uscc.as_str()));

    // 11:05, an hour before the deadline: reminders go to the two that have not answered, not to cement.
    app.set_clock("2026-12-02 11:05");
    let reminders = app.wait_sent("ack_reminder", 2).await;
    let to: Vec<&str> = reminders.iter().map(|m| m.recipient.address.as_str()).collect();
    assert!(!to.contains(&cement.email), "{to:?}");
    assert!(to.contains(&coking().email) && to.contains(&scripted().email), "{to:?}");

    // The reminder, as delivered: a Chinese subject that decodes, the measures, and a link that works.
    let m = reminders.iter().find(|m| m.recipient.address == coking().email).unwrap();
    let (subject, text) = app.delivered(&m.id).await;
    assert_eq!(
        subject,
        "【确认提醒】太原市重污染天气橙色预警应急减排任务请于2026年12月2日 12:05前确认"
    );
    assert!(
        text.contains("2#焦炉：出焦时间延长至48小时") && text.contains("太原市迎泽焦化有限公司"),
        "{text}"
    );
    let url = m.data["ack_url"].as_str().unwrap();
    let path = url
        .strip_prefix("https://hazeflow.example.cn")
        .expect("a link under the public address");
    assert!(text.contains(url));
    let (status, html) = app.get_text(path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("太原市迎泽焦化有限公司"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_assigned_enterprise_gets_exactly_one_email_with_its_measures_and_a_working_link() {
    // The deputy head signs orange for Taiyuan → one assignment_issued email per Taiyuan enterprise.
    let (app, id) = orange_issued_wednesday_morning().await;
    let active = app.assignments(&id, Some("active")).await;
    let enterprises: Vec<&serde_json::Value> = active.iter().filter(|a| a["party"]["type"] == "enterprise").collect();
    let sent = app.wait_sent("assignment_issued", enterprises.len()).await;
    let cement = cement();
    let a = TestApp::of(&active, &cement.uscc);
    let key = a["key"].as_str().unwrap();
    let msg = sent.iter().find(|m| m.cause == key).expect("the cement works' notice");
    let (subject, text) = app.delivered(&msg.id).await;
    assert!(
        subject.starts_with("【橙色预警】太原市重污染天气橙色预警应急减排任务通知"),
        "{subject}"
    );
    assert!(text.contains("限产20%"), "{text}");
    // The link in the email opens the enterprise's own page.
    let link = format!("/ack/{}", app.token(key));
    assert!(text.contains(&link), "{text}");
    let (status, html) = app.get_text(&link).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("太原市晋阳水泥有限公司"));
}

/// The numbered measure lines of a notice or a board section (`  1. 全厂：限产20%` → `全厂：限产20%`).
fn numbered_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter_map(|l| {
            let (n, rest) = l.split_once(". ")?;
            n.chars().all(|c| c.is_ascii_digit()).then(|| rest.trim().to_string())
        })
        .collect()
}

/// The `<li>` items of the acknowledgement page's measures card, unescaped.
fn page_items(html: &str) -> Vec<String> {
    let card = html.split("本企业应急减排措施（一厂一策）").nth(1).unwrap_or_default();
    let card = card.split("</ul>").next().unwrap_or_default();
    card.split("<li>")
        .skip(1)
        .map(|li| {
            li.split("</li>")
                .next()
                .unwrap_or_default()
                .replace("&#x2f;", "/")
                .replace("&amp;", "&")
                .trim()
                .to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notice_and_the_ack_page_list_the_same_measure_lines_as_the_enterprises_board_each_naming_its_line_or_the_whole_plant() {
    let (app, id) = orange_issued_wednesday_morning().await;
    let active = app.assignments(&id, Some("active")).await;
    let n = active.iter().filter(|a| a["party"]["type"] == "enterprise").count();
    let sent = app.wait_sent("assignment_issued", n).await;
    // The coking plant has its own measure on 2#焦炉 at orange; the cement works takes its grade's default.
    for firm in [coking(), cement()] {
        let key = TestApp::of(&active, &firm.uscc)["key"].as_str().unwrap().to_string();
        let msg = sent.iter().find(|m| m.cause == key).expect("the notice");
        let (_, text) = app.delivered(&msg.id).await;
        let notice = numbered_lines(&text);

        let (status, html) = app.get_text(&format!("/ack/{}", app.token(&key))).await;
        assert_eq!(status, StatusCode::OK);
        let page = page_items(&html);

        let e = app
            .state
            .engine
            .store
            .read(|r| hazeflow::engine::list::enterprise(r, &firm.uscc))
            .unwrap()
            .expect("on the list");
        let board = hazeflow::registry::reports::board(
            &e,
            &app.state.defaults,
            hazeflow::domain::region::Regions::shanxi(),
            hazeflow::registry::reports::BOARD_TEMPLATE,
        )
        .unwrap();
        let orange = board.split("【橙色预警】").nth(1).unwrap().split("【红色预警】").next().unwrap();
        let board_lines = numbered_lines(orange);

        assert!(!board_lines.is_empty(), "{board}");
        assert_eq!(notice, board_lines, "{} notice against its board", firm.name);
        assert_eq!(page, board_lines, "{} page against its board", firm.name);
        for l in &board_lines {
            let (subject, _) = l.split_once('：').unwrap_or_else(|| panic!("{l} names what it applies to"));
            assert!(!subject.is_empty(), "{l}");
        }
    }
    let key = TestApp::of(&active, &coking().uscc)["key"].as_str().unwrap().to_string();
    let msg = sent.iter().find(|m| m.cause == key).unwrap();
    let (_, text) = app.delivered(&msg.id).await;
    assert_eq!(numbered_lines(&text), ["2#焦炉：出焦时间延长至48小时（延长出焦时间）"]);
    let key = TestApp::of(&active, &cement().uscc)["key"].as_str().unwrap().to_string();
    let msg = sent.iter().find(|m| m.cause == key).unwrap();
    let (_, text) = app.delivered(&msg.id).await;
    assert!(
        numbered_lines(&text).iter().all(|l| l.starts_with("全厂：")),
        "a plant-wide default says so: {text}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_enterprise_hears_of_the_start_the_change_and_the_end_once_each_the_end_a_day_ahead() {
    // Wednesday 08:05: orange for 12-03..12-06 is signed; the forecast shows clean air from 12-07, so the lift
    // is decided at once for 12-07 00:00 — and told a day ahead, not now.
    let (app, id) = orange_issued_wednesday_morning().await;
    let firms = [cement(), scripted(), coking()];
    app.wait_sent("assignment_issued", 3).await;
    assert!(app.sent("assignment_lifted").is_empty(), "the end is not told four days ahead");

    // 09:00: red from today; the head signs: one 【调整】 notice each. The decided lift of 12-07 is withdrawn
    // before anyone heard of it, so nobody is told it was.
    app.set_clock("2026-12-02 09:00");
    app.propose(TAIYUAN, &red_forecast("2026-12-02 08:50", "2026-12-02"), "red").await;
    app.sign(&id, HEAD).await;
    let issued = app.wait_sent("assignment_issued", 6).await;
    assert!(app.sent("assignment_withdrawn").is_empty());
    for f in &firms {
        let mine: Vec<_> = issued.iter().filter(|m| m.data["enterprise"]["uscc"] == f.uscc.as_str()).collect();
        assert_eq!(mine.len(), 2, "{}: one start and one change", f.uscc);
        let (subject, body) = app.delivered(&mine[1].id).await;
        assert!(subject.starts_with("【调整】太原市重污染天气预警调整为红色预警"), "{subject}");
        assert!(body.contains("重污染天气预警已调整为红色预警"), "{body}");
        assert!(
            body.lines().any(|l| l.trim_start().starts_with("1. ") && l.contains('：')),
            "lines name their process or 全厂: {body}"
        );
    }

    // The red run ends with 12-05: the lift for 12-06 00:00 is decided, and told from 12-05 00:00 on. The
    // enterprise's page shows it already, with the timeline.
    let w = app.warning_of(TAIYUAN).await.unwrap();
    assert_eq!(w["next"]["at"], "2026-12-05T16:00:00Z", "{w}");
    let active = app.assignments(&id, Some("active")).await;
    let key = TestApp::of(&active, &firms[0].uscc)["key"].as_str().unwrap().to_string();
    let (_, html) = app.get_text(&format!("/ack/{}", app.token(&key))).await;
    assert!(html.contains("预警解除时间：<strong>2026年12月6日 00:00</strong>"), "{html}");
    assert!(html.contains("预警时间线：12月2日9时起红色预警；预计12月6日0时解除"), "{html}");
    // The duty staff were told when the lift was decided, with both times: the end, and when the
    // enterprises and departments hear of it.
    let duty = eventually("the duty staff's lift notice", || async {
        app.sent("warning_lifted")
            .into_iter()
            .find(|m| m.data["at"] == "2026年12月6日 00:00")
    })
    .await;
    let (_, body) = app.delivered(&duty.id).await;
    assert!(
        body.contains("将于2026年12月5日 00:00收到系统发出的解除通知（解除时间2026年12月6日 00:00"),
        "{body}"
    );
    app.set_clock("2026-12-04 23:50");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(app.sent("assignment_lifted").is_empty(), "not before a day ahead");
    app.set_clock("2026-12-05 00:01");
    let lifted = app.wait_sent("assignment_lifted", 3).await;
    for f in &firms {
        let m = lifted
            .iter()
            .find(|m| m.data["enterprise"]["uscc"] == f.uscc.as_str())
            .expect("an end notice");
        let (subject, body) = app.delivered(&m.id).await;
        assert_eq!(subject, "【解除】太原市重污染天气红色预警于2026年12月6日 00:00解除，可恢复正常生产");
        assert!(
            body.contains("执行至2026年12月6日 00:00") && body.contains("恢复正常生产"),
            "{body}"
        );
    }

    // 12-06 00:00: lifted; nothing more is sent to the enterprises.
    app.set_clock("2026-12-06 00:01");
    eventually("the warning is lifted", || async {
        app.warning_of(TAIYUAN).await.filter(|w| w["status"] == "lifted")
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(app.sent("assignment_issued").len(), 6);
    assert_eq!(app.sent("assignment_lifted").len(), 3);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lift_already_told_then_withdrawn_by_a_later_forecast_tells_each_party_and_the_duty_staff_once_that_the_measures_go_on() {
    // Orange from 12-03; the lift decided for 12-07 00:00 is told a day ahead, at 12-06 00:00.
    let (app, id) = orange_issued_wednesday_morning().await;
    app.set_clock("2026-12-06 00:01");
    let lifted = app.wait_sent("assignment_lifted", 3).await;
    let at = lifted[0].data["ends_at"].clone();
    let departments_told = app.sent("department_lifted").len();
    assert!(departments_told > 0, "Taiyuan's departments were told of the lift");
    // 08:00: the new forecast keeps Taiyuan above 200: the lift no longer holds, and everyone told of it
    // hears so once (【调整】…不再于…解除), the enterprises with their measures going on.
    app.set_clock("2026-12-06 08:00");
    let csv = forecast_csv(
        "2026-12-06 07:30",
        SOURCE,
        TAIYUAN,
        "2026-12-06",
        &[230, 240, 230, 240, 180, 120, 100],
    );
    let (status, body) = app.post_body("/api/v1/forecasts", Some(HEAD), csv).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let withdrawn = app.wait_sent("assignment_withdrawn", 3).await;
    for f in [cement(), scripted(), coking()] {
        let mine: Vec<_> = withdrawn
            .iter()
            .filter(|m| m.data["enterprise"]["uscc"] == f.uscc.as_str())
            .collect();
        assert_eq!(mine.len(), 1, "{}: one notice that the lift no longer holds", f.uscc);
        let (subject, body) = app.delivered(&mine[0].id).await;
        assert!(subject.starts_with("【调整】太原市重污染天气"), "{subject}");
        assert!(
            subject.contains("不再于") && subject.contains(at.as_str().unwrap_or("?")),
            "{subject} ({at})"
        );
        assert!(body.contains("继续"), "{body}");
    }
    let departments = eventually("the departments' notices", || async {
        let got = app.sent("department_withdrawn");
        (got.len() >= departments_told).then_some(got)
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(app.sent("department_withdrawn").len(), departments.len());
    assert_eq!(
        departments.len(),
        departments_told,
        "each department told of the lift hears it no longer holds"
    );
    assert_eq!(app.sent("assignment_withdrawn").len(), 3, "once each");
    // The duty staff, told when the lift was decided, hear that it no longer holds.
    let duty = app.wait_sent("warning_unscheduled", 1).await;
    let mut people: Vec<&str> = duty.iter().map(|m| m.recipient.key.as_str()).collect();
    people.dedup();
    assert_eq!(people.len(), duty.len(), "once per person: {people:?}");
    let (subject, body) = app.delivered(&duty[0].id).await;
    assert!(
        subject.starts_with("【调整】太原市重污染天气") && subject.contains("不再执行"),
        "{subject}"
    );
    assert!(body.contains("撤回原定于") && body.contains("应急减排措施继续执行"), "{body}");
    // The same consultation moved the expected end later: the duty staff hear of the extension, once each,
    // with the new expected end.
    let extended = app.wait_sent("warning_extended", 1).await;
    let mut people: Vec<&str> = extended.iter().map(|m| m.recipient.key.as_str()).collect();
    people.dedup();
    assert_eq!(people.len(), extended.len(), "once per person: {people:?}");
    let end = app.warning_of(TAIYUAN).await.unwrap()["expected_end"].clone();
    let (subject, body) = app.delivered(&extended[0].id).await;
    assert!(
        subject.starts_with("【调整】太原市重污染天气") && subject.contains("预计解除时间延至"),
        "{subject}"
    );
    assert!(body.contains("持续时间延长") && body.contains("应急减排措施继续执行"), "{body}");
    assert!(
        !subject.contains("12月7日 00:00") && subject.contains("2026年12月"),
        "the new end, not the old one (12-07): {subject} (now {end})"
    );
    assert_eq!(app.warning_of(TAIYUAN).await.unwrap()["id"], id.as_str());
    app.stop().await;
}
