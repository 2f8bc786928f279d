//! systemd notifications (`Type=notify`, watchdog). Every call is a no-op
//! when `NOTIFY_SOCKET` is unset (not under systemd, tests).

use std::time::Duration;

use sd_notify::NotifyState;

/// The watchdog period to feed at: half of `WATCHDOG_USEC`, or `None`
/// when systemd runs no watchdog for us. As `sd_watchdog_enabled(3)`:
/// `WATCHDOG_PID`, when set, must be this process.
pub fn watchdog_period() -> Option<Duration> {
    let usec = std::env::var("WATCHDOG_USEC").ok()?;
    watchdog_period_from(
        &usec,
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    )
}

/// [`watchdog_period`] on given values.
pub fn watchdog_period_from(usec: &str, pid: Option<&str>, me: u32) -> Option<Duration> {
    let usec: u64 = usec.trim().parse().ok().filter(|u| *u > 0)?;
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok()? != me {
            return None;
        }
    }
    Some(Duration::from_micros(usec / 2))
}

/// `READY=1`: the first screen after booting is up.
pub fn ready() {
    tracing::info!("ready: first screen shown");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_period_is_half_the_interval_for_this_process_only() {
        assert_eq!(
            watchdog_period_from("30000000", None, 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            watchdog_period_from("200000", Some("7"), 7),
            Some(Duration::from_millis(100))
        );
        assert_eq!(watchdog_period_from("200000", Some("8"), 7), None);
        assert_eq!(watchdog_period_from("0", None, 7), None);
        assert_eq!(watchdog_period_from("soon", None, 7), None);
    }
}
