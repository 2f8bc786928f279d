//! The core's [`ScreenModel`](core::ScreenModel) as the `ui` crate draws
//! it, and the semantic state the virtual device reports. Pure; unit-tested
//! below.

use crate::core;

fn ui_totals(t: &Option<core::SessionTotals>) -> ui::SessionTotals {
    let t = t.unwrap_or_default();
    ui::SessionTotals {
        currency: proto::Currency::Ngn,
        sales: ui::Tally {
            count: u64::from(t.sales_count),
            total: t.sales_total,
        },
        refunds: ui::Tally {
            count: u64::from(t.refunds_count),
            total: t.refunds_total,
        },
        declined: ui::Tally::default(),
    }
}

/// The words of a declined screen: the ui's own where it has the reason,
/// the core's message otherwise (offline limits name the limit).
fn ui_decline(r: core::DeclineReason) -> ui::DeclineReason {
    use core::DeclineReason as C;
    match r {
        C::InsufficientFunds => ui::DeclineReason::InsufficientFunds,
        C::CardDeclined => ui::DeclineReason::CardDeclined,
        C::CardMismatch => ui::DeclineReason::RefundCardMismatch,
        C::NetworkProblem => ui::DeclineReason::NetworkProblem,
        C::TerminalProblem => ui::DeclineReason::TerminalProblem,
        C::Bank | C::OnlineRequired | C::OfflineLimit(_) => ui::DeclineReason::Other(r.message()),
    }
}

fn ui_transfer_status(s: core::TransferStatus) -> ui::TransferStatus {
    use core::TransferStatus as C;
    match s {
        C::Waiting => ui::TransferStatus::Waiting,
        C::PartlyReceived => ui::TransferStatus::PartlyReceived,
        C::NoNetwork => ui::TransferStatus::NoNetwork,
        C::NeedsNetwork => ui::TransferStatus::NeedsNetwork,
        C::Unavailable => ui::TransferStatus::Unavailable,
        C::NotForEvent => ui::TransferStatus::NotForEvent,
    }
}

fn ui_cancel(r: core::CancelReason) -> ui::CancelReason {
    match r {
        core::CancelReason::Cancelled => ui::CancelReason::Cashier,
        core::CancelReason::TimedOut => ui::CancelReason::TimedOut,
        core::CancelReason::SessionClosed => ui::CancelReason::Pos,
    }
}

/// The core's screen model as the `ui` crate draws it.
pub fn ui_screen(m: &core::ScreenModel, event_name: &str, terminal_label: &str) -> ui::Screen {
    let amount = |v: proto::Money| ui::Amount::new(v, m.currency);
    let view = match &m.screen {
        core::Screen::Booting => ui::View::Booting {
            message: "Starting".to_string(),
        },
        core::Screen::Idle { .. } => ui::View::Idle,
        core::Screen::TapCard { amount: a, tip, .. } => ui::View::TapCard {
            amount: amount(*a),
            tip: tip.map(amount),
        },
        core::Screen::Processing { amount: a, tip, .. } => ui::View::Processing {
            amount: amount(*a),
            message: String::new(),
            tip: tip.map(amount),
        },
        core::Screen::Approved {
            amount: a,
            offline_approval,
            tip,
            receipt_url,
            print_prompt,
            transfer,
            ..
        } => ui::View::Approved {
            amount: amount(*a),
            card: None,
            offline: *offline_approval,
            tip: tip.map(amount),
            receipt_url: receipt_url.clone(),
            print_prompt: *print_prompt,
            transfer: *transfer,
        },
        core::Screen::Declined {
            amount: a,
            reason,
            tip,
            receipt_url,
            ..
        } => ui::View::Declined {
            amount: amount(*a),
            reason: ui_decline(*reason),
            tip: tip.map(amount),
            receipt_url: receipt_url.clone(),
        },
        core::Screen::Cancelled { amount: a, reason } => ui::View::Cancelled {
            amount: Some(amount(*a)),
            reason: ui_cancel(*reason),
        },
        core::Screen::RefundTap { amount: a, .. } => ui::View::RefundTap { amount: amount(*a) },
        core::Screen::SessionClosed { totals, .. } => ui::View::SessionClosed {
            totals: ui_totals(totals),
        },
        core::Screen::Error { message } => ui::View::Error {
            message: message.clone(),
        },
        core::Screen::AmountEntry {
            purpose,
            amount: a,
            message,
        } => ui::View::AmountEntry {
            title: match purpose {
                core::EntryPurpose::Sale => "New sale",
                core::EntryPurpose::Refund => "Refund amount",
            }
            .to_string(),
            amount: amount(*a),
            message: message.clone(),
        },
        core::Screen::Tip {
            amount: a,
            choices,
            custom,
            message,
        } => ui::View::Tip {
            amount: amount(*a),
            choices: (1u8..)
                .zip(choices)
                .map(|(key, c)| match c {
                    core::TipOption::Percent { percent, tip } => ui::TipChoice {
                        key,
                        label: format!("{percent}%"),
                        tip: Some(amount(*tip)),
                    },
                    core::TipOption::Fixed { tip } => ui::TipChoice {
                        key,
                        label: tip.display(m.currency),
                        tip: Some(amount(*tip)),
                    },
                    core::TipOption::Custom => ui::TipChoice {
                        key,
                        label: "Other amount".to_string(),
                        tip: None,
                    },
                })
                .collect(),
            custom: custom.map(amount),
            message: message.clone(),
        },
        core::Screen::Login { pin_len, message } => ui::View::Login {
            pin_len: *pin_len,
            message: message.clone(),
        },
        core::Screen::Locked { seconds } => ui::View::Locked {
            seconds: *seconds,
            message: m.screen.message(),
        },
        core::Screen::Menu {
            title,
            entries,
            selected,
            message,
        } => ui::View::Menu {
            title: title.clone(),
            entries: entries
                .iter()
                .map(|e| ui::MenuEntry {
                    key: e.key,
                    label: e.label.clone(),
                    enabled: e.enabled,
                })
                .collect(),
            selected: *selected,
            message: message.clone(),
        },
        core::Screen::Catalog {
            items,
            qty,
            first,
            keyed,
            cart_total,
            cart_count,
            message,
        } => ui::View::Catalog {
            items: (1u32..)
                .zip(items.iter().zip(qty))
                .map(|(number, (it, q))| ui::CatalogLine {
                    number,
                    item_id: it.item_id.clone(),
                    name: it.name.clone(),
                    price: amount(it.price),
                    qty: *q,
                })
                .collect(),
            first: *first,
            keyed: *keyed,
            cart_total: amount(*cart_total),
            cart_count: *cart_count,
            message: message.clone(),
        },
        core::Screen::Report { report, names } => ui::View::Report {
            report: ui_report(report, names),
        },
        core::Screen::Transfer {
            amount: a,
            tip,
            account,
            code,
            received,
            status,
        } => ui::View::Transfer {
            amount: amount(*a),
            tip: tip.map(amount),
            account: account.as_ref().map(|c| ui::TransferAccount {
                bank_name: c.bank_name.clone(),
                account_number: c.account_number.clone(),
                account_name: c.account_name.clone(),
            }),
            code: code.as_ref().map(|c| c.as_str().to_string()),
            received: (!received.is_zero()).then(|| amount(*received)),
            status: ui_transfer_status(*status),
        },
    };
    let (event_name, terminal_label) = match &m.screen {
        core::Screen::Idle {
            event_name,
            terminal_label,
        } => (event_name.as_str(), terminal_label.as_str()),
        _ => (event_name, terminal_label),
    };
    ui::Screen::new(
        ui::StatusLine {
            printer_problem: m.printer_problem.clone(),
            event_name: event_name.to_string(),
            terminal_label: terminal_label.to_string(),
            offline: m.offline,
            queued: u64::from(m.queued),
            parked: u64::from(m.parked),
            operator: m.operator.as_ref().map(|o| ui::OperatorTag {
                id: o.id.clone(),
                name: o.name.clone(),
            }),
        },
        view,
    )
}

/// A wall-clock time as the report screen shows it (West Africa Time).
fn clock_time(t: core::UnixMillis) -> String {
    crate::receipt::in_wat(
        t.0,
        time::macros::format_description!("[day] [month repr:short] [hour]:[minute]"),
    )
}

fn tally(c: &proto::wire::CountTotal) -> ui::Tally {
    ui::Tally {
        count: c.count,
        total: c.total,
    }
}

/// An X or Z report as the screen shows it; operators by name where the
/// terminal knows it.
fn ui_report(r: &core::ShiftReport, names: &[(String, String)]) -> ui::ShiftReport {
    let t = &r.totals;
    ui::ShiftReport {
        kind: match r.kind {
            core::ReportKind::X => ui::ReportKind::X,
            core::ReportKind::Z => ui::ReportKind::Z,
        },
        shift_no: r.shift_no,
        currency: proto::Currency::Ngn,
        opened_at: r.opened_at.map_or_else(|| "-".to_string(), clock_time),
        closed_at: r.closed_at.map(clock_time),
        sales: tally(&t.sales),
        refunds: tally(&t.refunds),
        declined: tally(&t.declined),
        tips: tally(&t.tips),
        online: tally(&t.online),
        offline: tally(&t.offline),
        by_operator: t
            .by_operator
            .iter()
            .map(|(id, c)| {
                let name = names
                    .iter()
                    .find(|(i, _)| i == id)
                    .map_or(id.as_str(), |(_, n)| n.as_str());
                (name.to_string(), tally(c))
            })
            .collect(),
        by_item: t
            .by_item
            .values()
            .map(|i| ui::ItemLine {
                name: i.name.clone(),
                qty: i.qty,
                total: i.total,
            })
            .collect(),
    }
}

/// The semantic screen state for the virtual device: the ui's, with the
/// core's own message where the core has one (the core's words are what
/// the cashier must read, e.g. "Too late to cancel: payment approved").
pub fn screen_state(m: &core::ScreenModel, screen: &ui::Screen) -> ui::ScreenState {
    let mut state = screen.state();
    if let Some(msg) = m.screen.message() {
        state.message = Some(msg);
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{Money, Reference, TerminalId};

    fn reference(n: u64) -> Reference {
        Reference::for_sequence(&TerminalId::new("pos_abc123_001").unwrap(), n)
    }

    fn money(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    #[test]
    fn screens_map_with_the_core_message() {
        let m = core::ScreenModel {
            screen: core::Screen::Approved {
                kind: core::TxKind::Sale,
                amount: money("2000.00"),
                tip: None,
                reference: reference(1),
                receipt_url: None,
                print_prompt: false,
                transfer: false,
                offline_approval: false,
                message: Some("Too late to cancel: payment approved".into()),
            },
            currency: proto::Currency::Ngn,
            offline: true,
            queued: 2,
            parked: 1,
            operator: None,
            printer_problem: None,
        };
        let screen = ui_screen(&m, "Fest", "Bar 1");
        let state = screen_state(&m, &screen);
        assert_eq!(state.screen, ui::ScreenName::Approved);
        assert_eq!(state.amount, Some(money("2000.00")));
        assert!(state.offline);
        assert_eq!((state.queued, state.parked), (2, 1));
        assert_eq!(
            state.message.as_deref(),
            Some("Too late to cancel: payment approved")
        );
        let idle = core::ScreenModel {
            screen: core::Screen::Idle {
                event_name: "Jazz".into(),
                terminal_label: "Bar 2".into(),
            },
            currency: proto::Currency::Ngn,
            offline: false,
            queued: 0,
            parked: 0,
            operator: None,
            printer_problem: None,
        };
        let s = ui_screen(&idle, "x", "y");
        assert_eq!(s.status.event_name, "Jazz");
        assert_eq!(s.name(), ui::ScreenName::Idle);
    }
}
