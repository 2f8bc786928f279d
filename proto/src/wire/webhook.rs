//! SPEC 4.1 webhooks: the event types and the [`WebhookEnvelope`] body.

use crate::text_enum::text_enum;
use serde::{Deserialize, Serialize};

use super::Timestamp;
use crate::ids::SessionId;

text_enum! {
    /// The `type` of a webhook event (dotted names, SPEC 4.1).
    pub enum WebhookEventType: "webhook event type" {
        TransactionReceived = "transaction.received",
        PaymentUpdated = "payment.updated",
        SessionClosed = "session.closed",
        TerminalOffline = "terminal.offline",
    }
}

/// A webhook body. `id` is the same on every delivery attempt of one event.
/// `data` is a [`TransactionRecord`] (`transaction.received`), a [`Payment`]
/// (`payment.updated`), a [`Session`] (`session.closed`) or a
/// [`TerminalInfo`] (`terminal.offline`).
///
/// [`TransactionRecord`]: super::TransactionRecord
/// [`Payment`]: super::Payment
/// [`Session`]: super::Session
/// [`TerminalInfo`]: super::TerminalInfo
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookEnvelope {
    pub id: String,
    pub event: WebhookEventType,
    pub session_id: SessionId,
    pub data: serde_json::Value,
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::wire::test_util::round_trip;

    #[test]
    fn webhook_envelope() {
        let w: WebhookEnvelope = round_trip(json!({
            "id": "evt_01", "event": "transaction.received", "session_id": "s1",
            "data": {"channel": "pos", "terminal_id": "pos_3f1e2d_001", "reference": "r1", "status": "approved"},
            "created_at": "2026-11-21T10:00:00Z"
        }));
        assert_eq!(w.event, WebhookEventType::TransactionReceived);
        for e in [
            WebhookEventType::PaymentUpdated,
            WebhookEventType::SessionClosed,
            WebhookEventType::TerminalOffline,
        ] {
            assert_eq!(serde_json::to_value(e).unwrap(), json!(e.as_str()));
        }
    }
}
