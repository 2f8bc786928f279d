//! Sync with the backends: the command stream ([`commands`]), the outbox
//! drainer ([`outbox`]), heartbeat and session status ([`heartbeat`]), and
//! the cashier's operators and catalog ([`desk`]), the link state they all
//! feed ([`link`], with its watcher task); the
//! bounded event-stream reader the command stream uses ([`sse`]). Each
//! task is a struct holding only what it uses ([`crate::task::Task`]),
//! started by [`crate::runtime`].

pub mod commands;
pub mod desk;
pub mod heartbeat;
pub mod link;
pub mod online;
pub mod outbox;
pub mod sse;

use crate::core;

/// kv key of the last session status the backend reported.
pub const KV_SESSION_STATUS: &str = "session.status";
/// kv key of the session (event) name, for the idle screen at boot.
pub const KV_SESSION_NAME: &str = "session.name";
/// kv key of the offline limits the last heartbeat set (the wire's JSON;
/// absent when the backend set none): kept across restarts (SPEC 5.6).
pub const KV_HEARTBEAT_LIMITS: &str = "offline.heartbeat_limits";
/// The ledger's kv key for the session configuration (SPEC 7.6) last
/// received, restored at boot.
pub const KV_SESSION_CONFIG: &str = "session.config";
/// kv key of this terminal's label in the session.
pub const KV_TERMINAL_LABEL: &str = "terminal.label";
/// kv key of the session's collection account (SPEC 7.7, the wire's JSON;
/// absent when the session has none), for the transfer screen.
pub const KV_SESSION_ACCOUNT: &str = "session.collection_account";

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
