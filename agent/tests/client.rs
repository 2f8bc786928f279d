//! The backend clients against real HTTP servers on loopback.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use pos_agent::client::{ClientError, OrgClient, SignedClient};
use pos_agent::config::BackendConfig;
use proto::signing::{Credentials, IncomingHeaders, NonceCache, Secret, verify_request};
use proto::wire::{AckStatus, CommandAck, TransactionAnswer, TransactionSubmission};
use proto::{Reference, SessionId, TerminalId};
use reqwest::Url;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn creds() -> Credentials {
    Credentials {
        tenant_id: "test-tenant".into(),
        api_key: "term_key_001".into(),
        merchant_id: "m-1".into(),
        secret: Secret::new("s3cr3t-terminal"),
    }
}

fn backend(url: &str) -> BackendConfig {
    let url = Url::parse(url).unwrap();
    BackendConfig {
        terminal_api_url: url.clone(),
        url,
        ca_file: None,
        ca_pem: None,
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
    }
}

fn tid() -> TerminalId {
    TerminalId::new("pos_3f1e2d_001").unwrap()
}

/// What the server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path_and_query: String,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone)]
struct Server {
    seen: Arc<Mutex<Vec<Seen>>>,
    reply: Arc<dyn Fn(&Seen) -> Response + Send + Sync>,
}

async fn handle(
    State(s): State<Server>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let seen = Seen {
        method,
        path_and_query: uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        headers,
        body,
    };
    let resp = (s.reply)(&seen);
    s.seen.lock().unwrap().push(seen);
    resp
}

/// Serves `reply` for every request; returns the base URL and the log.
async fn serve(
    reply: impl Fn(&Seen) -> Response + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let state = Server {
        seen: seen.clone(),
        reply: Arc::new(reply),
    };
    let app = Router::new().fallback(handle).with_state(state);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

fn envelope(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn ok_data(data: serde_json::Value) -> Response {
    envelope(
        StatusCode::OK,
        serde_json::json!({"success": true, "data": data}),
    )
}

fn verify(seen: &Seen, creds: &Credentials) -> Result<(), proto::signing::Rejection> {
    let h = |n: &str| seen.headers.get(n).and_then(|v| v.to_str().ok());
    let incoming = IncomingHeaders {
        tenant_id: h("x-tenant-id"),
        api_key: h("x-api-key"),
        merchant_id: h("x-merchant-id"),
        nonce: h("x-nonce"),
        timestamp: h("x-timestamp"),
        signature: h("x-signature"),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let cache = NonceCache::new(16);
    verify_request(
        &incoming,
        seen.method.as_str(),
        &seen.path_and_query,
        &seen.body,
        now,
        &cache,
        |k| (k == creds.api_key).then(|| creds.clone()),
    )
    .map(|_| ())
}

fn submission() -> TransactionSubmission {
    serde_json::from_value(serde_json::json!({
        "reference": "pos_3f1e2d_001-000042",
        "kind": "sale",
        "amount": "1500.50",
        "currency": "NGN",
        "offline": true,
        "captured_at": "2026-11-21T10:02:01Z",
        "card": {"token": "9f2c4e1a0b7d3e6f8a1c2b4d6e8f0a1b", "last4": "1111",
                 "brand": "visa", "entry_mode": "contactless"}
    }))
    .unwrap()
}

#[tokio::test]
async fn signed_requests_verify_and_carry_the_idempotency_key() {
    let (url, seen) = serve(|s| {
        if s.path_and_query.ends_with("/transactions") {
            ok_data(serde_json::json!({
                "transaction_id": "tx_1", "reference": "pos_3f1e2d_001-000042",
                "status": "approved", "auth_code": "A1B2C3"
            }))
        } else {
            ok_data(serde_json::json!({"content": [], "page": 0, "size": 20, "totalElements": 0, "totalPages": 0}))
        }
    })
    .await;
    let client = SignedClient::new(&backend(&url), tid(), creds()).unwrap();
    let answer: TransactionAnswer = client.submit_transaction(&submission()).await.unwrap();
    assert_eq!(answer.auth_code.as_deref(), Some("A1B2C3"));
    let page = client
        .statement(&proto::wire::StatementQuery {
            page: Some(2),
            size: Some(5),
            status: None,
        })
        .await
        .unwrap();
    assert!(page.content.is_empty());

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    let post = &seen[0];
    assert_eq!(
        post.path_and_query,
        "/v1/terminals/pos_3f1e2d_001/transactions"
    );
    assert_eq!(
        post.headers.get("idempotency-key").unwrap(),
        "pos_3f1e2d_001-000042"
    );
    assert_eq!(post.headers.get("x-tenant-id").unwrap(), "test-tenant");
    assert_eq!(verify(post, &creds()), Ok(()));
    // The signature covers the body: a different body does not verify.
    let mut tampered = post.clone();
    tampered.body = Bytes::from_static(br#"{"amount":"9999.00"}"#);
    assert_eq!(
        verify(&tampered, &creds()),
        Err(proto::signing::Rejection::BadSignature)
    );
    // The signature covers the query string too.
    let get = &seen[1];
    assert_eq!(
        get.path_and_query,
        "/v1/terminals/pos_3f1e2d_001/transactions?page=2&size=5"
    );
    assert!(get.headers.get("idempotency-key").is_none());
    assert_eq!(verify(get, &creds()), Ok(()));
    // Fresh nonces.
    assert_ne!(post.headers.get("x-nonce"), get.headers.get("x-nonce"));
}

#[tokio::test]
async fn a_base_url_with_a_path_prefix_is_signed_as_sent() {
    let (url, seen) = serve(|_| ok_data(serde_json::json!({}))).await;
    let client = SignedClient::new(&backend(&format!("{url}/api/")), tid(), creds()).unwrap();
    let ack = CommandAck {
        status: AckStatus::Accepted,
        reason: None,
    };
    client.ack_command("cmd_1", &ack).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen[0].path_and_query,
        "/api/v1/terminals/pos_3f1e2d_001/commands/cmd_1/ack"
    );
    assert_eq!(verify(&seen[0], &creds()), Ok(()));
    // A command id that is not a plain path segment is refused locally.
    let e = client.ack_command("../../x", &ack).await.unwrap_err();
    assert!(matches!(e, ClientError::Local { .. }), "{e:?}");
}

#[tokio::test]
async fn server_errors_are_retryable_and_carry_retry_after() {
    let (url, _) = serve(|s| {
        if s.path_and_query.contains("busy") {
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "7")],
                r#"{"success":false,"error":{"code":"rate_limited","message":"slow down"}}"#,
            )
                .into_response()
        } else {
            envelope(
                StatusCode::INTERNAL_SERVER_ERROR,
                serde_json::json!({"success": false, "error": {"code": "sandbox_http_500", "message": "boom"}}),
            )
        }
    })
    .await;
    let client = SignedClient::new(&backend(&url), tid(), creds()).unwrap();
    let e = client
        .get_json::<serde_json::Value>("/v1/x")
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Retryable {
                status: Some(500),
                retry_after: None,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.is_retryable());
    let e = client
        .get_json::<serde_json::Value>("/v1/busy")
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(429));
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    assert!(e.to_string().contains("slow down"), "{e}");
}

#[tokio::test]
async fn client_errors_are_permanent_with_their_code() {
    let (url, _) = serve(|_| {
        envelope(
            StatusCode::UNPROCESSABLE_ENTITY,
            serde_json::json!({"success": false, "error": {"code": "amount_decimals", "message": "two decimals please"}}),
        )
    })
    .await;
    let client = SignedClient::new(&backend(&url), tid(), creds()).unwrap();
    let e = client.submit_transaction(&submission()).await.unwrap_err();
    match &e {
        ClientError::Permanent {
            status,
            code,
            message,
            ..
        } => {
            assert_eq!(*status, 422);
            assert_eq!(code, "amount_decimals");
            assert_eq!(message, "two decimals please");
        }
        other => panic!("expected Permanent, got {other:?}"),
    }
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn garbage_bodies_are_invalid_responses() {
    let (url, _) = serve(|s| {
        if s.path_and_query.contains("html") {
            (StatusCode::OK, "<html>proxy login</html>").into_response()
        } else {
            ok_data(serde_json::json!({"transaction_id": 5}))
        }
    })
    .await;
    let client = SignedClient::new(&backend(&url), tid(), creds()).unwrap();
    let e = client
        .get_json::<serde_json::Value>("/v1/html")
        .await
        .unwrap_err();
    assert!(
        matches!(e, ClientError::InvalidResponse { status: 200, .. }),
        "{e:?}"
    );
    let e = client.submit_transaction(&submission()).await.unwrap_err();
    assert!(matches!(e, ClientError::InvalidResponse { .. }), "{e:?}");
    assert!(
        e.is_retryable(),
        "a broken answer is retried under the same key"
    );
}

#[tokio::test]
async fn lookup_of_an_unknown_reference_is_none() {
    let (url, _) = serve(|_| {
        envelope(
            StatusCode::NOT_FOUND,
            serde_json::json!({"success": false, "error": {"code": "not_found", "message": "no such transaction"}}),
        )
    })
    .await;
    let client = SignedClient::new(&backend(&url), tid(), creds()).unwrap();
    let r = client
        .lookup_transaction(&Reference::new("pos_3f1e2d_001-000001").unwrap())
        .await
        .unwrap();
    assert!(r.is_none());
}

#[tokio::test]
async fn connection_refused_is_retryable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = SignedClient::new(&backend(&format!("http://{addr}")), tid(), creds()).unwrap();
    let e = client
        .get_json::<serde_json::Value>("/v1/x")
        .await
        .unwrap_err();
    assert!(
        matches!(e, ClientError::Retryable { status: None, .. }),
        "{e:?}"
    );
}

/// A raw TCP server that reads one request and runs `then` on the socket.
async fn raw_server<F, Fut>(then: F) -> String
where
    F: FnOnce(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = Vec::new();
        // Read until the end of the headers and the announced body.
        loop {
            let n = sock.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got);
            if let Some(end) = text.find("\r\n\r\n") {
                let len = text
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if got.len() >= end + 4 + len {
                    break;
                }
            }
        }
        then(sock).await;
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_cut_connection_is_retryable() {
    // Like the simulator's drop_after_commit: the request is read, then the
    // connection closes without an answer.
    let url = raw_server(|sock| async move { drop(sock) }).await;
    let client = SignedClient::new(&backend(&url), tid(), creds()).unwrap();
    let e = client.submit_transaction(&submission()).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert!(matches!(e, ClientError::Retryable { .. }), "{e:?}");
}

#[tokio::test]
async fn a_body_cut_halfway_is_retryable() {
    let url = raw_server(|mut sock| async move {
        sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"success\":tr")
            .await
            .unwrap();
        drop(sock);
    })
    .await;
    let client = SignedClient::new(&backend(&url), tid(), creds()).unwrap();
    let e = client
        .get_json::<serde_json::Value>("/v1/x")
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Retryable {
                status: Some(200),
                ..
            }
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_silent_server_times_out_retryably() {
    let (hold_tx, hold_rx) = tokio::sync::oneshot::channel::<()>();
    let url = raw_server(|sock| async move {
        // Keep the socket open, say nothing, until the test ends.
        let _ = hold_rx.await;
        drop(sock);
    })
    .await;
    let mut b = backend(&url);
    b.request_timeout = Duration::from_millis(300);
    let client = SignedClient::new(&b, tid(), creds()).unwrap();
    let e = client
        .get_json::<serde_json::Value>("/v1/x")
        .await
        .unwrap_err();
    assert!(
        matches!(e, ClientError::Retryable { status: None, .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("timed out"), "{e}");
    drop(hold_tx);
}

#[tokio::test]
async fn org_client_sends_the_org_key_and_parses_provisioning() {
    let (url, seen) = serve(|s| {
        if s.headers.get("x-api-key").map(|v| v.as_bytes()) != Some(b"org-key-1") {
            return envelope(
                StatusCode::UNAUTHORIZED,
                serde_json::json!({"success": false, "error": {"code": "unauthorized", "message": "bad key"}}),
            );
        }
        envelope(
            StatusCode::CREATED,
            serde_json::json!({"success": true, "data": {
                "api_key": "k", "secret": "s", "merchant_id": "m", "tenant_id": "t",
                "terminal_id": "pos_3f1e2d_001", "session_id": "sess_1"
            }}),
        )
    })
    .await;
    let org = OrgClient::new(&backend(&url), Secret::new("org-key-1")).unwrap();
    let p = org
        .provision(&tid(), &SessionId::new("sess_1").unwrap())
        .await
        .unwrap();
    assert_eq!(p.api_key, "k");
    assert_eq!(p.secret.expose(), "s");
    assert!(!format!("{p:?}").contains("\"s\""));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen[0].path_and_query,
        "/v1/terminals/pos_3f1e2d_001/provision"
    );
    let body: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(body["session_id"], "sess_1");

    let wrong = OrgClient::new(&backend(&url), Secret::new("nope")).unwrap();
    let e = wrong
        .provision(&tid(), &SessionId::new("sess_1").unwrap())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(401));
    assert_eq!(e.code(), Some("unauthorized"));
}

#[tokio::test]
async fn redirects_are_not_followed_so_credentials_stay_with_the_backend() {
    // Where a redirect would lead: it must never see a request.
    let (elsewhere, reached) = serve(|_| ok_data(serde_json::json!({}))).await;
    let target = format!("{elsewhere}/stolen");
    let (url, seen) = serve(move |_| {
        (
            StatusCode::TEMPORARY_REDIRECT,
            [("location", target.clone())],
            "",
        )
            .into_response()
    })
    .await;

    let signed = SignedClient::new(&backend(&url), tid(), creds()).unwrap();
    let e = signed
        .submit_transaction(&submission())
        .await
        .map(|_: TransactionAnswer| ())
        .unwrap_err();
    assert_eq!(e.status(), Some(307), "{e}");
    assert!(e.to_string().contains("redirect not followed"), "{e}");

    let org = OrgClient::new(&backend(&url), Secret::new("org-key-1")).unwrap();
    let e = org
        .provision(&tid(), &SessionId::new("sess_1").unwrap())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(307), "{e}");

    assert_eq!(
        seen.lock().unwrap().len(),
        2,
        "both requests reached the backend"
    );
    assert!(
        reached.lock().unwrap().is_empty(),
        "a redirect was followed: {:?}",
        reached.lock().unwrap()
    );
}
