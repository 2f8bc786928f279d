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
//!
//! The parts: `sources.rs` (steps 1 and 2: files, drop-ins, environment,
//! flags, merge), `raw.rs` (the deserialized all-`Option` structs),
//! `validate.rs` (step 3), `specs.rs` (the device specs of `[hal]`) and
//! `error.rs` (errors, warnings, origins). Everything is re-exported here.

use std::path::PathBuf;
use std::time::Duration;

use proto::{SessionId, TerminalId};
use reqwest::Url;

mod error;
mod raw;
mod sources;
mod specs;
#[cfg(test)]
mod test_support;
mod validate;

/// The `[offline]` section is the terminal core's own type (same defaults);
/// `validate.rs` fills it from the raw keys.
pub use crate::core::OfflineLimits;
pub use error::{ConfigError, ConfigWarning, Origin};
pub use raw::{
    RawBackend, RawConfig, RawHal, RawHalVirtual, RawLog, RawMetrics, RawOffline, RawPayment,
    RawSync, RawTerminal,
};
pub use sources::{Origins, Sources, drop_in_files, env_var_for, known_keys, load_raw};
pub use specs::{DisplaySpec, HalConfig, InputSpec, ReaderSpec};

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

/// A validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub data_dir: PathBuf,
    pub terminal: TerminalConfig,
    pub backend: BackendConfig,
    /// Offline limits (SPEC 5.6); the heartbeat may tighten them at run time.
    pub offline: OfflineLimits,
    pub hal: HalConfig,
    pub payment: PaymentTimings,
    pub sync: SyncConfig,
    /// `EnvFilter` directives; `RUST_LOG` wins when set.
    pub log_filter: String,
    /// `[metrics] listen`: where `GET /metrics` is served (None: off).
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl Config {
    /// `<data_dir>/ledger.sqlite`.
    pub fn ledger_path(&self) -> PathBuf {
        self.data_dir.join(LEDGER_FILE)
    }
}

/// `[terminal]`: both optional (SPEC 8.1). A paired or provisioned
/// terminal keeps its ids in the data directory (`credentials.json`);
/// when the config gives them too they must match ([`crate::provision`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TerminalConfig {
    pub id: Option<TerminalId>,
    pub session_id: Option<SessionId>,
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

/// Timers of the payment flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentTimings {
    /// How long the tap-card screen waits (SPEC 5.2; default 60 s).
    pub tap_timeout: Duration,
    /// How long an online authorization may take (SPEC 5.5; default 8 s).
    pub auth_timeout: Duration,
    /// How long a result screen stays up (default 4 s).
    pub result_hold: Duration,
    /// How long a payment by bank transfer waits for the money (SPEC 7.7;
    /// default 10 min).
    pub transfer_timeout: Duration,
}

impl Default for PaymentTimings {
    fn default() -> Self {
        PaymentTimings {
            tap_timeout: Duration::from_secs(60),
            auth_timeout: Duration::from_secs(8),
            result_hold: Duration::from_secs(4),
            transfer_timeout: Duration::from_secs(600),
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
    /// When the link returns, the drain starts after a random delay up to
    /// this (default 5 s; 0: at once), so the terminals of a venue do not
    /// all arrive in the same second (SPEC 5.7).
    pub link_return_spread: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            heartbeat_interval: Duration::from_secs(10),
            session_poll_interval: Duration::from_secs(60),
            retry_initial: Duration::from_millis(500),
            retry_max: Duration::from_secs(60),
            link_return_spread: Duration::from_secs(5),
        }
    }
}

/// Default log filter when neither `RUST_LOG` nor `log.filter` is set.
pub const DEFAULT_LOG_FILTER: &str = "info";

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
    // Only reachable with `backend.allow_insecure_http = true`: validation
    // refuses plain http to a remote host otherwise.
    for (key, url) in urls {
        if url.scheme() == "http" && !validate::is_loopback(url) {
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

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn plain_http_to_a_remote_host_is_refused_unless_allowed_and_then_warned_about() {
        let remote = MINIMAL.replace("http://127.0.0.1:8080", "http://api.example.com");
        let err = load_text(&remote).unwrap_err();
        assert_eq!(err.key(), Some("backend.url"), "{err}");
        assert!(err.to_string().contains("allow_insecure_http"), "{err}");
        let api = format!("{MINIMAL}terminal_api_url = \"http://10.0.0.9\"\n");
        let err = load_text(&api).unwrap_err();
        assert_eq!(err.key(), Some("backend.terminal_api_url"), "{err}");
        // A loopback backend (the simulator, a local proxy) is fine as is.
        for host in ["http://localhost:1", "http://[::1]:1", "http://127.0.0.2:1"] {
            let local = MINIMAL.replace("http://127.0.0.1:8080", host);
            assert!(load_text(&local).is_ok(), "{host}");
        }

        let remote = format!("{remote}allow_insecure_http = true\n");
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
}
