//! 7.6 quick-sale catalog: the partner sets and reads it (organisation
//! key), a terminal of the session fetches it (signed).

use axum::extract::State as AxState;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use proto::wire::PutCatalog;

use crate::body::{RawBody, decode};

use super::{ApiResult, Org, P, S, ok, session_id, verify_terminal};

pub(super) async fn put_catalog(
    AxState(sim): S,
    _: Org,
    P(id): P<String>,
    RawBody(body): RawBody,
) -> ApiResult {
    let id = session_id(id)?;
    let put: PutCatalog = decode(&body)?;
    let c = sim.mutate(|st, _, _| st.put_catalog(&id, put)).await?;
    tracing::info!(session = %id, version = c.version, items = c.items.len(), "catalog set");
    Ok(ok(StatusCode::OK, c))
}

pub(super) async fn get_catalog(AxState(sim): S, _: Org, P(id): P<String>) -> ApiResult {
    let id = session_id(id)?;
    let g = sim.lock();
    g.state.known_session(&id)?;
    Ok(ok(StatusCode::OK, g.state.session_catalog(&id)))
}

pub(super) async fn terminal_catalog(
    AxState(sim): S,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    P(tid): P<String>,
) -> ApiResult {
    let tid = verify_terminal(&sim, &method, &uri, &headers, b"", tid).await?;
    let c = sim.lock().state.terminal_catalog(&tid)?;
    Ok(ok(StatusCode::OK, c))
}
