//! Warnings from above (上级预警): a provincial warning for two cities at different levels starts them
//! at its start with its document number as the reason, holds them against their own lift and their
//! own cleaner forecast, and lets them go — lifted, or down to what their forecast says — when its
//! own lift arrives. Bad bodies are refused naming the field, recording nothing.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::flow::history_of;
use crate::helpers::*;

const TAIYUAN: &str = "140100";
const DATONG: &str = "140200";
const QINGXU: &str = "140121";
const DOC_NO: &str = "晋重污应急〔2026〕5号";
const ISSUER: &str = "山西省重污染天气应急指挥部";
const LIFT_NO: &str = "晋重污应急〔2026〕6号";

/// The provincial warning: Taiyuan orange but its county Qingxu (清徐县) red, Datong yellow, from
/// 12-02 00:00, expected to end 12-05 00:00.
fn provincial_warning() -> Value {
    json!({
        "id": "SX-2026-5",
        "doc_no": DOC_NO,
        "issuer": ISSUER,
        "areas": [
            { "level": "orange", "regions": [TAIYUAN] },
            { "level": "yellow", "regions": [DATONG] },
            { "level": "red", "regions": [QINGXU] }
        ],
        "start": "2026-12-02 00:00",
        "expected_end": "2026-12-05 00:00"
    })
}

fn time(v: &Value) -> chrono::DateTime<chrono::Utc> {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("a time, not {v}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provincial_warning_starts_two_cities_at_its_levels_holds_them_and_lets_them_go_when_its_lift_arrives() {
    // 2026-12-01 15:00: Taiyuan's own forecast calls for yellow on 12-02 and 12-03; the
    // consultation proposes it, awaiting the deputy head.
    let app = spawn_app(clock()).await;
    let (status, body) = app
        .submit(forecast_csv(
            "2026-12-01 14:00",
            SOURCE,
            TAIYUAN,
            "2026-12-01",
            &[120, 160, 170, 120, 100, 90, 90],
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let w = eventually("Taiyuan's own proposal", || async { app.warning_of(TAIYUAN).await }).await;
    assert_eq!(
        (w["level"].as_str(), w["status"].as_str()),
        (Some("yellow"), Some("pending")),
        "{w}"
    );

    // 15:20: the province's warning arrives. It names red for Qingxu: the deputy head may not record
    // it (a directive's authority at its highest level), the head may.
    app.set_clock("2026-12-01 15:20");
    let (status, body) = app
        .post_json("/api/v1/upstream-warnings", Some(DEPUTY), &provincial_warning())
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = app.post_json("/api/v1/upstream-warnings", Some(HEAD), &provincial_warning()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // → Taiyuan at orange, Qingxu at red, Taiyuan's other counties at orange, Datong and its counties
    // at yellow, all issued without a signature from the warning's start, each naming the provincial
    // warning as what holds it.
    for (region, level) in [
        (TAIYUAN, "orange"),
        (QINGXU, "red"),
        ("140122", "orange"),
        (DATONG, "yellow"),
        ("140221", "yellow"),
    ] {
        let w = app.warning_of(region).await.unwrap_or_else(|| panic!("a warning for {region}"));
        assert_eq!(
            (w["level"].as_str(), w["status"].as_str(), w["pending_sign_off"].as_bool()),
            (Some(level), Some("issued"), Some(false)),
            "{region}: {w}"
        );
        assert_eq!(time(&w["start"]), shanghai("2026-12-02 00:00"), "{region}: {w}");
        assert_eq!(time(&w["expected_end"]), shanghai("2026-12-05 00:00"), "{region}: {w}");
        assert_eq!(w["holds"][0]["directive"], "SX-2026-5", "{w}");
        assert_eq!(w["holds"][0]["source"], format!("{ISSUER}预警（{DOC_NO}）"), "{w}");
    }
    let taiyuan = app.warning_of(TAIYUAN).await.expect("Taiyuan's warning");
    let id = taiyuan["id"].as_str().expect("an id").to_string();
    let history = history_of(&app, &id).await;
    let issued = history
        .iter()
        .find(|r| r["event"]["kind"] == "issued")
        .unwrap_or_else(|| panic!("issued in {history:?}"));
    assert_eq!(
        issued["event"]["reason"],
        format!("根据{ISSUER}预警（{DOC_NO}），自12月2日0时起至少执行橙色预警"),
        "{issued}"
    );
    let (_, body) = app.get("/api/v1/upstream-warnings", Some(DUTY)).await;
    assert_eq!(body["upstream_warnings"][0]["upstream"]["doc_no"], DOC_NO, "{body}");
    assert_eq!(body["upstream_warnings"][0]["active"], true, "{body}");
    // It is no directive: not listed with them, not lifted as one.
    let (_, body) = app.get("/api/v1/directives", Some(DUTY)).await;
    assert_eq!(body["directives"], json!([]), "{body}");
    let (status, body) = app.post("/api/v1/directives/SX-2026-5/lift", Some(HEAD)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // 12-02 00:00: both start.
    app.set_clock("2026-12-02 00:00");
    app.state.engine.tick().await.expect("a tick");
    for region in [TAIYUAN, DATONG] {
        assert_eq!(app.warning_of(region).await.expect("a warning")["status"], "active", "{region}");
    }

    // 12-02 10:00: Taiyuan's deputy head tries to lift its warning: refused while the provincial one
    // is in force, naming it; its history unchanged (the reminders of the enterprises' tasks run on).
    app.set_clock("2026-12-02 10:00");
    app.settled().await;
    let before = history_of(&app, &id).await;
    let (status, body) = app
        .post_json(
            &format!("/api/v1/warnings/{id}/lift"),
            Some(DEPUTY),
            &json!({ "reason": "本地空气质量好转" }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        body["error"],
        format!("warning {id} is held by the warning from above SX-2026-5 ({ISSUER}预警（{DOC_NO}）) until its own lift arrives")
    );
    assert_eq!(history_of(&app, &id).await, before, "nothing is recorded");

    // 12-03 10:00: its own forecast still says yellow; Taiyuan stays at orange, the provincial level.
    app.set_clock("2026-12-03 10:00");
    app.state.engine.tick().await.expect("a tick");
    let w = app.warning_of(TAIYUAN).await.expect("Taiyuan's warning");
    assert_eq!((w["level"].as_str(), w["status"].as_str()), (Some("orange"), Some("active")), "{w}");

    // 12-03 11:00: the province's lift arrives. Datong and Qingxu (no forecast of their own calling
    // for a warning) are lifted at once; Taiyuan falls to the yellow its own forecast calls for.
    app.set_clock("2026-12-03 11:00");
    // Without its own document number the lift is refused, naming the field.
    let (status, body) = app.post("/api/v1/upstream-warnings/SX-2026-5/lift", Some(HEAD)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["error"], "doc_no: required (the lift's own document number, 解除文号)",
        "{body}"
    );
    let (status, body) = app
        .post_json(
            "/api/v1/upstream-warnings/SX-2026-5/lift",
            Some(HEAD),
            &json!({ "doc_no": LIFT_NO }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let datong = app.warning_of(DATONG).await.expect("Datong's warning");
    assert_eq!(
        (datong["status"].as_str(), &datong["holds"]),
        (Some("lifted"), &json!([])),
        "{datong}"
    );
    assert_eq!(time(&datong["ended_at"]), shanghai("2026-12-03 11:00"));
    let datong_history = history_of(&app, datong["id"].as_str().expect("an id")).await;
    assert!(
        datong_history.iter().any(|r| r["event"]["kind"] == "directive_released"
            && r["event"]["reason"] == format!("{ISSUER}预警（{DOC_NO}）解除（解除文号：{LIFT_NO}）")
            && r["event"]["doc_no"] == LIFT_NO),
        "{datong_history:?}"
    );
    let w = app.warning_of(QINGXU).await.expect("Qingxu's warning");
    assert_eq!(w["status"], "lifted", "{w}");
    let w = app.warning_of(TAIYUAN).await.expect("Taiyuan's warning");
    assert_eq!(w["holds"], json!([]), "{w}");
    assert_eq!((w["level"].as_str(), w["status"].as_str()), (Some("yellow"), Some("active")), "{w}");
    let (_, body) = app.get("/api/v1/upstream-warnings", Some(DUTY)).await;
    assert_eq!(body["upstream_warnings"][0]["active"], false, "{body}");
    assert_eq!(body["upstream_warnings"][0]["upstream"]["lift_doc_no"], LIFT_NO, "{body}");

    // Its lift once more: refused, it is over.
    let (status, body) = app
        .post_json(
            "/api/v1/upstream-warnings/SX-2026-5/lift",
            Some(HEAD),
            &json!({ "doc_no": LIFT_NO }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warning_from_above_with_an_unknown_region_or_level_or_without_its_document_number_is_refused_naming_the_field() {
    let app = spawn_app(clock()).await;
    let seq = app.last_seq().await;
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut b = provincial_warning();
        edit(&mut b);
        b
    };
    let cases = [
        (
            with(&|b| b["areas"][1]["regions"] = json!(["149999"])),
            "areas[1].regions: unknown region 149999".to_string(),
        ),
        (
            with(&|b| b["areas"][0]["level"] = json!("purple")),
            "areas[0].level: undefined level \"purple\" (playbook taiyuan@2026.1 defines yellow, orange, red)".to_string(),
        ),
        (with(&|b| b["doc_no"] = json!("  ")), "doc_no: must not be empty".to_string()),
        (
            with(&|b| b["areas"] = json!([])),
            "areas: name at least one group of regions and its level".to_string(),
        ),
        (
            with(&|b| b["expected_end"] = json!("2026-12-01 00:00")),
            "expected_end: must be after start".to_string(),
        ),
    ];
    for (body, error) in cases {
        let (status, answer) = app.post_json("/api/v1/upstream-warnings", Some(DEPUTY), &body).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some(error.as_str())),
            "{body}"
        );
    }
    // Without its document number at all: the parser names the field.
    let (status, answer) = app
        .post_json(
            "/api/v1/upstream-warnings",
            Some(DEPUTY),
            &with(&|b| {
                b.as_object_mut().expect("an object").remove("doc_no");
            }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["error"].as_str().is_some_and(|e| e.contains("missing field `doc_no`")),
        "{answer}"
    );
    // The duty officer may not record one (the authority of a directive at its highest level).
    let (status, answer) = app.post_json("/api/v1/upstream-warnings", Some(DUTY), &provincial_warning()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");

    assert_eq!(app.last_seq().await, seq, "nothing is recorded");
    assert!(app.warnings().await.is_empty());
    let (_, body) = app.get("/api/v1/upstream-warnings", Some(DUTY)).await;
    assert_eq!(body["upstream_warnings"], json!([]), "{body}");
    // A directive is not a warning from above: its lift goes the directive's way.
    let (status, _) = app
        .post_json(
            "/api/v1/upstream-warnings/SX-2026-5/lift",
            Some(DEPUTY),
            &json!({ "doc_no": LIFT_NO }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}

/// The error written beside `name` once the inbox has moved it to `rejected/`.
async fn rejected_error(app: &TestApp, name: &str) -> String {
    let rejected = app.inbox().join("rejected");
    // The error is written after the move: wait for its line.
    eventually(&format!("{name} is moved aside with its error"), || async {
        std::fs::read_to_string(rejected.join(format!("{name}.error")))
            .ok()
            .filter(|e| e.ends_with('\n'))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provincial_warning_dropped_in_the_inbox_starts_the_city_and_its_lift_file_lifts_it_keeping_both_document_numbers() {
    let app = spawn_app(clock()).await;
    app.set_clock("2026-12-01 15:20");

    // A broken file first: a level no playbook defines. Moved aside naming the file and the field;
    // nothing recorded.
    let seq = app.last_seq().await;
    let mut broken = provincial_warning();
    broken["kind"] = json!("upstream_warning");
    broken["areas"][1]["level"] = json!("purple");
    app.drop_in_inbox("sx-2026-5-broken.json", serde_json::to_vec(&broken).expect("JSON"));
    let error = rejected_error(&app, "sx-2026-5-broken.json").await;
    assert!(
        error.starts_with("sx-2026-5-broken.json: areas[1].level: undefined level \"purple\""),
        "{error}"
    );
    // A kind the inbox does not know: the field named.
    app.drop_in_inbox("odd.json", br#"{"kind": "upstream_warnings", "id": "x"}"#);
    let error = rejected_error(&app, "odd.json").await;
    assert!(error.starts_with("odd.json: kind: \"upstream_warnings\" is not"), "{error}");
    // A lift of nothing recorded.
    app.drop_in_inbox(
        "sx-2026-9-lift.json",
        serde_json::to_vec(&json!({ "kind": "upstream_warning_lift", "id": "SX-2026-9", "doc_no": LIFT_NO })).expect("JSON"),
    );
    let error = rejected_error(&app, "sx-2026-9-lift.json").await;
    assert_eq!(error.trim(), "sx-2026-9-lift.json: id: no warning from above SX-2026-9");
    assert_eq!(app.last_seq().await, seq, "nothing is recorded");
    assert!(app.warnings().await.is_empty());

    // The province's warning for Datong (yellow), as the office's document system drops it.
    let warning = json!({
        "kind": "upstream_warning",
        "id": "SX-2026-5",
        "doc_no": DOC_NO,
        "issuer": ISSUER,
        "areas": [{ "level": "yellow", "regions": [DATONG] }],
        "start": "2026-12-02 00:00"
    });
    app.drop_in_inbox("sx-2026-5.json", serde_json::to_vec(&warning).expect("JSON"));
    let w = eventually("Datong's warning from the inbox", || async { app.warning_of(DATONG).await }).await;
    assert_eq!(
        (w["level"].as_str(), w["status"].as_str(), w["pending_sign_off"].as_bool()),
        (Some("yellow"), Some("issued"), Some(false)),
        "{w}"
    );
    assert_eq!(time(&w["start"]), shanghai("2026-12-02 00:00"), "{w}");
    assert_eq!(w["holds"][0]["source"], format!("{ISSUER}预警（{DOC_NO}）"), "{w}");
    let id = w["id"].as_str().expect("an id").to_string();
    eventually("the file is processed", || async {
        files_in(&app.inbox().join("processed"))
            .contains(&"sx-2026-5.json".to_string())
            .then_some(())
    })
    .await;
    // The same file once more (a sender's retry): taken as done, nothing recorded twice.
    let seq = app.last_seq().await;
    app.drop_in_inbox("sx-2026-5.json", serde_json::to_vec(&warning).expect("JSON"));
    eventually("the retry is processed", || async {
        files_in(&app.inbox().join("processed"))
            .contains(&"sx-2026-5.json-1".to_string())
            .then_some(())
    })
    .await;
    assert_eq!(app.last_seq().await, seq, "nothing recorded twice");

    app.set_clock("2026-12-02 00:00");
    app.state.engine.tick().await.expect("a tick");
    assert_eq!(app.warning_of(DATONG).await.expect("a warning")["status"], "active");

    // 12-03 11:00: its lift arrives in the inbox, with its own document number.
    app.set_clock("2026-12-03 11:00");
    app.drop_in_inbox(
        "sx-2026-5-lift.json",
        serde_json::to_vec(&json!({ "kind": "upstream_warning_lift", "id": "SX-2026-5", "doc_no": LIFT_NO })).expect("JSON"),
    );
    let w = eventually("Datong's warning is lifted", || async {
        app.warning_of(DATONG).await.filter(|w| w["status"] == "lifted")
    })
    .await;
    assert_eq!(time(&w["ended_at"]), shanghai("2026-12-03 11:00"));
    let history = history_of(&app, &id).await;
    let released = history
        .iter()
        .find(|r| r["event"]["kind"] == "directive_released")
        .unwrap_or_else(|| panic!("released in {history:?}"));
    assert_eq!(
        released["event"]["reason"],
        format!("{ISSUER}预警（{DOC_NO}）解除（解除文号：{LIFT_NO}）"),
        "{released}"
    );
    assert_eq!(released["event"]["doc_no"], LIFT_NO, "{released}");
    let lifted = app.records("directive_lifted");
    assert_eq!(
        (lifted.len(), &lifted[0]["actor"], &lifted[0]["doc_no"]),
        (1, &json!("inbox"), &json!(LIFT_NO)),
        "{lifted:?}"
    );
    let (_, body) = app.get("/api/v1/upstream-warnings", Some(DUTY)).await;
    let u = &body["upstream_warnings"][0];
    assert_eq!(
        (&u["active"], &u["upstream"]["doc_no"], &u["upstream"]["lift_doc_no"]),
        (&json!(false), &json!(DOC_NO), &json!(LIFT_NO)),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warning_from_above_marked_as_a_drill_runs_in_the_drill_lanes_its_notices_and_form_say_so_and_the_real_lane_is_untouched() {
    let app = spawn_app(clock()).await;
    // The real lane: Taiyuan's own forecast proposes yellow, awaiting the deputy head.
    let (status, body) = app
        .submit(forecast_csv(
            "2026-12-01 14:00",
            SOURCE,
            TAIYUAN,
            "2026-12-01",
            &[120, 160, 170, 120, 100, 90, 90],
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    eventually("Taiyuan's own proposal", || async { app.warning_of(TAIYUAN).await }).await;
    let real_before = app.warnings().await;
    // The real forms as stored (the times achieved move with the clock).
    let forms = |body: &Value| -> Vec<Value> {
        body["approvals"]
            .as_array()
            .expect("a list")
            .iter()
            .map(|f| f["form"].clone())
            .collect()
    };
    let (_, body) = app.get("/api/v1/approvals", Some(DUTY)).await;
    let real_forms = forms(&body);
    assert_eq!(real_forms.len(), 1, "{body}");

    // 15:20: the province's drill warning (演练) for Taiyuan, orange.
    app.set_clock("2026-12-01 15:20");
    let mut drill = provincial_warning();
    drill["id"] = json!("SX-2026-D1");
    drill["doc_no"] = json!("晋重污应急演〔2026〕1号");
    drill["areas"] = json!([{ "level": "orange", "regions": [TAIYUAN] }]);
    drill["exercise"] = json!(true);
    let (status, body) = app.post_json("/api/v1/upstream-warnings", Some(HEAD), &drill).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // It runs in the drill lanes: Taiyuan and its counties issued at orange, without a signature,
    // naming the drill's document.
    let (_, body) = app.get("/api/v1/drills", Some(DUTY)).await;
    let d = body["drills"]
        .as_array()
        .and_then(|d| d.iter().find(|w| w["region"] == TAIYUAN))
        .cloned()
        .unwrap_or_else(|| panic!("a drill for Taiyuan: {body}"));
    assert_eq!(
        (d["level"].as_str(), d["status"].as_str(), d["exercise"].as_bool()),
        (Some("orange"), Some("issued"), Some(true)),
        "{d}"
    );
    assert_eq!(d["holds"][0]["source"], format!("{ISSUER}预警（晋重污应急演〔2026〕1号）"), "{d}");
    let drill_id = d["id"].as_str().expect("an id").to_string();
    assert!(drill_id.contains("-D"), "{drill_id}");

    // The real lane is exactly as it was: the yellow proposal, the real forms.
    assert_eq!(app.warnings().await, real_before);
    let (_, body) = app.get("/api/v1/approvals", Some(DUTY)).await;
    assert_eq!(forms(&body), real_forms, "the real forms' list");

    // Its approval form is the drill's.
    let (_, body) = app.get(&format!("/api/v1/approvals?warning={drill_id}"), Some(DUTY)).await;
    let f = &body["approvals"][0];
    assert_eq!(
        (f["form"]["exercise"].as_bool(), f["title"].as_str()),
        (Some(true), Some("【演练】重污染天气预警信息发布审批表")),
        "{body}"
    );

    // Every notice of the drill is marked 【演练】.
    let templates =
        hazeflow::notify::templates::Templates::load(&std::path::Path::new(PLAYBOOKS).join("templates/notify")).expect("templates");
    let notices = eventually("the drill's notices", || async {
        let m: Vec<_> = app.outbox().into_iter().filter(|m| m.cause == drill_id).collect();
        (!m.is_empty()).then_some(m)
    })
    .await;
    for m in &notices {
        assert_eq!(m.data["exercise"], true, "{}: {}", m.template, m.data);
        let r = templates.render(&m.template, &m.data).expect("it renders");
        assert!(r.subject.starts_with("【演练】"), "{}", r.subject);
    }

    // Its lift (with the drill's lift number) ends the drill; the real lane still untouched.
    app.set_clock("2026-12-01 16:00");
    let (status, body) = app
        .post_json(
            "/api/v1/upstream-warnings/SX-2026-D1/lift",
            Some(HEAD),
            &json!({ "doc_no": "晋重污应急演〔2026〕2号" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = app.get("/api/v1/drills", Some(DUTY)).await;
    assert!(
        !body["drills"].as_array().is_some_and(|d| d
            .iter()
            .any(|w| w["id"] == drill_id.as_str() && w["status"] != "lifted" && w["status"] != "cancelled")),
        "{body}"
    );
    assert_eq!(app.warnings().await, real_before);
    app.stop().await;
}
