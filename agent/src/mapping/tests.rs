//! Unit tests of the core/store/wire conversions.

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
            operator_id: Some("op_ada".into()),
            tip_amount: None,
            items: Vec::new(),
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
        durability: core::Durability::Full,
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
        operator_id: Some("op_ada".into()),
        tip_amount: Some(money("0.50")),
        items: vec![core::LineItem {
            item_id: "star".into(),
            name: "Star Lager".into(),
            qty: 1,
            unit_price: money("1500.00"),
        }],
    };
    let change = core::Change {
        at: core::UnixMillis(2_000),
        tx: Some(core::TxWrite::Update(u)),
        outbox: vec![core::OutboxItem::Submit(sub)],
        durability: core::Durability::Full,
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
            // The cashier's parts go out as they were sold.
            assert_eq!(t.operator_id.as_deref(), Some("op_ada"));
            assert_eq!(t.tip_amount, Some(money("0.50")));
            let items = t.items.as_deref().unwrap();
            assert_eq!((items[0].item_id.as_str(), items[0].qty), ("star", 1));
            assert!(t.check_parts().is_ok());
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
        operator_id: None,
        tip_amount: None,
        items: Vec::new(),
    };
    let mut u = core::TxUpdate::new(reference(8), core::TxState::OfflineApproved);
    u.reason = Some("offline_after_unknown".into());
    let change = core::Change {
        at: core::UnixMillis(2_000),
        tx: Some(core::TxWrite::Update(u)),
        outbox: vec![core::OutboxItem::Submit(sub.clone())],
        durability: core::Durability::Full,
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
        durability: core::Durability::Full,
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

#[test]
fn transfer_items_and_the_settled_update_map_to_store_and_wire() {
    let r = reference(9);
    let pid = PaymentId::new("pay_9").unwrap();
    let code = proto::wire::TransferCode::new("090009").unwrap();
    let mut update = core::TxUpdate::new(r.clone(), core::TxState::Pending);
    update.transfer_code = Some(code.clone());
    let change = core::Change {
        at: core::UnixMillis(1_763_719_200_000),
        tx: Some(core::TxWrite::Update(update)),
        outbox: vec![core::OutboxItem::TransferRegister(
            core::TransferRegistration {
                reference: r.clone(),
                payment_id: Some(pid.clone()),
                amount: money("2500.00"),
                code: code.clone(),
                expires_at: core::UnixMillis(1_763_719_800_000),
                operator_id: None,
            },
        )],
        durability: core::Durability::Full,
    };
    let s = store_change(&change, Some(&pid)).unwrap();
    let Some(store::TxWrite::Update { update, .. }) = &s.write else {
        panic!("an update")
    };
    assert_eq!(update.transfer_code.as_deref(), Some("090009"));
    let item = &s.enqueue[0];
    assert_eq!(item.kind, store::OutboxKind::TransferRegister);
    assert_eq!(item.reference.as_ref(), Some(&r));
    assert_eq!(item.payment_id.as_ref(), Some(&pid));
    assert_eq!(item.payload["code"], "090009");
    assert_eq!(item.payload["expires_at"], "2025-11-21T10:10:00Z");
    assert_eq!(item.payload["currency"], "NGN");
    let back = OutboxPayload::decode(item.kind, &item.payload).unwrap();
    assert!(matches!(back, OutboxPayload::TransferRegister(ref t) if t.code == code));
    // A registration is not a transaction submission, nor the reverse.
    assert!(OutboxPayload::decode(store::OutboxKind::Transaction, &item.payload).is_err());

    let cancel = core::Change {
        at: core::UnixMillis(1_763_719_300_000),
        tx: None,
        outbox: vec![core::OutboxItem::TransferCancel {
            reference: r.clone(),
        }],
        durability: core::Durability::Full,
    };
    let s = store_change(&cancel, None).unwrap();
    let item = &s.enqueue[0];
    assert_eq!(item.kind, store::OutboxKind::TransferCancel);
    assert_eq!(item.reference.as_ref(), Some(&r));
    assert!(matches!(
        OutboxPayload::decode(item.kind, &item.payload).unwrap(),
        OutboxPayload::TransferCancel { cancel_transfer } if cancel_transfer == r
    ));

    let mut settled = core::TxUpdate::new(r.clone(), core::TxState::Approved);
    settled.channel = Some(proto::wire::Channel::Account);
    settled.payer = Some(proto::wire::Payer {
        name: "ADA OBI".into(),
        bank: "GTBank".into(),
        account_number: None,
    });
    settled.decision = Some(core::Decision::Transfer);
    let change = core::Change {
        at: core::UnixMillis(1_763_719_400_000),
        tx: Some(core::TxWrite::Update(settled)),
        outbox: Vec::new(),
        durability: core::Durability::Full,
    };
    let s = store_change(&change, None).unwrap();
    let Some(store::TxWrite::Update { update, .. }) = &s.write else {
        panic!("an update")
    };
    assert_eq!(update.channel, Some(store::Channel::Account));
    assert_eq!(update.payer_name.as_deref(), Some("ADA OBI"));
    assert_eq!(update.payer_bank.as_deref(), Some("GTBank"));
    assert!(update.card.is_none());
    assert_eq!(
        update.decision.as_ref().map(|d| d.reason.as_str()),
        Some("transfer")
    );
    assert!(s.enqueue.is_empty(), "a settled transfer is not forwarded");
    assert_eq!(s.durability, store::Durability::Full);
    // The core's relaxed changes stay relaxed in the store.
    let relaxed = core::Change {
        durability: core::Durability::Relaxed,
        ..change
    };
    let s = store_change(&relaxed, None).unwrap();
    assert_eq!(s.durability, store::Durability::Relaxed);
}
