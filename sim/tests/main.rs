//! The sim's integration tests: one binary, one module per area, every test
//! against a real sim over loopback.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod catalog;
mod common;
mod dashboard;
mod http;
mod load;
mod metrics;
mod openapi;
mod pairing;
mod receipts;
mod restart;
mod sales;
mod shifts;
mod transfers;
