//! The link to the backend as the terminal believes it: online when the
//! last request got an answer (stream open, heartbeat, outbox send, an
//! authorization), offline after a connection error or timeout. A `5xx` or
//! a refusal is an answer: the backend is reachable.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::client::ClientError;
use crate::core;
use crate::msg::CoreMsg;
use crate::task::{RunError, Task};

/// Whether an error means "the backend could not be reached" (no HTTP
/// status: refused, reset, timed out).
pub fn is_unreachable(e: &ClientError) -> bool {
    matches!(e, ClientError::Retryable { status: None, .. })
}

/// Shared link state; cheap to clone. Changes are published on a `watch`.
#[derive(Debug, Clone)]
pub struct Link {
    tx: Arc<watch::Sender<bool>>,
    offline_since: Arc<Mutex<Option<SystemTime>>>,
}

impl Link {
    /// Starts offline: nothing has answered yet.
    pub fn new() -> Link {
        Link {
            tx: Arc::new(watch::Sender::new(false)),
            offline_since: Arc::new(Mutex::new(Some(SystemTime::now()))),
        }
    }

    pub fn is_online(&self) -> bool {
        *self.tx.borrow()
    }

    /// Since when the link has been down (None while online).
    pub fn offline_since(&self) -> Option<SystemTime> {
        *self
            .offline_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
    }

    /// The backend answered.
    pub fn answered(&self) {
        self.set(true);
    }

    /// A request failed; goes offline only when the backend was unreachable.
    pub fn failed(&self, e: &ClientError) {
        if is_unreachable(e) {
            self.set(false);
        }
    }

    /// Records the outcome of a request.
    pub fn observe<T>(&self, r: &Result<T, ClientError>) {
        match r {
            Ok(_) => self.answered(),
            Err(e) if is_unreachable(e) => self.set(false),
            // Any HTTP answer proves the backend is reachable.
            Err(_) => self.answered(),
        }
    }

    fn set(&self, online: bool) {
        let changed = self.tx.send_if_modified(|v| {
            if *v == online {
                false
            } else {
                *v = online;
                true
            }
        });
        if changed {
            let mut since = self
                .offline_since
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            *since = if online {
                None
            } else {
                Some(SystemTime::now())
            };
            if online {
                tracing::info!("backend reachable: link online");
            } else {
                tracing::warn!("backend unreachable: link offline");
            }
        }
    }
}

impl Default for Link {
    fn default() -> Self {
        Link::new()
    }
}

/// Feeds `LinkChanged` on every change and wakes the outbox when the link
/// comes back.
/// `told` is what the core was restored with; a change that happened since
/// is fed at once.
pub struct LinkWatcher {
    pub link: Link,
    pub core: mpsc::Sender<CoreMsg>,
    pub outbox_wake: Arc<Notify>,
    pub all: CancellationToken,
    /// What the core was restored with.
    pub told: bool,
}

impl Task for LinkWatcher {
    const NAME: &'static str = "link watcher";

    fn run(self) -> impl Future<Output = Result<(), RunError>> + Send {
        link_task(self)
    }
}

async fn link_task(task: LinkWatcher) -> Result<(), RunError> {
    let told = task.told;
    let mut rx = task.link.subscribe();
    let mut last = told;
    rx.mark_changed();
    loop {
        tokio::select! {
            r = rx.changed() => if r.is_err() { return Ok(()) },
            _ = task.all.cancelled() => return Ok(()),
        }
        let online = *rx.borrow_and_update();
        if online == last {
            continue;
        }
        last = online;
        if online {
            task.outbox_wake.notify_one();
        }
        if task
            .core
            .send(CoreMsg::Input(core::Input::LinkChanged { online }))
            .await
            .is_err()
        {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unreachable() -> ClientError {
        ClientError::Retryable {
            what: "GET /x".into(),
            status: None,
            retry_after: None,
            message: "cannot connect".into(),
        }
    }

    #[test]
    fn changes_are_published_once_and_5xx_counts_as_reachable() {
        let link = Link::new();
        let mut rx = link.subscribe();
        assert!(!link.is_online());
        assert!(link.offline_since().is_some());
        link.answered();
        assert!(rx.has_changed().unwrap());
        assert!(*rx.borrow_and_update());
        link.answered();
        assert!(!rx.has_changed().unwrap(), "no change, no notification");
        let server_error: Result<(), _> = Err(ClientError::Retryable {
            what: "POST /x".into(),
            status: Some(503),
            retry_after: None,
            message: "busy".into(),
        });
        link.observe(&server_error);
        assert!(link.is_online());
        assert!(link.offline_since().is_none());
        link.failed(&unreachable());
        assert!(!link.is_online());
        assert!(rx.has_changed().unwrap());
        assert!(link.offline_since().is_some());
    }
}
