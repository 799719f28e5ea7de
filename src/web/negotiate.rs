//! The HTTP side of [`crate::engine::negotiate`]: routes and handlers.

use crate::domain::warning::Status;
use crate::engine::assign::{self, Entry, Party, Round};
use crate::engine::escalate::{self, local};
use crate::engine::inspect::{enterprise_in, refuse};
use crate::engine::negotiate::*;
use crate::notify::{AssignmentNotice, enqueue_for_assignment};
use crate::registry::{PartialPerSpecies, PerSpecies};
use crate::store::{RecordBody, Tx, events};
use crate::web::AppState;
use crate::web::api::{ApiError, Staff};
use crate::web::clean_line;
use crate::web::inspect::json_body;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// The routes of this module.
pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/warnings/{id}/negotiated", get(list).post(agree))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AgreeBody {
    uscc: String,
    commitment: String,
    /// t/day per species; a species left out is 0.
    #[schema(value_type = Object)]
    reductions: PartialPerSpecies<f64>,
    #[serde(default)]
    note: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/warnings/{id}/negotiated",
    operation_id = "post_warnings_id_negotiated",
    tag = "inspections",
    summary = "agree a negotiated reduction",
    params(
        ("id" = String, Path, description = "warning id")
    ),
    request_body(content = AgreeBody, content_type = "application/json"),
    responses(
        (status = 201, description = "the negotiated reduction and its link", body = Object),
        (status = 400, description = "bad input", body = crate::web::api::ErrorBody),
        (status = 401, description = "no or unknown staff token", body = crate::web::api::ErrorBody),
        (status = 403, description = "a role the root playbook defines", body = crate::web::api::ErrorBody),
        (status = 404, description = "no such warning or enterprise", body = crate::web::api::ErrorBody),
        (status = 409, description = "not now", body = crate::web::api::ErrorBody),
        (status = 500, description = "the store failed", body = crate::web::api::ErrorBody)
    )
)]
async fn agree(
    State(s): State<Arc<AppState>>,
    staff: Staff,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let b: AgreeBody = json_body(&body)?;
    let r = PerSpecies::from_fn(|p| b.reductions.get(p).copied().unwrap_or(0.0));
    if r.iter().any(|(_, x)| !(x.is_finite() && x >= 0.0)) {
        return Err(ApiError::BadRequest("reductions: each must be a number ≥ 0 (t/day)".into()));
    }
    if r.is_zero() {
        return Err(ApiError::BadRequest(
            "reductions: name at least one pollutant with a reduction above 0 (t/day)".into(),
        ));
    }
    let commitment = clean_line(&b.commitment, 500);
    if commitment.is_empty() {
        return Err(ApiError::BadRequest("commitment: say what the enterprise commits to".into()));
    }
    let c = Commitment {
        commitment,
        reductions: r,
        agreed_by: staff.name.clone(),
        note: clean_line(&b.note, 500),
    };
    let now = s.engine.clock.now();
    let (defaults, tokens, regions) = (s.defaults.clone(), s.tokens.clone(), s.engine.regions);
    let base = s.settings.http.public_url.trim_end_matches('/').to_string();
    let set = s.engine.playbooks.live();
    let (uscc, actor) = (b.uscc.clone(), staff.name.clone());
    let a = s
        .engine
        .store
        .write(move |tx: &mut Tx<'_>| {
            // Decide (read) first, then write.
            let w = tx.warning(&id)?.ok_or_else(|| refuse(404, format!("no warning {id}")))?;
            if !matches!(w.status, Status::Issued | Status::Active) {
                return Err(refuse(
                    409,
                    format!(
                        "warning {id} is {:?}: a reduction is agreed for an issued or active warning",
                        w.status
                    )
                    .to_lowercase(),
                ));
            }
            let e = enterprise_in(tx, &uscc)?.ok_or_else(|| refuse(404, format!("no enterprise {uscc} on the list")))?;
            if e.county != w.region && !regions.is_within(e.county, w.region) {
                return Err(refuse(
                    400,
                    format!(
                        "enterprise {uscc} ({}) is not in the region of warning {id} ({})",
                        regions.name(e.county),
                        regions.name(w.region)
                    ),
                ));
            }
            let to = escalate::enterprise_recipient(&e);
            tx.append(
                now,
                &actor,
                None,
                RecordBody::Other(events::Event::NegotiatedReductionAgreed(events::NegotiatedReductionAgreed {
                    commitment: c.clone(),
                    level: w.level.id.clone(),
                    name: e.name.clone(),
                    uscc: uscc.clone(),
                    warning_id: id.clone(),
                })),
            )?;
            let deadline = now + defaults.ack_deadline(&w.level).unwrap_or_else(|| chrono::Duration::hours(6));
            // A new round of the enterprise's own track: an earlier agreement of this warning is
            // superseded by it (derived), the list's measures are left alone.
            let round = Round {
                seq: 0,
                warning_id: id.clone(),
                warning_region: w.region,
                level: w.level.id.clone(),
                applies_from: w.start.max(now),
                ack_deadline: deadline,
                in_place_deadline: Some(crate::engine::assign::in_place_deadline(
                    w.start.max(now),
                    deadline,
                    defaults.in_place_after(&w.level).unwrap_or_else(chrono::Duration::zero),
                )),
                created_at: now,
                count: 1,
                track: format!("n:{uscc}"),
                negotiated: Some(c),
                exercise: w.exercise,
            };
            let entry = Entry {
                party: Party::Enterprise {
                    uscc: uscc.clone(),
                    county: e.county,
                },
                duty: None,
                acks: Vec::new(),
            };
            let round = assign::write_round(tx, round, std::slice::from_ref(&entry), &[])?;
            let a = round.assignment(0, entry, assign::AssignmentStatus::Active);
            let key = a.key.clone();
            let token = tokens.token(&a);
            escalate::schedule(tx, &defaults, &round)?;
            if let Some(to) = to {
                let level = set.for_region(w.region, regions).and_then(|p| p.level(&w.level));
                let mut data = escalate::task_json(&defaults, &e, &a);
                data["event"] = json!("negotiated_issued");
                data["warning_id"] = json!(id);
                data["region_name"] = json!(regions.name(w.region));
                data["issuer"] = json!(crate::domain::playbook::issuer_of(&set, w.region, regions).name);
                data["level_name"] = json!(level.map_or_else(|| w.level.to_string(), |l| l.name.clone()));
                data["response"] = json!(level.map(|l| l.response.clone()).unwrap_or_default());
                data["level_colour"] = json!(level.map(|l| l.colour.clone()));
                data["recipient"] = json!({ "name": to.name });
                data["ack_url"] = json!(format!("{base}/ack/{token}"));
                data["at"] = json!(local(now));
                let notice = AssignmentNotice {
                    assignment_id: key.clone(),
                    kind: "negotiated".into(),
                    to,
                    template: "negotiated_issued".into(),
                    data,
                    region: Some(e.county),
                };
                enqueue_for_assignment(tx, now, notice)?;
            }
            Ok(a)
        })
        .await
        .map_err(ApiError::from)?;
    crate::web::log_recorded(&staff.name, "agree negotiated reduction", &a.key, Some(&a.warning_id));
    s.after_change();
    let link = format!("{}/ack/{}", s.settings.http.public_url.trim_end_matches('/'), s.tokens.token(&a));
    Ok((StatusCode::CREATED, Json(json!({ "assignment": a, "ack_url": link }))))
}

#[utoipa::path(
    get,
    path = "/api/v1/warnings/{id}/negotiated",
    operation_id = "get_warnings_id_negotiated",
    tag = "inspections",
    summary = "negotiated reductions (协商减排) of a warning, by assignment key",
    params(
        ("id" = String, Path, description = "warning id"),
        ("limit" = Option<u32>, Query, description = "items per page (more than 1000 is taken as 1000)", minimum = 1, maximum = 1000),
        ("after" = Option<String>, Query, description = "the cursor: an assignment key; the page holds the items after it")
    ),
    responses(
        (status = 200, description = "a page", body = crate::web::api::openapi::GetWarningsIdNegotiatedPage),
        (status = 400, description = "a bad `limit` or `after`", body = crate::web::api::ErrorBody),
        (status = 401, description = "no or unknown staff token", body = crate::web::api::ErrorBody),
        (status = 404, description = "no such warning", body = crate::web::api::ErrorBody),
        (status = 500, description = "the store failed", body = crate::web::api::ErrorBody)
    )
)]
async fn list(
    State(s): State<Arc<AppState>>,
    _staff: Staff,
    Path(id): Path<String>,
    Query(q): Query<crate::web::api::Paging>,
) -> Result<Json<Value>, ApiError> {
    let (w, list) = s.engine.store.read(|r| Ok((r.warning(&id)?, of_warning(r, &id)?)))?;
    if w.is_none() {
        return Err(ApiError::NotFound(format!("no warning {id}")));
    }
    let page = q.page(list, crate::web::api::paging::WHOLE, |a| a.key.clone())?;
    Ok(Json(json!({ "negotiated": page.items, "next_after": page.next })))
}
