//! Where the agent's logs go: journald with structured fields when stderr
//! is the journal (systemd sets `JOURNAL_STREAM` to the device and inode
//! of the stream it connected), else stderr, in colour only when stderr is
//! a terminal and `NO_COLOR` is unset, so a journal or a log file never
//! fills with escape codes.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber with `filter` (`RUST_LOG` wins; an
/// unparsable filter falls back to `default`). A second call does nothing.
pub fn init(filter: &str, default: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(filter))
        .unwrap_or_else(|_| EnvFilter::new(default));
    if stderr_is_journal() {
        if let Ok(journald) = tracing_journald::layer() {
            // Fields keep their names (`REFERENCE=...`, `ERROR=...`), so
            // `journalctl -u pos-agent REFERENCE=...` finds a payment.
            let journald = journald
                .with_field_prefix(None)
                .with_syslog_identifier("pos-agent".into());
            let _ = tracing_subscriber::registry()
                .with(filter)
                .with(journald)
                .try_init();
            return;
        }
    }
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Whether stderr is the stream systemd connected to the journal.
pub fn stderr_is_journal() -> bool {
    match std::env::var("JOURNAL_STREAM") {
        Ok(v) => is_journal_stream(&v, rustix::fs::fstat(std::io::stderr()).ok()),
        Err(_) => false,
    }
}

/// `JOURNAL_STREAM` is `<device>:<inode>` in decimal; it names our stderr
/// only when both match (a child of a service inherits the variable with
/// another stderr).
fn is_journal_stream(var: &str, stat: Option<rustix::fs::Stat>) -> bool {
    let Some(stat) = stat else { return false };
    let Some((dev, ino)) = var.split_once(':') else {
        return false;
    };
    names(dev, stat.st_dev) && names(ino, stat.st_ino)
}

/// `text` is the decimal form of `value` (of whatever integer type this
/// target's `stat` field has).
fn names<T: std::str::FromStr + PartialEq>(text: &str, value: T) -> bool {
    text.parse::<T>().is_ok_and(|v| v == value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_must_name_this_very_stream() {
        let file = tempfile::tempfile().unwrap();
        let st = rustix::fs::fstat(&file).unwrap();
        let var = format!("{}:{}", st.st_dev, st.st_ino);
        assert!(is_journal_stream(&var, Some(st)));
        let other = format!("{}:{}", st.st_dev, st.st_ino + 1);
        assert!(!is_journal_stream(&other, Some(st)));
        for bad in ["", "12", "a:b", "1:2:3", "-1:5"] {
            assert!(!is_journal_stream(bad, Some(st)), "{bad}");
        }
        assert!(!is_journal_stream(&var, None));
    }
}
