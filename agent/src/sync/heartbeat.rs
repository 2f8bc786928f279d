//! Heartbeat and session status: `POST /v1/terminals/:tid/heartbeat` every
//! `sync.heartbeat_interval`, feeding the core the session status and the
//! backend's offline limits when they change, and keeping the session
//! configuration (SPEC 7.6: fetched at start, then from each answer) in the
//! ledger when its version changes; `GET /v1/sessions/:id` every
//! `sync.session_poll_interval` to catch a close the heartbeat missed.

use std::time::SystemTime;

use proto::wire::{self, AgentState, HalReport, Heartbeat, TerminalConfig, Timestamp};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use std::time::Duration;

use proto::SessionId;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::link::Link;
use crate::client::ClientError;
use crate::client::SignedClient;
use crate::clock::Clock;
use crate::core::{self, Input};
use crate::msg::{CoreMsg, CoreStatus};
use crate::task::{RunError, Task};

/// The agent state the heartbeat reports, from the screen and the core.
pub fn agent_state(s: &CoreStatus) -> AgentState {
    match s.screen {
        ui::ScreenName::Booting => AgentState::Booting,
        ui::ScreenName::SessionClosed => AgentState::SessionClosed,
        ui::ScreenName::Error => AgentState::Error,
        _ if s.busy => AgentState::Busy,
        _ => AgentState::Idle,
    }
}

/// The backend's limits in the core's terms; fields it leaves out keep
/// the configured value (the core takes the stricter of the two anyway).
pub fn core_limits(
    configured: &core::OfflineLimits,
    w: &wire::OfflineLimits,
) -> core::OfflineLimits {
    core::OfflineLimits {
        floor_limit: w.floor_limit.unwrap_or(configured.floor_limit),
        max_total: w.max_total.unwrap_or(configured.max_total),
        max_count: w.max_count.unwrap_or(configured.max_count),
        max_age_ms: w
            .max_age_hours
            .map(|h| u64::from(h) * 3_600_000)
            .unwrap_or(configured.max_age_ms),
    }
}

fn timestamp(t: SystemTime) -> Option<Timestamp> {
    let ms = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())?;
    crate::mapping::timestamp(core::UnixMillis(ms)).ok()
}

/// The heartbeat task; ends when intake stops.
pub struct HeartbeatTask {
    pub store: store::AsyncStore,
    pub client: SignedClient,
    pub link: Link,
    /// Told `SessionStatus` and `OfflineLimits` when they change.
    pub core: mpsc::Sender<CoreMsg>,
    pub session_id: SessionId,
    pub clock: Clock,
    pub intake: CancellationToken,
    pub heartbeat_interval: Duration,
    pub session_poll_interval: Duration,
    /// What the core is doing, reported as the agent state.
    pub status: watch::Receiver<CoreStatus>,
    /// The configured offline limits, filling in what the backend leaves out.
    pub configured: core::OfflineLimits,
    pub hal: HalReport,
    /// The session configuration in force (restored at boot), replaced
    /// when the backend sends another version.
    pub config: watch::Sender<Option<TerminalConfig>>,
    /// Summed up in every beat (SPEC 8.2).
    pub metrics: crate::metrics::Metrics,
}

impl Task for HeartbeatTask {
    const NAME: &'static str = "heartbeat";

    fn run(self) -> impl Future<Output = Result<(), RunError>> + Send {
        heartbeat_task(self)
    }
}

async fn heartbeat_task(task: HeartbeatTask) -> Result<(), RunError> {
    let (status, configured, hal) = (&task.status, &task.configured, &task.hal);
    let mut beat = tokio::time::interval(task.heartbeat_interval);
    beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut session_poll = tokio::time::interval_at(Instant::now(), task.session_poll_interval);
    session_poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_session: Option<wire::SessionStatus> = None;
    let mut last_limits: Option<Option<wire::OfflineLimits>> = None;
    // Logged once per episode, not every beat.
    let mut credentials_refused = false;
    // The configuration versions last offered (kept or refused): each is
    // looked at, and a refusal logged, once.
    let mut offered = task.config.borrow().as_ref().map(versions);
    // At start the configuration is fetched; offline, the stored one stays.
    let fetched = tokio::select! {
        r = task.client.terminal_config() => r,
        _ = task.intake.cancelled() => return Ok(()),
    };
    task.link.observe(&fetched);
    match fetched {
        Ok(c) => keep_config(&task, &mut offered, c).await,
        Err(e) => {
            tracing::debug!(error = %e, "session configuration not fetched; the stored one applies")
        }
    }
    loop {
        tokio::select! {
            _ = beat.tick() => {}
            _ = session_poll.tick() => {
                let r = task.client.session(&task.session_id).await;
                task.link.observe(&r);
                match r {
                    Ok(s) => {
                        session_changed(&task, &mut last_session, s.status).await?;
                    }
                    Err(e) => tracing::debug!(error = %e, "session status not fetched"),
                }
                continue;
            }
            _ = task.intake.cancelled() => return Ok(()),
        }
        let stats = task.store.outbox_stats().await.ok().unwrap_or_default();
        let hb = Heartbeat {
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            state: agent_state(&status.borrow()),
            queue_depth: u32::try_from(stats.queued).unwrap_or(u32::MAX),
            parked: u32::try_from(stats.parked).unwrap_or(u32::MAX),
            oldest_queued_at: stats
                .oldest_created_at
                .and_then(|ms| crate::mapping::timestamp(core::UnixMillis(ms)).ok()),
            offline_since: task.link.offline_since().and_then(timestamp),
            hal: Some(hal.clone()),
            metrics: Some(task.metrics.summary(task.link.is_online())),
        };
        let r = tokio::select! {
            r = task.client.heartbeat(&hb) => r,
            _ = task.intake.cancelled() => return Ok(()),
        };
        task.link.observe(&r);
        match r {
            Ok(answer) => {
                credentials_refused = false;
                task.client.observe_server_time(answer.server_time.unix());
                session_changed(&task, &mut last_session, answer.session_status).await?;
                if let Some(c) = answer.config {
                    keep_config(&task, &mut offered, c).await;
                }
                if last_limits.as_ref() != Some(&answer.offline_limits) {
                    persist_limits(&task, answer.offline_limits.as_ref()).await;
                    let limits = answer
                        .offline_limits
                        .as_ref()
                        .map(|w| core_limits(configured, w));
                    send(&task, Input::OfflineLimits(limits)).await?;
                    last_limits = Some(answer.offline_limits);
                }
            }
            Err(e) => {
                let refused = matches!(
                    e,
                    ClientError::Permanent {
                        status: 401 | 403,
                        ..
                    }
                );
                if refused && !credentials_refused {
                    tracing::error!(error = %e, "heartbeat refused: credentials rejected; check the clock, then re-provision this terminal");
                } else {
                    tracing::debug!(error = %e, "heartbeat failed");
                }
                credentials_refused = refused;
                continue;
            }
        }
    }
}

/// The versions a configuration answer carries: its own, the catalog's and
/// the operators' (a new catalog or operator comes with the same settings).
type Versions = (u64, Option<u64>, Option<u64>);

fn versions(c: &TerminalConfig) -> Versions {
    (c.version, c.catalog_version, c.operators_version)
}

/// Keeps a configuration the backend sent when its versions differ from
/// the last ones `offered`: validated, written to the ledger, then
/// published. One that fails validation is refused with a WARN (once per
/// version) and the one in force stays.
async fn keep_config(task: &HeartbeatTask, offered: &mut Option<Versions>, config: TerminalConfig) {
    let version = config.version;
    if *offered == Some(versions(&config)) {
        return;
    }
    *offered = Some(versions(&config));
    if let Err(e) = config.settings.validate() {
        tracing::warn!(version, error = %e, "session configuration refused; the one in force stays");
        return;
    }
    match serde_json::to_string(&config) {
        Ok(json) => {
            let key = super::KV_SESSION_CONFIG.to_string();
            if let Err(e) = task.store.kv_set(key, json, task.clock.wall_ms()).await {
                tracing::error!(version, error = %e, "cannot store the session configuration; it applies until the next restart only");
            }
        }
        Err(e) => tracing::error!(version, error = %e, "cannot encode the session configuration"),
    }
    tracing::info!(version, "session configuration in force");
    task.config.send_replace(Some(config));
}

/// The session configuration stored by the last run. One that no longer
/// reads or validates is ignored with a warning (the next heartbeat brings
/// the backend's).
pub async fn stored_config(
    store: &store::AsyncStore,
) -> Result<Option<TerminalConfig>, store::StoreError> {
    let Some(json) = store.kv_get(super::KV_SESSION_CONFIG.to_string()).await? else {
        return Ok(None);
    };
    let parsed = serde_json::from_str::<TerminalConfig>(&json)
        .map_err(|e| e.to_string())
        .and_then(|c| c.settings.validate().map(|()| c).map_err(|e| e.to_string()));
    match parsed {
        Ok(c) => Ok(Some(c)),
        Err(e) => {
            tracing::warn!(error = %e, "stored session configuration is unreadable; ignored");
            Ok(None)
        }
    }
}

/// Keeps the heartbeat's limits for the next boot (written before the core
/// applies them; a failed write is logged and the limits still apply now).
async fn persist_limits(task: &HeartbeatTask, limits: Option<&wire::OfflineLimits>) {
    let key = super::KV_HEARTBEAT_LIMITS.to_string();
    let result = match limits.map(serde_json::to_string) {
        Some(Ok(json)) => task.store.kv_set(key, json, task.clock.wall_ms()).await,
        Some(Err(e)) => {
            tracing::error!(error = %e, "cannot encode the heartbeat's offline limits");
            return;
        }
        None => task.store.kv_delete(key).await.map(|_| ()),
    };
    if let Err(e) = result {
        tracing::error!(error = %e, "cannot store the heartbeat's offline limits; they apply until the next restart only");
    }
}

/// The heartbeat limits stored by the last run, in the core's terms. A
/// stored value that no longer parses is ignored with a warning (the
/// configured limits apply until the next heartbeat).
pub async fn stored_limits(
    store: &store::AsyncStore,
    configured: &core::OfflineLimits,
) -> Result<Option<core::OfflineLimits>, store::StoreError> {
    let Some(json) = store.kv_get(super::KV_HEARTBEAT_LIMITS.to_string()).await? else {
        return Ok(None);
    };
    match serde_json::from_str::<wire::OfflineLimits>(&json) {
        Ok(w) => Ok(Some(core_limits(configured, &w))),
        Err(e) => {
            tracing::warn!(error = %e, "stored heartbeat offline limits are unreadable; ignored");
            Ok(None)
        }
    }
}

async fn session_changed(
    task: &HeartbeatTask,
    last: &mut Option<wire::SessionStatus>,
    status: wire::SessionStatus,
) -> Result<(), RunError> {
    if *last == Some(status) {
        return Ok(());
    }
    *last = Some(status);
    if let Err(e) = task
        .store
        .kv_set(
            super::KV_SESSION_STATUS.to_string(),
            status.as_str().to_string(),
            task.clock.wall_ms(),
        )
        .await
    {
        tracing::warn!(error = %e, "cannot remember the session status");
    }
    let totals = if status == wire::SessionStatus::Active {
        None
    } else {
        super::session_totals(&task.store).await.ok()
    };
    tracing::info!(status = ?status, "session status");
    send(task, Input::SessionStatus { status, totals }).await
}

async fn send(task: &HeartbeatTask, input: Input) -> Result<(), RunError> {
    task.core
        .send(CoreMsg::Input(input))
        .await
        .map_err(|_| RunError::TaskStopped { task: "core loop" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{Money, Total};

    #[test]
    fn backend_limits_fill_in_from_the_configuration() {
        let configured = core::OfflineLimits::default();
        let w = wire::OfflineLimits {
            floor_limit: Some(Money::parse("100.00").unwrap()),
            max_total: None,
            max_count: Some(3),
            max_age_hours: Some(1),
        };
        let l = core_limits(&configured, &w);
        assert_eq!(l.floor_limit, Money::parse("100.00").unwrap());
        assert_eq!(l.max_total, configured.max_total);
        assert_eq!(l.max_count, 3);
        assert_eq!(l.max_age_ms, 3_600_000);
        assert_ne!(l.max_total, Total(0));
    }

    #[test]
    fn agent_state_follows_screen_and_busy() {
        let s = |screen, busy| {
            agent_state(&CoreStatus {
                busy,
                paying: busy,
                screen,
            })
        };
        assert_eq!(s(ui::ScreenName::Idle, false), AgentState::Idle);
        assert_eq!(s(ui::ScreenName::TapCard, true), AgentState::Busy);
        assert_eq!(
            s(ui::ScreenName::SessionClosed, false),
            AgentState::SessionClosed
        );
        assert_eq!(s(ui::ScreenName::Booting, false), AgentState::Booting);
    }
}
