//! The simulator's state and the rules that change it. Everything here is
//! synchronous and runs under one mutex; handlers collect the [`Effects`] a
//! change produced (records to persist, webhooks to send, terminals to wake)
//! and carry them out after the lock is released.

use std::collections::{BTreeMap, HashMap, HashSet};

use proto::signing::{Credentials, Secret};
use proto::wire::{
    AckReason, AckStatus, AgentState, AuthStatus, Channel, Collection, CollectionAccount, Command,
    CommandAck, CommandBody, CountTotal, CreateOperator, CreatePayment, CreateSession,
    DeclineReason, Heartbeat, Operator, Payment, PaymentEvent, PaymentEventStatus, PaymentStatus,
    PaymentTransaction, PosTerminal, Reconciliation, RecordStatus, ReversalStatus, Scenario,
    Session, SessionStatus, TerminalInfo, TerminalStatus, Timestamp, TransactionAnswer,
    TransactionRecord, TransactionSubmission, TxKind, WebhookEventType, codes,
};
use proto::{Currency, Money, PaymentId, Reference, SessionId, TerminalId, Total};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ApiErr;

/// Kinds of persisted records (the `kind` column of the state file).
pub mod kind {
    pub const SESSION: &str = "session";
    pub const TERMINAL: &str = "terminal";
    pub const OPERATOR: &str = "operator";
    pub const PAYMENT: &str = "payment";
    pub const IDEMPOTENCY: &str = "idempotency";
    pub const TRANSACTION: &str = "transaction";
    pub const COMMAND: &str = "command";
    pub const SCENARIO: &str = "scenario";
    pub const TOMBSTONE: &str = "tombstone";
}

/// A terminal's credentials as the backend keeps them (it must, to verify
/// signatures). Never logged: `Debug` of [`Secret`] hides the secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredCreds {
    pub api_key: String,
    #[serde(with = "secret_string")]
    pub secret: Secret,
    pub merchant_id: String,
    pub tenant_id: String,
}

mod secret_string {
    use proto::signing::Secret;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(s: &Secret, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(s.expose())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        Ok(Secret::new(String::deserialize(d)?))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TerminalRec {
    pub terminal_id: TerminalId,
    pub session_id: SessionId,
    pub label: String,
    #[serde(default)]
    pub creds: Option<StoredCreds>,
    #[serde(default)]
    pub last_seen_at: Option<Timestamp>,
    #[serde(default)]
    pub queue_depth: u32,
    #[serde(default)]
    pub agent_state: Option<AgentState>,
    /// Sequence of the last command queued for this terminal.
    #[serde(default)]
    pub last_seq: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommandRec {
    pub terminal_id: TerminalId,
    pub seq: u64,
    pub command: Command,
    #[serde(default)]
    pub ack: Option<CommandAck>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaymentRec {
    pub payment: Payment,
    /// The terminal said the card was already read when asked to abort.
    #[serde(default)]
    pub abort_too_late: bool,
    /// The terminal rejected the abort command.
    #[serde(default)]
    pub abort_rejected: Option<AckReason>,
    #[serde(default)]
    pub events: Vec<PaymentEvent>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdemRec {
    pub key: String,
    pub body_hash: String,
    pub payment_id: PaymentId,
    pub response: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TxRec {
    /// Arrival order, for statements.
    pub seq: u64,
    pub body_hash: String,
    pub record: TransactionRecord,
    pub answer: TransactionAnswer,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioRec {
    pub terminal_id: TerminalId,
    pub scenario: Scenario,
    pub remaining: u32,
}

/// A webhook to send once the change is persisted.
#[derive(Debug, Clone)]
pub struct PendingWebhook {
    pub url: String,
    pub event: WebhookEventType,
    pub session_id: SessionId,
    pub data: Value,
}

/// What a change requires once the lock is released.
#[derive(Debug, Default)]
pub struct Effects {
    /// `(kind, id)` of records to write (or delete when gone).
    pub dirty: Vec<(&'static str, String)>,
    pub webhooks: Vec<PendingWebhook>,
    /// Terminals with new commands.
    pub wake: Vec<TerminalId>,
    /// Some payment changed (abort waiters re-check).
    pub payments_changed: bool,
    /// Everything was deleted.
    pub cleared: bool,
}

/// A row of the state file: `(kind, id, json)`; `None` deletes.
pub type Row = (&'static str, String, Option<String>);

/// Runtime facts the rules need that are not state (from the live view).
pub trait Liveness {
    fn is_connected(&self, terminal: &TerminalId) -> bool;
}

#[derive(Debug, Default)]
pub struct State {
    pub sessions: HashMap<SessionId, Session>,
    pub terminals: HashMap<TerminalId, TerminalRec>,
    pub operators: HashMap<String, Operator>,
    pub payments: HashMap<PaymentId, PaymentRec>,
    pub idempotency: HashMap<String, IdemRec>,
    pub transactions: HashMap<Reference, TxRec>,
    pub commands: HashMap<TerminalId, BTreeMap<u64, CommandRec>>,
    pub scenarios: HashMap<TerminalId, ScenarioRec>,
    pub tombstones: HashSet<Reference>,
    // Derived indexes.
    pub keys: HashMap<String, TerminalId>,
    pub tx_by_id: HashMap<String, Reference>,
    pub tx_seq: u64,
    pub effects: Effects,
}

fn short_id(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::thread_rng().fill(&mut b[..]);
    hex::encode(b)
}

fn auth_code() -> String {
    format!("{:06}", rand::thread_rng().gen_range(0..1_000_000u32))
}

/// An id minted by the simulator; its alphabet always validates.
fn sim_id<T: std::str::FromStr>(s: String) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse()
        .expect("simulator-minted ids use only letters, digits and '_'")
}

impl State {
    pub fn take_effects(&mut self) -> Effects {
        std::mem::take(&mut self.effects)
    }

    fn dirty(&mut self, kind: &'static str, id: impl Into<String>) {
        self.effects.dirty.push((kind, id.into()));
    }

    pub fn push_webhook(&mut self, session_id: &SessionId, event: WebhookEventType, data: Value) {
        self.webhook(session_id, event, data);
    }

    fn webhook(&mut self, session_id: &SessionId, event: WebhookEventType, data: Value) {
        let Some(url) = self
            .sessions
            .get(session_id)
            .and_then(|s| s.webhook_url.clone())
        else {
            return;
        };
        self.effects.webhooks.push(PendingWebhook {
            url,
            event,
            session_id: session_id.clone(),
            data,
        });
    }

    /// Serializes a dirty record (`None` when it no longer exists).
    pub fn row(&self, kind: &'static str, id: &str) -> Row {
        fn js<T: Serialize>(v: Option<&T>) -> Option<String> {
            v.and_then(|v| serde_json::to_string(v).ok())
        }
        let body = match kind {
            kind::SESSION => js(SessionId::new(id).ok().and_then(|k| self.sessions.get(&k))),
            kind::TERMINAL => js(TerminalId::new(id)
                .ok()
                .and_then(|k| self.terminals.get(&k))),
            kind::OPERATOR => js(self.operators.get(id)),
            kind::PAYMENT => js(PaymentId::new(id).ok().and_then(|k| self.payments.get(&k))),
            kind::IDEMPOTENCY => js(self.idempotency.get(id)),
            kind::TRANSACTION => js(Reference::new(id)
                .ok()
                .and_then(|k| self.transactions.get(&k))),
            kind::COMMAND => id.split_once('/').and_then(|(t, seq)| {
                let t = TerminalId::new(t).ok()?;
                let seq: u64 = seq.parse().ok()?;
                js(self.commands.get(&t).and_then(|m| m.get(&seq)))
            }),
            kind::SCENARIO => js(TerminalId::new(id)
                .ok()
                .and_then(|k| self.scenarios.get(&k))),
            kind::TOMBSTONE => Reference::new(id)
                .ok()
                .filter(|r| self.tombstones.contains(r))
                .map(|_| "true".to_owned()),
            _ => None,
        };
        (kind, id.to_owned(), body)
    }

    /// Rebuilds the state from the rows of a state file.
    pub fn load(rows: Vec<(String, String, String)>) -> Result<State, (String, String, String)> {
        let mut st = State::default();
        for (k, id, body) in rows {
            let bad = |e: serde_json::Error| (k.clone(), id.clone(), e.to_string());
            match k.as_str() {
                kind::SESSION => {
                    let s: Session = serde_json::from_str(&body).map_err(bad)?;
                    st.sessions.insert(s.session_id.clone(), s);
                }
                kind::TERMINAL => {
                    let t: TerminalRec = serde_json::from_str(&body).map_err(bad)?;
                    if let Some(c) = &t.creds {
                        st.keys.insert(c.api_key.clone(), t.terminal_id.clone());
                    }
                    st.terminals.insert(t.terminal_id.clone(), t);
                }
                kind::OPERATOR => {
                    let o: Operator = serde_json::from_str(&body).map_err(bad)?;
                    st.operators.insert(o.operator_id.clone(), o);
                }
                kind::PAYMENT => {
                    let p: PaymentRec = serde_json::from_str(&body).map_err(bad)?;
                    st.payments.insert(p.payment.payment_id.clone(), p);
                }
                kind::IDEMPOTENCY => {
                    let i: IdemRec = serde_json::from_str(&body).map_err(bad)?;
                    st.idempotency.insert(i.key.clone(), i);
                }
                kind::TRANSACTION => {
                    let t: TxRec = serde_json::from_str(&body).map_err(bad)?;
                    st.tx_seq = st.tx_seq.max(t.seq);
                    st.tx_by_id
                        .insert(t.record.transaction_id.clone(), t.record.reference.clone());
                    st.transactions.insert(t.record.reference.clone(), t);
                }
                kind::COMMAND => {
                    let c: CommandRec = serde_json::from_str(&body).map_err(bad)?;
                    st.commands
                        .entry(c.terminal_id.clone())
                        .or_default()
                        .insert(c.seq, c);
                }
                kind::SCENARIO => {
                    let s: ScenarioRec = serde_json::from_str(&body).map_err(bad)?;
                    st.scenarios.insert(s.terminal_id.clone(), s);
                }
                kind::TOMBSTONE => {
                    if let Ok(r) = Reference::new(id.clone()) {
                        st.tombstones.insert(r);
                    }
                }
                _ => return Err((k, id, "unknown record kind".into())),
            }
        }
        Ok(st)
    }

    pub fn reset(&mut self) {
        *self = State::default();
        self.effects.cleared = true;
        self.effects.payments_changed = true;
    }

    // -----------------------------------------------------------------
    // Sessions
    // -----------------------------------------------------------------

    pub fn effective_status(session: &Session, now: Timestamp) -> SessionStatus {
        match (session.status, session.starts_at) {
            (SessionStatus::Pending, Some(start)) if start <= now => SessionStatus::Active,
            (SessionStatus::Pending, None) => SessionStatus::Active,
            (s, _) => s,
        }
    }

    pub fn create_session(
        &mut self,
        req: CreateSession,
        now: Timestamp,
    ) -> Result<Session, ApiErr> {
        let text_ok = |s: &str, max: usize| !s.trim().is_empty() && s.chars().count() <= max;
        if !text_ok(&req.external_event_id, 128) {
            return Err(ApiErr::unprocessable(
                "invalid_external_event_id",
                "external_event_id must be 1-128 characters",
            ));
        }
        if !text_ok(&req.name, 200) {
            return Err(ApiErr::unprocessable(
                "invalid_name",
                "name must be 1-200 characters",
            ));
        }
        let c: Collection = req.collection;
        if c.pos && !(1..=50).contains(&c.pos_count) {
            return Err(ApiErr::unprocessable(
                "invalid_pos_count",
                "collection.pos_count must be 1-50 when collection.pos is true",
            ));
        }
        if !c.pos && c.pos_count != 0 {
            return Err(ApiErr::unprocessable(
                "invalid_pos_count",
                "collection.pos_count requires collection.pos = true",
            ));
        }
        if let (Some(s), Some(e)) = (req.starts_at, req.ends_at) {
            if e <= s {
                return Err(ApiErr::unprocessable(
                    "invalid_ends_at",
                    "ends_at must be after starts_at",
                ));
            }
        }
        if let Some(url) = &req.webhook_url {
            let ok = (url.starts_with("http://") || url.starts_with("https://"))
                && url.len() <= 2048
                && reqwest::Url::parse(url).is_ok();
            if !ok {
                return Err(ApiErr::unprocessable(
                    "invalid_webhook_url",
                    "webhook_url must be an absolute http(s) URL",
                ));
            }
        }
        // The terminal ids carry 6 hex digits of the session id: pick one
        // whose prefix no other session uses.
        let session_hex = loop {
            let hex = uuid::Uuid::new_v4().simple().to_string();
            let prefix = format!("pos_{}_", &hex[..6]);
            if !self
                .terminals
                .keys()
                .any(|t| t.as_str().starts_with(&prefix))
            {
                break hex;
            }
        };
        let session_id: SessionId = sim_id(session_hex.clone());
        let status = match req.starts_at {
            Some(s) if s > now => SessionStatus::Pending,
            _ => SessionStatus::Active,
        };
        let mut pos_terminals = Vec::new();
        if c.pos {
            for n in 1..=c.pos_count {
                let terminal_id: TerminalId = sim_id(format!("pos_{}_{n:03}", &session_hex[..6]));
                let label = format!("POS {n}");
                self.terminals.insert(
                    terminal_id.clone(),
                    TerminalRec {
                        terminal_id: terminal_id.clone(),
                        session_id: session_id.clone(),
                        label: label.clone(),
                        creds: None,
                        last_seen_at: None,
                        queue_depth: 0,
                        agent_state: None,
                        last_seq: 0,
                    },
                );
                self.dirty(kind::TERMINAL, terminal_id.as_str());
                pos_terminals.push(PosTerminal {
                    terminal_id,
                    label,
                    status: TerminalStatus::Offline,
                });
            }
        }
        let collection_account = c.account.then(|| CollectionAccount {
            account_number: format!(
                "99{:08}",
                u32::from_str_radix(&session_hex[..7], 16).unwrap_or(0) % 100_000_000
            ),
            account_name: req.name.clone(),
            bank_name: "Kler Sandbox Bank".into(),
        });
        let session = Session {
            session_id: session_id.clone(),
            external_event_id: req.external_event_id,
            name: req.name,
            currency: req.currency,
            status,
            starts_at: req.starts_at,
            ends_at: req.ends_at,
            collection: c,
            collection_account,
            pos_terminals,
            webhook_url: req.webhook_url,
            metadata: req.metadata,
            created_at: now,
            closed_at: None,
        };
        self.sessions.insert(session_id.clone(), session.clone());
        self.dirty(kind::SESSION, session_id.as_str());
        Ok(session)
    }

    /// The session as served: effective status and live terminal statuses.
    pub fn session_view(
        &self,
        id: &SessionId,
        now: Timestamp,
        live: &dyn Liveness,
    ) -> Option<Session> {
        let mut s = self.sessions.get(id)?.clone();
        s.status = Self::effective_status(&s, now);
        for t in &mut s.pos_terminals {
            t.status = self.terminal_status(&t.terminal_id, now, live);
        }
        Some(s)
    }

    pub fn close_session(
        &mut self,
        id: &SessionId,
        now: Timestamp,
        live: &dyn Liveness,
    ) -> Result<Session, ApiErr> {
        let s = self
            .sessions
            .get_mut(id)
            .ok_or_else(|| ApiErr::not_found("session", id.as_str()))?;
        match s.status {
            SessionStatus::Closed => {}
            SessionStatus::Cancelled => {
                return Err(ApiErr::conflict(
                    "session_cancelled",
                    "a cancelled session cannot be closed",
                ));
            }
            SessionStatus::Pending | SessionStatus::Active => {
                s.status = SessionStatus::Closed;
                s.closed_at = Some(now);
                let terminals: Vec<TerminalId> = s
                    .pos_terminals
                    .iter()
                    .map(|t| t.terminal_id.clone())
                    .collect();
                self.dirty(kind::SESSION, id.as_str());
                for t in terminals {
                    self.push_command(&t, CommandBody::SessionClosed {}, now);
                }
                let view = self.session_view(id, now, live);
                if let Some(v) = &view {
                    let data = serde_json::to_value(v).unwrap_or(Value::Null);
                    self.webhook(id, WebhookEventType::SessionClosed, data);
                }
            }
        }
        self.session_view(id, now, live)
            .ok_or_else(|| ApiErr::not_found("session", id.as_str()))
    }

    pub fn cancel_session(
        &mut self,
        id: &SessionId,
        now: Timestamp,
        live: &dyn Liveness,
    ) -> Result<Session, ApiErr> {
        let s = self
            .sessions
            .get_mut(id)
            .ok_or_else(|| ApiErr::not_found("session", id.as_str()))?;
        match Self::effective_status(s, now) {
            SessionStatus::Cancelled => {}
            SessionStatus::Pending => {
                s.status = SessionStatus::Cancelled;
                s.closed_at = Some(now);
                self.dirty(kind::SESSION, id.as_str());
            }
            other => {
                return Err(ApiErr::conflict(
                    "session_not_pending",
                    format!("only a pending session can be cancelled (this one is {other:?})"),
                ));
            }
        }
        self.session_view(id, now, live)
            .ok_or_else(|| ApiErr::not_found("session", id.as_str()))
    }

    // -----------------------------------------------------------------
    // Operators
    // -----------------------------------------------------------------

    pub fn create_operator(
        &mut self,
        session_id: &SessionId,
        req: CreateOperator,
        now: Timestamp,
    ) -> Result<Operator, ApiErr> {
        if !self.sessions.contains_key(session_id) {
            return Err(ApiErr::not_found("session", session_id.as_str()));
        }
        if req.name.trim().is_empty() || req.name.chars().count() > 200 {
            return Err(ApiErr::unprocessable(
                "invalid_name",
                "name must be 1-200 characters",
            ));
        }
        let short = |v: &Option<String>| v.as_ref().is_none_or(|s| s.chars().count() <= 200);
        if !short(&req.phone) || !short(&req.email) {
            return Err(ApiErr::unprocessable(
                "invalid_contact",
                "phone and email must be at most 200 characters",
            ));
        }
        if let Some(e) = &req.email {
            if !e.contains('@') {
                return Err(ApiErr::unprocessable(
                    "invalid_email",
                    "email must contain '@'",
                ));
            }
        }
        let op = Operator {
            operator_id: short_id("op_"),
            session_id: session_id.clone(),
            name: req.name,
            phone: req.phone,
            email: req.email,
            role: req.role,
            created_at: now,
        };
        self.operators.insert(op.operator_id.clone(), op.clone());
        self.dirty(kind::OPERATOR, op.operator_id.clone());
        Ok(op)
    }

    pub fn operators_of(&self, session_id: &SessionId) -> Vec<Operator> {
        let mut v: Vec<Operator> = self
            .operators
            .values()
            .filter(|o| &o.session_id == session_id)
            .cloned()
            .collect();
        v.sort_by(|a, b| (a.created_at, &a.operator_id).cmp(&(b.created_at, &b.operator_id)));
        v
    }

    fn sorted_records(&self, keep: impl Fn(&TxRec) -> bool) -> Vec<TransactionRecord> {
        let mut v: Vec<&TxRec> = self.transactions.values().filter(|t| keep(t)).collect();
        v.sort_by_key(|t| t.seq);
        v.into_iter().map(|t| t.record.clone()).collect()
    }

    pub fn operator_transactions(
        &self,
        session_id: &SessionId,
        op: &str,
    ) -> Result<Vec<TransactionRecord>, ApiErr> {
        match self.operators.get(op) {
            Some(o) if &o.session_id == session_id => {}
            _ => return Err(ApiErr::not_found("operator", op)),
        }
        Ok(self.sorted_records(|t| {
            &t.record.session_id == session_id && t.record.operator_id.as_deref() == Some(op)
        }))
    }

    // -----------------------------------------------------------------
    // Reconciliation
    // -----------------------------------------------------------------

    pub fn reconciliation(
        &self,
        session_id: &SessionId,
        now: Timestamp,
    ) -> Result<Reconciliation, ApiErr> {
        let session = self
            .sessions
            .get(session_id)
            .ok_or_else(|| ApiErr::not_found("session", session_id.as_str()))?;
        let mut total = Total::default();
        let (mut ok, mut failed) = (0u64, 0u64);
        let mut by_channel: BTreeMap<String, CountTotal> = BTreeMap::new();
        let mut by_terminal: BTreeMap<String, CountTotal> = BTreeMap::new();
        let mut refunds = CountTotal::default();
        for t in self.transactions.values() {
            let r = &t.record;
            if &r.session_id != session_id {
                continue;
            }
            match (r.kind, r.status) {
                (TxKind::Sale, RecordStatus::Approved) => {
                    ok += 1;
                    total = total.add(r.amount);
                    by_channel.entry("pos".into()).or_default().add(r.amount);
                    by_terminal
                        .entry(r.terminal_id.to_string())
                        .or_default()
                        .add(r.amount);
                }
                (TxKind::Sale, _) => failed += 1,
                (TxKind::Refund, RecordStatus::Approved) => refunds.add(r.amount),
                (TxKind::Refund, _) => {}
            }
        }
        let pending = self
            .payments
            .values()
            .filter(|p| {
                &p.payment.session_id == session_id
                    && p.payment.kind == TxKind::Sale
                    && !p.payment.status.is_final()
            })
            .count() as u64;
        Ok(Reconciliation {
            session_id: session_id.clone(),
            currency: session.currency,
            total_inflow: total,
            transaction_count: ok + failed + pending,
            successful_count: ok,
            pending_count: pending,
            failed_count: failed,
            by_channel,
            by_terminal,
            refunds,
            reconciled_at: now,
        })
    }

    // -----------------------------------------------------------------
    // Terminals
    // -----------------------------------------------------------------

    pub fn terminal(&self, id: &TerminalId) -> Result<&TerminalRec, ApiErr> {
        self.terminals
            .get(id)
            .ok_or_else(|| ApiErr::not_found("terminal", id.as_str()))
    }

    pub fn provision(
        &mut self,
        id: &TerminalId,
        tenant_id: &str,
    ) -> Result<(StoredCreds, SessionId), ApiErr> {
        let t = self
            .terminals
            .get_mut(id)
            .ok_or_else(|| ApiErr::not_found("terminal", id.as_str()))?;
        let creds = StoredCreds {
            api_key: format!("tk_{}", random_hex(16)),
            secret: Secret::new(random_hex(32)),
            merchant_id: format!(
                "mer_{}",
                &t.session_id.as_str()[..6.min(t.session_id.as_str().len())]
            ),
            tenant_id: tenant_id.to_owned(),
        };
        if let Some(old) = t.creds.replace(creds.clone()) {
            self.keys.remove(&old.api_key);
        }
        let session = t.session_id.clone();
        self.keys.insert(creds.api_key.clone(), id.clone());
        self.dirty(kind::TERMINAL, id.as_str());
        Ok((creds, session))
    }

    /// Credentials for a signed request's api key, with the terminal they
    /// belong to.
    pub fn credentials(&self, api_key: &str) -> Option<(Credentials, TerminalId)> {
        let tid = self.keys.get(api_key)?;
        let c = self.terminals.get(tid)?.creds.as_ref()?;
        Some((
            Credentials {
                tenant_id: c.tenant_id.clone(),
                api_key: c.api_key.clone(),
                merchant_id: c.merchant_id.clone(),
                secret: c.secret.clone(),
            },
            tid.clone(),
        ))
    }

    fn open_payment_on(&self, id: &TerminalId, now: Timestamp) -> Option<&PaymentRec> {
        self.payments.values().find(|p| {
            &p.payment.terminal_id == id
                && !p.payment.status.is_final()
                && p.payment.expires_at.is_none_or(|e| e > now)
        })
    }

    pub fn terminal_status(
        &self,
        id: &TerminalId,
        now: Timestamp,
        live: &dyn Liveness,
    ) -> TerminalStatus {
        if !live.is_connected(id) {
            return TerminalStatus::Offline;
        }
        let busy_state = self
            .terminals
            .get(id)
            .is_some_and(|t| t.agent_state == Some(AgentState::Busy));
        if busy_state || self.open_payment_on(id, now).is_some() {
            TerminalStatus::Busy
        } else {
            TerminalStatus::Online
        }
    }

    pub fn terminal_info(
        &self,
        t: &TerminalRec,
        now: Timestamp,
        live: &dyn Liveness,
    ) -> TerminalInfo {
        TerminalInfo {
            terminal_id: t.terminal_id.clone(),
            session_id: t.session_id.clone(),
            label: t.label.clone(),
            status: self.terminal_status(&t.terminal_id, now, live),
            last_seen_at: t.last_seen_at,
            queue_depth: t.queue_depth,
        }
    }

    pub fn terminals_list(
        &self,
        session: Option<&SessionId>,
        now: Timestamp,
        live: &dyn Liveness,
    ) -> Vec<TerminalInfo> {
        let mut v: Vec<&TerminalRec> = self
            .terminals
            .values()
            .filter(|t| session.is_none_or(|s| &t.session_id == s))
            .collect();
        v.sort_by(|a, b| a.terminal_id.cmp(&b.terminal_id));
        v.into_iter()
            .map(|t| self.terminal_info(t, now, live))
            .collect()
    }

    /// Marks a terminal seen now (heartbeat or stream).
    pub fn seen(&mut self, id: &TerminalId, now: Timestamp) {
        if let Some(t) = self.terminals.get_mut(id) {
            t.last_seen_at = Some(now);
            // last_seen_at is informational; it is persisted with the next
            // real change of the terminal rather than on every request.
        }
    }

    pub fn heartbeat(
        &mut self,
        id: &TerminalId,
        hb: &Heartbeat,
        now: Timestamp,
    ) -> Result<SessionStatus, ApiErr> {
        let t = self
            .terminals
            .get_mut(id)
            .ok_or_else(|| ApiErr::not_found("terminal", id.as_str()))?;
        t.last_seen_at = Some(now);
        t.queue_depth = hb.queue_depth;
        t.agent_state = Some(hb.state);
        let sid = t.session_id.clone();
        self.dirty(kind::TERMINAL, id.as_str());
        let s = self
            .sessions
            .get(&sid)
            .ok_or_else(|| ApiErr::not_found("session", sid.as_str()))?;
        Ok(Self::effective_status(s, now))
    }

    pub fn statement(
        &self,
        id: &TerminalId,
        status: Option<RecordStatus>,
    ) -> Vec<TransactionRecord> {
        self.sorted_records(|t| {
            &t.record.terminal_id == id && status.is_none_or(|s| t.record.status == s)
        })
    }

    // -----------------------------------------------------------------
    // Commands
    // -----------------------------------------------------------------

    fn push_command(
        &mut self,
        id: &TerminalId,
        body: CommandBody,
        now: Timestamp,
    ) -> Option<String> {
        let t = self.terminals.get_mut(id)?;
        t.last_seq += 1;
        let seq = t.last_seq;
        let command_id = short_id("cmd_");
        let rec = CommandRec {
            terminal_id: id.clone(),
            seq,
            command: Command {
                command_id: command_id.clone(),
                body,
            },
            ack: None,
            created_at: now,
        };
        self.commands
            .entry(id.clone())
            .or_default()
            .insert(seq, rec);
        self.dirty(kind::TERMINAL, id.as_str());
        self.dirty(kind::COMMAND, format!("{id}/{seq}"));
        self.effects.wake.push(id.clone());
        Some(command_id)
    }

    /// Commands to send on a stream: after `after` when the terminal gave a
    /// `Last-Event-ID`, otherwise every command not yet acknowledged.
    pub fn commands_for(&self, id: &TerminalId, after: Option<u64>) -> Vec<(u64, Command)> {
        let Some(m) = self.commands.get(id) else {
            return Vec::new();
        };
        match after {
            Some(a) => m
                .range(a.saturating_add(1)..)
                .map(|(s, c)| (*s, c.command.clone()))
                .collect(),
            None => m
                .values()
                .filter(|c| c.ack.is_none())
                .map(|c| (c.seq, c.command.clone()))
                .collect(),
        }
    }

    pub fn ack(
        &mut self,
        id: &TerminalId,
        command_id: &str,
        ack: CommandAck,
        now: Timestamp,
    ) -> Result<(), ApiErr> {
        if ack.status == AckStatus::Rejected && ack.reason.is_none() {
            return Err(ApiErr::unprocessable(
                "missing_reason",
                "a rejected ack needs a reason",
            ));
        }
        let m = self
            .commands
            .get_mut(id)
            .ok_or_else(|| ApiErr::not_found("command", command_id))?;
        let rec = m
            .values_mut()
            .find(|c| c.command.command_id == command_id)
            .ok_or_else(|| ApiErr::not_found("command", command_id))?;
        if let Some(prev) = rec.ack {
            // Idempotent; the first answer stands.
            if prev != ack {
                return Err(ApiErr::conflict(
                    "already_acknowledged",
                    "this command was already acknowledged differently",
                ));
            }
            return Ok(());
        }
        rec.ack = Some(ack);
        let seq = rec.seq;
        let body = rec.command.body.clone();
        self.dirty(kind::COMMAND, format!("{id}/{seq}"));
        if ack.status == AckStatus::Rejected {
            let reason = ack.reason.unwrap_or(AckReason::InvalidRequest);
            match body {
                CommandBody::Sale { payment_id, .. } | CommandBody::Refund { payment_id, .. } => {
                    self.finish_payment(
                        &payment_id,
                        PaymentStatus::Failed,
                        Some(reason.as_str().into()),
                        now,
                    );
                }
                CommandBody::Abort { payment_id } => {
                    if let Some(p) = self.payments.get_mut(&payment_id) {
                        p.abort_rejected = Some(reason);
                        self.dirty(kind::PAYMENT, payment_id.as_str());
                        self.effects.payments_changed = true;
                    }
                }
                CommandBody::SessionClosed {} => {}
            }
        }
        Ok(())
    }

    // -----------------------------------------------------------------
    // Payments (partner side)
    // -----------------------------------------------------------------

    fn payment_changed(&mut self, id: &PaymentId) {
        self.dirty(kind::PAYMENT, id.as_str());
        self.effects.payments_changed = true;
        if let Some(p) = self.payments.get(id) {
            let data = serde_json::to_value(&p.payment).unwrap_or(Value::Null);
            let sid = p.payment.session_id.clone();
            self.webhook(&sid, WebhookEventType::PaymentUpdated, data);
        }
    }

    /// Moves a non-final payment to a final status.
    fn finish_payment(
        &mut self,
        id: &PaymentId,
        status: PaymentStatus,
        reason: Option<String>,
        now: Timestamp,
    ) {
        let Some(p) = self.payments.get_mut(id) else {
            return;
        };
        if p.payment.status.is_final() {
            return;
        }
        p.payment.status = status;
        p.payment.reason = reason;
        p.payment.updated_at = now;
        self.payment_changed(id);
    }

    /// Looks up an earlier `Idempotency-Key` use. `Ok(Some)` replays.
    pub fn idempotent_replay(
        &self,
        scope: &str,
        key: &str,
        body_hash: &str,
    ) -> Result<Option<Value>, ApiErr> {
        match self.idempotency.get(&format!("{scope}:{key}")) {
            None => Ok(None),
            Some(r) if r.body_hash == body_hash => Ok(Some(r.response.clone())),
            Some(_) => Err(ApiErr::conflict(
                codes::IDEMPOTENCY_CONFLICT,
                "this Idempotency-Key was used with a different body",
            )),
        }
    }

    fn remember(&mut self, scope: &str, key: &str, body_hash: String, payment: &Payment) {
        let k = format!("{scope}:{key}");
        self.idempotency.insert(
            k.clone(),
            IdemRec {
                key: k.clone(),
                body_hash,
                payment_id: payment.payment_id.clone(),
                response: serde_json::to_value(payment).unwrap_or(Value::Null),
            },
        );
        self.dirty(kind::IDEMPOTENCY, k);
    }

    fn require_active_session(&self, sid: &SessionId, now: Timestamp) -> Result<(), ApiErr> {
        let s = self
            .sessions
            .get(sid)
            .ok_or_else(|| ApiErr::not_found("session", sid.as_str()))?;
        match Self::effective_status(s, now) {
            SessionStatus::Active => Ok(()),
            SessionStatus::Closed => Err(ApiErr::conflict(
                codes::SESSION_CLOSED,
                "the session is closed",
            )),
            SessionStatus::Cancelled => Err(ApiErr::conflict(
                "session_cancelled",
                "the session was cancelled",
            )),
            SessionStatus::Pending => Err(ApiErr::conflict(
                "session_not_started",
                "the session has not started yet",
            )),
        }
    }

    pub fn create_payment(
        &mut self,
        key: &str,
        body_hash: String,
        req: CreatePayment,
        now: Timestamp,
        live: &dyn Liveness,
    ) -> Result<Payment, ApiErr> {
        let amount = crate::body::positive(req.amount)?;
        if req.reference.trim().is_empty() || req.reference.chars().count() > 128 {
            return Err(ApiErr::unprocessable(
                "invalid_reference",
                "reference must be 1-128 characters",
            ));
        }
        let t = self.terminal(&req.terminal_id)?;
        let sid = t.session_id.clone();
        self.require_active_session(&sid, now)?;
        match self.terminal_status(&req.terminal_id, now, live) {
            TerminalStatus::Offline => {
                return Err(ApiErr::conflict(
                    codes::TERMINAL_OFFLINE,
                    "the terminal is not connected",
                ));
            }
            TerminalStatus::Busy => {
                return Err(ApiErr::conflict(
                    codes::TERMINAL_BUSY,
                    "the terminal is busy with another payment",
                ));
            }
            TerminalStatus::Online => {}
        }
        let expires_at = req.expires_at.unwrap_or_else(|| now.plus_secs(120));
        if expires_at <= now {
            return Err(ApiErr::unprocessable(
                "invalid_expires_at",
                "expires_at is in the past",
            ));
        }
        let payment_id: PaymentId = sim_id(short_id("pay_"));
        let policy = req.offline_policy.unwrap_or_default();
        let payment = Payment {
            payment_id: payment_id.clone(),
            kind: TxKind::Sale,
            terminal_id: req.terminal_id.clone(),
            session_id: sid,
            amount,
            currency: req.currency,
            status: PaymentStatus::Pending,
            reference: Some(req.reference.clone()),
            metadata: req.metadata.clone(),
            offline_policy: policy,
            expires_at: Some(expires_at),
            original_transaction_id: None,
            original_reference: None,
            reason: None,
            transaction: None,
            created_at: now,
            updated_at: now,
        };
        self.payments.insert(
            payment_id.clone(),
            PaymentRec {
                payment: payment.clone(),
                abort_too_late: false,
                abort_rejected: None,
                events: Vec::new(),
            },
        );
        self.dirty(kind::PAYMENT, payment_id.as_str());
        self.remember("payment", key, body_hash, &payment);
        self.push_command(
            &req.terminal_id,
            CommandBody::Sale {
                payment_id,
                amount,
                currency: req.currency,
                partner_reference: req.reference,
                metadata: req.metadata,
                expires_at,
                offline_policy: policy,
            },
            now,
        );
        Ok(payment)
    }

    /// Ends a sale still `pending` once past its `expires_at`.
    pub fn expire_payment(&mut self, id: &PaymentId, now: Timestamp) {
        let due = self.payments.get(id).is_some_and(|p| {
            p.payment.status == PaymentStatus::Pending
                && p.payment.expires_at.is_some_and(|e| e <= now)
        });
        if due {
            self.finish_payment(id, PaymentStatus::TimedOut, Some("expired".into()), now);
        }
    }

    pub fn payment(&self, id: &PaymentId) -> Result<&PaymentRec, ApiErr> {
        self.payments
            .get(id)
            .ok_or_else(|| ApiErr::not_found("payment", id.as_str()))
    }

    /// Starts an abort. `Ok(None)`: wait for the terminal's answer.
    pub fn begin_abort(
        &mut self,
        id: &PaymentId,
        now: Timestamp,
    ) -> Result<Option<Payment>, ApiErr> {
        let p = self.payment(id)?;
        if let Some(done) = Self::abort_outcome(p)? {
            return Ok(Some(done));
        }
        let already = self.commands.get(&p.payment.terminal_id).is_some_and(|m| {
            m.values().any(|c| {
                matches!(&c.command.body, CommandBody::Abort { payment_id } if payment_id == id)
                    && c.ack.is_none()
            })
        });
        let tid = p.payment.terminal_id.clone();
        if let Some(p) = self.payments.get_mut(id) {
            p.abort_rejected = None;
        }
        if !already {
            self.push_command(
                &tid,
                CommandBody::Abort {
                    payment_id: id.clone(),
                },
                now,
            );
        }
        Ok(None)
    }

    /// What an abort has come to so far: `Ok(Some)` aborted, `Err` refused,
    /// `Ok(None)` still open.
    pub fn abort_outcome(p: &PaymentRec) -> Result<Option<Payment>, ApiErr> {
        if p.payment.kind != TxKind::Sale {
            return Err(ApiErr::conflict(
                "not_abortable",
                "only sales can be aborted",
            ));
        }
        match p.payment.status {
            PaymentStatus::Aborted => return Ok(Some(p.payment.clone())),
            PaymentStatus::Approved | PaymentStatus::Declined => {
                return Err(ApiErr::conflict(
                    codes::ABORT_TOO_LATE,
                    "the card was already read; refund the payment instead",
                ));
            }
            PaymentStatus::TimedOut | PaymentStatus::Failed => {
                return Err(ApiErr::conflict(
                    "payment_final",
                    format!("the payment already ended ({:?})", p.payment.status),
                ));
            }
            PaymentStatus::Pending | PaymentStatus::InProgress => {}
        }
        if p.abort_too_late {
            return Err(ApiErr::conflict(
                codes::ABORT_TOO_LATE,
                "the card was already read; the payment goes on (refund it if needed)",
            ));
        }
        if let Some(r) = p.abort_rejected {
            return Err(ApiErr::conflict(
                "abort_rejected",
                format!("the terminal refused the abort: {}", r.as_str()),
            ));
        }
        Ok(None)
    }

    pub fn payment_event(
        &mut self,
        tid: &TerminalId,
        pid: &PaymentId,
        ev: PaymentEvent,
        now: Timestamp,
    ) -> Result<Payment, ApiErr> {
        let p = self
            .payments
            .get_mut(pid)
            .filter(|p| &p.payment.terminal_id == tid)
            .ok_or_else(|| ApiErr::not_found("payment", pid.as_str()))?;
        if p.events.iter().any(|e| e.status == ev.status) {
            return Ok(p.payment.clone()); // idempotent
        }
        p.events.push(ev.clone());
        self.dirty(kind::PAYMENT, pid.as_str());
        match ev.status {
            PaymentEventStatus::InProgress => {
                if let Some(p) = self.payments.get_mut(pid) {
                    if p.payment.status == PaymentStatus::Pending {
                        p.payment.status = PaymentStatus::InProgress;
                        p.payment.updated_at = now;
                        self.payment_changed(pid);
                    }
                }
            }
            PaymentEventStatus::AbortTooLate => {
                if let Some(p) = self.payments.get_mut(pid) {
                    p.abort_too_late = true;
                }
                self.effects.payments_changed = true;
            }
            PaymentEventStatus::Aborted => {
                self.finish_payment(pid, PaymentStatus::Aborted, ev.reason, now)
            }
            PaymentEventStatus::TimedOut => {
                self.finish_payment(pid, PaymentStatus::TimedOut, ev.reason, now)
            }
            PaymentEventStatus::Failed => {
                self.finish_payment(pid, PaymentStatus::Failed, ev.reason, now)
            }
        }
        Ok(self.payment(pid)?.payment.clone())
    }

    fn refunded_so_far(&self, original: &Reference) -> Money {
        let mut sum = Money::ZERO;
        for t in self.transactions.values() {
            if t.record.kind == TxKind::Refund
                && t.record.status == RecordStatus::Approved
                && t.record.original_reference.as_ref() == Some(original)
            {
                sum = sum.checked_add(t.record.amount).unwrap_or(sum);
            }
        }
        // Refunds requested but not settled yet also count against the sale.
        for p in self.payments.values() {
            if p.payment.kind == TxKind::Refund
                && !p.payment.status.is_final()
                && p.payment.original_reference.as_ref() == Some(original)
            {
                sum = sum.checked_add(p.payment.amount).unwrap_or(sum);
            }
        }
        sum
    }

    #[allow(clippy::too_many_arguments)]
    pub fn create_refund(
        &mut self,
        key: &str,
        body_hash: String,
        transaction_id: &str,
        amount: Money,
        currency: Currency,
        now: Timestamp,
        live: &dyn Liveness,
    ) -> Result<Payment, ApiErr> {
        let amount = crate::body::positive(amount)?;
        let reference = self
            .tx_by_id
            .get(transaction_id)
            .cloned()
            .ok_or_else(|| ApiErr::not_found("transaction", transaction_id))?;
        let tx = self
            .transactions
            .get(&reference)
            .ok_or_else(|| ApiErr::not_found("transaction", transaction_id))?;
        if tx.record.kind != TxKind::Sale || tx.record.status != RecordStatus::Approved {
            return Err(ApiErr::conflict(
                "not_refundable",
                "only an approved, not reversed sale can be refunded",
            ));
        }
        let left = tx
            .record
            .amount
            .saturating_sub(self.refunded_so_far(&reference));
        if amount > left {
            return Err(ApiErr::unprocessable(
                "amount_exceeds_refundable",
                format!("at most {} is left to refund", left.to_wire()),
            ));
        }
        let tid = tx.record.terminal_id.clone();
        let sid = tx.record.session_id.clone();
        let original_id = tx.record.transaction_id.clone();
        if !live.is_connected(&tid) {
            return Err(ApiErr::conflict(
                codes::TERMINAL_OFFLINE,
                "the terminal of the sale is not connected",
            ));
        }
        let payment_id: PaymentId = sim_id(short_id("pay_"));
        let payment = Payment {
            payment_id: payment_id.clone(),
            kind: TxKind::Refund,
            terminal_id: tid.clone(),
            session_id: sid,
            amount,
            currency,
            status: PaymentStatus::Pending,
            reference: None,
            metadata: None,
            offline_policy: Default::default(),
            expires_at: None,
            original_transaction_id: Some(original_id),
            original_reference: Some(reference.clone()),
            reason: None,
            transaction: None,
            created_at: now,
            updated_at: now,
        };
        self.payments.insert(
            payment_id.clone(),
            PaymentRec {
                payment: payment.clone(),
                abort_too_late: false,
                abort_rejected: None,
                events: Vec::new(),
            },
        );
        self.dirty(kind::PAYMENT, payment_id.as_str());
        self.remember("refund", key, body_hash, &payment);
        self.push_command(
            &tid,
            CommandBody::Refund {
                payment_id,
                original_reference: reference,
                amount,
                currency,
            },
            now,
        );
        Ok(payment)
    }

    // -----------------------------------------------------------------
    // Transactions (terminal side)
    // -----------------------------------------------------------------

    /// An earlier submission under this reference: replay or conflict.
    pub fn transaction_replay(
        &self,
        tid: &TerminalId,
        reference: &Reference,
        body_hash: &str,
    ) -> Result<Option<TransactionAnswer>, ApiErr> {
        match self.transactions.get(reference) {
            None => Ok(None),
            Some(t) if &t.record.terminal_id != tid => Err(ApiErr::conflict(
                codes::IDEMPOTENCY_CONFLICT,
                "this reference belongs to another terminal",
            )),
            Some(t) if t.body_hash == body_hash => Ok(Some(t.answer.clone())),
            Some(_) => Err(ApiErr::conflict(
                codes::IDEMPOTENCY_CONFLICT,
                "this reference was submitted with a different body",
            )),
        }
    }

    /// Takes the next scenario armed for this terminal, if any.
    pub fn take_scenario(&mut self, tid: &TerminalId) -> Option<Scenario> {
        let rec = self.scenarios.get_mut(tid)?;
        let s = rec.scenario;
        rec.remaining = rec.remaining.saturating_sub(1);
        if rec.remaining == 0 {
            self.scenarios.remove(tid);
        }
        self.dirty(kind::SCENARIO, tid.as_str());
        Some(s)
    }

    pub fn set_scenario(
        &mut self,
        tid: &TerminalId,
        scenario: Scenario,
        count: u32,
    ) -> Result<(), ApiErr> {
        self.terminal(tid)?;
        if count == 0 {
            self.scenarios.remove(tid);
        } else {
            self.scenarios.insert(
                tid.clone(),
                ScenarioRec {
                    terminal_id: tid.clone(),
                    scenario,
                    remaining: count,
                },
            );
        }
        self.dirty(kind::SCENARIO, tid.as_str());
        Ok(())
    }

    /// Decides and records a transaction submission (the replay check and
    /// scenario draw happened before). Returns the answer.
    pub fn record_transaction(
        &mut self,
        tid: &TerminalId,
        body_hash: String,
        sub: TransactionSubmission,
        scenario: Option<Scenario>,
        now: Timestamp,
    ) -> Result<TransactionAnswer, ApiErr> {
        if let Some(a) = self.transaction_replay(tid, &sub.reference, &body_hash)? {
            return Ok(a);
        }
        let amount = crate::body::positive(sub.amount)?;
        let sid = self.terminal(tid)?.session_id.clone();
        let session = self
            .sessions
            .get(&sid)
            .ok_or_else(|| ApiErr::not_found("session", sid.as_str()))?;
        match Self::effective_status(session, now) {
            SessionStatus::Active => {}
            SessionStatus::Closed | SessionStatus::Cancelled => {
                let before_close = session.closed_at.is_some_and(|c| sub.captured_at <= c);
                if !(sub.offline && before_close) {
                    return Err(ApiErr::conflict(
                        codes::SESSION_CLOSED,
                        "the session is closed; only offline payments captured before the close are accepted",
                    ));
                }
            }
            SessionStatus::Pending => {
                return Err(ApiErr::conflict(
                    "session_not_started",
                    "the session has not started yet",
                ));
            }
        }
        if let Some(op) = &sub.operator_id {
            if op.chars().count() > 64 {
                return Err(ApiErr::unprocessable(
                    "invalid_operator_id",
                    "operator_id is too long",
                ));
            }
        }
        // The decision.
        let mut decline: Option<DeclineReason> = match scenario {
            Some(Scenario::Decline) => Some(DeclineReason::CardDeclined),
            Some(Scenario::InsufficientFunds) => Some(DeclineReason::InsufficientFunds),
            _ => None,
        };
        match sub.kind {
            TxKind::Sale => {
                if sub.original_reference.is_some() {
                    return Err(ApiErr::unprocessable(
                        "invalid_original_reference",
                        "a sale has no original_reference",
                    ));
                }
                if decline.is_none() {
                    decline = match sub.card.last4.as_str() {
                        "0002" => Some(DeclineReason::CardDeclined),
                        "9995" => Some(DeclineReason::InsufficientFunds),
                        _ => None,
                    };
                }
            }
            TxKind::Refund => {
                let Some(orig) = &sub.original_reference else {
                    return Err(ApiErr::bad_request(
                        "missing_original_reference",
                        "a refund needs original_reference",
                    ));
                };
                let valid = self.transactions.get(orig).filter(|o| {
                    &o.record.terminal_id == tid
                        && o.record.kind == TxKind::Sale
                        && o.record.status == RecordStatus::Approved
                });
                match valid {
                    None => decline = Some(DeclineReason::UnknownTransaction),
                    Some(o) => {
                        let refunded: Money = self
                            .transactions
                            .values()
                            .filter(|t| {
                                t.record.kind == TxKind::Refund
                                    && t.record.status == RecordStatus::Approved
                                    && t.record.original_reference.as_ref() == Some(orig)
                            })
                            .fold(Money::ZERO, |a, t| {
                                a.checked_add(t.record.amount).unwrap_or(a)
                            });
                        if amount > o.record.amount.saturating_sub(refunded) {
                            decline = Some(DeclineReason::AmountExceedsRefundable);
                        }
                    }
                }
            }
        }
        let tombstoned = self.tombstones.contains(&sub.reference);
        if tombstoned {
            decline = Some(DeclineReason::Reversed);
        }
        let approved = decline.is_none();
        let transaction_id = short_id("txn_");
        let code = approved.then(auth_code);
        // Only link a payment that is this terminal's.
        let payment_id = sub.payment_id.clone().filter(|p| {
            self.payments
                .get(p)
                .is_some_and(|p| &p.payment.terminal_id == tid)
        });
        let record = TransactionRecord {
            transaction_id: transaction_id.clone(),
            reference: sub.reference.clone(),
            channel: Channel::Pos,
            terminal_id: tid.clone(),
            session_id: sid.clone(),
            payment_id: sub.payment_id.clone(),
            kind: sub.kind,
            amount,
            currency: sub.currency,
            status: if tombstoned {
                RecordStatus::Reversed
            } else if approved {
                RecordStatus::Approved
            } else {
                RecordStatus::Declined
            },
            auth_code: code.clone(),
            decline_reason: decline,
            card: sub.card.summary(),
            offline: sub.offline,
            operator_id: sub.operator_id.clone(),
            original_reference: sub.original_reference.clone(),
            captured_at: sub.captured_at,
            received_at: now,
            reversed_at: tombstoned.then_some(now),
        };
        let answer = TransactionAnswer {
            transaction_id: transaction_id.clone(),
            reference: sub.reference.clone(),
            status: if approved {
                AuthStatus::Approved
            } else {
                AuthStatus::Declined
            },
            auth_code: code.clone(),
            decline_reason: decline,
        };
        self.tx_seq += 1;
        self.transactions.insert(
            sub.reference.clone(),
            TxRec {
                seq: self.tx_seq,
                body_hash,
                record: record.clone(),
                answer: answer.clone(),
            },
        );
        self.tx_by_id
            .insert(transaction_id.clone(), sub.reference.clone());
        self.dirty(kind::TRANSACTION, sub.reference.as_str());
        self.webhook(
            &sid,
            WebhookEventType::TransactionReceived,
            serde_json::to_value(&record).unwrap_or(Value::Null),
        );
        if let Some(pid) = payment_id {
            if let Some(p) = self.payments.get_mut(&pid) {
                let status = if approved {
                    PaymentStatus::Approved
                } else {
                    PaymentStatus::Declined
                };
                // An approval is money moved: it wins over an earlier
                // abort/timeout the terminal reported. A decline only
                // settles a payment still open.
                if approved || !p.payment.status.is_final() {
                    p.payment.status = status;
                    p.payment.reason = decline.map(|d| d.as_str().to_owned());
                    p.payment.updated_at = now;
                    p.payment.transaction = Some(PaymentTransaction {
                        transaction_id,
                        reference: sub.reference.clone(),
                        card: sub.card.summary(),
                        offline: sub.offline,
                        auth_code: code,
                        approved_at: approved.then_some(now),
                        decline_reason: decline,
                    });
                    self.payment_changed(&pid);
                }
            }
        }
        Ok(answer)
    }

    pub fn transaction(
        &self,
        tid: &TerminalId,
        reference: &Reference,
    ) -> Result<TransactionRecord, ApiErr> {
        self.transactions
            .get(reference)
            .filter(|t| &t.record.terminal_id == tid)
            .map(|t| t.record.clone())
            .ok_or_else(|| ApiErr::not_found("transaction", reference.as_str()))
    }

    pub fn reverse(
        &mut self,
        tid: &TerminalId,
        reference: &Reference,
        now: Timestamp,
    ) -> ReversalStatus {
        let Some(t) = self
            .transactions
            .get_mut(reference)
            .filter(|t| &t.record.terminal_id == tid)
        else {
            // Nothing known (yet): remember, so a late-arriving submission
            // under this reference is recorded as reversed, never approved.
            if !self.transactions.contains_key(reference)
                && self.tombstones.insert(reference.clone())
            {
                self.dirty(kind::TOMBSTONE, reference.as_str());
            }
            return ReversalStatus::NotFound;
        };
        match t.record.status {
            RecordStatus::Reversed => ReversalStatus::Reversed,
            RecordStatus::Declined => ReversalStatus::NotApproved,
            RecordStatus::Approved => {
                t.record.status = RecordStatus::Reversed;
                t.record.reversed_at = Some(now);
                let record = t.record.clone();
                self.dirty(kind::TRANSACTION, reference.as_str());
                self.webhook(
                    &record.session_id,
                    WebhookEventType::TransactionReceived,
                    serde_json::to_value(&record).unwrap_or(Value::Null),
                );
                if let Some(pid) = &record.payment_id {
                    if let Some(p) = self.payments.get_mut(pid) {
                        if p.payment.status == PaymentStatus::Approved {
                            p.payment.status = PaymentStatus::Failed;
                            p.payment.reason = Some("reversed".into());
                            p.payment.updated_at = now;
                            self.payment_changed(pid);
                        }
                    }
                }
                ReversalStatus::Reversed
            }
        }
    }
}
