//! The cashier's desk (SPEC 7), in virtual time: keypad sales, tips,
//! logins and roles, the catalog, the menu, refunds at the terminal, X/Z
//! reports.

use proto::wire::TipsConfig;

use super::*;

const SALT: &str = "000102030405060708090a0b0c0d0e0f";

fn operator(id: &str, pin: &str, role: Role) -> Operator {
    let p = proto::pin::Pin::new(pin).unwrap();
    Operator {
        id: id.to_string(),
        name: format!("Name of {id}"),
        role,
        pin_hash: proto::pin::pin_hash(&p, SALT).unwrap(),
        salt: SALT.to_string(),
    }
}

fn tips() -> DeskConfig {
    DeskConfig {
        tips: TipsConfig {
            enabled: true,
            percentages: vec![5, 10, 15],
            fixed: vec![money("500.00")],
            custom: true,
        },
        logout_after_ms: Some(600_000),
        receipt_print: proto::wire::ReceiptPrint::Auto,
    }
}

fn catalog() -> Vec<CatalogItem> {
    [
        ("beer", "Beer", "1500.00"),
        ("water", "Water", "300.00"),
        ("suya", "Suya", "2000.00"),
    ]
    .into_iter()
    .map(|(id, name, price)| CatalogItem {
        item_id: id.to_string(),
        name: name.to_string(),
        price: money(price),
    })
    .collect()
}

impl Shell {
    fn desk(restored: RestoredState, online: bool) -> Shell {
        Shell::with(config(), online, restored)
    }

    pub(super) fn press(&mut self, b: Button) -> Vec<Output> {
        self.input(Input::Button(b))
    }

    fn keys(&mut self, keys: &str) -> Vec<Output> {
        let mut out = Vec::new();
        for c in keys.chars() {
            let b = match c {
                '0'..='9' => Button::Digit(c as u8 - b'0'),
                'o' => Button::Ok,
                'b' => Button::Back,
                'c' => Button::Cancel,
                'm' => Button::Menu,
                'u' => Button::Up,
                'd' => Button::Down,
                _ => panic!("no key {c}"),
            };
            out.extend(self.press(b));
        }
        out
    }

    /// Answers a MintReference the core just asked for.
    fn answer_mint(&mut self, out: &[Output]) -> Vec<Output> {
        assert!(
            out.contains(&Output::Query(Query::MintReference)),
            "no reference asked for: {out:?}"
        );
        let reference = self.mint();
        self.input(Input::Answer(Answer::ReferenceMinted { reference }))
    }

    fn screen_now(&self) -> Screen {
        self.t.screen().screen
    }
}

fn inserted(out: &[Output]) -> &NewTx {
    persists(out)
        .iter()
        .find_map(|p| match &p.change.tx {
            Some(TxWrite::Insert(n)) => Some(n),
            _ => None,
        })
        .expect("an insert")
}

fn queries(out: &[Output]) -> Vec<&Query> {
    out.iter()
        .filter_map(|o| match o {
            Output::Query(q) => Some(q),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------- keypad sale ---

#[test]
fn digits_fill_the_amount_from_the_right_like_a_cash_register() {
    let mut s = Shell::new(true);
    s.keys("150000");
    assert_eq!(
        s.screen_now(),
        Screen::AmountEntry {
            purpose: EntryPurpose::Sale,
            amount: money("1500.00"),
            message: None
        }
    );
    s.keys("b");
    assert_eq!(s.screen_now().amount(), Some(money("150.00")));
    // cancel clears, and on an empty amount returns to idle.
    s.keys("c");
    assert_eq!(s.screen_now().amount(), Some(Money::ZERO));
    assert_eq!(s.screen_now().name(), "amount_entry");
    s.keys("c");
    assert_eq!(s.screen_now().name(), "idle");
}

#[test]
fn zero_or_above_the_maximum_cannot_be_confirmed() {
    let mut s = Shell::new(true);
    let out = s.keys("0o");
    assert!(queries(&out).is_empty());
    assert_eq!(
        s.screen_now().message().as_deref(),
        Some("Enter an amount first")
    );
    // 10,000,000.00 is the maximum; one more digit is refused with a message.
    s.keys("c1000000000");
    assert_eq!(s.screen_now().amount(), Some(money("10000000.00")));
    s.keys("0");
    assert_eq!(s.screen_now().amount(), Some(money("10000000.00")));
    assert!(s.screen_now().message().unwrap().contains("maximum"));
}

#[test]
fn a_keypad_sale_is_a_payment_like_any_other_without_payment_id() {
    let mut s = Shell::new(true);
    let out = s.keys("250000o");
    // No tip configured: straight to the reference.
    let out = s.answer_mint(&out);
    let new = inserted(&out);
    assert_eq!(new.amount, money("2500.00"));
    assert_eq!(
        (new.payment_id.as_ref(), new.command_id.as_ref()),
        (None, None)
    );
    assert_eq!(new.tip_amount, None);
    s.commit();
    assert_eq!(s.screen_now().name(), "tap_card");
    s.tap("tok");
    let out = s.commit();
    let auth = authorizations(&out);
    assert_eq!(auth[0].submission.amount, money("2500.00"));
    assert_eq!(auth[0].submission.payment_id, None);
    s.answer(AuthResult::Approved {
        auth_code: None,
        transaction_id: "t".into(),
    });
    s.commit();
    assert_eq!(s.screen_now().name(), "approved");
}

#[test]
fn a_tip_is_part_of_the_total_the_screen_shows_and_the_card_is_charged() {
    let restored = RestoredState {
        desk: tips(),
        ..RestoredState::default()
    };
    let mut s = Shell::desk(restored, true);
    s.keys("150000o");
    let Screen::Tip {
        amount, choices, ..
    } = s.screen_now()
    else {
        panic!("expected the tip screen, got {:?}", s.screen_now());
    };
    assert_eq!(amount, money("1500.00"));
    assert_eq!(
        choices,
        [
            TipOption::Percent {
                percent: 5,
                tip: money("75.00")
            },
            TipOption::Percent {
                percent: 10,
                tip: money("150.00")
            },
            TipOption::Percent {
                percent: 15,
                tip: money("225.00")
            },
            TipOption::Fixed {
                tip: money("500.00")
            },
            TipOption::Custom,
        ]
    );
    // 2: 10%.
    let out = s.keys("2");
    assert_eq!(
        s.screen_now(),
        Screen::Processing {
            kind: TxKind::Sale,
            amount: money("1650.00"),
            tip: Some(money("150.00"))
        }
    );
    let out = s.answer_mint(&out);
    let new = inserted(&out);
    assert_eq!(new.amount, money("1650.00"));
    assert_eq!(new.tip_amount, Some(money("150.00")));
    s.commit();
    assert_eq!(
        s.screen_now(),
        Screen::TapCard {
            amount: money("1650.00"),
            tip: Some(money("150.00")),
            message: None
        }
    );
    s.tap("tok");
    let out = s.commit();
    assert_eq!(
        authorizations(&out)[0].submission.tip_amount,
        Some(money("150.00"))
    );
}

#[test]
fn no_tip_custom_tip_and_cancel_back_to_the_amount() {
    let restored = RestoredState {
        desk: tips(),
        ..RestoredState::default()
    };
    let mut s = Shell::desk(restored, true);
    // cancel on the tip screen goes back to the amount, kept.
    s.keys("1000o");
    s.keys("c");
    assert_eq!(s.screen_now().amount(), Some(money("10.00")));
    assert_eq!(s.screen_now().name(), "amount_entry");
    // 0: no tip.
    let out = s.keys("o0");
    let out = s.answer_mint(&out);
    assert_eq!(inserted(&out).amount, money("10.00"));
    assert_eq!(inserted(&out).tip_amount, None);
    s.commit();
    s.press(Button::Cancel);
    s.commit();
    s.advance(10_000);
    // 5: custom, keyed like an amount.
    s.keys("1000o5");
    assert!(matches!(
        s.screen_now(),
        Screen::Tip {
            custom: Some(_),
            ..
        }
    ));
    s.keys("250");
    assert!(matches!(s.screen_now(), Screen::Tip { custom: Some(c), .. } if c == money("2.50")));
    let out = s.keys("o");
    let out = s.answer_mint(&out);
    assert_eq!(inserted(&out).amount, money("12.50"));
    assert_eq!(inserted(&out).tip_amount, Some(money("2.50")));
}

#[test]
fn a_partner_sale_while_keying_is_rejected_busy_and_the_amount_is_kept() {
    let mut s = Shell::new(true);
    s.keys("4200");
    let before = s.screen_now();
    let out = s.sale("100.00", OfflinePolicy::PreferOnline);
    assert_eq!(
        direct_acks(&out),
        [(AckStatus::Rejected, Some(AckReason::Busy))]
    );
    assert!(persists(&out).is_empty());
    assert_eq!(s.screen_now(), before);
    // And a refund command too.
    assert!(s.t.is_busy());
    // Waiting for the reference is busy as well.
    let ok = s.keys("o");
    assert_eq!(queries(&ok), [&Query::MintReference]);
    let out = s.sale("100.00", OfflinePolicy::PreferOnline);
    assert_eq!(
        direct_acks(&out),
        [(AckStatus::Rejected, Some(AckReason::Busy))]
    );
    let out = s.answer_mint(&ok);
    assert_eq!(inserted(&out).amount, money("42.00"));
}

#[test]
fn keys_in_the_wrong_screen_change_nothing() {
    let mut s = Shell::new(true);
    for b in [Button::Ok, Button::Back, Button::Up, Button::Down] {
        let out = s.press(b);
        assert!(screens(&out).is_empty(), "{b:?} on idle rendered");
        assert!(persists(&out).is_empty());
    }
    s.sale_waiting("10.00", OfflinePolicy::PreferOnline);
    let before = s.screen_now();
    for b in [Button::Digit(5), Button::Ok, Button::Menu, Button::Up] {
        let out = s.press(b);
        assert!(persists(&out).is_empty() && screens(&out).is_empty());
    }
    assert_eq!(s.screen_now(), before);
}

#[test]
fn offline_a_keyed_amount_beyond_the_limits_is_refused_before_the_tap() {
    let mut cfg = config();
    cfg.offline_limits.floor_limit = money("100.00");
    let mut s = Shell::with(cfg, false, RestoredState::default());
    let out = s.keys("20000o");
    assert!(queries(&out).is_empty());
    assert_eq!(s.screen_now().name(), "amount_entry");
    assert_eq!(s.screen_now().amount(), Some(money("200.00")));
    assert!(s.screen_now().message().unwrap().contains("limit"));
    // Within the limit it goes on, offline.
    let out = s.keys("bo");
    let out = s.answer_mint(&out);
    assert_eq!(inserted(&out).amount, money("20.00"));
}

#[test]
fn a_failed_mint_keeps_the_amount_and_says_so() {
    let mut s = Shell::new(true);
    s.keys("999o");
    let out = s.input(Input::Answer(Answer::Failed {
        error: "disk I/O error".into(),
    }));
    assert!(persists(&out).is_empty());
    assert_eq!(s.screen_now().amount(), Some(money("9.99")));
    assert!(s.screen_now().message().unwrap().contains("Storage error"));
    assert!(
        s.t.is_busy(),
        "the keyed amount is still the cashier's work"
    );
}

// ------------------------------------------------------------- logins ---

fn with_operators() -> Shell {
    let restored = RestoredState {
        operators: vec![
            operator("op_ada", "1234", Role::Cashier),
            operator("op_sup", "987654", Role::Supervisor),
        ],
        ..RestoredState::default()
    };
    Shell::desk(restored, true)
}

#[test]
fn with_operators_the_terminal_starts_at_login_and_every_transaction_carries_the_operator() {
    let mut s = with_operators();
    assert_eq!(s.screen_now().name(), "login");
    // Digits are counted, never shown.
    s.keys("12");
    assert_eq!(
        s.screen_now(),
        Screen::Login {
            pin_len: 2,
            message: None
        }
    );
    s.keys("34o");
    assert_eq!(s.screen_now().name(), "idle");
    assert_eq!(s.t.screen().operator.unwrap().id, "op_ada");
    let out = s.keys("500o");
    let out = s.answer_mint(&out);
    assert_eq!(inserted(&out).operator_id.as_deref(), Some("op_ada"));
    // A partner sale while she is logged in carries her too.
    s.commit();
    s.press(Button::Cancel);
    s.commit();
    s.advance(10_000);
    let out = s.sale("1.00", OfflinePolicy::PreferOnline);
    assert_eq!(inserted(&out).operator_id.as_deref(), Some("op_ada"));
}

#[test]
fn three_wrong_pins_lock_the_login_for_30_seconds() {
    let mut s = with_operators();
    s.keys("1111o");
    assert!(s.screen_now().message().unwrap().contains("1 of 3"));
    s.keys("2222o3333o");
    assert_eq!(s.screen_now(), Screen::Locked { seconds: 30 });
    // Keys do nothing while locked, even the right PIN.
    s.keys("1234o");
    assert_eq!(s.screen_now().name(), "locked");
    assert_eq!(s.t.poll_timeout(), Some(Millis(30_000)));
    s.advance(30_000);
    assert_eq!(s.screen_now().name(), "login");
    s.keys("1234o");
    assert_eq!(s.screen_now().name(), "idle");
}

#[test]
fn a_pin_longer_than_six_digits_is_cut_at_six() {
    let mut s = with_operators();
    s.keys("98765432");
    assert_eq!(
        s.screen_now(),
        Screen::Login {
            pin_len: 6,
            message: None
        }
    );
    s.keys("o");
    assert_eq!(s.t.screen().operator.unwrap().id, "op_sup");
}

#[test]
fn the_operator_is_logged_out_after_inactivity_or_from_the_menu() {
    let mut s = with_operators();
    s.keys("1234o");
    s.advance(599_000);
    assert_eq!(s.screen_now().name(), "idle");
    s.advance(1_000);
    assert_eq!(s.screen_now().name(), "login");
    assert_eq!(s.t.operator_id(), None);
    s.keys("1234o");
    s.keys("m6");
    assert_eq!(s.screen_now().name(), "login");
}

#[test]
fn refund_and_z_report_are_for_supervisors_only() {
    let mut s = with_operators();
    s.keys("1234om");
    let Screen::Menu { entries, .. } = s.screen_now() else {
        panic!("expected the menu");
    };
    let labels: Vec<_> = entries.iter().map(|e| e.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "Catalog",
            "Refund",
            "X report",
            "Z report",
            "Last receipt",
            "Log out",
            "Unpair"
        ]
    );
    assert!(!entries[1].enabled && !entries[3].enabled && entries[2].enabled);
    assert!(!entries[6].enabled, "unpair is for supervisors");
    let out = s.keys("4");
    assert!(queries(&out).is_empty());
    assert_eq!(
        s.screen_now().message().as_deref(),
        Some("Supervisor only: ask your supervisor")
    );
    let out = s.keys("2");
    assert!(queries(&out).is_empty());
    // An X report is for everyone.
    let out = s.keys("3");
    assert_eq!(queries(&out), [&Query::XReport]);
    // The supervisor may.
    s.input(Input::Answer(Answer::Failed { error: "x".into() }));
    s.keys("c");
    s.keys("m6987654o");
    let out = s.keys("m4");
    assert!(matches!(
        queries(&out).as_slice(),
        [Query::CloseShift { operator_id: Some(o), .. }] if o == "op_sup"
    ));
}

#[test]
fn a_supervisor_unpairs_from_the_menu_after_confirming_and_the_shell_may_refuse() {
    let mut s = with_operators();
    s.keys("987654o");
    let out = s.keys("m7");
    assert!(queries(&out).is_empty(), "nothing asked before OK");
    let Screen::Menu { title, .. } = s.screen_now() else {
        panic!("expected the question");
    };
    assert_eq!(title, "Unpair this terminal?");
    // Back keeps it paired.
    s.keys("b");
    assert_eq!(s.screen_now().name(), "menu");
    s.keys("7");
    let out = s.keys("o");
    assert_eq!(queries(&out), [&Query::Unpair]);
    s.input(Input::Answer(Answer::UnpairRefused {
        reason: "3 items not yet sent to the backend; connect the terminal and wait, then unpair"
            .into(),
    }));
    assert!(
        s.screen_now()
            .message()
            .is_some_and(|m| m.starts_with("3 items not yet sent"))
    );
    s.keys("7");
    let out = s.keys("o");
    assert_eq!(queries(&out), [&Query::Unpair]);
    s.input(Input::Answer(Answer::Unpaired));
    assert_eq!(
        s.screen_now().message().as_deref(),
        Some("Unpaired: showing a pairing code")
    );
}

// ------------------------------------------------------------ catalog ---

#[test]
fn the_catalog_builds_a_cart_whose_total_is_paid_with_its_items() {
    let restored = RestoredState {
        catalog: catalog(),
        ..RestoredState::default()
    };
    let mut s = Shell::desk(restored, true);
    s.keys("m1");
    assert_eq!(s.screen_now().name(), "catalog");
    // 1 ok ok: two beers; 2 ok: a water; back removes the water.
    s.keys("1oo2o");
    let Screen::Catalog {
        qty,
        cart_total,
        cart_count,
        ..
    } = s.screen_now()
    else {
        panic!("expected the catalog");
    };
    assert_eq!(qty, [2, 1, 0]);
    assert_eq!((cart_total, cart_count), (money("3300.00"), 3));
    s.keys("b");
    assert_eq!(s.screen_now().amount(), Some(money("3000.00")));
    // A number beyond the catalog is refused.
    s.keys("9");
    assert_eq!(s.screen_now().message().as_deref(), Some("No item 9"));
    // down moves to the next item; ok adds it.
    s.keys("dd");
    s.keys("o");
    let out = s.keys("m");
    let out = s.answer_mint(&out);
    let new = inserted(&out);
    assert_eq!(new.amount, money("5000.00"));
    assert_eq!(
        new.items,
        [
            LineItem {
                item_id: "beer".into(),
                name: "Beer".into(),
                qty: 2,
                unit_price: money("1500.00")
            },
            LineItem {
                item_id: "suya".into(),
                name: "Suya".into(),
                qty: 1,
                unit_price: money("2000.00")
            },
        ]
    );
}

#[test]
fn a_cart_in_progress_makes_the_terminal_busy() {
    let restored = RestoredState {
        catalog: catalog(),
        ..RestoredState::default()
    };
    let mut s = Shell::desk(restored, true);
    s.keys("m1");
    assert!(!s.t.is_busy(), "an empty cart is nobody's work");
    s.keys("1o");
    let out = s.sale("1.00", OfflinePolicy::PreferOnline);
    assert_eq!(
        direct_acks(&out),
        [(AckStatus::Rejected, Some(AckReason::Busy))]
    );
    assert_eq!(s.screen_now().amount(), Some(money("1500.00")));
}

#[test]
fn without_a_catalog_the_menu_says_so() {
    let mut s = Shell::new(true);
    s.keys("m1");
    assert_eq!(s.screen_now().name(), "menu");
    assert_eq!(
        s.screen_now().message().as_deref(),
        Some("No catalog for this event")
    );
    s.keys("c");
    assert_eq!(s.screen_now().name(), "idle");
}

// ------------------------------------------------------------ refunds ---

#[test]
fn a_refund_from_the_menu_picks_a_sale_and_needs_the_same_card() {
    let mut s = Shell::new(true);
    let sale = s.approved_online_sale("3000.00", "alice");
    s.advance(10_000);
    let out = s.keys("m2");
    assert_eq!(queries(&out), [&Query::RecentSales { limit: 20 }]);
    let original = OriginalSale {
        reference: sale.clone(),
        kind: TxKind::Sale,
        state: TxState::Approved,
        amount: money("3000.00"),
        refundable_left: money("3000.00"),
        card_token: token("alice"),
    };
    s.input(Input::Answer(Answer::RecentSales(vec![original])));
    let Screen::Menu {
        entries, selected, ..
    } = s.screen_now()
    else {
        panic!("expected the picker");
    };
    assert_eq!(selected, Some(0));
    assert!(entries[0].label.contains("000001"));
    // ok: the amount, prefilled with what is left; more cannot be refunded.
    s.keys("o");
    assert_eq!(s.screen_now().amount(), Some(money("3000.00")));
    s.keys("1");
    assert!(s.screen_now().message().is_none());
    s.keys("o");
    assert!(s.screen_now().message().unwrap().contains("left to refund"));
    let out = s.keys("bo");
    let out = s.answer_mint(&out);
    let new = inserted(&out);
    assert_eq!(new.kind, TxKind::Refund);
    assert_eq!(new.amount, money("3000.00"));
    assert_eq!(new.original_reference.as_ref(), Some(&sale));
    s.commit();
    assert_eq!(s.screen_now().name(), "refund_tap");
    // Another card: declined as not the sale's card.
    s.tap("bob");
    s.commit();
    assert!(matches!(
        s.screen_now(),
        Screen::Declined {
            reason: DeclineReason::CardMismatch,
            ..
        }
    ));
}

#[test]
fn a_refund_can_be_keyed_by_the_sale_number() {
    let mut s = Shell::new(true);
    s.keys("m2");
    s.input(Input::Answer(Answer::RecentSales(Vec::new())));
    let out = s.keys("42o");
    let reference = Reference::for_sequence(&TerminalId::new(TID).unwrap(), 42);
    assert_eq!(queries(&out), [&Query::Original { reference }]);
    s.input(Input::Answer(Answer::Original(None)));
    assert_eq!(
        s.screen_now().message().as_deref(),
        Some("No sale no. 42 to refund")
    );
}

// ------------------------------------------------------------ reports ---

#[test]
fn x_and_z_reports_are_shown_from_the_ledger() {
    let mut s = Shell::new(true);
    let out = s.keys("m3");
    assert_eq!(queries(&out), [&Query::XReport]);
    let report = ShiftReport {
        kind: ReportKind::X,
        shift_no: 4,
        opened_at: Some(UnixMillis(1)),
        closed_at: None,
        totals: Default::default(),
    };
    s.input(Input::Answer(Answer::Report(report.clone())));
    assert_eq!(
        s.screen_now(),
        Screen::Report {
            report,
            names: Vec::new()
        }
    );
    s.keys("o");
    assert_eq!(s.screen_now().name(), "idle");
    // Without operators nobody logs in, and the Z report is allowed.
    let out = s.keys("m4");
    assert!(matches!(
        queries(&out).as_slice(),
        [Query::CloseShift {
            operator_id: None,
            ..
        }]
    ));
}

#[test]
fn the_menu_opens_with_menu_and_closes_with_cancel_or_back() {
    let mut s = Shell::new(true);
    s.keys("m");
    assert_eq!(s.screen_now().name(), "menu");
    s.keys("b");
    assert_eq!(s.screen_now().name(), "idle");
    s.keys("m5");
    assert_eq!(
        s.screen_now().message().as_deref(),
        Some("No receipt printer on this terminal")
    );
    s.keys("c");
    assert_eq!(s.screen_now().name(), "idle");
}

#[test]
fn stopping_drops_the_keyed_amount_and_starts_nothing_new() {
    let mut s = Shell::new(true);
    s.keys("4200");
    assert!(s.t.is_busy());
    s.input(Input::Stopping);
    assert!(!s.t.is_busy(), "a keyed amount does not hold up a stop");
    assert_eq!(s.screen_now().name(), "idle");
    let out = s.keys("100o");
    assert!(queries(&out).is_empty());
    assert!(s.screen_now().message().unwrap().contains("stopping"));
    let out = s.sale("1.00", OfflinePolicy::PreferOnline);
    assert_eq!(
        direct_acks(&out),
        [(AckStatus::Rejected, Some(AckReason::Busy))]
    );
}

#[test]
fn a_held_intake_lets_the_payment_finish_and_starts_nothing_new_until_resumed() {
    let mut s = Shell::new(true);
    s.sale_waiting("10.00", OfflinePolicy::PreferOnline);
    // Unlike a stop, a hold leaves the payment waiting for its card.
    let out = s.input(Input::HoldIntake(true));
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(s.screen_now().name(), "tap_card");
    let out = s.sale("20.00", OfflinePolicy::PreferOnline);
    assert_eq!(
        direct_acks(&out),
        [(AckStatus::Rejected, Some(AckReason::Busy))]
    );
    s.tap("tok-hold");
    s.commit();
    s.answer(AuthResult::Approved {
        auth_code: None,
        transaction_id: "tx-hold".into(),
    });
    s.commit();
    assert_eq!(s.screen_now().name(), "approved");
    assert!(s.t.active_reference().is_none());
    // Held and idle: the POS is told busy, the keypad says why.
    let out = s.sale("30.00", OfflinePolicy::PreferOnline);
    assert_eq!(
        direct_acks(&out),
        [(AckStatus::Rejected, Some(AckReason::Busy))]
    );
    s.advance(10_000);
    let out = s.keys("100o");
    assert!(queries(&out).is_empty(), "{out:?}");
    assert_eq!(
        s.screen_now().message().as_deref(),
        Some("Terminal updating: try again in a few minutes")
    );
    s.keys("cc");
    assert_eq!(s.screen_now().name(), "idle");
    // Resumed: sales start again.
    s.input(Input::HoldIntake(false));
    s.sale("40.00", OfflinePolicy::PreferOnline);
    s.commit();
    assert_eq!(s.screen_now().name(), "tap_card");
}

#[test]
fn stopping_cancels_a_payment_waiting_for_its_card() {
    let mut s = Shell::new(true);
    s.sale_waiting("10.00", OfflinePolicy::PreferOnline);
    let out = s.input(Input::Stopping);
    assert!(out.contains(&Output::StopReader));
    s.commit();
    assert!(!s.t.is_busy());
    assert_eq!(s.screen_now().name(), "cancelled");
}

#[test]
fn the_session_closing_ends_a_sale_being_keyed_but_not_a_refund() {
    let mut s = Shell::new(true);
    s.keys("4200");
    s.input(Input::SessionStatus {
        status: SessionStatus::Closed,
        totals: None,
    });
    assert_eq!(s.screen_now().name(), "session_closed");
    assert!(!s.t.is_busy());
    // A refund from the menu is still possible.
    let out = s.keys("m2");
    assert_eq!(queries(&out), [&Query::RecentSales { limit: 20 }]);
    s.input(Input::Answer(Answer::RecentSales(Vec::new())));
    s.input(Input::Command(Command::SessionClosed(
        SessionClosedCommand {
            command_id: CommandId("c".into()),
            totals: None,
        },
    )));
    assert_eq!(s.screen_now().name(), "menu", "the refund picker stays");
}

// ----------------------------------------------------------- receipts ---

fn prints(out: &[Output]) -> Vec<&PrintJob> {
    out.iter()
        .filter_map(|o| match o {
            Output::Print(j) => Some(j),
            _ => None,
        })
        .collect()
}

fn with_printer(receipt_print: proto::wire::ReceiptPrint) -> Shell {
    let mut cfg = config();
    cfg.printer = true;
    let restored = RestoredState {
        desk: DeskConfig {
            receipt_print,
            ..DeskConfig::spec_default()
        },
        ..RestoredState::default()
    };
    Shell::with(cfg, true, restored)
}

/// An online keypad sale up to its approved screen; the outputs of the
/// commit that shows it.
fn approved_keypad_sale(s: &mut Shell) -> (Reference, Vec<Output>) {
    let out = s.keys("100o");
    s.answer_mint(&out);
    s.commit();
    let app = CardApp {
        aid: Some("A0000000031010".into()),
        label: Some("VISA CREDIT".into()),
    };
    let out = s.input(Input::CardRead {
        card: card("tok"),
        app: app.clone(),
    });
    s.commit();
    // The card's application is recorded with the card, for the receipt.
    let update = persists(&out)
        .iter()
        .find_map(|p| match &p.change.tx {
            Some(TxWrite::Update(u)) if u.card.is_some() => Some(u.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(update.card_app, Some(app));
    let reference = s.t.active_reference().unwrap().clone();
    s.answer(AuthResult::Approved {
        auth_code: Some("A1".into()),
        transaction_id: "t".into(),
    });
    (reference, s.commit())
}

#[test]
fn auto_prints_the_cashiers_copy_and_ok_the_customers() {
    let mut s = with_printer(proto::wire::ReceiptPrint::Auto);
    let (reference, out) = approved_keypad_sale(&mut s);
    assert_eq!(s.screen_now().name(), "approved");
    assert_eq!(
        prints(&out),
        [&PrintJob::Receipt {
            reference: reference.clone(),
            copy: ReceiptCopy::Cashier
        }]
    );
    assert_eq!(
        s.screen_now().message().as_deref(),
        Some("Print receipt? Press OK")
    );
    let out = s.keys("o");
    assert_eq!(
        prints(&out),
        [&PrintJob::Receipt {
            reference: reference.clone(),
            copy: ReceiptCopy::Customer
        }]
    );
    assert_eq!(s.screen_now().name(), "idle");
    // The menu's Last receipt reprints it.
    let out = s.keys("m5");
    assert_eq!(
        prints(&out),
        [&PrintJob::Receipt {
            reference,
            copy: ReceiptCopy::Reprint
        }]
    );
}

#[test]
fn ask_prints_only_on_ok_and_off_never_by_itself() {
    let mut s = with_printer(proto::wire::ReceiptPrint::Ask);
    let (_, out) = approved_keypad_sale(&mut s);
    assert!(prints(&out).is_empty());
    assert_eq!(prints(&s.keys("o")).len(), 1);

    let mut s = with_printer(proto::wire::ReceiptPrint::Off);
    let (_, out) = approved_keypad_sale(&mut s);
    assert!(prints(&out).is_empty());
    assert_eq!(s.screen_now().message(), None);
    assert!(prints(&s.keys("o")).is_empty());
    // Still reprintable from the menu.
    assert_eq!(prints(&s.keys("m5")).len(), 1);
}

#[test]
fn without_a_printer_nothing_is_printed_and_the_menu_says_why() {
    let mut s = Shell::new(true);
    let (_, out) = approved_keypad_sale(&mut s);
    assert!(prints(&out).is_empty());
    s.keys("o");
    let out = s.keys("m5");
    assert!(prints(&out).is_empty());
    assert_eq!(
        s.screen_now().message().as_deref(),
        Some("No receipt printer on this terminal")
    );
}

#[test]
fn a_z_report_is_printed_as_it_closes_the_shift() {
    let mut s = with_printer(proto::wire::ReceiptPrint::Auto);
    // Nothing to reprint yet.
    s.keys("m5");
    assert_eq!(
        s.screen_now().message().as_deref(),
        Some("No receipt to print yet")
    );
    s.keys("4");
    let report = ShiftReport {
        kind: ReportKind::Z,
        shift_no: 1,
        opened_at: None,
        closed_at: Some(UnixMillis(5)),
        totals: Default::default(),
    };
    let out = s.input(Input::Answer(Answer::Report(report.clone())));
    assert_eq!(prints(&out), [&PrintJob::Report(report.clone())]);
    // ok on the report prints it again and closes it.
    let out = s.keys("o");
    assert_eq!(prints(&out), [&PrintJob::Report(report)]);
    assert_eq!(s.screen_now().name(), "idle");
}

#[test]
fn the_result_screen_carries_the_receipt_url_online_and_offline() {
    let mut cfg = config();
    cfg.receipt_base = Some("http://sim.example/".into());
    let mut s = Shell::with(cfg.clone(), true, RestoredState::default());
    s.sale_waiting("10.00", OfflinePolicy::PreferOnline);
    s.tap("tok");
    s.commit();
    let reference = s.t.active_reference().unwrap().clone();
    s.input(Input::AuthAnswer {
        reference,
        result: AuthResult::Approved {
            auth_code: None,
            transaction_id: "txn_1".into(),
        },
        receipt_url: Some("http://sim.example/r/txn_1".into()),
    });
    s.commit();
    assert!(matches!(
        s.screen_now(),
        Screen::Approved { receipt_url: Some(u), .. } if u == "http://sim.example/r/txn_1"
    ));
    // Offline the terminal names the receipt the backend will have.
    let mut s = Shell::with(cfg, false, RestoredState::default());
    s.sale_waiting("10.00", OfflinePolicy::PreferOnline);
    let reference = s.t.active_reference().unwrap().clone();
    s.tap("tok");
    s.commit();
    let want = format!("http://sim.example/r/ref/{reference}");
    assert!(matches!(
        s.screen_now(),
        Screen::Approved { receipt_url: Some(u), .. } if u == want
    ));
}

#[test]
fn a_printer_problem_is_on_the_screen_until_it_prints_again() {
    let mut s = Shell::new(true);
    let out = s.input(Input::PrinterProblem(Some("Printer: out of paper".into())));
    assert_eq!(
        s.t.screen().printer_problem.as_deref(),
        Some("Printer: out of paper")
    );
    assert_eq!(screens(&out).len(), 1, "the idle screen is drawn again");
    s.input(Input::PrinterProblem(None));
    assert_eq!(s.t.screen().printer_problem, None);
}
