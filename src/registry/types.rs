//! The list's domain types, each built by `parse` and carrying its guarantee: [`Uscc`] (GB 32100),
//! [`PermitNo`] (HJ 608), [`Grade`], [`IndustryCode`], [`EmailAddress`], [`Phone`], [`MeasureKind`],
//! and the [`Enterprise`] record that holds them (its emissions per species: `species.rs`).
//!
//! In: text (from CSV cells, YAML scalars, URLs). Out: values that need no further checking. Nothing
//! here reads files or knows the playbook; see `import.rs` and `defaults.rs`.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use super::PerSpecies;
use crate::domain::level::LevelId;
use crate::domain::region::RegionCode;

// ---------------------------------------------------------------------------------------------
// Unified social credit code (统一社会信用代码, GB 32100-2015)
// ---------------------------------------------------------------------------------------------

/// The 31 characters of GB 32100; a character's value is its index. No I, O, S, V, Z.
const USCC_CHARSET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// Weights of positions 1..=17 (`3^(i-1) mod 31`).
const USCC_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
/// Weights of the 8 body characters of an organisation code (GB 11714).
const ORG_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

fn uscc_value(c: u8) -> Option<u32> {
    USCC_CHARSET.iter().position(|&x| x == c).map(|p| p as u32)
}

/// The GB 32100 check character for the first 17 characters, or `None` if one is outside the
/// charset.
pub fn uscc_check_char(first17: &[u8]) -> Option<u8> {
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in first17.iter().zip(USCC_WEIGHTS) {
        sum += uscc_value(*c)? * w;
    }
    Some(USCC_CHARSET[((31 - sum % 31) % 31) as usize])
}

/// The GB 11714 check character of an organisation code body (8 characters `0-9A-Z`): `0-9` or
/// `X`, or `None` if a character is outside `0-9A-Z`.
pub fn org_check_char(body: &[u8]) -> Option<u8> {
    if body.len() != 8 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in body.iter().zip(ORG_WEIGHTS) {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return None,
        };
        sum += v * w;
    }
    Some(match 11 - sum % 11 {
        10 => b'X',
        11 => b'0',
        d => b'0' + d as u8,
    })
}

/// A unified social credit code (统一社会信用代码, GB 32100-2015), the enterprise's key.
///
/// Parsing guarantees 18 characters of the GB 32100 charset, six digits at positions 3–8 that are
/// a GB/T 2260 region code (or `100000` for national registrations), and a correct check
/// character, except for codes built by [`Uscc::parse_with_override`] (legal pilot-era codes that
/// fail the checksum, e.g. `91350100M0001TGQXM`). Lower-case input is upper-cased. Serialized as
/// the 18-character text; deserialization accepts what `parse_with_override` accepts, because
/// stored values were checked when they came in.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uscc([u8; 18]);

impl Uscc {
    /// Parses a code and checks everything, the check character included.
    pub fn parse(s: &str) -> Result<Uscc, UsccError> {
        let code = Self::parse_with_override(s)?;
        let expected = uscc_check_char(&code.0[..17]).unwrap_or(b'?');
        if expected != code.0[17] {
            return Err(UsccError::Checksum {
                code: code.to_string(),
                expected: expected as char,
                found: code.0[17] as char,
            });
        }
        Ok(code)
    }

    /// Parses a code and checks everything except the check character: for the legal pilot codes
    /// that fail it (a per-record override in the list). Also the right parser for look-ups.
    pub fn parse_with_override(s: &str) -> Result<Uscc, UsccError> {
        let upper = s.to_ascii_uppercase();
        let len = upper.chars().count();
        if len != 18 {
            return Err(UsccError::Length { code: s.to_string(), len });
        }
        let bad = upper
            .chars()
            .enumerate()
            .find(|(_, c)| !c.is_ascii() || uscc_value(*c as u8).is_none());
        if let Some((i, ch)) = bad {
            return Err(UsccError::Charset {
                code: upper.clone(),
                position: i + 1,
                ch,
            });
        }
        let bytes = upper.as_bytes();
        let region = &upper[2..8];
        let region_ok = region.bytes().all(|b| b.is_ascii_digit()) && (region == "100000" || RegionCode::parse(region).is_ok());
        if !region_ok {
            return Err(UsccError::RegionDigits {
                code: upper.clone(),
                digits: region.to_string(),
            });
        }
        let mut out = [0u8; 18];
        out.copy_from_slice(bytes);
        Ok(Uscc(out))
    }

    /// Builds a valid code from its parts: the two-character registration authority and category
    /// (`91` for an enterprise), the six-digit region code of the registering authority and the
    /// eight-character organisation code body; both check characters are computed.
    /// Without string round trips: the generator makes 300,000 of these.
    pub fn from_parts(kind: &str, region: &str, org_body: &str) -> Result<Uscc, UsccError> {
        let parts = format!("{kind}{region}{org_body}");
        let shape_ok = kind.len() == 2 && region.len() == 6 && org_body.len() == 8;
        let org_check = org_check_char(org_body.as_bytes()).filter(|_| shape_ok);
        let region_ok = region.bytes().all(|b| b.is_ascii_digit()) && (region == "100000" || RegionCode::parse(region).is_ok());
        let mut out = [0u8; 18];
        match org_check {
            Some(c) if region_ok => {
                out[..16].copy_from_slice(parts.as_bytes());
                out[16] = c;
            }
            // Not buildable: let the parser say why.
            _ => return Uscc::parse(&format!("{parts}??")),
        }
        match uscc_check_char(&out[..17]) {
            Some(check) => {
                out[17] = check;
                Ok(Uscc(out))
            }
            None => Uscc::parse(&format!("{parts}??")),
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes of the charset are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// Positions 3–8: the region code of the registering authority at issue time (never updated
    /// when boundaries change, so it may be a retired code).
    pub fn region_digits(&self) -> &str {
        &self.as_str()[2..8]
    }

    /// The registering authority's region, `None` for national registrations (`100000`).
    pub fn region(&self) -> Option<RegionCode> {
        RegionCode::parse(self.region_digits()).ok()
    }

    /// Positions 9–17: the organisation code (主体标识码, GB 11714) with its own check character.
    pub fn org_code(&self) -> &str {
        &self.as_str()[8..17]
    }

    /// Whether the organisation code's own check character (position 17) is right. Not required
    /// by [`Uscc::parse`]: the GB 32100 check already covers typos, and some registrations carry
    /// organisation codes from before GB 11714 was applied.
    pub fn org_code_check_ok(&self) -> bool {
        org_check_char(&self.0[8..16]) == Some(self.0[16])
    }

    /// Whether the GB 32100 check character is right (false only for overridden pilot codes).
    pub fn checksum_ok(&self) -> bool {
        uscc_check_char(&self.0[..17]) == Some(self.0[17])
    }
}

impl fmt::Display for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uscc({})", self.as_str())
    }
}

impl FromStr for Uscc {
    type Err = UsccError;

    /// Same as [`Uscc::parse`] (strict).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uscc::parse(s)
    }
}

impl Serialize for Uscc {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Uscc {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Uscc::parse_with_override(&s).map_err(serde::de::Error::custom)
    }
}

/// Why a text is not a [`Uscc`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsccError {
    /// Not 18 characters.
    #[error("unified social credit code \"{code}\" must be 18 characters, got {len}")]
    Length {
        /// The text as given.
        code: String,
        /// Its length in characters.
        len: usize,
    },
    /// A character outside the GB 32100 set.
    #[error(
        "unified social credit code {code} has '{ch}' at position {position}, outside the GB 32100 characters (0-9, A-Z without I, O, S, V, Z)"
    )]
    Charset {
        /// The code (upper-cased).
        code: String,
        /// 1-based position.
        position: usize,
        /// The offending character.
        ch: char,
    },
    /// Positions 3–8 are not a region code.
    #[error("unified social credit code {code} has \"{digits}\" at positions 3-8, which is not a GB/T 2260 region code")]
    RegionDigits {
        /// The code (upper-cased).
        code: String,
        /// Positions 3–8.
        digits: String,
    },
    /// The check character is wrong.
    #[error(
        "unified social credit code {code} fails the GB 32100 check: the check character should be {expected}, not {found} (set uscc_override for a legal pilot code)"
    )]
    Checksum {
        /// The code (upper-cased).
        code: String,
        /// The check character the first 17 characters call for.
        expected: char,
        /// The one given.
        found: char,
    },
}

// ---------------------------------------------------------------------------------------------
// Permit number (排污许可证编号 / 固定污染源编码, HJ 608-2017)
// ---------------------------------------------------------------------------------------------

/// A permit number (排污许可证编号, HJ 608-2017): the holder's USCC, a three-digit site sequence
/// and one identifier letter, e.g. `91130200699229617X001P`. Codes of holders without a USCC
/// (`H9…`) are not supported.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PermitNo {
    uscc: Uscc,
    site: u16,
    letter: u8,
}

impl PermitNo {
    /// Parses a permit number whose USCC passes every check.
    pub fn parse(s: &str) -> Result<PermitNo, PermitError> {
        Self::parse_inner(s, false)
    }

    /// Parses a permit number whose USCC may fail the checksum (pilot codes).
    pub fn parse_with_override(s: &str) -> Result<PermitNo, PermitError> {
        Self::parse_inner(s, true)
    }

    fn parse_inner(s: &str, lenient: bool) -> Result<PermitNo, PermitError> {
        let upper = s.to_ascii_uppercase();
        if upper.len() != 22 || upper.chars().count() != 22 {
            return Err(PermitError::Shape(s.to_string()));
        }
        let (code, rest) = upper.split_at(18);
        let uscc = if lenient {
            Uscc::parse_with_override(code)
        } else {
            Uscc::parse(code)
        };
        let uscc = uscc.map_err(|e| PermitError::Uscc {
            permit: upper.clone(),
            source: e,
        })?;
        let (site, letter) = rest.split_at(3);
        let letter = letter.as_bytes()[0];
        if !site.bytes().all(|b| b.is_ascii_digit()) || site == "000" || !letter.is_ascii_uppercase() {
            return Err(PermitError::Shape(s.to_string()));
        }
        Ok(PermitNo {
            uscc,
            site: site.parse().unwrap_or(0),
            letter,
        })
    }

    /// Builds a permit number from its parts.
    pub fn new(uscc: Uscc, site: u16, letter: char) -> Result<PermitNo, PermitError> {
        PermitNo::parse_with_override(&format!("{uscc}{site:03}{letter}"))
    }

    /// The holder.
    pub fn uscc(&self) -> Uscc {
        self.uscc
    }

    /// The site sequence (1 for `…001P`).
    pub fn site(&self) -> u16 {
        self.site
    }

    /// The identifier letter (`P`).
    pub fn letter(&self) -> char {
        self.letter as char
    }
}

impl fmt::Display for PermitNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{:03}{}", self.uscc, self.site, self.letter as char)
    }
}

impl fmt::Debug for PermitNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PermitNo({self})")
    }
}

impl Serialize for PermitNo {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PermitNo {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PermitNo::parse_with_override(&s).map_err(serde::de::Error::custom)
    }
}

/// Why a text is not a [`PermitNo`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PermitError {
    /// Not USCC + 3 digits (001–999) + one letter.
    #[error("permit number \"{0}\" must be a credit code, a 3-digit site number and a letter (HJ 608, e.g. 91130200699229617X001P)")]
    Shape(String),
    /// The USCC part is bad.
    #[error("permit number {permit}: {source}")]
    Uscc {
        /// The permit number.
        permit: String,
        /// What is wrong with its USCC.
        source: UsccError,
    },
}

// ---------------------------------------------------------------------------------------------
// Performance grade (绩效等级)
// ---------------------------------------------------------------------------------------------

/// An environmental performance grade (环保绩效等级), per 环办大气〔2026〕2号 and the 2020 guide.
///
/// Ids (files, APIs): `A+`, `A`, `B`, `B-`, `C`, `D`, `leading`, `non_leading`, `ungraded`.
/// Displayed in Chinese (`A级`, `引领性`, `未分级`). What a grade means in a warning is a playbook
/// value (`playbooks/measures/`), not code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Grade {
    /// A+ (new in 2026): chosen among A enterprises.
    APlus,
    /// A: industry-advanced.
    A,
    /// B: industry-good.
    B,
    /// B- (some industries, 2020 guide): between B and C.
    BMinus,
    /// C: industry-medium.
    C,
    /// D: legal minimum only.
    D,
    /// 引领性 (binary-graded industries), treated like A.
    Leading,
    /// 非引领性 (binary-graded industries).
    NonLeading,
    /// 未分级: not graded.
    Ungraded,
}

impl Grade {
    /// Every grade, in display order.
    pub const ALL: [Grade; 9] = [
        Grade::APlus,
        Grade::A,
        Grade::B,
        Grade::BMinus,
        Grade::C,
        Grade::D,
        Grade::Leading,
        Grade::NonLeading,
        Grade::Ungraded,
    ];

    /// Parses `A+`/`A级`, `B-`, `引领性`/`leading`, `非引领性`/`non_leading`/`non-leading`,
    /// `未分级`/`ungraded` (letters in either case; surrounding spaces ignored).
    pub fn parse(s: &str) -> Result<Grade, GradeError> {
        let t = s.trim();
        let t = if t == "未分级" { t } else { t.strip_suffix('级').unwrap_or(t) };
        let g = match t.to_ascii_lowercase().as_str() {
            "a+" => Grade::APlus,
            "a" => Grade::A,
            "b" => Grade::B,
            "b-" => Grade::BMinus,
            "c" => Grade::C,
            "d" => Grade::D,
            "引领性" | "leading" => Grade::Leading,
            "非引领性" | "non_leading" | "non-leading" => Grade::NonLeading,
            "未分级" | "ungraded" => Grade::Ungraded,
            _ => return Err(GradeError(s.to_string())),
        };
        Ok(g)
    }

    /// The id used in files and APIs (`A+`, `B-`, `leading`).
    pub fn id(&self) -> &'static str {
        match self {
            Grade::APlus => "A+",
            Grade::A => "A",
            Grade::B => "B",
            Grade::BMinus => "B-",
            Grade::C => "C",
            Grade::D => "D",
            Grade::Leading => "leading",
            Grade::NonLeading => "non_leading",
            Grade::Ungraded => "ungraded",
        }
    }

    /// The Chinese name (`A级`, `引领性`, `未分级`).
    pub fn name_zh(&self) -> &'static str {
        match self {
            Grade::APlus => "A+级",
            Grade::A => "A级",
            Grade::B => "B级",
            Grade::BMinus => "B-级",
            Grade::C => "C级",
            Grade::D => "D级",
            Grade::Leading => "引领性",
            Grade::NonLeading => "非引领性",
            Grade::Ungraded => "未分级",
        }
    }
}

impl fmt::Display for Grade {
    /// The Chinese name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name_zh())
    }
}

impl FromStr for Grade {
    type Err = GradeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Grade::parse(s)
    }
}

impl TryFrom<String> for Grade {
    type Error = GradeError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Grade::parse(&s)
    }
}

impl From<Grade> for String {
    fn from(g: Grade) -> String {
        g.id().to_string()
    }
}

/// A text that is not a [`Grade`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown grade \"{0}\" (expected one of A+, A, B, B-, C, D, 引领性, 非引领性, 未分级)")]
pub struct GradeError(pub String);

// ---------------------------------------------------------------------------------------------
// Small text types
// ---------------------------------------------------------------------------------------------

/// A GB/T 4754 industry class (国民经济行业分类, 4 digits, e.g. `2521` 炼焦), as the permit register
/// uses it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IndustryCode(u16);

impl IndustryCode {
    /// Exactly four ASCII digits.
    pub fn parse(s: &str) -> Result<IndustryCode, String> {
        if s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(IndustryCode(s.parse().unwrap_or(0)))
        } else {
            Err(format!("industry code \"{s}\" must be 4 digits (GB/T 4754, e.g. 2521)"))
        }
    }

    /// The numeric value.
    pub fn as_u16(&self) -> u16 {
        self.0
    }
}

impl fmt::Display for IndustryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.0)
    }
}

impl fmt::Debug for IndustryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IndustryCode({self})")
    }
}

impl Serialize for IndustryCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IndustryCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        IndustryCode::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An email address, checked for shape (one `@`, a plausible local part, a dotted domain with
/// a letter top-level label). Deliverability is the mailer's business.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses an address (surrounding spaces trimmed; the domain lower-cased).
    pub fn parse(s: &str) -> Result<EmailAddress, String> {
        let bad = || format!("email \"{s}\" is not a valid address");
        let t = s.trim();
        let (local, domain) = t.split_once('@').ok_or_else(bad)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local.bytes().all(|b| b.is_ascii_alphanumeric() || b"._%+-".contains(&b));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty() && !l.starts_with('-') && !l.ends_with('-') && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
            && labels
                .last()
                .is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic()));
        if local_ok && domain_ok {
            Ok(EmailAddress(format!("{local}@{}", domain.to_ascii_lowercase())))
        } else {
            Err(bad())
        }
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({})", self.0)
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        EmailAddress::parse(&s)
    }
}

impl From<EmailAddress> for String {
    fn from(e: EmailAddress) -> String {
        e.0
    }
}

/// A mainland phone number: a mobile (11 digits, `1[3-9]…`) or a landline with its area code
/// (`0351-7654321`). Spaces are dropped; one `-` after the area code is kept as written.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

impl Phone {
    /// Parses a number.
    pub fn parse(s: &str) -> Result<Phone, String> {
        let t: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        let digits: String = t.chars().filter(|c| *c != '-').collect();
        let all_digits = digits.bytes().all(|b| b.is_ascii_digit());
        let mobile = digits.len() == 11 && digits.starts_with('1') && (b'3'..=b'9').contains(&digits.as_bytes()[1]);
        let landline = digits.starts_with('0') && (10..=12).contains(&digits.len()) && t.matches('-').count() <= 1;
        if all_digits && !t.starts_with('-') && !t.ends_with('-') && (mobile || landline) {
            Ok(Phone(t))
        } else {
            Err(format!(
                "phone \"{s}\" is neither a mobile number (11 digits from 13) nor a landline with its area code (0351-7654321)"
            ))
        }
    }

    /// The number as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.0)
    }
}

impl TryFrom<String> for Phone {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Phone::parse(&s)
    }
}

impl From<Phone> for String {
    fn from(p: Phone) -> String {
        p.0
    }
}

// ---------------------------------------------------------------------------------------------
// Measures
// ---------------------------------------------------------------------------------------------

/// What an enterprise (or one of its lines) does during a warning.
///
/// Ids in files (`kind` + `value`): `stop`, `limit_percent` x, `stop_share_percent` x,
/// `extend_coking_hours` h, `stop_trucks_up_to_standard` N, `stop_road_transport`,
/// `cap_load_percent` x, `self_determined`, `other` (text in `note`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum MeasureKind {
    /// 停产: stop production.
    Stop,
    /// 限产 x %: cut output by x % of the limit baseline (domain.md §3), i.e. run at most at
    /// (100 − x) % of it.
    LimitPercent(f64),
    /// 停产 x %（以生产线计）: stop x % of the lines or equipment (e.g. 高炉停产50%).
    StopSharePercent(f64),
    /// 延长出焦时间至 h 小时: extend coking time to h hours.
    ExtendCokingHours(u32),
    /// 停止使用国N及以下重型载货车辆（含燃气）: no heavy trucks of emission standard ≤ China N.
    StopTrucksUpToStandard(u8),
    /// 停止公路运输: no road transport at all.
    StopRoadTransport,
    /// 保障类 capped load: run at most at x % of the limit baseline (以热定产, 以量定产).
    CapLoadPercent(f64),
    /// 自主减排: self-determined reductions (A, A+, 引领性); still notified and acknowledged.
    SelfDetermined,
    /// Anything else, described in Chinese.
    Other(String),
}

impl MeasureKind {
    /// The kind ids accepted in files.
    pub const IDS: [&'static str; 9] = [
        "stop",
        "limit_percent",
        "stop_share_percent",
        "extend_coking_hours",
        "stop_trucks_up_to_standard",
        "stop_road_transport",
        "cap_load_percent",
        "self_determined",
        "other",
    ];

    /// Builds a kind from its id and value text (`other` takes its text from `value`). The
    /// messages are part of the import interface.
    pub fn parse(kind: &str, value: Option<&str>) -> Result<MeasureKind, String> {
        let value = value.map(str::trim).filter(|v| !v.is_empty());
        let none = |k: MeasureKind| match value {
            None => Ok(k),
            Some(v) => Err(format!("measure {kind} takes no value, got \"{v}\"")),
        };
        let percent = |v: Option<&str>| -> Result<f64, String> {
            let v = v.ok_or_else(|| format!("measure {kind} needs a value (a percentage)"))?;
            let x: f64 = v
                .parse()
                .ok()
                .filter(|x: &f64| x.is_finite())
                .ok_or_else(|| format!("{kind} \"{v}\" is not a number"))?;
            if x > 100.0 {
                Err(format!("{kind} {v} is over 100 %"))
            } else if x <= 0.0 {
                Err(format!("{kind} {v} must be above 0"))
            } else {
                Ok(x)
            }
        };
        let integer = |v: Option<&str>, what: &str, range: std::ops::RangeInclusive<u32>| -> Result<u32, String> {
            let v = v.ok_or_else(|| format!("measure {kind} needs a value ({what})"))?;
            v.parse::<u32>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| format!("{kind} \"{v}\" must be {what} from {} to {}", range.start(), range.end()))
        };
        match kind.trim() {
            "stop" => none(MeasureKind::Stop),
            "limit_percent" => Ok(MeasureKind::LimitPercent(percent(value)?)),
            "stop_share_percent" => Ok(MeasureKind::StopSharePercent(percent(value)?)),
            "extend_coking_hours" => Ok(MeasureKind::ExtendCokingHours(integer(value, "whole hours", 1..=240)?)),
            "stop_trucks_up_to_standard" => Ok(MeasureKind::StopTrucksUpToStandard(
                integer(value, "an emission standard number", 1..=6)? as u8,
            )),
            "stop_road_transport" => none(MeasureKind::StopRoadTransport),
            "cap_load_percent" => Ok(MeasureKind::CapLoadPercent(percent(value)?)),
            "self_determined" => none(MeasureKind::SelfDetermined),
            "other" => match value {
                Some(t) => Ok(MeasureKind::Other(t.to_string())),
                None => Err("measure other needs its text as the value".to_string()),
            },
            k => Err(format!(
                "unknown measure kind \"{k}\" (expected one of {})",
                MeasureKind::IDS.join(", ")
            )),
        }
    }

    /// The id (`limit_percent`).
    pub fn id(&self) -> &'static str {
        match self {
            MeasureKind::Stop => "stop",
            MeasureKind::LimitPercent(_) => "limit_percent",
            MeasureKind::StopSharePercent(_) => "stop_share_percent",
            MeasureKind::ExtendCokingHours(_) => "extend_coking_hours",
            MeasureKind::StopTrucksUpToStandard(_) => "stop_trucks_up_to_standard",
            MeasureKind::StopRoadTransport => "stop_road_transport",
            MeasureKind::CapLoadPercent(_) => "cap_load_percent",
            MeasureKind::SelfDetermined => "self_determined",
            MeasureKind::Other(_) => "other",
        }
    }

    /// The value as written in files (empty for kinds without one).
    pub fn value_text(&self) -> String {
        match self {
            MeasureKind::LimitPercent(x) | MeasureKind::StopSharePercent(x) | MeasureKind::CapLoadPercent(x) => fmt_num(*x),
            MeasureKind::ExtendCokingHours(h) => h.to_string(),
            MeasureKind::StopTrucksUpToStandard(n) => n.to_string(),
            MeasureKind::Other(t) => t.clone(),
            MeasureKind::Stop | MeasureKind::StopRoadTransport | MeasureKind::SelfDetermined => String::new(),
        }
    }

    /// The measure in Chinese, as notices and boards state it.
    pub fn text_zh(&self) -> String {
        match self {
            MeasureKind::Stop => "停产".to_string(),
            MeasureKind::LimitPercent(x) => format!("限产{}%", fmt_num(*x)),
            MeasureKind::StopSharePercent(x) => format!("停产{}%（以生产线计）", fmt_num(*x)),
            MeasureKind::ExtendCokingHours(h) => format!("出焦时间延长至{h}小时"),
            MeasureKind::StopTrucksUpToStandard(n) => {
                format!("停止使用国{}及以下重型载货车辆（含燃气）进行物料运输", standard_zh(*n))
            }
            MeasureKind::StopRoadTransport => "停止公路运输".to_string(),
            MeasureKind::CapLoadPercent(x) => format!("保障类：负荷不超过核定基准的{}%", fmt_num(*x)),
            MeasureKind::SelfDetermined => "自主采取减排措施".to_string(),
            MeasureKind::Other(t) => t.clone(),
        }
    }

    /// The share of what it applies to that this measure removes, where the kind itself says so:
    /// stop 1, limit x → x/100, stop share x → x/100, capped load x → 1 − x/100. Other kinds
    /// (coking time, trucks, self-determined, other) say nothing by themselves: `None`.
    pub fn implied_fraction(&self) -> Option<f64> {
        match self {
            MeasureKind::Stop => Some(1.0),
            MeasureKind::LimitPercent(x) | MeasureKind::StopSharePercent(x) => Some(x / 100.0),
            MeasureKind::CapLoadPercent(x) => Some(1.0 - x / 100.0),
            _ => None,
        }
    }
}

fn standard_zh(n: u8) -> &'static str {
    ["零", "一", "二", "三", "四", "五", "六"]
        .get(usize::from(n))
        .copied()
        .unwrap_or("?")
}

/// A number without a trailing `.0` (`20`, `12.5`).
pub(crate) fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// One own measure (一厂一策) of an enterprise for one level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measure {
    /// The level id (`yellow`).
    pub level: LevelId,
    /// The line it applies to; `None` for the whole enterprise.
    pub line: Option<String>,
    /// What is done.
    #[serde(flatten)]
    pub kind: MeasureKind,
    /// The process or equipment named (工序/设备, e.g. 烧结机), if any.
    pub process: Option<String>,
    /// Expected reduction as a fraction of the enterprise's baseline, per pollutant (0..=1).
    pub reduction: PerSpecies,
    /// Free text (key indicators such as 用电量, 天然气用量).
    pub note: String,
}

// ---------------------------------------------------------------------------------------------
// The enterprise record
// ---------------------------------------------------------------------------------------------

/// A grade with the date from which it applies and why it was given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradeRecord {
    /// The grade.
    pub grade: Grade,
    /// Effective from (None when the list does not say).
    pub since: Option<NaiveDate>,
    /// Why (创A升B, downgrade after a violation, annual revision …).
    pub reason: String,
}

/// The enterprise's industry: its GB/T 4754 class and, for key industries (重点行业), the id used
/// by the measure defaults (`cement`, `coking` …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Industry {
    /// GB/T 4754 class.
    pub code: IndustryCode,
    /// Key-industry id from `playbooks/measures/*.yaml`; `None` for other air-polluting enterprises.
    pub key: Option<String>,
}

/// 保障类 (guarantee) categories, exempt from the usual measures under a capped load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExemptionKind {
    /// 民生保障 (heating, waste and hazardous-waste treatment): 以热定产.
    Livelihood,
    /// 战略性新兴产业.
    StrategicEmerging,
    /// 军工.
    Military,
    /// 外贸订单 (以量定产).
    Export,
    /// 重点建设工程.
    KeyProject,
    /// 其他保障类.
    Other,
}

impl ExemptionKind {
    /// Every kind.
    pub const ALL: [ExemptionKind; 6] = [
        ExemptionKind::Livelihood,
        ExemptionKind::StrategicEmerging,
        ExemptionKind::Military,
        ExemptionKind::Export,
        ExemptionKind::KeyProject,
        ExemptionKind::Other,
    ];

    /// Parses the id (`livelihood`) or the Chinese name (`民生保障`).
    pub fn parse(s: &str) -> Result<ExemptionKind, String> {
        ExemptionKind::ALL
            .into_iter()
            .find(|k| k.id() == s.trim() || k.name_zh() == s.trim())
            .ok_or_else(|| {
                let ids: Vec<&str> = ExemptionKind::ALL.iter().map(|k| k.id()).collect();
                format!("unknown exemption kind \"{s}\" (expected one of {})", ids.join(", "))
            })
    }

    /// Id in files.
    pub fn id(&self) -> &'static str {
        match self {
            ExemptionKind::Livelihood => "livelihood",
            ExemptionKind::StrategicEmerging => "strategic_emerging",
            ExemptionKind::Military => "military",
            ExemptionKind::Export => "export",
            ExemptionKind::KeyProject => "key_project",
            ExemptionKind::Other => "other",
        }
    }

    /// Chinese name.
    pub fn name_zh(&self) -> &'static str {
        match self {
            ExemptionKind::Livelihood => "民生保障",
            ExemptionKind::StrategicEmerging => "战略性新兴产业",
            ExemptionKind::Military => "军工",
            ExemptionKind::Export => "外贸",
            ExemptionKind::KeyProject => "重点建设工程",
            ExemptionKind::Other => "其他保障类",
        }
    }
}

/// A 保障类 exemption: the category and the highest load allowed during warnings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exemption {
    /// Category.
    pub kind: ExemptionKind,
    /// Highest load, % of the limit baseline (0 < x ≤ 100).
    pub max_load_percent: f64,
}

/// The production-cut baseline of domain.md §3 for a line, per day: "以环评批复产能、排污许可载明产能、
/// 前一年正常生产实际产量三者日均值的最小值为基准".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LimitBaseline {
    /// EIA-approved capacity per day (环评批复产能).
    pub eia: Option<f64>,
    /// Capacity in the emission permit per day (排污许可载明产能).
    pub permit: Option<f64>,
    /// Last year's normal output per day (前一年正常生产实际产量).
    pub last_year: Option<f64>,
}

impl LimitBaseline {
    /// The smallest of the figures given, `None` when none is.
    pub fn base(&self) -> Option<f64> {
        [self.eia, self.permit, self.last_year].into_iter().flatten().reduce(f64::min)
    }
}

/// A production line, process or piece of equipment (生产线/工序/设备).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// Id within the enterprise (`L1`, `1#焦炉`).
    pub id: String,
    /// Name (`1#焦炉（5.5米捣固）`).
    pub name: String,
    /// Design capacity per day, in `unit`.
    pub capacity: f64,
    /// Unit of capacity and output (`t/d`).
    pub unit: String,
    /// The §3 figures for limits.
    pub limit_baseline: LimitBaseline,
}

impl Line {
    /// What "限产 x %" is measured against: the smallest of the §3 figures given, else the design
    /// capacity.
    pub fn limit_base(&self) -> f64 {
        self.limit_baseline.base().unwrap_or(self.capacity)
    }

    /// Output allowed per day under a measure: `limit_base × (1 − x/100)` for a limit,
    /// `limit_base × x/100` for a capped load, 0 for a stop; `None` for kinds that do not set
    /// output.
    pub fn allowed_output(&self, kind: &MeasureKind) -> Option<f64> {
        match kind {
            MeasureKind::Stop => Some(0.0),
            MeasureKind::LimitPercent(x) => Some(self.limit_base() * (1.0 - x / 100.0)),
            MeasureKind::CapLoadPercent(x) => Some(self.limit_base() * x / 100.0),
            _ => None,
        }
    }
}

/// A person to notify or call: the enterprise's 责任人, or a line's 工序责任人.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    /// Role (`环保负责人`, `工序责任人`).
    pub role: String,
    /// Name.
    pub name: String,
    /// Email for notices; line contacts may have none.
    pub email: Option<EmailAddress>,
    /// Phone.
    pub phone: Phone,
    /// The line this person answers for; `None` for the whole enterprise.
    pub line: Option<String>,
}

/// An enterprise on the emergency reduction list (应急减排清单), with its 一厂一策 record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enterprise {
    /// Unified social credit code (the key).
    pub uscc: Uscc,
    /// The code is a legal pilot code that fails the checksum (set by the operator).
    pub uscc_override: bool,
    /// Emission permit number, if it has one.
    pub permit: Option<PermitNo>,
    /// Registered name.
    pub name: String,
    /// The county-level region where it operates (supervision and warnings).
    pub county: RegionCode,
    /// Industry.
    pub industry: Industry,
    /// Current grade.
    pub grade: GradeRecord,
    /// Earlier grades, oldest first.
    pub grade_history: Vec<GradeRecord>,
    /// 保障类 exemption, if any.
    pub exemption: Option<Exemption>,
    /// Baseline emissions (减排基数), t/day.
    pub baseline: PerSpecies,
    /// Lines, processes, equipment.
    pub lines: Vec<Line>,
    /// Contacts; the first without a line is the 责任人.
    pub contacts: Vec<Contact>,
    /// Own measures (一厂一策), any level, any line.
    pub measures: Vec<Measure>,
}

impl Enterprise {
    /// The line with this id.
    pub fn line(&self, id: &str) -> Option<&Line> {
        self.lines.iter().find(|l| l.id == id)
    }

    /// The enterprise's 责任人: the first contact not tied to a line (else the first contact).
    pub fn responsible(&self) -> Option<&Contact> {
        self.contacts.iter().find(|c| c.line.is_none()).or_else(|| self.contacts.first())
    }

    /// Addresses to notify: every contact email, enterprise-wide contacts first, no repeats.
    pub fn notify_emails(&self) -> Vec<&EmailAddress> {
        let mut out: Vec<&EmailAddress> = Vec::new();
        let ordered = self
            .contacts
            .iter()
            .filter(|c| c.line.is_none())
            .chain(self.contacts.iter().filter(|c| c.line.is_some()));
        for e in ordered.filter_map(|c| c.email.as_ref()) {
            if !out.contains(&e) {
                out.push(e);
            }
        }
        out
    }

    /// Own measures for a level, in file order.
    pub fn own_measures(&self, level: &str) -> impl Iterator<Item = &Measure> {
        self.measures.iter().filter(move |m| m.level == level)
    }
}

// ---------------------------------------------------------------------------------------------
// The packed form of an enterprise
// ---------------------------------------------------------------------------------------------

/// Writes the packed form's pieces.
struct PackWriter<'a>(&'a mut Vec<u8>);

impl PackWriter<'_> {
    fn u8(&mut self, x: u8) {
        self.0.push(x);
    }

    fn uint(&mut self, mut x: u64) {
        while x >= 0x80 {
            self.0.push((x as u8) | 0x80);
            x >>= 7;
        }
        self.0.push(x as u8);
    }

    fn f64(&mut self, x: f64) {
        self.0.extend_from_slice(&x.to_bits().to_le_bytes());
    }

    fn opt_f64(&mut self, x: Option<f64>) {
        match x {
            None => self.u8(0),
            Some(x) => {
                self.u8(1);
                self.f64(x);
            }
        }
    }

    fn str(&mut self, s: &str) {
        self.uint(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }

    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            None => self.u8(0),
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
        }
    }

    fn uscc(&mut self, u: &Uscc) {
        self.0.extend_from_slice(&u.0);
    }

    fn per(&mut self, p: &PerSpecies) {
        for s in super::Species::ALL {
            self.f64(p[s]);
        }
    }

    fn grade(&mut self, g: &GradeRecord) {
        self.u8(Grade::ALL.iter().position(|x| *x == g.grade).unwrap_or(0) as u8);
        match g.since {
            None => self.u8(0),
            Some(d) => {
                self.u8(1);
                self.0.extend_from_slice(&d.num_days_from_ce().to_le_bytes());
            }
        }
        self.str(&g.reason);
    }
}

/// Reads the packed form's pieces; `None` past the end or on a value [`PackWriter`] does not write.
struct PackReader<'a>(&'a [u8]);

impl PackReader<'_> {
    fn bytes(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.bytes(1).map(|b| b[0])
    }

    fn uint(&mut self) -> Option<u64> {
        let mut x = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            x |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(x);
            }
        }
        None
    }

    fn f64(&mut self) -> Option<f64> {
        Some(f64::from_bits(u64::from_le_bytes(self.bytes(8)?.try_into().ok()?)))
    }

    fn flag(&mut self) -> Option<bool> {
        match self.u8()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    fn opt_f64(&mut self) -> Option<Option<f64>> {
        Some(if self.flag()? { Some(self.f64()?) } else { None })
    }

    fn string(&mut self) -> Option<String> {
        let n = usize::try_from(self.uint()?).ok()?;
        String::from_utf8(self.bytes(n)?.to_vec()).ok()
    }

    fn opt_string(&mut self) -> Option<Option<String>> {
        Some(if self.flag()? { Some(self.string()?) } else { None })
    }

    fn uscc(&mut self) -> Option<Uscc> {
        Some(Uscc(self.bytes(18)?.try_into().ok()?))
    }

    fn per(&mut self) -> Option<PerSpecies> {
        let mut p = PerSpecies::default();
        for s in super::Species::ALL {
            p[s] = self.f64()?;
        }
        Some(p)
    }

    fn grade(&mut self) -> Option<GradeRecord> {
        let grade = *Grade::ALL.get(usize::from(self.u8()?))?;
        let since = if self.flag()? {
            let days = i32::from_le_bytes(self.bytes(4)?.try_into().ok()?);
            Some(NaiveDate::from_num_days_from_ce_opt(days)?)
        } else {
            None
        };
        Some(GradeRecord {
            grade,
            since,
            reason: self.string()?,
        })
    }

    fn vec<T>(&mut self, mut item: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        let n = usize::try_from(self.uint()?).ok()?;
        let mut out = Vec::with_capacity(n.min(self.0.len()));
        for _ in 0..n {
            out.push(item(self)?);
        }
        Some(out)
    }
}

impl Enterprise {
    /// Appends the enterprise's packed form to `out`: every field, exactly (numbers bit for bit), in
    /// a third of the room its JSON takes and a fraction of what it takes in memory. For holding
    /// a national list while it is imported ([`Enterprise::unpack`] gives it back).
    pub fn pack(&self, out: &mut Vec<u8>) {
        // Every field of every part is written: a field added to one of these types stops the build
        // here until the packed form carries it (the seed list's round trip is tested too).
        let Enterprise {
            uscc: _,
            uscc_override: _,
            permit: _,
            name: _,
            county: _,
            industry: Industry { code: _, key: _ },
            grade: GradeRecord {
                grade: _,
                since: _,
                reason: _,
            },
            grade_history: _,
            exemption: _,
            baseline: _,
            lines: _,
            contacts: _,
            measures: _,
        } = self;
        let _parts = |l: &Line, c: &Contact, m: &Measure, x: &Exemption, p: &PermitNo| {
            let Line {
                id: _,
                name: _,
                capacity: _,
                unit: _,
                limit_baseline:
                    LimitBaseline {
                        eia: _,
                        permit: _,
                        last_year: _,
                    },
            } = l;
            let Contact {
                role: _,
                name: _,
                email: _,
                phone: _,
                line: _,
            } = c;
            let Measure {
                level: _,
                line: _,
                kind: _,
                process: _,
                reduction: _,
                note: _,
            } = m;
            let Exemption {
                kind: _,
                max_load_percent: _,
            } = x;
            let PermitNo {
                uscc: _,
                site: _,
                letter: _,
            } = p;
        };
        let mut w = PackWriter(out);
        w.uscc(&self.uscc);
        w.u8(u8::from(self.uscc_override));
        match &self.permit {
            None => w.u8(0),
            Some(p) => {
                w.u8(1);
                w.uscc(&p.uscc);
                w.uint(u64::from(p.site));
                w.u8(p.letter);
            }
        }
        w.str(&self.name);
        w.uint(u64::from(self.county.as_u32()));
        w.uint(u64::from(self.industry.code.0));
        w.opt_str(self.industry.key.as_deref());
        w.grade(&self.grade);
        w.uint(self.grade_history.len() as u64);
        for g in &self.grade_history {
            w.grade(g);
        }
        match &self.exemption {
            None => w.u8(0),
            Some(x) => {
                w.u8(1);
                w.u8(ExemptionKind::ALL.iter().position(|k| *k == x.kind).unwrap_or(0) as u8);
                w.f64(x.max_load_percent);
            }
        }
        w.per(&self.baseline);
        w.uint(self.lines.len() as u64);
        for l in &self.lines {
            w.str(&l.id);
            w.str(&l.name);
            w.f64(l.capacity);
            w.str(&l.unit);
            w.opt_f64(l.limit_baseline.eia);
            w.opt_f64(l.limit_baseline.permit);
            w.opt_f64(l.limit_baseline.last_year);
        }
        w.uint(self.contacts.len() as u64);
        for c in &self.contacts {
            w.str(&c.role);
            w.str(&c.name);
            w.opt_str(c.email.as_ref().map(|e| e.0.as_str()));
            w.str(&c.phone.0);
            w.opt_str(c.line.as_deref());
        }
        w.uint(self.measures.len() as u64);
        for m in &self.measures {
            w.str(m.level.as_str());
            w.opt_str(m.line.as_deref());
            match &m.kind {
                MeasureKind::Stop => w.u8(0),
                MeasureKind::LimitPercent(x) => {
                    w.u8(1);
                    w.f64(*x);
                }
                MeasureKind::StopSharePercent(x) => {
                    w.u8(2);
                    w.f64(*x);
                }
                MeasureKind::ExtendCokingHours(h) => {
                    w.u8(3);
                    w.uint(u64::from(*h));
                }
                MeasureKind::StopTrucksUpToStandard(n) => {
                    w.u8(4);
                    w.u8(*n);
                }
                MeasureKind::StopRoadTransport => w.u8(5),
                MeasureKind::CapLoadPercent(x) => {
                    w.u8(6);
                    w.f64(*x);
                }
                MeasureKind::SelfDetermined => w.u8(7),
                MeasureKind::Other(s) => {
                    w.u8(8);
                    w.str(s);
                }
            }
            w.opt_str(m.process.as_deref());
            w.per(&m.reduction);
            w.str(&m.note);
        }
    }

    /// The enterprise from its packed form ([`Enterprise::pack`]); `None` when `bytes` is not one.
    pub fn unpack(bytes: &[u8]) -> Option<Enterprise> {
        let mut r = PackReader(bytes);
        let uscc = r.uscc()?;
        let uscc_override = r.flag()?;
        let permit = if r.flag()? {
            Some(PermitNo {
                uscc: r.uscc()?,
                site: u16::try_from(r.uint()?).ok()?,
                letter: r.u8()?,
            })
        } else {
            None
        };
        let name = r.string()?;
        let county = RegionCode::from_u32(u32::try_from(r.uint()?).ok()?).ok()?;
        let industry = Industry {
            code: IndustryCode(u16::try_from(r.uint()?).ok()?),
            key: r.opt_string()?,
        };
        let grade = r.grade()?;
        let grade_history = r.vec(PackReader::grade)?;
        let exemption = if r.flag()? {
            Some(Exemption {
                kind: *ExemptionKind::ALL.get(usize::from(r.u8()?))?,
                max_load_percent: r.f64()?,
            })
        } else {
            None
        };
        let baseline = r.per()?;
        let lines = r.vec(|r| {
            Some(Line {
                id: r.string()?,
                name: r.string()?,
                capacity: r.f64()?,
                unit: r.string()?,
                limit_baseline: LimitBaseline {
                    eia: r.opt_f64()?,
                    permit: r.opt_f64()?,
                    last_year: r.opt_f64()?,
                },
            })
        })?;
        let contacts = r.vec(|r| {
            Some(Contact {
                role: r.string()?,
                name: r.string()?,
                email: r.opt_string()?.map(EmailAddress),
                phone: Phone(r.string()?),
                line: r.opt_string()?,
            })
        })?;
        let measures = r.vec(|r| {
            let level = LevelId::new(r.string()?);
            let line = r.opt_string()?;
            let kind = match r.u8()? {
                0 => MeasureKind::Stop,
                1 => MeasureKind::LimitPercent(r.f64()?),
                2 => MeasureKind::StopSharePercent(r.f64()?),
                3 => MeasureKind::ExtendCokingHours(u32::try_from(r.uint()?).ok()?),
                4 => MeasureKind::StopTrucksUpToStandard(r.u8()?),
                5 => MeasureKind::StopRoadTransport,
                6 => MeasureKind::CapLoadPercent(r.f64()?),
                7 => MeasureKind::SelfDetermined,
                8 => MeasureKind::Other(r.string()?),
                _ => return None,
            };
            Some(Measure {
                level,
                line,
                kind,
                process: r.opt_string()?,
                reduction: r.per()?,
                note: r.string()?,
            })
        })?;
        r.0.is_empty().then_some(Enterprise {
            uscc,
            uscc_override,
            permit,
            name,
            county,
            industry,
            grade,
            grade_history,
            exemption,
            baseline,
            lines,
            contacts,
            measures,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_codes_are_checked_per_gb_32100() {
        // (input, strict result, lenient result)
        let table: &[(&str, Result<(), &str>, bool)] = &[
            ("91370200163562681G", Ok(()), true),
            ("91110000600037341L", Ok(()), true),
            ("91370200163562681g", Ok(()), true),
            (
                "91140000110014814X",
                Err(
                    "unified social credit code 91140000110014814X fails the GB 32100 check: the check character should be P, not X (set uscc_override for a legal pilot code)",
                ),
                true,
            ),
            ("91140000110014814P", Ok(()), true),
            // Pilot-era codes (福建) that fail the checksum yet are legal: only with the override.
            ("91350100M0001TGQXM", Err("fails"), true),
            ("91350211M0000XUF46", Err("fails"), true),
            ("9137020016356268", Err("must be 18 characters, got 16"), false),
            ("91370200I63562681G", Err("has 'I' at position 9"), false),
            (
                "91990000163562681G",
                Err("has \"990000\" at positions 3-8, which is not a GB/T 2260 region code"),
                false,
            ),
            ("91A70200163562681G", Err("at positions 3-8"), false),
            ("９1370200163562681G", Err("has '９' at position 1"), false),
        ];
        for (input, strict, lenient) in table {
            match (Uscc::parse(input), strict) {
                (Ok(u), Ok(())) => assert_eq!(u.as_str(), input.to_ascii_uppercase(), "{input}"),
                (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{input}: {e}"),
                (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
            }
            assert_eq!(Uscc::parse_with_override(input).is_ok(), *lenient, "{input} lenient");
        }
    }

    #[test]
    fn an_overridden_pilot_code_reports_its_failed_checksum() {
        let u = Uscc::parse_with_override("91350100M0001TGQXM").unwrap();
        assert!(!u.checksum_ok());
        assert_eq!(u.region(), Some(RegionCode::parse("350100").unwrap()));
        assert!(Uscc::parse("91370200163562681G").unwrap().checksum_ok());
    }

    #[test]
    fn organisation_codes_carry_their_own_gb_11714_check() {
        let u = Uscc::parse("91370200163562681G").unwrap();
        assert_eq!(u.org_code(), "163562681");
        assert!(u.org_code_check_ok());
        assert_eq!(org_check_char(b"16356268"), Some(b'1'));
        let built = Uscc::from_parts("91", "141181", "MA0K3T7W").unwrap();
        assert!(built.checksum_ok() && built.org_code_check_ok());
        assert_eq!(built.region_digits(), "141181");
    }

    #[test]
    fn a_credit_code_round_trips_through_json_and_national_codes_have_no_region() {
        let u = Uscc::parse("91110000600037341L").unwrap();
        let j = serde_json::to_string(&u).unwrap();
        assert_eq!(j, "\"91110000600037341L\"");
        assert_eq!(serde_json::from_str::<Uscc>(&j).unwrap(), u);
        let national = Uscc::from_parts("91", "100000", "71093248").unwrap();
        assert_eq!(national.region(), None);
    }

    #[test]
    fn permit_numbers_are_a_credit_code_a_site_and_a_letter() {
        let p = PermitNo::parse("91370200163562681G001P").unwrap();
        assert_eq!(p.uscc().as_str(), "91370200163562681G");
        assert_eq!((p.site(), p.letter()), (1, 'P'));
        assert_eq!(p.to_string(), "91370200163562681G001P");
        for bad in [
            "91370200163562681G01P",
            "91370200163562681G000P",
            "91370200163562681G0011",
            "91370200163562681G001",
        ] {
            assert!(PermitNo::parse(bad).is_err(), "{bad}");
        }
        let e = PermitNo::parse("91140000110014814X001P").unwrap_err().to_string();
        assert!(
            e.starts_with("permit number 91140000110014814X001P: unified social credit code"),
            "{e}"
        );
        assert!(PermitNo::parse_with_override("91350100M0001TGQXM001P").is_ok());
    }

    #[test]
    fn grades_parse_from_ids_letters_and_chinese() {
        let table = [
            ("A+", Grade::APlus),
            ("a+", Grade::APlus),
            ("A级", Grade::A),
            ("B-", Grade::BMinus),
            ("B-级", Grade::BMinus),
            ("引领性", Grade::Leading),
            ("leading", Grade::Leading),
            ("非引领性", Grade::NonLeading),
            ("non-leading", Grade::NonLeading),
            ("未分级", Grade::Ungraded),
            ("ungraded", Grade::Ungraded),
        ];
        for (s, g) in table {
            assert_eq!(Grade::parse(s), Ok(g), "{s}");
        }
        assert_eq!(Grade::BMinus.to_string(), "B-级");
        assert_eq!(Grade::Leading.to_string(), "引领性");
        for g in Grade::ALL {
            assert_eq!(Grade::parse(g.id()), Ok(g));
            assert_eq!(Grade::parse(g.name_zh()), Ok(g));
        }
        assert_eq!(
            Grade::parse("E").unwrap_err().to_string(),
            "unknown grade \"E\" (expected one of A+, A, B, B-, C, D, 引领性, 非引领性, 未分级)"
        );
    }

    /// EIA, permit, last year, design capacity → the limit baseline.
    type BaselineCase = (Option<f64>, Option<f64>, Option<f64>, f64, Option<f64>);

    #[test]
    fn the_limit_baseline_is_the_least_of_the_figures_given() {
        let table: [BaselineCase; 5] = [
            (Some(5000.0), Some(4500.0), Some(4200.0), 5000.0, Some(4200.0)),
            (Some(5000.0), Some(4500.0), None, 5000.0, Some(4500.0)),
            (None, None, Some(4800.0), 5000.0, Some(4800.0)),
            (Some(3000.0), Some(4500.0), Some(4200.0), 5000.0, Some(3000.0)),
            (None, None, None, 5000.0, None),
        ];
        for (eia, permit, last_year, capacity, want) in table {
            let line = Line {
                id: "L1".into(),
                name: "熟料生产线".into(),
                capacity,
                unit: "t/d".into(),
                limit_baseline: LimitBaseline { eia, permit, last_year },
            };
            assert_eq!(line.limit_baseline.base(), want);
            assert_eq!(line.limit_base(), want.unwrap_or(capacity));
            // 限产20% runs at 80 % of the baseline; a 60 % cap at 60 %; a stop at nothing.
            let base = want.unwrap_or(capacity);
            assert_eq!(line.allowed_output(&MeasureKind::LimitPercent(20.0)), Some(base * 0.8));
            assert_eq!(line.allowed_output(&MeasureKind::CapLoadPercent(60.0)), Some(base * 0.6));
            assert_eq!(line.allowed_output(&MeasureKind::Stop), Some(0.0));
            assert_eq!(line.allowed_output(&MeasureKind::ExtendCokingHours(36)), None);
        }
    }

    #[test]
    fn measure_kinds_parse_with_their_values_and_read_in_chinese() {
        let table: &[(&str, Option<&str>, Result<&str, &str>)] = &[
            ("stop", None, Ok("停产")),
            ("limit_percent", Some("20"), Ok("限产20%")),
            ("limit_percent", Some("12.5"), Ok("限产12.5%")),
            ("limit_percent", Some("120"), Err("limit_percent 120 is over 100 %")),
            ("limit_percent", Some("0"), Err("limit_percent 0 must be above 0")),
            ("limit_percent", None, Err("measure limit_percent needs a value (a percentage)")),
            ("stop_share_percent", Some("50"), Ok("停产50%（以生产线计）")),
            ("extend_coking_hours", Some("36"), Ok("出焦时间延长至36小时")),
            (
                "stop_trucks_up_to_standard",
                Some("4"),
                Ok("停止使用国四及以下重型载货车辆（含燃气）进行物料运输"),
            ),
            (
                "stop_trucks_up_to_standard",
                Some("7"),
                Err("must be an emission standard number from 1 to 6"),
            ),
            ("self_determined", None, Ok("自主采取减排措施")),
            ("stop", Some("1"), Err("measure stop takes no value, got \"1\"")),
            ("other", Some("停止进坯"), Ok("停止进坯")),
            ("halt", None, Err("unknown measure kind \"halt\"")),
        ];
        for (kind, value, want) in table {
            match (MeasureKind::parse(kind, *value), want) {
                (Ok(k), Ok(text)) => {
                    assert_eq!(k.text_zh(), *text);
                    assert_eq!(MeasureKind::parse(k.id(), Some(&k.value_text())).unwrap(), k);
                }
                (Err(e), Err(msg)) => assert!(e.contains(msg), "{kind}: {e}"),
                (got, want) => panic!("{kind} {value:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn emails_and_phones_are_checked_for_shape() {
        for ok in ["wangjianguo@pengfei-jiaohua.example.cn", "hb.office+1@example.cn", "A@B.CN"] {
            assert!(EmailAddress::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "wang@@example.cn",
            "wang",
            "wang@example",
            "wang@.cn",
            "wang zhang@example.cn",
            "@example.cn",
            "wang@example.c0m",
        ] {
            assert_eq!(
                EmailAddress::parse(bad).unwrap_err(),
                format!("email \"{bad}\" is not a valid address")
            );
        }
        for ok in ["13812345678", "138 1234 5678", "0351-7654321", "03517654321", "0358-12345678"] {
            assert!(Phone::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["12812345678", "1381234567", "351-7654321", "0351--7654321", "phone"] {
            assert!(Phone::parse(bad).is_err(), "{bad}");
        }
    }
}
