//! Pay by bank transfer end to end (SPEC 7.7): kler-sim's sandbox bank
//! credits the session's collection account, the terminal learns it on its
//! command stream. A keypad sale paid in two parts, a partner sale paid by
//! transfer, a cancelled transfer whose late credit stays unmatched, and a
//! credit of the wrong amount that never settles.

use e2e_tests::scenario::{STEP_TIMEOUT, ngn};
use e2e_tests::terminal::AgentOptions;
use e2e_tests::transfer::{PAYER_BANK, PAYER_NAME, shown_code};
use proto::wire::{CreditStatus, PaymentStatus};

use crate::common::scene;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keypad_sale_paid_in_two_transfers_is_approved_as_an_account_payment() {
    let (_dir, mut s) = scene(1, AgentOptions::default()).await;
    let sid = s.session_id().clone();
    let view = s.key_transfer(0, ngn(250_000)).await.unwrap();
    let transfer = view.transfer.clone().unwrap();
    let code = shown_code(&view).unwrap();
    assert_eq!(code.len(), 6);
    let account = s.backend.account_number(&sid).await.unwrap();
    assert_eq!(transfer["account_number"].as_str(), Some(account.as_str()));
    assert_eq!(transfer["amount"].as_str(), Some("2500.00"));
    assert_eq!(transfer["status"].as_str(), Some("waiting"));
    // The registration reaches the sim through the outbox.
    let dev = s.terminals[0].device().unwrap().clone();
    dev.wait_for("registration sent", STEP_TIMEOUT, |v| v.queued == 0)
        .await
        .unwrap();

    let first = s
        .backend
        .sandbox_transfer(&account, ngn(100_000), &format!("drinks {code}"))
        .await
        .unwrap();
    assert_eq!(first.status, CreditStatus::Partial);
    let view = dev
        .wait_for("part received", STEP_TIMEOUT, |v| {
            v.transfer.as_ref().and_then(|t| t["received"].as_str()) == Some("1000.00")
        })
        .await
        .unwrap();
    assert_eq!(view.screen, "transfer");
    assert_eq!(
        view.message.as_deref(),
        Some("Received NGN 1,000.00 of NGN 2,500.00")
    );
    let rest = s
        .backend
        .sandbox_transfer(&account, ngn(150_000), &code)
        .await
        .unwrap();
    assert_eq!(rest.status, CreditStatus::Matched);
    let reference = rest.matched_reference.clone().unwrap();
    let view = dev.wait_screen("approved", STEP_TIMEOUT).await.unwrap();
    let message = view.message.clone().unwrap_or_default();
    assert!(message.starts_with("Transfer received"), "{message}");

    // Nothing about it is forwarded with POST /transactions (that would
    // be refused without a card and parked): the queue drains to zero.
    dev.wait_for("queue drained", STEP_TIMEOUT, |v| v.queued == 0)
        .await
        .unwrap();
    let t = &s.terminals[0];
    let record = s
        .backend
        .lookup(&t.id, &t.credentials().unwrap(), reference.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.channel.as_str(), "account");
    assert!(record.card.is_none());
    assert_eq!(record.amount.to_wire(), "2500.00");
    let rec = s.backend.reconciliation(&sid).await.unwrap();
    assert_eq!(rec.by_channel.get("account").map(|c| c.count), Some(1));
    s.stop_agents().await.unwrap();
    let ledger = store::Store::open_read_only(s.terminals[0].ledger_path()).unwrap();
    let row = ledger.transaction(&reference).unwrap().unwrap();
    assert_eq!(row.state, store::TxState::Approved);
    assert_eq!(row.channel, store::Channel::Account);
    assert_eq!(row.payer_name.as_deref(), Some(PAYER_NAME));
    assert_eq!(row.payer_bank.as_deref(), Some(PAYER_BANK));
    assert_eq!(row.transfer_code.as_deref(), Some(code.as_str()));
    assert!(row.card.is_none());
    assert!(
        ledger.list_outbox().unwrap().is_empty(),
        "nothing left to send or parked"
    );
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_sale_paid_by_transfer_ends_approved_with_channel_account() {
    let (_dir, mut s) = scene(1, AgentOptions::default()).await;
    let sid = s.session_id().clone();
    let p = s.request_payment(0, ngn(300_000), None).await.unwrap();
    let dev = s.terminals[0].device().unwrap().clone();
    dev.wait_screen("tap_card", STEP_TIMEOUT).await.unwrap();
    dev.press("down").await.unwrap();
    let view = dev
        .wait_for("the code", STEP_TIMEOUT, |v| {
            shown_code(v).is_some() && v.queued == 0
        })
        .await
        .unwrap();
    let code = shown_code(&view).unwrap();
    let account = s.backend.account_number(&sid).await.unwrap();
    let credit = s
        .backend
        .sandbox_transfer(&account, ngn(300_000), &code)
        .await
        .unwrap();
    assert_eq!(credit.status, CreditStatus::Matched);
    dev.wait_screen("approved", STEP_TIMEOUT).await.unwrap();
    let done = s
        .backend
        .wait_final(&p.payment_id, STEP_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(done.status, PaymentStatus::Approved, "{done:?}");
    let tx = done.transaction.unwrap();
    assert_eq!(tx.channel.as_str(), "account");
    assert_eq!(tx.payer.map(|p| p.name).as_deref(), Some(PAYER_NAME));
    dev.wait_for("queue drained", STEP_TIMEOUT, |v| {
        v.queued == 0 && v.parked == 0
    })
    .await
    .unwrap();
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_transfer_leaves_a_later_credit_unmatched() {
    let (_dir, mut s) = scene(1, AgentOptions::default()).await;
    let sid = s.session_id().clone();
    let view = s.key_transfer(0, ngn(120_000)).await.unwrap();
    let code = shown_code(&view).unwrap();
    let dev = s.terminals[0].device().unwrap().clone();
    dev.wait_for("registered", STEP_TIMEOUT, |v| v.queued == 0)
        .await
        .unwrap();
    // Up goes back to the card (the registration is cancelled), cancel
    // ends the sale.
    dev.press("up").await.unwrap();
    dev.wait_screen("tap_card", STEP_TIMEOUT).await.unwrap();
    dev.press("cancel").await.unwrap();
    dev.wait_screen("cancelled", STEP_TIMEOUT).await.unwrap();
    dev.wait_for("cancellation sent", STEP_TIMEOUT, |v| {
        v.queued == 0 && v.parked == 0
    })
    .await
    .unwrap();
    let account = s.backend.account_number(&sid).await.unwrap();
    let late = s
        .backend
        .sandbox_transfer(&account, ngn(120_000), &code)
        .await
        .unwrap();
    assert_eq!(late.status, CreditStatus::Unmatched);
    assert!(late.matched_reference.is_none());
    let statement = s.backend.account_statement(&sid).await.unwrap();
    assert!(
        statement
            .iter()
            .any(|e| e.status == CreditStatus::Unmatched && e.narration == code)
    );
    let rec = s.backend.reconciliation(&sid).await.unwrap();
    assert_eq!(rec.unmatched_credits.count, 1);
    assert_eq!(rec.by_channel.get("account").map_or(0, |c| c.count), 0);
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credit_of_the_wrong_amount_never_settles() {
    let (_dir, mut s) = scene(1, AgentOptions::default()).await;
    let sid = s.session_id().clone();
    let view = s.key_transfer(0, ngn(200_000)).await.unwrap();
    let code = shown_code(&view).unwrap();
    let dev = s.terminals[0].device().unwrap().clone();
    dev.wait_for("registered", STEP_TIMEOUT, |v| v.queued == 0)
        .await
        .unwrap();
    let account = s.backend.account_number(&sid).await.unwrap();
    // More than the payment: not this payment's money.
    let wrong = s
        .backend
        .sandbox_transfer(&account, ngn(250_000), &code)
        .await
        .unwrap();
    assert_eq!(wrong.status, CreditStatus::Unmatched);
    // The right amount with another code: not it either.
    let other = if code == "999999" { "111111" } else { "999999" };
    let wrong_code = s
        .backend
        .sandbox_transfer(&account, ngn(200_000), other)
        .await
        .unwrap();
    assert_eq!(wrong_code.status, CreditStatus::Unmatched);
    let view = dev.screen().await.unwrap();
    assert_eq!(view.screen, "transfer");
    let t = view.transfer.unwrap();
    assert_eq!(t["received"].as_str(), Some("0.00"));
    assert_eq!(t["status"].as_str(), Some("waiting"));
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_registration_is_parked_and_the_card_still_pays() {
    let (_dir, mut s) = scene(1, AgentOptions::default()).await;
    let t = &s.terminals[0];
    let tid = t.id.clone();
    // Another registration of this terminal holds the code its first sale
    // will show: the sale's registration is refused `code_in_use`.
    let first = proto::Reference::for_sequence(&tid, 1);
    let code = pos_agent::core::transfer_code(&tid, &first);
    let squatter = proto::Reference::for_sequence(&tid, 900);
    let body = serde_json::json!({
        "reference": squatter.as_str(), "amount": "10.00", "currency": "NGN",
        "code": code.as_str(), "expires_at": "2099-01-01T00:00:00Z"
    });
    let bytes = serde_json::to_vec(&body).unwrap();
    let client = kler_sim::client::SignedClient::new(
        s.backend.http().clone(),
        s.backend.url(),
        t.credentials().unwrap(),
    );
    let rb = client
        .request(
            reqwest::Method::POST,
            &format!("/v1/terminals/{tid}/transfers"),
            &bytes,
        )
        .unwrap()
        .header("content-type", "application/json")
        .body(bytes.clone());
    let _: serde_json::Value = e2e_tests::backend::send_enveloped("squat a code", rb)
        .await
        .unwrap();

    // The refusal may come before the code was ever read off the screen.
    let dev = s.terminals[0].device().unwrap().clone();
    dev.keys("80000").await.unwrap();
    dev.press("ok").await.unwrap();
    dev.wait_screen("tap_card", STEP_TIMEOUT).await.unwrap();
    dev.press("down").await.unwrap();
    let view = dev
        .wait_for("transfer unavailable", STEP_TIMEOUT, |v| {
            v.transfer.as_ref().and_then(|t| t["status"].as_str()) == Some("unavailable")
                && v.parked == 1
        })
        .await
        .unwrap();
    assert!(shown_code(&view).is_none(), "no code to pay with");
    dev.press("up").await.unwrap();
    dev.wait_screen("tap_card", STEP_TIMEOUT).await.unwrap();
    let view = s.tap_for_result(0, "visa_ok").await.unwrap();
    assert_eq!(view.screen, "approved", "{}", view.summary());
    s.stop_agents().await.unwrap();
    let ledger = store::Store::open_read_only(s.terminals[0].ledger_path()).unwrap();
    let items = ledger.list_outbox().unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0].kind, store::OutboxKind::TransferRegister);
    assert!(items[0].parked);
    assert!(
        items[0]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("code_in_use"),
        "{items:?}"
    );
    let row = ledger.transaction(&first).unwrap().unwrap();
    assert_eq!(row.state, store::TxState::Approved);
    assert_eq!(row.channel, store::Channel::Card);
    s.shutdown().await.unwrap();
}
