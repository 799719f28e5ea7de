//! The daemon, end to end: the real application on port 0 with a temporary folder, the shipped
//! playbooks and a manual clock, driven over HTTP and through its inbox like its users drive it.
//!
//! - `common` (shared with the `notify` and `acks` tests): the daemon on port 0, settings, HTTP calls,
//!   the wall clock, `eventually`;
//! - `helpers`: `spawn_app()` and what these tests do to a running daemon;
//! - `flow`: a forecast becomes a warning that is signed, upgraded and lifted; directives; reload;
//! - `api`: forecasts over HTTP, duplicates, health, metrics, the event log, the CLI;
//! - `openapi`: the API description against the routes; every list's paging;
//! - `restart`: stop and start, and SIGKILL in the middle of a burst of forecasts;
//! - `drill`: drills (演练) from the inbox, the CLI and a directive run apart from the real warnings;
//! - `fixture_store`: a store of the previous format opens and keeps every event;
//! - `bad_input`: bad files, bad bodies, unknown ids, missing tokens;
//! - `consult`: the consultation's record (会商意见) and the approval forms (审批表), their timers, the .docx;
//! - `upstream`: warnings from above (上级预警): started at their levels, held, lifted by their own lift;
//! - `postgres`: the PostgreSQL store against a real cluster: the embedded file's promises, the flow.

#[path = "../common/mod.rs"]
mod common;

mod api;
mod authority;
mod bad_input;
mod consult;
mod drill;
mod faults;
mod fixture_store;
mod flow;
mod hardening;
mod helpers;
mod openapi;
mod postgres;
mod restart;
mod upstream;
