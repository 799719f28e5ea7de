//! The HTTP side of [`crate::engine::inspect`]: routes and handlers.

use crate::domain::region::RegionCode;
use crate::engine::assign::{self, Assignment, AssignmentStatus};
use crate::engine::inspect::*;
use crate::store::{RecordBody, StoreError, Tx, events};
use crate::web::AppState;
use crate::web::api::{ApiError, Staff};
use crate::web::clean_text;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use chrono::{Duration, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

pub(crate) fn json_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

/// The routes of this module.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/inspections", get(list).post(open))
        .route("/api/v1/inspections/{id}", get(show))
        .route("/api/v1/inspections/{id}/result", post(result))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    warning: Option<String>,
    county: Option<String>,
    status: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
}

#[utoipa::path(
    get,
    path = "/api/v1/inspections",
    operation_id = "get_inspections",
    tag = "inspections",
    summary = "inspection tasks (监督帮扶), by id",
    params(
        ("warning" = Option<String>, Query, description = "a warning id"),
        ("county" = Option<String>, Query, description = "a county code (with `warning`)"),
        ("status" = Option<String>, Query, description = "open, done or not_needed"),
        ("limit" = Option<u32>, Query, description = "items per page (more than 1000 is taken as 1000)", minimum = 1, maximum = 1000),
        ("after" = Option<String>, Query, description = "the cursor: an inspection id; the page holds the items after it")
    ),
    responses(
        (status = 200, description = "a page and `open` (how many of the page are open)", body = crate::web::api::openapi::GetInspectionsPage),
        (status = 400, description = "a bad `limit` or `after`", body = crate::web::api::ErrorBody),
        (status = 401, description = "no or unknown staff token", body = crate::web::api::ErrorBody),
        (status = 500, description = "the store failed", body = crate::web::api::ErrorBody)
    )
)]
async fn list(State(s): State<Arc<AppState>>, _staff: Staff, Query(q): Query<ListQuery>) -> Result<Json<Value>, ApiError> {
    let county = q
        .county
        .as_deref()
        .map(RegionCode::parse)
        .transpose()
        .map_err(|e| ApiError::BadRequest(format!("county: {e}")))?;
    let status = match q.status.as_deref() {
        None => None,
        Some(x) => Some(
            InspectionStatus::parse(x).ok_or_else(|| ApiError::BadRequest(format!("status: \"{x}\" is none of open, done, not_needed")))?,
        ),
    };
    let prefix = match (&q.warning, county) {
        (Some(w), Some(c)) => format!("{w}.{c}."),
        (Some(w), None) => format!("{w}."),
        _ => String::new(),
    };
    let limit = crate::web::api::Paging::new(q.limit, None).limit(crate::web::api::paging::DEFAULT_LIMIT)?;
    let mut after = q.after.clone().unwrap_or_default();
    let mut out: Vec<Inspection> = Vec::new();
    let mut next = None;
    'scan: loop {
        let page = s.engine.store.read(|r| r.docs::<Inspection>(INSPECTIONS, &prefix, &after, 1000))?;
        let Some((last, _)) = page.last() else { break };
        after = last.clone();
        for (_, i) in page {
            if county.is_some_and(|c| c != i.county) || status.is_some_and(|st| st != i.status) {
                continue;
            }
            out.push(i);
            if out.len() == limit {
                next = out.last().map(|i| i.id.clone());
                break 'scan;
            }
        }
    }
    let open = out.iter().filter(|i| i.status == InspectionStatus::Open).count();
    Ok(Json(json!({ "inspections": out, "open": open, "next_after": next })))
}

#[utoipa::path(
    get,
    path = "/api/v1/inspections/{id}",
    operation_id = "get_inspections_id",
    tag = "inspections",
    summary = "one inspection task",
    params(
        ("id" = String, Path, description = "inspection id")
    ),
    responses(
        (status = 200, description = "the task", body = Object),
        (status = 401, description = "no or unknown staff token", body = crate::web::api::ErrorBody),
        (status = 404, description = "no such inspection", body = crate::web::api::ErrorBody),
        (status = 500, description = "the store failed", body = crate::web::api::ErrorBody)
    )
)]
async fn show(State(s): State<Arc<AppState>>, _staff: Staff, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let i = s.engine.store.read(|r| r.doc::<Inspection>(INSPECTIONS, &id))?;
    let i = i.ok_or_else(|| ApiError::NotFound(format!("no inspection {id}")))?;
    Ok(Json(json!({ "inspection": i })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct OpenBody {
    warning: String,
    uscc: String,
    #[serde(default)]
    note: String,
}

/// The current task of an enterprise in a warning: its negotiated reduction if it has one in force,
/// else its measures.
fn current_task(tx: &Tx<'_>, warning_id: &str, uscc: &str) -> Result<Option<Assignment>, StoreError> {
    let mut found = None;
    for pk in [format!("e:{uscc}"), format!("n:{uscc}")] {
        if let Some(a) = assign::current(tx, warning_id, &pk)? {
            found = Some(a);
        }
    }
    Ok(found)
}

#[utoipa::path(
    post,
    path = "/api/v1/inspections",
    operation_id = "post_inspections",
    tag = "inspections",
    summary = "open an inspection task",
    request_body(content = OpenBody, content_type = "application/json"),
    responses(
        (status = 201, description = "the task", body = Object),
        (status = 400, description = "bad input", body = crate::web::api::ErrorBody),
        (status = 401, description = "no or unknown staff token", body = crate::web::api::ErrorBody),
        (status = 403, description = "a role the root playbook defines", body = crate::web::api::ErrorBody),
        (status = 404, description = "no such warning or enterprise task", body = crate::web::api::ErrorBody),
        (status = 500, description = "the store failed", body = crate::web::api::ErrorBody)
    )
)]
async fn open(State(s): State<Arc<AppState>>, staff: Staff, body: Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let b: OpenBody = json_body(&body)?;
    let note = clean_text(&b.note, 500);
    let now = s.engine.clock.now();
    let by = staff.name.clone();
    let i = s
        .engine
        .store
        .write(move |tx| {
            if tx.warning(&b.warning)?.is_none() {
                return Err(refuse(404, format!("no warning {}", b.warning)));
            }
            let e = enterprise_in(tx, &b.uscc)?.ok_or_else(|| refuse(404, format!("no enterprise {} on the list", b.uscc)))?;
            let a = current_task(tx, &b.warning, &b.uscc)?
                .ok_or_else(|| refuse(409, format!("enterprise {} has no task in force in warning {}", b.uscc, b.warning)))?;
            let id = next_id(tx, &a, e.county, e.uscc.as_str())?;
            let i = Inspection::new(&a, &e, id, "requested", &note, &by, now);
            put_new(tx, now, &i, &by)?;
            Ok(i)
        })
        .await
        .map_err(ApiError::from)?;
    crate::web::log_recorded(&staff.name, "open inspection", &i.id, Some(&i.warning_id));
    Ok((StatusCode::CREATED, Json(json!({ "inspection": i }))))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ResultBody {
    compliant: bool,
    #[serde(default)]
    note: String,
    /// when inspected (default now)
    time: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/inspections/{id}/result",
    operation_id = "post_inspections_id_result",
    tag = "inspections",
    summary = "record an inspection's finding",
    params(
        ("id" = String, Path, description = "inspection id")
    ),
    request_body(content = ResultBody, content_type = "application/json"),
    responses(
        (status = 200, description = "the task", body = Object),
        (status = 400, description = "bad input", body = crate::web::api::ErrorBody),
        (status = 401, description = "no or unknown staff token", body = crate::web::api::ErrorBody),
        (status = 403, description = "a role the root playbook defines", body = crate::web::api::ErrorBody),
        (status = 404, description = "no such inspection", body = crate::web::api::ErrorBody),
        (status = 409, description = "already done", body = crate::web::api::ErrorBody),
        (status = 500, description = "the store failed", body = crate::web::api::ErrorBody)
    )
)]
async fn result(State(s): State<Arc<AppState>>, staff: Staff, Path(id): Path<String>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let b: ResultBody = json_body(&body)?;
    let now = s.engine.clock.now();
    let inspected_at = match &b.time {
        Some(t) => crate::domain::forecast::parse_time(t)
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| ApiError::BadRequest(format!("time: \"{t}\" is not a time (RFC 3339 or YYYY-MM-DD HH:MM)")))?,
        None => now,
    };
    if inspected_at > now + Duration::minutes(5) {
        return Err(ApiError::BadRequest(
            "time: the inspection cannot have taken place in the future".into(),
        ));
    }
    if !b.compliant && b.note.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "note: say what was found when the measures were not in place".into(),
        ));
    }
    let result = InspectionResult {
        compliant: b.compliant,
        note: clean_text(&b.note, 2000),
        inspected_at,
        recorded_at: now,
        inspector: staff.name.clone(),
    };
    let actor = staff.name.clone();
    let (i, recheck) = s
        .engine
        .store
        .write(move |tx| {
            let mut i = tx
                .doc::<Inspection>(INSPECTIONS, &id)?
                .ok_or_else(|| refuse(404, format!("no inspection {id}")))?;
            if i.result.is_some() {
                return Err(refuse(
                    409,
                    format!("inspection {id} has its result already; open a new one to inspect again"),
                ));
            }
            if let Some(c) = &i.closed {
                return Err(refuse(409, format!("inspection {id} was closed: {}", c.text)));
            }
            if inspected_at < i.opened_at - Duration::days(1) {
                return Err(refuse(400, "time: before the task was opened"));
            }
            // A finding of non-compliance on a task still in force calls for a follow-up visit.
            let recheck = match (result.compliant, assign::get(tx, &i.assignment)?, enterprise_in(tx, &i.uscc)?) {
                (false, Some(a), Some(e)) if a.status == AssignmentStatus::Active => {
                    let id = next_id(tx, &a, e.county, e.uscc.as_str())?;
                    Some(Inspection::new(
                        &a,
                        &e,
                        id,
                        "recheck",
                        &format!("复查：{}", result.note),
                        &actor,
                        now,
                    ))
                }
                _ => None,
            };
            i.status = InspectionStatus::Done;
            i.result = Some(result.clone());
            tx.put_doc(INSPECTIONS, &i.id, &i)?;
            tx.bump(
                if result.compliant {
                    "inspections_compliant"
                } else {
                    "inspections_non_compliant"
                },
                1,
            )?;
            let recorded = events::InspectionRecorded {
                compliant: result.compliant,
                inspected_at,
                inspection: i.id.clone(),
                uscc: i.uscc.clone(),
                warning_id: i.warning_id.clone(),
            };
            tx.append(now, &actor, None, RecordBody::Other(events::Event::InspectionRecorded(recorded)))?;
            if !result.compliant {
                let found = events::EnterpriseNonCompliant {
                    county: i.county,
                    inspected_at,
                    inspection: i.id.clone(),
                    inspector: result.inspector.clone(),
                    level: i.level.clone(),
                    name: i.enterprise_name.clone(),
                    negotiated: i.negotiated,
                    note: result.note.clone(),
                    uscc: i.uscc.clone(),
                    warning_id: i.warning_id.clone(),
                };
                tx.append(now, &actor, None, RecordBody::Other(events::Event::EnterpriseNonCompliant(found)))?;
            }
            if let Some(r) = &recheck {
                put_new(tx, now, r, &actor)?;
            }
            Ok((i, recheck))
        })
        .await
        .map_err(ApiError::from)?;
    let found = if i.result.as_ref().is_some_and(|r| r.compliant) {
        "compliant"
    } else {
        "not compliant"
    };
    crate::web::log_recorded(&staff.name, &format!("record inspection ({found})"), &i.id, Some(&i.warning_id));
    s.after_change();
    Ok(Json(json!({ "inspection": i, "recheck": recheck })))
}
