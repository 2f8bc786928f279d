//! 4.3 terminal transactions: submission, statement, lookup and reversal.

use std::time::Duration;

use axum::extract::{ConnectInfo, State as AxState};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use proto::wire::{
    Page, ReversalAnswer, ReversalRequest, Scenario, StatementQuery, TransactionSubmission, codes,
};

use crate::body::{RawBody, decode};
use crate::conn::ConnHandle;
use crate::error::ApiErr;

use super::{
    ApiResult, P, Q, S, body_hash, idempotency_key, ok, page_params, reference, verify_terminal,
};

#[allow(clippy::too_many_arguments)]
pub(super) async fn submit_transaction(
    AxState(sim): S,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    P(tid): P<String>,
    RawBody(body): RawBody,
) -> ApiResult {
    let tid = verify_terminal(&sim, &method, &uri, &headers, &body, tid).await?;
    let key = idempotency_key(&headers)?;
    let sub: TransactionSubmission = decode(&body)?;
    if key != sub.reference.as_str() {
        return Err(ApiErr::bad_request(
            codes::IDEMPOTENCY_KEY_MISMATCH,
            "Idempotency-Key must equal the body's reference",
        ));
    }
    // How tip, items and amount fit together is part of the body's shape:
    // checked before anything is looked up or drawn.
    sub.check_parts()
        .map_err(|m| ApiErr::unprocessable(codes::INVALID_REQUEST, m))?;
    let hash = body_hash(&body)?;
    // Replays answer at once and never consume a scenario.
    let drawn = sim
        .mutate(|st, _, _| match st.transaction_replay(&tid, &sub, &hash)? {
            Some(answer) => Ok(Err(answer)),
            None => Ok(Ok(st.take_scenario(&tid))),
        })
        .await?;
    let scenario = match drawn {
        Err(mut answer) => {
            answer.receipt_url = Some(super::receipts::url(&headers, &answer.transaction_id));
            let mut r = ok(StatusCode::OK, answer);
            r.headers_mut().insert(
                "idempotent-replayed",
                axum::http::HeaderValue::from_static("true"),
            );
            return Ok(r);
        }
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
        Some(Scenario::Http409) => {
            return Err(ApiErr::conflict(
                codes::SANDBOX_REFUSED,
                "sandbox scenario http_409: refused, nothing was recorded",
            ));
        }
        Some(Scenario::Slow { ms }) => tokio::time::sleep(Duration::from_millis(ms)).await,
        _ => {}
    }
    let mut answer = sim
        .mutate(|st, _, now| st.record_transaction(&tid, hash, sub, scenario, now))
        .await?;
    answer.receipt_url = Some(super::receipts::url(&headers, &answer.transaction_id));
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

pub(super) async fn statement(
    AxState(sim): S,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    P(tid): P<String>,
    Q(q): Q<StatementQuery>,
) -> ApiResult {
    let tid = verify_terminal(&sim, &method, &uri, &headers, b"", tid).await?;
    let (page, size) = page_params(q.page, q.size)?;
    let all = sim.lock().state.statement(&tid, q.status);
    Ok(ok(StatusCode::OK, Page::slice(all, page, size)))
}

pub(super) async fn get_transaction(
    AxState(sim): S,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    P((tid, r)): P<(String, String)>,
) -> ApiResult {
    let tid = verify_terminal(&sim, &method, &uri, &headers, b"", tid).await?;
    let r = reference(r)?;
    let rec = sim.lock().state.transaction(&tid, &r)?;
    Ok(ok(StatusCode::OK, rec))
}

pub(super) async fn reversal(
    AxState(sim): S,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    P((tid, r)): P<(String, String)>,
    RawBody(body): RawBody,
) -> ApiResult {
    let tid = verify_terminal(&sim, &method, &uri, &headers, &body, tid).await?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        let _: ReversalRequest = decode(&body)?;
    }
    let r = reference(r)?;
    let status = sim.mutate(|st, _, now| st.reverse(&tid, &r, now)).await?;
    Ok(ok(
        StatusCode::OK,
        ReversalAnswer {
            reference: r,
            status,
        },
    ))
}
