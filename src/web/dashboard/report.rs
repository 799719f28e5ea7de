//! The reports up (信息报送) on the dashboard: `GET /reports/{id}`, a report as kept, printable (print
//! CSS), with its Word file; the warning page lists its warning's reports ([`reports_of_warning`]).

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::Dashboard;
use super::auth::Session;
use super::pages::{Page, error_page, store_failed};
use crate::engine::escalate::local;
use crate::engine::report::{self, report_json, title};
use crate::web::AppState;

type Shared = State<Arc<AppState>>;
type Dash = Extension<Arc<Dashboard>>;

/// `GET /reports/{id}`.
pub(super) async fn report_page(State(app): Shared, Extension(dash): Dash, session: Session, Path(id): Path<String>) -> Response {
    let r = match app.engine.store.read(|r| {
        let Some(rep) = report::report(r, &id)? else { return Ok(None) };
        let msg = match &rep.message {
            Some(m) => crate::notify::outbox::message(r, m)?,
            None => None,
        };
        Ok(Some((rep, msg)))
    }) {
        Ok(r) => r,
        Err(e) => return store_failed(&dash, &app, &session, e),
    };
    let Some((r, msg)) = r else {
        return error_page(
            &dash,
            &app,
            Some(&session),
            StatusCode::NOT_FOUND,
            "未找到报告",
            &format!("没有编号为 {id} 的报告。"),
        );
    };
    let page = Page::new(&dash, &app, Some(&session));
    let mut ctx = report_json(&r, &app.settings.http.public_url);
    ctx["as_of"] = json!(local(r.as_of));
    ctx["docx_href"] = json!(format!("/api/v1/reports/{id}/docx"));
    ctx["warning_href"] = json!(format!("/warnings/{}", r.warning_id));
    ctx["back"] = json!(format!("/reports/{id}"));
    ctx["sent"] = json!(sent_words(&r, msg.as_ref(), app.engine.clock.now()));
    let nav = if r.exercise { "drills" } else { "now" };
    page.render("report.html", nav, &title(&r), ctx, StatusCode::OK)
}

/// When the report's mail went out, against its deadline, in words.
fn sent_words(r: &report::DailyReport, msg: Option<&crate::notify::OutboxMessage>, now: chrono::DateTime<chrono::Utc>) -> String {
    let Some(m) = msg else {
        return if r.to.is_some() {
            "邮件记录缺失".into()
        } else {
            "仅存档，未发送".into()
        };
    };
    match m.sent_at {
        Some(at) => {
            let timing = match r.deadline {
                Some(d) if at <= d => "，在报送时限内".to_string(),
                Some(d) => format!("，超过报送时限{}分钟", (at - d).num_minutes().max(1)),
                None => String::new(),
            };
            format!("已于{}发送至{}{timing}", local(at), m.recipient.address)
        }
        None => match r.deadline {
            Some(d) if now > d => format!("尚未发出（已超过报送时限{}）", local(d)),
            _ => "等待发送".into(),
        },
    }
}

/// A warning's reports for its page: id, title, when made, link.
pub(super) fn reports_of_warning(app: &AppState, warning: &str) -> Vec<Value> {
    app.engine
        .store
        .read(|r| report::reports_of(r, warning))
        .unwrap_or_default()
        .iter()
        .map(|r| {
            json!({
                "id": r.id, "title": title(r), "as_of": local(r.as_of), "href": format!("/reports/{}", r.id),
                "to": r.to.as_ref().map(|t| t.name.clone()).unwrap_or_else(|| "未报送（预案未设上级报送单位）".into()),
            })
        })
        .collect()
}
