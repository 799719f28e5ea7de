//! Acknowledgements end to end: the real daemon on port 0 over real HTTP, a temporary folder, a manual
//! clock, the shipped playbooks, roster and templates, and a small list (three enterprises in Taiyuan,
//! one in Datong). Mail goes to `.eml` files; the tests read the outbox and those files. Each test reads
//! as a timeline.
//!
//! - `common` (shared with the `daemon` and `notify` tests): the daemon on port 0, settings, HTTP calls,
//!   the wall clock, `eventually`;
//! - `helpers`: `spawn_app()`, the test list, issuing warnings, reading the outbox;
//! - `flow`: a warning assigns the right enterprises their measures; upgrade supersedes, lift ends;
//!   an acknowledgement from the link shows in the progress and stops the reminder;
//! - `escalation`: no acknowledgement → reminder, then the county's, the city's and the province's duty
//!   staff, each once, across restarts;
//! - `inspections`: overdue enterprises become inspection tasks; findings; non-compliance events;
//!   negotiated reductions (协商减排);
//! - `summary`: the after-episode summary over HTTP and from the CLI;
//! - `keys`: acknowledgement-link keys rotated: old links (and those without a key id) work until
//!   their key is removed;
//! - `security`: wrong, superseded, ended and other enterprises' tokens; staff endpoints without a
//!   token; markup in names;
//! - `atomic`: a warning event and its assignments are one transaction;
//! - `authority`: a Taiyuan warning is in Taiyuan's name (sign-off request, enterprise notice, CAP).
//! - `told`: over a real SMTP conversation (the SMTP server of the `notify` tests, `smtp`), every
//!   enterprise and department hears of the start, the change and the end (lift or cancel) once each,
//!   with working links; one overdue digest per officer per cycle; inspections closed at the end.
//! - `departments`: a department without a contact on the roster is shown as 无联系人, neither reminded
//!   nor reported overdue; the others are told with their duty and link.
//! - `drill`: a drill (演练) beside a real warning of the same region: every mail 【演练】, its ack
//!   pages and CAP (`Exercise`) say so, the public page, the feed, the real warning and the counts
//!   untouched; the drill report's minutes per county, over HTTP and from the CLI.
//! - `reports`: reports up (信息报送): the daily report per county to the upper tier, once a day at
//!   the playbook's time across a restart, kept (API, `.docx`); a drill's its own, marked 【演练】.
//! - `two_stage`: 收到 and 措施已落实 each by its own deadline (the playbook's), said in the notice, on
//!   the page and on the dashboard; 措施已落实 only with every line ticked (page and server).

#[path = "../common/mod.rs"]
mod common;
mod helpers;
/// The in-process SMTP server of the `notify` tests (some of it unused here).
#[path = "../common/smtp.rs"]
#[allow(dead_code)]
mod smtp;

mod atomic;
mod authority;
mod departments;
mod drill;
mod escalation;
mod flow;
mod inspections;
mod keys;
mod reports;
mod reportsup;
mod security;
mod summary;
mod told;
mod two_stage;
