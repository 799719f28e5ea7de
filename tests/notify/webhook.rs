//! Webhooks: a signed JSON POST per message, retried like email.

use chrono::Duration;
use hazeflow::config::WebhookEndpoint;
use hazeflow::notify::outbox::{self, Outcome};
use hazeflow::notify::webhook::signature;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_event_is_one_signed_post_and_a_503_is_retried_after_the_backoff() {
    let hook = WebhookReceiver::start(1).await;
    let app = spawn_app(|s| {
        s.webhooks.endpoints.push(WebhookEndpoint {
            id: "wecom-duty".into(),
            url: hook.url.clone(),
            events: vec!["proposed".into(), "issued".into()],
            regions: vec!["140100".into()],
            format: Default::default(),
            secret_env: Some("HAZEFLOW_WEBHOOK_WECOM_SECRET".into()),
            secret_file: None,
            secret: None,
            ca_file: None,
        });
        s.apply_env(|k| (k == "HAZEFLOW_WEBHOOK_WECOM_SECRET").then(|| "the-wecom-secret".to_string()))
            .unwrap();
        s.validate().unwrap();
    })
    .await;

    // The proposal's POST meets a 503 and waits for its backoff.
    let id = app.propose_orange_for_taiyuan().await;
    eventually("the first POST has failed", || async {
        let m = app.outbox().into_iter().find(|m| m.id.ends_with("-wecom-duty-webhook"))?;
        (m.attempts == 1 && m.last_error.is_some()).then_some(())
    })
    .await;
    assert!(hook.received().is_empty());
    app.clock.advance(Duration::minutes(1));
    app.sign(&id).await;
    let got = eventually("two POSTs are accepted", || async {
        let g = hook.received();
        (g.len() >= 2).then_some(g)
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(hook.received().len(), 2, "one POST per event");

    let mut events = Vec::new();
    for h in &got {
        let sig = h
            .headers
            .get("x-hazeflow-signature")
            .and_then(|v| v.to_str().ok())
            .expect("a signature");
        assert_eq!(
            sig,
            signature(b"the-wecom-secret", &h.body),
            "the signature is HMAC-SHA256 of the body"
        );
        let body: Value = serde_json::from_slice(&h.body).unwrap();
        let mid = h.headers.get("x-hazeflow-message-id").and_then(|v| v.to_str().ok()).unwrap();
        assert_eq!(body["id"], mid);
        assert_eq!(body["cause"], id.as_str());
        assert!(
            body["data"]["recipients"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["phone"] == "0351-0000101"),
            "{body}"
        );
        events.push(body["event"].as_str().unwrap().to_string());
        if body["event"] == "issued" {
            assert_eq!(body["subject"], "【橙色预警】太原市重污染天气橙色预警（Ⅱ级）启动通知");
        }
    }
    events.sort();
    assert_eq!(events, ["issued", "proposed"]);
    let first = app
        .outbox()
        .into_iter()
        .find(|m| m.data["event"] == "proposed" && m.id.ends_with("-webhook"))
        .unwrap();
    let log = app.state.engine.store.read(|r| outbox::attempts(r, &first.id)).unwrap();
    assert_eq!(
        log.iter().map(|a| a.outcome).collect::<Vec<_>>(),
        vec![Outcome::Retry, Outcome::Sent]
    );
    assert!(log[0].error.as_deref().is_some_and(|e| e.contains("HTTP 503")));
    app.stop().await;
}
