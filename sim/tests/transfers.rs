//! Pay by bank transfer (SPEC 7.7): the terminal's registrations, the
//! sandbox bank's credits and how they are matched, the command the
//! terminal gets, the transaction with channel `account` wherever records
//! are shown, the account's balance and statement, the reconciliation,
//! and all of it across a restart on the same state file.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kler_sim::client::SignedClient;
use proto::wire::Timestamp;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

fn soon() -> Timestamp {
    Timestamp::now().plus_secs(600)
}

fn registration(reference: &str, amount: &str, code: &str, expires_at: Timestamp) -> Value {
    json!({"reference": reference, "amount": amount, "currency": "NGN", "code": code,
           "expires_at": expires_at})
}

/// `(status, body, idempotent-replayed header)`.
async fn register(c: &SignedClient, tid: &str, body: &Value) -> (StatusCode, Value, bool) {
    let bytes = body.to_string().into_bytes();
    let r = c
        .request(
            Method::POST,
            &format!("/v1/terminals/{tid}/transfers"),
            &bytes,
        )
        .unwrap()
        .send()
        .await
        .unwrap();
    let replayed = r
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    let (s, v) = json_of(r).await;
    (s, v, replayed)
}

async fn cancel(c: &SignedClient, tid: &str, reference: &str) -> (StatusCode, Value) {
    signed(
        c,
        Method::DELETE,
        &format!("/v1/terminals/{tid}/transfers/{reference}"),
        None,
    )
    .await
}

impl Env {
    async fn account_number(&self, sid: &str) -> String {
        let (s, v) = self
            .org_json(Method::GET, &format!("/v1/sessions/{sid}"), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["data"]["collection_account"]["account_number"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn credit(&self, account: &str, amount: &str, narration: &str) -> (StatusCode, Value) {
        self.org_json(
            Method::POST,
            "/v1/sandbox/transfers",
            Some(
                json!({"account_number": account, "amount": amount, "narration": narration,
                        "payer_name": "ADA OBI", "payer_bank": "GTBank",
                        "payer_account_number": "0123456789"}),
            ),
        )
        .await
    }

    /// A credit that must be accepted: its statement entry.
    async fn credited(&self, account: &str, amount: &str, narration: &str) -> Value {
        let (s, v) = self.credit(account, amount, narration).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["data"].clone()
    }

    async fn balance(&self, sid: &str) -> Value {
        let (s, v) = self
            .org_json(
                Method::GET,
                &format!("/v1/sessions/{sid}/account/balance"),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["data"].clone()
    }

    async fn statement(
        &self,
        sid: &str,
        query: &str,
        filter: Option<Value>,
    ) -> (StatusCode, Value) {
        self.org_json(
            Method::POST,
            &format!("/v1/sessions/{sid}/account/statement{query}"),
            filter,
        )
        .await
    }

    async fn reconciliation(&self, sid: &str) -> Value {
        let (s, v) = self
            .org_json(Method::GET, &format!("/v1/reconciliation/{sid}"), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["data"].clone()
    }
}

/// Waits for the next command on the stream and checks it is a
/// `transfer_received`.
async fn transfer_received(stream: &mut Sse) -> Value {
    let (_, cmd) = stream.command().await;
    assert_eq!(cmd["type"], "transfer_received", "{cmd}");
    assert!(
        cmd["command_id"].as_str().is_some_and(|c| !c.is_empty()),
        "{cmd}"
    );
    cmd
}

#[tokio::test]
async fn a_registration_is_idempotent_by_reference_and_validated() {
    let e = env().await;
    let (sid, tid, t) = e.one_terminal().await;
    let account = e.account_number(&sid).await;
    let r1 = format!("{tid}-000001");
    let body = registration(&r1, "2500.00", "004217", soon());
    let (s, v, replayed) = register(&t, &tid, &body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(!replayed);
    let d = &v["data"];
    assert_eq!(
        (
            d["status"].as_str(),
            d["received"].as_str(),
            d["amount"].as_str()
        ),
        (Some("open"), Some("0.00"), Some("2500.00"))
    );
    assert_eq!(d["account"]["account_number"], account.as_str());
    assert_eq!(d["terminal_id"], tid.as_str());

    // The same reference, amount and code: a replay.
    let mut again = body.clone();
    again["expires_at"] = json!(Timestamp::now().plus_secs(900));
    let (s, v, replayed) = register(&t, &tid, &again).await;
    assert_eq!((s, replayed), (StatusCode::OK, true), "{v}");
    assert_eq!(v["data"]["created_at"], d["created_at"]);
    // Another amount or code under the same reference: a conflict.
    for other in [
        registration(&r1, "2400.00", "004217", soon()),
        registration(&r1, "2500.00", "004218", soon()),
    ] {
        let (s, v, _) = register(&t, &tid, &other).await;
        assert_eq!(
            (s, err_code(&v)),
            (StatusCode::CONFLICT, "idempotency_conflict")
        );
    }
    // The code of an open registration is taken.
    let r2 = format!("{tid}-000002");
    let (s, v, _) = register(&t, &tid, &registration(&r2, "100.00", "004217", soon())).await;
    assert_eq!((s, err_code(&v)), (StatusCode::CONFLICT, "code_in_use"));
    // A reference already recorded as a card transaction.
    let r3 = format!("{tid}-000003");
    let (s, _) = submit(&t, &tid, &sale(&r3, "100.00", "1111", false)).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, v, _) = register(&t, &tid, &registration(&r3, "100.00", "111111", soon())).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::CONFLICT, "idempotency_conflict")
    );

    // Values refused.
    let r4 = format!("{tid}-000004");
    let cases = [
        (
            registration("pos_ffffff_001-000001", "1.00", "222222", soon()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "reference_not_yours",
        ),
        (
            registration(&r4, "0.00", "222222", soon()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount_zero",
        ),
        (
            registration(&r4, "10000000.01", "222222", soon()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount_too_large",
        ),
        (
            registration(&r4, "1.00", "222222", Timestamp::now().plus_secs(-5)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "expired",
        ),
        (
            registration(&r4, "1.00", "12345", soon()),
            StatusCode::BAD_REQUEST,
            "invalid_code",
        ),
    ];
    for (b, status, code) in cases {
        let (s, v, _) = register(&t, &tid, &b).await;
        assert_eq!((s, err_code(&v)), (status, code), "{b}");
    }
    let mut usd = registration(&r4, "1.00", "222222", soon());
    usd["currency"] = json!("USD");
    let (s, v, _) = register(&t, &tid, &usd).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "unsupported_currency")
    );
    // Nothing of that was recorded: the reference is still free.
    let (s, v, _) = register(&t, &tid, &registration(&r4, "1.00", "222222", soon())).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // A closed session takes no new registration.
    let (s, _) = e
        .org_json(Method::PATCH, &format!("/v1/sessions/{sid}/close"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let r5 = format!("{tid}-000005");
    let (s, v, _) = register(&t, &tid, &registration(&r5, "1.00", "333333", soon())).await;
    assert_eq!((s, err_code(&v)), (StatusCode::CONFLICT, "session_closed"));
    // A replay still answers.
    let (s, _, replayed) = register(&t, &tid, &body).await;
    assert_eq!((s, replayed), (StatusCode::OK, true));
    e.sim.shutdown().await;
}

#[tokio::test]
async fn a_session_without_an_account_has_no_transfers_balance_or_statement() {
    let e = env().await;
    let (s, v) = e
        .org_json(
            Method::POST,
            "/v1/sessions",
            Some(json!({"external_event_id": "evt-2", "name": "Card Only",
                        "collection": {"account": false, "pos": true, "pos_count": 1}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(v["data"]["collection_account"].is_null());
    let sid = v["data"]["session_id"].as_str().unwrap().to_owned();
    let tid = v["data"]["pos_terminals"][0]["terminal_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = e.provision(&tid).await;
    let (s, v, _) = register(
        &t,
        &tid,
        &registration(&format!("{tid}-000001"), "1.00", "123456", soon()),
    )
    .await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::CONFLICT, "no_collection_account")
    );
    let (s, v) = e
        .org_json(
            Method::GET,
            &format!("/v1/sessions/{sid}/account/balance"),
            None,
        )
        .await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::CONFLICT, "no_collection_account")
    );
    let (s, v) = e.statement(&sid, "", None).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::CONFLICT, "no_collection_account")
    );
    let (s, v) = e
        .org_json(
            Method::GET,
            "/v1/sessions/nosuchsession/account/balance",
            None,
        )
        .await;
    assert_eq!((s, err_code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    let (s, v) = e.statement("nosuchsession", "", Some(json!({}))).await;
    assert_eq!((s, err_code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    e.sim.shutdown().await;
}

/// The whole path of a paid transfer: the credit settles it, the terminal
/// is told, the transaction (channel `account`) is in the lookup, the
/// statement, the webhook and the partner payment, and the reconciliation
/// lists it beside a card sale.
#[tokio::test]
async fn an_exact_credit_settles_the_payment_everywhere() {
    let e = env().await;
    let (hook, mut hooks) = receiver(0).await;
    let (sid, tids) = e.session(1, Some(&hook)).await;
    let tid = tids[0].clone();
    let t = e.provision(&tid).await;
    let account = e.account_number(&sid).await;
    let mut stream = Sse::open(&t, &tid, None).await;

    // A partner payment the terminal chose to take by transfer.
    let (s, v) = json_of(
        e.org
            .request(Method::POST, "/v1/payments")
            .header("Idempotency-Key", "bar-7")
            .json(&json!({"terminal_id": tid, "amount": "2500.00", "reference": "bar-7"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let pid = v["data"]["payment_id"].as_str().unwrap().to_owned();
    let (_, sale_cmd) = stream.command().await;
    assert_eq!(sale_cmd["payment_id"], pid.as_str());

    let r1 = format!("{tid}-000001");
    let mut body = registration(&r1, "2500.00", "004217", soon());
    body["payment_id"] = json!(pid);
    body["operator_id"] = json!("op_ada");
    let (s, v, _) = register(&t, &tid, &body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["data"]["payment_id"], pid.as_str());

    let entry = e
        .credited(&account, "2500.00", "drinks 004217 thanks")
        .await;
    assert_eq!(entry["status"], "matched", "{entry}");
    assert_eq!(entry["matched_reference"], r1.as_str());
    assert_eq!(entry["terminal_id"], tid.as_str());
    assert!(entry["reference"].as_str().unwrap().starts_with("trf_"));

    let cmd = transfer_received(&mut stream).await;
    assert_eq!(
        (
            cmd["reference"].as_str(),
            cmd["amount"].as_str(),
            cmd["total_received"].as_str()
        ),
        (Some(r1.as_str()), Some("2500.00"), Some("2500.00"))
    );
    assert_eq!(
        cmd["payer"],
        json!({"name": "ADA OBI", "bank": "GTBank", "account_number": "0123456789"})
    );
    assert_eq!(cmd["credited_at"], entry["created_at"]);
    let (s, v) = signed(
        &t,
        Method::POST,
        &format!(
            "/v1/terminals/{tid}/commands/{}/ack",
            cmd["command_id"].as_str().unwrap()
        ),
        Some(&json!({"status": "accepted"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // The record, as a forwarded sale with channel account.
    let (s, v) = signed(
        &t,
        Method::GET,
        &format!("/v1/terminals/{tid}/transactions/{r1}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let rec = &v["data"];
    assert_eq!(
        (
            rec["channel"].as_str(),
            rec["kind"].as_str(),
            rec["status"].as_str(),
            rec["amount"].as_str()
        ),
        (
            Some("account"),
            Some("sale"),
            Some("approved"),
            Some("2500.00")
        )
    );
    assert_eq!(rec["offline"], false);
    assert!(rec.get("card").is_none(), "{rec}");
    assert_eq!(rec["payer"]["name"], "ADA OBI");
    assert_eq!(rec["payment_id"], pid.as_str());
    assert_eq!(rec["operator_id"], "op_ada");
    assert_eq!(rec["captured_at"], entry["created_at"]);
    // Its receipt names the payer, no card.
    let txid = rec["transaction_id"].as_str().unwrap();
    let page = e
        .http
        .get(format!("{}/r/{txid}", e.sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Bank transfer from ADA OBI"), "{html}");
    assert!(!html.contains("****"), "{html}");
    let (s, v) = signed(
        &t,
        Method::GET,
        &format!("/v1/terminals/{tid}/transactions"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let refs: Vec<&str> = v["data"]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reference"].as_str().unwrap())
        .collect();
    assert_eq!(refs, vec![r1.as_str()]);

    let (_, w) = recv_event(&mut hooks, "transaction.received").await;
    assert_eq!(
        (
            w["data"]["channel"].as_str(),
            w["data"]["reference"].as_str(),
            w["data"]["status"].as_str()
        ),
        (Some("account"), Some(r1.as_str()), Some("approved"))
    );
    let (s, v) = e
        .org_json(Method::GET, &format!("/v1/payments/{pid}"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let p = &v["data"];
    assert_eq!(p["status"], "approved", "{p}");
    assert_eq!(p["transaction"]["channel"], "account");
    assert_eq!(p["transaction"]["reference"], r1.as_str());
    assert_eq!(p["transaction"]["payer"]["bank"], "GTBank");
    assert!(p["transaction"].get("card").is_none(), "{p}");

    // Settled: it cannot be cancelled, and a card submission under its
    // reference is a conflict.
    let (s, v) = cancel(&t, &tid, &r1).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::CONFLICT, "transfer_settled")
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("money arrived"),
        "{v}"
    );
    let (s, v) = submit(&t, &tid, &sale(&r1, "2500.00", "1111", false)).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::CONFLICT, "idempotency_conflict")
    );
    // A second credit with the same code settles nothing.
    let again = e.credited(&account, "2500.00", "004217").await;
    assert_eq!(again["status"], "unmatched");
    assert!(again.get("matched_reference").is_none());

    // A card sale beside it; the reconciliation separates the channels.
    let (s, _) = submit(
        &t,
        &tid,
        &sale(&format!("{tid}-000002"), "700.00", "1111", false),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let rc = e.reconciliation(&sid).await;
    assert_eq!(
        rc["by_channel"]["account"],
        json!({"count": 1, "total": "2500.00"})
    );
    assert_eq!(
        rc["by_channel"]["pos"],
        json!({"count": 1, "total": "700.00"})
    );
    assert_eq!(rc["total_inflow"], "3200.00");
    assert_eq!(rc["successful_count"], 2);
    assert_eq!(
        rc["unmatched_credits"],
        json!({"count": 1, "total": "2500.00"})
    );
    let b = e.balance(&sid).await;
    assert_eq!(
        (
            b["collected"].as_str(),
            b["settled"].as_str(),
            b["unmatched"].as_str()
        ),
        (Some("5000.00"), Some("2500.00"), Some("2500.00"))
    );
    assert_eq!(b["account_number"], account.as_str());
    e.sim.shutdown().await;
}

#[tokio::test]
async fn partial_credits_add_up_until_the_rest_settles_it() {
    let e = env().await;
    let (sid, tid, t) = e.one_terminal().await;
    let account = e.account_number(&sid).await;
    let mut stream = Sse::open(&t, &tid, None).await;
    let r1 = format!("{tid}-000001");
    let (s, _, _) = register(&t, &tid, &registration(&r1, "2500.00", "555111", soon())).await;
    assert_eq!(s, StatusCode::CREATED);

    let first = e.credited(&account, "1000.00", "555111").await;
    assert_eq!(
        (
            first["status"].as_str(),
            first["matched_reference"].as_str()
        ),
        (Some("partial"), Some(r1.as_str()))
    );
    let cmd = transfer_received(&mut stream).await;
    assert_eq!(
        (cmd["amount"].as_str(), cmd["total_received"].as_str()),
        (Some("1000.00"), Some("1000.00"))
    );
    // Still open: no transaction yet, nothing settled, the rest is due.
    let (s, _) = signed(
        &t,
        Method::GET,
        &format!("/v1/terminals/{tid}/transactions/{r1}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, v, replayed) =
        register(&t, &tid, &registration(&r1, "2500.00", "555111", soon())).await;
    assert!(replayed);
    assert_eq!(
        (v["data"]["status"].as_str(), v["data"]["received"].as_str()),
        (Some("open"), Some("1000.00"))
    );
    assert_eq!(e.balance(&sid).await["settled"], "0.00");
    // More than the 1500.00 still due is not taken.
    let over = e.credited(&account, "1600.00", "555111").await;
    assert_eq!(over["status"], "unmatched");

    let rest = e.credited(&account, "1500.00", "ref 555111").await;
    assert_eq!(rest["status"], "matched");
    let cmd = transfer_received(&mut stream).await;
    assert_eq!(
        (cmd["amount"].as_str(), cmd["total_received"].as_str()),
        (Some("1500.00"), Some("2500.00"))
    );
    let (s, v) = signed(
        &t,
        Method::GET,
        &format!("/v1/terminals/{tid}/transactions/{r1}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["data"]["channel"].as_str(), v["data"]["amount"].as_str()),
        (Some("account"), Some("2500.00"))
    );
    let b = e.balance(&sid).await;
    assert_eq!(
        (
            b["collected"].as_str(),
            b["settled"].as_str(),
            b["unmatched"].as_str()
        ),
        (Some("4100.00"), Some("2500.00"), Some("1600.00"))
    );
    e.sim.shutdown().await;
}

/// Credits that no open payment takes stay on the account: wrong amount,
/// wrong code, no code, after a cancel, after the expiry, another
/// session's code.
#[tokio::test]
async fn credits_without_an_open_code_and_amount_stay_unmatched() {
    let e = env().await;
    let (sid, tid, t) = e.one_terminal().await;
    let account = e.account_number(&sid).await;
    let (other_sid, other_tid, other_t) = e.one_terminal().await;
    let r1 = format!("{tid}-000001");
    let (s, _, _) = register(&t, &tid, &registration(&r1, "2500.00", "700001", soon())).await;
    assert_eq!(s, StatusCode::CREATED);
    let o1 = format!("{other_tid}-000001");
    let (s, _, _) = register(
        &other_t,
        &other_tid,
        &registration(&o1, "10.00", "800001", soon()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);

    for (amount, narration) in [
        ("2500.01", "700001"),
        ("2500.00", "700002"),
        ("2500.00", "no code here"),
        ("2500.00", "7000011"),
        ("10.00", "800001"),
    ] {
        let entry = e.credited(&account, amount, narration).await;
        assert_eq!(
            entry["status"], "unmatched",
            "{amount} {narration:?}: {entry}"
        );
    }

    // Cancelled: idempotently; its code is free and a credit is unmatched.
    let (s, v) = cancel(&t, &tid, &r1).await;
    assert_eq!(
        (s, v["data"]["status"].as_str()),
        (StatusCode::OK, Some("cancelled")),
        "{v}"
    );
    let (s, v) = cancel(&t, &tid, &r1).await;
    assert_eq!(
        (s, v["data"]["status"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    assert_eq!(
        e.credited(&account, "2500.00", "700001").await["status"],
        "unmatched"
    );
    let (s, v) = cancel(&t, &tid, &format!("{tid}-000099")).await;
    assert_eq!((s, err_code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    let (s, v) = cancel(&t, &tid, "pos_ffffff_001-000001").await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "reference_not_yours")
    );
    let r2 = format!("{tid}-000002");
    let (s, v, _) = register(&t, &tid, &registration(&r2, "2500.00", "700001", soon())).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        e.credited(&account, "2500.00", "700001").await["status"],
        "matched"
    );

    // Expired before the money came: the sim's clock decides at credit time.
    let r3 = format!("{tid}-000003");
    let expires = Timestamp::now().plus_secs(2);
    let (s, v, _) = register(&t, &tid, &registration(&r3, "50.00", "700003", expires)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let until = expires.unix() * 1000 + 50 - now_ms;
    tokio::time::sleep(Duration::from_millis(until.max(0) as u64)).await;
    assert_eq!(
        e.credited(&account, "50.00", "700003").await["status"],
        "unmatched"
    );
    let (s, v) = cancel(&t, &tid, &r3).await;
    assert_eq!(
        (s, v["data"]["status"].as_str()),
        (StatusCode::OK, Some("expired"))
    );

    // The other session's account and its open transfer are untouched.
    assert_eq!(e.balance(&other_sid).await["collected"], "0.00");
    let (_, v, _) = register(
        &other_t,
        &other_tid,
        &registration(&o1, "10.00", "800001", soon()),
    )
    .await;
    assert_eq!(v["data"]["status"], "open");
    let rc = e.reconciliation(&sid).await;
    assert_eq!(rc["unmatched_credits"]["count"], 7);
    e.sim.shutdown().await;
}

#[tokio::test]
async fn a_sandbox_credit_is_validated() {
    let e = env().await;
    let (sid, _, _) = e.one_terminal().await;
    let account = e.account_number(&sid).await;
    let base = json!({"account_number": account, "amount": "10.00", "narration": "123456",
                      "payer_name": "ADA OBI", "payer_bank": "GTBank"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let cases = [
        (
            with("account_number", json!("0000000000")),
            StatusCode::NOT_FOUND,
            "account_not_found",
        ),
        (
            with("amount", json!("0.00")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount_zero",
        ),
        (
            with("amount", json!("-1.00")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount_negative",
        ),
        (
            with("narration", json!("n".repeat(141))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_narration",
        ),
        (
            with("payer_name", json!("")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_payer_name",
        ),
        (
            with("payer_bank", json!("b".repeat(141))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_payer_bank",
        ),
        (
            with("payer_bank", json!(7)),
            StatusCode::BAD_REQUEST,
            "invalid_payer_bank",
        ),
    ];
    for (body, status, code) in cases {
        let (s, v) = e
            .org_json(Method::POST, "/v1/sandbox/transfers", Some(body.clone()))
            .await;
        assert_eq!((s, err_code(&v)), (status, code), "{body}");
        if code.starts_with("invalid_payer") || code == "invalid_narration" {
            let field = code.trim_start_matches("invalid_");
            assert!(
                v["error"]["message"].as_str().unwrap().contains(field),
                "{v}"
            );
        }
    }
    // The longest narration is fine; nothing refused was credited.
    let (s, v) = e
        .org_json(
            Method::POST,
            "/v1/sandbox/transfers",
            Some(with("narration", json!("n".repeat(140)))),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(e.balance(&sid).await["collected"], "10.00");
    let (s, _) = json_of(
        e.http
            .post(format!("{}/v1/sandbox/transfers", e.sim.url()))
            .json(&base)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    e.sim.shutdown().await;
}

#[tokio::test]
async fn the_statement_keeps_running_balances_and_filters_and_pages() {
    let e = env().await;
    let (sid, tid, t) = e.one_terminal().await;
    let account = e.account_number(&sid).await;
    let r1 = format!("{tid}-000001");
    let (s, _, _) = register(&t, &tid, &registration(&r1, "300.00", "246810", soon())).await;
    assert_eq!(s, StatusCode::CREATED);
    let mut made = Vec::new();
    for (amount, narration) in [
        ("100.00", "246810"),
        ("12.34", "tip"),
        ("200.00", "246810"),
        ("9999999.99", "big one"),
        ("9999999.99", "bigger total than one payment"),
    ] {
        made.push(e.credited(&account, amount, narration).await);
    }
    let statuses: Vec<&str> = made.iter().map(|m| m["status"].as_str().unwrap()).collect();
    assert_eq!(
        statuses,
        ["partial", "unmatched", "matched", "unmatched", "unmatched"]
    );

    let (s, v) = e.statement(&sid, "?size=200", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let all = v["data"]["content"].as_array().unwrap().clone();
    assert_eq!(v["data"]["totalElements"], 5);
    let ids: Vec<&Value> = all.iter().map(|x| &x["entry_id"]).collect();
    let want: Vec<&Value> = made.iter().map(|x| &x["entry_id"]).collect();
    assert_eq!(ids, want, "oldest first");
    let minor = |v: &Value| -> u64 { proto::Total::parse(v.as_str().unwrap()).unwrap().0 };
    let mut previous = 0;
    for x in &all {
        assert_eq!(minor(&x["previous_balance"]), previous, "{x}");
        assert_eq!(
            minor(&x["new_balance"]),
            previous + minor(&x["amount_collected"]),
            "{x}"
        );
        previous = minor(&x["new_balance"]);
    }
    let b = e.balance(&sid).await;
    assert_eq!(b["collected"], all.last().unwrap()["new_balance"]);
    assert_eq!(b["collected"], "20000312.32");
    assert_eq!(b["settled"], "300.00");
    assert_eq!(b["unmatched"], "20000012.32");

    // Filters: status, reference (own or matched), currency; {} is all.
    let refs_of = |v: &Value| -> Vec<String> {
        v["data"]["content"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["entry_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, v) = e
        .statement(&sid, "", Some(json!({"status": "unmatched"})))
        .await;
    assert_eq!(refs_of(&v).len(), 3);
    let (_, v) = e.statement(&sid, "", Some(json!({"reference": r1}))).await;
    assert_eq!(
        refs_of(&v),
        [
            made[0]["entry_id"].as_str().unwrap(),
            made[2]["entry_id"].as_str().unwrap()
        ]
    );
    let own = made[1]["reference"].as_str().unwrap();
    let (_, v) = e
        .statement(&sid, "", Some(json!({"reference": own, "currency": "NGN"})))
        .await;
    assert_eq!(refs_of(&v), [made[1]["entry_id"].as_str().unwrap()]);
    let (_, v) = e
        .statement(
            &sid,
            "",
            Some(json!({"status": "matched", "reference": own})),
        )
        .await;
    assert!(refs_of(&v).is_empty());
    let (_, v) = e.statement(&sid, "", Some(json!({}))).await;
    assert_eq!(refs_of(&v).len(), 5);

    // Pages of two.
    let (_, p0) = e.statement(&sid, "?page=0&size=2", None).await;
    let (_, p2) = e.statement(&sid, "?page=2&size=2", Some(json!({}))).await;
    assert_eq!(
        (
            p0["data"]["totalPages"].as_u64(),
            p0["data"]["size"].as_u64()
        ),
        (Some(3), Some(2))
    );
    assert_eq!(
        refs_of(&p0),
        [
            made[0]["entry_id"].as_str().unwrap(),
            made[1]["entry_id"].as_str().unwrap()
        ]
    );
    assert_eq!(refs_of(&p2), [made[4]["entry_id"].as_str().unwrap()]);
    let (s, v) = e.statement(&sid, "?size=0", None).await;
    assert_eq!((s, err_code(&v)), (StatusCode::BAD_REQUEST, "invalid_size"));

    // A malformed filter names its field.
    for (filter, field) in [
        (json!({"status": "settled"}), "status"),
        (json!({"status": 1}), "status"),
        (json!({"currency": "USD"}), "currency"),
        (json!({"currency": true}), "currency"),
        (json!({"reference": "r".repeat(65)}), "reference"),
        (json!({"reference": ["x"]}), "reference"),
    ] {
        let (s, v) = e.statement(&sid, "", Some(filter.clone())).await;
        assert_eq!(
            (s, err_code(&v)),
            (StatusCode::BAD_REQUEST, format!("invalid_{field}").as_str()),
            "{filter}"
        );
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.starts_with(&format!("{field}: expected")), "{msg}");
    }
    let (_, v) = e
        .statement(&sid, "", Some(json!({"status": "bogus"})))
        .await;
    assert_eq!(
        v["error"]["message"],
        "status: expected one of matched, partial, unmatched"
    );
    e.sim.shutdown().await;
}

/// The registrations and the ledger are kept in the state file: after a
/// restart the partial payment is still open, the rest settles it, and
/// the balance and statement go on from where they were. `DELETE
/// /v1/sandbox` clears them.
#[tokio::test]
async fn registrations_and_the_ledger_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fast_config();
    cfg.state_file = Some(dir.path().join("sim.db"));
    let e = env_with(cfg.clone()).await;
    let (sid, tid, t) = e.one_terminal().await;
    let account = e.account_number(&sid).await;
    let r1 = format!("{tid}-000001");
    let r2 = format!("{tid}-000002");
    let (s, _, _) = register(&t, &tid, &registration(&r1, "900.00", "135790", soon())).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _, _) = register(&t, &tid, &registration(&r2, "5.00", "135791", soon())).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = cancel(&t, &tid, &r2).await;
    assert_eq!(s, StatusCode::OK);
    for (amount, narration) in [
        ("400.00", "135790"),
        ("1.00", "x"),
        ("2.00", "y"),
        ("3.00", "z"),
    ] {
        e.credited(&account, amount, narration).await;
    }
    let (_, before) = e.statement(&sid, "?size=200", None).await;
    let balance = e.balance(&sid).await;
    e.sim.shutdown().await;

    let e2 = env_with(cfg).await;
    let t2 = SignedClient::new(e2.http.clone(), e2.sim.url(), t.creds.clone());
    assert_eq!(e2.balance(&sid).await, balance);
    let (_, after) = e2.statement(&sid, "?size=200", None).await;
    assert_eq!(after["data"], before["data"]);
    let (s, v, replayed) =
        register(&t2, &tid, &registration(&r1, "900.00", "135790", soon())).await;
    assert_eq!((s, replayed), (StatusCode::OK, true));
    assert_eq!(v["data"]["received"], "400.00");
    let (_, v) = cancel(&t2, &tid, &r2).await;
    assert_eq!(v["data"]["status"], "cancelled");
    let mut stream = Sse::open(&t2, &tid, None).await;
    let rest = e2.credited(&account, "500.00", "135790").await;
    assert_eq!(rest["status"], "matched");
    assert_eq!(rest["previous_balance"], "406.00");
    // The partial credit's command from before the restart (not acked) is
    // sent again, then the new one.
    let first = transfer_received(&mut stream).await;
    assert_eq!(first["total_received"], "400.00");
    let second = transfer_received(&mut stream).await;
    assert_eq!(second["total_received"], "900.00");
    let b = e2.balance(&sid).await;
    assert_eq!(
        (b["collected"].as_str(), b["settled"].as_str()),
        (Some("906.00"), Some("900.00"))
    );

    let (s, _) = e2.org_json(Method::DELETE, "/v1/sandbox", None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = e2
        .org_json(
            Method::GET,
            &format!("/v1/sessions/{sid}/account/balance"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = e2.credit(&account, "1.00", "135790").await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::NOT_FOUND, "account_not_found")
    );
    e2.sim.shutdown().await;
}
