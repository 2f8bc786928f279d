//! Pay by bank transfer (SPEC 7.7), the terminal's side: the transfers a
//! terminal expects (registered and cancelled by reference) and how a
//! credit of the collection account is matched to one of them. The
//! account's ledger itself is in `account`.
//!
//! Matching: the credit's narration holds a code ([`TransferCode::find_in`]);
//! the open, unexpired registration of the account's session with that
//! code takes it. A credit of exactly what is still due settles it
//! (`matched`: the terminal gets `transfer_received` and a transaction with
//! channel `account` is recorded as a forwarded sale would be); a smaller
//! one is added to it (`partial`, the terminal is told too, it stays open);
//! a larger one, or one without an open code, stays on the account
//! (`unmatched`).

use proto::wire::{
    AuthStatus, Channel, CommandBody, CreditStatus, ExpectedTransfer, Payer, PaymentStatus,
    PaymentTransaction, RecordStatus, SessionStatus, Timestamp, TransactionAnswer,
    TransactionRecord, TransferCode, TransferRegistration, TransferStatus, TxKind,
    WebhookEventType, codes,
};
use proto::{Money, Reference, SessionId, TerminalId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ApiErr;

use super::transactions::check_reference_owner;
use super::{State, TxKey, TxRec, kind, short_id, tx_row_id};

/// Error codes of the transfer routes.
pub mod transfer_codes {
    /// Another open registration of the session shows the same code.
    pub const CODE_IN_USE: &str = "code_in_use";
    /// The session was created without `collection.account`.
    pub const NO_COLLECTION_ACCOUNT: &str = "no_collection_account";
    /// The money arrived: a settled transfer cannot be cancelled.
    pub const TRANSFER_SETTLED: &str = "transfer_settled";
    /// No session has this collection account.
    pub const ACCOUNT_NOT_FOUND: &str = "account_not_found";
    /// `expires_at` is not in the future.
    pub const EXPIRED: &str = "expired";
}

use transfer_codes::*;

/// An expected transfer as the sim keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransferRec {
    pub session_id: SessionId,
    pub expected: ExpectedTransfer,
    #[serde(default)]
    pub operator_id: Option<String>,
}

/// What a registration answers: the expected transfer, and whether it is
/// the replay of an earlier one (200, `idempotent-replayed`).
#[derive(Debug)]
pub struct Registered {
    pub expected: ExpectedTransfer,
    pub replayed: bool,
}

/// How a credit was applied (its statement entry's status and, for
/// `matched` and `partial`, the registration it went to).
struct Applied {
    status: CreditStatus,
    to: Option<TxKey>,
}

/// Longest `operator_id` kept, as for transactions.
const MAX_OPERATOR_ID_CHARS: usize = 64;

impl State {
    /// The session's open registrations whose `expires_at` has passed
    /// become `expired` (checked against the sim's clock whenever
    /// registrations are looked at for a change).
    pub(super) fn expire_transfers(&mut self, sid: &SessionId, now: Timestamp) {
        let mut gone = Vec::new();
        for (k, t) in &mut self.transfers {
            if &t.session_id == sid
                && t.expected.status == TransferStatus::Open
                && t.expected.expires_at <= now
            {
                t.expected.status = TransferStatus::Expired;
                gone.push(tx_row_id(&k.0, &k.1));
            }
        }
        for id in gone {
            self.dirty(kind::TRANSFER, id);
        }
    }

    /// `POST /v1/terminals/:tid/transfers`.
    pub fn register_transfer(
        &mut self,
        tid: &TerminalId,
        req: TransferRegistration,
        now: Timestamp,
    ) -> Result<Registered, ApiErr> {
        let amount = crate::body::positive(req.amount)?;
        check_reference_owner(tid, &req.reference)?;
        let key: TxKey = (tid.clone(), req.reference.clone());
        let sid = self.terminal(tid)?.session_id.clone();
        self.expire_transfers(&sid, now);
        if let Some(t) = self.transfers.get(&key) {
            if t.expected.amount == amount && t.expected.code == req.code {
                return Ok(Registered {
                    expected: t.expected.clone(),
                    replayed: true,
                });
            }
            return Err(ApiErr::conflict(
                codes::IDEMPOTENCY_CONFLICT,
                "this reference was registered with a different amount or code",
            ));
        }
        if self.transactions.contains_key(&key) {
            return Err(ApiErr::conflict(
                codes::IDEMPOTENCY_CONFLICT,
                "this reference is already recorded as a card transaction",
            ));
        }
        if req.expires_at <= now {
            return Err(ApiErr::unprocessable(
                EXPIRED,
                "expires_at must be in the future",
            ));
        }
        if let Some(op) = &req.operator_id {
            if op.chars().count() > MAX_OPERATOR_ID_CHARS {
                return Err(ApiErr::unprocessable(
                    "invalid_operator_id",
                    "operator_id is too long",
                ));
            }
        }
        let session = self
            .sessions
            .get(&sid)
            .ok_or_else(|| ApiErr::not_found("session", sid.as_str()))?;
        match Self::effective_status(session, now) {
            SessionStatus::Active => {}
            SessionStatus::Pending => {
                return Err(ApiErr::conflict(
                    "session_not_started",
                    "the session has not started yet",
                ));
            }
            SessionStatus::Closed | SessionStatus::Cancelled => {
                return Err(ApiErr::conflict(
                    codes::SESSION_CLOSED,
                    "the session is closed: no new payments",
                ));
            }
        }
        let Some(account) = session.collection_account.clone() else {
            return Err(ApiErr::conflict(
                NO_COLLECTION_ACCOUNT,
                "this session has no collection account (collection.account was false)",
            ));
        };
        let in_use = self.transfers.values().any(|t| {
            t.session_id == sid
                && t.expected.status == TransferStatus::Open
                && t.expected.code == req.code
        });
        if in_use {
            return Err(ApiErr::conflict(
                CODE_IN_USE,
                format!(
                    "code {} is shown by another open transfer of this session",
                    req.code
                ),
            ));
        }
        // Only a payment routed to this terminal is linked.
        let payment_id = req.payment_id.filter(|p| {
            self.payments
                .get(p)
                .is_some_and(|p| &p.payment.terminal_id == tid)
        });
        let expected = ExpectedTransfer {
            reference: req.reference.clone(),
            terminal_id: tid.clone(),
            payment_id,
            amount,
            currency: req.currency,
            code: req.code,
            expires_at: req.expires_at,
            status: TransferStatus::Open,
            received: Money::ZERO,
            account,
            created_at: now,
        };
        self.transfers.insert(
            key,
            TransferRec {
                session_id: sid,
                expected: expected.clone(),
                operator_id: req.operator_id,
            },
        );
        self.dirty(kind::TRANSFER, tx_row_id(tid, &req.reference));
        Ok(Registered {
            expected,
            replayed: false,
        })
    }

    /// `DELETE /v1/terminals/:tid/transfers/:reference`: the terminal gave
    /// up waiting. Idempotent; a settled transfer stays settled (409).
    pub fn cancel_transfer(
        &mut self,
        tid: &TerminalId,
        reference: &Reference,
        now: Timestamp,
    ) -> Result<ExpectedTransfer, ApiErr> {
        check_reference_owner(tid, reference)?;
        let key: TxKey = (tid.clone(), reference.clone());
        let sid = self
            .transfers
            .get(&key)
            .map(|t| t.session_id.clone())
            .ok_or_else(|| ApiErr::not_found("transfer", reference.as_str()))?;
        self.expire_transfers(&sid, now);
        let Some(t) = self.transfers.get_mut(&key) else {
            return Err(ApiErr::not_found("transfer", reference.as_str()));
        };
        match t.expected.status {
            TransferStatus::Settled => Err(ApiErr::conflict(
                TRANSFER_SETTLED,
                format!(
                    "the money arrived ({} received): transfer {reference} is settled and cannot be cancelled",
                    t.expected.received
                ),
            )),
            TransferStatus::Cancelled | TransferStatus::Expired => Ok(t.expected.clone()),
            TransferStatus::Open => {
                t.expected.status = TransferStatus::Cancelled;
                let e = t.expected.clone();
                self.dirty(kind::TRANSFER, tx_row_id(tid, reference));
                Ok(e)
            }
        }
    }

    /// Which open registration of the session a credit goes to, and how.
    fn apply_credit(
        &mut self,
        sid: &SessionId,
        narration: &str,
        amount: Money,
        now: Timestamp,
    ) -> Applied {
        let unmatched = Applied {
            status: CreditStatus::Unmatched,
            to: None,
        };
        let Some(code) = TransferCode::find_in(narration) else {
            return unmatched;
        };
        self.expire_transfers(sid, now);
        let Some(key) = self
            .transfers
            .iter()
            .find(|(_, t)| {
                &t.session_id == sid
                    && t.expected.status == TransferStatus::Open
                    && t.expected.code == code
            })
            .map(|(k, _)| k.clone())
        else {
            return unmatched;
        };
        if self.transactions.contains_key(&key) {
            // Paid by card under the same reference meanwhile: it can
            // never be paid twice.
            if let Some(t) = self.transfers.get_mut(&key) {
                t.expected.status = TransferStatus::Cancelled;
            }
            self.dirty(kind::TRANSFER, tx_row_id(&key.0, &key.1));
            return unmatched;
        }
        let Some(t) = self.transfers.get_mut(&key) else {
            return unmatched;
        };
        let due = t.expected.amount.saturating_sub(t.expected.received);
        let status = if amount == due {
            CreditStatus::Matched
        } else if amount < due {
            CreditStatus::Partial
        } else {
            return unmatched;
        };
        let Some(received) = t.expected.received.checked_add(amount) else {
            return unmatched;
        };
        t.expected.received = received;
        if status == CreditStatus::Matched {
            t.expected.status = TransferStatus::Settled;
        }
        self.dirty(kind::TRANSFER, tx_row_id(&key.0, &key.1));
        Applied {
            status,
            to: Some(key),
        }
    }

    /// A credit was applied to the registration `key`: the terminal is
    /// told, and a settled one becomes a transaction.
    fn credited(
        &mut self,
        key: &TxKey,
        status: CreditStatus,
        amount: Money,
        payer: &Payer,
        entry_id: &str,
        now: Timestamp,
    ) {
        let Some(t) = self.transfers.get(key).cloned() else {
            return;
        };
        let (tid, reference) = key;
        let sent = self.push_command(
            tid,
            CommandBody::TransferReceived {
                reference: reference.clone(),
                amount,
                total_received: t.expected.received,
                payer: payer.clone(),
                credited_at: now,
            },
            now,
        );
        tracing::info!(
            terminal = %tid,
            reference = %reference,
            status = status.as_str(),
            command_id = sent.as_deref().unwrap_or("-"),
            "transfer credited"
        );
        if status == CreditStatus::Matched {
            self.record_account_sale(&t, payer, entry_id, now);
        }
    }

    /// The transaction of a settled transfer: a sale with channel
    /// `account`, recorded and announced as a forwarded card sale is.
    fn record_account_sale(
        &mut self,
        t: &TransferRec,
        payer: &Payer,
        entry_id: &str,
        now: Timestamp,
    ) {
        let e = &t.expected;
        let transaction_id = short_id("txn_");
        let record = TransactionRecord {
            transaction_id: transaction_id.clone(),
            reference: e.reference.clone(),
            channel: Channel::Account,
            terminal_id: e.terminal_id.clone(),
            session_id: t.session_id.clone(),
            payment_id: e.payment_id.clone(),
            kind: TxKind::Sale,
            amount: e.amount,
            tip_amount: None,
            currency: e.currency,
            status: RecordStatus::Approved,
            auth_code: None,
            decline_reason: None,
            card: None,
            payer: Some(payer.clone()),
            offline: false,
            operator_id: t.operator_id.clone(),
            original_reference: None,
            items: None,
            captured_at: now,
            received_at: now,
            reversed_at: None,
        };
        let answer = TransactionAnswer {
            transaction_id: transaction_id.clone(),
            reference: e.reference.clone(),
            status: AuthStatus::Approved,
            auth_code: None,
            decline_reason: None,
            receipt_url: None,
        };
        let key: TxKey = (e.terminal_id.clone(), e.reference.clone());
        self.tx_seq += 1;
        self.transactions.insert(
            key.clone(),
            TxRec {
                seq: self.tx_seq,
                // Never the hash of a submission: a card submission under
                // this reference is a conflict, never a replay.
                body_hash: format!("account:{entry_id}"),
                record: record.clone(),
                answer,
                card_token: None,
            },
        );
        self.tx_by_id.insert(transaction_id.clone(), key);
        self.dirty(kind::TRANSACTION, tx_row_id(&e.terminal_id, &e.reference));
        self.webhook(
            &t.session_id,
            WebhookEventType::TransactionReceived,
            serde_json::to_value(&record).unwrap_or(Value::Null),
        );
        if let Some(pid) = &e.payment_id {
            if let Some(p) = self.payments.get_mut(pid) {
                if p.payment.terminal_id == e.terminal_id {
                    p.payment.status = PaymentStatus::Approved;
                    p.payment.reason = None;
                    p.payment.updated_at = now;
                    p.payment.transaction = Some(PaymentTransaction {
                        transaction_id,
                        reference: e.reference.clone(),
                        channel: Channel::Account,
                        card: None,
                        payer: Some(payer.clone()),
                        offline: false,
                        auth_code: None,
                        approved_at: Some(now),
                        decline_reason: None,
                    });
                    self.payment_changed(pid);
                }
            }
        }
    }

    /// Applies a credit of the session's account and, when it went to a
    /// registration, tells that terminal. Returns the credit's status and
    /// the registration's key.
    pub(super) fn match_credit(
        &mut self,
        sid: &SessionId,
        narration: &str,
        amount: Money,
        payer: &Payer,
        entry_id: &str,
        now: Timestamp,
    ) -> (CreditStatus, Option<TxKey>) {
        let applied = self.apply_credit(sid, narration, amount, now);
        if let Some(key) = &applied.to {
            self.credited(key, applied.status, amount, payer, entry_id, now);
        }
        (applied.status, applied.to)
    }
}
