//! SPEC 4.2 Partner API: the terminals list, payments and refunds.

use crate::domain::{OfflinePolicy, TxKind};
use crate::text_enum::text_enum;
use serde::{Deserialize, Serialize};

use super::{CardSummary, DeclineReason, TerminalStatus, Timestamp};
use crate::ids::{PaymentId, Reference, SessionId, TerminalId};
use crate::money::{Currency, Money};

/// `GET /v1/terminals?session_id=` item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TerminalInfo {
    pub terminal_id: TerminalId,
    pub session_id: SessionId,
    pub label: String,
    pub status: TerminalStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<Timestamp>,
    #[serde(default)]
    pub queue_depth: u32,
    /// Outbox items waiting for an operator, as the last heartbeat said.
    #[serde(default)]
    pub parked: u32,
    /// The metrics summary of the last heartbeat that carried one (null
    /// when none ever did).
    #[serde(default)]
    pub metrics: Option<super::HeartbeatMetrics>,
}

/// `?session_id=&page=&size=` of the terminals list.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TerminalsQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<SessionId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
}

/// Partner metadata of a payment.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PaymentMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pos_payment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pos_merchant_id: Option<String>,
}

/// `POST /v1/payments` (with `Idempotency-Key`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatePayment {
    pub terminal_id: TerminalId,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::positive_money))]
    pub amount: Money,
    #[serde(default)]
    pub currency: Currency,
    /// The partner's own reference (forwarded as `partner_reference`).
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 128, pattern = r"\S")
    )]
    pub reference: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<PaymentMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_policy: Option<OfflinePolicy>,
    /// Defaults to creation + 2 minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
}

text_enum! {
    pub enum PaymentStatus: "payment status" {
        Pending = "pending",
        InProgress = "in_progress",
        Approved = "approved",
        Declined = "declined",
        Aborted = "aborted",
        TimedOut = "timed_out",
        Failed = "failed",
    }
}

impl PaymentStatus {
    pub fn is_final(self) -> bool {
        !matches!(self, PaymentStatus::Pending | PaymentStatus::InProgress)
    }
}

/// The transaction behind a payment, as the partner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PaymentTransaction {
    pub transaction_id: String,
    pub reference: Reference,
    /// `pos` (a card) or `account` (a bank transfer, SPEC 7.7).
    #[serde(default)]
    pub channel: super::Channel,
    /// The card (channel `pos`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<CardSummary>,
    /// Who sent the bank transfer (channel `account`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<super::Payer>,
    pub offline: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline_reason: Option<DeclineReason>,
}

/// A payment (sale) or a refund requested by the partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Payment {
    pub payment_id: PaymentId,
    pub kind: TxKind,
    pub terminal_id: TerminalId,
    pub session_id: SessionId,
    pub amount: Money,
    pub currency: Currency,
    pub status: PaymentStatus,
    /// The partner's reference (sales).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<PaymentMetadata>,
    #[serde(default)]
    pub offline_policy: OfflinePolicy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// Refunds: the transaction being refunded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_transaction_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_reference: Option<Reference>,
    /// Why a payment ended `aborted`, `timed_out` or `failed`, or why the
    /// terminal rejected the command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<PaymentTransaction>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// `POST /v1/refunds?transactionId=…` (with `Idempotency-Key`). The answer
/// is a [`Payment`] of kind `refund`, polled like any payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateRefund {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::positive_money))]
    pub amount: Money,
    #[serde(default)]
    pub currency: Currency,
}

/// `?transactionId=` of the refund request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefundQuery {
    #[serde(rename = "transactionId")]
    pub transaction_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::wire::test_util::round_trip;

    #[test]
    fn partner_terminals_payments_refunds() {
        round_trip::<TerminalInfo>(json!({
            "terminal_id": "pos_3f1e2d_001", "session_id": "s1", "label": "POS 1",
            "status": "busy", "last_seen_at": "2026-11-21T10:00:00Z", "queue_depth": 2, "parked": 0,
            "metrics": null
        }));
        let t: TerminalInfo = round_trip(json!({
            "terminal_id": "pos_3f1e2d_001", "session_id": "s1", "label": "POS 1",
            "status": "online", "queue_depth": 0, "parked": 0,
            "metrics": {"payments_approved": 1, "payments_declined": 0, "payments_offline": 0,
                        "tap_to_result_p50_ms": 40, "tap_to_result_p99_ms": 40,
                        "reader_errors": 0, "printer_errors": 0, "link_up": true}
        }));
        assert_eq!(t.metrics.unwrap().tap_to_result_p50_ms, Some(40));
        let create: CreatePayment = round_trip(json!({
            "terminal_id": "pos_3f1e2d_001", "amount": "2000.00", "currency": "NGN",
            "reference": "ORDER-991",
            "metadata": {"store_id": "st1", "pos_payment_id": "pp9", "pos_merchant_id": "pm3"}
        }));
        assert_eq!(create.amount.minor(), 200_000);
        // Amounts are strings only.
        assert!(
            serde_json::from_value::<CreatePayment>(json!({
                "terminal_id": "t", "amount": 2000.0, "currency": "NGN", "reference": "r"
            }))
            .is_err()
        );
        let pay: Payment = round_trip(json!({
            "payment_id": "pay_1", "kind": "sale", "terminal_id": "pos_3f1e2d_001",
            "session_id": "s1", "amount": "2000.00", "currency": "NGN", "status": "approved",
            "reference": "ORDER-991", "offline_policy": "prefer_online",
            "expires_at": "2026-11-21T10:02:00Z",
            "transaction": {
                "transaction_id": "txn_1", "reference": "pos_3f1e2d_001-000001", "channel": "pos",
                "card": {"brand": "mastercard", "last4": "4444"}, "offline": false,
                "auth_code": "A1B2C3", "approved_at": "2026-11-21T10:00:30Z"
            },
            "created_at": "2026-11-21T10:00:00Z", "updated_at": "2026-11-21T10:00:30Z"
        }));
        assert_eq!(pay.status, PaymentStatus::Approved);
        // Written before the account channel: a card payment.
        let card: PaymentTransaction = serde_json::from_value(json!({
            "transaction_id": "txn_1", "reference": "r-1",
            "card": {"brand": "visa", "last4": "1111"}, "offline": false
        }))
        .unwrap();
        assert_eq!(card.channel, super::super::Channel::Pos);
        // A bank transfer (SPEC 7.7): a payer, no card.
        let transfer: PaymentTransaction = round_trip(json!({
            "transaction_id": "txn_2", "reference": "pos_3f1e2d_001-000002", "channel": "account",
            "payer": {"name": "ADA OBI", "bank": "GTBank"}, "offline": false,
            "approved_at": "2026-11-21T10:00:30Z"
        }));
        assert!(transfer.card.is_none() && transfer.payer.is_some());
        assert!(pay.status.is_final() && !PaymentStatus::InProgress.is_final());
        for s in [
            "pending",
            "in_progress",
            "declined",
            "aborted",
            "timed_out",
            "failed",
        ] {
            assert!(serde_json::from_value::<PaymentStatus>(json!(s)).is_ok());
        }
        let refund: CreateRefund = round_trip(json!({"amount": "500.00", "currency": "NGN"}));
        assert_eq!(refund.amount.minor(), 50_000);
        let q: RefundQuery = round_trip(json!({"transactionId": "txn_1"}));
        assert_eq!(q.transaction_id, "txn_1");
    }
}
