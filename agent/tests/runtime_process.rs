//! `pos-agent run` as a process, the way systemd runs it: `READY=1` and
//! `WATCHDOG=1` on `$NOTIFY_SOCKET`, the virtual device serving the idle
//! screen, and a clean exit 0 on SIGTERM — also in the middle of a payment
//! (`systemctl stop` during a sale loses nothing and charges nobody twice).
//! Against `kler-sim` in-process. Waiting is on the notify socket (a
//! datagram arrives or the bounded timeout fails the test) or on a bounded
//! readiness loop over the control API and the partner API.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use proto::signing::Secret;
use serde_json::{Value, json};
use tokio::net::UnixDatagram;
use tokio::process::Child;
use tokio::sync::mpsc;
use tokio::time::timeout;

const ORG_KEY: &str = "org-test-key";
const DEADLINE: Duration = Duration::from_secs(20);

/// Reads the notify socket all the time, as systemd does, into a channel.
fn read_notifications(socket: UnixDatagram) -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = socket.recv(&mut buf).await {
            if tx
                .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                .is_err()
            {
                return;
            }
        }
    });
    rx
}

async fn next_notification(notes: &mut mpsc::UnboundedReceiver<String>) -> String {
    timeout(DEADLINE, notes.recv())
        .await
        .expect("no notification from the agent")
        .expect("notify socket closed")
}

/// Retries `check` every 20 ms until it yields, up to the deadline.
async fn until<T, Fut: Future<Output = Option<T>>>(
    what: &str,
    mut check: impl FnMut() -> Fut,
) -> T {
    let end = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A simulator, a provisioned terminal and its `pos-agent run` process.
struct Proc {
    dir: tempfile::TempDir,
    sim: kler_sim::RunningSim,
    http: reqwest::Client,
    terminal: String,
    control_addr: SocketAddr,
    config: pos_agent::config::Config,
    child: Child,
    notes: mpsc::UnboundedReceiver<String>,
}

impl Proc {
    /// Starts everything and returns once the agent sent `READY=1` and
    /// fed the watchdog, asserting it never said STOPPING before.
    async fn start() -> Proc {
        Proc::start_with(|_| ()).await
    }

    /// As [`Proc::start`], with `before_run` called on the data directory
    /// after provisioning and before the agent starts.
    async fn start_with(before_run: impl FnOnce(&std::path::Path)) -> Proc {
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
            .unwrap()
            .to_owned();
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
[sync]
heartbeat_interval_ms = 200
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

        before_run(&config.data_dir);
        let socket_path = dir.path().join("notify.sock");
        let notes = read_notifications(UnixDatagram::bind(&socket_path).unwrap());
        let child = tokio::process::Command::new(crate::common::BIN)
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
        let mut p = Proc {
            dir,
            sim,
            http,
            terminal,
            control_addr,
            config,
            child,
            notes,
        };

        // READY=1 comes once the idle screen is up, then the watchdog is fed.
        let mut got = Vec::new();
        while !(got.iter().any(|m: &String| m.contains("READY=1"))
            && got.iter().any(|m| m.contains("WATCHDOG=1")))
        {
            got.push(next_notification(&mut p.notes).await);
        }
        let ready_at = got.iter().position(|m| m.contains("READY=1")).unwrap();
        assert!(
            got[..ready_at].iter().all(|m| !m.contains("STOPPING")),
            "{got:?}"
        );
        p
    }

    async fn screen(&self) -> Value {
        self.http
            .get(format!("http://{}/screen", self.control_addr))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn wait_screen(&self, name: &str) -> Value {
        until(&format!("the {name} screen"), || async {
            let s = self.screen().await;
            (s["screen"] == name).then_some(s)
        })
        .await
    }

    async fn org(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.sim.url()))
            .header("x-api-key", ORG_KEY);
        if let Some(b) = body {
            req = req.header("Idempotency-Key", b["reference"].as_str().unwrap_or("k"));
            req = req.json(&b);
        }
        req.send().await.unwrap().json().await.unwrap()
    }

    async fn create_payment(&self, amount: &str, reference: &str) -> String {
        let p = self
            .org(
                reqwest::Method::POST,
                "/v1/payments",
                Some(json!({
                    "terminal_id": self.terminal, "amount": amount,
                    "currency": "NGN", "reference": reference
                })),
            )
            .await;
        p["data"]["payment_id"].as_str().unwrap().to_owned()
    }

    async fn payment(&self, id: &str) -> Value {
        self.org(reqwest::Method::GET, &format!("/v1/payments/{id}"), None)
            .await["data"]
            .clone()
    }

    /// Taps a card once the virtual reader waits for one.
    async fn tap(&self, card: &str) {
        until("the reader to take the tap", || async {
            let r = self
                .http
                .post(format!("http://{}/tap", self.control_addr))
                .json(&json!({ "card": card }))
                .send()
                .await
                .unwrap();
            r.status().is_success().then_some(())
        })
        .await;
    }

    /// SIGTERM, as `systemctl stop` sends it; the agent says STOPPING=1 and
    /// must exit 0.
    async fn sigterm_and_wait(&mut self) {
        let pid = self.child.id().unwrap().to_string();
        let killed = tokio::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap();
        assert!(killed.success());
        loop {
            let m = next_notification(&mut self.notes).await;
            if m.contains("STOPPING=1") {
                break;
            }
        }
        let status = timeout(DEADLINE, self.child.wait()).await.unwrap().unwrap();
        assert_eq!(status.code(), Some(0));
    }

    /// The ledger as the stopped agent left it.
    fn ledger(&self) -> store::Store {
        store::Store::open_read_only(self.config.ledger_path()).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_notifies_systemd_feeds_the_watchdog_and_stops_cleanly_on_sigterm() {
    let mut p = Proc::start().await;
    assert_eq!(p.screen().await["screen"], "idle");
    p.sigterm_and_wait().await;
    assert!(p.dir.path().join("data").exists());
    p.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_waiting_for_the_card_cancels_the_payment_and_charges_nobody() {
    let mut p = Proc::start().await;
    let pid = p.create_payment("2000.00", "STOP-1").await;
    p.wait_screen("tap_card").await;

    p.sigterm_and_wait().await;

    // The ledger has the payment, ended without a charge.
    let ledger = p.ledger();
    let txs = ledger
        .transactions_for_payment(&proto::PaymentId::new(pid.clone()).unwrap())
        .unwrap();
    assert_eq!(txs.len(), 1, "{txs:?}");
    assert_eq!(txs[0].state, store::TxState::Aborted, "{txs:?}");
    // The partner learns it was aborted (flushed before the exit) and no
    // transaction reached the backend.
    let payment = p.payment(&pid).await;
    assert_eq!(payment["status"], "aborted", "{payment}");
    assert!(payment["transaction"].is_null(), "{payment}");
    p.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_the_authorization_lets_the_sale_finish_and_loses_nothing() {
    let mut p = Proc::start().await;
    // The backend takes 1.5 s to authorize: SIGTERM lands in the middle.
    let set = p
        .org(
            reqwest::Method::POST,
            "/v1/sandbox/scenarios",
            Some(json!({"terminal_id": p.terminal, "scenario": "slow:1500", "count": 1})),
        )
        .await;
    assert_eq!(set["success"], true, "{set}");
    let pid = p.create_payment("3500.50", "STOP-2").await;
    p.wait_screen("tap_card").await;
    p.tap("visa_ok").await;
    p.wait_screen("processing").await;
    p.wait_screen("approved").await;
    p.sigterm_and_wait().await;

    // The sale finished before the agent stopped: approved in the ledger,
    // approved for the partner, one transaction under one reference.
    let ledger = p.ledger();
    let txs = ledger
        .transactions_for_payment(&proto::PaymentId::new(pid.clone()).unwrap())
        .unwrap();
    assert_eq!(txs.len(), 1, "{txs:?}");
    assert_eq!(txs[0].state, store::TxState::Approved, "{txs:?}");
    let payment = p.payment(&pid).await;
    assert_eq!(payment["status"], "approved", "{payment}");
    assert_eq!(
        payment["transaction"]["reference"],
        txs[0].reference.as_str(),
        "{payment}"
    );
    let statement = p
        .org(
            reqwest::Method::GET,
            &format!(
                "/v1/reconciliation/{}",
                p.config.terminal.session_id.as_ref().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(
        statement["data"]["successful_count"], 1,
        "exactly one approved sale at the backend: {statement}"
    );
    p.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_agent_on_the_same_ledger_is_refused_with_78_while_readers_still_work() {
    let mut p = Proc::start().await;
    let config_path = p.dir.path().join("config.toml");
    let second = tokio::process::Command::new(crate::common::BIN)
        .arg("run")
        .arg("--config")
        .arg(&config_path)
        .env_remove("POS_AGENT_CONFIG")
        .env_remove("CREDENTIALS_DIRECTORY")
        .env_remove("NOTIFY_SOCKET")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .output();
    let out = timeout(DEADLINE, second)
        .await
        .expect("the second agent kept running")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("another pos-agent is already running"),
        "{stderr}"
    );
    let first = p.child.id().unwrap().to_string();
    assert!(stderr.contains(&format!("pid {first}")), "{stderr}");

    // The first agent is untouched, and the read-only commands still work.
    assert_eq!(p.screen().await["screen"], "idle");
    let out = crate::common::pos_agent(
        &["queue", "--json", "--config", config_path.to_str().unwrap()],
        &[],
    )
    .await;
    let (stdout, stderr) = crate::common::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("\"items\""), "{stdout}");
    p.sigterm_and_wait().await;
    p.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_agent_keeps_its_data_directory_0700_and_its_ledger_files_0600() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    // A data directory made by hand, readable by everyone.
    let mut p = Proc::start_with(|data| {
        std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o755)).unwrap()
    })
    .await;
    let data = p.config.data_dir.clone();
    assert_eq!(mode(&data), 0o700);
    for name in [
        "ledger.sqlite",
        "ledger.sqlite-wal",
        "ledger.sqlite-shm",
        "ledger.lock",
    ] {
        assert_eq!(mode(&data.join(name)), 0o600, "{name}");
    }
    p.sigterm_and_wait().await;
    p.sim.shutdown().await;
}

/// `pos-agent wait-idle` and the package's maintainer scripts against a
/// running agent process.
mod upgrade;
