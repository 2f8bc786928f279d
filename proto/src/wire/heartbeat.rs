//! SPEC 4.3 heartbeat: the terminal's [`Heartbeat`] and the answer with the
//! backend's offline limits.

use crate::text_enum::text_enum;
use serde::{Deserialize, Serialize};

use super::{SessionStatus, Timestamp};
use crate::money::{Money, Total};

text_enum! {
    pub enum AgentState: "agent state" {
        Booting = "booting",
        Idle = "idle",
        Busy = "busy",
        SessionClosed = "session_closed",
        Error = "error",
    }
}

/// Health of the hardware, free-form per device (e.g. `"ok"`,
/// `"pn532 fw 1.6"`, `"error: timeout"`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HalReport {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reader: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
}

/// `POST /v1/terminals/:tid/heartbeat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub agent_version: String,
    pub state: AgentState,
    #[serde(default)]
    pub queue_depth: u32,
    /// Of `queue_depth`, the items the backend refused that wait for an
    /// operator (`pos-agent queue --retry`).
    #[serde(default)]
    pub parked: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_queued_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_since: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hal: Option<HalReport>,
    /// A summary of the terminal's metrics (SPEC 8.2); older agents send
    /// none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<HeartbeatMetrics>,
}

/// The heartbeat's summary of the terminal's metrics (SPEC 8.2): counts
/// since the agent started, integers only. Unknown fields are ignored, so
/// either side may add some.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HeartbeatMetrics {
    /// Payments approved (online or offline).
    #[serde(default)]
    pub payments_approved: u64,
    /// Payments declined (by the bank, the backend or the terminal's
    /// limits), or shown as declined with a reversal queued.
    #[serde(default)]
    pub payments_declined: u64,
    /// Of `payments_approved`, those approved offline.
    #[serde(default)]
    pub payments_offline: u64,
    /// Tap → result of the last payments (up to 128), median and 99th
    /// percentile in milliseconds; absent before the first card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tap_to_result_p50_ms: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tap_to_result_p99_ms: Option<u32>,
    #[serde(default)]
    pub reader_errors: u64,
    #[serde(default)]
    pub printer_errors: u64,
    /// Whether the terminal believed the backend reachable when it sent
    /// this (it did reach it, but a link may have just come back).
    #[serde(default)]
    pub link_up: bool,
}

/// Offline limits the backend imposes; each present field tightens the
/// terminal's own configured limit (the terminal keeps the stricter one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OfflineLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_limit: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_total: Option<Total>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_hours: Option<u32>,
}

/// The heartbeat answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatAnswer {
    pub server_time: Timestamp,
    pub session_status: SessionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_limits: Option<OfflineLimits>,
    /// The session's terminal configuration (SPEC 7.6); the terminal keeps
    /// it when its version changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<super::TerminalConfig>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::wire::test_util::round_trip;

    #[test]
    fn heartbeat_and_answer() {
        let hb: Heartbeat = round_trip(json!({
            "agent_version": "0.1.0", "state": "idle", "queue_depth": 3, "parked": 0,
            "oldest_queued_at": "2026-11-21T09:00:00Z", "offline_since": "2026-11-21T08:59:00Z",
            "hal": {"reader": "ok", "display": "ok"}
        }));
        assert_eq!(hb.queue_depth, 3);
        assert_eq!(hb.metrics, None);
        let a: HeartbeatAnswer = round_trip(json!({
            "server_time": "2026-11-21T10:00:00Z", "session_status": "active",
            "offline_limits": {"floor_limit": "50000.00", "max_total": "20000000.00", "max_count": 1000, "max_age_hours": 72}
        }));
        let lim = a.offline_limits.unwrap();
        assert_eq!(lim.max_total, Some(Total(2_000_000_000)));
        round_trip::<HeartbeatAnswer>(
            json!({"server_time": "2026-11-21T10:00:00Z", "session_status": "closed"}),
        );
    }

    #[test]
    fn heartbeat_metrics_round_trip_and_ignore_unknown_fields() {
        let hb: Heartbeat = round_trip(json!({
            "agent_version": "0.1.0", "state": "idle", "queue_depth": 0, "parked": 0,
            "metrics": {
                "payments_approved": 12, "payments_declined": 2, "payments_offline": 3,
                "tap_to_result_p50_ms": 640, "tap_to_result_p99_ms": 2100,
                "reader_errors": 1, "printer_errors": 0, "link_up": true
            }
        }));
        let m = hb.metrics.unwrap();
        assert_eq!(
            (m.payments_approved, m.tap_to_result_p99_ms),
            (12, Some(2100))
        );
        // Before the first card there are no times; the fields are left out.
        round_trip::<HeartbeatMetrics>(json!({
            "payments_approved": 0, "payments_declined": 0, "payments_offline": 0,
            "reader_errors": 0, "printer_errors": 0, "link_up": false
        }));
        // A newer agent's fields are ignored, missing ones default.
        let m: HeartbeatMetrics =
            serde_json::from_value(json!({"payments_approved": 4, "battery_pct": 80})).unwrap();
        assert_eq!(m.payments_approved, 4);
        assert_eq!(m.reader_errors, 0);
        // Floats are refused: every figure is an integer.
        assert!(
            serde_json::from_value::<HeartbeatMetrics>(json!({"tap_to_result_p50_ms": 1.5}))
                .is_err()
        );
    }
}
