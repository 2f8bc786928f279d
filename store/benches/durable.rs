//! Durable payments per second against the raw `write + fdatasync` rate of
//! the same disk. Run with `cargo bench -p store --bench durable`.
//! Set `STORE_BENCH_DIR` to measure another directory (default: the
//! target's tmp dir, which must not be tmpfs for the figures to mean anything).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark binary

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proto::{Money, Reference, TerminalId};
use serde_json::json;
use store::{Card, Change, NewOutboxItem, NewTransaction, OutboxKind, Store};

const N: usize = 1_000;
const ROUNDS: usize = 3;

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

    let mut raw = Vec::new();
    let mut overwrite = Vec::new();
    let mut durable = Vec::new();
    let store = Store::open(dir.path().join("bench.db")).unwrap();
    let tid = TerminalId::new("pos_bench_001").unwrap();
    let card = Card::new(
        "9f2c4e1a0b7d3e6f8a1c2b4d6e8f0a1b",
        "1111",
        "visa",
        "contactless",
    )
    .unwrap();
    let mut seq = 0u64;
    // Warm up both paths (file creation, schema pages, statement cache).
    raw_rate(dir.path(), 50);
    overwrite_rate(dir.path(), 50);
    durable_rate(&store, &tid, &card, &mut seq, 50);
    for _ in 0..ROUNDS {
        raw.push(raw_rate(dir.path(), N));
        overwrite.push(overwrite_rate(dir.path(), N));
        durable.push(durable_rate(&store, &tid, &card, &mut seq, N));
    }

    println!();
    println!(
        "{:<44} {:>10} {:>10} {:>10}",
        "operation (median of 3 runs of 1000)", "per sec", "p50 ms", "p99 ms"
    );
    let (raw_rate, raw_p50, raw_p99) = median(&raw);
    let (db_rate, db_p50, db_p99) = median(&durable);
    let (ow_rate, ow_p50, ow_p99) = median(&overwrite);
    println!(
        "{:<44} {:>10.0} {:>10.3} {:>10.3}",
        "write + fdatasync, 128 B record (std::fs)", raw_rate, raw_p50, raw_p99
    );
    println!(
        "{:<44} {:>10.0} {:>10.3} {:>10.3}",
        "same, overwriting a preallocated block", ow_rate, ow_p50, ow_p99
    );
    println!(
        "{:<44} {:>10.0} {:>10.3} {:>10.3}",
        "durable payment (tx + outbox, WAL, FULL)", db_rate, db_p50, db_p99
    );
    println!();
    println!(
        "ratio durable / raw append    = {:.2} (goal >= 0.80)",
        db_rate / raw_rate
    );
    println!("ratio durable / raw overwrite = {:.2}", db_rate / ow_rate);
}

/// (rate per second, p50 ms, p99 ms)
type Run = (f64, f64, f64);

fn summarize(mut lat: Vec<Duration>, total: Duration) -> Run {
    lat.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let rate = lat.len() as f64 / total.as_secs_f64();
    (rate, ms(lat[lat.len() / 2]), ms(lat[lat.len() * 99 / 100]))
}

fn median(runs: &[Run]) -> Run {
    let mut v = runs.to_vec();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v[v.len() / 2]
}

fn raw_rate(dir: &Path, n: usize) -> Run {
    let path = dir.join("raw.log");
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    let record = [0x42u8; 128];
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        f.write_all(&record).unwrap();
        f.sync_data().unwrap();
        lat.push(t.elapsed());
    }
    let total = start.elapsed();
    drop(f);
    std::fs::remove_file(&path).unwrap();
    summarize(lat, total)
}

/// Rewrites the same 128 bytes of an already allocated file: no size change,
/// so `fdatasync` has no metadata to flush (the cheapest durable write).
fn overwrite_rate(dir: &Path, n: usize) -> Run {
    use std::os::unix::fs::FileExt;
    let path = dir.join("overwrite.dat");
    let f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    f.write_all_at(&[0u8; 4096], 0).unwrap();
    f.sync_all().unwrap();
    let record = [0x42u8; 128];
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        f.write_all_at(&record, 0).unwrap();
        f.sync_data().unwrap();
        lat.push(t.elapsed());
    }
    let total = start.elapsed();
    drop(f);
    std::fs::remove_file(&path).unwrap();
    summarize(lat, total)
}

fn durable_rate(store: &Store, tid: &TerminalId, card: &Card, seq: &mut u64, n: usize) -> Run {
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        *seq += 1;
        let r = Reference::for_sequence(tid, *seq);
        let mut tx = NewTransaction::sale(r.clone(), Money::from_minor(150_050).unwrap());
        tx.card = Some(card.clone());
        let change = Change::insert(1_795_000_000_000, tx).with(
            NewOutboxItem::new(
                OutboxKind::Transaction,
                json!({ "reference": r.as_str(), "amount": "1500.50", "currency": "NGN" }),
            )
            .for_reference(r),
        );
        let t = Instant::now();
        store.record(&change).unwrap();
        lat.push(t.elapsed());
    }
    summarize(lat, start.elapsed())
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
