//! Process hardening applied first thing in `main`, before any key or
//! secret is read:
//!
//! - not dumpable (`prctl(PR_SET_DUMPABLE, 0)`) and a core size limit of 0:
//!   a crash leaves no core file holding the card key or the terminal
//!   secret, and other processes of the same user cannot `ptrace` the agent
//!   or read its `/proc/PID/mem`;
//! - umask 0077: whatever the agent creates (ledger, lock file, data
//!   directory) is owner-only even when started from a shell; the systemd
//!   unit sets `UMask=0077` and `LimitCORE=0` as well.

use rustix::fs::Mode;
use rustix::process::{DumpableBehavior, Resource, Rlimit};

/// The umask the agent runs with.
pub const UMASK: u32 = 0o077;

/// Why hardening failed (the agent then refuses to start).
#[derive(Debug, thiserror::Error)]
pub enum HardeningError {
    #[error("cannot {what}: {source}")]
    Syscall {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

fn syscall(what: &'static str) -> impl FnOnce(rustix::io::Errno) -> HardeningError {
    move |e| HardeningError::Syscall {
        what,
        source: e.into(),
    }
}

/// Makes this process non-dumpable, without core files, with umask 0077.
pub fn harden_process() -> Result<(), HardeningError> {
    rustix::process::set_dumpable_behavior(DumpableBehavior::NotDumpable)
        .map_err(syscall("make the process non-dumpable (PR_SET_DUMPABLE)"))?;
    rustix::process::setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )
    .map_err(syscall("set the core size limit to 0"))?;
    rustix::process::umask(Mode::from_raw_mode(UMASK));
    Ok(())
}
