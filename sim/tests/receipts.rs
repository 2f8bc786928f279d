//! SPEC 7.4 digital receipts: every transaction answer carries its
//! `receipt_url`, and `GET /r/:transaction_id` and `/r/ref/:reference` serve
//! it as a small self-contained HTML page.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn a_receipt_page_shows_what_was_paid_and_nothing_more_of_the_card() {
    let e = env().await;
    let (sid, tid, t) = e.one_terminal().await;
    let (_, op) = e
        .org_json(
            Method::POST,
            &format!("/v1/sessions/{sid}/operators"),
            Some(json!({"name": "Ada <b>&</b>", "pin": "4829"})),
        )
        .await;
    let reference = format!("{tid}-000001");
    let mut body = sale(&reference, "1650.00", "1111", false);
    body["tip_amount"] = json!("150.00");
    body["operator_id"] = op["data"]["operator_id"].clone();
    body["items"] =
        json!([{"item_id": "star", "name": "Star Lager", "qty": 1, "unit_price": "1500.00"}]);
    let (s, v) = submit(&t, &tid, &body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let url = v["data"]["receipt_url"].as_str().unwrap().to_owned();
    let txid = v["data"]["transaction_id"].as_str().unwrap();
    assert_eq!(url, format!("{}/r/{txid}", e.sim.url()));
    // A replay answers the same receipt.
    let (s, again) = submit(&t, &tid, &body).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(again["data"]["receipt_url"], url.as_str());

    for page in [url.clone(), format!("{}/r/ref/{reference}", e.sim.url())] {
        let resp = e.http.get(&page).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{page}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let html = resp.text().await.unwrap();
        for want in [
            "Test Night",
            "POS 1",
            reference.as_str(),
            "**** 1111",
            "APPROVED",
            "1 &times; Star Lager",
            "NGN 1,500.00",
            "Tip",
            "NGN 150.00",
            "NGN 1,650.00",
            "Ada &lt;b&gt;&amp;&lt;/b&gt;",
        ] {
            assert!(html.contains(want), "{want:?} missing from {html}");
        }
        // No external assets, no more card data than brand and last4.
        assert!(!html.contains("src=") && !html.contains("href="), "{html}");
        assert!(!html.contains("4111"), "{html}");
    }
}

#[tokio::test]
async fn a_receipt_not_yet_forwarded_says_so() {
    let e = env().await;
    let (_, tid, _) = e.one_terminal().await;
    for page in [
        format!("{}/r/ref/{tid}-000042", e.sim.url()),
        format!("{}/r/txn_unknown", e.sim.url()),
        format!("{}/r/ref/not%20a%20reference", e.sim.url()),
    ] {
        let resp = e.http.get(&page).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{page}");
        let html = resp.text().await.unwrap();
        assert!(html.contains("Receipt not available yet"), "{html}");
    }
}
