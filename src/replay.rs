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

use crate::consult::assess_region;
use crate::forecast::Forecast;
use crate::playbook::Playbook;
use crate::region::{RegionCode, Regions};
use crate::warning::{Event, EventKind, Input, RegionState, day_start};

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
    pub level: String,
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
    pub level: String,
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
                        },
                    );
                }
            }
            let a = assess_region(*region, &days[i + 1..], day.date.succ_opt().unwrap_or(day.date), &obs.id, pb);
            out.assessments.push(DayProposal {
                region: *region,
                date: day.date,
                level: a.level_or_none().to_string(),
                rule: a.rule.clone(),
            });
            step(&mut state, Input::Consultation(&a));
            let awaiting = state
                .live()
                .is_some_and(|w| w.status == crate::warning::Status::Pending || w.pending_change.is_some());
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

/// Folds events into one summary per warning id.
pub fn summarise(events: &[Event]) -> Vec<ReplayedWarning> {
    let mut by_id: BTreeMap<String, ReplayedWarning> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut starts: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
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
                starts.insert(id.clone(), *start);
                push_level(w, (*start).max(e.at), level);
                current = Some(id.clone());
            }
            EventKind::Proposed { id, .. } => current = Some(id.clone()),
            EventKind::LevelChanged { to, .. } => {
                if let Some(c) = &current {
                    let start = starts.get(c).copied().unwrap_or(e.at);
                    if let Some(w) = by_id.get_mut(c) {
                        push_level(w, start.max(e.at), to);
                    }
                }
            }
            EventKind::Rescheduled { start } => {
                if let Some(w) = current.as_ref().and_then(|c| by_id.get_mut(c)) {
                    w.start = local(*start);
                    if w.levels.len() == 1 {
                        w.levels[0].at = local(*start);
                    }
                }
                if let Some(c) = &current {
                    starts.insert(c.clone(), *start);
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

/// Adds a level from a time; a change at the same time (before the start) replaces the last one. A level equal
/// to the one before it is no change: a lowering and a raise back in the same instant (the lift window ending
/// at the very consultation that calls for the level again) leave the level as it was.
fn push_level(w: &mut ReplayedWarning, at: DateTime<Utc>, level: &str) {
    let at = local(at);
    match w.levels.last_mut() {
        Some(last) if last.at >= at => {
            last.level = level.to_string();
            let n = w.levels.len();
            if n >= 2 && w.levels[n - 2].level == w.levels[n - 1].level {
                w.levels.pop();
            }
        }
        Some(last) if last.level == level => {}
        _ => w.levels.push(LevelChange {
            at,
            level: level.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::{ParseOptions, parse};
    use crate::playbook::load_files;

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
                ("2026-12-03".into(), "none"),
                ("2026-12-04".into(), "none"),
                ("2026-12-05".into(), "none"),
            ],
            "12-02 sees 12-03 and 12-04 above 200; 12-03 sees only 12-04"
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
        // Released 12-05 00:00; the 12-05 consultation finds clean air; lifted 36 h later.
        assert_eq!(w.end.as_deref(), Some("2026-12-07T04:00:00+08:00"));
        assert!(r.events.iter().any(|e| e.actor == "directive:调度令-1"));
    }

    #[test]
    fn regions_outside_the_seeds_replay_too() {
        let r = replay(&observations(&[("110000", &[50, 250, 250, 50])]), &pb(), Regions::shanxi());
        assert_eq!(r.assessments[0].region.to_string(), "110000");
        assert_eq!(r.assessments[0].level, "orange");
    }
}
