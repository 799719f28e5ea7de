//! Reading playbook files, resolving `extends`, compiling and validating.
//!
//! In: paths (files or folders) and the region table. Out: a [`PlaybookSet`] or every error found in
//! every file. Parents are compiled before children; a child's missing fields come from its parent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Duration;
use serde_saphyr::{Location, Spanned};
use sha2::{Digest, Sha256};

use super::LeadPollutant;
use super::raw::{RawLevel, RawPlaybook};
use super::{Consultation, Directive, Issuer, Level, Playbook, PlaybookError, PlaybookSet, ReportTo, Reports, Role, validate};
use crate::domain::forecast::parse_time;
use crate::domain::region::{RegionCode, Regions};

/// Defaults for a root playbook that leaves a setting out.
const DEFAULT_HORIZON_DAYS: u32 = 7;
const DEFAULT_LEAD_TIME_HOURS: u32 = 24;
const DEFAULT_LIFT_WINDOW_HOURS: u32 = 36;
const DEFAULT_MERGE_GAP_HOURS: u32 = 24;
/// AQI above which a day led by a pollutant that starts no reductions gets health advice (轻度污染 and worse).
const DEFAULT_ADVISORY_AQI_ABOVE: u16 = 100;

/// Loads playbooks from paths: a folder means every `*.yaml` directly in it; a file means that file,
/// with the other `*.yaml` of its folder available as parents.
pub fn load_paths(paths: &[PathBuf], regions: &Regions) -> Result<PlaybookSet, Vec<PlaybookError>> {
    let mut files = Vec::new();
    let mut extra_parents = Vec::new();
    for p in paths {
        if p.is_dir() {
            files.extend(yaml_in(p).map_err(|e| vec![e])?);
        } else {
            files.push(p.clone());
            if let Some(dir) = p.parent() {
                let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
                extra_parents.extend(yaml_in(dir).map_err(|e| vec![e])?.into_iter().filter(|f| f != p));
            }
        }
    }
    let mut sources = Vec::new();
    for f in &files {
        sources.push((f.clone(), read(f)?, true));
    }
    for f in extra_parents.iter().filter(|f| !files.contains(f)) {
        sources.push((f.clone(), read(f)?, false));
    }
    load_sources(sources, regions)
}

/// Loads playbooks from in-memory files: `(path, text)`.
pub fn load_files(files: Vec<(PathBuf, String)>, regions: &Regions) -> Result<PlaybookSet, Vec<PlaybookError>> {
    load_sources(files.into_iter().map(|(p, t)| (p, t, true)).collect(), regions)
}

fn yaml_in(dir: &Path) -> Result<Vec<PathBuf>, PlaybookError> {
    let rd = std::fs::read_dir(dir).map_err(|e| file_error(dir, format!("cannot read folder: {e}")))?;
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    out.sort();
    Ok(out)
}

fn read(path: &Path) -> Result<String, Vec<PlaybookError>> {
    std::fs::read_to_string(path).map_err(|e| vec![file_error(path, format!("cannot read: {e}"))])
}

fn file_error(file: &Path, message: String) -> PlaybookError {
    PlaybookError::at(file.display().to_string(), 0, 0, message)
}

/// `(path, text, wanted)`: unwanted files are only there to be parents; their errors still count
/// when a wanted file needs them.
fn load_sources(sources: Vec<(PathBuf, String, bool)>, regions: &Regions) -> Result<PlaybookSet, Vec<PlaybookError>> {
    let mut errors = Vec::new();
    let mut raws: BTreeMap<String, (PathBuf, RawPlaybook, String, bool)> = BTreeMap::new();
    for (path, text, wanted) in sources {
        match serde_saphyr::from_str::<RawPlaybook>(&text) {
            Ok(raw) => {
                if let Some((other, _, _, _)) = raws.get(&raw.id.value) {
                    if wanted {
                        errors.push(validate::at(
                            &path,
                            &raw.id.referenced,
                            format!("playbook id \"{}\" is also used by {}", raw.id.value, other.display()),
                        ));
                    }
                    continue;
                }
                raws.insert(raw.id.value.clone(), (path, raw, text, wanted));
            }
            Err(e) if wanted => errors.push(syntax_error(&path, &e)),
            Err(_) => {}
        }
    }
    // Compile parents first: repeat over the pending ones until no progress.
    let mut done: BTreeMap<String, Arc<Playbook>> = BTreeMap::new();
    let mut failed: Vec<String> = Vec::new();
    let mut pending: Vec<String> = raws.keys().cloned().collect();
    while !pending.is_empty() {
        let before = pending.len();
        let mut next = Vec::new();
        for id in pending {
            let (path, raw, text, _) = &raws[&id];
            let parent = match &raw.extends {
                None => None,
                Some(p) if done.contains_key(&p.value) => done.get(&p.value).cloned(),
                Some(p) if failed.contains(&p.value) => {
                    failed.push(id.clone());
                    errors.push(validate::at(
                        path,
                        &p.referenced,
                        format!("parent playbook \"{}\" has errors", p.value),
                    ));
                    continue;
                }
                Some(p) if raws.contains_key(&p.value) => {
                    next.push(id);
                    continue;
                }
                Some(p) => {
                    failed.push(id.clone());
                    errors.push(validate::at(
                        path,
                        &p.referenced,
                        format!("unknown parent playbook \"{}\"", p.value),
                    ));
                    continue;
                }
            };
            match compile(path, raw, text, parent.as_deref(), regions) {
                Ok(pb) => {
                    done.insert(id, Arc::new(pb));
                }
                Err(mut e) => {
                    failed.push(id);
                    errors.append(&mut e);
                }
            }
        }
        if next.len() == before {
            for id in &next {
                let (path, raw, _, _) = &raws[id];
                if let Some(p) = &raw.extends {
                    errors.push(validate::at(
                        path,
                        &p.referenced,
                        format!("playbook \"{id}\" extends itself through \"{}\"", p.value),
                    ));
                }
            }
            break;
        }
        pending = next;
    }
    // Only wanted files' errors matter, and those of the parents they extend: "parent has errors"
    // alone would send the operator looking for them.
    let mut wanted_files: Vec<&PathBuf> = Vec::new();
    for (path, raw, _, wanted) in raws.values() {
        if !*wanted {
            continue;
        }
        wanted_files.push(path);
        let mut up = raw.extends.as_ref();
        while let Some((ppath, praw, _, _)) = up.and_then(|p| raws.get(&p.value)) {
            if wanted_files.contains(&ppath) {
                break;
            }
            wanted_files.push(ppath);
            up = praw.extends.as_ref();
        }
    }
    let relevant: Vec<PlaybookError> = errors
        .into_iter()
        .filter(|e| {
            let file = Path::new(&e.file);
            wanted_files.iter().any(|w| w.as_path() == file) || raws.values().all(|r| r.0.as_path() != file)
        })
        .collect();
    if !relevant.is_empty() {
        return Err(relevant);
    }
    let by_id = done
        .into_iter()
        .filter(|(id, _)| raws[id].3 || is_parent_of_wanted(id, &raws))
        .collect();
    Ok(PlaybookSet { by_id })
}

fn is_parent_of_wanted(id: &str, raws: &BTreeMap<String, (PathBuf, RawPlaybook, String, bool)>) -> bool {
    raws.values()
        .any(|(_, r, _, wanted)| *wanted && r.extends.as_ref().is_some_and(|p| p.value == id))
}

/// The YAML library speaks to programmers ("invalid u32", "set DuplicateKeyPolicy in Options"); operators
/// read these messages, so the common ones are said in their words.
fn plain(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(',').next().unwrap_or(rest).trim();
        return format!("key \"{key}\" appears twice");
    }
    match message {
        "invalid u32" => "expected a whole number, 0 or more".into(),
        "invalid boolean" => "expected true or false".into(),
        "expected sequence start" => "expected a list".into(),
        "expected mapping start" => "expected a mapping (key: value)".into(),
        other => other.into(),
    }
}

fn syntax_error(path: &Path, e: &serde_saphyr::Error) -> PlaybookError {
    let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
    let text = e.without_snippet().to_string();
    let message = plain(text.rsplit_once(" at line ").map_or(text.as_str(), |(m, _)| m));
    PlaybookError::at(path.display().to_string(), line, column, message)
}

fn hours(
    file: &Path,
    raw: &Option<Spanned<u32>>,
    parent: Option<i64>,
    default: u32,
    laxer_check: Option<(&str, &str)>,
    errors: &mut Vec<PlaybookError>,
) -> Duration {
    match (raw, parent) {
        (Some(v), Some(p)) => {
            if let Some((what, pid)) = laxer_check {
                errors.extend(validate::not_laxer_hours(file, v, what, p, pid));
            }
            Duration::hours(v.value.into())
        }
        (Some(v), None) => Duration::hours(v.value.into()),
        (None, Some(p)) => Duration::hours(p),
        (None, None) => Duration::hours(default.into()),
    }
}

fn compile(
    file: &Path,
    raw: &RawPlaybook,
    text: &str,
    parent: Option<&Playbook>,
    regions: &Regions,
) -> Result<Playbook, Vec<PlaybookError>> {
    let mut errors = Vec::new();
    let scope = validate::scope(file, &raw.scope, parent, regions).map_err(|e| vec![e])?;
    let pid = parent.map(|p| p.id.as_str()).unwrap_or("");
    let horizon_days = raw
        .horizon_days
        .as_ref()
        .map(|h| h.value)
        .or(parent.map(|p| p.horizon_days))
        .unwrap_or(DEFAULT_HORIZON_DAYS);
    if let Some(h) = &raw.horizon_days
        && !(1..=10).contains(&h.value)
    {
        errors.push(validate::at(
            file,
            &h.referenced,
            format!("horizon_days must be from 1 to 10, not {}", h.value),
        ));
    }
    let lead_time = hours(
        file,
        &raw.lead_time_hours,
        parent.map(|p| p.lead_time.num_hours()),
        DEFAULT_LEAD_TIME_HOURS,
        None,
        &mut errors,
    );
    let lift_window = hours(
        file,
        &raw.lift_window_hours,
        parent.map(|p| p.lift_window.num_hours()),
        DEFAULT_LIFT_WINDOW_HOURS,
        Some(("lift_window_hours", pid)),
        &mut errors,
    );
    let merge_gap = hours(
        file,
        &raw.merge_gap_hours,
        parent.map(|p| p.merge_gap.num_hours()),
        DEFAULT_MERGE_GAP_HOURS,
        None,
        &mut errors,
    );
    // The approval form's and the relay's deadlines (domain.md §2.5): hours above 0, inherited.
    let mut deadline = |v: &Option<Spanned<u32>>, name: &str, parent: Option<Option<Duration>>| match v {
        Some(h) if h.value == 0 => {
            errors.push(validate::at(file, &h.referenced, format!("{name} must be above 0")));
            None
        }
        Some(h) => Some(Duration::hours(h.value.into())),
        None => parent.flatten(),
    };
    let approval_form = deadline(&raw.approval_form_hours, "approval_form_hours", parent.map(|p| p.approval_form));
    let relay = deadline(&raw.relay_hours, "relay_hours", parent.map(|p| p.relay));
    let hold_higher = match (&raw.hold_higher, parent) {
        (Some(h), Some(p)) if p.hold_higher && !h.value => {
            errors.push(validate::at(
                file,
                &h.referenced,
                format!(
                    "hold_higher: false is laxer than parent playbook \"{}\", which holds the higher level",
                    p.id
                ),
            ));
            false
        }
        (Some(h), _) => h.value,
        (None, Some(p)) => p.hold_higher,
        (None, None) => true,
    };
    let record_before_sign = match (&raw.record_before_sign, parent) {
        (Some(r), Some(p)) if p.record_before_sign && !r.value => {
            errors.push(validate::at(
                file,
                &r.referenced,
                format!(
                    "record_before_sign: false is laxer than parent playbook \"{}\", which signs only after the consultation's record",
                    p.id
                ),
            ));
            false
        }
        (Some(r), _) => r.value,
        (None, Some(p)) => p.record_before_sign,
        (None, None) => false,
    };

    let level_pollutants = match (&raw.level_pollutants, parent) {
        (Some(l), parent) => {
            let mut out = Vec::new();
            for name in &l.value {
                match LeadPollutant::parse(name) {
                    Some(p) if !out.contains(&p) => out.push(p),
                    Some(_) => {}
                    None => errors.push(validate::at(
                        file,
                        &l.referenced,
                        format!("level_pollutants: unknown pollutant \"{name}\" (pm25, pm10, o3, so2, no2, co)"),
                    )),
                }
            }
            if let Some(missing) = parent
                .and_then(|p| p.level_pollutants.as_ref())
                .and_then(|pl| pl.iter().find(|x| !out.contains(x)))
            {
                errors.push(validate::at(
                    file,
                    &l.referenced,
                    format!(
                        "level_pollutants leaves out {}, which the parent playbook counts: laxer than the parent",
                        missing.as_str()
                    ),
                ));
            }
            Some(out)
        }
        (None, Some(p)) => p.level_pollutants.clone(),
        (None, None) => None,
    };

    let advisory_aqi_above = raw
        .advisory_aqi_above
        .as_ref()
        .map(|a| a.value)
        .or(parent.map(|p| p.advisory_aqi_above))
        .unwrap_or(DEFAULT_ADVISORY_AQI_ABOVE);

    let issuer = issuer(file, raw, scope, regions, &mut errors);
    let reports = reports(file, raw, parent, &mut errors);

    // Roles: the parent's, with this file's added or renamed.
    let mut roles: Vec<Role> = parent.map(|p| p.roles.clone()).unwrap_or_default();
    for r in raw.roles.iter().flatten() {
        let role = Role {
            id: r.id.value.clone(),
            name: r.name.clone(),
            rank: r.rank.value,
        };
        match roles.iter_mut().find(|x| x.id == role.id) {
            Some(x) => *x = role,
            None => roles.push(role),
        }
    }

    let levels = compile_levels(file, raw, parent, &roles, horizon_days, &mut errors);
    // Re-publication per level (domain.md §6.3): hours above 0, levels of this playbook; inherited whole.
    let republish = match &raw.republish_hours {
        Some(m) => {
            let mut out = std::collections::BTreeMap::new();
            for (level, h) in &m.value {
                if !levels.iter().any(|l| l.id.as_str() == level) {
                    errors.push(validate::at(
                        file,
                        &m.referenced,
                        format!("republish_hours: unknown level \"{level}\""),
                    ));
                } else if *h == 0 {
                    errors.push(validate::at(
                        file,
                        &m.referenced,
                        format!("republish_hours.{level} must be above 0"),
                    ));
                } else {
                    out.insert(level.clone(), Duration::hours((*h).into()));
                }
            }
            out
        }
        None => parent.map(|p| p.republish.clone()).unwrap_or_default(),
    };

    let mut consultations = Vec::new();
    match &raw.consultations {
        Some(list) => {
            for c in list {
                match validate::cron(file, &c.cron) {
                    Ok(schedule) => consultations.push(Consultation {
                        name: c.name.clone(),
                        cron: c.cron.value.clone(),
                        schedule,
                    }),
                    Err(e) => errors.push(e),
                }
            }
        }
        None => consultations = parent.map(|p| p.consultations.clone()).unwrap_or_default(),
    }

    let mut directives = Vec::new();
    for d in &raw.directives {
        let v = &d.value;
        if let Err(e) = validate::level_defined(file, &v.min_level, &levels) {
            errors.push(e);
        }
        let regions_of = validate::directive_regions(file, &v.regions, scope, regions, &mut errors);
        let time = |s: &Spanned<String>, errors: &mut Vec<PlaybookError>| {
            let t = parse_time(&s.value);
            if t.is_none() {
                errors.push(validate::at(
                    file,
                    &s.referenced,
                    format!("\"{}\" is not a time (RFC 3339 or YYYY-MM-DD HH:MM)", s.value),
                ));
            }
            t
        };
        let from = time(&v.from, &mut errors);
        let until = v.until.as_ref().and_then(|u| time(u, &mut errors));
        if let (Some(f), Some(u)) = (from, until)
            && u <= f
        {
            errors.push(validate::at(file, &d.referenced, "a directive's until must be after its from"));
        }
        if let Some(from) = from {
            directives.push(Directive {
                id: v.id.value.as_str().into(),
                name: v.name.clone(),
                min_level: v.min_level.value.as_str().into(),
                regions: regions_of,
                from,
                until,
                issued_by: scope,
            });
        }
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    let mut h = Sha256::new();
    h.update(text.as_bytes());
    if let Some(p) = parent {
        h.update(p.digest.as_bytes());
    }
    Ok(Playbook {
        id: raw.id.value.clone(),
        version: raw.version.value.clone(),
        digest: hex::encode(&h.finalize()[..6]),
        name: raw.name.clone(),
        file: file.to_path_buf(),
        scope,
        parent: parent.map(|p| p.id.clone()),
        horizon_days,
        lead_time,
        lift_window,
        merge_gap,
        hold_higher,
        level_pollutants,
        advisory_aqi_above,
        approval_form,
        relay,
        record_before_sign,
        issuer,
        reports,
        republish,
        roles,
        levels,
        consultations,
        directives,
    })
}

/// Reports up (信息报送): each field as written, else the parent's.
fn reports(file: &Path, raw: &RawPlaybook, parent: Option<&Playbook>, errors: &mut Vec<PlaybookError>) -> Reports {
    let inherited = parent.map(|p| p.reports.clone()).unwrap_or_default();
    let Some(r) = &raw.reports else { return inherited };
    let to = match &r.to {
        Some(t) => {
            let email = t.email.value.trim();
            if t.name.value.trim().is_empty() {
                errors.push(validate::at(file, &t.name.referenced, "reports.to.name must not be empty"));
            }
            let at = email.find('@').unwrap_or(0);
            if at == 0 || at + 1 >= email.len() || email.contains(char::is_whitespace) {
                errors.push(validate::at(
                    file,
                    &t.email.referenced,
                    format!("reports.to.email \"{email}\" is not a mail address"),
                ));
            }
            Some(ReportTo {
                name: t.name.value.trim().to_string(),
                email: email.to_string(),
            })
        }
        None => inherited.to,
    };
    let daily_at = match &r.daily_at {
        Some(s) => match chrono::NaiveTime::parse_from_str(s.value.trim(), "%H:%M") {
            Ok(t) => Some(t),
            Err(_) => {
                errors.push(validate::at(
                    file,
                    &s.referenced,
                    format!("reports.daily_at \"{}\" is not a time of day (HH:MM)", s.value),
                ));
                None
            }
        },
        None => inherited.daily_at,
    };
    let event_within = match &r.event_within_hours {
        Some(h) if h.value == 0 => {
            errors.push(validate::at(file, &h.referenced, "reports.event_within_hours must be above 0"));
            None
        }
        Some(h) => Some(chrono::Duration::hours(h.value.into())),
        None => inherited.event_within,
    };
    let summary = r.summary.as_ref().map_or(inherited.summary, |s| s.value);
    Reports {
        to,
        daily_at,
        event_within,
        summary,
    }
}

/// The issuing body: as written, or its scope's command office ([`Issuer::of_scope`]). A child never
/// takes its parent's: a city speaks in its own name.
fn issuer(file: &Path, raw: &RawPlaybook, scope: RegionCode, regions: &Regions, errors: &mut Vec<PlaybookError>) -> Issuer {
    let default = Issuer::of_scope(scope, regions);
    let Some(r) = &raw.issuer else {
        return default;
    };
    let name = r.name.value.trim().to_string();
    if name.is_empty() {
        errors.push(validate::at(file, &r.name.referenced, "issuer.name must not be empty"));
    }
    let sender = match &r.sender {
        Some(s) => {
            if let Err(e) = validate::cap_sender(file, s) {
                errors.push(e);
            }
            s.value.clone()
        }
        None => default.sender,
    };
    Issuer {
        name_en: r.name_en.clone().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| name.clone()),
        name,
        sender,
    }
}

fn compile_levels(
    file: &Path,
    raw: &RawPlaybook,
    parent: Option<&Playbook>,
    roles: &[Role],
    horizon_days: u32,
    errors: &mut Vec<PlaybookError>,
) -> Vec<Level> {
    let mut out: Vec<(Level, Location)> = Vec::new();
    match parent {
        None => {
            let Some(list) = raw.levels.as_ref().filter(|l| !l.is_empty()) else {
                errors.push(validate::at(file, &raw.id.referenced, "a playbook that extends none needs levels"));
                return Vec::new();
            };
            for l in list {
                if let Some(level) = root_level(file, l, roles, horizon_days, errors) {
                    out.push((level, l.referenced));
                }
            }
        }
        Some(p) => {
            let mut levels: Vec<(Level, Location)> = p.levels.iter().map(|l| (l.clone(), Location::UNKNOWN)).collect();
            for l in raw.levels.iter().flatten() {
                let Ok(base) = validate::level_defined(file, &l.value.id, &p.levels) else {
                    errors.extend(validate::level_defined(file, &l.value.id, &p.levels).err());
                    continue;
                };
                let mut level = base.clone();
                if let Some(r) = &l.value.rank {
                    errors.push(validate::at(file, &r.referenced, "a child playbook cannot change a level's rank"));
                }
                merge_level(file, &l.value, &mut level, roles, horizon_days, errors);
                validate::not_laxer_level(file, &l.referenced, &level, base, (roles, horizon_days), p, errors);
                if let Some(slot) = levels.iter_mut().find(|(x, _)| x.id == level.id) {
                    *slot = (level, l.referenced);
                }
            }
            out = levels;
        }
    }
    out.sort_by_key(|(l, _)| l.rank);
    if out.iter().all(|(_, loc)| *loc != Location::UNKNOWN) || parent.is_none() {
        validate::ranks_increase(file, &out, horizon_days, errors);
    } else {
        // In a child, report against the overriding entry where there is one.
        let located: Vec<(Level, Location)> = out
            .iter()
            .map(|(l, loc)| (l.clone(), if *loc == Location::UNKNOWN { raw.id.referenced } else { *loc }))
            .collect();
        validate::ranks_increase(file, &located, horizon_days, errors);
    }
    out.into_iter().map(|(l, _)| l).collect()
}

fn root_level(file: &Path, l: &Spanned<RawLevel>, roles: &[Role], horizon_days: u32, errors: &mut Vec<PlaybookError>) -> Option<Level> {
    let v = &l.value;
    let mut missing = Vec::new();
    if v.rank.is_none() {
        missing.push("rank");
    }
    if v.name.is_none() {
        missing.push("name");
    }
    if v.colour.is_none() {
        missing.push("colour");
    }
    if v.response.is_none() {
        missing.push("response");
    }
    if v.sign_off.is_none() {
        missing.push("sign_off");
    }
    if v.entry.is_none() {
        missing.push("entry");
    }
    if !missing.is_empty() {
        errors.push(validate::at(
            file,
            &l.referenced,
            format!("level \"{}\" needs {}", v.id.value, missing.join(", ")),
        ));
        return None;
    }
    let mut level = Level {
        id: v.id.value.as_str().into(),
        rank: v.rank.as_ref().map_or(0, |r| r.value),
        name: String::new(),
        colour: String::new(),
        response: String::new(),
        sign_off: super::SignOff::Auto,
        entry: super::Rule::Any(Vec::new()),
    };
    if level.id == "none" {
        errors.push(validate::at(file, &v.id.referenced, "\"none\" is reserved for \"no warning\""));
    }
    if level.rank == 0 {
        errors.push(validate::at(file, &l.referenced, "rank must be 1 or more"));
    }
    let before = errors.len();
    merge_level(file, v, &mut level, roles, horizon_days, errors);
    (errors.len() == before).then_some(level)
}

fn merge_level(file: &Path, v: &RawLevel, level: &mut Level, roles: &[Role], horizon_days: u32, errors: &mut Vec<PlaybookError>) {
    if let Some(n) = &v.name {
        level.name = n.clone();
    }
    if let Some(r) = &v.response {
        level.response = r.clone();
    }
    if let Some(c) = &v.colour {
        match validate::colour(file, c) {
            Ok(c) => level.colour = c,
            Err(e) => errors.push(e),
        }
    }
    if let Some(s) = &v.sign_off {
        match validate::sign_off(file, s, roles) {
            Ok(s) => level.sign_off = s,
            Err(e) => errors.push(e),
        }
    }
    if let Some(e) = &v.entry
        && let Some(rule) = validate::rule(file, e, horizon_days, errors)
    {
        level.entry = rule;
    }
}
