//! The daemon, end to end: the real application on port 0 with a temporary folder, the shipped
//! playbooks and a manual clock, driven over HTTP and through its inbox like its users drive it.
//!
//! - `helpers`: `spawn_app()` and what tests do to a running daemon;
//! - `flow`: a forecast becomes a warning that is signed, upgraded and lifted; directives; reload;
//! - `api`: forecasts over HTTP, duplicates, health, metrics, the event log, the CLI;
//! - `restart`: stop and start, and SIGKILL in the middle of a burst of forecasts;
//! - `bad_input`: bad files, bad bodies, unknown ids, missing tokens.

mod api;
mod bad_input;
mod flow;
mod helpers;
mod restart;
