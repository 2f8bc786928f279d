//! A session's reconciliation: totals of its sales, refunds and open payments.

use std::collections::BTreeMap;

use proto::wire::{CountTotal, Reconciliation, RecordStatus, Timestamp, TxKind};
use proto::{SessionId, Total};

use crate::error::ApiErr;

use super::State;

impl State {
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
            tips: CountTotal::default(),
            by_operator: BTreeMap::new(),
            by_item: BTreeMap::new(),
            reconciled_at: now,
        })
    }
}
