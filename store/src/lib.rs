//! Durable SQLite ledger, outbox and audit log of the terminal agent.
//!
//! - [`Store`]: synchronous API, one writer connection (WAL,
//!   `synchronous=FULL`) and a pool of read-only readers.
//! - [`AsyncStore`]: the same calls on `tokio::task::spawn_blocking`.
//!
//! The store has no clock: every call that needs the time takes `now`
//! (milliseconds since the Unix epoch) from the caller.
//! See `docs/store.md` for the schema, durability and outbox semantics.
//!
//! A sale, write-ahead:
//!
//! ```
//! use proto::{Money, Reference, TerminalId};
//! use store::{Card, CardBrand, Change, Decision, DecisionMode, NewOutboxItem, NewTransaction,
//!             EntryMode, OutboxKind, Store, TxState, TxUpdate};
//!
//! # let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path().join("ledger.db"))?;
//! let now = 1_795_000_000_000;
//! let tid = TerminalId::new("pos_3f1e2d_001").unwrap();
//! // 1. The reference is minted and committed before any network use.
//! let reference = Reference::for_sequence(&tid, store.next_sequence(now)?);
//! let amount = Money::parse_positive("1500.50").unwrap();
//! store.record(&Change::insert(now, NewTransaction::sale(reference.clone(), amount)))?;
//! // 2. Card read, decided offline: the outcome and its forward commit together.
//! let card = Card::new("9f2c4e1a0b7d3e6f8a1c2b4d6e8f0a1b", "1111", CardBrand::Visa, EntryMode::Contactless)?;
//! let forward = NewOutboxItem::new(OutboxKind::Transaction, serde_json::json!({"offline": true}))
//!     .for_reference(reference.clone());
//! store.record(&Change::update(now + 900, reference.clone(), TxUpdate {
//!     state: Some(TxState::OfflineApproved),
//!     card: Some(card),
//!     decision: Some(Decision::new(DecisionMode::Offline, "link down before tap")?),
//!     ..TxUpdate::default()
//! }).with(forward))?;
//! // 3. Only now may the screen say "Approved". The outbox task sends it:
//! let item = store.claim_next_due(now + 1_000)?.expect("due");
//! store.ack(item.id, now + 1_200)?; // after the backend acknowledged
//! assert_eq!(store.offline_exposure(now + 1_200)?.count, 0);
//! # Ok::<(), store::StoreError>(())
//! ```

mod async_store;
mod db;
mod error;
mod model;
pub mod schema;

pub use async_store::AsyncStore;
pub use db::{
    AuditEntry, Checkpoint, KEY_REFERENCE_SEQUENCE, Pragmas, Store, StoreOptions, shift_totals,
};
pub use error::StoreError;
pub use model::{
    ApprovedTotals, Card, CardBrand, Change, Channel, CountTotal, Decision, DecisionMode,
    Durability, EntryMode, Jitter, LineItem, NewOutboxItem, NewTransaction, OfflineExposure,
    OutboxId, OutboxItem, OutboxKind, OutboxStats, Page, RetryPolicy, ShiftReport, Totals,
    Transaction, TxKind, TxState, TxUpdate, TxWrite, UnixMillis,
};
