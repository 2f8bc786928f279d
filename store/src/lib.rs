//! Durable SQLite ledger, outbox and audit log of the terminal agent.
//!
//! - [`Store`]: synchronous API, one writer connection (WAL,
//!   `synchronous=FULL`) and a pool of read-only readers.
//! - [`AsyncStore`]: the same calls on `tokio::task::spawn_blocking`.
//!
//! The store has no clock: every call that needs the time takes `now`
//! (milliseconds since the Unix epoch) from the caller.
//! See `docs/store.md` for the schema, durability and outbox semantics.

mod async_store;
mod db;
mod error;
mod model;
pub mod schema;

pub use async_store::AsyncStore;
pub use db::{AuditEntry, KEY_REFERENCE_SEQUENCE, Pragmas, Store, StoreOptions};
pub use error::StoreError;
pub use model::{
    Card, Change, CountTotal, Decision, DecisionMode, Jitter, NewOutboxItem, NewTransaction,
    OfflineExposure, OutboxId, OutboxItem, OutboxKind, OutboxStats, Page, RetryPolicy, Totals,
    Transaction, TxKind, TxState, TxUpdate, TxWrite, UnixMillis,
};
