//! The synchronous store: one writer connection behind a mutex, a small
//! pool of read-only reader connections.

mod audit;
mod kv;
mod open;
mod reports;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use proto::{Currency, Money, PaymentId, Reference, Total};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior, params};
use serde_json::json;

use crate::error::sql;
use crate::model::{
    ApprovedTotals, Card, Change, CountTotal, Decision, DecisionMode, NewOutboxItem,
    NewTransaction, OfflineExposure, OutboxId, OutboxItem, OutboxKind, OutboxStats, Page,
    RetryPolicy, Totals, Transaction, TxKind, TxState, TxUpdate, TxWrite, UnixMillis, check_text,
    truncate,
};
use crate::{StoreError, schema};

pub use open::{Pragmas, StoreOptions};
pub use kv::KEY_REFERENCE_SEQUENCE;
pub use audit::AuditEntry;
use audit::audit;

/// How many idle reader connections are kept.
const READER_POOL: usize = 4;
/// Longest `last_error` kept on an outbox item, in characters.
const MAX_ERROR_CHARS: usize = 512;

/// The durable ledger, outbox and audit log of one terminal.
pub struct Store {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    options: StoreOptions,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Commits a change atomically: the transaction insert or update, one
    /// audit row, and the outbox items. Returns the new outbox ids in order.
    pub fn record(&self, change: &Change) -> Result<Vec<OutboxId>, StoreError> {
        self.write("recording a change", |tx| {
            if let Some(write) = &change.write {
                match write {
                    TxWrite::Insert(new) => insert_transaction(tx, change.now, new)?,
                    TxWrite::Update { reference, update } => {
                        update_transaction(tx, change.now, reference, update)?
                    }
                }
            }
            change
                .enqueue
                .iter()
                .map(|item| enqueue(tx, change.now, item))
                .collect()
        })
    }

    /// The transaction with this reference.
    pub fn transaction(&self, reference: &Reference) -> Result<Option<Transaction>, StoreError> {
        self.read(|conn| get_transaction(conn, reference.as_str()))
    }

    /// The transactions of a partner payment (a sale and its refunds), oldest first.
    pub fn transactions_for_payment(
        &self,
        payment_id: &PaymentId,
    ) -> Result<Vec<Transaction>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {TX_COLUMNS} FROM transactions WHERE payment_id = ?1 \
                     ORDER BY created_at, rowid"
                ))
                .map_err(sql("looking up a payment"))?;
            let rows = stmt
                .query_map([payment_id.as_str()], RawTx::from_row)
                .map_err(sql("looking up a payment"))?;
            collect_tx(rows, "looking up a payment")
        })
    }

    /// Transactions oldest first, one page at a time.
    pub fn list_transactions(&self, page: Page) -> Result<Vec<Transaction>, StoreError> {
        let offset = i64::try_from(page.offset)
            .map_err(|_| StoreError::InvalidInput("page offset too large".into()))?;
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {TX_COLUMNS} FROM transactions \
                     ORDER BY created_at, rowid LIMIT ?1 OFFSET ?2"
                ))
                .map_err(sql("listing transactions"))?;
            let rows = stmt
                .query_map(params![page.limit, offset], RawTx::from_row)
                .map_err(sql("listing transactions"))?;
            collect_tx(rows, "listing transactions")
        })
    }

    /// The transactions boot restores, oldest first: those still `pending`
    /// or `authorizing` (interrupted by a stop) and those `offline_approved`
    /// (not yet confirmed by the backend). Reads only the partial index
    /// `transactions_restorable`, never the whole ledger.
    pub fn restorable_transactions(&self) -> Result<Vec<Transaction>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {TX_COLUMNS} FROM transactions \
                     WHERE {RESTORABLE} ORDER BY created_at, rowid"
                ))
                .map_err(sql("listing restorable transactions"))?;
            let rows = stmt
                .query_map([], RawTx::from_row)
                .map_err(sql("listing restorable transactions"))?;
            collect_tx(rows, "listing restorable transactions")
        })
    }

    /// What is left to refund on a sale: its amount minus refunds that are
    /// approved, offline approved or still open (pending, authorizing,
    /// reversal_pending). Zero unless the sale is approved or offline approved.
    pub fn refundable(&self, sale: &Reference) -> Result<Money, StoreError> {
        self.read(|conn| refundable_in(conn, sale))
    }

    /// Claims the oldest due item that no earlier item of the same reference
    /// or payment id still precedes (waiting, in flight or parked), marking
    /// it in flight and counting the attempt, in one statement.
    pub fn claim_next_due(&self, now: UnixMillis) -> Result<Option<OutboxItem>, StoreError> {
        self.write("claiming an outbox item", |tx| {
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
        self.write("claiming outbox items", |tx| {
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

    /// The link to the backend is back: every waiting item becomes due now.
    /// Their backoff counted connection failures, which say nothing about
    /// how soon the backend can take them. Parked and in-flight items are
    /// left alone. Returns how many items moved.
    pub fn expedite(&self, now: UnixMillis) -> Result<usize, StoreError> {
        self.write("expediting the outbox", |tx| {
            tx.prepare_cached(
                "UPDATE outbox SET next_attempt_at = ?1 \
                 WHERE in_flight = 0 AND parked = 0 AND next_attempt_at > ?1",
            )
            .and_then(|mut s| s.execute([now]))
            .map_err(sql("expediting the outbox"))
        })
    }

    /// The backend acknowledged the item: delete it (and audit that).
    pub fn ack(&self, id: OutboxId, now: UnixMillis) -> Result<(), StoreError> {
        self.write("acknowledging an outbox item", |tx| {
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
    /// many items were deleted.
    pub fn ack_many(&self, ids: &[OutboxId], now: UnixMillis) -> Result<usize, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.write("acknowledging outbox items", |tx| {
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
    /// the time of the next attempt.
    pub fn retry(
        &self,
        id: OutboxId,
        now: UnixMillis,
        error: &str,
        retry_after: Option<Duration>,
    ) -> Result<UnixMillis, StoreError> {
        self.write("rescheduling an outbox item", |tx| {
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
            tx.prepare_cached(
                "UPDATE outbox SET in_flight = 0, next_attempt_at = ?2, last_error = ?3 \
                 WHERE id = ?1",
            )
            .and_then(|mut s| s.execute(params![id.0, next, clean_error(error)]))
            .map_err(sql("rescheduling an outbox item"))?;
            Ok(next)
        })
    }

    /// A permanent failure: keep the item with its error, out of the queue,
    /// visible in `list_outbox`, blocking later items of the same payment.
    pub fn park(&self, id: OutboxId, now: UnixMillis, error: &str) -> Result<(), StoreError> {
        self.write("parking an outbox item", |tx| {
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
        self.write("unparking an outbox item", |tx| {
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

    fn lock_writer(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a transaction open:
        // rusqlite rolls back on drop. The connection stays usable.
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn write<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock_writer();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql(op))?;
        let out = f(&tx)?;
        tx.commit().map_err(sql(op))?;
        Ok(out)
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
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql("opening a reader connection"))?;
        conn.busy_timeout(self.options.busy_timeout)
            .map_err(sql("setting the busy timeout"))?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }
}

/// An item is blocked while an earlier item of the same reference or
/// payment id is still in the table (waiting, in flight or parked).
/// The rows boot restores; the exact WHERE term of the partial index
/// `transactions_restorable` (schema step 2), so SQLite uses it.
const RESTORABLE: &str = "state IN ('pending', 'authorizing', 'offline_approved')";

const UNBLOCKED: &str = "NOT EXISTS (SELECT 1 FROM outbox e \
       WHERE o.reference IS NOT NULL AND e.reference = o.reference AND e.id < o.id) \
     AND NOT EXISTS (SELECT 1 FROM outbox e \
       WHERE o.payment_id IS NOT NULL AND e.payment_id = o.payment_id AND e.id < o.id)";

fn non_negative(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Invalid(format!("negative {what} {v}")))
}

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

fn check_opt_text(what: &str, v: &Option<String>, max: usize) -> Result<(), StoreError> {
    match v {
        Some(s) if s.is_empty() => Err(StoreError::InvalidInput(format!("{what} is empty"))),
        Some(s) => check_text(what, s, max),
        None => Ok(()),
    }
}

fn insert_transaction(
    tx: &rusqlite::Transaction<'_>,
    now: UnixMillis,
    new: &NewTransaction,
) -> Result<(), StoreError> {
    if new.amount.is_zero() {
        return Err(StoreError::InvalidInput(format!(
            "transaction {}: amount must be positive",
            new.reference
        )));
    }
    check_opt_text("operator id", &new.operator_id, 64)?;
    if let Some(d) = &new.decision {
        check_text("decision reason", &d.reason, 256)?;
    }
    if new.state.is_approved() && new.card.is_none() {
        return Err(StoreError::InvalidInput(format!(
            "transaction {}: an approved transaction needs its card",
            new.reference
        )));
    }
    match (new.kind, &new.original_reference) {
        (TxKind::Sale, None) => {}
        (TxKind::Sale, Some(_)) => {
            return Err(StoreError::InvalidInput(
                "a sale has no original reference".into(),
            ));
        }
        (TxKind::Refund, None) => {
            return Err(StoreError::InvalidInput(
                "a refund needs the reference of its sale".into(),
            ));
        }
        (TxKind::Refund, Some(original)) => {
            let left = refundable_in(tx, original)?;
            if new.amount > left {
                return Err(StoreError::ExceedsRefundable {
                    original_reference: original.to_string(),
                    requested: new.amount.minor(),
                    left: left.minor(),
                });
            }
            if let Some(card) = &new.card {
                check_refund_card(tx, &new.reference, original, card)?;
            }
        }
    }
    let card = new.card.as_ref();
    let inserted = tx
        .prepare_cached(
            "INSERT INTO transactions (reference, payment_id, kind, amount, currency, state, \
             card_token, card_last4, card_brand, card_entry_mode, operator_id, captured_at, \
             decision, decision_reason, original_reference, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?16)",
        )
        .and_then(|mut s| {
            s.execute(params![
                new.reference.as_str(),
                new.payment_id.as_ref().map(PaymentId::as_str),
                new.kind.as_str(),
                minor_i64(new.amount),
                new.currency.code(),
                new.state.as_str(),
                card.map(Card::token),
                card.map(Card::last4),
                card.map(Card::brand),
                card.map(Card::entry_mode),
                new.operator_id,
                new.captured_at,
                new.decision.as_ref().map(|d| d.mode.as_str()),
                new.decision.as_ref().map(|d| d.reason.as_str()),
                new.original_reference.as_ref().map(Reference::as_str),
                now,
            ])
        });
    match inserted.map_err(sql("inserting a transaction")) {
        Ok(_) => {}
        Err(StoreError::Duplicate { .. }) => {
            return Err(StoreError::Duplicate {
                what: format!("transaction reference {}", new.reference),
            });
        }
        Err(e) => return Err(e),
    }
    audit(
        tx,
        now,
        Some(new.reference.as_str()),
        "created",
        &json!({
            "kind": new.kind.as_str(),
            "amount": new.amount.minor(),
            "state": new.state.as_str(),
            "decision": new.decision.as_ref().map(|d| d.mode.as_str()),
        }),
    )
}

fn update_transaction(
    tx: &rusqlite::Transaction<'_>,
    now: UnixMillis,
    reference: &Reference,
    update: &TxUpdate,
) -> Result<(), StoreError> {
    let mut t = get_transaction(tx, reference.as_str())?.ok_or_else(|| StoreError::NotFound {
        what: format!("transaction {reference}"),
    })?;
    let illegal = |detail: String| StoreError::IllegalChange {
        reference: reference.to_string(),
        detail,
    };
    let from = t.state;
    let mut changed: Vec<&str> = Vec::new();
    if let Some(next) = update.state {
        if !from.can_become(next) {
            return Err(illegal(format!("cannot go from {from} to {next}")));
        }
        if next != from {
            t.state = next;
            changed.push("state");
        }
    }
    fn set_once<T: PartialEq + Clone>(
        field: &'static str,
        slot: &mut Option<T>,
        value: &Option<T>,
        changed: &mut Vec<&'static str>,
    ) -> Result<(), String> {
        match (slot.as_ref(), value) {
            (_, None) => Ok(()),
            (Some(old), Some(new)) if old == new => Ok(()),
            (Some(_), Some(_)) => Err(format!("{field} is already set")),
            (None, Some(new)) => {
                *slot = Some(new.clone());
                changed.push(field);
                Ok(())
            }
        }
    }
    check_opt_text(
        "backend transaction id",
        &update.backend_transaction_id,
        128,
    )?;
    check_opt_text("auth code", &update.auth_code, 32)?;
    check_opt_text("decline reason", &update.decline_reason, 256)?;
    if let Some(d) = &update.decision {
        check_text("decision reason", &d.reason, 256)?;
    }
    set_once(
        "payment_id",
        &mut t.payment_id,
        &update.payment_id,
        &mut changed,
    )
    .map_err(illegal)?;
    set_once("card", &mut t.card, &update.card, &mut changed).map_err(illegal)?;
    set_once(
        "captured_at",
        &mut t.captured_at,
        &update.captured_at,
        &mut changed,
    )
    .map_err(illegal)?;
    set_once("decision", &mut t.decision, &update.decision, &mut changed).map_err(illegal)?;
    set_once(
        "backend_transaction_id",
        &mut t.backend_transaction_id,
        &update.backend_transaction_id,
        &mut changed,
    )
    .map_err(illegal)?;
    set_once(
        "auth_code",
        &mut t.auth_code,
        &update.auth_code,
        &mut changed,
    )
    .map_err(illegal)?;
    if update.decline_reason.is_some() && update.decline_reason != t.decline_reason {
        t.decline_reason = update.decline_reason.clone();
        changed.push("decline_reason");
    }
    if t.state.is_approved() && t.card.is_none() {
        return Err(illegal(format!("{} needs the card", t.state)));
    }
    // A refund declined because another card was tapped is recorded with
    // that card; any other refund must carry the card of its sale.
    if let (TxKind::Refund, Some(card), Some(original), false) = (
        t.kind,
        &update.card,
        &t.original_reference,
        t.state == TxState::Declined,
    ) {
        check_refund_card(tx, reference, original, card)?;
    }
    let card = t.card.as_ref();
    tx.prepare_cached(
        "UPDATE transactions SET state = ?2, payment_id = ?3, card_token = ?4, card_last4 = ?5, \
         card_brand = ?6, card_entry_mode = ?7, captured_at = ?8, decision = ?9, \
         decision_reason = ?10, backend_transaction_id = ?11, auth_code = ?12, \
         decline_reason = ?13, updated_at = ?14 WHERE reference = ?1",
    )
    .and_then(|mut s| {
        s.execute(params![
            reference.as_str(),
            t.state.as_str(),
            t.payment_id.as_ref().map(PaymentId::as_str),
            card.map(Card::token),
            card.map(Card::last4),
            card.map(Card::brand),
            card.map(Card::entry_mode),
            t.captured_at,
            t.decision.as_ref().map(|d| d.mode.as_str()),
            t.decision.as_ref().map(|d| d.reason.as_str()),
            t.backend_transaction_id,
            t.auth_code,
            t.decline_reason,
            now,
        ])
    })
    .map_err(sql("updating a transaction"))?;
    audit(
        tx,
        now,
        Some(reference.as_str()),
        "updated",
        &json!({ "from": from.as_str(), "to": t.state.as_str(), "fields": changed }),
    )
}

/// A refund must be tapped with the card of its sale.
fn check_refund_card(
    conn: &Connection,
    reference: &Reference,
    original: &Reference,
    card: &Card,
) -> Result<(), StoreError> {
    let sale_token: Option<String> = conn
        .prepare_cached("SELECT card_token FROM transactions WHERE reference = ?1")
        .and_then(|mut s| s.query_row([original.as_str()], |r| r.get(0)).optional())
        .map_err(sql("checking the refund card"))?
        .flatten();
    if sale_token.as_deref() != Some(card.token()) {
        return Err(StoreError::IllegalChange {
            reference: reference.to_string(),
            detail: format!("refund card does not match the card of sale {original}"),
        });
    }
    Ok(())
}

fn refundable_in(conn: &Connection, sale: &Reference) -> Result<Money, StoreError> {
    let row: Option<(String, String, i64)> = conn
        .prepare_cached("SELECT kind, state, amount FROM transactions WHERE reference = ?1")
        .and_then(|mut s| {
            s.query_row([sale.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .map_err(sql("computing the refundable amount"))?;
    let Some((kind, state, amount)) = row else {
        return Err(StoreError::NotFound {
            what: format!("sale {sale}"),
        });
    };
    if TxKind::parse(&kind)? != TxKind::Sale {
        return Err(StoreError::InvalidInput(format!("{sale} is not a sale")));
    }
    if !TxState::parse(&state)?.is_approved() {
        return Ok(Money::ZERO);
    }
    let refunded: i64 = conn
        .prepare_cached(
            "SELECT coalesce(sum(amount), 0) FROM transactions \
             WHERE original_reference = ?1 AND kind = 'refund' AND state IN \
             ('pending', 'authorizing', 'approved', 'offline_approved', 'reversal_pending')",
        )
        .and_then(|mut s| s.query_row([sale.as_str()], |r| r.get(0)))
        .map_err(sql("computing the refundable amount"))?;
    let amount = money_from_db(amount)?;
    let refunded = non_negative(refunded, "refunded amount")?;
    Ok(Money::from_minor(amount.minor().saturating_sub(refunded)).unwrap_or(Money::ZERO))
}

fn minor_i64(m: Money) -> i64 {
    // Money is at most 10^9 minor units, far below i64::MAX.
    i64::try_from(m.minor()).unwrap_or(i64::MAX)
}

fn money_from_db(v: i64) -> Result<Money, StoreError> {
    u64::try_from(v)
        .ok()
        .and_then(|m| Money::from_minor(m).ok())
        .filter(|m| !m.is_zero())
        .ok_or_else(|| StoreError::Invalid(format!("amount {v} out of range")))
}

fn enqueue(
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

const TX_COLUMNS: &str = "reference, payment_id, kind, amount, currency, state, card_token, \
    card_last4, card_brand, card_entry_mode, operator_id, captured_at, decision, \
    decision_reason, backend_transaction_id, auth_code, decline_reason, original_reference, \
    created_at, updated_at";

fn get_transaction(conn: &Connection, reference: &str) -> Result<Option<Transaction>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {TX_COLUMNS} FROM transactions WHERE reference = ?1"
    ))
    .and_then(|mut s| s.query_row([reference], RawTx::from_row).optional())
    .map_err(sql("reading a transaction"))?
    .map(RawTx::validate)
    .transpose()
}

fn collect_tx(
    rows: impl Iterator<Item = rusqlite::Result<RawTx>>,
    op: &'static str,
) -> Result<Vec<Transaction>, StoreError> {
    let mut out = Vec::new();
    for row in rows {
        out.push(row.map_err(sql(op))?.validate()?);
    }
    Ok(out)
}

/// A transaction row before validation.
struct RawTx {
    reference: String,
    payment_id: Option<String>,
    kind: String,
    amount: i64,
    currency: String,
    state: String,
    card: [Option<String>; 4],
    operator_id: Option<String>,
    captured_at: Option<i64>,
    decision: Option<String>,
    decision_reason: Option<String>,
    backend_transaction_id: Option<String>,
    auth_code: Option<String>,
    decline_reason: Option<String>,
    original_reference: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl RawTx {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<RawTx> {
        Ok(RawTx {
            reference: r.get(0)?,
            payment_id: r.get(1)?,
            kind: r.get(2)?,
            amount: r.get(3)?,
            currency: r.get(4)?,
            state: r.get(5)?,
            card: [r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?],
            operator_id: r.get(10)?,
            captured_at: r.get(11)?,
            decision: r.get(12)?,
            decision_reason: r.get(13)?,
            backend_transaction_id: r.get(14)?,
            auth_code: r.get(15)?,
            decline_reason: r.get(16)?,
            original_reference: r.get(17)?,
            created_at: r.get(18)?,
            updated_at: r.get(19)?,
        })
    }

    fn validate(self) -> Result<Transaction, StoreError> {
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            StoreError::Invalid(format!(
                "transaction {}: {what}: {e}",
                truncate(&self.reference, 64)
            ))
        };
        let reference = Reference::new(self.reference.clone()).map_err(|e| bad("reference", &e))?;
        let payment_id = self
            .payment_id
            .map(PaymentId::new)
            .transpose()
            .map_err(|e| bad("payment_id", &e))?;
        let original_reference = self
            .original_reference
            .map(Reference::new)
            .transpose()
            .map_err(|e| bad("original_reference", &e))?;
        let card = match self.card {
            [Some(token), Some(last4), Some(brand), Some(mode)] => {
                Some(Card::new(token, last4, brand, mode).map_err(|e| bad("card", &e))?)
            }
            [None, None, None, None] => None,
            _ => return Err(bad("card", &"partially stored")),
        };
        let decision = match (self.decision, self.decision_reason) {
            (Some(mode), Some(reason)) => Some(Decision {
                mode: DecisionMode::parse(&mode)?,
                reason,
            }),
            (None, None) => None,
            _ => return Err(bad("decision", &"partially stored")),
        };
        Ok(Transaction {
            reference,
            payment_id,
            kind: TxKind::parse(&self.kind)?,
            amount: money_from_db(self.amount)?,
            currency: Currency::parse(&self.currency).map_err(|e| bad("currency", &e))?,
            state: TxState::parse(&self.state)?,
            card,
            operator_id: self.operator_id,
            captured_at: self.captured_at,
            decision,
            backend_transaction_id: self.backend_transaction_id,
            auth_code: self.auth_code,
            decline_reason: self.decline_reason,
            original_reference,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
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
        assert!(plan.contains("INDEX outbox_reference"), "{plan}");
        assert!(plan.contains("INDEX outbox_payment_id"), "{plan}");
    }
}
