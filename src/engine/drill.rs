//! Drills (演练): the list of drill warnings and the drill report — how long each region took, from
//! the notice to each acknowledgement stage (收到, 措施已落实).
//!
//! A drill runs the whole chain in the regions' drill lanes (see [`crate::domain::warning::RegionState`]):
//! a drill's forecast (`# exercise: true`, `"exercise": true`, `hazeflow forecast submit --exercise`)
//! or a drill's directive. Its warnings, rounds and notices carry `exercise`; nothing of it is counted
//! with real episodes, so this module is where its figures are read.
//!
//! In: `GET /api/v1/drills`, `GET /api/v1/drills/{id}/report`, the dashboard's 演练 page and
//! `hazeflow drill list | report ID`. Reads the drill warnings and their assignments. Changes nothing.
//!
//! Out: [`DrillReport`]: per region of the party (an enterprise's county, a department's region) and in
//! total, how many were given tasks, how many confirmed each stage, and the minutes from the notice
//! (the round: the issue, or the level change that gave the task) to each stage — median, 90th
//! percentile (nearest rank) and the last one, i.e. when the whole region had answered.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::domain::ack_step::AckStep;
use crate::domain::region::{RegionCode, Regions};
use crate::domain::warning::{Status, Warning};
use crate::engine::assign::{self, Assignment};
use crate::engine::episode::{all_assignments, percentile};
use crate::registry::Defaults;
use crate::store::{ReadTx, StoreError};

/// The minutes from notice to one stage, over the parties that reached it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StageTimes {
    /// Parties that confirmed the stage.
    pub done: usize,
    /// Parties that have not (yet).
    pub missing: usize,
    /// Median minutes.
    pub median: Option<f64>,
    /// 90th percentile (nearest rank).
    pub p90: Option<f64>,
    /// The last one: when everyone who answered had answered.
    pub max: Option<f64>,
    #[serde(skip)]
    minutes: Vec<f64>,
}

impl StageTimes {
    fn add(&mut self, minutes: Option<f64>) {
        match minutes {
            Some(m) => {
                self.done += 1;
                self.minutes.push(m);
            }
            None => self.missing += 1,
        }
    }

    fn finish(mut self) -> StageTimes {
        self.median = percentile(&mut self.minutes, 0.5);
        self.p90 = percentile(&mut self.minutes, 0.9);
        self.max = percentile(&mut self.minutes, 1.0);
        self
    }
}

/// One region's (or the total's) figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RegionTimes {
    /// Region code (`null` for the total).
    pub region: Option<RegionCode>,
    /// Region name (合计 for the total).
    pub name: String,
    /// Tasks given (every round's, superseded ones included: each was a notice to answer).
    pub assigned: usize,
    /// To 收到.
    pub received: StageTimes,
    /// To 措施已落实.
    pub in_place: StageTimes,
}

impl RegionTimes {
    fn add(&mut self, a: &Assignment) {
        self.assigned += 1;
        let minutes = |step: AckStep| {
            a.acks
                .iter()
                .find(|k| k.step == step)
                .map(|k| (k.at - a.created_at).num_seconds() as f64 / 60.0)
        };
        self.received.add(minutes(AckStep::Received));
        self.in_place.add(minutes(AckStep::InPlace));
    }

    fn finish(mut self) -> RegionTimes {
        self.received = self.received.finish();
        self.in_place = self.in_place.finish();
        self
    }
}

/// The drill report of one drill warning.
#[derive(Debug, Clone, Serialize)]
pub struct DrillReport {
    /// The warning id.
    pub warning_id: String,
    /// Its region.
    pub region: RegionCode,
    /// Its name.
    pub region_name: String,
    /// Level id.
    pub level: String,
    /// Level name.
    pub level_name: String,
    /// Lifecycle status (`pending`, `issued`, `active`, `lifted`, `cancelled`).
    pub status: Status,
    /// When it was issued (signed).
    pub issued_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// Per region of the party, by code.
    pub regions: Vec<RegionTimes>,
    /// All parties.
    pub total: RegionTimes,
    /// When the report was made.
    pub generated_at: DateTime<Utc>,
}

/// Every drill warning, the latest issued first (proposals not yet signed last), then by region.
pub fn drills(r: &ReadTx) -> Result<Vec<Warning>, StoreError> {
    let mut out: Vec<Warning> = r.warnings()?.into_iter().filter(|w| w.exercise).collect();
    out.sort_by(|a, b| b.issued_at.cmp(&a.issued_at).then(a.region.cmp(&b.region)));
    Ok(out)
}

/// The report of a drill warning; `None` when there is no such warning or it is not a drill.
pub fn report(
    r: &ReadTx,
    warning_id: &str,
    defaults: &Defaults,
    regions: &Regions,
    now: DateTime<Utc>,
) -> Result<Option<DrillReport>, StoreError> {
    let Some(w) = r.warning(warning_id)?.filter(|w| w.exercise) else {
        return Ok(None);
    };
    let mut total = RegionTimes {
        name: "合计".into(),
        ..RegionTimes::default()
    };
    let mut by_region: BTreeMap<RegionCode, RegionTimes> = BTreeMap::new();
    for a in all_assignments(r, warning_id)? {
        total.add(&a);
        let region = assign::party_region(&a);
        by_region
            .entry(region)
            .or_insert_with(|| RegionTimes {
                region: Some(region),
                name: regions.name(region),
                ..RegionTimes::default()
            })
            .add(&a);
    }
    Ok(Some(DrillReport {
        warning_id: w.id.clone(),
        region: w.region,
        region_name: regions.name(w.region),
        level: w.level.id.to_string(),
        level_name: defaults.level(&w.level).map_or_else(|| w.level.id.to_string(), |l| l.name.clone()),
        status: w.status,
        issued_at: w.issued_at,
        ended_at: w.ended_at,
        regions: by_region.into_values().map(RegionTimes::finish).collect(),
        total: total.finish(),
        generated_at: now,
    }))
}

/// The report as the CLI prints it (Chinese: duty staff read it), from the API's JSON.
pub fn print_report(v: &Value, out: &mut impl std::fmt::Write) -> std::fmt::Result {
    let s = |v: &Value| v.as_str().map_or_else(|| "-".to_string(), str::to_string);
    let t = |v: &Value| {
        v.as_str().and_then(|x| DateTime::parse_from_rfc3339(x).ok()).map_or_else(
            || "-".to_string(),
            |x| x.with_timezone(&chrono_tz::Asia::Shanghai).format("%Y-%m-%d %H:%M").to_string(),
        )
    };
    let min = |v: &Value| v.as_f64().map_or_else(|| "-".to_string(), |x| format!("{x}"));
    writeln!(
        out,
        "【演练】{}  {}（{}）  {}  发布 {}  结束 {}",
        s(&v["warning_id"]),
        s(&v["region_name"]),
        s(&v["region"]),
        s(&v["level_name"]),
        t(&v["issued_at"]),
        t(&v["ended_at"])
    )?;
    writeln!(
        out,
        "{:<12} {:>6} | {:>6} {:>6} {:>8} {:>8} {:>8} | {:>6} {:>6} {:>8} {:>8} {:>8}",
        "地区", "任务", "已收到", "未收到", "中位分钟", "90%分钟", "最长分钟", "已落实", "未落实", "中位分钟", "90%分钟", "最长分钟"
    )?;
    let rows = v["regions"].as_array().into_iter().flatten().chain(std::iter::once(&v["total"]));
    for r in rows {
        let (rc, ip) = (&r["received"], &r["in_place"]);
        writeln!(
            out,
            "{:<12} {:>6} | {:>6} {:>6} {:>8} {:>8} {:>8} | {:>6} {:>6} {:>8} {:>8} {:>8}",
            s(&r["name"]),
            r["assigned"],
            rc["done"],
            rc["missing"],
            min(&rc["median"]),
            min(&rc["p90"]),
            min(&rc["max"]),
            ip["done"],
            ip["missing"],
            min(&ip["median"]),
            min(&ip["p90"]),
            min(&ip["max"])
        )?;
    }
    writeln!(out, "（分钟：自下达任务起至确认该阶段；任务随预警发布或级别调整下达）")
}
