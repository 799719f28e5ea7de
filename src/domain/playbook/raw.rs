//! The playbook file as written: serde structs with source spans, strict about unknown keys.
//!
//! In: YAML text. Out: [`RawPlaybook`], which [`super::load`] compiles into a [`super::Playbook`] after
//! validation. Every field that a semantic error may point at is a [`Spanned`], so the message can
//! name its line and column. Nothing here knows the rules; see `validate.rs`.

use serde::Deserialize;
use serde_saphyr::Spanned;

/// A playbook file (one YAML document).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlaybook {
    pub id: Spanned<String>,
    pub version: Spanned<String>,
    pub name: String,
    /// The region this playbook governs, with everything below it.
    pub scope: Spanned<String>,
    /// Id of the parent playbook this one extends (a city's extends the province's).
    pub extends: Option<Spanned<String>>,
    pub horizon_days: Option<Spanned<u32>>,
    pub lead_time_hours: Option<Spanned<u32>>,
    pub lift_window_hours: Option<Spanned<u32>>,
    pub merge_gap_hours: Option<Spanned<u32>>,
    pub hold_higher: Option<Spanned<bool>>,
    /// Primary pollutants whose days count towards the levels (环大气〔2024〕6号: PM only).
    pub level_pollutants: Option<Spanned<Vec<String>>>,
    /// Days led by another pollutant (or sand and dust) above this AQI get health advice.
    pub advisory_aqi_above: Option<Spanned<u16>>,
    /// Hours after the consultation within which the approval form (审批表) is completed.
    pub approval_form_hours: Option<Spanned<u32>>,
    /// Hours after sign-off (or an automatic decision) within which the office relays to departments.
    pub relay_hours: Option<Spanned<u32>>,
    /// A proposal made by a consultation is signed only once its 会商意见 is completed (or with a reason).
    pub record_before_sign: Option<Spanned<bool>>,
    /// The body that issues this playbook's warnings (never inherited: each authority speaks in its own name).
    pub issuer: Option<RawIssuer>,
    /// Reports up (信息报送): the upper tier's office and the daily report's time (each inherited).
    pub reports: Option<RawReports>,
    /// Re-publication while a warning is in force: hours per level id (absent: none).
    pub republish_hours: Option<Spanned<std::collections::BTreeMap<String, u32>>>,
    pub roles: Option<Vec<RawRole>>,
    pub levels: Option<Vec<Spanned<RawLevel>>>,
    pub consultations: Option<Vec<RawConsultation>>,
    #[serde(default)]
    pub directives: Vec<Spanned<RawDirective>>,
}

/// The issuing body (发布单位) of a playbook's warnings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIssuer {
    /// Chinese name (太原市重污染天气应急指挥部办公室).
    pub name: Spanned<String>,
    /// English name, for the CAP `en-US` block.
    pub name_en: Option<String>,
    /// CAP `sender`: an address-like id without spaces, commas or `<>&`.
    pub sender: Option<Spanned<String>>,
}

/// Reports up (信息报送).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReports {
    /// The upper tier's office that reports go to.
    pub to: Option<RawReportTo>,
    /// Time of day (`HH:MM`, Asia/Shanghai) of the daily report while a warning is in force.
    pub daily_at: Option<Spanned<String>>,
    /// Hours after a decision (issue, adjust, lift, cancel) within which its report goes up.
    pub event_within_hours: Option<Spanned<u32>>,
    /// Whether the after-episode summary (总结评估) is made and sent when a warning ends.
    pub summary: Option<Spanned<bool>>,
}

/// The upper tier's office: its name and mail address.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReportTo {
    pub name: Spanned<String>,
    pub email: Spanned<String>,
}

/// A role that may sign, with its authority rank (higher signs more).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRole {
    pub id: Spanned<String>,
    pub name: String,
    pub rank: Spanned<u32>,
}

/// A warning level, or (in a child playbook) the fields of a parent's level that it overrides.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLevel {
    pub id: Spanned<String>,
    pub rank: Option<Spanned<u32>>,
    pub name: Option<String>,
    pub colour: Option<Spanned<String>>,
    pub response: Option<String>,
    pub sign_off: Option<Spanned<String>>,
    pub entry: Option<Spanned<RawRule>>,
}

/// An entry rule: exactly one of `all`, `any`, or a leaf (`aqi_gt`/`aqi_ge` with `days`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub all: Option<Vec<Spanned<RawRule>>>,
    pub any: Option<Vec<Spanned<RawRule>>>,
    pub aqi_gt: Option<Spanned<u32>>,
    pub aqi_ge: Option<Spanned<u32>>,
    pub days: Option<Spanned<u32>>,
}

/// A daily consultation (每日会商) slot.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConsultation {
    pub name: String,
    pub cron: Spanned<String>,
}

/// A regional directive (调度令) issued by this playbook's tier.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDirective {
    pub id: Spanned<String>,
    pub name: String,
    pub min_level: Spanned<String>,
    pub regions: Vec<Spanned<String>>,
    pub from: Spanned<String>,
    pub until: Option<Spanned<String>>,
}
