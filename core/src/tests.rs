//! Unit tests: one per rule of SPEC section 5, with virtual time (the
//! cashier's desk, SPEC 7, in `tests/desk.rs`).

use proto::{Money, PaymentId, Reference, TerminalId, Total};

use super::*;

mod desk;
mod transfer;

const TID: &str = "pos_3f1e2d_001";

pub(super) fn config() -> CoreConfig {
    CoreConfig::new(TerminalId::new(TID).unwrap(), "Gate 3", "Afro Fest")
}

pub(super) fn money(s: &str) -> Money {
    Money::parse(s).unwrap()
}

/// A valid card token standing for the test name `name` (its bytes in
/// hex, padded to 32 digits): the same name, the same card.
pub(super) fn token(name: &str) -> CardToken {
    let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
    CardToken::new(format!("{hex:0<32}")).unwrap()
}

pub(super) fn card(name: &str) -> Card {
    Card {
        token: token(name),
        last4: Last4::new("1111").unwrap(),
        brand: CardBrand::Visa,
        entry_mode: EntryMode::Contactless,
    }
}

/// Plays the shell by hand: collects outputs and remembers uncommitted ops.
struct Shell {
    t: Terminal,
    now: Now,
    uncommitted: Vec<OpId>,
    next_command: u32,
    /// The store's durable reference counter, as the shell would use it.
    next_sequence: u64,
}

impl Shell {
    fn new(online: bool) -> Shell {
        Shell::with(config(), online, RestoredState::default())
    }

    fn with(config: CoreConfig, online: bool, mut restored: RestoredState) -> Shell {
        restored.online = online;
        let mut s = Shell {
            t: Terminal::new(config, restored),
            now: Now::new(Millis(0), UnixMillis(1_763_719_200_000)),
            uncommitted: Vec::new(),
            next_command: 0,
            next_sequence: 1,
        };
        s.drain();
        s
    }

    fn drain(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        while let Some(o) = self.t.poll() {
            if let Output::Persist(p) = &o {
                self.uncommitted.push(p.op_id);
            }
            out.push(o);
        }
        out
    }

    fn input(&mut self, i: Input) -> Vec<Output> {
        self.t.handle(self.now, i);
        self.drain()
    }

    /// Confirm every uncommitted op, in order (and those that produces).
    fn commit(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        while !self.uncommitted.is_empty() {
            let op_id = self.uncommitted.remove(0);
            out.extend(self.input(Input::Persisted { op_id }));
        }
        out
    }

    fn advance(&mut self, ms: u64) -> Vec<Output> {
        self.now.mono = self.now.mono.after(ms);
        self.now.wall = UnixMillis(self.now.wall.0 + i64::try_from(ms).unwrap());
        self.input(Input::TimerDue)
    }

    fn mint(&mut self) -> Reference {
        let r = Reference::for_sequence(&TerminalId::new(TID).unwrap(), self.next_sequence);
        self.next_sequence += 1;
        r
    }

    fn command_id(&mut self) -> CommandId {
        self.next_command += 1;
        CommandId(format!("cmd-{}", self.next_command))
    }

    fn sale(&mut self, amount: &str, policy: OfflinePolicy) -> Vec<Output> {
        let command_id = self.command_id();
        let reference = self.mint();
        self.input(Input::Command(Command::Sale(SaleCommand {
            reference,
            command_id,
            payment_id: PaymentId::new(format!("pay-{}", self.next_command)).unwrap(),
            amount: money(amount),
            partner_reference: None,
            expires_at: None,
            offline_policy: policy,
        })))
    }

    /// A sale committed and waiting for the card.
    fn sale_waiting(&mut self, amount: &str, policy: OfflinePolicy) {
        self.sale(amount, policy);
        self.commit();
        assert_eq!(self.t.screen().screen.name(), "tap_card");
    }

    fn tap(&mut self, token: &str) -> Vec<Output> {
        self.input(Input::CardRead {
            card: card(token),
            app: CardApp::default(),
        })
    }

    fn answer(&mut self, result: AuthResult) -> Vec<Output> {
        let reference = self.t.active_reference().unwrap().clone();
        self.input(Input::AuthAnswer {
            reference,
            result,
            receipt_url: None,
        })
    }

    /// An online sale approved and shown; returns its reference.
    fn approved_online_sale(&mut self, amount: &str, token: &str) -> Reference {
        self.sale_waiting(amount, OfflinePolicy::PreferOnline);
        self.tap(token);
        self.commit();
        let reference = self.t.active_reference().unwrap().clone();
        self.answer(AuthResult::Approved {
            auth_code: Some("A1".into()),
            transaction_id: "tx1".into(),
        });
        self.commit();
        assert_eq!(self.t.screen().screen.name(), "approved");
        reference
    }
}

fn screens(out: &[Output]) -> Vec<&Screen> {
    out.iter()
        .filter_map(|o| match o {
            Output::Render(m) => Some(&m.screen),
            _ => None,
        })
        .collect()
}

fn screen_names(out: &[Output]) -> Vec<&'static str> {
    screens(out).iter().map(|s| s.name()).collect()
}

fn persists(out: &[Output]) -> Vec<&Persist> {
    out.iter()
        .filter_map(|o| match o {
            Output::Persist(p) => Some(p),
            _ => None,
        })
        .collect()
}

fn states(out: &[Output]) -> Vec<TxState> {
    persists(out)
        .iter()
        .filter_map(|p| p.change.tx.as_ref().map(TxWrite::state))
        .collect()
}

fn outbox(out: &[Output]) -> Vec<&OutboxItem> {
    persists(out)
        .iter()
        .flat_map(|p| p.change.outbox.iter())
        .collect()
}

fn events(out: &[Output]) -> Vec<(PaymentEventStatus, Option<String>)> {
    outbox(out)
        .iter()
        .filter_map(|i| match i {
            OutboxItem::PaymentEvent { status, reason, .. } => Some((*status, reason.clone())),
            _ => None,
        })
        .collect()
}

fn direct_acks(out: &[Output]) -> Vec<(AckStatus, Option<AckReason>)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Ack(a) => Some((a.status, a.reason)),
            _ => None,
        })
        .collect()
}

fn authorizations(out: &[Output]) -> Vec<&AuthRequest> {
    out.iter()
        .filter_map(|o| match o {
            Output::Authorize(a) => Some(a),
            _ => None,
        })
        .collect()
}

fn submissions(out: &[Output]) -> Vec<&Submission> {
    outbox(out)
        .iter()
        .filter_map(|i| match i {
            OutboxItem::Submit(s) => Some(s),
            _ => None,
        })
        .collect()
}

fn has_reversal(out: &[Output], reference: &Reference) -> bool {
    outbox(out)
        .iter()
        .any(|i| matches!(i, OutboxItem::Reversal { reference: r } if r == reference))
}

// ------------------------------------------------------ the happy path ---

#[test]
fn online_sale_is_written_ahead_at_every_step() {
    let mut s = Shell::new(true);
    let out = s.sale("2000.00", OfflinePolicy::PreferOnline);
    // The pending row, the accepted ack and in_progress in one commit;
    // nothing shown or sent yet.
    let p = persists(&out);
    assert_eq!(p.len(), 1);
    let Some(TxWrite::Insert(new)) = &p[0].change.tx else {
        panic!("expected an insert");
    };
    assert_eq!(new.reference.as_str(), "pos_3f1e2d_001-000001");
    assert_eq!(new.state, TxState::Pending);
    assert!(matches!(
        p[0].change.outbox.as_slice(),
        [
            OutboxItem::Ack(CommandAck {
                status: AckStatus::Accepted,
                ..
            }),
            OutboxItem::PaymentEvent {
                status: PaymentEventStatus::InProgress,
                ..
            }
        ]
    ));
    assert!(screen_names(&out).is_empty());
    assert!(!out.iter().any(|o| matches!(o, Output::StartReader { .. })));

    let out = s.commit();
    assert_eq!(screen_names(&out), ["tap_card"]);
    assert!(out.contains(&Output::StartReader { timeout_ms: 60_000 }));
    assert_eq!(s.t.screen().screen.amount(), Some(money("2000.00")));

    let out = s.tap("tok-a");
    assert_eq!(screen_names(&out), ["processing"]);
    assert!(out.contains(&Output::Beep(Beep::Read)));
    assert_eq!(states(&out), [TxState::Authorizing]);
    assert!(authorizations(&out).is_empty(), "sent before commit");

    let out = s.commit();
    let auth = authorizations(&out);
    assert_eq!(auth.len(), 1);
    assert_eq!(auth[0].submission.reference, new.reference);
    assert!(!auth[0].submission.offline);

    let out = s.answer(AuthResult::Approved {
        auth_code: Some("123456".into()),
        transaction_id: "tx-9".into(),
    });
    assert_eq!(states(&out), [TxState::Approved]);
    assert!(screen_names(&out).is_empty(), "approved before commit");
    assert!(s.t.is_busy());

    let out = s.commit();
    assert_eq!(screen_names(&out), ["approved"]);
    assert!(out.contains(&Output::Beep(Beep::Success)));
    assert!(!s.t.is_busy());

    // Result screen goes back to idle after a few seconds.
    assert_eq!(s.t.poll_timeout(), Some(s.now.mono.after(5_000)));
    let out = s.advance(5_000);
    assert_eq!(screen_names(&out), ["idle"]);
    assert_eq!(s.t.poll_timeout(), None, "idle means idle");
}

/// SPEC 5.14: a refusal that is not the issuer's (a 4xx for credentials,
/// clock, session...) is not shown as a bank decline.
#[test]
fn a_backend_refusal_is_a_terminal_problem_not_a_bank_decline() {
    let mut s = Shell::new(true);
    s.sale_waiting("10.00", OfflinePolicy::PreferOnline);
    s.tap("tok");
    s.commit();
    let out = s.answer(AuthResult::Refused {
        code: "payment_settled".into(),
    });
    assert_eq!(states(&out), [TxState::Declined]);
    let Some(TxWrite::Update(u)) = &persists(&out)[0].change.tx else {
        panic!("expected an update");
    };
    assert_eq!(u.reason.as_deref(), Some("payment_settled"));
    assert!(screen_names(&out).is_empty(), "shown before commit");
    let out = s.commit();
    let sc = screens(&out);
    assert_eq!(sc[0].name(), "declined");
    assert_eq!(
        sc[0].message().as_deref(),
        Some("Not approved: terminal problem. No charge")
    );
    assert!(!s.t.is_busy());
}

#[test]
fn backend_decline_is_shown_after_commit() {
    let mut s = Shell::new(true);
    s.sale_waiting("10.00", OfflinePolicy::PreferOnline);
    s.tap("tok");
    s.commit();
    let out = s.answer(AuthResult::Declined {
        reason: "insufficient_funds".into(),
    });
    assert_eq!(states(&out), [TxState::Declined]);
    assert!(screen_names(&out).is_empty());
    let out = s.commit();
    let sc = screens(&out);
    assert_eq!(sc[0].name(), "declined");
    assert_eq!(sc[0].message().as_deref(), Some("Insufficient funds"));
}

// ------------------------------------------- rule 1: one at a time ---

#[test]
fn sale_while_busy_is_rejected_busy() {
    let mut s = Shell::new(true);
    s.sale_waiting("10.00", OfflinePolicy::PreferOnline);
    let first = s.t.active_reference().cloned();
    let out = s.sale("20.00", OfflinePolicy::PreferOnline);
    assert_eq!(
        direct_acks(&out),
        [(AckStatus::Rejected, Some(AckReason::Busy))]
    );
    assert!(persists(&out).is_empty());
    assert_eq!(s.t.active_reference().cloned(), first);
}

#[test]
fn expired_sale_is_rejected() {
    let mut s = Shell::new(true);
    let reference = s.mint();
    let out = s.input(Input::Command(Command::Sale(SaleCommand {
        reference,
        command_id: CommandId("c".into()),
        payment_id: PaymentId::new("p").unwrap(),
        amount: money("1.00"),
        partner_reference: None,
        expires_at: Some(s.now.wall),
        offline_policy: OfflinePolicy::PreferOnline,
    })));
    assert_eq!(
        direct_acks(&out),
        [(AckStatus::Rejected, Some(AckReason::Expired))]
    );
    assert!(!s.t.is_busy());

    let future = UnixMillis(s.now.wall.0 + 1);
    let reference = s.mint();
    let out = s.input(Input::Command(Command::Sale(SaleCommand {
        reference,
        command_id: CommandId("c2".into()),
        payment_id: PaymentId::new("p2").unwrap(),
        amount: money("1.00"),
        partner_reference: None,
        expires_at: Some(future),
        offline_policy: OfflinePolicy::PreferOnline,
    })));
    assert!(direct_acks(&out).is_empty());
    assert!(s.t.is_busy());
}

#[test]
fn session_not_active_rejects_and_shows_totals() {
    let mut s = Shell::new(true);
    let totals = SessionTotals {
        sales_count: 3,
        sales_total: Total(600_000),
        refunds_count: 0,
        refunds_total: Total(0),
    };
    let out = s.input(Input::SessionStatus {
        status: SessionStatus::Closed,
        totals: Some(totals),
    });
    assert_eq!(screen_names(&out), ["session_closed"]);
    let out = s.sale("10.00", OfflinePolicy::PreferOnline);
    assert_eq!(
        direct_acks(&out),
        [(AckStatus::Rejected, Some(AckReason::SessionClosed))]
    );
    assert!(matches!(
        s.t.screen().screen,
        Screen::SessionClosed { totals: Some(t), .. } if t == totals
    ));
    // Back to active: idle again, sales accepted.
    let out = s.input(Input::SessionStatus {
        status: SessionStatus::Active,
        totals: None,
    });
    assert_eq!(screen_names(&out), ["idle"]);
    s.sale_waiting("10.00", OfflinePolicy::PreferOnline);
}

#[test]
fn session_closed_command_cancels_a_waiting_payment() {
    let mut s = Shell::new(true);
    s.sale_waiting("10.00", OfflinePolicy::PreferOnline);
    let out = s.input(Input::Command(Command::SessionClosed(
        SessionClosedCommand {
            command_id: CommandId("close".into()),
            totals: None,
        },
    )));
    assert_eq!(direct_acks(&out), [(AckStatus::Accepted, None)]);
    assert_eq!(states(&out), [TxState::Aborted]);
    assert!(out.contains(&Output::StopReader));
    s.commit();
    assert_eq!(s.t.screen().screen.name(), "cancelled");
    let out = s.advance(5_000);
    assert_eq!(screen_names(&out), ["session_closed"]);
}

#[test]
fn session_closed_before_the_tap_screen_cancels_the_payment() {
    let mut s = Shell::new(true);
    s.sale("10.00", OfflinePolicy::PreferOnline);
    s.input(Input::Command(Command::SessionClosed(
        SessionClosedCommand {
            command_id: CommandId("close".into()),
            totals: None,
        },
    )));
    let out = s.commit();
    assert_eq!(states(&out), [TxState::Aborted]);
    assert!(!out.iter().any(|o| matches!(o, Output::StartReader { .. })));
}

#[test]
fn session_closed_after_the_card_lets_the_payment_finish() {
    let mut s = Shell::new(true);
    s.sale_waiting("10.00", OfflinePolicy::PreferOnline);
    s.tap("tok");
    s.commit();
    let out = s.input(Input::Command(Command::SessionClosed(
        SessionClosedCommand {
            command_id: CommandId("close".into()),
            totals: None,
        },
    )));
    assert!(persists(&out).is_empty());
    s.answer(AuthResult::Approved {
        auth_code: None,
        transaction_id: "t".into(),
    });
    s.commit();
    assert_eq!(s.t.screen().screen.name(), "approved");
    let out = s.advance(5_000);
    assert_eq!(screen_names(&out), ["session_closed"]);
}

// ---------------------------------------------- rule 2: tap timeout ---

#[test]
fn tap_screen_times_out() {
    let mut cfg = config();
    cfg.tap_timeout_ms = 30_000;
    let mut s = Shell::with(cfg, true, RestoredState::default());
    s.sale_waiting("10.00", OfflinePolicy::PreferOnline);
    assert_eq!(s.t.poll_timeout(), Some(s.now.mono.after(30_000)));
    let out = s.advance(29_999);
    assert!(persists(&out).is_empty());
    let out = s.advance(1);
    assert_eq!(states(&out), [TxState::TimedOut]);
    assert_eq!(events(&out), [(PaymentEventStatus::TimedOut, None)]);
    assert!(out.contains(&Output::StopReader));
    let out = s.commit();
    assert_eq!(screen_names(&out), ["cancelled"]);
    assert!(!s.t.is_busy());
    let out = s.advance(5_000);
    assert_eq!(screen_names(&out), ["idle"]);
}

// -------------------------------------------------------- rule 3: abort ---

#[test]
fn abort_command_before_the_card_aborts() {
    let mut s = Shell::new(true);
    s.sale_waiting("10.00", OfflinePolicy::PreferOnline);
    let out = s.input(Input::Command(Command::Abort(AbortCommand {
        command_id: CommandId("ab".into()),
        payment_id: PaymentId::new("pay-1").unwrap(),
    })));
    assert_eq!(direct_acks(&out), [(AckStatus::Accepted, None)]);
    assert_eq!(states(&out), [TxState::Aborted]);
    assert_eq!(events(&out), [(PaymentEventStatus::Aborted, None)]);
    let out = s.commit();
    assert_eq!(screen_names(&out), ["cancelled"]);
    // A card after the abort is ignored.
    let out = s.tap("tok");
    assert!(persists(&out).is_empty());
}

#[test]
fn cancel_button_before_the_card_aborts() {
    let mut s = Shell::new(true);
    s.sale_waiting("10.00", OfflinePolicy::PreferOnline);
    let out = s.input(Input::Button(Button::Cancel));
    assert_eq!(states(&out), [TxState::Aborted]);
    assert_eq!(events(&out), [(PaymentEventStatus::Aborted, None)]);
    s.commit();
    assert_eq!(s.t.screen().screen.name(), "cancelled");
}

#[test]
fn abort_before_the_pending_row_is_durable_aborts_without_reader() {
    let mut s = Shell::new(true);
    s.sale("10.00", OfflinePolicy::PreferOnline);
    let out = s.input(Input::Button(Button::Cancel));
    assert!(persists(&out).is_empty());
    let out = s.commit();
    assert_eq!(states(&out), [TxState::Aborted]);
    assert!(!out.iter().any(|o| matches!(o, Output::StartReader { .. })));
    assert_eq!(s.t.screen().screen.name(), "cancelled");
}

#[test]
fn abort_after_the_card_is_too_late_and_the_payment_goes_on() {
    let mut s = Shell::new(true);
    s.sale_waiting("10.00", OfflinePolicy::PreferOnline);
    s.tap("tok");
    s.commit();
    let out = s.input(Input::Command(Command::Abort(AbortCommand {
        command_id: CommandId("ab".into()),
        payment_id: PaymentId::new("pay-1").unwrap(),
    })));
    assert_eq!(direct_acks(&out), [(AckStatus::Accepted, None)]);
    assert_eq!(
        events(&out),
        [(
            PaymentEventStatus::AbortTooLate,
            Some("card_already_read".into())
        )]
    );
    assert!(states(&out).is_empty());
    // The cancel button too: no second event.
    let out = s.input(Input::Button(Button::Cancel));
    assert!(persists(&out).is_empty());
    s.commit();
    s.answer(AuthResult::Approved {
        auth_code: None,
        transaction_id: "t".into(),
    });
    s.commit();
    let m = s.t.screen();
    assert_eq!(m.screen.name(), "approved");
    assert_eq!(
        m.screen.message().as_deref(),
        Some("Too late to cancel: payment approved")
    );
    // A late abort of the finished payment is also too late.
    let out = s.input(Input::Command(Command::Abort(AbortCommand {
        command_id: CommandId("ab2".into()),
        payment_id: PaymentId::new("pay-1").unwrap(),
    })));
    assert_eq!(direct_acks(&out), [(AckStatus::Accepted, None)]);
    assert_eq!(events(&out), [(PaymentEventStatus::AbortTooLate, None)]);
}

#[test]
fn late_abort_of_a_timed_out_payment_repeats_timed_out() {
    let mut s = Shell::new(true);
    s.sale_waiting("10.00", OfflinePolicy::PreferOnline);
    s.advance(60_000);
    s.commit();
    let out = s.input(Input::Command(Command::Abort(AbortCommand {
        command_id: CommandId("ab".into()),
        payment_id: PaymentId::new("pay-1").unwrap(),
    })));
    assert_eq!(direct_acks(&out), [(AckStatus::Accepted, None)]);
    assert_eq!(events(&out), [(PaymentEventStatus::TimedOut, None)]);
}

#[test]
fn abort_of_an_unknown_payment_is_rejected() {
    let mut s = Shell::new(true);
    let out = s.input(Input::Command(Command::Abort(AbortCommand {
        command_id: CommandId("ab".into()),
        payment_id: PaymentId::new("nope").unwrap(),
    })));
    assert_eq!(
        direct_acks(&out),
        [(AckStatus::Rejected, Some(AckReason::UnknownTransaction))]
    );
}

// ------------------------------------ rule 5: online/offline decision ---

#[test]
fn link_down_before_tap_approves_offline_within_limits() {
    let mut s = Shell::new(false);
    s.sale_waiting("100.00", OfflinePolicy::PreferOnline);
    let out = s.tap("tok");
    assert_eq!(states(&out), [TxState::OfflineApproved]);
    let subs = submissions(&out);
    assert_eq!(subs.len(), 1);
    assert!(subs[0].offline);
    assert!(authorizations(&out).is_empty());
    let Some(TxWrite::Update(u)) = &persists(&out)[0].change.tx else {
        panic!("expected an update");
    };
    assert_eq!(u.decision, Some(Decision::OfflineLinkDown));
    assert!(screen_names(&out).iter().all(|n| *n != "approved"));
    let out = s.commit();
    let sc = screens(&out);
    assert!(matches!(
        sc[0],
        Screen::Approved {
            offline_approval: true,
            ..
        }
    ));
    assert!(s.t.screen().offline);
    assert_eq!(s.t.exposure().count(), 1);
    assert_eq!(s.t.exposure().total(), Total(10_000));
}

#[test]
fn require_online_with_link_down_is_refused_without_sending() {
    let mut s = Shell::new(false);
    s.sale_waiting("100.00", OfflinePolicy::RequireOnline);
    let out = s.tap("tok");
    assert_eq!(states(&out), [TxState::Declined]);
    assert!(submissions(&out).is_empty());
    assert_eq!(
        events(&out),
        [(PaymentEventStatus::Failed, Some("online_required".into()))]
    );
    let out = s.commit();
    assert!(authorizations(&out).is_empty());
    let sc = screens(&out);
    assert_eq!(sc[0].name(), "declined");
    assert_eq!(
        sc[0].message().as_deref(),
        Some("Online payment required, network unavailable. No charge")
    );
}

#[test]
fn unknown_outcome_within_limits_approves_offline_under_the_same_reference() {
    let mut s = Shell::new(true);
    s.sale_waiting("100.00", OfflinePolicy::PreferOnline);
    s.tap("tok");
    let out = s.commit();
    let reference = authorizations(&out)[0].submission.reference.clone();
    let out = s.answer(AuthResult::Unknown);
    assert_eq!(states(&out), [TxState::OfflineApproved]);
    let subs = submissions(&out);
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].reference, reference);
    assert!(subs[0].offline);
    assert!(!has_reversal(&out, &reference));
    // The decision (online, at the tap) is not overwritten; the fallback is
    // the reason.
    let Some(TxWrite::Update(u)) = &persists(&out)[0].change.tx else {
        panic!("expected an update");
    };
    assert_eq!(u.decision, None);
    assert_eq!(u.reason.as_deref(), Some("offline_after_unknown"));
    s.commit();
    assert_eq!(s.t.screen().screen.name(), "approved");
}

#[test]
fn unknown_outcome_with_require_online_declines_and_queues_a_reversal() {
    let mut s = Shell::new(true);
    s.sale_waiting("100.00", OfflinePolicy::RequireOnline);
    s.tap("tok");
    s.commit();
    let reference = s.t.active_reference().unwrap().clone();
    let out = s.answer(AuthResult::Unknown);
    assert_eq!(states(&out), [TxState::ReversalPending]);
    assert!(has_reversal(&out, &reference));
    assert!(submissions(&out).is_empty());
    let out = s.commit();
    let sc = screens(&out);
    assert_eq!(sc[0].name(), "declined");
    assert_eq!(
        sc[0].message().as_deref(),
        Some("Network problem, no charge")
    );
}

#[test]
fn unknown_outcome_beyond_limits_declines_and_queues_a_reversal() {
    let mut s = Shell::new(true);
    s.sale_waiting("60000.00", OfflinePolicy::PreferOnline);
    s.tap("tok");
    s.commit();
    let reference = s.t.active_reference().unwrap().clone();
    let out = s.answer(AuthResult::Unknown);
    assert!(has_reversal(&out, &reference));
    s.commit();
    assert_eq!(
        s.t.screen().screen.message().as_deref(),
        Some("Network problem, no charge")
    );
}

#[test]
fn the_core_guards_an_authorization_the_shell_never_answers() {
    let mut s = Shell::new(true);
    s.sale_waiting("100.00", OfflinePolicy::RequireOnline);
    s.tap("tok");
    s.commit();
    let reference = s.t.active_reference().unwrap().clone();
    assert_eq!(s.t.poll_timeout(), Some(s.now.mono.after(10_000)));
    let out = s.advance(10_000);
    assert!(has_reversal(&out, &reference));
    s.commit();
    // The late answer is ignored.
    let out = s.input(Input::AuthAnswer {
        reference,
        result: AuthResult::Approved {
            auth_code: None,
            transaction_id: "t".into(),
        },
        receipt_url: None,
    });
    assert!(persists(&out).is_empty());
    assert_eq!(s.t.screen().screen.name(), "declined");
}

// ------------------------------------------------- rule 6: offline limits ---

fn offline_shell(limits: OfflineLimits) -> Shell {
    let mut cfg = config();
    cfg.offline_limits = limits;
    Shell::with(cfg, false, RestoredState::default())
}

fn offline_tap(s: &mut Shell, amount: &str) -> Vec<Output> {
    s.sale_waiting(amount, OfflinePolicy::PreferOnline);
    let out = s.tap("tok");
    let mut all = out.clone();
    all.extend(s.commit());
    all
}

#[test]
fn floor_limit_is_inclusive_and_refused_at_command_time_when_offline() {
    let mut s = offline_shell(OfflineLimits {
        floor_limit: money("100.00"),
        ..OfflineLimits::default()
    });
    let out = offline_tap(&mut s, "100.00");
    assert_eq!(states(&out), [TxState::OfflineApproved]);
    let out = s.sale("100.01", OfflinePolicy::PreferOnline);
    assert_eq!(
        direct_acks(&out),
        [(AckStatus::Rejected, Some(AckReason::OfflineLimit))]
    );
    // The cashier sees the refusal too (SPEC 5.6), then the idle screen.
    let sc = screens(&out);
    assert_eq!(sc.len(), 1, "{sc:?}");
    assert_eq!(sc[0].name(), "declined");
    assert_eq!(sc[0].amount(), Some(money("100.01")));
    let message = sc[0].message().unwrap_or_default();
    assert!(
        message.starts_with("Offline: amount above") && message.ends_with("No charge"),
        "{message}"
    );
    assert!(!s.t.is_busy(), "a refusal starts no payment");
    let out = s.advance(5_000);
    assert_eq!(screen_names(&out), ["idle"]);
}

#[test]
fn count_and_total_limits_refuse_with_a_clear_message() {
    let mut s = offline_shell(OfflineLimits {
        max_count: 2,
        ..OfflineLimits::default()
    });
    offline_tap(&mut s, "1.00");
    offline_tap(&mut s, "1.00");
    let out = s.sale("1.00", OfflinePolicy::PreferOnline);
    assert_eq!(
        direct_acks(&out),
        [(AckStatus::Rejected, Some(AckReason::OfflineLimit))]
    );

    let mut s = offline_shell(OfflineLimits {
        max_total: Total(15_000),
        ..OfflineLimits::default()
    });
    offline_tap(&mut s, "100.00");
    let out = s.sale("60.00", OfflinePolicy::PreferOnline);
    assert_eq!(
        direct_acks(&out),
        [(AckStatus::Rejected, Some(AckReason::OfflineLimit))]
    );
    // Link up at command time, down at the tap: refused at the tap.
    s.input(Input::LinkChanged { online: true });
    s.sale_waiting("60.00", OfflinePolicy::PreferOnline);
    s.input(Input::LinkChanged { online: false });
    let out = s.tap("tok");
    assert_eq!(states(&out), [TxState::Declined]);
    let Some(TxWrite::Update(u)) = &persists(&out)[0].change.tx else {
        panic!("expected an update");
    };
    assert_eq!(u.reason.as_deref(), Some("offline_total_limit"));
    s.commit();
    assert_eq!(
        s.t.screen().screen.message().as_deref(),
        Some("Offline total limit reached. No charge")
    );
}

#[test]
fn age_limit_counts_from_the_oldest_queued_sale() {
    let mut s = offline_shell(OfflineLimits {
        max_age_ms: 3_600_000,
        ..OfflineLimits::default()
    });
    offline_tap(&mut s, "1.00");
    s.advance(3_600_000);
    offline_tap(&mut s, "1.00");
    s.advance(1);
    let out = s.sale("1.00", OfflinePolicy::PreferOnline);
    assert_eq!(
        direct_acks(&out),
        [(AckStatus::Rejected, Some(AckReason::OfflineLimit))]
    );
    // Once the oldest is forwarded, the age counts from the next one.
    let oldest = Reference::for_sequence(&TerminalId::new(TID).unwrap(), 1);
    s.input(Input::Forwarded {
        reference: oldest,
        outcome: ForwardOutcome::Approved {
            transaction_id: "t".into(),
            auth_code: None,
        },
    });
    s.commit();
    let out = s.sale("1.00", OfflinePolicy::PreferOnline);
    assert!(direct_acks(&out).is_empty());
}

#[test]
fn heartbeat_tightens_but_never_loosens_the_limits() {
    let mut s = offline_shell(OfflineLimits {
        floor_limit: money("100.00"),
        ..OfflineLimits::default()
    });
    s.input(Input::OfflineLimits(Some(OfflineLimits {
        floor_limit: money("50.00"),
        max_total: Total(u64::MAX),
        max_count: u32::MAX,
        max_age_ms: u64::MAX,
    })));
    let limits = s.t.effective_limits();
    assert_eq!(limits.floor_limit, money("50.00"));
    assert_eq!(limits.max_count, 1000);
    let out = s.sale("60.00", OfflinePolicy::PreferOnline);
    assert_eq!(
        direct_acks(&out),
        [(AckStatus::Rejected, Some(AckReason::OfflineLimit))]
    );
    s.input(Input::OfflineLimits(Some(OfflineLimits {
        floor_limit: money("500.00"),
        ..OfflineLimits::default()
    })));
    assert_eq!(s.t.effective_limits().floor_limit, money("100.00"));
    s.input(Input::OfflineLimits(None));
    assert_eq!(s.t.effective_limits().floor_limit, money("100.00"));
}

// --------------------------------------------------------- rule 7: refund ---

fn refund(
    s: &mut Shell,
    original_reference: &Reference,
    amount: &str,
    original: Option<OriginalSale>,
) -> Vec<Output> {
    let reference = s.mint();
    s.input(Input::Command(Command::Refund(RefundCommand {
        reference,
        command_id: CommandId("r".into()),
        payment_id: PaymentId::new("refund-1").unwrap(),
        original_reference: original_reference.clone(),
        amount: money(amount),
        original,
    })))
}

fn original(reference: &Reference, state: TxState, left: &str) -> OriginalSale {
    OriginalSale {
        reference: reference.clone(),
        kind: TxKind::Sale,
        state,
        amount: money("100.00"),
        refundable_left: money(left),
        card_token: token("tok-a"),
    }
}

#[test]
fn refund_of_an_unknown_or_unapproved_sale_is_rejected() {
    let mut s = Shell::new(true);
    let r = Reference::new("pos_3f1e2d_001-000099").unwrap();
    let out = refund(&mut s, &r, "10.00", None);
    assert_eq!(
        direct_acks(&out),
        [(AckStatus::Rejected, Some(AckReason::UnknownTransaction))]
    );
    let out = refund(
        &mut s,
        &r,
        "10.00",
        Some(original(&r, TxState::Declined, "100.00")),
    );
    assert_eq!(
        direct_acks(&out),
        [(AckStatus::Rejected, Some(AckReason::UnknownTransaction))]
    );
}

#[test]
fn refund_above_what_is_left_is_rejected() {
    let mut s = Shell::new(true);
    let r = s.approved_online_sale("100.00", "tok-a");
    let out = refund(
        &mut s,
        &r,
        "40.01",
        Some(original(&r, TxState::Approved, "40.00")),
    );
    assert_eq!(
        direct_acks(&out),
        [(
            AckStatus::Rejected,
            Some(AckReason::AmountExceedsRefundable)
        )]
    );
}

#[test]
fn refund_with_another_card_is_declined_without_charge() {
    let mut s = Shell::new(true);
    let r = s.approved_online_sale("100.00", "tok-a");
    refund(
        &mut s,
        &r,
        "40.00",
        Some(original(&r, TxState::Approved, "40.00")),
    );
    s.commit();
    assert_eq!(s.t.screen().screen.name(), "refund_tap");
    let out = s.tap("tok-b");
    assert_eq!(states(&out), [TxState::Declined]);
    let out = s.commit();
    assert!(authorizations(&out).is_empty());
    assert_eq!(
        s.t.screen().screen.message().as_deref(),
        Some("Card does not match the sale. No charge")
    );
}

#[test]
fn refund_with_the_same_card_is_authorized_with_the_original_reference() {
    let mut s = Shell::new(true);
    let r = s.approved_online_sale("100.00", "tok-a");
    let out = refund(
        &mut s,
        &r,
        "40.00",
        Some(original(&r, TxState::Approved, "100.00")),
    );
    let Some(TxWrite::Insert(new)) = &persists(&out)[0].change.tx else {
        panic!("expected an insert");
    };
    assert_eq!(new.kind, TxKind::Refund);
    assert_eq!(new.original_reference.as_ref(), Some(&r));
    assert_ne!(new.reference, r);
    s.commit();
    s.tap("tok-a");
    let out = s.commit();
    let auth = authorizations(&out);
    assert_eq!(auth[0].submission.kind, TxKind::Refund);
    assert_eq!(auth[0].submission.original_reference.as_ref(), Some(&r));
}

/// SPEC 5.9: once the session closed no new sale starts, but a refund of
/// one of its sales still does.
#[test]
fn a_refund_is_still_possible_after_the_session_closed() {
    let mut s = Shell::new(true);
    let r = s.approved_online_sale("100.00", "tok-a");
    s.advance(5_000);
    s.input(Input::SessionStatus {
        status: SessionStatus::Closed,
        totals: None,
    });
    let out = s.sale("10.00", OfflinePolicy::PreferOnline);
    assert_eq!(
        direct_acks(&out),
        [(AckStatus::Rejected, Some(AckReason::SessionClosed))]
    );
    let out = refund(
        &mut s,
        &r,
        "40.00",
        Some(original(&r, TxState::Approved, "100.00")),
    );
    assert!(direct_acks(&out).is_empty(), "refund refused: {out:?}");
    s.commit();
    assert_eq!(s.t.screen().screen.name(), "refund_tap");
    s.tap("tok-a");
    let out = s.commit();
    assert_eq!(authorizations(&out)[0].submission.kind, TxKind::Refund);
    let out = s.answer(AuthResult::Approved {
        auth_code: Some("A1".into()),
        transaction_id: "tx-r".into(),
    });
    assert_eq!(states(&out), [TxState::Approved]);
    s.commit();
    assert_eq!(s.t.screen().screen.name(), "approved");
    // Back to the closed session's screen afterwards.
    let out = s.advance(5_000);
    assert_eq!(screen_names(&out), ["session_closed"]);
}

#[test]
fn offline_refund_queues_like_a_sale() {
    let mut s = Shell::new(false);
    let r = Reference::new("pos_3f1e2d_001-000007").unwrap();
    refund(
        &mut s,
        &r,
        "40.00",
        Some(original(&r, TxState::OfflineApproved, "100.00")),
    );
    s.commit();
    let out = s.tap("tok-a");
    let subs = submissions(&out);
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].kind, TxKind::Refund);
    assert!(subs[0].offline);
    s.commit();
    assert_eq!(s.t.screen().screen.name(), "approved");
}

// -------------------------------------- rule 8: forwarded offline sales ---

#[test]
fn backend_decline_of_a_forwarded_offline_sale_is_offline_declined() {
    let mut s = Shell::new(false);
    s.sale_waiting("10.00", OfflinePolicy::PreferOnline);
    s.tap("tok");
    s.commit();
    let reference = Reference::for_sequence(&TerminalId::new(TID).unwrap(), 1);
    assert!(s.t.exposure().contains(&reference));
    let out = s.input(Input::Forwarded {
        reference: reference.clone(),
        outcome: ForwardOutcome::Declined {
            reason: "card_declined".into(),
        },
    });
    assert_eq!(states(&out), [TxState::OfflineDeclined]);
    assert!(!s.t.exposure().contains(&reference));
    assert_eq!(s.t.exposure().count(), 0);
}

#[test]
fn backend_approval_of_a_forwarded_offline_sale_confirms_it() {
    let mut s = Shell::new(false);
    s.sale_waiting("10.00", OfflinePolicy::PreferOnline);
    s.tap("tok");
    s.commit();
    let reference = Reference::for_sequence(&TerminalId::new(TID).unwrap(), 1);
    let out = s.input(Input::Forwarded {
        reference: reference.clone(),
        outcome: ForwardOutcome::Approved {
            transaction_id: "tx-7".into(),
            auth_code: Some("654321".into()),
        },
    });
    let Some(TxWrite::Update(u)) = &persists(&out)[0].change.tx else {
        panic!("expected an update");
    };
    assert_eq!(u.state, TxState::Approved);
    assert_eq!(u.transaction_id.as_deref(), Some("tx-7"));
    assert_eq!(s.t.exposure().count(), 0);
}

#[test]
fn a_reversal_acknowledged_by_the_backend_is_recorded() {
    let mut s = Shell::new(true);
    let reference = Reference::new("pos_3f1e2d_001-000003").unwrap();
    let out = s.input(Input::Reversed {
        reference: reference.clone(),
    });
    assert_eq!(states(&out), [TxState::Reversed]);
    assert_eq!(
        persists(&out)[0].change.tx.as_ref().unwrap().reference(),
        &reference
    );
}

// ------------------------------------------------ storage failures ---

#[test]
fn failed_commit_of_an_approval_shows_an_error_and_reverses() {
    let mut s = Shell::new(true);
    s.sale_waiting("10.00", OfflinePolicy::PreferOnline);
    s.tap("tok");
    s.commit();
    let reference = s.t.active_reference().unwrap().clone();
    s.answer(AuthResult::Approved {
        auth_code: None,
        transaction_id: "t".into(),
    });
    let op_id = s.uncommitted.remove(0);
    let out = s.input(Input::PersistFailed {
        op_id,
        error: "disk full".into(),
    });
    assert_eq!(screen_names(&out), ["error"]);
    assert!(out.contains(&Output::ReverseNow {
        reference: reference.clone()
    }));
    assert!(has_reversal(&out, &reference));
    assert!(!s.t.is_busy());
    assert!(
        !screen_names(&s.commit()).contains(&"approved"),
        "never approved"
    );
}

#[test]
fn failed_first_commit_sends_nothing() {
    let mut s = Shell::new(true);
    s.sale("10.00", OfflinePolicy::PreferOnline);
    let op_id = s.uncommitted.remove(0);
    let out = s.input(Input::PersistFailed {
        op_id,
        error: "corrupt".into(),
    });
    assert_eq!(screen_names(&out), ["error"]);
    assert!(persists(&out).is_empty(), "no row to close");
    assert!(!out.iter().any(|o| matches!(o, Output::ReverseNow { .. })));
    // The next sale uses a fresh reference.
    let out = s.sale("10.00", OfflinePolicy::PreferOnline);
    let Some(TxWrite::Insert(new)) = &persists(&out)[0].change.tx else {
        panic!("expected an insert");
    };
    assert_eq!(new.reference.as_str(), "pos_3f1e2d_001-000002");
}

// -------------------------------------------------- screens, card errors ---

#[test]
fn idle_screen_shows_event_label_link_and_queue() {
    let mut s = Shell::new(true);
    let m = s.t.screen();
    assert_eq!(
        m.screen,
        Screen::Idle {
            event_name: "Afro Fest".into(),
            terminal_label: "Gate 3".into()
        }
    );
    assert!(!m.offline);
    let out = s.input(Input::QueueDepth {
        queued: 4,
        parked: 1,
    });
    assert_eq!(screen_names(&out), ["idle"]);
    assert_eq!((s.t.screen().queued, s.t.screen().parked), (4, 1));
    let out = s.input(Input::LinkChanged { online: false });
    assert_eq!(screen_names(&out), ["idle"]);
    assert!(s.t.screen().offline);
    // No change, no render.
    let out = s.input(Input::LinkChanged { online: false });
    assert!(screen_names(&out).is_empty());
}

#[test]
fn next_command_replaces_the_result_screen() {
    let mut s = Shell::new(true);
    s.approved_online_sale("10.00", "tok");
    s.sale_waiting("20.00", OfflinePolicy::PreferOnline);
    // The old result timer no longer sends the tap screen to idle.
    s.advance(5_000);
    assert_eq!(s.t.screen().screen.name(), "tap_card");
}

#[test]
fn card_read_error_asks_to_tap_again() {
    let mut s = Shell::new(true);
    s.sale_waiting("10.00", OfflinePolicy::PreferOnline);
    let out = s.input(Input::CardError {
        reason: "misread".into(),
    });
    assert_eq!(
        s.t.screen().screen.message().as_deref(),
        Some("Card read failed, tap again")
    );
    assert!(out.contains(&Output::StartReader { timeout_ms: 60_000 }));
    assert!(persists(&out).is_empty());
    // The deadline does not move: the reader gets what is left.
    s.advance(20_000);
    let out = s.input(Input::CardError {
        reason: "misread".into(),
    });
    assert!(out.contains(&Output::StartReader { timeout_ms: 40_000 }));
    s.tap("tok");
    s.commit();
    assert!(s.t.is_busy());
}

#[test]
fn the_reference_comes_from_the_shell_and_a_rejection_leaves_a_gap() {
    let mut s = Shell::new(true);
    s.sale_waiting("1.00", OfflinePolicy::PreferOnline);
    // Busy: reference 2 is minted by the shell but never used.
    let out = s.sale("1.00", OfflinePolicy::PreferOnline);
    assert!(persists(&out).is_empty());
    s.input(Input::Button(Button::Cancel));
    s.commit();
    // A keypad sale asks the shell for its reference once confirmed.
    s.advance(10_000);
    for d in [1, 0, 0] {
        s.input(Input::Button(Button::Digit(d)));
    }
    let out = s.input(Input::Button(Button::Ok));
    assert!(out.contains(&Output::Query(Query::MintReference)));
    assert!(persists(&out).is_empty());
    let reference = Reference::new("pos_3f1e2d_001-000042").unwrap();
    let out = s.input(Input::Answer(Answer::ReferenceMinted {
        reference: reference.clone(),
    }));
    let Some(TxWrite::Insert(new)) = &persists(&out)[0].change.tx else {
        panic!("expected an insert");
    };
    assert_eq!(new.reference, reference);
    assert_eq!(new.payment_id, None);
    assert_eq!(new.amount, money("1.00"));
    // A keypad sale has no command to ack and no payment to report on.
    assert!(persists(&out)[0].change.outbox.is_empty());
}

#[test]
fn interrupted_transactions_are_closed_at_boot() {
    let a = Reference::new("pos_3f1e2d_001-000001").unwrap();
    let b = Reference::new("pos_3f1e2d_001-000002").unwrap();
    let restored = RestoredState {
        interrupted: vec![
            InterruptedTx {
                reference: a.clone(),
                payment_id: None,
                state: TxState::Pending,
                transfer: false,
            },
            InterruptedTx {
                reference: b.clone(),
                payment_id: Some(PaymentId::new("p").unwrap()),
                state: TxState::Authorizing,
                transfer: false,
            },
        ],
        booted_at: UnixMillis(1_763_719_200_000),
        ..RestoredState::default()
    };
    let mut t = Terminal::new(config(), restored);
    let mut out = Vec::new();
    while let Some(o) = t.poll() {
        out.push(o);
    }
    assert_eq!(states(&out), [TxState::Failed, TxState::ReversalPending]);
    assert!(
        persists(&out)
            .iter()
            .all(|p| p.change.at == UnixMillis(1_763_719_200_000))
    );
    assert!(has_reversal(&out, &b));
    assert!(!has_reversal(&out, &a));
    assert_eq!(screen_names(&out), ["idle"]);
}

#[test]
fn offline_exposure_restored_at_boot_counts_against_the_limits() {
    let mut cfg = config();
    cfg.offline_limits.max_count = 2;
    let queued = |n: u64, at: i64| QueuedOffline {
        reference: Reference::for_sequence(&TerminalId::new(TID).unwrap(), n),
        kind: TxKind::Sale,
        amount: money("1.00"),
        captured_at: UnixMillis(at),
    };
    let restored = RestoredState {
        offline_queue: vec![queued(1, 1_763_719_000_000), queued(2, 1_763_719_100_000)],
        ..RestoredState::default()
    };
    let mut s = Shell::with(cfg, false, restored);
    assert_eq!(s.t.exposure().count(), 2);
    assert_eq!(s.t.exposure().oldest(), Some(UnixMillis(1_763_719_000_000)));
    let out = s.sale("1.00", OfflinePolicy::PreferOnline);
    assert_eq!(
        direct_acks(&out),
        [(AckStatus::Rejected, Some(AckReason::OfflineLimit))]
    );
    // Online, the limits do not apply.
    s.input(Input::LinkChanged { online: true });
    let out = s.sale("1.00", OfflinePolicy::PreferOnline);
    assert!(direct_acks(&out).is_empty());
}
