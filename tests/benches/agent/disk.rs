//! `BENCH_ONLY=disk`: what a payment costs the terminal's disk (issue 13).
//!
//! A real agent process (`agent-proc run`) with an `LD_PRELOAD` shim of our
//! own (`fsync_shim.c`, compiled here with the system C compiler) that
//! counts every `fsync`/`fdatasync` by what it syncs (the ledger's `-wal`,
//! the ledger file itself = a WAL checkpoint, a directory, anything else)
//! in a counter file on `/dev/shm`, and can add a delay to each one to
//! play a slow SD card. Bytes written are the process's `write_bytes` of
//! `/proc/<pid>/io` (what it sent towards the storage).
//!
//! Four series of N sales each: online partner sales, online keypad
//! sales, offline keypad sales (the link cut for the whole series, then the
//! queue drained: the forwards are part of the cost) and offline partner
//! sales (the command arrives, the link is cut before the tap, then comes
//! back and the forward drains). Per sale: fsyncs in all (series total / N,
//! heartbeats and the like included), fsyncs between the tap and the result
//! screen (the most of any sale), KiB written, checkpoints; and tap→result
//! p50/p99 measured over loopback (`POST /tap` to the `GET /screen?after=`
//! that shows the result). Run once with no delay and once with 5 ms per
//! sync. One uncounted sale comes first: a fresh data directory's one-off
//! writes (caches kept for offline use) are not a sale's.
//!
//! The series run back to back, so the terminal is never idle long enough
//! for the agent's idle checkpoint (`runtime::checkpoint`): what the rows
//! show as checkpoints are SQLite's own, and the per-sale share of the
//! idle ones is in docs/store.md.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use e2e_tests::backend::{Backend, SimOptions};
use e2e_tests::device::Device;
use e2e_tests::proxy::LinkState;
use e2e_tests::scenario::{Scene, ngn};
use e2e_tests::timeline::Timeline;

use super::{Row, bench_opts, ms, percentile, quick};

const WAIT: Duration = Duration::from_secs(30);
const SHIM_SOURCE: &str = include_str!("fsync_shim.c");
/// The slow card of the issue: 5 ms per sync.
const SLOW_SYNC_US: u64 = 5_000;

/// Counter slots of the shim (see `fsync_shim.c`).
#[derive(Debug, Clone, Copy, Default)]
struct Syncs {
    all: u64,
    wal: u64,
    db: u64,
    dir: u64,
    other: u64,
}

impl std::ops::Sub for Syncs {
    type Output = Syncs;
    fn sub(self, o: Syncs) -> Syncs {
        Syncs {
            all: self.all - o.all,
            wal: self.wal - o.wal,
            db: self.db - o.db,
            dir: self.dir - o.dir,
            other: self.other - o.other,
        }
    }
}

struct Shim {
    library: PathBuf,
    counters: PathBuf,
}

impl Shim {
    /// Compiles the shim into `dir` and creates its counter file on
    /// `/dev/shm` (memory: counting must not write to the disk measured).
    fn build(dir: &Path) -> Shim {
        std::fs::create_dir_all(dir).expect("shim dir");
        let src = dir.join("fsync_shim.c");
        std::fs::write(&src, SHIM_SOURCE).expect("shim source");
        let library = dir.join("libfsync_shim.so");
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
        let status = std::process::Command::new(&cc)
            .args(["-O2", "-shared", "-fPIC", "-o"])
            .arg(&library)
            .arg(&src)
            .arg("-ldl")
            .status()
            .unwrap_or_else(|e| panic!("benchmark: cannot run the C compiler {cc}: {e}"));
        assert!(
            status.success(),
            "benchmark: compiling the fsync shim failed"
        );
        let shm = Path::new("/dev/shm");
        assert!(
            shm.is_dir(),
            "benchmark: /dev/shm is needed for the counters"
        );
        let counters = shm.join(format!("pos-agent-fsync-{}", std::process::id()));
        std::fs::write(&counters, [0u8; 4096]).expect("counter file");
        Shim { library, counters }
    }

    fn reset(&self) {
        std::fs::write(&self.counters, [0u8; 4096]).expect("counter file");
    }

    fn read(&self) -> Syncs {
        let b = std::fs::read(&self.counters).expect("counter file");
        let slot = |i: usize| u64::from_ne_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        Syncs {
            all: slot(0),
            wal: slot(1),
            db: slot(2),
            dir: slot(3),
            other: slot(4),
        }
    }

    fn env(&self, delay_us: u64) -> Vec<(String, String)> {
        vec![
            ("LD_PRELOAD".into(), self.library.display().to_string()),
            (
                "FSYNC_SHIM_COUNTERS".into(),
                self.counters.display().to_string(),
            ),
            ("FSYNC_SHIM_DELAY_US".into(), delay_us.to_string()),
        ]
    }
}

impl Drop for Shim {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.counters);
    }
}

/// `write_bytes` of `/proc/<pid>/io`.
fn write_bytes(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).expect("/proc/<pid>/io");
    text.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("write_bytes")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    OnlinePartner,
    OnlineKeypad,
    OfflineKeypad,
    OfflinePartner,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::OnlinePartner => "online partner",
            Kind::OnlineKeypad => "online keypad",
            Kind::OfflineKeypad => "offline keypad",
            Kind::OfflinePartner => "offline partner",
        }
    }

    fn offline(self) -> bool {
        matches!(self, Kind::OfflineKeypad | Kind::OfflinePartner)
    }
}

/// One series' figures.
struct Series {
    kind: Kind,
    sales: u64,
    syncs: Syncs,
    bytes: u64,
    tap_syncs_max: u64,
    tap_syncs_sum: u64,
    latencies: Vec<Duration>,
}

async fn wait(dev: &Device, what: &str, pred: impl Fn(&e2e_tests::device::ScreenView) -> bool) {
    if let Err(e) = dev.wait_for(what, WAIT, pred).await {
        panic!("benchmark: {e}");
    }
}

/// Keys `minor` kobo and confirms it: the tap screen comes up.
async fn key_amount(dev: &Device, minor: u64) {
    dev.keys(&minor.to_string()).await.expect("digits");
    wait(dev, "the keyed amount", |s| s.screen == "amount_entry").await;
    dev.press("ok").await.expect("ok");
}

/// The tap, timed to the result screen, with the syncs in between.
async fn timed_tap(dev: &Device, shim: &Shim) -> (Duration, u64) {
    wait(dev, "the reader waiting", |s| {
        s.screen == "tap_card" && s.reader_waiting
    })
    .await;
    let before = shim.read();
    let t0 = Instant::now();
    dev.tap_now("visa_ok").await.expect("tap");
    let result = dev
        .wait_for("a result", WAIT, |s| {
            matches!(s.screen.as_str(), "approved" | "declined" | "error")
        })
        .await
        .expect("a result");
    let dt = t0.elapsed();
    let syncs = (shim.read() - before).all;
    assert_eq!(
        result.screen,
        "approved",
        "benchmark sale: {}",
        result.summary()
    );
    (dt, syncs)
}

async fn series(s: &mut Scene, shim: &Shim, pid: u32, kind: Kind, n: u64, base: u64) -> Series {
    let dev = s.terminals[0].device().expect("device").clone();
    let tid = s.terminals[0].id.clone();
    let syncs0 = shim.read();
    let bytes0 = write_bytes(pid);
    let mut out = Series {
        kind,
        sales: n,
        syncs: Syncs::default(),
        bytes: 0,
        tap_syncs_max: 0,
        tap_syncs_sum: 0,
        latencies: Vec::new(),
    };
    if kind == Kind::OfflineKeypad {
        s.terminals[0].proxy().set(LinkState::Refuse);
        wait(&dev, "offline", |v| v.offline).await;
    }
    for i in 0..n {
        let minor = base + 37 * i;
        match kind {
            Kind::OnlineKeypad | Kind::OfflineKeypad => key_amount(&dev, minor).await,
            Kind::OnlinePartner | Kind::OfflinePartner => {
                let key = format!(
                    "disk-{}-{i}-{}",
                    kind.label(),
                    uuid::Uuid::new_v4().simple()
                );
                s.backend
                    .create_payment_when_free(&tid, ngn(minor), &key, None, &key, WAIT)
                    .await
                    .expect("payment created");
                if kind == Kind::OfflinePartner {
                    wait(&dev, "tap_card", |v| v.screen == "tap_card").await;
                    s.terminals[0].proxy().set(LinkState::Refuse);
                    wait(&dev, "offline", |v| v.offline).await;
                }
            }
        }
        let (dt, syncs) = timed_tap(&dev, shim).await;
        out.latencies.push(dt);
        out.tap_syncs_max = out.tap_syncs_max.max(syncs);
        out.tap_syncs_sum += syncs;
        if kind == Kind::OfflinePartner {
            s.terminals[0].proxy().set(LinkState::Up);
        }
        let settled = |v: &e2e_tests::device::ScreenView| {
            v.screen == "idle" && (kind == Kind::OfflineKeypad || (!v.offline && v.queued == 0))
        };
        wait(&dev, "idle (online and drained)", settled).await;
    }
    if kind == Kind::OfflineKeypad {
        s.terminals[0].proxy().set(LinkState::Up);
        wait(&dev, "online and drained", |v| {
            v.screen == "idle" && !v.offline && v.queued == 0
        })
        .await;
    }
    out.syncs = shim.read() - syncs0;
    out.bytes = write_bytes(pid) - bytes0;
    out.latencies.sort();
    out
}

/// One agent process under the shim with `delay_us` per sync: the four
/// series.
async fn run(root: &Path, shim: &Shim, delay_us: u64, n: u64) -> Vec<Series> {
    shim.reset();
    let backend = Backend::start(SimOptions::default()).await.expect("sim");
    let timeline = Timeline::new(None, false).expect("timeline");
    let mut s = Scene::provisioned(backend, root, 1, bench_opts(), timeline)
        .await
        .expect("scene");
    let (logs, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // Keep the process's log lines flowing (and visible on failure).
    tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            if std::env::var_os("BENCH_VERBOSE").is_some() {
                eprintln!("agent: {line}");
            }
        }
    });
    s.terminals[0]
        .start_process_with_env(
            Path::new(env!("CARGO_BIN_EXE_agent-proc")),
            logs,
            &shim.env(delay_us),
        )
        .await
        .expect("agent process");
    s.wait_ready(0).await.expect("ready");
    let pid = s.terminals[0].pid().expect("pid");
    // One sale first, not counted: what a first boot writes once (the
    // session's configuration, operators and catalog kept for offline
    // use) lands before it ends, not in the first series.
    series(&mut s, shim, pid, Kind::OnlinePartner, 1, 5_000).await;
    let mut out = Vec::new();
    for (i, kind) in [
        Kind::OnlinePartner,
        Kind::OnlineKeypad,
        Kind::OfflineKeypad,
        Kind::OfflinePartner,
    ]
    .into_iter()
    .enumerate()
    {
        out.push(series(&mut s, shim, pid, kind, n, 10_000 + 100_000 * i as u64).await);
    }
    super::finish(s).await;
    out
}

fn per_sale(x: u64, n: u64) -> f64 {
    x as f64 / n as f64
}

pub async fn disk(rows: &mut Vec<Row>, root: &Path) {
    let n: u64 = if quick() { 5 } else { 50 };
    let shim = Shim::build(&root.join("shim"));
    let fast = run(&root.join("fast"), &shim, 0, n).await;
    let slow = run(&root.join("slow"), &shim, SLOW_SYNC_US, n).await;
    for (f, sl) in fast.iter().zip(&slow) {
        let label = f.kind.label();
        let offline = f.kind.offline();
        let all = per_sale(f.syncs.all, f.sales);
        let (all_goal, tap_goal) = if offline { (3.0, 1) } else { (3.0, 2) };
        rows.push(Row {
            metric: format!("{label}: fsyncs per sale ({n} sales)"),
            value: format!(
                "{all:.2} (wal {:.2}, db {:.2}, dir {:.2}, other {:.2})",
                per_sale(f.syncs.wal, f.sales),
                per_sale(f.syncs.db, f.sales),
                per_sale(f.syncs.dir, f.sales),
                per_sale(f.syncs.other, f.sales),
            ),
            goal: format!("<= {all_goal}"),
            ok: all <= all_goal,
        });
        rows.push(Row {
            metric: format!("{label}: fsyncs tap->result, max (mean)"),
            value: format!(
                "{} ({:.2})",
                f.tap_syncs_max,
                per_sale(f.tap_syncs_sum, f.sales)
            ),
            goal: format!("<= {tap_goal}"),
            ok: f.tap_syncs_max <= tap_goal,
        });
        let kib = f.bytes as f64 / 1024.0 / f.sales as f64;
        rows.push(Row {
            metric: format!("{label}: KiB written per sale"),
            value: format!("{kib:.1} KiB"),
            goal: "<= 32 KiB".into(),
            ok: kib <= 32.0,
        });
        rows.push(Row {
            metric: format!("{label}: WAL checkpoints (db fsyncs)"),
            value: format!("{} in {} sales", f.syncs.db, f.sales),
            goal: String::new(),
            ok: true,
        });
        rows.push(Row {
            metric: format!("{label}: tap->result p50 / p99, 0 ms sync"),
            value: format!(
                "{} / {}",
                ms(percentile(&f.latencies, 0.50)),
                ms(percentile(&f.latencies, 0.99))
            ),
            goal: String::new(),
            ok: true,
        });
        let goal_ms = if offline { 12.0 } else { 20.0 };
        let p99 = percentile(&sl.latencies, 0.99);
        rows.push(Row {
            metric: format!("{label}: tap->result p50 / p99, 5 ms sync"),
            value: format!("{} / {}", ms(percentile(&sl.latencies, 0.50)), ms(p99)),
            goal: format!("p99 <= {goal_ms} ms"),
            ok: p99.as_secs_f64() * 1000.0 <= goal_ms,
        });
        rows.push(Row {
            metric: format!("{label}: fsyncs per sale, 5 ms sync run"),
            value: format!(
                "{:.2}, tap->result max {}",
                per_sale(sl.syncs.all, sl.sales),
                sl.tap_syncs_max
            ),
            goal: String::new(),
            ok: true,
        });
    }
}
