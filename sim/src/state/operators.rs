//! Operators of a session and the transactions each one took.

use proto::SessionId;
use proto::wire::{CreateOperator, Operator, Timestamp, TransactionRecord};

use crate::error::ApiErr;

use super::{State, kind, short_id};

impl State {
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
}
