//! Step 3 of loading: `TryFrom<RawConfig> for Config`, every value checked
//! at this boundary and any failure a [`ConfigError`] naming the source and
//! the key; the defaults of optional keys.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use proto::{Money, SessionId, TerminalId, Total};
use reqwest::Url;

use super::{
    BackendConfig, Config, ConfigError, DEFAULT_DATA_DIR, DEFAULT_LOG_FILTER, DisplaySpec,
    HalConfig, InputSpec, OfflineLimits, PaymentTimings, RawConfig, ReaderSpec, SyncConfig,
    TerminalConfig, env_var_for,
};

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const DEFAULT_CONTROL_ADDR: &str = "127.0.0.1:7070";
/// The longest `offline.max_age_hours` accepted: a year.
const MAX_OFFLINE_AGE_HOURS: u64 = 24 * 365;

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

    /// The `[offline]` section as the core's limits: unset keys keep the
    /// core's defaults (SPEC 5.6), `max_age_hours` becomes milliseconds.
    fn offline_limits(&self) -> Result<OfflineLimits, ConfigError> {
        let o = &self.offline;
        let defaults = OfflineLimits::default();
        let floor_limit = match &o.floor_limit {
            None => defaults.floor_limit,
            Some(s) => Money::parse(s)
                .map_err(|e| self.invalid("offline.floor_limit", format!("{s:?}: {e}")))?,
        };
        let max_total = match &o.max_total {
            None => defaults.max_total,
            Some(s) => Total::parse(s)
                .map_err(|e| self.invalid("offline.max_total", format!("{s:?}: {e}")))?,
        };
        let max_count = match o.max_count {
            None => defaults.max_count,
            Some(n) => u32::try_from(n)
                .map_err(|_| self.invalid("offline.max_count", format!("{n} is too large")))?,
        };
        let max_age_ms = match o.max_age_hours {
            None => defaults.max_age_ms,
            Some(h) if h <= MAX_OFFLINE_AGE_HOURS => h * 3600 * 1000,
            Some(h) => {
                return Err(
                    self.invalid("offline.max_age_hours", format!("{h} is more than a year"))
                );
            }
        };
        Ok(OfflineLimits {
            floor_limit,
            max_total,
            max_count,
            max_age_ms,
        })
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

/// Whether `url`'s host is `localhost` or a loopback address.
pub(super) fn is_loopback(url: &Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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

        // Optional (SPEC 8.1): a paired or provisioned terminal keeps its
        // ids in the data directory; given here they must match those.
        let id = match &raw.terminal.id {
            Some(id) => {
                Some(TerminalId::new(id).map_err(|e| raw.invalid("terminal.id", e.to_string()))?)
            }
            None => None,
        };
        let session_id = match &raw.terminal.session_id {
            Some(s) => Some(
                SessionId::new(s).map_err(|e| raw.invalid("terminal.session_id", e.to_string()))?,
            ),
            None => None,
        };

        let b = &raw.backend;
        let url = raw.url("backend.url", raw.required("backend.url", &b.url)?)?;
        let terminal_api_url = match &b.terminal_api_url {
            Some(s) => raw.url("backend.terminal_api_url", s)?,
            None => url.clone(),
        };
        if b.allow_insecure_http != Some(true) {
            for (key, u) in [
                ("backend.url", &url),
                ("backend.terminal_api_url", &terminal_api_url),
            ] {
                if u.scheme() == "http" && !is_loopback(u) {
                    return Err(raw.invalid(
                        key,
                        format!(
                            "{u} is plain http to a host that is not loopback: the terminal's \
                             credentials and payments would cross the network unencrypted; use \
                             https:// (or set backend.allow_insecure_http = true on a closed test network)"
                        ),
                    ));
                }
            }
        }
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

        let offline = raw.offline_limits()?;

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
        let printer = match &h.printer {
            None => hal::drivers::PrinterSpec::None,
            Some(s) => s.parse().map_err(|e: hal::drivers::PrinterSpecError| {
                raw.invalid("hal.printer", e.to_string())
            })?,
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
            printer,
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
            transfer_timeout: raw.millis(
                "payment.transfer_timeout_ms",
                p.transfer_timeout_ms,
                pd.transfer_timeout,
            )?,
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
            link_return_spread: match s.link_return_spread_ms {
                None => sd.link_return_spread,
                Some(ms) if ms <= 60_000 => Duration::from_millis(ms),
                Some(_) => {
                    return Err(raw.invalid(
                        "sync.link_return_spread_ms",
                        "must be at most 60000 (one minute)",
                    ));
                }
            },
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

        let metrics_listen = match &raw.metrics.listen {
            None => None,
            Some(text) => Some(text.parse::<SocketAddr>().map_err(|_| {
                raw.invalid(
                    "metrics.listen",
                    format!("{text:?} is not an IP address and port such as 127.0.0.1:9464"),
                )
            })?),
        };

        Ok(Config {
            data_dir,
            terminal: TerminalConfig { id, session_id },
            backend,
            offline,
            hal,
            payment,
            sync,
            log_filter,
            metrics_listen,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proto::Total;

    use crate::config::test_support::*;
    use crate::config::*;

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
        assert_eq!(
            c.terminal.id.as_ref().map(|t| t.as_str()),
            Some("pos_3f1e2d_001")
        );
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
        assert_eq!(c.payment.transfer_timeout, Duration::from_secs(600));
        assert_eq!(c.log_filter, "info");
        assert_eq!(c.metrics_listen, None, "metrics are off unless configured");
    }

    #[test]
    fn metrics_listen_from_the_file_or_the_environment() {
        let text = format!("{MINIMAL}[metrics]\nlisten = \"127.0.0.1:9464\"\n");
        let c = load_text(&text).unwrap().config;
        assert_eq!(c.metrics_listen, Some("127.0.0.1:9464".parse().unwrap()));
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "config.toml", MINIMAL);
        let sources = Sources {
            file,
            env: vec![(env_var_for("metrics.listen"), "[::1]:9100".into())],
            flags: Vec::new(),
        };
        assert_eq!(env_var_for("metrics.listen"), "POS_AGENT_METRICS_LISTEN");
        let c = load(&sources).unwrap().config;
        assert_eq!(c.metrics_listen, Some("[::1]:9100".parse().unwrap()));
        let bad = Sources {
            env: vec![(env_var_for("metrics.listen"), "nowhere".into())],
            ..sources
        };
        let err = load(&bad).unwrap_err();
        assert_eq!(err.key(), Some("metrics.listen"), "{err}");
        assert!(
            err.to_string().contains("POS_AGENT_METRICS_LISTEN"),
            "{err}"
        );
    }

    #[test]
    fn offline_keys_fill_the_core_limits() {
        let text = format!(
            "{MINIMAL}[offline]\nfloor_limit = \"100.00\"\nmax_count = 5\nmax_age_hours = 2\n"
        );
        let c = load_text(&text).unwrap().config;
        let core_defaults = crate::core::OfflineLimits::default();
        assert_eq!(
            c.offline,
            crate::core::OfflineLimits {
                floor_limit: proto::Money::parse("100.00").unwrap(),
                max_total: core_defaults.max_total,
                max_count: 5,
                max_age_ms: 2 * 3600 * 1000,
            }
        );
        // Unset keys keep the core's defaults.
        assert_eq!(load_text(MINIMAL).unwrap().config.offline, core_defaults);
        let text = format!("{MINIMAL}[offline]\nmax_age_hours = 8760\n");
        assert_eq!(
            load_text(&text).unwrap().config.offline.max_age_ms,
            8760 * 3600 * 1000
        );
    }

    #[test]
    fn offline_max_total_may_exceed_a_single_payments_maximum() {
        let text = format!("{MINIMAL}[offline]\nmax_total = \"50000000.00\"\n");
        let c = load_text(&text).unwrap().config;
        assert_eq!(c.offline.max_total, Total(5_000_000_000));
    }

    #[test]
    fn each_invalid_field_is_named() {
        let cases: &[(&str, &str)] = &[
            (
                "data_dir",
                "data_dir = \"\"\n[terminal]\nid = \"t\"\nsession_id = \"s\"\n[backend]\nurl = \"https://h\"\n",
            ),
            (
                "terminal.id",
                "[terminal]\nid = \"pos 1\"\nsession_id = \"s\"\n[backend]\nurl = \"https://h\"\n",
            ),
            (
                "terminal.session_id",
                "[terminal]\nid = \"t\"\nsession_id = \"../x\"\n[backend]\nurl = \"https://h\"\n",
            ),
            (
                "backend.url",
                "[terminal]\nid = \"t\"\nsession_id = \"s\"\n[backend]\nurl = \"not a url\"\n",
            ),
            (
                "backend.terminal_api_url",
                "[terminal]\nid = \"t\"\nsession_id = \"s\"\n[backend]\nurl = \"https://h\"\nterminal_api_url = \"mailto:x@y\"\n",
            ),
            (
                "backend.ca_file",
                "[terminal]\nid = \"t\"\nsession_id = \"s\"\n[backend]\nurl = \"https://h\"\nca_file = \"/nonexistent/ca.pem\"\n",
            ),
            (
                "backend.connect_timeout_ms",
                "[terminal]\nid = \"t\"\nsession_id = \"s\"\n[backend]\nurl = \"https://h\"\nconnect_timeout_ms = 0\n",
            ),
            (
                "terminal.id",
                "[terminal]\nid = 5\nsession_id = \"s\"\n[backend]\nurl = \"https://h\"\n",
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
            ("hal.printer", "[hal]\nprinter = \"thermal\"\n"),
            ("hal.printer", "[hal]\nprinter = \"escpos:lp0\"\n"),
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
            ("metrics.listen", "[metrics]\nlisten = \"9464\"\n"),
            ("metrics.listen", "[metrics]\nlisten = \"localhost:9464\"\n"),
            ("metrics.listen", "[metrics]\nlisten = 9464\n"),
        ];
        for (key, extra) in bad_values {
            let text = format!("{MINIMAL}{extra}");
            assert_eq!(&invalid_key(&text), key, "config:\n{text}");
        }
    }

    #[test]
    fn missing_required_keys_are_named_with_their_variable() {
        let err = load_text("[terminal]\nid = \"t\"\nsession_id = \"s\"\n").unwrap_err();
        assert!(matches!(err, ConfigError::Missing { .. }), "{err:?}");
        assert_eq!(err.key(), Some("backend.url"));
        assert!(err.to_string().contains("POS_AGENT_BACKEND_URL"));
    }

    #[test]
    fn a_fresh_board_needs_no_terminal_ids() {
        // SPEC 8.1: data_dir, [backend] url and [hal] are enough; the ids
        // come with pairing (or provisioning) into the data directory.
        let c = load_text(
            "data_dir = \"/tmp/pos\"\n[backend]\nurl = \"http://127.0.0.1:8080\"\n[hal]\nreader = \"virtual\"\n",
        )
        .unwrap()
        .config;
        assert_eq!(c.terminal, TerminalConfig::default());
        let c = load_text("[terminal]\nid = \"t\"\n[backend]\nurl = \"https://h\"\n")
            .unwrap()
            .config;
        assert_eq!(c.terminal.id.as_ref().map(|t| t.as_str()), Some("t"));
        assert_eq!(c.terminal.session_id, None);
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
}
