//! The consultation's record (会商意见) and the approval form (审批表) on the dashboard: the record's
//! form beside each region's proposal and forecast chart; the approval form as a printable page (print
//! CSS), with its completion and relay forms and its Word file.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::Dashboard;
use super::auth::{FlashKind, Posted, Session};
use super::chart::forecast_chart;
use super::pages::{Page, engine_error_zh, error_page, lookup, redirect_with, store_failed, trigger_zh};
use super::views::{self, local_time};
use crate::domain::approval::{ApprovalForm, FormStage, duration_zh};
use crate::domain::opinion::{ConclusionInput, Decision, OpinionInput, Proposal, Unit};
use crate::engine::approval::{self, Completion};
use crate::engine::opinion;
use crate::web::AppState;
use crate::web::consult::{form_json, title};

type Shared = State<Arc<AppState>>;
type Dash = Extension<Arc<Dashboard>>;

/// A refusal of the record or a form as duty staff read it: each part (`field: message`, joined by
/// `; `) in Chinese where its message is known; the API and the logs keep the English.
fn refusal_zh(e: &crate::engine::EngineError) -> String {
    use crate::engine::EngineError;
    let (kind, m) = match e {
        EngineError::BadInput(m) => ("输入有误", m),
        EngineError::Conflict(m) => ("当前状态不允许此操作", m),
        other => return engine_error_zh(other),
    };
    let field = |f: &str| -> String {
        let (head, rest) = f.split_once('.').unwrap_or((f, ""));
        let n = head
            .strip_prefix("conclusions[")
            .and_then(|x| x.strip_suffix(']'))
            .and_then(|x| x.parse::<usize>().ok());
        let name = match rest {
            "reason" => "理由",
            "level" => "预警等级",
            "from" => "起始时间",
            "until" => "结束时间",
            "decision" => "会商结论",
            "region" => "地区",
            _ => "",
        };
        match (n, head) {
            (Some(n), _) => format!("第{}个地区的{}", n + 1, if name.is_empty() { "结论" } else { name }),
            (None, "units") => "参加单位及人员".into(),
            (None, "weather") => "不利气象条件".into(),
            (None, "trend") => "趋势分析".into(),
            (None, "primary_pollutant") => "首要污染物".into(),
            (None, "measures") => "应急措施".into(),
            _ => f.to_string(),
        }
    };
    let part = |p: &str| -> String {
        let table: [(&str, &str); 12] = [
            ("a change needs a reason", "调整系统建议须说明理由"),
            ("a rejection needs a reason", "否决系统建议须说明理由"),
            ("a change names the level concluded", "调整须选择预警等级"),
            ("undefined level", "预案中没有该预警等级"),
            ("a change gives the period", "调整须填写起止时间"),
            ("is not a time", "时间格式有误"),
            ("must be after from", "须晚于起始时间"),
            ("the level and period are the proposal's", "等级和时段与系统建议相同，请选择“同意”"),
            ("required", "必填"),
            ("name at least one", "至少填写一个参加单位"),
            ("has its record already", "该次会商已记录会商意见"),
            ("nothing awaits sign-off", "该预警已签发，不能再调整或否决建议，请改用调整或解除"),
        ];
        let (f, msg) = p.split_once(": ").unwrap_or(("", p));
        let zh = table.iter().find(|(en, _)| msg.contains(en)).map(|(_, zh)| *zh);
        match (zh, f.is_empty()) {
            (Some(z), true) => z.to_string(),
            (Some(z), false) => format!("{}：{z}", field(f)),
            (None, _) => p.to_string(),
        }
    };
    let parts: Vec<String> = m
        .split("; ")
        .map(|p| {
            // `conclusions[0] (region 140100): …` from the engine's conflicts.
            let p = p
                .split_once(" (region ")
                .map_or(p.to_string(), |(a, b)| format!("{a}{}", b.split_once(')').map_or("", |x| x.1)));
            part(&p)
        })
        .collect();
    format!("{kind}：{}", parts.join("；"))
}

fn period(p: &Proposal) -> String {
    match (p.from, p.until) {
        (Some(a), Some(b)) => format!("{} 至 {}", local_time(a), local_time(b)),
        _ => "—".into(),
    }
}

/// `2026-12-02T00:00`, as a `datetime-local` input holds a time.
fn input_time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.with_timezone(&chrono_tz::Asia::Shanghai).format("%Y-%m-%dT%H:%M").to_string())
        .unwrap_or_default()
}

/// `GET /consultations/{seq}`: the consultation, each region's proposal with its chart, and its
/// record: the form while none is recorded, the record once it is.
pub(super) async fn opinion_page(State(app): Shared, Extension(dash): Dash, session: Session, Path(seq): Path<u64>) -> Response {
    let read = app.engine.store.read(|r| {
        let c = r.consultation(seq)?;
        let waived = match &c {
            Some(c) => approval::waived(r, c)?,
            None => Vec::new(),
        };
        Ok((c, opinion::opinion(r, seq)?, waived))
    });
    let (c, o, waived) = match read {
        Ok(d) => d,
        Err(e) => return store_failed(&dash, &app, &session, e),
    };
    let Some(c) = c else {
        return error_page(
            &dash,
            &app,
            Some(&session),
            StatusCode::NOT_FOUND,
            "未找到会商",
            &format!("没有编号为 {seq} 的会商。"),
        );
    };
    let look = lookup(&app);
    let mut page = Page::new(&dash, &app, Some(&session));
    let mut regions: Vec<(u32, Value)> = Vec::new();
    for a in &c.assessments {
        let pb = look.for_pin(&a.playbook, a.region);
        let pb = pb.as_deref();
        let class = views::level_class(pb, a.level_or_none(), &mut page.palette);
        let chart = forecast_chart(&a.window, &a.days, &class, pb, &mut page.palette);
        let p = Proposal::of(a);
        let levels: Vec<Value> = pb
            .map(|pb| pb.levels.iter().map(|l| json!({ "id": l.id, "name": l.name })).collect())
            .unwrap_or_default();
        let concluded = o.as_ref().and_then(|o| o.conclusions.iter().find(|k| k.region == a.region)).map(|k| {
            json!({
                "decision": k.decision.zh(), "changed": k.decision != Decision::Accept,
                "level_name": views::level_name(pb, &k.level),
                "period": match (k.from, k.until) { (Some(f), Some(u)) => format!("{} 至 {}", local_time(f), local_time(u)), _ => "—".into() },
                "reason": k.reason,
            })
        });
        regions.push((
            a.rank,
            json!({
                "region": a.region, "region_name": look.regions.name(a.region),
                "level": p.level, "level_name": views::level_name(pb, &p.level), "class": class,
                "period": period(&p), "from": input_time(p.from), "until": input_time(p.until),
                "rule": a.rule.as_deref().map(views::rule_zh), "chart": chart, "levels": levels,
                "proposed": a.rank > 0, "concluded": concluded,
            }),
        ));
    }
    regions.sort_by(|a, b| b.0.cmp(&a.0).then(a.1["region"].as_str().cmp(&b.1["region"].as_str())));
    let record = o.as_ref().map(|o| {
        json!({
            "units": o.units.iter().map(|u| if u.people.is_empty() { u.name.clone() } else { format!("{}（{}）", u.name, u.people.join("、")) }).collect::<Vec<_>>(),
            "weather": o.weather, "trend": o.trend, "primary_pollutant": o.primary_pollutant,
            "recorded_by": o.recorded_by, "recorded_at": local_time(o.recorded_at),
        })
    });
    // Proposals of this consultation signed before its record, each with the signer's reason.
    let waived: Vec<Value> = waived
        .iter()
        .map(|f| {
            json!({
                "region_name": look.regions.name(f.region), "level_name": f.level_name,
                "warning_id": f.warning_id, "warning_href": views::warning_href(&f.warning_id),
                "form_href": format!("/approvals/{}", f.id), "form_id": f.id,
                "signer": f.signer, "signed_at": f.signed_at.map(local_time),
                "reason": f.without_record,
            })
        })
        .collect();
    let ctx = json!({
        "waived": waived,
        "seq": seq, "at": local_time(c.at), "trigger": trigger_zh(&c.trigger),
        "regions": regions.into_iter().map(|r| r.1).collect::<Vec<_>>(),
        "record": record, "action": format!("/consultations/{seq}/opinion"), "back": format!("/consultations/{seq}"),
        "exercise": c.exercise,
    });
    let drill = if c.exercise { "【演练】" } else { "" };
    page.render(
        "opinion.html",
        if c.exercise { "drills" } else { "consultations" },
        &format!("{drill}会商意见（第{seq}号会商）"),
        ctx,
        StatusCode::OK,
    )
}

/// `POST /consultations/{seq}/opinion`: units one a line (`单位：甲、乙`), the analysis, and per region
/// `decision_{code}`, `level_{code}`, `from_{code}`, `until_{code}`, `reason_{code}`.
pub(super) async fn record_opinion(
    State(app): Shared,
    Extension(dash): Dash,
    Path(seq): Path<u64>,
    posted: Posted<BTreeMap<String, String>>,
) -> Response {
    let f = &posted.form;
    let get = |k: &str| f.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
    let units = get("units")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (name, people) = l.split_once(['：', ':']).unwrap_or((l, ""));
            Unit {
                name: name.trim().to_string(),
                people: people
                    .split(['、', '，', ','])
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty())
                    .collect(),
            }
        })
        .collect();
    let conclusions = f
        .keys()
        .filter_map(|k| k.strip_prefix("decision_"))
        .map(|region| {
            let opt = |k: &str| Some(get(&format!("{k}_{region}"))).filter(|v| !v.is_empty());
            ConclusionInput {
                region: region.to_string(),
                decision: get(&format!("decision_{region}")),
                level: opt("level"),
                from: opt("from"),
                until: opt("until"),
                reason: opt("reason"),
            }
        })
        .collect();
    let input = OpinionInput {
        units,
        weather: get("weather"),
        trend: get("trend"),
        primary_pollutant: get("primary_pollutant"),
        conclusions,
    };
    let back = format!("/consultations/{seq}");
    match app.engine.record_opinion(seq, input, &posted.session.staff.name).await {
        Ok(o) => {
            app.after_change();
            let changed = o.conclusions.iter().filter(|k| k.decision != Decision::Accept).count();
            let text = if changed == 0 {
                "会商意见已记录，同意系统建议。".to_string()
            } else {
                format!("会商意见已记录，{changed}个地区调整或否决了系统建议。")
            };
            redirect_with(&dash, &back, FlashKind::Ok, &text)
        }
        Err(e) => redirect_with(&dash, &back, FlashKind::Error, &format!("会商意见未记录：{}", refusal_zh(&e))),
    }
}

fn approval_ctx(app: &AppState, f: &ApprovalForm) -> Value {
    let now = app.engine.clock.now();
    let mut v = form_json(f, app.engine.regions, now);
    v["warning_href"] = json!(views::warning_href(&f.warning_id));
    v["consultation_href"] = json!(f.consultation.map(|c| format!("/consultations/{c}")));
    v
}

/// `GET /approvals/{id}`: the form, to print; its completion and relay forms (not printed); its Word file.
pub(super) async fn approval_page(State(app): Shared, Extension(dash): Dash, session: Session, Path(id): Path<String>) -> Response {
    let f = match app.engine.store.read(|r| approval::form(r, &id)) {
        Ok(f) => f,
        Err(e) => return store_failed(&dash, &app, &session, e),
    };
    let Some(f) = f else {
        return error_page(
            &dash,
            &app,
            Some(&session),
            StatusCode::NOT_FOUND,
            "未找到审批表",
            &format!("没有编号为 {id} 的审批表。"),
        );
    };
    let page = Page::new(&dash, &app, Some(&session));
    let mut ctx = approval_ctx(&app, &f);
    ctx["back"] = json!(format!("/approvals/{id}"));
    ctx["complete_action"] = json!(format!("/approvals/{id}/complete"));
    ctx["relay_action"] = json!(format!("/approvals/{id}/relay"));
    ctx["docx_href"] = json!(format!("/api/v1/approvals/{id}/docx"));
    ctx["can_complete"] = json!(f.void.is_none() && f.completed_at.is_none());
    ctx["can_relay"] = json!(f.void.is_none() && f.signed() && f.relayed_at.is_none());
    page.render(
        "approval.html",
        if f.exercise { "drills" } else { "now" },
        &title(&f),
        ctx,
        StatusCode::OK,
    )
}

/// `POST /approvals/{id}/complete`.
pub(super) async fn complete(
    State(app): Shared,
    Extension(dash): Dash,
    Path(id): Path<String>,
    posted: Posted<BTreeMap<String, String>>,
) -> Response {
    let get = |k: &str| posted.form.get(k).cloned().unwrap_or_default();
    let c = Completion {
        weather: get("weather"),
        trend: get("trend"),
        measures: get("measures"),
    };
    let back = format!("/approvals/{id}");
    match app.engine.complete_form(&id, c, &posted.session.staff.name).await {
        Ok(_) => {
            app.after_change();
            redirect_with(&dash, &back, FlashKind::Ok, "审批表已填报。")
        }
        Err(e) => redirect_with(&dash, &back, FlashKind::Error, &format!("审批表未填报：{}", refusal_zh(&e))),
    }
}

/// `POST /approvals/{id}/relay`.
pub(super) async fn relay(
    State(app): Shared,
    Extension(dash): Dash,
    Path(id): Path<String>,
    posted: Posted<BTreeMap<String, String>>,
) -> Response {
    let note = posted.form.get("note").cloned().unwrap_or_default();
    let back = format!("/approvals/{id}");
    match app.engine.relay_form(&id, &note, &posted.session.staff.name).await {
        Ok(_) => {
            app.after_change();
            redirect_with(&dash, &back, FlashKind::Ok, "已登记转发各部门。")
        }
        Err(e) => redirect_with(&dash, &back, FlashKind::Error, &format!("转发未登记：{}", refusal_zh(&e))),
    }
}

/// The forms of a warning, for its page: title, state, link.
pub(super) fn forms_of_warning(app: &AppState, warning: &str) -> Vec<Value> {
    let forms = app.engine.store.read(|r| approval::forms_of(r, warning)).unwrap_or_default();
    let now = app.engine.clock.now();
    forms
        .iter()
        .map(|f| {
            let state = if f.void.is_some() {
                "已作废"
            } else if f.relayed_at.is_some() {
                "已转发"
            } else if f.signed() {
                "已签发，待转发"
            } else if f.completed_at.is_some() {
                "已填报，待签发"
            } else {
                "待填报"
            };
            // The time each stage took (or has taken so far), and whether past its deadline.
            let took = |stage: FormStage| {
                let a = f.achieved(stage, now);
                match (a.minutes, a.done.is_some()) {
                    _ if f.void.is_some() => "—".to_string(),
                    (Some(m), done) => format!(
                        "{}{}{}",
                        if done { "" } else { "已过" },
                        duration_zh(m),
                        if a.late { "（超时）" } else { "" }
                    ),
                    (None, _) => "—".to_string(),
                }
            };
            json!({ "id": f.id, "title": title(f), "level_name": f.level_name, "state": state,
                    "opened_at": local_time(f.opened_at), "href": format!("/approvals/{}", f.id),
                    "form_took": took(FormStage::Form), "relay_took": took(FormStage::Relay) })
        })
        .collect()
}
