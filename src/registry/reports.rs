//! Reports on the list (pure): coverage against the permit register, expected reductions against
//! the 10/20/30 % targets, and the notice board (公示牌) text.
//!
//! In: a [`ListVersion`], the [`Defaults`], a permit register and whole-society emissions (CSV,
//! parsed here), the region table, a board template. Out: [`CoverageReport`],
//! [`ReductionReport`], the board as text. No files are read here except through the callers.
//!
//! Permit register CSV (`permits.csv`): `permit_no` (HJ 608; pilot codes accepted),
//! `name`, `county`, `industry_code` (required), `air_emitting` (`1`/`0`, default `1`: only
//! air-emitting holders must be on the list), `management` (重点管理 / 简化管理 / 登记管理, free text).
//!
//! Whole-society emissions CSV (`whole_society_emissions.csv`): `region,so2,nox,pm,vocs`, t/day,
//! one row per region (usually per city); the targets are a share of these.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use super::defaults::total_fraction;
use super::import::read_table;
use super::types::fmt_num;
use super::{Defaults, Enterprise, IndustryCode, ListVersion, PerSpecies, PermitNo, RegistryError, Species, Uscc};
use crate::domain::level::LevelId;
use crate::domain::region::{RegionCode, Regions};

// ---------------------------------------------------------------------------------------------
// Permit register and coverage
// ---------------------------------------------------------------------------------------------

/// One permit of the register (排污许可证).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Permit {
    /// Permit number; its USCC is the holder.
    pub permit_no: PermitNo,
    /// Holder's name as registered.
    pub name: String,
    /// County code as registered.
    pub county: RegionCode,
    /// GB/T 4754 class (主行业).
    pub industry_code: IndustryCode,
    /// Whether the site emits to air (涉气).
    pub air_emitting: bool,
    /// Management class, as written.
    pub management: String,
}

const PERMIT_COLUMNS: &[&str] = &["permit_no", "name", "county", "industry_code", "air_emitting", "management"];

/// Parses a permit register; every problem is reported.
pub fn parse_permits(file: &str, text: &str) -> Result<Vec<Permit>, Vec<RegistryError>> {
    let rows = read_table(file, text, PERMIT_COLUMNS, &["permit_no", "name", "county", "industry_code"])?;
    let mut errors = Vec::new();
    let mut out = Vec::new();
    let mut seen: HashMap<PermitNo, u64> = HashMap::new();
    for row in &rows {
        let mut need = |col: usize, what: &str| {
            let v = row.get(col);
            if v.is_none() {
                errors.push(row.err(file, col, format!("{what} is empty")));
            }
            v
        };
        let (p, n, c, i) = (need(0, "permit_no"), need(1, "name"), need(2, "county"), need(3, "industry_code"));
        let permit = p.and_then(|p| {
            PermitNo::parse_with_override(p)
                .map_err(|e| errors.push(row.err(file, 0, e.to_string())))
                .ok()
        });
        let county = c.and_then(|c| RegionCode::parse(c).map_err(|e| errors.push(row.err(file, 2, e.to_string()))).ok());
        let industry = i.and_then(|i| IndustryCode::parse(i).map_err(|e| errors.push(row.err(file, 3, e))).ok());
        let air = match row.get(4) {
            None | Some("1") => Some(true),
            Some("0") => Some(false),
            Some(x) => {
                errors.push(row.err(file, 4, format!("air_emitting must be 1 or 0, got \"{x}\"")));
                None
            }
        };
        if let Some(p) = permit {
            if let Some(first) = seen.get(&p) {
                errors.push(row.err(file, 0, format!("duplicate permit number {p} (first at line {first})")));
                continue;
            }
            seen.insert(p, row.line);
        }
        if let (Some(permit_no), Some(name), Some(county), Some(industry_code), Some(air_emitting)) = (permit, n, county, industry, air) {
            out.push(Permit {
                permit_no,
                name: name.to_string(),
                county,
                industry_code,
                air_emitting,
                management: row.get(5).unwrap_or_default().to_string(),
            });
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// An air-emitting permit holder that is not on the list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MissingHolder {
    /// The holder.
    pub uscc: Uscc,
    /// Its permit numbers.
    pub permits: Vec<PermitNo>,
    /// Its name in the register.
    pub name: String,
    /// County in the register.
    pub county: RegionCode,
    /// Industry in the register.
    pub industry_code: IndustryCode,
}

/// A field where the list and the register disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    /// The enterprise.
    pub uscc: Uscc,
    /// `name`, `county` or `industry`.
    pub field: String,
    /// The value on the list.
    pub list: String,
    /// The value(s) in the register.
    pub permit: String,
}

/// Coverage of the list against the permit register (清单与排污许可一致性).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoverageReport {
    /// Permits in the register.
    pub permits: usize,
    /// Distinct air-emitting holders.
    pub air_emitting_holders: usize,
    /// Of those, how many are on the list.
    pub covered: usize,
    /// Air-emitting holders missing from the list (应纳未纳).
    pub missing: Vec<MissingHolder>,
    /// Disagreements on name, county or industry.
    pub mismatches: Vec<Mismatch>,
    /// Enterprises on the list with no permit in the register.
    pub without_permit: Vec<Uscc>,
}

impl CoverageReport {
    /// Share of air-emitting holders on the list, 0..=1 (1 when there are none).
    pub fn coverage(&self) -> f64 {
        if self.air_emitting_holders == 0 {
            1.0
        } else {
            self.covered as f64 / self.air_emitting_holders as f64
        }
    }
}

/// Names compare after removing spaces and unifying full- and half-width brackets.
fn normalise_name(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '(' => '（',
            ')' => '）',
            c => c,
        })
        .collect()
}

/// Compares the list with the register: air-emitting holders missing from the list, and, for
/// holders on it, a name differing from the register's, a county none of its permits is in, an
/// industry class none of its permits has. Retired county codes are resolved first.
pub fn coverage(list: &ListVersion, permits: &[Permit], regions: Option<&Regions>) -> CoverageReport {
    let resolve = |c: RegionCode| regions.and_then(|r| r.resolve(c)).unwrap_or(c);
    let mut by_holder: BTreeMap<Uscc, Vec<&Permit>> = BTreeMap::new();
    for p in permits {
        by_holder.entry(p.permit_no.uscc()).or_default().push(p);
    }
    let mut report = CoverageReport {
        permits: permits.len(),
        air_emitting_holders: 0,
        covered: 0,
        missing: Vec::new(),
        mismatches: Vec::new(),
        without_permit: Vec::new(),
    };
    for (uscc, ps) in &by_holder {
        let air = ps.iter().any(|p| p.air_emitting);
        if air {
            report.air_emitting_holders += 1;
        }
        let Some(e) = list.get(uscc) else {
            if air {
                let first = ps[0];
                report.missing.push(MissingHolder {
                    uscc: *uscc,
                    permits: ps.iter().map(|p| p.permit_no).collect(),
                    name: first.name.clone(),
                    county: first.county,
                    industry_code: first.industry_code,
                });
            }
            continue;
        };
        if air {
            report.covered += 1;
        }
        let mut mismatch = |field: &str, list: String, permit: String| {
            report.mismatches.push(Mismatch {
                uscc: *uscc,
                field: field.to_string(),
                list,
                permit,
            });
        };
        if normalise_name(&e.name) != normalise_name(&ps[0].name) {
            mismatch("name", e.name.clone(), ps[0].name.clone());
        }
        if !ps.iter().any(|p| resolve(p.county) == resolve(e.county)) {
            let theirs: BTreeSet<String> = ps.iter().map(|p| p.county.to_string()).collect();
            mismatch("county", e.county.to_string(), theirs.into_iter().collect::<Vec<_>>().join(";"));
        }
        if !ps.iter().any(|p| p.industry_code == e.industry.code) {
            let theirs: BTreeSet<String> = ps.iter().map(|p| p.industry_code.to_string()).collect();
            mismatch(
                "industry",
                e.industry.code.to_string(),
                theirs.into_iter().collect::<Vec<_>>().join(";"),
            );
        }
    }
    report.without_permit = list
        .enterprises
        .iter()
        .filter(|e| !by_holder.contains_key(&e.uscc))
        .map(|e| e.uscc)
        .collect();
    report
}

// ---------------------------------------------------------------------------------------------
// Whole-society emissions and reductions
// ---------------------------------------------------------------------------------------------

/// Whole-society emissions (全社会排放量) per region, t/day.
pub type SocietyEmissions = BTreeMap<RegionCode, PerSpecies>;

/// The columns of the whole-society emissions file: `region` and the species.
pub const SOCIETY_COLUMNS: [&str; 1 + Species::COUNT] = super::species::columns_around_species(&["region"], &[]);

/// Parses whole-society emissions: `region,so2,nox,pm,vocs` ([`SOCIETY_COLUMNS`]), numbers ≥ 0, one
/// row per region.
pub fn parse_society(file: &str, text: &str) -> Result<SocietyEmissions, Vec<RegistryError>> {
    let columns = SOCIETY_COLUMNS;
    let rows = read_table(file, text, &columns, &columns)?;
    let mut errors = Vec::new();
    let mut out = SocietyEmissions::new();
    let mut lines: BTreeMap<RegionCode, u64> = BTreeMap::new();
    for row in &rows {
        let region = match row.get(0).map(RegionCode::parse) {
            Some(Ok(r)) => Some(r),
            Some(Err(e)) => {
                errors.push(row.err(file, 0, e.to_string()));
                None
            }
            None => {
                errors.push(row.err(file, 0, "region is empty"));
                None
            }
        };
        let mut values = PerSpecies::default();
        for (i, p) in Species::ALL.into_iter().enumerate() {
            match row.get(i + 1).map(|t| (t, t.parse::<f64>())) {
                Some((_, Ok(x))) if x.is_finite() && x >= 0.0 => values[p] = x,
                Some((t, _)) => errors.push(row.err(file, i + 1, format!("{} \"{t}\" must be a number ≥ 0 (t/day)", p.id()))),
                None => errors.push(row.err(file, i + 1, format!("{} is empty", p.id()))),
            }
        }
        if let Some(r) = region {
            if let Some(first) = lines.get(&r) {
                errors.push(row.err(file, 0, format!("duplicate region {r} (first at line {first})")));
            }
            lines.insert(r, row.line);
            out.insert(r, values);
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// One region at one level: expected reduction against the target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReductionRow {
    /// The region (a row of the whole-society table).
    pub region: RegionCode,
    /// Its name.
    pub region_name: String,
    /// Level id.
    pub level: LevelId,
    /// Enterprises of the list in the region.
    pub enterprises: usize,
    /// Their baseline emissions, t/day.
    pub baseline: PerSpecies,
    /// Whole-society emissions, t/day.
    pub society: PerSpecies,
    /// Target, % of whole-society emissions.
    pub target_percent: PerSpecies,
    /// Target, t/day.
    pub target: PerSpecies,
    /// Expected reduction of the list's measures, t/day.
    pub expected: PerSpecies,
    /// Pollutants whose expected reduction falls short of the target.
    pub short: Vec<Species>,
}

/// Expected reductions per region and level (减排量核算).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReductionReport {
    /// One row per region and level, by region then level.
    pub rows: Vec<ReductionRow>,
    /// `(region, level)` pairs that fall short on some pollutant.
    pub short: Vec<(RegionCode, String)>,
    /// Cities with enterprises on the list but no whole-society emissions.
    pub without_society: Vec<RegionCode>,
}

/// Whether `code` is `ancestor` or lies below it: by the table when both are known, else by the
/// code digits (synthetic lists).
fn within(regions: &Regions, code: RegionCode, ancestor: RegionCode) -> bool {
    if regions.contains(code) && regions.contains(ancestor) {
        return regions.is_within(code, ancestor);
    }
    code == ancestor || code.city() == Some(ancestor) || code.province() == ancestor
}

/// For each region of the whole-society table (those within `region` when given, and those
/// containing it) and each level (or just `level`): the list's expected reduction per pollutant
/// (each enterprise's baseline × the capped sum of its measures' fractions) against the target
/// (whole-society emissions × the level's target %), and which fall short.
pub fn reductions(
    list: &ListVersion,
    defaults: &Defaults,
    society: &SocietyEmissions,
    level: Option<&str>,
    region: Option<RegionCode>,
    regions: &Regions,
) -> ReductionReport {
    let levels: Vec<&str> = defaults.level_ids().into_iter().filter(|l| level.is_none_or(|x| x == *l)).collect();
    let rows_of: Vec<RegionCode> = society
        .keys()
        .copied()
        .filter(|r| region.is_none_or(|f| within(regions, *r, f) || within(regions, f, *r)))
        .collect();
    // One pass over the list: each enterprise adds to every row region that contains it.
    let mut acc: BTreeMap<RegionCode, (usize, PerSpecies, Vec<PerSpecies>)> = rows_of
        .iter()
        .map(|r| (*r, (0, PerSpecies::default(), vec![PerSpecies::default(); levels.len()])))
        .collect();
    let mut uncovered: BTreeSet<RegionCode> = BTreeSet::new();
    for e in &list.enterprises {
        let candidates = [Some(e.county), e.county.city(), Some(e.county.province())];
        let mut counted = false;
        let per_level: Vec<PerSpecies> = levels.iter().map(|l| reduction_of(defaults, e, l)).collect();
        for r in candidates.into_iter().flatten() {
            if let Some((n, base, sums)) = acc.get_mut(&r) {
                *n += 1;
                *base += e.baseline;
                for (s, x) in sums.iter_mut().zip(&per_level) {
                    *s += *x;
                }
                counted = true;
            }
        }
        let in_scope = region.is_none_or(|f| within(regions, e.county, f));
        if !counted && in_scope && !society.keys().any(|r| within(regions, e.county, *r)) {
            uncovered.insert(e.county.city().unwrap_or(e.county));
        }
    }
    let mut report = ReductionReport {
        rows: Vec::new(),
        short: Vec::new(),
        without_society: uncovered.into_iter().collect(),
    };
    for (r, (n, baseline, sums)) in acc {
        let soc = society[&r];
        for (l, expected) in levels.iter().zip(sums) {
            let target_percent = defaults.level(l).map_or_else(PerSpecies::default, |x| x.target_percent);
            let target = soc.zip(&target_percent, |s, t| s * t / 100.0);
            let short: Vec<Species> = Species::ALL
                .into_iter()
                .filter(|p| target[*p] > 0.0 && expected[*p] + 1e-9 < target[*p])
                .collect();
            if !short.is_empty() {
                report.short.push((r, l.to_string()));
            }
            report.rows.push(ReductionRow {
                region: r,
                region_name: regions.name(r),
                level: (*l).into(),
                enterprises: n,
                baseline,
                society: soc,
                target_percent,
                target,
                expected,
                short,
            });
        }
    }
    report
}

fn reduction_of(defaults: &Defaults, e: &Enterprise, level: &str) -> PerSpecies {
    e.baseline * total_fraction(&defaults.measures_for(e, level))
}

// ---------------------------------------------------------------------------------------------
// Notice board (公示牌)
// ---------------------------------------------------------------------------------------------

/// The shipped board template (`playbooks/templates/board.txt.j2`), for when no file is given.
pub const BOARD_TEMPLATE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/templates/board.txt.j2"));

/// What the board template sees. Field names are the template's interface.
#[derive(Debug, Clone, Serialize)]
pub struct BoardContext {
    /// Board title.
    pub title: String,
    /// Hotline (12369).
    pub hotline: String,
    /// Supervising bureau (`吕梁市生态环境局`).
    pub supervisor: String,
    /// The enterprise.
    pub enterprise: BoardEnterprise,
    /// Lines.
    pub lines: Vec<BoardLine>,
    /// Measures per level, lowest level first.
    pub levels: Vec<BoardLevel>,
    /// The 责任人.
    pub responsible: Option<BoardContact>,
    /// Line contacts (工序责任人).
    pub line_contacts: Vec<BoardContact>,
}

/// The enterprise on the board.
#[derive(Debug, Clone, Serialize)]
pub struct BoardEnterprise {
    /// Name.
    pub name: String,
    /// Credit code.
    pub uscc: String,
    /// Permit number, empty if none.
    pub permit_no: String,
    /// City name.
    pub city: String,
    /// County name.
    pub county: String,
    /// Industry name (from the defaults; `其他涉气企业` otherwise).
    pub industry: String,
    /// GB/T 4754 class.
    pub industry_code: String,
    /// Grade in Chinese.
    pub grade: String,
    /// Grade's effective date, empty if unknown.
    pub grade_since: String,
    /// 保障类 text, empty if none.
    pub exemption: String,
}

/// A line on the board.
#[derive(Debug, Clone, Serialize)]
pub struct BoardLine {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Design capacity per day.
    pub capacity: String,
    /// Unit.
    pub unit: String,
}

/// One level's measures.
#[derive(Debug, Clone, Serialize)]
pub struct BoardLevel {
    /// Level id.
    pub id: LevelId,
    /// Level name (`黄色预警`).
    pub name: String,
    /// Measures.
    pub measures: Vec<BoardMeasure>,
}

/// One measure on the board.
#[derive(Debug, Clone, Serialize)]
pub struct BoardMeasure {
    /// The whole line as notices, the acknowledgement page and the dashboard say it
    /// (`烧结机、球团设备：停产`, `全厂：限产30%`): [`super::measure_item`].
    pub item: String,
    /// What it applies to: the line, the process, or 全厂.
    pub subject: String,
    /// Line name, empty for the whole enterprise.
    pub line: String,
    /// Process named, empty if none.
    pub process: String,
    /// Kind id (for templates that word measures themselves).
    pub kind: String,
    /// Value as written.
    pub value: String,
    /// The measure in Chinese.
    pub text: String,
    /// Note.
    pub note: String,
}

/// A contact on the board.
#[derive(Debug, Clone, Serialize)]
pub struct BoardContact {
    /// Role.
    pub role: String,
    /// Name.
    pub name: String,
    /// Phone.
    pub phone: String,
    /// Line name, empty for the enterprise's 责任人.
    pub line: String,
}

/// The data behind an enterprise's board: its measures at every level of the defaults.
pub fn board_context(e: &Enterprise, defaults: &Defaults, regions: &Regions) -> BoardContext {
    let city = e.county.city().map(|c| regions.name(c)).unwrap_or_default();
    let industry = e
        .industry
        .key
        .as_deref()
        .and_then(|k| defaults.industry(k))
        .map_or_else(|| defaults.other.name.clone(), |i| i.name.clone());
    let contact = |c: &super::Contact| BoardContact {
        role: c.role.clone(),
        name: c.name.clone(),
        phone: c.phone.to_string(),
        line: c
            .line
            .as_deref()
            .and_then(|l| e.line(l))
            .map(|l| l.name.clone())
            .unwrap_or_default(),
    };
    BoardContext {
        title: defaults.board.title.clone(),
        hotline: defaults.board.hotline.clone(),
        supervisor: format!("{city}{}", defaults.board.supervisor),
        enterprise: BoardEnterprise {
            name: e.name.clone(),
            uscc: e.uscc.to_string(),
            permit_no: e.permit.map(|p| p.to_string()).unwrap_or_default(),
            city,
            county: regions.name(e.county),
            industry,
            industry_code: e.industry.code.to_string(),
            grade: e.grade.grade.name_zh().to_string(),
            grade_since: e.grade.since.map(|d| d.format("%Y年%m月%d日").to_string()).unwrap_or_default(),
            exemption: e
                .exemption
                .as_ref()
                .map(|x| format!("{}，负荷不超过{}%", x.kind.name_zh(), fmt_num(x.max_load_percent)))
                .unwrap_or_default(),
        },
        lines: e
            .lines
            .iter()
            .map(|l| BoardLine {
                id: l.id.clone(),
                name: l.name.clone(),
                capacity: fmt_num(l.capacity),
                unit: l.unit.clone(),
            })
            .collect(),
        levels: defaults
            .levels
            .iter()
            .map(|l| BoardLevel {
                id: l.id.clone(),
                name: l.name.clone(),
                measures: defaults
                    .measures_for(e, &l.id)
                    .into_iter()
                    .map(|m| BoardMeasure {
                        item: m.item(),
                        subject: m.subject(),
                        line: m.line_name.unwrap_or_default(),
                        process: m.process.unwrap_or_default(),
                        kind: m.kind.id().to_string(),
                        value: m.kind.value_text(),
                        text: m.text_zh,
                        note: m.note,
                    })
                    .collect(),
            })
            .collect(),
        responsible: e.responsible().map(contact),
        line_contacts: e.contacts.iter().filter(|c| c.line.is_some()).map(contact).collect(),
    }
}

/// Renders an enterprise's board (重污染天气应急响应操作方案公示牌) with a minijinja template
/// (blocks trimmed, as in Jinja's `trim_blocks` and `lstrip_blocks`).
pub fn board(e: &Enterprise, defaults: &Defaults, regions: &Regions, template: &str) -> Result<String, minijinja::Error> {
    let mut env = minijinja::Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(true);
    env.render_str(template, board_context(e, defaults, regions))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::import::{ImportOptions, import_csv};
    use crate::registry::shanxi_defaults;
    use chrono::{TimeZone, Utc};

    const HEAD: &str = "uscc,name,county,industry_code,key_industry,grade,so2,nox,pm,vocs,contact_name,contact_email,contact_phone\n";

    fn code(region: &str, org: &str) -> String {
        Uscc::from_parts("91", region, org).unwrap().to_string()
    }

    fn list(rows: &str, measures: Option<&str>) -> ListVersion {
        let opts = ImportOptions {
            defaults: shanxi_defaults(),
            regions: Some(Regions::shanxi()),
        };
        let e = import_csv(
            ("e.csv", &format!("{HEAD}{rows}")),
            measures.map(|m| ("m.csv", m)),
            &opts,
            &mut |_, _| {},
        )
        .unwrap();
        ListVersion::new(e, None, Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).unwrap())
    }

    #[test]
    fn reductions_sum_baseline_times_fraction_per_city_and_flag_shortfalls() {
        let a = code("141181", "MA0K3T7W");
        let b = code("141182", "MA0K3T8X");
        let c = code("140105", "MA0K3T9Y");
        // 孝义 cement B, 汾阳 other ungraded, 太原小店 other A.
        let l = list(
            &format!(
                "{a},孝义水泥,141181,3011,cement,B,1,2,1,0,王一,w1@example.cn,13800000001\n\
                 {b},汾阳铸件,141182,3391,,ungraded,0.5,0.5,1,1,王二,w2@example.cn,13800000002\n\
                 {c},太原化工,140105,2614,,A,3,3,3,3,王三,w3@example.cn,13800000003\n"
            ),
            None,
        );
        let society: SocietyEmissions = [
            (RegionCode::parse("141100").unwrap(), PerSpecies::new([10.0, 10.0, 10.0, 10.0])),
            (RegionCode::parse("140100").unwrap(), PerSpecies::splat(20.0)),
        ]
        .into_iter()
        .collect();
        let r = reductions(&l, shanxi_defaults(), &society, None, None, Regions::shanxi());
        let row = |region: &str, level: &str| {
            r.rows
                .iter()
                .find(|x| x.region.to_string() == region && x.level == level)
                .unwrap()
                .clone()
        };
        // 吕梁 yellow: cement B trucks only (0) + other ungraded 限产30% on (0.5, 0.5, 1, 1).
        let y = row("141100", "yellow");
        assert_eq!(y.enterprises, 2);
        assert_eq!(y.expected, PerSpecies::new([0.15, 0.15, 0.3, 0.3]));
        assert_eq!(y.target, PerSpecies::splat(1.0));
        assert_eq!(y.short, Species::ALL);
        // 吕梁 red: cement B stop (1, 2, 1, 0) + other stop (0.5, 0.5, 1, 1).
        let red = row("141100", "red");
        assert_eq!(red.expected, PerSpecies::new([1.5, 2.5, 2.0, 1.0]));
        assert_eq!(red.short, [Species::So2, Species::Nox, Species::Pm, Species::Vocs]);
        // 太原: an A enterprise reduces nothing on its own.
        assert!(row("140100", "orange").expected.is_zero());
        assert!(r.short.contains(&(RegionCode::parse("140100").unwrap(), "orange".to_string())));
        // Filtering by a county keeps its city's row only; by a level, that level only.
        let f = reductions(
            &l,
            shanxi_defaults(),
            &society,
            Some("red"),
            Some(RegionCode::parse("141181").unwrap()),
            Regions::shanxi(),
        );
        assert_eq!(
            f.rows
                .iter()
                .map(|x| (x.region.to_string(), x.level.to_string()))
                .collect::<Vec<_>>(),
            [("141100".to_string(), "red".to_string())]
        );
    }

    #[test]
    fn coverage_finds_missing_holders_and_mismatches() {
        let a = code("141181", "MA0K3T7W");
        let b = code("141182", "MA0K3T8X");
        let missing = code("141102", "MA0K3T9Y");
        let water_only = code("141102", "MA0K3TAB");
        let l = list(
            &format!(
                "{a},孝义市鹏飞焦化有限公司,141181,2521,coking,B,1,2,1,0,王一,w1@example.cn,13800000001\n\
                 {b},汾阳市宏达铸造有限公司,141182,3391,foundry,C,1,1,1,1,王二,w2@example.cn,13800000002\n"
            ),
            None,
        );
        let permits = parse_permits(
            "p.csv",
            &format!(
                "permit_no,name,county,industry_code,air_emitting,management\n\
                 {a}001P,孝义市鹏飞焦化有限公司,141181,2521,1,重点管理\n\
                 {b}001P,汾阳市宏达精密铸造有限公司,141181,3392,1,简化管理\n\
                 {missing}001P,吕梁市离石区新兴建材有限公司,141102,3031,1,简化管理\n\
                 {water_only}001P,吕梁市污水处理厂,141102,4620,0,重点管理\n"
            ),
        )
        .unwrap();
        let r = coverage(&l, &permits, Some(Regions::shanxi()));
        assert_eq!((r.permits, r.air_emitting_holders, r.covered), (4, 3, 2));
        assert_eq!(r.missing.len(), 1);
        assert_eq!(r.missing[0].uscc.to_string(), missing);
        let fields: Vec<&str> = r.mismatches.iter().map(|m| m.field.as_str()).collect();
        assert_eq!(fields, ["name", "county", "industry"]);
        assert!(r.without_permit.is_empty());
        assert!((r.coverage() - 2.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn permit_and_emission_tables_report_errors_with_columns() {
        let e = parse_permits("p.csv", "permit_no,name,county,industry_code\n91140000110014814P001P,x,1401,2521\n").unwrap_err();
        assert_eq!(e[0].to_string(), "p.csv:2:26: region code \"1401\" must be 6 digits");
        let e = parse_society("s.csv", "# [B]\nregion,so2,nox,pm,vocs\n140100,1,2,-3,4\n").unwrap_err();
        assert_eq!(e[0].to_string(), "s.csv:3:12: pm \"-3\" must be a number ≥ 0 (t/day)");
    }

    #[test]
    fn the_board_lists_measures_per_level_with_the_responsible_person_and_hotline() {
        let a = code("141181", "MA0K3T7W");
        let m = format!(
            "uscc,record,line,name,capacity,unit,contact_name,contact_phone,level,measure,value\n\
             {a},line,L1,1#焦炉,1640,t/d,李强,13712345678,,,\n\
             {a},measure,L1,,,,,,yellow,extend_coking_hours,28\n"
        );
        let l = list(
            &format!("{a},孝义市鹏飞焦化有限公司,141181,2521,coking,B,1,2,1,0,王建国,w1@example.cn,13812345678\n"),
            Some(&m),
        );
        let text = board(&l.enterprises[0], shanxi_defaults(), Regions::shanxi(), BOARD_TEMPLATE).unwrap();
        for want in [
            "重污染天气应急响应操作方案公示牌",
            "孝义市鹏飞焦化有限公司",
            "绩效等级：B级",
            "【黄色预警】",
            "1. 1#焦炉：出焦时间延长至28小时",
            "【橙色预警】",
            "1. 全厂：出焦时间延长至36小时",
            "王建国",
            "13812345678",
            "李强",
            "吕梁市生态环境局",
            "12369",
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
    }
}
