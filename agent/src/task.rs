//! The error every task and the start-up return.

use std::path::PathBuf;

use hal::drivers::DriverError;

use crate::client::ClientError;
use crate::provision::ProvisionError;

/// Why the agent could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("terminal identity: {0}")]
    Identity(#[from] ProvisionError),
    #[error("pairing: {0}")]
    Pairing(#[from] crate::pairing::PairingError),
    #[error("cannot open the ledger {path}: {source}")]
    Store {
        path: PathBuf,
        #[source]
        source: store::StoreError,
    },
    #[error("reading the ledger at boot: {0}")]
    Restore(#[source] store::StoreError),
    #[error("backend client: {0}")]
    Client(#[from] ClientError),
    #[error("virtual device: {0}")]
    Hal(#[from] hal::HalError),
    #[error("{what} {spec}: {source}")]
    Driver {
        what: &'static str,
        spec: String,
        #[source]
        source: DriverError,
    },
    #[error("card reader {device}: {problem}")]
    Reader { device: String, problem: String },
    #[error("receipt printer: {0}")]
    Printer(String),
    #[error("task {task} stopped unexpectedly")]
    TaskStopped { task: &'static str },
    #[error("cannot install the signal handlers: {0}")]
    Signal(String),
    #[error("task {task} panicked: {message}")]
    TaskPanicked { task: &'static str, message: String },
}

/// One of the agent's long-running tasks (an actor): a struct holding only
/// what it uses, consumed by [`Task::run`]. Each task ends by itself when
/// the cancellation token it holds fires (`intake` for tasks that take
/// work, `all` for the rest); an `Err` is fatal and stops the agent.
pub trait Task: Send + 'static {
    /// The task's name in logs and in [`RunError::TaskStopped`].
    const NAME: &'static str;

    fn run(self) -> impl Future<Output = Result<(), RunError>> + Send;
}

/// The running tasks, each tagged with its name.
pub type TaskSet = tokio::task::JoinSet<(&'static str, Result<(), RunError>)>;

/// Starts `task` in `set`, the same way for every task.
pub fn spawn<T: Task>(set: &mut TaskSet, task: T) {
    set.spawn(async move { (T::NAME, task.run().await) });
}
