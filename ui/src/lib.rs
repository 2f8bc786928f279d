//! Cashier and customer screens drawn with embedded-graphics.
//!
//! - [`Screen`] is the model: a [`StatusLine`] (event, terminal, offline,
//!   queued, operator) and a [`View`] (one of the screens of SPEC section 6).
//! - [`strings`] holds every text the screens show, by [`Language`].
//! - [`render`] draws a screen onto any `DrawTarget<Color = Rgb565>` (a
//!   hal display, a `hal::Framebuffer`); it is pure, so the agent and the
//!   tests all call it.
//! - [`Screen::state`] is the semantic [`ScreenState`]; the agent hands it
//!   to the display, and the virtual device's `GET /screen` reports it.
//!
//! This crate depends on nothing of ours but `proto`, and `hal` does not
//! depend on it: the agent glues the two. The in-memory frame that tests
//! and benchmarks draw on is `hal::Framebuffer` (a dev-dependency here).

mod model;
mod render;
pub mod samples;
pub mod strings;
mod test_pattern;
mod text;

pub use model::{
    Amount, CancelReason, CardSummary, CartEntry, CatalogLine, DeclineReason, ItemLine, MenuEntry,
    OperatorTag, PairingStatus, ReportKind, ReportSummary, Screen, ScreenName, ScreenState,
    SessionTotals, ShiftReport, StatusLine, Tally, TipChoice, TransferAccount, TransferInfo,
    TransferStatus, View, currency_sign, grouped_code, grouped_transfer_code, transfer_qr_text,
};
pub use render::{render, render_in};
pub use strings::Language;
pub use test_pattern::{TEST_PATTERN_BARS, test_pattern};

/// Re-exported so callers name the same colour type.
pub use embedded_graphics::pixelcolor::Rgb565;
