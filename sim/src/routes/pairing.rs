//! Pairing by code (SPEC 8.1): a device registers and long-polls its code;
//! the organiser claims it for one of a session's terminals.

use std::time::Duration;

use axum::extract::State as AxState;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use proto::wire::{
    ClaimPairing, PairingClaimed, PairingCode, PairingPoll, PairingRequest, PairingState,
    ProvisionResponse, Timestamp,
};
use serde::Deserialize;

use crate::body::{RawBody, decode};
use crate::error::ApiErr;
use crate::pairing::Polled;

use super::{ApiResult, Org, P, Q, S, ok, session_id, terminal_id, verify_with};

/// Longest a poll may wait for a claim.
pub const MAX_WAIT_S: u64 = 30;

pub(super) async fn register(AxState(sim): S, RawBody(body): RawBody) -> ApiResult {
    let req: PairingRequest = decode(&body)?;
    let device = req.device_id.clone();
    let ttl_s = i64::try_from(sim.cfg.pairing_code_ttl.as_secs()).unwrap_or(i64::MAX);
    let ticket = sim
        .mutate(|_, live, now| {
            live.pairings
                .register(req.device_id, req.device_key_hash, now, ttl_s)
        })
        .await?;
    tracing::info!(device = %device, code = %ticket.pairing_code, "pairing code issued");
    Ok(ok(StatusCode::CREATED, ticket))
}

#[derive(Debug, Deserialize)]
pub(super) struct PollQuery {
    #[serde(default)]
    wait_s: Option<u64>,
}

pub(super) async fn poll(
    AxState(sim): S,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    P(code): P<String>,
    Q(q): Q<PollQuery>,
) -> ApiResult {
    let code = PairingCode::new(&code).map_err(|_| ApiErr::not_found("pairing code", &code))?;
    let wait_s = q.wait_s.unwrap_or(0);
    if wait_s > MAX_WAIT_S {
        return Err(ApiErr::bad_request(
            "invalid_wait_s",
            format!("wait_s must be 0-{MAX_WAIT_S}"),
        ));
    }
    // An unknown code (never issued, or lost with a restart) tells the
    // device to register again; it reveals nothing a claim could use.
    if !sim.lock().live.pairings.knows(&code) {
        return Err(ApiErr::not_found("pairing code", code.as_str()));
    }
    verify_with(&sim, &method, &uri, &headers, &[], |key| {
        sim.lock().live.pairings.device_credentials(&code, key)
    })
    .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait_s);
    let mut shutdown = sim.shutdown.clone();
    loop {
        let polled = sim.lock().live.pairings.poll(&code, Timestamp::now())?;
        let (mut changed, expires_at) = match polled {
            Polled::Answer(a) => {
                tracing::info!(code = %code, "pairing credentials delivered");
                return Ok(ok(StatusCode::OK, a));
            }
            Polled::Wait(rx, expires_at) => (rx, expires_at),
        };
        // Wake at the claim, the poll's deadline or the code's expiry
        // (then the next round answers 410), whichever comes first.
        let expiry = std::time::UNIX_EPOCH
            + Duration::from_secs(u64::try_from(expires_at.unix()).unwrap_or(0));
        let left = expiry
            .duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO);
        let at_expiry = tokio::time::Instant::now() + left;
        if tokio::time::Instant::now() >= deadline {
            return Ok(ok(StatusCode::OK, pending(expires_at)));
        }
        let until = deadline.min(at_expiry);
        tokio::select! {
            r = changed.changed() => {
                if r.is_err() {
                    // The entry was dropped (sandbox reset): ask again.
                    continue;
                }
            }
            _ = tokio::time::sleep_until(until) => {}
            _ = crate::stopped(&mut shutdown) => {
                return Ok(ok(StatusCode::OK, pending(expires_at)));
            }
        }
    }
}

fn pending(expires_at: Timestamp) -> PairingPoll {
    PairingPoll {
        status: PairingState::Pending,
        expires_at,
        credentials: None,
    }
}

pub(super) async fn claim(
    AxState(sim): S,
    _: Org,
    P((sid, tid)): P<(String, String)>,
    RawBody(body): RawBody,
) -> ApiResult {
    let sid = session_id(sid)?;
    let tid = terminal_id(tid)?;
    let req: ClaimPairing = decode(&body)?;
    let tenant = sim.cfg.tenant_id.clone();
    let claimed = sim
        .mutate(|st, live, now| {
            st.known_session(&sid)?;
            if st.terminal_session(&tid) != Some(&sid) {
                return Err(ApiErr::not_found("terminal in this session", tid.as_str()));
            }
            let device_id = live.pairings.claimable(&req.pairing_code, now)?;
            let (creds, session) = st.provision(&tid, &tenant)?;
            live.pairings.claim(
                &req.pairing_code,
                ProvisionResponse {
                    api_key: creds.api_key,
                    secret: creds.secret,
                    merchant_id: creds.merchant_id,
                    tenant_id: creds.tenant_id,
                    terminal_id: Some(tid.clone()),
                    session_id: Some(session.clone()),
                },
            );
            Ok(PairingClaimed {
                terminal_id: tid.clone(),
                session_id: session,
                device_id,
                status: PairingState::Paired,
            })
        })
        .await?;
    tracing::info!(terminal = %tid, device = %claimed.device_id, "pairing code claimed");
    Ok(ok(StatusCode::OK, claimed))
}
