//! The core loop: the one task that owns the [`Terminal`] and the display.
//!
//! It waits on its input channel, on the core's `poll_timeout` (a
//! `sleep_until`, never a polling tick), on the watchdog timer and on the
//! final stop. After every input it drains `poll()` in order:
//!
//! | output | what the loop does |
//! |---|---|
//! | `Persist` | maps the change ([`crate::mapping`]), commits it with `AsyncStore::record`, answers `Persisted` / `PersistFailed`, wakes the outbox when items were enqueued |
//! | `Render` | draws the screen with `ui`, records its semantic state, flushes; `READY=1` once the first non-booting screen is up |
//! | `Authorize` | spawns the online authorization (auth timeout), answered with `AuthAnswer` |
//! | `Ack` | spawns a direct ack with a few retries (acks that matter are in the outbox) |
//! | `ReverseNow` | spawns a best-effort reversal (a queued one follows when storage allows) |
//! | `StartReader` / `StopReader` | tells the reader task (start is sent after the drain, with the amount on screen) |
//! | `Beep` | tells the indicator task |
//! | `Report` | `tracing` at INFO / WARN / ERROR (ERROR: money at risk) |
//!
//! Commits are awaited inline, so the order of the core's persists is the
//! order of the store's commits.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hal::{Display, ReadPurpose, ReadRequest, Signal};
use proto::{Currency, Money, PaymentId, Reference};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::client::{ClientError, SignedClient};
use crate::clock::Clock;
use crate::core::{
    self, AuthRequest, AuthResult, Beep, CommandAck, Input, Output, Report, ScreenModel, Terminal,
};
use crate::mapping;
use crate::msg::{CoreMsg, CoreStatus, ReaderCmd};
use crate::sync::link::{Link, is_unreachable};
use crate::task::RunError;

pub struct CoreLoop<D> {
    pub terminal: Terminal,
    pub display: D,
    pub store: store::AsyncStore,
    pub client: SignedClient,
    pub link: Link,
    pub clock: Clock,
    pub rx: mpsc::Receiver<CoreMsg>,
    /// For spawned requests to answer the core.
    pub tx: mpsc::Sender<CoreMsg>,
    pub reader: mpsc::Sender<ReaderCmd>,
    pub indicator: mpsc::Sender<Signal>,
    pub outbox_wake: Arc<Notify>,
    pub status: watch::Sender<CoreStatus>,
    pub auth_timeout: Duration,
    pub event_name: String,
    pub terminal_label: String,
    /// Payment ids of transactions in flight, for ordering their updates'
    /// outbox items per payment.
    pub payments: HashMap<Reference, PaymentId>,
    pub all: CancellationToken,
    pub watchdog: Option<Duration>,
    pub queued: u32,
}

impl<D: Display> CoreLoop<D> {
    pub async fn run(mut self) -> Result<(), RunError> {
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
                        if matches!(
                            self.terminal.screen().screen,
                            core::Screen::TapCard { .. } | core::Screen::RefundTap { .. }
                        ) {
                            tracing::info!("stopping: cancelling the payment waiting for a card");
                            self.handle(Input::Button(core::Button::Cancel));
                            self.drain().await;
                        }
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
                    Output::Authorize(req) => self.authorize(req),
                    Output::Ack(a) => self.ack_now(a),
                    Output::ReverseNow { reference } => self.reverse_now(reference),
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
                    Output::Report(r) => log_report(&r),
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
            let changed = s.busy != busy;
            s.busy = busy;
            changed
        });
        all_ok
    }

    /// Feeds `QueueDepth` when the outbox count changed. True when it did.
    async fn refresh_queue(&mut self) -> bool {
        match self.store.outbox_stats().await {
            Ok(stats) => {
                let queued = u32::try_from(stats.queued).unwrap_or(u32::MAX);
                if queued != self.queued {
                    self.queued = queued;
                    self.handle(Input::QueueDepth(queued));
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

    async fn render(&mut self, m: &ScreenModel) {
        let screen = mapping::ui_screen(m, &self.event_name, &self.terminal_label);
        if let Err(e) = ui::render(&screen, &mut self.display) {
            tracing::error!(error = %e, "cannot draw the screen");
        }
        self.display.set_state(&mapping::screen_state(m, &screen));
        if let Err(e) = self.display.flush().await {
            tracing::error!(error = %e, "cannot show the screen on the display");
        }
        let name = screen.name();
        let first_ready = name != ui::ScreenName::Booting
            && self.status.borrow().screen == ui::ScreenName::Booting;
        self.status.send_modify(|s| s.screen = name);
        if first_ready {
            super::notify::ready();
        }
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

    fn authorize(&self, req: AuthRequest) {
        let client = self.client.clone();
        let tx = self.tx.clone();
        let link = self.link.clone();
        let timeout = self.auth_timeout;
        let all = self.all.clone();
        let reference = req.submission.reference.clone();
        tokio::spawn(async move {
            let result = tokio::select! {
                r = authorize(&client, &link, timeout, &req) => r,
                _ = all.cancelled() => return,
            };
            tracing::info!(reference = %reference, result = auth_result_name(&result), "authorization answered");
            let _ = tx
                .send(CoreMsg::Input(Input::AuthAnswer { reference, result }))
                .await;
        });
    }

    fn ack_now(&self, ack: CommandAck) {
        let client = self.client.clone();
        let link = self.link.clone();
        let all = self.all.clone();
        tokio::spawn(async move {
            let body = proto::wire::CommandAck {
                status: match ack.status {
                    core::AckStatus::Accepted => proto::wire::AckStatus::Accepted,
                    core::AckStatus::Rejected => proto::wire::AckStatus::Rejected,
                },
                reason: ack.reason.map(mapping::wire_ack_reason),
            };
            let mut delay = Duration::from_millis(500);
            for attempt in 1..=4 {
                let r = client.ack_command(&ack.command_id.0, &body).await;
                link.observe(&r);
                match r {
                    Ok(()) => return,
                    Err(e) if e.is_retryable() && attempt < 4 => {
                        tracing::debug!(command_id = %ack.command_id, error = %e, "ack failed; retrying");
                    }
                    Err(e) => {
                        tracing::warn!(command_id = %ack.command_id, error = %e, "command ack not delivered");
                        return;
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = all.cancelled() => return,
                }
                delay *= 2;
            }
        });
    }

    fn reverse_now(&self, reference: Reference) {
        let client = self.client.clone();
        let link = self.link.clone();
        tokio::spawn(async move {
            let req = proto::wire::ReversalRequest {
                reason: Some("storage_failure".to_string()),
                at: None,
            };
            let r = client.reverse(&reference, &req).await;
            link.observe(&r);
            match r {
                Ok(a) => {
                    tracing::warn!(reference = %reference, status = ?a.status, "immediate reversal sent")
                }
                Err(e) => {
                    tracing::error!(reference = %reference, error = %e, "immediate reversal failed; the customer may be charged for a payment shown as failed")
                }
            }
        });
    }
}

fn auth_result_name(r: &AuthResult) -> &'static str {
    match r {
        AuthResult::Approved { .. } => "approved",
        AuthResult::Declined { .. } => "declined",
        AuthResult::Unknown => "unknown",
    }
}

/// One online authorization, bounded by `timeout`. Timeout, connection
/// errors, 5xx and broken answers are `Unknown`; a refusal (other 4xx) or a
/// request that could not be built is a decline: nothing was charged.
pub async fn authorize(
    client: &SignedClient,
    link: &Link,
    timeout: Duration,
    req: &AuthRequest,
) -> AuthResult {
    let body = match mapping::wire_submission(&req.submission) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "authorization request cannot be built; declined, nothing sent");
            return AuthResult::Declined {
                reason: "local_error".to_string(),
            };
        }
    };
    let r = match tokio::time::timeout(timeout, client.submit_transaction(&body)).await {
        Ok(r) => r,
        Err(_) => {
            link.failed(&ClientError::Retryable {
                what: "authorization".into(),
                status: None,
                retry_after: None,
                message: "timed out".into(),
            });
            return AuthResult::Unknown;
        }
    };
    link.observe(&r);
    match r {
        Ok(answer) => match answer.status {
            proto::wire::AuthStatus::Approved => AuthResult::Approved {
                auth_code: answer.auth_code,
                transaction_id: answer.transaction_id,
            },
            proto::wire::AuthStatus::Declined => AuthResult::Declined {
                reason: answer
                    .decline_reason
                    .and_then(|d| serde_json::to_value(d).ok())
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_else(|| "declined".to_string()),
            },
        },
        Err(e) if e.is_retryable() || is_unreachable(&e) => {
            tracing::warn!(error = %e, "authorization outcome unknown");
            AuthResult::Unknown
        }
        Err(e) => {
            tracing::warn!(error = %e, "authorization refused by the backend");
            AuthResult::Declined {
                reason: e.code().unwrap_or("refused").to_string(),
            }
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
    }
}
