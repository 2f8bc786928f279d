//! Optional SQLite persistence (`--state FILE`): one table of JSON records
//! keyed by `(kind, id)`, the nonces seen within the replay window and the
//! webhook deliveries still being retried, written through a dedicated
//! writer thread that commits each batch in one transaction (WAL,
//! `synchronous=FULL`: fsynced) before the request is answered.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::error::SimError;
use crate::state::Row;

/// `(kind, id, json)` as read back from the file.
pub type StoredRow = (String, String, String);

/// What a state file holds, as read at start.
#[derive(Debug, Default)]
pub struct Loaded {
    pub rows: Vec<StoredRow>,
    /// `(nonce, expires)` (epoch seconds) of nonces not yet expired.
    pub nonces: Vec<(String, i64)>,
    /// `(id, json)` of webhook deliveries still being retried.
    pub webhooks: Vec<(String, String)>,
}

type Done = oneshot::Sender<Result<(), String>>;

enum Msg {
    Write(Vec<Row>, Done),
    Clear(Done),
    /// A nonce accepted, remembered until `expires` (epoch seconds).
    Nonce(String, i64, Done),
    /// A webhook delivery's progress (`None`: delivered or given up).
    Webhook(String, Option<String>, Done),
}

/// Handle to the writer thread.
#[derive(Debug, Clone)]
pub struct StateFile {
    tx: mpsc::Sender<Msg>,
    path: PathBuf,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Write(rows, _) => write!(f, "Write({} rows)", rows.len()),
            Msg::Clear(_) => f.write_str("Clear"),
            Msg::Nonce(..) => f.write_str("Nonce"),
            Msg::Webhook(id, body, _) => write!(f, "Webhook({id}, {})", body.is_some()),
        }
    }
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL,
    id   TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nonces (
    nonce   TEXT PRIMARY KEY,
    expires INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS nonces_by_expiry ON nonces (expires);
CREATE TABLE IF NOT EXISTS webhooks (
    id   TEXT PRIMARY KEY,
    body TEXT NOT NULL
) WITHOUT ROWID;";

fn now_secs() -> i64 {
    proto::wire::Timestamp::now().unix()
}

fn err(path: &Path) -> impl Fn(rusqlite::Error) -> SimError + '_ {
    move |source| SimError::State {
        path: path.display().to_string(),
        source,
    }
}

impl StateFile {
    /// Opens (creating if needed) the state file and returns what it holds.
    pub fn open(path: &Path) -> Result<(StateFile, Loaded), SimError> {
        let conn = Connection::open(path).map_err(err(path))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // The file holds terminal secrets.
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err(path))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err(path))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err(path))?;
        conn.execute_batch(SCHEMA).map_err(err(path))?;
        let rows = {
            let mut stmt = conn
                .prepare("SELECT kind, id, body FROM records ORDER BY kind, id")
                .map_err(err(path))?;
            let it = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(err(path))?;
            it.collect::<Result<Vec<StoredRow>, _>>()
                .map_err(err(path))?
        };
        let nonces = {
            let mut stmt = conn
                .prepare("SELECT nonce, expires FROM nonces WHERE expires > ?1")
                .map_err(err(path))?;
            let it = stmt
                .query_map([now_secs()], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(err(path))?;
            it.collect::<Result<Vec<(String, i64)>, _>>()
                .map_err(err(path))?
        };
        let webhooks = {
            let mut stmt = conn
                .prepare("SELECT id, body FROM webhooks ORDER BY id")
                .map_err(err(path))?;
            let it = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(err(path))?;
            it.collect::<Result<Vec<(String, String)>, _>>()
                .map_err(err(path))?
        };
        let (tx, rx) = mpsc::channel::<Msg>();
        std::thread::Builder::new()
            .name("kler-sim-state".into())
            .spawn(move || writer(conn, rx))
            .map_err(|e| SimError::Config(format!("cannot start the state writer: {e}")))?;
        Ok((
            StateFile {
                tx,
                path: path.to_owned(),
            },
            Loaded {
                rows,
                nonces,
                webhooks,
            },
        ))
    }

    /// Queues one message; the returned [`Pending`] resolves once it is
    /// committed.
    fn one(&self, msg: impl FnOnce(Done) -> Msg) -> Pending {
        let (done, wait) = oneshot::channel();
        if self.tx.send(msg(done)).is_err() {
            return Pending::stopped(self);
        }
        Pending {
            waits: vec![wait],
            failed: false,
            path: self.path.clone(),
        }
    }

    /// Remembers an accepted nonce until `expires` (epoch seconds), so a
    /// replay after a restart is still refused.
    pub fn submit_nonce(&self, nonce: String, expires: i64) -> Pending {
        self.one(|d| Msg::Nonce(nonce, expires, d))
    }

    /// Records a webhook delivery's progress (`None` once it is delivered
    /// or given up), so a restart resumes its retries.
    pub fn submit_webhook(&self, id: String, body: Option<String>) -> Pending {
        self.one(|d| Msg::Webhook(id, body, d))
    }

    /// Queues a change (a clear first when `clear`, then `rows`) without
    /// waiting. Called under the state lock, so changes reach the file in
    /// the order they were made; await the returned [`Pending`] after
    /// releasing the lock.
    pub fn submit(&self, clear: bool, rows: Vec<Row>) -> Pending {
        let mut waits = Vec::new();
        if clear {
            let (done, wait) = oneshot::channel();
            if self.tx.send(Msg::Clear(done)).is_ok() {
                waits.push(wait);
            } else {
                return Pending::stopped(self);
            }
        }
        if !rows.is_empty() {
            let (done, wait) = oneshot::channel();
            if self.tx.send(Msg::Write(rows, done)).is_ok() {
                waits.push(wait);
            } else {
                return Pending::stopped(self);
            }
        }
        Pending {
            waits,
            failed: false,
            path: self.path.clone(),
        }
    }
}

/// A change queued to the writer; resolves once it is committed.
#[derive(Debug)]
pub struct Pending {
    waits: Vec<oneshot::Receiver<Result<(), String>>>,
    failed: bool,
    path: PathBuf,
}

impl Pending {
    fn stopped(f: &StateFile) -> Pending {
        Pending {
            waits: Vec::new(),
            failed: true,
            path: f.path.clone(),
        }
    }

    pub async fn committed(self) -> Result<(), SimError> {
        if self.failed {
            return Err(SimError::WriterStopped);
        }
        for w in self.waits {
            match w.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    return Err(SimError::StateWrite {
                        path: self.path.display().to_string(),
                        reason: e,
                    });
                }
                Err(_) => return Err(SimError::WriterStopped),
            }
        }
        Ok(())
    }
}

/// Applies batches in order; everything queued while one commits goes into
/// the next transaction (group commit).
fn writer(mut conn: Connection, rx: mpsc::Receiver<Msg>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let result = apply(&mut conn, &batch).map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::error!(error = %e, "state file write failed");
        }
        for m in batch {
            let done = match m {
                Msg::Write(_, d) | Msg::Clear(d) | Msg::Nonce(_, _, d) | Msg::Webhook(_, _, d) => d,
            };
            let _ = done.send(result.clone());
        }
    }
}

fn apply(conn: &mut Connection, batch: &[Msg]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut put = tx.prepare_cached(
            "INSERT INTO records (kind, id, body) VALUES (?1, ?2, ?3)
             ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body",
        )?;
        let mut del = tx.prepare_cached("DELETE FROM records WHERE kind = ?1 AND id = ?2")?;
        let mut nonce = tx.prepare_cached(
            "INSERT INTO nonces (nonce, expires) VALUES (?1, ?2)
             ON CONFLICT (nonce) DO UPDATE SET expires = excluded.expires",
        )?;
        let mut hook = tx.prepare_cached(
            "INSERT INTO webhooks (id, body) VALUES (?1, ?2)
             ON CONFLICT (id) DO UPDATE SET body = excluded.body",
        )?;
        let mut unhook = tx.prepare_cached("DELETE FROM webhooks WHERE id = ?1")?;
        let mut nonces = false;
        for m in batch {
            match m {
                Msg::Nonce(n, expires, _) => {
                    nonce.execute((n, expires))?;
                    nonces = true;
                }
                Msg::Webhook(id, Some(body), _) => {
                    hook.execute((id, body))?;
                }
                Msg::Webhook(id, None, _) => {
                    unhook.execute([id])?;
                }
                Msg::Clear(_) => {
                    tx.execute("DELETE FROM records", [])?;
                }
                Msg::Write(rows, _) => {
                    for (kind, id, body) in rows {
                        match body {
                            Some(b) => put.execute((kind, id, b))?,
                            None => del.execute((kind, id))?,
                        };
                    }
                }
            }
        }
        if nonces {
            // Those whose window has passed are of no use any more.
            tx.prepare_cached("DELETE FROM nonces WHERE expires <= ?1")?
                .execute([now_secs()])?;
        }
    }
    tx.commit()
}
