//! Provisioning: obtaining the terminal's credentials and creating its card
//! key (SPEC section 6, `pos-agent provision`), and loading them at start.
//!
//! Files in the data directory, each created with mode 0600 from the start
//! (never chmod-ed afterwards) and replaced atomically (temp file, fsync,
//! rename, fsync of the directory):
//!
//! - `card.key`: 32 random bytes, the per-device tokenization key;
//! - `credentials.json`: `{terminal_id, session_id, tenant_id, api_key,
//!   merchant_id, secret, provisioned_at}`; written last, so its presence
//!   means provisioning completed.
//!
//! Under systemd, `LoadCredential=` may hand both files to the service in
//! `$CREDENTIALS_DIRECTORY`; [`load_identity`] looks there first.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use proto::signing::{Credentials, Secret};
use proto::wire::ProvisionResponse;
use proto::{SessionId, TerminalId};
use serde::{Deserialize, Serialize};

use crate::card::{CardError, CardKey};
use crate::client::{ClientError, OrgClient};
use crate::config::Config;

pub const CREDENTIALS_FILE: &str = "credentials.json";
pub const CARD_KEY_FILE: &str = "card.key";
/// Set by systemd for services with `LoadCredential=`.
pub const ENV_CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";
/// Credential ids the systemd unit uses (`LoadCredential=ID:PATH`); the file
/// names are accepted in `$CREDENTIALS_DIRECTORY` too.
pub const CREDENTIALS_CREDENTIAL_ID: &str = "terminal-credentials";
pub const CARD_KEY_CREDENTIAL_ID: &str = "card-key";

/// Why provisioning or loading the identity failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(
        "{} already exists: this terminal is provisioned; pass --force to replace its credentials \
         (the backend then invalidates the old ones)",
        path.display()
    )]
    AlreadyProvisioned { path: PathBuf },
    #[error("provisioning request failed: {0}")]
    Backend(#[from] ClientError),
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("organisation key file {}: {problem}", path.display())]
    OrgKey { path: PathBuf, problem: String },
    #[error("{} not found: run `pos-agent provision` first", path.display())]
    NotProvisioned { path: PathBuf },
    #[error("{} is not a valid credentials file: {problem}", path.display())]
    Corrupt { path: PathBuf, problem: String },
    #[error("{} is readable by group or others (mode {mode:o}); it must be 0600", path.display())]
    Permissions { path: PathBuf, mode: u32 },
    #[error(
        "{key} mismatch: the backend or the credentials file says {provisioned:?}, \
         the config or command line says {configured:?}"
    )]
    Mismatch {
        key: &'static str,
        configured: String,
        provisioned: String,
    },
    #[error(
        "the backend knows no session {session:?}: check --session and `terminal.session_id`; \
         nothing was provisioned (the terminal's current credentials still work)"
    )]
    UnknownSession { session: String },
    #[error(
        "terminal {terminal:?} is not one of session {session:?}'s terminals ({known}): check \
         --terminal and `terminal.id`; nothing was provisioned (the terminal's current \
         credentials still work)"
    )]
    NotInSession {
        terminal: String,
        session: String,
        /// The session's terminal ids, comma-separated.
        known: String,
    },
    #[error("provisioning needs the terminal and session ids (--terminal and --session)")]
    NoIds,
    #[error(transparent)]
    Card(#[from] CardError),
}

impl ProvisionError {
    /// Whether the terminal is set up inconsistently (ids that do not
    /// belong together), which restarting or retrying will not fix: the
    /// binary exits with the configuration code for it.
    pub fn is_setup_problem(&self) -> bool {
        matches!(
            self,
            ProvisionError::Mismatch { .. }
                | ProvisionError::UnknownSession { .. }
                | ProvisionError::NotInSession { .. }
        )
    }
}

/// What `credentials.json` holds.
#[derive(Serialize, Deserialize)]
struct CredentialsFile {
    terminal_id: TerminalId,
    session_id: SessionId,
    tenant_id: String,
    api_key: String,
    merchant_id: String,
    secret: String,
    provisioned_at: String,
}

/// The terminal's identity: what `run` needs to talk to the backend and to
/// tokenize cards.
#[derive(Debug, Clone)]
pub struct DeviceIdentity {
    pub terminal_id: TerminalId,
    pub session_id: SessionId,
    pub credentials: Credentials,
    pub card_key: CardKey,
    /// RFC 3339 UTC.
    pub provisioned_at: String,
}

/// What provisioning did (nothing secret in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    pub terminal_id: TerminalId,
    pub session_id: SessionId,
    pub merchant_id: String,
    pub tenant_id: String,
    pub credentials_file: PathBuf,
    pub card_key_file: PathBuf,
}

/// Reads an organisation key from a file: the first line, trimmed.
pub fn read_org_key(path: &Path) -> Result<Secret, ProvisionError> {
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        ProvisionError::OrgKey {
            path: path.to_owned(),
            problem: e.to_string(),
        }
    })?);
    let key = text.lines().next().unwrap_or_default().trim();
    if key.is_empty() {
        return Err(ProvisionError::OrgKey {
            path: path.to_owned(),
            problem: "the file is empty".into(),
        });
    }
    Ok(Secret::new(key))
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ProvisionError {
    let path = path.to_owned();
    move |source| ProvisionError::Io {
        action,
        path,
        source,
    }
}

/// Writes `bytes` to `dir/name` atomically with mode 0600: a temp file
/// created 0600, fsync, rename over the target, fsync of the directory.
pub fn write_private_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, ProvisionError> {
    let target = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp-{}", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        f.write_all(bytes).map_err(io_err("write", &tmp))?;
        f.sync_all().map_err(io_err("sync", &tmp))?;
        std::fs::rename(&tmp, &target).map_err(io_err("rename into place", &target))?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("sync directory", dir))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|()| target)
}

/// Creates `dir` (and its parents) owner-only (0700), or takes group and
/// others' access away from an existing one.
pub fn create_private_dir(dir: &Path) -> Result<(), ProvisionError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err("create data directory", dir))?;
    let mode = std::fs::metadata(dir)
        .map_err(io_err("read data directory", dir))?
        .mode()
        & 0o7777;
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o7700 | 0o700))
            .map_err(io_err("make private (0700) the data directory", dir))?;
    }
    Ok(())
}

/// Provisions this terminal: refuses when already provisioned unless
/// `force`; checks with the backend (`GET /v1/sessions/:id`) that the
/// session exists and has this terminal, before anything changes (the
/// provisioning call invalidates the terminal's current credentials); asks
/// the backend for credentials for the terminal and session in `config`;
/// then writes a fresh card key and the credentials into the data directory.
pub async fn provision(
    config: &Config,
    org_key: Secret,
    force: bool,
) -> Result<Provisioned, ProvisionError> {
    let dir = &config.data_dir;
    create_private_dir(dir)?;
    if !force {
        for path in [&dir.join(CREDENTIALS_FILE), &dir.join(CARD_KEY_FILE)] {
            if path.exists() {
                return Err(ProvisionError::AlreadyProvisioned { path: path.clone() });
            }
        }
    }

    let (Some(terminal), Some(session)) = (&config.terminal.id, &config.terminal.session_id) else {
        return Err(ProvisionError::NoIds);
    };
    let client = OrgClient::new(&config.backend, org_key)?;
    let found = match client.session(session).await {
        Ok(s) => s,
        Err(e) if e.status() == Some(404) => {
            return Err(ProvisionError::UnknownSession {
                session: session.to_string(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    if !found
        .pos_terminals
        .iter()
        .any(|t| t.terminal_id == *terminal)
    {
        return Err(ProvisionError::NotInSession {
            terminal: terminal.to_string(),
            session: session.to_string(),
            known: found
                .pos_terminals
                .iter()
                .map(|t| t.terminal_id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let issued = client.provision(terminal, session).await?;
    if let Some(t) = issued.terminal_id.as_ref().filter(|t| *t != terminal) {
        return Err(ProvisionError::Mismatch {
            key: "terminal",
            configured: terminal.to_string(),
            provisioned: t.to_string(),
        });
    }
    if let Some(s) = issued.session_id.as_ref().filter(|s| *s != session) {
        return Err(ProvisionError::Mismatch {
            key: "session",
            configured: session.to_string(),
            provisioned: s.to_string(),
        });
    }
    tracing::info!(terminal = %terminal, session = %session, "backend issued terminal credentials");
    store_identity(dir, terminal, session, issued)
}

/// Writes a fresh card key, then `issued` as `credentials.json` for
/// `terminal` of `session` (last: its presence means the identity is
/// complete), both 0600 and fsynced with their directory. Shared by
/// provisioning and pairing.
pub fn store_identity(
    dir: &Path,
    terminal: &TerminalId,
    session: &SessionId,
    issued: ProvisionResponse,
) -> Result<Provisioned, ProvisionError> {
    create_private_dir(dir)?;
    let credentials_file = dir.join(CREDENTIALS_FILE);
    let key = CardKey::generate();
    let card_key_file = write_private_file(dir, CARD_KEY_FILE, key.expose())?;
    let provisioned_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let file = CredentialsFile {
        terminal_id: terminal.clone(),
        session_id: session.clone(),
        tenant_id: issued.tenant_id.clone(),
        api_key: issued.api_key,
        merchant_id: issued.merchant_id.clone(),
        secret: issued.secret.expose().to_owned(),
        provisioned_at,
    };
    let json = zeroize::Zeroizing::new(serde_json::to_vec_pretty(&file).map_err(|e| {
        ProvisionError::Corrupt {
            path: credentials_file.clone(),
            problem: e.to_string(),
        }
    })?);
    drop(zeroize::Zeroizing::new(file.secret));
    write_private_file(dir, CREDENTIALS_FILE, &json)?;
    Ok(Provisioned {
        terminal_id: terminal.clone(),
        session_id: session.clone(),
        merchant_id: issued.merchant_id,
        tenant_id: issued.tenant_id,
        credentials_file,
        card_key_file,
    })
}

/// Whether the data directory holds credentials or a card key (a paired
/// or provisioned terminal, or one whose pairing stopped half-way).
pub fn has_identity(dir: &Path) -> bool {
    [CREDENTIALS_FILE, CARD_KEY_FILE]
        .iter()
        .any(|f| dir.join(f).exists())
}

/// Removes the credentials (first: without them the terminal is unpaired)
/// and the card key from the data directory, then fsyncs the directory.
/// The ledger stays. Missing files are fine.
pub fn remove_identity(dir: &Path) -> Result<(), ProvisionError> {
    for name in [CREDENTIALS_FILE, CARD_KEY_FILE] {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove", &path)(e)),
        }
    }
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync directory", dir))
}

/// Where a file is read from: `$CREDENTIALS_DIRECTORY` when it holds it
/// (under its credential id or its file name), else the data directory
/// (where the mode must be 0600).
fn locate(
    name: &str,
    credential_id: &str,
    data_dir: &Path,
    credentials_directory: Option<&Path>,
) -> (PathBuf, bool) {
    if let Some(cd) = credentials_directory {
        for candidate in [credential_id, name] {
            let p = cd.join(candidate);
            if p.is_file() {
                return (p, false);
            }
        }
    }
    (data_dir.join(name), true)
}

fn check_private(path: &Path) -> Result<(), ProvisionError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ProvisionError::NotProvisioned {
                path: path.to_owned(),
            });
        }
        Err(e) => return Err(io_err("read", path)(e)),
    };
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(ProvisionError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// Loads the identity written by [`provision`] and checks that it belongs to
/// the terminal and session of `config`. `credentials_directory` is
/// `$CREDENTIALS_DIRECTORY` when set.
pub fn load_identity(
    config: &Config,
    credentials_directory: Option<&Path>,
) -> Result<DeviceIdentity, ProvisionError> {
    let (cred_path, in_data_dir) = locate(
        CREDENTIALS_FILE,
        CREDENTIALS_CREDENTIAL_ID,
        &config.data_dir,
        credentials_directory,
    );
    if in_data_dir {
        check_private(&cred_path)?;
    }
    let text = zeroize::Zeroizing::new(std::fs::read(&cred_path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ProvisionError::NotProvisioned {
                path: cred_path.clone(),
            }
        } else {
            io_err("read", &cred_path)(e)
        }
    })?);
    let file: CredentialsFile =
        serde_json::from_slice(&text).map_err(|e| ProvisionError::Corrupt {
            path: cred_path.clone(),
            // serde_json's message names the field and position, never the value.
            problem: e.to_string(),
        })?;
    // SPEC 8.1: the ids live here; the config may name them too, and then
    // they must be these.
    if let Some(configured) = config
        .terminal
        .id
        .as_ref()
        .filter(|c| **c != file.terminal_id)
    {
        return Err(ProvisionError::Mismatch {
            key: "terminal.id",
            configured: configured.to_string(),
            provisioned: file.terminal_id.to_string(),
        });
    }
    if let Some(configured) = config
        .terminal
        .session_id
        .as_ref()
        .filter(|c| **c != file.session_id)
    {
        return Err(ProvisionError::Mismatch {
            key: "terminal.session_id",
            configured: configured.to_string(),
            provisioned: file.session_id.to_string(),
        });
    }

    let (key_path, in_data_dir) = locate(
        CARD_KEY_FILE,
        CARD_KEY_CREDENTIAL_ID,
        &config.data_dir,
        credentials_directory,
    );
    let card_key = if in_data_dir {
        check_private(&key_path)?;
        CardKey::load(&key_path)?
    } else {
        let bytes =
            zeroize::Zeroizing::new(std::fs::read(&key_path).map_err(io_err("read", &key_path))?);
        CardKey::from_bytes(&bytes).ok_or(CardError::KeyLength {
            path: key_path.clone(),
            found: bytes.len(),
        })?
    };

    Ok(DeviceIdentity {
        terminal_id: file.terminal_id,
        session_id: file.session_id,
        credentials: Credentials {
            tenant_id: file.tenant_id,
            api_key: file.api_key,
            merchant_id: file.merchant_id,
            secret: Secret::new(file.secret),
        },
        card_key,
        provisioned_at: file.provisioned_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn config_in(dir: &Path) -> Config {
        let file = dir.join("config.toml");
        std::fs::write(
            &file,
            format!(
                "data_dir = {:?}\n[terminal]\nid = \"pos_1\"\nsession_id = \"s_1\"\n[backend]\nurl = \"http://127.0.0.1:9\"\n",
                dir.join("data").display().to_string()
            ),
        )
        .unwrap();
        crate::config::load(&crate::config::Sources {
            file,
            ..Default::default()
        })
        .unwrap()
        .config
    }

    fn credentials_json() -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "terminal_id": "pos_1", "session_id": "s_1", "tenant_id": "t",
            "api_key": "k", "merchant_id": "m", "secret": "sekret",
            "provisioned_at": "2026-11-21T09:00:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn private_files_are_0600_and_replaced_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_private_file(dir.path(), "x.json", b"one").unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        write_private_file(dir.path(), "x.json", b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let entries = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(entries, 1, "no temp file left behind");
    }

    #[test]
    fn identity_loads_from_the_data_dir_or_the_systemd_credentials_directory() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_in(dir.path());
        assert!(matches!(
            load_identity(&config, None),
            Err(ProvisionError::NotProvisioned { .. })
        ));

        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let key = CardKey::generate();
        write_private_file(&data, CARD_KEY_FILE, key.expose()).unwrap();
        write_private_file(&data, CREDENTIALS_FILE, &credentials_json()).unwrap();
        let id = load_identity(&config, None).unwrap();
        assert_eq!(id.credentials.secret.expose(), "sekret");
        assert_eq!(id.card_key.expose(), key.expose());
        assert!(!format!("{id:?}").contains("sekret"));

        // systemd's LoadCredential= copies (mode 0400/0440) under the unit's ids
        // win over the data directory.
        let creds_dir = dir.path().join("creds");
        std::fs::create_dir_all(&creds_dir).unwrap();
        let other_key = CardKey::generate();
        std::fs::write(creds_dir.join(CARD_KEY_CREDENTIAL_ID), other_key.expose()).unwrap();
        std::fs::write(
            creds_dir.join(CREDENTIALS_CREDENTIAL_ID),
            credentials_json(),
        )
        .unwrap();
        for f in [CARD_KEY_CREDENTIAL_ID, CREDENTIALS_CREDENTIAL_ID] {
            std::fs::set_permissions(creds_dir.join(f), std::fs::Permissions::from_mode(0o440))
                .unwrap();
        }
        let id = load_identity(&config, Some(&creds_dir)).unwrap();
        assert_eq!(id.card_key.expose(), other_key.expose());
    }

    #[test]
    fn corrupt_or_foreign_credentials_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_in(dir.path());
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        write_private_file(&data, CARD_KEY_FILE, CardKey::generate().expose()).unwrap();

        write_private_file(&data, CREDENTIALS_FILE, b"{\"terminal_id\": 5}").unwrap();
        let e = load_identity(&config, None).unwrap_err();
        assert!(matches!(e, ProvisionError::Corrupt { .. }), "{e:?}");

        let mut v: serde_json::Value = serde_json::from_slice(&credentials_json()).unwrap();
        v["session_id"] = "s_2".into();
        write_private_file(&data, CREDENTIALS_FILE, &serde_json::to_vec(&v).unwrap()).unwrap();
        let e = load_identity(&config, None).unwrap_err();
        assert!(
            matches!(
                e,
                ProvisionError::Mismatch {
                    key: "terminal.session_id",
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(!e.to_string().contains("sekret"));
    }

    #[test]
    fn the_ids_come_from_the_data_dir_when_the_config_has_none() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let file = dir.path().join("config.toml");
        let text = format!(
            "data_dir = {:?}\n[backend]\nurl = \"http://127.0.0.1:9\"\n",
            data.display().to_string()
        );
        std::fs::write(&file, &text).unwrap();
        let load = |file: &Path| {
            crate::config::load(&crate::config::Sources {
                file: file.to_owned(),
                ..Default::default()
            })
            .unwrap()
            .config
        };
        let config = load(&file);
        assert!(!has_identity(&data));
        let issued: ProvisionResponse = serde_json::from_value(serde_json::json!({
            "api_key": "k", "secret": "sekret", "merchant_id": "m", "tenant_id": "t"
        }))
        .unwrap();
        let done = store_identity(
            &data,
            &TerminalId::new("pos_1").unwrap(),
            &SessionId::new("s_1").unwrap(),
            issued,
        )
        .unwrap();
        for f in [&done.credentials_file, &done.card_key_file] {
            assert_eq!(
                std::fs::metadata(f).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let id = load_identity(&config, None).unwrap();
        assert_eq!(id.terminal_id.as_str(), "pos_1");
        assert_eq!(id.session_id.as_str(), "s_1");

        // Given in the config too, they must match; the error names both.
        std::fs::write(&file, format!("{text}[terminal]\nid = \"pos_2\"\n")).unwrap();
        let e = load_identity(&load(&file), None).unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(
                e,
                ProvisionError::Mismatch {
                    key: "terminal.id",
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(msg.contains("pos_1") && msg.contains("pos_2"), "{msg}");
        assert!(e.is_setup_problem());

        remove_identity(&data).unwrap();
        assert!(!has_identity(&data));
        assert!(matches!(
            load_identity(&config, None),
            Err(ProvisionError::NotProvisioned { .. })
        ));
        remove_identity(&data).unwrap();
    }

    #[test]
    fn org_key_files_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("org");
        std::fs::write(&p, "  key-1  \nignored\n").unwrap();
        assert_eq!(read_org_key(&p).unwrap().expose(), "key-1");
        std::fs::write(&p, "\n").unwrap();
        assert!(matches!(
            read_org_key(&p),
            Err(ProvisionError::OrgKey { .. })
        ));
        assert!(matches!(
            read_org_key(&dir.path().join("absent")),
            Err(ProvisionError::OrgKey { .. })
        ));
    }
}
