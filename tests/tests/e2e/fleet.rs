//! Small fleets (SPEC 8.5): terminals selling through a venue outage, and
//! through a restart of the sim, end with every payment exactly once at
//! the backend.

use std::time::Duration;

use e2e_tests::fleet::{self, FleetOptions};

use crate::common::logs;

/// `n` terminals for `secs`, selling every 3–6 s (so that a short run has
/// sales on both sides of the outage), a third of the run offline.
fn small(n: usize, secs: u64, dir: &tempfile::TempDir) -> FleetOptions {
    let mut o = FleetOptions::new(n, Duration::from_secs(secs), dir.path().to_owned());
    o.sale_every = (Duration::from_secs(3), Duration::from_secs(6));
    o.drain_timeout = Duration::from_secs(60);
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_terminals_through_an_outage_lose_and_duplicate_nothing() {
    logs();
    let dir = tempfile::tempdir().unwrap();
    let mut o = small(20, 30, &dir);
    // Low enough that 20 terminals coming back at once are shed.
    o.max_inflight = Some(2);
    let r = fleet::run(o).await.unwrap();
    println!("{}", r.render());
    assert!(r.ok(), "{}", r.render());
    assert_eq!((r.lost, r.duplicate), (0, 0));
    assert!(
        r.approved_offline > 0,
        "sales during the outage: {}",
        r.render()
    );
    assert!(r.approved_online > 0, "{}", r.render());
    assert!(r.partner_sales > 0 && r.keypad_sales > 0, "{}", r.render());
    assert!(
        r.shed_total > 0 || r.drain.is_some(),
        "the sim shed load or every queue drained: {}",
        r.render()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sim_restart_mid_run_loses_and_duplicates_nothing() {
    logs();
    let dir = tempfile::tempdir().unwrap();
    let mut o = small(10, 30, &dir);
    // After the outage, while the terminals forward and sell.
    o.restart_sim_at = Some(Duration::from_secs(21));
    let r = fleet::run(o).await.unwrap();
    println!("{}", r.render());
    assert_eq!(r.sim_restarts, 1);
    assert!(r.ok(), "{}", r.render());
    assert_eq!((r.lost, r.duplicate), (0, 0));
    assert!(r.approved_online + r.approved_offline > 0, "{}", r.render());
}
