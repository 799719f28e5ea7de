//! The records other modules write (assignments, acknowledgements, escalation, inspections, the
//! enterprise list, notifications, store outages): [`Event`], one struct per kind.
//!
//! # Their JSON
//!
//! These kinds were written as `RecordBody::Other { kind, data }`, `data` built with `json!()`, so a
//! record of them reads `{"seq":…,"recorded_at":…,"actor":…,"type":"other","kind":"note","data":{…}}`
//! in the store and over the API. That stays exactly so: [`RecordBody::Other`](super::RecordBody::Other)
//! is still tagged `other`, and [`Event`] is tagged adjacently, `kind` naming the variant and `data`
//! holding its struct, whose fields are the keys `json!()` wrote. The fields are declared in
//! alphabetical order because serde_json (without `preserve_order`) sorted the keys of those maps: a
//! record written now has the same bytes as one written before, except inside the nested types with a
//! field order of their own ([`Party`], [`Commitment`], [`GradeChange`], [`FilesSummary`]), whose keys
//! come in another order (same JSON value). Stores need no migration; the tests below decode each old
//! shape and encode it back.
//!
//! A kind this version does not know (a record from a later version), or a known kind whose data does
//! not decode as its struct, is kept as [`Event::Unknown`] with its data as it was: reading the log
//! never fails on these records, and such a record is written back unchanged. Hence a field added to a
//! struct later needs `#[serde(default)]`, or the records written before it read as `Unknown`.
//!
//! Some of these structs carry types of the modules above the store ([`Party`] of the assignments,
//! [`Commitment`] of negotiated reductions, [`Channel`] and [`FilesSummary`] of notifications): they
//! are defined here, with the records that carry them, and used from there under their old paths;
//! their methods stay with their modules.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::ack_step::AckStep;
use crate::domain::level::LevelId;
use crate::domain::region::RegionCode;
use crate::registry::PerSpecies;
use crate::registry::import::GradeChange;

/// A record of one of the kinds below: `kind` is the variant's name in snake case, `data` its struct.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum Event {
    /// The first step of a chain of timers fired: the duty staff were told of missing
    /// acknowledgements (`crate::engine::escalate`).
    AckOverdue(AckEscalation),
    /// A later step of the chain fired: the next tier was told.
    AckEscalated(AckEscalation),
    /// Reminders were queued to the enterprises that have not acknowledged.
    AckReminded(AckReminded),
    /// A party acknowledged its assignment (received, or measures in place).
    Acknowledged(Acknowledged),
    /// A warning was lifted or cancelled: its assignments ended.
    AssignmentsEnded(AssignmentsEnded),
    /// A round of assignments was made; the record's seq is the round's.
    AssignmentsMade(AssignmentsMade),
    /// A timer of an approval form (审批表) fired: its completion or its relay is due or overdue.
    ApprovalChased(ApprovalChased),
    /// An approval form (审批表) was opened, changed, completed, signed, relayed or made void.
    ApprovalFormChanged(ApprovalFormChanged),
    /// Duty staff recorded a consultation's record (会商意见): the proposal and the decision.
    ConsultationOpinionRecorded(Box<crate::domain::opinion::Opinion>),
    /// An inspection found an enterprise not complying (the input of a grade downgrade).
    EnterpriseNonCompliant(EnterpriseNonCompliant),
    /// An inspection task was opened.
    InspectionOpened(InspectionOpened),
    /// An inspection's result was recorded.
    InspectionRecorded(InspectionRecorded),
    /// The open inspection tasks of a warning were closed without a visit.
    InspectionsClosed(InspectionsClosed),
    /// A version of the enterprise list was recorded.
    ListVersionRecorded(ListVersionRecorded),
    /// A negotiated reduction (协商减排) was agreed with an enterprise.
    NegotiatedReductionAgreed(NegotiatedReductionAgreed),
    /// The note given with a sign-off, lift or cancellation.
    Note(Note),
    /// A message could not be delivered, for good.
    NotifyDeliveryFailed(NotifyDeliveryFailed),
    /// A reload brought a new duty roster or new message templates.
    NotifyReloaded(NotifyReloaded),
    /// A report up (信息报送) was made, kept and (when the playbook names the upper tier) queued to it.
    ReportMade(ReportMade),
    /// The store could not write for a while (disk full); recorded once it could again.
    StoreOutage(StoreOutage),
    /// A kind this version does not know (written by a later version), or a known kind whose data
    /// does not decode as its struct: kept as read, so that reading the log never fails and the record
    /// is written back unchanged. Its data is open-ended because nothing here knows its shape.
    #[serde(untagged)]
    Unknown {
        /// The kind, as recorded.
        kind: String,
        /// The data, as recorded.
        data: serde_json::Value,
    },
}

impl Event {
    /// The kind's name, as recorded (`kind`).
    pub fn kind(&self) -> &str {
        match self {
            Event::AckOverdue(_) => "ack_overdue",
            Event::AckEscalated(_) => "ack_escalated",
            Event::AckReminded(_) => "ack_reminded",
            Event::Acknowledged(_) => "acknowledged",
            Event::AssignmentsEnded(_) => "assignments_ended",
            Event::AssignmentsMade(_) => "assignments_made",
            Event::ApprovalChased(_) => "approval_chased",
            Event::ApprovalFormChanged(_) => "approval_form_changed",
            Event::ConsultationOpinionRecorded(_) => "consultation_opinion_recorded",
            Event::EnterpriseNonCompliant(_) => "enterprise_non_compliant",
            Event::InspectionOpened(_) => "inspection_opened",
            Event::InspectionRecorded(_) => "inspection_recorded",
            Event::InspectionsClosed(_) => "inspections_closed",
            Event::ListVersionRecorded(_) => "list_version_recorded",
            Event::NegotiatedReductionAgreed(_) => "negotiated_reduction_agreed",
            Event::Note(_) => "note",
            Event::NotifyDeliveryFailed(_) => "notify_delivery_failed",
            Event::NotifyReloaded(_) => "notify_reloaded",
            Event::ReportMade(_) => "report_made",
            Event::StoreOutage(_) => "store_outage",
            Event::Unknown { kind, .. } => kind,
        }
    }
}

/// `approval_form_changed`: what happened to an approval form, and the form as it stands after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalFormChanged {
    /// `opened`, `updated`, `meeting`, `completed`, `signed`, `relayed` or `void`.
    pub change: String,
    /// The form after the change.
    pub form: Box<crate::domain::approval::ApprovalForm>,
}

/// `report_made`: a report up (信息报送) was made and kept, and sent when it has an addressee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportMade {
    /// The report's id (`{warning}.daily.{YYYYMMDD}`).
    pub id: String,
    /// `daily`.
    pub kind: String,
    /// The warning.
    pub warning_id: String,
    /// The upper tier's address it was sent to, if any.
    pub to: Option<String>,
    /// The mail's id.
    pub message: Option<String>,
    /// A drill's (演练).
    #[serde(default, skip_serializing_if = "crate::domain::warning::is_false")]
    pub exercise: bool,
}

/// `approval_chased`: a timer of an approval form fired and told the duty staff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalChased {
    /// The form's id.
    pub form: String,
    /// Which deadline.
    pub stage: crate::domain::approval::FormStage,
    /// `remind`, `overdue` or `escalate-k`.
    pub step: String,
    /// The region whose duty staff were told.
    pub tier_region: RegionCode,
    /// Who was told (roster ids).
    pub told: Vec<String>,
    /// The warning.
    pub warning_id: String,
}

/// The stage chased before two-stage deadlines, when records did not name it.
fn received() -> AckStep {
    AckStep::Received
}

/// `ack_overdue` and `ack_escalated`: one step of a batch's chain of timers told the duty staff of a
/// tier about the parties that have not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckEscalation {
    /// The batch: the seq of the round of assignments the timers cover.
    pub batch: u64,
    /// Parties that have not acknowledged, all regions.
    pub missing: u64,
    /// Per region told (of the tier): how many are missing there and who was told.
    pub regions: BTreeMap<RegionCode, RegionTold>,
    /// The step: 0 when overdue, k for the k-th escalation.
    pub round: u32,
    /// The acknowledgement chased: `received` or `in_place`.
    #[serde(default = "received")]
    pub stage: AckStep,
    /// The tier told: `county`, `city` or `province`.
    pub tier: String,
    /// The warning.
    pub warning_id: String,
}

/// One region of an [`AckEscalation`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionTold {
    /// Parties of the region that have not acknowledged.
    pub missing: u64,
    /// The roster ids of the people on duty who were told.
    pub told: Vec<String>,
}

/// `ack_reminded`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckReminded {
    /// The batch: the seq of the round of assignments the timer covers.
    pub batch: u64,
    /// Reminders queued.
    pub reminders: u64,
    /// The acknowledgement chased: `received` or `in_place`.
    #[serde(default = "received")]
    pub stage: AckStep,
    /// The warning.
    pub warning_id: String,
}

/// `acknowledged`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledged {
    /// The assignment's key.
    pub assignment: String,
    /// Who acknowledged.
    pub party: Party,
    /// The step acknowledged last: `received` or `in_place`.
    pub step: Option<AckStep>,
    /// The warning.
    pub warning_id: String,
}

/// `assignments_ended`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentsEnded {
    /// The rounds of assignments the warning had.
    pub rounds: u64,
    /// The warning.
    pub warning_id: String,
}

/// `assignments_made`: the record whose seq is the round's (checked by `hazeflow verify`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentsMade {
    /// Parties assigned.
    pub count: u32,
    /// The warning's level.
    pub level: LevelId,
    /// The round's track: empty for the list's measures, `n:{uscc}` for a negotiated reduction.
    #[serde(default)]
    pub track: String,
    /// The warning.
    pub warning_id: String,
}

/// `enterprise_non_compliant`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnterpriseNonCompliant {
    /// The enterprise's county.
    pub county: RegionCode,
    /// When it was inspected.
    pub inspected_at: DateTime<Utc>,
    /// The inspection task.
    pub inspection: String,
    /// Who inspected.
    pub inspector: String,
    /// The warning's level at the task.
    pub level: LevelId,
    /// The enterprise's name.
    pub name: String,
    /// Whether the task was about a negotiated reduction.
    pub negotiated: bool,
    /// What was found.
    pub note: String,
    /// The enterprise.
    pub uscc: String,
    /// The warning.
    pub warning_id: String,
}

/// `inspection_opened`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectionOpened {
    /// The assignment inspected.
    pub assignment: String,
    /// The enterprise's county.
    pub county: RegionCode,
    /// The task.
    pub inspection: String,
    /// Why it was opened: `overdue`, `requested` (by staff) or `recheck`.
    pub reason: String,
    /// The enterprise.
    pub uscc: String,
    /// The warning.
    pub warning_id: String,
}

/// `inspection_recorded`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectionRecorded {
    /// Whether the enterprise complied.
    pub compliant: bool,
    /// When it was inspected.
    pub inspected_at: DateTime<Utc>,
    /// The task.
    pub inspection: String,
    /// The enterprise.
    pub uscc: String,
    /// The warning.
    pub warning_id: String,
}

/// `inspections_closed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectionsClosed {
    /// Tasks closed.
    pub closed: u64,
    /// Their ids.
    pub inspections: Vec<String>,
    /// Why: the warning was `lifted` or `cancelled`.
    pub reason: String,
    /// The warning.
    pub warning_id: String,
}

/// `list_version_recorded`: the counts of the diff from the version before, and its grade changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListVersionRecorded {
    /// Enterprises added.
    pub added: u64,
    /// Enterprises changed.
    pub changed: u64,
    /// The version's digest.
    pub digest: String,
    /// Enterprises on the list.
    pub enterprises: u64,
    /// Grade changes.
    pub grade_changes: Vec<GradeChange>,
    /// Enterprises removed.
    pub removed: u64,
    /// The version number.
    pub version: u32,
}

/// `negotiated_reduction_agreed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NegotiatedReductionAgreed {
    /// What was agreed.
    pub commitment: Commitment,
    /// The warning's level.
    pub level: LevelId,
    /// The enterprise's name.
    pub name: String,
    /// The enterprise.
    pub uscc: String,
    /// The warning.
    pub warning_id: String,
}

/// `note`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// What it was given with: `sign`, `lift` or `cancel`.
    pub action: String,
    /// The note.
    pub note: String,
    /// The warning.
    pub warning: String,
}

/// `notify_delivery_failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyDeliveryFailed {
    /// The recipient's address (email, or the webhook endpoint).
    pub address: String,
    /// Attempts made.
    pub attempts: u32,
    /// What caused the message (a warning id, …).
    pub cause: String,
    /// How it travelled.
    pub channel: Channel,
    /// When it was queued, in local time as people read it (`2026年12月2日 08:05`): the alert shows it
    /// as it is.
    pub created_at: String,
    /// The message.
    pub id: String,
    /// The last attempt's error.
    pub last_error: String,
    /// The recipient's name.
    pub recipient_name: String,
    /// The subject, for an email that rendered.
    pub subject: Option<String>,
    /// The template.
    pub template: String,
}

/// `notify_reloaded`: what the new files hold, and their digests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyReloaded {
    /// Digests of the roster and the templates.
    pub digests: FileDigests,
    /// What the files hold.
    #[serde(flatten)]
    pub files: FilesSummary,
}

/// The digests of a [`NotifyReloaded`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigests {
    /// The roster's.
    pub roster: String,
    /// The templates'.
    pub templates: String,
}

/// `store_outage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreOutage {
    /// The cause in words for the duty staff (`磁盘空间已满`, …).
    pub cause: String,
    /// How long, in minutes.
    pub minutes: i64,
    /// The error that stopped the writes.
    pub reason: String,
    /// Writes refused meanwhile.
    pub refused: u64,
    /// From when, in local time as people read it (`2026年12月2日 08:05`), as the notice shows it.
    pub since: String,
    /// Until when, likewise.
    pub until: String,
}

// ---------------------------------------------------------------------------------------------
// Types of the modules above that these records carry
// ---------------------------------------------------------------------------------------------

/// Who is assigned (`crate::engine::assign::Party`, where its methods are).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Party {
    /// An enterprise on the list.
    Enterprise { uscc: String, county: RegionCode },
    /// A department (住建, 交通 …) of the warning's region.
    Department { id: String, name: String, region: RegionCode },
}

/// The commitment of a negotiated reduction (`crate::engine::negotiate::Commitment`, where its
/// methods are).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Commitment {
    /// What the enterprise commits to, in its words (Chinese).
    pub commitment: String,
    /// Expected reduction, t/day.
    pub reductions: PerSpecies,
    /// Who agreed it for the bureau.
    pub agreed_by: String,
    /// Remarks.
    #[serde(default)]
    pub note: String,
}

impl Eq for Commitment {}

/// How a message travels (`crate::notify::Channel`, where its methods are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Email (SMTP, or an `.eml` file).
    Email,
    /// A signed JSON POST to a configured endpoint.
    Webhook,
}

/// What a set of notification files holds, for summaries (`hazeflow check`, reloads;
/// `crate::notify::FilesSummary`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesSummary {
    /// The roster file.
    #[serde(serialize_with = "lossy")]
    pub roster: PathBuf,
    /// People on it.
    pub people: usize,
    /// Regions with a roster of their own.
    pub regions: usize,
    /// Events with a route.
    pub routes: usize,
    /// Department contacts (per region and department; not counted before departments were told).
    #[serde(default)]
    pub department_contacts: usize,
    /// What the roster's calendar holds (not counted before the calendar).
    #[serde(default)]
    pub calendar: CalendarSummary,
    /// The templates folder.
    #[serde(serialize_with = "lossy")]
    pub templates: PathBuf,
    /// Message kinds in it.
    pub kinds: usize,
}

/// A path as text, any bytes that are not UTF-8 replaced: a record must always encode.
fn lossy<S: serde::Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string_lossy())
}

/// How many dates the roster's calendar bends: holiday dates, 调休 working days, swaps, overrides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarSummary {
    /// Holiday dates (法定节假日), each day counted.
    pub holiday_dates: usize,
    /// 调休 working days.
    pub workdays: usize,
    /// Swaps.
    pub swaps: usize,
    /// Overrides, all regions.
    pub overrides: usize,
}

#[cfg(test)]
mod tests {
    //! Old records read as the new types and are written back the same: for each kind, the `data`
    //! the code wrote before (the same `json!()` over the same values), in a record encoded as
    //! `RecordBody::Other { kind, data }` was, against the struct the code builds now.

    use chrono::{NaiveDate, TimeZone};
    use serde_json::{Value, json};

    use super::*;
    use crate::registry::Grade;
    use crate::store::{Record, RecordBody};

    /// The record as encoded before: `RecordBody::Other { kind: String, data: Value }` in `Record`.
    #[derive(Serialize, Deserialize)]
    struct OldRecord {
        seq: u64,
        recorded_at: DateTime<Utc>,
        actor: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        playbook: Option<String>,
        #[serde(flatten)]
        body: OldBody,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum OldBody {
        Other { kind: String, data: Value },
    }

    /// Kinds whose data holds a type with a field order of its own: the same JSON value, keys in
    /// another order.
    const REORDERED: [&str; 4] = [
        "acknowledged",
        "list_version_recorded",
        "negotiated_reduction_agreed",
        "notify_reloaded",
    ];

    fn old_text(kind: &str, data: &Value) -> String {
        let old = OldRecord {
            seq: 42,
            recorded_at: Utc.with_ymd_and_hms(2026, 12, 2, 8, 5, 0).unwrap(),
            actor: "escalation".into(),
            playbook: None,
            body: OldBody::Other {
                kind: kind.into(),
                data: data.clone(),
            },
        };
        serde_json::to_string(&old).unwrap()
    }

    /// The old record of `kind` with `data` reads as `new`, and `new` is written as the old record was.
    fn same(kind: &str, data: Value, new: Event) {
        let old = old_text(kind, &data);
        let read: Record = serde_json::from_str(&old).unwrap_or_else(|e| panic!("{kind}: {e}\n{old}"));
        assert_eq!(read.body, RecordBody::Other(new.clone()), "{kind} reads as its struct\n{old}");
        assert_eq!(read.body.kind(), kind);
        let written = Record {
            seq: 42,
            recorded_at: read.recorded_at,
            actor: "escalation".into(),
            playbook: None,
            body: RecordBody::Other(new),
        };
        let text = serde_json::to_string(&written).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            serde_json::from_str::<Value>(&old).unwrap(),
            "{kind} is written as before"
        );
        if !REORDERED.contains(&kind) {
            assert_eq!(text, old, "{kind} is written byte for byte as before");
        }
        // And the code before this one reads what is written now.
        let back: OldRecord = serde_json::from_str(&text).unwrap();
        let OldBody::Other { kind: k, data: d } = back.body;
        assert_eq!((k.as_str(), d), (kind, data));
    }

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 2, h, m, 0).unwrap()
    }

    fn code(c: u32) -> RegionCode {
        RegionCode::from_u32(c).unwrap()
    }

    #[test]
    fn escalation_records_keep_their_json() {
        let (warning_id, batch, stage, queued) = ("140100-20261202-1".to_string(), 57_u64, "in_place".to_string(), 3_u64);
        same(
            "ack_reminded",
            json!({ "warning_id": warning_id, "batch": batch, "stage": stage, "reminders": queued }),
            Event::AckReminded(AckReminded {
                batch,
                reminders: queued,
                stage: AckStep::InPlace,
                warning_id: warning_id.clone(),
            }),
        );
        for (kind, round, tier) in [("ack_overdue", 0_u32, "county"), ("ack_escalated", 2, "province")] {
            let told = [(code(140105), 2_usize, vec!["ty-duty-1".to_string()]), (code(140106), 1, vec![])];
            let mut per_region = serde_json::Map::new();
            for (region, missing, people) in &told {
                per_region.insert(region.to_string(), json!({ "missing": missing, "told": people }));
            }
            let round_usize = round as usize;
            let data = json!({ "warning_id": warning_id, "batch": batch, "stage": stage, "tier": tier, "round": round_usize, "missing": 3_usize, "regions": per_region });
            let chased = AckEscalation {
                batch,
                missing: 3,
                regions: told
                    .iter()
                    .map(|(r, missing, people)| {
                        (
                            *r,
                            RegionTold {
                                missing: *missing as u64,
                                told: people.clone(),
                            },
                        )
                    })
                    .collect(),
                round,
                stage: AckStep::InPlace,
                tier: tier.into(),
                warning_id: warning_id.clone(),
            };
            let new = if kind == "ack_overdue" {
                Event::AckOverdue(chased)
            } else {
                Event::AckEscalated(chased)
            };
            same(kind, data, new);
        }
    }

    #[test]
    fn assignment_records_keep_their_json() {
        let warning_id = "140100-20261202-1".to_string();
        for (party, key) in [
            (
                Party::Enterprise {
                    uscc: "91140105MA0K3T7W5X".into(),
                    county: code(140105),
                },
                format!("{warning_id}/e:91140105MA0K3T7W5X/000000000057"),
            ),
            (
                Party::Department {
                    id: "zhujian".into(),
                    name: "市住建局".into(),
                    region: code(140100),
                },
                format!("{warning_id}/d:140100:zhujian/000000000057"),
            ),
        ] {
            let step = Some("received".to_string());
            same(
                "acknowledged",
                json!({ "assignment": key, "warning_id": warning_id, "party": party, "step": step }),
                Event::Acknowledged(Acknowledged {
                    assignment: key.clone(),
                    party: party.clone(),
                    step: Some(AckStep::Received),
                    warning_id: warning_id.clone(),
                }),
            );
        }
        let rounds = ["a", "b"];
        same(
            "assignments_ended",
            json!({ "warning_id": warning_id, "rounds": rounds.len() }),
            Event::AssignmentsEnded(AssignmentsEnded {
                rounds: 2,
                warning_id: warning_id.clone(),
            }),
        );
        for track in ["", "n:91140105MA0K3T7W5X"] {
            let (level, count) = ("orange".to_string(), 24_u32);
            same(
                "assignments_made",
                json!({ "warning_id": warning_id, "level": level, "count": count, "track": track }),
                Event::AssignmentsMade(AssignmentsMade {
                    count,
                    level: level.as_str().into(),
                    track: track.into(),
                    warning_id: warning_id.clone(),
                }),
            );
        }
        let (id, what, note) = (warning_id.clone(), "lift", "污染过程结束".to_string());
        same(
            "note",
            json!({ "warning": id, "action": what, "note": note }),
            Event::Note(Note {
                action: what.into(),
                note: note.clone(),
                warning: id.clone(),
            }),
        );
    }

    #[test]
    fn inspection_records_keep_their_json() {
        let (id, warning_id, uscc) = (
            "140100-20261202-1.140105.91140105MA0K3T7W5X".to_string(),
            "140100-20261202-1".to_string(),
            "91140105MA0K3T7W5X".to_string(),
        );
        let (county, reason, assignment) = (code(140105), "overdue".to_string(), format!("{warning_id}/e:{uscc}/000000000057"));
        same(
            "inspection_opened",
            json!({ "inspection": id, "warning_id": warning_id, "uscc": uscc, "county": county, "reason": reason, "assignment": assignment }),
            Event::InspectionOpened(InspectionOpened {
                assignment: assignment.clone(),
                county,
                inspection: id.clone(),
                reason: reason.clone(),
                uscc: uscc.clone(),
                warning_id: warning_id.clone(),
            }),
        );
        let inspected_at = at(6, 30);
        for compliant in [true, false] {
            same(
                "inspection_recorded",
                json!({ "inspection": id, "warning_id": warning_id, "uscc": uscc, "compliant": compliant, "inspected_at": inspected_at }),
                Event::InspectionRecorded(InspectionRecorded {
                    compliant,
                    inspected_at,
                    inspection: id.clone(),
                    uscc: uscc.clone(),
                    warning_id: warning_id.clone(),
                }),
            );
        }
        let (name, level, negotiated, note, inspector) = (
            "太原示例焦化有限公司".to_string(),
            "orange".to_string(),
            true,
            "2#焦炉未按时限产".to_string(),
            "王检查".to_string(),
        );
        same(
            "enterprise_non_compliant",
            json!({
                "uscc": uscc, "name": name, "county": county, "warning_id": warning_id,
                "level": level, "negotiated": negotiated, "inspection": id, "note": note,
                "inspected_at": inspected_at, "inspector": inspector,
            }),
            Event::EnterpriseNonCompliant(EnterpriseNonCompliant {
                county,
                inspected_at,
                inspection: id.clone(),
                inspector: inspector.clone(),
                level: level.as_str().into(),
                name: name.clone(),
                negotiated,
                note: note.clone(),
                uscc: uscc.clone(),
                warning_id: warning_id.clone(),
            }),
        );
        let open = [id.clone(), format!("{id}.2")];
        same(
            "inspections_closed",
            json!({ "warning_id": warning_id, "reason": "lifted", "closed": open.len(), "inspections": open.to_vec() }),
            Event::InspectionsClosed(InspectionsClosed {
                closed: 2,
                inspections: open.to_vec(),
                reason: "lifted".into(),
                warning_id: warning_id.clone(),
            }),
        );
        let c = Commitment {
            commitment: "2#焦炉出焦时间延长至48小时".into(),
            reductions: PerSpecies::new([0.4, 1.1, 0.0, 0.05]),
            agreed_by: "值班员".into(),
            note: String::new(),
        };
        same(
            "negotiated_reduction_agreed",
            json!({ "warning_id": warning_id, "uscc": uscc, "name": name, "level": level, "commitment": c }),
            Event::NegotiatedReductionAgreed(NegotiatedReductionAgreed {
                commitment: c.clone(),
                level: level.as_str().into(),
                name: name.clone(),
                uscc: uscc.clone(),
                warning_id: warning_id.clone(),
            }),
        );
    }

    #[test]
    fn list_records_keep_their_json() {
        let changes = vec![
            GradeChange {
                uscc: crate::registry::Uscc::parse("91140302663810557X").unwrap(),
                name: "阳泉城区宏盛铁合金有限公司".into(),
                from: Grade::C,
                to: Grade::B,
                effective: NaiveDate::from_ymd_opt(2026, 11, 1),
                reason: "年度绩效分级".into(),
            },
            GradeChange {
                uscc: crate::registry::Uscc::parse("91141128576185407C").unwrap(),
                name: "方山天泽冶金有限责任公司".into(),
                from: Grade::B,
                to: Grade::D,
                effective: None,
                reason: String::new(),
            },
        ];
        for grade_changes in [Vec::new(), changes] {
            let (version, digest, enterprises) = (3_u32, "5f1c0a".to_string(), 3000_usize);
            let (added, removed, changed) = (vec![1, 2], vec![3], Vec::<u8>::new());
            same(
                "list_version_recorded",
                json!({
                    "version": version, "digest": digest, "enterprises": enterprises,
                    "added": added.len(), "removed": removed.len(),
                    "changed": changed.len(), "grade_changes": grade_changes,
                }),
                Event::ListVersionRecorded(ListVersionRecorded {
                    added: 2,
                    changed: 0,
                    digest: digest.clone(),
                    enterprises: 3000,
                    grade_changes: grade_changes.clone(),
                    removed: 1,
                    version,
                }),
            );
        }
    }

    #[test]
    fn notification_and_store_records_keep_their_json() {
        for (channel, subject) in [(Channel::Email, Some("【橙色预警】请确认")), (Channel::Webhook, None)] {
            let (id, name, address, attempts, error, cause, template, created_at) = (
                "140100-20261202-1.e.91140105MA0K3T7W5X.issued".to_string(),
                "环保负责人".to_string(),
                "hb@example.cn".to_string(),
                8_u32,
                "550 mailbox unavailable",
                "140100-20261202-1".to_string(),
                "enterprise_issued".to_string(),
                "2026年12月2日 08:05".to_string(),
            );
            same(
                "notify_delivery_failed",
                json!({
                    "id": id, "channel": channel, "recipient_name": name, "address": address,
                    "subject": subject, "attempts": attempts, "last_error": error, "cause": cause, "template": template,
                    "created_at": created_at,
                }),
                Event::NotifyDeliveryFailed(NotifyDeliveryFailed {
                    address: address.clone(),
                    attempts,
                    cause: cause.clone(),
                    channel,
                    created_at: created_at.clone(),
                    id: id.clone(),
                    last_error: error.into(),
                    recipient_name: name.clone(),
                    subject: subject.map(str::to_string),
                    template: template.clone(),
                }),
            );
        }
        let summary = FilesSummary {
            roster: "config/roster.yaml".into(),
            people: 63,
            regions: 12,
            routes: 7,
            department_contacts: 40,
            calendar: CalendarSummary {
                holiday_dates: 27,
                workdays: 6,
                swaps: 1,
                overrides: 2,
            },
            templates: "playbooks/templates/notify".into(),
            kinds: 21,
        };
        let (roster, templates) = ("9e1d".repeat(16), "07ab".repeat(16));
        let mut data = serde_json::to_value(&summary).unwrap_or_default();
        data["digests"] = json!({ "roster": roster, "templates": templates });
        same(
            "notify_reloaded",
            data,
            Event::NotifyReloaded(NotifyReloaded {
                digests: FileDigests { roster, templates },
                files: summary,
            }),
        );
        let (reason, since, until) = (
            "No space left on device (os error 28)".to_string(),
            "2026年12月2日 08:05".to_string(),
            "2026年12月2日 08:17".to_string(),
        );
        let (minutes, refused) = (12_i64, 5_u64);
        same(
            "store_outage",
            json!({ "reason": reason, "cause": "磁盘空间已满", "since": since, "until": until, "minutes": minutes, "refused": refused }),
            Event::StoreOutage(StoreOutage {
                cause: "磁盘空间已满".into(),
                minutes,
                reason: reason.clone(),
                refused,
                since: since.clone(),
                until: until.clone(),
            }),
        );
    }

    #[test]
    fn records_before_a_field_was_added_read_with_its_default() {
        let read = |kind: &str, data: Value| serde_json::from_str::<Record>(&old_text(kind, &data)).unwrap().body;
        let RecordBody::Other(Event::AckReminded(r)) = read("ack_reminded", json!({ "warning_id": "w", "batch": 1, "reminders": 2 }))
        else {
            panic!("not typed")
        };
        assert_eq!(r.stage, AckStep::Received);
        let RecordBody::Other(Event::AssignmentsMade(m)) =
            read("assignments_made", json!({ "warning_id": "w", "level": "red", "count": 5 }))
        else {
            panic!("not typed")
        };
        assert_eq!((m.track.as_str(), m.count), ("", 5));
        let mut data = json!({ "roster": "r.yaml", "people": 1, "regions": 1, "routes": 1, "templates": "t", "kinds": 1 });
        data["digests"] = json!({ "roster": "a", "templates": "b" });
        let RecordBody::Other(Event::NotifyReloaded(n)) = read("notify_reloaded", data) else {
            panic!("not typed")
        };
        assert_eq!((n.files.department_contacts, n.files.calendar), (0, CalendarSummary::default()));
    }

    #[test]
    fn unknown_kinds_and_data_that_does_not_fit_are_kept_as_read() {
        for (kind, data) in [
            (
                "escalation_paused",
                json!({ "warning_id": "w", "until": "2026-12-03T00:00:00Z", "by": ["a", "b"] }),
            ),
            ("future_kind", Value::Null),
            ("assignments_made", json!({ "warning_id": "w", "count": "many" })),
            ("note", json!({ "warning": "w" })),
        ] {
            let old = old_text(kind, &data);
            let read: Record = serde_json::from_str(&old).unwrap();
            assert_eq!(
                read.body,
                RecordBody::Other(Event::Unknown {
                    kind: kind.into(),
                    data: data.clone()
                })
            );
            assert_eq!(read.body.kind(), kind);
            assert_eq!(serde_json::to_string(&read).unwrap(), old);
        }
    }
}
