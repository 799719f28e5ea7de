//! The delivery worker: takes due messages from the outbox, renders them, sends them through their
//! channel's [`Sender`](super::channel::Sender), and records every attempt.
//!
//! The worker holds its channels in a map keyed by [`Channel`], each with its own lane (slots, pacing,
//! retry policy: [`Limits`], from the channel's settings), and dispatches through the trait only;
//! nothing here names email or webhooks. What a new channel (SMS) takes is in `channel.rs`.
//!
//! In: the outbox (through the store), the clock (the engine's, so tests can use a manual
//! one), the engine's `changed` notification as a wake-up besides a short poll. Out: emails and webhook POSTs, entries in
//! the delivery log, and for a message that finally fails, one `delivery_failed` alert to the duty
//! staff of its region (never an alert about an alert).
//!
//! # Guarantees, and the window that remains
//!
//! - **No two workers on one message.** A message is claimed (due index → in-flight index, one more
//!   attempt) in a write transaction before it is sent; only claimed messages are sent. The store
//!   lets one process open the database.
//! - **A message recorded as sent is never sent again**, after any restart: it is in no index.
//! - **Retries** with exponential backoff (`mail.retry`, `webhooks.retry`: base, factor, cap, attempts),
//!   rate limits per transport (`rate_per_sec`), bounded concurrency.
//! - **At-least-once, with stable ids.** Between the server's "250 OK" and the commit that records it
//!   there is a window (milliseconds: one group commit). If the process dies in it, the message is
//!   still in flight at the next start; it is then logged as `interrupted` and sent again, byte for
//!   byte the same, with the same `Message-ID: <{id}@hazeflow>` (webhooks: `X-Hazeflow-Message-Id`),
//!   so the receiver can recognise the repeat. A send keeps its lane's slot until its outcome is
//!   committed (outcomes gathered into one small job per commit), so at most the lane's concurrency
//!   (`mail.concurrency`, `webhooks.concurrency`) of messages are ever accepted but unrecorded: a
//!   kill -9 sends at most that many twice. The SMTP sessions are a bound of their own
//!   (`mail.smtp.pool_size`, `smtp.rs`): with more slots than sessions, the sessions keep sending
//!   while the outcomes of the messages before commit. A clean shutdown (SIGTERM) does not open the window:
//!   the worker stops claiming, lets the sends in progress finish and records them, and puts back
//!   claimed messages it has not started.
//!
//! # Throughput
//!
//! Claims run ahead of the sends (16 times the lanes' concurrency); the claimed messages are read,
//! rendered and prepared for their channel ([`Delivery::prepare`]: the MIME message, the signed
//! body) on a blocking thread before they take a slot, so a slot is held for the exchange and the
//! commit of its outcome only, and the runtime's threads stay free for the sends' I/O. Outcomes go
//! to one recorder that writes whatever has gathered in one job, waiting briefly for the sends in
//! progress, so a store commit (one fsync) carries many messages either way.
//! `tests/bench/mail_bench.rs` and `tests/bench/bench_e2e.rs` measure it against postfix's
//! `smtp-source`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::{Mutex, Notify, Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::NotifyError;
use super::channel::{AnySender, Limits, Ready};
use super::outbox::{self, AttemptResult, Channel, OutboxMessage};
use super::stage::{EventNotice, NotifyStage, local};
use crate::clock::Clock;
use crate::config::RetrySettings;
use crate::domain::region::RegionCode;
use crate::store::events::{Event, NotifyDeliveryFailed};
use crate::store::{RecordBody, Store};

/// How often the worker looks for due messages when nothing woke it.
const POLL: Duration = Duration::from_millis(250);

/// The longest the recorder waits for sends in progress before it writes the outcomes it has.
const LINGER: Duration = Duration::from_millis(2);

/// Spaces sends out to at most `rate` per second.
struct Pacer {
    interval: Option<Duration>,
    next: Mutex<Instant>,
}

impl Pacer {
    fn new(rate_per_sec: f64) -> Pacer {
        let interval = (rate_per_sec > 0.0).then(|| Duration::from_secs_f64(1.0 / rate_per_sec));
        Pacer {
            interval,
            next: Mutex::new(Instant::now()),
        }
    }

    async fn wait(&self) {
        let Some(iv) = self.interval else { return };
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(Instant::now());
            *next = at + iv;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// One channel: its sender and its limits.
struct Lane {
    sender: Box<dyn AnySender>,
    slots: Semaphore,
    pacer: Pacer,
    retry: RetrySettings,
    concurrency: usize,
}

/// A message rendered and prepared for its channel: the rendered subject (when rendering worked) and
/// what the channel sends, or why it cannot be sent.
pub type Prepared = (Option<String>, Result<Ready, NotifyError>);

/// Everything the worker needs to send; built by [`super::build`].
pub struct Delivery {
    pub(crate) stage: Arc<NotifyStage>,
    lanes: HashMap<Channel, Lane>,
    /// Sends holding a slot whose outcome has not reached the recorder yet: the recorder waits for
    /// them (briefly) so that one commit records a whole round of slots.
    sending: AtomicUsize,
}

impl Delivery {
    /// The worker's channels ([`super::channel::from_settings`]): one lane each. Fails when two
    /// senders claim one channel, or a channel has none.
    pub(crate) fn new(stage: Arc<NotifyStage>, channels: Vec<(Box<dyn AnySender>, Limits)>) -> anyhow::Result<Delivery> {
        let mut lanes = HashMap::new();
        for (sender, limits) in channels {
            let channel = sender.channel();
            let lane = Lane {
                sender,
                slots: Semaphore::new(limits.concurrency),
                pacer: Pacer::new(limits.rate_per_sec),
                retry: limits.retry,
                concurrency: limits.concurrency,
            };
            if lanes.insert(channel, lane).is_some() {
                anyhow::bail!("two senders for the {} channel", channel.as_str());
            }
        }
        if let Some(c) = Channel::ALL.into_iter().find(|c| !lanes.contains_key(c)) {
            anyhow::bail!("no sender for the {} channel", c.as_str());
        }
        Ok(Delivery {
            stage,
            lanes,
            sending: AtomicUsize::new(0),
        })
    }

    /// Where each channel's messages go, for logs (`email: smtp://host:port; webhook: …`).
    pub fn describe(&self) -> String {
        Channel::ALL
            .into_iter()
            .filter_map(|c| self.lanes.get(&c).map(|l| format!("{}: {}", c.as_str(), l.sender.describe())))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Renders one message and prepares it for its channel ([`AnySender::prepare`]): the rendered
    /// subject (when rendering worked) and what the channel sends. CPU only: the worker does it
    /// before the message takes a slot of its lane.
    pub fn prepare(&self, msg: &mut OutboxMessage) -> Prepared {
        // The templates read the data where it is (shared for the render, then given back).
        let data = Arc::new(std::mem::take(&mut msg.data));
        let rendered = self.stage.templates().render_shared(&msg.template, &data);
        msg.data = Arc::try_unwrap(data).unwrap_or_else(|shared| (*shared).clone());
        let r = match rendered {
            Ok(r) => r,
            // A broken or missing template may be fixed by an operator: worth retrying.
            Err(e) => return (None, Err(NotifyError::retryable(e))),
        };
        let ready = match self.lanes.get(&msg.channel) {
            Some(lane) => lane.sender.prepare(msg, &r),
            None => Err(NotifyError::permanent(format!(
                "no sender for the {} channel",
                msg.channel.as_str()
            ))),
        };
        (Some(r.subject), ready)
    }
}

/// Runs the worker until `cancel` fires (the daemon's task).
///
/// `changed`: the engine's "state changed" notification, a wake-up besides the poll.
pub async fn run(delivery: Arc<Delivery>, store: Store, clock: Clock, changed: Arc<Notify>, cancel: CancellationToken) {
    let wake = Arc::new(Notify::new());
    // Forward the engine's change notifications (they wake only current waiters).
    let fwd = {
        let (wake, cancel) = (wake.clone(), cancel.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = changed.notified() => wake.notify_one(),
                }
            }
        })
    };
    run_loop(delivery, store, clock, wake, cancel).await;
    let _ = fwd.await;
}

/// The worker over a store and a clock; `wake` says "look now". Used by [`run`] and the benchmark.
pub async fn run_loop(d: Arc<Delivery>, store: Store, clock: Clock, wake: Arc<Notify>, cancel: CancellationToken) {
    let now = clock.now();
    match store.write(move |tx| outbox::recover_interrupted(tx, now)).await {
        Ok(ids) if !ids.is_empty() => tracing::warn!(
            count = ids.len(),
            "messages were being sent when the process stopped; sending them again with the same ids"
        ),
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "cannot recover interrupted messages"),
    }
    tracing::info!(channels = %d.describe(), "delivery worker started");
    // Claims run ahead of the sends (which the lanes' semaphores bound): every store commit then
    // carries many claims and outcomes, so the fsync per commit is not paid per message. A claim
    // commits as often as an outcome while the writer is busy with outcomes, so claims are large
    // (a claimed message that was not started is sent once after a crash, never twice).
    let capacity = (16 * d.lanes.values().map(|l| l.concurrency).sum::<usize>()).max(64);
    let mut inflight: JoinSet<()> = JoinSet::new();
    // Outcomes go to one recorder, which writes whatever has gathered in one job: one commit
    // records many attempts.
    let (outcomes, pending) = mpsc::unbounded_channel::<Recorded>();
    let recorder = tokio::spawn(record_outcomes(d.clone(), store.clone(), pending));
    loop {
        if cancel.is_cancelled() {
            break;
        }
        // Claim when at most half the slots are busy: fewer, larger claim transactions.
        if inflight.len() <= capacity / 2 {
            let room = capacity - inflight.len();
            let now = clock.now();
            let due = store.read(|r| outbox::due_ids(r, now, room)).unwrap_or_default();
            if !due.is_empty() {
                let msgs = match store.write(move |tx| outbox::claim_due(tx, now, room)).await {
                    // The messages are read on a snapshot, off the writer, and rendered and
                    // prepared on a thread of their own: the runtime's threads stay free for the
                    // sends' I/O (each SMTP exchange waits on several round trips).
                    Ok(claims) => {
                        let ids: Vec<String> = claims.iter().map(|c| c.id.clone()).collect();
                        let (st, dd) = (store.clone(), d.clone());
                        let read = tokio::task::spawn_blocking(move || {
                            st.read(|r| outbox::claimed(r, &claims)).map(|msgs| {
                                msgs.into_iter()
                                    .map(|mut m| {
                                        let p = dd.prepare(&mut m);
                                        (m, p)
                                    })
                                    .collect::<Vec<_>>()
                            })
                        })
                        .await;
                        match read.map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.to_string())) {
                            Ok(msgs) => Ok(msgs),
                            Err(e) => {
                                tracing::error!(error = %e, count = ids.len(), "cannot read claimed messages; putting them back");
                                if let Err(e) = store
                                    .write(move |tx| ids.iter().try_for_each(|id| outbox::unclaim(tx, now, id)))
                                    .await
                                {
                                    tracing::error!(error = %e, "cannot put claimed messages back; they are sent at the next start");
                                }
                                Err(e)
                            }
                        }
                    }
                    Err(e) => Err(e.to_string()),
                };
                match msgs {
                    Ok(msgs) => {
                        let ids: Vec<&str> = msgs.iter().map(|(m, _)| m.id.as_str()).collect();
                        tracing::debug!(messages = crate::logs::list(&ids), "messages claimed for sending");
                        for (m, prepared) in msgs {
                            let span = delivery_span(&m);
                            let (d, store, clock, outcomes, cancel) =
                                (d.clone(), store.clone(), clock.clone(), outcomes.clone(), cancel.clone());
                            inflight.spawn(deliver_one(d, store, clock, m, prepared, outcomes, cancel).instrument(span));
                        }
                        continue;
                    }
                    Err(e) => tracing::error!(error = %e, "cannot claim due messages"),
                }
            }
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            Some(_) = inflight.join_next(), if !inflight.is_empty() => {}
            () = wake.notified() => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
    // Let the sends in progress finish and be recorded; unstarted claims are put back.
    while inflight.join_next().await.is_some() {}
    drop(outcomes);
    if let Err(e) = recorder.await {
        tracing::error!(error = %e, "the delivery recorder failed");
    }
    tracing::info!("delivery worker stopped");
}

/// An attempt's outcome on its way to the delivery log.
struct Recorded {
    id: String,
    channel: Channel,
    at: DateTime<Utc>,
    result: AttemptResult,
    subject: Option<String>,
    /// Told once the outcome is committed (or could not be): the send's slot is held until then.
    done: tokio::sync::oneshot::Sender<()>,
}

/// Writes outcomes as they come, each batch in one job; a message that failed for good raises its
/// alert in the same transaction.
///
/// A batch waits for the sends in progress (at most [`LINGER`]): the slots of a lane are released
/// together when their outcomes commit and then send at about the same time, so without the wait
/// the first outcome of a round would take a commit of its own and the rest the next one (measured,
/// `bench_e2e 30000`: 4,428 commits of 6.8 outcomes on average, a quarter of them of one).
async fn record_outcomes(d: Arc<Delivery>, store: Store, mut pending: mpsc::UnboundedReceiver<Recorded>) {
    while let Some(first) = pending.recv().await {
        let mut batch = vec![first];
        let until = Instant::now() + LINGER;
        while batch.len() < 1024 {
            match pending.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) if d.sending.load(Ordering::Acquire) == 0 => break,
                Err(_) => match tokio::time::timeout_at(until, pending.recv()).await {
                    Ok(Some(r)) => batch.push(r),
                    Ok(None) | Err(_) => break,
                },
            }
        }
        let n = batch.len();
        let stage = d.stage.clone();
        let (batch, done): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .map(|r| {
                let Recorded {
                    id,
                    channel,
                    at,
                    result,
                    subject,
                    done,
                } = r;
                ((id, channel, at, result, subject), done)
            })
            .unzip();
        let written = store
            .write::<_, crate::store::StoreError, _>(move |tx| {
                for (id, channel, at, result, subject) in &batch {
                    let r = OutcomeRef {
                        id,
                        at: *at,
                        result,
                        subject: subject.as_deref(),
                    };
                    if outbox::record(tx, r.at, r.id, *channel, r.result)? != Some(outbox::Status::Failed) {
                        continue;
                    }
                    if let (AttemptResult::Failed(error), Some(m)) = (r.result, outbox::current(tx, r.id)?) {
                        raise_failure(tx, &stage, r.at, &m, r.subject, error)?;
                    }
                }
                Ok(())
            })
            .await;
        if let Err(e) = written {
            tracing::error!(error = %e, count = n, "cannot record delivery attempts; those messages are sent again at the next start");
        }
        for d in done {
            let _ = d.send(());
        }
    }
}

/// An outcome as the recorder's job reads it.
struct OutcomeRef<'a> {
    id: &'a str,
    at: DateTime<Utc>,
    result: &'a AttemptResult,
    subject: Option<&'a str>,
}

/// The span of one message's delivery: `job` with `kind = "delivery"`, the message, its channel,
/// template and attempt, and (when the message belongs to one) its warning and assignment round.
fn delivery_span(m: &OutboxMessage) -> tracing::Span {
    let (warning, round) = about(m);
    tracing::info_span!(
        "job",
        kind = "delivery",
        message = %m.id,
        channel = m.channel.as_str(),
        template = %m.template,
        attempt = m.attempts,
        warning = warning.as_deref(),
        round,
    )
}

/// The warning and round a message belongs to: the warning named in its data, or its cause when that
/// is an assignment (`{warning}/{party}/{round seq}`, whose round it is too).
fn about(m: &OutboxMessage) -> (Option<String>, Option<u64>) {
    let parts: Vec<&str> = m.cause.split('/').collect();
    let round = match parts.as_slice() {
        [_, _, seq] => seq.parse().ok(),
        _ => None,
    };
    let warning = m
        .data
        .get("warning_id")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
        .or_else(|| round.map(|_| parts[0].to_string()));
    (warning, round)
}

async fn deliver_one(
    d: Arc<Delivery>,
    store: Store,
    clock: Clock,
    msg: OutboxMessage,
    (subject, ready): Prepared,
    outcomes: mpsc::UnboundedSender<Recorded>,
    cancel: CancellationToken,
) {
    let Some(lane) = d.lanes.get(&msg.channel) else {
        // Not reached: `Delivery::new` refuses to start with a channel of `Channel::ALL` that has no
        // sender. The message stays claimed, to be tried again at the next start.
        tracing::error!(id = %msg.id, channel = msg.channel.as_str(), "no sender for this channel");
        return;
    };
    // Rendered and prepared before a slot is taken (`run_loop`): the slot is held for the
    // transport's exchange and the commit of its outcome only.
    let started = tokio::select! {
        biased;
        () = cancel.cancelled() => None,
        p = lane.slots.acquire() => match p {
            Ok(permit) => tokio::select! {
                biased;
                () = cancel.cancelled() => None,
                () = lane.pacer.wait() => Some(permit),
            },
            Err(_) => None,
        },
    };
    let Some(_permit) = started else {
        let (now, id) = (clock.now(), msg.id.clone());
        if let Err(e) = store.write(move |tx| outbox::unclaim(tx, now, &id)).await {
            tracing::error!(error = %e, id = %msg.id, "cannot put a message back; it is sent again at the next start");
        }
        return;
    };
    // Counted from here until the outcome is with the recorder (`sending`).
    let counted = Sending::start(&d.sending);
    let outcome = match ready {
        Ok(ready) => lane.sender.send(&msg, &ready).await,
        Err(e) => Err(e),
    };
    let now = clock.now();
    let result = match outcome {
        Ok(resp) => {
            tracing::debug!(id = %msg.id, response = %resp, "sent");
            AttemptResult::Sent(resp)
        }
        Err(e) if e.is_retryable() && msg.attempts < lane.retry.max_attempts => {
            let at = now + lane.retry.delay_after(msg.attempts);
            tracing::warn!(id = %msg.id, attempt = msg.attempts, error = %e, next = %at, "delivery failed; will retry");
            AttemptResult::Retry { error: e.to_string(), at }
        }
        Err(e) => {
            tracing::error!(id = %msg.id, attempt = msg.attempts, error = %e, "delivery failed for good");
            AttemptResult::Failed(e.to_string())
        }
    };
    // The slot (`_permit`) is held until the outcome is committed: at any moment at most the lane's
    // concurrency of messages can have reached the server unrecorded, which bounds what a crash
    // sends twice.
    let (done, recorded) = tokio::sync::oneshot::channel();
    if outcomes
        .send(Recorded {
            id: msg.id.clone(),
            channel: msg.channel,
            at: now,
            result,
            subject,
            done,
        })
        .is_err()
    {
        tracing::error!(id = %msg.id, "the recorder has stopped; the message is sent again at the next start");
        return;
    }
    drop(counted);
    let _ = recorded.await;
}

/// One send counted in [`Delivery::sending`] until dropped (after its outcome is with the recorder).
struct Sending<'a>(&'a AtomicUsize);

impl<'a> Sending<'a> {
    fn start(count: &'a AtomicUsize) -> Sending<'a> {
        count.fetch_add(1, Ordering::AcqRel);
        Sending(count)
    }
}

impl Drop for Sending<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Tells the duty staff of the message's region that it could not be delivered (once: the message
/// becomes `failed` in this same transaction). An alert that fails raises nothing.
fn raise_failure(
    tx: &mut crate::store::Tx<'_>,
    stage: &NotifyStage,
    now: DateTime<Utc>,
    m: &OutboxMessage,
    subject: Option<&str>,
    error: &str,
) -> Result<(), crate::store::StoreError> {
    if m.data.get("event").and_then(|v| v.as_str()) == Some("delivery_failed") {
        return Ok(());
    }
    let failed = NotifyDeliveryFailed {
        address: m.recipient.address.clone(),
        attempts: m.attempts,
        cause: m.cause.clone(),
        channel: m.channel,
        created_at: local(m.created_at),
        id: m.id.clone(),
        last_error: error.to_string(),
        recipient_name: m.recipient.name.clone(),
        subject: subject.map(str::to_string),
        template: m.template.clone(),
    };
    let rec = tx.append(
        now,
        "notifier",
        None,
        RecordBody::Other(Event::NotifyDeliveryFailed(failed.clone())),
    )?;
    let regions = stage.regions;
    let region = m
        .region
        .or_else(|| regions.all().find(|r| r.parent.is_none()).map(|r| r.code))
        .unwrap_or_else(|| RegionCode::from_u32(140_000).unwrap_or_else(|_| unreachable!()));
    let base = stage.public_url.trim_end_matches('/');
    let data = json!({
        "event": "delivery_failed",
        "region": region,
        "region_name": regions.name(region),
        "at": local(now),
        "failed": failed,
        "dashboard_url": format!("{base}/"),
        // A drill's notice that failed: the alert is the drill's too (【演练】).
        "exercise": m.data.get("exercise").cloned().unwrap_or(serde_json::Value::Bool(false)),
    });
    let notice = EventNotice {
        event: "delivery_failed",
        region,
        key: rec.seq.to_string(),
        cause: &m.id,
        data,
        signer_role: None,
        exclude: Some(&m.recipient.key),
        playbook: None,
    };
    stage.notify_event(tx, now, notice)?;
    Ok(())
}
