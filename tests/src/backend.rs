//! The backend side: `kler-sim` started in-process, and the organisation /
//! partner API driven over HTTP exactly as an integrator would.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use proto::signing::Credentials;
use proto::wire::{
    Collection, CreatePayment, CreateRefund, CreateSession, Envelope, OfflinePolicy, Payment,
    PaymentMetadata, Reconciliation, Scenario, Session, SetScenario, StatementPage, TerminalInfo,
    TerminalStatus, TransactionRecord,
};
use proto::{Currency, Money, PaymentId, SessionId, TerminalId};
use reqwest::{Method, RequestBuilder};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{HarnessError, Result};
use crate::wait::Deadline;

/// The organisation key every harness simulator uses.
pub const ORG_KEY: &str = "demo-org-key";

/// Timings of the simulator, short so that tests and the demo run fast.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// How long an `auth_timeout` scenario holds its answer.
    pub auth_timeout: Duration,
    pub webhook_retry_base: Duration,
    /// A terminal with no stream and no heartbeat for this long is offline.
    pub offline_after: Duration,
    pub ping_interval: Duration,
    pub stream_max: Duration,
    /// How long `POST /v1/payments/:id/abort` waits for the terminal.
    pub abort_wait: Duration,
    /// `--max-inflight`: load shedding beyond this many requests.
    pub max_inflight: Option<usize>,
    /// `--state`: the SQLite file that keeps the sim's state across
    /// [`Backend::restart`].
    pub state_file: Option<PathBuf>,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            auth_timeout: Duration::from_millis(3_000),
            webhook_retry_base: Duration::from_millis(50),
            offline_after: Duration::from_secs(30),
            ping_interval: Duration::from_secs(5),
            stream_max: Duration::from_secs(300),
            abort_wait: Duration::from_secs(15),
            max_inflight: None,
            state_file: None,
        }
    }
}

/// How an abort request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AbortOutcome {
    /// 200: the terminal confirmed the abort.
    Aborted(Box<Payment>),
    /// 409 `abort_too_late`: the card was already read.
    TooLate,
    /// Any other answer (status, code).
    Other(u16, String),
}

/// A running simulator plus an HTTP client holding the organisation key.
pub struct Backend {
    sim: Option<kler_sim::RunningSim>,
    addr: SocketAddr,
    http: reqwest::Client,
    /// What the sim was started with (a restart reuses it on `addr`).
    cfg: kler_sim::Config,
}

impl Backend {
    /// Starts kler-sim in-process on `127.0.0.1:0`.
    pub async fn start(opts: SimOptions) -> Result<Backend> {
        let mut cfg = kler_sim::Config::new("127.0.0.1:0", ORG_KEY);
        cfg.auth_timeout = opts.auth_timeout;
        cfg.webhook_retry_base = opts.webhook_retry_base;
        cfg.offline_after = opts.offline_after;
        cfg.ping_interval = opts.ping_interval;
        cfg.stream_max = opts.stream_max;
        cfg.abort_wait = opts.abort_wait;
        cfg.max_inflight = opts.max_inflight;
        cfg.state_file = opts.state_file;
        let sim = kler_sim::start(cfg.clone())
            .await
            .map_err(|e| HarnessError::Sim(e.to_string()))?;
        // A restart signs webhooks as before and listens where the
        // terminals' proxies point.
        cfg.listen = sim.addr().to_string();
        cfg.webhook_key_id = Some(sim.webhook_key_id().to_owned());
        cfg.webhook_secret = Some(sim.webhook_secret().expose().to_owned());
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|source| HarnessError::Http {
                what: "building the client".into(),
                source,
            })?;
        Ok(Backend {
            addr: sim.addr(),
            sim: Some(sim),
            http,
            cfg,
        })
    }

    /// Stops the simulator (open streams end, requests in flight finish)
    /// and starts it again on the same address and options: with a
    /// `state_file` it comes back with everything it had recorded.
    pub async fn restart(&mut self) -> Result<()> {
        if let Some(sim) = self.sim.take() {
            sim.shutdown().await;
        }
        let sim = kler_sim::start(self.cfg.clone())
            .await
            .map_err(|e| HarnessError::Sim(format!("restarting on {}: {e}", self.addr)))?;
        self.sim = Some(sim);
        Ok(())
    }

    /// The running simulator (its load statistics, webhook credentials).
    pub fn sim(&self) -> Option<&kler_sim::RunningSim> {
        self.sim.as_ref()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Stops the simulator.
    pub async fn shutdown(mut self) {
        if let Some(sim) = self.sim.take() {
            sim.shutdown().await;
        }
    }

    fn org(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url()))
            .header("x-api-key", ORG_KEY)
    }

    /// Sends `rb`, decodes the Kler envelope.
    async fn call<T: DeserializeOwned>(&self, what: &str, rb: RequestBuilder) -> Result<T> {
        send_enveloped(what, rb).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        what: &str,
        path: &str,
        body: &B,
        idempotency_key: Option<&str>,
    ) -> Result<T> {
        let mut rb = self.org(Method::POST, path).json(body);
        if let Some(k) = idempotency_key {
            rb = rb.header("Idempotency-Key", k);
        }
        self.call(what, rb).await
    }

    /// `POST /v1/sessions/:id/terminals/:terminal_id/pair`: the organiser
    /// claims a device's pairing code for one of the session's terminals
    /// (SPEC 8.1).
    pub async fn claim(
        &self,
        session: &SessionId,
        terminal: &TerminalId,
        code: &str,
    ) -> Result<proto::wire::PairingClaimed> {
        self.post(
            "claim pairing code",
            &format!("/v1/sessions/{session}/terminals/{terminal}/pair"),
            &serde_json::json!({ "pairing_code": code }),
            None,
        )
        .await
    }

    /// `POST /v1/sessions` with `pos_count` POS terminals.
    pub async fn create_session(&self, name: &str, pos_count: u32) -> Result<Session> {
        let body = CreateSession {
            external_event_id: format!("evt-{}", uuid::Uuid::new_v4().simple()),
            name: name.to_owned(),
            currency: Currency::Ngn,
            starts_at: None,
            ends_at: None,
            // Every session has its collection account (SPEC 7.7): card
            // flows do not use it, the transfer ones do.
            collection: Collection {
                account: true,
                pos: true,
                pos_count,
            },
            webhook_url: None,
            metadata: None,
        };
        self.post("create session", "/v1/sessions", &body, None)
            .await
    }

    pub async fn session(&self, id: &SessionId) -> Result<Session> {
        self.call(
            "get session",
            self.org(Method::GET, &format!("/v1/sessions/{id}")),
        )
        .await
    }

    /// `PATCH /v1/sessions/:id/close`.
    pub async fn close_session(&self, id: &SessionId) -> Result<Session> {
        self.call(
            "close session",
            self.org(Method::PATCH, &format!("/v1/sessions/{id}/close")),
        )
        .await
    }

    /// `GET /v1/terminals?session_id=`.
    pub async fn terminals(&self, session: &SessionId) -> Result<Vec<TerminalInfo>> {
        let page: proto::wire::Page<TerminalInfo> = self
            .call(
                "list terminals",
                self.org(
                    Method::GET,
                    &format!("/v1/terminals?session_id={session}&page=0&size=100"),
                ),
            )
            .await?;
        Ok(page.content)
    }

    /// Waits until the backend lists `terminal` with `status`.
    pub async fn wait_terminal_status(
        &self,
        session: &SessionId,
        terminal: &TerminalId,
        status: TerminalStatus,
        timeout: Duration,
    ) -> Result<TerminalInfo> {
        let deadline = Deadline::after(timeout);
        loop {
            let list = self.terminals(session).await?;
            let me = list.into_iter().find(|t| &t.terminal_id == terminal);
            match me {
                Some(t) if t.status == status => return Ok(t),
                other => {
                    deadline
                        .tick(
                            &format!("terminal {terminal} to be {status} at the backend"),
                            || format!("{other:?}"),
                        )
                        .await?
                }
            }
        }
    }

    /// `POST /v1/payments` with `Idempotency-Key: key`.
    pub async fn create_payment(
        &self,
        terminal: &TerminalId,
        amount: Money,
        partner_reference: &str,
        policy: Option<OfflinePolicy>,
        key: &str,
    ) -> Result<Payment> {
        let body = CreatePayment {
            terminal_id: terminal.clone(),
            amount,
            currency: Currency::Ngn,
            reference: partner_reference.to_owned(),
            metadata: Some(PaymentMetadata {
                store_id: Some("store-1".into()),
                pos_payment_id: Some(partner_reference.to_owned()),
                pos_merchant_id: Some("merchant-1".into()),
            }),
            offline_policy: policy,
            expires_at: None,
        };
        self.post("create payment", "/v1/payments", &body, Some(key))
            .await
    }

    /// Like [`Backend::create_payment`], but while the backend answers 409
    /// `terminal_busy` (its view of the terminal lags by up to one
    /// heartbeat after a payment) it tries again, up to `timeout`.
    pub async fn create_payment_when_free(
        &self,
        terminal: &TerminalId,
        amount: Money,
        partner_reference: &str,
        policy: Option<OfflinePolicy>,
        key: &str,
        timeout: Duration,
    ) -> Result<Payment> {
        let deadline = Deadline::after(timeout);
        loop {
            match self
                .create_payment(terminal, amount, partner_reference, policy, key)
                .await
            {
                Err(e) if e.api_code() == Some(proto::wire::codes::TERMINAL_BUSY) => {
                    deadline
                        .tick(&format!("terminal {terminal} to be free"), || e.to_string())
                        .await?
                }
                other => return other,
            }
        }
    }

    /// `GET /v1/payments/:id`.
    pub async fn payment(&self, id: &PaymentId) -> Result<Payment> {
        self.call(
            "get payment",
            self.org(Method::GET, &format!("/v1/payments/{id}")),
        )
        .await
    }

    /// Polls `GET /v1/payments/:id` until `done` holds.
    pub async fn wait_payment(
        &self,
        id: &PaymentId,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Payment) -> bool,
    ) -> Result<Payment> {
        let deadline = Deadline::after(timeout);
        loop {
            let p = self.payment(id).await?;
            if done(&p) {
                return Ok(p);
            }
            deadline
                .tick(&format!("payment {id} {what}"), || {
                    format!(
                        "status {}, reason {}",
                        p.status,
                        p.reason.as_deref().unwrap_or("none")
                    )
                })
                .await?;
        }
    }

    /// Waits for a final status.
    pub async fn wait_final(&self, id: &PaymentId, timeout: Duration) -> Result<Payment> {
        self.wait_payment(id, "to reach a final status", timeout, |p| {
            p.status.is_final()
        })
        .await
    }

    /// `POST /v1/payments/:id/abort`.
    pub async fn abort(&self, id: &PaymentId) -> Result<AbortOutcome> {
        let rb = self.org(Method::POST, &format!("/v1/payments/{id}/abort"));
        match send_enveloped::<Payment>("abort payment", rb).await {
            Ok(p) => Ok(AbortOutcome::Aborted(Box::new(p))),
            Err(HarnessError::Api { status, code, .. }) => {
                if code == proto::wire::codes::ABORT_TOO_LATE {
                    Ok(AbortOutcome::TooLate)
                } else {
                    Ok(AbortOutcome::Other(status, code))
                }
            }
            Err(e) => Err(e),
        }
    }

    /// `POST /v1/refunds?transactionId=…` with `Idempotency-Key: key`.
    pub async fn refund(&self, transaction_id: &str, amount: Money, key: &str) -> Result<Payment> {
        let body = CreateRefund {
            amount,
            currency: Currency::Ngn,
        };
        self.post(
            "create refund",
            &format!("/v1/refunds?transactionId={transaction_id}"),
            &body,
            Some(key),
        )
        .await
    }

    /// Arms a sandbox scenario for the terminal's next `count` submissions.
    pub async fn set_scenario(
        &self,
        terminal: &TerminalId,
        scenario: Scenario,
        count: u32,
    ) -> Result<()> {
        let body = SetScenario {
            terminal_id: terminal.clone(),
            scenario,
            count,
        };
        let _: serde_json::Value = self
            .post("set scenario", "/v1/sandbox/scenarios", &body, None)
            .await?;
        Ok(())
    }

    /// `POST /v1/sessions/:id/operators` with a PIN (SPEC 7.2); returns
    /// the operator's id.
    pub async fn create_operator(
        &self,
        session: &SessionId,
        name: &str,
        role: &str,
        pin: &str,
    ) -> Result<String> {
        let body = serde_json::json!({"name": name, "role": role, "pin": pin});
        let op: serde_json::Value = self
            .post(
                "create operator",
                &format!("/v1/sessions/{session}/operators"),
                &body,
                None,
            )
            .await?;
        Ok(op["operator_id"].as_str().unwrap_or_default().to_owned())
    }

    /// `PUT /v1/sessions/:id/config` (SPEC 7.6).
    pub async fn put_config(&self, session: &SessionId, body: serde_json::Value) -> Result<()> {
        let rb = self
            .org(Method::PUT, &format!("/v1/sessions/{session}/config"))
            .json(&body);
        let _: serde_json::Value = self.call("put config", rb).await?;
        Ok(())
    }

    /// `PUT /v1/sessions/:id/catalog` (SPEC 7.6).
    pub async fn put_catalog(&self, session: &SessionId, body: serde_json::Value) -> Result<()> {
        let rb = self
            .org(Method::PUT, &format!("/v1/sessions/{session}/catalog"))
            .json(&body);
        let _: serde_json::Value = self.call("put catalog", rb).await?;
        Ok(())
    }

    /// `GET /v1/sessions/:id/shifts`: the Z reports the terminals sent.
    pub async fn shifts(&self, session: &SessionId) -> Result<Vec<proto::wire::ShiftRecord>> {
        self.call(
            "shifts",
            self.org(Method::GET, &format!("/v1/sessions/{session}/shifts")),
        )
        .await
    }

    /// `GET /v1/reconciliation/:session_id`.
    pub async fn reconciliation(&self, session: &SessionId) -> Result<Reconciliation> {
        self.call(
            "reconciliation",
            self.org(Method::GET, &format!("/v1/reconciliation/{session}")),
        )
        .await
    }

    /// The terminal's statement (every page), signed with its credentials.
    pub async fn statement(
        &self,
        terminal: &TerminalId,
        creds: &Credentials,
    ) -> Result<Vec<TransactionRecord>> {
        let client =
            kler_sim::client::SignedClient::new(self.http.clone(), self.url(), creds.clone());
        let mut all = Vec::new();
        let mut page = 0u32;
        loop {
            let path = format!("/v1/terminals/{terminal}/transactions?page={page}&size=100");
            let rb = client.request(Method::GET, &path, b"").map_err(|e| {
                HarnessError::Check(format!("cannot sign the statement request: {e}"))
            })?;
            let p: StatementPage = send_enveloped("terminal statement", rb).await?;
            let last = page + 1 >= p.total_pages;
            all.extend(p.content);
            if last {
                return Ok(all);
            }
            page += 1;
        }
    }

    /// One transaction as the backend knows it, signed with the terminal's
    /// credentials; `None` on 404.
    pub async fn lookup(
        &self,
        terminal: &TerminalId,
        creds: &Credentials,
        reference: &str,
    ) -> Result<Option<TransactionRecord>> {
        let client =
            kler_sim::client::SignedClient::new(self.http.clone(), self.url(), creds.clone());
        let path = format!("/v1/terminals/{terminal}/transactions/{reference}");
        let rb = client
            .request(Method::GET, &path, b"")
            .map_err(|e| HarnessError::Check(format!("cannot sign the lookup request: {e}")))?;
        match send_enveloped("transaction lookup", rb).await {
            Ok(r) => Ok(Some(r)),
            Err(HarnessError::Api { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Sends a request and decodes a Kler envelope; non-2xx or `success:false`
/// become [`HarnessError::Api`].
pub async fn send_enveloped<T: DeserializeOwned>(what: &str, rb: RequestBuilder) -> Result<T> {
    let resp = rb.send().await.map_err(|source| HarnessError::Http {
        what: what.to_owned(),
        source,
    })?;
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.map_err(|source| HarnessError::Http {
        what: what.to_owned(),
        source,
    })?;
    let env: Envelope<serde_json::Value> =
        serde_json::from_slice(&bytes).map_err(|e| HarnessError::Decode {
            what: what.to_owned(),
            problem: e.to_string(),
            body: String::from_utf8_lossy(&bytes).chars().take(500).collect(),
        })?;
    match env.into_result() {
        Ok(data) if (200..300).contains(&status) => {
            serde_json::from_value(data).map_err(|e| HarnessError::Decode {
                what: what.to_owned(),
                problem: e.to_string(),
                body: String::from_utf8_lossy(&bytes).chars().take(500).collect(),
            })
        }
        Ok(_) => Err(HarnessError::Api {
            what: what.to_owned(),
            status,
            code: "unexpected_status".into(),
            message: String::from_utf8_lossy(&bytes).chars().take(300).collect(),
        }),
        Err(e) => Err(HarnessError::Api {
            what: what.to_owned(),
            status,
            code: e.code,
            message: e.message,
        }),
    }
}

/// Counts and totals of the approved transactions in a statement.
pub fn approved_in(statement: &[TransactionRecord], kind: proto::wire::TxKind) -> (u64, u64) {
    statement
        .iter()
        .filter(|r| r.kind == kind && r.status == proto::wire::RecordStatus::Approved)
        .fold((0, 0), |(n, t), r| (n + 1, t + r.amount.minor()))
}
