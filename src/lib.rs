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
//! - [`dashboard`]: the duty-staff pages at `/` (server-rendered Chinese HTML over the engine).
//! - [`notify`]: who is told what (duty rosters), the outbox, delivery by email and webhooks.
//! - [`escalate`]: reminders and escalation of overdue acknowledgements, on durable timers.
//! - [`inspect`]: inspection tasks (监督帮扶) and their findings.
//! - [`negotiate`]: negotiated reductions (协商减排), acknowledged like measures.
//! - [`episode`]: the after-episode summary (总结评估).
pub mod ack;
pub mod api;
pub mod app;
pub mod aqi;
pub mod assign;
pub mod client;
pub mod clock;
pub mod commands;
pub mod config;
pub mod engine;
pub mod episode;
pub mod escalate;
pub mod consult;
pub mod dashboard;
pub mod demo;
pub mod forecast;
pub mod inbox;
pub mod inspect;
pub mod list;
pub mod negotiate;
pub mod notify;
pub mod playbook;
pub mod publish;
pub mod region;
pub mod registry;
pub mod replay;
pub mod schedule;
pub mod store;
pub mod warning;
