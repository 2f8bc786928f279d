//! The messages between the tasks and the core loop: inputs for the core,
//! commands for the reader task, and the core's status for the heartbeat
//! and the supervisor. Below both `runtime` and `sync`, so neither imports
//! the other for them.

use hal::ReadRequest;
use tokio::sync::oneshot;

use crate::core::Input;

/// What the other tasks send the core loop.
#[derive(Debug)]
pub enum CoreMsg {
    /// Feed one input.
    Input(Input),
    /// Feed one input and answer, once every commit it caused is done,
    /// whether all of them succeeded.
    InputDone(Input, oneshot::Sender<bool>),
    /// The outbox changed (acknowledged or parked items): refresh the count
    /// on screen.
    RefreshQueue,
    /// The agent is stopping: a payment still waiting for its card is
    /// cancelled as if the cashier pressed cancel (nothing was charged);
    /// one past the card is left to finish.
    Stopping,
}

/// What the reader task is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderCmd {
    Start(ReadRequest),
    Stop,
}

/// What the agent is doing, for the heartbeat, the supervisor and
/// `wait-idle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreStatus {
    /// A payment is in progress or the cashier is keying one.
    pub busy: bool,
    /// A payment is in progress (from its reference to its committed
    /// result): what `wait-idle` waits for. Keyed work that never became a
    /// payment does not count (a stop drops it, nothing was charged).
    pub paying: bool,
    pub screen: ui::ScreenName,
}
