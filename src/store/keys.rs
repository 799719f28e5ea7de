//! The collections of the `docs` table and ordered keys: the only place that names them. The stages
//! name a collection by [`Collection`] and build ordered keys with [`seq_key`], [`millis_key`] and
//! [`version_key`]; the strings are here. (How a backend lays its tables out is the backend's own:
//! `embedded/tables.rs` for the redb file.)

/// The key of a region's lifecycle state in `region_states`: the region code for its real warnings,
/// the code plus [`DRILL_LANE`] for its drills (演练). GB/T 2260 codes are six digits, so the drill
/// lane sorts after every real region and never decodes as a region: scans of the real states skip it.
pub fn lane_key(region: crate::domain::region::RegionCode, exercise: bool) -> u32 {
    region.as_u32() + if exercise { DRILL_LANE } else { 0 }
}

/// Added to a region code for its drill lane (see [`lane_key`]).
pub const DRILL_LANE: u32 = 1_000_000;

/// The collections of the `docs` table: the views the stages keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Collection {
    /// county/uscc → Enterprise (the list as stored).
    Enterprises,
    /// The list's membership index.
    EnterpriseMembers,
    /// uscc → county.
    EnterpriseCounty,
    /// version → list version summary.
    ListVersions,
    /// Assignment rounds by warning.
    AssignmentRounds,
    /// round seq → round.
    AssignmentRoundSeq,
    /// Notice fan-outs waiting to be expanded into the outbox.
    NoticeFanout,
    /// Acknowledgement timers (reminders, overdue, escalation), by due time.
    AckTimers,
    /// Inspection tasks.
    Inspections,
    /// Sources of the playbook versions in use.
    PlaybookSources,
    /// Outbox messages by id.
    Outbox,
    /// Outbox messages by due time.
    OutboxDue,
    /// Messages being sent.
    OutboxInflight,
    /// What changes about a message as it is sent (status, attempts, next attempt, last error), by id.
    OutboxState,
    /// Delivery attempts.
    DeliveryLog,
    /// Keys every node shares when the store is shared (PostgreSQL): `link/k{N}` (acknowledgement
    /// links), `session/k{N}` (the dashboard's sessions and forms).
    Secrets,
    /// consultation seq → its record (会商意见).
    ConsultationOpinions,
    /// `{warning}/{n:03}` → approval form (审批表).
    ApprovalForms,
    /// `{warning}.daily.{YYYYMMDD}` → report up (信息报送).
    Reports,
    /// warning id → its after-episode summary still to be made.
    ReportsDue,
    /// `{warning}.{n:03}` → a re-publication made (定时重新发布).
    Republications,
    /// `{warning}.{n:03}` → a re-publication whose reminders are still being queued (its cursor).
    RepublishReminders,
    /// A collection of the store's own tests.
    #[cfg(test)]
    Test(&'static str),
}

impl Collection {
    /// The name on disk.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Collection::Enterprises => "enterprises",
            Collection::EnterpriseMembers => "enterprise_members",
            Collection::EnterpriseCounty => "enterprise_county",
            Collection::ListVersions => "list_versions",
            Collection::AssignmentRounds => "assignment_rounds",
            Collection::AssignmentRoundSeq => "assignment_round_seq",
            Collection::NoticeFanout => "notice_fanout",
            Collection::AckTimers => "ack_timers",
            Collection::Inspections => "inspections",
            Collection::PlaybookSources => "playbook_sources",
            Collection::Outbox => "outbox",
            Collection::OutboxDue => "outbox_due",
            Collection::OutboxInflight => "outbox_inflight",
            Collection::OutboxState => "outbox_state",
            Collection::DeliveryLog => "delivery_log",
            Collection::Secrets => "secrets",
            Collection::ConsultationOpinions => "consultation_opinions",
            Collection::ApprovalForms => "approval_forms",
            Collection::Reports => "reports",
            Collection::ReportsDue => "reports_due",
            Collection::Republications => "republications",
            Collection::RepublishReminders => "republish_reminders",
            #[cfg(test)]
            Collection::Test(name) => name,
        }
    }
}

/// A sequence number as a key that sorts in numeric order (12 digits).
pub fn seq_key(seq: u64) -> String {
    format!("{seq:012}")
}

/// A time as a key prefix that sorts in time order: milliseconds since 1970 (15 digits; 0 before).
pub fn millis_key(at: chrono::DateTime<chrono::Utc>) -> String {
    format!("{:015}", at.timestamp_millis().max(0))
}

/// A list version as a key that sorts in numeric order (10 digits).
pub fn version_key(version: u64) -> String {
    format!("{version:010}")
}
