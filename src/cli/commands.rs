//! The offline CLI commands (`check`, `aqi`, `assess`, `replay`): read files, call the pure core,
//! print. Each prints a summary line at the end; errors go to stderr and make the exit code non-zero.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::store::{Store, safe_location};

use crate::domain::aqi::{self, Category, Standard};
use crate::domain::assess;
use crate::domain::forecast::{self, ParseOptions};
use crate::domain::playbook::{self, Playbook, PlaybookSet};
use crate::domain::region::Regions;
use crate::domain::replay;

/// Where the shipped playbooks are, relative to the working folder.
pub const DEFAULT_PLAYBOOKS: &str = "playbooks";

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// A path as given, without a leading `./` (the embedded configuration says `./playbooks`).
fn tidy(p: &Path) -> PathBuf {
    p.strip_prefix(".").map_or_else(|_| p.to_path_buf(), Path::to_path_buf)
}

/// The settings whose notification files `check` looks at: the file (or the embedded default) and
/// the environment, without reading secrets (checking files needs none).
fn check_settings(config: Option<&Path>) -> Result<crate::config::Settings> {
    let mut s = match config {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
            crate::config::Settings::layered(&p.display().to_string(), &text)?
        }
        None => crate::config::Settings::parse("config/default.yaml (embedded)", crate::config::DEFAULT_YAML)?,
    };
    s.apply_env(|k| std::env::var(k).ok())?;
    s.validate()?;
    s.playbooks = tidy(&s.playbooks);
    s.roster = tidy(&s.roster);
    Ok(s)
}

/// `hazeflow check [--config FILE] [PATH…]`: validates playbooks, seeds, and the notification files.
/// With no path: the configuration's playbooks folder (`playbooks/` by default) as the live set,
/// each file of its `history/` on its own, `seeds/`, and the duty roster and message templates the
/// configuration names (every template rendered with sample data), and the page templates. With paths: those, and the
/// notification files too when `--config` is given.
pub fn check(paths: &[PathBuf], config: Option<&Path>, json: bool) -> Result<ExitCode> {
    let regions = Regions::national();
    // Every error, as printed on stderr (and listed by `--output json`).
    let mut errors: Vec<String> = Vec::new();
    let mut fail = |e: String| {
        eprintln!("{e}");
        errors.push(e);
    };
    let mut warnings: Vec<String> = Vec::new();
    let with_notify = paths.is_empty() || config.is_some();
    let settings = if with_notify {
        match check_settings(config) {
            Ok(s) => Some(s),
            Err(e) => {
                fail(format!("{e:#}"));
                None
            }
        }
    } else {
        None
    };
    let mut groups: Vec<Vec<PathBuf>> = Vec::new();
    let mut seed_dirs = Vec::new();
    // Emergency reduction lists (a folder with enterprises.csv or list.yaml): imported whole, and each
    // enterprise's 一厂一策 held against its grade's default.
    let mut list_dirs: Vec<PathBuf> = Vec::new();
    let is_list = |p: &Path| p.is_dir() && (p.join("enterprises.csv").is_file() || p.join("list.yaml").is_file());
    if paths.is_empty() {
        if let Some(dir) = settings.as_ref().and_then(|s| s.list_seed.clone())
            && is_list(&dir)
        {
            list_dirs.push(tidy(&dir));
        }
        let books = settings
            .as_ref()
            .map_or_else(|| PathBuf::from(DEFAULT_PLAYBOOKS), |s| s.playbooks.clone());
        let hist = books.join("history");
        groups.push(vec![books]);
        if hist.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&hist)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
                .collect();
            files.sort();
            groups.extend(files.into_iter().map(|f| vec![f]));
        }
        // The shipped seeds, when run where they are (with a configuration of one's own, elsewhere).
        if config.is_none() || Path::new("seeds").is_dir() {
            seed_dirs.push(PathBuf::from("seeds"));
        }
    } else {
        for p in paths {
            if p.is_dir() && p.join("regions.csv").is_file() {
                seed_dirs.push(p.clone());
            } else if is_list(p) {
                list_dirs.push(p.clone());
            } else {
                groups.push(vec![p.clone()]);
            }
        }
    }
    let mut names = Vec::new();
    let mut live = None;
    for (i, g) in groups.iter().enumerate() {
        match playbook::load_paths(g, regions) {
            Ok(set) => {
                names.extend(set.iter().map(|p| p.pin()));
                if i == 0 {
                    live = Some(set);
                }
            }
            Err(errors) => {
                for e in errors {
                    fail(e.to_string());
                }
            }
        }
    }
    let mut region_count = 0;
    for dir in &seed_dirs {
        let text = |f: &str| std::fs::read_to_string(dir.join(f)).with_context(|| format!("cannot read {}", dir.join(f).display()));
        match Regions::from_csv(&text("regions.csv")?, &text("region_aliases.csv")?, &text("region_groups.csv")?) {
            Ok(r) => region_count += r.all().count(),
            Err(e) => {
                fail(format!("{}: {e}", dir.display()));
            }
        }
    }
    // The measure defaults (一厂一策 rules, deadlines, duties), and that they know every live level.
    let mut measures = None;
    if let Some(s) = &settings {
        let file = tidy(&s.measures).display().to_string();
        match crate::registry::load_defaults(&tidy(&s.measures)) {
            Ok(d) => {
                let unknown = live
                    .as_ref()
                    .map(|set| crate::registry::unknown_levels(&file, &d, set))
                    .unwrap_or_default();
                for e in &unknown {
                    fail(e.to_string());
                }
                measures = Some((file, d.industries.len()));
            }
            Err(errors) => {
                for e in errors {
                    fail(e.to_string());
                }
            }
        }
    }
    // The lists, against the configuration's measure defaults (else the shipped ones).
    let mut lists = Vec::new();
    if !list_dirs.is_empty() {
        let loaded = settings
            .as_ref()
            .and_then(|s| crate::registry::load_defaults(&tidy(&s.measures)).ok());
        let defaults = loaded.as_ref().unwrap_or_else(|| crate::registry::shanxi_defaults());
        let opts = crate::registry::import::ImportOptions {
            defaults,
            regions: Some(regions),
        };
        match crate::registry::cli::check_files(&list_dirs, &opts) {
            Ok((checked, errors)) => {
                for e in &errors {
                    fail(e.to_string());
                }
                lists.extend(checked.into_iter().filter(|c| c.contains("enterprise")));
            }
            Err(e) => {
                fail(format!("{e:#}"));
            }
        }
    }
    // The page templates (dashboard, public, acknowledgement): the daemon refuses to start or reload
    // with a broken one, so the check names it first.
    if let Some(s) = &settings
        && let Err(errors) = crate::web::Pages::load(&s.playbooks)
    {
        for e in errors {
            fail(e.to_string());
        }
    }
    let notify = match &settings {
        Some(s) => match crate::notify::check(s, regions) {
            Ok(summary) => {
                for w in crate::notify::warnings(s, regions) {
                    eprintln!("{w}");
                    warnings.push(w.to_string());
                }
                Some(summary)
            }
            Err(errors) => {
                for e in errors {
                    fail(e.to_string());
                }
                None
            }
        },
        None => None,
    };
    names.sort();
    names.dedup();
    let failed = errors.len();
    if json {
        // The same facts as the text summary (or the failure line), as one object on stdout.
        let mut v = serde_json::json!({
            "ok": failed == 0,
            "errors": errors,
            "error_count": failed,
            "warnings": warnings,
            "playbooks": names,
            "playbook_count": names.len(),
        });
        if !seed_dirs.is_empty() {
            v["regions"] = region_count.into();
        }
        if !lists.is_empty() {
            v["lists"] = serde_json::json!(lists);
        }
        if let Some((file, industries)) = &measures {
            v["measures"] = serde_json::json!({ "file": file, "industries": industries });
        }
        if let Some(n) = &notify {
            v["notifications"] = serde_json::to_value(n)?;
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        if failed > 0 {
            eprintln!("check failed: {failed} error{}", if failed == 1 { "" } else { "s" });
        }
        return Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) });
    }
    if failed > 0 {
        eprintln!("check failed: {failed} error{}", if failed == 1 { "" } else { "s" });
        return Ok(ExitCode::from(1));
    }
    let mut summary = format!(
        "ok: {} playbook{} ({})",
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        names.join(", ")
    );
    if !seed_dirs.is_empty() {
        let _ = write!(summary, ", {region_count} regions");
    }
    if !lists.is_empty() {
        let _ = write!(summary, "; list {}", lists.join(", "));
    }
    if let Some((file, industries)) = measures {
        let _ = write!(summary, "; measure defaults {file} ({industries} industries)");
    }
    if let Some(n) = notify {
        let _ = write!(summary, "; {n} rendered with sample data");
    }
    println!("{summary}");
    Ok(ExitCode::SUCCESS)
}

/// `hazeflow aqi FILE.csv`: AQI per row from concentrations.
/// `--output json`: one object, `rows` (each row's region, date, aqi, category, primary
/// pollutants) and the summary's counts (`row_count`, `region_count`, `categories`).
pub fn aqi(file: &Path, standard: Option<&str>, json: bool) -> Result<ExitCode> {
    let standard = match standard {
        None => None,
        Some(s) => Some(Standard::parse(s).with_context(|| format!("unknown standard \"{s}\" (hj633-2012 or hj633-2026)"))?),
    };
    let bytes = read(file)?;
    let opts = ParseOptions {
        standard,
        ..ParseOptions::observations()
    };
    let f = forecast::parse(&file.display().to_string(), &bytes, Regions::national(), &opts)?;
    let mut out = String::from("region,date,aqi,category,primary_pollutants\n");
    let mut rows = Vec::new();
    let mut counts = [0usize; 6];
    for (region, days) in &f.series {
        for d in days {
            match d.aqi {
                Some(a) => {
                    let cat = Category::of(a);
                    counts[cat as usize] += 1;
                    let primary: Vec<&str> = d.primary.iter().map(|p| p.label()).collect();
                    let _ = writeln!(out, "{region},{},{a},{},{}", d.date, cat.name_zh(), primary.join(";"));
                    rows.push(serde_json::json!({
                        "region": region, "date": d.date, "aqi": a, "category": cat.name_zh(), "primary_pollutants": primary,
                    }));
                }
                None => {
                    let _ = writeln!(out, "{region},{},,,", d.date);
                    rows.push(serde_json::json!({
                        "region": region, "date": d.date, "aqi": null, "category": null, "primary_pollutants": [],
                    }));
                }
            }
        }
    }
    if !json {
        print!("{out}");
    }
    let names = [
        Category::Excellent,
        Category::Good,
        Category::Light,
        Category::Moderate,
        Category::Heavy,
        Category::Severe,
    ];
    let parts: Vec<String> = names
        .iter()
        .zip(counts)
        .filter(|(_, n)| *n > 0)
        .map(|(c, n)| format!("{} {n}", c.name_zh()))
        .collect();
    if json {
        let categories: serde_json::Map<String, serde_json::Value> = names
            .iter()
            .zip(counts)
            .filter(|(_, n)| *n > 0)
            .map(|(c, n)| (c.name_zh().to_string(), n.into()))
            .collect();
        let v = serde_json::json!({
            "rows": rows,
            "row_count": f.len(),
            "region_count": f.series.len(),
            "categories": categories,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("{} rows, {} regions: {}", f.len(), f.series.len(), parts.join(", "));
    let _ = aqi::Pollutant::Pm25;
    Ok(ExitCode::SUCCESS)
}

fn load_playbooks(path: Option<&Path>) -> Result<(PlaybookSet, Option<PathBuf>)> {
    let p = path.map_or_else(|| PathBuf::from(DEFAULT_PLAYBOOKS), Path::to_path_buf);
    match playbook::load_paths(std::slice::from_ref(&p), Regions::national()) {
        Ok(set) => Ok((set, path.map(Path::to_path_buf))),
        Err(errors) => {
            let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
            bail!("{}", text.join("\n"))
        }
    }
}

fn the_playbook(set: &PlaybookSet, file: &Path) -> Result<std::sync::Arc<Playbook>> {
    set.iter()
        .find(|p| p.file == file)
        .cloned()
        .with_context(|| format!("{} holds no playbook", file.display()))
}

/// `hazeflow assess`: one consultation, dry run.
pub fn assess(forecast_file: &Path, playbook_path: Option<&Path>, json: bool) -> Result<ExitCode> {
    let regions = Regions::national();
    let (set, file) = load_playbooks(playbook_path)?;
    let bytes = read(forecast_file)?;
    let f = forecast::parse(&forecast_file.display().to_string(), &bytes, regions, &ParseOptions::forecast())?;
    let (assessments, ungoverned) = match file.filter(|p| p.is_file()) {
        // One file named: that playbook governs every region of the forecast within its scope.
        Some(file) => {
            let pb = the_playbook(&set, &file)?;
            let mut out = Vec::new();
            let mut skipped = Vec::new();
            for (region, days) in &f.series {
                if *region == pb.scope || regions.is_within(*region, pb.scope) {
                    out.push(assess::assess_region(*region, days, f.issue_date(), &f.id, &pb));
                } else {
                    skipped.push(*region);
                }
            }
            (out, skipped)
        }
        None => assess::assess(&f, &set, regions),
    };
    if json {
        let v = serde_json::json!({ "forecast": { "id": f.id, "issued_at": f.issued_at, "source": f.source }, "assessments": assessments, "ungoverned": ungoverned });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{:<8} {:<10} {:<8} {:<24} {:<22} rule",
            "region", "name", "level", "playbook", "days"
        );
        for a in &assessments {
            let days = match (a.days.first(), a.days.last()) {
                (Some(x), Some(y)) if x == y => x.to_string(),
                (Some(x), Some(y)) => format!("{x}..{y}"),
                _ => "-".into(),
            };
            println!(
                "{:<8} {:<10} {:<8} {:<24} {:<22} {}",
                a.region,
                regions.name(a.region),
                a.level_or_none(),
                a.playbook,
                days,
                a.rule.as_deref().unwrap_or("-")
            );
        }
        for r in &ungoverned {
            println!("{r:<8} {:<10} (no playbook governs this region)", regions.name(*r));
        }
    }
    let mut tally: Vec<(String, usize)> = Vec::new();
    for a in &assessments {
        match tally.iter_mut().find(|(l, _)| l == a.level_or_none()) {
            Some(t) => t.1 += 1,
            None => tally.push((a.level_or_none().to_string(), 1)),
        }
    }
    let mut parts: Vec<String> = tally.iter().map(|(l, n)| format!("{n} {l}")).collect();
    if !ungoverned.is_empty() {
        parts.push(format!("{} ungoverned", ungoverned.len()));
    }
    eprintln!(
        "assessed {} regions with forecast {} (issued {}, {}): {}; nothing was changed",
        assessments.len(),
        f.id,
        f.issued_at.with_timezone(&chrono_tz::Asia::Shanghai).format("%Y-%m-%d %H:%M"),
        f.source,
        parts.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

/// `hazeflow replay`: observations as perfect forecasts.
pub fn replay(observations: &Path, playbook_file: &Path, json: bool, stats: bool) -> Result<ExitCode> {
    let regions = Regions::national();
    let (set, _) = load_playbooks(Some(playbook_file))?;
    let pb = the_playbook(&set, playbook_file)?;
    let bytes = read(observations)?;
    let obs = forecast::parse(&observations.display().to_string(), &bytes, regions, &ParseOptions::observations())?;
    let r = replay::replay(&obs, &pb, regions);
    if stats {
        let st = replay::stats(&obs, &r);
        if json {
            println!("{}", serde_json::to_string(&st)?);
        } else {
            for line in st.lines() {
                println!("{line}");
            }
        }
    } else if json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!("region,date,level");
        for a in &r.assessments {
            println!("{},{},{}", a.region, a.date, a.level);
        }
        println!();
        println!("warning,region,issued,start,levels,end,status");
        for w in &r.warnings {
            let levels: Vec<String> = w.levels.iter().map(|l| format!("{}@{}", l.level, l.at)).collect();
            println!(
                "{},{},{},{},{},{},{}",
                w.id,
                w.region,
                w.issued,
                w.start,
                levels.join(";"),
                w.end.as_deref().unwrap_or(""),
                w.status
            );
        }
    }
    let days_with_level = r.assessments.iter().filter(|a| a.level != "none").count();
    eprintln!(
        "replayed {} consultations over {} regions with {}: {} proposed a level, {} warnings",
        r.assessments.len(),
        obs.series.len(),
        pb.pin(),
        days_with_level,
        r.warnings.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// `hazeflow verify`: checks the store at `db` without changing a byte of it. The file is copied
/// (into `scratch`, default the system's temporary folder) and the copy opened with redb's integrity
/// check; then every row of every table is decoded, and the views are rebuilt from the event log and
/// compared: region states, warnings, latest forecasts, directives, assignment rounds, escalation
/// timers, the outbox and its indexes. Prints each problem on stderr and a summary line; returns
/// whether the store is sound. A panic inside the database library on a damaged file is reported as
/// damage, not raised.
/// With `json`, the summary is one object on stdout instead: `store`, `ok`, `events`, `problems`,
/// `problem_count`, `older_format`, `history` and `tables` (rows per table).
pub fn verify(db: &Path, scratch: Option<&Path>, json: bool) -> anyhow::Result<bool> {
    let base = scratch.map_or_else(std::env::temp_dir, Path::to_path_buf);
    let dir = base.join(format!("hazeflow-verify-{}", std::process::id()));
    // The copy holds the whole store: the folder is its owner's only (0700).
    crate::config::private_dir(&dir).with_context(|| format!("cannot make the scratch folder {} (--scratch DIR)", dir.display()))?;
    let panicked = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let previous = std::panic::take_hook();
    {
        let panicked = panicked.clone();
        std::panic::set_hook(Box::new(move |info| {
            if let Ok(mut g) = panicked.lock() {
                *g = Some(info.to_string());
            }
        }));
    }
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| deep_check(db, &dir)));
    std::panic::set_hook(previous);
    let _ = std::fs::remove_dir_all(&dir);
    let found = match run {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => DeepCheck::damaged(format!("damaged: {e}")),
        Err(_) => {
            let what = panicked.lock().ok().and_then(|g| g.clone()).unwrap_or_default();
            DeepCheck::damaged(format!("damaged: reading the file failed inside the database library ({what})"))
        }
    };
    for p in &found.problems {
        eprintln!("{p}");
    }
    let (events, problems) = (found.events, &found.problems);
    if json {
        let tables: serde_json::Map<String, serde_json::Value> =
            found.tables.iter().map(|(t, n)| ((*t).to_string(), (*n).into())).collect();
        let v = serde_json::json!({
            "store": db.display().to_string(),
            "ok": problems.is_empty(),
            "events": events,
            "problems": problems,
            "problem_count": problems.len(),
            "older_format": found.older_format,
            "format": crate::store::FORMAT_VERSION,
            "history": found.history,
            "tables": tables,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(problems.is_empty());
    }
    if let Some(v) = found.older_format {
        println!(
            "format {v}: older than this hazeflow's {}; it is upgraded in place (after a backup beside it) when the daemon or a command opens it",
            crate::store::FORMAT_VERSION
        );
    }
    for h in &found.history {
        println!(
            "history: format {} {} {} by hazeflow {} at {} events{}",
            h.format,
            h.how,
            h.at.map_or_else(|| "(time unknown)".to_string(), |t| t.to_rfc3339()),
            h.hazeflow,
            h.events,
            h.backup.as_ref().map(|b| format!(", backup {b}")).unwrap_or_default()
        );
    }
    println!(
        "{}: {} events; {}",
        db.display(),
        events.map_or_else(|| "?".to_string(), |n| n.to_string()),
        if problems.is_empty() {
            "every table decodes and the views agree with the log".to_string()
        } else {
            format!("{} problems: the store is damaged or inconsistent", problems.len())
        }
    );
    Ok(problems.is_empty())
}

/// What [`deep_check`] found.
struct DeepCheck {
    /// Records in the event log (`None`: not read).
    events: Option<u64>,
    problems: Vec<String>,
    /// The store's format when older than this build's.
    older_format: Option<u32>,
    /// The store's history (read when every row decodes).
    history: Vec<crate::store::HistoryEntry>,
    /// Rows per table.
    tables: Vec<(&'static str, u64)>,
}

impl DeepCheck {
    fn damaged(problem: String) -> DeepCheck {
        DeepCheck {
            events: None,
            problems: vec![problem],
            older_format: None,
            history: Vec::new(),
            tables: Vec::new(),
        }
    }
}

/// The checks of [`verify`]: the number of events, the problems found, the format and history.
fn deep_check(db: &Path, scratch: &Path) -> Result<DeepCheck, crate::store::StoreError> {
    let checked = crate::store::Checked::open_copy(db, scratch)?;
    checked.read(|r| {
        let tables = r.check_tables()?;
        let history = if tables.problems.is_empty() {
            r.store_history()?
        } else {
            Vec::new()
        };
        let (older_format, rows) = (tables.older_format, tables.rows.clone());
        let events = tables.rows.iter().find(|(t, _)| *t == "events").map(|(_, n)| *n);
        let mut problems = tables.problems;
        if problems.is_empty() {
            // The views are compared only once every row decodes (a row that does not would stop the
            // rebuild at its first read).
            problems.extend(r.verify_views()?);
            let (rounds, stored) = crate::engine::assign::check(r)?;
            problems.extend(rounds);
            problems.extend(crate::engine::escalate::check(r, &stored)?);
            problems.extend(crate::notify::outbox::check(r)?);
        }
        Ok(DeepCheck {
            events,
            problems,
            older_format,
            history,
            tables: rows,
        })
    })
}

/// `hazeflow token-key list|rotate`: the acknowledgement-link keys (the data folder's, or the shared
/// store's when `store.url` names PostgreSQL); `rotate` adds the next one first.
pub fn token_keys(settings: &crate::config::Settings, rotate: bool, json: bool) -> Result<ExitCode> {
    use crate::engine::link_keys::{self, KeyHome};
    let store = match &settings.store.url {
        Some(url) => Some(Store::open_postgres_client(url).context("the shared store does not open")?),
        None => None,
    };
    let home = match &store {
        Some(s) => KeyHome::Store(s.clone()),
        None => KeyHome::Folder(settings.data_dir.clone()),
    };
    let made = if rotate { Some(home.rotate()?) } else { None };
    let ring = home.read()?;
    if let Some(s) = &store {
        s.close();
    }
    let ids = ring.ids();
    let signing = link_keys::id_name(ring.signing().0);
    if json {
        let out = serde_json::json!({
            "keys": ids, "signing": signing,
            "made": made.as_ref().map(|(id, place)| serde_json::json!({ "id": link_keys::id_name(*id), "file": place })),
        });
        println!("{out}");
        return Ok(ExitCode::SUCCESS);
    }
    for id in &ids {
        let what = if *id == signing {
            "signs new links (and verifies its own)"
        } else if id == "legacy" {
            "verifies links without a key id (token.key or HAZEFLOW_TOKEN_KEY)"
        } else {
            "verifies the links it signed"
        };
        println!("{id}\t{what}");
    }
    match made {
        Some((id, place)) => println!(
            "made {} ({place}); a running daemon signs with it after a reload (hazeflow reload, or SIGHUP; with a shared store, on every node); links signed by older keys keep working until their keys are removed",
            link_keys::id_name(id),
        ),
        None => println!("{} keys in {}; {signing} signs", ids.len(), home.describe()),
    }
    Ok(ExitCode::SUCCESS)
}

/// `hazeflow token-key list|rotate --session`: the dashboard's session keys (the data folder's
/// `session-keys/`, the legacy `session.key` as `k0`; or the shared store's); `rotate` adds the next
/// one first.
pub fn session_keys(settings: &crate::config::Settings, rotate: bool, json: bool) -> Result<ExitCode> {
    use crate::engine::link_keys::{self, KeyHome};
    let store = match &settings.store.url {
        Some(url) => Some(Store::open_postgres_client(url).context("the shared store does not open")?),
        None => None,
    };
    let home = match &store {
        Some(s) => KeyHome::Store(s.clone()),
        None => KeyHome::Folder(settings.data_dir.clone()),
    };
    let made = if rotate { Some(home.rotate_session()?) } else { None };
    let keys = home.session_keys();
    if let Some(s) = &store {
        s.close();
    }
    let keys = keys?;
    let ids = keys.ids();
    let signing = format!("k{}", keys.signing().0);
    if json {
        let out = serde_json::json!({
            "session_keys": ids, "signing": signing,
            "made": made.as_ref().map(|(id, place)| serde_json::json!({ "id": link_keys::id_name(*id), "file": place })),
        });
        println!("{out}");
        return Ok(ExitCode::SUCCESS);
    }
    for id in &ids {
        let what = if *id == signing {
            "signs new dashboard forms and sessions (and verifies its own)"
        } else {
            "verifies the forms it signed"
        };
        let legacy = if id == "k0" { " (session.key or HAZEFLOW_SESSION_KEY)" } else { "" };
        println!("{id}\t{what}{legacy}");
    }
    match made {
        Some((id, place)) => println!(
            "made session key {} ({place}); a running daemon signs with it after a reload (hazeflow reload, or SIGHUP; with a shared store, on every node); forms signed by older keys keep working until their keys are removed",
            link_keys::id_name(id),
        ),
        None => println!("{} session keys in {}; {signing} signs", ids.len(), home.describe_session()),
    }
    Ok(ExitCode::SUCCESS)
}

/// `hazeflow migrate --from A --to B`: opens both stores (a redb file, or `postgres://…`), copies the
/// first into the second (which must hold no event) and compares them row by row. A PostgreSQL side
/// is opened as a client that never takes part in the election (as `backup` does): the command never
/// leads, so it neither takes a term nor starts a leader's work.
/// `json`: the summary as one object.
pub async fn migrate(from: &str, to: &str, json: bool) -> Result<ExitCode> {
    let open = |what: &str, which: &str, must_exist: bool| -> Result<Store> {
        if what.starts_with("postgres://") || what.starts_with("postgresql://") {
            Store::open_postgres_client(what).with_context(|| format!("the {which} store does not open"))
        } else {
            let path = std::path::Path::new(what);
            if must_exist && !path.exists() {
                anyhow::bail!("the {which} store {what} does not exist");
            }
            Store::open(path).with_context(|| format!("the {which} store {what} does not open"))
        }
    };
    let source = open(from, "source", true)?;
    let target = open(to, "target", false)?;
    let started = std::time::Instant::now();
    let copied = target.copy_from(&source).await;
    source.close();
    target.close();
    let summary = copied.with_context(|| format!("migrating {} into {} changed nothing", safe_location(from), safe_location(to)))?;
    let rows: u64 = summary.tables.iter().map(|(_, n)| n).sum();
    if json {
        let tables: serde_json::Map<String, serde_json::Value> = summary.tables.iter().map(|(t, n)| (t.to_string(), (*n).into())).collect();
        let v = serde_json::json!({
            "from": safe_location(from),
            "to": safe_location(to),
            "rows": rows,
            "table_count": summary.tables.len(),
            "tables": tables,
            "events": summary.events,
            "identical": true,
            "seconds": started.elapsed().as_secs_f64(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "migrated {} into {}: {rows} rows in {} tables ({} events), compared row by row: identical ({:.1} s)",
        safe_location(from),
        safe_location(to),
        summary.tables.len(),
        summary.events,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
