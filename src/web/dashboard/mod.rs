//! The duty-staff dashboard (值班台): server-rendered Chinese pages at `/`, for running an episode from
//! the browser.
//!
//! In: requests from logged-in duty staff (the `hazeflow_session` cookie holds their staff token, as
//! the API's [`Staff`](crate::web::api::Staff) extractor expects). Out: HTML pages rendered from the
//! operator-editable templates in `playbooks/templates/dashboard/`, and calls on the [`Engine`]
//! (sign, lift, cancel, consult, submit a forecast) or on [`AppState::reload_playbooks`]. Reads the
//! store through its read snapshots; keeps no state of its own besides a per-process CSRF key.
//!
//! - `auth.rs`: login, logout, the [`Session`](auth::Session) extractor, CSRF tokens on every form;
//! - `views.rs`: view models: the region grid, warnings, proposals, event labels, times, colours;
//! - `chart.rs`: the forecast chart (AQI per day against the playbook's thresholds) as SVG geometry;
//! - `pages.rs`: the handlers, one per page or form;
//! - `consult.rs`: the consultation's record (会商意见) and the approval form (审批表, printable);
//! - `list.rs`: the emergency reduction list: enterprises, an enterprise's measures, the reports;
//! - `response.rs`: a warning's acknowledgement progress, who is missing, inspections and summary,
//!   read from the `ack`, `assign`, `inspect` and `episode` modules;
//! - `templates.rs`: the template environment (files on disk first, the shipped copies embedded);
//! - `static/`: one stylesheet and a little JavaScript, embedded.
//!
//! Routes: `GET /login`, `POST /login`, `POST /logout`, `GET /` (now: grid, warnings, proposals,
//! directives), `GET /consultations`, `POST /consultations/run`, `GET /consultations/{seq}`,
//! `POST /consultations/{seq}/opinion`, `GET /approvals/{id}`, `POST /approvals/{id}/complete|relay`,
//! `POST /forecasts`,
//! `GET /warnings/{id}`, `POST /warnings/{id}/sign|lift|cancel`, `GET /playbooks`,
//! `POST /playbooks/reload`, `POST /playbooks/check`, `GET /list` (filters: `region`, `industry`,
//! `grade`, `q`, `page`), `GET /list/{uscc}`, `GET /list/reports`,
//! `GET /static/dashboard/{app.css,app.js}`.
//!
//! [`Engine`]: crate::engine::Engine

mod auth;
mod chart;
mod consult;
mod list;
mod pages;
mod report;
mod response;
pub mod templates;
mod views;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::{Extension, Router};

use crate::web::AppState;

pub use auth::SESSION_COOKIE;
pub use views::{contrast_ratio, text_colour_for};

/// The dashboard's session keys in service, replaced by a reload.
pub type SessionKeyCell = Arc<std::sync::RwLock<crate::engine::link_keys::SessionKeys>>;

/// What the dashboard keeps for the life of the process.
pub struct Dashboard {
    /// Sign CSRF tokens (`k{N}.{mac}`): the session keys (`session-keys/k{N}.key`, the legacy
    /// `session.key` or `HAZEFLOW_SESSION_KEY` as `k0`; in the store when it is shared by several
    /// nodes), kept across restarts and read again on every reload: the newest signs, the others
    /// still verify.
    csrf_keys: SessionKeyCell,
    /// Whether cookies get `Secure` (the public URL is https).
    secure_cookies: bool,
}

impl Dashboard {
    /// Cookies are `Secure` when the public URL is https; the pages' templates are the application's
    /// ([`crate::web::Pages`]).
    pub fn new(public_url: &str, csrf_keys: SessionKeyCell) -> Dashboard {
        Dashboard {
            csrf_keys,
            secure_cookies: public_url.starts_with("https://"),
        }
    }
}

/// The dashboard's routes, to merge beside the API before `with_state`.
pub fn router(settings: &crate::config::Settings, keys: SessionKeyCell) -> anyhow::Result<Router<Arc<AppState>>> {
    let dash = Arc::new(Dashboard::new(&settings.http.public_url, keys));
    Ok(Router::new()
        .route("/", get(pages::now))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/consultations", get(pages::consultations))
        .route("/drills", get(pages::drills))
        .route("/consultations/run", post(pages::consult_now))
        .route("/consultations/{seq}", get(consult::opinion_page))
        .route("/consultations/{seq}/opinion", post(consult::record_opinion))
        .route("/approvals/{id}", get(consult::approval_page))
        .route("/approvals/{id}/complete", post(consult::complete))
        .route("/approvals/{id}/relay", post(consult::relay))
        .route("/reports/{id}", get(report::report_page))
        .route("/forecasts", post(pages::submit_forecast))
        .route("/warnings/{id}", get(pages::warning))
        .route("/warnings/{id}/sign", post(pages::sign))
        .route("/warnings/{id}/lift", post(pages::lift))
        .route("/warnings/{id}/cancel", post(pages::cancel))
        .route("/list", get(list::list))
        .route("/list/reports", get(list::reports))
        .route("/list/{uscc}", get(list::enterprise))
        .route("/playbooks", get(pages::playbooks))
        .route("/playbooks/reload", post(pages::reload))
        .route("/playbooks/check", post(pages::check))
        .route("/static/dashboard/app.css", get(pages::stylesheet))
        .route("/static/dashboard/app.js", get(pages::script))
        .layer(Extension(dash)))
}
