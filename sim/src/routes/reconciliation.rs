//! 4.1 a session's reconciliation.

use axum::extract::State as AxState;
use axum::http::StatusCode;
use proto::wire::Timestamp;

use super::{ApiResult, Org, P, S, ok, session_id};

pub(super) async fn reconciliation(AxState(sim): S, _: Org, P(id): P<String>) -> ApiResult {
    let id = session_id(id)?;
    let r = sim.lock().state.reconciliation(&id, Timestamp::now())?;
    Ok(ok(StatusCode::OK, r))
}
