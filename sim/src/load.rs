//! Load shedding (`--max-inflight N`) and the request statistics a fleet
//! run reads (`GET /v1/sandbox/stats`, [`crate::RunningSim::stats`]).
//!
//! Every request but the long-lived ones counts while it is being answered.
//! Beyond `max_inflight` such requests, a new one is answered at once with
//! 503 `overloaded`, a `Retry-After` header (whole seconds) and the usual
//! error envelope, without reaching a handler.
//!
//! Not counted, never shed and not in the latency figures: command streams
//! (`GET …/commands/stream`, open for minutes, 300 of them would otherwise
//! hold the limit for ever) and the stats route itself (so an operator can
//! always look).
//!
//! The statistics cover a window: since start, or since the last reset
//! (`DELETE /v1/sandbox/stats`, [`crate::RunningSim::reset_stats`]), e.g.
//! "since recovery began". Latency is from the request reaching the router
//! to its response (headers) leaving the handler, of served requests only,
//! in a histogram (`hdrhistogram`, 3 significant digits).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hdrhistogram::Histogram;
use proto::wire::Envelope;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::error::SimError;

/// The error code of a shed request.
pub const OVERLOADED: &str = "overloaded";

/// The path of the statistics route.
pub const STATS_PATH: &str = "/v1/sandbox/stats";

/// Longest latency the histogram tells apart (longer ones count as this).
const MAX_TRACKED_US: u64 = 3_600_000_000;

/// The statistics of one window, as served by `GET /v1/sandbox/stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadStats {
    /// The configured limit (`None`: no shedding).
    pub max_inflight: Option<usize>,
    /// Requests being answered right now (streams not counted).
    pub in_flight: usize,
    /// How long the window has been open, in milliseconds.
    pub window_ms: u64,
    /// Most requests in flight at once during the window.
    pub peak_in_flight: usize,
    /// Requests answered by a handler during the window.
    pub served: u64,
    /// Requests answered 503 `overloaded` during the window.
    pub shed: u64,
    /// Latency of served requests, in microseconds (0 when none).
    pub latency_p50_us: u64,
    pub latency_p90_us: u64,
    pub latency_p99_us: u64,
    pub latency_max_us: u64,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    peak_in_flight: usize,
    served: u64,
    shed: u64,
    latency_us: Histogram<u64>,
}

/// The limit, the in-flight count and the current window.
#[derive(Debug)]
pub struct Load {
    max_inflight: Option<usize>,
    retry_after: Duration,
    in_flight: AtomicUsize,
    window: Mutex<Window>,
}

impl Load {
    pub fn new(max_inflight: Option<usize>, retry_after: Duration) -> Result<Load, SimError> {
        let latency_us = Histogram::new_with_bounds(1, MAX_TRACKED_US, 3)
            .map_err(|e| SimError::Config(format!("latency histogram: {e}")))?;
        Ok(Load {
            max_inflight,
            retry_after,
            in_flight: AtomicUsize::new(0),
            window: Mutex::new(Window {
                started: Instant::now(),
                peak_in_flight: 0,
                served: 0,
                shed: 0,
                latency_us,
            }),
        })
    }

    fn window(&self) -> MutexGuard<'_, Window> {
        // Counters only: a panic elsewhere leaves nothing half-done here.
        self.window.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lets a request in (a guard that counts it until dropped), or `None`
    /// when `max_inflight` requests are already in flight.
    fn admit(self: &Arc<Self>) -> Option<InFlight> {
        let mut w = self.window();
        let now = self.in_flight.load(Ordering::Relaxed);
        if self.max_inflight.is_some_and(|max| now >= max) {
            w.shed += 1;
            return None;
        }
        // Changed only under the window lock, so the peak is exact.
        self.in_flight.store(now + 1, Ordering::Relaxed);
        w.peak_in_flight = w.peak_in_flight.max(now + 1);
        Some(InFlight {
            load: Arc::clone(self),
            since: Instant::now(),
        })
    }

    /// The current window's figures.
    pub fn stats(&self) -> LoadStats {
        let w = self.window();
        self.snapshot(&w)
    }

    /// Closes the window (returning its figures) and opens a new one, whose
    /// peak starts at what is in flight now.
    pub fn reset(&self) -> LoadStats {
        let mut w = self.window();
        let ended = self.snapshot(&w);
        w.started = Instant::now();
        w.peak_in_flight = self.in_flight.load(Ordering::Relaxed);
        w.served = 0;
        w.shed = 0;
        w.latency_us.reset();
        ended
    }

    fn snapshot(&self, w: &Window) -> LoadStats {
        let q = |p: f64| {
            if w.latency_us.is_empty() {
                0
            } else {
                w.latency_us.value_at_quantile(p)
            }
        };
        LoadStats {
            max_inflight: self.max_inflight,
            in_flight: self.in_flight.load(Ordering::Relaxed),
            window_ms: u64::try_from(w.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            peak_in_flight: w.peak_in_flight,
            served: w.served,
            shed: w.shed,
            latency_p50_us: q(0.50),
            latency_p90_us: q(0.90),
            latency_p99_us: q(0.99),
            latency_max_us: if w.latency_us.is_empty() {
                0
            } else {
                w.latency_us.max()
            },
        }
    }

    fn overloaded(&self) -> Response {
        let secs = self.retry_after.as_secs().max(1);
        let mut resp = (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(Envelope::err(
                OVERLOADED,
                format!("the backend is overloaded; retry after {secs} s"),
            )),
        )
            .into_response();
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        resp
    }
}

/// One request in flight; dropping it (answered or cancelled) counts it
/// out and records its latency.
struct InFlight {
    load: Arc<Load>,
    since: Instant,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let us = u64::try_from(self.since.elapsed().as_micros()).unwrap_or(u64::MAX);
        let mut w = self.load.window();
        self.load.in_flight.fetch_sub(1, Ordering::Relaxed);
        w.served += 1;
        w.latency_us.saturating_record(us.clamp(1, MAX_TRACKED_US));
    }
}

/// Whether a request is left out of the limit and the figures.
fn exempt(path: &str) -> bool {
    path == STATS_PATH || path.ends_with("/commands/stream")
}

/// The axum middleware: counts, sheds beyond the limit, times.
pub async fn shed(State(load): State<Arc<Load>>, req: Request, next: Next) -> Response {
    if exempt(req.uri().path()) {
        return next.run(req).await;
    }
    let Some(guard) = load.admit() else {
        return load.overloaded();
    };
    let resp = next.run(req).await;
    drop(guard);
    resp
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn beyond_the_limit_requests_are_shed_and_counted() {
        let load = Arc::new(Load::new(Some(2), Duration::from_secs(1)).unwrap());
        let a = load.admit().unwrap();
        let b = load.admit().unwrap();
        assert!(load.admit().is_none());
        drop(a);
        let c = load.admit().unwrap();
        drop((b, c));
        let s = load.stats();
        assert_eq!(
            (s.peak_in_flight, s.served, s.shed, s.in_flight),
            (2, 3, 1, 0)
        );
        assert!(s.latency_p99_us >= 1);
        let ended = load.reset();
        assert_eq!(ended.served, 3);
        let s = load.stats();
        assert_eq!((s.peak_in_flight, s.served, s.shed), (0, 0, 0));
        assert_eq!(s.latency_p99_us, 0);
    }

    #[test]
    fn streams_and_the_stats_route_are_exempt() {
        assert!(exempt("/v1/terminals/pos_abcdef_001/commands/stream"));
        assert!(exempt(STATS_PATH));
        assert!(!exempt("/v1/terminals/pos_abcdef_001/heartbeat"));
    }
}
