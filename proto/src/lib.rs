//! Wire types, money and request signing shared by the terminal agent
//! (`pos-agent`) and the backend simulator (`kler-sim`).
//!
//! - [`money`]: amounts in integer minor units, wire and display forms.
//! - [`ids`]: validated identifiers (references, terminal and session ids).
//! - [`domain`]: the enums core, store and wire share (kind, state, ...).
//! - [`signing`]: the request signature scheme of SPEC section 3.
//! - [`wire`]: request and response bodies of SPEC section 4.
//! - [`sse`]: the bounded event-stream parser of the command stream.
//! - [`pin`]: operator PINs and their PBKDF2 hashes (SPEC 7.2).

pub mod domain;
pub mod ids;
pub mod money;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod pin;
pub mod signing;
pub mod sse;
mod text_enum;
pub mod wire;

pub use domain::{
    AckReason, AckStatus, CardBrand, DecisionMode, EntryMode, OfflinePolicy, PaymentEventStatus,
    SessionStatus, TxKind, TxState,
};
pub use ids::{IdError, PaymentId, Reference, SessionId, TerminalId};
pub use money::{Currency, Money, MoneyError, Total};
pub use text_enum::UnknownValue;
