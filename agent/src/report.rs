//! `pos-agent report`: the ledger's totals by status, kind, operator and
//! item, as text for a technician or as JSON; with `--shift current|N` a
//! shift's X/Z report (SPEC 7.5). Reading is [`read`] / [`read_shift`]; the
//! renderings ([`to_json`], [`to_text`], [`shift_to_json`],
//! [`shift_to_text`]) are pure.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use proto::Currency;
use proto::wire::ShiftTotals;
use store::{CountTotal, ShiftReport, Store, StoreError, Totals};

use crate::config::TerminalConfig;

/// The ledger's totals, and the items and tips of its approved sales.
pub fn read(store: &Store) -> Result<(Totals, ShiftTotals), StoreError> {
    let all = store.list_transactions(store::Page {
        offset: 0,
        limit: u32::MAX,
    })?;
    Ok((store.totals()?, store::shift_totals(&all)))
}

/// Approved sales (online or offline) by the terminal whose reference they
/// carry (`<terminal_id>-<sequence>`): a board paired again for another
/// event keeps one ledger, and each session's terminal appears here on its
/// own (SPEC 8.1).
pub fn sales_by_terminal(store: &Store) -> Result<BTreeMap<String, CountTotal>, StoreError> {
    let all = store.list_transactions(store::Page {
        offset: 0,
        limit: u32::MAX,
    })?;
    let mut out: BTreeMap<String, CountTotal> = BTreeMap::new();
    for tx in all.iter().filter(|t| {
        t.kind == store::TxKind::Sale
            && matches!(
                t.state,
                store::TxState::Approved | store::TxState::OfflineApproved
            )
    }) {
        let r = tx.reference.as_str();
        let terminal = r.rsplit_once('-').map_or(r, |(t, _)| t);
        let e = out.entry(terminal.to_owned()).or_default();
        e.count += 1;
        e.total = e.total.add(tx.amount);
    }
    Ok(out)
}

/// `{terminal_id: {count, total}}` of [`sales_by_terminal`].
pub fn by_terminal_json(by: &BTreeMap<String, CountTotal>) -> serde_json::Value {
    serde_json::Value::Object(
        by.iter()
            .map(|(t, c)| (t.clone(), count_total(c)))
            .collect(),
    )
}

/// Which shift `--shift` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShiftSel {
    Current,
    Number(u64),
}

impl std::fmt::Display for ShiftSel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShiftSel::Current => f.write_str("current"),
            ShiftSel::Number(n) => write!(f, "{n}"),
        }
    }
}

impl std::str::FromStr for ShiftSel {
    type Err = String;

    fn from_str(s: &str) -> Result<ShiftSel, String> {
        if s.eq_ignore_ascii_case("current") {
            return Ok(ShiftSel::Current);
        }
        match s.parse::<u64>() {
            Ok(n) if n >= 1 => Ok(ShiftSel::Number(n)),
            _ => Err(format!(
                "{s:?} is not a shift: give `current` or a shift number from 1"
            )),
        }
    }
}

/// A shift's report: the current one so far (X) or a closed one (Z).
/// `None` for a number never used.
pub fn read_shift(store: &Store, which: ShiftSel) -> Result<Option<ShiftReport>, StoreError> {
    match which {
        ShiftSel::Current => store.x_report().map(Some),
        ShiftSel::Number(n) => store.shift_report(n),
    }
}

/// An id, or `-` on a terminal that is not paired now (its ledger stays
/// readable after unpairing, SPEC 8.1).
fn or_unpaired(id: Option<&impl std::fmt::Display>) -> String {
    id.map_or_else(|| "-".to_string(), |i| i.to_string())
}

fn millis_json(ms: Option<i64>) -> serde_json::Value {
    ms.and_then(|m| crate::mapping::timestamp(crate::core::UnixMillis(m)).ok())
        .map_or(serde_json::Value::Null, |t| serde_json::json!(t))
}

/// `{terminal_id, session_id, currency, kind, shift_no, opened_at,
/// closed_at, closed_by, totals}`; `totals` as the backend receives it.
pub fn shift_to_json(terminal: &TerminalConfig, r: &ShiftReport) -> serde_json::Value {
    serde_json::json!({
        "terminal_id": terminal.id.as_ref().map(|t| t.as_str()),
        "session_id": terminal.session_id.as_ref().map(|s| s.as_str()),
        "currency": Currency::Ngn.code(),
        "kind": if r.closed_at.is_some() { "Z" } else { "X" },
        "shift_no": r.shift_no,
        "opened_at": millis_json(r.opened_at),
        "closed_at": millis_json(r.closed_at),
        "closed_by": r.closed_by,
        "totals": r.totals,
    })
}

/// The report as a technician reads it.
pub fn shift_to_text(terminal: &TerminalConfig, r: &ShiftReport) -> String {
    let mut out = String::new();
    let kind = if r.closed_at.is_some() { "Z" } else { "X" };
    let _ = writeln!(
        out,
        "{kind} report  shift {}  terminal {}  session {}",
        r.shift_no,
        or_unpaired(terminal.id.as_ref()),
        or_unpaired(terminal.session_id.as_ref())
    );
    let when = |m: Option<i64>| match millis_json(m) {
        serde_json::Value::String(s) => s,
        _ => "-".to_string(),
    };
    let _ = writeln!(
        out,
        "opened {}  closed {}",
        when(r.opened_at),
        when(r.closed_at)
    );
    let t = &r.totals;
    let line = |out: &mut String, name: &str, c: &proto::wire::CountTotal| {
        let _ = writeln!(
            out,
            "  {:<18} {:>6}  {:>24}",
            name,
            c.count,
            c.total.display(Currency::Ngn)
        );
    };
    let _ = writeln!(out);
    for (name, c) in [
        ("sales", &t.sales),
        ("refunds", &t.refunds),
        ("declined", &t.declined),
        ("tips", &t.tips),
        ("online", &t.online),
        ("offline", &t.offline),
    ] {
        line(&mut out, name, c);
    }
    heading(&mut out, "by operator", t.by_operator.is_empty());
    for (op, c) in &t.by_operator {
        line(&mut out, op, c);
    }
    items_text(&mut out, t);
    out
}

/// A section's title after a blank line, and `(none)` when it is empty.
fn heading(out: &mut String, title: &str, empty: bool) {
    let _ = writeln!(out, "\n{title}");
    if empty {
        let _ = writeln!(out, "  (none)");
    }
}

fn items_text(out: &mut String, t: &ShiftTotals) {
    heading(out, "by item", t.by_item.is_empty());
    for (id, i) in &t.by_item {
        let _ = writeln!(
            out,
            "  {:<18} {:>6}  {:>24}  ({id})",
            i.name,
            i.qty,
            i.total.display(Currency::Ngn)
        );
    }
}

fn count_total(c: &CountTotal) -> serde_json::Value {
    serde_json::json!({"count": c.count, "total": c.total.to_wire()})
}

/// `{terminal_id, session_id, currency, by_status, by_kind, by_operator,
/// by_item, tips}` (items and tips of approved sales).
pub fn to_json(
    terminal: &TerminalConfig,
    (totals, sales): &(Totals, ShiftTotals),
) -> serde_json::Value {
    let by = |rows: Vec<(String, serde_json::Value)>| {
        serde_json::Value::Object(rows.into_iter().collect())
    };
    serde_json::json!({
        "terminal_id": terminal.id.as_ref().map(|t| t.as_str()),
        "session_id": terminal.session_id.as_ref().map(|s| s.as_str()),
        "currency": Currency::Ngn.code(),
        "by_status": by(totals.by_state.iter().map(|(s, c)| (s.as_str().to_owned(), count_total(c))).collect()),
        "by_kind": by(totals.by_kind.iter().map(|(k, c)| (k.as_str().to_owned(), count_total(c))).collect()),
        "by_operator": by(totals.by_operator.iter().map(|(o, c)| (o.clone().unwrap_or_else(|| "-".into()), count_total(c))).collect()),
        "by_item": sales.by_item,
        "tips": sales.tips,
    })
}

/// The header line and three sections; every line ends with a newline.
pub fn to_text(terminal: &TerminalConfig, (totals, sales): &(Totals, ShiftTotals)) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "terminal {}  session {}",
        or_unpaired(terminal.id.as_ref()),
        or_unpaired(terminal.session_id.as_ref())
    );
    let mut section = |title: &str, rows: Vec<(String, &CountTotal)>| {
        heading(&mut out, title, rows.is_empty());
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
    let _ = writeln!(
        out,
        "\ntips (approved sales)\n  {:<18} {:>6}  {:>24}",
        "tips",
        sales.tips.count,
        sales.tips.total.display(Currency::Ngn)
    );
    items_text(&mut out, sales);
    out
}
