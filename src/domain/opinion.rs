//! The consultation's record (《重污染天气预报会商意见》, domain.md §2.5, §6.2): who met, what they made
//! of the weather, and their conclusion per region beside the engine's proposal.
//!
//! In: what duty staff typed (an [`OpinionInput`]), the consultation's assessments and the level
//! ranks of the playbooks. Out: a validated [`Opinion`], or every error naming its field. Pure: no
//! clock (the time comes in), no store.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::assess::{Assessment, day_start};
use crate::domain::level::LevelId;
use crate::domain::region::RegionCode;

/// What the meeting made of the engine's proposal for a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The proposal as it stands.
    Accept,
    /// Another level or other periods (a reason is required).
    Change,
    /// No warning (a reason is required).
    Reject,
}

impl Decision {
    /// As duty staff read it.
    pub fn zh(self) -> &'static str {
        match self {
            Decision::Accept => "同意",
            Decision::Change => "调整",
            Decision::Reject => "否决",
        }
    }
}

/// A participating unit (参加单位) and the people it sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Unit {
    /// 省生态环境监测和应急保障中心, 市气象局, ….
    pub name: String,
    /// Who attended for it.
    #[serde(default)]
    pub people: Vec<String>,
}

/// The engine's proposal for a region, as the consultation assessed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// The level (`none` when no rule was met).
    pub level: LevelId,
    /// 00:00 of the first day of the polluted run.
    pub from: Option<DateTime<Utc>>,
    /// 00:00 after its last day.
    pub until: Option<DateTime<Utc>>,
    /// The rule that fired.
    pub rule: Option<String>,
}

impl Proposal {
    /// The proposal an assessment makes.
    pub fn of(a: &Assessment) -> Proposal {
        Proposal {
            level: a.level.clone().unwrap_or_else(|| LevelId::new("none")),
            from: a.days.first().map(|d| day_start(*d)),
            until: a.days.last().and_then(|d| d.succ_opt()).map(day_start),
            rule: a.rule.clone(),
        }
    }
}

/// The meeting's conclusion for one region (会商结论): the level and periods, beside the proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conclusion {
    /// The region.
    pub region: RegionCode,
    /// What the engine proposed.
    pub proposed: Proposal,
    /// What the meeting made of it.
    pub decision: Decision,
    /// The level concluded (`none` for a rejection).
    pub level: LevelId,
    /// From (00:00 of a day as a rule).
    pub from: Option<DateTime<Utc>>,
    /// Until.
    pub until: Option<DateTime<Utc>>,
    /// Why the meeting changed or rejected the proposal (empty for an acceptance).
    #[serde(default)]
    pub reason: String,
}

/// The consultation's record as completed by duty staff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opinion {
    /// The consultation's seq.
    pub consultation: u64,
    /// 参加单位及人员.
    pub units: Vec<Unit>,
    /// 不利气象条件分析.
    pub weather: String,
    /// 趋势分析.
    pub trend: String,
    /// 首要污染物 (as written: PM2.5, PM10, …).
    pub primary_pollutant: String,
    /// One per region the consultation assessed with a level, and any other region named.
    pub conclusions: Vec<Conclusion>,
    /// Who recorded it.
    pub recorded_by: String,
    /// When.
    pub recorded_at: DateTime<Utc>,
    /// A drill's consultation's record (演练): it decides the drill lanes only; its page says 【演练】.
    #[serde(default, skip_serializing_if = "crate::domain::warning::is_false")]
    pub exercise: bool,
}

/// A conclusion as typed (JSON or the dashboard's form).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConclusionInput {
    /// The region's code.
    pub region: String,
    /// `accept`, `change` or `reject`.
    pub decision: String,
    /// The level concluded (for a change).
    #[serde(default)]
    pub level: Option<String>,
    /// From (RFC 3339 or `YYYY-MM-DD HH:MM` Asia/Shanghai; for a change).
    #[serde(default)]
    pub from: Option<String>,
    /// Until (likewise).
    #[serde(default)]
    pub until: Option<String>,
    /// Why (for a change or a rejection).
    #[serde(default)]
    pub reason: Option<String>,
}

/// The record as typed.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpinionInput {
    /// 参加单位及人员.
    #[serde(default)]
    pub units: Vec<Unit>,
    /// 不利气象条件分析.
    #[serde(default)]
    pub weather: String,
    /// 趋势分析.
    #[serde(default)]
    pub trend: String,
    /// 首要污染物.
    #[serde(default)]
    pub primary_pollutant: String,
    /// Per region; a region with a proposal left out is accepted as proposed.
    #[serde(default)]
    pub conclusions: Vec<ConclusionInput>,
}

/// The longest text kept per field (characters).
const MAX_TEXT: usize = 4000;

fn text(s: &str, max: usize) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .take(max)
        .collect::<String>()
        .trim()
        .to_string()
}

/// Checks what was typed against the consultation: every error names its field (`conclusions[1].reason`).
/// `rank(region, level)` is the level's rank in the playbook governing the region (`None`: undefined).
pub fn validate(
    input: &OpinionInput,
    consultation: u64,
    assessments: &[Assessment],
    rank: impl Fn(RegionCode, &str) -> Option<u32>,
    parse_time: impl Fn(&str) -> Option<DateTime<Utc>>,
    by: &str,
    at: DateTime<Utc>,
) -> Result<Opinion, Vec<String>> {
    let mut errors = Vec::new();
    let units: Vec<Unit> = input
        .units
        .iter()
        .map(|u| Unit {
            name: text(&u.name, 200),
            people: u.people.iter().map(|p| text(p, 100)).filter(|p| !p.is_empty()).collect(),
        })
        .collect();
    if units.is_empty() {
        errors.push("units: name at least one participating unit (参加单位)".to_string());
    }
    for (i, u) in units.iter().enumerate() {
        if u.name.is_empty() {
            errors.push(format!("units[{i}].name: a unit needs a name"));
        }
    }
    let weather = text(&input.weather, MAX_TEXT);
    if weather.is_empty() {
        errors.push("weather: describe the adverse weather conditions (不利气象条件)".into());
    }
    let trend = text(&input.trend, MAX_TEXT);
    if trend.is_empty() {
        errors.push("trend: give the trend analysis (趋势分析)".into());
    }
    let primary_pollutant = text(&input.primary_pollutant, 100);
    if primary_pollutant.is_empty() {
        errors.push("primary_pollutant: name the primary pollutant (首要污染物)".into());
    }
    let mut conclusions = Vec::new();
    let mut named = BTreeSet::new();
    for (i, c) in input.conclusions.iter().enumerate() {
        let field = |f: &str| format!("conclusions[{i}].{f}");
        let Ok(region) = RegionCode::parse(c.region.trim()) else {
            errors.push(format!("{}: \"{}\" is not a region code", field("region"), c.region));
            continue;
        };
        let Some(a) = assessments.iter().find(|a| a.region == region) else {
            errors.push(format!(
                "{}: region {region} was not assessed by consultation {consultation}",
                field("region")
            ));
            continue;
        };
        if !named.insert(region) {
            errors.push(format!("{}: region {region} is named twice", field("region")));
            continue;
        }
        let proposed = Proposal::of(a);
        let reason = text(c.reason.as_deref().unwrap_or(""), MAX_TEXT);
        let decision = match c.decision.trim() {
            "accept" => Decision::Accept,
            "change" => Decision::Change,
            "reject" => Decision::Reject,
            other => {
                errors.push(format!("{}: \"{other}\" is not accept, change or reject", field("decision")));
                continue;
            }
        };
        if decision != Decision::Accept && reason.is_empty() {
            errors.push(format!(
                "{}: a {} needs a reason",
                field("reason"),
                if decision == Decision::Change { "change" } else { "rejection" }
            ));
        }
        let conclusion = match decision {
            Decision::Accept => Conclusion {
                region,
                level: proposed.level.clone(),
                from: proposed.from,
                until: proposed.until,
                proposed,
                decision,
                reason,
            },
            Decision::Reject => {
                if proposed.level.as_str() == "none" {
                    errors.push(format!("{}: region {region} has no proposal to reject", field("decision")));
                }
                Conclusion {
                    region,
                    level: LevelId::new("none"),
                    from: None,
                    until: None,
                    proposed,
                    decision,
                    reason,
                }
            }
            Decision::Change => {
                let level = c.level.as_deref().map(str::trim).unwrap_or("");
                if level.is_empty() {
                    errors.push(format!("{}: a change names the level concluded", field("level")));
                } else if rank(region, level).is_none_or(|r| r == 0) {
                    errors.push(format!("{}: undefined level \"{level}\"", field("level")));
                }
                let mut time = |f: &str, v: &Option<String>| match v.as_deref().map(str::trim) {
                    None | Some("") => {
                        errors.push(format!("{}: a change gives the period (from and until)", field(f)));
                        None
                    }
                    Some(s) => {
                        let t = parse_time(s);
                        if t.is_none() {
                            errors.push(format!("{}: \"{s}\" is not a time (RFC 3339 or YYYY-MM-DD HH:MM)", field(f)));
                        }
                        t
                    }
                };
                let from = time("from", &c.from);
                let until = time("until", &c.until);
                if let (Some(f), Some(u)) = (from, until)
                    && u <= f
                {
                    errors.push(format!("{}: must be after from", field("until")));
                }
                if level == proposed.level.as_str() && from == proposed.from && until == proposed.until {
                    errors.push(format!(
                        "{}: the level and period are the proposal's: accept it instead",
                        field("decision")
                    ));
                }
                Conclusion {
                    region,
                    level: LevelId::new(level),
                    from,
                    until,
                    proposed,
                    decision,
                    reason,
                }
            }
        };
        conclusions.push(conclusion);
    }
    // Regions with a proposal that were not named: accepted as proposed.
    for a in assessments {
        if a.rank > 0 && !named.contains(&a.region) {
            let proposed = Proposal::of(a);
            conclusions.push(Conclusion {
                region: a.region,
                level: proposed.level.clone(),
                from: proposed.from,
                until: proposed.until,
                proposed,
                decision: Decision::Accept,
                reason: String::new(),
            });
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    conclusions.sort_by_key(|c| c.region);
    Ok(Opinion {
        consultation,
        units,
        weather,
        trend,
        primary_pollutant,
        conclusions,
        recorded_by: by.to_string(),
        recorded_at: at,
        exercise: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn assessment(region: &str, level: Option<&str>, days: &[&str]) -> Assessment {
        Assessment {
            region: RegionCode::parse(region).unwrap(),
            level: level.map(LevelId::new),
            rank: u32::from(level.is_some()) * 2,
            rule: None,
            days: days.iter().map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap()).collect(),
            window: Vec::new(),
            ranks: Vec::new(),
            runs: Vec::new(),
            advisories: Vec::new(),
            series: Vec::new(),
            forecast_id: "f".into(),
            playbook: "shanxi@2024.1".into(),
        }
    }

    fn rank(_: RegionCode, l: &str) -> Option<u32> {
        ["none", "yellow", "orange", "red"].iter().position(|x| *x == l).map(|p| p as u32)
    }

    fn time(s: &str) -> Option<DateTime<Utc>> {
        crate::domain::forecast::parse_time(s).map(|t| t.with_timezone(&Utc))
    }

    fn input(conclusions: Vec<ConclusionInput>) -> OpinionInput {
        OpinionInput {
            units: vec![Unit {
                name: "省气象局".into(),
                people: vec!["张三".into()],
            }],
            weather: "静稳".into(),
            trend: "持续".into(),
            primary_pollutant: "PM2.5".into(),
            conclusions,
        }
    }

    #[test]
    fn a_change_or_a_rejection_without_a_reason_is_refused_naming_the_field_and_a_region_left_out_is_accepted() {
        let a = [
            assessment("140100", Some("orange"), &["2026-12-03", "2026-12-04"]),
            assessment("140200", Some("orange"), &["2026-12-03"]),
        ];
        let at = time("2026-12-02 10:00").unwrap();
        let change = ConclusionInput {
            region: "140100".into(),
            decision: "change".into(),
            level: Some("yellow".into()),
            from: Some("2026-12-03 00:00".into()),
            until: Some("2026-12-05 00:00".into()),
            reason: None,
        };
        let e = validate(&input(vec![change.clone()]), 7, &a, rank, time, "王芳", at).unwrap_err();
        assert_eq!(e, ["conclusions[0].reason: a change needs a reason"]);
        let reject = ConclusionInput {
            region: "140200".into(),
            decision: "reject".into(),
            ..Default::default()
        };
        let e = validate(&input(vec![reject]), 7, &a, rank, time, "王芳", at).unwrap_err();
        assert_eq!(e, ["conclusions[0].reason: a rejection needs a reason"]);
        let mut purple = change.clone();
        purple.level = Some("purple".into());
        purple.reason = Some("x".into());
        let e = validate(&input(vec![purple]), 7, &a, rank, time, "王芳", at).unwrap_err();
        assert_eq!(e, ["conclusions[0].level: undefined level \"purple\""]);

        let mut ok = change;
        ok.reason = Some("扩散条件好于模式预报".into());
        let o = validate(&input(vec![ok]), 7, &a, rank, time, "王芳", at).unwrap();
        assert_eq!(o.conclusions.len(), 2);
        let c = &o.conclusions[0];
        assert_eq!(
            (c.decision, c.level.as_str(), c.proposed.level.as_str()),
            (Decision::Change, "yellow", "orange")
        );
        assert_eq!(c.proposed.until, time("2026-12-05 00:00"));
        assert_eq!(o.conclusions[1].decision, Decision::Accept, "the region left out is accepted");
    }

    #[test]
    fn the_record_needs_units_weather_trend_and_the_primary_pollutant() {
        let e = validate(
            &OpinionInput::default(),
            7,
            &[],
            rank,
            time,
            "王芳",
            time("2026-12-02 10:00").unwrap(),
        )
        .unwrap_err();
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(e[0].starts_with("units:") && e[3].starts_with("primary_pollutant:"), "{e:?}");
    }
}
