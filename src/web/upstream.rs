//! Warnings from above (上级预警): a regional warning from the ministry or the province, recorded
//! over the API as a directive carrying its document number (文号), issuer and a level per group of
//! regions ([`crate::store::Upstream`]). The regions start at least at its level from its start, are
//! held there while it is in force, and follow their own forecasts again only when its lift arrives.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::forecast::parse_time;
use crate::domain::level::LevelId;
use crate::store::{DirectiveRecord, Upstream, UpstreamArea};
use crate::web::AppState;
use crate::web::api::paging::{self, Paging};
use crate::web::api::{ApiError, Staff, issuer_of, regions_below};

/// The routes of this module.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/upstream-warnings", get(list).post(record))
        .route("/api/v1/upstream-warnings/{id}/lift", post(lift))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    id: String,
    doc_no: String,
    issuer: String,
    issued_by: Option<String>,
    areas: Vec<AreaBody>,
    start: String,
    expected_end: Option<String>,
    #[serde(default)]
    exercise: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AreaBody {
    level: LevelId,
    regions: Vec<String>,
}

fn time(field: &str, v: &str) -> Result<DateTime<Utc>, ApiError> {
    parse_time(v)
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| ApiError::BadRequest(format!("{field}: \"{v}\" is not a time (RFC 3339 or YYYY-MM-DD HH:MM)")))
}

fn required(field: &str, v: &str) -> Result<String, ApiError> {
    let v = crate::web::clean_line(v, 200);
    if v.is_empty() {
        return Err(ApiError::BadRequest(format!("{field}: must not be empty")));
    }
    Ok(v)
}

/// `POST /api/v1/upstream-warnings`: records a warning from above; 201 with the events it caused.
/// Who may: as for a directive of its highest level issued by `issued_by` (default the home province).
async fn record(State(s): State<Arc<AppState>>, staff: Staff, body: Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let b: Body = serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
    let id = required("id", &b.id)?;
    let doc_no = required("doc_no", &b.doc_no)?;
    let issuer = required("issuer", &b.issuer)?;
    let issued_by = issuer_of(b.issued_by.as_deref(), s.engine.regions.scope())?;
    if b.areas.is_empty() {
        return Err(ApiError::BadRequest(
            "areas: name at least one group of regions and its level".into(),
        ));
    }
    let set = s.engine.playbooks.live();
    let mut areas = Vec::new();
    // The highest level named, by its rank in the issuing tier's playbook (for who may record it).
    let mut top: Option<(u32, LevelId)> = None;
    for (i, a) in b.areas.iter().enumerate() {
        let regions = regions_below(&s, &format!("areas[{i}].regions"), &a.regions, issued_by)?;
        for r in &regions {
            let Some(pb) = set.for_region(*r, s.engine.regions) else {
                return Err(ApiError::BadRequest(format!("areas[{i}].regions: no playbook governs region {r}")));
            };
            if pb.level(&a.level).is_none() {
                let known: Vec<&str> = pb.levels.iter().map(|l| l.id.as_str()).collect();
                return Err(ApiError::BadRequest(format!(
                    "areas[{i}].level: undefined level \"{}\" (playbook {} defines {})",
                    a.level,
                    pb.pin(),
                    known.join(", ")
                )));
            }
        }
        if let Some(rank) = set
            .for_region(issued_by, s.engine.regions)
            .and_then(|pb| pb.level(&a.level))
            .map(|l| l.rank)
            && top.as_ref().is_none_or(|(t, _)| rank > *t)
        {
            top = Some((rank, a.level.clone()));
        }
        areas.push(UpstreamArea {
            level: a.level.clone(),
            regions,
        });
    }
    let start = time("start", &b.start)?;
    let expected_end = b.expected_end.as_deref().map(|u| time("expected_end", u)).transpose()?;
    if expected_end.is_some_and(|e| e <= start) {
        return Err(ApiError::BadRequest("expected_end: must be after start".into()));
    }
    let mut regions: Vec<_> = areas.iter().flat_map(|a| a.regions.iter().copied()).collect();
    regions.sort();
    regions.dedup();
    let d = DirectiveRecord {
        id,
        name: format!("{issuer}预警（{doc_no}）"),
        min_level: top.map_or_else(|| areas[0].level.clone(), |(_, l)| l),
        regions,
        from: start,
        until: None,
        issued_by,
        active: true,
        exercise: b.exercise,
        upstream: Some(Upstream {
            doc_no,
            issuer,
            expected_end,
            areas,
        }),
    };
    let events = s.engine.issue_directive(d.clone(), &staff.name, &staff.role).await?;
    s.after_change();
    Ok((StatusCode::CREATED, Json(json!({ "upstream_warning": d, "events": events }))))
}

/// `GET /api/v1/upstream-warnings`: every warning from above recorded, paged by id.
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

/// `POST /api/v1/upstream-warnings/{id}/lift`: its own lift arrived; the regions follow their own
/// forecasts again (lifted at once when those call for nothing).
async fn lift(State(s): State<Arc<AppState>>, staff: Staff, UrlPath(id): UrlPath<String>) -> Result<Json<Value>, ApiError> {
    if s.engine.store.read(|r| r.directive(&id))?.is_none_or(|d| d.upstream.is_none()) {
        return Err(ApiError::NotFound(format!("no warning from above {id}")));
    }
    let events = s.engine.lift_directive(&id, &staff.name, &staff.role).await?;
    s.after_change();
    Ok(Json(json!({ "events": events })))
}
