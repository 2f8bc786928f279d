//! What `GET /screen` reports about a [`Screen`] (SPEC section 6): the
//! screen's name and its [`ScreenState`].

use proto::{Currency, Money, Total};
use serde::{Deserialize, Serialize};

use super::{Amount, ReportKind, Screen, StatusLine, TransferStatus, View};
use crate::strings::{Key, Language, text};

/// The screen names of SPEC section 6 that this crate draws.
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
    AmountEntry,
    Menu,
    Catalog,
    Login,
    Locked,
    Tip,
    Report,
    Pairing,
    Transfer,
}

impl ScreenName {
    pub const ALL: [ScreenName; 19] = [
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
        ScreenName::AmountEntry,
        ScreenName::Menu,
        ScreenName::Catalog,
        ScreenName::Login,
        ScreenName::Locked,
        ScreenName::Tip,
        ScreenName::Report,
        ScreenName::Pairing,
        ScreenName::Transfer,
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
            ScreenName::AmountEntry => "amount_entry",
            ScreenName::Menu => "menu",
            ScreenName::Catalog => "catalog",
            ScreenName::Login => "login",
            ScreenName::Locked => "locked",
            ScreenName::Tip => "tip",
            ScreenName::Report => "report",
            ScreenName::Pairing => "pairing",
            ScreenName::Transfer => "transfer",
        }
    }
}

impl core::fmt::Display for ScreenName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The semantic state of a screen, as `GET /screen` reports it (SPEC
/// section 6): `{screen, amount, currency, message, offline, queued, parked,
/// operator, tip_amount, total, receipt_url, pairing_code, cart, report, menu}`. Every member is
/// always present (null when it does not apply); the later ones default
/// when parsing an older state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScreenState {
    pub screen: ScreenName,
    /// Wire form (`"2000.00"`) or null. With a tip: the amount before it.
    pub amount: Option<Money>,
    pub currency: Option<Currency>,
    pub message: Option<String>,
    pub offline: bool,
    pub queued: u64,
    #[serde(default)]
    pub parked: u64,
    /// The logged-in operator's id, on every screen.
    #[serde(default)]
    pub operator: Option<String>,
    /// The tip included in `total` (payment screens), or the custom tip
    /// being keyed (`tip`).
    #[serde(default)]
    pub tip_amount: Option<Money>,
    /// What is charged, tip included (payment screens).
    #[serde(default)]
    pub total: Option<Money>,
    /// The digital receipt shown as a QR code (`approved`, `declined`).
    #[serde(default)]
    pub receipt_url: Option<String>,
    /// The code to claim (`pairing`, SPEC 8.1), ungrouped: `K7M2X9QA`.
    #[serde(default)]
    pub pairing_code: Option<String>,
    /// The cart (`catalog`): the lines with a quantity.
    #[serde(default)]
    pub cart: Option<Vec<CartEntry>>,
    /// The report's headline figures (`report`).
    #[serde(default)]
    pub report: Option<ReportSummary>,
    /// The entries shown (`menu`), without their digits.
    #[serde(default)]
    pub menu: Option<Vec<String>>,
    /// The account, code and progress of a transfer (`transfer`, SPEC 7.7).
    #[serde(default)]
    pub transfer: Option<TransferInfo>,
}

/// The transfer screen in [`ScreenState::transfer`]: the account to pay
/// into (null fields without one), the amount, the code (null when nothing
/// can be paid), what arrived and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferInfo {
    pub bank_name: Option<String>,
    pub account_number: Option<String>,
    pub account_name: Option<String>,
    pub amount: Money,
    pub code: Option<String>,
    pub received: Money,
    pub status: TransferStatus,
}

/// One line of the cart in [`ScreenState::cart`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartEntry {
    pub item_id: String,
    pub qty: u32,
}

/// A report's headline in [`ScreenState::report`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportSummary {
    pub kind: ReportKind,
    pub shift_no: u64,
    /// Approved sales.
    pub count: u64,
    /// Their total.
    pub total: Total,
    /// The tips among them.
    pub tips: Total,
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
            operator: None,
            tip_amount: None,
            total: None,
            receipt_url: None,
            cart: None,
            report: None,
            menu: None,
            pairing_code: None,
            transfer: None,
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
            View::AmountEntry { .. } => ScreenName::AmountEntry,
            View::Menu { .. } => ScreenName::Menu,
            View::Catalog { .. } => ScreenName::Catalog,
            View::Login { .. } => ScreenName::Login,
            View::Locked { .. } => ScreenName::Locked,
            View::Tip { .. } => ScreenName::Tip,
            View::Report { .. } => ScreenName::Report,
            View::Pairing { .. } => ScreenName::Pairing,
            View::Transfer { .. } => ScreenName::Transfer,
        }
    }

    /// The amount this screen is about, as `GET /screen` reports it: on the
    /// payment screens the amount before the tip, on `tip` the amount the
    /// tip is added to, on `amount_entry` the amount keyed, on `catalog`
    /// the cart's total.
    pub fn amount(&self) -> Option<Amount> {
        match &self.view {
            View::TapCard { amount, tip }
            | View::Processing { amount, tip, .. }
            | View::Approved { amount, tip, .. }
            | View::Declined { amount, tip, .. }
            | View::Transfer { amount, tip, .. } => Some(before_tip(*amount, *tip)),
            View::RefundTap { amount }
            | View::AmountEntry { amount, .. }
            | View::Tip { amount, .. }
            | View::Catalog {
                cart_total: amount, ..
            } => Some(*amount),
            View::Cancelled { amount, .. } => *amount,
            View::Booting { .. }
            | View::Idle
            | View::SessionClosed { .. }
            | View::Error { .. }
            | View::Login { .. }
            | View::Locked { .. }
            | View::Menu { .. }
            | View::Report { .. }
            | View::Pairing { .. } => None,
        }
    }

    /// What a payment screen charges, tip included, and the tip.
    fn charged(&self) -> Option<(Amount, Option<Amount>)> {
        match &self.view {
            View::TapCard { amount, tip }
            | View::Processing { amount, tip, .. }
            | View::Approved { amount, tip, .. }
            | View::Declined { amount, tip, .. }
            | View::Transfer { amount, tip, .. } => Some((*amount, *tip)),
            _ => None,
        }
    }

    /// The main sentence of this screen, if any (as in `GET /screen`).
    pub fn message(&self) -> Option<String> {
        let text = match &self.view {
            View::Booting { message } | View::Processing { message, .. } => message.clone(),
            View::Error { message } => message.clone(),
            View::Declined { reason, .. } => reason.text().to_owned(),
            View::Cancelled { reason, .. } => reason.text().to_owned(),
            View::Approved { offline: true, .. } => {
                text(Language::En, Key::OfflineApproval).to_owned()
            }
            View::SessionClosed { .. } => text(Language::En, Key::SessionClosed).to_owned(),
            View::AmountEntry { message, .. }
            | View::Tip { message, .. }
            | View::Login { message, .. }
            | View::Menu { message, .. }
            | View::Catalog { message, .. } => message.clone().unwrap_or_default(),
            View::Locked { message, .. } => message
                .clone()
                .unwrap_or_else(|| text(Language::En, Key::TooManyWrongPins).to_owned()),
            View::Pairing { status, .. } => text(Language::En, status.key()).to_owned(),
            View::Transfer {
                amount,
                received,
                status,
                ..
            } => crate::strings::fill(
                text(Language::En, status.key()),
                &[
                    &received.map(|r| r.display()).unwrap_or_default(),
                    &amount.display(),
                ],
            ),
            View::Approved { transfer: true, .. } => {
                text(Language::En, Key::TransferReceived).to_owned()
            }
            View::Approved { offline: false, .. }
            | View::Idle
            | View::TapCard { .. }
            | View::RefundTap { .. }
            | View::Report { .. } => String::new(),
        };
        (!text.is_empty()).then_some(text)
    }

    /// The semantic view for `GET /screen`.
    pub fn state(&self) -> ScreenState {
        let amount = self.amount();
        let (total, tip_amount) = match (&self.view, self.charged()) {
            (_, Some((total, tip))) => (Some(total.value), tip.map(|t| t.value)),
            (View::Tip { custom, .. }, None) => (None, custom.map(|t| t.value)),
            _ => (None, None),
        };
        let cart = match &self.view {
            View::Catalog { items, .. } => Some(
                items
                    .iter()
                    .filter(|l| l.qty > 0)
                    .map(|l| CartEntry {
                        item_id: l.item_id.clone(),
                        qty: l.qty,
                    })
                    .collect(),
            ),
            _ => None,
        };
        let report = match &self.view {
            View::Report { report } => Some(ReportSummary {
                kind: report.kind,
                shift_no: report.shift_no,
                count: report.sales.count,
                total: report.sales.total,
                tips: report.tips.total,
            }),
            _ => None,
        };
        let receipt_url = match &self.view {
            View::Approved { receipt_url, .. } | View::Declined { receipt_url, .. } => {
                receipt_url.clone()
            }
            _ => None,
        };
        let menu = match &self.view {
            View::Menu { entries, .. } => Some(entries.iter().map(|e| e.label.clone()).collect()),
            _ => None,
        };
        let pairing_code = match &self.view {
            View::Pairing { code, .. } => code.clone(),
            _ => None,
        };
        let transfer = match &self.view {
            View::Transfer {
                amount,
                account,
                code,
                received,
                status,
                ..
            } => Some(TransferInfo {
                bank_name: account.as_ref().map(|a| a.bank_name.clone()),
                account_number: account.as_ref().map(|a| a.account_number.clone()),
                account_name: account.as_ref().map(|a| a.account_name.clone()),
                amount: amount.value,
                code: code.clone(),
                received: received.map_or(Money::ZERO, |r| r.value),
                status: *status,
            }),
            _ => None,
        };
        ScreenState {
            screen: self.name(),
            amount: amount.map(|a| a.value),
            currency: amount.map(|a| a.currency),
            message: self.message(),
            offline: self.status.offline,
            queued: self.status.queued,
            parked: self.status.parked,
            operator: self.status.operator.as_ref().map(|o| o.id.clone()),
            tip_amount,
            total,
            receipt_url,
            cart,
            report,
            menu,
            pairing_code,
            transfer,
        }
    }
}

/// The amount before `tip` of a `total` that includes it.
fn before_tip(total: Amount, tip: Option<Amount>) -> Amount {
    match tip {
        Some(tip) => Amount::new(total.value.saturating_sub(tip.value), total.currency),
        None => total,
    }
}
