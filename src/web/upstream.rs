//! Warnings from above (上级预警): a regional warning from the ministry or the province, recorded
//! over the API (or dropped in the inbox: [`crate::workers::inbox`]) as a directive carrying its document number (文号), issuer and a level per group of
//! regions ([`crate::store::Upstream`]). The regions start at least at its level from its start, are
//! held there while it is in force, and follow their own forecasts again only when its lift arrives.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::store::DirectiveRecord;
use crate::web::AppState;
use crate::web::api::paging::{self, Paging};
use crate::web::api::{ApiError, Staff};

/// The routes of this module.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/upstream-warnings", get(list).post(record))
        .route("/api/v1/upstream-warnings/{id}/lift", post(lift))
}

/// `POST /api/v1/upstream-warnings`: records a warning from above; 201 with the events it caused.
/// Who may: as for a directive of its highest level issued by `issued_by` (default the home province).
/// The body is checked by [`crate::engine::upstream`], as an inbox file is.
#[utoipa::path(
    post,
    path = "/api/v1/upstream-warnings",
    operation_id = "post_upstream_warnings",
    tag = "api",
    summary = "record a warning from above (上级预警): the regions start at least at its levels from its start and are held there until its own lift",
    request_body(content = crate::engine::upstream::Body, content_type = "application/json"),
    responses(
        (status = 201, description = "the record and the events that followed", body = crate::web::api::openapi::PostUpstreamWarningsAnswer201),
        (status = 400, description = "bad input", body = crate::web::api::ErrorBody),
        (status = 401, description = "no or unknown staff token", body = crate::web::api::ErrorBody),
        (status = 403, description = "the role may not sign its highest level", body = crate::web::api::ErrorBody),
        (status = 409, description = "not now", body = crate::web::api::ErrorBody),
        (status = 500, description = "the store failed", body = crate::web::api::ErrorBody)
    )
)]
async fn record(State(s): State<Arc<AppState>>, staff: Staff, body: Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let d = s.engine.upstream_warning(&body)?;
    let events = s.engine.issue_directive(d.clone(), &staff.name, Some(&staff.role)).await?;
    s.after_change();
    Ok((StatusCode::CREATED, Json(json!({ "upstream_warning": d, "events": events }))))
}

/// `GET /api/v1/upstream-warnings`: every warning from above recorded, paged by id.
#[utoipa::path(
    get,
    path = "/api/v1/upstream-warnings",
    operation_id = "get_upstream_warnings",
    tag = "api",
    summary = "warnings from above (上级预警) recorded, by id",
    params(
        ("limit" = Option<u32>, Query, description = "items per page (more than 1000 is taken as 1000)", minimum = 1, maximum = 1000),
        ("after" = Option<String>, Query, description = "the cursor: a warning from above's id; the page holds the items after it")
    ),
    responses(
        (status = 200, description = "a page", body = crate::web::api::openapi::GetUpstreamWarningsPage),
        (status = 400, description = "a bad `limit` or `after`", body = crate::web::api::ErrorBody),
        (status = 401, description = "no or unknown staff token", body = crate::web::api::ErrorBody),
        (status = 500, description = "the store failed", body = crate::web::api::ErrorBody)
    )
)]
async fn list(State(s): State<Arc<AppState>>, _staff: Staff, Query(q): Query<Paging>) -> Result<Json<Value>, ApiError> {
    let all: Vec<DirectiveRecord> = s
        .engine
        .store
        .read(|r| r.directives())?
        .into_iter()
        .filter(|d| d.upstream.is_some())
        .collect();
    let page = q.page(all, paging::WHOLE, |d| d.id.clone())?;
    Ok(Json(json!({ "upstream_warnings": page.items, "next_after": page.next })))
}

/// `POST /api/v1/upstream-warnings/{id}/lift` with `{"doc_no": "…"}`: its own lift arrived, with its
/// document number (解除文号); the regions follow their own forecasts again (lifted at once when those
/// call for nothing).
#[utoipa::path(
    post,
    path = "/api/v1/upstream-warnings/{id}/lift",
    operation_id = "post_upstream_warnings_id_lift",
    tag = "api",
    summary = "its own lift arrived, with its document number (解除文号): the regions follow their own forecasts again",
    params(
        ("id" = String, Path, description = "the warning from above's id")
    ),
    request_body(content = crate::engine::upstream::LiftBody, content_type = "application/json"),
    responses(
        (status = 200, description = "the events that followed", body = crate::web::api::openapi::EventsFollowed),
        (status = 400, description = "bad input (doc_no missing or empty)", body = crate::web::api::ErrorBody),
        (status = 401, description = "no or unknown staff token", body = crate::web::api::ErrorBody),
        (status = 403, description = "the role may not lift it", body = crate::web::api::ErrorBody),
        (status = 404, description = "no such directive", body = crate::web::api::ErrorBody),
        (status = 409, description = "already lifted", body = crate::web::api::ErrorBody),
        (status = 500, description = "the store failed", body = crate::web::api::ErrorBody)
    )
)]
async fn lift(State(s): State<Arc<AppState>>, staff: Staff, UrlPath(id): UrlPath<String>, body: Bytes) -> Result<Json<Value>, ApiError> {
    if s.engine.store.read(|r| r.directive(&id))?.is_none_or(|d| d.upstream.is_none()) {
        return Err(ApiError::NotFound(format!("no warning from above {id}")));
    }
    let l = crate::engine::upstream::lift_of(&body, false)?;
    if l.id.as_ref().is_some_and(|b| *b != id) {
        return Err(ApiError::BadRequest(format!(
            "id: the body names {}, the path {id}",
            l.id.unwrap_or_default()
        )));
    }
    let events = s.engine.lift_directive(&id, &staff.name, Some(&staff.role), Some(l.doc_no)).await?;
    s.after_change();
    Ok(Json(json!({ "events": events })))
}
