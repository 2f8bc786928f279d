//! The terminal state machine.

use std::collections::{BTreeSet, VecDeque};

use proto::wire::ReceiptPrint;
use proto::{Currency, Money, PaymentId, Reference, TerminalId};

use super::cashier::{
    CardApp, CatalogItem, DeskConfig, LineItem, Operator, OperatorTag, PrintJob, ReceiptCopy,
};
use super::limits::{OfflineExposure, OfflineLimits, OfflineRefusal, QueuedOffline};
use super::model::*;
use super::time::{Millis, Now, UnixMillis};

mod desk;
mod transfer;

use desk::{Desk, LoginPad};
use transfer::TransferWait;
pub use transfer::transfer_code;

/// Static configuration of the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreConfig {
    pub terminal_id: TerminalId,
    pub terminal_label: String,
    pub event_name: String,
    /// How long the tap screen waits for a card (SPEC default 60 s).
    pub tap_timeout_ms: u64,
    /// How long a result screen stays before going back to idle.
    pub result_screen_ms: u64,
    /// The shell's online authorization timeout (SPEC default 8 s). The core
    /// arms a guard `auth_timeout_ms + auth_guard_grace_ms` after sending in
    /// case the shell never answers.
    pub auth_timeout_ms: u64,
    pub auth_guard_grace_ms: u64,
    /// Configured offline limits; the heartbeat can only tighten them.
    pub offline_limits: OfflineLimits,
    /// Wrong PINs in a row before the login locks (SPEC 7.2: 3).
    pub pin_attempts: u8,
    /// How long the login stays locked (SPEC 7.2: 30 s).
    pub lock_ms: u64,
    /// A receipt printer is configured (SPEC 7.4).
    pub printer: bool,
    /// The backend's address: an offline payment's receipt is
    /// `<receipt_base>/r/ref/<reference>` (SPEC 7.4).
    pub receipt_base: Option<String>,
    /// How long a transfer payment waits for the money (SPEC 7.7: 10 min).
    pub transfer_timeout_ms: u64,
}

impl CoreConfig {
    /// SPEC defaults for everything but the names.
    pub fn new(
        terminal_id: TerminalId,
        terminal_label: impl Into<String>,
        event_name: impl Into<String>,
    ) -> Self {
        CoreConfig {
            terminal_id,
            terminal_label: terminal_label.into(),
            event_name: event_name.into(),
            tap_timeout_ms: 60_000,
            result_screen_ms: 5_000,
            auth_timeout_ms: 8_000,
            auth_guard_grace_ms: 2_000,
            offline_limits: OfflineLimits::default(),
            pin_attempts: 3,
            lock_ms: 30_000,
            printer: false,
            receipt_base: None,
            transfer_timeout_ms: 600_000,
        }
    }
}

/// A transaction found in `pending` or `authorizing` at boot: the agent
/// stopped in the middle of it. Nobody was told it was approved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterruptedTx {
    pub reference: Reference,
    pub payment_id: Option<PaymentId>,
    pub state: TxState,
    /// It was waiting for a bank transfer (a code was registered): its
    /// registration is cancelled.
    pub transfer: bool,
}

/// What the shell restores from the store at boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredState {
    /// Offline-approved transactions the backend has not acknowledged.
    pub offline_queue: Vec<QueuedOffline>,
    pub interrupted: Vec<InterruptedTx>,
    pub session: SessionStatus,
    pub totals: Option<SessionTotals>,
    /// Last heartbeat limits, if any were stored.
    pub heartbeat_limits: Option<OfflineLimits>,
    /// Believed link state at boot (usually false until the stream opens).
    pub online: bool,
    pub queued: u32,
    /// Of those, parked until an operator acts.
    pub parked: u32,
    /// Wall-clock time at boot, stamped on the commits that close
    /// interrupted transactions.
    pub booted_at: UnixMillis,
    /// The cached operators (empty: nobody logs in).
    pub operators: Vec<Operator>,
    /// The cached session configuration.
    pub desk: DeskConfig,
    /// The cached quick-sale catalog.
    pub catalog: Vec<CatalogItem>,
    /// The session's collection account (SPEC 7.7), from the cached
    /// session; `None`: no transfer for this event.
    pub collection_account: Option<CollectionAccount>,
}

impl Default for RestoredState {
    fn default() -> Self {
        RestoredState {
            offline_queue: Vec::new(),
            interrupted: Vec::new(),
            session: SessionStatus::Active,
            totals: None,
            heartbeat_limits: None,
            online: false,
            queued: 0,
            parked: 0,
            booted_at: UnixMillis(0),
            operators: Vec::new(),
            desk: DeskConfig::spec_default(),
            catalog: Vec::new(),
            collection_account: None,
        }
    }
}

/// What happens when the payment's in-flight commit is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
enum After {
    /// `authorizing` is durable: send the authorization.
    Authorize,
    /// A final state is durable: show it.
    Show(Outcome),
    /// The transfer registration is durable: show the code and wait.
    AwaitTransfer,
    /// The transfer's cancellation is durable: back to the card.
    BackToCard,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Approved { offline: bool },
    Declined { reason: DeclineReason },
    Cancelled { reason: CancelReason },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    /// The new transaction (pending) and the accepted ack are being committed.
    Beginning {
        op: OpId,
    },
    WaitingCard {
        deadline: Millis,
    },
    /// An update is being committed; `then` runs once it is durable.
    Recording {
        op: OpId,
        then: After,
    },
    /// Authorization sent; `guard` fires if the shell never answers.
    Authorizing {
        guard: Millis,
    },
    /// The transfer is registered and its code shown (SPEC 7.7); the
    /// reader is off.
    WaitingTransfer {
        deadline: Millis,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Payment {
    reference: Reference,
    kind: TxKind,
    amount: Money,
    payment_id: Option<PaymentId>,
    policy: OfflinePolicy,
    original: Option<OriginalSale>,
    /// Part of `amount`.
    tip: Option<Money>,
    items: Vec<LineItem>,
    operator_id: Option<String>,
    stage: Stage,
    /// The pending row is durable.
    inserted: bool,
    /// Abort arrived before the pending row was durable.
    abort_requested: bool,
    abort_too_late: bool,
    card: Option<Card>,
    app: CardApp,
    /// The backend's receipt for it, once it answered.
    receipt_url: Option<String>,
    captured_at: UnixMillis,
    /// An authorization went out and the backend did not decline it.
    authorize_sent: bool,
    /// The final state being recorded (set with `After::Show`).
    final_state: TxState,
    /// Paid (or being paid) by bank transfer.
    transfer: Option<TransferWait>,
}

impl Payment {
    /// A transfer registration or cancellation is being committed: an
    /// abort waits for it (then cancels the registration).
    fn transfer_commit_in_flight(&self) -> bool {
        matches!(
            self.stage,
            Stage::Recording {
                then: After::AwaitTransfer | After::BackToCard,
                ..
            }
        )
    }
}

/// The last payment that finished, to answer a late abort.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Finished {
    payment_id: PaymentId,
    /// What a late abort learns: `aborted`/`timed_out` again, `failed`, or
    /// `abort_too_late` once a card was read and the payment ended.
    late_abort: PaymentEventStatus,
}

/// The sans-IO terminal core: every rule of SPEC section 5, no I/O, no
/// clock, no randomness.
///
/// Drive it like this: call [`Terminal::handle`] with each input and the
/// current time, then call [`Terminal::poll`] until it returns `None`, and
/// sleep until [`Terminal::poll_timeout`] (or the next input).
///
/// # Drain order of `poll()`
///
/// `poll()` returns outputs first-in first-out, exactly in the order the
/// core produced them across all `handle` calls since the last drain. The
/// shell must act on them in that order: in particular it must commit
/// `Persist` outputs in the order they were polled (a later change may
/// update a row an earlier one inserted) and answer each `op_id` with exactly
/// one `Persisted` or `PersistFailed`. Write-ahead does not depend on the
/// order: a result screen, an `Authorize` or anything sent about a payment
/// is only produced by the `handle(Persisted)` that confirms its commit.
#[derive(Debug)]
pub struct Terminal {
    config: CoreConfig,
    online: bool,
    queued: u32,
    parked: u32,
    session: SessionStatus,
    totals: Option<SessionTotals>,
    heartbeat_limits: Option<OfflineLimits>,
    exposure: OfflineExposure,
    next_op: u64,
    payment: Option<Payment>,
    /// Commits not tied to the payment in progress.
    background_ops: BTreeSet<OpId>,
    last_finished: Option<Finished>,
    screen: Screen,
    /// When the result screen goes back to idle.
    screen_until: Option<Millis>,
    last_render: Option<ScreenModel>,
    outputs: VecDeque<Output>,
    /// What the cashier is doing between payments (SPEC 7).
    desk: Desk,
    desk_config: DeskConfig,
    catalog: Vec<CatalogItem>,
    operators: Vec<Operator>,
    /// The logged-in operator.
    operator: Option<Operator>,
    login: LoginPad,
    /// The last key press or payment end (the inactivity logout).
    last_activity: Millis,
    /// The agent is stopping: no new payment starts.
    stopping: bool,
    /// An upgrade holds intake (`Input::HoldIntake`): no new payment starts.
    intake_held: bool,
    /// The last payment with a receipt (a card was read), for the
    /// customer's copy on `ok` and the menu's Last receipt.
    last_receipt: Option<Reference>,
    printer_problem: Option<String>,
    /// The session's collection account, when it has one (SPEC 7.7).
    collection_account: Option<CollectionAccount>,
}

/// A payment about to begin: a command's or the cashier's.
struct Start {
    reference: Reference,
    kind: TxKind,
    amount: Money,
    command_id: Option<CommandId>,
    payment_id: Option<PaymentId>,
    partner_reference: Option<String>,
    policy: OfflinePolicy,
    original: Option<OriginalSale>,
    tip: Option<Money>,
    items: Vec<LineItem>,
}

impl Terminal {
    /// A core restored from the store. Queues the first screen and, for
    /// transactions interrupted by a restart, the commits that close them
    /// (`failed`, or `reversal_pending` with a reversal when an
    /// authorization may have gone out).
    pub fn new(config: CoreConfig, restored: RestoredState) -> Terminal {
        let mut t = Terminal {
            online: restored.online,
            queued: restored.queued,
            parked: restored.parked,
            session: restored.session,
            totals: restored.totals,
            heartbeat_limits: restored.heartbeat_limits,
            exposure: OfflineExposure::new(restored.offline_queue),
            next_op: 1,
            payment: None,
            background_ops: BTreeSet::new(),
            last_finished: None,
            screen: Screen::Booting,
            screen_until: None,
            last_render: None,
            outputs: VecDeque::new(),
            desk: Desk::Home,
            desk_config: restored.desk,
            catalog: restored.catalog,
            operators: restored.operators,
            operator: None,
            login: LoginPad::default(),
            last_activity: Millis(0),
            stopping: false,
            intake_held: false,
            last_receipt: None,
            printer_problem: None,
            collection_account: restored.collection_account,
            config,
        };
        for it in restored.interrupted {
            t.close_interrupted(it, restored.booted_at);
        }
        let home = t.resting_screen();
        t.set_screen(home);
        t
    }

    fn close_interrupted(&mut self, it: InterruptedTx, at: UnixMillis) {
        let mut change = Change {
            at,
            tx: None,
            outbox: Vec::new(),
            durability: Durability::Full,
        };
        let mut update = TxUpdate::new(it.reference.clone(), TxState::Failed);
        update.reason = Some("agent_restart".to_string());
        match it.state {
            TxState::Pending => {}
            TxState::Authorizing => {
                update.state = TxState::ReversalPending;
                change.outbox.push(OutboxItem::Reversal {
                    reference: it.reference.clone(),
                });
            }
            _ => return,
        }
        if it.transfer {
            change.outbox.push(OutboxItem::TransferCancel {
                reference: it.reference.clone(),
            });
        }
        if let Some(payment_id) = it.payment_id {
            change.outbox.push(OutboxItem::PaymentEvent {
                payment_id,
                status: PaymentEventStatus::Failed,
                reason: Some("agent_restart".to_string()),
                at,
            });
        }
        change.tx = Some(TxWrite::Update(update));
        self.persist_background(change);
    }

    // ------------------------------------------------------------ public ---

    /// Next output, in production order; `None` when there is nothing to do.
    pub fn poll(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When the core next wants [`Input::TimerDue`] (monotonic clock).
    pub fn poll_timeout(&self) -> Option<Millis> {
        let stage = self.payment.as_ref().and_then(|p| match p.stage {
            Stage::WaitingCard { deadline } | Stage::WaitingTransfer { deadline } => Some(deadline),
            Stage::Authorizing { guard } => Some(guard),
            Stage::Beginning { .. } | Stage::Recording { .. } => None,
        });
        [stage, self.screen_until, self.desk_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// A payment is in progress or the cashier is keying one (a new one
    /// would be refused as busy).
    pub fn is_busy(&self) -> bool {
        self.payment.is_some() || self.desk.holds_work()
    }

    /// The logged-in operator's id.
    pub fn operator_id(&self) -> Option<&str> {
        self.operator.as_ref().map(|o| o.id.as_str())
    }

    /// The reference of the payment in progress.
    pub fn active_reference(&self) -> Option<&Reference> {
        self.payment.as_ref().map(|p| &p.reference)
    }

    /// The screen as it was last rendered.
    pub fn screen(&self) -> ScreenModel {
        self.model()
    }

    pub fn exposure(&self) -> &OfflineExposure {
        &self.exposure
    }

    /// Configured limits tightened by the heartbeat's.
    pub fn effective_limits(&self) -> OfflineLimits {
        match &self.heartbeat_limits {
            Some(h) => self.config.offline_limits.tightened_by(h),
            None => self.config.offline_limits,
        }
    }

    /// Feed one input. Due timers fire first.
    pub fn handle(&mut self, now: Now, input: Input) {
        self.fire_timers(now);
        match input {
            Input::TimerDue => {}
            Input::Command(c) => self.on_command(now, c),
            Input::CardRead { card, app } => self.on_card_read(now, card, app),
            Input::CardError { reason } => self.on_card_error(now, reason),
            Input::Button(b) => self.on_button(now, b),
            Input::Persisted { op_id } => self.on_persisted(now, op_id),
            Input::PersistFailed { op_id, error } => self.on_persist_failed(now, op_id, error),
            Input::AuthAnswer {
                reference,
                result,
                receipt_url,
            } => self.on_auth_answer(now, reference, result, receipt_url),
            Input::Forwarded { reference, outcome } => self.on_forwarded(now, reference, outcome),
            Input::Reversed { reference } => {
                // The backend's answer to the queued reversal: lost in a
                // power cut (with the acknowledgement that follows it), the
                // reversal is resent and answered again.
                let change = Change {
                    at: now.wall,
                    tx: Some(TxWrite::Update(TxUpdate::new(reference, TxState::Reversed))),
                    outbox: Vec::new(),
                    durability: Durability::Relaxed,
                };
                self.persist_background(change);
            }
            Input::LinkChanged { online } => {
                self.online = online;
                self.show_transfer();
                self.refresh();
            }
            Input::CollectionAccount(account) => self.collection_account = account,
            Input::TransferRefused { reference, code } => self.on_transfer_refused(reference, code),
            Input::SessionStatus { status, totals } => {
                self.session = status;
                if status != SessionStatus::Active {
                    self.session_ended();
                }
                if totals.is_some() {
                    self.totals = totals;
                }
                self.show_home_if_resting();
            }
            Input::OfflineLimits(limits) => self.heartbeat_limits = limits,
            Input::Operators(list) => self.on_operators(now, list),
            Input::DeskConfig(c) => self.desk_config = c,
            Input::Catalog(items) => self.on_catalog(items),
            Input::Answer(a) => self.on_answer(now, a),
            Input::PrinterProblem(p) => {
                self.printer_problem = p;
                self.refresh();
            }
            Input::Stopping => self.on_stopping(now),
            Input::HoldIntake(held) => self.intake_held = held,
            Input::QueueDepth { queued, parked } => {
                self.queued = queued;
                self.parked = parked;
                self.refresh();
            }
        }
    }

    // ------------------------------------------------------------ timers ---

    fn fire_timers(&mut self, now: Now) {
        if let Some(p) = &self.payment {
            match p.stage {
                Stage::WaitingCard { deadline } if now.mono >= deadline => {
                    self.outputs.push_back(Output::StopReader);
                    self.finish_without_card(
                        now,
                        TxState::TimedOut,
                        PaymentEventStatus::TimedOut,
                        None,
                        CancelReason::TimedOut,
                    );
                }
                Stage::WaitingTransfer { deadline } if now.mono >= deadline => {
                    self.finish_without_card(
                        now,
                        TxState::TimedOut,
                        PaymentEventStatus::TimedOut,
                        None,
                        CancelReason::TimedOut,
                    );
                }
                Stage::Authorizing { guard } if now.mono >= guard => {
                    let reference = p.reference.clone();
                    self.report(Report::AuthGuardExpired { reference });
                    self.after_unknown(now);
                }
                _ => {}
            }
        }
        if let Some(until) = self.screen_until {
            if now.mono >= until {
                self.screen_until = None;
                if self.payment.is_none() {
                    let home = self.resting_screen();
                    self.set_screen(home);
                }
            }
        }
        self.fire_desk_timers(now);
    }

    // ---------------------------------------------------------- commands ---

    fn reject(&mut self, command_id: CommandId, reason: AckReason) {
        self.report(Report::CommandRejected {
            command_id: command_id.clone(),
            reason,
        });
        self.outputs.push_back(Output::Ack(CommandAck {
            command_id,
            status: AckStatus::Rejected,
            reason: Some(reason),
        }));
    }

    fn accept_now(&mut self, command_id: CommandId) {
        self.outputs.push_back(Output::Ack(CommandAck {
            command_id,
            status: AckStatus::Accepted,
            reason: None,
        }));
    }

    fn on_command(&mut self, now: Now, command: Command) {
        match command {
            Command::Sale(sale) => self.on_sale(now, sale),
            Command::Refund(refund) => self.on_refund(now, refund),
            Command::Abort(abort) => self.on_abort_command(now, abort),
            Command::TransferReceived(c) => self.on_transfer_received(now, c),
            Command::SessionClosed(c) => {
                self.accept_now(c.command_id);
                self.session = SessionStatus::Closed;
                self.session_ended();
                if c.totals.is_some() {
                    self.totals = c.totals;
                }
                // A payment not yet at the card is cancelled; one past the
                // card finishes (captured before the close, still accepted).
                if let Some(p) = self.payment.as_mut() {
                    if matches!(p.stage, Stage::Beginning { .. }) || p.transfer_commit_in_flight() {
                        p.abort_requested = true;
                    }
                }
                let waiting = matches!(
                    self.payment.as_ref().map(|p| &p.stage),
                    Some(Stage::WaitingCard { .. } | Stage::WaitingTransfer { .. })
                );
                if waiting {
                    self.outputs.push_back(Output::StopReader);
                    self.finish_without_card(
                        now,
                        TxState::Aborted,
                        PaymentEventStatus::Aborted,
                        Some("session_closed"),
                        CancelReason::SessionClosed,
                    );
                } else if self.payment.is_none() {
                    self.show_home_now();
                }
            }
        }
    }

    /// Common refusals for a new payment; `Err` carries the ack reason.
    fn check_can_start(&self) -> Result<(), AckReason> {
        if self.is_busy() || self.stopping || self.intake_held {
            return Err(AckReason::Busy);
        }
        if self.session != SessionStatus::Active {
            return Err(AckReason::SessionClosed);
        }
        Ok(())
    }

    fn on_sale(&mut self, now: Now, sale: SaleCommand) {
        if let Err(reason) = self.check_can_start() {
            self.reject(sale.command_id, reason);
            if reason == AckReason::SessionClosed {
                self.show_home_now();
            }
            return;
        }
        if sale.amount.is_zero() {
            return self.reject(sale.command_id, AckReason::InvalidRequest);
        }
        if sale.expires_at.is_some_and(|e| e <= now.wall) {
            return self.reject(sale.command_id, AckReason::Expired);
        }
        // Known offline at command time: refuse now what could never be
        // approved offline, before the customer taps.
        if !self.online && sale.offline_policy == OfflinePolicy::PreferOnline {
            let limits = self.effective_limits();
            if let Err(refusal) = self.exposure.check(&limits, sale.amount, now.wall) {
                self.reject(sale.command_id, AckReason::OfflineLimit);
                // The cashier learns it too, not only the POS (SPEC 5.6).
                self.show_result(
                    now,
                    Screen::Declined {
                        kind: TxKind::Sale,
                        amount: sale.amount,
                        tip: None,
                        reference: sale.reference,
                        reason: DeclineReason::OfflineLimit(refusal),
                        receipt_url: None,
                    },
                );
                return;
            }
        }
        self.begin(
            now,
            Start {
                reference: sale.reference,
                kind: TxKind::Sale,
                amount: sale.amount,
                command_id: Some(sale.command_id),
                payment_id: Some(sale.payment_id),
                partner_reference: sale.partner_reference,
                policy: sale.offline_policy,
                original: None,
                tip: None,
                items: Vec::new(),
            },
        );
    }

    fn on_refund(&mut self, now: Now, refund: RefundCommand) {
        // Refunds of this session's sales stay possible once it closed
        // (SPEC 5.9): only a payment in progress (or being keyed) refuses
        // one, or an upgrade holding intake.
        if self.is_busy() || self.intake_held {
            return self.reject(refund.command_id, AckReason::Busy);
        }
        let original = match refund.original {
            Some(o)
                if o.reference == refund.original_reference
                    && o.kind == TxKind::Sale
                    && o.state.is_approved() =>
            {
                o
            }
            _ => return self.reject(refund.command_id, AckReason::UnknownTransaction),
        };
        if refund.amount.is_zero() {
            return self.reject(refund.command_id, AckReason::InvalidRequest);
        }
        if refund.amount > original.refundable_left || refund.amount > original.amount {
            return self.reject(refund.command_id, AckReason::AmountExceedsRefundable);
        }
        self.begin(
            now,
            Start {
                reference: refund.reference,
                kind: TxKind::Refund,
                amount: refund.amount,
                command_id: Some(refund.command_id),
                payment_id: Some(refund.payment_id),
                partner_reference: None,
                policy: OfflinePolicy::PreferOnline,
                original: Some(original),
                tip: None,
                items: Vec::new(),
            },
        );
    }

    fn on_abort_command(&mut self, now: Now, abort: AbortCommand) {
        let current = self
            .payment
            .as_ref()
            .is_some_and(|p| p.payment_id.as_ref() == Some(&abort.payment_id));
        if current {
            self.accept_now(abort.command_id);
            self.abort_current(now);
            return;
        }
        match self.last_finished.clone() {
            Some(f) if f.payment_id == abort.payment_id => {
                self.accept_now(abort.command_id);
                // Repeat the outcome the POS needs (events are idempotent).
                self.persist_background(Change {
                    at: now.wall,
                    tx: None,
                    outbox: vec![OutboxItem::PaymentEvent {
                        payment_id: f.payment_id,
                        status: f.late_abort,
                        reason: None,
                        at: now.wall,
                    }],
                    durability: Durability::Full,
                });
            }
            _ => self.reject(abort.command_id, AckReason::UnknownTransaction),
        }
    }

    /// Abort the payment in progress (abort command or cancel button).
    fn abort_current(&mut self, now: Now) {
        let Some(p) = self.payment.as_mut() else {
            return;
        };
        if p.transfer_commit_in_flight() {
            p.abort_requested = true;
            return;
        }
        match &p.stage {
            Stage::Beginning { .. } => p.abort_requested = true,
            Stage::WaitingTransfer { .. } => {
                self.finish_without_card(
                    now,
                    TxState::Aborted,
                    PaymentEventStatus::Aborted,
                    None,
                    CancelReason::Cancelled,
                );
            }
            Stage::WaitingCard { .. } => {
                self.outputs.push_back(Output::StopReader);
                self.finish_without_card(
                    now,
                    TxState::Aborted,
                    PaymentEventStatus::Aborted,
                    None,
                    CancelReason::Cancelled,
                );
            }
            Stage::Recording { .. } | Stage::Authorizing { .. } => {
                let paid_by_transfer = p.transfer.as_ref().is_some_and(|t| t.payer.is_some());
                if p.card.is_none() && !paid_by_transfer {
                    // Already being recorded as aborted or timed out.
                    return;
                }
                if p.abort_too_late {
                    return;
                }
                p.abort_too_late = true;
                let reference = p.reference.clone();
                let payment_id = p.payment_id.clone();
                self.report(Report::AbortTooLate { reference });
                if let Some(payment_id) = payment_id {
                    self.persist_background(Change {
                        at: now.wall,
                        tx: None,
                        outbox: vec![OutboxItem::PaymentEvent {
                            payment_id,
                            status: PaymentEventStatus::AbortTooLate,
                            reason: Some("card_already_read".to_string()),
                            at: now.wall,
                        }],
                        durability: Durability::Full,
                    });
                }
            }
        }
    }

    fn begin(&mut self, now: Now, start: Start) {
        let Start {
            reference,
            kind,
            amount,
            command_id,
            payment_id,
            partner_reference,
            policy,
            original,
            tip,
            items,
        } = start;
        let operator_id = self.operator.as_ref().map(|o| o.id.clone());
        // The payment takes the screen; whatever the cashier was browsing
        // (menu, report) is closed. Keyed work never gets here: it makes
        // the terminal busy.
        self.desk = Desk::Home;
        let mut outbox = Vec::new();
        if let Some(command_id) = &command_id {
            outbox.push(OutboxItem::Ack(CommandAck {
                command_id: command_id.clone(),
                status: AckStatus::Accepted,
                reason: None,
            }));
        }
        if let Some(payment_id) = &payment_id {
            outbox.push(OutboxItem::PaymentEvent {
                payment_id: payment_id.clone(),
                status: PaymentEventStatus::InProgress,
                reason: None,
                at: now.wall,
            });
        }
        let new = NewTx {
            reference: reference.clone(),
            kind,
            amount,
            currency: Currency::Ngn,
            payment_id: payment_id.clone(),
            command_id,
            partner_reference,
            original_reference: original.as_ref().map(|o| o.reference.clone()),
            offline_policy: policy,
            state: TxState::Pending,
            operator_id: operator_id.clone(),
            tip_amount: tip,
            items: items.clone(),
        };
        // A sale keyed at the terminal (nothing to acknowledge, nothing
        // queued) needs no fsync of its own: the card's `authorizing` or
        // result commit, or the abort, makes it durable before anything
        // leaves the terminal or any outcome is shown. A power cut before
        // that loses a tap screen nobody paid at. A partner's sale was
        // acknowledged: durable at once.
        let durability = if outbox.is_empty() {
            Durability::Relaxed
        } else {
            Durability::Full
        };
        let op = self.persist(Change {
            at: now.wall,
            tx: Some(TxWrite::Insert(new)),
            outbox,
            durability,
        });
        self.report(Report::PaymentStarted {
            reference: reference.clone(),
            kind,
            amount,
        });
        self.screen_until = None;
        self.payment = Some(Payment {
            reference,
            kind,
            amount,
            payment_id,
            policy,
            original,
            tip,
            items,
            operator_id,
            stage: Stage::Beginning { op },
            inserted: false,
            abort_requested: false,
            abort_too_late: false,
            card: None,
            app: CardApp::default(),
            receipt_url: None,
            captured_at: now.wall,
            authorize_sent: false,
            final_state: TxState::Pending,
            transfer: None,
        });
    }

    // -------------------------------------------------------------- card ---

    fn on_card_read(&mut self, now: Now, card: Card, app: CardApp) {
        let Some(p) = self.payment.as_mut() else {
            return self.report(Report::Ignored {
                input: "card_read",
                why: "no payment waiting for a card",
            });
        };
        if !matches!(p.stage, Stage::WaitingCard { .. }) {
            return self.report(Report::Ignored {
                input: "card_read",
                why: "payment not waiting for a card",
            });
        }
        p.card = Some(card.clone());
        p.app = app;
        p.captured_at = now.wall;
        let (kind, amount, policy, tip) = (p.kind, p.amount, p.policy, p.tip);
        let mismatch = p
            .original
            .as_ref()
            .is_some_and(|o| o.card_token != card.token);
        self.outputs.push_back(Output::StopReader);
        self.outputs.push_back(Output::Beep(Beep::Read));
        self.set_screen(Screen::Processing { kind, amount, tip });

        if mismatch {
            return self.finish_declined_locally(
                now,
                None,
                "card_mismatch",
                DeclineReason::CardMismatch,
            );
        }
        if self.online {
            self.record_decision(now, Decision::Online);
            let Some(mut update) = self.update(TxState::Authorizing) else {
                return;
            };
            update.decision = Some(Decision::Online);
            self.record(now, update, Vec::new(), After::Authorize);
            return;
        }
        if policy == OfflinePolicy::RequireOnline {
            let d = Decision::RefusedOnlineRequired;
            self.record_decision(now, d);
            return self.finish_declined_locally(
                now,
                Some(d),
                "online_required",
                DeclineReason::OnlineRequired,
            );
        }
        match self.offline_check(now) {
            Ok(()) => self.approve_offline(now, Decision::OfflineLinkDown),
            Err(refusal) => {
                let d = Decision::RefusedOfflineLimit(refusal);
                self.record_decision(now, d);
                self.finish_declined_locally(
                    now,
                    Some(d),
                    refusal.code(),
                    DeclineReason::OfflineLimit(refusal),
                );
            }
        }
    }

    /// May the current payment be approved offline now? Refunds are not
    /// limited (each is bounded by its original sale).
    fn offline_check(&self, now: Now) -> Result<(), OfflineRefusal> {
        match &self.payment {
            Some(p) if p.kind == TxKind::Sale => {
                self.exposure
                    .check(&self.effective_limits(), p.amount, now.wall)
            }
            _ => Ok(()),
        }
    }

    /// Approve the current payment offline: state and forward in one commit.
    fn approve_offline(&mut self, now: Now, decision: Decision) {
        self.record_decision(now, decision);
        let Some(submission) = self.submission(true) else {
            return;
        };
        let Some(mut update) = self.update(TxState::OfflineApproved) else {
            return;
        };
        if decision == Decision::OfflineAfterUnknown {
            // The stored decision stays `online`; the fallback is the reason.
            update.reason = Some(decision.code().to_string());
        } else {
            update.decision = Some(decision);
        }
        self.record(
            now,
            update,
            vec![OutboxItem::Submit(submission)],
            After::Show(Outcome::Approved { offline: true }),
        );
    }

    fn on_card_error(&mut self, now: Now, reason: String) {
        self.report(Report::CardReadFailed { reason });
        let Some(p) = &self.payment else {
            return;
        };
        let Stage::WaitingCard { deadline } = p.stage else {
            return;
        };
        let (kind, amount, tip) = (p.kind, p.amount, p.tip);
        let message = Some("Card read failed, tap again".to_string());
        self.outputs.push_back(Output::Beep(Beep::Failure));
        self.set_screen(match kind {
            TxKind::Sale => Screen::TapCard {
                amount,
                tip,
                message,
            },
            TxKind::Refund => Screen::RefundTap { amount, message },
        });
        // The tap deadline is unchanged: the reader gets what is left.
        self.outputs.push_back(Output::StartReader {
            timeout_ms: deadline.0.saturating_sub(now.mono.0),
        });
    }

    fn on_button(&mut self, now: Now, button: Button) {
        self.last_activity = now.mono;
        if self.payment.is_some() {
            if button == Button::Cancel {
                self.abort_current(now);
            } else if matches!(button, Button::Up | Button::Down) {
                self.on_transfer_key(now, button);
            } else {
                self.report(Report::Ignored {
                    input: "button",
                    why: "a payment is in progress (only cancel counts)",
                });
            }
            return;
        }
        if self.screen_until.take().is_some() {
            // A result screen is up: ok/back/cancel dismiss it (ok prints
            // the customer's receipt where receipts are printed); a digit
            // or the menu starts the cashier's next action straight away.
            if button == Button::Ok && self.prints_on_ok() && self.result_has_receipt() {
                if let Some(reference) = self.last_receipt.clone() {
                    self.outputs.push_back(Output::Print(PrintJob::Receipt {
                        reference,
                        copy: ReceiptCopy::Customer,
                    }));
                }
            }
            if matches!(button, Button::Cancel | Button::Ok | Button::Back) {
                return self.show_home_now();
            }
        }
        self.desk_key(now, button);
    }

    // ------------------------------------------------------ authorization ---

    fn on_auth_answer(
        &mut self,
        now: Now,
        reference: Reference,
        result: AuthResult,
        receipt_url: Option<String>,
    ) {
        let current = self.payment.as_ref().is_some_and(|p| {
            p.reference == reference && matches!(p.stage, Stage::Authorizing { .. })
        });
        if !current {
            return self.report(Report::Ignored {
                input: "auth_answer",
                why: "no authorization in flight for this reference",
            });
        }
        if let Some(p) = self.payment.as_mut() {
            p.receipt_url = receipt_url;
        }
        match result {
            AuthResult::Approved {
                auth_code,
                transaction_id,
            } => {
                let Some(mut update) = self.update(TxState::Approved) else {
                    return;
                };
                update.auth_code = auth_code;
                update.transaction_id = Some(transaction_id);
                self.record(
                    now,
                    update,
                    Vec::new(),
                    After::Show(Outcome::Approved { offline: false }),
                );
            }
            AuthResult::Declined { reason } => {
                let decline = DeclineReason::from_code(&reason);
                self.declined_online(now, reason, decline);
            }
            AuthResult::Refused { code } => {
                self.declined_online(now, code, DeclineReason::TerminalProblem);
            }
            AuthResult::Unknown => self.after_unknown(now),
        }
    }

    /// The backend answered no (the issuer's decline or a refusal): the
    /// transaction is declined with `code`, shown as `decline` once
    /// committed.
    fn declined_online(&mut self, now: Now, code: String, decline: DeclineReason) {
        if let Some(p) = self.payment.as_mut() {
            p.authorize_sent = false;
        }
        let Some(mut update) = self.update(TxState::Declined) else {
            return;
        };
        update.reason = Some(code);
        self.record(
            now,
            update,
            Vec::new(),
            After::Show(Outcome::Declined { reason: decline }),
        );
    }

    /// The online outcome is unknown: approve offline under the same
    /// reference when allowed, otherwise decline and queue a reversal.
    fn after_unknown(&mut self, now: Now) {
        let Some(p) = &self.payment else {
            return;
        };
        if p.policy == OfflinePolicy::PreferOnline && self.offline_check(now).is_ok() {
            return self.approve_offline(now, Decision::OfflineAfterUnknown);
        }
        let d = Decision::ReverseAfterUnknown;
        self.record_decision(now, d);
        let Some(p) = &self.payment else {
            return;
        };
        let reference = p.reference.clone();
        let mut outbox = vec![OutboxItem::Reversal {
            reference: reference.clone(),
        }];
        if let Some(payment_id) = p.payment_id.clone() {
            outbox.push(OutboxItem::PaymentEvent {
                payment_id,
                status: PaymentEventStatus::Failed,
                reason: Some("network_error".to_string()),
                at: now.wall,
            });
        }
        let Some(mut update) = self.update(TxState::ReversalPending) else {
            return;
        };
        // The stored decision stays `online`; the fallback is the reason.
        update.reason = Some(d.code().to_string());
        self.record(
            now,
            update,
            outbox,
            After::Show(Outcome::Declined {
                reason: DeclineReason::NetworkProblem,
            }),
        );
    }

    fn on_forwarded(&mut self, now: Now, reference: Reference, outcome: ForwardOutcome) {
        self.exposure.remove(&reference);
        // Confirmed by the backend: approved (the stored decision still says
        // it was taken offline).
        let mut update = TxUpdate::new(reference.clone(), TxState::Approved);
        match outcome {
            ForwardOutcome::Approved {
                transaction_id,
                auth_code,
            } => {
                update.transaction_id = Some(transaction_id);
                update.auth_code = auth_code;
            }
            ForwardOutcome::Declined { reason } => {
                self.report(Report::OfflineDeclined {
                    reference,
                    reason: reason.clone(),
                });
                update.state = TxState::OfflineDeclined;
                update.reason = Some(reason);
            }
        }
        // The backend's verdict on a forward: lost in a power cut (with the
        // forward's acknowledgement, committed after it), the forward is
        // resent under the same reference and answered the same way.
        self.persist_background(Change {
            at: now.wall,
            tx: Some(TxWrite::Update(update)),
            outbox: Vec::new(),
            durability: Durability::Relaxed,
        });
    }

    // ------------------------------------------------------- persistence ---

    fn persist(&mut self, change: Change) -> OpId {
        let op_id = OpId(self.next_op);
        self.next_op += 1;
        self.outputs
            .push_back(Output::Persist(Persist { op_id, change }));
        op_id
    }

    fn persist_background(&mut self, change: Change) {
        let op = self.persist(change);
        self.background_ops.insert(op);
    }

    /// An update of the current payment's row carrying its card and capture
    /// time (None without a payment in progress).
    fn update(&self, state: TxState) -> Option<TxUpdate> {
        let p = self.payment.as_ref()?;
        let mut u = TxUpdate::new(p.reference.clone(), state);
        u.card = p.card.clone();
        if p.card.is_some() {
            u.captured_at = Some(p.captured_at);
            u.card_app = Some(p.app.clone());
        }
        Some(u)
    }

    fn submission(&self, offline: bool) -> Option<Submission> {
        let p = self.payment.as_ref()?;
        Some(Submission {
            reference: p.reference.clone(),
            payment_id: p.payment_id.clone(),
            kind: p.kind,
            amount: p.amount,
            card: p.card.clone()?,
            captured_at: p.captured_at,
            offline,
            original_reference: p.original.as_ref().map(|o| o.reference.clone()),
            operator_id: p.operator_id.clone(),
            tip_amount: p.tip,
            items: p.items.clone(),
        })
    }

    fn record_decision(&mut self, _now: Now, decision: Decision) {
        if let Some(p) = &self.payment {
            let reference = p.reference.clone();
            self.report(Report::Decided {
                reference,
                decision,
            });
        }
    }

    /// Commit `update` (and `outbox`) for the current payment; `then` runs
    /// when it is durable.
    fn record(&mut self, now: Now, update: TxUpdate, outbox: Vec<OutboxItem>, then: After) {
        let state = update.state;
        let op = self.persist(Change {
            at: now.wall,
            tx: Some(TxWrite::Update(update)),
            outbox,
            durability: Durability::Full,
        });
        if let Some(p) = self.payment.as_mut() {
            if let After::Show(_) = then {
                p.final_state = state;
            }
            p.stage = Stage::Recording { op, then };
        }
    }

    /// Aborted or timed out before a card was read.
    fn finish_without_card(
        &mut self,
        now: Now,
        state: TxState,
        status: PaymentEventStatus,
        reason: Option<&str>,
        cancel: CancelReason,
    ) {
        let Some(p) = &self.payment else {
            return;
        };
        let mut outbox = Vec::new();
        if p.transfer.as_ref().is_some_and(|t| t.registered) {
            outbox.push(OutboxItem::TransferCancel {
                reference: p.reference.clone(),
            });
        }
        if let Some(payment_id) = p.payment_id.clone() {
            outbox.push(OutboxItem::PaymentEvent {
                payment_id,
                status,
                reason: reason.map(str::to_string),
                at: now.wall,
            });
        }
        let Some(mut update) = self.update(state) else {
            return;
        };
        update.reason = reason.map(str::to_string);
        self.record(
            now,
            update,
            outbox,
            After::Show(Outcome::Cancelled { reason: cancel }),
        );
    }

    /// Declined on the terminal before anything was sent.
    fn finish_declined_locally(
        &mut self,
        now: Now,
        decision: Option<Decision>,
        reason: &str,
        decline: DeclineReason,
    ) {
        let Some(p) = &self.payment else {
            return;
        };
        let mut outbox = Vec::new();
        if let Some(payment_id) = p.payment_id.clone() {
            outbox.push(OutboxItem::PaymentEvent {
                payment_id,
                status: PaymentEventStatus::Failed,
                reason: Some(reason.to_string()),
                at: now.wall,
            });
        }
        let Some(mut update) = self.update(TxState::Declined) else {
            return;
        };
        update.decision = decision;
        update.reason = Some(reason.to_string());
        self.record(
            now,
            update,
            outbox,
            After::Show(Outcome::Declined { reason: decline }),
        );
    }

    fn on_persisted(&mut self, now: Now, op_id: OpId) {
        if self.background_ops.remove(&op_id) {
            return;
        }
        let Some(p) = self.payment.as_mut() else {
            return self.report(Report::Ignored {
                input: "persisted",
                why: "unknown op",
            });
        };
        match p.stage.clone() {
            Stage::Beginning { op } if op == op_id => {
                p.inserted = true;
                if p.abort_requested {
                    return self.finish_without_card(
                        now,
                        TxState::Aborted,
                        PaymentEventStatus::Aborted,
                        None,
                        CancelReason::Cancelled,
                    );
                }
                self.wait_for_card(now);
            }
            Stage::Recording { op, then } if op == op_id => match then {
                After::Authorize => {
                    let Some(submission) = self.submission(false) else {
                        return;
                    };
                    if let Some(p) = self.payment.as_mut() {
                        p.authorize_sent = true;
                        p.stage = Stage::Authorizing {
                            guard: now.mono.after(
                                self.config
                                    .auth_timeout_ms
                                    .saturating_add(self.config.auth_guard_grace_ms),
                            ),
                        };
                    }
                    self.outputs
                        .push_back(Output::Authorize(AuthRequest { submission }));
                }
                After::Show(outcome) => self.show_outcome(now, outcome),
                After::AwaitTransfer => self.after_registered(now),
                After::BackToCard => self.after_cancelled_back(now),
            },
            _ => self.report(Report::Ignored {
                input: "persisted",
                why: "unknown op",
            }),
        }
    }

    /// The final state is durable: show it and end the payment.
    fn show_outcome(&mut self, now: Now, outcome: Outcome) {
        let Some(p) = self.payment.take() else {
            return;
        };
        self.last_activity = now.mono;
        let screen = match outcome {
            Outcome::Approved { offline } => {
                if offline {
                    self.exposure.insert(QueuedOffline {
                        reference: p.reference.clone(),
                        kind: p.kind,
                        amount: p.amount,
                        captured_at: p.captured_at,
                    });
                }
                let message = if p.abort_too_late {
                    Some("Too late to cancel: payment approved".to_string())
                } else if p.transfer.is_some() {
                    Some("Transfer received".to_string())
                } else if offline {
                    Some("Approved offline".to_string())
                } else {
                    None
                };

                self.outputs.push_back(Output::Beep(Beep::Success));
                Screen::Approved {
                    kind: p.kind,
                    amount: p.amount,
                    tip: p.tip,
                    reference: p.reference.clone(),
                    offline_approval: offline,
                    message,
                    print_prompt: self.prints_on_ok(),
                    transfer: p.transfer.is_some(),
                    // Offline, the terminal names the receipt the backend
                    // will have once the payment is forwarded.
                    receipt_url: p.receipt_url.clone().or_else(|| {
                        offline
                            .then_some(self.config.receipt_base.as_ref())
                            .flatten()
                            .map(|b| format!("{}/r/ref/{}", b.trim_end_matches('/'), p.reference))
                    }),
                }
            }
            Outcome::Declined { reason } => {
                self.outputs.push_back(Output::Beep(Beep::Failure));
                Screen::Declined {
                    kind: p.kind,
                    amount: p.amount,
                    tip: p.tip,
                    reference: p.reference.clone(),
                    reason,
                    receipt_url: p.receipt_url.clone(),
                }
            }
            Outcome::Cancelled { reason } => Screen::Cancelled {
                amount: p.amount,
                reason,
            },
        };
        self.report(Report::Finished {
            reference: p.reference.clone(),
            state: p.final_state,
        });
        let paid_by_transfer = p.transfer.as_ref().is_some_and(|t| t.payer.is_some());
        if (p.card.is_some() || paid_by_transfer) && !matches!(screen, Screen::Cancelled { .. }) {
            self.last_receipt = Some(p.reference.clone());
            if self.config.printer && self.desk_config.receipt_print == ReceiptPrint::Auto {
                self.outputs.push_back(Output::Print(PrintJob::Receipt {
                    reference: p.reference.clone(),
                    copy: ReceiptCopy::Cashier,
                }));
            }
        }
        if let Some(payment_id) = p.payment_id {
            let late_abort = match p.final_state {
                TxState::Aborted => PaymentEventStatus::Aborted,
                TxState::TimedOut => PaymentEventStatus::TimedOut,
                _ => PaymentEventStatus::AbortTooLate,
            };
            self.last_finished = Some(Finished {
                payment_id,
                late_abort,
            });
        }
        self.show_result(now, screen);
    }

    fn on_persist_failed(&mut self, now: Now, op_id: OpId, error: String) {
        if self.background_ops.remove(&op_id) {
            return self.report(Report::PersistFailed {
                op_id,
                reference: None,
                error,
            });
        }
        let ours = self.payment.as_ref().is_some_and(|p| match &p.stage {
            Stage::Beginning { op } | Stage::Recording { op, .. } => *op == op_id,
            Stage::WaitingCard { .. }
            | Stage::Authorizing { .. }
            | Stage::WaitingTransfer { .. } => false,
        });
        if !ours {
            return self.report(Report::Ignored {
                input: "persist_failed",
                why: "unknown op",
            });
        }
        let Some(p) = self.payment.take() else {
            return;
        };
        self.report(Report::PersistFailed {
            op_id,
            reference: Some(p.reference.clone()),
            error,
        });
        // Nothing about this payment is approved or shown as a result. If an
        // authorization went out, reverse it; then try to close the row.
        if p.authorize_sent {
            self.outputs.push_back(Output::ReverseNow {
                reference: p.reference.clone(),
            });
        }
        if p.inserted {
            let mut outbox = Vec::new();
            let mut update = TxUpdate::new(p.reference.clone(), TxState::Failed);
            update.reason = Some("storage_error".to_string());
            if p.authorize_sent {
                update.state = TxState::ReversalPending;
                outbox.push(OutboxItem::Reversal {
                    reference: p.reference.clone(),
                });
            }
            if p.transfer.as_ref().is_some_and(|t| t.registered) {
                outbox.push(OutboxItem::TransferCancel {
                    reference: p.reference.clone(),
                });
            }
            if let Some(payment_id) = p.payment_id.clone() {
                outbox.push(OutboxItem::PaymentEvent {
                    payment_id,
                    status: PaymentEventStatus::Failed,
                    reason: Some("storage_error".to_string()),
                    at: now.wall,
                });
            }
            self.persist_background(Change {
                at: now.wall,
                tx: Some(TxWrite::Update(update)),
                outbox,
                durability: Durability::Full,
            });
        }
        if let Some(payment_id) = p.payment_id {
            self.last_finished = Some(Finished {
                payment_id,
                late_abort: PaymentEventStatus::Failed,
            });
        }
        self.outputs.push_back(Output::StopReader);
        self.outputs.push_back(Output::Beep(Beep::Failure));
        self.show_result(
            now,
            Screen::Error {
                message: "Storage error: payment not completed, no charge".to_string(),
            },
        );
    }

    /// Wait for the card (again): reader on, a fresh tap deadline, the tap
    /// screen.
    fn wait_for_card(&mut self, now: Now) {
        let Some(p) = self.payment.as_mut() else {
            return;
        };
        p.stage = Stage::WaitingCard {
            deadline: now.mono.after(self.config.tap_timeout_ms),
        };
        self.outputs.push_back(Output::StartReader {
            timeout_ms: self.config.tap_timeout_ms,
        });
        let tap = self.tap_screen(None);
        self.set_screen(tap);
    }

    /// The tap screen of the payment in progress.
    fn tap_screen(&self, message: Option<String>) -> Screen {
        match &self.payment {
            Some(p) if p.kind == TxKind::Refund => Screen::RefundTap {
                amount: p.amount,
                message,
            },
            Some(p) => Screen::TapCard {
                amount: p.amount,
                tip: p.tip,
                message,
            },
            None => self.home_screen(),
        }
    }

    // ---------------------------------------------------------- receipts ---

    /// `ok` on a result screen prints the customer's copy.
    fn prints_on_ok(&self) -> bool {
        self.config.printer && self.desk_config.receipt_print != ReceiptPrint::Off
    }

    /// The result screen up is the last receipt's payment.
    fn result_has_receipt(&self) -> bool {
        let shown = match &self.screen {
            Screen::Approved { reference, .. } | Screen::Declined { reference, .. } => {
                Some(reference)
            }
            _ => None,
        };
        shown.is_some() && shown == self.last_receipt.as_ref()
    }

    // ----------------------------------------------------------- screens ---

    fn report(&mut self, r: Report) {
        self.outputs.push_back(Output::Report(r));
    }

    fn home_screen(&self) -> Screen {
        if self.session == SessionStatus::Active {
            Screen::Idle {
                event_name: self.config.event_name.clone(),
                terminal_label: self.config.terminal_label.clone(),
            }
        } else {
            Screen::SessionClosed {
                totals: self.totals,
                status: self.session,
            }
        }
    }

    /// Between payments, once no result is shown: the login, the cashier's
    /// current screen (amount entry, menu...) or the home screen.
    fn resting_screen(&self) -> Screen {
        // Once the session is over, its end-of-day screen is home; a
        // supervisor's first digit there opens the login (refunds stay
        // possible, SPEC 5.9).
        if self.needs_login() && (self.session == SessionStatus::Active || self.login_started()) {
            return self.login_screen();
        }
        match self.desk_screen() {
            Some(s) => s,
            None => self.home_screen(),
        }
    }

    fn show_home_now(&mut self) {
        self.screen_until = None;
        let home = self.resting_screen();
        self.set_screen(home);
    }

    /// Idle or session screen up (no payment, no result screen): re-evaluate.
    fn show_home_if_resting(&mut self) {
        if self.payment.is_none() && self.screen_until.is_none() {
            let home = self.resting_screen();
            self.set_screen(home);
        }
    }

    fn model(&self) -> ScreenModel {
        ScreenModel {
            screen: self.screen.clone(),
            currency: Currency::Ngn,
            offline: !self.online,
            queued: self.queued,
            parked: self.parked,
            operator: self.operator.as_ref().map(|o| OperatorTag {
                id: o.id.clone(),
                name: o.name.clone(),
            }),
            printer_problem: self.printer_problem.clone(),
        }
    }

    /// Shows a result screen for `result_screen_ms`, then the home screen.
    fn show_result(&mut self, now: Now, screen: Screen) {
        self.set_screen(screen);
        self.screen_until = Some(now.mono.after(self.config.result_screen_ms));
    }

    fn set_screen(&mut self, screen: Screen) {
        self.screen = screen;
        self.refresh();
    }

    /// Render when what the display shows changed.
    fn refresh(&mut self) {
        let model = self.model();
        if self.last_render.as_ref() != Some(&model) {
            self.last_render = Some(model.clone());
            self.outputs.push_back(Output::Render(model));
        }
    }
}
