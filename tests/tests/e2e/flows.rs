//! The demo's flows, one test each, plus the whole demo scenario with the
//! end-of-day reconciliation.

use e2e_tests::reconcile;
use e2e_tests::scenario::ngn;
use e2e_tests::script;
use e2e_tests::terminal::AgentOptions;
use proto::wire::PaymentStatus;

use crate::common::scene;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_scenario_reconciles() {
    let (_dir, mut s) = scene(2, AgentOptions::default()).await;
    let outcome = script::run(&mut s, true)
        .await
        .expect("the demo scenario runs");
    assert_eq!(outcome.approved_sales, 3);
    // Two drained after the outage, one after the lost authorization.
    assert_eq!(outcome.offline_sales, 3);
    s.stop_agents().await.expect("agents stop");
    let report = reconcile::reconcile(&s).await.expect("reconciliation");
    print!("{}", report.render());
    assert!(
        report.all_match(),
        "ledgers and backend differ:\n{}",
        report.render()
    );
    assert_eq!(outcome.bar_sales, 2);
    assert_eq!(outcome.transfer_sales, 1);
    // The session totals: 6 sales as the partner made them, a keyed
    // 2,500.00 paid by bank transfer, and the bar's 2 (a catalog sale of
    // 1,800.00 with a 180.00 tip, a keyed 2,500.00 taken offline), 1
    // refund; the sale whose authorization was lost before the close is in.
    let rec = s.backend.reconciliation(s.session_id()).await.unwrap();
    assert_eq!(rec.successful_count, 9);
    assert_eq!(
        rec.total_inflow.0,
        200_000 + 350_050 + 250_000 + 150_000 + 420_000 + 180_000 + 250_000 + 198_000 + 250_000
    );
    assert_eq!(
        rec.by_channel.get("account").map(|c| (c.count, c.total.0)),
        Some((1, 250_000))
    );
    assert_eq!(rec.by_channel.get("pos").map(|c| c.count), Some(8));
    assert_eq!((rec.refunds.count, rec.refunds.total.0), (1, 50_000));
    assert_eq!((rec.tips.count, rec.tips.total.0), (1, 18_000));
    assert_eq!(rec.by_item["star"].qty, 1);
    assert_eq!(rec.by_item["water"].total.0, 30_000);
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approved_sale_and_partial_refund() {
    let (_dir, mut s) = scene(1, AgentOptions::default()).await;
    let sale = s.approved_sale(0, ngn(123_456), "mc_ok").await.unwrap();
    assert_eq!(
        sale.reference.as_str(),
        format!("{}-000001", s.terminals[0].id)
    );
    let r = s.refund(&sale, ngn(23_456), "mc_ok").await.unwrap();
    assert_eq!(r.status, PaymentStatus::Approved);
    // What is left to refund is 1000.00: a larger refund is refused.
    let key = format!("too-much-{}", uuid::Uuid::new_v4().simple());
    let over = s
        .backend
        .refund(&sale.transaction_id, ngn(100_001), &key)
        .await;
    let refused = match over {
        Err(e) => e.api_code().is_some(),
        Ok(p) => {
            let done = s
                .backend
                .wait_final(&p.payment_id, e2e_tests::scenario::STEP_TIMEOUT)
                .await
                .unwrap();
            done.status != PaymentStatus::Approved
        }
    };
    assert!(refused, "a refund above what is left must not be approved");
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refund_with_another_card_is_refused() {
    let (_dir, mut s) = scene(1, AgentOptions::default()).await;
    let sale = s.approved_sale(0, ngn(80_000), "visa_ok").await.unwrap();
    let r = s.refund(&sale, ngn(80_000), "mc_ok").await.unwrap();
    assert_ne!(r.status, PaymentStatus::Approved);
    // Nothing was refunded: the full amount can still be refunded.
    let r = s.refund(&sale, ngn(80_000), "visa_ok").await.unwrap();
    assert_eq!(r.status, PaymentStatus::Approved);
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_cards() {
    let (_dir, mut s) = scene(1, AgentOptions::default()).await;
    let d = s
        .declined_sale(0, ngn(10_000), "visa_declined")
        .await
        .unwrap();
    assert_eq!(d.status, PaymentStatus::Declined);
    let d = s
        .declined_sale(0, ngn(10_000), "visa_insufficient")
        .await
        .unwrap();
    assert_eq!(d.status, PaymentStatus::Declined);
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborts_before_and_after_the_tap() {
    let (_dir, mut s) = scene(1, AgentOptions::default()).await;
    let p = s.abort_before_tap(0, ngn(40_000)).await.unwrap();
    assert_eq!(p.status, PaymentStatus::Aborted);
    let sale = s.abort_too_late(0, ngn(40_000), "visa_ok").await.unwrap();
    let p = s.backend.payment(&sale.payment_id).await.unwrap();
    assert_eq!(p.status, PaymentStatus::Approved);
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_button_and_tap_timeout() {
    let opts = AgentOptions {
        tap_timeout: std::time::Duration::from_millis(1_500),
        ..AgentOptions::default()
    };
    let (_dir, mut s) = scene(1, opts).await;
    // The cashier presses cancel on the tap screen.
    let p = s.request_payment(0, ngn(9_900), None).await.unwrap();
    s.terminals[0]
        .device()
        .unwrap()
        .press("cancel")
        .await
        .unwrap();
    let done = s
        .backend
        .wait_final(&p.payment_id, e2e_tests::scenario::STEP_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(done.status, PaymentStatus::Aborted);
    s.back_to_idle(0).await.unwrap();
    // Nobody taps: the payment times out.
    let p = s.request_payment(0, ngn(9_900), None).await.unwrap();
    let done = s
        .backend
        .wait_final(&p.payment_id, e2e_tests::scenario::STEP_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(done.status, PaymentStatus::TimedOut);
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_offline_sales_then_drain() {
    let (_dir, mut s) = scene(2, AgentOptions::default()).await;
    let pending = s
        .outage_offline_sales(&[ngn(30_000), ngn(45_000)], "verve_ok")
        .await
        .unwrap();
    let sales = s.recovery_drain(&pending, "verve_ok").await.unwrap();
    assert_eq!(sales.len(), 2);
    // Each offline sale reached the backend exactly once.
    for sale in &sales {
        let t = &s.terminals[sale.terminal];
        let st = s
            .backend
            .statement(&t.id, &t.credentials().unwrap())
            .await
            .unwrap();
        let n = st.iter().filter(|r| r.reference == sale.reference).count();
        assert_eq!(n, 1, "{} recorded {n} times", sale.reference);
        assert!(st.iter().all(|r| r.offline));
    }
    s.stop_agents().await.unwrap();
    let report = reconcile::reconcile(&s).await.unwrap();
    assert!(report.all_match(), "{}", report.render());
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_close_shows_totals_and_refuses_sales() {
    let (_dir, mut s) = scene(1, AgentOptions::default()).await;
    s.approved_sale(0, ngn(70_000), "visa_ok").await.unwrap();
    s.close_session().await.unwrap();
    let view = s.terminals[0].device().unwrap().screen().await.unwrap();
    assert_eq!(view.screen, "session_closed");
    // The partner cannot start a sale on a closed session.
    let key = format!("after-close-{}", uuid::Uuid::new_v4().simple());
    let r = s
        .backend
        .create_payment(&s.terminals[0].id, ngn(1_000), &key, None, &key)
        .await;
    match r {
        Err(e) => assert!(e.api_code().is_some(), "{e}"),
        Ok(p) => {
            let done = s
                .backend
                .wait_final(&p.payment_id, e2e_tests::scenario::STEP_TIMEOUT)
                .await
                .unwrap();
            assert_ne!(done.status, PaymentStatus::Approved);
        }
    }
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_keep_the_ledger_and_the_reference_sequence() {
    let (_dir, mut s) = scene(1, AgentOptions::default()).await;
    let first = s.approved_sale(0, ngn(11_000), "visa_ok").await.unwrap();
    for round in 0..3 {
        s.terminals[0]
            .stop()
            .await
            .unwrap_or_else(|e| panic!("stop {round}: {e}"));
        s.start_agent(0).await.unwrap();
    }
    let second = s.approved_sale(0, ngn(12_000), "visa_ok").await.unwrap();
    let tid = s.terminals[0].id.clone();
    assert_eq!(first.reference.as_str(), format!("{tid}-000001"));
    assert_eq!(second.reference.as_str(), format!("{tid}-000002"));
    s.stop_agents().await.unwrap();
    let report = reconcile::reconcile(&s).await.unwrap();
    assert!(report.all_match(), "{}", report.render());
    s.shutdown().await.unwrap();
}
