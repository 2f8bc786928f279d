//! The command stream (SPEC 4.3): Server-Sent Events from
//! `GET /v1/terminals/:tid/commands/stream`, validated at the boundary and
//! handed to the core one at a time.
//!
//! **Resume.** The stream resumes with `Last-Event-ID` = the id of the last
//! event *acted on*, kept in the store's kv under [`KV_LAST_EVENT_ID`]. It
//! is written only after the command was handed to the core and the drain
//! that followed finished (the pending row and the accepted ack committed,
//! or the rejection sent), or after a malformed command's rejection was
//! queued. A crash before that write replays the event; a replayed sale or
//! refund is recognised by its `payment_id` (the store already has a
//! transaction for it) and never starts a second payment. When a command's
//! commit failed (or its preparation could not read the store), the
//! connection is dropped at once: no later event can move the id past it,
//! and the next connection delivers it again (SPEC 5.7). Ids are decimal
//! numbers (SPEC 4.3); an event whose id is not is ignored and logged, and
//! never becomes the resume id.
//!
//! **References.** Before a sale or refund reaches the core, its reference
//! is minted from the store's durable counter (committed before any
//! network attempt). A refund gets its original sale looked up.
//!
//! **Liveness.** Pings arrive at least every 15 s; every byte, pings
//! included, is a sign of life ([`super::sse`]); no bytes for
//! [`STREAM_SILENCE`] means the connection is dead. Opening the stream has
//! [`STREAM_OPEN_TIMEOUT`] to the response headers. Lines and events are
//! bounded ([`STREAM_LIMITS`]) before they are buffered; one over its bound
//! drops the connection. The server ends streams after at most 5 minutes.
//! Reconnects back off exponentially with jitter.

use std::collections::VecDeque;
use std::time::Duration;

use proto::sse::{SseEvent, SseLimits};
use proto::wire::{self, CommandBody};
use proto::{Reference, TerminalId};
use rand::Rng;
use tokio::sync::oneshot;

use std::sync::Arc;

use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::link::Link;
use super::sse::{EventReader, StreamError};
use crate::client::ClientError;
use crate::client::SignedClient;
use crate::clock::Clock;
use crate::core::{self, Input};
use crate::mapping;
use crate::msg::CoreMsg;
use crate::task::{RunError, Task};

/// kv key of the last command-stream event id acted on.
pub const KV_LAST_EVENT_ID: &str = "command_stream.last_event_id";
/// No bytes (not even a ping) for this long: the stream is dead.
pub const STREAM_SILENCE: Duration = Duration::from_secs(45);
/// How long opening the stream may take, to the response headers.
pub const STREAM_OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Bounds of the stream's lines and events: a command's `data:` line (the
/// largest command and its field name) and an event of one command with
/// its `id:` and `event:`.
pub const STREAM_LIMITS: SseLimits = SseLimits {
    max_line: MAX_COMMAND_BYTES + 64,
    max_event: MAX_COMMAND_BYTES + 128,
};
/// Command ids remembered to drop replays within one run.
const SEEN_CAPACITY: usize = 256;

pub use proto::wire::{CommandError, MAX_COMMAND_BYTES, ValidCommand, parse_command};

/// Builds the core's command: mints the reference of a sale or refund from
/// the store's counter and looks a refund's original sale up. `Ok(None)`: a
/// replay of a payment the store already has.
pub async fn to_core(
    store: &store::AsyncStore,
    terminal: &TerminalId,
    valid: ValidCommand,
    now_ms: i64,
) -> Result<Option<core::Command>, store::StoreError> {
    let command_id = core::CommandId(valid.command.command_id.clone());
    let mint = |n: u64| Reference::for_sequence(terminal, n);
    Ok(Some(match valid.command.body {
        CommandBody::Sale {
            payment_id,
            amount,
            partner_reference,
            expires_at,
            offline_policy,
            ..
        } => {
            if !store
                .transactions_for_payment(payment_id.clone())
                .await?
                .is_empty()
            {
                return Ok(None);
            }
            let reference = mint(store.next_sequence(now_ms).await?);
            core::Command::Sale(core::SaleCommand {
                reference,
                command_id,
                payment_id,
                amount,
                partner_reference: Some(partner_reference),
                expires_at: Some(mapping::unix_millis(expires_at)),
                offline_policy: match offline_policy {
                    wire::OfflinePolicy::RequireOnline => core::OfflinePolicy::RequireOnline,
                    _ => core::OfflinePolicy::PreferOnline,
                },
            })
        }
        CommandBody::Refund {
            payment_id,
            original_reference,
            amount,
            ..
        } => {
            if !store
                .transactions_for_payment(payment_id.clone())
                .await?
                .is_empty()
            {
                return Ok(None);
            }
            let original = original_sale(store, &original_reference).await?;
            let reference = mint(store.next_sequence(now_ms).await?);
            core::Command::Refund(core::RefundCommand {
                reference,
                command_id,
                payment_id,
                original_reference,
                amount,
                original,
            })
        }
        CommandBody::Abort { payment_id } => core::Command::Abort(core::AbortCommand {
            command_id,
            payment_id,
        }),
        // The core settles the transfer payment waiting for it (the
        // approval and the accepted ack in one commit) or acknowledges and
        // ignores a credit for anything else.
        CommandBody::TransferReceived {
            reference,
            amount,
            total_received,
            payer,
            credited_at,
        } => core::Command::TransferReceived(core::TransferReceivedCommand {
            command_id,
            reference,
            amount,
            total_received,
            payer,
            credited_at: mapping::unix_millis(credited_at),
        }),
        CommandBody::SessionClosed {} => core::Command::SessionClosed(core::SessionClosedCommand {
            command_id,
            totals: Some(super::session_totals(store).await?),
        }),
    }))
}

/// What the store knows of a refund's original sale (None: unknown here,
/// or no card on it).
pub async fn original_sale(
    store: &store::AsyncStore,
    reference: &Reference,
) -> Result<Option<core::OriginalSale>, store::StoreError> {
    let Some(tx) = store.transaction(reference.clone()).await? else {
        return Ok(None);
    };
    let Some(card) = tx.card.as_ref() else {
        return Ok(None);
    };
    let refundable_left = if tx.kind == store::TxKind::Sale && tx.state.is_approved() {
        store.refundable(reference.clone()).await?
    } else {
        proto::Money::ZERO
    };
    Ok(Some(core::OriginalSale {
        reference: tx.reference.clone(),
        kind: tx.kind,
        state: tx.state,
        amount: tx.amount,
        refundable_left,
        card_token: core::CardToken::new(card.token()).map_err(|e| {
            store::StoreError::Invalid(format!("card token of {}: {e}", tx.reference))
        })?,
    }))
}

/// The command stream task; ends when intake stops.
pub struct CommandStream {
    pub store: store::AsyncStore,
    pub client: SignedClient,
    pub link: Link,
    pub core: mpsc::Sender<CoreMsg>,
    /// Woken after a malformed command's rejection was queued.
    pub outbox_wake: Arc<Notify>,
    pub terminal_id: TerminalId,
    pub clock: Clock,
    /// Cancelled when the agent stops taking work.
    pub intake: CancellationToken,
    pub retry_initial: Duration,
    pub retry_max: Duration,
}

impl Task for CommandStream {
    const NAME: &'static str = "command stream";

    fn run(self) -> impl Future<Output = Result<(), RunError>> + Send {
        command_task(self)
    }
}

async fn command_task(task: CommandStream) -> Result<(), RunError> {
    let mut backoff = Backoff::new(task.retry_initial, task.retry_max);
    let mut seen: VecDeque<String> = VecDeque::new();
    loop {
        if task.intake.is_cancelled() {
            return Ok(());
        }
        let last = match task.store.kv_get(KV_LAST_EVENT_ID.to_string()).await {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the last command id; retrying");
                None
            }
        };
        let opened = tokio::select! {
            r = open_stream(&task.client, last.as_deref(), STREAM_OPEN_TIMEOUT) => r,
            _ = task.intake.cancelled() => return Ok(()),
        };
        match opened {
            Ok(resp) => {
                task.link.answered();
                backoff.reset();
                tracing::info!(
                    last_event_id = last.as_deref().unwrap_or("-"),
                    "command stream open"
                );
                let mut events =
                    EventReader::new(resp.bytes_stream(), STREAM_LIMITS, STREAM_SILENCE);
                let handoff = task.handoff();
                // A stop interrupts the wait for the next event, never the
                // handling of one: a command acted on has its event id kept.
                let ended = read_commands(&handoff, &mut events, &mut seen, &task.intake).await?;
                match ended {
                    StreamEnd::Stopping => return Ok(()),
                    StreamEnd::Closed => {
                        tracing::debug!("command stream ended by the server; reconnecting");
                    }
                    StreamEnd::Retry => {
                        tracing::warn!("command stream dropped to get a command again");
                    }
                    StreamEnd::Broken(e) => {
                        tracing::warn!(error = %e, "command stream broke; reconnecting");
                        if matches!(e, StreamError::Silent(_) | StreamError::Transport(_)) {
                            task.link.failed(&silent());
                        }
                    }
                }
            }
            Err(e) => {
                task.link.failed(&e);
                match &e {
                    ClientError::Permanent {
                        status: 401 | 403, ..
                    } => tracing::error!(
                        error = %e,
                        "command stream refused: credentials rejected; re-provision this terminal"
                    ),
                    _ => tracing::warn!(error = %e, "cannot open the command stream"),
                }
            }
        }
        let wait = backoff.next_delay();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = task.intake.cancelled() => return Ok(()),
        }
    }
}

/// How one connection's events ended.
#[derive(Debug)]
enum StreamEnd {
    /// Intake stopped (between two events).
    Stopping,
    /// The server ended the stream.
    Closed,
    /// A command must come again: reconnect from the stored id.
    Retry,
    /// Silence, a broken connection or a line/event over its bound.
    Broken(StreamError),
}

/// What handling one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handled {
    /// Acted on (or ignored for good): the stream goes on.
    Done,
    /// Not done (a commit or the store failed): the id must not move past it.
    Retry,
}

/// What handing commands to the core needs of the task.
struct Handoff<'a> {
    store: &'a store::AsyncStore,
    core: &'a mpsc::Sender<CoreMsg>,
    outbox_wake: &'a Notify,
    terminal_id: &'a TerminalId,
    clock: &'a Clock,
}

impl CommandStream {
    fn handoff(&self) -> Handoff<'_> {
        Handoff {
            store: &self.store,
            core: &self.core,
            outbox_wake: &self.outbox_wake,
            terminal_id: &self.terminal_id,
            clock: &self.clock,
        }
    }
}

/// Hands the events of one connection to the core, in order, until the
/// stream ends or a command must come again.
async fn read_commands<S, E>(
    task: &Handoff<'_>,
    events: &mut EventReader<S>,
    seen: &mut VecDeque<String>,
    intake: &CancellationToken,
) -> Result<StreamEnd, RunError>
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    loop {
        let next = tokio::select! {
            n = events.next() => n,
            _ = intake.cancelled() => return Ok(StreamEnd::Stopping),
        };
        let ev = match next {
            Ok(Some(ev)) => ev,
            Ok(None) => return Ok(StreamEnd::Closed),
            Err(e) => return Ok(StreamEnd::Broken(e)),
        };
        if ev.event != "command" {
            continue;
        }
        let Some(id) = event_id(&ev) else {
            continue;
        };
        if handle_event(task, seen, id, &ev.data).await? == Handled::Retry {
            return Ok(StreamEnd::Retry);
        }
    }
}

/// The event's id when it may be acted on: `Some("")` for an event without
/// one (or with an empty one), `None` (logged) for an id that is not a
/// decimal number (of at most 64 bits, as the server's sequences are).
fn event_id(ev: &SseEvent) -> Option<&str> {
    match ev.id.as_deref() {
        None | Some("") => Some(""),
        Some(id) if id.bytes().all(|b| b.is_ascii_digit()) && id.parse::<u64>().is_ok() => Some(id),
        Some(id) => {
            let shown: String = id.chars().take(32).collect();
            tracing::warn!(event_id = %shown, "command event with a non-numeric id ignored");
            None
        }
    }
}

/// Opens the stream; gives up (retryable) when the response headers have
/// not come `within`.
async fn open_stream(
    client: &SignedClient,
    last_event_id: Option<&str>,
    within: Duration,
) -> Result<reqwest::Response, ClientError> {
    match tokio::time::timeout(within, client.command_stream(last_event_id)).await {
        Ok(opened) => opened,
        Err(_) => Err(ClientError::Retryable {
            what: "command stream".into(),
            status: None,
            retry_after: None,
            message: format!("no response headers within {within:?}"),
        }),
    }
}

fn silent() -> ClientError {
    ClientError::Retryable {
        what: "command stream".into(),
        status: None,
        retry_after: None,
        message: "connection lost".into(),
    }
}

async fn handle_event(
    task: &Handoff<'_>,
    seen: &mut VecDeque<String>,
    id: &str,
    data: &str,
) -> Result<Handled, RunError> {
    let now_ms = task.clock.wall_ms();
    // How the event id is kept once the command is handled: relaxed only
    // when the command's payment is in the ledger, so a replay after a
    // power cut is recognised (`to_core` returns None) whatever happened
    // to the id. A command answered without a commit of its own (a
    // rejection, an abort) keeps its id durably.
    let mut id_durability = store::Durability::Full;
    match parse_command(data) {
        Ok(valid) => {
            let command_id = valid.command.command_id.clone();
            if seen.contains(&command_id) {
                tracing::debug!(command_id = %command_id, "command replayed on reconnect; already handled");
            } else {
                tracing::info!(command_id = %command_id, event_id = id, "command received");
                match to_core(task.store, task.terminal_id, valid, now_ms).await {
                    Ok(Some(command)) => {
                        let payment = match &command {
                            core::Command::Sale(c) => Some(c.payment_id.clone()),
                            core::Command::Refund(c) => Some(c.payment_id.clone()),
                            _ => None,
                        };
                        let (done, wait) = oneshot::channel();
                        if task
                            .core
                            .send(CoreMsg::InputDone(Input::Command(command), done))
                            .await
                            .is_err()
                        {
                            return Err(RunError::TaskStopped { task: "core loop" });
                        }
                        // The command's effects are committed (or refused)
                        // once the core answers. When a commit failed, the
                        // id is not advanced: the command comes back on the
                        // next connection, and if its payment was recorded
                        // after all, the replay is dropped above.
                        if !wait.await.unwrap_or(false) {
                            tracing::warn!(command_id = %command_id, "a commit failed while handling the command; not marking it done");
                            return Ok(Handled::Retry);
                        }
                        if let Some(payment) = payment {
                            if matches!(task.store.transactions_for_payment(payment).await, Ok(t) if !t.is_empty())
                            {
                                id_durability = store::Durability::Relaxed;
                            }
                        }
                    }
                    Ok(None) => {
                        id_durability = store::Durability::Relaxed;
                        tracing::info!(
                            command_id = %command_id,
                            "command replayed: its payment is already recorded; not started again"
                        )
                    }
                    Err(e) => {
                        // Nothing was handed over: the id is not advanced, the
                        // command comes back on the next connection.
                        tracing::error!(command_id = %command_id, error = %e, "cannot prepare the command; storage failed");
                        return Ok(Handled::Retry);
                    }
                }
                seen.push_back(command_id);
                if seen.len() > SEEN_CAPACITY {
                    seen.pop_front();
                }
            }
        }
        Err((command_id, problem)) => {
            tracing::warn!(event_id = id, command_id = command_id.as_deref().unwrap_or("-"), error = %problem, "malformed command rejected");
            if let Some(command_id) = command_id {
                let payload = mapping::OutboxPayload::Ack {
                    command_id,
                    ack: wire::CommandAck {
                        status: wire::AckStatus::Rejected,
                        reason: Some(wire::AckReason::InvalidRequest),
                    },
                };
                let item = serde_json::to_value(&payload)
                    .map(|v| store::NewOutboxItem::new(store::OutboxKind::CommandAck, v));
                match item {
                    Ok(item) => {
                        let change = store::Change::enqueue_only(now_ms, vec![item]);
                        if let Err(e) = task.store.record(change).await {
                            tracing::error!(error = %e, "cannot queue the rejection of a malformed command");
                            return Ok(Handled::Retry);
                        }
                        task.outbox_wake.notify_one();
                        let _ = task.core.send(CoreMsg::RefreshQueue).await;
                    }
                    Err(e) => tracing::error!(error = %e, "cannot encode a command rejection"),
                }
            }
        }
    }
    if !id.is_empty() {
        if let Err(e) = task
            .store
            .kv_set_with(
                KV_LAST_EVENT_ID.to_string(),
                id.to_string(),
                now_ms,
                id_durability,
            )
            .await
        {
            tracing::error!(error = %e, "cannot store the last command id; it may be replayed");
        }
    }
    Ok(Handled::Done)
}

/// Exponential backoff with equal jitter: `[d/2, d]`, `d` doubling from
/// `initial` up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        let initial = initial.max(Duration::from_millis(1));
        Backoff {
            initial,
            max: max.max(initial),
            current: initial,
        }
    }

    pub fn reset(&mut self) {
        self.current = self.initial;
    }

    pub fn next_delay(&mut self) -> Duration {
        let d = self.current;
        self.current = (self.current * 2).min(self.max);
        let half = d / 2;
        let spread = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(rand::thread_rng().gen_range(0..=spread))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_sale_parses() {
        let data = r#"{"command_id":"cmd_1","type":"sale","payment_id":"pay_1","amount":"2000.00","currency":"NGN","partner_reference":"P1","expires_at":"2026-11-21T10:00:00Z"}"#;
        let v = parse_command(data).unwrap();
        assert_eq!(v.command.command_id, "cmd_1");
        assert!(matches!(v.command.body, CommandBody::Sale { .. }));
    }

    #[test]
    fn malformed_commands_are_refused_with_their_id_when_readable() {
        let cases = [
            (
                r#"{"command_id":"cmd_2","type":"sale","amount":"abc"}"#,
                Some("cmd_2"),
            ),
            (
                r#"{"command_id":"cmd_3","type":"launch_rocket"}"#,
                Some("cmd_3"),
            ),
            (
                r#"{"command_id":"cmd_4","type":"sale","payment_id":"pay_1","amount":"20.00","currency":"USD","partner_reference":"P","expires_at":"2026-11-21T10:00:00Z"}"#,
                Some("cmd_4"),
            ),
            (r#"{"command_id":"bad id/../x","type":"abort"}"#, None),
            ("not json at all", None),
            (r#"{"type":"abort","payment_id":"pay_1"}"#, None),
        ];
        for (data, id) in cases {
            let (got, _) = parse_command(data).unwrap_err();
            assert_eq!(got.as_deref(), id, "{data}");
        }
        let zero = r#"{"command_id":"cmd_5","type":"refund","payment_id":"pay_2","original_reference":"pos_abc123_001-000001","amount":"0.00"}"#;
        assert_eq!(
            parse_command(zero).unwrap_err(),
            (Some("cmd_5".to_string()), CommandError::ZeroAmount)
        );
        let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_COMMAND_BYTES));
        assert_eq!(parse_command(&big).unwrap_err().1, CommandError::TooLarge);
    }

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
        let bounds = [(50, 100), (100, 200), (200, 400), (200, 400)];
        for (lo, hi) in bounds {
            let d = b.next_delay().as_millis();
            assert!((lo..=hi).contains(&d), "{d} not in {lo}..={hi}");
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    /// One connection's events, handed to a core that answers each command
    /// with the next of `commits` (true: committed). Returns how the
    /// connection ended, the command ids the core saw and the stored id.
    async fn run_connection(
        stream: &'static str,
        commits: Vec<bool>,
    ) -> (StreamEnd, Vec<String>, Option<String>) {
        let dir = tempfile::tempdir().unwrap();
        let store = store::AsyncStore::open(dir.path().join("l.sqlite"), Default::default())
            .await
            .unwrap();
        let (core_tx, mut core_rx) = mpsc::channel(4);
        let fake_core = tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut commits = commits.into_iter();
            while let Some(msg) = core_rx.recv().await {
                if let CoreMsg::InputDone(Input::Command(c), done) = msg {
                    seen.push(match &c {
                        core::Command::Abort(a) => a.command_id.0.clone(),
                        other => format!("{other:?}"),
                    });
                    let _ = done.send(commits.next().unwrap_or(true));
                }
            }
            seen
        });
        let tid = TerminalId::new("pos_abc123_001").unwrap();
        let clock = Clock::new();
        let wake = Notify::new();
        let handoff = Handoff {
            store: &store,
            core: &core_tx,
            outbox_wake: &wake,
            terminal_id: &tid,
            clock: &clock,
        };
        let body = futures_util::stream::iter([Ok::<_, std::convert::Infallible>(
            bytes::Bytes::from_static(stream.as_bytes()),
        )]);
        let mut events = EventReader::new(body, STREAM_LIMITS, STREAM_SILENCE);
        let mut seen = VecDeque::new();
        let end = read_commands(&handoff, &mut events, &mut seen, &CancellationToken::new())
            .await
            .unwrap();
        drop(core_tx);
        let handed = fake_core.await.unwrap();
        let last = store.kv_get(KV_LAST_EVENT_ID.to_string()).await.unwrap();
        (end, handed, last)
    }

    #[tokio::test]
    async fn a_failed_commit_does_not_advance_the_event_id() {
        let stream = concat!(
            "id: 4\nevent: command\ndata: {\"command_id\":\"cmd_0\",\"type\":\"abort\",\"payment_id\":\"pay_0\"}\n\n",
            "id: 5\nevent: command\ndata: {\"command_id\":\"cmd_1\",\"type\":\"abort\",\"payment_id\":\"pay_1\"}\n\n",
            "id: 6\nevent: command\ndata: {\"command_id\":\"cmd_2\",\"type\":\"abort\",\"payment_id\":\"pay_2\"}\n\n",
        );
        let (end, handed, last) = run_connection(stream, vec![true, false, true]).await;
        assert!(matches!(end, StreamEnd::Retry), "{end:?}");
        assert_eq!(handed, ["cmd_0", "cmd_1"], "nothing after the failed one");
        assert_eq!(last.as_deref(), Some("4"), "resumes before the failed one");
    }

    #[tokio::test]
    async fn a_non_numeric_event_id_is_not_stored() {
        let stream = concat!(
            "id: abc\nevent: command\ndata: {\"command_id\":\"cmd_1\",\"type\":\"abort\",\"payment_id\":\"pay_1\"}\n\n",
            "id: 99999999999999999999999\nevent: command\ndata: {\"command_id\":\"cmd_3\",\"type\":\"abort\",\"payment_id\":\"pay_3\"}\n\n",
            "id: 7x\nevent: command\ndata: {\"command_id\":\"cmd_2\",\"type\":\"abort\",\"payment_id\":\"pay_2\"}\n\n",
        );
        let (end, handed, last) = run_connection(stream, vec![]).await;
        assert!(matches!(end, StreamEnd::Closed), "{end:?}");
        assert_eq!(last, None, "a non-numeric id never becomes the resume id");
        assert!(
            handed.is_empty(),
            "events with such ids are ignored: {handed:?}"
        );
        let numeric = "id: 12\nevent: command\ndata: {\"command_id\":\"cmd_1\",\"type\":\"abort\",\"payment_id\":\"pay_1\"}\n\n";
        let (_, handed, last) = run_connection(numeric, vec![]).await;
        assert_eq!(handed, ["cmd_1"]);
        assert_eq!(last.as_deref(), Some("12"));
    }

    /// An oversized event is skipped (nothing of it buffered, its id not
    /// taken); the command after it is handed over and becomes the resume
    /// id.
    #[tokio::test]
    async fn an_oversized_event_is_skipped_and_the_next_command_handed_over() {
        let stream: &'static str = Box::leak(
            format!(
                "id: 3\nevent: command\ndata: {}\n\n\
                 id: 4\nevent: command\ndata: {{\"command_id\":\"cmd_4\",\"type\":\"abort\",\"payment_id\":\"pay_4\"}}\n\n",
                "x".repeat(STREAM_LIMITS.max_line)
            )
            .into_boxed_str(),
        );
        let (end, handed, last) = run_connection(stream, vec![]).await;
        assert!(matches!(end, StreamEnd::Closed), "{end:?}");
        assert_eq!(handed, ["cmd_4"]);
        assert_eq!(last.as_deref(), Some("4"));
    }

    /// A server that takes the connection and never answers: opening gives
    /// up at the timeout (virtual time) instead of waiting forever.
    #[tokio::test(start_paused = true)]
    async fn opening_a_stream_that_never_answers_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url: reqwest::Url = format!("http://{}", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let silent_server = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((conn, _)) = listener.accept().await {
                held.push(conn); // read nothing, answer nothing
            }
        });
        let backend = crate::config::BackendConfig {
            url: url.clone(),
            terminal_api_url: url,
            ca_file: None,
            ca_pem: None,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
        };
        let credentials = proto::signing::Credentials {
            tenant_id: "t".into(),
            api_key: "k".into(),
            merchant_id: "m".into(),
            secret: proto::signing::Secret::new("s"),
        };
        let tid = TerminalId::new("pos_abc123_001").unwrap();
        let client = SignedClient::new(&backend, tid, credentials).unwrap();
        let started = tokio::time::Instant::now();
        let err = open_stream(&client, None, STREAM_OPEN_TIMEOUT)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ClientError::Retryable { message, .. } if message.contains("no response headers")),
            "{err:?}"
        );
        assert_eq!(started.elapsed(), STREAM_OPEN_TIMEOUT);
        silent_server.abort();
    }

    #[tokio::test]
    async fn sale_mints_a_committed_reference_and_replays_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = store::AsyncStore::open(dir.path().join("l.sqlite"), Default::default())
            .await
            .unwrap();
        let tid = TerminalId::new("pos_abc123_001").unwrap();
        let data = r#"{"command_id":"cmd_1","type":"sale","payment_id":"pay_1","amount":"2000.00","currency":"NGN","partner_reference":"P1","expires_at":"2026-11-21T10:00:00Z"}"#;
        let c = to_core(&store, &tid, parse_command(data).unwrap(), 0)
            .await
            .unwrap()
            .unwrap();
        let core::Command::Sale(sale) = c else {
            panic!("{c:?}")
        };
        assert_eq!(sale.reference, Reference::for_sequence(&tid, 1));
        assert_eq!(sale.expires_at, Some(core::UnixMillis(1_795_255_200_000)));
        // The payment gets recorded; the same command again is a replay.
        store
            .record(store::Change {
                now: 1,
                write: Some(store::TxWrite::Insert(store::NewTransaction {
                    payment_id: Some(sale.payment_id.clone()),
                    ..store::NewTransaction::sale(sale.reference.clone(), sale.amount)
                })),
                enqueue: vec![],
                durability: store::Durability::Full,
            })
            .await
            .unwrap();
        let again = to_core(&store, &tid, parse_command(data).unwrap(), 2)
            .await
            .unwrap();
        assert_eq!(again, None);
        // The counter moved on: the next sale gets the next reference.
        let other = data.replace("pay_1", "pay_2").replace("cmd_1", "cmd_2");
        let Some(core::Command::Sale(s2)) =
            to_core(&store, &tid, parse_command(&other).unwrap(), 3)
                .await
                .unwrap()
        else {
            panic!()
        };
        assert_eq!(s2.reference, Reference::for_sequence(&tid, 2));
    }

    #[tokio::test]
    async fn transfer_received_goes_to_the_core_with_its_credit_and_payer() {
        let dir = tempfile::tempdir().unwrap();
        let store = store::AsyncStore::open(dir.path().join("l.sqlite"), Default::default())
            .await
            .unwrap();
        let tid = TerminalId::new("pos_abc123_001").unwrap();
        let data = r#"{"command_id":"cmd_7","type":"transfer_received","reference":"pos_abc123_001-000004","amount":"1000.00","total_received":"2500.00","payer":{"name":"ADA OBI","bank":"GTBank"},"credited_at":"2026-11-21T10:00:00Z"}"#;
        let c = to_core(&store, &tid, parse_command(data).unwrap(), 0)
            .await
            .unwrap()
            .unwrap();
        let core::Command::TransferReceived(t) = c else {
            panic!("{c:?}")
        };
        assert_eq!(t.command_id.0, "cmd_7");
        assert_eq!(t.reference, Reference::for_sequence(&tid, 4));
        assert_eq!(t.amount.to_wire(), "1000.00");
        assert_eq!(t.total_received.to_wire(), "2500.00");
        assert_eq!(
            (t.payer.name.as_str(), t.payer.bank.as_str()),
            ("ADA OBI", "GTBank")
        );
        assert_eq!(t.credited_at, core::UnixMillis(1_795_255_200_000));
        // Nothing minted: a credit is not a new payment.
        assert_eq!(store.next_sequence(1).await.unwrap(), 1);
    }
}
