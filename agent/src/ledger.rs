//! The ledger file as the commands see it.
//!
//! - `pos-agent run` holds the ledger exclusively for its whole life: an
//!   advisory `flock` on `data_dir/ledger.lock` ([`LedgerLock`]). A second
//!   `run` on the same data directory is refused before it opens anything,
//!   so two agents can never both take payments from one ledger (and charge
//!   one partner sale twice). The kernel drops the lock when the process
//!   ends, however it ends; a stale lock file is harmless.
//! - The reading commands (`queue`, `report`, `reconcile`) take no lock:
//!   they open the ledger read-only beside a running agent
//!   ([`open_read_only`]), and refuse a ledger that does not exist (a typo in
//!   `--data-dir`, a terminal that never ran) instead of showing it as empty.

use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

use crate::config::Config;

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "ledger.lock";

/// Why the ledger could not be opened or locked.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(
        "no ledger at {}: check `data_dir` (or --data-dir); a terminal that was just \
         provisioned gets its ledger when `pos-agent run` first starts",
        path.display()
    )]
    Missing { path: PathBuf },
    #[error("cannot open the ledger {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: store::StoreError,
    },
    #[error(
        "another pos-agent is already running on {} ({}{}); only one agent may use a ledger",
        data_dir.display(),
        lock_file.display(),
        holder.as_ref().map(|h| format!(" is held by pid {h}")).unwrap_or_else(|| " is held".into())
    )]
    Locked {
        data_dir: PathBuf,
        lock_file: PathBuf,
        /// The pid written by the holder, when readable.
        holder: Option<String>,
    },
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl LedgerError {
    /// A short machine-readable name, for `--json` error objects.
    pub fn code(&self) -> &'static str {
        match self {
            LedgerError::Missing { .. } => "no_ledger",
            LedgerError::Open { .. } => "ledger_unreadable",
            LedgerError::Locked { .. } => "ledger_locked",
            LedgerError::Io { .. } => "ledger_io",
        }
    }
}

/// Opens the existing ledger of `config` read-only; a missing file is
/// [`LedgerError::Missing`].
pub fn open_read_only(config: &Config) -> Result<store::Store, LedgerError> {
    let path = config.ledger_path();
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Err(LedgerError::Missing { path }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(LedgerError::Missing { path });
        }
        Err(source) => {
            return Err(LedgerError::Io {
                action: "read",
                path,
                source,
            });
        }
    }
    store::Store::open_read_only(&path).map_err(|source| LedgerError::Open { path, source })
}

/// Opens the existing ledger of `config` for writing (`queue --retry`),
/// beside a running agent if there is one; a missing file is
/// [`LedgerError::Missing`].
pub fn open_existing(config: &Config) -> Result<store::Store, LedgerError> {
    // Same checks as for reading, then a writable connection.
    drop(open_read_only(config)?);
    let path = config.ledger_path();
    store::Store::open(&path).map_err(|source| LedgerError::Open { path, source })
}

/// Tells the agent running on `data_dir` (the holder of its ledger lock)
/// to look at its outbox again now (`SIGUSR1`). Returns its pid when one
/// runs and was told; `None` when no agent holds the lock. The pid is read
/// from the lock file only while the lock is held, so a stale file never
/// gets another process signalled.
pub fn wake_running_agent(data_dir: &Path) -> Option<i32> {
    let path = data_dir.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new().read(true).open(&path).ok()?;
    match flock(&file, FlockOperation::NonBlockingLockShared) {
        // Nobody holds it exclusively: no agent runs here.
        Ok(()) => return None,
        Err(rustix::io::Errno::WOULDBLOCK) => {}
        Err(_) => return None,
    }
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    let pid: i32 = text.trim().parse().ok()?;
    let target = rustix::process::Pid::from_raw(pid)?;
    rustix::process::kill_process(target, rustix::process::Signal::USR1).ok()?;
    Some(pid)
}

/// The exclusive hold of `run` on a data directory's ledger; released when
/// dropped (or when the process ends).
#[derive(Debug)]
pub struct LedgerLock {
    _file: std::fs::File,
    path: PathBuf,
}

impl LedgerLock {
    /// Takes the lock on `data_dir/ledger.lock` without waiting (the file
    /// is created 0600 when absent) and writes this process's pid into it.
    /// Another holder is [`LedgerError::Locked`].
    pub fn acquire(data_dir: &Path) -> Result<LedgerLock, LedgerError> {
        let path = data_dir.join(LOCK_FILE);
        let io = |action: &'static str, path: &Path| {
            let path = path.to_owned();
            move |source| LedgerError::Io {
                action,
                path,
                source,
            }
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io("open", &path))?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let mut text = String::new();
                let holder = file
                    .read_to_string(&mut text)
                    .ok()
                    .map(|_| text.trim().to_owned())
                    .filter(|t| !t.is_empty() && t.len() <= 20);
                return Err(LedgerError::Locked {
                    data_dir: data_dir.to_owned(),
                    lock_file: path,
                    holder,
                });
            }
            Err(e) => return Err(io("lock", &path)(e.into())),
        }
        // Informational only: the lock is the flock, not the content.
        let _ = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()));
        Ok(LedgerLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_data_directory_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = LedgerLock::acquire(dir.path()).unwrap();
        // flock locks belong to the open file description: a second open in
        // the same process conflicts like another process would.
        match LedgerLock::acquire(dir.path()) {
            Err(LedgerError::Locked { holder, .. }) => {
                assert_eq!(holder, Some(std::process::id().to_string()));
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(first);
        assert!(LedgerLock::acquire(dir.path()).is_ok());
    }
}
