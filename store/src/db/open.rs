//! Opening the store: the writer connection's PRAGMAs (page size, WAL,
//! `synchronous`, checkpoint thresholds, size cap), the `quick_check` run
//! at open and on demand, migrations (or the schema-version check of a
//! read-only open), the return of in-flight outbox items to the queue, and
//! the WAL checkpoints run at idle moments.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::Store;
use crate::error::sql;
use crate::model::{Durability, RetryPolicy, truncate};
use crate::{StoreError, schema};

/// Page size of a new ledger, in bytes. A commit writes one WAL frame per
/// page it touches (a row, its index entries, its audit row), so smaller
/// pages write less per payment: see docs/store.md for the figures. An
/// existing ledger keeps the page size it was created with (SQLite cannot
/// change it in WAL mode without rewriting the file).
pub const PAGE_SIZE: u32 = 512;

/// `wal_autocheckpoint`, in pages: the safety net only. The agent
/// checkpoints at idle moments ([`Store::checkpoint_if_due`]) long before
/// this; a terminal that never idles still checkpoints here, inside a
/// commit.
pub const WAL_AUTOCHECKPOINT_PAGES: u32 = 16_384;

/// `journal_size_limit`: after a checkpoint the WAL is cut back to this
/// (bytes), above what the idle checkpoints let it reach, so the file is
/// reused in place instead of shrunk and grown again (growing a file makes
/// every fsync write file-system metadata too).
pub const JOURNAL_SIZE_LIMIT: u64 = 16 * 1024 * 1024;

/// Open-time settings.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub retry: RetryPolicy,
    /// How long a connection waits on a lock before `StoreError::Busy`.
    pub busy_timeout: Duration,
    /// Caps the database size in pages (`PRAGMA max_page_count`) so the
    /// ledger cannot fill the disk; reaching it is `StoreError::DiskFull`.
    pub max_pages: Option<u64>,
    /// [`Store::checkpoint_if_due`] checkpoints once this many commits
    /// went into the WAL since the last checkpoint.
    pub checkpoint_after_commits: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            retry: RetryPolicy::default(),
            busy_timeout: Duration::from_secs(5),
            max_pages: None,
            checkpoint_after_commits: 1_000,
        }
    }
}

/// What one `PRAGMA wal_checkpoint(PASSIVE)` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// Frames in the WAL when it ran.
    pub wal_frames: u64,
    /// Frames copied into the database file (all of them unless a reader
    /// held an older snapshot).
    pub checkpointed: u64,
}

impl Checkpoint {
    /// Every frame is in the database file: the next commit starts the WAL
    /// over from its beginning.
    pub fn complete(&self) -> bool {
        self.checkpointed >= self.wal_frames
    }
}

/// The PRAGMAs in effect on the writer connection, read back from SQLite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pragmas {
    pub journal_mode: String,
    /// The level of durable commits: 2 = FULL. (Relaxed commits run at
    /// 1 = NORMAL, see [`Durability`].)
    pub synchronous: i64,
    pub foreign_keys: bool,
    pub busy_timeout_ms: i64,
    pub page_size: i64,
    pub wal_autocheckpoint: i64,
    pub journal_size_limit: i64,
}

impl Store {
    /// Opens (creating if needed) the database at `path` with default options.
    /// The parent directory must exist.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        Store::open_with(path, StoreOptions::default())
    }

    /// Opens with explicit options: sets the PRAGMAs, runs `quick_check`,
    /// applies migrations and returns in-flight outbox items to the queue.
    pub fn open_with(path: impl AsRef<Path>, options: StoreOptions) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !parent.is_dir() {
                return Err(StoreError::Io {
                    op: "opening the database",
                    detail: format!("directory {} does not exist", parent.display()),
                });
            }
        }
        // The ledger holds card tokens and amounts: owner-only (0600). It is
        // created with that mode before SQLite opens it (without
        // SQLITE_OPEN_CREATE, which would reset an empty file to 0644), and
        // SQLite gives its `-wal` and `-shm` files the database file's mode;
        // a ledger left looser by an older build is tightened.
        create_private(&path)?;
        let mut conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql("opening the database"))?;
        tighten(&path)?;
        conn.busy_timeout(options.busy_timeout)
            .map_err(sql("setting the busy timeout"))?;
        // Only takes effect on a new, empty file: before WAL mode writes
        // the header.
        conn.execute_batch(&format!("PRAGMA page_size = {PAGE_SIZE};"))
            .map_err(sql("setting the page size"))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(sql("enabling WAL"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Io {
                op: "enabling WAL",
                detail: format!("journal mode stayed {mode:?}"),
            });
        }
        // Durable commits are the default; relaxed ones switch to NORMAL
        // (Store::write). journal_size_limit: a burst does not keep flash
        // space forever.
        conn.execute_batch(&format!(
            "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
             PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}; \
             PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES};"
        ))
        .map_err(sql("setting PRAGMAs"))?;
        if let Some(pages) = options.max_pages {
            let _: i64 = conn
                .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| {
                    r.get(0)
                })
                .map_err(sql("setting max_page_count"))?;
        }
        for suffix in ["-wal", "-shm"] {
            let mut side = path.clone().into_os_string();
            side.push(suffix);
            tighten(Path::new(&side))?;
        }
        quick_check(&conn)?;
        // Steps that rebuild a table (SQLite's 12-step ALTER TABLE) need
        // foreign keys off while they run (`PRAGMA foreign_keys` is a no-op
        // inside the migration's transaction); such a step checks them
        // itself (`foreign_key_check`) before it commits.
        conn.execute_batch("PRAGMA foreign_keys = OFF;")
            .map_err(sql("setting PRAGMAs"))?;
        let migrated = schema::migrations()
            .to_latest(&mut conn)
            .map_err(StoreError::from_migration);
        conn.execute_batch("PRAGMA foreign_keys = ON;")
            .map_err(sql("setting PRAGMAs"))?;
        migrated?;
        conn.set_prepared_statement_cache_capacity(32);
        let reset = conn
            .execute("UPDATE outbox SET in_flight = 0 WHERE in_flight = 1", [])
            .map_err(sql("resetting in-flight outbox items"))?;
        if reset > 0 {
            tracing::info!(
                items = reset,
                "returned in-flight outbox items to the queue"
            );
        }
        Ok(Store {
            path,
            writer: Mutex::new(conn),
            writer_relaxed: AtomicBool::new(false),
            commits: AtomicU64::new(0),
            checkpointer: Mutex::new(None),
            readers: Mutex::new(Vec::new()),
            options,
        })
    }

    /// Opens an existing database for reading only, for CLI commands that
    /// run beside the daemon (`pos-agent queue`, `report`): no migration,
    /// no in-flight reset, every write fails with `StoreError::Io`. The
    /// schema must be the one this build knows.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        let options = StoreOptions::default();
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql("opening the database read-only"))?;
        conn.busy_timeout(options.busy_timeout)
            .map_err(sql("setting the busy timeout"))?;
        quick_check(&conn)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql("reading the schema version"))?;
        if usize::try_from(version).ok() != Some(schema::MIGRATIONS.len()) {
            return Err(StoreError::Migration(format!(
                "database schema version {version}, this build expects {}",
                schema::MIGRATIONS.len()
            )));
        }
        Ok(Store {
            path,
            writer: Mutex::new(conn),
            writer_relaxed: AtomicBool::new(false),
            commits: AtomicU64::new(0),
            checkpointer: Mutex::new(None),
            readers: Mutex::new(Vec::new()),
            options,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The PRAGMAs in effect on the writer connection.
    pub fn pragmas(&self) -> Result<Pragmas, StoreError> {
        let conn = self.lock_writer();
        self.set_synchronous(&conn, Durability::Full)?;
        let q = |name: &str| -> Result<rusqlite::types::Value, StoreError> {
            conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
                .map_err(sql("reading PRAGMAs"))
        };
        use rusqlite::types::Value;
        let text = |v: Value| match v {
            Value::Text(s) => Ok(s),
            other => Err(StoreError::Invalid(format!("pragma value {other:?}"))),
        };
        let int = |v: Value| match v {
            Value::Integer(i) => Ok(i),
            other => Err(StoreError::Invalid(format!("pragma value {other:?}"))),
        };
        Ok(Pragmas {
            journal_mode: text(q("journal_mode")?)?,
            synchronous: int(q("synchronous")?)?,
            foreign_keys: int(q("foreign_keys")?)? == 1,
            busy_timeout_ms: int(q("busy_timeout")?)?,
            page_size: int(q("page_size")?)?,
            wal_autocheckpoint: int(q("wal_autocheckpoint")?)?,
            journal_size_limit: int(q("journal_size_limit")?)?,
        })
    }

    /// Commits that changed a row since the last checkpoint this store ran
    /// (or since open).
    pub fn commits_since_checkpoint(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Checkpoints the WAL when [`StoreOptions::checkpoint_after_commits`]
    /// commits went into it since the last time; `None` when not due. The
    /// agent calls this at idle moments (no payment, outbox drained), so a
    /// checkpoint's two fsyncs and its database writes never fall on the
    /// tap path, and many payments share one checkpoint.
    pub fn checkpoint_if_due(&self) -> Result<Option<Checkpoint>, StoreError> {
        if self.commits_since_checkpoint() < self.options.checkpoint_after_commits.max(1) {
            return Ok(None);
        }
        self.checkpoint().map(Some)
    }

    /// `PRAGMA wal_checkpoint(PASSIVE)` now, on a connection of its own:
    /// writers go on meanwhile (a commit never waits for it), readers keep
    /// their snapshots. It fsyncs the WAL, copies the frames into the
    /// database file and fsyncs that. The commit count restarts when every
    /// frame was copied.
    pub fn checkpoint(&self) -> Result<Checkpoint, StoreError> {
        let mut slot = self
            .checkpointer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let conn = match &mut *slot {
            Some(conn) => conn,
            empty => {
                let conn = self.open_side(
                    OpenFlags::SQLITE_OPEN_READ_WRITE,
                    "opening the checkpoint connection",
                )?;
                // A checkpoint syncs the WAL and the database file at any
                // level but OFF; FULL says so.
                conn.execute_batch("PRAGMA synchronous = FULL;")
                    .map_err(sql("setting PRAGMAs"))?;
                empty.insert(conn)
            }
        };
        let before = self.commits_since_checkpoint();
        let (busy, log, done): (i64, i64, i64) = conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(sql("checkpointing the WAL"))?;
        let frames = |v: i64| u64::try_from(v).unwrap_or(0);
        let out = Checkpoint {
            wal_frames: frames(log),
            checkpointed: frames(done),
        };
        if busy == 0 && out.complete() {
            // Commits made while it ran are in the next round.
            self.commits.fetch_sub(before, Ordering::Relaxed);
        }
        Ok(out)
    }

    /// Runs `PRAGMA quick_check` now (for `pos-agent doctor`).
    pub fn check_integrity(&self) -> Result<(), StoreError> {
        self.read(quick_check)
    }
}

/// Creates `path` empty with mode 0600 when it does not exist; otherwise
/// takes group and others' access away from it.
fn create_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => tighten(path),
        Err(e) => Err(StoreError::Io {
            op: "creating the database",
            detail: format!("{}: {e}", path.display()),
        }),
    }
}

/// Sets `path` to 0600 when it exists and group or others have any access.
fn tighten(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |e: std::io::Error| StoreError::Io {
        op: "making the database private",
        detail: format!("{}: {e}", path.display()),
    };
    let mode = match std::fs::metadata(path) {
        Ok(m) => m.permissions().mode(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(e)),
    };
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700 | 0o600))
            .map_err(io)?;
    }
    Ok(())
}

fn quick_check(conn: &Connection) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare("PRAGMA quick_check")
        .map_err(sql("checking integrity"))?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(sql("checking integrity"))?;
    let mut problems = Vec::new();
    for row in rows {
        let line = row.map_err(sql("checking integrity"))?;
        if line != "ok" {
            problems.push(line);
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Corrupt {
            detail: format!("quick_check: {}", truncate(&problems.join("; "), 400)),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_ledger_and_its_wal_and_shm_are_private_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        let store = Store::open(&path).unwrap();
        // Migrations wrote through the WAL; the connection maps the -shm.
        let side = |s: &str| dir.path().join(format!("ledger.sqlite{s}"));
        for p in [path.clone(), side("-wal"), side("-shm")] {
            assert!(p.exists(), "{}", p.display());
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
        drop(store);

        // A ledger left world-readable by an older build is tightened.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let _store = Store::open(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&side("-wal")), 0o600);
    }
}
