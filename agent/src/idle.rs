//! `pos-agent wait-idle` (SPEC 8.3): the package's maintainer scripts ask
//! the running agent, before they stop or restart it, to let the payment in
//! progress finish and to start no new one.
//!
//! The channel is a Unix socket in the data directory, [`SOCKET_FILE`]
//! (owner-only like the directory, 0700: the agent's user and root may
//! connect). The agent serves it with [`IdleGate`]; [`wait_idle`] is the
//! client. One request, one answer, both a line of text:
//!
//! - the client sends `wait-idle`;
//! - the agent holds intake (`Input::HoldIntake(true)`: new sales and
//!   refunds are acked `rejected/busy`, the keypad says "Terminal
//!   updating"), waits on the core's status `watch` until no payment is in
//!   progress (no polling), and answers `idle`;
//! - the hold lasts [`HOLD_AFTER`] after the last request was answered (or
//!   abandoned): the stop normally follows within seconds; if none comes,
//!   intake resumes by itself.
//!
//! No socket, or nobody listening on it: no agent runs ([`Waited::NotRunning`],
//! exit 0 at once). The socket is a runtime rendezvous, not data: it is
//! recreated at every start and never fsynced.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::core::Input;
use crate::msg::{CoreMsg, CoreStatus};
use crate::task::{RunError, Task};

/// The socket's name inside the data directory.
pub const SOCKET_FILE: &str = "agent.sock";
/// How long intake stays held after a `wait-idle` was answered, when no
/// stop follows.
pub const HOLD_AFTER: Duration = Duration::from_secs(180);
/// The exit status of `wait-idle` when the payment did not finish in time
/// (sysexits `EX_TEMPFAIL`).
pub const EX_TIMED_OUT: u8 = 75;

const REQUEST: &str = "wait-idle";
const IDLE: &str = "idle";
/// The longest request line the agent reads.
const MAX_LINE: u64 = 64;
/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// `data_dir/agent.sock`.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_FILE)
}

/// What `wait-idle` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// The agent answered: no payment is in progress, intake is held.
    Idle,
    /// No agent runs on this data directory (or it stopped meanwhile).
    NotRunning,
}

/// Why `wait-idle` did not get its answer.
#[derive(Debug, thiserror::Error)]
pub enum WaitIdleError {
    #[error("a payment is still in progress after {} s", .0.as_secs())]
    TimedOut(Duration),
    #[error("cannot talk to the agent at {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the agent at {} answered {answer:?}", path.display())]
    Protocol { path: PathBuf, answer: String },
}

/// Asks the agent running on `data_dir` to hold intake and answer once no
/// payment is in progress; gives up after `timeout`.
pub async fn wait_idle(data_dir: &Path, timeout: Duration) -> Result<Waited, WaitIdleError> {
    let path = socket_path(data_dir);
    match tokio::time::timeout(timeout, ask(&path)).await {
        Ok(r) => r,
        Err(_) => Err(WaitIdleError::TimedOut(timeout)),
    }
}

async fn ask(path: &Path) -> Result<Waited, WaitIdleError> {
    let io = |source| WaitIdleError::Io {
        path: path.to_owned(),
        source,
    };
    let mut stream = match UnixStream::connect(path).await {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(Waited::NotRunning);
        }
        Err(e) => return Err(io(e)),
    };
    stream
        .write_all(format!("{REQUEST}\n").as_bytes())
        .await
        .map_err(io)?;
    let mut answer = String::new();
    BufReader::new(stream.take(MAX_LINE))
        .read_line(&mut answer)
        .await
        .map_err(io)?;
    match answer.trim_end() {
        IDLE => Ok(Waited::Idle),
        // Closed without an answer: the agent stopped meanwhile.
        "" => Ok(Waited::NotRunning),
        other => Err(WaitIdleError::Protocol {
            path: path.to_owned(),
            answer: other.to_owned(),
        }),
    }
}

/// Binds the socket in `data_dir`, replacing one a previous run left (the
/// caller holds the ledger lock, so no other agent uses it), owner-only.
pub fn bind(data_dir: &Path) -> std::io::Result<(UnixListener, PathBuf)> {
    use std::os::unix::fs::PermissionsExt;
    let path = socket_path(data_dir);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok((listener, path))
}

/// What a connection tells the gate.
enum Hold {
    /// A request came: hold intake, answer on `held` once the core has it.
    Begin { held: oneshot::Sender<()> },
    /// A request was answered or abandoned.
    End,
}

/// Serves `wait-idle` requests and owns the intake hold: the only sender of
/// `HoldIntake`, so holds and resumes reach the core in order.
pub struct IdleGate {
    pub listener: UnixListener,
    /// Removed when the agent stops.
    pub path: PathBuf,
    pub status: watch::Receiver<CoreStatus>,
    pub core: mpsc::Sender<CoreMsg>,
    pub all: CancellationToken,
}

impl Task for IdleGate {
    const NAME: &'static str = "wait-idle";

    fn run(self) -> impl Future<Output = Result<(), RunError>> + Send {
        self.run_loop()
    }
}

impl IdleGate {
    async fn run_loop(self) -> Result<(), RunError> {
        let (hold_tx, mut hold_rx) = mpsc::channel::<Hold>(8);
        let mut conns = tokio::task::JoinSet::new();
        let mut waiting = 0usize;
        let mut held = false;
        let mut resume_at: Option<Instant> = None;
        loop {
            let resume = async {
                match resume_at {
                    Some(at) if held && waiting == 0 => tokio::time::sleep_until(at).await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        conns.spawn(serve(
                            stream,
                            hold_tx.clone(),
                            self.status.clone(),
                            self.all.clone(),
                        ));
                    }
                    Err(e) => tracing::warn!(error = %e, "wait-idle: cannot accept a connection"),
                },
                Some(hold) = hold_rx.recv() => match hold {
                    Hold::Begin { held: answered } => {
                        waiting += 1;
                        if !held {
                            tracing::info!("intake held for an upgrade (wait-idle): no new payments");
                        }
                        held = true;
                        let (done, core_done) = oneshot::channel();
                        if self.core.send(CoreMsg::InputDone(Input::HoldIntake(true), done)).await.is_err() {
                            return Ok(());
                        }
                        // The connection waits for the core to have it; the
                        // gate goes on serving.
                        tokio::spawn(async move {
                            let _ = core_done.await;
                            let _ = answered.send(());
                        });
                    }
                    Hold::End => {
                        waiting = waiting.saturating_sub(1);
                        resume_at = Some(Instant::now() + HOLD_AFTER);
                    }
                },
                () = resume => {
                    held = false;
                    resume_at = None;
                    tracing::info!("no stop followed wait-idle: intake resumed");
                    if self.core.send(CoreMsg::Input(Input::HoldIntake(false))).await.is_err() {
                        return Ok(());
                    }
                }
                Some(_) = conns.join_next() => {}
                _ = self.all.cancelled() => {
                    let _ = std::fs::remove_file(&self.path);
                    return Ok(());
                }
            }
        }
    }
}

/// One connection: reads the request, has intake held, answers `idle` once
/// no payment is in progress (or gives up when the client goes away).
async fn serve(
    stream: UnixStream,
    gate: mpsc::Sender<Hold>,
    mut status: watch::Receiver<CoreStatus>,
    all: CancellationToken,
) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read.take(MAX_LINE));
    let mut line = String::new();
    match tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line)).await {
        Ok(Ok(_)) if line.trim_end() == REQUEST => {}
        _ => {
            let _ = write.write_all(b"error: unknown request\n").await;
            return;
        }
    }
    let (held, core_has_it) = oneshot::channel();
    if gate.send(Hold::Begin { held }).await.is_err() {
        return;
    }
    // From here on no new payment starts: only the one in progress, if
    // any, is waited for.
    let _ = core_has_it.await;
    let mut rest = [0u8; 1];
    let idle = tokio::select! {
        r = status.wait_for(|s| !s.paying) => r.is_ok(),
        // The client went away (its timeout) or the agent is stopping.
        _ = reader.read(&mut rest) => false,
        _ = all.cancelled() => false,
    };
    if idle {
        let _ = write.write_all(format!("{IDLE}\n").as_bytes()).await;
        tracing::info!("wait-idle answered: no payment in progress");
    }
    let _ = gate.send(Hold::End).await;
}
