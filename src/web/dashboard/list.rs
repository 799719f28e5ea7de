//! The emergency reduction list (应急减排清单) for duty staff: enterprises filtered by region,
//! industry, grade and name; an enterprise's page with its measures per level (一厂一策, or the
//! industry default for its grade) and its assignments; the coverage and reduction reports.
//!
//! In: GET requests with query filters (no state changes, so no CSRF). Out: pages. Reads the stored
//! list ([`crate::engine::list`]), the measure defaults ([`crate::registry::Defaults`]), the assignments
//! ([`crate::engine::assign`]) and, for the reports, the permit register and whole-society emissions in the
//! list seed folder (`permits.csv`, `whole_society_emissions.csv`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Dashboard;
use super::auth::Session;
use super::pages::{Page, error_page};
use super::views::{self, local_time, path_segment};
use crate::domain::region::{RegionCode, Tier};
use crate::engine::assign::AssignmentStatus;
use crate::registry::{Enterprise, Grade, ListVersion, MeasureSource, Species};
use crate::web::AppState;

/// Rows per page of the list.
const PAGE: usize = 50;

/// The list's filters, as the form sends them.
#[derive(Deserialize, Default, Serialize)]
#[serde(default)]
pub(super) struct ListQuery {
    region: String,
    industry: String,
    grade: String,
    q: String,
    page: usize,
}

/// An option of a filter.
#[derive(Serialize)]
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

/// An enterprise as a row.
#[derive(Serialize)]
struct EnterpriseRow {
    href: String,
    name: String,
    uscc: String,
    county: String,
    industry: String,
    grade: String,
    baseline: String,
}

fn enterprise_href(uscc: &str) -> String {
    format!("/list/{}", path_segment(uscc))
}

fn industry_name(app: &AppState, e: &Enterprise) -> String {
    match &e.industry.key {
        Some(k) => app
            .defaults
            .industries
            .iter()
            .find(|i| &i.id == k)
            .map_or_else(|| k.clone(), |i| i.name.clone()),
        None => format!("其他涉气行业（{}）", e.industry.code),
    }
}

fn tonnes(e: &Enterprise) -> String {
    e.baseline
        .iter()
        .map(|(p, x)| format!("{} {}", p.label(), number(x)))
        .collect::<Vec<_>>()
        .join("，")
}

fn number(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn store_failed(dash: &Dashboard, app: &AppState, session: &Session, e: impl std::fmt::Display) -> Response {
    error_page(
        dash,
        app,
        Some(session),
        StatusCode::SERVICE_UNAVAILABLE,
        "暂时无法读取名录",
        &format!("存储出错：{e}"),
    )
}

/// `GET /list`: the enterprises, filtered, 50 a page.
pub(super) async fn list(
    State(app): State<Arc<AppState>>,
    Extension(dash): Extension<Arc<Dashboard>>,
    session: Session,
    Query(q): Query<ListQuery>,
) -> Response {
    let regions = app.engine.regions;
    let region = RegionCode::parse(q.region.trim()).ok().filter(|r| regions.contains(*r));
    let prefix = region.map(crate::engine::list::region_prefix).unwrap_or_default();
    let read = app.engine.store.read(|r| {
        Ok((
            crate::engine::list::current_version(r)?,
            r.docs::<Enterprise>(crate::engine::list::ENTERPRISES, &prefix, "", usize::MAX)?,
        ))
    });
    let (version, all) = match read {
        Ok(d) => d,
        Err(e) => return store_failed(&dash, &app, &session, e),
    };
    let grade = Grade::parse(q.grade.trim()).ok();
    let needle = q.q.trim().to_lowercase();
    let matches: Vec<&Enterprise> = all
        .iter()
        .map(|(_, e)| e)
        .filter(|e| match q.industry.as_str() {
            "" => true,
            "other" => e.industry.key.is_none(),
            k => e.industry.key.as_deref() == Some(k),
        })
        .filter(|e| grade.is_none_or(|g| e.grade.grade == g))
        .filter(|e| needle.is_empty() || e.name.to_lowercase().contains(&needle) || e.uscc.as_str().to_lowercase().contains(&needle))
        .collect();
    let pages = matches.len().div_ceil(PAGE).max(1);
    let page = q.page.clamp(1, pages);
    let rows: Vec<EnterpriseRow> = matches
        .iter()
        .skip((page - 1) * PAGE)
        .take(PAGE)
        .map(|e| EnterpriseRow {
            href: enterprise_href(e.uscc.as_str()),
            name: e.name.clone(),
            uscc: e.uscc.as_str().to_string(),
            county: regions.name(e.county),
            industry: industry_name(&app, e),
            grade: e.grade.grade.name_zh().to_string(),
            baseline: tonnes(e),
        })
        .collect();

    let mut region_choices = vec![Choice {
        value: String::new(),
        label: "全部地区".into(),
        selected: region.is_none(),
    }];
    for r in regions.all().filter(|r| r.tier != Tier::Province) {
        let label = if r.tier == Tier::County {
            format!("　{}", r.name)
        } else {
            r.name.clone()
        };
        region_choices.push(Choice {
            value: r.code.to_string(),
            label,
            selected: region == Some(r.code),
        });
    }
    let mut industry_choices = vec![Choice {
        value: String::new(),
        label: "全部行业".into(),
        selected: q.industry.is_empty(),
    }];
    for i in &app.defaults.industries {
        industry_choices.push(Choice {
            value: i.id.clone(),
            label: i.name.clone(),
            selected: q.industry == i.id,
        });
    }
    industry_choices.push(Choice {
        value: "other".into(),
        label: "其他涉气行业".into(),
        selected: q.industry == "other",
    });
    let mut grade_choices = vec![Choice {
        value: String::new(),
        label: "全部分级".into(),
        selected: grade.is_none(),
    }];
    for g in Grade::ALL {
        grade_choices.push(Choice {
            value: g.id().into(),
            label: g.name_zh().into(),
            selected: grade == Some(g),
        });
    }
    let link = |p: usize| {
        let mut parts = vec![format!("page={p}")];
        for (k, v) in [("region", &q.region), ("industry", &q.industry), ("grade", &q.grade), ("q", &q.q)] {
            if !v.is_empty() {
                parts.push(format!("{k}={}", path_segment(v)));
            }
        }
        format!("/list?{}", parts.join("&"))
    };
    let ctx = json!({
        "version": version.map(|v| json!({ "version": v.version, "recorded_at": local_time(v.recorded_at), "digest": v.digest })),
        "rows": rows,
        "count": matches.len(),
        "total": all.len(),
        "page": page,
        "pages": pages,
        "prev": (page > 1).then(|| link(page - 1)),
        "next": (page < pages).then(|| link(page + 1)),
        "regions": region_choices,
        "industries": industry_choices,
        "grades": grade_choices,
        "q": q.q,
    });
    Page::new(&dash, &app, Some(&session)).render("list.html", "list", "名录", ctx, StatusCode::OK)
}

/// `GET /list/{uscc}`: one enterprise, its measures per level and its assignments.
pub(super) async fn enterprise(
    State(app): State<Arc<AppState>>,
    Extension(dash): Extension<Arc<Dashboard>>,
    session: Session,
    Path(uscc): Path<String>,
) -> Response {
    let read = app.engine.store.read(|r| {
        Ok((
            crate::engine::list::enterprise(r, &uscc)?,
            crate::engine::assign::of_party(r, &format!("e:{uscc}"))?,
        ))
    });
    let (e, history) = match read {
        Ok(d) => d,
        Err(e) => return store_failed(&dash, &app, &session, e),
    };
    let Some(e) = e else {
        return error_page(
            &dash,
            &app,
            Some(&session),
            StatusCode::NOT_FOUND,
            "名录中没有该企业",
            &format!("统一社会信用代码 {uscc} 不在当前名录中。"),
        );
    };
    let regions = app.engine.regions;
    let mut page = Page::new(&dash, &app, Some(&session));
    let set = app.engine.playbooks.live();
    let pb = set.for_region(e.county, regions).cloned();
    let levels: Vec<_> = app
        .defaults
        .levels
        .iter()
        .map(|l| {
            let measures: Vec<_> = app
                .defaults
                .measures_for(&e, &l.id)
                .into_iter()
                .map(|m| {
                    let source = match &m.source {
                        MeasureSource::Own => "一厂一策".to_string(),
                        MeasureSource::Exemption => "保障类限负荷".to_string(),
                        MeasureSource::IndustryDefault { industry, grade } => {
                            let name = app
                                .defaults
                                .industries
                                .iter()
                                .find(|i| &i.id == industry)
                                .map_or(industry.as_str(), |i| i.name.as_str());
                            format!("{name}{}默认措施", grade.name_zh())
                        }
                        _ => format!("{}默认措施", e.grade.grade.name_zh()),
                    };
                    json!({
                        // The line, process or 全厂, and the whole line, worded as on the board and in notices.
                        "line": m.subject(),
                        "item": m.item(),
                        "process": m.process,
                        "text": m.text_zh,
                        "note": m.note,
                        "source": source,
                        "expected": m.expected.iter().map(|(p, x)| format!("{} {}", p.label(), number(x))).collect::<Vec<_>>().join("，"),
                    })
                })
                .collect();
            json!({ "name": l.name, "class": views::level_class(pb.as_deref(), &l.id, &mut page.palette), "measures": measures })
        })
        .collect();
    let assignments: Vec<_> = history
        .iter()
        .rev()
        .map(|a| {
            let status = match &a.status {
                AssignmentStatus::Active => "执行中".to_string(),
                AssignmentStatus::Superseded { at, .. } => format!("{} 被新级别替代", local_time(*at)),
                AssignmentStatus::Ended { at, cancelled: true } => format!("{} 取消", local_time(*at)),
                AssignmentStatus::Ended { at, .. } => format!("{} 结束", local_time(*at)),
            };
            let acks: Vec<String> = a
                .acks
                .iter()
                .map(|k| {
                    // The note the enterprise gave is shown back here and on its own page.
                    let note = if k.note.is_empty() {
                        String::new()
                    } else {
                        format!("，备注：{}", k.note)
                    };
                    format!("{} {}（{}）{note}", local_time(k.at), k.step.done_zh(), k.name)
                })
                .collect();
            json!({
                "warning": a.warning_id,
                "exercise": a.exercise,
                "href": views::warning_href(&a.warning_id),
                "level": views::level_name(pb.as_deref(), &a.level),
                "class": views::level_class(pb.as_deref(), &a.level, &mut page.palette),
                "from": local_time(a.applies_from),
                "deadline": local_time(a.ack_deadline),
                "in_place_deadline": local_time(a.in_place_by()),
                "status": status,
                "acks": if acks.is_empty() { "未确认".to_string() } else { acks.join("；") },
            })
        })
        .collect();
    let grades: Vec<String> = e
        .grade_history
        .iter()
        .chain(std::iter::once(&e.grade))
        .map(|g| {
            format!(
                "{}{}{}",
                g.grade.name_zh(),
                g.since.map_or_else(String::new, |d| format!("（{d} 起）")),
                if g.reason.is_empty() {
                    String::new()
                } else {
                    format!("：{}", g.reason)
                }
            )
        })
        .collect();
    let ctx = json!({
        "e": {
            "name": e.name,
            "uscc": e.uscc.as_str(),
            "permit": e.permit.map(|p| p.to_string()),
            "county": format!("{}（{}）", regions.name(e.county), e.county),
            "industry": industry_name(&app, &e),
            "industry_code": e.industry.code.to_string(),
            "grade": e.grade.grade.name_zh(),
            "exemption": e.exemption.as_ref().map(|x| format!("{}，最高负荷 {}%", x.kind.name_zh(), number(x.max_load_percent))),
            "baseline": tonnes(&e),
        },
        "grades": grades,
        "lines": e.lines.iter().map(|l| json!({ "id": l.id, "name": l.name, "capacity": format!("{} {}", number(l.capacity), l.unit) })).collect::<Vec<_>>(),
        "contacts": e.contacts.iter().map(|c| json!({
            "role": c.role, "name": c.name, "phone": c.phone.as_str(), "email": c.email.as_ref().map(|m| m.as_str().to_string()), "line": c.line,
        })).collect::<Vec<_>>(),
        "levels": levels,
        "assignments": assignments,
    });
    page.render("enterprise.html", "list", &e.name, ctx, StatusCode::OK)
}

/// `GET /list/reports`: coverage against the permit register, expected reductions against targets.
pub(super) async fn reports(State(app): State<Arc<AppState>>, Extension(dash): Extension<Arc<Dashboard>>, session: Session) -> Response {
    let read = app
        .engine
        .store
        .read(|r| Ok((crate::engine::list::current_version(r)?, crate::engine::list::all_enterprises(r)?)));
    let (version, enterprises) = match read {
        Ok(d) => d,
        Err(e) => return store_failed(&dash, &app, &session, e),
    };
    let regions = app.engine.regions;
    let Some(v) = version else {
        let ctx = json!({ "version": null, "coverage": null, "reductions": null, "notes": ["尚未导入名录。"] });
        return Page::new(&dash, &app, Some(&session)).render("reports.html", "list", "名录报表", ctx, StatusCode::OK);
    };
    let list = ListVersion {
        version: v.version,
        created_at: v.recorded_at,
        enterprises,
        digest: v.digest.clone(),
    };
    let dir = app.settings.list_seed.clone();
    let mut notes = Vec::new();
    let read_file = |name: &str| -> Option<(String, String)> {
        let path = dir.as_ref()?.join(name);
        std::fs::read_to_string(&path).ok().map(|t| (path.display().to_string(), t))
    };
    let coverage = match read_file("permits.csv") {
        None => {
            notes.push("未找到排污许可登记（名录目录下的 permits.csv），无法核对覆盖率。".to_string());
            None
        }
        Some((file, text)) => match crate::registry::reports::parse_permits(&file, &text) {
            Err(errors) => {
                notes.push(format!(
                    "排污许可登记有误：{}",
                    errors
                        .iter()
                        .map(|e| crate::domain::playbook::zh::line(&e.to_string()))
                        .collect::<Vec<_>>()
                        .join("；")
                ));
                None
            }
            Ok(permits) => {
                let c = crate::registry::reports::coverage(&list, &permits, Some(regions));
                Some(json!({
                    "file": file,
                    "permits": c.permits,
                    "holders": c.air_emitting_holders,
                    "covered": c.covered,
                    "percent": number(c.coverage() * 100.0),
                    "missing_count": c.missing.len(),
                    "missing": c.missing.iter().take(50).map(|m| json!({
                        "name": m.name, "uscc": m.uscc.as_str(), "county": regions.name(m.county), "industry": m.industry_code.to_string(),
                    })).collect::<Vec<_>>(),
                    "mismatches": c.mismatches.len(),
                    "without_permit": c.without_permit.len(),
                }))
            }
        },
    };
    let reductions = match read_file("whole_society_emissions.csv") {
        None => {
            notes.push("未找到全社会排放量（名录目录下的 whole_society_emissions.csv），无法核算减排目标。".to_string());
            None
        }
        Some((file, text)) => match crate::registry::reports::parse_society(&file, &text) {
            Err(errors) => {
                notes.push(format!(
                    "全社会排放量有误：{}",
                    errors
                        .iter()
                        .map(|e| crate::domain::playbook::zh::line(&e.to_string()))
                        .collect::<Vec<_>>()
                        .join("；")
                ));
                None
            }
            Ok(society) => {
                let report = crate::registry::reports::reductions(&list, &app.defaults, &society, None, None, regions);
                let level_names: BTreeMap<&str, &str> = app.defaults.levels.iter().map(|l| (l.id.as_str(), l.name.as_str())).collect();
                let rows: Vec<_> = report
                    .rows
                    .iter()
                    .map(|r| {
                        json!({
                            "region": r.region_name,
                            "level": level_names.get(r.level.as_str()).copied().unwrap_or(r.level.as_str()),
                            "enterprises": r.enterprises,
                            "cells": Species::ALL.iter().map(|p| json!({
                                "expected": number(r.expected[*p]),
                                "target": number(r.target[*p]),
                                "short": r.short.contains(p),
                            })).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                Some(json!({
                    "file": file,
                    "rows": rows,
                    "short": report.short.len(),
                    "pollutants": Species::ALL.iter().map(|p| p.label()).collect::<Vec<_>>(),
                    "without_society": report.without_society.iter().map(|r| regions.name(*r)).collect::<Vec<_>>(),
                }))
            }
        },
    };
    let ctx = json!({
        "version": { "version": v.version, "recorded_at": local_time(v.recorded_at), "count": list.enterprises.len() },
        "coverage": coverage,
        "reductions": reductions,
        "notes": notes,
    });
    Page::new(&dash, &app, Some(&session)).render("reports.html", "list", "名录报表", ctx, StatusCode::OK)
}
