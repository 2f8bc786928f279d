//! A hostile backend: malformed commands on the stream and broken answers
//! to every call. The agent rejects what it can name (ack `rejected /
//! invalid_request`), logs the rest, and keeps running: a good command
//! after the garbage still starts a payment, and it stops cleanly.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use e2e_tests::scenario::STEP_TIMEOUT;
use e2e_tests::terminal::AgentOptions;
use proto::wire::Timestamp;

use crate::common::provisioned;

#[derive(Default)]
struct Seen {
    acks: Vec<(String, serde_json::Value)>,
    heartbeats: usize,
    submissions: usize,
}

type Shared = Arc<Mutex<Seen>>;

fn events() -> String {
    let expires = Timestamp::now().plus_secs(120).to_wire();
    let good = serde_json::json!({
        "command_id": "cmd_good",
        "type": "sale",
        "payment_id": "pay_good",
        "amount": "10.00",
        "currency": "NGN",
        "partner_reference": "P-good",
        "expires_at": expires,
    });
    let usd = serde_json::json!({
        "command_id": "cmd_usd",
        "type": "sale",
        "payment_id": "pay_usd",
        "amount": "10.00",
        "currency": "USD",
        "partner_reference": "P-usd",
        "expires_at": expires,
    });
    let mut s = String::new();
    s.push_str("id: 1\nevent: command\ndata: this is not json\n\n");
    s.push_str("id: 2\nevent: command\ndata: {\"command_id\":\"cmd_amount\",\"type\":\"sale\",\"amount\":\"12.3456\"}\n\n");
    s.push_str("id: 3\nevent: command\ndata: {\"command_id\":\"cmd_type\",\"type\":\"launch_rockets\"}\n\n");
    s.push_str(&format!("id: 4\nevent: command\ndata: {usd}\n\n"));
    s.push_str(
        "id: x\nevent: command\ndata: {\"command_id\":\"bad id/../x\",\"type\":\"abort\"}\n\n",
    );
    s.push_str("event: nonsense\ndata: \u{0}\u{1}garbage\n\n");
    s.push_str(&format!(
        "id: 5\nevent: command\ndata: {}\n\n",
        "x".repeat(20_000)
    ));
    s.push_str(&format!("id: 6\nevent: command\ndata: {good}\n\n"));
    s
}

async fn stream() -> Response {
    let body = futures_util::StreamExt::chain(
        futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from(events()))]),
        futures_util::stream::pending(),
    );
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(body),
    )
        .into_response()
}

async fn ack(
    State(seen): State<Shared>,
    Path((_tid, cid)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let v = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    seen.lock().unwrap().acks.push((cid, v));
    (StatusCode::OK, "{\"success\":true,\"data\":").into_response() // truncated JSON
}

async fn heartbeat(State(seen): State<Shared>) -> Response {
    seen.lock().unwrap().heartbeats += 1;
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        "{\"success\":true,\"data\":{\"server_time\":\"yesterday\",\"session_status\":\"maybe\"}}",
    )
        .into_response()
}

async fn submission(State(seen): State<Shared>) -> Response {
    seen.lock().unwrap().submissions += 1;
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        "{\"success\":true,\"data\":{\"status\":\"approved\",\"reference\":42}}",
    )
        .into_response()
}

async fn garbage() -> Response {
    (
        StatusCode::OK,
        "<html>not the API you are looking for</html>",
    )
        .into_response()
}

async fn start_hostile(seen: Shared) -> SocketAddr {
    let app = Router::new()
        .route("/v1/terminals/{tid}/commands/stream", get(stream))
        .route("/v1/terminals/{tid}/commands/{cid}/ack", post(ack))
        .route("/v1/terminals/{tid}/heartbeat", post(heartbeat))
        .route("/v1/terminals/{tid}/transactions", post(submission))
        .fallback(garbage)
        .with_state(seen);
    serve(app).await
}

/// Serves `app` on a loopback port.
async fn serve(app: Router) -> SocketAddr {
    let l = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_commands_and_broken_answers_do_not_stop_the_agent() {
    let (_dir, mut s) = provisioned(1, AgentOptions::default()).await;
    let seen: Shared = Arc::default();
    let addr = start_hostile(seen.clone()).await;
    s.terminals[0]
        .set_backend_url(&format!("http://{addr}"))
        .unwrap();
    s.terminals[0].start().await.unwrap();
    let dev = s.terminals[0].device().unwrap().clone();

    // The good command after the garbage still starts a payment.
    let view = dev
        .wait_for("tap_card for the good command", STEP_TIMEOUT, |v| {
            v.screen == "tap_card" && v.amount.as_deref() == Some("10.00")
        })
        .await
        .unwrap();
    s.timeline
        .screen(&s.terminals[0], "good command after garbage", &view)
        .await
        .unwrap();

    // Every malformed command with a usable id was rejected as invalid.
    let deadline = e2e_tests::wait::Deadline::after(STEP_TIMEOUT);
    loop {
        let acks = seen.lock().unwrap().acks.clone();
        let rejected = |id: &str| {
            acks.iter().any(|(c, v)| {
                c == id && v["status"] == "rejected" && v["reason"] == "invalid_request"
            })
        };
        if ["cmd_amount", "cmd_type", "cmd_usd"]
            .iter()
            .all(|id| rejected(id))
        {
            assert!(
                !acks.iter().any(|(c, _)| c.contains('/')),
                "an unusable command id was acked: {acks:?}"
            );
            break;
        }
        deadline
            .tick("rejections of the malformed commands", || {
                format!("{acks:?}")
            })
            .await
            .unwrap();
    }

    // The customer taps; the backend's answer is broken: the outcome is
    // unknown, and the screen shows a result (never a crash).
    dev.tap("visa_ok", STEP_TIMEOUT).await.unwrap();
    let view = dev
        .wait_for("a result", STEP_TIMEOUT, |v| {
            matches!(v.screen.as_str(), "approved" | "declined")
        })
        .await
        .unwrap();
    assert!(seen.lock().unwrap().submissions >= 1);
    s.timeline
        .screen(&s.terminals[0], "broken authorization answer", &view)
        .await
        .unwrap();

    // Garbage heartbeat answers: it keeps beating and serving its device.
    let before = seen.lock().unwrap().heartbeats;
    let deadline = e2e_tests::wait::Deadline::after(Duration::from_secs(10));
    while seen.lock().unwrap().heartbeats < before + 2 {
        deadline
            .tick("two more heartbeats", String::new)
            .await
            .unwrap();
    }
    dev.screen()
        .await
        .expect("the virtual device still answers");

    // And it stops cleanly.
    s.terminals[0].stop().await.expect("graceful stop");
    s.backend.shutdown().await;
}

async fn bad_operators() -> Response {
    // A PIN hash that is not hex, a salt too short.
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        "{\"success\":true,\"data\":[{\"operator_id\":\"op_evil\",\"name\":\"Evil\",\"role\":\"supervisor\",\"pin_hash\":\"zz\",\"salt\":\"00\"}]}",
    )
        .into_response()
}

async fn bad_catalog() -> Response {
    // The same item twice.
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        "{\"success\":true,\"data\":{\"version\":9,\"items\":[{\"item_id\":\"a\",\"name\":\"A\",\"price\":\"1.00\"},{\"item_id\":\"a\",\"name\":\"B\",\"price\":\"2.00\"}]}}",
    )
        .into_response()
}

/// SPEC 7 bad input: a malformed operators list or catalog from the
/// backend keeps the last good copy (kept in the ledger), so the cashier
/// still logs in and sells from the catalog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_operator_list_or_catalog_keeps_the_last_good_copy() {
    let (_dir, mut s) = crate::common::scene(1, AgentOptions::default()).await;
    let sid = s.session_id().clone();
    let ada = s
        .backend
        .create_operator(&sid, "Ada", "cashier", "2468")
        .await
        .unwrap();
    s.backend
        .put_catalog(
            &sid,
            serde_json::json!({"items": [{"item_id": "star", "name": "Star Lager", "price": "1500.00"}]}),
        )
        .await
        .unwrap();
    let dev = s.terminals[0].device().unwrap().clone();
    dev.wait_screen("login", STEP_TIMEOUT).await.unwrap();
    dev.keys("2468").await.unwrap();
    dev.press("ok").await.unwrap();
    dev.wait_screen("idle", STEP_TIMEOUT).await.unwrap();
    // The catalog arrived too.
    dev.open_catalog(STEP_TIMEOUT).await.unwrap();
    s.terminals[0].stop().await.unwrap();

    let addr = serve(
        Router::new()
            .route("/v1/terminals/{tid}/operators", get(bad_operators))
            .route("/v1/terminals/{tid}/catalog", get(bad_catalog))
            .fallback(garbage),
    )
    .await;
    s.terminals[0]
        .set_backend_url(&format!("http://{addr}"))
        .unwrap();
    s.terminals[0].start().await.unwrap();
    let dev = s.terminals[0].device().unwrap().clone();
    dev.wait_screen("login", STEP_TIMEOUT).await.unwrap();
    dev.keys("2468").await.unwrap();
    dev.press("ok").await.unwrap();
    dev.wait_for("Ada logged in from the kept list", STEP_TIMEOUT, |v| {
        v.screen == "idle" && v.operator.as_deref() == Some(ada.as_str())
    })
    .await
    .unwrap();
    dev.press("menu").await.unwrap();
    dev.press("1").await.unwrap();
    dev.keys("1").await.unwrap();
    dev.press("ok").await.unwrap();
    let view = dev
        .wait_for("the kept catalog's item in the cart", STEP_TIMEOUT, |v| {
            v.screen == "catalog"
                && v.cart
                    .as_ref()
                    .is_some_and(|c| c.len() == 1 && c[0]["item_id"] == "star")
        })
        .await
        .unwrap();
    assert_eq!(view.amount.as_deref(), Some("1500.00"));
    s.terminals[0].stop().await.unwrap();
}
