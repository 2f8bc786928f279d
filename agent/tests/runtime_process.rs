//! `pos-agent run` as a process, the way systemd runs it: `READY=1` and
//! `WATCHDOG=1` on `$NOTIFY_SOCKET`, the virtual device serving the idle
//! screen, and a clean exit 0 on SIGTERM. Against `kler-sim` in-process.
//! Waiting is on the notify socket (a datagram arrives or the bounded
//! timeout fails the test).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::Stdio;
use std::time::Duration;

use proto::signing::Secret;
use serde_json::{Value, json};
use tokio::net::UnixDatagram;
use tokio::time::timeout;

const ORG_KEY: &str = "org-test-key";
const DEADLINE: Duration = Duration::from_secs(20);

async fn next_notification(socket: &UnixDatagram) -> String {
    let mut buf = vec![0u8; 4096];
    let n = timeout(DEADLINE, socket.recv(&mut buf))
        .await
        .expect("no notification from the agent")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_notifies_systemd_feeds_the_watchdog_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let sim = kler_sim::start(kler_sim::Config::new("127.0.0.1:0", ORG_KEY))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let session: Value = http
        .post(format!("{}/v1/sessions", sim.url()))
        .header("x-api-key", ORG_KEY)
        .json(&json!({
            "external_event_id": "ev-p",
            "name": "Process Fest",
            "collection": {"account": false, "pos": true, "pos_count": 1}
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session_id = session["data"]["session_id"].as_str().unwrap();
    let terminal = session["data"]["pos_terminals"][0]["terminal_id"]
        .as_str()
        .unwrap();
    // A fixed free port for the control API (the process prints nothing
    // we could read it from).
    let control = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let control_addr = control.local_addr().unwrap();
    drop(control);
    let config_path = dir.path().join("config.toml");
    std::fs::write(
        &config_path,
        format!(
            r#"
data_dir = "{data}"
[terminal]
id = "{terminal}"
session_id = "{session_id}"
[backend]
url = "{url}"
[hal.virtual]
control_addr = "{control_addr}"
"#,
            data = dir.path().join("data").display(),
            url = sim.url(),
        ),
    )
    .unwrap();
    let sources = pos_agent::config::Sources {
        file: config_path.clone(),
        env: Vec::new(),
        flags: Vec::new(),
    };
    let config = pos_agent::config::load(&sources).unwrap().config;
    pos_agent::provision::provision(&config, Secret::new(ORG_KEY.to_string()), false)
        .await
        .unwrap();

    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_pos-agent"))
        .arg("run")
        .arg("--config")
        .arg(&config_path)
        .env_remove("POS_AGENT_CONFIG")
        .env_remove("CREDENTIALS_DIRECTORY")
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "200000")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    // READY=1 comes once the idle screen is up, then the watchdog is fed.
    let mut got = Vec::new();
    while !(got.iter().any(|m: &String| m.contains("READY=1"))
        && got.iter().any(|m| m.contains("WATCHDOG=1")))
    {
        got.push(next_notification(&socket).await);
    }
    let ready_at = got.iter().position(|m| m.contains("READY=1")).unwrap();
    assert!(
        got[..ready_at].iter().all(|m| !m.contains("STOPPING")),
        "{got:?}"
    );
    let screen: Value = http
        .get(format!("http://{control_addr}/screen"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(screen["screen"], "idle", "{screen}");

    // SIGTERM: STOPPING=1, then exit 0.
    let pid = child.id().unwrap().to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    loop {
        let m = next_notification(&socket).await;
        if m.contains("STOPPING=1") {
            break;
        }
    }
    let status = timeout(DEADLINE, child.wait()).await.unwrap().unwrap();
    assert_eq!(status.code(), Some(0));
    sim.shutdown().await;
}
