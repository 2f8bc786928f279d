//! Pairing by code (SPEC 8.1): a terminal without credentials gets them
//! without anyone typing an id or holding the organisation key.
//!
//! 1. The device key: 32 random bytes in `data_dir/device.key` (0600,
//!    fsynced with its directory), made once and kept across unpairing (it
//!    is the board's, not the terminal's). The device id is derived from
//!    it: `dev-` + the first 32 hex characters of SHA-256 of the key's hash.
//! 2. Register (`POST /v1/pairing`) → a code, shown with a QR code.
//! 3. Long-poll the code (`GET /v1/pairing/:code?wait_s=25`) until the
//!    organiser claimed it. A code that is gone (410: used, replaced or
//!    expired; 404: unknown to a restarted backend) → register again and
//!    show the new code. Network errors and broken answers → retry with
//!    exponential backoff and jitter (timers only).
//! 4. Paired: the credentials and the terminal's ids are stored with a
//!    fresh card key ([`provision::store_identity`], as provisioning does).
//!
//! Unpairing ([`unpair`]) is allowed only with an empty outbox; it removes
//! the credentials and the card key and keeps the ledger (and its
//! reference sequence, so a re-paired terminal never reuses a reference).
//!
//! Where the code goes is the caller's: [`pair`] hands every change to a
//! `show` callback (the daemon draws the `pairing` screen, `pos-agent pair`
//! prints it).

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use proto::wire::{
    DEVICE_KEY_LEN, DeviceId, DeviceKeyHash, PairingCode, PairingState, PairingTicket,
    device_key_hash,
};
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

use crate::client::{ClientError, PairingClient, pairing::POLL_WAIT_S};
use crate::config::Config;
use crate::provision::{self, DeviceIdentity, ProvisionError};

/// The device key's file name in the data directory.
pub const DEVICE_KEY_FILE: &str = "device.key";

/// Why pairing or unpairing failed.
#[derive(Debug, thiserror::Error)]
pub enum PairingError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} holds {found} bytes; a device key is {DEVICE_KEY_LEN}", path.display())]
    KeyLength { path: PathBuf, found: usize },
    #[error("{} is readable by group or others (mode {mode:o}); it must be 0600", path.display())]
    KeyPermissions { path: PathBuf, mode: u32 },
    #[error(
        "this terminal is already paired ({}); `pos-agent pair --force` unpairs it first",
        path.display()
    )]
    AlreadyPaired { path: PathBuf },
    #[error("{0} not yet sent to the backend; connect the terminal and wait, then unpair")]
    QueueNotEmpty(String),
    #[error("reading the ledger: {0}")]
    Store(#[from] store::StoreError),
    #[error("{0}")]
    Ledger(String),
    #[error(transparent)]
    Identity(#[from] ProvisionError),
    #[error("pairing client: {0}")]
    Client(#[from] ClientError),
}

/// The board's device key (never leaves the device; its hash is what the
/// backend knows).
pub struct DeviceKey(Zeroizing<[u8; DEVICE_KEY_LEN]>);

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceKey(..)")
    }
}

impl DeviceKey {
    /// Reads `dir/device.key`, or creates it (32 random bytes, 0600,
    /// fsynced with the directory) when there is none.
    pub fn load_or_create(dir: &Path) -> Result<DeviceKey, PairingError> {
        let path = dir.join(DEVICE_KEY_FILE);
        match std::fs::File::open(&path) {
            Ok(mut f) => {
                let io = |action| {
                    let path = path.clone();
                    move |source| PairingError::Io {
                        action,
                        path,
                        source,
                    }
                };
                let mode = f.metadata().map_err(io("read"))?.mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(PairingError::KeyPermissions { path, mode });
                }
                let mut buf = Zeroizing::new(Vec::with_capacity(DEVICE_KEY_LEN + 1));
                // One byte more than a key, to see a longer file without reading it all.
                (&mut f)
                    .take(DEVICE_KEY_LEN as u64 + 1)
                    .read_to_end(&mut buf)
                    .map_err(io("read"))?;
                let key: [u8; DEVICE_KEY_LEN] =
                    buf.as_slice()
                        .try_into()
                        .map_err(|_| PairingError::KeyLength {
                            path: path.clone(),
                            found: buf.len(),
                        })?;
                Ok(DeviceKey(Zeroizing::new(key)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                provision::create_private_dir(dir)?;
                let mut key = Zeroizing::new([0u8; DEVICE_KEY_LEN]);
                rand::rngs::OsRng.fill_bytes(key.as_mut());
                provision::write_private_file(dir, DEVICE_KEY_FILE, key.as_ref())?;
                tracing::info!(path = %path.display(), "device key created");
                Ok(DeviceKey(key))
            }
            Err(source) => Err(PairingError::Io {
                action: "open",
                path,
                source,
            }),
        }
    }

    /// What the backend is told at registration (and the poll's secret).
    pub fn hash(&self) -> DeviceKeyHash {
        device_key_hash(&self.0)
    }

    /// `dev-` + the first 32 hex characters of SHA-256 of [`Self::hash`].
    pub fn device_id(&self) -> DeviceId {
        let digest = hex::encode(Sha256::digest(self.hash().as_str().as_bytes()));
        let id = format!("dev-{}", &digest[..32]);
        // 36 characters of a-z, 0-9 and '-': always a valid device id.
        DeviceId::new(&id).unwrap_or_else(|_| unreachable!("device id {id} is well formed"))
    }
}

/// Where the backend stands, as the pairing screen says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairingLink {
    /// Asking for a code.
    Registering,
    /// The code is shown; waiting for the organiser's claim.
    Waiting,
    /// The backend is not reachable; retrying.
    NoNetwork,
}

/// What the pairing screen (or `pos-agent pair`) shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairingProgress {
    /// The code to claim; `None` until one was issued.
    pub code: Option<PairingCode>,
    pub link: PairingLink,
}

/// `K7M2X9QA` as shown: two groups of four, `K7M2 X9QA`.
pub fn grouped(code: &PairingCode) -> String {
    let s = code.as_str();
    let (a, b) = s.split_at(s.len() / 2);
    format!("{a} {b}")
}

/// Exponential backoff with equal jitter: the n-th delay is half of
/// `min(max, initial·2ⁿ)` plus a random part of the other half.
struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let exp = self
            .initial
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = exp / 2;
        let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(rand::thread_rng().gen_range(0..=jitter_ms))
    }

    fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// Pairs this terminal: registers, shows the code through `show`, polls
/// until claimed, then stores the identity and returns it. `None` when
/// `stop` was cancelled first. Only a local failure (the data directory,
/// a claim for another terminal than the config names) ends it with an
/// error; the backend's problems are retried.
pub async fn pair(
    config: &Config,
    show: &mut (dyn FnMut(&PairingProgress) + Send),
    stop: &CancellationToken,
) -> Result<Option<DeviceIdentity>, PairingError> {
    let key = DeviceKey::load_or_create(&config.data_dir)?;
    let client = PairingClient::new(&config.backend, key.device_id(), key.hash())?;
    let mut backoff = Backoff {
        initial: config.sync.retry_initial,
        max: config.sync.retry_max,
        attempt: 0,
    };
    let mut shown = PairingProgress {
        code: None,
        link: PairingLink::Registering,
    };
    show(&shown);
    let mut ticket: Option<PairingTicket> = None;
    loop {
        let last_code = shown.code.clone();
        let mut update = |code: Option<PairingCode>, link: PairingLink| {
            let next = PairingProgress { code, link };
            if next != shown {
                shown = next;
                show(&shown);
            }
        };
        let t = match &ticket {
            Some(t) => t.clone(),
            None => {
                let registered = tokio::select! {
                    r = client.register() => r,
                    _ = stop.cancelled() => return Ok(None),
                };
                match registered {
                    Ok(t) => {
                        tracing::info!(code = %t.pairing_code, device = %key.device_id(), expires_at = %t.expires_at, "pairing code issued");
                        backoff.reset();
                        update(Some(t.pairing_code.clone()), PairingLink::Waiting);
                        ticket = Some(t.clone());
                        t
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot register for pairing; retrying");
                        update(last_code.clone(), PairingLink::NoNetwork);
                        if wait(backoff.next(), stop).await {
                            return Ok(None);
                        }
                        continue;
                    }
                }
            }
        };
        let polled = tokio::select! {
            r = client.poll(&t.pairing_code, POLL_WAIT_S) => r,
            _ = stop.cancelled() => return Ok(None),
        };
        match polled {
            Ok(p) if p.status == PairingState::Pending => {
                backoff.reset();
                update(Some(t.pairing_code.clone()), PairingLink::Waiting);
            }
            Ok(p) => {
                // The credentials come once: whatever is wrong with them,
                // this code is used up; a fresh one is needed.
                ticket = None;
                let ids = p.credentials.and_then(|c| {
                    let terminal = c.terminal_id.clone()?;
                    let session = c.session_id.clone()?;
                    Some((terminal, session, c))
                });
                let Some((terminal, session, credentials)) = ids else {
                    tracing::error!(code = %t.pairing_code, "paired answer without credentials, terminal or session; registering again");
                    if wait(backoff.next(), stop).await {
                        return Ok(None);
                    }
                    continue;
                };
                provision::store_identity(&config.data_dir, &terminal, &session, credentials)?;
                let identity = provision::load_identity(config, None)?;
                tracing::info!(terminal_id = %terminal, session_id = %session, "terminal paired");
                return Ok(Some(identity));
            }
            Err(e) if matches!(e.status(), Some(404 | 410)) => {
                tracing::info!(code = %t.pairing_code, status = e.status(), "pairing code gone; registering again");
                ticket = None;
            }
            Err(e) => {
                tracing::warn!(code = %t.pairing_code, error = %e, "pairing poll failed; retrying");
                update(Some(t.pairing_code.clone()), PairingLink::NoNetwork);
                if wait(backoff.next(), stop).await {
                    return Ok(None);
                }
            }
        }
    }
}

/// Waits `d`; true when `stop` came first.
async fn wait(d: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.cancelled() => true,
    }
}

/// What is still to be sent, as the refusal to unpair says it (`None`:
/// nothing; unpairing may go ahead).
pub fn pending_work(stats: &store::OutboxStats) -> Option<String> {
    let waiting = stats.queued;
    if waiting == 0 {
        return None;
    }
    let parked = stats.parked;
    let mut s = format!("{waiting} {} ", if waiting == 1 { "item" } else { "items" });
    if parked > 0 {
        s.push_str(&format!("({parked} parked: `pos-agent queue`) "));
    }
    s.pop();
    Some(s)
}

/// Unpairs: refuses while the outbox holds anything (parked items
/// included), else removes the credentials and the card key (the
/// directory fsynced) and keeps the ledger. `stats` is the outbox as the
/// caller read it, from the ledger it holds.
pub fn unpair(config: &Config, stats: &store::OutboxStats) -> Result<(), PairingError> {
    if let Some(what) = pending_work(stats) {
        return Err(PairingError::QueueNotEmpty(what));
    }
    provision::remove_identity(&config.data_dir)?;
    tracing::info!(data_dir = %config.data_dir.display(), "terminal unpaired; the ledger is kept");
    Ok(())
}

/// The outbox of the ledger in the data directory (empty when there is
/// no ledger yet: a terminal that never ran owes the backend nothing).
pub fn ledger_outbox(config: &Config) -> Result<store::OutboxStats, PairingError> {
    match crate::ledger::open_read_only(config) {
        Ok(store) => Ok(store.outbox_stats()?),
        Err(crate::ledger::LedgerError::Missing { .. }) => Ok(store::OutboxStats::default()),
        Err(crate::ledger::LedgerError::Open { source, .. }) => Err(source.into()),
        Err(e) => Err(PairingError::Ledger(e.to_string())),
    }
}

/// Before `pos-agent pair`: a terminal with credentials is refused unless
/// `force`, which unpairs it first (only with an empty outbox). The caller
/// holds the ledger's lock (no agent runs).
pub fn prepare_offline(config: &Config, force: bool) -> Result<(), PairingError> {
    if !provision::has_identity(&config.data_dir) {
        return Ok(());
    }
    if !force {
        return Err(PairingError::AlreadyPaired {
            path: config.data_dir.join(provision::CREDENTIALS_FILE),
        });
    }
    unpair(config, &ledger_outbox(config)?)
}

/// The code and its QR code as text for a terminal (`pos-agent pair`):
/// the grouped code, a unicode QR (two modules a character row) and the
/// sentence that says what to do.
pub fn code_for_terminal(code: &PairingCode) -> String {
    let qr =
        qrcode::QrCode::with_error_correction_level(code.as_str().as_bytes(), qrcode::EcLevel::L)
            .map(|q| {
                q.render::<qrcode::render::unicode::Dense1x2>()
                    .dark_color(qrcode::render::unicode::Dense1x2::Light)
                    .light_color(qrcode::render::unicode::Dense1x2::Dark)
                    .quiet_zone(true)
                    .build()
            })
            .unwrap_or_default();
    format!(
        "pairing code: {}\n{qr}\nPair this terminal in the dashboard (or claim the code with \
         POST /v1/sessions/:id/terminals/:terminal_id/pair).\n",
        grouped(code)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_device_key_is_made_once_0600_and_names_the_device() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let a = DeviceKey::load_or_create(&data).unwrap();
        let path = data.join(DEVICE_KEY_FILE);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(std::fs::read(&path).unwrap().len(), DEVICE_KEY_LEN);
        let b = DeviceKey::load_or_create(&data).unwrap();
        assert_eq!(a.device_id(), b.device_id());
        assert_eq!(a.hash(), b.hash());
        let id = a.device_id();
        assert!(
            id.as_str().starts_with("dev-") && id.as_str().len() == 36,
            "{id}"
        );
        assert!(!format!("{a:?}").contains(a.hash().as_str()));

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            DeviceKey::load_or_create(&data),
            Err(PairingError::KeyPermissions { .. })
        ));
        std::fs::write(&path, b"short").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            DeviceKey::load_or_create(&data),
            Err(PairingError::KeyLength { found: 5, .. })
        ));
    }

    #[test]
    fn codes_are_shown_in_two_groups() {
        let c = PairingCode::new("K7M2X9QA").unwrap();
        assert_eq!(grouped(&c), "K7M2 X9QA");
        let text = code_for_terminal(&c);
        assert!(text.starts_with("pairing code: K7M2 X9QA\n"), "{text}");
        assert!(
            text.contains('\u{2580}') || text.contains('\u{2584}'),
            "a QR: {text}"
        );
    }

    #[test]
    fn backoff_grows_to_its_cap_with_jitter() {
        let mut b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(1_000),
            attempt: 0,
        };
        let d: Vec<_> = (0..8).map(|_| b.next()).collect();
        assert!(d[0] >= Duration::from_millis(50) && d[0] <= Duration::from_millis(100));
        assert!(d[7] >= Duration::from_millis(500) && d[7] <= Duration::from_millis(1_000));
        b.reset();
        assert!(b.next() <= Duration::from_millis(100));
    }

    /// A backend on loopback whose poll answers garbage first (not JSON,
    /// then an envelope with an unknown status), then the credentials.
    #[tokio::test]
    async fn broken_poll_answers_are_retried_and_the_credentials_stored() {
        use axum::response::IntoResponse;
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU32, Ordering};
        let polls = Arc::new(AtomicU32::new(0));
        let seen = polls.clone();
        let app = axum::Router::new()
            .route(
                "/v1/pairing",
                axum::routing::post(|| async {
                    (
                        axum::http::StatusCode::CREATED,
                        axum::Json(serde_json::json!({"success": true, "data": {
                            "pairing_code": "K7M2X9QA", "expires_at": "2030-01-01T00:00:00Z"}})),
                    )
                }),
            )
            .route(
                "/v1/pairing/{code}",
                axum::routing::get(move || {
                    let n = seen.fetch_add(1, Ordering::SeqCst);
                    async move {
                        match n {
                            0 => "<html>not json</html>".into_response(),
                            1 => axum::Json(serde_json::json!({"success": true,
                                "data": {"status": "weird"}}))
                            .into_response(),
                            _ => axum::Json(serde_json::json!({"success": true, "data": {
                                "status": "paired", "expires_at": "2030-01-01T00:00:00Z",
                                "credentials": {"api_key": "k", "secret": "sekret",
                                    "merchant_id": "m", "tenant_id": "t",
                                    "terminal_id": "pos_1", "session_id": "s_1"}}}))
                            .into_response(),
                        }
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(
            &file,
            format!(
                "data_dir = {:?}\n[backend]\nurl = \"http://{addr}\"\n[sync]\nretry_initial_ms = 10\nretry_max_ms = 20\n",
                dir.path().join("data").display().to_string()
            ),
        )
        .unwrap();
        let config = crate::config::load(&crate::config::Sources {
            file,
            ..Default::default()
        })
        .unwrap()
        .config;
        let mut shown = Vec::new();
        let identity = pair(
            &config,
            &mut |p| shown.push(p.clone()),
            &CancellationToken::new(),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(identity.terminal_id.as_str(), "pos_1");
        assert_eq!(
            polls.load(Ordering::SeqCst),
            3,
            "two broken answers, then paired"
        );
        assert!(
            shown.iter().any(|p| p.link == PairingLink::NoNetwork),
            "{shown:?}"
        );
        assert!(
            shown
                .iter()
                .any(|p| p.code.as_ref().is_some_and(|c| c.as_str() == "K7M2X9QA"))
        );
        assert!(provision::has_identity(&config.data_dir));
    }

    #[test]
    fn unpairing_needs_an_empty_outbox() {
        let stats = |queued, parked| store::OutboxStats {
            queued,
            parked,
            ..Default::default()
        };
        assert_eq!(pending_work(&stats(0, 0)), None);
        assert_eq!(pending_work(&stats(3, 0)).unwrap(), "3 items");
        assert_eq!(
            pending_work(&stats(2, 1)).unwrap(),
            "2 items (1 parked: `pos-agent queue`)"
        );
    }
}
