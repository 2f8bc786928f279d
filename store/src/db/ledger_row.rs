//! Transaction rows as stored: the column list and the decoding and
//! validation of a row into a [`Transaction`].

use proto::{Currency, Money, PaymentId, Reference};
use rusqlite::{Connection, OptionalExtension, Row};

use crate::StoreError;
use crate::error::sql;
use crate::model::{Card, Channel, Decision, DecisionMode, Transaction, TxKind, TxState, truncate};

pub(super) fn money_from_db(v: i64) -> Result<Money, StoreError> {
    u64::try_from(v)
        .ok()
        .and_then(|m| Money::from_minor(m).ok())
        .filter(|m| !m.is_zero())
        .ok_or_else(|| StoreError::Invalid(format!("amount {v} out of range")))
}

pub(super) const TX_COLUMNS: &str = "reference, payment_id, kind, amount, currency, state, card_token, \
    card_last4, card_brand, card_entry_mode, operator_id, captured_at, decision, \
    decision_reason, backend_transaction_id, auth_code, decline_reason, original_reference, \
    created_at, updated_at, tip_amount, items, shift_no, card_aid, card_label, channel, \
    payer_name, payer_bank, transfer_code";

pub(super) fn get_transaction(
    conn: &Connection,
    reference: &str,
) -> Result<Option<Transaction>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {TX_COLUMNS} FROM transactions WHERE reference = ?1"
    ))
    .and_then(|mut s| s.query_row([reference], RawTx::from_row).optional())
    .map_err(sql("reading a transaction"))?
    .map(RawTx::validate)
    .transpose()
}

pub(super) fn collect_tx(
    rows: impl Iterator<Item = rusqlite::Result<RawTx>>,
    op: &'static str,
) -> Result<Vec<Transaction>, StoreError> {
    let mut out = Vec::new();
    for row in rows {
        out.push(row.map_err(sql(op))?.validate()?);
    }
    Ok(out)
}

/// A transaction row before validation.
pub(super) struct RawTx {
    reference: String,
    payment_id: Option<String>,
    kind: String,
    amount: i64,
    currency: String,
    state: String,
    card: [Option<String>; 4],
    operator_id: Option<String>,
    captured_at: Option<i64>,
    decision: Option<String>,
    decision_reason: Option<String>,
    backend_transaction_id: Option<String>,
    auth_code: Option<String>,
    decline_reason: Option<String>,
    original_reference: Option<String>,
    created_at: i64,
    updated_at: i64,
    tip_amount: Option<i64>,
    items: Option<String>,
    shift_no: i64,
    card_aid: Option<String>,
    card_label: Option<String>,
    channel: String,
    payer_name: Option<String>,
    payer_bank: Option<String>,
    transfer_code: Option<String>,
}

impl RawTx {
    pub(super) fn from_row(r: &Row<'_>) -> rusqlite::Result<RawTx> {
        Ok(RawTx {
            reference: r.get(0)?,
            payment_id: r.get(1)?,
            kind: r.get(2)?,
            amount: r.get(3)?,
            currency: r.get(4)?,
            state: r.get(5)?,
            card: [r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?],
            operator_id: r.get(10)?,
            captured_at: r.get(11)?,
            decision: r.get(12)?,
            decision_reason: r.get(13)?,
            backend_transaction_id: r.get(14)?,
            auth_code: r.get(15)?,
            decline_reason: r.get(16)?,
            original_reference: r.get(17)?,
            created_at: r.get(18)?,
            updated_at: r.get(19)?,
            tip_amount: r.get(20)?,
            items: r.get(21)?,
            shift_no: r.get(22)?,
            card_aid: r.get(23)?,
            card_label: r.get(24)?,
            channel: r.get(25)?,
            payer_name: r.get(26)?,
            payer_bank: r.get(27)?,
            transfer_code: r.get(28)?,
        })
    }

    fn validate(self) -> Result<Transaction, StoreError> {
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            StoreError::Invalid(format!(
                "transaction {}: {what}: {e}",
                truncate(&self.reference, 64)
            ))
        };
        let reference = Reference::new(self.reference.clone()).map_err(|e| bad("reference", &e))?;
        let payment_id = self
            .payment_id
            .map(PaymentId::new)
            .transpose()
            .map_err(|e| bad("payment_id", &e))?;
        let original_reference = self
            .original_reference
            .map(Reference::new)
            .transpose()
            .map_err(|e| bad("original_reference", &e))?;
        let card = match self.card {
            [Some(token), Some(last4), Some(brand), Some(mode)] => Some(
                Card::new(token, last4, brand.parse()?, mode.parse()?)
                    .map_err(|e| bad("card", &e))?,
            ),
            [None, None, None, None] => None,
            _ => return Err(bad("card", &"partially stored")),
        };
        let decision = match (self.decision, self.decision_reason) {
            (Some(mode), Some(reason)) => Some(Decision {
                mode: mode.parse::<DecisionMode>()?,
                reason,
            }),
            (None, None) => None,
            _ => return Err(bad("decision", &"partially stored")),
        };
        let tip_amount = self.tip_amount.map(money_from_db).transpose()?;
        let items = match &self.items {
            None => Vec::new(),
            Some(json) => serde_json::from_str(json).map_err(|e| bad("items", &e))?,
        };
        let shift_no = u64::try_from(self.shift_no).map_err(|e| bad("shift_no", &e))?;
        Ok(Transaction {
            reference,
            payment_id,
            kind: self.kind.parse::<TxKind>()?,
            amount: money_from_db(self.amount)?,
            currency: Currency::parse(&self.currency).map_err(|e| bad("currency", &e))?,
            state: self.state.parse::<TxState>()?,
            card,
            operator_id: self.operator_id,
            captured_at: self.captured_at,
            decision,
            backend_transaction_id: self.backend_transaction_id,
            auth_code: self.auth_code,
            decline_reason: self.decline_reason,
            original_reference,
            tip_amount,
            items,
            shift_no,
            card_aid: self.card_aid,
            card_label: self.card_label,
            channel: Channel::parse(&self.channel)?,
            payer_name: self.payer_name,
            payer_bank: self.payer_bank,
            transfer_code: self.transfer_code,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}
