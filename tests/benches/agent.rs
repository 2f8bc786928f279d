//! Agent benchmarks (`cargo bench -p e2e-tests --bench agent`), printed as a
//! table with the goals:
//!
//! - tap-to-result latency p50/p99, online approval via the loopback sim and
//!   offline approval (the result screen appears only after the durable
//!   commit, so both include it); measured in-process on the virtual
//!   device's state channel, from the tap to the `approved` state;
//! - drain rate of 10,000 offline payments seeded into the ledger (through
//!   the store crate, outbox payloads encoded by the runtime's own mapping)
//!   to the sim: agent start to empty queue;
//! - idle RSS and CPU of an agent process (`agent-proc run`, the `pos-agent
//!   run` equivalent) with the production timers over 60 s (`/proc/<pid>/status` VmRSS,
//!   `/proc/<pid>/stat` utime+stime, 100 ticks/s);
//! - start-to-idle-screen time with 100,000 stored transactions;
//! - the cashier's keypad (SPEC 7.1): key press to the screen state that
//!   shows it, p99 over the digits of many amounts, and keypad-sale
//!   tap-to-result p99, online and offline.
//!
//! - the disk (`disk`, see `agent/disk.rs`): fsyncs, bytes written and WAL
//!   checkpoints per sale of a real agent process, and tap-to-result with a
//!   slow (5 ms per sync) card.
//!
//! `BENCH_QUICK=1` shortens every part (for a smoke run);
//! `BENCH_ONLY=latency|start|drain|idle|keypad|disk` runs one part.

#[path = "agent/disk.rs"]
mod disk;

use std::path::Path;
use std::time::{Duration, Instant};

use e2e_tests::backend::{Backend, SimOptions};
use e2e_tests::proxy::LinkState;
use e2e_tests::scenario::{Scene, ngn};
use e2e_tests::terminal::AgentOptions;
use e2e_tests::timeline::Timeline;
use hal::{ScreenStateJson, TestCard, VirtualDevice};
use pos_agent::runtime::mapping::OutboxPayload;
use proto::wire::{self, Timestamp};
use proto::{Currency, Reference};
use store::{Change, DecisionMode, NewOutboxItem, NewTransaction, OutboxKind, Store, TxState};
use ui::{ScreenName, ScreenState};

const WAIT: Duration = Duration::from_secs(30);

struct Row {
    metric: String,
    value: String,
    goal: String,
    ok: bool,
}

fn quick() -> bool {
    std::env::var_os("BENCH_QUICK").is_some()
}

/// Short result screens and a fast heartbeat (the backend's busy flag
/// follows the heartbeat) so that payments follow each other quickly.
fn bench_opts() -> AgentOptions {
    AgentOptions {
        result_hold: Duration::from_millis(100),
        heartbeat: Duration::from_millis(200),
        log_filter: "warn".into(),
        ..AgentOptions::default()
    }
}

/// The production timers (heartbeat every 10 s), for the idle measurement.
fn production_opts() -> AgentOptions {
    AgentOptions {
        heartbeat: Duration::from_secs(10),
        retry_initial: Duration::from_millis(500),
        retry_max: Duration::from_secs(60),
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(15),
        log_filter: "info".into(),
        ..AgentOptions::default()
    }
}

/// The agent's screen state in the device's opaque one.
fn parsed(state: &ScreenStateJson) -> Option<ScreenState> {
    state.parse().ok()
}

async fn wait_state(dev: &VirtualDevice, what: &str, pred: impl Fn(&ScreenState) -> bool) {
    let mut rx = dev.subscribe_state();
    match tokio::time::timeout(WAIT, rx.wait_for(|s| parsed(s).is_some_and(|s| pred(&s)))).await {
        Ok(Ok(_)) => {}
        _ => panic!(
            "benchmark: timed out waiting for {what}: {:?}",
            dev.screen_state()
        ),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// One payment: the partner creates it, the tap screen comes up, (offline:
/// the link is cut and the terminal notices), then the timed tap.
async fn one_payment(s: &mut Scene, n: u64, offline: bool) -> Duration {
    let dev = s.terminals[0].virtual_device().expect("in-process agent");
    let key = format!("bench-{n}-{}", uuid::Uuid::new_v4().simple());
    let tid = s.terminals[0].id.clone();
    s.backend
        .create_payment_when_free(&tid, ngn(1_000 + n), &key, None, &key, WAIT)
        .await
        .expect("payment created");
    wait_state(&dev, "tap_card", |st| st.screen == ScreenName::TapCard).await;
    dev.reader_ready().await;
    if offline {
        s.terminals[0].proxy().set(LinkState::Refuse);
        wait_state(&dev, "offline", |st| st.offline).await;
    }
    timed_tap(s, &dev, offline).await
}

/// The timed tap of a sale on the tap screen (offline: with the link cut),
/// to its approved result; then the link back and the queue drained.
async fn timed_tap(s: &Scene, dev: &VirtualDevice, offline: bool) -> Duration {
    let t0 = Instant::now();
    dev.tap(TestCard::VisaOk).expect("reader waiting");
    wait_state(dev, "a result", |st| {
        matches!(
            st.screen,
            ScreenName::Approved | ScreenName::Declined | ScreenName::Error
        )
    })
    .await;
    let dt = t0.elapsed();
    assert_eq!(
        parsed(&dev.screen_state()).map(|st| st.screen),
        Some(ScreenName::Approved),
        "benchmark sale approved"
    );
    if offline {
        s.terminals[0].proxy().set(LinkState::Up);
    }
    wait_state(dev, "idle, online, drained", |st| {
        st.screen == ScreenName::Idle && !st.offline && st.queued == 0
    })
    .await;
    dt
}

async fn latency(rows: &mut Vec<Row>, root: &Path) {
    let n = if quick() { 10 } else { 200 };
    let timeline = Timeline::new(None, false).expect("timeline");
    let mut s = Scene::start(root, 1, SimOptions::default(), bench_opts(), timeline)
        .await
        .expect("scene");
    for (label, offline, goal) in [("online", false, 40.0), ("offline", true, 25.0)] {
        let mut v = Vec::with_capacity(n);
        for i in 0..n {
            v.push(one_payment(&mut s, i as u64, offline).await);
        }
        v.sort();
        let p50 = percentile(&v, 0.50);
        let p99 = percentile(&v, 0.99);
        rows.push(Row {
            metric: format!("tap-to-result {label} p50 ({n} payments)"),
            value: ms(p50),
            goal: String::new(),
            ok: true,
        });
        rows.push(Row {
            metric: format!("tap-to-result {label} p99 ({n} payments)"),
            value: ms(p99),
            goal: format!("<= {goal} ms"),
            ok: p99.as_secs_f64() * 1000.0 <= goal,
        });
    }
    finish(s).await;
}

fn digit(d: u8) -> hal::Button {
    hal::Button::Digit(hal::Digit::new(d).expect("a digit 0-9"))
}

/// One keypad sale of `minor` kobo: each digit timed to the screen state
/// showing the new amount, then (offline: with the link cut) the timed tap.
async fn keypad_sale(
    s: &mut Scene,
    minor: u64,
    offline: bool,
    keys: &mut Vec<Duration>,
) -> Duration {
    let dev = s.terminals[0].virtual_device().expect("in-process agent");
    if offline {
        s.terminals[0].proxy().set(LinkState::Refuse);
        wait_state(&dev, "offline", |st| st.offline).await;
    }
    let text = minor.to_string();
    let mut keyed = 0u64;
    for c in text.bytes() {
        let d = c - b'0';
        keyed = keyed * 10 + u64::from(d);
        let want = proto::Money::from_minor(keyed).expect("a bench amount");
        let t0 = Instant::now();
        dev.press(digit(d)).expect("press");
        wait_state(&dev, "the keyed amount", |st| {
            st.screen == ScreenName::AmountEntry && st.amount == Some(want)
        })
        .await;
        keys.push(t0.elapsed());
    }
    dev.press(hal::Button::Ok).expect("press ok");
    wait_state(&dev, "tap_card", |st| st.screen == ScreenName::TapCard).await;
    dev.reader_ready().await;
    timed_tap(s, &dev, offline).await
}

async fn keypad(rows: &mut Vec<Row>, root: &Path) {
    let n = if quick() { 10 } else { 200 };
    let timeline = Timeline::new(None, false).expect("timeline");
    let mut s = Scene::start(root, 1, SimOptions::default(), bench_opts(), timeline)
        .await
        .expect("scene");
    let mut keys = Vec::new();
    for (label, offline, goal) in [("online", false, 40.0), ("offline", true, 25.0)] {
        let mut v = Vec::with_capacity(n);
        for i in 0..n {
            let minor = 10_000 + 37 * i as u64;
            v.push(keypad_sale(&mut s, minor, offline, &mut keys).await);
        }
        v.sort();
        let p99 = percentile(&v, 0.99);
        rows.push(Row {
            metric: format!("keypad sale tap-to-result {label} p99 ({n})"),
            value: ms(p99),
            goal: format!("<= {goal} ms"),
            ok: p99.as_secs_f64() * 1000.0 <= goal,
        });
    }
    keys.sort();
    let p99 = percentile(&keys, 0.99);
    rows.push(Row {
        metric: format!("key press to screen p50 ({} keys)", keys.len()),
        value: ms(percentile(&keys, 0.50)),
        goal: String::new(),
        ok: true,
    });
    rows.push(Row {
        metric: format!("key press to screen p99 ({} keys)", keys.len()),
        value: ms(p99),
        goal: "<= 50 ms".into(),
        ok: p99.as_secs_f64() * 1000.0 <= 50.0,
    });
    finish(s).await;
}

/// The card token SQL's `printf('%064x', i)` gives row `i`.
fn token(i: u64) -> String {
    format!("{i:064x}")
}

/// Seeds `count` transactions into `ledger`: the first through the store
/// (offline approved with its queued forward, encoded by the runtime's own
/// outbox mapping, when `queued`; settled approved otherwise), the rest
/// copied from it in one SQL transaction (a durable commit per row would
/// take minutes) with their own reference, card token and payload.
fn seed(ledger: &Path, tid: &proto::TerminalId, count: u64, queued: bool) -> Duration {
    let t0 = Instant::now();
    let store = Store::open(ledger).expect("ledger opens");
    let now = Timestamp::now();
    let now_ms = now.unix() * 1000;
    let seq = store.next_sequence(now_ms).expect("sequence");
    let reference = Reference::for_sequence(tid, seq);
    let amount = ngn(1_000);
    let mut tx = NewTransaction::sale(reference.clone(), amount);
    tx.state = if queued {
        TxState::OfflineApproved
    } else {
        TxState::Approved
    };
    tx.card = Some(
        store::Card::new(
            token(seq),
            "1111",
            store::CardBrand::Visa,
            store::EntryMode::Contactless,
        )
        .expect("card"),
    );
    tx.captured_at = Some(now_ms);
    tx.decision = Some(
        store::Decision::new(
            if queued {
                DecisionMode::Offline
            } else {
                DecisionMode::Online
            },
            if queued {
                "offline_link_down"
            } else {
                "online"
            },
        )
        .expect("decision"),
    );
    let mut change = Change::insert(now_ms, tx);
    if queued {
        let sub = wire::TransactionSubmission {
            reference: reference.clone(),
            payment_id: None,
            kind: wire::TxKind::Sale,
            amount,
            currency: Currency::Ngn,
            card: wire::Card {
                token: wire::CardToken::new(token(seq)).expect("token"),
                last4: wire::Last4::new("1111").expect("last4"),
                brand: wire::CardBrand::Visa,
                entry_mode: wire::EntryMode::Contactless,
            },
            operator_id: None,
            captured_at: now,
            offline: true,
            original_reference: None,
            tip_amount: None,
            items: None,
        };
        let payload = serde_json::to_value(OutboxPayload::Transaction(sub)).expect("payload");
        change = change.with(
            NewOutboxItem::new(OutboxKind::Transaction, payload).for_reference(reference.clone()),
        );
    }
    store.record(&change).expect("template seeded");
    drop(store);

    let mut conn = rusqlite::Connection::open(ledger).expect("ledger");
    conn.execute_batch("PRAGMA synchronous = OFF;")
        .expect("pragma");
    let t = conn.transaction().expect("sql transaction");
    let prefix = tid.as_str();
    t.execute(
        "WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
         INSERT INTO transactions (reference, payment_id, kind, amount, currency, state,
             card_token, card_last4, card_brand, card_entry_mode, operator_id, captured_at,
             decision, decision_reason, created_at, updated_at)
         SELECT printf('%s-%06d', ?3, i), NULL, kind, amount, currency, state,
             printf('%064x', i), card_last4, card_brand, card_entry_mode, NULL, captured_at,
             decision, decision_reason, created_at, updated_at
         FROM transactions, n WHERE reference = ?4",
        rusqlite::params![seq + 1, count, prefix, reference.as_str()],
    )
    .expect("transactions copied");
    if queued {
        t.execute(
            "WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
             INSERT INTO outbox (kind, payload, reference, payment_id, attempts,
                 next_attempt_at, in_flight, parked, created_at)
             SELECT kind,
                 json_set(payload, '$.reference', printf('%s-%06d', ?3, i),
                                   '$.card.token', printf('%064x', i)),
                 printf('%s-%06d', ?3, i), NULL, 0, next_attempt_at, 0, 0, created_at
             FROM outbox, n WHERE reference = ?4",
            rusqlite::params![seq + 1, count, prefix, reference.as_str()],
        )
        .expect("outbox copied");
    }
    t.execute(
        "UPDATE kv SET value = ?1 WHERE key = ?2",
        rusqlite::params![count.to_string(), store::KEY_REFERENCE_SEQUENCE],
    )
    .expect("sequence");
    t.commit().expect("commit");
    drop(conn);
    // Reopen through the store: integrity check and migrations pass.
    let store = Store::open(ledger).expect("seeded ledger opens");
    store.check_integrity().expect("integrity");
    t0.elapsed()
}

async fn drain(rows: &mut Vec<Row>, root: &Path) {
    let count: u64 = if quick() { 500 } else { 10_000 };
    let backend = Backend::start(SimOptions::default()).await.expect("sim");
    let timeline = Timeline::new(None, false).expect("timeline");
    let opts = AgentOptions {
        // The seeded queue is far beyond the default offline limits; they
        // govern new sales, not the drain.
        extra_toml: "[offline]\nmax_count = 100000\nmax_total = \"100000000.00\"\n".into(),
        ..bench_opts()
    };
    let mut s = Scene::provisioned(backend, root, 1, opts, timeline)
        .await
        .expect("scene");
    let tid = s.terminals[0].id.clone();
    let seeded = seed(&s.terminals[0].ledger_path(), &tid, count, true);
    eprintln!("seeded {count} queued offline payments in {seeded:?}");
    let t0 = Instant::now();
    s.terminals[0].start().await.expect("agent starts");
    let dev = s.terminals[0].virtual_device().expect("in-process agent");
    let mut rx = dev.subscribe_state();
    let done = tokio::time::timeout(
        Duration::from_secs(600),
        rx.wait_for(|st| {
            parsed(st)
                .is_some_and(|st| st.screen == ScreenName::Idle && st.queued == 0 && !st.offline)
        }),
    )
    .await;
    assert!(
        matches!(done, Ok(Ok(_))),
        "queue drained: {:?}",
        dev.screen_state()
    );
    let dt = t0.elapsed();
    let rate = count as f64 / dt.as_secs_f64();
    let rec = s
        .backend
        .reconciliation(s.session_id())
        .await
        .expect("reconciliation");
    assert_eq!(
        rec.successful_count, count,
        "every seeded payment reached the sim"
    );
    rows.push(Row {
        metric: format!("drain {count} offline payments"),
        value: format!("{rate:.0} payments/s ({:.1} s)", dt.as_secs_f64()),
        goal: ">= 500 payments/s".into(),
        ok: rate >= 500.0,
    });
    finish(s).await;
}

fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn proc_cpu_ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat: indexes 11 and 12 here.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

async fn idle(rows: &mut Vec<Row>, root: &Path) {
    let window = if quick() {
        Duration::from_secs(5)
    } else {
        Duration::from_secs(60)
    };
    let backend = Backend::start(SimOptions::default()).await.expect("sim");
    let timeline = Timeline::new(None, false).expect("timeline");
    let mut s = Scene::provisioned(backend, root, 1, production_opts(), timeline)
        .await
        .expect("scene");
    let (logs, _rx) = tokio::sync::mpsc::unbounded_channel();
    s.terminals[0]
        .start_process(Path::new(env!("CARGO_BIN_EXE_agent-proc")), logs)
        .await
        .expect("agent process");
    s.wait_ready(0).await.expect("ready");
    let pid = s.terminals[0].pid().expect("pid");
    // Let start-up settle, then measure a window of pure idling (the
    // heartbeat and the command stream's pings are part of idle).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let c0 = proc_cpu_ticks(pid).expect("stat");
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let c1 = proc_cpu_ticks(pid).expect("stat");
    let secs = t0.elapsed().as_secs_f64();
    let rss = proc_status_kib(pid, "VmRSS:").expect("VmRSS");
    let hwm = proc_status_kib(pid, "VmHWM:").unwrap_or(rss);
    let cpu = (c1 - c0) as f64 / 100.0 / secs * 100.0;
    rows.push(Row {
        metric: format!(
            "idle RSS after {:.0} s (peak {:.1} MiB)",
            secs,
            hwm as f64 / 1024.0
        ),
        value: format!("{:.1} MiB", rss as f64 / 1024.0),
        goal: "<= 20 MiB".into(),
        ok: rss <= 20 * 1024,
    });
    rows.push(Row {
        metric: format!("idle CPU over {secs:.0} s"),
        value: format!("{cpu:.2} %"),
        goal: "<= 1 %".into(),
        ok: cpu <= 1.0,
    });
    finish(s).await;
}

async fn start_to_idle(rows: &mut Vec<Row>, root: &Path) {
    let count: u64 = if quick() { 5_000 } else { 100_000 };
    let backend = Backend::start(SimOptions::default()).await.expect("sim");
    let timeline = Timeline::new(None, false).expect("timeline");
    let mut s = Scene::provisioned(backend, root, 1, bench_opts(), timeline)
        .await
        .expect("scene");
    let tid = s.terminals[0].id.clone();
    let seeded = seed(&s.terminals[0].ledger_path(), &tid, count, false);
    eprintln!("seeded {count} settled transactions in {seeded:?}");
    let t0 = Instant::now();
    s.terminals[0].start().await.expect("agent starts");
    let dev = s.terminals[0].virtual_device().expect("in-process agent");
    wait_state(&dev, "idle", |st| st.screen == ScreenName::Idle).await;
    let dt = t0.elapsed();
    rows.push(Row {
        metric: format!("start to idle screen, {count} stored transactions"),
        value: ms(dt),
        goal: "<= 500 ms".into(),
        ok: dt <= Duration::from_millis(500),
    });
    finish(s).await;
}

/// Stops the scene; a failed graceful stop is reported, not fatal to the
/// remaining measurements.
async fn finish(s: Scene) {
    if let Err(e) = s.shutdown().await {
        eprintln!("WARNING: graceful stop failed: {e}");
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rows = Vec::new();
    // BENCH_ONLY=latency|start|drain|idle|keypad|disk runs one part.
    let only = std::env::var("BENCH_ONLY").ok();
    let run = |part: &str| only.as_deref().is_none_or(|o| o == part);
    rt.block_on(async {
        if run("latency") {
            latency(&mut rows, &dir.path().join("latency")).await;
        }
        if run("start") {
            start_to_idle(&mut rows, &dir.path().join("start")).await;
        }
        if run("drain") {
            drain(&mut rows, &dir.path().join("drain")).await;
        }
        if run("idle") {
            idle(&mut rows, &dir.path().join("idle")).await;
        }
        if run("keypad") {
            keypad(&mut rows, &dir.path().join("keypad")).await;
        }
        if run("disk") {
            disk::disk(&mut rows, &dir.path().join("disk")).await;
        }
    });
    println!();
    println!("{:<52} {:>44}  {:<18} ", "metric", "value", "goal");
    println!("{}", "-".repeat(122));
    for r in &rows {
        println!(
            "{:<52} {:>44}  {:<18} {}",
            r.metric,
            r.value,
            r.goal,
            if r.goal.is_empty() {
                ""
            } else if r.ok {
                "ok"
            } else {
                "MISSED"
            }
        );
    }
}
