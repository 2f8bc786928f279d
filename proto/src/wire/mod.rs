//! Request and response bodies of SPEC section 4, shared by the terminal
//! agent and the backend simulator.
//!
//! Conventions, the same for every type here:
//! - unknown JSON fields are ignored (no `deny_unknown_fields` anywhere);
//! - `Option` fields are left out when `None`, and a missing or `null` field
//!   reads as `None`;
//! - amounts are [`Money`] (wire string `"2000.00"`), sums are [`Total`],
//!   currencies are [`Currency`];
//! - ids minted by the terminal are the validated [`crate::ids`] types;
//! - timestamps are [`Timestamp`]: RFC 3339, always written in UTC (`Z`);
//! - enums are snake_case strings (webhook event names use their dotted form).
//!
//! Card data: the only card object is [`Card`] `{token, last4, brand,
//! entry_mode}` (and its partner-side summary [`CardSummary`]). [`CardToken`]
//! is 32–64 lowercase hex characters and [`Last4`] exactly four digits, so no
//! field of any type here can carry a PAN.

mod card;
mod envelope;
mod page;
mod partner;
mod provision;
mod sandbox;
mod session;
#[cfg(test)]
mod test_util;
mod timestamp;
mod webhook;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::ids::{PaymentId, Reference, SessionId, TerminalId};
use crate::money::{Currency, Money, Total};
use crate::signing::{Credentials, Secret};

pub use card::{Card, CardBrand, CardError, CardSummary, CardToken, EntryMode, Last4};
pub use envelope::{ApiError, Envelope, codes};
pub use page::{Page, PageQuery};
pub use partner::{
    CreatePayment, CreateRefund, OfflinePolicy, Payment, PaymentMetadata, PaymentStatus,
    PaymentTransaction, RefundQuery, TerminalInfo, TerminalsQuery, TransactionKind,
};
pub use provision::ProvisionResponse;
pub use sandbox::{ActiveScenario, Scenario, ScenarioError, Scenarios, SetScenario};
pub use session::{
    Collection, CollectionAccount, CountTotal, CreateOperator, CreateSession, Operator,
    OperatorRole, PosTerminal, Reconciliation, Session, SessionStatus, TerminalStatus,
};
pub use timestamp::{Timestamp, TimestampError};
pub use webhook::{WebhookEnvelope, WebhookEventType};

/// Free-form partner metadata (a JSON object).
pub type Metadata = serde_json::Map<String, serde_json::Value>;

// ---------------------------------------------------------------------------
// 4.3 Terminal API
// ---------------------------------------------------------------------------

/// What the terminal is told to do. `type` is the tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// The `data:` of an SSE `event: command` (its `id:` is the stream sequence).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub command_id: String,
    #[serde(flatten)]
    pub body: CommandBody,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckStatus {
    Accepted,
    Rejected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckReason {
    Busy,
    Expired,
    SessionClosed,
    UnknownTransaction,
    AmountExceedsRefundable,
    OfflineLimit,
    InvalidRequest,
}

impl AckReason {
    pub fn as_str(self) -> &'static str {
        match self {
            AckReason::Busy => "busy",
            AckReason::Expired => "expired",
            AckReason::SessionClosed => "session_closed",
            AckReason::UnknownTransaction => "unknown_transaction",
            AckReason::AmountExceedsRefundable => "amount_exceeds_refundable",
            AckReason::OfflineLimit => "offline_limit",
            AckReason::InvalidRequest => "invalid_request",
        }
    }
}

/// `POST /v1/terminals/:tid/commands/:command_id/ack`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandAck {
    pub status: AckStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<AckReason>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentEventStatus {
    InProgress,
    Aborted,
    AbortTooLate,
    TimedOut,
    Failed,
}

/// `POST /v1/terminals/:tid/payments/:payment_id/events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentEvent {
    pub status: PaymentEventStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub at: Timestamp,
}

/// `POST /v1/terminals/:tid/transactions` with `Idempotency-Key: <reference>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionSubmission {
    pub reference: Reference,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<PaymentId>,
    pub kind: TransactionKind,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthStatus {
    Approved,
    Declined,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclineReason {
    CardDeclined,
    InsufficientFunds,
    DoNotHonor,
    AmountExceedsRefundable,
    UnknownTransaction,
    /// A reversal for this reference reached the backend first.
    Reversed,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Pos,
    Account,
}

/// Status of a recorded transaction on the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordStatus {
    Approved,
    Declined,
    Reversed,
}

impl RecordStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordStatus::Approved => "approved",
            RecordStatus::Declined => "declined",
            RecordStatus::Reversed => "reversed",
        }
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
    pub kind: TransactionKind,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReversalStatus {
    /// The approved transaction is now reversed (also on a repeat).
    Reversed,
    /// Nothing was recorded under that reference: a no-op.
    NotFound,
    /// The transaction was declined: nothing to reverse.
    NotApproved,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReversalAnswer {
    pub reference: Reference,
    pub status: ReversalStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    Booting,
    Idle,
    Busy,
    SessionClosed,
    Error,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_queued_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_since: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hal: Option<HalReport>,
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;
    use serde_json::{Value, json};

    use crate::wire::test_util::{card_json, round_trip, ts};

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

    #[test]
    fn heartbeat_and_answer() {
        let hb: Heartbeat = round_trip(json!({
            "agent_version": "0.1.0", "state": "idle", "queue_depth": 3,
            "oldest_queued_at": "2026-11-21T09:00:00Z", "offline_since": "2026-11-21T08:59:00Z",
            "hal": {"reader": "ok", "display": "ok"}
        }));
        assert_eq!(hb.queue_depth, 3);
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
    fn unknown_fields_ignored_and_nones_omitted() {
        let hb: Heartbeat = serde_json::from_value(json!({
            "agent_version": "0.1.0", "state": "busy", "oldest_queued_at": null,
            "offline_since": null, "hal": null, "brand_new_field": {"x": 1}
        }))
        .unwrap();
        assert_eq!(hb.oldest_queued_at, None);
        let out = serde_json::to_value(&hb).unwrap();
        assert_eq!(
            out,
            json!({"agent_version": "0.1.0", "state": "busy", "queue_depth": 0})
        );
        let ack = CommandAck {
            status: AckStatus::Accepted,
            reason: None,
        };
        assert_eq!(
            serde_json::to_string(&ack).unwrap(),
            r#"{"status":"accepted"}"#
        );
        let sub = TransactionSubmission {
            reference: Reference::new("r-1").unwrap(),
            payment_id: None,
            kind: TransactionKind::Sale,
            amount: Money::parse("1.00").unwrap(),
            currency: Currency::Ngn,
            card: serde_json::from_value(card_json()).unwrap(),
            operator_id: None,
            captured_at: ts("2026-11-21T10:00:00Z"),
            offline: false,
            original_reference: None,
        };
        let text = serde_json::to_string(&sub).unwrap();
        assert!(!text.contains("null"), "{text}");
        assert!(!text.contains("payment_id") && !text.contains("operator_id"));
    }
}
