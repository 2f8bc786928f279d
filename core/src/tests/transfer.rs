//! Pay by bank transfer (SPEC 7.7), in virtual time: registration
//! written ahead of the code, partial and full credits, back to the card,
//! cancel, abort, timeout, session closed, offline refusal, refused
//! registration, restart.

use super::*;

fn account() -> CollectionAccount {
    CollectionAccount {
        account_number: "9900000001".into(),
        account_name: "AFRO FEST COLLECTIONS".into(),
        bank_name: "Kler MFB".into(),
    }
}

fn payer() -> Payer {
    Payer {
        name: "ADA OBI".into(),
        bank: "GTBank".into(),
        account_number: None,
    }
}

fn with_account(online: bool) -> Shell {
    let restored = RestoredState {
        collection_account: Some(account()),
        ..RestoredState::default()
    };
    Shell::with(config(), online, restored)
}

fn registrations(out: &[Output]) -> Vec<&TransferRegistration> {
    outbox(out)
        .into_iter()
        .filter_map(|i| match i {
            OutboxItem::TransferRegister(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn cancels(out: &[Output]) -> Vec<&Reference> {
    outbox(out)
        .into_iter()
        .filter_map(|i| match i {
            OutboxItem::TransferCancel { reference } => Some(reference),
            _ => None,
        })
        .collect()
}

fn outbox_acks(out: &[Output]) -> Vec<&CommandAck> {
    outbox(out)
        .into_iter()
        .filter_map(|i| match i {
            OutboxItem::Ack(a) => Some(a),
            _ => None,
        })
        .collect()
}

impl Shell {
    /// A partner sale switched to transfer, registered and showing its code.
    fn transfer_waiting(&mut self, amount: &str) -> Reference {
        self.sale_waiting(amount, OfflinePolicy::PreferOnline);
        let out = self.press(Button::Down);
        assert_eq!(registrations(&out).len(), 1, "{out:?}");
        self.commit();
        assert_eq!(self.t.screen().screen.name(), "transfer");
        self.t.active_reference().unwrap().clone()
    }

    fn credit(&mut self, reference: &Reference, amount: &str, total: &str) -> Vec<Output> {
        let command_id = self.command_id();
        self.input(Input::Command(Command::TransferReceived(
            TransferReceivedCommand {
                command_id,
                reference: reference.clone(),
                amount: money(amount),
                total_received: money(total),
                payer: payer(),
                credited_at: UnixMillis(self.now.wall.0),
            },
        )))
    }
}

#[test]
fn the_code_is_a_pure_function_of_terminal_and_sequence() {
    let tid = |s: &str| TerminalId::new(s).unwrap();
    let r = |t: &str, n: u64| Reference::for_sequence(&tid(t), n);
    let code = |t: &str, n: u64| transfer_code(&tid(t), &r(t, n)).as_str().to_string();
    assert_eq!(code("pos_3f1e2d_007", 42), "070042");
    assert_eq!(code("pos_3f1e2d_001", 12_345), "012345");
    // Terminal 123 is 23 modulo 100.
    assert_eq!(code("pos_3f1e2d_123", 9), "230009");
    // No trailing digits: a stable hash, the same every time, six digits.
    let a = code("kiosk", 5);
    assert_eq!(a, code("kiosk", 5));
    assert_eq!(a.len(), 6);
    assert!(a.ends_with("0005"), "{a}");
    // Two terminals of a session never share a code for the same sequence.
    assert_ne!(code("pos_3f1e2d_001", 5), code("pos_3f1e2d_002", 5));
}

#[test]
fn down_registers_first_and_shows_the_code_only_once_committed() {
    let mut s = with_account(true);
    s.sale_waiting("2500.00", OfflinePolicy::PreferOnline);
    let reference = s.t.active_reference().unwrap().clone();
    let out = s.press(Button::Down);
    assert!(out.iter().any(|o| matches!(o, Output::StopReader)));
    let regs = registrations(&out);
    assert_eq!(regs.len(), 1);
    assert_eq!(regs[0].reference, reference);
    assert_eq!(regs[0].amount, money("2500.00"));
    assert_eq!(regs[0].code.as_str(), "010001");
    assert!(regs[0].payment_id.is_some());
    assert_eq!(regs[0].expires_at.0, s.now.wall.0 + 600_000);
    // The code is recorded with the row, in the same commit.
    let p = persists(&out);
    let Some(TxWrite::Update(u)) = &p[0].change.tx else {
        panic!("an update")
    };
    assert_eq!(u.transfer_code.as_ref().map(|c| c.as_str()), Some("010001"));
    assert!(
        screen_names(&out).is_empty(),
        "nothing shown before the commit"
    );
    let out = s.commit();
    let shown = screens(&out);
    let Some(Screen::Transfer {
        code,
        account: Some(acc),
        status,
        ..
    }) = shown.last()
    else {
        panic!("transfer screen, got {shown:?}")
    };
    assert_eq!(code.as_ref().map(|c| c.as_str()), Some("010001"));
    assert_eq!(acc.account_number, "9900000001");
    assert_eq!(*status, TransferStatus::Waiting);
    // Taps are ignored while the transfer waits.
    let out = s.tap("visa");
    assert!(persists(&out).is_empty());
    assert_eq!(s.t.screen().screen.name(), "transfer");
}

#[test]
fn the_tap_deadline_stops_and_the_transfer_deadline_applies() {
    let mut s = with_account(true);
    let reference = s.transfer_waiting("2500.00");
    // Well past the 60 s tap deadline: still waiting.
    s.advance(120_000);
    assert_eq!(s.t.screen().screen.name(), "transfer");
    assert_eq!(s.t.poll_timeout(), Some(Millis(600_000)));
    let out = s.advance(480_000);
    assert_eq!(states(&out), vec![TxState::TimedOut]);
    assert_eq!(cancels(&out), vec![&reference]);
    assert_eq!(events(&out), vec![(PaymentEventStatus::TimedOut, None)]);
    s.commit();
    assert_eq!(s.t.screen().screen.name(), "cancelled");
    // A late credit changes nothing (the backend keeps it unmatched).
    let out = s.credit(&reference, "2500.00", "2500.00");
    assert!(persists(&out).is_empty());
    assert_eq!(direct_acks(&out), vec![(AckStatus::Accepted, None)]);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Report(Report::TransferIgnored { .. })))
    );
}

#[test]
fn partial_then_full_credit_approves_after_the_commit_only() {
    let mut s = with_account(true);
    let reference = s.transfer_waiting("2500.00");
    let out = s.credit(&reference, "1000.00", "1000.00");
    assert!(persists(&out).is_empty());
    assert_eq!(direct_acks(&out), vec![(AckStatus::Accepted, None)]);
    let m = s.t.screen();
    assert_eq!(
        m.screen.message().as_deref(),
        Some("Received NGN 1,000.00 of NGN 2,500.00")
    );
    let out = s.credit(&reference, "1500.00", "2500.00");
    assert!(screen_names(&out).iter().all(|n| *n != "approved"));
    assert_eq!(states(&out), vec![TxState::Approved]);
    let p = persists(&out);
    let Some(TxWrite::Update(u)) = &p[0].change.tx else {
        panic!("an update")
    };
    assert_eq!(u.channel, Some(Channel::Account));
    assert_eq!(u.payer.as_ref().map(|p| p.name.as_str()), Some("ADA OBI"));
    assert_eq!(u.decision, Some(Decision::Transfer));
    assert!(u.card.is_none());
    // Not forwarded (the backend recorded it); the ack goes with the commit.
    assert!(submissions(&out).is_empty());
    assert_eq!(outbox_acks(&out).len(), 1);
    assert!(direct_acks(&out).is_empty());
    let out = s.commit();
    let Some(Screen::Approved { message, .. }) = screens(&out).last().copied() else {
        panic!("approved")
    };
    assert_eq!(message.as_deref(), Some("Transfer received"));
    assert!(authorizations(&out).is_empty());
    // A second credit for the settled payment changes nothing.
    let out = s.credit(&reference, "2500.00", "5000.00");
    assert!(persists(&out).is_empty());
    assert_eq!(direct_acks(&out), vec![(AckStatus::Accepted, None)]);
    assert_eq!(s.t.screen().screen.name(), "approved");
}

#[test]
fn up_cancels_the_registration_then_offers_the_card_again() {
    let mut s = with_account(true);
    let reference = s.transfer_waiting("2500.00");
    s.advance(50_000);
    let out = s.press(Button::Up);
    assert_eq!(cancels(&out), vec![&reference]);
    assert!(states(&out).is_empty(), "the payment stays pending");
    assert!(!out.iter().any(|o| matches!(o, Output::StartReader { .. })));
    let out = s.commit();
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::StartReader { timeout_ms: 60_000 }))
    );
    assert_eq!(s.t.screen().screen.name(), "tap_card");
    // A fresh tap deadline from now.
    assert_eq!(s.t.poll_timeout(), Some(Millis(110_000)));
    // And the card still pays, same reference.
    let out = s.tap("visa");
    assert_eq!(states(&out), vec![TxState::Authorizing]);
    s.commit();
    assert_eq!(s.t.active_reference(), Some(&reference));
    // A credit for the cancelled transfer changes nothing.
    let out = s.credit(&reference, "2500.00", "2500.00");
    assert!(persists(&out).is_empty());
}

#[test]
fn cancel_and_abort_while_waiting_end_aborted_and_cancel_the_registration() {
    let mut s = with_account(true);
    let reference = s.transfer_waiting("2500.00");
    let out = s.press(Button::Cancel);
    assert_eq!(states(&out), vec![TxState::Aborted]);
    assert_eq!(cancels(&out), vec![&reference]);
    assert_eq!(events(&out), vec![(PaymentEventStatus::Aborted, None)]);
    s.commit();
    assert_eq!(s.t.screen().screen.name(), "cancelled");

    let mut s = with_account(true);
    let reference = s.transfer_waiting("2500.00");
    let command_id = s.command_id();
    let out = s.input(Input::Command(Command::Abort(AbortCommand {
        command_id,
        payment_id: PaymentId::new("pay-1").unwrap(),
    })));
    assert_eq!(direct_acks(&out), vec![(AckStatus::Accepted, None)]);
    assert_eq!(states(&out), vec![TxState::Aborted]);
    assert_eq!(cancels(&out), vec![&reference]);
}

#[test]
fn an_abort_during_the_registration_commit_cancels_once_it_is_durable() {
    let mut s = with_account(true);
    s.sale_waiting("2500.00", OfflinePolicy::PreferOnline);
    let reference = s.t.active_reference().unwrap().clone();
    s.press(Button::Down);
    let out = s.press(Button::Cancel);
    assert!(persists(&out).is_empty());
    let out = s.commit();
    assert_eq!(states(&out), vec![TxState::Aborted]);
    assert_eq!(cancels(&out), vec![&reference]);
    assert!(screen_names(&out).iter().all(|n| *n != "transfer"));
}

#[test]
fn session_closed_while_waiting_is_an_abort_with_the_cancellation() {
    let mut s = with_account(true);
    let reference = s.transfer_waiting("2500.00");
    let command_id = s.command_id();
    let out = s.input(Input::Command(Command::SessionClosed(
        SessionClosedCommand {
            command_id,
            totals: None,
        },
    )));
    assert_eq!(states(&out), vec![TxState::Aborted]);
    assert_eq!(cancels(&out), vec![&reference]);
    assert_eq!(
        events(&out),
        vec![(PaymentEventStatus::Aborted, Some("session_closed".into()))]
    );
    s.commit();
    assert_eq!(s.t.screen().screen.name(), "cancelled");
}

#[test]
fn offline_down_offers_the_card_only_and_registers_nothing() {
    let mut s = with_account(false);
    s.sale_waiting("2500.00", OfflinePolicy::PreferOnline);
    let out = s.press(Button::Down);
    assert!(persists(&out).is_empty());
    assert!(!out.iter().any(|o| matches!(o, Output::StopReader)));
    let m = s.t.screen();
    let Screen::Transfer { status, code, .. } = &m.screen else {
        panic!("transfer screen")
    };
    assert_eq!(*status, TransferStatus::NeedsNetwork);
    assert!(code.is_none());
    s.press(Button::Up);
    assert_eq!(s.t.screen().screen.name(), "tap_card");
    // The card still works offline.
    let out = s.tap("visa");
    assert_eq!(states(&out), vec![TxState::OfflineApproved]);
}

#[test]
fn without_a_collection_account_transfer_is_not_offered() {
    let mut s = Shell::new(true);
    s.sale_waiting("2500.00", OfflinePolicy::PreferOnline);
    let out = s.press(Button::Down);
    assert!(persists(&out).is_empty());
    let m = s.t.screen();
    let Screen::Transfer { status, .. } = &m.screen else {
        panic!("transfer screen")
    };
    assert_eq!(*status, TransferStatus::NotForEvent);
}

#[test]
fn a_lost_link_keeps_waiting_and_says_so() {
    let mut s = with_account(true);
    let reference = s.transfer_waiting("2500.00");
    s.input(Input::LinkChanged { online: false });
    let m = s.t.screen();
    let Screen::Transfer { status, .. } = &m.screen else {
        panic!("transfer screen")
    };
    assert_eq!(*status, TransferStatus::NoNetwork);
    s.input(Input::LinkChanged { online: true });
    let out = s.credit(&reference, "2500.00", "2500.00");
    assert_eq!(states(&out), vec![TxState::Approved]);
}

#[test]
fn a_refused_registration_says_unavailable_and_up_goes_back_without_a_cancel() {
    let mut s = with_account(true);
    let reference = s.transfer_waiting("2500.00");
    s.input(Input::TransferRefused {
        reference: reference.clone(),
        code: "code_in_use".into(),
    });
    let m = s.t.screen();
    let Screen::Transfer { status, code, .. } = &m.screen else {
        panic!("transfer screen")
    };
    assert_eq!(*status, TransferStatus::Unavailable);
    assert!(code.is_none(), "no code to pay with");
    // The parked registration would hold a cancel back: none is queued.
    let out = s.press(Button::Up);
    assert!(cancels(&out).is_empty());
    assert_eq!(s.t.screen().screen.name(), "tap_card");
    let out = s.press(Button::Cancel);
    assert!(cancels(&out).is_empty());
    assert_eq!(states(&out), vec![TxState::Aborted]);
}

#[test]
fn refunds_and_busy_rules_stay_as_for_cards() {
    let mut s = with_account(true);
    s.transfer_waiting("2500.00");
    // A partner sale while a transfer waits: busy.
    let out = s.sale("100.00", OfflinePolicy::PreferOnline);
    assert_eq!(
        direct_acks(&out),
        vec![(AckStatus::Rejected, Some(AckReason::Busy))]
    );
    assert!(s.t.is_busy());
}

#[test]
fn a_sale_paid_by_transfer_is_not_refunded_at_the_terminal() {
    let mut s = Shell::new(true);
    s.press(Button::Menu);
    s.press(Button::Digit(2));
    s.input(Input::Answer(Answer::RecentSales(Vec::new())));
    for d in [4, 2] {
        s.press(Button::Digit(d));
    }
    s.press(Button::Ok);
    let out = s.input(Input::Answer(Answer::OriginalPaidByTransfer));
    assert!(persists(&out).is_empty());
    let m = s.t.screen();
    let message = m.screen.message().unwrap_or_default();
    assert!(
        message.starts_with("Sale no. 42 was paid by bank transfer: no card to tap"),
        "{message}"
    );
    assert_eq!(m.screen.name(), "menu");
}

#[test]
fn boot_with_a_pending_transfer_fails_it_and_cancels_the_registration() {
    let r = Reference::new("pos_3f1e2d_001-000009").unwrap();
    let restored = RestoredState {
        interrupted: vec![InterruptedTx {
            reference: r.clone(),
            payment_id: None,
            state: TxState::Pending,
            transfer: true,
        }],
        ..RestoredState::default()
    };
    let mut t = Terminal::new(config(), restored);
    let mut out = Vec::new();
    while let Some(o) = t.poll() {
        out.push(o);
    }
    assert_eq!(states(&out), vec![TxState::Failed]);
    assert_eq!(cancels(&out), vec![&r]);
}
