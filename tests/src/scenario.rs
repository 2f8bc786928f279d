//! The scenario steps shared by the demo and the end-to-end tests. Each step
//! drives the partner API and the virtual devices as a person would, waits
//! on readiness (screens, payment statuses) with bounded deadlines, checks
//! what it expects, and narrates into the [`Timeline`].

use std::path::Path;
use std::time::Duration;

use proto::wire::{OfflinePolicy, Payment, PaymentStatus, Scenario, Session, TerminalStatus};
use proto::{Money, PaymentId, Reference, SessionId};

use crate::backend::{AbortOutcome, Backend, SimOptions};
use crate::check;
use crate::error::{HarnessError, Result};
use crate::proxy::LinkState;
use crate::terminal::{AgentOptions, Terminal};
use crate::timeline::Timeline;

/// How long any single wait of a step may take.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// A sale the partner saw approved.
#[derive(Debug, Clone)]
pub struct Sale {
    pub terminal: usize,
    pub payment_id: PaymentId,
    pub transaction_id: String,
    pub reference: Reference,
    pub amount: Money,
    pub card: String,
}

/// Everything a scenario runs against.
pub struct Scene {
    pub backend: Backend,
    pub session: Session,
    pub terminals: Vec<Terminal>,
    pub timeline: Timeline,
    seq: u32,
}

/// `n` kobo as money (test amounts are always valid).
pub fn ngn(minor: u64) -> Money {
    Money::from_minor(minor).expect("test amounts are positive and within limits")
}

impl Scene {
    /// Starts kler-sim, creates a session with `terminals` POS terminals,
    /// provisions each into `root/<terminal id>` and starts the agents
    /// in-process, each behind its own fault proxy.
    pub async fn start(
        root: &Path,
        terminals: u32,
        sim: SimOptions,
        agent: AgentOptions,
        timeline: Timeline,
    ) -> Result<Scene> {
        let backend = Backend::start(sim).await?;
        let mut scene = Scene::provisioned(backend, root, terminals, agent, timeline).await?;
        for i in 0..scene.terminals.len() {
            scene.start_agent(i).await?;
        }
        Ok(scene)
    }

    /// Like [`Scene::start`] but leaves the agents stopped.
    pub async fn provisioned(
        backend: Backend,
        root: &Path,
        terminals: u32,
        agent: AgentOptions,
        mut timeline: Timeline,
    ) -> Result<Scene> {
        timeline.note("sim", format!("kler-sim listening on {}", backend.url()));
        let session = backend
            .create_session("Lagos Jazz Night", terminals)
            .await?;
        timeline.note(
            "partner",
            format!(
                "session {} \"{}\" created with {} POS terminals ({})",
                session.session_id,
                session.name,
                session.pos_terminals.len(),
                session.status_str()
            ),
        );
        let mut list = Vec::new();
        for pos in &session.pos_terminals {
            let dir = root.join(pos.terminal_id.as_str());
            let t = Terminal::provision(
                &backend,
                &session.session_id,
                &pos.terminal_id,
                &pos.label,
                &dir,
                &agent,
            )
            .await?;
            timeline.note(
                &pos.label,
                format!(
                    "provisioned {} into {} (credentials + card key, mode 0600)",
                    pos.terminal_id,
                    dir.display()
                ),
            );
            list.push(t);
        }
        Ok(Scene {
            backend,
            session,
            terminals: list,
            timeline,
            seq: 0,
        })
    }

    pub fn session_id(&self) -> &SessionId {
        &self.session.session_id
    }

    /// Starts terminal `i`'s agent and waits for its idle screen and for the
    /// backend to list it online.
    pub async fn start_agent(&mut self, i: usize) -> Result<()> {
        self.terminals[i].start().await?;
        self.wait_ready(i).await
    }

    /// Waits for the idle screen (online) and the backend's `online`.
    pub async fn wait_ready(&mut self, i: usize) -> Result<()> {
        let t = &self.terminals[i];
        let view = t
            .device()?
            .wait_for("idle and online", STEP_TIMEOUT, |s| {
                s.screen == "idle" && !s.offline
            })
            .await?;
        self.backend
            .wait_terminal_status(
                &self.session.session_id,
                &t.id,
                TerminalStatus::Online,
                STEP_TIMEOUT,
            )
            .await?;
        let what = format!("agent up, virtual device at {}, online", t.device()?.url());
        self.timeline.screen(t, what, &view).await
    }

    fn next_key(&mut self, prefix: &str) -> String {
        self.seq += 1;
        format!("{prefix}-{:04}-{}", self.seq, uuid::Uuid::new_v4().simple())
    }

    /// The partner creates a payment on terminal `i`; waits for the tap
    /// screen showing the amount.
    pub async fn request_payment(
        &mut self,
        i: usize,
        amount: Money,
        policy: Option<OfflinePolicy>,
    ) -> Result<Payment> {
        let key = self.next_key("pos-order");
        let tid = self.terminals[i].id.clone();
        let p = self
            .backend
            .create_payment_when_free(&tid, amount, &key, policy, &key, STEP_TIMEOUT)
            .await?;
        self.timeline.note(
            "partner",
            format!(
                "POST /v1/payments {} on {} -> {} {}",
                amount.display(proto::Currency::Ngn),
                self.terminals[i].label,
                p.payment_id,
                p.status
            ),
        );
        let t = &self.terminals[i];
        let wire = amount.to_wire();
        let view = t
            .device()?
            .wait_for("tap_card with the amount", STEP_TIMEOUT, |s| {
                s.screen == "tap_card" && s.amount.as_deref() == Some(wire.as_str())
            })
            .await?;
        self.timeline
            .screen(t, "customer asked to tap", &view)
            .await?;
        Ok(p)
    }

    /// Taps `card` on terminal `i` and waits for a result screen.
    pub async fn tap_for_result(
        &mut self,
        i: usize,
        card: &str,
    ) -> Result<crate::device::ScreenView> {
        let t = &self.terminals[i];
        t.device()?.tap(card, STEP_TIMEOUT).await?;
        let view = t
            .device()?
            .wait_for("a result", STEP_TIMEOUT, |s| {
                matches!(
                    s.screen.as_str(),
                    "approved" | "declined" | "cancelled" | "error"
                )
            })
            .await?;
        self.timeline
            .screen(t, format!("card {card} tapped"), &view)
            .await?;
        Ok(view)
    }

    /// Waits until terminal `i` is back on its idle screen.
    pub async fn back_to_idle(&mut self, i: usize) -> Result<()> {
        let t = &self.terminals[i];
        t.device()?.wait_screen("idle", STEP_TIMEOUT).await?;
        Ok(())
    }

    /// Approved sale: partner creates it, customer taps `card`, screen says
    /// approved, partner polls approved with the transaction.
    pub async fn approved_sale(&mut self, i: usize, amount: Money, card: &str) -> Result<Sale> {
        let p = self.request_payment(i, amount, None).await?;
        let view = self.tap_for_result(i, card).await?;
        check!(
            view.screen == "approved",
            "sale on {}: screen {} instead of approved",
            self.terminals[i].label,
            view.summary()
        );
        let done = self.backend.wait_final(&p.payment_id, STEP_TIMEOUT).await?;
        let sale = self.approved(i, &done, amount, card)?;
        self.back_to_idle(i).await?;
        Ok(sale)
    }

    fn approved(&mut self, i: usize, done: &Payment, amount: Money, card: &str) -> Result<Sale> {
        check!(
            done.status == PaymentStatus::Approved,
            "payment {} is {} ({}), expected approved",
            done.payment_id,
            done.status,
            done.reason.as_deref().unwrap_or("no reason")
        );
        let tx = done.transaction.as_ref().ok_or_else(|| {
            HarnessError::Check(format!(
                "approved payment {} has no transaction",
                done.payment_id
            ))
        })?;
        let paid_with = match (&tx.card, &tx.payer) {
            (Some(c), _) => format!("{} *{}", c.brand.as_str(), c.last4.as_str()),
            (None, Some(p)) => format!("transfer from {} ({})", p.name, p.bank),
            (None, None) => "no card".to_owned(),
        };
        self.timeline.note(
            "partner",
            format!(
                "GET /v1/payments/{} -> approved, ref {}, {}{}{}",
                done.payment_id,
                tx.reference,
                paid_with,
                tx.auth_code
                    .as_deref()
                    .map(|c| format!(", auth {c}"))
                    .unwrap_or_default(),
                if tx.offline { ", offline" } else { "" }
            ),
        );
        Ok(Sale {
            terminal: i,
            payment_id: done.payment_id.clone(),
            transaction_id: tx.transaction_id.clone(),
            reference: tx.reference.clone(),
            amount,
            card: card.to_owned(),
        })
    }

    /// A declined card: the screen and the partner both say declined.
    pub async fn declined_sale(&mut self, i: usize, amount: Money, card: &str) -> Result<Payment> {
        let p = self.request_payment(i, amount, None).await?;
        let view = self.tap_for_result(i, card).await?;
        check!(
            view.screen == "declined",
            "declined card: screen {}",
            view.summary()
        );
        let done = self.backend.wait_final(&p.payment_id, STEP_TIMEOUT).await?;
        check!(
            done.status == PaymentStatus::Declined,
            "declined card: payment is {}",
            done.status
        );
        self.timeline.note(
            "partner",
            format!(
                "GET /v1/payments/{} -> declined ({})",
                done.payment_id,
                done.transaction
                    .as_ref()
                    .and_then(|t| t.decline_reason)
                    .map(|r| r.as_str().to_owned())
                    .or_else(|| done.reason.clone())
                    .unwrap_or_default()
            ),
        );
        self.back_to_idle(i).await?;
        Ok(done)
    }

    /// The partner aborts while the terminal waits for the card.
    pub async fn abort_before_tap(&mut self, i: usize, amount: Money) -> Result<Payment> {
        let p = self.request_payment(i, amount, None).await?;
        let outcome = self.backend.abort(&p.payment_id).await?;
        let AbortOutcome::Aborted(done) = outcome else {
            return Err(HarnessError::Check(format!(
                "abort before tap answered {outcome:?}"
            )));
        };
        self.timeline.note(
            "partner",
            format!(
                "POST /v1/payments/{}/abort -> {}",
                p.payment_id, done.status
            ),
        );
        check!(
            done.status == PaymentStatus::Aborted,
            "aborted payment is {}",
            done.status
        );
        let t = &self.terminals[i];
        let view = t
            .device()?
            .wait_for("cancelled or idle", STEP_TIMEOUT, |s| {
                s.screen == "cancelled" || s.screen == "idle"
            })
            .await?;
        self.timeline
            .screen(t, "terminal confirmed the abort", &view)
            .await?;
        // A card tapped now reaches nobody: the reader is off.
        let late = t.device()?.tap_now("visa_ok").await;
        check!(
            late.as_ref().err().and_then(|e| e.api_code()) == Some("reader_not_waiting"),
            "after an abort the reader must be off; tap answered {late:?}"
        );
        self.back_to_idle(i).await?;
        Ok(*done)
    }

    /// The card is read, then the partner aborts: 409 `abort_too_late`, the
    /// payment goes on and is approved; both sides learn it.
    pub async fn abort_too_late(&mut self, i: usize, amount: Money, card: &str) -> Result<Sale> {
        // Hold the authorization a moment so the abort lands while it is in flight.
        let tid = self.terminals[i].id.clone();
        self.backend
            .set_scenario(&tid, Scenario::Slow { ms: 700 }, 1)
            .await?;
        self.timeline.note(
            "sim",
            format!(
                "sandbox: next authorization of {} answers after 700 ms",
                self.terminals[i].label
            ),
        );
        let p = self.request_payment(i, amount, None).await?;
        let t = &self.terminals[i];
        t.device()?.tap(card, STEP_TIMEOUT).await?;
        let view = t
            .device()?
            .wait_for("processing", STEP_TIMEOUT, |s| {
                s.screen != "tap_card" && s.screen != "idle"
            })
            .await?;
        self.timeline
            .screen(t, format!("card {card} tapped, authorizing"), &view)
            .await?;
        let outcome = self.backend.abort(&p.payment_id).await?;
        self.timeline.note(
            "partner",
            format!("POST /v1/payments/{}/abort -> {outcome:?}", p.payment_id),
        );
        check!(
            outcome == AbortOutcome::TooLate,
            "abort after the tap answered {outcome:?}, expected 409 abort_too_late"
        );
        let t = &self.terminals[i];
        let view = t
            .device()?
            .wait_for("the result", STEP_TIMEOUT, |s| {
                s.screen == "approved" || s.screen == "declined"
            })
            .await?;
        self.timeline
            .screen(t, "payment went on after the late abort", &view)
            .await?;
        check!(
            view.screen == "approved",
            "late abort: screen {}",
            view.summary()
        );
        let done = self.backend.wait_final(&p.payment_id, STEP_TIMEOUT).await?;
        let sale = self.approved(i, &done, amount, card)?;
        self.back_to_idle(i).await?;
        Ok(sale)
    }

    /// Network outage: every terminal gets a sale, then the venue's network
    /// drops before the customers tap; each terminal approves offline within
    /// its limits and queues the transaction. Returns the pending payments.
    pub async fn outage_offline_sales(
        &mut self,
        amounts: &[Money],
        card: &str,
    ) -> Result<Vec<(usize, PaymentId, Money)>> {
        let mut pending = Vec::new();
        for (i, amount) in amounts.iter().enumerate().take(self.terminals.len()) {
            let p = self.request_payment(i, *amount, None).await?;
            pending.push((i, p.payment_id, *amount));
        }
        for t in &self.terminals {
            t.proxy().set(LinkState::Refuse);
        }
        self.timeline.note(
            "network",
            "venue network down: every backend connection refused",
        );
        for (i, pid, _) in &pending {
            let t = &self.terminals[*i];
            let view = t
                .device()?
                .wait_for("offline", STEP_TIMEOUT, |s| s.offline)
                .await?;
            self.timeline
                .screen(t, "terminal noticed the link is down", &view)
                .await?;
            let view = self.tap_for_result(*i, card).await?;
            check!(
                view.screen == "approved" && view.queued > 0,
                "offline sale: screen {} (expected approved with a queue)",
                view.summary()
            );
            let partner = self.backend.payment(pid).await?;
            check!(
                !partner.status.is_final(),
                "during the outage the partner cannot know the result yet, but sees {}",
                partner.status
            );
            self.timeline.note(
                "partner",
                format!(
                    "GET /v1/payments/{pid} -> {} (terminal unreachable)",
                    partner.status
                ),
            );
        }
        for (i, _, _) in &pending {
            self.back_to_idle(*i).await?;
        }
        Ok(pending)
    }

    /// The network comes back: queues drain, the partner sees the offline
    /// sales approved (flagged offline).
    pub async fn recovery_drain(
        &mut self,
        pending: &[(usize, PaymentId, Money)],
        card: &str,
    ) -> Result<Vec<Sale>> {
        for t in &self.terminals {
            t.proxy().set(LinkState::Up);
        }
        self.timeline.note("network", "venue network back");
        for i in 0..self.terminals.len() {
            let t = &self.terminals[i];
            let view = t
                .device()?
                .wait_for("online with an empty queue", STEP_TIMEOUT, |s| {
                    !s.offline && s.queued == 0
                })
                .await?;
            self.timeline
                .screen(t, "back online, queue drained", &view)
                .await?;
        }
        let mut sales = Vec::new();
        for (i, pid, amount) in pending {
            let done = self.backend.wait_final(pid, STEP_TIMEOUT).await?;
            let sale = self.approved(*i, &done, *amount, card)?;
            let offline = done.transaction.as_ref().is_some_and(|t| t.offline);
            check!(offline, "drained sale {pid} is not flagged offline");
            sales.push(sale);
        }
        Ok(sales)
    }

    /// An unknown outcome, then the session closes (SPEC 4.3, 5.5): terminal
    /// `i`'s uplink stalls just before the tap, so its online authorization
    /// never reaches the backend and times out; the terminal approves the
    /// sale offline under the same reference. The organiser closes the
    /// session while the terminal is still cut off. When the link returns,
    /// the forward (`offline: true`, captured before the close) is
    /// accepted: the partner sees the payment approved and nothing is
    /// parked.
    pub async fn unknown_outcome_then_close(
        &mut self,
        i: usize,
        amount: Money,
        card: &str,
    ) -> Result<Sale> {
        let p = self.request_payment(i, amount, None).await?;
        self.terminals[i].proxy().set(LinkState::Stall);
        self.timeline.note(
            "network",
            format!(
                "{}'s uplink stalls: what it sends never reaches the backend",
                self.terminals[i].label
            ),
        );
        let view = self.tap_for_result(i, card).await?;
        check!(
            view.screen == "approved" && view.queued > 0,
            "authorization lost: screen {} (expected approved offline, queued)",
            view.summary()
        );
        // The ledger says why: the authorization went out and its answer
        // never came (not a sale taken while known offline).
        let ledger = self.terminals[i].ledger_path();
        let tx = store::Store::open_read_only(&ledger)
            .and_then(|st| st.transactions_for_payment(&p.payment_id))
            .map_err(|e| HarnessError::Agent(format!("ledger {}: {e}", ledger.display())))?
            .into_iter()
            .next();
        let why = tx
            .as_ref()
            .map(|tx| (tx.state, tx.decline_reason.as_deref()));
        check!(
            why == Some((
                store::TxState::OfflineApproved,
                Some("offline_after_unknown")
            )),
            "the sale should be approved offline after an unknown outcome; ledger says {why:?}"
        );
        self.timeline.note(
            &self.terminals[i].label,
            "ledger: authorization timed out, approved offline under the same reference (offline_after_unknown)",
        );
        let partner = self.backend.payment(&p.payment_id).await?;
        check!(
            !partner.status.is_final(),
            "the backend never saw the authorization, yet the payment is {}",
            partner.status
        );
        self.timeline.note(
            "partner",
            format!(
                "GET /v1/payments/{} -> {} (the authorization never arrived)",
                p.payment_id, partner.status
            ),
        );
        let s = self.backend.close_session(&self.session.session_id).await?;
        self.timeline.note(
            "partner",
            format!(
                "PATCH /v1/sessions/{}/close -> {} while {} is cut off",
                s.session_id,
                s.status_str(),
                self.terminals[i].label
            ),
        );
        self.wait_session_closed(Some(i)).await?;
        self.terminals[i].proxy().set(LinkState::Up);
        self.timeline.note(
            "network",
            format!("{}'s uplink back", self.terminals[i].label),
        );
        let t = &self.terminals[i];
        let view = t
            .device()?
            .wait_for("session_closed, online, queue drained", STEP_TIMEOUT, |s| {
                s.screen == "session_closed" && !s.offline && s.queued == 0
            })
            .await?;
        check!(
            view.parked == 0,
            "after the close the forward was parked: {}",
            view.summary()
        );
        self.timeline
            .screen(t, "forward accepted after the close, nothing parked", &view)
            .await?;
        let done = self.backend.wait_final(&p.payment_id, STEP_TIMEOUT).await?;
        let sale = self.approved(i, &done, amount, card)?;
        let offline = done.transaction.as_ref().is_some_and(|t| t.offline);
        check!(
            offline,
            "the sale after the lost authorization is not flagged offline"
        );
        Ok(sale)
    }

    /// The partner refunds `amount` of `sale`; the customer taps `card`.
    /// Returns the refund payment as the partner finally sees it.
    pub async fn refund(&mut self, sale: &Sale, amount: Money, card: &str) -> Result<Payment> {
        let i = sale.terminal;
        let key = self.next_key("refund");
        let r = self
            .backend
            .refund(&sale.transaction_id, amount, &key)
            .await?;
        self.timeline.note(
            "partner",
            format!(
                "POST /v1/refunds?transactionId={} {} -> {} {}",
                sale.transaction_id,
                amount.display(proto::Currency::Ngn),
                r.payment_id,
                r.status
            ),
        );
        let t = &self.terminals[i];
        let view = t.device()?.wait_screen("refund_tap", STEP_TIMEOUT).await?;
        self.timeline
            .screen(
                t,
                format!("refund of {} asks for the card", sale.reference),
                &view,
            )
            .await?;
        let view = self.tap_for_result(i, card).await?;
        let done = self.backend.wait_final(&r.payment_id, STEP_TIMEOUT).await?;
        self.timeline.note(
            "partner",
            format!(
                "GET /v1/payments/{} -> {}{}",
                r.payment_id,
                done.status,
                done.reason
                    .as_deref()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default()
            ),
        );
        if card == sale.card {
            check!(
                view.screen == "approved" && done.status == PaymentStatus::Approved,
                "refund with the right card: screen {}, payment {}",
                view.summary(),
                done.status
            );
        } else {
            check!(
                view.screen == "declined" && done.status != PaymentStatus::Approved,
                "refund with another card must be refused: screen {}, payment {}",
                view.summary(),
                done.status
            );
        }
        self.back_to_idle(i).await?;
        Ok(done)
    }

    /// The organiser closes the session; every terminal shows its totals.
    pub async fn close_session(&mut self) -> Result<()> {
        let s = self.backend.close_session(&self.session.session_id).await?;
        self.timeline.note(
            "partner",
            format!(
                "PATCH /v1/sessions/{}/close -> {}",
                s.session_id,
                s.status_str()
            ),
        );
        self.wait_session_closed(None).await
    }

    /// Waits for the session's end-of-day screen on every terminal but
    /// `except`.
    async fn wait_session_closed(&mut self, except: Option<usize>) -> Result<()> {
        for (k, t) in self.terminals.iter().enumerate() {
            if Some(k) == except {
                continue;
            }
            let view = t
                .device()?
                .wait_screen("session_closed", STEP_TIMEOUT)
                .await?;
            self.timeline
                .screen(t, "session closed, end-of-day totals", &view)
                .await?;
        }
        Ok(())
    }

    /// Stops every agent gracefully (the outbox is flushed first).
    pub async fn stop_agents(&mut self) -> Result<()> {
        for t in &mut self.terminals {
            t.stop().await?;
            self.timeline.note(&t.label, "agent stopped");
        }
        Ok(())
    }

    /// Stops agents and the simulator.
    pub async fn shutdown(mut self) -> Result<()> {
        self.stop_agents().await?;
        self.backend.shutdown().await;
        Ok(())
    }
}

/// A session's status as a word.
pub trait StatusStr {
    fn status_str(&self) -> String;
}

impl StatusStr for Session {
    fn status_str(&self) -> String {
        self.status.as_str().to_owned()
    }
}
