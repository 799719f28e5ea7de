//! The HTTP side of [`crate::engine::episode`]: routes and handlers.

use crate::engine::episode::*;
use crate::web::AppState;
use crate::web::api::{ApiError, Staff};
use axum::Json;
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::routing::get;
use std::sync::Arc;

/// The routes of this module.
pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/warnings/{id}/summary", get(summary))
}

#[utoipa::path(
    get,
    path = "/api/v1/warnings/{id}/summary",
    operation_id = "get_warnings_id_summary",
    tag = "api",
    summary = "the after-episode summary",
    params(
        ("id" = String, Path, description = "warning id")
    ),
    responses(
        (status = 200, description = "level history, assignments, acknowledgement rates and times, inspections, reductions against targets", body = Object),
        (status = 401, description = "no or unknown staff token", body = crate::web::api::ErrorBody),
        (status = 404, description = "no such warning", body = crate::web::api::ErrorBody),
        (status = 500, description = "the store failed", body = crate::web::api::ErrorBody)
    )
)]
async fn summary(State(s): State<Arc<AppState>>, _staff: Staff, UrlPath(id): UrlPath<String>) -> Result<Json<Summary>, ApiError> {
    let society = load_society(s.settings.list_seed.as_deref());
    let now = s.engine.clock.now();
    let out = s
        .engine
        .store
        .read(|r| build(r, &id, &s.defaults, s.engine.regions, &society, now))?;
    out.map(Json).ok_or_else(|| ApiError::NotFound(format!("no warning {id}")))
}
