//! Black-box tests of kler-sim over loopback with a real HTTP client:
//! sessions, payments, the command stream, transactions, webhooks, state.

use std::time::Duration;

use kler_sim::client::{OrgClient, SignedClient};
use proto::signing::{Credentials, IncomingHeaders, NonceCache, verify_request};
use proto::wire::ProvisionResponse;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::common::*;

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[tokio::test]
async fn sessions_lifecycle_and_org_key() {
    let e = env().await;
    let (sid, tids) = e.session(3, None).await;
    assert_eq!(tids.len(), 3);
    assert_eq!(tids[0], format!("pos_{}_001", &sid[..6]));
    assert_eq!(tids[2], format!("pos_{}_003", &sid[..6]));

    let (s, v) = e
        .org_json(Method::GET, &format!("/v1/sessions/{sid}"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["success"], json!(true));
    assert_eq!(v["data"]["status"], "active");
    assert_eq!(v["data"]["currency"], "NGN");
    assert_eq!(v["data"]["pos_terminals"][0]["status"], "offline");
    assert!(v["data"]["collection_account"]["account_number"].is_string());

    // No key, wrong key.
    let r = e
        .http
        .get(format!("{}/v1/sessions/{sid}", e.sim.url()))
        .send()
        .await
        .unwrap();
    let (s, v) = json_of(r).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let r = e
        .http
        .post(format!("{}/v1/sessions", e.sim.url()))
        .header("x-api-key", "wrong")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let (s, v) = e.org_json(Method::GET, "/v1/sessions/nope", None).await;
    assert_eq!((s, err_code(&v)), (StatusCode::NOT_FOUND, "not_found"));

    // A session starting later is pending, and can be cancelled.
    let (s, v) = e
        .org_json(
            Method::POST,
            "/v1/sessions",
            Some(json!({"external_event_id": "later", "name": "Later", "starts_at": "2099-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(v["data"]["status"], "pending");
    assert_eq!(v["data"]["pos_terminals"], json!([]));
    let later = v["data"]["session_id"].as_str().unwrap().to_owned();
    let (s, v) = e
        .org_json(Method::PATCH, &format!("/v1/sessions/{later}/cancel"), None)
        .await;
    assert_eq!(
        (s, v["data"]["status"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    let (s, v) = e
        .org_json(Method::PATCH, &format!("/v1/sessions/{later}/close"), None)
        .await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::CONFLICT, "session_cancelled")
    );

    // Close, twice (idempotent).
    for _ in 0..2 {
        let (s, v) = e
            .org_json(Method::PATCH, &format!("/v1/sessions/{sid}/close"), None)
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["data"]["status"], "closed");
        assert!(v["data"]["closed_at"].is_string());
    }
    // Cancelling an active/closed session is refused.
    let (s, v) = e
        .org_json(Method::PATCH, &format!("/v1/sessions/{sid}/cancel"), None)
        .await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::CONFLICT, "session_not_pending")
    );
    e.sim.shutdown().await;
}

#[tokio::test]
async fn bad_input_is_refused_with_the_right_status() {
    let e = env().await;
    let base =
        json!({"external_event_id": "e", "name": "n", "collection": {"pos": true, "pos_count": 1}});
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            json!({"external_event_id": "e", "name": "n", "collection": {"pos": true, "pos_count": 0}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_pos_count",
        ),
        (
            json!({"external_event_id": "e", "name": "n", "collection": {"pos": true, "pos_count": 51}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_pos_count",
        ),
        (
            json!({"external_event_id": "e", "name": "n", "currency": "USD"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsupported_currency",
        ),
        (
            json!({"external_event_id": "e", "name": 5}),
            StatusCode::BAD_REQUEST,
            "invalid_name",
        ),
        (
            json!({"name": "n"}),
            StatusCode::BAD_REQUEST,
            "missing_external_event_id",
        ),
        (
            json!({"external_event_id": "e", "name": "n", "collection": {"pos": "yes"}}),
            StatusCode::BAD_REQUEST,
            "invalid_collection_pos",
        ),
        (
            json!({"external_event_id": "e", "name": "n", "webhook_url": "ftp://x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_webhook_url",
        ),
        (
            json!({"external_event_id": "e", "name": "n", "starts_at": "tomorrow"}),
            StatusCode::BAD_REQUEST,
            "invalid_starts_at",
        ),
    ];
    for (body, status, code) in cases {
        let (s, v) = e
            .org_json(Method::POST, "/v1/sessions", Some(body.clone()))
            .await;
        assert_eq!((s, err_code(&v)), (status, code), "{body}");
    }
    // Unknown fields are ignored.
    let mut extra = base.clone();
    extra["surprise"] = json!({"deep": [1, 2]});
    let (s, _) = e.org_json(Method::POST, "/v1/sessions", Some(extra)).await;
    assert_eq!(s, StatusCode::CREATED);
    // Malformed JSON, empty body.
    for raw in ["{\"name\":", "", "[1,2]", "\u{0}"] {
        let r = e
            .org
            .request(Method::POST, "/v1/sessions")
            .body(raw)
            .send()
            .await
            .unwrap();
        let (s, v) = json_of(r).await;
        assert_eq!(
            (s, err_code(&v)),
            (StatusCode::BAD_REQUEST, "malformed_json"),
            "{raw:?}"
        );
    }
    // Over 64 KiB: 413, with and without a Content-Length.
    let big = format!("{{\"name\":\"{}\"}}", "x".repeat(70 * 1024));
    let r = e
        .org
        .request(Method::POST, "/v1/sessions")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    let (s, v) = json_of(r).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big
        .into_bytes()
        .chunks(8192)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let r = e
        .org
        .request(Method::POST, "/v1/sessions")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Unknown routes and methods: JSON errors.
    let (s, v) = e.org_json(Method::GET, "/v1/nothing/here", None).await;
    assert_eq!((s, err_code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    let (s, v) = e.org_json(Method::PUT, "/v1/sessions", None).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    // Bad query parameters.
    let (s, v) = e.org_json(Method::GET, "/v1/terminals?page=-1", None).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::BAD_REQUEST, "invalid_query")
    );
    // The server still works.
    let (s, _) = e.org_json(Method::GET, "/v1/terminals", None).await;
    assert_eq!(s, StatusCode::OK);
    e.sim.shutdown().await;
}

#[tokio::test]
async fn provisioning_and_signature_rejections() {
    let e = env().await;
    let (sid, tids) = e.session(2, None).await;
    let (other_sid, other) = e.session(1, None).await;
    let t = e.provision(&tids[0]).await;
    let hb = json!({"agent_version": "0.1.0", "state": "idle"});
    let path = format!("/v1/terminals/{}/heartbeat", tids[0]);
    let (s, v) = signed(&t, Method::POST, &path, Some(&hb)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["session_status"], "active");

    // The terminal may read its own session, not another.
    let (s, v) = signed(&t, Method::GET, &format!("/v1/sessions/{sid}"), None).await;
    assert_eq!(
        (s, v["data"]["session_id"].as_str()),
        (StatusCode::OK, Some(sid.as_str()))
    );
    let (s, v) = signed(&t, Method::GET, &format!("/v1/sessions/{other_sid}"), None).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::FORBIDDEN, "terminal_not_in_session")
    );

    // Another terminal's path.
    let (s, v) = signed(
        &t,
        Method::POST,
        &format!("/v1/terminals/{}/heartbeat", tids[1]),
        Some(&hb),
    )
    .await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::FORBIDDEN, "terminal_mismatch")
    );
    let _ = other;

    // Timestamp outside the window.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let body = hb.to_string().into_bytes();
    let r = t
        .request_at(Method::POST, &path, &body, now - 301)
        .unwrap()
        .send()
        .await
        .unwrap();
    let (s, v) = json_of(r).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::UNAUTHORIZED, "timestamp_out_of_window")
    );

    // Replay of the very same signed request.
    let req = t
        .request(Method::POST, &path, &body)
        .unwrap()
        .build()
        .unwrap();
    let again = req.try_clone().unwrap();
    assert_eq!(e.http.execute(req).await.unwrap().status(), StatusCode::OK);
    let (s, v) = json_of(e.http.execute(again).await.unwrap()).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::UNAUTHORIZED, "nonce_replayed")
    );

    // Tampered body: bad signature.
    let mut req = t
        .request(Method::POST, &path, &body)
        .unwrap()
        .build()
        .unwrap();
    *req.body_mut() = Some(
        json!({"agent_version": "9.9.9", "state": "idle"})
            .to_string()
            .into(),
    );
    let (s, v) = json_of(e.http.execute(req).await.unwrap()).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::UNAUTHORIZED, "invalid_signature")
    );

    // Missing header.
    let r = e
        .http
        .post(format!("{}{path}", e.sim.url()))
        .json(&hb)
        .send()
        .await
        .unwrap();
    let (s, v) = json_of(r).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::UNAUTHORIZED, "missing_signature_header")
    );

    // Re-provisioning invalidates the old credentials.
    let t2 = e.provision(&tids[0]).await;
    assert_ne!(t2.creds.api_key, t.creds.api_key);
    let (s, v) = signed(&t, Method::POST, &path, Some(&hb)).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::UNAUTHORIZED, "unknown_api_key")
    );
    let (s, _) = signed(&t2, Method::POST, &path, Some(&hb)).await;
    assert_eq!(s, StatusCode::OK);
    // Wrong tenant header with the right key.
    let mut c = t2.clone();
    c.creds = Credentials {
        tenant_id: "other-tenant".into(),
        ..t2.creds.clone()
    };
    let (s, v) = signed(&c, Method::POST, &path, Some(&hb)).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::UNAUTHORIZED, "credential_mismatch")
    );
    // Provisioning an unknown terminal.
    let (s, v) = e
        .org_json(Method::POST, "/v1/terminals/pos_000000_001/provision", None)
        .await;
    assert_eq!((s, err_code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    e.sim.shutdown().await;
}

#[tokio::test]
async fn transactions_idempotency_decline_rules_lookup_statement_reversal() {
    let e = env().await;
    let (sid, tids) = e.session(1, None).await;
    let tid = &tids[0];
    let t = e.provision(tid).await;
    let r1 = format!("{tid}-000001");
    let body = sale(&r1, "1500.50", "1111", false);
    let (s, v) = submit(&t, tid, &body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["data"]["status"], "approved");
    assert_eq!(v["data"]["auth_code"].as_str().unwrap().len(), 6);
    let txn = v["data"]["transaction_id"].as_str().unwrap().to_owned();
    // Replay: same answer. Key order does not matter.
    let reordered: Value = serde_json::from_str(&body.to_string()).unwrap();
    let (s, v2) = submit(&t, tid, &reordered).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v2["data"], v["data"]);
    // Same reference, different body.
    let (s, v) = submit(&t, tid, &sale(&r1, "1500.51", "1111", false)).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::CONFLICT, "idempotency_conflict")
    );
    // Key and reference disagree; key missing.
    let b = sale(&format!("{tid}-000002"), "10.00", "1111", false)
        .to_string()
        .into_bytes();
    let r = t
        .request(
            Method::POST,
            &format!("/v1/terminals/{tid}/transactions"),
            &b,
        )
        .unwrap()
        .header("Idempotency-Key", "something-else")
        .send()
        .await
        .unwrap();
    let (s, v) = json_of(r).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::BAD_REQUEST, "idempotency_key_mismatch")
    );
    let (s, v) = signed(
        &t,
        Method::POST,
        &format!("/v1/terminals/{tid}/transactions"),
        Some(&sale("x-1", "1.00", "1111", false)),
    )
    .await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::BAD_REQUEST, "missing_idempotency_key")
    );
    // Invalid amounts: 422 with the proto code; zero too.
    for (amount, code) in [
        ("1.5", "amount_decimals"),
        ("0.00", "amount_zero"),
        ("10000000.01", "amount_too_large"),
        ("-1.00", "amount_negative"),
    ] {
        let (s, v) = submit(&t, tid, &sale(&format!("{tid}-bad"), amount, "1111", false)).await;
        assert_eq!(
            (s, err_code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, code),
            "{amount}"
        );
    }
    // A PAN in the token is refused.
    let mut pan = sale(&format!("{tid}-pan"), "1.00", "1111", false);
    pan["card"]["token"] = json!("4111111111111111");
    let (s, v) = submit(&t, tid, &pan).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::BAD_REQUEST, "invalid_card_token")
    );
    // Decline rules by last4, online and offline.
    let (_, v) = submit(
        &t,
        tid,
        &sale(&format!("{tid}-000003"), "100.00", "0002", false),
    )
    .await;
    assert_eq!(
        (
            v["data"]["status"].as_str(),
            v["data"]["decline_reason"].as_str()
        ),
        (Some("declined"), Some("card_declined"))
    );
    let (_, v) = submit(
        &t,
        tid,
        &sale(&format!("{tid}-000004"), "100.00", "9995", true),
    )
    .await;
    assert_eq!(
        (
            v["data"]["status"].as_str(),
            v["data"]["decline_reason"].as_str()
        ),
        (Some("declined"), Some("insufficient_funds"))
    );
    let mut with_op = sale(&format!("{tid}-000005"), "200.00", "4444", true);
    let (_, op) = e
        .org_json(
            Method::POST,
            &format!("/v1/sessions/{sid}/operators"),
            Some(json!({"name": "Ada", "role": "cashier"})),
        )
        .await;
    let op_id = op["data"]["operator_id"].as_str().unwrap().to_owned();
    with_op["operator_id"] = json!(op_id);
    let (_, v) = submit(&t, tid, &with_op).await;
    assert_eq!(v["data"]["status"], "approved");

    // Lookup.
    let (s, v) = signed(
        &t,
        Method::GET,
        &format!("/v1/terminals/{tid}/transactions/{r1}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["data"]["transaction_id"], json!(txn));
    assert_eq!(v["data"]["card"], json!({"brand": "visa", "last4": "1111"}));
    assert!(v["data"].get("token").is_none() && v["data"]["card"].get("token").is_none());
    let (s, v) = signed(
        &t,
        Method::GET,
        &format!("/v1/terminals/{tid}/transactions/{tid}-999999"),
        None,
    )
    .await;
    assert_eq!((s, err_code(&v)), (StatusCode::NOT_FOUND, "not_found"));

    // Statement with pagination and a status filter.
    let (s, v) = signed(
        &t,
        Method::GET,
        &format!("/v1/terminals/{tid}/transactions?page=0&size=2"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            v["data"]["totalElements"].as_u64(),
            v["data"]["totalPages"].as_u64()
        ),
        (Some(4), Some(2))
    );
    assert_eq!(v["data"]["content"][0]["reference"], json!(r1));
    let (_, v) = signed(
        &t,
        Method::GET,
        &format!("/v1/terminals/{tid}/transactions?status=declined"),
        None,
    )
    .await;
    assert_eq!(v["data"]["totalElements"], 2);

    // Operators and their transactions.
    let (s, v) = e
        .org_json(Method::GET, &format!("/v1/sessions/{sid}/operators"), None)
        .await;
    assert_eq!(
        (s, v["data"]["totalElements"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    let (s, v) = e
        .org_json(
            Method::GET,
            &format!("/v1/sessions/{sid}/operators/{op_id}/transactions"),
            None,
        )
        .await;
    assert_eq!(
        (s, v["data"]["content"][0]["amount"].as_str()),
        (StatusCode::OK, Some("200.00"))
    );
    let (s, _) = e
        .org_json(
            Method::GET,
            &format!("/v1/sessions/{sid}/operators/op_nobody/transactions"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Reconciliation before and after a reversal.
    let (s, v) = e
        .org_json(Method::GET, &format!("/v1/reconciliation/{sid}"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let d = &v["data"];
    assert_eq!(
        (
            d["total_inflow"].as_str(),
            d["successful_count"].as_u64(),
            d["failed_count"].as_u64()
        ),
        (Some("1700.50"), Some(2), Some(2))
    );
    assert_eq!(
        d["by_terminal"][tid],
        json!({"count": 2, "total": "1700.50"})
    );
    assert_eq!(d["by_channel"]["pos"]["total"], "1700.50");
    let rev = format!("/v1/terminals/{tid}/transactions/{r1}/reversal");
    for _ in 0..2 {
        let (s, v) = signed(
            &t,
            Method::POST,
            &rev,
            Some(&json!({"reason": "no_answer"})),
        )
        .await;
        assert_eq!(
            (s, v["data"]["status"].as_str()),
            (StatusCode::OK, Some("reversed"))
        );
    }
    let (_, v) = e
        .org_json(Method::GET, &format!("/v1/reconciliation/{sid}"), None)
        .await;
    assert_eq!(v["data"]["total_inflow"], "200.00");
    assert_eq!(v["data"]["successful_count"], 1);
    // Reversal of an unknown reference: a no-op 200, and a late submission
    // under that reference is never approved.
    let ghost = format!("{tid}-000077");
    let (s, v) = signed(
        &t,
        Method::POST,
        &format!("/v1/terminals/{tid}/transactions/{ghost}/reversal"),
        None,
    )
    .await;
    assert_eq!(
        (s, v["data"]["status"].as_str()),
        (StatusCode::OK, Some("not_found"))
    );
    let (_, v) = submit(&t, tid, &sale(&ghost, "5.00", "1111", false)).await;
    assert_eq!(
        (
            v["data"]["status"].as_str(),
            v["data"]["decline_reason"].as_str()
        ),
        (Some("declined"), Some("reversed"))
    );
    e.sim.shutdown().await;
}

/// SPEC 4.3: idempotency is by reference. The forward of an offline
/// approval (`offline: true`, another `captured_at`) after an online
/// authorization whose answer was lost gets the recorded answer, also once
/// the session has closed; another amount or card under the reference is a
/// conflict.
#[tokio::test]
async fn idempotency_is_by_reference_kind_amount_currency_and_card() {
    let e = env().await;
    let (sid, tids) = e.session(1, None).await;
    let tid = &tids[0];
    let t = e.provision(tid).await;
    let r1 = format!("{tid}-000001");
    let (s, first) = submit(&t, tid, &sale(&r1, "2500.00", "1111", false)).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    assert_eq!(first["data"]["status"], "approved");
    let mut forward = sale(&r1, "2500.00", "1111", true);
    forward["captured_at"] = json!("2026-11-21T10:00:07Z");
    let replay = |body: Value| {
        let t = &t;
        async move {
            let bytes = body.to_string().into_bytes();
            t.request(
                Method::POST,
                &format!("/v1/terminals/{tid}/transactions"),
                &bytes,
            )
            .unwrap()
            .header("Idempotency-Key", body["reference"].as_str().unwrap())
            .send()
            .await
            .unwrap()
        }
    };
    let r = replay(forward.clone()).await;
    assert_eq!(
        r.headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let (s, v) = json_of(r).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"], first["data"]);
    // Another card or amount under the same reference: a conflict.
    let mut other_card = forward.clone();
    other_card["card"]["token"] = json!("0123456789abcdef0123456789abcdef");
    let mut other_amount = forward.clone();
    other_amount["amount"] = json!("2500.01");
    for body in [other_card, other_amount] {
        let (s, v) = submit(&t, tid, &body).await;
        assert_eq!(
            (s, err_code(&v)),
            (StatusCode::CONFLICT, "idempotency_conflict"),
            "{v}"
        );
    }
    // After the close the recorded reference still replays; a new one is
    // refused unless it is an offline sale captured before the close.
    let (s, v) = e
        .org_json(Method::PATCH, &format!("/v1/sessions/{sid}/close"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = json_of(replay(forward).await).await;
    assert_eq!((s, &v["data"]), (StatusCode::OK, &first["data"]), "{v}");
    let (s, v) = submit(
        &t,
        tid,
        &sale(&format!("{tid}-000002"), "10.00", "1111", false),
    )
    .await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::CONFLICT, "session_closed"),
        "{v}"
    );
    // A refund of the session's sale stays possible after the close
    // (SPEC 5.9).
    let mut refund = sale(&format!("{tid}-000003"), "500.00", "1111", false);
    refund["kind"] = json!("refund");
    refund["original_reference"] = json!(r1);
    let (s, v) = submit(&t, tid, &refund).await;
    assert_eq!(
        (s, v["data"]["status"].as_str()),
        (StatusCode::CREATED, Some("approved")),
        "{v}"
    );
}

#[tokio::test]
async fn partner_payment_flow_over_the_command_stream() {
    let (hook, mut hooks) = receiver(0).await;
    let e = env().await;
    let (sid, tids) = e.session(1, Some(&hook)).await;
    let tid = tids[0].clone();
    let t = e.provision(&tid).await;
    let pay = json!({"terminal_id": tid, "amount": "2000.00", "currency": "NGN", "reference": "ORDER-1",
                     "metadata": {"store_id": "st1", "pos_payment_id": "pp1", "pos_merchant_id": "pm1"}});
    // Offline terminal.
    let r = e
        .org
        .request(Method::POST, "/v1/payments")
        .header("Idempotency-Key", "k1")
        .json(&pay)
        .send()
        .await
        .unwrap();
    let (s, v) = json_of(r).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::CONFLICT, "terminal_offline")
    );
    // Missing key.
    let (s, v) = e
        .org_json(Method::POST, "/v1/payments", Some(pay.clone()))
        .await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::BAD_REQUEST, "missing_idempotency_key")
    );

    let mut stream = Sse::open(&t, &tid, None).await;
    let (_, v) = e
        .org_json(
            Method::GET,
            &format!("/v1/terminals?session_id={sid}"),
            None,
        )
        .await;
    assert_eq!(v["data"]["content"][0]["status"], "online");

    let create = |key: &'static str, body: Value| {
        let org = e.org.clone();
        async move {
            json_of(
                org.request(Method::POST, "/v1/payments")
                    .header("Idempotency-Key", key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let (s, v) = create("k1", pay.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["data"]["status"], "pending");
    let pid = v["data"]["payment_id"].as_str().unwrap().to_owned();
    // Replay and conflict.
    let (s, v2) = create("k1", pay.clone()).await;
    assert_eq!((s, &v2["data"]), (StatusCode::CREATED, &v["data"]));
    let mut other = pay.clone();
    other["amount"] = json!("2000.01");
    let (s, v) = create("k1", other).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::CONFLICT, "idempotency_conflict")
    );
    // Busy now.
    let (s, v) = create("k2", pay.clone()).await;
    assert_eq!((s, err_code(&v)), (StatusCode::CONFLICT, "terminal_busy"));
    // Invalid amount → 422.
    let mut bad = pay.clone();
    bad["amount"] = json!("20.5");
    let (s, v) = create("k3", bad).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "amount_decimals")
    );

    // The terminal gets the sale.
    let (seq, cmd) = stream.command().await;
    assert_eq!(seq, 1);
    assert_eq!(cmd["type"], "sale");
    assert_eq!(cmd["payment_id"], json!(pid));
    assert_eq!(
        (cmd["amount"].as_str(), cmd["partner_reference"].as_str()),
        (Some("2000.00"), Some("ORDER-1"))
    );
    assert_eq!(cmd["offline_policy"], "prefer_online");
    assert_eq!(cmd["metadata"]["store_id"], "st1");
    assert!(cmd["expires_at"].as_str().unwrap().ends_with('Z'));
    let cid = cmd["command_id"].as_str().unwrap();
    let (s, _) = signed(
        &t,
        Method::POST,
        &format!("/v1/terminals/{tid}/commands/{cid}/ack"),
        Some(&json!({"status": "accepted"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = signed(
        &t,
        Method::POST,
        &format!("/v1/terminals/{tid}/commands/cmd_nope/ack"),
        Some(&json!({"status": "accepted"})),
    )
    .await;
    assert_eq!((s, err_code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    let (s, v) = signed(
        &t,
        Method::POST,
        &format!("/v1/terminals/{tid}/commands/{cid}/ack"),
        Some(&json!({"status": "maybe"})),
    )
    .await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::BAD_REQUEST, "invalid_status")
    );
    let ev = json!({"status": "in_progress", "at": "2026-11-21T10:00:01Z"});
    for _ in 0..2 {
        let (s, v) = signed(
            &t,
            Method::POST,
            &format!("/v1/terminals/{tid}/payments/{pid}/events"),
            Some(&ev),
        )
        .await;
        assert_eq!(
            (s, v["data"]["status"].as_str()),
            (StatusCode::OK, Some("in_progress"))
        );
    }
    let (_, v) = e
        .org_json(Method::GET, &format!("/v1/payments/{pid}"), None)
        .await;
    assert_eq!(v["data"]["status"], "in_progress");
    let mut tx = sale(&format!("{tid}-000001"), "2000.00", "4444", false);
    tx["payment_id"] = json!(pid);
    tx["card"]["brand"] = json!("mastercard");
    let (s, v) = submit(&t, &tid, &tx).await;
    assert_eq!(
        (s, v["data"]["status"].as_str()),
        (StatusCode::CREATED, Some("approved"))
    );
    let (s, v) = e
        .org_json(Method::GET, &format!("/v1/payments/{pid}"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let d = &v["data"];
    assert_eq!(d["status"], "approved");
    assert_eq!(
        d["transaction"]["reference"],
        json!(format!("{tid}-000001"))
    );
    assert_eq!(
        d["transaction"]["card"],
        json!({"brand": "mastercard", "last4": "4444"})
    );
    assert_eq!(d["transaction"]["offline"], json!(false));
    assert!(
        d["transaction"]["auth_code"].is_string() && d["transaction"]["approved_at"].is_string()
    );
    let (s, v) = e.org_json(Method::GET, "/v1/payments/pay_nope", None).await;
    assert_eq!((s, err_code(&v)), (StatusCode::NOT_FOUND, "not_found"));

    // Webhooks: transaction.received with Kler's fields, payment.updated.
    let (_, w) = recv_event(&mut hooks, "transaction.received").await;
    assert_eq!(
        (
            w["data"]["channel"].as_str(),
            w["data"]["terminal_id"].as_str()
        ),
        (Some("pos"), Some(tid.as_str()))
    );
    assert_eq!(w["data"]["status"], "approved");
    assert_eq!(w["session_id"], json!(sid));
    let (_, w) = recv_event(&mut hooks, "payment.updated").await;
    assert_eq!(w["data"]["payment_id"], json!(pid));

    // A rejected sale ends the payment as failed with the reason.
    let (s, v) = create("k4", pay.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let pid2 = v["data"]["payment_id"].as_str().unwrap().to_owned();
    let (_, cmd) = stream.command().await;
    let cid = cmd["command_id"].as_str().unwrap();
    let (s, v) = signed(
        &t,
        Method::POST,
        &format!("/v1/terminals/{tid}/commands/{cid}/ack"),
        Some(&json!({"status": "rejected"})),
    )
    .await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "missing_reason")
    );
    let (s, _) = signed(
        &t,
        Method::POST,
        &format!("/v1/terminals/{tid}/commands/{cid}/ack"),
        Some(&json!({"status": "rejected", "reason": "offline_limit"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (_, v) = e
        .org_json(Method::GET, &format!("/v1/payments/{pid2}"), None)
        .await;
    assert_eq!(
        (v["data"]["status"].as_str(), v["data"]["reason"].as_str()),
        (Some("failed"), Some("offline_limit"))
    );
    e.sim.shutdown().await;
}

async fn payment_on(e: &Env, tid: &str, key: &str) -> String {
    let r = e
        .org
        .request(Method::POST, "/v1/payments")
        .header("Idempotency-Key", key)
        .json(&json!({"terminal_id": tid, "amount": "500.00", "currency": "NGN", "reference": key}))
        .send()
        .await
        .unwrap();
    let (s, v) = json_of(r).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["data"]["payment_id"].as_str().unwrap().to_owned()
}

/// Pings keep their fixed schedule while commands flow faster than it: a
/// stream busy with commands still pings every interval (SPEC 4.3).
#[tokio::test]
async fn pings_keep_their_schedule_while_commands_flow() {
    let mut cfg = fast_config();
    cfg.ping_interval = Duration::from_millis(400);
    let e = env_with(cfg).await;
    let (_, tid, t) = e.one_terminal().await;
    let mut stream = Sse::open(&t, &tid, None).await;
    // A command every 100 ms for 2 s: each one arrives before the next ping
    // is due, which used to push that ping back again.
    let mut pace = tokio::time::interval(Duration::from_millis(100));
    let mut pings = 0;
    for i in 0..20 {
        pace.tick().await;
        let pid = payment_on(&e, &tid, &format!("busy-{i}")).await;
        loop {
            match stream.next().await {
                SseItem::Ping => pings += 1,
                SseItem::Command { .. } => break,
                SseItem::End => panic!("stream ended"),
            }
        }
        // The terminal gives up on it, so the next payment is accepted.
        let failed = json!({"status": "failed", "at": "2026-11-21T10:00:01Z"});
        let path = format!("/v1/terminals/{tid}/payments/{pid}/events");
        let (s, v) = signed(&t, Method::POST, &path, Some(&failed)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    assert!(pings >= 2, "pings while commands flowed: {pings}");
}

#[tokio::test]
async fn abort_confirmed_too_late_and_unanswered() {
    let mut cfg = fast_config();
    // Answered aborts finish well within this; the silent one costs it.
    cfg.abort_wait = Duration::from_millis(2000);
    let e = env_with(cfg).await;
    let (_, tid, t) = e.one_terminal().await;
    let mut stream = Sse::open(&t, &tid, None).await;

    for (outcome, want) in [
        ("aborted", StatusCode::OK),
        ("abort_too_late", StatusCode::CONFLICT),
    ] {
        let pid = payment_on(&e, &tid, &format!("abort-{outcome}")).await;
        let (_, sale_cmd) = stream.command().await;
        assert_eq!(sale_cmd["type"], "sale");
        let org = e.org.clone();
        let p = pid.clone();
        let abort = tokio::spawn(async move {
            json_of(
                org.request(Method::POST, &format!("/v1/payments/{p}/abort"))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        });
        let (_, cmd) = stream.command().await;
        assert_eq!(
            (cmd["type"].as_str(), cmd["payment_id"].as_str()),
            (Some("abort"), Some(pid.as_str()))
        );
        let cid = cmd["command_id"].as_str().unwrap();
        signed(
            &t,
            Method::POST,
            &format!("/v1/terminals/{tid}/commands/{cid}/ack"),
            Some(&json!({"status": "accepted"})),
        )
        .await;
        let (s, _) = signed(
            &t,
            Method::POST,
            &format!("/v1/terminals/{tid}/payments/{pid}/events"),
            Some(&json!({"status": outcome, "at": "2026-11-21T10:00:00Z"})),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let (s, v) = abort.await.unwrap();
        assert_eq!(s, want, "{v}");
        if want == StatusCode::OK {
            assert_eq!(v["data"]["status"], "aborted");
            // Aborting again answers at once.
            let (s, _) = e
                .org_json(Method::POST, &format!("/v1/payments/{pid}/abort"), None)
                .await;
            assert_eq!(s, StatusCode::OK);
        } else {
            assert_eq!(err_code(&v), "abort_too_late");
            // The payment goes on and is approved; then it can be refunded.
            let mut tx = sale(&format!("{tid}-000009"), "500.00", "1111", false);
            tx["payment_id"] = json!(pid);
            submit(&t, &tid, &tx).await;
            let (_, v) = e
                .org_json(Method::GET, &format!("/v1/payments/{pid}"), None)
                .await;
            assert_eq!(v["data"]["status"], "approved");
            let (s, v) = e
                .org_json(Method::POST, &format!("/v1/payments/{pid}/abort"), None)
                .await;
            assert_eq!((s, err_code(&v)), (StatusCode::CONFLICT, "abort_too_late"));
        }
    }
    // No answer in time.
    let pid = payment_on(&e, &tid, "abort-silent").await;
    let (s, v) = e
        .org_json(Method::POST, &format!("/v1/payments/{pid}/abort"), None)
        .await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::GATEWAY_TIMEOUT, "abort_not_confirmed")
    );
    e.sim.shutdown().await;
}

/// SPEC 4.3: references belong to their terminal. A reference that is not
/// `<terminal_id>-…` nor a UUIDv7 is refused 422 `reference_not_yours`.
#[tokio::test]
async fn a_reference_must_be_the_terminals_own() {
    let e = env().await;
    let (_, tids) = e.session(2, None).await;
    let (t1id, t2id) = (tids[0].clone(), tids[1].clone());
    let t1 = e.provision(&t1id).await;
    for other in [
        format!("{t2id}-000001"),
        "ORDER-1".to_owned(),
        format!("{t1id}-"),
        format!("{t1id}000001"),
        uuid::Uuid::new_v4().to_string(),
    ] {
        let (s, v) = submit(&t1, &t1id, &sale(&other, "10.00", "1111", false)).await;
        assert_eq!(
            (s, err_code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "reference_not_yours"),
            "{other}"
        );
        let (s, v) = signed(
            &t1,
            Method::POST,
            &format!("/v1/terminals/{t1id}/transactions/{other}/reversal"),
            None,
        )
        .await;
        assert_eq!(
            (s, err_code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "reference_not_yours"),
            "{other}"
        );
        let (s, v) = signed(
            &t1,
            Method::GET,
            &format!("/v1/terminals/{t1id}/transactions/{other}"),
            None,
        )
        .await;
        assert_eq!(
            (s, err_code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "reference_not_yours"),
            "{other}"
        );
    }
    for own in [format!("{t1id}-000001"), uuid::Uuid::now_v7().to_string()] {
        let (s, v) = submit(&t1, &t1id, &sale(&own, "10.00", "1111", false)).await;
        assert_eq!(
            (s, v["data"]["status"].as_str()),
            (StatusCode::CREATED, Some("approved")),
            "{own}: {v}"
        );
    }
    e.sim.shutdown().await;
}

/// SPEC 4.3: lookups, reversals and payment links of one terminal never
/// touch another's records.
#[tokio::test]
async fn one_terminal_never_touches_another_terminals_records() {
    let e = env().await;
    let (_, tids) = e.session(2, None).await;
    let (t1id, t2id) = (tids[0].clone(), tids[1].clone());
    let t1 = e.provision(&t1id).await;
    let t2 = e.provision(&t2id).await;
    let lookup = |t: &SignedClient, tid: &str, r: &str| {
        let (t, path) = (t.clone(), format!("/v1/terminals/{tid}/transactions/{r}"));
        async move { signed(&t, Method::GET, &path, None).await }
    };

    // A reversal by terminal 1 of a UUIDv7 reference it never submitted
    // leaves a tombstone for terminal 1 only: terminal 2's submission under
    // the same reference is approved.
    let shared = uuid::Uuid::now_v7().to_string();
    let (s, v) = signed(
        &t1,
        Method::POST,
        &format!("/v1/terminals/{t1id}/transactions/{shared}/reversal"),
        None,
    )
    .await;
    assert_eq!(
        (s, v["data"]["status"].as_str()),
        (StatusCode::OK, Some("not_found"))
    );
    let (s, v) = submit(&t2, &t2id, &sale(&shared, "20.00", "1111", false)).await;
    assert_eq!(
        (s, v["data"]["status"].as_str()),
        (StatusCode::CREATED, Some("approved")),
        "{v}"
    );
    // Terminal 1's own late submission is still never approved.
    let mut card2 = sale(&shared, "30.00", "1111", false);
    card2["card"]["token"] = json!("0a1b2c3d4e5f60718293a4b5c6d7e8f9");
    let (s, v) = submit(&t1, &t1id, &card2).await;
    assert_eq!(
        (
            s,
            v["data"]["status"].as_str(),
            v["data"]["decline_reason"].as_str()
        ),
        (StatusCode::CREATED, Some("declined"), Some("reversed")),
        "{v}"
    );
    // Each terminal sees its own record under the shared reference.
    let (_, v) = lookup(&t2, &t2id, &shared).await;
    assert_eq!(
        (v["data"]["status"].as_str(), v["data"]["amount"].as_str()),
        (Some("approved"), Some("20.00"))
    );
    let (_, v) = lookup(&t1, &t1id, &shared).await;
    assert_eq!(
        (v["data"]["status"].as_str(), v["data"]["amount"].as_str()),
        (Some("reversed"), Some("30.00"))
    );

    // Terminal 1 cannot reverse or look up terminal 2's UUIDv7 sale.
    let theirs = uuid::Uuid::now_v7().to_string();
    let (s, _) = submit(&t2, &t2id, &sale(&theirs, "40.00", "1111", false)).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = lookup(&t1, &t1id, &theirs).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = signed(
        &t1,
        Method::POST,
        &format!("/v1/terminals/{t1id}/transactions/{theirs}/reversal"),
        None,
    )
    .await;
    assert_eq!(
        (s, v["data"]["status"].as_str()),
        (StatusCode::OK, Some("not_found"))
    );
    let (_, v) = lookup(&t2, &t2id, &theirs).await;
    assert_eq!(v["data"]["status"], "approved");

    // A payment routed to terminal 2 is settled by terminal 2 only. Terminal
    // 1 naming it is ignored: not linked, so its own reversal leaves the
    // payment approved.
    let _online = Sse::open(&t2, &t2id, None).await;
    let pid = payment_on(&e, &t2id, "t2-order-1").await;
    let mut mine = sale(&format!("{t2id}-000001"), "500.00", "1111", false);
    mine["payment_id"] = json!(pid);
    let (s, _) = submit(&t2, &t2id, &mine).await;
    assert_eq!(s, StatusCode::CREATED);
    let r1 = format!("{t1id}-000001");
    let mut intruder = sale(&r1, "500.00", "1111", false);
    intruder["payment_id"] = json!(pid);
    let (s, v) = submit(&t1, &t1id, &intruder).await;
    assert_eq!(
        (s, v["data"]["status"].as_str()),
        (StatusCode::CREATED, Some("approved"))
    );
    let (_, v) = lookup(&t1, &t1id, &r1).await;
    assert!(v["data"]["payment_id"].is_null(), "{v}");
    let (s, v) = signed(
        &t1,
        Method::POST,
        &format!("/v1/terminals/{t1id}/transactions/{r1}/reversal"),
        None,
    )
    .await;
    assert_eq!(
        (s, v["data"]["status"].as_str()),
        (StatusCode::OK, Some("reversed"))
    );
    let (_, v) = e
        .org_json(Method::GET, &format!("/v1/payments/{pid}"), None)
        .await;
    assert_eq!(
        (
            v["data"]["status"].as_str(),
            v["data"]["transaction"]["reference"].as_str()
        ),
        (Some("approved"), Some(format!("{t2id}-000001").as_str()))
    );
    e.sim.shutdown().await;
}

/// A command about a payment another path already settled (a transaction,
/// a payment event, an abort) is never delivered again, with or without
/// `Last-Event-ID`.
#[tokio::test]
async fn commands_of_settled_payments_are_never_redelivered() {
    let e = env().await;
    let (_, tid, t) = e.one_terminal().await;
    let mut live = Sse::open(&t, &tid, None).await;
    // 1: a sale settled by the terminal's transaction (approved), never acked.
    let approved = payment_on(&e, &tid, "settled-approved").await;
    assert_eq!(live.command().await.0, 1);
    let mut tx = sale(&format!("{tid}-000001"), "500.00", "1111", false);
    tx["payment_id"] = json!(approved);
    let (s, _) = submit(&t, &tid, &tx).await;
    assert_eq!(s, StatusCode::CREATED);
    // 2: a sale declined by the card.
    let declined = payment_on(&e, &tid, "settled-declined").await;
    assert_eq!(live.command().await.0, 2);
    let mut tx = sale(&format!("{tid}-000002"), "500.00", "0002", false);
    tx["payment_id"] = json!(declined);
    submit(&t, &tid, &tx).await;
    // 3 and 4: a sale and its abort, settled by the `aborted` event.
    let aborted = payment_on(&e, &tid, "settled-aborted").await;
    assert_eq!(live.command().await.0, 3);
    let org = e.org.clone();
    let p = aborted.clone();
    let abort = tokio::spawn(async move {
        org.request(Method::POST, &format!("/v1/payments/{p}/abort"))
            .send()
            .await
            .unwrap()
            .status()
    });
    let (id, cmd) = live.command().await;
    assert_eq!((id, cmd["type"].as_str()), (4, Some("abort")));
    let (s, _) = signed(
        &t,
        Method::POST,
        &format!("/v1/terminals/{tid}/payments/{aborted}/events"),
        Some(&json!({"status": "aborted", "at": "2026-11-21T10:00:00Z"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(abort.await.unwrap(), StatusCode::OK);
    // 5: a sale still open.
    let open = payment_on(&e, &tid, "still-open").await;
    assert_eq!(live.command().await.0, 5);
    for (pid, want) in [
        (&approved, "approved"),
        (&declined, "declined"),
        (&aborted, "aborted"),
    ] {
        let (_, v) = e
            .org_json(Method::GET, &format!("/v1/payments/{pid}"), None)
            .await;
        assert_eq!(v["data"]["status"], want);
    }
    drop(live);
    // Reconnects: only the open sale comes (again).
    for last in [None, Some(0)] {
        let mut again = Sse::open(&t, &tid, last).await;
        let (id, cmd) = again.command().await;
        assert_eq!(
            (id, cmd["payment_id"].as_str()),
            (5, Some(open.as_str())),
            "Last-Event-ID {last:?}"
        );
    }
    e.sim.shutdown().await;
}

#[tokio::test]
async fn refunds_are_routed_to_the_sale_terminal() {
    let e = env().await;
    let (sid, tid, t) = e.one_terminal().await;
    let (_, v) = submit(
        &t,
        &tid,
        &sale(&format!("{tid}-000001"), "1000.00", "1111", false),
    )
    .await;
    let txn = v["data"]["transaction_id"].as_str().unwrap().to_owned();
    let refund = |key: &'static str, amount: &'static str, txn: String| {
        let org = e.org.clone();
        async move {
            json_of(
                org.request(Method::POST, &format!("/v1/refunds?transactionId={txn}"))
                    .header("Idempotency-Key", key)
                    .json(&json!({"amount": amount}))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    // Terminal not connected.
    let (s, v) = refund("r1", "400.00", txn.clone()).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::CONFLICT, "terminal_offline")
    );
    let mut stream = Sse::open(&t, &tid, None).await;
    let (s, v) = refund("r1", "400.00", txn.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["data"]["kind"].as_str(), v["data"]["status"].as_str()),
        (Some("refund"), Some("pending"))
    );
    let rid = v["data"]["payment_id"].as_str().unwrap().to_owned();
    let (s, v2) = refund("r1", "400.00", txn.clone()).await;
    assert_eq!(
        (s, &v2["data"]["payment_id"]),
        (StatusCode::CREATED, &json!(rid))
    );
    let (s, v) = refund("r1", "300.00", txn.clone()).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::CONFLICT, "idempotency_conflict")
    );
    // More than what is left (1000 - 400 pending).
    let (s, v) = refund("r2", "600.01", txn.clone()).await;
    assert_eq!(
        (s, err_code(&v)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount_exceeds_refundable"
        )
    );
    let (s, _) = refund("r3", "1.00", "txn_unknown".into()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = json_of(
        e.org
            .request(Method::POST, "/v1/refunds")
            .header("Idempotency-Key", "r4")
            .json(&json!({"amount": "1.00"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::BAD_REQUEST, "invalid_query")
    );

    let (_, cmd) = stream.command().await;
    assert_eq!(cmd["type"], "refund");
    assert_eq!(
        (cmd["original_reference"].as_str(), cmd["amount"].as_str()),
        (Some(format!("{tid}-000001").as_str()), Some("400.00"))
    );
    assert_eq!(cmd["payment_id"], json!(rid));
    let mut rtx = json!({"reference": format!("{tid}-000002"), "payment_id": rid, "kind": "refund", "amount": "400.00",
        "currency": "NGN", "card": card("1111"), "captured_at": "2026-11-21T10:05:00Z", "offline": false,
        "original_reference": format!("{tid}-000001")});
    let (s, v) = submit(&t, &tid, &rtx).await;
    assert_eq!(
        (s, v["data"]["status"].as_str()),
        (StatusCode::CREATED, Some("approved"))
    );
    let (_, v) = e
        .org_json(Method::GET, &format!("/v1/payments/{rid}"), None)
        .await;
    assert_eq!(v["data"]["status"], "approved");
    // A terminal-side refund beyond what is left is declined.
    rtx["reference"] = json!(format!("{tid}-000003"));
    rtx["amount"] = json!("600.01");
    rtx.as_object_mut().unwrap().remove("payment_id");
    let (_, v) = submit(&t, &tid, &rtx).await;
    assert_eq!(v["data"]["decline_reason"], "amount_exceeds_refundable");
    // Refunds are reported beside the gross sales.
    let (_, v) = e
        .org_json(Method::GET, &format!("/v1/reconciliation/{sid}"), None)
        .await;
    assert_eq!(v["data"]["total_inflow"], "1000.00");
    assert_eq!(v["data"]["refunds"], json!({"count": 1, "total": "400.00"}));
    assert_eq!(v["data"]["transaction_count"], 1);
    let (_, v) = e.org_json(Method::GET, "/v1/sandbox/scenarios", None).await;
    assert!(v["data"]["available"].as_array().unwrap().len() >= 6);
    drop(stream);
    e.sim.shutdown().await;
}

#[tokio::test]
async fn stream_resumes_after_last_event_id_pings_and_rotates() {
    let mut cfg = fast_config();
    cfg.stream_max = Duration::from_millis(1500);
    let e = env_with(cfg).await;
    let (sid, tid, t) = e.one_terminal().await;
    let mut s1 = Sse::open(&t, &tid, None).await;
    // Two commands: a refused sale then a session_closed.
    let pid = payment_on(&e, &tid, "resume-1").await;
    let (id1, c1) = s1.command().await;
    assert_eq!((id1, c1["payment_id"].as_str()), (1, Some(pid.as_str())));
    // Drop the connection without acking; more commands arrive meanwhile.
    drop(s1);
    let (s, _) = e
        .org_json(Method::PATCH, &format!("/v1/sessions/{sid}/close"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    // Resume after id 1: only the session_closed command (id 2).
    let mut s2 = Sse::open(&t, &tid, Some(1)).await;
    let (id2, c2) = s2.command().await;
    assert_eq!((id2, c2["type"].as_str()), (2, Some("session_closed")));
    // Pings keep flowing, then the stream ends on its own (rotation).
    let mut pings = 0;
    loop {
        match s2.next().await {
            SseItem::Ping => pings += 1,
            SseItem::Command { id, .. } => panic!("unexpected command {id}"),
            SseItem::End => break,
        }
    }
    assert!(pings >= 3, "pings: {pings}");
    // Without Last-Event-ID: every unacknowledged command.
    let mut s3 = Sse::open(&t, &tid, None).await;
    assert_eq!(s3.command().await.0, 1);
    assert_eq!(s3.command().await.0, 2);
    // An invalid Last-Event-ID.
    let r = t
        .request(
            Method::GET,
            &format!("/v1/terminals/{tid}/commands/stream"),
            b"",
        )
        .unwrap()
        .header("Last-Event-ID", "abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // The closed session refuses online sales, accepts earlier offline ones.
    let (s, v) = submit(
        &t,
        &tid,
        &sale(&format!("{tid}-000001"), "1.00", "1111", false),
    )
    .await;
    assert_eq!((s, err_code(&v)), (StatusCode::CONFLICT, "session_closed"));
    let mut early = sale(&format!("{tid}-000002"), "1.00", "1111", true);
    early["captured_at"] = json!("2020-01-01T00:00:00Z");
    let (s, v) = submit(&t, &tid, &early).await;
    assert_eq!(
        (s, v["data"]["status"].as_str()),
        (StatusCode::CREATED, Some("approved"))
    );
    let mut late = sale(&format!("{tid}-000003"), "1.00", "1111", true);
    late["captured_at"] = json!("2099-01-01T00:00:00Z");
    let (s, v) = submit(&t, &tid, &late).await;
    assert_eq!((s, err_code(&v)), (StatusCode::CONFLICT, "session_closed"));
    e.sim.shutdown().await;
}

/// SPEC 4.1: a webhook is signed (section 3) with `X-API-KEY` = the webhook
/// key id (`whk_` + hex) and the webhook secret; the organisation key never
/// reaches a receiver.
#[tokio::test]
async fn webhooks_are_signed_with_the_webhook_key_and_retried_with_a_stable_id() {
    let (hook, mut hooks) = receiver(2).await;
    let e = env().await;
    let (sid, _) = e.session(1, Some(&hook)).await;
    let (s, _) = e
        .org_json(Method::PATCH, &format!("/v1/sessions/{sid}/close"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let cache = NonceCache::new(16);
    let mut ids = Vec::new();
    let mut nonces = Vec::new();
    let mut key_ids = Vec::new();
    for attempt in 1..=3 {
        let r = recv(&mut hooks).await;
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["event"], "session.closed");
        assert_eq!(v["data"]["status"], "closed");
        assert_eq!(r.headers["x-webhook-attempt"], attempt.to_string().as_str());
        for (name, value) in &r.headers {
            assert!(
                !value
                    .as_bytes()
                    .windows(ORG.len())
                    .any(|w| w == ORG.as_bytes()),
                "header {name} carries the organisation key"
            );
        }
        assert!(!r.body.windows(ORG.len()).any(|w| w == ORG.as_bytes()));
        ids.push(v["id"].as_str().unwrap().to_owned());
        let h = IncomingHeaders::from_fn(|n| r.headers.get(n).and_then(|v| v.to_str().ok()));
        nonces.push(h.nonce.unwrap().to_owned());
        let key_id = h.api_key.unwrap().to_owned();
        assert!(
            key_id
                .strip_prefix("whk_")
                .is_some_and(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_hexdigit())),
            "webhook key id {key_id:?}"
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        verify_request(&h, "POST", &r.path, &r.body, now, &cache, |k| {
            (k == key_id).then(|| Credentials {
                tenant_id: "test-tenant".into(),
                api_key: key_id.clone(),
                merchant_id: "kler-sim".into(),
                secret: proto::signing::Secret::new("whsec-test"),
            })
        })
        .expect("webhook signature verifies with the key id and the webhook secret");
        key_ids.push(key_id);
    }
    assert!(key_ids.iter().all(|k| k == &key_ids[0]));
    assert_eq!(key_ids[0], e.sim.webhook_key_id());
    nonces.dedup();
    assert_eq!(nonces.len(), 3, "each attempt is signed afresh");
    // The attempt log shows two failures then a delivery.
    let (_, v) = e.org_json(Method::GET, "/v1/sandbox/webhooks", None).await;
    let attempts: Vec<(u64, bool)> = v["data"]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["status"].as_u64().unwrap(),
                a["delivered"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(attempts, vec![(500, false), (500, false), (200, true)]);
    e.sim.shutdown().await;
}

#[tokio::test]
async fn webhooks_give_up_after_five_attempts() {
    let (hook, mut hooks) = receiver(u32::MAX).await;
    let e = env().await;
    let (sid, _) = e.session(1, Some(&hook)).await;
    e.org_json(Method::PATCH, &format!("/v1/sessions/{sid}/close"), None)
        .await;
    for _ in 0..5 {
        recv(&mut hooks).await;
    }
    // Retries are spaced 20, 40, 80, 160 ms: a sixth would arrive well
    // within a second; none does.
    assert!(
        tokio::time::timeout(Duration::from_millis(800), hooks.recv())
            .await
            .is_err()
    );
    let (_, v) = e.org_json(Method::GET, "/v1/sandbox/webhooks", None).await;
    assert_eq!(v["data"]["totalElements"], 5);
    assert!(
        v["data"]["content"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["delivered"] == false)
    );
    e.sim.shutdown().await;
}

/// SPEC 4.1: redirects are not followed. A receiver answering 307 is a
/// failed attempt (retried, then given up); the redirect target never sees
/// the webhook.
#[tokio::test]
async fn webhook_redirects_are_not_followed() {
    let (hit_tx, mut hits) = mpsc::unbounded_channel::<()>();
    let (tx, mut followed) = mpsc::unbounded_channel::<()>();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let app = axum::Router::new()
        .route(
            "/hooks",
            axum::routing::post(move || {
                let _ = hit_tx.send(());
                async {
                    (
                        StatusCode::TEMPORARY_REDIRECT,
                        [(axum::http::header::LOCATION, "/elsewhere")],
                    )
                }
            }),
        )
        .route(
            "/elsewhere",
            axum::routing::post(move || {
                let _ = tx.send(());
                async { StatusCode::OK }
            }),
        );
    tokio::spawn(async move { axum::serve(l, app).await });
    let e = env().await;
    let (sid, _) = e.session(1, Some(&format!("{base}/hooks"))).await;
    e.org_json(Method::PATCH, &format!("/v1/sessions/{sid}/close"), None)
        .await;
    // Attempts of one event are sequential: had the first been followed to
    // a 200, it would count as delivered and no second attempt would come.
    for _ in 0..2 {
        tokio::time::timeout(WAIT, hits.recv())
            .await
            .expect("another attempt at the redirecting receiver")
            .unwrap();
    }
    assert!(
        followed.try_recv().is_err(),
        "the redirect target received the webhook"
    );
    let (_, v) = e.org_json(Method::GET, "/v1/sandbox/webhooks", None).await;
    let first = &v["data"]["content"][0];
    assert_eq!(
        (first["status"].as_u64(), first["delivered"].as_bool()),
        (Some(307), Some(false))
    );
    e.sim.shutdown().await;
}

#[tokio::test]
async fn heartbeat_online_then_offline_fires_a_webhook() {
    let (hook, mut hooks) = receiver(0).await;
    // Long enough that the status read right after the heartbeat is not
    // raced by a loaded machine, short enough to keep the test quick.
    let mut cfg = fast_config();
    cfg.offline_after = Duration::from_millis(1500);
    let e = env_with(cfg).await;
    let (sid, tids) = e.session(1, Some(&hook)).await;
    let tid = tids[0].clone();
    let t = e.provision(&tid).await;
    let hb = json!({"agent_version": "0.1.0", "state": "idle", "queue_depth": 4, "hal": {"reader": "ok"}});
    let (s, v) = signed(
        &t,
        Method::POST,
        &format!("/v1/terminals/{tid}/heartbeat"),
        Some(&hb),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["data"]["server_time"].as_str().unwrap().ends_with('Z'));
    let (_, v) = e
        .org_json(
            Method::GET,
            &format!("/v1/terminals?session_id={sid}"),
            None,
        )
        .await;
    let info = &v["data"]["content"][0];
    assert_eq!(
        (info["status"].as_str(), info["queue_depth"].as_u64()),
        (Some("online"), Some(4))
    );
    assert!(info["last_seen_at"].is_string());
    let (_, w) = recv_event(&mut hooks, "terminal.offline").await;
    assert_eq!(
        (
            w["data"]["terminal_id"].as_str(),
            w["data"]["status"].as_str()
        ),
        (Some(tid.as_str()), Some("offline"))
    );
    let (_, v) = e
        .org_json(
            Method::GET,
            &format!("/v1/terminals?session_id={sid}"),
            None,
        )
        .await;
    assert_eq!(v["data"]["content"][0]["status"], "offline");
    let (s, _) = e
        .org_json(Method::GET, "/v1/terminals?session_id=unknown", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    e.sim.shutdown().await;
}

#[tokio::test]
async fn sandbox_scenarios_and_reset() {
    let e = env().await;
    let (sid, tid, t) = e.one_terminal().await;
    let set = |scenario: &'static str, count: u32| {
        let org = e.org.clone();
        let tid = tid.clone();
        async move {
            json_of(
                org.request(Method::POST, "/v1/sandbox/scenarios")
                    .json(&json!({"terminal_id": tid, "scenario": scenario, "count": count}))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let (s, v) = set("explode", 1).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::BAD_REQUEST, "invalid_scenario")
    );
    // decline ×2, then back to normal.
    let (s, _) = set("decline", 2).await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, v) = e.org_json(Method::GET, "/v1/sandbox/scenarios", None).await;
    assert_eq!(v["data"]["active"][0]["remaining"], 2);
    for (n, want) in [(1, "declined"), (2, "declined"), (3, "approved")] {
        let (_, v) = submit(
            &t,
            &tid,
            &sale(&format!("{tid}-00000{n}"), "1.00", "1111", false),
        )
        .await;
        assert_eq!(v["data"]["status"], want, "submission {n}");
    }
    set("insufficient_funds", 1).await;
    let (_, v) = submit(
        &t,
        &tid,
        &sale(&format!("{tid}-000004"), "1.00", "1111", true),
    )
    .await;
    assert_eq!(v["data"]["decline_reason"], "insufficient_funds");
    // http_500: nothing recorded.
    set("http_500", 1).await;
    let r5 = format!("{tid}-000005");
    let (s, v) = submit(&t, &tid, &sale(&r5, "1.00", "1111", false)).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::INTERNAL_SERVER_ERROR, "sandbox_http_500")
    );
    let (s, _) = signed(
        &t,
        Method::GET,
        &format!("/v1/terminals/{tid}/transactions/{r5}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // slow: answers, later.
    set("slow:50", 1).await;
    let (s, v) = submit(&t, &tid, &sale(&r5, "1.00", "1111", false)).await;
    assert_eq!(
        (s, v["data"]["status"].as_str()),
        (StatusCode::CREATED, Some("approved"))
    );
    // auth_timeout: the client gives up; the backend recorded an approval.
    set("auth_timeout", 1).await;
    let r6 = format!("{tid}-000006");
    let b = sale(&r6, "7.00", "1111", false).to_string().into_bytes();
    let err = t
        .request(
            Method::POST,
            &format!("/v1/terminals/{tid}/transactions"),
            &b,
        )
        .unwrap()
        .header("Idempotency-Key", &r6)
        .timeout(Duration::from_millis(800))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    let (s, v) = signed(
        &t,
        Method::GET,
        &format!("/v1/terminals/{tid}/transactions/{r6}"),
        None,
    )
    .await;
    assert_eq!(
        (s, v["data"]["status"].as_str()),
        (StatusCode::OK, Some("approved"))
    );
    // drop_after_commit: a connection error, yet recorded; a retry replays.
    set("drop_after_commit", 1).await;
    let r7 = format!("{tid}-000007");
    let b = sale(&r7, "8.00", "1111", false).to_string().into_bytes();
    let err = t
        .request(
            Method::POST,
            &format!("/v1/terminals/{tid}/transactions"),
            &b,
        )
        .unwrap()
        .header("Idempotency-Key", &r7)
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_timeout() && err.status().is_none(), "{err:?}");
    let (s, v) = signed(
        &t,
        Method::GET,
        &format!("/v1/terminals/{tid}/transactions/{r7}"),
        None,
    )
    .await;
    assert_eq!(
        (s, v["data"]["status"].as_str()),
        (StatusCode::OK, Some("approved"))
    );
    let (s, v) = submit(&t, &tid, &sale(&r7, "8.00", "1111", false)).await;
    assert_eq!(
        (s, v["data"]["status"].as_str()),
        (StatusCode::OK, Some("approved"))
    );
    // Reset wipes everything.
    let (s, _) = e.org_json(Method::DELETE, "/v1/sandbox", None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = e
        .org_json(Method::GET, &format!("/v1/sessions/{sid}"), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = signed(
        &t,
        Method::GET,
        &format!("/v1/terminals/{tid}/transactions"),
        None,
    )
    .await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::UNAUTHORIZED, "unknown_api_key")
    );
    e.sim.shutdown().await;
}

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sim.db");
    let mut cfg = fast_config();
    cfg.state_file = Some(file.clone());
    let e = env_with(cfg.clone()).await;
    let (sid, tids) = e.session(2, None).await;
    let tid = tids[0].clone();
    let t = e.provision(&tid).await;
    let r1 = format!("{tid}-000001");
    let (_, first) = submit(&t, &tid, &sale(&r1, "1234.00", "1111", false)).await;
    e.org_json(
        Method::POST,
        &format!("/v1/sessions/{sid}/operators"),
        Some(json!({"name": "Bola"})),
    )
    .await;
    let (_, rec_before) = e
        .org_json(Method::GET, &format!("/v1/reconciliation/{sid}"), None)
        .await;
    // A PAN smuggled in an unknown field is ignored: it reaches neither
    // the answers nor the state file.
    // (Declined card: the totals compared below stay as they were.)
    let mut smuggled = sale(&format!("{tid}-000002"), "1.00", "0002", false);
    smuggled["pan"] = json!("4111111111111111");
    smuggled["card"]["pan"] = json!("4111111111111111");
    let (s, v) = submit(&t, &tid, &smuggled).await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(!v.to_string().contains("4111111111111111"));
    e.sim.shutdown().await;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        // SQLite may remove its -wal/-shm files as its last connection
        // closes, between the listing and the read: nothing to scan then.
        let bytes = match std::fs::read(entry.unwrap().path()) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("{e}"),
        };
        assert!(!bytes.windows(16).any(|w| w == b"4111111111111111"));
    }

    cfg.listen = "127.0.0.1:0".into();
    let cfg3 = cfg.clone();
    let e2 = env_with(cfg).await;
    let t2 = SignedClient::new(e2.http.clone(), e2.sim.url(), t.creds.clone());
    // Same credentials still work; the transaction replays identically
    // (its receipt now on the restarted sim's address).
    let (s, mut again) = submit(&t2, &tid, &sale(&r1, "1234.00", "1111", false)).await;
    let txid = first["data"]["transaction_id"].as_str().unwrap();
    assert_eq!(
        again["data"]["receipt_url"],
        format!("{}/r/{txid}", e2.sim.url()).as_str()
    );
    let mut first = first;
    first["data"]["receipt_url"] = serde_json::Value::Null;
    again["data"]["receipt_url"] = serde_json::Value::Null;
    assert_eq!((s, &again["data"]), (StatusCode::OK, &first["data"]));
    let (s, v) = e2
        .org_json(Method::GET, &format!("/v1/sessions/{sid}"), None)
        .await;
    assert_eq!(
        (s, v["data"]["pos_terminals"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(2))
    );
    let (_, v) = e2
        .org_json(Method::GET, &format!("/v1/sessions/{sid}/operators"), None)
        .await;
    assert_eq!(v["data"]["content"][0]["name"], "Bola");
    let (_, rec_after) = e2
        .org_json(Method::GET, &format!("/v1/reconciliation/{sid}"), None)
        .await;
    assert_eq!(
        rec_after["data"]["total_inflow"],
        rec_before["data"]["total_inflow"]
    );
    assert_eq!(rec_after["data"]["total_inflow"], "1234.00");
    // A reset empties the file too.
    let (s, _) = e2.org_json(Method::DELETE, "/v1/sandbox", None).await;
    assert_eq!(s, StatusCode::OK);
    e2.sim.shutdown().await;
    let e3 = env_with(cfg3).await;
    let (s, _) = e3
        .org_json(Method::GET, &format!("/v1/sessions/{sid}"), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    e3.sim.shutdown().await;
}

#[tokio::test]
async fn the_binary_prints_its_address_when_ready() {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kler-sim"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--org-key",
            ORG,
            "--offline-floor-limit",
            "50000.00",
            "--offline-max-count",
            "100",
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    // The first (and only) stdout line says where it listens.
    let line = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .expect("ready line");
    let url = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    assert!(!url.ends_with(":0"));
    let r = reqwest::Client::new()
        .get(format!("{url}/v1/terminals"))
        .header("x-api-key", ORG)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Heartbeat answers carry the configured offline limits.
    let http = reqwest::Client::new();
    let org = OrgClient::new(http.clone(), url.clone(), ORG);
    let v: Value = org
        .request(Method::POST, "/v1/sessions")
        .json(&json!({"external_event_id": "e", "name": "n", "collection": {"pos": true, "pos_count": 1}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tid = v["data"]["pos_terminals"][0]["terminal_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let v: Value = org
        .request(Method::POST, &format!("/v1/terminals/{tid}/provision"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let p: ProvisionResponse = serde_json::from_value(v["data"].clone()).unwrap();
    let t = SignedClient::new(http, url, p.credentials());
    let hb = json!({"agent_version": "0.1.0", "state": "idle"});
    let (s, v) = signed(
        &t,
        Method::POST,
        &format!("/v1/terminals/{tid}/heartbeat"),
        Some(&hb),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v["data"]["offline_limits"],
        json!({"floor_limit": "50000.00", "max_count": 100})
    );
    // SIGTERM stops it cleanly.
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
}

/// SPEC 4.1/6: `--webhook-key-id` sets the key id, the secret is generated
/// when not given, both are printed at start on stderr (stdout keeps its one
/// ready line), and a webhook verifies with them.
#[tokio::test]
async fn the_binary_prints_the_webhook_key_id_and_signs_with_it() {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kler-sim"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--org-key",
            ORG,
            "--webhook-key-id",
            "whk_0123abcd",
            "--webhook-retry-base-ms",
            "20",
        ])
        .env_remove("KLER_SIM_WEBHOOK_SECRET")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let (line_tx, mut err_lines) = mpsc::unbounded_channel::<String>();
    // Drained to the end, so the child never blocks on a full pipe.
    tokio::spawn(async move {
        while let Ok(Some(l)) = stderr.next_line().await {
            let _ = line_tx.send(l);
        }
    });
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .expect("ready line");
    let url = line.strip_prefix("listening on ").unwrap().to_owned();
    let (mut key_id, mut secret) = (None, None);
    while key_id.is_none() || secret.is_none() {
        let l = tokio::time::timeout(WAIT, err_lines.recv())
            .await
            .expect("key id and secret on stderr")
            .expect("stderr open");
        if let Some(k) = l.strip_prefix("webhook key id ") {
            key_id = Some(k.to_owned());
        } else if let Some(s) = l.strip_prefix("webhook secret ") {
            secret = Some(s.to_owned());
        }
    }
    let (key_id, secret) = (key_id.unwrap(), secret.unwrap());
    assert_eq!(key_id, "whk_0123abcd");
    assert!(secret.len() >= 32, "{secret:?}");

    let (hook, mut hooks) = receiver(0).await;
    let org = OrgClient::new(reqwest::Client::new(), url, ORG);
    let v: Value = org
        .request(Method::POST, "/v1/sessions")
        .json(
            &json!({"external_event_id": "e", "name": "n", "webhook_url": hook,
                      "collection": {"pos": true, "pos_count": 1}}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sid = v["data"]["session_id"].as_str().unwrap().to_owned();
    let r = org
        .request(Method::PATCH, &format!("/v1/sessions/{sid}/close"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (r, _) = recv_event(&mut hooks, "session.closed").await;
    assert_eq!(r.headers["x-api-key"], "whk_0123abcd");
    let h = IncomingHeaders::from_fn(|n| r.headers.get(n).and_then(|v| v.to_str().ok()));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    verify_request(
        &h,
        "POST",
        &r.path,
        &r.body,
        now,
        &NonceCache::new(4),
        |k| {
            (k == key_id).then(|| Credentials {
                tenant_id: "test-tenant".into(),
                api_key: key_id.clone(),
                merchant_id: "kler-sim".into(),
                secret: proto::signing::Secret::new(secret.clone()),
            })
        },
    )
    .expect("webhook verifies with the printed key id and secret");
}

#[tokio::test]
async fn a_sale_never_started_times_out_at_its_expiry() {
    let (hook, mut hooks) = receiver(0).await;
    let e = env().await;
    let (_, tids) = e.session(1, Some(&hook)).await;
    let tid = tids[0].clone();
    let t = e.provision(&tid).await;
    let _stream = Sse::open(&t, &tid, None).await;
    let soon = proto::wire::Timestamp::now().plus_secs(2);
    let r = e
        .org
        .request(Method::POST, "/v1/payments")
        .header("Idempotency-Key", "expiring")
        .json(&json!({"terminal_id": tid, "amount": "1.00", "reference": "exp-1", "expires_at": soon}))
        .send()
        .await
        .unwrap();
    let (s, v) = json_of(r).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let pid = v["data"]["payment_id"].as_str().unwrap().to_owned();
    let (_, w) = recv_event(&mut hooks, "payment.updated").await;
    assert_eq!(w["data"]["payment_id"], json!(pid));
    assert_eq!(
        (w["data"]["status"].as_str(), w["data"]["reason"].as_str()),
        (Some("timed_out"), Some("expired"))
    );
    // A past expiry is refused.
    let r = e
        .org
        .request(Method::POST, "/v1/payments")
        .header("Idempotency-Key", "expired")
        .json(&json!({"terminal_id": tid, "amount": "1.00", "reference": "exp-2", "expires_at": "2020-01-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    let (s, v) = json_of(r).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_expires_at")
    );
    e.sim.shutdown().await;
}

#[tokio::test]
async fn garbage_never_breaks_the_server() {
    use rand::{Rng, SeedableRng};
    let e = env().await;
    let (sid, tid, t) = e.one_terminal().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    let mut bodies: Vec<Vec<u8>> = vec![
        deep.into_bytes(),
        br#"{"amount": 1e400}"#.to_vec(),
        br#"{"amount": "99999999999999999999.99", "currency": "NGN"}"#.to_vec(),
        br#"{"reference": "\ud800"}"#.to_vec(),
        "{\"name\": \"\u{202e}\u{0}\"}".as_bytes().to_vec(),
        b"null".to_vec(),
        b"{\"a\":{\"b\":{\"c\":null}}}".to_vec(),
    ];
    for _ in 0..40 {
        let len = rng.gen_range(0..300);
        bodies.push((0..len).map(|_| rng.r#gen::<u8>()).collect());
    }
    let org_paths = [
        "/v1/sessions".to_owned(),
        format!("/v1/sessions/{sid}/operators"),
        "/v1/payments".to_owned(),
        "/v1/refunds?transactionId=x".to_owned(),
        "/v1/sandbox/scenarios".to_owned(),
    ];
    let term_paths = [
        format!("/v1/terminals/{tid}/transactions"),
        format!("/v1/terminals/{tid}/heartbeat"),
        format!("/v1/terminals/{tid}/commands/c/ack"),
        format!("/v1/terminals/{tid}/payments/p/events"),
        format!("/v1/terminals/{tid}/transactions/r-1/reversal"),
    ];
    for body in &bodies {
        for p in &org_paths {
            let r = e
                .org
                .request(Method::POST, p)
                .header("Idempotency-Key", "g")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let s = r.status();
            assert!(s.is_client_error(), "{p}: {s}");
            let v: Value = r.json().await.expect("a JSON error");
            assert_eq!(v["success"], json!(false));
        }
        for p in &term_paths {
            let r = t
                .request(Method::POST, p, b"")
                .unwrap()
                .header("Idempotency-Key", "g")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let s = r.status();
            assert!(s.is_client_error(), "{p}: {s}");
        }
    }
    // Still healthy, nothing recorded.
    let (s, v) = signed(
        &t,
        Method::GET,
        &format!("/v1/terminals/{tid}/transactions"),
        None,
    )
    .await;
    assert_eq!(
        (s, v["data"]["totalElements"].as_u64()),
        (StatusCode::OK, Some(0))
    );
    let (s, v) = e
        .org_json(Method::GET, &format!("/v1/reconciliation/{sid}"), None)
        .await;
    assert_eq!(
        (s, v["data"]["total_inflow"].as_str()),
        (StatusCode::OK, Some("0.00"))
    );
    e.sim.shutdown().await;
}

/// SPEC 7.6: the partner sets a session's terminal configuration (validated,
/// versioned); the terminals of the session get it signed, at
/// `GET /v1/terminals/:tid/config` and in every heartbeat answer; it
/// survives a restart of the sim.
#[tokio::test]
async fn session_configuration_is_validated_versioned_and_served_to_its_terminals() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fast_config();
    cfg.state_file = Some(dir.path().join("sim.db"));
    let e = env_with(cfg.clone()).await;
    let (sid, tid, t) = e.one_terminal().await;
    let path = format!("/v1/sessions/{sid}/config");
    // Never set: version 0, defaults.
    let (s, v) = signed(
        &t,
        Method::GET,
        &format!("/v1/terminals/{tid}/config"),
        None,
    )
    .await;
    assert_eq!(
        (s, v["data"]["version"].as_u64()),
        (StatusCode::OK, Some(0)),
        "{v}"
    );
    // Refused settings: 422 naming the field; nothing stored.
    let (s, v) = e
        .org_json(
            Method::PUT,
            &path,
            Some(json!({"tips": {"enabled": true, "percentages": [150]}})),
        )
        .await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_config"),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tips.percentages"),
        "{v}"
    );
    let settings = json!({
        "tips": {"enabled": true, "percentages": [5, 10, 15], "fixed": ["500.00"], "custom": true},
        "receipt_print": "ask", "logout_after_s": 300, "language": "en"
    });
    let (s, v) = e.org_json(Method::PUT, &path, Some(settings.clone())).await;
    assert_eq!(
        (s, v["data"]["version"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{v}"
    );
    let (_, v) = e.org_json(Method::PUT, &path, Some(settings)).await;
    assert_eq!(v["data"]["version"], 2, "every PUT is a new version: {v}");
    // Without the organisation key: refused.
    let r = e
        .http
        .put(format!("{}{path}", e.sim.url()))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // The terminal gets it, signed, and with each heartbeat.
    let (s, v) = signed(
        &t,
        Method::GET,
        &format!("/v1/terminals/{tid}/config"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            v["data"]["version"].as_u64(),
            v["data"]["tips"]["percentages"].clone(),
            v["data"]["receipt_print"].as_str()
        ),
        (Some(2), json!([5, 10, 15]), Some("ask"))
    );
    let hb = json!({"agent_version": "0.1.0", "state": "idle", "queue_depth": 0});
    let (s, v) = signed(
        &t,
        Method::POST,
        &format!("/v1/terminals/{tid}/heartbeat"),
        Some(&hb),
    )
    .await;
    assert_eq!(
        (s, v["data"]["config"]["version"].as_u64()),
        (StatusCode::OK, Some(2)),
        "{v}"
    );
    assert_eq!(v["data"]["config"]["logout_after_s"], 300);
    // Kept across a restart of the sim.
    e.sim.shutdown().await;
    let e = env_with(cfg).await;
    let (_, v) = e.org_json(Method::GET, &path, None).await;
    assert_eq!(v["data"]["version"], 2, "{v}");
    e.sim.shutdown().await;
}

/// SPEC 7.2: an operator's PIN is write-only; the terminals of the session
/// read the operators who can log in with the PBKDF2 hash and salt of
/// their PIN (signed), and nothing else ever shows the PIN.
#[tokio::test]
async fn operator_pins_are_write_only_and_terminals_get_their_pbkdf2_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sim.db");
    let mut cfg = fast_config();
    cfg.state_file = Some(file.clone());
    let e = env_with(cfg.clone()).await;
    let (sid, tids) = e.session(1, None).await;
    let (_, other_tids) = e.session(1, None).await;
    let tid = tids[0].clone();
    let t = e.provision(&tid).await;
    let other = e.provision(&other_tids[0]).await;
    let ops = format!("/v1/sessions/{sid}/operators");
    for bad in ["123", "1234567", "12a4"] {
        let (s, v) = e
            .org_json(
                Method::POST,
                &ops,
                Some(json!({"name": "Bola", "pin": bad})),
            )
            .await;
        assert_eq!(
            (s, err_code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_pin"),
            "{bad}: {v}"
        );
    }
    let (s, ada) = e
        .org_json(
            Method::POST,
            &ops,
            Some(json!({"name": "Ada", "role": "supervisor", "pin": "482913"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{ada}");
    assert!(
        ada["data"].get("pin").is_none() && ada["data"].get("pin_hash").is_none(),
        "{ada}"
    );
    let (_, bola) = e
        .org_json(
            Method::POST,
            &ops,
            Some(json!({"name": "Bola", "pin": "1234"})),
        )
        .await;
    // Without a PIN an operator cannot log in on a terminal.
    e.org_json(Method::POST, &ops, Some(json!({"name": "Chidi"})))
        .await;
    let (_, listed) = e.org_json(Method::GET, &ops, None).await;
    assert!(!listed.to_string().contains("pin"), "{listed}");

    let path = format!("/v1/terminals/{tid}/operators");
    let (s, v) = signed(&t, Method::GET, &path, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Ordered by creation time (to the second), ties by id: sort to compare.
    let mut sorted = v["data"].as_array().unwrap().clone();
    sorted.sort_by_key(|o| o["name"].as_str().unwrap().to_owned());
    let list = &sorted;
    let names: Vec<&str> = list.iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Ada", "Bola"]);
    assert_eq!(list[0]["operator_id"], ada["data"]["operator_id"]);
    assert_eq!(list[0]["role"], "supervisor");
    assert_eq!(list[1]["operator_id"], bola["data"]["operator_id"]);
    for (o, pin) in list.iter().zip(["482913", "1234"]) {
        let (salt, hash) = (o["salt"].as_str().unwrap(), o["pin_hash"].as_str().unwrap());
        let pin = proto::pin::Pin::new(pin).unwrap();
        assert_eq!(proto::pin::verify_pin(&pin, salt, hash), Ok(true), "{o}");
        let wrong = proto::pin::Pin::new("0000").unwrap();
        assert_eq!(proto::pin::verify_pin(&wrong, salt, hash), Ok(false));
    }
    assert_ne!(list[0]["salt"], list[1]["salt"], "one salt per operator");
    // A terminal of another session sees none of them; unsigned is refused.
    let (_, v) = signed(
        &other,
        Method::GET,
        &format!("/v1/terminals/{}/operators", other_tids[0]),
        None,
    )
    .await;
    assert_eq!(v["data"], json!([]), "{v}");
    let (s, _) = signed(&other, Method::GET, &path, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let r = e
        .http
        .get(format!("{}{path}", e.sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Kept across a restart; the state file holds hashes, never a PIN.
    let list = list.to_vec();
    e.sim.shutdown().await;
    let e2 = env_with(cfg).await;
    let t2 = SignedClient::new(e2.http.clone(), e2.sim.url(), t.creds.clone());
    let (_, again) = signed(&t2, Method::GET, &path, None).await;
    let mut again = again["data"].as_array().unwrap().clone();
    again.sort_by_key(|o| o["name"].as_str().unwrap().to_owned());
    assert_eq!(again, list);
    e2.sim.shutdown().await;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        // SQLite may remove its -wal/-shm files while they are listed.
        let Ok(bytes) = std::fs::read(entry.unwrap().path()) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("482913") && !text.contains("\"pin\""),
            "a PIN reached the state files"
        );
    }
}
