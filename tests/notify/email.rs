//! Email: who gets what, and what it looks like on the wire.

use std::collections::BTreeMap;

use hazeflow::notify::outbox;

use crate::helpers::*;

fn by_recipient(received: &[Received]) -> BTreeMap<String, Vec<Received>> {
    let mut out: BTreeMap<String, Vec<Received>> = BTreeMap::new();
    for r in received {
        for to in &r.to {
            out.entry(to.clone()).or_default().push(r.clone());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposal_and_its_sign_off_reach_each_duty_officer_and_the_signer_exactly_once() {
    let smtp = SmtpServer::start(0, None);
    let app = spawn_app(|s| smtp_to(s, smtp.port)).await;

    // 15:00 a forecast arrives → the consultation proposes orange for Taiyuan → duty staff and the
    // deputy head (the signer) are told.
    let id = app.propose_orange_for_taiyuan().await;
    let got = smtp.wait_for(PROPOSAL_TO.len()).await;
    let per = by_recipient(&got);
    assert_eq!(
        per.keys().map(String::as_str).collect::<Vec<_>>().len(),
        PROPOSAL_TO.len(),
        "{:?}",
        per.keys()
    );
    for to in PROPOSAL_TO {
        let mails = &per[*to];
        assert_eq!(mails.len(), 1, "{to} got {} emails", mails.len());
        let m = mails[0].parsed();
        assert_eq!(m.subject(), Some("【待签发】太原市重污染天气橙色预警（Ⅱ级）发布建议"));
    }

    // The deputy head signs → the duty staff on shift get the issue notice; the night shift does not.
    app.sign(&id).await;
    // … and the province's command office the issue report (信息报送).
    let got = smtp.wait_for(PROPOSAL_TO.len() + ISSUE_TO.len() + UPPER_TO.len()).await;
    let all = app.settled(PROPOSAL_TO.len() + ISSUE_TO.len() + UPPER_TO.len()).await;
    let issue: Vec<&Received> = got
        .iter()
        .filter(|r| r.parsed().subject().is_some_and(|s| s.contains("启动通知")))
        .collect();
    assert_eq!(issue.len(), ISSUE_TO.len());
    let mut to: Vec<&str> = issue.iter().flat_map(|r| r.to.iter().map(String::as_str)).collect();
    to.sort_unstable();
    let mut want = ISSUE_TO.to_vec();
    want.sort_unstable();
    assert_eq!(to, want);

    for r in &issue {
        let m = r.parsed();
        assert_eq!(m.subject(), Some("【橙色预警】太原市重污染天气橙色预警（Ⅱ级）启动通知"));
        // The Message-ID is the stable one of its outbox message.
        let mid = m.message_id().expect("a Message-ID").to_string();
        let msg = all
            .iter()
            .find(|x| format!("{}@hazeflow", x.id) == mid)
            .unwrap_or_else(|| panic!("no outbox message for {mid}"));
        assert_eq!(msg.recipient.address, r.to[0]);
        assert!(msg.id.ends_with("-email") && msg.cause == id);
        // Plain text and HTML, both in Chinese.
        let raw = String::from_utf8_lossy(&r.data);
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert_eq!(m.text_body_count(), 1);
        assert_eq!(m.html_body_count(), 1);
        let text = m.body_text(0).expect("a text part");
        assert!(
            text.contains("太原市重污染天气橙色预警已于") && text.contains("签发：李副市长"),
            "{text}"
        );
        let html = m.body_html(0).expect("an HTML part");
        assert!(html.contains("<strong>橙色预警</strong>"), "{html}");
        // One attempt each, logged as sent with the server's answer.
        let log = app.state.engine.store.read(|rd| outbox::attempts(rd, &msg.id)).unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].outcome, outbox::Outcome::Sent);
        assert!(log[0].response.as_deref().is_some_and(|r| r.starts_with("250")), "{:?}", log[0]);
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_with_line_breaks_and_a_script_cannot_add_headers_and_is_escaped_in_html() {
    let smtp = SmtpServer::start(0, None);
    let app = spawn_app(|s| smtp_to(s, smtp.port)).await;
    app.propose_orange_for_taiyuan().await;
    let got = smtp.wait_for(PROPOSAL_TO.len()).await;
    let evil = got.iter().find(|r| r.to == ["mallory@ty.example.cn"]).expect("Mallory's email");
    let m = evil.parsed();
    let raw = String::from_utf8_lossy(&evil.data);
    let headers = raw.split("\r\n\r\n").next().unwrap_or_default();
    // No header came out of the name: one To, no Bcc, no X-Injected, one envelope recipient.
    assert!(m.header("Bcc").is_none() && m.header("X-Injected").is_none(), "{headers}");
    assert_eq!(
        headers.lines().filter(|l| l.to_ascii_lowercase().starts_with("to:")).count(),
        1,
        "{headers}"
    );
    assert_eq!(evil.to, ["mallory@ty.example.cn"]);
    let to = m.to().and_then(|a| a.first()).expect("a To address");
    assert_eq!(to.address(), Some("mallory@ty.example.cn"));
    assert!(
        to.name().is_some_and(|n| n.starts_with("Mallory") && !n.contains('\n')),
        "{:?}",
        to.name()
    );
    // In the HTML the script is text; in the plain text it is just characters.
    let html = m.body_html(0).expect("an HTML part");
    assert!(!html.contains("<script>") && html.contains("&lt;script&gt;alert(1)&lt;"), "{html}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_authentication_uses_the_configured_user_and_the_password_from_the_environment() {
    let smtp = SmtpServer::start(0, Some(("hazeflow@ty.example.cn", "s3cret-from-env")));
    let app = spawn_app(|s| {
        smtp_to(s, smtp.port);
        s.apply_env(|k| match k {
            "HAZEFLOW_SMTP_USER" => Some("hazeflow@ty.example.cn".into()),
            "HAZEFLOW_SMTP_PASSWORD" => Some("s3cret-from-env".into()),
            _ => None,
        })
        .unwrap();
    })
    .await;
    app.propose_orange_for_taiyuan().await;
    let got = smtp.wait_for(PROPOSAL_TO.len()).await;
    assert!(
        got.iter()
            .all(|r| r.auth == Some(("hazeflow@ty.example.cn".into(), "s3cret-from-env".into())))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_default_configuration_each_message_is_an_eml_file_named_after_its_id() {
    // No SMTP server configured (the embedded default): .eml files under {data_dir}/mail.
    let app = spawn_app(|_| {}).await;
    let id = app.propose_orange_for_taiyuan().await;
    app.sign(&id).await;
    let all = app.settled(PROPOSAL_TO.len() + ISSUE_TO.len() + UPPER_TO.len()).await;
    let dir = app.state.settings.data_dir.join("mail");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    files.sort();
    let mut want: Vec<String> = all.iter().map(|m| format!("{}.eml", m.id)).collect();
    want.sort();
    assert_eq!(files, want, "no temporary files left, one file per message");
    let bytes = std::fs::read(dir.join(&want[0])).unwrap();
    let m = mail_parser::MessageParser::default().parse(&bytes).unwrap();
    assert!(
        m.subject().is_some_and(|s| s.contains("太原市重污染天气橙色预警")),
        "{:?}",
        m.subject()
    );
    assert_eq!(
        m.message_id().map(str::to_string),
        Some(format!("{}@hazeflow", want[0].trim_end_matches(".eml")))
    );
    app.stop().await;
}
