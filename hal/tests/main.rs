//! hal's integration tests, one binary: a module per device or API.
#![allow(clippy::unwrap_used)] // a test binary: a failed unwrap is a failed test

mod common;

mod control_api;
mod evdev;
mod fbdev;
mod gpio;
mod pn532;
mod printer;
mod spi;
