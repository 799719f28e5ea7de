//! The HTTP side of [`crate::engine::report`]: the reports up (信息报送) as kept — list, one, its Word file.
//!
//! `GET /api/v1/reports?warning=&limit=&after=` (cursor: the report's id; default 100 a page),
//! `GET /api/v1/reports/{id}`, `GET /api/v1/reports/{id}/docx`; any staff token. The printable page is
//! the dashboard's `/reports/{id}`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::engine::report::{self, DailyReport, report_json, to_docx};
use crate::web::AppState;
use crate::web::api::{ApiError, Paging, Staff};

type Shared = State<Arc<AppState>>;

/// The routes of this module.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/reports", get(list))
        .route("/api/v1/reports/{id}", get(show))
        .route("/api/v1/reports/{id}/docx", get(docx))
}

#[derive(Debug, Deserialize)]
struct ReportQuery {
    warning: Option<String>,
    limit: Option<usize>,
    after: Option<String>,
}

/// `GET /api/v1/reports`: by id (warning, then day).
#[utoipa::path(
    get,
    path = "/api/v1/reports",
    operation_id = "get_reports",
    tag = "operations",
    summary = "reports up (信息报送) as kept: the daily reports of warnings in force, by id (warning, then day; cursor: a report id; default 100 a page)",
    params(
        ("warning" = Option<String>, Query, description = "only this warning's reports"),
        ("limit" = Option<u32>, Query, description = "items per page (more than 1000 is taken as 1000)", minimum = 1, maximum = 1000),
        ("after" = Option<String>, Query, description = "the cursor: a report id; the page holds the reports after it")
    ),
    responses(
        (status = 200, description = "a page", body = crate::web::api::openapi::GetReportsPage),
        (status = 400, description = "a bad `limit`", body = crate::web::api::ErrorBody),
        (status = 401, description = "no or unknown staff token", body = crate::web::api::ErrorBody),
        (status = 500, description = "the store failed", body = crate::web::api::ErrorBody)
    )
)]
async fn list(State(s): Shared, _staff: Staff, Query(q): Query<ReportQuery>) -> Result<Json<Value>, ApiError> {
    let p = Paging::new(q.limit, q.after.clone());
    let limit = p.limit(crate::web::api::paging::DEFAULT_LIMIT)?;
    let after = p.after().unwrap_or_default().to_string();
    let reports: Vec<DailyReport> = s.engine.store.read(|r| match &q.warning {
        Some(w) => Ok(report::reports_of(r, w)?
            .into_iter()
            .filter(|x| x.id > after)
            .take(limit + 1)
            .collect()),
        None => report::page(r, &after, limit + 1),
    })?;
    let url = &s.settings.http.public_url;
    let list: Vec<Value> = reports.iter().take(limit).map(|r| report_json(r, url)).collect();
    let next = if reports.len() > limit {
        reports.get(limit - 1).map(|r| r.id.clone())
    } else {
        None
    };
    Ok(Json(json!({ "reports": list, "next_after": next })))
}

fn find(s: &AppState, id: &str) -> Result<DailyReport, ApiError> {
    s.engine
        .store
        .read(|r| report::report(r, id))?
        .ok_or_else(|| ApiError::NotFound(format!("no report {id}")))
}

/// `GET /api/v1/reports/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/reports/{id}",
    operation_id = "get_reports_id",
    tag = "operations",
    summary = "one report up (信息报送) as kept: the record, its title, lead and table as printed",
    params(
        ("id" = String, Path, description = "the report's id: `{warning id}.daily.{YYYYMMDD}`")
    ),
    responses(
        (status = 200, description = "the report", body = Object),
        (status = 401, description = "no or unknown staff token", body = crate::web::api::ErrorBody),
        (status = 404, description = "no such report", body = crate::web::api::ErrorBody),
        (status = 500, description = "the store failed", body = crate::web::api::ErrorBody)
    )
)]
async fn show(State(s): Shared, _staff: Staff, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let r = find(&s, &id)?;
    Ok(Json(report_json(&r, &s.settings.http.public_url)))
}

/// `GET /api/v1/reports/{id}/docx`: the report as a Word file.
#[utoipa::path(
    get,
    path = "/api/v1/reports/{id}/docx",
    operation_id = "get_reports_id_docx",
    tag = "operations",
    summary = "the report as a Word file (.docx)",
    params(
        ("id" = String, Path, description = "the report's id: `{warning id}.daily.{YYYYMMDD}`")
    ),
    responses(
        (status = 200, description = "the Word file", body = Vec<u8>, content_type = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        (status = 401, description = "no or unknown staff token", body = crate::web::api::ErrorBody),
        (status = 404, description = "no such report", body = crate::web::api::ErrorBody),
        (status = 500, description = "the store failed", body = crate::web::api::ErrorBody)
    )
)]
async fn docx(State(s): Shared, _staff: Staff, Path(id): Path<String>) -> Result<Response, ApiError> {
    let r = find(&s, &id)?;
    let bytes = to_docx(&r).map_err(ApiError::Internal)?;
    Ok((
        [
            (
                CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document".to_string(),
            ),
            (CONTENT_DISPOSITION, format!("attachment; filename=\"report-{}.docx\"", r.id)),
        ],
        bytes,
    )
        .into_response())
}
