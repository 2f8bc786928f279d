//! How many times the tap→result path syncs the disk (issue 13, SPEC 5.4):
//! at most 2 fsyncs online (the `authorizing` row before the request, the
//! result before the screen) and 1 offline (the result), counted inside
//! this process.
//!
//! Counted with `store/tests/fsync_counter.rs`: this test binary defines
//! `fsync` and `fdatasync` itself and holds only this test.

// The counter's two symbols and their system calls are the only unsafe
// code: test code, never shipped.
#![allow(unsafe_code)]
#![allow(clippy::unwrap_used)]

#[path = "../../store/tests/fsync_counter.rs"]
mod fsync_counter;

use e2e_tests::device::{Device, ScreenView};
use e2e_tests::proxy::LinkState;
use e2e_tests::scenario::{STEP_TIMEOUT, Scene, ngn};
use e2e_tests::terminal::AgentOptions;
use e2e_tests::timeline::Timeline;
use fsync_counter::{syncs, watch};

async fn result(dev: &Device) -> ScreenView {
    dev.wait_for("a result", STEP_TIMEOUT, |s| {
        matches!(s.screen.as_str(), "approved" | "declined" | "error")
    })
    .await
    .unwrap()
}

/// Taps and returns the result screen and the syncs between the tap and
/// that screen.
async fn tap(dev: &Device) -> (ScreenView, u64) {
    dev.wait_for("the reader waiting", STEP_TIMEOUT, |s| {
        s.screen == "tap_card" && s.reader_waiting
    })
    .await
    .unwrap();
    let before = syncs();
    dev.tap_now("visa_ok").await.unwrap();
    let view = result(dev).await;
    (view, syncs() - before)
}

async fn key(dev: &Device, digits: &str) {
    dev.keys(digits).await.unwrap();
    dev.wait_for("the keyed amount", STEP_TIMEOUT, |s| {
        s.screen == "amount_entry"
    })
    .await
    .unwrap();
    dev.press("ok").await.unwrap();
}

async fn idle_and_drained(dev: &Device) {
    dev.wait_for("idle, online, queue empty", STEP_TIMEOUT, |v| {
        v.screen == "idle" && !v.offline && v.queued == 0
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tap_to_result_path_syncs_at_most_twice_online_and_once_offline() {
    let dir = tempfile::tempdir().unwrap();
    let timeline = Timeline::new(None, true).unwrap();
    let s = Scene::start(
        dir.path(),
        1,
        e2e_tests::backend::SimOptions::default(),
        AgentOptions::default(),
        timeline,
    )
    .await
    .unwrap();
    let dev = s.terminals[0].device().unwrap().clone();
    let tid = s.terminals[0].id.clone();
    watch(s.terminals[0].data_dir());
    idle_and_drained(&dev).await;

    // The counter sees the ledger: a sale syncs it at least once.
    let start = syncs();

    // Online, keyed at the terminal.
    key(&dev, "150000").await;
    let (view, n) = tap(&dev).await;
    assert_eq!(view.screen, "approved", "{}", view.summary());
    assert!(n >= 1, "the result must be synced before it is shown: {n}");
    assert!(
        n <= 2,
        "online keypad sale: {n} syncs between tap and result"
    );
    idle_and_drained(&dev).await;

    // Online, from the partner.
    s.backend
        .create_payment_when_free(&tid, ngn(2_500), "fsync-1", None, "fsync-1", STEP_TIMEOUT)
        .await
        .unwrap();
    let (view, n) = tap(&dev).await;
    assert_eq!(view.screen, "approved", "{}", view.summary());
    assert!(
        n <= 2,
        "online partner sale: {n} syncs between tap and result"
    );
    idle_and_drained(&dev).await;

    // Offline, keyed: one sync, the result with its forward queued.
    s.terminals[0].proxy().set(LinkState::Refuse);
    dev.wait_for("offline", STEP_TIMEOUT, |v| v.offline)
        .await
        .unwrap();
    key(&dev, "70000").await;
    let (view, n) = tap(&dev).await;
    assert_eq!(view.screen, "approved", "{}", view.summary());
    assert_eq!(
        n, 1,
        "offline keypad sale: {n} syncs between tap and result"
    );
    s.terminals[0].proxy().set(LinkState::Up);
    idle_and_drained(&dev).await;
    assert!(syncs() > start);
    s.shutdown().await.unwrap();
}
