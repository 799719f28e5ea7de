//! The emergency reduction list (应急减排清单) and "one factory, one policy" (一厂一策): enterprises,
//! grades, measures, industry defaults, coverage and reduction reports, the 公示牌.
//!
//! What comes in: list files (CSV or YAML, below), the industry defaults
//! (`playbooks/measures/*.yaml`, schema in [`defaults`]), a permit register and whole-society
//! emissions (CSV, in [`reports`]). What goes out: a validated [`ListVersion`] (or every
//! [`RegistryError`] of the import, each `file:line:column: message`), its [`ListDiff`] against
//! the previous version, the measures an enterprise takes at a level ([`Defaults::measures_for`]),
//! coverage and reduction reports and the board text. Everything here is pure: no clock (the
//! caller passes `now`), no database; the CLI in [`cli`] reads files, and the store records
//! versions.
//!
//! - `types.rs`: [`Uscc`], [`PermitNo`], [`Grade`], [`MeasureKind`], [`Enterprise`] …
//! - `species.rs`: the emission species [`Species`] (SO2, NOx, PM, VOCs) and [`PerSpecies`], one value each;
//! - [`defaults`]: the per-industry × grade × level measures, targets, deadlines, duties;
//! - [`import`]: CSV/YAML → validated enterprises → [`ListVersion`]; [`diff`];
//! - [`reports`]: coverage against permits, reductions against targets, the board;
//! - [`render`]: the one wording of a measure line (`烧结机、球团设备：停产`, `全厂：…`);
//! - [`cli`]: `hazeflow registry …`.
//!
//! # List files (CSV)
//!
//! Both files: UTF-8, lines starting with `#` are comments, the first other line is the header;
//! columns may come in any order, unknown columns are an error, empty cells are missing values.
//! Lines and columns in error messages are 1-based and count comment lines.
//!
//! `enterprises.csv`, one row per enterprise:
//!
//! | column | meaning |
//! |---|---|
//! | `uscc` | unified social credit code (GB 32100), required |
//! | `uscc_override` | `1` when the code is a legal pilot code that fails the checksum; else empty or `0` |
//! | `permit_no` | emission permit number (HJ 608: the USCC + `001` + a letter); its USCC must be the row's |
//! | `name` | registered name, required |
//! | `county` | county-level GB/T 2260 code where it operates, required |
//! | `industry_code` | GB/T 4754 class, 4 digits, required |
//! | `key_industry` | key-industry id from the measure defaults (`cement`, `coking` …); empty for other enterprises |
//! | `grade` | `A+ A B B- C D 引领性 非引领性 未分级` (or `leading`, `non_leading`, `ungraded`); empty = ungraded |
//! | `grade_since`, `grade_reason` | the grade's effective date (`YYYY-MM-DD`) and why |
//! | `exemption`, `exemption_max_load_percent` | 保障类 kind (`livelihood`, `strategic_emerging`, `military`, `export`, `key_project`, `other`) and its capped load, 0 < x ≤ 100; both or neither |
//! | `so2`, `nox`, `pm`, `vocs` | baseline emissions (减排基数), t/day, ≥ 0 |
//! | `contact_role`, `contact_name`, `contact_email`, `contact_phone` | the 责任人 who receives notices (email required) |
//!
//! `measures.csv`, lines and measures (一厂一策), one row each, told apart by `record`:
//!
//! | column | `record=line` | `record=measure` |
//! |---|---|---|
//! | `uscc` | the enterprise (must be in `enterprises.csv`) | same |
//! | `line` | line id, unique within the enterprise | the line the measure is for; empty = whole enterprise |
//! | `name` | line name (`1#焦炉`) | — |
//! | `capacity`, `unit` | design capacity per day and its unit (`t/d`) | — |
//! | `eia_capacity`, `permit_capacity`, `last_year_output` | the §3 limit-baseline figures per day (optional) | — |
//! | `contact_name`, `contact_phone`, `contact_email` | the line's 工序责任人 (optional; phone required if named) | — |
//! | `level` | — | level id (`yellow`, `orange`, `red`) |
//! | `measure`, `value` | — | kind and value: `stop`, `limit_percent` x, `stop_share_percent` x, `extend_coking_hours` h, `stop_trucks_up_to_standard` N, `stop_road_transport`, `cap_load_percent` x, `self_determined`, `other` (text) |
//! | `process` | — | process or equipment named (烧结机), optional |
//! | `so2`, `nox`, `pm`, `vocs` | — | expected reduction, fraction 0..=1 of the enterprise's baseline; all empty = implied by the kind (stop 1, limit x % → x/100 …) times the line's share of capacity |
//! | `note` | — | free text (key indicators) |
//!
//! A cell that does not belong to the row's `record` must be empty.
//!
//! # List files (YAML)
//!
//! One document `enterprises: [...]`, each item with the same fields as a CSV row (`uscc`, `name`,
//! `county`, …) plus `baseline: {so2, nox, pm, vocs}`, `exemption: {kind, max_load_percent}`,
//! `grade_history: [{grade, since, reason}]`, `contacts: [{role, name, email, phone}]`,
//! `lines: [{id, name, capacity, unit, eia_capacity, permit_capacity, last_year_output,
//! contact: {name, phone, email}}]` and `measures: [{level, line, measure, value, process,
//! reduction: {so2, nox, pm, vocs}, note}]`. Unknown keys are errors.

mod species;
mod types;

pub mod cli;
pub mod defaults;
pub mod import;
pub mod render;
pub mod reports;

pub use defaults::{AssignedMeasure, Defaults, MeasureSource, load_defaults, shanxi_defaults, unknown_levels};
pub use import::{ListDiff, ListVersion, diff};
pub use render::{WHOLE_PLANT, commitment_json, measure_item, measure_json, measure_subject};
pub use species::{PartialPerSpecies, PerSpecies, Species};
pub use types::*;

/// One problem in a registry file (list, defaults, permits, emissions), where it is and what is
/// wrong (`file:line:column: message`, `0:0` for the whole file).
pub type RegistryError = crate::domain::diagnostic::Diagnostic;

/// Formats a serde-saphyr syntax error as a [`RegistryError`].
pub(crate) fn yaml_error(file: &str, e: &serde_saphyr::Error) -> RegistryError {
    let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
    let text = e.without_snippet().to_string();
    let message = text.rsplit_once(" at line ").map_or(text.as_str(), |(m, _)| m).to_string();
    RegistryError::at(file, line, column, message)
}
