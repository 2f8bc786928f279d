//! The fleet simulation (SPEC 8.5): kler-sim and N virtual terminals in one
//! process, a bar's sales, a venue outage in the middle, then recovery; a
//! table of what happened, and a non-zero exit when a payment was lost or
//! duplicated. See docs/fleet.md.
//!
//! `cargo run --release -p e2e-tests --bin fleet -- --terminals 300 --minutes 3`

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use e2e_tests::fleet::{self, FleetOptions};

#[derive(Debug, Parser)]
#[command(name = "fleet")]
struct Args {
    /// How many terminals (sessions of at most 50).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..=2000))]
    terminals: u32,
    /// How long the terminals sell, outage included.
    #[arg(long, default_value_t = 3.0)]
    minutes: f64,
    /// How long the venue's link is down (default: 60 s, or a third of a
    /// run shorter than 3 minutes).
    #[arg(long)]
    outage_secs: Option<u64>,
    /// The sim's load-shedding limit (default: one request in flight per
    /// 40 terminals, at least 2); 0 turns shedding off.
    #[arg(long)]
    max_inflight: Option<usize>,
    /// Restart the sim (same state file and port) this many seconds into
    /// the run.
    #[arg(long)]
    restart_sim_at_secs: Option<u64>,
    /// Where the terminals' data directories and the sim's state file go
    /// (default: a temporary directory, removed at the end).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal, and never with NO_COLOR set: a
        // redirected log holds no escape codes.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .init();
    if !(args.minutes > 0.0 && args.minutes <= 600.0) {
        eprintln!("fleet: --minutes must be more than 0 and at most 600");
        return ExitCode::from(2);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fleet: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let tmp;
    let root = match &args.dir {
        Some(d) => d.clone(),
        None => match tempfile::tempdir() {
            Ok(d) => {
                tmp = d;
                tmp.path().to_owned()
            }
            Err(e) => {
                eprintln!("fleet: cannot create a temporary directory: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let duration = Duration::from_secs_f64(args.minutes * 60.0);
    let mut opts = FleetOptions::new(args.terminals as usize, duration, root);
    if let Some(s) = args.outage_secs {
        opts.outage = Duration::from_secs(s).min(duration);
    }
    match args.max_inflight {
        Some(0) => opts.max_inflight = None,
        Some(n) => opts.max_inflight = Some(n),
        None => {}
    }
    opts.restart_sim_at = args.restart_sim_at_secs.map(Duration::from_secs);
    eprintln!(
        "fleet: {} terminals for {:.0} s, outage {} s, max-inflight {:?}",
        opts.terminals,
        duration.as_secs_f64(),
        opts.outage.as_secs(),
        opts.max_inflight
    );
    match rt.block_on(fleet::run(opts)) {
        Ok(report) => {
            print!("{}", report.render());
            if report.ok() {
                ExitCode::SUCCESS
            } else {
                eprintln!("fleet: FAILED (lost, duplicate or undrained payments)");
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("fleet: {e}");
            ExitCode::FAILURE
        }
    }
}
