//! What boot reads: the restorable transactions through the partial index,
//! approved totals in one aggregate, and the upgrade of a step-1 database.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use crate::common::*;
use proto::Total;
use store::{Change, NewTransaction, Store, TxState, TxUpdate};

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(dir.path().join("boot.db")).unwrap()
}

/// One transaction in each state boot cares about, and settled ones around
/// them. Returns the references expected back, oldest first.
fn seed(store: &Store) -> Vec<proto::Reference> {
    // 1: approved online (settled), 2: offline approved, 3: pending,
    // 4: authorizing, 5: declined (settled), 6: refund of 1, approved.
    let sale = |n: u64, at: i64| {
        store
            .record(&Change::insert(
                at,
                NewTransaction::sale(reference(n), money(n * 100)),
            ))
            .unwrap();
    };
    sale(1, T0);
    store
        .record(&Change::update(T0 + 1, reference(1), approve(false)))
        .unwrap();
    sale(2, T0 + 10);
    store
        .record(&Change::update(T0 + 11, reference(2), approve(true)).with(forward(&reference(2))))
        .unwrap();
    sale(3, T0 + 20);
    sale(4, T0 + 30);
    store
        .record(&Change::update(
            T0 + 31,
            reference(4),
            TxUpdate {
                state: Some(TxState::Authorizing),
                ..TxUpdate::default()
            },
        ))
        .unwrap();
    sale(5, T0 + 40);
    store
        .record(&Change::update(
            T0 + 41,
            reference(5),
            TxUpdate {
                state: Some(TxState::Declined),
                card: Some(card()),
                decision: approve(false).decision,
                decline_reason: Some("insufficient_funds".into()),
                ..TxUpdate::default()
            },
        ))
        .unwrap();
    store
        .record(&Change::insert(
            T0 + 50,
            NewTransaction::refund(reference(6), money(30), reference(1)),
        ))
        .unwrap();
    store
        .record(&Change::update(T0 + 51, reference(6), approve(false)))
        .unwrap();
    vec![reference(2), reference(3), reference(4)]
}

#[test]
fn restorable_transactions_are_the_unfinished_and_unforwarded_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let expected = seed(&store);
    let got = store.restorable_transactions().unwrap();
    let refs: Vec<_> = got.iter().map(|t| t.reference.clone()).collect();
    assert_eq!(refs, expected);
    let states: Vec<_> = got.iter().map(|t| t.state).collect();
    assert_eq!(
        states,
        [
            TxState::OfflineApproved,
            TxState::Pending,
            TxState::Authorizing
        ]
    );
    // Settling the offline sale takes it out.
    store
        .record(&Change::update(
            T0 + 100,
            reference(2),
            TxUpdate {
                state: Some(TxState::Approved),
                backend_transaction_id: Some("txn_1".into()),
                ..TxUpdate::default()
            },
        ))
        .unwrap();
    let refs: Vec<_> = store
        .restorable_transactions()
        .unwrap()
        .into_iter()
        .map(|t| t.reference)
        .collect();
    assert_eq!(refs, [reference(3), reference(4)]);
}

#[test]
fn approved_totals_count_approved_and_offline_approved_by_kind() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    assert_eq!(
        store.approved_totals().unwrap(),
        store::ApprovedTotals::default()
    );
    seed(&store);
    let t = store.approved_totals().unwrap();
    // Sales 1 (100) and 2 (200, offline); 3, 4 open and 5 declined are out.
    assert_eq!((t.sales.count, t.sales.total), (2, Total(300)));
    assert_eq!((t.refunds.count, t.refunds.total), (1, Total(30)));
}

#[test]
fn the_restorable_query_reads_the_partial_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("boot.db");
    drop(Store::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mut stmt = conn
        .prepare(
            "EXPLAIN QUERY PLAN SELECT reference FROM transactions \
             WHERE state IN ('pending', 'authorizing', 'offline_approved') \
             ORDER BY created_at, rowid",
        )
        .unwrap();
    let plan: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let plan = plan.join("\n");
    assert!(plan.contains("transactions_restorable"), "{plan}");
    assert!(
        !plan.contains("SCAN transactions\n") && !plan.ends_with("SCAN transactions"),
        "{plan}"
    );
}

#[test]
fn a_step_one_database_is_upgraded_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        rusqlite_migration::Migrations::new(store::schema::MIGRATIONS[..1].to_vec())
            .to_latest(&mut conn)
            .unwrap();
        conn.execute(
            "INSERT INTO transactions (reference, kind, amount, currency, state, created_at, \
             updated_at) VALUES (?1, 'sale', 500, 'NGN', 'pending', ?2, ?2)",
            rusqlite::params![reference(9).as_str(), T0],
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    let refs: Vec<_> = store
        .restorable_transactions()
        .unwrap()
        .into_iter()
        .map(|t| t.reference)
        .collect();
    assert_eq!(refs, [reference(9)]);
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, store::schema::MIGRATIONS.len() as i64);
}
