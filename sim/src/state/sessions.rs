//! Kler sessions: creation, the served view (effective status, live
//! terminal statuses), close and cancel.

use proto::wire::{
    Collection, CollectionAccount, CommandBody, CreateSession, PosTerminal, Session, SessionStatus,
    TerminalStatus, Timestamp, WebhookEventType,
};
use proto::{SessionId, TerminalId};
use serde_json::Value;

use crate::error::ApiErr;

use super::{Liveness, State, TerminalRec, kind, sim_id};

impl State {
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
                        parked: 0,
                        agent_state: None,
                        metrics: None,
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
}
