//! Notification channels behind one trait: the delivery worker (`deliver.rs`) sends every message
//! through the [`Sender`] of its [`Channel`] and knows nothing else about email or webhooks.
//!
//! In: the settings ([`from_settings`], the one place that lists the channels). Out: each channel's
//! sender with its [`Limits`] (rate, concurrency, retries: the worker gives each channel its own
//! lane).
//!
//! Rendering stays with the worker: the templates give every channel the same [`Rendered`] subject,
//! text and HTML, and a template that does not render is a retry whatever the channel. A sender
//! shapes the rendered text for its transport ([`Sender::prepare`]; `email.rs`: a MIME message,
//! `webhook.rs`: a signed JSON body) and sends what it prepared ([`Sender::send`]); its answer
//! (`250 …`, `HTTP 200`, the file written) goes into the delivery log, its [`NotifyError`] says
//! whether another attempt may help. The two steps are apart so that the worker renders and prepares
//! a message before it takes one of the lane's slots: a slot (the bound on what a crash sends twice)
//! is held for the transport's exchange and the commit of its outcome only, not for CPU work.
//!
//! Adding a channel (SMS) takes:
//!
//! 1. one new file, `src/notify/sms.rs`, with a type that implements [`Sender`] (built from its
//!    settings; `prepare` shapes the text, `send` as a plain `async fn`);
//! 2. one [`Channel`] variant, `Sms` (in `store/events.rs`, serialized `sms`), with its name in
//!    [`Channel::as_str`] and its place in [`Channel::ALL`] (the metrics list channels from there);
//! 3. its settings, an `sms:` section in `config.rs` with `rate_per_sec`, `concurrency` and `retry`
//!    like `mail:` and `webhooks:`;
//! 4. its line in [`from_settings`] below.
//!
//! The worker, its lanes, retries, crash guarantees and delivery log need no change. Who receives an
//! SMS (the roster's addresses, the stage's messages of channel `sms`) is the stage's business, not the
//! channel's.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;

use super::NotifyError;
use super::outbox::{Channel, OutboxMessage};
use super::templates::Rendered;
use super::{email, webhook};
use crate::config::{RetrySettings, Settings};

/// A way to send a rendered message: email, webhooks (SMS later).
///
/// Implement this; the worker holds senders as [`AnySender`], which every `Sender` is.
pub trait Sender: Send + Sync + 'static {
    /// The channel it sends: the worker gives it the messages of that channel.
    fn channel(&self) -> Channel;

    /// Where messages go, for logs (`smtp://host:port`, `.eml files in DIR`).
    fn describe(&self) -> String;

    /// What [`Sender::prepare`] makes of a rendered message for this transport.
    type Ready: Send + Sync + 'static;

    /// Shapes a rendered message for the transport (no I/O): byte for byte the same on every
    /// attempt (receivers recognise a resend by the message id). An error here (an address that is
    /// no address) is the message's outcome, as if the transport had refused it.
    fn prepare(&self, msg: &OutboxMessage, rendered: &Rendered) -> Result<Self::Ready, NotifyError>;

    /// Sends what [`Sender::prepare`] made of the message. The answer is the receiver's reply,
    /// recorded in the delivery log.
    fn send(&self, msg: &OutboxMessage, ready: &Self::Ready) -> impl Future<Output = Result<String, NotifyError>> + Send;
}

/// A prepared message of any channel, as the worker holds it between [`AnySender::prepare`] and
/// [`AnySender::send`].
pub type Ready = Box<dyn Any + Send + Sync>;

/// A send in progress, boxed so that senders of different types sit in one map.
pub type Sending<'a> = Pin<Box<dyn Future<Output = Result<String, NotifyError>> + Send + 'a>>;

/// A [`Sender`] as a trait object (what `async fn` in a trait cannot be by itself); implemented for
/// every `Sender`, never by hand.
pub trait AnySender: Send + Sync + 'static {
    /// [`Sender::channel`].
    fn channel(&self) -> Channel;
    /// [`Sender::describe`].
    fn describe(&self) -> String;
    /// [`Sender::prepare`].
    fn prepare(&self, msg: &OutboxMessage, rendered: &Rendered) -> Result<Ready, NotifyError>;
    /// [`Sender::send`], with what this sender's `prepare` made.
    fn send<'a>(&'a self, msg: &'a OutboxMessage, ready: &'a Ready) -> Sending<'a>;
}

impl<S: Sender> AnySender for S {
    fn channel(&self) -> Channel {
        Sender::channel(self)
    }

    fn describe(&self) -> String {
        Sender::describe(self)
    }

    fn prepare(&self, msg: &OutboxMessage, rendered: &Rendered) -> Result<Ready, NotifyError> {
        Ok(Box::new(Sender::prepare(self, msg, rendered)?))
    }

    fn send<'a>(&'a self, msg: &'a OutboxMessage, ready: &'a Ready) -> Sending<'a> {
        match ready.downcast_ref::<S::Ready>() {
            Some(ready) => Box::pin(Sender::send(self, msg, ready)),
            // Not reached: the worker prepares and sends a message with the sender of its channel.
            None => Box::pin(std::future::ready(Err(NotifyError::permanent(format!(
                "the {} channel was given a message prepared for another",
                Sender::channel(self).as_str()
            ))))),
        }
    }
}

/// A channel's limits, from its settings: the worker's lane for it.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most messages per second handed to the sender (0: no limit).
    pub rate_per_sec: f64,
    /// Messages sent at once; also the most a kill -9 can send twice.
    pub concurrency: usize,
    /// Retries with exponential backoff.
    pub retry: RetrySettings,
}

/// The channels the daemon sends through, each with its limits, from the settings (`mail:`,
/// `webhooks:`). Fails with the first setting that does not work (the sender's address, a CA file).
pub fn from_settings(settings: &Settings) -> anyhow::Result<Vec<(Box<dyn AnySender>, Limits)>> {
    let (m, w) = (&settings.mail, &settings.webhooks);
    Ok(vec![
        (
            Box::new(email::Email::from_settings(m, &settings.data_dir)?),
            Limits {
                rate_per_sec: m.rate_per_sec,
                concurrency: m.concurrency,
                retry: m.retry.clone(),
            },
        ),
        (
            Box::new(webhook::Webhooks::from_settings(w)?),
            Limits {
                rate_per_sec: w.rate_per_sec,
                concurrency: w.concurrency,
                retry: w.retry.clone(),
            },
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_YAML;

    #[test]
    fn the_settings_give_one_sender_per_channel_with_that_channels_limits() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Settings::parse("default", DEFAULT_YAML).unwrap();
        s.data_dir = dir.path().to_path_buf();
        let channels = from_settings(&s).unwrap();
        let listed: Vec<Channel> = channels.iter().map(|(c, _)| c.channel()).collect();
        assert_eq!(listed, Channel::ALL);
        let (email, mail) = &channels[0];
        assert_eq!(mail.concurrency, s.mail.concurrency);
        assert_eq!(mail.retry.max_attempts, s.mail.retry.max_attempts);
        assert!(email.describe().starts_with(".eml files in "), "{}", email.describe());
        let (_, hooks) = &channels[1];
        assert_eq!(hooks.concurrency, s.webhooks.concurrency);
        assert_eq!(hooks.rate_per_sec, s.webhooks.rate_per_sec);
    }

    #[test]
    fn a_sender_address_that_is_no_mailbox_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Settings::parse("default", DEFAULT_YAML).unwrap();
        s.data_dir = dir.path().to_path_buf();
        s.mail.from = "nobody".into();
        let e = from_settings(&s).err().unwrap();
        assert!(e.to_string().starts_with("mail.from: \"nobody\""), "{e}");
    }
}
