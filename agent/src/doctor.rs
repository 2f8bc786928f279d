//! `pos-agent doctor`: config, storage, credentials, clock, backend and
//! devices, one [`Check`] each. [`run`] hands every check to its caller as
//! soon as it is done (the command prints it as a line), so a slow device
//! does not hold back the lines before it.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use crate::client::SignedClient;
use crate::config::{self, Config, ConfigError, InputSpec, ReaderSpec};
use crate::provision::{self, DeviceIdentity, ProvisionError};

/// Less free space than this in the data directory fails the storage check.
pub const MIN_FREE_BYTES: u64 = 64 * 1024 * 1024;

/// How long a device or the backend may take to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// One check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

impl Check {
    pub fn new(ok: bool, name: &'static str, detail: impl Into<String>) -> Self {
        Check {
            name,
            ok,
            detail: detail.into(),
        }
    }

    /// `{check, ok, detail}`, one element of `doctor --json`'s `checks`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "check": self.name, "ok": self.ok, "detail": self.detail })
    }
}

/// `doctor --json`: `{ok, checks: [{check, ok, detail}, ...]}`.
pub fn to_json(checks: &[Check]) -> serde_json::Value {
    serde_json::json!({
        "ok": checks.iter().all(|c| c.ok),
        "checks": checks.iter().map(Check::to_json).collect::<Vec<_>>(),
    })
}

/// The doctor line: `ok  ` or `FAIL`, the name padded to 12, the detail.
impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:<12} {}",
            if self.ok { "ok  " } else { "FAIL" },
            self.name,
            self.detail
        )
    }
}

/// The configuration as loaded from `path` (and what it warned about).
pub fn check_config(path: &Path, loaded: &Result<config::Loaded, ConfigError>) -> Check {
    match loaded {
        Ok(l) => {
            let detail = if l.warnings.is_empty() {
                format!("{} valid", path.display())
            } else {
                format!(
                    "{} valid; {}",
                    path.display(),
                    l.warnings
                        .iter()
                        .map(|w| w.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            };
            Check::new(true, "config", detail)
        }
        Err(e) => config_failed(e),
    }
}

/// The configuration could not be read or is invalid.
pub fn config_failed(e: &ConfigError) -> Check {
    Check::new(false, "config", e.to_string())
}

/// Every check after the configuration's, in order, each handed to `report`
/// when done. `Ok(true)` when all passed; `Err` when no async runtime could
/// be started for the checks that need one (the checks before it were
/// reported).
pub fn run(
    config: &Config,
    credentials_directory: Option<&Path>,
    report: &mut dyn FnMut(&Check),
) -> std::io::Result<bool> {
    let mut all_ok = true;
    let mut note = |c: Check| {
        report(&c);
        c.ok
    };
    for c in check_storage(&config.data_dir, &config.ledger_path()) {
        all_ok &= note(c);
    }
    let identity = provision::load_identity(config, credentials_directory);
    all_ok &= note(check_credentials(&identity));
    let now = time::OffsetDateTime::now_utc();
    let before_build = crate::client::clock_before_build(
        std::time::SystemTime::now(),
        crate::client::build_epoch(),
    );
    all_ok &= note(check_clock(now, before_build));
    all_ok &= note(match &identity {
        Ok(id) => check_backend(config, id)?,
        Err(_) => Check::new(false, "backend", "skipped: no credentials"),
    });
    all_ok &= note(check_reader(config)?);
    all_ok &= note(check_display(config)?);
    all_ok &= note(check_input(config)?);
    all_ok &= note(check_printer(config)?);
    Ok(all_ok)
}

/// The receipt printer (SPEC 7.4): absent is fine (receipts are digital);
/// a configured one must exist and answer, when it can answer at all.
pub fn check_printer(config: &Config) -> std::io::Result<Check> {
    use hal::Printer;
    use hal::drivers::PrinterSpec;
    match &config.hal.printer {
        PrinterSpec::None => {
            return Ok(Check::new(
                true,
                "printer",
                "none configured (receipts are digital only)",
            ));
        }
        PrinterSpec::Virtual => {
            return Ok(Check::new(
                true,
                "printer",
                "virtual printer (GET /receipts)",
            ));
        }
        PrinterSpec::EscPosFile { .. } | PrinterSpec::EscPosSerial { .. } => {}
    }
    let status = runtime()?.block_on(async {
        let mut p = hal::drivers::AnyPrinter::open(&config.hal.printer, None)?;
        let described = p.describe();
        p.status().await.map(|s| (described, s))
    });
    Ok(match status {
        Ok((what, s)) if !s.online => Check::new(false, "printer", format!("{what}: offline")),
        Ok((what, s)) if s.paper == hal::Paper::Out => {
            Check::new(false, "printer", format!("{what}: out of paper"))
        }
        Ok((what, s)) if s.cover_open => {
            Check::new(false, "printer", format!("{what}: cover open"))
        }
        Ok((what, s)) => Check::new(
            true,
            "printer",
            format!("{what}: ready, paper {}", s.paper.as_str()),
        ),
        Err(e) => Check::new(false, "printer", e.to_string()),
    })
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// The data directory is private (0700: it holds the ledger, the
/// credentials and the card key), takes a file and has room; the ledger, if
/// there is one, passes SQLite's integrity check. Two checks: `storage`,
/// `ledger`.
pub fn check_storage(data_dir: &Path, ledger: &Path) -> Vec<Check> {
    use std::os::unix::fs::MetadataExt;
    let dir = data_dir;
    let probe = dir.join(format!(".doctor-{}", uuid::Uuid::new_v4().simple()));
    let writable = std::fs::write(&probe, b"probe").and_then(|()| std::fs::remove_file(&probe));
    let mode = std::fs::metadata(dir).map(|m| m.mode() & 0o777);
    let storage = match writable {
        Ok(()) if mode.as_ref().is_ok_and(|m| m & 0o077 != 0) => Check::new(
            false,
            "storage",
            format!(
                "{} is accessible to group or others (mode {:o}); it must be 0700: chmod 0700 {}",
                dir.display(),
                mode.as_ref().copied().unwrap_or_default(),
                dir.display()
            ),
        ),
        Ok(()) => {
            let free = free_bytes(dir);
            let enough = free.is_none_or(|b| b >= MIN_FREE_BYTES);
            Check::new(
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
        Err(e) => Check::new(
            false,
            "storage",
            format!("{} not writable: {e}", dir.display()),
        ),
    };
    let ledger_check = if ledger.exists() {
        let r = store::Store::open_read_only(ledger).and_then(|s| s.check_integrity());
        match r {
            Ok(()) => Check::new(true, "ledger", format!("{} integrity ok", ledger.display())),
            Err(e) => Check::new(false, "ledger", format!("{}: {e}", ledger.display())),
        }
    } else {
        Check::new(
            true,
            "ledger",
            format!("{} not created yet", ledger.display()),
        )
    };
    vec![storage, ledger_check]
}

/// Free bytes for an unprivileged user on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let s = rustix::fs::statvfs(dir).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

/// The terminal's credentials could be loaded.
pub fn check_credentials(identity: &Result<DeviceIdentity, ProvisionError>) -> Check {
    match identity {
        Ok(id) => Check::new(
            true,
            "credentials",
            format!(
                "terminal {} session {} provisioned {}",
                id.terminal_id, id.session_id, id.provisioned_at
            ),
        ),
        Err(e) => Check::new(false, "credentials", e.to_string()),
    }
}

/// The clock as read (`now`), failing when it is before the build
/// (`before_build`, from [`crate::client::clock_before_build`]).
pub fn check_clock(now: time::OffsetDateTime, before_build: Option<String>) -> Check {
    Check::new(
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
    )
}

/// A signed request for the session is accepted.
pub fn check_backend(config: &Config, id: &DeviceIdentity) -> std::io::Result<Check> {
    let client = match SignedClient::new(
        &config.backend,
        id.terminal_id.clone(),
        id.credentials.clone(),
    ) {
        Ok(c) => c,
        Err(e) => return Ok(Check::new(false, "backend", e.to_string())),
    };
    let r = runtime()?.block_on(client.session(&id.session_id));
    Ok(match r {
        Ok(s) => Check::new(
            true,
            "backend",
            format!(
                "{} reachable; signed request accepted (clock within 300 s); session {}",
                config.backend.terminal_api_url, s.status
            ),
        ),
        Err(e) => Check::new(false, "backend", e.to_string()),
    })
}

/// The reader answers with its model and firmware.
pub fn check_reader(config: &Config) -> std::io::Result<Check> {
    use hal::CardReader;
    let device = match &config.hal.reader {
        ReaderSpec::Virtual => {
            return Ok(Check::new(true, "reader", "virtual reader (no hardware)"));
        }
        ReaderSpec::Pn532 { device } => device.clone(),
    };
    let path = device.to_string_lossy().into_owned();
    let r = runtime()?.block_on(async {
        tokio::time::timeout(ANSWER_TIMEOUT, async {
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
        Ok(info) => Check::new(
            true,
            "reader",
            format!(
                "{} on {path}: {} firmware {}",
                "pn532", info.model, info.firmware
            ),
        ),
        Err(e) => Check::new(
            false,
            "reader",
            format!("pn532 on {path}: {e} (is `pos-agent run` holding the port?)"),
        ),
    })
}

/// Opens the display and draws the test pattern (colour bars and a border)
/// on it; the technician looks at the panel.
pub fn check_display(config: &Config) -> std::io::Result<Check> {
    use hal::Display;
    let Some((driver, device)) = config.hal.display.driver() else {
        // The virtual display: draw into its in-memory frame.
        let (_device, parts) =
            hal::VirtualDevice::new(embedded_graphics::geometry::Size::new(240, 320));
        let mut display = parts.display;
        return Ok(match ui::test_pattern(&mut display) {
            Ok(()) => Check::new(
                true,
                "display",
                "virtual display: test pattern drawn (240x320, in memory)",
            ),
            Err(e) => Check::new(false, "display", format!("virtual display: {e}")),
        });
    };
    let r = runtime()?.block_on(async {
        tokio::time::timeout(ANSWER_TIMEOUT, async {
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
        Ok(what) => Check::new(
            true,
            "display",
            format!("{what} on {device}: test pattern shown (eight colour bars, white border)"),
        ),
        Err(e) => Check::new(false, "display", format!("{device}: {e}")),
    })
}

/// The buttons (or touch screen) can be opened; GPIO lines are claimed and
/// released again.
pub fn check_input(config: &Config) -> std::io::Result<Check> {
    let (what, opened) = match &config.hal.input {
        InputSpec::Virtual => {
            return Ok(Check::new(true, "input", "virtual buttons (control API)"));
        }
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
        Ok(kind) => Check::new(true, "input", format!("{what}: {kind} input opened")),
        Err(e) => Check::new(false, "input", format!("{what}: {e}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(dir: &Path, extra: &str) -> Result<config::Loaded, ConfigError> {
        let file = dir.join("config.toml");
        let text = format!(
            "data_dir = {:?}\n{extra}\n[terminal]\nid = \"pos_3f1e2d_001\"\nsession_id = \"sess_1\"\n\
             [backend]\nurl = \"http://127.0.0.1:8080\"\n",
            dir.display().to_string()
        );
        std::fs::write(&file, text).unwrap();
        config::load(&config::Sources {
            file,
            ..config::Sources::default()
        })
    }

    #[test]
    fn a_check_is_one_padded_line() {
        assert_eq!(
            Check::new(true, "ledger", "/d/ledger.db integrity ok").to_string(),
            "ok   ledger       /d/ledger.db integrity ok"
        );
        assert_eq!(
            Check::new(false, "credentials", "missing").to_string(),
            "FAIL credentials  missing"
        );
        assert_eq!(
            Check::new(false, "a-name-longer-than-12", "x").to_string(),
            "FAIL a-name-longer-than-12 x"
        );
    }

    #[test]
    fn storage_in_a_writable_directory_without_a_ledger() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let ledger = dir.path().join("ledger.db");
        let checks = check_storage(dir.path(), &ledger);
        assert_eq!(checks.len(), 2);
        let storage = &checks[0];
        assert_eq!(storage.name, "storage");
        assert!(
            storage
                .detail
                .starts_with(&format!("{} writable; ", dir.path().display())),
            "{storage}"
        );
        assert!(storage.detail.ends_with(" free"), "{storage}");
        let enough = free_bytes(dir.path()).is_none_or(|b| b >= MIN_FREE_BYTES);
        assert_eq!(storage.ok, enough);
        assert_eq!(
            checks[1],
            Check::new(
                true,
                "ledger",
                format!("{} not created yet", ledger.display())
            )
        );
        // The probe file is gone again.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn storage_with_a_good_and_a_broken_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("ledger.db");
        drop(store::Store::open(&ledger).unwrap());
        let checks = check_storage(dir.path(), &ledger);
        assert_eq!(
            checks[1],
            Check::new(true, "ledger", format!("{} integrity ok", ledger.display()))
        );

        let broken = dir.path().join("broken.db");
        std::fs::write(&broken, b"this is not a database, just some bytes").unwrap();
        let checks = check_storage(dir.path(), &broken);
        assert!(!checks[1].ok, "{}", checks[1]);
        assert!(
            checks[1]
                .detail
                .starts_with(&format!("{}: ", broken.display())),
            "{}",
            checks[1]
        );
    }

    #[test]
    fn storage_in_a_directory_others_can_read_fails() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("ledger.db");
        for mode in [0o755, 0o750, 0o701] {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
            let storage = &check_storage(dir.path(), &ledger)[0];
            assert!(!storage.ok, "{mode:o}: {storage}");
            assert!(
                storage.detail.contains(&format!("mode {mode:o}"))
                    && storage.detail.contains("0700"),
                "{storage}"
            );
        }
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let storage = &check_storage(dir.path(), &ledger)[0];
        assert!(storage.detail.contains("writable"), "{storage}");
    }

    #[test]
    fn storage_in_a_missing_directory_fails() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let checks = check_storage(&missing, &missing.join("ledger.db"));
        assert!(!checks[0].ok);
        assert!(
            checks[0]
                .detail
                .starts_with(&format!("{} not writable: ", missing.display())),
            "{}",
            checks[0]
        );
        assert!(checks[1].ok, "no ledger yet is fine: {}", checks[1]);
    }

    #[test]
    fn clock_line() {
        let now = time::macros::datetime!(2026-11-21 10:00:00 UTC);
        assert_eq!(
            check_clock(now, None).to_string(),
            "ok   clock        2026-11-21T10:00:00Z (UTC)"
        );
        assert_eq!(
            check_clock(now, Some("before the build".into())).to_string(),
            "FAIL clock        2026-11-21T10:00:00Z (UTC); before the build"
        );
    }

    #[test]
    fn config_and_virtual_devices() {
        let dir = tempfile::tempdir().unwrap();
        let loaded = load(dir.path(), "");
        let file = dir.path().join("config.toml");
        assert_eq!(
            check_config(&file, &loaded),
            Check::new(true, "config", format!("{} valid", file.display()))
        );
        let config = loaded.unwrap().config;
        assert_eq!(
            check_reader(&config).unwrap(),
            Check::new(true, "reader", "virtual reader (no hardware)")
        );
        assert_eq!(
            check_display(&config).unwrap(),
            Check::new(
                true,
                "display",
                "virtual display: test pattern drawn (240x320, in memory)"
            )
        );
        assert_eq!(
            check_input(&config).unwrap(),
            Check::new(true, "input", "virtual buttons (control API)")
        );
    }

    #[test]
    fn config_errors_and_warnings() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        let warned = load(dir.path(), "[no_such_table]\nx = 1");
        let c = check_config(&file, &warned);
        assert!(c.ok, "{c}");
        assert!(
            c.detail.starts_with(&format!("{} valid; ", file.display())),
            "{c}"
        );
        assert!(c.detail.contains("no_such_table"), "{c}");

        let bad = load(dir.path(), "data_dir_typo = [");
        let e = bad.as_ref().unwrap_err();
        assert_eq!(
            check_config(&file, &bad),
            Check::new(false, "config", e.to_string())
        );
        assert_eq!(config_failed(e), check_config(&file, &bad));
    }
}
