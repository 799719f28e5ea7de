//! Industry defaults (行业默认措施): what an enterprise without its own measures for a level does,
//! by key industry and grade; plus the reduction targets, acknowledgement deadlines and
//! department duties per level. All numbers live in `playbooks/measures/*.yaml`.
//!
//! In: one YAML file. Out: an immutable [`Defaults`], or every [`RegistryError`] found. Then
//! [`Defaults::measures_for`] answers "what does this enterprise do at this level": its own
//! measures for that level if it has any, else (保障类) its capped load, else the default of its
//! key industry for its grade, else the `other` rule for its grade.
//!
//! # Schema
//!
//! ```yaml
//! id: shanxi-measures              # required, text
//! version: "2026.1"                # required, text
//! name: 山西省…                     # required, text
//! levels:                          # the playbook's level ids, lowest first; every rule covers all
//!   - id: yellow
//!     name: 黄色预警
//!     ack_deadline_hours: 6        # acknowledgement due this long after the notice (> 0)
//!     remind_before_hours: 2       # optional: a reminder this long before the deadline (0 < x < deadline;
//!                                  #   default the smaller of 1 and half the deadline)
//!     escalate_every_hours: 2      # optional: once overdue, the next tier of the escalation chain is told
//!                                  #   after each further interval this long (> 0; default: the deadline)
//!     in_place_after_start_hours: 0  # optional: 措施已落实 is due this long after the measures' start
//!                                  #   (>= 0; default 0: in place by the start, domain.md §2.4), never
//!                                  #   before ack_deadline_hours; its reminder, overdue report and
//!                                  #   escalation follow the same remind/escalate settings
//!     reduction_target_percent: { so2: 10, nox: 10, pm: 10, vocs: 10 }   # of whole-society emissions
//! escalation: [county, city, province]   # optional: whose duty staff hear of an overdue acknowledgement,
//!                                  # in turn: the first at the deadline, the next after each interval
//!                                  # (tiers lowest first, each once; default county, city, province)
//! board:                           # the 公示牌
//!   title: 重污染天气应急响应操作方案公示牌
//!   hotline: "12369"
//!   supervisor: 生态环境局          # appended to the city's name
//! departments:                     # 部门责任分工
//!   - id: housing
//!     name: 住房和城乡建设局
//!     short_name: 住建
//!     duties: { yellow: …, orange: …, red: … }   # Chinese text, one per level
//! industries:                      # key industries; `id` is what enterprises name in key_industry
//!   - id: cement
//!     name: 水泥熟料
//!     codes: ["3011"]              # GB/T 4754 classes (informative; used by reports)
//!     rules:                       # optional; an industry without rules uses `other`
//!       - grades: [A+, A, leading] # each grade at most once per industry
//!         measures:                # one list per level, every level present
//!           yellow: [ { kind: self_determined } ]
//!           orange: [ { kind: limit_percent, value: 20, reduction: { so2: 0.2 } } ]
//!           red:    [ { kind: stop } ]
//! other:                           # other air-polluting enterprises; must cover every grade
//!   name: 其他涉气企业
//!   rules: [ … same as above … ]
//! ```
//!
//! A measure: `kind` (see [`MeasureKind`]), `value` where the kind needs one, `process` (工序 or
//! equipment, optional), `note`, and `reduction` (fractions 0..=1 of the enterprise's baseline per
//! pollutant; a pollutant left out is 0). Without `reduction` the kind's own share applies to
//! every pollutant (stop 1, limit x % → x/100, …; others 0) — except on a named `process`, which
//! must state its reduction, since only that process is affected.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_saphyr::{Location, Spanned};
use sha2::{Digest, Sha256};

use crate::domain::level::LevelId;
use crate::domain::region::Tier;

use super::{Enterprise, Grade, IndustryCode, MeasureKind, PartialPerSpecies, PerSpecies, RegistryError, Species, yaml_error};

// ---------------------------------------------------------------------------------------------
// The compiled value
// ---------------------------------------------------------------------------------------------

/// The compiled industry defaults. Immutable; reloaded whole.
#[derive(Debug, Clone, Serialize)]
pub struct Defaults {
    /// Id (`shanxi-measures`).
    pub id: String,
    /// Version as written.
    pub version: String,
    /// Title.
    pub name: String,
    /// The file it came from.
    pub file: String,
    /// First 12 hex digits of the SHA-256 of the file.
    pub digest: String,
    /// Levels, lowest first.
    pub levels: Vec<LevelDefaults>,
    /// Board settings.
    pub board: BoardSettings,
    /// Departments and their duties.
    pub departments: Vec<Department>,
    /// Key industries.
    pub industries: Vec<IndustryDefaults>,
    /// The rule for other air-polluting enterprises (and key industries without rules).
    pub other: IndustryDefaults,
    /// Whose duty staff hear of an overdue acknowledgement, in turn (county → city → province).
    pub escalation: Vec<Tier>,
}

/// Per-level settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LevelDefaults {
    /// Level id (`yellow`).
    pub id: LevelId,
    /// Chinese name (`黄色预警`).
    pub name: String,
    /// Acknowledgement due this many hours after the notice.
    pub ack_deadline_hours: u32,
    /// A reminder this many hours before the deadline.
    pub remind_before_hours: f64,
    /// Once overdue, the next tier of the escalation chain is told after each further interval this long.
    pub escalate_every_hours: f64,
    /// 措施已落实 is due this many hours after the measures' start (never before the receipt deadline).
    pub in_place_after_start_hours: f64,
    /// Reduction target, % of whole-society emissions per pollutant.
    pub target_percent: PerSpecies,
}

/// Settings of the notice board (公示牌).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BoardSettings {
    /// Title.
    pub title: String,
    /// Hotline (12369).
    pub hotline: String,
    /// Supervising bureau, appended to the city's name.
    pub supervisor: String,
}

/// A department with its duties per level (部门责任分工).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Department {
    /// Id (`housing`).
    pub id: String,
    /// Full name (`住房和城乡建设局`).
    pub name: String,
    /// Short name (`住建`).
    pub short_name: String,
    /// Duty text per level id.
    pub duties: BTreeMap<String, String>,
}

/// The defaults of one key industry (or of `other`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndustryDefaults {
    /// Id (`cement`; `other` for the other rule).
    pub id: String,
    /// Chinese name.
    pub name: String,
    /// GB/T 4754 classes.
    pub codes: Vec<IndustryCode>,
    /// Rules by grade; empty means "use `other`".
    pub rules: Vec<GradeRule>,
}

impl IndustryDefaults {
    /// The rule covering a grade.
    pub fn rule(&self, grade: Grade) -> Option<&GradeRule> {
        self.rules.iter().find(|r| r.grades.contains(&grade))
    }
}

/// Measures per level for a set of grades.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GradeRule {
    /// Grades covered.
    pub grades: Vec<Grade>,
    /// Measures per level id.
    pub measures: BTreeMap<String, Vec<DefaultMeasure>>,
}

/// One default measure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DefaultMeasure {
    /// What is done.
    pub kind: MeasureKind,
    /// Process or equipment named, if any.
    pub process: Option<String>,
    /// Reduction, fraction of the enterprise's baseline per pollutant.
    pub reduction: PerSpecies,
    /// Free text.
    pub note: String,
}

/// Where an assigned measure came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum MeasureSource {
    /// The enterprise's own measure (一厂一策).
    Own,
    /// Its 保障类 capped load.
    Exemption,
    /// The default of its key industry for its grade.
    IndustryDefault {
        /// Industry id.
        industry: String,
        /// Grade.
        grade: Grade,
    },
    /// The `other` rule for its grade.
    OtherRule {
        /// Grade.
        grade: Grade,
    },
}

/// A measure an enterprise takes at a level, with its expected reduction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssignedMeasure {
    /// Level id.
    pub level: LevelId,
    /// The line, `None` for the whole enterprise.
    pub line: Option<String>,
    /// The line's name.
    pub line_name: Option<String>,
    /// Process or equipment named.
    pub process: Option<String>,
    /// What is done.
    pub kind: MeasureKind,
    /// The measure in Chinese.
    pub text_zh: String,
    /// Free text.
    pub note: String,
    /// Where it came from.
    pub source: MeasureSource,
    /// Reduction as a fraction of the enterprise's baseline.
    pub fraction: PerSpecies,
    /// Expected reduction, t/day (baseline × fraction).
    pub expected: PerSpecies,
}

/// The total reduction of a set of measures as a fraction of the baseline: the sum, capped at 1
/// per pollutant (an enterprise cannot cut more than it emits).
pub fn total_fraction(measures: &[AssignedMeasure]) -> PerSpecies {
    measures.iter().map(|m| m.fraction).sum::<PerSpecies>().map(|x| x.min(1.0))
}

impl Defaults {
    /// The level with this id.
    pub fn level(&self, id: &str) -> Option<&LevelDefaults> {
        self.levels.iter().find(|l| l.id == id)
    }

    /// Level ids, lowest first.
    pub fn level_ids(&self) -> Vec<&str> {
        self.levels.iter().map(|l| l.id.as_str()).collect()
    }

    /// When an acknowledgement of a notice at this level is due, after the notice.
    pub fn ack_deadline(&self, level: &str) -> Option<chrono::Duration> {
        self.level(level).map(|l| chrono::Duration::hours(i64::from(l.ack_deadline_hours)))
    }

    /// How long after the measures' start 措施已落实 is due at this level.
    pub fn in_place_after(&self, level: &str) -> Option<chrono::Duration> {
        self.level(level).map(|l| hours(l.in_place_after_start_hours))
    }

    /// How long before the acknowledgement deadline of a notice at this level the reminder goes.
    pub fn remind_before(&self, level: &str) -> Option<chrono::Duration> {
        self.level(level).map(|l| hours(l.remind_before_hours))
    }

    /// The interval between the steps of the escalation chain once an acknowledgement is overdue.
    pub fn escalate_every(&self, level: &str) -> Option<chrono::Duration> {
        self.level(level).map(|l| hours(l.escalate_every_hours))
    }

    /// Each department's duty at a level.
    pub fn duties(&self, level: &str) -> Vec<(&Department, &str)> {
        self.departments
            .iter()
            .filter_map(|d| d.duties.get(level).map(|t| (d, t.as_str())))
            .collect()
    }

    /// The key industry with this id.
    pub fn industry(&self, id: &str) -> Option<&IndustryDefaults> {
        self.industries.iter().find(|i| i.id == id)
    }

    /// The rule that applies to an enterprise of this key industry and grade, and where it came
    /// from: the industry's rule for the grade, else the `other` rule.
    pub fn rule_for(&self, key_industry: Option<&str>, grade: Grade) -> (&GradeRule, MeasureSource) {
        if let Some(rule) = key_industry.and_then(|k| self.industry(k)).and_then(|i| i.rule(grade)) {
            let industry = key_industry.unwrap_or_default().to_string();
            return (rule, MeasureSource::IndustryDefault { industry, grade });
        }
        // `other` covers every grade: checked at load.
        let rule = self.other.rule(grade).unwrap_or(&self.other.rules[0]);
        (rule, MeasureSource::OtherRule { grade })
    }

    /// What the enterprise does at this level: its own measures for the level if it has any, else
    /// its 保障类 capped load, else its industry's default for its grade, else the `other` rule.
    /// Empty for an unknown level.
    pub fn measures_for(&self, e: &Enterprise, level: &str) -> Vec<AssignedMeasure> {
        let own = self.own_measures_for(e, level);
        if !own.is_empty() {
            return own;
        }
        self.fallback_for(e, level)
    }

    /// The enterprise's own measures (一厂一策) at this level, as assigned; empty if it has none there.
    pub fn own_measures_for(&self, e: &Enterprise, level: &str) -> Vec<AssignedMeasure> {
        if self.level(level).is_none() {
            return Vec::new();
        }
        e.own_measures(level)
            .map(|m| {
                assigned(
                    e,
                    level,
                    m.line.as_deref(),
                    m.process.as_deref(),
                    &m.kind,
                    m.reduction,
                    &m.note,
                    MeasureSource::Own,
                )
            })
            .collect()
    }

    /// What the enterprise would do at this level without own measures there: its 保障类 capped load,
    /// else its industry's default for its grade, else the `other` rule. Empty for an unknown level.
    pub fn fallback_for(&self, e: &Enterprise, level: &str) -> Vec<AssignedMeasure> {
        if self.level(level).is_none() {
            return Vec::new();
        }
        if let Some(x) = &e.exemption {
            let kind = MeasureKind::CapLoadPercent(x.max_load_percent);
            let fraction = PerSpecies::splat(kind.implied_fraction().unwrap_or(0.0));
            return vec![assigned(
                e,
                level,
                None,
                None,
                &kind,
                fraction,
                x.kind.name_zh(),
                MeasureSource::Exemption,
            )];
        }
        let (rule, source) = self.rule_for(e.industry.key.as_deref(), e.grade.grade);
        rule.measures
            .get(level)
            .into_iter()
            .flatten()
            .map(|m| assigned(e, level, None, m.process.as_deref(), &m.kind, m.reduction, &m.note, source.clone()))
            .collect()
    }

    /// Where the enterprise's own measures (一厂一策) cut less than what it would otherwise do (its
    /// grade's default, or its 保障类 cap), for a pollutant it emits, at a level where it has own
    /// measures: one [`Laxity`] per such level, lowest level first.
    pub fn laxities(&self, e: &Enterprise) -> Vec<Laxity> {
        let mut out = Vec::new();
        for l in &self.levels {
            let own = self.own_measures_for(e, &l.id);
            if own.is_empty() {
                continue;
            }
            let fallback = self.fallback_for(e, &l.id);
            let (own_total, default_total) = (total_fraction(&own), total_fraction(&fallback));
            let short: Vec<Species> = Species::ALL
                .into_iter()
                .filter(|p| e.baseline[*p] > 0.0 && own_total[*p] + 1e-9 < default_total[*p])
                .collect();
            if short.is_empty() {
                continue;
            }
            let source = fallback
                .first()
                .map_or(MeasureSource::OtherRule { grade: e.grade.grade }, |m| m.source.clone());
            out.push(Laxity {
                level: l.id.clone(),
                level_name: l.name.clone(),
                short,
                own: own_total,
                default: default_total,
                source,
            });
        }
        out
    }

    /// What a [`MeasureSource`] is called in messages (`水泥熟料B级默认措施`, `其他涉气企业C级默认措施`, `保障类限负荷`).
    pub fn source_name(&self, source: &MeasureSource) -> String {
        match source {
            MeasureSource::Own => "一厂一策".to_string(),
            MeasureSource::Exemption => "保障类限负荷".to_string(),
            MeasureSource::IndustryDefault { industry, grade } => {
                let name = self.industry(industry).map_or(industry.as_str(), |i| i.name.as_str());
                format!("{name}{}默认措施", grade.name_zh())
            }
            MeasureSource::OtherRule { grade } => format!("{}{}默认措施", self.other.name, grade.name_zh()),
        }
    }

    /// The message for a [`Laxity`] of an enterprise (English, as the other list errors).
    pub fn laxity_message(&self, e: &Enterprise, lax: &Laxity) -> String {
        let pct = |v: &PerSpecies| {
            lax.short
                .iter()
                .map(|p| format!("{} {}%", p.label(), super::types::fmt_num((v[*p] * 1000.0).round() / 10.0)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "enterprise {} {} ({}): its own measures at {} ({}) cut {} of its baseline, less than the {} it would otherwise take ({}); an enterprise's 一厂一策 may not be laxer than its grade's default",
            e.uscc,
            e.name,
            e.grade.grade.name_zh(),
            lax.level,
            lax.level_name,
            pct(&lax.own),
            self.source_name(&lax.source),
            pct(&lax.default),
        )
    }

    /// The enterprise's expected reduction at a level, t/day: baseline × the capped total fraction.
    pub fn expected_reduction(&self, e: &Enterprise, level: &str) -> PerSpecies {
        e.baseline * total_fraction(&self.measures_for(e, level))
    }
}

/// A measure as assigned to an enterprise at a level.
#[allow(clippy::too_many_arguments)]
fn assigned(
    e: &Enterprise,
    level: &str,
    line: Option<&str>,
    process: Option<&str>,
    kind: &MeasureKind,
    fraction: PerSpecies,
    note: &str,
    source: MeasureSource,
) -> AssignedMeasure {
    AssignedMeasure {
        level: level.into(),
        line: line.map(str::to_string),
        line_name: line.and_then(|l| e.line(l)).map(|l| l.name.clone()),
        process: process.map(str::to_string),
        text_zh: kind.text_zh(),
        kind: kind.clone(),
        note: note.to_string(),
        source,
        fraction,
        expected: e.baseline * fraction,
    }
}

/// Own measures (一厂一策) at a level that cut less than the enterprise would otherwise take.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Laxity {
    /// Level id.
    pub level: LevelId,
    /// Level name.
    pub level_name: String,
    /// The pollutants (emitted by the enterprise) cut less.
    pub short: Vec<Species>,
    /// The own measures' total, fraction of the baseline.
    pub own: PerSpecies,
    /// The default's total (or the 保障类 cap's).
    pub default: PerSpecies,
    /// Where the default comes from.
    pub source: MeasureSource,
}

/// Fractional hours as a duration (to the millisecond).
fn hours(h: f64) -> chrono::Duration {
    chrono::Duration::milliseconds((h * 3_600_000.0).round() as i64)
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

const SHANXI_FILE: &str = "playbooks/measures/shanxi.yaml";

/// Shanxi's defaults as shipped (`playbooks/measures/shanxi.yaml`, embedded at build time).
///
/// # Panics
///
/// Only if the shipped file is broken, which a test rules out.
pub fn shanxi_defaults() -> &'static Defaults {
    static SHANXI: OnceLock<Defaults> = OnceLock::new();
    SHANXI.get_or_init(|| {
        parse_defaults(
            SHANXI_FILE,
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/measures/shanxi.yaml")),
        )
        .unwrap_or_else(|errors| {
            let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
            panic!("embedded measure defaults are broken:\n{}", text.join("\n"))
        })
    })
}

/// Reads and compiles a defaults file.
pub fn load_defaults(path: &Path) -> Result<Defaults, Vec<RegistryError>> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| vec![RegistryError::at(&file, 0, 0, format!("cannot read: {e}"))])?;
    parse_defaults(&file, &text)
}

/// Levels of the playbooks that the defaults do not know (no acknowledgement deadline, no measures, no
/// duties for them), as messages naming the defaults file, the level and the playbook.
pub fn unknown_levels(defaults_file: &str, defaults: &Defaults, set: &crate::domain::playbook::PlaybookSet) -> Vec<String> {
    let known: Vec<&str> = defaults.levels.iter().map(|l| l.id.as_str()).collect();
    let mut out = Vec::new();
    for p in set.iter() {
        for l in &p.levels {
            if !known.contains(&l.id.as_str()) {
                out.push(format!(
                    "{defaults_file}: level \"{}\" of playbook {} has no entry here (levels here: {}); its enterprises would get no measures and no deadline",
                    l.id,
                    p.pin(),
                    known.join(", ")
                ));
            }
        }
    }
    out
}

/// Compiles a defaults file from its text; `file` names it in errors.
pub fn parse_defaults(file: &str, text: &str) -> Result<Defaults, Vec<RegistryError>> {
    let raw: RawDefaults = serde_saphyr::from_str(text).map_err(|e| vec![yaml_error(file, &e)])?;
    let mut v = Validator { file, errors: Vec::new() };
    let levels = v.levels(&raw.levels);
    let level_ids: Vec<String> = levels.iter().map(|l| l.id.to_string()).collect();
    let departments = v.departments(&raw.departments, &level_ids);
    let mut industries = Vec::new();
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    for ind in &raw.industries {
        v.unique(&mut seen, &ind.id, "industry");
        if ind.id.value == "other" {
            v.at(&ind.id.referenced, "industry id \"other\" is reserved for the other rule");
        }
        let codes = ind
            .codes
            .iter()
            .filter_map(|c| IndustryCode::parse(&c.value).map_err(|m| v.at(&c.referenced, m)).ok())
            .collect();
        let rules = v.rules(&ind.rules, &level_ids, &ind.id.value);
        industries.push(IndustryDefaults {
            id: ind.id.value.clone(),
            name: ind.name.clone(),
            codes,
            rules,
        });
    }
    let other_rules = v.rules(&raw.other.rules.value, &level_ids, "other");
    v.covers_every_grade(&raw.other, &other_rules);
    let escalation = v.escalation(raw.escalation.as_ref());
    let board = BoardSettings {
        title: raw.board.title.clone(),
        hotline: raw.board.hotline.clone(),
        supervisor: raw.board.supervisor.clone(),
    };
    if !v.errors.is_empty() {
        return Err(v.errors);
    }
    Ok(Defaults {
        id: raw.id.value,
        version: raw.version.value,
        name: raw.name,
        file: file.to_string(),
        digest: hex::encode(Sha256::digest(text.as_bytes()))[..12].to_string(),
        levels,
        board,
        departments,
        industries,
        other: IndustryDefaults {
            id: "other".into(),
            name: raw.other.name,
            codes: Vec::new(),
            rules: other_rules,
        },
        escalation,
    })
}

// ---------------------------------------------------------------------------------------------
// The file as written
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    id: Spanned<String>,
    version: Spanned<String>,
    name: String,
    levels: Spanned<Vec<RawLevel>>,
    board: RawBoard,
    #[serde(default)]
    departments: Vec<RawDepartment>,
    #[serde(default)]
    industries: Vec<RawIndustry>,
    other: RawOther,
    #[serde(default)]
    escalation: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLevel {
    id: Spanned<String>,
    name: String,
    ack_deadline_hours: Spanned<u32>,
    #[serde(default)]
    remind_before_hours: Option<Spanned<f64>>,
    #[serde(default)]
    escalate_every_hours: Option<Spanned<f64>>,
    #[serde(default)]
    in_place_after_start_hours: Option<Spanned<f64>>,
    reduction_target_percent: Spanned<RawPer>,
}

/// `{ so2: 10, nox: 10, … }`: a number per species, any left out, no other keys.
type RawPer = PartialPerSpecies<Option<Spanned<f64>>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBoard {
    title: String,
    hotline: String,
    supervisor: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDepartment {
    id: Spanned<String>,
    name: String,
    short_name: String,
    duties: Spanned<BTreeMap<String, Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIndustry {
    id: Spanned<String>,
    name: String,
    #[serde(default)]
    codes: Vec<Spanned<String>>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOther {
    name: String,
    rules: Spanned<Vec<RawRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    grades: Spanned<Vec<Spanned<String>>>,
    measures: Spanned<BTreeMap<String, Spanned<Vec<Spanned<RawMeasure>>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMeasure {
    kind: Spanned<String>,
    value: Option<Spanned<String>>,
    process: Option<String>,
    reduction: Option<Spanned<RawPer>>,
    #[serde(default)]
    note: String,
}

// ---------------------------------------------------------------------------------------------
// Validation: one method per rule a defaults file can break
// ---------------------------------------------------------------------------------------------

struct Validator<'a> {
    file: &'a str,
    errors: Vec<RegistryError>,
}

impl Validator<'_> {
    fn at(&mut self, loc: &Location, message: impl Into<String>) {
        self.errors.push(RegistryError::at(self.file, loc.line(), loc.column(), message));
    }

    /// Ids are unique within their kind.
    fn unique(&mut self, seen: &mut BTreeMap<String, u64>, id: &Spanned<String>, what: &str) {
        if let Some(first) = seen.get(&id.value) {
            let msg = format!("duplicate {what} id \"{}\" (first at line {first})", id.value);
            self.at(&id.referenced, msg);
        } else {
            seen.insert(id.value.clone(), id.referenced.line());
        }
    }

    /// Levels: at least one, unique ids, a positive deadline, targets for every pollutant in 0..=100.
    fn levels(&mut self, raw: &Spanned<Vec<RawLevel>>) -> Vec<LevelDefaults> {
        if raw.value.is_empty() {
            self.at(&raw.referenced, "levels must name at least one level");
        }
        let mut seen = BTreeMap::new();
        let mut out = Vec::new();
        for l in &raw.value {
            self.unique(&mut seen, &l.id, "level");
            if l.ack_deadline_hours.value == 0 {
                self.at(&l.ack_deadline_hours.referenced, "ack_deadline_hours must be above 0");
            }
            let mut target = PerSpecies::default();
            for p in Species::ALL {
                match l.reduction_target_percent.value.get(p).and_then(Option::as_ref) {
                    None => self.at(
                        &l.reduction_target_percent.referenced,
                        format!("reduction_target_percent of level {} has no {}", l.id.value, p.id()),
                    ),
                    Some(v) if !(0.0..=100.0).contains(&v.value) => {
                        self.at(&v.referenced, format!("reduction target {} % is outside 0..=100", v.value));
                    }
                    Some(v) => target[p] = v.value,
                }
            }
            let (remind_before_hours, escalate_every_hours) = self.reminder_timing(l);
            let in_place_after_start_hours = match &l.in_place_after_start_hours {
                Some(h) if !(h.value >= 0.0 && h.value.is_finite()) => {
                    self.at(&h.referenced, format!("in_place_after_start_hours {} must be 0 or more", h.value));
                    0.0
                }
                Some(h) => h.value,
                None => 0.0,
            };
            out.push(LevelDefaults {
                id: l.id.value.as_str().into(),
                name: l.name.clone(),
                ack_deadline_hours: l.ack_deadline_hours.value,
                remind_before_hours,
                escalate_every_hours,
                in_place_after_start_hours,
                target_percent: target,
            });
        }
        out
    }

    /// Reminder and escalation timing: the reminder falls inside the deadline, the interval is positive.
    fn reminder_timing(&mut self, l: &RawLevel) -> (f64, f64) {
        let deadline = f64::from(l.ack_deadline_hours.value);
        let remind = match &l.remind_before_hours {
            Some(r) if !(r.value > 0.0 && r.value < deadline) => {
                let msg = format!(
                    "remind_before_hours {} must be above 0 and below ack_deadline_hours ({deadline})",
                    r.value
                );
                self.at(&r.referenced, msg);
                0.0
            }
            Some(r) => r.value,
            None => (deadline / 2.0).min(1.0),
        };
        let every = match &l.escalate_every_hours {
            Some(e) if !(e.value > 0.0 && e.value.is_finite()) => {
                self.at(&e.referenced, format!("escalate_every_hours {} must be above 0", e.value));
                0.0
            }
            Some(e) => e.value,
            None => deadline,
        };
        (remind, every)
    }

    /// The escalation chain: known tiers, lowest first, each once; county → city → province when absent.
    fn escalation(&mut self, raw: Option<&Spanned<Vec<Spanned<String>>>>) -> Vec<Tier> {
        let Some(raw) = raw else {
            return vec![Tier::County, Tier::City, Tier::Province];
        };
        if raw.value.is_empty() {
            self.at(&raw.referenced, "escalation must name at least one tier (county, city, province)");
        }
        let mut out: Vec<Tier> = Vec::new();
        for t in &raw.value {
            let tier = match t.value.as_str() {
                "county" => Tier::County,
                "city" => Tier::City,
                "province" => Tier::Province,
                other => {
                    self.at(
                        &t.referenced,
                        format!("escalation: \"{other}\" is not a tier (county, city, province)"),
                    );
                    continue;
                }
            };
            // Tier orders Province < City < County: each step must be a higher tier than the one before.
            if out.last().is_some_and(|last| tier >= *last) {
                self.at(
                    &t.referenced,
                    format!("escalation: {tier} must come before the tiers above it, and only once"),
                );
                continue;
            }
            out.push(tier);
        }
        out
    }

    /// Departments: unique ids, a duty for every level and none for an unknown level.
    fn departments(&mut self, raw: &[RawDepartment], levels: &[String]) -> Vec<Department> {
        let mut seen = BTreeMap::new();
        let mut out = Vec::new();
        for d in raw {
            self.unique(&mut seen, &d.id, "department");
            self.per_level_keys(
                &d.duties.referenced,
                d.duties.value.iter().map(|(k, v)| (k, &v.referenced)),
                levels,
                &format!("duties of department {}", d.id.value),
            );
            out.push(Department {
                id: d.id.value.clone(),
                name: d.name.clone(),
                short_name: d.short_name.clone(),
                duties: d.duties.value.iter().map(|(k, v)| (k.clone(), v.value.clone())).collect(),
            });
        }
        out
    }

    /// A per-level map names every level and no other.
    fn per_level_keys<'k>(
        &mut self,
        map_at: &Location,
        keys: impl Iterator<Item = (&'k String, &'k Location)>,
        levels: &[String],
        what: &str,
    ) {
        let mut present = BTreeSet::new();
        for (k, at) in keys {
            if levels.contains(k) {
                present.insert(k.clone());
            } else {
                self.at(at, format!("{what}: unknown level \"{k}\" (levels: {})", levels.join(", ")));
            }
        }
        let missing: Vec<&str> = levels.iter().filter(|l| !present.contains(*l)).map(String::as_str).collect();
        if !missing.is_empty() {
            self.at(map_at, format!("{what}: no entry for level {}", missing.join(", ")));
        }
    }

    /// Rules of an industry: known grades, each grade at most once, every level, valid measures.
    fn rules(&mut self, raw: &[RawRule], levels: &[String], industry: &str) -> Vec<GradeRule> {
        let mut seen: BTreeMap<Grade, u64> = BTreeMap::new();
        let mut out = Vec::new();
        for r in raw {
            let mut grades = Vec::new();
            if r.grades.value.is_empty() {
                self.at(&r.grades.referenced, "grades must name at least one grade");
            }
            for g in &r.grades.value {
                match Grade::parse(&g.value) {
                    Err(e) => self.at(&g.referenced, e.to_string()),
                    Ok(grade) => {
                        if let Some(first) = seen.get(&grade) {
                            let msg = format!("grade {} of industry {industry} already has a rule (line {first})", grade.id());
                            self.at(&g.referenced, msg);
                        } else {
                            seen.insert(grade, g.referenced.line());
                            grades.push(grade);
                        }
                    }
                }
            }
            let what = format!("measures of industry {industry}");
            self.per_level_keys(
                &r.measures.referenced,
                r.measures.value.iter().map(|(k, v)| (k, &v.referenced)),
                levels,
                &what,
            );
            let mut measures = BTreeMap::new();
            for (level, list) in &r.measures.value {
                if list.value.is_empty() {
                    self.at(
                        &list.referenced,
                        format!("{what} at level {level}: the list is empty (use kind: self_determined)"),
                    );
                }
                let compiled: Vec<DefaultMeasure> = list.value.iter().filter_map(|m| self.measure(m)).collect();
                measures.insert(level.clone(), compiled);
            }
            out.push(GradeRule { grades, measures });
        }
        out
    }

    /// A measure: a known kind with a fitting value; reductions in 0..=1; a named process states
    /// its reduction when the kind implies one.
    fn measure(&mut self, raw: &Spanned<RawMeasure>) -> Option<DefaultMeasure> {
        let m = &raw.value;
        let kind = match MeasureKind::parse(&m.kind.value, m.value.as_ref().map(|v| v.value.as_str())) {
            Ok(k) => k,
            Err(msg) => {
                let at = m
                    .value
                    .as_ref()
                    .filter(|_| MeasureKind::IDS.contains(&m.kind.value.trim()))
                    .map_or(&m.kind.referenced, |v| &v.referenced);
                self.at(at, msg);
                return None;
            }
        };
        let reduction = match &m.reduction {
            Some(r) => {
                let mut out = PerSpecies::default();
                for p in Species::ALL {
                    if let Some(v) = r.value.get(p).and_then(Option::as_ref) {
                        if (0.0..=1.0).contains(&v.value) {
                            out[p] = v.value;
                        } else {
                            self.at(
                                &v.referenced,
                                format!("reduction {} of {} is outside 0..=1 (a fraction of the baseline)", v.value, p.id()),
                            );
                        }
                    }
                }
                out
            }
            None => {
                if m.process.is_some() && kind.implied_fraction().is_some() {
                    self.at(
                        &raw.referenced,
                        format!(
                            "measure {} on process {} needs its reduction (the kind's share would apply to the whole enterprise)",
                            kind.id(),
                            m.process.as_deref().unwrap_or_default()
                        ),
                    );
                }
                PerSpecies::splat(kind.implied_fraction().unwrap_or(0.0))
            }
        };
        Some(DefaultMeasure {
            kind,
            process: m.process.clone(),
            reduction,
            note: m.note.clone(),
        })
    }

    /// The `other` rule must cover every grade, so that every enterprise has a measure.
    fn covers_every_grade(&mut self, raw: &RawOther, rules: &[GradeRule]) {
        let missing: Vec<&str> = Grade::ALL
            .iter()
            .filter(|g| !rules.iter().any(|r| r.grades.contains(g)))
            .map(|g| g.id())
            .collect();
        if !missing.is_empty() {
            self.at(
                &raw.rules.referenced,
                format!("the other rule must cover every grade; missing: {}", missing.join(", ")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::region::RegionCode;
    use crate::registry::{Exemption, ExemptionKind, GradeRecord, Industry, LimitBaseline, Line, Measure, Uscc};

    fn enterprise(key: Option<&str>, grade: Grade) -> Enterprise {
        Enterprise {
            uscc: Uscc::from_parts("91", "141181", "MA0K3T7W").unwrap(),
            uscc_override: false,
            permit: None,
            name: "孝义市鹏飞焦化有限公司".into(),
            county: RegionCode::parse("141181").unwrap(),
            industry: Industry {
                code: IndustryCode::parse("3011").unwrap(),
                key: key.map(str::to_string),
            },
            grade: GradeRecord {
                grade,
                since: None,
                reason: String::new(),
            },
            grade_history: Vec::new(),
            exemption: None,
            baseline: PerSpecies::new([1.0, 2.0, 0.5, 0.1]),
            lines: vec![Line {
                id: "L1".into(),
                name: "熟料生产线".into(),
                capacity: 5000.0,
                unit: "t/d".into(),
                limit_baseline: LimitBaseline::default(),
            }],
            contacts: Vec::new(),
            measures: Vec::new(),
        }
    }

    fn kinds(d: &Defaults, e: &Enterprise, level: &str) -> Vec<String> {
        d.measures_for(e, level).iter().map(|m| m.text_zh.clone()).collect()
    }

    #[test]
    fn the_shipped_defaults_load() {
        let d = shanxi_defaults();
        assert_eq!(d.level_ids(), ["yellow", "orange", "red"]);
        for id in ["cement", "steel", "coking", "glass", "foundry", "lime"] {
            assert!(d.industry(id).is_some_and(|i| !i.rules.is_empty()), "{id}");
        }
        assert_eq!(d.level("red").unwrap().target_percent, PerSpecies::splat(30.0));
        assert!(d.ack_deadline("red").unwrap() < d.ack_deadline("yellow").unwrap());
        assert!(d.duties("orange").iter().any(|(dept, _)| dept.short_name == "住建"));
    }

    #[test]
    fn measures_follow_industry_grade_and_level() {
        let d = shanxi_defaults();
        let trucks = "停止使用国四及以下重型载货车辆（含燃气）进行物料运输";
        // (industry, grade, level, measures in Chinese, total SO2 fraction)
        type Case<'a> = (Option<&'a str>, Grade, &'a str, &'a [&'a str], f64);
        let table: &[Case] = &[
            (Some("cement"), Grade::A, "red", &["自主采取减排措施"], 0.0),
            (Some("cement"), Grade::APlus, "yellow", &["自主采取减排措施"], 0.0),
            (Some("cement"), Grade::Leading, "orange", &["自主采取减排措施"], 0.0),
            (Some("cement"), Grade::B, "yellow", &[trucks], 0.0),
            (Some("cement"), Grade::B, "orange", &["限产20%", trucks], 0.2),
            (Some("cement"), Grade::B, "red", &["停产", trucks], 1.0),
            (Some("cement"), Grade::C, "yellow", &["停产50%（以生产线计）", trucks], 0.5),
            (Some("cement"), Grade::C, "orange", &["停产", trucks], 1.0),
            (Some("cement"), Grade::D, "yellow", &["停产", "停止公路运输"], 1.0),
            (Some("coking"), Grade::B, "orange", &["出焦时间延长至36小时"], 0.3),
            (None, Grade::Ungraded, "yellow", &["限产30%"], 0.3),
            (None, Grade::Ungraded, "orange", &["限产50%"], 0.5),
            (None, Grade::Ungraded, "red", &["停产"], 1.0),
            (None, Grade::A, "red", &["自主采取减排措施"], 0.0),
            (None, Grade::D, "yellow", &["停产", "停止公路运输"], 1.0),
            // A key industry without rules of its own, and a grade its industry does not rate, use `other`.
            (Some("brick"), Grade::C, "yellow", &["停产50%（以生产线计）"], 0.5),
            (Some("brick"), Grade::B, "red", &["限产50%"], 0.5),
            (Some("cement"), Grade::NonLeading, "orange", &["限产50%"], 0.5),
            (Some("cement"), Grade::BMinus, "orange", &["停产50%（以生产线计）", trucks], 0.5),
        ];
        for (key, grade, level, want, so2) in table {
            let e = enterprise(*key, *grade);
            assert_eq!(kinds(d, &e, level), *want, "{key:?} {grade:?} {level}");
            let total = total_fraction(&d.measures_for(&e, level));
            assert!(
                (total[Species::So2] - so2).abs() < 1e-9,
                "{key:?} {grade:?} {level}: {}",
                total[Species::So2]
            );
        }
    }

    /// Each grade's total cut at a level, per pollutant, for an enterprise of this industry.
    fn cut(d: &Defaults, key: Option<&str>, grade: Grade, level: &str) -> PerSpecies {
        total_fraction(&d.measures_for(&enterprise(key, grade), level))
    }

    #[test]
    fn grades_get_distinct_defaults_b_limits_c_stops_and_the_cut_grows_with_the_grade() {
        let d = shanxi_defaults();
        let le = |a: PerSpecies, b: PerSpecies| Species::ALL.iter().all(|p| a[*p] <= b[*p] + 1e-9);
        let industries: Vec<Option<&str>> = std::iter::once(None)
            .chain(d.industries.iter().filter(|i| !i.rules.is_empty()).map(|i| Some(i.id.as_str())))
            .collect();
        for key in &industries {
            for level in d.level_ids() {
                // A/A+/引领性 ≤ B ≤ B- ≤ C ≤ D at every level, in every industry with rules and in the other rule.
                let chain = [Grade::A, Grade::B, Grade::BMinus, Grade::C, Grade::D].map(|g| cut(d, *key, g, level));
                for w in chain.windows(2) {
                    assert!(le(w[0], w[1]), "{key:?} {level}: {chain:?}");
                }
                assert!(chain[0].is_zero(), "A 自主减排: {key:?} {level}");
                assert_eq!(cut(d, *key, Grade::APlus, level), chain[0]);
                assert_eq!(cut(d, *key, Grade::Leading, level), chain[0]);
                assert_eq!(
                    d.measures_for(&enterprise(*key, Grade::NonLeading), level),
                    d.measures_for(&enterprise(*key, Grade::Ungraded), level)
                        .into_iter()
                        .map(|mut m| {
                            if let MeasureSource::IndustryDefault { grade, .. } | MeasureSource::OtherRule { grade } = &mut m.source {
                                *grade = Grade::NonLeading;
                            }
                            m
                        })
                        .collect::<Vec<_>>()
                );
            }
        }
        // The other rule (and so every key industry without rules of its own): six groups, six different
        // measure lists at every level, and a clear gap between B (以限代停) and C (以停代限).
        let groups = [Grade::A, Grade::B, Grade::BMinus, Grade::Ungraded, Grade::C, Grade::D];
        for level in d.level_ids() {
            let texts: Vec<Vec<String>> = groups.iter().map(|g| kinds(d, &enterprise(None, *g), level)).collect();
            for (i, a) in texts.iter().enumerate() {
                for b in &texts[i + 1..] {
                    assert_ne!(a, b, "{level}: {texts:?}");
                }
            }
            let (b, c) = (cut(d, None, Grade::B, level), cut(d, None, Grade::C, level));
            assert!(Species::ALL.iter().all(|p| c[*p] - b[*p] >= 0.3 - 1e-9), "{level}: B {b:?} C {c:?}");
            assert!(
                !kinds(d, &enterprise(None, Grade::B), level).iter().any(|k| k == "停产"),
                "B never stops whole"
            );
        }
        // In every industry with rules, B, B- and C differ at yellow and orange.
        for key in industries.iter().flatten() {
            for level in ["yellow", "orange"] {
                let [b, bm, c] = [Grade::B, Grade::BMinus, Grade::C].map(|g| kinds(d, &enterprise(Some(key), g), level));
                assert!(b != bm && bm != c && b != c, "{key} {level}: {b:?} {bm:?} {c:?}");
            }
        }
    }

    #[test]
    fn own_measures_laxer_than_the_grades_default_are_found_per_level_and_pollutant() {
        let d = shanxi_defaults();
        let mut e = enterprise(None, Grade::C);
        e.measures.push(Measure {
            level: "yellow".into(),
            line: None,
            kind: MeasureKind::LimitPercent(30.0),
            process: None,
            reduction: PerSpecies::new([0.3, 0.6, 0.3, 0.3]),
            note: String::new(),
        });
        e.measures.push(Measure {
            level: "red".into(),
            line: None,
            kind: MeasureKind::Stop,
            process: None,
            reduction: PerSpecies::splat(1.0),
            note: String::new(),
        });
        e.baseline[Species::Vocs] = 0.0; // emits no VOCs: not held to a VOCs cut
        let lax = d.laxities(&e);
        assert_eq!(lax.len(), 1, "{lax:#?}");
        assert_eq!(
            (lax[0].level.as_str(), lax[0].short.as_slice()),
            ("yellow", &[Species::So2, Species::Pm][..])
        );
        assert_eq!(lax[0].source, MeasureSource::OtherRule { grade: Grade::C });
        assert_eq!(
            d.laxity_message(&e, &lax[0]),
            format!(
                "enterprise {} 孝义市鹏飞焦化有限公司 (C级): its own measures at yellow (黄色预警) cut SO2 30%, PM 30% of its baseline, \
                 less than the 其他涉气企业C级默认措施 it would otherwise take (SO2 50%, PM 50%); an enterprise's 一厂一策 may not be \
                 laxer than its grade's default",
                e.uscc
            )
        );
        // The same measures on a B enterprise (default 限产20% at yellow) are no laxer.
        e.grade.grade = Grade::B;
        assert!(d.laxities(&e).is_empty());
    }

    #[test]
    fn own_measures_for_a_level_replace_the_default_and_the_exemption_comes_next() {
        let d = shanxi_defaults();
        let mut e = enterprise(Some("cement"), Grade::C);
        e.measures.push(Measure {
            level: "orange".into(),
            line: Some("L1".into()),
            kind: MeasureKind::LimitPercent(60.0),
            process: None,
            reduction: PerSpecies::splat(0.6),
            note: String::new(),
        });
        let orange = d.measures_for(&e, "orange");
        assert_eq!(orange.len(), 1);
        assert_eq!(
            (orange[0].source.clone(), orange[0].line_name.as_deref()),
            (MeasureSource::Own, Some("熟料生产线"))
        );
        assert!((orange[0].expected[Species::Nox] - 1.2).abs() < 1e-9);
        // No own measure at red: the cement default for C.
        assert!(matches!(d.measures_for(&e, "red")[0].source, MeasureSource::IndustryDefault { .. }));
        e.exemption = Some(Exemption {
            kind: ExemptionKind::Livelihood,
            max_load_percent: 70.0,
        });
        let red = d.measures_for(&e, "red");
        assert_eq!((red.len(), red[0].source.clone()), (1, MeasureSource::Exemption));
        assert!((red[0].fraction[Species::So2] - 0.3).abs() < 1e-9);
        assert_eq!(d.measures_for(&e, "orange")[0].source, MeasureSource::Own);
        assert!(d.measures_for(&e, "purple").is_empty());
    }

    #[test]
    fn expected_reductions_are_baseline_times_the_capped_sum_of_fractions() {
        let d = shanxi_defaults();
        let e = enterprise(Some("cement"), Grade::B);
        let red = d.expected_reduction(&e, "red");
        assert_eq!(red, e.baseline); // stop (1.0) + trucks (0) → everything
        let orange = d.expected_reduction(&e, "orange");
        assert!((orange[Species::Nox] - 0.4).abs() < 1e-9 && (orange[Species::Vocs] - 0.02).abs() < 1e-9);
    }

    const MINI: &str = "id: t\nversion: \"1\"\nname: t\nlevels:\n  - { id: yellow, name: 黄, ack_deadline_hours: 6, reduction_target_percent: { so2: 10, nox: 10, pm: 10, vocs: 10 } }\nboard: { title: t, hotline: \"12369\", supervisor: s }\n";

    fn errors(tail: &str) -> Vec<String> {
        match parse_defaults("m.yaml", &format!("{MINI}{tail}")) {
            Ok(_) => Vec::new(),
            Err(e) => e.iter().map(ToString::to_string).collect(),
        }
    }

    const OTHER: &str = "other:\n  name: o\n  rules:\n    - grades: [A+, A, B, B-, C, D, leading, non_leading, ungraded]\n      measures: { yellow: [ { kind: stop } ] }\n";

    #[test]
    fn a_minimal_defaults_file_loads() {
        assert_eq!(errors(OTHER), Vec::<String>::new());
    }

    #[test]
    fn defaults_errors_name_their_place() {
        let table: &[(&str, &str)] = &[
            (
                "other:\n  name: o\n  rules:\n    - grades: [A, B]\n      measures: { yellow: [ { kind: stop } ] }\n",
                "m.yaml:10:5: the other rule must cover every grade; missing: A+, B-, C, D, leading, non_leading, ungraded",
            ),
            (
                "industries:\n  - id: cement\n    name: c\n    rules:\n      - grades: [B, E]\n        measures: { yellow: [ { kind: stop } ] }\n",
                "m.yaml:11:21: unknown grade \"E\" (expected one of A+, A, B, B-, C, D, 引领性, 非引领性, 未分级)",
            ),
            (
                "industries:\n  - id: cement\n    name: c\n    rules:\n      - grades: [B]\n        measures: { yellow: [ { kind: limit_percent, value: 120 } ] }\n",
                "m.yaml:12:61: limit_percent 120 is over 100 %",
            ),
            (
                "industries:\n  - id: cement\n    name: c\n    rules:\n      - grades: [B]\n        measures: { red: [ { kind: stop } ] }\n",
                "m.yaml:12:26: measures of industry cement: unknown level \"red\" (levels: yellow)",
            ),
            (
                "industries:\n  - id: cement\n    name: c\n    rules:\n      - grades: [B]\n        measures: { yellow: [ { kind: stop } ] }\n      - grades: [B]\n        measures: { yellow: [ { kind: stop } ] }\n",
                "m.yaml:13:18: grade B of industry cement already has a rule (line 11)",
            ),
            (
                "industries:\n  - id: steel\n    name: s\n    rules:\n      - grades: [B]\n        measures: { yellow: [ { kind: stop, process: 烧结机 } ] }\n",
                "m.yaml:12:31: measure stop on process 烧结机 needs its reduction (the kind's share would apply to the whole enterprise)",
            ),
            (
                "industries:\n  - id: steel\n    name: s\n    rules:\n      - grades: [B]\n        measures: { yellow: [ { kind: stop, reduction: { so2: 2 } } ] }\n",
                "m.yaml:12:63: reduction 2 of so2 is outside 0..=1 (a fraction of the baseline)",
            ),
            (
                "departments:\n  - { id: police, name: 公安局, short_name: 公安, duties: { orange: x } }\n",
                "m.yaml:8:64: duties of department police: unknown level \"orange\" (levels: yellow)",
            ),
            (
                "colour: red\n",
                "m.yaml:7:1: unknown field `colour`, expected one of id, version, name, levels, board, departments, industries, other, escalation",
            ),
        ];
        for (tail, want) in table {
            let got = errors(&format!("{tail}{}", if tail.starts_with("other") { "" } else { OTHER }));
            assert!(got.iter().any(|g| g == want), "want {want}\n got {got:#?}");
        }
    }
    #[test]
    fn reminder_and_escalation_timing_default_sensibly_and_errors_name_their_place() {
        let d = parse_defaults("m.yaml", &format!("{MINI}{OTHER}")).unwrap();
        assert_eq!(d.remind_before("yellow"), Some(chrono::Duration::hours(1)));
        assert_eq!(d.escalate_every("yellow"), Some(chrono::Duration::hours(6)));
        assert_eq!(d.escalation, [Tier::County, Tier::City, Tier::Province]);
        let shipped = shanxi_defaults();
        for l in &shipped.levels {
            assert!(
                l.remind_before_hours > 0.0 && l.remind_before_hours < f64::from(l.ack_deadline_hours),
                "{}",
                l.id
            );
        }
        let timed = MINI.replace(
            "ack_deadline_hours: 6,",
            "ack_deadline_hours: 6, remind_before_hours: 6, escalate_every_hours: 0,",
        );
        let got: Vec<String> = parse_defaults("m.yaml", &format!("{timed}{OTHER}escalation: [city, county, state]\n"))
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        let want = [
            "m.yaml:5:72: remind_before_hours 6 must be above 0 and below ack_deadline_hours (6)",
            "m.yaml:5:97: escalate_every_hours 0 must be above 0",
            "m.yaml:12:20: escalation: county must come before the tiers above it, and only once",
            "m.yaml:12:28: escalation: \"state\" is not a tier (county, city, province)",
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn measures_in_place_are_due_at_the_start_unless_the_playbook_says_more_and_a_bad_value_names_its_place() {
        let d = parse_defaults("m.yaml", &format!("{MINI}{OTHER}")).unwrap();
        assert_eq!(d.in_place_after("yellow"), Some(chrono::Duration::zero()));
        // The shipped file says it for every level: in place by the start (domain.md §2.4).
        assert!(shanxi_defaults().levels.iter().all(|l| l.in_place_after_start_hours == 0.0));
        let later = MINI.replace("ack_deadline_hours: 6,", "ack_deadline_hours: 6, in_place_after_start_hours: 1.5,");
        let d = parse_defaults("m.yaml", &format!("{later}{OTHER}")).unwrap();
        assert_eq!(d.in_place_after("yellow"), Some(chrono::Duration::minutes(90)));
        let bad = MINI.replace("ack_deadline_hours: 6,", "ack_deadline_hours: 6, in_place_after_start_hours: -2,");
        let got: Vec<String> = parse_defaults("m.yaml", &format!("{bad}{OTHER}"))
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["m.yaml:5:79: in_place_after_start_hours -2 must be 0 or more"]);
    }

    #[test]
    fn a_playbook_level_without_defaults_is_reported_with_the_file_and_the_playbook() {
        let set = crate::domain::playbook::load_paths(&[std::path::PathBuf::from("playbooks")], crate::domain::region::Regions::shanxi())
            .unwrap();
        let full = shanxi_defaults().clone();
        assert!(
            unknown_levels("m.yaml", &full, &set).is_empty(),
            "the shipped defaults know every level"
        );
        let mut d = full.clone();
        d.levels.retain(|l| l.id != "yellow");
        let got = unknown_levels("m.yaml", &d, &set);
        assert!(!got.is_empty());
        assert!(
            got.iter().any(|m| m
                == "m.yaml: level \"yellow\" of playbook shanxi@2024.1 has no entry here (levels here: orange, red); its enterprises would get no measures and no deadline"),
            "{got:#?}"
        );
        assert!(got.iter().all(|m| m.contains("\"yellow\"")), "{got:#?}");
    }
}
