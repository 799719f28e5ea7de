//! Who is told what: the [`NotifyStage`] turns lifecycle events into outbox messages, in the same
//! transaction that records the events.
//!
//! In: lifecycle events (from the engine), the roster's `notify:` mapping (event → audiences and
//! template), the webhook endpoints (event → endpoints). Out: [`OutboxMessage`]s, one per person and
//! channel, with ids `{record seq}-{person id}-email` and `{record seq}-{endpoint id}-webhook`, so the
//! same event never queues the same message twice.
//!
//! A proposal awaiting sign-off is re-proposed by every consultation that still calls for it (its
//! earliest start moves with the clock by the lead time). Such a re-proposal — same level, same start
//! and end once the clock is allowed for, still pending — takes the seq of the record that first
//! proposed it, so its messages are the ones queued already and nobody hears of it twice (someone who
//! came on shift since does hear of it, once). Another level, start or end is a new proposal and is
//! told again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Asia::Shanghai;
use serde_json::{Value, json};

use super::Files;
use super::outbox::{self, Channel, OutboxMessage, Recipient};
use super::roster::{Person, Roster};
use super::templates::Templates;
use crate::domain::playbook::Playbook;
use crate::domain::region::{RegionCode, Regions};
use crate::domain::warning::{Event, EventKind, RegionState, Status};
use crate::store::Stage;
use crate::store::{Record, RecordBody, StoreError, Tx};

/// A webhook endpoint's subscription.
#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    pub(crate) id: String,
    pub(crate) events: BTreeSet<String>,
    pub(crate) regions: Vec<RegionCode>,
}

/// The notification stage. Build it with [`super::build`]; other stages reach the roster and the
/// outbox through it ([`NotifyStage::notify_event`], [`NotifyStage::roster`]).
#[derive(Debug)]
pub struct NotifyStage {
    /// The roster and templates live now; a reload replaces them whole.
    pub(crate) files: RwLock<Arc<Files>>,
    pub(crate) subscriptions: Vec<Subscription>,
    pub(crate) regions: &'static Regions,
    pub(crate) public_url: String,
}

/// An event to tell people about (a lifecycle event, a delivery failure, or another stage's event
/// such as an overdue acknowledgement).
#[derive(Debug, Clone)]
pub struct EventNotice<'a> {
    /// The event name of the roster's `notify:` mapping (`issued`, `delivery_failed`, …).
    pub event: &'a str,
    /// The region it concerns: whose duty staff, whose signer.
    pub region: RegionCode,
    /// Unique per cause (the seq of the log record behind it): messages are `{key}-{person}-email`.
    pub key: String,
    /// The warning id, assignment id or message id behind it.
    pub cause: &'a str,
    /// Template context; each message adds `recipient` (and webhooks `recipients`).
    pub data: Value,
    /// The role the event waits for (audience `signer`).
    pub signer_role: Option<&'a str>,
    /// A recipient key to leave out (the person whose message failed).
    pub exclude: Option<&'a str>,
    /// The playbook, for role titles.
    pub playbook: Option<&'a Playbook>,
}

/// The name a lifecycle event has in the roster's `notify:` mapping: its kind (`issued`), except a decided
/// change, which is `change_scheduled`, `lift_scheduled` or (before the start) `cancel_scheduled`.
pub fn notice_name(e: &Event, state: &RegionState) -> String {
    match &e.kind {
        EventKind::Scheduled { to: Some(_), .. } => "change_scheduled".into(),
        EventKind::Scheduled { to: None, effective, .. } => {
            let before_start = state
                .warning
                .as_ref()
                .is_some_and(|w| w.status == Status::Cancelled || (w.status == Status::Issued && *effective <= w.start));
            if before_start { "cancel_scheduled" } else { "lift_scheduled" }.into()
        }
        kind => event_name(kind),
    }
}

/// The name an event kind has in the log (`level_changed`).
pub fn event_name(kind: &EventKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.get("kind").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default()
}

/// Local time as people read it: `2026年12月2日 00:00`.
pub fn local(t: DateTime<Utc>) -> String {
    t.with_timezone(&Shanghai).format("%Y年%-m月%-d日 %H:%M").to_string()
}

fn role_title(pb: Option<&Playbook>, role: &str) -> String {
    if let Some(r) = pb.and_then(|p| p.role(role)) {
        return r.name.clone();
    }
    match role {
        "duty_officer" => "值班员",
        "deputy_head" => "分管负责同志",
        "head" => "主要负责同志",
        _ => role,
    }
    .to_string()
}

fn person_json(p: &Person, pb: Option<&Playbook>) -> Value {
    json!({ "name": p.name, "role": p.role, "role_title": role_title(pb, &p.role), "email": p.email, "phone": p.phone, "region": p.region })
}

impl NotifyStage {
    /// The duty roster live now.
    pub fn roster(&self) -> Arc<Roster> {
        self.files().roster.clone()
    }

    /// The templates live now.
    pub fn templates(&self) -> Arc<Templates> {
        self.files().templates.clone()
    }

    /// The roster and templates live now.
    pub fn files(&self) -> Arc<Files> {
        self.files.read().map_or_else(|p| p.into_inner().clone(), |g| g.clone())
    }

    /// Puts new files live (a reload: messages queued from now on follow the new roster; messages
    /// not yet sent are rendered with the new templates). Returns false when they are the same as
    /// the live ones, by content.
    pub fn replace(&self, files: Files) -> bool {
        let mut live = self.files.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let changed = !live.same_as(&files);
        *live = Arc::new(files);
        changed
    }

    /// Queues, in the caller's transaction, the messages an event causes: one email per person its
    /// route reaches, one POST per subscribed endpoint. Returns how many were new.
    pub fn notify_event(&self, tx: &mut Tx<'_>, now: DateTime<Utc>, n: EventNotice<'_>) -> Result<usize, StoreError> {
        let roster = self.roster();
        let route = roster.route(n.event);
        let people = route
            .map(|r| roster.audience_but(r, n.region, now, n.signer_role, n.exclude))
            .unwrap_or_default();
        let mut queued = 0;
        let Some(route) = route else { return Ok(0) };
        for p in &people {
            let mut data = n.data.clone();
            data["recipient"] = person_json(p, n.playbook);
            let msg = OutboxMessage::new(
                &format!("{}-{}-email", n.key, p.id),
                Channel::Email,
                Recipient {
                    key: p.id.clone(),
                    name: p.name.clone(),
                    address: p.email.clone(),
                },
                &route.template,
                data,
                n.cause,
                Some(n.region),
                now,
            );
            queued += usize::from(outbox::enqueue_new(tx, msg)?);
        }
        if people.is_empty() && !route.to.is_empty() {
            tracing::warn!(event = n.event, region = %n.region, "nobody on the roster to tell (no one on duty at any tier)");
            tx.bump("notify_nobody_to_tell", 1)?;
        }
        for s in self.subscriptions.iter().filter(|s| s.events.contains(n.event)) {
            if !s.regions.is_empty() && !s.regions.iter().any(|r| self.regions.is_within(n.region, *r)) {
                continue;
            }
            let mut data = n.data.clone();
            data["recipients"] = Value::Array(people.iter().map(|p| person_json(p, n.playbook)).collect());
            // A group chat or an SMS gateway fanning out: the greeting is "各位同志：".
            data["recipient"] = json!({ "name": "各位", "role": "", "role_title": "" });
            let msg = OutboxMessage::new(
                &format!("{}-{}-webhook", n.key, s.id),
                Channel::Webhook,
                Recipient {
                    key: s.id.clone(),
                    name: s.id.clone(),
                    address: s.id.clone(),
                },
                &route.template,
                data,
                n.cause,
                Some(n.region),
                now,
            );
            queued += usize::from(outbox::enqueue_new(tx, msg)?);
        }
        Ok(queued)
    }

    /// The template context of a lifecycle event.
    pub fn warning_context(&self, e: &Event, state: &RegionState, pb: &Playbook) -> Value {
        let w = state.warning.as_ref();
        let current = w.map(|w| w.level.id.clone()).unwrap_or_default();
        let (level, from, needs, signer, start, end) = match &e.kind {
            EventKind::Proposed {
                level,
                needs,
                start,
                expected_end,
                ..
            } => (level.id.clone(), None, Some(needs.clone()), None, Some(*start), Some(*expected_end)),
            EventKind::Issued {
                level,
                signer,
                start,
                expected_end,
                ..
            } => (level.id.clone(), None, None, signer.clone(), Some(*start), Some(*expected_end)),
            EventKind::ChangeProposed {
                level,
                needs,
                expected_end,
                ..
            } => (
                level.id.clone(),
                Some(current),
                Some(needs.clone()),
                None,
                None,
                Some(*expected_end),
            ),
            EventKind::LevelChanged {
                from,
                to,
                signer,
                expected_end,
                ..
            } => (to.clone(), Some(from.clone()), None, signer.clone(), None, Some(*expected_end)),
            EventKind::Scheduled { to: Some(to), signer, .. } => (to.clone(), Some(current), None, signer.clone(), None, None),
            EventKind::Scheduled { signer, .. } => (current, None, None, signer.clone(), None, None),
            _ => (current, None, None, None, None, None),
        };
        // When the change takes effect: a decided change's own time, else the event's.
        let at = match &e.kind {
            EventKind::Scheduled { effective, .. } => *effective,
            _ => e.at,
        };
        // When the enterprises and departments hear of a decided end: the lead time before it, or at
        // once when decided later (see the engine's end notices, `notice::queue_end`).
        let parties_told = match &e.kind {
            EventKind::Scheduled { to: None, effective, .. } => (*effective - pb.lead_time).max(e.at),
            _ => e.at,
        };
        let start = start.or(w.map(|w| w.start));
        let end = end.or(w.map(|w| w.expected_end));
        let lv = pb.level(&level);
        let fl = from.as_deref().and_then(|f| pb.level(f));
        let id = w.map(|w| w.id.clone()).unwrap_or_default();
        let mut path: Vec<String> = self
            .regions
            .ancestors(e.region)
            .iter()
            .rev()
            .map(|r| self.regions.name(*r))
            .collect();
        path.push(self.regions.name(e.region));
        let base = self.public_url.trim_end_matches('/');
        json!({
            "event": notice_name(e, state),
            "change": matches!(e.kind, EventKind::ChangeProposed { .. }),
            "warning_id": id,
            "region": e.region,
            "region_name": self.regions.name(e.region),
            "region_full_name": path.concat(),
            "level": level,
            "level_name": lv.map(|l| l.name.clone()).unwrap_or_else(|| level.to_string()),
            "level_colour": lv.map(|l| l.colour.clone()),
            "response": lv.map(|l| l.response.clone()).unwrap_or_default(),
            "from_level": from,
            "from_level_name": fl.map(|l| l.name.clone()),
            "from_response": fl.map(|l| l.response.clone()),
            "needs": needs,
            "needs_title": needs.as_deref().map(|n| role_title(Some(pb), n)),
            "start": start.map(local),
            "expected_end": end.map(local),
            "issued_at": w.and_then(|w| w.issued_at).map(local),
            "at": local(at),
            "decided_at": local(e.at),
            "parties_told_at": local(parties_told),
            "timeline": w.and_then(|w| crate::domain::warning::timeline_of(w, Some(pb))),
            "rule": w.and_then(|w| w.rule.clone()),
            "reason": e.reason,
            "actor": e.actor,
            "signer": signer,
            "playbook": pb.pin(),
            "playbook_name": pb.name,
            "issuer": pb.issuer.name,
            "dashboard_url": format!("{base}/"),
            "warning_url": format!("{base}/warnings/{id}"),
            "exercise": e.exercise,
        })
    }

    fn routes(&self, event: &str) -> bool {
        self.roster().route(event).is_some()
    }
}

/// The log seq of each event, found in the warning's history (the engine appended them just before
/// calling the stages; other stages may have appended records since, so "the last n" would not do).
fn seqs_of(tx: &Tx<'_>, history: &[Record], events: &[Event]) -> Result<Vec<u64>, StoreError> {
    let mut used = BTreeSet::new();
    let mut out = vec![0; events.len()];
    for (i, e) in events.iter().enumerate().rev() {
        let found = history
            .iter()
            .rev()
            .find(|r| !used.contains(&r.seq) && matches!(&r.body, RecordBody::Warning { event, .. } if event == e));
        out[i] = match found {
            Some(r) => {
                used.insert(r.seq);
                r.seq
            }
            None => tx.last_seq()?,
        };
    }
    Ok(out)
}

/// Whether `next` proposes what `prev` proposed, the clock aside: the same level, and the same start
/// and expected end once `prev`'s are moved to the earliest the lead time allows at `next` (a pending
/// proposal's earliest start moves with the clock, so every consultation re-proposes it).
fn same_proposal(prev: &Event, next: &Event, lead_time: Duration) -> bool {
    let earliest = next.at + lead_time;
    match (&prev.kind, &next.kind) {
        (
            EventKind::Proposed {
                level: l1,
                start: s1,
                expected_end: e1,
                ..
            },
            EventKind::Proposed {
                level: l2,
                start: s2,
                expected_end: e2,
                ..
            },
        ) => l1 == l2 && *s2 == (*s1).max(earliest) && *e2 == (*e1).max(earliest),
        (
            EventKind::ChangeProposed {
                level: l1,
                expected_end: e1,
                ..
            },
            EventKind::ChangeProposed {
                level: l2,
                expected_end: e2,
                ..
            },
        ) => l1 == l2 && *e2 == (*e1).max(earliest),
        _ => false,
    }
}

/// Whether the event leaves a pending change of level pending.
fn keeps_pending_change(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Started
            | EventKind::Extended { .. }
            | EventKind::Rescheduled { .. }
            | EventKind::BelowCleared
            | EventKind::DirectiveApplied { .. }
            | EventKind::DirectiveReleased { .. }
    )
}

/// The notice key of each proposal in a warning's history (by seq): the seq of the record that first
/// proposed it. A proposal re-proposed unchanged while it is still pending keeps the key of the first,
/// so its messages have the ids of the first and queuing them again is a no-op; another level, start
/// or end, or a proposal after the warning was issued, withdrawn or lifted, starts a new key.
fn proposal_keys(history: &[Record], lead_time: Duration) -> BTreeMap<u64, u64> {
    let mut keys = BTreeMap::new();
    let mut last: Option<(&Event, u64)> = None;
    for r in history {
        let RecordBody::Warning { event, .. } = &r.body else { continue };
        match &event.kind {
            EventKind::Proposed { .. } | EventKind::ChangeProposed { .. } => {
                let key = match last {
                    Some((prev, key)) if same_proposal(prev, event, lead_time) => key,
                    _ => r.seq,
                };
                keys.insert(r.seq, key);
                last = Some((event, key));
            }
            kind if keeps_pending_change(kind) && last.is_some_and(|(e, _)| matches!(e.kind, EventKind::ChangeProposed { .. })) => {}
            _ => last = None,
        }
    }
    keys
}

impl Stage for NotifyStage {
    fn on_warning_events(
        &self,
        tx: &mut Tx<'_>,
        now: DateTime<Utc>,
        events: &[Event],
        state: &RegionState,
        pb: &Playbook,
    ) -> Result<(), StoreError> {
        let names: Vec<String> = events.iter().map(|e| notice_name(e, state)).collect();
        if !names.iter().any(|n| self.routes(n)) {
            return Ok(());
        }
        let id = state.warning.as_ref().map(|w| w.id.clone()).unwrap_or_default();
        let history = tx.warning_history(&id)?;
        let seqs = seqs_of(tx, &history, events)?;
        let proposals = if events
            .iter()
            .any(|e| matches!(e.kind, EventKind::Proposed { .. } | EventKind::ChangeProposed { .. }))
        {
            proposal_keys(&history, pb.lead_time)
        } else {
            BTreeMap::new()
        };
        for ((e, name), seq) in events.iter().zip(&names).zip(seqs) {
            if !self.routes(name) {
                continue;
            }
            let needs = match &e.kind {
                EventKind::Proposed { needs, .. } | EventKind::ChangeProposed { needs, .. } => Some(needs.as_str()),
                _ => None,
            };
            let data = self.warning_context(e, state, pb);
            let notice = EventNotice {
                event: name,
                region: e.region,
                key: proposals.get(&seq).copied().unwrap_or(seq).to_string(),
                cause: &id,
                data,
                signer_role: needs,
                exclude: None,
                playbook: Some(pb),
            };
            self.notify_event(tx, now, notice)?;
        }
        Ok(())
    }
}

/// A notice about an assignment (an enterprise's measures, a department's duties, a reminder), for
/// the assignments stage to queue with [`enqueue_for_assignment`].
#[derive(Debug, Clone)]
pub struct AssignmentNotice {
    /// The assignment's id (the cause).
    pub assignment_id: String,
    /// What this notice is, unique per assignment: `issued`, `changed`, `reminder-1`, `lifted`.
    pub kind: String,
    /// The enterprise's or department's contact: `key` its stable id, `address` its email.
    pub to: Recipient,
    /// Template name in `playbooks/templates/notify/` (e.g. `assignment_issued`).
    pub template: String,
    /// Template context: enterprise, measures line by line, period, deadline, acknowledgement link.
    pub data: Value,
    /// The region (a final delivery failure alerts its duty staff).
    pub region: Option<RegionCode>,
}

/// Queues one email about an assignment in the caller's transaction (the assignments stage calls it
/// inside its own `Stage::on_warning_events`, so the notice commits with the assignment). The message
/// id is `{assignment id}.{kind}-{contact key}-email`: the same notice queued twice is one message.
/// Returns true when it was new. Delivery, retries, the delivery log and the failure alert to duty
/// staff are the same as for every other message. For "tell the county's duty staff" (an overdue
/// acknowledgement), use [`NotifyStage::notify_event`] with an event of the roster's mapping.
pub fn enqueue_for_assignment(tx: &mut Tx<'_>, now: DateTime<Utc>, notice: AssignmentNotice) -> Result<bool, StoreError> {
    outbox::enqueue_new(tx, assignment_message(now, notice))
}

/// The message [`enqueue_for_assignment`] queues (for callers that prepare many off the writer and
/// queue them with [`outbox::enqueue_ready`]).
pub fn assignment_message(now: DateTime<Utc>, notice: AssignmentNotice) -> OutboxMessage {
    let id = format!("{}.{}-{}-email", notice.assignment_id, notice.kind, notice.to.key);
    OutboxMessage::new(
        &id,
        Channel::Email,
        notice.to,
        &notice.template,
        notice.data,
        &notice.assignment_id,
        notice.region,
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::forecast::parse_time;
    use crate::domain::level::Ranked;

    fn t(s: &str) -> DateTime<Utc> {
        parse_time(s).unwrap().with_timezone(&Utc)
    }

    fn record(seq: u64, at: &str, kind: EventKind) -> Record {
        Record {
            seq,
            recorded_at: t(at),
            actor: "consultation".into(),
            playbook: None,
            body: RecordBody::Warning {
                warning_id: "140100-20261201-1".into(),
                event: Event {
                    region: RegionCode::parse("140100").unwrap(),
                    at: t(at),
                    actor: "consultation".into(),
                    reason: String::new(),
                    forecast_id: None,
                    playbook: "taiyuan@2026.1".into(),
                    kind,
                    exercise: false,
                },
            },
        }
    }

    fn proposed(level: &str, start: &str, end: &str) -> EventKind {
        EventKind::Proposed {
            id: "140100-20261201-1".into(),
            level: Ranked::new(level, 2),
            start: t(start),
            expected_end: t(end),
            rule: None,
            needs: "deputy_head".into(),
            reopened: false,
            plan: Vec::new(),
        }
    }

    fn change(level: &str, end: &str) -> EventKind {
        EventKind::ChangeProposed {
            level: Ranked::new(level, 3),
            expected_end: t(end),
            rule: None,
            needs: "head".into(),
            effective: None,
        }
    }

    #[test]
    fn a_proposal_re_proposed_unchanged_keeps_the_key_of_the_first_and_a_change_starts_a_new_one() {
        let lead = Duration::hours(24);
        let history = [
            // 15:00 orange from tomorrow 15:00 (the lead time), re-proposed at 16:00 and the next
            // morning: the start follows the clock, nothing else changed.
            record(10, "2026-12-01 15:00", proposed("orange", "2026-12-02 15:00", "2026-12-04 00:00")),
            record(12, "2026-12-01 16:00", proposed("orange", "2026-12-02 16:00", "2026-12-04 00:00")),
            record(14, "2026-12-02 10:00", proposed("orange", "2026-12-03 10:00", "2026-12-04 00:00")),
            // A longer episode is a change; so is another level, and the first level again after it.
            record(16, "2026-12-02 16:00", proposed("orange", "2026-12-03 16:00", "2026-12-05 00:00")),
            record(18, "2026-12-02 17:00", proposed("yellow", "2026-12-03 17:00", "2026-12-05 00:00")),
            record(20, "2026-12-02 18:00", proposed("orange", "2026-12-03 18:00", "2026-12-05 00:00")),
            // Signed; then an upgrade awaits the head, re-proposed across the start of the warning.
            record(21, "2026-12-02 18:30", EventKind::Started),
            record(22, "2026-12-04 09:00", change("red", "2026-12-07 00:00")),
            record(23, "2026-12-04 10:00", EventKind::Started),
            record(24, "2026-12-04 16:00", change("red", "2026-12-07 00:00")),
            // Withdrawn, then proposed again: new.
            record(25, "2026-12-05 09:00", EventKind::ChangeWithdrawn),
            record(26, "2026-12-05 16:00", change("red", "2026-12-07 00:00")),
        ];
        let keys = proposal_keys(&history, lead);
        let got: Vec<(u64, u64)> = keys.into_iter().collect();
        assert_eq!(
            got,
            [
                (10, 10),
                (12, 10),
                (14, 10),
                (16, 16),
                (18, 18),
                (20, 20),
                (22, 22),
                (24, 22),
                (26, 26)
            ]
        );
    }
}
