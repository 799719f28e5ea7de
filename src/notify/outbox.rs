//! The outbox: messages to send, written in the same transaction as the event that causes them, and
//! the delivery log of every attempt.
//!
//! In: [`OutboxMessage`]s from the stages ([`enqueue`]) and attempt outcomes from the delivery worker.
//! Out: due messages for the worker ([`claim_due`]), and what happened to each message for people
//! and tests ([`message`], [`attempts`], [`messages`]). Touches four document collections of the store:
//!
//! | collection | key | value |
//! |---|---|---|
//! | `outbox` | message id | [`OutboxMessage`] as queued (written once) |
//! | `outbox_state` | message id | what changed since (status, attempts, next attempt, last error, sent at) |
//! | `outbox_due` | `{next_attempt_at ms, 15 digits}/{id}` | id: the pending messages in due order |
//! | `outbox_inflight` | id | claim time: messages a worker is sending |
//! | `delivery_log` | `{id}/{attempt, 4 digits}` | [`DeliveryAttempt`] |
//!
//! A message is in exactly one of: the due index (pending), the in-flight index (sending), neither
//! (sent or failed). Claiming moves it from due to in-flight in one transaction, so no two workers
//! ever hold the same message; recording the outcome moves it on in one transaction, so a message
//! recorded as sent is never claimed again.
//!
//! The message itself (its recipient, template data and attachments: about 1–2 kB) is written once,
//! when it is queued; a claim and an outcome write only its small `outbox_state` entry (~100 bytes)
//! and the index entries (issue 17: before, each rewrote the whole message, three writes of it per
//! message sent). A message without a state entry is as it was queued (also every message of a store
//! made before the split, whose queued copy carries its status).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::region::RegionCode;
use crate::store::{Collection, Encoded, millis_key};
use crate::store::{ReadTx, StoreError, Tx, View};

const OUTBOX: Collection = Collection::Outbox;
const DUE: Collection = Collection::OutboxDue;
const INFLIGHT: Collection = Collection::OutboxInflight;
const LOG: Collection = Collection::DeliveryLog;
const STATE: Collection = Collection::OutboxState;

/// What changes about a message as it is sent, kept apart from the message (see the module's table).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    status: Status,
    attempts: u32,
    next_attempt_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sent_at: Option<DateTime<Utc>>,
}

impl State {
    fn apply(self, m: &mut OutboxMessage) {
        m.status = self.status;
        m.attempts = self.attempts;
        m.next_attempt_at = self.next_attempt_at;
        m.last_error = self.last_error;
        m.sent_at = self.sent_at;
    }
}

/// A message as it now is: as queued, with its state entry over it.
fn load(v: &impl View, id: &str) -> Result<Option<OutboxMessage>, StoreError> {
    let Some(mut m) = v.doc::<OutboxMessage>(OUTBOX, id)? else {
        return Ok(None);
    };
    if let Some(s) = v.doc::<State>(STATE, id)? {
        s.apply(&mut m);
    }
    Ok(Some(m))
}

/// A message's state alone: its state entry, or (none yet: as queued) the queued copy's own fields,
/// read without decoding the rest of it.
fn state_of(v: &impl View, id: &str) -> Result<Option<State>, StoreError> {
    match v.doc::<State>(STATE, id)? {
        Some(s) => Ok(Some(s)),
        None => v.doc::<State>(OUTBOX, id),
    }
}

/// Lays state entries over a page of queued messages (one read of the state collection).
fn with_states(v: &ReadTx, mut msgs: Vec<OutboxMessage>) -> Result<Vec<OutboxMessage>, StoreError> {
    let ids: Vec<String> = msgs.iter().map(|m| m.id.clone()).collect();
    for (m, s) in msgs.iter_mut().zip(v.get_docs::<State>(STATE, &ids)?) {
        if let Some(s) = s {
            s.apply(m);
        }
    }
    Ok(msgs)
}

/// How a message travels; defined with the records that carry it (`notify_delivery_failed`).
pub use crate::store::events::Channel;

impl Channel {
    /// Every channel, in the order logs and metrics list them. A new variant goes here too.
    pub const ALL: [Channel; 2] = [Channel::Email, Channel::Webhook];

    /// `email` or `webhook`.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Webhook => "webhook",
        }
    }
}

/// Where a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for its next attempt.
    Pending,
    /// Claimed by the worker; being sent.
    Sending,
    /// Accepted by the transport.
    Sent,
    /// Given up on (attempts exhausted, or rejected for good).
    Failed,
}

/// Who a message is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// Stable key (a roster person's id, an enterprise's id, an endpoint's id): part of the message id.
    pub key: String,
    /// Display name (a person's name; for an endpoint, its id).
    pub name: String,
    /// Email address, or the endpoint id.
    pub address: String,
}

/// One message to send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxMessage {
    /// Stable id derived from its cause (`{record seq}-{recipient key}-{channel}`): the same cause
    /// gives the same id, so queuing twice is a no-op, and the email's Message-ID is `<{id}@hazeflow>`.
    pub id: String,
    /// How it travels.
    pub channel: Channel,
    /// Who it is for.
    pub recipient: Recipient,
    /// Template name (`warning_issued`).
    pub template: String,
    /// The template's context (small).
    pub data: Value,
    /// What caused it (a warning id, an assignment id, a failed message's id).
    pub cause: String,
    /// The region it concerns: a final failure alerts this region's duty staff.
    #[serde(default)]
    pub region: Option<RegionCode>,
    /// When it was queued (also the email's Date header, so every attempt is byte-identical).
    pub created_at: DateTime<Utc>,
    /// Attempts started so far.
    pub attempts: u32,
    /// When the next attempt is due (while pending).
    pub next_attempt_at: DateTime<Utc>,
    /// Where it is.
    pub status: Status,
    /// The last error, if any.
    pub last_error: Option<String>,
    /// When the transport accepted it.
    #[serde(default)]
    pub sent_at: Option<DateTime<Utc>>,
    /// Files sent with it (email only; the 总结评估's Word file): kept with the message, so every
    /// attempt sends the same bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
}

/// A file attached to an email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The file name the recipient sees (any script; encoded per RFC 2231).
    pub name: String,
    /// Its MIME type.
    pub content_type: String,
    /// Its bytes, in base64.
    pub base64: String,
}

impl Attachment {
    /// An attachment of `bytes`.
    pub fn new(name: &str, content_type: &str, bytes: &[u8]) -> Attachment {
        use base64::Engine as _;
        Attachment {
            name: name.to_string(),
            content_type: content_type.to_string(),
            base64: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
    }

    /// Its bytes (`None`: not valid base64).
    pub fn bytes(&self) -> Option<Vec<u8>> {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.decode(&self.base64).ok()
    }
}

impl OutboxMessage {
    /// A new pending message, due at `now`. `id` is made safe for a Message-ID and a file name.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: &str,
        channel: Channel,
        recipient: Recipient,
        template: &str,
        data: Value,
        cause: &str,
        region: Option<RegionCode>,
        now: DateTime<Utc>,
    ) -> OutboxMessage {
        OutboxMessage {
            id: safe_id(id),
            channel,
            recipient,
            template: template.to_string(),
            data,
            cause: cause.to_string(),
            region,
            created_at: now,
            attempts: 0,
            next_attempt_at: now,
            status: Status::Pending,
            last_error: None,
            sent_at: None,
            attachments: Vec::new(),
        }
    }
}

/// Keeps `A-Za-z0-9._-` and replaces anything else with `_`: an id goes into a Message-ID
/// (`<id@hazeflow>`) and a file name.
pub fn safe_id(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// What one attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Accepted by the transport.
    Sent,
    /// Failed; another attempt is scheduled.
    Retry,
    /// Failed for good.
    Failed,
    /// The process stopped while sending (a crash): it may or may not have reached the server, and
    /// is sent again with the same Message-ID.
    Interrupted,
}

/// One attempt, as kept in the delivery log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    /// Message id.
    pub id: String,
    /// 1-based.
    pub attempt: u32,
    /// When it ended.
    pub at: DateTime<Utc>,
    /// What happened.
    pub outcome: Outcome,
    /// The transport's answer (`250 2.0.0 Ok`, `HTTP 200`, the file written).
    pub response: Option<String>,
    /// The error, when it failed.
    pub error: Option<String>,
}

fn due_key(at: DateTime<Utc>, id: &str) -> String {
    format!("{}/{id}", millis_key(at))
}

fn log_key(id: &str, attempt: u32) -> String {
    format!("{id}/{attempt:04}")
}

/// Queues a message in the caller's transaction. A message whose id is already queued (or sent) is
/// left alone: enqueuing the same cause twice is a no-op.
pub fn enqueue(tx: &mut Tx<'_>, msg: OutboxMessage) -> Result<(), StoreError> {
    enqueue_new(tx, msg).map(|_| ())
}

/// As [`enqueue`]; true when the message was new.
pub fn enqueue_new(tx: &mut Tx<'_>, mut msg: OutboxMessage) -> Result<bool, StoreError> {
    msg.id = safe_id(&msg.id);
    if tx.docs_exist(OUTBOX, std::slice::from_ref(&msg.id))?[0] {
        return Ok(false);
    }
    msg.status = Status::Pending;
    tx.put_doc(DUE, &due_key(msg.next_attempt_at, &msg.id), &msg.id)?;
    tx.put_doc(OUTBOX, &msg.id, &msg)?;
    tx.bump(&format!("notify_queued_{}", msg.channel.as_str()), 1)?;
    Ok(true)
}

/// A message made ready to queue — its id made safe, its index key and its encoding done — by a
/// thread other than the writer's ([`ready`]); queued by [`enqueue_ready`].
#[derive(Debug, Clone)]
pub struct Ready {
    id: String,
    due: String,
    channel: Channel,
    body: Encoded,
}

/// Prepares `msg` (pending, due at its `next_attempt_at`) for [`enqueue_ready`].
pub fn ready(mut msg: OutboxMessage) -> Ready {
    msg.id = safe_id(&msg.id);
    msg.status = Status::Pending;
    Ready {
        due: due_key(msg.next_attempt_at, &msg.id),
        body: Encoded::of(&msg),
        channel: msg.channel,
        id: msg.id,
    }
}

/// Queues prepared messages in the caller's transaction, as [`enqueue`] does each (a message whose
/// id is already queued or sent is left alone), writing the indexes in key order. Returns how many
/// were new.
pub fn enqueue_ready(tx: &mut Tx<'_>, msgs: Vec<Ready>) -> Result<usize, StoreError> {
    let ids: Vec<String> = msgs.iter().map(|m| m.id.clone()).collect();
    let exist = tx.docs_exist(OUTBOX, &ids)?;
    let mut seen = std::collections::HashSet::new();
    let mut due = Vec::with_capacity(msgs.len());
    let mut bodies = Vec::with_capacity(msgs.len());
    let mut counts: Vec<(Channel, u64)> = Vec::new();
    for (m, exists) in msgs.into_iter().zip(exist) {
        if exists || !seen.insert(m.id.clone()) {
            continue;
        }
        match counts.iter_mut().find(|(c, _)| *c == m.channel) {
            Some((_, n)) => *n += 1,
            None => counts.push((m.channel, 1)),
        }
        due.push((m.due, Encoded::of(&m.id)));
        bodies.push((m.id, m.body));
    }
    tx.put_encoded_docs(DUE, &due)?;
    tx.put_encoded_docs(OUTBOX, &bodies)?;
    for (channel, n) in counts {
        tx.bump(&format!("notify_queued_{}", channel.as_str()), n)?;
    }
    Ok(bodies.len())
}

/// Ids of up to `limit` messages due at `now`, in due order (read-only: the worker looks before it
/// claims, so an idle poll writes nothing).
pub fn due_ids(r: &ReadTx, now: DateTime<Utc>, limit: usize) -> Result<Vec<String>, StoreError> {
    let cut = now.timestamp_millis().max(0);
    Ok(r.docs::<String>(DUE, "", "", limit)?
        .into_iter()
        .filter(|(k, _)| k.get(..15).and_then(|t| t.parse::<i64>().ok()).is_some_and(|t| t <= cut))
        .map(|(_, id)| id)
        .collect())
}

/// A claimed message: its id and the attempt it is on. The message itself is read by [`claimed`] on
/// a snapshot, off the writer.
#[derive(Debug, Clone)]
pub struct Claim {
    pub id: String,
    pub attempt: u32,
}

/// Claims up to `limit` due messages for sending: each leaves the due index, enters the in-flight
/// index, and counts one more attempt. Only the messages' states are read and written.
pub fn claim_due(tx: &mut Tx<'_>, now: DateTime<Utc>, limit: usize) -> Result<Vec<Claim>, StoreError> {
    let cut = now.timestamp_millis().max(0);
    let due = tx.docs::<String>(DUE, "", "", limit)?;
    let mut out = Vec::new();
    for (key, id) in due {
        if key.get(..15).and_then(|t| t.parse::<i64>().ok()).is_none_or(|t| t > cut) {
            break;
        }
        tx.remove_doc(DUE, &key)?;
        let Some(mut st) = state_of(tx, &id)? else {
            continue;
        };
        if st.status != Status::Pending {
            continue;
        }
        st.status = Status::Sending;
        st.attempts += 1;
        tx.put_doc(INFLIGHT, &id, &now)?;
        tx.put_doc(STATE, &id, &st)?;
        out.push(Claim { id, attempt: st.attempts });
    }
    Ok(out)
}

/// The claimed messages as they now are (read after the claim is committed; a message that has gone
/// is left out).
pub fn claimed(r: &ReadTx, claims: &[Claim]) -> Result<Vec<OutboxMessage>, StoreError> {
    let ids: Vec<String> = claims.iter().map(|c| c.id.clone()).collect();
    let msgs = r.get_docs::<OutboxMessage>(OUTBOX, &ids)?.into_iter().flatten().collect();
    with_states(r, msgs)
}

/// Puts a claimed message back, due at `now`, without counting the attempt (the worker stopped before
/// it sent anything).
pub fn unclaim(tx: &mut Tx<'_>, now: DateTime<Utc>, id: &str) -> Result<(), StoreError> {
    let Some(mut st) = state_of(tx, id)? else {
        return Ok(());
    };
    if st.status != Status::Sending {
        return Ok(());
    }
    st.status = Status::Pending;
    st.attempts = st.attempts.saturating_sub(1);
    st.next_attempt_at = now;
    tx.remove_doc(INFLIGHT, id)?;
    tx.put_doc(DUE, &due_key(now, id), &id)?;
    tx.put_doc(STATE, id, &st)
}

/// At start: messages left in flight by a process that stopped while sending them. Each gets an
/// `interrupted` entry in the delivery log and is due again at once, with the same Message-ID.
pub fn recover_interrupted(tx: &mut Tx<'_>, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
    let mut ids: Vec<String> = Vec::new();
    loop {
        let after = ids.last().cloned().unwrap_or_default();
        let batch = tx.docs::<Value>(INFLIGHT, "", &after, 1000)?;
        if batch.is_empty() {
            break;
        }
        ids.extend(batch.into_iter().map(|(k, _)| k));
    }
    for id in &ids {
        tx.remove_doc(INFLIGHT, id)?;
        let Some(mut st) = state_of(tx, id)? else {
            continue;
        };
        if st.status != Status::Sending {
            continue;
        }
        let error = "the process stopped during this attempt; it may have reached the server".to_string();
        tx.put_doc(
            LOG,
            &log_key(id, st.attempts),
            &DeliveryAttempt {
                id: id.clone(),
                attempt: st.attempts,
                at: now,
                outcome: Outcome::Interrupted,
                response: None,
                error: Some(error.clone()),
            },
        )?;
        st.status = Status::Pending;
        st.next_attempt_at = now;
        st.last_error = Some(error);
        tx.put_doc(DUE, &due_key(now, id), id)?;
        tx.put_doc(STATE, id, &st)?;
        tx.bump("notify_interrupted", 1)?;
    }
    Ok(ids)
}

/// What the worker learnt from an attempt.
#[derive(Debug, Clone)]
pub enum AttemptResult {
    /// Accepted, with the transport's answer.
    Sent(String),
    /// Failed; try again at this time.
    Retry { error: String, at: DateTime<Utc> },
    /// Failed for good.
    Failed(String),
}

/// Records the outcome of the current attempt of a claimed message (`channel`: the message's, for
/// the counters) and moves it on. Returns its status after it (`None` when it was not in flight:
/// recorded already). Only the message's small state entry is read and written; [`current`] gives
/// the whole message (a caller reporting a failure needs it).
pub fn record(
    tx: &mut Tx<'_>,
    now: DateTime<Utc>,
    id: &str,
    channel: Channel,
    result: &AttemptResult,
) -> Result<Option<Status>, StoreError> {
    let Some(mut s) = state_of(tx, id)? else {
        return Ok(None);
    };
    if s.status != Status::Sending {
        return Ok(None);
    }
    tx.remove_doc(INFLIGHT, id)?;
    let (outcome, response, error) = match result {
        AttemptResult::Sent(resp) => {
            s.status = Status::Sent;
            s.sent_at = Some(now);
            (Outcome::Sent, Some(resp.clone()), None)
        }
        AttemptResult::Retry { error, at } => {
            s.status = Status::Pending;
            s.next_attempt_at = *at;
            s.last_error = Some(error.clone());
            tx.put_doc(DUE, &due_key(*at, id), &id)?;
            (Outcome::Retry, None, Some(error.clone()))
        }
        AttemptResult::Failed(error) => {
            s.status = Status::Failed;
            s.last_error = Some(error.clone());
            (Outcome::Failed, None, Some(error.clone()))
        }
    };
    tx.put_doc(
        LOG,
        &log_key(id, s.attempts),
        &DeliveryAttempt {
            id: id.to_string(),
            attempt: s.attempts,
            at: now,
            outcome,
            response,
            error,
        },
    )?;
    let status = s.status;
    tx.put_doc(STATE, id, &s)?;
    let counter = match outcome {
        Outcome::Sent => "sent",
        Outcome::Retry => "retried",
        _ => "failed",
    };
    tx.bump(&format!("notify_{counter}_{}", channel.as_str()), 1)?;
    Ok(Some(status))
}

/// A message as it now is, in a snapshot or inside a write (as queued, with what changed since).
pub fn current(v: &impl View, id: &str) -> Result<Option<OutboxMessage>, StoreError> {
    load(v, id)
}

/// When the earliest queued message is due (the outbox's oldest), if any is queued.
pub fn oldest_due(r: &ReadTx) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(r.docs::<String>(DUE, "", "", 1)?
        .first()
        .and_then(|(k, _)| k.get(..15)?.parse::<i64>().ok())
        .and_then(DateTime::from_timestamp_millis))
}

/// A message by id.
pub fn message(r: &ReadTx, id: &str) -> Result<Option<OutboxMessage>, StoreError> {
    load(r, id)
}

/// Messages whose id starts with `prefix`, in id order, after `after`, at most `limit`.
pub fn messages(r: &ReadTx, prefix: &str, after: &str, limit: usize) -> Result<Vec<OutboxMessage>, StoreError> {
    let page = r
        .docs::<OutboxMessage>(OUTBOX, prefix, after, limit)?
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    with_states(r, page)
}

/// Every message (for tests and small installations; the API pages with [`messages`]).
pub fn all_messages(r: &ReadTx) -> Result<Vec<OutboxMessage>, StoreError> {
    let mut out: Vec<OutboxMessage> = Vec::new();
    loop {
        let after = out.last().map(|m| m.id.clone()).unwrap_or_default();
        let page = messages(r, "", &after, 1000)?;
        if page.is_empty() {
            return Ok(out);
        }
        out.extend(page);
    }
}

/// The delivery log of one message, in attempt order.
pub fn attempts(r: &ReadTx, id: &str) -> Result<Vec<DeliveryAttempt>, StoreError> {
    Ok(r.docs::<DeliveryAttempt>(LOG, &format!("{id}/"), "", 10_000)?
        .into_iter()
        .map(|(_, a)| a)
        .collect())
}

/// For `hazeflow verify`: every message decodes and sits in the index its status says (pending: one
/// due entry; sending: in flight; sent or failed: neither), and no index entry names a message that
/// is elsewhere. Returns the differences.
pub fn check(r: &ReadTx) -> Result<Vec<String>, StoreError> {
    use std::collections::{BTreeMap, BTreeSet};
    let mut diffs = Vec::new();
    let mut status: BTreeMap<String, Status> = BTreeMap::new();
    for (id, v) in r.docs::<Value>(OUTBOX, "", "", usize::MAX)? {
        match serde_json::from_value::<OutboxMessage>(v) {
            Ok(m) => {
                if m.id != id {
                    diffs.push(format!("outbox {id}: holds message {}", m.id));
                }
                status.insert(id, m.status);
            }
            Err(e) => diffs.push(format!("outbox {id}: not a message: {e}")),
        }
    }
    for (id, v) in r.docs::<Value>(STATE, "", "", usize::MAX)? {
        match (serde_json::from_value::<State>(v), status.get_mut(&id)) {
            (Ok(s), Some(st)) => *st = s.status,
            (Ok(_), None) => diffs.push(format!("outbox state {id}: no such message")),
            (Err(e), _) => diffs.push(format!("outbox state {id}: not a message's state: {e}")),
        }
    }
    let mut due: BTreeSet<String> = BTreeSet::new();
    for (key, id) in r.docs::<Value>(DUE, "", "", usize::MAX)? {
        let id = id.as_str().unwrap_or_default().to_string();
        if !key.ends_with(&format!("/{id}")) {
            diffs.push(format!("outbox due entry {key}: names {id}"));
        }
        match status.get(&id) {
            Some(Status::Pending) => {
                if !due.insert(id.clone()) {
                    diffs.push(format!("outbox {id}: due twice"));
                }
            }
            Some(s) => diffs.push(format!("outbox {id}: due, but its status is {s:?}")),
            None => diffs.push(format!("outbox due entry {key}: no such message")),
        }
    }
    let inflight: BTreeSet<String> = r.docs::<Value>(INFLIGHT, "", "", usize::MAX)?.into_iter().map(|(k, _)| k).collect();
    for id in &inflight {
        match status.get(id) {
            Some(Status::Sending) => {}
            Some(s) => diffs.push(format!("outbox {id}: in flight, but its status is {s:?}")),
            None => diffs.push(format!("outbox in-flight entry {id}: no such message")),
        }
    }
    for (id, s) in &status {
        match s {
            Status::Pending if !due.contains(id) => diffs.push(format!("outbox {id}: pending but not due (it would never be sent)")),
            Status::Sending if !inflight.contains(id) => diffs.push(format!("outbox {id}: sending but not in flight")),
            _ => {}
        }
    }
    Ok(diffs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn msg(id: &str, now: DateTime<Utc>) -> OutboxMessage {
        let to = Recipient {
            key: "p1".into(),
            name: "张三".into(),
            address: "zhang@example.cn".into(),
        };
        OutboxMessage::new(
            id,
            Channel::Email,
            to,
            "warning_issued",
            serde_json::json!({"n": 1}),
            "w1",
            None,
            now,
        )
    }

    /// The queued message is written once; claims and outcomes change only its state entry, and
    /// every reader sees the message as it now is. A message queued by a build before the split
    /// (its status inside the queued copy, no state entry) is sent and recorded the same way.
    #[tokio::test]
    async fn a_claim_and_an_outcome_leave_the_queued_message_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let now = Utc::now();
        let (a, b) = (msg("m-a", now), msg("m-b", now));
        let queued_a = serde_json::to_vec(&a).unwrap();
        // `m-b` as an older build left it: claimed (status and attempt in the copy), in flight.
        let mut old = b.clone();
        old.status = Status::Sending;
        old.attempts = 1;
        store
            .write(move |tx| {
                enqueue(tx, a)?;
                tx.put_doc(OUTBOX, &old.id, &old)?;
                tx.put_doc(INFLIGHT, &old.id, &now)
            })
            .await
            .unwrap();
        // Claim `m-a`, send it: sent, one attempt, and the queued copy is byte for byte as queued.
        let claims = store.write(move |tx| claim_due(tx, now, 10)).await.unwrap();
        let got = store.read(|r| claimed(r, &claims)).unwrap();
        assert_eq!(
            got.iter().map(|m| (m.id.as_str(), m.attempts, m.status)).collect::<Vec<_>>(),
            [("m-a", 1, Status::Sending)]
        );
        assert_eq!(got[0].data, serde_json::json!({"n": 1}));
        let st = store
            .write(move |tx| record(tx, now, "m-a", Channel::Email, &AttemptResult::Sent("250 ok".into())))
            .await
            .unwrap();
        assert_eq!(st, Some(Status::Sent));
        let m = store.read(|r| message(r, "m-a")).unwrap().unwrap();
        assert_eq!((m.status, m.attempts, m.sent_at), (Status::Sent, 1, Some(now)));
        let raw = store.read(|r| r.doc::<Value>(OUTBOX, "m-a")).unwrap().unwrap();
        assert_eq!(raw, serde_json::from_slice::<Value>(&queued_a).unwrap());
        // Recorded twice: the second is refused (not in flight any more), nothing counted twice.
        let again = store
            .write(move |tx| record(tx, now, "m-a", Channel::Email, &AttemptResult::Sent("250 ok".into())))
            .await
            .unwrap();
        assert_eq!(again, None);
        // The old-layout message: interrupted at start, claimed again, failed for good.
        let ids = store.write(move |tx| recover_interrupted(tx, now)).await.unwrap();
        assert_eq!(ids, ["m-b"]);
        let claims = store.write(move |tx| claim_due(tx, now, 10)).await.unwrap();
        assert_eq!(claims.iter().map(|c| (c.id.as_str(), c.attempt)).collect::<Vec<_>>(), [("m-b", 2)]);
        let got = store.read(|r| claimed(r, &claims)).unwrap();
        assert_eq!(
            (got[0].status, got[0].attempts, got[0].recipient.name.as_str()),
            (Status::Sending, 2, "张三")
        );
        let st = store
            .write(move |tx| record(tx, now, "m-b", Channel::Email, &AttemptResult::Failed("550 no".into())))
            .await
            .unwrap();
        assert_eq!(st, Some(Status::Failed));
        let all = store.read(all_messages).unwrap();
        let seen: Vec<_> = all
            .iter()
            .map(|m| (m.id.as_str(), m.status, m.attempts, m.last_error.as_deref()))
            .collect();
        assert_eq!(seen, [("m-a", Status::Sent, 1, None), ("m-b", Status::Failed, 2, Some("550 no"))]);
        let log: Vec<_> = store
            .read(|r| attempts(r, "m-b"))
            .unwrap()
            .into_iter()
            .map(|a| (a.attempt, a.outcome))
            .collect();
        assert_eq!(log, [(1, Outcome::Interrupted), (2, Outcome::Failed)]);
        assert_eq!(store.read(check).unwrap(), Vec::<String>::new());
        assert_eq!(store.read(|r| r.counter("notify_sent_email")).unwrap(), 1);
        assert_eq!(store.read(|r| r.counter("notify_failed_email")).unwrap(), 1);
    }
}
