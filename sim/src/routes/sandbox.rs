//! 4.2 sandbox controls: scenarios, reset and the webhook log.

use axum::extract::State as AxState;
use axum::http::StatusCode;
use proto::wire::{ActiveScenario, Page, PageQuery, Scenario, Scenarios, SetScenario};

use crate::body::{RawBody, decode};
use crate::error::ApiErr;

use super::{ApiResult, Org, Q, S, ok, page_params};

pub(super) async fn list_scenarios(AxState(sim): S, _: Org) -> ApiResult {
    let g = sim.lock();
    let mut active: Vec<ActiveScenario> = g
        .state
        .scenarios
        .values()
        .map(|s| ActiveScenario {
            terminal_id: s.terminal_id.clone(),
            scenario: s.scenario,
            remaining: s.remaining,
        })
        .collect();
    active.sort_by(|a, b| a.terminal_id.cmp(&b.terminal_id));
    Ok(ok(
        StatusCode::OK,
        Scenarios {
            available: Scenario::NAMES.iter().map(|s| (*s).to_owned()).collect(),
            active,
        },
    ))
}

pub(super) async fn set_scenario(AxState(sim): S, _: Org, RawBody(body): RawBody) -> ApiResult {
    let req: SetScenario = decode(&body)?;
    if req.count > 10_000 {
        return Err(ApiErr::unprocessable(
            "invalid_count",
            "count must be 0-10000",
        ));
    }
    sim.mutate(|st, _, _| st.set_scenario(&req.terminal_id, req.scenario, req.count))
        .await?;
    Ok(ok(
        StatusCode::CREATED,
        ActiveScenario {
            terminal_id: req.terminal_id,
            scenario: req.scenario,
            remaining: req.count,
        },
    ))
}

pub(super) async fn reset(AxState(sim): S, _: Org) -> ApiResult {
    sim.mutate(|st, live, _| {
        st.reset();
        // Dropping the command channels ends every open stream.
        live.terminals.clear();
        live.pairings.clear();
        Ok(())
    })
    .await?;
    sim.webhooks.clear_log();
    Ok(ok(StatusCode::OK, serde_json::json!({"reset": true})))
}

pub(super) async fn webhook_attempts(AxState(sim): S, _: Org, Q(q): Q<PageQuery>) -> ApiResult {
    let (page, size) = page_params(q.page, q.size)?;
    Ok(ok(
        StatusCode::OK,
        Page::slice(sim.webhooks.attempts(), page, size),
    ))
}

/// `GET /v1/sandbox/stats`: the load figures of the current window.
pub(super) async fn stats(AxState(sim): S, _: Org) -> ApiResult {
    Ok(ok(StatusCode::OK, sim.load.stats()))
}

/// `DELETE /v1/sandbox/stats`: ends the window (answering its figures)
/// and opens a new one.
pub(super) async fn reset_stats(AxState(sim): S, _: Org) -> ApiResult {
    Ok(ok(StatusCode::OK, sim.load.reset()))
}
