//! Payments: the partner's sales, aborts and refunds (4.2) and the terminal's
//! payment events (4.3).

use axum::extract::State as AxState;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use proto::signing::sha256_hex;
use proto::wire::{CreatePayment, CreateRefund, PaymentEvent, RefundQuery, codes};

use crate::body::{RawBody, decode};
use crate::error::ApiErr;
use crate::state::State;

use super::{ApiResult, Org, P, Q, S, body_hash, idempotency_key, ok, payment_id, verify_terminal};

pub(super) async fn create_payment(
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

pub(super) async fn get_payment(AxState(sim): S, _: Org, P(id): P<String>) -> ApiResult {
    let id = payment_id(id)?;
    let p = sim.lock().state.payment(&id)?.payment.clone();
    Ok(ok(StatusCode::OK, p))
}

pub(super) async fn abort_payment(AxState(sim): S, _: Org, P(id): P<String>) -> ApiResult {
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

pub(super) async fn create_refund(
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

pub(super) async fn payment_event(
    AxState(sim): S,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    P((tid, pid)): P<(String, String)>,
    RawBody(body): RawBody,
) -> ApiResult {
    let tid = verify_terminal(&sim, &method, &uri, &headers, &body, tid).await?;
    let pid = payment_id(pid)?;
    let ev: PaymentEvent = decode(&body)?;
    let p = sim
        .mutate(|st, _, now| st.payment_event(&tid, &pid, ev, now))
        .await?;
    Ok(ok(StatusCode::OK, p))
}
