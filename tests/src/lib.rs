//! The harness shared by the end-to-end tests, the simulator demo and the
//! benchmarks: kler-sim in-process, pos-agents with virtual devices behind
//! fault proxies, the partner API driven over HTTP, the narrated timeline,
//! the scenario steps and the end-of-day reconciliation.

pub mod backend;
pub mod bar;
pub mod device;
pub mod error;
pub mod fleet;
pub mod pairing;
pub mod proxy;
pub mod reconcile;
pub mod scenario;
pub mod script;
pub mod terminal;
pub mod timeline;
pub mod transfer;
pub mod wait;

pub use error::{HarnessError, Result};
