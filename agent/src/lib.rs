//! pos-agent library: terminal core, runtime, sync and backend client.

pub mod card;
pub mod client;
pub mod config;
pub mod core;
pub mod provision;
pub mod runtime;
pub mod sync;
