//! The outbox: enqueueing items, claiming due ones in per-reference and
//! per-payment order, acknowledging, retrying with backoff, parking and
//! unparking, listing and queue statistics.

use std::time::Duration;

use proto::{PaymentId, Reference};
use rusqlite::{OptionalExtension, Row, params};
use serde_json::json;

use super::audit::audit;
use super::{Store, non_negative};
use crate::StoreError;
use crate::error::sql;
use crate::model::{
    Durability, NewOutboxItem, OutboxId, OutboxItem, OutboxKind, OutboxStats, UnixMillis,
};

/// Longest `last_error` kept on an outbox item, in characters.
const MAX_ERROR_CHARS: usize = 512;

impl Store {
    /// Claims the oldest due item that no earlier item of the same reference
    /// or payment id still precedes (waiting, in flight or parked), marking
    /// it in flight and counting the attempt, in one statement. A relaxed
    /// commit: open resets in-flight marks anyway, and an attempt count
    /// lost in a power cut only shortens one backoff.
    pub fn claim_next_due(&self, now: UnixMillis) -> Result<Option<OutboxItem>, StoreError> {
        self.write("claiming an outbox item", Durability::Relaxed, |tx| {
            let mut stmt = tx
                .prepare_cached(&format!(
                    "UPDATE outbox SET in_flight = 1, attempts = attempts + 1 \
                     WHERE id = (SELECT o.id FROM outbox o \
                                 WHERE o.in_flight = 0 AND o.parked = 0 \
                                   AND o.next_attempt_at <= ?1 AND {UNBLOCKED} \
                                 ORDER BY o.id LIMIT 1) \
                     RETURNING {OUTBOX_COLUMNS}"
                ))
                .map_err(sql("claiming an outbox item"))?;
            let raw = stmt
                .query_row([now], RawOutbox::from_row)
                .optional()
                .map_err(sql("claiming an outbox item"))?;
            raw.map(RawOutbox::validate).transpose()
        })
    }

    /// Claims up to `limit` due items at once, oldest first, under the same
    /// rule as [`Store::claim_next_due`]: an item is never claimed while an
    /// earlier item of its reference or payment id is in the outbox, so at
    /// most one item per reference and per payment is in flight. One commit
    /// for the whole batch. A `limit` of 0 claims nothing.
    pub fn claim_due(&self, now: UnixMillis, limit: u32) -> Result<Vec<OutboxItem>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.write("claiming outbox items", Durability::Relaxed, |tx| {
            let mut stmt = tx
                .prepare_cached(&format!(
                    "UPDATE outbox SET in_flight = 1, attempts = attempts + 1 \
                     WHERE id IN (SELECT o.id FROM outbox o \
                                  WHERE o.in_flight = 0 AND o.parked = 0 \
                                    AND o.next_attempt_at <= ?1 AND {UNBLOCKED} \
                                  ORDER BY o.id LIMIT ?2) \
                     RETURNING {OUTBOX_COLUMNS}"
                ))
                .map_err(sql("claiming outbox items"))?;
            let rows = stmt
                .query_map(params![now, limit], RawOutbox::from_row)
                .map_err(sql("claiming outbox items"))?;
            let mut out = Vec::new();
            for row in rows {
                out.push(row.map_err(sql("claiming outbox items"))?.validate()?);
            }
            // RETURNING has no defined order.
            out.sort_by_key(|i| i.id);
            Ok(out)
        })
    }

    /// When the next claimable item falls due (`None`: nothing to send until
    /// something is enqueued, acknowledged, retried or unparked). The outbox
    /// task sleeps until then instead of polling.
    pub fn next_due_at(&self) -> Result<Option<UnixMillis>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT min(o.next_attempt_at) FROM outbox o \
                 WHERE o.in_flight = 0 AND o.parked = 0 AND {UNBLOCKED}"
            ))
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(sql("finding the next due outbox item"))
        })
    }

    /// The link to the backend is back: every waiting item becomes due now,
    /// but never before the time a server asked for (`Retry-After`, kept by
    /// [`Store::retry`]). Their backoff counted connection failures, which
    /// say nothing about how soon the backend can take them. Parked and
    /// in-flight items are left alone. Returns how many items moved.
    pub fn expedite(&self, now: UnixMillis) -> Result<usize, StoreError> {
        self.write("expediting the outbox", Durability::Relaxed, |tx| {
            tx.prepare_cached(
                "UPDATE outbox SET next_attempt_at = max(?1, coalesce(not_before, ?1)) \
                 WHERE in_flight = 0 AND parked = 0 \
                   AND next_attempt_at > max(?1, coalesce(not_before, ?1))",
            )
            .and_then(|mut s| s.execute([now]))
            .map_err(sql("expediting the outbox"))
        })
    }

    /// The wall clock stepped by `step_ms`: move every scheduled time (the
    /// next attempt and the server's `Retry-After`) by the same step, so a
    /// wait lasts what it was meant to. Returns how many items moved.
    pub fn shift_schedule(&self, step_ms: i64) -> Result<usize, StoreError> {
        self.write("moving the outbox schedule", Durability::Relaxed, |tx| {
            tx.prepare_cached(
                "UPDATE outbox SET next_attempt_at = next_attempt_at + ?1, \
                 not_before = not_before + ?1 WHERE parked = 0",
            )
            .and_then(|mut s| s.execute([step_ms]))
            .map_err(sql("moving the outbox schedule"))
        })
    }

    /// The backend acknowledged the item: delete it (and audit that). A
    /// relaxed commit: lost in a power cut, the item is sent again under
    /// its idempotency key and acknowledged again.
    pub fn ack(&self, id: OutboxId, now: UnixMillis) -> Result<(), StoreError> {
        self.write("acknowledging an outbox item", Durability::Relaxed, |tx| {
            let row: Option<(String, Option<String>)> = tx
                .prepare_cached("DELETE FROM outbox WHERE id = ?1 RETURNING kind, reference")
                .and_then(|mut s| {
                    s.query_row([id.0], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                })
                .map_err(sql("acknowledging an outbox item"))?;
            let Some((kind, reference)) = row else {
                return Err(not_found_item(id));
            };
            audit(
                tx,
                now,
                reference.as_deref(),
                "outbox_acked",
                &json!({ "id": id.0, "kind": kind }),
            )
        })
    }

    /// The backend acknowledged these items: delete them (and audit each)
    /// in one commit. Ids no longer in the outbox are skipped. Returns how
    /// many items were deleted. Relaxed, like [`Store::ack`].
    pub fn ack_many(&self, ids: &[OutboxId], now: UnixMillis) -> Result<usize, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.write("acknowledging outbox items", Durability::Relaxed, |tx| {
            let mut acked = 0;
            for id in ids {
                let row: Option<(String, Option<String>)> = tx
                    .prepare_cached("DELETE FROM outbox WHERE id = ?1 RETURNING kind, reference")
                    .and_then(|mut s| {
                        s.query_row([id.0], |r| Ok((r.get(0)?, r.get(1)?)))
                            .optional()
                    })
                    .map_err(sql("acknowledging outbox items"))?;
                let Some((kind, reference)) = row else {
                    continue;
                };
                audit(
                    tx,
                    now,
                    reference.as_deref(),
                    "outbox_acked",
                    &json!({ "id": id.0, "kind": kind }),
                )?;
                acked += 1;
            }
            Ok(acked)
        })
    }

    /// A transient failure: schedule the next attempt with exponential
    /// backoff and jitter, or at `retry_after` when that is later. Returns
    /// the time of the next attempt. Relaxed without `retry_after`: a
    /// backoff lost in a power cut leaves the item due at its previous
    /// time. The time a server asked for is kept durably: it always wins.
    pub fn retry(
        &self,
        id: OutboxId,
        now: UnixMillis,
        error: &str,
        retry_after: Option<Duration>,
    ) -> Result<UnixMillis, StoreError> {
        let durability = if retry_after.is_some() {
            Durability::Full
        } else {
            Durability::Relaxed
        };
        self.write("rescheduling an outbox item", durability, |tx| {
            let row: Option<(i64, i64)> = tx
                .prepare_cached("SELECT attempts, parked FROM outbox WHERE id = ?1")
                .and_then(|mut s| {
                    s.query_row([id.0], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                })
                .map_err(sql("rescheduling an outbox item"))?;
            let Some((attempts, parked)) = row else {
                return Err(not_found_item(id));
            };
            if parked != 0 {
                return Err(StoreError::InvalidInput(format!(
                    "outbox item {id} is parked; unpark it first"
                )));
            }
            let attempts = u32::try_from(attempts.max(1)).unwrap_or(u32::MAX);
            let delay = self.options.retry.delay(attempts, retry_after);
            let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
            let next = now.saturating_add(delay_ms);
            // What the server asked for is kept apart from the backoff: a
            // returning link may cut the backoff short, never this.
            let not_before = retry_after
                .map(|d| now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
            tx.prepare_cached(
                "UPDATE outbox SET in_flight = 0, next_attempt_at = ?2, last_error = ?3, \
                 not_before = ?4 WHERE id = ?1",
            )
            .and_then(|mut s| s.execute(params![id.0, next, clean_error(error), not_before]))
            .map_err(sql("rescheduling an outbox item"))?;
            Ok(next)
        })
    }

    /// A permanent failure: keep the item with its error, out of the queue,
    /// visible in `list_outbox`, blocking later items of the same payment.
    pub fn park(&self, id: OutboxId, now: UnixMillis, error: &str) -> Result<(), StoreError> {
        self.write("parking an outbox item", Durability::Full, |tx| {
            let error = clean_error(error);
            let row: Option<(String, Option<String>)> = tx
                .prepare_cached(
                    "UPDATE outbox SET parked = 1, in_flight = 0, last_error = ?2 \
                     WHERE id = ?1 RETURNING kind, reference",
                )
                .and_then(|mut s| {
                    s.query_row(params![id.0, error], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                })
                .map_err(sql("parking an outbox item"))?;
            let Some((kind, reference)) = row else {
                return Err(not_found_item(id));
            };
            tracing::error!(item = id.0, kind = %kind, error = %error, "outbox item parked");
            audit(
                tx,
                now,
                reference.as_deref(),
                "outbox_parked",
                &json!({ "id": id.0, "kind": kind, "error": error }),
            )
        })
    }

    /// Puts a parked item back in the queue, due now (operator action).
    pub fn unpark(&self, id: OutboxId, now: UnixMillis) -> Result<(), StoreError> {
        self.write("unparking an outbox item", Durability::Full, |tx| {
            let row: Option<(String, Option<String>)> = tx
                .prepare_cached(
                    "UPDATE outbox SET parked = 0, next_attempt_at = ?2 \
                     WHERE id = ?1 AND parked = 1 RETURNING kind, reference",
                )
                .and_then(|mut s| {
                    s.query_row(params![id.0, now], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                })
                .map_err(sql("unparking an outbox item"))?;
            let Some((kind, reference)) = row else {
                return Err(StoreError::NotFound {
                    what: format!("parked outbox item {id}"),
                });
            };
            audit(
                tx,
                now,
                reference.as_deref(),
                "outbox_unparked",
                &json!({ "id": id.0, "kind": kind }),
            )
        })
    }

    /// Puts every parked item back in line, due at `now`, in one commit (an
    /// audit row each). Returns their ids, oldest first.
    pub fn unpark_all(&self, now: UnixMillis) -> Result<Vec<OutboxId>, StoreError> {
        self.write("unparking the outbox", Durability::Full, |tx| {
            let rows: Vec<(i64, String, Option<String>)> = tx
                .prepare_cached(
                    "UPDATE outbox SET parked = 0, next_attempt_at = ?1 \
                     WHERE parked = 1 RETURNING id, kind, reference",
                )
                .and_then(|mut s| {
                    s.query_map([now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                        .collect::<Result<Vec<_>, _>>()
                })
                .map_err(sql("unparking the outbox"))?;
            let mut ids = Vec::with_capacity(rows.len());
            for (id, kind, reference) in rows {
                audit(
                    tx,
                    now,
                    reference.as_deref(),
                    "outbox_unparked",
                    &json!({ "id": id, "kind": kind }),
                )?;
                ids.push(OutboxId(id));
            }
            ids.sort();
            Ok(ids)
        })
    }

    /// Every outbox item, oldest first (for `pos-agent queue`).
    pub fn list_outbox(&self) -> Result<Vec<OutboxItem>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!("SELECT {OUTBOX_COLUMNS} FROM outbox ORDER BY id"))
                .map_err(sql("listing the outbox"))?;
            let rows = stmt
                .query_map([], RawOutbox::from_row)
                .map_err(sql("listing the outbox"))?;
            let mut out = Vec::new();
            for row in rows {
                out.push(row.map_err(sql("listing the outbox"))?.validate()?);
            }
            Ok(out)
        })
    }

    /// Queue depth and age for the heartbeat and the idle screen.
    pub fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        self.read(|conn| {
            let (queued, parked, in_flight, oldest): (i64, i64, i64, Option<i64>) = conn
                .prepare_cached(
                    "SELECT count(*), coalesce(sum(parked), 0), coalesce(sum(in_flight), 0), \
                     min(created_at) FROM outbox",
                )
                .and_then(|mut s| {
                    s.query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                })
                .map_err(sql("counting the outbox"))?;
            Ok(OutboxStats {
                queued: non_negative(queued, "queued")?,
                parked: non_negative(parked, "parked")?,
                in_flight: non_negative(in_flight, "in flight")?,
                oldest_created_at: oldest,
            })
        })
    }
}

/// An item is blocked while an earlier item of the same reference or
/// payment id is still in the table (waiting, in flight or parked).
const UNBLOCKED: &str = "NOT EXISTS (SELECT 1 FROM outbox e \
       WHERE o.reference IS NOT NULL AND e.reference = o.reference AND e.id < o.id) \
     AND NOT EXISTS (SELECT 1 FROM outbox e \
       WHERE o.payment_id IS NOT NULL AND e.payment_id = o.payment_id AND e.id < o.id)";

fn not_found_item(id: OutboxId) -> StoreError {
    StoreError::NotFound {
        what: format!("outbox item {id}"),
    }
}

fn clean_error(error: &str) -> String {
    error
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_ERROR_CHARS)
        .collect()
}

pub(super) fn enqueue(
    tx: &rusqlite::Transaction<'_>,
    now: UnixMillis,
    item: &NewOutboxItem,
) -> Result<OutboxId, StoreError> {
    if matches!(item.kind, OutboxKind::Transaction | OutboxKind::Reversal)
        && item.reference.is_none()
    {
        return Err(StoreError::InvalidInput(format!(
            "a {} outbox item needs a reference",
            item.kind
        )));
    }
    let id = tx
        .prepare_cached(
            "INSERT INTO outbox (kind, payload, reference, payment_id, next_attempt_at, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
        )
        .and_then(|mut s| {
            s.query_row(
                params![
                    item.kind.as_str(),
                    item.payload.to_string(),
                    item.reference.as_ref().map(Reference::as_str),
                    item.payment_id.as_ref().map(PaymentId::as_str),
                    item.not_before.unwrap_or(now),
                    now,
                ],
                |r| r.get::<_, i64>(0),
            )
        });
    match id.map_err(sql("enqueueing an outbox item")) {
        Ok(id) => Ok(OutboxId(id)),
        Err(StoreError::Duplicate { .. }) => Err(StoreError::Duplicate {
            what: format!(
                "{} outbox item for reference {}",
                item.kind,
                item.reference
                    .as_ref()
                    .map(Reference::as_str)
                    .unwrap_or("-")
            ),
        }),
        Err(e) => Err(e),
    }
}

const OUTBOX_COLUMNS: &str = "id, kind, payload, reference, payment_id, attempts, \
    next_attempt_at, in_flight, last_error, parked, created_at";

/// An outbox row before validation.
struct RawOutbox {
    id: i64,
    kind: String,
    payload: String,
    reference: Option<String>,
    payment_id: Option<String>,
    attempts: i64,
    next_attempt_at: i64,
    in_flight: i64,
    last_error: Option<String>,
    parked: i64,
    created_at: i64,
}

impl RawOutbox {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<RawOutbox> {
        Ok(RawOutbox {
            id: r.get(0)?,
            kind: r.get(1)?,
            payload: r.get(2)?,
            reference: r.get(3)?,
            payment_id: r.get(4)?,
            attempts: r.get(5)?,
            next_attempt_at: r.get(6)?,
            in_flight: r.get(7)?,
            last_error: r.get(8)?,
            parked: r.get(9)?,
            created_at: r.get(10)?,
        })
    }

    fn validate(self) -> Result<OutboxItem, StoreError> {
        let id = self.id;
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            StoreError::Invalid(format!("outbox item {id}: {what}: {e}"))
        };
        Ok(OutboxItem {
            id: OutboxId(id),
            kind: OutboxKind::parse(&self.kind)?,
            payload: serde_json::from_str(&self.payload).map_err(|e| bad("payload", &e))?,
            reference: self
                .reference
                .map(Reference::new)
                .transpose()
                .map_err(|e| bad("reference", &e))?,
            payment_id: self
                .payment_id
                .map(PaymentId::new)
                .transpose()
                .map_err(|e| bad("payment_id", &e))?,
            attempts: u32::try_from(self.attempts).map_err(|e| bad("attempts", &e))?,
            next_attempt_at: self.next_attempt_at,
            in_flight: self.in_flight != 0,
            last_error: self.last_error,
            parked: self.parked != 0,
            created_at: self.created_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_checks_use_the_outbox_indexes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path().join("plan.db")).expect("open");
        let conn = store.lock_writer();
        let mut stmt = conn
            .prepare(&format!(
                "EXPLAIN QUERY PLAN SELECT o.id FROM outbox o \
                 WHERE o.in_flight = 0 AND o.parked = 0 AND o.next_attempt_at <= 0 \
                 AND {UNBLOCKED} ORDER BY o.id LIMIT 1"
            ))
            .expect("prepare");
        let plan: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(3))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        let plan = plan.join("\n");
        assert!(plan.contains("INDEX outbox_by_reference"), "{plan}");
        assert!(plan.contains("INDEX outbox_payment_id"), "{plan}");
    }
}
