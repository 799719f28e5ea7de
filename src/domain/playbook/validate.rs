//! One function per rule a playbook can break. Each returns the errors it finds, located.
//!
//! In: the raw file and (for a child) its compiled parent. Out: [`PlaybookError`]s. The messages are
//! part of the interface: operators read them, and tests pin them word for word.

use std::path::Path;
use std::str::FromStr;

use serde_saphyr::{Location, Spanned};

use super::compare::counterexample;
use super::raw::RawRule;
use super::{Level, Playbook, PlaybookError, Role, Rule, SignOff};
use crate::domain::region::{RegionCode, Regions};

/// Builds an error at a source location.
pub(crate) fn at(file: &Path, loc: &Location, message: impl Into<String>) -> PlaybookError {
    PlaybookError::at(file.display().to_string(), loc.line(), loc.column(), message)
}

/// The scope must be a known region; a child's scope must lie strictly below its parent's.
pub(crate) fn scope(
    file: &Path,
    scope: &Spanned<String>,
    parent: Option<&Playbook>,
    regions: &Regions,
) -> Result<RegionCode, PlaybookError> {
    let code = RegionCode::parse(&scope.value).map_err(|e| at(file, &scope.referenced, e.to_string()))?;
    let code = regions
        .resolve(code)
        .ok_or_else(|| at(file, &scope.referenced, format!("unknown region {code}")))?;
    if let Some(p) = parent
        && (code == p.scope || !regions.is_within(code, p.scope))
    {
        return Err(at(
            file,
            &scope.referenced,
            format!(
                "scope {code} is not below the scope {} of the parent playbook \"{}\"",
                p.scope, p.id
            ),
        ));
    }
    Ok(code)
}

/// A CAP `sender` (CAP 1.2 §3.2.1): no spaces, commas or the XML-restricted `<`, `>`, `&`.
pub(crate) fn cap_sender(file: &Path, raw: &Spanned<String>) -> Result<(), PlaybookError> {
    let s = &raw.value;
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || matches!(c, ',' | '<' | '>' | '&')) {
        return Err(at(
            file,
            &raw.referenced,
            format!("issuer.sender \"{s}\" must be one word without spaces, commas or <>& (CAP 1.2 sender)"),
        ));
    }
    Ok(())
}

/// A rule is exactly one of `all`, `any` or a leaf; thresholds are AQI values; runs fit the horizon.
pub(crate) fn rule(file: &Path, raw: &Spanned<RawRule>, horizon_days: u32, errors: &mut Vec<PlaybookError>) -> Option<Rule> {
    let r = &raw.value;
    let kinds = [r.all.is_some(), r.any.is_some(), r.aqi_gt.is_some() || r.aqi_ge.is_some()]
        .iter()
        .filter(|k| **k)
        .count();
    if kinds != 1 || (r.aqi_gt.is_some() && r.aqi_ge.is_some()) {
        errors.push(at(
            file,
            &raw.referenced,
            "a rule is exactly one of: all, any, or aqi_gt/aqi_ge with days",
        ));
        return None;
    }
    let nested = |parts: &Vec<Spanned<RawRule>>, errors: &mut Vec<PlaybookError>| -> Option<Vec<Rule>> {
        if parts.is_empty() {
            errors.push(at(file, &raw.referenced, "all/any needs at least one rule"));
            return None;
        }
        let out: Vec<Option<Rule>> = parts.iter().map(|p| rule(file, p, horizon_days, errors)).collect();
        out.into_iter().collect()
    };
    if let Some(parts) = &r.all {
        return nested(parts, errors).map(Rule::All);
    }
    if let Some(parts) = &r.any {
        return nested(parts, errors).map(Rule::Any);
    }
    let (t, inclusive) = match (&r.aqi_gt, &r.aqi_ge) {
        (Some(t), _) => (t, false),
        (_, Some(t)) => (t, true),
        _ => return None,
    };
    if t.value > 500 {
        errors.push(at(
            file,
            &t.referenced,
            format!("threshold {} is above 500, the top of the AQI scale", t.value),
        ));
        return None;
    }
    let Some(days) = &r.days else {
        errors.push(at(file, &raw.referenced, "a threshold needs days: the number of consecutive days"));
        return None;
    };
    if days.value == 0 || days.value > horizon_days {
        errors.push(at(
            file,
            &days.referenced,
            format!("days must be from 1 to the horizon of {horizon_days} days, not {}", days.value),
        ));
        return None;
    }
    Some(Rule::Above {
        threshold: t.value as u16,
        inclusive,
        days: days.value,
    })
}

/// Ranks are unique, and a higher rank is harder to reach: a higher level may not be met by every
/// window that meets a lower one ("thresholds increase with rank"). The converse is not required:
/// real rules have a red that a single day at 500 meets without meeting orange.
pub(crate) fn ranks_increase(file: &Path, levels: &[(Level, Location)], horizon_days: u32, errors: &mut Vec<PlaybookError>) {
    // Level ids are unique: a second definition would make sign-off, directives and lifts ambiguous.
    for (i, (level, loc)) in levels.iter().enumerate() {
        if let Some((_, first)) = levels[..i].iter().find(|(l, _)| l.id == level.id) {
            errors.push(at(
                file,
                loc,
                format!("level id \"{}\" is defined twice (first at line {})", level.id, first.line()),
            ));
        }
    }
    for pair in levels.windows(2) {
        let ((lo, _), (hi, hi_loc)) = (&pair[0], &pair[1]);
        if lo.rank == hi.rank {
            errors.push(at(
                file,
                hi_loc,
                format!("levels \"{}\" and \"{}\" have the same rank {}", lo.id, hi.id, hi.rank),
            ));
        } else if counterexample(&lo.entry, &hi.entry, horizon_days).is_none() {
            errors.push(at(
                file,
                hi_loc,
                format!(
                    "thresholds must increase with rank: level \"{}\" (rank {}) is met by every forecast that meets \"{}\" (rank {})",
                    hi.id, hi.rank, lo.id, lo.rank
                ),
            ));
        }
    }
}

/// `sign_off` is `auto` or a defined role.
pub(crate) fn sign_off(file: &Path, raw: &Spanned<String>, roles: &[Role]) -> Result<SignOff, PlaybookError> {
    if raw.value == "auto" {
        return Ok(SignOff::Auto);
    }
    if roles.iter().any(|r| r.id == raw.value) {
        return Ok(SignOff::Role(raw.value.clone()));
    }
    let known: Vec<&str> = roles.iter().map(|r| r.id.as_str()).collect();
    Err(at(
        file,
        &raw.referenced,
        format!(
            "undefined role \"{}\" in sign_off (auto or one of: {})",
            raw.value,
            known.join(", ")
        ),
    ))
}

/// A colour is `#RRGGBB`.
pub(crate) fn colour(file: &Path, raw: &Spanned<String>) -> Result<String, PlaybookError> {
    let v = &raw.value;
    if v.len() == 7 && v.starts_with('#') && v[1..].chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(v.to_uppercase())
    } else {
        Err(at(file, &raw.referenced, format!("colour \"{v}\" is not #RRGGBB")))
    }
}

/// A consultation's cron expression parses (6–7 fields, seconds first).
pub(crate) fn cron(file: &Path, raw: &Spanned<String>) -> Result<cron::Schedule, PlaybookError> {
    cron::Schedule::from_str(&raw.value).map_err(|e| {
        at(
            file,
            &raw.referenced,
            format!(
                "bad cron expression \"{}\": {}; write 6 or 7 fields, seconds first (\"0 0 9 * * *\" is 09:00 daily)",
                raw.value,
                cron_reason(&raw.value, &e)
            ),
        )
    })
}

/// The cron crate's reason on one line. Its parser renders a syntax error as the expression with a caret
/// under the bad character, over several lines; an error message must stay one `file:line:column` line.
fn cron_reason(expr: &str, e: &cron::error::Error) -> String {
    let fields = expr.split_whitespace().count();
    if !(6..=7).contains(&fields) {
        return format!("it has {fields} field{}", if fields == 1 { "" } else { "s" });
    }
    let text = e.to_string();
    let mut lines = text.lines();
    match (lines.next(), lines.next().and_then(|l| l.find('^')), lines.next().map(str::trim)) {
        (Some(_), Some(caret), Some(why)) if !why.is_empty() => format!("character {}: {why}", caret + 1),
        (Some(_), Some(caret), _) => format!("cannot read it from character {}", caret + 1),
        _ => text.trim().to_string(),
    }
}

/// A level named by a child override or a directive exists.
pub(crate) fn level_defined<'a>(file: &Path, raw: &Spanned<String>, levels: &'a [Level]) -> Result<&'a Level, PlaybookError> {
    levels.iter().find(|l| l.id == raw.value).ok_or_else(|| {
        let known: Vec<&str> = levels.iter().map(|l| l.id.as_str()).collect();
        at(
            file,
            &raw.referenced,
            format!("undefined level \"{}\" (defined: {})", raw.value, known.join(", ")),
        )
    })
}

/// A child level may only be stricter than its parent's: met by every window that meets the parent's
/// rule, and signed at least as high.
pub(crate) fn not_laxer_level(
    file: &Path,
    loc: &Location,
    child: &Level,
    parent: &Level,
    child_pb: (&[Role], u32),
    parent_pb: &Playbook,
    errors: &mut Vec<PlaybookError>,
) {
    if let Some(w) = counterexample(&parent.entry, &child.entry, child_pb.1) {
        errors.push(at(
            file,
            loc,
            format!(
                "level \"{}\" is laxer than in parent playbook \"{}\": daily AQI {w:?} meets the parent's rule ({}) but not this one ({})",
                child.id, parent_pb.id, parent.entry, child.entry
            ),
        ));
    }
    let strength = |s: &SignOff, roles: &[Role]| match s {
        SignOff::Auto => 0,
        SignOff::Role(r) => roles.iter().find(|x| &x.id == r).map_or(0, |x| x.rank),
    };
    let describe = |s: &SignOff, roles: &[Role]| match s {
        SignOff::Auto => "auto".to_string(),
        SignOff::Role(r) => format!("{r} (rank {})", strength(s, roles)),
    };
    if strength(&child.sign_off, child_pb.0) < strength(&parent.sign_off, &parent_pb.roles) {
        errors.push(at(
            file,
            loc,
            format!(
                "level \"{}\" is laxer than in parent playbook \"{}\": signed by {}, the parent needs {} or higher",
                child.id,
                parent_pb.id,
                describe(&child.sign_off, child_pb.0),
                describe(&parent.sign_off, &parent_pb.roles)
            ),
        ));
    }
}

/// A child may not shorten the lift window nor give up holding the higher level.
pub(crate) fn not_laxer_hours(file: &Path, raw: &Spanned<u32>, what: &str, parent_value: i64, parent_id: &str) -> Option<PlaybookError> {
    (i64::from(raw.value) < parent_value).then(|| {
        at(
            file,
            &raw.referenced,
            format!(
                "{what} {} h is laxer than the {parent_value} h of parent playbook \"{parent_id}\"",
                raw.value
            ),
        )
    })
}

/// A directive's region is known (or a known `group:NAME`) and lies strictly below the issuing scope.
pub(crate) fn directive_regions(
    file: &Path,
    raw: &[Spanned<String>],
    scope: RegionCode,
    regions: &Regions,
    errors: &mut Vec<PlaybookError>,
) -> Vec<RegionCode> {
    let mut out = Vec::new();
    for r in raw {
        let codes: Vec<RegionCode> = if let Some(group) = r.value.strip_prefix("group:") {
            match regions.group(group) {
                // A group may span provinces (汾渭平原): the directive reaches its members within
                // the issuer's scope, and at least one must be.
                Some(g) => {
                    let inside: Vec<RegionCode> = g.iter().copied().filter(|c| *c != scope && regions.is_within(*c, scope)).collect();
                    if inside.is_empty() {
                        errors.push(at(
                            file,
                            &r.referenced,
                            format!("region group \"{group}\" has no member below its issuer's scope {scope}"),
                        ));
                        continue;
                    }
                    inside
                }
                None => {
                    errors.push(at(file, &r.referenced, format!("unknown region group \"{group}\"")));
                    continue;
                }
            }
        } else {
            match RegionCode::parse(&r.value) {
                Ok(c) => match regions.resolve(c) {
                    Some(c) => vec![c],
                    None => {
                        errors.push(at(file, &r.referenced, format!("unknown region {c}")));
                        continue;
                    }
                },
                Err(e) => {
                    errors.push(at(file, &r.referenced, e.to_string()));
                    continue;
                }
            }
        };
        for c in codes {
            if c == scope || !regions.is_within(c, scope) {
                errors.push(at(
                    file,
                    &r.referenced,
                    format!("a directive reaches only regions below its issuer's scope {scope}; {c} is not"),
                ));
            } else if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    out
}
