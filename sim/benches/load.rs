//! Load benchmark of kler-sim over loopback (run: `cargo bench -p kler-sim`).
//!
//! 1. Signed transaction submissions, closed loop: as fast as the machine
//!    goes with 32 clients in flight → requests/s, p50, p99.
//! 2. The same at a fixed offered load of 2,000 submissions/s (open loop)
//!    → achieved rate, p50, p99 at that load.
//! 3. Concurrent SSE command streams with pings every second: how many
//!    stay open and keep receiving pings.
//!
//! The simulator runs in this process, on the same 2 cores as the load.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark driver

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kler_sim::client::{OrgClient, SignedClient};
use proto::wire::ProvisionResponse;
use reqwest::Method;
use serde_json::{Value, json};

const ORG: &str = "bench-org";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn terminals(
    org: &OrgClient,
    http: &reqwest::Client,
    base: &str,
    count: usize,
) -> Vec<(String, SignedClient)> {
    let mut out = Vec::new();
    while out.len() < count {
        let n = (count - out.len()).min(50);
        let r: Value = org
            .request(Method::POST, "/v1/sessions")
            .json(&json!({"external_event_id": "bench", "name": "Bench",
                          "collection": {"pos": true, "pos_count": n}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for t in r["data"]["pos_terminals"].as_array().unwrap() {
            let tid = t["terminal_id"].as_str().unwrap().to_owned();
            let p: Value = org
                .request(Method::POST, &format!("/v1/terminals/{tid}/provision"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let p: ProvisionResponse = serde_json::from_value(p["data"].clone()).unwrap();
            out.push((tid, SignedClient::new(http.clone(), base, p.credentials())));
        }
    }
    out
}

static SEQ: AtomicU64 = AtomicU64::new(1);

async fn submit_one(tid: &str, c: &SignedClient) -> Duration {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let reference = format!("{tid}-{n:08}");
    let body = json!({"reference": reference, "kind": "sale", "amount": "1500.50", "currency": "NGN",
        "card": {"token": "9f2c4e1a0b7d3e6f8a1c2b4d6e8f0a1b", "last4": "1111", "brand": "visa", "entry_mode": "contactless"},
        "captured_at": "2026-11-21T10:00:00Z", "offline": false})
    .to_string()
    .into_bytes();
    let start = Instant::now();
    let r = c
        .request(
            Method::POST,
            &format!("/v1/terminals/{tid}/transactions"),
            &body,
        )
        .unwrap()
        .header("Idempotency-Key", &reference)
        .send()
        .await
        .expect("submission sent");
    assert_eq!(r.status().as_u16(), 201, "{:?}", r.text().await);
    let _ = r.bytes().await.unwrap();
    start.elapsed()
}

fn report(name: &str, lat: &mut [Duration], elapsed: Duration) {
    lat.sort();
    println!(
        "| {name:<38} | {:>8} | {:>9.0} | {:>9} | {:>9} | {:>9} |",
        lat.len(),
        lat.len() as f64 / elapsed.as_secs_f64(),
        ms(percentile(lat, 0.50)),
        ms(percentile(lat, 0.99)),
        ms(lat.last().copied().unwrap_or_default()),
    );
}

async fn closed_loop(
    label: &str,
    terms: Arc<Vec<(String, SignedClient)>>,
    clients: usize,
    run: Duration,
) {
    let deadline = Instant::now() + run;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..clients {
        let terms = Arc::clone(&terms);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let (tid, c) = &terms[i % terms.len()];
            while Instant::now() < deadline {
                lat.push(submit_one(tid, c).await);
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    report(
        &format!("{label}closed loop, {clients} in flight"),
        &mut all,
        start.elapsed(),
    );
}

async fn open_loop(terms: Arc<Vec<(String, SignedClient)>>, rate: u64, run: Duration) {
    // 2 requests per 1 ms tick = 2,000/s (the timer's resolution is 1 ms).
    let per_tick = rate / 1000;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut i = 0usize;
    while start.elapsed() < run {
        tick.tick().await;
        for _ in 0..per_tick {
            let terms = Arc::clone(&terms);
            let k = i;
            i += 1;
            tasks.spawn(async move {
                let (tid, c) = &terms[k % terms.len()];
                submit_one(tid, c).await
            });
        }
    }
    let mut all = Vec::new();
    while let Some(r) = tasks.join_next().await {
        all.push(r.unwrap());
    }
    let elapsed = start.elapsed();
    report(&format!("open loop, offered {rate}/s"), &mut all, elapsed);
}

async fn streams(base: &str, org: &OrgClient, count: usize, window: Duration) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let terms = terminals(org, &http, base, count).await;
    let open = Arc::new(AtomicUsize::new(0));
    let pings = Arc::new(AtomicU64::new(0));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let stop = tokio_stop();
    let mut tasks = Vec::new();
    let opened = Instant::now();
    for (tid, c) in terms {
        let open = Arc::clone(&open);
        let pings = Arc::clone(&pings);
        let ready = ready_tx.clone();
        let mut stop = stop.1.clone();
        tasks.push(tokio::spawn(async move {
            let mut r = c
                .request(
                    Method::GET,
                    &format!("/v1/terminals/{tid}/commands/stream"),
                    b"",
                )
                .unwrap()
                .send()
                .await
                .expect("stream opened");
            assert_eq!(r.status().as_u16(), 200);
            open.fetch_add(1, Ordering::SeqCst);
            let _ = ready.send(());
            loop {
                tokio::select! {
                    chunk = r.chunk() => match chunk {
                        Ok(Some(b)) => {
                            let n = b.windows(6).filter(|w| w == b": ping").count();
                            pings.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        _ => break,
                    },
                    _ = stop.changed() => break,
                }
            }
            open.fetch_sub(1, Ordering::SeqCst);
        }));
    }
    drop(ready_tx);
    for _ in 0..count {
        ready_rx.recv().await.expect("every stream opens");
    }
    let open_time = opened.elapsed();
    let before = pings.load(Ordering::Relaxed);
    tokio::time::sleep(window).await; // measurement window, not synchronisation
    let during = pings.load(Ordering::Relaxed) - before;
    let still_open = open.load(Ordering::SeqCst);
    let _ = stop.0.send(true);
    for t in tasks {
        let _ = t.await;
    }
    println!(
        "| {count:>6} streams | opened in {:>8} | open after {:>2}s: {still_open:>6} | pings in window: {during:>7} ({:.2}/stream/s) |",
        ms(open_time),
        window.as_secs(),
        during as f64 / still_open.max(1) as f64 / window.as_secs_f64(),
    );
}

fn tokio_stop() -> (
    tokio::sync::watch::Sender<bool>,
    tokio::sync::watch::Receiver<bool>,
) {
    tokio::sync::watch::channel(false)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut cfg = kler_sim::Config::new("127.0.0.1:0", ORG);
        cfg.ping_interval = Duration::from_secs(1);
        cfg.stream_max = Duration::from_secs(600);
        let sim = kler_sim::start(cfg).await.unwrap();
        let base = sim.url();
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()
            .unwrap();
        let org = OrgClient::new(http.clone(), &base, ORG);
        let terms = Arc::new(terminals(&org, &http, &base, 50).await);

        println!("kler-sim load benchmark ({} CPUs, simulator and load in one process)", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0));
        println!();
        println!("Signed transaction submissions (POST /v1/terminals/:tid/transactions, HMAC verified, recorded in memory):");
        println!("| {:<38} | {:>8} | {:>9} | {:>9} | {:>9} | {:>9} |", "run", "requests", "req/s", "p50", "p99", "max");
        println!("|{}|", "-".repeat(98));
        // Warm-up (connections, allocator).
        closed_loop("warm-up, ", Arc::clone(&terms), 16, Duration::from_secs(1)).await;
        for clients in [8, 32] {
            closed_loop("", Arc::clone(&terms), clients, Duration::from_secs(5)).await;
        }
        open_loop(Arc::clone(&terms), 2000, Duration::from_secs(5)).await;
        // The same with --state: every submission written through to SQLite.
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = kler_sim::Config::new("127.0.0.1:0", ORG);
        cfg.state_file = Some(dir.path().join("bench.db"));
        let persisted = kler_sim::start(cfg).await.unwrap();
        let porg = OrgClient::new(http.clone(), persisted.url(), ORG);
        let pterms = Arc::new(terminals(&porg, &http, &persisted.url(), 50).await);
        closed_loop("--state, ", Arc::clone(&pterms), 32, Duration::from_secs(5)).await;
        persisted.shutdown().await;
        println!();
        println!("Concurrent SSE command streams (one connection each, `: ping` every 1 s):");
        for n in [1000, 2000] {
            streams(&base, &org, n, Duration::from_secs(3)).await;
        }
        sim.shutdown().await;
    });
}
