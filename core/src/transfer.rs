//! The core's vocabulary of pay by bank transfer (SPEC 7.7): the
//! backend's `transfer_received` command, the registration the outbox
//! sends, and where a transfer payment stands on screen. The flow is in
//! `terminal/transfer.rs`.

use proto::{Currency, Money, PaymentId, Reference};

use super::model::{CommandId, Payer, TransferCode};
use super::time::UnixMillis;

/// `transfer_received` (SPEC 7.7): the backend matched a credit on the
/// collection account to the transfer payment `reference`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferReceivedCommand {
    pub command_id: CommandId,
    pub reference: Reference,
    /// This credit.
    pub amount: Money,
    /// Every credit of this payment so far, this one included.
    pub total_received: Money,
    pub payer: Payer,
    pub credited_at: UnixMillis,
}

/// The body of `POST /v1/terminals/:tid/transfers` (SPEC 7.7), minus the
/// currency (always NGN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRegistration {
    pub reference: Reference,
    pub payment_id: Option<PaymentId>,
    pub amount: Money,
    pub code: TransferCode,
    pub expires_at: UnixMillis,
    pub operator_id: Option<String>,
}

/// Where a transfer payment stands, as the `transfer` screen says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferStatus {
    /// Registered: waiting for the customer's transfer.
    Waiting,
    /// Part of the amount arrived; waiting for the rest.
    PartlyReceived,
    /// Registered, but the link is down: still waiting (the command
    /// stream resumes on reconnect).
    NoNetwork,
    /// Offline when `down` was pressed: nothing registered, card only.
    NeedsNetwork,
    /// The backend refused the registration: card only.
    Unavailable,
    /// The session has no collection account.
    NotForEvent,
}

impl TransferStatus {
    /// The wire spelling of `GET /screen`'s `transfer.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            TransferStatus::Waiting => "waiting",
            TransferStatus::PartlyReceived => "partly_received",
            TransferStatus::NoNetwork => "no_network",
            TransferStatus::NeedsNetwork => "needs_network",
            TransferStatus::Unavailable => "unavailable",
            TransferStatus::NotForEvent => "not_for_event",
        }
    }

    /// The customer may pay into the account shown (a code is up).
    pub fn open(self) -> bool {
        matches!(
            self,
            TransferStatus::Waiting | TransferStatus::PartlyReceived | TransferStatus::NoNetwork
        )
    }

    /// What the cashier and customer read.
    pub fn message(self, received: Money, amount: Money) -> String {
        let c = Currency::Ngn;
        match self {
            TransferStatus::Waiting => "Waiting for the transfer".to_string(),
            TransferStatus::PartlyReceived => {
                format!("Received {} of {}", received.display(c), amount.display(c))
            }
            TransferStatus::NoNetwork => "No network: still waiting for the transfer".to_string(),
            TransferStatus::NeedsNetwork => {
                "Transfer needs the network: press UP for card".to_string()
            }
            TransferStatus::Unavailable => "Transfer unavailable: use card (UP)".to_string(),
            TransferStatus::NotForEvent => {
                "Transfer is not available for this event: press UP for card".to_string()
            }
        }
    }
}
