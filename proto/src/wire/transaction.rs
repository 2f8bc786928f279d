//! SPEC 4.3 transactions: forwarding a transaction and its answer, the
//! backend's records and the terminal statement, and reversals.

use crate::text_enum::text_enum;
use serde::{Deserialize, Serialize};

use super::{Card, CardSummary, Page, Timestamp, TxKind};
use crate::ids::{PaymentId, Reference, SessionId, TerminalId};
use crate::money::{Currency, Money};

/// `POST /v1/terminals/:tid/transactions` with `Idempotency-Key: <reference>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransactionSubmission {
    pub reference: Reference,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<PaymentId>,
    pub kind: TxKind,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::positive_money))]
    pub amount: Money,
    pub currency: Currency,
    pub card: Card,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_id: Option<String>,
    pub captured_at: Timestamp,
    pub offline: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_reference: Option<Reference>,
    /// The tip included in `amount` (SPEC 7.3); sales only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tip_amount: Option<Money>,
    /// The catalog items sold (SPEC 7.6); sales only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<TxItem>>,
}

/// Most item lines one transaction carries.
pub const MAX_TX_ITEMS: usize = 100;
/// Most units of one item line.
pub const MAX_ITEM_QTY: u32 = 999;

/// One line of a catalog sale: `qty` of an item at `unit_price`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TxItem {
    pub item_id: String,
    pub name: String,
    pub qty: u32,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::positive_money))]
    pub unit_price: Money,
}

impl TxItem {
    /// `qty × unit_price` in minor units; `None` on overflow.
    pub fn line_minor(&self) -> Option<u64> {
        self.unit_price.minor().checked_mul(u64::from(self.qty))
    }
}

impl TransactionSubmission {
    /// Checks how the parts of the amount fit together (both sides, before
    /// a submission is sent or recorded): a tip is at most the amount; a
    /// refund carries neither tip nor items; items are 1–100 lines of
    /// 1–999 units above zero each, with ids and names as in the catalog,
    /// and the lines plus the tip make exactly the amount. Integer minor
    /// units only, every step checked.
    pub fn check_parts(&self) -> Result<(), String> {
        if self.kind == TxKind::Refund && (self.tip_amount.is_some() || self.items.is_some()) {
            return Err("a refund carries neither tip_amount nor items".into());
        }
        let tip = self.tip_amount.unwrap_or(Money::ZERO);
        if tip > self.amount {
            return Err(format!(
                "tip_amount {tip} is more than the amount {}",
                self.amount
            ));
        }
        let Some(items) = &self.items else {
            return Ok(());
        };
        if items.is_empty() || items.len() > MAX_TX_ITEMS {
            return Err(format!(
                "items: {} lines; from 1 to {MAX_TX_ITEMS}",
                items.len()
            ));
        }
        let mut sum = tip.minor();
        for (i, item) in items.iter().enumerate() {
            super::catalog::check_item_id(&item.item_id)
                .map_err(|m| format!("items[{i}].item_id: {m}"))?;
            super::catalog::check_item_name(&item.name)
                .map_err(|m| format!("items[{i}].name: {m}"))?;
            if !(1..=MAX_ITEM_QTY).contains(&item.qty) {
                return Err(format!(
                    "items[{i}].qty: {}; from 1 to {MAX_ITEM_QTY}",
                    item.qty
                ));
            }
            if item.unit_price.is_zero() {
                return Err(format!("items[{i}].unit_price: must be above 0.00"));
            }
            sum = item
                .line_minor()
                .and_then(|line| sum.checked_add(line))
                .ok_or_else(|| format!("items[{i}]: the lines add up past any amount"))?;
        }
        if sum != self.amount.minor() {
            let shown = Money::from_minor(sum).map_or_else(|_| "more".to_owned(), |m| m.to_wire());
            return Err(format!(
                "the items plus the tip make {shown}, not the amount {}",
                self.amount
            ));
        }
        Ok(())
    }
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransactionAnswer {
    pub transaction_id: String,
    pub reference: Reference,
    pub status: AuthStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline_reason: Option<DeclineReason>,
    /// The digital receipt (SPEC 7.4): `<backend url>/r/<transaction_id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_url: Option<String>,
}

text_enum! {
    /// How the money came: a card at the terminal (`pos`) or a bank
    /// transfer to the session's collection account (`account`, SPEC 7.7).
    pub enum Channel: "channel" {
        Pos = "pos",
        Account = "account",
    }
}

impl Default for Channel {
    /// Records and partner transactions written before the account
    /// channel existed were all card payments.
    fn default() -> Channel {
        Channel::Pos
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// The tip included in `amount`, as submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tip_amount: Option<Money>,
    pub currency: Currency,
    pub status: RecordStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline_reason: Option<DeclineReason>,
    /// The card (channel `pos`); none for a bank transfer (channel
    /// `account`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<CardSummary>,
    /// Who sent the bank transfer (channel `account`, SPEC 7.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<super::Payer>,
    pub offline: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_reference: Option<Reference>,
    /// The catalog items sold, as submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<TxItem>>,
    pub captured_at: Timestamp,
    pub received_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reversed_at: Option<Timestamp>,
}

/// `?page&size&status` of the terminal statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

    fn sub_with(
        kind: &str,
        amount: &str,
        tip: Option<&str>,
        items: Option<serde_json::Value>,
    ) -> TransactionSubmission {
        let mut v = json!({
            "reference": "pos_3f1e2d_001-000050", "kind": kind, "amount": amount,
            "currency": "NGN", "card": card_json(), "captured_at": "2026-11-21T10:05:00Z",
            "offline": false
        });
        if let Some(t) = tip {
            v["tip_amount"] = json!(t);
        }
        if let Some(i) = items {
            v["items"] = i;
        }
        if kind == "refund" {
            v["original_reference"] = json!("pos_3f1e2d_001-000042");
        }
        serde_json::from_value(v).unwrap()
    }

    fn line(id: &str, qty: u32, price: &str) -> serde_json::Value {
        json!({"item_id": id, "name": "Star Lager", "qty": qty, "unit_price": price})
    }

    #[test]
    fn tips_and_items_add_up_to_the_amount() {
        let with_parts: TransactionSubmission = round_trip(json!({
            "reference": "pos_3f1e2d_001-000050", "kind": "sale", "amount": "3450.00",
            "currency": "NGN", "card": card_json(), "operator_id": "op_1",
            "captured_at": "2026-11-21T10:05:00Z", "offline": false, "tip_amount": "150.00",
            "items": [line("beer", 2, "1500.00"), line("water", 1, "300.00")]
        }));
        assert_eq!(with_parts.check_parts(), Ok(()));
        let ok = |s: TransactionSubmission| s.check_parts();
        assert_eq!(ok(sub_with("sale", "10.00", None, None)), Ok(()));
        assert_eq!(ok(sub_with("sale", "10.00", Some("10.00"), None)), Ok(()));
        assert_eq!(ok(sub_with("sale", "10.00", Some("0.00"), None)), Ok(()));
        assert!(
            ok(sub_with("sale", "10.00", Some("10.01"), None))
                .unwrap_err()
                .contains("tip_amount")
        );
        assert!(ok(sub_with("refund", "10.00", Some("1.00"), None)).is_err());
        assert!(
            ok(sub_with(
                "refund",
                "10.00",
                None,
                Some(json!([line("a", 1, "10.00")]))
            ))
            .is_err()
        );
        assert_eq!(ok(sub_with("refund", "10.00", None, None)), Ok(()));
        // Lines plus tip must make the amount exactly.
        let items = |v: Vec<serde_json::Value>| Some(serde_json::Value::Array(v));
        assert_eq!(
            ok(sub_with(
                "sale",
                "30.50",
                Some("0.50"),
                items(vec![line("a", 3, "10.00")])
            )),
            Ok(())
        );
        let e = ok(sub_with(
            "sale",
            "30.00",
            Some("0.50"),
            items(vec![line("a", 3, "10.00")]),
        ))
        .unwrap_err();
        assert!(e.contains("30.50") && e.contains("30.00"), "{e}");
        assert!(
            ok(sub_with(
                "sale",
                "29.99",
                None,
                items(vec![line("a", 3, "10.00")])
            ))
            .is_err()
        );
        assert!(ok(sub_with("sale", "1.00", None, items(vec![]))).is_err());
        assert!(
            ok(sub_with(
                "sale",
                "1.00",
                None,
                items(vec![line("a", 0, "1.00")])
            ))
            .is_err()
        );
        assert_eq!(
            ok(sub_with(
                "sale",
                "999.00",
                None,
                items(vec![line("a", 999, "1.00")])
            )),
            Ok(())
        );
        assert!(
            ok(sub_with(
                "sale",
                "1000.00",
                None,
                items(vec![line("a", 1000, "1.00")])
            ))
            .is_err()
        );
        assert!(
            ok(sub_with(
                "sale",
                "1.00",
                None,
                items(vec![line("a b", 1, "1.00")])
            ))
            .is_err()
        );
        let hundred: Vec<_> = (0..MAX_TX_ITEMS)
            .map(|i| line(&format!("i{i}"), 1, "0.01"))
            .collect();
        assert_eq!(
            ok(sub_with("sale", "1.00", None, items(hundred.clone()))),
            Ok(())
        );
        let mut too_many = hundred;
        too_many.push(line("x", 1, "0.01"));
        assert!(ok(sub_with("sale", "1.01", None, items(too_many))).is_err());
        // A zero unit price is refused; huge lines never overflow into a match.
        let mut zero = line("a", 1, "1.00");
        zero["unit_price"] = json!("0.00");
        assert!(ok(sub_with("sale", "1.00", Some("1.00"), items(vec![zero]))).is_err());
        let big: Vec<_> = (0..MAX_TX_ITEMS)
            .map(|i| line(&format!("i{i}"), 999, "10000000.00"))
            .collect();
        assert!(ok(sub_with("sale", "10000000.00", None, items(big))).is_err());
        // Left out when None: a plain sale's body (and signature) is unchanged.
        let plain = serde_json::to_string(&sub_with("sale", "1.00", None, None)).unwrap();
        assert!(
            !plain.contains("tip_amount") && !plain.contains("items"),
            "{plain}"
        );
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
        let mut keypad = rec.clone();
        keypad["status"] = json!("approved");
        keypad["operator_id"] = json!("op_1");
        keypad["tip_amount"] = json!("500.00");
        keypad["items"] = json!([line("beer", 1, "1500.00")]);
        let keypad: TransactionRecord = round_trip(keypad);
        assert_eq!(keypad.tip_amount, Some(Money::parse("500.00").unwrap()));
        assert_eq!(keypad.items.unwrap()[0].line_minor(), Some(150_000));
        // A bank transfer (SPEC 7.7): channel account, a payer, no card.
        let mut transfer = rec.clone();
        transfer["channel"] = json!("account");
        transfer["status"] = json!("approved");
        transfer.as_object_mut().unwrap().remove("card");
        transfer.as_object_mut().unwrap().remove("auth_code");
        transfer["payer"] =
            json!({"name": "ADA OBI", "bank": "GTBank", "account_number": "0123456789"});
        let transfer: TransactionRecord = round_trip(transfer);
        assert_eq!(transfer.channel, Channel::Account);
        assert!(transfer.card.is_none());
        assert_eq!(transfer.payer.unwrap().bank, "GTBank");
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
