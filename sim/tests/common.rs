//! Helpers of the sim's black-box tests: a running sim, org and signed
//! requests, the command stream and a webhook receiver.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use kler_sim::client::{OrgClient, SignedClient};
use kler_sim::{Config, RunningSim};
use proto::wire::ProvisionResponse;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;

pub(crate) const ORG: &str = "org-test-key";
pub(crate) const WAIT: Duration = Duration::from_secs(10);

pub(crate) fn fast_config() -> Config {
    let mut c = Config::new("127.0.0.1:0", ORG);
    c.webhook_secret = Some("whsec-test".into());
    c.webhook_retry_base = Duration::from_millis(20);
    c.auth_timeout = Duration::from_millis(2000);
    c.ping_interval = Duration::from_millis(100);
    c.stream_max = Duration::from_secs(30);
    c.offline_after = Duration::from_millis(300);
    c.abort_wait = Duration::from_millis(2000);
    c
}

pub(crate) struct Env {
    pub(crate) sim: RunningSim,
    pub(crate) org: OrgClient,
    pub(crate) http: reqwest::Client,
}

pub(crate) async fn env_with(cfg: Config) -> Env {
    let sim = kler_sim::start(cfg).await.unwrap();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let org = OrgClient::new(http.clone(), sim.url(), ORG);
    Env { sim, org, http }
}

pub(crate) async fn env() -> Env {
    env_with(fast_config()).await
}

pub(crate) async fn json_of(r: reqwest::Response) -> (StatusCode, Value) {
    let s = r.status();
    let v: Value = r.json().await.unwrap();
    (s, v)
}

pub(crate) fn err_code(v: &Value) -> &str {
    assert_eq!(v["success"], json!(false), "{v}");
    v["error"]["code"].as_str().unwrap()
}

impl Env {
    pub(crate) async fn org_json(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut rb = self.org.request(method, path);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        json_of(rb.send().await.unwrap()).await
    }

    /// Creates a session with `n` terminals; returns (session id, terminal ids).
    pub(crate) async fn session(&self, n: u32, webhook: Option<&str>) -> (String, Vec<String>) {
        let mut body = json!({
            "external_event_id": "evt-1", "name": "Test Night",
            "collection": {"account": true, "pos": true, "pos_count": n}
        });
        if let Some(w) = webhook {
            body["webhook_url"] = json!(w);
        }
        let (s, v) = self
            .org_json(Method::POST, "/v1/sessions", Some(body))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let sid = v["data"]["session_id"].as_str().unwrap().to_owned();
        let tids = v["data"]["pos_terminals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["terminal_id"].as_str().unwrap().to_owned())
            .collect();
        (sid, tids)
    }

    /// A session of one terminal, provisioned: `(session id, terminal id,
    /// its signed client)`.
    pub(crate) async fn one_terminal(&self) -> (String, String, SignedClient) {
        let (sid, tids) = self.session(1, None).await;
        let tid = tids[0].clone();
        let t = self.provision(&tid).await;
        (sid, tid, t)
    }

    pub(crate) async fn provision(&self, tid: &str) -> SignedClient {
        let (s, v) = self
            .org_json(
                Method::POST,
                &format!("/v1/terminals/{tid}/provision"),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let p: ProvisionResponse = serde_json::from_value(v["data"].clone()).unwrap();
        SignedClient::new(self.http.clone(), self.sim.url(), p.credentials())
    }
}

pub(crate) async fn signed(
    c: &SignedClient,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    json_of(
        c.request(method, path, &bytes)
            .unwrap()
            .send()
            .await
            .unwrap(),
    )
    .await
}

pub(crate) fn card(last4: &str) -> Value {
    json!({"token": "9f2c4e1a0b7d3e6f8a1c2b4d6e8f0a1b", "last4": last4, "brand": "visa", "entry_mode": "contactless"})
}

pub(crate) fn sale(reference: &str, amount: &str, last4: &str, offline: bool) -> Value {
    json!({"reference": reference, "kind": "sale", "amount": amount, "currency": "NGN",
           "card": card(last4), "captured_at": "2026-11-21T10:00:00Z", "offline": offline})
}

pub(crate) async fn submit(c: &SignedClient, tid: &str, body: &Value) -> (StatusCode, Value) {
    let bytes = body.to_string().into_bytes();
    let r = c
        .request(
            Method::POST,
            &format!("/v1/terminals/{tid}/transactions"),
            &bytes,
        )
        .unwrap()
        .header("Idempotency-Key", body["reference"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    json_of(r).await
}

// ---------------------------------------------------------------------------
// SSE
// ---------------------------------------------------------------------------

pub(crate) enum SseItem {
    Ping,
    Command { id: u64, data: Value },
    End,
}

pub(crate) struct Sse {
    resp: reqwest::Response,
    buf: String,
}

impl Sse {
    pub(crate) async fn open(c: &SignedClient, tid: &str, last_id: Option<u64>) -> Sse {
        let mut rb = c
            .request(
                Method::GET,
                &format!("/v1/terminals/{tid}/commands/stream"),
                b"",
            )
            .unwrap();
        if let Some(id) = last_id {
            rb = rb.header("Last-Event-ID", id.to_string());
        }
        let resp = rb.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let mut s = Sse {
            resp,
            buf: String::new(),
        };
        // The stream opens with a ping: the terminal is registered by then.
        assert!(matches!(s.next().await, SseItem::Ping));
        s
    }

    pub(crate) async fn next(&mut self) -> SseItem {
        loop {
            if let Some(pos) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..pos + 2).collect();
                if block.starts_with(": ping") {
                    return SseItem::Ping;
                }
                let mut id = 0;
                let mut data = Value::Null;
                let mut event = "";
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = v.parse().unwrap();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = serde_json::from_str(v).unwrap();
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event = if v == "command" { "command" } else { "other" };
                    }
                }
                assert_eq!(event, "command", "{block}");
                return SseItem::Command { id, data };
            }
            match tokio::time::timeout(WAIT, self.resp.chunk()).await {
                Ok(Ok(Some(c))) => self.buf.push_str(std::str::from_utf8(&c).unwrap()),
                Ok(_) => return SseItem::End,
                Err(_) => panic!("no SSE data within {WAIT:?}"),
            }
        }
    }

    pub(crate) async fn command(&mut self) -> (u64, Value) {
        loop {
            match self.next().await {
                SseItem::Ping => continue,
                SseItem::Command { id, data } => return (id, data),
                SseItem::End => panic!("stream ended while waiting for a command"),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Webhook receiver
// ---------------------------------------------------------------------------

pub(crate) struct Received {
    pub(crate) headers: axum::http::HeaderMap,
    pub(crate) path: String,
    pub(crate) body: Vec<u8>,
}

/// A receiver that answers 500 to the first `fail_first` requests.
pub(crate) async fn receiver(fail_first: u32) -> (String, mpsc::UnboundedReceiver<Received>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let count = Arc::new(AtomicU32::new(0));
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(
            move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let tx = tx.clone();
                let count = Arc::clone(&count);
                async move {
                    let _ = tx.send(Received {
                        headers,
                        path: uri.path().to_owned(),
                        body: body.to_vec(),
                    });
                    if count.fetch_add(1, Ordering::SeqCst) < fail_first {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                }
            },
        ),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, rx)
}

pub(crate) async fn recv(rx: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("webhook within time")
        .unwrap()
}

/// Next webhook of the given event type (others are skipped).
pub(crate) async fn recv_event(
    rx: &mut mpsc::UnboundedReceiver<Received>,
    event: &str,
) -> (Received, Value) {
    loop {
        let r = recv(rx).await;
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        if v["event"] == event {
            return (r, v);
        }
    }
}
