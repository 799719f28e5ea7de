//! The after-episode summary (总结评估): what a warning asked of whom, who answered and how fast, what
//! the inspectors found, and whether the expected reductions met the targets.
//!
//! In: `GET /api/v1/warnings/{id}/summary` (staff; also while the warning runs) and the CLI's
//! `hazeflow episode summary ID [--json]`. Reads the warning's history, its assignments, inspections and
//! negotiated reductions, the stored list, the measure defaults, and the whole-society emissions
//! (`whole_society_emissions.csv` in the list seed folder, `region,so2,nox,pm,vocs` in t/day; see
//! [`crate::registry::reports`]). Changes nothing.
//!
//! Out: [`Summary`]:
//!
//! - `levels`: each level the warning held, from when to when; `history`: its lifecycle events;
//! - `assignments`: per level, how many enterprises, departments and negotiated reductions were given tasks;
//! - `acknowledgements`: per region of the party (an enterprise's county, a department's region), per level
//!   and in total: assigned, received, in place, received on time, the rates, and the median and 90th
//!   percentile of the minutes from notice to "received" and to "in place" (nearest rank), over every
//!   assignment made, superseded ones included (each was a notice to answer);
//! - `inspections`: counts by status, reason and finding, and the list;
//! - `reductions`: per level held, the expected reduction of the enterprises assigned at that level (each
//!   enterprise's baseline × the capped sum of its measures' fractions, [`Defaults::expected_reduction`],
//!   from the list as it is now) plus the negotiated reductions in force, against the target (the level's
//!   `reduction_target_percent` × whole-society emissions of the warning's region, or of the regions within
//!   it that the table has). Without emissions for the region the target is `null` and `basis` says why.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::domain::ack_step::AckStep;
use crate::domain::level::LevelId;
use crate::domain::region::{RegionCode, Regions};
use crate::domain::warning::{EventKind, Warning};
use crate::engine::assign::{self, Assignment, AssignmentStatus, Party};
use crate::engine::inspect::{INSPECTIONS, Inspection, InspectionStatus};
use crate::registry::reports::{SocietyEmissions, parse_society};
use crate::registry::{Defaults, PerSpecies, Species};
use crate::store::{ReadTx, RecordBody, StoreError};

/// One level held, from when to when.
#[derive(Debug, Clone, Serialize)]
pub struct LevelPeriod {
    /// Level id.
    pub level: LevelId,
    /// Its name.
    pub level_name: String,
    /// Set at (issue or change).
    pub from: DateTime<Utc>,
    /// Left at (change, lift, cancel); `None` while it holds.
    pub to: Option<DateTime<Utc>>,
    /// Hours held (until now while it holds).
    pub hours: f64,
}

/// Acknowledgement figures of a set of assignments.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AckStats {
    /// Region name (per-region rows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Assignments made.
    pub assigned: usize,
    /// Acknowledged as received.
    pub received: usize,
    /// Received by the deadline.
    pub on_time: usize,
    /// Measures confirmed in place.
    pub in_place: usize,
    /// received / assigned.
    pub received_rate: Option<f64>,
    /// in_place / assigned.
    pub in_place_rate: Option<f64>,
    /// Minutes from notice to "received": median and 90th percentile.
    pub received_minutes_median: Option<f64>,
    /// 90th percentile.
    pub received_minutes_p90: Option<f64>,
    /// Minutes from notice to "in place": median.
    pub in_place_minutes_median: Option<f64>,
    /// 90th percentile.
    pub in_place_minutes_p90: Option<f64>,
    #[serde(skip)]
    received_minutes: Vec<f64>,
    #[serde(skip)]
    in_place_minutes: Vec<f64>,
}

impl AckStats {
    fn add(&mut self, a: &Assignment) {
        self.assigned += 1;
        let at = |step: AckStep| a.acks.iter().find(|k| k.step == step).map(|k| k.at);
        if let Some(t) = at(AckStep::Received) {
            self.received += 1;
            self.on_time += usize::from(t <= a.ack_deadline);
            self.received_minutes.push((t - a.created_at).num_seconds() as f64 / 60.0);
        }
        if let Some(t) = at(AckStep::InPlace) {
            self.in_place += 1;
            self.in_place_minutes.push((t - a.created_at).num_seconds() as f64 / 60.0);
        }
    }

    fn finish(mut self) -> AckStats {
        let rate = |n: usize| (self.assigned > 0).then(|| round(n as f64 / self.assigned as f64, 4));
        self.received_rate = rate(self.received);
        self.in_place_rate = rate(self.in_place);
        self.received_minutes_median = percentile(&mut self.received_minutes, 0.5);
        self.received_minutes_p90 = percentile(&mut self.received_minutes, 0.9);
        self.in_place_minutes_median = percentile(&mut self.in_place_minutes, 0.5);
        self.in_place_minutes_p90 = percentile(&mut self.in_place_minutes, 0.9);
        self
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Nearest-rank percentile (`p` in 0..=1) of `v`, rounded to 0.1; `None` when empty.
pub fn percentile(v: &mut [f64], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(round(v[rank - 1], 1))
}

/// Tasks given at one level.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LevelAssignments {
    /// Enterprises (list measures).
    pub enterprises: usize,
    /// Departments (duties).
    pub departments: usize,
    /// Negotiated reductions.
    pub negotiated: usize,
    /// Of all these, how many were later superseded.
    pub superseded: usize,
}

/// Inspection figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InspectionSummary {
    /// Tasks opened.
    pub total: usize,
    /// Still open.
    pub open: usize,
    /// Found compliant.
    pub compliant: usize,
    /// Found non-compliant.
    pub non_compliant: usize,
    /// Tasks by reason (`overdue`, `requested`, `recheck`).
    pub by_reason: BTreeMap<String, usize>,
    /// The tasks.
    pub list: Vec<Inspection>,
}

/// Expected reductions at one level against the target.
#[derive(Debug, Clone, Serialize)]
pub struct ReductionCheck {
    /// Level id.
    pub level: LevelId,
    /// Its name.
    pub level_name: String,
    /// Enterprises assigned at this level (list measures).
    pub enterprises: usize,
    /// Their expected reduction, t/day.
    pub expected: PerSpecies,
    /// Negotiated reductions in force at this level, t/day.
    pub negotiated: PerSpecies,
    /// Both, t/day.
    pub total: PerSpecies,
    /// The level's target, % of whole-society emissions.
    pub target_percent: PerSpecies,
    /// Whole-society emissions of the region, t/day; `None` when unknown.
    pub society: Option<PerSpecies>,
    /// The target, t/day; `None` when unknown.
    pub target: Option<PerSpecies>,
    /// Pollutants whose total falls short of the target (empty when met or unknown).
    pub short: Vec<Species>,
    /// Where the emissions came from, or why the target is unknown.
    pub basis: String,
}

/// The whole summary.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The warning as it is now.
    pub warning: Value,
    /// Levels held.
    pub levels: Vec<LevelPeriod>,
    /// Lifecycle events.
    pub history: Vec<Value>,
    /// Tasks per level.
    pub assignments: BTreeMap<LevelId, LevelAssignments>,
    /// Acknowledgements in total, per region and per level.
    pub acknowledgements: Value,
    /// Inspections.
    pub inspections: InspectionSummary,
    /// Negotiated reductions (the latest version per enterprise).
    pub negotiated: Vec<Value>,
    /// Expected reductions against the targets, per level held.
    pub reductions: Vec<ReductionCheck>,
    /// When the summary was made.
    pub generated_at: DateTime<Utc>,
}

/// Every assignment of a warning.
pub(crate) fn all_assignments(r: &ReadTx, warning_id: &str) -> Result<Vec<Assignment>, StoreError> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let page = assign::of_warning(r, warning_id, &after, 10_000)?;
        let Some(last) = page.last() else { break };
        after = last.key.clone();
        out.extend(page);
    }
    Ok(out)
}

/// The whole-society emissions of `region`: its own row, else the sum of the rows within it.
fn society_of(society: &SocietyEmissions, regions: &Regions, region: RegionCode) -> Option<(PerSpecies, String)> {
    if let Some(v) = society.get(&region) {
        return Some((*v, format!("{}（{region}）全社会排放量", regions.name(region))));
    }
    let within: Vec<(&RegionCode, &PerSpecies)> = society.iter().filter(|(r, _)| regions.is_within(**r, region)).collect();
    if within.is_empty() {
        return None;
    }
    let sum: PerSpecies = within.iter().map(|(_, v)| *v).sum();
    let names: Vec<String> = within.iter().map(|(r, _)| regions.name(**r)).collect();
    Some((sum, format!("{}全社会排放量之和", names.join("、"))))
}

/// Reads `whole_society_emissions.csv` from the folder, if it is there and parses.
pub fn load_society(dir: Option<&Path>) -> Result<SocietyEmissions, String> {
    let Some(dir) = dir else {
        return Err("未配置清单种子目录，没有全社会排放量表（whole_society_emissions.csv）".into());
    };
    let path = dir.join("whole_society_emissions.csv");
    // Duty staff read the reason on the warning's page: in Chinese, at the same file:line:column.
    let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("没有全社会排放量表 {}", path.display()),
        _ => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the whole-society emissions");
            format!("无法读取全社会排放量表 {}", path.display())
        }
    })?;
    parse_society(&path.display().to_string(), &text).map_err(|errors| {
        errors
            .iter()
            .map(|e| crate::domain::playbook::zh::line(&e.to_string()))
            .collect::<Vec<_>>()
            .join("；")
    })
}

fn level_name(defaults: &Defaults, level: &str) -> String {
    defaults.level(level).map_or_else(|| level.to_string(), |l| l.name.clone())
}

/// The level periods of a warning from its history.
fn periods(history: &[crate::store::Record], defaults: &Defaults, now: DateTime<Utc>) -> Vec<LevelPeriod> {
    let mut out: Vec<LevelPeriod> = Vec::new();
    let close = |out: &mut Vec<LevelPeriod>, at: DateTime<Utc>| {
        if let Some(last) = out.last_mut()
            && last.to.is_none()
        {
            last.to = Some(at);
        }
    };
    for rec in history {
        let RecordBody::Warning { event, .. } = &rec.body else { continue };
        let next = match &event.kind {
            EventKind::Issued { level, .. } => Some(level.id.clone()),
            EventKind::LevelChanged { to, .. } => Some(to.clone()),
            EventKind::Lifted | EventKind::Cancelled => {
                close(&mut out, event.at);
                None
            }
            _ => None,
        };
        if let Some(level) = next {
            close(&mut out, event.at);
            out.push(LevelPeriod {
                level_name: level_name(defaults, &level),
                level,
                from: event.at,
                to: None,
                hours: 0.0,
            });
        }
    }
    for p in &mut out {
        p.hours = round((p.to.unwrap_or(now) - p.from).num_seconds() as f64 / 3600.0, 2);
    }
    out
}

/// Builds the summary of a warning; `None` when there is no such warning.
pub fn build(
    r: &ReadTx,
    warning_id: &str,
    defaults: &Defaults,
    regions: &Regions,
    society: &Result<SocietyEmissions, String>,
    now: DateTime<Utc>,
) -> Result<Option<Summary>, StoreError> {
    let Some(w) = r.warning(warning_id)? else { return Ok(None) };
    let history = r.warning_history(warning_id)?;
    let levels = periods(&history, defaults, now);
    let events: Vec<Value> = history
        .iter()
        .filter_map(|rec| match &rec.body {
            RecordBody::Warning { event, .. } => {
                let mut v = serde_json::to_value(&event.kind).unwrap_or(Value::Null);
                v["at"] = json!(event.at);
                v["actor"] = json!(event.actor);
                v["reason"] = json!(event.reason);
                v["seq"] = json!(rec.seq);
                Some(v)
            }
            _ => None,
        })
        .collect();
    let all = all_assignments(r, warning_id)?;

    let mut per_level: BTreeMap<LevelId, LevelAssignments> = BTreeMap::new();
    let mut total = AckStats::default();
    let mut by_region: BTreeMap<RegionCode, AckStats> = BTreeMap::new();
    let mut by_level: BTreeMap<LevelId, AckStats> = BTreeMap::new();
    for a in &all {
        let l = per_level.entry(a.level.clone()).or_default();
        match (&a.party, &a.negotiated) {
            (Party::Department { .. }, _) => l.departments += 1,
            (Party::Enterprise { .. }, Some(_)) => l.negotiated += 1,
            (Party::Enterprise { .. }, None) => l.enterprises += 1,
        }
        l.superseded += usize::from(matches!(a.status, AssignmentStatus::Superseded { .. }));
        total.add(a);
        by_region.entry(assign::party_region(a)).or_default().add(a);
        by_level.entry(a.level.clone()).or_default().add(a);
    }
    let by_region: BTreeMap<String, AckStats> = by_region
        .into_iter()
        .map(|(r, s)| {
            let mut s = s.finish();
            s.name = Some(regions.name(r));
            (r.to_string(), s)
        })
        .collect();
    let by_level: BTreeMap<LevelId, AckStats> = by_level.into_iter().map(|(l, s)| (l, s.finish())).collect();
    let acknowledgements = json!({ "total": total.finish(), "by_region": by_region, "by_level": by_level });

    let list: Vec<Inspection> = r
        .docs::<Inspection>(INSPECTIONS, &format!("{warning_id}."), "", usize::MAX)?
        .into_iter()
        .map(|(_, i)| i)
        .collect();
    let mut inspections = InspectionSummary {
        total: list.len(),
        ..InspectionSummary::default()
    };
    for i in &list {
        inspections.open += usize::from(i.status == InspectionStatus::Open);
        match &i.result {
            Some(x) if x.compliant => inspections.compliant += 1,
            Some(_) => inspections.non_compliant += 1,
            None => {}
        }
        *inspections.by_reason.entry(i.reason.clone()).or_default() += 1;
    }
    inspections.list = list;

    // Negotiated reductions: the latest version per enterprise.
    let negotiated: Vec<&Assignment> = all
        .iter()
        .filter(|a| a.negotiated.is_some() && !matches!(a.status, AssignmentStatus::Superseded { .. }))
        .collect();
    let enterprise = |uscc: &str| -> Result<Option<crate::registry::Enterprise>, StoreError> { crate::engine::list::enterprise(r, uscc) };
    let mut negotiated_json = Vec::new();
    for a in &negotiated {
        let Party::Enterprise { uscc, county } = &a.party else { continue };
        let name = enterprise(uscc)?.map_or_else(|| uscc.clone(), |e| e.name);
        negotiated_json.push(json!({
            "assignment": a.key, "uscc": uscc, "name": name, "county": county, "level": a.level,
            "commitment": a.negotiated, "agreed_at": a.created_at, "status": a.status,
            "received": a.has(AckStep::Received), "in_place": a.has(AckStep::InPlace),
        }));
    }

    // Expected reductions per level held.
    let society_row = society.as_ref().ok().and_then(|s| society_of(s, regions, w.region));
    let basis = match (&society_row, society) {
        (Some((_, b)), _) => b.clone(),
        (None, Ok(_)) => format!(
            "未知：全社会排放量表中没有{}（{}）及其下辖地区的数据",
            regions.name(w.region),
            w.region
        ),
        (None, Err(e)) => format!("未知：{e}"),
    };
    let mut reductions = Vec::new();
    let held: Vec<&LevelPeriod> = {
        let mut seen = BTreeSet::new();
        levels.iter().filter(|p| seen.insert(p.level.clone())).collect()
    };
    for p in held {
        let mut usccs: BTreeSet<&str> = BTreeSet::new();
        for a in all.iter().filter(|a| a.level == p.level && a.negotiated.is_none()) {
            if let Party::Enterprise { uscc, .. } = &a.party {
                usccs.insert(uscc);
            }
        }
        let mut expected = PerSpecies::default();
        for u in &usccs {
            if let Some(e) = enterprise(u)? {
                expected += defaults.expected_reduction(&e, &p.level);
            }
        }
        // Negotiated reductions in force at some time while this level held.
        let level_periods: Vec<&LevelPeriod> = levels.iter().filter(|q| q.level == p.level).collect();
        let mut neg = PerSpecies::default();
        for a in &negotiated {
            let until = match &a.status {
                AssignmentStatus::Ended { at, .. } => Some(*at),
                _ => None,
            };
            let overlaps = level_periods
                .iter()
                .any(|q| a.created_at < q.to.unwrap_or(now) && until.is_none_or(|u| u > q.from));
            if overlaps && let Some(c) = &a.negotiated {
                neg += c.reductions;
            }
        }
        let total = expected + neg;
        let target_percent = defaults.level(&p.level).map_or_else(PerSpecies::default, |l| l.target_percent);
        let target = society_row.as_ref().map(|(s, _)| s.zip(&target_percent, |s, t| s * t / 100.0));
        let short = target
            .map(|t| {
                Species::ALL
                    .into_iter()
                    .filter(|x| t[*x] > 0.0 && total[*x] + 1e-9 < t[*x])
                    .collect()
            })
            .unwrap_or_default();
        reductions.push(ReductionCheck {
            level: p.level.clone(),
            level_name: p.level_name.clone(),
            enterprises: usccs.len(),
            expected: expected.map(|x| round(x, 4)),
            negotiated: neg.map(|x| round(x, 4)),
            total: total.map(|x| round(x, 4)),
            target_percent,
            society: society_row.as_ref().map(|(s, _)| *s),
            target: target.map(|t| t.map(|x| round(x, 4))),
            short,
            basis: basis.clone(),
        });
    }

    Ok(Some(Summary {
        warning: warning_json(&w, regions, defaults),
        levels,
        history: events,
        assignments: per_level,
        acknowledgements,
        inspections,
        negotiated: negotiated_json,
        reductions,
        generated_at: now,
    }))
}

fn warning_json(w: &Warning, regions: &Regions, defaults: &Defaults) -> Value {
    json!({
        "id": w.id, "region": w.region, "region_name": regions.name(w.region), "status": w.status,
        "level": w.level, "level_name": level_name(defaults, &w.level), "issued_at": w.issued_at,
        "start": w.start, "expected_end": w.expected_end, "ended_at": w.ended_at, "playbook": w.playbook,
        "exercise": w.exercise,
    })
}

/// A warning status as duty staff read it.
fn status_zh(code: &str) -> &str {
    match code {
        "pending" => "待签发",
        "issued" => "已发布",
        "active" => "生效中",
        "lifted" => "已解除",
        "cancelled" => "已取消",
        other => other,
    }
}

/// Prints a summary (the JSON of the endpoint) as tables for people, in Chinese (duty staff read it).
pub fn print_table(v: &Value, out: &mut impl std::fmt::Write) -> std::fmt::Result {
    let s = |v: &Value| {
        v.as_str()
            .map_or_else(|| if v.is_null() { "-".to_string() } else { v.to_string() }, str::to_string)
    };
    let t = |v: &Value| {
        v.as_str().and_then(|x| DateTime::parse_from_rfc3339(x).ok()).map_or_else(
            || "-".to_string(),
            |x| x.with_timezone(&chrono_tz::Asia::Shanghai).format("%Y-%m-%d %H:%M").to_string(),
        )
    };
    let num = |v: &Value| v.as_f64().map_or_else(|| "-".to_string(), |x| format!("{x}"));
    let pct = |v: &Value| v.as_f64().map_or_else(|| "-".to_string(), |x| format!("{:.1}%", x * 100.0));
    let w = &v["warning"];
    writeln!(
        out,
        "{}预警 {}  {}（{}）  {}  {}",
        if w["exercise"] == true { "【演练】" } else { "" },
        s(&w["id"]),
        s(&w["region_name"]),
        s(&w["region"]),
        s(&w["level_name"]),
        status_zh(&s(&w["status"]))
    )?;
    writeln!(
        out,
        "  发布 {}  生效 {}  预计结束 {}  结束 {}",
        t(&w["issued_at"]),
        t(&w["start"]),
        t(&w["expected_end"]),
        t(&w["ended_at"])
    )?;
    writeln!(out, "\n预警级别")?;
    for p in v["levels"].as_array().into_iter().flatten() {
        writeln!(
            out,
            "  {:<8} {:<10} {} → {:<16} {:>7} h",
            s(&p["level"]),
            s(&p["level_name"]),
            t(&p["from"]),
            t(&p["to"]),
            num(&p["hours"])
        )?;
    }
    writeln!(out, "\n任务下达（级别）          企业数      部门数  协商减排  已被替代")?;
    for (level, a) in v["assignments"].as_object().into_iter().flatten() {
        writeln!(
            out,
            "  {:<20} {:>11}  {:>11}  {:>10}  {:>10}",
            level,
            num(&a["enterprises"]),
            num(&a["departments"]),
            num(&a["negotiated"]),
            num(&a["superseded"])
        )?;
    }
    writeln!(
        out,
        "\n确认情况（地区）        下达数    已确认  按时确认  已落实  确认率  中位分钟  P90分钟"
    )?;
    let row = |out: &mut dyn std::fmt::Write, label: &str, a: &Value| {
        writeln!(
            out,
            "  {:<20} {:>8}  {:>8}  {:>7}  {:>8}  {:>6}  {:>10}  {:>7}",
            label,
            num(&a["assigned"]),
            num(&a["received"]),
            num(&a["on_time"]),
            num(&a["in_place"]),
            pct(&a["received_rate"]),
            num(&a["received_minutes_median"]),
            num(&a["received_minutes_p90"])
        )
    };
    for (code, a) in v["acknowledgements"]["by_region"].as_object().into_iter().flatten() {
        row(out, &format!("{code} {}", s(&a["name"])), a)?;
    }
    row(out, "合计", &v["acknowledgements"]["total"])?;
    let i = &v["inspections"];
    writeln!(
        out,
        "\n监督检查  共{}项，待检查{}项，已落实{}项，未落实{}项",
        num(&i["total"]),
        num(&i["open"]),
        num(&i["compliant"]),
        num(&i["non_compliant"])
    )?;
    for x in i["list"].as_array().into_iter().flatten() {
        let finding = match x["result"]["compliant"].as_bool() {
            Some(true) => "已落实".to_string(),
            Some(false) => format!("未落实：{}", s(&x["result"]["note"])),
            None => "待检查".to_string(),
        };
        writeln!(
            out,
            "  {}  {} ({})  {}  {}",
            s(&x["county"]),
            s(&x["enterprise_name"]),
            s(&x["uscc"]),
            s(&x["reason"]),
            finding
        )?;
    }
    if let Some(list) = v["negotiated"].as_array().filter(|l| !l.is_empty()) {
        writeln!(out, "\n协商减排")?;
        for n in list {
            writeln!(
                out,
                "  {} ({}): {}",
                s(&n["name"]),
                s(&n["uscc"]),
                s(&n["commitment"]["commitment"])
            )?;
        }
    }
    let labels: Vec<String> = Species::ALL.iter().map(|sp| format!("{:>9}", sp.label())).collect();
    writeln!(out, "\n减排量（吨/日）     {}", labels.join("  "))?;
    for r in v["reductions"].as_array().into_iter().flatten() {
        let p = |x: &Value| {
            Species::ALL
                .iter()
                .map(|sp| format!("{:>9}", num(&x[sp.id()])))
                .collect::<Vec<_>>()
                .join("  ")
        };
        writeln!(out, "  {}（{}家企业）", s(&r["level_name"]), num(&r["enterprises"]))?;
        writeln!(out, "    预期减排          {}", p(&r["expected"]))?;
        writeln!(out, "    协商减排          {}", p(&r["negotiated"]))?;
        writeln!(out, "    合计              {}", p(&r["total"]))?;
        if r["target"].is_null() {
            writeln!(out, "    减排目标          {}", s(&r["basis"]))?;
        } else {
            writeln!(out, "    减排目标          {}", p(&r["target"]))?;
            let short: Vec<String> = r["short"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| {
                    let id = s(x);
                    Species::from_id(&id).map_or(id, |p| p.label().to_string())
                })
                .collect();
            writeln!(
                out,
                "    {}",
                if short.is_empty() {
                    "已达到减排目标".to_string()
                } else {
                    format!("未达到减排目标：{}", short.join("、"))
                }
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v = vec![5.0, 1.0, 3.0, 2.0, 4.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(percentile(&mut v, 0.5), Some(5.0));
        assert_eq!(percentile(&mut v, 0.9), Some(9.0));
        assert_eq!(percentile(&mut [42.0], 0.9), Some(42.0));
        assert_eq!(percentile(&mut [], 0.5), None);
    }

    #[test]
    fn the_reduction_table_has_a_column_per_species() {
        let v = json!({ "reductions": [{
            "level_name": "橙色预警", "enterprises": 2,
            "expected": { "so2": 1.0, "nox": 2.5, "pm": 0.0, "vocs": 0.25 },
            "negotiated": { "so2": 0.0, "nox": 0.0, "pm": 0.0, "vocs": 0.0 },
            "total": { "so2": 1.0, "nox": 2.5, "pm": 0.0, "vocs": 0.25 },
            "target": { "so2": 2.0, "nox": 2.0, "pm": 0.0, "vocs": 0.0 },
            "short": ["so2"],
        }] });
        let mut out = String::new();
        print_table(&v, &mut out).unwrap();
        let table = &out[out.find("减排量").unwrap()..];
        assert_eq!(
            table,
            "减排量（吨/日）           SO2        NOx         PM       VOCs\n  \
             橙色预警（2家企业）\n    \
             预期减排                  1        2.5          0       0.25\n    \
             协商减排                  0          0          0          0\n    \
             合计                      1        2.5          0       0.25\n    \
             减排目标                  2          2          0          0\n    \
             未达到减排目标：SO2\n"
        );
    }
}
