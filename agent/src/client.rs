//! HTTP clients for the backends (SPEC section 4).
//!
//! - [`SignedClient`]: the terminal API, every request signed with the
//!   terminal's credentials (SPEC section 3).
//! - [`OrgClient`]: organisation-key endpoints (`x-api-key`), used by
//!   `provision` and `reconcile`.
//!
//! Both speak HTTP/1.1 or HTTP/2 over rustls (no OpenSSL), trust the
//! platform's web roots plus an optional extra CA from `backend.ca_file`, and
//! turn every answer into `Ok(T)` (the `data` of a `{"success": true, ...}`
//! envelope) or a [`ClientError`] the outbox can classify:
//!
//! | what happened | error | outbox |
//! |---|---|---|
//! | 5xx, 408, 429, timeout, refused or cut connection | `Retryable` (with `Retry-After`) | retry with backoff |
//! | any other 4xx | `Permanent` (with the envelope's `code`) | park the item |
//! | 2xx (or 1xx/3xx) whose body is not the envelope or not the expected shape | `InvalidResponse` | retry: the backend may have recorded it, and every retry reuses the same idempotency key, so retrying loses nothing and charges nothing twice |
//! | the request could not even be built | `Local` | park the item (a bug) |
//!
//! Only the method, path and status are logged, never bodies.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proto::signing::{Credentials, Secret, sign_request};
use proto::wire::{
    CommandAck, Heartbeat, HeartbeatAnswer, PaymentEvent, ProvisionResponse, Reconciliation,
    ReversalAnswer, ReversalRequest, Session, StatementPage, StatementQuery, TransactionAnswer,
    TransactionRecord, TransactionSubmission,
};
use proto::{PaymentId, Reference, SessionId, TerminalId};
use reqwest::header::{ACCEPT, CONTENT_TYPE, DATE, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde::de::IgnoredAny;
use uuid::Uuid;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::clock::Clock;
use crate::config::BackendConfig;

/// The header carrying a transaction's reference on submissions.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// The header carrying the organisation key.
pub const ORG_KEY_HEADER: &str = "x-api-key";
/// The most of a response body that is read; longer ones are `InvalidResponse`.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
/// The refusal code of a request signed with a timestamp too far from the
/// server's clock (SPEC 3).
pub const CLOCK_REFUSAL: &str = "timestamp_out_of_window";
/// Longest `Retry-After` honoured (a broken header must not stall the outbox for days).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// When this agent was built (seconds since the epoch; from the commit, see
/// `build.rs`). A clock earlier than that is certainly wrong.
pub fn build_epoch() -> u64 {
    env!("BUILD_EPOCH").parse().unwrap_or(0)
}

/// `Some(explanation)` when `now` is before the build: TLS certificates
/// cannot be checked against such a clock, so HTTPS is refused until it is
/// set (the link counts as down; payments go offline within limits).
pub fn clock_before_build(now: SystemTime, build_epoch: u64) -> Option<String> {
    let now_secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    (now_secs < build_epoch).then(|| {
        format!(
            "the clock ({now_secs} s since the epoch) is before this build ({build_epoch}); \
             TLS refused until the clock is set"
        )
    })
}

/// Why a backend call did not produce the expected data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// Worth retrying: 5xx, 408, 429, timeouts, connection errors.
    #[error("{what}: temporary failure{}: {message}", fmt_status(*status))]
    Retryable {
        what: String,
        status: Option<u16>,
        retry_after: Option<Duration>,
        message: String,
    },
    /// The backend refused the request (4xx other than 408 and 429).
    #[error("{what}: refused with HTTP {status} {code}: {message}")]
    Permanent {
        what: String,
        status: u16,
        code: String,
        message: String,
    },
    /// The backend answered something that is not the Kler envelope or not
    /// the expected data. Treated as retryable (see the module docs).
    #[error("{what}: invalid response (HTTP {status}): {message}")]
    InvalidResponse {
        what: String,
        status: u16,
        message: String,
    },
    /// The request could not be built (bad path, unserializable body, TLS setup).
    #[error("{what}: {message}")]
    Local { what: String, message: String },
}

fn fmt_status(status: Option<u16>) -> String {
    status.map(|s| format!(" (HTTP {s})")).unwrap_or_default()
}

impl ClientError {
    /// Whether the same request may be sent again later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ClientError::Retryable { .. } | ClientError::InvalidResponse { .. }
        )
    }

    /// The HTTP status, when there was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Retryable { status, .. } => *status,
            ClientError::Permanent { status, .. } | ClientError::InvalidResponse { status, .. } => {
                Some(*status)
            }
            ClientError::Local { .. } => None,
        }
    }

    /// The envelope's error code of a permanent refusal.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Permanent { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The server's `Retry-After`, when it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ClientError::Retryable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Parses an HTTP-date (IMF-fixdate, as in `Date` and `Retry-After`).
fn parse_http_date(value: &str) -> Option<time::OffsetDateTime> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    Some(
        time::PrimitiveDateTime::parse(value.trim(), &format)
            .ok()?
            .assume_utc(),
    )
}

/// The server's clock from a response's `Date` header, in epoch seconds.
pub fn server_date(headers: &HeaderMap) -> Option<i64> {
    let value = headers.get(DATE)?.to_str().ok()?;
    Some(parse_http_date(value)?.unix_timestamp())
}

/// Parses `Retry-After`: delta-seconds or an HTTP-date (IMF-fixdate).
/// `now` is the server's time when known (its `Date` header), so a date
/// means the same wait whatever this terminal's clock says.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = value.parse().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let at = parse_http_date(value)?;
    let now = time::OffsetDateTime::from(now);
    let delta = at - now;
    Some(
        Duration::try_from(delta)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

fn truncate(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// The `error` of a failure envelope, if the body is one.
fn envelope_error(body: &[u8]) -> Option<(String, String)> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let e = v.get("error")?;
    let code = e.get("code")?.as_str()?.to_owned();
    let message = e
        .get("message")
        .and_then(|m| m.as_str())
        .unwrap_or_default()
        .to_owned();
    Some((code, message))
}

fn describe_body(body: &[u8]) -> String {
    match envelope_error(body) {
        Some((code, message)) => format!("{code}: {}", truncate(&message, 200)),
        None if body.is_empty() => "empty body".to_owned(),
        None => truncate(&String::from_utf8_lossy(body), 200),
    }
}

/// Classifies a complete answer. Pure: the heart of the client, unit-tested.
fn classify<T: DeserializeOwned>(
    what: &str,
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<T, ClientError> {
    let what = what.to_owned();
    match status {
        200..=299 => {
            let v: serde_json::Value =
                serde_json::from_slice(body).map_err(|e| ClientError::InvalidResponse {
                    what: what.clone(),
                    status,
                    message: format!("body is not JSON: {e}"),
                })?;
            if v.get("success").and_then(|s| s.as_bool()) != Some(true) {
                return Err(ClientError::InvalidResponse {
                    what,
                    status,
                    message: "body is not a {\"success\": true, \"data\": ...} envelope".into(),
                });
            }
            let data = v.get("data").cloned().unwrap_or(serde_json::Value::Null);
            serde_json::from_value(data).map_err(|e| ClientError::InvalidResponse {
                what,
                status,
                message: format!("unexpected data: {e}"),
            })
        }
        408 | 429 | 500..=599 => Err(ClientError::Retryable {
            what,
            status: Some(status),
            retry_after,
            message: describe_body(body),
        }),
        400..=499 => {
            let (code, message) = envelope_error(body)
                .unwrap_or_else(|| (format!("http_{status}"), describe_body(body)));
            if code == CLOCK_REFUSAL {
                // SPEC 3: the terminal's clock is off; the signed client
                // corrects it from the answer's `Date` and tries again. Never
                // a reason to park an item.
                return Err(ClientError::Retryable {
                    what,
                    status: Some(status),
                    retry_after: None,
                    message: format!("{code}: {}", truncate(&message, 200)),
                });
            }
            Err(ClientError::Permanent {
                what,
                status,
                code,
                message: truncate(&message, 200),
            })
        }
        300..=399 => Err(ClientError::InvalidResponse {
            what,
            status,
            message: "redirect not followed (credentials are only sent to the configured \
                      backend; configure its final address)"
                .into(),
        }),
        _ => Err(ClientError::InvalidResponse {
            what,
            status,
            message: format!("unexpected status; {}", describe_body(body)),
        }),
    }
}

fn transport_error(what: &str, e: &reqwest::Error) -> ClientError {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "connection broke while reading the answer"
    } else {
        "request failed"
    };
    // The error's Display includes the URL; the URL holds no secret.
    let mut message = format!("{kind}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    ClientError::Retryable {
        what: what.to_owned(),
        status: None,
        retry_after: None,
        message,
    }
}

/// The HTTP plumbing both clients share.
#[derive(Debug, Clone)]
struct Transport {
    http: reqwest::Client,
    base: Url,
    request_timeout: Duration,
}

impl Transport {
    fn new(base: Url, backend: &BackendConfig) -> Result<Transport, ClientError> {
        let local = |message: String| ClientError::Local {
            what: "building the HTTP client".into(),
            message,
        };
        // Never follow a redirect: the signed headers (and the organisation
        // key) would go to wherever a redirect points. A 3xx is an answer
        // like any other refusal. Over https, plain http is refused outright.
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .https_only(base.scheme() == "https")
            .user_agent(concat!("pos-agent/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(backend.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(60));
        if let Some(pem) = &backend.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| local(format!("backend.ca_file: {e}")))?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| local(e.to_string()))?;
        Ok(Transport {
            http,
            base,
            request_timeout: backend.request_timeout,
        })
    }

    /// The full URL of `path_and_query` (which must start with `/`) under the
    /// base URL, and the request path as sent (what is signed).
    fn url(&self, what: &str, path_and_query: &str) -> Result<(Url, String), ClientError> {
        if self.base.scheme() == "https" {
            if let Some(message) = clock_before_build(SystemTime::now(), build_epoch()) {
                return Err(ClientError::Retryable {
                    what: what.to_owned(),
                    status: None,
                    retry_after: None,
                    message,
                });
            }
        }
        if !path_and_query.starts_with('/') {
            return Err(ClientError::Local {
                what: what.to_owned(),
                message: "the path must start with '/'".into(),
            });
        }
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        let mut url = self.base.clone();
        let full = format!("{}{}", self.base.path().trim_end_matches('/'), path);
        url.set_path(&full);
        url.set_query(query);
        let sent = match url.query() {
            Some(q) => format!("{}?{}", url.path(), q),
            None => url.path().to_owned(),
        };
        Ok((url, sent))
    }

    async fn send<T: DeserializeOwned>(
        &self,
        what: &str,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Option<Vec<u8>>,
    ) -> Result<T, ClientError> {
        self.send_dated(what, method, url, headers, body).await.0
    }

    /// [`Transport::send`], with the server's clock from the answer's
    /// `Date` header when there was an answer.
    async fn send_dated<T: DeserializeOwned>(
        &self,
        what: &str,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Option<Vec<u8>>,
    ) -> (Result<T, ClientError>, Option<i64>) {
        let mut req = self
            .http
            .request(method, url)
            .headers(headers)
            .header(ACCEPT, "application/json")
            .timeout(self.request_timeout);
        if let Some(body) = body {
            req = req.header(CONTENT_TYPE, "application/json").body(body);
        }
        let mut resp = match req.send().await {
            Ok(resp) => resp,
            Err(e) => {
                tracing::debug!(request = what, error = %e, "backend request failed");
                return (Err(transport_error(what, &e)), None);
            }
        };
        let status = resp.status().as_u16();
        tracing::debug!(request = what, status, "backend answered");
        let date = server_date(resp.headers());
        let now = date
            .and_then(|d| u64::try_from(d).ok())
            .map_or_else(SystemTime::now, |d| UNIX_EPOCH + Duration::from_secs(d));
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, now));
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                        let err = ClientError::InvalidResponse {
                            what: what.to_owned(),
                            status,
                            message: format!("body longer than {MAX_RESPONSE_BYTES} bytes"),
                        };
                        return (Err(err), date);
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    let mut err = transport_error(what, &e);
                    if let ClientError::Retryable { status: s, .. } = &mut err {
                        *s = Some(status);
                    }
                    return (Err(err), date);
                }
            }
        }
        (classify(what, status, retry_after, &body), date)
    }
}

fn header_value(what: &str, name: &str, value: &str) -> Result<HeaderValue, ClientError> {
    HeaderValue::from_str(value).map_err(|_| ClientError::Local {
        what: what.to_owned(),
        message: format!("{name} is not a valid header value"),
    })
}

fn json_body<B: Serialize + ?Sized>(what: &str, body: &B) -> Result<Vec<u8>, ClientError> {
    serde_json::to_vec(body).map_err(|e| ClientError::Local {
        what: what.to_owned(),
        message: format!("cannot serialize the body: {e}"),
    })
}

/// The terminal API client: signs every request with the terminal's
/// credentials (fresh UUIDv4 nonce, wall-clock epoch seconds, the exact body
/// bytes sent, the path with its query).
///
/// Clock skew (SPEC 3): when the backend refuses a request with
/// `timestamp_out_of_window`, the client takes the server's time from the
/// answer's `Date` header, keeps the offset (shared by every clone) and
/// signs the same request again once with the corrected time. The
/// heartbeat's `server_time` feeds the same offset
/// ([`SignedClient::observe_server_time`]).
#[derive(Debug, Clone)]
pub struct SignedClient {
    transport: Transport,
    terminal: TerminalId,
    credentials: Credentials,
    clock: Clock,
    /// Seconds to add to this terminal's wall clock to get the server's.
    offset_s: Arc<AtomicI64>,
}

/// Offsets up to this many seconds are latency and rounding, not skew.
const SKEW_TOLERANCE_S: i64 = 2;

impl SignedClient {
    /// A client for `backend.terminal_api_url`, speaking for `terminal`.
    pub fn new(
        backend: &BackendConfig,
        terminal: TerminalId,
        credentials: Credentials,
    ) -> Result<Self, ClientError> {
        Ok(SignedClient {
            transport: Transport::new(backend.terminal_api_url.clone(), backend)?,
            terminal,
            credentials,
            clock: Clock::new(),
            offset_s: Arc::new(AtomicI64::new(0)),
        })
    }

    /// This client signing with `clock`'s wall time (the runtime's clock).
    pub fn with_clock(self, clock: Clock) -> SignedClient {
        SignedClient { clock, ..self }
    }

    /// The time requests are signed with: the terminal's wall clock plus
    /// the offset learned from the server, in epoch seconds.
    pub fn signing_time(&self) -> i64 {
        self.clock.wall_ms().div_euclid(1000) + self.offset_s.load(Ordering::Relaxed)
    }

    /// Seconds added to the terminal's clock when signing.
    pub fn clock_offset_s(&self) -> i64 {
        self.offset_s.load(Ordering::Relaxed)
    }

    /// The server's clock as an answer told it (`Date`, heartbeat
    /// `server_time`), in epoch seconds. Returns whether the offset changed.
    pub fn observe_server_time(&self, server_s: i64) -> bool {
        let offset = server_s - self.clock.wall_ms().div_euclid(1000);
        let before = self.offset_s.load(Ordering::Relaxed);
        if (offset - before).abs() <= SKEW_TOLERANCE_S {
            return false;
        }
        self.offset_s.store(offset, Ordering::Relaxed);
        tracing::warn!(
            offset_s = offset,
            "this terminal's clock differs from the backend's; signing with the backend's time"
        );
        true
    }

    /// The terminal this client speaks for.
    pub fn terminal(&self) -> &TerminalId {
        &self.terminal
    }

    fn signed_headers(
        &self,
        what: &str,
        method: &Method,
        sent_path: &str,
        body: &[u8],
        idempotency_key: Option<&Reference>,
    ) -> Result<HeaderMap, ClientError> {
        let signed = sign_request(
            &self.credentials,
            method.as_str(),
            sent_path,
            body,
            self.signing_time(),
            Uuid::new_v4(),
        )
        .map_err(|e| ClientError::Local {
            what: what.to_owned(),
            message: format!("cannot sign the body: {e}"),
        })?;
        let mut headers = HeaderMap::new();
        for (name, value) in signed.pairs() {
            headers.insert(name, header_value(what, name, value)?);
        }
        if let Some(key) = idempotency_key {
            headers.insert(
                IDEMPOTENCY_KEY,
                header_value(what, IDEMPOTENCY_KEY, key.as_str())?,
            );
        }
        Ok(headers)
    }

    async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        idempotency_key: Option<&Reference>,
    ) -> Result<T, ClientError> {
        let what_path = path.split('?').next().unwrap_or(path);
        let what = format!("{method} {what_path}");
        let (url, sent) = self.transport.url(&what, path)?;
        let mut corrected = false;
        loop {
            let headers = self.signed_headers(
                &what,
                &method,
                &sent,
                body.as_deref().unwrap_or_default(),
                idempotency_key,
            )?;
            let (result, date) = self
                .transport
                .send_dated(&what, method.clone(), url.clone(), headers, body.clone())
                .await;
            let refused_for_clock = matches!(
                &result,
                Err(ClientError::Retryable { message, status: Some(401), .. })
                    if message.starts_with(CLOCK_REFUSAL)
            );
            // One immediate retry, signed with the server's time, when the
            // answer told a time that moves the offset.
            match date {
                Some(d) if refused_for_clock && !corrected && self.observe_server_time(d) => {
                    corrected = true;
                }
                _ => return result,
            }
        }
    }

    /// `GET path` (with `?query` if any), signed.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.request(Method::GET, path, None, None).await
    }

    /// `POST path` with a JSON body, signed; `Idempotency-Key` when given.
    pub async fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        idempotency_key: Option<&Reference>,
    ) -> Result<T, ClientError> {
        let what = format!("POST {}", path.split('?').next().unwrap_or(path));
        let bytes = json_body(&what, body)?;
        self.request(Method::POST, path, Some(bytes), idempotency_key)
            .await
    }

    /// Opens a long-lived signed `GET` (the command stream, SPEC 4.3) and
    /// returns the response once its status is 2xx; the caller reads the
    /// event stream from it. No whole-request timeout applies; the connect
    /// timeout does. `Last-Event-ID` is sent when given.
    pub async fn open_stream(
        &self,
        path: &str,
        last_event_id: Option<&str>,
    ) -> Result<reqwest::Response, ClientError> {
        let what = format!("GET {}", path.split('?').next().unwrap_or(path));
        let (url, sent) = self.transport.url(&what, path)?;
        let mut headers = self.signed_headers(&what, &Method::GET, &sent, b"", None)?;
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        if let Some(id) = last_event_id {
            headers.insert("Last-Event-ID", header_value(&what, "Last-Event-ID", id)?);
        }
        let resp = self
            .transport
            .http
            .get(url)
            .headers(headers)
            .send()
            .await
            .map_err(|e| transport_error(&what, &e))?;
        let status = resp.status().as_u16();
        tracing::debug!(request = %what, status, "command stream answered");
        if resp.status().is_success() {
            return Ok(resp);
        }
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let body = resp.bytes().await.unwrap_or_default();
        match classify::<serde_json::Value>(&what, status, retry_after, &body) {
            Err(e) => Err(e),
            Ok(_) => Err(ClientError::InvalidResponse {
                what,
                status,
                message: "unexpected status for an event stream".into(),
            }),
        }
    }

    /// `/v1/terminals/:tid{rest}` for this client's terminal.
    pub fn terminal_path(&self, rest: &str) -> String {
        format!("/v1/terminals/{}{rest}", self.terminal)
    }

    /// `GET /v1/sessions/:id`, signed (the terminal never holds the org key).
    pub async fn session(&self, session: &SessionId) -> Result<Session, ClientError> {
        self.get_json(&format!("/v1/sessions/{session}")).await
    }

    /// `POST /v1/terminals/:tid/transactions` with `Idempotency-Key: <reference>`.
    pub async fn submit_transaction(
        &self,
        tx: &TransactionSubmission,
    ) -> Result<TransactionAnswer, ClientError> {
        self.post_json(
            &self.terminal_path("/transactions"),
            tx,
            Some(&tx.reference),
        )
        .await
    }

    /// `GET /v1/terminals/:tid/transactions/:reference`: `Ok(None)` on 404
    /// (the backend knows nothing of it).
    pub async fn lookup_transaction(
        &self,
        reference: &Reference,
    ) -> Result<Option<TransactionRecord>, ClientError> {
        match self
            .get_json(&self.terminal_path(&format!("/transactions/{reference}")))
            .await
        {
            Ok(record) => Ok(Some(record)),
            Err(ClientError::Permanent { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /v1/terminals/:tid/transactions/:reference/reversal`, with the
    /// reference as `Idempotency-Key` too.
    pub async fn reverse(
        &self,
        reference: &Reference,
        request: &ReversalRequest,
    ) -> Result<ReversalAnswer, ClientError> {
        self.post_json(
            &self.terminal_path(&format!("/transactions/{reference}/reversal")),
            request,
            Some(reference),
        )
        .await
    }

    /// `POST /v1/terminals/:tid/payments/:payment_id/events` (idempotent).
    pub async fn payment_event(
        &self,
        payment: &PaymentId,
        event: &PaymentEvent,
    ) -> Result<(), ClientError> {
        let _: IgnoredAny = self
            .post_json(
                &self.terminal_path(&format!("/payments/{payment}/events")),
                event,
                None,
            )
            .await?;
        Ok(())
    }

    /// `POST /v1/terminals/:tid/commands/:command_id/ack`.
    pub async fn ack_command(&self, command_id: &str, ack: &CommandAck) -> Result<(), ClientError> {
        let what = "POST /v1/terminals/:tid/commands/:command_id/ack";
        if command_id.is_empty()
            || command_id.len() > 128
            || !command_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(ClientError::Local {
                what: what.to_owned(),
                message: "command_id is not a safe path segment".into(),
            });
        }
        let _: IgnoredAny = self
            .post_json(
                &self.terminal_path(&format!("/commands/{command_id}/ack")),
                ack,
                None,
            )
            .await?;
        Ok(())
    }

    /// `POST /v1/terminals/:tid/heartbeat`.
    pub async fn heartbeat(&self, hb: &Heartbeat) -> Result<HeartbeatAnswer, ClientError> {
        self.post_json(&self.terminal_path("/heartbeat"), hb, None)
            .await
    }

    /// `GET /v1/terminals/:tid/config`: the session's configuration (SPEC 7.6).
    pub async fn terminal_config(&self) -> Result<proto::wire::TerminalConfig, ClientError> {
        self.get_json(&self.terminal_path("/config")).await
    }

    /// `GET /v1/terminals/:tid/operators`: the session's operators with
    /// their PIN hashes (SPEC 7.2).
    pub async fn operators(&self) -> Result<Vec<proto::wire::TerminalOperator>, ClientError> {
        self.get_json(&self.terminal_path("/operators")).await
    }

    /// `GET /v1/terminals/:tid/catalog`: the quick-sale catalog (SPEC 7.6).
    pub async fn catalog(&self) -> Result<proto::wire::Catalog, ClientError> {
        self.get_json(&self.terminal_path("/catalog")).await
    }

    /// `POST /v1/terminals/:tid/transfers`: the bank transfer this terminal
    /// waits for (SPEC 7.7), idempotent by reference (also sent as
    /// `Idempotency-Key`).
    pub async fn register_transfer(
        &self,
        registration: &proto::wire::TransferRegistration,
    ) -> Result<(), ClientError> {
        let _: IgnoredAny = self
            .post_json(
                &self.terminal_path("/transfers"),
                registration,
                Some(&registration.reference),
            )
            .await?;
        Ok(())
    }

    /// `DELETE /v1/terminals/:tid/transfers/:reference`: `Ok(false)` on 404
    /// (nothing registered: nothing to cancel).
    pub async fn cancel_transfer(&self, reference: &Reference) -> Result<bool, ClientError> {
        let path = self.terminal_path(&format!("/transfers/{reference}"));
        match self
            .request::<IgnoredAny>(Method::DELETE, &path, None, None)
            .await
        {
            Ok(_) => Ok(true),
            Err(ClientError::Permanent { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `POST /v1/terminals/:tid/shifts`: a closed shift's Z report,
    /// idempotent by `shift_no` (SPEC 7.5).
    pub async fn submit_shift(
        &self,
        shift: &proto::wire::ShiftSubmission,
    ) -> Result<(), ClientError> {
        let _: IgnoredAny = self
            .post_json(&self.terminal_path("/shifts"), shift, None)
            .await?;
        Ok(())
    }

    /// `GET /v1/terminals/:tid/transactions?page&size&status`: the backend's
    /// statement for this terminal.
    pub async fn statement(&self, query: &StatementQuery) -> Result<StatementPage, ClientError> {
        let mut params = Vec::new();
        if let Some(p) = query.page {
            params.push(format!("page={p}"));
        }
        if let Some(s) = query.size {
            params.push(format!("size={s}"));
        }
        if let Some(st) = query.status {
            params.push(format!("status={}", st.as_str()));
        }
        let mut path = self.terminal_path("/transactions");
        if !params.is_empty() {
            path.push('?');
            path.push_str(&params.join("&"));
        }
        self.get_json(&path).await
    }

    /// Opens the command stream (`GET /v1/terminals/:tid/commands/stream`).
    pub async fn command_stream(
        &self,
        last_event_id: Option<&str>,
    ) -> Result<reqwest::Response, ClientError> {
        self.open_stream(&self.terminal_path("/commands/stream"), last_event_id)
            .await
    }
}

mod org;
pub use org::OrgClient;
pub mod pairing;
pub use pairing::PairingClient;

#[cfg(test)]
mod tests;
