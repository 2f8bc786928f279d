//! `pos-agent run` as a whole (SPEC 8.1): a terminal with credentials in
//! its data directory runs at once; one without pairs by code first, on
//! the `pairing` screen, then runs in the same process. The panel (and the
//! virtual device's control API) is opened once, before either phase, so
//! the technician and tests see the pairing screen and then the idle one
//! at the same address.

use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Clock, Panel, RunError, start_on_panel};
use crate::config::Config;
use crate::pairing::{self, PairingLink, PairingProgress};
use crate::provision::{self, ENV_CREDENTIALS_DIRECTORY, ProvisionError};

/// The daemon: pairing (when needed), then the runtime.
pub struct Daemon {
    control_addr: Option<SocketAddr>,
    stop: CancellationToken,
    phase: watch::Receiver<Phase>,
    task: JoinHandle<Result<(), RunError>>,
}

/// Which phase the daemon is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No credentials: showing a code and waiting for the claim.
    Pairing,
    /// The runtime runs (idle, payments).
    Running,
    /// Stopped.
    Stopped,
}

impl Daemon {
    /// Opens the panel and starts: the runtime when the data directory
    /// holds credentials, the pairing flow when it holds none.
    pub async fn start(config: Config) -> Result<Daemon, RunError> {
        let panel = Panel::open(&config).await?;
        let control_addr = panel.control_addr();
        let stop = CancellationToken::new();
        let (phase_tx, phase) = watch::channel(Phase::Pairing);
        let task = tokio::spawn(phases(config, panel, stop.clone(), phase_tx));
        Ok(Daemon {
            control_addr,
            stop,
            phase,
            task,
        })
    }

    /// The virtual device's control API (the same in every phase).
    pub fn control_addr(&self) -> Option<SocketAddr> {
        self.control_addr
    }

    /// Changes of the phase.
    pub fn phase(&self) -> watch::Receiver<Phase> {
        self.phase.clone()
    }

    /// Cancelling it stops the daemon gracefully (signals).
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Graceful stop, then until stopped.
    pub async fn shutdown(self) -> Result<(), RunError> {
        self.stop.cancel();
        self.wait().await
    }

    /// Until the daemon stops (shutdown, or the first fatal error).
    pub async fn wait(self) -> Result<(), RunError> {
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(RunError::TaskPanicked {
                task: "daemon",
                message: e.to_string(),
            }),
        }
    }
}

fn credentials_directory() -> Option<PathBuf> {
    std::env::var_os(ENV_CREDENTIALS_DIRECTORY).map(PathBuf::from)
}

async fn phases(
    config: Config,
    panel: Panel,
    stop: CancellationToken,
    phase: watch::Sender<Phase>,
) -> Result<(), RunError> {
    let result = run_phases(config, panel, &stop, &phase).await;
    phase.send_replace(Phase::Stopped);
    result
}

/// Pairing when needed, then the runtime; again from pairing when the
/// terminal was unpaired from the menu (the runtime stops, its ledger and
/// the control address stay).
async fn run_phases(
    mut config: Config,
    mut panel: Panel,
    stop: &CancellationToken,
    phase: &watch::Sender<Phase>,
) -> Result<(), RunError> {
    let mut creds_dir = credentials_directory();
    loop {
        let identity = match provision::load_identity(&config, creds_dir.as_deref()) {
            Ok(identity) => identity,
            Err(ProvisionError::NotProvisioned { .. }) => {
                phase.send_replace(Phase::Pairing);
                match pair_on_panel(&config, &mut panel, stop, &mut |_| {}).await? {
                    Some(identity) => identity,
                    None => return Ok(()),
                }
            }
            Err(e) => return Err(e.into()),
        };
        phase.send_replace(Phase::Running);
        let control_addr = panel.control_addr();
        let agent = start_on_panel(config.clone(), identity, Clock::new(), panel).await?;
        let agent_stop = agent.stop_token();
        let on_stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = on_stop.cancelled() => agent_stop.cancel(),
                _ = agent_stop.cancelled() => {}
            }
        });
        agent.wait().await?;
        if stop.is_cancelled() || provision::has_identity(&config.data_dir) {
            return Ok(());
        }
        // Unpaired from the menu: pair again on the same control address.
        // systemd's copies of the old credentials are stale now.
        creds_dir = None;
        if let Some(addr) = control_addr {
            config.hal.virtual_control_addr = addr;
        }
        panel = reopen(&config).await?;
    }
}

/// Opens the panel again after the runtime stopped. The old control API
/// lets go of its port as it shuts down; a bind that comes first is
/// retried a few times, 50 ms apart.
async fn reopen(config: &Config) -> Result<Panel, RunError> {
    let mut attempts = 0;
    loop {
        match Panel::open(config).await {
            Err(RunError::Hal(hal::HalError::Bind { .. })) if attempts < 20 => {
                attempts += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
}

/// The pairing screen of `progress`.
fn pairing_screen(progress: &PairingProgress) -> ui::Screen {
    let status = match progress.link {
        PairingLink::Registering => ui::PairingStatus::Registering,
        PairingLink::Waiting => ui::PairingStatus::Waiting,
        PairingLink::NoNetwork => ui::PairingStatus::NoNetwork,
    };
    ui::Screen::new(
        ui::StatusLine {
            offline: progress.link == PairingLink::NoNetwork,
            ..ui::StatusLine::default()
        },
        ui::View::Pairing {
            code: progress.code.as_ref().map(|c| c.as_str().to_owned()),
            status,
        },
    )
}

/// Runs the pairing flow with its screen on `panel`: every change of the
/// flow's progress is drawn (the latest only, when drawing lags) and
/// handed to `also` (`pos-agent pair` prints it). `None` when `stop` came
/// first.
pub async fn pair_on_panel(
    config: &Config,
    panel: &mut Panel,
    stop: &CancellationToken,
    also: &mut (dyn FnMut(&PairingProgress) + Send),
) -> Result<Option<provision::DeviceIdentity>, RunError> {
    let (tx, mut rx) = watch::channel(PairingProgress {
        code: None,
        link: PairingLink::Registering,
    });
    let mut show = move |p: &PairingProgress| {
        also(p);
        tx.send_replace(p.clone());
    };
    let flow = pairing::pair(config, &mut show, stop);
    tokio::pin!(flow);
    let mut told_ready = false;
    // Waiting for the organiser is not a hang: systemd's watchdog is fed
    // as the core loop feeds it while the runtime runs.
    let period = super::notify::watchdog_period();
    let mut watchdog_at = period.map(|p| tokio::time::Instant::now() + p);
    loop {
        tokio::select! {
            r = &mut flow => return Ok(r?),
            () = async {
                match watchdog_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {
                super::notify::watchdog();
                watchdog_at = period.map(|p| tokio::time::Instant::now() + p);
            }
            changed = rx.changed() => {
                if changed.is_err() {
                    // The flow dropped its sender: it is ending; its result follows.
                    return Ok(flow.await?);
                }
                let screen = pairing_screen(&rx.borrow_and_update().clone());
                panel.show(&screen).await;
                if !told_ready {
                    // Waiting for an organiser may take long: the service
                    // is up (systemd's start timeout must not kill it).
                    told_ready = true;
                    super::notify::ready();
                }
            }
        }
    }
}

/// `pos-agent run`: starts the daemon, stops it gracefully on SIGTERM or
/// SIGINT, and returns when it has stopped.
pub async fn run_until_signal(config: Config) -> Result<(), RunError> {
    use tokio::signal::unix::{SignalKind, signal};
    let daemon = Daemon::start(config).await?;
    let stop = daemon.stop_token();
    let mut term = signal(SignalKind::terminate()).map_err(|e| RunError::Signal(e.to_string()))?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            r = tokio::signal::ctrl_c() => match r {
                Ok(()) => tracing::info!("SIGINT: shutting down"),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGINT");
                    std::future::pending::<()>().await;
                }
            },
            _ = stop.cancelled() => return,
        }
        stop.cancel();
    });
    daemon.wait().await
}
