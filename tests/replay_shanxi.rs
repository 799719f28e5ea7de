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
use hazeflow::forecast::{self, ParseOptions};
use hazeflow::playbook::{Playbook, load_paths};
use hazeflow::region::{RegionCode, Regions};
use hazeflow::replay::{Replay, replay};
use hazeflow::warning::EventKind;

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
fn longest(window: &[Band], band: Band) -> usize {
    let (mut best, mut cur) = (0, 0);
    for b in window {
        cur = if *b >= band && *b != Band::Missing { cur + 1 } else { 0 };
        best = best.max(cur);
    }
    best
}

/// A rule set written out from domain.md §2: each level with its test on a window, lowest first.
type Rules = Vec<(&'static str, fn(&[Band]) -> bool)>;

/// 环大气〔2024〕6号 (playbooks/shanxi.yaml). Red's two parts are tested on the window separately, as the playbook's
/// `all` does (domain.md §2.2 notes this reading).
fn national_2024() -> Rules {
    vec![
        ("yellow", |w| longest(w, Band::Above200) >= 1 || longest(w, Band::Above150) >= 2),
        ("orange", |w| longest(w, Band::Above200) >= 2 || longest(w, Band::Above150) >= 3),
        ("red", |w| longest(w, Band::Above200) >= 3 && longest(w, Band::Above300) >= 1),
    ]
}

/// Shanxi 2020 (playbooks/history/shanxi-2020.yaml).
fn shanxi_2020() -> Rules {
    vec![
        ("yellow", |w| longest(w, Band::Above200) >= 2),
        ("orange", |w| longest(w, Band::Above200) >= 3),
        ("red", |w| {
            (longest(w, Band::Above200) >= 4 && longest(w, Band::Above300) >= 2) || longest(w, Band::AtLeast500) >= 1
        }),
    ]
}

/// 环大气〔2017〕86号, four colours (playbooks/history/cn-2017.yaml).
fn national_2017() -> Rules {
    vec![
        ("blue", |w| longest(w, Band::Above200) >= 1),
        ("yellow", |w| longest(w, Band::Above200) >= 2),
        ("orange", |w| longest(w, Band::Above200) >= 3 && longest(w, Band::Above300) >= 1),
        ("red", |w| {
            (longest(w, Band::Above200) >= 4 && longest(w, Band::Above300) >= 2) || longest(w, Band::AtLeast500) >= 1
        }),
    ]
}

fn rank(rules: &Rules, level: &str) -> usize {
    rules.iter().position(|(id, _)| *id == level).map_or(0, |i| i + 1)
}

/// Consultation day D looks at the observed days D+1 ..= D+horizon.
fn window_after(days: &[(NaiveDate, Band)], d: NaiveDate, horizon: u32) -> Vec<Band> {
    days.iter()
        .filter(|(x, _)| *x > d && *x <= d + Duration::days(horizon.into()))
        .map(|(_, b)| *b)
        .collect()
}

/// (a) every proposed level is justified by its window: its rule is met and no higher level's is;
/// (b) every window that meets a level's rule gets at least that level.
fn assert_proposals_follow_the_data(r: &Replay, bands: &BTreeMap<RegionCode, Vec<(NaiveDate, Band)>>, rules: &Rules, horizon: u32) {
    let mut unjustified = Vec::new();
    let mut missed = Vec::new();
    for a in &r.assessments {
        let w = window_after(&bands[&a.region], a.date, horizon);
        let proposed = rank(rules, &a.level);
        assert!(a.level == "none" || proposed > 0, "unknown level {}", a.level);
        let justified = a.level == "none" || rules[proposed - 1].1(&w);
        let higher_met = rules[proposed..].iter().find(|(_, met)| met(&w));
        if !justified || higher_met.is_some() {
            unjustified.push(format!("{} {} {}: window {w:?}", a.region, a.date, a.level));
        }
        for (i, (id, met)) in rules.iter().enumerate() {
            if met(&w) && proposed < i + 1 {
                missed.push(format!("{} {}: window {w:?} meets {id}, proposed {}", a.region, a.date, a.level));
            }
        }
    }
    assert!(
        unjustified.is_empty(),
        "{} proposals not justified by their window:\n{}",
        unjustified.len(),
        unjustified.join("\n")
    );
    assert!(
        missed.is_empty(),
        "{} windows below their level:\n{}",
        missed.len(),
        missed.join("\n")
    );
}

/// The replayed consultation of day D, at 16:00 Asia/Shanghai.
fn consultation_time(d: NaiveDate) -> DateTime<Utc> {
    Shanghai
        .from_local_datetime(&d.and_hms_opt(16, 0, 0).unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

/// (c) every lift and every lowering of a level happens at least the lift window after the last consultation that
/// proposed that level or higher — and, with a consultation every day, no later than a day after that.
fn assert_lifts_wait_for_the_lift_window(r: &Replay, pb: &Playbook) -> usize {
    let mut checked = 0;
    let mut problems = Vec::new();
    let mut level: BTreeMap<RegionCode, String> = BTreeMap::new();
    for e in &r.events {
        let lowered_from = match &e.kind {
            EventKind::Issued { level: l, .. } => {
                level.insert(e.region, l.clone());
                None
            }
            EventKind::LevelChanged { from, to, .. } => {
                level.insert(e.region, to.clone());
                (pb.rank(to) < pb.rank(from)).then(|| from.clone())
            }
            EventKind::Lifted | EventKind::Cancelled => level.remove(&e.region),
            _ => None,
        };
        let Some(from) = lowered_from else { continue };
        let last = r
            .assessments
            .iter()
            .filter(|a| a.region == e.region && pb.rank(&a.level) >= pb.rank(&from))
            .map(|a| consultation_time(a.date))
            .filter(|t| *t <= e.at)
            .max()
            .expect("a level was proposed before it was lowered");
        let waited = e.at - last;
        if waited < pb.lift_window || waited > pb.lift_window + Duration::days(1) {
            problems.push(format!(
                "{} {from} lowered at {}, {} h after the last consultation that proposed it ({})",
                e.region,
                e.at.with_timezone(&Shanghai),
                waited.num_hours(),
                last.with_timezone(&Shanghai)
            ));
        }
        checked += 1;
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
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
    // The data has real episodes at every level.
    for level in ["none", "yellow", "orange", "red"] {
        assert!(r.assessments.iter().any(|a| a.level == level), "no {level} proposed");
    }
}

#[test]
fn taiyuan_on_2014_01_16_proposes_yellow_for_one_day_above_200_on_the_23rd() {
    // A case to check by hand in the CSV: the 16th looks at 01-17..01-23, PM2.5 77.0, 79.2, 69.3, 20.4, 51.7,
    // 111.1 and 180.4 µg/m³. Only 01-23 is heavy: 180 µg/m³ is AQI 230, above 200, which is yellow.
    let pb = playbook("playbooks/shanxi.yaml");
    let r = run(SHANXI, &pb);
    let bands = read_bands(SHANXI, "pm25", band_of_pm25);
    let ty = RegionCode::parse("140100").unwrap();
    let d = NaiveDate::from_ymd_opt(2014, 1, 16).unwrap();
    let w = window_after(&bands[&ty], d, 7);
    let a = r.assessments.iter().find(|a| a.region == ty && a.date == d).unwrap();
    let expected = national_2024().iter().rev().find(|(_, met)| met(&w)).map_or("none", |(id, _)| id);
    assert_eq!(a.level, expected, "window {w:?}");
    assert_eq!(a.level, "yellow");
    assert_eq!(a.rule.as_deref(), Some("AQI>200 for 1 day or AQI>150 for 2 days"));
    let first = r.warnings.iter().find(|w| w.region == ty).unwrap();
    assert_eq!(first.issued, "2014-01-16T16:00:00+08:00");
    assert_eq!(
        first.start, "2014-01-23T00:00:00+08:00",
        "the warning starts on the first day the rule covers"
    );
}

#[test]
fn no_shanxi_warning_is_lifted_or_lowered_before_the_lift_window_has_passed() {
    let pb = playbook("playbooks/shanxi.yaml");
    let r = run(SHANXI, &pb);
    let checked = assert_lifts_wait_for_the_lift_window(&r, &pb);
    assert!(checked >= 40, "only {checked} lifts and lowerings");
    assert!(
        r.warnings.iter().all(|w| w.status == "lifted" || w.end.is_none()),
        "replay signs everything, so none is cancelled"
    );
}

#[test]
fn every_replayed_warning_starts_on_or_after_its_issue_plus_the_lead_time() {
    let pb = playbook("playbooks/shanxi.yaml");
    let r = run(SHANXI, &pb);
    assert!(!r.warnings.is_empty());
    for w in &r.warnings {
        let issued = DateTime::parse_from_rfc3339(&w.issued).unwrap();
        let start = DateTime::parse_from_rfc3339(&w.start).unwrap();
        assert!(start - issued >= pb.lead_time, "{w:?}");
        let levels: Vec<&str> = w.levels.iter().map(|l| l.level.as_str()).collect();
        assert!(levels.windows(2).all(|p| p[0] != p[1]), "each change is a change: {levels:?}");
        assert!(w.levels.iter().all(|l| pb.level(&l.level).is_some()));
    }
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
        assert_eq!(j["level"], a.level);
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

#[test]
fn taiyuans_stricter_playbook_never_proposes_less_than_the_province_and_lifts_after_48_hours() {
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
    assert_eq!(ty.lift_window, Duration::hours(48));
    assert!(assert_lifts_wait_for_the_lift_window(&city, &ty) > 0);
    for w in &city.warnings {
        let levels: Vec<&str> = w.levels.iter().map(|l| l.level.as_str()).collect();
        assert!(
            levels.windows(2).all(|p| p[0] != p[1]),
            "{}: each change is a change: {levels:?}",
            w.id
        );
    }
}

// ---- Shanxi 2014–2015, Shanxi's 2020 rules -------------------------------------------------------------------------

#[test]
fn the_2020_rules_replay_the_same_data_with_their_own_thresholds() {
    let pb = playbook("playbooks/history/shanxi-2020.yaml");
    let r = run(SHANXI, &pb);
    let bands = read_bands(SHANXI, "pm25", band_of_pm25);
    assert_proposals_follow_the_data(&r, &bands, &shanxi_2020(), pb.horizon_days);
    assert_lifts_wait_for_the_lift_window(&r, &pb);
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
    assert_lifts_wait_for_the_lift_window(&r, &pb);
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
    assert_eq!(level("2014-02-21"), "orange", "313, 262, 315, then the gap: 3 days above 200");
    assert_eq!(level("2014-02-22"), "yellow", "262, 315, then the gap");
    assert_eq!(level("2014-02-23"), "blue", "315, then the gap");
    assert_eq!(level("2014-02-24"), "blue", "the gap, then 269 on 03-03");
    assert_eq!(level("2014-02-25"), "blue");
}
