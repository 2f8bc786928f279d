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
mod provision;
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
pub use provision::ProvisionResponse;
pub use session::{
    Collection, CollectionAccount, CountTotal, CreateOperator, CreateSession, Operator,
    OperatorRole, PosTerminal, Reconciliation, Session, SessionStatus, TerminalStatus,
};
pub use timestamp::{Timestamp, TimestampError};
pub use webhook::{WebhookEnvelope, WebhookEventType};

/// Free-form partner metadata (a JSON object).
pub type Metadata = serde_json::Map<String, serde_json::Value>;

// ---------------------------------------------------------------------------
// 4.2 Partner API
// ---------------------------------------------------------------------------

/// `GET /v1/terminals?session_id=` item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalInfo {
    pub terminal_id: TerminalId,
    pub session_id: SessionId,
    pub label: String,
    pub status: TerminalStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<Timestamp>,
    #[serde(default)]
    pub queue_depth: u32,
}

/// `?session_id=&page=&size=` of the terminals list.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
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
pub struct PaymentMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pos_payment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pos_merchant_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfflinePolicy {
    #[default]
    PreferOnline,
    RequireOnline,
}

/// `POST /v1/payments` (with `Idempotency-Key`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatePayment {
    pub terminal_id: TerminalId,
    pub amount: Money,
    #[serde(default)]
    pub currency: Currency,
    /// The partner's own reference (forwarded as `partner_reference`).
    pub reference: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<PaymentMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_policy: Option<OfflinePolicy>,
    /// Defaults to creation + 2 minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Pending,
    InProgress,
    Approved,
    Declined,
    Aborted,
    TimedOut,
    Failed,
}

impl PaymentStatus {
    pub fn is_final(self) -> bool {
        !matches!(self, PaymentStatus::Pending | PaymentStatus::InProgress)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransactionKind {
    Sale,
    Refund,
}

/// The transaction behind a payment, as the partner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentTransaction {
    pub transaction_id: String,
    pub reference: Reference,
    pub card: CardSummary,
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
pub struct Payment {
    pub payment_id: PaymentId,
    pub kind: TransactionKind,
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
pub struct CreateRefund {
    pub amount: Money,
    #[serde(default)]
    pub currency: Currency,
}

/// `?transactionId=` of the refund request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundQuery {
    #[serde(rename = "transactionId")]
    pub transaction_id: String,
}

/// A sandbox scenario. On the wire a snake_case string; `slow:<ms>` carries
/// its delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    Decline,
    InsufficientFunds,
    AuthTimeout,
    Http500,
    DropAfterCommit,
    Slow { ms: u64 },
}

/// Why a scenario name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown scenario {0:?}: expected decline, insufficient_funds, auth_timeout, http_500, drop_after_commit or slow:<ms>"
)]
pub struct ScenarioError(pub String);

impl Scenario {
    pub const NAMES: [&'static str; 6] = [
        "decline",
        "insufficient_funds",
        "auth_timeout",
        "http_500",
        "drop_after_commit",
        "slow:<ms>",
    ];

    pub fn parse(s: &str) -> Result<Scenario, ScenarioError> {
        Ok(match s {
            "decline" => Scenario::Decline,
            "insufficient_funds" => Scenario::InsufficientFunds,
            "auth_timeout" => Scenario::AuthTimeout,
            "http_500" => Scenario::Http500,
            "drop_after_commit" => Scenario::DropAfterCommit,
            other => match other.strip_prefix("slow:") {
                Some(ms)
                    if !ms.is_empty()
                        && ms.len() <= 7
                        && ms.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    Scenario::Slow {
                        ms: ms.parse().map_err(|_| ScenarioError(other.into()))?,
                    }
                }
                _ => return Err(ScenarioError(other.chars().take(40).collect())),
            },
        })
    }

    pub fn name(&self) -> String {
        match self {
            Scenario::Decline => "decline".into(),
            Scenario::InsufficientFunds => "insufficient_funds".into(),
            Scenario::AuthTimeout => "auth_timeout".into(),
            Scenario::Http500 => "http_500".into(),
            Scenario::DropAfterCommit => "drop_after_commit".into(),
            Scenario::Slow { ms } => format!("slow:{ms}"),
        }
    }
}

impl Serialize for Scenario {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for Scenario {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Scenario::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn one() -> u32 {
    1
}

/// `POST /v1/sandbox/scenarios`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetScenario {
    pub terminal_id: TerminalId,
    pub scenario: Scenario,
    #[serde(default = "one")]
    pub count: u32,
}

/// A scenario armed for a terminal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveScenario {
    pub terminal_id: TerminalId,
    pub scenario: Scenario,
    pub remaining: u32,
}

/// `GET /v1/sandbox/scenarios`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scenarios {
    pub available: Vec<String>,
    pub active: Vec<ActiveScenario>,
}

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
    fn partner_terminals_payments_refunds() {
        round_trip::<TerminalInfo>(json!({
            "terminal_id": "pos_3f1e2d_001", "session_id": "s1", "label": "POS 1",
            "status": "busy", "last_seen_at": "2026-11-21T10:00:00Z", "queue_depth": 2
        }));
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
                "transaction_id": "txn_1", "reference": "pos_3f1e2d_001-000001",
                "card": {"brand": "mastercard", "last4": "4444"}, "offline": false,
                "auth_code": "A1B2C3", "approved_at": "2026-11-21T10:00:30Z"
            },
            "created_at": "2026-11-21T10:00:00Z", "updated_at": "2026-11-21T10:00:30Z"
        }));
        assert_eq!(pay.status, PaymentStatus::Approved);
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

    #[test]
    fn sandbox_scenarios() {
        let s: SetScenario = round_trip(
            json!({"terminal_id": "pos_3f1e2d_001", "scenario": "slow:250", "count": 2}),
        );
        assert_eq!(s.scenario, Scenario::Slow { ms: 250 });
        for name in [
            "decline",
            "insufficient_funds",
            "auth_timeout",
            "http_500",
            "drop_after_commit",
        ] {
            let sc = Scenario::parse(name).unwrap();
            assert_eq!(sc.name(), name);
        }
        for bad in ["slow:", "slow:-1", "slow:99999999", "explode"] {
            assert!(Scenario::parse(bad).is_err(), "{bad}");
        }
        let d: SetScenario =
            serde_json::from_value(json!({"terminal_id": "t1", "scenario": "decline"})).unwrap();
        assert_eq!(d.count, 1);
        round_trip::<Scenarios>(json!({
            "available": ["decline"],
            "active": [{"terminal_id": "t1", "scenario": "http_500", "remaining": 1}]
        }));
    }

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
