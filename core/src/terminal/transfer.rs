//! Pay by bank transfer (SPEC 7.7): on `tap_card`, `down` offers the
//! session's collection account and a 6-digit payment code instead of the
//! card. The payment keeps its reference; the registration of the expected
//! transfer is committed (an outbox item) before the code is shown, the
//! backend's `transfer_received` settles it, and leaving the transfer
//! (back to the card, cancel, abort, timeout, session closed) queues the
//! cancellation of the registration.

use proto::{Money, Reference, TerminalId};

use super::{After, Outcome, Stage, Terminal};
use crate::model::{
    Button, CancelReason, Change, Channel, CollectionAccount, Decision, Durability, OutboxItem,
    Payer, PaymentEventStatus, Report, Screen, TransferCode, TransferReceivedCommand,
    TransferRegistration, TransferStatus, TxKind, TxState, TxUpdate, TxWrite,
};
use crate::time::Now;

/// What a payment paid by transfer carries while it waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TransferWait {
    pub(super) code: TransferCode,
    /// The account shown when the transfer was offered.
    pub(super) account: CollectionAccount,
    /// The registration is queued or live at the backend: leaving the
    /// transfer must cancel it. False once the backend refused it.
    pub(super) registered: bool,
    /// The backend refused the registration (card only).
    pub(super) refused: bool,
    /// What has arrived so far.
    pub(super) received: Money,
    /// Who paid, once the whole amount arrived.
    pub(super) payer: Option<Payer>,
}

/// The 6-digit payment code of a transfer payment, a pure function of the
/// terminal and the reference: `t * 10_000 + seq % 10_000`, where `t` is
/// the terminal id's trailing decimal digits modulo 100 (a stable FNV-1a
/// hash of the id modulo 100 when it has none) and `seq` the reference's
/// sequence (its trailing digits; a hash of it for a reference without).
/// Unique per terminal of a session (at most 100 of them, one open
/// transfer each) for 10,000 consecutive payments.
pub fn transfer_code(terminal: &TerminalId, reference: &Reference) -> TransferCode {
    let t = trailing_number(terminal.as_str()).unwrap_or_else(|| fnv1a(terminal.as_str())) % 100;
    let seq = trailing_number(reference.as_str()).unwrap_or_else(|| fnv1a(reference.as_str()));
    TransferCode::from_number(t * 10_000 + seq % 10_000)
}

/// The value of the trailing run of decimal digits (its last 18 digits),
/// `None` without one.
fn trailing_number(s: &str) -> Option<u64> {
    let digits: Vec<u8> = s
        .bytes()
        .rev()
        .take_while(u8::is_ascii_digit)
        .take(18)
        .collect();
    if digits.is_empty() {
        return None;
    }
    Some(
        digits
            .iter()
            .rev()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0')),
    )
}

/// 64-bit FNV-1a: stable across builds and platforms.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Terminal {
    /// `up`/`down` while a payment is in progress.
    pub(super) fn on_transfer_key(&mut self, now: Now, button: Button) {
        let Some(p) = &self.payment else {
            return;
        };
        let on_transfer_screen = matches!(self.screen, Screen::Transfer { .. });
        match (button, &p.stage) {
            (Button::Down, Stage::WaitingCard { .. })
                if p.kind == TxKind::Sale && !on_transfer_screen =>
            {
                self.offer_transfer(now)
            }
            (Button::Up, Stage::WaitingCard { .. }) if on_transfer_screen => {
                // The card-only view (offline or no account): back to tap.
                let tap = self.tap_screen(None);
                self.set_screen(tap);
            }
            (Button::Up, Stage::WaitingTransfer { .. }) => self.back_to_card(now),
            _ => self.report(Report::Ignored {
                input: "button",
                why: "up/down do nothing here",
            }),
        }
    }

    /// `down` on `tap_card`: register the transfer (committed before the
    /// code is shown), or say why it cannot be offered.
    fn offer_transfer(&mut self, now: Now) {
        let refusal = match (&self.collection_account, self.online) {
            (None, _) => Some(TransferStatus::NotForEvent),
            (Some(_), false) => Some(TransferStatus::NeedsNetwork),
            (Some(_), true) => None,
        };
        let Some(p) = self.payment.as_mut() else {
            return;
        };
        if let Some(status) = refusal {
            // Nothing registered: the card stays on offer (reader on, tap
            // deadline unchanged), `up` shows the tap screen again.
            let screen = Screen::Transfer {
                amount: p.amount,
                tip: p.tip,
                account: self.collection_account.clone(),
                code: None,
                received: Money::ZERO,
                status,
            };
            return self.set_screen(screen);
        }
        let Some(account) = self.collection_account.clone() else {
            return;
        };
        let code = transfer_code(&self.config.terminal_id, &p.reference);
        let timeout = i64::try_from(self.config.transfer_timeout_ms).unwrap_or(i64::MAX);
        let expires_at = crate::time::UnixMillis(now.wall.0.saturating_add(timeout));
        let registration = TransferRegistration {
            reference: p.reference.clone(),
            payment_id: p.payment_id.clone(),
            amount: p.amount,
            code: code.clone(),
            expires_at,
            operator_id: p.operator_id.clone(),
        };
        let mut update = TxUpdate::new(p.reference.clone(), TxState::Pending);
        update.transfer_code = Some(code.clone());
        p.transfer = Some(TransferWait {
            code,
            account,
            registered: true,
            refused: false,
            received: Money::ZERO,
            payer: None,
        });
        self.outputs.push_back(crate::model::Output::StopReader);
        let op = self.persist(Change {
            at: now.wall,
            tx: Some(TxWrite::Update(update)),
            outbox: vec![OutboxItem::TransferRegister(registration)],
            durability: Durability::Full,
        });
        if let Some(p) = self.payment.as_mut() {
            p.stage = Stage::Recording {
                op,
                then: After::AwaitTransfer,
            };
        }
    }

    /// `up` on `transfer`: cancel the registration (committed first, so a
    /// customer never pays both ways), then the card with a fresh tap
    /// deadline.
    fn back_to_card(&mut self, now: Now) {
        let Some(p) = self.payment.as_mut() else {
            return;
        };
        let registered = p.transfer.as_ref().is_some_and(|t| t.registered);
        if !registered {
            p.transfer = None;
            return self.wait_for_card(now);
        }
        let reference = p.reference.clone();
        let op = self.persist(Change {
            at: now.wall,
            tx: None,
            outbox: vec![OutboxItem::TransferCancel { reference }],
            durability: Durability::Full,
        });
        if let Some(p) = self.payment.as_mut() {
            p.stage = Stage::Recording {
                op,
                then: After::BackToCard,
            };
        }
    }

    /// The registration is durable: show the code and wait.
    pub(super) fn after_registered(&mut self, now: Now) {
        let Some(p) = self.payment.as_mut() else {
            return;
        };
        if p.abort_requested {
            return self.cancel_without_card(now);
        }
        p.stage = Stage::WaitingTransfer {
            deadline: now.mono.after(self.config.transfer_timeout_ms),
        };
        self.show_transfer();
    }

    /// The cancellation is durable: back to the card.
    pub(super) fn after_cancelled_back(&mut self, now: Now) {
        let Some(p) = self.payment.as_mut() else {
            return;
        };
        p.transfer = None;
        if p.abort_requested {
            return self.cancel_without_card(now);
        }
        self.wait_for_card(now);
    }

    /// An abort that arrived while a transfer commit was in flight.
    fn cancel_without_card(&mut self, now: Now) {
        let session_over = self.session != crate::model::SessionStatus::Active;
        let (reason, cancel) = if session_over {
            (Some("session_closed"), CancelReason::SessionClosed)
        } else {
            (None, CancelReason::Cancelled)
        };
        self.finish_without_card(
            now,
            TxState::Aborted,
            PaymentEventStatus::Aborted,
            reason,
            cancel,
        );
    }

    /// The transfer screen for the payment waiting for its transfer.
    pub(super) fn transfer_screen(&self) -> Option<Screen> {
        let p = self.payment.as_ref()?;
        let t = p.transfer.as_ref()?;
        let status = if t.refused {
            TransferStatus::Unavailable
        } else if !self.online {
            TransferStatus::NoNetwork
        } else if !t.received.is_zero() {
            TransferStatus::PartlyReceived
        } else {
            TransferStatus::Waiting
        };
        Some(Screen::Transfer {
            amount: p.amount,
            tip: p.tip,
            account: Some(t.account.clone()),
            code: (!t.refused).then(|| t.code.clone()),
            received: t.received,
            status,
        })
    }

    /// Re-draw the transfer screen (link, credit or refusal changed).
    pub(super) fn show_transfer(&mut self) {
        let waiting = self
            .payment
            .as_ref()
            .is_some_and(|p| matches!(p.stage, Stage::WaitingTransfer { .. }));
        if !waiting {
            return;
        }
        if let Some(screen) = self.transfer_screen() {
            self.set_screen(screen);
        }
    }

    /// `transfer_received`: settle the payment waiting for it, or note a
    /// part of it; anything else is acknowledged and changes nothing.
    pub(super) fn on_transfer_received(&mut self, now: Now, c: TransferReceivedCommand) {
        let ours = self.payment.as_ref().and_then(|p| {
            let waiting = matches!(p.stage, Stage::WaitingTransfer { .. });
            (p.reference == c.reference && waiting).then_some(p.amount)
        });
        let Some(amount) = ours else {
            self.accept_now(c.command_id);
            let why = if self
                .payment
                .as_ref()
                .is_some_and(|p| p.reference == c.reference)
            {
                "the payment is not waiting for a transfer"
            } else {
                "no transfer waiting for this reference (finished, cancelled or unknown)"
            };
            return self.report(Report::TransferIgnored {
                reference: c.reference,
                why,
            });
        };
        if c.total_received < amount {
            if let Some(t) = self.payment.as_mut().and_then(|p| p.transfer.as_mut()) {
                t.received = t.received.max(c.total_received);
            }
            self.accept_now(c.command_id);
            self.report(Report::TransferPartial {
                reference: c.reference,
                received: c.total_received,
                amount,
            });
            return self.show_transfer();
        }
        if let Some(t) = self.payment.as_mut().and_then(|p| p.transfer.as_mut()) {
            t.received = c.total_received;
            t.payer = Some(c.payer.clone());
            // Settled at the backend: nothing left to cancel.
            t.registered = false;
        }
        if let Some(p) = self.payment.as_mut() {
            p.captured_at = c.credited_at;
        }
        let mut update = TxUpdate::new(c.reference.clone(), TxState::Approved);
        update.channel = Some(Channel::Account);
        update.payer = Some(c.payer);
        update.decision = Some(Decision::Transfer);
        update.captured_at = Some(c.credited_at);
        // The backend recorded the transaction itself (channel account):
        // nothing is forwarded; the ack goes out once this is durable.
        let ack = OutboxItem::Ack(crate::model::CommandAck {
            command_id: c.command_id,
            status: crate::model::AckStatus::Accepted,
            reason: None,
        });
        self.record(
            now,
            update,
            vec![ack],
            After::Show(Outcome::Approved { offline: false }),
        );
    }

    /// The backend refused the registration of `reference` (parked).
    pub(super) fn on_transfer_refused(&mut self, reference: Reference, code: String) {
        let ours = self
            .payment
            .as_ref()
            .is_some_and(|p| p.reference == reference && p.transfer.is_some());
        self.report(Report::TransferRefused { reference, code });
        if !ours {
            return;
        }
        if let Some(t) = self.payment.as_mut().and_then(|p| p.transfer.as_mut()) {
            t.registered = false;
            t.refused = true;
        }
        self.show_transfer();
    }
}
