//! Full PANs of the test cards (SPEC section 6) never appear in the SQLite
//! files (with -wal and -shm), the agent's logs, or any byte the agent sent
//! to the backend.

use std::time::Duration;

use e2e_tests::proxy::LinkState;
use e2e_tests::scenario::{STEP_TIMEOUT, ngn};
use e2e_tests::terminal::AgentOptions;
use tokio::sync::mpsc;

use crate::common::{agent_exe, provisioned};

const PANS: [&str; 5] = [
    "4111111111111111",
    "5555555555554444",
    "5061000000000000007",
    "4000000000000002",
    "4000000000009995",
];

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_pans_never_leave_memory() {
    let opts = AgentOptions {
        log_filter: "debug,pos_agent=trace,hal=trace,store=trace,ui=trace,hyper=info,reqwest=debug"
            .into(),
        record_traffic: true,
        ..AgentOptions::default()
    };
    let (dir, mut s) = provisioned(1, opts).await;
    let (logs, mut log_rx) = mpsc::unbounded_channel();
    s.terminals[0]
        .start_process(&agent_exe(), logs)
        .await
        .unwrap();
    s.wait_ready(0).await.unwrap();

    let sale = s.approved_sale(0, ngn(10_000), "visa_ok").await.unwrap();
    s.approved_sale(0, ngn(10_000), "mc_ok").await.unwrap();
    s.approved_sale(0, ngn(10_000), "verve_ok").await.unwrap();
    s.declined_sale(0, ngn(10_000), "visa_declined")
        .await
        .unwrap();
    s.declined_sale(0, ngn(10_000), "visa_insufficient")
        .await
        .unwrap();
    // A misread, then the same payment completes with a good card.
    let p = s.request_payment(0, ngn(10_000), None).await.unwrap();
    let dev = s.terminals[0].device().unwrap().clone();
    dev.tap("misread", STEP_TIMEOUT).await.unwrap();
    let _ = s
        .backend
        .wait_final(&p.payment_id, Duration::from_millis(300))
        .await;
    if dev.screen().await.unwrap().reader_waiting {
        dev.tap("visa_ok", STEP_TIMEOUT).await.unwrap();
    }
    s.backend
        .wait_final(&p.payment_id, STEP_TIMEOUT)
        .await
        .unwrap();
    s.back_to_idle(0).await.unwrap();
    // Offline, then forwarded.
    let pending = s
        .outage_offline_sales(&[ngn(10_000)], "mc_ok")
        .await
        .unwrap();
    s.recovery_drain(&pending, "mc_ok").await.unwrap();
    s.terminals[0].proxy().set(LinkState::Up);
    // Refunds with the right and a wrong card.
    s.refund(&sale, ngn(1_000), "visa_ok").await.unwrap();
    s.refund(&sale, ngn(1_000), "verve_ok").await.unwrap();
    // The files while the agent runs (the WAL holds the recent writes)...
    let running = data_files(s.terminals[0].data_dir());
    s.stop_agents().await.unwrap();

    let mut log = Vec::new();
    while let Ok(line) = log_rx.try_recv() {
        log.extend_from_slice(line.as_bytes());
        log.push(b'\n');
    }
    let sent = s.terminals[0].proxy().sent();
    assert!(
        log.len() > 1_000,
        "the agent's log was captured ({} bytes)",
        log.len()
    );
    assert!(
        contains(&sent, "\"last4\":\"1111\""),
        "the capture sees card fields"
    );

    // ...and after it stopped.
    let stopped = data_files(s.terminals[0].data_dir());
    let names: Vec<&String> = running.iter().map(|(n, _)| n).collect();
    assert!(names.iter().any(|n| n.ends_with(".sqlite")), "{names:?}");
    assert!(names.iter().any(|n| n.ends_with("-wal")), "{names:?}");
    for pan in PANS {
        assert!(!contains(&log, pan), "PAN {pan} in the agent's log");
        assert!(!contains(&sent, pan), "PAN {pan} sent to the backend");
        for (name, bytes) in running.iter().chain(&stopped) {
            assert!(!contains(bytes, pan), "PAN {pan} in {name}");
        }
    }
    s.backend.shutdown().await;
    drop(dir);
}

/// Every file of the data directory: (name, bytes).
fn data_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            if let Ok(bytes) = std::fs::read(&p) {
                out.push((p.display().to_string(), bytes));
            }
        }
    }
    out
}
