//! The operator's commands, run as the built binary from the crate root: `check`, `aqi`, `assess`, `replay`.
//! What they print and how they exit is what an operator (or a script around them) relies on.

#[path = "common/mod.rs"]
mod common;
use common::copy_dir;

use std::process::{Command, Output};

const FORECASTS: &str = "tests/fixtures/forecasts";

fn hazeflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hazeflow"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        .output()
        .expect("the hazeflow binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("stderr is UTF-8")
}

fn ok(args: &[&str]) -> Output {
    let out = hazeflow(args);
    assert!(out.status.success(), "hazeflow {args:?} failed: {}", stderr(&out));
    out
}

// ---- help -----------------------------------------------------------------------------------------------------

#[test]
fn help_lists_the_offline_commands() {
    let text = stdout(&ok(&["--help"]));
    for command in ["check", "aqi", "assess", "replay"] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(command)),
            "{command} missing from:\n{text}"
        );
    }
}

// ---- check ----------------------------------------------------------------------------------------------------

#[test]
fn check_with_no_arguments_passes_the_shipped_files_with_a_one_line_summary() {
    let out = ok(&["check"]);
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with(
            "ok: 14 playbooks (changzhi@2024.1, cn-2017@2017.1, datong@2024.1, jincheng@2024.1, jinzhong@2024.1, linfen@2024.1, \
         lvliang@2024.1, shanxi-2020@2020.1, shanxi@2024.1, shuozhou@2024.1, taiyuan@2026.1, xinzhou@2024.1, yangquan@2024.1, \
         yuncheng@2024.1)"
        ),
        "{text}"
    );
    assert!(
        text.contains(", 3221 regions"),
        "the national table: 34 provinces, 342 prefecture-level and 2,845 county-level units: {text}"
    );
    assert!(
        text.ends_with(
            "; roster config/roster.yaml (62 people, 13 regions, 10 routes, 117 department contacts; calendar: holidays 16 days, workdays 3, swaps 1, overrides 5), 26 message templates in playbooks/templates/notify rendered with sample data\n"
        ),
        "the roster and templates of the embedded configuration: {text}"
    );
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

/// A folder with a configuration (the shipped default, with its playbooks folder and roster moved
/// into the folder) and copies of the shipped playbooks (with their templates) and roster, for a
/// test to break.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::TempDir::new().expect("a temporary folder");
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        copy_dir(&root.join("playbooks"), &dir.path().join("playbooks"));
        std::fs::copy(root.join("config/roster.yaml"), dir.path().join("roster.yaml")).expect("the roster is copied");
        let config = std::fs::read_to_string(root.join("config/default.yaml"))
            .expect("the default configuration")
            .replace(
                "playbooks: ./playbooks\n",
                &format!("playbooks: {}\n", dir.path().join("playbooks").display()),
            )
            .replace(
                "roster: ./config/roster.yaml\n",
                &format!("roster: {}\n", dir.path().join("roster.yaml").display()),
            )
            .replace(
                "measures: ./playbooks/measures/shanxi.yaml\n",
                &format!("measures: {}\n", dir.path().join("playbooks/measures/shanxi.yaml").display()),
            );
        assert!(
            config.contains("roster.yaml\n") && !config.contains("./config/roster.yaml"),
            "{config}"
        );
        std::fs::write(dir.path().join("config.yaml"), config).expect("the configuration is written");
        Site { dir }
    }

    fn path(&self, rel: &str) -> String {
        self.dir.path().join(rel).display().to_string()
    }

    /// Replaces text in one of its files (which must contain it).
    fn edit(&self, rel: &str, from: &str, to: &str) {
        let path = self.dir.path().join(rel);
        let text = std::fs::read_to_string(&path).expect("the file");
        assert!(text.contains(from), "{rel} has no {from:?}");
        std::fs::write(&path, text.replacen(from, to, 1)).expect("written");
    }

    fn check(&self) -> Output {
        hazeflow(&["check", "--config", &self.path("config.yaml")])
    }
}

#[test]
fn check_with_a_configuration_checks_its_playbooks_roster_and_every_template() {
    let site = Site::new();
    let out = site.check();
    assert!(out.status.success(), "{}", stderr(&out));
    let want = format!(
        "ok: 14 playbooks (changzhi@2024.1, cn-2017@2017.1, datong@2024.1, jincheng@2024.1, jinzhong@2024.1, linfen@2024.1, \
         lvliang@2024.1, shanxi-2020@2020.1, shanxi@2024.1, shuozhou@2024.1, taiyuan@2026.1, xinzhou@2024.1, yangquan@2024.1, \
         yuncheng@2024.1), 3221 regions; \
         list seeds/registry (3000 enterprises); measure defaults {} (15 industries); roster {} (62 people, 13 regions, \
         10 routes, 117 department contacts; calendar: holidays 16 days, workdays 3, swaps 1, overrides 5), 26 message templates in {} rendered with sample data\n",
        site.path("playbooks/measures/shanxi.yaml"),
        site.path("roster.yaml"),
        site.path("playbooks/templates/notify")
    );
    assert_eq!(stdout(&out), want);
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

#[test]
fn check_of_a_broken_roster_names_each_error_with_its_line_and_column_and_exits_1() {
    let site = Site::new();
    // A misspelt event, a night shift ending at "8:00", and a route to a template that does not exist.
    site.edit(
        "roster.yaml",
        "  cancel_scheduled: { to: [duty]",
        "  canceled:         { to: [duty]",
    );
    site.edit(
        "roster.yaml",
        r#"name: 李强, role: duty_officer, email: li.qiang@sthjt.shanxi.example.cn, phone: "0351-0000012", shifts: [{ days: [weekdays], from: "18:00", to: "08:00" }]"#,
        r#"name: 李强, role: duty_officer, email: li.qiang@sthjt.shanxi.example.cn, phone: "0351-0000012", shifts: [{ days: [weekdays], from: "18:00", to: "8:00" }]"#,
    );
    let out = site.check();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let roster = site.path("roster.yaml");
    assert_eq!(
        stderr(&out),
        format!(
            "{roster}:24:3: \"canceled\" is not an event (proposed, issued, withdrawn, started, change_proposed, change_withdrawn, \
             change_scheduled, lift_scheduled, cancel_scheduled, unscheduled, replanned, level_changed, extended, rescheduled, \
             below, below_cleared, lifted, cancelled, directive_applied, directive_released, delivery_failed, store_fault)\n\
             {roster}:32:168: \"8:00\" is not a time of day (HH:MM, or 24:00)\n\
             check failed: 2 errors\n"
        )
    );
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));

    // The calendar: an override naming someone not on the roster, one that overlaps 除夕's, a date that is
    // not one.
    let site = Site::new();
    site.edit(
        "roster.yaml",
        "people: [ty-wang-fang, ty-zhao-jianguo]",
        "people: [ty-wang-fang, ty-zhao-jian-guo]",
    );
    site.edit(
        "roster.yaml",
        r#"{ date: "2027-02-06", from: "08:00", to: "08:00", people: [ty-wang-fang"#,
        r#"{ date: "2027-02-06", from: "07:00", to: "08:00", people: [ty-wang-fang"#,
    );
    site.edit("roster.yaml", r#"{ date: "2027-10-01", from"#, r#"{ date: "2027-10-32", from"#);
    let out = site.check();
    let roster = site.path("roster.yaml");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "{roster}:283:80: unknown person \"ty-zhao-jian-guo\"\n\
             {roster}:283:7: this override of 140100 overlaps the one at line 282 (2027-02-05): one region has one override at a \
             time\n\
             {roster}:284:15: \"2027-10-32\" is not a date (YYYY-MM-DD)\n\
             check failed: 3 errors\n"
        )
    );
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));

    // Fixed, but the lift notice names a template that is not there.
    let site = Site::new();
    site.edit("roster.yaml", "template: warning_lifted }", "template: warning_lift }");
    let out = site.check();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let templates = site.path("playbooks/templates/notify");
    assert_eq!(
        stderr(&out),
        format!(
            "{}:23:45: the route of \"lift_scheduled\" names template \"warning_lift\", but {templates}/warning_lift.subject.j2 or \
             {templates}/warning_lift.txt.j2 is missing\ncheck failed: 1 error\n",
            site.path("roster.yaml")
        )
    );
}

#[test]
fn check_of_a_broken_template_names_the_file_line_and_column_and_exits_1() {
    // A misspelt variable renders empty in a real message; the check renders every template with
    // sample data, strictly, and names it.
    let site = Site::new();
    site.edit(
        "playbooks/templates/notify/warning_proposed.txt.j2",
        "须由{{ needs_title }}签发",
        "须由{{ needs_titel }}签发",
    );
    let out = site.check();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "{}:13:17: undefined value (`needs_titel`)\ncheck failed: 1 error\n",
            site.path("playbooks/templates/notify/warning_proposed.txt.j2")
        )
    );
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));

    // A syntax error in an acknowledgement reminder (a template no route names) is found too.
    let site = Site::new();
    site.edit(
        "playbooks/templates/notify/ack_reminder.txt.j2",
        "{%- if stage == \"in_place\" and overdue %}",
        "{%- if stage == \"in_place\" and overdue %",
    );
    let out = site.check();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    let file = site.path("playbooks/templates/notify/ack_reminder.txt.j2");
    // The unclosed tag runs into the next line, where the parser stops.
    assert_eq!(err, format!("{file}:5:1: unexpected character\ncheck failed: 1 error\n"));
}

#[test]
fn check_of_a_broken_page_template_names_its_file_and_exits_1() {
    // The daemon refuses to start or reload with it; the check says so before.
    let site = Site::new();
    site.edit(
        "playbooks/templates/dashboard/now.html",
        "{% extends \"base.html\" %}",
        "{% extends \"base.html\" ",
    );
    let out = site.check();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!("{}:", site.path("playbooks/templates/dashboard/now.html"))),
        "{err}"
    );
    assert!(err.ends_with("check failed: 1 error\n"), "{err}");
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
}

#[test]
fn check_of_a_city_playbook_also_loads_the_province_it_extends() {
    assert_eq!(stdout(&ok(&["check", "playbooks/shanxi.yaml"])), "ok: 1 playbook (shanxi@2024.1)\n");
    assert_eq!(
        stdout(&ok(&["check", "playbooks/taiyuan.yaml"])),
        "ok: 2 playbooks (shanxi@2024.1, taiyuan@2026.1)\n"
    );
}

#[test]
fn check_of_a_bad_playbook_exits_1_with_the_place_of_the_error() {
    let out = hazeflow(&["check", "tests/fixtures/playbooks/bad-colour.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "tests/fixtures/playbooks/bad-colour.yaml:12:13: colour \"yellow\" is not #RRGGBB\ncheck failed: 1 error\n"
    );
    assert!(stdout(&out).is_empty());
}

// ---- aqi ------------------------------------------------------------------------------------------------------

#[test]
fn aqi_prints_one_line_per_day_with_the_standard_chosen_by_date() {
    let out = ok(&["aqi", &format!("{FORECASTS}/concentrations.csv")]);
    assert_eq!(
        stdout(&out),
        "region,date,aqi,category,primary_pollutants\n\
         140100,2026-02-27,200,中度污染,PM2.5\n\
         140100,2026-02-28,100,良,PM2.5\n\
         140100,2026-03-01,114,轻度污染,PM2.5\n\
         140100,2026-03-02,,,\n\
         140200,2026-02-27,29,优,\n\
         140200,2026-02-28,100,良,PM2.5;PM10\n\
         140200,2026-03-01,301,严重污染,PM2.5\n",
        "PM2.5 75 µg/m³ is AQI 100 under HJ 633-2012 (to 2026-02-28) and 114 under HJ 633-2026 (from 2026-03-01)"
    );
    assert_eq!(stderr(&out), "7 rows, 2 regions: 优 1, 良 2, 轻度污染 1, 中度污染 1, 严重污染 1\n");
}

#[test]
fn aqi_with_a_standard_uses_it_for_every_date() {
    let file = format!("{FORECASTS}/concentrations.csv");
    let new = stdout(&ok(&["aqi", &file, "--standard", "hj633-2026"]));
    assert!(new.contains("\n140100,2026-02-28,114,轻度污染,PM2.5\n"), "{new}");
    assert!(
        new.contains("\n140200,2026-02-28,114,轻度污染,PM2.5\n"),
        "PM10 150 is only 112 under 2026: {new}"
    );
    let old = stdout(&ok(&["aqi", &file, "--standard", "hj633-2012"]));
    assert!(old.contains("\n140100,2026-03-01,100,良,PM2.5\n"), "{old}");
    let bad = hazeflow(&["aqi", &file, "--standard", "hj633-2030"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).starts_with("error: unknown standard \"hj633-2030\" (hj633-2012 or hj633-2026)"),
        "{}",
        stderr(&bad)
    );
}

// ---- assess ---------------------------------------------------------------------------------------------------

/// (region, level, playbook) of each row of the table `assess` prints.
fn assessed(text: &str) -> Vec<(String, String, String)> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["region", "name", "level", "playbook", "days", "rule"]);
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            (cells[0].to_string(), cells[2].to_string(), cells[3].to_string())
        })
        .collect()
}

fn row(region: &str, level: &str, playbook: &str) -> (String, String, String) {
    (region.into(), level.into(), playbook.into())
}

#[test]
fn assess_proposes_a_level_per_region_under_the_playbook_that_governs_it() {
    let out = ok(&["assess", "--forecast", &format!("{FORECASTS}/episode.csv")]);
    let text = stdout(&out);
    assert_eq!(
        assessed(&text),
        [
            row("140100", "orange", "taiyuan@2026.1"),
            row("140105", "yellow", "taiyuan@2026.1"),
            row("140200", "orange", "datong@2024.1"),
            row("140300", "none", "yangquan@2024.1"),
        ],
        "each city under its own playbook: {text}"
    );
    assert!(
        text.contains("2026-12-02..2026-12-04 日AQI>200持续48小时或日AQI>150持续72小时"),
        "{text}"
    );
    let summary = stderr(&out);
    assert!(summary.starts_with("assessed 4 regions with forecast "), "{summary}");
    assert!(summary.ends_with("2 orange, 1 yellow, 1 none; nothing was changed\n"), "{summary}");
}

#[test]
fn assess_with_one_playbook_file_applies_it_to_every_region_in_its_scope() {
    let out = ok(&[
        "assess",
        "--forecast",
        &format!("{FORECASTS}/episode.csv"),
        "--playbook",
        "playbooks/shanxi.yaml",
    ]);
    let text = stdout(&out);
    assert_eq!(
        assessed(&text),
        [
            row("140100", "orange", "shanxi@2024.1"),
            row("140105", "yellow", "shanxi@2024.1"),
            row("140200", "orange", "shanxi@2024.1"),
            row("140300", "none", "shanxi@2024.1"),
        ],
        "two days above 300 are only orange for the province: {text}"
    );
}

#[test]
fn assess_of_counties_outside_shanxi_knows_them_from_the_national_table() {
    let out = ok(&["assess", "--forecast", &format!("{FORECASTS}/beijing-hebei.csv")]);
    let text = stdout(&out);
    assert!(text.contains("110119 延庆区"), "{text}");
    assert!(text.contains("130102 长安区"), "{text}");
    assert!(
        text.contains("330102 上城区"),
        "the retired 330104 is read as its successor: {text}"
    );
    assert_eq!(text.matches("(no playbook governs this region)").count(), 3, "{text}");
    let summary = stderr(&out);
    assert!(!summary.contains("unknown region"), "{summary}");
    assert!(summary.ends_with(": 3 ungoverned; nothing was changed\n"), "{summary}");
    let json = ok(&["assess", "--forecast", &format!("{FORECASTS}/beijing-hebei.csv"), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&json)).expect("stdout is JSON");
    assert_eq!(v["ungoverned"], serde_json::json!(["110119", "130102", "330102"]));
}

#[test]
fn assess_json_carries_the_forecast_and_each_regions_level_rule_and_days() {
    let out = ok(&["assess", "--forecast", &format!("{FORECASTS}/episode.csv"), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("stdout is JSON");
    assert_eq!(v["forecast"]["source"], "山西省生态环境监测和应急保障中心");
    assert_eq!(v["forecast"]["issued_at"], "2026-12-01T16:00:00+08:00");
    let a = v["assessments"].as_array().unwrap();
    assert_eq!(a.len(), 4);
    assert_eq!(a[0]["region"], "140100");
    assert_eq!(a[0]["level"], "orange");
    assert_eq!(a[0]["playbook"], "taiyuan@2026.1");
    // 12-02 (180) begins the run: three days above 150 are orange.
    assert_eq!(a[0]["days"], serde_json::json!(["2026-12-02", "2026-12-03", "2026-12-04"]));
    assert_eq!(a[3]["level"], serde_json::Value::Null, "no level: null");
    assert_eq!(v["ungoverned"], serde_json::json!([]));
}

#[test]
fn a_json_forecast_is_assessed_like_the_same_csv() {
    let csv = ok(&["assess", "--forecast", &format!("{FORECASTS}/episode.csv"), "--json"]);
    let json = ok(&["assess", "--forecast", &format!("{FORECASTS}/episode.json"), "--json"]);
    assert_eq!(stdout(&csv), stdout(&json));
}

#[test]
fn assess_rejects_a_bad_forecast_with_its_place_and_reason_and_changes_nothing() {
    let cases = [
        ("bad-unknown-region.csv", "bad-unknown-region.csv:3:1: unknown region 149999"),
        (
            "bad-date-gap.csv",
            "bad-date-gap.csv:4:1: region 140100 has no value for 2026-12-03 (dates must be consecutive)",
        ),
        (
            "bad-aqi-not-a-number.json",
            "bad-aqi-not-a-number.json: values[0].aqi: aqi must be a number",
        ),
    ];
    for (file, message) in cases {
        let out = hazeflow(&["assess", "--forecast", &format!("{FORECASTS}/{file}")]);
        assert_eq!(out.status.code(), Some(1), "{file}");
        assert_eq!(stderr(&out), format!("error: {FORECASTS}/{message}\n"), "{file}");
        assert!(stdout(&out).is_empty(), "{file}: nothing printed on stdout");
    }
}

#[test]
fn assess_of_a_file_that_is_not_there_says_so() {
    let out = hazeflow(&["assess", "--forecast", &format!("{FORECASTS}/no-such-file.csv")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with(&format!("error: cannot read {FORECASTS}/no-such-file.csv")),
        "{}",
        stderr(&out)
    );
}

// ---- replay ---------------------------------------------------------------------------------------------------

#[test]
fn replay_prints_each_days_proposal_and_the_warning_it_produced() {
    let out = ok(&[
        "replay",
        "--observations",
        &format!("{FORECASTS}/observations-one-episode.csv"),
        "--playbook",
        "playbooks/shanxi.yaml",
    ]);
    // 12-01 and 12-02 see two days above 200 ahead: orange. 12-03 sees 12-04, the second day of the run that began
    // on 12-03: orange. From 12-05 the days are clean: the 12-03 consultation decides the lift for 12-05 00:00.
    assert_eq!(
        stdout(&out),
        "region,date,level\n\
         140100,2026-12-01,orange\n\
         140100,2026-12-02,orange\n\
         140100,2026-12-03,orange\n\
         140100,2026-12-04,none\n\
         140100,2026-12-05,none\n\
         140100,2026-12-06,none\n\
         140100,2026-12-07,none\n\
         140100,2026-12-08,none\n\
         \n\
         warning,region,issued,start,levels,end,status\n\
         140100-20261201-1,140100,2026-12-01T16:00:00+08:00,2026-12-03T00:00:00+08:00,\
         orange@2026-12-03T00:00:00+08:00,2026-12-05T00:00:00+08:00,lifted\n"
    );
    assert_eq!(
        stderr(&out),
        "replayed 8 consultations over 1 regions with shanxi@2024.1: 3 proposed a level, 1 warnings\n"
    );
}

#[test]
fn replay_json_names_levels_by_their_playbook_ids() {
    let out = ok(&[
        "replay",
        "--observations",
        &format!("{FORECASTS}/observations-one-episode.csv"),
        "--playbook",
        "playbooks/shanxi.yaml",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("stdout is JSON");
    let levels: Vec<&str> = v["assessments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["level"].as_str().unwrap())
        .collect();
    assert_eq!(levels, ["orange", "orange", "orange", "none", "none", "none", "none", "none"]);
    assert_eq!(
        v["assessments"][0],
        serde_json::json!({"region": "140100", "date": "2026-12-01", "level": "orange", "rule": "日AQI>200持续48小时或日AQI>150持续72小时"})
    );
    let w = &v["warnings"][0];
    assert_eq!(w["id"], "140100-20261201-1");
    assert_eq!(
        w["levels"],
        serde_json::json!([{"at": "2026-12-03T00:00:00+08:00", "level": "orange"}])
    );
    assert_eq!(w["end"], "2026-12-05T00:00:00+08:00");
    assert_eq!(w["status"], "lifted");
}

#[test]
fn replay_of_the_real_shanxi_series_starts_with_the_header_and_one_line_per_city_and_day() {
    let out = ok(&[
        "replay",
        "--observations",
        "tests/fixtures/shanxi_pm25_daily_2014-2015.csv",
        "--playbook",
        "playbooks/shanxi.yaml",
    ]);
    let text = stdout(&out);
    let proposals: Vec<&str> = text.lines().take_while(|l| !l.is_empty()).collect();
    assert_eq!(proposals[0], "region,date,level");
    assert_eq!(proposals[1], "140100,2014-01-01,none");
    assert_eq!(proposals.len(), 1 + 5 * 729);
    for line in &proposals[1..] {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells.len(), 3, "{line}");
        assert!(["none", "yellow", "orange", "red"].contains(&cells[2]), "{line}");
    }
}

#[test]
fn replay_needs_a_playbook_file_that_checks() {
    let out = hazeflow(&[
        "replay",
        "--observations",
        &format!("{FORECASTS}/observations-one-episode.csv"),
        "--playbook",
        "tests/fixtures/playbooks/bad-colour.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "error: tests/fixtures/playbooks/bad-colour.yaml:12:13: colour \"yellow\" is not #RRGGBB\n"
    );
}

// ---- --output json of the offline commands ----------------------------------------------------------------------

fn json_of(out: &Output) -> serde_json::Value {
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("stdout is one JSON object ({e}):\n{}", stdout(out)))
}

/// `check --output json`: one object with the facts of the text summary (playbooks, regions, list,
/// measure defaults, notification files) and the errors.
#[test]
fn check_with_output_json_prints_the_summary_as_one_object_with_the_counts() {
    let text = ok(&["check"]);
    let said = stdout(&text);
    let v = json_of(&ok(&["check", "--output", "json"]));
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["error_count"], 0, "{v}");
    let n = v["playbook_count"].as_u64().expect("a count");
    assert_eq!(v["playbooks"].as_array().map(Vec::len), Some(n as usize), "{v}");
    assert!(said.starts_with(&format!("ok: {n} playbooks (")), "{said}");
    let regions = v["regions"].as_u64().expect("the seeds' regions");
    assert!(said.contains(&format!(", {regions} regions")), "{said}");
    let industries = v["measures"]["industries"].as_u64().expect("the measure defaults");
    assert!(said.contains(&format!("({industries} industries)")), "{said}");
    let people = v["notifications"]["people"].as_u64().expect("the roster's people");
    assert!(said.contains(&format!("({people} people, ")), "{said}");
    // A failing check: exit 1, the errors in the object.
    let out = hazeflow(&["check", "--output", "json", "tests/fixtures/playbooks/bad-colour.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json_of(&out);
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["error_count"], 1, "{v}");
    assert!(v["errors"][0].as_str().is_some_and(|e| e.contains("bad-colour.yaml:12:13")), "{v}");
}

/// `verify --output json`: the store, its event count, rows per table, problems; the same count as
/// the text's summary line. `aqi --output json`: the rows and the counts. A command with no JSON form
/// (`registry board`) refuses `--output json` with exit code 2.
#[test]
fn verify_and_aqi_with_output_json_print_parseable_objects_and_registry_board_refuses_it() {
    let dir = tempfile::TempDir::new().expect("a folder");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("made");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/stores/format-3/hazeflow.redb"),
        data.join("hazeflow.redb"),
    )
    .expect("copied");
    let config = dir.path().join("site.yaml");
    std::fs::write(&config, format!("data_dir: {}\n", data.display())).expect("the file");
    let config = config.to_str().expect("UTF-8");
    let text = ok(&["verify", "--config", config]);
    let line = stdout(&text).lines().last().expect("a summary line").to_string();
    let v = json_of(&ok(&["verify", "--config", config, "--output", "json"]));
    let events = v["events"].as_u64().expect("an event count");
    assert!(events > 0, "{v}");
    assert!(line.contains(&format!(": {events} events; every table decodes")), "{line}");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["problem_count"], 0, "{v}");
    assert_eq!(v["tables"]["events"].as_u64(), Some(events), "{v}");
    assert!(v["store"].as_str().is_some_and(|s| s.ends_with("hazeflow.redb")), "{v}");

    let v = json_of(&ok(&["aqi", &format!("{FORECASTS}/concentrations.csv"), "--output", "json"]));
    let rows = v["rows"].as_array().expect("rows");
    assert_eq!(v["row_count"].as_u64(), Some(rows.len() as u64), "{v}");
    assert!(rows.iter().all(|r| r["region"].is_string() && r["date"].is_string()), "{v}");

    let out = hazeflow(&["registry", "board", "91140100000000000X", "--output", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("has no JSON output"), "{}", stderr(&out));
}

/// The shipped systemd unit is one `systemd-analyze verify` accepts (with `ExecStart` pointed at the
/// binary just built). Skipped with a note where systemd-analyze is missing, except in CI.
#[test]
fn the_shipped_systemd_unit_passes_systemd_analyze_verify() {
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/hazeflow.service")).expect("the unit");
    assert!(unit.contains("Type=notify") && unit.contains("WatchdogSec="), "{unit}");
    let dir = tempfile::TempDir::new().expect("a folder");
    let path = dir.path().join("hazeflow.service");
    std::fs::write(&path, unit.replace("/usr/bin/hazeflow", env!("CARGO_BIN_EXE_hazeflow"))).expect("written");
    let out = match std::process::Command::new("systemd-analyze").arg("verify").arg(&path).output() {
        Ok(out) => out,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but systemd-analyze cannot run ({e}): .ci/run installs systemd")
        }
        Err(e) => {
            eprintln!("systemd-analyze not run ({e})");
            return;
        }
    };
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && !said.contains("hazeflow.service:"),
        "systemd-analyze verify:\n{said}"
    );
}

/// The files the Debian package installs (`[package.metadata.deb] assets` in Cargo.toml, the binary
/// left out) make a site that `hazeflow check` passes with the packaged configuration: its playbooks,
/// measures, roster and webhook events agree. The package's paths are moved under a scratch root.
#[test]
fn the_packaged_configuration_and_files_pass_check() {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::fs::read_to_string(manifest.join("Cargo.toml")).expect("Cargo.toml");
    let deb = cargo.split("[package.metadata.deb]").nth(1).expect("cargo-deb metadata");
    let deb = deb.split("\n[").next().unwrap_or(deb);
    let root = tempfile::TempDir::new().expect("a folder");
    let mut installed = 0;
    for line in deb.lines().map(str::trim).filter(|l| l.starts_with("[\"")) {
        let parts: Vec<&str> = line.split('"').collect();
        let (from, to) = (parts[1], parts[3]);
        if from.starts_with("target/") {
            continue;
        }
        let sources: Vec<std::path::PathBuf> = match from.split_once("*") {
            Some((dir, ext)) => std::fs::read_dir(manifest.join(dir))
                .expect("the asset folder")
                .map(|e| e.expect("an entry").path())
                .filter(|p| p.is_file() && p.to_string_lossy().ends_with(ext))
                .collect(),
            None => vec![manifest.join(from)],
        };
        assert!(!sources.is_empty(), "{from} installs nothing");
        for src in sources {
            assert!(src.is_file(), "{} is an asset but not a file", src.display());
            let dest = if to.ends_with('/') {
                root.path().join(to).join(src.file_name().expect("a name"))
            } else {
                root.path().join(to)
            };
            std::fs::create_dir_all(dest.parent().expect("a folder")).expect("made");
            std::fs::copy(&src, &dest).expect("copied");
            installed += 1;
        }
    }
    assert!(installed > 5, "{installed} files");
    let etc = root.path().join("etc/hazeflow");
    let config = etc.join("hazeflow.yaml");
    let text = std::fs::read_to_string(&config)
        .expect("the packaged configuration")
        .replace("/etc/hazeflow", &etc.display().to_string())
        .replace("/var/lib/hazeflow", &root.path().join("var/lib/hazeflow").display().to_string());
    std::fs::write(&config, text).expect("written");
    let out = Command::new(env!("CARGO_BIN_EXE_hazeflow"))
        .args(["check", "--config"])
        .arg(&config)
        .current_dir(root.path())
        .output()
        .expect("hazeflow runs");
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

/// The packaged service can read its own configuration: the unit runs as a static system user (not
/// `DynamicUser=`, whose user could not read root's 0640 files), the package's postinst (cargo-deb's
/// `maintainer-scripts`) creates that user and gives its group the packaged configuration and the
/// secret files the production example names. The postinst is run with stand-ins for `adduser`,
/// `dpkg-statoverride`, `chown` … that record what they were asked.
#[test]
fn the_packaged_service_runs_as_a_system_user_that_can_read_its_configuration() {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let unit = std::fs::read_to_string(manifest.join("config/hazeflow.service")).expect("the unit");
    let setting = |key: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(str::trim)
            .map(str::to_string)
    };
    assert!(
        !unit.lines().any(|l| l.starts_with("DynamicUser=")),
        "a dynamic user cannot read root:root 0640 files"
    );
    assert_eq!(setting("User").as_deref(), Some("hazeflow"), "{unit}");
    assert_eq!(setting("Group").as_deref(), Some("hazeflow"), "{unit}");
    let cargo = std::fs::read_to_string(manifest.join("Cargo.toml")).expect("Cargo.toml");
    let deb = cargo.split("[package.metadata.deb]").nth(1).expect("cargo-deb metadata");
    let deb = deb.split("\n[").next().unwrap_or(deb);
    assert!(deb.contains("maintainer-scripts = \"config/debian/\""), "{deb}");
    let postinst = manifest.join("config/debian/postinst");
    let script = std::fs::read_to_string(&postinst).expect("config/debian/postinst");
    assert!(script.contains("#DEBHELPER#"), "cargo-deb puts the unit's snippets there");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&postinst).expect("postinst").permissions().mode();
        assert!(mode & 0o111 != 0, "postinst is executable: {mode:o}");
    }
    // The files under /etc/hazeflow the configuration needs: the packaged ones (0640 in the assets)
    // and the secret files the production example names.
    let mut needed: Vec<String> = deb
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("[\"") && l.contains("\"640\""))
        .map(|l| format!("/{}", l.split('"').nth(3).expect("a destination")))
        .collect();
    let example = std::fs::read_to_string(manifest.join("config/production.example.yaml")).expect("the example");
    for l in example.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
        if let Some((key, value)) = l.split_once(": ")
            && key.ends_with("_file")
            && value.starts_with("/etc/hazeflow/")
        {
            needed.push(value.split_whitespace().next().expect("a path").to_string());
        }
    }
    assert!(needed.len() >= 5, "{needed:?}");
    // Run it: stand-ins record their arguments; no group or user exists yet, no override either.
    let dir = tempfile::TempDir::new().expect("a folder");
    let log = dir.path().join("calls");
    for (name, exit) in [
        ("getent", 2),
        ("addgroup", 0),
        ("adduser", 0),
        ("dpkg-statoverride", 0),
        ("chown", 0),
        ("chmod", 0),
        ("deb-systemd-helper", 0),
        ("deb-systemd-invoke", 0),
        ("systemctl", 0),
    ] {
        let path = dir.path().join(name);
        let body = if name == "dpkg-statoverride" {
            // `--list` finds no override.
            format!(
                "#!/bin/sh\necho \"{name} $*\" >> {log}\ncase \"$1\" in --list) exit 1;; esac\nexit 0\n",
                log = log.display()
            )
        } else {
            format!("#!/bin/sh\necho \"{name} $*\" >> {log}\nexit {exit}\n", log = log.display())
        };
        std::fs::write(&path, body).expect("a stand-in");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("executable");
    }
    let out = Command::new("sh")
        .arg(&postinst)
        .arg("configure")
        .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
        .output()
        .expect("sh runs");
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let calls = std::fs::read_to_string(&log).expect("calls");
    assert!(
        calls
            .lines()
            .any(|l| l.starts_with("adduser --system") && l.ends_with(" hazeflow") && l.contains("--ingroup hazeflow")),
        "{calls}"
    );
    assert!(
        calls
            .lines()
            .any(|l| l.starts_with("addgroup --system") && l.ends_with(" hazeflow")),
        "{calls}"
    );
    for f in &needed {
        let packaged = calls.contains(&format!("dpkg-statoverride --quiet --update --add root hazeflow 0640 {f}\n"));
        // A secret file is the site's, not the package's: made root:hazeflow 0640 when it is there.
        let secret = script.contains(f.as_str()) && script.contains("chown root:hazeflow \"$f\"");
        assert!(packaged || secret, "{f} is not made readable by the service's group:\n{calls}");
    }
}

// ---- acknowledgement-link keys --------------------------------------------------------------------------------

#[test]
fn token_key_rotate_adds_the_next_key_privately_and_list_names_the_one_that_signs() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::TempDir::new().expect("a folder");
    let config = dir.path().join("site.yaml");
    std::fs::write(&config, format!("data_dir: {}\n", dir.path().join("data").display())).expect("the file");
    let config = config.to_str().expect("a UTF-8 path");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_hazeflow"))
            .args(args)
            .current_dir(dir.path())
            .env_remove("RUST_LOG")
            .env_remove("HAZEFLOW_TOKEN_KEY")
            .env_remove("HAZEFLOW_ENV_FILE")
            .output()
            .expect("the hazeflow binary runs")
    };
    // No key yet (the daemon makes k1 on its first start): list says so and fails.
    let out = run(&["token-key", "list", "--config", config]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("no acknowledgement-link key"), "{}", stderr(&out));
    for expected in ["k1", "k2"] {
        let out = run(&["token-key", "rotate", "--config", config]);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        assert!(
            text.contains(&format!("made {expected} (")) && text.contains("after a reload"),
            "{text}"
        );
        let file = dir.path().join(format!("data/token-keys/{expected}.key"));
        let mode = std::fs::metadata(&file).expect("the key file").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_to_string(&file).expect("the key").trim().len(), 64);
    }
    let out = run(&["--output", "json", "token-key", "list", "--config", config]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["keys"], serde_json::json!(["k1", "k2"]));
    assert_eq!(v["signing"], "k2");
}
