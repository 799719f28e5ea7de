//! The authority rules of [`crate::domain::authority`] applied to routes.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::domain::authority::require_staff_role;
use crate::web::AppState;
use crate::web::api::{ApiError, Staff};

/// Middleware for routes whose handlers live elsewhere (inspections, negotiated reductions, the
/// consultation's record and approval forms): a
/// write (any method but GET/HEAD) needs a role the playbook defines. Reads pass through.
pub async fn staff_writes(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if matches!(*request.method(), axum::http::Method::GET | axum::http::Method::HEAD) {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let staff = match Staff::from_request_parts(&mut parts, &state).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let path = parts.uri.path();
    let what = if path.contains("/negotiated") {
        "record a negotiated reduction"
    } else if path.contains("/opinion") || path.contains("/approvals") {
        "record a consultation's record or an approval form"
    } else {
        "open or record an inspection"
    };
    if let Err(r) = require_staff_role(&state.engine.playbooks.live(), &staff.role, what) {
        return ApiError::Forbidden(r.0).into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}
