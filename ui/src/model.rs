//! What each screen shows, and its semantic view for the control API.

use proto::{Currency, Money, Total};
use serde::{Deserialize, Serialize};

/// An amount with its currency, shown as `NGN 2,000.00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount {
    pub value: Money,
    pub currency: Currency,
}

impl Amount {
    pub fn new(value: Money, currency: Currency) -> Self {
        Amount { value, currency }
    }

    /// Display form, e.g. `NGN 2,000.00`.
    pub fn display(&self) -> String {
        self.value.display(self.currency)
    }
}

/// The strip at the top of every screen, and the terminal status on idle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusLine {
    /// The event (session) name, e.g. `Lagos Jazz Night`.
    pub event_name: String,
    /// The terminal's label, e.g. `Bar 2`.
    pub terminal_label: String,
    /// True while the terminal believes the backend unreachable.
    pub offline: bool,
    /// Outbox items not yet acknowledged by the backend.
    pub queued: u64,
    /// Of those, items the backend refused that wait for an operator
    /// (`pos-agent queue --retry`); the idle screen says they need attention.
    pub parked: u64,
}

/// The card that paid, as it may be shown: brand and last four digits only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardSummary {
    /// Brand label, e.g. `VISA`.
    pub brand: String,
    /// Last four digits of the PAN.
    pub last4: String,
}

/// Why a payment was declined; each has a sentence a cashier understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeclineReason {
    /// The issuer declined the card.
    CardDeclined,
    /// Not enough money on the card.
    InsufficientFunds,
    /// The online authorization got no answer and cannot be approved offline.
    NetworkProblem,
    /// The offline limits are reached and the backend is unreachable.
    OfflineLimit,
    /// The card brand or type is not accepted.
    CardNotSupported,
    /// A refund was tapped with a different card than the sale.
    RefundCardMismatch,
    /// A refund asked for more than is left to refund.
    RefundExceedsAmount,
    /// The session is closed; no new sales.
    SessionClosed,
    /// The backend refused the request for a terminal or account problem
    /// (credentials, clock, session): not the bank's decline (SPEC 5.14).
    TerminalProblem,
    /// Anything else, already in plain words.
    Other(String),
}

impl DeclineReason {
    /// Maps a wire `decline_reason` / ack reason code to a reason.
    pub fn from_code(code: &str) -> Self {
        match code {
            "card_declined" | "do_not_honor" => DeclineReason::CardDeclined,
            "insufficient_funds" => DeclineReason::InsufficientFunds,
            "network_problem" | "auth_timeout" => DeclineReason::NetworkProblem,
            "offline_limit" => DeclineReason::OfflineLimit,
            "card_not_supported" => DeclineReason::CardNotSupported,
            "refund_card_mismatch" => DeclineReason::RefundCardMismatch,
            "amount_exceeds_refundable" => DeclineReason::RefundExceedsAmount,
            "session_closed" => DeclineReason::SessionClosed,
            _ => DeclineReason::Other("Payment not accepted".to_owned()),
        }
    }

    /// The words on screen.
    pub fn text(&self) -> &str {
        match self {
            DeclineReason::CardDeclined => "Card declined by bank. Try another card.",
            DeclineReason::InsufficientFunds => "Not enough money on card. Try another card.",
            DeclineReason::NetworkProblem => "Network problem, no charge. Try again.",
            DeclineReason::OfflineLimit => "Offline limit reached. Wait for network.",
            DeclineReason::CardNotSupported => "This card is not accepted.",
            DeclineReason::RefundCardMismatch => "Not the card used for the sale.",
            DeclineReason::RefundExceedsAmount => "Refund is more than the sale.",
            DeclineReason::SessionClosed => "Event closed. No new sales.",
            DeclineReason::TerminalProblem => "Not approved: terminal problem. No charge",
            DeclineReason::Other(text) => text,
        }
    }

    /// The screen's headline: a bank's decline says DECLINED; a refusal
    /// that is the terminal's problem, not the card's, does not.
    pub fn headline(&self) -> &'static str {
        match self {
            DeclineReason::TerminalProblem => "NOT APPROVED",
            _ => "DECLINED",
        }
    }
}

/// Why a payment was cancelled before a card was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// The cashier pressed cancel.
    Cashier,
    /// The POS / partner aborted the payment.
    Pos,
    /// No card was tapped in time.
    TimedOut,
}

impl CancelReason {
    pub fn text(self) -> &'static str {
        match self {
            CancelReason::Cashier => "Cancelled by cashier. No charge.",
            CancelReason::Pos => "Cancelled by the till. No charge.",
            CancelReason::TimedOut => "No card tapped in time. No charge.",
        }
    }
}

/// A count and a total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub count: u64,
    pub total: Total,
}

/// End-of-day totals shown when the session is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTotals {
    pub currency: Currency,
    /// Approved sales (gross).
    pub sales: Tally,
    /// Approved refunds.
    pub refunds: Tally,
    /// Declined payments (sales and refunds).
    pub declined: Tally,
}

/// What the screen shows, without the status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    /// The agent is starting; `message` says what it is doing.
    Booting { message: String },
    /// Ready for the next sale.
    Idle,
    /// Waiting for the customer's card.
    TapCard { amount: Amount },
    /// Card read; authorizing or recording. `message` may be empty.
    Processing { amount: Amount, message: String },
    /// Approved and durably recorded.
    Approved {
        amount: Amount,
        card: Option<CardSummary>,
        /// Approved offline, to be forwarded later.
        offline: bool,
    },
    Declined {
        amount: Amount,
        reason: DeclineReason,
    },
    Cancelled {
        amount: Option<Amount>,
        reason: CancelReason,
    },
    /// Waiting for the card of a refund.
    RefundTap { amount: Amount },
    /// The session is closed: no new sales, end-of-day totals.
    SessionClosed { totals: SessionTotals },
    /// Something the cashier must know, in plain words.
    Error { message: String },
}

/// A whole screen: the status line plus the view. [`crate::render`] draws it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Screen {
    pub status: StatusLine,
    pub view: View,
}

/// The ten screen names of SPEC section 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScreenName {
    Booting,
    Idle,
    TapCard,
    Processing,
    Approved,
    Declined,
    Cancelled,
    RefundTap,
    SessionClosed,
    Error,
}

impl ScreenName {
    pub const ALL: [ScreenName; 10] = [
        ScreenName::Booting,
        ScreenName::Idle,
        ScreenName::TapCard,
        ScreenName::Processing,
        ScreenName::Approved,
        ScreenName::Declined,
        ScreenName::Cancelled,
        ScreenName::RefundTap,
        ScreenName::SessionClosed,
        ScreenName::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ScreenName::Booting => "booting",
            ScreenName::Idle => "idle",
            ScreenName::TapCard => "tap_card",
            ScreenName::Processing => "processing",
            ScreenName::Approved => "approved",
            ScreenName::Declined => "declined",
            ScreenName::Cancelled => "cancelled",
            ScreenName::RefundTap => "refund_tap",
            ScreenName::SessionClosed => "session_closed",
            ScreenName::Error => "error",
        }
    }
}

impl core::fmt::Display for ScreenName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The semantic state of a screen, as `GET /screen` reports it (SPEC
/// section 6): `{screen, amount, currency, message, offline, queued, parked}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScreenState {
    pub screen: ScreenName,
    /// Wire form (`"2000.00"`) or null.
    pub amount: Option<Money>,
    pub currency: Option<Currency>,
    pub message: Option<String>,
    pub offline: bool,
    pub queued: u64,
    #[serde(default)]
    pub parked: u64,
}

impl ScreenState {
    /// The state before anything was shown.
    pub fn booting() -> Self {
        ScreenState {
            screen: ScreenName::Booting,
            amount: None,
            currency: None,
            message: None,
            offline: false,
            queued: 0,
            parked: 0,
        }
    }
}

impl Screen {
    pub fn new(status: StatusLine, view: View) -> Self {
        Screen { status, view }
    }

    pub fn name(&self) -> ScreenName {
        match self.view {
            View::Booting { .. } => ScreenName::Booting,
            View::Idle => ScreenName::Idle,
            View::TapCard { .. } => ScreenName::TapCard,
            View::Processing { .. } => ScreenName::Processing,
            View::Approved { .. } => ScreenName::Approved,
            View::Declined { .. } => ScreenName::Declined,
            View::Cancelled { .. } => ScreenName::Cancelled,
            View::RefundTap { .. } => ScreenName::RefundTap,
            View::SessionClosed { .. } => ScreenName::SessionClosed,
            View::Error { .. } => ScreenName::Error,
        }
    }

    /// The amount this screen is about, if any.
    pub fn amount(&self) -> Option<Amount> {
        match &self.view {
            View::TapCard { amount }
            | View::Processing { amount, .. }
            | View::Approved { amount, .. }
            | View::Declined { amount, .. }
            | View::RefundTap { amount } => Some(*amount),
            View::Cancelled { amount, .. } => *amount,
            View::Booting { .. } | View::Idle | View::SessionClosed { .. } | View::Error { .. } => {
                None
            }
        }
    }

    /// The main sentence of this screen, if any (as in `GET /screen`).
    pub fn message(&self) -> Option<String> {
        let text = match &self.view {
            View::Booting { message } | View::Processing { message, .. } => message.clone(),
            View::Error { message } => message.clone(),
            View::Declined { reason, .. } => reason.text().to_owned(),
            View::Cancelled { reason, .. } => reason.text().to_owned(),
            View::Approved { offline: true, .. } => OFFLINE_APPROVAL_NOTE.to_owned(),
            View::SessionClosed { .. } => "Event closed. No new sales.".to_owned(),
            View::Approved { offline: false, .. }
            | View::Idle
            | View::TapCard { .. }
            | View::RefundTap { .. } => String::new(),
        };
        (!text.is_empty()).then_some(text)
    }

    /// The semantic view for `GET /screen`.
    pub fn state(&self) -> ScreenState {
        let amount = self.amount();
        ScreenState {
            screen: self.name(),
            amount: amount.map(|a| a.value),
            currency: amount.map(|a| a.currency),
            message: self.message(),
            offline: self.status.offline,
            queued: self.status.queued,
            parked: self.status.parked,
        }
    }
}

pub(crate) const OFFLINE_APPROVAL_NOTE: &str = "Approved offline. Will be sent later.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_serializes_as_the_spec_says() {
        let screen = Screen::new(
            StatusLine {
                event_name: "Fest".into(),
                terminal_label: "Bar".into(),
                offline: true,
                queued: 3,
                parked: 1,
            },
            View::TapCard {
                amount: Amount::new(Money::parse("2000.00").unwrap(), Currency::Ngn),
            },
        );
        let json = serde_json::to_value(screen.state()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "screen": "tap_card", "amount": "2000.00", "currency": "NGN",
                "message": null, "offline": true, "queued": 3, "parked": 1
            })
        );
        let back: ScreenState = serde_json::from_value(json).unwrap();
        assert_eq!(back, screen.state());
    }

    #[test]
    fn names_match_serde() {
        for name in ScreenName::ALL {
            let json = serde_json::to_value(name).unwrap();
            assert_eq!(json, serde_json::Value::from(name.as_str()));
        }
    }

    #[test]
    fn decline_codes_map_to_plain_words() {
        assert_eq!(
            DeclineReason::from_code("insufficient_funds").text(),
            "Not enough money on card. Try another card."
        );
        assert_eq!(
            DeclineReason::from_code("weird_code_42").text(),
            "Payment not accepted"
        );
    }
}
