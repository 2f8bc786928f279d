//! The command line: `run`, `provision`, `pair`, `queue`, `report`,
//! `reconcile`, `doctor`, `wait-idle`. Exit codes: 0 ok, 1 runtime failure,
//! 2 usage (clap), 69 `reconcile` could not reach the backend, 75
//! `wait-idle` timed out, 78 bad configuration or an
//! inconsistent setup (credentials of another terminal, a second agent on
//! the ledger).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::{ArgGroup, Args, Parser, Subcommand};
use pos_agent::client::{OrgClient, SignedClient};
use pos_agent::config::{self, Config, ConfigError, EX_CONFIG, Sources};
use pos_agent::doctor;
use pos_agent::ledger::{self, LedgerError, LedgerLock};
use pos_agent::provision::{self, ENV_CREDENTIALS_DIRECTORY, ProvisionError};
use pos_agent::reconcile::{self, Reconciliation};
use pos_agent::{idle, pairing, queue, report};
use proto::signing::Secret;

/// Writes to stdout like `print!`; see [`write_stdout`].
macro_rules! out {
    ($($arg:tt)*) => { write_stdout(format_args!($($arg)*)) };
}

/// Writes a line to stdout like `println!`; see [`write_stdout`].
macro_rules! outln {
    ($($arg:tt)*) => { write_stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Writes to stdout. A reader that went away (`pos-agent report | head -1`)
/// ends the process at once with 0, like a Unix filter, instead of the
/// panic `println!` gives on a closed pipe; any other write error (a full
/// disk under a redirection) exits 1 with a line on stderr. SIGPIPE stays
/// ignored, as Rust sets it, so the daemon's sockets return errors rather
/// than killing it.
fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("pos-agent: cannot write to stdout: {e}");
            std::process::exit(1);
        }
    }
}

/// An error and its causes on one line, each cause once: most of our
/// errors already end with their source's text (`cannot open …: sqlite
/// error …`), which `{:#}` would print a second time.
pub fn chain(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if text.is_empty() {
            text = c;
        } else if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text
}

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
    #[command(
        group(ArgGroup::new("org_key_source").required(true).args(["org_key_file", "org_key"])),
        after_help = "One of --org-key-file or --org-key is required: the organisation key \
                      authorises the provisioning request."
    )]
    Provision {
        #[command(flatten)]
        config: ConfigArgs,
        /// File holding the organisation key (first line).
        #[arg(
            long,
            value_name = "FILE",
            help_heading = "Organisation key (one is required)"
        )]
        org_key_file: Option<PathBuf>,
        /// The organisation key itself (visible to other local users: for tests).
        #[arg(
            long,
            value_name = "KEY",
            help_heading = "Organisation key (one is required)"
        )]
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
    /// Pair this terminal by code (SPEC 8.1): prints a code and its QR code,
    /// waits until the organiser claimed it, stores the credentials.
    Pair {
        #[command(flatten)]
        config: ConfigArgs,
        /// Unpair first when the terminal has credentials (only with an
        /// empty outbox; the ledger is kept).
        #[arg(long)]
        force: bool,
    },
    /// Show the outbox: what the backend has not yet acknowledged.
    Queue {
        #[command(flatten)]
        config: ConfigArgs,
        /// Print JSON instead of a table (on failure, `{"error": {code, message}}`).
        #[arg(long)]
        json: bool,
        /// Put the parked item ID back in line (once its cause is fixed,
        /// e.g. after re-provisioning); the running agent sends it at once.
        #[arg(long, value_name = "ID", conflicts_with = "retry_all")]
        retry: Option<i64>,
        /// Put every parked item back in line.
        #[arg(long)]
        retry_all: bool,
    },
    /// Show local totals by status, kind, operator and item; with
    /// `--shift`, a shift's X (current) or Z (closed) report.
    Report {
        #[command(flatten)]
        config: ConfigArgs,
        /// Print JSON instead of text (on failure, `{"error": {code, message}}`).
        #[arg(long)]
        json: bool,
        /// `current` or a shift number.
        #[arg(long, value_name = "current|N")]
        shift: Option<report::ShiftSel>,
    },
    /// Compare the local ledger with the backend's statement for this terminal
    /// and, given the organisation key, with the session's reconciliation.
    #[command(after_help = RECONCILE_EXIT_CODES)]
    Reconcile {
        #[command(flatten)]
        config: ConfigArgs,
        /// Print JSON instead of text (on failure, `{"error": {code, message}}`).
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
        /// Print one JSON object `{ok, checks: [{check, ok, detail}]}` at
        /// the end instead of a line per check.
        #[arg(long)]
        json: bool,
    },
    /// Return once no payment is in progress on the running agent (at once
    /// when none runs); new payments are refused for a few minutes, so the
    /// stop that follows interrupts none. Exit 75 on timeout.
    WaitIdle {
        #[command(flatten)]
        config: ConfigArgs,
        /// Give up after this many seconds.
        #[arg(long, value_name = "S", default_value_t = 120,
              value_parser = clap::value_parser!(u64).range(1..=86_400))]
        timeout: u64,
    },
    /// Write the manual pages and shell completions (for packaging).
    #[command(hide = true)]
    GenerateDocs {
        /// Directory for `pos-agent.1` and one page per subcommand.
        #[arg(long, value_name = "DIR")]
        man: PathBuf,
        /// Directory for the bash, zsh and fish completions.
        #[arg(long, value_name = "DIR")]
        completions: PathBuf,
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

/// `reconcile`: the backend could not be reached (sysexits `EX_UNAVAILABLE`).
pub const EX_UNAVAILABLE: u8 = 69;

/// `reconcile --help`'s exit codes (also in `docs/operations.md`).
const RECONCILE_EXIT_CODES: &str = "Exit status:
  0   the ledger and the backend agree
  1   they disagree (the report says where), or another failure
  69  the backend could not be reached or answered a temporary failure
  78  bad configuration or credentials of another terminal";

/// A failure, with the exit code it maps to.
pub enum Failure {
    /// The configuration was refused: exit 78.
    Config(ConfigError),
    /// The terminal is set up inconsistently, which restarting will not fix
    /// (credentials of another terminal or session than the config, another
    /// agent already running on the ledger, provisioning flags that
    /// contradict the config or the backend): exit 78 too, so systemd does
    /// not restart it in a loop.
    Setup(anyhow::Error),
    Runtime(anyhow::Error),
    /// The backend could not be reached or answered with a temporary
    /// failure (`reconcile`): exit 69 (`EX_UNAVAILABLE`), so a script can
    /// tell "try again later" from "they disagree".
    Unavailable(anyhow::Error),
    /// `wait-idle` gave up: exit 75 (`EX_TEMPFAIL`).
    TimedOut(anyhow::Error),
    /// A report was printed and says what is wrong (`reconcile` found a
    /// disagreement): exit 1, and no `--json` error object on top.
    Reported(anyhow::Error),
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
            Failure::Setup(e) => {
                eprintln!("pos-agent: {}", chain(&e));
                ExitCode::from(EX_CONFIG as u8)
            }
            Failure::Runtime(e) | Failure::Reported(e) => {
                eprintln!("pos-agent: {}", chain(&e));
                ExitCode::FAILURE
            }
            Failure::TimedOut(e) => {
                eprintln!("pos-agent: {}", chain(&e));
                ExitCode::from(idle::EX_TIMED_OUT)
            }
            Failure::Unavailable(e) => {
                eprintln!("pos-agent: {}", chain(&e));
                ExitCode::from(EX_UNAVAILABLE)
            }
        }
    }

    /// `{"error": {"code", "message"}}` for commands run with `--json`.
    fn to_json(&self) -> Option<serde_json::Value> {
        let (code, message) = match self {
            Failure::Config(e) => ("config", e.to_string()),
            Failure::Setup(e) => ("setup", chain(e)),
            Failure::Runtime(e) => (
                e.downcast_ref::<LedgerError>()
                    .map(LedgerError::code)
                    .unwrap_or("failed"),
                chain(e),
            ),
            Failure::TimedOut(e) => ("timed_out", chain(e)),
            Failure::Unavailable(e) => ("unavailable", chain(e)),
            Failure::Reported(_) => return None,
        };
        Some(serde_json::json!({ "error": { "code": code, "message": message } }))
    }
}

/// With `--json`, a failure is also printed on stdout as a JSON error
/// object, so a script reading stdout never mistakes it for an answer.
fn json_errors(json: bool, result: Result<(), Failure>) -> Result<(), Failure> {
    if let (true, Err(f)) = (json, &result) {
        if let Some(v) = f.to_json() {
            outln!("{v}");
        }
    }
    result
}

/// A provisioning error: a mismatch or an unknown session or terminal is
/// [`Failure::Setup`] (exit 78), anything else a runtime failure.
fn provision_failure(e: ProvisionError) -> Failure {
    if e.is_setup_problem() {
        Failure::Setup(anyhow!(e))
    } else {
        Failure::Runtime(anyhow!(e))
    }
}

/// A backend call that failed: unreachable or a temporary failure is
/// [`Failure::Unavailable`] (exit 69), a refusal a runtime failure.
fn backend_failure(e: pos_agent::client::ClientError) -> Failure {
    if e.is_retryable() {
        Failure::Unavailable(anyhow!(e))
    } else {
        Failure::Runtime(anyhow!(e))
    }
}

fn init_logging(filter: &str) {
    pos_agent::logging::init(filter, config::DEFAULT_LOG_FILTER);
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
        Command::GenerateDocs { man, completions } => {
            crate::docs::generate(&man, &completions).map_err(Failure::from)
        }
        Command::Provision {
            config,
            org_key_file,
            org_key,
            session,
            terminal,
            force,
        } => {
            check_provision_ids(&config, &terminal, &session)?;
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
                .map_err(provision_failure)?;
            outln!(
                "provisioned terminal {} for session {} (merchant {}, tenant {})",
                done.terminal_id,
                done.session_id,
                done.merchant_id,
                done.tenant_id
            );
            outln!("credentials: {}", done.credentials_file.display());
            outln!("card key:    {}", done.card_key_file.display());
            Ok(())
        }
        Command::Pair { config, force } => pair(&config, force),
        Command::Queue {
            config,
            json,
            retry,
            retry_all,
        } => {
            let which = match (retry, retry_all) {
                (Some(id), _) => Some(queue::Retry::One(id)),
                (None, true) => Some(queue::Retry::All),
                (None, false) => None,
            };
            json_errors(
                json,
                load_config(&config, &[]).and_then(|c| match which {
                    Some(which) => queue_retry(&c, which, json),
                    None => queue(&c, json),
                }),
            )
        }
        Command::Report {
            config,
            json,
            shift,
        } => json_errors(
            json,
            load_config(&config, &[]).and_then(|c| match shift {
                Some(which) => shift_report(&c, which, json),
                None => report(&c, json),
            }),
        ),
        Command::Reconcile {
            config,
            json,
            org_key_file,
            org_key,
        } => json_errors(
            json,
            load_config(&config, &[]).and_then(|config| {
                let key = match (org_key_file, org_key) {
                    (Some(path), _) => {
                        Some(provision::read_org_key(&path).map_err(|e| anyhow!(e))?)
                    }
                    (None, Some(k)) if !k.trim().is_empty() => Some(Secret::new(k.trim())),
                    (None, Some(_)) => {
                        return Err(anyhow!("the organisation key is empty").into());
                    }
                    (None, None) => None,
                };
                reconcile(&config, json, key)
            }),
        ),
        Command::Doctor { config, json } => doctor(&config, json),
        Command::WaitIdle { config, timeout } => wait_idle(&config, timeout),
    }
}

fn wait_idle(args: &ConfigArgs, timeout: u64) -> Result<(), Failure> {
    let config = load_config(args, &[])?;
    let timeout = std::time::Duration::from_secs(timeout);
    match runtime()?.block_on(idle::wait_idle(&config.data_dir, timeout)) {
        Ok(idle::Waited::Idle) => {
            outln!("idle: no payment in progress; new payments are held for a few minutes");
            Ok(())
        }
        Ok(idle::Waited::NotRunning) => {
            outln!("idle: no agent is running");
            Ok(())
        }
        Err(e @ idle::WaitIdleError::TimedOut(_)) => Err(Failure::TimedOut(anyhow!(
            "{e}; giving up waiting (new payments stay held for a few minutes)"
        ))),
        Err(e) => Err(Failure::Runtime(anyhow!(e))),
    }
}

/// `--terminal`/`--session` against the terminal and session the config
/// (file, drop-ins, environment) names, before anything is sent: the
/// backend invalidates a terminal's credentials as soon as it provisions
/// it again, and `run` only accepts credentials for the config's terminal
/// and session. A config that names neither is fine: the flags fill them.
fn check_provision_ids(args: &ConfigArgs, terminal: &str, session: &str) -> Result<(), Failure> {
    let sources = args.sources().map_err(Failure::Config)?;
    let (raw, _) = config::load_raw(&sources).map_err(|e| {
        init_logging(config::DEFAULT_LOG_FILTER);
        Failure::Config(e)
    })?;
    for (key, configured, flag, given) in [
        ("terminal.id", &raw.terminal.id, "--terminal", terminal),
        (
            "terminal.session_id",
            &raw.terminal.session_id,
            "--session",
            session,
        ),
    ] {
        if let Some(c) = configured.as_deref().filter(|c| *c != given) {
            return Err(Failure::Config(ConfigError::Invalid {
                origin: raw.origins.of(key),
                key: key.to_owned(),
                problem: format!(
                    "is {c:?} but {flag} {given:?} was given; nothing was sent to the backend \
                     (the terminal's current credentials still work). Correct the typo, or the \
                     config first"
                ),
            }));
        }
    }
    Ok(())
}

fn run(args: &ConfigArgs) -> Result<(), Failure> {
    let config = load_config(args, &[])?;
    // Credentials of another terminal than the config names are refused
    // before anything starts; none at all means pairing first (SPEC 8.1).
    let identity = match provision::load_identity(&config, credentials_directory().as_deref()) {
        Ok(identity) => Some(identity),
        Err(ProvisionError::NotProvisioned { .. }) => None,
        Err(e) => return Err(provision_failure(e)),
    };
    let lock = lock_ledger(&config)?;
    match &identity {
        Some(identity) => tracing::info!(
            terminal = %identity.terminal_id,
            session = %identity.session_id,
            data_dir = %config.data_dir.display(),
            lock = %lock.path().display(),
            "configuration and credentials loaded; ledger locked"
        ),
        None => tracing::info!(
            data_dir = %config.data_dir.display(),
            lock = %lock.path().display(),
            "configuration loaded; no credentials: pairing by code first"
        ),
    }
    let result = runtime()?
        .block_on(pos_agent::runtime::daemon::run_until_signal(config))
        .map_err(|e| Failure::Runtime(anyhow!(e)));
    drop(lock);
    result
}

fn pair(args: &ConfigArgs, force: bool) -> Result<(), Failure> {
    let config = load_config(args, &[])?;
    let lock = lock_ledger(&config)?;
    pairing::prepare_offline(&config, force).map_err(|e| Failure::Runtime(anyhow!(e)))?;
    let rt = runtime()?;
    let paired = rt.block_on(async {
        let stop = tokio_util::sync::CancellationToken::new();
        let on_signal = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                on_signal.cancel();
            }
        });
        let mut print = |p: &pairing::PairingProgress| match (&p.code, p.link) {
            (Some(code), pairing::PairingLink::Waiting) => {
                outln!("{}", pairing::code_for_terminal(code));
            }
            (_, pairing::PairingLink::NoNetwork) => {
                outln!("backend not reachable; retrying");
            }
            _ => {}
        };
        // The code goes on the terminal's own screen too.
        let mut panel = pos_agent::runtime::Panel::open(&config).await?;
        pos_agent::runtime::daemon::pair_on_panel(&config, &mut panel, &stop, &mut print).await
    });
    drop(lock);
    match paired.map_err(|e| Failure::Runtime(anyhow!(e)))? {
        Some(identity) => {
            outln!(
                "paired: terminal {} of session {}",
                identity.terminal_id,
                identity.session_id
            );
            Ok(())
        }
        None => Err(anyhow!("interrupted before the code was claimed").into()),
    }
}

/// Takes the ledger's lock, held until the process ends: a second agent
/// (or `pair` beside a running agent) on this data directory is refused.
fn lock_ledger(config: &Config) -> Result<LedgerLock, Failure> {
    provision::create_private_dir(&config.data_dir)
        .map_err(|e| Failure::Runtime(anyhow!(e)))
        .and_then(|()| {
            LedgerLock::acquire(&config.data_dir).map_err(|e| match e {
                LedgerError::Locked { .. } => Failure::Setup(anyhow!(e)),
                e => Failure::Runtime(anyhow!(e)),
            })
        })
}

/// Opens the existing ledger for reading; a missing one is an error.
fn open_ledger(config: &Config) -> Result<store::Store, Failure> {
    ledger::open_read_only(config).map_err(|e| Failure::Runtime(anyhow!(e)))
}

fn queue(config: &Config, json: bool) -> Result<(), Failure> {
    let items = queue::read(&open_ledger(config)?).context("cannot read the outbox")?;
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&queue::to_json(&items)).context("cannot encode JSON")?
        );
    } else {
        out!("{}", queue::to_text(&items));
    }
    Ok(())
}

fn queue_retry(config: &Config, which: queue::Retry, json: bool) -> Result<(), Failure> {
    let store = ledger::open_existing(config).map_err(|e| Failure::Runtime(anyhow!(e)))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let ids = queue::retry(&store, which, now).context("cannot put the items back in line")?;
    drop(store);
    let agent = if ids.is_empty() {
        None
    } else {
        ledger::wake_running_agent(&config.data_dir)
    };
    if json {
        outln!("{}", queue::retried_json(&ids, agent));
    } else {
        out!("{}", queue::retried_text(&ids, agent));
    }
    Ok(())
}

/// Whose ledger it is: the ids of the identity in the data directory, else
/// those of the config, else none (an unpaired terminal's ledger stays
/// readable, SPEC 8.1).
fn ledger_owner(config: &Config) -> config::TerminalConfig {
    match provision::load_identity(config, credentials_directory().as_deref()) {
        Ok(id) => config::TerminalConfig {
            id: Some(id.terminal_id),
            session_id: Some(id.session_id),
        },
        Err(_) => config.terminal.clone(),
    }
}

fn report(config: &Config, json: bool) -> Result<(), Failure> {
    let ledger = open_ledger(config)?;
    let totals = report::read(&ledger).context("cannot read the ledger totals")?;
    let by_terminal = report::sales_by_terminal(&ledger).context("cannot read the ledger")?;
    let owner = ledger_owner(config);
    if json {
        let mut v = report::to_json(&owner, &totals);
        v["by_terminal"] = report::by_terminal_json(&by_terminal);
        outln!(
            "{}",
            serde_json::to_string_pretty(&v).context("cannot encode JSON")?
        );
    } else {
        out!("{}", report::to_text(&owner, &totals, &by_terminal));
    }
    Ok(())
}

fn shift_report(config: &Config, which: report::ShiftSel, json: bool) -> Result<(), Failure> {
    let r = report::read_shift(&open_ledger(config)?, which)
        .context("cannot read the shift from the ledger")?;
    let Some(r) = r else {
        return Err(Failure::Runtime(anyhow!(
            "no shift {which} in this terminal's ledger"
        )));
    };
    let owner = ledger_owner(config);
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&report::shift_to_json(&owner, &r))
                .context("cannot encode JSON")?
        );
    } else {
        out!("{}", report::shift_to_text(&owner, &r));
    }
    Ok(())
}

fn reconcile(config: &Config, json: bool, org_key: Option<Secret>) -> Result<(), Failure> {
    let identity = provision::load_identity(config, credentials_directory().as_deref())
        .map_err(provision_failure)?;
    let local = reconcile::read_ledger(&open_ledger(config)?).context("cannot read the ledger")?;
    let client = SignedClient::new(
        &config.backend,
        identity.terminal_id.clone(),
        identity.credentials.clone(),
    )
    .map_err(|e| anyhow!(e))?;
    let remote = runtime()?
        .block_on(reconcile::fetch_statement(&client))
        .map_err(backend_failure)?;
    let mut diff = Reconciliation::compare(&local, &remote);
    if let Some(key) = org_key {
        let org = OrgClient::new(&config.backend, key).map_err(|e| anyhow!(e))?;
        let session = runtime()?
            .block_on(org.reconciliation(&identity.session_id))
            .map_err(backend_failure)?;
        diff.check_session(&session, &identity.terminal_id);
    }
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&diff.to_json()).context("cannot encode JSON")?
        );
    } else {
        out!("{}", diff.to_text());
    }
    if diff.is_clean() {
        Ok(())
    } else {
        Err(Failure::Reported(anyhow!(
            "the local ledger and the backend disagree"
        )))
    }
}

/// `doctor`'s output: each check as a line when it is done, or with
/// `--json` one object at the end.
struct DoctorOut {
    json: bool,
    checks: Vec<doctor::Check>,
}

impl DoctorOut {
    fn note(&mut self, check: &doctor::Check) {
        if self.json {
            self.checks.push(check.clone());
        } else {
            outln!("{check}");
        }
    }

    fn finish(&self) {
        if self.json {
            outln!("{:#}", doctor::to_json(&self.checks));
        }
    }
}

/// Exit 0 when every check passed, 78 when the configuration was refused
/// (no other check runs), 1 otherwise; the same with `--json`.
fn doctor(args: &ConfigArgs, json: bool) -> Result<(), Failure> {
    init_logging("warn");
    let mut out = DoctorOut {
        json,
        checks: Vec::new(),
    };
    let sources = match args.sources() {
        Ok(s) => s,
        Err(e) => {
            out.note(&doctor::config_failed(&e));
            out.finish();
            return Err(Failure::Config(e));
        }
    };
    let loaded = config::load(&sources);
    out.note(&doctor::check_config(&args.config, &loaded));
    let config = match loaded {
        Ok(l) => l.config,
        Err(e) => {
            out.finish();
            return Err(Failure::Config(e));
        }
    };
    let all_ok = doctor::run(&config, credentials_directory().as_deref(), &mut |c| {
        out.note(c)
    })
    .context("cannot start the async runtime")?;
    out.finish();
    if all_ok {
        Ok(())
    } else {
        Err(anyhow!("some checks failed").into())
    }
}
