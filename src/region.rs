//! Administrative regions (行政区划) by GB/T 2260 code: province, prefecture-level cities and
//! county-level units, with aliases for retired codes and named groups of regions.
//!
//! What comes in: six-digit region codes as text ([`RegionCode::parse`]) and three seed tables in
//! CSV ([`Regions::from_csv`]): `regions.csv` (`code,name,parent`), `region_aliases.csv`
//! (`old,current,name,note`) and `region_groups.csv` (`group,name_zh,code`). Shanxi's tables are
//! embedded in the binary from `seeds/` and loaded once by [`Regions::shanxi`].
//!
//! What goes out: a validated [`Regions`] table that answers tree questions (parent, children,
//! descendants, ancestors, "is this county within that city?"), resolves retired codes to their
//! successors, and lists the members of groups such as `fenwei` (汾渭平原).
//!
//! CSV rules: one record per line, fields trimmed, blank lines and lines starting with `#` are
//! ignored, the first other line is the header and must name the columns exactly. Line numbers in
//! [`SeedError`] count every line of the file, comments included, starting at 1.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

/// A GB/T 2260 administrative region code: six digits `PPCCXX` (province, city, county).
///
/// Parsing guarantees six ASCII digits, a province prefix in `11..=82`, and no county part
/// without a city part (`140005` is rejected), so [`RegionCode::tier`] is always well defined.
/// Serialized as the six-digit string, e.g. `"140105"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RegionCode(u32);

impl RegionCode {
    /// Parses exactly six ASCII digits (no surrounding whitespace) whose first two digits are a
    /// GB/T 2260 province prefix (`11..=82`), e.g. `"140105"`.
    pub fn parse(s: &str) -> Result<RegionCode, RegionError> {
        if s.chars().count() != 6 {
            return Err(RegionError::Length(s.to_string()));
        }
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(RegionError::NotDigits(s.to_string()));
        }
        let value: u32 = s.parse().map_err(|_| RegionError::NotDigits(s.to_string()))?;
        // Six ASCII digits: `from_u32` formats the value back to exactly `s` in its errors.
        Self::from_u32(value)
    }

    /// Builds a code from its numeric value (`140105`), with the same checks as
    /// [`RegionCode::parse`].
    pub fn from_u32(value: u32) -> Result<RegionCode, RegionError> {
        if value > 999_999 {
            return Err(RegionError::Length(value.to_string()));
        }
        let prefix = value / 10_000;
        if !(11..=82).contains(&prefix) {
            return Err(RegionError::Province {
                code: format!("{value:06}"),
                prefix,
            });
        }
        if (value / 100).is_multiple_of(100) && !value.is_multiple_of(100) {
            return Err(RegionError::CountyWithoutCity(format!("{value:06}")));
        }
        Ok(RegionCode(value))
    }

    /// The tier implied by the code: `xx0000` is a province, `xxyy00` a city, anything else a
    /// county-level unit.
    pub fn tier(&self) -> Tier {
        if self.0.is_multiple_of(10_000) {
            Tier::Province
        } else if self.0.is_multiple_of(100) {
            Tier::City
        } else {
            Tier::County
        }
    }

    /// The province the code belongs to (`140105` → `140000`; a province → itself).
    pub fn province(&self) -> RegionCode {
        RegionCode(self.0 / 10_000 * 10_000)
    }

    /// The prefecture-level city the code belongs to (`140105` → `140100`; a city → itself); a
    /// province → `None`.
    pub fn city(&self) -> Option<RegionCode> {
        match self.tier() {
            Tier::Province => None,
            Tier::City | Tier::County => Some(RegionCode(self.0 / 100 * 100)),
        }
    }

    /// The parent implied by the code alone: a county's city, a city's province, `None` for a
    /// province.
    pub fn implied_parent(&self) -> Option<RegionCode> {
        match self.tier() {
            Tier::Province => None,
            Tier::City => Some(self.province()),
            Tier::County => self.city(),
        }
    }

    /// The numeric value (`140105`).
    pub fn as_u32(&self) -> u32 {
        self.0
    }
}

impl fmt::Display for RegionCode {
    /// Always six digits, e.g. `140105`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06}", self.0)
    }
}

impl FromStr for RegionCode {
    type Err = RegionError;

    /// Same as [`RegionCode::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RegionCode::parse(s)
    }
}

impl TryFrom<String> for RegionCode {
    type Error = RegionError;

    /// Same as [`RegionCode::parse`] (used by serde).
    fn try_from(s: String) -> Result<Self, Self::Error> {
        RegionCode::parse(&s)
    }
}

impl TryFrom<&str> for RegionCode {
    type Error = RegionError;

    /// Same as [`RegionCode::parse`].
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        RegionCode::parse(s)
    }
}

impl From<RegionCode> for String {
    /// The six-digit text (used by serde).
    fn from(code: RegionCode) -> String {
        code.to_string()
    }
}

impl From<RegionCode> for u32 {
    /// The numeric value.
    fn from(code: RegionCode) -> u32 {
        code.0
    }
}

/// The three tiers of administrative regions, highest first (so `Province < City < County`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Tier {
    /// Province-level (省), code `xx0000`.
    Province,
    /// Prefecture-level city (地级市), code `xxyy00`.
    City,
    /// County-level unit (县、县级市、市辖区), any other code.
    County,
}

impl fmt::Display for Tier {
    /// Lower-case English: `province`, `city`, `county`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tier::Province => "province",
            Tier::City => "city",
            Tier::County => "county",
        })
    }
}

/// Why a text is not a valid [`RegionCode`].
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum RegionError {
    /// Not six characters long.
    #[error("region code {0:?} must be 6 digits")]
    Length(String),
    /// Six characters, but not all ASCII digits.
    #[error("region code {0:?} must contain only the digits 0-9")]
    NotDigits(String),
    /// The first two digits are not a GB/T 2260 province prefix.
    #[error("region code {code:?} has province prefix {prefix:02}, outside GB/T 2260's 11..=82")]
    Province {
        /// The code as given.
        code: String,
        /// Its first two digits.
        prefix: u32,
    },
    /// A county part (last two digits) without a city part (middle two digits).
    #[error("region code {0:?} has a county part but no city part")]
    CountyWithoutCity(String),
}

/// One row of the region table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Region {
    /// The current GB/T 2260 code.
    pub code: RegionCode,
    /// The Chinese name, e.g. `小店区`.
    pub name: String,
    /// The region one tier up (`None` for a province).
    pub parent: Option<RegionCode>,
    /// The tier, as implied by the code.
    pub tier: Tier,
}

/// A retired code and the current code that replaced it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Alias {
    /// The retired code, e.g. `140421`.
    pub old: RegionCode,
    /// Its successor in the current table, e.g. `140404`.
    pub current: RegionCode,
    /// The retired unit's name, e.g. `长治县`.
    pub name: String,
    /// Free text, e.g. why the code was retired.
    pub note: String,
}

/// A named group of regions (e.g. `fenwei`, 汾渭平原).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Group {
    /// The group's key, e.g. `fenwei`.
    pub name: String,
    /// The group's Chinese name, e.g. `汾渭平原`.
    pub name_zh: String,
    /// The members (current codes), sorted.
    pub members: Vec<RegionCode>,
}

/// A problem in a seed CSV, with the file and the 1-based line (comments counted).
///
/// Displays as `regions.csv:5: unknown parent 149900`.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("{file}:{line}: {problem}")]
pub struct SeedError {
    /// `regions.csv`, `region_aliases.csv` or `region_groups.csv`.
    pub file: &'static str,
    /// The 1-based line in that file.
    pub line: usize,
    /// What is wrong, in English.
    pub problem: String,
}

const REGIONS_CSV: &str = "regions.csv";
const ALIASES_CSV: &str = "region_aliases.csv";
const GROUPS_CSV: &str = "region_groups.csv";

/// The loaded, validated region table: regions, aliases of retired codes and groups.
///
/// Every query resolves aliases first, so a retired code behaves like its successor.
#[derive(Debug, Clone)]
pub struct Regions {
    regions: BTreeMap<RegionCode, Region>,
    children: BTreeMap<RegionCode, Vec<RegionCode>>,
    aliases: BTreeMap<RegionCode, Alias>,
    groups: BTreeMap<String, Group>,
}

impl Regions {
    /// Shanxi's table from the seeds embedded at build time (`seeds/*.csv`), parsed once.
    ///
    /// # Panics
    ///
    /// Only if the embedded seeds are broken, which a unit test rules out.
    pub fn shanxi() -> &'static Regions {
        static SHANXI: OnceLock<Regions> = OnceLock::new();
        SHANXI.get_or_init(|| {
            Regions::from_csv(
                include_str!("../seeds/regions.csv"),
                include_str!("../seeds/region_aliases.csv"),
                include_str!("../seeds/region_groups.csv"),
            )
            .unwrap_or_else(|e| panic!("embedded region seed is broken: {e}"))
        })
    }

    /// Parses and validates the three seed tables (see the module doc for the CSV rules).
    ///
    /// Rejected: a bad header or field count, a bad code, an empty name, a duplicate code, an
    /// unknown parent, a parent that is not the one tier up implied by the code (a county's
    /// parent must be its city, a city's the province, a province has none), an alias whose
    /// old code is current or repeated or whose target is unknown, a group member that is
    /// unknown or repeated, and a group whose `name_zh` differs between rows.
    pub fn from_csv(regions: &str, aliases: &str, groups: &str) -> Result<Regions, SeedError> {
        let region_rows = read_rows(REGIONS_CSV, regions, &["code", "name", "parent"])?;
        let alias_rows = read_rows(ALIASES_CSV, aliases, &["old", "current", "name", "note"])?;
        let group_rows = read_rows(GROUPS_CSV, groups, &["group", "name_zh", "code"])?;

        // Regions: first every row, then the parent links (parents may come later in the file).
        let mut table: BTreeMap<RegionCode, Region> = BTreeMap::new();
        let mut lines: Vec<(usize, RegionCode)> = Vec::new();
        for row in &region_rows {
            let code = row.code(REGIONS_CSV, 0)?;
            let name = row.non_empty(REGIONS_CSV, 1, "name")?;
            let parent = match row.fields[2].as_str() {
                "" => None,
                _ => Some(row.code(REGIONS_CSV, 2)?),
            };
            if table.contains_key(&code) {
                return Err(row.error(REGIONS_CSV, format!("duplicate code {code}")));
            }
            table.insert(
                code,
                Region {
                    code,
                    name,
                    parent,
                    tier: code.tier(),
                },
            );
            lines.push((row.line, code));
        }
        let mut children: BTreeMap<RegionCode, Vec<RegionCode>> = BTreeMap::new();
        for (line, code) in lines {
            let region = &table[&code];
            if let Some(parent) = region.parent
                && !table.contains_key(&parent)
            {
                return Err(seed_error(REGIONS_CSV, line, format!("unknown parent {parent}")));
            }
            let expected = code.implied_parent();
            if region.parent != expected {
                let show = |c: Option<RegionCode>| c.map_or("none".to_string(), |c| c.to_string());
                return Err(seed_error(
                    REGIONS_CSV,
                    line,
                    format!(
                        "parent of {} {code} must be {}, got {}",
                        region.tier,
                        show(expected),
                        show(region.parent)
                    ),
                ));
            }
            if let Some(parent) = region.parent {
                children.entry(parent).or_default().push(code);
            }
        }
        for list in children.values_mut() {
            list.sort();
        }

        // Aliases: retired code → current code in the table.
        let mut alias_table: BTreeMap<RegionCode, Alias> = BTreeMap::new();
        for row in &alias_rows {
            let old = row.code(ALIASES_CSV, 0)?;
            let current = row.code(ALIASES_CSV, 1)?;
            let name = row.non_empty(ALIASES_CSV, 2, "name")?;
            if table.contains_key(&old) {
                return Err(row.error(ALIASES_CSV, format!("alias {old} is a current region code")));
            }
            if alias_table.contains_key(&old) {
                return Err(row.error(ALIASES_CSV, format!("duplicate alias {old}")));
            }
            if !table.contains_key(&current) {
                return Err(row.error(ALIASES_CSV, format!("alias {old} points to unknown code {current}")));
            }
            alias_table.insert(
                old,
                Alias {
                    old,
                    current,
                    name,
                    note: row.fields[3].clone(),
                },
            );
        }

        // Groups: members may be given by a retired code; they are stored resolved.
        let mut group_table: BTreeMap<String, (usize, Group, BTreeSet<RegionCode>)> = BTreeMap::new();
        for row in &group_rows {
            let group = row.non_empty(GROUPS_CSV, 0, "group")?;
            let name_zh = row.non_empty(GROUPS_CSV, 1, "name_zh")?;
            let code = row.code(GROUPS_CSV, 2)?;
            let Some(current) = resolve_in(&table, &alias_table, code) else {
                return Err(row.error(GROUPS_CSV, format!("unknown member {code} of group {group}")));
            };
            let (first_line, entry, seen) = group_table.entry(group.clone()).or_insert_with(|| {
                (
                    row.line,
                    Group {
                        name: group.clone(),
                        name_zh: name_zh.clone(),
                        members: Vec::new(),
                    },
                    BTreeSet::new(),
                )
            });
            if entry.name_zh != name_zh {
                return Err(row.error(
                    GROUPS_CSV,
                    format!(
                        "group {group} is named {name_zh:?} here but {:?} on line {first_line}",
                        entry.name_zh
                    ),
                ));
            }
            if !seen.insert(current) {
                return Err(row.error(GROUPS_CSV, format!("duplicate member {current} of group {group}")));
            }
            entry.members.push(current);
        }
        let groups = group_table
            .into_iter()
            .map(|(name, (_, mut group, _))| {
                group.members.sort();
                (name, group)
            })
            .collect();

        Ok(Regions {
            regions: table,
            children,
            aliases: alias_table,
            groups,
        })
    }

    /// The region for a code, after resolving a retired code to its successor.
    pub fn get(&self, code: RegionCode) -> Option<&Region> {
        self.regions.get(&self.resolve(code)?)
    }

    /// A retired code → its current successor; a current code → itself; unknown → `None`.
    pub fn resolve(&self, code: RegionCode) -> Option<RegionCode> {
        resolve_in(&self.regions, &self.aliases, code)
    }

    /// Whether the code (after alias resolution) is in the table.
    pub fn contains(&self, code: RegionCode) -> bool {
        self.resolve(code).is_some()
    }

    /// The direct children (one tier down), sorted; empty for a county or an unknown code.
    pub fn children(&self, code: RegionCode) -> Vec<RegionCode> {
        self.resolve(code).and_then(|c| self.children.get(&c)).cloned().unwrap_or_default()
    }

    /// Every region below the code (children, grandchildren), sorted, not including the code
    /// itself; empty for a county or an unknown code.
    pub fn descendants(&self, code: RegionCode) -> Vec<RegionCode> {
        let mut out = Vec::new();
        let mut stack = self.children(code);
        while let Some(next) = stack.pop() {
            out.push(next);
            if let Some(kids) = self.children.get(&next) {
                stack.extend(kids);
            }
        }
        out.sort();
        out
    }

    /// The chain of parents, parent first, ending at the province; empty for a province or an
    /// unknown code.
    pub fn ancestors(&self, code: RegionCode) -> Vec<RegionCode> {
        let mut out = Vec::new();
        let mut cur = self.get(code).and_then(|r| r.parent);
        while let Some(parent) = cur {
            out.push(parent);
            cur = self.regions.get(&parent).and_then(|r| r.parent);
        }
        out
    }

    /// Whether `code` equals `ancestor` or lies below it (both after alias resolution); `false`
    /// if either is unknown.
    pub fn is_within(&self, code: RegionCode, ancestor: RegionCode) -> bool {
        match (self.resolve(code), self.resolve(ancestor)) {
            (Some(code), Some(ancestor)) => code == ancestor || self.ancestors(code).contains(&ancestor),
            _ => false,
        }
    }

    /// The members of a named group (current codes, sorted), or `None` for an unknown group.
    pub fn group(&self, name: &str) -> Option<&[RegionCode]> {
        self.groups.get(name).map(|g| g.members.as_slice())
    }

    /// The full group record (with its Chinese name), or `None` for an unknown group.
    pub fn group_info(&self, name: &str) -> Option<&Group> {
        self.groups.get(name)
    }

    /// The names of all groups, sorted.
    pub fn group_names(&self) -> Vec<&str> {
        self.groups.keys().map(String::as_str).collect()
    }

    /// Every region, sorted by code.
    pub fn all(&self) -> impl Iterator<Item = &Region> {
        self.regions.values()
    }

    /// Every alias of a retired code, sorted by the retired code.
    pub fn aliases(&self) -> impl Iterator<Item = &Alias> {
        self.aliases.values()
    }

    /// The Chinese name (of the successor, for a retired code), or the code as text if unknown.
    pub fn name(&self, code: RegionCode) -> String {
        self.get(code).map_or_else(|| code.to_string(), |r| r.name.clone())
    }
}

fn resolve_in(regions: &BTreeMap<RegionCode, Region>, aliases: &BTreeMap<RegionCode, Alias>, code: RegionCode) -> Option<RegionCode> {
    if regions.contains_key(&code) {
        Some(code)
    } else {
        aliases.get(&code).map(|a| a.current)
    }
}

fn seed_error(file: &'static str, line: usize, problem: String) -> SeedError {
    SeedError { file, line, problem }
}

/// One data record of a seed CSV: its 1-based line and its trimmed fields.
struct Row {
    line: usize,
    fields: Vec<String>,
}

impl Row {
    fn error(&self, file: &'static str, problem: String) -> SeedError {
        seed_error(file, self.line, problem)
    }

    fn code(&self, file: &'static str, index: usize) -> Result<RegionCode, SeedError> {
        RegionCode::parse(&self.fields[index]).map_err(|e| self.error(file, e.to_string()))
    }

    fn non_empty(&self, file: &'static str, index: usize, column: &str) -> Result<String, SeedError> {
        match self.fields[index].as_str() {
            "" => Err(self.error(file, format!("empty {column}"))),
            s => Ok(s.to_string()),
        }
    }
}

/// Splits a seed CSV into data rows, one record per line, skipping blank and `#` lines and
/// checking the header and the field count.
fn read_rows(file: &'static str, text: &str, header: &[&str]) -> Result<Vec<Row>, SeedError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows = Vec::new();
    let mut header_seen = false;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() || raw.starts_with('#') {
            continue;
        }
        let fields = split_line(raw).map_err(|problem| seed_error(file, line, problem))?;
        if !header_seen {
            if fields != header {
                return Err(seed_error(
                    file,
                    line,
                    format!("header must be {:?}, got {:?}", header.join(","), fields.join(",")),
                ));
            }
            header_seen = true;
            continue;
        }
        if fields.len() != header.len() {
            return Err(seed_error(
                file,
                line,
                format!("expected {} fields, found {}", header.len(), fields.len()),
            ));
        }
        rows.push(Row { line, fields });
    }
    if !header_seen {
        return Err(seed_error(file, 1, format!("missing header {:?}", header.join(","))));
    }
    Ok(rows)
}

/// The trimmed fields of one CSV line (quotes allowed, no embedded line breaks).
fn split_line(raw: &str) -> Result<Vec<String>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(raw.as_bytes());
    let mut record = csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(_) => Ok(record.iter().map(str::to_string).collect()),
        Err(e) => Err(format!("bad CSV: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> RegionCode {
        RegionCode::parse(s).unwrap()
    }

    fn codes(list: &[&str]) -> Vec<RegionCode> {
        list.iter().map(|s| code(s)).collect()
    }

    const HEAD_R: &str = "# comment\ncode,name,parent\n";
    const OK_R: &str = "# comment\ncode,name,parent\n140000,山西省,\n140100,太原市,140000\n140105,小店区,140100\n";
    const OK_A: &str = "old,current,name,note\n";
    const OK_G: &str = "group,name_zh,code\n";

    fn load_err(regions: &str, aliases: &str, groups: &str) -> String {
        Regions::from_csv(regions, aliases, groups).unwrap_err().to_string()
    }

    #[test]
    fn the_embedded_seed_loads_with_1_province_11_cities_and_117_counties() {
        let all: Vec<&Region> = Regions::shanxi().all().collect();
        let count = |t: Tier| all.iter().filter(|r| r.tier == t).count();
        assert_eq!(count(Tier::Province), 1);
        assert_eq!(count(Tier::City), 11);
        assert_eq!(count(Tier::County), 117);
        assert_eq!(all.len(), 129);
        assert_eq!(Regions::shanxi().name(code("140000")), "山西省");
    }

    #[test]
    fn every_county_s_parent_is_the_city_whose_code_prefix_it_shares() {
        let shanxi = Regions::shanxi();
        for region in shanxi.all().filter(|r| r.tier == Tier::County) {
            let parent = region.parent.unwrap();
            assert_eq!(parent.tier(), Tier::City, "{}", region.code);
            assert_eq!(parent.as_u32() / 100, region.code.as_u32() / 100);
            assert!(shanxi.contains(parent));
        }
        for region in shanxi.all().filter(|r| r.tier == Tier::City) {
            assert_eq!(region.parent, Some(code("140000")));
        }
    }

    #[test]
    fn all_is_sorted_by_code() {
        let all: Vec<RegionCode> = Regions::shanxi().all().map(|r| r.code).collect();
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(all, sorted);
    }

    #[test]
    fn parse_rejects_wrong_length_non_digits_and_unknown_provinces() {
        assert_eq!(
            RegionCode::parse("14010").unwrap_err().to_string(),
            "region code \"14010\" must be 6 digits"
        );
        assert_eq!(RegionCode::parse("1401050").unwrap_err(), RegionError::Length("1401050".into()));
        assert_eq!(
            RegionCode::parse("14a105").unwrap_err().to_string(),
            "region code \"14a105\" must contain only the digits 0-9"
        );
        assert_eq!(
            RegionCode::parse("990000").unwrap_err().to_string(),
            "region code \"990000\" has province prefix 99, outside GB/T 2260's 11..=82"
        );
        assert!(RegionCode::parse("100000").is_err());
        assert!(RegionCode::parse(" 140105").is_err());
        assert!(RegionCode::parse("+14010").is_err());
        assert!(RegionCode::parse("１４０１０５").is_err());
        assert_eq!(
            RegionCode::parse("140005").unwrap_err().to_string(),
            "region code \"140005\" has a county part but no city part"
        );
        assert_eq!(code("110000").as_u32(), 110_000);
        assert_eq!(code("820000").as_u32(), 820_000);
        assert_eq!("140105".parse::<RegionCode>(), Ok(code("140105")));
        assert_eq!(RegionCode::from_u32(140_105), Ok(code("140105")));
        assert!(RegionCode::from_u32(1_401_050).is_err());
    }

    #[test]
    fn tier_province_and_city_follow_the_code() {
        assert_eq!(code("140000").tier(), Tier::Province);
        assert_eq!(code("140100").tier(), Tier::City);
        assert_eq!(code("140105").tier(), Tier::County);
        assert_eq!(code("140105").province(), code("140000"));
        assert_eq!(code("140105").city(), Some(code("140100")));
        assert_eq!(code("140100").city(), Some(code("140100")));
        assert_eq!(code("140000").city(), None);
        assert!(Tier::Province < Tier::City && Tier::City < Tier::County);
    }

    #[test]
    fn a_code_displays_and_serializes_as_six_digits() {
        let c = code("140105");
        assert_eq!(c.to_string(), "140105");
        assert_eq!(String::from(c), "140105");
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"140105\"");
        let back: RegionCode = serde_json::from_str("\"140105\"").unwrap();
        assert_eq!(back, c);
        assert!(serde_json::from_str::<RegionCode>("\"14010\"").is_err());
        let region = Regions::shanxi().get(c).unwrap();
        let json = serde_json::to_value(region).unwrap();
        assert_eq!(json["code"], "140105");
        assert_eq!(json["parent"], "140100");
        assert_eq!(json["name"], "小店区");
    }

    #[test]
    fn aliases_resolve_to_their_successors() {
        let shanxi = Regions::shanxi();
        assert_eq!(shanxi.resolve(code("140421")), Some(code("140404")));
        assert_eq!(shanxi.name(code("140421")), "上党区");
        assert_eq!(shanxi.get(code("140421")).unwrap().code, code("140404"));
        assert_eq!(shanxi.resolve(code("140202")), Some(code("140213")));
        assert_eq!(shanxi.resolve(code("140211")), Some(code("140214")));
        assert_eq!(shanxi.resolve(code("140402")), Some(code("140403")));
        assert_eq!(shanxi.resolve(code("140481")), Some(code("140406")));
        assert_eq!(shanxi.resolve(code("140624")), Some(code("140681")));
        assert_eq!(shanxi.resolve(code("140726")), Some(code("140703")));
        assert_eq!(shanxi.aliases().count(), 7);
        assert_eq!(shanxi.resolve(code("140105")), Some(code("140105")));
        assert_eq!(shanxi.resolve(code("140199")), None);
        assert!(shanxi.contains(code("140726")));
        assert!(!shanxi.contains(code("150000")));
        assert_eq!(shanxi.name(code("140199")), "140199");
    }

    #[test]
    fn descendants_of_taiyuan_are_its_10_counties() {
        let shanxi = Regions::shanxi();
        let below = shanxi.descendants(code("140100"));
        assert_eq!(below.len(), 10);
        assert_eq!(below, shanxi.children(code("140100")));
        assert_eq!(below.first(), Some(&code("140105")));
        assert_eq!(below.last(), Some(&code("140181")));
        assert_eq!(shanxi.descendants(code("140000")).len(), 128);
        assert_eq!(shanxi.children(code("140000")).len(), 11);
        assert!(shanxi.descendants(code("140105")).is_empty());
        assert!(shanxi.descendants(code("150000")).is_empty());
    }

    #[test]
    fn ancestors_run_from_the_parent_up_to_the_province() {
        let shanxi = Regions::shanxi();
        assert_eq!(shanxi.ancestors(code("140105")), codes(&["140100", "140000"]));
        assert_eq!(shanxi.ancestors(code("140421")), codes(&["140400", "140000"]));
        assert_eq!(shanxi.ancestors(code("140100")), codes(&["140000"]));
        assert!(shanxi.ancestors(code("140000")).is_empty());
        assert!(shanxi.ancestors(code("140199")).is_empty());
    }

    #[test]
    fn is_within_holds_for_itself_and_everything_above() {
        let shanxi = Regions::shanxi();
        assert!(shanxi.is_within(code("140105"), code("140105")));
        assert!(shanxi.is_within(code("140105"), code("140100")));
        assert!(shanxi.is_within(code("140105"), code("140000")));
        assert!(shanxi.is_within(code("140421"), code("140400")));
        assert!(!shanxi.is_within(code("140105"), code("140200")));
        assert!(!shanxi.is_within(code("140100"), code("140105")));
        assert!(!shanxi.is_within(code("140199"), code("140100")));
    }

    #[test]
    fn group_fenwei_has_8_cities_and_the_other_groups_are_loaded() {
        let shanxi = Regions::shanxi();
        let fenwei = shanxi.group("fenwei").unwrap();
        assert_eq!(fenwei.len(), 8);
        assert!(fenwei.iter().all(|c| c.tier() == Tier::City));
        assert!(!fenwei.contains(&code("140200")));
        assert_eq!(shanxi.group_info("fenwei").unwrap().name_zh, "汾渭平原");
        assert_eq!(shanxi.group("taiyuan_1_30").unwrap(), codes(&["140100"]));
        let fen_river = shanxi.group("linfen_fen_river_6").unwrap();
        assert_eq!(fen_river.len(), 6);
        assert!(fen_river.iter().all(|c| shanxi.is_within(*c, code("141000"))));
        assert_eq!(shanxi.group_names(), vec!["fenwei", "linfen_fen_river_6", "taiyuan_1_30"]);
        assert!(shanxi.group("nope").is_none());
    }

    #[test]
    fn from_csv_accepts_a_minimal_table_with_parents_after_children() {
        let regions = "code,name,parent\n140105,小店区,140100\n140100,太原市,140000\n140000,山西省,\n";
        let aliases = "old,current,name,note\n140199,140105,旧区,\"a, quoted note\"\n";
        let groups = "group,name_zh,code\ng,组,140199\n";
        let table = Regions::from_csv(regions, aliases, groups).unwrap();
        assert_eq!(table.all().count(), 3);
        assert_eq!(table.group("g").unwrap(), codes(&["140105"]));
        assert_eq!(table.aliases().next().unwrap().note, "a, quoted note");
    }

    #[test]
    fn from_csv_names_the_line_of_a_bad_code() {
        let regions = format!("{HEAD_R}140000,山西省,\n14010,太原市,140000\n");
        assert_eq!(
            load_err(&regions, OK_A, OK_G),
            "regions.csv:4: region code \"14010\" must be 6 digits"
        );
        let regions = format!("{HEAD_R}140000,山西省,x\n");
        assert_eq!(load_err(&regions, OK_A, OK_G), "regions.csv:3: region code \"x\" must be 6 digits");
    }

    #[test]
    fn from_csv_names_the_line_of_a_duplicate_code() {
        let regions = format!("{OK_R}140100,太原,140000\n");
        assert_eq!(load_err(&regions, OK_A, OK_G), "regions.csv:6: duplicate code 140100");
    }

    #[test]
    fn from_csv_names_the_line_of_an_unknown_parent() {
        let regions = format!("{HEAD_R}140000,山西省,\n\n149901,某县,149900\n");
        assert_eq!(load_err(&regions, OK_A, OK_G), "regions.csv:5: unknown parent 149900");
    }

    #[test]
    fn from_csv_names_the_line_of_a_parent_that_is_not_one_tier_up() {
        let regions = format!("{HEAD_R}140000,山西省,\n140200,大同市,140000\n140105,小店区,140200\n");
        assert_eq!(
            load_err(&regions, OK_A, OK_G),
            "regions.csv:5: parent of county 140105 must be 140100, got 140200"
        );
        let regions = format!("{HEAD_R}140000,山西省,\n140105,小店区,140000\n");
        assert_eq!(
            load_err(&regions, OK_A, OK_G),
            "regions.csv:4: parent of county 140105 must be 140100, got 140000"
        );
        let regions = format!("{HEAD_R}140000,山西省,\n140100,太原市,\n");
        assert_eq!(
            load_err(&regions, OK_A, OK_G),
            "regions.csv:4: parent of city 140100 must be 140000, got none"
        );
        let regions = format!("{HEAD_R}140000,山西省,\n150000,内蒙古自治区,140000\n");
        assert_eq!(
            load_err(&regions, OK_A, OK_G),
            "regions.csv:4: parent of province 150000 must be none, got 140000"
        );
    }

    #[test]
    fn from_csv_names_the_line_of_an_unknown_alias_target() {
        let aliases = "# retired\nold,current,name,note\n140199,140105,旧区,\n140198,140106,旧区,\n";
        assert_eq!(
            load_err(OK_R, aliases, OK_G),
            "region_aliases.csv:4: alias 140198 points to unknown code 140106"
        );
    }

    #[test]
    fn from_csv_names_the_line_of_an_alias_that_is_current_or_repeated() {
        let aliases = "old,current,name,note\n140100,140105,旧区,\n";
        assert_eq!(
            load_err(OK_R, aliases, OK_G),
            "region_aliases.csv:2: alias 140100 is a current region code"
        );
        let aliases = "old,current,name,note\n140199,140105,旧区,\n140199,140105,旧区,\n";
        assert_eq!(load_err(OK_R, aliases, OK_G), "region_aliases.csv:3: duplicate alias 140199");
    }

    #[test]
    fn from_csv_names_the_line_of_an_unknown_group_member() {
        let groups = "group,name_zh,code\n# members\ng,组,140100\ng,组,140200\n";
        assert_eq!(
            load_err(OK_R, OK_A, groups),
            "region_groups.csv:4: unknown member 140200 of group g"
        );
    }

    #[test]
    fn from_csv_names_the_line_of_a_repeated_member_or_a_renamed_group() {
        let groups = "group,name_zh,code\ng,组,140100\ng,组,140100\n";
        assert_eq!(
            load_err(OK_R, OK_A, groups),
            "region_groups.csv:3: duplicate member 140100 of group g"
        );
        let groups = "group,name_zh,code\ng,组,140100\ng,别名,140105\n";
        assert_eq!(
            load_err(OK_R, OK_A, groups),
            "region_groups.csv:3: group g is named \"别名\" here but \"组\" on line 2"
        );
    }

    #[test]
    fn from_csv_names_the_line_of_a_bad_header_field_count_or_empty_name() {
        assert_eq!(
            load_err("# c\ncode,name\n", OK_A, OK_G),
            "regions.csv:2: header must be \"code,name,parent\", got \"code,name\""
        );
        assert_eq!(
            load_err("# only a comment\n", OK_A, OK_G),
            "regions.csv:1: missing header \"code,name,parent\""
        );
        let regions = format!("{HEAD_R}140000,山西省\n");
        assert_eq!(load_err(&regions, OK_A, OK_G), "regions.csv:3: expected 3 fields, found 2");
        let regions = format!("{HEAD_R}140000, ,\n");
        assert_eq!(load_err(&regions, OK_A, OK_G), "regions.csv:3: empty name");
    }
}
