//! Offline limits and the offline exposure they are checked against.

use std::collections::BTreeMap;

use proto::{Money, Reference, Total};

use super::model::TxKind;
use super::time::UnixMillis;

/// How much the terminal may approve without the backend (SPEC 5.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfflineLimits {
    /// Largest single offline sale (inclusive).
    pub floor_limit: Money,
    /// Largest sum of queued offline sales, this sale included (inclusive).
    pub max_total: Total,
    /// Most queued offline sales, this sale included (inclusive).
    pub max_count: u32,
    /// Oldest queued offline sale may be at most this old (milliseconds).
    pub max_age_ms: u64,
}

impl Default for OfflineLimits {
    /// The SPEC defaults: `50000.00`, `2000000.00`, 1000 payments, 72 hours.
    fn default() -> Self {
        OfflineLimits {
            floor_limit: Money::from_minor(5_000_000).expect("50000.00 is below the maximum"),
            max_total: Total(200_000_000),
            max_count: 1000,
            max_age_ms: 72 * 3600 * 1000,
        }
    }
}

impl OfflineLimits {
    /// The stricter of `self` and `other`, field by field: what the heartbeat
    /// may do to the configured limits (tighten, never loosen).
    pub fn tightened_by(&self, other: &OfflineLimits) -> OfflineLimits {
        OfflineLimits {
            floor_limit: self.floor_limit.min(other.floor_limit),
            max_total: self.max_total.min(other.max_total),
            max_count: self.max_count.min(other.max_count),
            max_age_ms: self.max_age_ms.min(other.max_age_ms),
        }
    }
}

/// Why an offline approval was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfflineRefusal {
    FloorLimit { limit: Money },
    TotalLimit { limit: Total },
    CountLimit { limit: u32 },
    AgeLimit { max_age_ms: u64 },
}

impl OfflineRefusal {
    /// Stable snake_case code for the store, events and logs.
    pub fn code(&self) -> &'static str {
        match self {
            OfflineRefusal::FloorLimit { .. } => "offline_floor_limit",
            OfflineRefusal::TotalLimit { .. } => "offline_total_limit",
            OfflineRefusal::CountLimit { .. } => "offline_count_limit",
            OfflineRefusal::AgeLimit { .. } => "offline_age_limit",
        }
    }

    /// What the cashier reads on the screen.
    pub fn message(&self) -> String {
        match self {
            OfflineRefusal::FloorLimit { limit } => format!(
                "Offline: amount above {} limit. No charge",
                limit.display(proto::Currency::Ngn)
            ),
            OfflineRefusal::TotalLimit { .. } => {
                "Offline total limit reached. No charge".to_string()
            }
            OfflineRefusal::CountLimit { .. } => {
                "Offline payment limit reached. No charge".to_string()
            }
            OfflineRefusal::AgeLimit { .. } => {
                "Offline queue too old, go online. No charge".to_string()
            }
        }
    }
}

/// One offline-approved transaction not yet acknowledged by the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedOffline {
    pub reference: Reference,
    pub kind: TxKind,
    pub amount: Money,
    pub captured_at: UnixMillis,
}

/// The offline-approved transactions the backend has not acknowledged yet.
/// Restored from the store at boot, grown by the core on each offline
/// approval, shrunk when the outbox reports a forward's answer. Only sales
/// count against the limits (a refund is bounded by its original sale).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OfflineExposure {
    items: BTreeMap<Reference, QueuedOffline>,
}

impl OfflineExposure {
    pub fn new(items: impl IntoIterator<Item = QueuedOffline>) -> Self {
        OfflineExposure {
            items: items
                .into_iter()
                .map(|q| (q.reference.clone(), q))
                .collect(),
        }
    }

    pub fn insert(&mut self, q: QueuedOffline) {
        self.items.insert(q.reference.clone(), q);
    }

    pub fn remove(&mut self, reference: &Reference) -> Option<QueuedOffline> {
        self.items.remove(reference)
    }

    pub fn contains(&self, reference: &Reference) -> bool {
        self.items.contains_key(reference)
    }

    fn sales(&self) -> impl Iterator<Item = &QueuedOffline> {
        self.items.values().filter(|q| q.kind == TxKind::Sale)
    }

    /// Number of queued offline sales.
    pub fn count(&self) -> u32 {
        u32::try_from(self.sales().count()).unwrap_or(u32::MAX)
    }

    /// Sum of queued offline sales.
    pub fn total(&self) -> Total {
        self.sales().fold(Total::default(), |t, q| t.add(q.amount))
    }

    /// Capture time of the oldest queued offline sale.
    pub fn oldest(&self) -> Option<UnixMillis> {
        self.sales().map(|q| q.captured_at).min()
    }

    /// May one more offline sale of `amount` be approved at wall time `now`?
    pub fn check(
        &self,
        limits: &OfflineLimits,
        amount: Money,
        now: UnixMillis,
    ) -> Result<(), OfflineRefusal> {
        if amount > limits.floor_limit {
            return Err(OfflineRefusal::FloorLimit {
                limit: limits.floor_limit,
            });
        }
        if self.count().saturating_add(1) > limits.max_count {
            return Err(OfflineRefusal::CountLimit {
                limit: limits.max_count,
            });
        }
        if self.total().add(amount) > limits.max_total {
            return Err(OfflineRefusal::TotalLimit {
                limit: limits.max_total,
            });
        }
        if let Some(oldest) = self.oldest() {
            let age = now.0.saturating_sub(oldest.0);
            if age > 0 && age.unsigned_abs() > limits.max_age_ms {
                return Err(OfflineRefusal::AgeLimit {
                    max_age_ms: limits.max_age_ms,
                });
            }
        }
        Ok(())
    }
}
