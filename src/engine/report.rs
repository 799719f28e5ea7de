//! Reports up (信息报送): while a warning is in force, a daily report to the upper tier's office —
//! per county, the enterprises assigned measures, those that confirmed receipt and measures in place,
//! those overdue, the inspections made and the problems found.
//!
//! In: the playbook governing the warning's region (`reports.daily_at`, `reports.to`), the warning's
//! assignments ([`crate::engine::assign`]) and inspections ([`crate::engine::inspect`]), the clock.
//! Out: the report kept as a document (collection `reports`, key = id = `{warning}.daily.{YYYYMMDD}`),
//! a `report_made` record in the event log, and one mail to the upper tier (template `report_daily`,
//! message id `{report id}-upper-email`) — all in one transaction.
//!
//! # Once a day
//!
//! The loop ([`run`]) looks at each region's current warning (real and drill) every second. A warning signed and not yet ended
//! (issued or active) whose playbook has `daily_at` is due for the day's report once the local time
//! has passed that day's `daily_at`, if it was signed before then. The kept report is the timer's
//! durable state: the job writes it only when no report of that warning and day exists, in the same
//! transaction as the mail, so a report is made and sent exactly once per warning and day, also across
//! restarts (a report due while the daemon was down is made when it starts, that day).
//!
//! Drills (演练) report too, kept apart under the drill warning's id, every copy marked 【演练】.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Asia::Shanghai;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::domain::ack_step::AckStep;
use crate::domain::playbook::{PlaybookSet, ReportTo};
use crate::domain::region::{RegionCode, Regions};
use crate::domain::warning::{Status, Warning};
use crate::engine::Engine;
use crate::engine::assign::{self, AssignmentStatus, Party};
use crate::engine::escalate::local;
use crate::engine::inspect::{INSPECTIONS, Inspection, InspectionStatus};
use crate::notify::{Channel, OutboxMessage, Recipient, outbox};
use crate::store::events::{Event, ReportMade};
use crate::store::{Collection, RecordBody, StoreError, Tx, View};

/// Report documents, key = the report's id.
pub const REPORTS: Collection = Collection::Reports;

/// How often the loop looks at the clock (the clock may be a test's manual one).
const POLL: StdDuration = StdDuration::from_millis(1000);

/// At most this many problems are listed one by one in a report (the count is exact).
const LISTED: usize = 50;

/// One county's figures (the warning's region itself for enterprises registered there).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figures {
    /// The county's code (empty for the total).
    pub county: String,
    /// Its name (合计 for the total).
    pub name: String,
    /// Enterprises with measures in force.
    pub assigned: u64,
    /// … that confirmed receipt (收到).
    pub received: u64,
    /// … that confirmed their measures in place (措施已落实).
    pub in_place: u64,
    /// … past the receipt deadline without confirming receipt (逾期未收到).
    pub overdue: u64,
    /// … past the measures' start without confirming them in place, having confirmed receipt (逾期未落实).
    pub in_place_overdue: u64,
    /// Inspections carried out (监督帮扶, result recorded).
    pub inspected: u64,
    /// … that found the measures not in place (发现问题).
    pub problems: u64,
    /// Inspection tasks still waiting for an inspector.
    pub inspections_open: u64,
}

impl Figures {
    /// Adds another's figures.
    pub fn add(&mut self, o: &Figures) {
        self.assigned += o.assigned;
        self.received += o.received;
        self.in_place += o.in_place;
        self.overdue += o.overdue;
        self.in_place_overdue += o.in_place_overdue;
        self.inspected += o.inspected;
        self.problems += o.problems;
        self.inspections_open += o.inspections_open;
    }
}

/// A problem an inspection found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The county's name.
    pub county_name: String,
    /// The enterprise.
    pub enterprise: String,
    /// What the inspector wrote.
    pub note: String,
    /// When, as people read it.
    pub inspected_at: String,
}

/// A daily report (日报) of a warning in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyReport {
    /// `{warning}.daily.{YYYYMMDD}`.
    pub id: String,
    /// `daily`.
    pub kind: String,
    /// The warning.
    pub warning_id: String,
    /// Its region.
    pub region: RegionCode,
    /// Its name.
    pub region_name: String,
    /// The level in force.
    pub level: String,
    /// Its name (橙色预警).
    pub level_name: String,
    /// Its response (Ⅱ级).
    pub response: String,
    /// Who reports (the playbook's issuer).
    pub issuer: String,
    /// The report's day (Asia/Shanghai).
    pub date: NaiveDate,
    /// The figures hold at this time.
    pub as_of: DateTime<Utc>,
    /// When the warning's measures apply from.
    pub start: DateTime<Utc>,
    /// Per county, by code.
    pub counties: Vec<Figures>,
    /// All counties.
    pub total: Figures,
    /// The problems found, at most 50 listed (`total.problems` counts them all).
    pub problems: Vec<Problem>,
    /// Where it was sent; `None`: kept only (the playbook names no upper tier).
    pub to: Option<ReportTo>,
    /// The id of the mail that carries it.
    pub message: Option<String>,
    /// A drill's report (演练).
    #[serde(default, skip_serializing_if = "crate::domain::warning::is_false")]
    pub exercise: bool,
    /// A decision's report (`issue`, `adjust`, `lift`, `cancel`, `withdraw`): when it was decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<DateTime<Utc>>,
    /// … and by when it is to reach the upper tier (the playbook's `reports.event_within_hours`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
    /// A decision's or summary's opening words (the daily report's are made from its figures).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    /// The summary's (总结评估) parts, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<Section>,
}

/// A part of a report: a heading, paragraphs and an optional table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    /// 一、预警过程.
    pub heading: String,
    /// Paragraphs before the table.
    #[serde(default)]
    pub paragraphs: Vec<String>,
    /// The table's header (empty: no table).
    #[serde(default)]
    pub columns: Vec<String>,
    /// Its rows.
    #[serde(default)]
    pub rows: Vec<Vec<String>>,
}

/// The id of a warning's daily report of `date`.
pub fn daily_id(warning_id: &str, date: NaiveDate) -> String {
    format!("{warning_id}.daily.{}", date.format("%Y%m%d"))
}

/// A report by id.
pub fn report<V: View>(v: &V, id: &str) -> Result<Option<DailyReport>, StoreError> {
    v.doc(REPORTS, id)
}

/// The reports of a warning, oldest first.
pub fn reports_of<V: View>(v: &V, warning_id: &str) -> Result<Vec<DailyReport>, StoreError> {
    Ok(v.docs(REPORTS, &format!("{warning_id}."), "", usize::MAX)?
        .into_iter()
        .map(|(_, r)| r)
        .collect())
}

/// Every report after the id `after` (all warnings, by id), at most `limit`.
pub fn page<V: View>(v: &V, after: &str, limit: usize) -> Result<Vec<DailyReport>, StoreError> {
    Ok(v.docs(REPORTS, "", after, limit)?.into_iter().map(|(_, r)| r).collect())
}

/// The figures of a warning per county at `now`: its enterprises' current tasks (negotiated reductions
/// and departments are left out) and its inspections.
pub fn figures<V: View>(
    v: &V,
    warning_id: &str,
    regions: &Regions,
    now: DateTime<Utc>,
) -> Result<(Vec<Figures>, Vec<Problem>, u64), StoreError> {
    figures_of(v, warning_id, regions, now, false)
}

/// [`figures`], counting also the tasks ended (not superseded) when `ended`: the tasks in force when the
/// warning was lifted or cancelled, for the report of that decision.
pub fn figures_of<V: View>(
    v: &V,
    warning_id: &str,
    regions: &Regions,
    now: DateTime<Utc>,
    ended: bool,
) -> Result<(Vec<Figures>, Vec<Problem>, u64), StoreError> {
    let mut per: BTreeMap<RegionCode, Figures> = BTreeMap::new();
    let mut after = String::new();
    loop {
        let batch = assign::of_warning(v, warning_id, &after, 10_000)?;
        let Some(last) = batch.last() else { break };
        after = last.key.clone();
        for a in batch {
            let Party::Enterprise { county, .. } = &a.party else { continue };
            let counted = match a.status {
                AssignmentStatus::Active => true,
                AssignmentStatus::Ended { .. } => ended,
                AssignmentStatus::Superseded { .. } => false,
            };
            if !counted || a.negotiated.is_some() {
                continue;
            }
            let f = per.entry(*county).or_default();
            let (rec, done) = (a.has(AckStep::Received), a.has(AckStep::InPlace));
            f.assigned += 1;
            f.received += u64::from(rec);
            f.in_place += u64::from(done);
            f.overdue += u64::from(!rec && now > a.ack_deadline);
            f.in_place_overdue += u64::from(rec && !done && now > a.in_place_by());
        }
    }
    let mut problems = Vec::new();
    let mut count = 0u64;
    for (_, i) in v.docs::<Inspection>(INSPECTIONS, &format!("{warning_id}."), "", usize::MAX)? {
        if i.warning_id != warning_id {
            continue;
        }
        let f = per.entry(i.county).or_default();
        match (&i.status, &i.result) {
            (InspectionStatus::Done, Some(r)) => {
                f.inspected += 1;
                if !r.compliant {
                    f.problems += 1;
                    count += 1;
                    if problems.len() < LISTED {
                        problems.push(Problem {
                            county_name: regions.name(i.county),
                            enterprise: i.enterprise_name.clone(),
                            note: r.note.clone(),
                            inspected_at: local(r.inspected_at),
                        });
                    }
                }
            }
            (InspectionStatus::Open, _) => f.inspections_open += 1,
            _ => {}
        }
    }
    let out = per
        .into_iter()
        .map(|(c, mut f)| {
            f.county = c.to_string();
            f.name = regions.name(c);
            f
        })
        .collect();
    Ok((out, problems, count))
}

/// The day's report of a warning as it stands at `now` (not kept).
pub fn build<V: View>(
    v: &V,
    w: &Warning,
    set: &PlaybookSet,
    regions: &Regions,
    date: NaiveDate,
    now: DateTime<Utc>,
) -> Result<DailyReport, StoreError> {
    let pb = set.for_region(w.region, regions);
    let level = pb.and_then(|p| p.level(w.level.id.as_str()));
    let (counties, problems, _) = figures(v, &w.id, regions, now)?;
    let mut total = Figures {
        name: "合计".into(),
        ..Figures::default()
    };
    for f in &counties {
        total.add(f);
    }
    Ok(DailyReport {
        id: daily_id(&w.id, date),
        kind: "daily".into(),
        warning_id: w.id.clone(),
        region: w.region,
        region_name: regions.name(w.region),
        level: w.level.id.to_string(),
        level_name: level.map_or_else(|| w.level.id.to_string(), |l| l.name.clone()),
        response: level.map(|l| l.response.clone()).unwrap_or_default(),
        issuer: crate::domain::playbook::issuer_of(set, w.region, regions).name,
        date,
        as_of: now,
        start: w.start,
        counties,
        total,
        problems,
        to: pb.and_then(|p| p.reports.to.clone()),
        message: None,
        exercise: w.exercise,
        decided_at: None,
        deadline: None,
        text: String::new(),
        sections: Vec::new(),
    })
}

/// What a report is, in words (日报, 发布, 调整, 解除, 取消, 撤回, 总结评估).
pub fn kind_name(kind: &str) -> &'static str {
    match kind {
        "daily" => "日报",
        "issue" => "发布",
        "adjust" => "调整",
        "lift" => "解除",
        "cancel" => "取消",
        "withdraw" => "撤回",
        "summary" => "总结评估",
        _ => "报告",
    }
}

/// The report's title: `太原市重污染天气橙色预警应急响应日报（2026年12月3日）`, 【演练】 first for a drill's;
/// a decision's `太原市重污染天气橙色预警发布情况报告`, the summary `太原市重污染天气应急响应总结评估报告（…）`.
pub fn title(r: &DailyReport) -> String {
    let drill = if r.exercise { "【演练】" } else { "" };
    let (region, level) = (&r.region_name, &r.level_name);
    match r.kind.as_str() {
        "daily" => format!(
            "{drill}{region}重污染天气{level}应急响应日报（{}）",
            r.date.format("%Y年%-m月%-d日")
        ),
        "adjust" => format!("{drill}{region}重污染天气预警调整情况报告（调整为{level}）"),
        "withdraw" => format!("{drill}{region}重污染天气预警调整撤回情况报告"),
        "summary" => format!("{drill}{region}重污染天气应急响应总结评估报告（预警编号{}）", r.warning_id),
        kind => format!("{drill}{region}重污染天气{level}{}情况报告", kind_name(kind)),
    }
}

/// The figures of a decision's report in one sentence.
pub fn figures_sentence(r: &DailyReport) -> String {
    let t = &r.total;
    format!(
        "截至{}，共对{}家企业下达应急减排措施，{}家已确认收到，{}家已确认措施落实。",
        local(r.as_of),
        t.assigned,
        t.received,
        t.in_place
    )
}

/// The opening paragraph, as the page, the mail and the Word file say it.
pub fn lead(r: &DailyReport) -> String {
    match r.kind.as_str() {
        "daily" => {}
        "summary" => return r.text.clone(),
        _ => return format!("{}{}", r.text, figures_sentence(r)),
    }
    let t = &r.total;
    let response = if r.response.is_empty() {
        String::new()
    } else {
        format!("（{}应急响应）", r.response)
    };
    format!(
        "{}{}{response}自{}起执行。截至{}，共对{}家企业下达应急减排措施，{}家已确认收到，{}家已确认措施落实，{}家逾期未确认收到，{}家逾期未确认落实；开展监督帮扶检查{}次，发现问题{}个，待检查{}家。",
        r.region_name,
        r.level_name,
        local(r.start),
        local(r.as_of),
        t.assigned,
        t.received,
        t.in_place,
        t.overdue,
        t.in_place_overdue,
        t.inspected,
        t.problems,
        t.inspections_open,
    )
}

/// The table's header row.
pub const COLUMNS: [&str; 9] = [
    "区县",
    "下达措施企业",
    "已确认收到",
    "已确认落实",
    "逾期未收到",
    "逾期未落实",
    "检查次数",
    "发现问题",
    "待检查",
];

/// A row of the table.
pub fn row(f: &Figures) -> [String; 9] {
    [
        f.name.clone(),
        f.assigned.to_string(),
        f.received.to_string(),
        f.in_place.to_string(),
        f.overdue.to_string(),
        f.in_place_overdue.to_string(),
        f.inspected.to_string(),
        f.problems.to_string(),
        f.inspections_open.to_string(),
    ]
}

/// The report as a Word file (docx-rs, as the 审批表): title, addressee, lead, the table per county,
/// the problems found, the issuer and time.
pub fn to_docx(r: &DailyReport) -> Result<Vec<u8>, String> {
    use docx_rs::{AlignmentType, Docx, Paragraph, Run, RunFonts, Table, TableCell, TableRow, WidthType};
    let font = || RunFonts::new().east_asia("仿宋").ascii("Times New Roman");
    let para = |text: &str, bold: bool, size: usize| {
        let mut run = Run::new().fonts(font()).size(size).add_text(text);
        if bold {
            run = run.bold();
        }
        Paragraph::new().add_run(run)
    };
    let cell = |text: &str, bold: bool| TableCell::new().width(1000, WidthType::Dxa).add_paragraph(para(text, bold, 21));
    let mut rows = vec![TableRow::new(COLUMNS.iter().map(|c| cell(c, true)).collect())];
    for f in r.counties.iter().chain(std::iter::once(&r.total)) {
        rows.push(TableRow::new(row(f).iter().map(|c| cell(c, false)).collect()));
    }
    let mut doc = Docx::new().add_paragraph(
        Paragraph::new().align(AlignmentType::Center).add_run(
            Run::new()
                .fonts(RunFonts::new().east_asia("宋体"))
                .size(36)
                .bold()
                .add_text(title(r)),
        ),
    );
    if let Some(to) = &r.to {
        doc = doc.add_paragraph(para(&format!("{}：", to.name), false, 24));
    }
    doc = doc.add_paragraph(para(&lead(r), false, 24));
    if let Some(d) = r.deadline {
        doc = doc.add_paragraph(para(&format!("报送时限：{}前", local(d)), false, 24));
    }
    if r.kind != "summary" {
        doc = doc.add_table(Table::new(rows).set_grid(vec![1000; 9]));
    }
    for sec in &r.sections {
        doc = doc.add_paragraph(para(&sec.heading, true, 28));
        for p in &sec.paragraphs {
            doc = doc.add_paragraph(para(p, false, 24));
        }
        if !sec.columns.is_empty() {
            let n = sec.columns.len();
            let mut t = vec![TableRow::new(sec.columns.iter().map(|c| cell(c, true)).collect())];
            for row in &sec.rows {
                t.push(TableRow::new(row.iter().map(|c| cell(c, false)).collect()));
            }
            doc = doc.add_table(Table::new(t).set_grid(vec![9000 / n.max(1); n]));
        }
    }
    if !r.problems.is_empty() {
        doc = doc.add_paragraph(para("发现的问题：", true, 24));
        for (n, p) in r.problems.iter().enumerate() {
            doc = doc.add_paragraph(para(
                &format!("{}. {}{}（{}）：{}", n + 1, p.county_name, p.enterprise, p.inspected_at, p.note),
                false,
                24,
            ));
        }
    }
    doc = doc.add_paragraph(para(&format!("{}　{}", r.issuer, local(r.as_of)), false, 24).align(AlignmentType::Right));
    let mut out = std::io::Cursor::new(Vec::new());
    doc.pack(&mut out).map_err(|e| format!("cannot write the Word file: {e}"))?;
    Ok(out.into_inner())
}

/// The report as JSON for the API and the mail: the record, its title, lead and table as read.
pub fn report_json(r: &DailyReport, public_url: &str) -> serde_json::Value {
    let base = public_url.trim_end_matches('/');
    let table: Vec<[String; 9]> = r.counties.iter().chain(std::iter::once(&r.total)).map(row).collect();
    json!({
        "report": r,
        "title": title(r),
        "heading": title(r).trim_start_matches("【演练】"),
        "lead": lead(r),
        "kind_name": kind_name(&r.kind),
        "deadline": r.deadline.map(local),
        "decided_at": r.decided_at.map(local),
        "made_at": local(r.as_of),
        "sections": r.sections,
        "columns": COLUMNS,
        "rows": table,
        "page_url": format!("{base}/reports/{}", r.id),
        "docx_url": format!("{base}/api/v1/reports/{}/docx", r.id),
    })
}

/// The reports due at `now` (pure but for the reads): `(warning, day)` of each signed, live warning
/// whose playbook has a daily time that passed today after its sign-off, without a report of the day.
fn due<V: View>(
    v: &V,
    warnings: &[Warning],
    set: &PlaybookSet,
    regions: &Regions,
    now: DateTime<Utc>,
) -> Result<Vec<(Warning, NaiveDate)>, StoreError> {
    let today = now.with_timezone(&Shanghai).date_naive();
    let mut out = Vec::new();
    for w in warnings {
        if !matches!(w.status, Status::Issued | Status::Active) {
            continue;
        }
        let Some(at) = set.for_region(w.region, regions).and_then(|p| p.reports.daily_at) else {
            continue;
        };
        let Some(at) = today.and_time(at).and_local_timezone(Shanghai).single() else {
            continue;
        };
        let at = at.with_timezone(&Utc);
        if now < at || w.issued_at.is_none_or(|i| i > at) {
            continue;
        }
        if report(v, &daily_id(&w.id, today))?.is_none() {
            out.push((w.clone(), today));
        }
    }
    Ok(out)
}

/// Makes, keeps and sends one day's report of a warning, unless it exists already (in this transaction).
fn make(
    tx: &mut Tx<'_>,
    w: &Warning,
    date: NaiveDate,
    set: &PlaybookSet,
    regions: &Regions,
    public_url: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let id = daily_id(&w.id, date);
    if report(tx, &id)?.is_some() {
        return Ok(false);
    }
    let mut r = build(tx, w, set, regions, date, now)?;
    if let Some(to) = r.to.clone() {
        let msg_id = format!("{id}-upper-email");
        let mut data = report_json(&r, public_url);
        data["event"] = json!("report_daily");
        data["exercise"] = json!(r.exercise);
        data["recipient"] = json!({ "name": to.name });
        data["issuer"] = json!(r.issuer);
        let msg = OutboxMessage::new(
            &msg_id,
            Channel::Email,
            Recipient {
                key: "upper".into(),
                name: to.name.clone(),
                address: to.email.clone(),
            },
            "report_daily",
            data,
            &w.id,
            Some(w.region),
            now,
        );
        r.message = Some(msg.id.clone());
        outbox::enqueue_new(tx, msg)?;
    }
    tx.put_doc(REPORTS, &id, &r)?;
    tx.bump("reports_made", 1)?;
    tx.append(
        now,
        "reports",
        None,
        RecordBody::Other(Event::ReportMade(ReportMade {
            id: r.id.clone(),
            kind: r.kind.clone(),
            warning_id: w.id.clone(),
            to: r.to.as_ref().map(|t| t.email.clone()),
            message: r.message.clone(),
            exercise: r.exercise,
        })),
    )?;
    Ok(true)
}

/// Makes every report due at `now`; returns how many were made.
pub async fn run_once(engine: &Engine, public_url: &str, now: DateTime<Utc>) -> Result<usize, StoreError> {
    let set = engine.playbooks.live();
    let regions = engine.regions;
    let due = engine.store.read(|r| {
        // Each region's current warning, real and drill (bounded by the regions, not by the history).
        let warnings: Vec<Warning> = r
            .region_states()?
            .into_iter()
            .chain(r.drill_states()?)
            .filter_map(|(_, s)| s.warning)
            .filter(|w| w.status.is_live())
            .collect();
        due(r, &warnings, &set, regions, now)
    })?;
    let mut made = 0;
    for (w, date) in due {
        // The report's job: its warning and day; what is logged while it is made carries them.
        let span = tracing::info_span!("job", kind = "report", warning = %w.id, date = %date);
        let report = daily_id(&w.id, date);
        let (set, url) = (set.clone(), public_url.to_string());
        let done = engine
            .store
            .write(move |tx| make(tx, &w, date, &set, regions, &url, now))
            .instrument(span.clone())
            .await?;
        if done {
            span.in_scope(|| tracing::info!(report = %report, "daily report made"));
            made += 1;
        }
    }
    Ok(made)
}

/// What the loop needs beyond the daily reports: the summaries' inputs, and the re-publication's
/// links and measures.
pub struct Loop {
    /// For the after-episode summaries.
    pub summaries: crate::engine::reportup::SummaryInputs,
    /// For the reminders of the re-publication (links, measures).
    pub escalation: Arc<crate::engine::escalate::Escalation>,
}

/// The report loop: makes the reports as they fall due, the summaries of ended warnings and the
/// re-publications, until cancelled.
pub async fn run(engine: Arc<Engine>, public_url: String, more: Loop, cancel: CancellationToken) {
    loop {
        let now = engine.clock.now();
        match run_once(&engine, &public_url, now).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(reports = n, "daily reports made");
                engine.after_change();
            }
            Err(e) => tracing::error!(error = %e, "daily reports failed; they stay due"),
        }
        let set = engine.playbooks.live();
        match crate::engine::reportup::run_summaries(&engine.store, &set, engine.regions, &more.summaries, &public_url, now).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(reports = n, "after-episode summaries made");
                engine.after_change();
            }
            Err(e) => tracing::error!(error = %e, "after-episode summaries failed; they stay due"),
        }
        match crate::engine::republish::run_once(&engine, &more.escalation, now).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(republished = n, "warnings published again");
                engine.after_change();
            }
            Err(e) => tracing::error!(error = %e, "re-publication failed; it stays due"),
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(POLL) => {}
        }
    }
}
