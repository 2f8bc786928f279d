//! The imperative shell around the terminal core: tokio tasks, one
//! responsibility each, wired with bounded channels and two
//! `CancellationToken`s, started from a `JoinSet` that stops everything on
//! the first fatal error.
//!
//! | task | owns | talks to |
//! |---|---|---|
//! | core loop ([`core_loop`]) | the `Terminal` | store (commits), display, reader, indicator, direct backend calls ([`crate::sync::online`]) |
//! | display ([`display`]) | the panel | — (`READY=1` after the first screen) |
//! | reader ([`devices::reader_task`]) | the `CardReader`, the card key | core loop (`CardRead` / `CardError`) |
//! | input ([`devices::input_task`]) | the buttons | core loop (`Button`) |
//! | indicator ([`devices::indicator_task`]) | beeper / LEDs | — |
//! | command stream ([`crate::sync::commands`]) | the SSE connection | store (references, last event id), core loop |
//! | outbox ([`crate::sync::outbox`]) | the outbox drainer | store, backend, core loop (`Forwarded`, `Reversed`) |
//! | heartbeat ([`crate::sync::heartbeat`]) | heartbeat + session status | core loop (`SessionStatus`, `OfflineLimits`) |
//! | link watcher | the link `watch` | core loop (`LinkChanged`), outbox (wake) |
//! | wait-idle ([`crate::idle::IdleGate`]) | `data_dir/agent.sock`, the intake hold | core loop (`HoldIntake`), core status |
//! | metrics ([`crate::metrics::MetricsServer`], with `[metrics] listen`) | `GET /metrics` | store (outbox counts), link (read per scrape) |
//!
//! Shutdown has two steps: `intake` (stop taking commands and buttons; a
//! payment in progress may finish for [`PAYMENT_GRACE`]; the outbox
//! flushes what is due for [`FLUSH_GRACE`]), then `all` (everything stops).

pub mod checkpoint;
pub mod core_loop;
pub mod daemon;
pub mod devices;
pub mod display;
pub use crate::clock::Clock;
pub use crate::mapping;
pub use crate::task::RunError;
pub mod notify;
pub mod printer;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use embedded_graphics::prelude::Size;
use hal::drivers::{AnyDisplay, AnyIndicator, AnyInput, DriverError};
use hal::{VirtualDevice, VirtualParts};
use proto::wire::HalReport;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::client::SignedClient;
use crate::config::{Config, InputSpec, ReaderSpec};
use crate::core::{
    self, CoreConfig, InterruptedTx, QueuedOffline, RestoredState, Terminal, UnixMillis,
};
use crate::msg::{CoreMsg, CoreStatus};
use crate::provision::{self, DeviceIdentity, ENV_CREDENTIALS_DIRECTORY};
use crate::sync::commands::CommandStream;
use crate::sync::heartbeat::HeartbeatTask;
use crate::sync::link::{Link, LinkWatcher};
use crate::sync::online::Online;
use crate::sync::outbox::OutboxDrainer;
use crate::sync::{self};
use crate::task::{self, TaskSet};
use core_loop::CoreLoop;
use devices::{IndicatorTask, InputTask, ReaderTask};
use display::DisplayTask;

/// How long a payment in progress may take to finish at shutdown.
pub const PAYMENT_GRACE: Duration = Duration::from_secs(20);
/// How long the outbox may flush due items at shutdown.
pub const FLUSH_GRACE: Duration = Duration::from_secs(5);
/// How long the session lookup at boot may take before cached names are used.
pub const BOOT_SESSION_TIMEOUT: Duration = Duration::from_secs(3);
/// The virtual display's size (portrait panel).
pub const VIRTUAL_DISPLAY: Size = Size::new(240, 320);

const CORE_QUEUE: usize = 64;

/// A running agent: every task started, the virtual device served.
pub struct RunningAgent {
    control_addr: Option<SocketAddr>,
    device: Option<VirtualDevice>,
    /// The heartbeat limits the core was booted with (restored from the
    /// ledger), for `doctor`-style checks and tests.
    booted_limits: Option<core::OfflineLimits>,
    /// The session configuration in force (SPEC 7.6).
    config: watch::Receiver<Option<proto::wire::TerminalConfig>>,
    store: store::AsyncStore,
    metrics_addr: Option<SocketAddr>,
    intake: CancellationToken,
    supervisor: JoinHandle<Result<(), RunError>>,
    _stop_on_drop: DropGuard,
}

impl RunningAgent {
    /// Boots the agent from `config`: credentials, ledger, restored core,
    /// devices, tasks. Returns once the tasks run (the idle screen follows
    /// as soon as the core loop has drawn it).
    pub async fn start(config: Config) -> Result<RunningAgent, RunError> {
        RunningAgent::start_on(config, Clock::new()).await
    }

    /// [`RunningAgent::start`] on a given clock (tests of a skewed clock).
    pub async fn start_on(config: Config, clock: Clock) -> Result<RunningAgent, RunError> {
        let creds_dir = std::env::var_os(ENV_CREDENTIALS_DIRECTORY).map(PathBuf::from);
        let identity = provision::load_identity(&config, creds_dir.as_deref())?;
        start_with_clock(config, identity, clock).await
    }

    /// The offline limits the last heartbeat set, as restored at boot
    /// (None: none were stored; the configured limits apply).
    pub fn booted_heartbeat_limits(&self) -> Option<core::OfflineLimits> {
        self.booted_limits
    }

    /// The session configuration in force: restored from the ledger at
    /// boot, replaced when the backend sends another version (SPEC 7.6).
    pub fn session_config(&self) -> Option<proto::wire::TerminalConfig> {
        self.config.borrow().clone()
    }

    /// Changes of [`RunningAgent::session_config`].
    pub fn subscribe_session_config(&self) -> watch::Receiver<Option<proto::wire::TerminalConfig>> {
        self.config.clone()
    }

    /// The virtual device's control API, when the virtual device is used.
    pub fn control_addr(&self) -> Option<SocketAddr> {
        self.control_addr
    }

    /// Where `GET /metrics` is served (`[metrics] listen`, bound).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The virtual device itself (in-process tests).
    pub fn device(&self) -> Option<&VirtualDevice> {
        self.device.as_ref()
    }

    /// The agent's ledger (in-process tests and tools; the agent is its
    /// only writer).
    pub fn store(&self) -> &store::AsyncStore {
        &self.store
    }

    /// A token that starts the graceful shutdown when cancelled (signals).
    pub fn stop_token(&self) -> CancellationToken {
        self.intake.clone()
    }

    /// Graceful stop: no new commands, a payment in progress may finish,
    /// the outbox flushes briefly, then everything stops.
    pub async fn shutdown(self) -> Result<(), RunError> {
        self.intake.cancel();
        self.wait().await
    }

    /// Until the agent stops (shutdown, or the first fatal error).
    pub async fn wait(self) -> Result<(), RunError> {
        let RunningAgent {
            supervisor,
            _stop_on_drop,
            ..
        } = self;
        let r = match supervisor.await {
            Ok(r) => r,
            Err(e) => Err(RunError::TaskPanicked {
                task: "supervisor",
                message: e.to_string(),
            }),
        };
        drop(_stop_on_drop);
        r
    }
}

/// Restores the core's state from the ledger.
async fn restore(
    store: &store::AsyncStore,
    clock: &Clock,
    configured: &core::OfflineLimits,
) -> Result<RestoredState, store::StoreError> {
    let mut restored = RestoredState {
        booted_at: UnixMillis(clock.wall_ms()),
        heartbeat_limits: sync::heartbeat::stored_limits(store, configured).await?,
        ..RestoredState::default()
    };
    // Only what the core needs, read through the partial index
    // `transactions_restorable`: never the whole ledger.
    for tx in store.restorable_transactions().await? {
        match tx.state {
            store::TxState::Pending | store::TxState::Authorizing => {
                restored.interrupted.push(InterruptedTx {
                    reference: tx.reference,
                    payment_id: tx.payment_id,
                    state: tx.state,
                    transfer: tx.transfer_code.is_some(),
                })
            }
            store::TxState::OfflineApproved => restored.offline_queue.push(QueuedOffline {
                kind: tx.kind,
                amount: tx.amount,
                captured_at: UnixMillis(tx.captured_at.unwrap_or(tx.created_at)),
                reference: tx.reference,
            }),
            _ => {}
        }
    }
    if let Some(s) = store.kv_get(sync::KV_SESSION_STATUS.into()).await? {
        if let Ok(status) = s.parse::<core::SessionStatus>() {
            restored.session = status;
            if restored.session != core::SessionStatus::Active {
                restored.totals = Some(sync::session_totals(store).await?);
            }
        }
    }
    let stats = store.outbox_stats().await?;
    restored.queued = u32::try_from(stats.queued).unwrap_or(u32::MAX);
    restored.parked = u32::try_from(stats.parked).unwrap_or(u32::MAX);
    Ok(restored)
}

/// The event name, this terminal's label and the session's collection
/// account (SPEC 7.7): from the backend when it answers quickly, else from
/// the last ones stored, else the ids (and no account).
async fn names(
    client: &SignedClient,
    store: &store::AsyncStore,
    identity: &DeviceIdentity,
    clock: &Clock,
    link: &Link,
) -> (String, String, Option<proto::wire::CollectionAccount>) {
    let fetched =
        tokio::time::timeout(BOOT_SESSION_TIMEOUT, client.session(&identity.session_id)).await;
    if let Ok(r) = &fetched {
        link.observe(r);
    }
    if let Ok(Ok(session)) = fetched {
        let label = session
            .pos_terminals
            .iter()
            .find(|t| t.terminal_id == identity.terminal_id)
            .map(|t| t.label.clone())
            .unwrap_or_else(|| identity.terminal_id.to_string());
        let now = clock.wall_ms();
        for (k, v) in [
            (sync::KV_SESSION_NAME, &session.name),
            (sync::KV_TERMINAL_LABEL, &label),
        ] {
            if let Err(e) = store.kv_set(k.into(), v.clone(), now).await {
                tracing::warn!(error = %e, "cannot cache the session names");
            }
        }
        let key = sync::KV_SESSION_ACCOUNT.to_string();
        let cached = match &session.collection_account {
            Some(a) => match serde_json::to_string(a) {
                Ok(json) => store.kv_set(key, json, now).await,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot encode the collection account");
                    Ok(())
                }
            },
            None => store.kv_delete(key).await.map(|_| ()),
        };
        if let Err(e) = cached {
            tracing::warn!(error = %e, "cannot cache the collection account");
        }
        return (session.name, label, session.collection_account);
    }
    tracing::warn!("session not reachable at boot; using the names last seen");
    let name = store
        .kv_get(sync::KV_SESSION_NAME.into())
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| identity.session_id.to_string());
    let label = store
        .kv_get(sync::KV_TERMINAL_LABEL.into())
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| identity.terminal_id.to_string());
    // A cached account that no longer parses is treated as none (no
    // transfer offered), never as a reason not to start.
    let account = store
        .kv_get(sync::KV_SESSION_ACCOUNT.into())
        .await
        .ok()
        .flatten()
        .and_then(|json| serde_json::from_str(&json).ok());
    (name, label, account)
}

fn core_config(
    config: &Config,
    terminal: &proto::TerminalId,
    event_name: String,
    label: String,
) -> CoreConfig {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let mut c = CoreConfig::new(terminal.clone(), label, event_name);
    c.tap_timeout_ms = ms(config.payment.tap_timeout);
    c.result_screen_ms = ms(config.payment.result_hold);
    c.transfer_timeout_ms = ms(config.payment.transfer_timeout);
    c.auth_timeout_ms = ms(config.payment.auth_timeout);
    c.offline_limits = config.offline;
    c.receipt_base = Some(
        config
            .backend
            .terminal_api_url
            .as_str()
            .trim_end_matches('/')
            .to_string(),
    );
    c
}

/// The devices the configuration names: each is the virtual device's part
/// or a real driver (`hal::drivers`). The virtual device always exists (its
/// control API is served only when one of its parts is used).
struct Devices {
    device: VirtualDevice,
    reader: hal::virtual_device::VirtualReader,
    display: AnyDisplay,
    input: AnyInput,
    indicator: AnyIndicator,
}

async fn devices(config: &Config) -> Result<Devices, RunError> {
    let (device, parts) = VirtualDevice::with_state(VIRTUAL_DISPLAY, &ui::ScreenState::booting());
    let VirtualParts {
        reader,
        display: virtual_display,
        input: virtual_input,
        indicator: virtual_indicator,
    } = parts;
    let driver_err = |what: &'static str, spec: String| {
        move |source: DriverError| RunError::Driver { what, spec, source }
    };
    let display = match config.hal.display.driver() {
        None => AnyDisplay::Virtual(virtual_display),
        Some((driver, d)) => AnyDisplay::open(driver, &d).await.map_err(driver_err(
            "display",
            format!("{driver:?}:{d}").to_lowercase(),
        ))?,
    };
    let panel = {
        use embedded_graphics::prelude::OriginDimensions;
        display.size()
    };
    let (input, gpio_indicator) = match &config.hal.input {
        InputSpec::Virtual => (AnyInput::Virtual(virtual_input), None),
        InputSpec::Evdev { device } => {
            let d = device.to_string_lossy().into_owned();
            (
                AnyInput::open_evdev(&d, panel)
                    .map_err(driver_err("input", format!("evdev:{d}")))?,
                None,
            )
        }
        InputSpec::Gpio { spec } => {
            AnyInput::open_gpio(spec).map_err(driver_err("input", format!("gpio:{spec}")))?
        }
    };
    let indicator = gpio_indicator.unwrap_or(AnyIndicator::Virtual(virtual_indicator));
    Ok(Devices {
        device,
        reader,
        display,
        input,
        indicator,
    })
}

/// The devices and the virtual device's control API, opened once and
/// shared by the daemon's phases: the pairing screen draws on the display,
/// then the runtime takes the whole panel over (same control address, so a
/// technician's page or a test keeps watching the same terminal).
pub struct Panel {
    devices: Devices,
    control_addr: Option<SocketAddr>,
    /// Stops the control API when the panel (or the runtime that took it)
    /// goes away.
    control: DropGuard,
}

impl Panel {
    /// Opens the devices the configuration names and serves the virtual
    /// device's control API when one of its parts is used.
    pub async fn open(config: &Config) -> Result<Panel, RunError> {
        let devices = devices(config).await?;
        let stop = CancellationToken::new();
        let control_addr = if config.hal.uses_virtual() {
            Some(
                hal::serve_control(
                    config.hal.virtual_control_addr,
                    devices.device.clone(),
                    stop.clone(),
                )
                .await?,
            )
        } else {
            None
        };
        Ok(Panel {
            devices,
            control_addr,
            control: stop.drop_guard(),
        })
    }

    /// The virtual device's control API, when the virtual device is used.
    pub fn control_addr(&self) -> Option<SocketAddr> {
        self.control_addr
    }

    /// The virtual device itself.
    pub fn device(&self) -> &VirtualDevice {
        &self.devices.device
    }

    /// Draws `screen` and reports its state (the pairing phase; the
    /// runtime's display task does this afterwards).
    pub async fn show(&mut self, screen: &ui::Screen) {
        use hal::Display;
        let display = &mut self.devices.display;
        if let Err(e) = ui::render(screen, display) {
            tracing::error!(error = %e, "cannot draw the screen");
        }
        display.set_state(&screen.state());
        if let Err(e) = display.flush().await {
            tracing::error!(error = %e, "cannot show the screen on the display");
        }
    }
}

/// How long the PN532 may take to wake up at boot.
pub const READER_OPEN_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens and wakes the PN532 reader on its serial line; returns it with the
/// line the heartbeat reports (model and firmware).
async fn open_pn532(
    device: &std::path::Path,
) -> Result<(hal::pn532::Pn532Reader<tokio_serial::SerialStream>, String), RunError> {
    use hal::CardReader;
    let path = device.to_string_lossy().into_owned();
    let err = |problem: String| RunError::Reader {
        device: path.clone(),
        problem,
    };
    let opened = tokio::time::timeout(READER_OPEN_TIMEOUT, async {
        let mut reader =
            hal::pn532::Pn532Reader::open(&path, hal::pn532::Pn532Config::default()).await?;
        let info = reader.info().await;
        Ok::<_, hal::pn532::Pn532Error>((reader, info))
    })
    .await
    .map_err(|_| err(format!("no answer within {READER_OPEN_TIMEOUT:?}")))?
    .map_err(|e| err(e.to_string()))?;
    let (reader, info) = opened;
    let line = match info {
        Ok(i) => format!("{} fw {}", i.model, i.firmware),
        Err(e) => format!("error: {e}"),
    };
    Ok((reader, line))
}

/// [`RunningAgent::start`] with an identity already loaded.
pub async fn start_with(
    config: Config,
    identity: DeviceIdentity,
) -> Result<RunningAgent, RunError> {
    start_with_clock(config, identity, Clock::new()).await
}

/// [`start_with`] on a given clock (tests: a terminal whose wall clock is
/// wrong, [`Clock::with_wall_offset_ms`]).
pub async fn start_with_clock(
    config: Config,
    identity: DeviceIdentity,
    clock: Clock,
) -> Result<RunningAgent, RunError> {
    let panel = Panel::open(&config).await?;
    start_on_panel(config, identity, clock, panel).await
}

/// [`start_with_clock`] on a panel already open (after pairing).
pub async fn start_on_panel(
    config: Config,
    identity: DeviceIdentity,
    clock: Clock,
    panel: Panel,
) -> Result<RunningAgent, RunError> {
    let path = config.ledger_path();
    let options = store::StoreOptions {
        retry: store::RetryPolicy {
            base: config.sync.retry_initial,
            cap: config.sync.retry_max,
            jitter: store::Jitter::Equal,
        },
        ..store::StoreOptions::default()
    };
    let store = store::AsyncStore::open(&path, options)
        .await
        .map_err(|source| RunError::Store {
            path: path.clone(),
            source,
        })?;
    let client = SignedClient::new(
        &config.backend,
        identity.terminal_id.clone(),
        identity.credentials.clone(),
    )?
    .with_clock(clock);
    let Panel {
        devices:
            Devices {
                device,
                reader,
                display,
                input,
                indicator,
            },
        control_addr,
        control,
    } = panel;
    let pn532 = match &config.hal.reader {
        ReaderSpec::Pn532 { device } => Some(open_pn532(device).await?),
        ReaderSpec::Virtual => None,
    };
    // Nothing is opened here: ESC/POS drivers open their device per job, so
    // a printer plugged in later works and a missing one fails its job only.
    let printer = hal::drivers::AnyPrinter::open(&config.hal.printer, Some(&device))
        .map_err(|e| RunError::Printer(e.to_string()))?;
    let printer_columns = match &config.hal.printer {
        hal::drivers::PrinterSpec::EscPosFile { options, .. }
        | hal::drivers::PrinterSpec::EscPosSerial { options, .. } => options.paper.columns(),
        hal::drivers::PrinterSpec::None | hal::drivers::PrinterSpec::Virtual => {
            hal::PRINTER_COLUMNS
        }
    };

    let intake = CancellationToken::new();
    let all = CancellationToken::new();
    let stop_on_drop = all.clone().drop_guard();
    // Cancelling `all` also ends intake, and the control API.
    {
        let (intake, all, control) = (intake.clone(), all.clone(), control.disarm());
        tokio::spawn(async move {
            all.cancelled().await;
            intake.cancel();
            control.cancel();
        });
    }

    let link = Link::new();
    let restored = restore(&store, &clock, &config.offline)
        .await
        .map_err(RunError::Restore)?;
    let (event_name, label, account) = names(&client, &store, &identity, &clock, &link).await;
    let mut restored = restored;
    restored.collection_account = account;
    restored.online = link.is_online();
    let told_online = restored.online;
    tracing::info!(
        terminal = %identity.terminal_id,
        event = %event_name,
        interrupted = restored.interrupted.len(),
        offline_queue = restored.offline_queue.len(),
        queued = restored.queued,
        heartbeat_limits = restored.heartbeat_limits.is_some(),
        "ledger restored"
    );
    let payments: HashMap<_, _> = restored
        .interrupted
        .iter()
        .filter_map(|i| i.payment_id.clone().map(|p| (i.reference.clone(), p)))
        .collect();
    let (queued, parked) = (restored.queued, restored.parked);
    let booted_limits = restored.heartbeat_limits;
    let stored_config = sync::heartbeat::stored_config(&store)
        .await
        .map_err(RunError::Restore)?;
    restored.desk = sync::desk::desk_config(stored_config.as_ref());
    (restored.operators, restored.catalog) = sync::desk::stored(&store)
        .await
        .map_err(RunError::Restore)?;
    // SPEC 7.5: a shift starts at boot (or the first login) after a Z.
    store
        .open_shift(clock.wall_ms())
        .await
        .map_err(RunError::Restore)?;
    let (config_tx, config_rx) = watch::channel(stored_config);
    let mut core_cfg = core_config(
        &config,
        &identity.terminal_id,
        event_name.clone(),
        label.clone(),
    );
    core_cfg.printer = printer.is_configured();
    let terminal = Terminal::new(core_cfg.clone(), restored);

    let (core_tx, core_rx) = mpsc::channel::<CoreMsg>(CORE_QUEUE);
    let (reader_tx, reader_rx) = mpsc::channel(4);
    let (indicator_tx, indicator_rx) = mpsc::channel(8);
    let outbox_wake = Arc::new(Notify::new());
    let (status_tx, status_rx) = watch::channel(CoreStatus {
        busy: false,
        paying: false,
        screen: ui::ScreenName::Booting,
    });
    let (idle_tx, idle_rx) = watch::channel(false);

    let metrics = crate::metrics::Metrics::new();
    let display_line = display.describe();
    let input_line = input.describe().to_string();
    let mut set = TaskSet::new();
    let (frames_tx, frames_rx) = mpsc::channel(display::FRAME_QUEUE);
    task::spawn(
        &mut set,
        DisplayTask {
            display,
            frames: frames_rx,
            all: all.clone(),
        },
    );
    let print_jobs = if printer.is_configured() {
        let (jobs_tx, jobs_rx) = mpsc::channel(printer::PRINT_QUEUE);
        task::spawn(
            &mut set,
            printer::PrinterTask {
                printer,
                jobs: jobs_rx,
                core: core_tx.clone(),
                all: all.clone(),
                metrics: metrics.clone(),
            },
        );
        Some(jobs_tx)
    } else {
        None
    };
    let core_loop = CoreLoop {
        terminal,
        display: frames_tx,
        store: store.clone(),
        online: Online {
            client: client.clone(),
            link: link.clone(),
            core: core_tx.clone(),
            auth_timeout: config.payment.auth_timeout,
            all: all.clone(),
        },
        clock,
        rx: core_rx,
        reader: reader_tx,
        indicator: indicator_tx,
        outbox_wake: outbox_wake.clone(),
        status: status_tx,
        event_name,
        terminal_label: label,
        payments,
        all: all.clone(),
        watchdog: notify::watchdog_period(),
        queued,
        parked,
        terminal_id: identity.terminal_id.clone(),
        printer: print_jobs.map(|jobs| core_loop::PrintOut {
            jobs,
            columns: printer_columns,
            receipt_base: core_cfg.receipt_base.clone(),
        }),
        data_dir: config.data_dir.clone(),
        unpaired: intake.clone(),
        metrics: metrics.clone(),
        paying: None,
    };
    task::spawn(&mut set, core_loop);
    let reader_line = match pn532 {
        Some((pn532, line)) => {
            drop(reader);
            task::spawn(
                &mut set,
                ReaderTask {
                    reader: pn532,
                    key: identity.card_key,
                    commands: reader_rx,
                    core: core_tx.clone(),
                    all: all.clone(),
                    metrics: metrics.clone(),
                },
            );
            line
        }
        None => {
            task::spawn(
                &mut set,
                ReaderTask {
                    reader,
                    key: identity.card_key,
                    commands: reader_rx,
                    core: core_tx.clone(),
                    all: all.clone(),
                    metrics: metrics.clone(),
                },
            );
            "virtual".to_string()
        }
    };
    task::spawn(
        &mut set,
        InputTask {
            input,
            core: core_tx.clone(),
            intake: intake.clone(),
        },
    );
    task::spawn(
        &mut set,
        IndicatorTask {
            indicator,
            signals: indicator_rx,
            all: all.clone(),
        },
    );
    task::spawn(
        &mut set,
        CommandStream {
            store: store.clone(),
            client: client.clone(),
            link: link.clone(),
            core: core_tx.clone(),
            outbox_wake: outbox_wake.clone(),
            terminal_id: identity.terminal_id.clone(),
            clock,
            intake: intake.clone(),
            retry_initial: config.sync.retry_initial,
            retry_max: config.sync.retry_max,
        },
    );
    task::spawn(
        &mut set,
        checkpoint::CheckpointTask {
            store: store.clone(),
            status: status_rx.clone(),
            outbox_idle: idle_rx.clone(),
            quiet: checkpoint::QUIET,
            all: all.clone(),
        },
    );
    task::spawn(
        &mut set,
        OutboxDrainer {
            store: store.clone(),
            client: client.clone(),
            link: link.clone(),
            core: core_tx.clone(),
            outbox_wake: outbox_wake.clone(),
            clock,
            all: all.clone(),
            idle: idle_tx,
            link_return_spread: config.sync.link_return_spread,
        },
    );
    task::spawn(
        &mut set,
        HeartbeatTask {
            store: store.clone(),
            client: client.clone(),
            link: link.clone(),
            core: core_tx.clone(),
            session_id: identity.session_id.clone(),
            clock,
            intake: intake.clone(),
            heartbeat_interval: config.sync.heartbeat_interval,
            session_poll_interval: config.sync.session_poll_interval,
            status: status_rx.clone(),
            configured: core_cfg.offline_limits,
            hal: HalReport {
                reader: Some(reader_line),
                display: Some(display_line),
                input: Some(input_line),
            },
            config: config_tx,
            metrics: metrics.clone(),
        },
    );
    task::spawn(
        &mut set,
        sync::desk::DeskSync {
            store: store.clone(),
            client: client.clone(),
            link: link.clone(),
            core: core_tx.clone(),
            clock,
            intake: intake.clone(),
            config: config_rx.clone(),
            retry: Duration::from_secs(30),
        },
    );
    task::spawn(
        &mut set,
        sync::outbox::OutsideWake {
            outbox_wake: outbox_wake.clone(),
            core: core_tx.clone(),
            all: all.clone(),
        },
    );
    task::spawn(
        &mut set,
        LinkWatcher {
            link: link.clone(),
            core: core_tx.clone(),
            outbox_wake: outbox_wake.clone(),
            all: all.clone(),
            told: told_online,
        },
    );

    // Upgrades ask here before they stop the agent; without the socket
    // they cannot wait (an ERROR: the operator must act), payments go on.
    match crate::idle::bind(&config.data_dir) {
        Ok((listener, path)) => task::spawn(
            &mut set,
            crate::idle::IdleGate {
                listener,
                path,
                status: status_rx.clone(),
                core: core_tx.clone(),
                all: all.clone(),
            },
        ),
        Err(e) => tracing::error!(
            path = %crate::idle::socket_path(&config.data_dir).display(),
            error = %e,
            "cannot serve wait-idle; upgrades will not wait for a payment"
        ),
    }
    // Metrics never stop payments: an address that cannot be bound is an
    // operator's job (ERROR), the agent runs on without them.
    let metrics_addr = match config.metrics_listen {
        None => None,
        Some(addr) => match crate::metrics::bind(addr).await {
            Ok(listener) => {
                let bound = listener.local_addr().ok();
                task::spawn(
                    &mut set,
                    crate::metrics::MetricsServer {
                        listener,
                        metrics,
                        store: store.clone(),
                        link: link.clone(),
                        clock,
                        all: all.clone(),
                    },
                );
                tracing::info!(addr = ?bound, "metrics served at /metrics");
                bound
            }
            Err(e) => {
                tracing::error!(addr = %addr, error = %e, "cannot serve metrics (metrics.listen); running without them");
                None
            }
        },
    };

    let supervisor = tokio::spawn(supervise(
        set,
        intake.clone(),
        all,
        status_rx,
        idle_rx,
        store.clone(),
        outbox_wake,
        clock,
        core_tx,
    ));
    Ok(RunningAgent {
        control_addr,
        device: Some(device),
        booted_limits,
        config: config_rx,
        store,
        metrics_addr,
        intake,
        supervisor,
        _stop_on_drop: stop_on_drop,
    })
}

#[allow(clippy::too_many_arguments)]
async fn supervise(
    mut set: TaskSet,
    intake: CancellationToken,
    all: CancellationToken,
    mut status: watch::Receiver<CoreStatus>,
    mut idle: watch::Receiver<bool>,
    store: store::AsyncStore,
    outbox_wake: Arc<Notify>,
    clock: Clock,
    core: mpsc::Sender<CoreMsg>,
) -> Result<(), RunError> {
    let mut result = Ok(());
    let graceful = tokio::select! {
        biased;
        _ = intake.cancelled() => true,
        joined = set.join_next() => match joined {
            // Tasks that take work end on their own once intake stops.
            Some(Ok((_, Ok(())))) if intake.is_cancelled() || all.is_cancelled() => true,
            other => {
                let error = match other {
                    Some(Ok((_, Err(e)))) => e,
                    Some(Ok((task, Ok(())))) => RunError::TaskStopped { task },
                    Some(Err(e)) => RunError::TaskPanicked {
                        task: "agent task",
                        message: e.to_string(),
                    },
                    None => RunError::TaskStopped { task: "all tasks" },
                };
                tracing::error!(error = %error, "fatal: stopping the agent");
                result = Err(error);
                false
            }
        },
    };
    if graceful {
        notify::stopping();
        tracing::info!("stopping: no new commands");
        let _ = core.send(CoreMsg::Stopping).await;
        if tokio::time::timeout(PAYMENT_GRACE, status.wait_for(|s| !s.busy))
            .await
            .is_err()
        {
            tracing::warn!("payment still in progress at shutdown; it is closed at the next start");
        }
        outbox_wake.notify_one();
        let flush = async {
            loop {
                // Done when nothing is due, nothing is in flight (a claimed
                // item is in flight in the ledger before the drainer says it
                // is busy) and the drainer is idle.
                let due_now =
                    matches!(store.next_due_at().await, Ok(Some(at)) if at <= clock.wall_ms());
                let in_flight = store.outbox_stats().await.map_or(0, |s| s.in_flight);
                if !due_now && in_flight == 0 && *idle.borrow() {
                    return;
                }
                if idle.changed().await.is_err() {
                    return;
                }
            }
        };
        if tokio::time::timeout(FLUSH_GRACE, flush).await.is_err() {
            tracing::info!("outbox not fully flushed at shutdown; it resumes at the next start");
        }
    }
    intake.cancel();
    all.cancel();
    let join_all = async {
        while let Some(joined) = set.join_next().await {
            match joined {
                // After a requested stop, a task that finds the core loop
                // already gone (its channel closed) is part of stopping,
                // not a failure.
                Ok((_, Err(RunError::TaskStopped { .. }))) if graceful => {}
                Ok((_, Err(e))) if result.is_ok() => result = Err(e),
                Err(e) if e.is_panic() && result.is_ok() => {
                    result = Err(RunError::TaskPanicked {
                        task: "agent task",
                        message: e.to_string(),
                    })
                }
                _ => {}
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(5), join_all)
        .await
        .is_err()
    {
        tracing::warn!("some tasks did not stop in time; aborting them");
        set.abort_all();
    }
    tracing::info!("agent stopped");
    result
}
