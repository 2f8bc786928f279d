//! The agent's integration tests, in one test binary (`autotests = false`
//! in `Cargo.toml`): one module per area, shared helpers in `common`.

mod cli;
mod client;
mod common;
mod runtime;
mod runtime_process;
mod sim;
mod tls;
