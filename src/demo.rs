//! The first-start demo: the sample forecast of `seeds/demo/forecast.csv`, a real Taiyuan episode,
//! shifted so that it starts tomorrow, goes into the inbox, so that a newcomer sees a consultation,
//! a proposal awaiting sign-off and, after signing, an issued warning.

use anyhow::{Context, Result};
use chrono::{Duration, NaiveDate};
use chrono_tz::Asia::Shanghai;

/// The sample, embedded so that the demo works from any folder.
pub const SAMPLE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/seeds/demo/forecast.csv"));

/// Puts the shifted sample into the inbox on first start: no forecast was ever received (the list
/// seed may already have written its record).
pub fn seed_inbox(engine: &crate::engine::Engine, inbox: &std::path::Path) -> Result<()> {
    let seen = engine
        .store
        .read(|r| Ok(r.counter("events_forecast_accepted")? + r.counter("events_forecast_rejected")?))?;
    if seen > 0 {
        return Ok(());
    }
    let today = engine.clock.now().with_timezone(&Shanghai);
    let text = shifted(
        SAMPLE,
        today.date_naive() + Duration::days(1),
        &today.format("%Y-%m-%d %H:%M").to_string(),
    );
    let dir = inbox;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create the inbox {}", dir.display()))?;
    let tmp = dir.join("demo-forecast.csv.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, dir.join("demo-forecast.csv"))?;
    tracing::info!(inbox = %dir.display(), "demo: the sample forecast is in the inbox");
    Ok(())
}

/// The sample with its first date moved to `first` (all dates move alike) and its issue time set.
pub fn shifted(sample: &str, first: NaiveDate, issued_at: &str) -> String {
    let dates: Vec<NaiveDate> = sample
        .lines()
        .filter_map(|l| l.split(',').nth(1))
        .filter_map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .collect();
    let Some(min) = dates.iter().min().copied() else {
        return sample.to_string();
    };
    let shift = first - min;
    let mut out = String::new();
    for line in sample.lines() {
        if line.starts_with("# issued_at:") {
            out.push_str(&format!("# issued_at: {issued_at}\n"));
            continue;
        }
        let mut cells: Vec<String> = line.split(',').map(str::to_string).collect();
        if let Some(d) = cells.get(1).and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()) {
            cells[1] = (d + shift).format("%Y-%m-%d").to_string();
        }
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}
