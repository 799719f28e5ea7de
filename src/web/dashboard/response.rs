//! The response side of a warning, for its page: acknowledgement progress per region (assigned /
//! received / in place / overdue), who is missing with their contacts, the inspections (监督帮扶), and
//! the after-episode summary (总结评估).
//!
//! In: the warning id and the application state. Out: plain rows for `warning.html`. The figures come
//! from the modules that own them ([`crate::engine::ack::progress_of`], [`crate::engine::episode::build`]); this file
//! only turns them into Chinese rows, so that the templates never depend on those modules' types. A
//! failure to read them is shown on the page instead of failing it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::views::local_time;
use crate::domain::region::RegionCode;
use crate::registry::Species;
use crate::web::AppState;

/// How many missing parties the page lists (the JSON API lists more).
const MISSING_SHOWN: usize = 200;

/// Acknowledgement figures of one region (or the total).
#[derive(Debug, Default, Clone, Serialize)]
pub struct ProgressRow {
    /// Region name (`合计` for the total).
    pub name: String,
    /// Current assignments.
    pub assigned: usize,
    /// Received.
    pub received: usize,
    /// Measures in place.
    pub in_place: usize,
    /// Past the deadline without a "received".
    pub overdue: usize,
    /// Departments without a contact (无联系人): told nothing, not counted overdue.
    pub no_contact: usize,
    /// Received, but not in place past the measures' start (措施落实逾期).
    pub in_place_overdue: usize,
    /// received / assigned, whole percent.
    pub received_pct: u32,
    /// in_place / assigned, whole percent.
    pub in_place_pct: u32,
}

impl ProgressRow {
    fn finish(mut self) -> ProgressRow {
        let pct = |n: usize| (n * 100).checked_div(self.assigned).map_or(0, |p| p as u32);
        self.received_pct = pct(self.received);
        self.in_place_pct = pct(self.in_place);
        self
    }
}

/// A party that has not acknowledged.
#[derive(Debug, Clone, Serialize)]
pub struct MissingRow {
    /// `企业` or `部门`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its region.
    pub region: String,
    /// The person responsible.
    pub contact: String,
    /// Their phone.
    pub phone: String,
    /// Their email.
    pub email: String,
    /// Acknowledge by.
    pub deadline: String,
    /// 措施已落实 by.
    pub in_place_deadline: String,
    /// Past it.
    pub overdue: bool,
    /// A department without a contact on the roster (无联系人).
    pub no_contact: bool,
}

/// An inspection task.
#[derive(Debug, Clone, Serialize)]
pub struct InspectionRow {
    /// The enterprise.
    pub enterprise: String,
    /// Its county.
    pub county: String,
    /// Its county's code (the filter's value).
    pub county_code: String,
    /// `open`, `done`, `not_needed` (the filter's value).
    pub state: String,
    /// Why, in Chinese.
    pub reason: String,
    /// Opened when.
    pub opened_at: String,
    /// `待检查`, `已落实`, `未落实`.
    pub outcome: String,
    /// Whether it found non-compliance.
    pub non_compliant: bool,
    /// What the inspector wrote.
    pub note: String,
}

/// A level held during the episode.
#[derive(Debug, Clone, Serialize)]
pub struct LevelRow {
    /// Level name.
    pub name: String,
    /// From.
    pub from: String,
    /// To (`至今` while it holds).
    pub to: String,
    /// Hours, one decimal.
    pub hours: String,
    /// Enterprises, departments and negotiated reductions given tasks at this level.
    pub tasks: String,
}

/// One pollutant's expected reduction against its target.
#[derive(Debug, Clone, Serialize)]
pub struct ReductionRow {
    /// Level name.
    pub level: String,
    /// Species (Chinese and label).
    pub pollutant: String,
    /// Expected, t/day.
    pub expected: String,
    /// Target, t/day (`未知` without emissions data).
    pub target: String,
    /// Whether it falls short.
    pub short: bool,
}

/// The after-episode summary, as far as it goes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SummaryView {
    /// Levels held.
    pub levels: Vec<LevelRow>,
    /// Acknowledgements over every assignment made (superseded ones included).
    pub acks: Vec<(String, String)>,
    /// Expected reductions against targets.
    pub reductions: Vec<ReductionRow>,
    /// Where the emissions came from, or why targets are unknown.
    pub basis: Vec<String>,
}

/// Everything the warning page shows about the response.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ResponseView {
    /// Per region.
    pub progress: Vec<ProgressRow>,
    /// All regions.
    pub total: ProgressRow,
    /// The latest round's two deadlines: 收到 by, 措施已落实 by.
    pub deadlines: Option<(String, String)>,
    /// Who has not acknowledged.
    pub missing: Vec<MissingRow>,
    /// Whether more are missing than listed.
    pub missing_more: bool,
    /// The inspections (one page of them, filtered; see [`ResponseView::with_inspections_page`]).
    pub inspections: Vec<InspectionRow>,
    /// The inspections list's filters and pages.
    pub inspections_nav: Option<Value>,
    /// The summary.
    pub summary: Option<SummaryView>,
    /// What could not be read, if anything.
    pub errors: Vec<String>,
}

fn region_name(app: &AppState, code: &str) -> String {
    RegionCode::parse(code).map_or_else(|_| code.to_string(), |c| app.engine.regions.name(c))
}

fn text(v: &Value) -> String {
    v.as_str().map_or_else(String::new, str::to_string)
}

fn missing_row(app: &AppState, v: &Value) -> MissingRow {
    let party = &v["party"];
    let department = party["type"] == "department";
    let region = if department { &party["region"] } else { &party["county"] };
    let contact = &v["who"]["contact"];
    let name = [&v["who"]["name"], &party["name"], &party["uscc"]]
        .into_iter()
        .map(text)
        .find(|s| !s.is_empty())
        .unwrap_or_default();
    MissingRow {
        kind: if department { "部门" } else { "企业" }.into(),
        name,
        region: region_name(app, &text(region)),
        contact: text(&contact["name"]),
        phone: text(&contact["phone"]),
        email: text(&contact["email"]),
        deadline: serde_json::from_value::<chrono::DateTime<chrono::Utc>>(v["deadline"].clone())
            .map(local_time)
            .unwrap_or_default(),
        in_place_deadline: serde_json::from_value::<chrono::DateTime<chrono::Utc>>(v["in_place_deadline"].clone())
            .map(local_time)
            .unwrap_or_default(),
        overdue: v["overdue"].as_bool().unwrap_or(false),
        no_contact: v["no_contact"].as_bool().unwrap_or(false),
    }
}

fn reason_zh(reason: &str) -> String {
    match reason {
        "overdue" => "逾期未确认".into(),
        "requested" => "值班人员发起".into(),
        "recheck" => "复查".into(),
        r => r.to_string(),
    }
}

fn number(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn minutes(v: &Value) -> String {
    v.as_f64().map_or_else(|| "—".into(), |m| format!("{} 分钟", number(m)))
}

fn percent(v: &Value) -> String {
    v.as_f64().map_or_else(|| "—".into(), |r| format!("{}%", number(r * 100.0)))
}

fn summary_view(s: &crate::engine::episode::Summary) -> SummaryView {
    let levels = s
        .levels
        .iter()
        .map(|p| {
            let tasks = s.assignments.get(&p.level).map_or_else(String::new, |a| {
                format!(
                    "企业 {}，部门 {}，协商减排 {}（其后被替换 {}）",
                    a.enterprises, a.departments, a.negotiated, a.superseded
                )
            });
            LevelRow {
                name: p.level_name.clone(),
                from: local_time(p.from),
                to: p.to.map_or_else(|| "至今".into(), local_time),
                hours: format!("{:.1}", p.hours),
                tasks,
            }
        })
        .collect();
    let t = &s.acknowledgements["total"];
    let count = |k: &str| t[k].as_u64().map_or_else(|| "—".into(), |n| n.to_string());
    let acks = vec![
        ("任务数".to_string(), count("assigned")),
        (
            "已收到".into(),
            format!("{}（{}）", count("received"), percent(&t["received_rate"])),
        ),
        ("按时收到".into(), count("on_time")),
        (
            "措施到位".into(),
            format!("{}（{}）", count("in_place"), percent(&t["in_place_rate"])),
        ),
        (
            "收到用时（中位 / 90%）".into(),
            format!(
                "{} / {}",
                minutes(&t["received_minutes_median"]),
                minutes(&t["received_minutes_p90"])
            ),
        ),
        (
            "到位用时（中位 / 90%）".into(),
            format!(
                "{} / {}",
                minutes(&t["in_place_minutes_median"]),
                minutes(&t["in_place_minutes_p90"])
            ),
        ),
    ];
    let mut reductions = Vec::new();
    let mut basis = Vec::new();
    for r in &s.reductions {
        for p in Species::ALL {
            reductions.push(ReductionRow {
                level: r.level_name.clone(),
                pollutant: format!("{}（{}）", p.name_zh(), p.label()),
                expected: number(r.total[p]),
                target: r.target.map_or_else(|| "未知".into(), |t| number(t[p])),
                short: r.short.contains(&p),
            });
        }
        if !r.basis.is_empty() {
            basis.push(format!("{}：{}", r.level_name, r.basis));
        }
    }
    SummaryView {
        levels,
        acks,
        reductions,
        basis,
    }
}

/// Reads the response side of a warning.
pub fn of_warning(app: &AppState, warning_id: &str) -> ResponseView {
    let now = app.engine.clock.now();
    let mut view = ResponseView::default();
    match crate::engine::ack::progress_of(&app.engine.store, &app.notify.roster(), warning_id, now, MISSING_SHOWN + 1) {
        Ok((per, missing)) => {
            let mut total = ProgressRow {
                name: "合计".into(),
                ..ProgressRow::default()
            };
            for (code, p) in &per {
                total.assigned += p.assigned;
                total.received += p.received;
                total.in_place += p.in_place;
                total.overdue += p.overdue;
                total.no_contact += p.no_contact;
                total.in_place_overdue += p.in_place_overdue;
                let row = ProgressRow {
                    name: region_name(app, code),
                    assigned: p.assigned,
                    received: p.received,
                    in_place: p.in_place,
                    overdue: p.overdue,
                    no_contact: p.no_contact,
                    in_place_overdue: p.in_place_overdue,
                    ..ProgressRow::default()
                };
                view.progress.push(row.finish());
            }
            view.total = total.finish();
            view.missing_more = missing.len() > MISSING_SHOWN;
            view.missing = missing.iter().take(MISSING_SHOWN).map(|m| missing_row(app, m)).collect();
        }
        Err(e) => view.errors.push(format!("确认进度读取失败：{e}")),
    }
    match app.engine.store.read(|r| crate::engine::assign::rounds_of(r, warning_id)) {
        Ok(rounds) => {
            view.deadlines = rounds
                .iter()
                .rev()
                .find(|r| r.track.is_empty())
                .map(|r| (local_time(r.ack_deadline), local_time(r.in_place_by())));
        }
        Err(e) => view.errors.push(format!("任务读取失败：{e}")),
    }
    let society = crate::engine::episode::load_society(app.settings.list_seed.as_deref());
    match app
        .engine
        .store
        .read(|r| crate::engine::episode::build(r, warning_id, &app.defaults, app.engine.regions, &society, now))
    {
        Ok(Some(s)) => {
            view.inspections = s
                .inspections
                .list
                .iter()
                .map(|i| {
                    let (outcome, bad, note) = match &i.result {
                        None => (i.outcome_zh(), false, i.note.clone()),
                        Some(r) => (i.outcome_zh(), !r.compliant, r.note.clone()),
                    };
                    InspectionRow {
                        enterprise: i.enterprise_name.clone(),
                        county: app.engine.regions.name(i.county),
                        county_code: i.county.to_string(),
                        state: match i.status {
                            crate::engine::inspect::InspectionStatus::Open => "open",
                            crate::engine::inspect::InspectionStatus::Done => "done",
                            crate::engine::inspect::InspectionStatus::NotNeeded => "not_needed",
                        }
                        .to_string(),
                        reason: reason_zh(&i.reason),
                        opened_at: local_time(i.opened_at),
                        outcome,
                        non_compliant: bad,
                        note,
                    }
                })
                .collect();
            view.summary = Some(summary_view(&s));
        }
        Ok(None) => {}
        Err(e) => view.errors.push(format!("过程总结读取失败：{e}")),
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short_and_rates_are_percent() {
        assert_eq!(number(1.50), "1.5");
        assert_eq!(number(2.0), "2");
        assert_eq!(number(0.126), "0.13");
        assert_eq!(percent(&serde_json::json!(0.9)), "90%");
        assert_eq!(percent(&Value::Null), "—");
        assert_eq!(minutes(&serde_json::json!(12.5)), "12.5 分钟");
    }

    #[test]
    fn the_inspections_list_filters_by_county_and_state_and_pages_by_25() {
        let row = |n: usize, county: &str, state: &str| InspectionRow {
            enterprise: format!("企业{n}"),
            county: format!("县{county}"),
            county_code: county.to_string(),
            state: state.to_string(),
            reason: "逾期未确认".into(),
            opened_at: String::new(),
            outcome: String::new(),
            non_compliant: false,
            note: String::new(),
        };
        let all: Vec<InspectionRow> = (0..60)
            .map(|n| {
                row(
                    n,
                    if n % 2 == 0 { "140105" } else { "140106" },
                    if n < 40 { "open" } else { "not_needed" },
                )
            })
            .collect();
        let view = |county: &str, state: &str, page: usize| {
            let v = ResponseView {
                inspections: all.clone(),
                ..ResponseView::default()
            };
            v.with_inspections_page(
                "140100-20261202-1",
                &InspectionQuery {
                    i_county: county.into(),
                    i_state: state.into(),
                    i_page: page,
                },
            )
        };
        let first = view("", "", 0);
        let nav = first.inspections_nav.clone().unwrap();
        assert_eq!(
            (first.inspections.len(), nav["pages"].as_u64(), nav["open"].as_u64()),
            (25, Some(3), Some(40))
        );
        assert_eq!(nav["next"], "/warnings/140100-20261202-1?i_page=2#inspections-h");
        let last = view("", "", 9);
        assert_eq!(
            (last.inspections.len(), last.inspections_nav.unwrap()["page"].as_u64()),
            (10, Some(3))
        );
        let xd_open = view("140105", "open", 1);
        assert_eq!(xd_open.inspections.len(), 20);
        assert!(xd_open.inspections.iter().all(|i| i.county_code == "140105" && i.state == "open"));
        let nav = xd_open.inspections_nav.unwrap();
        assert_eq!(
            (nav["count"].as_u64(), nav["total"].as_u64(), nav["next"].is_null()),
            (Some(20), Some(60), true)
        );
        assert_eq!(view("140106", "not_needed", 1).inspections.len(), 10);
        assert!(view("140106", "done", 1).inspections.is_empty());
    }

    #[test]
    fn progress_rounds_down_to_whole_percent() {
        let r = ProgressRow {
            assigned: 3,
            received: 2,
            in_place: 1,
            ..ProgressRow::default()
        }
        .finish();
        assert_eq!((r.received_pct, r.in_place_pct), (66, 33));
        assert_eq!(ProgressRow::default().finish().received_pct, 0);
    }
}

/// Inspection rows per page on the warning page.
const INSPECTIONS_PAGE: usize = 25;

/// The warning page's inspection filters: `i_county` (a county code), `i_state` (`open`, `done`,
/// `not_needed`), `i_page` (from 1).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct InspectionQuery {
    i_county: String,
    i_state: String,
    i_page: usize,
}

impl ResponseView {
    /// Keeps the inspections matching the filters, one page of them, and says how to get the others
    /// (`inspections_nav`: the counties and states to choose from, the count, the page, prev/next links).
    pub fn with_inspections_page(mut self, warning_id: &str, q: &InspectionQuery) -> ResponseView {
        let all = std::mem::take(&mut self.inspections);
        let mut counties: Vec<(String, String)> = all.iter().map(|i| (i.county_code.clone(), i.county.clone())).collect();
        counties.sort();
        counties.dedup();
        let matching: Vec<InspectionRow> = all
            .iter()
            .filter(|i| q.i_county.is_empty() || i.county_code == q.i_county)
            .filter(|i| q.i_state.is_empty() || i.state == q.i_state)
            .cloned()
            .collect();
        let pages = matching.len().div_ceil(INSPECTIONS_PAGE).max(1);
        let page = q.i_page.clamp(1, pages);
        let link = |p: usize| {
            let mut parts = vec![format!("i_page={p}")];
            for (k, v) in [("i_county", &q.i_county), ("i_state", &q.i_state)] {
                if !v.is_empty() {
                    parts.push(format!("{k}={}", super::views::path_segment(v)));
                }
            }
            format!("{}?{}#inspections-h", super::views::warning_href(warning_id), parts.join("&"))
        };
        let states = [("open", "待检查"), ("done", "已检查"), ("not_needed", "无需检查")];
        self.inspections_nav = Some(serde_json::json!({
            "total": all.len(),
            "count": matching.len(),
            "open": all.iter().filter(|i| i.state == "open").count(),
            "page": page,
            "pages": pages,
            "prev": (page > 1).then(|| link(page - 1)),
            "next": (page < pages).then(|| link(page + 1)),
            "action": super::views::warning_href(warning_id),
            "counties": counties.iter().map(|(c, n)| serde_json::json!({ "value": c, "label": n, "selected": *c == q.i_county })).collect::<Vec<_>>(),
            "states": states.iter().map(|(v, l)| serde_json::json!({ "value": v, "label": l, "selected": *v == q.i_state })).collect::<Vec<_>>(),
        }));
        self.inspections = matching
            .into_iter()
            .skip((page - 1) * INSPECTIONS_PAGE)
            .take(INSPECTIONS_PAGE)
            .collect();
        self
    }
}
