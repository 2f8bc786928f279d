//! SPEC 7.7 pay by bank transfer to the session's collection account.
//!
//! The terminal shows the account, the amount and a [`TransferCode`], and
//! registers the payment it expects ([`TransferRegistration`], answered
//! with [`ExpectedTransfer`]); the backend matches inbound credits by code
//! and amount and tells the terminal with the `transfer_received` command
//! ([`crate::wire::CommandBody::TransferReceived`]). The bank side, shaped
//! like a virtual-account API: the sandbox credit ([`SandboxTransfer`]),
//! the account's balance ([`AccountBalance`]) and its statement
//! ([`StatementFilter`] → pages of [`StatementEntry`]).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use super::session::CollectionAccount;
use super::timestamp::Timestamp;
use crate::ids::{PaymentId, Reference, TerminalId};
use crate::money::{Currency, Money, Total};
use crate::text_enum::text_enum;

/// Digits of a transfer payment code.
pub const TRANSFER_CODE_LEN: usize = 6;
/// How long a terminal waits for a transfer by default (SPEC 7.7: 10 min).
pub const TRANSFER_TIMEOUT_S: i64 = 600;
/// Longest narration, payer name or payer bank kept, in characters.
pub const MAX_TRANSFER_TEXT_CHARS: usize = 140;

/// Why a transfer field was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    #[error("a transfer code is exactly {TRANSFER_CODE_LEN} digits")]
    BadCode,
}

/// The 6-digit payment code the customer puts in the transfer's narration.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TransferCode(String);

impl TransferCode {
    pub fn new(s: &str) -> Result<TransferCode, TransferError> {
        if s.len() == TRANSFER_CODE_LEN && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(TransferCode(s.to_owned()))
        } else {
            Err(TransferError::BadCode)
        }
    }

    /// The code of `n` modulo 1,000,000, zero-padded to six digits.
    pub fn from_number(n: u64) -> TransferCode {
        TransferCode(format!("{:06}", n % 1_000_000))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Finds the first run of exactly six digits in a narration (a longer
    /// run of digits, such as an account number, is not a code).
    pub fn find_in(narration: &str) -> Option<TransferCode> {
        let b = narration.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i].is_ascii_digit() {
                let start = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                if i - start == TRANSFER_CODE_LEN {
                    return Some(TransferCode(narration[start..i].to_owned()));
                }
            } else {
                i += 1;
            }
        }
        None
    }
}

impl fmt::Display for TransferCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TransferCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TransferCode::new(&s).map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for TransferCode {
    type Err = TransferError;
    fn from_str(s: &str) -> Result<Self, TransferError> {
        TransferCode::new(s)
    }
}

/// `POST /v1/terminals/:tid/transfers` (signed): the transfer payment the
/// terminal waits for. Idempotent by `reference`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransferRegistration {
    pub reference: Reference,
    /// The partner payment it pays, when the sale came from the terminal API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<PaymentId>,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::positive_money))]
    pub amount: Money,
    #[serde(default)]
    pub currency: Currency,
    pub code: TransferCode,
    pub expires_at: Timestamp,
    /// The cashier logged in (SPEC 7.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_id: Option<String>,
}

text_enum! {
    /// Where an expected transfer stands at the backend.
    pub enum TransferStatus: "transfer status" {
        /// Waiting for (the rest of) the money.
        Open = "open",
        /// The whole amount arrived: a transaction with channel `account`.
        Settled = "settled",
        /// The terminal cancelled it (cancel, timeout, back to the card).
        Cancelled = "cancelled",
        /// `expires_at` passed before the money arrived.
        Expired = "expired",
    }
}

/// The backend's view of one expected transfer: the answer of the
/// registration (201, or 200 on a replay) and of its cancellation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExpectedTransfer {
    pub reference: Reference,
    pub terminal_id: TerminalId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<PaymentId>,
    pub amount: Money,
    pub currency: Currency,
    pub code: TransferCode,
    pub expires_at: Timestamp,
    pub status: TransferStatus,
    /// What has arrived so far (partial credits add up).
    pub received: Money,
    /// The account the customer pays into.
    pub account: CollectionAccount,
    pub created_at: Timestamp,
}

/// Who sent a transfer, as the bank reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Payer {
    pub name: String,
    pub bank: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_number: Option<String>,
}

/// `POST /v1/sandbox/transfers` (organisation key): the bank credits a
/// collection account, as a customer's transfer would.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SandboxTransfer {
    pub account_number: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::positive_money))]
    pub amount: Money,
    #[serde(default)]
    pub currency: Currency,
    /// Free text; a payment code is a run of exactly six digits in it.
    #[cfg_attr(feature = "openapi", schema(max_length = 140))]
    pub narration: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 140))]
    pub payer_name: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 140))]
    pub payer_bank: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 140))]
    pub payer_account_number: Option<String>,
}

text_enum! {
    /// How a credit on the collection account was applied.
    pub enum CreditStatus: "credit status" {
        /// It completed a terminal payment (`matched_reference`).
        Matched = "matched",
        /// It went to an open payment that still waits for the rest.
        Partial = "partial",
        /// No open payment had its code and amount: kept on the account.
        Unmatched = "unmatched",
    }
}

/// One credit of the account's statement. `new_balance` is
/// `previous_balance + amount_collected`; the newest entry's `new_balance`
/// is the balance's `collected`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatementEntry {
    pub entry_id: String,
    pub status: CreditStatus,
    /// The bank's reference of the credit (`trf_` + hex).
    pub reference: String,
    pub amount_collected: Money,
    /// Balances are sums of credits: [`Total`], not bounded by the
    /// per-payment maximum of [`Money`].
    pub previous_balance: Total,
    pub new_balance: Total,
    pub currency: Currency,
    pub payer: Payer,
    pub narration: String,
    pub created_at: Timestamp,
    /// The terminal payment it went to (matched or partial).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched_reference: Option<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal_id: Option<TerminalId>,
}

/// `POST /v1/sessions/:id/account/statement` body (empty: everything);
/// pages with `?page&size` as every list.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatementFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<CreditStatus>,
    /// Matches the credit's own reference or the payment it went to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 64))]
    pub reference: Option<String>,
}

/// `GET /v1/sessions/:id/account/balance`: `collected` is everything
/// credited, `settled` what completed terminal payments, `unmatched` what
/// no payment claimed (partial credits of a payment still open are in
/// neither of the last two).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountBalance {
    pub account_number: String,
    pub currency: Currency,
    /// Sums of credits, unbounded by the per-payment maximum.
    pub collected: Total,
    pub settled: Total,
    pub unmatched: Total,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::wire::test_util::round_trip;

    #[test]
    fn codes_are_six_digits() {
        assert!(TransferCode::new("004217").is_ok());
        for bad in ["", "12345", "1234567", "12a456", " 12345", "١٢٣٤٥٦"] {
            assert_eq!(
                TransferCode::new(bad),
                Err(TransferError::BadCode),
                "{bad:?}"
            );
        }
        assert_eq!(TransferCode::from_number(42).as_str(), "000042");
        assert_eq!(TransferCode::from_number(1_234_567).as_str(), "234567");
        assert!(serde_json::from_value::<TransferCode>(json!("12")).is_err());
    }

    #[test]
    fn a_code_is_found_as_a_run_of_exactly_six_digits() {
        let f = |s: &str| TransferCode::find_in(s).map(|c| c.0);
        assert_eq!(f("drinks 004217").as_deref(), Some("004217"));
        assert_eq!(f("004217").as_deref(), Some("004217"));
        assert_eq!(f("code:004217, thanks").as_deref(), Some("004217"));
        assert_eq!(f("acct 0123456789 code 555111").as_deref(), Some("555111"));
        assert_eq!(f("12345 and 1234567"), None);
        assert_eq!(f(""), None);
    }

    #[test]
    fn bodies_round_trip() {
        round_trip::<TransferRegistration>(json!({
            "reference": "pos_3f1e2d_001-000007", "amount": "2500.00", "currency": "NGN",
            "code": "004217", "expires_at": "2026-11-21T10:12:00Z"
        }));
        round_trip::<SandboxTransfer>(json!({
            "account_number": "9900000001", "amount": "2500.00", "currency": "NGN",
            "narration": "004217", "payer_name": "ADA OBI", "payer_bank": "GTBank"
        }));
        round_trip::<StatementFilter>(json!({"status": "unmatched"}));
        assert!(serde_json::from_value::<StatementFilter>(json!({"status": "bogus"})).is_err());
        round_trip::<StatementEntry>(json!({
            "entry_id": "ent_1", "status": "matched", "reference": "trf_01ab",
            "amount_collected": "2500.00", "previous_balance": "0.00", "new_balance": "2500.00",
            "currency": "NGN", "payer": {"name": "ADA OBI", "bank": "GTBank", "account_number": "0123456789"},
            "narration": "004217", "created_at": "2026-11-21T10:03:00Z",
            "matched_reference": "pos_3f1e2d_001-000007", "terminal_id": "pos_3f1e2d_001"
        }));
        // Balances are sums, beyond the per-payment maximum.
        let b: AccountBalance = round_trip(json!({
            "account_number": "9900000001", "currency": "NGN", "collected": "20000312.32",
            "settled": "300.00", "unmatched": "20000012.32"
        }));
        assert_eq!(b.collected, Total(2_000_031_232));
    }
}
