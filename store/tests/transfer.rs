//! Pay by bank transfer (SPEC 7.7) in the ledger: schema step 6 (channel,
//! payer, transfer code, the transfer outbox kinds), migrated from step 5
//! with rows in it.

#![allow(clippy::unwrap_used)]

use serde_json::json;
use store::{
    Change, Channel, Decision, DecisionMode, NewOutboxItem, NewTransaction, OutboxKind, Store,
    StoreError, TxState, TxUpdate,
};

use crate::common::*;

fn paid_by_transfer() -> TxUpdate {
    TxUpdate {
        state: Some(TxState::Approved),
        channel: Some(Channel::Account),
        payer_name: Some("ADA OBI".into()),
        payer_bank: Some("GTBank".into()),
        captured_at: Some(T0 + 5_000),
        decision: Some(Decision::new(DecisionMode::Online, "transfer").unwrap()),
        ..TxUpdate::default()
    }
}

fn register(r: &proto::Reference) -> NewOutboxItem {
    NewOutboxItem::new(
        OutboxKind::TransferRegister,
        json!({"reference": r.as_str(), "code": "010001"}),
    )
    .for_reference(r.clone())
}

#[test]
fn a_transfer_is_approved_without_a_card_and_keeps_its_payer() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("l.db")).unwrap();
    let r = reference(1);
    store
        .record(&Change::insert(
            T0,
            NewTransaction::sale(r.clone(), money(250_000)),
        ))
        .unwrap();
    let code = TxUpdate {
        state: Some(TxState::Pending),
        transfer_code: Some("010001".into()),
        ..TxUpdate::default()
    };
    store
        .record(&Change::update(T0 + 1, r.clone(), code).with(register(&r)))
        .unwrap();
    store
        .record(&Change::update(T0 + 5_000, r.clone(), paid_by_transfer()))
        .unwrap();
    let t = store.transaction(&r).unwrap().unwrap();
    assert_eq!(t.state, TxState::Approved);
    assert_eq!(t.channel, Channel::Account);
    assert!(t.card.is_none());
    assert_eq!(t.payer_name.as_deref(), Some("ADA OBI"));
    assert_eq!(t.payer_bank.as_deref(), Some("GTBank"));
    assert_eq!(t.transfer_code.as_deref(), Some("010001"));
    // It counts as an approved sale.
    assert_eq!(store.approved_totals().unwrap().sales.count, 1);
    let items = store.list_outbox().unwrap();
    assert_eq!(items[0].kind, OutboxKind::TransferRegister);
}

#[test]
fn a_card_payment_still_needs_its_card_and_a_transfer_refuses_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("l.db")).unwrap();
    let r = reference(1);
    store
        .record(&Change::insert(
            T0,
            NewTransaction::sale(r.clone(), money(500)),
        ))
        .unwrap();
    let no_card = TxUpdate {
        state: Some(TxState::Approved),
        ..TxUpdate::default()
    };
    assert!(matches!(
        store.record(&Change::update(T0, r.clone(), no_card)),
        Err(StoreError::IllegalChange { .. })
    ));
    let both = TxUpdate {
        card: Some(card()),
        ..paid_by_transfer()
    };
    assert!(matches!(
        store.record(&Change::update(T0, r.clone(), both)),
        Err(StoreError::IllegalChange { .. })
    ));
    let payer_on_card = TxUpdate {
        payer_name: Some("X".into()),
        ..approve(false)
    };
    assert!(matches!(
        store.record(&Change::update(T0, r.clone(), payer_on_card)),
        Err(StoreError::IllegalChange { .. })
    ));
    let bad_code = TxUpdate {
        transfer_code: Some("12a456".into()),
        ..TxUpdate::default()
    };
    assert!(matches!(
        store.record(&Change::update(T0, r.clone(), bad_code)),
        Err(StoreError::InvalidInput(_))
    ));
    let long_payer = TxUpdate {
        payer_name: Some("x".repeat(141)),
        ..paid_by_transfer()
    };
    assert!(matches!(
        store.record(&Change::update(T0, r.clone(), long_payer)),
        Err(StoreError::InvalidInput(_))
    ));
    // Nothing of those changed the row.
    let t = store.transaction(&r).unwrap().unwrap();
    assert_eq!((t.state, t.channel), (TxState::Pending, Channel::Card));
}

#[test]
fn the_schema_refuses_an_approved_row_without_card_or_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.db");
    drop(Store::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let insert = |reference: &str, channel: &str, payer: Option<&str>| {
        conn.execute(
            "INSERT INTO transactions (reference, kind, amount, currency, state, created_at, \
             updated_at, channel, payer_name) VALUES (?1, 'sale', 500, 'NGN', 'approved', ?2, ?2, \
             ?3, ?4)",
            rusqlite::params![reference, T0, channel, payer],
        )
    };
    assert!(insert("r-1", "card", None).is_err());
    assert!(insert("r-2", "account", Some("ADA")).is_ok());
    assert!(insert("r-3", "cash", None).is_err());
    assert!(insert("r-4", "card", Some("ADA")).is_err());
}

#[test]
fn a_database_from_step_5_keeps_its_rows_indexes_and_outbox_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON;").unwrap();
        rusqlite_migration::Migrations::new(store::schema::MIGRATIONS[..5].to_vec())
            .to_latest(&mut conn)
            .unwrap();
        let c = card();
        conn.execute(
            "INSERT INTO transactions (reference, kind, amount, currency, state, card_token, \
             card_last4, card_brand, card_entry_mode, decision, decision_reason, created_at, \
             updated_at, tip_amount, card_aid, card_label, payment_id) \
             VALUES (?1, 'sale', 1500, 'NGN', 'approved', ?2, ?3, 'visa', 'contactless', \
             'online', 'online', ?4, ?4, 100, 'A0000000031010', 'VISA CREDIT', 'pay-1')",
            rusqlite::params![reference(1).as_str(), c.token(), c.last4(), T0],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO transactions (reference, kind, amount, currency, state, created_at, \
             updated_at, original_reference) VALUES (?1, 'refund', 500, 'NGN', 'pending', ?2, \
             ?2, ?3)",
            rusqlite::params![reference(2).as_str(), T0 + 1, reference(1).as_str()],
        )
        .unwrap();
        for kind in ["command_ack", "transaction", "reversal"] {
            conn.execute(
                "INSERT INTO outbox (kind, payload, reference, next_attempt_at, created_at) \
                 VALUES (?1, '{}', ?2, ?3, ?3)",
                rusqlite::params![kind, reference(2).as_str(), T0],
            )
            .unwrap();
        }
        // Acknowledged: id 3 must never come back.
        conn.execute("DELETE FROM outbox WHERE id = 3", []).unwrap();
    }
    let store = Store::open(&path).unwrap();
    let sale = store.transaction(&reference(1)).unwrap().unwrap();
    assert_eq!(sale.state, TxState::Approved);
    assert_eq!(sale.channel, Channel::Card);
    assert_eq!(sale.card, Some(card()));
    assert_eq!(sale.tip_amount, Some(money(100)));
    assert_eq!(sale.card_label.as_deref(), Some("VISA CREDIT"));
    let refund = store.transaction(&reference(2)).unwrap().unwrap();
    assert_eq!(refund.original_reference, Some(reference(1)));
    assert_eq!(store.restorable_transactions().unwrap().len(), 1);
    assert_eq!(
        store.transactions_for_payment(&pid("pay-1")).unwrap().len(),
        1
    );
    assert_eq!(store.list_outbox().unwrap().len(), 2);
    let ids = store
        .record(&Change::enqueue_only(T0, vec![register(&reference(2))]))
        .unwrap();
    assert_eq!(ids[0].0, 4, "outbox ids are never reused");
    // Foreign keys hold again: an item for an unknown transaction is refused.
    assert!(
        store
            .record(&Change::enqueue_only(T0, vec![register(&reference(99))]))
            .is_err()
    );
    assert!(store.pragmas().unwrap().foreign_keys);
    // The indexes and the uniqueness of forwards survived the rebuild.
    let conn = rusqlite::Connection::open(&path).unwrap();
    assert_eq!(
        created_indexes(&conn),
        [
            "outbox_by_reference",
            "outbox_one_per_shift",
            "outbox_payment_id",
            "transactions_original_reference",
            "transactions_payment_id",
            "transactions_restorable",
        ]
    );
    assert!(
        store
            .record(&Change::enqueue_only(T0, vec![forward(&reference(2))]))
            .is_err(),
        "still one forward per reference"
    );
    // The self reference of refunds still names the (rebuilt) table.
    let fk: String = conn
        .query_row(
            "SELECT \"table\" FROM pragma_foreign_key_list('transactions')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(fk, "transactions");
}
