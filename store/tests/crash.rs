//! Crash test: a child process commits payments (transaction + outbox item
//! per commit) and reports each reference on stdout after the commit
//! returned; the parent SIGKILLs it at a random point and checks, after
//! reopening, that everything reported is there and nothing is half-written.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use crate::common::*;
use proto::Reference;
use rand::Rng;
use serde_json::json;
use store::{Change, NewOutboxItem, OutboxKind, Store, TxState};

const CHILD_ENV: &str = "STORE_CRASH_CHILD_DB";
/// The child test's name as libtest knows it in the `main` test binary:
/// its module path without the crate name.
const CHILD_TEST: &str = "crash::crash_child_writer";
const PREFIX: &str = "COMMITTED ";
const APPROVED: &str = "APPROVED ";
const ROUNDS: usize = 30;

/// Runs only as the child of `killed_writers_lose_nothing_they_reported`.
#[test]
#[ignore = "child process of the crash test"]
fn crash_child_writer() {
    let path = std::env::var(CHILD_ENV).expect("started by the crash test with the db path");
    let store = Store::open(&path).unwrap();
    let mut out = std::io::stdout().lock();
    loop {
        let n = store.next_sequence(T0).unwrap();
        let r = Reference::for_sequence(&tid(), n);
        store
            .record(&pending_sale_with_forward(T0 + n as i64, &r, 100 + n))
            .unwrap();
        writeln!(out, "{PREFIX}{r}").unwrap();
        out.flush().unwrap();
        if n % 3 == 0 {
            // A state change and its event commit together, or not at all.
            let event = NewOutboxItem::new(OutboxKind::PaymentEvent, json!({ "n": n }))
                .for_reference(r.clone());
            store
                .record(&Change::update(T0 + n as i64, r.clone(), approve(true)).with(event))
                .unwrap();
            writeln!(out, "{APPROVED}{r}").unwrap();
            out.flush().unwrap();
        }
        if n % 2 == 0 {
            // Leave items in flight for the next open to recover.
            store.claim_next_due(T0 + n as i64).unwrap();
        }
    }
}

fn count(conn: &rusqlite::Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn killed_writers_lose_nothing_they_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    drop(Store::open(&path).unwrap());
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::thread_rng();
    let mut reported: Vec<Reference> = Vec::new();
    let mut approved: Vec<Reference> = Vec::new();
    let mut rounds_with_in_flight = 0;

    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args([
                CHILD_TEST,
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Zero kills it while it is still opening the database.
        let kill_after = rng.gen_range(0..=25);
        let mut seen = 0;
        while seen < kill_after {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("round {round}: the writer exited early"))
                .unwrap();
            if let Some(r) = line.strip_prefix(PREFIX) {
                reported.push(Reference::new(r).unwrap());
                seen += 1;
            } else if let Some(r) = line.strip_prefix(APPROVED) {
                approved.push(Reference::new(r).unwrap());
            }
        }
        child.kill().unwrap(); // SIGKILL
        // Whatever it printed before dying was committed too.
        for line in lines {
            let line = line.unwrap();
            if let Some(r) = line.strip_prefix(PREFIX) {
                reported.push(Reference::new(r).unwrap());
            } else if let Some(r) = line.strip_prefix(APPROVED) {
                approved.push(Reference::new(r).unwrap());
            }
        }
        child.wait().unwrap();

        {
            let raw = rusqlite::Connection::open(&path).unwrap();
            if count(&raw, "SELECT count(*) FROM outbox WHERE in_flight = 1") > 0 {
                rounds_with_in_flight += 1;
            }
        }
        let store = Store::open(&path).unwrap(); // runs quick_check
        store.check_integrity().unwrap();
        let outbox = store.list_outbox().unwrap();
        assert!(
            outbox.iter().all(|i| !i.in_flight),
            "round {round}: in flight after open"
        );
        let forwarded: std::collections::HashSet<_> = outbox
            .iter()
            .filter(|i| i.kind == OutboxKind::Transaction)
            .filter_map(|i| i.reference.clone())
            .collect();
        for r in &reported {
            assert!(
                store.transaction(r).unwrap().is_some(),
                "round {round}: {r} lost"
            );
            assert!(
                forwarded.contains(r),
                "round {round}: outbox item of {r} lost"
            );
        }
        for r in &approved {
            let t = store.transaction(r).unwrap().unwrap();
            assert_eq!(t.state, TxState::OfflineApproved, "round {round}: {r}");
        }
        drop(store);
        let raw = rusqlite::Connection::open(&path).unwrap();
        assert_eq!(
            count(
                &raw,
                "SELECT count(*) FROM transactions t WHERE (t.state = 'offline_approved') <> \
                 EXISTS (SELECT 1 FROM outbox o \
                         WHERE o.reference = t.reference AND o.kind = 'payment_event')"
            ),
            0,
            "round {round}: a state change without its event, or the reverse"
        );
        assert_eq!(
            count(
                &raw,
                "SELECT count(*) FROM transactions t WHERE NOT EXISTS \
                 (SELECT 1 FROM outbox o WHERE o.reference = t.reference)"
            ),
            0,
            "round {round}: a transaction without its outbox item"
        );
        assert_eq!(
            count(
                &raw,
                "SELECT count(*) FROM outbox o WHERE NOT EXISTS \
                 (SELECT 1 FROM transactions t WHERE t.reference = o.reference)"
            ),
            0,
            "round {round}: an outbox item without its transaction"
        );
    }
    assert!(
        reported.len() > ROUNDS,
        "the writers committed: {}",
        reported.len()
    );
    assert!(rounds_with_in_flight > 0, "some kills left items in flight");
    assert!(!approved.is_empty(), "the writers approved some payments");
}
