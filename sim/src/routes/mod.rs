//! HTTP routes of SPEC section 4 and their authentication.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State as AxState};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use proto::signing::{IncomingHeaders, Rejection, canonical_body, sha256_hex, verify_request};
use proto::wire::{
    ActiveScenario, CommandAck, CreateOperator, CreatePayment, CreateRefund, CreateSession,
    Envelope, Heartbeat, HeartbeatAnswer, Page, PageQuery, PaymentEvent, ProvisionResponse,
    RefundQuery, ReversalAnswer, ReversalRequest, Scenario, Scenarios, SetScenario, StatementQuery,
    TerminalsQuery, Timestamp, TransactionSubmission, codes,
};
use proto::{PaymentId, Reference, SessionId, TerminalId};
use serde::Serialize;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use crate::body::{RawBody, decode};
use crate::conn::ConnHandle;
use crate::error::ApiErr;
use crate::state::State;
use crate::{Sim, sse};

type S = AxState<Arc<Sim>>;
type ApiResult = Result<Response, ApiErr>;

pub fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        // 4.1 Kler sessions
        .route("/v1/sessions", post(create_session))
        .route("/v1/sessions/{id}", get(get_session))
        .route("/v1/sessions/{id}/close", patch(close_session))
        .route("/v1/sessions/{id}/cancel", patch(cancel_session))
        .route(
            "/v1/sessions/{id}/operators",
            post(create_operator).get(list_operators),
        )
        .route(
            "/v1/sessions/{id}/operators/{op}/transactions",
            get(operator_transactions),
        )
        .route("/v1/reconciliation/{id}", get(reconciliation))
        .route("/v1/terminals/{tid}/provision", post(provision))
        // 4.2 partner API
        .route("/v1/terminals", get(list_terminals))
        .route("/v1/payments", post(create_payment))
        .route("/v1/payments/{id}", get(get_payment))
        .route("/v1/payments/{id}/abort", post(abort_payment))
        .route("/v1/refunds", post(create_refund))
        .route(
            "/v1/sandbox/scenarios",
            get(list_scenarios).post(set_scenario),
        )
        .route("/v1/sandbox", axum::routing::delete(reset))
        .route("/v1/sandbox/webhooks", get(webhook_attempts))
        // 4.3 terminal API
        .route("/v1/terminals/{tid}/commands/stream", get(command_stream))
        .route("/v1/terminals/{tid}/commands/{cid}/ack", post(ack_command))
        .route(
            "/v1/terminals/{tid}/payments/{pid}/events",
            post(payment_event),
        )
        .route(
            "/v1/terminals/{tid}/transactions",
            post(submit_transaction).get(statement),
        )
        .route(
            "/v1/terminals/{tid}/transactions/{reference}",
            get(get_transaction),
        )
        .route(
            "/v1/terminals/{tid}/transactions/{reference}/reversal",
            post(reversal),
        )
        .route("/v1/terminals/{tid}/heartbeat", post(heartbeat))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(sim)
}

fn ok<T: Serialize>(status: StatusCode, data: T) -> Response {
    (status, Json(Envelope::ok(data))).into_response()
}

async fn not_found(uri: Uri) -> ApiErr {
    ApiErr::new(
        StatusCode::NOT_FOUND,
        codes::NOT_FOUND,
        format!(
            "no route for {}",
            uri.path().chars().take(200).collect::<String>()
        ),
    )
}

async fn method_not_allowed(method: Method) -> ApiErr {
    ApiErr::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on this route"),
    )
}

// ---------------------------------------------------------------------------
// Extractors
// ---------------------------------------------------------------------------

/// Path parameters with a JSON error.
struct P<T>(T);

impl<T, St> FromRequestParts<St> for P<T>
where
    T: DeserializeOwned + Send,
    St: Send + Sync,
{
    type Rejection = ApiErr;
    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, ApiErr> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| P(t))
            .map_err(|e| ApiErr::bad_request("invalid_path", e.body_text()))
    }
}

/// Query parameters with a JSON error.
struct Q<T>(T);

impl<T, St> FromRequestParts<St> for Q<T>
where
    T: DeserializeOwned + Send,
    St: Send + Sync,
{
    type Rejection = ApiErr;
    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, ApiErr> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(t)| Q(t))
            .map_err(|e| ApiErr::bad_request("invalid_query", e.body_text()))
    }
}

/// The organisation key checked (constant time).
struct Org;

impl FromRequestParts<Arc<Sim>> for Org {
    type Rejection = ApiErr;
    async fn from_request_parts(parts: &mut Parts, sim: &Arc<Sim>) -> Result<Self, ApiErr> {
        if org_key_ok(&parts.headers, sim) {
            Ok(Org)
        } else if parts.headers.contains_key("x-api-key") {
            Err(ApiErr::unauthorized("the organisation key is not valid"))
        } else {
            Err(ApiErr::unauthorized(
                "x-api-key (the organisation key) is missing",
            ))
        }
    }
}

fn org_key_ok(headers: &HeaderMap, sim: &Sim) -> bool {
    headers
        .get("x-api-key")
        .is_some_and(|v| bool::from(v.as_bytes().ct_eq(sim.cfg.org_key.as_bytes())))
}

fn terminal_id(s: String) -> Result<TerminalId, ApiErr> {
    TerminalId::new(s.clone()).map_err(|_| ApiErr::not_found("terminal", &s))
}

fn session_id(s: String) -> Result<SessionId, ApiErr> {
    SessionId::new(s.clone()).map_err(|_| ApiErr::not_found("session", &s))
}

fn payment_id(s: String) -> Result<PaymentId, ApiErr> {
    PaymentId::new(s.clone()).map_err(|_| ApiErr::not_found("payment", &s))
}

fn reference(s: String) -> Result<Reference, ApiErr> {
    Reference::new(s.clone()).map_err(|_| ApiErr::not_found("transaction", &s))
}

/// Verifies a signed terminal request (SPEC section 3); returns the
/// terminal whose credentials signed it.
fn verify_signed(
    sim: &Sim,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<TerminalId, ApiErr> {
    let incoming = IncomingHeaders::from_fn(|name| headers.get(name).and_then(|v| v.to_str().ok()));
    let path = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or_else(|| uri.path());
    let mut terminal = None;
    let now = Timestamp::now().unix();
    let result = verify_request(
        &incoming,
        method.as_str(),
        path,
        body,
        now,
        &sim.nonces,
        |key| {
            let found = sim.lock().state.credentials(key);
            found.map(|(c, t)| {
                terminal = Some(t);
                c
            })
        },
    );
    match result {
        Ok(_) => terminal.ok_or_else(|| ApiErr::unauthorized("unknown api key")),
        Err(Rejection::InvalidBody(e)) => Err(ApiErr::bad_request(
            codes::MALFORMED_JSON,
            format!("malformed JSON: {e}"),
        )),
        Err(r) => Err(ApiErr::rejection(&r)),
    }
}

/// A signed request for the terminal named in the path.
fn verify_terminal(
    sim: &Sim,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    tid: String,
) -> Result<TerminalId, ApiErr> {
    let signer = verify_signed(sim, method, uri, headers, body)?;
    if signer.as_str() != tid {
        return Err(ApiErr::new(
            StatusCode::FORBIDDEN,
            "terminal_mismatch",
            "these credentials belong to another terminal",
        ));
    }
    Ok(signer)
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiErr> {
    let v = headers
        .get("idempotency-key")
        .ok_or_else(|| {
            ApiErr::bad_request(
                codes::MISSING_IDEMPOTENCY_KEY,
                "the Idempotency-Key header is required",
            )
        })?
        .to_str()
        .map_err(|_| {
            ApiErr::bad_request("invalid_idempotency_key", "Idempotency-Key must be ASCII")
        })?;
    if v.is_empty() || v.len() > 255 {
        return Err(ApiErr::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1-255 characters",
        ));
    }
    Ok(v.to_owned())
}

/// Hash of the canonical body: the same JSON in another key order or
/// spacing is the same request.
fn body_hash(body: &[u8]) -> Result<String, ApiErr> {
    canonical_body(body)
        .map(|c| sha256_hex(c.as_bytes()))
        .map_err(|e| ApiErr::bad_request(codes::MALFORMED_JSON, e.to_string()))
}

fn page_params(page: Option<u32>, size: Option<u32>) -> Result<(u32, u32), ApiErr> {
    let size = size.unwrap_or(20);
    if size == 0 || size > 200 {
        return Err(ApiErr::bad_request("invalid_size", "size must be 1-200"));
    }
    Ok((page.unwrap_or(0), size))
}

// ---------------------------------------------------------------------------
// 4.1 Kler sessions
// ---------------------------------------------------------------------------

async fn create_session(AxState(sim): S, _: Org, RawBody(body): RawBody) -> ApiResult {
    let req: CreateSession = decode(&body)?;
    let s = sim.mutate(|st, _, now| st.create_session(req, now)).await?;
    tracing::info!(session = %s.session_id, terminals = s.pos_terminals.len(), "session created");
    Ok(ok(StatusCode::CREATED, s))
}

async fn get_session(
    AxState(sim): S,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    P(id): P<String>,
) -> ApiResult {
    let id = session_id(id)?;
    if headers.contains_key(proto::signing::HEADER_SIGNATURE) {
        let t = verify_signed(&sim, &method, &uri, &headers, b"")?;
        let g = sim.lock();
        let belongs = g
            .state
            .terminals
            .get(&t)
            .is_some_and(|t| t.session_id == id);
        if !belongs {
            return Err(ApiErr::new(
                StatusCode::FORBIDDEN,
                "terminal_not_in_session",
                "this terminal does not belong to the session",
            ));
        }
    } else if !org_key_ok(&headers, &sim) {
        return Err(ApiErr::unauthorized(
            "an organisation key or a terminal signature is required",
        ));
    }
    let g = sim.lock();
    let s = g
        .state
        .session_view(&id, Timestamp::now(), &g.live)
        .ok_or_else(|| ApiErr::not_found("session", id.as_str()))?;
    Ok(ok(StatusCode::OK, s))
}

async fn close_session(AxState(sim): S, _: Org, P(id): P<String>) -> ApiResult {
    let id = session_id(id)?;
    let s = sim
        .mutate(|st, live, now| st.close_session(&id, now, live))
        .await?;
    Ok(ok(StatusCode::OK, s))
}

async fn cancel_session(AxState(sim): S, _: Org, P(id): P<String>) -> ApiResult {
    let id = session_id(id)?;
    let s = sim
        .mutate(|st, live, now| st.cancel_session(&id, now, live))
        .await?;
    Ok(ok(StatusCode::OK, s))
}

async fn create_operator(
    AxState(sim): S,
    _: Org,
    P(id): P<String>,
    RawBody(body): RawBody,
) -> ApiResult {
    let id = session_id(id)?;
    let req: CreateOperator = decode(&body)?;
    let op = sim
        .mutate(|st, _, now| st.create_operator(&id, req, now))
        .await?;
    Ok(ok(StatusCode::CREATED, op))
}

async fn list_operators(
    AxState(sim): S,
    _: Org,
    P(id): P<String>,
    Q(q): Q<PageQuery>,
) -> ApiResult {
    let id = session_id(id)?;
    let (page, size) = page_params(q.page, q.size)?;
    let g = sim.lock();
    if !g.state.sessions.contains_key(&id) {
        return Err(ApiErr::not_found("session", id.as_str()));
    }
    Ok(ok(
        StatusCode::OK,
        Page::slice(g.state.operators_of(&id), page, size),
    ))
}

async fn operator_transactions(
    AxState(sim): S,
    _: Org,
    P((id, op)): P<(String, String)>,
    Q(q): Q<PageQuery>,
) -> ApiResult {
    let id = session_id(id)?;
    let (page, size) = page_params(q.page, q.size)?;
    let all = sim.lock().state.operator_transactions(&id, &op)?;
    Ok(ok(StatusCode::OK, Page::slice(all, page, size)))
}

async fn reconciliation(AxState(sim): S, _: Org, P(id): P<String>) -> ApiResult {
    let id = session_id(id)?;
    let r = sim.lock().state.reconciliation(&id, Timestamp::now())?;
    Ok(ok(StatusCode::OK, r))
}

async fn provision(AxState(sim): S, _: Org, P(tid): P<String>) -> ApiResult {
    let tid = terminal_id(tid)?;
    let tenant = sim.cfg.tenant_id.clone();
    let (creds, session) = sim.mutate(|st, _, _| st.provision(&tid, &tenant)).await?;
    tracing::info!(terminal = %tid, "terminal provisioned");
    Ok(ok(
        StatusCode::CREATED,
        ProvisionResponse {
            api_key: creds.api_key,
            secret: creds.secret,
            merchant_id: creds.merchant_id,
            tenant_id: creds.tenant_id,
            terminal_id: Some(tid),
            session_id: Some(session),
        },
    ))
}

// ---------------------------------------------------------------------------
// 4.2 partner API
// ---------------------------------------------------------------------------

async fn list_terminals(AxState(sim): S, _: Org, Q(q): Q<TerminalsQuery>) -> ApiResult {
    let (page, size) = page_params(q.page, q.size)?;
    let g = sim.lock();
    if let Some(s) = &q.session_id {
        if !g.state.sessions.contains_key(s) {
            return Err(ApiErr::not_found("session", s.as_str()));
        }
    }
    let all = g
        .state
        .terminals_list(q.session_id.as_ref(), Timestamp::now(), &g.live);
    Ok(ok(StatusCode::OK, Page::slice(all, page, size)))
}

async fn create_payment(
    AxState(sim): S,
    _: Org,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult {
    let key = idempotency_key(&headers)?;
    let req: CreatePayment = decode(&body)?;
    let hash = body_hash(&body)?;
    let replay = sim.lock().state.idempotent_replay("payment", &key, &hash)?;
    if let Some(previous) = replay {
        return Ok(replayed(previous));
    }
    let p = sim
        .mutate(|st, live, now| {
            // Re-checked under the same lock as the insert.
            if let Some(previous) = st.idempotent_replay("payment", &key, &hash)? {
                return Ok(Err(previous));
            }
            st.create_payment(&key, hash, req, now, live).map(Ok)
        })
        .await?;
    match p {
        Ok(p) => {
            tracing::info!(payment = %p.payment_id, terminal = %p.terminal_id, amount = %p.amount, "payment created");
            if let Some(at) = p.expires_at {
                sim.schedule_expiry(p.payment_id.clone(), at);
            }
            Ok(ok(StatusCode::CREATED, p))
        }
        Err(previous) => Ok(replayed(previous)),
    }
}

fn replayed(previous: serde_json::Value) -> Response {
    let mut r = ok(StatusCode::CREATED, previous);
    r.headers_mut().insert(
        "idempotent-replayed",
        axum::http::HeaderValue::from_static("true"),
    );
    r
}

async fn get_payment(AxState(sim): S, _: Org, P(id): P<String>) -> ApiResult {
    let id = payment_id(id)?;
    let p = sim.lock().state.payment(&id)?.payment.clone();
    Ok(ok(StatusCode::OK, p))
}

async fn abort_payment(AxState(sim): S, _: Org, P(id): P<String>) -> ApiResult {
    let id = payment_id(id)?;
    let mut changes = sim.payments_changed.subscribe();
    if let Some(p) = sim.mutate(|st, _, now| st.begin_abort(&id, now)).await? {
        return Ok(ok(StatusCode::OK, p));
    }
    let deadline = tokio::time::Instant::now() + sim.cfg.abort_wait;
    loop {
        {
            let g = sim.lock();
            if let Some(done) = State::abort_outcome(g.state.payment(&id)?)? {
                return Ok(ok(StatusCode::OK, done));
            }
        }
        tokio::select! {
            r = changes.changed() => if r.is_err() { break },
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    Err(ApiErr::new(
        StatusCode::GATEWAY_TIMEOUT,
        codes::ABORT_NOT_CONFIRMED,
        format!(
            "the terminal did not confirm the abort within {} ms; poll the payment",
            sim.cfg.abort_wait.as_millis()
        ),
    ))
}

async fn create_refund(
    AxState(sim): S,
    _: Org,
    headers: HeaderMap,
    Q(q): Q<RefundQuery>,
    RawBody(body): RawBody,
) -> ApiResult {
    let key = idempotency_key(&headers)?;
    let req: CreateRefund = decode(&body)?;
    // The transaction is part of the request: the same key for another
    // transaction is a conflict too.
    let hash = sha256_hex(format!("{}\n{}", q.transaction_id, body_hash(&body)?).as_bytes());
    let p = sim
        .mutate(|st, live, now| {
            if let Some(previous) = st.idempotent_replay("refund", &key, &hash)? {
                return Ok(Err(previous));
            }
            st.create_refund(
                &key,
                hash,
                &q.transaction_id,
                req.amount,
                req.currency,
                now,
                live,
            )
            .map(Ok)
        })
        .await?;
    match p {
        Ok(p) => Ok(ok(StatusCode::CREATED, p)),
        Err(previous) => Ok(replayed(previous)),
    }
}

async fn list_scenarios(AxState(sim): S, _: Org) -> ApiResult {
    let g = sim.lock();
    let mut active: Vec<ActiveScenario> = g
        .state
        .scenarios
        .values()
        .map(|s| ActiveScenario {
            terminal_id: s.terminal_id.clone(),
            scenario: s.scenario,
            remaining: s.remaining,
        })
        .collect();
    active.sort_by(|a, b| a.terminal_id.cmp(&b.terminal_id));
    Ok(ok(
        StatusCode::OK,
        Scenarios {
            available: Scenario::NAMES.iter().map(|s| (*s).to_owned()).collect(),
            active,
        },
    ))
}

async fn set_scenario(AxState(sim): S, _: Org, RawBody(body): RawBody) -> ApiResult {
    let req: SetScenario = decode(&body)?;
    if req.count > 10_000 {
        return Err(ApiErr::unprocessable(
            "invalid_count",
            "count must be 0-10000",
        ));
    }
    sim.mutate(|st, _, _| st.set_scenario(&req.terminal_id, req.scenario, req.count))
        .await?;
    Ok(ok(
        StatusCode::CREATED,
        ActiveScenario {
            terminal_id: req.terminal_id,
            scenario: req.scenario,
            remaining: req.count,
        },
    ))
}

async fn reset(AxState(sim): S, _: Org) -> ApiResult {
    sim.mutate(|st, live, _| {
        st.reset();
        // Dropping the command channels ends every open stream.
        live.terminals.clear();
        Ok(())
    })
    .await?;
    sim.webhooks.clear_log();
    Ok(ok(StatusCode::OK, serde_json::json!({"reset": true})))
}

async fn webhook_attempts(AxState(sim): S, _: Org, Q(q): Q<PageQuery>) -> ApiResult {
    let (page, size) = page_params(q.page, q.size)?;
    Ok(ok(
        StatusCode::OK,
        Page::slice(sim.webhooks.attempts(), page, size),
    ))
}

// ---------------------------------------------------------------------------
// 4.3 terminal API
// ---------------------------------------------------------------------------

async fn command_stream(
    AxState(sim): S,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    P(tid): P<String>,
) -> ApiResult {
    let tid = verify_terminal(&sim, &method, &uri, &headers, b"", tid)?;
    let after = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiErr::bad_request(
                        "invalid_last_event_id",
                        "Last-Event-ID must be a command sequence number",
                    )
                })?,
        ),
    };
    Ok(sse::open(sim, tid, after))
}

async fn ack_command(
    AxState(sim): S,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    P((tid, cid)): P<(String, String)>,
    RawBody(body): RawBody,
) -> ApiResult {
    let tid = verify_terminal(&sim, &method, &uri, &headers, &body, tid)?;
    let ack: CommandAck = decode(&body)?;
    sim.mutate(|st, _, now| st.ack(&tid, &cid, ack, now))
        .await?;
    Ok(ok(StatusCode::OK, ack))
}

async fn payment_event(
    AxState(sim): S,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    P((tid, pid)): P<(String, String)>,
    RawBody(body): RawBody,
) -> ApiResult {
    let tid = verify_terminal(&sim, &method, &uri, &headers, &body, tid)?;
    let pid = payment_id(pid)?;
    let ev: PaymentEvent = decode(&body)?;
    let p = sim
        .mutate(|st, _, now| st.payment_event(&tid, &pid, ev, now))
        .await?;
    Ok(ok(StatusCode::OK, p))
}

#[allow(clippy::too_many_arguments)]
async fn submit_transaction(
    AxState(sim): S,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    P(tid): P<String>,
    RawBody(body): RawBody,
) -> ApiResult {
    let tid = verify_terminal(&sim, &method, &uri, &headers, &body, tid)?;
    let key = idempotency_key(&headers)?;
    let sub: TransactionSubmission = decode(&body)?;
    if key != sub.reference.as_str() {
        return Err(ApiErr::bad_request(
            codes::IDEMPOTENCY_KEY_MISMATCH,
            "Idempotency-Key must equal the body's reference",
        ));
    }
    let hash = body_hash(&body)?;
    // Replays answer at once and never consume a scenario.
    let drawn = sim
        .mutate(
            |st, _, _| match st.transaction_replay(&tid, &sub.reference, &hash)? {
                Some(answer) => Ok(Err(answer)),
                None => Ok(Ok(st.take_scenario(&tid))),
            },
        )
        .await?;
    let scenario = match drawn {
        Err(answer) => return Ok(ok(StatusCode::OK, answer)),
        Ok(s) => s,
    };
    match scenario {
        Some(Scenario::Http500) => {
            return Err(ApiErr::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                codes::SANDBOX_HTTP_500,
                "sandbox scenario http_500: nothing was recorded",
            ));
        }
        Some(Scenario::Slow { ms }) => tokio::time::sleep(Duration::from_millis(ms)).await,
        _ => {}
    }
    let answer = sim
        .mutate(|st, _, now| st.record_transaction(&tid, hash, sub, scenario, now))
        .await?;
    tracing::info!(
        terminal = %tid,
        reference = %answer.reference,
        status = ?answer.status,
        scenario = ?scenario.map(|s| s.name()),
        "transaction recorded"
    );
    match scenario {
        Some(Scenario::AuthTimeout) => tokio::time::sleep(sim.cfg.auth_timeout).await,
        Some(Scenario::DropAfterCommit) => {
            // Recorded; now the connection dies before any answer is written.
            conn.kill();
            return Ok(StatusCode::INTERNAL_SERVER_ERROR.into_response());
        }
        _ => {}
    }
    Ok(ok(StatusCode::CREATED, answer))
}

async fn statement(
    AxState(sim): S,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    P(tid): P<String>,
    Q(q): Q<StatementQuery>,
) -> ApiResult {
    let tid = verify_terminal(&sim, &method, &uri, &headers, b"", tid)?;
    let (page, size) = page_params(q.page, q.size)?;
    let all = sim.lock().state.statement(&tid, q.status);
    Ok(ok(StatusCode::OK, Page::slice(all, page, size)))
}

async fn get_transaction(
    AxState(sim): S,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    P((tid, r)): P<(String, String)>,
) -> ApiResult {
    let tid = verify_terminal(&sim, &method, &uri, &headers, b"", tid)?;
    let r = reference(r)?;
    let rec = sim.lock().state.transaction(&tid, &r)?;
    Ok(ok(StatusCode::OK, rec))
}

async fn reversal(
    AxState(sim): S,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    P((tid, r)): P<(String, String)>,
    RawBody(body): RawBody,
) -> ApiResult {
    let tid = verify_terminal(&sim, &method, &uri, &headers, &body, tid)?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        let _: ReversalRequest = decode(&body)?;
    }
    let r = reference(r)?;
    let status = sim
        .mutate(|st, _, now| Ok(st.reverse(&tid, &r, now)))
        .await?;
    Ok(ok(
        StatusCode::OK,
        ReversalAnswer {
            reference: r,
            status,
        },
    ))
}

async fn heartbeat(
    AxState(sim): S,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    P(tid): P<String>,
    RawBody(body): RawBody,
) -> ApiResult {
    let tid = verify_terminal(&sim, &method, &uri, &headers, &body, tid)?;
    let hb: Heartbeat = decode(&body)?;
    if hb.agent_version.chars().count() > 64 {
        return Err(ApiErr::unprocessable(
            "invalid_agent_version",
            "agent_version is too long",
        ));
    }
    let session_status = sim
        .mutate(|st, live, now| {
            let s = st.heartbeat(&tid, &hb, now)?;
            let l = live.entry(&tid);
            l.last_heartbeat = Some(tokio::time::Instant::now());
            l.online = true;
            Ok(s)
        })
        .await?;
    sim.schedule_offline_check(tid);
    Ok(ok(
        StatusCode::OK,
        HeartbeatAnswer {
            server_time: Timestamp::now(),
            session_status,
            offline_limits: sim.cfg.offline_limits,
        },
    ))
}
