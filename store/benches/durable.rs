//! Durable payments per second against the raw `write + fdatasync` rate of
//! the same disk. Run with `cargo bench -p store --bench durable`.
//!
//! The three operations are interleaved one by one (raw append, raw
//! overwrite, durable payment, repeat), so a disk whose speed drifts (a
//! shared host, other builds flushing) slows all three alike and the ratios
//! stay meaningful. Rates are operations divided by the summed latencies.
//!
//! The store is measured in the state a terminal runs in: the agent
//! checkpoints the WAL at idle moments every 1000 commits
//! (`Store::checkpoint_if_due`), after which SQLite writes the WAL again
//! from its start, over blocks the file already has. The bench does the
//! same between two operations, outside the timed calls, after a warm-up
//! long enough to reach that state; the checkpoints' own cost is printed
//! apart. (A new ledger's first 1000 commits grow the WAL instead, and on
//! a file system without a journal each of their syncs also writes the
//! inode.)
//!
//! `STORE_BENCH_DIR` chooses the directory (default: the target's tmp dir);
//! it must not be tmpfs for the figures to mean anything.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark binary

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proto::{Money, Reference, TerminalId};
use serde_json::json;
use store::{Card, Change, NewOutboxItem, NewTransaction, OutboxKind, Store};

const N: usize = 3_000;
/// Past the first idle checkpoint (1000 commits), so the WAL is reused.
const WARM_UP: usize = 1_100;
const RECORD: [u8; 128] = [0x42; 128];

fn main() {
    let base = std::env::var_os("STORE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    std::fs::create_dir_all(&base).unwrap();
    let dir = tempfile::tempdir_in(&base).unwrap();
    println!(
        "directory {} (filesystem {})",
        dir.path().display(),
        filesystem_of(dir.path())
    );

    let mut append = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path().join("append.log"))
        .unwrap();
    let overwrite = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(dir.path().join("overwrite.dat"))
        .unwrap();
    overwrite.write_all_at(&[0u8; 4096], 0).unwrap();
    overwrite.sync_all().unwrap();
    let store = Store::open(dir.path().join("bench.db")).unwrap();
    let mut payments = Payments::new();

    let mut lat = [const { Vec::new() }; 3];
    let mut checkpoints = Vec::new();
    for i in 0..WARM_UP + N {
        let a = time(|| append_record(&mut append));
        let o = time(|| overwrite_record(&overwrite));
        let change = payments.next();
        let d = time(|| {
            store.record(&change).unwrap();
        });
        // The idle moment between two payments.
        let t = Instant::now();
        if store.checkpoint_if_due().unwrap().is_some() && i >= WARM_UP {
            checkpoints.push(t.elapsed());
        }
        if i >= WARM_UP {
            lat[0].push(a);
            lat[1].push(o);
            lat[2].push(d);
        }
    }

    let [append, overwrite, durable] = lat.map(summarize);
    println!();
    println!(
        "{:<46} {:>9} {:>8} {:>8} {:>8}",
        "operation (3000 each, interleaved)", "per sec", "mean ms", "p50 ms", "p99 ms"
    );
    for (name, r) in [
        ("write + fdatasync, 128 B appended (std::fs)", append),
        ("write + fdatasync, 128 B overwritten (std::fs)", overwrite),
        ("durable payment (tx + outbox, WAL, FULL)", durable),
    ] {
        println!(
            "{:<46} {:>9.0} {:>8.3} {:>8.3} {:>8.3}",
            name, r.rate, r.mean_ms, r.p50_ms, r.p99_ms
        );
    }
    let spent: Duration = checkpoints.iter().sum();
    println!(
        "idle checkpoints between them: {}, {:.3} ms each on average ({:.4} ms per payment)",
        checkpoints.len(),
        spent.as_secs_f64() * 1e3 / checkpoints.len().max(1) as f64,
        spent.as_secs_f64() * 1e3 / N as f64
    );
    println!();
    println!(
        "ratio durable / raw append    = {:.2} (goal >= 0.90)",
        durable.rate / append.rate
    );
    println!(
        "ratio durable / raw overwrite = {:.2}",
        durable.rate / overwrite.rate
    );
}

fn time(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

/// Appends a record: the file grows, so `fdatasync` also commits its size.
fn append_record(f: &mut File) {
    f.write_all(&RECORD).unwrap();
    f.sync_data().unwrap();
}

/// Rewrites the same bytes of an allocated file: nothing but data to flush.
fn overwrite_record(f: &File) {
    f.write_all_at(&RECORD, 0).unwrap();
    f.sync_data().unwrap();
}

/// Builds one sale with its forward per call, as the agent records them.
struct Payments {
    tid: TerminalId,
    card: Card,
    seq: u64,
}

impl Payments {
    fn new() -> Self {
        Payments {
            tid: TerminalId::new("pos_bench_001").unwrap(),
            card: Card::new(
                "9f2c4e1a0b7d3e6f8a1c2b4d6e8f0a1b",
                "1111",
                store::CardBrand::Visa,
                store::EntryMode::Contactless,
            )
            .unwrap(),
            seq: 0,
        }
    }

    fn next(&mut self) -> Change {
        self.seq += 1;
        let r = Reference::for_sequence(&self.tid, self.seq);
        let mut tx = NewTransaction::sale(r.clone(), Money::from_minor(150_050).unwrap());
        tx.card = Some(self.card.clone());
        Change::insert(1_795_000_000_000, tx).with(
            NewOutboxItem::new(
                OutboxKind::Transaction,
                json!({ "reference": r.as_str(), "amount": "1500.50", "currency": "NGN" }),
            )
            .for_reference(r),
        )
    }
}

#[derive(Debug, Clone, Copy)]
struct Run {
    rate: f64,
    mean_ms: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn summarize(mut lat: Vec<Duration>) -> Run {
    lat.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let total: Duration = lat.iter().sum();
    let n = lat.len() as f64;
    Run {
        rate: n / total.as_secs_f64(),
        mean_ms: ms(total) / n,
        p50_ms: ms(lat[lat.len() / 2]),
        p99_ms: ms(lat[lat.len() * 99 / 100]),
    }
}

/// The filesystem type of the mount holding `path` (from /proc/self/mounts).
fn filesystem_of(path: &Path) -> String {
    let Ok(path) = path.canonicalize() else {
        return "unknown".into();
    };
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return "unknown".into();
    };
    mounts
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (dev, mnt, fs) = (it.next()?, it.next()?, it.next()?);
            path.starts_with(mnt)
                .then(|| (mnt.len(), format!("{fs} on {dev} at {mnt}")))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, s)| s)
        .unwrap_or_else(|| "unknown".into())
}
