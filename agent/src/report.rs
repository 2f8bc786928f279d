//! `pos-agent report`: the ledger's totals by status, kind and operator, as
//! text for a technician or as JSON. Reading is [`read`]; the two renderings
//! ([`to_json`], [`to_text`]) are pure.

use std::fmt::Write as _;

use proto::Currency;
use store::{CountTotal, Store, StoreError, Totals};

use crate::config::TerminalConfig;

/// The ledger's totals.
pub fn read(store: &Store) -> Result<Totals, StoreError> {
    store.totals()
}

fn count_total(c: &CountTotal) -> serde_json::Value {
    serde_json::json!({"count": c.count, "total": c.total.to_wire()})
}

/// `{terminal_id, session_id, currency, by_status, by_kind, by_operator}`.
pub fn to_json(terminal: &TerminalConfig, totals: &Totals) -> serde_json::Value {
    let by = |rows: Vec<(String, serde_json::Value)>| {
        serde_json::Value::Object(rows.into_iter().collect())
    };
    serde_json::json!({
        "terminal_id": terminal.id.as_str(),
        "session_id": terminal.session_id.as_str(),
        "currency": Currency::Ngn.code(),
        "by_status": by(totals.by_state.iter().map(|(s, c)| (s.as_str().to_owned(), count_total(c))).collect()),
        "by_kind": by(totals.by_kind.iter().map(|(k, c)| (k.as_str().to_owned(), count_total(c))).collect()),
        "by_operator": by(totals.by_operator.iter().map(|(o, c)| (o.clone().unwrap_or_else(|| "-".into()), count_total(c))).collect()),
    })
}

/// The header line and three sections; every line ends with a newline.
pub fn to_text(terminal: &TerminalConfig, totals: &Totals) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "terminal {}  session {}",
        terminal.id, terminal.session_id
    );
    let mut section = |title: &str, rows: Vec<(String, &CountTotal)>| {
        let _ = writeln!(out, "\n{title}");
        if rows.is_empty() {
            let _ = writeln!(out, "  (none)");
        }
        for (name, c) in rows {
            let _ = writeln!(
                out,
                "  {:<18} {:>6}  {:>24}",
                name,
                c.count,
                c.total.display(Currency::Ngn)
            );
        }
    };
    section(
        "by status",
        totals
            .by_state
            .iter()
            .map(|(s, c)| (s.as_str().to_owned(), c))
            .collect(),
    );
    section(
        "by kind",
        totals
            .by_kind
            .iter()
            .map(|(k, c)| (k.as_str().to_owned(), c))
            .collect(),
    );
    section(
        "by operator",
        totals
            .by_operator
            .iter()
            .map(|(o, c)| (o.clone().unwrap_or_else(|| "(none)".into()), c))
            .collect(),
    );
    out
}
