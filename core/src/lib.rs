//! The sans-IO terminal core: the decisions of SPEC section 5 as a pure
//! state machine, in the manner of quinn-proto's `Connection`.
//!
//! The shell feeds [`Input`]s with [`Terminal::handle`], drains
//! [`Output`]s with [`Terminal::poll`] and wakes the core at
//! [`Terminal::poll_timeout`]. The core has no I/O, no clock and no
//! randomness: time comes in as [`Now`] (monotonic [`Millis`] for timeouts,
//! [`UnixMillis`] for timestamps), each new payment's reference comes in
//! with its command (minted by the shell from the store's durable counter),
//! card data arrives already tokenized.
//!
//! Write-ahead is structural: the core emits [`Output::Persist`] and only
//! the matching [`Input::Persisted`] lets it show a result or send anything
//! about the payment. See `docs/core.md` for the flows.

mod cashier;
mod limits;
mod model;
mod terminal;
mod time;
mod transfer;

pub use cashier::*;
pub use limits::{OfflineExposure, OfflineLimits, OfflineRefusal, QueuedOffline};
pub use model::*;
pub use terminal::{CoreConfig, InterruptedTx, RestoredState, Terminal, transfer_code};
pub use time::{Millis, Now, UnixMillis};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod prop_tests;
