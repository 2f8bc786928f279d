//! Agent configuration: the TOML file, its `config.d/` drop-ins, `POS_AGENT_*`
//! environment variables and command-line flags, merged in that order (later
//! wins) and validated into a [`Config`].
//!
//! Loading happens in three steps:
//!
//! 1. every source is parsed into a TOML table and deep-merged, remembering
//!    which source set each key (so errors can name the file, variable or flag);
//! 2. the merged table is deserialized into the all-`Option` [`RawConfig`];
//!    keys the agent does not know are accepted (SPEC: "more keys are fine") and
//!    reported as [`ConfigWarning`]s for the caller to log;
//! 3. `TryFrom<RawConfig> for Config` validates every value at this boundary.
//!
//! Any failure is a [`ConfigError`] naming the source and the key; the binary
//! exits with [`EX_CONFIG`] (78) for it. Secrets never live in this file: the
//! terminal's credentials and card key are in the data directory (see
//! [`crate::provision`]).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use proto::{Money, SessionId, TerminalId, Total};
use reqwest::Url;
use serde::Deserialize;

/// Where the agent looks for its config file when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/pos-agent/config.toml";
/// The data directory when the config does not name one.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/pos-agent";
/// The SQLite ledger's file name inside the data directory.
pub const LEDGER_FILE: &str = "ledger.sqlite";
/// The name of the drop-in directory beside the config file.
pub const DROP_IN_DIR: &str = "config.d";
/// The prefix of every environment variable that overrides a key.
pub const ENV_PREFIX: &str = "POS_AGENT_";
/// The environment variable naming the config file (read by the CLI).
pub const ENV_CONFIG_FILE: &str = "POS_AGENT_CONFIG";
/// Exit status for a bad configuration (sysexits `EX_CONFIG`); the systemd
/// unit lists it in `RestartPreventExitStatus=`.
pub const EX_CONFIG: i32 = 78;

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The config file or one of its drop-ins.
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// A command-line flag.
    Flag(String),
    /// Nobody set it: the default, or a required key that is missing.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(p) => write!(f, "{}", p.display()),
            Origin::Env(v) => write!(f, "environment variable {v}"),
            Origin::Flag(flag) => write!(f, "command-line flag {flag}"),
            Origin::Default => f.write_str("built-in default"),
        }
    }
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot list drop-in directory {}: {source}", path.display())]
    ReadDropIns {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not valid TOML: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    #[error("{origin}: key `{key}`: {problem}")]
    Invalid {
        origin: Origin,
        key: String,
        problem: String,
    },
    #[error("{}: key `{key}` is required (or set {env})", file.display())]
    Missing {
        file: PathBuf,
        key: String,
        env: String,
    },
    #[error("{origin}: `{key}` is not a known config key")]
    UnknownOverride { origin: Origin, key: String },
}

impl ConfigError {
    /// The dotted key the error is about, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. }
            | ConfigError::Missing { key, .. }
            | ConfigError::UnknownOverride { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// Something worth a warning that did not stop the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigWarning {
    /// A key this agent does not know; ignored.
    UnknownKey { origin: Origin, key: String },
    /// A `POS_AGENT_*` variable that maps to no key; ignored.
    UnknownEnv { var: String },
    /// A backend URL in clear text to a host that is not loopback.
    PlainHttp { key: &'static str, url: String },
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigWarning::UnknownKey { origin, key } => {
                write!(f, "{origin}: unknown key `{key}` ignored")
            }
            ConfigWarning::UnknownEnv { var } => {
                write!(
                    f,
                    "environment variable {var} is not a known setting; ignored"
                )
            }
            ConfigWarning::PlainHttp { key, url } => {
                write!(
                    f,
                    "`{key}` = {url} is plain http to a host that is not loopback; use https"
                )
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Int,
}

/// Every key that can be overridden from the environment or `--set`, and its
/// TOML type. The variable is `POS_AGENT_` + the key upper-cased with `.`
/// replaced by `_`.
const KEYS: &[(&str, Kind)] = &[
    ("data_dir", Kind::Str),
    ("terminal.id", Kind::Str),
    ("terminal.session_id", Kind::Str),
    ("backend.url", Kind::Str),
    ("backend.terminal_api_url", Kind::Str),
    ("backend.ca_file", Kind::Str),
    ("backend.connect_timeout_ms", Kind::Int),
    ("backend.request_timeout_ms", Kind::Int),
    ("offline.floor_limit", Kind::Str),
    ("offline.max_total", Kind::Str),
    ("offline.max_count", Kind::Int),
    ("offline.max_age_hours", Kind::Int),
    ("hal.reader", Kind::Str),
    ("hal.display", Kind::Str),
    ("hal.input", Kind::Str),
    ("hal.virtual.control_addr", Kind::Str),
    ("payment.tap_timeout_ms", Kind::Int),
    ("payment.auth_timeout_ms", Kind::Int),
    ("payment.result_hold_ms", Kind::Int),
    ("sync.heartbeat_interval_ms", Kind::Int),
    ("sync.session_poll_interval_ms", Kind::Int),
    ("sync.retry_initial_ms", Kind::Int),
    ("sync.retry_max_ms", Kind::Int),
    ("log.filter", Kind::Str),
];

/// The environment variable that overrides `key`.
pub fn env_var_for(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.to_ascii_uppercase().replace('.', "_"))
}

/// The keys that can be overridden, for `--set` help and the docs.
pub fn known_keys() -> impl Iterator<Item = &'static str> {
    KEYS.iter().map(|(k, _)| *k)
}

/// The inputs of [`load`]. The environment is passed in (not read here) so
/// that loading is a pure function of its inputs.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The main config file; its directory holds `config.d/`.
    pub file: PathBuf,
    /// Environment variables (only `POS_AGENT_*` ones are looked at).
    pub env: Vec<(String, String)>,
    /// Command-line overrides: `(key, value, flag as typed)`, applied last.
    pub flags: Vec<(String, String, String)>,
}

impl Sources {
    /// The file plus this process's `POS_AGENT_*` environment variables.
    /// Variables whose value is not UTF-8 are kept with a lossy value so that
    /// validation names them.
    pub fn from_process(file: impl Into<PathBuf>) -> Self {
        let env = std::env::vars_os()
            .filter_map(|(k, v)| {
                let k = k.into_string().ok()?;
                k.starts_with(ENV_PREFIX)
                    .then(|| (k, v.to_string_lossy().into_owned()))
            })
            .collect();
        Sources {
            file: file.into(),
            env,
            flags: Vec::new(),
        }
    }

    /// Adds a command-line override of `key`.
    pub fn flag(mut self, key: &str, value: impl Into<String>, flag: &str) -> Self {
        self.flags
            .push((key.to_owned(), value.into(), flag.to_owned()));
        self
    }
}

/// Which source set each key (dotted path), tables and leaves alike.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    main_file: PathBuf,
    by_key: BTreeMap<String, Origin>,
}

impl Origins {
    /// The source of `key`, or of its nearest enclosing table.
    pub fn of(&self, key: &str) -> Origin {
        let mut k = key;
        loop {
            if let Some(o) = self.by_key.get(k) {
                return o.clone();
            }
            match k.rfind('.') {
                Some(i) => k = &k[..i],
                None => return Origin::File(self.main_file.clone()),
            }
        }
    }

    fn record(&mut self, path: &str, value: &toml::Value, origin: &Origin) {
        // A new value replaces whatever was below this path.
        let prefix = format!("{path}.");
        self.by_key.retain(|k, _| !k.starts_with(&prefix));
        self.by_key.insert(path.to_owned(), origin.clone());
        if let toml::Value::Table(t) = value {
            for (k, v) in t {
                self.record(&format!("{path}.{k}"), v, origin);
            }
        }
    }
}

/// The configuration as written: every field optional, nothing validated.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawConfig {
    pub data_dir: Option<PathBuf>,
    #[serde(default)]
    pub terminal: RawTerminal,
    #[serde(default)]
    pub backend: RawBackend,
    #[serde(default)]
    pub offline: RawOffline,
    #[serde(default)]
    pub hal: RawHal,
    #[serde(default)]
    pub payment: RawPayment,
    #[serde(default)]
    pub sync: RawSync,
    #[serde(default)]
    pub log: RawLog,
    /// Where each key came from, for error messages.
    #[serde(skip)]
    pub origins: Origins,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawTerminal {
    pub id: Option<String>,
    pub session_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawBackend {
    pub url: Option<String>,
    pub terminal_api_url: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub connect_timeout_ms: Option<u64>,
    pub request_timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawOffline {
    pub floor_limit: Option<String>,
    pub max_total: Option<String>,
    pub max_count: Option<u64>,
    pub max_age_hours: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawHal {
    pub reader: Option<String>,
    pub display: Option<String>,
    pub input: Option<String>,
    #[serde(default, rename = "virtual")]
    pub virtual_device: RawHalVirtual,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawHalVirtual {
    pub control_addr: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawPayment {
    pub tap_timeout_ms: Option<u64>,
    pub auth_timeout_ms: Option<u64>,
    pub result_hold_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawSync {
    pub heartbeat_interval_ms: Option<u64>,
    pub session_poll_interval_ms: Option<u64>,
    pub retry_initial_ms: Option<u64>,
    pub retry_max_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawLog {
    pub filter: Option<String>,
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub data_dir: PathBuf,
    pub terminal: TerminalConfig,
    pub backend: BackendConfig,
    pub offline: OfflineLimits,
    pub hal: HalConfig,
    pub payment: PaymentTimings,
    pub sync: SyncConfig,
    /// `EnvFilter` directives; `RUST_LOG` wins when set.
    pub log_filter: String,
}

impl Config {
    /// `<data_dir>/ledger.sqlite`.
    pub fn ledger_path(&self) -> PathBuf {
        self.data_dir.join(LEDGER_FILE)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalConfig {
    pub id: TerminalId,
    pub session_id: SessionId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendConfig {
    /// The Kler session backend (organisation-key endpoints).
    pub url: Url,
    /// The terminal API (signed endpoints); defaults to `url`.
    pub terminal_api_url: Url,
    /// An extra trust anchor, as given.
    pub ca_file: Option<PathBuf>,
    /// The PEM read from `ca_file` at load time (at least one certificate).
    pub ca_pem: Option<Vec<u8>>,
    pub connect_timeout: Duration,
    /// Whole-request timeout for ordinary calls (not the command stream).
    pub request_timeout: Duration,
}

/// Offline limits (SPEC 5.6); the heartbeat may tighten them at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfflineLimits {
    /// Largest single payment approved offline.
    pub floor_limit: Money,
    /// Largest cumulative amount of queued offline payments.
    pub max_total: Total,
    /// Most queued offline payments.
    pub max_count: u32,
    /// Oldest a queued offline payment may be before offline sales stop.
    pub max_age: Duration,
}

impl Default for OfflineLimits {
    fn default() -> Self {
        OfflineLimits {
            floor_limit: Money::from_minor(5_000_000).expect("50000.00 is a valid amount"),
            max_total: Total(200_000_000),
            max_count: 1000,
            max_age: Duration::from_secs(72 * 3600),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HalConfig {
    pub reader: ReaderSpec,
    pub display: DisplaySpec,
    pub input: InputSpec,
    /// The virtual device's control API; always a loopback address.
    pub virtual_control_addr: SocketAddr,
}

impl HalConfig {
    /// Whether any device is the virtual one (so the control API is served).
    pub fn uses_virtual(&self) -> bool {
        self.reader == ReaderSpec::Virtual
            || self.display == DisplaySpec::Virtual
            || self.input == InputSpec::Virtual
    }
}

/// The card reader to drive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderSpec {
    Virtual,
    /// A PN532 NFC controller on a serial line, e.g. `pn532:/dev/ttyS0`.
    Pn532 {
        device: PathBuf,
    },
}

/// The display to draw on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisplaySpec {
    Virtual,
    /// A Linux framebuffer, e.g. `fbdev:/dev/fb0`.
    Fbdev {
        device: PathBuf,
    },
    /// An ST7789 SPI panel, e.g. `st7789:/dev/spidev0.0`.
    St7789 {
        device: PathBuf,
    },
    /// An ILI9341 SPI panel, e.g. `ili9341:/dev/spidev0.0`.
    Ili9341 {
        device: PathBuf,
    },
}

impl fmt::Display for DisplaySpec {
    /// As written in the config: `virtual`, `fbdev:/dev/fb0`, ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DisplaySpec::Virtual => f.write_str("virtual"),
            DisplaySpec::Fbdev { device } => write!(f, "fbdev:{}", device.display()),
            DisplaySpec::St7789 { device } => write!(f, "st7789:{}", device.display()),
            DisplaySpec::Ili9341 { device } => write!(f, "ili9341:{}", device.display()),
        }
    }
}

impl DisplaySpec {
    /// The real driver and its device text (what follows `fbdev:` etc.), or
    /// `None` for the virtual display.
    pub fn driver(&self) -> Option<(hal::drivers::DisplayDriver, String)> {
        use hal::drivers::DisplayDriver;
        let (driver, device) = match self {
            DisplaySpec::Virtual => return None,
            DisplaySpec::Fbdev { device } => (DisplayDriver::Fbdev, device),
            DisplaySpec::St7789 { device } => (DisplayDriver::St7789, device),
            DisplaySpec::Ili9341 { device } => (DisplayDriver::Ili9341, device),
        };
        Some((driver, device.to_string_lossy().into_owned()))
    }
}

/// The cashier's buttons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSpec {
    Virtual,
    /// A Linux input device, e.g. `evdev:/dev/input/event0`.
    Evdev {
        device: PathBuf,
    },
    /// GPIO buttons; the text after `gpio:` is passed to the driver as is.
    Gpio {
        spec: String,
    },
}

fn device_after(s: &str, prefix: &str) -> Option<Result<PathBuf, String>> {
    let rest = s.strip_prefix(prefix)?.strip_prefix(':')?;
    Some(if rest.starts_with('/') && rest.len() > 1 {
        Ok(PathBuf::from(rest))
    } else {
        Err(format!(
            "`{prefix}:` must be followed by an absolute device path"
        ))
    })
}

impl FromStr for ReaderSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "virtual" {
            return Ok(ReaderSpec::Virtual);
        }
        match device_after(s, "pn532") {
            Some(r) => r.map(|device| ReaderSpec::Pn532 { device }),
            None => Err(format!(
                "unknown reader {s:?}: expected \"virtual\" or \"pn532:<serial device>\""
            )),
        }
    }
}

impl FromStr for DisplaySpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "virtual" {
            return Ok(DisplaySpec::Virtual);
        }
        if let Some(r) = device_after(s, "fbdev") {
            return r.map(|device| DisplaySpec::Fbdev { device });
        }
        if let Some(r) = device_after(s, "st7789") {
            return r.map(|device| DisplaySpec::St7789 { device });
        }
        if let Some(r) = device_after(s, "ili9341") {
            return r.map(|device| DisplaySpec::Ili9341 { device });
        }
        Err(format!(
            "unknown display {s:?}: expected \"virtual\", \"fbdev:<device>\", \
             \"st7789:<spidev>\" or \"ili9341:<spidev>\""
        ))
    }
}

impl FromStr for InputSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "virtual" {
            return Ok(InputSpec::Virtual);
        }
        if let Some(r) = device_after(s, "evdev") {
            return r.map(|device| InputSpec::Evdev { device });
        }
        if let Some(spec) = s.strip_prefix("gpio:") {
            if spec.is_empty() || spec.chars().any(char::is_whitespace) {
                return Err("`gpio:` must be followed by a pin specification".into());
            }
            return Ok(InputSpec::Gpio {
                spec: spec.to_owned(),
            });
        }
        Err(format!(
            "unknown input {s:?}: expected \"virtual\", \"evdev:<device>\" or \"gpio:<pins>\""
        ))
    }
}

/// Timers of the payment flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentTimings {
    /// How long the tap-card screen waits (SPEC 5.2; default 60 s).
    pub tap_timeout: Duration,
    /// How long an online authorization may take (SPEC 5.5; default 8 s).
    pub auth_timeout: Duration,
    /// How long a result screen stays up (default 4 s).
    pub result_hold: Duration,
}

impl Default for PaymentTimings {
    fn default() -> Self {
        PaymentTimings {
            tap_timeout: Duration::from_secs(60),
            auth_timeout: Duration::from_secs(8),
            result_hold: Duration::from_secs(4),
        }
    }
}

/// Timers of the background sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncConfig {
    /// Heartbeat period (default 10 s; the backend calls a terminal offline
    /// after 30 s without one).
    pub heartbeat_interval: Duration,
    /// How often the session status is fetched (default 60 s).
    pub session_poll_interval: Duration,
    /// First outbox retry delay (default 500 ms), doubled per attempt.
    pub retry_initial: Duration,
    /// Longest outbox retry delay (default 60 s).
    pub retry_max: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            heartbeat_interval: Duration::from_secs(10),
            session_poll_interval: Duration::from_secs(60),
            retry_initial: Duration::from_millis(500),
            retry_max: Duration::from_secs(60),
        }
    }
}

/// Default log filter when neither `RUST_LOG` nor `log.filter` is set.
pub const DEFAULT_LOG_FILTER: &str = "info";
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const DEFAULT_CONTROL_ADDR: &str = "127.0.0.1:7070";

/// A loaded configuration and what was worth a warning.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<ConfigWarning>,
}

/// Reads, merges and validates the configuration from `sources`.
pub fn load(sources: &Sources) -> Result<Loaded, ConfigError> {
    let (raw, mut warnings) = load_raw(sources)?;
    let config = Config::try_from(raw)?;
    let urls = [
        ("backend.url", &config.backend.url),
        ("backend.terminal_api_url", &config.backend.terminal_api_url),
    ];
    for (key, url) in urls {
        let host = url.host_str().unwrap_or_default();
        let loopback = host == "localhost"
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if url.scheme() == "http" && !loopback {
            let w = ConfigWarning::PlainHttp {
                key,
                url: url.to_string(),
            };
            if !warnings.contains(&w) {
                warnings.push(w);
            }
        }
    }
    Ok(Loaded { config, warnings })
}

/// The drop-in files beside `file`, in the order they apply.
pub fn drop_in_files(file: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let dir = file
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(DROP_IN_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(ConfigError::ReadDropIns { path: dir, source }),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| ConfigError::ReadDropIns {
            path: dir.clone(),
            source,
        })?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn read_table(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    text.parse::<toml::Table>()
        .map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: e.message().to_owned(),
        })
}

fn merge(
    into: &mut toml::Table,
    from: toml::Table,
    prefix: &str,
    origin: &Origin,
    origins: &mut Origins,
) {
    for (k, v) in from {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match (into.get_mut(&k), v) {
            (Some(toml::Value::Table(dst)), toml::Value::Table(src)) => {
                origins.by_key.insert(path.clone(), origin.clone());
                merge(dst, src, &path, origin, origins);
            }
            (_, v) => {
                origins.record(&path, &v, origin);
                into.insert(k, v);
            }
        }
    }
}

/// Sets the dotted `key` to `value` (typed by the key table).
fn set_key(
    table: &mut toml::Table,
    key: &str,
    value: &str,
    origin: &Origin,
    origins: &mut Origins,
) -> Result<(), ConfigError> {
    let Some((_, kind)) = KEYS.iter().find(|(k, _)| *k == key) else {
        return Err(ConfigError::UnknownOverride {
            origin: origin.clone(),
            key: key.to_owned(),
        });
    };
    let value = match kind {
        Kind::Str => toml::Value::String(value.to_owned()),
        Kind::Int => match value.trim().parse::<i64>() {
            Ok(n) => toml::Value::Integer(n),
            Err(_) => {
                return Err(ConfigError::Invalid {
                    origin: origin.clone(),
                    key: key.to_owned(),
                    problem: format!("{value:?} is not an integer"),
                });
            }
        },
    };
    // Build the nested table {a: {b: value}} and merge it like a file.
    let mut parts: Vec<&str> = key.split('.').collect();
    let leaf = parts.pop().unwrap_or(key);
    let mut nested = toml::Table::new();
    nested.insert(leaf.to_owned(), value);
    for part in parts.into_iter().rev() {
        let mut outer = toml::Table::new();
        outer.insert(part.to_owned(), toml::Value::Table(nested));
        nested = outer;
    }
    merge(table, nested, "", origin, origins);
    Ok(())
}

/// Steps 1 and 2: the merged, unvalidated configuration and its warnings.
pub fn load_raw(sources: &Sources) -> Result<(RawConfig, Vec<ConfigWarning>), ConfigError> {
    let mut origins = Origins {
        main_file: sources.file.clone(),
        by_key: BTreeMap::new(),
    };
    let mut table = toml::Table::new();
    let mut warnings = Vec::new();

    let main = read_table(&sources.file)?;
    merge(
        &mut table,
        main,
        "",
        &Origin::File(sources.file.clone()),
        &mut origins,
    );
    for path in drop_in_files(&sources.file)? {
        let t = read_table(&path)?;
        merge(&mut table, t, "", &Origin::File(path), &mut origins);
    }

    let mut env: Vec<&(String, String)> = sources
        .env
        .iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX) && k != ENV_CONFIG_FILE)
        .collect();
    env.sort();
    for (var, value) in env {
        match KEYS.iter().find(|(k, _)| env_var_for(k) == *var) {
            Some((key, _)) => set_key(
                &mut table,
                key,
                value,
                &Origin::Env(var.clone()),
                &mut origins,
            )?,
            None => warnings.push(ConfigWarning::UnknownEnv { var: var.clone() }),
        }
    }
    for (key, value, flag) in &sources.flags {
        set_key(
            &mut table,
            key,
            value,
            &Origin::Flag(flag.clone()),
            &mut origins,
        )?;
    }

    let mut unknown = Vec::new();
    let de = toml::Value::Table(table);
    let result: Result<RawConfig, _> = serde_path_to_error::deserialize(
        serde_ignored::Deserializer::new(de, &mut |path: serde_ignored::Path<'_>| {
            unknown.push(path.to_string())
        }),
    );
    let mut raw = result.map_err(|e| {
        let key = e.path().to_string();
        ConfigError::Invalid {
            origin: origins.of(&key),
            problem: e.into_inner().message().to_owned(),
            key,
        }
    })?;
    for key in unknown {
        warnings.push(ConfigWarning::UnknownKey {
            origin: origins.of(&key),
            key,
        });
    }
    raw.origins = origins;
    Ok((raw, warnings))
}

impl RawConfig {
    fn invalid(&self, key: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origins.of(key),
            key: key.to_owned(),
            problem: problem.into(),
        }
    }

    fn missing(&self, key: &str) -> ConfigError {
        ConfigError::Missing {
            file: self.origins.main_file.clone(),
            key: key.to_owned(),
            env: env_var_for(key),
        }
    }

    fn required<'a>(&self, key: &str, v: &'a Option<String>) -> Result<&'a str, ConfigError> {
        v.as_deref().ok_or_else(|| self.missing(key))
    }

    fn url(&self, key: &str, s: &str) -> Result<Url, ConfigError> {
        let url =
            Url::parse(s).map_err(|e| self.invalid(key, format!("{s:?} is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(self.invalid(key, format!("{s:?} must be an http:// or https:// URL")));
        }
        if url.host().is_none() {
            return Err(self.invalid(key, format!("{s:?} has no host")));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(self.invalid(key, format!("{s:?} must not have a query or fragment")));
        }
        Ok(url)
    }

    fn millis(
        &self,
        key: &str,
        v: Option<u64>,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        match v {
            None => Ok(default),
            Some(0) => Err(self.invalid(key, "must be greater than 0")),
            Some(ms) => Ok(Duration::from_millis(ms)),
        }
    }
}

impl TryFrom<RawConfig> for Config {
    type Error = ConfigError;

    fn try_from(raw: RawConfig) -> Result<Config, ConfigError> {
        let data_dir = raw
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        if data_dir.as_os_str().is_empty() {
            return Err(raw.invalid("data_dir", "must not be empty"));
        }

        let id = raw.required("terminal.id", &raw.terminal.id)?;
        let id = TerminalId::new(id).map_err(|e| raw.invalid("terminal.id", e.to_string()))?;
        let session = raw.required("terminal.session_id", &raw.terminal.session_id)?;
        let session_id = SessionId::new(session)
            .map_err(|e| raw.invalid("terminal.session_id", e.to_string()))?;

        let b = &raw.backend;
        let url = raw.url("backend.url", raw.required("backend.url", &b.url)?)?;
        let terminal_api_url = match &b.terminal_api_url {
            Some(s) => raw.url("backend.terminal_api_url", s)?,
            None => url.clone(),
        };
        let ca_pem = match &b.ca_file {
            None => None,
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    raw.invalid(
                        "backend.ca_file",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                match reqwest::Certificate::from_pem_bundle(&pem) {
                    Ok(certs) if !certs.is_empty() => Some(pem),
                    _ => {
                        return Err(raw.invalid(
                            "backend.ca_file",
                            format!("{} holds no PEM certificate", path.display()),
                        ));
                    }
                }
            }
        };
        let backend = BackendConfig {
            url,
            terminal_api_url,
            ca_file: b.ca_file.clone(),
            ca_pem,
            connect_timeout: raw.millis(
                "backend.connect_timeout_ms",
                b.connect_timeout_ms,
                DEFAULT_CONNECT_TIMEOUT,
            )?,
            request_timeout: raw.millis(
                "backend.request_timeout_ms",
                b.request_timeout_ms,
                DEFAULT_REQUEST_TIMEOUT,
            )?,
        };

        let o = &raw.offline;
        let defaults = OfflineLimits::default();
        let floor_limit = match &o.floor_limit {
            None => defaults.floor_limit,
            Some(s) => Money::parse(s)
                .map_err(|e| raw.invalid("offline.floor_limit", format!("{s:?}: {e}")))?,
        };
        let max_total = match &o.max_total {
            None => defaults.max_total,
            Some(s) => Total::parse(s)
                .map_err(|e| raw.invalid("offline.max_total", format!("{s:?}: {e}")))?,
        };
        let max_count = match o.max_count {
            None => defaults.max_count,
            Some(n) => u32::try_from(n)
                .map_err(|_| raw.invalid("offline.max_count", format!("{n} is too large")))?,
        };
        let max_age = match o.max_age_hours {
            None => defaults.max_age,
            Some(h) if h <= 24 * 365 => Duration::from_secs(h * 3600),
            Some(h) => {
                return Err(
                    raw.invalid("offline.max_age_hours", format!("{h} is more than a year"))
                );
            }
        };
        let offline = OfflineLimits {
            floor_limit,
            max_total,
            max_count,
            max_age,
        };

        let h = &raw.hal;
        let reader = match &h.reader {
            None => ReaderSpec::Virtual,
            Some(s) => s
                .parse()
                .map_err(|e: String| raw.invalid("hal.reader", e))?,
        };
        let display = match &h.display {
            None => DisplaySpec::Virtual,
            Some(s) => s
                .parse()
                .map_err(|e: String| raw.invalid("hal.display", e))?,
        };
        let input = match &h.input {
            None => InputSpec::Virtual,
            Some(s) => s.parse().map_err(|e: String| raw.invalid("hal.input", e))?,
        };
        let addr_text = h
            .virtual_device
            .control_addr
            .as_deref()
            .unwrap_or(DEFAULT_CONTROL_ADDR);
        let virtual_control_addr: SocketAddr = addr_text.parse().map_err(|_| {
            raw.invalid(
                "hal.virtual.control_addr",
                format!("{addr_text:?} is not an IP address and port such as 127.0.0.1:7070"),
            )
        })?;
        if !virtual_control_addr.ip().is_loopback() {
            return Err(raw.invalid(
                "hal.virtual.control_addr",
                format!("{addr_text:?} is not a loopback address; the virtual device is served on loopback only"),
            ));
        }
        let hal = HalConfig {
            reader,
            display,
            input,
            virtual_control_addr,
        };

        let p = &raw.payment;
        let pd = PaymentTimings::default();
        let payment = PaymentTimings {
            tap_timeout: raw.millis("payment.tap_timeout_ms", p.tap_timeout_ms, pd.tap_timeout)?,
            auth_timeout: raw.millis(
                "payment.auth_timeout_ms",
                p.auth_timeout_ms,
                pd.auth_timeout,
            )?,
            result_hold: raw.millis("payment.result_hold_ms", p.result_hold_ms, pd.result_hold)?,
        };

        let s = &raw.sync;
        let sd = SyncConfig::default();
        let sync = SyncConfig {
            heartbeat_interval: raw.millis(
                "sync.heartbeat_interval_ms",
                s.heartbeat_interval_ms,
                sd.heartbeat_interval,
            )?,
            session_poll_interval: raw.millis(
                "sync.session_poll_interval_ms",
                s.session_poll_interval_ms,
                sd.session_poll_interval,
            )?,
            retry_initial: raw.millis(
                "sync.retry_initial_ms",
                s.retry_initial_ms,
                sd.retry_initial,
            )?,
            retry_max: raw.millis("sync.retry_max_ms", s.retry_max_ms, sd.retry_max)?,
        };
        if sync.retry_max < sync.retry_initial {
            return Err(raw.invalid(
                "sync.retry_max_ms",
                "must not be smaller than sync.retry_initial_ms",
            ));
        }

        let log_filter = raw
            .log
            .filter
            .clone()
            .unwrap_or_else(|| DEFAULT_LOG_FILTER.to_owned());
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&log_filter) {
            return Err(raw.invalid("log.filter", format!("{log_filter:?}: {e}")));
        }

        Ok(Config {
            data_dir,
            terminal: TerminalConfig { id, session_id },
            backend,
            offline,
            hal,
            payment,
            sync,
            log_filter,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
data_dir = "/tmp/pos"
[terminal]
id = "pos_3f1e2d_001"
session_id = "sess_1"
[backend]
url = "http://127.0.0.1:8080"
"#;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, text).unwrap();
        p
    }

    fn load_text(text: &str) -> Result<Loaded, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "config.toml", text);
        load(&Sources {
            file,
            ..Sources::default()
        })
    }

    fn invalid_key(text: &str) -> String {
        match load_text(text) {
            Err(e @ ConfigError::Invalid { .. }) => e.key().unwrap().to_owned(),
            other => panic!("expected an Invalid error, got {other:?}"),
        }
    }

    #[test]
    fn the_spec_example_loads_with_defaults() {
        let text = r#"
data_dir = "/var/lib/pos-agent"
[terminal]
id = "pos_3f1e2d_001"
session_id = "3f1e2d"
[backend]
url = "https://api.kler.africa"
[offline]
floor_limit = "50000.00"
max_total = "2000000.00"
max_count = 1000
max_age_hours = 72
[hal]
reader = "pn532:/dev/ttyS0"
display = "st7789:/dev/spidev0.0"
input = "evdev:/dev/input/event0"
[hal.virtual]
control_addr = "127.0.0.1:7070"
"#;
        let c = load_text(text).unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let c = c.config;
        assert_eq!(c.terminal.id.as_str(), "pos_3f1e2d_001");
        assert_eq!(c.backend.terminal_api_url, c.backend.url);
        assert_eq!(c.offline, OfflineLimits::default());
        assert_eq!(c.offline.floor_limit.to_wire(), "50000.00");
        assert_eq!(c.offline.max_total.to_wire(), "2000000.00");
        assert_eq!(
            c.hal.reader,
            ReaderSpec::Pn532 {
                device: "/dev/ttyS0".into()
            }
        );
        assert_eq!(
            c.hal.display,
            DisplaySpec::St7789 {
                device: "/dev/spidev0.0".into()
            }
        );
        assert_eq!(
            c.hal.input,
            InputSpec::Evdev {
                device: "/dev/input/event0".into()
            }
        );
        assert!(!c.hal.uses_virtual());
        assert_eq!(c.payment, PaymentTimings::default());
        assert_eq!(c.payment.tap_timeout, Duration::from_secs(60));
        assert_eq!(c.payment.auth_timeout, Duration::from_secs(8));
        assert_eq!(c.log_filter, "info");
    }

    #[test]
    fn plain_http_to_a_remote_host_is_warned_about() {
        let remote = MINIMAL.replace("http://127.0.0.1:8080", "http://api.example.com");
        let w = load_text(&remote).unwrap().warnings;
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(matches!(
            &w[0],
            ConfigWarning::PlainHttp {
                key: "backend.url",
                ..
            }
        ));
        let tls = MINIMAL.replace("http://127.0.0.1:8080", "https://api.example.com");
        assert!(load_text(&tls).unwrap().warnings.is_empty());
        assert!(load_text(MINIMAL).unwrap().warnings.is_empty());
    }

    #[test]
    fn offline_max_total_may_exceed_a_single_payments_maximum() {
        let text = format!("{MINIMAL}[offline]\nmax_total = \"50000000.00\"\n");
        let c = load_text(&text).unwrap().config;
        assert_eq!(c.offline.max_total, Total(5_000_000_000));
    }

    #[test]
    fn file_then_drop_ins_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "config.toml",
            &format!(
                "{MINIMAL}[payment]\ntap_timeout_ms = 1000\nauth_timeout_ms = 1000\nresult_hold_ms = 1000\n[sync]\nheartbeat_interval_ms = 1000\n"
            ),
        );
        // Lexical order: 10 before 20; the later one wins.
        write(
            dir.path(),
            "config.d/20-late.toml",
            "[payment]\nauth_timeout_ms = 2222\nresult_hold_ms = 2222\n",
        );
        write(
            dir.path(),
            "config.d/10-early.toml",
            "[payment]\ntap_timeout_ms = 1111\nauth_timeout_ms = 1111\nresult_hold_ms = 1111\n",
        );
        write(dir.path(), "config.d/ignored.txt", "this is not toml [");
        let sources = Sources {
            file: file.clone(),
            env: vec![
                ("POS_AGENT_PAYMENT_RESULT_HOLD_MS".into(), "3333".into()),
                ("POS_AGENT_SYNC_HEARTBEAT_INTERVAL_MS".into(), "3333".into()),
                (
                    "POS_AGENT_HAL_VIRTUAL_CONTROL_ADDR".into(),
                    "127.0.0.1:9999".into(),
                ),
                ("HOME".into(), "/root".into()),
            ],
            flags: Vec::new(),
        }
        .flag("sync.heartbeat_interval_ms", "4444", "--set");
        let loaded = load(&sources).unwrap();
        let c = loaded.config;
        assert_eq!(c.payment.tap_timeout, Duration::from_millis(1111));
        assert_eq!(c.payment.auth_timeout, Duration::from_millis(2222));
        assert_eq!(c.payment.result_hold, Duration::from_millis(3333));
        assert_eq!(c.sync.heartbeat_interval, Duration::from_millis(4444));
        assert_eq!(c.hal.virtual_control_addr.port(), 9999);
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);

        // The origin of each key is tracked for error messages.
        let (raw, _) = load_raw(&sources).unwrap();
        assert_eq!(raw.origins.of("terminal.id"), Origin::File(file));
        assert_eq!(
            raw.origins.of("payment.auth_timeout_ms"),
            Origin::File(dir.path().join("config.d/20-late.toml"))
        );
        assert_eq!(
            raw.origins.of("payment.result_hold_ms"),
            Origin::Env("POS_AGENT_PAYMENT_RESULT_HOLD_MS".into())
        );
        assert_eq!(
            raw.origins.of("sync.heartbeat_interval_ms"),
            Origin::Flag("--set".into())
        );
    }

    #[test]
    fn errors_name_the_drop_in_that_set_the_bad_value() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "config.toml", MINIMAL);
        let drop_in = write(
            dir.path(),
            "config.d/50-bad.toml",
            "[offline]\nfloor_limit = \"50,000.00\"\n",
        );
        let err = load(&Sources {
            file,
            ..Sources::default()
        })
        .unwrap_err();
        let msg = err.to_string();
        assert_eq!(err.key(), Some("offline.floor_limit"));
        assert!(msg.contains(&drop_in.display().to_string()), "{msg}");
        assert!(msg.contains("thousands"), "{msg}");
    }

    #[test]
    fn env_errors_name_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "config.toml", MINIMAL);
        let err = load(&Sources {
            file: file.clone(),
            env: vec![("POS_AGENT_OFFLINE_MAX_COUNT".into(), "many".into())],
            flags: Vec::new(),
        })
        .unwrap_err();
        assert_eq!(err.key(), Some("offline.max_count"));
        assert!(err.to_string().contains("POS_AGENT_OFFLINE_MAX_COUNT"));

        let err = load(&Sources {
            file,
            env: vec![("POS_AGENT_BACKEND_URL".into(), "ftp://x".into())],
            flags: Vec::new(),
        })
        .unwrap_err();
        assert_eq!(err.key(), Some("backend.url"));
        assert!(err.to_string().contains("POS_AGENT_BACKEND_URL"));
    }

    #[test]
    fn each_invalid_field_is_named() {
        let cases: &[(&str, &str)] = &[
            (
                "data_dir",
                "data_dir = \"\"\n[terminal]\nid = \"t\"\nsession_id = \"s\"\n[backend]\nurl = \"http://h\"\n",
            ),
            (
                "terminal.id",
                "[terminal]\nid = \"pos 1\"\nsession_id = \"s\"\n[backend]\nurl = \"http://h\"\n",
            ),
            (
                "terminal.session_id",
                "[terminal]\nid = \"t\"\nsession_id = \"../x\"\n[backend]\nurl = \"http://h\"\n",
            ),
            (
                "backend.url",
                "[terminal]\nid = \"t\"\nsession_id = \"s\"\n[backend]\nurl = \"not a url\"\n",
            ),
            (
                "backend.terminal_api_url",
                "[terminal]\nid = \"t\"\nsession_id = \"s\"\n[backend]\nurl = \"http://h\"\nterminal_api_url = \"mailto:x@y\"\n",
            ),
            (
                "backend.ca_file",
                "[terminal]\nid = \"t\"\nsession_id = \"s\"\n[backend]\nurl = \"http://h\"\nca_file = \"/nonexistent/ca.pem\"\n",
            ),
            (
                "backend.connect_timeout_ms",
                "[terminal]\nid = \"t\"\nsession_id = \"s\"\n[backend]\nurl = \"http://h\"\nconnect_timeout_ms = 0\n",
            ),
            (
                "terminal.id",
                "[terminal]\nid = 5\nsession_id = \"s\"\n[backend]\nurl = \"http://h\"\n",
            ),
        ];
        for (key, text) in cases {
            assert_eq!(&invalid_key(text), key, "config:\n{text}");
        }
        let bad_values: &[(&str, &str)] = &[
            ("offline.floor_limit", "[offline]\nfloor_limit = 50000.0\n"),
            (
                "offline.floor_limit",
                "[offline]\nfloor_limit = \"50000\"\n",
            ),
            ("offline.max_total", "[offline]\nmax_total = \"-1.00\"\n"),
            ("offline.max_count", "[offline]\nmax_count = -1\n"),
            ("offline.max_count", "[offline]\nmax_count = 99999999999\n"),
            (
                "offline.max_age_hours",
                "[offline]\nmax_age_hours = 100000\n",
            ),
            ("hal.reader", "[hal]\nreader = \"pn532\"\n"),
            ("hal.reader", "[hal]\nreader = \"magic\"\n"),
            ("hal.display", "[hal]\ndisplay = \"fbdev:fb0\"\n"),
            ("hal.input", "[hal]\ninput = \"gpio:\"\n"),
            (
                "hal.virtual.control_addr",
                "[hal.virtual]\ncontrol_addr = \"0.0.0.0:7070\"\n",
            ),
            (
                "hal.virtual.control_addr",
                "[hal.virtual]\ncontrol_addr = \"192.168.1.5:7070\"\n",
            ),
            (
                "hal.virtual.control_addr",
                "[hal.virtual]\ncontrol_addr = \"localhost\"\n",
            ),
            (
                "payment.auth_timeout_ms",
                "[payment]\nauth_timeout_ms = 0\n",
            ),
            (
                "sync.retry_max_ms",
                "[sync]\nretry_initial_ms = 5000\nretry_max_ms = 10\n",
            ),
            ("log.filter", "[log]\nfilter = \"info,[[[\"\n"),
        ];
        for (key, extra) in bad_values {
            let text = format!("{MINIMAL}{extra}");
            assert_eq!(&invalid_key(&text), key, "config:\n{text}");
        }
    }

    #[test]
    fn missing_required_keys_are_named_with_their_variable() {
        let err = load_text("[terminal]\nid = \"t\"\n[backend]\nurl = \"http://h\"\n").unwrap_err();
        assert!(matches!(err, ConfigError::Missing { .. }), "{err:?}");
        assert_eq!(err.key(), Some("terminal.session_id"));
        assert!(err.to_string().contains("POS_AGENT_TERMINAL_SESSION_ID"));
        let err = load_text("[terminal]\nid = \"t\"\nsession_id = \"s\"\n").unwrap_err();
        assert_eq!(err.key(), Some("backend.url"));
    }

    #[test]
    fn unknown_keys_are_accepted_with_a_warning() {
        let text =
            format!("{MINIMAL}colour = \"blue\"\n[hal.virtual]\nextra = 1\n[vendor]\nx = 1\n");
        let loaded = load_text(&text).unwrap();
        let keys: Vec<String> = loaded
            .warnings
            .iter()
            .map(|w| match w {
                ConfigWarning::UnknownKey { key, .. } => key.clone(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        // MINIMAL ends inside [backend], so `colour` lands there.
        assert!(keys.contains(&"backend.colour".to_owned()), "{keys:?}");
        assert!(keys.contains(&"hal.virtual.extra".to_owned()), "{keys:?}");
        assert!(keys.iter().any(|k| k.starts_with("vendor")), "{keys:?}");
        assert!(loaded.warnings[0].to_string().contains("ignored"));
    }

    #[test]
    fn unknown_env_vars_warn_and_unknown_flags_fail() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "config.toml", MINIMAL);
        let loaded = load(&Sources {
            file: file.clone(),
            env: vec![
                ("POS_AGENT_NOPE".into(), "1".into()),
                (ENV_CONFIG_FILE.into(), "/x".into()),
            ],
            flags: Vec::new(),
        })
        .unwrap();
        assert_eq!(
            loaded.warnings,
            vec![ConfigWarning::UnknownEnv {
                var: "POS_AGENT_NOPE".into()
            }]
        );
        let err = load(
            &Sources {
                file,
                ..Sources::default()
            }
            .flag("nope.nothing", "1", "--set"),
        )
        .unwrap_err();
        assert!(
            matches!(err, ConfigError::UnknownOverride { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn syntax_errors_and_missing_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "config.toml", "[terminal\nid = 1");
        let err = load(&Sources {
            file: file.clone(),
            ..Sources::default()
        })
        .unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { .. }));
        assert!(err.to_string().contains(&file.display().to_string()));
        let missing = dir.path().join("absent.toml");
        let err = load(&Sources {
            file: missing.clone(),
            ..Sources::default()
        })
        .unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }));
        assert!(err.to_string().contains(&missing.display().to_string()));
    }

    /// A self-signed P-256 certificate (test fixture, no private key kept).
    const TEST_CA: &str = "-----BEGIN CERTIFICATE-----\nMIIBjzCCATWgAwIBAgIUVVtrTkCfcCs512SEO1bQQOiVkWcwCgYIKoZIzj0EAwIw\nHDEaMBgGA1UEAwwRcG9zLWFnZW50IHRlc3QgQ0EwIBcNMjYxMTIxMDk1NTA0WhgP\nMjEyNjEwMjgwOTU1MDRaMBwxGjAYBgNVBAMMEXBvcy1hZ2VudCB0ZXN0IENBMFkw\nEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEDQrw7JM3UwDeQ/DupahIuU+ZqpFnBX7R\nAwqkveRo6jqc4ByotlHBa5q6kxJ6NO8eqMzobABLun9HDfp1GchJ86NTMFEwHQYD\nVR0OBBYEFNNXLGTtY6zlaqX0vlqCQIoiwIPpMB8GA1UdIwQYMBaAFNNXLGTtY6zl\naqX0vlqCQIoiwIPpMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIh\nANghjwSK9MjVLDm67SSZI8/+cCHu/grji7+OdTj00ajOAiA4eKveeja/D4Ga4KxR\nHnhNLVSE8REj8RsaXasxHawsig==\n-----END CERTIFICATE-----\n";

    #[test]
    fn a_ca_file_with_a_certificate_is_loaded_and_used() {
        let dir = tempfile::tempdir().unwrap();
        let ca = write(dir.path(), "ca.pem", TEST_CA);
        let text = format!("{MINIMAL}ca_file = {:?}\n", ca.display().to_string());
        let c = load_text(&text).unwrap().config;
        assert_eq!(c.backend.ca_file.as_deref(), Some(ca.as_path()));
        assert_eq!(c.backend.ca_pem.as_deref(), Some(TEST_CA.as_bytes()));
        // The client accepts it as an extra trust anchor.
        assert!(
            crate::client::OrgClient::new(&c.backend, proto::signing::Secret::new("k")).is_ok()
        );
    }

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let ca = write(dir.path(), "ca.pem", "not a certificate");
        let text = format!("{MINIMAL}ca_file = {:?}\n", ca.display().to_string());
        // MINIMAL ends inside [backend], so ca_file lands there.
        assert_eq!(invalid_key(&text), "backend.ca_file");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

        /// Whatever subset of the sources sets a key, the last one in the
        /// order file < drop-ins (lexical) < env < flag wins.
        #[test]
        fn the_last_source_that_sets_a_key_wins(
            in_file in proptest::option::of(1u64..100_000),
            drop_ins in proptest::collection::vec(proptest::option::of(1u64..100_000), 0..3),
            in_env in proptest::option::of(1u64..100_000),
            in_flag in proptest::option::of(1u64..100_000),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut main = MINIMAL.to_owned();
            if let Some(v) = in_file {
                main.push_str(&format!("[payment]\ntap_timeout_ms = {v}\n"));
            }
            let file = write(dir.path(), "config.toml", &main);
            for (i, v) in drop_ins.iter().enumerate() {
                let text = match v {
                    Some(v) => format!("[payment]\ntap_timeout_ms = {v}\n"),
                    None => "[payment]\nauth_timeout_ms = 1\n".to_owned(),
                };
                write(dir.path(), &format!("config.d/{i:02}.toml"), &text);
            }
            let mut sources = Sources { file, ..Sources::default() };
            if let Some(v) = in_env {
                sources.env.push(("POS_AGENT_PAYMENT_TAP_TIMEOUT_MS".into(), v.to_string()));
            }
            if let Some(v) = in_flag {
                sources = sources.flag("payment.tap_timeout_ms", v.to_string(), "--set");
            }
            let expected = in_flag
                .or(in_env)
                .or(drop_ins.iter().rev().flatten().next().copied())
                .or(in_file)
                .map(Duration::from_millis)
                .unwrap_or(PaymentTimings::default().tap_timeout);
            let c = load(&sources).unwrap().config;
            proptest::prop_assert_eq!(c.payment.tap_timeout, expected);
        }
    }

    #[test]
    fn every_key_maps_to_an_env_var() {
        assert_eq!(
            env_var_for("hal.virtual.control_addr"),
            "POS_AGENT_HAL_VIRTUAL_CONTROL_ADDR"
        );
        assert_eq!(env_var_for("data_dir"), "POS_AGENT_DATA_DIR");
        assert_eq!(env_var_for("backend.url"), "POS_AGENT_BACKEND_URL");
        let vars: std::collections::BTreeSet<String> = known_keys().map(env_var_for).collect();
        assert_eq!(vars.len(), KEYS.len(), "two keys share a variable");
    }
}
