//! Backend and network faults: the sandbox scenarios of kler-sim and the
//! fault proxy. Invariants: no double charge, nothing lost, nobody charged
//! for a payment the screen called declined.

use std::time::Duration;

use e2e_tests::backend::SimOptions;
use e2e_tests::proxy::LinkState;
use e2e_tests::reconcile;
use e2e_tests::scenario::{STEP_TIMEOUT, Scene, ngn};
use e2e_tests::terminal::AgentOptions;
use proto::wire::{OfflinePolicy, PaymentStatus, RecordStatus, Scenario};

use crate::common::{scene, scene_with};

/// How many times the backend recorded `reference` for terminal 0.
async fn recorded(s: &Scene, reference: &str) -> Vec<proto::wire::TransactionRecord> {
    let t = &s.terminals[0];
    let st = s
        .backend
        .statement(&t.id, &t.credentials().unwrap())
        .await
        .unwrap();
    st.into_iter()
        .filter(|r| r.reference.as_str() == reference)
        .collect()
}

async fn reconciled(mut s: Scene) {
    s.stop_agents().await.unwrap();
    let report = reconcile::reconcile(&s).await.unwrap();
    assert!(report.all_match(), "{}", report.render());
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_after_commit_is_not_a_double_charge() {
    let (_dir, mut s) = scene(1, AgentOptions::default()).await;
    let tid = s.terminals[0].id.clone();
    s.backend
        .set_scenario(&tid, Scenario::DropAfterCommit, 1)
        .await
        .unwrap();
    let p = s.request_payment(0, ngn(55_000), None).await.unwrap();
    let view = s.tap_for_result(0, "visa_ok").await.unwrap();
    // The answer was lost after the backend recorded it: the agent retries
    // under the same reference and gets the recorded result.
    assert_eq!(view.screen, "approved", "{}", view.summary());
    let done = s
        .backend
        .wait_final(&p.payment_id, STEP_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(done.status, PaymentStatus::Approved);
    let reference = done.transaction.as_ref().unwrap().reference.clone();
    s.terminals[0]
        .device()
        .unwrap()
        .wait_for("queue drained", STEP_TIMEOUT, |v| v.queued == 0)
        .await
        .unwrap();
    let recs = recorded(&s, reference.as_str()).await;
    assert_eq!(
        recs.len(),
        1,
        "exactly one transaction at the backend: {recs:?}"
    );
    assert_eq!(recs[0].status, RecordStatus::Approved);
    let all = s
        .backend
        .statement(&tid, &s.terminals[0].credentials().unwrap())
        .await
        .unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    reconciled(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_500_bursts_are_retried_and_nothing_is_lost() {
    let (_dir, mut s) = scene(1, AgentOptions::default()).await;
    let tid = s.terminals[0].id.clone();
    // An online sale whose authorization meets a 500.
    s.backend
        .set_scenario(&tid, Scenario::Http500, 1)
        .await
        .unwrap();
    let p = s.request_payment(0, ngn(12_500), None).await.unwrap();
    let view = s.tap_for_result(0, "visa_ok").await.unwrap();
    s.back_to_idle(0).await.unwrap();
    // An offline sale queued, then a burst of 500s when the link returns.
    let pending_all = s
        .outage_offline_sales(&[ngn(20_000)], "mc_ok")
        .await
        .unwrap();
    s.backend
        .set_scenario(&tid, Scenario::Http500, 3)
        .await
        .unwrap();
    let sales = s.recovery_drain(&pending_all, "mc_ok").await.unwrap();
    assert_eq!(sales.len(), 1);
    // The first sale: the screen's verdict and the backend agree.
    let first = s
        .backend
        .wait_final(&p.payment_id, STEP_TIMEOUT)
        .await
        .unwrap();
    if view.screen == "approved" {
        assert_eq!(first.status, PaymentStatus::Approved);
    } else {
        assert_ne!(first.status, PaymentStatus::Approved);
    }
    for sale in &sales {
        assert_eq!(recorded(&s, sale.reference.as_str()).await.len(), 1);
    }
    reconciled(s).await;
}

/// The sim answers `auth_timeout` submissions after 4 s; the agent waits 1.5 s.
fn slow_sim() -> SimOptions {
    SimOptions {
        auth_timeout: Duration::from_secs(4),
        ..SimOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_timeout_prefer_online_approves_offline_under_the_same_reference() {
    let (_dir, mut s) = scene_with(1, slow_sim(), AgentOptions::default()).await;
    let tid = s.terminals[0].id.clone();
    s.backend
        .set_scenario(&tid, Scenario::AuthTimeout, 1)
        .await
        .unwrap();
    let p = s.request_payment(0, ngn(33_000), None).await.unwrap();
    let view = s.tap_for_result(0, "visa_ok").await.unwrap();
    assert_eq!(view.screen, "approved", "{}", view.summary());
    let done = s
        .backend
        .wait_final(&p.payment_id, STEP_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(done.status, PaymentStatus::Approved);
    let reference = done.transaction.as_ref().unwrap().reference.clone();
    s.terminals[0]
        .device()
        .unwrap()
        .wait_for("queue drained", STEP_TIMEOUT, |v| v.queued == 0)
        .await
        .unwrap();
    let recs = recorded(&s, reference.as_str()).await;
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0].status, RecordStatus::Approved);
    reconciled(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_timeout_require_online_declines_and_reverses() {
    let (_dir, mut s) = scene_with(1, slow_sim(), AgentOptions::default()).await;
    let tid = s.terminals[0].id.clone();
    s.backend
        .set_scenario(&tid, Scenario::AuthTimeout, 1)
        .await
        .unwrap();
    let p = s
        .request_payment(0, ngn(33_000), Some(OfflinePolicy::RequireOnline))
        .await
        .unwrap();
    let view = s.tap_for_result(0, "visa_ok").await.unwrap();
    assert_eq!(view.screen, "declined", "{}", view.summary());
    // The sim recorded the authorization after its delay; the queued
    // reversal cancels it: nobody is charged.
    let t = &s.terminals[0];
    let creds = t.credentials().unwrap();
    let deadline = e2e_tests::wait::Deadline::after(STEP_TIMEOUT);
    loop {
        let st = s.backend.statement(&tid, &creds).await.unwrap();
        let charged = st
            .iter()
            .filter(|r| r.status == RecordStatus::Approved)
            .count();
        let queued = t.device().unwrap().screen().await.unwrap().queued;
        if charged == 0 && queued == 0 && !st.is_empty() {
            assert!(
                st.iter().all(|r| r.status == RecordStatus::Reversed),
                "{st:?}"
            );
            break;
        }
        deadline
            .tick("the authorization to be reversed", || {
                format!("{st:?}, queued {queued}")
            })
            .await
            .unwrap();
    }
    // The partner may have seen `approved` for a moment (the late answer
    // landed before the reversal); in the end the payment is not approved.
    let done = s
        .backend
        .wait_final(&p.payment_id, STEP_TIMEOUT)
        .await
        .unwrap();
    assert_ne!(done.status, PaymentStatus::Approved, "{done:?}");
    reconciled(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_closed_mid_queue_still_drains() {
    let (_dir, mut s) = scene(1, AgentOptions::default()).await;
    let pending = s
        .outage_offline_sales(&[ngn(64_000)], "visa_ok")
        .await
        .unwrap();
    // The organiser closes the session while the terminal is cut off.
    s.backend.close_session(s.session_id()).await.unwrap();
    s.terminals[0].proxy().set(LinkState::Up);
    let t = &s.terminals[0];
    t.device()
        .unwrap()
        .wait_for("session_closed with an empty queue", STEP_TIMEOUT, |v| {
            v.screen == "session_closed" && v.queued == 0
        })
        .await
        .unwrap();
    let (_, pid, _) = &pending[0];
    let done = s.backend.wait_final(pid, STEP_TIMEOUT).await.unwrap();
    assert_eq!(done.status, PaymentStatus::Approved);
    let rec = s.backend.reconciliation(s.session_id()).await.unwrap();
    assert_eq!((rec.successful_count, rec.total_inflow.0), (1, 64_000));
    reconciled(s).await;
}
