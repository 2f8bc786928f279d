//! The model's names and the JSON of `GET /screen`.

use serde_json::json;

use super::*;

fn ngn(s: &str) -> Amount {
    Amount::new(Money::parse(s).unwrap(), Currency::Ngn)
}

fn status() -> StatusLine {
    StatusLine {
        printer_problem: None,
        event_name: "Fest".into(),
        terminal_label: "Bar".into(),
        offline: true,
        queued: 3,
        parked: 1,
        operator: None,
    }
}

fn logged_in() -> StatusLine {
    StatusLine {
        printer_problem: None,
        operator: Some(OperatorTag {
            id: "op_ada".into(),
            name: "Ada".into(),
        }),
        ..status()
    }
}

fn state_json(status: StatusLine, view: View) -> serde_json::Value {
    let state = Screen::new(status, view).state();
    let json = serde_json::to_value(&state).unwrap();
    let back: ScreenState = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, state, "round trip");
    json
}

#[test]
fn state_serializes_as_the_spec_says() {
    let json = state_json(
        status(),
        View::TapCard {
            amount: ngn("2000.00"),
            tip: None,
        },
    );
    assert_eq!(
        json,
        json!({
            "screen": "tap_card", "amount": "2000.00", "currency": "NGN",
            "message": null, "offline": true, "queued": 3, "parked": 1,
            "operator": null, "tip_amount": null, "total": "2000.00",
            "receipt_url": null, "pairing_code": null, "cart": null, "report": null,
            "menu": null, "transfer": null
        })
    );
    // Every member is present, in the SPEC's order.
    let text = serde_json::to_string(&Screen::new(status(), View::Idle).state()).unwrap();
    let keys: Vec<&str> = [
        "screen",
        "amount",
        "currency",
        "message",
        "offline",
        "queued",
        "parked",
        "operator",
        "tip_amount",
        "total",
        "receipt_url",
        "pairing_code",
        "cart",
        "report",
        "menu",
        "transfer",
    ]
    .to_vec();
    let mut at = 0;
    for key in keys {
        let found = text[at..]
            .find(&format!("\"{key}\":"))
            .unwrap_or_else(|| panic!("{key} missing or out of order in {text}"));
        at += found;
    }
}

#[test]
fn a_tip_splits_amount_and_total_on_every_payment_screen() {
    let total = ngn("2150.00");
    let tip = Some(ngn("150.00"));
    let card = Some(CardSummary {
        brand: "Visa".into(),
        last4: "1111".into(),
    });
    let views = [
        View::TapCard { amount: total, tip },
        View::Processing {
            amount: total,
            message: String::new(),
            tip,
        },
        View::Approved {
            amount: total,
            card,
            offline: false,
            tip,
            receipt_url: None,
            print_prompt: false,
            transfer: false,
        },
        View::Declined {
            amount: total,
            reason: DeclineReason::CardDeclined,
            tip,
            receipt_url: None,
        },
    ];
    for view in views {
        let json = state_json(logged_in(), view);
        assert_eq!(json["amount"], "2000.00", "{json}");
        assert_eq!(json["total"], "2150.00", "{json}");
        assert_eq!(json["tip_amount"], "150.00", "{json}");
        assert_eq!(json["currency"], "NGN", "{json}");
        assert_eq!(json["operator"], "op_ada", "{json}");
    }
}

#[test]
fn the_operator_is_on_every_screen() {
    let json = state_json(logged_in(), View::Idle);
    assert_eq!(json["operator"], "op_ada");
    assert_eq!(json["amount"], serde_json::Value::Null);
    assert_eq!(json["total"], serde_json::Value::Null);
    let json = state_json(status(), View::Idle);
    assert_eq!(json["operator"], serde_json::Value::Null);
}

#[test]
fn tip_screen_reports_the_amount_before_the_tip() {
    let choices = vec![
        TipChoice {
            key: 1,
            label: "10%".into(),
            tip: Some(ngn("200.00")),
        },
        TipChoice {
            key: 2,
            label: "Other amount".into(),
            tip: None,
        },
    ];
    let json = state_json(
        status(),
        View::Tip {
            amount: ngn("2000.00"),
            choices: choices.clone(),
            custom: None,
            message: None,
        },
    );
    assert_eq!(json["screen"], "tip");
    assert_eq!(json["amount"], "2000.00");
    assert_eq!(json["total"], serde_json::Value::Null);
    assert_eq!(json["tip_amount"], serde_json::Value::Null);
    let json = state_json(
        status(),
        View::Tip {
            amount: ngn("2000.00"),
            choices,
            custom: Some(ngn("3.50")),
            message: Some("Tip too large".into()),
        },
    );
    assert_eq!(json["tip_amount"], "3.50");
    assert_eq!(json["total"], serde_json::Value::Null);
    assert_eq!(json["message"], "Tip too large");
}

#[test]
fn amount_entry_reports_the_keyed_amount() {
    let json = state_json(
        status(),
        View::AmountEntry {
            title: "New sale".into(),
            amount: ngn("15.00"),
            message: Some("Above the maximum NGN 10,000,000.00".into()),
        },
    );
    assert_eq!(json["screen"], "amount_entry");
    assert_eq!(json["amount"], "15.00");
    assert_eq!(json["total"], serde_json::Value::Null);
    assert_eq!(json["message"], "Above the maximum NGN 10,000,000.00");
}

#[test]
fn catalog_reports_the_cart() {
    let line = |number, id: &str, qty| CatalogLine {
        number,
        item_id: id.into(),
        name: id.to_uppercase(),
        price: ngn("1500.00"),
        qty,
    };
    let json = state_json(
        status(),
        View::Catalog {
            items: vec![line(1, "beer", 2), line(2, "water", 0), line(3, "suya", 1)],
            first: 0,
            keyed: Some(3),
            cart_total: ngn("4500.00"),
            cart_count: 3,
            message: None,
        },
    );
    assert_eq!(json["screen"], "catalog");
    assert_eq!(
        json["cart"],
        json!([{"item_id": "beer", "qty": 2}, {"item_id": "suya", "qty": 1}])
    );
    assert_eq!(json["amount"], "4500.00");
    // Elsewhere there is no cart.
    assert_eq!(
        state_json(status(), View::Idle)["cart"],
        serde_json::Value::Null
    );
}

#[test]
fn report_reports_its_headline() {
    let tally = |count, minor| Tally {
        count,
        total: Total(minor),
    };
    for (kind, word) in [(ReportKind::X, "X"), (ReportKind::Z, "Z")] {
        assert_eq!(kind.as_str(), word);
        let json = state_json(
            status(),
            View::Report {
                report: ShiftReport {
                    kind,
                    shift_no: 12,
                    currency: Currency::Ngn,
                    opened_at: "14 Jun 18:00".into(),
                    closed_at: None,
                    sales: tally(128, 123_456_700),
                    refunds: tally(3, 1_250_000),
                    declined: tally(9, 2_200_000),
                    tips: tally(40, 1_234_500),
                    online: tally(120, 120_000_000),
                    offline: tally(8, 3_456_700),
                    by_operator: vec![("Ada".into(), tally(128, 123_456_700))],
                    by_item: vec![ItemLine {
                        name: "Beer".into(),
                        qty: 4,
                        total: Total(600_000),
                    }],
                },
            },
        );
        assert_eq!(json["screen"], "report");
        assert_eq!(
            json["report"],
            json!({"kind": word, "shift_no": 12, "count": 128,
                   "total": "1234567.00", "tips": "12345.00"})
        );
        assert_eq!(json["amount"], serde_json::Value::Null);
    }
}

#[test]
fn menu_reports_its_labels_without_digits() {
    let entry = |key, label: &str, enabled| MenuEntry {
        key,
        label: label.into(),
        enabled,
    };
    let json = state_json(
        status(),
        View::Menu {
            title: "Menu".into(),
            entries: vec![
                entry(Some(1), "Catalog", true),
                entry(Some(2), "Refund", false),
                entry(None, "Back", true),
            ],
            selected: Some(0),
            message: Some("Supervisor only".into()),
        },
    );
    assert_eq!(json["screen"], "menu");
    assert_eq!(json["menu"], json!(["Catalog", "Refund", "Back"]));
    assert_eq!(json["message"], "Supervisor only");
}

#[test]
fn login_and_locked_say_what_happened() {
    let json = state_json(
        status(),
        View::Login {
            pin_len: 3,
            message: Some("Wrong PIN. 2 tries left".into()),
        },
    );
    assert_eq!(json["screen"], "login");
    assert_eq!(json["message"], "Wrong PIN. 2 tries left");
    let json = state_json(
        status(),
        View::Locked {
            seconds: 30,
            message: None,
        },
    );
    assert_eq!(json["screen"], "locked");
    assert_eq!(json["message"], "Too many wrong PINs.");
}

#[test]
fn an_older_state_still_parses() {
    let old = json!({
        "screen": "idle", "amount": null, "currency": null, "message": null,
        "offline": false, "queued": 0
    });
    let state: ScreenState = serde_json::from_value(old).unwrap();
    assert_eq!(
        state,
        ScreenState {
            screen: ScreenName::Idle,
            ..ScreenState::booting()
        }
    );
}

#[test]
fn the_pairing_screen_reports_its_code() {
    let state = Screen::new(
        StatusLine::default(),
        View::Pairing {
            code: Some("K7M2X9QA".to_owned()),
            status: crate::PairingStatus::Waiting,
        },
    )
    .state();
    assert_eq!(state.screen, ScreenName::Pairing);
    assert_eq!(state.pairing_code.as_deref(), Some("K7M2X9QA"));
    assert_eq!(state.message.as_deref(), Some("Waiting for the organiser"));
    assert_eq!(crate::grouped_code("K7M2X9QA"), "K7M2 X9QA");
}

#[test]
fn names_match_serde() {
    for name in ScreenName::ALL {
        let json = serde_json::to_value(name).unwrap();
        assert_eq!(json, serde_json::Value::from(name.as_str()));
    }
    let all: Vec<&str> = ScreenName::ALL.iter().map(|n| n.as_str()).collect();
    assert_eq!(
        all,
        [
            "booting",
            "idle",
            "tap_card",
            "processing",
            "approved",
            "declined",
            "cancelled",
            "refund_tap",
            "session_closed",
            "error",
            "amount_entry",
            "menu",
            "catalog",
            "login",
            "locked",
            "tip",
            "report",
            "pairing",
            "transfer",
        ]
    );
    for kind in [ReportKind::X, ReportKind::Z] {
        assert_eq!(serde_json::to_value(kind).unwrap(), json!(kind.as_str()));
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

#[test]
fn amounts_show_the_naira_sign_and_keep_the_code_form() {
    let a = ngn("1500.00");
    assert_eq!(a.display(), "\u{20A6}1,500.00");
    assert_eq!(a.display_code(), "NGN 1,500.00");
    assert_eq!(ngn("0.50").display(), "\u{20A6}0.50");
    let json = state_json(
        status(),
        View::TapCard {
            amount: a,
            tip: None,
        },
    );
    assert_eq!(json["amount"], "1500.00");
}

#[test]
fn the_receipt_url_is_reported_on_the_result_screens() {
    let url = "https://api.kler.africa/r/txn_01";
    let json = state_json(
        status(),
        View::Approved {
            amount: ngn("1500.00"),
            card: None,
            offline: false,
            tip: None,
            receipt_url: Some(url.into()),
            print_prompt: false,
            transfer: false,
        },
    );
    assert_eq!(json["receipt_url"], url);
    let json = state_json(
        status(),
        View::Declined {
            amount: ngn("1500.00"),
            reason: DeclineReason::CardDeclined,
            tip: None,
            receipt_url: Some(url.into()),
        },
    );
    assert_eq!(json["receipt_url"], url);
    let json = state_json(status(), View::Idle);
    assert_eq!(json["receipt_url"], serde_json::Value::Null);
    // An older state without the member still parses.
    let old = json!({"screen": "idle", "amount": null, "currency": null, "message": null,
        "offline": false, "queued": 0});
    let back: ScreenState = serde_json::from_value(old).unwrap();
    assert_eq!(back.receipt_url, None);
}
