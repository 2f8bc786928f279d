//! 7.6 session configuration: the partner sets and reads it (organisation
//! key), a terminal of the session fetches it (signed).

use axum::extract::State as AxState;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use proto::wire::SessionConfig;

use crate::body::{RawBody, decode};

use super::{ApiResult, Org, P, S, ok, session_id, verify_terminal};

pub(super) async fn put_config(
    AxState(sim): S,
    _: Org,
    P(id): P<String>,
    RawBody(body): RawBody,
) -> ApiResult {
    let id = session_id(id)?;
    let settings: SessionConfig = decode(&body)?;
    let c = sim.mutate(|st, _, _| st.put_config(&id, settings)).await?;
    tracing::info!(session = %id, version = c.version, "session configuration set");
    Ok(ok(StatusCode::OK, c))
}

pub(super) async fn get_config(AxState(sim): S, _: Org, P(id): P<String>) -> ApiResult {
    let id = session_id(id)?;
    let g = sim.lock();
    g.state.known_session(&id)?;
    Ok(ok(StatusCode::OK, g.state.session_config(&id)))
}

pub(super) async fn terminal_config(
    AxState(sim): S,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    P(tid): P<String>,
) -> ApiResult {
    let tid = verify_terminal(&sim, &method, &uri, &headers, b"", tid).await?;
    let c = sim.lock().state.terminal_config(&tid)?;
    Ok(ok(StatusCode::OK, c))
}
