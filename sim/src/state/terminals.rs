//! Terminals: provisioning, credentials, status and listing, heartbeats and
//! statements.

use proto::signing::{Credentials, Secret};
use proto::wire::{
    AgentState, Heartbeat, RecordStatus, SessionStatus, TerminalInfo, TerminalStatus, Timestamp,
    TransactionRecord,
};
use proto::{SessionId, TerminalId};

use crate::error::ApiErr;

use super::{Liveness, PaymentRec, State, StoredCreds, TerminalRec, kind, random_hex};

impl State {
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

    /// The session a terminal belongs to, if the terminal exists.
    pub fn terminal_session(&self, id: &TerminalId) -> Option<&SessionId> {
        self.terminals.get(id).map(|t| &t.session_id)
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
            parked: t.parked,
            metrics: t.metrics,
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
        t.parked = hb.parked;
        t.agent_state = Some(hb.state);
        // An older agent's heartbeat without one keeps the last summary.
        if hb.metrics.is_some() {
            t.metrics = hb.metrics;
        }
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
}
