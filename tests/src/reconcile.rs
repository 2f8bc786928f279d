//! The end-of-day check: each agent's ledger against the simulator's
//! reconciliation (`GET /v1/reconciliation/:session_id`) and each terminal's
//! statement (`GET /v1/terminals/:tid/transactions`).

use std::collections::BTreeMap;

use proto::wire::{RecordStatus, TxKind};
use store::{Page, Store, TxState};

use crate::error::{HarnessError, Result};
use crate::scenario::Scene;

/// One comparison and whether it matched.
#[derive(Debug, Clone)]
pub struct Line {
    pub what: String,
    pub local: String,
    pub backend: String,
    pub matches: bool,
}

/// The outcome of the comparison.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub lines: Vec<Line>,
}

impl Report {
    pub fn all_match(&self) -> bool {
        self.lines.iter().all(|l| l.matches)
    }

    fn add(&mut self, what: impl Into<String>, local: String, backend: String) {
        let matches = local == backend;
        self.lines.push(Line {
            what: what.into(),
            local,
            backend,
            matches,
        });
    }

    /// A table, one line per comparison.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for l in &self.lines {
            s.push_str(&format!(
                "  {:<5} {:<44} ledger {:<28} backend {}\n",
                if l.matches { "ok" } else { "DIFF" },
                l.what,
                l.local,
                l.backend
            ));
        }
        s
    }
}

/// Every transaction in a ledger (read after the agent stopped).
pub fn ledger(path: &std::path::Path) -> Result<Vec<store::Transaction>> {
    let store = Store::open(path).map_err(|e| {
        HarnessError::Agent(format!("cannot open the ledger {}: {e}", path.display()))
    })?;
    let mut all = Vec::new();
    loop {
        let page = store
            .list_transactions(Page {
                offset: all.len() as u64,
                limit: 500,
            })
            .map_err(|e| HarnessError::Agent(format!("reading {}: {e}", path.display())))?;
        let n = page.len();
        all.extend(page);
        if n < 500 {
            return Ok(all);
        }
    }
}

fn count_total<'a>(it: impl Iterator<Item = &'a store::Transaction>) -> (u64, u64) {
    it.fold((0, 0), |(n, t), x| (n + 1, t + x.amount.minor()))
}

fn fmt_ct((n, t): (u64, u64)) -> String {
    format!("{n} / {}", proto::Total(t).to_wire())
}

/// Compares the ledgers of the scene's (stopped) agents with the backend.
pub async fn reconcile(scene: &Scene) -> Result<Report> {
    let mut report = Report::default();
    let rec = scene.backend.reconciliation(scene.session_id()).await?;
    let mut local_refunds = (0u64, 0u64);
    let mut local_sales_all = (0u64, 0u64);
    for t in &scene.terminals {
        let txs = ledger(&t.ledger_path())?;
        let unsettled: Vec<String> = txs
            .iter()
            .filter(|x| {
                matches!(
                    x.state,
                    TxState::Pending
                        | TxState::Authorizing
                        | TxState::OfflineApproved
                        | TxState::ReversalPending
                )
            })
            .map(|x| format!("{} {}", x.reference, x.state.as_str()))
            .collect();
        report.add(
            format!("{} unsettled transactions", t.label),
            format!("{unsettled:?}"),
            "[]".into(),
        );
        let sales = count_total(
            txs.iter()
                .filter(|x| x.kind == TxKind::Sale && x.state.is_approved()),
        );
        let refunds = count_total(
            txs.iter()
                .filter(|x| x.kind == TxKind::Refund && x.state.is_approved()),
        );
        local_sales_all = (local_sales_all.0 + sales.0, local_sales_all.1 + sales.1);
        local_refunds = (local_refunds.0 + refunds.0, local_refunds.1 + refunds.1);
        let by_terminal = rec
            .by_terminal
            .get(t.id.as_str())
            .map(|c| (c.count, c.total.0))
            .unwrap_or((0, 0));
        report.add(
            format!("{} approved sales (reconciliation)", t.label),
            fmt_ct(sales),
            fmt_ct(by_terminal),
        );

        // The statement, line by line: every approved local transaction is
        // approved there with the same amount and kind, and nothing more.
        let statement = scene.backend.statement(&t.id, &t.credentials()?).await?;
        let local: BTreeMap<String, (String, u64)> = txs
            .iter()
            .filter(|x| x.state.is_approved())
            .map(|x| {
                (
                    x.reference.to_string(),
                    (x.kind.as_str().to_owned(), x.amount.minor()),
                )
            })
            .collect();
        let remote: BTreeMap<String, (String, u64)> = statement
            .iter()
            .filter(|r| r.status == RecordStatus::Approved)
            .map(|r| {
                (
                    r.reference.to_string(),
                    (
                        match r.kind {
                            TxKind::Sale => "sale",
                            TxKind::Refund => "refund",
                        }
                        .to_owned(),
                        r.amount.minor(),
                    ),
                )
            })
            .collect();
        let missing: Vec<&String> = local.keys().filter(|k| !remote.contains_key(*k)).collect();
        let extra: Vec<&String> = remote.keys().filter(|k| !local.contains_key(*k)).collect();
        let differ: Vec<&String> = local
            .iter()
            .filter(|(k, v)| remote.get(*k).is_some_and(|r| r != *v))
            .map(|(k, _)| k)
            .collect();
        report.add(
            format!("{} statement lines (approved)", t.label),
            format!("{} lines", local.len()),
            format!("{} lines", remote.len()),
        );
        report.add(
            format!("{} statement differences", t.label),
            "none".into(),
            if missing.is_empty() && extra.is_empty() && differ.is_empty() {
                "none".into()
            } else {
                format!("missing {missing:?}, extra {extra:?}, different {differ:?}")
            },
        );
    }
    report.add(
        "session approved sales (total_inflow)",
        fmt_ct(local_sales_all),
        fmt_ct((rec.successful_count, rec.total_inflow.0)),
    );
    report.add(
        "session refunds",
        fmt_ct(local_refunds),
        fmt_ct((rec.refunds.count, rec.refunds.total.0)),
    );
    Ok(report)
}
