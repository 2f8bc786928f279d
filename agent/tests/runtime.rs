//! The runtime end to end with real parts: `kler-sim` in-process over
//! loopback HTTP, a real SQLite ledger in a temp dir, the virtual device
//! driven over its HTTP control API.
//!
//! Waiting is done on readiness signals: the virtual device's screen state
//! is a `watch` (`wait_screen`), the reader's waiting state likewise. Where
//! only the backend can tell (the partner's view of a payment, the outbox
//! after a send), `eventually` retries a check every 20 ms up to a 15 s
//! deadline: bounded, never a bare sleep.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pos_agent::config::{self, Config, Sources};
use pos_agent::runtime::RunningAgent;
use proto::signing::Secret;
use serde_json::{Value, json};
use tokio::time::timeout;

const ORG_KEY: &str = "org-test-key";
const DEADLINE: Duration = Duration::from_secs(15);

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

/// Retries `check` every 20 ms until it returns `Some`, at most 15 s.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (on the device's state `watch`) until the screen matches.
/// Waits until the backend has acknowledged every outbox item (none
/// queued, none parked).
async fn wait_outbox_empty(agent: &RunningAgent) {
    eventually("the outbox to be empty", || async {
        agent
            .store()
            .list_outbox()
            .await
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
}

async fn wait_screen(
    agent: &RunningAgent,
    what: &str,
    pred: impl Fn(&ui::ScreenState) -> bool,
) -> ui::ScreenState {
    let mut rx = agent.device().expect("virtual device").subscribe_state();
    let parse = |s: &hal::ScreenStateJson| s.parse::<ui::ScreenState>().ok();
    let found = match timeout(
        DEADLINE,
        rx.wait_for(|s| parse(s).is_some_and(|s| pred(&s))),
    )
    .await
    {
        Ok(Ok(s)) => parse(&s),
        _ => None,
    };
    found.unwrap_or_else(|| {
        panic!(
            "timed out waiting for the screen: {what}; last {:?}",
            rx.borrow()
        )
    })
}

/// `GET /screen` over the control API.
async fn screen_json(http: &reqwest::Client, addr: SocketAddr) -> Value {
    http.get(format!("http://{addr}/screen"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// `POST /tap` over the control API, once the reader waits for a card.
async fn tap(http: &reqwest::Client, agent: &RunningAgent, card: &str) {
    let device = agent.device().unwrap();
    timeout(DEADLINE, device.reader_ready())
        .await
        .expect("reader never waited for a card");
    let r = http
        .post(format!("http://{}/tap", agent.control_addr().unwrap()))
        .json(&json!({ "card": card }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "tap refused: {}", r.status());
}

fn write_config(dir: &Path, backend: &str, terminal: &str, session: &str) -> PathBuf {
    write_config_with_reader(dir, backend, terminal, session, "virtual")
}

fn write_config_with_reader(
    dir: &Path,
    backend: &str,
    terminal: &str,
    session: &str,
    reader: &str,
) -> PathBuf {
    let data = dir.join("data");
    let text = format!(
        r#"
data_dir = "{data}"
[terminal]
id = "{terminal}"
session_id = "{session}"
[backend]
url = "{backend}"
connect_timeout_ms = 500
request_timeout_ms = 3000
[payment]
auth_timeout_ms = 2000
result_hold_ms = 60000
[sync]
heartbeat_interval_ms = 200
session_poll_interval_ms = 500
retry_initial_ms = 50
retry_max_ms = 300
link_return_spread_ms = 200
[hal]
reader = "{reader}"
display = "virtual"
input = "virtual"
[hal.virtual]
control_addr = "127.0.0.1:0"
"#,
        data = data.display()
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn load_config(path: &Path) -> Config {
    let sources = Sources {
        file: path.to_path_buf(),
        env: Vec::new(),
        flags: Vec::new(),
    };
    config::load(&sources).unwrap().config
}

/// A simulator, a session with one terminal, and a provisioned data dir.
struct Env {
    sim: Option<kler_sim::RunningSim>,
    sim_addr: SocketAddr,
    state_file: PathBuf,
    http: reqwest::Client,
    terminal: String,
    session_id: String,
    config_path: PathBuf,
    _dir: tempfile::TempDir,
}

fn sim_config(listen: String, state_file: &Path) -> kler_sim::Config {
    let mut c = kler_sim::Config::new(listen, ORG_KEY);
    c.state_file = Some(state_file.to_path_buf());
    c.ping_interval = Duration::from_secs(1);
    // Longer than the agent's 2 s authorization timeout.
    c.auth_timeout = Duration::from_secs(3);
    c
}

impl Env {
    async fn new() -> Env {
        Env::with_sim(|_| {}).await
    }

    /// An environment whose simulator configuration `tune` adjusts.
    async fn with_sim(tune: impl FnOnce(&mut kler_sim::Config)) -> Env {
        init_logs();
        let dir = tempfile::tempdir().unwrap();
        let state_file = dir.path().join("sim.sqlite");
        let mut sim_cfg = sim_config("127.0.0.1:0".into(), &state_file);
        tune(&mut sim_cfg);
        let sim = kler_sim::start(sim_cfg).await.unwrap();
        let http = reqwest::Client::new();
        let base = sim.url();
        let session: Value = http
            .post(format!("{base}/v1/sessions"))
            .header("x-api-key", ORG_KEY)
            .json(&json!({
                "external_event_id": "ev-1",
                "name": "Lagos Jazz Night",
                "collection": {"account": false, "pos": true, "pos_count": 1}
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let data = &session["data"];
        let session_id = data["session_id"].as_str().unwrap().to_string();
        let terminal = data["pos_terminals"][0]["terminal_id"]
            .as_str()
            .unwrap()
            .to_string();
        let config_path = write_config(dir.path(), &base, &terminal, &session_id);
        pos_agent::provision::provision(
            &load_config(&config_path),
            Secret::new(ORG_KEY.to_string()),
            false,
        )
        .await
        .unwrap();
        Env {
            sim_addr: sim.addr(),
            sim: Some(sim),
            state_file,
            http,
            terminal,
            session_id,
            config_path,
            _dir: dir,
        }
    }

    fn base(&self) -> String {
        format!("http://{}", self.sim_addr)
    }

    fn config(&self) -> Config {
        load_config(&self.config_path)
    }

    async fn start_agent(&self) -> RunningAgent {
        self.start_agent_with(self.config()).await
    }

    async fn start_agent_with(&self, config: Config) -> RunningAgent {
        let agent = RunningAgent::start(config).await.unwrap();
        wait_screen(&agent, "idle and online", |s| {
            s.screen == ui::ScreenName::Idle && !s.offline
        })
        .await;
        agent
    }

    async fn stop_sim(&mut self) {
        if let Some(sim) = self.sim.take() {
            sim.shutdown().await;
        }
    }

    async fn restart_sim(&mut self) {
        let sim = kler_sim::start(sim_config(self.sim_addr.to_string(), &self.state_file))
            .await
            .unwrap();
        assert_eq!(sim.addr(), self.sim_addr);
        self.sim = Some(sim);
    }

    /// Partner: `POST /v1/payments`; retried while the sim still sees the
    /// terminal as offline (its stream is being opened).
    async fn create_payment(&self, amount: &str, reference: &str) -> String {
        self.create_payment_with(amount, reference, "prefer_online")
            .await
    }

    async fn create_payment_with(&self, amount: &str, reference: &str, policy: &str) -> String {
        let body = json!({
            "terminal_id": self.terminal,
            "amount": amount,
            "currency": "NGN",
            "reference": reference,
            "offline_policy": policy,
        });
        let v: Value = eventually("the backend to accept the payment", || async {
            let r = self
                .http
                .post(format!("{}/v1/payments", self.base()))
                .header("x-api-key", ORG_KEY)
                .header("Idempotency-Key", reference)
                .json(&body)
                .send()
                .await
                .ok()?;
            if r.status().as_u16() == 201 {
                r.json::<Value>().await.ok()
            } else {
                None
            }
        })
        .await;
        v["data"]["payment_id"].as_str().unwrap().to_string()
    }

    /// Partner/sandbox call with the organisation key; returns the status
    /// and the body.
    async fn org(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base()))
            .header("x-api-key", ORG_KEY)
            .header("Idempotency-Key", uuid::Uuid::new_v4().to_string());
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn payment(&self, id: &str) -> Value {
        let v: Value = self
            .http
            .get(format!("{}/v1/payments/{id}", self.base()))
            .header("x-api-key", ORG_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["data"].clone()
    }

    async fn wait_payment_status(&self, id: &str, status: &str) -> Value {
        eventually(&format!("payment {id} to be {status}"), || async {
            let p = self.payment(id).await;
            (p["status"] == status).then_some(p)
        })
        .await
    }
}

async fn all_transactions(store: &store::AsyncStore) -> Vec<store::Transaction> {
    store
        .list_transactions(store::Page {
            offset: 0,
            limit: 1000,
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_sale_is_approved_end_to_end() {
    let env = Env::new().await;
    let agent = env.start_agent().await;
    let addr = agent.control_addr().unwrap();
    let idle = screen_json(&env.http, addr).await;
    assert_eq!(idle["screen"], "idle");
    assert_eq!(idle["offline"], false);

    let pid = env.create_payment("2000.00", "POS-1").await;
    let s = wait_screen(&agent, "tap card", |s| s.screen == ui::ScreenName::TapCard).await;
    assert_eq!(s.amount.map(|a| a.to_wire()), Some("2000.00".to_string()));
    tap(&env.http, &agent, "visa_ok").await;
    wait_screen(&agent, "approved", |s| s.screen == ui::ScreenName::Approved).await;
    let shown = screen_json(&env.http, addr).await;
    assert_eq!(shown["screen"], "approved");
    assert_eq!(shown["amount"], "2000.00");
    assert_eq!(shown["currency"], "NGN");

    // One beep for the read, one for the approval.
    let log = eventually("the indicator to play", || async {
        let log = agent.device().unwrap().indicator();
        (log.success == 1).then_some(log)
    })
    .await;
    assert_eq!((log.card_read, log.success, log.failure), (1, 1, 0));

    // The ledger recorded it approved online, with the card token only.
    let txs = all_transactions(agent.store()).await;
    assert_eq!(txs.len(), 1);
    let tx = &txs[0];
    assert_eq!(tx.state, store::TxState::Approved);
    assert_eq!(
        tx.payment_id.as_ref().map(|p| p.as_str()),
        Some(pid.as_str())
    );
    let card = tx.card.as_ref().unwrap();
    assert_eq!(card.last4(), "1111");
    assert_ne!(card.token(), "4111111111111111");
    assert_eq!(
        tx.decision.as_ref().map(|d| d.mode),
        Some(store::DecisionMode::Online)
    );

    // The partner sees the approval with the terminal's reference.
    let p = env.wait_payment_status(&pid, "approved").await;
    assert_eq!(p["transaction"]["reference"], tx.reference.as_str());
    assert_eq!(p["transaction"]["offline"], false);
    assert_eq!(p["transaction"]["card"]["last4"], "1111");

    // Everything the backend had to learn was delivered.
    wait_outbox_empty(&agent).await;
    agent.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_sale_is_approved_locally_and_forwarded_on_recovery() {
    let mut env = Env::new().await;
    let agent = env.start_agent().await;
    let pid = env.create_payment("1500.50", "POS-OFF").await;
    wait_screen(&agent, "tap card", |s| s.screen == ui::ScreenName::TapCard).await;

    // The backend goes away before the tap; the agent notices.
    env.stop_sim().await;
    wait_screen(&agent, "offline", |s| s.offline).await;
    tap(&env.http, &agent, "mc_ok").await;
    let s = wait_screen(&agent, "approved offline", |s| {
        s.screen == ui::ScreenName::Approved
    })
    .await;
    assert!(s.offline);
    let txs = all_transactions(agent.store()).await;
    assert_eq!(txs.len(), 1);
    assert_eq!(txs[0].state, store::TxState::OfflineApproved);
    let reference = txs[0].reference.clone();
    let queued = agent.store().list_outbox().await.unwrap();
    assert!(
        queued
            .iter()
            .any(|i| i.kind == store::OutboxKind::Transaction
                && i.reference.as_ref() == Some(&reference)),
        "{queued:?}"
    );

    // The backend comes back: the queue drains, the forward is confirmed.
    env.restart_sim().await;
    let tx = eventually("the offline sale to be confirmed", || async {
        let tx = agent
            .store()
            .transaction(reference.clone())
            .await
            .unwrap()
            .unwrap();
        (tx.state == store::TxState::Approved).then_some(tx)
    })
    .await;
    assert!(tx.backend_transaction_id.is_some());
    assert_eq!(
        tx.decision.as_ref().map(|d| d.mode),
        Some(store::DecisionMode::Offline)
    );
    let p = env.wait_payment_status(&pid, "approved").await;
    assert_eq!(p["transaction"]["offline"], true);
    assert_eq!(p["transaction"]["reference"], reference.as_str());
    wait_outbox_empty(&agent).await;
    wait_screen(&agent, "online, nothing queued", |s| {
        !s.offline && s.queued == 0
    })
    .await;
    agent.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_payments_go_out_when_the_link_returns_not_after_their_backoff() {
    let mut env = Env::new().await;
    let mut config = env.config();
    // A backoff far longer than the test's deadline: only the link coming
    // back can make the queue drain in time.
    config.sync.retry_initial = Duration::from_secs(120);
    config.sync.retry_max = Duration::from_secs(300);
    let agent = env.start_agent_with(config).await;
    env.create_payment("120.00", "POS-BACKOFF").await;
    wait_screen(&agent, "tap card", |s| s.screen == ui::ScreenName::TapCard).await;
    env.stop_sim().await;
    wait_screen(&agent, "offline", |s| s.offline).await;
    tap(&env.http, &agent, "visa_ok").await;
    wait_screen(&agent, "approved offline", |s| {
        s.screen == ui::ScreenName::Approved
    })
    .await;
    let reference = all_transactions(agent.store()).await[0].reference.clone();

    // The first item of this payment (its event or its forward) was tried,
    // failed to connect, and now backs off for minutes; the forward waits
    // behind it.
    let failed = eventually("a failed send", || async {
        agent
            .store()
            .list_outbox()
            .await
            .unwrap()
            .into_iter()
            .find(|i| i.attempts >= 1 && !i.in_flight)
    })
    .await;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(
        failed.next_attempt_at > now_ms + 60_000,
        "backs off: {failed:?}"
    );

    // The backend returns: the heartbeat sees it and the queue goes out now.
    env.restart_sim().await;
    eventually("the offline sale to be confirmed", || async {
        let tx = agent
            .store()
            .transaction(reference.clone())
            .await
            .unwrap()
            .unwrap();
        (tx.state == store::TxState::Approved).then_some(())
    })
    .await;
    agent.shutdown().await.unwrap();
}

/// Issue 8.3 / SPEC 5.7: a forward the backend refuses for good is parked
/// (the idle screen and `/screen` say it needs attention); `pos-agent queue
/// --retry-all` puts it back in line and wakes the running agent, which
/// delivers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_forward_is_delivered_after_queue_retry_all() {
    let mut env = Env::new().await;
    let agent = env.start_agent().await;
    // As `pos-agent run` does: this process holds the ledger.
    let _lock = pos_agent::ledger::LedgerLock::acquire(&env.config().data_dir).unwrap();
    let pid = env.create_payment("640.00", "POS-R").await;
    wait_screen(&agent, "tap card", |s| s.screen == ui::ScreenName::TapCard).await;
    // The next submission (the forward) is refused once with a 409.
    let (status, body) = env
        .org(
            reqwest::Method::POST,
            "/v1/sandbox/scenarios",
            Some(json!({"terminal_id": env.terminal, "scenario": "http_409", "count": 1})),
        )
        .await;
    assert!((200..300).contains(&status), "{status} {body}");
    env.stop_sim().await;
    wait_screen(&agent, "offline", |s| s.offline).await;
    tap(&env.http, &agent, "visa_ok").await;
    wait_screen(&agent, "approved offline", |s| {
        s.screen == ui::ScreenName::Approved
    })
    .await;
    env.restart_sim().await;
    let parked = eventually("the forward to be parked", || async {
        let items = agent.store().list_outbox().await.unwrap();
        items
            .into_iter()
            .find(|i| i.parked && i.kind == store::OutboxKind::Transaction)
    })
    .await;
    assert!(
        parked.last_error.as_deref().unwrap_or("").contains("409"),
        "{parked:?}"
    );
    wait_screen(&agent, "one parked", |s| s.parked == 1).await;

    let out = std::process::Command::new(crate::common::BIN)
        .args(["queue", "--retry-all", "--json", "--config"])
        .arg(&env.config_path)
        .env_remove("POS_AGENT_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["retried"], json!([parked.id.0]), "{v}");
    assert_eq!(v["agent_pid"], json!(std::process::id()), "{v}");

    env.wait_payment_status(&pid, "approved").await;
    wait_outbox_empty(&agent).await;
    wait_screen(&agent, "nothing parked", |s| s.parked == 0 && s.queued == 0).await;
    agent.shutdown().await.unwrap();
}

/// Issue 8.7 / SPEC 5.14: an authorization the backend refuses with a 4xx
/// (not the issuer's decline) says "terminal problem" on the screen, not
/// "Declined by the bank"; nothing is charged and nothing is parked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_authorization_shows_a_terminal_problem_not_a_bank_decline() {
    let env = Env::new().await;
    let agent = env.start_agent().await;
    let pid = env.create_payment("75.00", "POS-409").await;
    wait_screen(&agent, "tap card", |s| s.screen == ui::ScreenName::TapCard).await;
    let (status, body) = env
        .org(
            reqwest::Method::POST,
            "/v1/sandbox/scenarios",
            Some(json!({"terminal_id": env.terminal, "scenario": "http_409", "count": 1})),
        )
        .await;
    assert!((200..300).contains(&status), "{status} {body}");
    tap(&env.http, &agent, "visa_ok").await;
    let screen = wait_screen(&agent, "declined", |s| s.screen == ui::ScreenName::Declined).await;
    assert_eq!(
        screen.message.as_deref(),
        Some("Not approved: terminal problem. No charge"),
        "{screen:?}"
    );
    let txs = all_transactions(agent.store()).await;
    assert_eq!(txs.len(), 1, "{txs:?}");
    assert_eq!(txs[0].state, store::TxState::Declined);
    assert_eq!(txs[0].decline_reason.as_deref(), Some("sandbox_refused"));
    // The backend charged nothing: its payment is not approved.
    let (_, p) = env
        .org(reqwest::Method::GET, &format!("/v1/payments/{pid}"), None)
        .await;
    assert_ne!(p["data"]["status"], "approved", "{p}");
    wait_outbox_empty(&agent).await;
    agent.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanently_refused_item_is_parked_and_listed_by_queue() {
    let env = Env::new().await;
    // Something the backend will refuse for good: an event about a payment
    // it never heard of (404).
    {
        let config = env.config();
        let store = store::AsyncStore::open(config.ledger_path(), Default::default())
            .await
            .unwrap();
        let item = store::NewOutboxItem::new(
            store::OutboxKind::PaymentEvent,
            json!({
                "payment_id": "pay_unknown_1",
                "event": {"status": "in_progress", "at": "2026-11-21T10:00:00Z"}
            }),
        )
        .for_payment(proto::PaymentId::new("pay_unknown_1").unwrap());
        store
            .record(store::Change::enqueue_only(1, vec![item]))
            .await
            .unwrap();
    }
    let agent = env.start_agent().await;
    let parked = eventually("the item to be parked", || async {
        let items = agent.store().list_outbox().await.unwrap();
        items.into_iter().find(|i| i.parked)
    })
    .await;
    assert!(
        parked.last_error.as_deref().unwrap_or("").contains("404"),
        "{parked:?}"
    );
    // Parked counts as queued on the screen: not acknowledged.
    wait_screen(&agent, "one queued", |s| s.queued == 1).await;
    // The rest of the outbox still flows: a sale goes through.
    let pid = env.create_payment("100.00", "POS-P").await;
    tap(&env.http, &agent, "verve_ok").await;
    env.wait_payment_status(&pid, "approved").await;
    agent.shutdown().await.unwrap();

    let out = std::process::Command::new(crate::common::BIN)
        .args(["queue", "--json", "--config"])
        .arg(&env.config_path)
        .env_remove("POS_AGENT_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{v}");
    assert_eq!(items[0]["kind"], "payment_event");
    assert_eq!(items[0]["state"], "parked");
    assert_eq!(items[0]["payment_id"], "pay_unknown_1");
    assert!(items[0]["last_error"].as_str().unwrap().contains("404"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_the_stream_without_replaying_a_finished_sale() {
    let env = Env::new().await;
    let agent = env.start_agent().await;
    let first = env.create_payment("300.00", "POS-R1").await;
    tap(&env.http, &agent, "visa_ok").await;
    wait_screen(&agent, "approved", |s| s.screen == ui::ScreenName::Approved).await;
    env.wait_payment_status(&first, "approved").await;
    let last = agent
        .store()
        .kv_get(pos_agent::sync::commands::KV_LAST_EVENT_ID.into())
        .await
        .unwrap();
    assert_eq!(last.as_deref(), Some("1"));
    agent.shutdown().await.unwrap();

    let agent = env.start_agent().await;
    // Nothing replayed: still one transaction, the screen idle.
    assert_eq!(all_transactions(agent.store()).await.len(), 1);
    let second = env.create_payment("400.00", "POS-R2").await;
    let s = wait_screen(&agent, "tap card", |s| s.screen == ui::ScreenName::TapCard).await;
    assert_eq!(s.amount.map(|a| a.to_wire()), Some("400.00".to_string()));
    tap(&env.http, &agent, "visa_ok").await;
    env.wait_payment_status(&second, "approved").await;
    let txs = all_transactions(agent.store()).await;
    assert_eq!(txs.len(), 2, "{txs:?}");
    assert_eq!(
        txs.iter()
            .filter(|t| t.payment_id.as_ref().map(|p| p.as_str()) == Some(first.as_str()))
            .count(),
        1
    );
    // References come from the durable counter: no reuse across restarts.
    assert_ne!(txs[0].reference, txs[1].reference);
    let last = agent
        .store()
        .kv_get(pos_agent::sync::commands::KV_LAST_EVENT_ID.into())
        .await
        .unwrap();
    assert_eq!(last.as_deref(), Some("2"));
    agent.shutdown().await.unwrap();
}

/// A backend that serves one malformed command and one valid sale on the
/// stream, and records every ack.
mod fake_backend {
    use axum::Router;
    use axum::body::{Body, Bytes};
    use axum::extract::{Path, State};
    use axum::routing::{any, get, post};
    use futures_util::StreamExt;
    use serde_json::{Value, json};
    use tokio::sync::mpsc;

    pub const MALFORMED: &str = r#"{"command_id":"cmd_bad","type":"sale","payment_id":"pay_x","amount":"12,00","currency":"NGN"}"#;
    pub const SALE: &str = r#"{"command_id":"cmd_ok","type":"sale","payment_id":"pay_ok","amount":"750.00","currency":"NGN","partner_reference":"P-OK","expires_at":"2099-01-01T00:00:00Z"}"#;
    /// An abort of a payment this terminal never had.
    pub const ABORT_OTHER: &str =
        r#"{"command_id":"cmd_abort","type":"abort","payment_id":"pay_other"}"#;
    /// The key under which stream connections are recorded.
    pub const STREAM: &str = "(stream)";

    pub async fn start(acks: mpsc::UnboundedSender<(String, Value)>) -> std::net::SocketAddr {
        let app = Router::new()
            .route(
                "/v1/terminals/{tid}/provision",
                post(|| async {
                    axum::Json(json!({"success": true, "data": {
                        "api_key": "k1", "secret": "s1",
                        "merchant_id": "m1", "tenant_id": "test-tenant"}}))
                }),
            )
            .route(
                "/v1/terminals/{tid}/heartbeat",
                post(|| async {
                    axum::Json(json!({"success": true, "data": {
                        "server_time": "2026-11-21T10:00:00Z", "session_status": "active"}}))
                }),
            )
            .route(
                "/v1/sessions/{id}",
                get(|headers: axum::http::HeaderMap| async move {
                    // Provisioning's check (organisation key) sees the
                    // session and its terminal; the agent's own signed
                    // polls get nothing, as from the fallback.
                    if headers.contains_key("x-signature") {
                        return axum::Json(json!({"success": true, "data": null}));
                    }
                    axum::Json(json!({"success": true, "data": {
                        "session_id": "sess_1", "external_event_id": "e", "name": "Fest",
                        "currency": "NGN", "status": "active",
                        "created_at": "2026-11-21T09:00:00Z",
                        "pos_terminals": [{"terminal_id": "pos_abc123_001",
                                           "label": "POS 1", "status": "offline"}]}}))
                }),
            )
            .route(
                "/v1/terminals/{tid}/commands/stream",
                get(
                    |State(acks): State<mpsc::UnboundedSender<(String, Value)>>,
                     headers: axum::http::HeaderMap| async move {
                        // Every connection is recorded with its Last-Event-ID,
                        // and gets the same three events whatever it says (a
                        // backend that replays).
                        let last = headers
                            .get("last-event-id")
                            .and_then(|v| v.to_str().ok())
                            .map(|v| Value::from(v.to_string()))
                            .unwrap_or(Value::Null);
                        let _ = acks.send((STREAM.to_string(), last));
                        let events = [
                            format!("id: 1\nevent: command\ndata: {MALFORMED}\n\n"),
                            format!("id: 2\nevent: command\ndata: {SALE}\n\n"),
                            format!("id: 3\nevent: command\ndata: {ABORT_OTHER}\n\n"),
                        ];
                        let stream = futures_util::stream::iter(
                            events
                                .into_iter()
                                .map(|e| Ok::<_, std::convert::Infallible>(Bytes::from(e))),
                        )
                        .chain(futures_util::stream::pending());
                        axum::response::Response::builder()
                            .header("content-type", "text/event-stream")
                            .body(Body::from_stream(stream))
                            .unwrap()
                    },
                ),
            )
            .route(
                "/v1/terminals/{tid}/commands/{cid}/ack",
                post(
                    |State(acks): State<mpsc::UnboundedSender<(String, Value)>>,
                     Path((_tid, cid)): Path<(String, String)>,
                     axum::Json(body): axum::Json<Value>| async move {
                        let _ = acks.send((cid, body));
                        axum::Json(json!({"success": true, "data": null}))
                    },
                ),
            )
            .fallback(any(|| async {
                axum::Json(json!({"success": true, "data": null}))
            }))
            .with_state(acks);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_command_is_rejected_and_the_agent_keeps_running() {
    init_logs();
    let (acks_tx, mut acks) = tokio::sync::mpsc::unbounded_channel();
    let backend = fake_backend::start(acks_tx).await;
    let dir = tempfile::tempdir().unwrap();
    let config_path = write_config(
        dir.path(),
        &format!("http://{backend}"),
        "pos_abc123_001",
        "sess_1",
    );
    let config = load_config(&config_path);
    pos_agent::provision::provision(&config, Secret::new(ORG_KEY.to_string()), false)
        .await
        .unwrap();
    let agent = RunningAgent::start(config).await.unwrap();

    // The malformed command is rejected as invalid_request...
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !(seen.iter().any(|(c, _): &(String, Value)| c == "cmd_bad")
        && seen.iter().any(|(c, _)| c == "cmd_ok"))
    {
        match tokio::time::timeout_at(deadline, acks.recv()).await {
            Ok(Some(a)) => seen.push(a),
            _ => panic!("acks not received; got {seen:?}"),
        }
    }
    let bad = &seen.iter().find(|(c, _)| c == "cmd_bad").unwrap().1;
    assert_eq!(
        bad,
        &json!({"status": "rejected", "reason": "invalid_request"})
    );
    // ...and the next, valid command still starts a payment.
    let ok = &seen.iter().find(|(c, _)| c == "cmd_ok").unwrap().1;
    assert_eq!(ok, &json!({"status": "accepted"}));
    let s = wait_screen(&agent, "tap card", |s| s.screen == ui::ScreenName::TapCard).await;
    assert_eq!(s.amount.map(|a| a.to_wire()), Some("750.00".to_string()));
    let shown = screen_json(&reqwest::Client::new(), agent.control_addr().unwrap()).await;
    assert_eq!(shown["screen"], "tap_card");
    // The last id acted on is stored once each command's effects are
    // committed.
    eventually("the last event id to be stored", || async {
        let last = agent
            .store()
            .kv_get(pos_agent::sync::commands::KV_LAST_EVENT_ID.into())
            .await
            .unwrap();
        (last.as_deref() == Some("3")).then_some(())
    })
    .await;
    agent.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sale_read_by_the_pn532_reader_over_a_serial_line() {
    let env = Env::new().await;
    let emulator = hal::pn532::emulator::Pn532Emulator::start().unwrap();
    let mut config = env.config();
    config.hal.reader = format!("pn532:{}", emulator.path()).parse().unwrap();
    let agent = env.start_agent_with(config).await;
    let pid = env.create_payment("2500.00", "POS-NFC").await;
    wait_screen(&agent, "tap card", |s| s.screen == ui::ScreenName::TapCard).await;
    timeout(DEADLINE, emulator.until_polling())
        .await
        .expect("the reader never polled for a card");
    emulator.tap(hal::pn532::emulator::EmulatedCard::named("mc_ok").unwrap());
    wait_screen(&agent, "approved", |s| s.screen == ui::ScreenName::Approved).await;
    let p = env.wait_payment_status(&pid, "approved").await;
    assert_eq!(p["transaction"]["card"]["last4"], "4444");
    assert_eq!(p["transaction"]["card"]["brand"], "mastercard");
    let txs = all_transactions(agent.store()).await;
    assert_eq!(
        txs[0].card.as_ref().unwrap().brand(),
        store::CardBrand::Mastercard
    );
    agent.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_card_is_declined_on_screen_and_for_the_partner() {
    let env = Env::new().await;
    let agent = env.start_agent().await;
    let pid = env.create_payment("900.00", "POS-D").await;
    tap(&env.http, &agent, "visa_insufficient").await;
    let s = wait_screen(&agent, "declined", |s| s.screen == ui::ScreenName::Declined).await;
    assert_eq!(s.message.as_deref(), Some("Insufficient funds"));
    let p = env.wait_payment_status(&pid, "declined").await;
    assert_eq!(p["transaction"]["decline_reason"], "insufficient_funds");
    let txs = all_transactions(agent.store()).await;
    assert_eq!(txs[0].state, store::TxState::Declined);
    agent.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorization_without_answer_is_approved_offline_under_the_same_reference() {
    let env = Env::new().await;
    let agent = env.start_agent().await;
    let (status, body) = env
        .org(
            reqwest::Method::POST,
            "/v1/sandbox/scenarios",
            Some(json!({"terminal_id": env.terminal, "scenario": "auth_timeout", "count": 1})),
        )
        .await;
    assert!((200..300).contains(&status), "{status} {body}");
    let pid = env.create_payment("1200.00", "POS-T").await;
    tap(&env.http, &agent, "visa_ok").await;
    let s = wait_screen(&agent, "approved", |s| s.screen == ui::ScreenName::Approved).await;
    assert_eq!(s.amount.map(|a| a.to_wire()), Some("1200.00".to_string()));
    let reference = all_transactions(agent.store()).await[0].reference.clone();
    // The forward under the same reference returns what the backend
    // recorded for the slow authorization: one approved transaction.
    let tx = eventually("the forward to be confirmed", || async {
        let tx = agent
            .store()
            .transaction(reference.clone())
            .await
            .unwrap()
            .unwrap();
        (tx.state == store::TxState::Approved).then_some(tx)
    })
    .await;
    assert_eq!(tx.decline_reason.as_deref(), Some("offline_after_unknown"));
    let p = env.wait_payment_status(&pid, "approved").await;
    assert_eq!(p["transaction"]["reference"], reference.as_str());
    let (_, statement) = env
        .org(
            reqwest::Method::GET,
            &format!("/v1/reconciliation/{}", env.session_id),
            None,
        )
        .await;
    assert_eq!(statement["data"]["successful_count"], 1, "{statement}");
    agent.shutdown().await.unwrap();
}

/// Issue 8.1 / SPEC 4.3: the authorization never reaches the backend, the
/// sale is approved offline, the session closes before the forward lands;
/// when the backend answers again the forward (`offline: true`) is recorded
/// once, the payment is approved and nothing is parked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_authorization_approved_offline_is_recorded_after_the_session_closed() {
    let env = Env::new().await;
    let agent = env.start_agent().await;
    let scenario =
        |count: u32| json!({"terminal_id": env.terminal, "scenario": "http_500", "count": count});
    // Every submission fails before anything is recorded.
    let (status, body) = env
        .org(
            reqwest::Method::POST,
            "/v1/sandbox/scenarios",
            Some(scenario(10_000)),
        )
        .await;
    assert!((200..300).contains(&status), "{status} {body}");
    let pid = env.create_payment("1800.00", "POS-L").await;
    tap(&env.http, &agent, "visa_ok").await;
    wait_screen(&agent, "approved", |s| s.screen == ui::ScreenName::Approved).await;
    let reference = all_transactions(agent.store()).await[0].reference.clone();
    let (status, body) = env
        .org(
            reqwest::Method::PATCH,
            &format!("/v1/sessions/{}/close", env.session_id),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // The backend answers again.
    let (status, body) = env
        .org(
            reqwest::Method::POST,
            "/v1/sandbox/scenarios",
            Some(scenario(0)),
        )
        .await;
    assert!((200..300).contains(&status), "{status} {body}");
    let tx = eventually("the forward to be confirmed", || async {
        let tx = agent
            .store()
            .transaction(reference.clone())
            .await
            .unwrap()
            .unwrap();
        (tx.state == store::TxState::Approved).then_some(tx)
    })
    .await;
    assert_eq!(tx.decline_reason.as_deref(), Some("offline_after_unknown"));
    let stats = agent.store().outbox_stats().await.unwrap();
    assert_eq!(stats.parked, 0, "{stats:?}");
    let p = env.wait_payment_status(&pid, "approved").await;
    assert_eq!(p["transaction"]["reference"], reference.as_str());
    assert_eq!(p["transaction"]["offline"], true, "{p}");
    let (_, statement) = env
        .org(
            reqwest::Method::GET,
            &format!("/v1/reconciliation/{}", env.session_id),
            None,
        )
        .await;
    assert_eq!(statement["data"]["successful_count"], 1, "{statement}");
    agent.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_partner_aborts_a_payment_waiting_for_the_card() {
    let env = Env::new().await;
    let agent = env.start_agent().await;
    let pid = env.create_payment("500.00", "POS-A").await;
    wait_screen(&agent, "tap card", |s| s.screen == ui::ScreenName::TapCard).await;
    let (status, body) = env
        .org(
            reqwest::Method::POST,
            &format!("/v1/payments/{pid}/abort"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "aborted");
    wait_screen(&agent, "cancelled", |s| {
        s.screen == ui::ScreenName::Cancelled
    })
    .await;
    let txs = all_transactions(agent.store()).await;
    assert_eq!(txs[0].state, store::TxState::Aborted);
    agent.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_needs_the_same_card_and_is_approved() {
    let env = Env::new().await;
    let agent = env.start_agent().await;
    let sale = env.create_payment("3000.00", "POS-S").await;
    tap(&env.http, &agent, "verve_ok").await;
    // The backend approves before the terminal has recorded it; a refund
    // sent in between would find the terminal busy.
    wait_screen(&agent, "approved", |s| s.screen == ui::ScreenName::Approved).await;
    let p = env.wait_payment_status(&sale, "approved").await;
    let transaction_id = p["transaction"]["transaction_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = env
        .org(
            reqwest::Method::POST,
            &format!("/v1/refunds?transactionId={transaction_id}"),
            Some(json!({"amount": "1000.00"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let refund = body["data"]["payment_id"].as_str().unwrap().to_string();
    let s = wait_screen(&agent, "refund tap", |s| {
        s.screen == ui::ScreenName::RefundTap
    })
    .await;
    assert_eq!(s.amount.map(|a| a.to_wire()), Some("1000.00".to_string()));
    tap(&env.http, &agent, "verve_ok").await;
    env.wait_payment_status(&refund, "approved").await;
    // The backend answers before the terminal commits; the terminal's own
    // result screen follows its commit.
    wait_screen(&agent, "refund approved", |s| {
        s.screen == ui::ScreenName::Approved
    })
    .await;
    let txs = all_transactions(agent.store()).await;
    let r = txs
        .iter()
        .find(|t| t.kind == store::TxKind::Refund)
        .expect("refund recorded");
    assert_eq!(r.state, store::TxState::Approved);
    assert_eq!(r.original_reference.as_ref(), Some(&txs[0].reference));
    assert_eq!(
        agent
            .store()
            .refundable(txs[0].reference.clone())
            .await
            .unwrap(),
        proto::Money::parse("2000.00").unwrap()
    );
    agent.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_session_shows_the_end_of_day_screen() {
    let env = Env::new().await;
    let agent = env.start_agent().await;
    let pid = env.create_payment("700.00", "POS-C").await;
    tap(&env.http, &agent, "visa_ok").await;
    wait_screen(&agent, "approved", |s| s.screen == ui::ScreenName::Approved).await;
    env.wait_payment_status(&pid, "approved").await;
    let (status, body) = env
        .org(
            reqwest::Method::PATCH,
            &format!("/v1/sessions/{}/close", env.session_id),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    wait_screen(&agent, "session closed", |s| {
        s.screen == ui::ScreenName::SessionClosed
    })
    .await;
    // No new sales: the backend refuses them for a closed session, and the
    // terminal stays on the end-of-day screen.
    agent.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_online_with_a_lost_answer_is_declined_and_reversed() {
    let env = Env::new().await;
    let agent = env.start_agent().await;
    let (status, body) = env
        .org(
            reqwest::Method::POST,
            "/v1/sandbox/scenarios",
            Some(json!({"terminal_id": env.terminal, "scenario": "drop_after_commit", "count": 1})),
        )
        .await;
    assert!((200..300).contains(&status), "{status} {body}");
    let pid = env
        .create_payment_with("800.00", "POS-RO", "require_online")
        .await;
    tap(&env.http, &agent, "visa_ok").await;
    let s = wait_screen(&agent, "declined", |s| s.screen == ui::ScreenName::Declined).await;
    assert_eq!(s.message.as_deref(), Some("Network problem, no charge"));
    let reference = all_transactions(agent.store()).await[0].reference.clone();
    // The backend recorded the authorization before the connection was
    // cut; the queued reversal cancels it, and the ledger says so.
    let tx = eventually("the reversal to be acknowledged", || async {
        let tx = agent
            .store()
            .transaction(reference.clone())
            .await
            .unwrap()
            .unwrap();
        (tx.state == store::TxState::Reversed).then_some(tx)
    })
    .await;
    assert_eq!(tx.decline_reason.as_deref(), Some("reverse_after_unknown"));
    let (_, record) = env
        .org(
            reqwest::Method::GET,
            &format!("/v1/reconciliation/{}", env.session_id),
            None,
        )
        .await;
    assert_eq!(record["data"]["successful_count"], 0, "{record}");
    assert_ne!(env.payment(&pid).await["status"], "approved");
    agent.shutdown().await.unwrap();
}

/// Issue 8.2 / SPEC 5.6: what the heartbeat set is kept across restarts.
/// The agent learns a tightened floor limit, stops, and boots again with
/// the backend gone: the core starts with the heartbeat's limits, not the
/// configured ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_offline_limits_survive_a_restart_while_offline() {
    let floor = proto::Money::parse("100.00").unwrap();
    let mut env = Env::with_sim(|c| {
        c.offline_limits = Some(proto::wire::OfflineLimits {
            floor_limit: Some(floor),
            max_count: Some(3),
            ..Default::default()
        });
    })
    .await;
    let agent = env.start_agent().await;
    assert_eq!(agent.booted_heartbeat_limits(), None);
    eventually("the heartbeat's limits to be stored", || async {
        agent
            .store()
            .kv_get(pos_agent::sync::KV_HEARTBEAT_LIMITS.to_string())
            .await
            .unwrap()
    })
    .await;
    agent.shutdown().await.unwrap();
    env.stop_sim().await;
    // Booted with the backend unreachable.
    let agent = RunningAgent::start(env.config()).await.unwrap();
    wait_screen(&agent, "idle, offline", |s| {
        s.screen == ui::ScreenName::Idle && s.offline
    })
    .await;
    let limits = agent.booted_heartbeat_limits().expect("limits restored");
    let configured = env.config().offline;
    assert_eq!(limits.floor_limit, floor);
    assert_eq!(limits.max_count, 3);
    // What the backend left out keeps the configured value.
    assert_eq!(limits.max_total, configured.max_total);
    assert_ne!(
        configured.floor_limit, floor,
        "the test needs a tighter limit"
    );
    agent.shutdown().await.unwrap();
}

/// Issue 8.2 / SPEC 7.6: the session configuration the backend sent is kept
/// in the ledger and in force again after a restart with the backend gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_configuration_survives_a_restart_while_offline() {
    let mut env = Env::new().await;
    let (status, body) = env
        .org(
            reqwest::Method::PUT,
            &format!("/v1/sessions/{}/config", env.session_id),
            Some(
                json!({"tips": {"enabled": true, "percentages": [5, 10]}, "receipt_print": "off"}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let agent = env.start_agent().await;
    let mut config = agent.subscribe_session_config();
    let kept = config
        .wait_for(|c| c.as_ref().is_some_and(|c| c.version == 1))
        .await
        .unwrap()
        .clone()
        .unwrap();
    assert_eq!(kept.settings.tips.percentages, [5, 10]);
    // A new version reaches the agent with the next heartbeat.
    let (status, body) = env
        .org(
            reqwest::Method::PUT,
            &format!("/v1/sessions/{}/config", env.session_id),
            Some(
                json!({"tips": {"enabled": true, "percentages": [10, 15]}, "logout_after_s": 120}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    config
        .wait_for(|c| c.as_ref().is_some_and(|c| c.version == 2))
        .await
        .unwrap();
    drop(config);
    agent.shutdown().await.unwrap();
    env.stop_sim().await;
    // Booted with the backend unreachable: version 2 is in force at once.
    let agent = RunningAgent::start(env.config()).await.unwrap();
    let restored = agent.session_config().expect("configuration restored");
    assert_eq!(restored.version, 2);
    assert_eq!(restored.settings.tips.percentages, [10, 15]);
    assert_eq!(restored.settings.logout_after_s, Some(120));
    wait_screen(&agent, "idle, offline", |s| {
        s.screen == ui::ScreenName::Idle && s.offline
    })
    .await;
    assert_eq!(agent.session_config().map(|c| c.version), Some(2));
    agent.shutdown().await.unwrap();
}

/// Issue 8.4 / SPEC 3: a terminal whose clock is 15 minutes off is
/// refused with `timestamp_out_of_window` once, takes the backend's time
/// from the answer's `Date`, and goes on: sales approved online, nothing
/// parked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_fifteen_minutes_off_still_sells_online_and_parks_nothing() {
    let env = Env::new().await;
    let clock = pos_agent::runtime::Clock::new().with_wall_offset_ms(-15 * 60 * 1000);
    let agent = RunningAgent::start_on(env.config(), clock).await.unwrap();
    wait_screen(&agent, "idle and online", |s| {
        s.screen == ui::ScreenName::Idle && !s.offline
    })
    .await;
    for (n, amount) in ["1500.00", "250.50"].into_iter().enumerate() {
        let pid = env.create_payment(amount, &format!("POS-S{n}")).await;
        tap(&env.http, &agent, "visa_ok").await;
        wait_screen(&agent, "approved", |s| s.screen == ui::ScreenName::Approved).await;
        env.wait_payment_status(&pid, "approved").await;
    }
    // Decided online at the tap; approved by the backend (a slow answer on
    // a loaded machine may go through the offline fallback, then the
    // forward: still approved by the backend, never parked).
    let txs = eventually("both sales approved by the backend", || async {
        let txs = all_transactions(agent.store()).await;
        (txs.len() == 2 && txs.iter().all(|t| t.state == store::TxState::Approved)).then_some(txs)
    })
    .await;
    for tx in &txs {
        let d = tx.decision.as_ref().unwrap();
        assert_eq!(d.mode, store::DecisionMode::Online, "{tx:?}");
    }
    let stats = agent.store().outbox_stats().await.unwrap();
    assert_eq!(stats.parked, 0, "{stats:?}");
    agent.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_limits_from_the_heartbeat_refuse_a_sale_above_them() {
    let mut env = Env::with_sim(|c| {
        c.offline_limits = Some(proto::wire::OfflineLimits {
            floor_limit: Some(proto::Money::parse("100.00").unwrap()),
            ..Default::default()
        });
    })
    .await;
    let agent = env.start_agent().await;
    let pid = env.create_payment("500.00", "POS-L").await;
    wait_screen(&agent, "tap card", |s| s.screen == ui::ScreenName::TapCard).await;
    // Heartbeat answers carry the limits. The agent sends a heartbeat only
    // after it handled the previous answer, and after the stream opened the
    // sim moves `last_seen_at` only on heartbeats: two moves mean at least
    // one answer with the limits reached the core.
    let last_seen = || async {
        let (_, t) = env
            .org(
                reqwest::Method::GET,
                &format!("/v1/terminals?session_id={}", env.session_id),
                None,
            )
            .await;
        t["data"]["content"][0]["last_seen_at"].clone()
    };
    let mut seen = vec![last_seen().await];
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while seen.len() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no heartbeats: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = last_seen().await;
        if seen.last() != Some(&now) {
            seen.push(now);
        }
    }
    env.stop_sim().await;
    wait_screen(&agent, "offline", |s| s.offline).await;
    tap(&env.http, &agent, "visa_ok").await;
    let s = wait_screen(&agent, "declined", |s| s.screen == ui::ScreenName::Declined).await;
    assert!(
        s.message.as_deref().unwrap_or("").contains("NGN 100.00"),
        "{s:?}"
    );
    let txs = all_transactions(agent.store()).await;
    assert_eq!(txs[0].state, store::TxState::Declined);
    assert_eq!(
        txs[0].decision.as_ref().map(|d| d.reason.as_str()),
        Some("offline_floor_limit")
    );
    // Nothing to forward for a refused sale: only its events are queued.
    let queued = agent.store().list_outbox().await.unwrap();
    assert!(
        queued
            .iter()
            .all(|i| i.kind != store::OutboxKind::Transaction),
        "{queued:?}"
    );
    let _ = pid;
    agent.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_interrupted_by_a_crash_are_closed_at_boot() {
    let env = Env::new().await;
    let tid = proto::TerminalId::new(env.terminal.clone()).unwrap();
    let waiting = proto::Reference::for_sequence(&tid, 1);
    let authorizing = proto::Reference::for_sequence(&tid, 2);
    {
        // What a crash leaves: one sale waiting for its card, one whose
        // authorization may have gone out.
        let store = store::AsyncStore::open(env.config().ledger_path(), Default::default())
            .await
            .unwrap();
        for (r, state) in [
            (&waiting, store::TxState::Pending),
            (&authorizing, store::TxState::Authorizing),
        ] {
            store
                .record(store::Change::insert(
                    1_763_719_200_000,
                    store::NewTransaction {
                        state,
                        // The card is recorded with the move to authorizing.
                        card: (state == store::TxState::Authorizing).then(|| {
                            store::Card::new(
                                "9f2c4e1a0b7d3e6f8a1c2b4d6e8f0a1b",
                                "1111",
                                store::CardBrand::Visa,
                                store::EntryMode::Contactless,
                            )
                            .unwrap()
                        }),
                        ..store::NewTransaction::sale(
                            r.clone(),
                            proto::Money::parse("100.00").unwrap(),
                        )
                    },
                ))
                .await
                .unwrap();
        }
        store.next_sequence(1).await.unwrap();
        store.next_sequence(2).await.unwrap();
    }
    let agent = env.start_agent().await;
    let state = |r: proto::Reference| {
        let store = agent.store().clone();
        async move { store.transaction(r).await.unwrap().unwrap().state }
    };
    // Nobody was told either was approved: the first just failed; the
    // second gets a reversal, which the backend acknowledges.
    eventually("the waiting sale to fail", || async {
        (state(waiting.clone()).await == store::TxState::Failed).then_some(())
    })
    .await;
    eventually("the interrupted authorization to be reversed", || async {
        (state(authorizing.clone()).await == store::TxState::Reversed).then_some(())
    })
    .await;
    // The next sale gets a fresh reference from the durable counter.
    let pid = env.create_payment("250.00", "POS-AFTER").await;
    tap(&env.http, &agent, "visa_ok").await;
    env.wait_payment_status(&pid, "approved").await;
    let txs = all_transactions(agent.store()).await;
    let new = txs
        .iter()
        .find(|t| t.payment_id.as_ref().map(|p| p.as_str()) == Some(pid.as_str()))
        .unwrap();
    assert_eq!(new.reference, proto::Reference::for_sequence(&tid, 3));
    agent.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_sale_after_a_restart_does_not_start_a_second_payment() {
    init_logs();
    let (acks_tx, mut acks) = tokio::sync::mpsc::unbounded_channel();
    let backend = fake_backend::start(acks_tx).await;
    let dir = tempfile::tempdir().unwrap();
    let config_path = write_config(
        dir.path(),
        &format!("http://{backend}"),
        "pos_abc123_001",
        "sess_1",
    );
    let config = load_config(&config_path);
    pos_agent::provision::provision(&config, Secret::new(ORG_KEY.to_string()), false)
        .await
        .unwrap();
    // Waits until `n` acks of `cid` arrived; returns every message seen.
    async fn until_acks(
        rx: &mut tokio::sync::mpsc::UnboundedReceiver<(String, Value)>,
        seen: &mut Vec<(String, Value)>,
        cid: &str,
        n: usize,
    ) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while seen.iter().filter(|(c, _)| c == cid).count() < n {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(m)) => seen.push(m),
                _ => panic!("{n} acks of {cid} not received; got {seen:?}"),
            }
        }
    }
    let mut seen = Vec::new();

    let agent = RunningAgent::start(config.clone()).await.unwrap();
    wait_screen(&agent, "tap card", |s| s.screen == ui::ScreenName::TapCard).await;
    until_acks(&mut acks, &mut seen, "cmd_abort", 1).await;
    // Stopping cancels the payment still waiting for its card.
    agent.shutdown().await.unwrap();

    let agent = RunningAgent::start(config).await.unwrap();
    // The replaying backend sends all three again; the abort after the sale
    // being answered means the sale was handled (and dropped) first.
    until_acks(&mut acks, &mut seen, "cmd_abort", 2).await;
    let streams: Vec<&Value> = seen
        .iter()
        .filter(|(c, _)| c == fake_backend::STREAM)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(streams.first(), Some(&&Value::Null), "{streams:?}");
    assert_eq!(streams.last(), Some(&&json!("3")), "{streams:?}");
    let txs = all_transactions(agent.store()).await;
    assert_eq!(txs.len(), 1, "{txs:?}");
    assert_eq!(txs[0].state, store::TxState::Aborted);
    assert_eq!(
        agent
            .device()
            .unwrap()
            .screen_state()
            .parse::<ui::ScreenState>()
            .unwrap()
            .screen,
        ui::ScreenName::Idle
    );
    // The sale was accepted exactly once.
    assert_eq!(
        seen.iter()
            .filter(|(c, v)| c == "cmd_ok" && v["status"] == "accepted")
            .count(),
        1,
        "{seen:?}"
    );
    agent.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sales_keep_flowing_while_the_server_rotates_the_stream() {
    // Streams end after 50 ms: every command below arrives on a stream the
    // agent reopened with its Last-Event-ID.
    let env = Env::with_sim(|c| c.stream_max = Duration::from_millis(50)).await;
    let agent = env.start_agent().await;
    for (i, card) in ["visa_ok", "mc_ok", "verve_ok"].into_iter().enumerate() {
        let pid = env
            .create_payment(&format!("{}.00", 100 + i), &format!("POS-ROT-{i}"))
            .await;
        wait_screen(&agent, "tap card", |s| s.screen == ui::ScreenName::TapCard).await;
        tap(&env.http, &agent, card).await;
        wait_screen(&agent, "approved", |s| s.screen == ui::ScreenName::Approved).await;
        env.wait_payment_status(&pid, "approved").await;
    }
    let txs = all_transactions(agent.store()).await;
    assert_eq!(txs.len(), 3, "{txs:?}");
    assert!(txs.iter().all(|t| t.state == store::TxState::Approved));
    let last = agent
        .store()
        .kv_get(pos_agent::sync::commands::KV_LAST_EVENT_ID.into())
        .await
        .unwrap();
    assert_eq!(last.as_deref(), Some("3"));
    agent.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_restores_and_drains_a_queue_larger_than_one_batch() {
    use proto::wire;
    const QUEUED: u64 = 20;
    let env = Env::new().await;
    let tid = proto::TerminalId::new(env.terminal.clone()).unwrap();
    let now = wire::Timestamp::now();
    let now_ms = now.unix() * 1000;
    let amount = proto::Money::parse("100.00").unwrap();
    let card = |n: u64| {
        store::Card::new(
            format!("{n:064x}"),
            "1111",
            store::CardBrand::Visa,
            store::EntryMode::Contactless,
        )
        .unwrap()
    };
    {
        // What a long outage leaves: settled sales and offline-approved ones
        // whose forwards wait in the outbox.
        let store = store::AsyncStore::open(env.config().ledger_path(), Default::default())
            .await
            .unwrap();
        for n in 1..=QUEUED + 5 {
            let seq = store.next_sequence(now_ms).await.unwrap();
            let reference = proto::Reference::for_sequence(&tid, seq);
            let queued = n <= QUEUED;
            let mut tx = store::NewTransaction::sale(reference.clone(), amount);
            tx.state = if queued {
                store::TxState::OfflineApproved
            } else {
                store::TxState::Approved
            };
            tx.card = Some(card(n));
            tx.captured_at = Some(now_ms);
            tx.decision = Some(
                store::Decision::new(
                    if queued {
                        store::DecisionMode::Offline
                    } else {
                        store::DecisionMode::Online
                    },
                    "restart test",
                )
                .unwrap(),
            );
            let mut change = store::Change::insert(now_ms, tx);
            if queued {
                let sub = wire::TransactionSubmission {
                    reference: reference.clone(),
                    payment_id: None,
                    kind: wire::TxKind::Sale,
                    amount,
                    currency: proto::Currency::Ngn,
                    card: wire::Card {
                        token: wire::CardToken::new(format!("{n:064x}")).unwrap(),
                        last4: wire::Last4::new("1111").unwrap(),
                        brand: wire::CardBrand::Visa,
                        entry_mode: wire::EntryMode::Contactless,
                    },
                    operator_id: None,
                    captured_at: now,
                    offline: true,
                    original_reference: None,
                    tip_amount: None,
                    items: None,
                };
                let payload = serde_json::to_value(
                    pos_agent::runtime::mapping::OutboxPayload::Transaction(sub),
                )
                .unwrap();
                change = change.with(
                    store::NewOutboxItem::new(store::OutboxKind::Transaction, payload)
                        .for_reference(reference),
                );
            }
            store.record(change).await.unwrap();
        }
    }
    let agent = env.start_agent().await;
    // Every forward is confirmed, in batches, and the queue empties.
    let txs = eventually("every queued sale to be confirmed", || async {
        let txs = all_transactions(agent.store()).await;
        txs.iter()
            .all(|t| t.state == store::TxState::Approved)
            .then_some(txs)
    })
    .await;
    assert_eq!(txs.len() as u64, QUEUED + 5);
    let confirmed = txs
        .iter()
        .filter(|t| t.backend_transaction_id.is_some())
        .count();
    assert_eq!(confirmed as u64, QUEUED, "the forwards got backend ids");
    wait_outbox_empty(&agent).await;
    assert_eq!(
        agent.store().offline_exposure(now_ms).await.unwrap().count,
        0
    );
    wait_screen(&agent, "nothing queued", |s| s.queued == 0).await;
    agent.shutdown().await.unwrap();
}

/// `GET /metrics` and the heartbeat's summary after payments.
mod metrics;
