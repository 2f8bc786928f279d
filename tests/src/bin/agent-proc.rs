//! `agent-proc run --config FILE`: the agent as a separate process for the
//! end-to-end tests and benchmarks that need one (SIGKILL, RSS, CPU). It is
//! what `pos-agent run` does: load the config like the CLI, start the
//! runtime, stop gracefully on SIGTERM/SIGINT. Once up it prints
//! `agent-proc ready control=ADDR` on stdout; logs go to stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use e2e_tests::terminal::READY_PREFIX;
use pos_agent::config::{self, Sources};
use pos_agent::runtime::RunningAgent;
use tokio::signal::unix::{SignalKind, signal};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agent-proc: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn config_path() -> anyhow::Result<PathBuf> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [run, flag, path] if run == "run" && flag == "--config" => Ok(PathBuf::from(path)),
        _ => bail!("usage: agent-proc run --config FILE"),
    }
}

fn run() -> anyhow::Result<()> {
    let path = config_path()?;
    let loaded = config::load(&Sources::from_process(&path)).context("configuration")?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&loaded.config.log_filter))
        .context("log filter")?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("async runtime")?;
    rt.block_on(async move {
        let agent = RunningAgent::start(loaded.config)
            .await
            .context("starting the agent")?;
        let addr = agent
            .control_addr()
            .context("the config uses no virtual device")?;
        println!("{READY_PREFIX}{addr}");
        let stop = agent.stop_token();
        let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            stop.cancel();
        });
        agent.wait().await.context("agent stopped")
    })
}
