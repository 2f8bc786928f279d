//! 4.1 operators of a session: create, list, and their transactions.

use axum::extract::State as AxState;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use proto::wire::{CreateOperator, Page, PageQuery};

use crate::body::{RawBody, decode};

use super::{ApiResult, Org, P, Q, S, ok, page_params, session_id, verify_terminal};

pub(super) async fn create_operator(
    AxState(sim): S,
    _: Org,
    P(id): P<String>,
    RawBody(body): RawBody,
) -> ApiResult {
    let id = session_id(id)?;
    let req: CreateOperator = decode(&body)?;
    // PBKDF2 is slow by design: hashed before the state lock is taken.
    let pin = crate::state::hash_new_pin(&req)?;
    let op = sim
        .mutate(|st, _, now| st.create_operator(&id, req, pin, now))
        .await?;
    Ok(ok(StatusCode::CREATED, op))
}

pub(super) async fn list_operators(
    AxState(sim): S,
    _: Org,
    P(id): P<String>,
    Q(q): Q<PageQuery>,
) -> ApiResult {
    let id = session_id(id)?;
    let (page, size) = page_params(q.page, q.size)?;
    let g = sim.lock();
    g.state.known_session(&id)?;
    Ok(ok(
        StatusCode::OK,
        Page::slice(g.state.operators_of(&id), page, size),
    ))
}

pub(super) async fn operator_transactions(
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

/// SPEC 7.2: the operators a terminal of the session may log in, with their
/// PIN hashes (signed by that terminal).
pub(super) async fn terminal_operators(
    AxState(sim): S,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    P(tid): P<String>,
) -> ApiResult {
    let tid = verify_terminal(&sim, &method, &uri, &headers, b"", tid).await?;
    let list = sim.lock().state.terminal_operators(&tid)?;
    Ok(ok(StatusCode::OK, list))
}
