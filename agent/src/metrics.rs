//! The agent's metrics (SPEC 8.2): what the tasks count, served as
//! OpenMetrics text at `GET /metrics` on `[metrics] listen`, and summed up
//! for the heartbeat ([`Metrics::summary`]).
//!
//! [`Metrics`] is cheap to clone (every handle is an `Arc` of atomics);
//! each task holds a clone and only ever increments: the core loop counts
//! payments and observes tap → result, the reader and printer tasks count
//! their errors. What is a state rather than an event (the outbox, the
//! link) is read when scraped ([`MetricsServer`]), never pushed.
//!
//! | name | type | labels |
//! |---|---|---|
//! | `pos_payments_total` | counter | `kind` (`sale`, `refund`), `outcome` ([`outcome`]), `decision` ([`decision`]) |
//! | `pos_tap_to_result_seconds` | histogram | — ([`TAP_TO_RESULT_BUCKETS`]) |
//! | `pos_outbox_queued`, `pos_outbox_parked` | gauge | — |
//! | `pos_outbox_oldest_age_seconds` | gauge | — (0 when empty) |
//! | `pos_link_up` | gauge | — (1 online, 0 offline) |
//! | `pos_reader_errors_total`, `pos_printer_errors_total` | counter | — |
//! | `pos_build_info` | info | `version`, `commit`, `target` |

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use proto::wire::HeartbeatMetrics;
use proto::{TxKind, TxState};
use tokio_util::sync::CancellationToken;

use crate::core::Decision;
use crate::sync::link::Link;
use crate::task::{RunError, Task};

/// The content type of `GET /metrics`.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Buckets of `pos_tap_to_result_seconds`: 1 ms to 10 s (an online
/// authorization may take up to the 8 s auth timeout).
pub const TAP_TO_RESULT_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The last tap → result times kept for the heartbeat's p50/p99.
const RECENT: usize = 128;

/// The labels of `pos_payments_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PaymentLabels {
    pub kind: &'static str,
    pub outcome: &'static str,
    pub decision: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    commit: &'static str,
    target: &'static str,
}

/// The `outcome` label of a payment that ended in `state`: `approved`
/// (online, or offline within limits), `declined` (by the bank or backend,
/// or refused by the terminal's limits), `reversal_pending` (outcome
/// unknown, shown as declined, a reversal queued), `aborted`, `timed_out`,
/// `failed` (a local failure before any charge).
pub fn outcome(state: TxState) -> &'static str {
    match state {
        TxState::Approved | TxState::OfflineApproved => "approved",
        TxState::Declined | TxState::OfflineDeclined => "declined",
        TxState::ReversalPending | TxState::Reversed => "reversal_pending",
        TxState::Aborted => "aborted",
        TxState::TimedOut => "timed_out",
        // Pending/Authorizing never end a payment; counted as failed if
        // they ever did.
        TxState::Failed | TxState::Pending | TxState::Authorizing => "failed",
    }
}

/// The `decision` label: `online` (authorized online, also when its
/// outcome stayed unknown and it was reversed), `offline` (approved
/// offline, or refused by the offline rules), `none` (no card was read, or
/// it failed before a decision).
pub fn decision(d: Option<Decision>) -> &'static str {
    match d {
        None => "none",
        Some(Decision::Online | Decision::ReverseAfterUnknown | Decision::Transfer) => "online",
        Some(
            Decision::OfflineLinkDown
            | Decision::OfflineAfterUnknown
            | Decision::RefusedOnlineRequired
            | Decision::RefusedOfflineLimit(_),
        ) => "offline",
    }
}

/// Every handle the agent's tasks count with, and the registry that
/// encodes them. Clones share the same values.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    payments: Family<PaymentLabels, Counter>,
    tap_to_result: Histogram,
    outbox_queued: Gauge,
    outbox_parked: Gauge,
    outbox_oldest_age: Gauge,
    link_up: Gauge,
    reader_errors: Counter,
    printer_errors: Counter,
    summary: Arc<Summary>,
}

/// What the heartbeat summary needs beyond the registry: totals without
/// walking the label family, and a ring of the last tap → result times.
struct Summary {
    approved: AtomicU64,
    declined: AtomicU64,
    offline: AtomicU64,
    /// Milliseconds + 1 (0: empty slot).
    recent_ms: [AtomicU32; RECENT],
    next: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let payments = Family::<PaymentLabels, Counter>::default();
        registry.register(
            "pos_payments",
            "Payments finished, by kind, outcome and how they were decided",
            payments.clone(),
        );
        let tap_to_result = Histogram::new(TAP_TO_RESULT_BUCKETS);
        // The unit is in the name only: no `# UNIT` line for a histogram
        // (strict parsers refuse one).
        registry.register(
            "pos_tap_to_result_seconds",
            "From the card read to the result on screen (committed first)",
            tap_to_result.clone(),
        );
        let outbox_queued = Gauge::default();
        registry.register(
            "pos_outbox_queued",
            "Outbox items the backend has not acknowledged yet (parked included)",
            outbox_queued.clone(),
        );
        let outbox_parked = Gauge::default();
        registry.register(
            "pos_outbox_parked",
            "Outbox items refused by the backend that wait for an operator",
            outbox_parked.clone(),
        );
        let outbox_oldest_age = Gauge::default();
        registry.register_with_unit(
            "pos_outbox_oldest_age",
            "Age of the oldest unacknowledged outbox item (0 when empty)",
            Unit::Seconds,
            outbox_oldest_age.clone(),
        );
        let link_up = Gauge::default();
        registry.register(
            "pos_link_up",
            "1 while the terminal believes the backend reachable, else 0",
            link_up.clone(),
        );
        let reader_errors = Counter::default();
        registry.register(
            "pos_reader_errors",
            "Card reads that failed (not timeouts or cancels)",
            reader_errors.clone(),
        );
        let printer_errors = Counter::default();
        registry.register(
            "pos_printer_errors",
            "Print jobs that failed or got no answer",
            printer_errors.clone(),
        );
        registry.register(
            "pos_build",
            "The agent's version, git commit and target triple",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                commit: env!("BUILD_GIT_COMMIT"),
                target: env!("BUILD_TARGET"),
            }),
        );
        Metrics {
            registry: Arc::new(registry),
            payments,
            tap_to_result,
            outbox_queued,
            outbox_parked,
            outbox_oldest_age,
            link_up,
            reader_errors,
            printer_errors,
            summary: Arc::new(Summary {
                approved: AtomicU64::new(0),
                declined: AtomicU64::new(0),
                offline: AtomicU64::new(0),
                recent_ms: std::array::from_fn(|_| AtomicU32::new(0)),
                next: AtomicU64::new(0),
            }),
        }
    }

    /// A payment ended in `state`, decided by `decided` (None: no decision).
    pub fn payment_finished(&self, kind: TxKind, state: TxState, decided: Option<Decision>) {
        let labels = PaymentLabels {
            kind: kind.as_str(),
            outcome: outcome(state),
            decision: decision(decided),
        };
        self.payments.get_or_create(&labels).inc();
        let s = &self.summary;
        match labels.outcome {
            "approved" => {
                s.approved.fetch_add(1, Ordering::Relaxed);
                if labels.decision == "offline" {
                    s.offline.fetch_add(1, Ordering::Relaxed);
                }
            }
            "declined" | "reversal_pending" => {
                s.declined.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// One tap → result time.
    pub fn tap_to_result(&self, took: Duration) {
        self.tap_to_result.observe(took.as_secs_f64());
        let ms = u32::try_from(took.as_millis()).unwrap_or(u32::MAX - 1);
        let s = &self.summary;
        let slot = s.next.fetch_add(1, Ordering::Relaxed) % RECENT as u64;
        // `slot` < RECENT: the index is in bounds.
        if let Some(cell) = s.recent_ms.get(slot as usize) {
            cell.store(ms.saturating_add(1), Ordering::Relaxed);
        }
    }

    pub fn reader_error(&self) {
        self.reader_errors.inc();
    }

    pub fn printer_error(&self) {
        self.printer_errors.inc();
    }

    /// Sets the gauges read at scrape time.
    pub fn set_state(&self, stats: &store::OutboxStats, now_ms: i64, link_up: bool) {
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.outbox_queued.set(count(stats.queued));
        self.outbox_parked.set(count(stats.parked));
        let age = stats
            .oldest_created_at
            .map_or(0, |at| now_ms.saturating_sub(at).max(0) / 1000);
        self.outbox_oldest_age.set(age);
        self.link_up.set(i64::from(link_up));
    }

    /// The OpenMetrics text of every metric, ending in `# EOF`.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }

    /// The heartbeat's summary (integers only): totals since the agent
    /// started and the p50/p99 of the last tap → result times.
    pub fn summary(&self, link_up: bool) -> HeartbeatMetrics {
        let s = &self.summary;
        let mut recent: Vec<u32> = s
            .recent_ms
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .filter(|&v| v > 0)
            .map(|v| v - 1)
            .collect();
        recent.sort_unstable();
        HeartbeatMetrics {
            payments_approved: s.approved.load(Ordering::Relaxed),
            payments_declined: s.declined.load(Ordering::Relaxed),
            payments_offline: s.offline.load(Ordering::Relaxed),
            tap_to_result_p50_ms: percentile(&recent, 50),
            tap_to_result_p99_ms: percentile(&recent, 99),
            reader_errors: self.reader_errors.get(),
            printer_errors: self.printer_errors.get(),
            link_up,
        }
    }
}

/// The nearest-rank `p`th percentile of `sorted` (None when empty).
fn percentile(sorted: &[u32], p: usize) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// Serves `GET /metrics` on a bound listener until the agent stops. The
/// outbox and link gauges are read per scrape.
pub struct MetricsServer {
    pub listener: tokio::net::TcpListener,
    pub metrics: Metrics,
    pub store: store::AsyncStore,
    pub link: Link,
    pub clock: crate::clock::Clock,
    pub all: CancellationToken,
}

/// Binds `[metrics] listen`.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

#[derive(Clone)]
struct Scrape {
    metrics: Metrics,
    store: store::AsyncStore,
    link: Link,
    clock: crate::clock::Clock,
}

impl Task for MetricsServer {
    const NAME: &'static str = "metrics";

    fn run(self) -> impl Future<Output = Result<(), RunError>> + Send {
        serve(self)
    }
}

async fn serve(task: MetricsServer) -> Result<(), RunError> {
    use axum::routing::get;
    let MetricsServer {
        listener,
        metrics,
        store,
        link,
        clock,
        all,
    } = task;
    let scrape = Scrape {
        metrics,
        store,
        link,
        clock,
    };
    let app = axum::Router::new()
        .route("/metrics", get(scrape_metrics))
        .with_state(scrape);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(all.clone().cancelled_owned())
        .await;
    if let Err(e) = served {
        // Metrics never stop payments: the agent runs on.
        tracing::error!(error = %e, "metrics endpoint stopped");
        all.cancelled().await;
    }
    Ok(())
}

async fn scrape_metrics(
    axum::extract::State(s): axum::extract::State<Scrape>,
) -> axum::response::Response {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    match s.store.outbox_stats().await {
        Ok(stats) => s
            .metrics
            .set_state(&stats, s.clock.wall_ms(), s.link.is_online()),
        Err(e) => {
            tracing::warn!(error = %e, "cannot count the outbox for /metrics");
            s.metrics.link_up.set(i64::from(s.link.is_online()));
        }
    }
    match s.metrics.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot encode the metrics",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[7], 99), Some(7));
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), Some(50));
        assert_eq!(percentile(&v, 99), Some(99));
        assert_eq!(percentile(&[1, 2, 3], 50), Some(2));
    }

    #[test]
    fn the_summary_counts_outcomes_and_recent_times() {
        let m = Metrics::new();
        m.payment_finished(TxKind::Sale, TxState::Approved, Some(Decision::Online));
        m.payment_finished(
            TxKind::Sale,
            TxState::OfflineApproved,
            Some(Decision::OfflineLinkDown),
        );
        m.payment_finished(TxKind::Sale, TxState::Declined, Some(Decision::Online));
        m.payment_finished(TxKind::Sale, TxState::Aborted, None);
        for ms in [10, 20, 30, 40, 1000] {
            m.tap_to_result(Duration::from_millis(ms));
        }
        m.reader_error();
        let s = m.summary(true);
        assert_eq!(s.payments_approved, 2);
        assert_eq!(s.payments_offline, 1);
        assert_eq!(s.payments_declined, 1);
        assert_eq!(s.tap_to_result_p50_ms, Some(30));
        assert_eq!(s.tap_to_result_p99_ms, Some(1000));
        assert_eq!((s.reader_errors, s.printer_errors, s.link_up), (1, 0, true));
        // The ring keeps the last RECENT times only.
        for _ in 0..RECENT {
            m.tap_to_result(Duration::from_millis(5));
        }
        assert_eq!(m.summary(true).tap_to_result_p99_ms, Some(5));
    }

    #[test]
    fn the_text_has_the_spec_names_and_ends_in_eof() {
        let m = Metrics::new();
        m.payment_finished(TxKind::Refund, TxState::Approved, Some(Decision::Online));
        m.tap_to_result(Duration::from_millis(120));
        let text = m.encode().unwrap();
        for name in [
            "pos_payments_total{kind=\"refund\",outcome=\"approved\",decision=\"online\"} 1",
            "# TYPE pos_tap_to_result_seconds histogram",
            "pos_tap_to_result_seconds_count 1",
            "pos_outbox_queued 0",
            "pos_outbox_parked 0",
            "pos_outbox_oldest_age_seconds 0",
            "pos_link_up 0",
            "pos_reader_errors_total 0",
            "pos_printer_errors_total 0",
            "pos_build_info{version=",
        ] {
            assert!(text.contains(name), "{name} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
