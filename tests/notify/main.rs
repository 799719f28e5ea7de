//! Notifications end to end: the real daemon, a real SMTP server and a webhook receiver in this
//! process, a manual clock. Each test reads as a timeline.
//!
//! - `common` (shared with the `daemon` and `acks` tests): the daemon on port 0, settings, HTTP calls,
//!   the wall clock, `eventually`; `helpers`: the test roster, the SMTP server, the webhook receiver.
//! - `email`: a warning proposed and signed over HTTP → each duty-staff recipient gets exactly one
//!   correct email (Chinese subject, stable Message-ID, text and HTML, no injected header); SMTP AUTH;
//!   the default configuration writes `.eml` files.
//! - `resilience`: the SMTP server down for a while; the daemon restarted mid-delivery; a message that
//!   fails for good alerts the duty staff once.
//! - `proposals`: a pending proposal re-proposed by later consultations is told once; a changed one again.
//! - `reload`: the roster and templates reloaded on a running daemon; broken ones refused; a playbooks
//!   folder without notice templates sends the shipped ones.
//! - `webhook`: signed POSTs, retried after a 503.
//! - `failover`: two daemon binaries on one PostgreSQL; the leader killed during a red warning's delivery.
//! - `settings`: the mail settings from the environment, secrets kept secret.
//! - `tls`: webhooks over HTTPS to a receiver with a certificate of a private CA made at test time:
//!   trusted through `ca_file`, refused (retried, then failed) without it.
//!   SMTP over implicit TLS through a TLS front with the same kind of certificate.

#[path = "../common/mod.rs"]
mod common;
mod helpers;
#[path = "../common/smtp.rs"]
mod smtp;

mod crash;
mod email;
mod failover;
mod proposals;
mod reload;
mod resilience;
mod settings;
mod tls;
mod webhook;
