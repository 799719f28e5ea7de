//! What the event log holds: one [`Record`] per state change, with who, when and which playbook.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::events::Event;
use crate::domain::assess::Assessment;
use crate::domain::forecast::Forecast;
use crate::domain::level::LevelId;
use crate::domain::region::RegionCode;
use crate::domain::warning;

/// One entry of the append-only log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Sequence number, from 1, gap-free.
    pub seq: u64,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// Who caused it.
    pub actor: String,
    /// The playbook involved (`id@version`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playbook: Option<String>,
    /// What happened.
    #[serde(flatten)]
    pub body: RecordBody,
}

/// The kinds of state change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RecordBody {
    /// A forecast was accepted.
    ForecastAccepted { forecast: Forecast, via: String },
    /// A forecast file was rejected.
    ForecastRejected { file: String, error: String, via: String },
    /// A consultation was held.
    ConsultationHeld { consultation: ConsultationRecord },
    /// A warning lifecycle event.
    Warning { warning_id: String, event: warning::Event },
    /// A regional directive was issued.
    DirectiveIssued { directive: DirectiveRecord },
    /// A regional directive was lifted; for a warning from above, `doc_no` is its lift's own document
    /// number (解除文号).
    DirectiveLifted {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        doc_no: Option<String>,
    },
    /// The playbooks were reloaded (or the reload refused).
    PlaybooksReloaded { versions: Vec<String>, errors: Vec<String> },
    /// Something another module records (assignments, acknowledgements, escalation, inspections, the
    /// list, notifications): `"type": "other"`, then the kind and its data (see [`super::events`]).
    Other(Event),
}

impl RecordBody {
    /// Short name of the kind, for metrics and listings.
    pub fn kind(&self) -> &str {
        match self {
            // A drill's records count apart, so that no count mixes drills with real episodes.
            RecordBody::ForecastAccepted { forecast, .. } if forecast.exercise => "exercise_forecast_accepted",
            RecordBody::ConsultationHeld { consultation } if consultation.exercise => "exercise_consultation_held",
            RecordBody::ForecastAccepted { .. } => "forecast_accepted",
            RecordBody::ForecastRejected { .. } => "forecast_rejected",
            RecordBody::ConsultationHeld { .. } => "consultation_held",
            RecordBody::Warning { .. } => "warning",
            RecordBody::DirectiveIssued { .. } => "directive_issued",
            RecordBody::DirectiveLifted { .. } => "directive_lifted",
            RecordBody::PlaybooksReloaded { .. } => "playbooks_reloaded",
            RecordBody::Other(e) => e.kind(),
        }
    }
}

/// A daily consultation (每日会商) as kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsultationRecord {
    /// Sequence number of its log record.
    pub seq: u64,
    /// When it was held.
    pub at: DateTime<Utc>,
    /// Scheduled slot (`shanxi/下午会商 2026-12-01T16:00+08:00`) or `on demand`.
    pub trigger: String,
    /// Per region: the forecast used, the proposal and the rule that fired.
    pub assessments: Vec<Assessment>,
    /// A drill's consultation (演练): held on a drill's forecast, for the regions' drill lanes.
    #[serde(default, skip_serializing_if = "crate::domain::warning::is_false")]
    pub exercise: bool,
}

/// A regional directive (调度令) as issued over the API or from a playbook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectiveRecord {
    /// Id.
    pub id: String,
    /// Title.
    pub name: String,
    /// Least level.
    pub min_level: LevelId,
    /// Regions named (their descendants are covered too).
    pub regions: Vec<RegionCode>,
    /// From when.
    pub from: DateTime<Utc>,
    /// Until when, if known.
    pub until: Option<DateTime<Utc>>,
    /// Issuing tier.
    pub issued_by: RegionCode,
    /// Whether it still holds.
    pub active: bool,
    /// A drill's directive (演练): it holds the regions' drill lanes only.
    #[serde(default, skip_serializing_if = "crate::domain::warning::is_false")]
    pub exercise: bool,
    /// A warning from above (上级预警, from the ministry or the province): its document number, issuer,
    /// expected end and per-area levels. `min_level` is then its highest level and `regions` every
    /// region it names; it has no `until` (it holds until its own lift arrives).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<Upstream>,
}

/// What a warning from above (上级预警) says beyond a directive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upstream {
    /// The upstream document number (文号), e.g. `晋重污应急〔2026〕5号`.
    pub doc_no: String,
    /// Who issued it, e.g. `山西省重污染天气应急指挥部`.
    pub issuer: String,
    /// When it is expected to end, if it says (informational: only its lift ends it).
    pub expected_end: Option<DateTime<Utc>>,
    /// Its levels per group of regions (a partial-area warning has several).
    pub areas: Vec<UpstreamArea>,
    /// Its lift's own document number (解除文号), once its lift has arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lift_doc_no: Option<String>,
    /// When its lift was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifted_at: Option<DateTime<Utc>>,
}

/// One group of regions of a warning from above and its level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamArea {
    /// Least level.
    pub level: LevelId,
    /// Regions named (their descendants are covered too).
    pub regions: Vec<RegionCode>,
}

impl Upstream {
    /// How the warnings it holds name it (Chinese): `山西省重污染天气应急指挥部预警（晋重污应急〔2026〕5号）`.
    pub fn source(&self) -> String {
        format!("{}预警（{}）", self.issuer, self.doc_no)
    }
}
