//! Helpers shared by the store's integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use proto::{Money, PaymentId, Reference, TerminalId};
use serde_json::json;
use store::{
    Card, Change, Decision, DecisionMode, NewOutboxItem, NewTransaction, OutboxKind, TxState,
    TxUpdate,
};

pub const T0: i64 = 1_795_000_000_000;

pub fn tid() -> TerminalId {
    TerminalId::new("pos_3f1e2d_001").unwrap()
}

pub fn reference(n: u64) -> Reference {
    Reference::for_sequence(&tid(), n)
}

pub fn pid(s: &str) -> PaymentId {
    PaymentId::new(s).unwrap()
}

pub fn money(minor: u64) -> Money {
    Money::from_minor(minor).unwrap()
}

pub fn card() -> Card {
    Card::new(
        "9f2c4e1a0b7d3e6f8a1c2b4d6e8f0a1b",
        "1111",
        store::CardBrand::Visa,
        store::EntryMode::Contactless,
    )
    .unwrap()
}

pub fn other_card() -> Card {
    Card::new(
        "0123456789abcdef0123456789abcdef",
        "4444",
        store::CardBrand::Mastercard,
        store::EntryMode::Contactless,
    )
    .unwrap()
}

/// A `transaction` outbox item for `r`.
pub fn forward(r: &Reference) -> NewOutboxItem {
    NewOutboxItem::new(OutboxKind::Transaction, json!({ "reference": r.as_str() }))
        .for_reference(r.clone())
}

/// Inserts a pending sale and queues its forward, in one change.
pub fn pending_sale_with_forward(now: i64, r: &Reference, minor: u64) -> Change {
    Change::insert(now, NewTransaction::sale(r.clone(), money(minor))).with(forward(r))
}

/// Update taking a pending sale to approved (online) or offline approved.
pub fn approve(offline: bool) -> TxUpdate {
    TxUpdate {
        state: Some(if offline {
            TxState::OfflineApproved
        } else {
            TxState::Approved
        }),
        card: Some(card()),
        decision: Some(
            Decision::new(
                if offline {
                    DecisionMode::Offline
                } else {
                    DecisionMode::Online
                },
                if offline {
                    "link down before tap"
                } else {
                    "online"
                },
            )
            .unwrap(),
        ),
        auth_code: (!offline).then(|| "A1B2C3".to_string()),
        ..TxUpdate::default()
    }
}

/// Writes `bytes` at `offset` in the file.
pub fn overwrite(path: &std::path::Path, offset: u64, bytes: &[u8]) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
}

/// The indexes the schema created (not SQLite's automatic ones), by name.
pub fn created_indexes(conn: &rusqlite::Connection) -> Vec<String> {
    conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name",
    )
    .unwrap()
    .query_map([], |r| r.get(0))
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}
