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
use crate::table::{Align, Table, max_widths};

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
        "net": net_wire(r.totals.sales.total, r.totals.refunds.total),
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
    let mut sections = Sections::default();
    let totals = sections.add("");
    for (name, c) in [
        ("sales", &t.sales),
        ("refunds", &t.refunds),
        ("declined", &t.declined),
        ("tips", &t.tips),
        ("online", &t.online),
        ("offline", &t.offline),
    ] {
        row(totals, name, c.count, c.total);
    }
    totals.row([
        "net (sales - refunds)",
        "",
        &net(t.sales.total, t.refunds.total).1,
    ]);
    let ops = sections.add("by operator");
    for (op, c) in &t.by_operator {
        row(ops, op, c.count, c.total);
    }
    items_rows(sections.add("by item"), t);
    out.push_str(&sections.render());
    out
}

/// Sections of name/count/total rows, their columns aligned across all.
#[derive(Default)]
struct Sections(Vec<(String, Table)>);

impl Sections {
    fn add(&mut self, title: &str) -> &mut Table {
        self.0.push((
            title.to_owned(),
            Table::new(&[Align::Left, Align::Right, Align::Right, Align::Left]),
        ));
        let last = self.0.len() - 1;
        &mut self.0[last].1
    }

    /// Each section after a blank line: its title (if any), `(none)` when
    /// empty, its rows indented by two.
    fn render(&self) -> String {
        let tables: Vec<&Table> = self.0.iter().map(|(_, t)| t).collect();
        let widths = max_widths(&tables);
        let mut out = String::new();
        for (title, t) in &self.0 {
            out.push('\n');
            if !title.is_empty() {
                out.push_str(title);
                out.push('\n');
            }
            if t.is_empty() {
                out.push_str("  (none)\n");
            }
            out.push_str(&t.render_with("  ", &widths));
        }
        out
    }
}

fn row(t: &mut Table, name: &str, count: u64, total: proto::Total) {
    t.row([
        name.to_owned(),
        count.to_string(),
        total.display(Currency::Ngn),
    ]);
}

/// Sales minus refunds, in minor units and as text (`NGN -1,000.00` when
/// refunds of earlier sales exceed the sales).
pub fn net(sales: proto::Total, refunds: proto::Total) -> (i128, String) {
    let minor = i128::from(sales.0) - i128::from(refunds.0);
    let abs = proto::Total(u64::try_from(minor.unsigned_abs()).unwrap_or(u64::MAX));
    let text = abs.display(Currency::Ngn);
    let text = if minor < 0 {
        text.replacen(' ', " -", 1)
    } else {
        text
    };
    (minor, text)
}

/// `net` in the wire's decimal form, signed.
fn net_wire(sales: proto::Total, refunds: proto::Total) -> String {
    let (minor, _) = net(sales, refunds);
    let abs = proto::Total(u64::try_from(minor.unsigned_abs()).unwrap_or(u64::MAX)).to_wire();
    if minor < 0 { format!("-{abs}") } else { abs }
}

fn items_rows(t: &mut Table, totals: &ShiftTotals) {
    for (id, i) in &totals.by_item {
        t.row([
            i.name.clone(),
            i.qty.to_string(),
            i.total.display(Currency::Ngn),
            format!("({id})"),
        ]);
    }
}

/// `{sales, refunds, net, declined}` of approved sales, approved refunds
/// and declined payments, each apart: a refund never adds to the sales, a
/// declined payment never to the takings.
fn takings_json(t: &ShiftTotals) -> serde_json::Value {
    let ct = |c: &proto::wire::CountTotal| serde_json::json!({"count": c.count, "total": c.total.to_wire()});
    serde_json::json!({
        "sales": ct(&t.sales),
        "refunds": ct(&t.refunds),
        "net": net_wire(t.sales.total, t.refunds.total),
        "declined": ct(&t.declined),
    })
}

fn count_total(c: &CountTotal) -> serde_json::Value {
    serde_json::json!({"count": c.count, "total": c.total.to_wire()})
}

/// `{terminal_id, session_id, currency, by_status, by_kind, by_operator,
/// by_channel, by_item, tips}` (items and tips of approved sales).
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
        "by_channel": by(totals.by_channel.iter().map(|(ch, c)| (ch.as_str().to_owned(), count_total(c))).collect()),
        "takings": takings_json(sales),
        "by_item": sales.by_item,
        "tips": sales.tips,
    })
}

/// The header line, the takings (sales, refunds, net, declined, each
/// apart) and the sections by status, kind, operator and item; every line
/// ends with a newline. Approved sales by terminal come last when the
/// ledger holds more than one terminal's (a board paired again).
pub fn to_text(
    terminal: &TerminalConfig,
    (totals, sales): &(Totals, ShiftTotals),
    by_terminal: &BTreeMap<String, CountTotal>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "terminal {}  session {}",
        or_unpaired(terminal.id.as_ref()),
        or_unpaired(terminal.session_id.as_ref())
    );
    let mut sections = Sections::default();
    let takings = sections.add("takings (approved; declined apart)");
    row(takings, "sales", sales.sales.count, sales.sales.total);
    row(takings, "refunds", sales.refunds.count, sales.refunds.total);
    takings.row([
        "net (sales - refunds)",
        "",
        &net(sales.sales.total, sales.refunds.total).1,
    ]);
    row(
        takings,
        "declined",
        sales.declined.count,
        sales.declined.total,
    );
    row(takings, "tips", sales.tips.count, sales.tips.total);
    let status = sections.add("by status (sales and refunds)");
    for (s, c) in &totals.by_state {
        row(status, s.as_str(), c.count, c.total);
    }
    let kind = sections.add("by kind (any status)");
    for (k, c) in &totals.by_kind {
        row(kind, k.as_str(), c.count, c.total);
    }
    let ops = sections.add("by operator");
    for (o, c) in &totals.by_operator {
        row(ops, o.as_deref().unwrap_or("(none)"), c.count, c.total);
    }
    let channels = sections.add("by channel (card or bank transfer; any status)");
    for (ch, c) in &totals.by_channel {
        row(channels, ch.as_str(), c.count, c.total);
    }
    items_rows(sections.add("by item"), sales);
    if by_terminal.len() > 1 {
        let t = sections.add("approved sales by terminal (sessions this board served)");
        for (name, c) in by_terminal {
            row(t, name, c.count, c.total);
        }
    }
    out.push_str(&sections.render());
    out
}
