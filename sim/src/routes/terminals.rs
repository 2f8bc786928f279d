//! Terminals: provisioning (4.1), the partner's terminal list (4.2) and the
//! terminal's heartbeat (4.3).

use axum::extract::State as AxState;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use proto::wire::{Heartbeat, HeartbeatAnswer, Page, ProvisionResponse, TerminalsQuery, Timestamp};

use crate::body::{RawBody, decode};
use crate::error::ApiErr;

use super::{ApiResult, Org, P, Q, S, ok, page_params, terminal_id, verify_terminal};

pub(super) async fn provision(AxState(sim): S, _: Org, P(tid): P<String>) -> ApiResult {
    let tid = terminal_id(tid)?;
    let tenant = sim.cfg.tenant_id.clone();
    let (creds, session) = sim.mutate(|st, _, _| st.provision(&tid, &tenant)).await?;
    tracing::info!(terminal = %tid, "terminal provisioned");
    Ok(ok(
        StatusCode::CREATED,
        ProvisionResponse {
            api_key: creds.api_key,
            secret: creds.secret,
            merchant_id: creds.merchant_id,
            tenant_id: creds.tenant_id,
            terminal_id: Some(tid),
            session_id: Some(session),
        },
    ))
}

pub(super) async fn list_terminals(AxState(sim): S, _: Org, Q(q): Q<TerminalsQuery>) -> ApiResult {
    let (page, size) = page_params(q.page, q.size)?;
    let g = sim.lock();
    if let Some(s) = &q.session_id {
        g.state.known_session(s)?;
    }
    let all = g
        .state
        .terminals_list(q.session_id.as_ref(), Timestamp::now(), &g.live);
    Ok(ok(StatusCode::OK, Page::slice(all, page, size)))
}

pub(super) async fn heartbeat(
    AxState(sim): S,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    P(tid): P<String>,
    RawBody(body): RawBody,
) -> ApiResult {
    let tid = verify_terminal(&sim, &method, &uri, &headers, &body, tid).await?;
    let hb: Heartbeat = decode(&body)?;
    if hb.agent_version.chars().count() > 64 {
        return Err(ApiErr::unprocessable(
            "invalid_agent_version",
            "agent_version is too long",
        ));
    }
    let (session_status, config) = sim
        .mutate(|st, live, now| {
            let s = st.heartbeat(&tid, &hb, now)?;
            let l = live.entry(&tid);
            l.last_heartbeat = Some(tokio::time::Instant::now());
            l.online = true;
            Ok((s, st.terminal_config(&tid)?))
        })
        .await?;
    sim.schedule_offline_check(tid);
    Ok(ok(
        StatusCode::OK,
        HeartbeatAnswer {
            server_time: Timestamp::now(),
            session_status,
            offline_limits: sim.cfg.offline_limits,
            config: Some(config),
        },
    ))
}
