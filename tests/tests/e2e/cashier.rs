//! The cashier's terminal end to end (SPEC 7): a keypad sale forwarded
//! without a payment id, the partner's sale refused `busy` while the
//! cashier keys, and operators kept in the ledger for a login while
//! offline after a restart.

use e2e_tests::proxy::LinkState;
use e2e_tests::scenario::STEP_TIMEOUT;
use e2e_tests::terminal::AgentOptions;
use proto::wire::PaymentStatus;

use crate::common::scene;

/// Terminal 0's statement at the backend.
async fn statement(s: &e2e_tests::scenario::Scene) -> Vec<proto::wire::TransactionRecord> {
    let t = &s.terminals[0];
    s.backend
        .statement(&t.id, &t.credentials().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keypad_sale_is_forwarded_as_a_pos_transaction_without_payment_id() {
    let (_dir, mut s) = scene(1, AgentOptions::default()).await;
    let dev = s.terminals[0].device().unwrap().clone();
    dev.keys("123450").await.unwrap();
    let view = dev
        .wait_for("amount 1234.50", STEP_TIMEOUT, |v| {
            v.screen == "amount_entry" && v.amount.as_deref() == Some("1234.50")
        })
        .await
        .unwrap();
    assert_eq!(view.total, None);
    dev.press("ok").await.unwrap();
    dev.wait_screen("tap_card", STEP_TIMEOUT).await.unwrap();
    let view = s.tap_for_result(0, "visa_ok").await.unwrap();
    assert_eq!(view.screen, "approved", "{}", view.summary());
    let t = &s.terminals[0];
    let statement = statement(&s).await;
    assert_eq!(statement.len(), 1);
    let line = &statement[0];
    assert_eq!(line.payment_id, None);
    assert_eq!(line.channel.as_str(), "pos");
    assert_eq!(line.amount.to_wire(), "1234.50");
    assert!(line.reference.as_str().starts_with(t.id.as_str()));
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_sale_while_the_cashier_keys_is_refused_busy_and_the_amount_stays() {
    let (_dir, s) = scene(1, AgentOptions::default()).await;
    let dev = s.terminals[0].device().unwrap().clone();
    dev.keys("5000").await.unwrap();
    dev.wait_for("amount 50.00", STEP_TIMEOUT, |v| {
        v.amount.as_deref() == Some("50.00")
    })
    .await
    .unwrap();
    let tid = s.terminals[0].id.clone();
    // The backend refuses at once when its last heartbeat already said
    // busy; otherwise the terminal rejects the command `busy`.
    match s
        .backend
        .create_payment(
            &tid,
            e2e_tests::scenario::ngn(10_000),
            "busy-1",
            None,
            "busy-1",
        )
        .await
    {
        Ok(p) => {
            let done = s
                .backend
                .wait_final(&p.payment_id, STEP_TIMEOUT)
                .await
                .unwrap();
            assert_ne!(done.status, PaymentStatus::Approved);
            assert_eq!(done.reason.as_deref(), Some("busy"), "{done:?}");
        }
        Err(e2e_tests::HarnessError::Api { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (409, "terminal_busy"));
        }
        Err(e) => panic!("create payment: {e}"),
    }
    let view = dev.screen().await.unwrap();
    assert_eq!(
        (view.screen.as_str(), view.amount.as_deref()),
        ("amount_entry", Some("50.00"))
    );
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_are_kept_for_a_login_while_offline_after_a_restart() {
    let (_dir, mut s) = scene(1, AgentOptions::default()).await;
    let sid = s.session_id().clone();
    let ada = s
        .backend
        .create_operator(&sid, "Ada", "cashier", "4321")
        .await
        .unwrap();
    let dev = s.terminals[0].device().unwrap().clone();
    dev.wait_screen("login", STEP_TIMEOUT).await.unwrap();
    s.terminals[0].stop().await.unwrap();
    // The venue network is down when the terminal comes back.
    s.terminals[0].proxy().set(LinkState::Refuse);
    s.terminals[0].start().await.unwrap();
    let dev = s.terminals[0].device().unwrap().clone();
    dev.wait_for("login, offline", STEP_TIMEOUT, |v| {
        v.screen == "login" && v.offline
    })
    .await
    .unwrap();
    dev.keys("4321").await.unwrap();
    dev.press("ok").await.unwrap();
    dev.wait_for("Ada logged in", STEP_TIMEOUT, |v| {
        v.screen == "idle" && v.operator.as_deref() == Some(ada.as_str())
    })
    .await
    .unwrap();
    dev.keys("70000").await.unwrap();
    dev.press("ok").await.unwrap();
    dev.wait_screen("tap_card", STEP_TIMEOUT).await.unwrap();
    let view = s.tap_for_result(0, "visa_ok").await.unwrap();
    assert_eq!(view.screen, "approved", "{}", view.summary());
    s.terminals[0].proxy().set(LinkState::Up);
    dev.wait_for("drained", STEP_TIMEOUT, |v| !v.offline && v.queued == 0)
        .await
        .unwrap();
    let statement = statement(&s).await;
    assert_eq!(statement.len(), 1);
    assert_eq!(statement[0].operator_id.as_deref(), Some(ada.as_str()));
    assert!(statement[0].offline);
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_from_the_menu_picks_the_last_sale_and_needs_its_card() {
    let (_dir, mut s) = scene(1, AgentOptions::default()).await;
    let dev = s.terminals[0].device().unwrap().clone();
    dev.keys("300000").await.unwrap();
    dev.press("ok").await.unwrap();
    dev.wait_screen("tap_card", STEP_TIMEOUT).await.unwrap();
    let view = s.tap_for_result(0, "mc_ok").await.unwrap();
    assert_eq!(view.screen, "approved");
    dev.press("ok").await.unwrap();
    dev.wait_screen("idle", STEP_TIMEOUT).await.unwrap();
    // Without operators nobody logs in and the refund is allowed.
    dev.press("menu").await.unwrap();
    dev.wait_screen("menu", STEP_TIMEOUT).await.unwrap();
    dev.press("2").await.unwrap();
    let view = dev
        .wait_for("the refund picker", STEP_TIMEOUT, |v| {
            v.screen == "menu" && v.menu.as_ref().is_some_and(|m| m.len() == 1)
        })
        .await
        .unwrap();
    assert!(
        view.menu.as_ref().unwrap()[0].contains("000001"),
        "{:?}",
        view.menu
    );
    dev.press("ok").await.unwrap();
    dev.wait_for("the refund amount, prefilled", STEP_TIMEOUT, |v| {
        v.screen == "amount_entry" && v.amount.as_deref() == Some("3000.00")
    })
    .await
    .unwrap();
    // Only part of it: 1,000.00.
    dev.press("cancel").await.unwrap();
    dev.keys("100000").await.unwrap();
    dev.press("ok").await.unwrap();
    dev.wait_screen("refund_tap", STEP_TIMEOUT).await.unwrap();
    // Another card is refused; nothing refunded.
    let view = s.tap_for_result(0, "visa_ok").await.unwrap();
    assert_eq!(view.screen, "declined", "{}", view.summary());
    dev.press("ok").await.unwrap();
    dev.wait_screen("idle", STEP_TIMEOUT).await.unwrap();
    dev.press("menu").await.unwrap();
    dev.wait_screen("menu", STEP_TIMEOUT).await.unwrap();
    dev.press("2").await.unwrap();
    dev.wait_for("the refund picker", STEP_TIMEOUT, |v| {
        v.menu.as_ref().is_some_and(|m| m.len() == 1)
    })
    .await
    .unwrap();
    dev.press("ok").await.unwrap();
    dev.wait_screen("amount_entry", STEP_TIMEOUT).await.unwrap();
    dev.press("cancel").await.unwrap();
    dev.keys("100000").await.unwrap();
    dev.press("ok").await.unwrap();
    dev.wait_screen("refund_tap", STEP_TIMEOUT).await.unwrap();
    let view = s.tap_for_result(0, "mc_ok").await.unwrap();
    assert_eq!(view.screen, "approved", "{}", view.summary());
    let t = &s.terminals[0];
    let statement = statement(&s).await;
    let refunds: Vec<_> = statement
        .iter()
        .filter(|r| r.kind == proto::wire::TxKind::Refund)
        .collect();
    assert_eq!(refunds.len(), 1, "{statement:?}");
    assert_eq!(refunds[0].amount.to_wire(), "1000.00");
    assert_eq!(
        refunds[0]
            .original_reference
            .as_ref()
            .map(|r| r.as_str().to_owned()),
        Some(format!("{}-000001", t.id))
    );
    s.shutdown().await.unwrap();
}
