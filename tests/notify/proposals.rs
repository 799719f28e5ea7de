//! A proposal awaiting sign-off is re-proposed by every consultation that still calls for it (the
//! lead time moves its earliest start with the clock). The people it reaches hear of it once; a
//! changed proposal (another level) reaches them again.

use std::collections::BTreeMap;

use chrono::Duration;

use crate::helpers::*;

/// Subjects received per recipient, in arrival order.
fn subjects_by_recipient(received: &[Received]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in received {
        let subject = r.parsed().subject().unwrap_or_default().to_string();
        // The approval form's reminder (【审批表提醒】, an hour before its 2 h deadline) is not a proposal.
        if subject.starts_with("【审批表") {
            continue;
        }
        for to in &r.to {
            out.entry(to.clone()).or_default().push(subject.clone());
        }
    }
    out
}

const ORANGE: &str = "【待签发】太原市重污染天气橙色预警（Ⅱ级）发布建议";
const YELLOW: &str = "【待签发】太原市重污染天气黄色预警（Ⅲ级）发布建议";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_proposal_reaches_each_person_once_however_often_it_is_re_proposed_and_again_when_its_level_changes() {
    let smtp = SmtpServer::start(0, None);
    let app = spawn_app(|s| smtp_to(s, smtp.port)).await;

    // 15:00 orange is proposed for Taiyuan: duty staff and the deputy head are told.
    let id = app.propose_orange_for_taiyuan().await;
    smtp.wait_for(PROPOSAL_TO.len()).await;

    // 15:30 the forecast centre re-issues the same forecast; 16:00 the afternoon consultation; 16:10
    // a consultation on demand. Each finds the same orange warning from 12-02 00:00: nothing new is
    // proposed (the start no longer moves with the clock).
    app.clock.advance(Duration::minutes(30));
    app.taiyuan_forecast("2026-12-01 15:20", &[235, 245, 190, 120, 90, 80, 70]).await;
    app.clock.advance(Duration::minutes(30));
    app.clock.advance(Duration::minutes(10));
    let (status, body) = app.post("/api/v1/consultations", Some(DEPUTY)).await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    let history = app.proposals_recorded(&id, 1).await;
    assert!(
        history.iter().all(|p| p["level"] == "orange"),
        "the same level each time: {history:#?}"
    );
    // Give duplicates the chance to arrive: still one email per person.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let per = subjects_by_recipient(&smtp.received());
    assert_eq!(per.len(), PROPOSAL_TO.len(), "{per:#?}");
    for to in PROPOSAL_TO {
        assert_eq!(per[*to], [ORANGE], "{to}");
    }
    assert_eq!(
        app.outbox().iter().filter(|m| m.template != "approval_overdue").count(),
        PROPOSAL_TO.len()
    );

    // 16:20 the forecast improves: the proposal becomes yellow, and everyone hears of the change.
    app.clock.advance(Duration::minutes(10));
    app.taiyuan_forecast("2026-12-01 16:15", &[215, 140, 120, 100, 90, 80, 70]).await;
    app.proposals_recorded(&id, 2).await;
    // 16:30 it worsens again: orange once more is a change from yellow, told again.
    app.clock.advance(Duration::minutes(10));
    app.taiyuan_forecast("2026-12-01 16:25", &[235, 245, 190, 120, 90, 80, 70]).await;
    app.proposals_recorded(&id, 3).await;

    smtp.wait_for(3 * PROPOSAL_TO.len()).await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let per = subjects_by_recipient(&smtp.received());
    for to in PROPOSAL_TO {
        assert_eq!(per[*to], [ORANGE, YELLOW, ORANGE], "{to}");
    }
    // Every proposal sent (the approval form's reminder at 16:00 is not counted: see above).
    eventually("the proposals are sent", || async {
        let all = app.outbox();
        let proposals = all.iter().filter(|m| m.template != "approval_overdue").count();
        (proposals == 3 * PROPOSAL_TO.len() && all.iter().all(|m| m.status == hazeflow::notify::outbox::Status::Sent)).then_some(())
    })
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposal_on_a_public_holiday_reaches_the_holidays_duty_officer_not_the_weekday_shift() {
    let smtp = SmtpServer::start(0, None);
    // Tuesday 2026-12-01 made a public holiday for the test, with Taiyuan's holiday duty officer named by
    // an override; the weekday day shift (王芳, Mallory) stays home.
    let holiday = ROSTER.replace(
        "    - { id: ty-deputy,",
        "    - { id: ty-chen-jing, name: 陈静, role: duty_officer, email: chen.jing@ty.example.cn, shifts: [{ days: [weekend], from: \"08:00\", to: \"08:00\" }] }\n    - { id: ty-deputy,",
    ) + r#"
calendar:
  holidays:
    - { name: 测试假日, first: "2026-12-01" }
overrides:
  "140100":
    - { date: "2026-12-01", from: "08:00", to: "08:00", people: [ty-chen-jing], note: 假日值班 }
"#;
    let app = spawn_app(|s| {
        std::fs::write(&s.roster, &holiday).expect("the holiday roster");
        smtp_to(s, smtp.port);
    })
    .await;
    app.propose_orange_for_taiyuan().await;
    smtp.wait_for(2).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let per = subjects_by_recipient(&smtp.received());
    assert_eq!(
        per.keys().map(String::as_str).collect::<Vec<_>>(),
        ["chen.jing@ty.example.cn", "zhao.jianguo@ty.example.cn"],
        "{per:#?}"
    );
    assert_eq!(per["chen.jing@ty.example.cn"], [ORANGE]);
    let greeting = smtp
        .received()
        .into_iter()
        .find(|r| r.to.iter().any(|t| t == "chen.jing@ty.example.cn"))
        .expect("the holiday officer's mail")
        .parsed()
        .body_text(0)
        .unwrap_or_default()
        .to_string();
    assert!(greeting.contains("陈静"), "{greeting}");
    app.settled(2).await;
    app.stop().await;
}
