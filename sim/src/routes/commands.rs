//! 4.3 terminal commands: the command stream and acknowledgements.

use axum::extract::State as AxState;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use proto::wire::CommandAck;

use crate::body::{RawBody, decode};
use crate::error::ApiErr;
use crate::sse;

use super::{ApiResult, P, S, ok, verify_terminal};

pub(super) async fn command_stream(
    AxState(sim): S,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    P(tid): P<String>,
) -> ApiResult {
    let tid = verify_terminal(&sim, &method, &uri, &headers, b"", tid).await?;
    let after = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiErr::bad_request(
                        "invalid_last_event_id",
                        "Last-Event-ID must be a command sequence number",
                    )
                })?,
        ),
    };
    Ok(sse::open(sim, tid, after))
}

pub(super) async fn ack_command(
    AxState(sim): S,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    P((tid, cid)): P<(String, String)>,
    RawBody(body): RawBody,
) -> ApiResult {
    let tid = verify_terminal(&sim, &method, &uri, &headers, &body, tid).await?;
    let ack: CommandAck = decode(&body)?;
    sim.mutate(|st, _, now| st.ack(&tid, &cid, ack, now))
        .await?;
    Ok(ok(StatusCode::OK, ack))
}
