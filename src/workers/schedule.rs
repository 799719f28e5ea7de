//! The scheduler: daily consultations (每日会商) at each playbook's cron times (Asia/Shanghai), on
//! demand, and a clock tick that lets warnings start and lift on time.
//!
//! Plain loops: the next slot from the cron expressions, `select!` on a short sleep, the on-demand
//! trigger and cancellation. A slot runs once: its time is recorded in the same transaction as the
//! consultation, so a second scheduler (or a restart) never runs it again. A daemon that was down
//! runs the most recent missed slot once at start-up, not once per missed slot.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::engine::Engine;

/// How often the loops look at the clock (the clock may be a test's manual one).
const POLL: Duration = Duration::from_millis(200);

/// The latest slot of any live playbook at or before `now`, after `since`.
pub fn due_slot(engine: &Engine, since: DateTime<Utc>, now: DateTime<Utc>) -> Option<(DateTime<Utc>, String)> {
    let mut best: Option<(DateTime<Utc>, String)> = None;
    for pb in engine.playbooks.live().iter() {
        for c in &pb.consultations {
            let mut t = since;
            // Walk forward to the last slot <= now (bounded: at most a few per day since `since`).
            let mut last = None;
            for _ in 0..10_000 {
                match c.next_after(t) {
                    Some(n) if n <= now => {
                        last = Some(n);
                        t = n;
                    }
                    _ => break,
                }
            }
            if let Some(l) = last
                && best.as_ref().is_none_or(|b| l > b.0)
            {
                best = Some((l, format!("{}/{}", pb.id, c.name)));
            }
        }
    }
    best
}

/// Runs consultations at their slots and on demand, until cancelled. With `on_forecast`, a forecast
/// recorded by another node sharing the store (a follower took it over HTTP) is consulted on too: the
/// "consult now" signal is this node's own, so the count of accepted forecasts is watched as well.
pub async fn run_consultations(engine: Arc<Engine>, cancel: CancellationToken, on_forecast: bool) {
    let shared = engine.store.kind() != "embedded";
    let accepted = || engine.store.read(|r| r.counter("events_forecast_accepted")).unwrap_or(0);
    let mut seen = accepted();
    // Start from the last slot run (or a day ago for a new store): a missed slot runs once.
    let last = engine.store.read(|r| r.counter("last_consultation_slot")).unwrap_or(0);
    let mut since = if last > 0 {
        DateTime::<Utc>::from_timestamp(last as i64, 0).unwrap_or_else(|| engine.clock.now())
    } else {
        engine.clock.now() - chrono::Duration::days(1)
    };
    loop {
        let now = engine.clock.now();
        if let Some((slot, name)) = due_slot(&engine, since, now) {
            let trigger = format!("{name} {}", slot.with_timezone(&chrono_tz::Asia::Shanghai).format("%Y-%m-%d %H:%M"));
            let span = tracing::info_span!("job", kind = "consultation", trigger = %trigger);
            let held = engine.consult(&trigger, Some(slot), None).instrument(span.clone()).await;
            let _job = span.enter();
            match held {
                Ok(Some(c)) => tracing::info!(slot = %slot, regions = c.assessments.len(), "scheduled consultation held"),
                Ok(None) => tracing::debug!(slot = %slot, "slot already run"),
                Err(e) => tracing::error!(error = %e, "scheduled consultation failed"),
            }
            since = slot;
            engine.after_change();
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            () = engine.consult_requested.notified() => {
                seen = accepted();
                let span = tracing::info_span!("job", kind = "consultation", trigger = "forecast received");
                let held = engine.consult("forecast received", None, None).instrument(span.clone()).await;
                let _job = span.enter();
                match held {
                    Ok(Some(c)) => tracing::info!(regions = c.assessments.len(), "consultation held on a new forecast"),
                    Ok(None) => {}
                    Err(e) => tracing::error!(error = %e, "consultation failed"),
                }
                engine.after_change();
            }
            () = tokio::time::sleep(POLL) => {
                if shared && on_forecast && accepted() > seen {
                    seen = accepted();
                    match engine.consult("forecast received", None, None).await {
                        Ok(Some(c)) => tracing::info!(regions = c.assessments.len(), "consultation held on a forecast another node recorded"),
                        Ok(None) => {}
                        Err(e) => tracing::error!(error = %e, "consultation failed"),
                    }
                    engine.after_change();
                }
            }
        }
    }
}

/// Ticks the lifecycle (start times, lift windows, directive expiry), until cancelled.
pub async fn run_ticks(engine: Arc<Engine>, cancel: CancellationToken, every: Duration) {
    loop {
        let span = tracing::info_span!("job", kind = "tick");
        let ticked = engine.tick().instrument(span.clone()).await;
        span.in_scope(|| match ticked {
            Ok(events) if !events.is_empty() => {
                tracing::info!(events = events.len(), "clock moved warnings on");
                engine.after_change();
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "tick failed"),
        });
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(every) => {}
        }
    }
}
