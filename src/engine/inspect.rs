//! Inspections (监督帮扶): an enterprise that has not acknowledged its measures in time, or that staff
//! have reason to doubt, becomes an inspection task for its county; the inspector records what they
//! found, and a finding of non-compliance becomes an event on the enterprise.
//!
//! In: the overdue timer ([`crate::engine::escalate`], which opens a task per overdue enterprise, once per
//! assignment), staff over the API:
//!
//! - `GET /api/v1/inspections?warning=&county=&status=open|done&after=&limit=`: the tasks, by warning
//!   and county;
//! - `POST /api/v1/inspections` `{ "warning": ID, "uscc": …, "note": … }`: opens a task for the
//!   enterprise's current task (measures or negotiated reduction) in that warning;
//! - `GET /api/v1/inspections/{id}`;
//! - `POST /api/v1/inspections/{id}/result` `{ "compliant": bool, "note": …, "time": "2026-12-02 14:30" }`
//!   (time: when the inspection took place, default now; RFC 3339 or Asia/Shanghai local time).
//!
//! One task per enterprise per warning: the overdue timer opens the enterprise's task once in a warning
//! and never again (an upgrade's overdue does not open a second); a task still open when the level
//! changes is carried to the enterprise's new assignment (an [`OnRound`] hook, [`hook`]); a task still
//! open when the warning is lifted or cancelled is closed as 无需检查（预警已解除/已取消） ([`EndStage`]),
//! so no inspector visits a plant whose warning no longer applies.
//!
//! Out: inspection documents (collection `inspections`, key = id = `{warning}.{county}.{uscc}` plus `.2`,
//! `.3` … for tasks opened by staff or as a recheck, so tasks sort by warning and county), records
//! `inspection_opened`, `inspection_recorded` and, for a finding of non-compliance,
//! `enterprise_non_compliant` (`uscc`, `warning_id`, `level`, `note`, …) — the input of a grade downgrade,
//! which stays an operator's list revision. A non-compliant finding on a task still in force opens a
//! follow-up task (复查). A result is final: recording a second one is refused (409).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::level::LevelId;
use crate::domain::playbook::Playbook;
use crate::domain::region::RegionCode;
use crate::domain::warning::{Event, EventKind, RegionState};
use crate::engine::EngineError;
use crate::engine::Stage;
use crate::engine::assign::{self, Assignment, OnRound, Party, Round};
use crate::engine::list::{BY_USCC, ENTERPRISES};
use crate::registry::Enterprise;
use crate::store::Collection;
use crate::store::{RecordBody, StoreError, Tx, events};

/// Inspection documents, key = the inspection's id.
pub const INSPECTIONS: Collection = Collection::Inspections;

/// Where a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InspectionStatus {
    /// Waiting for an inspector.
    Open,
    /// Result recorded.
    Done,
    /// Closed without a visit: the warning ended first (无需检查).
    NotNeeded,
}

impl InspectionStatus {
    /// Parses `open`, `done`, `not_needed`.
    pub fn parse(s: &str) -> Option<InspectionStatus> {
        match s {
            "open" => Some(InspectionStatus::Open),
            "done" => Some(InspectionStatus::Done),
            "not_needed" => Some(InspectionStatus::NotNeeded),
            _ => None,
        }
    }
}

/// Why a task was closed without a visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closure {
    /// When.
    pub at: DateTime<Utc>,
    /// `lifted` or `cancelled`.
    pub reason: String,
    /// As shown: `无需检查（预警已解除）`, `无需检查（预警已取消）`.
    pub text: String,
}

/// What the inspector found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectionResult {
    /// Whether the measures were in place.
    pub compliant: bool,
    /// What was seen (evidence: online monitoring, electricity use, gate records, photos).
    pub note: String,
    /// When the inspection took place.
    pub inspected_at: DateTime<Utc>,
    /// When the result was recorded.
    pub recorded_at: DateTime<Utc>,
    /// Who recorded it (the staff token's name).
    pub inspector: String,
}

/// An inspection task (监督帮扶任务).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inspection {
    /// `{warning}.{county}.{uscc}.{batch}` (plus `.2`, … for later tasks on the same assignment).
    pub id: String,
    /// The warning.
    pub warning_id: String,
    /// The assignment inspected (measures or negotiated reduction).
    pub assignment: String,
    /// Its level.
    pub level: LevelId,
    /// Whether it is a negotiated reduction (协商减排).
    pub negotiated: bool,
    /// The enterprise's county: whose inspectors go.
    pub county: RegionCode,
    /// The enterprise.
    pub uscc: String,
    /// Its name.
    pub enterprise_name: String,
    /// Why: `overdue` (no acknowledgement by the deadline), `requested` (by staff), `recheck` (after a
    /// finding of non-compliance).
    pub reason: String,
    /// Why, in the words of whoever opened it.
    #[serde(default)]
    pub note: String,
    /// When it was opened.
    pub opened_at: DateTime<Utc>,
    /// Who opened it (`escalation` for the overdue timer).
    pub opened_by: String,
    /// Where it is.
    pub status: InspectionStatus,
    /// The finding, once recorded.
    pub result: Option<InspectionResult>,
    /// Why it was closed without a visit (the warning ended first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<Closure>,
    /// The levels it was carried across, in order (the first is the level it was opened at).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub levels: Vec<LevelId>,
    /// A drill's task (演练): inspectors drill too; it is marked wherever it is listed.
    #[serde(default, skip_serializing_if = "crate::domain::warning::is_false")]
    pub exercise: bool,
}

impl Inspection {
    /// The task's state in Chinese: 待检查, 已落实, 未落实, 无需检查（预警已解除）.
    pub fn outcome_zh(&self) -> String {
        match (&self.result, &self.closed) {
            (Some(r), _) if r.compliant => "已落实".to_string(),
            (Some(_), _) => "未落实".to_string(),
            (None, Some(c)) => c.text.clone(),
            (None, None) => "待检查".to_string(),
        }
    }
}

/// The id of an enterprise's task in a warning: one per enterprise per warning, whatever the level.
fn base_id(a: &Assignment, county: RegionCode, uscc: &str) -> String {
    crate::notify::outbox::safe_id(&format!("{}.{county}.{uscc}", a.warning_id))
}

impl Inspection {
    pub(crate) fn new(a: &Assignment, e: &Enterprise, id: String, reason: &str, note: &str, by: &str, now: DateTime<Utc>) -> Inspection {
        Inspection {
            id,
            warning_id: a.warning_id.clone(),
            assignment: a.key.clone(),
            level: a.level.clone(),
            negotiated: a.negotiated.is_some(),
            county: e.county,
            uscc: e.uscc.as_str().to_string(),
            enterprise_name: e.name.clone(),
            reason: reason.to_string(),
            note: note.to_string(),
            opened_at: now,
            opened_by: by.to_string(),
            status: InspectionStatus::Open,
            result: None,
            closed: None,
            levels: vec![a.level.clone()],
            exercise: a.exercise,
        }
    }

    /// The task the overdue timer opens for an assignment (the first task of that assignment).
    pub fn overdue(a: &Assignment, e: &Enterprise, now: DateTime<Utc>) -> Inspection {
        let id = base_id(a, e.county, e.uscc.as_str());
        Inspection::new(a, e, id, "overdue", "确认时限已过，未收到企业确认", "escalation", now)
    }
}

/// Whether the assignment's enterprise has had an inspection task in its warning already (at any level).
pub fn exists_for(tx: &Tx<'_>, a: &Assignment) -> Result<bool, StoreError> {
    let Party::Enterprise { uscc, county } = &a.party else {
        return Ok(true);
    };
    Ok(tx.doc::<Value>(INSPECTIONS, &base_id(a, *county, uscc))?.is_some())
}

/// The first free id for another task on the assignment.
pub(crate) fn next_id(tx: &Tx<'_>, a: &Assignment, county: RegionCode, uscc: &str) -> Result<String, StoreError> {
    let base = base_id(a, county, uscc);
    if tx.doc::<Value>(INSPECTIONS, &base)?.is_none() {
        return Ok(base);
    }
    for n in 2.. {
        let id = format!("{base}.{n}");
        if tx.doc::<Value>(INSPECTIONS, &id)?.is_none() {
            return Ok(id);
        }
    }
    unreachable!("an unbounded range ends only by returning")
}

/// Writes a new task and records it (the caller has checked that its id is free).
pub fn put_new(tx: &mut Tx<'_>, now: DateTime<Utc>, i: &Inspection, actor: &str) -> Result<(), StoreError> {
    tx.put_doc(INSPECTIONS, &i.id, i)?;
    tx.bump("inspections_opened", 1)?;
    let opened = events::InspectionOpened {
        assignment: i.assignment.clone(),
        county: i.county,
        inspection: i.id.clone(),
        reason: i.reason.clone(),
        uscc: i.uscc.clone(),
        warning_id: i.warning_id.clone(),
    };
    tx.append(now, actor, None, RecordBody::Other(events::Event::InspectionOpened(opened)))?;
    Ok(())
}

/// Open tasks of a warning.
fn open_of(tx: &Tx<'_>, warning_id: &str) -> Result<Vec<Inspection>, StoreError> {
    Ok(tx
        .docs::<Inspection>(
            INSPECTIONS,
            &format!("{}.", crate::notify::outbox::safe_id(warning_id)),
            "",
            usize::MAX,
        )?
        .into_iter()
        .map(|(_, i)| i)
        .filter(|i| i.status == InspectionStatus::Open && i.warning_id == warning_id)
        .collect())
}

/// The hook for [`crate::engine::assign::AssignStage::on_round`]: a new round of a warning's list measures (a
/// level change) carries each open task of that warning to its enterprise's new assignment, so the
/// enterprise keeps one task across levels. Reads only the warning's open tasks, not the round.
pub fn hook() -> Arc<OnRound> {
    Arc::new(|tx: &mut Tx<'_>, r: &Round| {
        if !r.track.is_empty() {
            return Ok(());
        }
        for mut i in open_of(tx, &r.warning_id)? {
            if i.negotiated {
                continue;
            }
            let Some((_, entry)) = assign::find(tx, r, &format!("e:{}", i.uscc))? else {
                continue;
            };
            i.assignment = r.assignment_key(&entry.party);
            i.level = r.level.clone();
            if i.levels.last() != Some(&r.level) {
                i.levels.push(r.level.clone());
            }
            tx.put_doc(INSPECTIONS, &i.id, &i)?;
        }
        Ok(())
    })
}

/// Closes a warning's open tasks as 无需检查 when it is lifted or cancelled (a [`Stage`] after the
/// assignments', in the transaction of the event).
pub struct EndStage;

impl Stage for EndStage {
    fn on_warning_events(
        &self,
        tx: &mut Tx<'_>,
        now: DateTime<Utc>,
        events: &[Event],
        state: &RegionState,
        _pb: &Playbook,
    ) -> Result<(), StoreError> {
        let Some(w) = &state.warning else { return Ok(()) };
        for e in events {
            let (reason, text) = match &e.kind {
                EventKind::Lifted => ("lifted", "无需检查（预警已解除）"),
                EventKind::Cancelled => ("cancelled", "无需检查（预警已取消）"),
                _ => continue,
            };
            close_open(tx, now, &w.id, reason, text)?;
        }
        Ok(())
    }
}

/// Closes every open task of a warning without a visit; records how many.
pub fn close_open(tx: &mut Tx<'_>, now: DateTime<Utc>, warning_id: &str, reason: &str, text: &str) -> Result<usize, StoreError> {
    let open = open_of(tx, warning_id)?;
    for mut i in open.iter().cloned() {
        i.status = InspectionStatus::NotNeeded;
        i.closed = Some(Closure {
            at: now,
            reason: reason.to_string(),
            text: text.to_string(),
        });
        tx.put_doc(INSPECTIONS, &i.id, &i)?;
    }
    if !open.is_empty() {
        tx.bump("inspections_not_needed", open.len() as u64)?;
        tx.append(
            now,
            "inspect",
            None,
            RecordBody::Other(events::Event::InspectionsClosed(events::InspectionsClosed {
                closed: open.len() as u64,
                inspections: open.iter().map(|i| i.id.clone()).collect(),
                reason: reason.to_string(),
                warning_id: warning_id.to_string(),
            })),
        )?;
    }
    Ok(open.len())
}

// ---------------------------------------------------------------------------------------------
// Refusals from inside write jobs
// ---------------------------------------------------------------------------------------------

/// A job's refusal by its HTTP status (404, 409, otherwise 400), as the engine's typed error.
pub(crate) fn refuse(status: u16, message: impl Into<String>) -> EngineError {
    let m = message.into();
    match status {
        404 => EngineError::NotFound(m),
        409 => EngineError::Conflict(m),
        _ => EngineError::BadInput(m),
    }
}

pub(crate) fn enterprise_in<V: crate::store::View>(tx: &V, uscc: &str) -> Result<Option<Enterprise>, StoreError> {
    let Some(county) = tx.doc::<String>(BY_USCC, uscc)? else {
        return Ok(None);
    };
    tx.doc(ENTERPRISES, &format!("{county}/{uscc}"))
}
