//! Air quality index (环境空气质量指数, AQI) per HJ 633-2012 and HJ 633-2026.
//!
//! What comes in: a [`Standard`] (pick one from a date with [`Standard::for_date`]) and pollutant
//! concentrations — a single value for [`iaqi`], or a day's [`Concentrations`] for [`aqi`]. Units are µg/m³,
//! except CO in mg/m³.
//!
//! What goes out: the individual index (IAQI) of one pollutant, or an [`AqiResult`]: the AQI (the largest
//! IAQI), its [`Category`] (优 … 严重污染), the primary pollutants (首要污染物) and every IAQI that went into it.
//!
//! How it is computed:
//!
//! 1. the concentration is rounded (GB/T 8170, round-half-even): PM2.5, PM10, SO2, NO2 and O3 to integers, CO
//!    to one decimal ([`round_concentration`]);
//! 2. `IAQI = (IAQI_Hi − IAQI_Lo) / (BP_Hi − BP_Lo) × (C − BP_Lo) + IAQI_Lo` on the segment of the breakpoint
//!    table that holds `C` ([`breakpoints`]), rounded up to an integer;
//! 3. above the last breakpoint the IAQI is 500, except SO2 1-h and O3 8-h above 800 µg/m³: HJ 633-2012 does not
//!    compute them (the 24-h SO2 and the 1-h O3 stand in), HJ 633-2026 gives 200 and 300;
//! 4. `AQI = max(IAQI)`; when the AQI is above 50 the pollutants whose IAQI equals it are primary.
//!
//! The module is pure: no I/O, no clock, no global state.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// The edition of HJ 633, the technical regulation on the AQI, used to compute an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Standard {
    /// HJ 633-2012, in force until 2026-02-28.
    Hj633_2012,
    /// HJ 633-2026, in force from 2026-03-01 (new PM2.5 and PM10 columns).
    Hj633_2026,
}

impl Standard {
    /// Every standard, oldest first.
    pub const ALL: [Standard; 2] = [Standard::Hj633_2012, Standard::Hj633_2026];

    /// The first day on which HJ 633-2026 applies (2026-03-01).
    pub fn hj633_2026_start() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 1).unwrap_or(NaiveDate::MAX)
    }

    /// The standard that applies to data of date `d`: HJ 633-2012 before 2026-03-01, HJ 633-2026 from then on.
    pub fn for_date(d: NaiveDate) -> Standard {
        if d < Self::hj633_2026_start() {
            Standard::Hj633_2012
        } else {
            Standard::Hj633_2026
        }
    }

    /// Parses an identifier as written by [`Standard::id`] (`"hj633-2012"`, `"hj633-2026"`); ASCII case and
    /// surrounding whitespace are ignored. Anything else gives `None`.
    pub fn parse(s: &str) -> Option<Standard> {
        let s = s.trim();
        Self::ALL.into_iter().find(|st| st.id().eq_ignore_ascii_case(s))
    }

    /// The stable identifier: `"hj633-2012"` or `"hj633-2026"`.
    pub fn id(&self) -> &'static str {
        match self {
            Standard::Hj633_2012 => "hj633-2012",
            Standard::Hj633_2026 => "hj633-2026",
        }
    }
}

impl std::fmt::Display for Standard {
    /// Writes [`Standard::id`].
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

/// A pollutant indicator, i.e. one column of the breakpoint table.
///
/// The 24-h means are `Pm25`, `Pm10`, `So2`, `No2`, `Co`; `O3_8h` is the (daily maximum) 8-h moving mean and
/// `O3_1h` the (daily maximum) 1-h mean; `So2_1h`, `No2_1h`, `Co_1h` are 1-h means, computed against the 1-h
/// breakpoints. The order of the variants is the order used for ties and listings.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pollutant {
    /// PM2.5, 24-h mean, µg/m³.
    Pm25,
    /// PM10, 24-h mean, µg/m³.
    Pm10,
    /// SO2, 24-h mean, µg/m³.
    So2,
    /// NO2, 24-h mean, µg/m³.
    No2,
    /// CO, 24-h mean, mg/m³.
    Co,
    /// O3, 8-h moving mean, µg/m³.
    O3_8h,
    /// O3, 1-h mean, µg/m³.
    O3_1h,
    /// SO2, 1-h mean, µg/m³.
    So2_1h,
    /// NO2, 1-h mean, µg/m³.
    No2_1h,
    /// CO, 1-h mean, mg/m³.
    Co_1h,
}

impl Pollutant {
    /// Every pollutant, in enum order.
    pub const ALL: [Pollutant; 10] = [
        Pollutant::Pm25,
        Pollutant::Pm10,
        Pollutant::So2,
        Pollutant::No2,
        Pollutant::Co,
        Pollutant::O3_8h,
        Pollutant::O3_1h,
        Pollutant::So2_1h,
        Pollutant::No2_1h,
        Pollutant::Co_1h,
    ];

    /// The column name in forecast and observation files: `"pm25"`, `"pm10"`, `"so2"`, `"no2"`, `"co"`,
    /// `"o3_8h"`, `"o3_1h"`, `"so2_1h"`, `"no2_1h"`, `"co_1h"`.
    pub fn column(&self) -> &'static str {
        match self {
            Pollutant::Pm25 => "pm25",
            Pollutant::Pm10 => "pm10",
            Pollutant::So2 => "so2",
            Pollutant::No2 => "no2",
            Pollutant::Co => "co",
            Pollutant::O3_8h => "o3_8h",
            Pollutant::O3_1h => "o3_1h",
            Pollutant::So2_1h => "so2_1h",
            Pollutant::No2_1h => "no2_1h",
            Pollutant::Co_1h => "co_1h",
        }
    }

    /// The pollutant of a column name as written by [`Pollutant::column`]; ASCII case and surrounding whitespace
    /// are ignored. Unknown names give `None`.
    pub fn from_column(s: &str) -> Option<Pollutant> {
        let s = s.trim();
        Self::ALL.into_iter().find(|p| p.column().eq_ignore_ascii_case(s))
    }

    /// How the pollutant is printed, e.g. as a primary pollutant: `"PM2.5"`, `"PM10"`, `"SO2"`, `"NO2"`, `"CO"`,
    /// `"O3_8h"`, `"O3_1h"`, `"SO2_1h"`, `"NO2_1h"`, `"CO_1h"`.
    pub fn label(&self) -> &'static str {
        match self {
            Pollutant::Pm25 => "PM2.5",
            Pollutant::Pm10 => "PM10",
            Pollutant::So2 => "SO2",
            Pollutant::No2 => "NO2",
            Pollutant::Co => "CO",
            Pollutant::O3_8h => "O3_8h",
            Pollutant::O3_1h => "O3_1h",
            Pollutant::So2_1h => "SO2_1h",
            Pollutant::No2_1h => "NO2_1h",
            Pollutant::Co_1h => "CO_1h",
        }
    }

    /// The unit of the concentration: `"mg/m³"` for CO, `"µg/m³"` for the others.
    pub fn unit(&self) -> &'static str {
        match self {
            Pollutant::Co | Pollutant::Co_1h => "mg/m³",
            _ => "µg/m³",
        }
    }

    /// Decimals kept when the concentration is rounded before the IAQI is computed: 1 for CO, 0 for the others.
    pub fn decimals(&self) -> u32 {
        match self {
            Pollutant::Co | Pollutant::Co_1h => 1,
            _ => 0,
        }
    }
}

impl std::fmt::Display for Pollutant {
    /// Writes [`Pollutant::label`].
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// Daily concentrations as given in a forecast row (µg/m³; CO in mg/m³). Missing = None.
///
/// A pollutant that is absent from `values` is missing; [`Concentrations::get`] gives `None` for it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Concentrations {
    /// Concentration per pollutant, in the unit of [`Pollutant::unit`].
    pub values: BTreeMap<Pollutant, f64>,
}

impl Concentrations {
    /// No concentrations.
    pub fn new() -> Self {
        Self::default()
    }

    /// `self` with the concentration of `p` set to `c` (builder style).
    pub fn with(mut self, p: Pollutant, c: f64) -> Self {
        self.values.insert(p, c);
        self
    }

    /// Sets the concentration of `p` to `c`, or removes it when `c` is `None`.
    pub fn set(&mut self, p: Pollutant, c: Option<f64>) {
        match c {
            Some(c) => {
                self.values.insert(p, c);
            }
            None => {
                self.values.remove(&p);
            }
        }
    }

    /// The concentration of `p`, `None` when missing.
    pub fn get(&self, p: Pollutant) -> Option<f64> {
        self.values.get(&p).copied()
    }

    /// Whether no pollutant is given.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl FromIterator<(Pollutant, f64)> for Concentrations {
    /// Collects `(pollutant, concentration)` pairs; a later pair wins over an earlier one of the same pollutant.
    fn from_iter<I: IntoIterator<Item = (Pollutant, f64)>>(iter: I) -> Self {
        Concentrations {
            values: iter.into_iter().collect(),
        }
    }
}

/// The AQI category (空气质量指数类别) with its level (级别) and colour (表示颜色).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Category {
    /// 优, 一级, AQI 0–50, green.
    Excellent,
    /// 良, 二级, AQI 51–100, yellow.
    Good,
    /// 轻度污染, 三级, AQI 101–150, orange.
    Light,
    /// 中度污染, 四级, AQI 151–200, red.
    Moderate,
    /// 重度污染, 五级, AQI 201–300, purple.
    Heavy,
    /// 严重污染, 六级, AQI above 300, maroon.
    Severe,
}

impl Category {
    /// Every category, best first.
    pub const ALL: [Category; 6] = [
        Category::Excellent,
        Category::Good,
        Category::Light,
        Category::Moderate,
        Category::Heavy,
        Category::Severe,
    ];

    /// The category of an AQI: 0–50 优, 51–100 良, 101–150 轻度污染, 151–200 中度污染, 201–300 重度污染,
    /// above 300 严重污染.
    pub fn of(aqi: u16) -> Category {
        match aqi {
            0..=50 => Category::Excellent,
            51..=100 => Category::Good,
            101..=150 => Category::Light,
            151..=200 => Category::Moderate,
            201..=300 => Category::Heavy,
            _ => Category::Severe,
        }
    }

    /// The Chinese name (类别): "优", "良", "轻度污染", "中度污染", "重度污染", "严重污染".
    pub fn name_zh(&self) -> &'static str {
        match self {
            Category::Excellent => "优",
            Category::Good => "良",
            Category::Light => "轻度污染",
            Category::Moderate => "中度污染",
            Category::Heavy => "重度污染",
            Category::Severe => "严重污染",
        }
    }

    /// The Chinese level (级别): "一级" … "六级".
    pub fn grade_zh(&self) -> &'static str {
        match self {
            Category::Excellent => "一级",
            Category::Good => "二级",
            Category::Light => "三级",
            Category::Moderate => "四级",
            Category::Heavy => "五级",
            Category::Severe => "六级",
        }
    }

    /// The colour as `#RRGGBB` (HJ 633 annex A): "#00E400", "#FFFF00", "#FF7E00", "#FF0000", "#99004C",
    /// "#7E0023".
    pub fn colour(&self) -> &'static str {
        match self {
            Category::Excellent => "#00E400",
            Category::Good => "#FFFF00",
            Category::Light => "#FF7E00",
            Category::Moderate => "#FF0000",
            Category::Heavy => "#99004C",
            Category::Severe => "#7E0023",
        }
    }

    /// The Chinese colour name (表示颜色): 绿色, 黄色, 橙色, 红色, 紫色, 褐红色.
    pub fn colour_zh(&self) -> &'static str {
        match self {
            Category::Excellent => "绿色",
            Category::Good => "黄色",
            Category::Light => "橙色",
            Category::Moderate => "红色",
            Category::Heavy => "紫色",
            Category::Severe => "褐红色",
        }
    }

    /// The lowest AQI of the category (0, 51, 101, 151, 201, 301).
    pub fn min_aqi(&self) -> u16 {
        match self {
            Category::Excellent => 0,
            Category::Good => 51,
            Category::Light => 101,
            Category::Moderate => 151,
            Category::Heavy => 201,
            Category::Severe => 301,
        }
    }
}

impl std::fmt::Display for Category {
    /// Writes [`Category::name_zh`].
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name_zh())
    }
}

/// The AQI of a set of concentrations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AqiResult {
    /// The AQI: the largest IAQI.
    pub aqi: u16,
    /// The category of `aqi`.
    pub category: Category,
    /// The primary pollutants (首要污染物): every pollutant whose IAQI equals the AQI, in enum order; empty when
    /// the AQI is 50 or less.
    pub primary: Vec<Pollutant>,
    /// The IAQI of every pollutant that could be computed, in enum order.
    pub iaqi: Vec<(Pollutant, u16)>,
}

/// The IAQI values of the breakpoint rows; a column with fewer breakpoints uses the first ones.
pub const IAQI_LEVELS: [u16; 8] = [0, 50, 100, 150, 200, 300, 400, 500];

/// Concentration above which HJ 633 treats SO2 1-h and O3 8-h specially (µg/m³).
pub const SPECIAL_LIMIT: f64 = 800.0;

const PM25_2012: [f64; 8] = [0.0, 35.0, 75.0, 115.0, 150.0, 250.0, 350.0, 500.0];
const PM25_2026: [f64; 8] = [0.0, 35.0, 60.0, 115.0, 150.0, 250.0, 350.0, 500.0];
const PM10_2012: [f64; 8] = [0.0, 50.0, 150.0, 250.0, 350.0, 420.0, 500.0, 600.0];
const PM10_2026: [f64; 8] = [0.0, 50.0, 120.0, 250.0, 350.0, 420.0, 500.0, 600.0];
const SO2_24H: [f64; 8] = [0.0, 50.0, 150.0, 475.0, 800.0, 1600.0, 2100.0, 2620.0];
const SO2_1H: [f64; 5] = [0.0, 150.0, 500.0, 650.0, 800.0];
const NO2_24H: [f64; 8] = [0.0, 40.0, 80.0, 180.0, 280.0, 565.0, 750.0, 940.0];
const NO2_1H: [f64; 8] = [0.0, 100.0, 200.0, 700.0, 1200.0, 2340.0, 3090.0, 3840.0];
const CO_24H: [f64; 8] = [0.0, 2.0, 4.0, 14.0, 24.0, 36.0, 48.0, 60.0];
const CO_1H: [f64; 8] = [0.0, 5.0, 10.0, 35.0, 60.0, 90.0, 120.0, 150.0];
const O3_1H: [f64; 8] = [0.0, 160.0, 200.0, 300.0, 400.0, 800.0, 1000.0, 1200.0];
const O3_8H: [f64; 6] = [0.0, 100.0, 160.0, 215.0, 265.0, 800.0];

/// The breakpoint concentrations (BP) of a column of the table of `standard`; the i-th breakpoint has the IAQI
/// `IAQI_LEVELS[i]`. SO2 1-h stops at 800 (IAQI 200) and O3 8-h at 800 (IAQI 300).
pub fn breakpoints(standard: Standard, p: Pollutant) -> &'static [f64] {
    match (standard, p) {
        (Standard::Hj633_2012, Pollutant::Pm25) => &PM25_2012,
        (Standard::Hj633_2026, Pollutant::Pm25) => &PM25_2026,
        (Standard::Hj633_2012, Pollutant::Pm10) => &PM10_2012,
        (Standard::Hj633_2026, Pollutant::Pm10) => &PM10_2026,
        (_, Pollutant::So2) => &SO2_24H,
        (_, Pollutant::So2_1h) => &SO2_1H,
        (_, Pollutant::No2) => &NO2_24H,
        (_, Pollutant::No2_1h) => &NO2_1H,
        (_, Pollutant::Co) => &CO_24H,
        (_, Pollutant::Co_1h) => &CO_1H,
        (_, Pollutant::O3_1h) => &O3_1H,
        (_, Pollutant::O3_8h) => &O3_8H,
    }
}

/// Rounds a concentration the way HJ 633 asks before the IAQI is computed: to [`Pollutant::decimals`] decimals
/// (integers; CO one decimal), ties to even (GB/T 8170).
///
/// The tie is decided on the shortest decimal form of `c` (the digits as written in a file), so `2.05` is a tie
/// and becomes `2.0`, `2.15` becomes `2.2` and `115.5` becomes `116`. Non-finite values are returned unchanged.
pub fn round_concentration(p: Pollutant, c: f64) -> f64 {
    round_half_even(c, p.decimals())
}

/// Rounds `c` to `decimals` decimals, ties to even, on the shortest decimal representation of `c`.
fn round_half_even(c: f64, decimals: u32) -> f64 {
    // Values this large are far above every breakpoint (the IAQI is capped anyway), and the digit arithmetic below
    // is exact in f64 only below this.
    if !c.is_finite() || c.abs() >= 1e14 {
        return c;
    }
    let negative = c < 0.0;
    // `Display` of f64 gives the shortest string that parses back to the same value, without an exponent.
    let text = format!("{}", c.abs());
    let (int_part, frac_part) = text.split_once('.').unwrap_or((text.as_str(), ""));
    let keep = decimals as usize;
    if frac_part.len() <= keep {
        return c;
    }
    let (kept, rest) = frac_part.split_at(keep);
    let digit = |b: u8| u64::from(b.wrapping_sub(b'0'));
    let mut n = int_part.bytes().chain(kept.bytes()).fold(0u64, |acc, b| acc * 10 + digit(b));
    let rest = rest.as_bytes();
    let first = rest.first().copied().unwrap_or(b'0');
    let round_up = match first.cmp(&b'5') {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => rest[1..].iter().any(|&b| b != b'0') || n % 2 == 1,
    };
    if round_up {
        n += 1;
    }
    let scale = 10f64.powi(decimals as i32);
    let v = n as f64 / scale;
    if negative { -v } else { v }
}

/// Slack for float noise when rounding the IAQI up: a value within this of an integer is that integer.
const CEIL_EPSILON: f64 = 1e-9;

/// The individual air quality index (IAQI) of pollutant `p` at concentration `c` (µg/m³; CO mg/m³) under
/// `standard`.
///
/// The concentration is rounded first ([`round_concentration`]); the interpolated index is rounded up. Above the
/// last breakpoint the IAQI is 500. `None` when `c` is negative, NaN or infinite, and under HJ 633-2012 for SO2
/// 1-h or O3 8-h above 800 µg/m³ (not computed there; use the SO2 24-h or the O3 1-h value). Under HJ 633-2026
/// those two give 200 and 300.
pub fn iaqi(standard: Standard, p: Pollutant, c: f64) -> Option<u16> {
    if !c.is_finite() || c < 0.0 {
        return None;
    }
    let c = round_concentration(p, c);
    let bps = breakpoints(standard, p);
    let levels = &IAQI_LEVELS[..bps.len()];
    let (&last_bp, &last_level) = (bps.last()?, levels.last()?);
    if c > last_bp {
        return match (standard, p) {
            (Standard::Hj633_2012, Pollutant::So2_1h | Pollutant::O3_8h) => None,
            (Standard::Hj633_2026, Pollutant::So2_1h | Pollutant::O3_8h) => Some(last_level),
            _ => Some(500),
        };
    }
    let segment = bps.windows(2).position(|w| c <= w[1])?;
    let (bp_lo, bp_hi) = (bps[segment], bps[segment + 1]);
    let (i_lo, i_hi) = (f64::from(levels[segment]), f64::from(levels[segment + 1]));
    let value = (i_hi - i_lo) / (bp_hi - bp_lo) * (c - bp_lo) + i_lo;
    let rounded = (value - CEIL_EPSILON).ceil().clamp(i_lo, i_hi);
    // `rounded` is an integer in 0..=500, so the conversion is exact.
    Some(rounded as u16)
}

/// The AQI of a day's concentrations under `standard`: the largest IAQI, its category, the primary pollutants
/// and every IAQI.
///
/// Every given pollutant whose IAQI can be computed counts; a value that [`iaqi`] rejects (negative, NaN,
/// infinite, or HJ 633-2012 SO2 1-h / O3 8-h above 800) is left out, so the SO2 24-h and O3 1-h values stand in
/// when they are given. `None` when no pollutant is given or none has an IAQI.
pub fn aqi(standard: Standard, c: &Concentrations) -> Option<AqiResult> {
    let iaqis: Vec<(Pollutant, u16)> = c
        .values
        .iter()
        .filter_map(|(&p, &v)| iaqi(standard, p, v).map(|i| (p, i)))
        .collect();
    let aqi = iaqis.iter().map(|&(_, i)| i).max()?;
    let primary = if aqi > 50 {
        iaqis.iter().filter(|&&(_, i)| i == aqi).map(|&(p, _)| p).collect()
    } else {
        Vec::new()
    };
    Some(AqiResult {
        aqi,
        category: Category::of(aqi),
        primary,
        iaqi: iaqis,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Pollutant::*;
    use Standard::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
    }

    fn conc(pairs: &[(Pollutant, f64)]) -> Concentrations {
        pairs.iter().copied().collect()
    }

    // ---- breakpoints -------------------------------------------------------------------------------------

    /// The breakpoint table as printed in domain.md §8.3/§8.4, written out again independently of the constants.
    /// `None` marks the cells that the table leaves empty.
    #[rustfmt::skip]
    fn printed_table(standard: Standard) -> Vec<(Pollutant, [Option<f64>; 8])> {
        let s = Some;
        let pm25 = match standard {
            Hj633_2012 => [s(0.0), s(35.0), s(75.0), s(115.0), s(150.0), s(250.0), s(350.0), s(500.0)],
            Hj633_2026 => [s(0.0), s(35.0), s(60.0), s(115.0), s(150.0), s(250.0), s(350.0), s(500.0)],
        };
        let pm10 = match standard {
            Hj633_2012 => [s(0.0), s(50.0), s(150.0), s(250.0), s(350.0), s(420.0), s(500.0), s(600.0)],
            Hj633_2026 => [s(0.0), s(50.0), s(120.0), s(250.0), s(350.0), s(420.0), s(500.0), s(600.0)],
        };
        vec![
            (Pm25, pm25),
            (Pm10, pm10),
            (So2, [s(0.0), s(50.0), s(150.0), s(475.0), s(800.0), s(1600.0), s(2100.0), s(2620.0)]),
            (So2_1h, [s(0.0), s(150.0), s(500.0), s(650.0), s(800.0), None, None, None]),
            (No2, [s(0.0), s(40.0), s(80.0), s(180.0), s(280.0), s(565.0), s(750.0), s(940.0)]),
            (No2_1h, [s(0.0), s(100.0), s(200.0), s(700.0), s(1200.0), s(2340.0), s(3090.0), s(3840.0)]),
            (Co, [s(0.0), s(2.0), s(4.0), s(14.0), s(24.0), s(36.0), s(48.0), s(60.0)]),
            (Co_1h, [s(0.0), s(5.0), s(10.0), s(35.0), s(60.0), s(90.0), s(120.0), s(150.0)]),
            (O3_1h, [s(0.0), s(160.0), s(200.0), s(300.0), s(400.0), s(800.0), s(1000.0), s(1200.0)]),
            (O3_8h, [s(0.0), s(100.0), s(160.0), s(215.0), s(265.0), s(800.0), None, None]),
        ]
    }

    #[test]
    fn every_breakpoint_of_every_column_of_both_standards_maps_to_its_iaqi_exactly() {
        let mut checked = 0;
        for standard in Standard::ALL {
            let table = printed_table(standard);
            assert_eq!(table.len(), Pollutant::ALL.len(), "every pollutant has a column");
            for (p, column) in table {
                let printed: Vec<f64> = column.iter().flatten().copied().collect();
                assert_eq!(breakpoints(standard, p), printed.as_slice(), "{standard} {p} column");
                for (bp, level) in column.iter().zip(IAQI_LEVELS) {
                    if let Some(bp) = *bp {
                        assert_eq!(iaqi(standard, p, bp), Some(level), "{standard} {p} at {bp}");
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 2 * (8 * 8 + 5 + 6));
    }

    #[test]
    fn one_rounding_unit_around_a_breakpoint_stays_within_the_neighbouring_segment() {
        for standard in Standard::ALL {
            for p in Pollutant::ALL {
                let bps = breakpoints(standard, p);
                let unit = if p.decimals() == 1 { 0.1 } else { 1.0 };
                for (i, &bp) in bps.iter().enumerate() {
                    let level = IAQI_LEVELS[i];
                    if i > 0 {
                        let below = iaqi(standard, p, bp - unit);
                        assert!(
                            below.is_some_and(|b| b <= level && b > IAQI_LEVELS[i - 1]),
                            "{standard} {p} at {bp} - {unit}: {below:?}"
                        );
                    }
                    if i + 1 < bps.len() {
                        let above = iaqi(standard, p, bp + unit);
                        assert!(
                            above.is_some_and(|a| a > level && a <= IAQI_LEVELS[i + 1]),
                            "{standard} {p} at {bp} + {unit}: {above:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_iaqi_never_decreases_as_the_concentration_grows() {
        for standard in Standard::ALL {
            for p in Pollutant::ALL {
                let unit = if p.decimals() == 1 { 0.1 } else { 1.0 };
                let mut previous = 0;
                for step in 0..5000 {
                    let c = f64::from(step) * unit;
                    let Some(i) = iaqi(standard, p, c) else { break };
                    assert!(i >= previous, "{standard} {p} at {c}: {i} < {previous}");
                    previous = i;
                }
            }
        }
    }

    // ---- values between breakpoints ------------------------------------------------------------------------

    #[test]
    fn the_test_vectors_of_domain_md_section_8_6_hold() {
        // (pollutant, concentration, IAQI 2012, IAQI 2026)
        let vectors: [(Pollutant, f64, Option<u16>, Option<u16>); 12] = [
            (Pm25, 35.0, Some(50), Some(50)),
            (Pm25, 60.0, Some(82), Some(100)),
            (Pm25, 75.0, Some(100), Some(114)),
            (Pm25, 115.0, Some(150), Some(150)),
            (Pm25, 116.0, Some(152), Some(152)),
            (Pm25, 150.0, Some(200), Some(200)),
            (Pm25, 250.0, Some(300), Some(300)),
            (Pm25, 501.0, Some(500), Some(500)),
            (Pm10, 120.0, Some(85), Some(100)),
            (Pm10, 150.0, Some(100), Some(112)),
            (So2_1h, 900.0, None, Some(200)),
            (O3_8h, 900.0, None, Some(300)),
        ];
        for (p, c, want_2012, want_2026) in vectors {
            assert_eq!(iaqi(Hj633_2012, p, c), want_2012, "2012 {p} {c}");
            assert_eq!(iaqi(Hj633_2026, p, c), want_2026, "2026 {p} {c}");
        }
    }

    #[test]
    fn values_between_breakpoints_are_interpolated_and_rounded_up() {
        // (standard, pollutant, concentration, IAQI); the arithmetic is in the comment.
        let cases = [
            (Hj633_2012, Pm25, 7.0, 10),       // 50/35·7 = 10
            (Hj633_2012, Pm25, 1.0, 2),        // 50/35 = 1.43
            (Hj633_2012, Pm10, 12.0, 12),      // 50/50·12
            (Hj633_2012, No2, 22.0, 28),       // 50/40·22 = 27.5
            (Hj633_2012, Co, 0.4, 10),         // 50/2·0.4
            (Hj633_2012, O3_1h, 83.0, 26),     // 50/160·83 = 25.9
            (Hj633_2012, O3_8h, 79.0, 40),     // 50/100·79 = 39.5
            (Hj633_2012, So2, 500.0, 154),     // 50/325·25 + 150 = 153.8
            (Hj633_2012, So2, 2101.0, 401),    // 100/520·1 + 400 = 400.19
            (Hj633_2012, No2, 600.0, 319),     // 100/185·35 + 300 = 318.9
            (Hj633_2012, Co_1h, 7.5, 75),      // 50/5·2.5 + 50
            (Hj633_2012, No2_1h, 1000.0, 180), // 50/500·300 + 150
            (Hj633_2012, So2_1h, 700.0, 167),  // 50/150·50 + 150 = 166.7
            (Hj633_2026, Pm10, 200.0, 131),    // 50/130·80 + 100 = 130.8
            (Hj633_2026, Pm25, 100.0, 137),    // 50/55·40 + 100 = 136.4
            (Hj633_2026, Pm25, 400.0, 434),    // 100/150·50 + 400 = 433.3
        ];
        for (standard, p, c, want) in cases {
            assert_eq!(iaqi(standard, p, c), Some(want), "{standard} {p} {c}");
        }
    }

    // ---- cap and invalid input -----------------------------------------------------------------------------

    #[test]
    fn above_the_last_breakpoint_the_iaqi_is_capped_at_500() {
        let cases = [
            (Pm25, 500.4),
            (Pm25, 501.0),
            (Pm25, 999_999.0),
            (Pm10, 601.0),
            (So2, 2621.0),
            (No2, 941.0),
            (No2_1h, 5000.0),
            (Co, 60.1),
            (Co_1h, 151.0),
            (O3_1h, 1201.0),
        ];
        for standard in Standard::ALL {
            for (p, c) in cases {
                assert_eq!(iaqi(standard, p, c), Some(500), "{standard} {p} {c}");
            }
        }
    }

    #[test]
    fn negative_nan_and_infinite_concentrations_have_no_iaqi() {
        for standard in Standard::ALL {
            for p in Pollutant::ALL {
                for c in [-0.1, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                    assert_eq!(iaqi(standard, p, c), None, "{standard} {p} {c}");
                }
                assert_eq!(iaqi(standard, p, 0.0), Some(0), "{standard} {p} 0");
                assert_eq!(iaqi(standard, p, -0.0), Some(0), "{standard} {p} -0");
            }
        }
    }

    // ---- SO2 1-h and O3 8-h above 800 ----------------------------------------------------------------------

    #[test]
    fn so2_1h_and_o3_8h_above_800_are_not_computed_in_2012_and_fixed_in_2026() {
        // (pollutant, concentration, 2012, 2026)
        let cases = [
            (So2_1h, 800.0, Some(200), Some(200)),
            (So2_1h, 800.5, Some(200), Some(200)), // rounds half-even to 800
            (So2_1h, 800.6, None, Some(200)),      // rounds to 801
            (So2_1h, 801.0, None, Some(200)),
            (So2_1h, 5000.0, None, Some(200)),
            (O3_8h, 800.0, Some(300), Some(300)),
            (O3_8h, 801.0, None, Some(300)),
            (O3_8h, 5000.0, None, Some(300)),
        ];
        for (p, c, want_2012, want_2026) in cases {
            assert_eq!(iaqi(Hj633_2012, p, c), want_2012, "2012 {p} {c}");
            assert_eq!(iaqi(Hj633_2026, p, c), want_2026, "2026 {p} {c}");
        }
    }

    #[test]
    fn in_2012_aqi_falls_back_to_so2_24h_when_so2_1h_is_above_800() {
        let c = conc(&[(So2_1h, 900.0), (So2, 500.0), (Pm25, 30.0)]);
        let r = aqi(Hj633_2012, &c).expect("SO2 24-h and PM2.5 are given");
        assert_eq!(r.iaqi, vec![(Pm25, 43), (So2, 154)]);
        assert_eq!(r.aqi, 154);
        assert_eq!(r.primary, vec![So2]);

        let r = aqi(Hj633_2026, &c).expect("all given");
        assert_eq!(r.iaqi, vec![(Pm25, 43), (So2, 154), (So2_1h, 200)]);
        assert_eq!(r.aqi, 200);
        assert_eq!(r.primary, vec![So2_1h]);
    }

    #[test]
    fn in_2012_aqi_falls_back_to_o3_1h_when_o3_8h_is_above_800() {
        let c = conc(&[(O3_8h, 900.0), (O3_1h, 1000.0)]);
        let r = aqi(Hj633_2012, &c).expect("O3 1-h is given");
        assert_eq!(r.iaqi, vec![(O3_1h, 400)]);
        assert_eq!((r.aqi, r.primary), (400, vec![O3_1h]));

        let r = aqi(Hj633_2026, &c).expect("both given");
        assert_eq!(r.iaqi, vec![(O3_8h, 300), (O3_1h, 400)]);
        assert_eq!(r.aqi, 400);
    }

    #[test]
    fn in_2012_aqi_is_none_when_the_only_value_is_so2_1h_above_800() {
        assert_eq!(aqi(Hj633_2012, &conc(&[(So2_1h, 900.0)])), None);
        assert_eq!(aqi(Hj633_2012, &conc(&[(O3_8h, 900.0)])), None);
        assert_eq!(aqi(Hj633_2026, &conc(&[(So2_1h, 900.0)])).map(|r| r.aqi), Some(200));
    }

    // ---- rounding of concentrations ------------------------------------------------------------------------

    #[test]
    fn concentrations_are_rounded_half_even_before_the_iaqi_is_computed() {
        // (pollutant, given, rounded)
        let cases = [
            (Pm25, 115.4, 115.0),
            (Pm25, 115.5, 116.0),
            (Pm25, 116.5, 116.0),
            (Pm25, 114.5, 114.0),
            (Pm25, 114.51, 115.0),
            (Pm25, 0.5, 0.0),
            (Pm25, 1.5, 2.0),
            (Pm10, 149.5, 150.0),
            (O3_8h, 800.5, 800.0),
            (Co, 2.05, 2.0),
            (Co, 2.15, 2.2),
            (Co, 2.25, 2.2),
            (Co, 2.251, 2.3),
            (Co, 0.35, 0.4),
            (Co, 0.408, 0.4),
            (Co_1h, 4.95, 5.0),
            (Co, 2.0, 2.0),
            (Pm25, 75.0, 75.0),
        ];
        for (p, given, want) in cases {
            assert_eq!(round_concentration(p, given), want, "{p} {given}");
        }
    }

    #[test]
    fn rounding_decides_the_iaqi_at_a_breakpoint() {
        let cases = [
            (Pm25, 115.4, 150), // → 115
            (Pm25, 115.5, 152), // → 116 (half-even) → 151.4
            (Pm25, 114.5, 149), // → 114 (half-even) → 148.75
            (Co, 2.05, 50),     // → 2.0 (half-even)
            (Co, 2.15, 55),     // → 2.2 (half-even) → 50/2·0.2 + 50
        ];
        for (p, c, want) in cases {
            assert_eq!(iaqi(Hj633_2012, p, c), Some(want), "{p} {c}");
        }
    }

    // ---- AQI and primary pollutants ------------------------------------------------------------------------

    #[test]
    fn aqi_is_none_when_no_pollutant_is_given() {
        for standard in Standard::ALL {
            assert_eq!(aqi(standard, &Concentrations::new()), None);
            assert_eq!(aqi(standard, &conc(&[(Pm25, f64::NAN), (Pm10, -3.0)])), None);
        }
    }

    #[test]
    fn aqi_is_the_largest_iaqi_and_lists_every_iaqi_in_enum_order() {
        let c = conc(&[
            (O3_1h, 83.2),
            (Co, 0.408),
            (Pm25, 7.3),
            (Pm10, 12.2),
            (So2, 9.3),
            (No2, 22.0),
            (O3_8h, 78.8),
        ]);
        let r = aqi(Hj633_2012, &c).expect("values given");
        assert_eq!(
            r.iaqi,
            vec![(Pm25, 10), (Pm10, 12), (So2, 9), (No2, 28), (Co, 10), (O3_8h, 40), (O3_1h, 26),]
        );
        assert_eq!(r.aqi, 40);
        assert_eq!(r.category, Category::Excellent);
        assert!(r.primary.is_empty(), "AQI ≤ 50 has no primary pollutant");
    }

    #[test]
    fn primary_pollutants_are_all_those_tied_at_the_aqi_in_enum_order() {
        // (concentrations, standard, AQI, primary)
        let cases: Vec<(Concentrations, Standard, u16, Vec<Pollutant>)> = vec![
            // PM2.5 150 → 200, PM10 350 → 200, NO2 100 → 110
            (
                conc(&[(No2, 100.0), (Pm10, 350.0), (Pm25, 150.0)]),
                Hj633_2012,
                200,
                vec![Pm25, Pm10],
            ),
            // PM2.5 75 → 100 and PM10 150 → 100 in 2012; in 2026 PM10 150 → 112 and PM2.5 75 → 114
            (conc(&[(Pm25, 75.0), (Pm10, 150.0)]), Hj633_2012, 100, vec![Pm25, Pm10]),
            (conc(&[(Pm25, 75.0), (Pm10, 150.0)]), Hj633_2026, 114, vec![Pm25]),
            // three-way tie at 150: SO2 475, CO 14, O3 8-h 215
            (
                conc(&[(O3_8h, 215.0), (Co, 14.0), (So2, 475.0)]),
                Hj633_2012,
                150,
                vec![So2, Co, O3_8h],
            ),
            // tie at exactly 51 (just above 优): PM10 51 → 50.5, O3 8-h 101 → 50.8
            (conc(&[(O3_8h, 101.0), (Pm10, 51.0)]), Hj633_2012, 51, vec![Pm10, O3_8h]),
            // tie at exactly 50: 优, no primary pollutant
            (conc(&[(Pm25, 35.0), (Pm10, 50.0)]), Hj633_2012, 50, vec![]),
            // a single pollutant above 50 is primary
            (conc(&[(Pm25, 10.0), (O3_8h, 180.0)]), Hj633_2026, 119, vec![O3_8h]),
        ];
        for (c, standard, want_aqi, want_primary) in cases {
            let r = aqi(standard, &c).expect("values given");
            assert_eq!(r.aqi, want_aqi, "{standard} {c:?}");
            assert_eq!(r.primary, want_primary, "{standard} {c:?}");
            assert_eq!(r.category, Category::of(want_aqi));
        }
    }

    #[test]
    fn an_invalid_value_is_left_out_of_the_aqi() {
        let c = conc(&[(Pm25, f64::NAN), (Pm10, 200.0)]);
        let r = aqi(Hj633_2012, &c).expect("PM10 given");
        assert_eq!(r.iaqi, vec![(Pm10, 125)]);
        assert_eq!(r.primary, vec![Pm10]);
    }

    // ---- categories ----------------------------------------------------------------------------------------

    #[test]
    fn categories_change_exactly_at_their_boundaries() {
        use Category::*;
        let cases = [
            (0, Excellent),
            (50, Excellent),
            (51, Good),
            (100, Good),
            (101, Light),
            (150, Light),
            (151, Moderate),
            (200, Moderate),
            (201, Heavy),
            (300, Heavy),
            (301, Severe),
            (500, Severe),
            (u16::MAX, Severe),
        ];
        for (value, want) in cases {
            assert_eq!(Category::of(value), want, "AQI {value}");
        }
        for c in Category::ALL {
            assert_eq!(Category::of(c.min_aqi()), c);
        }
    }

    #[test]
    fn categories_have_the_names_levels_and_colours_of_hj633() {
        use Category::*;
        let cases = [
            (Excellent, "优", "一级", "#00E400", "绿色"),
            (Good, "良", "二级", "#FFFF00", "黄色"),
            (Light, "轻度污染", "三级", "#FF7E00", "橙色"),
            (Moderate, "中度污染", "四级", "#FF0000", "红色"),
            (Heavy, "重度污染", "五级", "#99004C", "紫色"),
            (Severe, "严重污染", "六级", "#7E0023", "褐红色"),
        ];
        for (c, name, grade, colour, colour_zh) in cases {
            assert_eq!(
                (c.name_zh(), c.grade_zh(), c.colour(), c.colour_zh()),
                (name, grade, colour, colour_zh)
            );
            assert_eq!(c.to_string(), name);
        }
    }

    // ---- standards and pollutants --------------------------------------------------------------------------

    #[test]
    fn the_standard_switches_to_2026_on_2026_03_01() {
        let cases = [
            (date(2013, 1, 1), Hj633_2012),
            (date(2026, 2, 28), Hj633_2012),
            (date(2026, 3, 1), Hj633_2026),
            (date(2026, 3, 2), Hj633_2026),
            (date(2031, 1, 1), Hj633_2026),
        ];
        for (d, want) in cases {
            assert_eq!(Standard::for_date(d), want, "{d}");
        }
    }

    #[test]
    fn standards_parse_from_their_ids() {
        let cases = [
            ("hj633-2012", Some(Hj633_2012)),
            ("hj633-2026", Some(Hj633_2026)),
            (" HJ633-2026 ", Some(Hj633_2026)),
            ("hj633", None),
            ("hj633-2020", None),
            ("", None),
        ];
        for (s, want) in cases {
            assert_eq!(Standard::parse(s), want, "{s:?}");
        }
        for st in Standard::ALL {
            assert_eq!(Standard::parse(st.id()), Some(st));
            assert_eq!(st.to_string(), st.id());
        }
    }

    #[test]
    fn pollutants_round_trip_through_their_column_names() {
        let cases = [
            (Pm25, "pm25", "PM2.5"),
            (Pm10, "pm10", "PM10"),
            (So2, "so2", "SO2"),
            (No2, "no2", "NO2"),
            (Co, "co", "CO"),
            (O3_8h, "o3_8h", "O3_8h"),
            (O3_1h, "o3_1h", "O3_1h"),
            (So2_1h, "so2_1h", "SO2_1h"),
            (No2_1h, "no2_1h", "NO2_1h"),
            (Co_1h, "co_1h", "CO_1h"),
        ];
        assert_eq!(cases.len(), Pollutant::ALL.len());
        for (p, column, label) in cases {
            assert_eq!(p.column(), column);
            assert_eq!(p.label(), label);
            assert_eq!(Pollutant::from_column(column), Some(p));
            assert_eq!(Pollutant::from_column(&column.to_uppercase()), Some(p));
        }
        for unknown in ["", "pm2.5", "o3", "aqi"] {
            assert_eq!(Pollutant::from_column(unknown), None, "{unknown:?}");
        }
        assert!(Pollutant::ALL.windows(2).all(|w| w[0] < w[1]), "ALL is in enum order");
    }

    #[test]
    fn concentrations_can_be_built_set_and_read() {
        let mut c = Concentrations::new().with(Pm25, 80.0);
        assert_eq!(c.get(Pm25), Some(80.0));
        assert_eq!(c.get(Pm10), None);
        c.set(Pm10, Some(100.0));
        c.set(Pm25, None);
        assert_eq!(c, conc(&[(Pm10, 100.0)]));
        assert!(!c.is_empty());
    }

    /// Cross-check against independent data: the Beijing daily means of `tests/fixtures`, whose `aqi` column was
    /// computed per HJ 633-2012 from the unrounded means, with the O3 1-h value only where the 8-h one is missing.
    /// A mean printed as `x.5` may have been just below or just above the tie, so such a row only has to fall
    /// between the AQI of the means nudged down and nudged up (the AQI never decreases with a concentration).
    #[test]
    fn the_beijing_fixture_aqi_is_reproduced_from_its_daily_means() {
        let text = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/beijing_daily_2013-2017.csv"));
        let mut lines = text.lines().filter(|l| !l.starts_with('#'));
        let header: Vec<&str> = lines.next().expect("header").split(',').collect();
        assert_eq!(header[2], "aqi");
        let (mut exact, mut bounded) = (0, 0);
        for line in lines {
            let fields: Vec<&str> = line.split(',').collect();
            let Ok(want) = fields[2].parse::<u16>() else {
                continue;
            };
            let nudged = |delta: f64| {
                let mut c: Concentrations = header
                    .iter()
                    .zip(&fields)
                    .skip(3)
                    .filter_map(|(h, v)| {
                        let value: f64 = v.parse().ok()?;
                        let value = if v.ends_with(".5") { value + delta } else { value };
                        Some((Pollutant::from_column(h)?, value))
                    })
                    .collect();
                if c.get(O3_8h).is_some() {
                    c.set(O3_1h, None);
                }
                aqi(Hj633_2012, &c).map(|r| r.aqi)
            };
            let (low, high) = (nudged(-0.01), nudged(0.01));
            if low == high {
                assert_eq!(low, Some(want), "{line}");
                exact += 1;
            } else {
                assert!(
                    low.is_some_and(|l| l <= want) && high.is_some_and(|h| h >= want),
                    "{line}: {want} not in {low:?}..={high:?}"
                );
                bounded += 1;
            }
        }
        assert!(exact > 1300, "only {exact} rows checked exactly ({bounded} bounded)");
    }
}
