//! The core loop: the one task that owns the [`Terminal`].
//!
//! It waits on its input channel, on the core's `poll_timeout` (a
//! `sleep_until`, never a polling tick), on the watchdog timer and on the
//! final stop. After every input it drains `poll()` in order:
//!
//! | output | what the loop does |
//! |---|---|
//! | `Persist` | maps the change ([`crate::mapping`]), commits it with `AsyncStore::record`, answers `Persisted` / `PersistFailed`, wakes the outbox when items were enqueued |
//! | `Render` | maps the screen for `ui` and its semantic state, hands both to the display task ([`super::display`]) |
//! | `Authorize` | spawns the online authorization (auth timeout), answered with `AuthAnswer` |
//! | `Ack` | spawns a direct ack with a few retries (acks that matter are in the outbox) |
//! | `ReverseNow` | spawns a best-effort reversal (a queued one follows when storage allows) |
//! | `StartReader` / `StopReader` | tells the reader task (start is sent after the drain, with the amount on screen) |
//! | `Beep` | tells the indicator task |
//! | `Report` | `tracing` at INFO / WARN / ERROR (ERROR: money at risk); a login opens the shift |
//! | `Query` | answered inline from the store ([`answer`](CoreLoop::answer)): a reference minted from the durable counter, recent sales, a sale, the X report, or the Z report's commit (which wakes the outbox) |
//!
//! Commits are awaited inline, so the order of the core's persists is the
//! order of the store's commits.
//!
//! Metrics ([`crate::metrics`]): a payment is counted when the core reports
//! it finished (its kind and last decision remembered from the earlier
//! reports); tap → result runs on the monotonic clock from the `CardRead`
//! input to the render of the result screen that follows it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hal::{ReadPurpose, ReadRequest, Signal};
use proto::{Currency, Money, PaymentId, Reference};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::display::Frame;
use crate::clock::Clock;
use crate::core::{self, Beep, Input, Output, Report, ScreenModel, Terminal};
use crate::mapping;
use crate::msg::{CoreMsg, CoreStatus, ReaderCmd};
use crate::sync::online::Online;
use crate::task::{RunError, Task};

pub struct CoreLoop {
    pub terminal: Terminal,
    /// Frames for the display task.
    pub display: mpsc::Sender<Frame>,
    pub store: store::AsyncStore,
    /// The backend calls the core asks for (authorize, ack, reverse).
    pub online: Online,
    pub clock: Clock,
    pub rx: mpsc::Receiver<CoreMsg>,
    pub reader: mpsc::Sender<ReaderCmd>,
    pub indicator: mpsc::Sender<Signal>,
    pub outbox_wake: Arc<Notify>,
    pub status: watch::Sender<CoreStatus>,
    pub event_name: String,
    pub terminal_label: String,
    /// Payment ids of transactions in flight, for ordering their updates'
    /// outbox items per payment.
    pub payments: HashMap<Reference, PaymentId>,
    pub all: CancellationToken,
    pub watchdog: Option<Duration>,
    pub queued: u32,
    pub parked: u32,
    /// For the references of keypad sales.
    pub terminal_id: proto::TerminalId,
    /// The printer task, when a printer is configured.
    pub printer: Option<PrintOut>,
    /// Where the credentials are, for unpairing from the menu.
    pub data_dir: std::path::PathBuf,
    /// Cancelled once the terminal was unpaired from the menu: the runtime
    /// stops gracefully and the daemon pairs again (SPEC 8.1).
    pub unpaired: CancellationToken,
    pub metrics: crate::metrics::Metrics,
    /// The payment in progress as the reports told it, for counting it.
    pub paying: Option<Paying>,
}

/// What the metrics need of the payment in progress.
#[derive(Debug, Clone, Copy)]
pub struct Paying {
    kind: proto::TxKind,
    decision: Option<core::Decision>,
    /// When its card was read (monotonic).
    tapped_at: Option<Instant>,
}

/// Where print jobs go, and how they are laid out.
pub struct PrintOut {
    pub jobs: mpsc::Sender<hal::Document>,
    /// Characters per line of the paper.
    pub columns: usize,
    /// The backend's address, for the receipt's QR code.
    pub receipt_base: Option<String>,
}

impl Task for CoreLoop {
    const NAME: &'static str = "core loop";

    fn run(self) -> impl Future<Output = Result<(), RunError>> + Send {
        self.run_loop()
    }
}

impl CoreLoop {
    async fn run_loop(mut self) -> Result<(), RunError> {
        // The first screen and the commits that close interrupted payments.
        self.drain().await;
        let mut watchdog_at = self.watchdog.map(|p| Instant::now() + p);
        loop {
            let wake = self.terminal.poll_timeout().map(|t| self.clock.instant(t));
            tokio::select! {
                msg = self.rx.recv() => match msg {
                    Some(CoreMsg::Input(input)) => {
                        self.handle(input);
                        self.drain().await;
                    }
                    Some(CoreMsg::InputDone(input, done)) => {
                        self.handle(input);
                        let ok = self.drain().await;
                        let _ = done.send(ok);
                    }
                    Some(CoreMsg::Stopping) => {
                        // A payment waiting for its card is cancelled, the
                        // cashier's keyed work dropped, nothing new starts.
                        self.handle(Input::Stopping);
                        self.drain().await;
                    }
                    Some(CoreMsg::RefreshQueue) => {
                        self.refresh_queue().await;
                        self.drain().await;
                    }
                    None => return Err(RunError::TaskStopped { task: "core loop inputs" }),
                },
                _ = sleep_until_opt(wake) => {
                    self.handle(Input::TimerDue);
                    self.drain().await;
                }
                _ = sleep_until_opt(watchdog_at) => {
                    super::notify::watchdog();
                    watchdog_at = self.watchdog.map(|p| Instant::now() + p);
                }
                _ = self.all.cancelled() => return Ok(()),
            }
        }
    }

    fn handle(&mut self, input: Input) {
        if let (Input::CardRead { .. }, Some(p)) = (&input, self.paying.as_mut()) {
            p.tapped_at.get_or_insert_with(Instant::now);
        }
        let now = self.clock.now();
        self.terminal.handle(now, input);
    }

    /// Acts on every output, in order. Returns false when a commit failed.
    async fn drain(&mut self) -> bool {
        let mut all_ok = true;
        let mut start: Option<u64> = None;
        loop {
            let mut enqueued = false;
            while let Some(out) = self.terminal.poll() {
                match out {
                    Output::Persist(p) => {
                        let (ok, items) = self.commit(&p.change).await;
                        enqueued |= items;
                        if ok.is_ok() && items {
                            // The result screen this commit unlocks shows
                            // the queue with its own items in it.
                            self.refresh_queue().await;
                        }
                        let now = self.clock.now();
                        match ok {
                            Ok(()) => self
                                .terminal
                                .handle(now, Input::Persisted { op_id: p.op_id }),
                            Err(error) => {
                                all_ok = false;
                                self.terminal.handle(
                                    now,
                                    Input::PersistFailed {
                                        op_id: p.op_id,
                                        error,
                                    },
                                );
                            }
                        }
                    }
                    Output::Render(m) => self.render(&m).await,
                    Output::Authorize(req) => self.online.authorize(req),
                    Output::Ack(a) => self.online.ack(a),
                    Output::ReverseNow { reference } => self.online.reverse(reference),
                    Output::StartReader { timeout_ms } => start = Some(timeout_ms),
                    Output::StopReader => {
                        start = None;
                        // The reader task takes commands while it reads, so
                        // this never waits long.
                        let _ = self.reader.send(ReaderCmd::Stop).await;
                    }
                    Output::Beep(b) => {
                        let signal = match b {
                            Beep::Read => Signal::CardRead,
                            Beep::Success => Signal::Success,
                            Beep::Failure => Signal::Failure,
                        };
                        let _ = self.indicator.try_send(signal);
                    }
                    Output::Report(r) => {
                        log_report(&r);
                        self.count(&r);
                        if let Report::LoggedIn { .. } = r {
                            // SPEC 7.5: a shift starts at the first login.
                            if let Err(e) = self.store.open_shift(self.clock.wall_ms()).await {
                                tracing::warn!(error = %e, "cannot record the shift's opening");
                            }
                        }
                    }
                    Output::Print(job) => self.print(job).await,
                    Output::Query(q) => {
                        let (answer, items) = self.answer(q).await;
                        enqueued |= items;
                        let now = self.clock.now();
                        self.terminal.handle(now, Input::Answer(answer));
                    }
                }
            }
            if enqueued {
                self.outbox_wake.notify_one();
                if self.refresh_queue().await {
                    continue; // QueueDepth produced outputs (a render)
                }
            }
            break;
        }
        if let Some(timeout_ms) = start {
            let request = self.read_request(timeout_ms);
            if self.reader.send(ReaderCmd::Start(request)).await.is_err() {
                tracing::error!("card reader task is gone; the payment cannot take a card");
            }
        }
        self.status.send_if_modified(|s| {
            let busy = self.terminal.is_busy();
            let paying = self.terminal.active_reference().is_some();
            let changed = (s.busy, s.paying) != (busy, paying);
            s.busy = busy;
            s.paying = paying;
            changed
        });
        all_ok
    }

    /// Follows a payment through the core's reports and counts it when it
    /// finishes (atomic increments only).
    fn count(&mut self, r: &Report) {
        match r {
            Report::PaymentStarted { kind, .. } => {
                self.paying = Some(Paying {
                    kind: *kind,
                    decision: None,
                    tapped_at: None,
                })
            }
            Report::Decided { decision, .. } => {
                if let Some(p) = self.paying.as_mut() {
                    p.decision = Some(*decision);
                }
            }
            Report::Finished { state, .. } => {
                if let Some(p) = &self.paying {
                    self.metrics.payment_finished(p.kind, *state, p.decision);
                }
            }
            _ => {}
        }
    }

    /// Feeds `QueueDepth` when the outbox counts changed. True when they did.
    async fn refresh_queue(&mut self) -> bool {
        match self.store.outbox_stats().await {
            Ok(stats) => {
                let count = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
                let (queued, parked) = (count(stats.queued), count(stats.parked));
                if (queued, parked) != (self.queued, self.parked) {
                    self.queued = queued;
                    self.parked = parked;
                    self.handle(Input::QueueDepth { queued, parked });
                    return true;
                }
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot count the outbox");
                false
            }
        }
    }

    /// Commits one change. Returns the outcome and whether it enqueued items.
    async fn commit(&mut self, change: &core::Change) -> (Result<(), String>, bool) {
        let known = change
            .tx
            .as_ref()
            .and_then(|w| self.payments.get(w.reference()))
            .cloned();
        let mapped = match mapping::store_change(change, known.as_ref()) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "a change of the core cannot be stored");
                return (Err(e.to_string()), false);
            }
        };
        match self.store.record(mapped).await {
            Ok(ids) => {
                match &change.tx {
                    Some(core::TxWrite::Insert(n)) => {
                        if let Some(p) = &n.payment_id {
                            self.payments.insert(n.reference.clone(), p.clone());
                        }
                    }
                    Some(core::TxWrite::Update(u)) if u.state.is_final() => {
                        self.payments.remove(&u.reference);
                    }
                    _ => {}
                }
                (Ok(()), !ids.is_empty())
            }
            Err(e) => {
                tracing::error!(error = %e, "commit failed");
                (Err(e.to_string()), false)
            }
        }
    }

    /// Lays a print job out and hands it to the printer task (never
    /// waiting for the printer).
    async fn print(&mut self, job: core::PrintJob) {
        let Some(out) = &self.printer else {
            return;
        };
        let mut names = crate::receipt::Names {
            event_name: self.event_name.clone(),
            terminal_label: self.terminal_label.clone(),
            operator: None,
            receipt_base: out.receipt_base.clone(),
            operator_names: Vec::new(),
        };
        // Operators' names from the kept list (offline too).
        if let Ok((ops, _)) = crate::sync::desk::stored(&self.store).await {
            names.operator_names = ops.into_iter().map(|o| (o.id, o.name)).collect();
        }
        let doc = match job {
            core::PrintJob::Receipt { reference, copy } => {
                let tx = match self.store.transaction(reference.clone()).await {
                    Ok(Some(t)) => t,
                    Ok(None) => {
                        tracing::warn!(reference = %reference, "no such transaction to print");
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(reference = %reference, error = %e, "cannot read the transaction to print");
                        return;
                    }
                };
                if let Some(op) = &tx.operator_id {
                    names.operator = names
                        .operator_names
                        .iter()
                        .find(|(id, _)| id == op)
                        .map(|(_, n)| n.clone());
                }
                match crate::receipt::Receipt::of(&tx, &names, copy) {
                    Ok(r) => r.document(out.columns),
                    Err(e) => {
                        tracing::warn!(error = %e, "no receipt");
                        return;
                    }
                }
            }
            core::PrintJob::Report(r) => crate::receipt::report_document(&r, &names, out.columns),
        };
        super::printer::submit(&out.jobs, doc);
    }

    /// Answers one of the core's questions from the store. The second value
    /// says whether outbox items were enqueued (a Z report).
    async fn answer(&mut self, q: core::Query) -> (core::Answer, bool) {
        let failed = |what: &str, e: store::StoreError| {
            tracing::error!(error = %e, "{what}");
            core::Answer::Failed {
                error: e.to_string(),
            }
        };
        match q {
            core::Query::MintReference => {
                match self.store.next_sequence(self.clock.wall_ms()).await {
                    Ok(n) => (
                        core::Answer::ReferenceMinted {
                            reference: Reference::for_sequence(&self.terminal_id, n),
                        },
                        false,
                    ),
                    Err(e) => (failed("cannot take the next reference", e), false),
                }
            }
            core::Query::RecentSales { limit } => match self.store.recent_sales(limit).await {
                Ok(sales) => {
                    let list = sales
                        .into_iter()
                        .filter_map(|(t, left)| {
                            let token = core::CardToken::new(t.card.as_ref()?.token()).ok()?;
                            Some(core::OriginalSale {
                                reference: t.reference,
                                kind: t.kind,
                                state: t.state,
                                amount: t.amount,
                                refundable_left: left,
                                card_token: token,
                            })
                        })
                        .collect();
                    (core::Answer::RecentSales(list), false)
                }
                Err(e) => (failed("cannot list recent sales", e), false),
            },
            core::Query::Original { reference } => {
                // A sale paid by bank transfer has no card to tap: it is
                // refunded from the collection account, not here.
                let by_transfer = match self.store.transaction(reference.clone()).await {
                    Ok(t) => t.is_some_and(|t| t.channel == store::Channel::Account),
                    Err(_) => false,
                };
                if by_transfer {
                    (core::Answer::OriginalPaidByTransfer, false)
                } else {
                    match crate::sync::commands::original_sale(&self.store, &reference).await {
                        Ok(o) => (core::Answer::Original(o), false),
                        Err(e) => (failed("cannot read the sale to refund", e), false),
                    }
                }
            }
            core::Query::XReport => match self.store.x_report().await {
                Ok(r) => (
                    core::Answer::Report(mapping::core_report(core::ReportKind::X, r)),
                    false,
                ),
                Err(e) => (failed("cannot compute the X report", e), false),
            },
            core::Query::CloseShift { operator_id, at } => {
                let payload = |r: &store::ShiftReport| {
                    mapping::wire_shift(r)
                        .and_then(|s| mapping::OutboxPayload::Shift(s).encode())
                        .map_err(|e| e.to_string())
                };
                match self.store.close_shift(at.0, operator_id, payload).await {
                    Ok(r) => {
                        tracing::info!(
                            shift_no = r.shift_no,
                            sales = r.totals.sales.count,
                            "shift closed (Z report)"
                        );
                        (
                            core::Answer::Report(mapping::core_report(core::ReportKind::Z, r)),
                            true,
                        )
                    }
                    Err(e) => (failed("cannot close the shift", e), false),
                }
            }
            core::Query::Unpair => match self.store.outbox_stats().await {
                Err(e) => (failed("cannot read the outbox to unpair", e), false),
                Ok(stats) => match crate::pairing::pending_work(&stats) {
                    Some(what) => {
                        tracing::warn!(
                            queued = stats.queued,
                            parked = stats.parked,
                            "unpairing refused: the outbox is not empty"
                        );
                        (
                            core::Answer::UnpairRefused {
                                reason: format!(
                                    "{what} not yet sent to the backend; connect the terminal and wait, then unpair"
                                ),
                            },
                            false,
                        )
                    }
                    None => match crate::provision::remove_identity(&self.data_dir) {
                        Ok(()) => {
                            tracing::info!(terminal = %self.terminal_id, "terminal unpaired from the menu; the ledger is kept");
                            self.unpaired.cancel();
                            (core::Answer::Unpaired, false)
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "cannot remove the credentials to unpair");
                            (
                                core::Answer::Failed {
                                    error: e.to_string(),
                                },
                                false,
                            )
                        }
                    },
                },
            },
        }
    }

    /// Maps the core's screen for the panel and hands it to the display
    /// task (in order; waits only when that many frames are queued).
    async fn render(&mut self, m: &ScreenModel) {
        let screen = crate::screen::ui_screen(m, &self.event_name, &self.terminal_label);
        let state = crate::screen::screen_state(m, &screen);
        let name = screen.name();
        let result = matches!(
            m.screen,
            core::Screen::Approved { .. }
                | core::Screen::Declined { .. }
                | core::Screen::Cancelled { .. }
        );
        if result {
            // The payment (if any) has finished: its result is on screen.
            if let Some(tapped_at) = self.paying.take().and_then(|p| p.tapped_at) {
                self.metrics.tap_to_result(tapped_at.elapsed());
            }
        }
        if self.display.send(Frame { screen, state }).await.is_err() && !self.all.is_cancelled() {
            tracing::error!("display task is gone; the screen is not updated");
        }
        self.status.send_modify(|s| s.screen = name);
    }

    fn read_request(&self, timeout_ms: u64) -> ReadRequest {
        let (purpose, amount) = match self.terminal.screen().screen {
            core::Screen::RefundTap { amount, .. } => (ReadPurpose::Refund, amount),
            core::Screen::TapCard { amount, .. } => (ReadPurpose::Sale, amount),
            ref other => (ReadPurpose::Sale, other.amount().unwrap_or(Money::ZERO)),
        };
        ReadRequest {
            amount,
            currency: Currency::Ngn,
            purpose,
            timeout: Duration::from_millis(timeout_ms),
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Logs a core report at its level (ERROR: money at risk or an operator
/// must act). Reports carry no card data beyond last4/brand.
pub fn log_report(r: &Report) {
    match r {
        Report::CommandRejected { command_id, reason } => {
            tracing::info!(command_id = %command_id, reason = reason.as_str(), "command rejected")
        }
        Report::PaymentStarted {
            reference,
            kind,
            amount,
        } => {
            tracing::info!(reference = %reference, kind = kind.as_str(), amount = %amount.to_wire(), "payment started")
        }
        Report::Decided {
            reference,
            decision,
        } => tracing::info!(reference = %reference, decision = decision.code(), "payment decided"),
        Report::Finished { reference, state } => {
            tracing::info!(reference = %reference, state = state.as_str(), "payment finished")
        }
        Report::AbortTooLate { reference } => {
            tracing::warn!(reference = %reference, "abort too late: the card was already read")
        }
        Report::CardReadFailed { reason } => tracing::warn!(reason = %reason, "card read failed"),
        Report::AuthGuardExpired { reference } => tracing::warn!(
            reference = %reference,
            "authorization never answered; outcome treated as unknown"
        ),
        Report::PersistFailed {
            op_id,
            reference,
            error,
        } => tracing::error!(
            op = op_id.0,
            reference = reference.as_ref().map(|r| r.as_str()).unwrap_or("-"),
            error = %error,
            "commit failed: payment stopped"
        ),
        Report::OfflineDeclined { reference, reason } => tracing::error!(
            reference = %reference,
            reason = %reason,
            "offline approval declined by the backend: goods were given without payment"
        ),
        Report::Ignored { input, why } => tracing::debug!(input, why, "input ignored"),
        Report::TransferPartial {
            reference,
            received,
            amount,
        } => tracing::info!(
            reference = %reference,
            received = %received.to_wire(),
            amount = %amount.to_wire(),
            "part of the transfer received; waiting for the rest"
        ),
        Report::TransferIgnored { reference, why } => tracing::warn!(
            reference = %reference,
            why,
            "transfer credit for no waiting transfer; nothing changed"
        ),
        Report::TransferRefused { reference, code } => tracing::warn!(
            reference = %reference,
            code = %code,
            "transfer registration refused; card only"
        ),
        Report::LoggedIn { operator_id } => {
            tracing::info!(operator_id = %operator_id, "operator logged in")
        }
        Report::LoggedOut { operator_id, why } => {
            tracing::info!(operator_id = %operator_id, why, "operator logged out")
        }
        Report::WrongPin { attempts } => tracing::warn!(attempts, "wrong PIN"),
        Report::LoginLocked => tracing::warn!("too many wrong PINs: login locked"),
        Report::QueryFailed { error } => {
            tracing::error!(error = %error, "the ledger could not answer; nothing changed")
        }
    }
}
