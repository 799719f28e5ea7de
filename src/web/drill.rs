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
async fn list(State(s): State<Arc<AppState>>, _staff: Staff, Query(q): Query<Paging>) -> Result<Json<Value>, ApiError> {
    let page = q.page(s.engine.store.read(drills)?, paging::WHOLE, |w| w.id.clone())?;
    Ok(Json(json!({ "drills": page.items, "next_after": page.next })))
}

/// `GET /api/v1/drills/{id}/report`: the drill report; 404 for an unknown id or a real warning.
async fn drill_report(State(s): State<Arc<AppState>>, _staff: Staff, UrlPath(id): UrlPath<String>) -> Result<Json<DrillReport>, ApiError> {
    let now = s.engine.clock.now();
    let out = s.engine.store.read(|r| report(r, &id, &s.defaults, s.engine.regions, now))?;
    out.map(Json).ok_or_else(|| ApiError::NotFound(format!("no drill {id}")))
}
