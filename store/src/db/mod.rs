//! The synchronous store: one writer connection behind a mutex, a small
//! pool of read-only reader connections.
//!
//! This file holds [`Store`] and its connection plumbing; the calls live
//! by concern in the submodules: [`open`] (open, PRAGMAs, integrity and
//! migration checks), [`ledger`] (transactions; row decoding in
//! [`ledger_row`]), [`outbox`], [`kv`], [`audit`] (the audit log) and
//! [`reports`] (totals and exposure queries).

mod audit;
mod kv;
mod ledger;
mod ledger_row;
mod open;
mod outbox;
mod reports;
mod shifts;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::StoreError;
use crate::error::sql;
use crate::model::Durability;

pub use audit::AuditEntry;
pub use kv::KEY_REFERENCE_SEQUENCE;
pub use open::{Checkpoint, Pragmas, StoreOptions};
pub use shifts::shift_totals;

/// How many idle reader connections are kept.
const READER_POOL: usize = 4;

/// The durable ledger, outbox and audit log of one terminal.
pub struct Store {
    path: PathBuf,
    writer: Mutex<Connection>,
    /// The writer connection's `synchronous` is NORMAL (a relaxed commit
    /// came last) rather than FULL. Only read or changed with the writer
    /// locked.
    writer_relaxed: AtomicBool,
    /// Commits that changed a row (so wrote WAL frames) since the last
    /// checkpoint this store ran, or since open.
    commits: AtomicU64,
    /// The connection that checkpoints the WAL at idle moments, beside the
    /// writer so a payment never waits for a checkpoint. Opened on first
    /// use.
    checkpointer: Mutex<Option<Connection>>,
    readers: Mutex<Vec<Connection>>,
    options: StoreOptions,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    fn lock_writer(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a transaction open:
        // rusqlite rolls back on drop. The connection stays usable.
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One `BEGIN IMMEDIATE` transaction on the writer connection,
    /// committed with `durability` (see [`Durability`]).
    fn write<T>(
        &self,
        op: &'static str,
        durability: Durability,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock_writer();
        self.set_synchronous(&conn, durability)?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql(op))?;
        let changes = tx.total_changes();
        let out = f(&tx)?;
        let wrote = tx.total_changes() != changes;
        tx.commit().map_err(sql(op))?;
        // A commit that changed no row wrote no WAL frame (an empty claim,
        // an unchanged kv value): nothing for a checkpoint to count.
        if wrote {
            self.commits.fetch_add(1, Ordering::Relaxed);
        }
        Ok(out)
    }

    /// Puts the writer connection's `synchronous` where `durability` needs
    /// it: FULL fsyncs the WAL at commit, NORMAL leaves that to the next
    /// FULL commit or checkpoint. The PRAGMA is only run when the level
    /// changes; the caller holds the writer lock.
    fn set_synchronous(&self, conn: &Connection, durability: Durability) -> Result<(), StoreError> {
        let relaxed = durability == Durability::Relaxed;
        if self.writer_relaxed.load(Ordering::Relaxed) != relaxed {
            let pragma = if relaxed {
                "PRAGMA synchronous = NORMAL"
            } else {
                "PRAGMA synchronous = FULL"
            };
            conn.execute_batch(pragma)
                .map_err(sql("setting the durability of a commit"))?;
            self.writer_relaxed.store(relaxed, Ordering::Relaxed);
        }
        Ok(())
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match pooled {
            Some(c) => c,
            None => self.open_reader()?,
        };
        let out = f(&conn);
        let mut pool = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < READER_POOL {
            pool.push(conn);
        }
        out
    }

    fn open_reader(&self) -> Result<Connection, StoreError> {
        let conn = self.open_side(
            OpenFlags::SQLITE_OPEN_READ_ONLY,
            "opening a reader connection",
        )?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }

    /// Another connection to the ledger beside the writer (a reader, the
    /// checkpointer), with the store's busy timeout.
    fn open_side(&self, access: OpenFlags, op: &'static str) -> Result<Connection, StoreError> {
        let conn =
            Connection::open_with_flags(&self.path, access | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(sql(op))?;
        conn.busy_timeout(self.options.busy_timeout)
            .map_err(sql("setting the busy timeout"))?;
        Ok(conn)
    }
}

fn non_negative(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Invalid(format!("negative {what} {v}")))
}
