//! The consultation's record (会商意见): duty staff record who met, their analysis and their conclusion
//! per region ([`crate::domain::opinion`]); a change or a rejection of a proposal still awaiting
//! sign-off takes effect on it in the same transaction.
//!
//! In: a consultation's seq and what was typed. Out: the document of `consultation_opinions` (key: the
//! consultation's seq), the record `consultation_opinion_recorded` (proposal and decision side by side),
//! lifecycle events for the changed or rejected proposals (a `proposed` with the meeting's level and
//! period, a `replanned` to match; or a `withdrawn`), run through the stages like every lifecycle
//! event (the approval form follows; the signers hear of a changed proposal), and the meeting's
//! conclusion and analysis on the open approval forms of those regions.

use chrono::Utc;

use crate::domain::approval::Meeting;
use crate::domain::assess::{Plan, Step};
use crate::domain::level::Ranked;
use crate::domain::opinion::{Decision, Opinion, OpinionInput, validate};
use crate::domain::playbook::SignOff;
use crate::domain::warning::{Event as LifecycleEvent, EventKind, Status};
use crate::engine::approval::{FORMS, forms_of};
use crate::engine::{Engine, EngineError, record_events};
use crate::store::events::{ApprovalFormChanged, Event};
use crate::store::{Collection, RecordBody, seq_key};

/// Records of consultations, key: the consultation's seq (12 digits).
pub const OPINIONS: Collection = Collection::ConsultationOpinions;

/// The record of a consultation, if one was made.
pub fn opinion<V: crate::store::View>(v: &V, consultation: u64) -> Result<Option<Opinion>, crate::store::StoreError> {
    v.doc(OPINIONS, &seq_key(consultation))
}

/// The consultation whose record (会商意见) a sign-off of `warning` waits for: the one that proposed
/// what awaits signing (its open, unsigned form's), while that consultation has no record. The playbook
/// decides whether it waits (`record_before_sign`). `None`: nothing to wait for.
pub fn record_awaited<V: crate::store::View>(v: &V, warning: &str) -> Result<Option<u64>, crate::store::StoreError> {
    let seq = crate::engine::approval::forms_of(v, warning)?
        .into_iter()
        .rev()
        .find(|f| f.void.is_none() && !f.signed() && f.consultation.is_some())
        .and_then(|f| f.consultation);
    match seq {
        Some(seq) if opinion(v, seq)?.is_none() => Ok(Some(seq)),
        _ => Ok(None),
    }
}

impl Engine {
    /// Records the meeting's record of consultation `seq`. Refused: an unknown consultation (404), one
    /// already recorded (409), bad fields (400, each named), a change or rejection of a proposal that
    /// is no longer awaiting sign-off or of a consultation that a later one has replaced (409).
    pub async fn record_opinion(&self, seq: u64, input: OpinionInput, by: &str) -> Result<Opinion, EngineError> {
        let now = self.clock.now();
        let set = self.playbooks.live();
        let me = self.snapshot();
        let by = by.to_string();
        let who = by.clone();
        let r = self
            .store
            .write(move |tx| {
                let c = tx
                    .consultation(seq)?
                    .ok_or_else(|| EngineError::NotFound(format!("no consultation {seq}")))?;
                if opinion(tx, seq)?.is_some() {
                    return Err(EngineError::Conflict(format!("consultation {seq} has its record already")));
                }
                // A drill's consultation (演练) is recorded the same way, for its drill lanes.
                let exercise = c.exercise;
                let rank = |region, level: &str| {
                    let state = tx.lane_state(region, exercise).ok()?;
                    let pb = me.playbook_for(&set, region, &state)?;
                    pb.level(level).map(|l| l.rank)
                };
                let time = |s: &str| crate::domain::forecast::parse_time(s).map(|t| t.with_timezone(&Utc));
                let mut o = validate(&input, seq, &c.assessments, rank, time, &by, now).map_err(|e| EngineError::BadInput(e.join("; ")))?;
                o.exercise = exercise;
                // The latest consultation of its own kind (a drill's never replaces a real one, nor
                // the reverse).
                let latest = tx.consultations(50)?.iter().find(|c| c.exercise == exercise).map_or(0, |c| c.seq);
                // Decide everything first: a job must not fail after it has written.
                let mut plans = Vec::new();
                for (i, k) in o.conclusions.iter().enumerate() {
                    if k.decision == Decision::Accept {
                        continue;
                    }
                    let field = format!("conclusions[{i}] (region {})", k.region);
                    if latest != seq {
                        return Err(EngineError::Conflict(format!(
                            "{field}: consultation {latest} came after {seq}; change or reject its proposal in its record"
                        )));
                    }
                    let state = tx.lane_state(k.region, exercise)?;
                    let Some(w) = state.live().cloned() else {
                        return Err(EngineError::Conflict(format!("{field}: no proposal awaits sign-off")));
                    };
                    let pb = me
                        .playbook_for(&set, k.region, &state)
                        .ok_or_else(|| EngineError::Conflict(format!("{field}: no playbook governs the region")))?;
                    let pending = w.status == Status::Pending;
                    if !pending && w.pending_change.is_none() {
                        return Err(EngineError::Conflict(
                            format!(
                                "{field}: warning {} is {:?}, nothing awaits sign-off; adjust or lift it instead",
                                w.id, w.status
                            )
                            .to_lowercase(),
                        ));
                    }
                    let event = |reason: String, kind: EventKind| LifecycleEvent {
                        region: k.region,
                        at: now,
                        actor: by.clone(),
                        reason,
                        forecast_id: None,
                        playbook: w.playbook.clone(),
                        kind,
                        exercise,
                    };
                    let mut events = Vec::new();
                    match k.decision {
                        Decision::Reject if pending => {
                            events.push(event(format!("会商否决建议：{}", k.reason), EventKind::Withdrawn));
                        }
                        Decision::Reject => {
                            events.push(event(format!("会商否决升级建议：{}", k.reason), EventKind::ChangeWithdrawn));
                        }
                        Decision::Change => {
                            let level = pb
                                .level(&k.level)
                                .ok_or_else(|| EngineError::BadInput(format!("conclusions[{i}].level: undefined level \"{}\"", k.level)))?;
                            let ranked = Ranked::new(level.id.clone(), level.rank);
                            let (from, until) = (k.from.unwrap_or(now), k.until.unwrap_or(w.expected_end));
                            let needs = match &level.sign_off {
                                SignOff::Role(r) => r.clone(),
                                SignOff::Auto => String::new(),
                            };
                            let reason = format!("会商调整建议为{}：{}", level.name, k.reason);
                            if pending {
                                events.push(event(
                                    reason,
                                    EventKind::Proposed {
                                        id: w.id.clone(),
                                        level: ranked.clone(),
                                        start: from,
                                        expected_end: until,
                                        rule: None,
                                        needs,
                                        reopened: false,
                                        plan: vec![Step {
                                            at: from,
                                            level: ranked.clone(),
                                        }],
                                    },
                                ));
                            } else {
                                events.push(event(
                                    reason,
                                    EventKind::ChangeProposed {
                                        level: ranked.clone(),
                                        expected_end: until,
                                        rule: None,
                                        needs,
                                        effective: Some(from),
                                    },
                                ));
                            }
                            // The timeline the meeting concluded, so that the sign-off follows it.
                            let mut plan = w.plan.clone().unwrap_or(Plan {
                                from,
                                until,
                                steps: Vec::new(),
                                end: until,
                                days: Vec::new(),
                            });
                            if pending {
                                plan.steps = vec![Step { at: from, level: ranked }];
                                plan.from = plan.from.min(from);
                                plan.until = plan.until.max(until);
                                plan.end = until;
                            } else {
                                plan.steps.retain(|s| s.at < from);
                                plan.steps.push(Step { at: from, level: ranked });
                                plan.end = until;
                                plan.until = plan.until.max(until);
                            }
                            events.push(event(
                                "会商意见确定的时间安排".into(),
                                EventKind::Replanned { plan, expected_end: until },
                            ));
                        }
                        Decision::Accept => {}
                    }
                    plans.push((k.region, state, pb, events));
                }
                tx.append(
                    now,
                    &by,
                    None,
                    RecordBody::Other(Event::ConsultationOpinionRecorded(Box::new(o.clone()))),
                )?;
                tx.put_doc(OPINIONS, &seq_key(seq), &o)?;
                for (_, mut state, pb, events) in plans {
                    for e in &events {
                        state.apply(e);
                    }
                    record_events(tx, now, &events, &state, &pb, &me.stages)?;
                }
                // The open forms of the regions concluded carry the meeting's conclusion and analysis.
                for k in &o.conclusions {
                    let state = tx.lane_state(k.region, exercise)?;
                    let proposed_level_name = me
                        .playbook_for(&set, k.region, &state)
                        .and_then(|pb| pb.level(&k.proposed.level).map(|l| l.name.clone()))
                        .unwrap_or_else(|| "无".into());
                    let Some(w) = state.warning else { continue };
                    for mut f in forms_of(tx, &w.id)? {
                        if f.void.is_some() || f.completed_at.is_some() {
                            continue;
                        }
                        f.meeting = Some(Meeting {
                            consultation: seq,
                            decision: k.decision,
                            proposed_level: k.proposed.level.clone(),
                            proposed_level_name: proposed_level_name.clone(),
                            reason: k.reason.clone(),
                        });
                        f.consultation = Some(seq);
                        if f.weather.is_empty() {
                            f.weather.clone_from(&o.weather);
                        }
                        if f.trend.is_empty() {
                            f.trend.clone_from(&o.trend);
                        }
                        tx.put_doc(FORMS, &format!("{}/{:03}", f.warning_id, f.n), &f)?;
                        tx.append(
                            now,
                            &by,
                            None,
                            RecordBody::Other(Event::ApprovalFormChanged(ApprovalFormChanged {
                                change: "meeting".into(),
                                form: Box::new(f),
                            })),
                        )?;
                    }
                }
                Ok(o)
            })
            .await;
        match &r {
            Ok(o) => {
                let changed = o.conclusions.iter().filter(|c| c.decision != Decision::Accept).count();
                tracing::info!(actor = %who, action = "record consultation opinion", subject = %format!("consultation {seq}"), changed, "recorded");
            }
            Err(e) => {
                tracing::warn!(actor = %who, action = "record consultation opinion", subject = %format!("consultation {seq}"), error = %e, "refused")
            }
        }
        r
    }
}
