//! SPEC 4.3 terminal commands: the [`Command`]s of the SSE stream, their
//! acknowledgements, and the payment events the terminal reports.

use crate::domain::{AckReason, AckStatus, PaymentEventStatus};
use serde::{Deserialize, Serialize};

use super::{OfflinePolicy, PaymentMetadata, Timestamp};
use crate::ids::{PaymentId, Reference};
use crate::money::{Currency, Money};

/// What the terminal is told to do. `type` is the tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CommandBody {
    Sale {
        payment_id: PaymentId,
        amount: Money,
        currency: Currency,
        partner_reference: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<PaymentMetadata>,
        expires_at: Timestamp,
        #[serde(default)]
        offline_policy: OfflinePolicy,
    },
    Abort {
        payment_id: PaymentId,
    },
    Refund {
        payment_id: PaymentId,
        original_reference: Reference,
        amount: Money,
        #[serde(default)]
        currency: Currency,
    },
    SessionClosed {},
    /// SPEC 7.7: a credit on the collection account went to the terminal's
    /// transfer payment `reference`. `amount` is this credit,
    /// `total_received` everything received for that payment so far; the
    /// payment is paid when `total_received` reaches its amount.
    TransferReceived {
        reference: Reference,
        amount: Money,
        total_received: Money,
        payer: super::Payer,
        credited_at: Timestamp,
    },
}

/// The `data:` of an SSE `event: command` (its `id:` is the stream sequence).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Command {
    pub command_id: String,
    #[serde(flatten)]
    pub body: CommandBody,
}

/// `POST /v1/terminals/:tid/commands/:command_id/ack`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommandAck {
    pub status: AckStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<AckReason>,
}

/// `POST /v1/terminals/:tid/payments/:payment_id/events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PaymentEvent {
    pub status: PaymentEventStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::wire::test_util::round_trip;

    #[test]
    fn commands_are_tagged_on_type() {
        let sale: Command = round_trip(json!({
            "command_id": "cmd_1", "type": "sale", "payment_id": "pay_1",
            "amount": "2000.00", "currency": "NGN", "partner_reference": "ORDER-991",
            "metadata": {"store_id": "st1"},
            "expires_at": "2026-11-21T10:02:00Z", "offline_policy": "require_online"
        }));
        assert!(matches!(
            sale.body,
            CommandBody::Sale {
                offline_policy: OfflinePolicy::RequireOnline,
                ..
            }
        ));
        round_trip::<Command>(
            json!({"command_id": "cmd_2", "type": "abort", "payment_id": "pay_1"}),
        );
        round_trip::<Command>(json!({
            "command_id": "cmd_3", "type": "refund", "payment_id": "pay_2",
            "original_reference": "pos_3f1e2d_001-000001", "amount": "500.00", "currency": "NGN"
        }));
        let closed: Command = round_trip(json!({"command_id": "cmd_4", "type": "session_closed"}));
        let received: Command = round_trip(json!({
            "command_id": "cmd_5", "type": "transfer_received", "reference": "pos_3f1e2d_001-000007",
            "amount": "1000.00", "total_received": "2500.00",
            "payer": {"name": "ADA OBI", "bank": "GTBank"}, "credited_at": "2026-11-21T10:03:00Z"
        }));
        assert!(matches!(
            received.body,
            CommandBody::TransferReceived { .. }
        ));
        assert_eq!(closed.body, CommandBody::SessionClosed {});
        // offline_policy defaults to prefer_online.
        let c: Command = serde_json::from_value(json!({
            "command_id": "c", "type": "sale", "payment_id": "p", "amount": "1.00",
            "currency": "NGN", "partner_reference": "r", "expires_at": "2026-11-21T10:02:00Z",
            "future_field": [1, 2]
        }))
        .unwrap();
        assert!(matches!(
            c.body,
            CommandBody::Sale {
                offline_policy: OfflinePolicy::PreferOnline,
                ..
            }
        ));
        assert!(
            serde_json::from_value::<Command>(json!({"command_id": "c", "type": "explode"}))
                .is_err()
        );
    }

    #[test]
    fn acks_and_events() {
        let ack: CommandAck =
            round_trip(json!({"status": "rejected", "reason": "amount_exceeds_refundable"}));
        assert_eq!(ack.reason, Some(AckReason::AmountExceedsRefundable));
        round_trip::<CommandAck>(json!({"status": "accepted"}));
        for r in [
            AckReason::Busy,
            AckReason::Expired,
            AckReason::SessionClosed,
            AckReason::UnknownTransaction,
            AckReason::OfflineLimit,
            AckReason::InvalidRequest,
        ] {
            assert_eq!(serde_json::to_value(r).unwrap(), json!(r.as_str()));
        }
        for s in [
            "in_progress",
            "aborted",
            "abort_too_late",
            "timed_out",
            "failed",
        ] {
            round_trip::<PaymentEvent>(json!({"status": s, "at": "2026-11-21T10:00:00Z"}));
        }
        round_trip::<PaymentEvent>(
            json!({"status": "failed", "reason": "reader_error", "at": "2026-11-21T10:00:00Z"}),
        );
    }
}
