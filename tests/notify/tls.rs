//! Webhooks over HTTPS: a private CA and a server certificate made at test time, a receiver that
//! speaks only TLS (rustls) on 127.0.0.1, and the real daemon sending to it.

use std::path::PathBuf;

use chrono::Duration;
use hazeflow::config::WebhookEndpoint;
use hazeflow::notify::outbox::{self, Outcome, Status};
use hazeflow::notify::webhook::signature;
use serde_json::Value;
use tempfile::TempDir;

use crate::helpers::*;

const SECRET: &str = "the-gateway-secret";

fn gateway(url: &str, ca_file: Option<PathBuf>) -> WebhookEndpoint {
    WebhookEndpoint {
        id: "gw".into(),
        url: url.into(),
        events: vec!["proposed".into()],
        regions: vec!["140100".into()],
        format: Default::default(),
        secret_env: None,
        secret_file: None,
        secret: Some(hazeflow::config::Secret::new(SECRET)),
        ca_file,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_to_an_https_gateway_with_a_private_ca_arrives_signed_over_tls() {
    let ca = TestCa::generate();
    let hook = WebhookReceiver::start_tls(&ca).await;
    assert!(hook.url.starts_with("https://127.0.0.1:"), "{}", hook.url);
    let dir = TempDir::new().expect("a temporary folder");
    let ca_file = ca.write_ca_file(dir.path());
    let app = spawn_app_in(dir, clock(), |s| {
        s.webhooks.endpoints.push(gateway(&hook.url, Some(ca_file)));
        s.validate().expect("an https URL with a CA file is valid");
    })
    .await;

    let id = app.propose_orange_for_taiyuan().await;
    // The receiver only ever sees requests that came through a completed TLS handshake.
    let got = eventually("the POST arrives over TLS", || async {
        let g = hook.received();
        (!g.is_empty()).then_some(g)
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(hook.received().len(), 1, "one POST for the one event");
    assert!(hook.handshake_errors().is_empty(), "{:?}", hook.handshake_errors());

    let h = &got[0];
    let sig = h
        .headers
        .get("x-hazeflow-signature")
        .and_then(|v| v.to_str().ok())
        .expect("a signature");
    assert_eq!(sig, signature(SECRET.as_bytes(), &h.body), "HMAC-SHA256 of the body as received");
    assert_ne!(sig, signature(b"another-secret", &h.body));
    let body: Value = serde_json::from_slice(&h.body).expect("a JSON body");
    let mid = h.headers.get("x-hazeflow-message-id").and_then(|v| v.to_str().ok()).unwrap();
    assert_eq!(body["id"], mid);
    assert_eq!(body["event"], "proposed");
    assert_eq!(body["cause"], id.as_str());
    assert_eq!(body["region"], "140100");

    let m = eventually("the message is recorded as sent", || async {
        let m = app.outbox().into_iter().find(|m| m.id.ends_with("-gw-webhook"))?;
        (m.status == Status::Sent).then_some(m)
    })
    .await;
    assert_eq!(m.id, mid);
    let log = app.state.engine.store.read(|r| outbox::attempts(r, &m.id)).unwrap();
    assert_eq!(log.iter().map(|a| a.outcome).collect::<Vec<_>>(), vec![Outcome::Sent]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_ca_file_the_certificate_is_not_trusted_and_the_post_is_retried_then_failed() {
    let ca = TestCa::generate();
    let hook = WebhookReceiver::start_tls(&ca).await;
    let app = spawn_app(|s| {
        s.webhooks.endpoints.push(gateway(&hook.url, None));
        s.webhooks.retry.max_attempts = 2;
        s.validate().unwrap();
    })
    .await;

    app.propose_orange_for_taiyuan().await;
    let first = eventually("the first attempt has failed", || async {
        let m = app.outbox().into_iter().find(|m| m.id.ends_with("-gw-webhook"))?;
        (m.attempts == 1 && m.last_error.is_some()).then_some(m)
    })
    .await;
    let err = first.last_error.clone().unwrap();
    assert!(err.contains(&hook.url) && err.contains("UnknownIssuer"), "{err}");
    assert_eq!(first.status, Status::Pending, "an untrusted certificate is worth another attempt");
    assert!(hook.received().is_empty(), "nothing is sent to a server that is not trusted");
    assert!(!hook.handshake_errors().is_empty(), "the client broke off the handshake");

    // After the backoff: the second (last) attempt fails the same way, and the message has failed.
    app.clock.advance(Duration::minutes(1));
    app.state.after_change();
    let failed = eventually("the message has failed for good", || async {
        let m = app.outbox().into_iter().find(|m| m.id == first.id)?;
        (m.status == Status::Failed).then_some(m)
    })
    .await;
    assert_eq!(failed.attempts, 2);
    let log = app.state.engine.store.read(|r| outbox::attempts(r, &first.id)).unwrap();
    assert_eq!(
        log.iter().map(|a| a.outcome).collect::<Vec<_>>(),
        vec![Outcome::Retry, Outcome::Failed]
    );
    assert!(
        log.iter().all(|a| a.error.as_deref().is_some_and(|e| e.contains("UnknownIssuer"))),
        "{log:?}"
    );
    assert!(hook.received().is_empty());
    assert!(hook.handshake_errors().len() >= 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_over_implicit_tls_with_a_private_ca_reaches_the_smtp_server() {
    let ca = TestCa::generate();
    let smtp = SmtpServer::start(0, None);
    let (port, handshakes) = tls_front(&ca, smtp.port).await;
    let dir = TempDir::new().expect("a temporary folder");
    let ca_file = ca.write_ca_file(dir.path());
    let app = spawn_app_in(dir, clock(), |s| {
        smtp_to(s, port);
        s.mail.smtp.tls = hazeflow::config::SmtpTls::Tls;
        s.mail.smtp.ca_file = Some(ca_file);
        s.validate().unwrap();
    })
    .await;

    app.propose_orange_for_taiyuan().await;
    let got = smtp.wait_for(PROPOSAL_TO.len()).await;
    let mut to: Vec<String> = got.iter().flat_map(|r| r.to.clone()).collect();
    to.sort();
    let mut want: Vec<String> = PROPOSAL_TO.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(to, want);
    // Only the TLS front listens on the configured port: every session came through a handshake.
    assert!(handshakes.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    app.settled(PROPOSAL_TO.len()).await;
    app.stop().await;
}
