//! Forecasts: the CSV and JSON files of `docs/product.md`, parsed into a validated [`Forecast`].
//!
//! In: bytes of a file (or an HTTP body) and its name. Out: a [`Forecast`] with one daily series per
//! region, AQI computed per HJ 633 where only concentrations are given, or a [`ForecastError`] naming
//! `file:line:column` (CSV) or the JSON path and the reason. A bad file is rejected whole.
//! Touches nothing: no clock, no disk (the caller reads the file).
//!
//! Observation series for `replay` use the same CSV format ([`ParseOptions::observations`]).

use crate::domain::diagnostic::{Diagnostic, Place};
use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Asia::Shanghai;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::aqi::{self, Concentrations, Pollutant, Standard};
use crate::domain::region::{RegionCode, Regions};

/// One region's value for one day (the 24 h from 00:00 Asia/Shanghai).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayValue {
    /// The day.
    pub date: NaiveDate,
    /// Daily AQI; `None` when the row gave no value at all (a missing day).
    pub aqi: Option<u16>,
    /// Primary pollutants (首要污染物) when computed from concentrations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub primary: Vec<Pollutant>,
    /// True when the AQI was computed here from concentrations rather than given.
    #[serde(default)]
    pub computed: bool,
    /// The forecast names sand and dust (沙尘) as the cause: no emergency reductions.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dust: bool,
}

/// Parses a `primary` cell: pollutant names (`pm25`, `pm10`, `o3`, `o3_8h`, `so2`, …) and `dust` (沙尘),
/// separated by `;`, `/` or `、`. Returns the pollutants and whether sand and dust is named.
pub fn parse_primary(s: &str) -> Result<(Vec<Pollutant>, bool), String> {
    let mut out = Vec::new();
    let mut dust = false;
    for part in s.split([';', '/', '、']).map(str::trim).filter(|p| !p.is_empty()) {
        let p = match part.to_ascii_lowercase().as_str() {
            "dust" | "沙尘" | "扬沙" | "浮尘" | "沙尘暴" => {
                dust = true;
                continue;
            }
            "pm2.5" | "pm25" => Pollutant::Pm25,
            "o3" | "臭氧" => Pollutant::O3_8h,
            other => Pollutant::from_column(other)
                .ok_or_else(|| format!("primary \"{part}\" is not a pollutant (pm25, pm10, o3, o3_8h, o3_1h, so2, no2, co) or dust"))?,
        };
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok((out, dust))
}

/// A validated forecast: who issued it, when, and a gap-free daily series per region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// Content id: the first 16 hex digits of SHA-256 over the canonical content (issue time, source,
    /// values). The same forecast submitted twice has the same id.
    pub id: String,
    /// When the forecast was issued.
    pub issued_at: DateTime<FixedOffset>,
    /// Who issued it (e.g. 省生态环境监测和应急保障中心).
    pub source: String,
    /// Daily values per region, dates consecutive and ascending.
    pub series: BTreeMap<RegionCode, Vec<DayValue>>,
    /// A drill's forecast (演练): it runs the region's drill lane and never becomes the region's
    /// current forecast. Marked in the file (`# exercise: true`, `"exercise": true`) or by the sender.
    #[serde(default, skip_serializing_if = "crate::domain::warning::is_false")]
    pub exercise: bool,
}

impl Forecast {
    /// The date (Asia/Shanghai) on which the forecast was issued.
    pub fn issue_date(&self) -> NaiveDate {
        self.issued_at.with_timezone(&Shanghai).date_naive()
    }

    /// Number of (region, day) values.
    pub fn len(&self) -> usize {
        self.series.values().map(Vec::len).sum()
    }

    /// True when no region has a value.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    fn compute_id(issued_at: &DateTime<FixedOffset>, source: &str, series: &BTreeMap<RegionCode, Vec<DayValue>>, exercise: bool) -> String {
        let mut h = Sha256::new();
        // A drill's copy of a real forecast is another forecast (a real one's id is unchanged).
        if exercise {
            h.update(b"exercise\0");
        }
        h.update(issued_at.to_rfc3339().as_bytes());
        h.update([0]);
        h.update(source.as_bytes());
        h.update([0]);
        for (region, days) in series {
            for d in days {
                h.update(format!("{region},{},{:?};", d.date, d.aqi).as_bytes());
            }
        }
        hex::encode(&h.finalize()[..8])
    }
}

/// Where in the input an error was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// 1-based line and column of a CSV file.
    LineColumn(usize, usize),
    /// A JSON path such as `values[3].aqi`, with the line and column when known.
    Json(String),
    /// The file as a whole.
    File,
}

/// Why a forecast file was rejected, and where.
pub type ForecastError = Diagnostic;

impl From<Position> for Place {
    fn from(p: Position) -> Place {
        match p {
            Position::LineColumn(line, column) => Place::At {
                line: line as u64,
                column: column as u64,
            },
            Position::Json(path) => Place::Path(path),
            Position::File => Place::File,
        }
    }
}

/// A rejection of `file` at `position`.
fn rejected(file: &str, position: Position, reason: impl Into<String>) -> ForecastError {
    Diagnostic {
        file: file.to_string(),
        place: position.into(),
        message: reason.into(),
    }
}

/// How strict the parser is.
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// Largest accepted input in bytes.
    pub max_bytes: usize,
    /// Fewest and most days per region.
    pub min_days: usize,
    /// See `min_days`.
    pub max_days: usize,
    /// Whether regions outside the region table are accepted (replays of other provinces' data).
    pub allow_unknown_regions: bool,
    /// Whether an issue time is required (forecasts: yes; observations: no).
    pub require_issued_at: bool,
    /// Issue time given outside the file (`--issued-at`); wins over a comment line.
    pub issued_at: Option<DateTime<FixedOffset>>,
    /// Source given outside the file (`--source`).
    pub source: Option<String>,
    /// Force one AQI standard instead of choosing by date.
    pub standard: Option<Standard>,
    /// The issue times accepted (the daemon sets them from its clock; offline commands do not).
    pub issued_bounds: Option<IssuedBounds>,
    /// The sender marks it a drill (`--exercise`, `?exercise=true`), whatever the file says.
    pub exercise: bool,
}

/// The window an `issued_at` must fall in, with the reason of each bound for the message.
#[derive(Debug, Clone)]
pub struct IssuedBounds {
    /// Earliest accepted issue time.
    pub earliest: DateTime<chrono::Utc>,
    /// Why (e.g. "7 days, the longest playbook horizon").
    pub earliest_why: String,
    /// Latest accepted issue time.
    pub latest: DateTime<chrono::Utc>,
    /// Why (e.g. "60 minutes ahead, forecast.max_ahead_minutes").
    pub latest_why: String,
}

impl ParseOptions {
    /// Defaults for a forecast: 1–10 days, known regions, an issue time, at most 8 MiB.
    pub fn forecast() -> Self {
        ParseOptions {
            max_bytes: 8 << 20,
            min_days: 1,
            max_days: 10,
            allow_unknown_regions: false,
            require_issued_at: true,
            issued_at: None,
            source: None,
            standard: None,
            issued_bounds: None,
            exercise: false,
        }
    }

    /// Defaults for an observation series: any length, any region, no issue time needed.
    pub fn observations() -> Self {
        ParseOptions {
            max_bytes: 256 << 20,
            min_days: 1,
            max_days: usize::MAX,
            allow_unknown_regions: true,
            require_issued_at: false,
            ..Self::forecast()
        }
    }
}

/// Parses a forecast from bytes, choosing CSV or JSON by the first non-blank byte (`{` → JSON).
pub fn parse(file: &str, bytes: &[u8], regions: &Regions, opts: &ParseOptions) -> Result<Forecast, ForecastError> {
    let err = |position: Position, reason: String| rejected(file, position, reason);
    if bytes.len() > opts.max_bytes {
        return Err(err(
            Position::File,
            format!("file is {} bytes, larger than the limit of {} bytes", bytes.len(), opts.max_bytes),
        ));
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
            let col = String::from_utf8_lossy(&good[good.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1)..])
                .chars()
                .count()
                + 1;
            return Err(err(Position::LineColumn(line, col), "bytes are not valid UTF-8".into()));
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(err(Position::File, "file is empty".into()));
    }
    let rows = if text.trim_start().starts_with('{') {
        parse_json(file, text)?
    } else {
        parse_csv(file, text, opts)?
    };
    build(file, rows, regions, opts)
}

/// A raw row before validation, with where it came from.
struct RawRow {
    pos: Position,
    region: (String, Position),
    date: (String, Position),
    aqi: Option<(f64, Position)>,
    conc: Vec<(Pollutant, f64, Position)>,
    primary: Option<(String, Position)>,
}

struct RawFile {
    issued_at: Option<(String, Position)>,
    source: Option<String>,
    /// `# exercise: true` / `"exercise": true`.
    exercise: bool,
    rows: Vec<RawRow>,
}

fn parse_csv(file: &str, text: &str, _opts: &ParseOptions) -> Result<RawFile, ForecastError> {
    let err = |line: usize, col: usize, reason: String| rejected(file, Position::LineColumn(line, col), reason);
    let mut issued_at = None;
    let mut source = None;
    let mut exercise = false;
    let mut header: Option<Vec<(String, usize)>> = None;
    let mut rows = Vec::new();
    for (idx, raw_line) in text.lines().enumerate() {
        let line_no = idx + 1;
        let line = raw_line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.trim_start().strip_prefix('#') {
            if let Some((k, v)) = comment.split_once(':') {
                match k.trim() {
                    "issued_at" => issued_at = Some((v.trim().to_string(), Position::LineColumn(line_no, 1))),
                    "source" => source = Some(v.trim().to_string()),
                    "exercise" => {
                        exercise = match v.trim() {
                            "true" => true,
                            "false" => false,
                            other => {
                                // The column of the value itself.
                                let col = line.find(':').map_or(1, |i| {
                                    let after = &line[i + 1..];
                                    line[..=i].chars().count() + after.chars().take_while(|c| c.is_whitespace()).count() + 1
                                });
                                return Err(err(line_no, col, format!("exercise must be true or false, not \"{other}\"")));
                            }
                        }
                    }
                    _ => {}
                }
            }
            continue;
        }
        // Split on commas, remembering the 1-based character column of each cell. The format has
        // no quoting (codes, dates and numbers only); a quote is reported rather than guessed at.
        let mut cells = Vec::new();
        let mut col = 1;
        for cell in line.split(',') {
            if cell.contains('"') {
                return Err(err(line_no, col, "quoted cells are not supported in forecast CSV".into()));
            }
            cells.push((cell.trim().to_string(), col));
            col += cell.chars().count() + 1;
        }
        let Some(cols) = &header else {
            let mut seen = Vec::new();
            for (name, c) in &cells {
                let known = matches!(name.as_str(), "region" | "date" | "aqi" | "primary") || Pollutant::from_column(name).is_some();
                if !known {
                    return Err(err(
                        line_no,
                        *c,
                        format!("unknown column \"{name}\" (expected region, date, aqi, pm25, pm10, so2, no2, co, o3_8h, o3_1h, primary)"),
                    ));
                }
                if seen.contains(name) {
                    return Err(err(line_no, *c, format!("column \"{name}\" appears twice")));
                }
                seen.push(name.clone());
            }
            for needed in ["region", "date"] {
                if !seen.iter().any(|s| s == needed) {
                    return Err(err(line_no, 1, format!("missing column \"{needed}\"")));
                }
            }
            if !seen.iter().any(|s| s != "region" && s != "date" && s != "primary") {
                return Err(err(line_no, 1, "no value column: give aqi and/or pollutant columns".into()));
            }
            header = Some(cells);
            continue;
        };
        if cells.len() != cols.len() {
            return Err(err(
                line_no,
                cells.last().map_or(1, |c| c.1),
                format!("row has {} cells, the header has {}", cells.len(), cols.len()),
            ));
        }
        let mut row = RawRow {
            pos: Position::LineColumn(line_no, 1),
            region: (String::new(), Position::File),
            date: (String::new(), Position::File),
            aqi: None,
            conc: Vec::new(),
            primary: None,
        };
        for ((name, _), (value, c)) in cols.iter().zip(cells) {
            let pos = Position::LineColumn(line_no, c);
            match name.as_str() {
                "region" => row.region = (value, pos),
                "date" => row.date = (value, pos),
                "primary" => {
                    if !value.is_empty() {
                        row.primary = Some((value, pos));
                    }
                }
                other => {
                    if value.is_empty() {
                        continue;
                    }
                    let v: f64 = value
                        .parse()
                        .ok()
                        .filter(|v: &f64| v.is_finite())
                        .ok_or_else(|| err(line_no, c, format!("{other} \"{value}\" is not a number")))?;
                    if other == "aqi" {
                        row.aqi = Some((v, pos));
                    } else if let Some(p) = Pollutant::from_column(other) {
                        row.conc.push((p, v, pos));
                    }
                }
            }
        }
        rows.push(row);
    }
    if header.is_none() {
        return Err(rejected(file, Position::File, "file has no header row"));
    }
    Ok(RawFile {
        issued_at,
        source,
        exercise,
        rows,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonForecast {
    issued_at: Option<String>,
    source: Option<String>,
    #[serde(default)]
    exercise: bool,
    values: Vec<BTreeMap<String, serde_json::Value>>,
}

fn parse_json(file: &str, text: &str) -> Result<RawFile, ForecastError> {
    let err = |path: String, reason: String| rejected(file, Position::Json(path), reason);
    if let Some((path, key)) = duplicate_json_key(text) {
        return Err(err(path, format!("key \"{key}\" appears twice")));
    }
    let doc: JsonForecast = serde_json::from_str(text).map_err(|e| {
        rejected(
            file,
            Position::LineColumn(e.line(), e.column()),
            format!("invalid JSON: {e}").replace(&format!(" at line {} column {}", e.line(), e.column()), ""),
        )
    })?;
    let mut rows = Vec::new();
    for (i, obj) in doc.values.into_iter().enumerate() {
        let here = |k: &str| Position::Json(format!("values[{i}].{k}"));
        let mut row = RawRow {
            pos: Position::Json(format!("values[{i}]")),
            region: (String::new(), here("region")),
            date: (String::new(), here("date")),
            aqi: None,
            conc: Vec::new(),
            primary: None,
        };
        let mut have = (false, false);
        for (k, v) in obj {
            let path = format!("values[{i}].{k}");
            match k.as_str() {
                "region" | "date" => {
                    let s = match &v {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Number(n) if k == "region" => n.to_string(),
                        _ => return Err(err(path, format!("{k} must be a string"))),
                    };
                    if k == "region" {
                        row.region.0 = s;
                        have.0 = true;
                    } else {
                        row.date.0 = s;
                        have.1 = true;
                    }
                }
                "primary" => match &v {
                    serde_json::Value::Null => {}
                    serde_json::Value::String(s) => row.primary = Some((s.clone(), Position::Json(path))),
                    _ => return Err(err(path, "primary must be a string".into())),
                },
                other => {
                    let pollutant = Pollutant::from_column(other);
                    if other != "aqi" && pollutant.is_none() {
                        return Err(err(path, format!("unknown field \"{other}\"")));
                    }
                    let n = match &v {
                        serde_json::Value::Null => continue,
                        serde_json::Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
                        _ => return Err(err(path, format!("{other} must be a number"))),
                    };
                    match pollutant {
                        Some(p) => row.conc.push((p, n, Position::Json(path))),
                        None => row.aqi = Some((n, Position::Json(path))),
                    }
                }
            }
        }
        if !have.0 {
            return Err(err(format!("values[{i}]"), "missing field \"region\"".into()));
        }
        if !have.1 {
            return Err(err(format!("values[{i}]"), "missing field \"date\"".into()));
        }
        rows.push(row);
    }
    Ok(RawFile {
        issued_at: doc.issued_at.map(|s| (s, Position::Json("issued_at".into()))),
        source: doc.source,
        exercise: doc.exercise,
        rows,
    })
}

/// A concentration no monitor reports: more than twice the top breakpoint of the HJ 633 table of
/// that pollutant (PM2.5 1000 µg/m³, PM10 1200, SO2 5240, NO2 1880, CO 120 mg/m³, O3 8-h 1600,
/// O3 1-h 2400). Far above any episode on record, and far below 1e308.
fn beyond_measurement(standard: Standard, p: Pollutant, v: f64) -> Option<String> {
    let top = aqi::breakpoints(standard, p).last().copied().unwrap_or(f64::INFINITY);
    let bound = top * 2.0;
    (v > bound).then(|| {
        let v = if v >= 1e9 { format!("{v:e}") } else { v.to_string() };
        format!(
            "{} {v} {} is above {bound} {}, twice the top breakpoint ({top}) of the {} table: no monitor measures that",
            p.column(),
            p.unit(),
            p.unit(),
            standard.id()
        )
    })
}

/// The first key that appears twice in one JSON object, with its path (`values[3].aqi`), if any. (Deserializing into a map would keep the last silently.)
fn duplicate_json_key(text: &str) -> Option<(String, String)> {
    use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
    use std::cell::RefCell;

    struct Walk<'a> {
        path: String,
        found: &'a RefCell<Option<(String, String)>>,
    }
    impl<'de> DeserializeSeed<'de> for Walk<'_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Walk<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut i = 0;
            while seq
                .next_element_seed(Walk {
                    path: format!("{}[{i}]", self.path),
                    found: self.found,
                })?
                .is_some()
            {
                i += 1;
            }
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                let path = if self.path.is_empty() {
                    key.clone()
                } else {
                    format!("{}.{key}", self.path)
                };
                if !seen.insert(key.clone()) {
                    *self.found.borrow_mut() = Some((path, key));
                    return Err(serde::de::Error::custom("duplicate key"));
                }
                map.next_value_seed(Walk { path, found: self.found })?;
            }
            Ok(())
        }
    }
    let found = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    let _ = Walk {
        path: String::new(),
        found: &found,
    }
    .deserialize(&mut de);
    found.into_inner()
}

/// Parses an issue time: RFC 3339, or `YYYY-MM-DD HH:MM[:SS]` / `YYYY-MM-DDTHH:MM` read as Asia/Shanghai.
pub fn parse_time(s: &str) -> Option<DateTime<FixedOffset>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t);
    }
    for fmt in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
            return Shanghai.from_local_datetime(&n).single().map(|t| t.fixed_offset());
        }
    }
    None
}

fn build(file: &str, raw: RawFile, regions: &Regions, opts: &ParseOptions) -> Result<Forecast, ForecastError> {
    let err = |position: Position, reason: String| rejected(file, position, reason);
    let issued_pos = match (&opts.issued_at, &raw.issued_at) {
        (None, Some((_, pos))) => pos.clone(),
        _ => Position::File,
    };
    let issued_at = match (&opts.issued_at, &raw.issued_at) {
        (Some(t), _) => Some(*t),
        (None, Some((s, pos))) => Some(parse_time(s).ok_or_else(|| {
            err(
                pos.clone(),
                format!("issued_at \"{s}\" is not a time (use RFC 3339 or YYYY-MM-DD HH:MM, Asia/Shanghai)"),
            )
        })?),
        (None, None) => None,
    };
    if raw.rows.is_empty() {
        return Err(err(Position::File, "file has no values".into()));
    }
    let mut series: BTreeMap<RegionCode, Vec<(DayValue, Position)>> = BTreeMap::new();
    for row in raw.rows {
        let region = RegionCode::parse(&row.region.0).map_err(|e| err(row.region.1.clone(), e.to_string()))?;
        let region = match regions.resolve(region) {
            Some(r) => r,
            None if opts.allow_unknown_regions => region,
            None => return Err(err(row.region.1.clone(), format!("unknown region {region}"))),
        };
        let date = NaiveDate::parse_from_str(&row.date.0, "%Y-%m-%d")
            .map_err(|_| err(row.date.1.clone(), format!("date \"{}\" is not YYYY-MM-DD", row.date.0)))?;
        let standard = opts.standard.unwrap_or_else(|| Standard::for_date(date));
        let mut conc = Concentrations::default();
        for (p, v, pos) in &row.conc {
            if *v < 0.0 || v.is_nan() {
                return Err(err(pos.clone(), format!("{} {v} is negative", p.column())));
            }
            if let Some(reason) = beyond_measurement(standard, *p, *v) {
                return Err(err(pos.clone(), reason));
            }
            conc.values.insert(*p, *v);
        }
        let value = match row.aqi {
            Some((v, pos)) => {
                if v < 0.0 || v.is_nan() {
                    return Err(err(pos, format!("aqi {v} is negative")));
                }
                if v.fract() != 0.0 {
                    return Err(err(pos, format!("aqi {v} is not a whole number")));
                }
                if v > 500.0 {
                    return Err(err(pos, format!("aqi {v} is above 500, the top of the AQI scale")));
                }
                let primary = aqi::aqi(standard, &conc).map(|r| r.primary).unwrap_or_default();
                DayValue {
                    date,
                    aqi: Some(v as u16),
                    primary,
                    computed: false,
                    dust: false,
                }
            }
            None => match aqi::aqi(standard, &conc) {
                Some(r) => DayValue {
                    date,
                    aqi: Some(r.aqi),
                    primary: r.primary,
                    computed: true,
                    dust: false,
                },
                None => DayValue {
                    date,
                    aqi: None,
                    primary: Vec::new(),
                    computed: false,
                    dust: false,
                },
            },
        };
        let mut value = value;
        if let Some((text, pos)) = &row.primary {
            let (given, dust) = parse_primary(text).map_err(|reason| err(pos.clone(), reason))?;
            if !given.is_empty() {
                value.primary = given;
            }
            value.dust = dust;
        }
        series.entry(region).or_default().push((value, row.pos));
    }
    let mut out = BTreeMap::new();
    for (region, mut days) in series {
        days.sort_by_key(|(d, _)| d.date);
        for pair in days.windows(2) {
            let (a, b) = (&pair[0].0, &pair[1]);
            if a.date == b.0.date {
                return Err(err(b.1.clone(), format!("duplicate value for region {region} on {}", a.date)));
            }
            if a.date.succ_opt() != Some(b.0.date) {
                return Err(err(
                    b.1.clone(),
                    format!(
                        "region {region} has no value for {} (dates must be consecutive)",
                        a.date.succ_opt().unwrap_or(a.date)
                    ),
                ));
            }
        }
        if days.len() < opts.min_days || days.len() > opts.max_days {
            return Err(err(
                days[0].1.clone(),
                format!(
                    "region {region} has {} days; a forecast covers {} to {} days",
                    days.len(),
                    opts.min_days,
                    opts.max_days
                ),
            ));
        }
        out.insert(region, days.into_iter().map(|(d, _)| d).collect::<Vec<_>>());
    }
    let issued_at = match issued_at {
        Some(t) => t,
        None if opts.require_issued_at => {
            return Err(err(
                Position::File,
                "no issue time: add a \"# issued_at: 2026-12-01 16:00\" line (or \"issued_at\" in JSON)".into(),
            ));
        }
        // Observations: the day before the first value, 16:00 local, is as good as any.
        None => {
            let first = out.values().filter_map(|d| d.first()).map(|d| d.date).min().unwrap_or_default();
            let day_before = first.pred_opt().unwrap_or(first);
            Shanghai
                .from_local_datetime(&day_before.and_hms_opt(16, 0, 0).unwrap_or_default())
                .single()
                .map(|t| t.fixed_offset())
                .unwrap_or_else(DateTime::<FixedOffset>::default)
        }
    };
    if let Some(b) = &opts.issued_bounds {
        let at = issued_at.with_timezone(&chrono::Utc);
        if at > b.latest {
            return Err(err(
                issued_pos,
                format!(
                    "issued_at {} lies in the future: later than {} ({})",
                    issued_at.to_rfc3339(),
                    b.latest.with_timezone(&Shanghai).to_rfc3339(),
                    b.latest_why
                ),
            ));
        }
        if at < b.earliest {
            return Err(err(
                issued_pos,
                format!(
                    "issued_at {} is too old: earlier than {} ({})",
                    issued_at.to_rfc3339(),
                    b.earliest.with_timezone(&Shanghai).to_rfc3339(),
                    b.earliest_why
                ),
            ));
        }
    }
    let source = opts.source.clone().or(raw.source).unwrap_or_else(|| "unknown".into());
    let exercise = opts.exercise || raw.exercise;
    let id = Forecast::compute_id(&issued_at, &source, &out, exercise);
    Ok(Forecast {
        id,
        issued_at,
        source,
        series: out,
        exercise,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regions() -> &'static Regions {
        Regions::shanxi()
    }

    fn parse_str(text: &str) -> Result<Forecast, ForecastError> {
        parse("f.csv", text.as_bytes(), regions(), &ParseOptions::forecast())
    }

    fn error_of(text: &str) -> String {
        parse_str(text).unwrap_err().to_string()
    }

    const HEAD: &str = "# issued_at: 2026-12-01 16:00\n# source: 省生态环境监测和应急保障中心\n";

    #[test]
    fn a_good_csv_gives_one_series_per_region_in_date_order() {
        let f = parse_str(&format!(
            "{HEAD}region,date,aqi\n140100,2026-12-03,230\n140100,2026-12-02,180\n140200,2026-12-02,90\n"
        ))
        .unwrap();
        assert_eq!(f.series.len(), 2);
        let ty = &f.series[&RegionCode::parse("140100").unwrap()];
        assert_eq!(ty.iter().map(|d| d.aqi).collect::<Vec<_>>(), vec![Some(180), Some(230)]);
        assert_eq!(f.source, "省生态环境监测和应急保障中心");
        assert_eq!(f.issue_date(), NaiveDate::from_ymd_opt(2026, 12, 1).unwrap());
    }

    #[test]
    fn a_drill_is_marked_in_the_file_or_by_the_sender_and_is_another_forecast_than_its_real_twin() {
        let body = "region,date,aqi\n140100,2026-12-02,230\n";
        let real = parse_str(&format!("{HEAD}{body}")).unwrap();
        assert!(!real.exercise);
        let csv = parse_str(&format!("{HEAD}# exercise: true\n{body}")).unwrap();
        assert!(csv.exercise);
        assert_ne!(csv.id, real.id, "a drill's copy of a forecast never counts as the real one");
        let json = r#"{"issued_at":"2026-12-01 16:00","source":"省生态环境监测和应急保障中心","exercise":true,"values":[{"region":"140100","date":"2026-12-02","aqi":230}]}"#;
        let json = parse_str(json).unwrap();
        assert!(json.exercise);
        assert_eq!(json.id, csv.id);
        let opts = ParseOptions {
            exercise: true,
            ..ParseOptions::forecast()
        };
        let sent = parse("f.csv", format!("{HEAD}{body}").as_bytes(), regions(), &opts).unwrap();
        assert_eq!((sent.exercise, sent.id), (true, csv.id));
        // A real forecast's record reads and writes as before drills existed.
        assert!(!serde_json::to_string(&real).unwrap().contains("exercise"));
        assert_eq!(
            error_of(&format!("{HEAD}# exercise: yes\n{body}")),
            "f.csv:3:13: exercise must be true or false, not \"yes\""
        );
    }

    #[test]
    fn aqi_is_computed_from_concentrations_when_not_given() {
        let f = parse_str(&format!("{HEAD}region,date,pm25,pm10\n140100,2026-12-02,150,100\n")).unwrap();
        let d = &f.series[&RegionCode::parse("140100").unwrap()][0];
        assert_eq!(d.aqi, Some(200));
        assert!(d.computed);
        assert_eq!(d.primary, vec![Pollutant::Pm25]);
    }

    #[test]
    fn the_same_content_gets_the_same_id_and_other_content_another() {
        let a = parse_str(&format!("{HEAD}region,date,aqi\n140100,2026-12-02,180\n")).unwrap();
        let b = parse_str(&format!("{HEAD}date,region,aqi\n2026-12-02,140100,180\n")).unwrap();
        let c = parse_str(&format!("{HEAD}region,date,aqi\n140100,2026-12-02,181\n")).unwrap();
        assert_eq!(a.id, b.id);
        assert_ne!(a.id, c.id);
    }

    #[test]
    fn json_gives_the_same_forecast_as_csv() {
        let csv = parse_str(&format!("{HEAD}region,date,aqi\n140100,2026-12-02,180\n")).unwrap();
        let json = r#"{"issued_at":"2026-12-01 16:00","source":"省生态环境监测和应急保障中心","values":[{"region":"140100","date":"2026-12-02","aqi":180}]}"#;
        let j = parse("f.json", json.as_bytes(), regions(), &ParseOptions::forecast()).unwrap();
        assert_eq!(csv, j);
    }

    #[test]
    fn each_bad_input_is_rejected_with_its_place_and_reason() {
        let cases: &[(&str, &str)] = &[
            (
                "region,date,aqi\n140100,2026-12-02,180\n",
                "f.csv: no issue time: add a \"# issued_at: 2026-12-01 16:00\" line (or \"issued_at\" in JSON)",
            ),
            (
                "# issued_at: 2026-12-01 16:00\nregion,date,aqi,wind\n",
                "f.csv:2:17: unknown column \"wind\" (expected region, date, aqi, pm25, pm10, so2, no2, co, o3_8h, o3_1h, primary)",
            ),
            (
                "# issued_at: 2026-12-01 16:00\nregion,date,aqi\n149999,2026-12-02,180\n",
                "f.csv:3:1: unknown region 149999",
            ),
            (
                "# issued_at: 2026-12-01 16:00\nregion,date,aqi\n14010,2026-12-02,180\n",
                "f.csv:3:1: region code \"14010\" must be 6 digits",
            ),
            (
                "# issued_at: 2026-12-01 16:00\nregion,date,aqi\n140100,2026-12-02,180\n140100,2026-12-02,190\n",
                "f.csv:4:1: duplicate value for region 140100 on 2026-12-02",
            ),
            (
                "# issued_at: 2026-12-01 16:00\nregion,date,aqi\n140100,2026-12-02,180\n140100,2026-12-04,190\n",
                "f.csv:4:1: region 140100 has no value for 2026-12-03 (dates must be consecutive)",
            ),
            (
                "# issued_at: 2026-12-01 16:00\nregion,date,aqi\n140100,2026-12-02,-5\n",
                "f.csv:3:19: aqi -5 is negative",
            ),
            (
                "# issued_at: 2026-12-01 16:00\nregion,date,pm25\n140100,2026-12-02,-5\n",
                "f.csv:3:19: pm25 -5 is negative",
            ),
            (
                "# issued_at: 2026-12-01 16:00\nregion,date,aqi\n140100,2026-12-02,high\n",
                "f.csv:3:19: aqi \"high\" is not a number",
            ),
            (
                "# issued_at: 2026-12-01 16:00\nregion,date,aqi\n140100,2026-12-02,501\n",
                "f.csv:3:19: aqi 501 is above 500, the top of the AQI scale",
            ),
            (
                "# issued_at: 2026-12-01 16:00\nregion,date,aqi\n140100,2026/12/02,180\n",
                "f.csv:3:8: date \"2026/12/02\" is not YYYY-MM-DD",
            ),
            (
                "# issued_at: 2026-12-01 16:00\nregion,date,aqi\n140100,2026-12-02\n",
                "f.csv:3:8: row has 2 cells, the header has 3",
            ),
            ("   \n", "f.csv: file is empty"),
            (
                "# issued_at: yesterday\nregion,date,aqi\n140100,2026-12-02,180\n",
                "f.csv:1:1: issued_at \"yesterday\" is not a time (use RFC 3339 or YYYY-MM-DD HH:MM, Asia/Shanghai)",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(&error_of(input), expected, "input: {input:?}");
        }
    }

    #[test]
    fn more_than_ten_days_is_not_a_forecast() {
        let mut s = format!("{HEAD}region,date,aqi\n");
        for d in 1..=11 {
            s.push_str(&format!("140100,2026-12-{d:02},100\n"));
        }
        assert_eq!(error_of(&s), "f.csv:4:1: region 140100 has 11 days; a forecast covers 1 to 10 days");
    }

    #[test]
    fn bytes_that_are_not_utf8_are_reported_where_they_start() {
        let mut bytes = b"# issued_at: 2026-12-01 16:00\nregion,date,aqi\n140100,".to_vec();
        bytes.extend([0xff, 0xfe]);
        let e = parse("f.csv", &bytes, regions(), &ParseOptions::forecast()).unwrap_err();
        assert_eq!(e.to_string(), "f.csv:3:8: bytes are not valid UTF-8");
    }

    #[test]
    fn duplicate_json_keys_are_refused_with_their_path() {
        let e = parse_str(
            r#"{"issued_at": "2026-12-01 16:00", "values": [{"region": "140100", "date": "2026-12-02", "aqi": 100, "aqi": 300}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "f.csv: values[0].aqi: key \"aqi\" appears twice");
        let e = parse_str(r#"{"issued_at": "2026-12-01 16:00", "issued_at": "2099-01-01 00:00", "values": []}"#).unwrap_err();
        assert_eq!(e.to_string(), "f.csv: issued_at: key \"issued_at\" appears twice");
    }

    #[test]
    fn concentrations_beyond_measurement_are_refused_naming_the_bound() {
        let e = parse_str("# issued_at: 2026-12-01 16:00\nregion,date,pm25\n140100,2026-12-02,1e308\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.csv:3:19: pm25 1e308 µg/m³ is above 1000 µg/m³, twice the top breakpoint (500) of the hj633-2026 table: no monitor measures that"
        );
        let e = parse_str("# issued_at: 2026-12-01 16:00\nregion,date,co\n140100,2026-12-02,121\n").unwrap_err();
        assert!(e.to_string().contains("co 121 mg/m³ is above 120 mg/m³"), "{e}");
        assert!(parse_str("# issued_at: 2026-12-01 16:00\nregion,date,pm25\n140100,2026-12-02,999\n").is_ok());
    }

    #[test]
    fn a_file_over_the_limit_is_refused_before_it_is_read() {
        let opts = ParseOptions {
            max_bytes: 10,
            ..ParseOptions::forecast()
        };
        let e = parse("f.csv", &[b'a'; 11], regions(), &opts).unwrap_err();
        assert_eq!(e.to_string(), "f.csv: file is 11 bytes, larger than the limit of 10 bytes");
    }

    #[test]
    fn json_errors_name_the_path() {
        let e = parse(
            "f.json",
            br#"{"issued_at":"2026-12-01 16:00","values":[{"region":"140100","date":"2026-12-02","aqi":"x"}]}"#,
            regions(),
            &ParseOptions::forecast(),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "f.json: values[0].aqi: aqi must be a number");
        let e = parse("f.json", br#"{"values": [}"#, regions(), &ParseOptions::forecast()).unwrap_err();
        assert!(e.to_string().starts_with("f.json:1:13: invalid JSON"), "{e}");
    }

    #[test]
    fn observations_accept_other_provinces_and_missing_days() {
        let f = parse(
            "obs.csv",
            b"region,date,aqi,pm25\n110000,2014-02-24,150,\n110000,2014-02-25,,\n",
            regions(),
            &ParseOptions::observations(),
        )
        .unwrap();
        let days = &f.series[&RegionCode::parse("110000").unwrap()];
        assert_eq!(days[1].aqi, None);
    }
}
