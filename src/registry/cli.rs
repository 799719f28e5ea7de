//! `hazeflow registry …`: import the list, check registry files, report coverage and reductions,
//! print a board. (Synthetic lists come from the `hazeflow-listgen` binary.)
//!
//! In: the parsed [`RegistryCommand`] and a [`ListSource`] (the store in the daemon's build; the
//! seed folder until then, or `--list DIR`). Out: tables on stdout (or JSON with `--json`), one
//! summary line on stderr, progress on stderr for large files, an exit code: 0 ok, 1 when the
//! input has errors (each printed as `file:line:column: message`).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use chrono::Utc;

use super::import::{self, ImportOptions, ListDiff};
use super::reports::{self, BOARD_TEMPLATE};
use super::{Defaults, ListVersion, RegistryError, Species, Uscc, defaults};
use crate::domain::level::LevelId;
use crate::domain::region::{RegionCode, Regions};

/// Where the seed list lives, relative to the working folder.
pub const SEED_DIR: &str = "seeds/registry";
/// Where the shipped measure defaults live.
pub const DEFAULTS_FILE: &str = "playbooks/measures/shanxi.yaml";
/// Where the shipped board template lives.
pub const BOARD_FILE: &str = "playbooks/templates/board.txt.j2";
/// Whole-society emissions, inside a list folder.
pub const SOCIETY_FILE: &str = "whole_society_emissions.csv";
/// Imports with more rows than this show progress.
const PROGRESS_FROM_ROWS: usize = 20_000;

/// The registry subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum RegistryCommand {
    /// Validate a list (CSV pair or YAML) and record it as the next version; every error is
    /// printed as file:line:column and nothing changes if there is any.
    Import {
        /// A folder (enterprises.csv + measures.csv, or list.yaml), a YAML list, or the
        /// enterprises CSV followed by the measures CSV.
        #[arg(required = true, num_args = 1..=2)]
        paths: Vec<PathBuf>,
        /// Validate and print the diff against the current list; record nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        sources: Sources,
    },
    /// Compare the list with a permit register: air-emitting holders missing from the list, and
    /// name, county or industry mismatches.
    Coverage {
        /// The permit register (CSV: permit_no,name,county,industry_code,air_emitting,management).
        #[arg(long)]
        permits: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        sources: Sources,
    },
    /// Expected reductions per region and level against the 10/20/30 % targets.
    Reductions {
        /// Only regions within this one (and the region containing it), e.g. 141100.
        #[arg(long)]
        region: Option<String>,
        /// Only this level.
        #[arg(long)]
        level: Option<LevelId>,
        /// Whole-society emissions (default: whole_society_emissions.csv beside the list).
        #[arg(long)]
        society: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        sources: Sources,
    },
    /// Print an enterprise's notice board (应急响应操作方案公示牌).
    Board {
        /// The enterprise's unified social credit code.
        uscc: String,
        /// The template (default: playbooks/templates/board.txt.j2, else the built-in one).
        #[arg(long)]
        template: Option<PathBuf>,
        #[command(flatten)]
        sources: Sources,
    },
    /// Validate registry files: list folders, list YAML, measure defaults, permit registers,
    /// whole-society emissions. Default: seeds/registry and playbooks/measures.
    Check {
        /// Files or folders.
        paths: Vec<PathBuf>,
        /// Print JSON: what was checked and every error.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        sources: Sources,
    },
}

/// Options shared by the commands that need the list or the defaults.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Sources {
    /// Read the current list from this folder (enterprises.csv + measures.csv) instead of the
    /// store.
    #[arg(long, value_name = "DIR")]
    pub list: Option<PathBuf>,
    /// The measure defaults (default: playbooks/measures/shanxi.yaml, else the built-in copy).
    #[arg(long, value_name = "FILE")]
    pub defaults: Option<PathBuf>,
    /// Accepted and ignored (the region table is national now; it used to skip the county check
    /// for synthetic national lists).
    #[arg(long, hide = true)]
    pub any_county: bool,
}

/// Where the current list comes from and where new versions go. The daemon's store implements
/// this; [`SeedList`] reads a folder and records nothing.
pub trait ListSource {
    /// The current list, or `None` if there is none yet.
    fn current(&mut self, opts: &ImportOptions<'_>) -> Result<Option<ListVersion>>;
    /// The current list held compactly, for a diff and the next version (a store reads it in
    /// pages, so the whole list is never in memory beside the new one).
    fn previous(&mut self, opts: &ImportOptions<'_>) -> Result<Option<import::Previous>> {
        Ok(self.current(opts)?.as_ref().map(import::Previous::of))
    }
    /// Records a new version with its diff against the current one.
    fn record(&mut self, version: import::Staged, diff: &ListDiff) -> Result<()>;
}

/// A list read from a folder (by default the seed list); it cannot record versions.
#[derive(Debug, Clone)]
pub struct SeedList {
    /// The folder.
    pub dir: PathBuf,
}

impl Default for SeedList {
    fn default() -> SeedList {
        SeedList {
            dir: PathBuf::from(SEED_DIR),
        }
    }
}

impl ListSource for SeedList {
    fn current(&mut self, opts: &ImportOptions<'_>) -> Result<Option<ListVersion>> {
        if !self.dir.join("enterprises.csv").is_file() && !self.dir.join("list.yaml").is_file() {
            return Ok(None);
        }
        let mut progress = progress_printer("reading the list");
        let list = import::read_paths(std::slice::from_ref(&self.dir), opts, &mut progress)
            .map_err(|errors| anyhow::anyhow!("the current list in {} has errors:\n{}", self.dir.display(), joined(&errors)))?;
        Ok(Some(ListVersion::new(list, None, Utc::now())))
    }

    fn record(&mut self, _: import::Staged, _: &ListDiff) -> Result<()> {
        bail!("no list store here ({} is read-only seed data): use --dry-run", self.dir.display())
    }
}

/// Runs a registry command against a list source.
pub fn run(cmd: RegistryCommand, source: &mut dyn ListSource) -> Result<ExitCode> {
    match cmd {
        RegistryCommand::Import {
            paths,
            dry_run,
            json,
            sources,
        } => import_cmd(&paths, dry_run, json, &sources, source),
        RegistryCommand::Coverage { permits, json, sources } => coverage_cmd(&permits, json, &sources, source),
        RegistryCommand::Reductions {
            region,
            level,
            society,
            json,
            sources,
        } => reductions_cmd(region.as_deref(), level.as_deref(), society.as_deref(), json, &sources, source),
        RegistryCommand::Board { uscc, template, sources } => board_cmd(&uscc, template.as_deref(), &sources, source),
        RegistryCommand::Check { paths, json, sources } => check_cmd(&paths, json, &sources),
    }
}

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

fn joined(errors: &[RegistryError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// The defaults named by `--defaults`, else the shipped file, else the built-in copy.
fn load_defaults(sources: &Sources) -> Result<Defaults> {
    let path = sources
        .defaults
        .clone()
        .or_else(|| Path::new(DEFAULTS_FILE).is_file().then(|| PathBuf::from(DEFAULTS_FILE)));
    match path {
        Some(p) => defaults::load_defaults(&p).map_err(|errors| anyhow::anyhow!("{}", joined(&errors))),
        None => Ok(defaults::shanxi_defaults().clone()),
    }
}

fn options(defaults: &Defaults) -> ImportOptions<'_> {
    ImportOptions {
        defaults,
        regions: Some(Regions::national()),
    }
}

/// The current list: `--list DIR` when given, else the source.
fn current(sources: &Sources, opts: &ImportOptions<'_>, source: &mut dyn ListSource) -> Result<ListVersion> {
    let list = match &sources.list {
        Some(dir) => SeedList { dir: dir.clone() }.current(opts)?,
        None => source.current(opts)?,
    };
    list.context("there is no list yet: import one, or name a folder with --list DIR")
}

/// Prints `label: 42 % (done/total rows)` on stderr, on one line, for large inputs.
fn progress_printer(label: &str) -> impl FnMut(usize, usize) + '_ {
    let mut last = usize::MAX;
    move |done, total| {
        if total < PROGRESS_FROM_ROWS {
            return;
        }
        let pct = done * 100 / total.max(1);
        if pct != last {
            last = pct;
            eprint!("\r{label}: {pct:>3} % ({done}/{total} rows)");
            if done >= total {
                eprintln!();
            }
            let _ = std::io::stderr().flush();
        }
    }
}

/// Pads to a display width, counting CJK characters as two columns.
fn pad(s: &str, width: usize) -> String {
    let w: usize = s.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum();
    format!("{s}{}", " ".repeat(width.saturating_sub(w)))
}

fn num(x: f64) -> String {
    format!("{x:.2}")
}

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

fn import_cmd(paths: &[PathBuf], dry_run: bool, json: bool, sources: &Sources, source: &mut dyn ListSource) -> Result<ExitCode> {
    let defaults = load_defaults(sources)?;
    let opts = options(&defaults);
    let started = Instant::now();
    let mut progress = progress_printer("validating");
    // The enterprises are held packed (a national list would not fit in memory as records) and
    // unpacked one at a time: for the laxity check, the digest and diff, and the recording.
    let checked = import::read_paths_packed(paths, &opts, &mut progress).and_then(|list| {
        let mut found: Vec<(super::Enterprise, defaults::Laxity)> = Vec::new();
        list.for_each(|e| found.extend(defaults.laxities(e).into_iter().map(|lax| (e.clone(), lax))))
            .map_err(|e| vec![RegistryError::at("", 0, 0, format!("cannot read the list's temporary file: {e}"))])?;
        let lax = laxity_errors_of(&defaults, found, paths);
        if lax.is_empty() { Ok(list) } else { Err(lax) }
    });
    let packed = match checked {
        Ok(list) => list,
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!("import failed: {}; nothing was changed", plural(errors.len(), "error"));
            return Ok(ExitCode::from(1));
        }
    };
    let previous = match &sources.list {
        Some(dir) => SeedList { dir: dir.clone() }.previous(&opts)?,
        None => source.previous(&opts)?,
    };
    let (version, d) = packed
        .stage(previous.as_ref(), Utc::now())
        .context("cannot read the list's temporary file")?;
    // Everything printed is made first: the recording takes the version (and the previous list is
    // dropped before it), so a large list is not held twice.
    let out = if json {
        let v = serde_json::json!({
            "dry_run": dry_run,
            "version": version.version,
            "digest": version.digest,
            "enterprises": version.len(),
            "diff": d,
        });
        format!("{}\n", serde_json::to_string_pretty(&v)?)
    } else {
        diff_table(&d, previous.as_ref(), &|u| {
            version.get(u).ok().flatten().map_or(String::new(), |e| e.name)
        })
    };
    drop(previous);
    let (number, count, digest) = (version.version, version.len(), version.digest[..12].to_string());
    if !dry_run {
        if count >= PROGRESS_FROM_ROWS {
            eprintln!("recording {} …", plural(count, "enterprise"));
        }
        source.record(version, &d)?;
    }
    print!("{out}");
    eprintln!(
        "{} version {} ({}, digest {}): {} added, {} removed, {} changed, {} in {:.1} s",
        if dry_run {
            "validated (dry run, nothing recorded)"
        } else {
            "recorded"
        },
        number,
        plural(count, "enterprise"),
        digest,
        d.added.len(),
        d.removed.len(),
        d.changed.len(),
        plural(d.grade_changes.len(), "grade change"),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// The diff as text: each section's count and its first rows. `new_name` names an enterprise of the
/// new version (asked only for the rows shown).
fn diff_table(d: &ListDiff, old: Option<&import::Previous>, new_name: &dyn Fn(&Uscc) -> String) -> String {
    const SHOW: usize = 20;
    let mut out = String::new();
    let old_name = |u: &Uscc| old.and_then(|l| l.get(u)).map_or(String::new(), |e| e.name.clone());
    let mut section = |title: &str, count: usize, rows: &mut dyn Iterator<Item = String>| {
        let _ = writeln!(out, "{title}: {count}");
        for r in rows.take(SHOW) {
            let _ = writeln!(out, "  {r}");
        }
        if count > SHOW {
            let _ = writeln!(out, "  … and {} more (--json lists all)", count - SHOW);
        }
    };
    section("added", d.added.len(), &mut d.added.iter().map(|u| format!("{u}  {}", new_name(u))));
    section(
        "removed",
        d.removed.len(),
        &mut d.removed.iter().map(|u| format!("{u}  {}", old_name(u))),
    );
    section(
        "changed",
        d.changed.len(),
        &mut d
            .changed
            .iter()
            .map(|c| format!("{}  {}  ({})", c.uscc, c.name, c.fields.join(", "))),
    );
    section(
        "grade changes",
        d.grade_changes.len(),
        &mut d.grade_changes.iter().map(|g| {
            let since = g.effective.map(|d| format!(" from {d}")).unwrap_or_default();
            let why = if g.reason.is_empty() {
                String::new()
            } else {
                format!(" ({})", g.reason)
            };
            format!("{}  {}  {} → {}{since}{why}", g.uscc, g.name, g.from.id(), g.to.id())
        }),
    );
    out
}

fn coverage_cmd(permits: &Path, json: bool, sources: &Sources, source: &mut dyn ListSource) -> Result<ExitCode> {
    let defaults = load_defaults(sources)?;
    let opts = options(&defaults);
    let text = std::fs::read_to_string(permits).with_context(|| format!("cannot read {}", permits.display()))?;
    let register = match reports::parse_permits(&permits.display().to_string(), &text) {
        Ok(r) => r,
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!("coverage: the permit register has {}", plural(errors.len(), "error"));
            return Ok(ExitCode::from(1));
        }
    };
    let list = current(sources, &opts, source)?;
    let regions = opts.regions;
    let r = reports::coverage(&list, &register, regions);
    let county = |c: RegionCode| regions.map_or(c.to_string(), |rg| rg.name(c));
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "{} of {} air-emitting permit holders are on the list ({:.1} %)",
            r.covered,
            r.air_emitting_holders,
            r.coverage() * 100.0
        );
        println!();
        println!("missing from the list (应纳未纳): {}", r.missing.len());
        if !r.missing.is_empty() {
            println!("  {}  {}  {}  name", pad("uscc", 18), pad("county", 10), pad("industry", 8));
        }
        for m in &r.missing {
            println!(
                "  {}  {}  {}  {}",
                m.uscc,
                pad(&county(m.county), 10),
                pad(&m.industry_code.to_string(), 8),
                m.name
            );
        }
        println!();
        println!("mismatches with the register: {}", r.mismatches.len());
        if !r.mismatches.is_empty() {
            println!("  {}  {}  {}  register", pad("uscc", 18), pad("field", 8), pad("list", 40));
        }
        for m in &r.mismatches {
            println!("  {}  {}  {}  {}", m.uscc, pad(&m.field, 8), pad(&m.list, 40), m.permit);
        }
        println!();
        println!("on the list without a permit in the register: {}", r.without_permit.len());
    }
    eprintln!(
        "coverage {:.1} %: {} missing, {}, {} without a permit ({} permits read)",
        r.coverage() * 100.0,
        r.missing.len(),
        if r.mismatches.len() == 1 {
            "1 mismatch".to_string()
        } else {
            format!("{} mismatches", r.mismatches.len())
        },
        r.without_permit.len(),
        r.permits
    );
    Ok(ExitCode::SUCCESS)
}

fn reductions_cmd(
    region: Option<&str>,
    level: Option<&str>,
    society: Option<&Path>,
    json: bool,
    sources: &Sources,
    source: &mut dyn ListSource,
) -> Result<ExitCode> {
    let defaults = load_defaults(sources)?;
    let opts = options(&defaults);
    if let Some(l) = level
        && defaults.level(l).is_none()
    {
        bail!("unknown level \"{l}\" (levels: {})", defaults.level_ids().join(", "));
    }
    let region = region.map(RegionCode::parse).transpose().context("--region")?;
    let society_path = society
        .map(Path::to_path_buf)
        .unwrap_or_else(|| sources.list.clone().unwrap_or_else(|| PathBuf::from(SEED_DIR)).join(SOCIETY_FILE));
    let text = std::fs::read_to_string(&society_path).with_context(|| format!("cannot read {}", society_path.display()))?;
    let society =
        reports::parse_society(&society_path.display().to_string(), &text).map_err(|errors| anyhow::anyhow!("{}", joined(&errors)))?;
    let list = current(sources, &opts, source)?;
    let r = reports::reductions(&list, &defaults, &society, level, region, Regions::national());
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        let mut head = format!("{}  {}  {}  {}", pad("region", 6), pad("name", 10), pad("level", 6), pad("ent.", 5));
        for p in Species::ALL {
            let _ = write!(head, "  {}", pad(&format!("{} exp/target t/d", p.label()), 20));
        }
        println!("{head}  short");
        for row in &r.rows {
            let mut line = format!(
                "{}  {}  {}  {}",
                row.region,
                pad(&row.region_name, 10),
                pad(&row.level, 6),
                pad(&row.enterprises.to_string(), 5)
            );
            for p in Species::ALL {
                let _ = write!(line, "  {}", pad(&format!("{}/{}", num(row.expected[p]), num(row.target[p])), 20));
            }
            let short: Vec<&str> = row.short.iter().map(|p| p.label()).collect();
            println!("{line}  {}", if short.is_empty() { "-".to_string() } else { short.join(",") });
        }
        for c in &r.without_society {
            println!(
                "{c}  {}  (enterprises on the list, but no whole-society emissions)",
                Regions::national().name(*c)
            );
        }
    }
    let shorts: Vec<String> = r.short.iter().map(|(reg, l)| format!("{reg} {l}")).collect();
    eprintln!(
        "reductions: {} region-levels, {} short of the target{}{}",
        r.rows.len(),
        shorts.len(),
        if shorts.is_empty() { "" } else { ": " },
        shorts.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

fn board_cmd(uscc: &str, template: Option<&Path>, sources: &Sources, source: &mut dyn ListSource) -> Result<ExitCode> {
    let defaults = load_defaults(sources)?;
    let opts = options(&defaults);
    let code = Uscc::parse_with_override(uscc.trim())?;
    let list = current(sources, &opts, source)?;
    let e = list.get(&code).with_context(|| format!("{code} is not on the list"))?;
    let path = template
        .map(Path::to_path_buf)
        .or_else(|| Path::new(BOARD_FILE).is_file().then(|| PathBuf::from(BOARD_FILE)));
    let text = match &path {
        Some(p) => std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        None => BOARD_TEMPLATE.to_string(),
    };
    let board = reports::board(e, &defaults, Regions::national(), &text).with_context(|| {
        format!(
            "template {}",
            path.as_ref().map_or("(built-in)".to_string(), |p| p.display().to_string())
        )
    })?;
    print!("{board}");
    let measures: usize = defaults.level_ids().iter().map(|l| defaults.measures_for(e, l).len()).sum();
    eprintln!(
        "board for {code} ({}): {}, {}",
        e.name,
        plural(defaults.levels.len(), "level"),
        plural(measures, "measure")
    );
    Ok(ExitCode::SUCCESS)
}

fn check_cmd(paths: &[PathBuf], json: bool, sources: &Sources) -> Result<ExitCode> {
    let paths: Vec<PathBuf> = if paths.is_empty() {
        vec![PathBuf::from(SEED_DIR), PathBuf::from("playbooks/measures")]
    } else {
        paths.to_vec()
    };
    let defaults = load_defaults(sources)?;
    let (checked, errors) = check_files(&paths, &options(&defaults))?;
    for e in &errors {
        eprintln!("{e}");
    }
    if json {
        let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let v = serde_json::json!({
            "ok": errors.is_empty(),
            "checked": checked,
            "errors": errors,
            "error_count": errors.len(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(if errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) });
    }
    if errors.is_empty() {
        eprintln!("ok: {}", checked.join(", "));
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("check failed: {}", plural(errors.len(), "error"));
        Ok(ExitCode::from(1))
    }
}

/// Validates registry files (for `hazeflow check` too): a folder means its list (enterprises.csv +
/// measures.csv, or list.yaml) and every other `.csv`/`.yaml` in it; a file is told by its name
/// and content (a YAML with `enterprises:` is a list, other YAML measure defaults; `*permit*` a
/// permit register; `*emission*`/`*society*` whole-society emissions; `*enterprises*` a list with
/// its `*measures*` sibling). Returns what was checked (`path (3000 enterprises)`) and every
/// error; `Err` only when a folder cannot be read.
pub fn check_files(paths: &[PathBuf], opts: &ImportOptions<'_>) -> Result<(Vec<String>, Vec<RegistryError>)> {
    let opts = *opts;
    let mut errors: Vec<RegistryError> = Vec::new();
    let mut checked: Vec<String> = Vec::new();
    let mut files: Vec<PathBuf> = Vec::new();
    for p in paths {
        if p.is_dir() {
            let has_list = p.join("enterprises.csv").is_file() || p.join("list.yaml").is_file();
            if has_list {
                let mut progress = progress_printer("checking the list");
                match import::read_paths(std::slice::from_ref(p), &opts, &mut progress) {
                    Ok(list) => {
                        errors.extend(laxity_errors(opts.defaults, &list, std::slice::from_ref(p)));
                        checked.push(format!("{} ({})", p.display(), plural(list.len(), "enterprise")));
                    }
                    Err(e) => errors.extend(e),
                }
            }
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
            entries.sort();
            files.extend(entries.into_iter().filter(|f| {
                let n = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                !(has_list && (n == "enterprises.csv" || n == "measures.csv" || n == "list.yaml"))
                    && (n.ends_with(".csv") || n.ends_with(".yaml"))
            }));
        } else {
            files.push(p.clone());
        }
    }
    for f in &files {
        let name = f.display().to_string();
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                errors.push(RegistryError::at(&name, 0, 0, format!("cannot read: {e}")));
                continue;
            }
        };
        let base = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let result: Result<String, Vec<RegistryError>> = if base.ends_with(".yaml") || base.ends_with(".yml") {
            if text.lines().any(|l| l.starts_with("enterprises:")) {
                import::import_yaml(&name, &text, &opts, &mut |_, _| {})
                    .and_then(|l| lax_or(opts.defaults, &l, std::slice::from_ref(f)))
                    .map(|l| plural(l.len(), "enterprise"))
            } else {
                defaults::parse_defaults(&name, &text).map(|d| format!("{}@{}", d.id, d.version))
            }
        } else if base.contains("permit") {
            reports::parse_permits(&name, &text).map(|p| plural(p.len(), "permit"))
        } else if base.contains("emission") || base.contains("society") {
            reports::parse_society(&name, &text).map(|s| plural(s.len(), "region"))
        } else if base.contains("enterprise") {
            let m = f.with_file_name(base.replace("enterprises", "measures"));
            let mut pair = vec![f.clone()];
            if m.is_file() && m != *f {
                pair.push(m);
            }
            import::read_paths(&pair, &opts, &mut |_, _| {})
                .and_then(|l| lax_or(opts.defaults, &l, &pair))
                .map(|l| plural(l.len(), "enterprise"))
        } else if base.contains("measures") {
            continue;
        } else {
            Err(vec![RegistryError::at(
                &name,
                0,
                0,
                "not a registry file (list, measure defaults, permits, emissions)",
            )])
        };
        match result {
            Ok(what) => checked.push(format!("{name} ({what})")),
            Err(e) => errors.extend(e),
        }
    }
    Ok((checked, errors))
}

// ---------------------------------------------------------------------------------------------
// 一厂一策 laxer than the grade's default
// ---------------------------------------------------------------------------------------------

fn lax_or(defaults: &Defaults, list: &[super::Enterprise], paths: &[PathBuf]) -> Result<Vec<super::Enterprise>, Vec<RegistryError>> {
    let lax = laxity_errors(defaults, list, paths);
    if lax.is_empty() { Ok(list.to_vec()) } else { Err(lax) }
}

/// Every enterprise of a list whose own measures (一厂一策) cut less than its grade's default (or its
/// 保障类 cap) for a pollutant it emits at a level ([`Defaults::laxities`]), as errors at the row or
/// item that states its measures at that level: the `level` cell of its first `record=measure` row at
/// that level in the measures CSV, or its first `level:` at that level in a YAML list (else the line
/// that names it). `paths` are the list's files or folder, as given to the import.
pub fn laxity_errors(defaults: &Defaults, list: &[super::Enterprise], paths: &[PathBuf]) -> Vec<RegistryError> {
    let mut found: Vec<(&super::Enterprise, defaults::Laxity)> = Vec::new();
    for e in list {
        for lax in defaults.laxities(e) {
            found.push((e, lax));
        }
    }
    laxity_errors_of(defaults, found, paths)
}

/// [`laxity_errors`] of the laxities found, in list order.
fn laxity_errors_of<E: std::borrow::Borrow<super::Enterprise>>(
    defaults: &Defaults,
    found: Vec<(E, defaults::Laxity)>,
    paths: &[PathBuf],
) -> Vec<RegistryError> {
    if found.is_empty() {
        return Vec::new();
    }
    let files = list_files(paths);
    let texts: Vec<(String, String)> = files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok().map(|t| (f.display().to_string(), t)))
        .collect();
    found
        .into_iter()
        .map(|(e, lax)| {
            let e = e.borrow();
            let (file, line, column) = locate(&texts, e.uscc.as_str(), &lax.level);
            RegistryError::at(&file, line, column, defaults.laxity_message(e, &lax))
        })
        .collect()
}

/// The files of a list as named to the import: a folder's measures.csv, enterprises.csv or list.yaml
/// (measures first: that is where own measures are); files as given.
fn list_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            for f in ["measures.csv", "enterprises.csv", "list.yaml"] {
                if p.join(f).is_file() {
                    out.push(p.join(f));
                }
            }
        } else {
            out.push(p.clone());
        }
    }
    out.sort_by_key(|f| !f.to_string_lossy().contains("measures"));
    out
}

/// Where an enterprise states its measures at a level: `(file, line, column)`, 1-based.
fn locate(texts: &[(String, String)], uscc: &str, level: &str) -> (String, u64, u64) {
    let mut first_mention = None;
    for (name, text) in texts {
        let yaml = name.ends_with(".yaml") || name.ends_with(".yml");
        let mut inside = false;
        for (i, line) in text.lines().enumerate() {
            let n = i as u64 + 1;
            if line.contains(uscc) {
                first_mention.get_or_insert((name.clone(), n, line.find(uscc).map_or(1, |b| line[..b].chars().count() as u64 + 1)));
                inside = true;
                if !yaml {
                    // A CSV row: the cell that equals the level.
                    let mut col = 1u64;
                    for cell in line.split(',') {
                        if cell.trim() == level {
                            return (name.clone(), n, col);
                        }
                        col += cell.chars().count() as u64 + 1;
                    }
                    continue;
                }
            } else if yaml && inside && line.contains("uscc:") {
                inside = false;
            }
            if yaml && inside {
                for pat in [
                    format!("level: {level}"),
                    format!("level: \"{level}\""),
                    format!("level: '{level}'"),
                ] {
                    if let Some(b) = line.find(&pat) {
                        return (name.clone(), n, line[..b].chars().count() as u64 + 1);
                    }
                }
            }
        }
    }
    first_mention.unwrap_or_else(|| (texts.first().map(|t| t.0.clone()).unwrap_or_default(), 0, 0))
}
