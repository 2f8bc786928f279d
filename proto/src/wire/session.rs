//! SPEC 4.1 Kler sessions: sessions and their terminals, operators, and
//! the reconciliation of a session.

use std::collections::BTreeMap;

use crate::domain::SessionStatus;
use crate::text_enum::text_enum;
use serde::{Deserialize, Serialize};

use super::{Metadata, Timestamp};
use crate::ids::{SessionId, TerminalId};
use crate::money::{Currency, Money, Total};

/// What a session collects through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Collection {
    #[serde(default)]
    pub account: bool,
    #[serde(default)]
    pub pos: bool,
    /// 1–50 when `pos` is true.
    #[serde(default)]
    pub pos_count: u32,
}

/// `POST /v1/sessions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateSession {
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 128, pattern = r"\S")
    )]
    pub external_event_id: String,
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 200, pattern = r"\S")
    )]
    pub name: String,
    #[serde(default)]
    pub currency: Currency,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Timestamp>,
    #[serde(default)]
    pub collection: Collection,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub metadata: Option<Metadata>,
}

/// A virtual account paying into the session (when `collection.account`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CollectionAccount {
    pub account_number: String,
    pub account_name: String,
    pub bank_name: String,
}

text_enum! {
    pub enum TerminalStatus: "terminal status" {
        Online = "online",
        Offline = "offline",
        Busy = "busy",
    }
}

/// A terminal of a session, as listed in the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PosTerminal {
    pub terminal_id: TerminalId,
    pub label: String,
    pub status: TerminalStatus,
}

/// A session (`POST /v1/sessions`, `GET /v1/sessions/:id`, close).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Session {
    pub session_id: SessionId,
    pub external_event_id: String,
    pub name: String,
    pub currency: Currency,
    pub status: SessionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Timestamp>,
    #[serde(default)]
    pub collection: Collection,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection_account: Option<CollectionAccount>,
    #[serde(default)]
    pub pos_terminals: Vec<PosTerminal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub metadata: Option<Metadata>,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<Timestamp>,
}

text_enum! {
    #[derive(Default)]
    pub enum OperatorRole: "operator role" {
        #[default]
        Cashier = "cashier",
        Supervisor = "supervisor",
        Manager = "manager",
    }
}

/// `POST /v1/sessions/:id/operators`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateOperator {
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 200, pattern = r"\S")
    )]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 200, pattern = "@"))]
    pub email: Option<String>,
    #[serde(default)]
    pub role: OperatorRole,
    /// 4–6 digits (SPEC 7.2); write-only: never in an answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<crate::pin::Pin>,
}

/// An operator as a terminal of the session reads it (signed
/// `GET /v1/terminals/:tid/operators`, SPEC 7.2): enough to check a PIN
/// offline, never the PIN itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TerminalOperator {
    pub operator_id: String,
    pub name: String,
    pub role: OperatorRole,
    /// Lowercase hex PBKDF2-HMAC-SHA256(pin, salt bytes, 10,000, 32).
    pub pin_hash: String,
    /// Lowercase hex, 16 bytes.
    pub salt: String,
}

/// A cashier of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Operator {
    pub operator_id: String,
    pub session_id: SessionId,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub role: OperatorRole,
    pub created_at: Timestamp,
}

/// A count and a gross total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CountTotal {
    pub count: u64,
    pub total: Total,
}

impl CountTotal {
    pub fn add(&mut self, m: Money) {
        self.count += 1;
        self.total = self.total.add(m);
    }
}

/// `GET /v1/reconciliation/:session_id`. Counts and totals are approved sales
/// (gross, reversed ones excluded); refunds are reported beside them. Tips,
/// operators and items are of the same approved sales: `tips` counts those
/// with a tip above zero and sums their tips, `by_operator` is keyed by
/// `operator_id` (sales without one are not in it), `by_item` by `item_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reconciliation {
    pub session_id: SessionId,
    pub currency: Currency,
    pub total_inflow: Total,
    pub transaction_count: u64,
    pub successful_count: u64,
    pub pending_count: u64,
    pub failed_count: u64,
    #[serde(default)]
    pub by_channel: BTreeMap<String, CountTotal>,
    #[serde(default)]
    pub by_terminal: BTreeMap<String, CountTotal>,
    #[serde(default)]
    pub refunds: CountTotal,
    #[serde(default)]
    pub tips: CountTotal,
    #[serde(default)]
    pub by_operator: BTreeMap<String, CountTotal>,
    #[serde(default)]
    pub by_item: BTreeMap<String, super::ItemTotal>,
    /// Credits of the collection account no payment claimed (SPEC 7.7).
    #[serde(default)]
    pub unmatched_credits: CountTotal,
    pub reconciled_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::wire::test_util::round_trip;

    #[test]
    fn session_create_and_read() {
        let create: CreateSession = round_trip(json!({
            "external_event_id": "evt-42",
            "name": "Afrobeats Night",
            "currency": "NGN",
            "starts_at": "2026-11-21T18:00:00Z",
            "ends_at": "2026-11-22T02:00:00Z",
            "collection": {"account": true, "pos": true, "pos_count": 3},
            "webhook_url": "http://127.0.0.1:9000/hooks",
            "metadata": {"venue": "Eko Hotel"}
        }));
        assert_eq!(create.collection.pos_count, 3);
        // Defaults: currency NGN, no collection.
        let min: CreateSession = serde_json::from_value(
            json!({"external_event_id": "e", "name": "n", "starts_at": null}),
        )
        .unwrap();
        assert_eq!(min.currency, Currency::Ngn);
        assert_eq!(min.starts_at, None);
        assert!(!min.collection.pos);
        assert!(
            serde_json::from_value::<CreateSession>(
                json!({"external_event_id": "e", "name": "n", "currency": "USD"})
            )
            .is_err()
        );
        let session: Session = round_trip(json!({
            "session_id": "3f1e2d9a",
            "external_event_id": "evt-42",
            "name": "Afrobeats Night",
            "currency": "NGN",
            "status": "active",
            "collection": {"account": true, "pos": true, "pos_count": 1},
            "collection_account": {"account_number": "9900000001", "account_name": "Afrobeats Night", "bank_name": "Kler Sandbox Bank"},
            "pos_terminals": [{"terminal_id": "pos_3f1e2d_001", "label": "POS 1", "status": "offline"}],
            "created_at": "2026-11-21T10:00:00Z"
        }));
        assert_eq!(session.status, SessionStatus::Active);
        assert_eq!(
            session.pos_terminals[0].terminal_id.as_str(),
            "pos_3f1e2d_001"
        );
    }

    #[test]
    fn operators_and_reconciliation() {
        let op: CreateOperator =
            round_trip(json!({"name": "Ada", "phone": "+2348000000000", "role": "cashier"}));
        assert_eq!(op.role, OperatorRole::Cashier);
        round_trip::<Operator>(json!({
            "operator_id": "op_1", "session_id": "s1", "name": "Ada",
            "email": "ada@example.com", "role": "supervisor", "created_at": "2026-11-21T10:00:00Z"
        }));
        let rec: Reconciliation = round_trip(json!({
            "session_id": "s1", "currency": "NGN",
            "total_inflow": "3500.50", "transaction_count": 4, "successful_count": 2,
            "pending_count": 1, "failed_count": 1,
            "by_channel": {"pos": {"count": 1, "total": "1000.50"}, "account": {"count": 1, "total": "2500.00"}},
            "by_terminal": {"pos_3f1e2d_001": {"count": 2, "total": "3500.50"}},
            "refunds": {"count": 1, "total": "500.00"},
            "tips": {"count": 1, "total": "50.50"},
            "by_operator": {"op_1": {"count": 2, "total": "3500.50"}},
            "by_item": {"beer": {"name": "Star Lager", "qty": 2, "total": "3000.00"}},
            "unmatched_credits": {"count": 1, "total": "12000000.00"},
            "reconciled_at": "2026-11-21T12:00:00Z"
        }));
        assert_eq!(rec.total_inflow, Total(350_050));
        assert_eq!(rec.unmatched_credits.total, Total(1_200_000_000));
        assert_eq!(rec.by_item["beer"].qty, 2);
        // Answers from before tips, operators and items read as empty.
        let old: Reconciliation = serde_json::from_value(json!({
            "session_id": "s1", "currency": "NGN", "total_inflow": "0.00",
            "transaction_count": 0, "successful_count": 0, "pending_count": 0,
            "failed_count": 0, "reconciled_at": "2026-11-21T12:00:00Z"
        }))
        .unwrap();
        assert!(old.by_item.is_empty() && old.by_operator.is_empty());
        assert_eq!(old.tips, CountTotal::default());
        assert_eq!(old.unmatched_credits, CountTotal::default());
        let mut ct = CountTotal::default();
        ct.add(Money::parse("1.50").unwrap());
        ct.add(Money::parse("2.00").unwrap());
        assert_eq!(ct.total.to_wire(), "3.50");
    }
}
