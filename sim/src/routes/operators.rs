//! 4.1 operators of a session: create, list, and their transactions.

use axum::extract::State as AxState;
use axum::http::StatusCode;
use proto::wire::{CreateOperator, Page, PageQuery};

use crate::body::{RawBody, decode};
use crate::error::ApiErr;

use super::{ApiResult, Org, P, Q, S, ok, page_params, session_id};

pub(super) async fn create_operator(
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

pub(super) async fn list_operators(
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
