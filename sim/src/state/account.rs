//! The session's collection account (SPEC 7.7), shaped like a bank's
//! virtual-account API: its ledger of credits (oldest first, each with the
//! balance before and after it), the sandbox credit that simulates the
//! bank, the balance and the statement.

use proto::wire::{
    AccountBalance, CreditStatus, Payer, SandboxTransfer, StatementEntry, StatementFilter,
    Timestamp, TransferStatus,
};
use proto::{SessionId, Total};
use serde::{Deserialize, Serialize};

use crate::error::ApiErr;

use super::transfers::transfer_codes::{ACCOUNT_NOT_FOUND, NO_COLLECTION_ACCOUNT};
use super::{State, kind, random_hex, short_id};

/// Longest narration, payer name or payer bank (SPEC 7.7).
const MAX_TEXT: usize = proto::wire::MAX_TRANSFER_TEXT_CHARS;

/// One credit of a session's account, in arrival order (`seq`, over all
/// sessions).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreditRec {
    pub session_id: SessionId,
    pub seq: u64,
    pub entry: StatementEntry,
}

/// The state file id of a credit: `<session_id>/<seq>`.
pub(super) fn credit_row_id(sid: &SessionId, seq: u64) -> String {
    format!("{sid}/{seq}")
}

pub(super) fn parse_credit_row_id(id: &str) -> Option<(SessionId, u64)> {
    let (s, n) = id.split_once('/')?;
    Some((SessionId::new(s).ok()?, n.parse().ok()?))
}

fn text(field: &str, v: &str, min: usize) -> Result<(), ApiErr> {
    let n = v.chars().count();
    if n < min || n > MAX_TEXT {
        let range = if min == 0 {
            format!("at most {MAX_TEXT}")
        } else {
            format!("{min}-{MAX_TEXT}")
        };
        return Err(ApiErr::unprocessable(
            format!("invalid_{field}"),
            format!("{field} must be {range} characters"),
        ));
    }
    Ok(())
}

impl State {
    /// The session whose collection account has this number.
    fn session_of_account(&self, account_number: &str) -> Option<SessionId> {
        self.sessions
            .values()
            .find(|s| {
                s.collection_account
                    .as_ref()
                    .is_some_and(|a| a.account_number == account_number)
            })
            .map(|s| s.session_id.clone())
    }

    /// `POST /v1/sandbox/transfers`: the bank credits a collection account.
    pub fn sandbox_credit(
        &mut self,
        req: SandboxTransfer,
        now: Timestamp,
    ) -> Result<StatementEntry, ApiErr> {
        let amount = crate::body::positive(req.amount)?;
        text("narration", &req.narration, 0)?;
        text("payer_name", &req.payer_name, 1)?;
        text("payer_bank", &req.payer_bank, 1)?;
        if let Some(n) = &req.payer_account_number {
            text("payer_account_number", n, 1)?;
        }
        let sid = self
            .session_of_account(&req.account_number)
            .ok_or_else(|| {
                ApiErr::new(
                    axum::http::StatusCode::NOT_FOUND,
                    ACCOUNT_NOT_FOUND,
                    format!(
                        "no session has collection account {:?}",
                        req.account_number.chars().take(64).collect::<String>()
                    ),
                )
            })?;
        let payer = Payer {
            name: req.payer_name,
            bank: req.payer_bank,
            account_number: req.payer_account_number,
        };
        let previous_balance = self.collected(&sid);
        let entry_id = short_id("ent_");
        let (status, to) = self.match_credit(&sid, &req.narration, amount, &payer, &entry_id, now);
        let entry = StatementEntry {
            entry_id,
            status,
            reference: format!("trf_{}", random_hex(8)),
            amount_collected: amount,
            previous_balance,
            new_balance: previous_balance.add(amount),
            currency: req.currency,
            payer,
            narration: req.narration,
            created_at: now,
            terminal_id: to.as_ref().map(|k| k.0.clone()),
            matched_reference: to.map(|k| k.1),
        };
        self.credit_seq += 1;
        let seq = self.credit_seq;
        self.credits
            .entry(sid.clone())
            .or_default()
            .push(CreditRec {
                session_id: sid.clone(),
                seq,
                entry: entry.clone(),
            });
        self.dirty(kind::CREDIT, credit_row_id(&sid, seq));
        tracing::info!(
            session = %sid,
            reference = %entry.reference,
            status = status.as_str(),
            "account credited"
        );
        Ok(entry)
    }

    /// Everything credited to the session's account.
    fn collected(&self, sid: &SessionId) -> Total {
        self.credits
            .get(sid)
            .and_then(|c| c.last())
            .map_or(Total::default(), |c| c.entry.new_balance)
    }

    /// The session's account number, or 404 / 409 `no_collection_account`.
    fn account_number(&self, sid: &SessionId) -> Result<String, ApiErr> {
        let s = self
            .sessions
            .get(sid)
            .ok_or_else(|| ApiErr::not_found("session", sid.as_str()))?;
        s.collection_account
            .as_ref()
            .map(|a| a.account_number.clone())
            .ok_or_else(|| {
                ApiErr::conflict(
                    NO_COLLECTION_ACCOUNT,
                    "this session has no collection account (collection.account was false)",
                )
            })
    }

    /// `GET /v1/sessions/:id/account/balance`: `settled` counts every
    /// credit (partial ones too) of a transfer now settled, `unmatched`
    /// the credits no transfer took. Partial credits of a transfer that
    /// is still open, or was cancelled or expired before the rest came,
    /// are in neither.
    pub fn account_balance(&self, sid: &SessionId) -> Result<AccountBalance, ApiErr> {
        let account_number = self.account_number(sid)?;
        let currency = self
            .sessions
            .get(sid)
            .map(|s| s.currency)
            .unwrap_or_default();
        let (mut settled, mut unmatched) = (Total::default(), Total::default());
        for c in self.credits.get(sid).into_iter().flatten() {
            let e = &c.entry;
            match e.status {
                CreditStatus::Unmatched => unmatched = unmatched.add(e.amount_collected),
                CreditStatus::Matched | CreditStatus::Partial => {
                    let paid = e
                        .terminal_id
                        .clone()
                        .zip(e.matched_reference.clone())
                        .and_then(|k| self.transfers.get(&k))
                        .is_some_and(|t| t.expected.status == TransferStatus::Settled);
                    if paid {
                        settled = settled.add(e.amount_collected);
                    }
                }
            }
        }
        Ok(AccountBalance {
            account_number,
            currency,
            collected: self.collected(sid),
            settled,
            unmatched,
        })
    }

    /// `POST /v1/sessions/:id/account/statement`: the credits, oldest
    /// first, that pass the filter.
    pub fn account_statement(
        &self,
        sid: &SessionId,
        f: &StatementFilter,
    ) -> Result<Vec<StatementEntry>, ApiErr> {
        self.account_number(sid)?;
        Ok(self
            .credits
            .get(sid)
            .into_iter()
            .flatten()
            .map(|c| &c.entry)
            .filter(|e| f.currency.is_none_or(|c| e.currency == c))
            .filter(|e| f.status.is_none_or(|s| e.status == s))
            .filter(|e| {
                f.reference.as_deref().is_none_or(|r| {
                    e.reference == r
                        || e.matched_reference
                            .as_ref()
                            .is_some_and(|m| m.as_str() == r)
                })
            })
            .cloned()
            .collect())
    }

    /// The unmatched credits of a session's account: `(count, total)` for
    /// the reconciliation.
    pub(super) fn unmatched_credits(&self, sid: &SessionId) -> proto::wire::CountTotal {
        let mut ct = proto::wire::CountTotal::default();
        for c in self.credits.get(sid).into_iter().flatten() {
            if c.entry.status == CreditStatus::Unmatched {
                ct.add(c.entry.amount_collected);
            }
        }
        ct
    }
}
