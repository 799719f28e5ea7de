//! The HTTP side of [`crate::engine::opinion`] (会商意见) and [`crate::engine::approval`] (审批表): the
//! JSON routes, the form's fields as people read them (shared with the dashboard's page), and the
//! form as a Word file.
//!
//! Routes: `GET/POST /api/v1/consultations/{seq}/opinion`, `GET /api/v1/approvals?warning=&limit=&after=`,
//! `GET /api/v1/approvals/{id}`, `POST /api/v1/approvals/{id}/complete`, `POST /api/v1/approvals/{id}/relay`,
//! `GET /api/v1/approvals/{id}/docx`. Writes need a role the root playbook defines
//! ([`crate::web::authority::staff_writes`]).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::approval::{ApprovalForm, FormKind, FormStage, duration_zh};
use crate::domain::opinion::{OpinionInput, Proposal};
use crate::domain::region::Regions;
use crate::engine::approval::{self, Completion};
use crate::engine::escalate::local;
use crate::engine::opinion;
use crate::store::ConsultationRecord;
use crate::web::AppState;
use crate::web::api::{ApiError, Paging, Staff};
use crate::web::inspect::json_body;

type Shared = State<Arc<AppState>>;

/// The routes of this module.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/consultations/{seq}/opinion", get(show_opinion).post(record_opinion))
        .route("/api/v1/approvals", get(list_forms))
        .route("/api/v1/approvals/{id}", get(show_form))
        .route("/api/v1/approvals/{id}/complete", post(complete))
        .route("/api/v1/approvals/{id}/relay", post(relay))
        .route("/api/v1/approvals/{id}/docx", get(docx))
}

/// The consultation's regions with their proposal and forecast per day (what the meeting looks at).
pub(crate) fn consultation_json(c: &ConsultationRecord, regions: &Regions) -> Value {
    let rows: Vec<Value> = c
        .assessments
        .iter()
        .map(|a| {
            json!({
                "region": a.region, "region_name": regions.name(a.region),
                "proposed": Proposal::of(a),
                "forecast": a.window.iter().map(|(d, aqi)| json!({ "date": d, "aqi": aqi })).collect::<Vec<_>>(),
                "playbook": a.playbook, "forecast_id": a.forecast_id,
            })
        })
        .collect();
    json!({ "seq": c.seq, "at": c.at, "trigger": c.trigger, "regions": rows })
}

#[utoipa::path(
    get,
    path = "/api/v1/consultations/{seq}/opinion",
    operation_id = "get_consultations_seq_opinion",
    tag = "operations",
    summary = "a consultation's record (会商意见) and what the meeting looks at: each region's proposal and forecast per day",
    params(
        ("seq" = u64, Path, description = "the consultation's seq")
    ),
    responses(
        (status = 200, description = "the consultation and its record (`opinion`, null until recorded)", body = crate::web::api::openapi::GetConsultationsSeqOpinionAnswer),
        (status = 401, description = "no or unknown staff token", body = crate::web::api::ErrorBody),
        (status = 404, description = "no such consultation", body = crate::web::api::ErrorBody),
        (status = 500, description = "the store failed", body = crate::web::api::ErrorBody)
    )
)]
async fn show_opinion(State(s): Shared, _staff: Staff, Path(seq): Path<u64>) -> Result<Json<Value>, ApiError> {
    let (c, o) = s.engine.store.read(|r| Ok((r.consultation(seq)?, opinion::opinion(r, seq)?)))?;
    let c = c.ok_or_else(|| ApiError::NotFound(format!("no consultation {seq}")))?;
    // Its proposals signed before the record (`record_before_sign`), with the signers' reasons.
    let waived: Vec<Value> = s
        .engine
        .store
        .read(|r| approval::waived(r, &c))?
        .into_iter()
        .map(|f| json!({ "form": f.id, "warning": f.warning_id, "region": f.region, "signer": f.signer, "signed_at": f.signed_at, "reason": f.without_record }))
        .collect();
    Ok(Json(
        json!({ "consultation": consultation_json(&c, s.engine.regions), "opinion": o, "signed_without_record": waived }),
    ))
}

#[utoipa::path(
    post,
    path = "/api/v1/consultations/{seq}/opinion",
    operation_id = "post_consultations_seq_opinion",
    tag = "operations",
    summary = "record the consultation's record (会商意见): units and people, weather, trend, primary pollutant, a conclusion per region (accept, change or reject the proposal; a change or rejection needs a reason). A change or rejection of a proposal awaiting sign-off takes effect on it; the proposal and the decision are both kept",
    params(
        ("seq" = u64, Path, description = "the consultation's seq")
    ),
    request_body(content = crate::domain::opinion::OpinionInput, content_type = "application/json"),
    responses(
        (status = 201, description = "recorded", body = crate::web::api::openapi::PostConsultationsSeqOpinionAnswer201),
        (status = 400, description = "a bad field, named (`conclusions[0].reason: a change needs a reason`); nothing recorded", body = crate::web::api::ErrorBody),
        (status = 401, description = "no or unknown staff token", body = crate::web::api::ErrorBody),
        (status = 403, description = "the token's role is not one the root playbook defines", body = crate::web::api::ErrorBody),
        (status = 404, description = "no such consultation", body = crate::web::api::ErrorBody),
        (status = 409, description = "recorded already, or a change or rejection of a proposal no longer awaiting sign-off (or of a consultation a later one replaced)", body = crate::web::api::ErrorBody),
        (status = 500, description = "the store failed", body = crate::web::api::ErrorBody)
    )
)]
async fn record_opinion(State(s): Shared, staff: Staff, Path(seq): Path<u64>, body: Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let input: OpinionInput = json_body(&body)?;
    let o = s.engine.record_opinion(seq, input, &staff.name).await?;
    s.after_change();
    Ok((StatusCode::CREATED, Json(json!({ "opinion": o }))))
}

#[derive(Deserialize, Default)]
struct FormQuery {
    warning: Option<String>,
    /// Drills' forms (演练) instead of real warnings' (without `warning`).
    #[serde(default)]
    exercise: bool,
    limit: Option<usize>,
    after: Option<String>,
}

/// `GET /api/v1/approvals`: by warning id then number (cursor: the form's id; default 100 a page); the
/// real warnings' forms only, or with `exercise=true` the drills' (演练); with `warning`, that
/// warning's forms.
#[utoipa::path(
    get,
    path = "/api/v1/approvals",
    operation_id = "get_approvals",
    tag = "operations",
    summary = "approval forms (审批表) of real warnings, or with exercise=true of drills (演练), by warning id then number (cursor: a form id; default 100 a page)",
    params(
        ("warning" = Option<String>, Query, description = "only this warning's forms"),
        ("exercise" = Option<bool>, Query, description = "the drills' forms (演练) instead of the real warnings' (without warning)"),
        ("limit" = Option<u32>, Query, description = "items per page (more than 1000 is taken as 1000)", minimum = 1, maximum = 1000),
        ("after" = Option<String>, Query, description = "the cursor: a form id; the page holds the forms after it")
    ),
    responses(
        (status = 200, description = "a page", body = crate::web::api::openapi::GetApprovalsPage),
        (status = 400, description = "a bad `limit`", body = crate::web::api::ErrorBody),
        (status = 401, description = "no or unknown staff token", body = crate::web::api::ErrorBody),
        (status = 500, description = "the store failed", body = crate::web::api::ErrorBody)
    )
)]
async fn list_forms(State(s): Shared, _staff: Staff, Query(q): Query<FormQuery>) -> Result<Json<Value>, ApiError> {
    let p = Paging::new(q.limit, q.after.clone());
    let limit = p.limit(crate::web::api::paging::DEFAULT_LIMIT)?;
    let now = s.engine.clock.now();
    let forms = s.engine.store.read(|r| match &q.warning {
        Some(w) => Ok(approval::forms_of(r, w)?
            .into_iter()
            .filter(|f| p.after().is_none_or(|a| key_after(&f.id, a)))
            .take(limit + 1)
            .collect::<Vec<_>>()),
        None => approval::page_of(r, p.after(), limit + 1, q.exercise),
    })?;
    let more = forms.len() > limit;
    let list: Vec<Value> = forms.iter().take(limit).map(|f| form_json(f, s.engine.regions, now)).collect();
    let next = if more { forms.get(limit - 1).map(|f| f.id.clone()) } else { None };
    Ok(Json(json!({ "approvals": list, "next_after": next })))
}

/// Whether form `id` comes after form `after` within one warning.
fn key_after(id: &str, after: &str) -> bool {
    let n = |s: &str| s.rsplit_once('.').and_then(|(_, n)| n.parse::<u32>().ok()).unwrap_or(0);
    n(id) > n(after)
}

#[utoipa::path(
    get,
    path = "/api/v1/approvals/{id}",
    operation_id = "get_approvals_id",
    tag = "operations",
    summary = "one approval form with its fields and the times achieved",
    params(
        ("id" = String, Path, description = "the approval form's id: `{warning id}.{n}`")
    ),
    responses(
        (status = 200, description = "the form", body = crate::web::api::openapi::ApprovalAnswer),
        (status = 401, description = "no or unknown staff token", body = crate::web::api::ErrorBody),
        (status = 404, description = "no such form", body = crate::web::api::ErrorBody),
        (status = 500, description = "the store failed", body = crate::web::api::ErrorBody)
    )
)]
async fn show_form(State(s): Shared, _staff: Staff, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let f = s
        .engine
        .store
        .read(|r| approval::form(r, &id))?
        .ok_or_else(|| ApiError::NotFound(format!("no approval form {id}")))?;
    Ok(Json(json!({ "approval": form_json(&f, s.engine.regions, s.engine.clock.now()) })))
}

#[utoipa::path(
    post,
    path = "/api/v1/approvals/{id}/complete",
    operation_id = "post_approvals_id_complete",
    tag = "operations",
    summary = "complete the form (填表): 不利气象条件, 趋势分析, 应急措施, each required",
    params(
        ("id" = String, Path, description = "the approval form's id: `{warning id}.{n}`")
    ),
    request_body(content = crate::engine::approval::Completion, content_type = "application/json"),
    responses(
        (status = 200, description = "completed", body = crate::web::api::openapi::ApprovalAnswer),
        (status = 400, description = "a field missing, named", body = crate::web::api::ErrorBody),
        (status = 401, description = "no or unknown staff token", body = crate::web::api::ErrorBody),
        (status = 403, description = "the token's role is not one the root playbook defines", body = crate::web::api::ErrorBody),
        (status = 404, description = "no such form", body = crate::web::api::ErrorBody),
        (status = 409, description = "completed already, or void", body = crate::web::api::ErrorBody),
        (status = 500, description = "the store failed", body = crate::web::api::ErrorBody)
    )
)]
async fn complete(State(s): Shared, staff: Staff, Path(id): Path<String>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let c: Completion = json_body(&body)?;
    let f = s.engine.complete_form(&id, c, &staff.name).await?;
    s.after_change();
    Ok(Json(json!({ "approval": form_json(&f, s.engine.regions, s.engine.clock.now()) })))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RelayBody {
    #[serde(default)]
    note: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/approvals/{id}/relay",
    operation_id = "post_approvals_id_relay",
    tag = "operations",
    summary = r#"record the relay of the signed decision to the departments (转发); `{"note": …}` optional"#,
    params(
        ("id" = String, Path, description = "the approval form's id: `{warning id}.{n}`")
    ),
    request_body(content = Option<RelayBody>, content_type = "application/json"),
    responses(
        (status = 200, description = "relayed", body = crate::web::api::openapi::ApprovalAnswer),
        (status = 401, description = "no or unknown staff token", body = crate::web::api::ErrorBody),
        (status = 403, description = "the token's role is not one the root playbook defines", body = crate::web::api::ErrorBody),
        (status = 404, description = "no such form", body = crate::web::api::ErrorBody),
        (status = 409, description = "not signed yet, relayed already, or void", body = crate::web::api::ErrorBody),
        (status = 500, description = "the store failed", body = crate::web::api::ErrorBody)
    )
)]
async fn relay(State(s): Shared, staff: Staff, Path(id): Path<String>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let b: RelayBody = if body.iter().all(u8::is_ascii_whitespace) {
        RelayBody::default()
    } else {
        json_body(&body)?
    };
    let f = s.engine.relay_form(&id, &b.note, &staff.name).await?;
    s.after_change();
    Ok(Json(json!({ "approval": form_json(&f, s.engine.regions, s.engine.clock.now()) })))
}

#[utoipa::path(
    get,
    path = "/api/v1/approvals/{id}/docx",
    operation_id = "get_approvals_id_docx",
    tag = "operations",
    summary = "the form as a Word file (.docx)",
    params(
        ("id" = String, Path, description = "the approval form's id: `{warning id}.{n}`")
    ),
    responses(
        (status = 200, description = "the Word file", body = Vec<u8>, content_type = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        (status = 401, description = "no or unknown staff token", body = crate::web::api::ErrorBody),
        (status = 404, description = "no such form", body = crate::web::api::ErrorBody),
        (status = 500, description = "the store failed", body = crate::web::api::ErrorBody)
    )
)]
async fn docx(State(s): Shared, _staff: Staff, Path(id): Path<String>) -> Result<Response, ApiError> {
    let f = s
        .engine
        .store
        .read(|r| approval::form(r, &id))?
        .ok_or_else(|| ApiError::NotFound(format!("no approval form {id}")))?;
    let bytes = to_docx(&f, s.engine.regions, s.engine.clock.now()).map_err(ApiError::Internal)?;
    let name = format!("approval-{}.docx", f.id);
    Ok((
        [
            (
                CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document".to_string(),
            ),
            (CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        bytes,
    )
        .into_response())
}

/// The form's title: 《重污染天气预警信息发布（调整、解除）审批表》 with its kind.
/// A drill's form (演练) says so first: 【演练】重污染天气预警信息发布审批表.
pub(crate) fn title(f: &ApprovalForm) -> String {
    let drill = if f.exercise { "【演练】" } else { "" };
    format!("{drill}重污染天气预警信息{}审批表", f.kind.zh())
}

fn opt_time(t: Option<DateTime<Utc>>) -> String {
    t.map(local).unwrap_or_default()
}

/// How a deadline went, in words: `2026年12月2日 11:35（用时1小时35分，时限2026年12月2日 12:00，按时）`.
fn achieved_zh(f: &ApprovalForm, stage: FormStage, now: DateTime<Utc>, pending: &str) -> String {
    let a = f.achieved(stage, now);
    let due = a.due.map(|d| format!("时限{}", local(d)));
    let spent = a.minutes.map(|m| format!("用时{}", duration_zh(m)));
    match a.done {
        Some(t) => {
            let mut parts: Vec<String> = spent.into_iter().chain(due).collect();
            if a.due.is_some() {
                parts.push(if a.late { "超时".into() } else { "按时".into() });
            }
            format!("{}（{}）", local(t), parts.join("，"))
        }
        None if f.void.is_some() => "—".into(),
        None => {
            let mut s = pending.to_string();
            if let Some(d) = due {
                s.push_str(&format!("（{d}{}）", if a.late { "，已超时" } else { "" }));
            }
            s
        }
    }
}

/// The form's fields in order, as the page, the API and the Word file show them: `(label, value)`.
pub(crate) fn rows(f: &ApprovalForm, regions: &Regions, now: DateTime<Utc>) -> Vec<(&'static str, String)> {
    let level = match (&f.kind, &f.from_level_name) {
        (FormKind::Adjust, Some(from)) => format!("由{from}调整为{}（{}应急响应）", f.level_name, f.response),
        (FormKind::Lift, _) => format!("解除{}（{}应急响应）", f.level_name, f.response),
        _ => format!("{}（{}应急响应）", f.level_name, f.response),
    };
    let period = match (f.period_from, f.period_until) {
        (Some(a), Some(b)) => format!("{} 至 {}", local(a), local(b)),
        (Some(a), None) => format!("{} 起", local(a)),
        _ => String::new(),
    };
    let meeting = match &f.meeting {
        Some(m) => {
            let proposed = if m.proposed_level_name.is_empty() {
                m.proposed_level.to_string()
            } else {
                m.proposed_level_name.clone()
            };
            let reason = if m.reason.is_empty() {
                String::new()
            } else {
                format!("；理由：{}", m.reason)
            };
            format!("第{}号会商：{}系统建议（{proposed}）{reason}", m.consultation, m.decision.zh())
        }
        None => match f.consultation {
            Some(c) => format!("第{c}号会商（会商意见尚未填写）"),
            None => "—".into(),
        },
    };
    // Signed without the record where the playbook asks for it first: the signer's reason.
    let meeting = match &f.without_record {
        Some(r) => format!("{meeting}\n未附会商意见签发，理由：{r}"),
        None => meeting,
    };
    let signer = match (&f.signer, &f.needs) {
        (Some(s), Some(n)) => format!("{s}（{n}）"),
        (Some(s), None) => format!("{s}（按预案无需签发）"),
        (None, Some(n)) => format!("待{n}签发"),
        (None, None) => "待签发".into(),
    };
    let released = match f.kind {
        FormKind::Issue => opt_time(f.signed_at),
        _ => opt_time(f.effective.or(f.signed_at)),
    };
    let mut out = vec![
        ("编号", f.id.clone()),
        ("预警区域", regions.name(f.region)),
        ("预警等级", level),
        ("出现时段", period),
        (
            if f.kind == FormKind::Issue {
                "预警发布时间"
            } else {
                "生效时间"
            },
            if released.is_empty() { "待签发".into() } else { released },
        ),
        ("不利气象条件", f.weather.clone()),
        ("趋势分析", f.trend.clone()),
        ("应急措施", f.measures.clone()),
        ("会商意见", meeting),
        ("填表", {
            let who = f.completed_by.clone().map(|b| format!("{b}，")).unwrap_or_default();
            format!("{who}{}", achieved_zh(f, FormStage::Form, now, "尚未填报"))
        }),
        ("签发人", signer),
        ("签发时间", opt_time(f.signed_at)),
        ("转发各部门", {
            let who = f.relayed_by.clone().map(|b| format!("{b}，")).unwrap_or_default();
            let note = if f.relay_note.is_empty() {
                String::new()
            } else {
                format!("；{}", f.relay_note)
            };
            format!("{who}{}{note}", achieved_zh(f, FormStage::Relay, now, "尚未转发"))
        }),
        ("发布单位", f.issuer.clone()),
    ];
    if let Some(why) = &f.void {
        out.push(("作废", why.clone()));
    }
    out
}

/// The form as JSON: the record, its fields as read, and the times achieved.
pub(crate) fn form_json(f: &ApprovalForm, regions: &Regions, now: DateTime<Utc>) -> Value {
    let fields: Vec<Value> = rows(f, regions, now)
        .into_iter()
        .map(|(label, value)| json!({ "label": label, "value": value }))
        .collect();
    json!({
        "form": f, "title": title(f), "region_name": regions.name(f.region), "fields": fields,
        "achieved": { "form": f.achieved(FormStage::Form, now), "relay": f.achieved(FormStage::Relay, now) },
    })
}

/// The form as a Word file (docx-rs): the title, then one table row per field, in 仿宋/宋体.
pub fn to_docx(f: &ApprovalForm, regions: &Regions, now: DateTime<Utc>) -> Result<Vec<u8>, String> {
    use docx_rs::{AlignmentType, Docx, Paragraph, Run, RunFonts, Table, TableCell, TableRow, WidthType};
    let font = || RunFonts::new().east_asia("仿宋").ascii("Times New Roman");
    let para = |text: &str, bold: bool, size: usize| {
        let mut p = Paragraph::new();
        for (i, line) in text.split('\n').enumerate() {
            let mut r = Run::new().fonts(font()).size(size);
            if i > 0 {
                r = r.add_break(docx_rs::BreakType::TextWrapping);
            }
            r = r.add_text(line);
            if bold {
                r = r.bold();
            }
            p = p.add_run(r);
        }
        p
    };
    let rows: Vec<TableRow> = rows(f, regions, now)
        .into_iter()
        .map(|(label, value)| {
            TableRow::new(vec![
                TableCell::new().width(2200, WidthType::Dxa).add_paragraph(para(label, true, 24)),
                TableCell::new().width(6800, WidthType::Dxa).add_paragraph(para(&value, false, 24)),
            ])
        })
        .collect();
    let doc = Docx::new()
        .add_paragraph(
            Paragraph::new().align(AlignmentType::Center).add_run(
                Run::new()
                    .fonts(RunFonts::new().east_asia("宋体"))
                    .size(36)
                    .bold()
                    .add_text(title(f)),
            ),
        )
        .add_paragraph(para(&f.issuer, false, 24).align(AlignmentType::Center))
        .add_table(Table::new(rows).set_grid(vec![2200, 6800]));
    let mut out = std::io::Cursor::new(Vec::new());
    doc.pack(&mut out).map_err(|e| format!("cannot write the Word file: {e}"))?;
    Ok(out.into_inner())
}
