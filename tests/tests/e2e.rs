//! End-to-end tests: kler-sim in-process, pos-agents (in-process, or as a
//! child process where a crash is the point) with their virtual devices
//! over loopback HTTP, each behind a fault proxy. No mocks of our own code.
//! Waits are readiness-driven with bounded deadlines (see `e2e_tests::wait`).

// clippy.toml allows unwrap in tests; this crate is test code through and
// through, including the helpers the lint does not see as tests.
#![allow(clippy::unwrap_used)]

#[path = "e2e/common.rs"]
mod common;

#[path = "e2e/flows.rs"]
mod flows;

#[path = "e2e/faults.rs"]
mod faults;

#[path = "e2e/crash.rs"]
mod crash;

#[path = "e2e/card_data.rs"]
mod card_data;

#[path = "e2e/broken_backend.rs"]
mod broken_backend;

#[path = "e2e/cashier.rs"]
mod cashier;

#[path = "e2e/receipts.rs"]
mod receipts;

#[path = "e2e/pairing.rs"]
mod pairing;

#[path = "e2e/fleet.rs"]
mod fleet;

#[path = "e2e/fleet_view.rs"]
mod fleet_view;

#[path = "e2e/transfer.rs"]
mod transfer;
