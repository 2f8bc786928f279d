//! Shifts (SPEC 7.5): the current shift's number and opening time (kv),
//! its figures (X report), closing it (Z report: a `shifts` row, the
//! report queued for the backend, the next number, in one commit), past
//! shifts, and the recent sales a refund at the terminal picks from.
//!
//! Shift numbers start at 1 and only ever grow: the `shifts` table's
//! primary key refuses a number twice and the current number is the last
//! closed one plus one, kept in the same commit as the close.

use proto::wire::{CountTotal, ShiftTotals};
use proto::{Money, Total};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;

use super::audit::audit;
use super::kv::{kv_delete_in, kv_get_in, kv_set_in};
use super::ledger_row::{RawTx, TX_COLUMNS, collect_tx};
use super::outbox::enqueue;
use super::{Store, non_negative};
use crate::StoreError;
use crate::error::sql;
use crate::model::{
    DecisionMode, Durability, NewOutboxItem, OutboxKind, ShiftReport, Transaction, TxKind, TxState,
    UnixMillis, truncate,
};

const KEY_SHIFT: &str = "shift.current";
const KEY_SHIFT_OPENED_AT: &str = "shift.opened_at";

fn parse_kv<T: std::str::FromStr>(key: &str, v: Option<String>) -> Result<Option<T>, StoreError> {
    v.map(|s| {
        s.parse::<T>().map_err(|_| {
            StoreError::Invalid(format!("{key} {:?} is not a number", truncate(&s, 24)))
        })
    })
    .transpose()
}

fn current_in(conn: &Connection) -> Result<u64, StoreError> {
    Ok(parse_kv::<u64>(KEY_SHIFT, kv_get_in(conn, KEY_SHIFT)?)?
        .unwrap_or(1)
        .max(1))
}

fn opened_at_in(conn: &Connection) -> Result<Option<UnixMillis>, StoreError> {
    parse_kv::<i64>(KEY_SHIFT_OPENED_AT, kv_get_in(conn, KEY_SHIFT_OPENED_AT)?)
}

/// The current shift's number, opening it at `now` if nobody did since
/// the last Z report (used by every transaction insert).
pub(super) fn open_current(
    tx: &rusqlite::Transaction<'_>,
    now: UnixMillis,
) -> Result<i64, StoreError> {
    if opened_at_in(tx)?.is_none() {
        kv_set_in(tx, KEY_SHIFT_OPENED_AT, &now.to_string(), now)?;
    }
    i64::try_from(current_in(tx)?).map_err(|_| StoreError::Invalid("shift number too large".into()))
}

/// The figures of shift `shift_no` from its transactions.
fn totals_in(conn: &Connection, shift_no: u64) -> Result<ShiftTotals, StoreError> {
    let shift = i64::try_from(shift_no)
        .map_err(|_| StoreError::InvalidInput("shift number too large".into()))?;
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {TX_COLUMNS} FROM transactions WHERE shift_no = ?1 ORDER BY created_at, rowid"
        ))
        .map_err(sql("computing a shift report"))?;
    let rows = stmt
        .query_map([shift], RawTx::from_row)
        .map_err(sql("computing a shift report"))?;
    let txs = collect_tx(rows, "computing a shift report")?;
    Ok(shift_totals(&txs))
}

fn add(ct: &mut CountTotal, m: Money) {
    ct.count = ct.count.saturating_add(1);
    ct.total = Total(ct.total.0.saturating_add(m.minor()));
}

/// Was this approved sale approved without the backend (link down at the
/// tap, or after an online answer that never came)?
fn approved_offline(t: &Transaction) -> bool {
    t.state == TxState::OfflineApproved
        || t.decision
            .as_ref()
            .is_some_and(|d| d.mode == DecisionMode::Offline)
        || t.decline_reason.as_deref() == Some("offline_after_unknown")
}

/// The figures of a shift (SPEC 7.5): approved sales and refunds, declines,
/// tips, online vs offline approvals, sales by operator and by item.
pub fn shift_totals(txs: &[Transaction]) -> ShiftTotals {
    let mut t = ShiftTotals::default();
    for tx in txs {
        let approved = tx.state.is_approved();
        match (tx.kind, approved) {
            (_, false) if matches!(tx.state, TxState::Declined | TxState::OfflineDeclined) => {
                add(&mut t.declined, tx.amount)
            }
            (TxKind::Refund, true) => add(&mut t.refunds, tx.amount),
            (TxKind::Sale, true) => {
                add(&mut t.sales, tx.amount);
                if approved_offline(tx) {
                    add(&mut t.offline, tx.amount);
                } else {
                    add(&mut t.online, tx.amount);
                }
                if let Some(tip) = tx.tip_amount {
                    add(&mut t.tips, tip);
                }
                if let Some(op) = &tx.operator_id {
                    add(t.by_operator.entry(op.clone()).or_default(), tx.amount);
                }
                for it in &tx.items {
                    t.by_item.entry(it.item_id.clone()).or_default().add(
                        &it.name,
                        it.qty,
                        it.unit_price,
                    );
                }
            }
            _ => {}
        }
    }
    t
}

impl Store {
    /// The current shift's number.
    pub fn current_shift(&self) -> Result<u64, StoreError> {
        self.read(current_in)
    }

    /// Opens the current shift at `now` unless it is open already (boot,
    /// first login after a Z report).
    pub fn open_shift(&self, now: UnixMillis) -> Result<(), StoreError> {
        self.write("opening the shift", Durability::Full, |tx| {
            open_current(tx, now)?;
            Ok(())
        })
    }

    /// The current shift so far (X report).
    pub fn x_report(&self) -> Result<ShiftReport, StoreError> {
        self.read(|conn| {
            let shift_no = current_in(conn)?;
            Ok(ShiftReport {
                shift_no,
                opened_at: opened_at_in(conn)?,
                closed_at: None,
                closed_by: None,
                totals: totals_in(conn, shift_no)?,
            })
        })
    }

    /// Closes the current shift (Z report) in one commit: its `shifts`
    /// row, the outbox item `payload(&report)` builds, the next shift
    /// number. The counters of the next shift start at zero.
    pub fn close_shift(
        &self,
        now: UnixMillis,
        closed_by: Option<&str>,
        payload: impl FnOnce(&ShiftReport) -> Result<serde_json::Value, String>,
    ) -> Result<ShiftReport, StoreError> {
        if let Some(op) = closed_by {
            crate::model::check_text("operator id", op, 64)?;
        }
        self.write("closing the shift", Durability::Full, |tx| {
            let shift_no = current_in(tx)?;
            let report = ShiftReport {
                shift_no,
                opened_at: opened_at_in(tx)?,
                closed_at: Some(now),
                closed_by: closed_by.map(str::to_string),
                totals: totals_in(tx, shift_no)?,
            };
            let totals = serde_json::to_string(&report.totals)
                .map_err(|e| StoreError::Invalid(format!("shift totals: {e}")))?;
            let n = i64::try_from(shift_no)
                .map_err(|_| StoreError::Invalid("shift number too large".into()))?;
            tx.prepare_cached(
                "INSERT INTO shifts (shift_no, opened_at, closed_at, closed_by, totals) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut s| s.execute(params![n, report.opened_at, now, closed_by, totals]))
            .map_err(sql("recording a closed shift"))?;
            let body = payload(&report)
                .map_err(|e| StoreError::InvalidInput(format!("shift {shift_no}: report: {e}")))?;
            enqueue(tx, now, &NewOutboxItem::new(OutboxKind::Shift, body))?;
            let next = shift_no
                .checked_add(1)
                .ok_or_else(|| StoreError::Invalid("shift number overflowed".into()))?;
            kv_set_in(tx, KEY_SHIFT, &next.to_string(), now)?;
            kv_delete_in(tx, KEY_SHIFT_OPENED_AT)?;
            audit(
                tx,
                now,
                None,
                "shift_closed",
                &json!({"shift_no": shift_no, "closed_by": closed_by,
                        "sales": report.totals.sales.count}),
            )?;
            Ok(report)
        })
    }

    /// A shift by number: the closed one's stored report, or the current
    /// one's figures so far. `None` for a number never used.
    pub fn shift_report(&self, shift_no: u64) -> Result<Option<ShiftReport>, StoreError> {
        self.read(|conn| {
            let current = current_in(conn)?;
            if shift_no == current {
                return Ok(Some(ShiftReport {
                    shift_no,
                    opened_at: opened_at_in(conn)?,
                    closed_at: None,
                    closed_by: None,
                    totals: totals_in(conn, shift_no)?,
                }));
            }
            let n = i64::try_from(shift_no)
                .map_err(|_| StoreError::InvalidInput("shift number too large".into()))?;
            let row: Option<(Option<i64>, i64, Option<String>, String)> = conn
                .prepare_cached(
                    "SELECT opened_at, closed_at, closed_by, totals FROM shifts WHERE shift_no = ?1",
                )
                .and_then(|mut s| {
                    s.query_row([n], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                        .optional()
                })
                .map_err(sql("reading a shift"))?;
            row.map(|(opened_at, closed_at, closed_by, totals)| {
                let totals = serde_json::from_str(&totals).map_err(|e| {
                    StoreError::Invalid(format!("shift {shift_no}: stored totals: {e}"))
                })?;
                Ok(ShiftReport {
                    shift_no,
                    opened_at,
                    closed_at: Some(closed_at),
                    closed_by,
                    totals,
                })
            })
            .transpose()
        })
    }

    /// The last `limit` approved sales, newest first, each with what is
    /// left to refund on it (the terminal's refund picker).
    pub fn recent_sales(&self, limit: u32) -> Result<Vec<(Transaction, Money)>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {TX_COLUMNS} FROM transactions \
                     WHERE kind = 'sale' AND state IN ('approved', 'offline_approved') \
                     ORDER BY created_at DESC, rowid DESC LIMIT ?1"
                ))
                .map_err(sql("listing recent sales"))?;
            let rows = stmt
                .query_map([limit], RawTx::from_row)
                .map_err(sql("listing recent sales"))?;
            let sales = collect_tx(rows, "listing recent sales")?;
            sales
                .into_iter()
                .map(|t| {
                    let left = super::ledger::refundable_in(conn, &t.reference)?;
                    Ok((t, left))
                })
                .collect()
        })
    }

    /// Closed shifts, newest first (for `pos-agent report`).
    pub fn closed_shifts(&self, limit: u32) -> Result<Vec<u64>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT shift_no FROM shifts ORDER BY shift_no DESC LIMIT ?1")
                .map_err(sql("listing shifts"))?;
            let rows = stmt
                .query_map([limit], |r| r.get::<_, i64>(0))
                .map_err(sql("listing shifts"))?;
            let mut out = Vec::new();
            for r in rows {
                out.push(non_negative(
                    r.map_err(sql("listing shifts"))?,
                    "shift number",
                )?);
            }
            Ok(out)
        })
    }
}
