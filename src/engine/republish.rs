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
//! # Once per interval
//!
//! The interval runs from the latest of: the warning's start, its last level change, its last
//! re-publication (that record's time). The job re-reads the history inside its transaction and writes
//! only when the interval has run out there, so a restart, a second pass or a new leader makes the `n`th
//! re-publication at most once; the record is the durable marker, written with the outbox messages
//! (and a document in `republications`, key `{warning}.{n:03}`, for reading). After a long stop the
//! missed intervals are not made up one by one: one re-publication at once, the next an interval later.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::domain::ack_step::AckStep;
use crate::domain::playbook::Playbook;
use crate::domain::warning::{Event as LifecycleEvent, EventKind, Status, Warning};
use crate::engine::Engine;
use crate::engine::assign::{self, AssignmentStatus, Party};
use crate::engine::escalate::{Escalation, enterprise_recipient, local, task_json};
use crate::notify::{AssignmentNotice, enqueue_for_assignment};
use crate::store::{Collection, Record, RecordBody, StoreError, Tx};

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
    /// Enterprises reminded.
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

/// Re-publishes `warning_id` if due at `now` (in this transaction); returns whether it did.
fn republish(tx: &mut Tx<'_>, esc: &Escalation, pb: &Playbook, warning_id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
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
    // Every enterprise of the warning with measures in force, not yet confirmed in place.
    let mut reminders = 0u64;
    let mut after = String::new();
    loop {
        let batch = assign::of_warning(tx, warning_id, &after, 10_000)?;
        let Some(last) = batch.last() else { break };
        after = last.key.clone();
        for a in batch {
            let Party::Enterprise { uscc, county } = &a.party else { continue };
            if a.status != AssignmentStatus::Active || a.has(AckStep::InPlace) {
                continue;
            }
            let Some(e) = crate::engine::inspect::enterprise_in(tx, uscc)? else {
                continue;
            };
            let Some(to) = enterprise_recipient(&e) else { continue };
            let mut data = task_json(&esc.defaults, &e, &a);
            if let (Some(d), Some(c)) = (data.as_object_mut(), common.as_object()) {
                for (k, v) in c {
                    d.insert(k.clone(), v.clone());
                }
            }
            data["event"] = json!("measures_reminder");
            data["recipient"] = json!({ "name": to.name });
            data["ack_url"] = json!(esc.ack_url(&a));
            data["received"] = json!(a.has(AckStep::Received));
            let notice = AssignmentNotice {
                assignment_id: a.key.clone(),
                kind: format!("republish-{n}"),
                to,
                template: "measures_reminder".into(),
                data,
                region: Some(*county),
            };
            reminders += u64::from(enqueue_for_assignment(tx, now, notice)?);
        }
    }
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
        reminders,
        exercise: w.exercise,
    };
    tx.put_doc(REPUBLICATIONS, &format!("{}.{n:03}", w.id), &kept)?;
    tx.bump("republications", 1)?;
    tx.bump("republish_reminders", reminders)?;
    Ok(true)
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
        let (esc, id) = (esc.clone(), w.id.clone());
        if engine.store.write(move |tx| republish(tx, &esc, &pb, &id, now)).await? {
            made += 1;
        }
    }
    Ok(made)
}
