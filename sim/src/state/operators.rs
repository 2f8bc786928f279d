//! Operators of a session and the transactions each one took.

use proto::wire::{CreateOperator, Operator, TerminalOperator, Timestamp, TransactionRecord};
use proto::{SessionId, TerminalId};

use crate::error::ApiErr;

use super::{PinRec, State, kind, short_id};

impl State {
    /// Creates an operator; `pin` is the hash of the request's PIN, made
    /// by the caller outside the lock ([`hash_new_pin`]).
    pub fn create_operator(
        &mut self,
        session_id: &SessionId,
        req: CreateOperator,
        pin: Option<PinRec>,
        now: Timestamp,
    ) -> Result<Operator, ApiErr> {
        self.known_session(session_id)?;
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
        if let Some(pin) = pin {
            self.operator_pins.insert(op.operator_id.clone(), pin);
            self.dirty(kind::OPERATOR_PIN, op.operator_id.clone());
        }
        self.operators.insert(op.operator_id.clone(), op.clone());
        self.dirty(kind::OPERATOR, op.operator_id.clone());
        self.operators_changed(session_id);
        Ok(op)
    }

    /// The operators of `tid`'s session who can log in on a terminal (those
    /// with a PIN), with their PIN hashes, ordered as [`State::operators_of`].
    pub fn terminal_operators(&self, tid: &TerminalId) -> Result<Vec<TerminalOperator>, ApiErr> {
        let sid = &self.terminal(tid)?.session_id;
        Ok(self
            .operators_of(sid)
            .into_iter()
            .filter_map(|o| {
                let pin = self.operator_pins.get(&o.operator_id)?;
                Some(TerminalOperator {
                    operator_id: o.operator_id,
                    name: o.name,
                    role: o.role,
                    pin_hash: pin.pin_hash.clone(),
                    salt: pin.salt.clone(),
                })
            })
            .collect())
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

/// Checks the PIN of a new operator and hashes it under a fresh random salt
/// (SPEC 7.2): 422 `invalid_pin` unless it is 4 to 6 digits.
pub fn hash_new_pin(req: &CreateOperator) -> Result<Option<PinRec>, ApiErr> {
    let Some(pin) = &req.pin else {
        return Ok(None);
    };
    let invalid = |e: proto::pin::PinError| ApiErr::unprocessable("invalid_pin", e.to_string());
    pin.validate().map_err(invalid)?;
    let salt = super::random_hex(proto::pin::SALT_BYTES);
    let pin_hash = proto::pin::pin_hash(pin, &salt).map_err(invalid)?;
    Ok(Some(PinRec { salt, pin_hash }))
}
