//! Payments (partner side): sales and refunds, idempotent creation, aborts
//! and the terminal's payment events.

use proto::wire::{
    CommandBody, CreatePayment, Payment, PaymentEvent, PaymentEventStatus, PaymentStatus,
    RecordStatus, SessionStatus, TerminalStatus, Timestamp, TxKind, WebhookEventType, codes,
};
use proto::{Currency, Money, PaymentId, Reference, SessionId, TerminalId};
use serde_json::Value;

use crate::error::ApiErr;

use super::{IdemRec, Liveness, PaymentRec, State, kind, short_id, sim_id};

impl State {
    pub(super) fn payment_changed(&mut self, id: &PaymentId) {
        self.dirty(kind::PAYMENT, id.as_str());
        self.effects.payments_changed = true;
        if let Some(p) = self.payments.get(id) {
            let data = serde_json::to_value(&p.payment).unwrap_or(Value::Null);
            let sid = p.payment.session_id.clone();
            self.webhook(&sid, WebhookEventType::PaymentUpdated, data);
        }
    }

    /// Moves a non-final payment to a final status.
    pub(super) fn finish_payment(
        &mut self,
        id: &PaymentId,
        status: PaymentStatus,
        reason: Option<String>,
        now: Timestamp,
    ) {
        let Some(p) = self.payments.get_mut(id) else {
            return;
        };
        if p.payment.status.is_final() {
            return;
        }
        p.payment.status = status;
        p.payment.reason = reason;
        p.payment.updated_at = now;
        self.payment_changed(id);
    }

    /// Looks up an earlier `Idempotency-Key` use. `Ok(Some)` replays.
    pub fn idempotent_replay(
        &self,
        scope: &str,
        key: &str,
        body_hash: &str,
    ) -> Result<Option<Value>, ApiErr> {
        match self.idempotency.get(&format!("{scope}:{key}")) {
            None => Ok(None),
            Some(r) if r.body_hash == body_hash => Ok(Some(r.response.clone())),
            Some(_) => Err(ApiErr::conflict(
                codes::IDEMPOTENCY_CONFLICT,
                "this Idempotency-Key was used with a different body",
            )),
        }
    }

    /// Stores a payment just created (sale or refund) and remembers its
    /// idempotency key.
    fn record_new_payment(&mut self, scope: &str, key: &str, body_hash: String, payment: &Payment) {
        let id = payment.payment_id.clone();
        self.payments.insert(
            id.clone(),
            PaymentRec {
                payment: payment.clone(),
                abort_too_late: false,
                abort_rejected: None,
                events: Vec::new(),
            },
        );
        self.dirty(kind::PAYMENT, id.as_str());
        self.remember(scope, key, body_hash, payment);
    }

    fn remember(&mut self, scope: &str, key: &str, body_hash: String, payment: &Payment) {
        let k = format!("{scope}:{key}");
        self.idempotency.insert(
            k.clone(),
            IdemRec {
                key: k.clone(),
                body_hash,
                payment_id: payment.payment_id.clone(),
                response: serde_json::to_value(payment).unwrap_or(Value::Null),
            },
        );
        self.dirty(kind::IDEMPOTENCY, k);
    }

    fn require_active_session(&self, sid: &SessionId, now: Timestamp) -> Result<(), ApiErr> {
        let s = self
            .sessions
            .get(sid)
            .ok_or_else(|| ApiErr::not_found("session", sid.as_str()))?;
        match Self::effective_status(s, now) {
            SessionStatus::Active => Ok(()),
            SessionStatus::Closed => Err(ApiErr::conflict(
                codes::SESSION_CLOSED,
                "the session is closed",
            )),
            SessionStatus::Cancelled => Err(ApiErr::conflict(
                "session_cancelled",
                "the session was cancelled",
            )),
            SessionStatus::Pending => Err(ApiErr::conflict(
                "session_not_started",
                "the session has not started yet",
            )),
        }
    }

    pub fn create_payment(
        &mut self,
        key: &str,
        body_hash: String,
        req: CreatePayment,
        now: Timestamp,
        live: &dyn Liveness,
    ) -> Result<Payment, ApiErr> {
        let amount = crate::body::positive(req.amount)?;
        if req.reference.trim().is_empty() || req.reference.chars().count() > 128 {
            return Err(ApiErr::unprocessable(
                "invalid_reference",
                "reference must be 1-128 characters",
            ));
        }
        let t = self.terminal(&req.terminal_id)?;
        let sid = t.session_id.clone();
        self.require_active_session(&sid, now)?;
        match self.terminal_status(&req.terminal_id, now, live) {
            TerminalStatus::Offline => {
                return Err(ApiErr::conflict(
                    codes::TERMINAL_OFFLINE,
                    "the terminal is not connected",
                ));
            }
            TerminalStatus::Busy => {
                return Err(ApiErr::conflict(
                    codes::TERMINAL_BUSY,
                    "the terminal is busy with another payment",
                ));
            }
            TerminalStatus::Online => {}
        }
        let expires_at = req.expires_at.unwrap_or_else(|| now.plus_secs(120));
        if expires_at <= now {
            return Err(ApiErr::unprocessable(
                "invalid_expires_at",
                "expires_at is in the past",
            ));
        }
        let payment_id: PaymentId = sim_id(short_id("pay_"));
        let policy = req.offline_policy.unwrap_or_default();
        let payment = Payment {
            payment_id: payment_id.clone(),
            kind: TxKind::Sale,
            terminal_id: req.terminal_id.clone(),
            session_id: sid,
            amount,
            currency: req.currency,
            status: PaymentStatus::Pending,
            reference: Some(req.reference.clone()),
            metadata: req.metadata.clone(),
            offline_policy: policy,
            expires_at: Some(expires_at),
            original_transaction_id: None,
            original_reference: None,
            reason: None,
            transaction: None,
            created_at: now,
            updated_at: now,
        };
        self.record_new_payment("payment", key, body_hash, &payment);
        self.push_command(
            &req.terminal_id,
            CommandBody::Sale {
                payment_id,
                amount,
                currency: req.currency,
                partner_reference: req.reference,
                metadata: req.metadata,
                expires_at,
                offline_policy: policy,
            },
            now,
        );
        Ok(payment)
    }

    /// Ends a sale still `pending` once past its `expires_at`.
    pub fn expire_payment(&mut self, id: &PaymentId, now: Timestamp) {
        let due = self.payments.get(id).is_some_and(|p| {
            p.payment.status == PaymentStatus::Pending
                && p.payment.expires_at.is_some_and(|e| e <= now)
        });
        if due {
            self.finish_payment(id, PaymentStatus::TimedOut, Some("expired".into()), now);
        }
    }

    pub fn payment(&self, id: &PaymentId) -> Result<&PaymentRec, ApiErr> {
        self.payments
            .get(id)
            .ok_or_else(|| ApiErr::not_found("payment", id.as_str()))
    }

    /// Starts an abort. `Ok(None)`: wait for the terminal's answer.
    pub fn begin_abort(
        &mut self,
        id: &PaymentId,
        now: Timestamp,
    ) -> Result<Option<Payment>, ApiErr> {
        let p = self.payment(id)?;
        if let Some(done) = Self::abort_outcome(p)? {
            return Ok(Some(done));
        }
        let already = self.commands.get(&p.payment.terminal_id).is_some_and(|m| {
            m.values().any(|c| {
                matches!(&c.command.body, CommandBody::Abort { payment_id } if payment_id == id)
                    && c.ack.is_none()
            })
        });
        let tid = p.payment.terminal_id.clone();
        if let Some(p) = self.payments.get_mut(id) {
            p.abort_rejected = None;
        }
        if !already {
            self.push_command(
                &tid,
                CommandBody::Abort {
                    payment_id: id.clone(),
                },
                now,
            );
        }
        Ok(None)
    }

    /// What an abort has come to so far: `Ok(Some)` aborted, `Err` refused,
    /// `Ok(None)` still open.
    pub fn abort_outcome(p: &PaymentRec) -> Result<Option<Payment>, ApiErr> {
        if p.payment.kind != TxKind::Sale {
            return Err(ApiErr::conflict(
                "not_abortable",
                "only sales can be aborted",
            ));
        }
        match p.payment.status {
            PaymentStatus::Aborted => return Ok(Some(p.payment.clone())),
            PaymentStatus::Approved | PaymentStatus::Declined => {
                return Err(ApiErr::conflict(
                    codes::ABORT_TOO_LATE,
                    "the card was already read; refund the payment instead",
                ));
            }
            PaymentStatus::TimedOut | PaymentStatus::Failed => {
                return Err(ApiErr::conflict(
                    "payment_final",
                    format!("the payment already ended ({:?})", p.payment.status),
                ));
            }
            PaymentStatus::Pending | PaymentStatus::InProgress => {}
        }
        if p.abort_too_late {
            return Err(ApiErr::conflict(
                codes::ABORT_TOO_LATE,
                "the card was already read; the payment goes on (refund it if needed)",
            ));
        }
        if let Some(r) = p.abort_rejected {
            return Err(ApiErr::conflict(
                "abort_rejected",
                format!("the terminal refused the abort: {}", r.as_str()),
            ));
        }
        Ok(None)
    }

    pub fn payment_event(
        &mut self,
        tid: &TerminalId,
        pid: &PaymentId,
        ev: PaymentEvent,
        now: Timestamp,
    ) -> Result<Payment, ApiErr> {
        let p = self
            .payments
            .get_mut(pid)
            .filter(|p| &p.payment.terminal_id == tid)
            .ok_or_else(|| ApiErr::not_found("payment", pid.as_str()))?;
        if p.events.iter().any(|e| e.status == ev.status) {
            return Ok(p.payment.clone()); // idempotent
        }
        p.events.push(ev.clone());
        self.dirty(kind::PAYMENT, pid.as_str());
        match ev.status {
            PaymentEventStatus::InProgress => {
                if let Some(p) = self.payments.get_mut(pid) {
                    if p.payment.status == PaymentStatus::Pending {
                        p.payment.status = PaymentStatus::InProgress;
                        p.payment.updated_at = now;
                        self.payment_changed(pid);
                    }
                }
            }
            PaymentEventStatus::AbortTooLate => {
                if let Some(p) = self.payments.get_mut(pid) {
                    p.abort_too_late = true;
                }
                self.effects.payments_changed = true;
            }
            PaymentEventStatus::Aborted => {
                self.finish_payment(pid, PaymentStatus::Aborted, ev.reason, now)
            }
            PaymentEventStatus::TimedOut => {
                self.finish_payment(pid, PaymentStatus::TimedOut, ev.reason, now)
            }
            PaymentEventStatus::Failed => {
                self.finish_payment(pid, PaymentStatus::Failed, ev.reason, now)
            }
        }
        Ok(self.payment(pid)?.payment.clone())
    }

    fn refunded_so_far(&self, tid: &TerminalId, original: &Reference) -> Money {
        let mut sum = Money::ZERO;
        for t in self.transactions.values() {
            if &t.record.terminal_id == tid
                && t.record.kind == TxKind::Refund
                && t.record.status == RecordStatus::Approved
                && t.record.original_reference.as_ref() == Some(original)
            {
                sum = sum.checked_add(t.record.amount).unwrap_or(sum);
            }
        }
        // Refunds requested but not settled yet also count against the sale.
        for p in self.payments.values() {
            if &p.payment.terminal_id == tid
                && p.payment.kind == TxKind::Refund
                && !p.payment.status.is_final()
                && p.payment.original_reference.as_ref() == Some(original)
            {
                sum = sum.checked_add(p.payment.amount).unwrap_or(sum);
            }
        }
        sum
    }

    #[allow(clippy::too_many_arguments)]
    pub fn create_refund(
        &mut self,
        key: &str,
        body_hash: String,
        transaction_id: &str,
        amount: Money,
        currency: Currency,
        now: Timestamp,
        live: &dyn Liveness,
    ) -> Result<Payment, ApiErr> {
        let amount = crate::body::positive(amount)?;
        let tx_key = self
            .tx_by_id
            .get(transaction_id)
            .cloned()
            .ok_or_else(|| ApiErr::not_found("transaction", transaction_id))?;
        let tx = self
            .transactions
            .get(&tx_key)
            .ok_or_else(|| ApiErr::not_found("transaction", transaction_id))?;
        let reference = tx_key.1.clone();
        if tx.record.kind != TxKind::Sale || tx.record.status != RecordStatus::Approved {
            return Err(ApiErr::conflict(
                "not_refundable",
                "only an approved, not reversed sale can be refunded",
            ));
        }
        let left = tx
            .record
            .amount
            .saturating_sub(self.refunded_so_far(&tx_key.0, &reference));
        if amount > left {
            return Err(ApiErr::unprocessable(
                "amount_exceeds_refundable",
                format!("at most {} is left to refund", left.to_wire()),
            ));
        }
        let tid = tx.record.terminal_id.clone();
        let sid = tx.record.session_id.clone();
        let original_id = tx.record.transaction_id.clone();
        if !live.is_connected(&tid) {
            return Err(ApiErr::conflict(
                codes::TERMINAL_OFFLINE,
                "the terminal of the sale is not connected",
            ));
        }
        let payment_id: PaymentId = sim_id(short_id("pay_"));
        let payment = Payment {
            payment_id: payment_id.clone(),
            kind: TxKind::Refund,
            terminal_id: tid.clone(),
            session_id: sid,
            amount,
            currency,
            status: PaymentStatus::Pending,
            reference: None,
            metadata: None,
            offline_policy: Default::default(),
            expires_at: None,
            original_transaction_id: Some(original_id),
            original_reference: Some(reference.clone()),
            reason: None,
            transaction: None,
            created_at: now,
            updated_at: now,
        };
        self.record_new_payment("refund", key, body_hash, &payment);
        self.push_command(
            &tid,
            CommandBody::Refund {
                payment_id,
                original_reference: reference,
                amount,
                currency,
            },
            now,
        );
        Ok(payment)
    }
}
