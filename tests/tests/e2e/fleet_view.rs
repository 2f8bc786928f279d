//! Fleet views (SPEC 8.2): what the heartbeat tells the backend about each
//! terminal's payments reaches the partner's terminal list.

use e2e_tests::scenario::{STEP_TIMEOUT, ngn};
use e2e_tests::terminal::AgentOptions;
use e2e_tests::wait::Deadline;

use crate::common::scene;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_terminal_list_carries_each_terminals_metrics_summary() {
    let (_dir, mut s) = scene(2, AgentOptions::default()).await;
    s.approved_sale(0, ngn(150_000), "visa_ok").await.unwrap();
    let session = s.session_id().clone();
    let (first, second) = (s.terminals[0].id.clone(), s.terminals[1].id.clone());
    let deadline = Deadline::after(STEP_TIMEOUT);
    let list = loop {
        let list = s.backend.terminals(&session).await.unwrap();
        let counted = list
            .iter()
            .find(|t| t.terminal_id == first)
            .and_then(|t| t.metrics)
            .is_some_and(|m| m.payments_approved == 1);
        if counted {
            break list;
        }
        deadline
            .tick("the first terminal's heartbeat to count its sale", || {
                format!("{list:?}")
            })
            .await
            .unwrap();
    };
    let m = list
        .iter()
        .find(|t| t.terminal_id == first)
        .and_then(|t| t.metrics)
        .unwrap();
    assert_eq!((m.payments_declined, m.payments_offline), (0, 0));
    assert!(m.link_up);
    let p50 = m.tap_to_result_p50_ms.unwrap();
    assert!(p50 < 10_000, "{m:?}");
    // The other terminal took no payment: its summary says so.
    let other = list.iter().find(|t| t.terminal_id == second).unwrap();
    if let Some(m) = other.metrics {
        assert_eq!(m.payments_approved, 0);
        assert_eq!(m.tap_to_result_p50_ms, None);
    }
    s.shutdown().await.unwrap();
}
