//! Example screens: one for every screen name plus a few hard cases (offline,
//! long non-ASCII names, the largest amount, a tip, a wrong PIN, a long
//! receipt URL). The golden images, the
//! benchmark and the docs use them; the agent never does.

use proto::{Currency, Money, Total};

use crate::model::{
    Amount, CancelReason, CardSummary, CatalogLine, DeclineReason, ItemLine, MenuEntry,
    OperatorTag, PairingStatus, ReportKind, Screen, SessionTotals, ShiftReport, StatusLine, Tally,
    TipChoice, TransferAccount, TransferStatus, View,
};

/// A receipt as the backend answers it (SPEC 7.4).
pub const RECEIPT_URL: &str = "https://api.kler.africa/r/txn_01JD8X2K7Q4M9T3V5W6Y8Z0ABC";
/// The receipt of a declined payment.
pub const DECLINED_RECEIPT_URL: &str = "https://api.kler.africa/r/txn_01JD8X3M1R5N0P2Q4S6T8V9XYZ";
/// The receipt the terminal builds for an offline payment.
pub const OFFLINE_RECEIPT_URL: &str = "https://api.kler.africa/r/ref/pos_3f1e2d_001-000042";

/// A receipt URL as long as a backend may give (a larger QR code).
pub const LONG_RECEIPT_URL: &str = "https://receipts.kler.africa/r/ref/pos_3f1e2d_001-000042?session=3f1e2d9a-7c41-4e0b-9d2f-5a6b7c8d9e0f&lang=en";

fn money(minor: u64) -> Money {
    Money::from_minor(minor).expect("sample amounts are within the Money range")
}

fn ngn(minor: u64) -> Amount {
    Amount::new(money(minor), Currency::Ngn)
}

fn status(offline: bool, queued: u64) -> StatusLine {
    StatusLine {
        printer_problem: None,
        event_name: "Lagos Jazz Night".to_owned(),
        terminal_label: "Bar 2 - pos_3f1e2d_001".to_owned(),
        offline,
        queued,
        parked: 0,
        operator: None,
    }
}

/// The status line with a cashier logged in.
fn cashier() -> StatusLine {
    StatusLine {
        printer_problem: None,
        operator: Some(OperatorTag {
            id: "op_ada".to_owned(),
            name: "Ada Okafor".to_owned(),
        }),
        ..status(false, 0)
    }
}

fn tally(count: u64, minor: u64) -> Tally {
    Tally {
        count,
        total: Total(minor),
    }
}

/// `(name, screen)` pairs; `name` is unique and safe as a file name.
pub fn sample_screens() -> Vec<(&'static str, Screen)> {
    let online = status(false, 0);
    let long = StatusLine {
        printer_problem: None,
        event_name: "Felabration Ọjọ́ Àìkú Grand Finale at Tafawa Balewa Square 🎷🎺".to_owned(),
        terminal_label: "North Gate VIP Lounge Terminal Number Seventeen".to_owned(),
        offline: true,
        queued: 1234,
        parked: 0,
        operator: None,
    };
    vec![
        (
            "booting",
            Screen::new(
                StatusLine::default(),
                View::Booting {
                    message: "Checking storage".to_owned(),
                },
            ),
        ),
        ("idle", Screen::new(online.clone(), View::Idle)),
        ("idle_offline", Screen::new(status(true, 7), View::Idle)),
        (
            "idle_parked",
            Screen::new(
                StatusLine {
                    printer_problem: None,
                    parked: 2,
                    ..status(false, 3)
                },
                View::Idle,
            ),
        ),
        (
            "idle_printer",
            Screen::new(
                StatusLine {
                    printer_problem: Some("Printer is out of paper. Reprint from menu".to_owned()),
                    ..status(false, 0)
                },
                View::Idle,
            ),
        ),
        (
            "tap_card",
            Screen::new(
                online.clone(),
                View::TapCard {
                    amount: ngn(200_000),
                    tip: None,
                },
            ),
        ),
        (
            "processing",
            Screen::new(
                online.clone(),
                View::Processing {
                    amount: ngn(200_000),
                    message: "Contacting bank".to_owned(),
                    tip: None,
                },
            ),
        ),
        (
            "approved",
            Screen::new(
                online.clone(),
                View::Approved {
                    amount: ngn(200_000),
                    card: Some(CardSummary {
                        brand: "Visa".to_owned(),
                        last4: "1111".to_owned(),
                    }),
                    offline: false,
                    tip: None,
                    receipt_url: Some(RECEIPT_URL.to_owned()),
                    print_prompt: true,
                    transfer: false,
                },
            ),
        ),
        (
            "approved_offline",
            Screen::new(
                status(true, 3),
                View::Approved {
                    amount: ngn(150_050),
                    card: Some(CardSummary {
                        brand: "Verve".to_owned(),
                        last4: "0007".to_owned(),
                    }),
                    offline: true,
                    tip: None,
                    receipt_url: Some(OFFLINE_RECEIPT_URL.to_owned()),
                    print_prompt: false,
                    transfer: false,
                },
            ),
        ),
        (
            "approved_long_receipt",
            Screen::new(
                status(true, 3),
                View::Approved {
                    amount: ngn(150_050),
                    card: Some(CardSummary {
                        brand: "Verve".to_owned(),
                        last4: "0007".to_owned(),
                    }),
                    offline: true,
                    tip: Some(ngn(15_000)),
                    receipt_url: Some(LONG_RECEIPT_URL.to_owned()),
                    print_prompt: false,
                    transfer: false,
                },
            ),
        ),
        (
            "declined",
            Screen::new(
                online.clone(),
                View::Declined {
                    amount: ngn(200_000),
                    reason: DeclineReason::InsufficientFunds,
                    tip: None,
                    receipt_url: Some(DECLINED_RECEIPT_URL.to_owned()),
                },
            ),
        ),
        (
            "declined_network",
            Screen::new(
                status(true, 1),
                View::Declined {
                    amount: ngn(1_000_000_000),
                    reason: DeclineReason::NetworkProblem,
                    tip: None,
                    receipt_url: None,
                },
            ),
        ),
        (
            "declined_terminal_problem",
            Screen::new(
                online.clone(),
                View::Declined {
                    amount: ngn(750_000),
                    reason: DeclineReason::TerminalProblem,
                    tip: None,
                    receipt_url: None,
                },
            ),
        ),
        (
            "declined_offline_limit",
            Screen::new(
                status(true, 3),
                View::Declined {
                    amount: ngn(6_000_000),
                    reason: DeclineReason::Other(
                        "Offline: amount above NGN 50,000.00 limit. No charge".into(),
                    ),
                    tip: None,
                    receipt_url: None,
                },
            ),
        ),
        (
            "cancelled",
            Screen::new(
                online.clone(),
                View::Cancelled {
                    amount: Some(ngn(200_000)),
                    reason: CancelReason::Cashier,
                },
            ),
        ),
        (
            "refund_tap",
            Screen::new(
                online.clone(),
                View::RefundTap {
                    amount: ngn(50_000),
                },
            ),
        ),
        (
            "session_closed",
            Screen::new(
                status(false, 2),
                View::SessionClosed {
                    totals: SessionTotals {
                        currency: Currency::Ngn,
                        sales: Tally {
                            count: 128,
                            total: Total(123_456_700),
                        },
                        refunds: Tally {
                            count: 3,
                            total: Total(1_250_000),
                        },
                        declined: Tally {
                            count: 9,
                            total: Total(2_200_000),
                        },
                    },
                },
            ),
        ),
        (
            "error",
            Screen::new(
                online,
                View::Error {
                    message: "Card reader not responding. Unplug it, plug it back in, then \
                              restart the terminal."
                        .to_owned(),
                },
            ),
        ),
        (
            "tap_card_long_names",
            Screen::new(
                long,
                View::TapCard {
                    amount: ngn(1_000_000_000),
                    tip: None,
                },
            ),
        ),
        (
            "pairing",
            Screen::new(
                StatusLine::default(),
                View::Pairing {
                    code: Some("K7M2X9QA".to_owned()),
                    status: PairingStatus::Waiting,
                },
            ),
        ),
        (
            "pairing_no_network",
            Screen::new(
                StatusLine {
                    offline: true,
                    ..StatusLine::default()
                },
                View::Pairing {
                    code: Some("WWWWMMMM".to_owned()),
                    status: PairingStatus::NoNetwork,
                },
            ),
        ),
        (
            "pairing_registering",
            Screen::new(
                StatusLine::default(),
                View::Pairing {
                    code: None,
                    status: PairingStatus::Registering,
                },
            ),
        ),
    ]
    .into_iter()
    .chain(cashier_screens())
    .chain(transfer_screens())
    .collect()
}

/// Pay by bank transfer (SPEC 7.7): waiting with the code, part received,
/// offline refusal, and the approved result.
fn transfer_screens() -> Vec<(&'static str, Screen)> {
    let account = TransferAccount {
        bank_name: "Kler Sandbox Bank".to_owned(),
        account_number: "9900000001".to_owned(),
        account_name: "Lagos Jazz Night".to_owned(),
    };
    let view = |received: Option<u64>, status: TransferStatus, code: Option<&str>| View::Transfer {
        amount: ngn(250_000),
        tip: None,
        account: Some(account.clone()),
        code: code.map(str::to_owned),
        received: received.map(ngn),
        status,
    };
    vec![
        (
            "transfer",
            Screen::new(
                status(false, 0),
                view(None, TransferStatus::Waiting, Some("010001")),
            ),
        ),
        (
            "transfer_partly_received",
            Screen::new(
                status(false, 0),
                view(
                    Some(100_000),
                    TransferStatus::PartlyReceived,
                    Some("010001"),
                ),
            ),
        ),
        (
            "transfer_no_network",
            Screen::new(
                status(true, 1),
                view(None, TransferStatus::NoNetwork, Some("010001")),
            ),
        ),
        (
            "transfer_needs_network",
            Screen::new(
                status(true, 0),
                view(None, TransferStatus::NeedsNetwork, None),
            ),
        ),
        (
            "approved_transfer",
            Screen::new(
                status(false, 0),
                View::Approved {
                    amount: ngn(250_000),
                    card: None,
                    offline: false,
                    tip: None,
                    receipt_url: None,
                    print_prompt: false,
                    transfer: true,
                },
            ),
        ),
    ]
}

/// The cashier's screens of SPEC section 7.
fn cashier_screens() -> Vec<(&'static str, Screen)> {
    let tip_choices = vec![
        tip_choice(1, "5%", Some(10_000)),
        tip_choice(2, "10%", Some(20_000)),
        tip_choice(3, "15%", Some(30_000)),
        tip_choice(4, "NGN 500.00", Some(50_000)),
        tip_choice(5, "Other amount", None),
    ];
    vec![
        (
            "tap_card_tip",
            Screen::new(
                cashier(),
                View::TapCard {
                    amount: ngn(215_000),
                    tip: Some(ngn(15_000)),
                },
            ),
        ),
        (
            "amount_entry",
            Screen::new(
                cashier(),
                View::AmountEntry {
                    title: "New sale".to_owned(),
                    amount: ngn(150_000),
                    message: None,
                },
            ),
        ),
        (
            "amount_entry_over_max",
            Screen::new(
                cashier(),
                View::AmountEntry {
                    title: "New sale".to_owned(),
                    amount: ngn(75_000_000),
                    message: Some("Above the maximum of NGN 500,000.00".to_owned()),
                },
            ),
        ),
        (
            "tip",
            Screen::new(
                cashier(),
                View::Tip {
                    amount: ngn(200_000),
                    choices: tip_choices.clone(),
                    custom: None,
                    message: None,
                },
            ),
        ),
        (
            "tip_custom",
            Screen::new(
                cashier(),
                View::Tip {
                    amount: ngn(200_000),
                    choices: tip_choices,
                    custom: Some(ngn(35_000)),
                    message: None,
                },
            ),
        ),
        (
            "login",
            Screen::new(
                status(false, 0),
                View::Login {
                    pin_len: 2,
                    message: None,
                },
            ),
        ),
        (
            "login_wrong",
            Screen::new(
                status(false, 0),
                View::Login {
                    pin_len: 0,
                    message: Some("Wrong PIN. 2 tries left.".to_owned()),
                },
            ),
        ),
        (
            "locked",
            Screen::new(
                status(false, 0),
                View::Locked {
                    seconds: 30,
                    message: None,
                },
            ),
        ),
        (
            "menu",
            Screen::new(
                cashier(),
                View::Menu {
                    title: "Menu".to_owned(),
                    entries: [
                        ("Catalog", true),
                        ("Refund", false),
                        ("X report", true),
                        ("Z report", false),
                        ("Last receipt", true),
                        ("Log out", true),
                        ("Unpair", false),
                    ]
                    .into_iter()
                    .zip(1u8..)
                    .map(|((label, enabled), key)| MenuEntry {
                        key: Some(key),
                        label: label.to_owned(),
                        enabled,
                    })
                    .collect(),
                    selected: Some(2),
                    message: Some("Refund: supervisor only".to_owned()),
                },
            ),
        ),
        ("catalog", Screen::new(cashier(), catalog())),
        ("report_x", Screen::new(cashier(), report_x())),
        ("report_z", Screen::new(cashier(), report_z())),
    ]
}

fn tip_choice(key: u8, label: &str, tip: Option<u64>) -> TipChoice {
    TipChoice {
        key,
        label: label.to_owned(),
        tip: tip.map(ngn),
    }
}

fn catalog() -> View {
    let items = [
        ("star", "Star Lager 60cl", 150_000, 2),
        ("gulder", "Gulder 60cl", 150_000, 0),
        ("chapman", "Chapman", 200_000, 1),
        ("zobo", "Zobo", 80_000, 0),
        ("water", "Bottled water 75cl", 50_000, 0),
        ("maltina", "Maltina", 70_000, 0),
        ("suya", "Suya (stick)", 100_000, 3),
        ("jollof", "Jollof rice and chicken", 350_000, 0),
        ("chops", "Small chops", 250_000, 0),
        ("palmwine", "Palm wine", 120_000, 0),
        ("hennessy", "Hennessy VS shot", 600_000, 0),
        ("coke", "Coke 50cl", 60_000, 0),
        ("fanta", "Fanta 50cl", 60_000, 0),
        ("puffpuff", "Puff-puff (6)", 50_000, 0),
    ];
    let items: Vec<CatalogLine> = items
        .into_iter()
        .zip(1u32..)
        .map(|((id, name, price, qty), number)| CatalogLine {
            number,
            item_id: id.to_owned(),
            name: name.to_owned(),
            price: ngn(price),
            qty,
        })
        .collect();
    let count = items.iter().map(|l| l.qty).sum();
    let total = items
        .iter()
        .map(|l| l.price.value.minor() * u64::from(l.qty))
        .sum();
    View::Catalog {
        items,
        first: 0,
        keyed: Some(3),
        cart_total: ngn(total),
        cart_count: count,
        message: None,
    }
}

fn report_x() -> View {
    View::Report {
        report: ShiftReport {
            kind: ReportKind::X,
            shift_no: 12,
            currency: Currency::Ngn,
            opened_at: "14 Jun 18:00".to_owned(),
            closed_at: None,
            sales: tally(128, 123_456_700),
            refunds: tally(3, 1_250_000),
            declined: tally(9, 2_200_000),
            tips: tally(40, 1_234_500),
            online: tally(120, 120_000_000),
            offline: tally(8, 3_456_700),
            by_operator: vec![
                ("Ada Okafor".to_owned(), tally(70, 70_000_000)),
                ("Tunde Bakare".to_owned(), tally(50, 50_000_000)),
                ("Chioma Eze".to_owned(), tally(8, 3_456_700)),
            ],
            by_item: vec![
                item("Star Lager 60cl", 210, 31_500_000),
                item("Chapman", 95, 19_000_000),
                item("Suya (stick)", 120, 12_000_000),
                item("Jollof rice and chicken", 40, 14_000_000),
                item("Zobo", 60, 4_800_000),
            ],
        },
    }
}

fn report_z() -> View {
    View::Report {
        report: ShiftReport {
            kind: ReportKind::Z,
            shift_no: 11,
            currency: Currency::Ngn,
            opened_at: "13 Jun 18:00".to_owned(),
            closed_at: Some("14 Jun 02:10".to_owned()),
            sales: tally(64, 48_250_000),
            refunds: tally(1, 150_000),
            declined: tally(4, 900_000),
            tips: tally(12, 310_000),
            online: tally(64, 48_250_000),
            offline: tally(0, 0),
            by_operator: vec![("Tunde Bakare".to_owned(), tally(64, 48_250_000))],
            by_item: vec![item("Star Lager 60cl", 80, 12_000_000)],
        },
    }
}

fn item(name: &str, qty: u64, minor: u64) -> ItemLine {
    ItemLine {
        name: name.to_owned(),
        qty,
        total: Total(minor),
    }
}
