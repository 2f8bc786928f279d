//! The ledger: recording a change (transaction insert or update, its
//! audit row and outbox items in one commit), the checks on inserts,
//! state changes and refunds, and the transaction lookups.

use proto::{Money, PaymentId, Reference};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;

use super::audit::audit;
use super::ledger_row::{RawTx, TX_COLUMNS, collect_tx, get_transaction, money_from_db};
use super::outbox::enqueue;
use super::{Store, non_negative};
use crate::StoreError;
use crate::error::sql;
use crate::model::{
    Card, Change, Channel, NewTransaction, OutboxId, Page, Transaction, TxKind, TxState, TxUpdate,
    TxWrite, UnixMillis, check_text,
};

impl Store {
    /// Commits a change atomically, with `change.durability`: the
    /// transaction insert or update, one audit row, and the outbox items.
    /// Returns the new outbox ids in order.
    pub fn record(&self, change: &Change) -> Result<Vec<OutboxId>, StoreError> {
        self.write("recording a change", change.durability, |tx| {
            if let Some(write) = &change.write {
                match write {
                    TxWrite::Insert(new) => insert_transaction(tx, change.now, new)?,
                    TxWrite::Update { reference, update } => {
                        update_transaction(tx, change.now, reference, update)?
                    }
                }
            }
            change
                .enqueue
                .iter()
                .map(|item| enqueue(tx, change.now, item))
                .collect()
        })
    }

    /// The transaction with this reference.
    pub fn transaction(&self, reference: &Reference) -> Result<Option<Transaction>, StoreError> {
        self.read(|conn| get_transaction(conn, reference.as_str()))
    }

    /// The transactions of a partner payment (a sale and its refunds), oldest first.
    pub fn transactions_for_payment(
        &self,
        payment_id: &PaymentId,
    ) -> Result<Vec<Transaction>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {TX_COLUMNS} FROM transactions WHERE payment_id = ?1 \
                     ORDER BY created_at, rowid"
                ))
                .map_err(sql("looking up a payment"))?;
            let rows = stmt
                .query_map([payment_id.as_str()], RawTx::from_row)
                .map_err(sql("looking up a payment"))?;
            collect_tx(rows, "looking up a payment")
        })
    }

    /// Transactions oldest first, one page at a time.
    pub fn list_transactions(&self, page: Page) -> Result<Vec<Transaction>, StoreError> {
        let offset = i64::try_from(page.offset)
            .map_err(|_| StoreError::InvalidInput("page offset too large".into()))?;
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {TX_COLUMNS} FROM transactions \
                     ORDER BY created_at, rowid LIMIT ?1 OFFSET ?2"
                ))
                .map_err(sql("listing transactions"))?;
            let rows = stmt
                .query_map(params![page.limit, offset], RawTx::from_row)
                .map_err(sql("listing transactions"))?;
            collect_tx(rows, "listing transactions")
        })
    }

    /// The transactions boot restores, oldest first: those still `pending`
    /// or `authorizing` (interrupted by a stop) and those `offline_approved`
    /// (not yet confirmed by the backend). Reads only the partial index
    /// `transactions_restorable`, never the whole ledger.
    pub fn restorable_transactions(&self) -> Result<Vec<Transaction>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {TX_COLUMNS} FROM transactions \
                     WHERE {RESTORABLE} ORDER BY created_at, rowid"
                ))
                .map_err(sql("listing restorable transactions"))?;
            let rows = stmt
                .query_map([], RawTx::from_row)
                .map_err(sql("listing restorable transactions"))?;
            collect_tx(rows, "listing restorable transactions")
        })
    }

    /// What is left to refund on a sale: its amount minus refunds that are
    /// approved, offline approved or still open (pending, authorizing,
    /// reversal_pending). Zero unless the sale is approved or offline approved.
    pub fn refundable(&self, sale: &Reference) -> Result<Money, StoreError> {
        self.read(|conn| refundable_in(conn, sale))
    }
}

/// The rows boot restores; the exact WHERE term of the partial index
/// `transactions_restorable` (schema step 2), so SQLite uses it.
const RESTORABLE: &str = "state IN ('pending', 'authorizing', 'offline_approved')";

fn check_opt_text(what: &str, v: &Option<String>, max: usize) -> Result<(), StoreError> {
    match v {
        Some(s) if s.is_empty() => Err(StoreError::InvalidInput(format!("{what} is empty"))),
        Some(s) => check_text(what, s, max),
        None => Ok(()),
    }
}

fn insert_transaction(
    tx: &rusqlite::Transaction<'_>,
    now: UnixMillis,
    new: &NewTransaction,
) -> Result<(), StoreError> {
    if new.amount.is_zero() {
        return Err(StoreError::InvalidInput(format!(
            "transaction {}: amount must be positive",
            new.reference
        )));
    }
    check_opt_text("operator id", &new.operator_id, 64)?;
    check_parts(new)?;
    if let Some(d) = &new.decision {
        check_text("decision reason", &d.reason, 256)?;
    }
    if new.state.is_approved() && new.card.is_none() {
        return Err(StoreError::InvalidInput(format!(
            "transaction {}: an approved transaction needs its card",
            new.reference
        )));
    }
    match (new.kind, &new.original_reference) {
        (TxKind::Sale, None) => {}
        (TxKind::Sale, Some(_)) => {
            return Err(StoreError::InvalidInput(
                "a sale has no original reference".into(),
            ));
        }
        (TxKind::Refund, None) => {
            return Err(StoreError::InvalidInput(
                "a refund needs the reference of its sale".into(),
            ));
        }
        (TxKind::Refund, Some(original)) => {
            let left = refundable_in(tx, original)?;
            if new.amount > left {
                return Err(StoreError::ExceedsRefundable {
                    original_reference: original.to_string(),
                    requested: new.amount.minor(),
                    left: left.minor(),
                });
            }
            if let Some(card) = &new.card {
                check_refund_card(tx, &new.reference, original, card)?;
            }
        }
    }
    let card = new.card.as_ref();
    let items = if new.items.is_empty() {
        None
    } else {
        Some(serde_json::to_string(&new.items).map_err(|e| {
            StoreError::InvalidInput(format!("transaction {}: items: {e}", new.reference))
        })?)
    };
    let shift_no = super::shifts::open_current(tx, now)?;
    let inserted = tx
        .prepare_cached(
            "INSERT INTO transactions (reference, payment_id, kind, amount, currency, state, \
             card_token, card_last4, card_brand, card_entry_mode, operator_id, captured_at, \
             decision, decision_reason, original_reference, created_at, updated_at, \
             tip_amount, items, shift_no) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?16, \
             ?17, ?18, ?19)",
        )
        .and_then(|mut s| {
            s.execute(params![
                new.reference.as_str(),
                new.payment_id.as_ref().map(PaymentId::as_str),
                new.kind.as_str(),
                minor_i64(new.amount),
                new.currency.code(),
                new.state.as_str(),
                card.map(Card::token),
                card.map(Card::last4),
                card.map(|c| c.brand().as_str()),
                card.map(|c| c.entry_mode().as_str()),
                new.operator_id,
                new.captured_at,
                new.decision.as_ref().map(|d| d.mode.as_str()),
                new.decision.as_ref().map(|d| d.reason.as_str()),
                new.original_reference.as_ref().map(Reference::as_str),
                now,
                new.tip_amount.map(minor_i64),
                items,
                shift_no,
            ])
        });
    match inserted.map_err(sql("inserting a transaction")) {
        Ok(_) => {}
        Err(StoreError::Duplicate { .. }) => {
            return Err(StoreError::Duplicate {
                what: format!("transaction reference {}", new.reference),
            });
        }
        Err(e) => return Err(e),
    }
    audit(
        tx,
        now,
        Some(new.reference.as_str()),
        "created",
        &json!({
            "kind": new.kind.as_str(),
            "amount": new.amount.minor(),
            "state": new.state.as_str(),
            "decision": new.decision.as_ref().map(|d| d.mode.as_str()),
        }),
    )
}

/// Tips and items belong to sales and add up: the cart plus the tip is the
/// amount charged.
fn check_parts(new: &NewTransaction) -> Result<(), StoreError> {
    let bad = |m: &str| {
        Err(StoreError::InvalidInput(format!(
            "transaction {}: {m}",
            new.reference
        )))
    };
    if new.kind == TxKind::Refund && (new.tip_amount.is_some() || !new.items.is_empty()) {
        return bad("a refund has no tip and no items");
    }
    if let Some(tip) = new.tip_amount {
        if tip.is_zero() || tip > new.amount {
            return bad("the tip must be above zero and at most the amount");
        }
    }
    if new.items.is_empty() {
        return Ok(());
    }
    if new.items.len() > 100 {
        return bad("at most 100 item lines");
    }
    let mut sum: u64 = new.tip_amount.map_or(0, Money::minor);
    for it in &new.items {
        check_text("item id", &it.item_id, 64)?;
        check_text("item name", &it.name, 64)?;
        if it.qty == 0 || it.unit_price.is_zero() {
            return bad("an item line needs a quantity and a price");
        }
        sum = it
            .unit_price
            .minor()
            .checked_mul(u64::from(it.qty))
            .and_then(|line| sum.checked_add(line))
            .ok_or_else(|| StoreError::InvalidInput("items overflow".into()))?;
    }
    if sum != new.amount.minor() {
        return bad("items and tip do not add up to the amount");
    }
    Ok(())
}

fn update_transaction(
    tx: &rusqlite::Transaction<'_>,
    now: UnixMillis,
    reference: &Reference,
    update: &TxUpdate,
) -> Result<(), StoreError> {
    let mut t = get_transaction(tx, reference.as_str())?.ok_or_else(|| StoreError::NotFound {
        what: format!("transaction {reference}"),
    })?;
    let illegal = |detail: String| StoreError::IllegalChange {
        reference: reference.to_string(),
        detail,
    };
    let from = t.state;
    let mut changed: Vec<&str> = Vec::new();
    if let Some(next) = update.state {
        if !from.can_become(next) {
            return Err(illegal(format!("cannot go from {from} to {next}")));
        }
        if next != from {
            t.state = next;
            changed.push("state");
        }
    }
    fn set_once<T: PartialEq + Clone>(
        field: &'static str,
        slot: &mut Option<T>,
        value: &Option<T>,
        changed: &mut Vec<&'static str>,
    ) -> Result<(), String> {
        match (slot.as_ref(), value) {
            (_, None) => Ok(()),
            (Some(old), Some(new)) if old == new => Ok(()),
            (Some(_), Some(_)) => Err(format!("{field} is already set")),
            (None, Some(new)) => {
                *slot = Some(new.clone());
                changed.push(field);
                Ok(())
            }
        }
    }
    check_opt_text(
        "backend transaction id",
        &update.backend_transaction_id,
        128,
    )?;
    check_opt_text("auth code", &update.auth_code, 32)?;
    check_opt_text("decline reason", &update.decline_reason, 256)?;
    if let Some(aid) = &update.card_aid {
        let hex = aid
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b));
        if !(10..=32).contains(&aid.len()) || !hex {
            return Err(StoreError::InvalidInput(format!(
                "transaction {reference}: the card's AID is not 5 to 16 bytes of uppercase hex"
            )));
        }
    }
    check_opt_text("card label", &update.card_label, 32)?;
    if let Some(d) = &update.decision {
        check_text("decision reason", &d.reason, 256)?;
    }
    set_once(
        "payment_id",
        &mut t.payment_id,
        &update.payment_id,
        &mut changed,
    )
    .map_err(illegal)?;
    set_once("card", &mut t.card, &update.card, &mut changed).map_err(illegal)?;
    set_once("card_aid", &mut t.card_aid, &update.card_aid, &mut changed).map_err(illegal)?;
    set_once(
        "card_label",
        &mut t.card_label,
        &update.card_label,
        &mut changed,
    )
    .map_err(illegal)?;
    set_once(
        "captured_at",
        &mut t.captured_at,
        &update.captured_at,
        &mut changed,
    )
    .map_err(illegal)?;
    set_once("decision", &mut t.decision, &update.decision, &mut changed).map_err(illegal)?;
    set_once(
        "backend_transaction_id",
        &mut t.backend_transaction_id,
        &update.backend_transaction_id,
        &mut changed,
    )
    .map_err(illegal)?;
    set_once(
        "auth_code",
        &mut t.auth_code,
        &update.auth_code,
        &mut changed,
    )
    .map_err(illegal)?;
    if update.decline_reason.is_some() && update.decline_reason != t.decline_reason {
        t.decline_reason = update.decline_reason.clone();
        changed.push("decline_reason");
    }
    if let Some(channel) = update.channel {
        if channel != t.channel {
            if t.channel != Channel::Card || t.card.is_some() {
                return Err(illegal(format!(
                    "channel {} cannot become {channel}",
                    t.channel
                )));
            }
            t.channel = channel;
            changed.push("channel");
        }
    }
    check_opt_text("payer name", &update.payer_name, 140)?;
    check_opt_text("payer bank", &update.payer_bank, 140)?;
    if let Some(code) = &update.transfer_code {
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(StoreError::InvalidInput(format!(
                "transaction {reference}: a transfer code is six digits"
            )));
        }
    }
    set_once(
        "payer_name",
        &mut t.payer_name,
        &update.payer_name,
        &mut changed,
    )
    .map_err(illegal)?;
    set_once(
        "payer_bank",
        &mut t.payer_bank,
        &update.payer_bank,
        &mut changed,
    )
    .map_err(illegal)?;
    set_once(
        "transfer_code",
        &mut t.transfer_code,
        &update.transfer_code,
        &mut changed,
    )
    .map_err(illegal)?;
    if t.channel == Channel::Account && t.card.is_some() {
        return Err(illegal("a transfer has no card".to_string()));
    }
    if t.channel == Channel::Card && (t.payer_name.is_some() || t.payer_bank.is_some()) {
        return Err(illegal("only a transfer has a payer".to_string()));
    }
    // Approved needs its card, or the transfer that paid it.
    if t.state.is_approved() && t.card.is_none() && t.channel != Channel::Account {
        return Err(illegal(format!("{} needs the card", t.state)));
    }
    // A refund declined because another card was tapped is recorded with
    // that card; any other refund must carry the card of its sale.
    if let (TxKind::Refund, Some(card), Some(original), false) = (
        t.kind,
        &update.card,
        &t.original_reference,
        t.state == TxState::Declined,
    ) {
        check_refund_card(tx, reference, original, card)?;
    }
    let card = t.card.as_ref();
    tx.prepare_cached(
        "UPDATE transactions SET state = ?2, card_token = ?3, card_last4 = ?4, \
         card_brand = ?5, card_entry_mode = ?6, captured_at = ?7, decision = ?8, \
         decision_reason = ?9, backend_transaction_id = ?10, auth_code = ?11, \
         decline_reason = ?12, updated_at = ?13, card_aid = ?14, card_label = ?15, \
         channel = ?16, payer_name = ?17, payer_bank = ?18, transfer_code = ?19 \
         WHERE reference = ?1",
    )
    .and_then(|mut s| {
        s.execute(params![
            reference.as_str(),
            t.state.as_str(),
            card.map(Card::token),
            card.map(Card::last4),
            card.map(|c| c.brand().as_str()),
            card.map(|c| c.entry_mode().as_str()),
            t.captured_at,
            t.decision.as_ref().map(|d| d.mode.as_str()),
            t.decision.as_ref().map(|d| d.reason.as_str()),
            t.backend_transaction_id,
            t.auth_code,
            t.decline_reason,
            now,
            t.card_aid,
            t.card_label,
            t.channel.as_str(),
            t.payer_name,
            t.payer_bank,
            t.transfer_code,
        ])
    })
    .map_err(sql("updating a transaction"))?;
    // payment_id is set once; naming it in every UPDATE would rewrite its
    // index entry (one more page written) at each state change.
    if changed.contains(&"payment_id") {
        tx.prepare_cached("UPDATE transactions SET payment_id = ?2 WHERE reference = ?1")
            .and_then(|mut s| {
                s.execute(params![
                    reference.as_str(),
                    t.payment_id.as_ref().map(PaymentId::as_str)
                ])
            })
            .map_err(sql("setting a transaction's payment id"))?;
    }
    audit(
        tx,
        now,
        Some(reference.as_str()),
        "updated",
        &json!({ "from": from.as_str(), "to": t.state.as_str(), "fields": changed }),
    )
}

/// A refund must be tapped with the card of its sale.
fn check_refund_card(
    conn: &Connection,
    reference: &Reference,
    original: &Reference,
    card: &Card,
) -> Result<(), StoreError> {
    let sale_token: Option<String> = conn
        .prepare_cached("SELECT card_token FROM transactions WHERE reference = ?1")
        .and_then(|mut s| s.query_row([original.as_str()], |r| r.get(0)).optional())
        .map_err(sql("checking the refund card"))?
        .flatten();
    if sale_token.as_deref() != Some(card.token()) {
        return Err(StoreError::IllegalChange {
            reference: reference.to_string(),
            detail: format!("refund card does not match the card of sale {original}"),
        });
    }
    Ok(())
}

pub(super) fn refundable_in(conn: &Connection, sale: &Reference) -> Result<Money, StoreError> {
    let row: Option<(String, String, i64)> = conn
        .prepare_cached("SELECT kind, state, amount FROM transactions WHERE reference = ?1")
        .and_then(|mut s| {
            s.query_row([sale.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .map_err(sql("computing the refundable amount"))?;
    let Some((kind, state, amount)) = row else {
        return Err(StoreError::NotFound {
            what: format!("sale {sale}"),
        });
    };
    if kind.parse::<TxKind>()? != TxKind::Sale {
        return Err(StoreError::InvalidInput(format!("{sale} is not a sale")));
    }
    if !state.parse::<TxState>()?.is_approved() {
        return Ok(Money::ZERO);
    }
    let refunded: i64 = conn
        .prepare_cached(
            "SELECT coalesce(sum(amount), 0) FROM transactions \
             WHERE original_reference = ?1 AND kind = 'refund' AND state IN \
             ('pending', 'authorizing', 'approved', 'offline_approved', 'reversal_pending')",
        )
        .and_then(|mut s| s.query_row([sale.as_str()], |r| r.get(0)))
        .map_err(sql("computing the refundable amount"))?;
    let amount = money_from_db(amount)?;
    let refunded = non_negative(refunded, "refunded amount")?;
    Ok(Money::from_minor(amount.minor().saturating_sub(refunded)).unwrap_or(Money::ZERO))
}

fn minor_i64(m: Money) -> i64 {
    // Money is at most 10^9 minor units, far below i64::MAX.
    i64::try_from(m.minor()).unwrap_or(i64::MAX)
}
