//! Wire types, money and request signing shared by the terminal agent
//! (`pos-agent`) and the backend simulator (`kler-sim`).
//!
//! - [`money`]: amounts in integer minor units, wire and display forms.
//! - [`ids`]: validated identifiers (references, terminal and session ids).
//! - [`signing`]: the request signature scheme of SPEC section 3.
//! - [`wire`]: request and response bodies of SPEC section 4.

pub mod ids;
pub mod money;
pub mod signing;
pub mod wire;

pub use ids::{IdError, PaymentId, Reference, SessionId, TerminalId};
pub use money::{Currency, Money, MoneyError, Total};
