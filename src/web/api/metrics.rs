//! `/metrics` in the Prometheus text format (checked by `promtool check metrics` in the tests):
//! warnings by level and status, consultations, forecasts, events, deliveries by channel and
//! outcome, the outbox's depth and oldest due message, acknowledgements by state and overdue, reloads,
//! the store writer, build information and the process (from `/proc/self`).
//!
//! The acknowledgement figures walk the live warnings' assignments; they are computed at most once
//! every [`ACK_TTL`] and served from that snapshot in between, so a scrape stays cheap at 300,000.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::ApiError;
use crate::domain::level::LevelId;
use crate::web::AppState;

/// How long an acknowledgement snapshot is served.
const ACK_TTL: Duration = Duration::from_secs(15);

/// Acknowledgement figures: (level → assigned, received, in place, overdue), keyed by store id.
type AckSnapshot = BTreeMap<LevelId, [usize; 4]>;
static ACKS: Mutex<Option<(u64, Instant, AckSnapshot)>> = Mutex::new(None);

/// One metric family: its help, type and samples.
struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        if labels.is_empty() {
            let _ = writeln!(self.0, "{name} {value}");
        } else {
            let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
            let _ = writeln!(self.0, "{name}{{{}}} {value}", l.join(","));
        }
    }
    fn one(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "get_metrics",
    tag = "operations",
    summary = "Prometheus metrics (text exposition format)",
    responses(
        (status = 200, description = "metrics", body = String, content_type = "text/plain")
    ),
    security(())
)]
pub(super) async fn metrics(State(s): State<Arc<AppState>>) -> Result<impl IntoResponse, ApiError> {
    let now = s.engine.clock.now();
    let (states, counters, events, oldest) = s.engine.store.read(|r| {
        Ok((
            r.region_states()?,
            r.counters()?,
            r.event_count()?,
            crate::notify::outbox::oldest_due(r)?,
        ))
    })?;
    let mut by: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut live = Vec::new();
    for (_, st) in &states {
        if let Some(w) = st.live() {
            *by.entry((w.level.to_string(), format!("{:?}", w.status).to_lowercase()))
                .or_default() += 1;
            live.push((w.id.clone(), w.level.id.clone()));
        }
    }
    let c = |k: &str| counters.iter().find(|(n, _)| n == k).map_or(0, |(_, v)| *v);
    let mut o = Out(String::new());

    o.family("hazeflow_warnings", "gauge", "Live warnings (one per region) by level and status.");
    for ((level, status), n) in &by {
        o.sample("hazeflow_warnings", &[("level", level), ("status", status)], n);
    }
    o.one(
        "hazeflow_consultations_total",
        "counter",
        "Consultations held.",
        c("events_consultation_held"),
    );
    o.family("hazeflow_forecasts_total", "counter", "Forecasts by outcome.");
    o.sample(
        "hazeflow_forecasts_total",
        &[("outcome", "accepted")],
        c("events_forecast_accepted"),
    );
    o.sample(
        "hazeflow_forecasts_total",
        &[("outcome", "rejected")],
        c("events_forecast_rejected"),
    );
    o.one("hazeflow_events_total", "counter", "Records in the event log.", events);
    o.family("hazeflow_events_by_kind_total", "counter", "Records in the event log by kind.");
    for (name, v) in counters
        .iter()
        .filter(|(n, _)| n.starts_with("events_") && !n.ends_with("_held") && !n.starts_with("events_forecast"))
    {
        o.sample("hazeflow_events_by_kind_total", &[("kind", &name[7..])], v);
    }

    // Delivery, per channel (email, webhook): what was queued, and every attempt's outcome.
    let channels = crate::notify::Channel::ALL.map(crate::notify::Channel::as_str);
    o.family(
        "hazeflow_notifications_queued_total",
        "counter",
        "Messages put into the outbox, by channel.",
    );
    for ch in channels {
        o.sample(
            "hazeflow_notifications_queued_total",
            &[("channel", ch)],
            c(&format!("notify_queued_{ch}")),
        );
    }
    o.family(
        "hazeflow_deliveries_total",
        "counter",
        "Delivery attempts by channel and outcome (sent, retried: failed and scheduled again, failed: given up).",
    );
    for ch in channels {
        for outcome in ["sent", "retried", "failed"] {
            o.sample(
                "hazeflow_deliveries_total",
                &[("channel", ch), ("outcome", outcome)],
                c(&format!("notify_{outcome}_{ch}")),
            );
        }
    }
    o.family(
        "hazeflow_outbox_messages",
        "gauge",
        "Messages queued or in flight (neither sent nor given up), by channel.",
    );
    for ch in channels {
        let pending = c(&format!("notify_queued_{ch}"))
            .saturating_sub(c(&format!("notify_sent_{ch}")))
            .saturating_sub(c(&format!("notify_failed_{ch}")));
        o.sample("hazeflow_outbox_messages", &[("channel", ch)], pending);
    }
    let late = oldest.map_or(0.0, |t| ((now - t).num_milliseconds().max(0) as f64) / 1e3);
    o.one(
        "hazeflow_outbox_oldest_due_seconds",
        "gauge",
        "How long the earliest queued message has been due (0 when none is due).",
        late,
    );

    // Acknowledgements of the live warnings' current assignments, by level.
    let acks = ack_snapshot(&s, &live, now)?;
    o.family(
        "hazeflow_acknowledgements",
        "gauge",
        "Current assignments of live warnings by level and state (assigned, received, in_place).",
    );
    for (level, [assigned, received, in_place, _]) in &acks {
        o.sample("hazeflow_acknowledgements", &[("level", level), ("state", "assigned")], assigned);
        o.sample("hazeflow_acknowledgements", &[("level", level), ("state", "received")], received);
        o.sample("hazeflow_acknowledgements", &[("level", level), ("state", "in_place")], in_place);
    }
    o.family(
        "hazeflow_acknowledgements_overdue",
        "gauge",
        "Assignments past their deadline without a receipt, by level.",
    );
    for (level, [.., overdue]) in &acks {
        o.sample("hazeflow_acknowledgements_overdue", &[("level", level)], overdue);
    }

    // Playbook, roster and template loads.
    let status = s.engine.playbooks.status();
    o.family(
        "hazeflow_reloads_total",
        "counter",
        "Loads of the playbooks, roster and templates (the start's included), by outcome.",
    );
    o.sample(
        "hazeflow_reloads_total",
        &[("outcome", "ok")],
        s.engine.playbooks.loads[0].load(std::sync::atomic::Ordering::Relaxed),
    );
    o.sample(
        "hazeflow_reloads_total",
        &[("outcome", "refused")],
        s.engine.playbooks.loads[1].load(std::sync::atomic::Ordering::Relaxed),
    );
    o.one(
        "hazeflow_reload_last_timestamp_seconds",
        "gauge",
        "When the last load or reload was tried (Unix time).",
        status.at.map_or(0, |t| t.timestamp()),
    );
    o.one(
        "hazeflow_reload_last_ok",
        "gauge",
        "1 when the last load or reload was put live, 0 when it was refused.",
        u8::from(status.errors.is_empty()),
    );

    // The store's single writer.
    let w = s.engine.store.stats();
    o.one("hazeflow_store_jobs_total", "counter", "Write jobs run.", w.jobs);
    o.one(
        "hazeflow_store_job_seconds_total",
        "counter",
        "Time the writer spent running jobs.",
        w.job_micros as f64 / 1e6,
    );
    o.family(
        "hazeflow_store_commit_seconds",
        "summary",
        "Write transactions (group commits): count, and time spent committing (pages and fsync).",
    );
    o.sample("hazeflow_store_commit_seconds_sum", &[], w.commit_micros as f64 / 1e6);
    o.sample("hazeflow_store_commit_seconds_count", &[], w.batches);
    let (leader, term) = match s.engine.store.role() {
        crate::store::Role::Leader { term } => (1, term),
        crate::store::Role::Follower => (0, 0),
    };
    o.family(
        "hazeflow_leader",
        "gauge",
        "1 while this node leads (runs the scheduler, timers, inbox, fan-out and delivery), by store kind.",
    );
    o.sample("hazeflow_leader", &[("store", s.engine.store.kind())], leader);
    o.one(
        "hazeflow_leader_term",
        "gauge",
        "The term this node leads in (0: a follower; always 0 with the embedded file).",
        term,
    );

    o.family(
        "hazeflow_build_info",
        "gauge",
        "The running build: version and the playbook versions live.",
    );
    o.sample(
        "hazeflow_build_info",
        &[("version", env!("CARGO_PKG_VERSION")), ("playbooks", &status.versions.join(" "))],
        1,
    );
    process(&mut o);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], o.0))
}

/// Acknowledgement figures per level, recomputed when older than [`ACK_TTL`].
fn ack_snapshot(s: &AppState, live: &[(String, LevelId)], now: chrono::DateTime<chrono::Utc>) -> Result<AckSnapshot, ApiError> {
    let id = s.engine.store.id();
    if let Ok(g) = ACKS.lock()
        && let Some((sid, at, snap)) = g.as_ref()
        && *sid == id
        && at.elapsed() < ACK_TTL
    {
        return Ok(snap.clone());
    }
    let mut snap = AckSnapshot::new();
    for (warning, level) in live {
        let (per, _) = crate::engine::ack::progress_of(&s.engine.store, &s.notify.roster(), warning, now, 0)?;
        let e = snap.entry(level.clone()).or_default();
        for p in per.values() {
            e[0] += p.assigned;
            e[1] += p.received;
            e[2] += p.in_place;
            e[3] += p.overdue;
        }
    }
    if let Ok(mut g) = ACKS.lock() {
        *g = Some((id, Instant::now(), snap.clone()));
    }
    Ok(snap)
}

/// The process: resident memory, CPU time, open files and start time, read from `/proc/self`
/// (Linux; nothing elsewhere). Names as the Prometheus client libraries use them.
fn process(o: &mut Out) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the command's closing parenthesis: state is field 3, utime 14, stime 15,
    // starttime 22 (clock ticks), rss 24 (pages).
    let Some((_, rest)) = stat.rsplit_once(')') else { return };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i - 3).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let (ticks, page) = (100.0, 4096.0); // USER_HZ and the page size on Linux x86_64 and arm64
    o.one(
        "process_cpu_seconds_total",
        "counter",
        "User and system CPU time spent, in seconds.",
        (num(14) + num(15)) / ticks,
    );
    o.one(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        num(24) * page,
    );
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        o.one("process_open_fds", "gauge", "Number of open file descriptors.", fds.count());
    }
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("btime ")?.trim().parse::<f64>().ok()));
    if let Some(boot) = boot {
        o.one(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since the Unix epoch, in seconds.",
            boot + num(22) / ticks,
        );
    }
}
