//! systemd notifications (`Type=notify`, watchdog). Every call is a no-op
//! when `NOTIFY_SOCKET` is unset (not under systemd, tests).

use std::time::Duration;

use sd_notify::NotifyState;

/// The watchdog period to feed at: half of `WATCHDOG_USEC`, or `None`
/// when systemd runs no watchdog for us.
pub fn watchdog_period() -> Option<Duration> {
    let mut usec = 0u64;
    if sd_notify::watchdog_enabled(false, &mut usec) && usec > 0 {
        Some(Duration::from_micros(usec / 2))
    } else {
        None
    }
}

/// `READY=1`: the idle screen is up.
pub fn ready() {
    if let Err(e) = sd_notify::notify(false, &[NotifyState::Ready]) {
        tracing::warn!(error = %e, "cannot notify systemd of readiness");
    }
}

/// `WATCHDOG=1`, sent from the core loop (a stuck loop stops feeding it).
pub fn watchdog() {
    if let Err(e) = sd_notify::notify(false, &[NotifyState::Watchdog]) {
        tracing::warn!(error = %e, "cannot feed the systemd watchdog");
    }
}

/// `STOPPING=1`.
pub fn stopping() {
    let _ = sd_notify::notify(false, &[NotifyState::Stopping]);
}
