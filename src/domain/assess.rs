//! Assessment (研判), the pure heart of the daily consultation (每日会商): forecast + playbook →
//! proposed level per region, with the rule that fired and the days it covers.
//!
//! In: a [`Forecast`], the [`PlaybookSet`] and the region table. Out: one [`Assessment`] per region
//! of the forecast that a playbook governs. No clock, no disk: `assess` and `replay` call it as is.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::forecast::{DayValue, Forecast};
use crate::domain::level::{LevelId, Ranked};
use crate::domain::playbook::{LeadPollutant, Playbook, PlaybookSet};
use crate::domain::region::{RegionCode, Regions};

/// The proposed level for one region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// The region.
    pub region: RegionCode,
    /// The highest level of the first polluted run, or `None` when no level's rule is met.
    pub level: Option<LevelId>,
    /// Rank of that level (0 for none).
    pub rank: u32,
    /// That level's rule, as text.
    pub rule: Option<String>,
    /// The days of the first polluted run (the episode a warning would cover).
    pub days: Vec<NaiveDate>,
    /// The window looked at: dates and daily AQI.
    pub window: Vec<(NaiveDate, Option<u16>)>,
    /// Per day of the window, the highest level whose rule covers it (0: none), before dips are held.
    #[serde(default)]
    pub ranks: Vec<u32>,
    /// The polluted runs found, dips shorter than the lift window held at the higher level.
    #[serde(default)]
    pub runs: Vec<Run>,
    /// Days above the advisory threshold led by a pollutant that starts no reductions (O3, sand and dust).
    #[serde(default)]
    pub advisories: Vec<Advisory>,
    /// The days the assessment read: the window and the days before it that it looked back on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<DayValue>,
    /// The forecast assessed.
    pub forecast_id: String,
    /// The playbook used, as `id@version`.
    pub playbook: String,
}

/// A stretch of days at one level, as a consultation found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// First day.
    pub from: NaiveDate,
    /// Last day (inclusive).
    pub to: NaiveDate,
    /// The level, with its rank.
    #[serde(flatten)]
    pub level: Ranked,
}

/// A day whose pollution starts no reductions, with why: O3-led (health advice) or sand and dust.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advisory {
    /// The day.
    pub date: NaiveDate,
    /// Its AQI.
    pub aqi: u16,
    /// `o3`, `dust`, or another pollutant's name.
    pub lead: String,
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

/// Whether a day counts towards the levels: its primary pollutant is one the playbook counts (unknown
/// counts), and the forecast does not name sand and dust. Else why not.
fn counted(d: &DayValue, pb: &Playbook) -> Result<(), String> {
    let Some(allowed) = &pb.level_pollutants else { return Ok(()) };
    if d.dust {
        return Err("dust".into());
    }
    if d.primary.is_empty() || d.primary.iter().any(|p| allowed.contains(&LeadPollutant::of(*p))) {
        return Ok(());
    }
    Err(LeadPollutant::of(d.primary[0]).as_str().into())
}

/// Holds short dips at the higher level (频繁波动时按高级别预警执行): for each level from the highest
/// down, a gap between days at or above it that lasts less than the lift window is raised to it.
/// `carry` is the rank in force the day before the window (a warning already running).
pub fn hold_dips(ranks: &mut [u32], carry: u32, lift_window: Duration) {
    let top = ranks.iter().copied().chain([carry]).max().unwrap_or(0);
    for r in (1..=top).rev() {
        let mut last: Option<isize> = (carry >= r).then_some(-1);
        for i in 0..ranks.len() {
            if ranks[i] >= r {
                if let Some(l) = last {
                    let gap = i as isize - l - 1;
                    if gap > 0 && Duration::hours(24 * gap as i64) < lift_window {
                        for x in &mut ranks[(l + 1) as usize..i] {
                            *x = (*x).max(r);
                        }
                    }
                }
                last = Some(i as isize);
            }
        }
    }
}

/// Per day of the window, the highest level whose entry rule covers it.
fn day_ranks(values: &[Option<u16>], pb: &Playbook) -> Vec<u32> {
    let mut ranks = vec![0; values.len()];
    for l in &pb.levels {
        for (r, c) in ranks.iter_mut().zip(l.entry.covers(values)) {
            if c {
                *r = (*r).max(l.rank);
            }
        }
    }
    ranks
}

fn level_of(pb: &Playbook, rank: u32) -> Option<&crate::domain::playbook::Level> {
    pb.levels.iter().find(|l| l.rank == rank)
}

/// Assesses one region's series against one playbook: per day, the level whose rule covers it; the runs
/// with short dips held; the highest level of the first run.
pub fn assess_region(region: RegionCode, days: &[DayValue], issue_date: NaiveDate, forecast_id: &str, pb: &Playbook) -> Assessment {
    let w = window(days, issue_date, pb.horizon_days);
    // The days just before the window that the series holds: a run that began before the window goes on
    // in it (the second day of a two-day run is an orange day, even when the forecast starts with it).
    let start = days.len() - days.iter().rev().take_while(|d| d.date >= issue_date).count();
    let longest = pb.levels.iter().map(|l| l.entry.max_days()).max().unwrap_or(1).saturating_sub(1);
    let lookback = longest.max(pb.horizon_days) as usize;
    let context = &days[start.saturating_sub(lookback)..start + w.len()];
    let mut advisories = Vec::new();
    let values: Vec<Option<u16>> = context
        .iter()
        .map(|d| match counted(d, pb) {
            Ok(()) => d.aqi,
            Err(lead) => {
                if d.date >= issue_date
                    && let Some(aqi) = d.aqi.filter(|a| *a > pb.advisory_aqi_above)
                {
                    advisories.push(Advisory { date: d.date, aqi, lead });
                }
                Some(0)
            }
        })
        .collect();
    let ranks = day_ranks(&values, pb)[context.len() - w.len()..].to_vec();
    let mut held = ranks.clone();
    if pb.hold_higher {
        hold_dips(&mut held, 0, pb.lift_window);
    }
    let mut runs: Vec<Run> = Vec::new();
    for (i, r) in held.iter().enumerate() {
        if *r == 0 {
            continue;
        }
        match runs.last_mut() {
            Some(last) if last.level.rank == *r && last.to.succ_opt() == Some(w[i].date) => last.to = w[i].date,
            _ => runs.push(Run {
                from: w[i].date,
                to: w[i].date,
                level: Ranked::new(level_of(pb, *r).map(|l| l.id.clone()).unwrap_or_default(), *r),
            }),
        }
    }
    // The first episode: the first stretch of consecutive polluted days.
    let first = held.iter().position(|r| *r > 0);
    let episode: Vec<usize> = first.map_or_else(Vec::new, |f| (f..held.len()).take_while(|i| held[*i] > 0).collect());
    let rank = episode.iter().map(|i| held[*i]).max().unwrap_or(0);
    let level = level_of(pb, rank);
    Assessment {
        region,
        level: level.map(|l| l.id.clone()),
        rank,
        rule: level.map(|l| l.entry.to_string()),
        days: episode.iter().map(|i| w[*i].date).collect(),
        window: w.iter().map(|d| (d.date, d.aqi)).collect(),
        ranks,
        runs,
        advisories,
        series: context.to_vec(),
        forecast_id: forecast_id.to_string(),
        playbook: pb.pin(),
    }
}

/// One step of a warning's level timeline: from `at`, `level` is in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// When it takes effect.
    pub at: DateTime<Utc>,
    /// The level, with its rank.
    #[serde(flatten)]
    pub level: Ranked,
}

/// What a consultation's forecast means for one episode: the level timeline from its first day to
/// the end of its polluted run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Where the forecast starts (00:00 of its first day).
    pub from: DateTime<Utc>,
    /// Where it stops (00:00 after its last day): beyond it the plan says nothing.
    pub until: DateTime<Utc>,
    /// The steps, in time order; empty when the forecast shows no polluted run (or the run has ended).
    pub steps: Vec<Step>,
    /// When the run ends: 00:00 of its first clean day (`until` when it runs to the end of the forecast).
    pub end: DateTime<Utc>,
    /// The days the consultation read: the next consultation looks back on them when its own forecast
    /// starts later (a run that began before its window goes on in it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<DayValue>,
}

impl Plan {
    /// The rank the plan puts in force at `t`; `None` outside the forecast.
    pub fn rank_at(&self, t: DateTime<Utc>) -> Option<u32> {
        if t < self.from || t >= self.until {
            return None;
        }
        if t >= self.end {
            return Some(0);
        }
        Some(self.steps.iter().rev().find(|s| s.at <= t).map_or(0, |s| s.level.rank))
    }
}

/// The episode's plan from an assessment. `carry` is the rank of the warning in force the day before
/// the window (0 for none, or for a warning that has not started): a running warning continues into the
/// window, so a dip at its start is held like any other. `None` when the window is empty.
pub fn plan(a: &Assessment, carry: u32, pb: &Playbook) -> Option<Plan> {
    let first = a.window.first()?.0;
    let mut ranks = a.ranks.clone();
    if pb.hold_higher {
        hold_dips(&mut ranks, carry, pb.lift_window);
    }
    let day = |i: usize| day_start(first + chrono::Days::new(i as u64));
    let begin = if carry > 0 { Some(0) } else { ranks.iter().position(|r| *r > 0) };
    let mut steps: Vec<Step> = Vec::new();
    let mut end = ranks.len();
    match begin {
        Some(b) => {
            for (i, r) in ranks.iter().enumerate().skip(b) {
                if *r == 0 {
                    end = i;
                    break;
                }
                if steps.last().is_none_or(|s| s.level.rank != *r) {
                    steps.push(Step {
                        at: day(i),
                        level: Ranked::new(level_of(pb, *r).map(|l| l.id.clone()).unwrap_or_default(), *r),
                    });
                }
            }
        }
        None => end = 0,
    }
    Some(Plan {
        from: day(0),
        until: day(ranks.len()),
        steps,
        end: day(end),
        days: a.series.clone(),
    })
}

/// Start of a day (00:00 Asia/Shanghai) as UTC.
pub fn day_start(d: NaiveDate) -> DateTime<Utc> {
    chrono_tz::Asia::Shanghai
        .from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
        .single()
        .map_or_else(
            || DateTime::<Utc>::from_naive_utc_and_offset(d.and_hms_opt(0, 0, 0).unwrap_or_default(), Utc),
            |t| t.with_timezone(&Utc),
        )
}

/// A forecast's series with the days a consultation read before (`earlier`, e.g. a running warning's
/// plan) put in front where the forecast does not reach back: up to `back` days, ending the day before
/// the forecast's first day, consecutive. The forecast's own days always win.
pub fn with_earlier(days: &[DayValue], earlier: &[DayValue], back: usize) -> Vec<DayValue> {
    let Some(first) = days.first().map(|d| d.date) else {
        return days.to_vec();
    };
    let mut before: Vec<DayValue> = Vec::new();
    let mut want = first.pred_opt();
    for d in earlier.iter().rev() {
        if before.len() >= back {
            break;
        }
        match want {
            Some(w) if d.date == w => {
                before.push(d.clone());
                want = w.pred_opt();
            }
            Some(w) if d.date > w => {}
            _ => break,
        }
    }
    before.reverse();
    before.extend_from_slice(days);
    before
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
    use crate::domain::forecast::{ParseOptions, parse};
    use crate::domain::playbook::load_files;

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
            (Some("yellow"), 1, Some("日AQI>200"))
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
    const NATIONAL: &str = r##"
id: national
version: "1"
name: 测试预案（环大气〔2024〕6号）
scope: "140000"
horizon_days: 7
lift_window_hours: 36
level_pollutants: [pm25, pm10]
roles: [ { id: head, name: 省长, rank: 3 } ]
levels:
  - { id: yellow, rank: 1, name: 黄色预警, colour: "#FFFF00", response: Ⅲ级, sign_off: head, entry: { any: [ { aqi_gt: 200, days: 1 }, { aqi_gt: 150, days: 2 } ] } }
  - { id: orange, rank: 2, name: 橙色预警, colour: "#FF7E00", response: Ⅱ级, sign_off: head, entry: { any: [ { aqi_gt: 200, days: 2 }, { aqi_gt: 150, days: 3 } ] } }
  - { id: red, rank: 3, name: 红色预警, colour: "#FF0000", response: Ⅰ级, sign_off: head, entry: { all: [ { aqi_gt: 200, days: 3 }, { aqi_gt: 300, days: 1 } ] } }
"##;

    fn national() -> PlaybookSet {
        load_files(vec![("national.yaml".into(), NATIONAL.into())], Regions::shanxi()).unwrap()
    }

    fn assess_one(text: &str) -> Assessment {
        let (mut a, _) = assess(&forecast(text), &national(), Regions::shanxi());
        a.remove(0)
    }

    #[test]
    fn o3_led_days_start_no_level_and_are_kept_as_health_advice() {
        // Beijing 2015-05-23..25: O3_8h 219-283 led, PM2.5 moderate.
        let a = assess_one(
            "# issued_at: 2026-05-22 16:00\nregion,date,pm25,o3_8h\n\
             140100,2026-05-23,60,265\n140100,2026-05-24,70,283\n140100,2026-05-25,55,219\n",
        );
        assert_eq!(a.level, None, "{a:?}");
        assert_eq!(a.advisories.iter().map(|x| x.lead.as_str()).collect::<Vec<_>>(), ["o3", "o3", "o3"]);
    }

    #[test]
    fn pm_led_days_count_and_the_forecasts_primary_column_decides_where_only_aqi_is_given() {
        let a =
            assess_one("# issued_at: 2026-12-01 16:00\nregion,date,aqi,primary\n140100,2026-12-02,230,pm25\n140100,2026-12-03,240,pm25\n");
        assert_eq!(a.level.as_deref(), Some("orange"));
        let a = assess_one("# issued_at: 2026-12-01 16:00\nregion,date,aqi,primary\n140100,2026-12-02,230,o3\n140100,2026-12-03,240,o3\n");
        assert_eq!(a.level, None);
        let a =
            assess_one("# issued_at: 2026-12-01 16:00\nregion,date,aqi,primary\n140100,2026-12-02,330,沙尘\n140100,2026-12-03,240,dust\n");
        assert_eq!((a.level.as_deref(), a.advisories.len()), (None, 2), "sand and dust start nothing");
        let a = assess_one("# issued_at: 2026-12-01 16:00\nregion,date,aqi\n140100,2026-12-02,230\n140100,2026-12-03,240\n");
        assert_eq!(a.level.as_deref(), Some("orange"), "an unknown primary pollutant counts");
    }

    #[test]
    fn the_forecasts_primary_column_names_a_pollutant_or_dust_and_nothing_else() {
        let err = parse(
            "f.csv",
            "# issued_at: 2026-12-01 16:00\nregion,date,aqi,primary\n140100,2026-12-02,230,smoke\n".as_bytes(),
            Regions::shanxi(),
            &ParseOptions::forecast(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "f.csv:3:23: primary \"smoke\" is not a pollutant (pm25, pm10, o3, o3_8h, o3_1h, so2, no2, co) or dust"
        );
    }

    #[test]
    fn datongs_window_proposes_orange_not_red() {
        let a = assess_one(
            "# issued_at: 2026-12-01 16:00\nregion,date,aqi\n\
             140100,2026-12-02,201\n140100,2026-12-03,201\n140100,2026-12-04,201\n140100,2026-12-05,100\n140100,2026-12-06,301\n",
        );
        assert_eq!((a.level.as_deref(), a.rank), (Some("orange"), 2));
        assert!(a.runs.iter().all(|r| r.level != "red"), "{:?}", a.runs);
    }

    /// A small deterministic generator (xorshift) for the property tests below.
    fn windows(n: usize) -> Vec<Vec<u16>> {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        (0..n)
            .map(|_| {
                (0..7)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        [50u16, 120, 160, 180, 210, 260, 320][(x % 7) as usize]
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn every_day_a_rule_covers_is_in_force_at_least_at_that_level_and_no_gap_is_shorter_than_the_lift_window() {
        let set = national();
        let pb = set.get("national").unwrap();
        for w in windows(2000) {
            let values: Vec<Option<u16>> = w.iter().map(|v| Some(*v)).collect();
            let raw = day_ranks(&values, pb);
            let mut held = raw.clone();
            hold_dips(&mut held, 0, pb.lift_window);
            for (i, (r, h)) in raw.iter().zip(&held).enumerate() {
                assert!(h >= r, "{w:?}: day {i} covered at {r} but held at {h}");
            }
            // Between two days at or above a level, every day is at that level or the gap is ≥ 36 h (2 days).
            for lvl in 1..=3 {
                let at: Vec<usize> = (0..held.len()).filter(|i| held[*i] >= lvl).collect();
                for pair in at.windows(2) {
                    let gap = pair[1] - pair[0] - 1;
                    assert!(gap == 0 || gap >= 2, "{w:?} held {held:?}: a {gap}-day dip below level {lvl}");
                }
            }
            // Red needs its day above 300 inside the run above 200.
            for (i, h) in held.iter().enumerate() {
                if raw[i] == 3 {
                    let (mut a, mut b) = (i, i);
                    while a > 0 && w[a - 1] > 200 {
                        a -= 1;
                    }
                    while b + 1 < w.len() && w[b + 1] > 200 {
                        b += 1;
                    }
                    assert!(b - a + 1 >= 3 && w[a..=b].iter().any(|v| *v > 300), "{w:?}: red on day {i} ({h})");
                }
            }
        }
    }

    #[test]
    fn a_running_warning_holds_a_dip_at_the_start_of_the_window() {
        let set = national();
        let pb = set.get("national").unwrap();
        let mut r = vec![0, 2, 2, 0, 0];
        hold_dips(&mut r, 2, pb.lift_window);
        assert_eq!(r, [2, 2, 2, 0, 0], "one clean day after yesterday's orange is a dip");
        let mut r = vec![0, 0, 2];
        hold_dips(&mut r, 2, pb.lift_window);
        assert_eq!(r, [0, 0, 2], "two clean days end it");
    }
}
