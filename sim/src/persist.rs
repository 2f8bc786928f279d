//! Optional SQLite persistence (`--state FILE`): one table of JSON records
//! keyed by `(kind, id)`, written through a dedicated writer thread that
//! commits each batch in one transaction before the request is answered.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::error::SimError;
use crate::state::Row;

/// `(kind, id, json)` as read back from the file.
pub type StoredRow = (String, String, String);

enum Msg {
    Write(Vec<Row>, oneshot::Sender<Result<(), String>>),
    Clear(oneshot::Sender<Result<(), String>>),
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
        }
    }
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL,
    id   TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;";

fn err(path: &Path) -> impl Fn(rusqlite::Error) -> SimError + '_ {
    move |source| SimError::State {
        path: path.display().to_string(),
        source,
    }
}

impl StateFile {
    /// Opens (creating if needed) the state file and returns its rows.
    pub fn open(path: &Path) -> Result<(StateFile, Vec<StoredRow>), SimError> {
        let conn = Connection::open(path).map_err(err(path))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // The file holds terminal secrets.
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err(path))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
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
            rows,
        ))
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
                Msg::Write(_, d) | Msg::Clear(d) => d,
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
        for m in batch {
            match m {
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
    }
    tx.commit()
}
