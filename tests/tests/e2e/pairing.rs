//! Pairing by code (SPEC 8.1): a fresh board with a minimal config pairs,
//! takes payments, is unpaired only once its queue is forwarded, and is
//! paired again for another session; its ledger keeps the first session's
//! sales.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use e2e_tests::HarnessError;
use e2e_tests::backend::{Backend, SimOptions};
use e2e_tests::pairing::FreshTerminal;
use e2e_tests::proxy::LinkState;
use e2e_tests::scenario::STEP_TIMEOUT;
use e2e_tests::terminal::AgentOptions;
use pos_agent::pairing::{self, PairingError};

use crate::common::logs;

/// A keypad sale of `keys` (minor units) tapped with `visa_ok`; returns
/// once the result screen is up.
async fn keypad_sale(t: &FreshTerminal, keys: &str) -> e2e_tests::device::ScreenView {
    let dev = t.device().unwrap();
    dev.wait_screen("idle", STEP_TIMEOUT).await.unwrap();
    dev.keys(keys).await.unwrap();
    dev.press("ok").await.unwrap();
    dev.wait_screen("tap_card", STEP_TIMEOUT).await.unwrap();
    dev.tap("visa_ok", STEP_TIMEOUT).await.unwrap();
    dev.wait_for("a result", STEP_TIMEOUT, |v| {
        matches!(v.screen.as_str(), "approved" | "declined")
    })
    .await
    .unwrap()
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_board_pairs_by_code_is_unpaired_after_its_queue_and_pairs_again() {
    logs();
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::start(SimOptions::default()).await.unwrap();
    let first = backend.create_session("First night", 1).await.unwrap();
    let second = backend.create_session("Second night", 1).await.unwrap();
    let t1 = first.pos_terminals[0].terminal_id.clone();
    let t2 = second.pos_terminals[0].terminal_id.clone();

    let data = dir.path().join("board");
    let mut board = FreshTerminal::start_unpaired(&backend, &data, &AgentOptions::default())
        .await
        .unwrap();
    let config = board.config().unwrap();
    assert_eq!(
        config.terminal.id, None,
        "the minimal config names no terminal"
    );
    let code = board.wait_code(STEP_TIMEOUT).await.unwrap();
    assert_eq!(code.len(), 8, "{code}");

    // The organiser claims it with the org key; the terminal goes idle.
    let claimed = backend.claim(&first.session_id, &t1, &code).await.unwrap();
    assert_eq!(claimed.terminal_id, t1);
    board
        .device()
        .unwrap()
        .wait_screen("idle", Duration::from_secs(40))
        .await
        .unwrap();
    for f in ["credentials.json", "card.key", pairing::DEVICE_KEY_FILE] {
        assert_eq!(mode(&data.join(f)), 0o600, "{f}");
    }
    let view = keypad_sale(&board, "150000").await;
    assert_eq!(view.screen, "approved", "{}", view.summary());

    // A used code cannot be claimed again.
    match backend.claim(&first.session_id, &t1, &code).await {
        Err(HarnessError::Api { status: 410, .. }) => {}
        other => panic!("second claim: {other:?}"),
    }

    // An offline payment in the queue: unpairing is refused.
    let dev = board.device().unwrap().clone();
    dev.wait_for("drained", STEP_TIMEOUT, |v| {
        v.queued == 0 && v.screen == "idle"
    })
    .await
    .unwrap();
    board.proxy().set(LinkState::Refuse);
    dev.wait_for("offline", STEP_TIMEOUT, |v| v.offline)
        .await
        .unwrap();
    let view = keypad_sale(&board, "70000").await;
    assert_eq!(view.screen, "approved", "{}", view.summary());
    board.stop().await.unwrap();
    match pairing::prepare_offline(&config, true) {
        Err(PairingError::QueueNotEmpty(what)) => assert!(what.starts_with("1 item"), "{what}"),
        other => panic!("unpair with a queued payment: {other:?}"),
    }
    assert!(matches!(
        pairing::prepare_offline(&config, false),
        Err(PairingError::AlreadyPaired { .. })
    ));
    // Back online, the queue drains; then unpairing goes ahead.
    board.proxy().set(LinkState::Up);
    board.start().await.unwrap();
    board
        .device()
        .unwrap()
        .wait_for("drained", STEP_TIMEOUT, |v| {
            v.screen == "idle" && !v.offline && v.queued == 0
        })
        .await
        .unwrap();
    board.stop().await.unwrap();
    pairing::prepare_offline(&config, true).unwrap();
    assert!(!data.join("credentials.json").exists());
    assert!(!data.join("card.key").exists());
    assert!(data.join(pos_agent::config::LEDGER_FILE).exists());

    // Paired again, for the second session.
    board.start().await.unwrap();
    let code2 = board.wait_code(STEP_TIMEOUT).await.unwrap();
    assert_ne!(code2, code);
    backend
        .claim(&second.session_id, &t2, &code2)
        .await
        .unwrap();
    board
        .device()
        .unwrap()
        .wait_screen("idle", Duration::from_secs(40))
        .await
        .unwrap();
    let view = keypad_sale(&board, "20000").await;
    assert_eq!(view.screen, "approved", "{}", view.summary());
    board.stop().await.unwrap();

    // One ledger, both sessions' sales; the new terminal's references
    // continue the sequence (none reused).
    let ledger = pos_agent::ledger::open_read_only(&config).unwrap();
    let by = pos_agent::report::sales_by_terminal(&ledger).unwrap();
    assert_eq!(by.get(t1.as_str()).map(|c| c.count), Some(2), "{by:?}");
    assert_eq!(by.get(t2.as_str()).map(|c| c.count), Some(1), "{by:?}");
    let all = ledger
        .list_transactions(store::Page {
            offset: 0,
            limit: 100,
        })
        .unwrap();
    let mut seqs: Vec<&str> = all
        .iter()
        .filter_map(|t| t.reference.as_str().rsplit_once('-').map(|(_, s)| s))
        .collect();
    let n = seqs.len();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), n, "a sequence number was reused: {all:?}");
    backend.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gone_code_is_replaced_and_a_broken_backend_is_retried() {
    logs();
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::start(SimOptions::default()).await.unwrap();
    let session = backend.create_session("Night", 1).await.unwrap();
    let tid = session.pos_terminals[0].terminal_id.clone();
    let board = FreshTerminal::start_unpaired(
        &backend,
        &dir.path().join("board"),
        &AgentOptions::default(),
    )
    .await
    .unwrap();
    let code = board.wait_code(STEP_TIMEOUT).await.unwrap();
    // The same device registering again voids its code: the terminal's
    // next poll answers 410 and it shows a fresh code.
    let key = pos_agent::pairing::DeviceKey::load_or_create(board.data_dir()).unwrap();
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/v1/pairing", backend.url()))
        .json(&serde_json::json!({
            "device_id": key.device_id(), "device_key_hash": key.hash(),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    // The code the test took is void now; the one the terminal gets next
    // works.
    let fresh = board
        .wait_new_code(&code, Duration::from_secs(40))
        .await
        .unwrap();
    // Garbage answers from the backend: typed errors, retried, no panic.
    board.proxy().set(LinkState::Refuse);
    board
        .device()
        .unwrap()
        .wait_for("no network", Duration::from_secs(40), |v| {
            v.screen == "pairing" && v.offline
        })
        .await
        .unwrap();
    board.proxy().set(LinkState::Up);
    let fresh = board
        .device()
        .unwrap()
        .wait_for("back online", Duration::from_secs(40), |v| {
            v.screen == "pairing" && !v.offline
        })
        .await
        .unwrap()
        .pairing_code
        .unwrap_or(fresh);
    backend
        .claim(&session.session_id, &tid, &fresh)
        .await
        .unwrap();
    board
        .device()
        .unwrap()
        .wait_screen("idle", Duration::from_secs(40))
        .await
        .unwrap();
    // Unpaired from the menu (no operators: anyone supervises): the same
    // process goes back to pairing, with a fresh code, at the same address.
    let dev = board.device().unwrap().clone();
    dev.wait_for("drained", STEP_TIMEOUT, |v| v.queued == 0)
        .await
        .unwrap();
    dev.press("menu").await.unwrap();
    dev.keys("7").await.unwrap();
    dev.wait_for("the unpair question", STEP_TIMEOUT, |v| {
        v.screen == "menu"
            && v.message
                .as_deref()
                .is_some_and(|m| m.starts_with("OK to unpair"))
    })
    .await
    .unwrap();
    dev.press("ok").await.unwrap();
    let again = board
        .wait_new_code(&fresh, Duration::from_secs(40))
        .await
        .unwrap();
    assert!(!board.data_dir().join("credentials.json").exists());
    backend
        .claim(&session.session_id, &tid, &again)
        .await
        .unwrap();
    board
        .device()
        .unwrap()
        .wait_screen("idle", Duration::from_secs(40))
        .await
        .unwrap();
    let mut board = board;
    board.stop().await.unwrap();
    backend.shutdown().await;
}
