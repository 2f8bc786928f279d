//! The heartbeat's metrics summary (SPEC 8.2): kept per terminal and shown
//! in the partner's terminal list.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn the_terminal_list_shows_the_last_heartbeats_metrics() {
    let e = env().await;
    let (sid, tid, t) = e.one_terminal().await;
    let list = || async {
        let (s, v) = e
            .org_json(
                Method::GET,
                &format!("/v1/terminals?session_id={sid}"),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["data"]["content"][0].clone()
    };
    // Never sent: null, and present.
    let info = list().await;
    assert!(info.as_object().unwrap().contains_key("metrics"), "{info}");
    assert_eq!(info["metrics"], json!(null));

    let path = format!("/v1/terminals/{tid}/heartbeat");
    let metrics = json!({
        "payments_approved": 3, "payments_declined": 1, "payments_offline": 1,
        "tap_to_result_p50_ms": 420, "tap_to_result_p99_ms": 1900,
        "reader_errors": 2, "printer_errors": 0, "link_up": true,
        "a_newer_agents_field": 7
    });
    let hb =
        json!({"agent_version": "0.1.0", "state": "idle", "queue_depth": 0, "metrics": metrics});
    let (s, v) = signed(&t, Method::POST, &path, Some(&hb)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let shown = list().await["metrics"].clone();
    assert_eq!(shown["payments_approved"], 3);
    assert_eq!(shown["tap_to_result_p99_ms"], 1900);
    assert_eq!(shown["reader_errors"], 2);
    assert_eq!(shown["link_up"], true);
    assert!(shown.get("a_newer_agents_field").is_none(), "{shown}");

    // A heartbeat without a summary (an older agent) keeps the last one;
    // a new one replaces it.
    let hb = json!({"agent_version": "0.0.9", "state": "idle"});
    assert_eq!(
        signed(&t, Method::POST, &path, Some(&hb)).await.0,
        StatusCode::OK
    );
    assert_eq!(list().await["metrics"]["payments_approved"], 3);
    let hb = json!({"agent_version": "0.1.0", "state": "idle",
                    "metrics": {"payments_approved": 4, "link_up": false}});
    assert_eq!(
        signed(&t, Method::POST, &path, Some(&hb)).await.0,
        StatusCode::OK
    );
    let shown = list().await["metrics"].clone();
    assert_eq!(
        (
            shown["payments_approved"].as_u64(),
            shown["link_up"].as_bool()
        ),
        (Some(4), Some(false))
    );
    assert!(shown.get("tap_to_result_p50_ms").is_none(), "{shown}");

    // Floats are not integers: refused, the last summary stays.
    let hb = json!({"agent_version": "0.1.0", "state": "idle",
                    "metrics": {"payments_approved": 1.5}});
    let (s, _) = signed(&t, Method::POST, &path, Some(&hb)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(list().await["metrics"]["payments_approved"], 4);
    e.sim.shutdown().await;
}
