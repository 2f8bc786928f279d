//! Outbox semantics: ordering per payment, backoff, parking, restart, and a
//! proptest of the store against an in-memory model.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use crate::common::*;
use proptest::prelude::*;
use serde_json::json;
use store::{
    Change, Jitter, NewOutboxItem, NewTransaction, OutboxId, OutboxKind, RetryPolicy, Store,
    StoreError, StoreOptions,
};

fn options(base_ms: u64, cap_ms: u64) -> StoreOptions {
    StoreOptions {
        retry: RetryPolicy {
            base: Duration::from_millis(base_ms),
            cap: Duration::from_millis(cap_ms),
            jitter: Jitter::None,
        },
        ..StoreOptions::default()
    }
}

fn event(reference: Option<u64>, payment: Option<&str>) -> NewOutboxItem {
    let mut item = NewOutboxItem::new(OutboxKind::PaymentEvent, json!({ "n": 1 }));
    item.reference = reference.map(crate::common::reference);
    item.payment_id = payment.map(pid);
    item
}

#[test]
fn items_are_claimed_in_order_per_payment() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path().join("o.db"), options(1_000, 60_000)).unwrap();
    let a = store
        .record(&pending_sale_with_forward(T0, &reference(1), 100))
        .unwrap()[0];
    let b = store
        .record(&pending_sale_with_forward(T0, &reference(2), 200))
        .unwrap()[0];
    let c = store
        .record(&Change::enqueue_only(T0, vec![event(Some(1), None)]))
        .unwrap()[0];
    // d shares only the payment id with e; e is later.
    let d = store
        .record(&Change::enqueue_only(T0, vec![event(None, Some("pay_9"))]))
        .unwrap()[0];
    let e = store
        .record(&Change::enqueue_only(
            T0,
            vec![event(Some(2), Some("pay_9"))],
        ))
        .unwrap()[0];

    let claim = |now| store.claim_next_due(now).unwrap().map(|i| i.id);
    assert_eq!(claim(T0), Some(a));
    assert_eq!(claim(T0), Some(b));
    assert_eq!(claim(T0), Some(d), "c waits for a, e waits for b and d");
    assert_eq!(claim(T0), None);
    assert_eq!(
        store.next_due_at().unwrap(),
        None,
        "nothing claimable: sleep"
    );

    // a fails transiently: it and c wait for the backoff.
    let next = store.retry(a, T0, "503", None).unwrap();
    assert_eq!(next, T0 + 1_000);
    assert_eq!(claim(T0 + 999), None);
    assert_eq!(store.next_due_at().unwrap(), Some(T0 + 1_000));
    assert_eq!(claim(T0 + 1_000), Some(a));

    // a fails permanently: parked, visible, and still blocking c.
    store.park(a, T0 + 1_100, "400 invalid_request").unwrap();
    assert_eq!(claim(T0 + 5_000), None);
    let listed = store.list_outbox().unwrap();
    let parked = listed.iter().find(|i| i.id == a).unwrap();
    assert!(parked.parked && !parked.in_flight);
    assert_eq!(parked.last_error.as_deref(), Some("400 invalid_request"));
    assert_eq!(parked.attempts, 2);
    let stats = store.outbox_stats().unwrap();
    assert_eq!((stats.queued, stats.parked, stats.in_flight), (5, 1, 2));

    // The operator requeues it; it goes first again, then c.
    store.unpark(a, T0 + 6_000).unwrap();
    assert_eq!(claim(T0 + 6_000), Some(a));
    store.ack(a, T0 + 6_001).unwrap();
    assert_eq!(claim(T0 + 6_001), Some(c));
    store.ack(b, T0 + 6_002).unwrap();
    store.ack(d, T0 + 6_003).unwrap();
    assert_eq!(claim(T0 + 6_004), Some(e));
    let events: Vec<_> = store
        .audit_log(0, 100)
        .unwrap()
        .into_iter()
        .map(|a| a.event)
        .filter(|e| e.starts_with("outbox"))
        .collect();
    assert_eq!(
        events,
        [
            "outbox_parked",
            "outbox_unparked",
            "outbox_acked",
            "outbox_acked",
            "outbox_acked"
        ]
    );
}

#[test]
fn a_batch_claim_keeps_one_item_per_payment_and_acks_in_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path().join("o.db"), options(1_000, 60_000)).unwrap();
    let a = store
        .record(&pending_sale_with_forward(T0, &reference(1), 100))
        .unwrap()[0];
    let b = store
        .record(&pending_sale_with_forward(T0, &reference(2), 200))
        .unwrap()[0];
    let c = store
        .record(&Change::enqueue_only(T0, vec![event(Some(1), None)]))
        .unwrap()[0];
    let d = store
        .record(&Change::enqueue_only(T0, vec![event(None, Some("pay_9"))]))
        .unwrap()[0];
    let e = store
        .record(&Change::enqueue_only(
            T0,
            vec![event(Some(2), Some("pay_9"))],
        ))
        .unwrap()[0];
    let f = store
        .record(&Change::enqueue_only(T0 + 5_000, vec![event(None, None)]))
        .unwrap()[0];
    // f, enqueued later, is not due at T0.
    let ids = |items: Vec<store::OutboxItem>| items.into_iter().map(|i| i.id).collect::<Vec<_>>();

    assert!(store.claim_due(T0, 0).unwrap().is_empty());
    // c waits for a, e for b and d: one item per reference and payment.
    assert_eq!(ids(store.claim_due(T0, 8).unwrap()), [a, b, d]);
    assert_eq!(ids(store.claim_due(T0, 8).unwrap()), Vec::<OutboxId>::new());
    let listed = store.list_outbox().unwrap();
    assert!(
        listed
            .iter()
            .filter(|i| [a, b, d].contains(&i.id))
            .all(|i| i.in_flight && i.attempts == 1)
    );

    // One commit acknowledges a and d; an unknown id is skipped.
    assert_eq!(store.ack_many(&[a, d, OutboxId(999)], T0 + 1).unwrap(), 2);
    assert_eq!(store.ack_many(&[], T0 + 1).unwrap(), 0);
    // c follows a; e still waits for b.
    assert_eq!(ids(store.claim_due(T0 + 2, 8).unwrap()), [c]);
    assert_eq!(store.ack_many(&[b, c], T0 + 3).unwrap(), 2);
    // Both e and f are due; the limit takes the oldest.
    assert_eq!(ids(store.claim_due(T0 + 5_000, 1).unwrap()), [e]);
    assert_eq!(ids(store.claim_due(T0 + 5_000, 8).unwrap()), [f]);
    let acked = store
        .audit_log(0, 100)
        .unwrap()
        .into_iter()
        .filter(|a| a.event == "outbox_acked")
        .count();
    assert_eq!(acked, 4);
}

#[test]
fn backoff_is_exponential_capped_and_honours_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path().join("o.db"), options(1_000, 8_000)).unwrap();
    let id = store
        .record(&pending_sale_with_forward(T0, &reference(1), 100))
        .unwrap()[0];
    let mut now = T0;
    let mut delays = Vec::new();
    for _ in 0..6 {
        let item = store.claim_next_due(now).unwrap().unwrap();
        assert_eq!(item.id, id);
        let next = store.retry(id, now, "timeout", None).unwrap();
        delays.push(next - now);
        now = next;
    }
    assert_eq!(delays, [1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
    store.claim_next_due(now).unwrap().unwrap();
    let next = store
        .retry(id, now, "429", Some(Duration::from_secs(30)))
        .unwrap();
    assert_eq!(next - now, 30_000, "Retry-After is longer: it wins");
    let next2 = store
        .retry(id, next, "429", Some(Duration::from_millis(10)))
        .unwrap();
    assert_eq!(next2 - next, 8_000, "the backoff is longer: it wins");
}

#[test]
fn expedite_makes_waiting_items_due_but_leaves_parked_and_in_flight_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path().join("o.db"), options(60_000, 600_000)).unwrap();
    let waiting = store
        .record(&pending_sale_with_forward(T0, &reference(1), 100))
        .unwrap()[0];
    let parked = store
        .record(&pending_sale_with_forward(T0, &reference(2), 200))
        .unwrap()[0];
    let flying = store
        .record(&pending_sale_with_forward(T0, &reference(3), 300))
        .unwrap()[0];
    for id in [waiting, parked] {
        assert_eq!(store.claim_next_due(T0).unwrap().unwrap().id, id);
        store.retry(id, T0, "connection refused", None).unwrap();
    }
    store.park(parked, T0, "422 amount_too_large").unwrap();
    assert_eq!(store.claim_next_due(T0).unwrap().unwrap().id, flying);
    // Nothing is due a second later: the waiting item backs off for a minute.
    let later = T0 + 1_000;
    assert!(store.claim_next_due(later).unwrap().is_none());
    assert_eq!(store.next_due_at().unwrap(), Some(T0 + 60_000));

    assert_eq!(
        store.expedite(later).unwrap(),
        1,
        "only the waiting item moves"
    );
    assert_eq!(store.next_due_at().unwrap(), Some(later));
    assert_eq!(store.claim_next_due(later).unwrap().unwrap().id, waiting);
    let items = store.list_outbox().unwrap();
    let parked_item = items.iter().find(|i| i.id == parked).unwrap();
    assert!(parked_item.parked, "a parked item stays parked");
    assert_eq!(store.expedite(later).unwrap(), 0, "nothing left to move");
}

/// SPEC 5.7: `Retry-After` always wins. A returning link makes items due,
/// but an item the server asked to wait is not moved before that time.
#[test]
fn expedite_never_moves_an_item_before_its_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path().join("o.db"), options(1_000, 600_000)).unwrap();
    let asked = store
        .record(&pending_sale_with_forward(T0, &reference(1), 100))
        .unwrap()[0];
    let backoff = store
        .record(&pending_sale_with_forward(T0, &reference(2), 200))
        .unwrap()[0];
    assert_eq!(store.claim_next_due(T0).unwrap().unwrap().id, asked);
    let at = store
        .retry(asked, T0, "503 busy", Some(Duration::from_secs(120)))
        .unwrap();
    assert_eq!(at, T0 + 120_000, "Retry-After is longer than the backoff");
    assert_eq!(store.claim_next_due(T0).unwrap().unwrap().id, backoff);
    store
        .retry(backoff, T0, "connection refused", None)
        .unwrap();
    let later = T0 + 500;
    assert_eq!(store.expedite(later).unwrap(), 1, "only the backoff is cut");
    assert_eq!(store.next_due_at().unwrap(), Some(later));
    assert_eq!(store.claim_next_due(later).unwrap().unwrap().id, backoff);
    assert!(store.claim_next_due(later).unwrap().is_none());
    assert_eq!(store.next_due_at().unwrap(), Some(T0 + 120_000));
    // A later retry without Retry-After forgets the old request.
    let due = T0 + 120_000;
    assert_eq!(store.claim_next_due(due).unwrap().unwrap().id, asked);
    store.retry(asked, due, "connection refused", None).unwrap();
    assert_eq!(store.expedite(due + 1).unwrap(), 1);
    assert_eq!(store.next_due_at().unwrap(), Some(due + 1));
}

/// SPEC 5.7: retry timing runs on the monotonic clock. After a wall-clock
/// step the drainer moves the schedule by the step: the wait is unchanged.
#[test]
fn a_clock_step_moves_the_schedule_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path().join("o.db"), options(60_000, 600_000)).unwrap();
    let id = store
        .record(&pending_sale_with_forward(T0, &reference(1), 100))
        .unwrap()[0];
    assert_eq!(store.claim_next_due(T0).unwrap().unwrap().id, id);
    store
        .retry(id, T0, "503", Some(Duration::from_secs(120)))
        .unwrap();
    // The wall clock jumps back an hour.
    let step = -3_600_000;
    assert_eq!(store.shift_schedule(step).unwrap(), 1);
    assert_eq!(store.next_due_at().unwrap(), Some(T0 + 120_000 + step));
    // Retry-After moved too: a returning link cannot cut it short.
    assert_eq!(store.expedite(T0 + step + 1).unwrap(), 0);
    assert!(store.claim_next_due(T0 + step + 119_999).unwrap().is_none());
    assert!(store.claim_next_due(T0 + step + 120_000).unwrap().is_some());
}

#[test]
fn unpark_all_puts_every_parked_item_back_in_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path().join("o.db"), options(60_000, 600_000)).unwrap();
    let mut ids = Vec::new();
    for n in 1..=3 {
        let id = store
            .record(&pending_sale_with_forward(T0, &reference(n), 100 * n))
            .unwrap()[0];
        ids.push(id);
    }
    for &id in &ids[..2] {
        assert!(store.claim_next_due(T0).unwrap().is_some());
        store.park(id, T0, "409 refused").unwrap();
    }
    assert_eq!(store.outbox_stats().unwrap().parked, 2);
    assert_eq!(store.unpark_all(T0 + 5).unwrap(), ids[..2].to_vec());
    assert_eq!(store.outbox_stats().unwrap().parked, 0);
    assert_eq!(store.next_due_at().unwrap(), Some(T0));
    assert!(store.unpark_all(T0 + 6).unwrap().is_empty(), "nothing left");
    let unparked = store
        .audit_log(0, 100)
        .unwrap()
        .into_iter()
        .filter(|a| a.event == "outbox_unparked")
        .count();
    assert_eq!(unparked, 2);
}

#[test]
fn jitter_is_injectable_and_bounded() {
    let halve = RetryPolicy {
        base: Duration::from_secs(2),
        cap: Duration::from_secs(60),
        jitter: Jitter::Custom(std::sync::Arc::new(|d| d / 2)),
    };
    assert_eq!(halve.delay(3, None), Duration::from_secs(4));
    let equal = RetryPolicy {
        jitter: Jitter::Equal,
        ..halve.clone()
    };
    for attempts in 1..10 {
        let full = Duration::from_secs(2 << (attempts - 1)).min(Duration::from_secs(60));
        for _ in 0..20 {
            let d = equal.delay(attempts, None);
            assert!(d >= full / 2 && d <= full, "{attempts}: {d:?}");
        }
    }
    assert!(equal.delay(u32::MAX, None) <= Duration::from_secs(60));
}

#[test]
fn in_flight_items_return_to_the_queue_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    let store = Store::open(&path).unwrap();
    store
        .record(&pending_sale_with_forward(T0, &reference(1), 100))
        .unwrap();
    let item = store.claim_next_due(T0).unwrap().unwrap();
    assert!(store.claim_next_due(T0).unwrap().is_none());
    drop(store); // as if the process died mid-send
    let store = Store::open(&path).unwrap();
    let again = store.claim_next_due(T0).unwrap().unwrap();
    assert_eq!(again.id, item.id);
    assert_eq!(again.attempts, 2);
    assert_eq!(again.payload, item.payload);
}

#[test]
fn bad_outbox_operations_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("o.db")).unwrap();
    let missing = OutboxId(42);
    for err in [
        store.ack(missing, T0).unwrap_err(),
        store.park(missing, T0, "x").unwrap_err(),
        store.retry(missing, T0, "x", None).unwrap_err(),
        store.unpark(missing, T0).unwrap_err(),
    ] {
        assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    }
    // An item about a transaction that does not exist.
    let err = store
        .record(&Change::enqueue_only(T0, vec![event(Some(5), None)]))
        .unwrap_err();
    assert!(matches!(err, StoreError::Constraint { .. }), "{err:?}");
    // A forward without a reference.
    let err = store
        .record(&Change::enqueue_only(
            T0,
            vec![NewOutboxItem::new(OutboxKind::Transaction, json!({}))],
        ))
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
    // Retrying a parked item needs an unpark first.
    let id = store
        .record(&pending_sale_with_forward(T0, &reference(1), 100))
        .unwrap()[0];
    store.park(id, T0, "bad\nrequest").unwrap();
    let err = store.retry(id, T0, "x", None).unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
    assert_eq!(
        store.list_outbox().unwrap()[0].last_error.as_deref(),
        Some("bad request"),
        "control characters are not stored"
    );
}

// ---------------------------------------------------------------- proptest

const BASE_MS: i64 = 1_000;
const CAP_MS: i64 = 16_000;

#[derive(Debug, Clone)]
enum Op {
    Enqueue {
        reference: Option<u64>,
        payment: Option<u8>,
        delay_ms: Option<u16>,
    },
    Claim,
    Ack(usize),
    Retry(usize, Option<u16>),
    Park(usize),
    Unpark(usize),
    Advance(u32),
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (proptest::option::of(1..4u64), proptest::option::of(0..3u8),
              proptest::option::weighted(0.2, 0..5_000u16))
            .prop_map(|(reference, payment, delay_ms)| Op::Enqueue { reference, payment, delay_ms }),
        4 => Just(Op::Claim),
        2 => any::<usize>().prop_map(Op::Ack),
        2 => (any::<usize>(), proptest::option::weighted(0.3, 0..40u16))
            .prop_map(|(i, ra)| Op::Retry(i, ra)),
        1 => any::<usize>().prop_map(Op::Park),
        1 => any::<usize>().prop_map(Op::Unpark),
        2 => (0..20_000u32).prop_map(Op::Advance),
        1 => Just(Op::Restart),
    ]
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ModelItem {
    id: i64,
    reference: Option<u64>,
    payment: Option<u8>,
    attempts: u32,
    next_at: i64,
    in_flight: bool,
    parked: bool,
}

#[derive(Default)]
struct Model {
    items: Vec<ModelItem>, // ordered by id
    transactions: std::collections::HashSet<u64>,
    last_id: i64,
}

impl Model {
    fn blocked(&self, item: &ModelItem) -> bool {
        self.items.iter().any(|e| {
            e.id < item.id
                && ((item.reference.is_some() && e.reference == item.reference)
                    || (item.payment.is_some() && e.payment == item.payment))
        })
    }

    fn claimable(&self, now: i64) -> Option<usize> {
        self.items
            .iter()
            .position(|i| !i.in_flight && !i.parked && i.next_at <= now && !self.blocked(i))
    }

    fn next_due(&self) -> Option<i64> {
        self.items
            .iter()
            .filter(|i| !i.in_flight && !i.parked && !self.blocked(i))
            .map(|i| i.next_at)
            .min()
    }

    fn in_flight(&self, n: usize) -> Option<usize> {
        let idx: Vec<_> = (0..self.items.len())
            .filter(|&i| self.items[i].in_flight)
            .collect();
        (!idx.is_empty()).then(|| idx[n % idx.len()])
    }

    fn parked(&self, n: usize) -> Option<usize> {
        let idx: Vec<_> = (0..self.items.len())
            .filter(|&i| self.items[i].parked)
            .collect();
        (!idx.is_empty()).then(|| idx[n % idx.len()])
    }
}

fn pay(n: u8) -> String {
    format!("pay_{n}")
}

fn check(store: &Store, model: &Model) -> Result<(), TestCaseError> {
    let listed: Vec<ModelItem> = store
        .list_outbox()
        .unwrap()
        .into_iter()
        .map(|i| ModelItem {
            id: i.id.0,
            reference: i.reference.map(|r| {
                r.as_str()
                    .rsplit('-')
                    .next()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap()
            }),
            payment: i
                .payment_id
                .map(|p| p.as_str().trim_start_matches("pay_").parse::<u8>().unwrap()),
            attempts: i.attempts,
            next_at: i.next_attempt_at,
            in_flight: i.in_flight,
            parked: i.parked,
        })
        .collect();
    prop_assert_eq!(&listed, &model.items);
    prop_assert_eq!(store.next_due_at().unwrap(), model.next_due());
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.db");
    let opts = options(BASE_MS as u64, CAP_MS as u64);
    let mut store = Store::open_with(&path, opts.clone()).unwrap();
    let mut model = Model::default();
    let mut now = T0;
    for op in ops {
        match op {
            Op::Enqueue {
                reference,
                payment,
                delay_ms,
            } => {
                let mut item = event(reference, payment.map(pay).as_deref());
                item.not_before = delay_ms.map(|d| now + i64::from(d));
                let change = match reference {
                    Some(r) if !model.transactions.contains(&r) => {
                        model.transactions.insert(r);
                        Change::insert(
                            now,
                            NewTransaction::sale(crate::common::reference(r), money(100)),
                        )
                        .with(item)
                    }
                    _ => Change::enqueue_only(now, vec![item]),
                };
                let id = store.record(&change).unwrap()[0].0;
                prop_assert!(id > model.last_id, "ids only grow");
                model.last_id = id;
                model.items.push(ModelItem {
                    id,
                    reference,
                    payment,
                    attempts: 0,
                    next_at: now + delay_ms.map_or(0, i64::from),
                    in_flight: false,
                    parked: false,
                });
            }
            Op::Claim => {
                let got = store.claim_next_due(now).unwrap();
                match model.claimable(now) {
                    None => prop_assert!(got.is_none(), "claimed {:?}", got),
                    Some(i) => {
                        let m = &mut model.items[i];
                        m.in_flight = true;
                        m.attempts += 1;
                        let got = got.expect("model has a claimable item");
                        prop_assert_eq!(got.id.0, m.id);
                        prop_assert_eq!(got.attempts, m.attempts);
                    }
                }
            }
            Op::Ack(n) => {
                if let Some(i) = model.in_flight(n) {
                    store.ack(OutboxId(model.items[i].id), now).unwrap();
                    model.items.remove(i);
                }
            }
            Op::Retry(n, retry_after) => {
                if let Some(i) = model.in_flight(n) {
                    let m = &mut model.items[i];
                    let ra = retry_after.map(|s| Duration::from_secs(u64::from(s)));
                    let next = store.retry(OutboxId(m.id), now, "503", ra).unwrap();
                    let backoff = (BASE_MS << (m.attempts.max(1) - 1).min(20)).min(CAP_MS);
                    let delay = backoff.max(retry_after.map_or(0, |s| i64::from(s) * 1000));
                    m.next_at = now + delay;
                    m.in_flight = false;
                    prop_assert_eq!(next, m.next_at);
                }
            }
            Op::Park(n) => {
                if let Some(i) = model.in_flight(n) {
                    store.park(OutboxId(model.items[i].id), now, "400").unwrap();
                    model.items[i].parked = true;
                    model.items[i].in_flight = false;
                }
            }
            Op::Unpark(n) => {
                if let Some(i) = model.parked(n) {
                    store.unpark(OutboxId(model.items[i].id), now).unwrap();
                    model.items[i].parked = false;
                    model.items[i].next_at = now;
                }
            }
            Op::Advance(ms) => now += i64::from(ms),
            Op::Restart => {
                drop(store);
                store = Store::open_with(&path, opts.clone()).unwrap();
                for m in &mut model.items {
                    m.in_flight = false;
                }
            }
        }
        check(&store, &model)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_outbox_agrees_with_a_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops)?;
    }
}
