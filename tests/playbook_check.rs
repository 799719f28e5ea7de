//! `hazeflow check` on one bad fixture per validation rule (tests/fixtures/playbooks/bad-*.yaml, each named after
//! the rule it breaks): exit code 1 and the exact `file:line:column: message` an operator reads on stderr.
//!
//! The fixtures that extend a parent use `parent.yaml` (id `fixture-province`) from the same folder: a file's
//! folder provides its parents. Cases that need several files of their own live in a subfolder.

use std::path::Path;
use std::process::{Command, Output};

const DIR: &str = "tests/fixtures/playbooks";

fn check(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hazeflow"))
        .arg("check")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        .output()
        .expect("the hazeflow binary runs")
}

fn stderr_lines(out: &Output) -> Vec<String> {
    String::from_utf8(out.stderr.clone())
        .expect("stderr is UTF-8")
        .lines()
        .map(str::to_string)
        .collect()
}

/// Every single-file fixture: (file name, the line `check` must print for it, after `tests/fixtures/playbooks/`).
const CASES: &[(&str, &str)] = &[
    ("bad-yaml-syntax.yaml", "15:19: mismatched bracket '[' closed by '}'"),
    (
        "bad-unknown-key.yaml",
        "6:1: unknown field `lift_window`, expected one of id, version, name, scope, extends, horizon_days, \
         lead_time_hours, lift_window_hours, merge_gap_hours, hold_higher, level_pollutants, advisory_aqi_above, \
         approval_form_hours, relay_hours, record_before_sign, issuer, reports, republish_hours, roles, levels, consultations, directives",
    ),
    ("bad-wrong-type.yaml", "6:15: expected a whole number, 0 or more"),
    ("bad-duplicate-key.yaml", "7:1: key \"lift_window_hours\" appears twice"),
    ("bad-missing-key.yaml", "5:1: missing field `scope`"),
    ("bad-empty-levels.yaml", "2:5: a playbook that extends none needs levels"),
    (
        "bad-undefined-level.yaml",
        "8:9: undefined level \"blue\" (defined: yellow, orange, red)",
    ),
    (
        "bad-undefined-level-in-directive.yaml",
        "19:16: undefined level \"purple\" (defined: yellow)",
    ),
    (
        "bad-undefined-role.yaml",
        "15:15: undefined role \"mayor\" in sign_off (auto or one of: deputy_head, head)",
    ),
    (
        "bad-thresholds-not-increasing.yaml",
        "16:5: thresholds must increase with rank: level \"orange\" (rank 2) is met by every forecast that meets \
         \"yellow\" (rank 1)",
    ),
    (
        "bad-duplicate-rank.yaml",
        "16:5: levels \"yellow\" and \"orange\" have the same rank 1",
    ),
    (
        "bad-duplicate-level-id.yaml",
        "16:5: level id \"yellow\" is defined twice (first at line 9)",
    ),
    (
        "bad-laxer-child.yaml",
        "8:5: level \"yellow\" is laxer than in parent playbook \"fixture-province\": daily AQI [151, 151, 0, 0, 0, 0, 0] \
         meets the parent's rule (日AQI>200或日AQI>150持续48小时) but not this one (日AQI>200)",
    ),
    (
        "bad-issuer-sender.yaml",
        "9:11: issuer.sender \"test office, 1\" must be one word without spaces, commas or <>& (CAP 1.2 sender)",
    ),
    (
        "bad-laxer-lift-window.yaml",
        "7:20: lift_window_hours 24 h is laxer than the 36 h of parent playbook \"fixture-province\"",
    ),
    (
        "bad-laxer-sign-off.yaml",
        "8:5: level \"red\" is laxer than in parent playbook \"fixture-province\": signed by duty_officer (rank 1), \
         the parent needs head (rank 3) or higher",
    ),
    (
        "bad-laxer-hold-higher.yaml",
        "7:14: hold_higher: false is laxer than parent playbook \"fixture-province\", which holds the higher level",
    ),
    ("bad-child-changes-rank.yaml", "9:11: a child playbook cannot change a level's rank"),
    (
        "bad-scope-not-below-parent.yaml",
        "6:8: scope 140000 is not below the scope 140000 of the parent playbook \"fixture-province\"",
    ),
    ("bad-unknown-parent.yaml", "5:10: unknown parent playbook \"no-such-playbook\""),
    (
        "bad-cron.yaml",
        "17:25: bad cron expression \"0 9 * * *\": it has 5 fields; write 6 or 7 fields, seconds first \
         (\"0 0 9 * * *\" is 09:00 daily)",
    ),
    ("bad-unknown-region.yaml", "5:8: unknown region 149999"),
    ("bad-region-code.yaml", "5:8: region code \"14000\" must be 6 digits"),
    (
        "bad-directive-region-outside-scope.yaml",
        "20:25: a directive reaches only regions below its issuer's scope 140100; 140200 is not",
    ),
    ("bad-unknown-group.yaml", "20:15: unknown region group \"jingjinji\""),
    (
        "bad-directive-time.yaml",
        "21:11: \"12月1日0时\" is not a time (RFC 3339 or YYYY-MM-DD HH:MM)",
    ),
    (
        "bad-directive-ends-before-it-starts.yaml",
        "17:5: a directive's until must be after its from",
    ),
    (
        "bad-days-beyond-horizon.yaml",
        "16:33: days must be from 1 to the horizon of 3 days, not 4",
    ),
    ("bad-horizon.yaml", "6:15: horizon_days must be from 1 to 10, not 14"),
    (
        "bad-threshold-above-500.yaml",
        "15:22: threshold 600 is above 500, the top of the AQI scale",
    ),
    ("bad-colour.yaml", "12:13: colour \"yellow\" is not #RRGGBB"),
    (
        "bad-rule-shape.yaml",
        "16:7: a rule is exactly one of: all, any, or aqi_gt/aqi_ge with days",
    ),
    (
        "bad-rule-without-days.yaml",
        "15:12: a threshold needs days: the number of consecutive days",
    ),
    ("bad-empty-any.yaml", "15:12: all/any needs at least one rule"),
    (
        "bad-level-missing-fields.yaml",
        "9:5: level \"yellow\" needs colour, response, sign_off",
    ),
    ("bad-no-levels.yaml", "2:5: a playbook that extends none needs levels"),
    ("bad-level-none.yaml", "9:9: \"none\" is reserved for \"no warning\""),
    ("bad-rank-zero.yaml", "9:5: rank must be 1 or more"),
];

#[test]
fn each_bad_fixture_fails_check_with_exit_code_1_and_its_exact_message() {
    let mut failures = Vec::new();
    for (file, message) in CASES {
        let path = format!("{DIR}/{file}");
        let out = check(&[&path]);
        let got = stderr_lines(&out);
        let want = vec![format!("{path}:{message}"), "check failed: 1 error".to_string()];
        if out.status.code() != Some(1) || got != want || !out.stdout.is_empty() {
            failures.push(format!("{file}: exit {:?}\n  got:  {got:?}\n  want: {want:?}", out.status.code()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_bad_fixture_in_the_folder_has_its_expected_message_here() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(DIR);
    let mut untested = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.starts_with("bad-") && name.ends_with(".yaml") && !CASES.iter().any(|(f, _)| *f == name) {
            untested.push(name);
        }
    }
    assert!(untested.is_empty(), "fixtures without a case: {untested:?}");
}

#[test]
fn the_parent_that_the_fixtures_extend_is_itself_valid() {
    let out = check(&[&format!("{DIR}/parent.yaml")]);
    assert_eq!(out.status.code(), Some(0), "{:?}", stderr_lines(&out));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "ok: 1 playbook (fixture-province@1)\n");
}

#[test]
fn a_child_of_a_broken_parent_shows_the_parents_error_as_well_as_its_own() {
    let out = check(&[&format!("{DIR}/bad-parent-has-errors/bad-parent-has-errors.yaml")]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr_lines(&out),
        vec![
            format!("{DIR}/bad-parent-has-errors/province.yaml:41:13: colour \"red\" is not #RRGGBB"),
            format!("{DIR}/bad-parent-has-errors/bad-parent-has-errors.yaml:5:10: parent playbook \"broken-province\" has errors"),
            "check failed: 2 errors".to_string(),
        ]
    );
}

#[test]
fn two_files_of_one_folder_with_the_same_id_are_an_error_on_the_second() {
    let out = check(&[&format!("{DIR}/bad-duplicate-id")]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr_lines(&out),
        vec![
            format!("{DIR}/bad-duplicate-id/b.yaml:2:5: playbook id \"same-id\" is also used by {DIR}/bad-duplicate-id/a.yaml"),
            "check failed: 1 error".to_string(),
        ]
    );
}

#[test]
fn playbooks_that_extend_each_other_are_reported_both() {
    let out = check(&[&format!("{DIR}/bad-extends-cycle")]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr_lines(&out),
        vec![
            format!("{DIR}/bad-extends-cycle/a.yaml:5:10: playbook \"cycle-a\" extends itself through \"cycle-b\""),
            format!("{DIR}/bad-extends-cycle/b.yaml:5:10: playbook \"cycle-b\" extends itself through \"cycle-a\""),
            "check failed: 2 errors".to_string(),
        ]
    );
}

#[test]
fn a_file_that_is_not_there_is_reported_at_line_0() {
    let out = check(&[&format!("{DIR}/no-such-file.yaml")]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr_lines(&out),
        vec![
            format!("{DIR}/no-such-file.yaml:0:0: cannot read: No such file or directory (os error 2)"),
            "check failed: 1 error".to_string(),
        ]
    );
}

#[test]
fn errors_of_several_files_are_all_reported_and_counted() {
    let out = check(&[
        &format!("{DIR}/bad-colour.yaml"),
        &format!("{DIR}/bad-cron.yaml"),
        &format!("{DIR}/parent.yaml"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].starts_with(&format!("{DIR}/bad-colour.yaml:12:13: ")));
    assert!(lines[1].starts_with(&format!("{DIR}/bad-cron.yaml:17:25: ")));
    assert_eq!(lines[2], "check failed: 2 errors");
    assert!(out.stdout.is_empty(), "no summary line when anything failed");
}

#[test]
fn an_enterprise_whose_own_measures_cut_less_than_its_grades_default_is_named_with_its_row() {
    let dir = "tests/fixtures/list-laxer-than-grade";
    let out = check(&[dir]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines = stderr_lines(&out);
    assert_eq!(
        lines,
        [
            format!(
                "{dir}/measures.csv:8:38: enterprise 91141182MA0K3T8X1T 汾阳市宏达水泥有限公司 (C级): its own measures at yellow (黄色预警) \
                 cut SO2 20%, NOx 20%, PM 20%, VOCs 20% of its baseline, less than the 水泥熟料C级默认措施 it would otherwise take \
                 (SO2 50%, NOx 50%, PM 50%, VOCs 50%); an enterprise's 一厂一策 may not be laxer than its grade's default"
            ),
            "check failed: 1 error".to_string(),
        ]
    );
    // The list it is a copy of passes, and so does the shipped seed list (with everything else shipped).
    let good = check(&["tests/fixtures/registry/good"]);
    assert_eq!(good.status.code(), Some(0), "{:?}", stderr_lines(&good));
    let shipped = check(&[]);
    assert_eq!(shipped.status.code(), Some(0), "{:?}", stderr_lines(&shipped));
    let summary = String::from_utf8(shipped.stdout).unwrap();
    assert!(summary.contains("list seeds/registry (3000 enterprises)"), "{summary}");
}

/// The dashboard's 检查 page shows these errors to duty staff: each in Chinese, at the same file:line:column.
#[test]
fn every_bad_fixture_error_reads_in_chinese_on_the_dashboard_with_its_place() {
    let regions = hazeflow::domain::region::Regions::national();
    let mut english = Vec::new();
    let mut seen = 0;
    for (file, message) in CASES {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DIR).join(file);
        let errors = hazeflow::domain::playbook::load_paths(&[path], regions).expect_err(file);
        for e in errors {
            seen += 1;
            let line = e.to_string();
            let zh = hazeflow::domain::playbook::zh::line(&line);
            let place = format!("{}:{}:{}: ", e.file, e.line(), e.column());
            assert!(zh.starts_with(&place), "{file}: the same place: {zh}");
            // The English message of the CLI is the one the case pins; the dashboard's differs from it.
            assert!(
                line.ends_with(message.split_once(": ").map_or(*message, |(_, m)| m)),
                "{file}: {line}"
            );
            if zh == line {
                english.push(format!("{file}: {line}"));
            }
        }
    }
    assert!(seen >= CASES.len());
    assert!(english.is_empty(), "errors without Chinese:\n{}", english.join("\n"));
}
