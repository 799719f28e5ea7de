//! Approval forms (审批表, domain.md §2.5): every decision to issue, adjust or lift a warning opens
//! one, in the same transaction as the decision ([`ApprovalStage`], a [`Stage`]); duty staff complete
//! it (不利气象条件、趋势分析、应急措施), the signature of the warning signs it, and the office records the
//! relay to the departments. Two deadlines from the governing playbook (`approval_form_hours` after
//! the decision, `relay_hours` after the signature) are durable timers of
//! [`crate::engine::escalate`] (reminder, overdue report, escalation up the chain, timing per level
//! from the measure defaults).
//!
//! In: lifecycle events, the meeting's record ([`crate::engine::opinion`]), duty staff's forms. Out:
//! documents of the collection `approval_forms` (key `{warning}/{n:03}`), `approval_form_changed`
//! records, timers.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::domain::approval::{ApprovalForm, FormKind, FormStage};
use crate::domain::level::LevelId;
use crate::domain::playbook::{Playbook, SignOff};
use crate::domain::warning::{Event as LifecycleEvent, EventKind, RegionState};
use crate::engine::escalate;
use crate::engine::{Engine, EngineError};
use crate::registry::Defaults;
use crate::store::events::{ApprovalFormChanged, Event};
use crate::store::{Collection, RecordBody, Stage, StoreError, Tx, View};

/// Approval forms, key `{warning id}/{n:03}`.
pub const FORMS: Collection = Collection::ApprovalForms;

fn key_of(warning: &str, n: u32) -> String {
    format!("{warning}/{n:03}")
}

/// The key of a form id (`{warning}.{n}`).
fn key_of_id(id: &str) -> Option<String> {
    let (w, n) = id.rsplit_once('.')?;
    Some(key_of(w, n.parse().ok()?))
}

/// A page of the forms of real warnings (`exercise`: of drills instead), by warning id then number,
/// after the form id `after`: at most `limit`.
pub fn page_of<V: View>(v: &V, after: Option<&str>, limit: usize, exercise: bool) -> Result<Vec<ApprovalForm>, StoreError> {
    let mut key = after.and_then(key_of_id).unwrap_or_default();
    let mut out = Vec::new();
    let chunk = limit.clamp(1, 500);
    loop {
        let docs: Vec<(String, ApprovalForm)> = v.docs(FORMS, "", &key, chunk)?;
        let last = docs.len() < chunk;
        if let Some((k, _)) = docs.last() {
            key.clone_from(k);
        }
        out.extend(docs.into_iter().map(|(_, f)| f).filter(|f| f.exercise == exercise));
        if last || out.len() >= limit {
            out.truncate(limit);
            return Ok(out);
        }
    }
}

/// A form by id.
pub fn form<V: View>(v: &V, id: &str) -> Result<Option<ApprovalForm>, StoreError> {
    match key_of_id(id) {
        Some(k) => v.doc(FORMS, &k),
        None => Ok(None),
    }
}

/// The forms of a warning, in order.
pub fn forms_of<V: View>(v: &V, warning: &str) -> Result<Vec<ApprovalForm>, StoreError> {
    Ok(v.docs(FORMS, &format!("{warning}/"), "", usize::MAX)?
        .into_iter()
        .map(|(_, f)| f)
        .collect())
}

fn save(tx: &mut Tx<'_>, now: DateTime<Utc>, actor: &str, change: &str, f: &ApprovalForm) -> Result<(), StoreError> {
    tx.put_doc(FORMS, &key_of(&f.warning_id, f.n), f)?;
    tx.append(
        now,
        actor,
        None,
        RecordBody::Other(Event::ApprovalFormChanged(ApprovalFormChanged {
            change: change.into(),
            form: Box::new(f.clone()),
        })),
    )?;
    Ok(())
}

/// Marks form `id` (just signed) as signed without the consultation's record, with the signer's reason.
pub fn signed_without_record(tx: &mut Tx<'_>, now: DateTime<Utc>, actor: &str, id: &str, reason: &str) -> Result<(), StoreError> {
    let Some(mut f) = form(tx, id)? else { return Ok(()) };
    f.without_record = Some(reason.to_string());
    save(tx, now, actor, "signed_without_record", &f)
}

/// The forms of consultation `c`'s proposals that were signed without its record (the reason in
/// `without_record`), of the regions it assessed (their current warnings).
pub fn waived<V: View>(v: &V, c: &crate::store::ConsultationRecord) -> Result<Vec<ApprovalForm>, StoreError> {
    let mut out: Vec<ApprovalForm> = Vec::new();
    for a in &c.assessments {
        let Some(w) = v.lane_state(a.region, c.exercise)?.warning else {
            continue;
        };
        for f in forms_of(v, &w.id)? {
            if f.consultation == Some(c.seq) && f.without_record.is_some() && !out.iter().any(|x| x.id == f.id) {
                out.push(f);
            }
        }
    }
    Ok(out)
}

/// The stage that opens, updates, signs and voids forms as the lifecycle decides.
pub struct ApprovalStage {
    /// Reminder and escalation timing per level, the chain.
    pub defaults: Arc<Defaults>,
}

fn level_of(pb: &Playbook, level: &str) -> (String, String) {
    pb.level(level)
        .map(|l| (l.name.clone(), l.response.clone()))
        .unwrap_or_else(|| (level.to_string(), String::new()))
}

fn needs_of(pb: &Playbook, level: &str) -> Option<String> {
    match pb.level(level).map(|l| &l.sign_off) {
        Some(SignOff::Role(r)) => Some(pb.role(r).map_or_else(|| r.clone(), |r| r.name.clone())),
        _ => None,
    }
}

impl ApprovalStage {
    #[allow(clippy::too_many_arguments)]
    fn open(
        &self,
        tx: &mut Tx<'_>,
        now: DateTime<Utc>,
        pb: &Playbook,
        e: &LifecycleEvent,
        warning_id: &str,
        kind: FormKind,
        level: &LevelId,
        from_level: Option<&LevelId>,
        period: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
        effective: Option<DateTime<Utc>>,
        needs: Option<String>,
    ) -> Result<ApprovalForm, StoreError> {
        let n = forms_of(tx, warning_id)?.last().map_or(1, |f| f.n + 1);
        let (level_name, response) = level_of(pb, level);
        // The consultation behind it: the latest of its own kind (a drill's for a drill's form).
        let consultation = if e.actor == "consultation" {
            tx.consultations(50)?.iter().find(|c| c.exercise == e.exercise).map(|c| c.seq)
        } else {
            None
        };
        let mut f = ApprovalForm {
            id: format!("{warning_id}.{n}"),
            warning_id: warning_id.to_string(),
            n,
            kind,
            region: e.region,
            playbook: e.playbook.clone(),
            issuer: pb.issuer.name.clone(),
            level: level.clone(),
            level_name,
            response,
            from_level_name: from_level.map(|l| level_of(pb, l).0),
            period_from: period.0,
            period_until: period.1,
            effective,
            opened_at: now,
            consultation,
            needs: needs.clone(),
            meeting: None,
            weather: String::new(),
            trend: String::new(),
            measures: String::new(),
            form_due: pb.approval_form.map(|d| now + d),
            completed_at: None,
            completed_by: None,
            signer: None,
            signed_at: None,
            relay_due: None,
            relayed_at: None,
            relayed_by: None,
            relay_note: String::new(),
            void: None,
            without_record: None,
            exercise: e.exercise,
        };
        if let Some(due) = f.form_due {
            escalate::schedule_form(tx, &self.defaults, &f, FormStage::Form, now, due)?;
        }
        // A decision without a signer (an automatic downgrade or lift, a directive, an operator's
        // lift) is signed by being made: the relay is due from now.
        if needs.is_none() {
            self.sign(tx, now, pb, &mut f, &e.actor)?;
        }
        save(tx, now, &e.actor, "opened", &f)?;
        Ok(f)
    }

    fn sign(&self, tx: &mut Tx<'_>, now: DateTime<Utc>, pb: &Playbook, f: &mut ApprovalForm, signer: &str) -> Result<(), StoreError> {
        f.signer = Some(signer.to_string());
        f.signed_at = Some(now);
        f.relay_due = pb.relay.map(|d| now + d);
        if let Some(due) = f.relay_due {
            escalate::schedule_form(tx, &self.defaults, f, FormStage::Relay, now, due)?;
        }
        Ok(())
    }

    /// The open (unsigned, not void) form of a kind of this warning.
    fn unsigned(tx: &Tx<'_>, warning: &str, kind: FormKind) -> Result<Option<ApprovalForm>, StoreError> {
        Ok(forms_of(tx, warning)?
            .into_iter()
            .rev()
            .find(|f| f.kind == kind && f.void.is_none() && !f.signed()))
    }
}

impl Stage for ApprovalStage {
    fn on_warning_events(
        &self,
        tx: &mut Tx<'_>,
        now: DateTime<Utc>,
        events: &[LifecycleEvent],
        state: &RegionState,
        pb: &Playbook,
    ) -> Result<(), StoreError> {
        // A drill (演练) opens its forms too, marked `exercise` (its warning's id is the drill's).
        let Some(w) = state.warning.as_ref() else { return Ok(()) };
        let id = w.id.as_str();
        for e in events {
            match &e.kind {
                EventKind::Proposed {
                    level,
                    start,
                    expected_end,
                    needs,
                    ..
                } => match Self::unsigned(tx, id, FormKind::Issue)? {
                    // The same proposal again with another level or period (the meeting's change, a
                    // later consultation): the form follows it, its deadline stays.
                    Some(mut f) => {
                        let (name, response) = level_of(pb, level);
                        f.level = level.id.clone();
                        f.level_name = name;
                        f.response = response;
                        f.period_from = Some(*start);
                        f.period_until = Some(*expected_end);
                        f.needs = needs_of(pb, level).or(Some(needs.clone()));
                        save(tx, now, &e.actor, "updated", &f)?;
                    }
                    None => {
                        let needs = needs_of(pb, level).or(Some(needs.clone()));
                        self.open(
                            tx,
                            now,
                            pb,
                            e,
                            id,
                            FormKind::Issue,
                            &level.id,
                            None,
                            (Some(*start), Some(*expected_end)),
                            None,
                            needs,
                        )?;
                    }
                },
                EventKind::Issued {
                    level,
                    start,
                    expected_end,
                    signer,
                    ..
                } => match Self::unsigned(tx, id, FormKind::Issue)? {
                    Some(mut f) => {
                        self.sign(tx, now, pb, &mut f, signer.as_deref().unwrap_or(&e.actor))?;
                        save(tx, now, &e.actor, "signed", &f)?;
                    }
                    None => {
                        // Issued without a proposal (automatic levels, directives): a form for the record.
                        self.open(
                            tx,
                            now,
                            pb,
                            e,
                            id,
                            FormKind::Issue,
                            &level.id,
                            None,
                            (Some(*start), Some(*expected_end)),
                            None,
                            None,
                        )?;
                    }
                },
                EventKind::ChangeProposed {
                    level,
                    expected_end,
                    effective,
                    needs,
                    ..
                } => {
                    let needs = needs_of(pb, level).or(Some(needs.clone()));
                    match Self::unsigned(tx, id, FormKind::Adjust)? {
                        Some(mut f) => {
                            let (name, response) = level_of(pb, level);
                            f.level = level.id.clone();
                            f.level_name = name;
                            f.response = response;
                            f.period_until = Some(*expected_end);
                            f.effective = *effective;
                            f.needs = needs;
                            save(tx, now, &e.actor, "updated", &f)?;
                        }
                        None => {
                            let from = w.level.id.clone();
                            self.open(
                                tx,
                                now,
                                pb,
                                e,
                                id,
                                FormKind::Adjust,
                                &level.id,
                                Some(&from),
                                (effective.or(Some(now)), Some(*expected_end)),
                                *effective,
                                needs,
                            )?;
                        }
                    }
                }
                EventKind::Scheduled { to, effective, signer, .. } => {
                    if let (Some(_), Some(signer)) = (to, signer)
                        && let Some(mut f) = Self::unsigned(tx, id, FormKind::Adjust)?
                    {
                        self.sign(tx, now, pb, &mut f, signer)?;
                        save(tx, now, &e.actor, "signed", &f)?;
                        continue;
                    }
                    let (kind, level, from) = match to {
                        Some(l) => (FormKind::Adjust, l.clone(), Some(w.level.id.clone())),
                        None => (FormKind::Lift, w.level.id.clone(), None),
                    };
                    self.open(
                        tx,
                        now,
                        pb,
                        e,
                        id,
                        kind,
                        &level,
                        from.as_ref(),
                        (Some(w.start), Some(*effective)),
                        Some(*effective),
                        None,
                    )?;
                }
                EventKind::Withdrawn | EventKind::Cancelled | EventKind::ChangeWithdrawn | EventKind::Unscheduled => {
                    let kinds: &[FormKind] = match &e.kind {
                        EventKind::ChangeWithdrawn => &[FormKind::Adjust],
                        EventKind::Unscheduled => &[FormKind::Adjust, FormKind::Lift],
                        _ => &[FormKind::Issue, FormKind::Adjust],
                    };
                    for mut f in forms_of(tx, id)? {
                        let open = if matches!(e.kind, EventKind::Unscheduled) {
                            f.relayed_at.is_none()
                        } else {
                            !f.signed()
                        };
                        if kinds.contains(&f.kind) && f.void.is_none() && open {
                            f.void = Some(e.reason.clone());
                            save(tx, now, &e.actor, "void", &f)?;
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// What duty staff fill in.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Completion {
    /// 不利气象条件.
    #[serde(default)]
    pub weather: String,
    /// 趋势分析.
    #[serde(default)]
    pub trend: String,
    /// 应急措施.
    #[serde(default)]
    pub measures: String,
}

fn text(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .take(4000)
        .collect::<String>()
        .trim()
        .to_string()
}

impl Engine {
    /// Completes a form (填表): every field required, each error naming its field; a void or completed
    /// form is refused (409).
    pub async fn complete_form(&self, id: &str, c: Completion, by: &str) -> Result<ApprovalForm, EngineError> {
        let now = self.clock.now();
        let (id, by) = (id.to_string(), by.to_string());
        let c = Completion {
            weather: text(&c.weather),
            trend: text(&c.trend),
            measures: text(&c.measures),
        };
        let mut missing = Vec::new();
        for (field, v, what) in [
            ("weather", &c.weather, "不利气象条件"),
            ("trend", &c.trend, "趋势分析"),
            ("measures", &c.measures, "应急措施"),
        ] {
            if v.is_empty() {
                missing.push(format!("{field}: required ({what})"));
            }
        }
        if !missing.is_empty() {
            return Err(EngineError::BadInput(missing.join("; ")));
        }
        let r = self
            .store
            .write(move |tx| {
                let mut f = form(tx, &id)?.ok_or_else(|| EngineError::NotFound(format!("no approval form {id}")))?;
                if let Some(why) = &f.void {
                    return Err(EngineError::Conflict(format!("approval form {id} is void: {why}")));
                }
                if f.completed_at.is_some() {
                    return Err(EngineError::Conflict(format!("approval form {id} was completed already")));
                }
                f.weather = c.weather.clone();
                f.trend = c.trend.clone();
                f.measures = c.measures.clone();
                f.completed_at = Some(now);
                f.completed_by = Some(by.clone());
                save(tx, now, &by, "completed", &f)?;
                Ok(f)
            })
            .await;
        log_form("complete approval form", by_of(&r), &r);
        r
    }

    /// Records the relay to the departments (转发): the decision must be signed first (409).
    pub async fn relay_form(&self, id: &str, note: &str, by: &str) -> Result<ApprovalForm, EngineError> {
        let now = self.clock.now();
        let (id, by, note) = (id.to_string(), by.to_string(), text(note));
        let r = self
            .store
            .write(move |tx| {
                let mut f = form(tx, &id)?.ok_or_else(|| EngineError::NotFound(format!("no approval form {id}")))?;
                if let Some(why) = &f.void {
                    return Err(EngineError::Conflict(format!("approval form {id} is void: {why}")));
                }
                if !f.signed() {
                    return Err(EngineError::Conflict(format!(
                        "approval form {id} is not signed yet: relay it after the sign-off"
                    )));
                }
                if f.relayed_at.is_some() {
                    return Err(EngineError::Conflict(format!("approval form {id} was relayed already")));
                }
                f.relayed_at = Some(now);
                f.relayed_by = Some(by.clone());
                f.relay_note = note.clone();
                save(tx, now, &by, "relayed", &f)?;
                Ok(f)
            })
            .await;
        log_form("relay approval form", by_of(&r), &r);
        r
    }
}

fn by_of(r: &Result<ApprovalForm, EngineError>) -> &str {
    match r {
        Ok(f) => f.relayed_by.as_deref().or(f.completed_by.as_deref()).unwrap_or(""),
        Err(_) => "",
    }
}

fn log_form(action: &str, actor: &str, r: &Result<ApprovalForm, EngineError>) {
    match r {
        Ok(f) => tracing::info!(actor, action, subject = %f.id, warning = %f.warning_id, "recorded"),
        Err(e) => tracing::warn!(action, error = %e, "refused"),
    }
}
