//! The vocabulary of the cashier's terminal (SPEC section 7): operators,
//! tips, the quick-sale catalog, the menu and shift reports, and the
//! questions the core asks the shell about the ledger ([`Query`]) with
//! their answers ([`Answer`]). Everything here is validated by the shell.

use proto::wire::{ReceiptPrint, ShiftTotals, TipsConfig};
use proto::{Money, Reference};

use super::model::OriginalSale;
use super::time::UnixMillis;

/// What an operator may do (SPEC 7.2). A backend `manager` is a
/// supervisor on the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Cashier,
    Supervisor,
}

/// An operator of the session as the terminal keeps it (from the signed
/// operators list, cached in the ledger for offline logins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// Lowercase hex PBKDF2-HMAC-SHA256 of the PIN (proto::pin).
    pub pin_hash: String,
    /// Lowercase hex salt.
    pub salt: String,
}

/// The logged-in operator, as screens show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorTag {
    pub id: String,
    pub name: String,
}

/// The session configuration the core applies between payments (SPEC 7.6).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeskConfig {
    pub tips: TipsConfig,
    /// Log the operator out after this long without a key press; `None`:
    /// never.
    pub logout_after_ms: Option<u64>,
    /// Receipts (SPEC 7.4): `auto` prints the cashier's copy at once and
    /// the customer's on `ok`; `ask` prints only on `ok`; `off` never by
    /// itself (the menu still reprints).
    pub receipt_print: ReceiptPrint,
}

impl DeskConfig {
    /// The SPEC default: tips off, logout after 10 minutes.
    pub fn spec_default() -> DeskConfig {
        DeskConfig {
            tips: TipsConfig::default(),
            logout_after_ms: Some(600_000),
            receipt_print: ReceiptPrint::Auto,
        }
    }
}

/// One item of the quick-sale catalog, in catalog order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogItem {
    pub item_id: String,
    pub name: String,
    pub price: Money,
}

/// One line of a cart as the transaction carries it (`items`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineItem {
    pub item_id: String,
    pub name: String,
    pub qty: u32,
    pub unit_price: Money,
}

/// X (the shift so far) or Z (closes the shift).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    X,
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

/// A shift's report as the ledger computed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShiftReport {
    pub kind: ReportKind,
    pub shift_no: u64,
    pub opened_at: Option<UnixMillis>,
    /// Set on a Z report.
    pub closed_at: Option<UnixMillis>,
    pub totals: ShiftTotals,
}

/// What the core asks the shell; each is answered with an [`Answer`] (or
/// for [`Query::MintReference`], `ReferenceMinted` / `MintFailed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// Take the next reference from the store's durable counter (committed
    /// before the answer): the cashier confirmed a sale or refund.
    MintReference,
    /// The last approved sales that can still be refunded, newest first.
    RecentSales { limit: u32 },
    /// What the ledger knows of one sale (a refund keyed by its number).
    Original { reference: Reference },
    /// The current shift's figures (X report).
    XReport,
    /// Close the current shift (Z report) in one commit: a new, never
    /// reused shift number, its report queued for the backend.
    CloseShift {
        operator_id: Option<String>,
        at: UnixMillis,
    },
    /// Unpair this terminal (SPEC 8.1; a supervisor confirmed it): only
    /// with nothing left to send to the backend. Answered `Unpaired` (the
    /// shell then goes back to pairing) or `UnpairRefused`.
    Unpair,
}

/// The shell's answer to a [`Query`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    ReferenceMinted {
        reference: Reference,
    },
    RecentSales(Vec<OriginalSale>),
    Original(Option<OriginalSale>),
    /// The sale asked for was paid by bank transfer (SPEC 7.7): there is no
    /// card to tap, a supervisor refunds it from the collection account.
    OriginalPaidByTransfer,
    Report(ShiftReport),
    /// The credentials are gone; the shell stops taking payments and pairs
    /// again.
    Unpaired,
    /// Unpairing was refused, `reason` in the cashier's words (items still
    /// to send).
    UnpairRefused {
        reason: String,
    },
    /// The store could not answer (disk error): nothing was changed.
    Failed {
        error: String,
    },
}

/// The card application a card was read with (EMV tags 4F and 50), for
/// the receipt only: never sent, never more card data than this.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CardApp {
    /// Uppercase hex.
    pub aid: Option<String>,
    pub label: Option<String>,
}

/// Which copy of a receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptCopy {
    Cashier,
    Customer,
    /// From the menu's Last receipt.
    Reprint,
}

/// Something to print (SPEC 7.4): the shell builds it from the ledger and
/// hands it to the printer task, which never holds up the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrintJob {
    Receipt {
        reference: Reference,
        copy: ReceiptCopy,
    },
    Report(ShiftReport),
}

/// One choice of the tip screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TipOption {
    Percent { percent: u32, tip: Money },
    Fixed { tip: Money },
    Custom,
}

/// An entry of a list screen (the menu, the refund picker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuEntry {
    /// The digit that opens it (None: picked with up/down and `ok`).
    pub key: Option<u8>,
    pub label: String,
    /// False: shown greyed, refused with a message.
    pub enabled: bool,
}

/// The tip for `percent` of `amount`, rounded half up to the kobo
/// (SPEC 7.3). `None` when it would not be a valid amount.
pub fn percent_tip(amount: Money, percent: u32) -> Option<Money> {
    let scaled = u128::from(amount.minor()) * u128::from(percent) + 50;
    let minor = u64::try_from(scaled / 100).ok()?;
    Money::from_minor(minor).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(minor: u64) -> Money {
        Money::from_minor(minor).unwrap()
    }

    #[test]
    fn percentages_round_half_up_to_the_kobo() {
        // 10% of 1,500.00 is 150.00 exactly.
        assert_eq!(percent_tip(m(150_000), 10), Some(m(15_000)));
        // 15% of 0.10 = 1.5 kobo → 2 kobo (half up).
        assert_eq!(percent_tip(m(10), 15), Some(m(2)));
        // 5% of 0.29 = 1.45 kobo → 1 kobo.
        assert_eq!(percent_tip(m(29), 5), Some(m(1)));
        // 5% of 0.30 = 1.5 kobo → 2 kobo.
        assert_eq!(percent_tip(m(30), 5), Some(m(2)));
        // 100% of the maximum is the maximum.
        assert_eq!(
            percent_tip(m(proto::money::MAX_MINOR), 100),
            Some(m(proto::money::MAX_MINOR))
        );
    }
}
