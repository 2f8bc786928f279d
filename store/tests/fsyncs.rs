//! What each store call costs in fsyncs (docs/store.md, "Durability"):
//! `Full` commits sync the WAL once, relaxed ones not at all, a checkpoint
//! syncs the WAL and the database file, an unchanged kv value writes
//! nothing.
//!
//! Counted with `fsync_counter.rs`: this test binary defines `fsync` and
//! `fdatasync` itself and holds only this test.

// The counter's two symbols and their system calls are the only unsafe
// code: test code, never shipped.
#![allow(unsafe_code)]
#![allow(clippy::unwrap_used)]

mod common;
mod fsync_counter;

use common::*;
use store::{Change, Durability, NewTransaction, OutboxId, Store, TxState, TxUpdate};

/// The syncs `f` made.
fn syncs<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = fsync_counter::syncs();
    let out = f();
    (out, fsync_counter::syncs() - before)
}

#[test]
fn full_commits_sync_once_relaxed_ones_never_and_a_checkpoint_twice() {
    let dir = tempfile::tempdir().unwrap();
    fsync_counter::watch(dir.path());
    let store = Store::open(dir.path().join("ledger.sqlite")).unwrap();
    let r = reference(1);

    let (n, k) = syncs(|| store.next_sequence(T0).unwrap());
    assert_eq!((n, k), (1, 0), "next_sequence is relaxed");

    // A keyed sale's pending row: relaxed.
    let pending = Change::insert(T0, NewTransaction::sale(r.clone(), money(5_000)))
        .durability(Durability::Relaxed);
    assert_eq!(syncs(|| store.record(&pending).unwrap()).1, 0);
    // Its result with the forward: one fsync, which carries the pending
    // row and the counter with it.
    let result = Change::update(T0 + 1, r.clone(), approve(true)).with(forward(&r));
    let data_before = fsync_counter::datasyncs();
    let (ids, k) = syncs(|| store.record(&result).unwrap());
    assert_eq!(k, 1, "a Full record syncs the WAL once");
    assert_eq!(
        fsync_counter::datasyncs() - data_before,
        1,
        "with fdatasync: SQLite built with HAVE_FDATASYNC (.cargo/config.toml)"
    );
    let id: OutboxId = ids[0];

    // The outbox's bookkeeping: no fsync.
    let (claimed, k) = syncs(|| store.claim_due(T0 + 2, 8).unwrap());
    assert_eq!((claimed.len(), k), (1, 0), "claims are relaxed");
    let (_, k) = syncs(|| store.retry(id, T0 + 3, "timeout", None).unwrap());
    assert_eq!(k, 0, "a backoff is relaxed");
    assert_eq!(syncs(|| store.expedite(T0 + 4).unwrap()).1, 0);
    let _ = store.claim_due(T0 + 5, 8).unwrap();
    // A server's Retry-After is kept durably.
    let (_, k) = syncs(|| {
        store
            .retry(id, T0 + 6, "503", Some(std::time::Duration::from_secs(5)))
            .unwrap()
    });
    assert_eq!(k, 1, "Retry-After is Full");
    let _ = store.claim_due(T0 + 10_000, 8).unwrap();
    // The forward's answer and its acknowledgement: relaxed.
    let answer = Change::update(
        T0 + 10_001,
        r.clone(),
        TxUpdate {
            state: Some(TxState::Approved),
            ..TxUpdate::default()
        },
    )
    .durability(Durability::Relaxed);
    assert_eq!(syncs(|| store.record(&answer).unwrap()).1, 0);
    assert_eq!(syncs(|| store.ack_many(&[id], T0 + 10_002).unwrap()).1, 0);
    assert!(store.list_outbox().unwrap().is_empty());

    // kv: Full by default, nothing at all when unchanged, relaxed on demand.
    assert_eq!(syncs(|| store.kv_set("k", "v1", T0).unwrap()).1, 1);
    assert_eq!(syncs(|| store.kv_set("k", "v1", T0 + 1).unwrap()).1, 0);
    let (_, k) = syncs(|| {
        store
            .kv_set_with("k", "v2", T0 + 2, Durability::Relaxed)
            .unwrap()
    });
    assert_eq!(k, 0);
    assert_eq!(store.kv_get("k").unwrap().as_deref(), Some("v2"));

    // An idle checkpoint: two fsyncs (the WAL, then the database file),
    // and the count starts over. The checkpoint connection's first sync of
    // the WAL also syncs the directory, once (SQLite's own rule for a file
    // it may have created).
    assert!(store.commits_since_checkpoint() > 0);
    let (c, k) = syncs(|| store.checkpoint().unwrap());
    assert!(c.complete() && c.wal_frames > 0, "{c:?}");
    assert_eq!(k, 3, "WAL, directory (first time only), database");
    assert_eq!(store.commits_since_checkpoint(), 0);
    // Commits that change no row write nothing and count for nothing.
    assert!(store.claim_due(T0 + 20_000, 8).unwrap().is_empty());
    store.kv_set("k", "v2", T0 + 20_001).unwrap();
    assert_eq!(store.commits_since_checkpoint(), 0);
    assert_eq!(syncs(|| store.checkpoint_if_due().unwrap()).0, None);
    store.kv_set("k", "v3", T0 + 3).unwrap();
    let (c, k) = syncs(|| store.checkpoint().unwrap());
    assert!(c.complete() && c.wal_frames > 0, "{c:?}");
    assert_eq!(k, 2, "a checkpoint syncs the WAL and the database");
    store
        .kv_set_with("k", "v2", T0 + 4, Durability::Relaxed)
        .unwrap();

    // Every write is readable after a reopen.
    drop(store);
    let store = Store::open(dir.path().join("ledger.sqlite")).unwrap();
    let t = store.transaction(&r).unwrap().unwrap();
    assert_eq!(t.state, TxState::Approved);
    assert_eq!(store.kv_get("k").unwrap().as_deref(), Some("v2"));
    assert_eq!(store.next_sequence(T0).unwrap(), 2);
}
