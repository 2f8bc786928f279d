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
        operator_id: None,
        captured_at: timestamp(s.captured_at)?,
        offline: s.offline,
        original_reference: s.original_reference.clone(),
    })
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
}

impl OutboxPayload {
    pub fn kind(&self) -> store::OutboxKind {
        match self {
            OutboxPayload::Ack { .. } => store::OutboxKind::CommandAck,
            OutboxPayload::PaymentEvent { .. } => store::OutboxKind::PaymentEvent,
            OutboxPayload::Reversal { .. } => store::OutboxKind::Reversal,
            OutboxPayload::Transaction(_) => store::OutboxKind::Transaction,
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

    fn encode(&self) -> Result<serde_json::Value, MappingError> {
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
                operator_id: None,
                captured_at: None,
                decision: None,
                original_reference: n.original_reference.clone(),
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{Money, TerminalId};

    fn reference(n: u64) -> Reference {
        Reference::for_sequence(&TerminalId::new("pos_abc123_001").unwrap(), n)
    }

    fn card() -> core::Card {
        core::Card {
            token: core::CardToken::new("9f2c4e1a0b7d3e6f8a1c2b4d6e8f0a1b").unwrap(),
            last4: core::Last4::new("1111").unwrap(),
            brand: core::CardBrand::Visa,
            entry_mode: core::EntryMode::Contactless,
        }
    }

    fn money(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    #[test]
    fn insert_with_ack_and_event_orders_them_by_payment() {
        let pid = PaymentId::new("pay_1").unwrap();
        let cmd = core::CommandId("cmd_1".into());
        let change = core::Change {
            at: core::UnixMillis(1_763_719_200_000),
            tx: Some(core::TxWrite::Insert(core::NewTx {
                reference: reference(1),
                kind: core::TxKind::Sale,
                amount: money("2000.00"),
                currency: proto::Currency::Ngn,
                payment_id: Some(pid.clone()),
                command_id: Some(cmd.clone()),
                partner_reference: Some("P-1".into()),
                original_reference: None,
                offline_policy: core::OfflinePolicy::PreferOnline,
                state: core::TxState::Pending,
            })),
            outbox: vec![
                core::OutboxItem::Ack(core::CommandAck {
                    command_id: cmd,
                    status: core::AckStatus::Accepted,
                    reason: None,
                }),
                core::OutboxItem::PaymentEvent {
                    payment_id: pid.clone(),
                    status: core::PaymentEventStatus::InProgress,
                    reason: None,
                    at: core::UnixMillis(1_763_719_200_000),
                },
            ],
        };
        let s = store_change(&change, None).unwrap();
        assert_eq!(s.now, 1_763_719_200_000);
        match &s.write {
            Some(store::TxWrite::Insert(n)) => {
                assert_eq!(n.reference, reference(1));
                assert_eq!(n.state, store::TxState::Pending);
                assert_eq!(n.amount, money("2000.00"));
                assert_eq!(n.payment_id.as_ref(), Some(&pid));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.enqueue.len(), 2);
        assert_eq!(s.enqueue[0].kind, store::OutboxKind::CommandAck);
        assert_eq!(s.enqueue[0].payment_id.as_ref(), Some(&pid));
        assert_eq!(
            s.enqueue[0].payload,
            serde_json::json!({"command_id": "cmd_1", "ack": {"status": "accepted"}})
        );
        assert_eq!(s.enqueue[1].kind, store::OutboxKind::PaymentEvent);
        assert_eq!(s.enqueue[1].reference, Some(reference(1)));
        let back = OutboxPayload::decode(s.enqueue[1].kind, &s.enqueue[1].payload).unwrap();
        match back {
            OutboxPayload::PaymentEvent { payment_id, event } => {
                assert_eq!(payment_id, pid);
                assert_eq!(event.status, wire::PaymentEventStatus::InProgress);
                assert_eq!(event.at.to_wire(), "2025-11-21T10:00:00Z");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn update_with_offline_submission_maps_every_field() {
        let mut u = core::TxUpdate::new(reference(7), core::TxState::OfflineApproved);
        u.card = Some(card());
        u.captured_at = Some(core::UnixMillis(1_000));
        u.decision = Some(core::Decision::OfflineLinkDown);
        u.reason = Some("offline_link_down".into());
        let sub = core::Submission {
            reference: reference(7),
            payment_id: None,
            kind: core::TxKind::Sale,
            amount: money("1500.50"),
            card: card(),
            captured_at: core::UnixMillis(1_000),
            offline: true,
            original_reference: None,
        };
        let change = core::Change {
            at: core::UnixMillis(2_000),
            tx: Some(core::TxWrite::Update(u)),
            outbox: vec![core::OutboxItem::Submit(sub)],
        };
        let pid = PaymentId::new("pay_7").unwrap();
        let s = store_change(&change, Some(&pid)).unwrap();
        match &s.write {
            Some(store::TxWrite::Update {
                reference: r,
                update,
            }) => {
                assert_eq!(r, &reference(7));
                assert_eq!(update.state, Some(store::TxState::OfflineApproved));
                let c = update.card.as_ref().unwrap();
                assert_eq!(
                    (c.token(), c.last4(), c.brand(), c.entry_mode()),
                    (
                        "9f2c4e1a0b7d3e6f8a1c2b4d6e8f0a1b",
                        "1111",
                        core::CardBrand::Visa,
                        core::EntryMode::Contactless
                    )
                );
                assert_eq!(update.captured_at, Some(1_000));
                let d = update.decision.as_ref().unwrap();
                assert_eq!(d.mode, store::DecisionMode::Offline);
                assert_eq!(d.reason, "offline_link_down");
                assert_eq!(update.decline_reason.as_deref(), Some("offline_link_down"));
            }
            other => panic!("{other:?}"),
        }
        let item = &s.enqueue[0];
        assert_eq!(item.kind, store::OutboxKind::Transaction);
        assert_eq!(item.reference, Some(reference(7)));
        match OutboxPayload::decode(item.kind, &item.payload).unwrap() {
            OutboxPayload::Transaction(t) => {
                assert!(t.offline);
                assert_eq!(t.amount, money("1500.50"));
                assert_eq!(t.card.last4.as_str(), "1111");
                assert_eq!(t.card.brand, wire::CardBrand::Visa);
                assert_eq!(t.kind, wire::TxKind::Sale);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_forward_after_an_unknown_outcome_is_an_offline_forward() {
        let sub = core::Submission {
            reference: reference(8),
            payment_id: None,
            kind: core::TxKind::Sale,
            amount: money("1200.00"),
            card: card(),
            captured_at: core::UnixMillis(1_000),
            offline: true,
            original_reference: None,
        };
        let mut u = core::TxUpdate::new(reference(8), core::TxState::OfflineApproved);
        u.reason = Some("offline_after_unknown".into());
        let change = core::Change {
            at: core::UnixMillis(2_000),
            tx: Some(core::TxWrite::Update(u)),
            outbox: vec![core::OutboxItem::Submit(sub.clone())],
        };
        let s = store_change(&change, None).unwrap();
        let item = &s.enqueue[0];
        match OutboxPayload::decode(item.kind, &item.payload).unwrap() {
            OutboxPayload::Transaction(t) => {
                assert!(
                    t.offline,
                    "SPEC 4.3: an offline approval is always forwarded offline"
                );
                assert_eq!((t.reference, t.amount), (reference(8), money("1200.00")));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reversal_item_and_payload_kind_checks() {
        let change = core::Change {
            at: core::UnixMillis(5),
            tx: Some(core::TxWrite::Update(core::TxUpdate::new(
                reference(3),
                core::TxState::ReversalPending,
            ))),
            outbox: vec![core::OutboxItem::Reversal {
                reference: reference(3),
            }],
        };
        let pid = PaymentId::new("pay_3").unwrap();
        let s = store_change(&change, Some(&pid)).unwrap();
        let item = &s.enqueue[0];
        assert_eq!(item.kind, store::OutboxKind::Reversal);
        assert_eq!(item.payment_id.as_ref(), Some(&pid));
        assert!(matches!(
            OutboxPayload::decode(item.kind, &item.payload).unwrap(),
            OutboxPayload::Reversal { reversal_of, .. } if reversal_of == reference(3)
        ));
        // A payload read back under the wrong kind, or garbage, is refused.
        assert!(OutboxPayload::decode(store::OutboxKind::CommandAck, &item.payload).is_err());
        assert!(
            OutboxPayload::decode(store::OutboxKind::Transaction, &serde_json::json!({"x": 1}))
                .is_err()
        );
    }
}
