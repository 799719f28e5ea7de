//! The handlers: one per page or form. Pages read a store snapshot and render; forms call the engine
//! and redirect back with a flash message (post/redirect/get), except the playbook check, which
//! changes nothing and renders its result at once.

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, OnceLock};

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, SET_COOKIE, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::Dashboard;
use super::auth::{FlashKind, Posted, Session};
use super::chart::{Chart, forecast_chart};
use super::views::{self, Lookup, Palette, local_time, rule_zh, short_date};
use crate::domain::level::LevelId;
use crate::domain::region::RegionCode;
use crate::domain::warning::{Event, EventKind, RegionState, Status};
use crate::engine::{EngineError, WarningAction};
use crate::store::{ConsultationRecord, RecordBody};
use crate::web::AppState;

const CSS: &str = include_str!("static/app.css");
const JS: &str = include_str!("static/app.js");

/// Short content hashes, so a new build's assets are never served from a stale cache.
fn asset_version(which: &str) -> &'static str {
    static CSS_V: OnceLock<String> = OnceLock::new();
    static JS_V: OnceLock<String> = OnceLock::new();
    let (cell, text) = if which == "css" { (&CSS_V, CSS) } else { (&JS_V, JS) };
    cell.get_or_init(|| hex::encode(&Sha256::digest(text.as_bytes())[..6]))
}

/// A page being put together: who is looking, and the level colours it uses.
pub(super) struct Page<'a> {
    dash: &'a Dashboard,
    app: &'a AppState,
    session: Option<&'a Session>,
    /// The colour classes the page needs.
    pub palette: Palette,
}

impl<'a> Page<'a> {
    /// Starts a page; the live playbooks' colours are always there (the legend, the tiles).
    pub(super) fn new(dash: &'a Dashboard, app: &'a AppState, session: Option<&'a Session>) -> Page<'a> {
        let mut palette = Palette::default();
        palette.add_set(&app.engine.playbooks.live());
        Page {
            dash,
            app,
            session,
            palette,
        }
    }

    /// Renders `template` with the page's context (`ctx` plus what every page has) and the security
    /// headers; a flash message shown here is cleared.
    pub(super) fn render(self, template: &str, nav: &str, title: &str, ctx: Value, status: StatusCode) -> Response {
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        let set = self.app.engine.playbooks.live();
        let root = set.roots().next().cloned();
        let staff = self
            .session
            .map(|s| json!({ "name": s.staff.name, "role": s.staff.role, "role_name": views::role_name(root.as_deref(), &s.staff.role) }));
        let mut ctx = match ctx {
            Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        let base = json!({
            "title": title,
            "nav": nav,
            "staff": staff,
            "csrf": self.session.map_or("", |s| s.csrf.as_str()),
            "flash": self.session.and_then(|s| s.flash.clone()),
            "nonce": nonce,
            "palette": self.palette.swatches(),
            "css_href": format!("/static/dashboard/app.css?v={}", asset_version("css")),
            "js_href": format!("/static/dashboard/app.js?v={}", asset_version("js")),
            "now": local_time(self.app.engine.clock.now()),
        });
        if let Value::Object(b) = base {
            for (k, v) in b {
                ctx.entry(k).or_insert(v);
            }
        }
        let html = match self.app.pages.get().dashboard.render(template, &ctx) {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(template, error = %format!("{e:#}"), "a dashboard template failed");
                return (StatusCode::INTERNAL_SERVER_ERROR, format!("template {template} failed: {e}")).into_response();
            }
        };
        let mut r = (status, html).into_response();
        let h = r.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        h.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
        let csp = format!(
            "default-src 'none'; style-src 'self' 'nonce-{nonce}'; script-src 'self'; img-src 'self' data:; connect-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        );
        if let Ok(v) = HeaderValue::from_str(&csp) {
            h.insert(CONTENT_SECURITY_POLICY, v);
        }
        if self.session.is_some_and(|s| s.flash.is_some()) {
            h.append(SET_COOKIE, self.dash.clear_cookie("hazeflow_flash", "/"));
        }
        r
    }
}

/// An error page (a bad form, a missing warning, a store failure).
pub(super) fn error_page(
    dash: &Dashboard,
    app: &AppState,
    session: Option<&Session>,
    status: StatusCode,
    title: &str,
    message: &str,
) -> Response {
    Page::new(dash, app, session).render(
        "error.html",
        "",
        title,
        json!({ "heading": title, "message": message, "status": status.as_u16() }),
        status,
    )
}

pub(super) fn store_failed(dash: &Dashboard, app: &AppState, session: &Session, e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "dashboard could not read the store");
    error_page(
        dash,
        app,
        Some(session),
        StatusCode::SERVICE_UNAVAILABLE,
        "暂时无法读取数据",
        &format!("存储出错：{e}"),
    )
}

pub(super) fn lookup(app: &AppState) -> Lookup<'_> {
    Lookup {
        set: app.engine.playbooks.live(),
        playbooks: &app.engine.playbooks,
        regions: app.engine.regions,
    }
}

type Shared = State<Arc<AppState>>;
type Dash = Extension<Arc<Dashboard>>;

/// `GET /drills`: the drills (演练) — their proposals to sign, the drill warnings in force and every
/// drill's report (minutes from the notice to each acknowledgement stage, per region). Nothing here
/// is counted with the real warnings of `/`.
pub(super) async fn drills(State(app): Shared, Extension(dash): Dash, session: Session) -> Response {
    let now = app.engine.clock.now();
    let read = app.engine.store.read(|r| {
        let states = r.drill_states()?;
        let mut reports = Vec::new();
        for w in crate::engine::drill::drills(r)? {
            if let Some(rep) = crate::engine::drill::report(r, &w.id, &app.defaults, app.engine.regions, now)? {
                reports.push(rep);
            }
        }
        Ok((states, reports))
    });
    let (states, reports) = match read {
        Ok(d) => d,
        Err(e) => return store_failed(&dash, &app, &session, e),
    };
    let states: BTreeMap<RegionCode, RegionState> = states.into_iter().collect();
    let look = lookup(&app);
    let mut page = Page::new(&dash, &app, Some(&session));
    let warnings = views::warning_rows(&look, &states, &mut page.palette);
    let proposals = views::proposals(&look, &states, &session.staff.role, &mut page.palette);
    let reports: Vec<Value> = reports
        .iter()
        .map(|rep| {
            let mut v = json!(rep);
            v["href"] = json!(views::warning_href(&rep.warning_id));
            v["issued"] = json!(rep.issued_at.map(local_time));
            v["ended"] = json!(rep.ended_at.map(local_time));
            v["status_name"] = json!(views::status_zh(rep.status));
            v
        })
        .collect();
    let ctx = json!({ "warnings": warnings, "proposals": proposals, "reports": reports, "back": "/drills" });
    page.render("drills.html", "drills", "演练", ctx, StatusCode::OK)
}

/// `GET /`: the province at a glance, what awaits sign-off, the live warnings and directives.
pub(super) async fn now(State(app): Shared, Extension(dash): Dash, session: Session) -> Response {
    let (states, directives) = match app.engine.store.read(|r| Ok((r.region_states()?, r.directives()?))) {
        Ok(d) => d,
        Err(e) => return store_failed(&dash, &app, &session, e),
    };
    let states: BTreeMap<RegionCode, RegionState> = states.into_iter().collect();
    let look = lookup(&app);
    let mut page = Page::new(&dash, &app, Some(&session));
    let grid = views::province(look.regions).map(|p| views::grid(p, &look, &states, &mut page.palette));
    let legend = views::legend(&look.set, &mut page.palette);
    let warnings = views::warning_rows(&look, &states, &mut page.palette);
    let proposals = views::proposals(&look, &states, &session.staff.role, &mut page.palette);
    let directives = views::directive_rows(&look, &directives);
    let ctx =
        json!({ "grid": grid, "legend": legend, "warnings": warnings, "proposals": proposals, "directives": directives, "back": "/" });
    page.render("now.html", "now", "态势", ctx, StatusCode::OK)
}

/// One region's latest assessment, as a card of the consultations page.
#[derive(Serialize)]
struct ConsultCard {
    region: String,
    region_name: String,
    at: String,
    trigger: String,
    level: LevelId,
    level_name: String,
    class: String,
    rule: String,
    days: String,
    forecast_id: String,
    playbook: String,
    chart: Chart,
}

/// What a consultation's trigger says, in Chinese.
pub(super) fn trigger_zh(trigger: &str) -> String {
    if trigger == "forecast received" {
        return "收到预报后会商".into();
    }
    match trigger.strip_prefix("on demand by ") {
        Some(who) => format!("按需会商（{who}）"),
        None => trigger.to_string(),
    }
}

/// The latest assessment of each region, over the last consultations, most severe first.
fn consult_cards(look: &Lookup<'_>, list: &[ConsultationRecord], palette: &mut Palette) -> Vec<ConsultCard> {
    let mut latest = BTreeMap::new();
    // A drill's consultation (演练) is not the region's latest assessment: the drills page shows it.
    for c in list.iter().filter(|c| !c.exercise) {
        for a in &c.assessments {
            latest.entry(a.region).or_insert((c, a));
        }
    }
    let mut cards: Vec<(u32, ConsultCard)> = latest
        .into_values()
        .map(|(c, a)| {
            let pb = look.for_pin(&a.playbook, a.region);
            let pb = pb.as_deref();
            let class = views::level_class(pb, a.level_or_none(), palette);
            let chart = forecast_chart(&a.window, &a.days, &class, pb, palette);
            (
                a.rank,
                ConsultCard {
                    region: a.region.to_string(),
                    region_name: look.regions.name(a.region),
                    at: local_time(c.at),
                    trigger: trigger_zh(&c.trigger),
                    level: a.level_or_none().into(),
                    level_name: views::level_name(pb, a.level_or_none()),
                    class,
                    rule: a.rule.as_deref().map_or_else(|| "未达到任何级别".into(), rule_zh),
                    days: a.days.iter().map(|d| short_date(*d)).collect::<Vec<_>>().join("、"),
                    forecast_id: a.forecast_id.clone(),
                    playbook: a.playbook.clone(),
                    chart,
                },
            )
        })
        .collect();
    cards.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.region.cmp(&b.1.region)));
    cards.into_iter().map(|(_, c)| c).collect()
}

/// `GET /consultations`: the latest assessment per region with its chart, the proposals, a
/// consultation on demand and a forecast form.
pub(super) async fn consultations(State(app): Shared, Extension(dash): Dash, session: Session) -> Response {
    let (list, states) = match app.engine.store.read(|r| Ok((r.consultations(20)?, r.region_states()?))) {
        Ok(d) => d,
        Err(e) => return store_failed(&dash, &app, &session, e),
    };
    let states: BTreeMap<RegionCode, RegionState> = states.into_iter().collect();
    let look = lookup(&app);
    let mut page = Page::new(&dash, &app, Some(&session));
    let proposals = views::proposals(&look, &states, &session.staff.role, &mut page.palette);
    let cards = consult_cards(&look, &list, &mut page.palette);
    let last = list
        .first()
        .map(|c| json!({ "seq": c.seq, "at": local_time(c.at), "trigger": trigger_zh(&c.trigger), "regions": c.assessments.len() }));
    let ctx = json!({ "cards": cards, "proposals": proposals, "last": last, "back": "/consultations" });
    page.render("consultations.html", "consultations", "会商", ctx, StatusCode::OK)
}

/// A row of a warning's history.
#[derive(Serialize)]
struct HistoryRow {
    seq: u64,
    at: String,
    recorded_at: String,
    label: String,
    detail: String,
    actor: String,
    reason: String,
}

/// `GET /warnings/{id}`: one warning, its history and what can be done with it.
pub(super) async fn warning(
    State(app): Shared,
    Extension(dash): Dash,
    session: Session,
    Path(id): Path<String>,
    axum::extract::Query(iq): axum::extract::Query<super::response::InspectionQuery>,
) -> Response {
    let (w, history) = match app.engine.store.read(|r| Ok((r.warning(&id)?, r.warning_history(&id)?))) {
        Ok(d) => d,
        Err(e) => return store_failed(&dash, &app, &session, e),
    };
    let Some(w) = w else {
        return error_page(
            &dash,
            &app,
            Some(&session),
            StatusCode::NOT_FOUND,
            "未找到预警",
            &format!("没有编号为 {id} 的预警。"),
        );
    };
    let look = lookup(&app);
    let pb = look.for_warning(&w);
    let mut page = Page::new(&dash, &app, Some(&session));
    let row = views::warning_row(&look, &w, &mut page.palette);
    let rows: Vec<HistoryRow> = history
        .iter()
        .filter_map(|rec| match &rec.body {
            RecordBody::Warning { event, .. } => {
                let (label, detail) = views::event_zh(&event.kind, pb.as_deref());
                Some(HistoryRow {
                    seq: rec.seq,
                    at: local_time(event.at),
                    recorded_at: local_time(rec.recorded_at),
                    label,
                    detail,
                    actor: views::actor_zh(&event.actor),
                    reason: event.reason.clone(),
                })
            }
            _ => None,
        })
        .collect();
    let to_sign = match (w.status, &w.pending_change) {
        (Status::Pending, _) => Some(w.level.clone()),
        (s, Some(p)) if s.is_live() => Some(p.level.clone()),
        _ => None,
    };
    let held = !w.holds.is_empty();
    // A consultation's proposal waits for its record (会商意见) where the playbook says so.
    let awaited = if to_sign.is_some() && pb.as_ref().is_some_and(|p| p.record_before_sign) {
        app.engine
            .store
            .read(|r| crate::engine::opinion::record_awaited(r, &w.id))
            .ok()
            .flatten()
    } else {
        None
    };
    let actions = json!({
        "sign": to_sign.as_ref().map(|l| json!({
            "record_awaited": awaited,
            "level_name": views::level_name(pb.as_deref(), l),
            "needs": views::needs_zh(pb.as_deref(), l).unwrap_or_else(|| "自动".into()),
            "allowed": pb.as_ref().is_some_and(|p| p.may_sign(l, &session.staff.role)),
        })),
        "lift": w.status == Status::Active && !held,
        "cancel": matches!(w.status, Status::Pending | Status::Issued) && !held,
        "held": held,
    });
    // The timeline in force and ahead: what the latest consultation plans and what is decided.
    let timeline = crate::domain::warning::timeline_of(&w, pb.as_deref());
    let next = w.next.as_ref().map(|n| match &n.level {
        Some(l) => format!(
            "自 {} 起执行{}（已决定并通知）",
            local_time(n.at),
            views::level_name(pb.as_deref(), l)
        ),
        None => format!("于 {} 解除（已决定并通知）", local_time(n.at)),
    });
    let href = views::warning_href(&w.id);
    let ctx = json!({
        "w": row,
        "issued_at": w.issued_at.map(local_time),
        "ended_at": w.ended_at.map(local_time),
        "playbook": w.playbook,
        "timeline": timeline,
        "next": next,
        "lead_missed": w.lead_missed,
        "history": rows,
        "response": super::response::of_warning(&app, &w.id).with_inspections_page(&w.id, &iq),
        "actions": actions,
        "approvals": super::consult::forms_of_warning(&app, &w.id),
        "reports": super::report::reports_of_warning(&app, &w.id),
        "sign_action": format!("{href}/sign"),
        "lift_action": format!("{href}/lift"),
        "cancel_action": format!("{href}/cancel"),
        "back": href,
    });
    let (nav, title) = if w.exercise {
        ("drills", format!("演练预警 {}", w.id))
    } else {
        ("now", format!("预警 {}", w.id))
    };
    page.render("warning.html", nav, &title, ctx, StatusCode::OK)
}

/// A form on a warning: where to go afterwards and, for lift/cancel, why.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ActionForm {
    back: String,
    reason: String,
    /// On the sign form: why sign before the consultation's record (未完成会商意见即签发的理由).
    without_record: String,
}

/// A local path to go back to; anything else goes home.
fn back_to(back: &str) -> String {
    if back.starts_with('/') && !back.starts_with("//") && !back.contains(['\\', '\r', '\n']) {
        back.to_string()
    } else {
        "/".into()
    }
}

pub(super) fn redirect_with(dash: &Dashboard, to: &str, kind: FlashKind, text: &str) -> Response {
    // A cookie holds about 4 KB; the message is hex-encoded.
    let mut end = text.len().min(1500);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let text = if end < text.len() {
        format!("{}…", &text[..end])
    } else {
        text.to_string()
    };
    let mut r = Redirect::to(&back_to(to)).into_response();
    r.headers_mut().append(SET_COOKIE, dash.flash(kind, &text));
    r
}

/// A refusal as duty staff read it: the kind, then the engine's reason in Chinese (the API and logs keep
/// the English).
pub(super) fn engine_error_zh(e: &EngineError) -> String {
    let zh = crate::domain::playbook::zh::message;
    match e {
        EngineError::Forbidden(m) => format!("无权操作：{}", zh(m)),
        EngineError::NotFound(m) => format!("未找到：{}", zh(m)),
        EngineError::Conflict(m) => format!("当前状态不允许此操作：{}", zh(m)),
        EngineError::BadInput(m) => format!("输入有误：{}", zh(m)),
        EngineError::Store(s) => {
            tracing::error!(error = %s, "a dashboard action could not be recorded");
            "存储暂时无法写入，操作未完成，请稍后重试。".into()
        }
    }
}

/// What the recorded events did, for the flash message.
fn describe(look: &Lookup<'_>, events: &[Event]) -> String {
    let mut out = Vec::new();
    for e in events {
        let pb = look.for_pin(&e.playbook, e.region);
        let pb = pb.as_deref();
        // A drill's actions say so (演练).
        let region = format!("{}{}", if e.exercise { "【演练】" } else { "" }, look.regions.name(e.region));
        match &e.kind {
            EventKind::Issued { level, start, .. } => {
                out.push(format!(
                    "已签发：{region} {}，{} 起生效",
                    views::level_name(pb, level),
                    local_time(*start)
                ));
            }
            EventKind::LevelChanged { from, to, .. } => {
                out.push(format!(
                    "已调整：{region} {} → {}",
                    views::level_name(pb, from),
                    views::level_name(pb, to)
                ));
            }
            EventKind::Lifted => out.push(format!("已解除：{region}")),
            EventKind::Cancelled => out.push(format!("已取消：{region}")),
            EventKind::Withdrawn => out.push(format!("已撤回提议：{region}")),
            EventKind::Started => out.push(format!("已生效：{region}")),
            _ => {}
        }
    }
    if out.is_empty() { "已完成。".into() } else { out.join("；") }
}

async fn act(app: &AppState, dash: &Dashboard, id: &str, action: WarningAction, back: &str, failed: &str) -> Response {
    match app.engine.warning_action(id, action).await {
        Ok(events) => {
            app.after_change();
            redirect_with(dash, back, FlashKind::Ok, &describe(&lookup(app), &events))
        }
        Err(e) => redirect_with(dash, back, FlashKind::Error, &format!("{failed}：{}", engine_error_zh(&e))),
    }
}

/// `POST /warnings/{id}/sign`.
pub(super) async fn sign(State(app): Shared, Extension(dash): Dash, Path(id): Path<String>, posted: Posted<ActionForm>) -> Response {
    let staff = &posted.session.staff;
    tracing::info!(warning = %id, staff = %staff.name, role = %staff.role, "sign from the dashboard");
    let why = posted.form.without_record.trim();
    let action = WarningAction::Sign {
        signer: staff.name.clone(),
        role: staff.role.clone(),
        without_record: (!why.is_empty()).then(|| why.to_string()),
    };
    match app.engine.warning_action(&id, action).await {
        Ok(events) => {
            app.after_change();
            redirect_with(&dash, &posted.form.back, FlashKind::Ok, &describe(&lookup(&app), &events))
        }
        // Refused for want of the consultation's record: the warning page says so and offers the reason's field.
        Err(e @ EngineError::Conflict(_)) if e.to_string().contains("须先完成会商意见") => redirect_with(
            &dash,
            &views::warning_href(&id),
            FlashKind::Error,
            &format!("签发未成功：{}", engine_error_zh(&e)),
        ),
        Err(e) => redirect_with(
            &dash,
            &posted.form.back,
            FlashKind::Error,
            &format!("签发未成功：{}", engine_error_zh(&e)),
        ),
    }
}

/// `POST /warnings/{id}/lift`.
pub(super) async fn lift(State(app): Shared, Extension(dash): Dash, Path(id): Path<String>, posted: Posted<ActionForm>) -> Response {
    let reason = non_empty(&posted.form.reason, "值班台解除");
    let action = WarningAction::Lift {
        actor: posted.session.staff.name.clone(),
        role: posted.session.staff.role.clone(),
        reason,
    };
    act(&app, &dash, &id, action, &posted.form.back, "解除未成功").await
}

/// `POST /warnings/{id}/cancel`.
pub(super) async fn cancel(State(app): Shared, Extension(dash): Dash, Path(id): Path<String>, posted: Posted<ActionForm>) -> Response {
    let reason = non_empty(&posted.form.reason, "值班台取消");
    let action = WarningAction::Cancel {
        actor: posted.session.staff.name.clone(),
        role: posted.session.staff.role.clone(),
        reason,
    };
    act(&app, &dash, &id, action, &posted.form.back, "取消未成功").await
}

fn non_empty(s: &str, default: &str) -> String {
    let s = s.trim();
    if s.is_empty() {
        default.to_string()
    } else {
        s.chars().take(500).collect()
    }
}

/// `POST /consultations/run`: a consultation now.
pub(super) async fn consult_now(State(app): Shared, Extension(dash): Dash, posted: Posted<ActionForm>) -> Response {
    let trigger = format!("on demand by {}", posted.session.staff.name);
    match app.engine.consult(&trigger, None, None).await {
        Ok(rec) => {
            app.after_change();
            let n = rec.map_or(0, |c| c.assessments.len());
            redirect_with(&dash, "/consultations", FlashKind::Ok, &format!("会商完成：评估了 {n} 个地区。"))
        }
        Err(e) => redirect_with(
            &dash,
            "/consultations",
            FlashKind::Error,
            &format!("会商未完成：{}", engine_error_zh(&e)),
        ),
    }
}

/// The forecast form.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ForecastForm {
    name: String,
    forecast: String,
}

/// `POST /forecasts`: a forecast pasted (or read from a file by the page's script).
pub(super) async fn submit_forecast(State(app): Shared, Extension(dash): Dash, posted: Posted<ForecastForm>) -> Response {
    let name = non_empty(&posted.form.name, "dashboard.csv");
    // Browsers send CRLF from a textarea.
    let text = posted.form.forecast.replace("\r\n", "\n");
    let via = format!("dashboard:{}", posted.session.staff.name);
    match app.engine.submit_forecast(&name, text.as_bytes(), &via).await {
        Ok(sub) if sub.duplicate => redirect_with(&dash, "/consultations", FlashKind::Ok, "这份预报此前已接收，未重复记录。"),
        Ok(sub) => {
            if app.consult_on_forecast {
                app.trigger_consultation();
            }
            redirect_with(
                &dash,
                "/consultations",
                FlashKind::Ok,
                &format!("预报已接收（{} 个地区），正在会商，稍后刷新查看。", sub.regions),
            )
        }
        Err(crate::engine::SubmitError::Rejected(e)) => redirect_with(
            &dash,
            "/consultations",
            FlashKind::Error,
            &format!("预报被拒绝，未作任何更改：{}", e.zh()),
        ),
        Err(e @ crate::engine::SubmitError::NotRecorded { .. }) => {
            tracing::error!(error = %e, "a forecast from the dashboard could not be recorded");
            redirect_with(
                &dash,
                "/consultations",
                FlashKind::Error,
                "存储暂时无法写入，预报未记录，请稍后重试。",
            )
        }
    }
}

/// A live playbook, as a row.
#[derive(Serialize)]
struct PlaybookRow {
    id: String,
    name: String,
    version: String,
    digest: String,
    file: String,
    scope: String,
    parent: Option<String>,
    levels: Vec<Value>,
}

/// The result of checking an edited file.
#[derive(Serialize, Default)]
struct CheckResult {
    file: String,
    yaml: String,
    ok: bool,
    errors: Vec<String>,
    playbooks: Vec<Value>,
}

fn playbooks_page(app: &AppState, dash: &Dashboard, session: &Session, check: Option<CheckResult>) -> Response {
    let look = lookup(app);
    let mut page = Page::new(dash, app, Some(session));
    let rows: Vec<PlaybookRow> = look
        .set
        .iter()
        .map(|p| PlaybookRow {
            id: p.id.clone(),
            name: p.name.clone(),
            version: p.version.clone(),
            digest: p.digest.clone(),
            file: p.file.display().to_string(),
            scope: format!("{}（{}）", look.regions.name(p.scope), p.scope),
            parent: p.parent.clone(),
            levels: p
                .levels
                .iter()
                .map(|l| {
                    json!({ "name": l.name, "class": page.palette.class(&l.colour), "sign_off": match &l.sign_off {
                        crate::domain::playbook::SignOff::Auto => "自动".to_string(),
                        crate::domain::playbook::SignOff::Role(r) => views::role_name(Some(p), r),
                    }})
                })
                .collect(),
        })
        .collect();
    let status = app.engine.playbooks.status();
    // Staff read the errors in Chinese, at the same file:line:column (the API and logs keep the English).
    let errors: Vec<String> = status.errors.iter().map(|e| crate::domain::playbook::zh::line(e)).collect();
    let reload = json!({ "at": status.at.map(local_time), "versions": status.versions, "errors": errors });
    let files = live_files(&app.settings.playbooks)
        .unwrap_or_default()
        .into_iter()
        .map(|(p, _)| file_name(&p))
        .collect::<Vec<_>>();
    let ctx = json!({
        "playbooks": rows,
        "reload": reload,
        "folder": app.settings.playbooks.display().to_string(),
        "files": files,
        "check": check,
        "back": "/playbooks",
    });
    page.render("playbooks.html", "playbooks", "预案", ctx, StatusCode::OK)
}

/// `GET /playbooks`.
pub(super) async fn playbooks(State(app): Shared, Extension(dash): Dash, session: Session) -> Response {
    playbooks_page(&app, &dash, &session, None)
}

/// `POST /playbooks/reload`: the folder again; on error the old set stays live.
pub(super) async fn reload(State(app): Shared, Extension(dash): Dash, posted: Posted<ActionForm>) -> Response {
    let role = &posted.session.staff.role;
    if let Err(r) = crate::domain::authority::require_top(&app.engine.playbooks.live(), role, "reload the playbooks") {
        return redirect_with(
            &dash,
            "/playbooks",
            FlashKind::Error,
            &format!("未重新载入：无权操作：{}", crate::domain::playbook::zh::message(&r.0)),
        );
    }
    match app.reload_playbooks(&posted.session.staff.name).await {
        Ok(versions) => {
            app.after_change();
            redirect_with(
                &dash,
                "/playbooks",
                FlashKind::Ok,
                &format!("已重新载入预案：{}", versions.join("、")),
            )
        }
        Err(errors) => redirect_with(
            &dash,
            "/playbooks",
            FlashKind::Error,
            &format!(
                "未重新载入，原预案继续生效：\n{}",
                errors
                    .iter()
                    .map(|e| crate::domain::playbook::zh::line(e))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        ),
    }
}

/// The check form.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct CheckForm {
    file: String,
    yaml: String,
}

fn file_name(p: &FsPath) -> String {
    p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default()
}

/// The `*.yaml` directly in the live folder, with their text (what a reload would read).
fn live_files(dir: &FsPath) -> Result<Vec<(PathBuf, String)>, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}:0:0: cannot read folder: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            std::fs::read_to_string(&p)
                .map(|t| (p.clone(), t))
                .map_err(|e| format!("{}:0:0: cannot read: {e}", p.display()))
        })
        .collect()
}

/// Runs the loader over the live folder with `name` replaced by (or added as) `text`: what a reload
/// would do with the edit in place. Writes nothing.
fn check_edited(app: &AppState, name: &str, text: &str) -> CheckResult {
    let mut result = CheckResult {
        file: name.to_string(),
        yaml: text.to_string(),
        ..CheckResult::default()
    };
    let plain =
        !name.is_empty() && !name.contains(['/', '\\']) && !name.starts_with('.') && (name.ends_with(".yaml") || name.ends_with(".yml"));
    if !plain {
        result
            .errors
            .push(format!("{name}:0:0: 文件名须为预案目录中的 *.yaml 文件名，例如 taiyuan.yaml"));
        return result;
    }
    let dir = &app.settings.playbooks;
    let mut files = match live_files(dir) {
        Ok(f) => f,
        Err(e) => {
            result.errors.push(e);
            return result;
        }
    };
    files.retain(|(p, _)| file_name(p) != name);
    files.push((dir.join(name), text.to_string()));
    let live = app.engine.playbooks.live();
    match crate::domain::playbook::load_files(files, app.engine.regions) {
        Ok(set) => {
            result.ok = true;
            result.playbooks = set
                .iter()
                .map(|p| {
                    let change = match live.get(&p.id) {
                        None => "新增",
                        Some(l) if l.digest != p.digest || l.version != p.version => "有改动",
                        Some(_) => "未变",
                    };
                    json!({ "pin": p.pin(), "digest": p.digest, "file": p.file.display().to_string(), "change": change })
                })
                .collect();
        }
        Err(errors) => result.errors = errors.iter().map(|e| crate::domain::playbook::zh::line(&e.to_string())).collect(),
    }
    result
}

/// `POST /playbooks/check`: the loader over an edited file; changes nothing.
pub(super) async fn check(State(app): Shared, Extension(dash): Dash, posted: Posted<CheckForm>) -> Response {
    let name = posted.form.file.trim().to_string();
    let name = if name.is_empty() { "edited.yaml".to_string() } else { name };
    let text = posted.form.yaml.replace("\r\n", "\n");
    let result = check_edited(&app, &name, &text);
    playbooks_page(&app, &dash, &posted.session, Some(result))
}

/// `GET /static/dashboard/app.css`.
pub(super) async fn stylesheet() -> Response {
    (
        [(CONTENT_TYPE, "text/css; charset=utf-8"), (CACHE_CONTROL, "public, max-age=86400")],
        CSS,
    )
        .into_response()
}

/// `GET /static/dashboard/app.js`.
pub(super) async fn script() -> Response {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=86400"),
        ],
        JS,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_back() {
        assert_eq!(back_to("/warnings/1"), "/warnings/1");
        assert_eq!(back_to("//evil.example/x"), "/");
        assert_eq!(back_to("https://evil.example/"), "/");
        assert_eq!(back_to("/\\evil"), "/");
        assert_eq!(back_to(""), "/");
    }

    #[test]
    fn triggers_read_in_chinese() {
        assert_eq!(trigger_zh("forecast received"), "收到预报后会商");
        assert_eq!(trigger_zh("on demand by 王市长"), "按需会商（王市长）");
        assert_eq!(
            trigger_zh("shanxi/下午会商 2026-12-01T16:00+08:00"),
            "shanxi/下午会商 2026-12-01T16:00+08:00"
        );
    }
}
