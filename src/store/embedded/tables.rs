//! The redb tables: names, key and value types on disk. Values are JSON (readable with any redb
//! viewer, and tolerant of added fields). Keys: sequence numbers as `u64` (ascending, so appends are
//! sequential writes), region codes as `u32`, ids as text.

use redb::TableDefinition;

/// `format_version`, … → bytes.
pub(super) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// seq → Record (the log).
pub(super) const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// forecast id → Forecast.
pub(super) const FORECASTS: TableDefinition<&str, &[u8]> = TableDefinition::new("forecasts");
/// region → id of its latest forecast (by issue time).
pub(super) const LATEST: TableDefinition<u32, &str> = TableDefinition::new("latest_forecast");
/// seq → ConsultationRecord.
pub(super) const CONSULTATIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("consultations");
/// region → RegionState.
pub(super) const REGION_STATES: TableDefinition<u32, &[u8]> = TableDefinition::new("region_states");
/// warning id → Warning.
pub(super) const WARNINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("warnings");
/// (warning id, seq) → () : the history index.
pub(super) const WARNING_EVENTS: TableDefinition<(&str, u64), ()> = TableDefinition::new("warning_events");
/// directive id → DirectiveRecord.
pub(super) const DIRECTIVES: TableDefinition<&str, &[u8]> = TableDefinition::new("directives");
/// counter name → value.
pub(super) const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
/// (collection, key) → JSON document: storage for the stages that keep their own views
/// (registry, assignments, outbox, acknowledgements).
pub(super) const DOCS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("docs");

/// (batch, index) → JSON item: numbered runs written in one go (a round of assignments: hundreds of
/// thousands of entries with sequential keys, the fastest pattern for the B-tree).
pub(super) const ITEMS: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("items");

/// The meta key of the format version.
pub(super) const FORMAT_KEY: &str = "format_version";
