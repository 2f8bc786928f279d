//! Shifts on real SQLite files (SPEC 7.5): tips and items on
//! transactions, X and Z reports, never-reused shift numbers, the Z
//! report in the outbox, and the upgrade of a database from before shifts.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use crate::common::*;
use proto::{Money, Total};
use serde_json::json;
use store::{
    Change, LineItem, NewOutboxItem, NewTransaction, OutboxKind, Store, StoreError, TxUpdate,
};

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(dir.path().join("ledger.db")).unwrap()
}

fn item(id: &str, qty: u32, minor: u64) -> LineItem {
    LineItem {
        item_id: id.into(),
        name: id.to_uppercase(),
        qty,
        unit_price: money(minor),
    }
}

/// A catalog sale with a tip, approved (online or offline), by `operator`.
fn approved_sale(store: &Store, n: u64, tip: Option<u64>, offline: bool, operator: &str) {
    let mut new = NewTransaction::sale(reference(n), money(3_000 + tip.unwrap_or(0)));
    new.items = vec![item("beer", 2, 1_500)];
    new.tip_amount = tip.map(money);
    new.operator_id = Some(operator.into());
    store.record(&Change::insert(T0, new)).unwrap();
    store
        .record(&Change::update(T0 + 1, reference(n), approve(offline)))
        .unwrap();
}

fn z_payload(r: &store::ShiftReport) -> Result<serde_json::Value, String> {
    Ok(json!({"shift_no": r.shift_no}))
}

#[test]
fn tips_and_items_are_stored_and_must_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    approved_sale(&store, 1, Some(300), false, "op_ada");
    let t = store.transaction(&reference(1)).unwrap().unwrap();
    assert_eq!(t.tip_amount, Some(money(300)));
    assert_eq!(t.items, [item("beer", 2, 1_500)]);
    assert_eq!(t.operator_id.as_deref(), Some("op_ada"));
    assert_eq!(t.shift_no, 1);
    // Items plus tip must be the amount; refunds carry neither.
    let mut wrong = NewTransaction::sale(reference(2), money(3_001));
    wrong.items = vec![item("beer", 2, 1_500)];
    let e = store.record(&Change::insert(T0, wrong)).unwrap_err();
    assert!(
        matches!(e, StoreError::InvalidInput(ref m) if m.contains("add up")),
        "{e}"
    );
    let mut tipped_refund = NewTransaction::refund(reference(3), money(100), reference(1));
    tipped_refund.tip_amount = Some(money(10));
    assert!(store.record(&Change::insert(T0, tipped_refund)).is_err());
    assert!(store.transaction(&reference(2)).unwrap().is_none());
}

#[test]
fn the_x_report_sums_the_shift_and_the_z_report_closes_it_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let store = Store::open(&path).unwrap();
    approved_sale(&store, 1, Some(300), false, "op_ada");
    approved_sale(&store, 2, None, true, "op_bob");
    let mut declined = NewTransaction::sale(reference(3), money(700));
    declined.operator_id = Some("op_ada".into());
    store.record(&Change::insert(T0, declined)).unwrap();
    store
        .record(&Change::update(
            T0 + 1,
            reference(3),
            TxUpdate {
                state: Some(store::TxState::Declined),
                card: Some(card()),
                ..TxUpdate::default()
            },
        ))
        .unwrap();

    let x = store.x_report().unwrap();
    assert_eq!(x.shift_no, 1);
    assert_eq!(x.closed_at, None);
    let t = &x.totals;
    assert_eq!((t.sales.count, t.sales.total), (2, Total(6_300)));
    assert_eq!((t.tips.count, t.tips.total), (1, Total(300)));
    assert_eq!((t.online.count, t.offline.count), (1, 1));
    assert_eq!((t.declined.count, t.declined.total), (1, Total(700)));
    assert_eq!(t.by_operator["op_ada"].total, Total(3_300));
    assert_eq!(t.by_item["beer"].qty, 4);
    assert_eq!(t.by_item["beer"].total, Total(6_000));

    let z = store
        .close_shift(T0 + 10, Some("op_sup"), z_payload)
        .unwrap();
    assert_eq!(z.shift_no, 1);
    assert_eq!(z.closed_at, Some(T0 + 10));
    assert_eq!(z.totals, x.totals);
    // The Z report waits in the outbox.
    let queued: Vec<_> = store
        .list_outbox()
        .unwrap()
        .into_iter()
        .filter(|i| i.kind == OutboxKind::Shift)
        .collect();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].payload, json!({"shift_no": 1}));
    // The next shift starts at zero; its sales are its own.
    assert_eq!(store.current_shift().unwrap(), 2);
    assert_eq!(store.x_report().unwrap().totals.sales.count, 0);
    approved_sale(&store, 4, None, false, "op_ada");
    assert_eq!(
        store.transaction(&reference(4)).unwrap().unwrap().shift_no,
        2
    );
    // A past shift reads back as it was closed, also after a reopen.
    drop(store);
    let store = Store::open(&path).unwrap();
    let past = store.shift_report(1).unwrap().unwrap();
    assert_eq!(past.totals, x.totals);
    assert_eq!(past.closed_by.as_deref(), Some("op_sup"));
    assert!(store.shift_report(7).unwrap().is_none());
    // Numbers are never reused: a second close is shift 2.
    assert_eq!(
        store
            .close_shift(T0 + 20, None, z_payload)
            .unwrap()
            .shift_no,
        2
    );
    assert_eq!(store.closed_shifts(10).unwrap(), [2, 1]);
}

#[test]
fn a_failed_z_report_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    approved_sale(&store, 1, None, false, "op_ada");
    let e = store
        .close_shift(T0, None, |_| Err("cannot encode".to_string()))
        .unwrap_err();
    assert!(e.to_string().contains("cannot encode"), "{e}");
    assert_eq!(store.current_shift().unwrap(), 1);
    assert!(store.shift_report(1).unwrap().unwrap().closed_at.is_none());
    assert!(store.list_outbox().unwrap().is_empty());
}

#[test]
fn recent_sales_are_newest_first_with_what_is_left_to_refund() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for n in 1..=3 {
        let mut new = NewTransaction::sale(reference(n), money(1_000));
        new.operator_id = None;
        store.record(&Change::insert(T0 + n as i64, new)).unwrap();
        store
            .record(&Change::update(T0 + 10, reference(n), approve(false)))
            .unwrap();
    }
    store
        .record(&Change::insert(
            T0 + 20,
            NewTransaction::refund(reference(4), money(400), reference(3)),
        ))
        .unwrap();
    let recent = store.recent_sales(2).unwrap();
    let refs: Vec<_> = recent.iter().map(|(t, _)| t.reference.clone()).collect();
    assert_eq!(refs, [reference(3), reference(2)]);
    assert_eq!(recent[0].1, money(600));
    assert_eq!(recent[1].1, Money::from_minor(1_000).unwrap());
}

#[test]
fn a_database_from_before_shifts_keeps_its_outbox_ids_and_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        rusqlite_migration::Migrations::new(store::schema::MIGRATIONS[..3].to_vec())
            .to_latest(&mut conn)
            .unwrap();
        conn.execute(
            "INSERT INTO transactions (reference, kind, amount, currency, state, created_at, \
             updated_at) VALUES (?1, 'sale', 500, 'NGN', 'pending', ?2, ?2)",
            rusqlite::params![reference(9).as_str(), T0],
        )
        .unwrap();
        for _ in 0..3 {
            conn.execute(
                "INSERT INTO outbox (kind, payload, next_attempt_at, created_at) \
                 VALUES ('command_ack', '{}', ?1, ?1)",
                [T0],
            )
            .unwrap();
        }
        // The last two were acknowledged: ids 2 and 3 must never come back.
        conn.execute("DELETE FROM outbox WHERE id > 1", []).unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(
        store.transaction(&reference(9)).unwrap().unwrap().shift_no,
        1
    );
    let ids = store
        .record(&Change::enqueue_only(
            T0,
            vec![NewOutboxItem::new(
                OutboxKind::Shift,
                json!({"shift_no": 1}),
            )],
        ))
        .unwrap();
    assert_eq!(ids[0].0, 4, "outbox ids are never reused");
    assert_eq!(store.list_outbox().unwrap().len(), 2);
}
