//! Reports up (信息报送) over a real SMTP conversation: while Taiyuan's orange warning is in force, the
//! daily report goes to the upper tier's office (the province's, `reports.to` of playbooks/shanxi.yaml)
//! at `reports.daily_at` (12:00) each day, once, also across a restart; its figures per county are the
//! enterprises assigned, received, in place and overdue, the inspections made and the problems found;
//! it is kept (API, printable page, `.docx`). A drill's report is its own, marked 【演练】.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::smtp::{Received, SmtpServer, smtp_to};

/// The upper tier's address in playbooks/shanxi.yaml.
pub(crate) const UPPER: &str = "yjb@shanxi.example.cn";

pub(crate) async fn start(dir: tempfile::TempDir, at: &str, smtp: &SmtpServer) -> TestApp {
    let mut settings = settings_in(dir.path());
    smtp_to(&mut settings, smtp.port);
    settings.mail.rate_per_sec = 0.0;
    TestApp::start(dir, hazeflow::clock::Clock::manual(shanghai(at)), settings).await
}

/// The mails the upper tier received so far: (subject, text).
pub(crate) fn upper_mails(smtp: &SmtpServer) -> Vec<(String, String)> {
    smtp.received()
        .iter()
        .filter(|r: &&Received| r.to.iter().any(|t| t == UPPER))
        .map(|r| {
            let m = r.parsed();
            (
                m.subject().unwrap_or_default().to_string(),
                m.body_text(0).map(|t| t.to_string()).unwrap_or_default(),
            )
        })
        .collect()
}

/// The daily reports (日报) among them (decisions and summaries go up too: see `reportsup`).
fn daily_mails(smtp: &SmtpServer) -> Vec<(String, String)> {
    upper_mails(smtp)
        .into_iter()
        .filter(|(s, _)| s.trim_start_matches("【演练】").starts_with("【日报】"))
        .collect()
}

/// Waits until the upper tier has `n` mails, and a moment more to see that no more follow.
async fn upper_gets(smtp: &SmtpServer, n: usize) -> Vec<(String, String)> {
    eventually(&format!("{n} mails to the upper tier"), || async {
        (daily_mails(smtp).len() >= n).then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let got = daily_mails(smtp);
    assert_eq!(got.len(), n, "{got:#?}");
    got
}

pub(crate) async fn ack(app: &TestApp, id: &str, uscc: &str, step: &str) {
    let key = TestApp::of(&app.assignments(id, Some("active")).await, uscc)["key"]
        .as_str()
        .expect("a key")
        .to_string();
    let token = app.token(&key);
    let (status, body) = app
        .post_json(
            &format!("/api/v1/acks/{token}"),
            None,
            &json!({ "step": step, "name": "值班", "phone": "13800000000", "lines": app.lines_to_tick(&token).await }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// A county's row of a kept report: assigned, received, in place, overdue, in place overdue, inspected, problems.
fn figures(report: &Value, county: &str) -> [u64; 7] {
    let c = report["report"]["counties"]
        .as_array()
        .expect("counties")
        .iter()
        .find(|c| c["county"] == county)
        .unwrap_or_else(|| panic!("no {county} in {report:#}"));
    [
        "assigned",
        "received",
        "in_place",
        "overdue",
        "in_place_overdue",
        "inspected",
        "problems",
    ]
    .map(|k| c[k].as_u64().unwrap_or(u64::MAX))
}

pub(crate) async fn kept(app: &TestApp, id: &str) -> Value {
    let (status, r) = app.get(&format!("/api/v1/reports/{id}"), Some(DUTY)).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_report_counts_each_county_and_goes_to_the_upper_tier_once_a_day_at_its_time_also_across_a_restart() {
    let smtp = SmtpServer::start(0, None);
    let app = start(tempfile::TempDir::new().expect("a folder"), "2026-12-02 08:00", &smtp).await;
    let (cement, scripted, coking) = (cement(), scripted(), coking());

    // Wednesday 08:05: orange signed (receipt due 12:05, measures from Thursday 00:00).
    let id = app
        .propose(TAIYUAN, &orange_forecast("2026-12-02 07:30", "2026-12-02"), "orange")
        .await;
    app.set_clock("2026-12-02 08:05");
    app.sign(&id, DEPUTY).await;
    // The cement works confirms receipt and its measures; the chemical works receipt only; the coking
    // plant nothing.
    app.set_clock("2026-12-02 08:35");
    ack(&app, &id, &cement.uscc, "received").await;
    ack(&app, &id, &cement.uscc, "in_place").await;
    ack(&app, &id, &scripted.uscc, "received").await;

    // 11:59: not yet.
    app.set_clock("2026-12-02 11:59");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(daily_mails(&smtp).is_empty());
    assert!(app.records("report_made").iter().all(|r| !r.to_string().contains(".daily.")));

    // 12:00: the day's report, mailed once to the province's office.
    app.set_clock("2026-12-02 12:00");
    let mails = upper_gets(&smtp, 1).await;
    let (subject, text) = &mails[0];
    assert_eq!(subject, "【日报】太原市重污染天气橙色预警应急响应日报（2026年12月2日）");
    assert!(text.starts_with("山西省重污染天气应急指挥部办公室："), "{text}");
    assert!(
        text.contains("共对3家企业下达应急减排措施，2家已确认收到，1家已确认措施落实，0家逾期未确认收到"),
        "{text}"
    );
    assert!(text.contains("小店区／2／2／1／0／0／0／0／0"), "{text}");
    assert!(text.contains("迎泽区／1／0／0／0／0／0／0／0"), "{text}");
    let first = format!("{id}.daily.20261202");
    let r = kept(&app, &first).await;
    assert_eq!(figures(&r, XIAODIAN), [2, 2, 1, 0, 0, 0, 0]);
    assert_eq!(figures(&r, YINGZE), [1, 0, 0, 0, 0, 0, 0]);
    assert_eq!(r["report"]["to"]["email"], UPPER);
    assert!(!subject.contains("演练"));

    // 12:06: the coking plant is overdue → an inspection, which finds its measures not in place.
    app.set_clock("2026-12-02 12:06");
    let task = eventually("the inspection task", || async {
        let (_, v) = app.get(&format!("/api/v1/inspections?warning={id}"), Some(DUTY)).await;
        v["inspections"][0]["id"].as_str().map(str::to_string)
    })
    .await;
    app.set_clock("2026-12-02 14:00");
    let (status, body) = app
        .post_json(
            &format!("/api/v1/inspections/{task}/result"),
            Some(DUTY),
            &json!({ "compliant": false, "note": "2#焦炉未延长出焦时间", "time": "2026-12-02 13:30" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A restart the same afternoon makes no second report of the day.
    let dir = app.stop().await;
    let app = start(dir, "2026-12-02 15:00", &smtp).await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(daily_mails(&smtp).len(), 1);
    assert_eq!(
        app.records("report_made")
            .iter()
            .filter(|r| r.to_string().contains(".daily."))
            .count(),
        1
    );

    // Thursday 12:00: the next day's report, with the overdue plant and the problem found.
    app.set_clock("2026-12-03 12:00");
    let mails = upper_gets(&smtp, 2).await;
    let (subject, text) = &mails[1];
    assert_eq!(subject, "【日报】太原市重污染天气橙色预警应急响应日报（2026年12月3日）");
    assert!(
        text.contains("1家逾期未确认收到，1家逾期未确认落实；开展监督帮扶检查1次，发现问题1个"),
        "{text}"
    );
    let problem = format!("1. 迎泽区{}（2026年12月2日 13:30）：2#焦炉未延长出焦时间", coking.name);
    assert!(text.contains(&problem), "{text}");
    let second = format!("{id}.daily.20261203");
    let r = kept(&app, &second).await;
    // The chemical works confirmed receipt but not its measures, which started at 00:00.
    assert_eq!(figures(&r, XIAODIAN), [2, 2, 1, 0, 1, 0, 0]);
    assert_eq!(figures(&r, YINGZE), [1, 0, 0, 1, 0, 1, 1]);
    assert_eq!(r["report"]["total"]["problems"], 1);

    // Both are kept, listed by warning, printable on the dashboard, and as a Word file.
    let (_, list) = app.get(&format!("/api/v1/reports?warning={id}"), Some(DUTY)).await;
    let ids: Vec<&str> = list["reports"]
        .as_array()
        .expect("reports")
        .iter()
        .filter_map(|r| r["report"]["id"].as_str())
        .collect();
    // With the report (信息报送 of the decision, `reportsup`).
    assert_eq!(ids, [first.as_str(), second.as_str(), &format!("{id}.event.01")]);
    let session = login(&app, DUTY).await;
    let (status, html) = page(&app, &format!("/reports/{second}"), &session).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    for want in [
        "<h1 id=\"sheet-h\">太原市重污染天气橙色预警应急响应日报（2026年12月3日）</h1>",
        // The finding opened a recheck (复查), waiting; so did 小店区's chemical works, overdue for 措施已落实.
        "<td>迎泽区</td><td>1</td><td>0</td><td>0</td><td>1</td><td>0</td><td>1</td><td>1</td><td>1</td>",
        "<td>合计</td><td>3</td><td>2</td><td>1</td><td>1</td><td>1</td><td>1</td><td>1</td><td>2</td>",
        "2#焦炉未延长出焦时间",
        "data-print",
        &format!("/api/v1/reports/{second}/docx"),
    ] {
        assert!(html.contains(want), "the report page lacks {want}: {html}");
    }
    let (_, html) = page(&app, &format!("/warnings/{id}"), &session).await;
    assert!(
        html.contains(&format!("href=\"/reports/{first}\"")) && html.contains(&format!("href=\"/reports/{second}\"")),
        "{html}"
    );
    let xml = app.docx_xml(&format!("/api/v1/reports/{second}/docx"), DUTY).await;
    for want in [
        "太原市重污染天气橙色预警应急响应日报（2026年12月3日）",
        "山西省重污染天气应急指挥部办公室：",
        "逾期未收到",
        "迎泽区",
        "2#焦炉未延长出焦时间",
        "太原市重污染天气应急指挥部办公室",
    ] {
        assert!(xml.contains(want), "word/document.xml lacks {want}: {xml}");
    }
    let _ = app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drills_daily_report_is_its_own_and_marked_as_a_drill() {
    let smtp = SmtpServer::start(0, None);
    let app = start(tempfile::TempDir::new().expect("a folder"), "2026-12-02 08:00", &smtp).await;
    let cement = cement();
    let real = app
        .propose(TAIYUAN, &orange_forecast("2026-12-02 07:30", "2026-12-02"), "orange")
        .await;
    app.set_clock("2026-12-02 08:05");
    app.sign(&real, DEPUTY).await;
    ack(&app, &real, &cement.uscc, "received").await;

    // 08:10: a drill's red warning for Taiyuan, signed; nobody acknowledges it.
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

    app.set_clock("2026-12-02 12:00");
    let mails = upper_gets(&smtp, 2).await;
    let drill_mail = mails.iter().find(|(s, _)| s.contains("演练")).expect("the drill's report");
    let real_mail = mails.iter().find(|(s, _)| !s.contains("演练")).expect("the real report");
    assert!(drill_mail.0.starts_with("【演练】"), "{}", drill_mail.0);
    assert!(drill_mail.0.contains("红色预警"), "{}", drill_mail.0);
    assert!(drill_mail.1.starts_with("【演练】"), "{}", drill_mail.1);
    assert!(real_mail.0.contains("橙色预警"), "{}", real_mail.0);

    // The figures are each one's own: the drill's acknowledgement is not the real one's.
    let d = kept(&app, &format!("{drill}.daily.20261202")).await;
    assert_eq!(d["report"]["exercise"], true);
    assert_eq!(figures(&d, XIAODIAN)[..3], [2, 0, 0]);
    let r = kept(&app, &format!("{real}.daily.20261202")).await;
    assert!(r["report"].get("exercise").is_none(), "{r}");
    assert_eq!(figures(&r, XIAODIAN)[..3], [2, 1, 0]);
    // Its page and Word file say 【演练】 too.
    let xml = app.docx_xml(&format!("/api/v1/reports/{drill}.daily.20261202/docx"), DUTY).await;
    assert!(xml.contains("【演练】太原市重污染天气红色预警应急响应日报"), "{xml}");
    let _ = app.stop().await;
}
