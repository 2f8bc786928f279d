//! Load shedding (`--max-inflight`) and the load statistics.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::*;

/// Waits (bounded) until the sim counts `n` requests in flight.
async fn wait_in_flight(e: &Env, n: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while e.sim.stats().in_flight != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "in flight: {:?}",
            e.sim.stats()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn beyond_max_inflight_requests_are_shed_with_retry_after_and_streams_do_not_count() {
    let mut cfg = fast_config();
    cfg.max_inflight = Some(2);
    cfg.shed_retry_after = Duration::from_secs(3);
    let e = env_with(cfg).await;
    let (sid, tid, t) = e.one_terminal().await;

    // Three open command streams hold nothing.
    let mut streams = Vec::new();
    for _ in 0..3 {
        streams.push(Sse::open(&t, &tid, None).await);
    }
    assert_eq!(e.sim.stats().in_flight, 0);
    let (s, v) = e
        .org_json(Method::GET, &format!("/v1/sessions/{sid}"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Two slow submissions fill the limit.
    let (s, v) = e
        .org_json(
            Method::POST,
            "/v1/sandbox/scenarios",
            Some(json!({"terminal_id": tid, "scenario": "slow:1200", "count": 2})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    e.sim.reset_stats();
    let mut held = Vec::new();
    for n in 1..=2 {
        let t = t.clone();
        let tid = tid.clone();
        held.push(tokio::spawn(async move {
            submit(
                &t,
                &tid,
                &sale(&format!("{tid}-00000{n}"), "10.00", "1111", false),
            )
            .await
        }));
    }
    wait_in_flight(&e, 2).await;

    let r = e
        .org
        .request(Method::GET, &format!("/v1/sessions/{sid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "3");
    let (_, v) = json_of(r).await;
    assert_eq!(err_code(&v), "overloaded");

    // The stats route still answers, and is not counted itself.
    let (s, v) = e.org_json(Method::GET, "/v1/sandbox/stats", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["in_flight"], 2, "{v}");
    assert_eq!(v["data"]["shed"], 1, "{v}");
    assert_eq!(v["data"]["max_inflight"], 2, "{v}");

    for h in held {
        let (s, v) = h.await.unwrap();
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let stats = e.sim.stats();
    assert_eq!(stats.in_flight, 0);
    assert_eq!(stats.peak_in_flight, 2);
    assert_eq!(stats.shed, 1);
    assert_eq!(stats.served, 2);
    assert!(stats.latency_p99_us >= 1_200_000, "{stats:?}");
    assert!(stats.latency_max_us >= stats.latency_p99_us);

    // Free again.
    let (s, _) = e
        .org_json(Method::GET, &format!("/v1/sessions/{sid}"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    drop(streams);
    e.sim.shutdown().await;
}

#[tokio::test]
async fn stats_count_served_requests_and_reset_opens_a_new_window() {
    let e = env().await;
    let (sid, _, _) = e.one_terminal().await;
    e.sim.reset_stats();
    for _ in 0..5 {
        let (s, _) = e
            .org_json(Method::GET, &format!("/v1/sessions/{sid}"), None)
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    let (s, v) = e.org_json(Method::DELETE, "/v1/sandbox/stats", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["served"], 5, "{v}");
    assert_eq!(v["data"]["shed"], 0, "{v}");
    assert_eq!(v["data"]["peak_in_flight"], 1, "{v}");
    assert!(v["data"]["latency_p99_us"].as_u64().unwrap() >= 1, "{v}");
    assert!(v["data"]["max_inflight"].is_null(), "{v}");
    let stats = e.sim.stats();
    assert_eq!((stats.served, stats.shed), (0, 0));
    // The organisation key is required.
    let r = e
        .http
        .get(format!("{}/v1/sandbox/stats", e.sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    e.sim.shutdown().await;
}
