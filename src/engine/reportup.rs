//! Reports up (信息报送) of decisions and the after-episode summary (总结评估), beside the daily report
//! of [`crate::engine::report`] and kept with it (collection `reports`).
//!
//! # Decisions
//!
//! Each decision on a warning (its issue, a level change decided, a lift or cancellation decided, a
//! decided change withdrawn) is reported to the upper tier's office (`reports.to`) in the same
//! transaction as the decision ([`ReportStage`], a [`Stage`] after the others): the report is kept
//! (id `{warning}.event.{n:02}`, kind `issue`, `adjust`, `lift`, `cancel` or `withdraw`), with its
//! deadline (the decision's time + the playbook's `reports.event_within_hours`) and the figures per
//! county as they stand, and one mail (template `report_up`) is queued with it. The playbook without
//! `event_within_hours` makes none. The page shows when the mail went out against the deadline.
//!
//! # The summary
//!
//! When a warning ends (lifted or cancelled), the same transaction writes a durable marker (collection
//! `reports_due`, key = the warning id) when its playbook has `reports.summary: true`. The report loop
//! ([`run_summaries`]) builds each marked warning's summary from [`crate::engine::episode::build`] on a
//! snapshot, then keeps the report (id `{warning}.summary`), queues its mail and removes the marker in
//! one transaction — only if no report of that id exists — so each ended warning gets exactly one,
//! also when the daemon stopped in between (the marker waits for the next leader).
//!
//! Drills (演练) report too, under the drill warning's id, every copy marked 【演练】.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::Instrument;

use crate::domain::level::LevelId;
use crate::domain::playbook::{Playbook, PlaybookSet};
use crate::domain::region::Regions;
use crate::domain::warning::{Event as LifecycleEvent, EventKind, RegionState, Status, Warning};
use crate::engine::episode::{self, Summary};
use crate::engine::escalate::local;
use crate::engine::report::{self, DailyReport, Figures, REPORTS, Section, report_json};
use crate::notify::{Channel, OutboxMessage, Recipient, outbox};
use crate::registry::{Defaults, Species};
use crate::store::events::{Event, ReportMade};
use crate::store::{Collection, RecordBody, Stage, Store, StoreError, Tx};

/// The MIME type of a Word file.
const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

/// Summaries due, key = warning id → [`SummaryDue`].
pub const DUE: Collection = Collection::ReportsDue;

/// A warning ended whose summary is still to be made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryDue {
    /// The warning.
    pub warning_id: String,
    /// When it ended.
    pub ended_at: DateTime<Utc>,
}

/// The id of a warning's summary report.
pub fn summary_id(warning_id: &str) -> String {
    format!("{warning_id}.summary")
}

/// Keeps a report, queues its mail to the upper tier (if the playbook names one) and records it.
pub fn keep_and_send(tx: &mut Tx<'_>, mut r: DailyReport, public_url: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
    if let Some(to) = r.to.clone() {
        let msg_id = format!("{}-upper-email", r.id);
        let mut data = report_json(&r, public_url);
        data["event"] = json!("report_up");
        data["exercise"] = json!(r.exercise);
        data["recipient"] = json!({ "name": to.name });
        data["issuer"] = json!(r.issuer);
        data["docx_attached"] = json!(false);
        let mut msg = OutboxMessage::new(
            &msg_id,
            Channel::Email,
            Recipient {
                key: "upper".into(),
                name: to.name.clone(),
                address: to.email.clone(),
            },
            "report_up",
            data,
            &r.warning_id,
            Some(r.region),
            now,
        );
        // The summary's Word file goes with its mail: the upper tier has no login to fetch it.
        if r.kind == "summary" {
            match report::to_docx(&r) {
                Ok(bytes) => {
                    msg.attachments
                        .push(outbox::Attachment::new(&format!("{}.docx", report::title(&r)), DOCX, &bytes));
                    msg.data["docx_attached"] = json!(true);
                }
                Err(e) => tracing::error!(report = %r.id, error = %e, "cannot make the Word file; the mail goes without it"),
            }
        }
        r.message = Some(msg.id.clone());
        outbox::enqueue_new(tx, msg)?;
    }
    tx.put_doc(REPORTS, &r.id, &r)?;
    tx.bump("reports_made", 1)?;
    tx.append(
        now,
        "reports",
        None,
        RecordBody::Other(Event::ReportMade(ReportMade {
            id: r.id.clone(),
            kind: r.kind.clone(),
            warning_id: r.warning_id.clone(),
            to: r.to.as_ref().map(|t| t.email.clone()),
            message: r.message.clone(),
            exercise: r.exercise,
        })),
    )?;
    Ok(())
}

/// The stage that reports each decision up and marks ended warnings for their summary.
pub struct ReportStage {
    /// Region names.
    pub regions: &'static Regions,
    /// Links in the mails.
    pub public_url: String,
}

fn level_words(pb: &Playbook, level: &str) -> (String, String) {
    pb.level(level)
        .map(|l| (l.name.clone(), l.response.clone()))
        .unwrap_or_else(|| (level.to_string(), String::new()))
}

fn response_words(response: &str) -> String {
    if response.is_empty() {
        String::new()
    } else {
        format!("（{response}应急响应）")
    }
}

/// What a warning was just before an event, folded from its history: the level in force (or issued),
/// whether it had started, and the change decided and not yet in effect (level, or `None` for the end;
/// its effective time).
#[derive(Debug, Clone, Default)]
struct Before {
    level: Option<LevelId>,
    started: bool,
    next: Option<(Option<LevelId>, DateTime<Utc>)>,
}

impl Before {
    fn apply(&mut self, e: &LifecycleEvent) {
        match &e.kind {
            EventKind::Issued { level, .. } => self.level = Some(level.id.clone()),
            EventKind::Started => self.started = true,
            EventKind::Scheduled { to, effective, .. } => self.next = Some((to.clone(), *effective)),
            EventKind::LevelChanged { to, .. } => {
                self.level = Some(to.clone());
                self.next = None;
            }
            EventKind::Unscheduled | EventKind::Lifted | EventKind::Cancelled | EventKind::Withdrawn => self.next = None,
            _ => {}
        }
    }

    /// The state before the first of `events`, from the history read in the transaction (which may or
    /// may not hold `events` already at its end).
    fn of(tx: &Tx<'_>, w: &Warning, events: &[LifecycleEvent]) -> Result<Self, StoreError> {
        let history: Vec<LifecycleEvent> = tx
            .warning_history(&w.id)?
            .into_iter()
            .filter_map(|r| match r.body {
                RecordBody::Warning { event, .. } => Some(event),
                _ => None,
            })
            .collect();
        let n = history.len();
        let upto = if n >= events.len() && history[n - events.len()..] == *events {
            n - events.len()
        } else {
            n
        };
        let mut b = Before::default();
        for e in &history[..upto] {
            b.apply(e);
        }
        Ok(b)
    }
}

impl ReportStage {
    /// What a decision says (kind, the level it concerns, the words after "{region}于{when}"), given the
    /// warning as it was just before (`before`); `None`: not reported.
    fn decision(&self, e: &LifecycleEvent, before: &Before, w: &Warning, pb: &Playbook) -> Option<(&'static str, String, String)> {
        let reason = if e.reason.is_empty() {
            String::new()
        } else {
            format!("（{}）", e.reason)
        };
        let current = before.level.clone().unwrap_or_else(|| w.level.id.clone());
        Some(match &e.kind {
            EventKind::Issued {
                level,
                start,
                expected_end,
                signer,
                ..
            } => {
                let (name, response) = level_words(pb, level);
                let signer = signer.as_ref().map(|s| format!("签发人：{s}。")).unwrap_or_default();
                (
                    "issue",
                    level.id.to_string(),
                    format!(
                        "发布重污染天气{name}{}，预警时段为{}至{}。{signer}",
                        response_words(&response),
                        local(*start),
                        local(*expected_end)
                    ),
                )
            }
            EventKind::Scheduled {
                to: Some(to), effective, ..
            } => {
                let (from, _) = level_words(pb, &current);
                let (name, response) = level_words(pb, to);
                (
                    "adjust",
                    to.to_string(),
                    format!(
                        "决定自{}起将重污染天气预警由{from}调整为{name}{}{reason}。",
                        local(*effective),
                        response_words(&response)
                    ),
                )
            }
            // Called off before it started (取消): the warning had not started and the end is at or
            // before its start.
            EventKind::Scheduled { to: None, effective, .. } if !before.started && *effective <= w.start => {
                let (name, _) = level_words(pb, &current);
                (
                    "cancel",
                    current.to_string(),
                    format!(
                        "决定取消原定于{}起执行的重污染天气{name}{reason}，自{}起生效。",
                        local(w.start),
                        local(*effective)
                    ),
                )
            }
            EventKind::Scheduled { to: None, effective, .. } => {
                let (name, response) = level_words(pb, &current);
                (
                    "lift",
                    current.to_string(),
                    format!(
                        "决定于{}解除重污染天气{name}{}{reason}。",
                        local(*effective),
                        response_words(&response)
                    ),
                )
            }
            EventKind::Unscheduled => {
                let (name, _) = level_words(pb, &current);
                (
                    "withdraw",
                    current.to_string(),
                    format!("{}{reason}，重污染天气{name}继续执行。", withdrawn_words(before, pb)),
                )
            }
            _ => return None,
        })
    }
}

/// "撤回原定于…的决定": the change decided before that an [`EventKind::Unscheduled`] withdraws.
fn withdrawn_words(before: &Before, pb: &Playbook) -> String {
    match &before.next {
        Some((Some(to), at)) => format!("撤回原定于{}起将预警调整为{}的决定", local(*at), level_words(pb, to).0),
        Some((None, at)) => format!("撤回原定于{}解除预警的决定", local(*at)),
        None => "撤回此前决定的预警调整".into(),
    }
}

impl Stage for ReportStage {
    fn on_warning_events(
        &self,
        tx: &mut Tx<'_>,
        now: DateTime<Utc>,
        events: &[LifecycleEvent],
        state: &RegionState,
        pb: &Playbook,
    ) -> Result<(), StoreError> {
        let Some(w) = state.warning.as_ref() else { return Ok(()) };
        // The timeline decided with the issue (its level steps and planned end) is part of the issue.
        let issued = events.iter().any(|e| matches!(e.kind, EventKind::Issued { .. }));
        let reported = |e: &LifecycleEvent| {
            matches!(
                e.kind,
                EventKind::Issued { .. } | EventKind::Scheduled { .. } | EventKind::Unscheduled
            )
        };
        if !events
            .iter()
            .any(|e| reported(e) || matches!(e.kind, EventKind::Lifted | EventKind::Cancelled))
        {
            return Ok(());
        }
        let mut before = Before::of(tx, w, events)?;
        // A change withdrawn and another decided in the same transaction (the consultation re-planned):
        // one report, of the new decision, saying what it withdrew.
        let mut withdrawn: Option<String> = None;
        for (i, e) in events.iter().enumerate() {
            let was = before.clone();
            before.apply(e);
            if issued && matches!(e.kind, EventKind::Scheduled { .. }) {
                continue;
            }
            if matches!(e.kind, EventKind::Lifted | EventKind::Cancelled) && pb.reports.summary && w.issued_at.is_some() {
                let due = SummaryDue {
                    warning_id: w.id.clone(),
                    ended_at: e.at,
                };
                if tx.doc::<SummaryDue>(DUE, &w.id)?.is_none() && report::report(tx, &summary_id(&w.id))?.is_none() {
                    tx.put_doc(DUE, &w.id, &due)?;
                }
                continue;
            }
            let Some(within) = pb.reports.event_within else { continue };
            if matches!(e.kind, EventKind::Unscheduled) && events[i + 1..].iter().any(|n| matches!(n.kind, EventKind::Scheduled { .. })) {
                withdrawn = Some(withdrawn_words(&was, pb));
                continue;
            }
            let Some((kind, level, core)) = self.decision(e, &was, w, pb) else {
                continue;
            };
            let region = self.regions.name(w.region);
            let when = local(e.at);
            let text = match withdrawn.take() {
                Some(words) => format!("{region}于{when}{words}，{core}"),
                None => format!("{region}于{when}{core}"),
            };
            let n = tx.docs::<DailyReport>(REPORTS, &format!("{}.event.", w.id), "", usize::MAX)?.len() + 1;
            // A lift's or a cancellation's figures are those of the tasks it ended.
            let ended = matches!(kind, "lift" | "cancel");
            let (counties, problems, _) = report::figures_of(tx, &w.id, self.regions, now, ended)?;
            let mut total = Figures {
                name: "合计".into(),
                ..Figures::default()
            };
            for f in &counties {
                total.add(f);
            }
            let (level_name, response) = level_words(pb, &level);
            let r = DailyReport {
                id: format!("{}.event.{n:02}", w.id),
                kind: kind.into(),
                warning_id: w.id.clone(),
                region: w.region,
                region_name: region,
                level,
                level_name,
                response,
                issuer: pb.issuer.name.clone(),
                date: now.with_timezone(&chrono_tz::Asia::Shanghai).date_naive(),
                as_of: now,
                start: w.start,
                counties,
                total,
                problems,
                to: pb.reports.to.clone(),
                message: None,
                exercise: w.exercise,
                decided_at: Some(e.at.min(now)),
                deadline: Some(now + within),
                text,
                sections: Vec::new(),
            };
            keep_and_send(tx, r, &self.public_url, now)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The summary (总结评估)
// ---------------------------------------------------------------------------------------------

fn num(x: Option<f64>) -> String {
    x.map_or_else(|| "—".into(), |v| format!("{v}"))
}

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "—".into(), |v| format!("{:.1}%", v * 100.0))
}

fn tons(x: f64) -> String {
    format!("{x:.3}")
}

/// The summary's report from the episode's [`Summary`].
pub fn summary_report(s: &Summary, w: &Warning, set: &PlaybookSet, regions: &Regions, now: DateTime<Utc>) -> DailyReport {
    let pb = set.for_region(w.region, regions);
    let region = regions.name(w.region);
    let names: Vec<String> = s.levels.iter().map(|p| p.level_name.clone()).collect();
    let ended = w.ended_at.map(local).unwrap_or_else(|| "—".into());
    let how = match w.status {
        Status::Cancelled => "取消",
        _ => "解除",
    };
    let ack = &s.acknowledgements;
    let total = &ack["total"];
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    let text = format!(
        "{region}重污染天气预警（编号{}）于{}发布，自{}起执行，于{ended}{how}。预警期间先后执行{}。共向{}家次企业和部门下达应急任务，{}家次确认收到（收到率{}），{}家次确认措施落实（落实率{}）；开展监督帮扶检查任务{}个，发现问题{}个。",
        w.id,
        w.issued_at.map(local).unwrap_or_else(|| "—".into()),
        local(w.start),
        if names.is_empty() { "—".to_string() } else { names.join("、") },
        n(&total["assigned"]),
        n(&total["received"]),
        pct(total["received_rate"].as_f64()),
        n(&total["in_place"]),
        pct(total["in_place_rate"].as_f64()),
        s.inspections.total,
        s.inspections.non_compliant,
    );
    let mut sections = Vec::new();
    sections.push(Section {
        heading: "一、预警过程".into(),
        paragraphs: Vec::new(),
        columns: ["预警级别", "起始时间", "结束时间", "持续时长（小时）"].map(String::from).to_vec(),
        rows: s
            .levels
            .iter()
            .map(|p| {
                vec![
                    p.level_name.clone(),
                    local(p.from),
                    p.to.map_or_else(|| "—".into(), local),
                    format!("{:.1}", p.hours),
                ]
            })
            .collect(),
    });
    let level_name = |id: &str| pb.and_then(|p| p.level(id)).map_or_else(|| id.to_string(), |l| l.name.clone());
    sections.push(Section {
        heading: "二、任务下达".into(),
        paragraphs: Vec::new(),
        columns: ["预警级别", "企业", "部门", "协商减排", "其中已被替代"].map(String::from).to_vec(),
        rows: s
            .assignments
            .iter()
            .map(|(l, a)| {
                vec![
                    level_name(l),
                    a.enterprises.to_string(),
                    a.departments.to_string(),
                    a.negotiated.to_string(),
                    a.superseded.to_string(),
                ]
            })
            .collect(),
    });
    let ack_row = |name: String, a: &serde_json::Value| {
        vec![
            name,
            n(&a["assigned"]).to_string(),
            n(&a["received"]).to_string(),
            n(&a["on_time"]).to_string(),
            pct(a["received_rate"].as_f64()),
            n(&a["in_place"]).to_string(),
            pct(a["in_place_rate"].as_f64()),
            num(a["received_minutes_median"].as_f64()),
            num(a["received_minutes_p90"].as_f64()),
            num(a["in_place_minutes_median"].as_f64()),
        ]
    };
    let mut rows: Vec<Vec<String>> = ack["by_region"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(code, a)| ack_row(a["name"].as_str().unwrap_or(code).to_string(), a))
        .collect();
    rows.push(ack_row("合计".into(), total));
    sections.push(Section {
        heading: "三、确认情况（按地区）".into(),
        paragraphs: vec!["用时为自通知下达起的分钟数（中位数与第90百分位数）；含已被替代的任务。".into()],
        columns: [
            "地区",
            "下达",
            "确认收到",
            "按时收到",
            "收到率",
            "措施落实",
            "落实率",
            "收到用时中位数",
            "收到用时P90",
            "落实用时中位数",
        ]
        .map(String::from)
        .to_vec(),
        rows,
    });
    let i = &s.inspections;
    let reason = |r: &str| match r {
        "overdue" => "逾期未确认",
        "requested" => "派发",
        "recheck" => "复查",
        _ => "其他",
    };
    let by_reason: Vec<String> = i.by_reason.iter().map(|(r, c)| format!("{}{c}个", reason(r))).collect();
    sections.push(Section {
        heading: "四、监督帮扶".into(),
        paragraphs: vec![format!(
            "检查任务{}个（{}），已检查{}个，其中措施落实{}个、发现问题{}个；未检查{}个。",
            i.total,
            if by_reason.is_empty() {
                "无".to_string()
            } else {
                by_reason.join("，")
            },
            i.compliant + i.non_compliant,
            i.compliant,
            i.non_compliant,
            i.total.saturating_sub(i.compliant + i.non_compliant),
        )],
        columns: Vec::new(),
        rows: Vec::new(),
    });
    let mut rows = Vec::new();
    let mut paragraphs = Vec::new();
    for c in &s.reductions {
        paragraphs.push(format!("{}：测算依据 {}。", c.level_name, c.basis));
        for sp in Species::ALL {
            let met = match &c.target {
                None => "未知".to_string(),
                Some(_) if c.short.contains(&sp) => "未达到".into(),
                Some(_) => "达到".into(),
            };
            rows.push(vec![
                c.level_name.clone(),
                sp.label().to_string(),
                tons(c.expected[sp]),
                tons(c.negotiated[sp]),
                tons(c.total[sp]),
                format!("{}%", c.target_percent[sp]),
                c.target.as_ref().map_or_else(|| "—".into(), |t| tons(t[sp])),
                met,
            ]);
        }
    }
    sections.push(Section {
        heading: "五、减排效果（预计减排量与目标，吨/日）".into(),
        paragraphs,
        columns: [
            "预警级别",
            "污染物",
            "清单措施减排",
            "协商减排",
            "合计",
            "目标比例",
            "目标减排量",
            "是否达到",
        ]
        .map(String::from)
        .to_vec(),
        rows,
    });
    DailyReport {
        id: summary_id(&w.id),
        kind: "summary".into(),
        warning_id: w.id.clone(),
        region: w.region,
        region_name: region,
        level: w.level.id.to_string(),
        level_name: level_name(&w.level),
        response: pb.and_then(|p| p.level(&w.level)).map(|l| l.response.clone()).unwrap_or_default(),
        issuer: crate::domain::playbook::issuer_of(set, w.region, regions).name,
        date: now.with_timezone(&chrono_tz::Asia::Shanghai).date_naive(),
        as_of: now,
        start: w.start,
        counties: Vec::new(),
        total: Figures {
            name: "合计".into(),
            ..Figures::default()
        },
        problems: Vec::new(),
        to: pb.and_then(|p| p.reports.to.clone()),
        message: None,
        exercise: w.exercise,
        decided_at: w.ended_at,
        deadline: None,
        text,
        sections,
    }
}

/// What the summaries need besides the engine.
#[derive(Clone)]
pub struct SummaryInputs {
    /// Measures (expected reductions).
    pub defaults: Arc<Defaults>,
    /// The list seed folder (whole-society emissions).
    pub list_seed: Option<PathBuf>,
}

/// Makes the summaries due; returns how many were made.
pub async fn run_summaries(
    store: &Store,
    set: &Arc<PlaybookSet>,
    regions: &'static Regions,
    inputs: &SummaryInputs,
    public_url: &str,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let due: Vec<SummaryDue> = store.read(|r| Ok(r.docs::<SummaryDue>(DUE, "", "", 100)?.into_iter().map(|(_, d)| d).collect()))?;
    if due.is_empty() {
        return Ok(0);
    }
    let society = episode::load_society(inputs.list_seed.as_deref());
    let mut made = 0;
    for d in due {
        // The summary's job: its warning; what is logged while it is made carries it.
        let span = tracing::info_span!("job", kind = "summary", warning = %d.warning_id);
        let built = span.in_scope(|| {
            store.read(|r| {
                let Some(w) = r.warning(&d.warning_id)? else { return Ok(None) };
                let Some(s) = episode::build(r, &d.warning_id, &inputs.defaults, regions, &society, now)? else {
                    return Ok(None);
                };
                Ok(Some(summary_report(&s, &w, set, regions, now)))
            })
        })?;
        let report = built.as_ref().map(|r| r.id.clone());
        let url = public_url.to_string();
        let id = d.warning_id.clone();
        let done = store
            .write(move |tx| {
                if tx.doc::<SummaryDue>(DUE, &id)?.is_none() {
                    return Ok(false);
                }
                tx.remove_doc(DUE, &id)?;
                let Some(r) = built else { return Ok(false) };
                if report::report(tx, &r.id)?.is_some() {
                    return Ok(false);
                }
                keep_and_send(tx, r, &url, now)?;
                Ok(true)
            })
            .instrument(span.clone())
            .await?;
        if done {
            span.in_scope(|| tracing::info!(report = report.as_deref(), "after-episode summary made"));
        }
        made += usize::from(done);
    }
    Ok(made)
}
