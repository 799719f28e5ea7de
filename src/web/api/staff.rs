//! Staff authentication: `Authorization: Bearer TOKEN`, checked against the configured hashes.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::ApiError;
use crate::config::hash_token;
use crate::web::AppState;

/// A member of the duty staff, as their token says.
#[derive(Debug, Clone)]
pub struct Staff {
    /// Name.
    pub name: String,
    /// Role (a playbook role id).
    pub role: String,
}

impl FromRequestParts<Arc<AppState>> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty());
        // The dashboard's session cookie is accepted for reads only: a write through the JSON API
        // needs the bearer header, which a cross-site form can never send (the dashboard's own
        // forms carry a CSRF token and go through its routes).
        let token = match token {
            Some(t) => t.to_string(),
            None if matches!(parts.method, axum::http::Method::GET | axum::http::Method::HEAD) => {
                cookie_token(parts).ok_or(ApiError::Unauthorized)?
            }
            None => return Err(ApiError::Unauthorized),
        };
        let staff = state.staff_for(&hash_token(&token)).ok_or(ApiError::Unauthorized)?;
        tracing::Span::current().record("actor", staff.name.as_str());
        Ok(staff)
    }
}

/// The dashboard's session cookie carries the same token.
fn cookie_token(parts: &Parts) -> Option<String> {
    let cookies = parts.headers.get(axum::http::header::COOKIE)?.to_str().ok()?;
    cookies
        .split(';')
        .map(str::trim)
        .find_map(|c| c.strip_prefix("hazeflow_session="))
        .map(str::to_string)
}
