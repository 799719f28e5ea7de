//! Webhooks: a signed JSON POST per message to a configured endpoint (SMS gateways, 企业微信/钉钉
//! group robots). [`Webhooks`] is the channel's [`Sender`] (`channel.rs`).
//!
//! In: an outbox message of channel `webhook` (its recipient is the endpoint id) and its rendered
//! text. Out: `POST url` with `Content-Type: application/json`, `X-Hazeflow-Message-Id: {id}` and
//! `X-Hazeflow-Signature: sha256=<hex HMAC-SHA256 of the body with the endpoint's secret>`; the body
//! is the same bytes on every attempt, so a receiver can drop a repeat by its message id.
//!
//! Body (`format: hazeflow`): `{"id", "event", "cause", "created_at", "region", "subject", "text",
//! "data"}` where `data.recipients` lists the people the event reaches (name, role, email, phone) for an
//! SMS gateway to fan out. `format: robot`: `{"msgtype": "text", "text": {"content": subject + text}}`.
//!
//! `https://` endpoints are reached over TLS (rustls); the server certificate must chain to a Mozilla
//! root (webpki-roots, built in) or to a certificate of the endpoint's `ca_file`. A connection that
//! fails, an untrusted certificate included, is an attempt worth retrying, logged with its cause.
//!
//! 2xx is delivered; 408, 429, 5xx and network errors are worth another attempt; other 4xx are not.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::NotifyError;
use super::channel::Sender;
use super::outbox::{Channel, OutboxMessage};
use super::templates::Rendered;
use crate::config::{Secret, WebhookFormat, WebhookSettings, error_chain, read_ca_file};

/// `sha256=<hex HMAC-SHA256 of body>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

struct Endpoint {
    /// The shared client, or one that also trusts the endpoint's `ca_file`.
    client: reqwest::Client,
    url: String,
    secret: Secret,
    format: WebhookFormat,
}

/// The configured endpoints and their HTTP clients.
pub struct Webhooks {
    endpoints: BTreeMap<String, Endpoint>,
}

impl Webhooks {
    /// From the settings (validated already). `https://` endpoints are checked against the Mozilla
    /// root certificates (webpki-roots, built in) and the endpoint's `ca_file`, if any.
    pub fn from_settings(w: &WebhookSettings) -> anyhow::Result<Webhooks> {
        let builder = || {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(w.timeout_secs))
                .user_agent(concat!("hazeflow/", env!("CARGO_PKG_VERSION")))
        };
        let shared = builder().build().context("webhooks: cannot build the HTTP client")?;
        let mut endpoints = BTreeMap::new();
        for (i, e) in w.endpoints.iter().enumerate() {
            let client = match &e.ca_file {
                None => shared.clone(),
                Some(f) => {
                    let field = format!("webhooks.endpoints[{i}].ca_file");
                    let mut b = builder();
                    for c in read_ca_file(f, &field)? {
                        b = b.add_root_certificate(c);
                    }
                    b.build().with_context(|| format!("{field}: cannot build the HTTP client"))?
                }
            };
            let ep = Endpoint {
                client,
                url: e.url.clone(),
                secret: e.secret.clone().unwrap_or_default(),
                format: e.format,
            };
            endpoints.insert(e.id.clone(), ep);
        }
        Ok(Webhooks { endpoints })
    }

    /// The JSON body of a message for its endpoint.
    pub fn body(&self, msg: &OutboxMessage, r: &Rendered) -> Result<Vec<u8>, NotifyError> {
        let ep = self.endpoint(msg)?;
        let v = match ep.format {
            WebhookFormat::Hazeflow => json!({
                "id": msg.id,
                "event": msg.data.get("event").cloned().unwrap_or(Value::Null),
                "cause": msg.cause,
                "created_at": msg.created_at,
                "region": msg.region,
                "subject": r.subject,
                "text": r.text,
                "data": msg.data,
            }),
            WebhookFormat::Robot => json!({ "msgtype": "text", "text": { "content": format!("{}\n{}", r.subject, r.text.trim_end()) } }),
        };
        serde_json::to_vec(&v).map_err(|e| NotifyError::permanent(format!("cannot encode the body: {e}")))
    }

    fn endpoint(&self, msg: &OutboxMessage) -> Result<&Endpoint, NotifyError> {
        self.endpoints
            .get(&msg.recipient.address)
            .ok_or_else(|| NotifyError::permanent(format!("webhook endpoint \"{}\" is no longer configured", msg.recipient.address)))
    }

    /// The body of a message for its endpoint and its signature.
    pub fn signed(&self, msg: &OutboxMessage, r: &Rendered) -> Result<Signed, NotifyError> {
        let ep = self.endpoint(msg)?;
        let body = self.body(msg, r)?;
        let signature = signature(ep.secret.expose().as_bytes(), &body);
        Ok(Signed { body, signature })
    }

    /// POSTs a signed body to the message's endpoint; the answer is `HTTP {status}`.
    async fn post_signed(&self, msg: &OutboxMessage, signed: &Signed) -> Result<String, NotifyError> {
        let ep = self.endpoint(msg)?;
        let (body, sig) = (signed.body.clone(), signed.signature.clone());
        let resp = ep
            .client
            .post(&ep.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Hazeflow-Message-Id", &msg.id)
            .header("X-Hazeflow-Signature", sig)
            .body(body)
            .send()
            .await
            // The causes say why (refused, timed out, `invalid peer certificate: UnknownIssuer`).
            .map_err(|e| NotifyError::retryable(format!("POST {}: {}", ep.url, error_chain(&e))))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(format!("HTTP {}", status.as_u16()));
        }
        let text: String = resp.text().await.unwrap_or_default().chars().take(200).collect();
        let msg = format!("POST {}: HTTP {} {}", ep.url, status.as_u16(), text.trim());
        if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
            Err(NotifyError::retryable(msg))
        } else {
            Err(NotifyError::permanent(msg))
        }
    }
}

/// A webhook's JSON body and its `X-Hazeflow-Signature`.
pub struct Signed {
    body: Vec<u8>,
    signature: String,
}

impl Sender for Webhooks {
    fn channel(&self) -> Channel {
        Channel::Webhook
    }

    /// The endpoints' ids (not their URLs: a robot's URL carries its access token).
    fn describe(&self) -> String {
        if self.endpoints.is_empty() {
            return "no endpoints configured".to_string();
        }
        let ids: Vec<&str> = self.endpoints.keys().map(String::as_str).collect();
        format!("endpoints {}", ids.join(", "))
    }

    type Ready = Signed;

    fn prepare(&self, msg: &OutboxMessage, r: &Rendered) -> Result<Signed, NotifyError> {
        self.signed(msg, r)
    }

    async fn send(&self, msg: &OutboxMessage, ready: &Signed) -> Result<String, NotifyError> {
        self.post_signed(msg, ready).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body_in_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
