//! Read-only reports over the ledger: offline exposure, totals by state,
//! kind and operator, and the approved totals of the session-closed screen.

use std::time::Duration;

use proto::Total;

use super::{Store, non_negative};
use crate::StoreError;
use crate::error::sql;
use crate::model::{
    ApprovedTotals, Channel, CountTotal, OfflineExposure, Totals, TxKind, TxState, UnixMillis,
};

impl Store {
    /// Offline-approved sales whose `transaction` outbox item the backend has
    /// not acknowledged yet.
    pub fn offline_exposure(&self, now: UnixMillis) -> Result<OfflineExposure, StoreError> {
        self.read(|conn| {
            let (count, total, oldest): (i64, i64, Option<i64>) = conn
                .prepare_cached(
                    "SELECT count(*), coalesce(sum(t.amount), 0), min(t.created_at) \
                     FROM transactions t \
                     WHERE t.kind = 'sale' AND t.state = 'offline_approved' \
                       AND EXISTS (SELECT 1 FROM outbox o \
                                   WHERE o.reference = t.reference AND o.kind = 'transaction')",
                )
                .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))))
                .map_err(sql("computing offline exposure"))?;
            let oldest_age = oldest
                .map(|t| Duration::from_millis(u64::try_from(now.saturating_sub(t)).unwrap_or(0)))
                .unwrap_or_default();
            Ok(OfflineExposure {
                count: non_negative(count, "offline count")?,
                total: Total(non_negative(total, "offline total")?),
                oldest_created_at: oldest,
                oldest_age,
            })
        })
    }

    /// Counts and totals by state, by kind, by operator and by channel
    /// (card or bank transfer, SPEC 7.7).
    pub fn totals(&self) -> Result<Totals, StoreError> {
        self.read(|conn| {
            let tx = conn
                .unchecked_transaction()
                .map_err(sql("computing totals"))?;
            let group = |column: &str| -> Result<Vec<(Option<String>, CountTotal)>, StoreError> {
                let mut stmt = tx
                    .prepare_cached(&format!(
                        "SELECT {column}, count(*), sum(amount) FROM transactions \
                         GROUP BY {column} ORDER BY {column}"
                    ))
                    .map_err(sql("computing totals"))?;
                let rows = stmt
                    .query_map([], |r| {
                        Ok((
                            r.get::<_, Option<String>>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                        ))
                    })
                    .map_err(sql("computing totals"))?;
                let mut out = Vec::new();
                for row in rows {
                    let (key, count, total) = row.map_err(sql("computing totals"))?;
                    out.push((
                        key,
                        CountTotal {
                            count: non_negative(count, "count")?,
                            total: Total(non_negative(total, "total")?),
                        },
                    ));
                }
                Ok(out)
            };
            let required = |k: Option<String>| {
                k.ok_or_else(|| StoreError::Invalid("NULL in a NOT NULL column".into()))
            };
            let mut totals = Totals::default();
            for (k, ct) in group("state")? {
                totals.by_state.push((required(k)?.parse::<TxState>()?, ct));
            }
            for (k, ct) in group("kind")? {
                totals.by_kind.push((required(k)?.parse::<TxKind>()?, ct));
            }
            totals.by_operator = group("operator_id")?;
            for (k, ct) in group("channel")? {
                totals.by_channel.push((Channel::parse(&required(k)?)?, ct));
            }
            Ok(totals)
        })
    }

    /// Approved (online or offline) sales and refunds: count and sum of
    /// each, in one aggregate query (the session-closed screen).
    pub fn approved_totals(&self) -> Result<ApprovedTotals, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT kind, count(*), sum(amount) FROM transactions \
                     WHERE state IN ('approved', 'offline_approved') GROUP BY kind",
                )
                .map_err(sql("computing approved totals"))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .map_err(sql("computing approved totals"))?;
            let mut out = ApprovedTotals::default();
            for row in rows {
                let (kind, count, total) = row.map_err(sql("computing approved totals"))?;
                let ct = CountTotal {
                    count: non_negative(count, "count")?,
                    total: Total(non_negative(total, "total")?),
                };
                match kind.parse::<TxKind>()? {
                    TxKind::Sale => out.sales = ct,
                    TxKind::Refund => out.refunds = ct,
                }
            }
            Ok(out)
        })
    }
}
