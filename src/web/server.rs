//! The HTTP server around the routes: limits and headers every response gets.
//!
//! - **Connections**: at most `http.max_connections` served at once; the next one is accepted only
//!   when one ends (the rest wait in the kernel's listen queue). Accept errors (`EMFILE`) are
//!   logged and retried after a pause instead of spinning.
//! - **Headers** must arrive within `http.header_timeout_secs` (hyper's header read timeout, which
//!   also ends a keep-alive connection idle that long); **bodies** within `http.body_timeout_secs`,
//!   in total (408), and no larger than `inbox.max_bytes` (413): the body is read here, once, so a
//!   slow or oversized body never reaches a handler.
//! - **Errors** of the API (`/api/…`, `/healthz`, `/metrics`) are always `{"error": "…"}` JSON,
//!   including the 400/404/405/413/415 that axum's extractors and router produce in plain text.
//! - **Security headers** on every response: `Content-Security-Policy` (the dashboard sets its own,
//!   stricter one with a nonce), `Referrer-Policy: no-referrer` (an acknowledgement link is a
//!   secret), `X-Content-Type-Options: nosniff`, and `Cache-Control: no-store` on everything but
//!   the public pages and static files, which set their own.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request};
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// The limits the server runs with.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time to send the request headers.
    pub header_timeout: Duration,
    /// Time to send the whole body.
    pub body_timeout: Duration,
    /// Largest body.
    pub max_body: usize,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Limits {
    /// From the settings.
    pub fn from_settings(s: &crate::config::Settings) -> Limits {
        Limits {
            header_timeout: Duration::from_secs(s.http.header_timeout_secs),
            body_timeout: Duration::from_secs(s.http.body_timeout_secs),
            max_body: s.inbox.max_bytes,
            max_connections: s.http.max_connections,
        }
    }
}

/// The CSP of pages that set none (the acknowledgement and public pages: inline styles, no scripts).
const DEFAULT_CSP: &str = "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                           form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The routes wrapped in the body limits, the JSON errors, the headers and the access log.
pub fn wrap(router: Router, limits: Limits) -> Router {
    router
        .layer(axum::middleware::from_fn(move |req: Request, next: Next| {
            read_body(limits, req, next)
        }))
        .layer(DefaultBodyLimit::max(limits.max_body))
        .layer(axum::middleware::from_fn(headers_and_errors))
        .layer(axum::middleware::from_fn(access_log))
}

/// A span per request (`request{id, method, path, actor, warning}`: the staff extractor fills in the
/// actor, `warning` is the warning id the path names — `/api/v1/warnings/{id}/…` and the dashboard's
/// `/warnings/{id}/…` — and everything logged while the request runs carries them) and one access
/// line when it is answered. The id is the client's `X-Request-Id` when it sends a sane one, else a new one, and is
/// sent back. Acknowledgement tokens are secrets: their paths are logged without them.
async fn access_log(req: Request, next: Next) -> Response {
    use tracing::Instrument;
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .map_or_else(|| format!("{:016x}", rand::random::<u64>()), str::to_string);
    let path = redact(req.uri().path());
    let method = req.method().clone();
    let warning = warning_of(&path);
    let span = tracing::info_span!(
        "request",
        id = %id,
        method = %method,
        path = %path,
        actor = tracing::field::Empty,
        warning = warning,
    );
    let started = std::time::Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;
    let status = resp.status().as_u16();
    let ms = started.elapsed().as_secs_f64() * 1e3;
    span.in_scope(|| {
        if path == "/healthz" || path == "/metrics" {
            tracing::debug!(target: "hazeflow::access", status, ms, "answered");
        } else {
            tracing::info!(target: "hazeflow::access", status, ms, "answered");
        }
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// The warning id a path names: the segment after `/api/v1/warnings/` or the dashboard's `/warnings/`.
fn warning_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/api/v1/warnings/").or_else(|| path.strip_prefix("/warnings/"))?;
    let id = rest.split('/').next().unwrap_or_default();
    (!id.is_empty()).then_some(id)
}

/// A path fit for the log: the token of an acknowledgement link left out.
fn redact(path: &str) -> String {
    for prefix in ["/ack/", "/api/v1/acks/"] {
        if let Some(rest) = path.strip_prefix(prefix) {
            let tail = rest.find('/').map_or("", |i| &rest[i..]);
            return format!("{prefix}…{tail}");
        }
    }
    path.chars().take(200).collect()
}

/// A JSON error response.
fn json_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

/// How a body read ended.
enum Read {
    /// The whole body, within the limit.
    Whole(Vec<u8>),
    /// Larger than the limit (what came was read and dropped, up to twice the limit, so that the
    /// client reads the 413 rather than a reset).
    TooLarge,
    /// The body failed.
    Failed(String),
}

async fn read_limited(mut body: Body, max: usize) -> Read {
    use axum::body::HttpBody;
    let mut out = Vec::new();
    let mut total = 0usize;
    loop {
        let frame = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await;
        match frame {
            None => break,
            Some(Err(e)) => return Read::Failed(e.to_string()),
            Some(Ok(f)) => {
                if let Ok(data) = f.into_data() {
                    total = total.saturating_add(data.len());
                    if total <= max {
                        out.extend_from_slice(&data);
                    } else if total > max.saturating_mul(2) {
                        return Read::TooLarge;
                    }
                }
            }
        }
    }
    if total > max { Read::TooLarge } else { Read::Whole(out) }
}

/// Reads the whole body under the size limit and the deadline, then hands it on.
async fn read_body(limits: Limits, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let closing = |mut r: Response| {
        r.headers_mut()
            .insert(axum::http::header::CONNECTION, HeaderValue::from_static("close"));
        r
    };
    let too_large = || {
        closing(json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the body is larger than the limit of {} bytes (inbox.max_bytes)", limits.max_body),
        ))
    };
    if declared.is_some_and(|n| n > (limits.max_body as u64).saturating_mul(2)) {
        return too_large();
    }
    let bytes = match tokio::time::timeout(limits.body_timeout, read_limited(body, limits.max_body)).await {
        Ok(Read::Whole(b)) => b,
        Ok(Read::TooLarge) => return too_large(),
        Ok(Read::Failed(e)) => return json_error(StatusCode::BAD_REQUEST, &format!("the body could not be read: {e}")),
        Err(_) => {
            return closing(json_error(
                StatusCode::REQUEST_TIMEOUT,
                &format!(
                    "the body did not arrive within {} s (http.body_timeout_secs)",
                    limits.body_timeout.as_secs()
                ),
            ));
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// Whether a path is the JSON API's.
fn is_api(path: &str) -> bool {
    path.starts_with("/api/") || path == "/healthz" || path == "/metrics"
}

/// JSON bodies for the API's errors; the security headers on everything.
async fn headers_and_errors(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let mut r = next.run(req).await;
    let status = r.status();
    if is_api(&path) && (status.is_client_error() || status.is_server_error()) {
        let json = r
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !json {
            let headers = r.headers().clone();
            let text = axum::body::to_bytes(std::mem::take(r.body_mut()), 64 * 1024)
                .await
                .map(|b| String::from_utf8_lossy(&b).trim().to_string())
                .unwrap_or_default();
            let message = if text.is_empty() {
                status.canonical_reason().unwrap_or("error").to_string()
            } else {
                text
            };
            let mut fresh = json_error(status, &message);
            for name in [
                axum::http::header::ALLOW,
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::header::CONNECTION,
            ] {
                if let Some(v) = headers.get(&name) {
                    fresh.headers_mut().insert(name, v.clone());
                }
            }
            r = fresh;
        }
    }
    let h = r.headers_mut();
    if !h.contains_key(CONTENT_SECURITY_POLICY) {
        h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(DEFAULT_CSP));
    }
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if !(path.starts_with("/public") || path.starts_with("/static/")) {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

/// Serves `router` on `listener` until `shutdown` fires, then lets open connections finish their
/// current request (graceful shutdown) and returns once they have.
pub async fn serve(listener: TcpListener, router: Router, limits: Limits, shutdown: CancellationToken) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, addr) = tokio::select! {
            () = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed; retrying shortly");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let stop = shutdown.clone();
        connections.spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(addr));
                router.clone().oneshot(req.map(Body::new))
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, %addr, "connection ended with an error");
                    }
                }
                () = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    connections.close();
    connections.wait().await;
}
