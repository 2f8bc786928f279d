//! Checkpoints the ledger's WAL at idle moments (docs/store.md,
//! "Durability"): once no payment is in progress, the outbox has nothing in
//! flight and both stayed so for [`QUIET`], the store checkpoints if enough
//! commits went into the WAL since the last time. A checkpoint costs two
//! fsyncs and rewrites the database pages the WAL changed, so it never runs
//! on the tap path and many payments share one. SQLite's own
//! `wal_autocheckpoint` stays as the safety net of a terminal that never
//! idles.
//!
//! No polling: the task sleeps on the core's status and the outbox's idle
//! flag, and on one timer while the terminal is quiet.

use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::msg::CoreStatus;
use crate::task::{RunError, Task};

/// How long the terminal stays idle before a checkpoint may run: longer
/// than the gap between a result screen and the next customer's amount.
pub const QUIET: Duration = Duration::from_secs(2);

pub struct CheckpointTask {
    pub store: store::AsyncStore,
    pub status: watch::Receiver<CoreStatus>,
    /// The outbox drainer's idle flag (true: nothing claimed or in flight).
    pub outbox_idle: watch::Receiver<bool>,
    pub quiet: Duration,
    pub all: CancellationToken,
}

impl Task for CheckpointTask {
    const NAME: &'static str = "checkpoint";

    fn run(self) -> impl Future<Output = Result<(), RunError>> + Send {
        self.run_loop()
    }
}

impl CheckpointTask {
    fn idle(&mut self) -> bool {
        !self.status.borrow_and_update().busy && *self.outbox_idle.borrow_and_update()
    }

    /// Waits for the next change of either signal; false when the agent
    /// stops (or a sender is gone, which only happens when it stops).
    async fn changed(&mut self) -> bool {
        tokio::select! {
            r = self.status.changed() => r.is_ok(),
            r = self.outbox_idle.changed() => r.is_ok(),
            _ = self.all.cancelled() => false,
        }
    }

    async fn run_loop(mut self) -> Result<(), RunError> {
        loop {
            // Idle, then quiet for a while: any change starts over.
            while !self.idle() {
                if !self.changed().await {
                    return Ok(());
                }
            }
            let quiet = self.quiet;
            tokio::select! {
                _ = tokio::time::sleep(quiet) => {}
                alive = self.changed() => {
                    if !alive {
                        return Ok(());
                    }
                    continue;
                }
            }
            match self.store.checkpoint_if_due().await {
                Ok(Some(c)) => tracing::debug!(
                    wal_frames = c.wal_frames,
                    checkpointed = c.checkpointed,
                    "ledger checkpointed while idle"
                ),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot checkpoint the ledger; SQLite checkpoints it later by itself")
                }
            }
            // Nothing new to checkpoint until the terminal works again.
            while self.idle() {
                if !self.changed().await {
                    return Ok(());
                }
            }
        }
    }
}
