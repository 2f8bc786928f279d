//! pos-agent library: terminal core, runtime, sync and backend client.

pub mod card;
pub mod client;
pub mod clock;
pub mod config;
pub mod doctor;
pub mod hardening;
pub mod idle;
pub mod ledger;
pub mod logging;
pub mod mapping;
pub mod metrics;
pub mod msg;
/// The terminal core lives in its own crate (`pos-core`); re-exported so
/// `pos_agent::core::...` paths keep working.
pub use pos_core as core;
pub mod pairing;
pub mod provision;
pub mod queue;
pub mod receipt;
pub mod reconcile;
pub mod report;
pub mod runtime;
pub mod screen;
pub mod sync;
pub mod table;
pub mod task;
