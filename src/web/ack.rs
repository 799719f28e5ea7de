//! Acknowledgements (回执): an enterprise or department confirms its assignment from the link in its
//! notice — "received" (收到), then "measures in place" (措施已落实, per line, with a note) — without an
//! account. Also the progress of a warning's acknowledgements and the assignment listings.
//!
//! In: `GET/POST /ack/{token}` (a page for phones), `POST /api/v1/acks/{token}` (JSON), and the staff
//! listings `GET /api/v1/warnings/{id}/acks`, `GET /api/v1/warnings/{id}/assignments`,
//! `GET /api/v1/enterprises/{uscc}`, and the list itself, `GET /api/v1/enterprises` (for the CLI's list
//! reports while the daemon holds the store). Out: acknowledgements recorded on the assignment (time, name, phone,
//! IP, user agent) and in the event log. A token acts only on its own assignment; a repeated step
//! changes nothing; a superseded or ended assignment says so and points to the current one.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use chrono_tz::Asia::Shanghai;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::ack_step::AckStep;
use crate::domain::level::LevelId;
use crate::engine::ack::Progress;
use crate::engine::assign::{self, Ack, Assignment, AssignmentStatus, Party};
use crate::engine::list;
use crate::store::{RecordBody, StoreError, events};
use crate::web::AppState;
use crate::web::api::{ApiError, Staff};
use crate::web::clean_line;

/// The page template, as shipped (operators may override it in `playbooks/templates/ack/page.html.j2`).
const PAGE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/templates/ack/page.html.j2"));

/// The routes of this module.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/ack/{token}", get(page).post(page_post))
        .route("/api/v1/acks/{token}", post(api_ack))
        .route("/api/v1/warnings/{id}/acks", get(progress))
        .route("/api/v1/warnings/{id}/assignments", get(assignments))
        .route("/api/v1/enterprises", get(enterprises))
        .route("/api/v1/enterprises/{uscc}", get(enterprise))
}

/// Why an acknowledgement was refused.
#[derive(Debug)]
enum AckRefusal {
    Unknown,
    Gone { reason: String, current: Option<String> },
    Bad(String),
}

/// The acknowledgement page's template (`templates/ack/page.html.j2`), loaded like every template
/// set ([`crate::templates`]).
pub struct AckPage {
    env: minijinja::Environment<'static>,
}

impl AckPage {
    /// The folder's file, else the shipped copy, compiled; errors name the file.
    pub fn load(dir: &std::path::Path) -> Result<AckPage, Vec<crate::domain::diagnostic::Diagnostic>> {
        let files = crate::templates::read_shipped(dir, &[("page.html.j2", PAGE)])?;
        let mut env = minijinja::Environment::new();
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        for (name, text) in files {
            env.add_template_owned(name.clone(), text)
                .map_err(|e| vec![crate::templates::compile_error(dir, &name, &e)])?;
        }
        Ok(AckPage { env })
    }

    fn render(&self, ctx: Value) -> Result<String, minijinja::Error> {
        self.env.get_template("page.html.j2")?.render(ctx)
    }
}

/// What the acknowledgement's write job ends with when it does not record: a refusal, or the store.
enum AckJobError {
    Refused(AckRefusal),
    Store(StoreError),
}

impl From<StoreError> for AckJobError {
    fn from(e: StoreError) -> Self {
        AckJobError::Store(e)
    }
}

/// One acknowledgement as submitted.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AckInput {
    step: String,
    name: String,
    phone: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    lines: Vec<String>,
}

fn gone_status(a: &Assignment) -> Option<(String, Option<String>)> {
    match &a.status {
        AssignmentStatus::Active => None,
        AssignmentStatus::Superseded { by, .. } => Some(("本任务已被新的预警级别任务替代".into(), Some(by.clone()))),
        AssignmentStatus::Ended { cancelled: true, .. } => Some(("预警已取消，本任务无需执行".into(), None)),
        AssignmentStatus::Ended { .. } => Some(("预警已解除，本任务已结束".into(), None)),
    }
}

/// Records an acknowledgement; `Ok(false)` when the step was already recorded (nothing changed).
async fn record(
    state: &AppState,
    token: &str,
    input: AckInput,
    ip: String,
    user_agent: String,
) -> Result<Result<(Assignment, bool), AckRefusal>, ApiError> {
    let Some(given) = AckStep::parse(&input.step) else {
        return Ok(Err(AckRefusal::Bad(format!(
            "step \"{}\" is neither received nor in_place",
            input.step
        ))));
    };
    let name = clean_line(&input.name, 40);
    let phone = clean_line(&input.phone, 20);
    if name.is_empty() || phone.is_empty() {
        return Ok(Err(AckRefusal::Bad("请填写姓名和联系电话。".into())));
    }
    let now = state.engine.clock.now();
    let note = clean_line(&input.note, 500);
    let user_agent = clean_line(&user_agent, 200);
    // Decide on a snapshot, on this request's thread (token, MAC, status), so that the single writer
    // only checks and writes: nothing that changes a status (a new round, a warning's end) happened
    // in between if the epoch is the same; otherwise the writer decides again.
    //
    // On PostgreSQL a 收到 (which needs nothing but the token) is decided in the writer's batch
    // instead: a snapshot there costs a connection and four round trips per request (begin, epoch,
    // entry, commit), while the batch reads the entries of all its acknowledgements in one statement
    // and the rest once per batch. 措施已落实 needs the task's lines first, from a snapshot.
    let tokens = state.tokens.clone();
    let token = token.to_string();
    let store = state.engine.store.id();
    let in_writer = state.engine.store.kind() == "postgres" && given == AckStep::Received;
    let (seen, epoch) = if in_writer {
        (None, None)
    } else {
        let (seen, epoch) = state.engine.store.read(|r| {
            let epoch = assign::epoch(r)?;
            let mut res = assign::Resolver::with_memo(r, assign::memo_for(store, epoch));
            let a = res.by_token(&tokens, &token);
            assign::memo_back(store, epoch, res.into_memo());
            Ok((a?, epoch))
        })?;
        let Some(seen) = seen else {
            return Ok(Err(AckRefusal::Unknown));
        };
        if let Some((reason, current)) = gone_status(&seen) {
            return Ok(Err(AckRefusal::Gone { reason, current }));
        }
        (Some(seen), Some(epoch))
    };
    // 措施已落实 is taken only with every line of the task ticked (numbered as the notice and the
    // page number them); the record keeps the lines' words.
    let lines = match &seen {
        Some(seen) if given == AckStep::InPlace && !seen.has(AckStep::InPlace) => {
            match ticked(&items_to_confirm(state, seen)?, &input.lines) {
                Ok(lines) => lines,
                Err(m) => return Ok(Err(AckRefusal::Bad(m))),
            }
        }
        _ => Vec::new(),
    };
    let rec = AckRecord {
        token: token.clone(),
        step: given,
        at: now,
        name,
        phone,
        note,
        lines,
        ip,
        user_agent,
    };
    let item = match &seen {
        Some(seen) => {
            if !rec.add_to(&mut seen.clone()) {
                // Every step is recorded already: idempotent, nothing to write.
                return Ok(Ok((seen.clone(), false)));
            }
            (seen.round, seen.index)
        }
        None => match assign::TokenKey::item_of(&token) {
            Some(item) => item,
            None => return Ok(Err(AckRefusal::Unknown)),
        },
    };
    // On the embedded file the acknowledgement is made durable by the store's journal (one fdatasync
    // for a batch of them, `store/journal.rs`), and redone from this record after a crash.
    let journal = serde_json::to_vec(&rec).map_err(|e| ApiError::Internal(e.to_string()))?;
    let result = state
        .engine
        .store
        .write_journaled(vec![item], journal, move |tx| {
            let mut a = match seen {
                Some(mut seen) if epoch == Some(assign::epoch(tx)?) => {
                    // Only the acknowledgements can have moved (the same link used twice at once).
                    let entry: assign::Entry = tx.item(seen.round, seen.index)?.ok_or(AckJobError::Refused(AckRefusal::Unknown))?;
                    seen.acks = entry.acks;
                    seen
                }
                _ => decide_in(tx, &tokens, &rec.token)?,
            };
            let changed = rec.add_to(&mut a);
            if changed {
                write_acks(tx, &rec, &a)?;
            }
            Ok((a, changed))
        })
        .await;
    match result {
        Ok(v) => {
            let (a, changed) = &v;
            if *changed {
                // The party, not the name and phone typed on the page (those stay in the store).
                let step = a.acks.last().map_or("", |k| k.step.as_str());
                crate::web::log_recorded(&a.party.key(), &format!("acknowledge {step}"), &a.key, Some(&a.warning_id));
            }
            Ok(Ok(v))
        }
        Err(AckJobError::Refused(r)) => Ok(Err(r)),
        Err(AckJobError::Store(e)) => Err(ApiError::Internal(e.to_string())),
    }
}

/// An acknowledgement as the store's journal keeps it: everything needed to record it again after a
/// crash ([`replayer`]), decided from the token again.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct AckRecord {
    token: String,
    step: AckStep,
    at: DateTime<Utc>,
    name: String,
    phone: String,
    note: String,
    /// The words of the lines confirmed with 措施已落实.
    lines: Vec<String>,
    ip: String,
    user_agent: String,
}

impl AckRecord {
    /// Adds the steps not yet recorded to `a`; false when there were none.
    fn add_to(&self, a: &mut Assignment) -> bool {
        // 措施已落实 implies 收到: both are recorded, the note and lines on the step given.
        let steps: &[AckStep] = match self.step {
            AckStep::InPlace => &AckStep::ALL,
            AckStep::Received => &[AckStep::Received],
        };
        let mut changed = false;
        for &step in steps {
            if a.has(step) {
                continue;
            }
            a.acks.push(Ack {
                step,
                at: self.at,
                name: self.name.clone(),
                phone: self.phone.clone(),
                lines: if step == AckStep::InPlace { self.lines.clone() } else { Vec::new() },
                note: if step == self.step { self.note.clone() } else { String::new() },
                ip: self.ip.clone(),
                user_agent: self.user_agent.clone(),
            });
            changed = true;
        }
        changed
    }
}

/// The assignment of `token`, decided in the writer's transaction; refused when unknown or no longer
/// current.
fn decide_in(tx: &mut crate::store::Tx<'_>, tokens: &assign::TokenKey, token: &str) -> Result<Assignment, AckJobError> {
    let a = assign::by_token_in_batch(tx, tokens, token)?.ok_or(AckJobError::Refused(AckRefusal::Unknown))?;
    if let Some((reason, current)) = gone_status(&a) {
        return Err(AckJobError::Refused(AckRefusal::Gone { reason, current }));
    }
    Ok(a)
}

/// Writes `a`'s acknowledgements and logs the last one.
fn write_acks(tx: &mut crate::store::Tx<'_>, rec: &AckRecord, a: &Assignment) -> Result<(), StoreError> {
    assign::put_acks(tx, a)?;
    tx.append(
        rec.at,
        &format!("ack:{}", a.acks.last().map_or("", |k| k.name.as_str())),
        None,
        RecordBody::Other(events::Event::Acknowledged(events::Acknowledged {
            assignment: a.key.clone(),
            party: a.party.clone(),
            step: a.acks.last().map(|k| k.step),
            warning_id: a.warning_id.clone(),
        })),
    )?;
    Ok(())
}

/// Redoes an acknowledgement from the store's journal after a crash: decided from its token again,
/// recorded with its own time, name and lines; one recorded already (or no longer current) changes
/// nothing. The daemon hands it to [`crate::store::Store::replay_journal`] before it serves.
pub fn replayer(tokens: assign::TokenKey) -> crate::store::Replayer {
    Arc::new(move |tx, bytes| {
        let rec: AckRecord =
            serde_json::from_slice(bytes).map_err(|e| StoreError::Refused(format!("an unreadable journal record: {e}")))?;
        let mut a = match decide_in(tx, &tokens, &rec.token) {
            Ok(a) => a,
            Err(AckJobError::Store(e)) => return Err(e),
            Err(AckJobError::Refused(_)) => return Ok(()),
        };
        if rec.add_to(&mut a) {
            write_acks(tx, &rec, &a)?;
        }
        Ok(())
    })
}

/// The lines a party confirms one by one for 措施已落实: an enterprise's measure lines (in the
/// 公示牌's words) or its negotiated commitment, a department's duty.
fn items_to_confirm(state: &AppState, a: &Assignment) -> Result<Vec<String>, ApiError> {
    Ok(match (&a.party, &a.negotiated) {
        (Party::Department { .. }, _) => a.duty.iter().map(|d| d.trim().to_string()).filter(|d| !d.is_empty()).collect(),
        (Party::Enterprise { .. }, Some(n)) => {
            vec![
                crate::registry::commitment_json(&n.commitment, &n.reductions_text())["item"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            ]
        }
        (Party::Enterprise { uscc, .. }, None) => match state.engine.store.read(|r| list::enterprise(r, uscc))? {
            Some(e) => state.defaults.measures_for(&e, &a.level).iter().map(|m| m.item()).collect(),
            None => Vec::new(),
        },
    })
}

/// The lines ticked (`1`, `2`, … as numbered on the page and in the notice), in their words, when
/// every one of `items` is; else the message naming those left unticked.
fn ticked(items: &[String], given: &[String]) -> Result<Vec<String>, String> {
    let given: std::collections::BTreeSet<usize> = given.iter().filter_map(|g| g.trim().parse().ok()).collect();
    let left: Vec<String> = (1..=items.len()).filter(|n| !given.contains(n)).map(|n| n.to_string()).collect();
    if left.is_empty() {
        Ok(items.to_vec())
    } else {
        Err(format!(
            "请逐项核实并勾选全部{}项措施后再确认“措施已落实”（尚未勾选：第{}项）。",
            items.len(),
            left.join("、")
        ))
    }
}

fn client(headers: &HeaderMap, addr: &SocketAddr) -> (String, String) {
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (addr.ip().to_string(), ua)
}

fn local(t: DateTime<Utc>) -> String {
    t.with_timezone(&Shanghai).format("%Y年%-m月%-d日 %H:%M").to_string()
}

/// Renders the page for an assignment.
fn render(state: &AppState, a: &Assignment, token: &str, notice: Option<(String, Option<String>)>) -> Result<String, ApiError> {
    let set = state.engine.playbooks.live();
    let pb = set.for_region(a.warning_region, state.engine.regions);
    let level = pb.and_then(|p| p.level(&a.level));
    let (party_name, measures, lines) = match &a.party {
        Party::Enterprise { uscc, .. } => {
            let e = state.engine.store.read(|r| list::enterprise(r, uscc))?;
            match e {
                Some(e) => {
                    let ms: Vec<Value> = match &a.negotiated {
                        // A negotiated reduction (协商减排): the commitment, not the list's measures.
                        Some(n) => vec![crate::registry::commitment_json(&n.commitment, &n.reductions_text())],
                        // The same lines as the notice and the 公示牌.
                        None => state
                            .defaults
                            .measures_for(&e, &a.level)
                            .iter()
                            .map(crate::registry::measure_json)
                            .collect(),
                    };
                    let lines: Vec<Value> = e.lines.iter().map(|l| json!({ "id": l.id, "name": l.name })).collect();
                    (format!("{}（{}）", e.name, e.uscc.as_str()), ms, lines)
                }
                None => (uscc.clone(), Vec::new(), Vec::new()),
            }
        }
        Party::Department { name, region, .. } => (format!("{}{}", state.engine.regions.name(*region), name), Vec::new(), Vec::new()),
    };
    let line_names: BTreeMap<String, String> = lines
        .iter()
        .filter_map(|l| Some((l["id"].as_str()?.to_string(), l["name"].as_str()?.to_string())))
        .collect();
    let next_step = AckStep::ALL.into_iter().find(|k| !a.has(*k)).map_or("", AckStep::as_str);
    // The boxes to tick for 措施已落实, once 收到 is given (the same list the server checks).
    let confirm: Vec<Value> = if notice.is_none() && a.has(AckStep::Received) && !a.has(AckStep::InPlace) {
        items_to_confirm(state, a)?
            .into_iter()
            .enumerate()
            .map(|(i, item)| json!({ "n": i + 1, "item": item }))
            .collect()
    } else {
        Vec::new()
    };
    let acks: Vec<Value> = a
        .acks
        .iter()
        .map(|k| json!({ "label": k.step.done_zh(), "at": local(k.at), "name": k.name, "note": k.note, "lines": k.lines.iter().map(|id| line_names.get(id).cloned().unwrap_or_else(|| id.clone())).collect::<Vec<_>>() }))
        .collect();
    let current_link = notice
        .as_ref()
        .and_then(|(_, c)| c.clone())
        .map(|k| state.engine.store.read(|r| assign::token_of_key(r, &state.tokens, &k)))
        .transpose()?
        .flatten()
        .map(|t| format!("/ack/{t}"));
    let region_name = state.engine.regions.name(a.warning_region);
    let level_name = level.map_or_else(|| a.level.to_string(), |l| l.name.clone());
    // The warning's timeline and its decided end, as the notices say them.
    let w = state.engine.store.read(|r| r.warning(&a.warning_id))?;
    let timeline = w
        .as_ref()
        .and_then(|w| crate::domain::warning::timeline_of(w, pb.map(|p| p.as_ref())));
    let ends_at = w
        .as_ref()
        .and_then(|w| w.next.as_ref())
        .filter(|n| n.level.is_none())
        .map(|n| local(n.at));
    let ctx = json!({
        "timeline": timeline,
        "ends_at": ends_at,
        // A drill's page says so in its title too, whatever the page template.
        "title": format!(
            "{}{region_name}重污染天气{level_name}{}",
            if a.exercise { crate::notify::templates::DRILL_MARK } else { "" },
            if a.negotiated.is_some() { "协商减排任务" } else { "应急响应任务" }
        ),
        "exercise": a.exercise,
        "negotiated": a.negotiated.is_some(),
        "level_name": level_name,
        "level_colour": level.map_or("#cccccc".to_string(), |l| l.colour.clone()),
        "response": level.map_or(String::new(), |l| l.response.clone()),
        "party_name": party_name,
        "applies_from": local(a.applies_from),
        "deadline": local(a.ack_deadline),
        "in_place_deadline": local(a.in_place_by()),
        "measures": measures,
        "duty": a.duty,
        "confirm": confirm,
        "acks": acks,
        "can_ack": notice.is_none() && !next_step.is_empty(),
        "next_step": next_step,
        "action": format!("/ack/{token}"),
        "notice": notice.as_ref().map(|n| n.0.clone()),
        "current_link": current_link,
        "hotline": state.defaults.board.hotline,
        // The second step asks for the same person again: fill in who confirmed the first.
        "last_name": a.acks.last().map(|k| k.name.clone()).unwrap_or_default(),
        "last_phone": a.acks.last().map(|k| k.phone.clone()).unwrap_or_default(),
    });
    state
        .pages
        .get()
        .ack
        .render(ctx)
        .map_err(|e| ApiError::Internal(format!("ack page template: {e}")))
}

fn not_found_page() -> Response {
    (StatusCode::NOT_FOUND, Html("<!doctype html><html lang=\"zh-CN\"><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>链接无效</title><body><main><h1>链接无效</h1><p>此确认链接不存在。请使用通知中的链接，或联系当地生态环境部门。</p></main></body></html>")).into_response()
}

async fn page(State(s): State<Arc<AppState>>, Path(token): Path<String>) -> Result<Response, ApiError> {
    let a = s.engine.store.read(|r| assign::by_token(r, &s.tokens, &token))?;
    let Some(a) = a else { return Ok(not_found_page()) };
    let notice = gone_status(&a);
    let status = if notice.is_some() { StatusCode::GONE } else { StatusCode::OK };
    Ok((status, Html(render(&s, &a, &token, notice)?)).into_response())
}

async fn page_post(
    State(s): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut fields: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(&body) {
        fields.entry(k.into_owned()).or_default().push(v.into_owned());
    }
    let one = |k: &str| fields.get(k).and_then(|v| v.first()).cloned().unwrap_or_default();
    let input = AckInput {
        step: one("step"),
        name: one("name"),
        phone: one("phone"),
        note: one("note"),
        lines: fields.get("line").cloned().unwrap_or_default(),
    };
    let (ip, ua) = client(&headers, &addr);
    match record(&s, &token, input, ip, ua).await? {
        Ok(_) => Ok(Redirect::to(&format!("/ack/{token}")).into_response()),
        Err(AckRefusal::Unknown) => Ok(not_found_page()),
        Err(AckRefusal::Gone { .. }) => page(State(s), Path(token)).await,
        Err(AckRefusal::Bad(m)) => {
            let a = s.engine.store.read(|r| assign::by_token(r, &s.tokens, &token))?;
            match a {
                Some(a) => Ok((
                    StatusCode::BAD_REQUEST,
                    Html(render(&s, &a, &token, None)?.replace(
                        "<main>",
                        &format!(
                            "<main><div class=\"card notice\" role=\"alert\">{}</div>",
                            minijinja::HtmlEscape(&m)
                        ),
                    )),
                )
                    .into_response()),
                None => Ok(not_found_page()),
            }
        }
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/acks/{token}",
    operation_id = "post_acks_token",
    tag = "acknowledgements",
    summary = "an acknowledgement from an enterprise or department (the token of its link; no staff token)",
    params(
        ("token" = String, Path, description = "the link's token (`k2.…`, or without a key id for links made before key ids)")
    ),
    request_body(content = AckInput, content_type = "application/json"),
    responses(
        (status = 200, description = "the assignment with its acknowledgements", body = Object),
        (status = 400, description = "bad input", body = crate::web::api::ErrorBody),
        (status = 404, description = "unknown token (or its key was removed)", body = crate::web::api::ErrorBody),
        (status = 410, description = "superseded or ended, with the current link", body = crate::web::api::ErrorBody)
    ),
    security(())
)]
async fn api_ack(
    State(s): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input: AckInput = serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
    let (ip, ua) = client(&headers, &addr);
    match record(&s, &token, input, ip, ua).await? {
        Ok((a, changed)) => Ok((StatusCode::OK, Json(json!({ "assignment": a.key, "warning_id": a.warning_id, "acks": a.acks.iter().map(|k| json!({"step": k.step, "at": k.at})).collect::<Vec<_>>(), "changed": changed }))).into_response()),
        Err(AckRefusal::Unknown) => Err(ApiError::NotFound("unknown acknowledgement token".into())),
        Err(AckRefusal::Gone { reason, current }) => {
            let link = match current {
                Some(k) => s.engine.store.read(|r| assign::token_of_key(r, &s.tokens, &k))?.map(|t| format!("/ack/{t}")),
                None => None,
            };
            Ok((StatusCode::GONE, Json(json!({ "error": reason, "current": link }))).into_response())
        }
        Err(AckRefusal::Bad(m)) => Err(ApiError::BadRequest(m)),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/warnings/{id}/acks",
    operation_id = "get_warnings_id_acks",
    tag = "acknowledgements",
    summary = "acknowledgement progress per region and who is missing",
    params(
        ("id" = String, Path, description = "warning id")
    ),
    responses(
        (status = 200, description = "warning_id, total, regions, missing", body = Object),
        (status = 401, description = "no or unknown staff token", body = crate::web::api::ErrorBody),
        (status = 404, description = "no such warning", body = crate::web::api::ErrorBody),
        (status = 500, description = "the store failed", body = crate::web::api::ErrorBody)
    )
)]
async fn progress(State(s): State<Arc<AppState>>, _staff: Staff, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    if s.engine.store.read(|r| r.warning(&id))?.is_none() {
        return Err(ApiError::NotFound(format!("no warning {id}")));
    }
    let (per, missing) = crate::engine::ack::progress_of(&s.engine.store, &s.notify.roster(), &id, s.engine.clock.now(), 1000)?;
    let mut total = Progress::default();
    for p in per.values() {
        total.assigned += p.assigned;
        total.received += p.received;
        total.in_place += p.in_place;
        total.overdue += p.overdue;
        total.no_contact += p.no_contact;
        total.in_place_overdue += p.in_place_overdue;
    }
    Ok(Json(
        json!({ "warning_id": id, "total": total, "regions": per, "missing": missing }),
    ))
}

#[derive(Deserialize)]
struct AssignmentQuery {
    region: Option<String>,
    status: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
}

#[utoipa::path(
    get,
    path = "/api/v1/warnings/{id}/assignments",
    operation_id = "get_warnings_id_assignments",
    tag = "acknowledgements",
    summary = "the warning's assignments (一厂一策), every round in order, by assignment key within a round",
    params(
        ("id" = String, Path, description = "warning id"),
        ("region" = Option<String>, Query, description = "a region code: its assignments and those below it"),
        ("status" = Option<String>, Query, description = "active, superseded or ended"),
        ("limit" = Option<u32>, Query, description = "items per page (more than 1000 is taken as 1000)", minimum = 1, maximum = 1000),
        ("after" = Option<String>, Query, description = "the cursor: an assignment key; the page holds the items after it")
    ),
    responses(
        (status = 200, description = "a page", body = crate::web::api::openapi::GetWarningsIdAssignmentsPage),
        (status = 400, description = "a bad `limit` or `after`", body = crate::web::api::ErrorBody),
        (status = 401, description = "no or unknown staff token", body = crate::web::api::ErrorBody),
        (status = 500, description = "the store failed", body = crate::web::api::ErrorBody)
    )
)]
async fn assignments(
    State(s): State<Arc<AppState>>,
    _staff: Staff,
    Path(id): Path<String>,
    Query(q): Query<AssignmentQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = crate::web::api::Paging::new(q.limit, None).limit(crate::web::api::paging::DEFAULT_LIMIT)?;
    let region = match &q.region {
        Some(r) => Some(crate::domain::region::RegionCode::parse(r).map_err(|e| ApiError::BadRequest(format!("region: {e}")))?),
        None => None,
    };
    if let Some(st) = &q.status
        && !matches!(st.as_str(), "active" | "superseded" | "ended")
    {
        return Err(ApiError::BadRequest(format!("status: \"{st}\" is not active, superseded or ended")));
    }
    let mut out = Vec::new();
    let mut after = q.after.clone().unwrap_or_default();
    let mut next = None;
    'scan: loop {
        let batch = s.engine.store.read(|r| assign::of_warning(r, &id, &after, 1000))?;
        let Some(last) = batch.last() else { break };
        after = last.key.clone();
        for a in batch {
            let state = match &a.status {
                AssignmentStatus::Active => "active",
                AssignmentStatus::Superseded { .. } => "superseded",
                AssignmentStatus::Ended { .. } => "ended",
            };
            let in_region = region.is_none_or(|r| {
                let pr = assign::party_region(&a);
                pr == r || s.engine.regions.is_within(pr, r)
            });
            if in_region && q.status.as_deref().is_none_or(|st| st == state) {
                out.push(a);
                if out.len() == limit {
                    next = out.last().map(|a: &Assignment| a.key.clone());
                    break 'scan;
                }
            }
        }
    }
    Ok(Json(json!({ "assignments": out, "next_after": next })))
}

/// `GET /api/v1/enterprises?limit=&after=`: the current emergency reduction list a page at a time,
/// in key order (`{county}/{uscc}`, the cursor), with the list version it belongs to. The list changes
/// only by `hazeflow registry import` with the daemon stopped, so the pages of one walk agree; a
/// client can compare `version` and `digest` across them.
#[utoipa::path(
    get,
    path = "/api/v1/enterprises",
    operation_id = "get_enterprises",
    tag = "acknowledgements",
    summary = "the current emergency reduction list (应急减排清单), a page at a time, by `{county}/{uscc}` (what `hazeflow registry reductions|board|coverage` read while the daemon holds the store)",
    params(
        ("limit" = Option<u32>, Query, description = "items per page (more than 1000 is taken as 1000)", minimum = 1, maximum = 1000),
        ("after" = Option<String>, Query, description = "the cursor: an enterprise's key `{county}/{uscc}`; the page holds the items after it")
    ),
    responses(
        (status = 200, description = "a page", body = crate::web::api::openapi::GetEnterprisesPage),
        (status = 400, description = "a bad `limit` or `after`", body = crate::web::api::ErrorBody),
        (status = 401, description = "no or unknown staff token", body = crate::web::api::ErrorBody),
        (status = 500, description = "the store failed", body = crate::web::api::ErrorBody)
    )
)]
async fn enterprises(
    State(s): State<Arc<AppState>>,
    _staff: Staff,
    Query(q): Query<crate::web::api::Paging>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit(crate::web::api::paging::DEFAULT_LIMIT)?;
    let after = q.after().unwrap_or_default().to_string();
    let (version, page) = s
        .engine
        .store
        .read(|r| Ok((list::current_version(r)?, list::enterprises_after(r, &after, limit)?)))?;
    let next = crate::web::api::paging::next_after(page.len(), limit, || page.last().map(|(k, _)| k.clone()));
    let enterprises: Vec<&crate::registry::Enterprise> = page.iter().map(|(_, e)| e).collect();
    Ok(Json(json!({
        "version": version.as_ref().map(|v| v.version),
        "recorded_at": version.as_ref().map(|v| v.recorded_at),
        "digest": version.as_ref().map(|v| v.digest.clone()),
        "enterprises": enterprises,
        "next_after": next,
    })))
}

#[utoipa::path(
    get,
    path = "/api/v1/enterprises/{uscc}",
    operation_id = "get_enterprises_uscc",
    tag = "acknowledgements",
    summary = "an enterprise, its measures per level, its current assignment and history",
    params(
        ("uscc" = String, Path, description = "统一社会信用代码")
    ),
    responses(
        (status = 200, description = "the enterprise", body = Object),
        (status = 401, description = "no or unknown staff token", body = crate::web::api::ErrorBody),
        (status = 404, description = "not on the list", body = crate::web::api::ErrorBody),
        (status = 500, description = "the store failed", body = crate::web::api::ErrorBody)
    )
)]
async fn enterprise(State(s): State<Arc<AppState>>, _staff: Staff, Path(uscc): Path<String>) -> Result<Json<Value>, ApiError> {
    let (e, history) = s
        .engine
        .store
        .read(|r| Ok((list::enterprise(r, &uscc)?, assign::of_party(r, &format!("e:{uscc}"))?)))?;
    let e = e.ok_or_else(|| ApiError::NotFound(format!("no enterprise {uscc} on the list")))?;
    // The task in force is a real one: a drill's (演练, `exercise`) stays in the history, marked.
    let current = history
        .iter()
        .rev()
        .find(|a| a.status == AssignmentStatus::Active && !a.exercise)
        .cloned();
    let measures: BTreeMap<LevelId, Value> = s
        .defaults
        .levels
        .iter()
        .map(|l| (l.id.clone(), json!(s.defaults.measures_for(&e, &l.id))))
        .collect();
    Ok(Json(
        json!({ "enterprise": e, "measures_by_level": measures, "current_assignment": current, "assignments": history }),
    ))
}
