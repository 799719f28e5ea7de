//! Replays of real data, checked against the data itself by properties a person can verify by hand.
//!
//! - tests/fixtures/shanxi_pm25_daily_2014-2015.csv: daily PM2.5 of five Shanxi cities (Taiyuan 140100, Datong
//!   140200, Yangquan 140300, Changzhi 140400, Linfen 141000), 2014-01-01 to 2015-12-31, from the China National
//!   Environmental Monitoring Centre (CNEMC, 中国环境监测总站) city daily data for 183 cities, as publicly
//!   redistributed (copied from ../shared/data/).
//! - tests/fixtures/beijing_daily_2013-2017.csv: Beijing city daily means of the UCI "Beijing Multi-Site
//!   Air-Quality Data" set (12 national stations), AQI per HJ 633-2012; 7 days have no data at all.
//!
//! The checks re-read the CSV on their own, without the crate's parser or AQI code: with only PM2.5 given, the
//! daily AQI is PM2.5's IAQI, so "AQI > 150 / 200 / 300" is "PM2.5, rounded half-even to a whole µg/m³, above
//! 115 / 150 / 250" (HJ 633-2012 breakpoints). The level rules are then written out again from domain.md §2.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use hazeflow::domain::forecast::{self, ParseOptions};
use hazeflow::domain::playbook::{Playbook, load_paths};
use hazeflow::domain::region::{RegionCode, Regions};
use hazeflow::domain::replay::{Replay, replay};

const SHANXI: &str = "tests/fixtures/shanxi_pm25_daily_2014-2015.csv";
const BEIJING: &str = "tests/fixtures/beijing_daily_2013-2017.csv";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn playbook(path: &str) -> Playbook {
    let path = root().join(path);
    let set = load_paths(std::slice::from_ref(&path), Regions::shanxi()).unwrap();
    set.iter().find(|p| p.file == path).unwrap().as_ref().clone()
}

fn run(observations: &str, pb: &Playbook) -> Replay {
    let bytes = std::fs::read(root().join(observations)).unwrap();
    let obs = forecast::parse(observations, &bytes, Regions::shanxi(), &ParseOptions::observations()).unwrap();
    replay(&obs, pb, Regions::shanxi())
}

// ---- the data, read independently ------------------------------------------------------------------------------

/// How high a day is, in the bands the rules use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Band {
    Missing,
    AtMost150,
    Above150,
    Above200,
    Above300,
    AtLeast500,
}

/// Rounds a decimal string half to even, to a whole number (GB/T 8170, as HJ 633 asks of concentrations).
fn round_half_even(s: &str) -> u32 {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let int: u32 = int.parse().unwrap();
    let frac = frac.trim_end_matches('0');
    let up = match frac.chars().next() {
        None => false,
        Some(d) if d > '5' => true,
        Some('5') if frac.len() > 1 => true,
        Some('5') => int % 2 == 1,
        Some(_) => false,
    };
    int + u32::from(up)
}

fn band_of_pm25(cell: &str) -> Band {
    if cell.is_empty() {
        return Band::Missing;
    }
    match round_half_even(cell) {
        c if c > 250 => Band::Above300,
        c if c > 150 => Band::Above200,
        c if c > 115 => Band::Above150,
        _ => Band::AtMost150,
    }
}

fn band_of_aqi(cell: &str) -> Band {
    match cell.parse::<u32>() {
        Err(_) => Band::Missing,
        Ok(a) if a >= 500 => Band::AtLeast500,
        Ok(a) if a > 300 => Band::Above300,
        Ok(a) if a > 200 => Band::Above200,
        Ok(a) if a > 150 => Band::Above150,
        Ok(_) => Band::AtMost150,
    }
}

/// Per region, the days in order with their band, read from `column` of the CSV.
fn read_bands(path: &str, column: &str, band: fn(&str) -> Band) -> BTreeMap<RegionCode, Vec<(NaiveDate, Band)>> {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    let mut lines = text.lines().map(|l| l.trim_end_matches('\r')).filter(|l| !l.starts_with('#'));
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (r, d, v) = (col("region"), col("date"), col(column));
    let mut out: BTreeMap<RegionCode, Vec<(NaiveDate, Band)>> = BTreeMap::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let cells: Vec<&str> = line.split(',').collect();
        let date = NaiveDate::parse_from_str(cells[d], "%Y-%m-%d").unwrap();
        out.entry(RegionCode::parse(cells[r]).unwrap())
            .or_default()
            .push((date, band(cells[v])));
    }
    for days in out.values_mut() {
        days.sort();
    }
    out
}

/// The longest run of consecutive days at or above `band`.
/// One level's rule, written out from domain.md §2 over the whole series: which days lie in a run that meets it.
type Cover = fn(&[Band]) -> Vec<bool>;

/// A rule set: each level with its cover, lowest first.
type Rules = Vec<(&'static str, Cover)>;

/// The extents `(first, last)` of every maximal run of days at or above `band`.
fn runs(days: &[Band], band: Band) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < days.len() {
        if days[i] >= band && days[i] != Band::Missing {
            let s = i;
            while i < days.len() && days[i] >= band && days[i] != Band::Missing {
                i += 1;
            }
            out.push((s, i - 1));
        } else {
            i += 1;
        }
    }
    out
}

/// Days in runs of at least `n` days at or above `band`.
fn run_of(days: &[Band], band: Band, n: usize) -> Vec<bool> {
    let mut out = vec![false; days.len()];
    for (s, e) in runs(days, band) {
        if e + 1 - s >= n {
            out[s..=e].iter_mut().for_each(|x| *x = true);
        }
    }
    out
}

fn or(a: Vec<bool>, b: Vec<bool>) -> Vec<bool> {
    a.iter().zip(b).map(|(x, y)| *x || y).collect()
}

/// Days in a run of at least `n` days above 200 that holds a stretch of at least `m` days at or above `band`: one
/// episode (the day above 300 inside the run above 200).
fn episode(days: &[Band], n: usize, band: Band, m: usize) -> Vec<bool> {
    let mut out = vec![false; days.len()];
    for (s, e) in runs(days, Band::Above200) {
        let inner = run_of(&days[s..=e], band, m);
        if e + 1 - s >= n && inner.iter().any(|x| *x) {
            out[s..=e].iter_mut().for_each(|x| *x = true);
        }
    }
    out
}

/// 环大气〔2024〕6号 (playbooks/shanxi.yaml).
fn national_2024() -> Rules {
    vec![
        ("yellow", |d| or(run_of(d, Band::Above200, 1), run_of(d, Band::Above150, 2))),
        ("orange", |d| or(run_of(d, Band::Above200, 2), run_of(d, Band::Above150, 3))),
        ("red", |d| episode(d, 3, Band::Above300, 1)),
    ]
}

/// Shanxi 2020 (playbooks/history/shanxi-2020.yaml).
fn shanxi_2020() -> Rules {
    vec![
        ("yellow", |d| run_of(d, Band::Above200, 2)),
        ("orange", |d| run_of(d, Band::Above200, 3)),
        ("red", |d| or(episode(d, 4, Band::Above300, 2), run_of(d, Band::AtLeast500, 1))),
    ]
}

/// 环大气〔2017〕86号, four colours (playbooks/history/cn-2017.yaml).
fn national_2017() -> Rules {
    vec![
        ("blue", |d| run_of(d, Band::Above200, 1)),
        ("yellow", |d| run_of(d, Band::Above200, 2)),
        ("orange", |d| episode(d, 3, Band::Above300, 1)),
        ("red", |d| or(episode(d, 4, Band::Above300, 2), run_of(d, Band::AtLeast500, 1))),
    ]
}

fn rank(rules: &Rules, level: &str) -> usize {
    rules.iter().position(|(id, _)| *id == level).map_or(0, |i| i + 1)
}

/// Per day, the highest rank whose rule covers it.
fn ranks(rules: &Rules, days: &[Band]) -> Vec<usize> {
    let mut out = vec![0; days.len()];
    for (i, (_, cover)) in rules.iter().enumerate() {
        for (r, c) in out.iter_mut().zip(cover(days)) {
            if c {
                *r = (*r).max(i + 1);
            }
        }
    }
    out
}

/// Consultation day D looks at the observed days D+1 ..= D+horizon, and back at the run it is in.
fn window_around(days: &[(NaiveDate, Band)], d: NaiveDate, horizon: u32, back: i64) -> (Vec<Band>, usize) {
    let w: Vec<Band> = days
        .iter()
        .filter(|(x, _)| *x > d - Duration::days(back) && *x <= d + Duration::days(horizon.into()))
        .map(|(_, b)| *b)
        .collect();
    let before = days.iter().filter(|(x, _)| *x > d - Duration::days(back) && *x <= d).count();
    (w, before)
}

/// (a) every proposed level is met somewhere in its window (its run may have begun before the window);
/// (b) a consultation whose next day lies in a run meeting a level proposes at least that level.
fn assert_proposals_follow_the_data(r: &Replay, bands: &BTreeMap<RegionCode, Vec<(NaiveDate, Band)>>, rules: &Rules, horizon: u32) {
    let mut problems = Vec::new();
    for a in &r.assessments {
        let (w, before) = window_around(&bands[&a.region], a.date, horizon, horizon.into());
        let rk = ranks(rules, &w);
        let window = &rk[before..];
        let proposed = rank(rules, &a.level);
        assert!(a.level == "none" || proposed > 0, "unknown level {}", a.level);
        if proposed > 0 && !window.iter().any(|r| *r >= proposed) {
            problems.push(format!("{} {} {}: not met in {w:?}", a.region, a.date, a.level));
        }
        if window.first().is_some_and(|first| proposed < *first) {
            problems.push(format!("{} {} {}: the next day is at {}", a.region, a.date, a.level, window[0]));
        }
    }
    assert!(
        problems.is_empty(),
        "{} proposals off the data:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Noon of a day, and 00:00 of a day, Asia/Shanghai.
fn at(d: NaiveDate, h: u32) -> DateTime<Utc> {
    Shanghai
        .from_local_datetime(&d.and_hms_opt(h, 0, 0).unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

/// (c) every change takes effect at 00:00 of a day; (d) a lift or lowering from L at day X comes with the observed
/// days X and X+1 (36 h or more) below L — the lift window; (e) every day in force at noon at level L lies in a run
/// that meets L, or in a dip shorter than the lift window between such days. Returns the lifts and lowerings checked.
fn assert_the_timeline_follows_the_data(
    r: &Replay,
    bands: &BTreeMap<RegionCode, Vec<(NaiveDate, Band)>>,
    rules: &Rules,
    pb: &Playbook,
) -> usize {
    let mut problems = Vec::new();
    let mut checked = 0;
    let need = (pb.lift_window.num_hours() as usize).div_ceil(24);
    for (region, days) in bands {
        let bs: Vec<Band> = days.iter().map(|(_, b)| *b).collect();
        let rk = ranks(rules, &bs);
        let index = |t: &str| {
            let t = DateTime::parse_from_rfc3339(t).unwrap();
            assert_eq!(
                t.format("%H:%M:%S").to_string(),
                "00:00:00",
                "{region}: effective time {t} off a day boundary"
            );
            days.iter().position(|(d, _)| *d == t.date_naive())
        };
        for w in r.warnings.iter().filter(|w| w.region == *region) {
            let mut changes: Vec<(Option<usize>, usize)> = w.levels.iter().map(|l| (index(&l.at), rank(rules, &l.level))).collect();
            if let Some(end) = &w.end {
                changes.push((index(end), 0));
            }
            for pair in changes.windows(2) {
                let ((_, from), (Some(x), to)) = (pair[0], pair[1]) else { continue };
                if to >= from {
                    continue;
                }
                checked += 1;
                if let Some(day) = (x..(x + need).min(rk.len())).find(|i| rk[*i] >= from) {
                    problems.push(format!(
                        "{}: lowered at {} but {} is at rank {}",
                        w.id, days[x].0, days[day].0, rk[day]
                    ));
                }
            }
            // (e) warning-days.
            // The last days of the data: the replay cannot see the clean air after them.
            for (i, (d, _)) in days.iter().enumerate().take(days.len().saturating_sub(need)) {
                let noon = at(*d, 12);
                let Some((_, level)) = changes
                    .iter()
                    .zip(
                        w.levels
                            .iter()
                            .map(|l| DateTime::parse_from_rfc3339(&l.at).unwrap().with_timezone(&Utc))
                            .chain(w.end.iter().map(|e| DateTime::parse_from_rfc3339(e).unwrap().with_timezone(&Utc))),
                    )
                    .filter(|(_, t)| *t <= noon)
                    .map(|(c, _)| *c)
                    .last()
                else {
                    continue;
                };
                if level == 0 {
                    continue;
                }
                let ok = rk[i] >= level || {
                    let before = (0..i).rev().find(|j| rk[*j] >= level);
                    let after = (i + 1..rk.len()).find(|j| rk[*j] >= level);
                    matches!((before, after), (Some(b), Some(a)) if a - b - 1 < need)
                };
                if !ok {
                    problems.push(format!(
                        "{}: {} in force at rank {level} on {d}, observed rank {}",
                        w.id, region, rk[i]
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
    checked
}

// ---- Shanxi 2014–2015, national 2024 rules -----------------------------------------------------------------------

#[test]
fn every_proposal_of_the_shanxi_replay_is_what_the_observed_days_call_for() {
    let pb = playbook("playbooks/shanxi.yaml");
    let r = run(SHANXI, &pb);
    let bands = read_bands(SHANXI, "pm25", band_of_pm25);
    assert_eq!(bands.len(), 5);
    assert_eq!(r.assessments.len(), 5 * 729, "one consultation a day but the last, per city");
    assert_proposals_follow_the_data(&r, &bands, &national_2024(), pb.horizon_days);
    for level in ["none", "yellow", "orange", "red"] {
        assert!(r.assessments.iter().any(|a| a.level == level), "no {level} proposed");
    }
}

#[test]
fn every_shanxi_warning_follows_the_observed_runs_at_00_00_and_lifts_by_the_lift_window() {
    let pb = playbook("playbooks/shanxi.yaml");
    let r = run(SHANXI, &pb);
    let bands = read_bands(SHANXI, "pm25", band_of_pm25);
    let checked = assert_the_timeline_follows_the_data(&r, &bands, &national_2024(), &pb);
    assert!(checked >= 40, "only {checked} lifts and lowerings");
    assert!(
        r.warnings.iter().all(|w| w.status == "lifted" || w.end.is_none()),
        "replay signs everything, so none is cancelled"
    );
}

#[test]
fn taiyuan_on_2014_01_16_proposes_yellow_for_one_day_above_200_on_the_23rd() {
    // A case to check by hand in the CSV: the 16th looks at 01-17..01-23, PM2.5 77.0, 79.2, 69.3, 20.4, 51.7,
    // 111.1 and 180.4 µg/m³. Only 01-23 is heavy: 180 µg/m³ is AQI 230, above 200, which is yellow.
    let pb = playbook("playbooks/shanxi.yaml");
    let r = run(SHANXI, &pb);
    let ty = RegionCode::parse("140100").unwrap();
    let d = NaiveDate::from_ymd_opt(2014, 1, 16).unwrap();
    let a = r.assessments.iter().find(|a| a.region == ty && a.date == d).unwrap();
    assert_eq!(a.level, "yellow");
    assert_eq!(a.rule.as_deref(), Some("日AQI>200或日AQI>150持续48小时"));
    let first = r.warnings.iter().find(|w| w.region == ty).unwrap();
    assert_eq!(first.issued, "2014-01-16T16:00:00+08:00");
    assert_eq!(
        first.start, "2014-01-23T00:00:00+08:00",
        "the warning starts at 00:00 of the first day of the run, announced a week ahead"
    );
}

#[test]
fn the_replay_command_prints_json_that_agrees_with_the_library() {
    let pb = playbook("playbooks/shanxi.yaml");
    let r = run(SHANXI, &pb);
    let out = Command::new(env!("CARGO_BIN_EXE_hazeflow"))
        .args(["replay", "--observations", SHANXI, "--playbook", "playbooks/shanxi.yaml", "--json"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    let assessments = v["assessments"].as_array().unwrap();
    assert_eq!(assessments.len(), r.assessments.len());
    for (j, a) in assessments.iter().zip(&r.assessments) {
        assert_eq!(j["region"], a.region.to_string());
        assert_eq!(j["date"], a.date.to_string());
        assert_eq!(j["level"], a.level.as_str());
    }
    let warnings = v["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), r.warnings.len());
    assert_eq!(warnings[0]["id"], r.warnings[0].id);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&format!(
            "replayed {} consultations over 5 regions with shanxi@2024.1",
            r.assessments.len()
        )),
        "{stderr}"
    );
}

/// `hazeflow replay --stats --json` on a fixture.
fn stats(observations: &str) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_hazeflow"))
        .args([
            "replay",
            "--observations",
            observations,
            "--playbook",
            "playbooks/shanxi.yaml",
            "--stats",
            "--json",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn on_the_real_data_warnings_are_in_force_when_and_only_when_the_air_calls_for_them() {
    // The acceptance figures of the warning timeline: both fixtures together, perfect forecasts, shanxi.yaml.
    let (sx, bj) = (stats(SHANXI), stats(BEIJING));
    let sum = |k: &str| sx[k].as_u64().unwrap() + bj[k].as_u64().unwrap();
    let days = sum("warning_days");
    assert!(days > 300, "{days} warning-days");
    let pct = |n: u64, of: u64| 100.0 * n as f64 / of as f64;
    assert!(pct(sum("warning_days_aqi_le_150"), days) <= 10.0, "{sx} {bj}");
    assert!(pct(sum("warning_days_aqi_le_100"), days) <= 2.0, "{sx} {bj}");
    assert!(pct(sum("pm_polluted_days_covered"), sum("pm_polluted_days")) >= 95.0, "{sx} {bj}");
    assert_eq!(sum("o3_led_warning_days"), 0, "Beijing's O3-led summer days start no warning");
    assert_eq!(sum("effective_times_off_day_boundary"), 0);
    assert!(sum("effective_times") > 300);
}

#[test]
fn taiyuans_playbook_never_proposes_less_than_the_province_and_lifts_after_36_hours() {
    let (sx, ty) = (playbook("playbooks/shanxi.yaml"), playbook("playbooks/taiyuan.yaml"));
    let (province, city) = (run(SHANXI, &sx), run(SHANXI, &ty));
    assert_eq!(province.assessments.len(), city.assessments.len());
    for (p, c) in province.assessments.iter().zip(&city.assessments) {
        assert_eq!((p.region, p.date), (c.region, c.date));
        assert!(
            ty.rank(&c.level) >= sx.rank(&p.level),
            "{} {}: {} under Taiyuan, {} under Shanxi",
            c.region,
            c.date,
            c.level,
            p.level
        );
    }
    assert_eq!(
        ty.lift_window,
        Duration::hours(36),
        "domain.md §2.6: Taiyuan lifts after 36 h below the level"
    );
    for w in &city.warnings {
        let levels: Vec<&str> = w.levels.iter().map(|l| l.level.as_str()).collect();
        assert!(
            levels.windows(2).all(|p| p[0] != p[1]),
            "{}: each change is a change: {levels:?}",
            w.id
        );
        assert!(w.levels.iter().all(|l| l.at.contains("T00:00:00")), "{w:?}");
    }
}

// ---- Shanxi 2014–2015, Shanxi's 2020 rules -------------------------------------------------------------------------

#[test]
fn the_2020_rules_replay_the_same_data_with_their_own_thresholds() {
    let pb = playbook("playbooks/history/shanxi-2020.yaml");
    let r = run(SHANXI, &pb);
    let bands = read_bands(SHANXI, "pm25", band_of_pm25);
    assert_proposals_follow_the_data(&r, &bands, &shanxi_2020(), pb.horizon_days);
    assert_the_timeline_follows_the_data(&r, &bands, &shanxi_2020(), &pb);
    // Its directive is for 2020-11-28; the data ends in 2015, so it never applies.
    assert!(r.events.iter().all(|e| !e.actor.starts_with("directive:")));
    // Fewer proposals than under the 2024 rules, which also count days above 150.
    let count = |r: &Replay| r.assessments.iter().filter(|a| a.level != "none").count();
    assert!(count(&r) < count(&run(SHANXI, &playbook("playbooks/shanxi.yaml"))));
}

// ---- Beijing 2013–2017, national 2017 rules, with missing days -----------------------------------------------------

#[test]
fn the_2017_rules_replay_beijing_through_its_missing_days() {
    let pb = playbook("playbooks/history/cn-2017.yaml");
    let r = run(BEIJING, &pb);
    let bands = read_bands(BEIJING, "aqi", band_of_aqi);
    let days = &bands[&RegionCode::parse("110000").unwrap()];
    assert_eq!(days.iter().filter(|(_, b)| *b == Band::Missing).count(), 7);
    assert_eq!(r.assessments.len(), days.len() - 1);
    assert_proposals_follow_the_data(&r, &bands, &national_2017(), pb.horizon_days);
    assert_the_timeline_follows_the_data(&r, &bands, &national_2017(), &pb);
}

#[test]
fn a_window_with_missing_days_proposes_from_the_days_that_are_there() {
    // 2014-02-20..24: AQI 256, 318, 313, 262, 315; 02-25 and 02-26 have no data; then 36, 113, 98, 178, 269.
    let pb = playbook("playbooks/history/cn-2017.yaml");
    let r = run(BEIJING, &pb);
    let level = |date: &str| {
        let d = NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
        r.assessments.iter().find(|a| a.date == d).unwrap().level.clone()
    };
    assert_eq!(level("2014-02-19"), "red", "5 days above 200, two in a row above 300");
    assert_eq!(
        level("2014-02-21"),
        "red",
        "the run that began on 02-20 goes on: 318 and 313 inside it"
    );
    assert_eq!(level("2014-02-23"), "red", "still the same run");
    assert_eq!(level("2014-02-24"), "blue", "the gap breaks the run; 269 on 03-03");
    assert_eq!(level("2014-02-25"), "blue");
}
