//! Inspections (监督帮扶): overdue enterprises become tasks for their county; an inspector records what
//! they found; non-compliance is an event on the enterprise. Negotiated reductions (协商减排) are acted on,
//! acknowledged and inspected like measures.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

async fn inspections(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = app.get(&format!("/api/v1/inspections?{query}"), Some(DUTY)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["inspections"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overdue_enterprises_become_inspection_tasks_for_their_county_and_non_compliance_is_an_event_on_the_enterprise() {
    let (app, id) = orange_issued_wednesday_morning().await;
    let (cement, scripted, coking) = (cement(), scripted(), coking());

    // 12:06, past the deadline: one task per overdue enterprise, in its county.
    app.set_clock("2026-12-02 12:06");
    eventually("three inspection tasks", || async {
        (inspections(&app, &format!("warning={id}")).await.len() == 3).then_some(())
    })
    .await;
    let xd = inspections(&app, &format!("warning={id}&county={XIAODIAN}&status=open")).await;
    let mut names: Vec<&str> = xd.iter().map(|i| i["enterprise_name"].as_str().unwrap()).collect();
    names.sort();
    let mut want = vec![cement.name, scripted.name];
    want.sort();
    assert_eq!(names, want);
    assert!(
        xd.iter()
            .all(|i| i["reason"] == "overdue" && i["level"] == "orange" && i["status"] == "open"),
        "{xd:#?}"
    );
    assert_eq!(
        inspections(&app, &format!("warning={id}&county={YINGZE}")).await[0]["uscc"],
        coking.uscc.as_str()
    );

    // 14:00: the inspector finds the cement works running at full load.
    app.set_clock("2026-12-02 14:00");
    let task = xd.iter().find(|i| i["uscc"] == cement.uscc.as_str()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = app
        .post_json(
            &format!("/api/v1/inspections/{task}/result"),
            Some(DUTY),
            &json!({ "compliant": false, "note": "熟料线满负荷生产，用电量未下降", "time": "2026-12-02 13:40" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["inspection"]["status"], "done");
    assert_eq!(body["inspection"]["result"]["inspector"], DUTY_NAME);
    assert_eq!(body["recheck"]["reason"], "recheck", "a follow-up visit is opened: {body}");

    // → an event on the enterprise, which a grade revision can use.
    let events = app.records("enterprise_non_compliant");
    assert_eq!(events.len(), 1);
    let e = &events[0]["data"];
    assert_eq!(
        (e["uscc"].as_str(), e["warning_id"].as_str(), e["level"].as_str()),
        (Some(cement.uscc.as_str()), Some(id.as_str()), Some("orange"))
    );
    assert_eq!(e["note"], "熟料线满负荷生产，用电量未下降");
    assert_eq!(e["inspected_at"], json!(shanghai("2026-12-02 13:40")));

    // A result is final; a second one is refused and changes nothing.
    let seq = app.state.engine.store.read(|r| r.last_seq()).unwrap();
    let (status, _) = app
        .post_json(
            &format!("/api/v1/inspections/{task}/result"),
            Some(DUTY),
            &json!({ "compliant": true }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = app
        .post_json(
            &format!("/api/v1/inspections/{task}/result"),
            Some(DUTY),
            &json!({ "compliant": false }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "non-compliance needs a note");
    let (status, _) = app
        .post_json("/api/v1/inspections/no-such-task/result", Some(DUTY), &json!({ "compliant": true }))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // (The notice fan-out and the mail worker may append their own records meanwhile.)
    let later = app.state.engine.store.read(|r| r.events_after(seq, usize::MAX)).unwrap();
    assert!(
        later
            .iter()
            .all(|r| !(r.body.kind().starts_with("inspection") || r.body.kind() == "enterprise_non_compliant")),
        "no inspection record after the refused results: {later:#?}"
    );

    // The chemical works is found compliant; no event, no follow-up.
    let other = xd.iter().find(|i| i["uscc"] == scripted.uscc.as_str()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = app
        .post_json(
            &format!("/api/v1/inspections/{other}/result"),
            Some(DUTY),
            &json!({ "compliant": true, "note": "已限产" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["recheck"].is_null());
    assert_eq!(app.records("enterprise_non_compliant").len(), 1);

    // Staff can also open a task on a tip-off; the overdue timer never opens a second one.
    let (status, body) = app
        .post_json(
            "/api/v1/inspections",
            Some(DUTY),
            &json!({ "warning": id, "uscc": coking.uscc, "note": "群众举报夜间生产" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["inspection"]["reason"], "requested");
    let open = inspections(&app, &format!("warning={id}&status=open")).await;
    assert_eq!(open.len(), 3, "the recheck of cement and two for the coking plant: {open:#?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_negotiated_reduction_is_its_own_action_acknowledged_from_its_own_link_and_inspected_like_a_measure() {
    let (app, id) = orange_issued_wednesday_morning().await;
    let coking = coking();

    // 08:30: the bureau agrees an extra cut with the coking plant.
    app.set_clock("2026-12-02 08:30");
    let body = json!({ "uscc": coking.uscc, "commitment": "2#焦炉出焦时间延长至72小时，焦炉煤气发电机组停运", "reductions": { "so2": 0.3, "nox": 0.5 }, "note": "电话协商" });
    let (status, v) = app.post_json(&format!("/api/v1/warnings/{id}/negotiated"), Some(DUTY), &body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let key = v["assignment"]["key"].as_str().unwrap().to_string();
    assert!(key.starts_with(&format!("{id}/n:{}/", coking.uscc)), "{key}");
    assert_eq!(v["assignment"]["level"], "orange");
    let link = v["ack_url"]
        .as_str()
        .unwrap()
        .strip_prefix("https://hazeflow.example.cn")
        .unwrap()
        .to_string();
    assert_eq!(link, format!("/ack/{}", app.token(&key)));

    // → the enterprise gets its own notice with its own link.
    let notice = app.wait_sent("negotiated_issued", 1).await;
    assert_eq!(notice[0].recipient.address, coking.email);
    let (subject, text) = app.delivered(&notice[0].id).await;
    assert_eq!(
        subject,
        "【协商减排】太原市重污染天气橙色预警期间协商减排任务，请于2026年12月2日 12:30前确认"
    );
    assert!(
        text.contains("2#焦炉出焦时间延长至72小时") && text.contains("SO2 0.3") && text.contains(&link),
        "{text}"
    );

    // The page shows the commitment, not the list's measures; "received" from it.
    let (status, html) = app.get_text(&link).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("协商减排承诺") && html.contains("焦炉煤气发电机组停运") && !html.contains("出焦时间延长至48小时"),
        "{html}"
    );
    let (status, _, _) = app
        .post_form(&link, &[("step", "received"), ("name", "赵磊"), ("phone", "13800000003")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    // Its measures stay a separate task: an upgrade supersedes those, not the agreement.
    app.set_clock("2026-12-02 09:00");
    app.propose(TAIYUAN, &red_forecast("2026-12-02 08:50", "2026-12-02"), "red").await;
    app.sign(&id, HEAD).await;
    let active = app.assignments(&id, Some("active")).await;
    let mine: Vec<&Value> = active.iter().filter(|a| a["party"]["uscc"] == coking.uscc.as_str()).collect();
    assert_eq!(mine.len(), 2, "{mine:#?}");
    assert!(
        mine.iter()
            .any(|a| a["key"] == key.as_str() && a["level"] == "orange" && a["negotiated"]["reductions"]["so2"] == 0.3)
    );

    // Past the red deadline: the unacknowledged red measures become a task; the acknowledged agreement does not…
    app.set_clock("2026-12-02 11:01");
    let list = eventually("the overdue tasks", || async {
        Some(inspections(&app, &format!("warning={id}&county={YINGZE}")).await).filter(|l| !l.is_empty())
    })
    .await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["negotiated"], false);
    // …but staff may have the agreement inspected like any measure.
    let (status, v) = app
        .post_json("/api/v1/inspections", Some(DUTY), &json!({ "warning": id, "uscc": coking.uscc }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["inspection"]["negotiated"].as_bool(), v["inspection"]["assignment"].as_str()),
        (Some(true), Some(key.as_str()))
    );

    // Refused: an enterprise outside Taiyuan, one not on the list, no reduction, no token.
    let bad = [
        (
            json!({ "uscc": datong().uscc, "commitment": "x", "reductions": { "so2": 1 } }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "uscc": "91140105MA0K0000X0", "commitment": "x", "reductions": { "so2": 1 } }),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({ "uscc": coking.uscc, "commitment": "x", "reductions": { "so2": 0 } }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "uscc": coking.uscc, "commitment": " ", "reductions": { "so2": 1 } }),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (body, want) in bad {
        let (status, v) = app.post_json(&format!("/api/v1/warnings/{id}/negotiated"), Some(DUTY), &body).await;
        assert_eq!(status, want, "{body} → {v}");
    }
    let (status, _) = app.post_json(&format!("/api/v1/warnings/{id}/negotiated"), None, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, v) = app.get(&format!("/api/v1/warnings/{id}/negotiated"), Some(DUTY)).await;
    assert_eq!((status, v["negotiated"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)), "{v}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enterprise_keeps_one_inspection_task_across_an_upgrade_and_the_lift_closes_it_as_not_needed() {
    let (app, id) = orange_issued_wednesday_morning().await;
    let cement = cement();

    // 12:06, past the orange deadline: one task per overdue enterprise.
    app.set_clock("2026-12-02 12:06");
    eventually("three inspection tasks", || async {
        (inspections(&app, &format!("warning={id}")).await.len() == 3).then_some(())
    })
    .await;

    // 12:30: upgraded to red. Each open task follows its enterprise to its red assignment…
    app.set_clock("2026-12-02 12:30");
    app.propose(TAIYUAN, &red_forecast("2026-12-02 12:20", "2026-12-02"), "red").await;
    app.sign(&id, HEAD).await;
    let active = app.assignments(&id, Some("active")).await;
    let tasks = inspections(&app, &format!("warning={id}")).await;
    assert_eq!(tasks.len(), 3, "{tasks:#?}");
    for t in &tasks {
        let a = TestApp::of(&active, t["uscc"].as_str().unwrap());
        assert_eq!(
            (t["level"].as_str(), t["assignment"].as_str()),
            (Some("red"), a["key"].as_str()),
            "{t:#}"
        );
        assert_eq!(t["levels"], json!(["orange", "red"]));
        assert_eq!(t["status"], "open");
    }
    // …and past the red deadline (14:30) nobody gets a second task.
    app.set_clock("2026-12-02 14:31");
    eventually("the red overdue report", || async {
        (app.records("ack_overdue").len() >= 2).then_some(())
    })
    .await;
    let after = inspections(&app, &format!("warning={id}")).await;
    assert_eq!(after.len(), 3, "one task per enterprise per warning: {after:#?}");
    assert_eq!(
        inspections(&app, &format!("warning={id}&county={XIAODIAN}&status=open"))
            .await
            .len(),
        2
    );

    // The warning's page lists them, filterable by county and state.
    let dashboard = |q: String| {
        let url = app.url(&format!("/warnings/{id}{q}"));
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
    let xd = dashboard(format!("?i_county={XIAODIAN}&i_state=open")).await;
    let section = xd.split("id=\"inspections-h\"").nth(1).unwrap().split("</section>").next().unwrap();
    assert!(
        section.contains("太原市晋阳水泥有限公司") && !section.contains("太原市迎泽焦化有限公司"),
        "{section}"
    );
    let none = dashboard(format!("?i_county={XIAODIAN}&i_state=done")).await;
    assert!(none.contains("没有符合筛选条件的检查任务"), "{none}");

    // After the start, the warning is lifted: the open tasks are closed, nobody is sent to inspect.
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
    assert!(inspections(&app, &format!("warning={id}&status=open")).await.is_empty());
    let closed = inspections(&app, &format!("warning={id}&status=not_needed")).await;
    assert_eq!(closed.len(), 3);
    assert!(
        closed
            .iter()
            .all(|t| t["closed"]["text"] == "无需检查（预警已解除）" && t["closed"]["reason"] == "lifted")
    );
    assert_eq!(app.records("inspections_closed").len(), 1);
    // A closed task takes no result.
    let task = closed.iter().find(|t| t["uscc"] == cement.uscc.as_str()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = app
        .post_json(
            &format!("/api/v1/inspections/{task}/result"),
            Some(DUTY),
            &json!({ "compliant": true }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // The warning's page says so.
    let page = reqwest::Client::new()
        .get(app.url(&format!("/warnings/{id}")))
        .header("cookie", format!("hazeflow_session={DUTY}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("无需检查（预警已解除）"), "{page}");
    app.stop().await;
}
