//! ui's integration tests, one binary.
#![allow(clippy::unwrap_used)] // a test binary: a failed unwrap is a failed test

mod screens;
