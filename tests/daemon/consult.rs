//! The consultation's paperwork (domain.md §2.5): the meeting's record (会商意见), which may change or
//! reject the engine's proposal with a reason (both kept), and the approval form (审批表) of each
//! decision: completed, signed, relayed, printed as a Word file, its two deadlines chased by timers.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const TAIYUAN: &str = "140100";

/// Orange for Taiyuan from 12-02 (two days above 200), submitted at 15:00: the consultation proposes
/// it at once. Returns the warning's id and the consultation's seq.
async fn orange_proposed(app: &TestApp) -> (String, u64) {
    let csv = forecast_csv(
        "2026-12-01 14:00",
        SOURCE,
        TAIYUAN,
        "2026-12-01",
        &[120, 160, 230, 240, 180, 120, 100],
    );
    let (status, body) = app.submit(csv).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let w = eventually("the consultation proposes orange", || async {
        app.warning_of(TAIYUAN).await.filter(|w| w["status"] == "pending")
    })
    .await;
    assert_eq!(w["level"], "orange", "{w}");
    let (_, body) = app.get("/api/v1/consultations?limit=1", Some(DUTY)).await;
    let seq = body["consultations"][0]["seq"].as_u64().expect("a consultation");
    (w["id"].as_str().expect("an id").to_string(), seq)
}

fn record(conclusion: Value) -> Value {
    json!({
        "units": [
            { "name": "省生态环境监测和应急保障中心", "people": ["张明"] },
            { "name": "太原市气象局", "people": ["李华", "周婷"] },
        ],
        "weather": "受弱高压控制，近地面静风，逆温层厚，大气扩散条件差。",
        "trend": "3日至4日污染持续，5日冷空气过境后逐步改善。",
        "primary_pollutant": "PM2.5",
        "conclusions": [conclusion],
    })
}

async fn forms_of(app: &TestApp, warning: &str) -> Vec<Value> {
    let (status, body) = app.get(&format!("/api/v1/approvals?warning={warning}"), Some(DUTY)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["approvals"].as_array().cloned().unwrap_or_default()
}

fn field<'a>(form: &'a Value, label: &str) -> &'a str {
    form["fields"]
        .as_array()
        .and_then(|f| f.iter().find(|x| x["label"] == label))
        .and_then(|x| x["value"].as_str())
        .unwrap_or_else(|| panic!("no field {label}: {form}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_meeting_lowers_the_proposal_with_a_reason_and_the_approval_form_follows_it_is_signed_relayed_and_downloaded_as_docx() {
    let app = spawn_app(clock()).await;
    let (id, seq) = orange_proposed(&app).await;

    // The meeting's page: the proposal and the forecast per day, no record yet.
    let (status, body) = app.get(&format!("/api/v1/consultations/{seq}/opinion"), Some(DUTY)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["opinion"].is_null(), "{body}");
    let region = body["consultation"]["regions"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["region"] == TAIYUAN))
        .expect("Taiyuan assessed")
        .clone();
    assert_eq!(region["proposed"]["level"], "orange", "{region}");
    assert_eq!(region["forecast"][2]["aqi"], 230, "{region}");

    // The decision opened its approval form, due 2 h after the consultation (approval_form_hours).
    let forms = forms_of(&app, &id).await;
    assert_eq!(forms.len(), 1, "{forms:?}");
    let form_id = forms[0]["form"]["id"].as_str().expect("a form id").to_string();
    assert_eq!(forms[0]["form"]["kind"], "issue");
    assert_eq!(forms[0]["form"]["level"], "orange");
    assert_eq!(forms[0]["achieved"]["form"]["due"], json!(shanghai("2026-12-01 17:00")));

    // 15:20: the meeting concludes yellow. Without a reason: refused, naming the field; nothing changes.
    app.set_clock("2026-12-01 15:20");
    let change = json!({
        "region": TAIYUAN, "decision": "change", "level": "yellow",
        "from": "2026-12-02 00:00", "until": "2026-12-05 00:00",
    });
    let before = app.last_seq().await;
    let (status, body) = app
        .post_json(&format!("/api/v1/consultations/{seq}/opinion"), Some(DUTY), &record(change.clone()))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "conclusions[0].reason: a change needs a reason");
    assert_eq!(app.last_seq().await, before, "nothing recorded");
    assert_eq!(app.warning_of(TAIYUAN).await.expect("the warning")["level"], "orange");

    // With the reason: recorded; the proposal is now yellow, awaiting the same signer.
    let mut change = change;
    change["reason"] = json!("模式对逆温层厚度预报偏高，会商认为5日前不会出现连续48小时AQI>200");
    let (status, body) = app
        .post_json(&format!("/api/v1/consultations/{seq}/opinion"), Some(DUTY), &record(change.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let w = app.warning_of(TAIYUAN).await.expect("the warning");
    assert_eq!(
        (w["id"].as_str(), w["status"].as_str(), w["level"].as_str()),
        (Some(id.as_str()), Some("pending"), Some("yellow")),
        "{w}"
    );
    assert_eq!(w["expected_end"], json!(shanghai("2026-12-05 00:00")));
    // Both the proposal and the decision are kept, in the log and over the API.
    let kept = app.records("consultation_opinion_recorded");
    assert_eq!(kept.len(), 1);
    let c = &kept[0]["data"]["conclusions"][0];
    assert_eq!(
        (c["proposed"]["level"].as_str(), c["decision"].as_str(), c["level"].as_str()),
        (Some("orange"), Some("change"), Some("yellow")),
        "{c}"
    );
    assert_eq!(kept[0]["actor"], DUTY_NAME);
    assert!(c["reason"].as_str().is_some_and(|r| r.contains("逆温层")), "{c}");
    let (_, shown) = app.get(&format!("/api/v1/consultations/{seq}/opinion"), Some(HEAD)).await;
    assert_eq!(shown["opinion"]["conclusions"][0], *c);
    let (_, history) = app.get(&format!("/api/v1/warnings/{id}"), Some(HEAD)).await;
    let proposals: Vec<&Value> = history["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|r| r["event"]["kind"] == "proposed")
        .collect();
    assert_eq!(proposals.len(), 2, "the engine's proposal and the meeting's: {history}");
    assert_eq!(proposals[0]["event"]["level"], "orange");
    assert_eq!(
        (proposals[1]["event"]["level"].as_str(), proposals[1]["event"]["actor"].as_str()),
        (Some("yellow"), Some(DUTY_NAME))
    );
    // A second record of the same consultation is refused.
    let (status, _) = app
        .post_json(&format!("/api/v1/consultations/{seq}/opinion"), Some(DUTY), &record(change))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // The form follows the proposal (yellow, the same form and deadline) and carries the meeting.
    let forms = forms_of(&app, &id).await;
    assert_eq!(forms.len(), 1, "{forms:?}");
    let f = &forms[0];
    assert_eq!(f["form"]["level"], "yellow");
    assert_eq!(f["form"]["meeting"]["decision"], "change");
    assert_eq!(f["form"]["weather"], "受弱高压控制，近地面静风，逆温层厚，大气扩散条件差。");
    assert!(field(f, "会商意见").contains("调整系统建议（橙色预警）；理由：模式对逆温层"), "{f}");

    // 15:30: completed (every field required); 15:40: the deputy head signs the warning, which signs the form.
    app.set_clock("2026-12-01 15:30");
    let (status, body) = app
        .post_json(
            &format!("/api/v1/approvals/{form_id}/complete"),
            Some(DUTY),
            &json!({ "weather": "x" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("trend: required")), "{body}");
    let (status, body) = app.post(&format!("/api/v1/approvals/{form_id}/relay"), Some(DUTY)).await;
    assert_eq!(status, StatusCode::CONFLICT, "not signed yet: {body}");
    let completion = json!({
        "weather": "静稳天气，逆温，湿度大。",
        "trend": "12月2日至4日维持中至重度污染，5日起好转。",
        "measures": "启动Ⅲ级应急响应，清单内企业按“一厂一策”落实黄色预警减排措施。",
    });
    let (status, body) = app
        .post_json(&format!("/api/v1/approvals/{form_id}/complete"), Some(DUTY), &completion)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["approval"]["achieved"]["form"]["minutes"], 30);
    assert_eq!(body["approval"]["achieved"]["form"]["late"], false);
    app.set_clock("2026-12-01 15:40");
    let (status, body) = app.post(&format!("/api/v1/warnings/{id}/sign"), Some(DEPUTY)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = app.get(&format!("/api/v1/approvals/{form_id}"), Some(DUTY)).await;
    let f = &body["approval"];
    assert_eq!(f["form"]["signer"], DEPUTY_NAME);
    assert_eq!(
        f["achieved"]["relay"]["due"],
        json!(shanghai("2026-12-01 17:40")),
        "relay_hours after the sign-off"
    );

    // The Word file holds the fields the plans name.
    let resp = app
        .http()
        .get(app.url(&format!("/api/v1/approvals/{form_id}/docx")))
        .bearer_auth(DUTY)
        .send()
        .await
        .expect("the docx");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"],
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    );
    let bytes = resp.bytes().await.expect("its bytes");
    let xml = document_xml(&bytes);
    for want in [
        "重污染天气预警信息发布审批表",
        "太原市重污染天气应急指挥部办公室",
        "预警等级",
        "黄色预警（Ⅲ级应急响应）",
        "出现时段",
        "2026年12月2日 00:00 至 2026年12月5日 00:00",
        "预警发布时间",
        "2026年12月1日 15:40",
        "不利气象条件",
        "静稳天气，逆温，湿度大。",
        "趋势分析",
        "应急措施",
        "落实黄色预警减排措施",
        "签发人",
        "李副市长（分管副市长）",
        "用时30分钟",
        "逆温层厚度预报偏高",
    ] {
        assert!(xml.contains(want), "word/document.xml lacks {want}: {xml}");
    }

    // The same sign-off decided the lift too (the forecast shows the clean days): its own form, kind 解除.
    let forms = forms_of(&app, &id).await;
    assert_eq!(forms.len(), 2, "{forms:?}");
    assert_eq!(forms[1]["form"]["kind"], "lift");
    let mine = |m: &hazeflow::notify::OutboxMessage| m.template == "approval_overdue" && m.data["form"]["id"] == form_id.as_str();

    // 17:41: the relay (due 17:40) is overdue: Taiyuan's duty officer on shift is told.
    app.set_clock("2026-12-01 17:41");
    let told = eventually("the overdue relay is reported", || async {
        let m: Vec<_> = app.outbox().into_iter().filter(|m| mine(m)).collect();
        (!m.is_empty()).then_some(m)
    })
    .await;
    assert_eq!(told.len(), 1, "the form was completed in time: only the relay is chased: {told:?}");
    assert_eq!(told[0].recipient.key, "ty-wang-fang");
    assert_eq!(told[0].data["stage"], "relay");
    assert_eq!(told[0].data["step"], "overdue");
    let chased = |app: &TestApp| -> Vec<Value> {
        app.records("approval_chased")
            .into_iter()
            .filter(|r| r["data"]["form"] == form_id.as_str())
            .collect()
    };
    assert_eq!(chased(&app).len(), 1);

    // 17:50: relayed, late; the times achieved are on the form, and nothing is chased any more.
    app.set_clock("2026-12-01 17:50");
    let (status, body) = app
        .post_json(
            &format!("/api/v1/approvals/{form_id}/relay"),
            Some(DUTY),
            &json!({ "note": "并〔2026〕12号" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let f = &body["approval"];
    assert_eq!(
        (f["achieved"]["relay"]["minutes"].as_i64(), f["achieved"]["relay"]["late"].as_bool()),
        (Some(130), Some(true))
    );
    assert!(
        field(f, "转发各部门").contains("用时2小时10分，时限2026年12月1日 17:40，超时"),
        "{f}"
    );
    app.set_clock("2026-12-02 08:00");
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(chased(&app).len(), 1, "a relayed form is not chased");
    let left = app
        .state
        .engine
        .store
        .read(hazeflow::engine::escalate::pending_forms)
        .expect("timers");
    assert!(left.iter().all(|t| t.form.as_ref().is_some_and(|f| f.id != form_id)), "{left:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_form_left_incomplete_is_reported_at_its_deadline_then_escalated_to_the_province() {
    let app = spawn_app(clock()).await;
    let (id, _) = orange_proposed(&app).await;
    let form_id = forms_of(&app, &id).await[0]["form"]["id"].as_str().expect("a form").to_string();

    // Orange: a reminder 1 h before the deadline (17:00), to the city's duty officer.
    app.set_clock("2026-12-01 16:01");
    let reminded = eventually("the reminder", || async {
        let m: Vec<_> = app.outbox().into_iter().filter(|m| m.template == "approval_overdue").collect();
        (!m.is_empty()).then_some(m)
    })
    .await;
    assert_eq!(reminded[0].data["step"], "remind");
    assert_eq!(reminded[0].recipient.key, "ty-wang-fang");
    // 17:01: overdue; 21:01 (escalate_every_hours 2 per tier; the city's tier is the city itself,
    // skipped) the province's night duty officer.
    app.set_clock("2026-12-01 17:01");
    eventually("the overdue report", || async {
        app.outbox()
            .into_iter()
            .find(|m| m.template == "approval_overdue" && m.data["step"] == "overdue")
    })
    .await;
    app.set_clock("2026-12-01 21:01");
    let up = eventually("the escalation to the province", || async {
        app.outbox()
            .into_iter()
            .find(|m| m.template == "approval_overdue" && m.data["step"] == "escalate-2")
    })
    .await;
    assert_eq!(up.recipient.key, "sx-li-qiang");
    assert_eq!(up.data["tier_region_name"], "山西省");
    let rendered = hazeflow::notify::templates::Templates::load(&std::path::Path::new(PLAYBOOKS).join("templates/notify"))
        .expect("templates")
        .render("approval_overdue", &up.data)
        .expect("it renders");
    assert!(
        rendered
            .subject
            .starts_with("【审批表逾期】太原市重污染天气橙色预警发布审批表尚未填报"),
        "{}",
        rendered.subject
    );
    let steps: Vec<String> = app
        .records("approval_chased")
        .iter()
        .map(|r| r["data"]["step"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(steps, ["remind", "overdue", "escalate-2"]);
    let (_, body) = app.get(&format!("/api/v1/approvals/{form_id}"), Some(DUTY)).await;
    assert!(
        field(&body["approval"], "填表").contains("尚未填报（时限2026年12月1日 17:00，已超时）"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_meeting_rejects_a_proposal_with_a_reason_the_proposal_is_withdrawn_and_its_form_made_void() {
    let app = spawn_app(clock()).await;
    let (id, seq) = orange_proposed(&app).await;
    let reject = json!({ "region": TAIYUAN, "decision": "reject" });
    let (status, body) = app
        .post_json(&format!("/api/v1/consultations/{seq}/opinion"), Some(DUTY), &record(reject.clone()))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "conclusions[0].reason: a rejection needs a reason");
    let mut reject = reject;
    reject["reason"] = json!("沙尘输送为主，不属于应急减排范围");
    let (status, body) = app
        .post_json(&format!("/api/v1/consultations/{seq}/opinion"), Some(DUTY), &record(reject))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, w) = app.get(&format!("/api/v1/warnings/{id}"), Some(HEAD)).await;
    assert_eq!(w["warning"]["status"], "cancelled", "{w}");
    let forms = forms_of(&app, &id).await;
    assert!(
        forms[0]["form"]["void"].as_str().is_some_and(|v| v.contains("沙尘输送为主")),
        "{forms:?}"
    );
    // Nothing is chased for a void form.
    app.set_clock("2026-12-01 18:00");
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert!(app.records("approval_chased").is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drills_consultation_takes_its_record_and_its_decision_opens_an_approval_form_marked_as_a_drill_apart_from_the_real_ones() {
    let app = spawn_app(clock()).await;
    // The real episode: orange proposed for Taiyuan, its form open.
    let (real_id, real_seq) = orange_proposed(&app).await;
    let real_forms = forms_of(&app, &real_id).await;
    assert_eq!(real_forms.len(), 1);
    let real_list = |body: &Value| -> Vec<String> {
        body["approvals"]
            .as_array()
            .expect("a list")
            .iter()
            .map(|f| f["form"]["id"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let (_, body) = app.get("/api/v1/approvals", Some(DUTY)).await;
    let all_before = real_list(&body);
    assert_eq!(all_before.len(), 1, "{body}");
    let real_before = app.warnings().await;

    // 15:10: a drill's forecast for Taiyuan (red), consulted at once for the drill lane.
    app.set_clock("2026-12-01 15:10");
    let drill = forecast_csv(
        "2026-12-01 14:30",
        SOURCE,
        TAIYUAN,
        "2026-12-01",
        &[260, 320, 280, 220, 150, 120, 100],
    )
    .replacen("\nregion,", "\n# exercise: true\nregion,", 1);
    let (status, body) = app.submit(drill).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, body) = app.get("/api/v1/drills", Some(DUTY)).await;
    let d = body["drills"]
        .as_array()
        .and_then(|d| d.iter().find(|w| w["region"] == TAIYUAN))
        .cloned()
        .unwrap_or_else(|| panic!("a drill for Taiyuan: {body}"));
    assert_eq!((d["level"].as_str(), d["status"].as_str()), (Some("red"), Some("pending")), "{d}");
    let drill_id = d["id"].as_str().expect("an id").to_string();
    let (_, body) = app.get("/api/v1/consultations?limit=5", Some(DUTY)).await;
    let drill_seq = body["consultations"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["exercise"] == true))
        .and_then(|c| c["seq"].as_u64())
        .unwrap_or_else(|| panic!("the drill's consultation: {body}"));

    // Its decision opened a form marked 【演练】, with its deadline; listed with the drill's, not the real ones.
    let forms = forms_of(&app, &drill_id).await;
    assert_eq!(forms.len(), 1, "{forms:?}");
    let drill_form = forms[0]["form"]["id"].as_str().expect("a form id").to_string();
    assert_eq!(
        (forms[0]["form"]["exercise"].as_bool(), forms[0]["title"].as_str()),
        (Some(true), Some("【演练】重污染天气预警信息发布审批表")),
        "{}",
        forms[0]
    );
    assert_eq!(forms[0]["achieved"]["form"]["due"], json!(shanghai("2026-12-01 17:10")));
    let (_, all) = app.get("/api/v1/approvals", Some(DUTY)).await;
    assert_eq!(real_list(&all), all_before, "the real forms' list is untouched");
    let (_, drills) = app.get("/api/v1/approvals?exercise=true", Some(DUTY)).await;
    let ids: Vec<&str> = drills["approvals"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|f| f["form"]["id"].as_str())
        .collect();
    assert_eq!(ids, [drill_form.as_str()], "{drills}");

    // 15:20: the drill's meeting records its 会商意见, lowering red to orange with a reason.
    app.set_clock("2026-12-01 15:20");
    let change = json!({
        "region": TAIYUAN, "decision": "change", "level": "orange",
        "from": "2026-12-02 00:00", "until": "2026-12-05 00:00",
        "reason": "演练：会商认为红色条件不充分，按橙色预警组织演练",
    });
    let (status, body) = app
        .post_json(&format!("/api/v1/consultations/{drill_seq}/opinion"), Some(DUTY), &record(change))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["opinion"]["exercise"], true, "{body}");
    // The drill's proposal follows it; the real one, and the real consultation's record, do not.
    let (_, body) = app.get("/api/v1/drills", Some(DUTY)).await;
    let d = body["drills"]
        .as_array()
        .and_then(|d| d.iter().find(|w| w["id"] == drill_id.as_str()))
        .cloned()
        .expect("the drill");
    assert_eq!(
        (d["level"].as_str(), d["status"].as_str()),
        (Some("orange"), Some("pending")),
        "{d}"
    );
    assert_eq!(app.warnings().await, real_before, "the real warnings are untouched");
    let (_, shown) = app.get(&format!("/api/v1/consultations/{real_seq}/opinion"), Some(DUTY)).await;
    assert!(shown["opinion"].is_null(), "{shown}");
    assert!(forms_of(&app, &real_id).await[0]["form"]["meeting"].is_null());

    // The drill's form carries the meeting; completed, signed with the drill, relayed.
    let f = &forms_of(&app, &drill_id).await[0];
    assert_eq!(f["form"]["level"], "orange", "{f}");
    assert!(
        field(f, "会商意见").contains(&format!("第{drill_seq}号会商：调整系统建议（红色预警）")),
        "{f}"
    );
    let completion = json!({
        "weather": "演练：静稳天气，逆温。",
        "trend": "演练：12月2日至4日维持重度污染。",
        "measures": "演练：按橙色预警组织清单内企业落实减排措施。",
    });
    let (status, body) = app
        .post_json(&format!("/api/v1/approvals/{drill_form}/complete"), Some(DUTY), &completion)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.post(&format!("/api/v1/warnings/{drill_id}/sign"), Some(HEAD)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.post(&format!("/api/v1/approvals/{drill_form}/relay"), Some(DUTY)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The Word file says 【演练】 in its title.
    let xml = app.docx_xml(&format!("/api/v1/approvals/{drill_form}/docx"), DUTY).await;
    for want in [
        "【演练】重污染天气预警信息发布审批表",
        "橙色预警（Ⅱ级应急响应）",
        "演练：按橙色预警组织",
    ] {
        assert!(xml.contains(want), "{want} in the Word file");
    }

    // 16:01: the real form's reminder goes out as a real one; the drill's form is done and chases nothing.
    app.set_clock("2026-12-01 16:01");
    let reminded = eventually("the real form's reminder", || async {
        let m: Vec<_> = app.outbox().into_iter().filter(|m| m.template == "approval_overdue").collect();
        (!m.is_empty()).then_some(m)
    })
    .await;
    assert!(
        reminded
            .iter()
            .all(|m| m.data["warning_id"] == real_id.as_str() && m.data["exercise"] == false),
        "{reminded:?}"
    );
    // The real form, the real list and the real warnings as they were.
    assert_eq!(forms_of(&app, &real_id).await.len(), 1);
    let (_, all) = app.get("/api/v1/approvals", Some(DUTY)).await;
    assert_eq!(real_list(&all), all_before, "{all}");
    app.stop().await;
}

/// Shanxi signs a consultation's proposal once its 会商意见 is completed (`record_before_sign`): a
/// sign-off before it is refused (409, in Chinese, naming the consultation) and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposal_is_signed_only_after_its_consultations_record_is_completed() {
    let app = spawn_app(clock()).await;
    let (id, seq) = orange_proposed(&app).await;
    let before = app.last_seq().await;
    let (status, body) = app.post(&format!("/api/v1/warnings/{id}/sign"), Some(DEPUTY)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let msg = body["error"].as_str().unwrap_or_default();
    assert!(
        msg.starts_with("须先完成会商意见") && msg.contains(&format!("第{seq}号会商")) && msg.contains(&format!("/consultations/{seq}")),
        "{msg}"
    );
    // A reason of blanks is no reason.
    let (status, body) = app
        .post_json(
            &format!("/api/v1/warnings/{id}/sign"),
            Some(DEPUTY),
            &json!({ "without_record": "  " }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(app.last_seq().await, before, "nothing recorded");
    assert_eq!(app.warning_of(TAIYUAN).await.expect("the proposal")["status"], "pending");

    // The meeting's record, accepting the proposal: now it signs.
    let accept = json!({ "region": TAIYUAN, "decision": "accept" });
    let (status, body) = app
        .post_json(&format!("/api/v1/consultations/{seq}/opinion"), Some(DUTY), &record(accept))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app.post(&format!("/api/v1/warnings/{id}/sign"), Some(DEPUTY)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(app.warning_of(TAIYUAN).await.expect("the warning")["status"], "issued");
    let forms = forms_of(&app, &id).await;
    assert!(forms[0]["form"].get("without_record").is_none(), "{}", forms[0]);
    assert!(!field(&forms[0], "会商意见").contains("未附会商意见签发"), "{}", forms[0]);
    app.stop().await;
}

/// The signer may sign without the record by saying why: the reason is kept in the sign's note, on
/// the 审批表 (page, API and Word file) and on the consultation's 会商意见 page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposal_signed_without_its_consultations_record_keeps_the_reason_on_the_approval_form_and_the_record_page() {
    let app = spawn_app(clock()).await;
    let (id, seq) = orange_proposed(&app).await;
    let why = "会商专家因故未能到场，先行签发，会后补录会商意见";
    let (status, body) = app
        .post_json(
            &format!("/api/v1/warnings/{id}/sign"),
            Some(DEPUTY),
            &json!({ "without_record": why }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(app.warning_of(TAIYUAN).await.expect("the warning")["status"], "issued");

    // The sign's note in the log.
    let events = app.events().await;
    assert!(
        events
            .iter()
            .any(|e| e.to_string().contains(&format!("未附会商意见签发（第{seq}号会商），理由：{why}"))),
        "a note of the reason"
    );
    // The 审批表: its field and its Word file.
    let forms = forms_of(&app, &id).await;
    let form_id = forms[0]["form"]["id"].as_str().expect("a form").to_string();
    assert_eq!(forms[0]["form"]["without_record"], why);
    assert!(
        field(&forms[0], "会商意见").contains(&format!("未附会商意见签发，理由：{why}")),
        "{}",
        forms[0]
    );
    let xml = app.docx_xml(&format!("/api/v1/approvals/{form_id}/docx"), DUTY).await;
    assert!(xml.contains(&format!("未附会商意见签发，理由：{why}")), "{xml}");

    // The consultation's record: over the API and on its page.
    let (_, shown) = app.get(&format!("/api/v1/consultations/{seq}/opinion"), Some(DUTY)).await;
    assert_eq!(shown["signed_without_record"][0]["reason"], why, "{shown}");
    assert_eq!(shown["signed_without_record"][0]["warning"], id.as_str(), "{shown}");
    let session = login(&app, DUTY).await;
    let (status, html) = page(&app, &format!("/consultations/{seq}"), &session).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("未附会商意见签发") && html.contains(why) && html.contains(&id),
        "{html}"
    );
    app.stop().await;
}

/// The dashboard's warning page says whose record is awaited and offers the reason's field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_warning_page_says_the_record_is_awaited_and_its_sign_form_takes_the_reason() {
    let app = spawn_app(clock()).await;
    let (id, seq) = orange_proposed(&app).await;
    let session = login(&app, DEPUTY).await;
    let (status, html) = page(&app, &format!("/warnings/{id}"), &session).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(&format!("该预警由第{seq}号会商提出"))
            && html.contains("未完成会商意见即签发的理由")
            && html.contains("name=\"without_record\""),
        "{html}"
    );
    app.stop().await;
}
