//! Where the core's vocabulary meets the store's and the wire's:
//!
//! - [`store_change`]: a core [`Change`](core::Change) as a store
//!   [`Change`](store::Change) (transaction write + outbox items);
//! - [`OutboxPayload`]: what an outbox item carries, written here and read
//!   back (validated) by the outbox drainer.
//!
//! The core's screens as the `ui` crate draws them are in [`crate::screen`].
//!
//! Everything is pure and unit-tested below.

use proto::wire::{self, Timestamp};
use proto::{PaymentId, Reference};
use serde::{Deserialize, Serialize};

use crate::core;

/// Why a core value could not be expressed for the store or the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("card of {reference}: {problem}")]
    Card { reference: String, problem: String },
    #[error("decision of {reference}: {problem}")]
    Decision { reference: String, problem: String },
    #[error("timestamp {millis} ms is out of range")]
    Timestamp { millis: i64 },
    #[error("outbox payload of kind {kind}: {problem}")]
    Payload { kind: &'static str, problem: String },
}

/// Wall-clock milliseconds as an RFC 3339 wire timestamp.
pub fn timestamp(ms: core::UnixMillis) -> Result<Timestamp, MappingError> {
    let nanos = i128::from(ms.0) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map(Timestamp::from_offset_date_time)
        .map_err(|_| MappingError::Timestamp { millis: ms.0 })
}

/// A wire timestamp as wall-clock milliseconds.
pub fn unix_millis(t: Timestamp) -> core::UnixMillis {
    let nanos = t.as_offset_date_time().unix_timestamp_nanos();
    core::UnixMillis(i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX))
}

fn store_card(reference: &Reference, c: &core::Card) -> Result<store::Card, MappingError> {
    store::Card::new(c.token.as_str(), c.last4.as_str(), c.brand, c.entry_mode).map_err(|e| {
        MappingError::Card {
            reference: reference.to_string(),
            problem: e.to_string(),
        }
    })
}

fn store_decision(
    reference: &Reference,
    d: &core::Decision,
) -> Result<store::Decision, MappingError> {
    store::Decision::new(d.mode(), d.code()).map_err(|e| MappingError::Decision {
        reference: reference.to_string(),
        problem: e.to_string(),
    })
}

/// A core submission as the body of `POST /v1/terminals/:tid/transactions`.
pub fn wire_submission(s: &core::Submission) -> Result<wire::TransactionSubmission, MappingError> {
    Ok(wire::TransactionSubmission {
        reference: s.reference.clone(),
        payment_id: s.payment_id.clone(),
        kind: s.kind,
        amount: s.amount,
        currency: proto::Currency::Ngn,
        card: s.card.clone(),
        operator_id: s.operator_id.clone(),
        captured_at: timestamp(s.captured_at)?,
        offline: s.offline,
        original_reference: s.original_reference.clone(),
        tip_amount: s.tip_amount,
        items: (!s.items.is_empty()).then(|| s.items.iter().map(wire_item).collect()),
    })
}

fn wire_item(i: &core::LineItem) -> wire::TxItem {
    wire::TxItem {
        item_id: i.item_id.clone(),
        name: i.name.clone(),
        qty: i.qty,
        unit_price: i.unit_price,
    }
}

fn store_item(i: &core::LineItem) -> store::LineItem {
    store::LineItem {
        item_id: i.item_id.clone(),
        name: i.name.clone(),
        qty: i.qty,
        unit_price: i.unit_price,
    }
}

/// A closed shift's report as the body of `POST /v1/terminals/:tid/shifts`.
pub fn wire_shift(r: &store::ShiftReport) -> Result<wire::ShiftSubmission, MappingError> {
    let closed_at = r.closed_at.unwrap_or_default();
    Ok(wire::ShiftSubmission {
        shift_no: r.shift_no,
        opened_at: timestamp(core::UnixMillis(r.opened_at.unwrap_or(closed_at)))?,
        closed_at: timestamp(core::UnixMillis(closed_at))?,
        totals: r.totals.clone(),
    })
}

/// The store's shift report as the core shows it.
pub fn core_report(kind: core::ReportKind, r: store::ShiftReport) -> core::ShiftReport {
    core::ShiftReport {
        kind,
        shift_no: r.shift_no,
        opened_at: r.opened_at.map(core::UnixMillis),
        closed_at: r.closed_at.map(core::UnixMillis),
        totals: r.totals,
    }
}

fn wire_ack(a: &core::CommandAck) -> wire::CommandAck {
    wire::CommandAck {
        status: a.status,
        reason: a.reason,
    }
}

/// What an outbox item carries: one variant per [`store::OutboxKind`],
/// each exactly the request the drainer sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OutboxPayload {
    /// `POST /v1/terminals/:tid/commands/:command_id/ack`.
    Ack {
        command_id: String,
        ack: wire::CommandAck,
    },
    /// `POST /v1/terminals/:tid/payments/:payment_id/events`.
    PaymentEvent {
        payment_id: PaymentId,
        event: wire::PaymentEvent,
    },
    /// `POST /v1/terminals/:tid/transactions/:reference/reversal`.
    Reversal {
        reversal_of: Reference,
        request: wire::ReversalRequest,
    },
    /// `POST /v1/terminals/:tid/transactions`: the forward of a transaction
    /// the terminal approved offline, always `offline: true` (also when an
    /// online authorization's answer was lost: the backend's idempotency by
    /// reference then answers what it decided for that authorization).
    Transaction(wire::TransactionSubmission),
    /// `POST /v1/terminals/:tid/shifts`: a Z report (idempotent by
    /// `shift_no`).
    Shift(wire::ShiftSubmission),
    /// `POST /v1/terminals/:tid/transfers`: the bank transfer the terminal
    /// waits for (SPEC 7.7, idempotent by reference).
    TransferRegister(wire::TransferRegistration),
    /// `DELETE /v1/terminals/:tid/transfers/:reference`: the terminal no
    /// longer waits for that transfer.
    TransferCancel { cancel_transfer: Reference },
}

impl OutboxPayload {
    pub fn kind(&self) -> store::OutboxKind {
        match self {
            OutboxPayload::Ack { .. } => store::OutboxKind::CommandAck,
            OutboxPayload::PaymentEvent { .. } => store::OutboxKind::PaymentEvent,
            OutboxPayload::Reversal { .. } => store::OutboxKind::Reversal,
            OutboxPayload::Transaction(_) => store::OutboxKind::Transaction,
            OutboxPayload::Shift(_) => store::OutboxKind::Shift,
            OutboxPayload::TransferRegister(_) => store::OutboxKind::TransferRegister,
            OutboxPayload::TransferCancel { .. } => store::OutboxKind::TransferCancel,
        }
    }

    /// Reads a stored payload back, checking it matches its kind.
    pub fn decode(
        kind: store::OutboxKind,
        payload: &serde_json::Value,
    ) -> Result<OutboxPayload, MappingError> {
        let err = |problem: String| MappingError::Payload {
            kind: kind.as_str(),
            problem,
        };
        let p: OutboxPayload =
            serde_json::from_value(payload.clone()).map_err(|e| err(e.to_string()))?;
        if p.kind() != kind {
            return Err(err(format!("payload is a {}", p.kind().as_str())));
        }
        Ok(p)
    }

    pub fn encode(&self) -> Result<serde_json::Value, MappingError> {
        serde_json::to_value(self).map_err(|e| MappingError::Payload {
            kind: self.kind().as_str(),
            problem: e.to_string(),
        })
    }
}

/// An outbox item for the store. `tx_payment` is the payment of the
/// transaction written in the same change, `tx_command` its command id.
fn outbox_item(
    item: &core::OutboxItem,
    tx_reference: Option<&Reference>,
    tx_payment: Option<&PaymentId>,
    tx_command: Option<&core::CommandId>,
) -> Result<store::NewOutboxItem, MappingError> {
    let (payload, reference, payment) = match item {
        core::OutboxItem::Ack(a) => {
            // An accepted ack for the payment inserted in the same commit is
            // ordered with that payment's other items.
            let payment = if tx_command == Some(&a.command_id) {
                tx_payment.cloned()
            } else {
                None
            };
            (
                OutboxPayload::Ack {
                    command_id: a.command_id.0.clone(),
                    ack: wire_ack(a),
                },
                None,
                payment,
            )
        }
        core::OutboxItem::PaymentEvent {
            payment_id,
            status,
            reason,
            at,
        } => (
            OutboxPayload::PaymentEvent {
                payment_id: payment_id.clone(),
                event: wire::PaymentEvent {
                    status: *status,
                    reason: reason.clone(),
                    at: timestamp(*at)?,
                },
            },
            tx_reference.cloned(),
            Some(payment_id.clone()),
        ),
        // Forwarded as the core wrote it: `offline: true`, also after an
        // online authorization whose answer was lost (SPEC 4.3). The
        // backend's idempotency by reference answers what it decided for
        // that authorization, and a payment captured before the session
        // closed is still accepted after the close.
        core::OutboxItem::Submit(s) => (
            OutboxPayload::Transaction(wire_submission(s)?),
            Some(s.reference.clone()),
            s.payment_id.clone(),
        ),
        core::OutboxItem::TransferRegister(r) => (
            OutboxPayload::TransferRegister(wire::TransferRegistration {
                reference: r.reference.clone(),
                payment_id: r.payment_id.clone(),
                amount: r.amount,
                currency: proto::Currency::Ngn,
                code: r.code.clone(),
                expires_at: timestamp(r.expires_at)?,
                operator_id: r.operator_id.clone(),
            }),
            Some(r.reference.clone()),
            r.payment_id.clone(),
        ),
        core::OutboxItem::TransferCancel { reference } => (
            OutboxPayload::TransferCancel {
                cancel_transfer: reference.clone(),
            },
            Some(reference.clone()),
            if tx_reference == Some(reference) {
                tx_payment.cloned()
            } else {
                None
            },
        ),
        core::OutboxItem::Reversal { reference } => (
            OutboxPayload::Reversal {
                reversal_of: reference.clone(),
                request: wire::ReversalRequest {
                    reason: Some("outcome_unknown".to_string()),
                    at: None,
                },
            },
            Some(reference.clone()),
            if tx_reference == Some(reference) {
                tx_payment.cloned()
            } else {
                None
            },
        ),
    };
    let mut out = store::NewOutboxItem::new(payload.kind(), payload.encode()?);
    out.reference = reference;
    out.payment_id = payment;
    Ok(out)
}

/// The core's atomic change as the store's. `known_payment` is the payment
/// id of the transaction an update is about, when the shell knows it (an
/// update does not carry it), so its items stay ordered per payment.
pub fn store_change(
    change: &core::Change,
    known_payment: Option<&PaymentId>,
) -> Result<store::Change, MappingError> {
    let mut tx_reference = None;
    let mut tx_payment = known_payment.cloned();
    let mut tx_command = None;
    let write = match &change.tx {
        None => None,
        Some(core::TxWrite::Insert(n)) => {
            tx_reference = Some(n.reference.clone());
            if n.payment_id.is_some() {
                tx_payment = n.payment_id.clone();
            }
            tx_command = n.command_id.clone();
            Some(store::TxWrite::Insert(store::NewTransaction {
                reference: n.reference.clone(),
                payment_id: n.payment_id.clone(),
                kind: n.kind,
                amount: n.amount,
                currency: n.currency,
                state: n.state,
                card: None,
                operator_id: n.operator_id.clone(),
                captured_at: None,
                decision: None,
                original_reference: n.original_reference.clone(),
                tip_amount: n.tip_amount,
                items: n.items.iter().map(store_item).collect(),
            }))
        }
        Some(core::TxWrite::Update(u)) => {
            tx_reference = Some(u.reference.clone());
            let card = u
                .card
                .as_ref()
                .map(|c| store_card(&u.reference, c))
                .transpose()?;
            let decision = u
                .decision
                .as_ref()
                .map(|d| store_decision(&u.reference, d))
                .transpose()?;
            Some(store::TxWrite::Update {
                reference: u.reference.clone(),
                update: store::TxUpdate {
                    state: Some(u.state),
                    payment_id: None,
                    card,
                    captured_at: u.captured_at.map(|t| t.0),
                    decision,
                    backend_transaction_id: u.transaction_id.clone(),
                    auth_code: u.auth_code.clone(),
                    decline_reason: u.reason.clone(),
                    card_aid: u.card_app.as_ref().and_then(|a| a.aid.clone()),
                    card_label: u.card_app.as_ref().and_then(|a| a.label.clone()),
                    channel: u.channel.map(|c| match c {
                        wire::Channel::Account => store::Channel::Account,
                        wire::Channel::Pos => store::Channel::Card,
                    }),
                    payer_name: u.payer.as_ref().map(|p| p.name.clone()),
                    payer_bank: u.payer.as_ref().map(|p| p.bank.clone()),
                    transfer_code: u.transfer_code.as_ref().map(|c| c.as_str().to_string()),
                },
            })
        }
    };
    let enqueue = change
        .outbox
        .iter()
        .map(|i| {
            outbox_item(
                i,
                tx_reference.as_ref(),
                tx_payment.as_ref(),
                tx_command.as_ref(),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(store::Change {
        now: change.at.0,
        write,
        enqueue,
        durability: match change.durability {
            core::Durability::Full => store::Durability::Full,
            core::Durability::Relaxed => store::Durability::Relaxed,
        },
    })
}

#[cfg(test)]
mod tests;
