//! HTTPS to the backend over rustls, trusting the extra CA of
//! `backend.ca_file` (and nothing else unknown).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use pos_agent::client::{ClientError, OrgClient};
use pos_agent::config::{self, Sources};
use proto::signing::Secret;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// A one-connection-at-a-time HTTPS server on 127.0.0.1 answering every
/// request with a success envelope. Runs on a plain thread until the
/// process ends.
fn https_server() -> String {
    let dir = Path::new(FIXTURES);
    let certs = CertificateDer::pem_file_iter(dir.join("test-server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("test-server.key")).unwrap();
    let tls = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { continue };
            let conn = rustls::ServerConnection::new(tls.clone()).unwrap();
            let mut stream = rustls::StreamOwned::new(conn, tcp);
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            // A failed handshake (an untrusting client) ends up here as an error.
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            if got.is_empty() {
                continue;
            }
            let body = r#"{"success":true,"data":{"tls":"ok"}}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.flush();
            stream.conn.send_close_notify();
            let _ = stream.flush();
        }
    });
    format!("https://127.0.0.1:{}", addr.port())
}

fn backend(url: &str, ca_file: Option<&str>) -> config::BackendConfig {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    let ca = ca_file
        .map(|f| format!("ca_file = {:?}\n", format!("{FIXTURES}/{f}")))
        .unwrap_or_default();
    std::fs::write(
        &file,
        format!("[terminal]\nid = \"t\"\nsession_id = \"s\"\n[backend]\nurl = {url:?}\n{ca}"),
    )
    .unwrap();
    config::load(&Sources {
        file,
        ..Sources::default()
    })
    .unwrap()
    .config
    .backend
}

#[tokio::test]
async fn https_works_with_the_extra_ca_and_fails_without_it() {
    let url = https_server();

    let trusted = OrgClient::new(&backend(&url, Some("test-ca.pem")), Secret::new("k")).unwrap();
    let v: serde_json::Value = trusted.get_json("/v1/ping").await.unwrap();
    assert_eq!(v["tls"], "ok");

    // Without the CA the server's certificate is not trusted: no data, and
    // the failure is a connection error (retried by the outbox, like any
    // other failure to reach the backend).
    let untrusted = OrgClient::new(&backend(&url, None), Secret::new("k")).unwrap();
    let e = untrusted
        .get_json::<serde_json::Value>("/v1/ping")
        .await
        .unwrap_err();
    assert!(
        matches!(e, ClientError::Retryable { status: None, .. }),
        "{e:?}"
    );
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
}
