//! An in-process fsync counter for a test binary of its own
//! (`store/tests/fsyncs.rs`, `tests/tests/fsyncs.rs` includes this file by
//! path): the binary defines `fsync` and `fdatasync`, the linker binds every
//! call in it to them (bundled SQLite's and std's included), and each sync
//! of a file under the watched directory is counted before the raw system
//! call is made. One test per binary, so nothing else syncs meanwhile.
//!
//! The including file allows `unsafe_code` for the two symbols and their
//! system calls: test code, never shipped.

use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The directory whose files' syncs are counted.
static WATCHED: RwLock<Option<PathBuf>> = RwLock::new(None);
static SYNCS: AtomicU64 = AtomicU64::new(0);
/// Of [`SYNCS`], those made with `fdatasync`.
static DATASYNCS: AtomicU64 = AtomicU64::new(0);

/// Counts the syncs of files under `dir` from now on.
pub fn watch(dir: &Path) {
    // The directory as the kernel names it in /proc/self/fd.
    let dir = dir.canonicalize().expect("watched directory");
    *WATCHED
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(dir);
}

/// Syncs of watched files so far.
pub fn syncs() -> u64 {
    SYNCS.load(Ordering::SeqCst)
}

/// Of [`syncs`], those made with `fdatasync`.
#[allow(dead_code)] // read by store/tests/fsyncs.rs only
pub fn datasyncs() -> u64 {
    DATASYNCS.load(Ordering::SeqCst)
}

fn count(fd: i32, data_only: bool) {
    let Ok(watched) = WATCHED.read() else { return };
    let Some(dir) = watched.as_deref() else {
        return;
    };
    if let Ok(target) = std::fs::read_link(format!("/proc/self/fd/{fd}")) {
        if target.starts_with(dir) {
            SYNCS.fetch_add(1, Ordering::SeqCst);
            if data_only {
                DATASYNCS.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn fsync(fd: i32) -> i32 {
    count(fd, false);
    // SAFETY: the fsync system call on the caller's descriptor, as libc
    // makes it.
    unsafe { libc::syscall(libc::SYS_fsync, fd) as i32 }
}

#[unsafe(no_mangle)]
pub extern "C" fn fdatasync(fd: i32) -> i32 {
    count(fd, true);
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_fdatasync, fd) as i32 }
}
