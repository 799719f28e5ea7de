//! The approval form (《重污染天气预警信息发布（调整、解除）审批表》, domain.md §2.5): one per decision to
//! issue, adjust or lift a warning, with the fields the plans name (出现时段、预警等级、发布时间、不利气象条件、
//! 趋势分析、应急措施), who signed, and the times achieved against the two deadlines (the form completed
//! within `approval_form_hours` of the consultation, the relay to departments within `relay_hours`
//! of the sign-off). Pure: the record and what it says about its deadlines.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::level::LevelId;
use crate::domain::opinion::Decision;
use crate::domain::region::RegionCode;

/// What the form approves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FormKind {
    /// 发布: a new warning.
    Issue,
    /// 调整: another level.
    Adjust,
    /// 解除 (or, before the start, 取消).
    Lift,
}

impl FormKind {
    /// As the form's title names it.
    pub fn zh(self) -> &'static str {
        match self {
            FormKind::Issue => "发布",
            FormKind::Adjust => "调整",
            FormKind::Lift => "解除",
        }
    }
}

/// Which deadline of a form a timer chases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FormStage {
    /// The form completed (within `approval_form_hours` of the consultation).
    Form,
    /// The decision relayed to the departments (within `relay_hours` of the sign-off).
    Relay,
}

/// What the meeting (会商意见) concluded for the form's region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meeting {
    /// The consultation's seq.
    pub consultation: u64,
    /// Accepted, changed or rejected.
    pub decision: Decision,
    /// The engine's proposed level.
    pub proposed_level: LevelId,
    /// Its name (橙色预警; `无` for none).
    #[serde(default)]
    pub proposed_level_name: String,
    /// Why a change or a rejection.
    pub reason: String,
}

/// One approval form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalForm {
    /// `{warning id}.{n}`.
    pub id: String,
    /// The warning.
    pub warning_id: String,
    /// Its number within the warning (1, 2, …).
    pub n: u32,
    /// Issue, adjust or lift.
    pub kind: FormKind,
    /// The warning's region.
    pub region: RegionCode,
    /// The playbook pinned (`id@version`).
    pub playbook: String,
    /// The issuing body.
    pub issuer: String,
    /// 预警等级: the level approved (for a lift, the level lifted).
    pub level: LevelId,
    /// Its name (橙色预警).
    pub level_name: String,
    /// Its response (Ⅱ级).
    pub response: String,
    /// For an adjustment: the level before.
    pub from_level_name: Option<String>,
    /// 出现时段: from.
    pub period_from: Option<DateTime<Utc>>,
    /// 出现时段: until (the expected end).
    pub period_until: Option<DateTime<Utc>>,
    /// When an adjustment or a lift takes effect.
    pub effective: Option<DateTime<Utc>>,
    /// The decision's time (the consultation's, or the operator's).
    pub opened_at: DateTime<Utc>,
    /// The consultation behind it, if one.
    pub consultation: Option<u64>,
    /// The role that must sign (its title), `None` when the playbook decides without a signer.
    pub needs: Option<String>,
    /// What the meeting concluded, once its record is in.
    #[serde(default)]
    pub meeting: Option<Meeting>,
    /// 不利气象条件.
    #[serde(default)]
    pub weather: String,
    /// 趋势分析.
    #[serde(default)]
    pub trend: String,
    /// 应急措施.
    #[serde(default)]
    pub measures: String,
    /// The form is due completed by this (none: the playbook sets no deadline).
    pub form_due: Option<DateTime<Utc>>,
    /// Completed (填表) at, by.
    pub completed_at: Option<DateTime<Utc>>,
    /// Who completed it.
    pub completed_by: Option<String>,
    /// Signed (签发) by (name), with the role's title.
    pub signer: Option<String>,
    /// When (for a decision without a signer, the decision's time).
    pub signed_at: Option<DateTime<Utc>>,
    /// The relay is due by this.
    pub relay_due: Option<DateTime<Utc>>,
    /// Relayed to the departments at, by, with a note (文号, channels).
    pub relayed_at: Option<DateTime<Utc>>,
    /// Who recorded the relay.
    pub relayed_by: Option<String>,
    /// The note given with the relay.
    #[serde(default)]
    pub relay_note: String,
    /// Set when the decision was withdrawn before it was signed: why.
    pub void: Option<String>,
    /// Signed before the consultation's record (会商意见) was completed, where the playbook asks for it
    /// first (`record_before_sign`): the signer's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub without_record: Option<String>,
    /// A drill's form (演练): of a drill's warning; its title, page and Word file say 【演练】 and the
    /// lists of real forms leave it out.
    #[serde(default, skip_serializing_if = "crate::domain::warning::is_false")]
    pub exercise: bool,
}

/// A deadline and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Achieved {
    /// The deadline.
    pub due: Option<DateTime<Utc>>,
    /// When it was done.
    pub done: Option<DateTime<Utc>>,
    /// Minutes from the start to done (or to now while open).
    pub minutes: Option<i64>,
    /// Done after the deadline, or still open past it.
    pub late: bool,
}

impl ApprovalForm {
    /// Whether a stage is done (or no longer needed).
    pub fn done(&self, stage: FormStage) -> bool {
        self.void.is_some()
            || match stage {
                FormStage::Form => self.completed_at.is_some(),
                FormStage::Relay => self.relayed_at.is_some(),
            }
    }

    /// Whether the decision is signed (or needs no signer and was decided).
    pub fn signed(&self) -> bool {
        self.signed_at.is_some()
    }

    /// How a stage went as of `now`: the form from its opening, the relay from its signature.
    pub fn achieved(&self, stage: FormStage, now: DateTime<Utc>) -> Achieved {
        let (start, due, done) = match stage {
            FormStage::Form => (Some(self.opened_at), self.form_due, self.completed_at),
            FormStage::Relay => (self.signed_at, self.relay_due, self.relayed_at),
        };
        let end = done.unwrap_or(now);
        Achieved {
            due,
            done,
            minutes: start.map(|s| (end - s).num_minutes().max(0)),
            late: due.is_some_and(|d| end > d) && (done.is_some() || self.void.is_none()),
        }
    }
}

/// `3小时05分`, as the form shows a duration.
pub fn duration_zh(minutes: i64) -> String {
    let d = Duration::minutes(minutes);
    match (d.num_hours(), minutes % 60) {
        (0, m) => format!("{m}分钟"),
        (h, 0) => format!("{h}小时"),
        (h, m) => format!("{h}小时{m:02}分"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_done_after_its_deadline_is_late_and_its_time_counts_from_its_start() {
        let t = |h: i64| DateTime::parse_from_rfc3339("2026-12-02T02:00:00Z").unwrap().with_timezone(&Utc) + Duration::minutes(h);
        let mut f = ApprovalForm {
            id: "140100-20261202-1.1".into(),
            warning_id: "140100-20261202-1".into(),
            n: 1,
            kind: FormKind::Issue,
            region: RegionCode::parse("140100").unwrap(),
            playbook: "taiyuan@2026.1".into(),
            issuer: "太原市重污染天气应急指挥部办公室".into(),
            level: LevelId::new("orange"),
            level_name: "橙色预警".into(),
            response: "Ⅱ级".into(),
            from_level_name: None,
            period_from: None,
            period_until: None,
            effective: None,
            opened_at: t(0),
            consultation: Some(3),
            needs: Some("分管副市长".into()),
            meeting: None,
            weather: String::new(),
            trend: String::new(),
            measures: String::new(),
            form_due: Some(t(120)),
            completed_at: Some(t(95)),
            completed_by: Some("王芳".into()),
            signer: Some("李副市长".into()),
            signed_at: Some(t(100)),
            relay_due: Some(t(220)),
            relayed_at: None,
            relayed_by: None,
            relay_note: String::new(),
            void: None,
            without_record: None,
            exercise: false,
        };
        let form = f.achieved(FormStage::Form, t(500));
        assert_eq!((form.minutes, form.late), (Some(95), false));
        let relay = f.achieved(FormStage::Relay, t(230));
        assert_eq!((relay.minutes, relay.late), (Some(130), true), "still open past its deadline");
        f.relayed_at = Some(t(200));
        assert!(!f.achieved(FormStage::Relay, t(230)).late);
        assert_eq!(duration_zh(95), "1小时35分");
        assert_eq!(duration_zh(120), "2小时");
        assert_eq!(duration_zh(7), "7分钟");
    }
}
