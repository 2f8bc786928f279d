//! SPEC 4.3 transactions: forwarding a transaction and its answer, the
//! backend's records and the terminal statement, and reversals.

use crate::text_enum::text_enum;
use serde::{Deserialize, Serialize};

use super::{Card, CardSummary, Page, Timestamp, TxKind};
use crate::ids::{PaymentId, Reference, SessionId, TerminalId};
use crate::money::{Currency, Money};

/// `POST /v1/terminals/:tid/transactions` with `Idempotency-Key: <reference>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionSubmission {
    pub reference: Reference,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<PaymentId>,
    pub kind: TxKind,
    pub amount: Money,
    pub currency: Currency,
    pub card: Card,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_id: Option<String>,
    pub captured_at: Timestamp,
    pub offline: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_reference: Option<Reference>,
}

text_enum! {
    pub enum AuthStatus: "auth status" {
        Approved = "approved",
        Declined = "declined",
    }
}

text_enum! {
    pub enum DeclineReason: "decline reason" {
        CardDeclined = "card_declined",
        InsufficientFunds = "insufficient_funds",
        DoNotHonor = "do_not_honor",
        AmountExceedsRefundable = "amount_exceeds_refundable",
        UnknownTransaction = "unknown_transaction",
        /// A reversal for this reference reached the backend first.
        Reversed = "reversed",
    }
}

/// The answer to a transaction submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionAnswer {
    pub transaction_id: String,
    pub reference: Reference,
    pub status: AuthStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline_reason: Option<DeclineReason>,
}

text_enum! {
    pub enum Channel: "channel" {
        Pos = "pos",
        Account = "account",
    }
}

text_enum! {
    /// Status of a recorded transaction on the backend.
    pub enum RecordStatus: "record status" {
        Approved = "approved",
        Declined = "declined",
        Reversed = "reversed",
    }
}

/// What the backend knows of one transaction: the terminal's lookup
/// (`GET /v1/terminals/:tid/transactions/:reference`), statement lines,
/// operator transactions, and the `transaction.received` webhook's `data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionRecord {
    pub transaction_id: String,
    pub reference: Reference,
    pub channel: Channel,
    pub terminal_id: TerminalId,
    pub session_id: SessionId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<PaymentId>,
    pub kind: TxKind,
    pub amount: Money,
    pub currency: Currency,
    pub status: RecordStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline_reason: Option<DeclineReason>,
    pub card: CardSummary,
    pub offline: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_reference: Option<Reference>,
    pub captured_at: Timestamp,
    pub received_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reversed_at: Option<Timestamp>,
}

/// `?page&size&status` of the terminal statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StatementQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RecordStatus>,
}

/// The terminal statement: `data` of `GET /v1/terminals/:tid/transactions`.
pub type StatementPage = Page<TransactionRecord>;

/// `POST /v1/terminals/:tid/transactions/:reference/reversal` (the body may
/// also be empty).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReversalRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Timestamp>,
}

text_enum! {
    pub enum ReversalStatus: "reversal status" {
        /// The approved transaction is now reversed (also on a repeat).
        Reversed = "reversed",
        /// Nothing was recorded under that reference: a no-op.
        NotFound = "not_found",
        /// The transaction was declined: nothing to reverse.
        NotApproved = "not_approved",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReversalAnswer {
    pub reference: Reference,
    pub status: ReversalStatus,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::wire::test_util::{card_json, round_trip};

    #[test]
    fn transaction_submission_matches_the_spec_vector() {
        // The body of SPEC section 3, vector V2 (payment_id null → None).
        let v2 = json!({"reference":"pos_3f1e2d_001-000042","kind":"sale","amount":"1500.50",
            "currency":"NGN","offline":true,"captured_at":"2026-11-21T10:02:01Z",
            "card":{"token":"9f2c4e1a0b7d3e6f8a1c2b4d6e8f0a1b","last4":"1111",
                    "brand":"visa","entry_mode":"contactless"},"payment_id":null});
        let sub: TransactionSubmission = serde_json::from_value(v2.clone()).unwrap();
        assert!(sub.offline && sub.payment_id.is_none());
        let out = serde_json::to_vec(&sub).unwrap();
        // Same canonical body (and so the same signature) as the literal.
        assert_eq!(
            crate::signing::canonical_body(&out).unwrap(),
            crate::signing::canonical_body(v2.to_string().as_bytes()).unwrap()
        );
        round_trip::<TransactionSubmission>(json!({
            "reference": "pos_3f1e2d_001-000043", "payment_id": "pay_2", "kind": "refund",
            "amount": "500.00", "currency": "NGN", "card": card_json(), "operator_id": "op_1",
            "captured_at": "2026-11-21T10:05:00Z", "offline": false,
            "original_reference": "pos_3f1e2d_001-000042"
        }));
        let ans: TransactionAnswer = round_trip(json!({
            "transaction_id": "txn_9", "reference": "pos_3f1e2d_001-000042",
            "status": "declined", "decline_reason": "insufficient_funds"
        }));
        assert_eq!(ans.decline_reason, Some(DeclineReason::InsufficientFunds));
        round_trip::<TransactionAnswer>(json!({
            "transaction_id": "txn_9", "reference": "pos_3f1e2d_001-000042",
            "status": "approved", "auth_code": "123456"
        }));
    }

    #[test]
    fn records_reversals_statement() {
        let rec = json!({
            "transaction_id": "txn_1", "reference": "pos_3f1e2d_001-000001", "channel": "pos",
            "terminal_id": "pos_3f1e2d_001", "session_id": "s1", "kind": "sale",
            "amount": "2000.00", "currency": "NGN", "status": "reversed", "auth_code": "123456",
            "card": {"brand": "verve", "last4": "0007"}, "offline": false,
            "captured_at": "2026-11-21T10:00:00Z", "received_at": "2026-11-21T10:00:01Z",
            "reversed_at": "2026-11-21T10:01:00Z"
        });
        round_trip::<TransactionRecord>(rec.clone());
        let page: StatementPage = round_trip(json!({
            "content": [rec], "page": 0, "size": 20, "totalElements": 1, "totalPages": 1
        }));
        assert_eq!(page.content[0].status, RecordStatus::Reversed);
        let q: StatementQuery = round_trip(json!({"page": 1, "size": 5, "status": "approved"}));
        assert_eq!(q.status, Some(RecordStatus::Approved));
        let empty: ReversalRequest = serde_json::from_value(json!({})).unwrap();
        assert_eq!(empty, ReversalRequest::default());
        round_trip::<ReversalRequest>(json!({"reason": "no_answer", "at": "2026-11-21T10:00:09Z"}));
        round_trip::<ReversalAnswer>(json!({"reference": "r-1", "status": "not_found"}));
    }
}
