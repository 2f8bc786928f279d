//! Receipts (SPEC 7.4) in one place: what a receipt says ([`Receipt`],
//! built from the ledger's transaction with [`Receipt::of`]) and how it is
//! laid out for a printer ([`Receipt::document`], [`report_document`] for
//! X/Z reports). Pure and tested; the printer task prints the documents.
//!
//! A receipt never shows more card data than brand, `**** last4`, the card
//! application's AID and label, and the entry mode. Amounts read
//! `NGN 1,500.00` (printers have no naira glyph). A payment by bank
//! transfer (SPEC 7.7) says "Paid by bank transfer" with the payer's name
//! and bank instead of the card lines.

use hal::{Align, DocLine, Document};
use proto::{Currency, Money};

use crate::core::{ReceiptCopy, ShiftReport};

/// What a receipt says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub event_name: String,
    pub terminal_label: String,
    /// Already formatted (West Africa Time).
    pub when: String,
    pub reference: String,
    pub refund: bool,
    pub outcome: Outcome,
    pub brand: String,
    pub last4: String,
    pub aid: Option<String>,
    pub app_label: Option<String>,
    pub entry_mode: String,
    /// Paid by bank transfer: the payer's name and bank (no card lines).
    pub payer: Option<(String, String)>,
    pub auth_code: Option<String>,
    /// Before the tip.
    pub amount: Money,
    pub tip: Option<Money>,
    pub total: Money,
    pub items: Vec<(u32, String, Money)>,
    pub operator: Option<String>,
    pub copy: ReceiptCopy,
    pub receipt_url: Option<String>,
}

/// The result a receipt states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Approved,
    ApprovedOffline,
    Declined,
}

impl Outcome {
    fn word(self) -> &'static str {
        match self {
            Outcome::Approved => "APPROVED",
            Outcome::ApprovedOffline => "APPROVED OFFLINE",
            Outcome::Declined => "DECLINED",
        }
    }
}

/// Why a transaction has no receipt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("transaction {0} has no card: nothing was paid, no receipt")]
    NoCard(String),
    #[error("transaction {reference} is {state}: no receipt yet")]
    NotFinished { reference: String, state: String },
}

fn ngn(m: Money) -> String {
    m.display(Currency::Ngn)
}

/// `left` and `right` on one line of `width` columns (right cut first).
fn spread(left: &str, right: &str, width: usize) -> String {
    let l = left.chars().count();
    let r = right.chars().count();
    if l + 1 + r <= width {
        format!("{left}{}{right}", " ".repeat(width - l - r))
    } else {
        let keep = width.saturating_sub(r + 1);
        let cut: String = left.chars().take(keep).collect();
        format!("{cut} {right}")
    }
}

/// Wall-clock milliseconds in West Africa Time (UTC+1 all year, no
/// daylight saving: the product sells in NGN only), as `format` writes
/// them; `-` when out of range.
pub fn in_wat(ms: i64, format: &[time::format_description::BorrowedFormatItem<'_>]) -> String {
    let wat = time::UtcOffset::from_hms(1, 0, 0).unwrap_or(time::UtcOffset::UTC);
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|d| d.to_offset(wat).format(format).ok())
        .unwrap_or_else(|| "-".to_string())
}

/// Wall-clock milliseconds as a receipt prints them.
pub fn when(ms: i64) -> String {
    in_wat(
        ms,
        time::macros::format_description!("[day] [month repr:short] [year] [hour]:[minute]"),
    )
}

/// Names a receipt needs beyond the ledger row.
#[derive(Debug, Clone, Default)]
pub struct Names {
    pub event_name: String,
    pub terminal_label: String,
    pub operator: Option<String>,
    /// The backend's address, for the digital receipt's URL.
    pub receipt_base: Option<String>,
    /// Operators' names by id, for the reports.
    pub operator_names: Vec<(String, String)>,
}

impl Receipt {
    /// The receipt of a ledger transaction, for `copy`.
    pub fn of(
        t: &store::Transaction,
        names: &Names,
        copy: ReceiptCopy,
    ) -> Result<Receipt, ReceiptError> {
        use store::TxState as S;
        let transfer = t.channel == store::Channel::Account;
        let card = t.card.as_ref();
        if card.is_none() && !transfer {
            return Err(ReceiptError::NoCard(t.reference.to_string()));
        }
        let payer = transfer.then(|| {
            (
                t.payer_name.clone().unwrap_or_default(),
                t.payer_bank.clone().unwrap_or_default(),
            )
        });
        let outcome = match t.state {
            S::Approved
                if t.decision
                    .as_ref()
                    .is_some_and(|d| d.mode == store::DecisionMode::Offline)
                    || t.decline_reason.as_deref() == Some("offline_after_unknown") =>
            {
                Outcome::ApprovedOffline
            }
            S::Approved => Outcome::Approved,
            S::OfflineApproved => Outcome::ApprovedOffline,
            S::Declined | S::OfflineDeclined | S::ReversalPending | S::Reversed => {
                Outcome::Declined
            }
            other => {
                return Err(ReceiptError::NotFinished {
                    reference: t.reference.to_string(),
                    state: other.as_str().to_string(),
                });
            }
        };
        let tip = t.tip_amount.filter(|m| !m.is_zero());
        let amount = tip
            .and_then(|tip| t.amount.checked_sub(tip))
            .unwrap_or(t.amount);
        let receipt_url = names.receipt_base.as_ref().map(|b| {
            let b = b.trim_end_matches('/');
            match &t.backend_transaction_id {
                Some(id) => format!("{b}/r/{id}"),
                None => format!("{b}/r/ref/{}", t.reference),
            }
        });
        Ok(Receipt {
            event_name: names.event_name.clone(),
            terminal_label: names.terminal_label.clone(),
            when: when(t.captured_at.unwrap_or(t.created_at)),
            reference: t.reference.to_string(),
            refund: t.kind == store::TxKind::Refund,
            outcome,
            brand: card.map_or_else(String::new, |c| c.brand().as_str().to_uppercase()),
            last4: card.map_or_else(String::new, |c| c.last4().to_string()),
            aid: t.card_aid.clone(),
            app_label: t.card_label.clone(),
            entry_mode: card.map_or_else(String::new, |c| c.entry_mode().as_str().to_string()),
            payer,
            auth_code: t.auth_code.clone(),
            amount,
            tip,
            total: t.amount,
            items: t
                .items
                .iter()
                .map(|i| (i.qty, i.name.clone(), i.unit_price))
                .collect(),
            operator: names.operator.clone(),
            copy,
            receipt_url,
        })
    }

    /// The receipt as a printer lays it out, `width` columns wide.
    pub fn document(&self, width: usize) -> Document {
        let mut lines = vec![
            DocLine::new(&self.event_name).bold().align(Align::Center),
            DocLine::new(&self.terminal_label).align(Align::Center),
            DocLine::new(&self.when).align(Align::Center),
            DocLine::new(""),
            DocLine::new(if self.refund { "REFUND" } else { "SALE" }).bold(),
            DocLine::new(spread("Ref", &self.reference, width)),
        ];
        for (qty, name, price) in &self.items {
            let line = price
                .minor()
                .checked_mul(u64::from(*qty))
                .and_then(|m| Money::from_minor(m).ok())
                .unwrap_or(*price);
            lines.push(DocLine::new(spread(
                &format!("{qty} x {name}"),
                &ngn(line),
                width,
            )));
        }
        lines.push(DocLine::new(spread("Amount", &ngn(self.amount), width)));
        if let Some(tip) = self.tip {
            lines.push(DocLine::new(spread("Tip", &ngn(tip), width)));
        }
        lines.push(DocLine::new(spread("TOTAL", &ngn(self.total), width)).bold());
        lines.push(DocLine::new(""));
        if let Some((name, bank)) = &self.payer {
            lines.push(DocLine::new("Paid by bank transfer"));
            lines.push(DocLine::new(spread("From", name, width)));
            lines.push(DocLine::new(spread("Bank", bank, width)));
        } else {
            lines.push(DocLine::new(spread(
                &self.brand,
                &format!("**** {}", self.last4),
                width,
            )));
            if let Some(label) = &self.app_label {
                lines.push(DocLine::new(label));
            }
            if let Some(aid) = &self.aid {
                lines.push(DocLine::new(format!("AID {aid}")));
            }
            lines.push(DocLine::new(format!("Entry: {}", self.entry_mode)));
        }
        if let Some(code) = &self.auth_code {
            lines.push(DocLine::new(format!("Auth code {code}")));
        }
        lines.push(DocLine::new(""));
        lines.push(
            DocLine::new(self.outcome.word())
                .bold()
                .double()
                .align(Align::Center),
        );
        if let Some(op) = &self.operator {
            lines.push(DocLine::new(format!("Served by {op}")));
        }
        lines.push(
            DocLine::new(match self.copy {
                ReceiptCopy::Cashier => "Cashier copy",
                ReceiptCopy::Customer => "Customer copy",
                ReceiptCopy::Reprint => "Copy (reprint)",
            })
            .align(Align::Center),
        );
        let qr = self.receipt_url.clone();
        if qr.is_some() {
            lines.push(DocLine::new("Your receipt online:").align(Align::Center));
        }
        Document {
            lines,
            qr,
            cut: true,
        }
    }
}

/// An X or Z report as printed.
pub fn report_document(r: &ShiftReport, names: &Names, width: usize) -> Document {
    let t = &r.totals;
    let kind = r.kind.as_str();
    let mut lines = vec![
        DocLine::new(&names.event_name).bold().align(Align::Center),
        DocLine::new(&names.terminal_label).align(Align::Center),
        DocLine::new(format!("{kind} REPORT"))
            .bold()
            .double()
            .align(Align::Center),
        DocLine::new(format!("Shift {}", r.shift_no))
            .bold()
            .align(Align::Center),
        DocLine::new(spread(
            "Opened",
            &r.opened_at.map_or_else(|| "-".to_string(), |t| when(t.0)),
            width,
        )),
        DocLine::new(spread(
            "Closed",
            &r.closed_at
                .map_or_else(|| "not yet (X)".to_string(), |t| when(t.0)),
            width,
        )),
        DocLine::new(""),
    ];
    let row = |name: &str, c: &proto::wire::CountTotal| {
        DocLine::new(spread(
            &format!("{name} {}", c.count),
            &c.total.display(Currency::Ngn),
            width,
        ))
    };
    for (name, c) in [
        ("Sales", &t.sales),
        ("Refunds", &t.refunds),
        ("Declined", &t.declined),
        ("Tips", &t.tips),
        ("Online", &t.online),
        ("Offline", &t.offline),
    ] {
        lines.push(row(name, c));
    }
    if !t.by_operator.is_empty() {
        lines.push(DocLine::new(""));
        lines.push(DocLine::new("By operator").bold());
        for (op, c) in &t.by_operator {
            let name = names
                .operator_names
                .iter()
                .find(|(id, _)| id == op)
                .map_or(op.as_str(), |(_, n)| n.as_str());
            lines.push(row(name, c));
        }
    }
    if !t.by_item.is_empty() {
        lines.push(DocLine::new(""));
        lines.push(DocLine::new("By item").bold());
        for i in t.by_item.values() {
            lines.push(DocLine::new(spread(
                &format!("{} x {}", i.qty, i.name),
                &i.total.display(Currency::Ngn),
                width,
            )));
        }
    }
    Document {
        lines,
        qr: None,
        cut: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{Reference, TerminalId};

    fn money(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    fn tx() -> store::Transaction {
        let card = store::Card::new(
            "9f2c4e1a0b7d3e6f8a1c2b4d6e8f0a1b",
            "1111",
            store::CardBrand::Visa,
            store::EntryMode::Contactless,
        )
        .unwrap();
        store::Transaction {
            reference: Reference::for_sequence(&TerminalId::new("pos_abc123_001").unwrap(), 7),
            payment_id: None,
            kind: store::TxKind::Sale,
            amount: money("1980.00"),
            currency: Currency::Ngn,
            state: store::TxState::Approved,
            card: Some(card),
            operator_id: Some("op_ada".into()),
            captured_at: Some(1_764_770_000_000),
            decision: Some(store::Decision::new(store::DecisionMode::Online, "online").unwrap()),
            backend_transaction_id: Some("txn_1".into()),
            auth_code: Some("123456".into()),
            decline_reason: None,
            original_reference: None,
            tip_amount: Some(money("180.00")),
            items: vec![store::LineItem {
                item_id: "star".into(),
                name: "Star Lager".into(),
                qty: 1,
                unit_price: money("1800.00"),
            }],
            shift_no: 1,
            card_aid: Some("A0000000031010".into()),
            card_label: Some("VISA CREDIT".into()),
            channel: store::Channel::Card,
            payer_name: None,
            payer_bank: None,
            transfer_code: None,
            created_at: 1_764_770_000_000,
            updated_at: 1_764_770_000_000,
        }
    }

    fn names() -> Names {
        Names {
            event_name: "Lagos Jazz Night".into(),
            terminal_label: "Bar 2".into(),
            operator: Some("Ada".into()),
            receipt_base: Some("http://sim.example/".into()),
            operator_names: vec![("op_ada".into(), "Ada".into())],
        }
    }

    fn text(d: &Document) -> String {
        d.lines
            .iter()
            .map(|l| l.text.clone())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn a_receipt_has_every_field_of_the_spec_and_no_more_card_data() {
        let r = Receipt::of(&tx(), &names(), ReceiptCopy::Customer).unwrap();
        assert_eq!(
            (r.amount, r.tip, r.total),
            (money("1800.00"), Some(money("180.00")), money("1980.00"))
        );
        let d = r.document(hal::PRINTER_COLUMNS);
        let s = text(&d);
        for want in [
            "Lagos Jazz Night",
            "Bar 2",
            "03 Dec 2025",
            "pos_abc123_001-000007",
            "VISA",
            "**** 1111",
            "VISA CREDIT",
            "AID A0000000031010",
            "Entry: contactless",
            "Auth code 123456",
            "1 x Star Lager",
            "NGN 1,800.00",
            "NGN 180.00",
            "NGN 1,980.00",
            "APPROVED",
            "Served by Ada",
            "Customer copy",
        ] {
            assert!(s.contains(want), "{want:?} missing:\n{s}");
        }
        assert!(
            d.lines
                .iter()
                .all(|l| l.text.chars().count() <= hal::PRINTER_COLUMNS),
            "{s}"
        );
        assert_eq!(d.qr.as_deref(), Some("http://sim.example/r/txn_1"));
        assert!(
            !s.contains("9f2c4e1a"),
            "the card token is not card data to print"
        );
    }

    #[test]
    fn a_transfer_receipt_names_the_payer_instead_of_a_card() {
        let mut t = tx();
        t.card = None;
        t.card_aid = None;
        t.card_label = None;
        t.channel = store::Channel::Account;
        t.payer_name = Some("ADA OBI".into());
        t.payer_bank = Some("GTBank".into());
        t.auth_code = None;
        let r = Receipt::of(&t, &names(), ReceiptCopy::Customer).unwrap();
        assert_eq!(r.outcome, Outcome::Approved);
        let s = text(&r.document(hal::PRINTER_COLUMNS));
        assert!(s.contains("Paid by bank transfer"), "{s}");
        assert!(s.contains("ADA OBI") && s.contains("GTBank"), "{s}");
        assert!(!s.contains("****") && !s.contains("Entry:"), "{s}");
        assert!(s.contains("APPROVED"));
    }

    #[test]
    fn offline_and_declined_receipts_say_so() {
        let mut t = tx();
        t.state = store::TxState::OfflineApproved;
        t.backend_transaction_id = None;
        t.auth_code = None;
        let r = Receipt::of(&t, &names(), ReceiptCopy::Cashier).unwrap();
        assert_eq!(r.outcome, Outcome::ApprovedOffline);
        let d = r.document(hal::PRINTER_COLUMNS);
        assert!(text(&d).contains("APPROVED OFFLINE"));
        assert!(text(&d).contains("Cashier copy"));
        assert_eq!(
            d.qr.as_deref(),
            Some("http://sim.example/r/ref/pos_abc123_001-000007")
        );
        t.state = store::TxState::Declined;
        let r = Receipt::of(&t, &names(), ReceiptCopy::Reprint).unwrap();
        assert!(text(&r.document(32)).contains("DECLINED"));
        // A refund says so; one without a card has no receipt.
        t.kind = store::TxKind::Refund;
        t.tip_amount = None;
        t.items.clear();
        assert!(
            text(
                &Receipt::of(&t, &names(), ReceiptCopy::Customer)
                    .unwrap()
                    .document(32)
            )
            .contains("REFUND")
        );
        t.card = None;
        assert!(matches!(
            Receipt::of(&t, &names(), ReceiptCopy::Customer),
            Err(ReceiptError::NoCard(_))
        ));
        t.card = tx().card;
        t.state = store::TxState::Pending;
        assert!(matches!(
            Receipt::of(&t, &names(), ReceiptCopy::Customer),
            Err(ReceiptError::NotFinished { .. })
        ));
    }

    /// The approved sale's receipt as the printer gets it (ESC/POS bytes)
    /// and as the virtual printer shows it (text), against goldens in
    /// `agent/tests/fixtures/` (regenerated only with `UPDATE_GOLDEN=1`).
    #[test]
    fn an_approved_sale_prints_its_golden_bytes_and_text() {
        let r = Receipt::of(&tx(), &names(), ReceiptCopy::Customer).unwrap();
        let doc = r.document(hal::PRINTER_COLUMNS);
        let options = hal::printer::escpos::EscPosOptions {
            code_page: hal::CodePage::Cp437,
            paper: hal::PaperWidth::Mm58,
        };
        let bytes = hal::printer::escpos::encode_document(&doc, options).unwrap();
        let text = hal::printer::render::to_text(&doc, hal::PaperWidth::Mm58);
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let (bin, txt) = (
            dir.join("receipt_approved.bin"),
            dir.join("receipt_approved.txt"),
        );
        if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
            std::fs::write(&bin, &bytes).unwrap();
            std::fs::write(&txt, &text).unwrap();
        }
        assert_eq!(bytes, std::fs::read(&bin).unwrap(), "ESC/POS bytes changed");
        assert_eq!(
            text,
            std::fs::read_to_string(&txt).unwrap(),
            "receipt text changed"
        );
        // The printer's own QR command carries the receipt URL.
        let url = b"http://sim.example/r/txn_1";
        assert!(bytes.windows(url.len()).any(|w| w == url));
    }

    #[test]
    fn long_names_are_cut_to_the_paper() {
        assert_eq!(spread("Amount", "NGN 1.00", 20), "Amount      NGN 1.00");
        let s = spread("A very long item name indeed", "NGN 10,000,000.00", 32);
        assert_eq!(s.chars().count(), 32, "{s}");
        assert!(s.ends_with("NGN 10,000,000.00"));
    }

    #[test]
    fn a_z_report_prints_its_figures() {
        let mut totals = proto::wire::ShiftTotals::default();
        totals.sales.count = 4;
        totals.sales.total = proto::Total(798_000);
        totals.tips.count = 1;
        totals.tips.total = proto::Total(18_000);
        totals.by_operator.insert(
            "op_ada".into(),
            proto::wire::CountTotal {
                count: 4,
                total: proto::Total(798_000),
            },
        );
        let r = ShiftReport {
            kind: crate::core::ReportKind::Z,
            shift_no: 3,
            opened_at: Some(crate::core::UnixMillis(1_764_770_000_000)),
            closed_at: Some(crate::core::UnixMillis(1_764_780_000_000)),
            totals,
        };
        let s = text(&report_document(&r, &names(), 32));
        for want in [
            "Z REPORT",
            "Shift 3",
            "Ada 4",
            "Sales 4",
            "NGN 7,980.00",
            "Tips 1",
            "NGN 180.00",
        ] {
            assert!(s.contains(want), "{want:?} missing:\n{s}");
        }
    }
}
