//! The ledger on real SQLite files: PRAGMAs, migrations, state changes,
//! refunds, exposure, totals and typed errors.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use crate::common::*;
use proto::{Money, Total};
use serde_json::json;
use store::{
    Change, NewOutboxItem, NewTransaction, OutboxKind, Page, Store, StoreError, StoreOptions,
    TxKind, TxState, TxUpdate,
};

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(dir.path().join("ledger.db")).unwrap()
}

#[test]
fn pragmas_are_set_and_reopening_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let store = Store::open(&path).unwrap();
    let p = store.pragmas().unwrap();
    assert_eq!(p.journal_mode, "wal");
    assert_eq!(p.synchronous, 2, "synchronous=FULL");
    assert!(p.foreign_keys);
    assert_eq!(p.busy_timeout_ms, 5000);
    assert_eq!(p.page_size, 512, "a new ledger's page size");
    assert_eq!(p.wal_autocheckpoint, 16_384);
    assert_eq!(p.journal_size_limit, 16 * 1024 * 1024);
    store
        .record(&pending_sale_with_forward(T0, &reference(1), 150_050))
        .unwrap();
    drop(store);

    let store = Store::open(&path).unwrap();
    assert_eq!(store.pragmas().unwrap(), p);
    let t = store.transaction(&reference(1)).unwrap().unwrap();
    assert_eq!(t.amount, money(150_050));
    assert_eq!(store.list_outbox().unwrap().len(), 1);
    drop(store);

    let raw = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = raw
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, store::schema::MIGRATIONS.len() as i64);
}

#[test]
fn open_requires_an_existing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let err = Store::open(dir.path().join("missing").join("ledger.db")).unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err:?}");
}

#[test]
fn a_sale_is_recorded_with_its_audit_rows_and_outbox_items() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let r = reference(7);
    let mut new = NewTransaction::sale(r.clone(), money(200_000));
    new.operator_id = Some("op-1".into());
    new.payment_id = Some(pid("pay_1"));
    store.record(&Change::insert(T0, new)).unwrap();
    store
        .record(&Change::update(
            T0 + 10,
            r.clone(),
            TxUpdate {
                state: Some(TxState::Authorizing),
                card: Some(card()),
                captured_at: Some(T0 + 5),
                ..TxUpdate::default()
            },
        ))
        .unwrap();
    let ids = store
        .record(
            &Change::update(
                T0 + 20,
                r.clone(),
                TxUpdate {
                    backend_transaction_id: Some("txn_9".into()),
                    ..approve(false)
                },
            )
            .with(forward(&r))
            .with(
                NewOutboxItem::new(OutboxKind::PaymentEvent, json!({"status": "approved"}))
                    .for_payment(pid("pay_1")),
            ),
        )
        .unwrap();
    assert_eq!(ids.len(), 2);
    assert!(ids[0] < ids[1]);

    let t = store.transaction(&r).unwrap().unwrap();
    assert_eq!(t.state, TxState::Approved);
    assert_eq!(t.kind, TxKind::Sale);
    assert_eq!(t.card.as_ref().unwrap().last4(), "1111");
    assert_eq!(t.captured_at, Some(T0 + 5));
    assert_eq!(t.auth_code.as_deref(), Some("A1B2C3"));
    assert_eq!(t.backend_transaction_id.as_deref(), Some("txn_9"));
    assert_eq!(t.operator_id.as_deref(), Some("op-1"));
    assert_eq!((t.created_at, t.updated_at), (T0, T0 + 20));
    assert_eq!(
        store.transactions_for_payment(&pid("pay_1")).unwrap(),
        vec![t]
    );

    let audit = store.audit_log(0, 100).unwrap();
    let events: Vec<_> = audit.iter().map(|a| a.event.as_str()).collect();
    assert_eq!(events, ["created", "updated", "updated"]);
    assert_eq!(audit[2].detail["from"], "authorizing");
    assert_eq!(audit[2].detail["to"], "approved");
    let outbox = store.list_outbox().unwrap();
    assert_eq!(outbox.len(), 2);
    assert_eq!(outbox[0].kind, OutboxKind::Transaction);
    assert_eq!(outbox[0].reference.as_ref(), Some(&r));
    assert_eq!(outbox[1].payload, json!({"status": "approved"}));
    assert_eq!(outbox[1].next_attempt_at, T0 + 20);
    assert_eq!(store.outbox_stats().unwrap().queued, 2);
}

#[test]
fn a_duplicate_reference_is_typed_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store
        .record(&pending_sale_with_forward(T0, &reference(1), 100))
        .unwrap();
    let again = Change::insert(T0 + 1, NewTransaction::sale(reference(1), money(999)))
        .with(NewOutboxItem::new(OutboxKind::PaymentEvent, json!({})).for_payment(pid("p")));
    let err = store.record(&again).unwrap_err();
    match &err {
        StoreError::Duplicate { what } => assert!(what.contains("pos_3f1e2d_001-000001")),
        other => panic!("expected Duplicate, got {other:?}"),
    }
    assert_eq!(
        store.list_outbox().unwrap().len(),
        1,
        "the change was atomic"
    );
    assert_eq!(
        store.transaction(&reference(1)).unwrap().unwrap().amount,
        money(100)
    );
    // A second forward for the same reference is a duplicate too.
    let err = store
        .record(&Change::enqueue_only(T0 + 2, vec![forward(&reference(1))]))
        .unwrap_err();
    assert!(matches!(err, StoreError::Duplicate { .. }), "{err:?}");
}

#[test]
fn illegal_changes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let r = reference(3);
    store
        .record(&Change::insert(
            T0,
            NewTransaction::sale(r.clone(), money(500)),
        ))
        .unwrap();
    // Approval without a card.
    let err = store
        .record(&Change::update(
            T0,
            r.clone(),
            TxUpdate {
                state: Some(TxState::Approved),
                ..TxUpdate::default()
            },
        ))
        .unwrap_err();
    assert!(matches!(err, StoreError::IllegalChange { .. }), "{err:?}");
    store
        .record(&Change::update(T0 + 1, r.clone(), approve(false)))
        .unwrap();
    for back in [
        TxState::Pending,
        TxState::Declined,
        TxState::OfflineApproved,
    ] {
        let err = store
            .record(&Change::update(
                T0 + 2,
                r.clone(),
                TxUpdate {
                    state: Some(back),
                    ..TxUpdate::default()
                },
            ))
            .unwrap_err();
        assert!(
            matches!(err, StoreError::IllegalChange { .. }),
            "{back}: {err:?}"
        );
    }
    // The decision and the card are set once.
    let err = store
        .record(&Change::update(T0 + 3, r.clone(), approve(true)))
        .unwrap_err();
    assert!(matches!(err, StoreError::IllegalChange { .. }), "{err:?}");
    let err = store
        .record(&Change::update(
            T0 + 3,
            r.clone(),
            TxUpdate {
                card: Some(other_card()),
                ..TxUpdate::default()
            },
        ))
        .unwrap_err();
    assert!(matches!(err, StoreError::IllegalChange { .. }), "{err:?}");
    // Unknown reference.
    let err = store
        .record(&Change::update(T0, reference(99), TxUpdate::default()))
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert_eq!(
        store.transaction(&r).unwrap().unwrap().state,
        TxState::Approved
    );
}

#[test]
fn final_states_never_change() {
    for s in TxState::ALL {
        for n in TxState::ALL {
            let terminal = matches!(
                s,
                TxState::Declined
                    | TxState::OfflineDeclined
                    | TxState::Aborted
                    | TxState::TimedOut
                    | TxState::Failed
                    | TxState::Reversed
            );
            if terminal && s != n {
                assert!(!s.can_become(*n), "{s} -> {n}");
            }
        }
        assert!(!s.can_become(TxState::Pending) || *s == TxState::Pending);
    }
}

#[test]
fn refunds_respect_the_refundable_amount_and_the_card() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let sale = reference(1);
    store
        .record(&Change::insert(
            T0,
            NewTransaction::sale(sale.clone(), money(10_000)),
        ))
        .unwrap();
    assert_eq!(
        store.refundable(&sale).unwrap(),
        Money::ZERO,
        "not approved yet"
    );
    let err = store
        .record(&Change::insert(
            T0,
            NewTransaction::refund(reference(2), money(1), sale.clone()),
        ))
        .unwrap_err();
    assert!(
        matches!(err, StoreError::ExceedsRefundable { left: 0, .. }),
        "{err:?}"
    );

    store
        .record(&Change::update(T0 + 1, sale.clone(), approve(false)))
        .unwrap();
    assert_eq!(store.refundable(&sale).unwrap(), money(10_000));
    store
        .record(&Change::insert(
            T0 + 2,
            NewTransaction::refund(reference(2), money(6_000), sale.clone()),
        ))
        .unwrap();
    assert_eq!(
        store.refundable(&sale).unwrap(),
        money(4_000),
        "pending refunds count"
    );
    let err = store
        .record(&Change::insert(
            T0 + 3,
            NewTransaction::refund(reference(3), money(4_001), sale.clone()),
        ))
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::ExceedsRefundable {
                requested: 4_001,
                left: 4_000,
                ..
            }
        ),
        "{err:?}"
    );
    // Another card cannot take the refund.
    let err = store
        .record(&Change::update(
            T0 + 4,
            reference(2),
            TxUpdate {
                card: Some(other_card()),
                ..TxUpdate::default()
            },
        ))
        .unwrap_err();
    assert!(matches!(err, StoreError::IllegalChange { .. }), "{err:?}");
    // A declined refund frees its amount.
    store
        .record(&Change::update(
            T0 + 5,
            reference(2),
            TxUpdate {
                state: Some(TxState::Declined),
                card: Some(card()),
                decline_reason: Some("do_not_honor".into()),
                ..TxUpdate::default()
            },
        ))
        .unwrap();
    assert_eq!(store.refundable(&sale).unwrap(), money(10_000));
    let err = store.refundable(&reference(2)).unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
    let err = store.refundable(&reference(77)).unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    let err = store
        .record(&Change::insert(T0, {
            let mut t = NewTransaction::sale(reference(9), money(1));
            t.original_reference = Some(sale.clone());
            t
        }))
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
}

#[test]
fn offline_exposure_counts_offline_sales_until_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for (n, offline, amount, at) in [
        (1, true, 5_000, T0),
        (2, false, 7_000, T0 + 1_000),
        (3, true, 9_000, T0 + 2_000),
    ] {
        let r = reference(n);
        store
            .record(&Change::insert(
                at,
                NewTransaction::sale(r.clone(), money(amount)),
            ))
            .unwrap();
        store
            .record(&Change::update(at, r.clone(), approve(offline)).with(forward(&r)))
            .unwrap();
    }
    let e = store.offline_exposure(T0 + 60_000).unwrap();
    assert_eq!(e.count, 2);
    assert_eq!(e.total, Total(14_000));
    assert_eq!(e.oldest_created_at, Some(T0));
    assert_eq!(e.oldest_age, std::time::Duration::from_secs(60));

    let first = store.claim_next_due(T0 + 60_000).unwrap().unwrap();
    assert_eq!(first.reference, Some(reference(1)));
    store.ack(first.id, T0 + 61_000).unwrap();
    let e = store.offline_exposure(T0 + 61_000).unwrap();
    assert_eq!((e.count, e.total), (1, Total(9_000)));
    assert_eq!(e.oldest_created_at, Some(T0 + 2_000));
}

#[test]
fn totals_by_state_kind_and_operator() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let add = |n: u64, minor: u64, op: Option<&str>, approved: bool| {
        let mut t = NewTransaction::sale(reference(n), money(minor));
        t.operator_id = op.map(str::to_string);
        store.record(&Change::insert(T0, t)).unwrap();
        if approved {
            store
                .record(&Change::update(T0, reference(n), approve(false)))
                .unwrap();
        }
    };
    add(1, 100, Some("ann"), true);
    add(2, 250, Some("ann"), true);
    add(3, 400, Some("bob"), false);
    add(4, 1_000, None, true);
    store
        .record(&Change::insert(
            T0,
            NewTransaction::refund(reference(5), money(50), reference(1)),
        ))
        .unwrap();
    let t = store.totals().unwrap();
    let by_state: Vec<_> = t
        .by_state
        .iter()
        .map(|(s, c)| (*s, c.count, c.total.0))
        .collect();
    assert_eq!(
        by_state,
        [(TxState::Approved, 3, 1_350), (TxState::Pending, 2, 450)]
    );
    let by_kind: Vec<_> = t
        .by_kind
        .iter()
        .map(|(k, c)| (*k, c.count, c.total.0))
        .collect();
    assert_eq!(by_kind, [(TxKind::Refund, 1, 50), (TxKind::Sale, 4, 1_750)]);
    let by_op: Vec<_> = t
        .by_operator
        .iter()
        .map(|(o, c)| (o.clone(), c.count, c.total.0))
        .collect();
    assert_eq!(
        by_op,
        [
            (None, 2, 1_050),
            (Some("ann".into()), 2, 350),
            (Some("bob".into()), 1, 400)
        ]
    );
    let page = store
        .list_transactions(Page {
            offset: 1,
            limit: 2,
        })
        .unwrap();
    let refs: Vec<_> = page.iter().map(|t| t.reference.clone()).collect();
    assert_eq!(refs, [reference(2), reference(3)]);
}

#[test]
fn the_sequence_is_durable_and_kv_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let store = Store::open(&path).unwrap();
    assert_eq!(store.next_sequence(T0).unwrap(), 1);
    assert_eq!(store.next_sequence(T0).unwrap(), 2);
    store.kv_set("last_event_id", "evt-41", T0).unwrap();
    store.kv_set("last_event_id", "evt-42", T0).unwrap();
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.next_sequence(T0).unwrap(), 3);
    assert_eq!(
        store.kv_get("last_event_id").unwrap().as_deref(),
        Some("evt-42")
    );
    assert!(store.kv_delete("last_event_id").unwrap());
    assert_eq!(store.kv_get("last_event_id").unwrap(), None);
    assert!(!store.kv_delete("last_event_id").unwrap());
    store
        .kv_set(store::KEY_REFERENCE_SEQUENCE, "not-a-number", T0)
        .unwrap();
    let err = store.next_sequence(T0).unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
}

#[test]
fn the_audit_log_is_append_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let store = Store::open(&path).unwrap();
    store
        .record(&pending_sale_with_forward(T0, &reference(1), 100))
        .unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    let update = raw.execute("UPDATE audit_log SET event = 'x'", []);
    let delete = raw.execute("DELETE FROM audit_log", []);
    for r in [update, delete] {
        let err = r.unwrap_err();
        assert_eq!(
            err.sqlite_error_code(),
            Some(rusqlite::ErrorCode::ConstraintViolation),
            "{err}"
        );
        assert!(err.to_string().contains("append-only"), "{err}");
    }
    assert_eq!(store.audit_log(0, 10).unwrap().len(), 1);
}

#[test]
fn a_database_from_step_6_keeps_its_audit_rows_and_ids_without_autoincrement() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        rusqlite_migration::Migrations::new(store::schema::MIGRATIONS[..6].to_vec())
            .to_latest(&mut conn)
            .unwrap();
        for (at, event) in [
            (T0, "created"),
            (T0 + 1, "updated"),
            (T0 + 2, "outbox_acked"),
        ] {
            conn.execute(
                "INSERT INTO audit_log (at, reference, event, detail) VALUES (?1, 'r', ?2, '{}')",
                rusqlite::params![at, event],
            )
            .unwrap();
        }
    }
    let store = Store::open(&path).unwrap();
    let old = store.audit_log(0, 10).unwrap();
    let ids: Vec<i64> = old.iter().map(|e| e.id).collect();
    assert_eq!(ids, [1, 2, 3], "every row kept with its id");
    assert_eq!(old[1].event, "updated");
    store
        .record(&pending_sale_with_forward(T0 + 3, &reference(1), 100))
        .unwrap();
    let after = store.audit_log(3, 10).unwrap();
    assert_eq!(after.first().map(|e| e.id), Some(4), "ids keep growing");
    let raw = rusqlite::Connection::open(&path).unwrap();
    let sql: String = raw
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'audit_log'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!sql.contains("AUTOINCREMENT"), "{sql}");
    let sequences: i64 = raw
        .query_row(
            "SELECT count(*) FROM sqlite_sequence WHERE name LIKE 'audit_log%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(sequences, 0);
    let delete = raw.execute("DELETE FROM audit_log", []).unwrap_err();
    assert!(delete.to_string().contains("append-only"), "{delete}");
    let update = raw
        .execute("UPDATE audit_log SET event = 'x'", [])
        .unwrap_err();
    assert!(update.to_string().contains("append-only"), "{update}");
}

#[test]
fn a_database_from_step_7_keeps_its_outbox_order_and_one_forward_per_reference_with_one_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        rusqlite_migration::Migrations::new(store::schema::MIGRATIONS[..7].to_vec())
            .to_latest(&mut conn)
            .unwrap();
        conn.execute(
            "INSERT INTO transactions (reference, kind, amount, currency, state, created_at, \
             updated_at) VALUES (?1, 'sale', 500, 'NGN', 'pending', ?2, ?2)",
            rusqlite::params![reference(1).as_str(), T0],
        )
        .unwrap();
        for kind in ["payment_event", "transaction", "payment_event"] {
            conn.execute(
                "INSERT INTO outbox (kind, payload, reference, next_attempt_at, created_at) \
                 VALUES (?1, '{}', ?2, ?3, ?3)",
                rusqlite::params![kind, reference(1).as_str(), T0],
            )
            .unwrap();
        }
    }
    let store = Store::open(&path).unwrap();
    let kinds: Vec<(i64, OutboxKind)> = store
        .list_outbox()
        .unwrap()
        .iter()
        .map(|i| (i.id.0, i.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            (1, OutboxKind::PaymentEvent),
            (2, OutboxKind::Transaction),
            (3, OutboxKind::PaymentEvent)
        ]
    );
    // Still one forward per reference, and any number of other items.
    let again = store.record(&Change::enqueue_only(T0, vec![forward(&reference(1))]));
    assert!(
        matches!(again, Err(StoreError::Duplicate { .. })),
        "{again:?}"
    );
    let event = NewOutboxItem::new(OutboxKind::PaymentEvent, json!({})).for_reference(reference(1));
    assert_eq!(
        store
            .record(&Change::enqueue_only(T0, vec![event]))
            .unwrap()[0]
            .0,
        4
    );
    // Still in order per reference: each item waits for the one before.
    for expected in 1..=4 {
        let item = store.claim_next_due(T0 + 1).unwrap().unwrap();
        assert_eq!(item.id.0, expected);
        assert!(store.claim_next_due(T0 + 1).unwrap().is_none(), "blocked");
        store.ack(item.id, T0 + 1).unwrap();
    }
    let raw = rusqlite::Connection::open(&path).unwrap();
    let outbox: Vec<String> = created_indexes(&raw)
        .into_iter()
        .filter(|name| name.starts_with("outbox"))
        .collect();
    assert_eq!(
        outbox,
        [
            "outbox_by_reference",
            "outbox_one_per_shift",
            "outbox_payment_id"
        ]
    );
}

#[test]
fn rows_that_fail_validation_are_invalid_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let store = Store::open(&path).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute(
        "INSERT INTO transactions (reference, kind, amount, currency, state, created_at, updated_at) \
         VALUES ('bad ref', 'sale', 100, 'NGN', 'pending', 0, 0)",
        [],
    )
    .unwrap();
    let err = store
        .list_transactions(Page {
            offset: 0,
            limit: 10,
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    // CHECK constraints guard money even against raw writes.
    for bad in [
        "INSERT INTO transactions (reference, kind, amount, currency, state, created_at, updated_at) \
         VALUES ('r0', 'sale', 0, 'NGN', 'pending', 0, 0)",
        "INSERT INTO transactions (reference, kind, amount, currency, state, created_at, updated_at) \
         VALUES ('r1', 'sale', 1.5, 'NGN', 'pending', 0, 0)",
        "INSERT INTO transactions (reference, kind, amount, currency, state, created_at, updated_at) \
         VALUES ('r2', 'gift', 100, 'NGN', 'pending', 0, 0)",
        "INSERT INTO transactions (reference, kind, amount, currency, state, created_at, updated_at) \
         VALUES ('r3', 'sale', 100, 'USD', 'pending', 0, 0)",
    ] {
        assert!(raw.execute(bad, []).is_err(), "{bad}");
    }
}

#[test]
fn a_corrupt_file_is_a_typed_error_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let store = Store::open(&path).unwrap();
    for n in 1..=50 {
        store
            .record(&pending_sale_with_forward(T0, &reference(n), 100 + n))
            .unwrap();
    }
    drop(store); // checkpoints the WAL into the main file
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len > 4 * 4096, "the database spans several pages");
    // Garbage over every page after the first (the schema page stays readable).
    let garbage: Vec<u8> = (0..len - 4096).map(|i| (i * 7 + 13) as u8).collect();
    overwrite(&path, 4096, &garbage);
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");

    // A file that is not a database at all.
    let not_db = dir.path().join("not.db");
    std::fs::write(&not_db, vec![0x5a; 8192]).unwrap();
    let err = Store::open(&not_db).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
}

#[test]
fn a_full_disk_is_typed_and_loses_nothing_committed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let options = StoreOptions {
        max_pages: Some(160),
        ..StoreOptions::default()
    };
    let store = Store::open_with(&path, options.clone()).unwrap();
    let padding = "x".repeat(1_500);
    let mut committed = Vec::new();
    let mut full = None;
    for n in 1..=2_000u64 {
        let r = reference(n);
        let change = Change::insert(T0, NewTransaction::sale(r.clone(), money(n))).with(
            NewOutboxItem::new(OutboxKind::Transaction, json!({ "pad": padding }))
                .for_reference(r.clone()),
        );
        match store.record(&change) {
            Ok(_) => committed.push(r),
            Err(e) => {
                full = Some(e);
                break;
            }
        }
    }
    let err = full.expect("the page limit was reached");
    assert!(matches!(err, StoreError::DiskFull { .. }), "{err:?}");
    assert!(
        committed.len() > 3,
        "some payments fit: {}",
        committed.len()
    );
    // Still readable, and later small writes still fail cleanly.
    assert_eq!(store.list_outbox().unwrap().len(), committed.len());
    drop(store);

    let store = Store::open(&path).unwrap();
    for r in &committed {
        assert!(store.transaction(r).unwrap().is_some(), "{r} lost");
    }
    let outbox = store.list_outbox().unwrap();
    assert_eq!(outbox.len(), committed.len());
    store.check_integrity().unwrap();
}

#[test]
fn card_data_is_validated_at_the_boundary() {
    use store::{Card, CardBrand::Visa, EntryMode::Contactless};
    let token = "9f2c4e1a0b7d3e6f8a1c2b4d6e8f0a1b";
    assert!(
        Card::new("4111111111111111", "1111", Visa, Contactless).is_err(),
        "a PAN is no token"
    );
    assert!(Card::new(token.to_uppercase(), "1111", Visa, Contactless).is_err());
    assert!(Card::new(token, "111", Visa, Contactless).is_err());
    assert!(Card::new(token, "11a1", Visa, Contactless).is_err());
    assert!(Card::new(token, "1111", Visa, Contactless).is_ok());
}

#[test]
fn a_stored_card_brand_or_entry_mode_no_enum_knows_is_invalid_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let store = Store::open(&path).unwrap();
    let r = reference(1);
    store
        .record(&pending_sale_with_forward(T0, &r, 100))
        .unwrap();
    store
        .record(&Change::update(
            T0 + 1,
            r.clone(),
            TxUpdate {
                state: Some(TxState::Authorizing),
                card: Some(card()),
                ..TxUpdate::default()
            },
        ))
        .unwrap();
    assert_eq!(
        store
            .transaction(&r)
            .unwrap()
            .unwrap()
            .card
            .unwrap()
            .brand(),
        store::CardBrand::Visa
    );
    let raw = rusqlite::Connection::open(&path).unwrap();
    for (column, value) in [("card_brand", "Visa Card"), ("card_entry_mode", "tap")] {
        raw.execute(
            &format!("UPDATE transactions SET {column} = ?1 WHERE reference = ?2"),
            rusqlite::params![value, r.as_str()],
        )
        .unwrap();
        let err = store.transaction(&r).unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
        assert!(err.to_string().contains(value), "{err}");
        raw.execute(
            "UPDATE transactions SET card_brand = 'visa', card_entry_mode = 'contactless'",
            [],
        )
        .unwrap();
    }
}

#[tokio::test]
async fn the_async_store_runs_calls_off_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let store = store::AsyncStore::open(dir.path().join("ledger.db"), StoreOptions::default())
        .await
        .unwrap();
    let n = store.next_sequence(T0).await.unwrap();
    let r = proto::Reference::for_sequence(&tid(), n);
    store
        .record(pending_sale_with_forward(T0, &r, 4_200))
        .await
        .unwrap();
    let item = store.claim_next_due(T0).await.unwrap().unwrap();
    assert_eq!(item.reference.as_ref(), Some(&r));
    assert!(store.claim_next_due(T0).await.unwrap().is_none());
    store.ack(item.id, T0 + 1).await.unwrap();
    assert_eq!(store.outbox_stats().await.unwrap().queued, 0);
    let t = store.transaction(r).await.unwrap().unwrap();
    assert_eq!(t.amount, money(4_200));
}

#[test]
fn a_read_only_open_beside_the_writer_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let writer = Store::open(&path).unwrap();
    writer
        .record(&pending_sale_with_forward(T0, &reference(1), 100))
        .unwrap();
    let item = writer.claim_next_due(T0).unwrap().unwrap();

    let reader = Store::open_read_only(&path).unwrap();
    let listed = reader.list_outbox().unwrap();
    assert_eq!(listed.len(), 1);
    assert!(
        listed[0].in_flight,
        "the writer's claim survives a reader open"
    );
    let err = reader.next_sequence(T0).unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err:?}");
    writer.ack(item.id, T0).unwrap();
    assert!(reader.list_outbox().unwrap().is_empty(), "sees new commits");

    let err = Store::open_read_only(dir.path().join("missing.db")).unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err:?}");
}

#[test]
fn a_held_write_lock_is_busy_and_a_directory_is_io() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let store = Store::open_with(
        &path,
        StoreOptions {
            busy_timeout: std::time::Duration::from_millis(20),
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let err = store
        .record(&pending_sale_with_forward(T0, &reference(1), 100))
        .unwrap_err();
    assert!(matches!(err, StoreError::Busy { .. }), "{err:?}");
    // Readers are not blocked by a writer in WAL mode.
    assert!(store.transaction(&reference(1)).unwrap().is_none());
    other.execute_batch("ROLLBACK").unwrap();
    store
        .record(&pending_sale_with_forward(T0, &reference(1), 100))
        .unwrap();

    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_async_writers_all_commit_with_unique_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let store = store::AsyncStore::open(dir.path().join("ledger.db"), StoreOptions::default())
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.spawn(async move {
            let mut refs = Vec::new();
            for _ in 0..10 {
                let n = store.next_sequence(T0).await.unwrap();
                let r = proto::Reference::for_sequence(&tid(), n);
                store
                    .record(pending_sale_with_forward(T0, &r, n))
                    .await
                    .unwrap();
                refs.push(n);
            }
            refs
        });
    }
    let mut all: Vec<u64> = tasks.join_all().await.into_iter().flatten().collect();
    all.sort();
    assert_eq!(
        all,
        (1..=80).collect::<Vec<_>>(),
        "each sequence taken once"
    );
    assert_eq!(store.outbox_stats().await.unwrap().queued, 80);
    let listed = store
        .list_transactions(Page {
            offset: 0,
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 80);
}

#[test]
fn a_refund_tapped_with_another_card_can_only_be_recorded_as_declined() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let sale = reference(1);
    store
        .record(&Change::insert(
            T0,
            NewTransaction::sale(sale.clone(), money(1_000)),
        ))
        .unwrap();
    store
        .record(&Change::update(T0, sale.clone(), approve(false)))
        .unwrap();
    store
        .record(&Change::insert(
            T0,
            NewTransaction::refund(reference(2), money(1_000), sale.clone()),
        ))
        .unwrap();
    let wrong_card = |state| TxUpdate {
        state: Some(state),
        card: Some(other_card()),
        decline_reason: Some("card_mismatch".into()),
        ..TxUpdate::default()
    };
    let err = store
        .record(&Change::update(
            T0 + 1,
            reference(2),
            wrong_card(TxState::Approved),
        ))
        .unwrap_err();
    assert!(matches!(err, StoreError::IllegalChange { .. }), "{err:?}");
    store
        .record(&Change::update(
            T0 + 1,
            reference(2),
            wrong_card(TxState::Declined),
        ))
        .unwrap();
    let t = store.transaction(&reference(2)).unwrap().unwrap();
    assert_eq!(t.state, TxState::Declined);
    assert_eq!(t.card.unwrap().last4(), "4444");
    assert_eq!(store.refundable(&sale).unwrap(), money(1_000));
}

/// SPEC 7.4: the card application is kept for the receipt, set once,
/// checked (an AID is 5–16 bytes of uppercase hex).
#[test]
fn the_card_application_is_kept_for_the_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store
        .record(&Change::insert(
            T0,
            NewTransaction::sale(reference(1), money(100)),
        ))
        .unwrap();
    let mut u = approve(false);
    u.card_aid = Some("a0000000031010".into());
    let e = store
        .record(&Change::update(T0, reference(1), u.clone()))
        .unwrap_err();
    assert!(matches!(e, StoreError::InvalidInput(_)), "{e}");
    u.card_aid = Some("A0000000031010".into());
    u.card_label = Some("VISA CREDIT".into());
    store.record(&Change::update(T0, reference(1), u)).unwrap();
    let t = store.transaction(&reference(1)).unwrap().unwrap();
    assert_eq!(t.card_aid.as_deref(), Some("A0000000031010"));
    assert_eq!(t.card_label.as_deref(), Some("VISA CREDIT"));
    let other = TxUpdate {
        card_label: Some("MASTERCARD".into()),
        ..TxUpdate::default()
    };
    let e = store
        .record(&Change::update(T0, reference(1), other))
        .unwrap_err();
    assert!(matches!(e, StoreError::IllegalChange { .. }), "{e}");
}
