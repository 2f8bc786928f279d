//! SPEC 7.5 shifts: Z reports sent by terminals, idempotent by `shift_no`,
//! listed per session, kept across a restart.

use kler_sim::client::SignedClient;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

fn ct(count: u64, total: &str) -> Value {
    json!({"count": count, "total": total})
}

fn shift(no: u64, opened: &str, closed: &str) -> Value {
    json!({
        "shift_no": no, "opened_at": opened, "closed_at": closed,
        "totals": {
            "sales": ct(3, "4650.00"), "refunds": ct(1, "300.00"), "declined": ct(1, "50.00"),
            "tips": ct(1, "150.00"), "online": ct(2, "3150.00"), "offline": ct(1, "1500.00"),
            "by_operator": {"op_1": ct(3, "4650.00")},
            "by_item": {"beer": {"name": "Star Lager", "qty": 3, "total": "4500.00"}}
        }
    })
}

/// POSTs a shift; returns status, whether it was marked a replay, body.
async fn send(t: &SignedClient, tid: &str, body: &Value) -> (StatusCode, bool, Value) {
    let bytes = body.to_string().into_bytes();
    let r = t
        .request(Method::POST, &format!("/v1/terminals/{tid}/shifts"), &bytes)
        .unwrap()
        .send()
        .await
        .unwrap();
    let replayed = r
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    let (s, v) = json_of(r).await;
    (s, replayed, v)
}

#[tokio::test]
async fn shifts_are_recorded_once_per_number_and_listed_per_session() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fast_config();
    cfg.state_file = Some(dir.path().join("sim.db"));
    let e = env_with(cfg.clone()).await;
    let (sid, tids) = e.session(2, None).await;
    let (other_sid, other_tids) = e.session(1, None).await;
    let (a, b) = (tids[0].clone(), tids[1].clone());
    let ta = e.provision(&a).await;
    let tb = e.provision(&b).await;
    let to = e.provision(&other_tids[0]).await;
    let (t0, t1, t2) = (
        "2026-11-21T18:00:00Z",
        "2026-11-21T22:00:00Z",
        "2026-11-22T02:00:00Z",
    );

    // First time: 201 with the record.
    let s1 = shift(1, t0, t1);
    let (s, replayed, v) = send(&ta, &a, &s1).await;
    assert_eq!((s, replayed), (StatusCode::CREATED, false), "{v}");
    let rec = v["data"].clone();
    assert_eq!(
        (
            rec["terminal_id"].as_str(),
            rec["session_id"].as_str(),
            rec["shift_no"].as_u64()
        ),
        (Some(a.as_str()), Some(sid.as_str()), Some(1))
    );
    assert_eq!(rec["totals"], s1["totals"]);
    assert!(rec["received_at"].is_string());
    // Again, the same: 200, marked a replay, the stored record.
    let (s, replayed, v) = send(&ta, &a, &s1).await;
    assert_eq!((s, replayed, &v["data"]), (StatusCode::OK, true, &rec));
    // The same number with other totals or times: 409.
    let mut other_totals = s1.clone();
    other_totals["totals"]["sales"] = ct(4, "4650.00");
    let (s, _, v) = send(&ta, &a, &other_totals).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::CONFLICT, "idempotency_conflict"),
        "{v}"
    );
    let (s, _, v) = send(&ta, &a, &shift(1, t0, t2)).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::CONFLICT, "idempotency_conflict")
    );

    // Invalid: shift_no 0, closed before opened (422), malformed (400).
    let (s, _, v) = send(&ta, &a, &shift(0, t0, t1)).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        "{v}"
    );
    let (s, _, v) = send(&ta, &a, &shift(2, t1, t0)).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        "{v}"
    );
    let mut no_totals = shift(2, t0, t1);
    no_totals.as_object_mut().unwrap().remove("totals");
    let (s, _, v) = send(&ta, &a, &no_totals).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::BAD_REQUEST, "missing_totals")
    );
    // A shift that opens and closes in the same second is fine; by_operator
    // and by_item may be left out.
    let mut bare = shift(2, t1, t1);
    bare["totals"]
        .as_object_mut()
        .unwrap()
        .remove("by_operator");
    bare["totals"].as_object_mut().unwrap().remove("by_item");
    let (s, _, v) = send(&ta, &a, &bare).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["data"]["totals"]["by_item"], json!({}));

    // Shift numbers are per terminal: B's shift 1 is its own.
    let (s, _, _) = send(&tb, &b, &shift(1, t1, t2)).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _, _) = send(&to, &other_tids[0], &shift(1, t0, t2)).await;
    assert_eq!(s, StatusCode::CREATED);
    // Signed by the path's terminal only; unsigned refused.
    let (s, _, _) = send(&tb, &a, &shift(3, t0, t1)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let r = e
        .http
        .post(format!("{}/v1/terminals/{a}/shifts", e.sim.url()))
        .json(&shift(3, t0, t1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // The session's list: by terminal, then shift number; other sessions'
    // shifts are not in it.
    let list_of = |e: &Env, sid: &str| {
        let path = format!("/v1/sessions/{sid}/shifts");
        let org = e.org.clone();
        async move {
            let r = org.request(Method::GET, &path).send().await.unwrap();
            json_of(r).await
        }
    };
    let summary = |v: &Value| -> Vec<(String, u64)> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["terminal_id"].as_str().unwrap().to_owned(),
                    s["shift_no"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let want = vec![(a.clone(), 1), (a.clone(), 2), (b.clone(), 1)];
    let (s, v) = list_of(&e, &sid).await;
    assert_eq!((s, summary(&v)), (StatusCode::OK, want.clone()), "{v}");
    assert_eq!(v["data"][0], rec);
    let (_, v) = list_of(&e, &other_sid).await;
    assert_eq!(summary(&v), vec![(other_tids[0].clone(), 1)]);
    let (s, _) = list_of(&e, "nope").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let r = e
        .http
        .get(format!("{}/v1/sessions/{sid}/shifts", e.sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Kept across a restart: listed as before, and still a replay.
    e.sim.shutdown().await;
    let e = env_with(cfg).await;
    let (_, v) = list_of(&e, &sid).await;
    assert_eq!(summary(&v), want);
    assert_eq!(v["data"][0], rec);
    let ta = SignedClient::new(e.http.clone(), e.sim.url(), ta.creds.clone());
    let (s, replayed, v) = send(&ta, &a, &s1).await;
    assert_eq!((s, replayed, &v["data"]), (StatusCode::OK, true, &rec));
    e.sim.shutdown().await;
}
