//! SPEC 8.1 pairing by code: a device registers, long-polls its code, the
//! organiser claims it, the credentials arrive once; used, replaced and
//! expired codes answer 410.

use std::time::Duration;

use kler_sim::client::SignedClient;
use proto::signing::{Credentials, Secret};
use proto::wire::{DEVICE_KEY_LEN, ProvisionResponse, device_key_hash};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

struct Device {
    id: String,
    client: SignedClient,
    hash: String,
}

fn device(e: &Env, n: u8) -> Device {
    let id = format!("dev-{n:02}-0000-aaaa");
    let hash = device_key_hash(&[n; DEVICE_KEY_LEN]).as_str().to_owned();
    Device {
        client: client_for(e, &id, &hash),
        id,
        hash,
    }
}

fn client_for(e: &Env, id: &str, secret: &str) -> SignedClient {
    SignedClient::new(
        e.http.clone(),
        e.sim.url(),
        Credentials {
            tenant_id: "pairing".into(),
            api_key: id.into(),
            merchant_id: "pairing".into(),
            secret: Secret::new(secret.to_owned()),
        },
    )
}

async fn register(e: &Env, d: &Device) -> String {
    let (s, v) = e
        .org_json(
            Method::POST,
            "/v1/pairing",
            Some(json!({"device_id": d.id, "device_key_hash": d.hash})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let code = v["data"]["pairing_code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 8);
    assert!(
        code.bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'9').contains(&b)),
        "{code}"
    );
    code
}

async fn poll(d: &Device, code: &str, wait_s: u64) -> (StatusCode, Value) {
    signed(
        &d.client,
        Method::GET,
        &format!("/v1/pairing/{code}?wait_s={wait_s}"),
        None,
    )
    .await
}

async fn claim(e: &Env, sid: &str, tid: &str, code: &str) -> (StatusCode, Value) {
    e.org_json(
        Method::POST,
        &format!("/v1/sessions/{sid}/terminals/{tid}/pair"),
        Some(json!({"pairing_code": code})),
    )
    .await
}

/// The whole happy path, and the code used once.
#[tokio::test]
async fn a_claimed_code_delivers_working_credentials_once() {
    let e = env().await;
    let (sid, tids) = e.session(2, None).await;
    let d = device(&e, 1);
    let code = register(&e, &d).await;

    // Not claimed yet.
    let (s, v) = poll(&d, &code, 0).await;
    assert_eq!(
        (s, &v["data"]["status"]),
        (StatusCode::OK, &json!("pending"))
    );
    assert!(v["data"].get("credentials").is_none(), "{v}");

    // A long poll is answered by the claim (lower case is the same code).
    let waiting = {
        let client = d.client.clone();
        let path = format!("/v1/pairing/{code}?wait_s=20");
        tokio::spawn(async move { signed(&client, Method::GET, &path, None).await })
    };
    let (s, v) = claim(&e, &sid, &tids[1], &code.to_lowercase()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (
            &v["data"]["terminal_id"],
            &v["data"]["session_id"],
            &v["data"]["device_id"]
        ),
        (&json!(tids[1]), &json!(sid), &json!(d.id))
    );
    let (s, v) = tokio::time::timeout(WAIT, waiting).await.unwrap().unwrap();
    assert_eq!(
        (s, &v["data"]["status"]),
        (StatusCode::OK, &json!("paired"))
    );
    let p: ProvisionResponse = serde_json::from_value(v["data"]["credentials"].clone()).unwrap();
    assert_eq!(p.terminal_id.as_ref().map(|t| t.as_str()), Some(&*tids[1]));
    assert_eq!(p.session_id.as_ref().map(|t| t.as_str()), Some(&*sid));

    // The credentials sign like provisioned ones.
    let t = SignedClient::new(e.http.clone(), e.sim.url(), p.credentials());
    let hb = json!({"agent_version": "0.1.0", "state": "idle", "queue_depth": 0});
    let (s, v) = signed(
        &t,
        Method::POST,
        &format!("/v1/terminals/{}/heartbeat", tids[1]),
        Some(&hb),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Used: the poll and a second claim answer 410.
    let (s, v) = poll(&d, &code, 0).await;
    assert_eq!((s, err_code(&v)), (StatusCode::GONE, "pairing_code_gone"));
    let (s, v) = claim(&e, &sid, &tids[0], &code).await;
    assert_eq!((s, err_code(&v)), (StatusCode::GONE, "pairing_code_gone"));
}

/// Only the device that registered a code can poll it, signed with its
/// key's hash; the organisation key is needed to claim.
#[tokio::test]
async fn polls_are_signed_by_their_device_and_claims_need_the_org_key() {
    let e = env().await;
    let (sid, tids) = e.session(1, None).await;
    let d = device(&e, 2);
    let other = device(&e, 3);
    let code = register(&e, &d).await;

    let (s, v) = json_of(
        e.http
            .get(format!("{}/v1/pairing/{code}", e.sim.url()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::UNAUTHORIZED, "missing_signature_header")
    );
    let (s, _) = poll(&other, &code, 0).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let wrong_key = client_for(&e, &d.id, &other.hash);
    let (s, _) = signed(
        &wrong_key,
        Method::GET,
        &format!("/v1/pairing/{code}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let (s, _) = json_of(
        e.http
            .post(format!(
                "{}/v1/sessions/{sid}/terminals/{}/pair",
                e.sim.url(),
                tids[0]
            ))
            .json(&json!({"pairing_code": code}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Still pending after all that.
    let (s, v) = poll(&d, &code, 0).await;
    assert_eq!(
        (s, &v["data"]["status"]),
        (StatusCode::OK, &json!("pending"))
    );
}

/// Bad input: named fields, unknown codes and terminals, a terminal of
/// another session.
#[tokio::test]
async fn bad_pairing_input_is_refused_with_the_field_named() {
    let e = env().await;
    let (sid, tids) = e.session(1, None).await;
    let (_, other_tids) = e.session(1, None).await;
    let d = device(&e, 4);
    for (body, code) in [
        (
            json!({"device_id": "X", "device_key_hash": d.hash}),
            "invalid_device_id",
        ),
        (
            json!({"device_id": d.id, "device_key_hash": "abc"}),
            "invalid_device_key_hash",
        ),
        (json!({"device_id": d.id}), "missing_device_key_hash"),
    ] {
        let (s, v) = e.org_json(Method::POST, "/v1/pairing", Some(body)).await;
        assert_eq!((s, err_code(&v)), (StatusCode::BAD_REQUEST, code), "{v}");
    }
    let code = register(&e, &d).await;
    let (s, v) = poll(&d, &code, 31).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::BAD_REQUEST, "invalid_wait_s")
    );
    let (s, v) = claim(&e, &sid, &tids[0], "O0O0O0O0").await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::BAD_REQUEST, "invalid_pairing_code")
    );
    let (s, v) = claim(&e, &sid, &tids[0], "ZZZZZZZZ").await;
    assert_eq!((s, err_code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    let (s, v) = claim(&e, &sid, &other_tids[0], &code).await;
    assert_eq!((s, err_code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    let (s, v) = claim(&e, "no-such-session", &tids[0], &code).await;
    assert_eq!((s, err_code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    let (s, v) = poll(&d, "ZZZZZZZZ", 0).await;
    assert_eq!((s, err_code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    // None of that used the code.
    let (s, v) = claim(&e, &sid, &tids[0], &code).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

/// A device that registers again voids its previous code; an expired code
/// can be neither polled nor claimed.
#[tokio::test]
async fn replaced_and_expired_codes_are_gone() {
    let mut cfg = fast_config();
    cfg.pairing_code_ttl = Duration::from_secs(1);
    let e = env_with(cfg).await;
    let (sid, tids) = e.session(1, None).await;
    let d = device(&e, 5);
    let first = register(&e, &d).await;
    // A poll waiting on the first code ends when the device registers
    // again (410), long before its 20 s.
    let waiting = {
        let client = d.client.clone();
        let path = format!("/v1/pairing/{first}?wait_s=20");
        tokio::spawn(async move { signed(&client, Method::GET, &path, None).await })
    };
    // (Whether the poll was already waiting or arrives after, a replaced
    // code answers 410.)
    let second = register(&e, &d).await;
    assert_ne!(first, second);
    let (s, v) = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((s, err_code(&v)), (StatusCode::GONE, "pairing_code_gone"));
    let (s, v) = poll(&d, &first, 0).await;
    assert_eq!((s, err_code(&v)), (StatusCode::GONE, "pairing_code_gone"));
    let (s, v) = claim(&e, &sid, &tids[0], &first).await;
    assert_eq!((s, err_code(&v)), (StatusCode::GONE, "pairing_code_gone"));

    // A long poll ends when the code expires: it is gone.
    let (s, v) = poll(&d, &second, 5).await;
    assert_eq!((s, err_code(&v)), (StatusCode::GONE, "pairing_code_gone"));
    let (s, v) = claim(&e, &sid, &tids[0], &second).await;
    assert_eq!((s, err_code(&v)), (StatusCode::GONE, "pairing_code_gone"));
}
