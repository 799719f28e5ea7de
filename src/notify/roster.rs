//! Duty rosters (值班表) and who hears of what: the file `config/roster.yaml`.
//!
//! In: the YAML file (see the shipped one for the format). Out: a validated [`Roster`] that answers
//! "who is on duty for this region now" ([`Roster::on_duty`], falling back to the nearest tier above
//! that has someone on duty), "who holds this role here" ([`Roster::with_role`]) and "which event
//! reaches whom, with which template" ([`Roster::route`]). Errors are `file:line:column: message`,
//! all of them at once. No clock, no disk after loading.
//!
//! Shifts are local time (Asia/Shanghai): `days` (mon … sun, or `daily`, `weekdays`, `weekend`),
//! `from` and `to` as `HH:MM`. A shift whose `to` is not after its `from` runs overnight into the next
//! day (`from: "18:00", to: "08:00"`; `from` = `to` is 24 hours); `to: "24:00"` ends at midnight.
//! A person without shifts is never "on duty", but is reached by role (a signer such as 分管副市长).
//!
//! Dates that do not follow the week ([`Calendar`], the sections `calendar:` and `overrides:`):
//! a public holiday (法定节假日) follows Sunday's shifts; a 调休 working day (a weekend date worked as a
//! weekday) follows the shifts of the weekday it names; a swap gives one person's shifts that start on a
//! date to another person of the same region; an override names who is on duty in a region from a date's
//! `from` to its `to`, in place of everyone's shifts there (overlapping overrides of one region are an error).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Asia::Shanghai;
use serde::{Deserialize, Serialize};
use serde_saphyr::{Location, Spanned};
use sha2::{Digest, Sha256};

use crate::domain::diagnostic::Diagnostic;
use crate::domain::region::{RegionCode, Regions};

/// Events a route may name: the lifecycle's event kinds plus the notifier's own.
pub const EVENTS: &[&str] = &[
    "proposed",
    "issued",
    "withdrawn",
    "started",
    "change_proposed",
    "change_withdrawn",
    "change_scheduled",
    "lift_scheduled",
    "cancel_scheduled",
    "unscheduled",
    "replanned",
    "level_changed",
    "extended",
    "rescheduled",
    "below",
    "below_cleared",
    "lifted",
    "cancelled",
    "directive_applied",
    "directive_released",
    "delivery_failed",
    "store_fault",
];

/// A person on the roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Person {
    /// Stable id, unique in the file (`ty-wang-fang`): part of message ids.
    pub id: String,
    /// Name as shown in greetings.
    pub name: String,
    /// Role id (`duty_officer`, `deputy_head`, `head`, …; the playbooks' signer roles).
    pub role: String,
    /// Email address.
    pub email: String,
    /// Phone, for SMS gateways.
    pub phone: Option<String>,
    /// The region whose roster they are on.
    pub region: RegionCode,
    /// When they are on duty.
    pub shifts: Vec<Shift>,
}

/// A weekly shift, local time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shift {
    /// Monday first.
    pub days: [bool; 7],
    /// Minutes after midnight.
    pub from: u16,
    /// Minutes after midnight (1440 for 24:00); not after `from`: the next day.
    pub to: u16,
}

impl Shift {
    /// Whether the shift covers the instant, by the week alone (no holidays, 调休 days or swaps).
    pub fn covers(&self, at: DateTime<Utc>) -> bool {
        self.covers_when(at, |d| self.days[d.weekday().num_days_from_monday() as usize])
    }

    /// Whether the shift covers the instant when it is worked on the local dates `worked` says (the date a
    /// shift starts on decides, also for the overnight part).
    fn covers_when(&self, at: DateTime<Utc>, worked: impl Fn(NaiveDate) -> bool) -> bool {
        let local = at.with_timezone(&Shanghai);
        let minute = (local.hour() * 60 + local.minute()) as u16;
        let today = local.date_naive();
        let yesterday = today.pred_opt().unwrap_or(today);
        if self.to > self.from {
            minute >= self.from && minute < self.to && worked(today)
        } else {
            (minute >= self.from && worked(today)) || (minute < self.to && worked(yesterday))
        }
    }
}

/// Dates that do not follow the week, and who is on duty then (local dates, Asia/Shanghai).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Calendar {
    /// Public holidays (法定节假日) and their names: Sunday's shifts apply.
    pub holidays: BTreeMap<NaiveDate, String>,
    /// 调休 working days: the weekday (0 = Monday) whose shifts apply.
    pub workdays: BTreeMap<NaiveDate, usize>,
    /// (date, person giving their shifts that start that day) → person taking them.
    pub swaps: BTreeMap<(NaiveDate, String), String>,
    /// Per region, who is on duty in place of the shifts, sorted by start.
    pub overrides: BTreeMap<RegionCode, Vec<Override>>,
}

/// Who is on duty in a region from `start` to `end`, in place of everyone's shifts there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Override {
    /// The local date it starts on.
    pub date: NaiveDate,
    /// Start, inclusive.
    pub start: DateTime<Utc>,
    /// End, exclusive.
    pub end: DateTime<Utc>,
    /// Person ids.
    pub people: Vec<String>,
    /// Why (除夕带班), for people reading the file.
    pub note: Option<String>,
    /// Line of the entry in the file.
    #[serde(skip)]
    pub line: usize,
}

impl Calendar {
    /// The weekday (0 = Monday) whose shifts a local date follows.
    pub fn follows(&self, date: NaiveDate) -> usize {
        if let Some(w) = self.workdays.get(&date) {
            *w
        } else if self.holidays.contains_key(&date) {
            6
        } else {
            date.weekday().num_days_from_monday() as usize
        }
    }

    /// The override of exactly `region` at `at`, if any.
    pub fn override_at(&self, region: RegionCode, at: DateTime<Utc>) -> Option<&Override> {
        self.overrides.get(&region)?.iter().find(|o| o.start <= at && at < o.end)
    }
}

/// Who a route reaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// The region's duty staff now (值班人员), or the nearest tier above that has some.
    Duty,
    /// The people holding the role the event waits for (the signer of a proposal).
    Signer,
    /// The duty staff of the tier above the region (escalation).
    ParentDuty,
    /// The people holding this role in the region, or the nearest tier above that has some.
    Role(String),
}

/// Which event reaches whom, with which template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// Audiences, merged (a person in two is told once).
    pub to: Vec<Audience>,
    /// Template name (files `{template}.subject.j2`, `.txt.j2`, `.html.j2` in `playbooks/templates/notify/`).
    pub template: String,
    /// Line and column of the template name in the roster file, for errors about it.
    #[serde(skip)]
    pub at: (usize, usize),
}

/// A department's contact (联系人) in a region: told of the department's duties under a warning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DepartmentContact {
    /// Name as shown in greetings.
    pub name: String,
    /// Email address.
    pub email: String,
    /// Phone.
    pub phone: Option<String>,
}

/// The loaded roster.
#[derive(Debug, Clone)]
pub struct Roster {
    people: BTreeMap<RegionCode, Vec<Person>>,
    /// Department contacts per (region, department id).
    departments: BTreeMap<(RegionCode, String), Vec<DepartmentContact>>,
    /// Where each department id was named (line, column), for checks against the measure defaults.
    department_ids: Vec<(String, u64, u64)>,
    /// The file's name, for those checks' messages.
    file: String,
    routes: BTreeMap<String, Route>,
    calendar: Calendar,
    regions: &'static Regions,
    digest: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoster {
    #[serde(default)]
    notify: HashMap<Spanned<String>, Spanned<RawRoute>>,
    #[serde(default)]
    regions: HashMap<Spanned<String>, Vec<Spanned<RawPerson>>>,
    #[serde(default)]
    departments: HashMap<Spanned<String>, RawDepartments>,
    #[serde(default)]
    calendar: RawCalendar,
    #[serde(default)]
    overrides: HashMap<Spanned<String>, Vec<Spanned<RawOverride>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCalendar {
    #[serde(default)]
    holidays: Vec<RawHoliday>,
    #[serde(default)]
    workdays: Vec<RawWorkday>,
    #[serde(default)]
    swaps: Vec<RawSwap>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHoliday {
    name: Spanned<String>,
    first: Spanned<String>,
    #[serde(default)]
    last: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkday {
    date: Spanned<String>,
    #[serde(rename = "as")]
    like: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSwap {
    date: Spanned<String>,
    person: Spanned<String>,
    by: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOverride {
    date: Spanned<String>,
    #[serde(default)]
    from: Option<Spanned<String>>,
    #[serde(default)]
    to: Option<Spanned<String>>,
    people: Vec<Spanned<String>>,
    #[serde(default)]
    note: Option<String>,
}

/// A region's department contacts: department id → contacts.
type RawDepartments = HashMap<Spanned<String>, Vec<Spanned<RawContact>>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContact {
    name: Spanned<String>,
    email: Spanned<String>,
    #[serde(default)]
    phone: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    to: Vec<Spanned<String>>,
    template: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPerson {
    id: Spanned<String>,
    name: Spanned<String>,
    role: Spanned<String>,
    email: Spanned<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    shifts: Vec<RawShift>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShift {
    days: Vec<Spanned<String>>,
    from: Spanned<String>,
    to: Spanned<String>,
}

struct Errors<'a> {
    file: &'a str,
    list: Vec<Diagnostic>,
}

impl Errors<'_> {
    fn at(&mut self, loc: &Location, message: impl AsRef<str>) {
        self.list
            .push(Diagnostic::at(self.file, loc.line(), loc.column(), message.as_ref()));
    }
}

fn is_slug(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

/// `HH:MM` → minutes after midnight; `24:00` allowed.
fn minutes(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(1440),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

fn days(list: &[Spanned<String>], e: &mut Errors<'_>) -> [bool; 7] {
    let mut out = [false; 7];
    for d in list {
        let idx: &[usize] = match d.value.as_str() {
            "mon" => &[0],
            "tue" => &[1],
            "wed" => &[2],
            "thu" => &[3],
            "fri" => &[4],
            "sat" => &[5],
            "sun" => &[6],
            "weekdays" => &[0, 1, 2, 3, 4],
            "weekend" => &[5, 6],
            "daily" => &[0, 1, 2, 3, 4, 5, 6],
            other => {
                e.at(
                    &d.referenced,
                    format!("\"{other}\" is not a day (mon … sun, weekdays, weekend, daily)"),
                );
                &[]
            }
        };
        for i in idx {
            out[*i] = true;
        }
    }
    out
}

fn audience(s: &Spanned<String>, e: &mut Errors<'_>) -> Option<Audience> {
    match s.value.as_str() {
        "duty" => Some(Audience::Duty),
        "signer" => Some(Audience::Signer),
        "parent_duty" => Some(Audience::ParentDuty),
        other => match other.strip_prefix("role:") {
            Some(r) if is_slug(r) => Some(Audience::Role(r.to_string())),
            _ => {
                e.at(
                    &s.referenced,
                    format!("\"{other}\" is not an audience (duty, signer, parent_duty, role:ROLE)"),
                );
                None
            }
        },
    }
}

/// A local date `YYYY-MM-DD` as written in the file, or an error at its place.
fn date_of(s: &Spanned<String>, e: &mut Errors<'_>) -> Option<NaiveDate> {
    let d = NaiveDate::parse_from_str(&s.value, "%Y-%m-%d").ok().filter(|_| s.value.len() == 10);
    if d.is_none() {
        e.at(&s.referenced, format!("\"{}\" is not a date (YYYY-MM-DD)", s.value));
    }
    d
}

/// The instant of a local date and minute of the day (Asia/Shanghai; 1440 is the next midnight).
fn local_instant(date: NaiveDate, minute: u16) -> DateTime<Utc> {
    let midnight = date.and_hms_opt(0, 0, 0).expect("midnight");
    let start = Shanghai
        .from_local_datetime(&midnight)
        .earliest()
        .expect("Shanghai has no gaps")
        .with_timezone(&Utc);
    start + Duration::minutes(i64::from(minute))
}

/// A region code as written in the file: known and current, or an error at its place.
fn region_of(code: &Spanned<String>, regions: &Regions, e: &mut Errors<'_>) -> Option<RegionCode> {
    match RegionCode::parse(&code.value) {
        Ok(c) => match regions.resolve(c) {
            Some(r) if r == c => Some(r),
            Some(r) => {
                e.at(&code.referenced, format!("region {c} was retired; use {r}"));
                None
            }
            None => {
                e.at(&code.referenced, format!("unknown region {c}"));
                None
            }
        },
        Err(err) => {
            e.at(&code.referenced, err.to_string());
            None
        }
    }
}

/// The `calendar:` and `overrides:` sections, checked against the people.
fn calendar(
    raw: RawCalendar,
    overrides: HashMap<Spanned<String>, Vec<Spanned<RawOverride>>>,
    people: &BTreeMap<RegionCode, Vec<Person>>,
    regions: &Regions,
    e: &mut Errors<'_>,
) -> Calendar {
    let mut cal = Calendar::default();
    let person = |id: &str| people.values().flatten().find(|p| p.id == id);
    for h in raw.holidays {
        if h.name.value.trim().is_empty() {
            e.at(&h.name.referenced, "a holiday needs a name (春节, 国庆节, …)");
        }
        let Some(first) = date_of(&h.first, e) else { continue };
        let last = match &h.last {
            Some(l) => match date_of(l, e) {
                Some(d) if d < first => {
                    e.at(&l.referenced, format!("the holiday ends ({d}) before it begins ({first})"));
                    continue;
                }
                Some(d) if (d - first).num_days() > 31 => {
                    e.at(&l.referenced, "a holiday of more than 31 days: is the year right?");
                    continue;
                }
                Some(d) => d,
                None => continue,
            },
            None => first,
        };
        for d in first.iter_days().take_while(|d| *d <= last) {
            if cal.holidays.insert(d, h.name.value.trim().to_string()).is_some() {
                e.at(&h.first.referenced, format!("{d} is already a holiday"));
            }
        }
    }
    for w in raw.workdays {
        let like = match w.like.value.as_str() {
            "mon" => Some(0),
            "tue" => Some(1),
            "wed" => Some(2),
            "thu" => Some(3),
            "fri" => Some(4),
            other => {
                e.at(
                    &w.like.referenced,
                    format!("\"{other}\" is not a weekday (mon … fri): a 调休 working day follows a weekday's shifts"),
                );
                None
            }
        };
        let Some(date) = date_of(&w.date, e) else { continue };
        if cal.holidays.contains_key(&date) {
            e.at(&w.date.referenced, format!("{date} is both a holiday and a working day"));
        }
        if let Some(like) = like
            && cal.workdays.insert(date, like).is_some()
        {
            e.at(&w.date.referenced, format!("{date} is named twice as a working day"));
        }
    }
    for s in raw.swaps {
        let date = date_of(&s.date, e);
        let giver = person(&s.person.value);
        let taker = person(&s.by.value);
        for (id, p) in [(&s.person, giver), (&s.by, taker)] {
            if p.is_none() {
                e.at(&id.referenced, format!("unknown person \"{}\"", id.value));
            }
        }
        let (Some(date), Some(giver), Some(taker)) = (date, giver, taker) else {
            continue;
        };
        if giver.id == taker.id {
            e.at(&s.by.referenced, "a person cannot take their own shift");
        } else if giver.region != taker.region {
            e.at(
                &s.by.referenced,
                format!(
                    "\"{}\" is on the roster of {}, not of {} like \"{}\"",
                    taker.id, taker.region, giver.region, giver.id
                ),
            );
        } else if !giver.shifts.iter().any(|sh| sh.days[cal.follows(date)]) {
            e.at(&s.person.referenced, format!("\"{}\" has no shift on {date} to give", giver.id));
        } else if cal.swaps.insert((date, giver.id.clone()), taker.id.clone()).is_some() {
            e.at(
                &s.person.referenced,
                format!("the shift of \"{}\" on {date} is swapped twice", giver.id),
            );
        }
    }
    let mut entries: Vec<_> = overrides.into_iter().collect();
    entries.sort_by_key(|(k, _)| (k.referenced.line(), k.referenced.column()));
    for (code, list) in entries {
        let Some(region) = region_of(&code, regions, e) else { continue };
        let mut windows: Vec<Override> = Vec::new();
        for o in list {
            let line = o.referenced.line() as usize;
            let loc = o.referenced;
            let o = o.value;
            let date = date_of(&o.date, e);
            let from = match &o.from {
                Some(f) => minutes(&f.value).filter(|m| *m < 1440).or_else(|| {
                    e.at(&f.referenced, format!("\"{}\" is not a time of day (HH:MM)", f.value));
                    None
                }),
                None => Some(0),
            };
            let to = match &o.to {
                Some(t) => minutes(&t.value).or_else(|| {
                    e.at(&t.referenced, format!("\"{}\" is not a time of day (HH:MM, or 24:00)", t.value));
                    None
                }),
                None => Some(1440),
            };
            if o.people.is_empty() {
                e.at(&loc, "an override needs people (who is on duty then)");
            }
            for id in &o.people {
                match person(&id.value) {
                    None => e.at(&id.referenced, format!("unknown person \"{}\"", id.value)),
                    Some(p) if p.region != region && !regions.ancestors(region).contains(&p.region) => e.at(
                        &id.referenced,
                        format!(
                            "\"{}\" is on the roster of {}, neither {region} nor a tier above it",
                            p.id, p.region
                        ),
                    ),
                    Some(_) => {}
                }
            }
            let (Some(date), Some(from), Some(to)) = (date, from, to) else {
                continue;
            };
            let start = local_instant(date, from);
            let end = if to > from {
                local_instant(date, to)
            } else {
                local_instant(date, to) + Duration::days(1)
            };
            if let Some(other) = windows.iter().find(|w| w.start < end && start < w.end) {
                e.at(
                    &loc,
                    format!(
                        "this override of {region} overlaps the one at line {} ({}): one region has one override at a time",
                        other.line, other.date
                    ),
                );
                continue;
            }
            windows.push(Override {
                date,
                start,
                end,
                people: o.people.iter().map(|p| p.value.clone()).collect(),
                note: o.note.filter(|n| !n.trim().is_empty()),
                line,
            });
        }
        windows.sort_by_key(|w| w.start);
        cal.overrides.insert(region, windows);
    }
    cal
}

impl Roster {
    /// Loads and checks a roster file against Shanxi's regions.
    pub fn load(path: &Path) -> Result<Roster, Vec<Diagnostic>> {
        Self::load_for(path, Regions::shanxi())
    }

    /// Loads and checks a roster file against a region table.
    pub fn load_for(path: &Path, regions: &'static Regions) -> Result<Roster, Vec<Diagnostic>> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| vec![Diagnostic::at(&name, 0, 0, format!("cannot read: {e}"))])?;
        Self::parse(&name, &text, regions)
    }

    /// Parses roster text; `name` is used in error messages.
    pub fn parse(name: &str, text: &str, regions: &'static Regions) -> Result<Roster, Vec<Diagnostic>> {
        let raw: RawRoster = serde_saphyr::from_str(text).map_err(|err| {
            let (l, c) = err.location().map_or((0, 0), |l| (l.line(), l.column()));
            let msg = err.without_snippet().to_string();
            let msg = msg.rsplit_once(" at line ").map_or(msg.as_str(), |(m, _)| m).to_string();
            vec![Diagnostic::at(name, l, c, msg)]
        })?;
        let mut e = Errors {
            file: name,
            list: Vec::new(),
        };

        let mut routes = BTreeMap::new();
        let mut notify: Vec<_> = raw.notify.into_iter().collect();
        notify.sort_by_key(|(k, _)| (k.referenced.line(), k.referenced.column()));
        for (event, route) in notify {
            if !EVENTS.contains(&event.value.as_str()) {
                e.at(
                    &event.referenced,
                    format!("\"{}\" is not an event ({})", event.value, EVENTS.join(", ")),
                );
                continue;
            }
            let r = route.value;
            let to: Vec<Audience> = r.to.iter().filter_map(|a| audience(a, &mut e)).collect();
            if !is_slug(&r.template.value) {
                e.at(
                    &r.template.referenced,
                    format!(
                        "\"{}\" is not a template name (lower-case letters, digits, _ - .)",
                        r.template.value
                    ),
                );
            }
            routes.insert(
                event.value,
                Route {
                    to,
                    at: (r.template.referenced.line() as usize, r.template.referenced.column() as usize),
                    template: r.template.value,
                },
            );
        }

        let mut people: BTreeMap<RegionCode, Vec<Person>> = BTreeMap::new();
        let mut ids: BTreeSet<String> = BTreeSet::new();
        let mut entries: Vec<_> = raw.regions.into_iter().collect();
        entries.sort_by_key(|(k, _)| (k.referenced.line(), k.referenced.column()));
        for (code, list) in entries {
            let Some(region) = region_of(&code, regions, &mut e) else {
                continue;
            };
            for p in list {
                let loc = p.referenced;
                let p = p.value;
                if !is_slug(&p.id.value) {
                    e.at(
                        &p.id.referenced,
                        format!("\"{}\" is not an id (lower-case letters, digits, _ - .)", p.id.value),
                    );
                } else if !ids.insert(p.id.value.clone()) {
                    e.at(&p.id.referenced, format!("the id \"{}\" is used twice", p.id.value));
                }
                if p.name.value.trim().is_empty() {
                    e.at(&p.name.referenced, "a name must not be empty");
                }
                if !is_slug(&p.role.value) {
                    e.at(
                        &p.role.referenced,
                        format!("\"{}\" is not a role id (duty_officer, deputy_head, head, …)", p.role.value),
                    );
                }
                if p.email.value.parse::<lettre::Address>().is_err() {
                    e.at(&p.email.referenced, format!("\"{}\" is not an email address", p.email.value));
                }
                let mut shifts = Vec::new();
                for s in &p.shifts {
                    let d = days(&s.days, &mut e);
                    if s.days.is_empty() {
                        e.at(&loc, "a shift needs days");
                    }
                    let from = minutes(&s.from.value).filter(|m| *m < 1440);
                    if from.is_none() {
                        e.at(&s.from.referenced, format!("\"{}\" is not a time of day (HH:MM)", s.from.value));
                    }
                    let to = minutes(&s.to.value);
                    if to.is_none() {
                        e.at(
                            &s.to.referenced,
                            format!("\"{}\" is not a time of day (HH:MM, or 24:00)", s.to.value),
                        );
                    }
                    if let (Some(from), Some(to)) = (from, to) {
                        shifts.push(Shift { days: d, from, to });
                    }
                }
                people.entry(region).or_default().push(Person {
                    id: p.id.value,
                    name: p.name.value.trim().to_string(),
                    role: p.role.value,
                    email: p.email.value,
                    phone: p.phone.filter(|x| !x.trim().is_empty()),
                    region,
                    shifts,
                });
            }
        }
        let mut departments: BTreeMap<(RegionCode, String), Vec<DepartmentContact>> = BTreeMap::new();
        let mut department_ids = Vec::new();
        let mut entries: Vec<_> = raw.departments.into_iter().collect();
        entries.sort_by_key(|(k, _)| (k.referenced.line(), k.referenced.column()));
        for (code, by_id) in entries {
            let Some(region) = region_of(&code, regions, &mut e) else {
                continue;
            };
            let mut by_id: Vec<_> = by_id.into_iter().collect();
            by_id.sort_by_key(|(k, _)| (k.referenced.line(), k.referenced.column()));
            for (id, list) in by_id {
                if !is_slug(&id.value) {
                    e.at(
                        &id.referenced,
                        format!("\"{}\" is not a department id (ecology, housing, …)", id.value),
                    );
                    continue;
                }
                department_ids.push((id.value.clone(), id.referenced.line(), id.referenced.column()));
                if list.is_empty() {
                    e.at(
                        &id.referenced,
                        "a department needs at least one contact (leave it out if it has none)",
                    );
                }
                let mut contacts = Vec::new();
                for c in list {
                    let c = c.value;
                    if c.name.value.trim().is_empty() {
                        e.at(&c.name.referenced, "a name must not be empty");
                    }
                    if c.email.value.parse::<lettre::Address>().is_err() {
                        e.at(&c.email.referenced, format!("\"{}\" is not an email address", c.email.value));
                    }
                    contacts.push(DepartmentContact {
                        name: c.name.value.trim().to_string(),
                        email: c.email.value,
                        phone: c.phone.filter(|x| !x.trim().is_empty()),
                    });
                }
                if departments.insert((region, id.value.clone()), contacts).is_some() {
                    e.at(
                        &id.referenced,
                        format!("the department \"{}\" is named twice for {region}", id.value),
                    );
                }
            }
        }
        let calendar = calendar(raw.calendar, raw.overrides, &people, regions, &mut e);
        if e.list.is_empty() {
            let digest = hex::encode(Sha256::digest(text.as_bytes()));
            Ok(Roster {
                people,
                departments,
                department_ids,
                file: name.to_string(),
                routes,
                calendar,
                regions,
                digest,
            })
        } else {
            Err(e.list)
        }
    }

    /// The region itself, then its parent, up to the province.
    fn tiers(&self, region: RegionCode) -> Vec<RegionCode> {
        let mut out = vec![self.regions.resolve(region).unwrap_or(region)];
        out.extend(self.regions.ancestors(region));
        out
    }

    /// Everyone on the roster of exactly this region.
    pub fn people_of(&self, region: RegionCode) -> &[Person] {
        self.people.get(&region).map_or(&[], Vec::as_slice)
    }

    /// The contacts of department `id` of exactly `region` (none: the department cannot be told).
    pub fn department_contacts(&self, region: RegionCode, id: &str) -> &[DepartmentContact] {
        self.departments.get(&(region, id.to_string())).map_or(&[], Vec::as_slice)
    }

    /// How many department contacts there are.
    pub fn department_contact_count(&self) -> usize {
        self.departments.values().map(Vec::len).sum()
    }

    /// Whether any department has a contact.
    pub fn has_department_contacts(&self) -> bool {
        !self.departments.is_empty()
    }

    /// Errors (`file:line:column`) for department ids the measure defaults do not know.
    pub fn unknown_departments(&self, known: &[&str]) -> Vec<Diagnostic> {
        self.department_ids
            .iter()
            .filter(|(id, ..)| !known.contains(&id.as_str()))
            .map(|(id, l, c)| {
                Diagnostic::at(
                    &self.file,
                    *l,
                    *c,
                    format!(
                        "unknown department \"{id}\" (the measure defaults' departments: {})",
                        known.join(", ")
                    ),
                )
            })
            .collect()
    }

    /// Warnings: for each region on the roster (its duty staff can be told of a warning there), the
    /// departments with duties that have no contact: their duties reach nobody (shown as 无联系人).
    pub fn departments_without_contact(&self, known: &[(&str, &str)]) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        for region in self.people.keys() {
            let missing: Vec<String> = known
                .iter()
                .filter(|(id, _)| !self.departments.contains_key(&(*region, (*id).to_string())))
                .map(|(id, name)| format!("{id} ({name})"))
                .collect();
            if !missing.is_empty() {
                out.push(Diagnostic::file(
                    &self.file,
                    format!(
                        "warning: {region} {} has no contact for {}: their duties reach nobody (shown as 无联系人)",
                        self.regions.name(*region),
                        missing.join(", ")
                    ),
                ));
            }
        }
        out
    }

    /// Everyone on the roster.
    pub fn people(&self) -> impl Iterator<Item = &Person> {
        self.people.values().flatten()
    }

    /// SHA-256 (hex) of the file's text: tells a changed roster from the same one.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The regions that have a roster of their own.
    pub fn regions(&self) -> impl Iterator<Item = RegionCode> + '_ {
        self.people.keys().copied()
    }

    /// The duty staff of the region at `at` ("the county's duty officer now"): those whose shift
    /// covers `at`, from the region itself or else the nearest tier above that has someone on duty.
    pub fn on_duty(&self, region: RegionCode, at: DateTime<Utc>) -> Vec<Person> {
        self.on_duty_but(region, at, None)
    }

    /// [`Roster::on_duty`] leaving one person out: a tier where only they are on shift counts as empty, so
    /// the next tier up is told (a delivery failure of the only officer on shift climbs to the city).
    fn on_duty_but(&self, region: RegionCode, at: DateTime<Utc>, but: Option<&str>) -> Vec<Person> {
        for tier in self.tiers(region) {
            let now: Vec<Person> = match self.calendar.override_at(tier, at) {
                Some(o) => o
                    .people
                    .iter()
                    .filter_map(|id| self.person(id))
                    .filter(|p| Some(p.id.as_str()) != but)
                    .cloned()
                    .collect(),
                None => self
                    .people_of(tier)
                    .iter()
                    .filter(|p| self.on_shift(p, at) && Some(p.id.as_str()) != but)
                    .cloned()
                    .collect(),
            };
            if !now.is_empty() {
                return now;
            }
        }
        Vec::new()
    }

    /// Whether the person's shifts cover `at`, with the calendar: holidays and 调休 working days decide
    /// which weekday a date follows; a swap gives the shifts starting that date to someone else.
    pub fn on_shift(&self, p: &Person, at: DateTime<Utc>) -> bool {
        let cal = &self.calendar;
        let own = p
            .shifts
            .iter()
            .any(|s| s.covers_when(at, |d| s.days[cal.follows(d)] && !cal.swaps.contains_key(&(d, p.id.clone()))));
        own || cal.swaps.iter().filter(|(_, by)| **by == p.id).any(|((date, giver), _)| {
            self.person(giver)
                .is_some_and(|g| g.shifts.iter().any(|s| s.covers_when(at, |d| d == *date && s.days[cal.follows(d)])))
        })
    }

    /// The person with this id.
    pub fn person(&self, id: &str) -> Option<&Person> {
        self.people().find(|p| p.id == id)
    }

    /// The holidays, 调休 working days, swaps and overrides.
    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    /// The people holding `role` for the region, shifts aside: the region's own, or else the nearest
    /// tier above that has one.
    pub fn with_role(&self, region: RegionCode, role: &str) -> Vec<Person> {
        self.with_role_but(region, role, None)
    }

    fn with_role_but(&self, region: RegionCode, role: &str, but: Option<&str>) -> Vec<Person> {
        for tier in self.tiers(region) {
            let found: Vec<Person> = self
                .people_of(tier)
                .iter()
                .filter(|p| p.role == role && Some(p.id.as_str()) != but)
                .cloned()
                .collect();
            if !found.is_empty() {
                return found;
            }
        }
        Vec::new()
    }

    /// Which event reaches whom, if anyone.
    pub fn route(&self, event: &str) -> Option<&Route> {
        self.routes.get(event)
    }

    /// Every route, by event name.
    pub fn routes(&self) -> &BTreeMap<String, Route> {
        &self.routes
    }

    /// The people a route reaches for an event in `region` at `at`, each once, in order.
    /// `signer_role` is the role the event waits for, if any.
    pub fn audience(&self, route: &Route, region: RegionCode, at: DateTime<Utc>, signer_role: Option<&str>) -> Vec<Person> {
        self.audience_but(route, region, at, signer_role, None)
    }

    /// [`Roster::audience`] without one person (whose message failed): each audience falls back to the next
    /// tier up when that person was the only one at theirs.
    pub fn audience_but(
        &self,
        route: &Route,
        region: RegionCode,
        at: DateTime<Utc>,
        signer_role: Option<&str>,
        but: Option<&str>,
    ) -> Vec<Person> {
        let mut out: Vec<Person> = Vec::new();
        for a in &route.to {
            let found = match a {
                Audience::Duty => self.on_duty_but(region, at, but),
                Audience::Signer => signer_role.map(|r| self.with_role_but(region, r, but)).unwrap_or_default(),
                Audience::ParentDuty => self
                    .regions
                    .ancestors(region)
                    .first()
                    .map(|p| self.on_duty_but(*p, at, but))
                    .unwrap_or_default(),
                Audience::Role(r) => self.with_role_but(region, r, but),
            };
            for p in found {
                if !out.iter().any(|q| q.id == p.id) {
                    out.push(p);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::warning::day_start;
    use chrono::NaiveDate;

    const ROSTER: &str = r#"
notify:
  issued: { to: [duty], template: warning_issued }
  proposed: { to: [duty, signer], template: warning_proposed }
regions:
  "140000":
    - { id: sx-day, name: 省白班, role: duty_officer, email: day@example.cn, shifts: [{ days: [weekdays], from: "08:00", to: "18:00" }] }
    - { id: sx-night, name: 省夜班, role: duty_officer, email: night@example.cn, shifts: [{ days: [daily], from: "18:00", to: "08:00" }] }
    - { id: sx-head, name: 省长, role: head, email: head@example.cn }
  "140100":
    - { id: ty-day, name: 市白班, role: duty_officer, email: ty@example.cn, shifts: [{ days: [mon, tue, wed, thu, fri], from: "08:30", to: "17:30" }] }
    - { id: ty-deputy, name: 副市长, role: deputy_head, email: deputy@example.cn }
"#;

    fn roster() -> Roster {
        Roster::parse("roster.yaml", ROSTER, Regions::shanxi()).unwrap()
    }

    /// 2026-12-01 is a Tuesday.
    fn at(day: u32, h: u32, m: u32) -> DateTime<Utc> {
        day_start(NaiveDate::from_ymd_opt(2026, 12, day).unwrap()) + Duration::minutes(i64::from(h * 60 + m))
    }

    fn ids(p: &[Person]) -> Vec<&str> {
        p.iter().map(|p| p.id.as_str()).collect()
    }

    #[test]
    fn the_county_duty_officer_now_falls_back_to_the_nearest_tier_on_duty() {
        let r = roster();
        let xiaodian = RegionCode::parse("140105").unwrap();
        let table = [
            (at(1, 9, 0), vec!["ty-day"]),    // Tuesday morning: Taiyuan's day shift
            (at(1, 7, 59), vec!["sx-night"]), // before anyone's day shift: the province's night shift
            (at(1, 8, 10), vec!["sx-day"]),   // the province's day shift has begun, Taiyuan's not yet
            (at(1, 17, 45), vec!["sx-day"]),  // Taiyuan has gone home, the province's day shift has not
            (at(5, 10, 0), vec![]),           // Saturday morning: nobody anywhere
        ];
        for (t, want) in &table {
            assert_eq!(ids(&r.on_duty(xiaodian, *t)), *want, "at {t}");
        }
        // Saturday 07:00 is in the overnight shift that started on Friday.
        assert_eq!(ids(&r.on_duty(xiaodian, at(5, 7, 0))), vec!["sx-night"]);
    }

    #[test]
    fn an_alert_about_the_only_officer_on_shift_climbs_to_the_next_tier_up() {
        let r = roster();
        let route = r.route("issued").unwrap();
        let ty = RegionCode::parse("140100").unwrap();
        // Tuesday 09:00: Taiyuan's day officer is the only one on shift there; their delivery failed, so the
        // alert about it goes to the province's day shift, not to nobody.
        assert_eq!(ids(&r.audience_but(route, ty, at(1, 9, 0), None, Some("ty-day"))), ["sx-day"]);
        assert_eq!(ids(&r.audience_but(route, ty, at(1, 9, 0), None, None)), ["ty-day"]);
        // Leaving out someone of another tier changes nothing.
        assert_eq!(ids(&r.audience_but(route, ty, at(1, 9, 0), None, Some("sx-day"))), ["ty-day"]);
    }

    #[test]
    fn a_proposal_reaches_the_duty_staff_and_the_signer_each_once() {
        let r = roster();
        let route = r.route("proposed").unwrap();
        let ty = RegionCode::parse("140100").unwrap();
        assert_eq!(
            ids(&r.audience(route, ty, at(1, 9, 0), Some("deputy_head"))),
            vec!["ty-day", "ty-deputy"]
        );
        // A red level needs the head, whom only the province has.
        assert_eq!(ids(&r.audience(route, ty, at(1, 9, 0), Some("head"))), vec!["ty-day", "sx-head"]);
    }

    const CALENDAR: &str = r#"
calendar:
  holidays:
    - { name: 测试节, first: "2026-12-03" }
  workdays:
    - { date: "2026-12-05", as: fri }
  swaps:
    - { date: "2026-12-01", person: ty-day, by: ty-day2 }
    - { date: "2026-12-01", person: sx-night, by: sx-day }
overrides:
  "140100":
    - { date: "2026-12-03", from: "09:00", to: "12:00", people: [ty-deputy], note: 节日带班 }
"#;

    fn calendar_roster() -> Roster {
        let text = ROSTER.replace(
            "    - { id: ty-deputy,",
            "    - { id: ty-day2, name: 市白班二, role: duty_officer, email: ty2@example.cn, shifts: [{ days: [weekdays], from: \"08:30\", to: \"17:30\" }] }\n    - { id: ty-weekend, name: 市周末班, role: duty_officer, email: tyw@example.cn, shifts: [{ days: [weekend], from: \"08:00\", to: \"20:00\" }] }\n    - { id: ty-deputy,",
        );
        Roster::parse("roster.yaml", &format!("{text}{CALENDAR}"), Regions::shanxi()).unwrap_or_else(|e| panic!("{e:#?}"))
    }

    #[test]
    fn on_a_holiday_the_sunday_shifts_apply_and_an_override_names_who_is_on_duty_instead() {
        let r = calendar_roster();
        let ty = RegionCode::parse("140100").unwrap();
        let xiaodian = RegionCode::parse("140105").unwrap();
        // Thursday 2026-12-03 is a holiday: the weekday day shift stays home, the weekend shift works.
        assert_eq!(ids(&r.on_duty(xiaodian, at(3, 8, 30))), ["ty-weekend"]);
        // 09:00–12:00 the override of Taiyuan: its deputy is on duty in place of everyone's shifts.
        assert_eq!(ids(&r.on_duty(xiaodian, at(3, 9, 0))), ["ty-deputy"]);
        assert_eq!(ids(&r.on_duty(ty, at(3, 11, 59))), ["ty-deputy"]);
        assert_eq!(ids(&r.on_duty(ty, at(3, 12, 0))), ["ty-weekend"]);
        // The province has no weekend day shift: on the holiday afternoon its day officer is not on duty.
        assert!(r.on_duty(RegionCode::parse("140000").unwrap(), at(3, 14, 0)).is_empty());
        // The day before and after, the week as usual.
        assert_eq!(ids(&r.on_duty(ty, at(2, 9, 0))), ["ty-day", "ty-day2"]);
        assert_eq!(ids(&r.on_duty(ty, at(4, 9, 0))), ["ty-day", "ty-day2"]);
        // Without the calendar the same roster has the day shift there.
        assert_eq!(ids(&roster().on_duty(ty, at(3, 10, 0))), ["ty-day"]);
        // The deputy, the only one of the override, failed: the next tier up is told.
        let route = r.route("issued").unwrap();
        assert!(
            ids(&r.audience_but(route, ty, at(3, 10, 0), None, Some("ty-deputy")))
                .iter()
                .all(|id| id.starts_with("sx-"))
        );
    }

    #[test]
    fn a_swap_gives_the_shifts_starting_that_date_to_someone_else() {
        let r = calendar_roster();
        let ty = RegionCode::parse("140100").unwrap();
        let sx = RegionCode::parse("140000").unwrap();
        // Tuesday 2026-12-01: ty-day's shift is worked by ty-day2 (on duty anyway), ty-day stays home.
        assert_eq!(ids(&r.on_duty(ty, at(1, 9, 0))), ["ty-day2"]);
        assert_eq!(ids(&r.on_duty(ty, at(2, 9, 0))), ["ty-day", "ty-day2"]);
        // The province's night shift starting on Tuesday is worked by sx-day, into Wednesday morning too.
        assert_eq!(ids(&r.on_duty(sx, at(1, 20, 0))), ["sx-day"]);
        assert_eq!(ids(&r.on_duty(sx, at(2, 2, 0))), ["sx-day"]);
        // Tuesday 02:00 still belongs to Monday's night shift, and Wednesday's night to its owner.
        assert_eq!(ids(&r.on_duty(sx, at(1, 2, 0))), ["sx-night"]);
        assert_eq!(ids(&r.on_duty(sx, at(2, 20, 0))), ["sx-night"]);
    }

    #[test]
    fn a_tiaoxiu_saturday_is_worked_with_the_shifts_of_the_weekday_it_names() {
        let r = calendar_roster();
        let ty = RegionCode::parse("140100").unwrap();
        // Saturday 2026-12-05 is worked as a Friday: the weekday day shifts, not the weekend one.
        assert_eq!(ids(&r.on_duty(ty, at(5, 9, 0))), ["ty-day", "ty-day2"]);
        // Sunday as usual.
        assert_eq!(ids(&r.on_duty(ty, at(6, 9, 0))), ["ty-weekend"]);
        // Without the calendar that Saturday is the weekend shift's.
        let plain = ROSTER.replace(
            "    - { id: ty-deputy,",
            "    - { id: ty-weekend, name: 市周末班, role: duty_officer, email: tyw@example.cn, shifts: [{ days: [weekend], from: \"08:00\", to: \"20:00\" }] }\n    - { id: ty-deputy,",
        );
        let plain = Roster::parse("roster.yaml", &plain, Regions::shanxi()).unwrap();
        assert_eq!(ids(&plain.on_duty(ty, at(5, 9, 0))), ["ty-weekend"]);
    }

    #[test]
    fn calendar_errors_are_named_with_their_line_and_column() {
        let text = r#"regions:
  "140000":
    - { id: sx, name: 省值班, role: duty_officer, email: sx@example.cn, shifts: [{ days: [weekdays], from: "08:00", to: "18:00" }] }
  "140100":
    - { id: ty, name: 市值班, role: duty_officer, email: ty@example.cn, shifts: [{ days: [weekdays], from: "08:00", to: "18:00" }] }
    - { id: ty2, name: 市值班二, role: duty_officer, email: ty2@example.cn, shifts: [{ days: [weekend], from: "08:00", to: "18:00" }] }
calendar:
  holidays:
    - { name: 春节, first: "2027-02-30" }
  workdays:
    - { date: "2027-02-20", as: sat }
  swaps:
    - { date: "2027-02-10", person: ty, by: sx }
    - { date: "2027-02-13", person: ty, by: ty2 }
overrides:
  "140100":
    - { date: "2027-02-05", from: "08:00", to: "08:00", people: [ty2] }
    - { date: "2027-02-06", from: "07:00", to: "12:00", people: [ty-nobody] }
"#;
        let errors = Roster::parse("r.yaml", text, Regions::shanxi())
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>();
        assert_eq!(
            errors,
            [
                "r.yaml:9:26: \"2027-02-30\" is not a date (YYYY-MM-DD)",
                "r.yaml:11:33: \"sat\" is not a weekday (mon … fri): a 调休 working day follows a weekday's shifts",
                "r.yaml:13:45: \"sx\" is on the roster of 140000, not of 140100 like \"ty\"",
                "r.yaml:14:37: \"ty\" has no shift on 2027-02-13 to give",
                "r.yaml:18:66: unknown person \"ty-nobody\"",
                "r.yaml:18:7: this override of 140100 overlaps the one at line 17 (2027-02-05): one region has one override at a time",
            ]
        );
        let fixed = text
            .replace("2027-02-30", "2027-02-05")
            .replace("as: sat", "as: fri")
            .replace("person: ty, by: ty2", "person: ty2, by: ty")
            .replace("by: sx }", "by: ty2 }")
            .replace("from: \"07:00\"", "from: \"08:00\"")
            .replace("ty-nobody", "sx");
        let r = Roster::parse("r.yaml", &fixed, Regions::shanxi()).unwrap_or_else(|e| panic!("{e:#?}"));
        assert_eq!(r.calendar().overrides[&RegionCode::parse("140100").unwrap()].len(), 2);
    }

    #[test]
    fn every_error_is_named_with_its_line_and_column() {
        let text = r#"notify:
  isued: { to: [duty], template: warning_issued }
  lifted: { to: [everyone], template: warning_lifted }
regions:
  "140000":
    - { id: a, name: 甲, role: duty_officer, email: not-an-address, shifts: [{ days: [mon, funday], from: "8:00", to: "25:00" }] }
    - { id: a, name: 乙, role: Head, email: b@example.cn }
  "149900":
    - { id: c, name: 丙, role: head, email: c@example.cn }
"#;
        let errors = Roster::parse("r.yaml", text, Regions::shanxi())
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>();
        let want = [
            "r.yaml:2:3: \"isued\" is not an event",
            "r.yaml:3:18: \"everyone\" is not an audience",
            "r.yaml:6:52: \"not-an-address\" is not an email address",
            "r.yaml:6:91: \"funday\" is not a day",
            "r.yaml:6:106: \"8:00\" is not a time of day",
            "r.yaml:6:118: \"25:00\" is not a time of day",
            "r.yaml:7:13: the id \"a\" is used twice",
            "r.yaml:7:31: \"Head\" is not a role id",
            "r.yaml:8:3: unknown region 149900",
        ];
        for w in want {
            assert!(errors.iter().any(|e| e.starts_with(w)), "missing {w:?} in {errors:#?}");
        }
        assert_eq!(errors.len(), want.len(), "{errors:#?}");
    }

    #[test]
    fn department_contacts_are_checked_with_their_line_and_column_and_against_the_measure_defaults() {
        let text = r#"regions:
  "140100":
    - { id: ty, name: 市值班, role: duty_officer, email: ty@example.cn }
departments:
  "140100":
    housing: [{ name: 住建联系人, email: housing@example.cn, phone: "0351-1" }]
    transprot: [{ name: 交通联系人, email: transport@example.cn }]
  "140105":
    ecology: [{ name: 甲, email: not-an-address }]
  "149900":
    ecology: [{ name: 乙, email: b@example.cn }]
"#;
        let errors = Roster::parse("r.yaml", text, Regions::shanxi())
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>();
        assert_eq!(
            errors,
            [
                "r.yaml:9:33: \"not-an-address\" is not an email address",
                "r.yaml:10:3: unknown region 149900"
            ]
        );
        let ok = text.replace("not-an-address", "a@example.cn").replace("149900", "140106");
        let r = Roster::parse("r.yaml", &ok, Regions::shanxi()).unwrap();
        let ty = RegionCode::parse("140100").unwrap();
        assert_eq!(r.department_contacts(ty, "housing")[0].email, "housing@example.cn");
        assert!(r.department_contacts(ty, "police").is_empty());
        // A misspelt department id is named where it stands.
        let known = ["ecology", "housing", "transport", "police"];
        let unknown: Vec<String> = r.unknown_departments(&known).iter().map(ToString::to_string).collect();
        assert_eq!(unknown.len(), 1, "{unknown:#?}");
        assert!(
            unknown[0].starts_with("r.yaml:7:5: unknown department \"transprot\""),
            "{unknown:#?}"
        );
        // Taiyuan is on the roster: its departments without a contact are warned of.
        let warnings: Vec<String> = r
            .departments_without_contact(&[("housing", "住建局"), ("police", "公安局"), ("transport", "交通局")])
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(warnings.len(), 1, "{warnings:#?}");
        assert!(
            warnings[0].contains("140100") && warnings[0].contains("police (公安局)") && warnings[0].contains("transport (交通局)"),
            "{warnings:#?}"
        );
    }

    #[test]
    fn the_shipped_roster_names_a_contact_for_every_department_of_every_region_on_it() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/roster.yaml");
        let r = Roster::load(&path).unwrap_or_else(|e| panic!("{}", e.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")));
        let d = crate::registry::shanxi_defaults();
        let known: Vec<&str> = d.departments.iter().map(|d| d.id.as_str()).collect();
        assert!(r.unknown_departments(&known).is_empty());
        let named: Vec<(&str, &str)> = d.departments.iter().map(|d| (d.id.as_str(), d.name.as_str())).collect();
        assert_eq!(r.departments_without_contact(&named), Vec::<Diagnostic>::new());
        assert_eq!(r.department_contact_count(), 13 * known.len());
    }

    #[test]
    fn the_shipped_roster_has_someone_of_each_city_on_duty_through_its_2027_holidays_and_overrides() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/roster.yaml");
        let r = Roster::load(&path).unwrap_or_else(|e| panic!("{}", e.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")));
        let ty = RegionCode::parse("140100").unwrap();
        let dt = RegionCode::parse("140200").unwrap();
        let local = |d: &str, h: u32| day_start(NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap()) + Duration::hours(i64::from(h));
        // 除夕 (a Friday): Taiyuan's override, not its weekday shifts; Datong follows Sunday (its weekend shift).
        assert_eq!(ids(&r.on_duty(ty, local("2027-02-05", 10))), ["ty-liu-yang"]);
        assert_eq!(ids(&r.on_duty(dt, local("2027-02-05", 10))), ["dt-yang-fan"]);
        // 初一: the duty officer with the deputy mayor leading.
        assert_eq!(ids(&r.on_duty(ty, local("2027-02-07", 7))), ["ty-wang-fang", "ty-zhao-jianguo"]);
        // The 调休 Saturday after the holiday: the weekday day shift.
        assert_eq!(ids(&r.on_duty(dt, local("2027-02-20", 10))), ["dt-li-na"]);
        // The swap on the first day after National Day.
        assert_eq!(ids(&r.on_duty(ty, local("2027-10-08", 10))), ["ty-chen-jing"]);
        let province = RegionCode::parse("140000").unwrap();
        for (first, days) in [("2027-01-30", 30), ("2027-09-24", 20)] {
            for h in 0..24 * days {
                let t = local(first, 0) + Duration::hours(h);
                for city in Regions::shanxi().children(province) {
                    assert!(
                        r.on_duty(city, t).iter().any(|p| p.region == city),
                        "nobody of city {city} on duty at {t}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_shipped_roster_has_someone_on_duty_for_every_city_at_every_hour_of_a_week() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/roster.yaml");
        let r = Roster::load(&path).unwrap_or_else(|e| panic!("{}", e.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")));
        let province = RegionCode::parse("140000").unwrap();
        let cities = Regions::shanxi().children(province);
        assert_eq!(cities.len(), 11);
        for city in cities {
            assert!(!r.people_of(city).is_empty(), "city {city} has nobody on its roster");
            assert!(
                !r.with_role(city, "deputy_head").is_empty() && !r.with_role(city, "head").is_empty(),
                "city {city}"
            );
            for h in 0..24 * 7 {
                let t = at(1, 0, 0) + Duration::hours(h);
                let duty = r.on_duty(city, t);
                assert!(duty.iter().any(|p| p.region == city), "nobody of city {city} on duty at {t}");
            }
        }
        for ev in [
            "proposed",
            "change_proposed",
            "issued",
            "change_scheduled",
            "lift_scheduled",
            "cancel_scheduled",
            "delivery_failed",
            "store_fault",
        ] {
            assert!(r.route(ev).is_some(), "no route for {ev}");
        }
    }
}
