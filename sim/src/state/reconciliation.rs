//! A session's reconciliation: totals of its sales, refunds and open
//! payments, and of the approved sales' channels, tips, operators and
//! items; the collection account's unmatched credits beside them.

use std::collections::BTreeMap;

use proto::wire::{
    Channel, CountTotal, ItemTotal, Reconciliation, RecordStatus, Timestamp, TxKind,
};
use proto::{SessionId, Total};

use crate::error::ApiErr;

use super::{State, TxRec};

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
        // Both channels are always listed (SPEC 7.7), zero when unused.
        let mut by_channel: BTreeMap<String, CountTotal> = [Channel::Pos, Channel::Account]
            .into_iter()
            .map(|c| (c.as_str().to_owned(), CountTotal::default()))
            .collect();
        let mut by_terminal: BTreeMap<String, CountTotal> = BTreeMap::new();
        let mut refunds = CountTotal::default();
        let mut tips = CountTotal::default();
        let mut by_operator: BTreeMap<String, CountTotal> = BTreeMap::new();
        let mut by_item: BTreeMap<String, ItemTotal> = BTreeMap::new();
        // In arrival order, so an item's name is the latest one sold under it.
        let mut txs: Vec<&TxRec> = self
            .transactions
            .values()
            .filter(|t| &t.record.session_id == session_id)
            .collect();
        txs.sort_by_key(|t| t.seq);
        for t in txs {
            let r = &t.record;
            match (r.kind, r.status) {
                (TxKind::Sale, RecordStatus::Approved) => {
                    ok += 1;
                    total = total.add(r.amount);
                    by_channel
                        .entry(r.channel.as_str().into())
                        .or_default()
                        .add(r.amount);
                    by_terminal
                        .entry(r.terminal_id.to_string())
                        .or_default()
                        .add(r.amount);
                    if let Some(tip) = r.tip_amount.filter(|t| !t.is_zero()) {
                        tips.add(tip);
                    }
                    if let Some(op) = &r.operator_id {
                        by_operator.entry(op.clone()).or_default().add(r.amount);
                    }
                    for item in r.items.iter().flatten() {
                        by_item.entry(item.item_id.clone()).or_default().add(
                            &item.name,
                            item.qty,
                            item.unit_price,
                        );
                    }
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
            tips,
            by_operator,
            by_item,
            unmatched_credits: self.unmatched_credits(session_id),
            reconciled_at: now,
        })
    }
}
