//! `hazeflow registry …` end to end, through the same entry point `main` calls: the shipped seeds,
//! defaults and template load; every bad-import fixture gives its exact message; the list generator
//! (the `hazeflow-listgen` binary) is deterministic and streams a large list.
//!
//! Regenerate the Shanxi seed after changing the generator:
//! `cargo run --bin hazeflow-listgen -- --profile shanxi --enterprises 3000 --seed 2026 --out-dir seeds/registry`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use hazeflow::domain::region::Regions;
use hazeflow::registry::cli::{ListSource, RegistryCommand, SeedList, Sources, run};
use hazeflow::registry::import::{ImportOptions, Staged, read_paths};
use hazeflow::registry::reports::{self, BOARD_TEMPLATE};
use hazeflow::registry::{ListVersion, shanxi_defaults};

const SEED: &str = "seeds/registry";
const FIXTURES: &str = "tests/fixtures/registry";

fn seeds() -> Sources {
    Sources {
        list: Some(PathBuf::from(SEED)),
        ..Sources::default()
    }
}

fn ok(code: ExitCode) {
    assert_eq!(code, ExitCode::SUCCESS);
}

fn seed_list() -> ListVersion {
    let opts = ImportOptions {
        defaults: shanxi_defaults(),
        regions: Some(Regions::shanxi()),
    };
    let list = read_paths(&[PathBuf::from(SEED)], &opts, &mut |_, _| {}).unwrap_or_else(|e| panic!("{e:#?}"));
    ListVersion::new(list, None, chrono::Utc::now())
}

#[test]
fn every_shipped_registry_file_loads() {
    ok(run(
        RegistryCommand::Check {
            paths: Vec::new(),
            json: false,
            sources: Sources::default(),
        },
        &mut SeedList::default(),
    )
    .unwrap());
    let list = seed_list();
    assert!((2500..=3500).contains(&list.len()), "{}", list.len());
    // Every one of Shanxi's 11 cities has enterprises, and so do most counties.
    let cities: std::collections::BTreeSet<_> = list.enterprises.iter().filter_map(|e| e.county.city()).collect();
    assert_eq!(cities.len(), 11);
    let permits = std::fs::read_to_string(Path::new(SEED).join("permits.csv")).unwrap();
    let permits = reports::parse_permits("permits.csv", &permits).unwrap();
    let coverage = reports::coverage(&list, &permits, Some(Regions::shanxi()));
    assert!(coverage.coverage() > 0.95 && !coverage.missing.is_empty() && !coverage.mismatches.is_empty());
    let society = std::fs::read_to_string(Path::new(SEED).join("whole_society_emissions.csv")).unwrap();
    let society = reports::parse_society("whole_society_emissions.csv", &society).unwrap();
    assert_eq!(society.len(), 11);
    // The shipped template renders for every enterprise.
    let template = std::fs::read_to_string("playbooks/templates/board.txt.j2").unwrap();
    assert_eq!(template, BOARD_TEMPLATE);
    for e in &list.enterprises {
        let board = reports::board(e, shanxi_defaults(), Regions::shanxi(), &template).unwrap();
        assert!(board.contains(&e.name) && board.contains("12369"));
    }
}

#[test]
fn the_report_commands_run_on_the_seed_list() {
    let mut source = SeedList::default();
    ok(run(
        RegistryCommand::Coverage {
            permits: Path::new(SEED).join("permits.csv"),
            json: true,
            sources: seeds(),
        },
        &mut source,
    )
    .unwrap());
    ok(run(
        RegistryCommand::Reductions {
            region: None,
            level: None,
            society: None,
            json: false,
            sources: seeds(),
        },
        &mut source,
    )
    .unwrap());
    ok(run(
        RegistryCommand::Reductions {
            region: Some("141100".into()),
            level: Some("red".into()),
            society: None,
            json: true,
            sources: seeds(),
        },
        &mut source,
    )
    .unwrap());
    let first = seed_list().enterprises[0].uscc.to_string();
    ok(run(
        RegistryCommand::Board {
            uscc: first,
            template: None,
            sources: seeds(),
        },
        &mut source,
    )
    .unwrap());
}

/// A list source that records what it is given, like the store will.
#[derive(Default)]
struct Recorder {
    current: Option<ListVersion>,
    recorded: Vec<(u32, usize, usize)>,
}

impl ListSource for Recorder {
    fn current(&mut self, _: &ImportOptions<'_>) -> anyhow::Result<Option<ListVersion>> {
        Ok(self.current.clone())
    }

    fn record(&mut self, version: Staged, diff: &hazeflow::registry::ListDiff) -> anyhow::Result<()> {
        self.recorded.push((version.version, diff.added.len(), diff.grade_changes.len()));
        self.current = Some(version.into_version()?);
        Ok(())
    }
}

#[test]
fn importing_records_a_new_version_with_its_diff_and_a_dry_run_records_nothing() {
    let mut store = Recorder::default();
    let import = |dry_run| RegistryCommand::Import {
        paths: vec![PathBuf::from(SEED)],
        dry_run,
        json: true,
        sources: Sources::default(),
    };
    ok(run(import(true), &mut store).unwrap());
    assert!(store.recorded.is_empty());
    ok(run(import(false), &mut store).unwrap());
    let n = store.current.as_ref().unwrap().len();
    assert_eq!(store.recorded, [(1, n, 0)]);
    ok(run(import(false), &mut store).unwrap());
    assert_eq!(store.recorded[1], (2, 0, 0));
    // The seed folder itself is read-only: importing into it without --dry-run is refused.
    assert!(run(import(false), &mut SeedList::default()).is_err());
}

#[test]
fn an_import_whose_own_measures_are_laxer_than_the_grade_default_changes_nothing_and_exits_1() {
    let mut store = Recorder::default();
    let import = |dir: &str| RegistryCommand::Import {
        paths: vec![PathBuf::from(dir)],
        dry_run: false,
        json: false,
        sources: Sources::default(),
    };
    assert_eq!(
        run(import("tests/fixtures/list-laxer-than-grade"), &mut store).unwrap(),
        ExitCode::from(1)
    );
    assert!(store.recorded.is_empty() && store.current.is_none());
    ok(run(import("tests/fixtures/registry/good"), &mut store).unwrap());
    assert_eq!(store.recorded.len(), 1);
}

#[test]
fn a_bad_import_changes_nothing_and_exits_1() {
    let mut store = Recorder::default();
    let cmd = RegistryCommand::Import {
        paths: vec![Path::new(FIXTURES).join("bad-checksum")],
        dry_run: false,
        json: false,
        sources: Sources::default(),
    };
    assert_eq!(run(cmd, &mut store).unwrap(), ExitCode::from(1));
    assert!(store.recorded.is_empty() && store.current.is_none());
}

/// Each fixture breaks one rule; the import reports exactly these messages.
#[test]
fn each_bad_import_fixture_reports_its_exact_message() {
    let dir = Path::new(FIXTURES);
    let cases: &[(&str, &[&str])] = &[
        (
            "bad-checksum",
            &[
                "tests/fixtures/registry/bad-checksum/enterprises.csv:3:1: unified social credit code 91141181MA0K3T7W79 fails the GB 32100 check: the check character should be 8, not 9 (set uscc_override for a legal pilot code)",
            ],
        ),
        (
            "unknown-county",
            &["tests/fixtures/registry/unknown-county/enterprises.csv:3:56: unknown county 141199 (not in the region table)"],
        ),
        (
            "unknown-line",
            &[
                "tests/fixtures/registry/unknown-line/measures.csv:5:28: measure for line L3, which 91141181MA0K3T7W78 does not have (its lines: L1, L2)",
            ],
        ),
        (
            "bad-grade",
            &[
                "tests/fixtures/registry/bad-grade/enterprises.csv:3:75: unknown grade \"E\" (expected one of A+, A, B, B-, C, D, 引领性, 非引领性, 未分级)",
            ],
        ),
        (
            "limit-over-100",
            &["tests/fixtures/registry/limit-over-100/measures.csv:5:61: limit_percent 120 is over 100 %"],
        ),
        (
            "duplicate-uscc",
            &[
                "tests/fixtures/registry/duplicate-uscc/enterprises.csv:4:1: duplicate unified social credit code 91141181MA0K3T7W78 (first at tests/fixtures/registry/duplicate-uscc/enterprises.csv:3)",
            ],
        ),
        (
            "control-in-name",
            &[
                "tests/fixtures/registry/control-in-name/enterprises.csv:4:22: name contains a control character (U+000A); write it on one line",
            ],
        ),
        (
            "bad-email",
            &["tests/fixtures/registry/bad-email/enterprises.csv:3:123: email \"wangjianguo@@pengfei.example.cn\" is not a valid address"],
        ),
        (
            "unknown-level",
            &["tests/fixtures/registry/unknown-level/measures.csv:5:40: unknown level \"purple\" (levels: yellow, orange, red)"],
        ),
        (
            "unknown-enterprise",
            &["tests/fixtures/registry/unknown-enterprise/measures.csv:4:1: 91141181MA0K3T8X1C is not in enterprises.csv"],
        ),
        (
            "unknown-key-industry",
            &[
                "tests/fixtures/registry/unknown-key-industry/enterprises.csv:4:46: unknown key industry \"cemnt\" (known: cement, steel, coking, glass, foundry, lime, brick, refractory, ceramics, ferroalloy, nonferrous, carbon, chemical, printing, coating)",
            ],
        ),
        (
            "duplicate-line",
            &[
                "tests/fixtures/registry/duplicate-line/measures.csv:4:25: duplicate line L1 of 91141181MA0K3T7W78 (first at tests/fixtures/registry/duplicate-line/measures.csv:3)",
            ],
        ),
        (
            "reduction-over-1",
            &[
                "tests/fixtures/registry/reduction-over-1/measures.csv:5:71: so2 reduction 1.5 must be a fraction from 0 to 1 of the baseline",
            ],
        ),
        (
            "permit-of-another-enterprise",
            &[
                "tests/fixtures/registry/permit-of-another-enterprise/enterprises.csv:3:21: permit number 91370200163562681G001P belongs to 91370200163562681G, not to 91141181MA0K3T7W78",
            ],
        ),
        (
            "no-email",
            &[
                "tests/fixtures/registry/no-email/enterprises.csv:3:1: 91141181MA0K3T7W78 has no contact with an email, so it could not be notified",
            ],
        ),
        (
            "exemption-without-load",
            &["tests/fixtures/registry/exemption-without-load/enterprises.csv:3:95: exemption livelihood needs exemption_max_load_percent"],
        ),
        (
            "unknown-column",
            &[
                "tests/fixtures/registry/unknown-column/enterprises.csv:2:30: unknown column \"colour\" (columns: uscc, uscc_override, permit_no, name, county, industry_code, key_industry, grade, grade_since, grade_reason, exemption, exemption_max_load_percent, so2, nox, pm, vocs, contact_role, contact_name, contact_email, contact_phone)",
            ],
        ),
        (
            "bad-checksum-yaml.yaml",
            &[
                "tests/fixtures/registry/bad-checksum-yaml.yaml:3:11: unified social credit code 91141181MA0K3T7W79 fails the GB 32100 check: the check character should be 8, not 9 (set uscc_override for a legal pilot code)",
            ],
        ),
        (
            "unknown-line-yaml.yaml",
            &[
                "tests/fixtures/registry/unknown-line-yaml.yaml:15:32: measure for line L3, which 91141181MA0K3T7W78 does not have (its lines: L1)",
            ],
        ),
    ];
    let opts = ImportOptions {
        defaults: shanxi_defaults(),
        regions: Some(Regions::shanxi()),
    };
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let listed: Vec<&str> = cases.iter().map(|(n, _)| *n).collect();
    for n in &names {
        assert!(listed.contains(&n.as_str()) || n == "good", "fixture {n} has no case");
    }
    let mut wrong = Vec::new();
    for (name, want) in cases {
        let got = read_paths(&[dir.join(name)], &opts, &mut |_, _| {})
            .map(|l| l.len())
            .map_err(|e| e.iter().map(ToString::to_string).collect::<Vec<_>>());
        if got != Err(want.iter().map(ToString::to_string).collect()) {
            wrong.push(format!("fixture {name}:\n  want {want:?}\n  got  {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The good fixture, which the bad ones are copies of, imports.
    assert_eq!(read_paths(&[dir.join("good")], &opts, &mut |_, _| {}).map(|l| l.len()), Ok(2));
}

/// The built `hazeflow-listgen` binary with `args`, writing into `out_dir`; fails the test if it
/// fails.
fn listgen(args: &[&str], out_dir: &Path) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hazeflow-listgen"))
        .args(args)
        .arg("--out-dir")
        .arg(out_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_generator_is_deterministic_and_writes_the_import_format() {
    let out = |seed: u64| -> (String, String) {
        let dir = tempfile::tempdir().unwrap();
        listgen(
            &["--profile", "national", "--enterprises", "5000", "--seed", &seed.to_string()],
            dir.path(),
        );
        let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
        // The national list is on real county codes: it checks against the national table.
        let sources = Sources {
            list: Some(dir.path().to_path_buf()),
            ..Sources::default()
        };
        ok(run(
            RegistryCommand::Check {
                paths: vec![dir.path().to_path_buf()],
                json: false,
                sources,
            },
            &mut SeedList::default(),
        )
        .unwrap());
        (read("enterprises.csv"), read("measures.csv"))
    };
    let a = out(42);
    assert_eq!(a, out(42));
    assert_ne!(a, out(43));
    assert_eq!(a.0.lines().filter(|l| !l.starts_with('#')).count(), 5_001);
}

/// The built binary with the data folder in `data` (the embedded configuration otherwise).
fn hazeflow_in(data: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_hazeflow"))
        .args(args)
        .env("HAZEFLOW_DATA_DIR", data)
        .output()
        .unwrap()
}

#[test]
fn a_national_list_on_real_codes_imports_into_a_fresh_data_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let list = tmp.path().join("list");
    let data = tmp.path().join("data");
    let list_arg = list.to_str().unwrap();
    listgen(&["--profile", "national", "--enterprises", "1500", "--seed", "3"], &list);
    assert!(!data.exists());
    // No daemon has run here: the import creates the store and records version 1.
    let out = hazeflow_in(&data, &["registry", "import", list_arg]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("recorded version 1 (1500 enterprises"), "{err}");
    assert!(data.join("hazeflow.redb").is_file());
    // The next one compares with it; --any-county is still accepted, and ignored.
    let out = hazeflow_in(&data, &["registry", "import", list_arg, "--dry-run", "--any-county"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("version 2 (1500 enterprises") && err.contains(": 0 added, 0 removed, 0 changed"),
        "{err}"
    );
    // A changed list recorded over the stored one (read back in pages, held as fingerprints): one
    // enterprise renamed, another's grade raised; the diff names exactly those, and the store then
    // holds the new name.
    let path = list.join("enterprises.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let rows: Vec<usize> = (0..lines.len()).filter(|&i| !lines[i].starts_with('#')).skip(1).collect();
    let mut renamed: Vec<String> = lines[rows[1200]].split(',').map(str::to_string).collect();
    let old_name = renamed[3].clone();
    renamed[3] = format!("{old_name}（更名）");
    lines[rows[1200]] = renamed.join(",");
    // A C-grade enterprise raised to B (its measures, made for C, are at least as strict as B's).
    let c_row = *rows
        .iter()
        .find(|&&i| lines[i].split(',').nth(7) == Some("C"))
        .expect("a C-grade enterprise");
    let mut regraded: Vec<String> = lines[c_row].split(',').map(str::to_string).collect();
    regraded[7] = "B".to_string();
    lines[c_row] = regraded.join(",");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let out = hazeflow_in(&data, &["registry", "import", list_arg]);
    let (stdout, err) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("recorded version 2 (1500 enterprises") && err.contains(": 0 added, 0 removed, 2 changed, 1 grade change"),
        "{err}"
    );
    assert!(stdout.contains(&format!("{}  {old_name}（更名）  (name)", renamed[0])), "{stdout}");
    assert!(stdout.contains(&format!("{}  {}  (grade)", regraded[0], regraded[3])), "{stdout}");
    assert!(stdout.contains(&format!("{}  {}  C → B", regraded[0], regraded[3])), "{stdout}");
    let out = hazeflow_in(&data, &["registry", "board", &renamed[0]]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("{old_name}（更名）")),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Every county is a real one: the whole list checks against the national table.
    let opts = ImportOptions {
        defaults: shanxi_defaults(),
        regions: Some(Regions::national()),
    };
    let read = read_paths(&[list], &opts, &mut |_, _| {}).unwrap();
    assert!(
        read.iter()
            .all(|e| Regions::national().get(e.county).is_some_and(|r| r.code == e.county))
    );
    assert!(read.iter().any(|e| e.county.province() != hazeflow::domain::region::SHANXI));
}

/// The digest an import prints on stderr (`digest 7f1653b7cf56`).
fn printed_digest(err: &str) -> String {
    err.split("digest ").nth(1).map(|s| s[..12].to_string()).unwrap_or_default()
}

#[test]
fn rows_far_from_their_enterprise_import_and_a_bad_last_row_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (list, moved, data) = (tmp.path().join("list"), tmp.path().join("moved"), tmp.path().join("data"));
    listgen(&["--profile", "national", "--enterprises", "1500", "--seed", "7"], &list);
    let out = hazeflow_in(&data, &["registry", "import", list.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    let digest = printed_digest(&err);

    // The first enterprise's lines and measures moved to the end of measures.csv, 1,499 enterprises
    // away from its row in enterprises.csv: the same list, the same digest.
    std::fs::create_dir_all(&moved).unwrap();
    std::fs::copy(list.join("enterprises.csv"), moved.join("enterprises.csv")).unwrap();
    let text = std::fs::read_to_string(list.join("measures.csv")).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    let header = rows.iter().position(|l| !l.starts_with('#')).unwrap();
    let first = rows[header + 1].split(',').next().unwrap().to_string();
    let (own, others): (Vec<&str>, Vec<&str>) = rows[header + 1..].iter().partition(|l| l.starts_with(&format!("{first},")));
    assert!(own.len() >= 2, "{own:?}");
    let reordered: Vec<&str> = rows[..=header].iter().chain(&others).chain(&own).copied().collect();
    std::fs::write(moved.join("measures.csv"), reordered.join("\n") + "\n").unwrap();
    let out = hazeflow_in(&data, &["registry", "import", moved.to_str().unwrap(), "--dry-run"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    assert!(err.contains(": 0 added, 0 removed, 0 changed"), "{err}");
    assert_eq!(printed_digest(&err), digest, "{err}");

    // A measure for a line its enterprise lacks, in the last row: named by file, line and column,
    // and nothing recorded (the next import still compares with version 1).
    let bad = format!("{}\n{first},measure,L99,,,,,,,,,,red,stop,,,,,,,\n", reordered.join("\n"));
    std::fs::write(moved.join("measures.csv"), bad).unwrap();
    let out = hazeflow_in(&data, &["registry", "import", moved.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    let at = format!(
        "{}:{}:{}: measure for line L99, which {first} does not have",
        moved.join("measures.csv").display(),
        reordered.len() + 1,
        first.len() + ",measure,".len() + 1
    );
    assert!(err.contains(&at), "{at}\n{err}");
    assert!(err.contains("import failed: 1 error; nothing was changed"), "{err}");
    let out = hazeflow_in(&data, &["registry", "import", list.to_str().unwrap(), "--dry-run"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains("version 2 (1500 enterprises") && err.contains(": 0 added, 0 removed, 0 changed"),
        "{err}"
    );
    assert_eq!(printed_digest(&err), digest, "{err}");

    // A shorter list recorded over it removes the others (a chunk of the store's collections at a
    // time): compared with it, the longer list adds them back.
    let short = tmp.path().join("short");
    std::fs::create_dir_all(&short).unwrap();
    let text = std::fs::read_to_string(list.join("enterprises.csv")).unwrap();
    let head = text.lines().take_while(|l| l.starts_with('#')).count() + 1;
    let kept: Vec<&str> = text.lines().take(head + 1000).collect();
    std::fs::write(short.join("enterprises.csv"), kept.join("\n") + "\n").unwrap();
    let codes: std::collections::HashSet<&str> = kept[head..].iter().filter_map(|l| l.split(',').next()).collect();
    let m: Vec<&str> = rows
        .iter()
        .enumerate()
        .filter(|(i, l)| *i <= header || codes.contains(l.split(',').next().unwrap_or("")))
        .map(|(_, l)| *l)
        .collect();
    std::fs::write(short.join("measures.csv"), m.join("\n") + "\n").unwrap();
    let out = hazeflow_in(&data, &["registry", "import", short.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains("recorded version 2 (1000 enterprises") && err.contains(": 0 added, 500 removed, 0 changed"),
        "{err}"
    );
    let out = hazeflow_in(&data, &["registry", "import", list.to_str().unwrap(), "--dry-run"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains(": 500 added, 0 removed, 0 changed"), "{err}");
    assert_eq!(printed_digest(&err), digest, "{err}");
}
