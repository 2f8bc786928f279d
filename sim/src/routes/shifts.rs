//! 7.5 shifts: a terminal sends each closed shift (signed, idempotent by
//! `shift_no`); the partner lists a session's (organisation key).

use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use proto::wire::ShiftSubmission;

use crate::body::{RawBody, decode};

use super::{ApiResult, Org, P, S, ok, session_id, verify_terminal};

pub(super) async fn submit_shift(
    AxState(sim): S,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    P(tid): P<String>,
    RawBody(body): RawBody,
) -> ApiResult {
    let tid = verify_terminal(&sim, &method, &uri, &headers, &body, tid).await?;
    let sub: ShiftSubmission = decode(&body)?;
    let (record, replayed) = sim
        .mutate(|st, _, now| st.record_shift(&tid, sub, now))
        .await?;
    if replayed {
        let mut r = ok(StatusCode::OK, record);
        r.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
        return Ok(r);
    }
    tracing::info!(terminal = %tid, shift_no = record.shift_no, "shift recorded");
    Ok(ok(StatusCode::CREATED, record))
}

pub(super) async fn list_shifts(AxState(sim): S, _: Org, P(id): P<String>) -> ApiResult {
    let id = session_id(id)?;
    let list = sim.lock().state.shifts_of(&id)?;
    Ok(ok(StatusCode::OK, list))
}
