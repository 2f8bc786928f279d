//! The agent as a real process, killed with SIGKILL in the middle of a run
//! of payments and restarted: every approved payment reaches the backend
//! exactly once, none is lost, and the ledger matches the backend.

use std::collections::BTreeMap;

use e2e_tests::proxy::LinkState;
use e2e_tests::reconcile;
use e2e_tests::scenario::{STEP_TIMEOUT, ngn};
use e2e_tests::terminal::AgentOptions;
use proto::wire::{PaymentStatus, RecordStatus, Scenario};
use tokio::sync::mpsc;

use crate::common::{agent_exe, provisioned};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_payments_loses_nothing_and_charges_once() {
    let (_dir, mut s) = provisioned(1, AgentOptions::default()).await;
    let (logs, _log_rx) = mpsc::unbounded_channel();
    let exe = agent_exe();
    s.terminals[0]
        .start_process(&exe, logs.clone())
        .await
        .unwrap();
    s.wait_ready(0).await.unwrap();
    let tid = s.terminals[0].id.clone();

    // A: an ordinary approved sale.
    let a = s.approved_sale(0, ngn(10_000), "visa_ok").await.unwrap();

    // B: killed while its authorization is in flight.
    s.backend
        .set_scenario(&tid, Scenario::Slow { ms: 1_000 }, 1)
        .await
        .unwrap();
    let b = s.request_payment(0, ngn(20_000), None).await.unwrap();
    let dev = s.terminals[0].device().unwrap().clone();
    dev.tap("mc_ok", STEP_TIMEOUT).await.unwrap();
    dev.wait_for("the card read", STEP_TIMEOUT, |v| v.screen != "tap_card")
        .await
        .unwrap();
    s.terminals[0].kill().await.unwrap();
    s.timeline.note("test", "SIGKILL while authorizing");

    // Restart; B is resolved from the ledger at boot.
    s.terminals[0]
        .start_process(&exe, logs.clone())
        .await
        .unwrap();
    s.wait_ready(0).await.unwrap();

    // C: an offline sale, killed before it could be forwarded.
    let pending = s
        .outage_offline_sales(&[ngn(30_000)], "verve_ok")
        .await
        .unwrap();
    s.terminals[0].kill().await.unwrap();
    s.timeline
        .note("test", "SIGKILL with an offline sale queued");
    s.terminals[0].proxy().set(LinkState::Up);
    s.terminals[0].start_process(&exe, logs).await.unwrap();
    s.wait_ready(0).await.unwrap();
    s.terminals[0]
        .device()
        .unwrap()
        .wait_for("queue drained", STEP_TIMEOUT, |v| v.queued == 0)
        .await
        .unwrap();

    let (_, c_pid, _) = &pending[0];
    let c = s.backend.wait_final(c_pid, STEP_TIMEOUT).await.unwrap();
    assert_eq!(
        c.status,
        PaymentStatus::Approved,
        "the offline sale was lost"
    );
    let b_final = s
        .backend
        .wait_final(&b.payment_id, STEP_TIMEOUT)
        .await
        .unwrap();
    let a_final = s.backend.payment(&a.payment_id).await.unwrap();
    assert_eq!(a_final.status, PaymentStatus::Approved);

    // Each reference at most once at the backend.
    let st = s
        .backend
        .statement(&tid, &s.terminals[0].credentials().unwrap())
        .await
        .unwrap();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for r in &st {
        *seen.entry(r.reference.to_string()).or_default() += 1;
    }
    assert!(seen.values().all(|n| *n == 1), "duplicates: {seen:?}");
    let approved: Vec<_> = st
        .iter()
        .filter(|r| r.status == RecordStatus::Approved)
        .collect();
    let expect = 2 + usize::from(b_final.status == PaymentStatus::Approved);
    assert_eq!(
        approved.len(),
        expect,
        "B ended {:?}; statement {st:?}",
        b_final.status
    );

    s.stop_agents().await.unwrap();
    let report = reconcile::reconcile(&s).await.unwrap();
    assert!(report.all_match(), "{}", report.render());
    s.shutdown().await.unwrap();
}
