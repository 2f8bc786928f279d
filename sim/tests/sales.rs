//! The cashier's own sales (SPEC 7.1, 7.3, 7.6): keypad sales without a
//! partner payment, tips, catalog items and the operator, checked on
//! submission and carried into records, statement, reconciliation and
//! webhooks.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

fn line(id: &str, name: &str, qty: u32, unit_price: &str) -> Value {
    json!({"item_id": id, "name": name, "qty": qty, "unit_price": unit_price})
}

/// SPEC 7.1: a keypad sale has no `payment_id`; it is accepted, appears in
/// the statement and the reconciliation, and fires `transaction.received`
/// with `channel: "pos"`. Its tip, items and operator come back wherever
/// the record is shown.
#[tokio::test]
async fn a_keypad_sale_with_tip_items_and_operator_is_recorded_everywhere() {
    let e = env().await;
    let (hook, mut hooks) = receiver(0).await;
    let (sid, tids) = e.session(1, Some(&hook)).await;
    let tid = tids[0].clone();
    let t = e.provision(&tid).await;
    let (s, op) = e
        .org_json(
            Method::POST,
            &format!("/v1/sessions/{sid}/operators"),
            Some(json!({"name": "Ada", "pin": "4829"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{op}");
    let op_id = op["data"]["operator_id"].as_str().unwrap().to_owned();

    // 2 × 1500.00 + 1 × 300.00 + tip 150.00 = 3450.00; no payment_id.
    let r1 = format!("{tid}-000001");
    let mut keypad = sale(&r1, "3450.00", "1111", false);
    keypad["operator_id"] = json!(op_id);
    keypad["tip_amount"] = json!("150.00");
    keypad["items"] = json!([
        line("beer", "Star Lager", 2, "1500.00"),
        line("water", "Water", 1, "300.00")
    ]);
    assert!(keypad.get("payment_id").is_none());
    let (s, v) = submit(&t, &tid, &keypad).await;
    assert_eq!(
        (s, v["data"]["status"].as_str()),
        (StatusCode::CREATED, Some("approved")),
        "{v}"
    );

    // A tipped keypad sale of another operator-less cashier, offline.
    let r2 = format!("{tid}-000002");
    let mut tipped = sale(&r2, "1000.00", "1111", true);
    tipped["tip_amount"] = json!("100.00");
    let (s, v) = submit(&t, &tid, &tipped).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // Declined and reversed sales count in none of the new totals.
    let mut declined = sale(&format!("{tid}-000003"), "1500.00", "0002", false);
    declined["tip_amount"] = json!("500.00");
    declined["operator_id"] = json!(op_id);
    declined["items"] = json!([line("beer", "Star Lager", 1, "1000.00")]);
    let (s, v) = submit(&t, &tid, &declined).await;
    assert_eq!(
        (s, v["data"]["status"].as_str()),
        (StatusCode::CREATED, Some("declined"))
    );
    let r4 = format!("{tid}-000004");
    let mut reversed = sale(&r4, "1500.00", "1111", false);
    reversed["tip_amount"] = json!("500.00");
    reversed["operator_id"] = json!(op_id);
    reversed["items"] = json!([line("beer", "Star Lager", 1, "1000.00")]);
    let (s, _) = submit(&t, &tid, &reversed).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, v) = signed(
        &t,
        Method::POST,
        &format!("/v1/terminals/{tid}/transactions/{r4}/reversal"),
        None,
    )
    .await;
    assert_eq!(
        (s, v["data"]["status"].as_str()),
        (StatusCode::OK, Some("reversed"))
    );

    // The lookup carries what was submitted.
    let (s, v) = signed(
        &t,
        Method::GET,
        &format!("/v1/terminals/{tid}/transactions/{r1}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let rec = &v["data"];
    assert_eq!(rec["channel"], "pos");
    assert!(rec.get("payment_id").is_none(), "{rec}");
    assert_eq!(
        (&rec["tip_amount"], &rec["operator_id"], &rec["items"]),
        (&json!("150.00"), &json!(op_id), &keypad["items"])
    );
    // The statement lists it, with its parts.
    let (_, v) = signed(
        &t,
        Method::GET,
        &format!("/v1/terminals/{tid}/transactions"),
        None,
    )
    .await;
    let first = &v["data"]["content"][0];
    assert_eq!(
        (first["reference"].as_str(), &first["items"]),
        (Some(r1.as_str()), &keypad["items"])
    );
    assert_eq!(v["data"]["content"][1]["tip_amount"], "100.00");
    assert!(v["data"]["content"][1].get("items").is_none());
    // So do the operator's transactions.
    let (_, v) = e
        .org_json(
            Method::GET,
            &format!("/v1/sessions/{sid}/operators/{op_id}/transactions"),
            None,
        )
        .await;
    assert_eq!(v["data"]["content"][0]["tip_amount"], "150.00", "{v}");
    assert_eq!(v["data"]["totalElements"], 3, "{v}");

    // The webhook: Kler's payload with channel pos and the parts.
    let (_, w) = recv_event(&mut hooks, "transaction.received").await;
    let d = &w["data"];
    assert_eq!(
        (
            d["channel"].as_str(),
            d["reference"].as_str(),
            d["status"].as_str()
        ),
        (Some("pos"), Some(r1.as_str()), Some("approved")),
        "{w}"
    );
    assert_eq!(
        (&d["tip_amount"], &d["items"]),
        (&json!("150.00"), &keypad["items"])
    );
    assert_eq!(d["operator_id"], json!(op_id));
    assert!(d.get("payment_id").is_none(), "{d}");

    // Reconciliation: the keypad sales count like any other, with tips,
    // operators and items beside them.
    let (s, v) = e
        .org_json(Method::GET, &format!("/v1/reconciliation/{sid}"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let d = &v["data"];
    assert_eq!(
        (d["successful_count"].as_u64(), d["total_inflow"].as_str()),
        (Some(2), Some("4450.00")),
        "{d}"
    );
    assert_eq!(
        d["by_channel"]["pos"],
        json!({"count": 2, "total": "4450.00"})
    );
    assert_eq!(d["tips"], json!({"count": 2, "total": "250.00"}), "{d}");
    assert_eq!(
        d["by_operator"],
        json!({ op_id.as_str(): {"count": 1, "total": "3450.00"} }),
        "{d}"
    );
    assert_eq!(
        d["by_item"],
        json!({
            "beer": {"name": "Star Lager", "qty": 2, "total": "3000.00"},
            "water": {"name": "Water", "qty": 1, "total": "300.00"}
        }),
        "{d}"
    );
    assert_eq!(
        d["failed_count"], 2,
        "the declined and the reversed sale: {d}"
    );
    e.sim.shutdown().await;
}

/// `check_parts` on submission: a tip above the amount, items that do not
/// add up, a refund with a tip, an overlong operator are 422 and nothing is
/// recorded; idempotency still matches on kind, amount, currency and card.
#[tokio::test]
async fn tips_and_items_that_do_not_fit_the_amount_are_refused() {
    let e = env().await;
    let (sid, tid, t) = e.one_terminal().await;
    let refused = |body: Value, code: &'static str| {
        let t = &t;
        let tid = &tid;
        async move {
            let (s, v) = submit(t, tid, &body).await;
            assert_eq!(
                (s, err_code(&v)),
                (StatusCode::UNPROCESSABLE_ENTITY, code),
                "{body}: {v}"
            );
            v["error"]["message"].as_str().unwrap().to_owned()
        }
    };
    let r = |n: u32| format!("{tid}-{n:06}");

    let mut b = sale(&r(1), "100.00", "1111", false);
    b["tip_amount"] = json!("100.01");
    assert!(refused(b, "invalid_request").await.contains("tip_amount"));
    let mut b = sale(&r(2), "100.00", "1111", false);
    b["items"] = json!([line("beer", "Beer", 3, "30.00")]);
    let m = refused(b, "invalid_request").await;
    assert!(m.contains("90.00") && m.contains("100.00"), "{m}");
    let mut b = sale(&r(3), "100.00", "1111", false);
    b["items"] = json!([]);
    refused(b, "invalid_request").await;
    let mut b = sale(&r(4), "100.00", "1111", false);
    b["items"] = json!([line("beer", "Beer", 0, "100.00")]);
    refused(b, "invalid_request").await;
    let mut b = sale(&r(5), "100.00", "1111", false);
    b["items"] = json!([line("beer", "Beer", 1, "0.00")]);
    b["tip_amount"] = json!("100.00");
    refused(b, "invalid_request").await;
    let mut b = sale(&r(6), "100.00", "1111", false);
    b["kind"] = json!("refund");
    b["original_reference"] = json!(r(99));
    b["tip_amount"] = json!("1.00");
    assert!(refused(b, "invalid_request").await.contains("refund"));
    let mut b = sale(&r(7), "100.00", "1111", false);
    b["operator_id"] = json!("o".repeat(65));
    refused(b, "invalid_operator_id").await;
    // Nothing of that was recorded.
    let (_, v) = signed(
        &t,
        Method::GET,
        &format!("/v1/terminals/{tid}/transactions"),
        None,
    )
    .await;
    assert_eq!(v["data"]["totalElements"], 0, "{v}");

    // What fits is accepted: lines + tip == amount, a 64-character operator.
    let mut b = sale(&r(8), "100.00", "1111", false);
    b["items"] = json!([line("beer", "Beer", 3, "30.00")]);
    b["tip_amount"] = json!("10.00");
    b["operator_id"] = json!("o".repeat(64));
    let (s, first) = submit(&t, &tid, &b).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    // A replay with other (valid) parts but the same kind, amount, currency
    // and card is the same transaction: the recorded answer and record.
    b["items"] = json!([line("water", "Water", 1, "100.00")]);
    b.as_object_mut().unwrap().remove("tip_amount");
    let (s, again) = submit(&t, &tid, &b).await;
    assert_eq!((s, &again["data"]), (StatusCode::OK, &first["data"]));
    let (_, v) = signed(
        &t,
        Method::GET,
        &format!("/v1/terminals/{tid}/transactions/{}", r(8)),
        None,
    )
    .await;
    assert_eq!(v["data"]["items"][0]["item_id"], "beer", "{v}");
    let (_, v) = e
        .org_json(Method::GET, &format!("/v1/reconciliation/{sid}"), None)
        .await;
    assert_eq!(v["data"]["by_item"]["beer"]["qty"], 3, "{v}");
    assert_eq!(v["data"]["tips"], json!({"count": 1, "total": "10.00"}));
    e.sim.shutdown().await;
}
