//! The HTTP side of [`crate::engine::drill`]: the drill warnings and the drill report (演练).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path as UrlPath, Query, State};
use axum::routing::get;
use serde_json::{Value, json};

use crate::engine::drill::{DrillReport, drills, report};
use crate::web::AppState;
use crate::web::api::paging::{self, Paging};
use crate::web::api::{ApiError, Staff};

/// The routes of this module.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/drills", get(list))
        .route("/api/v1/drills/{id}/report", get(drill_report))
}

/// `GET /api/v1/drills`: every drill warning, paged by id (a drill's warnings are never in
/// `GET /api/v1/warnings`, which lists the real ones).
#[utoipa::path(
    get,
    path = "/api/v1/drills",
    operation_id = "get_drills",
    tag = "api",
    summary = "the drill warnings (演练), by id",
    description = "every drill warning; drills are never in GET /api/v1/warnings",
    params(
        ("limit" = Option<u32>, Query, description = "items per page (more than 1000 is taken as 1000)", minimum = 1, maximum = 1000),
        ("after" = Option<String>, Query, description = "the cursor: a drill warning id; the page holds the items after it")
    ),
    responses(
        (status = 200, description = "a page", body = crate::web::api::openapi::GetDrillsPage),
        (status = 400, description = "a bad `limit` or `after`", body = crate::web::api::ErrorBody),
        (status = 401, description = "no or unknown staff token", body = crate::web::api::ErrorBody),
        (status = 500, description = "the store failed", body = crate::web::api::ErrorBody)
    )
)]
async fn list(State(s): State<Arc<AppState>>, _staff: Staff, Query(q): Query<Paging>) -> Result<Json<Value>, ApiError> {
    let page = q.page(s.engine.store.read(drills)?, paging::WHOLE, |w| w.id.clone())?;
    Ok(Json(json!({ "drills": page.items, "next_after": page.next })))
}

/// `GET /api/v1/drills/{id}/report`: the drill report; 404 for an unknown id or a real warning.
#[utoipa::path(
    get,
    path = "/api/v1/drills/{id}/report",
    operation_id = "get_drills_id_report",
    tag = "api",
    summary = "the drill report (演练)",
    params(
        ("id" = String, Path, description = "drill warning id")
    ),
    responses(
        (status = 200, description = "per region of the party and in total: tasks given, and for 收到 and 措施已落实 how many confirmed, how many not, and the minutes from the notice (median, 90th percentile, last)", body = Object),
        (status = 401, description = "no or unknown staff token", body = crate::web::api::ErrorBody),
        (status = 404, description = "no such warning, or a real one", body = crate::web::api::ErrorBody),
        (status = 500, description = "the store failed", body = crate::web::api::ErrorBody)
    )
)]
async fn drill_report(State(s): State<Arc<AppState>>, _staff: Staff, UrlPath(id): UrlPath<String>) -> Result<Json<DrillReport>, ApiError> {
    let now = s.engine.clock.now();
    let out = s.engine.store.read(|r| report(r, &id, &s.defaults, s.engine.regions, now))?;
    out.map(Json).ok_or_else(|| ApiError::NotFound(format!("no drill {id}")))
}
