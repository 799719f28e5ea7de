//! Assessment (研判), the pure heart of the daily consultation (每日会商): forecast + playbook →
//! proposed level per region, with the rule that fired and the days it covers.
//!
//! In: a [`Forecast`], the [`PlaybookSet`] and the region table. Out: one [`Assessment`] per region
//! of the forecast that a playbook governs. No clock, no disk: `assess` and `replay` call it as is.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::forecast::{DayValue, Forecast};
use crate::playbook::{Playbook, PlaybookSet};
use crate::region::{RegionCode, Regions};

/// The proposed level for one region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// The region.
    pub region: RegionCode,
    /// The proposed level id, or `None` when no level's rule is met.
    pub level: Option<String>,
    /// Rank of the proposed level (0 for none).
    pub rank: u32,
    /// The rule that fired, as text.
    pub rule: Option<String>,
    /// The days the rule matched on.
    pub days: Vec<NaiveDate>,
    /// The window looked at: dates and daily AQI.
    pub window: Vec<(NaiveDate, Option<u16>)>,
    /// The forecast assessed.
    pub forecast_id: String,
    /// The playbook used, as `id@version`.
    pub playbook: String,
}

impl Assessment {
    /// The level id, or `none`.
    pub fn level_or_none(&self) -> &str {
        self.level.as_deref().unwrap_or("none")
    }
}

/// The part of a region's series that a consultation on `issue_date` looks at: up to `horizon_days`
/// days, starting with the first forecast day not before the issue date.
pub fn window(days: &[DayValue], issue_date: NaiveDate, horizon_days: u32) -> &[DayValue] {
    let start = days.iter().position(|d| d.date >= issue_date).unwrap_or(days.len());
    let end = (start + horizon_days as usize).min(days.len());
    &days[start..end]
}

/// Assesses one region's series against one playbook: the highest level whose entry rule is met.
pub fn assess_region(
    region: RegionCode,
    days: &[DayValue],
    issue_date: NaiveDate,
    forecast_id: &str,
    pb: &Playbook,
) -> Assessment {
    let w = window(days, issue_date, pb.horizon_days);
    let values: Vec<Option<u16>> = w.iter().map(|d| d.aqi).collect();
    let fired = pb.levels.iter().rev().find_map(|l| l.entry.matches(&values).map(|covered| (l, covered)));
    Assessment {
        region,
        level: fired.as_ref().map(|(l, _)| l.id.clone()),
        rank: fired.as_ref().map_or(0, |(l, _)| l.rank),
        rule: fired.as_ref().map(|(l, _)| l.entry.to_string()),
        days: fired.as_ref().map(|(_, c)| c.iter().map(|&i| w[i].date).collect()).unwrap_or_default(),
        window: w.iter().map(|d| (d.date, d.aqi)).collect(),
        forecast_id: forecast_id.to_string(),
        playbook: pb.pin(),
    }
}

/// Assesses every region of the forecast that a playbook governs. Regions no playbook governs are
/// returned in the second list.
pub fn assess(forecast: &Forecast, playbooks: &PlaybookSet, regions: &Regions) -> (Vec<Assessment>, Vec<RegionCode>) {
    let mut out = Vec::new();
    let mut ungoverned = Vec::new();
    for (region, days) in &forecast.series {
        match playbooks.for_region(*region, regions) {
            Some(pb) => out.push(assess_region(*region, days, forecast.issue_date(), &forecast.id, pb)),
            None => ungoverned.push(*region),
        }
    }
    (out, ungoverned)
}
