//! `kler-sim`: a local implementation of the Kler session backend, the
//! Klearly-style partner API and the terminal API (SPEC section 4), for
//! integrators, CI and end-to-end tests.
//!
//! Embed it with [`start`]:
//!
//! ```no_run
//! # async fn demo() -> Result<(), kler_sim::SimError> {
//! let sim = kler_sim::start(kler_sim::Config::new("127.0.0.1:0", "org-key")).await?;
//! println!("listening on {}", sim.url());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use proto::TerminalId;
use proto::signing::{Credentials, NonceCache, Secret};
use proto::wire::{OfflineLimits, Timestamp, WebhookEventType};
use tokio::sync::watch;
use tokio::time::Instant;

pub mod body;
pub mod client;
mod conn;
pub mod error;
pub mod load;
pub mod openapi;
mod pairing;
mod persist;
mod routes;
mod sse;
pub mod state;
mod webhook;

/// Every `(method, path)` the router serves (`GET /openapi.json` lists them all).
pub use routes::ROUTES;

pub use error::{ApiErr, SimError};

use persist::StateFile;
use state::{Effects, Liveness, Row, State};
use webhook::{Delivery, Webhooks};

/// Resolves once the shutdown flag is set.
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Everything the simulator can be told at start.
#[derive(Debug, Clone)]
pub struct Config {
    /// `host:port`; port 0 picks a free one.
    pub listen: String,
    /// The organisation key (`x-api-key` of the Kler and partner APIs).
    pub org_key: String,
    /// Secret that signs webhooks; generated (and reported by
    /// [`RunningSim::webhook_secret`]) when `None`.
    pub webhook_secret: Option<String>,
    /// Key id sent as `X-API-KEY` on webhooks (`whk_` + hex); generated
    /// (and reported by [`RunningSim::webhook_key_id`]) when `None`. Never
    /// the organisation key.
    pub webhook_key_id: Option<String>,
    /// Tenant id given to terminals and used to sign webhooks.
    pub tenant_id: String,
    /// Merchant id used to sign webhooks.
    pub webhook_merchant_id: String,
    /// SQLite file that keeps all state across restarts.
    pub state_file: Option<PathBuf>,
    /// First webhook retry delay; doubles on each retry.
    pub webhook_retry_base: Duration,
    pub webhook_max_attempts: u32,
    /// How long an `auth_timeout` submission waits before answering.
    pub auth_timeout: Duration,
    /// Interval of `: ping` comments on command streams.
    pub ping_interval: Duration,
    /// A command stream ends after this long; the terminal reconnects.
    pub stream_max: Duration,
    /// A terminal with no open stream and no heartbeat for this long is
    /// offline (and `terminal.offline` fires).
    pub offline_after: Duration,
    /// How long an abort waits for the terminal's answer.
    pub abort_wait: Duration,
    /// Offline limits sent in heartbeat answers.
    pub offline_limits: Option<OfflineLimits>,
    /// Most nonces remembered inside the replay window.
    pub nonce_capacity: usize,
    /// How long a pairing code stays valid (SPEC 8.1: 10 minutes).
    pub pairing_code_ttl: Duration,
    /// Most requests answered at once (command streams not counted); beyond
    /// it, 503 `overloaded` with `Retry-After` ([`load`]). `None`: no limit.
    pub max_inflight: Option<usize>,
    /// The `Retry-After` of a shed request (whole seconds, at least 1).
    pub shed_retry_after: Duration,
}

impl Config {
    /// Defaults per SPEC: pings every 15 s, streams end after 5 min,
    /// offline after 30 s, auth timeout 30 s, webhook retries from 1 s.
    pub fn new(listen: impl Into<String>, org_key: impl Into<String>) -> Self {
        Config {
            listen: listen.into(),
            org_key: org_key.into(),
            webhook_secret: None,
            webhook_key_id: None,
            tenant_id: "test-tenant".into(),
            webhook_merchant_id: "kler-sim".into(),
            state_file: None,
            webhook_retry_base: Duration::from_millis(1000),
            webhook_max_attempts: 5,
            auth_timeout: Duration::from_secs(30),
            ping_interval: Duration::from_secs(15),
            stream_max: Duration::from_secs(300),
            offline_after: Duration::from_secs(30),
            abort_wait: Duration::from_secs(10),
            offline_limits: None,
            nonce_capacity: 2_000_000,
            pairing_code_ttl: Duration::from_secs(proto::wire::PAIRING_CODE_TTL_S as u64),
            max_inflight: None,
            shed_retry_after: Duration::from_secs(1),
        }
    }
}

/// Live, unpersisted facts about terminals.
#[derive(Debug, Default)]
pub(crate) struct LiveTerminal {
    pub streams: usize,
    pub last_heartbeat: Option<Instant>,
    /// Whether the terminal was last reported online (for the
    /// `terminal.offline` transition).
    pub online: bool,
    pub commands: Option<watch::Sender<u64>>,
}

#[derive(Debug)]
pub(crate) struct Live {
    pub terminals: HashMap<TerminalId, LiveTerminal>,
    pub offline_after: Duration,
    /// Pairing codes (SPEC 8.1), not persisted.
    pub pairings: pairing::Pairings,
}

impl Liveness for Live {
    fn is_connected(&self, t: &TerminalId) -> bool {
        self.terminals.get(t).is_some_and(|l| {
            l.streams > 0
                || l.last_heartbeat
                    .is_some_and(|h| h.elapsed() <= self.offline_after)
        })
    }
}

impl Live {
    pub fn entry(&mut self, t: &TerminalId) -> &mut LiveTerminal {
        self.terminals.entry(t.clone()).or_default()
    }

    pub fn command_receiver(&mut self, t: &TerminalId) -> watch::Receiver<u64> {
        let e = self.entry(t);
        e.commands
            .get_or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }
}

pub(crate) struct Inner {
    pub state: State,
    pub live: Live,
}

/// The shared simulator behind every handler.
pub(crate) struct Sim {
    inner: Mutex<Inner>,
    pub cfg: Config,
    pub nonces: NonceCache,
    pub store: Option<StateFile>,
    pub webhooks: Arc<Webhooks>,
    pub payments_changed: watch::Sender<u64>,
    /// Bumped after every change (the dashboard's event stream, SPEC 8.4).
    pub changed: watch::Sender<u64>,
    pub shutdown: watch::Receiver<bool>,
    pub load: Arc<load::Load>,
}

impl Sim {
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-applied change
        // visible to clients in a way a restart would fix; keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs a change under the lock, then persists it, sends its webhooks
    /// and wakes the terminals it queued commands for.
    pub async fn mutate<R>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut State, &mut Live, Timestamp) -> Result<R, ApiErr>,
    ) -> Result<R, ApiErr> {
        let (result, effects, deliveries, pending) = {
            let mut g = self.lock();
            let inner = &mut *g;
            let result = f(&mut inner.state, &mut inner.live, Timestamp::now());
            let mut effects = inner.state.take_effects();
            let deliveries: Vec<Delivery> = std::mem::take(&mut effects.webhooks)
                .into_iter()
                .map(Delivery::new)
                .collect();
            // Queued while still holding the lock, so the file sees changes
            // in the order they were made; the webhooks they cause with them.
            let mut pending = Vec::new();
            if let Some(store) = self.store.as_ref() {
                let rows: Vec<Row> = effects
                    .dirty
                    .iter()
                    .map(|(k, id)| inner.state.row(k, id))
                    .collect();
                pending.push(store.submit(effects.cleared, rows));
                for d in &deliveries {
                    pending.push(store.submit_webhook(d.envelope.id.clone(), d.record()));
                }
            }
            (result, effects, deliveries, pending)
        };
        for p in pending {
            p.committed().await?;
        }
        self.finish(effects, deliveries);
        result
    }

    fn finish(&self, effects: Effects, deliveries: Vec<Delivery>) {
        for d in deliveries {
            self.webhooks.send(d);
        }
        if !effects.wake.is_empty() {
            let g = self.lock();
            for t in &effects.wake {
                if let Some(tx) = g.live.terminals.get(t).and_then(|l| l.commands.as_ref()) {
                    tx.send_modify(|v| *v += 1);
                }
            }
        }
        if effects.payments_changed {
            self.payments_changed.send_modify(|v| *v += 1);
        }
        self.touch();
    }

    /// Tells the dashboard something changed (also for live facts that
    /// change outside [`Self::mutate`], such as an opened stream).
    pub fn touch(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    /// After a heartbeat or a closed stream: check again once the offline
    /// delay has passed (a timer, not a poll).
    pub fn schedule_offline_check(self: &Arc<Self>, t: TerminalId) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let sim = Arc::clone(self);
        let delay = self.cfg.offline_after + Duration::from_millis(5);
        let mut shutdown = self.shutdown.clone();
        rt.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {
                    let _ = sim
                        .mutate(|st, live, now| {
                            let went_offline = !live.is_connected(&t)
                                && live.terminals.get(&t).is_some_and(|l| l.online);
                            if went_offline {
                                live.entry(&t).online = false;
                                if let Some(rec) = st.terminals.get(&t) {
                                    let info = st.terminal_info(rec, now, live);
                                    let sid = rec.session_id.clone();
                                    st.push_webhook(
                                        &sid,
                                        WebhookEventType::TerminalOffline,
                                        serde_json::to_value(&info).unwrap_or_default(),
                                    );
                                }
                            }
                            Ok(())
                        })
                        .await;
                }
                _ = crate::stopped(&mut shutdown) => {}
            }
        });
    }
}

impl Sim {
    /// A sale the terminal never started (still `pending`) at its
    /// `expires_at` ends `timed_out` with reason `expired`.
    pub fn schedule_expiry(self: &Arc<Self>, payment: proto::PaymentId, expires_at: Timestamp) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let wait = (expires_at.unix() - Timestamp::now().unix()).clamp(0, 86_400 * 30) as u64;
        let sim = Arc::clone(self);
        let mut shutdown = self.shutdown.clone();
        rt.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(wait)) => {
                    let _ = sim
                        .mutate(|st, _, now| {
                            st.expire_payment(&payment, now);
                            Ok(())
                        })
                        .await;
                }
                _ = stopped(&mut shutdown) => {}
            }
        });
    }
}

/// A running simulator.
pub struct RunningSim {
    addr: SocketAddr,
    webhook_key_id: String,
    webhook_secret: Secret,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    load: Arc<load::Load>,
}

impl RunningSim {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The secret that signs webhooks (generated when not configured).
    pub fn webhook_secret(&self) -> &Secret {
        &self.webhook_secret
    }

    /// The key id webhooks carry in `X-API-KEY` (generated when not
    /// configured).
    pub fn webhook_key_id(&self) -> &str {
        &self.webhook_key_id
    }

    /// The request statistics of the current window (see [`load`]).
    pub fn stats(&self) -> load::LoadStats {
        self.load.stats()
    }

    /// Ends the statistics window (returning its figures) and starts a new
    /// one, e.g. when a venue's link returns.
    pub fn reset_stats(&self) -> load::LoadStats {
        self.load.reset()
    }

    /// Stops accepting, ends command streams and webhook retries, and waits
    /// for open requests to finish.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "server ended with an error"),
            Err(e) => tracing::warn!(error = %e, "server task failed"),
        }
    }

    /// Waits until the server ends (it only does on [`Self::shutdown`] or
    /// an I/O error).
    pub async fn wait(self) -> std::io::Result<()> {
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}

/// Binds, loads the state file if any, and serves in the background.
pub async fn start(config: Config) -> Result<RunningSim, SimError> {
    if config.org_key.trim().is_empty() {
        return Err(SimError::Config(
            "the organisation key must not be empty".into(),
        ));
    }
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|source| SimError::Bind {
            addr: config.listen.clone(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| SimError::Bind {
        addr: config.listen.clone(),
        source,
    })?;
    let (store, state, loaded) = match &config.state_file {
        None => (None, State::default(), persist::Loaded::default()),
        Some(path) => {
            let (store, mut loaded) = StateFile::open(path)?;
            let rows = std::mem::take(&mut loaded.rows);
            let state = State::load(rows).map_err(|(kind, id, reason)| SimError::CorruptState {
                path: path.display().to_string(),
                kind,
                id,
                reason,
            })?;
            (Some(store), state, loaded)
        }
    };
    let webhook_key_id = match &config.webhook_key_id {
        Some(k) => {
            validate_webhook_key_id(k, &config.org_key)?;
            k.clone()
        }
        None => format!("whk_{}", hex::encode(rand::random::<[u8; 16]>())),
    };
    let webhook_secret = Secret::new(
        config
            .webhook_secret
            .clone()
            .unwrap_or_else(|| hex::encode(rand::random::<[u8; 24]>())),
    );
    let (stop, shutdown) = watch::channel(false);
    // A receiver's redirect is its answer (a failed attempt), never a
    // reason to send the signed event somewhere else.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(SimError::HttpClient)?;
    let webhooks = Arc::new(Webhooks::new(
        client,
        Credentials {
            tenant_id: config.tenant_id.clone(),
            api_key: webhook_key_id.clone(),
            merchant_id: config.webhook_merchant_id.clone(),
            secret: webhook_secret.clone(),
        },
        config.webhook_retry_base,
        config.webhook_max_attempts,
        shutdown.clone(),
        store.clone(),
    ));
    let load = Arc::new(load::Load::new(
        config.max_inflight,
        config.shed_retry_after,
    )?);
    let sim = Arc::new(Sim {
        inner: Mutex::new(Inner {
            state,
            live: Live {
                terminals: HashMap::new(),
                offline_after: config.offline_after,
                pairings: pairing::Pairings::default(),
            },
        }),
        nonces: restored_nonces(config.nonce_capacity, &loaded.nonces),
        cfg: config,
        store,
        webhooks,
        payments_changed: watch::channel(0).0,
        changed: watch::channel(0).0,
        shutdown: shutdown.clone(),
        load: Arc::clone(&load),
    });
    let pending: Vec<(proto::PaymentId, Timestamp)> = {
        let g = sim.lock();
        g.state
            .payments
            .values()
            .filter(|p| p.payment.status == proto::wire::PaymentStatus::Pending)
            .filter_map(|p| Some((p.payment.payment_id.clone(), p.payment.expires_at?)))
            .collect()
    };
    for (id, at) in pending {
        sim.schedule_expiry(id, at);
    }
    for (id, body) in loaded.webhooks {
        match serde_json::from_str::<Delivery>(&body) {
            Ok(d) => sim.webhooks.send(d),
            Err(e) => {
                tracing::warn!(event_id = %id, error = %e, "stored webhook delivery unreadable; dropped")
            }
        }
    }
    let app = routes::router(Arc::clone(&sim));
    let mut stop_rx = shutdown;
    let task = tokio::spawn(async move {
        axum::serve(
            conn::KillableListener(listener),
            app.into_make_service_with_connect_info::<conn::ConnHandle>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stop_rx.wait_for(|s| *s).await;
        })
        .await
    });
    Ok(RunningSim {
        addr,
        webhook_key_id,
        webhook_secret,
        stop,
        task,
        load,
    })
}

/// The nonce cache with the nonces a state file kept (still in their
/// window): a replay across a restart is refused too.
fn restored_nonces(capacity: usize, kept: &[(String, i64)]) -> NonceCache {
    let cache = NonceCache::new(capacity);
    let now = Timestamp::now().unix();
    for (n, expires) in kept {
        if let Ok(n) = uuid::Uuid::parse_str(n) {
            cache.remember(n, *expires, now);
        }
    }
    cache
}

/// A configured webhook key id: `whk_` + hex digits, and never the
/// organisation key (which must not reach a receiver).
fn validate_webhook_key_id(key_id: &str, org_key: &str) -> Result<(), SimError> {
    let hex_part = key_id.strip_prefix("whk_").unwrap_or_default();
    if hex_part.is_empty() || !hex_part.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SimError::Config(format!(
            "the webhook key id {key_id:?} must be \"whk_\" followed by hex digits"
        )));
    }
    if key_id == org_key {
        return Err(SimError::Config(
            "the webhook key id must not be the organisation key".into(),
        ));
    }
    Ok(())
}
