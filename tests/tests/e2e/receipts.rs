//! Receipts end to end (SPEC 7.4): the virtual printer prints the
//! cashier's copy of every payment and the customer's on `ok`; a printer
//! out of paper never holds up a payment, and `menu` → Last receipt
//! reprints once it is fixed; the result screen's receipt URL resolves at
//! the backend.

use e2e_tests::scenario::{STEP_TIMEOUT, ngn};
use e2e_tests::terminal::AgentOptions;

use crate::common::scene;

/// Waits until the virtual printer holds `n` receipts; returns them,
/// newest first.
async fn receipts(dev: &e2e_tests::device::Device, n: usize) -> Vec<serde_json::Value> {
    let deadline = e2e_tests::wait::Deadline::after(STEP_TIMEOUT);
    loop {
        let r = dev.receipts().await.unwrap();
        if r.len() >= n {
            return r;
        }
        deadline
            .tick(&format!("{n} receipts"), || format!("{r:?}"))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cashiers_copy_prints_at_once_and_the_customers_on_ok() {
    // The result screen stays until the customer decides.
    let opts = AgentOptions {
        result_hold: std::time::Duration::from_secs(60),
        ..AgentOptions::default()
    };
    let (_dir, mut s) = scene(1, opts).await;
    s.request_payment(0, ngn(150_000), None).await.unwrap();
    let view = s.tap_for_result(0, "visa_ok").await.unwrap();
    assert_eq!(view.screen, "approved");
    assert!(
        view.message
            .as_deref()
            .is_some_and(|m| m.contains("Print receipt?")),
        "{view:?}"
    );
    let reference = format!("{}-000001", s.terminals[0].id);
    let dev = s.terminals[0].device().unwrap().clone();
    let r = receipts(&dev, 1).await;
    let text = r[0]["text"].as_str().unwrap();
    for want in [
        "Lagos Jazz Night",
        "POS 1",
        reference.as_str(),
        "VISA",
        "**** 1111",
        "NGN 1,500.00",
        "Cashier copy",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    // Printed double width: spaced out in the text rendering.
    assert!(text.replace(' ', "").contains("APPROVED"), "{text}");
    assert!(!text.contains("4111111111111111"), "{text}");
    let png = dev.receipt_png(r[0]["n"].as_u64().unwrap()).await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    // The customer's copy on ok, with the QR code of the digital receipt.
    let view = dev.screen().await.unwrap();
    assert_eq!(view.screen, "approved");
    dev.press("ok").await.unwrap();
    let r = receipts(&dev, 2).await;
    let text = r[0]["text"].as_str().unwrap();
    assert!(text.contains("Customer copy"), "{text}");
    let url = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("[QR] "))
        .unwrap_or_else(|| panic!("no QR line:\n{text}"))
        .to_owned();
    assert!(url.contains("/r/"), "{url}");
    let page = s.backend.http().get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200, "{url}");
    assert!(page.text().await.unwrap().contains(reference.as_str()));
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_printer_out_of_paper_never_holds_up_a_payment() {
    let (_dir, mut s) = scene(1, AgentOptions::default()).await;
    let dev = s.terminals[0].device().unwrap().clone();
    dev.set_printer("paper_out").await.unwrap();
    let sale = s.approved_sale(0, ngn(20_000), "mc_ok").await.unwrap();
    s.back_to_idle(0).await.unwrap();
    assert!(dev.receipts().await.unwrap().is_empty());
    // Paper back: the menu's Last receipt reprints it.
    dev.set_printer("ok").await.unwrap();
    dev.press("menu").await.unwrap();
    dev.wait_screen("menu", STEP_TIMEOUT).await.unwrap();
    dev.press("5").await.unwrap();
    let r = receipts(&dev, 1).await;
    let text = r[0]["text"].as_str().unwrap();
    assert!(text.contains(sale.reference.as_str()), "{text}");
    assert!(text.contains("Copy (reprint)"), "{text}");
    s.shutdown().await.unwrap();
}
