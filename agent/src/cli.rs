//! The command line: `run`, `provision`, `queue`, `report`, `reconcile`,
//! `doctor`. Exit codes: 0 ok, 1 runtime failure, 2 usage (clap),
//! 78 bad configuration.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::{Args, Parser, Subcommand};
use pos_agent::client::{OrgClient, SignedClient};
use pos_agent::config::{self, Config, ConfigError, EX_CONFIG, ReaderSpec, Sources};
use pos_agent::provision::{self, ENV_CREDENTIALS_DIRECTORY};
use proto::Currency;
use proto::signing::Secret;

/// The payment terminal edge agent.
#[derive(Debug, Parser)]
#[command(name = "pos-agent", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the terminal daemon.
    Run {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Obtain this terminal's credentials and create its card key.
    Provision {
        #[command(flatten)]
        config: ConfigArgs,
        /// File holding the organisation key (first line).
        #[arg(long, value_name = "FILE", group = "org_key_source", required = true)]
        org_key_file: Option<PathBuf>,
        /// The organisation key itself (visible to other local users: for tests).
        #[arg(long, value_name = "KEY", group = "org_key_source")]
        org_key: Option<String>,
        /// The session (event) the terminal belongs to.
        #[arg(long, value_name = "ID")]
        session: String,
        /// The terminal id, e.g. pos_3f1e2d_001.
        #[arg(long, value_name = "ID")]
        terminal: String,
        /// Replace existing credentials (the backend invalidates the old ones).
        #[arg(long)]
        force: bool,
    },
    /// Show the outbox: what the backend has not yet acknowledged.
    Queue {
        #[command(flatten)]
        config: ConfigArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show local totals by status, kind and operator.
    Report {
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long)]
        json: bool,
    },
    /// Compare the local ledger with the backend's statement for this terminal
    /// and, given the organisation key, with the session's reconciliation.
    Reconcile {
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long)]
        json: bool,
        /// File holding the organisation key, to also check
        /// `GET /v1/reconciliation/:session_id`.
        #[arg(long, value_name = "FILE", conflicts_with = "org_key")]
        org_key_file: Option<PathBuf>,
        /// The organisation key itself (for tests).
        #[arg(long, value_name = "KEY")]
        org_key: Option<String>,
    },
    /// Check config, storage, clock, backend and devices; one line per check.
    Doctor {
        #[command(flatten)]
        config: ConfigArgs,
    },
}

/// Where the configuration comes from.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// The config file; `config.d/*.toml` beside it are applied after it.
    #[arg(long, value_name = "FILE", env = config::ENV_CONFIG_FILE, default_value = config::DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    /// Override the data directory.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Override any config key, e.g. --set payment.tap_timeout_ms=30000 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

impl ConfigArgs {
    fn sources(&self) -> Result<Sources, ConfigError> {
        let mut sources = Sources::from_process(&self.config);
        if let Some(dir) = &self.data_dir {
            sources = sources.flag("data_dir", dir.to_string_lossy(), "--data-dir");
        }
        for item in &self.set {
            let Some((key, value)) = item.split_once('=') else {
                return Err(ConfigError::Invalid {
                    origin: config::Origin::Flag("--set".into()),
                    key: item.clone(),
                    problem: "expected KEY=VALUE".into(),
                });
            };
            sources = sources.flag(key.trim(), value, "--set");
        }
        Ok(sources)
    }
}

/// A failure, with the exit code it maps to.
pub enum Failure {
    Config(ConfigError),
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Runtime(e)
    }
}

impl Failure {
    pub fn exit(self) -> ExitCode {
        match self {
            // One plain line on stderr (the journal under systemd); not also
            // through tracing, which writes to stderr too.
            Failure::Config(e) => {
                eprintln!("pos-agent: configuration error: {e}");
                ExitCode::from(EX_CONFIG as u8)
            }
            Failure::Runtime(e) => {
                eprintln!("pos-agent: {e:#}");
                ExitCode::FAILURE
            }
        }
    }
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(config::DEFAULT_LOG_FILTER));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Loads the configuration, starts logging with its filter, and logs what
/// was ignored.
fn load_config(args: &ConfigArgs, extra: &[(&str, &str, &str)]) -> Result<Config, Failure> {
    let mut sources = args.sources().map_err(Failure::Config)?;
    for (key, value, flag) in extra {
        sources = sources.flag(key, *value, flag);
    }
    let loaded = config::load(&sources).map_err(|e| {
        init_logging(config::DEFAULT_LOG_FILTER);
        Failure::Config(e)
    })?;
    init_logging(&loaded.config.log_filter);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    Ok(loaded.config)
}

fn credentials_directory() -> Option<PathBuf> {
    std::env::var_os(ENV_CREDENTIALS_DIRECTORY).map(PathBuf::from)
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .map_err(Failure::Runtime)
}

pub fn dispatch(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Run { config } => run(&config),
        Command::Provision {
            config,
            org_key_file,
            org_key,
            session,
            terminal,
            force,
        } => {
            let config = load_config(
                &config,
                &[
                    ("terminal.id", &terminal, "--terminal"),
                    ("terminal.session_id", &session, "--session"),
                ],
            )?;
            let key = match (org_key_file, org_key) {
                (Some(path), _) => provision::read_org_key(&path).map_err(|e| anyhow!(e))?,
                (None, Some(k)) if !k.trim().is_empty() => Secret::new(k.trim()),
                _ => return Err(anyhow!("the organisation key is empty").into()),
            };
            let done = runtime()?
                .block_on(provision::provision(&config, key, force))
                .map_err(|e| anyhow!(e))?;
            println!(
                "provisioned terminal {} for session {} (merchant {}, tenant {})",
                done.terminal_id, done.session_id, done.merchant_id, done.tenant_id
            );
            println!("credentials: {}", done.credentials_file.display());
            println!("card key:    {}", done.card_key_file.display());
            Ok(())
        }
        Command::Queue { config, json } => queue(&load_config(&config, &[])?, json),
        Command::Report { config, json } => report(&load_config(&config, &[])?, json),
        Command::Reconcile {
            config,
            json,
            org_key_file,
            org_key,
        } => {
            let config = load_config(&config, &[])?;
            let key = match (org_key_file, org_key) {
                (Some(path), _) => Some(provision::read_org_key(&path).map_err(|e| anyhow!(e))?),
                (None, Some(k)) if !k.trim().is_empty() => Some(Secret::new(k.trim())),
                (None, Some(_)) => return Err(anyhow!("the organisation key is empty").into()),
                (None, None) => None,
            };
            reconcile(&config, json, key)
        }
        Command::Doctor { config } => doctor(&config),
    }
}

fn run(args: &ConfigArgs) -> Result<(), Failure> {
    let config = load_config(args, &[])?;
    let identity = provision::load_identity(&config, credentials_directory().as_deref())
        .map_err(|e| anyhow!(e))?;
    tracing::info!(
        terminal = %identity.terminal_id,
        session = %identity.session_id,
        data_dir = %config.data_dir.display(),
        "configuration and credentials loaded"
    );
    runtime()?
        .block_on(pos_agent::runtime::run_until_signal(config, identity))
        .map_err(|e| Failure::Runtime(anyhow!(e)))
}

/// Opens the ledger for reading; `None` when the agent never created one.
fn open_ledger(config: &Config) -> Result<Option<store::Store>, Failure> {
    let path = config.ledger_path();
    if !path.exists() {
        eprintln!(
            "pos-agent: no ledger at {} yet (the agent has not recorded anything)",
            path.display()
        );
        return Ok(None);
    }
    store::Store::open_read_only(&path)
        .with_context(|| format!("cannot open the ledger {}", path.display()))
        .map(Some)
        .map_err(Failure::Runtime)
}

fn rfc3339_millis(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

fn queue(config: &Config, json: bool) -> Result<(), Failure> {
    let items = match open_ledger(config)? {
        Some(store) => store.list_outbox().context("cannot read the outbox")?,
        None => Vec::new(),
    };
    if json {
        let rows: Vec<serde_json::Value> = items
            .iter()
            .map(|i| {
                serde_json::json!({
                    "id": i.id.0,
                    "kind": i.kind.as_str(),
                    "reference": i.reference.as_ref().map(|r| r.as_str()),
                    "payment_id": i.payment_id.as_ref().map(|p| p.as_str()),
                    "state": item_state(i),
                    "attempts": i.attempts,
                    "next_attempt_at": rfc3339_millis(i.next_attempt_at),
                    "created_at": rfc3339_millis(i.created_at),
                    "last_error": i.last_error,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "items": rows }))
                .context("cannot encode JSON")?
        );
        return Ok(());
    }
    if items.is_empty() {
        println!("outbox empty: the backend has acknowledged everything");
        return Ok(());
    }
    println!(
        "{:>6}  {:<13}  {:<28}  {:<9}  {:>8}  {:<20}  LAST ERROR",
        "ID", "KIND", "REFERENCE", "STATE", "ATTEMPTS", "NEXT ATTEMPT"
    );
    for i in &items {
        println!(
            "{:>6}  {:<13}  {:<28}  {:<9}  {:>8}  {:<20}  {}",
            i.id.0,
            i.kind.as_str(),
            i.reference.as_ref().map(|r| r.as_str()).unwrap_or("-"),
            item_state(i),
            i.attempts,
            rfc3339_millis(i.next_attempt_at),
            i.last_error.as_deref().unwrap_or("")
        );
    }
    let parked = items.iter().filter(|i| i.parked).count();
    println!("{} queued, {} parked", items.len(), parked);
    Ok(())
}

fn item_state(i: &store::OutboxItem) -> &'static str {
    if i.parked {
        "parked"
    } else if i.in_flight {
        "in_flight"
    } else {
        "waiting"
    }
}

fn report(config: &Config, json: bool) -> Result<(), Failure> {
    let totals = match open_ledger(config)? {
        Some(store) => store.totals().context("cannot read the ledger totals")?,
        None => store::Totals::default(),
    };
    let ct =
        |c: &store::CountTotal| serde_json::json!({"count": c.count, "total": c.total.to_wire()});
    if json {
        let by = |rows: Vec<(String, serde_json::Value)>| {
            serde_json::Value::Object(rows.into_iter().collect())
        };
        let v = serde_json::json!({
            "terminal_id": config.terminal.id.as_str(),
            "session_id": config.terminal.session_id.as_str(),
            "currency": Currency::Ngn.code(),
            "by_status": by(totals.by_state.iter().map(|(s, c)| (s.as_str().to_owned(), ct(c))).collect()),
            "by_kind": by(totals.by_kind.iter().map(|(k, c)| (k.as_str().to_owned(), ct(c))).collect()),
            "by_operator": by(totals.by_operator.iter().map(|(o, c)| (o.clone().unwrap_or_else(|| "-".into()), ct(c))).collect()),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&v).context("cannot encode JSON")?
        );
        return Ok(());
    }
    println!(
        "terminal {}  session {}",
        config.terminal.id, config.terminal.session_id
    );
    let section = |title: &str, rows: Vec<(String, &store::CountTotal)>| {
        println!("\n{title}");
        if rows.is_empty() {
            println!("  (none)");
        }
        for (name, c) in rows {
            println!(
                "  {:<18} {:>6}  {:>24}",
                name,
                c.count,
                c.total.display(Currency::Ngn)
            );
        }
    };
    section(
        "by status",
        totals
            .by_state
            .iter()
            .map(|(s, c)| (s.as_str().to_owned(), c))
            .collect(),
    );
    section(
        "by kind",
        totals
            .by_kind
            .iter()
            .map(|(k, c)| (k.as_str().to_owned(), c))
            .collect(),
    );
    section(
        "by operator",
        totals
            .by_operator
            .iter()
            .map(|(o, c)| (o.clone().unwrap_or_else(|| "(none)".into()), c))
            .collect(),
    );
    Ok(())
}

fn reconcile(config: &Config, json: bool, org_key: Option<Secret>) -> Result<(), Failure> {
    let identity = provision::load_identity(config, credentials_directory().as_deref())
        .map_err(|e| anyhow!(e))?;
    let local = match open_ledger(config)? {
        Some(store) => {
            let mut all = Vec::new();
            let mut offset = 0;
            loop {
                let page = store
                    .list_transactions(store::Page { offset, limit: 500 })
                    .context("cannot read the ledger")?;
                let n = page.len();
                all.extend(page);
                if n < 500 {
                    break;
                }
                offset += 500;
            }
            all
        }
        None => Vec::new(),
    };
    let client = SignedClient::new(
        &config.backend,
        identity.terminal_id.clone(),
        identity.credentials.clone(),
    )
    .map_err(|e| anyhow!(e))?;
    let remote = runtime()?.block_on(async {
        let mut all = Vec::new();
        let mut page = 0u32;
        loop {
            let p = client
                .statement(&proto::wire::StatementQuery {
                    page: Some(page),
                    size: Some(100),
                    status: None,
                })
                .await?;
            let done = p.content.is_empty() || page + 1 >= p.total_pages;
            all.extend(p.content);
            if done || page >= 10_000 {
                break;
            }
            page += 1;
        }
        Ok::<_, pos_agent::client::ClientError>(all)
    });
    let remote = remote.map_err(|e| anyhow!(e))?;
    let mut diff = Reconciliation::compare(&local, &remote);
    if let Some(key) = org_key {
        let org = OrgClient::new(&config.backend, key).map_err(|e| anyhow!(e))?;
        let session = runtime()?
            .block_on(org.reconciliation(&config.terminal.session_id))
            .map_err(|e| anyhow!(e))?;
        diff.check_session(&session, &config.terminal.id);
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&diff.to_json()).context("cannot encode JSON")?
        );
    } else {
        print!("{}", diff.to_text());
    }
    if diff.is_clean() {
        Ok(())
    } else {
        Err(anyhow!("the local ledger and the backend disagree").into())
    }
}

/// One doctor line.
fn check(ok: bool, name: &str, detail: impl AsRef<str>) -> bool {
    println!(
        "{} {:<12} {}",
        if ok { "ok  " } else { "FAIL" },
        name,
        detail.as_ref()
    );
    ok
}

fn doctor(args: &ConfigArgs) -> Result<(), Failure> {
    init_logging("warn");
    let sources = match args.sources() {
        Ok(s) => s,
        Err(e) => {
            check(false, "config", e.to_string());
            return Err(Failure::Config(e));
        }
    };
    let config = match config::load(&sources) {
        Ok(l) => {
            let detail = if l.warnings.is_empty() {
                format!("{} valid", args.config.display())
            } else {
                format!(
                    "{} valid; {}",
                    args.config.display(),
                    l.warnings
                        .iter()
                        .map(|w| w.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            };
            check(true, "config", detail);
            l.config
        }
        Err(e) => {
            check(false, "config", e.to_string());
            return Err(Failure::Config(e));
        }
    };
    let mut all_ok = true;
    all_ok &= check_storage(&config);
    let identity = provision::load_identity(&config, credentials_directory().as_deref());
    all_ok &= match &identity {
        Ok(id) => check(
            true,
            "credentials",
            format!(
                "terminal {} session {} provisioned {}",
                id.terminal_id, id.session_id, id.provisioned_at
            ),
        ),
        Err(e) => check(false, "credentials", e.to_string()),
    };
    let now = time::OffsetDateTime::now_utc();
    let before_build = pos_agent::client::clock_before_build(
        std::time::SystemTime::now(),
        pos_agent::client::build_epoch(),
    );
    all_ok &= check(
        before_build.is_none(),
        "clock",
        format!(
            "{} (UTC){}",
            now.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            match &before_build {
                Some(why) => format!("; {why}"),
                None => String::new(),
            }
        ),
    );
    all_ok &= match &identity {
        Ok(id) => check_backend(&config, id)?,
        Err(_) => check(false, "backend", "skipped: no credentials"),
    };
    all_ok &= check_reader(&config)?;
    all_ok &= check_display(&config)?;
    all_ok &= check_input(&config)?;
    if all_ok {
        Ok(())
    } else {
        Err(anyhow!("some checks failed").into())
    }
}

/// The reader answers with its model and firmware.
fn check_reader(config: &Config) -> Result<bool, Failure> {
    use hal::CardReader;
    let device = match &config.hal.reader {
        ReaderSpec::Virtual => return Ok(check(true, "reader", "virtual reader (no hardware)")),
        ReaderSpec::Pn532 { device } => device.clone(),
    };
    let path = device.to_string_lossy().into_owned();
    let r = runtime()?.block_on(async {
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            let mut reader =
                hal::pn532::Pn532Reader::open(&path, hal::pn532::Pn532Config::default())
                    .await
                    .map_err(|e| e.to_string())?;
            reader.info().await.map_err(|e| e.to_string())
        })
        .await
        .map_err(|_| "no answer within 5 s".to_owned())
        .and_then(|r| r)
    });
    Ok(match r {
        Ok(info) => check(
            true,
            "reader",
            format!(
                "{} on {path}: {} firmware {}",
                "pn532", info.model, info.firmware
            ),
        ),
        Err(e) => check(
            false,
            "reader",
            format!("pn532 on {path}: {e} (is `pos-agent run` holding the port?)"),
        ),
    })
}

/// Opens the display and draws the test pattern (colour bars and a border)
/// on it; the technician looks at the panel.
fn check_display(config: &Config) -> Result<bool, Failure> {
    use hal::Display;
    let Some((driver, device)) = config.hal.display.driver() else {
        // The virtual display: draw into its in-memory frame.
        let (_device, parts) =
            hal::VirtualDevice::new(embedded_graphics::geometry::Size::new(240, 320));
        let mut display = parts.display;
        return Ok(match ui::test_pattern(&mut display) {
            Ok(()) => check(
                true,
                "display",
                "virtual display: test pattern drawn (240x320, in memory)",
            ),
            Err(e) => check(false, "display", format!("virtual display: {e}")),
        });
    };
    let r = runtime()?.block_on(async {
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            let mut display = hal::drivers::AnyDisplay::open(driver, &device)
                .await
                .map_err(|e| e.to_string())?;
            ui::test_pattern(&mut display).map_err(|e| e.to_string())?;
            display.flush().await.map_err(|e| e.to_string())?;
            Ok::<_, String>(display.describe())
        })
        .await
        .map_err(|_| "no answer within 5 s".to_owned())
        .and_then(|r| r)
    });
    Ok(match r {
        Ok(what) => check(
            true,
            "display",
            format!("{what} on {device}: test pattern shown (eight colour bars, white border)"),
        ),
        Err(e) => check(false, "display", format!("{device}: {e}")),
    })
}

/// The buttons (or touch screen) can be opened; GPIO lines are claimed and
/// released again.
fn check_input(config: &Config) -> Result<bool, Failure> {
    use pos_agent::config::InputSpec;
    let (what, opened) = match &config.hal.input {
        InputSpec::Virtual => return Ok(check(true, "input", "virtual buttons (control API)")),
        InputSpec::Evdev { device } => {
            let d = device.to_string_lossy().into_owned();
            let panel = embedded_graphics::geometry::Size::new(240, 320);
            let r = hal::drivers::AnyInput::open_evdev(&d, panel).map(|i| i.describe());
            (format!("evdev:{d}"), r)
        }
        InputSpec::Gpio { spec } => {
            // The GPIO driver needs a runtime for its edge streams.
            let r = runtime()?.block_on(async {
                hal::drivers::AnyInput::open_gpio(spec).map(|(i, _)| i.describe())
            });
            (format!("gpio:{spec}"), r)
        }
    };
    Ok(match opened {
        Ok(kind) => check(true, "input", format!("{what}: {kind} input opened")),
        Err(e) => check(false, "input", format!("{what}: {e}")),
    })
}

fn check_storage(config: &Config) -> bool {
    let dir = &config.data_dir;
    let probe = dir.join(format!(".doctor-{}", uuid::Uuid::new_v4().simple()));
    let writable = std::fs::write(&probe, b"probe").and_then(|()| std::fs::remove_file(&probe));
    let mut ok = match writable {
        Ok(()) => {
            let free = free_bytes(dir);
            let enough = free.is_none_or(|b| b >= 64 * 1024 * 1024);
            check(
                enough,
                "storage",
                format!(
                    "{} writable; {} free",
                    dir.display(),
                    free.map(|b| format!("{} MiB", b / (1024 * 1024)))
                        .unwrap_or_else(|| "unknown".into())
                ),
            )
        }
        Err(e) => check(
            false,
            "storage",
            format!("{} not writable: {e}", dir.display()),
        ),
    };
    let ledger = config.ledger_path();
    if ledger.exists() {
        let r = store::Store::open_read_only(&ledger).and_then(|s| s.check_integrity());
        ok &= match r {
            Ok(()) => check(true, "ledger", format!("{} integrity ok", ledger.display())),
            Err(e) => check(false, "ledger", format!("{}: {e}", ledger.display())),
        };
    } else {
        check(
            true,
            "ledger",
            format!("{} not created yet", ledger.display()),
        );
    }
    ok
}

fn free_bytes(dir: &Path) -> Option<u64> {
    let s = rustix::fs::statvfs(dir).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

fn check_backend(config: &Config, id: &provision::DeviceIdentity) -> Result<bool, Failure> {
    let client = match SignedClient::new(
        &config.backend,
        id.terminal_id.clone(),
        id.credentials.clone(),
    ) {
        Ok(c) => c,
        Err(e) => return Ok(check(false, "backend", e.to_string())),
    };
    let r = runtime()?.block_on(client.session(&config.terminal.session_id));
    Ok(match r {
        Ok(s) => check(
            true,
            "backend",
            format!(
                "{} reachable; signed request accepted (clock within 300 s); session {:?}",
                config.backend.terminal_api_url, s.status
            ),
        ),
        Err(e) => check(false, "backend", e.to_string()),
    })
}

/// The local ledger compared with the backend's statement, by reference.
#[derive(Debug, Default)]
struct Reconciliation {
    matched: u64,
    /// Approved offline here and not yet known to the backend: the outbox
    /// still has to forward them (not a disagreement).
    pending_forward: Vec<String>,
    mismatches: Vec<(String, String)>,
    local: [store::CountTotal; 2],
    remote: [store::CountTotal; 2],
    /// Approved sales here that the backend already knows of.
    local_forwarded_sales: store::CountTotal,
    /// This terminal's line of the session reconciliation, when fetched.
    session: Option<proto::wire::CountTotal>,
}

impl Reconciliation {
    fn compare(local: &[store::Transaction], remote: &[proto::wire::TransactionRecord]) -> Self {
        use proto::wire::{RecordStatus, TxKind};
        use std::collections::BTreeMap;
        let mut r = Reconciliation::default();
        let by_ref: BTreeMap<&str, &proto::wire::TransactionRecord> =
            remote.iter().map(|t| (t.reference.as_str(), t)).collect();
        let local_refs: std::collections::BTreeSet<&str> =
            local.iter().map(|t| t.reference.as_str()).collect();
        let slot = |refund: bool| usize::from(refund);
        for t in local {
            let refund = t.kind == store::TxKind::Refund;
            if t.state.is_approved() {
                let c = &mut r.local[slot(refund)];
                c.count += 1;
                c.total = c.total.add(t.amount);
                if !refund && by_ref.contains_key(t.reference.as_str()) {
                    let f = &mut r.local_forwarded_sales;
                    f.count += 1;
                    f.total = f.total.add(t.amount);
                }
            }
            let reference = t.reference.as_str().to_owned();
            match by_ref.get(t.reference.as_str()) {
                None if t.state == store::TxState::OfflineApproved => {
                    r.pending_forward.push(reference)
                }
                None if t.state == store::TxState::Approved => r
                    .mismatches
                    .push((reference, "approved here, unknown to the backend".into())),
                None => {}
                Some(b) => {
                    let remote_refund = b.kind == TxKind::Refund;
                    let remote_approved = b.status == RecordStatus::Approved;
                    if remote_refund != refund || b.amount != t.amount {
                        r.mismatches.push((
                            reference,
                            format!(
                                "here {} {}, backend {} {}",
                                t.kind,
                                t.amount.to_wire(),
                                if remote_refund { "refund" } else { "sale" },
                                b.amount.to_wire()
                            ),
                        ));
                    } else if t.state.is_approved() != remote_approved {
                        r.mismatches.push((
                            reference,
                            format!("here {}, backend {}", t.state, b.status.as_str()),
                        ));
                    } else {
                        r.matched += 1;
                    }
                }
            }
        }
        for b in remote {
            let refund = b.kind == TxKind::Refund;
            if b.status == RecordStatus::Approved {
                let c = &mut r.remote[slot(refund)];
                c.count += 1;
                c.total = c.total.add(b.amount);
            }
            if !local_refs.contains(b.reference.as_str()) {
                r.mismatches.push((
                    b.reference.as_str().to_owned(),
                    format!(
                        "backend {} {}, unknown here",
                        b.status.as_str(),
                        b.amount.to_wire()
                    ),
                ));
            }
        }
        r
    }

    /// Compares the session reconciliation's line for this terminal with the
    /// approved sales here that the backend already knows of.
    fn check_session(
        &mut self,
        session: &proto::wire::Reconciliation,
        terminal: &proto::TerminalId,
    ) {
        let line = session
            .by_terminal
            .get(terminal.as_str())
            .copied()
            .unwrap_or_default();
        self.session = Some(line);
        let here = self.local_forwarded_sales;
        if line.count != here.count || line.total != here.total {
            self.mismatches.push((
                format!("session {}", session.session_id),
                format!(
                    "reconciliation for {terminal}: {} sales {}, ledger: {} sales {}",
                    line.count,
                    line.total.to_wire(),
                    here.count,
                    here.total.to_wire()
                ),
            ));
        }
    }

    fn is_clean(&self) -> bool {
        self.mismatches.is_empty()
    }

    fn to_json(&self) -> serde_json::Value {
        let ct = |c: &store::CountTotal| serde_json::json!({"count": c.count, "total": c.total.to_wire()});
        serde_json::json!({
            "clean": self.is_clean(),
            "matched": self.matched,
            "local": {"sales": ct(&self.local[0]), "refunds": ct(&self.local[1])},
            "backend": {"sales": ct(&self.remote[0]), "refunds": ct(&self.remote[1])},
            "session": self.session.map(|c| serde_json::json!({"count": c.count, "total": c.total.to_wire()})),
            "pending_forward": self.pending_forward,
            "mismatches": self.mismatches.iter().map(|(r, p)| serde_json::json!({"reference": r, "problem": p})).collect::<Vec<_>>(),
        })
    }

    fn to_text(&self) -> String {
        let mut out = String::new();
        let line = |c: &store::CountTotal| {
            format!("{:>6}  {:>24}", c.count, c.total.display(Currency::Ngn))
        };
        out.push_str(&format!(
            "approved sales    here {}\n",
            line(&self.local[0])
        ));
        out.push_str(&format!(
            "                  backend {}\n",
            line(&self.remote[0])
        ));
        out.push_str(&format!(
            "approved refunds  here {}\n",
            line(&self.local[1])
        ));
        out.push_str(&format!(
            "                  backend {}\n",
            line(&self.remote[1])
        ));
        if let Some(c) = &self.session {
            out.push_str(&format!(
                "session line      backend {:>6}  {:>24}\n",
                c.count,
                c.total.display(Currency::Ngn)
            ));
        }
        out.push_str(&format!(
            "matched: {}; waiting to be forwarded: {}\n",
            self.matched,
            self.pending_forward.len()
        ));
        for (r, p) in &self.mismatches {
            out.push_str(&format!("MISMATCH {r}: {p}\n"));
        }
        if self.is_clean() {
            out.push_str("ledger and backend agree\n");
        }
        out
    }
}
