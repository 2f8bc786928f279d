//! Property tests: random input sequences with virtual time, against a
//! model shell that commits (or fails) persists, answers authorizations at
//! random and forwards queued offline transactions.

use std::collections::{BTreeMap, VecDeque};

use proptest::prelude::*;

use proto::{Money, PaymentId, Reference, TerminalId, Total};

use super::tests::{card, config};
use super::*;

#[derive(Debug, Clone)]
enum Action {
    Sale {
        minor: u64,
        require_online: bool,
        expires_in_ms: Option<i64>,
    },
    /// A key of the terminal (the cashier's desk).
    Key(Button),
    /// Answer the core's outstanding question (`true`: the store failed).
    AnswerQuery(bool),
    /// Abort the `back`-th most recent payment id issued.
    Abort {
        back: usize,
    },
    /// Refund `percent` of what is left of the `pick`-th known sale (or of
    /// an unknown one when none); above 100 exceeds what is left.
    Refund {
        pick: usize,
        percent: u64,
    },
    SessionClosed,
    Session(bool),
    Tap {
        token: u8,
    },
    CardError,
    Cancel,
    Ok,
    /// Commit the oldest uncommitted op.
    Commit,
    /// Fail the oldest uncommitted op.
    Fail,
    /// Answer the outstanding authorization: 0 approved, 1 declined, 2 unknown.
    Answer(u8),
    Forward {
        pick: usize,
        declined: bool,
    },
    Link(bool),
    Limits(Option<u64>),
    Queue(u32),
    AdvanceToTimeout,
    Advance(u64),
    /// A bank transfer credit for the payment in progress (SPEC 7.7):
    /// the whole amount, or half of it.
    TransferCredit {
        full: bool,
    },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        9 => (1u64..8_000_000, any::<bool>(), proptest::option::of(-1_000i64..120_000))
            .prop_map(|(minor, require_online, expires_in_ms)| Action::Sale {
                minor,
                require_online,
                expires_in_ms
            }),
        14 => prop_oneof![
            6 => (0u8..10).prop_map(Button::Digit),
            2 => Just(Button::Ok),
            1 => Just(Button::Back),
            1 => Just(Button::Cancel),
            2 => Just(Button::Menu),
            1 => Just(Button::Up),
            1 => Just(Button::Down),
        ]
        .prop_map(Action::Key),
        4 => prop_oneof![5 => Just(false), 1 => Just(true)].prop_map(Action::AnswerQuery),
        3 => (0usize..3).prop_map(|back| Action::Abort { back }),
        5 => (0usize..4, 1u64..=110).prop_map(|(pick, percent)| Action::Refund { pick, percent }),
        1 => Just(Action::SessionClosed),
        2 => prop_oneof![3 => Just(true), 1 => Just(false)].prop_map(Action::Session),
        12 => (0u8..3).prop_map(|token| Action::Tap { token }),
        2 => Just(Action::CardError),
        2 => Just(Action::Cancel),
        2 => Just(Action::Ok),
        30 => Just(Action::Commit),
        2 => Just(Action::Fail),
        12 => (0u8..4).prop_map(Action::Answer),
        3 => (0usize..4, any::<bool>()).prop_map(|(pick, declined)| Action::Forward { pick, declined }),
        6 => any::<bool>().prop_map(Action::Link),
        2 => proptest::option::of(1u64..8_000_000).prop_map(Action::Limits),
        2 => (0u32..20).prop_map(Action::Queue),
        5 => Just(Action::AdvanceToTimeout),
        3 => (0u64..20_000).prop_map(Action::Advance),
        4 => any::<bool>().prop_map(|full| Action::TransferCredit { full }),
    ]
}

/// What the model shell knows of one transaction.
#[derive(Debug, Default, Clone)]
struct Row {
    state: Option<TxState>,
    kind: Option<TxKind>,
    amount: Money,
    token: Option<CardToken>,
    /// The sale a refund refers to.
    original: Option<Reference>,
    /// Authorize outputs for this reference.
    authorizations: u32,
    /// Submit outbox items emitted / committed for this reference.
    submits_emitted: u32,
    submits_committed: u32,
    reversal_committed: bool,
    /// An immediate reversal was asked for (storage failed after an
    /// authorization went out).
    reversed_now: bool,
    backend_declined: bool,
    answered_approved: bool,
    forwarded: bool,
    /// Its transfer registration was committed (SPEC 7.7).
    transfer_registered: bool,
    /// The backend reported the whole amount received by transfer.
    transfer_paid: bool,
    /// Committed as paid through the collection account.
    paid_by_transfer: bool,
}

struct Sim {
    t: Terminal,
    now: Now,
    uncommitted: VecDeque<Persist>,
    rows: BTreeMap<Reference, Row>,
    /// Authorizations sent and not answered, oldest first (an old one may
    /// be answered after the core's guard gave up on it).
    outstanding: VecDeque<Reference>,
    payment_ids: Vec<PaymentId>,
    commands: u32,
    /// The store's durable reference counter.
    sequence: u64,
    /// The payment started by the last insert whose final state has not been
    /// emitted yet.
    open: Option<Reference>,
    last_screen: Option<Screen>,
    /// Every output, in order.
    log: Vec<Output>,
    /// The payment started by the last insert.
    last_insert: Option<Reference>,
    refunded: BTreeMap<Reference, u64>,
    /// The core's question not answered yet (one at a time).
    pending_query: Option<Query>,
    /// What the cashier's confirmation showed: the total to charge and
    /// its tip, checked against the insert that follows.
    confirmed: Option<(Money, Option<Money>)>,
}

impl Sim {
    fn new() -> Sim {
        Sim::restored(&[], &[])
    }

    /// A core booted over a store holding offline sales not yet forwarded
    /// (`(amount, age)`) and payments interrupted by a restart (`true`:
    /// left `authorizing`, else `pending`). The boot commits are confirmed.
    fn restored(queued: &[(u64, u64)], interrupted: &[bool]) -> Sim {
        let wall = UnixMillis(1_763_719_200_000);
        let tid = TerminalId::new("pos_3f1e2d_001").unwrap();
        let mut rows = BTreeMap::new();
        let mut sequence = 0;
        let mut restored = RestoredState {
            booted_at: wall,
            // Down on the tap screen offers a transfer (SPEC 7.7).
            collection_account: Some(CollectionAccount {
                account_number: "9900000001".into(),
                account_name: "Afro Fest".into(),
                bank_name: "Kler MFB".into(),
            }),
            ..RestoredState::default()
        };
        for (minor, age) in queued {
            sequence += 1;
            let reference = Reference::for_sequence(&tid, sequence);
            let amount = Money::from_minor(*minor).unwrap();
            rows.insert(
                reference.clone(),
                Row {
                    state: Some(TxState::OfflineApproved),
                    kind: Some(TxKind::Sale),
                    amount,
                    token: Some(super::tests::token("tok0")),
                    submits_emitted: 1,
                    submits_committed: 1,
                    ..Row::default()
                },
            );
            restored.offline_queue.push(QueuedOffline {
                reference,
                kind: TxKind::Sale,
                amount,
                captured_at: UnixMillis(wall.0 - i64::try_from(*age).unwrap()),
            });
        }
        for authorizing in interrupted {
            sequence += 1;
            let reference = Reference::for_sequence(&tid, sequence);
            let state = if *authorizing {
                TxState::Authorizing
            } else {
                TxState::Pending
            };
            rows.insert(
                reference.clone(),
                Row {
                    state: Some(state),
                    kind: Some(TxKind::Sale),
                    amount: Money::from_minor(100).unwrap(),
                    authorizations: u32::from(*authorizing),
                    ..Row::default()
                },
            );
            restored.interrupted.push(InterruptedTx {
                reference,
                payment_id: Some(PaymentId::new(format!("before-{sequence}")).unwrap()),
                state,
                transfer: false,
            });
        }
        let mut cfg = config();
        cfg.printer = true;
        cfg.offline_limits = OfflineLimits {
            floor_limit: Money::from_minor(3_000_000).unwrap(),
            max_total: Total(6_000_000),
            max_count: 4,
            max_age_ms: 600_000,
        };
        restored.desk = DeskConfig {
            tips: proto::wire::TipsConfig {
                enabled: true,
                percentages: vec![5, 10, 15],
                fixed: vec![Money::from_minor(50_000).unwrap()],
                custom: true,
            },
            logout_after_ms: Some(600_000),
            receipt_print: proto::wire::ReceiptPrint::Auto,
        };
        restored.catalog = vec![
            CatalogItem {
                item_id: "beer".into(),
                name: "Beer".into(),
                price: Money::from_minor(150_000).unwrap(),
            },
            CatalogItem {
                item_id: "water".into(),
                name: "Water".into(),
                price: Money::from_minor(30_000).unwrap(),
            },
        ];
        let t = Terminal::new(cfg, restored);
        let mut s = Sim {
            t,
            now: Now::new(Millis(0), wall),
            uncommitted: VecDeque::new(),
            rows,
            outstanding: VecDeque::new(),
            payment_ids: Vec::new(),
            commands: 0,
            sequence,
            open: None,
            last_insert: None,
            last_screen: None,
            log: Vec::new(),
            refunded: BTreeMap::new(),
            pending_query: None,
            confirmed: None,
        };
        s.drain();
        while !s.uncommitted.is_empty() {
            s.commit_one();
        }
        s
    }

    fn row(&mut self, r: &Reference) -> &mut Row {
        self.rows.entry(r.clone()).or_default()
    }

    fn handle(&mut self, input: Input) {
        self.t.handle(self.now, input);
        self.drain();
        // Never two payments: the core's active payment is the open one.
        if let Some(active) = self.t.active_reference() {
            assert_eq!(
                Some(active),
                self.last_insert.as_ref(),
                "unexpected active payment"
            );
        }
    }

    fn drain(&mut self) {
        while let Some(o) = self.t.poll() {
            self.observe(o);
        }
    }

    /// Check every output against the model as it comes out.
    fn observe(&mut self, o: Output) {
        self.log.push(o.clone());
        match o {
            Output::Persist(p) => {
                if let Some(tx) = &p.change.tx {
                    let r = tx.reference().clone();
                    if let TxWrite::Insert(n) = tx {
                        if n.command_id.is_none() {
                            // The cashier's payment charges exactly what
                            // the confirmation showed.
                            let (total, tip) = self
                                .confirmed
                                .take()
                                .expect("a keypad payment began without a confirmation");
                            assert_eq!(n.amount, total, "charged another total than shown");
                            assert_eq!(n.tip_amount, tip, "another tip than shown");
                            if let Some(o) = &n.original_reference {
                                *self.refunded.entry(o.clone()).or_default() += n.amount.minor();
                            }
                        }
                        assert!(
                            self.open.is_none(),
                            "second payment {r} started while {:?} is open",
                            self.open
                        );
                        assert!(!self.rows.contains_key(&r), "reference {r} reused");
                        self.open = Some(r.clone());
                        self.last_insert = Some(r.clone());
                    } else if tx.state().is_final() && self.open.as_ref() == Some(&r) {
                        self.open = None;
                    }
                }
                for item in &p.change.outbox {
                    if let OutboxItem::Submit(s) = item {
                        let row = self.row(&s.reference);
                        row.submits_emitted += 1;
                        assert_eq!(row.submits_emitted, 1, "two submissions");
                        assert!(s.offline);
                    }
                }
                self.uncommitted.push_back(p);
            }
            Output::Authorize(a) => {
                let r = a.submission.reference.clone();
                let row = self.row(&r);
                assert_eq!(
                    row.state,
                    Some(TxState::Authorizing),
                    "authorization sent before its reference was committed"
                );
                row.authorizations += 1;
                assert_eq!(row.authorizations, 1, "authorized twice");
                self.outstanding.push_back(r);
            }
            // A status-line refresh of a screen already shown (link, queue)
            // is not a new result.
            Output::Render(m) if self.last_screen.as_ref() == Some(&m.screen) => {}
            Output::Render(m) => match &m.screen.clone() {
                Screen::Approved { reference, .. } => {
                    let row = self.row(reference);
                    assert!(
                        row.state.is_some_and(TxState::is_approved),
                        "approved on screen before it was persisted: {row:?}"
                    );
                    self.last_screen = Some(m.screen);
                }
                Screen::Declined { reference, .. } => {
                    let row = self.row(reference);
                    assert!(
                        row.backend_declined || row.reversal_committed || row.authorizations == 0,
                        "declined on screen without reversal or backend decline: {row:?}"
                    );
                    assert!(!row.state.is_some_and(TxState::is_approved));
                    self.last_screen = Some(m.screen);
                }
                _ => self.last_screen = Some(m.screen),
            },
            Output::ReverseNow { reference } => self.row(&reference).reversed_now = true,
            Output::Query(q) => {
                assert!(
                    self.pending_query.is_none(),
                    "a second question while {:?} is unanswered",
                    self.pending_query
                );
                self.pending_query = Some(q);
            }
            // A receipt is printed only for a payment whose result is
            // recorded.
            Output::Print(PrintJob::Receipt { reference, .. }) => {
                let row = self.row(&reference);
                assert!(
                    row.state
                        .is_some_and(|s| s.is_final() || s == TxState::OfflineApproved),
                    "receipt of {reference} printed before its result was recorded: {row:?}"
                );
            }
            Output::Print(PrintJob::Report(_))
            | Output::Ack(_)
            | Output::StartReader { .. }
            | Output::StopReader
            | Output::Beep(_)
            | Output::Report(_) => {}
        }
    }

    fn commit_one(&mut self) {
        let Some(p) = self.uncommitted.pop_front() else {
            return;
        };
        if let Some(tx) = &p.change.tx {
            let r = tx.reference().clone();
            let row = self.row(&r);
            match tx {
                TxWrite::Insert(n) => {
                    row.kind = Some(n.kind);
                    row.original = n.original_reference.clone();
                    row.amount = n.amount;
                    row.state = Some(n.state);
                }
                TxWrite::Update(u) => {
                    assert!(row.state.is_some(), "update of a row never inserted");
                    row.state = Some(u.state);
                    if u.channel == Some(Channel::Account) {
                        row.paid_by_transfer = true;
                    }
                    if let Some(c) = &u.card {
                        row.token = Some(c.token.clone());
                    }
                }
            }
        }
        for item in &p.change.outbox {
            match item {
                OutboxItem::Submit(s) => self.row(&s.reference).submits_committed += 1,
                OutboxItem::Reversal { reference } => self.row(reference).reversal_committed = true,
                OutboxItem::TransferRegister(t) => {
                    self.row(&t.reference).transfer_registered = true;
                }
                OutboxItem::Ack(_)
                | OutboxItem::PaymentEvent { .. }
                | OutboxItem::TransferCancel { .. } => {}
            }
        }
        self.handle(Input::Persisted { op_id: p.op_id });
    }

    fn fail_one(&mut self) {
        let Some(p) = self.uncommitted.pop_front() else {
            return;
        };
        let before = self.t.active_reference().cloned();
        self.handle(Input::PersistFailed {
            op_id: p.op_id,
            error: "disk full".into(),
        });
        if before.is_some() && self.t.active_reference().is_none() {
            self.open = None;
        }
    }

    fn mint(&mut self) -> Reference {
        self.sequence += 1;
        Reference::for_sequence(&TerminalId::new("pos_3f1e2d_001").unwrap(), self.sequence)
    }

    fn next_command(&mut self) -> CommandId {
        self.commands += 1;
        CommandId(format!("c{}", self.commands))
    }

    /// Known sales, approved ones first (so refunds often find one).
    fn sales(&self) -> Vec<Reference> {
        let mut sales: Vec<(bool, Reference)> = self
            .rows
            .iter()
            .filter(|(_, r)| r.kind == Some(TxKind::Sale))
            .map(|(k, r)| (!r.state.is_some_and(TxState::is_approved), k.clone()))
            .collect();
        sales.sort();
        sales.into_iter().map(|(_, r)| r).collect()
    }

    fn act(&mut self, a: Action) {
        match a {
            Action::Sale {
                minor,
                require_online,
                expires_in_ms,
            } => {
                let command_id = self.next_command();
                let payment_id = PaymentId::new(format!("p{}", self.commands)).unwrap();
                self.payment_ids.push(payment_id.clone());
                let sale = SaleCommand {
                    reference: self.mint(),
                    command_id,
                    payment_id,
                    amount: Money::from_minor(minor).unwrap(),
                    partner_reference: None,
                    expires_at: expires_in_ms.map(|ms| UnixMillis(self.now.wall.0 + ms)),
                    offline_policy: if require_online {
                        OfflinePolicy::RequireOnline
                    } else {
                        OfflinePolicy::PreferOnline
                    },
                };
                // The cashier's keyed work is never thrown away by a
                // partner's sale.
                let keyed = self.t.is_busy() && self.t.active_reference().is_none();
                let before = self.t.screen().screen;
                self.handle(Input::Command(Command::Sale(sale)));
                if keyed {
                    assert!(
                        self.t.active_reference().is_none(),
                        "a partner sale took over"
                    );
                    assert_eq!(self.t.screen().screen, before, "the keyed work changed");
                    assert!(matches!(
                        self.log.last(),
                        Some(Output::Ack(CommandAck {
                            status: AckStatus::Rejected,
                            reason: Some(AckReason::Busy),
                            ..
                        }))
                    ));
                }
            }
            Action::Key(b) => self.key(b),
            Action::AnswerQuery(fail) => self.answer_query(fail),
            Action::Abort { back } => {
                let payment_id = self
                    .payment_ids
                    .iter()
                    .rev()
                    .nth(back)
                    .cloned()
                    .unwrap_or_else(|| PaymentId::new("unknown").unwrap());
                let command_id = self.next_command();
                self.handle(Input::Command(Command::Abort(AbortCommand {
                    command_id,
                    payment_id,
                })));
            }
            Action::Refund { pick, percent } => {
                let sales = self.sales();
                let original_reference = sales
                    .get(pick)
                    .cloned()
                    .unwrap_or_else(|| Reference::new("pos_3f1e2d_001-999999").unwrap());
                let original = self.rows.get(&original_reference).and_then(|row| {
                    let refunded = self.refunded.get(&original_reference).copied().unwrap_or(0);
                    Some(OriginalSale {
                        reference: original_reference.clone(),
                        kind: row.kind?,
                        state: row.state?,
                        amount: row.amount,
                        refundable_left: Money::from_minor(
                            row.amount.minor().saturating_sub(refunded),
                        )
                        .unwrap(),
                        card_token: row.token.clone()?,
                    })
                });
                let command_id = self.next_command();
                let payment_id = PaymentId::new(format!("p{}", self.commands)).unwrap();
                self.payment_ids.push(payment_id.clone());
                let left = original
                    .as_ref()
                    .map_or(100_000, |o| o.refundable_left.minor());
                let minor = (left * percent / 100).max(1);
                let amount = Money::from_minor(minor).unwrap();
                let accepted_before = self.t.is_busy();
                let reference = self.mint();
                self.handle(Input::Command(Command::Refund(RefundCommand {
                    reference,
                    command_id,
                    payment_id,
                    original_reference: original_reference.clone(),
                    amount,
                    original,
                })));
                // Count the refund against the sale once it started (a
                // conservative model of the store's refundable_left).
                if !accepted_before && self.t.is_busy() {
                    *self.refunded.entry(original_reference).or_default() += minor;
                }
            }
            Action::SessionClosed => {
                let command_id = self.next_command();
                self.handle(Input::Command(Command::SessionClosed(
                    SessionClosedCommand {
                        command_id,
                        totals: None,
                    },
                )));
            }
            Action::Session(active) => self.handle(Input::SessionStatus {
                status: if active {
                    SessionStatus::Active
                } else {
                    SessionStatus::Closed
                },
                totals: None,
            }),
            Action::Tap { token } => self.handle(Input::CardRead {
                card: card(&format!("tok{token}")),
                app: CardApp::default(),
            }),
            Action::CardError => self.handle(Input::CardError {
                reason: "misread".into(),
            }),
            Action::Cancel => self.key(Button::Cancel),
            Action::Ok => self.key(Button::Ok),
            Action::Commit => self.commit_one(),
            Action::Fail => self.fail_one(),
            Action::Answer(kind) => {
                let Some(reference) = self.outstanding.pop_front() else {
                    return;
                };
                let result = match kind {
                    0 => {
                        self.row(&reference).answered_approved = true;
                        AuthResult::Approved {
                            auth_code: Some("A".into()),
                            transaction_id: "t".into(),
                        }
                    }
                    1 => {
                        self.row(&reference).backend_declined = true;
                        AuthResult::Declined {
                            reason: "card_declined".into(),
                        }
                    }
                    2 => {
                        // A refusal (not the issuer's): nothing charged,
                        // like a decline.
                        self.row(&reference).backend_declined = true;
                        AuthResult::Refused {
                            code: "session_closed".into(),
                        }
                    }
                    _ => AuthResult::Unknown,
                };
                self.handle(Input::AuthAnswer {
                    reference,
                    result,
                    receipt_url: None,
                });
            }
            Action::Forward { pick, declined } => {
                let queued: Vec<Reference> = self
                    .rows
                    .iter()
                    .filter(|(_, r)| r.submits_committed > 0 && !r.forwarded)
                    .map(|(k, _)| k.clone())
                    .collect();
                let Some(reference) = queued.get(pick).cloned() else {
                    return;
                };
                self.row(&reference).forwarded = true;
                let outcome = if declined {
                    ForwardOutcome::Declined {
                        reason: "card_declined".into(),
                    }
                } else {
                    ForwardOutcome::Approved {
                        transaction_id: "t".into(),
                        auth_code: None,
                    }
                };
                self.handle(Input::Forwarded { reference, outcome });
            }
            Action::Link(online) => self.handle(Input::LinkChanged { online }),
            Action::Limits(floor) => {
                self.handle(Input::OfflineLimits(floor.map(|f| OfflineLimits {
                    floor_limit: Money::from_minor(f).unwrap(),
                    ..OfflineLimits::default()
                })))
            }
            Action::Queue(n) => self.handle(Input::QueueDepth {
                queued: n,
                parked: n / 2,
            }),
            Action::AdvanceToTimeout => {
                if let Some(at) = self.t.poll_timeout() {
                    self.advance_to(at);
                }
            }
            Action::Advance(ms) => self.advance_to(self.now.mono.after(ms)),
            Action::TransferCredit { full } => {
                let Some(reference) = self.t.active_reference().cloned() else {
                    return;
                };
                let amount = self.row(&reference).amount;
                let total = if full {
                    amount
                } else {
                    Money::from_minor(amount.minor() / 2).unwrap_or(amount)
                };
                if total.is_zero() {
                    return;
                }
                // The backend only matches a registered transfer.
                if !self.row(&reference).transfer_registered {
                    return;
                }
                if total >= amount {
                    self.row(&reference).transfer_paid = true;
                }
                let command_id = self.next_command();
                self.handle(Input::Command(Command::TransferReceived(
                    TransferReceivedCommand {
                        command_id,
                        reference,
                        amount: total,
                        total_received: total,
                        payer: Payer {
                            name: "ADA OBI".into(),
                            bank: "GTBank".into(),
                            account_number: None,
                        },
                        credited_at: self.now.wall,
                    },
                )));
            }
        }
    }

    /// A key press, checking that a confirmation charges what was shown.
    fn key(&mut self, b: Button) {
        let before = self.t.screen().screen;
        let asked_before = self.pending_query.is_some();
        self.handle(Input::Button(b));
        if asked_before || self.pending_query != Some(Query::MintReference) {
            return;
        }
        let add = |a: Money, t: Money| a.checked_add(t).expect("total within the maximum");
        let shown = match (&before, b) {
            (Screen::AmountEntry { amount, .. }, Button::Ok) => (*amount, None),
            (
                Screen::Tip {
                    amount,
                    custom: None,
                    ..
                },
                Button::Ok | Button::Digit(0),
            ) => (*amount, None),
            (
                Screen::Tip {
                    amount,
                    choices,
                    custom: None,
                    ..
                },
                Button::Digit(k),
            ) => match &choices[usize::from(k) - 1] {
                TipOption::Percent { tip, .. } | TipOption::Fixed { tip } => {
                    (add(*amount, *tip), (!tip.is_zero()).then_some(*tip))
                }
                TipOption::Custom => panic!("custom asked for a reference"),
            },
            (
                Screen::Tip {
                    amount,
                    custom: Some(c),
                    ..
                },
                Button::Ok,
            ) => (add(*amount, *c), (!c.is_zero()).then_some(*c)),
            (Screen::Catalog { cart_total, .. }, Button::Menu) => (*cart_total, None),
            other => panic!("a reference was asked for after {other:?}"),
        };
        let Screen::Processing { amount, tip, .. } = self.t.screen().screen else {
            panic!("no processing screen while the reference is minted");
        };
        assert_eq!((amount, tip), shown, "the screen changed the total");
        self.confirmed = Some(shown);
    }

    /// The shell's answer to the core's question.
    fn answer_query(&mut self, fail: bool) {
        let Some(q) = self.pending_query.take() else {
            return;
        };
        let answer = if fail {
            if q == Query::MintReference {
                self.confirmed = None;
            }
            Answer::Failed {
                error: "disk I/O error".into(),
            }
        } else {
            match q {
                Query::MintReference => Answer::ReferenceMinted {
                    reference: self.mint(),
                },
                Query::RecentSales { limit } => Answer::RecentSales(
                    self.sales()
                        .iter()
                        .filter_map(|r| self.original(r))
                        .take(usize::try_from(limit).unwrap())
                        .collect(),
                ),
                Query::Original { reference } => Answer::Original(self.original(&reference)),
                Query::XReport | Query::CloseShift { .. } => Answer::Report(ShiftReport {
                    kind: if q == Query::XReport {
                        ReportKind::X
                    } else {
                        ReportKind::Z
                    },
                    shift_no: 1,
                    opened_at: None,
                    closed_at: None,
                    totals: Default::default(),
                }),
                // The model never empties its outbox on purpose: refused.
                Query::Unpair => Answer::UnpairRefused {
                    reason: "1 item not yet sent to the backend".into(),
                },
            }
        };
        self.handle(Input::Answer(answer));
    }

    /// What the store would say of a sale.
    fn original(&self, reference: &Reference) -> Option<OriginalSale> {
        let row = self.rows.get(reference)?;
        let refunded = self.refunded.get(reference).copied().unwrap_or(0);
        Some(OriginalSale {
            reference: reference.clone(),
            kind: row.kind?,
            state: row.state?,
            amount: row.amount,
            refundable_left: Money::from_minor(row.amount.minor().saturating_sub(refunded))
                .unwrap(),
            card_token: row.token.clone()?,
        })
    }

    fn advance_to(&mut self, at: Millis) {
        if at > self.now.mono {
            let delta = at.0 - self.now.mono.0;
            self.now.mono = at;
            self.now.wall = UnixMillis(self.now.wall.0 + i64::try_from(delta).unwrap());
        }
        self.handle(Input::TimerDue);
    }

    /// Let everything in flight finish: commit, answer, let timers fire.
    fn settle(&mut self) {
        for _ in 0..100 {
            if !self.uncommitted.is_empty() {
                self.commit_one();
            } else if self.pending_query.is_some() {
                self.answer_query(false);
            } else if self.t.is_busy() && self.t.active_reference().is_none() {
                // The cashier walks away from what she keyed.
                self.handle(Input::Button(Button::Cancel));
            } else if let Some(reference) = self.outstanding.pop_front() {
                self.handle(Input::AuthAnswer {
                    reference,
                    result: AuthResult::Unknown,
                    receipt_url: None,
                });
            } else if self.t.is_busy() {
                match self.t.poll_timeout() {
                    Some(at) => self.advance_to(at),
                    None => panic!("busy with nothing in flight and no timer"),
                }
            } else {
                return;
            }
        }
        panic!("the core did not settle");
    }

    /// Two approved sales to refund: one online (card `tok0`), one offline
    /// (card `tok1`).
    fn with_approved_sales() -> Sim {
        let mut sim = Sim::new();
        let sale = Action::Sale {
            minor: 1_000_000,
            require_online: false,
            expires_in_ms: None,
        };
        let script = [
            Action::Link(true),
            sale.clone(),
            Action::Commit,
            Action::Tap { token: 0 },
            Action::Commit,
            Action::Answer(0),
            Action::Commit,
            Action::Link(false),
            sale,
            Action::Commit,
            Action::Tap { token: 1 },
            Action::Commit,
            Action::Link(true),
        ];
        for a in script {
            sim.act(a);
        }
        let approved = sim
            .rows
            .values()
            .filter(|r| r.state.is_some_and(TxState::is_approved))
            .count();
        assert_eq!(approved, 2, "prelude");
        sim
    }

    fn check_final(&self) {
        assert!(!self.t.is_busy());
        assert!(self.open.is_none());
        // Refunds: same card as the sale, never more than the sale in total.
        let mut refunded: BTreeMap<&Reference, u64> = BTreeMap::new();
        for (r, row) in &self.rows {
            if row.kind != Some(TxKind::Refund) || !row.state.is_some_and(TxState::is_approved) {
                continue;
            }
            let original = row.original.as_ref().expect("a refund has an original");
            let sale = &self.rows[original];
            // Approved when refunded (the backend may decline an offline
            // sale later).
            assert!(
                sale.state.is_some_and(TxState::is_approved)
                    || sale.state == Some(TxState::OfflineDeclined),
                "{r} refunds a sale not approved"
            );
            assert_eq!(row.token, sale.token, "{r} refunded to another card");
            *refunded.entry(original).or_default() += row.amount.minor();
            assert!(
                refunded[original] <= sale.amount.minor(),
                "{original} over-refunded"
            );
        }
        for (r, row) in &self.rows {
            match row.state {
                Some(TxState::Approved) if row.paid_by_transfer => {
                    // Paid into the account: registered, the whole amount
                    // reported by the backend, and never sent as a card
                    // payment.
                    assert!(
                        row.transfer_registered,
                        "{r} paid by an unregistered transfer"
                    );
                    assert!(row.transfer_paid, "{r} approved before the money arrived");
                    assert_eq!(row.authorizations, 0, "{r}");
                    assert_eq!(row.submits_committed, 0, "{r}");
                }
                Some(TxState::Approved) if row.submits_committed == 0 => {
                    // Approved online: the authorization was the submission.
                    assert!(row.answered_approved, "{r} approved without the backend");
                    assert_eq!(row.authorizations, 1, "{r}");
                }
                Some(TxState::Approved) => {
                    // Approved offline, then confirmed by the forward.
                    assert!(row.forwarded, "{r} approved without the backend");
                    assert_eq!(row.submits_committed, 1, "{r}");
                }
                Some(TxState::OfflineApproved) | Some(TxState::OfflineDeclined) => {
                    assert_eq!(
                        row.submits_committed, 1,
                        "{r}: offline approval not queued once"
                    );
                }
                Some(TxState::ReversalPending) => {
                    assert!(row.reversal_committed, "{r}");
                    assert_eq!(row.submits_committed, 0, "{r}");
                }
                Some(s) => {
                    assert_eq!(row.submits_committed, 0, "{r} in {s:?} was submitted");
                    assert!(
                        row.authorizations == 0
                            || row.backend_declined
                            || row.reversal_committed
                            || row.reversed_now,
                        "{r} in {s:?} was sent for authorization and neither declined nor reversed: {row:?}"
                    );
                }
                None => {}
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_keep_every_invariant(
        with_sales in any::<bool>(),
        interrupted in proptest::collection::vec(any::<bool>(), 0..3),
        actions in proptest::collection::vec(action(), 0..80),
    ) {
        let mut sim = if with_sales {
            Sim::with_approved_sales()
        } else {
            Sim::restored(&[], &interrupted)
        };
        for a in actions {
            sim.act(a);
        }
        sim.settle();
        sim.check_final();
    }

    /// Persist never fails here, so every payment ends in a recorded
    /// outcome and the exposure matches the queued offline sales.
    #[test]
    fn exposure_tracks_unforwarded_offline_sales(
        queued in proptest::collection::vec((1u64..3_000_000, 0u64..900_000), 0..5),
        actions in proptest::collection::vec(action(), 0..80),
    ) {
        let mut sim = Sim::restored(&queued, &[]);
        prop_assert_eq!(sim.t.exposure().count() as usize, queued.len());
        for a in actions {
            let a = if matches!(a, Action::Fail) { Action::Commit } else { a };
            sim.act(a);
        }
        sim.settle();
        sim.check_final();
        let expected = sim
            .rows
            .values()
            .filter(|r| {
                r.kind == Some(TxKind::Sale)
                    && r.state == Some(TxState::OfflineApproved)
                    && !r.forwarded
            })
            .count();
        prop_assert_eq!(sim.t.exposure().count() as usize, expected);
        prop_assert!(sim.t.exposure().count() <= sim.t.effective_limits().max_count);
    }

    /// Same inputs at the same times, same outputs: nothing hidden (no
    /// clock, no randomness, no iteration-order dependence) inside.
    #[test]
    fn the_core_is_deterministic(actions in proptest::collection::vec(action(), 0..60)) {
        let mut a = Sim::new();
        let mut b = Sim::new();
        for action in actions {
            a.act(action.clone());
            b.act(action);
        }
        a.settle();
        b.settle();
        prop_assert_eq!(a.log, b.log);
    }
}
