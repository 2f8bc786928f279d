//! The end-of-day check: each agent's ledger against the simulator's
//! reconciliation (`GET /v1/reconciliation/:session_id`) and each terminal's
//! statement (`GET /v1/terminals/:tid/transactions`).

use pos_agent::reconcile::Reconciliation;
use store::{Store, TxState};

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
    pos_agent::reconcile::read_ledger(&store)
        .map_err(|e| HarnessError::Agent(format!("reading {}: {e}", path.display())))
}

fn ct(c: &store::CountTotal) -> (u64, u64) {
    (c.count, c.total.0)
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
    // Tips and items of approved sales, over every ledger.
    let mut local_tips = (0u64, 0u64);
    let mut local_items: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    for t in &scene.terminals {
        let txs = ledger(&t.ledger_path())?;
        let sold = store::shift_totals(&txs);
        local_tips = (
            local_tips.0 + sold.tips.count,
            local_tips.1 + sold.tips.total.0,
        );
        for (id, i) in &sold.by_item {
            let e = local_items.entry(id.clone()).or_default();
            *e = (e.0 + i.qty, e.1 + i.total.0);
        }
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
        // The statement, line by line, through the agent's own comparison
        // (`pos-agent reconcile`): every transaction agrees in kind, amount
        // and approval, nothing is left to forward, nothing is extra.
        let statement = scene.backend.statement(&t.id, &t.credentials()?).await?;
        let diff = Reconciliation::compare(&txs, &statement);
        let sales = ct(&diff.local[0]);
        let refunds = ct(&diff.local[1]);
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

        let approved = |c: &[store::CountTotal; 2]| c[0].count + c[1].count;
        report.add(
            format!("{} statement lines (approved)", t.label),
            format!("{} lines", approved(&diff.local)),
            format!("{} lines", approved(&diff.remote)),
        );
        report.add(
            format!("{} statement differences", t.label),
            "none".into(),
            differences(&diff),
        );
    }
    report.add(
        "session approved sales (total_inflow)",
        fmt_ct(local_sales_all),
        fmt_ct((rec.successful_count, rec.total_inflow.0)),
    );
    report.add(
        "session tips",
        fmt_ct(local_tips),
        fmt_ct((rec.tips.count, rec.tips.total.0)),
    );
    let backend_items: std::collections::BTreeMap<String, (u64, u64)> = rec
        .by_item
        .iter()
        .map(|(id, i)| (id.clone(), (i.qty, i.total.0)))
        .collect();
    let items = |m: &std::collections::BTreeMap<String, (u64, u64)>| {
        if m.is_empty() {
            return "none".to_string();
        }
        m.iter()
            .map(|(id, (q, t))| format!("{id} {q}x {}", proto::Total(*t).to_wire()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    report.add(
        "session items sold",
        items(&local_items),
        items(&backend_items),
    );
    report.add(
        "session refunds",
        fmt_ct(local_refunds),
        fmt_ct((rec.refunds.count, rec.refunds.total.0)),
    );
    Ok(report)
}

/// `none`, or the agent's mismatches and what it has not forwarded.
fn differences(diff: &Reconciliation) -> String {
    if diff.is_clean() && diff.pending_forward.is_empty() {
        return "none".into();
    }
    let mut parts: Vec<String> = diff
        .mismatches
        .iter()
        .map(|(reference, problem)| format!("{reference}: {problem}"))
        .collect();
    if !diff.pending_forward.is_empty() {
        parts.push(format!("not forwarded {:?}", diff.pending_forward));
    }
    parts.join("; ")
}
