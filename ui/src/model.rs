//! What each screen shows; its semantic view for the control API is in
//! [`state`].

use proto::{Currency, Money, Total};
use serde::{Deserialize, Serialize};

use crate::strings::{self, Key, Language};

mod state;
pub use state::{CartEntry, ReportSummary, ScreenName, ScreenState, TransferInfo};

/// An amount with its currency, shown as `₦2,000.00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount {
    pub value: Money,
    pub currency: Currency,
}

impl Amount {
    pub fn new(value: Money, currency: Currency) -> Self {
        Amount { value, currency }
    }

    /// Screen form with the currency's sign, e.g. `₦2,000.00`.
    pub fn display(&self) -> String {
        with_sign(&self.value.display(self.currency), self.currency)
    }

    /// Form with the currency's code, e.g. `NGN 2,000.00`, for output that
    /// has no naira sign (printers' code pages).
    pub fn display_code(&self) -> String {
        self.value.display(self.currency)
    }
}

/// The sign shown before an amount of `currency`.
pub fn currency_sign(currency: Currency) -> &'static str {
    match currency {
        Currency::Ngn => "\u{20A6}",
    }
}

/// `NGN 2,000.00` (`proto`'s display form) as the screens show it:
/// `₦2,000.00`.
pub(crate) fn with_sign(code_form: &str, currency: Currency) -> String {
    match code_form.strip_prefix(currency.code()) {
        Some(rest) => format!("{}{}", currency_sign(currency), rest.trim_start()),
        None => code_form.to_owned(),
    }
}

/// The strip at the top of every screen, and the terminal status on idle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusLine {
    /// What is wrong with the receipt printer, shown on the idle screen.
    pub printer_problem: Option<String>,
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
    /// The logged-in cashier (SPEC 7.2); `None` when nobody is logged in or
    /// the session has no operators.
    pub operator: Option<OperatorTag>,
}

/// The logged-in cashier, shown in the status strip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorTag {
    /// The operator's id, as `GET /screen` reports it.
    pub id: String,
    /// The name shown on screen.
    pub name: String,
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
            _ => DeclineReason::Other(strings::text(Language::En, Key::NotAccepted).to_owned()),
        }
    }

    /// The words on screen (in English: `GET /screen` reports these).
    pub fn text(&self) -> &str {
        self.text_in(Language::En)
    }

    /// The words on screen in `language`; [`DeclineReason::Other`] as it is.
    pub fn text_in(&self, language: Language) -> &str {
        let key = match self {
            DeclineReason::CardDeclined => Key::DeclinedByBank,
            DeclineReason::InsufficientFunds => Key::InsufficientFunds,
            DeclineReason::NetworkProblem => Key::NetworkProblem,
            DeclineReason::OfflineLimit => Key::OfflineLimit,
            DeclineReason::CardNotSupported => Key::CardNotSupported,
            DeclineReason::RefundCardMismatch => Key::RefundCardMismatch,
            DeclineReason::RefundExceedsAmount => Key::RefundExceedsAmount,
            DeclineReason::SessionClosed => Key::SessionClosed,
            DeclineReason::TerminalProblem => Key::TerminalProblem,
            DeclineReason::Other(text) => return text,
        };
        strings::text(language, key)
    }

    /// The screen's headline: a bank's decline says DECLINED; a refusal
    /// that is the terminal's problem, not the card's, does not.
    pub fn headline(&self) -> &'static str {
        self.headline_in(Language::En)
    }

    /// [`DeclineReason::headline`] in `language`.
    pub fn headline_in(&self, language: Language) -> &'static str {
        match self {
            DeclineReason::TerminalProblem => strings::text(language, Key::NotApproved),
            _ => strings::text(language, Key::Declined),
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
    /// The words on screen, in English.
    pub fn text(self) -> &'static str {
        self.text_in(Language::En)
    }

    /// The words on screen in `language`.
    pub fn text_in(self, language: Language) -> &'static str {
        let key = match self {
            CancelReason::Cashier => Key::CancelledByCashier,
            CancelReason::Pos => Key::CancelledByPos,
            CancelReason::TimedOut => Key::CancelledTimedOut,
        };
        strings::text(language, key)
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

/// One choice on the tip screen (SPEC 7.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TipChoice {
    /// The digit that picks it, 1-9.
    pub key: u8,
    /// `10%`, `NGN 500.00`, `Other amount`.
    pub label: String,
    /// The tip it gives; `None` for the custom amount.
    pub tip: Option<Amount>,
}

/// One line of a menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuEntry {
    /// The digit shown before the label; `None`: no number.
    pub key: Option<u8>,
    pub label: String,
    /// False: the operator may not use it; drawn greyed.
    pub enabled: bool,
}

/// One item of the quick-sale catalog as the catalog screen lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogLine {
    /// The number the cashier keys (catalog order, from 1).
    pub number: u32,
    pub item_id: String,
    pub name: String,
    pub price: Amount,
    /// How many are in the cart.
    pub qty: u32,
}

/// An X report (the shift so far) or a Z report (the shift closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReportKind {
    #[serde(rename = "X")]
    X,
    #[serde(rename = "Z")]
    Z,
}

impl ReportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::X => "X",
            ReportKind::Z => "Z",
        }
    }
}

/// A shift's figures (SPEC 7.5), as the report screen shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShiftReport {
    pub kind: ReportKind,
    pub shift_no: u64,
    pub currency: Currency,
    /// When the shift opened, already formatted for the screen.
    pub opened_at: String,
    /// When it closed (a Z report), already formatted.
    pub closed_at: Option<String>,
    /// Approved sales (gross, tips included).
    pub sales: Tally,
    /// Approved refunds.
    pub refunds: Tally,
    /// Declined payments.
    pub declined: Tally,
    /// Approved sales with a tip, and the tips' sum.
    pub tips: Tally,
    /// Approved payments decided online / offline.
    pub online: Tally,
    pub offline: Tally,
    /// Approved sales by operator name.
    pub by_operator: Vec<(String, Tally)>,
    /// Catalog items sold.
    pub by_item: Vec<ItemLine>,
}

/// A catalog item's line in a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemLine {
    pub name: String,
    pub qty: u64,
    pub total: Total,
}

/// What the screen shows, without the status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    /// The agent is starting; `message` says what it is doing.
    Booting { message: String },
    /// Ready for the next sale.
    Idle,
    /// Waiting for the customer's card. On the payment screens `amount` is
    /// the total charged and `tip` the part of it that is a tip.
    TapCard { amount: Amount, tip: Option<Amount> },
    /// Card read; authorizing or recording. `message` may be empty.
    Processing {
        amount: Amount,
        message: String,
        tip: Option<Amount>,
    },
    /// Approved and durably recorded.
    Approved {
        amount: Amount,
        card: Option<CardSummary>,
        /// Approved offline, to be forwarded later.
        offline: bool,
        tip: Option<Amount>,
        /// The digital receipt (SPEC 7.4), shown as a QR code.
        receipt_url: Option<String>,
        /// `OK` prints the customer's receipt: the screen says so.
        print_prompt: bool,
        /// Paid by bank transfer (SPEC 7.7): "Transfer received".
        transfer: bool,
    },
    Declined {
        amount: Amount,
        reason: DeclineReason,
        tip: Option<Amount>,
        /// The digital receipt (SPEC 7.4), shown as a QR code.
        receipt_url: Option<String>,
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
    /// The cashier keys an amount like on a cash register (SPEC 7.1).
    AmountEntry {
        /// `New sale`, `Refund amount`, ...
        title: String,
        /// The amount keyed so far.
        amount: Amount,
        /// Why it cannot be confirmed, e.g. `Above the maximum ...`.
        message: Option<String>,
    },
    /// The customer picks a tip (SPEC 7.3).
    Tip {
        /// The amount before the tip.
        amount: Amount,
        choices: Vec<TipChoice>,
        /// `Some` while a custom tip is keyed.
        custom: Option<Amount>,
        message: Option<String>,
    },
    /// The cashier keys a PIN (SPEC 7.2).
    Login {
        /// Digits keyed so far, drawn as dots.
        pin_len: u8,
        message: Option<String>,
    },
    /// Too many wrong PINs.
    Locked {
        /// How long the lock lasts.
        seconds: u32,
        message: Option<String>,
    },
    /// Numbered entries; `selected` is highlighted.
    Menu {
        title: String,
        entries: Vec<MenuEntry>,
        selected: Option<usize>,
        message: Option<String>,
    },
    /// The quick-sale catalog and the cart (SPEC 7.6).
    Catalog {
        items: Vec<CatalogLine>,
        /// Index of the first item shown (scrolling).
        first: usize,
        /// The item number being keyed.
        keyed: Option<u32>,
        cart_total: Amount,
        cart_count: u32,
        message: Option<String>,
    },
    /// An X or Z report (SPEC 7.5).
    Report { report: ShiftReport },
    /// A terminal without credentials shows the code an organiser claims
    /// (SPEC 8.1): `code` as issued (`K7M2X9QA`, drawn `K7M2 X9QA` with its
    /// QR code), `None` until one was issued.
    Pairing {
        code: Option<String>,
        status: PairingStatus,
    },
    /// Pay by bank transfer (SPEC 7.7): the account to pay into, the
    /// amount, the 6-digit code for the narration (with a QR code of those
    /// details), what arrived so far and where it stands. `code` is `None`
    /// when nothing can be paid (offline, unavailable, no account).
    Transfer {
        amount: Amount,
        tip: Option<Amount>,
        account: Option<TransferAccount>,
        code: Option<String>,
        received: Option<Amount>,
        status: TransferStatus,
    },
}

/// The session's collection account, as the transfer screen shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferAccount {
    pub bank_name: String,
    pub account_number: String,
    pub account_name: String,
}

/// Where a transfer payment stands, as the transfer screen says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferStatus {
    /// The code is shown; waiting for the transfer.
    Waiting,
    /// Part of the amount arrived.
    PartlyReceived,
    /// Still waiting, but the link is down.
    NoNetwork,
    /// Offline: transfer cannot be offered, card only.
    NeedsNetwork,
    /// The backend refused the transfer: card only.
    Unavailable,
    /// The event has no collection account.
    NotForEvent,
}

impl TransferStatus {
    pub(crate) fn key(self) -> Key {
        match self {
            TransferStatus::Waiting => Key::TransferWaiting,
            TransferStatus::PartlyReceived => Key::TransferPartly,
            TransferStatus::NoNetwork => Key::TransferNoNetwork,
            TransferStatus::NeedsNetwork => Key::TransferNeedsNetwork,
            TransferStatus::Unavailable => Key::TransferUnavailable,
            TransferStatus::NotForEvent => Key::TransferNotForEvent,
        }
    }

    /// The customer can pay: a code is shown.
    pub fn open(self) -> bool {
        matches!(
            self,
            TransferStatus::Waiting | TransferStatus::PartlyReceived | TransferStatus::NoNetwork
        )
    }
}

/// What the transfer screen's QR code holds: the details a banking app
/// needs, one per line.
pub fn transfer_qr_text(account: &TransferAccount, amount: &Amount, code: &str) -> String {
    format!(
        "Bank: {}\nAccount: {}\nName: {}\nAmount: {}\nNarration: {}",
        account.bank_name,
        account.account_number,
        account.account_name,
        amount.display_code(),
        code
    )
}

/// `012345` as the transfer screen shows it: `012 345`.
pub fn grouped_transfer_code(code: &str) -> String {
    let chars: Vec<char> = code.chars().collect();
    chars
        .chunks(3)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where pairing stands, as the pairing screen says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairingStatus {
    /// Asking the backend for a code.
    Registering,
    /// The code is shown; waiting for the organiser.
    Waiting,
    /// The backend is not reachable; retrying.
    NoNetwork,
}

impl PairingStatus {
    pub(crate) fn key(self) -> Key {
        match self {
            PairingStatus::Registering => Key::PairingRegistering,
            PairingStatus::Waiting => Key::PairingWaiting,
            PairingStatus::NoNetwork => Key::PairingNoNetwork,
        }
    }
}

/// `K7M2X9QA` as the screen shows it: `K7M2 X9QA` (groups of four).
pub fn grouped_code(code: &str) -> String {
    let chars: Vec<char> = code.chars().collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A whole screen: the status line plus the view. [`crate::render`] draws it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Screen {
    pub status: StatusLine,
    pub view: View,
}

#[cfg(test)]
mod tests;
