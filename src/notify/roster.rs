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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use chrono_tz::Asia::Shanghai;
use serde::{Deserialize, Serialize};
use serde_saphyr::{Location, Spanned};
use sha2::{Digest, Sha256};

use crate::region::{RegionCode, Regions};

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
    /// Whether the shift covers the instant.
    pub fn covers(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&Shanghai);
        let minute = (local.hour() * 60 + local.minute()) as u16;
        let today = local.weekday().num_days_from_monday() as usize;
        let yesterday = (local - Duration::days(1)).weekday().num_days_from_monday() as usize;
        if self.to > self.from {
            self.days[today] && minute >= self.from && minute < self.to
        } else {
            (self.days[today] && minute >= self.from) || (self.days[yesterday] && minute < self.to)
        }
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
    department_ids: Vec<(String, usize, usize)>,
    /// The file's name, for those checks' messages.
    file: String,
    routes: BTreeMap<String, Route>,
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
    list: Vec<String>,
}

impl Errors<'_> {
    fn at(&mut self, loc: &Location, message: impl AsRef<str>) {
        self.list
            .push(format!("{}:{}:{}: {}", self.file, loc.line(), loc.column(), message.as_ref()));
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

impl Roster {
    /// Loads and checks a roster file against Shanxi's regions.
    pub fn load(path: &Path) -> Result<Roster, Vec<String>> {
        Self::load_for(path, Regions::shanxi())
    }

    /// Loads and checks a roster file against a region table.
    pub fn load_for(path: &Path, regions: &'static Regions) -> Result<Roster, Vec<String>> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| vec![format!("{name}:0:0: cannot read: {e}")])?;
        Self::parse(&name, &text, regions)
    }

    /// Parses roster text; `name` is used in error messages.
    pub fn parse(name: &str, text: &str, regions: &'static Regions) -> Result<Roster, Vec<String>> {
        let raw: RawRoster = serde_saphyr::from_str(text).map_err(|err| {
            let (l, c) = err.location().map_or((0, 0), |l| (l.line(), l.column()));
            let msg = err.without_snippet().to_string();
            let msg = msg.rsplit_once(" at line ").map_or(msg.as_str(), |(m, _)| m).to_string();
            vec![format!("{name}:{l}:{c}: {msg}")]
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
                department_ids.push((id.value.clone(), id.referenced.line() as usize, id.referenced.column() as usize));
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
        if e.list.is_empty() {
            let digest = hex::encode(Sha256::digest(text.as_bytes()));
            Ok(Roster {
                people,
                departments,
                department_ids,
                file: name.to_string(),
                routes,
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
    pub fn unknown_departments(&self, known: &[&str]) -> Vec<String> {
        self.department_ids
            .iter()
            .filter(|(id, ..)| !known.contains(&id.as_str()))
            .map(|(id, l, c)| {
                format!(
                    "{}:{l}:{c}: unknown department \"{id}\" (the measure defaults' departments: {})",
                    self.file,
                    known.join(", ")
                )
            })
            .collect()
    }

    /// Warnings: for each region on the roster (its duty staff can be told of a warning there), the
    /// departments with duties that have no contact: their duties reach nobody (shown as 无联系人).
    pub fn departments_without_contact(&self, known: &[(&str, &str)]) -> Vec<String> {
        let mut out = Vec::new();
        for region in self.people.keys() {
            let missing: Vec<String> = known
                .iter()
                .filter(|(id, _)| !self.departments.contains_key(&(*region, (*id).to_string())))
                .map(|(id, name)| format!("{id} ({name})"))
                .collect();
            if !missing.is_empty() {
                out.push(format!(
                    "{}: warning: {region} {} has no contact for {}: their duties reach nobody (shown as 无联系人)",
                    self.file,
                    self.regions.name(*region),
                    missing.join(", ")
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
            let now: Vec<Person> = self
                .people_of(tier)
                .iter()
                .filter(|p| p.shifts.iter().any(|s| s.covers(at)) && Some(p.id.as_str()) != but)
                .cloned()
                .collect();
            if !now.is_empty() {
                return now;
            }
        }
        Vec::new()
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
    use crate::warning::day_start;
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
        let errors = Roster::parse("r.yaml", text, Regions::shanxi()).unwrap_err();
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
        let errors = Roster::parse("r.yaml", text, Regions::shanxi()).unwrap_err();
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
        let unknown = r.unknown_departments(&known);
        assert_eq!(unknown.len(), 1, "{unknown:#?}");
        assert!(
            unknown[0].starts_with("r.yaml:7:5: unknown department \"transprot\""),
            "{unknown:#?}"
        );
        // Taiyuan is on the roster: its departments without a contact are warned of.
        let warnings = r.departments_without_contact(&[("housing", "住建局"), ("police", "公安局"), ("transport", "交通局")]);
        assert_eq!(warnings.len(), 1, "{warnings:#?}");
        assert!(
            warnings[0].contains("140100") && warnings[0].contains("police (公安局)") && warnings[0].contains("transport (交通局)"),
            "{warnings:#?}"
        );
    }

    #[test]
    fn the_shipped_roster_names_a_contact_for_every_department_of_every_region_on_it() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/roster.yaml");
        let r = Roster::load(&path).unwrap_or_else(|e| panic!("{}", e.join("\n")));
        let d = crate::registry::shanxi_defaults();
        let known: Vec<&str> = d.departments.iter().map(|d| d.id.as_str()).collect();
        assert!(r.unknown_departments(&known).is_empty());
        let named: Vec<(&str, &str)> = d.departments.iter().map(|d| (d.id.as_str(), d.name.as_str())).collect();
        assert_eq!(r.departments_without_contact(&named), Vec::<String>::new());
        assert_eq!(r.department_contact_count(), 13 * known.len());
    }

    #[test]
    fn the_shipped_roster_has_someone_on_duty_for_every_city_at_every_hour_of_a_week() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/roster.yaml");
        let r = Roster::load(&path).unwrap_or_else(|e| panic!("{}", e.join("\n")));
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
