//! [`Store`] for async callers: every call runs on tokio's blocking pool so
//! an fsync never stalls the runtime.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use proto::{Money, PaymentId, Reference};

use crate::StoreError;
use crate::db::{AuditEntry, Checkpoint, Store, StoreOptions};
use crate::model::{
    ApprovedTotals, Change, Durability, OfflineExposure, OutboxId, OutboxItem, OutboxStats, Page,
    ShiftReport, Totals, Transaction, UnixMillis,
};

/// A cheaply clonable handle; clones share one [`Store`].
#[derive(Debug, Clone)]
pub struct AsyncStore {
    inner: Arc<Store>,
}

async fn blocking<T, F>(store: &Arc<Store>, f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
{
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
}

impl AsyncStore {
    /// Opens the store on the blocking pool (open runs `quick_check`).
    pub async fn open(path: impl Into<PathBuf>, options: StoreOptions) -> Result<Self, StoreError> {
        let path = path.into();
        let store = tokio::task::spawn_blocking(move || Store::open_with(path, options))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))??;
        Ok(AsyncStore::from(store))
    }

    /// The synchronous store underneath (for CLI commands and tests).
    pub fn sync(&self) -> &Store {
        &self.inner
    }

    pub async fn record(&self, change: Change) -> Result<Vec<OutboxId>, StoreError> {
        blocking(&self.inner, move |s| s.record(&change)).await
    }

    pub async fn next_sequence(&self, now: UnixMillis) -> Result<u64, StoreError> {
        blocking(&self.inner, move |s| s.next_sequence(now)).await
    }

    pub async fn kv_get(&self, key: String) -> Result<Option<String>, StoreError> {
        blocking(&self.inner, move |s| s.kv_get(&key)).await
    }

    pub async fn kv_set(
        &self,
        key: String,
        value: String,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        blocking(&self.inner, move |s| s.kv_set(&key, &value, now)).await
    }

    pub async fn kv_set_with(
        &self,
        key: String,
        value: String,
        now: UnixMillis,
        durability: Durability,
    ) -> Result<(), StoreError> {
        blocking(&self.inner, move |s| {
            s.kv_set_with(&key, &value, now, durability)
        })
        .await
    }

    pub async fn checkpoint_if_due(&self) -> Result<Option<Checkpoint>, StoreError> {
        blocking(&self.inner, |s| s.checkpoint_if_due()).await
    }

    pub async fn kv_delete(&self, key: String) -> Result<bool, StoreError> {
        blocking(&self.inner, move |s| s.kv_delete(&key)).await
    }

    pub async fn transaction(
        &self,
        reference: Reference,
    ) -> Result<Option<Transaction>, StoreError> {
        blocking(&self.inner, move |s| s.transaction(&reference)).await
    }

    pub async fn transactions_for_payment(
        &self,
        payment_id: PaymentId,
    ) -> Result<Vec<Transaction>, StoreError> {
        blocking(&self.inner, move |s| {
            s.transactions_for_payment(&payment_id)
        })
        .await
    }

    pub async fn list_transactions(&self, page: Page) -> Result<Vec<Transaction>, StoreError> {
        blocking(&self.inner, move |s| s.list_transactions(page)).await
    }

    pub async fn restorable_transactions(&self) -> Result<Vec<Transaction>, StoreError> {
        blocking(&self.inner, |s| s.restorable_transactions()).await
    }

    pub async fn approved_totals(&self) -> Result<ApprovedTotals, StoreError> {
        blocking(&self.inner, |s| s.approved_totals()).await
    }

    pub async fn refundable(&self, sale: Reference) -> Result<Money, StoreError> {
        blocking(&self.inner, move |s| s.refundable(&sale)).await
    }

    pub async fn recent_sales(&self, limit: u32) -> Result<Vec<(Transaction, Money)>, StoreError> {
        blocking(&self.inner, move |s| s.recent_sales(limit)).await
    }

    pub async fn open_shift(&self, now: UnixMillis) -> Result<(), StoreError> {
        blocking(&self.inner, move |s| s.open_shift(now)).await
    }

    pub async fn x_report(&self) -> Result<ShiftReport, StoreError> {
        blocking(&self.inner, |s| s.x_report()).await
    }

    pub async fn shift_report(&self, shift_no: u64) -> Result<Option<ShiftReport>, StoreError> {
        blocking(&self.inner, move |s| s.shift_report(shift_no)).await
    }

    pub async fn current_shift(&self) -> Result<u64, StoreError> {
        blocking(&self.inner, |s| s.current_shift()).await
    }

    /// See [`Store::close_shift`].
    pub async fn close_shift(
        &self,
        now: UnixMillis,
        closed_by: Option<String>,
        payload: impl FnOnce(&ShiftReport) -> Result<serde_json::Value, String> + Send + 'static,
    ) -> Result<ShiftReport, StoreError> {
        blocking(&self.inner, move |s| {
            s.close_shift(now, closed_by.as_deref(), payload)
        })
        .await
    }

    pub async fn offline_exposure(&self, now: UnixMillis) -> Result<OfflineExposure, StoreError> {
        blocking(&self.inner, move |s| s.offline_exposure(now)).await
    }

    pub async fn totals(&self) -> Result<Totals, StoreError> {
        blocking(&self.inner, |s| s.totals()).await
    }

    pub async fn audit_log(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        blocking(&self.inner, move |s| s.audit_log(after, limit)).await
    }

    pub async fn claim_next_due(&self, now: UnixMillis) -> Result<Option<OutboxItem>, StoreError> {
        blocking(&self.inner, move |s| s.claim_next_due(now)).await
    }

    pub async fn claim_due(
        &self,
        now: UnixMillis,
        limit: u32,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        blocking(&self.inner, move |s| s.claim_due(now, limit)).await
    }

    pub async fn next_due_at(&self) -> Result<Option<UnixMillis>, StoreError> {
        blocking(&self.inner, |s| s.next_due_at()).await
    }

    pub async fn shift_schedule(&self, step_ms: i64) -> Result<usize, StoreError> {
        blocking(&self.inner, move |s| s.shift_schedule(step_ms)).await
    }

    pub async fn expedite(&self, now: UnixMillis) -> Result<usize, StoreError> {
        blocking(&self.inner, move |s| s.expedite(now)).await
    }

    pub async fn ack(&self, id: OutboxId, now: UnixMillis) -> Result<(), StoreError> {
        blocking(&self.inner, move |s| s.ack(id, now)).await
    }

    pub async fn ack_many(&self, ids: Vec<OutboxId>, now: UnixMillis) -> Result<usize, StoreError> {
        blocking(&self.inner, move |s| s.ack_many(&ids, now)).await
    }

    pub async fn retry(
        &self,
        id: OutboxId,
        now: UnixMillis,
        error: String,
        retry_after: Option<Duration>,
    ) -> Result<UnixMillis, StoreError> {
        blocking(&self.inner, move |s| s.retry(id, now, &error, retry_after)).await
    }

    pub async fn park(
        &self,
        id: OutboxId,
        now: UnixMillis,
        error: String,
    ) -> Result<(), StoreError> {
        blocking(&self.inner, move |s| s.park(id, now, &error)).await
    }

    pub async fn unpark(&self, id: OutboxId, now: UnixMillis) -> Result<(), StoreError> {
        blocking(&self.inner, move |s| s.unpark(id, now)).await
    }

    pub async fn list_outbox(&self) -> Result<Vec<OutboxItem>, StoreError> {
        blocking(&self.inner, |s| s.list_outbox()).await
    }

    pub async fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        blocking(&self.inner, |s| s.outbox_stats()).await
    }

    pub async fn check_integrity(&self) -> Result<(), StoreError> {
        blocking(&self.inner, |s| s.check_integrity()).await
    }
}

impl From<Store> for AsyncStore {
    fn from(store: Store) -> Self {
        AsyncStore {
            inner: Arc::new(store),
        }
    }
}
