//! The kv table: small durable values (session cache, last SSE event id)
//! and the reference sequence counter kept in it.

use rusqlite::{Connection, OptionalExtension, params};

use super::Store;
use crate::StoreError;
use crate::error::sql;
use crate::model::{Durability, UnixMillis, truncate};

/// kv key of the reference sequence counter.
pub const KEY_REFERENCE_SEQUENCE: &str = "reference_sequence";

impl Store {
    /// Increments and returns the reference sequence (starts at 1). Mint
    /// `Reference::for_sequence(tid, n)` from it, and commit the
    /// transaction that carries the reference before any network use.
    ///
    /// The increment is a relaxed commit (no fsync of its own): the
    /// transaction's row, committed durably before the reference leaves
    /// the terminal, comes after it in the WAL, so whenever that row
    /// survives a power cut the counter does too; and a counter lost with
    /// its row was never seen by anyone. A reference is never reused.
    pub fn next_sequence(&self, now: UnixMillis) -> Result<u64, StoreError> {
        self.write(
            "taking the next reference sequence",
            Durability::Relaxed,
            |tx| {
                let current = kv_get_in(tx, KEY_REFERENCE_SEQUENCE)?;
                let current = match current {
                    None => 0,
                    Some(s) => s.parse::<u64>().map_err(|_| {
                        StoreError::Invalid(format!(
                            "reference sequence {:?} is not a number",
                            truncate(&s, 24)
                        ))
                    })?,
                };
                let next = current.checked_add(1).ok_or_else(|| {
                    StoreError::Invalid("reference sequence overflowed".to_string())
                })?;
                kv_set_in(tx, KEY_REFERENCE_SEQUENCE, &next.to_string(), now)?;
                Ok(next)
            },
        )
    }

    /// Reads a kv value (session cache, last SSE event id...).
    pub fn kv_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.read(|conn| kv_get_in(conn, key))
    }

    /// Durably sets a kv value. Setting the value a key already has writes
    /// nothing (no WAL frame, no fsync; `updated_at` stays when it last
    /// changed): caches refreshed at every boot cost the disk nothing.
    pub fn kv_set(&self, key: &str, value: &str, now: UnixMillis) -> Result<(), StoreError> {
        self.kv_set_with(key, value, now, Durability::Full)
    }

    /// Sets a kv value with the given durability: `Relaxed` for a value
    /// whose loss in a power cut costs nothing (the last command-stream
    /// event id: a replayed command is recognised and skipped).
    pub fn kv_set_with(
        &self,
        key: &str,
        value: &str,
        now: UnixMillis,
        durability: Durability,
    ) -> Result<(), StoreError> {
        self.write("setting a kv value", durability, |tx| {
            kv_set_in(tx, key, value, now)
        })
    }

    /// Durably removes a kv value; true if it existed.
    pub fn kv_delete(&self, key: &str) -> Result<bool, StoreError> {
        self.write("deleting a kv value", Durability::Full, |tx| {
            kv_delete_in(tx, key)
        })
    }
}

pub(super) fn kv_delete_in(conn: &Connection, key: &str) -> Result<bool, StoreError> {
    let n = conn
        .execute("DELETE FROM kv WHERE key = ?1", [key])
        .map_err(sql("deleting a kv value"))?;
    Ok(n > 0)
}

pub(super) fn kv_get_in(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    conn.prepare_cached("SELECT value FROM kv WHERE key = ?1")
        .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
        .map_err(sql("reading a kv value"))
}

pub(super) fn kv_set_in(
    conn: &Connection,
    key: &str,
    value: &str,
    now: UnixMillis,
) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > 128 {
        return Err(StoreError::InvalidInput(
            "kv key must be 1 to 128 bytes".into(),
        ));
    }
    conn.prepare_cached(
        "INSERT INTO kv (key, value, updated_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at \
         WHERE value IS NOT excluded.value",
    )
    .and_then(|mut s| s.execute(params![key, value, now]))
    .map_err(sql("setting a kv value"))?;
    Ok(())
}
