//! 4.1 Kler sessions: create, read (organisation key or a terminal of the
//! session), close and cancel.

use axum::extract::State as AxState;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use proto::wire::{CreateSession, Timestamp};

use crate::body::{RawBody, decode};
use crate::error::ApiErr;

use super::{ApiResult, Org, P, S, ok, org_key_ok, session_id, verify_signed};

pub(super) async fn create_session(AxState(sim): S, _: Org, RawBody(body): RawBody) -> ApiResult {
    let req: CreateSession = decode(&body)?;
    let s = sim.mutate(|st, _, now| st.create_session(req, now)).await?;
    tracing::info!(session = %s.session_id, terminals = s.pos_terminals.len(), "session created");
    Ok(ok(StatusCode::CREATED, s))
}

pub(super) async fn get_session(
    AxState(sim): S,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    P(id): P<String>,
) -> ApiResult {
    let id = session_id(id)?;
    if headers.contains_key(proto::signing::HEADER_SIGNATURE) {
        let t = verify_signed(&sim, &method, &uri, &headers, b"").await?;
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

pub(super) async fn close_session(AxState(sim): S, _: Org, P(id): P<String>) -> ApiResult {
    let id = session_id(id)?;
    let s = sim
        .mutate(|st, live, now| st.close_session(&id, now, live))
        .await?;
    Ok(ok(StatusCode::OK, s))
}

pub(super) async fn cancel_session(AxState(sim): S, _: Org, P(id): P<String>) -> ApiResult {
    let id = session_id(id)?;
    let s = sim
        .mutate(|st, live, now| st.cancel_session(&id, now, live))
        .await?;
    Ok(ok(StatusCode::OK, s))
}
