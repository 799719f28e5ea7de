//! Each authority in its own name (issue 12 item 3): a Taiyuan warning's sign-off request, its notice to an
//! enterprise and its public CAP message speak for 太原市重污染天气应急指挥部办公室 and ask its 分管副市长 to
//! sign, never the province (playbooks/taiyuan.yaml `issuer` and `roles`).

use std::collections::BTreeMap;

use crate::helpers::*;

const TAIYUAN_OFFICE: &str = "太原市重污染天气应急指挥部办公室";

/// The delivered `.eml` file of a message: its headers and plain-text body.
async fn eml(app: &TestApp, id: &str) -> (BTreeMap<String, String>, String) {
    let path = app
        .state
        .settings
        .mail
        .dir_in(&app.state.settings.data_dir)
        .join(format!("{id}.eml"));
    let bytes = eventually(&format!("{} is delivered", path.display()), || async { std::fs::read(&path).ok() }).await;
    let m = mail_parser::MessageParser::default().parse(&bytes).expect("a parsable message");
    let from = m.from().and_then(|a| a.first()).expect("a From");
    let headers = BTreeMap::from([
        ("from_name".to_string(), from.name().unwrap_or_default().to_string()),
        ("subject".to_string(), m.subject().unwrap_or_default().to_string()),
    ]);
    let text = m.body_text(0).map(|t| t.replace("\r\n", "\n")).unwrap_or_default();
    (headers, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taiyuan_warning_is_in_taiyuans_name_from_the_sign_off_request_to_the_enterprise_notice_and_cap() {
    let app = spawn_app("2026-12-02 08:00").await;
    let id = app
        .propose(TAIYUAN, &orange_forecast("2026-12-02 07:30", "2026-12-02"), "orange")
        .await;

    // The sign-off request to Taiyuan's deputy mayor: his title, the city's office, nothing of the province.
    let request = eventually("the sign-off request is queued", || async {
        app.sent("warning_proposed")
            .into_iter()
            .find(|m| m.recipient.key == "ty-zhao-jianguo")
    })
    .await;
    let (headers, text) = eml(&app, &request.id).await;
    assert!(text.contains("按预案规定，该级别预警须由分管副市长签发。"), "{text}");
    assert!(text.contains(TAIYUAN_OFFICE), "signed by the city's office: {text}");
    assert!(!text.contains("副省长") && !text.contains("山西省重污染天气应急指挥部"), "{text}");
    assert_eq!(headers["from_name"], TAIYUAN_OFFICE, "the mail comes from the city's office");

    // Signed → each Taiyuan enterprise's notice is in the city's name.
    app.set_clock("2026-12-02 08:05");
    app.sign(&id, DEPUTY).await;
    let active = app.assignments(&id, Some("active")).await;
    let firms = active.iter().filter(|a| a["party"]["type"] == "enterprise").count();
    assert!(firms > 0);
    for msg in app.wait_sent("assignment_issued", firms).await {
        let (headers, text) = eml(&app, &msg.id).await;
        assert!(headers["subject"].contains("太原市"), "{headers:?}");
        assert!(text.trim_end().ends_with("请勿直接回复。"), "{text}");
        assert!(
            text.contains(&format!("\n{TAIYUAN_OFFICE}\n")),
            "the notice is signed by the city: {text}"
        );
        assert!(!text.contains("山西省"), "{text}");
        assert_eq!(headers["from_name"], TAIYUAN_OFFICE);
    }

    // The public: the page names the issuer, the CAP message is the city's, in both languages, valid CAP 1.2.
    let (status, page) = app.get_text("/public").await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert!(page.contains(&format!("发布单位：{TAIYUAN_OFFICE}")), "{page}");
    let (_, feed) = app.get_text("/public/feed.atom").await;
    assert!(feed.contains(&format!("<author>\n      <name>{TAIYUAN_OFFICE}</name>")), "{feed}");
    let cap_path = feed
        .split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .find_map(|href| href.find("/public/cap/").map(|at| href[at..].to_string()))
        .expect("a link to the CAP message");
    let (status, xml) = app.get_text(&cap_path).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{xml}");
    let dir = tempfile::TempDir::new().expect("a folder");
    validate_cap(dir.path(), &id, &xml);
    assert!(xml.contains("<sender>taiyuan@hazeflow.example.cn</sender>"), "{xml}");
    assert!(xml.contains(&format!("<senderName>{TAIYUAN_OFFICE}</senderName>")), "{xml}");
    assert!(
        xml.contains("<senderName>Taiyuan Municipal Heavy Pollution Weather Emergency Command Office</senderName>"),
        "{xml}"
    );
    assert!(!xml.contains("山西省") && !xml.contains("gov.cn"), "{xml}");
    app.stop().await;
}
