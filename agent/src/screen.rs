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
        core::Screen::TapCard { amount: a, .. } => ui::View::TapCard {
            amount: amount(*a),
            tip: None,
        },
        core::Screen::Processing { amount: a, .. } => ui::View::Processing {
            amount: amount(*a),
            message: String::new(),
            tip: None,
        },
        core::Screen::Approved {
            amount: a,
            offline_approval,
            ..
        } => ui::View::Approved {
            amount: amount(*a),
            card: None,
            offline: *offline_approval,
            tip: None,
        },
        core::Screen::Declined {
            amount: a, reason, ..
        } => ui::View::Declined {
            amount: amount(*a),
            reason: ui_decline(*reason),
            tip: None,
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
            event_name: event_name.to_string(),
            terminal_label: terminal_label.to_string(),
            offline: m.offline,
            queued: u64::from(m.queued),
            parked: u64::from(m.parked),
            operator: None,
        },
        view,
    )
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
                reference: reference(1),
                offline_approval: false,
                message: Some("Too late to cancel: payment approved".into()),
            },
            currency: proto::Currency::Ngn,
            offline: true,
            queued: 2,
            parked: 1,
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
        };
        let s = ui_screen(&idle, "x", "y");
        assert_eq!(s.status.event_name, "Jazz");
        assert_eq!(s.name(), ui::ScreenName::Idle);
    }
}
