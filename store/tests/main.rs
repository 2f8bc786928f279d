//! The store's integration tests, in one test binary (`autotests = false`
//! in `Cargo.toml`): one module per area, helpers in `common`.

mod boot;
mod common;
mod crash;
mod ledger;
mod outbox;
mod shifts;
mod transfer;
