//! Transactions (terminal side): submissions, their replay, the decision,
//! lookups and reversals. Everything is keyed by terminal and reference: a
//! terminal only ever reaches its own records (SPEC 4.3).

use proto::wire::{
    AuthStatus, Channel, DeclineReason, PaymentStatus, PaymentTransaction, RecordStatus,
    ReversalStatus, Scenario, SessionStatus, Timestamp, TransactionAnswer, TransactionRecord,
    TransactionSubmission, TxKind, WebhookEventType, codes,
};
use proto::{Money, Reference, TerminalId};
use serde_json::Value;

use crate::error::ApiErr;

use super::{State, TxKey, TxRec, auth_code, kind, short_id, tx_row_id};

/// SPEC 4.3: a terminal's references start with `<terminal_id>-` or are a
/// UUIDv7 it created; any other is refused with 422 `reference_not_yours`.
pub fn check_reference_owner(tid: &TerminalId, reference: &Reference) -> Result<(), ApiErr> {
    let prefixed = reference
        .as_str()
        .strip_prefix(tid.as_str())
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|seq| !seq.is_empty());
    let uuid_v7 = uuid::Uuid::parse_str(reference.as_str()).is_ok_and(|u| u.get_version_num() == 7);
    if prefixed || uuid_v7 {
        Ok(())
    } else {
        Err(ApiErr::unprocessable(
            codes::REFERENCE_NOT_YOURS,
            format!("a reference of terminal {tid} starts with \"{tid}-\" or is a UUIDv7"),
        ))
    }
}

fn key(tid: &TerminalId, reference: &Reference) -> TxKey {
    (tid.clone(), reference.clone())
}

impl State {
    /// An earlier submission under this reference: replay or conflict.
    /// Idempotency is by reference (SPEC 4.3): the same kind, amount,
    /// currency and card token get the recorded answer whatever `offline`,
    /// `captured_at` and the other fields say, so the forward of an offline
    /// approval after a lost online answer gets what the backend decided.
    pub fn transaction_replay(
        &self,
        tid: &TerminalId,
        sub: &TransactionSubmission,
        body_hash: &str,
    ) -> Result<Option<TransactionAnswer>, ApiErr> {
        check_reference_owner(tid, &sub.reference)?;
        let Some(t) = self.transactions.get(&key(tid, &sub.reference)) else {
            return Ok(None);
        };
        let same = match &t.card_token {
            Some(token) => {
                t.record.kind == sub.kind
                    && t.record.amount == sub.amount
                    && t.record.currency == sub.currency
                    && token == &sub.card.token
            }
            None => t.body_hash == body_hash,
        };
        if same {
            Ok(Some(t.answer.clone()))
        } else {
            Err(ApiErr::conflict(
                codes::IDEMPOTENCY_CONFLICT,
                "this reference was submitted with a different kind, amount, currency or card",
            ))
        }
    }

    /// Decides and records a transaction submission (the replay check and
    /// scenario draw happened before). Returns the answer.
    pub fn record_transaction(
        &mut self,
        tid: &TerminalId,
        body_hash: String,
        sub: TransactionSubmission,
        scenario: Option<Scenario>,
        now: Timestamp,
    ) -> Result<TransactionAnswer, ApiErr> {
        if let Some(a) = self.transaction_replay(tid, &sub, &body_hash)? {
            return Ok(a);
        }
        let amount = crate::body::positive(sub.amount)?;
        let sid = self.terminal(tid)?.session_id.clone();
        let session = self
            .sessions
            .get(&sid)
            .ok_or_else(|| ApiErr::not_found("session", sid.as_str()))?;
        match Self::effective_status(session, now) {
            SessionStatus::Active => {}
            SessionStatus::Closed | SessionStatus::Cancelled => {
                // `closed_at` is kept to the second (the close happened within
                // that second): a capture in the same second counts as before.
                let before_close = session
                    .closed_at
                    .is_some_and(|c| sub.captured_at.unix() <= c.unix());
                // Refunds of the session's sales stay possible after it
                // closed (SPEC 5.9): a refund is not a new payment.
                let refund = sub.kind == TxKind::Refund;
                if !(refund || sub.offline && before_close) {
                    return Err(ApiErr::conflict(
                        codes::SESSION_CLOSED,
                        "the session is closed; only offline payments captured before the close are accepted",
                    ));
                }
            }
            SessionStatus::Pending => {
                return Err(ApiErr::conflict(
                    "session_not_started",
                    "the session has not started yet",
                ));
            }
        }
        if let Some(op) = &sub.operator_id {
            if op.chars().count() > 64 {
                return Err(ApiErr::unprocessable(
                    "invalid_operator_id",
                    "operator_id is too long",
                ));
            }
        }
        // The decision.
        let mut decline: Option<DeclineReason> = match scenario {
            Some(Scenario::Decline) => Some(DeclineReason::CardDeclined),
            Some(Scenario::InsufficientFunds) => Some(DeclineReason::InsufficientFunds),
            _ => None,
        };
        match sub.kind {
            TxKind::Sale => {
                if sub.original_reference.is_some() {
                    return Err(ApiErr::unprocessable(
                        "invalid_original_reference",
                        "a sale has no original_reference",
                    ));
                }
                if decline.is_none() {
                    decline = match sub.card.last4.as_str() {
                        "0002" => Some(DeclineReason::CardDeclined),
                        "9995" => Some(DeclineReason::InsufficientFunds),
                        _ => None,
                    };
                }
            }
            TxKind::Refund => {
                let Some(orig) = &sub.original_reference else {
                    return Err(ApiErr::bad_request(
                        "missing_original_reference",
                        "a refund needs original_reference",
                    ));
                };
                let valid = self.transactions.get(&key(tid, orig)).filter(|o| {
                    o.record.kind == TxKind::Sale && o.record.status == RecordStatus::Approved
                });
                match valid {
                    None => decline = Some(DeclineReason::UnknownTransaction),
                    Some(o) => {
                        let refunded: Money = self
                            .transactions
                            .values()
                            .filter(|t| {
                                &t.record.terminal_id == tid
                                    && t.record.kind == TxKind::Refund
                                    && t.record.status == RecordStatus::Approved
                                    && t.record.original_reference.as_ref() == Some(orig)
                            })
                            .fold(Money::ZERO, |a, t| {
                                a.checked_add(t.record.amount).unwrap_or(a)
                            });
                        if amount > o.record.amount.saturating_sub(refunded) {
                            decline = Some(DeclineReason::AmountExceedsRefundable);
                        }
                    }
                }
            }
        }
        let tx_key = key(tid, &sub.reference);
        let tombstoned = self.tombstones.contains(&tx_key);
        if tombstoned {
            decline = Some(DeclineReason::Reversed);
        }
        let approved = decline.is_none();
        let transaction_id = short_id("txn_");
        let code = approved.then(auth_code);
        // Only link a payment routed to this terminal; another's is ignored
        // (neither recorded nor settled).
        let payment_id = sub.payment_id.clone().filter(|p| {
            self.payments
                .get(p)
                .is_some_and(|p| &p.payment.terminal_id == tid)
        });
        let record = TransactionRecord {
            transaction_id: transaction_id.clone(),
            reference: sub.reference.clone(),
            channel: Channel::Pos,
            terminal_id: tid.clone(),
            session_id: sid.clone(),
            payment_id: payment_id.clone(),
            kind: sub.kind,
            amount,
            tip_amount: sub.tip_amount,
            currency: sub.currency,
            status: if tombstoned {
                RecordStatus::Reversed
            } else if approved {
                RecordStatus::Approved
            } else {
                RecordStatus::Declined
            },
            auth_code: code.clone(),
            decline_reason: decline,
            card: Some(sub.card.summary()),
            payer: None,
            offline: sub.offline,
            operator_id: sub.operator_id.clone(),
            original_reference: sub.original_reference.clone(),
            items: sub.items.clone(),
            captured_at: sub.captured_at,
            received_at: now,
            reversed_at: tombstoned.then_some(now),
        };
        let answer = TransactionAnswer {
            transaction_id: transaction_id.clone(),
            reference: sub.reference.clone(),
            status: if approved {
                AuthStatus::Approved
            } else {
                AuthStatus::Declined
            },
            auth_code: code.clone(),
            decline_reason: decline,
            receipt_url: None,
        };
        self.tx_seq += 1;
        self.transactions.insert(
            tx_key.clone(),
            TxRec {
                seq: self.tx_seq,
                body_hash,
                record: record.clone(),
                answer: answer.clone(),
                card_token: Some(sub.card.token.clone()),
            },
        );
        self.tx_by_id.insert(transaction_id.clone(), tx_key);
        self.dirty(kind::TRANSACTION, tx_row_id(tid, &sub.reference));
        self.webhook(
            &sid,
            WebhookEventType::TransactionReceived,
            serde_json::to_value(&record).unwrap_or(Value::Null),
        );
        if let Some(pid) = payment_id {
            if let Some(p) = self.payments.get_mut(&pid) {
                let status = if approved {
                    PaymentStatus::Approved
                } else {
                    PaymentStatus::Declined
                };
                // An approval is money moved: it wins over an earlier
                // abort/timeout the terminal reported. A decline only
                // settles a payment still open.
                if approved || !p.payment.status.is_final() {
                    p.payment.status = status;
                    p.payment.reason = decline.map(|d| d.as_str().to_owned());
                    p.payment.updated_at = now;
                    p.payment.transaction = Some(PaymentTransaction {
                        transaction_id,
                        reference: sub.reference.clone(),
                        channel: Channel::Pos,
                        card: Some(sub.card.summary()),
                        payer: None,
                        offline: sub.offline,
                        auth_code: code,
                        approved_at: approved.then_some(now),
                        decline_reason: decline,
                    });
                    self.payment_changed(&pid);
                }
            }
        }
        Ok(answer)
    }

    pub fn transaction(
        &self,
        tid: &TerminalId,
        reference: &Reference,
    ) -> Result<TransactionRecord, ApiErr> {
        check_reference_owner(tid, reference)?;
        self.transactions
            .get(&key(tid, reference))
            .map(|t| t.record.clone())
            .ok_or_else(|| ApiErr::not_found("transaction", reference.as_str()))
    }

    pub fn reverse(
        &mut self,
        tid: &TerminalId,
        reference: &Reference,
        now: Timestamp,
    ) -> Result<ReversalStatus, ApiErr> {
        check_reference_owner(tid, reference)?;
        let tx_key = key(tid, reference);
        let Some(t) = self.transactions.get_mut(&tx_key) else {
            // Nothing known (yet): remember, so a late-arriving submission
            // of this terminal under this reference is recorded as
            // reversed, never approved.
            if self.tombstones.insert(tx_key) {
                self.dirty(kind::TOMBSTONE, tx_row_id(tid, reference));
            }
            return Ok(ReversalStatus::NotFound);
        };
        Ok(match t.record.status {
            RecordStatus::Reversed => ReversalStatus::Reversed,
            RecordStatus::Declined => ReversalStatus::NotApproved,
            RecordStatus::Approved => {
                t.record.status = RecordStatus::Reversed;
                t.record.reversed_at = Some(now);
                let record = t.record.clone();
                self.dirty(kind::TRANSACTION, tx_row_id(tid, reference));
                self.webhook(
                    &record.session_id,
                    WebhookEventType::TransactionReceived,
                    serde_json::to_value(&record).unwrap_or(Value::Null),
                );
                if let Some(pid) = &record.payment_id {
                    if let Some(p) = self.payments.get_mut(pid) {
                        // Records written before links were checked may
                        // name another terminal's payment: never touch it.
                        if p.payment.status == PaymentStatus::Approved
                            && &p.payment.terminal_id == tid
                        {
                            p.payment.status = PaymentStatus::Failed;
                            p.payment.reason = Some("reversed".into());
                            p.payment.updated_at = now;
                            self.payment_changed(pid);
                        }
                    }
                }
                ReversalStatus::Reversed
            }
        })
    }
}
