//! Every level rule of the shipped playbooks on hand-made forecast windows that just meet or just miss it:
//! the national 2024 rules (playbooks/shanxi.yaml), Taiyuan's (playbooks/taiyuan.yaml: the province's rules), the
//! four colours of 2017 (playbooks/history/cn-2017.yaml) and Shanxi's 2020 rules
//! (playbooks/history/shanxi-2020.yaml), as domain.md §2 gives them.
//!
//! Each case runs a whole assessment ([`assess_region`]) on a series starting the day after the issue date, and
//! checks what duty staff see: the proposed level, the rule that fired, and the days it covers.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::NaiveDate;
use hazeflow::domain::assess::{Assessment, assess_region};
use hazeflow::domain::forecast::DayValue;
use hazeflow::domain::playbook::{Playbook, PlaybookSet, SignOff, load_paths};
use hazeflow::domain::region::{RegionCode, Regions};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load(path: &str) -> PlaybookSet {
    load_paths(&[root().join(path)], Regions::shanxi()).unwrap_or_else(|e| panic!("{path}: {e:?}"))
}

fn shipped(path: &str, id: &str) -> Arc<Playbook> {
    load(path)
        .get(id)
        .cloned()
        .unwrap_or_else(|| panic!("{path} holds no playbook {id}"))
}

fn issue_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
}

/// Day `i` of the window: the issue date + 1 + i.
fn day(i: usize) -> NaiveDate {
    issue_date() + chrono::Duration::days(1 + i as i64)
}

fn assess(pb: &Playbook, window: &[Option<u16>]) -> Assessment {
    let series: Vec<DayValue> = window
        .iter()
        .enumerate()
        .map(|(i, aqi)| DayValue {
            date: day(i),
            aqi: *aqi,
            primary: Vec::new(),
            computed: false,
            dust: false,
        })
        .collect();
    assess_region(RegionCode::parse("140100").unwrap(), &series, issue_date(), "f-test", pb)
}

fn w(values: &[u16]) -> Vec<Option<u16>> {
    values.iter().map(|v| Some(*v)).collect()
}

/// One case: the window, the level it must give (`none` for none), and the covered day indexes.
struct Case {
    window: Vec<Option<u16>>,
    level: &'static str,
    covered: Vec<usize>,
}

fn case(window: Vec<Option<u16>>, level: &'static str, covered: &[usize]) -> Case {
    Case {
        window,
        level,
        covered: covered.to_vec(),
    }
}

fn run_table(pb: &Playbook, cases: &[Case]) {
    let mut failures = Vec::new();
    for c in cases {
        let a = assess(pb, &c.window);
        let covered: Vec<NaiveDate> = c.covered.iter().map(|i| day(*i)).collect();
        let rule = pb.level(c.level).map(|l| l.entry.to_string());
        if a.level_or_none() != c.level || a.days != covered || a.rule != rule {
            failures.push(format!(
                "{:?}: got {} {:?} {:?}, want {} {:?} {:?}",
                c.window,
                a.level_or_none(),
                a.days,
                a.rule,
                c.level,
                covered,
                rule
            ));
        }
        assert_eq!(a.playbook, pb.pin());
        assert_eq!(a.forecast_id, "f-test");
    }
    assert!(failures.is_empty(), "{} in {}:\n{}", pb.id, pb.file.display(), failures.join("\n"));
}

// ---- the shipped files load --------------------------------------------------------------------------------------

#[test]
fn every_shipped_playbook_loads_and_taiyuan_extends_the_province() {
    let live = load("playbooks");
    let ids: Vec<&str> = live.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![
            "changzhi", "datong", "jincheng", "jinzhong", "linfen", "lvliang", "shanxi", "shuozhou", "taiyuan", "xinzhou", "yangquan",
            "yuncheng"
        ]
    );
    let regions = Regions::shanxi();
    let code = |s| RegionCode::parse(s).unwrap();
    assert_eq!(
        live.for_region(code("140105"), regions).unwrap().id,
        "taiyuan",
        "小店区 is under Taiyuan's playbook"
    );
    assert_eq!(live.for_region(code("140100"), regions).unwrap().id, "taiyuan");
    // Every one of the 11 cities has its own playbook, under the province's, in its own name.
    for city in regions.children(code("140000")) {
        let pb = live.for_region(city, regions).unwrap();
        assert_eq!(pb.scope, city, "{city}");
        assert_eq!(pb.parent.as_deref(), Some("shanxi"), "{city}");
        let name = regions.name(city);
        assert_eq!(pb.issuer.name, format!("{name}重污染天气应急指挥部办公室"), "{city}");
        assert!(pb.issuer.sender.ends_with("@hazeflow.example.cn"), "{city}: {}", pb.issuer.sender);
        assert_eq!(pb.role("deputy_head").unwrap().name, "分管副市长", "{city}");
        assert_eq!(pb.role("head").unwrap().name, "市长", "{city}");
    }
    assert_eq!(regions.children(code("140000")).len(), 11);
    let sx = live.get("shanxi").unwrap();
    assert_eq!(sx.issuer.name, "山西省重污染天气应急指挥部办公室");
    assert_eq!(sx.role("deputy_head").unwrap().name, "分管副省长");
    for (path, id) in [
        ("playbooks/history/cn-2017.yaml", "cn-2017"),
        ("playbooks/history/shanxi-2020.yaml", "shanxi-2020"),
    ] {
        let set = load(path);
        assert_eq!(set.len(), 1, "{path}");
        assert_eq!(set.get(id).unwrap().file, root().join(path));
    }
}

#[test]
fn the_shipped_settings_are_those_the_files_state() {
    let sx = shipped("playbooks/shanxi.yaml", "shanxi");
    assert_eq!((sx.horizon_days, sx.lead_time.num_hours(), sx.lift_window.num_hours()), (7, 24, 36));
    assert_eq!((sx.merge_gap.num_hours(), sx.hold_higher), (48, true));
    let ty = shipped("playbooks/taiyuan.yaml", "taiyuan");
    assert_eq!(ty.parent.as_deref(), Some("shanxi"));
    assert_eq!(
        ty.lift_window.num_hours(),
        36,
        "Taiyuan lifts after 36 h below the level (domain.md §2.6), as the province does"
    );
    assert_eq!(
        (ty.horizon_days, ty.lead_time.num_hours(), ty.merge_gap.num_hours()),
        (7, 24, 48),
        "inherited"
    );
    assert_eq!(
        ty.consultations.iter().map(|c| c.cron.as_str()).collect::<Vec<_>>(),
        ["0 0 10 * * *", "0 0 16 * * *"]
    );
    let ids = |pb: &Playbook| pb.levels.iter().map(|l| l.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&sx), ["yellow", "orange", "red"]);
    assert_eq!(
        ids(&shipped("playbooks/history/cn-2017.yaml", "cn-2017")),
        ["blue", "yellow", "orange", "red"]
    );
    assert_eq!(
        ids(&shipped("playbooks/history/shanxi-2020.yaml", "shanxi-2020")),
        ["yellow", "orange", "red"]
    );
}

#[test]
fn deputy_heads_sign_yellow_and_orange_and_only_the_head_signs_red() {
    for pb in [
        shipped("playbooks/shanxi.yaml", "shanxi"),
        shipped("playbooks/taiyuan.yaml", "taiyuan"),
    ] {
        assert_eq!(pb.level("yellow").unwrap().sign_off, SignOff::Role("deputy_head".into()));
        assert_eq!(pb.level("red").unwrap().sign_off, SignOff::Role("head".into()));
        assert!(pb.may_sign("orange", "deputy_head"));
        assert!(pb.may_sign("orange", "head"), "a higher role signs what a lower one may");
        assert!(!pb.may_sign("red", "deputy_head"));
        assert!(pb.may_sign("red", "head"));
        assert!(!pb.may_sign("red", "nobody"));
    }
    let sx = shipped("playbooks/shanxi.yaml", "shanxi");
    assert!(!sx.may_sign("yellow", "duty_officer"), "the duty officer prepares, does not sign");
    let cn = shipped("playbooks/history/cn-2017.yaml", "cn-2017");
    assert_eq!(
        cn.level("blue").unwrap().sign_off,
        SignOff::Auto,
        "blue was issued without a signature"
    );
}

// ---- national 2024 (环大气〔2024〕6号) ----------------------------------------------------------------------------------

#[test]
fn national_2024_yellow_is_one_day_above_200_or_two_days_above_150() {
    let pb = shipped("playbooks/shanxi.yaml", "shanxi");
    run_table(
        &pb,
        &[
            case(w(&[201]), "yellow", &[0]),
            case(w(&[200]), "none", &[]),
            case(w(&[151, 151]), "yellow", &[0, 1]),
            case(w(&[151, 150]), "none", &[]),
            case(w(&[150, 151]), "none", &[]),
            case(w(&[151, 100, 151]), "none", &[]),
            case(w(&[100, 100, 100, 100, 100, 100, 201]), "yellow", &[6]),
            case(w(&[50, 151, 151, 50]), "yellow", &[1, 2]),
            // Both parts met; the one-day dip between them is held (shorter than the 36 h lift window): one run.
            case(w(&[151, 151, 50, 201]), "yellow", &[0, 1, 2, 3]),
        ],
    );
}

#[test]
fn national_2024_orange_is_two_days_above_200_or_three_days_above_150() {
    let pb = shipped("playbooks/shanxi.yaml", "shanxi");
    run_table(
        &pb,
        &[
            case(w(&[201, 201]), "orange", &[0, 1]),
            case(w(&[201, 200]), "yellow", &[0, 1]),
            case(w(&[151, 151, 151]), "orange", &[0, 1, 2]),
            case(w(&[151, 151, 150]), "yellow", &[0, 1]),
            case(w(&[201, 201, 201]), "orange", &[0, 1, 2]),
            case(w(&[300, 300, 300, 300, 300, 300, 300]), "orange", &[0, 1, 2, 3, 4, 5, 6]),
        ],
    );
}

#[test]
fn national_2024_red_is_three_days_above_200_and_one_day_above_300() {
    let pb = shipped("playbooks/shanxi.yaml", "shanxi");
    run_table(
        &pb,
        &[
            case(w(&[201, 201, 201, 301]), "red", &[0, 1, 2, 3]),
            case(w(&[301, 201, 201]), "red", &[0, 1, 2]),
            case(w(&[201, 301, 201]), "red", &[0, 1, 2]),
            case(w(&[201, 201, 201]), "orange", &[0, 1, 2]),
            case(w(&[201, 201, 300]), "orange", &[0, 1, 2]),
            // The 301 lies in another run than the days above 200: no red; the one-day dip is held at orange.
            case(w(&[201, 201, 150, 301]), "orange", &[0, 1, 2, 3]),
            case(w(&[500]), "yellow", &[0]),
        ],
    );
}

#[test]
fn a_missing_day_breaks_a_run_and_the_rest_of_the_window_still_counts() {
    let pb = shipped("playbooks/shanxi.yaml", "shanxi");
    run_table(
        &pb,
        &[
            // A missing day breaks a rule's run, and is a one-day dip inside the episode.
            case(vec![Some(201), None, Some(201)], "yellow", &[0, 1, 2]),
            case(vec![Some(151), None, Some(151)], "none", &[]),
            // The rule's runs are 201, 201 and 201, 301 (no red: neither has three days above 200); one episode.
            case(vec![Some(201), Some(201), None, Some(201), Some(301)], "orange", &[0, 1, 2, 3, 4]),
            case(vec![None, None, Some(201), Some(201), Some(301)], "red", &[2, 3, 4]),
            case(vec![None, None, None], "none", &[]),
        ],
    );
}

#[test]
fn days_beyond_the_horizon_are_not_looked_at() {
    let pb = shipped("playbooks/shanxi.yaml", "shanxi");
    assert_eq!(pb.horizon_days, 7);
    let a = assess(&pb, &w(&[50, 50, 50, 50, 50, 50, 50, 301, 301, 301]));
    assert_eq!(a.level_or_none(), "none");
    assert_eq!(a.window.len(), 7);
    assert_eq!(a.window.last().unwrap().0, day(6));
}

#[test]
fn forecast_days_before_the_issue_date_are_not_looked_at() {
    let pb = shipped("playbooks/shanxi.yaml", "shanxi");
    let series: Vec<DayValue> = [(-1, 400), (0, 80), (1, 90)]
        .iter()
        .map(|(d, aqi)| DayValue {
            date: issue_date() + chrono::Duration::days(*d),
            aqi: Some(*aqi),
            primary: Vec::new(),
            computed: false,
            dust: false,
        })
        .collect();
    let a = assess_region(RegionCode::parse("140100").unwrap(), &series, issue_date(), "f", &pb);
    assert_eq!(a.level_or_none(), "none");
    assert_eq!(a.window.first().unwrap().0, issue_date());
}

// ---- Taiyuan: the province's rules in the city's name ----------------------------------------------------------

#[test]
fn taiyuan_keeps_the_province_rules_because_domain_md_gives_no_stricter_one() {
    let ty = shipped("playbooks/taiyuan.yaml", "taiyuan");
    let sx = shipped("playbooks/shanxi.yaml", "shanxi");
    for level in ["yellow", "orange", "red"] {
        assert_eq!(ty.level(level).unwrap().entry, sx.level(level).unwrap().entry, "{level}");
    }
    run_table(
        &ty,
        &[
            case(w(&[301, 301]), "orange", &[0, 1]),
            case(w(&[201, 201, 201, 301]), "red", &[0, 1, 2, 3]),
        ],
    );
}

// ---- national 2017, four colours (环大气〔2017〕86号) ------------------------------------------------------------------

#[test]
fn cn_2017_blue_is_one_day_above_200_and_yellow_two() {
    let pb = shipped("playbooks/history/cn-2017.yaml", "cn-2017");
    run_table(
        &pb,
        &[
            case(w(&[201]), "blue", &[0]),
            case(w(&[200]), "none", &[]),
            case(w(&[151, 151, 151, 151]), "none", &[]),
            case(w(&[201, 201]), "yellow", &[0, 1]),
            case(w(&[201, 150, 201]), "blue", &[0, 1, 2]),
            case(w(&[201, 201, 201]), "yellow", &[0, 1, 2]),
            case(w(&[499]), "blue", &[0]),
        ],
    );
}

#[test]
fn cn_2017_orange_is_three_days_above_200_with_one_above_300() {
    let pb = shipped("playbooks/history/cn-2017.yaml", "cn-2017");
    run_table(
        &pb,
        &[
            case(w(&[201, 201, 301]), "orange", &[0, 1, 2]),
            case(w(&[301, 301, 301]), "orange", &[0, 1, 2]),
            case(w(&[201, 201, 300]), "yellow", &[0, 1, 2]),
            case(w(&[201, 201, 201, 301, 150, 301]), "orange", &[0, 1, 2, 3, 4, 5]),
        ],
    );
}

#[test]
fn cn_2017_red_is_four_days_above_200_with_two_above_300_or_a_day_at_500() {
    let pb = shipped("playbooks/history/cn-2017.yaml", "cn-2017");
    assert_eq!(
        pb.level("red").unwrap().entry.to_string(),
        "（日AQI>200持续96小时且日AQI>300持续48小时（同一污染过程））或日AQI≥500"
    );
    run_table(
        &pb,
        &[
            case(w(&[201, 201, 301, 301]), "red", &[0, 1, 2, 3]),
            case(w(&[201, 301, 201, 301]), "orange", &[0, 1, 2, 3]),
            case(w(&[201, 201, 301, 301, 150]), "red", &[0, 1, 2, 3]),
            case(w(&[500]), "red", &[0]),
            case(w(&[100, 100, 100, 100, 100, 100, 500]), "red", &[6]),
            case(w(&[301, 301, 301]), "orange", &[0, 1, 2]),
        ],
    );
}

// ---- Shanxi 2020 ------------------------------------------------------------------------------------------------

#[test]
fn shanxi_2020_counts_days_above_200_two_for_yellow_three_for_orange() {
    let pb = shipped("playbooks/history/shanxi-2020.yaml", "shanxi-2020");
    run_table(
        &pb,
        &[
            case(w(&[201]), "none", &[]),
            case(w(&[151, 151, 151, 151]), "none", &[]),
            case(w(&[201, 201]), "yellow", &[0, 1]),
            case(w(&[201, 200, 201]), "none", &[]),
            case(w(&[201, 201, 201]), "orange", &[0, 1, 2]),
            case(w(&[201, 201, 201, 301]), "orange", &[0, 1, 2, 3]),
        ],
    );
}

#[test]
fn shanxi_2020_red_is_four_days_above_200_with_two_above_300_or_a_day_at_500() {
    let pb = shipped("playbooks/history/shanxi-2020.yaml", "shanxi-2020");
    run_table(
        &pb,
        &[
            case(w(&[201, 201, 201, 301, 301]), "red", &[0, 1, 2, 3, 4]),
            case(w(&[201, 201, 301, 301]), "red", &[0, 1, 2, 3]),
            case(w(&[201, 201, 201, 301, 300]), "orange", &[0, 1, 2, 3, 4]),
            case(w(&[500]), "red", &[0]),
            case(w(&[499]), "none", &[]),
            case(vec![Some(201), Some(201), Some(301), None, Some(301)], "orange", &[0, 1, 2]),
        ],
    );
}

#[test]
fn shanxi_2020_carries_the_2020_directive_for_every_city_but_datong() {
    let pb = shipped("playbooks/history/shanxi-2020.yaml", "shanxi-2020");
    let d = &pb.directives[0];
    assert_eq!(d.min_level, "orange");
    assert_eq!(d.regions.len(), 10);
    assert!(!d.regions.contains(&RegionCode::parse("140200").unwrap()), "Datong was left out");
    assert_eq!(d.from.to_rfc3339(), "2020-11-28T00:00:00+08:00");
    assert_eq!(d.until.unwrap().to_rfc3339(), "2020-12-03T00:00:00+08:00");
    assert_eq!(d.issued_by, RegionCode::parse("140000").unwrap());
}
