//! The harness shared by the end-to-end tests and the simulator demo.

pub mod proxy;
