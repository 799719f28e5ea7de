//! Re-publication while a warning is in force (定时重新发布, domain.md §6.3: one example refreshes the
//! public messages every 8 h at blue/yellow and every 4 h at orange/red, [L]).
//!
//! In: each region's current warning (real and drill lanes), its history, the playbook it is pinned to
//! (`republish_hours`, per level; absent: never), the clock. Out, per interval of an active warning, in
//! one transaction: a lifecycle record [`EventKind::Republished`] in the warning's history — which the
//! public side turns into a CAP `Update` (and an Atom entry, a line on the public page) — and a
//! reminder mail (template `measures_reminder`) to each enterprise whose measures are in force and not
//! yet confirmed in place (措施已落实), message id `{assignment}.republish-{n}-…`.
//!
//! # Reminders in chunks
//!
//! A warning can task 300,000 enterprises; queuing every reminder in the re-publication's transaction
//! would hold the single writer for that long. So that transaction writes, beside the record, a cursor
//! (collection `republish_reminders`, key `{warning}.{n:03}`, [`Reminding`]: the last assignment key
//! gone through, the reminders' common data), and the report loop queues the reminders a chunk at a time
//! ([`remind`]: [`CHUNK`] assignments per transaction): each chunk is prepared on a snapshot off the
//! writer ([`prepare`]) and written ([`apply`]) with the cursor moved on in the same transaction, only if
//! the cursor is still where it was read (a stale or repeated chunk writes nothing); the last chunk
//! removes the cursor. Message ids derive from the assignment and `n`, and the outbox skips an id it
//! holds, so even a chunk done twice queues nothing twice; a restart goes on from the cursor, so none is
//! skipped. An enterprise that confirms 措施已落实 before its chunk is not reminded. The record's
//! `reminders` is the number of enterprises to remind, counted on a snapshot just before it; the
//! `republications` document's `reminders` counts those queued so far.
//!
//! # Once per interval
//!
//! The interval runs from the latest of: the warning's start, its last level change, its last
//! re-publication (that record's time). The job re-reads the history inside its transaction and writes
//! only when the interval has run out there, so a restart, a second pass or a new leader makes the `n`th
//! re-publication at most once; the record is the durable marker, written with the reminders' cursor
//! (and a document in `republications`, key `{warning}.{n:03}`, for reading). After a long stop the
//! missed intervals are not made up one by one: one re-publication at once, the next an interval later.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::Instrument;

use crate::domain::ack_step::AckStep;
use crate::domain::playbook::Playbook;
use crate::domain::warning::{Event as LifecycleEvent, EventKind, Status, Warning};
use crate::engine::Engine;
use crate::engine::assign::{self, Assignment, AssignmentStatus, Party, TokenKey};
use crate::engine::escalate::{Escalation, enterprise_recipient, local, task_json};
use crate::notify::{AssignmentNotice, Recipient, assignment_message, outbox};
use crate::registry::{Defaults, Enterprise};
use crate::store::{Collection, Record, RecordBody, Store, StoreError, Tx, View};

/// Re-publications whose reminders are still being queued, key `{warning}.{n:03}` → [`Reminding`].
pub const REMINDING: Collection = Collection::RepublishReminders;

/// Assignments gone through per transaction when queuing reminders (as the notices' fan-out).
pub const CHUNK: usize = 200;

/// Chunks queued per pass of the report loop (the loop comes back a second later for the rest).
const CHUNKS_PER_PASS: usize = 200;

/// The reminders of one re-publication still to be queued: the durable cursor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reminding {
    /// The warning.
    pub warning_id: String,
    /// The re-publication's number.
    pub n: u32,
    /// The last assignment key gone through ("" before the first).
    pub after: String,
    /// Reminders queued so far.
    pub queued: u64,
    /// What every reminder says besides the enterprise's own: the warning, level, time, interval.
    pub common: Value,
}

/// What the reminders need besides the store: the measures and the links.
#[derive(Clone)]
pub struct Reminders {
    /// Measures (the task's lines).
    pub defaults: Arc<Defaults>,
    /// For the acknowledgement links.
    pub tokens: TokenKey,
    /// The daemon's public address.
    pub public_url: String,
}

impl Reminders {
    /// From the escalation's parts (the same links and measures as its reminders).
    pub fn of(esc: &Escalation) -> Reminders {
        Reminders {
            defaults: esc.defaults.clone(),
            tokens: esc.tokens.clone(),
            public_url: esc.public_url.clone(),
        }
    }

    fn ack_url(&self, a: &Assignment) -> String {
        format!("{}/ack/{}", self.public_url.trim_end_matches('/'), self.tokens.token(a))
    }
}

/// Re-publications made, key `{warning}.{n:03}` → [`Republication`].
pub const REPUBLICATIONS: Collection = Collection::Republications;

/// One re-publication, as kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Republication {
    /// The warning.
    pub warning_id: String,
    /// The how-manieth.
    pub n: u32,
    /// Its time (the end of the interval, or now after a stop).
    pub at: DateTime<Utc>,
    /// The level in force.
    pub level: String,
    /// Reminders queued so far (they go out in chunks after the record: see the module's docs).
    pub reminders: u64,
    /// A drill's.
    #[serde(default, skip_serializing_if = "crate::domain::warning::is_false")]
    pub exercise: bool,
}

/// When the next re-publication of `w` falls due, the interval and its number; `None`: none (not in
/// force, or no interval for its level).
pub fn next(history: &[Record], w: &Warning, pb: &Playbook) -> Option<(DateTime<Utc>, Duration, u32)> {
    if w.status != Status::Active {
        return None;
    }
    let every = *pb.republish.get(w.level.id.as_str())?;
    let mut from = w.start;
    let mut n = 0;
    for r in history {
        let RecordBody::Warning { event, .. } = &r.body else { continue };
        match &event.kind {
            EventKind::LevelChanged { .. } | EventKind::Started => from = from.max(event.at),
            EventKind::Republished { n: k, .. } => {
                from = from.max(event.at);
                n = n.max(*k);
            }
            _ => {}
        }
    }
    Some((from + every, every, n + 1))
}

fn playbook_of(engine: &Engine, w: &Warning) -> Option<Arc<Playbook>> {
    engine
        .playbooks
        .pinned(&w.playbook)
        .or_else(|| engine.playbooks.live().for_region(w.region, engine.regions).cloned())
}

/// Re-publishes `warning_id` if due at `now` (in this transaction), with `reminders` enterprises to
/// remind (counted on a snapshot before) and the cursor of their reminders; returns whether it did.
fn republish(
    tx: &mut Tx<'_>,
    esc: &Escalation,
    pb: &Playbook,
    warning_id: &str,
    reminders: u64,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let Some(w) = tx.warning(warning_id)? else { return Ok(false) };
    let history = tx.warning_history(warning_id)?;
    let Some((due, every, n)) = next(&history, &w, pb) else {
        return Ok(false);
    };
    if due > now {
        return Ok(false);
    }
    let at = if now - due < every { due } else { now };
    let level = pb.level(w.level.id.as_str());
    let level_name = level.map_or_else(|| w.level.id.to_string(), |l| l.name.clone());
    let response = level.map(|l| l.response.clone()).unwrap_or_default();
    let region_name = esc.regions.name(w.region);
    let common = json!({
        "warning_id": w.id,
        "region_name": region_name,
        "level_name": level_name,
        "response": response,
        "issuer": pb.issuer.name,
        "start": local(w.start),
        "expected_end": local(w.expected_end),
        "at": local(at),
        "n": n,
        "hours": every.num_hours(),
        "exercise": w.exercise,
    });
    let key = format!("{}.{n:03}", w.id);
    tx.put_doc(
        REMINDING,
        &key,
        &Reminding {
            warning_id: w.id.clone(),
            n,
            after: String::new(),
            queued: 0,
            common,
        },
    )?;
    let event = LifecycleEvent {
        region: w.region,
        at,
        actor: "clock".into(),
        reason: format!("预警持续期间每{}小时重新发布", every.num_hours()),
        forecast_id: None,
        playbook: w.playbook.clone(),
        kind: EventKind::Republished {
            n,
            level: w.level.id.clone(),
            reminders,
        },
        exercise: w.exercise,
    };
    tx.append(
        now,
        "clock",
        Some(w.playbook.clone()),
        RecordBody::Warning {
            warning_id: w.id.clone(),
            event,
        },
    )?;
    let kept = Republication {
        warning_id: w.id.clone(),
        n,
        at,
        level: w.level.id.to_string(),
        reminders: 0,
        exercise: w.exercise,
    };
    tx.put_doc(REPUBLICATIONS, &key, &kept)?;
    tx.bump("republications", 1)?;
    Ok(true)
}

/// The enterprise and address an assignment's reminder goes to: an enterprise's task in force, not
/// yet confirmed in place, whose 责任人 has an address; `None`: no reminder.
fn remindable<V: View>(v: &V, a: &Assignment) -> Result<Option<(Enterprise, Recipient)>, StoreError> {
    let Party::Enterprise { uscc, .. } = &a.party else {
        return Ok(None);
    };
    if a.status != AssignmentStatus::Active || a.has(AckStep::InPlace) {
        return Ok(None);
    }
    let Some(e) = crate::engine::inspect::enterprise_in(v, uscc)? else {
        return Ok(None);
    };
    Ok(enterprise_recipient(&e).map(|to| (e, to)))
}

/// How many enterprises of the warning a re-publication now would remind (read on a snapshot).
fn count_remindable<V: View>(v: &V, warning_id: &str) -> Result<u64, StoreError> {
    let mut count = 0;
    let mut after = String::new();
    loop {
        let batch = assign::of_warning(v, warning_id, &after, 10_000)?;
        let Some(last) = batch.last() else { break };
        after = last.key.clone();
        for a in &batch {
            count += u64::from(remindable(v, a)?.is_some());
        }
    }
    Ok(count)
}

/// The reminders of the next at most `limit` assignments of the oldest re-publication still
/// reminding, prepared on `v` (a snapshot) for [`apply`].
#[derive(Debug)]
pub struct Chunk {
    key: String,
    from: Reminding,
    /// The cursor after this chunk; `None`: the last chunk (the cursor is removed).
    next: Option<String>,
    messages: Vec<outbox::Ready>,
}

/// Prepares the next chunk of reminders on `v`; `None`: nothing to do.
pub fn prepare<V: View>(v: &V, r: &Reminders, limit: usize, now: DateTime<Utc>) -> Result<Option<Chunk>, StoreError> {
    let Some((key, from)) = v.docs::<Reminding>(REMINDING, "", "", 1)?.into_iter().next() else {
        return Ok(None);
    };
    let page = assign::of_warning(v, &from.warning_id, &from.after, limit)?;
    let mut messages = Vec::new();
    for a in &page {
        let Some((e, to)) = remindable(v, a)? else { continue };
        let mut data = task_json(&r.defaults, &e, a);
        if let (Some(d), Some(c)) = (data.as_object_mut(), from.common.as_object()) {
            for (k, val) in c {
                d.insert(k.clone(), val.clone());
            }
        }
        data["event"] = json!("measures_reminder");
        data["recipient"] = json!({ "name": to.name });
        data["ack_url"] = json!(r.ack_url(a));
        data["received"] = json!(a.has(AckStep::Received));
        let region = match &a.party {
            Party::Enterprise { county, .. } => Some(*county),
            _ => None,
        };
        let notice = AssignmentNotice {
            assignment_id: a.key.clone(),
            kind: format!("republish-{}", from.n),
            to,
            template: "measures_reminder".into(),
            data,
            region,
        };
        messages.push(outbox::ready(assignment_message(now, notice)));
    }
    let next = match page.last() {
        Some(last) if page.len() >= limit => Some(last.key.clone()),
        _ => None,
    };
    Ok(Some(Chunk { key, from, next, messages }))
}

/// Queues a prepared chunk and moves the cursor on (or removes it after the last), in this
/// transaction. Returns the reminders newly queued, or `None` when the cursor is no longer where the
/// chunk was prepared from (done meanwhile): nothing is written, prepare again.
pub fn apply(tx: &mut Tx<'_>, chunk: Chunk) -> Result<Option<u64>, StoreError> {
    match tx.doc::<Reminding>(REMINDING, &chunk.key)? {
        Some(f) if f == chunk.from => {}
        _ => return Ok(None),
    }
    let queued = outbox::enqueue_ready(tx, chunk.messages)? as u64;
    match chunk.next {
        Some(after) => tx.put_doc(
            REMINDING,
            &chunk.key,
            &Reminding {
                after,
                queued: chunk.from.queued + queued,
                ..chunk.from
            },
        )?,
        None => tx.remove_doc(REMINDING, &chunk.key)?,
    }
    if queued > 0 {
        if let Some(mut kept) = tx.doc::<Republication>(REPUBLICATIONS, &chunk.key)? {
            kept.reminders += queued;
            tx.put_doc(REPUBLICATIONS, &chunk.key, &kept)?;
        }
        tx.bump("republish_reminders", queued)?;
    }
    Ok(Some(queued))
}

/// Queues the waiting reminders chunk by chunk (at most [`CHUNKS_PER_PASS`] chunks of `limit`),
/// each prepared on a snapshot off the writer; returns how many were queued.
pub async fn remind(store: &Store, r: &Reminders, limit: usize, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let mut total = 0;
    for _ in 0..CHUNKS_PER_PASS {
        let (s, rr) = (store.clone(), r.clone());
        let chunk = tokio::task::spawn_blocking(move || s.read(|v| prepare(v, &rr, limit, now)))
            .await
            .map_err(|e| StoreError::Refused(format!("preparing reminders: {e}")))??;
        let Some(chunk) = chunk else { break };
        // `None`: the cursor moved meanwhile (another pass): prepare afresh.
        total += store.write(move |tx| apply(tx, chunk)).await?.unwrap_or(0);
    }
    Ok(total)
}

/// Re-publishes every current warning that is due at `now`; returns how many.
pub async fn run_once(engine: &Engine, esc: &Arc<Escalation>, now: DateTime<Utc>) -> Result<usize, StoreError> {
    let current: Vec<Warning> = engine.store.read(|r| {
        Ok(r.region_states()?
            .into_iter()
            .chain(r.drill_states()?)
            .filter_map(|(_, s)| s.warning)
            .filter(|w| w.status == Status::Active)
            .collect())
    })?;
    let mut made = 0;
    for w in current {
        let Some(pb) = playbook_of(engine, &w) else { continue };
        if !pb.republish.contains_key(w.level.id.as_str()) {
            continue;
        }
        let due = engine
            .store
            .read(|r| Ok(next(&r.warning_history(&w.id)?, &w, &pb).is_some_and(|(at, _, _)| at <= now)))?;
        if !due {
            continue;
        }
        // The re-publication's job: its warning and level; what is logged while it runs carries them.
        let span = tracing::info_span!("job", kind = "republish", warning = %w.id, level = %w.level.id);
        let count = engine.store.read(|r| count_remindable(r, &w.id))?;
        let (esc, id) = (esc.clone(), w.id.clone());
        if engine
            .store
            .write(move |tx| republish(tx, &esc, &pb, &id, count, now))
            .instrument(span.clone())
            .await?
        {
            span.in_scope(|| tracing::info!(remindable = count, "warning published again"));
            made += 1;
        }
    }
    let span = tracing::info_span!("job", kind = "republish_reminders");
    let queued = remind(&engine.store, &Reminders::of(esc), CHUNK, now)
        .instrument(span.clone())
        .await?;
    if queued > 0 {
        span.in_scope(|| tracing::info!(reminders = queued, "re-publication reminders queued"));
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::region::Regions;
    use crate::engine::assign::AssignStage;
    use crate::engine::assign::tests::{issued, step as issue, store_with_list};
    use crate::notify::outbox::all_messages;

    fn reminders() -> Reminders {
        Reminders {
            defaults: Arc::new(crate::registry::shanxi_defaults().clone()),
            tokens: TokenKey::new([7; 32]),
            public_url: "https://hazeflow.example.cn".into(),
        }
    }

    async fn start(store: &Store, warning: &str, n: u32) {
        let (warning, key) = (warning.to_string(), format!("{warning}.{n:03}"));
        store
            .write(move |tx| {
                tx.put_doc(
                    REMINDING,
                    &key,
                    &Reminding {
                        warning_id: warning.clone(),
                        n,
                        after: String::new(),
                        queued: 0,
                        common: json!({ "warning_id": warning, "n": n }),
                    },
                )
            })
            .await
            .unwrap();
    }

    fn reminded(store: &Store) -> Vec<String> {
        let mut to: Vec<String> = store
            .read(all_messages)
            .unwrap()
            .into_iter()
            .filter(|m| m.template == "measures_reminder")
            .map(|m| m.id)
            .collect();
        to.sort();
        to
    }

    #[tokio::test]
    async fn reminders_go_out_a_chunk_at_a_time_each_once_across_a_restart_and_stale_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let (store, who) = store_with_list(dir.path()).await;
        let r = reminders();
        let stage = Arc::new(AssignStage {
            defaults: r.defaults.clone(),
            regions: Regions::shanxi(),
            on_round: Vec::new(),
        });
        issue(&store, &stage, 140100, issued("140100-T-1", "orange")).await;
        let enterprises = who.len();
        assert!(enterprises >= 4);
        let now = Utc::now();
        start(&store, "140100-T-1", 1).await;

        // One chunk of one assignment at a time: the first, then one prepared twice (the second copy
        // is stale and writes nothing).
        let mut done = 0;
        while reminded(&store).is_empty() {
            let c = store.read(|v| prepare(v, &r, 1, now)).unwrap().expect("a chunk");
            done += 1;
            assert!(store.write(move |tx| apply(tx, c)).await.unwrap().is_some());
        }
        assert_eq!(reminded(&store).len(), 1);
        let again = store.read(|v| prepare(v, &r, 1, now)).unwrap().expect("a chunk");
        let copy = store.read(|v| prepare(v, &r, 1, now)).unwrap().expect("a chunk");
        assert!(store.write(move |tx| apply(tx, again)).await.unwrap().is_some());
        assert_eq!(store.write(move |tx| apply(tx, copy)).await.unwrap(), None);
        // A chunk prepared and never written (the daemon stopped), then a restart: the store is
        // opened again and goes on from its cursor.
        let lost = store.read(|v| prepare(v, &r, 1, now)).unwrap().expect("a chunk");
        drop(lost);
        store.close();
        drop(store);
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let cursor = store
            .read(|v| v.doc::<Reminding>(REMINDING, "140100-T-1.001"))
            .unwrap()
            .expect("the cursor");
        assert!(!cursor.after.is_empty() && cursor.queued >= 1, "{cursor:?}");
        // The rest, through the loop's passes, in chunks of one.
        let before = reminded(&store).len();
        let queued = remind(&store, &r, 1, now).await.unwrap();
        assert_eq!(before as u64 + queued, enterprises as u64, "{done} chunks before");
        assert!(store.read(|v| v.doc::<Reminding>(REMINDING, "140100-T-1.001")).unwrap().is_none());
        // Each enterprise once, and nothing more from a further pass.
        let ids = reminded(&store);
        assert_eq!(ids.len(), enterprises, "{ids:#?}");
        for (uscc, _) in &who {
            assert_eq!(ids.iter().filter(|id| id.contains(uscc.as_str())).count(), 1, "{uscc}: {ids:#?}");
        }
        assert_eq!(remind(&store, &r, 1, now).await.unwrap(), 0);
        // The same chunking again (the cursor written anew, as a second transaction might): the outbox
        // holds every id already, nothing is queued twice.
        start(&store, "140100-T-1", 1).await;
        assert_eq!(remind(&store, &r, 2, now).await.unwrap(), 0);
        assert_eq!(reminded(&store).len(), enterprises);
        assert_eq!(store.read(|v| v.counter("republish_reminders")).unwrap(), enterprises as u64);
    }
}
