//! The first-start demo: the sample forecast of `seeds/demo/forecast.csv`, a real Taiyuan episode,
//! shifted so that it starts tomorrow, goes into the inbox, so that a newcomer sees a consultation,
//! a proposal awaiting sign-off and, after signing, an issued warning. Its consultation gets a
//! 会商意见 of demo data (every unit and field says 演示数据), so that the shipped playbooks, which sign
//! a consultation's proposal only once its record is completed (`record_before_sign`), let the
//! quickstart's `warnings sign --pending` sign.

use anyhow::{Context, Result};
use chrono::{Duration, NaiveDate};
use chrono_tz::Asia::Shanghai;

/// The sample, embedded so that the demo works from any folder.
pub const SAMPLE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/seeds/demo/forecast.csv"));

/// Puts the shifted sample into the inbox on first start: no forecast was ever received (the list
/// seed may already have written its record).
pub fn seed_inbox(engine: &std::sync::Arc<crate::engine::Engine>, inbox: &std::path::Path) -> Result<()> {
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
    tokio::spawn(record_demo_opinion(engine.clone()));
    Ok(())
}

/// Waits (up to 10 minutes) for the first consultation that proposes a warning, and completes its
/// 会商意见 with demo data, accepting every proposal as made.
async fn record_demo_opinion(engine: std::sync::Arc<crate::engine::Engine>) {
    for _ in 0..2400 {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let found = engine.store.read(|r| {
            Ok(r.consultations(5)?
                .into_iter()
                .find(|c| !c.exercise && c.assessments.iter().any(|a| a.level.is_some())))
        });
        let Ok(Some(c)) = found else { continue };
        if matches!(engine.store.read(|r| crate::engine::opinion::opinion(r, c.seq)), Ok(Some(_))) {
            return;
        }
        let input = crate::domain::opinion::OpinionInput {
            units: vec![crate::domain::opinion::Unit {
                name: "演示数据".into(),
                people: vec!["演示数据".into()],
            }],
            weather: "演示数据：由示例预报自动生成的会商意见，并非真实会商。".into(),
            trend: "演示数据：同意系统建议。".into(),
            primary_pollutant: "PM2.5".into(),
            conclusions: Vec::new(),
        };
        match engine.record_opinion(c.seq, input, "演示数据").await {
            Ok(_) => {
                tracing::info!(
                    consultation = c.seq,
                    "demo: the consultation's record (会商意见) is completed with demo data"
                );
                engine.after_change();
            }
            Err(e) => tracing::warn!(consultation = c.seq, error = %e, "demo: the consultation's record was not made"),
        }
        return;
    }
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
