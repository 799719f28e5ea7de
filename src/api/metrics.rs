//! `/metrics` in the Prometheus text format: warnings by level and status, consultations, forecasts
//! accepted and rejected, events.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::ApiError;
use crate::app::AppState;

pub(super) async fn metrics(State(s): State<Arc<AppState>>) -> Result<impl IntoResponse, ApiError> {
    let (states, counters, events) = s.engine.store.read(|r| Ok((r.region_states()?, r.counters()?, r.event_count()?)))?;
    let mut by: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (_, st) in &states {
        if let Some(w) = st.live() {
            *by.entry((w.level.clone(), format!("{:?}", w.status).to_lowercase())).or_default() += 1;
        }
    }
    let c = |k: &str| counters.iter().find(|(n, _)| n == k).map_or(0, |(_, v)| *v);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP hazeflow_warnings Live warnings (one per region) by level and status.\n# TYPE hazeflow_warnings gauge"
    );
    for ((level, status), n) in &by {
        let _ = writeln!(out, "hazeflow_warnings{{level=\"{level}\",status=\"{status}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP hazeflow_consultations_total Consultations held.\n# TYPE hazeflow_consultations_total counter"
    );
    let _ = writeln!(out, "hazeflow_consultations_total {}", c("events_consultation_held"));
    let _ = writeln!(
        out,
        "# HELP hazeflow_forecasts_total Forecasts by outcome.\n# TYPE hazeflow_forecasts_total counter"
    );
    let _ = writeln!(
        out,
        "hazeflow_forecasts_total{{outcome=\"accepted\"}} {}",
        c("events_forecast_accepted")
    );
    let _ = writeln!(
        out,
        "hazeflow_forecasts_total{{outcome=\"rejected\"}} {}",
        c("events_forecast_rejected")
    );
    let _ = writeln!(
        out,
        "# HELP hazeflow_events_total Records in the event log.\n# TYPE hazeflow_events_total counter"
    );
    let _ = writeln!(out, "hazeflow_events_total {events}");
    for (name, v) in counters
        .iter()
        .filter(|(n, _)| n.starts_with("events_") && !n.ends_with("_held") && !n.starts_with("events_forecast"))
    {
        let _ = writeln!(out, "hazeflow_events_by_kind_total{{kind=\"{}\"}} {v}", &name[7..]);
    }
    let w = s.engine.store.stats();
    let _ = writeln!(
        out,
        "# HELP hazeflow_store_batches_total Write transactions (group commits).\n# TYPE hazeflow_store_batches_total counter\nhazeflow_store_batches_total {}",
        w.batches
    );
    let _ = writeln!(
        out,
        "# HELP hazeflow_store_jobs_total Write jobs run.\n# TYPE hazeflow_store_jobs_total counter\nhazeflow_store_jobs_total {}",
        w.jobs
    );
    let _ = writeln!(
        out,
        "# HELP hazeflow_store_job_seconds_total Time the writer spent running jobs.\n# TYPE hazeflow_store_job_seconds_total counter\nhazeflow_store_job_seconds_total {}",
        w.job_micros as f64 / 1e6
    );
    let _ = writeln!(
        out,
        "# HELP hazeflow_store_commit_seconds_total Time the writer spent committing (pages and fsync).\n# TYPE hazeflow_store_commit_seconds_total counter\nhazeflow_store_commit_seconds_total {}",
        w.commit_micros as f64 / 1e6
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out))
}
