//! The HTTP API (`/api/v1/…`, `/healthz`, `/metrics`): JSON in and out, staff endpoints behind a
//! bearer token. One [`ApiError`] maps every failure to a status and a message.
//!
//! In: requests. Out: calls on the [`Engine`] and reads of the store; no state of its own.

mod metrics;
pub mod openapi;
pub mod paging;
mod staff;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::forecast::parse_time;
use crate::domain::level::LevelId;
use crate::domain::region::RegionCode;
use crate::engine::SubmitError;
use crate::engine::{EngineError, WarningAction};
use crate::store::{DirectiveRecord, StoreError};
use crate::web::AppState;

pub(crate) use openapi::ErrorBody;
pub use paging::Paging;
pub use staff::Staff;

/// Every API failure, with its status.
#[derive(Debug)]
pub enum ApiError {
    /// 400.
    BadRequest(String),
    /// 401.
    Unauthorized,
    /// 403.
    Forbidden(String),
    /// 404.
    NotFound(String),
    /// 409.
    Conflict(String),
    /// 500.
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, msg) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "a staff bearer token is required (Authorization: Bearer …)".into(),
            ),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, m),
            ApiError::Internal(m) => {
                tracing::error!(error = %m, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, m)
            }
        };
        (status, Json(json!({ "error": msg }))).into_response()
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::BadInput(m) => ApiError::BadRequest(m),
            EngineError::NotFound(m) => ApiError::NotFound(m),
            EngineError::Forbidden(m) => ApiError::Forbidden(m),
            EngineError::Conflict(m) => ApiError::Conflict(m),
            EngineError::Store(s) => ApiError::Internal(s.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

type ApiResult<T> = Result<T, ApiError>;
type Shared = State<Arc<AppState>>;

/// The router of the API (mounted by the application beside the pages).
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/api/v1/forecasts", post(submit_forecast))
        .route("/api/v1/consultations", get(list_consultations).post(consult_now))
        .route("/api/v1/warnings", get(list_warnings))
        .route("/api/v1/regions", get(list_regions))
        .route("/api/v1/warnings/{id}", get(show_warning))
        .route("/api/v1/warnings/{id}/sign", post(sign))
        .route("/api/v1/warnings/{id}/lift", post(lift))
        .route("/api/v1/warnings/{id}/cancel", post(cancel))
        .route("/api/v1/directives", get(list_directives).post(issue_directive))
        .route("/api/v1/directives/{id}/lift", post(lift_directive))
        .route("/api/v1/events", get(events))
        .route("/api/v1/playbooks", get(playbooks))
        .route("/api/v1/playbooks/reload", post(reload))
        .route("/api/v1/backup", post(backup))
        .route("/api/v1/openapi.json", get(openapi_json))
}

/// `GET /api/v1/openapi.json`, without a token (it describes, it holds nothing): the document
/// [`openapi`] generates from the handlers' annotations.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "get_openapi_json",
    tag = "operations",
    summary = "this document",
    responses(
        (status = 200, description = "the OpenAPI 3.1 description of the API", body = Object)
    ),
    security(())
)]
async fn openapi_json() -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], openapi::json()).into_response()
}

/// 200 while the store writes; 503 with the reason while writes fail (disk full, I/O errors).
/// How long `/healthz` waits for its read of the store.
const HEALTH_READ_DEADLINE: std::time::Duration = std::time::Duration::from_secs(2);

#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "get_healthz",
    tag = "operations",
    summary = "health",
    description = "200 while the store writes; 503 with the reason while writes fail",
    responses(
        (status = 200, description = "the store writes", body = Object),
        (status = 503, description = "the store cannot write: status, reason, since", body = Object)
    ),
    security(())
)]
async fn healthz(State(s): Shared) -> Response {
    if let Some(f) = s.engine.store.fault() {
        let body = json!({
            "status": "store_failing",
            "error": format!("the store cannot write: {}", f.reason),
            "reason": f.reason,
            "since": f.since,
            "reopen_attempts": f.attempts,
            "store": s.engine.store.kind(),
        });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    let (role, term) = match s.engine.store.role() {
        crate::store::Role::Leader { term } => ("leader", term),
        crate::store::Role::Follower => ("follower", 0),
    };
    // The read runs off the request's task with a deadline: a store that does not answer (a database
    // behind a cut network) makes the health check say so rather than hang.
    let store = s.engine.store.clone();
    let read = tokio::task::spawn_blocking(move || store.read(|r| r.last_seq()));
    let read = match tokio::time::timeout(HEALTH_READ_DEADLINE, read).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(crate::store::StoreError::Refused(format!("the health check's read failed: {e}"))),
        Err(_) => {
            let error = format!("the store did not answer within {} s", HEALTH_READ_DEADLINE.as_secs());
            let body = json!({
                "status": "store_not_answering",
                "error": error,
                "reason": error,
                "store": s.engine.store.kind(),
                "role": role,
                "term": term,
            });
            return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
        }
    };
    match read {
        Ok(seq) => Json(json!({
            "status": "ok",
            "store": s.engine.store.kind(),
            "role": role,
            "term": term,
            "last_seq": seq,
            "playbooks": s.engine.playbooks.status().versions,
        }))
        .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "store_failing", "error": e.to_string(), "reason": e.to_string(), "role": role, "term": term })),
        )
            .into_response(),
    }
}

/// `?exercise=true` on `POST /api/v1/forecasts`: a drill's forecast (演练), for bodies that cannot
/// say so themselves (a CSV without the `# exercise: true` line).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SubmitQuery {
    #[serde(default)]
    exercise: bool,
}

#[utoipa::path(
    post,
    path = "/api/v1/forecasts",
    operation_id = "post_forecasts",
    tag = "api",
    summary = "submit a forecast",
    description = r#"CSV or JSON (see the README's Formats); recorded once however often it comes; a drill's forecast (演练: `# exercise: true`, `"exercise": true`, or `?exercise=true`) is consulted at once for the regions' drill lanes"#,
    params(
        ("X-File-Name" = Option<String>, Header, description = "names the forecast in errors"),
        ("exercise" = Option<bool>, Query, description = "a drill's forecast (演练), whatever the body says")
    ),
    request_body(content((String = "text/csv"), (Object = "application/json"))),
    responses(
        (status = 200, description = "a duplicate, recorded before", body = Object),
        (status = 201, description = "recorded", body = Object),
        (status = 400, description = "rejected whole, with file:line:column", body = ErrorBody),
        (status = 401, description = "no or unknown staff token", body = ErrorBody),
        (status = 413, description = "larger than inbox.max_bytes", body = ErrorBody),
        (status = 500, description = "the store failed", body = ErrorBody)
    )
)]
async fn submit_forecast(
    State(s): Shared,
    staff: Staff,
    headers: HeaderMap,
    Query(q): Query<SubmitQuery>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let name = headers
        .get("x-file-name")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("request body")
        .to_string();
    match s
        .engine
        .submit_forecast_as(&name, &body, &format!("http:{}", staff.name), q.exercise)
        .await
    {
        Ok(sub) => {
            let action = if sub.duplicate {
                "submit forecast (duplicate)"
            } else {
                "submit forecast"
            };
            crate::web::log_recorded(&staff.name, action, &sub.id, None);
            // A drill's forecast was consulted for its drill lanes already.
            if !sub.duplicate && !sub.exercise && s.consult_on_forecast {
                s.trigger_consultation();
            }
            let status = if sub.duplicate { StatusCode::OK } else { StatusCode::CREATED };
            Ok((status, Json(json!(sub))))
        }
        Err(e @ SubmitError::NotRecorded { .. }) => Err(ApiError::Internal(e.to_string())),
        Err(e @ SubmitError::Rejected(_)) => {
            tracing::warn!(actor = %staff.name, action = "submit forecast", subject = %name, error = %e, "refused");
            Err(ApiError::BadRequest(e.to_string()))
        }
    }
}

/// `GET /api/v1/consultations`: newest first; the cursor is a consultation's `seq` (the page holds
/// older ones). The store reads the latest N only, so a page deep in the past reads the ones before it.
#[utoipa::path(
    get,
    path = "/api/v1/consultations",
    operation_id = "get_consultations",
    tag = "api",
    summary = "consultations, newest first",
    params(
        ("limit" = Option<u32>, Query, description = "items per page (more than 1000 is taken as 1000)", minimum = 1, maximum = 1000),
        ("after" = Option<u32>, Query, description = "the cursor: a consultation's `seq` (the page holds older ones); the page holds the items after it")
    ),
    responses(
        (status = 200, description = "a page", body = openapi::GetConsultationsPage),
        (status = 400, description = "a bad `limit` or `after`", body = ErrorBody),
        (status = 401, description = "no or unknown staff token", body = ErrorBody),
        (status = 500, description = "the store failed", body = ErrorBody)
    )
)]
async fn list_consultations(State(s): Shared, _staff: Staff, Query(q): Query<Paging>) -> ApiResult<Json<Value>> {
    let limit = q.limit(20)?;
    let before = q
        .after()
        .map(|a| {
            a.parse::<u64>()
                .map_err(|_| ApiError::BadRequest(format!("after: \"{a}\" is not a consultation's seq")))
        })
        .transpose()?;
    let (list, more) = s.engine.store.read(|r| {
        let mut n = limit + 1;
        loop {
            let read = r.consultations(n)?;
            let all_read = read.len() < n;
            let rest: Vec<_> = read.into_iter().filter(|c| before.is_none_or(|b| c.seq < b)).collect();
            if rest.len() > limit || all_read {
                let more = rest.len() > limit;
                return Ok((rest.into_iter().take(limit).collect::<Vec<_>>(), more));
            }
            n = n.saturating_mul(2);
        }
    })?;
    let next = if more { list.last().map(|c| c.seq) } else { None };
    Ok(Json(json!({ "consultations": list, "next_after": next })))
}

#[utoipa::path(
    post,
    path = "/api/v1/consultations",
    operation_id = "post_consultations",
    tag = "api",
    summary = "hold a consultation now",
    responses(
        (status = 201, description = "the consultation held", body = Object),
        (status = 401, description = "no or unknown staff token", body = ErrorBody),
        (status = 500, description = "the store failed", body = ErrorBody)
    )
)]
async fn consult_now(State(s): Shared, staff: Staff) -> ApiResult<(StatusCode, Json<Value>)> {
    let rec = s.engine.consult(&format!("on demand by {}", staff.name), None, None).await?;
    let subject = rec
        .as_ref()
        .map_or_else(|| "nothing to consult".to_string(), |c| format!("consultation {}", c.seq));
    crate::web::log_recorded(&staff.name, "consult now", &subject, None);
    Ok((StatusCode::CREATED, Json(json!(rec))))
}

#[utoipa::path(
    get,
    path = "/api/v1/warnings",
    operation_id = "get_warnings",
    tag = "api",
    summary = "the current warning per region, by region code",
    params(
        ("limit" = Option<u32>, Query, description = "items per page (more than 1000 is taken as 1000)", minimum = 1, maximum = 1000),
        ("after" = Option<String>, Query, description = "the cursor: a region code; the page holds the items after it")
    ),
    responses(
        (status = 200, description = "a page", body = openapi::GetWarningsPage),
        (status = 400, description = "a bad `limit` or `after`", body = ErrorBody),
        (status = 401, description = "no or unknown staff token", body = ErrorBody),
        (status = 500, description = "the store failed", body = ErrorBody)
    )
)]
async fn list_warnings(State(s): Shared, _staff: Staff, Query(q): Query<Paging>) -> ApiResult<Json<Value>> {
    let states = s.engine.store.read(|r| r.region_states())?;
    // Only the regions with a warning are items: a page is never short of them.
    let with_warning: Vec<_> = states.into_iter().filter(|(_, st)| st.warning.is_some()).collect();
    let page = q.page(with_warning, paging::WHOLE, |(region, _)| region.to_string())?;
    let mut out = Vec::new();
    for (region, st) in page.items {
        let Some(w) = st.warning else { continue };
        out.push(json!({
            "id": w.id, "region": region, "region_name": s.engine.regions.name(region),
            "status": w.status, "level": w.level.id, "start": w.start, "expected_end": w.expected_end,
            "rule": w.rule, "pending_sign_off": w.status == crate::domain::warning::Status::Pending || w.pending_change.is_some(),
            "pending_change": w.pending_change, "holds": w.holds, "playbook": w.playbook, "ended_at": w.ended_at,
            "lead_missed": w.lead_missed, "next": w.next, "plan": w.plan.as_ref().map(|p| &p.steps),
            "timeline": crate::domain::warning::timeline_of(&w, s.engine.playbooks.pinned(&w.playbook).as_deref()),
        }));
    }
    Ok(Json(json!({ "warnings": out, "next_after": page.next })))
}

/// Every region of the daemon's province (the province, its cities, their counties), each with
/// its own live warning and the warning in force there — its own or, for a county under a
/// city-wide warning, the city's ([`crate::domain::in_force`]).
#[utoipa::path(
    get,
    path = "/api/v1/regions",
    operation_id = "get_regions",
    tag = "api",
    summary = "every region of the daemon's province with its own warning and the warning in force there, by region code",
    params(
        ("limit" = Option<u32>, Query, description = "items per page (more than 1000 is taken as 1000)", minimum = 1, maximum = 1000),
        ("after" = Option<String>, Query, description = "the cursor: a region code; the page holds the items after it")
    ),
    responses(
        (status = 200, description = "a page", body = openapi::GetRegionsPage),
        (status = 400, description = "a bad `limit` or `after`", body = ErrorBody),
        (status = 401, description = "no or unknown staff token", body = ErrorBody),
        (status = 500, description = "the store failed", body = ErrorBody)
    )
)]
async fn list_regions(State(s): Shared, _staff: Staff, Query(q): Query<Paging>) -> ApiResult<Json<Value>> {
    let states: std::collections::BTreeMap<RegionCode, crate::domain::warning::RegionState> =
        s.engine.store.read(|r| r.region_states())?.into_iter().collect();
    let regions = s.engine.regions;
    let page = q.page(regions.all().collect(), paging::WHOLE, |r| r.code.to_string())?;
    let out: Vec<Value> = page
        .items
        .into_iter()
        .map(|r| {
            let own = states.get(&r.code).and_then(crate::domain::warning::RegionState::live);
            let in_force = crate::domain::in_force::in_force(r.code, regions, &states).map(|f| {
                json!({
                    "level": f.warning.level.id, "warning": f.warning.id, "playbook": f.warning.playbook,
                    "region": f.from, "region_name": regions.name(f.from), "inherited": f.inherited,
                    "start": f.warning.start, "expected_end": f.warning.expected_end,
                })
            });
            json!({
                "region": r.code, "name": r.name, "tier": r.tier.to_string(), "parent": r.parent,
                "own_warning": own.map(|w| json!({ "id": w.id, "status": w.status, "level": w.level.id })),
                "in_force": in_force,
            })
        })
        .collect();
    Ok(Json(json!({ "regions": out, "next_after": page.next })))
}

#[utoipa::path(
    get,
    path = "/api/v1/warnings/{id}",
    operation_id = "get_warnings_id",
    tag = "api",
    summary = "one warning with its full event history",
    params(
        ("id" = String, Path, description = "warning id")
    ),
    responses(
        (status = 200, description = "the warning and its history", body = Object),
        (status = 401, description = "no or unknown staff token", body = ErrorBody),
        (status = 404, description = "no such warning", body = ErrorBody),
        (status = 500, description = "the store failed", body = ErrorBody)
    )
)]
async fn show_warning(State(s): Shared, _staff: Staff, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let (w, history) = s.engine.store.read(|r| Ok((r.warning(&id)?, r.warning_history(&id)?)))?;
    let w = w.ok_or_else(|| ApiError::NotFound(format!("no warning {id}")))?;
    Ok(Json(
        json!({ "warning": w, "region_name": s.engine.regions.name(w.region), "history": history }),
    ))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SignBody {
    /// a name kept as a note only
    signer: Option<String>,
    /// must be the token's role if given
    role: Option<String>,
    /// Why a consultation's proposal is signed before its record (会商意见) is completed.
    without_record: Option<String>,
}

fn json_body<T: serde::de::DeserializeOwned + Default>(body: &Bytes) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

#[utoipa::path(
    post,
    path = "/api/v1/warnings/{id}/sign",
    operation_id = "post_warnings_id_sign",
    tag = "api",
    summary = "sign a proposal or a level change (the role is the token's)",
    params(
        ("id" = String, Path, description = "warning id")
    ),
    request_body(content = Option<SignBody>, content_type = "application/json"),
    responses(
        (status = 200, description = "the events that followed", body = openapi::EventsFollowed),
        (status = 401, description = "no or unknown staff token", body = ErrorBody),
        (status = 403, description = "the token's role may not sign this level", body = ErrorBody),
        (status = 404, description = "no such warning", body = ErrorBody),
        (status = 409, description = "nothing to sign; or the consultation that proposed it has no record (会商意见) yet, where the playbook asks for it first (record_before_sign) and no `without_record` reason is given (the message, in Chinese, names the consultation and its page)", body = ErrorBody),
        (status = 500, description = "the store failed", body = ErrorBody)
    )
)]
async fn sign(State(s): Shared, staff: Staff, Path(id): Path<String>, body: Bytes) -> ApiResult<Json<Value>> {
    let b: SignBody = json_body(&body)?;
    if let Some(role) = &b.role
        && role != &staff.role
    {
        return Err(ApiError::Forbidden(format!(
            "your token carries role \"{}\", not \"{role}\"",
            staff.role
        )));
    }
    // The signer is the token's holder; a name typed in the body is kept as a note only.
    let note = b
        .signer
        .filter(|n| n.trim() != staff.name)
        .map(|n| format!("signer named in the request: {}", n.chars().take(200).collect::<String>()));
    let events = s
        .engine
        .warning_action_noted(
            &id,
            WarningAction::Sign {
                signer: staff.name.clone(),
                role: staff.role.clone(),
                without_record: b.without_record,
            },
            note,
        )
        .await?;
    s.after_change();
    Ok(Json(json!({ "events": events })))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    reason: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/warnings/{id}/lift",
    operation_id = "post_warnings_id_lift",
    tag = "api",
    summary = "lift an active warning",
    params(
        ("id" = String, Path, description = "warning id")
    ),
    request_body(content = Option<ReasonBody>, content_type = "application/json"),
    responses(
        (status = 200, description = "the events that followed", body = openapi::EventsFollowed),
        (status = 401, description = "no or unknown staff token", body = ErrorBody),
        (status = 403, description = "the role may not lift it", body = ErrorBody),
        (status = 404, description = "no such warning", body = ErrorBody),
        (status = 409, description = "not now (held by a directive, already lifted)", body = ErrorBody),
        (status = 500, description = "the store failed", body = ErrorBody)
    )
)]
async fn lift(State(s): Shared, staff: Staff, Path(id): Path<String>, body: Bytes) -> ApiResult<Json<Value>> {
    let b: ReasonBody = json_body(&body)?;
    let reason = b.reason.unwrap_or_else(|| "lifted by an operator".into());
    let events = s
        .engine
        .warning_action(
            &id,
            WarningAction::Lift {
                actor: staff.name.clone(),
                role: staff.role.clone(),
                reason,
            },
        )
        .await?;
    s.after_change();
    Ok(Json(json!({ "events": events })))
}

#[utoipa::path(
    post,
    path = "/api/v1/warnings/{id}/cancel",
    operation_id = "post_warnings_id_cancel",
    tag = "api",
    summary = "cancel a warning not started",
    params(
        ("id" = String, Path, description = "warning id")
    ),
    request_body(content = Option<ReasonBody>, content_type = "application/json"),
    responses(
        (status = 200, description = "the events that followed", body = openapi::EventsFollowed),
        (status = 401, description = "no or unknown staff token", body = ErrorBody),
        (status = 403, description = "the role may not cancel it", body = ErrorBody),
        (status = 404, description = "no such warning", body = ErrorBody),
        (status = 409, description = "not now", body = ErrorBody),
        (status = 500, description = "the store failed", body = ErrorBody)
    )
)]
async fn cancel(State(s): Shared, staff: Staff, Path(id): Path<String>, body: Bytes) -> ApiResult<Json<Value>> {
    let b: ReasonBody = json_body(&body)?;
    let reason = b.reason.unwrap_or_else(|| "cancelled by an operator".into());
    let events = s
        .engine
        .warning_action(
            &id,
            WarningAction::Cancel {
                actor: staff.name.clone(),
                role: staff.role.clone(),
                reason,
            },
        )
        .await?;
    s.after_change();
    Ok(Json(json!({ "events": events })))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct DirectiveBody {
    id: String,
    name: String,
    /// yellow, orange or red
    #[schema(value_type = String)]
    min_level: LevelId,
    /// region codes or group:ID
    regions: Vec<String>,
    /// RFC 3339 or YYYY-MM-DD HH:MM (Asia/Shanghai)
    from: String,
    until: Option<String>,
    /// the issuing tier's region code
    issued_by: Option<String>,
    /// A drill's directive (演练): it holds the regions' drill lanes only.
    #[serde(default)]
    exercise: bool,
}

/// The region issuing a directive: `issued_by` when given, else the daemon's home province
/// (Shanxi when the table is not scoped).
pub(crate) fn issuer_of(issued_by: Option<&str>, home: Option<RegionCode>) -> ApiResult<RegionCode> {
    crate::engine::upstream::issuer_of(issued_by, home).map_err(ApiError::BadRequest)
}

/// The regions a directive or a warning from above names (`field` in the body: codes and
/// `group:NAME`), each below the issuing region `issued_by`; errors name `field`.
pub(crate) fn regions_below(s: &AppState, field: &str, named: &[String], issued_by: RegionCode) -> ApiResult<Vec<RegionCode>> {
    crate::engine::upstream::regions_below(s.engine.regions, field, named, issued_by).map_err(ApiError::BadRequest)
}

#[utoipa::path(
    post,
    path = "/api/v1/directives",
    operation_id = "post_directives",
    tag = "api",
    summary = "issue a directive",
    request_body(content = DirectiveBody, content_type = "application/json"),
    responses(
        (status = 201, description = "the events that followed", body = openapi::EventsFollowed),
        (status = 400, description = "bad input", body = ErrorBody),
        (status = 401, description = "no or unknown staff token", body = ErrorBody),
        (status = 403, description = "the role may not issue that level", body = ErrorBody),
        (status = 409, description = "not now", body = ErrorBody),
        (status = 500, description = "the store failed", body = ErrorBody)
    )
)]
async fn issue_directive(State(s): Shared, staff: Staff, body: Bytes) -> ApiResult<(StatusCode, Json<Value>)> {
    let b: DirectiveBody = serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
    let time = |field: &str, v: &str| -> ApiResult<DateTime<Utc>> {
        parse_time(v)
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| ApiError::BadRequest(format!("{field}: \"{v}\" is not a time (RFC 3339 or YYYY-MM-DD HH:MM)")))
    };
    let issued_by = issuer_of(b.issued_by.as_deref(), s.engine.regions.scope())?;
    let regions = regions_below(&s, "regions", &b.regions, issued_by)?;
    let from = time("from", &b.from)?;
    let until = b.until.as_deref().map(|u| time("until", u)).transpose()?;
    if until.is_some_and(|u| u <= from) {
        return Err(ApiError::BadRequest("until: must be after from".into()));
    }
    if b.id.trim().is_empty() {
        return Err(ApiError::BadRequest("id: must not be empty".into()));
    }
    let d = DirectiveRecord {
        id: b.id,
        name: b.name,
        min_level: b.min_level,
        regions,
        from,
        until,
        issued_by,
        active: true,
        exercise: b.exercise,
        upstream: None,
    };
    let events = s.engine.issue_directive(d, &staff.name, Some(&staff.role)).await?;
    s.after_change();
    Ok((StatusCode::CREATED, Json(json!({ "events": events }))))
}

#[utoipa::path(
    get,
    path = "/api/v1/directives",
    operation_id = "get_directives",
    tag = "api",
    summary = "regional directives (调度令), by id",
    params(
        ("limit" = Option<u32>, Query, description = "items per page (more than 1000 is taken as 1000)", minimum = 1, maximum = 1000),
        ("after" = Option<String>, Query, description = "the cursor: a directive id; the page holds the items after it")
    ),
    responses(
        (status = 200, description = "a page", body = openapi::GetDirectivesPage),
        (status = 400, description = "a bad `limit` or `after`", body = ErrorBody),
        (status = 401, description = "no or unknown staff token", body = ErrorBody),
        (status = 500, description = "the store failed", body = ErrorBody)
    )
)]
async fn list_directives(State(s): Shared, _staff: Staff, Query(q): Query<Paging>) -> ApiResult<Json<Value>> {
    // Warnings from above are listed by `GET /api/v1/upstream-warnings`.
    let mut all = s.engine.store.read(|r| r.directives())?;
    all.retain(|d| d.upstream.is_none());
    let page = q.page(all, paging::WHOLE, |d| d.id.clone())?;
    Ok(Json(json!({ "directives": page.items, "next_after": page.next })))
}

#[utoipa::path(
    post,
    path = "/api/v1/directives/{id}/lift",
    operation_id = "post_directives_id_lift",
    tag = "api",
    summary = "lift a directive",
    params(
        ("id" = String, Path, description = "directive id")
    ),
    responses(
        (status = 200, description = "the events that followed", body = openapi::EventsFollowed),
        (status = 401, description = "no or unknown staff token", body = ErrorBody),
        (status = 403, description = "the role may not lift it", body = ErrorBody),
        (status = 404, description = "no such directive", body = ErrorBody),
        (status = 409, description = "already lifted", body = ErrorBody),
        (status = 500, description = "the store failed", body = ErrorBody)
    )
)]
async fn lift_directive(State(s): Shared, staff: Staff, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    if s.engine.store.read(|r| r.directive(&id))?.is_some_and(|d| d.upstream.is_some()) {
        return Err(ApiError::NotFound(format!(
            "no directive {id}: it is a warning from above, lifted by POST /api/v1/upstream-warnings/{id}/lift"
        )));
    }
    let events = s.engine.lift_directive(&id, &staff.name, Some(&staff.role), None).await?;
    s.after_change();
    Ok(Json(json!({ "events": events })))
}

/// `GET /api/v1/events`: the log in order; the cursor is a record's `seq`.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    operation_id = "get_events",
    tag = "api",
    summary = "the audit log, in order",
    params(
        ("limit" = Option<u32>, Query, description = "items per page (more than 1000 is taken as 1000)", minimum = 1, maximum = 1000),
        ("after" = Option<u32>, Query, description = "the cursor: a record's `seq`; the page holds the items after it")
    ),
    responses(
        (status = 200, description = "a page", body = openapi::GetEventsPage),
        (status = 400, description = "a bad `limit` or `after`", body = ErrorBody),
        (status = 401, description = "no or unknown staff token", body = ErrorBody),
        (status = 500, description = "the store failed", body = ErrorBody)
    )
)]
async fn events(State(s): Shared, _staff: Staff, Query(q): Query<Paging>) -> ApiResult<Json<Value>> {
    let after = q
        .after()
        .map_or(Ok(0), str::parse::<u64>)
        .map_err(|_| ApiError::BadRequest("after: not a sequence number".into()))?;
    let limit = q.limit(paging::DEFAULT_LIMIT)?;
    let list = s.engine.store.read(|r| r.events_after(after, limit))?;
    let next = paging::next_after(list.len(), limit, || list.last().map(|r| r.seq));
    Ok(Json(json!({ "events": list, "next_after": next })))
}

#[utoipa::path(
    get,
    path = "/api/v1/playbooks",
    operation_id = "get_playbooks",
    tag = "api",
    summary = "the live playbooks, by id, and the last reload",
    params(
        ("limit" = Option<u32>, Query, description = "items per page (more than 1000 is taken as 1000)", minimum = 1, maximum = 1000),
        ("after" = Option<String>, Query, description = "the cursor: a playbook id; the page holds the items after it")
    ),
    responses(
        (status = 200, description = "a page and `last_reload`", body = openapi::GetPlaybooksPage),
        (status = 400, description = "a bad `limit` or `after`", body = ErrorBody),
        (status = 401, description = "no or unknown staff token", body = ErrorBody),
        (status = 500, description = "the store failed", body = ErrorBody)
    )
)]
async fn playbooks(State(s): Shared, _staff: Staff, Query(q): Query<Paging>) -> ApiResult<Json<Value>> {
    let set = s.engine.playbooks.live();
    let page = q.page(set.iter().collect(), paging::WHOLE, |p| p.id.clone())?;
    let list: Vec<Value> = page
        .items
        .iter()
        .map(|p| json!({ "id": p.id, "version": p.version, "digest": p.digest, "file": p.file, "scope": p.scope, "parent": p.parent }))
        .collect();
    Ok(Json(
        json!({ "playbooks": list, "next_after": page.next, "last_reload": s.engine.playbooks.status() }),
    ))
}

#[utoipa::path(
    post,
    path = "/api/v1/playbooks/reload",
    operation_id = "post_playbooks_reload",
    tag = "api",
    summary = "reload the playbooks, roster, templates, staff tokens and ack-link keys, all or nothing",
    responses(
        (status = 200, description = "the live versions, the roster (`notify`), the ack-link keys in service (`link_keys`, oldest first; the last signs) and the dashboard's session keys (`session_keys`, likewise; `k0` is the legacy `session.key`)", body = Object),
        (status = 400, description = "not reloaded: every error, the old ones stay live", body = ErrorBody),
        (status = 401, description = "no or unknown staff token", body = ErrorBody),
        (status = 403, description = "the highest role of the root playbook only", body = ErrorBody),
        (status = 500, description = "the store failed", body = ErrorBody)
    )
)]
async fn reload(State(s): Shared, staff: Staff) -> ApiResult<Json<Value>> {
    crate::domain::authority::require_top(&s.engine.playbooks.live(), &staff.role, "reload the playbooks")
        .map_err(|r| ApiError::Forbidden(r.0))?;
    match s.reload_playbooks(&staff.name).await {
        Ok(versions) => {
            let notify = s.notify.files().summary(&s.settings);
            let keys = s.tokens.ring().ids();
            let session = s.session_keys.read().map(|k| k.ids()).unwrap_or_default();
            Ok(Json(
                json!({ "reloaded": true, "versions": versions, "notify": notify, "link_keys": keys, "session_keys": session }),
            ))
        }
        Err(errors) => Err(ApiError::BadRequest(format!(
            "not reloaded; the old playbooks, roster, templates, staff tokens and link keys stay live:\n{}",
            errors.join("\n")
        ))),
    }
}

/// `POST /api/v1/backup`: a consistent copy of the store (one read transaction; the writer goes on),
/// streamed as the body (`application/vnd.redb`). The highest staff role only: it holds every
/// contact and acknowledgement. The copy is made in the data folder and unlinked once opened, so
/// nothing is left behind whatever happens to the download.
#[utoipa::path(
    post,
    path = "/api/v1/backup",
    operation_id = "post_backup",
    tag = "operations",
    summary = "a consistent copy of the store, streamed",
    responses(
        (status = 200, description = "the copy (X-Hazeflow-Events: its event count)", body = Vec<u8>, content_type = "application/vnd.redb"),
        (status = 401, description = "no or unknown staff token", body = ErrorBody),
        (status = 403, description = "the highest role of the root playbook only", body = ErrorBody),
        (status = 500, description = "the store failed", body = ErrorBody)
    )
)]
async fn backup(State(s): Shared, staff: Staff) -> Result<axum::response::Response, ApiError> {
    crate::domain::authority::require_top(&s.engine.playbooks.live(), &staff.role, "take a backup")
        .map_err(|r| ApiError::Forbidden(r.0))?;
    let tmp = s
        .settings
        .data_dir
        .join(format!(".backup-{}-{}.redb", std::process::id(), rand::random::<u64>()));
    let store = s.engine.store.clone();
    let path = tmp.clone();
    let summary = tokio::task::spawn_blocking(move || store.backup_to(&path))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    let file = tokio::fs::File::open(&tmp).await.map_err(|e| ApiError::Internal(e.to_string()));
    let _ = std::fs::remove_file(&tmp);
    let file = file?;
    tracing::info!(actor = %staff.name, events = summary.events, bytes = summary.bytes, "backup taken over the API");
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 1 << 20));
    axum::response::Response::builder()
        .header(axum::http::header::CONTENT_TYPE, "application/vnd.redb")
        .header(axum::http::header::CONTENT_LENGTH, summary.bytes)
        .header("X-Hazeflow-Events", summary.events)
        .body(body)
        .map_err(|e| ApiError::Internal(e.to_string()))
}
