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
pub fn assess_region(region: RegionCode, days: &[DayValue], issue_date: NaiveDate, forecast_id: &str, pb: &Playbook) -> Assessment {
    let w = window(days, issue_date, pb.horizon_days);
    let values: Vec<Option<u16>> = w.iter().map(|d| d.aqi).collect();
    let fired = pb
        .levels
        .iter()
        .rev()
        .find_map(|l| l.entry.matches(&values).map(|covered| (l, covered)));
    Assessment {
        region,
        level: fired.as_ref().map(|(l, _)| l.id.clone()),
        rank: fired.as_ref().map_or(0, |(l, _)| l.rank),
        rule: fired.as_ref().map(|(l, _)| l.entry.to_string()),
        days: fired
            .as_ref()
            .map(|(_, c)| c.iter().map(|&i| w[i].date).collect())
            .unwrap_or_default(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::{ParseOptions, parse};
    use crate::playbook::load_files;

    const CITY: &str = r##"
id: city
version: "1"
name: 太原测试预案
scope: "140100"
horizon_days: 3
roles: [ { id: head, name: 市长, rank: 3 } ]
levels:
  - { id: yellow, rank: 1, name: 黄色预警, colour: "#FFFF00", response: Ⅲ级, sign_off: head, entry: { aqi_gt: 200, days: 1 } }
"##;

    fn set() -> PlaybookSet {
        load_files(vec![("city.yaml".into(), CITY.into())], Regions::shanxi()).unwrap()
    }

    fn forecast(text: &str) -> Forecast {
        parse("f.csv", text.as_bytes(), Regions::shanxi(), &ParseOptions::forecast()).unwrap()
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_window_starts_on_the_issue_date_and_spans_the_horizon() {
        let f = forecast(
            "# issued_at: 2026-12-02 09:00\nregion,date,aqi\n\
             140100,2026-12-01,400\n140100,2026-12-02,80\n140100,2026-12-03,90\n140100,2026-12-04,100\n140100,2026-12-05,250\n",
        );
        let days = &f.series[&RegionCode::parse("140100").unwrap()];
        let w = window(days, f.issue_date(), 3);
        assert_eq!(
            w.iter().map(|x| x.date).collect::<Vec<_>>(),
            [d("2026-12-02"), d("2026-12-03"), d("2026-12-04")]
        );
        let (a, _) = assess(&f, &set(), Regions::shanxi());
        assert_eq!(
            a[0].level_or_none(),
            "none",
            "yesterday's 400 and the 250 beyond the horizon do not count"
        );
        assert_eq!(a[0].window.len(), 3);
    }

    #[test]
    fn a_forecast_that_ends_before_the_issue_date_has_an_empty_window_and_no_level() {
        let f = forecast("# issued_at: 2026-12-09 09:00\nregion,date,aqi\n140100,2026-12-01,400\n");
        let (a, _) = assess(&f, &set(), Regions::shanxi());
        assert_eq!((a[0].level.as_deref(), a[0].window.len()), (None, 0));
    }

    #[test]
    fn assessment_names_the_level_rule_days_forecast_and_pinned_playbook() {
        let f = forecast("# issued_at: 2026-12-01 16:00\nregion,date,aqi\n140105,2026-12-02,150\n140105,2026-12-03,201\n");
        let (a, ungoverned) = assess(&f, &set(), Regions::shanxi());
        assert!(ungoverned.is_empty(), "小店区 lies in Taiyuan's scope");
        let a = &a[0];
        assert_eq!(
            (a.level.as_deref(), a.rank, a.rule.as_deref()),
            (Some("yellow"), 1, Some("AQI>200 for 1 day"))
        );
        assert_eq!(a.days, [d("2026-12-03")]);
        assert_eq!((a.forecast_id.as_str(), a.playbook.as_str()), (f.id.as_str(), "city@1"));
    }

    #[test]
    fn regions_that_no_playbook_governs_are_listed_apart() {
        let f = forecast("# issued_at: 2026-12-01 16:00\nregion,date,aqi\n140100,2026-12-02,300\n140200,2026-12-02,300\n");
        let (a, ungoverned) = assess(&f, &set(), Regions::shanxi());
        assert_eq!(a.iter().map(|a| a.region.to_string()).collect::<Vec<_>>(), ["140100"]);
        assert_eq!(ungoverned, [RegionCode::parse("140200").unwrap()]);
    }
}
