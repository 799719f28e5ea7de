//! Deterministic synthetic lists: the Shanxi seed (`seeds/registry/`) and the national benchmark
//! set (300,000 enterprises, about 1,000,000 line measures, about 3,000 counties).
//!
//! In: a size, a seed and a profile. Out: enterprises (an iterator, so 300,000 stream to CSV in
//! constant memory), written in the import format by [`write_csv`]; for Shanxi also a permit
//! register and whole-society emissions derived from the list. The same `(profile, n, seed)`
//! always gives the same bytes. The numbers here shape test data only; the rules that use them
//! live in the playbooks. The data tables are in `tables.rs`.
//!
//! Credit codes are valid: `91` (or `92` for a few sole traders) + the registering authority's
//! region code (usually the county, sometimes the city or province, in Shanxi sometimes a retired
//! code) + an organisation code with its GB 11714 check + the GB 32100 check character.
//!
//! Test and demo tooling, not part of the library: the `hazeflow-listgen` binary runs it, and the
//! benchmark examples compile this file in (`#[path]`) for [`generate`] and [`generate_shanxi`].
//! It names the library as `hazeflow::…` only, so that it compiles in both.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Write};
use std::path::Path;

use chrono::NaiveDate;
use hazeflow::domain::region::{Region, RegionCode, Regions, Tier};
use hazeflow::registry::import::{ENTERPRISES_HEADER, MEASURES_HEADER};
use hazeflow::registry::reports::{Permit, SOCIETY_COLUMNS, SocietyEmissions};
use hazeflow::registry::{
    Contact, EmailAddress, Enterprise, Exemption, ExemptionKind, Grade, GradeRecord, Industry, IndustryCode, LimitBaseline, Line, Measure,
    MeasureKind, PerSpecies, PermitNo, Phone, Species, Uscc, shanxi_defaults,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[path = "tables.rs"]
mod tables;

use tables::{COMPANY_FORMS, GIVEN, INDUSTRIES, MOBILE_PREFIXES, ORG_LETTERS, Role, SURNAMES, ZIHAO};

/// Which kind of list to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// Shanxi's real counties and industry geography; also writes permits and emissions.
    Shanxi,
    /// Every county-level unit of the national region table (about 2,850 real GB/T 2260 codes).
    National,
}

/// `n` national-profile enterprises for seed `seed`.
#[allow(dead_code, reason = "for the benchmark examples and the tests")]
pub fn generate(n: usize, seed: u64) -> Vec<Enterprise> {
    Generator::new(Profile::National, n, seed).collect()
}

/// `n` Shanxi-profile enterprises for seed `seed`.
#[allow(dead_code, reason = "for the benchmark examples and the tests")]
pub fn generate_shanxi(n: usize, seed: u64) -> Vec<Enterprise> {
    Generator::new(Profile::Shanxi, n, seed).collect()
}

// ---------------------------------------------------------------------------------------------
// The generator
// ---------------------------------------------------------------------------------------------

/// A county to place enterprises in: its code, name prefix, and the codes its enterprises may be
/// registered under.
struct Place {
    code: RegionCode,
    prefix: String,
    city: RegionCode,
    /// Retired codes that map to this county (Shanxi).
    aliases: Vec<RegionCode>,
}

/// Makes enterprises one at a time; see the module docs.
pub struct Generator {
    rng: StdRng,
    profile: Profile,
    remaining: usize,
    places: Vec<Place>,
    /// Per industry: cumulative weights over `places`.
    place_weights: Vec<Vec<u64>>,
    industry_weights: Vec<u64>,
    used: HashSet<Uscc>,
    own_share: f64,
    /// Per industry: cumulative grade weights.
    grade_weights: Vec<Vec<u64>>,
}

impl Generator {
    /// A generator of `n` enterprises.
    pub fn new(profile: Profile, n: usize, seed: u64) -> Generator {
        let rng = StdRng::seed_from_u64(seed);
        let places = match profile {
            Profile::Shanxi => shanxi_places(),
            Profile::National => national_places(),
        };
        let place_weights = INDUSTRIES
            .iter()
            .map(|ind| {
                let mut acc = 0u64;
                places
                    .iter()
                    .map(|p| {
                        let w = match profile {
                            Profile::Shanxi => ind.cities.iter().find(|(c, _)| *c == p.city.as_u32()).map_or(1, |(_, w)| *w),
                            Profile::National => 1,
                        };
                        acc += u64::from(w);
                        acc
                    })
                    .collect()
            })
            .collect();
        let mut acc = 0u64;
        let industry_weights = INDUSTRIES
            .iter()
            .map(|i| {
                acc += u64::from(if profile == Profile::Shanxi { i.weight.0 } else { i.weight.1 });
                acc
            })
            .collect();
        let own_share = if profile == Profile::Shanxi { 0.7 } else { 0.93 };
        Generator {
            rng,
            profile,
            remaining: n,
            places,
            place_weights,
            industry_weights,
            used: HashSet::with_capacity(n),
            own_share,
            grade_weights: INDUSTRIES.iter().map(|i| cumulative(&i.grades)).collect(),
        }
    }

    /// How many distinct counties enterprises are placed in.
    pub fn county_count(&self) -> usize {
        self.places.len()
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.random_range(0..items.len())]
    }

    fn log_uniform(&mut self, (lo, hi): (f64, f64)) -> f64 {
        if hi <= 0.0 {
            return 0.0;
        }
        let lo = lo.max(hi / 1000.0);
        let x = (lo.ln() + self.rng.random::<f64>() * (hi.ln() - lo.ln())).exp();
        round(x, 3)
    }

    fn org_body(&mut self) -> String {
        if self.rng.random_bool(0.6) {
            let mut s = String::from("MA");
            for _ in 0..6 {
                s.push(ORG_LETTERS[self.rng.random_range(0..ORG_LETTERS.len())] as char);
            }
            s
        } else {
            format!("{}{:07}", self.rng.random_range(1..=7), self.rng.random_range(0..10_000_000))
        }
    }

    fn uscc(&mut self, place: usize, kind: &str) -> Uscc {
        loop {
            let p = &self.places[place];
            let roll = self.rng.random::<f64>();
            let region = match self.profile {
                Profile::Shanxi if roll < 0.04 => p.code.province(),
                Profile::Shanxi if roll < 0.22 => p.city,
                Profile::Shanxi if roll < 0.32 && !p.aliases.is_empty() => p.aliases[self.rng.random_range(0..p.aliases.len())],
                Profile::National if roll < 0.15 => p.city,
                _ => p.code,
            };
            let body = self.org_body();
            if let Ok(u) = Uscc::from_parts(kind, &region.to_string(), &body)
                && self.used.insert(u)
            {
                return u;
            }
        }
    }

    fn person(&mut self) -> (String, String) {
        let (s, sp) = *self.pick(SURNAMES);
        let (g, gp) = *self.pick(GIVEN);
        (format!("{s}{g}"), format!("{sp}{gp}"))
    }

    fn phone(&mut self) -> Phone {
        let prefix = *self.pick(MOBILE_PREFIXES);
        let rest = self.rng.random_range(0..100_000_000u32);
        Phone::parse(&format!("{prefix}{rest:08}")).unwrap_or_else(|_| unreachable!("generated mobile numbers are valid"))
    }

    fn make(&mut self) -> Enterprise {
        let ind_idx = pick_cumulative(&mut self.rng, &self.industry_weights);
        let ind = &INDUSTRIES[ind_idx];
        let place = pick_cumulative(&mut self.rng, &self.place_weights[ind_idx]);
        let kind = if ind.key.is_none() && !ind.exempt && self.rng.random_bool(0.04) {
            "92"
        } else {
            "91"
        };
        let uscc = self.uscc(place, kind);
        let (zihao, zslug) = *self.pick(ZIHAO);
        let si = self.rng.random_range(0..ind.suffixes.len());
        let (suffix, sslug) = ind.suffixes[si];
        let form = *self.pick(COMPANY_FORMS);
        let prefix = self.places[place].prefix.clone();
        let name = if kind == "92" || suffix.ends_with('厂') {
            format!("{prefix}{zihao}{}厂", suffix.trim_end_matches('厂'))
        } else {
            format!("{prefix}{zihao}{suffix}{form}")
        };
        // Where there is one code per name ending, they go together (家具 → 2110).
        let code_text = if ind.codes.len() == ind.suffixes.len() {
            ind.codes[si]
        } else {
            *self.pick(ind.codes)
        };
        let code = IndustryCode::parse(code_text).unwrap_or_else(|_| unreachable!("industry codes in the table are valid"));
        let grade = Grade::ALL[pick_cumulative(&mut self.rng, &self.grade_weights[ind_idx])];
        let since = NaiveDate::from_ymd_opt(self.rng.random_range(2021..=2025), 10, 1);
        let reason = match grade {
            Grade::APlus | Grade::A | Grade::Leading => "绩效创A评审通过",
            Grade::D if self.rng.random_bool(0.3) => "违法排污降级",
            Grade::Ungraded => "",
            _ => "年度绩效分级",
        };
        let baseline = PerSpecies::from_fn(|p| self.log_uniform(ind.baseline[p.index()]));
        let exemption = ind.exempt.then(|| Exemption {
            kind: ExemptionKind::Livelihood,
            max_load_percent: f64::from(self.rng.random_range(6..=9u32) * 10),
        });
        let domain = format!("{zslug}-{sslug}.example.cn");
        let (pname, ppin) = self.person();
        let mut contacts = vec![Contact {
            role: ENTERPRISE_ROLE.to_string(),
            name: pname,
            email: EmailAddress::parse(&format!("{ppin}@{domain}")).ok(),
            phone: self.phone(),
            line: None,
        }];
        // Lines: numbered per kind (1#焦炉, 2#焦炉 …).
        let count = self.rng.random_range(ind.line_count.0..=ind.line_count.1) as usize;
        let count = if self.rng.random_bool(0.15) { count.max(2) } else { count };
        let mut lines = Vec::with_capacity(count);
        let mut roles = Vec::with_capacity(count);
        let mut numbers: BTreeMap<&str, u32> = BTreeMap::new();
        for i in 0..count {
            let k = if i < ind.lines.len() { &ind.lines[i] } else { self.pick(ind.lines) };
            let n = numbers.entry(k.name).or_insert(0);
            *n += 1;
            let capacity = round(self.rng.random_range(k.capacity.0..=k.capacity.1), 0);
            let figures = self.rng.random_bool(0.6);
            let limit_baseline = if figures {
                LimitBaseline {
                    eia: Some(capacity),
                    permit: self
                        .rng
                        .random_bool(0.7)
                        .then(|| round(capacity * self.rng.random_range(0.9..=1.0), 0)),
                    last_year: Some(round(capacity * self.rng.random_range(0.65..=1.0), 0)),
                }
            } else {
                LimitBaseline::default()
            };
            let id = format!("L{}", i + 1);
            lines.push(Line {
                id: id.clone(),
                name: format!("{n}#{}", k.name),
                capacity,
                unit: k.unit.to_string(),
                limit_baseline,
            });
            roles.push(k.role);
            if ind.key.is_some() && self.rng.random_bool(0.8) {
                let (cname, cpin) = self.person();
                let email = self
                    .rng
                    .random_bool(0.5)
                    .then(|| EmailAddress::parse(&format!("{cpin}@{domain}")).ok())
                    .flatten();
                contacts.push(Contact {
                    role: LINE_ROLE.to_string(),
                    name: cname,
                    email,
                    phone: self.phone(),
                    line: Some(id),
                });
            }
        }
        let permit = self.rng.random_bool(0.85).then(|| PermitNo::new(uscc, 1, 'P').ok()).flatten();
        let mut e = Enterprise {
            uscc,
            uscc_override: false,
            permit,
            name,
            county: self.places[place].code,
            industry: Industry {
                code,
                key: ind.key.map(str::to_string),
            },
            grade: GradeRecord {
                grade,
                since: if grade == Grade::Ungraded { None } else { since },
                reason: reason.to_string(),
            },
            grade_history: Vec::new(),
            exemption,
            baseline,
            lines,
            contacts,
            measures: Vec::new(),
        };
        if e.exemption.is_none() && self.rng.random_bool(self.own_share) {
            e.measures = own_measures(&e, &roles);
        }
        e
    }
}

impl Iterator for Generator {
    type Item = Enterprise;

    fn next(&mut self) -> Option<Enterprise> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        Some(self.make())
    }
}

const ENTERPRISE_ROLE: &str = "环保负责人";
const LINE_ROLE: &str = "工序责任人";
const LEVELS: [&str; 3] = ["yellow", "orange", "red"];

/// An index drawn with the weights whose running sums are `cumulative`.
fn pick_cumulative(rng: &mut StdRng, cumulative: &[u64]) -> usize {
    let total = *cumulative.last().unwrap_or(&1);
    let x = rng.random_range(0..total.max(1));
    cumulative.partition_point(|&c| c <= x)
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

fn cumulative(weights: &[u32]) -> Vec<u64> {
    let mut acc = 0u64;
    weights
        .iter()
        .map(|w| {
            acc += u64::from(*w);
            acc
        })
        .collect()
}

/// 一厂一策 per line and level, in the spirit of the defaults but line by line. Each measure's
/// reduction is the line's share of capacity (within its unit) times what the measure removes.
fn own_measures(e: &Enterprise, roles: &[Role]) -> Vec<Measure> {
    use MeasureKind::*;
    let grade = e.grade.grade;
    let mut out = Vec::new();
    if matches!(grade, Grade::APlus | Grade::A | Grade::Leading) {
        for level in LEVELS {
            out.push(measure(level, None, SelfDetermined, 0.0, "结合实际自主减排"));
        }
        return out;
    }
    let severe = matches!(grade, Grade::C | Grade::NonLeading | Grade::Ungraded);
    let total: f64 = e.lines.iter().map(|l| l.capacity).sum();
    for (line, role) in e.lines.iter().zip(roles) {
        let same_unit = e.lines.iter().all(|l| l.unit == line.unit);
        let share = if same_unit && total > 0.0 {
            line.capacity / total
        } else {
            1.0 / e.lines.len() as f64
        };
        for (i, level) in LEVELS.iter().enumerate() {
            let kind = if grade == Grade::D {
                Stop
            } else {
                match (role, severe) {
                    (Role::CokeOven, false) => ExtendCokingHours([28, 36, 48][i]),
                    (Role::CokeOven, true) => ExtendCokingHours([36, 48, 48][i]),
                    (Role::Sinter, false) => [LimitPercent(30.0), Stop, Stop][i].clone(),
                    (Role::Sinter, true) => Stop,
                    (Role::BlastFurnace, false) => [LimitPercent(10.0), LimitPercent(20.0), StopSharePercent(30.0)][i].clone(),
                    (Role::BlastFurnace, true) => [LimitPercent(20.0), StopSharePercent(50.0), StopSharePercent(50.0)][i].clone(),
                    (Role::Converter, false) => LimitPercent([10.0, 20.0, 30.0][i]),
                    (Role::Converter, true) => LimitPercent([20.0, 30.0, 50.0][i]),
                    (Role::Clinker, false) => [StopTrucksUpToStandard(4), LimitPercent(20.0), Stop][i].clone(),
                    (Role::Clinker, true) => [LimitPercent(50.0), Stop, Stop][i].clone(),
                    (Role::GlassFurnace, false) => LimitPercent([10.0, 20.0, 30.0][i]),
                    (Role::GlassFurnace, true) => LimitPercent([20.0, 30.0, 35.0][i]),
                    (Role::Melting | Role::LimeKiln, false) => [LimitPercent(30.0), Stop, Stop][i].clone(),
                    (Role::Melting | Role::LimeKiln, true) => Stop,
                    // As the other rule for the grade (playbooks/measures/shanxi.yaml).
                    (Role::Generic, _) => match grade {
                        Grade::B => LimitPercent([20.0, 30.0, 50.0][i]),
                        Grade::BMinus => LimitPercent([25.0, 40.0, 70.0][i]),
                        Grade::C => [StopSharePercent(50.0), Stop, Stop][i].clone(),
                        _ => [LimitPercent(30.0), LimitPercent(50.0), Stop][i].clone(),
                    },
                }
            };
            let removed = match &kind {
                ExtendCokingHours(h) => 1.0 - 20.0 / f64::from(*h),
                k => k.implied_fraction().unwrap_or(0.0),
            };
            let note = match role {
                Role::CokeOven => "以装煤量、出焦炉数核定",
                Role::Clinker | Role::LimeKiln | Role::GlassFurnace => "以用电量、燃料用量核定",
                _ => "以用电量核定",
            };
            out.push(measure(level, Some(&line.id), kind, round(share * removed, 4), note));
        }
    }
    // An enterprise's 一厂一策 may not cut less than its grade's default (`hazeflow check` says so): at a
    // level where these lines would, it keeps the default.
    let mut probe = e.clone();
    probe.measures = out;
    let defaults = shanxi_defaults();
    let lax: Vec<_> = defaults.laxities(&probe).into_iter().map(|l| l.level).collect();
    probe.measures.retain(|m| !lax.contains(&m.level));
    probe.measures
}

fn measure(level: &str, line: Option<&str>, kind: MeasureKind, fraction: f64, note: &str) -> Measure {
    Measure {
        level: level.into(),
        line: line.map(str::to_string),
        kind,
        process: None,
        reduction: PerSpecies::splat(fraction),
        note: note.to_string(),
    }
}

/// Shanxi's county-level units, with the name each enterprise's name starts with.
fn shanxi_places() -> Vec<Place> {
    places(Regions::shanxi(), Regions::shanxi().all())
}

/// Every county-level unit of the national region table (GB/T 2260, about 2,850), with the name
/// each enterprise's name starts with.
fn national_places() -> Vec<Place> {
    places(Regions::national(), Regions::national().everywhere())
}

/// The county-level units among `list`, each with its city, its retired codes and a name prefix
/// (the county's name without 市/县/区, or the city's short name and the county's name when
/// that leaves less than two characters, e.g. 阳泉城区).
fn places<'a>(regions: &Regions, list: impl Iterator<Item = &'a Region>) -> Vec<Place> {
    let short = |name: &str| -> String {
        let stripped = name.trim_end_matches(['市', '县', '区']);
        if stripped.chars().count() >= 2 {
            stripped.to_string()
        } else {
            String::new()
        }
    };
    list.filter(|r| r.tier == Tier::County)
        .map(|r| {
            let city = r.code.city().unwrap_or(r.code);
            let county_short = short(&r.name);
            let prefix = if county_short.is_empty() {
                format!("{}{}", short(&regions.name(city)), r.name)
            } else {
                county_short
            };
            let aliases = regions.aliases().filter(|a| a.current == r.code).map(|a| a.old).collect();
            Place {
                code: r.code,
                prefix,
                city,
                aliases,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Writing CSV
// ---------------------------------------------------------------------------------------------

/// How much was written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Enterprise rows.
    pub enterprises: usize,
    /// Line rows.
    pub lines: usize,
    /// Measure rows.
    pub measures: usize,
}

/// The `# ` header of a generated enterprises file.
pub fn enterprises_comment(source: &str) -> String {
    format!(
        "# Emergency reduction list (应急减排清单): enterprises, one row each. {source}\n\
         # Columns (src/registry/mod.rs has the full reference): uscc (GB 32100), uscc_override (1 = legal pilot code failing the checksum),\n\
         # permit_no (HJ 608), name, county (GB/T 2260), industry_code (GB/T 4754), key_industry (id in playbooks/measures/*.yaml),\n\
         # grade (A+ A B B- C D 引领性 非引领性 未分级), grade_since, grade_reason, exemption + exemption_max_load_percent (保障类),\n\
         # so2 nox pm vocs (baseline emissions 减排基数, t/day), contact_role contact_name contact_email contact_phone (责任人).\n"
    )
}

/// The `# ` header of a generated lines-and-measures file.
pub fn measures_comment(source: &str) -> String {
    format!(
        "# Emergency reduction list (应急减排清单): lines and one-factory-one-policy (一厂一策) measures. {source}\n\
         # record=line: uscc, line (id), name, capacity + unit (per day), eia_capacity permit_capacity last_year_output (limit baseline),\n\
         #   contact_name contact_phone contact_email (工序责任人).\n\
         # record=measure: uscc, line (empty = whole enterprise), level, measure (stop limit_percent stop_share_percent extend_coking_hours\n\
         #   stop_trucks_up_to_standard stop_road_transport cap_load_percent self_determined other), value, process,\n\
         #   so2 nox pm vocs (expected reduction, fraction of the enterprise's baseline), note.\n"
    )
}

/// A number without a trailing `.0` (`20`, `12.5`), as the library writes numbers (its
/// `registry::fmt_num` is crate-private); the seed files' bytes depend on it.
fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

fn opt_num(x: Option<f64>) -> String {
    x.map(fmt_num).unwrap_or_default()
}

/// Writes enterprises in the import format: `enterprises` and `measures` receive the two files,
/// each starting with its comment. Enterprise-wide contacts after the first are not written (the
/// CSV format has one 责任人 per row).
pub fn write_csv(
    enterprises: impl IntoIterator<Item = Enterprise>,
    e_out: impl Write,
    m_out: impl Write,
    source: &str,
    progress: &mut dyn FnMut(usize),
) -> io::Result<Written> {
    let mut e_out = io::BufWriter::with_capacity(1 << 16, e_out);
    let mut m_out = io::BufWriter::with_capacity(1 << 16, m_out);
    e_out.write_all(enterprises_comment(source).as_bytes())?;
    m_out.write_all(measures_comment(source).as_bytes())?;
    let mut ew = csv::Writer::from_writer(e_out);
    let mut mw = csv::Writer::from_writer(m_out);
    ew.write_record(ENTERPRISES_HEADER)?;
    mw.write_record(MEASURES_HEADER)?;
    let mut n = Written::default();
    let pct = |x: f64| fmt_num(x);
    for e in enterprises {
        let c = e.responsible();
        let uscc = e.uscc.to_string();
        let x = e.exemption.as_ref();
        let baseline = Species::ALL.map(|p| fmt_num(e.baseline[p]));
        ew.write_record(
            [
                uscc.as_str(),
                if e.uscc_override { "1" } else { "" },
                &e.permit.map(|p| p.to_string()).unwrap_or_default(),
                &e.name,
                &e.county.to_string(),
                &e.industry.code.to_string(),
                e.industry.key.as_deref().unwrap_or(""),
                e.grade.grade.id(),
                &e.grade.since.map(|d| d.to_string()).unwrap_or_default(),
                &e.grade.reason,
                x.map_or("", |x| x.kind.id()),
                &x.map(|x| pct(x.max_load_percent)).unwrap_or_default(),
            ]
            .into_iter()
            .chain(baseline.iter().map(String::as_str))
            .chain([
                c.map_or("", |c| c.role.as_str()),
                c.map_or("", |c| c.name.as_str()),
                c.and_then(|c| c.email.as_ref()).map_or("", |m| m.as_str()),
                c.map_or("", |c| c.phone.as_str()),
            ]),
        )?;
        for l in &e.lines {
            let lc = e.contacts.iter().find(|c| c.line.as_deref() == Some(&l.id));
            mw.write_record(
                [
                    uscc.as_str(),
                    "line",
                    &l.id,
                    &l.name,
                    &fmt_num(l.capacity),
                    &l.unit,
                    &opt_num(l.limit_baseline.eia),
                    &opt_num(l.limit_baseline.permit),
                    &opt_num(l.limit_baseline.last_year),
                    lc.map_or("", |c| c.name.as_str()),
                    lc.map_or("", |c| c.phone.as_str()),
                    lc.and_then(|c| c.email.as_ref()).map_or("", |m| m.as_str()),
                ]
                .into_iter()
                // The measure columns (level, measure, value, process, the species, note) stay empty.
                .chain(std::iter::repeat_n("", 5 + Species::COUNT)),
            )?;
            n.lines += 1;
        }
        for m in &e.measures {
            let reduction = Species::ALL.map(|p| fmt_num(m.reduction[p]));
            mw.write_record(
                [
                    uscc.as_str(),
                    "measure",
                    m.line.as_deref().unwrap_or_default(),
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    &m.level,
                    m.kind.id(),
                    &m.kind.value_text(),
                    m.process.as_deref().unwrap_or_default(),
                ]
                .into_iter()
                .chain(reduction.iter().map(String::as_str))
                .chain([m.note.as_str()]),
            )?;
            n.measures += 1;
        }
        n.enterprises += 1;
        if n.enterprises.is_multiple_of(10_000) {
            progress(n.enterprises);
        }
    }
    ew.flush()?;
    mw.flush()?;
    progress(n.enterprises);
    Ok(n)
}

/// Writes `enterprises.csv` and `measures.csv` into `dir` (created if needed).
pub fn write_dir(
    enterprises: impl IntoIterator<Item = Enterprise>,
    dir: &Path,
    source: &str,
    progress: &mut dyn FnMut(usize),
) -> io::Result<Written> {
    std::fs::create_dir_all(dir)?;
    let e = std::fs::File::create(dir.join("enterprises.csv"))?;
    let m = std::fs::File::create(dir.join("measures.csv"))?;
    write_csv(enterprises, e, m, source, progress)
}

// ---------------------------------------------------------------------------------------------
// Permit register and whole-society emissions for the Shanxi seed
// ---------------------------------------------------------------------------------------------

/// A permit register that mostly matches the list: about 3 % of the list has no permit, about 3 %
/// a second site; about 2 % of the air-emitting holders are missing from the list; a few dozen
/// names, counties and industry classes differ; some holders emit to water only.
pub fn permits_for(list: &[Enterprise], seed: u64) -> Vec<Permit> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5045_524d);
    let regions = Regions::shanxi();
    let mut out = Vec::new();
    for e in list {
        if rng.random_bool(0.03) {
            continue;
        }
        let roll = rng.random::<f64>();
        let mut name = e.name.clone();
        let mut county = e.county;
        let mut code = e.industry.code;
        if roll < 0.006 {
            name = registered_form_changed(&e.name);
        } else if roll < 0.010 {
            let siblings: Vec<RegionCode> = e
                .county
                .city()
                .map(|c| regions.children(c))
                .unwrap_or_default()
                .into_iter()
                .filter(|c| *c != e.county)
                .collect();
            if let Some(c) = siblings.get(rng.random_range(0..siblings.len().max(1))) {
                county = *c;
            }
        } else if roll < 0.014 {
            code = IndustryCode::parse(if code.to_string() == "3391" { "3392" } else { "3399" }).unwrap_or(code);
        }
        let management = if e.industry.key.is_some() {
            "重点管理"
        } else if rng.random_bool(0.5) {
            "简化管理"
        } else {
            "登记管理"
        };
        let sites = if rng.random_bool(0.03) { 2 } else { 1 };
        for site in 1..=sites {
            if let Ok(permit_no) = PermitNo::new(e.uscc, site, 'P') {
                out.push(Permit {
                    permit_no,
                    name: name.clone(),
                    county,
                    industry_code: code,
                    air_emitting: true,
                    management: management.to_string(),
                });
            }
        }
    }
    // Holders missing from the list (应纳未纳), and water-only holders that need not be on it.
    let extra = Generator::new(
        Profile::Shanxi,
        (list.len() / 50).max(1) + (list.len() / 100).max(1),
        seed ^ 0x4d49_5353,
    );
    let missing = (list.len() / 50).max(1);
    for (i, e) in extra.enumerate() {
        if list.iter().any(|x| x.uscc == e.uscc) {
            continue;
        }
        let air = i < missing;
        let (name, code) = if air {
            (e.name.clone(), e.industry.code)
        } else {
            (
                format!("{}污水处理厂", regions.name(e.county)),
                IndustryCode::parse("4620").unwrap_or(e.industry.code),
            )
        };
        if let Ok(permit_no) = PermitNo::new(e.uscc, 1, 'P') {
            out.push(Permit {
                permit_no,
                name,
                county: e.county,
                industry_code: code,
                air_emitting: air,
                management: "简化管理".to_string(),
            });
        }
    }
    out.sort_by_key(|p| p.permit_no);
    out
}

/// The name after a change of legal form, as a register that lags behind shows it.
fn registered_form_changed(name: &str) -> String {
    for (from, to) in [
        ("股份有限公司", "有限公司"),
        ("有限责任公司", "有限公司"),
        ("有限公司", "有限责任公司"),
        ("厂", "有限公司"),
    ] {
        if let Some(stem) = name.strip_suffix(from) {
            return format!("{stem}{to}");
        }
    }
    format!("{name}有限公司")
}

/// Writes a permit register in the format [`hazeflow::registry::reports::parse_permits`] reads.
pub fn write_permits(permits: &[Permit], out: impl Write, source: &str) -> io::Result<()> {
    let mut out = io::BufWriter::new(out);
    writeln!(
        out,
        "# Emission permit register (排污许可证) sample for the coverage check. {source}"
    )?;
    writeln!(
        out,
        "# Columns: permit_no (HJ 608), name, county (GB/T 2260), industry_code (GB/T 4754), air_emitting (1 = 涉气), management (管理类别)."
    )?;
    let mut w = csv::Writer::from_writer(out);
    w.write_record(["permit_no", "name", "county", "industry_code", "air_emitting", "management"])?;
    for p in permits {
        w.write_record([
            p.permit_no.to_string().as_str(),
            &p.name,
            &p.county.to_string(),
            &p.industry_code.to_string(),
            if p.air_emitting { "1" } else { "0" },
            &p.management,
        ])?;
    }
    w.flush()
}

/// Illustrative whole-society emissions per city: the list's baseline over an assumed industrial
/// share per pollutant (SO2 60 %, NOx 50 %, PM 45 %, VOCs 45 %; ±20 % by city), rounded to
/// 0.1 t/day. Not an inventory: marked [B] in the file.
pub fn society_for(list: &[Enterprise], seed: u64) -> SocietyEmissions {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x534f_4349);
    let mut sums: BTreeMap<RegionCode, PerSpecies> = BTreeMap::new();
    for e in list {
        let city = e.county.city().unwrap_or(e.county);
        let s = sums.entry(city).or_default();
        *s += e.baseline;
    }
    let shares = PerSpecies::new([0.60, 0.50, 0.45, 0.45]);
    sums.into_iter()
        .map(|(city, s)| {
            let mut out = PerSpecies::default();
            for p in Species::ALL {
                let share = shares[p] * rng.random_range(0.8..=1.2);
                out[p] = round(s[p] / share, 1).max(0.1);
            }
            (city, out)
        })
        .collect()
}

/// Writes whole-society emissions in the format [`hazeflow::registry::reports::parse_society`] reads.
pub fn write_society(society: &SocietyEmissions, out: impl Write, source: &str) -> io::Result<()> {
    let mut out = io::BufWriter::new(out);
    writeln!(
        out,
        "# Whole-society emissions (全社会排放量) per city, t/day: the base of the 10/20/30 % reduction targets."
    )?;
    writeln!(out, "# [B] ILLUSTRATIVE numbers, not an emission inventory: {source}")?;
    writeln!(out, "# Columns: region (GB/T 2260), {} (t/day).", Species::IDS.join(", "))?;
    let mut w = csv::Writer::from_writer(out);
    w.write_record(SOCIETY_COLUMNS)?;
    for (r, v) in society {
        w.write_record(std::iter::once(r.to_string()).chain(v.iter().map(|(_, x)| fmt_num(x))))?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use hazeflow::registry::import::{ImportOptions, import_csv};

    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_list_and_every_code_is_valid() {
        let a = generate(300, 7);
        let b = generate(300, 7);
        assert_eq!(a, b);
        assert_ne!(a, generate(300, 8));
        let mut seen = HashSet::new();
        for e in &a {
            assert!(e.uscc.checksum_ok() && e.uscc.org_code_check_ok(), "{}", e.uscc);
            assert!(seen.insert(e.uscc));
            assert_eq!(e.county.tier(), Tier::County);
        }
    }

    #[test]
    fn a_generated_list_round_trips_through_csv() {
        for (profile, regions) in [(Profile::National, Regions::national()), (Profile::Shanxi, Regions::shanxi())] {
            let list: Vec<Enterprise> = Generator::new(profile, 400, 11).collect();
            let (mut e, mut m) = (Vec::new(), Vec::new());
            write_csv(list.clone(), &mut e, &mut m, "test", &mut |_| {}).unwrap();
            let (e, m) = (String::from_utf8(e).unwrap(), String::from_utf8(m).unwrap());
            let opts = ImportOptions {
                defaults: shanxi_defaults(),
                regions: Some(regions),
            };
            let back = import_csv(("enterprises.csv", &e), Some(("measures.csv", &m)), &opts, &mut |_, _| {}).unwrap();
            assert_eq!(back, list, "{profile:?}");
        }
    }

    #[test]
    fn a_generated_list_round_trips_through_json() {
        // The store keeps enterprises as JSON documents.
        let list = generate_shanxi(300, 5);
        let text = serde_json::to_string(&list).unwrap();
        let back: Vec<Enterprise> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, list);
        assert!(text.contains(r#""kind":"limit_percent","value":30.0"#) || text.contains(r#""kind":"stop""#));
    }

    #[test]
    fn the_national_profile_spans_every_real_county_and_3_measures_per_enterprise() {
        let g = Generator::new(Profile::National, 3000, 2026);
        let counties = Regions::national().everywhere().filter(|r| r.tier == Tier::County).count();
        assert_eq!(g.county_count(), counties);
        assert!(counties >= 2_800, "{counties}");
        let list: Vec<Enterprise> = g.collect();
        for e in &list {
            assert!(
                Regions::national().get(e.county).is_some_and(|r| r.code == e.county),
                "{}",
                e.county
            );
        }
        let measures: usize = list.iter().map(|e| e.measures.len()).sum();
        let per = measures as f64 / list.len() as f64;
        assert!((2.8..=4.0).contains(&per), "{per}");
    }

    #[test]
    fn the_permit_register_mostly_matches_the_list() {
        let list = generate_shanxi(1000, 3);
        let permits = permits_for(&list, 3);
        let holders: HashSet<Uscc> = permits.iter().filter(|p| p.air_emitting).map(|p| p.permit_no.uscc()).collect();
        let missing = holders.iter().filter(|u| !list.iter().any(|e| e.uscc == **u)).count();
        assert!((10..=30).contains(&missing), "{missing}");
    }
}
