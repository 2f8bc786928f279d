//! Closed shifts (SPEC 7.5): a terminal's Z reports, idempotent by
//! `shift_no`, and a session's list of them.

use proto::wire::{ShiftRecord, ShiftSubmission, Timestamp, codes};
use proto::{SessionId, TerminalId};

use crate::error::ApiErr;

use super::{State, kind, shift_row_id};

impl State {
    /// Records a closed shift of `tid`. Returns the record and whether it
    /// was already there (the same shift number with the same times and
    /// totals: a replay); the same number with anything else is 409
    /// `idempotency_conflict`.
    pub fn record_shift(
        &mut self,
        tid: &TerminalId,
        sub: ShiftSubmission,
        now: Timestamp,
    ) -> Result<(ShiftRecord, bool), ApiErr> {
        if sub.shift_no == 0 {
            return Err(ApiErr::unprocessable(
                codes::INVALID_REQUEST,
                "shift_no starts at 1",
            ));
        }
        if sub.closed_at < sub.opened_at {
            return Err(ApiErr::unprocessable(
                codes::INVALID_REQUEST,
                "closed_at is before opened_at",
            ));
        }
        let sid = self.terminal(tid)?.session_id.clone();
        let key = (tid.clone(), sub.shift_no);
        if let Some(known) = self.shifts.get(&key) {
            let same = known.opened_at == sub.opened_at
                && known.closed_at == sub.closed_at
                && known.totals == sub.totals;
            return if same {
                Ok((known.clone(), true))
            } else {
                Err(ApiErr::conflict(
                    codes::IDEMPOTENCY_CONFLICT,
                    format!(
                        "shift {} was submitted with other times or totals",
                        sub.shift_no
                    ),
                ))
            };
        }
        let record = ShiftRecord {
            terminal_id: tid.clone(),
            session_id: sid,
            shift_no: sub.shift_no,
            opened_at: sub.opened_at,
            closed_at: sub.closed_at,
            totals: sub.totals,
            received_at: now,
        };
        self.shifts.insert(key, record.clone());
        self.dirty(kind::SHIFT, shift_row_id(tid, sub.shift_no));
        Ok((record, false))
    }

    /// The shifts of a session's terminals, by terminal, then shift number.
    pub fn shifts_of(&self, sid: &SessionId) -> Result<Vec<ShiftRecord>, ApiErr> {
        self.known_session(sid)?;
        let mut v: Vec<&ShiftRecord> = self
            .shifts
            .values()
            .filter(|s| &s.session_id == sid)
            .collect();
        v.sort_by(|a, b| (&a.terminal_id, a.shift_no).cmp(&(&b.terminal_id, b.shift_no)));
        Ok(v.into_iter().cloned().collect())
    }
}
