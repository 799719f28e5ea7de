//! hazeflow: the heavy-pollution-weather emergency response (重污染天气应急) of a province, its cities and
//! counties.
//!
//! # Layout
//!
//! The modules follow the way data moves:
//!
//! - [`region`]: the three tiers of administrative regions (GB/T 2260), groups and retired-code aliases.
//! - [`aqi`]: IAQI / AQI per HJ 633-2012 and HJ 633-2026.
//! - [`forecast`]: forecast files (CSV, JSON) parsed into a validated [`forecast::Forecast`].
//! - [`playbook`]: YAML playbooks: levels, entry rules, lift window, sign-off, consultations, inheritance.
//! - [`consult`]: assessment (pure): forecast + playbook → proposed level per region.
//! - [`warning`]: the warning lifecycle (pure state machine).
//! - [`replay`]: observations replayed as perfect forecasts through assessment and lifecycle.
pub mod aqi;
pub mod commands;
pub mod consult;
pub mod forecast;
pub mod playbook;
pub mod region;
pub mod replay;
pub mod warning;
