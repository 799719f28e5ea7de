//! Table definitions, the collections of the `docs` table and key encoding: the only place that
//! knows how data is laid out on disk. The stages name a collection by [`Collection`] and build
//! ordered keys with [`seq_key`], [`millis_key`] and [`version_key`]; the strings are here.
//!
//! Values are JSON (readable with any redb viewer, and tolerant of added fields). Keys: sequence
//! numbers as `u64` (ascending, so appends are sequential writes), region codes as `u32`, ids as text.

use redb::TableDefinition;

/// `format_version`, … → bytes.
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// seq → Record (the log).
pub(crate) const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// forecast id → Forecast.
pub(crate) const FORECASTS: TableDefinition<&str, &[u8]> = TableDefinition::new("forecasts");
/// region → id of its latest forecast (by issue time).
pub(crate) const LATEST: TableDefinition<u32, &str> = TableDefinition::new("latest_forecast");
/// seq → ConsultationRecord.
pub(crate) const CONSULTATIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("consultations");
/// region → RegionState.
pub(crate) const REGION_STATES: TableDefinition<u32, &[u8]> = TableDefinition::new("region_states");
/// warning id → Warning.
pub(crate) const WARNINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("warnings");
/// (warning id, seq) → () : the history index.
pub(crate) const WARNING_EVENTS: TableDefinition<(&str, u64), ()> = TableDefinition::new("warning_events");
/// directive id → DirectiveRecord.
pub(crate) const DIRECTIVES: TableDefinition<&str, &[u8]> = TableDefinition::new("directives");
/// counter name → value.
pub(crate) const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
/// (collection, key) → JSON document: storage for the stages that keep their own views
/// (registry, assignments, outbox, acknowledgements).
pub(crate) const DOCS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("docs");

/// (batch, index) → JSON item: numbered runs written in one go (a round of assignments: hundreds of
/// thousands of entries with sequential keys, the fastest pattern for the B-tree).
pub(crate) const ITEMS: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("items");

/// The meta key of the format version.
pub(crate) const FORMAT_KEY: &str = "format_version";

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
    /// Delivery attempts.
    DeliveryLog,
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
            Collection::DeliveryLog => "delivery_log",
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
