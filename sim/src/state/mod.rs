//! The simulator's state and the rules that change it. Everything here is
//! synchronous and runs under one mutex; handlers collect the [`Effects`] a
//! change produced (records to persist, webhooks to send, terminals to wake)
//! and carry them out after the lock is released.

use std::collections::{BTreeMap, HashMap, HashSet};

use proto::signing::Secret;
use proto::wire::{
    AckReason, AgentState, Catalog, Command, CommandAck, Operator, Payment, PaymentEvent, Scenario,
    Session, ShiftRecord, Timestamp, TransactionAnswer, TransactionRecord, WebhookEventType,
};
use proto::{PaymentId, Reference, SessionId, TerminalId};

use crate::error::ApiErr;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod account;
mod catalog;
mod commands;
mod config;
mod operators;
pub use operators::hash_new_pin;
mod payments;
mod reconciliation;
mod sandbox;
mod sessions;
mod shifts;
mod terminals;
mod transactions;
mod transfers;
pub use account::CreditRec;
pub use transfers::{Registered, TransferRec, transfer_codes};

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
    pub const CONFIG: &str = "config";
    pub const OPERATOR_PIN: &str = "operator_pin";
    pub const OPERATORS_VERSION: &str = "operators_version";
    pub const CATALOG: &str = "catalog";
    pub const SHIFT: &str = "shift";
    /// An expected bank transfer (SPEC 7.7), `<terminal_id>/<reference>`.
    pub const TRANSFER: &str = "transfer";
    /// A credit of a collection account, `<session_id>/<seq>`.
    pub const CREDIT: &str = "account_credit";
}

/// An operator's PIN as the backend keeps it: its PBKDF2 hash and salt
/// (SPEC 7.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinRec {
    pub salt: String,
    pub pin_hash: String,
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
    pub parked: u32,
    #[serde(default)]
    pub agent_state: Option<AgentState>,
    /// The metrics summary of the last heartbeat that carried one.
    #[serde(default)]
    pub metrics: Option<proto::wire::HeartbeatMetrics>,
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
    /// The submission's card token: with kind, amount and currency, what
    /// makes a later submission under the same reference a replay (SPEC
    /// 4.3). Absent in state files written before it was kept.
    #[serde(default)]
    pub card_token: Option<proto::wire::CardToken>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioRec {
    pub terminal_id: TerminalId,
    pub scenario: Scenario,
    pub remaining: u32,
}

/// Transactions, tombstones and the transaction-id index are keyed by the
/// terminal as well as the reference: one terminal's references, lookups and
/// reversals never reach another's records (SPEC 4.3).
pub type TxKey = (TerminalId, Reference);

/// The state file id of a terminal's reference: `<terminal_id>/<reference>`
/// (neither may contain `/`).
fn tx_row_id(tid: &TerminalId, reference: &Reference) -> String {
    format!("{tid}/{reference}")
}

fn parse_tx_row_id(id: &str) -> Option<TxKey> {
    let (t, r) = id.split_once('/')?;
    Some((TerminalId::new(t).ok()?, Reference::new(r).ok()?))
}

/// A terminal's shift, by its number (SPEC 7.5).
pub type ShiftKey = (TerminalId, u64);

/// The state file id of a shift: `<terminal_id>/<shift_no>`.
fn shift_row_id(tid: &TerminalId, shift_no: u64) -> String {
    format!("{tid}/{shift_no}")
}

fn parse_shift_row_id(id: &str) -> Option<ShiftKey> {
    let (t, n) = id.split_once('/')?;
    Some((TerminalId::new(t).ok()?, n.parse().ok()?))
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
    pub transactions: HashMap<TxKey, TxRec>,
    pub commands: HashMap<TerminalId, BTreeMap<u64, CommandRec>>,
    pub scenarios: HashMap<TerminalId, ScenarioRec>,
    /// References reversed before their transaction arrived, per terminal.
    pub tombstones: HashSet<TxKey>,
    /// Operators' PIN hashes (SPEC 7.2), by operator id; never the PIN.
    pub operator_pins: HashMap<String, PinRec>,
    /// Each session's terminal configuration (SPEC 7.6), once set (its
    /// catalog and operators versions are added when served).
    pub configs: HashMap<SessionId, proto::wire::TerminalConfig>,
    /// Each session's operators version: one more per operator created,
    /// changed or deleted (SPEC 7.6).
    pub operators_versions: HashMap<SessionId, u64>,
    /// Each session's quick-sale catalog (SPEC 7.6), once set.
    pub catalogs: HashMap<SessionId, Catalog>,
    /// Closed shifts (SPEC 7.5), by terminal and shift number.
    pub shifts: HashMap<ShiftKey, ShiftRecord>,
    /// Expected bank transfers (SPEC 7.7), by terminal and reference.
    pub transfers: HashMap<TxKey, TransferRec>,
    /// Each session's collection-account ledger, oldest credit first.
    pub credits: HashMap<SessionId, Vec<CreditRec>>,
    /// Sequence of the last credit (over all sessions).
    pub credit_seq: u64,
    // Derived indexes.
    pub keys: HashMap<String, TerminalId>,
    pub tx_by_id: HashMap<String, TxKey>,
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
    /// `Ok` when the session exists, else 404 `session`.
    pub fn known_session(&self, sid: &SessionId) -> Result<(), ApiErr> {
        if self.sessions.contains_key(sid) {
            Ok(())
        } else {
            Err(ApiErr::not_found("session", sid.as_str()))
        }
    }

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
            kind::TRANSACTION => js(parse_tx_row_id(id).and_then(|k| self.transactions.get(&k))),
            kind::COMMAND => id.split_once('/').and_then(|(t, seq)| {
                let t = TerminalId::new(t).ok()?;
                let seq: u64 = seq.parse().ok()?;
                js(self.commands.get(&t).and_then(|m| m.get(&seq)))
            }),
            kind::SCENARIO => js(TerminalId::new(id)
                .ok()
                .and_then(|k| self.scenarios.get(&k))),
            kind::TOMBSTONE => parse_tx_row_id(id)
                .filter(|k| self.tombstones.contains(k))
                .map(|_| "true".to_owned()),
            kind::CONFIG => js(SessionId::new(id).ok().and_then(|k| self.configs.get(&k))),
            kind::OPERATOR_PIN => js(self.operator_pins.get(id)),
            kind::OPERATORS_VERSION => js(SessionId::new(id)
                .ok()
                .and_then(|k| self.operators_versions.get(&k))),
            kind::CATALOG => js(SessionId::new(id).ok().and_then(|k| self.catalogs.get(&k))),
            kind::SHIFT => js(parse_shift_row_id(id).and_then(|k| self.shifts.get(&k))),
            kind::TRANSFER => js(parse_tx_row_id(id).and_then(|k| self.transfers.get(&k))),
            kind::CREDIT => js(account::parse_credit_row_id(id)
                .and_then(|(sid, seq)| self.credits.get(&sid)?.iter().find(|c| c.seq == seq))),
            _ => None,
        };
        (kind, id.to_owned(), body)
    }

    /// Rebuilds the state from the rows of a state file.
    ///
    /// Files written before transactions were keyed by terminal hold rows
    /// whose id is the bare reference: they are moved to their
    /// `<terminal_id>/<reference>` id with the next write (a transaction
    /// names its terminal; a tombstone's terminal is the one its reference
    /// starts with, and one no terminal owns is dropped).
    pub fn load(rows: Vec<(String, String, String)>) -> Result<State, (String, String, String)> {
        let mut st = State::default();
        let mut legacy_tombstones = Vec::new();
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
                    let key = (t.record.terminal_id.clone(), t.record.reference.clone());
                    let row_id = tx_row_id(&key.0, &key.1);
                    if id != row_id {
                        st.dirty(kind::TRANSACTION, id.clone());
                        st.dirty(kind::TRANSACTION, row_id);
                    }
                    st.tx_by_id
                        .insert(t.record.transaction_id.clone(), key.clone());
                    st.transactions.insert(key, t);
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
                kind::OPERATOR_PIN => {
                    let p: PinRec = serde_json::from_str(&body).map_err(bad)?;
                    st.operator_pins.insert(id.clone(), p);
                }
                kind::CONFIG => {
                    let c: proto::wire::TerminalConfig =
                        serde_json::from_str(&body).map_err(bad)?;
                    let sid = SessionId::new(id.clone())
                        .map_err(|e| (k.clone(), id.clone(), e.to_string()))?;
                    st.configs.insert(sid, c);
                }
                kind::OPERATORS_VERSION => {
                    let v: u64 = serde_json::from_str(&body).map_err(bad)?;
                    let sid = SessionId::new(id.clone())
                        .map_err(|e| (k.clone(), id.clone(), e.to_string()))?;
                    st.operators_versions.insert(sid, v);
                }
                kind::CATALOG => {
                    let c: Catalog = serde_json::from_str(&body).map_err(bad)?;
                    let sid = SessionId::new(id.clone())
                        .map_err(|e| (k.clone(), id.clone(), e.to_string()))?;
                    st.catalogs.insert(sid, c);
                }
                kind::SHIFT => {
                    let r: ShiftRecord = serde_json::from_str(&body).map_err(bad)?;
                    st.shifts.insert((r.terminal_id.clone(), r.shift_no), r);
                }
                kind::TRANSFER => {
                    let t: TransferRec = serde_json::from_str(&body).map_err(bad)?;
                    let key = (t.expected.terminal_id.clone(), t.expected.reference.clone());
                    st.transfers.insert(key, t);
                }
                kind::CREDIT => {
                    let c: CreditRec = serde_json::from_str(&body).map_err(bad)?;
                    st.credit_seq = st.credit_seq.max(c.seq);
                    st.credits.entry(c.session_id.clone()).or_default().push(c);
                }
                kind::TOMBSTONE => match parse_tx_row_id(&id) {
                    Some(k) => {
                        st.tombstones.insert(k);
                    }
                    None => legacy_tombstones.push(id),
                },
                _ => return Err((k, id, "unknown record kind".into())),
            }
        }
        // Rows come back ordered by id, not by arrival.
        for ledger in st.credits.values_mut() {
            ledger.sort_by_key(|c| c.seq);
        }
        for id in legacy_tombstones {
            st.dirty(kind::TOMBSTONE, id.clone());
            let owner = st
                .terminals
                .keys()
                .find(|t| {
                    id.strip_prefix(t.as_str())
                        .is_some_and(|rest| rest.len() > 1 && rest.starts_with('-'))
                })
                .cloned();
            match (owner, Reference::new(id.clone())) {
                (Some(t), Ok(r)) => {
                    st.dirty(kind::TOMBSTONE, tx_row_id(&t, &r));
                    st.tombstones.insert((t, r));
                }
                _ => tracing::warn!(reference = %id, "tombstone of no known terminal dropped"),
            }
        }
        Ok(st)
    }

    fn sorted_records(&self, keep: impl Fn(&TxRec) -> bool) -> Vec<TransactionRecord> {
        let mut v: Vec<&TxRec> = self.transactions.values().filter(|t| keep(t)).collect();
        v.sort_by_key(|t| t.seq);
        v.into_iter().map(|t| t.record.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    /// A state file from before transactions were keyed by terminal: its
    /// rows load under (terminal, reference) and move to their new ids with
    /// the next write; a tombstone no terminal owns is dropped.
    #[test]
    fn legacy_rows_keyed_by_reference_load_per_terminal() {
        let tid = "pos_abc123_001";
        let reference = format!("{tid}-000001");
        let terminal = json!({"terminal_id": tid, "session_id": "s1", "label": "POS 1"});
        let tx = json!({
            "seq": 1, "body_hash": "h",
            "record": {"transaction_id": "txn_1", "reference": reference, "channel": "pos",
                "terminal_id": tid, "session_id": "s1", "kind": "sale", "amount": "10.00",
                "currency": "NGN", "status": "approved", "auth_code": "123456",
                "card": {"brand": "visa", "last4": "1111"}, "offline": false,
                "captured_at": "2026-11-21T10:00:00Z", "received_at": "2026-11-21T10:00:01Z"},
            "answer": {"transaction_id": "txn_1", "reference": reference, "status": "approved",
                "auth_code": "123456"}
        });
        let rows = vec![
            ("terminal".into(), tid.into(), terminal.to_string()),
            ("transaction".into(), reference.clone(), tx.to_string()),
            ("tombstone".into(), format!("{tid}-000002"), "true".into()),
            (
                "tombstone".into(),
                "pos_ffffff_009-000001".into(),
                "true".into(),
            ),
        ];
        let mut st = State::load(rows).unwrap();
        let t = TerminalId::new(tid).unwrap();
        let key = (t.clone(), Reference::new(reference.clone()).unwrap());
        assert!(st.transactions.contains_key(&key));
        assert_eq!(st.tx_by_id.get("txn_1"), Some(&key));
        let stone = (t.clone(), Reference::new(format!("{tid}-000002")).unwrap());
        assert_eq!(st.tombstones.iter().collect::<Vec<_>>(), vec![&stone]);
        let rows: Vec<Row> = st
            .take_effects()
            .dirty
            .iter()
            .map(|(k, id)| st.row(k, id))
            .collect();
        let new_tx = format!("{tid}/{reference}");
        let new_stone = format!("{tid}/{tid}-000002");
        let summary: Vec<(&str, &str, bool)> = rows
            .iter()
            .map(|(k, id, body)| (*k, id.as_str(), body.is_some()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("transaction", reference.as_str(), false),
                ("transaction", new_tx.as_str(), true),
                ("tombstone", format!("{tid}-000002").as_str(), false),
                ("tombstone", new_stone.as_str(), true),
                ("tombstone", "pos_ffffff_009-000001", false),
            ]
        );
    }
}
