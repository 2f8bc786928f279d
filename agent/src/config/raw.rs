//! The configuration as written: all-`Option` structs deserialized from the
//! merged TOML table, nothing validated yet (see `validate.rs`).

use std::path::PathBuf;

use serde::Deserialize;

use super::Origins;

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
    #[serde(default)]
    pub metrics: RawMetrics,
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
    pub allow_insecure_http: Option<bool>,
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
    /// `virtual`, `escpos:/dev/usb/lp0`, `escpos-serial:/dev/ttyS1:19200`
    /// or `none` (default).
    pub printer: Option<String>,
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
    pub transfer_timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawSync {
    pub heartbeat_interval_ms: Option<u64>,
    pub session_poll_interval_ms: Option<u64>,
    pub retry_initial_ms: Option<u64>,
    pub retry_max_ms: Option<u64>,
    pub link_return_spread_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawLog {
    pub filter: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawMetrics {
    /// `IP:port` to serve `GET /metrics` on; off when absent.
    pub listen: Option<String>,
}
