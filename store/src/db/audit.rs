//! The append-only audit log: the row every ledger and outbox change
//! appends in its own commit, and reading the log back.

use rusqlite::{Connection, params};

use super::Store;
use crate::StoreError;
use crate::error::sql;
use crate::model::UnixMillis;

/// One row of the append-only audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: UnixMillis,
    pub reference: Option<String>,
    pub event: String,
    pub detail: serde_json::Value,
}

impl Store {
    /// Audit rows with id greater than `after`, oldest first.
    pub fn audit_log(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, at, reference, event, detail FROM audit_log \
                     WHERE id > ?1 ORDER BY id LIMIT ?2",
                )
                .map_err(sql("reading the audit log"))?;
            let rows = stmt
                .query_map(params![after, limit], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                })
                .map_err(sql("reading the audit log"))?;
            let mut out = Vec::new();
            for row in rows {
                let (id, at, reference, event, detail) =
                    row.map_err(sql("reading the audit log"))?;
                let detail = serde_json::from_str(&detail)
                    .map_err(|e| StoreError::Invalid(format!("audit row {id}: {e}")))?;
                out.push(AuditEntry {
                    id,
                    at,
                    reference,
                    event,
                    detail,
                });
            }
            Ok(out)
        })
    }
}

pub(super) fn audit(
    conn: &Connection,
    now: UnixMillis,
    reference: Option<&str>,
    event: &str,
    detail: &serde_json::Value,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO audit_log (at, reference, event, detail) VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut s| s.execute(params![now, reference, event, detail.to_string()]))
    .map_err(sql("appending to the audit log"))?;
    Ok(())
}
