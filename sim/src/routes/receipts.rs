//! SPEC 7.4 digital receipts: `GET /r/:transaction_id` and
//! `GET /r/ref/:reference` as small self-contained HTML pages (no external
//! assets), the `receipt_url` of every transaction answer.

use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use proto::wire::{RecordStatus, TransactionRecord, TxKind};
use proto::{Currency, Money, Reference};

use super::{P, S};

/// The receipt URL of `transaction_id`, on the address the terminal used.
pub(super) fn url(headers: &HeaderMap, transaction_id: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    format!("http://{host}/r/{transaction_id}")
}

/// What a receipt shows besides the record.
struct Context {
    event: String,
    terminal_label: String,
    operator: Option<String>,
}

fn escape(s: &str) -> String {
    s.chars()
        .fold(String::with_capacity(s.len()), |mut out, c| {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&#39;"),
                c => out.push(c),
            }
            out
        })
}

fn ngn(m: Money) -> String {
    m.display(Currency::Ngn)
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>\
         body{{font-family:system-ui,sans-serif;max-width:26rem;margin:1.5rem auto;padding:0 1rem;color:#111}}\
         h1{{font-size:1.3rem;margin:0 0 .2rem}} .muted{{color:#555}}\
         table{{width:100%;border-collapse:collapse;margin:.8rem 0}} td{{padding:.25rem 0}}\
         td.r{{text-align:right}} .total td{{font-weight:700;border-top:1px solid #999}}\
         .status{{font-size:1.2rem;font-weight:700;margin:.8rem 0}} .ok{{color:#0a6b2a}} .no{{color:#a11}}\
         </style></head><body>{}</body></html>",
        escape(title),
        body
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

fn receipt_html(r: &TransactionRecord, c: &Context) -> String {
    let mut b = String::new();
    b.push_str(&format!(
        "<h1>{}</h1><div class=\"muted\">{}</div>",
        escape(&c.event),
        escape(&c.terminal_label)
    ));
    b.push_str(&format!(
        "<div class=\"muted\">{} &middot; ref {}</div>",
        escape(&r.captured_at.to_wire()),
        escape(r.reference.as_str())
    ));
    b.push_str("<table>");
    if let Some(items) = &r.items {
        for it in items {
            let line = it
                .unit_price
                .minor()
                .checked_mul(u64::from(it.qty))
                .and_then(|m| Money::from_minor(m).ok())
                .unwrap_or(it.unit_price);
            b.push_str(&format!(
                "<tr><td>{} &times; {}</td><td class=\"r\">{}</td></tr>",
                it.qty,
                escape(&it.name),
                ngn(line)
            ));
        }
    }
    let tip = r.tip_amount.unwrap_or(Money::ZERO);
    let before_tip = r.amount.checked_sub(tip).unwrap_or(r.amount);
    let label = match r.kind {
        TxKind::Sale => "Amount",
        TxKind::Refund => "Refund",
    };
    b.push_str(&format!(
        "<tr><td>{label}</td><td class=\"r\">{}</td></tr>",
        ngn(before_tip)
    ));
    if !tip.is_zero() {
        b.push_str(&format!(
            "<tr><td>Tip</td><td class=\"r\">{}</td></tr>",
            ngn(tip)
        ));
    }
    b.push_str(&format!(
        "<tr class=\"total\"><td>Total</td><td class=\"r\">{}</td></tr></table>",
        ngn(r.amount)
    ));
    let (word, class) = match (r.status, r.offline) {
        (RecordStatus::Approved, false) => ("APPROVED", "ok"),
        (RecordStatus::Approved, true) => ("APPROVED OFFLINE", "ok"),
        (RecordStatus::Declined, _) => ("DECLINED", "no"),
        (RecordStatus::Reversed, _) => ("REVERSED", "no"),
    };
    b.push_str(&format!("<div class=\"status {class}\">{word}</div>"));
    if let Some(card) = &r.card {
        b.push_str(&format!(
            "<div>{} **** {} &middot; contactless</div>",
            escape(card.brand.as_str()),
            escape(card.last4.as_str()),
        ));
    }
    if let Some(payer) = &r.payer {
        b.push_str(&format!(
            "<div>Bank transfer from {} &middot; {}</div>",
            escape(&payer.name),
            escape(&payer.bank),
        ));
    }
    if let Some(code) = &r.auth_code {
        b.push_str(&format!("<div>Auth code {}</div>", escape(code)));
    }
    if let Some(op) = &c.operator {
        b.push_str(&format!("<div>Served by {}</div>", escape(op)));
    }
    b.push_str(&format!(
        "<div class=\"muted\">Transaction {}</div>",
        escape(&r.transaction_id)
    ));
    b
}

fn not_yet(what: &str) -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Receipt not available",
        &format!("<h1>Receipt not available yet</h1><p>{}</p>", escape(what)),
    )
}

/// The receipt page of the transaction the closure finds, with its
/// event, terminal label and operator.
fn render(
    sim: &crate::Sim,
    find: impl Fn(&crate::state::State) -> Option<TransactionRecord>,
) -> Response {
    let g = sim.lock();
    let st = &g.state;
    let Some(r) = find(st) else {
        return not_yet(
            "This payment has not reached the backend yet (a terminal that was offline sends it once its network is back). Try again later.",
        );
    };
    let c = Context {
        event: st
            .sessions
            .get(&r.session_id)
            .map_or_else(|| r.session_id.to_string(), |s| s.name.clone()),
        terminal_label: st
            .terminals
            .get(&r.terminal_id)
            .map_or_else(|| r.terminal_id.to_string(), |t| t.label.clone()),
        operator: r
            .operator_id
            .as_ref()
            .and_then(|id| st.operators.get(id))
            .map(|o| o.name.clone()),
    };
    page(StatusCode::OK, "Receipt", &receipt_html(&r, &c))
}

pub(super) async fn by_transaction(AxState(sim): S, P(id): P<String>) -> Response {
    render(&sim, |st| {
        let key = st.tx_by_id.get(&id)?;
        st.transactions.get(key).map(|t| t.record.clone())
    })
}

/// An offline payment's receipt, by the reference the terminal printed in
/// its QR code before it could forward it (`/r/ref/<reference>`).
pub(super) async fn by_reference(AxState(sim): S, P(reference): P<String>) -> Response {
    let Ok(reference) = Reference::new(reference) else {
        return not_yet("That is not a payment reference.");
    };
    render(&sim, |st| {
        st.transactions
            .iter()
            .find(|((_, r), _)| *r == reference)
            .map(|(_, t)| t.record.clone())
    })
}
