//! `pos-agent reconcile`: the local ledger compared with the backend's
//! statement for this terminal (and, optionally, with the session's
//! reconciliation line for it).
//!
//! [`Reconciliation::compare`] and [`Reconciliation::check_session`] are
//! pure: they take what was read and return the differences. Reading the
//! ledger ([`read_ledger`]) and fetching the statement ([`fetch_statement`])
//! are separate.

use proto::Currency;
use proto::wire::{RecordStatus, StatementQuery, TransactionRecord, TxKind};

use crate::client::{ClientError, SignedClient};

/// Every transaction in the ledger, in pages of 500.
pub fn read_ledger(store: &store::Store) -> Result<Vec<store::Transaction>, store::StoreError> {
    let mut all = Vec::new();
    let mut offset = 0;
    loop {
        let page = store.list_transactions(store::Page { offset, limit: 500 })?;
        let n = page.len();
        all.extend(page);
        if n < 500 {
            break;
        }
        offset += 500;
    }
    Ok(all)
}

/// The terminal's whole statement (`GET /v1/terminals/:tid/transactions`),
/// in pages of 100 (at most 10 001 pages).
pub async fn fetch_statement(client: &SignedClient) -> Result<Vec<TransactionRecord>, ClientError> {
    let mut all = Vec::new();
    let mut page = 0u32;
    loop {
        let p = client
            .statement(&StatementQuery {
                page: Some(page),
                size: Some(100),
                status: None,
            })
            .await?;
        let done = p.content.is_empty() || page + 1 >= p.total_pages;
        all.extend(p.content);
        if done || page >= 10_000 {
            break;
        }
        page += 1;
    }
    Ok(all)
}

/// The local ledger compared with the backend's statement, by reference.
#[derive(Debug, Default)]
pub struct Reconciliation {
    /// Transactions that agree on kind, amount and approval.
    pub matched: u64,
    /// Approved offline here and not yet known to the backend: the outbox
    /// still has to forward them (not a disagreement).
    pub pending_forward: Vec<String>,
    /// `(reference, problem)`, in ledger order then statement order.
    pub mismatches: Vec<(String, String)>,
    /// Approved sales (`[0]`) and refunds (`[1]`) here.
    pub local: [store::CountTotal; 2],
    /// Approved sales (`[0]`) and refunds (`[1]`) on the backend.
    pub remote: [store::CountTotal; 2],
    /// Approved sales here that the backend already knows of.
    pub local_forwarded_sales: store::CountTotal,
    /// This terminal's line of the session reconciliation, when fetched.
    pub session: Option<proto::wire::CountTotal>,
}

impl Reconciliation {
    /// Compares the ledger's transactions with the statement's records.
    pub fn compare(local: &[store::Transaction], remote: &[TransactionRecord]) -> Self {
        use std::collections::BTreeMap;
        let mut r = Reconciliation::default();
        let by_ref: BTreeMap<&str, &TransactionRecord> =
            remote.iter().map(|t| (t.reference.as_str(), t)).collect();
        let local_refs: std::collections::BTreeSet<&str> =
            local.iter().map(|t| t.reference.as_str()).collect();
        let slot = |refund: bool| usize::from(refund);
        for t in local {
            let refund = t.kind == store::TxKind::Refund;
            if t.state.is_approved() {
                let c = &mut r.local[slot(refund)];
                c.count += 1;
                c.total = c.total.add(t.amount);
                if !refund && by_ref.contains_key(t.reference.as_str()) {
                    let f = &mut r.local_forwarded_sales;
                    f.count += 1;
                    f.total = f.total.add(t.amount);
                }
            }
            let reference = t.reference.as_str().to_owned();
            match by_ref.get(t.reference.as_str()) {
                None if t.state == store::TxState::OfflineApproved => {
                    r.pending_forward.push(reference)
                }
                None if t.state == store::TxState::Approved => r
                    .mismatches
                    .push((reference, "approved here, unknown to the backend".into())),
                None => {}
                Some(b) => {
                    let remote_refund = b.kind == TxKind::Refund;
                    let remote_approved = b.status == RecordStatus::Approved;
                    if remote_refund != refund || b.amount != t.amount {
                        r.mismatches.push((
                            reference,
                            format!(
                                "here {} {}, backend {} {}",
                                t.kind,
                                t.amount.to_wire(),
                                if remote_refund { "refund" } else { "sale" },
                                b.amount.to_wire()
                            ),
                        ));
                    } else if t.state.is_approved() != remote_approved {
                        r.mismatches.push((
                            reference,
                            format!("here {}, backend {}", t.state, b.status.as_str()),
                        ));
                    } else if t.tip_amount != b.tip_amount {
                        let tip =
                            |m: Option<proto::Money>| m.map_or("none".into(), |m| m.to_wire());
                        r.mismatches.push((
                            reference,
                            format!(
                                "here tip {}, backend tip {}",
                                tip(t.tip_amount),
                                tip(b.tip_amount)
                            ),
                        ));
                    } else if t.items.as_slice() != b.items.as_deref().unwrap_or_default() {
                        r.mismatches.push((reference, "the items differ".into()));
                    } else {
                        r.matched += 1;
                    }
                }
            }
        }
        for b in remote {
            let refund = b.kind == TxKind::Refund;
            if b.status == RecordStatus::Approved {
                let c = &mut r.remote[slot(refund)];
                c.count += 1;
                c.total = c.total.add(b.amount);
            }
            if !local_refs.contains(b.reference.as_str()) {
                r.mismatches.push((
                    b.reference.as_str().to_owned(),
                    format!(
                        "backend {} {}, unknown here",
                        b.status.as_str(),
                        b.amount.to_wire()
                    ),
                ));
            }
        }
        r
    }

    /// Compares the session reconciliation's line for this terminal with the
    /// approved sales here that the backend already knows of.
    pub fn check_session(
        &mut self,
        session: &proto::wire::Reconciliation,
        terminal: &proto::TerminalId,
    ) {
        let line = session
            .by_terminal
            .get(terminal.as_str())
            .copied()
            .unwrap_or_default();
        self.session = Some(line);
        let here = self.local_forwarded_sales;
        if line.count != here.count || line.total != here.total {
            self.mismatches.push((
                format!("session {}", session.session_id),
                format!(
                    "reconciliation for {terminal}: {} sales {}, ledger: {} sales {}",
                    line.count,
                    line.total.to_wire(),
                    here.count,
                    here.total.to_wire()
                ),
            ));
        }
    }

    /// No mismatch (transactions still to be forwarded are not one).
    pub fn is_clean(&self) -> bool {
        self.mismatches.is_empty()
    }

    /// The `--json` output.
    pub fn to_json(&self) -> serde_json::Value {
        let ct = |c: &store::CountTotal| serde_json::json!({"count": c.count, "total": c.total.to_wire()});
        serde_json::json!({
            "clean": self.is_clean(),
            "matched": self.matched,
            "local": {"sales": ct(&self.local[0]), "refunds": ct(&self.local[1])},
            "backend": {"sales": ct(&self.remote[0]), "refunds": ct(&self.remote[1])},
            "session": self.session.map(|c| serde_json::json!({"count": c.count, "total": c.total.to_wire()})),
            "pending_forward": self.pending_forward,
            "mismatches": self.mismatches.iter().map(|(r, p)| serde_json::json!({"reference": r, "problem": p})).collect::<Vec<_>>(),
        })
    }

    /// The text output, one line each, ending in a newline.
    pub fn to_text(&self) -> String {
        use crate::table::{Align, Table};
        let mut out = String::new();
        let mut t = Table::new(&[Align::Left, Align::Left, Align::Right, Align::Right]);
        let mut row = |what: &str, side: &str, count: u64, total: proto::Total| {
            t.row([
                what.to_owned(),
                side.to_owned(),
                count.to_string(),
                total.display(Currency::Ngn),
            ]);
        };
        for (what, i) in [("approved sales", 0), ("approved refunds", 1)] {
            row(what, "here", self.local[i].count, self.local[i].total);
            row("", "backend", self.remote[i].count, self.remote[i].total);
        }
        if let Some(c) = &self.session {
            row("session line", "backend", c.count, c.total);
        }
        out.push_str(&t.render(""));
        out.push_str(&format!(
            "matched: {}; waiting to be forwarded: {}\n",
            self.matched,
            self.pending_forward.len()
        ));
        for (r, p) in &self.mismatches {
            out.push_str(&format!("MISMATCH {r}: {p}\n"));
        }
        if self.is_clean() {
            out.push_str("ledger and backend agree\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{Money, Reference, TerminalId};

    fn money(minor: u64) -> Money {
        Money::from_minor(minor).unwrap()
    }

    fn tx(
        reference: &str,
        kind: store::TxKind,
        minor: u64,
        state: store::TxState,
    ) -> store::Transaction {
        store::Transaction {
            reference: Reference::new(reference).unwrap(),
            payment_id: None,
            kind,
            amount: money(minor),
            currency: Currency::Ngn,
            state,
            card: None,
            operator_id: None,
            captured_at: None,
            decision: None,
            backend_transaction_id: None,
            auth_code: None,
            decline_reason: None,
            original_reference: None,
            tip_amount: None,
            items: Vec::new(),
            shift_no: 1,
            card_aid: None,
            card_label: None,
            channel: store::Channel::Card,
            payer_name: None,
            payer_bank: None,
            transfer_code: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn sale(reference: &str, minor: u64, state: store::TxState) -> store::Transaction {
        tx(reference, store::TxKind::Sale, minor, state)
    }

    fn record(reference: &str, kind: &str, minor: u64, status: &str) -> TransactionRecord {
        serde_json::from_value(serde_json::json!({
            "transaction_id": format!("txn_{reference}"), "reference": reference, "channel": "pos",
            "terminal_id": "pos_3f1e2d_001", "session_id": "s1", "kind": kind,
            "amount": money(minor).to_wire(), "currency": "NGN", "status": status,
            "card": {"brand": "verve", "last4": "0007"}, "offline": false,
            "captured_at": "2026-11-21T10:00:00Z", "received_at": "2026-11-21T10:00:01Z"
        }))
        .unwrap()
    }

    fn ct(count: u64, minor: u64) -> store::CountTotal {
        store::CountTotal {
            count,
            total: proto::Total(minor),
        }
    }

    #[test]
    fn everything_matches() {
        let local = [
            sale("r-1", 200_000, store::TxState::Approved),
            tx(
                "r-2",
                store::TxKind::Refund,
                50_000,
                store::TxState::Approved,
            ),
            sale("r-3", 10_000, store::TxState::Declined),
        ];
        let remote = [
            record("r-1", "sale", 200_000, "approved"),
            record("r-2", "refund", 50_000, "approved"),
            record("r-3", "sale", 10_000, "declined"),
        ];
        let r = Reconciliation::compare(&local, &remote);
        assert!(r.is_clean(), "{:?}", r.mismatches);
        assert_eq!(r.matched, 3);
        assert!(r.pending_forward.is_empty());
        assert_eq!(r.local, [ct(1, 200_000), ct(1, 50_000)]);
        assert_eq!(r.remote, r.local);
        assert_eq!(r.local_forwarded_sales, ct(1, 200_000));
        assert!(
            r.to_text()
                .ends_with("matched: 3; waiting to be forwarded: 0\nledger and backend agree\n")
        );
        assert_eq!(r.to_json()["clean"], serde_json::json!(true));
        assert_eq!(r.to_json()["matched"], serde_json::json!(3));
    }

    #[test]
    fn missing_on_the_backend() {
        let local = [
            sale("r-1", 200_000, store::TxState::Approved),
            sale("r-2", 30_000, store::TxState::OfflineApproved),
            sale("r-3", 10_000, store::TxState::Declined),
        ];
        let r = Reconciliation::compare(&local, &[]);
        // Approved online but unknown there: a mismatch. Offline-approved:
        // still to be forwarded. Declined and unknown there: nothing.
        assert_eq!(
            r.mismatches,
            [(
                "r-1".to_owned(),
                "approved here, unknown to the backend".to_owned()
            )]
        );
        assert_eq!(r.pending_forward, ["r-2"]);
        assert_eq!(r.matched, 0);
        assert_eq!(r.local[0], ct(2, 230_000));
        assert_eq!(r.local_forwarded_sales, ct(0, 0));
        assert!(!r.is_clean());
        assert!(r.to_text().contains(
            "matched: 0; waiting to be forwarded: 1\nMISMATCH r-1: approved here, unknown to the backend\n"
        ));
        assert!(!r.to_text().contains("agree"));
    }

    #[test]
    fn missing_locally() {
        let remote = [record("r-9", "sale", 150_000, "approved")];
        let r = Reconciliation::compare(&[], &remote);
        assert_eq!(
            r.mismatches,
            [(
                "r-9".to_owned(),
                "backend approved 1500.00, unknown here".to_owned()
            )]
        );
        assert_eq!(r.remote[0], ct(1, 150_000));
        assert_eq!(r.local[0], ct(0, 0));
        let json = r.to_json();
        assert_eq!(json["clean"], serde_json::json!(false));
        assert_eq!(
            json["mismatches"],
            serde_json::json!([{"reference": "r-9", "problem": "backend approved 1500.00, unknown here"}])
        );
    }

    #[test]
    fn amount_kind_and_state_mismatches() {
        let local = [
            sale("r-1", 200_000, store::TxState::Approved),
            sale("r-2", 10_000, store::TxState::Approved),
            sale("r-3", 10_000, store::TxState::Approved),
            sale("r-4", 10_000, store::TxState::Declined),
        ];
        let remote = [
            record("r-1", "sale", 200_001, "approved"),
            record("r-2", "refund", 10_000, "approved"),
            record("r-3", "sale", 10_000, "declined"),
            record("r-4", "sale", 10_000, "approved"),
        ];
        let r = Reconciliation::compare(&local, &remote);
        assert_eq!(r.matched, 0);
        assert_eq!(
            r.mismatches,
            [
                (
                    "r-1".to_owned(),
                    "here sale 2000.00, backend sale 2000.01".to_owned()
                ),
                (
                    "r-2".to_owned(),
                    "here sale 100.00, backend refund 100.00".to_owned()
                ),
                (
                    "r-3".to_owned(),
                    "here approved, backend declined".to_owned()
                ),
                (
                    "r-4".to_owned(),
                    "here declined, backend approved".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn session_line() {
        let local = [
            sale("r-1", 200_000, store::TxState::Approved),
            sale("r-2", 30_000, store::TxState::OfflineApproved),
        ];
        let remote = [record("r-1", "sale", 200_000, "approved")];
        let terminal = TerminalId::new("pos_3f1e2d_001").unwrap();
        let session = |count: u64, minor: u64| -> proto::wire::Reconciliation {
            serde_json::from_value(serde_json::json!({
                "session_id": "s1", "currency": "NGN", "total_inflow": money(minor).to_wire(),
                "transaction_count": count, "successful_count": count, "pending_count": 0,
                "failed_count": 0, "reconciled_at": "2026-11-21T18:00:00Z",
                "by_terminal": {"pos_3f1e2d_001": {"count": count, "total": money(minor).to_wire()}}
            }))
            .unwrap()
        };
        // Only the forwarded sale counts: the offline one is still queued.
        let mut r = Reconciliation::compare(&local, &remote);
        r.check_session(&session(1, 200_000), &terminal);
        assert!(r.is_clean(), "{:?}", r.mismatches);
        assert!(
            r.to_text().contains("session line      backend "),
            "{}",
            r.to_text()
        );

        let mut r = Reconciliation::compare(&local, &remote);
        r.check_session(&session(2, 230_000), &terminal);
        assert_eq!(
            r.mismatches,
            [(
                "session s1".to_owned(),
                "reconciliation for pos_3f1e2d_001: 2 sales 2300.00, ledger: 1 sales 2000.00"
                    .to_owned()
            )]
        );
    }
}
