//! The store's error type and the mapping from SQLite result codes.

use rusqlite::ErrorCode;
use rusqlite::ffi;

/// What went wrong in the store. Each variant says which operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLITE_FULL: the disk (or the configured page limit) is full. The
    /// failed write was rolled back; everything committed before is intact.
    #[error("storage full while {op}")]
    DiskFull { op: &'static str },
    /// SQLITE_CORRUPT / SQLITE_NOTADB, or `PRAGMA quick_check` found damage.
    #[error("database is corrupt ({detail})")]
    Corrupt { detail: String },
    /// A unique key already exists (e.g. a transaction reference).
    #[error("duplicate {what}")]
    Duplicate { what: String },
    /// Any other constraint (CHECK, FOREIGN KEY, NOT NULL, append-only trigger).
    #[error("constraint violated while {op}: {detail}")]
    Constraint { op: &'static str, detail: String },
    /// SQLITE_IOERR, SQLITE_CANTOPEN, SQLITE_PERM, SQLITE_READONLY...
    #[error("storage i/o error while {op}: {detail}")]
    Io { op: &'static str, detail: String },
    /// SQLITE_BUSY / SQLITE_LOCKED after the busy timeout.
    #[error("database busy while {op}")]
    Busy { op: &'static str },
    /// Data read back from the database failed validation.
    #[error("invalid data in the database: {0}")]
    Invalid(String),
    /// A value handed to the store was refused before touching the database.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The row the operation is about does not exist.
    #[error("{what} not found")]
    NotFound { what: String },
    /// The change is not allowed from the transaction's current state.
    #[error("transaction {reference}: {detail}")]
    IllegalChange { reference: String, detail: String },
    /// A refund would exceed what is left to refund on its sale.
    #[error(
        "refund of {requested} minor units exceeds the {left} left on sale {original_reference}"
    )]
    ExceedsRefundable {
        original_reference: String,
        requested: u64,
        left: u64,
    },
    /// Applying the schema migrations failed.
    #[error("schema migration failed: {0}")]
    Migration(String),
    /// The background task running a blocking store call failed.
    #[error("store task failed: {0}")]
    Task(String),
    /// Any other SQLite error.
    #[error("sqlite error while {op}: {source}")]
    Sqlite {
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },
}

impl StoreError {
    /// Maps a rusqlite error raised while doing `op`.
    pub(crate) fn from_sqlite(op: &'static str, e: rusqlite::Error) -> StoreError {
        let rusqlite::Error::SqliteFailure(failure, msg) = &e else {
            return StoreError::Sqlite { op, source: e };
        };
        let detail = msg.clone().unwrap_or_else(|| failure.to_string());
        match failure.code {
            ErrorCode::DiskFull => StoreError::DiskFull { op },
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => StoreError::Corrupt {
                detail: format!("{op}: {detail}"),
            },
            ErrorCode::ConstraintViolation => match failure.extended_code {
                ffi::SQLITE_CONSTRAINT_PRIMARYKEY | ffi::SQLITE_CONSTRAINT_UNIQUE => {
                    StoreError::Duplicate {
                        what: format!("{op}: {detail}"),
                    }
                }
                _ => StoreError::Constraint { op, detail },
            },
            ErrorCode::SystemIoFailure
            | ErrorCode::CannotOpen
            | ErrorCode::PermissionDenied
            | ErrorCode::ReadOnly
            | ErrorCode::FileLockingProtocolFailed
            | ErrorCode::NoLargeFileSupport => StoreError::Io { op, detail },
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StoreError::Busy { op },
            _ => StoreError::Sqlite { op, source: e },
        }
    }

    /// Maps a migration error.
    pub(crate) fn from_migration(e: rusqlite_migration::Error) -> StoreError {
        match e {
            rusqlite_migration::Error::RusqliteError { err, .. } => {
                StoreError::from_sqlite("migrating the schema", err)
            }
            other => StoreError::Migration(other.to_string()),
        }
    }
}

/// Shorthand: `.map_err(sql("doing x"))`.
pub(crate) fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| StoreError::from_sqlite(op, e)
}

impl From<proto::UnknownValue> for StoreError {
    /// A stored enum text no variant knows: the row is invalid data.
    fn from(e: proto::UnknownValue) -> Self {
        StoreError::Invalid(e.to_string())
    }
}
