//! The outbox drainer (SPEC 5.7): sends what the backend must learn, oldest
//! due first, up to [`BATCH`] items at once: one commit claims the batch,
//! the requests run concurrently, the answers are handled in claim order
//! and one commit acknowledges what was delivered. The store never claims
//! an item while an earlier item of its payment or reference is still in
//! the outbox, so items of one payment are sent one after the other.
//!
//! | answer | what happens to the item |
//! |---|---|
//! | 2xx | acknowledged (deleted); a forwarded transaction's answer goes to the core first (`Forwarded`, committed), a reversal's too (`Reversed`) |
//! | 5xx, 408, 429, timeout, connection error, broken answer | `retry` with backoff and jitter, honouring `Retry-After` |
//! | other 4xx, or a payload that cannot be read | `park` with the error: visible in `pos-agent queue`, never dropped |
//!
//! The drainer sleeps until the store's `next_due_at`, a wake-up (`Notify`)
//! after a commit that enqueued items, or the link coming back. It never
//! polls. When the link comes back it waits a random delay up to
//! `sync.link_return_spread_ms` (so a venue's terminals do not all arrive in
//! the same second), then makes waiting items due, never before the time a
//! server asked for (`Retry-After`, kept by the store).
//!
//! Schedules are stored as wall-clock times but run on the monotonic clock:
//! the drainer watches the wall clock against [`Clock::steady_ms`] and,
//! when it steps (NTP, an operator), moves every scheduled item by the same
//! step, so a wait lasts what it was meant to.

use std::time::Duration;

use futures_util::future::join_all;
use proto::wire;
use tokio::sync::{oneshot, watch};

use std::sync::Arc;

use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::link::Link;
use crate::client::ClientError;
use crate::client::SignedClient;
use crate::clock::Clock;
use crate::core::{ForwardOutcome, Input};
use crate::mapping::OutboxPayload;
use crate::msg::CoreMsg;
use crate::task::{RunError, Task};

/// What one send came to.
#[derive(Debug)]
enum Sent {
    /// The backend has it; tell the core this first, when `Some`.
    Done(Option<Input>),
    Failed(ClientError),
    /// The stored payload is unreadable: park it.
    Unreadable(String),
    /// Refused for good: park it, then tell the core (a transfer
    /// registration the backend refused).
    Refused(ClientError, Input),
}

/// How many items are claimed (one commit), sent concurrently and
/// acknowledged (one commit) at a time. The store never hands out two items
/// of one reference or payment together, so per-payment order holds.
const BATCH: u32 = 8;

/// The drainer. Runs until the final stop; `idle` says whether nothing is
/// due right now (the shutdown waits on it to flush).
pub struct OutboxDrainer {
    pub store: store::AsyncStore,
    pub client: SignedClient,
    pub link: Link,
    /// Told `Forwarded` / `Reversed` answers and `RefreshQueue`.
    pub core: mpsc::Sender<CoreMsg>,
    /// Woken after a commit that enqueued items.
    pub outbox_wake: Arc<Notify>,
    pub clock: Clock,
    /// The final stop (the drainer keeps flushing during intake's stop).
    pub all: CancellationToken,
    pub idle: watch::Sender<bool>,
    /// Longest random wait before draining after the link returns.
    pub link_return_spread: Duration,
}

impl Task for OutboxDrainer {
    const NAME: &'static str = "outbox";

    fn run(self) -> impl Future<Output = Result<(), RunError>> + Send {
        outbox_task(self)
    }
}

/// Listens for `SIGUSR1`, sent by `pos-agent queue --retry` after it put
/// parked items back in line from outside: wakes the drainer and refreshes
/// the queue counts on the screen. Sleeps on the signal; never polls.
pub struct OutsideWake {
    pub outbox_wake: Arc<Notify>,
    pub core: mpsc::Sender<CoreMsg>,
    pub all: CancellationToken,
}

impl Task for OutsideWake {
    const NAME: &'static str = "outside-wake";

    fn run(self) -> impl Future<Output = Result<(), RunError>> + Send {
        outside_wake(self)
    }
}

async fn outside_wake(task: OutsideWake) -> Result<(), RunError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut usr1 =
        signal(SignalKind::user_defined1()).map_err(|e| RunError::Signal(e.to_string()))?;
    loop {
        tokio::select! {
            got = usr1.recv() => {
                if got.is_none() {
                    return Ok(());
                }
                tracing::info!("outbox changed from outside (SIGUSR1): sending what is due");
                task.outbox_wake.notify_one();
                let _ = task.core.send(CoreMsg::RefreshQueue).await;
            }
            _ = task.all.cancelled() => return Ok(()),
        }
    }
}

async fn outbox_task(task: OutboxDrainer) -> Result<(), RunError> {
    let idle = &task.idle;
    let mut link = task.link.subscribe();
    let mut wall_steady = task.clock.wall_ms() - task.clock.steady_ms();
    loop {
        if task.all.is_cancelled() {
            return Ok(());
        }
        let now = task.clock.wall_ms();
        let offset = now - task.clock.steady_ms();
        if let Some(step) = clock_step(wall_steady, offset) {
            match task.store.shift_schedule(step).await {
                Ok(n) => {
                    tracing::warn!(
                        step_ms = step,
                        items = n,
                        "the wall clock stepped; outbox schedule moved with it"
                    );
                    wall_steady = offset;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot move the outbox schedule after a clock step")
                }
            }
        }
        let items = match task.store.claim_due(now, BATCH).await {
            Ok(items) => items,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the outbox; retrying in 5 s");
                idle.send_replace(true);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    _ = task.outbox_wake.notified() => {}
                    _ = task.all.cancelled() => return Ok(()),
                }
                continue;
            }
        };
        if items.is_empty() {
            idle.send_replace(true);
            let due = match task.store.next_due_at().await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read when the outbox is next due");
                    Some(now + 5_000)
                }
            };
            let sleep = due.map(|at| Duration::from_millis(u64::try_from(at - now).unwrap_or(0)));
            tokio::select! {
                _ = sleep_opt(sleep) => {}
                _ = task.outbox_wake.notified() => {}
                r = link.changed() => {
                    if r.is_ok() && *link.borrow_and_update() {
                        link_returned(&task).await;
                    }
                }
                _ = task.all.cancelled() => return Ok(()),
            }
            continue;
        }
        idle.send_replace(false);
        let sent = tokio::select! {
            s = join_all(items.iter().map(|item| send(&task, item))) => s,
            // In flight at the stop: reset to the queue at the next boot.
            _ = task.all.cancelled() => return Ok(()),
        };
        let now = task.clock.wall_ms();
        let mut delivered = Vec::with_capacity(items.len());
        // Set when the backend could not be reached: when to try again.
        let mut pause_until: Option<i64> = None;
        let mut core_gone = false;
        for (item, sent) in items.iter().zip(sent) {
            let what = item.kind.as_str();
            let reference = item.reference.as_ref().map(|r| r.as_str()).unwrap_or("-");
            match sent {
                Sent::Done(feedback) => {
                    task.link.answered();
                    if let Some(input) = feedback {
                        let (done, wait) = oneshot::channel();
                        if task
                            .core
                            .send(CoreMsg::InputDone(input, done))
                            .await
                            .is_err()
                        {
                            // The core is gone (stopping): leave the rest in
                            // flight; they are sent again after the restart,
                            // with the same idempotency keys.
                            core_gone = true;
                            break;
                        }
                        match wait.await {
                            Ok(true) => {}
                            _ => {
                                tracing::warn!(id = %item.id, kind = what, reference, "outcome not recorded; sending again later");
                                let _ = task
                                    .store
                                    .retry(
                                        item.id,
                                        now,
                                        "outcome not recorded locally".into(),
                                        None,
                                    )
                                    .await;
                                continue;
                            }
                        }
                    }
                    delivered.push(item);
                }
                Sent::Failed(e) if e.is_retryable() => {
                    task.link.failed(&e);
                    match task
                        .store
                        .retry(item.id, now, e.to_string(), e.retry_after())
                        .await
                    {
                        Ok(at) => {
                            tracing::warn!(id = %item.id, kind = what, reference, attempts = item.attempts, next_in_ms = at - now, error = %e, "outbox send failed; will retry");
                            if super::link::is_unreachable(&e) {
                                pause_until = Some(pause_until.map_or(at, |p| p.min(at)));
                            }
                        }
                        Err(se) => {
                            tracing::error!(id = %item.id, error = %se, "cannot reschedule an outbox item")
                        }
                    }
                }
                Sent::Failed(e) => {
                    task.link.answered();
                    park(&task, item, now, e.to_string()).await;
                }
                Sent::Unreadable(problem) => park(&task, item, now, problem).await,
                Sent::Refused(e, input) => {
                    task.link.answered();
                    park(&task, item, now, e.to_string()).await;
                    if task.core.send(CoreMsg::Input(input)).await.is_err() {
                        core_gone = true;
                        break;
                    }
                }
            }
        }
        // One commit acknowledges every delivered item. Lost in a crash, the
        // items are sent again with the same idempotency keys.
        let ids: Vec<_> = delivered.iter().map(|item| item.id).collect();
        match task.store.ack_many(ids, now).await {
            Ok(_) => {
                for item in &delivered {
                    let reference = item.reference.as_ref().map(|r| r.as_str()).unwrap_or("-");
                    tracing::info!(id = %item.id, kind = item.kind.as_str(), reference, "outbox item delivered");
                }
            }
            Err(e) => {
                tracing::error!(items = delivered.len(), error = %e, "cannot acknowledge outbox items; they will be sent again")
            }
        }
        if core_gone {
            return Ok(());
        }
        let _ = task.core.send(CoreMsg::RefreshQueue).await;
        if let Some(at) = pause_until {
            // The backend cannot be reached: the other items would fail the
            // same way. Wait for the earliest next attempt of what failed or
            // for the link to come back.
            let wait = Duration::from_millis(u64::try_from(at - now).unwrap_or(0));
            idle.send_replace(true);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                r = wait_online(&mut link) => {
                    if r {
                        link_returned(&task).await;
                    }
                }
                _ = task.all.cancelled() => return Ok(()),
            }
        }
    }
}

async fn park(task: &OutboxDrainer, item: &store::OutboxItem, now: i64, error: String) {
    let reference = item.reference.as_ref().map(|r| r.as_str()).unwrap_or("-");
    // A parked item needs an operator; for transactions money is at stake.
    tracing::error!(id = %item.id, kind = item.kind.as_str(), reference, error = %error, "outbox item refused by the backend; parked (see `pos-agent queue`)");
    if let Err(e) = task.store.park(item.id, now, error).await {
        tracing::error!(id = %item.id, error = %e, "cannot park an outbox item");
    }
}

/// A wall clock that moved against the monotonic one by more than this is
/// a step, not drift or rounding.
const CLOCK_STEP_MS: i64 = 2_000;

/// The step of the wall clock, when `offset` (wall minus steady) moved
/// from `last` by more than [`CLOCK_STEP_MS`].
fn clock_step(last: i64, offset: i64) -> Option<i64> {
    let step = offset.saturating_sub(last);
    (step.abs() > CLOCK_STEP_MS).then_some(step)
}

/// The link came back: after a random spread, what waited out a backoff
/// for connection failures is due (never before a server's `Retry-After`).
async fn link_returned(task: &OutboxDrainer) {
    let wait = spread_delay(&mut rand::thread_rng(), task.link_return_spread);
    if !wait.is_zero() {
        tracing::debug!(
            wait_ms = wait.as_millis(),
            "link back: draining after a random spread"
        );
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = task.all.cancelled() => return,
        }
    }
    expedite(task).await;
}

/// A uniformly random wait in `0..=max` (whole milliseconds): how long a
/// terminal waits to drain after the link returns, so a venue's terminals
/// spread over `max` instead of arriving together.
fn spread_delay(rng: &mut impl rand::Rng, max: Duration) -> Duration {
    let max = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    if max == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(rng.gen_range(0..=max))
}

/// What waited out a backoff for connection failures is due now.
async fn expedite(task: &OutboxDrainer) {
    match task.store.expedite(task.clock.wall_ms()).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(items = n, "link back: draining the outbox now"),
        Err(e) => tracing::warn!(error = %e, "cannot make the outbox due after the link came back"),
    }
}

/// Resolves `true` once the link is (or becomes) online; `false` if the link
/// state is gone (stopping).
async fn wait_online(link: &mut watch::Receiver<bool>) -> bool {
    loop {
        if *link.borrow_and_update() {
            return true;
        }
        if link.changed().await.is_err() {
            return false;
        }
    }
}

async fn sleep_opt(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

async fn send(task: &OutboxDrainer, item: &store::OutboxItem) -> Sent {
    let payload = match OutboxPayload::decode(item.kind, &item.payload) {
        Ok(p) => p,
        Err(e) => return Sent::Unreadable(e.to_string()),
    };
    let client = &task.client;
    match payload {
        OutboxPayload::Ack { command_id, ack } => match client.ack_command(&command_id, &ack).await
        {
            Ok(()) => Sent::Done(None),
            Err(e) => Sent::Failed(e),
        },
        OutboxPayload::PaymentEvent { payment_id, event } => {
            match client.payment_event(&payment_id, &event).await {
                Ok(()) => Sent::Done(None),
                Err(e) => Sent::Failed(e),
            }
        }
        OutboxPayload::Reversal {
            reversal_of,
            request,
        } => match client.reverse(&reversal_of, &request).await {
            Ok(_) => Sent::Done(Some(Input::Reversed {
                reference: reversal_of,
            })),
            Err(e) => Sent::Failed(e),
        },
        OutboxPayload::Transaction(sub) => match client.submit_transaction(&sub).await {
            // Every queued transaction is a forward of a terminal approval.
            Ok(answer) => {
                let outcome = match answer.status {
                    wire::AuthStatus::Approved => ForwardOutcome::Approved {
                        transaction_id: answer.transaction_id,
                        auth_code: answer.auth_code,
                    },
                    wire::AuthStatus::Declined => ForwardOutcome::Declined {
                        reason: answer
                            .decline_reason
                            .map_or("declined", |d| d.as_str())
                            .to_string(),
                    },
                };
                Sent::Done(Some(Input::Forwarded {
                    reference: sub.reference,
                    outcome,
                }))
            }
            Err(e) => Sent::Failed(e),
        },
        OutboxPayload::Shift(shift) => match client.submit_shift(&shift).await {
            Ok(()) => Sent::Done(None),
            Err(e) => Sent::Failed(e),
        },
        OutboxPayload::TransferRegister(registration) => {
            match client.register_transfer(&registration).await {
                Ok(()) => Sent::Done(None),
                // code_in_use, no_collection_account, session_closed,
                // expired...: parked, and the screen says "Transfer
                // unavailable" (the card stays on offer).
                Err(e @ ClientError::Permanent { .. }) => {
                    let code = match &e {
                        ClientError::Permanent { code, .. } => code.clone(),
                        _ => String::new(),
                    };
                    Sent::Refused(
                        e,
                        Input::TransferRefused {
                            reference: registration.reference,
                            code,
                        },
                    )
                }
                Err(e) => Sent::Failed(e),
            }
        }
        OutboxPayload::TransferCancel { cancel_transfer } => {
            match client.cancel_transfer(&cancel_transfer).await {
                Ok(true) => Sent::Done(None),
                Ok(false) => {
                    tracing::info!(reference = %cancel_transfer, "transfer to cancel was never registered; nothing to cancel");
                    Sent::Done(None)
                }
                Err(e) => {
                    if let ClientError::Permanent { code, .. } = &e {
                        if code == "transfer_settled" {
                            tracing::error!(reference = %cancel_transfer, "the payer's money arrived for a cancelled transfer payment: refund the payer from the collection account");
                        }
                    }
                    Sent::Failed(e)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_step_is_told_from_drift() {
        assert_eq!(clock_step(0, 0), None);
        assert_eq!(clock_step(1_000, 2_500), None, "rounding, not a step");
        assert_eq!(clock_step(0, -3_600_000), Some(-3_600_000));
        assert_eq!(clock_step(-500, 899_500), Some(900_000));
        assert_eq!(clock_step(i64::MIN, i64::MAX), Some(i64::MAX));
    }

    /// SPEC 5.7: the drain after a link return starts after a random 0-5 s;
    /// the draws cover the whole range and never leave it.
    #[test]
    fn the_link_return_wait_is_spread_over_zero_to_the_maximum() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let max = Duration::from_secs(5);
        let draws: Vec<Duration> = (0..2_000).map(|_| spread_delay(&mut rng, max)).collect();
        assert!(draws.iter().all(|d| *d <= max), "beyond the maximum");
        let low = draws.iter().filter(|d| **d < max / 10).count();
        let high = draws.iter().filter(|d| **d > max - max / 10).count();
        // Uniform: about 200 in each tenth; all together would be a bug.
        assert!((100..300).contains(&low), "{low} in the first tenth");
        assert!((100..300).contains(&high), "{high} in the last tenth");
        assert_eq!(spread_delay(&mut rng, Duration::ZERO), Duration::ZERO);
    }
}
