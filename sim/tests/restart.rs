//! What a restart on the same `--state` file keeps beyond the records:
//! the nonces of the replay window and the webhooks still being retried.

use std::path::Path;
use std::time::Duration;

use proto::signing::sign_request;
use reqwest::{Method, StatusCode};

use crate::common::*;

/// Attempts recorded for webhook `id` in the state file (`None`: no row).
fn stored_attempts(file: &Path, id: &str) -> Option<u64> {
    let conn = rusqlite::Connection::open(file).unwrap();
    let body: Option<String> = conn
        .query_row("SELECT body FROM webhooks WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .ok();
    body.map(|b| {
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        v["attempts"].as_u64().unwrap()
    })
}

async fn wait_stored(file: &Path, id: &str, want: Option<u64>) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while stored_attempts(file, id) != want {
        assert!(
            tokio::time::Instant::now() < deadline,
            "webhook {id} stored as {:?}, want {want:?}",
            stored_attempts(file, id)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_nonce_replayed_after_a_restart_is_still_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fast_config();
    cfg.state_file = Some(dir.path().join("sim.db"));
    let e = env_with(cfg.clone()).await;
    let (_, tid, t) = e.one_terminal().await;
    let path = format!("/v1/terminals/{tid}/config");
    let now = proto::wire::Timestamp::now().unix();
    let h = sign_request(&t.creds, "GET", &path, b"", now, uuid::Uuid::new_v4()).unwrap();
    let send = |url: String| {
        let mut rb = e.http.get(format!("{url}{path}"));
        for (k, v) in h.pairs() {
            rb = rb.header(k, v);
        }
        rb.send()
    };
    let (s, v) = json_of(send(e.sim.url()).await.unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    e.sim.shutdown().await;

    let e2 = env_with(cfg).await;
    let (s, v) = json_of(send(e2.sim.url()).await.unwrap()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(err_code(&v), "nonce_replayed");
    // A fresh nonce from the same terminal is fine.
    let t2 = kler_sim::client::SignedClient::new(e2.http.clone(), e2.sim.url(), t.creds.clone());
    let (s, v) = signed(&t2, Method::GET, &path, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    e2.sim.shutdown().await;
}

#[tokio::test]
async fn a_webhook_still_being_retried_is_retried_after_a_restart_with_its_id() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sim.db");
    let (url, mut rx) = receiver(1).await;
    let mut cfg = fast_config();
    cfg.state_file = Some(file.clone());
    // No second attempt before the restart.
    cfg.webhook_retry_base = Duration::from_secs(60);
    let e = env_with(cfg.clone()).await;
    let (_, tids) = e.session(1, Some(&url)).await;
    let tid = tids[0].clone();
    let t = e.provision(&tid).await;
    let (s, _) = submit(
        &t,
        &tid,
        &sale(&format!("{tid}-000001"), "10.00", "1111", false),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (first, v) = recv_event(&mut rx, "transaction.received").await;
    let id = v["id"].as_str().unwrap().to_owned();
    assert_eq!(first.headers["x-webhook-attempt"], "1");
    // Answered 500: recorded as one attempt made, the next one due.
    wait_stored(&file, &id, Some(1)).await;
    e.sim.shutdown().await;

    cfg.webhook_retry_base = Duration::from_millis(20);
    let e2 = env_with(cfg).await;
    let (again, v) = recv_event(&mut rx, "transaction.received").await;
    assert_eq!(v["id"], id.as_str());
    assert_eq!(again.headers["x-webhook-id"], id.as_str());
    assert_eq!(again.headers["x-webhook-attempt"], "2");
    // Delivered: nothing left to resume.
    wait_stored(&file, &id, None).await;
    e2.sim.shutdown().await;
}

#[tokio::test]
async fn a_webhook_whose_attempts_are_used_is_not_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sim.db");
    let (url, mut rx) = receiver(u32::MAX).await;
    let mut cfg = fast_config();
    cfg.state_file = Some(file.clone());
    cfg.webhook_max_attempts = 2;
    let e = env_with(cfg.clone()).await;
    let (_, tids) = e.session(1, Some(&url)).await;
    let tid = tids[0].clone();
    let t = e.provision(&tid).await;
    submit(
        &t,
        &tid,
        &sale(&format!("{tid}-000001"), "10.00", "1111", false),
    )
    .await;
    let (_, v) = recv_event(&mut rx, "transaction.received").await;
    let id = v["id"].as_str().unwrap().to_owned();
    let (second, _) = recv_event(&mut rx, "transaction.received").await;
    assert_eq!(second.headers["x-webhook-attempt"], "2");
    wait_stored(&file, &id, None).await;
    e.sim.shutdown().await;
    let e2 = env_with(cfg).await;
    // The next delivery the receiver sees is a new event's first attempt:
    // the given-up one (already due) was not resumed.
    let t2 = kler_sim::client::SignedClient::new(e2.http.clone(), e2.sim.url(), t.creds.clone());
    submit(
        &t2,
        &tid,
        &sale(&format!("{tid}-000002"), "10.00", "1111", false),
    )
    .await;
    let (next, v) = recv_event(&mut rx, "transaction.received").await;
    assert_ne!(v["id"], id.as_str());
    assert_eq!(next.headers["x-webhook-attempt"], "1");
    e2.sim.shutdown().await;
}
