//! The virtual device's control API (SPEC section 6), loopback only:
//!
//! | route | answer |
//! |---|---|
//! | `GET /` | HTML page: live screen, a button per test card, the keypad, the printed receipts and the printer's state |
//! | `GET /screen.png` | the last flushed frame as PNG |
//! | `GET /screen` | the members of the state the display set (the agent's: `{screen, amount, currency, message, offline, queued}`), then `frame`, `version`, `reader_waiting`, `last_indicator`, `indicator`; `?after=<version>[&timeout_ms=]` waits for the next change (long poll) |
//! | `POST /tap {"card": name}` | 200; 409 `reader_not_waiting`; 422 `unknown_card` |
//! | `POST /press {"button": b}` | 200; 422 `unknown_button`; 503 `input_busy` |
//! | `GET /receipts` | the virtual printer's kept receipts, newest first: `[{"n", "text", "png": "/receipts/<n>.png"}]` |
//! | `GET /receipts/<n>.png` | that receipt as PNG; 404 `unknown_receipt` |
//! | `GET /printer` | `{"state", "printed", "kept"}` |
//! | `POST /printer {"state": "ok" \| "paper_out" \| "offline"}` | 200 with the new `GET /printer`; 422 `unknown_printer_state` |
//!
//! Errors are `{"error": {"code", "message"}}`; a body that is not the
//! expected JSON object is 400 `bad_json`. Requests whose `Host` is not a
//! loopback name or address, or whose `Origin` (when present) is not the
//! control address itself (`http://127.0.0.1:7070`), get 403
//! `forbidden_origin`: the page cannot be driven from another site, another
//! local service's page, nor through DNS rebinding. A `POST` without
//! `Content-Type: application/json` gets 415 `unsupported_media_type` (a
//! browser's cross-site "simple request" cannot send that type without a
//! preflight).

mod receipts;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::{IndicatorLog, PressError, ScreenStateJson, TapError, TestCard, VirtualDevice};
use crate::traits::{Button, Signal};

/// Request bodies are tiny JSON objects.
const MAX_BODY: usize = 1024;

/// Why the control API could not start.
#[derive(Debug, thiserror::Error)]
pub enum HalError {
    #[error(
        "control API address {0} is not a loopback address; refusing to expose the virtual device"
    )]
    NonLoopbackControlAddr(SocketAddr),
    #[error("cannot bind the control API on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Binds the control API on `addr` (loopback only; port 0 picks one) and
/// serves it until `shutdown` is cancelled. Returns the bound address once
/// the listener is ready.
pub async fn serve_control(
    addr: SocketAddr,
    device: VirtualDevice,
    shutdown: CancellationToken,
) -> Result<SocketAddr, HalError> {
    if !addr.ip().is_loopback() {
        return Err(HalError::NonLoopbackControlAddr(addr));
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| HalError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| HalError::Bind { addr, source })?;
    let app = router(device, bound);
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, addr = %bound, "virtual device control API stopped");
        }
    });
    tracing::info!(addr = %bound, "virtual device control API listening");
    Ok(bound)
}

/// The control API as a router (what [`serve_control`] serves), for the
/// address it is served on (the only `Origin` it answers).
pub fn router(device: VirtualDevice, control_addr: SocketAddr) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/screen", get(screen))
        .route("/screen.png", get(screen_png))
        .route("/tap", post(tap))
        .route("/press", post(press))
        .route("/receipts", get(receipts::list))
        .route("/receipts/{file}", get(receipts::png))
        .route(
            "/printer",
            get(receipts::printer).post(receipts::set_printer),
        )
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such route".into()) })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(
            ControlOrigin::new(control_addr),
            loopback_only,
        ))
        .with_state(device)
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: String,
}

/// An error answer: `{"error": {"code", "message"}}` with `status`.
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}

fn error(status: StatusCode, code: &'static str, message: String) -> Response {
    ApiError {
        status,
        code,
        message,
    }
    .into_response()
}

/// Is `authority` (`host[:port]`) a loopback name or address?
fn loopback_authority(authority: &str) -> bool {
    let host = if let Some(rest) = authority.strip_prefix('[') {
        // [v6]:port
        match rest.split_once(']') {
            Some((h, tail)) if tail.is_empty() || tail.starts_with(':') => h,
            _ => return false,
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            Some(_) => return false,
            None => authority,
        }
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The one origin the control API answers: its own address.
#[derive(Debug, Clone)]
struct ControlOrigin(String);

impl ControlOrigin {
    fn new(addr: SocketAddr) -> ControlOrigin {
        // `SocketAddr` prints v6 in brackets, as a browser's Origin does.
        ControlOrigin(format!("http://{addr}"))
    }

    fn matches(&self, origin: &str) -> bool {
        origin.eq_ignore_ascii_case(&self.0)
    }
}

/// Is this a JSON content type (`application/json`, parameters allowed)?
fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

async fn loopback_only(
    State(control): State<ControlOrigin>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if !host.is_some_and(loopback_authority) {
        return error(
            StatusCode::FORBIDDEN,
            "forbidden_origin",
            "the control API answers only requests addressed to a loopback host".into(),
        );
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        if !origin.to_str().is_ok_and(|o| control.matches(o)) {
            return error(
                StatusCode::FORBIDDEN,
                "forbidden_origin",
                format!(
                    "the control API answers only pages served from its own origin {}",
                    control.0
                ),
            );
        }
    }
    if request.method() == axum::http::Method::POST {
        let content_type = headers.get(header::CONTENT_TYPE).map(|c| c.to_str());
        if !matches!(content_type, Some(Ok(c)) if is_json(c)) {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "a POST body must be sent with Content-Type: application/json".into(),
            );
        }
    }
    next.run(request).await
}

async fn index() -> impl IntoResponse {
    (
        [
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; frame-ancestors 'none'",
                ),
            ),
        ],
        Html(INDEX_HTML),
    )
}

/// `GET /screen` query: `?after=<version>` waits until something changed
/// after that version, at most `timeout_ms` (default 10 s, at most 30 s).
#[derive(Deserialize)]
struct ScreenQuery {
    after: Option<u64>,
    timeout_ms: Option<u64>,
}

const DEFAULT_WAIT: Duration = Duration::from_secs(10);
const MAX_WAIT: Duration = Duration::from_secs(30);

/// `GET /screen`: the semantic state plus what tests need to synchronise.
#[derive(Serialize)]
struct ScreenJson {
    /// The members of the state the display set, in their order.
    #[serde(flatten)]
    state: ScreenStateJson,
    /// Sequence number of the last flushed frame (0 before any).
    frame: u64,
    /// Change counter; pass it back as `?after=` to wait for the next change.
    version: u64,
    reader_waiting: bool,
    last_indicator: Option<Signal>,
    indicator: IndicatorLog,
}

async fn screen(
    State(device): State<VirtualDevice>,
    query: Result<Query<ScreenQuery>, QueryRejection>,
) -> Response {
    let query = match query {
        Ok(Query(q)) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_query", e.body_text()),
    };
    if let Some(seen) = query.after {
        let wait = query
            .timeout_ms
            .map_or(DEFAULT_WAIT, Duration::from_millis)
            .min(MAX_WAIT);
        // Timing out is a normal answer: the unchanged state.
        let _ = tokio::time::timeout(wait, device.changed_since(seen)).await;
    }
    let version = device.version();
    let indicator = device.indicator();
    let body = ScreenJson {
        state: device.screen_state(),
        frame: device.frame().seq,
        version,
        reader_waiting: device.reader_waiting(),
        last_indicator: indicator.last,
        indicator,
    };
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response()
}

async fn screen_png(State(device): State<VirtualDevice>) -> Response {
    let flushed = device.frame();
    match flushed.frame.to_png() {
        Ok(png) => {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            if let Ok(seq) = HeaderValue::from_str(&flushed.seq.to_string()) {
                headers.insert("x-frame-seq", seq);
            }
            (headers, png).into_response()
        }
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "png_encode_failed",
            e.to_string(),
        ),
    }
}

/// Parses a small JSON object body; 400 `bad_json`, 413 `body_too_large`.
fn json_body<T: for<'de> Deserialize<'de>>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let bytes = body.map_err(|rejection| {
        let status = rejection.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "body_too_large"
        } else {
            "bad_body"
        };
        ApiError {
            status,
            code,
            message: rejection.body_text(),
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError {
        status: StatusCode::BAD_REQUEST,
        code: "bad_json",
        message: format!("invalid JSON body: {e}"),
    })
}

#[derive(Deserialize)]
struct TapBody {
    card: String,
}

async fn tap(State(device): State<VirtualDevice>, body: Result<Bytes, BytesRejection>) -> Response {
    let body: TapBody = match json_body(body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let card = match TestCard::parse(&body.card) {
        Ok(c) => c,
        Err(e) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_card",
                e.to_string(),
            );
        }
    };
    match device.tap(card) {
        Ok(()) => {
            tracing::info!(card = card.name(), "virtual card tapped");
            axum::Json(serde_json::json!({ "ok": true, "card": card.name() })).into_response()
        }
        Err(e @ TapError::ReaderNotWaiting) => {
            error(StatusCode::CONFLICT, "reader_not_waiting", e.to_string())
        }
    }
}

#[derive(Deserialize)]
struct PressBody {
    button: String,
}

async fn press(
    State(device): State<VirtualDevice>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body: PressBody = match json_body(body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let button = match Button::parse(&body.button) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_button",
                e.to_string(),
            );
        }
    };
    match device.press(button) {
        Ok(()) => {
            axum::Json(serde_json::json!({ "ok": true, "button": button.as_str() })).into_response()
        }
        Err(e @ PressError::QueueFull) => {
            error(StatusCode::SERVICE_UNAVAILABLE, "input_busy", e.to_string())
        }
        Err(e @ PressError::Closed) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "input_closed",
            e.to_string(),
        ),
    }
}

/// The page at `GET /`.
const INDEX_HTML: &str = include_str!("index.html");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for ok in [
            "127.0.0.1",
            "127.0.0.1:7070",
            "localhost",
            "LOCALHOST:80",
            "[::1]:7070",
            "[::1]",
            "127.1.2.3:1",
        ] {
            assert!(loopback_authority(ok), "{ok}");
        }
        for bad in [
            "example.com",
            "10.0.0.1:7070",
            "localhost.evil.com",
            "[::2]:1",
            "127.0.0.1:x",
            "",
            "[::1]x",
            "0.0.0.0:7070",
        ] {
            assert!(!loopback_authority(bad), "{bad}");
        }
    }

    #[test]
    fn only_the_control_address_is_an_origin() {
        let v4 = ControlOrigin::new("127.0.0.1:7070".parse().unwrap());
        assert!(v4.matches("http://127.0.0.1:7070"));
        for bad in [
            "http://localhost:7070",
            "http://127.0.0.1:8080",
            "http://127.0.0.2:7070",
            "https://127.0.0.1:7070",
            "http://127.0.0.1:7070/x",
            "null",
            "http://evil.example",
            "",
        ] {
            assert!(!v4.matches(bad), "{bad}");
        }
        let v6 = ControlOrigin::new("[::1]:7070".parse().unwrap());
        assert!(v6.matches("http://[::1]:7070"));
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/jsonx"));
        assert!(!is_json(""));
    }
}
