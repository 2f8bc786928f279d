//! HTTP routes of SPEC section 4 and their authentication.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Query, State as AxState};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::{Json, Router};
use proto::signing::{IncomingHeaders, Rejection, canonical_body, sha256_hex, verify_request};
use proto::wire::{Envelope, Timestamp, codes};
use proto::{PaymentId, Reference, SessionId, TerminalId};
use serde::Serialize;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use crate::Sim;
use crate::error::ApiErr;

mod catalog;
mod commands;
mod config;
mod dashboard;
mod operators;
mod pairing;
mod payments;
mod receipts;
mod reconciliation;
mod sandbox;
mod sessions;
mod shifts;
mod terminals;
mod transactions;
mod transfers;

use catalog::{get_catalog, put_catalog, terminal_catalog};
use commands::{ack_command, command_stream};
use config::{get_config, put_config, terminal_config};
use operators::{create_operator, list_operators, operator_transactions, terminal_operators};
use payments::{abort_payment, create_payment, create_refund, get_payment, payment_event};
use reconciliation::reconciliation;
use sandbox::{list_scenarios, reset, set_scenario, webhook_attempts};
use sessions::{cancel_session, close_session, create_session, get_session};
use shifts::{list_shifts, submit_shift};
use terminals::{heartbeat, list_terminals, provision};
use transactions::{get_transaction, reversal, statement, submit_transaction};

type S = AxState<Arc<Sim>>;
type ApiResult = Result<Response, ApiErr>;

/// Declares the routes once: the router is built from them and
/// [`ROUTES`] lists them (`(method, path)`), which the OpenAPI test compares
/// with `/openapi.json`.
macro_rules! api_routes {
    ($( $path:expr => $( $method:ident $handler:expr ),+ ; )+) => {
        /// Every `(method, path)` the router serves.
        pub const ROUTES: &[(&str, &str)] = &[ $( $( (stringify!($method), $path), )+ )+ ];

        fn api_router() -> Router<Arc<Sim>> {
            Router::new()
                $( .route($path, MethodRouter::new() $( .$method($handler) )+ ) )+
        }
    };
}

api_routes! {
    // 4.1 Kler sessions
    "/v1/sessions" => post create_session, get dashboard::list_sessions;
    "/v1/sessions/{id}" => get get_session;
    "/v1/sessions/{id}/close" => patch close_session;
    "/v1/sessions/{id}/cancel" => patch cancel_session;
    "/v1/sessions/{id}/operators" => post create_operator, get list_operators;
    "/v1/sessions/{id}/operators/{op}/transactions" => get operator_transactions;
    "/v1/sessions/{id}/config" => put put_config, get get_config;
    "/v1/sessions/{id}/catalog" => put put_catalog, get get_catalog;
    "/v1/sessions/{id}/shifts" => get list_shifts;
    "/v1/sessions/{id}/account/balance" => get transfers::balance;
    "/v1/sessions/{id}/account/statement" => post transfers::statement;
    "/v1/reconciliation/{id}" => get reconciliation;
    "/v1/terminals/{tid}/provision" => post provision;
    // 8.1 pairing by code
    "/v1/pairing" => post pairing::register;
    "/v1/pairing/{code}" => get pairing::poll;
    "/v1/sessions/{id}/terminals/{tid}/pair" => post pairing::claim;
    // 4.2 partner API
    "/v1/terminals" => get list_terminals;
    "/v1/payments" => post create_payment, get dashboard::list_payments;
    "/v1/payments/{id}" => get get_payment;
    "/v1/payments/{id}/abort" => post abort_payment;
    "/v1/refunds" => post create_refund;
    "/v1/sandbox/scenarios" => get list_scenarios, post set_scenario;
    "/v1/sandbox" => delete reset;
    "/v1/sandbox/webhooks" => get webhook_attempts;
    "/v1/sandbox/transfers" => post transfers::sandbox_credit;
    // 4.3 terminal API
    "/v1/terminals/{tid}/commands/stream" => get command_stream;
    "/v1/terminals/{tid}/commands/{cid}/ack" => post ack_command;
    "/v1/terminals/{tid}/payments/{pid}/events" => post payment_event;
    "/v1/terminals/{tid}/transactions" => post submit_transaction, get statement;
    "/v1/terminals/{tid}/transactions/{reference}" => get get_transaction;
    "/v1/terminals/{tid}/transactions/{reference}/reversal" => post reversal;
    "/v1/terminals/{tid}/heartbeat" => post heartbeat;
    "/v1/terminals/{tid}/config" => get terminal_config;
    "/v1/terminals/{tid}/operators" => get terminal_operators;
    "/v1/terminals/{tid}/catalog" => get terminal_catalog;
    "/v1/terminals/{tid}/shifts" => post submit_shift;
    // 7.7 pay by bank transfer
    "/v1/terminals/{tid}/transfers" => post transfers::register;
    "/v1/terminals/{tid}/transfers/{reference}" => delete transfers::cancel;
    // 7.4 receipts
    "/r/{id}" => get receipts::by_transaction;
    "/r/ref/{reference}" => get receipts::by_reference;
    // load statistics (--max-inflight)
    crate::load::STATS_PATH => get sandbox::stats, delete sandbox::reset_stats;
    // 8.4 the dashboard
    "/dashboard" => get dashboard::page;
    "/dashboard/dashboard.js" => get dashboard::script;
    "/dashboard/dashboard.css" => get dashboard::style;
    "/v1/dashboard/events" => get dashboard::events;
    // this contract
    "/openapi.json" => get openapi_json;
}

pub fn router(sim: Arc<Sim>) -> Router {
    api_router()
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&sim.load),
            crate::load::shed,
        ))
        .with_state(sim)
}

/// `GET /openapi.json`: the OpenAPI 3.1 document (no authentication).
async fn openapi_json() -> Response {
    Json(crate::openapi::document()).into_response()
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
async fn verify_signed(
    sim: &Sim,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<TerminalId, ApiErr> {
    let mut terminal = None;
    verify_with(sim, method, uri, headers, body, |key| {
        let found = sim.lock().state.credentials(key);
        found.map(|(c, t)| {
            terminal = Some(t);
            c
        })
    })
    .await?;
    terminal.ok_or_else(|| ApiErr::unauthorized("unknown api key"))
}

/// Verifies a request signed (SPEC section 3) with the credentials
/// `lookup` finds for its api key. With a state file, the nonce is written
/// (and committed) before the request goes on, so a replay after a restart
/// is refused too.
async fn verify_with(
    sim: &Sim,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    lookup: impl FnOnce(&str) -> Option<proto::signing::Credentials>,
) -> Result<(), ApiErr> {
    let incoming = IncomingHeaders::from_fn(|name| headers.get(name).and_then(|v| v.to_str().ok()));
    let path = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or_else(|| uri.path());
    let now = Timestamp::now().unix();
    match verify_request(
        &incoming,
        method.as_str(),
        path,
        body,
        now,
        &sim.nonces,
        lookup,
    ) {
        Ok(_) => {
            if let (Some(store), Some(nonce)) = (&sim.store, incoming.nonce) {
                store
                    .submit_nonce(nonce.to_owned(), sim.nonces.expiry_after(now))
                    .committed()
                    .await?;
            }
            Ok(())
        }
        Err(Rejection::InvalidBody(e)) => Err(ApiErr::bad_request(
            codes::MALFORMED_JSON,
            format!("malformed JSON: {e}"),
        )),
        Err(r) => Err(ApiErr::rejection(&r)),
    }
}

/// A signed request for the terminal named in the path.
async fn verify_terminal(
    sim: &Sim,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    tid: String,
) -> Result<TerminalId, ApiErr> {
    let signer = verify_signed(sim, method, uri, headers, body).await?;
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
