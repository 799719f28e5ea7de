//! Playbooks (应急预案 as data): the YAML files in `playbooks/` that hold every rule of the response.
//!
//! In: YAML files (see `playbooks/README.md` for the reference). Out: an immutable [`PlaybookSet`] of
//! compiled [`Playbook`]s, or every [`PlaybookError`] found, each as `file:line:column: message`.
//! Thresholds, durations, sign-off and schedules live here and nowhere in code. A child playbook
//! (city, county) extends its parent's and may only be stricter; that is checked at load.
//!
//! - `raw.rs`: the file as written (serde, with spans);
//! - `load.rs`: reading, inheritance and compiling;
//! - `validate.rs`: one function per rule a playbook can break;
//! - `compare.rs`: "is this rule at least as strict as that one", decided over all relevant windows.
//! - `zh.rs`: the errors in Chinese, for the dashboard.

mod compare;
mod load;
mod raw;
mod validate;
pub mod zh;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Duration, FixedOffset};
use serde::Serialize;

use crate::domain::level::LevelId;
use crate::domain::region::{RegionCode, Regions};

pub use load::{load_files, load_paths};

/// A compiled entry rule over a window of daily AQI values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Every part holds.
    All(Vec<Rule>),
    /// At least one part holds.
    Any(Vec<Rule>),
    /// `days` consecutive daily values above `threshold` (`≥` when `inclusive`).
    Above { threshold: u16, inclusive: bool, days: u32 },
}

/// Which days of the window a rule matched on (indexes into the window).
pub type Covered = Vec<usize>;

impl Rule {
    /// Whether the window meets the rule, and the days it covers (see [`Rule::covers`]).
    pub fn matches(&self, window: &[Option<u16>]) -> Option<Covered> {
        let days: Covered = self
            .covers(window)
            .iter()
            .enumerate()
            .filter(|(_, c)| **c)
            .map(|(i, _)| i)
            .collect();
        (!days.is_empty()).then_some(days)
    }

    /// Which days of the window lie in a run that meets the rule. A missing value (`None`) breaks a
    /// run: a day without a forecast is not a day above a threshold.
    ///
    /// - `Above`: the days of every run of at least `days` consecutive values above the threshold;
    /// - `Any`: the days any part covers;
    /// - `All`: one pollution episode meets every part (环大气〔2024〕6号 red: "日AQI>200持续72小时且日AQI>300持续
    ///   24小时" is one run, the >300 day inside the >200 run). The candidate runs are the stretches of
    ///   consecutive days that some part covers; a stretch in which every part covers at least one day is
    ///   covered whole. `[201, 201, 201, 100, 301]` meets no `All[>200 ×3, >300 ×1]`: the 301 lies in
    ///   another run.
    pub fn covers(&self, window: &[Option<u16>]) -> Vec<bool> {
        match self {
            Rule::Above {
                threshold,
                inclusive,
                days,
            } => {
                let above = |v: &Option<u16>| v.is_some_and(|v| if *inclusive { v >= *threshold } else { v > *threshold });
                let mut out = vec![false; window.len()];
                let mut i = 0;
                while i < window.len() {
                    if above(&window[i]) {
                        let start = i;
                        while i < window.len() && above(&window[i]) {
                            i += 1;
                        }
                        if (i - start) as u32 >= *days {
                            out[start..i].iter_mut().for_each(|c| *c = true);
                        }
                    } else {
                        i += 1;
                    }
                }
                out
            }
            Rule::Any(parts) => {
                let mut out = vec![false; window.len()];
                for p in parts {
                    for (o, c) in out.iter_mut().zip(p.covers(window)) {
                        *o |= c;
                    }
                }
                out
            }
            Rule::All(parts) => {
                let each: Vec<Vec<bool>> = parts.iter().map(|p| p.covers(window)).collect();
                let mut out = vec![false; window.len()];
                let mut i = 0;
                while i < window.len() {
                    if !each.iter().any(|c| c[i]) {
                        i += 1;
                        continue;
                    }
                    let start = i;
                    while i < window.len() && each.iter().any(|c| c[i]) {
                        i += 1;
                    }
                    if each.iter().all(|c| c[start..i].iter().any(|x| *x)) {
                        out[start..i].iter_mut().for_each(|c| *c = true);
                    }
                }
                out
            }
        }
    }

    /// The thresholds this rule compares against, as the smallest value that counts as "above".
    pub(crate) fn cut_points(&self, out: &mut Vec<u16>) {
        match self {
            Rule::Above { threshold, inclusive, .. } => out.push(if *inclusive { *threshold } else { threshold + 1 }),
            Rule::All(p) | Rule::Any(p) => p.iter().for_each(|r| r.cut_points(out)),
        }
    }

    /// The longest run of days the rule looks at.
    pub(crate) fn max_days(&self) -> u32 {
        match self {
            Rule::Above { days, .. } => *days,
            Rule::All(p) | Rule::Any(p) => p.iter().map(Rule::max_days).max().unwrap_or(0),
        }
    }
}

/// The rule in the words of the plans, the one rendering every page, mail and record uses:
/// `日AQI>200持续72小时且日AQI>300（同一污染过程）或日AQI≥500`.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |f: &mut fmt::Formatter<'_>, parts: &[Rule], sep: &str| -> fmt::Result {
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    f.write_str(sep)?;
                }
                match p {
                    Rule::Any(_) if sep != "或" => write!(f, "（{p}）")?,
                    Rule::All(_) if sep != "且" => write!(f, "（{p}）")?,
                    _ => write!(f, "{p}")?,
                }
            }
            Ok(())
        };
        match self {
            Rule::Above {
                threshold,
                inclusive,
                days,
            } => {
                write!(f, "日AQI{}{threshold}", if *inclusive { "≥" } else { ">" })?;
                if *days > 1 {
                    write!(f, "持续{}小时", days * 24)?;
                }
                Ok(())
            }
            Rule::All(p) => {
                join(f, p, "且")?;
                f.write_str("（同一污染过程）")
            }
            Rule::Any(p) => join(f, p, "或"),
        }
    }
}

/// A primary pollutant (首要污染物) as the playbook names it: O3 covers its 8-h and 1-h values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadPollutant {
    /// PM2.5.
    Pm25,
    /// PM10.
    Pm10,
    /// O3 (8-h or 1-h).
    O3,
    /// SO2.
    So2,
    /// NO2.
    No2,
    /// CO.
    Co,
}

impl LeadPollutant {
    /// From a playbook or forecast name: `pm25`, `pm10`, `o3` (also `o3_8h`, `o3_1h`), `so2`, `no2`, `co`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "pm25" | "pm2.5" => Self::Pm25,
            "pm10" => Self::Pm10,
            "o3" | "o3_8h" | "o3_1h" => Self::O3,
            "so2" | "so2_1h" => Self::So2,
            "no2" | "no2_1h" => Self::No2,
            "co" | "co_1h" => Self::Co,
            _ => return None,
        })
    }

    /// The name as written in playbooks.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pm25 => "pm25",
            Self::Pm10 => "pm10",
            Self::O3 => "o3",
            Self::So2 => "so2",
            Self::No2 => "no2",
            Self::Co => "co",
        }
    }

    /// Of a pollutant of the AQI tables.
    pub fn of(p: crate::domain::aqi::Pollutant) -> Self {
        use crate::domain::aqi::Pollutant as P;
        match p {
            P::Pm25 => Self::Pm25,
            P::Pm10 => Self::Pm10,
            P::O3_8h | P::O3_1h => Self::O3,
            P::So2 | P::So2_1h => Self::So2,
            P::No2 | P::No2_1h => Self::No2,
            P::Co | P::Co_1h => Self::Co,
        }
    }
}

/// Who signs a level's warning, or nobody.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignOff {
    /// Issued without a signature.
    Auto,
    /// Needs a signer with this role or one of higher rank.
    Role(String),
}

/// A role that may sign warnings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Role {
    /// Id used in `sign_off` and by signers (e.g. `deputy_head`).
    pub id: String,
    /// Chinese title (e.g. 分管副市长).
    pub name: String,
    /// Authority: a role may sign what a lower-ranked role may sign.
    pub rank: u32,
}

/// A warning level (预警级别).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Level {
    /// Id used in files and APIs (`yellow`).
    pub id: LevelId,
    /// Order: a higher rank is a more severe level.
    pub rank: u32,
    /// Chinese name (黄色预警).
    pub name: String,
    /// Display colour, `#RRGGBB`.
    pub colour: String,
    /// Response grade (Ⅲ级).
    pub response: String,
    /// Who signs it.
    pub sign_off: SignOff,
    /// When the forecast calls for it.
    pub entry: Rule,
}

/// A daily consultation (每日会商) slot.
#[derive(Debug, Clone, Serialize)]
pub struct Consultation {
    /// Name (上午会商).
    pub name: String,
    /// The cron expression as written (6–7 fields, seconds first, Asia/Shanghai).
    pub cron: String,
    #[serde(skip)]
    pub(crate) schedule: cron::Schedule,
}

impl Consultation {
    /// The next slot strictly after `after`.
    pub fn next_after(&self, after: DateTime<chrono::Utc>) -> Option<DateTime<chrono::Utc>> {
        let local = after.with_timezone(&chrono_tz::Asia::Shanghai);
        self.schedule.after(&local).next().map(|t| t.with_timezone(&chrono::Utc))
    }
}

/// A regional directive (调度令): at least `min_level` over `regions` from `from` until lifted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Directive {
    /// Id (e.g. `晋气防办调度令-2026-4`).
    pub id: String,
    /// Title.
    pub name: String,
    /// The least level the regions must hold.
    pub min_level: LevelId,
    /// The regions named, groups expanded (descendants are covered too).
    pub regions: Vec<RegionCode>,
    /// From when.
    pub from: DateTime<FixedOffset>,
    /// Until when, if known; otherwise until lifted.
    pub until: Option<DateTime<FixedOffset>>,
    /// Region of the tier that issued it (the playbook's scope).
    pub issued_by: RegionCode,
}

/// The body that issues a playbook's warnings (发布单位): who signs the notices, CAP `sender`/`senderName`,
/// the feed entry's author and the public page's 发布单位.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issuer {
    /// Chinese name (太原市重污染天气应急指挥部办公室).
    pub name: String,
    /// English name (CAP `en-US`); the Chinese one when the playbook gives none.
    pub name_en: String,
    /// CAP `sender`.
    pub sender: String,
}

impl Issuer {
    /// The command office of a region, for a playbook that names none: `太原市重污染天气应急指挥部办公室`
    /// (a county with its city: `太原市小店区重污染天气应急指挥部办公室`),
    /// sender `hazeflow-140100@example.cn`.
    pub fn of_scope(scope: RegionCode, regions: &Regions) -> Issuer {
        // A county is named with its city (太原市小店区), a city or province by itself.
        let place = match (scope.tier(), regions.ancestors(scope).first()) {
            (crate::domain::region::Tier::County, Some(city)) => format!("{}{}", regions.name(*city), regions.name(scope)),
            _ => regions.name(scope),
        };
        let name = format!("{place}重污染天气应急指挥部办公室");
        Issuer {
            name_en: name.clone(),
            name,
            sender: format!("hazeflow-{scope}@example.cn"),
        }
    }
}

/// The body that issues warnings for `region`: the issuer of the playbook governing it, or the region's
/// command office when none does.
pub fn issuer_of(set: &PlaybookSet, region: RegionCode, regions: &Regions) -> Issuer {
    set.for_region(region, regions)
        .map_or_else(|| Issuer::of_scope(region, regions), |p| p.issuer.clone())
}

/// Reports up (信息报送): where they go and when the daily report is made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Reports {
    /// The upper tier's office; `None`: reports are made and kept but sent nowhere.
    pub to: Option<ReportTo>,
    /// Time of day (Asia/Shanghai) of the daily report while a warning is in force; `None`: no daily report.
    pub daily_at: Option<chrono::NaiveTime>,
    /// The report of each decision (issue, adjust, lift, cancel) is due this long after it
    /// (`event_within_hours`); `None`: no such reports.
    #[serde(serialize_with = "ser_opt_hours")]
    pub event_within: Option<Duration>,
    /// The after-episode summary (总结评估) is made and sent when a warning ends (`summary`).
    pub summary: bool,
}

/// The upper tier's office that reports go to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ReportTo {
    /// Its name (山西省重污染天气应急指挥部办公室).
    pub name: String,
    /// Its mail address.
    pub email: String,
}

/// A compiled, validated playbook, with its parent's settings already folded in.
#[derive(Debug, Clone, Serialize)]
pub struct Playbook {
    /// Id (`shanxi`).
    pub id: String,
    /// Version as written in the file.
    pub version: String,
    /// First 12 hex digits of the SHA-256 of the file(s) it was compiled from.
    pub digest: String,
    /// Title.
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// The region it governs, with everything below it.
    pub scope: RegionCode,
    /// The playbook it extends.
    pub parent: Option<String>,
    /// Days of forecast looked at from the issue date.
    pub horizon_days: u32,
    /// Least time from issue to start.
    #[serde(serialize_with = "ser_hours")]
    pub lead_time: Duration,
    /// How long the forecast must stay below the current level before it is lifted or lowered.
    #[serde(serialize_with = "ser_hours")]
    pub lift_window: Duration,
    /// Episodes closer than this are one.
    #[serde(serialize_with = "ser_hours")]
    pub merge_gap: Duration,
    /// When levels fluctuate, the higher one holds until the lift window has passed.
    pub hold_higher: bool,
    /// Primary pollutants whose days count towards the levels; `None`: every day counts (the rules
    /// before 环大气〔2024〕6号). A day led by another pollutant, or by sand and dust, starts no reductions.
    pub level_pollutants: Option<Vec<LeadPollutant>>,
    /// Days led by a pollutant outside `level_pollutants` (or by sand and dust) with a daily AQI above this get
    /// health advice (the public page's 臭氧污染健康提示).
    pub advisory_aqi_above: u16,
    /// The approval form (审批表) is to be completed this long after the consultation that decided
    /// (`approval_form_hours`; inherited; `None`: no deadline, no timers).
    #[serde(serialize_with = "ser_opt_hours")]
    pub approval_form: Option<Duration>,
    /// The office relays a signed decision to the departments within this (`relay_hours`; inherited).
    #[serde(serialize_with = "ser_opt_hours")]
    pub relay: Option<Duration>,
    /// A proposal made by a consultation is signed only once the consultation's record (会商意见) is
    /// completed, unless the signer gives a reason (`record_before_sign`; inherited; default false).
    pub record_before_sign: bool,
    /// Who issues its warnings; never taken from the parent.
    pub issuer: Issuer,
    /// Reports up (信息报送, `reports:`; each field inherited).
    pub reports: Reports,
    /// While a warning is in force, its public message is published again (CAP `Update`) and the
    /// enterprises not yet in place are reminded every this many hours, per level id
    /// (`republish_hours`; inherited as a whole; empty: never).
    #[serde(serialize_with = "ser_map_hours")]
    pub republish: std::collections::BTreeMap<String, Duration>,
    /// Roles that sign.
    pub roles: Vec<Role>,
    /// Levels, lowest rank first.
    pub levels: Vec<Level>,
    /// Daily consultations.
    pub consultations: Vec<Consultation>,
    /// Regional directives issued by this tier.
    pub directives: Vec<Directive>,
}

fn ser_hours<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_i64(d.num_hours())
}

fn ser_map_hours<S: serde::Serializer>(m: &std::collections::BTreeMap<String, Duration>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut out = s.serialize_map(Some(m.len()))?;
    for (k, v) in m {
        out.serialize_entry(k, &v.num_hours())?;
    }
    out.end()
}

fn ser_opt_hours<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_i64(d.num_hours()),
        None => s.serialize_none(),
    }
}

impl Playbook {
    /// The level with this id.
    pub fn level(&self, id: &str) -> Option<&Level> {
        self.levels.iter().find(|l| l.id == id)
    }

    /// Rank of a level id; 0 for `none` or an unknown id.
    pub fn rank(&self, id: &str) -> u32 {
        self.level(id).map_or(0, |l| l.rank)
    }

    /// The role with this id.
    pub fn role(&self, id: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.id == id)
    }

    /// Whether a signer with `role` may sign a warning of `level`.
    pub fn may_sign(&self, level: &str, role: &str) -> bool {
        match self.level(level).map(|l| &l.sign_off) {
            Some(SignOff::Auto) => true,
            Some(SignOff::Role(needed)) => match (self.role(needed), self.role(role)) {
                (Some(n), Some(r)) => r.rank >= n.rank,
                _ => false,
            },
            None => false,
        }
    }

    /// `id@version`, as pinned on an episode.
    pub fn pin(&self) -> String {
        format!("{}@{}", self.id, self.version)
    }
}

/// One problem in a playbook, where it is and what is wrong (`file:line:column: message`).
pub type PlaybookError = crate::domain::diagnostic::Diagnostic;

/// The live playbooks: one per scope, children folded onto parents. Immutable; swapped whole on reload.
#[derive(Debug, Clone, Default)]
pub struct PlaybookSet {
    by_id: BTreeMap<String, Arc<Playbook>>,
}

impl PlaybookSet {
    /// All playbooks, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Playbook>> {
        self.by_id.values()
    }

    /// The playbook with this id.
    pub fn get(&self, id: &str) -> Option<&Arc<Playbook>> {
        self.by_id.get(id)
    }

    /// Number of playbooks.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The most specific playbook whose scope contains `region`.
    pub fn for_region(&self, region: RegionCode, regions: &Regions) -> Option<&Arc<Playbook>> {
        self.by_id
            .values()
            .filter(|p| p.scope == region || regions.is_within(region, p.scope))
            .max_by_key(|p| p.scope.tier())
    }

    /// The root playbooks (those that extend nothing).
    pub fn roots(&self) -> impl Iterator<Item = &Arc<Playbook>> {
        self.by_id.values().filter(|p| p.parent.is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gt(threshold: u16, days: u32) -> Rule {
        Rule::Above {
            threshold,
            inclusive: false,
            days,
        }
    }

    fn ge(threshold: u16, days: u32) -> Rule {
        Rule::Above {
            threshold,
            inclusive: true,
            days,
        }
    }

    fn w(values: &[u16]) -> Vec<Option<u16>> {
        values.iter().map(|v| Some(*v)).collect()
    }

    #[test]
    fn above_means_strictly_above_and_at_least_means_from_the_threshold_on() {
        assert_eq!(gt(200, 1).matches(&w(&[200])), None);
        assert_eq!(gt(200, 1).matches(&w(&[201])), Some(vec![0]));
        assert_eq!(ge(500, 1).matches(&w(&[499])), None);
        assert_eq!(ge(500, 1).matches(&w(&[500])), Some(vec![0]));
    }

    #[test]
    fn a_run_is_consecutive_days_and_every_long_enough_run_is_covered_whole() {
        let r = gt(150, 2);
        assert_eq!(r.matches(&w(&[151, 100, 151])), None);
        assert_eq!(r.matches(&w(&[100, 151, 160, 170, 100, 151, 151])), Some(vec![1, 2, 3, 5, 6]));
        assert_eq!(
            r.matches(&w(&[100, 151, 160, 170, 100, 151])),
            Some(vec![1, 2, 3]),
            "a one-day run is too short"
        );
        assert_eq!(r.matches(&[Some(151), None, Some(151)]), None, "a missing day breaks the run");
        assert_eq!(r.matches(&[]), None);
    }

    #[test]
    fn all_needs_every_part_within_one_run() {
        let red = Rule::All(vec![gt(200, 3), gt(300, 1)]);
        assert_eq!(red.matches(&w(&[201, 201, 201])), None);
        assert_eq!(red.matches(&w(&[201, 301, 201, 100])), Some(vec![0, 1, 2]));
        // 环大气〔2024〕6号 red is one episode: Datong's 301 lies in another run than the three days above 200.
        assert_eq!(red.matches(&w(&[201, 201, 201, 100, 301])), None);
        assert_eq!(red.matches(&w(&[301, 100, 201, 201, 201])), None);
        assert_eq!(
            red.matches(&w(&[100, 201, 201, 301, 50, 201, 301, 201])),
            Some(vec![1, 2, 3, 5, 6, 7])
        );
    }

    #[test]
    fn any_needs_one_part_and_covers_the_days_of_those_met() {
        let yellow = Rule::Any(vec![gt(200, 1), gt(150, 2)]);
        assert_eq!(yellow.matches(&w(&[151, 100, 151])), None);
        assert_eq!(yellow.matches(&w(&[100, 201])), Some(vec![1]));
        assert_eq!(yellow.matches(&w(&[151, 151, 100, 201])), Some(vec![0, 1, 3]));
    }

    #[test]
    fn rules_read_as_the_plans_write_them() {
        assert_eq!(gt(200, 1).to_string(), "日AQI>200");
        assert_eq!(ge(500, 1).to_string(), "日AQI≥500");
        assert_eq!(gt(150, 2).to_string(), "日AQI>150持续48小时");
        let red = Rule::Any(vec![Rule::All(vec![gt(200, 4), gt(300, 2)]), ge(500, 1)]);
        assert_eq!(
            red.to_string(),
            "（日AQI>200持续96小时且日AQI>300持续48小时（同一污染过程））或日AQI≥500"
        );
    }

    const PROVINCE: &str = r##"
id: province
version: "3"
name: 省级预案
scope: "140000"
horizon_days: 5
lift_window_hours: 36
roles:
  - { id: deputy_head, name: 分管副省长, rank: 2 }
  - { id: head, name: 省长, rank: 3 }
levels:
  - { id: yellow, rank: 1, name: 黄色预警, colour: "#ffff00", response: Ⅲ级, sign_off: deputy_head, entry: { aqi_gt: 200, days: 1 } }
  - { id: red, rank: 2, name: 红色预警, colour: "#FF0000", response: Ⅰ级, sign_off: head, entry: { aqi_gt: 200, days: 3 } }
consultations: [ { name: 下午会商, cron: "0 0 16 * * *" } ]
"##;

    fn load(child: &str) -> Result<PlaybookSet, Vec<PlaybookError>> {
        load_files(
            vec![("province.yaml".into(), PROVINCE.into()), ("city.yaml".into(), child.into())],
            Regions::shanxi(),
        )
    }

    #[test]
    fn a_child_takes_what_it_leaves_out_from_its_parent() {
        let set = load("id: city\nversion: \"1\"\nname: 市级预案\nextends: province\nscope: \"140100\"\n").unwrap();
        let city = set.get("city").unwrap();
        let province = set.get("province").unwrap();
        assert_eq!(
            (city.horizon_days, city.lift_window, city.hold_higher),
            (5, Duration::hours(36), true)
        );
        assert_eq!(city.levels, province.levels);
        assert_eq!(city.consultations.len(), 1);
        assert_eq!(city.parent.as_deref(), Some("province"));
        assert_eq!(province.levels[0].colour, "#FFFF00", "colours are kept in capitals");
        assert_ne!(city.digest, province.digest);
        assert_eq!(city.pin(), "city@1");
    }

    #[test]
    fn record_before_sign_is_off_unless_set_inherited_and_never_turned_off_below_a_parent_that_sets_it() {
        let city = "id: city\nversion: \"1\"\nname: 市级预案\nextends: province\nscope: \"140100\"\n";
        let set = load(city).unwrap();
        assert!(!set.get("province").unwrap().record_before_sign, "absent: off");
        assert!(!set.get("city").unwrap().record_before_sign);
        let on = |yaml: &str| format!("{yaml}record_before_sign: true\n");
        let set = load_files(
            vec![("province.yaml".into(), on(PROVINCE)), ("city.yaml".into(), city.into())],
            Regions::shanxi(),
        )
        .unwrap();
        assert!(set.get("city").unwrap().record_before_sign, "inherited");
        let errors = load_files(
            vec![
                ("province.yaml".into(), on(PROVINCE)),
                ("city.yaml".into(), format!("{city}record_before_sign: false\n")),
            ],
            Regions::shanxi(),
        )
        .unwrap_err();
        let msg = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
        assert!(
            msg.contains(
                "record_before_sign: false is laxer than parent playbook \"province\", which signs only after the consultation's record"
            ),
            "{msg}"
        );
        let zh = errors.iter().map(|e| zh::message(&e.message)).collect::<Vec<_>>().join("\n");
        assert!(
            zh.contains("record_before_sign: false 宽于上级预案“province”（上级要求会商意见填写完成后方可签发）"),
            "{zh}"
        );
        let errors =
            load("id: city\nversion: \"1\"\nname: 市级预案\nextends: province\nscope: \"140100\"\nrecord_before_sign: yes please\n")
                .unwrap_err();
        let msg = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
        assert!(msg.contains("expected true or false"), "{msg}");
    }

    #[test]
    fn each_playbook_speaks_in_its_own_name_and_never_borrows_its_parents() {
        let named = "id: city\nversion: \"1\"\nname: 市级预案\nextends: province\nscope: \"140100\"\n\
                     issuer: { name: 太原市重污染天气应急指挥部办公室, name_en: Taiyuan Office, sender: ty@hazeflow.example.cn }\n";
        let set = load(named).unwrap();
        let city = &set.get("city").unwrap().issuer;
        assert_eq!(
            (city.name.as_str(), city.name_en.as_str(), city.sender.as_str()),
            ("太原市重污染天气应急指挥部办公室", "Taiyuan Office", "ty@hazeflow.example.cn")
        );
        // Left out: the scope's own command office, not the parent's (the province names none either).
        let set = load("id: city\nversion: \"1\"\nname: 市级预案\nextends: province\nscope: \"140105\"\n").unwrap();
        let county = &set.get("city").unwrap().issuer;
        assert_eq!(county.name, "太原市小店区重污染天气应急指挥部办公室");
        assert_eq!(county.sender, "hazeflow-140105@example.cn");
        assert_eq!(set.get("province").unwrap().issuer.name, "山西省重污染天气应急指挥部办公室");
        // A sender CAP cannot carry is refused where it is written.
        let bad = named.replace("ty@hazeflow.example.cn", "\"ty office, 1\"");
        let e = load(&bad).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!((e[0].file.as_str(), e[0].line()), ("city.yaml", 6));
        assert!(
            e[0].message.starts_with("issuer.sender \"ty office, 1\" must be one word"),
            "{}",
            e[0].message
        );
    }

    #[test]
    fn a_stricter_child_is_accepted_lower_thresholds_longer_lift_window_higher_signer() {
        let child = r##"
id: city
version: "1"
name: 市级预案
extends: province
scope: "140100"
lift_window_hours: 48
roles: [ { id: head, name: 市长, rank: 3 } ]
levels:
  - { id: yellow, sign_off: head, entry: { any: [ { aqi_gt: 200, days: 1 }, { aqi_gt: 150, days: 2 } ] } }
  - { id: red, entry: { aqi_gt: 180, days: 3 } }
"##;
        let set = load(child).unwrap_or_else(|e| panic!("{e:?}"));
        let city = set.get("city").unwrap();
        assert_eq!(city.lift_window, Duration::hours(48));
        assert_eq!(city.level("yellow").unwrap().sign_off, SignOff::Role("head".into()));
        assert_eq!(city.role("head").unwrap().name, "市长", "a child may rename a role");
        assert_eq!(city.level("red").unwrap().entry, gt(180, 3));
        assert_eq!(city.level("red").unwrap().name, "红色预警", "fields it does not override stay");
    }

    #[test]
    fn a_child_may_not_be_laxer_on_any_window_of_the_horizon() {
        // Red on 3 days above 250 misses [201, 201, 201, 0, 0], which the province calls red.
        let child = "id: city\nversion: \"1\"\nname: 市\nextends: province\nscope: \"140100\"\nlevels:\n  - { id: red, entry: { aqi_gt: 250, days: 3 } }\n";
        let errors = load(child).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0]
                .message
                .contains("daily AQI [201, 201, 201, 0, 0] meets the parent's rule"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn the_most_specific_playbook_governs_a_region() {
        let set = load("id: city\nversion: \"1\"\nname: 市\nextends: province\nscope: \"140100\"\n").unwrap();
        let regions = Regions::shanxi();
        let code = |s: &str| RegionCode::parse(s).unwrap();
        assert_eq!(set.for_region(code("140105"), regions).unwrap().id, "city");
        assert_eq!(set.for_region(code("140200"), regions).unwrap().id, "province");
        assert_eq!(set.for_region(code("140000"), regions).unwrap().id, "province");
        assert_eq!(set.roots().map(|p| p.id.as_str()).collect::<Vec<_>>(), ["province"]);
    }

    #[test]
    fn the_next_consultation_is_read_in_asia_shanghai() {
        let set = load("id: city\nversion: \"1\"\nname: 市\nextends: province\nscope: \"140100\"\n").unwrap();
        let c = &set.get("city").unwrap().consultations[0];
        let after = crate::domain::forecast::parse_time("2026-12-01 16:00")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let next = c.next_after(after).unwrap();
        assert_eq!(
            next.with_timezone(&chrono_tz::Asia::Shanghai).to_rfc3339(),
            "2026-12-02T16:00:00+08:00"
        );
    }

    #[test]
    fn cron_fields_read_as_the_playbook_reference_says_seconds_first_and_1_is_sunday() {
        let child = "id: city\nversion: \"1\"\nname: 市\nextends: province\nscope: \"140100\"\nconsultations:\n  \
                     - { name: a, cron: \"0 0 10 * * 1\" }\n  - { name: b, cron: \"0 0 10 * * MON-FRI\" }\n  \
                     - { name: c, cron: \"0 0 16 * 10-12,1-3 *\" }\n";
        let set = load(child).unwrap_or_else(|e| panic!("{e:?}"));
        let c = &set.get("city").unwrap().consultations;
        let local = |s: &str| crate::domain::forecast::parse_time(s).unwrap().with_timezone(&chrono::Utc);
        let next = |i: usize, after: &str| {
            c[i].next_after(local(after))
                .unwrap()
                .with_timezone(&chrono_tz::Asia::Shanghai)
                .format("%a %Y-%m-%d %H:%M")
                .to_string()
        };
        // 2026-12-05 is a Saturday.
        assert_eq!(next(0, "2026-12-05 12:00"), "Sun 2026-12-06 10:00");
        assert_eq!(next(1, "2026-12-05 12:00"), "Mon 2026-12-07 10:00");
        assert_eq!(
            next(2, "2026-04-01 00:00"),
            "Thu 2026-10-01 16:00",
            "no consultation from April to September"
        );
    }
}
