//! Every text the screens show, in one catalogue: [`text`] gives the words
//! of a [`Key`] in a [`Language`], [`fill`] puts values into a template's
//! `{0}`, `{1}` places. Screen code names keys, never English words, so a
//! language is added here alone (a variant of [`Language`] and its table).
//!
//! Texts that come in from outside (the core's messages, menu labels,
//! operator and item names) are shown as they are and are not here.

/// A language the screens can be shown in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Language {
    /// English (the default).
    #[default]
    En,
}

/// One text of the screens. Templates have `{0}`, `{1}` places for
/// [`fill`]; plurals are keys of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    // Titles.
    Starting,
    Ready,
    TapCard,
    Refund,
    Processing,
    Approved,
    Declined,
    NotApproved,
    Cancelled,
    EventClosed,
    Error,
    AddTip,
    TipAmount,
    LogIn,
    Locked,
    Catalog,
    /// `{0}`: `X` or `Z`.
    ReportTitle,
    // The status strip and the idle screen.
    Online,
    Offline,
    WaitingForSale,
    StoredAndSentLater,
    /// `{0}`: how many.
    PaymentsToSendOne,
    PaymentsToSendMany,
    NeedsAttentionOne,
    /// `{0}`: how many.
    NeedsAttentionMany,
    // The payment screens.
    TapSameCard,
    PleaseWait,
    /// `{0}`: the tip.
    InclTip,
    OfflineApproval,
    ScanForReceipt,
    PrintReceiptPrompt,
    // Pairing (SPEC 8.1).
    PairTitle,
    PairInDashboard,
    ScanToPair,
    PairingRegistering,
    PairingWaiting,
    PairingNoNetwork,
    // Pay by bank transfer (SPEC 7.7).
    TransferTitle,
    TransferCodeLabel,
    TransferHints,
    TransferCardOnly,
    ScanToPay,
    TransferWaiting,
    TransferPartly,
    TransferNoNetwork,
    TransferNeedsNetwork,
    TransferUnavailable,
    TransferNotForEvent,
    TransferReceived,
    CancelButton,
    // Why a payment was declined.
    DeclinedByBank,
    InsufficientFunds,
    NetworkProblem,
    OfflineLimit,
    CardNotSupported,
    RefundCardMismatch,
    RefundExceedsAmount,
    SessionClosed,
    TerminalProblem,
    NotAccepted,
    // Why a payment was cancelled.
    CancelledByCashier,
    CancelledByPos,
    CancelledTimedOut,
    // End of the event.
    NoNewSalesTotals,
    Sales,
    Refunds,
    DeclinedRow,
    /// `{0}`: the label, `{1}`: the count.
    TallyLabel,
    /// `{0}`: how many.
    StillToSend,
    // Key hints.
    OkToConfirm,
    BackToDelete,
    CancelToClear,
    OkToLogIn,
    OkAdd,
    BackRemove,
    MenuPay,
    // Tip, login, locked.
    /// `{0}`: the amount before the tip.
    SaleAmount,
    /// `{0}`: the amount with the tip.
    TotalAmount,
    NoTip,
    EnterPin,
    TooManyWrongPins,
    /// `{0}`: a duration.
    LockedFor,
    OneSecond,
    /// `{0}`: seconds.
    Seconds,
    /// `{0}`: minutes.
    Minutes,
    /// `{0}`: minutes, `{1}`: seconds.
    MinutesSeconds,
    // Catalog.
    /// `{0}`: the item number.
    ItemNo,
    /// `{0}`-`{1}` of `{2}`.
    LinesShown,
    NoItems,
    /// `{0}`: how many.
    ItemsOne,
    ItemsMany,
    /// `{0}`: `3 items`.
    CartLabel,
    /// `{0}`: the quantity.
    Quantity,
    // Reports.
    /// `{0}`: the shift number.
    Shift,
    ShiftClosed,
    /// `{0}`: when it opened.
    Since,
    /// `{0}` - `{1}`.
    FromTo,
    Tips,
    OnlineRow,
    OfflineRow,
    CountHeading,
    QtyHeading,
    ByOperator,
    ByItem,
    /// `{0}`: how many lines are left out.
    More,
}

/// The words of `key` in `language`.
pub fn text(language: Language, key: Key) -> &'static str {
    match language {
        Language::En => en(key),
    }
}

/// `template` with `{0}`, `{1}`, … replaced by `args` in that order of
/// numbers (a language may put them in another order).
pub fn fill(template: &str, args: &[&str]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let arg = after.find('}').and_then(|close| {
            let n: usize = after[..close].parse().ok()?;
            Some((args.get(n).copied().unwrap_or(""), close))
        });
        match arg {
            Some((value, close)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn en(key: Key) -> &'static str {
    match key {
        Key::Starting => "STARTING",
        Key::Ready => "READY",
        Key::TapCard => "TAP CARD",
        Key::Refund => "REFUND",
        Key::Processing => "PROCESSING",
        Key::Approved => "APPROVED",
        Key::Declined => "DECLINED",
        Key::NotApproved => "NOT APPROVED",
        Key::Cancelled => "CANCELLED",
        Key::EventClosed => "EVENT CLOSED",
        Key::Error => "ERROR",
        Key::AddTip => "ADD A TIP?",
        Key::TipAmount => "TIP AMOUNT",
        Key::LogIn => "LOG IN",
        Key::Locked => "LOCKED",
        Key::Catalog => "CATALOG",
        Key::ReportTitle => "{0} REPORT",
        Key::Online => "ONLINE",
        Key::Offline => "OFFLINE",
        Key::WaitingForSale => "Waiting for a sale",
        Key::StoredAndSentLater => "Payments are stored and sent later",
        Key::PaymentsToSendOne => "{0} payment to send",
        Key::PaymentsToSendMany => "{0} payments to send",
        Key::NeedsAttentionOne => "1 needs attention: call a technician",
        Key::NeedsAttentionMany => "{0} need attention: call a technician",
        Key::TapSameCard => "Tap the same card",
        Key::PleaseWait => "Please wait",
        Key::InclTip => "incl. tip {0}",
        Key::OfflineApproval => "Approved offline. Will be sent later.",
        Key::ScanForReceipt => "Scan for receipt",
        Key::PairTitle => "PAIRING CODE",
        Key::PairInDashboard => "Pair this terminal in the dashboard",
        Key::ScanToPair => "Scan to pair",
        Key::PairingRegistering => "Asking the backend for a code...",
        Key::PairingWaiting => "Waiting for the organiser",
        Key::PairingNoNetwork => "No network: retrying",
        Key::TransferTitle => "PAY BY TRANSFER",
        Key::TransferCodeLabel => "Put this code in the narration",
        Key::TransferHints => "UP card | CANCEL stop",
        Key::TransferCardOnly => "UP back to card",
        Key::ScanToPay => "Scan to pay",
        Key::TransferWaiting => "Waiting for the transfer",
        Key::TransferPartly => "Received {0} of {1}",
        Key::TransferNoNetwork => "No network: still waiting",
        Key::TransferNeedsNetwork => "Transfer needs the network: press UP for card",
        Key::TransferUnavailable => "Transfer unavailable: use card",
        Key::TransferNotForEvent => "Transfer is not available for this event",
        Key::TransferReceived => "Transfer received",
        Key::PrintReceiptPrompt => "Receipt? Press OK",
        Key::CancelButton => "CANCEL",
        Key::DeclinedByBank => "Card declined by bank. Try another card.",
        Key::InsufficientFunds => "Not enough money on card. Try another card.",
        Key::NetworkProblem => "Network problem, no charge. Try again.",
        Key::OfflineLimit => "Offline limit reached. Wait for network.",
        Key::CardNotSupported => "This card is not accepted.",
        Key::RefundCardMismatch => "Not the card used for the sale.",
        Key::RefundExceedsAmount => "Refund is more than the sale.",
        Key::SessionClosed => "Event closed. No new sales.",
        Key::TerminalProblem => "Not approved: terminal problem. No charge",
        Key::NotAccepted => "Payment not accepted",
        Key::CancelledByCashier => "Cancelled by cashier. No charge.",
        Key::CancelledByPos => "Cancelled by the till. No charge.",
        Key::CancelledTimedOut => "No card tapped in time. No charge.",
        Key::NoNewSalesTotals => "No new sales. Totals:",
        Key::Sales => "Sales",
        Key::Refunds => "Refunds",
        Key::DeclinedRow => "Declined",
        Key::TallyLabel => "{0} ({1})",
        Key::StillToSend => "{0} still to send",
        Key::OkToConfirm => "OK to confirm",
        Key::BackToDelete => "Back to delete",
        Key::CancelToClear => "Cancel to clear",
        Key::OkToLogIn => "OK to log in",
        Key::OkAdd => "OK add",
        Key::BackRemove => "Back remove",
        Key::MenuPay => "Menu pay",
        Key::SaleAmount => "Sale {0}",
        Key::TotalAmount => "Total {0}",
        Key::NoTip => "No tip",
        Key::EnterPin => "Enter your PIN",
        Key::TooManyWrongPins => "Too many wrong PINs.",
        Key::LockedFor => "Locked for {0}",
        Key::OneSecond => "1 second",
        Key::Seconds => "{0} seconds",
        Key::Minutes => "{0} minutes",
        Key::MinutesSeconds => "{0} min {1} s",
        Key::ItemNo => "Item no. {0}",
        Key::LinesShown => "{0}-{1} of {2}",
        Key::NoItems => "No items in the catalog",
        Key::ItemsOne => "{0} item",
        Key::ItemsMany => "{0} items",
        Key::CartLabel => "Cart: {0}",
        Key::Quantity => "x{0}",
        Key::Shift => "Shift {0}",
        Key::ShiftClosed => "Shift {0} closed",
        Key::Since => "Since {0}",
        Key::FromTo => "{0} - {1}",
        Key::Tips => "Tips",
        Key::OnlineRow => "Online",
        Key::OfflineRow => "Offline",
        Key::CountHeading => "No.",
        Key::QtyHeading => "Qty",
        Key::ByOperator => "BY OPERATOR",
        Key::ByItem => "BY ITEM",
        Key::More => "+ {0} more",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_puts_values_in_their_places() {
        assert_eq!(fill("{0} ({1})", &["Sales", "3"]), "Sales (3)");
        assert_eq!(fill("{1} of {0}", &["a", "b"]), "b of a");
        assert_eq!(fill("no places", &["x"]), "no places");
        assert_eq!(fill("{x} {0", &["v"]), "{x} {0");
        assert_eq!(fill("{3}", &["v"]), "");
    }

    #[test]
    fn english_texts_are_not_empty() {
        for key in [
            Key::Approved,
            Key::OfflineApproval,
            Key::More,
            Key::ScanForReceipt,
            Key::PrintReceiptPrompt,
        ] {
            assert!(!text(Language::En, key).is_empty());
        }
    }
}
