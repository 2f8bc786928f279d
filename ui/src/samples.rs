//! Example screens: one for every screen name plus a few hard cases (offline,
//! long non-ASCII names, the largest amount). The golden images, the
//! benchmark and the docs use them; the agent never does.

use proto::{Currency, Money, Total};

use crate::model::{
    Amount, CancelReason, CardSummary, DeclineReason, Screen, SessionTotals, StatusLine, Tally,
    View,
};

fn money(minor: u64) -> Money {
    Money::from_minor(minor).expect("sample amounts are within the Money range")
}

fn ngn(minor: u64) -> Amount {
    Amount::new(money(minor), Currency::Ngn)
}

fn status(offline: bool, queued: u64) -> StatusLine {
    StatusLine {
        event_name: "Lagos Jazz Night".to_owned(),
        terminal_label: "Bar 2 - pos_3f1e2d_001".to_owned(),
        offline,
        queued,
        parked: 0,
    }
}

/// `(name, screen)` pairs; `name` is unique and safe as a file name.
pub fn sample_screens() -> Vec<(&'static str, Screen)> {
    let online = status(false, 0);
    let long = StatusLine {
        event_name: "Felabration Ọjọ́ Àìkú Grand Finale at Tafawa Balewa Square 🎷🎺".to_owned(),
        terminal_label: "North Gate VIP Lounge Terminal Number Seventeen".to_owned(),
        offline: true,
        queued: 1234,
        parked: 0,
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
                    parked: 2,
                    ..status(false, 3)
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
                },
            ),
        ),
    ]
}
