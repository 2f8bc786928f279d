//! `kler-sim serve …`: the backend simulator as a process.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "kler-sim",
    version,
    about = "Local simulator of the Kler and terminal backends"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the Kler session backend, partner API and terminal API.
    Serve(Serve),
    /// Print the signature headers (SPEC section 3) for one request, one
    /// `Name: value` per line (for `curl -H @file`).
    Sign(Sign),
}

#[derive(clap::Args)]
struct Sign {
    /// JSON file with the provision answer's data: {api_key, secret, merchant_id, tenant_id}.
    #[arg(long)]
    creds: PathBuf,
    #[arg(long, default_value = "GET")]
    method: String,
    /// Path as sent, with `?query` when there is one.
    #[arg(long)]
    path: String,
    /// The exact body that will be sent (omit for none).
    #[arg(long, default_value = "")]
    body: String,
}

fn sign(s: Sign) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&s.creds)
        .with_context(|| format!("reading {}", s.creds.display()))?;
    let p: proto::wire::ProvisionResponse = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a provision answer", s.creds.display()))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("clock before 1970")?
        .as_secs() as i64;
    let h = proto::signing::sign_request(
        &p.credentials(),
        &s.method.to_ascii_uppercase(),
        &s.path,
        s.body.as_bytes(),
        now,
        uuid::Uuid::new_v4(),
    )
    .context("the body is not a JSON object")?;
    for (k, v) in h.pairs() {
        println!("{k}: {v}");
    }
    Ok(())
}

#[derive(clap::Args)]
struct Serve {
    /// Address to listen on; port 0 picks a free port (printed when ready).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Organisation key (x-api-key of the Kler and partner APIs).
    #[arg(long, env = "KLER_SIM_ORG_KEY")]
    org_key: String,
    /// Secret that signs webhooks (printed at start when not given).
    #[arg(long, env = "KLER_SIM_WEBHOOK_SECRET")]
    webhook_secret: Option<String>,
    /// Key id webhooks carry in X-API-KEY, "whk_" + hex (generated when
    /// not given; always printed at start).
    #[arg(long, env = "KLER_SIM_WEBHOOK_KEY_ID")]
    webhook_key_id: Option<String>,
    /// SQLite file that keeps all state across restarts.
    #[arg(long = "state")]
    state: Option<PathBuf>,
    /// First webhook retry delay in ms (doubles per retry, 5 attempts).
    #[arg(long, default_value_t = 1000)]
    webhook_retry_base_ms: u64,
    /// How long the auth_timeout scenario waits before answering, in ms.
    #[arg(long, default_value_t = 30_000)]
    auth_timeout_ms: u64,
    /// Interval of `: ping` comments on command streams, in ms.
    #[arg(long, default_value_t = 15_000)]
    ping_interval_ms: u64,
    /// A command stream ends after this many seconds.
    #[arg(long, default_value_t = 300)]
    stream_max_secs: u64,
    /// A terminal silent for this long is offline, in ms.
    #[arg(long, default_value_t = 30_000)]
    offline_after_ms: u64,
    /// How long a pairing code stays valid, in seconds (SPEC 8.1: 600).
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pairing_code_ttl_secs: u64,
    /// How long an abort waits for the terminal, in ms.
    #[arg(long, default_value_t = 10_000)]
    abort_wait_ms: u64,
    /// Tenant id given to terminals.
    #[arg(long, default_value = "test-tenant")]
    tenant_id: String,
    /// Offline floor limit sent in heartbeat answers (e.g. "50000.00").
    #[arg(long)]
    offline_floor_limit: Option<proto::Money>,
    /// Cumulative offline amount sent in heartbeat answers.
    #[arg(long)]
    offline_max_total: Option<proto::Money>,
    /// Offline payment count sent in heartbeat answers.
    #[arg(long)]
    offline_max_count: Option<u32>,
    /// Maximum age of queued offline payments (hours) sent in heartbeat answers.
    #[arg(long)]
    offline_max_age_hours: Option<u32>,
    /// Most requests answered at once (command streams not counted);
    /// beyond it, 503 "overloaded" with Retry-After. No limit when not given.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    max_inflight: Option<u32>,
    /// The Retry-After of a shed request, in seconds.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=3600))]
    shed_retry_after_secs: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal, and never with NO_COLOR set: a
        // redirected log holds no escape codes.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .init();
    let s = match Cli::parse().command {
        Cmd::Serve(s) => s,
        Cmd::Sign(s) => return sign(s),
    };
    let mut cfg = kler_sim::Config::new(s.listen, s.org_key);
    let generated = s.webhook_secret.is_none();
    cfg.webhook_secret = s.webhook_secret;
    cfg.webhook_key_id = s.webhook_key_id;
    cfg.state_file = s.state;
    cfg.webhook_retry_base = Duration::from_millis(s.webhook_retry_base_ms);
    cfg.auth_timeout = Duration::from_millis(s.auth_timeout_ms);
    cfg.ping_interval = Duration::from_millis(s.ping_interval_ms.max(1));
    cfg.stream_max = Duration::from_secs(s.stream_max_secs.max(1));
    cfg.offline_after = Duration::from_millis(s.offline_after_ms);
    cfg.abort_wait = Duration::from_millis(s.abort_wait_ms);
    cfg.pairing_code_ttl = Duration::from_secs(s.pairing_code_ttl_secs);
    cfg.tenant_id = s.tenant_id;
    cfg.max_inflight = s.max_inflight.map(|n| n as usize);
    cfg.shed_retry_after = Duration::from_secs(s.shed_retry_after_secs);
    let limits = proto::wire::OfflineLimits {
        floor_limit: s.offline_floor_limit,
        max_total: s.offline_max_total.map(|m| proto::Total(m.minor())),
        max_count: s.offline_max_count,
        max_age_hours: s.offline_max_age_hours,
    };
    if limits != proto::wire::OfflineLimits::default() {
        cfg.offline_limits = Some(limits);
    }
    let sim = kler_sim::start(cfg).await.context("starting kler-sim")?;
    // Not a secret: the receiver needs it to pick the webhook secret.
    eprintln!("webhook key id {}", sim.webhook_key_id());
    if generated {
        // Printed on purpose (to stderr, so stdout stays the one ready
        // line): a sandbox secret the integrator needs to verify webhooks.
        // Pass --webhook-secret to choose it.
        eprintln!("webhook secret {}", sim.webhook_secret().expose());
    }
    println!("listening on {}", sim.url());
    use std::io::Write;
    let _ = std::io::stdout().flush();
    wait_for_stop_signal().await?;
    tracing::info!("stopping");
    sim.shutdown().await;
    Ok(())
}

/// Ctrl-C, or SIGTERM (service managers, containers).
async fn wait_for_stop_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C"),
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")
    }
}
