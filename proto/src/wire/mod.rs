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
//!
//! One file per part of the SPEC: `timestamp`, `envelope` (and its
//! errors), `page`, `card`; section 4.1 in `session`, `provision`
//! and `webhook`; section 4.2 in `partner` and `sandbox`; section 4.3
//! in `command` (commands over SSE, acks, payment events),
//! `transaction` (forwarding, records, statement, reversals) and
//! `heartbeat`; section 7.5 in `shift`; section 7.6 in `config` and
//! `catalog`; section 7.7 in `transfer`; section 8.1 in `pairing`. Everything is re-exported here: use `proto::wire::X`.
//!
//! [`Money`]: crate::money::Money
//! [`Total`]: crate::money::Total
//! [`Currency`]: crate::money::Currency

mod card;
mod catalog;
mod command;
mod command_event;
mod config;
mod envelope;
mod heartbeat;
mod page;
mod pairing;
mod partner;
mod provision;
mod sandbox;
mod session;
mod shift;
#[cfg(test)]
mod test_util;
mod timestamp;
mod transaction;
mod transfer;
mod webhook;

pub use crate::domain::{
    AckReason, AckStatus, CardBrand, EntryMode, OfflinePolicy, PaymentEventStatus, SessionStatus,
    TxKind,
};
pub use card::{Card, CardError, CardSummary, CardToken, Last4};
pub use catalog::{
    Catalog, CatalogError, CatalogItem, MAX_CATALOG_ITEMS, MAX_ITEM_ID_CHARS, MAX_ITEM_NAME_CHARS,
    PutCatalog, check_item_id, check_item_name,
};
pub use command::{Command, CommandAck, CommandBody, PaymentEvent};
pub use command_event::{
    CommandError, MAX_COMMAND_BYTES, ValidCommand, fuzz_parse_command, parse_command,
};
pub use config::{
    ConfigError, LOGOUT_AFTER_S, MAX_TIP_CHOICES, ReceiptPrint, SessionConfig, TerminalConfig,
    TipsConfig,
};
pub use envelope::{ApiError, Envelope, codes};
pub use heartbeat::{
    AgentState, HalReport, Heartbeat, HeartbeatAnswer, HeartbeatMetrics, OfflineLimits,
};
pub use page::{Page, PageQuery};
pub use pairing::{
    ClaimPairing, DEVICE_KEY_LEN, DeviceId, DeviceKeyHash, PAIRING_ALPHABET, PAIRING_CODE_LEN,
    PAIRING_CODE_TTL_S, PairingClaimed, PairingCode, PairingError, PairingPoll, PairingRequest,
    PairingState, PairingTicket, device_key_hash,
};
pub use partner::{
    CreatePayment, CreateRefund, Payment, PaymentMetadata, PaymentStatus, PaymentTransaction,
    RefundQuery, TerminalInfo, TerminalsQuery,
};
pub use provision::ProvisionResponse;
pub use sandbox::{ActiveScenario, Scenario, ScenarioError, Scenarios, SetScenario};
pub use session::{
    Collection, CollectionAccount, CountTotal, CreateOperator, CreateSession, Operator,
    OperatorRole, PosTerminal, Reconciliation, Session, TerminalOperator, TerminalStatus,
};
pub use shift::{ItemTotal, ShiftRecord, ShiftSubmission, ShiftTotals};
pub use timestamp::{Timestamp, TimestampError};
pub use transaction::{
    AuthStatus, Channel, DeclineReason, MAX_ITEM_QTY, MAX_TX_ITEMS, RecordStatus, ReversalAnswer,
    ReversalRequest, ReversalStatus, StatementPage, StatementQuery, TransactionAnswer,
    TransactionRecord, TransactionSubmission, TxItem,
};
pub use transfer::{
    AccountBalance, CreditStatus, ExpectedTransfer, MAX_TRANSFER_TEXT_CHARS, Payer,
    SandboxTransfer, StatementEntry, StatementFilter, TRANSFER_CODE_LEN, TRANSFER_TIMEOUT_S,
    TransferCode, TransferError, TransferRegistration, TransferStatus,
};
pub use webhook::{WebhookEnvelope, WebhookEventType};

/// Free-form partner metadata (a JSON object).
pub type Metadata = serde_json::Map<String, serde_json::Value>;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::ids::Reference;
    use crate::money::{Currency, Money};
    use crate::wire::test_util::{card_json, ts};

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
            json!({"agent_version": "0.1.0", "state": "busy", "queue_depth": 0, "parked": 0})
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
            kind: TxKind::Sale,
            amount: Money::parse("1.00").unwrap(),
            currency: Currency::Ngn,
            card: serde_json::from_value(card_json()).unwrap(),
            operator_id: None,
            captured_at: ts("2026-11-21T10:00:00Z"),
            offline: false,
            original_reference: None,
            tip_amount: None,
            items: None,
        };
        let text = serde_json::to_string(&sub).unwrap();
        assert!(!text.contains("null"), "{text}");
        assert!(!text.contains("payment_id") && !text.contains("operator_id"));
    }
}
