//! hazeflow: the heavy-pollution-weather emergency response (重污染天气应急) of a province, its cities and
//! counties.
//!
//! # Layout
//!
//! The modules follow the way data moves, pure stages first:
//!
//! - [`region`]: the three tiers of administrative regions (GB/T 2260), groups and retired-code aliases.
//! - [`aqi`]: IAQI / AQI per HJ 633-2012 and HJ 633-2026.
//! - [`forecast`]: forecast files (CSV, JSON) parsed into a validated [`forecast::Forecast`].
//! - [`playbook`]: YAML playbooks: levels, entry rules, lift window, sign-off, consultations, inheritance.
//! - [`consult`]: assessment (pure): forecast + playbook → proposed level per region.
//! - [`warning`]: the warning lifecycle (pure state machine).
//! - [`replay`]: observations replayed as perfect forecasts through assessment and lifecycle.
//! - [`in_force`]: the warning in force in a region (its own, or its city's or province's).
//! - [`registry`]: the emergency reduction list (一厂一策): enterprises, grades, measures, defaults, reports.
//!
//! Then the daemon, effects at the edges:
//!
//! - [`store`]: the event log and its views on redb, group commit.
//! - [`engine`]: one write job per operation (submit, consult, sign, lift, directive, tick), and the
//!   [`engine::Stage`]s that act in the same transaction as lifecycle events:
//! - [`assign`]: assignments to enterprises and departments; [`list`]: the list as stored.
//! - [`notify`]: who is told what (duty rosters), the outbox, delivery by email and webhooks.
//! - [`notice`]: the email each new enterprise or department assignment sends (measures or duty, deadline,
//!   link), and the end notices.
//! - [`ack`]: acknowledgements from the link in a notice, and their progress.
//! - [`escalate`]: reminders and escalation of overdue acknowledgements, on durable timers.
//! - [`inspect`]: inspection tasks (监督帮扶) and their findings.
//! - [`negotiate`]: negotiated reductions (协商减排), acknowledged like measures.
//! - [`episode`]: the after-episode summary (总结评估).
//! - [`inbox`], [`schedule`]: the forecast folder; consultations at cron times and the clock tick.
//! - [`authority`]: which staff role may do which write, decided by the playbooks.
//! - [`http`]: the server loop: connection limit, header and body timeouts, JSON errors, security headers.
//! - [`api`]: the JSON API; [`dashboard`]: the duty-staff pages; [`publish`]: public page, Atom, CAP 1.2.
//! - [`app`]: builds all of it from [`config`] and runs it until shutdown; [`clock`] is injected;
//!   [`systemd`]: readiness and watchdog (`sd_notify`).
//! - [`backup`]: `hazeflow backup` / `restore` (a consistent copy, through the daemon while it runs).
//! - [`commands`], [`client`]: the CLI's offline commands and its client of the daemon; [`demo`]: the
//!   first-start sample.
/// The process's allocator: mimalloc instead of glibc's malloc. A notice, an acknowledgement and a
/// store page each allocate and free many small buffers across threads; under glibc that was a fifth
/// of the daemon's CPU in the acknowledgement and delivery benchmarks (`perf`, issue 17). Set here,
/// so the daemon, its tests and its benchmarks all run on the same one.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod domain;
pub mod engine;
pub mod logs;
pub mod notify;
pub mod registry;
pub mod store;
pub mod systemd;
pub mod templates;
pub mod web;
pub mod workers;
