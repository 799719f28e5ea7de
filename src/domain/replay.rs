//! Replay: a daily observation series run through assessment and the lifecycle as if each day's
//! observations had been a perfect forecast.
//!
//! In: an observation [`Forecast`] (any regions, any length) and one [`Playbook`]. Out: the proposal
//! of each day's consultation per region and the warnings the lifecycle produced. Each day D is a
//! consultation at 16:00 Asia/Shanghai whose forecast is the observed values of the days after D, up
//! to the horizon; sign-off is automatic (by the highest role); the playbook's directives apply from
//! their start. Pure: used by `hazeflow replay` and by tests on the real Shanxi series.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;

use crate::domain::assess::assess_region;
use crate::domain::forecast::Forecast;
use crate::domain::level::LevelId;
use crate::domain::playbook::Playbook;
use crate::domain::region::{RegionCode, Regions};
use crate::domain::warning::{Event, EventKind, Input, RegionState, day_start};

/// Hour of the replayed daily consultation (Asia/Shanghai).
const CONSULTATION_HOUR: i64 = 16;

/// One day's proposal for one region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayProposal {
    /// The region.
    pub region: RegionCode,
    /// The consultation day D.
    pub date: NaiveDate,
    /// The proposed level id, or `none`.
    pub level: LevelId,
    /// The rule that fired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// A level held by a warning from a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LevelChange {
    /// From when (Asia/Shanghai, RFC 3339).
    pub at: String,
    /// The level.
    pub level: LevelId,
}

/// A warning as the replay produced it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplayedWarning {
    /// Warning id.
    pub id: String,
    /// The region.
    pub region: RegionCode,
    /// When it was issued.
    pub issued: String,
    /// When measures applied from.
    pub start: String,
    /// Levels over time.
    pub levels: Vec<LevelChange>,
    /// When it was lifted or cancelled, if it was.
    pub end: Option<String>,
    /// Final status.
    pub status: String,
}

/// What a replay produced.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Replay {
    /// Per-day proposals.
    pub assessments: Vec<DayProposal>,
    /// The warnings.
    pub warnings: Vec<ReplayedWarning>,
    /// Every lifecycle event, in order.
    #[serde(skip)]
    pub events: Vec<Event>,
}

fn local(t: DateTime<Utc>) -> String {
    t.with_timezone(&chrono_tz::Asia::Shanghai).to_rfc3339()
}

/// Runs the replay.
pub fn replay(obs: &Forecast, pb: &Playbook, regions: &Regions) -> Replay {
    let mut out = Replay::default();
    let top_role = pb.roles.iter().max_by_key(|r| r.rank).map(|r| r.id.clone()).unwrap_or_default();
    for (region, days) in &obs.series {
        let mut state = RegionState::default();
        let mut applied: Vec<&str> = Vec::new();
        let mut events = Vec::new();
        for (i, day) in days.iter().enumerate() {
            if i + 1 >= days.len() {
                break;
            }
            let now = day_start(day.date) + Duration::hours(CONSULTATION_HOUR);
            // The clock runs up to just before the consultation: starts, directive ends and lift windows that ran
            // out before it. A lift window that ends at the consultation's own instant (a 48 h window started by
            // an earlier 16:00 consultation) is judged with that consultation's forecast, not before it.
            if let Ok(mut e) = state.step(*region, Input::Tick, now - Duration::seconds(1), pb) {
                events.append(&mut e);
            }
            let mut step = |state: &mut RegionState, input: Input<'_>| {
                // Replay inputs are always well-formed; a refusal would mean nothing to do.
                if let Ok(mut e) = state.step(*region, input, now, pb) {
                    events.append(&mut e);
                }
            };
            for d in &pb.directives {
                let applies = d.regions.iter().any(|r| r == region || regions.is_within(*region, *r));
                if applies && !applied.contains(&d.id.as_str()) && d.from.with_timezone(&Utc) <= now {
                    applied.push(&d.id);
                    step(
                        &mut state,
                        Input::Directive {
                            id: &d.id,
                            min_level: &d.min_level,
                            from: d.from.with_timezone(&Utc),
                            until: d.until.map(|u| u.with_timezone(&Utc)),
                            expected_end: None,
                            source: None,
                        },
                    );
                }
            }
            // The observed days up to D are known at D's consultation: a run that began before D+1 goes on.
            let a = assess_region(*region, days, day.date.succ_opt().unwrap_or(day.date), &obs.id, pb);
            out.assessments.push(DayProposal {
                region: *region,
                date: day.date,
                level: a.level_or_none().into(),
                rule: a.rule.clone(),
            });
            step(&mut state, Input::Consultation(&a));
            let awaiting = state
                .live()
                .is_some_and(|w| w.status == crate::domain::warning::Status::Pending || w.pending_change.is_some());
            if awaiting {
                step(
                    &mut state,
                    Input::SignOff {
                        signer: "replay",
                        role: &top_role,
                    },
                );
            }
        }
        out.warnings.extend(summarise(&events));
        out.events.extend(events);
    }
    out
}

/// Folds events into one summary per warning id: the level timeline as it took effect.
pub fn summarise(events: &[Event]) -> Vec<ReplayedWarning> {
    let mut by_id: BTreeMap<String, ReplayedWarning> = BTreeMap::new();
    let mut current: Option<String> = None;
    for e in events {
        match &e.kind {
            EventKind::Issued { id, level, start, .. } => {
                let w = by_id.entry(id.clone()).or_insert_with(|| ReplayedWarning {
                    id: id.clone(),
                    region: e.region,
                    issued: local(e.at),
                    start: local(*start),
                    levels: Vec::new(),
                    end: None,
                    status: "issued".into(),
                });
                w.end = None;
                w.status = "issued".into();
                push_level(w, *start, level);
                current = Some(id.clone());
            }
            EventKind::Proposed { id, .. } => current = Some(id.clone()),
            EventKind::LevelChanged { to, .. } => {
                if let Some(w) = current.as_ref().and_then(|c| by_id.get_mut(c)) {
                    push_level(w, e.at, to);
                }
            }
            EventKind::Rescheduled { start } => {
                if let Some(w) = current.as_ref().and_then(|c| by_id.get_mut(c)) {
                    w.start = local(*start);
                    if w.levels.len() == 1 {
                        w.levels[0].at = w.start.clone();
                    }
                }
            }
            EventKind::Started => {
                if let Some(w) = current.as_ref().and_then(|c| by_id.get_mut(c)) {
                    w.status = "active".into();
                }
            }
            EventKind::Lifted | EventKind::Cancelled => {
                if let Some(w) = current.as_ref().and_then(|c| by_id.get_mut(c)) {
                    w.end = Some(local(e.at));
                    w.status = if matches!(e.kind, EventKind::Lifted) {
                        "lifted".into()
                    } else {
                        "cancelled".into()
                    };
                }
            }
            _ => {}
        }
    }
    let mut v: Vec<ReplayedWarning> = by_id.into_values().collect();
    v.sort_by(|a, b| (a.region, &a.issued).cmp(&(b.region, &b.issued)));
    v
}

/// Adds a level from a time; a change at the same time replaces the last one, and a level equal to the one
/// before it is no change.
fn push_level(w: &mut ReplayedWarning, at: DateTime<Utc>, level: &str) {
    let at = local(at);
    match w.levels.last_mut() {
        Some(last) if last.at >= at => {
            last.level = level.into();
            let n = w.levels.len();
            if n >= 2 && w.levels[n - 2].level == w.levels[n - 1].level {
                w.levels.pop();
            }
        }
        Some(last) if last.level == level => {}
        _ => w.levels.push(LevelChange { at, level: level.into() }),
    }
}

/// How the rules did on the observations: a day is a warning-day when a warning is in force at its 12:00.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Days observed (region × day).
    pub days: usize,
    /// Warning-days.
    pub warning_days: usize,
    /// Warning-days per level id.
    pub warning_days_by_level: BTreeMap<LevelId, usize>,
    /// Warning-days whose observed AQI was ≤ 150.
    pub warning_days_aqi_le_150: usize,
    /// Warning-days whose observed AQI was ≤ 100.
    pub warning_days_aqi_le_100: usize,
    /// Days with AQI > 200 and a PM primary pollutant.
    pub pm_polluted_days: usize,
    /// Of those, days inside a warning.
    pub pm_polluted_days_covered: usize,
    /// Warning-days whose primary pollutant was O3 alone.
    pub o3_led_warning_days: usize,
    /// Effective times (starts, changes, ends) in all.
    pub effective_times: usize,
    /// Effective times not at 00:00 Asia/Shanghai.
    pub effective_times_off_day_boundary: usize,
    /// Warnings.
    pub warnings: usize,
}

fn pct(n: usize, of: usize) -> f64 {
    if of == 0 { 0.0 } else { 100.0 * n as f64 / of as f64 }
}

impl Stats {
    /// Share of warning-days with observed AQI ≤ 150, in per cent.
    pub fn share_le_150(&self) -> f64 {
        pct(self.warning_days_aqi_le_150, self.warning_days)
    }
    /// Share of warning-days with observed AQI ≤ 100, in per cent.
    pub fn share_le_100(&self) -> f64 {
        pct(self.warning_days_aqi_le_100, self.warning_days)
    }
    /// Share of PM-led days with AQI > 200 inside a warning, in per cent.
    pub fn share_pm_covered(&self) -> f64 {
        pct(self.pm_polluted_days_covered, self.pm_polluted_days)
    }

    /// The figures as lines people read.
    pub fn lines(&self) -> Vec<String> {
        let by_level: Vec<String> = self.warning_days_by_level.iter().map(|(l, n)| format!("{l} {n}")).collect();
        vec![
            format!("days observed: {}", self.days),
            format!("warnings: {}", self.warnings),
            format!("warning-days (in force at 12:00): {} ({})", self.warning_days, by_level.join(", ")),
            format!(
                "warning-days with observed AQI <= 150: {} ({:.1} %)",
                self.warning_days_aqi_le_150,
                self.share_le_150()
            ),
            format!(
                "warning-days with observed AQI <= 100: {} ({:.1} %)",
                self.warning_days_aqi_le_100,
                self.share_le_100()
            ),
            format!(
                "days with AQI > 200 led by PM: {}, inside a warning: {} ({:.1} %)",
                self.pm_polluted_days,
                self.pm_polluted_days_covered,
                self.share_pm_covered()
            ),
            format!("warning-days led by O3 alone: {}", self.o3_led_warning_days),
            format!(
                "effective times: {}, off 00:00 Asia/Shanghai: {}",
                self.effective_times, self.effective_times_off_day_boundary
            ),
        ]
    }
}

/// Computes [`Stats`] for a replay of `obs`.
pub fn stats(obs: &Forecast, r: &Replay) -> Stats {
    use crate::domain::aqi::Pollutant;
    let parse = |s: &str| DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc));
    let mut st = Stats {
        warnings: r.warnings.len(),
        ..Stats::default()
    };
    for w in &r.warnings {
        for t in w.levels.iter().map(|l| l.at.as_str()).chain(w.end.as_deref()) {
            st.effective_times += 1;
            if !t.contains("T00:00:00") {
                st.effective_times_off_day_boundary += 1;
            }
        }
    }
    for (region, days) in &obs.series {
        let mine: Vec<&ReplayedWarning> = r.warnings.iter().filter(|w| w.region == *region).collect();
        for d in days {
            st.days += 1;
            let noon = day_start(d.date) + Duration::hours(12);
            let level = mine.iter().find_map(|w| {
                let start = w.levels.first().and_then(|l| parse(&l.at))?;
                let end = w.end.as_deref().and_then(parse);
                if noon < start || end.is_some_and(|e| noon >= e) {
                    return None;
                }
                w.levels
                    .iter()
                    .rev()
                    .find(|l| parse(&l.at).is_some_and(|t| t <= noon))
                    .map(|l| l.level.clone())
            });
            let pm = d.primary.iter().any(|p| matches!(p, Pollutant::Pm25 | Pollutant::Pm10));
            let o3_alone = !d.primary.is_empty() && d.primary.iter().all(|p| matches!(p, Pollutant::O3_8h | Pollutant::O3_1h));
            if d.aqi.is_some_and(|a| a > 200) && pm {
                st.pm_polluted_days += 1;
                if level.is_some() {
                    st.pm_polluted_days_covered += 1;
                }
            }
            if let Some(l) = level {
                st.warning_days += 1;
                *st.warning_days_by_level.entry(l).or_default() += 1;
                if d.aqi.is_some_and(|a| a <= 150) {
                    st.warning_days_aqi_le_150 += 1;
                }
                if d.aqi.is_some_and(|a| a <= 100) {
                    st.warning_days_aqi_le_100 += 1;
                }
                if o3_alone {
                    st.o3_led_warning_days += 1;
                }
            }
        }
    }
    st
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::forecast::{ParseOptions, parse};
    use crate::domain::playbook::load_files;

    /// One level, signed by the head, and a directive (调度令) for Taiyuan from 12-03 to 12-05.
    const PLAYBOOK: &str = r##"
id: replay-test
version: "1"
name: 测试预案
scope: "140000"
horizon_days: 3
lead_time_hours: 24
lift_window_hours: 36
merge_gap_hours: 24
roles: [ { id: deputy_head, name: 分管副省长, rank: 2 }, { id: head, name: 省长, rank: 3 } ]
levels:
  - { id: orange, rank: 1, name: 橙色预警, colour: "#FF7E00", response: Ⅱ级, sign_off: head, entry: { aqi_gt: 200, days: 2 } }
directives:
  - { id: 调度令-1, name: 测试调度令, min_level: orange, regions: ["140100"], from: "2026-12-03 00:00", until: "2026-12-05 00:00" }
"##;

    fn pb() -> Playbook {
        let set = load_files(vec![("p.yaml".into(), PLAYBOOK.into())], Regions::shanxi()).unwrap();
        set.get("replay-test").unwrap().as_ref().clone()
    }

    fn observations(rows: &[(&str, &[u16])]) -> Forecast {
        let mut csv = String::from("region,date,aqi\n");
        for (region, values) in rows {
            for (i, v) in values.iter().enumerate() {
                csv.push_str(&format!("{region},2026-12-{:02},{v}\n", i + 1));
            }
        }
        parse("obs.csv", csv.as_bytes(), Regions::shanxi(), &ParseOptions::observations()).unwrap()
    }

    #[test]
    fn each_day_but_the_last_is_a_consultation_on_the_days_after_it() {
        let r = replay(&observations(&[("140200", &[50, 50, 201, 201, 50, 50])]), &pb(), Regions::shanxi());
        let days: Vec<(String, &str)> = r.assessments.iter().map(|a| (a.date.to_string(), a.level.as_str())).collect();
        assert_eq!(
            days,
            [
                ("2026-12-01".into(), "orange"),
                ("2026-12-02".into(), "orange"),
                ("2026-12-03".into(), "orange"),
                ("2026-12-04".into(), "none"),
                ("2026-12-05".into(), "none"),
            ],
            "12-02 sees 12-03 and 12-04 above 200; 12-03 sees 12-04, the second day of the run its own day began"
        );
    }

    #[test]
    fn sign_off_is_automatic_with_the_highest_role() {
        let r = replay(&observations(&[("140200", &[50, 50, 201, 201, 50, 50])]), &pb(), Regions::shanxi());
        let signed: Vec<&Option<String>> = r
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Issued { signer, .. } => Some(signer),
                _ => None,
            })
            .collect();
        assert_eq!(signed, [&Some("replay".to_string())]);
        assert_eq!(r.warnings.len(), 1);
        assert_eq!(r.warnings[0].start, "2026-12-03T00:00:00+08:00");
    }

    #[test]
    fn a_directive_in_the_playbook_holds_its_regions_and_their_counties_from_its_start() {
        let clean: &[u16] = &[50, 50, 50, 50, 50, 50, 50, 50, 50, 50];
        let obs = observations(&[("140100", clean), ("140105", clean), ("140200", clean)]);
        let r = replay(&obs, &pb(), Regions::shanxi());
        let regions: Vec<String> = r.warnings.iter().map(|w| w.region.to_string()).collect();
        assert_eq!(regions, ["140100", "140105"], "Taiyuan and its district Xiaodian, not Datong");
        let w = &r.warnings[0];
        assert_eq!(
            w.issued, "2026-12-03T16:00:00+08:00",
            "the first consultation after the directive's start"
        );
        assert_eq!(w.levels[0].level, "orange");
        // The directive runs out 12-05 00:00 and the air is clean: lifted then, without a further wait.
        assert_eq!(w.end.as_deref(), Some("2026-12-05T00:00:00+08:00"));
        assert!(r.events.iter().any(|e| e.actor == "directive:调度令-1"));
    }

    #[test]
    fn regions_outside_the_seeds_replay_too() {
        let r = replay(&observations(&[("110000", &[50, 250, 250, 50])]), &pb(), Regions::shanxi());
        assert_eq!(r.assessments[0].region.to_string(), "110000");
        assert_eq!(r.assessments[0].level, "orange");
    }
}
