//! Logging in and out, the session, and the CSRF tokens every form carries.
//!
//! The session is the `hazeflow_session` cookie holding the staff token itself (HttpOnly,
//! SameSite=Strict), the same cookie the API's `Staff` extractor accepts. A form's CSRF token is an
//! HMAC of the token's hash under a key drawn at start-up, so it is bound to the session and dies
//! with the process; a POST without a valid one is refused with 403 before anything else happens.
//! The login form, which has no session yet, is bound the same way to a random nonce kept in a
//! short-lived `hazeflow_login` cookie (so nobody can log a victim in under their own token).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use sha2::Sha256;

use super::Dashboard;
use super::pages::{Page, error_page};
use crate::config::hash_token;
use crate::web::AppState;
use crate::web::api::Staff;

/// The session cookie (shared with the API's `Staff` extractor).
pub const SESSION_COOKIE: &str = "hazeflow_session";
/// The login nonce cookie.
const LOGIN_COOKIE: &str = "hazeflow_login";
/// A one-shot message for the next page.
const FLASH_COOKIE: &str = "hazeflow_flash";
/// How long a login lasts: a duty shift and then some.
const SESSION_SECS: u32 = 16 * 3600;
/// The largest form accepted (a pasted playbook or forecast).
pub(super) const MAX_FORM_BYTES: usize = 2 * 1024 * 1024;

impl Dashboard {
    fn mac(key: &[u8; 32], purpose: &str, data: &str) -> Hmac<Sha256> {
        // HMAC takes keys of any length; 32 bytes never fails.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(data.as_bytes());
        mac
    }

    /// The CSRF token for `data` (a session's token hash, or a login nonce): `k{N}.{hex}`, signed by
    /// the newest session key, which it names.
    fn csrf(&self, purpose: &str, data: &str) -> String {
        let keys = self.csrf_keys.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (id, key) = keys.signing();
        format!("k{id}.{}", hex::encode(Self::mac(key, purpose, data).finalize().into_bytes()))
    }

    /// Whether `given` is the CSRF token for `data` under the key it names (a token without a key id,
    /// from an earlier release, under `k0`), compared in constant time.
    fn csrf_ok(&self, purpose: &str, data: &str, given: &str) -> bool {
        let given = given.trim();
        let (id, mac) = match given.split_once('.') {
            Some((id, mac)) => match crate::engine::link_keys::parse_session_id(id) {
                Some(id) => (id, mac),
                None => return false,
            },
            None => (0, given),
        };
        let keys = self.csrf_keys.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        match (keys.get(id), hex::decode(mac)) {
            (Some(key), Ok(bytes)) => Self::mac(key, purpose, data).verify_slice(&bytes).is_ok(),
            _ => false,
        }
    }

    fn cookie(&self, name: &str, value: &str, path: &str, max_age: u32) -> HeaderValue {
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        let text = format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}");
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("hazeflow_invalid=1"))
    }

    /// A `Set-Cookie` that removes a cookie.
    pub(super) fn clear_cookie(&self, name: &str, path: &str) -> HeaderValue {
        self.cookie(name, "", path, 0)
    }

    /// A `Set-Cookie` carrying a message to the next page.
    pub(super) fn flash(&self, kind: FlashKind, text: &str) -> HeaderValue {
        let tag = match kind {
            FlashKind::Ok => "ok",
            FlashKind::Error => "error",
        };
        self.cookie(FLASH_COOKIE, &hex::encode(format!("{tag}\n{text}")), "/", 60)
    }
}

/// Good news or bad.
#[derive(Debug, Clone, Copy)]
pub(super) enum FlashKind {
    /// It worked.
    Ok,
    /// It did not.
    Error,
}

/// A message carried from a form to the page it redirects to.
#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct Flash {
    /// `ok` or `error`.
    pub kind: String,
    /// The text.
    pub text: String,
}

/// The value of a cookie, from every `Cookie` header.
pub(super) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .find_map(|c| c.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')))
        .map(str::to_string)
}

fn read_flash(headers: &HeaderMap) -> Option<Flash> {
    let raw = hex::decode(cookie(headers, FLASH_COOKIE)?).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (kind, text) = text.split_once('\n')?;
    Some(Flash {
        kind: if kind == "ok" { "ok" } else { "error" }.into(),
        text: text.into(),
    })
}

/// The dashboard's shared state, put on every request of its router.
fn dashboard(parts: &Parts) -> Option<Arc<Dashboard>> {
    parts.extensions.get::<Arc<Dashboard>>().cloned()
}

/// What a request outside the dashboard's router gets from its extractors.
fn no_dashboard() -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, "dashboard state missing").into_response()
}

/// A logged-in member of the duty staff.
pub(super) struct Session {
    /// Who.
    pub staff: Staff,
    /// The CSRF token for their forms.
    pub csrf: String,
    /// A message from the last form, if any.
    pub flash: Option<Flash>,
    token_hash: String,
}

/// Where a page sends someone who is not logged in.
fn to_login() -> Response {
    Redirect::to("/login").into_response()
}

impl FromRequestParts<Arc<AppState>> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let dash = dashboard(parts).ok_or_else(no_dashboard)?;
        let token = cookie(&parts.headers, SESSION_COOKIE).ok_or_else(to_login)?;
        let token_hash = hash_token(&token);
        let staff = state.staff_for(&token_hash).ok_or_else(|| {
            // A token that was revoked: drop the cookie on the way to the login page.
            let mut r = to_login();
            r.headers_mut().append(SET_COOKIE, dash.clear_cookie(SESSION_COOKIE, "/"));
            r
        })?;
        tracing::Span::current().record("actor", staff.name.as_str());
        Ok(Session {
            staff,
            csrf: dash.csrf("session", &token_hash),
            flash: read_flash(&parts.headers),
            token_hash,
        })
    }
}

/// `application/x-www-form-urlencoded` into name → value (the last of repeated names wins).
pub(super) fn parse_form(body: &[u8]) -> BTreeMap<String, String> {
    fn decode(s: &[u8]) -> String {
        let mut out = Vec::with_capacity(s.len());
        let mut i = 0;
        while i < s.len() {
            match s[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < s.len() => match std::str::from_utf8(&s[i + 1..i + 3])
                    .ok()
                    .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                },
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    body.split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.iter().position(|b| *b == b'=') {
            Some(i) => (decode(&pair[..i]), decode(&pair[i + 1..])),
            None => (decode(pair), String::new()),
        })
        .collect()
}

/// A form posted by a logged-in member of staff, its CSRF token checked. Without a session or a
/// valid token: 403, and the handler never runs.
pub(super) struct Posted<T> {
    /// Who posted it.
    pub session: Session,
    /// The fields (every field a string; missing ones take their defaults).
    pub form: T,
}

impl<T: DeserializeOwned + Send> FromRequest<Arc<AppState>> for Posted<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let dash = dashboard(&parts).ok_or_else(no_dashboard)?;
        let session = Session::from_request_parts(&mut parts, state).await.ok();
        let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES).await.map_err(|_| {
            error_page(
                &dash,
                state,
                None,
                StatusCode::PAYLOAD_TOO_LARGE,
                "内容过大",
                "提交的内容超过 2 MiB，请缩减后重试。",
            )
        })?;
        let fields = parse_form(&bytes);
        let given = fields.get("csrf").map_or("", String::as_str);
        let Some(session) = session.filter(|s| dash.csrf_ok("session", &s.token_hash, given)) else {
            return Err(forbidden(&dash, state));
        };
        let value = serde_json::Value::Object(fields.into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect());
        let form = serde_json::from_value(value).map_err(|e| {
            error_page(
                &dash,
                state,
                Some(&session),
                StatusCode::BAD_REQUEST,
                "表单有误",
                &format!("无法读取表单：{e}"),
            )
        })?;
        Ok(Posted { session, form })
    }
}

fn forbidden(dash: &Dashboard, app: &AppState) -> Response {
    error_page(
        dash,
        app,
        None,
        StatusCode::FORBIDDEN,
        "请求被拒绝",
        "表单缺少有效的安全令牌（CSRF），或登录已失效（服务重启后需要刷新页面）。请返回页面刷新后重试。",
    )
}

/// The login form.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct LoginForm {
    token: String,
    csrf: String,
}

/// A fresh nonce, or the one the browser holds.
fn login_nonce(headers: &HeaderMap) -> String {
    cookie(headers, LOGIN_COOKIE)
        .filter(|n| n.len() == 32 && n.chars().all(|c| c.is_ascii_hexdigit()))
        .unwrap_or_else(|| hex::encode(rand::random::<[u8; 16]>()))
}

fn render_login(dash: &Dashboard, app: &AppState, nonce: &str, status: StatusCode, error: Option<&str>) -> Response {
    let ctx = json!({ "login_csrf": dash.csrf("login", nonce), "error": error });
    let mut r = Page::new(dash, app, None).render("login.html", "login", "登录", ctx, status);
    r.headers_mut().append(SET_COOKIE, dash.cookie(LOGIN_COOKIE, nonce, "/login", 3600));
    r
}

/// `GET /login`.
pub(super) async fn login_page(
    State(app): State<Arc<AppState>>,
    Extension(dash): Extension<Arc<Dashboard>>,
    headers: HeaderMap,
) -> Response {
    if let Some(t) = cookie(&headers, SESSION_COOKIE)
        && app.staff_for(&hash_token(&t)).is_some()
    {
        return Redirect::to("/").into_response();
    }
    render_login(&dash, &app, &login_nonce(&headers), StatusCode::OK, None)
}

/// Whether a token can live in a cookie unchanged (the API reads the cookie as is).
fn cookie_safe(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && !matches!(b, b'"' | b',' | b';' | b'\\'))
}

/// `POST /login`.
pub(super) async fn login(
    State(app): State<Arc<AppState>>,
    Extension(dash): Extension<Arc<Dashboard>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: LoginForm = serde_json::from_value(serde_json::Value::Object(
        parse_form(&body)
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect(),
    ))
    .unwrap_or_default();
    let Some(nonce) = cookie(&headers, LOGIN_COOKIE) else {
        return forbidden(&dash, &app);
    };
    if !dash.csrf_ok("login", &nonce, &form.csrf) {
        return forbidden(&dash, &app);
    }
    let token = form.token.trim();
    let Some(staff) = app.staff_for(&hash_token(token)) else {
        tracing::info!("dashboard login refused: unknown token");
        return render_login(&dash, &app, &nonce, StatusCode::UNAUTHORIZED, Some("令牌无效，请检查后重试。"));
    };
    if !cookie_safe(token) {
        return render_login(
            &dash,
            &app,
            &nonce,
            StatusCode::BAD_REQUEST,
            Some("该令牌含有不能保存在 Cookie 中的字符，请联系管理员更换令牌。"),
        );
    }
    tracing::info!(staff = %staff.name, role = %staff.role, "dashboard login");
    let mut r = Redirect::to("/").into_response();
    let h = r.headers_mut();
    h.append(SET_COOKIE, dash.cookie(SESSION_COOKIE, token, "/", SESSION_SECS));
    h.append(SET_COOKIE, dash.clear_cookie(LOGIN_COOKIE, "/login"));
    h.append(SET_COOKIE, dash.flash(FlashKind::Ok, &format!("{}，您已登录。", staff.name)));
    r
}

/// Nothing but the CSRF token.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct Empty {
    #[allow(dead_code)]
    csrf: String,
}

/// `POST /logout`.
pub(super) async fn logout(Extension(dash): Extension<Arc<Dashboard>>, posted: Posted<Empty>) -> Response {
    tracing::info!(staff = %posted.session.staff.name, "dashboard logout");
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().append(SET_COOKIE, dash.clear_cookie(SESSION_COOKIE, "/"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_like_browsers_encode_them() {
        let f = parse_form(b"token=a%2Bb+c&csrf=00ff&yaml=id%3A+x%0Aname%3A+%E5%A4%AA%E5%8E%9F&empty=&bad=%zz%4");
        assert_eq!(f["token"], "a+b c");
        assert_eq!(f["csrf"], "00ff");
        assert_eq!(f["yaml"], "id: x\nname: 太原");
        assert_eq!(f["empty"], "");
        assert_eq!(f["bad"], "%zz%4");
    }

    fn keys(ids: &[(u32, [u8; 32])]) -> super::super::SessionKeyCell {
        let keys = crate::engine::link_keys::SessionKeys::new(ids.iter().copied().collect()).unwrap();
        std::sync::Arc::new(std::sync::RwLock::new(keys))
    }

    #[test]
    fn a_csrf_token_is_bound_to_its_session_and_purpose() {
        let d = Dashboard::new("http://x", keys(&[(1, rand::random())]));
        let t = d.csrf("session", "abc");
        assert!(t.starts_with("k1."), "{t}");
        assert!(d.csrf_ok("session", "abc", &t));
        assert!(!d.csrf_ok("session", "abd", &t));
        assert!(!d.csrf_ok("login", "abc", &t));
        assert!(!d.csrf_ok("session", "abc", ""));
        assert!(!d.csrf_ok("session", "abc", "not hex"));
        assert!(!d.csrf_ok("session", "abc", &t.replacen("k1.", "k2.", 1)), "a key not in service");
        let other = Dashboard::new("http://x", keys(&[(1, rand::random())]));
        assert!(!other.csrf_ok("session", "abc", &t), "another process's key does not accept it");
    }

    #[test]
    fn a_token_signed_before_a_rotation_verifies_after_it_and_a_legacy_token_under_k0() {
        let (k0, k1): ([u8; 32], [u8; 32]) = (rand::random(), rand::random());
        let cell = keys(&[(0, k0)]);
        let d = Dashboard::new("http://x", cell.clone());
        let before = d.csrf("session", "abc");
        assert!(before.starts_with("k0."), "{before}");
        let legacy = before.trim_start_matches("k0.").to_string();
        *cell.write().unwrap() = crate::engine::link_keys::SessionKeys::new([(0, k0), (1, k1)].into_iter().collect()).unwrap();
        let after = d.csrf("session", "abc");
        assert!(after.starts_with("k1."), "the newest signs: {after}");
        for t in [&before, &legacy, &after] {
            assert!(d.csrf_ok("session", "abc", t), "{t}");
        }
        *cell.write().unwrap() = crate::engine::link_keys::SessionKeys::new([(1, k1)].into_iter().collect()).unwrap();
        assert!(!d.csrf_ok("session", "abc", &before), "a removed key verifies nothing");
        assert!(d.csrf_ok("session", "abc", &after));
    }

    #[test]
    fn only_tokens_a_cookie_can_hold_unchanged_are_put_in_one() {
        assert!(cookie_safe("hazeflow-demo"));
        assert!(!cookie_safe("a;b"));
        assert!(!cookie_safe("a b"));
        assert!(!cookie_safe("令牌"));
        assert!(!cookie_safe(""));
    }
}
