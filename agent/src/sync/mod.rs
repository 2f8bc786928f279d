//! Sync with the backends: the command stream ([`commands`]), the outbox
//! drainer ([`outbox`]), heartbeat and session status ([`heartbeat`]), and
//! the link state they all feed ([`link`]). Each is one tokio task started
//! by [`crate::runtime`].

pub mod commands;
pub mod heartbeat;
pub mod link;
pub mod outbox;

use std::sync::Arc;
use std::time::Duration;

use proto::{SessionId, TerminalId};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::client::SignedClient;
use crate::clock::Clock;
use crate::core;
use crate::msg::CoreMsg;
use link::Link;

/// kv key of the last session status the backend reported.
pub const KV_SESSION_STATUS: &str = "session.status";
/// kv key of the session (event) name, for the idle screen at boot.
pub const KV_SESSION_NAME: &str = "session.name";
/// kv key of this terminal's label in the session.
pub const KV_TERMINAL_LABEL: &str = "terminal.label";

/// What every sync task holds.
#[derive(Clone)]
pub struct Shared {
    pub store: store::AsyncStore,
    pub client: SignedClient,
    pub link: Link,
    pub core: mpsc::Sender<CoreMsg>,
    pub outbox_wake: Arc<Notify>,
    pub terminal_id: TerminalId,
    pub session_id: SessionId,
    /// Cancelled when the agent stops taking work (first step of shutdown).
    pub intake: CancellationToken,
    /// Cancelled when everything stops.
    pub all: CancellationToken,
    pub clock: Clock,
    pub heartbeat_interval: Duration,
    pub session_poll_interval: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
}

/// End-of-day totals for the session-closed screen: approved (online or
/// offline) sales and refunds in the local ledger.
pub async fn session_totals(
    store: &store::AsyncStore,
) -> Result<core::SessionTotals, store::StoreError> {
    // One aggregate query in the store, not a scan of the ledger here.
    let t = store.approved_totals().await?;
    let count = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    Ok(core::SessionTotals {
        sales_count: count(t.sales.count),
        sales_total: t.sales.total,
        refunds_count: count(t.refunds.count),
        refunds_total: t.refunds.total,
    })
}
