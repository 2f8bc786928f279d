//! The cashier's desk (SPEC section 7): what the terminal does between
//! payments when the cashier is the POS. Keypad amounts, tips, the
//! quick-sale catalog, the menu, the refund picker, X/Z reports, logins.
//!
//! Everything the cashier keys ends in a [`Draft`]; a confirmed draft asks
//! the shell for a reference ([`Query::MintReference`]) and, once it has
//! one, begins a payment on the same path as a partner's sale. While a
//! draft is being keyed the terminal is busy: a partner's command is
//! rejected `busy`, never allowed to throw the cashier's work away.

use proto::money::MAX_MINOR;
use proto::{Money, Reference, TerminalId};

use super::{Start, Terminal};
use crate::cashier::{
    Answer, LineItem, MenuEntry, Operator, PrintJob, Query, ReportKind, Role, ShiftReport,
    TipOption, percent_tip,
};
use crate::model::{
    Button, EntryPurpose, OfflinePolicy, OriginalSale, Report, Screen, SessionStatus, TxKind,
};
use crate::time::{Millis, Now};

/// Most digits of a PIN; more are cut (SPEC 7.2).
const PIN_MAX: usize = 6;
const PIN_MIN: usize = 4;
/// Catalog lines a screen scrolls by (the display shows at least these).
const CATALOG_PAGE: usize = 5;
/// Sales offered by the refund picker.
const RECENT_SALES: u32 = 20;
/// Digits of a sale number keyed on the refund picker.
const SALE_NO_MAX_DIGITS: usize = 6;

/// The login keypad and its lock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct LoginPad {
    pin: String,
    wrong: u8,
    locked_until: Option<Millis>,
    message: Option<String>,
}

/// What an amount being keyed becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum AmountFor {
    Sale,
    Refund(OriginalSale),
}

/// A confirmed amount on its way to a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Draft {
    kind: TxKind,
    /// Before the tip.
    base: Money,
    tip: Money,
    items: Vec<LineItem>,
    original: Option<OriginalSale>,
    /// Where `cancel` on the tip screen, or a refusal, goes back to.
    back: Box<Desk>,
}

/// The catalog screen's cart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Cart {
    /// Quantity of each catalog item, in catalog order.
    qty: Vec<u32>,
    /// Item indexes in the order they were added (`back` removes the last).
    adds: Vec<usize>,
    first: usize,
    keyed: Option<u32>,
    /// The next digit starts a new item number.
    fresh: bool,
    message: Option<String>,
}

/// A question to the shell in flight, and the screen shown meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Waiting {
    Mint(Draft),
    RecentSales,
    /// A sale keyed by its number; `pick` is the picker to go back to.
    Original {
        pick: Box<Desk>,
        number: u64,
    },
    Report,
    Unpair,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Desk {
    /// Nothing in hand: the idle (or session-closed) screen.
    Home,
    Amount {
        purpose: AmountFor,
        digits: u64,
        message: Option<String>,
    },
    Tip {
        draft: Draft,
        /// The tip being keyed after "custom".
        custom: Option<u64>,
        message: Option<String>,
    },
    Menu {
        message: Option<String>,
    },
    Catalog(Cart),
    RefundPick {
        sales: Vec<OriginalSale>,
        keyed: String,
        selected: Option<usize>,
        message: Option<String>,
    },
    Report(ShiftReport),
    /// "Unpair this terminal?": OK asks the shell, Back keeps it paired.
    ConfirmUnpair,
    Waiting {
        what: Waiting,
        screen: Box<Screen>,
    },
}

impl Desk {
    /// The cashier has keyed something a partner command must not
    /// throw away (or a payment is about to begin).
    pub(super) fn holds_work(&self) -> bool {
        match self {
            Desk::Amount { .. } | Desk::Tip { .. } | Desk::RefundPick { .. } => true,
            Desk::Catalog(cart) => !cart.adds.is_empty(),
            // One question to the shell at a time: a command waits for its
            // answer (inline in the shell, so never long).
            Desk::Waiting { .. } => true,
            Desk::Home | Desk::Menu { .. } | Desk::Report(_) | Desk::ConfirmUnpair => false,
        }
    }
}

fn money(minor: u64) -> Money {
    // Every caller bounds `minor` by MAX_MINOR first.
    Money::from_minor(minor.min(MAX_MINOR)).unwrap_or(Money::ZERO)
}

fn short_reference(r: &Reference) -> &str {
    let s = r.as_str();
    s.rsplit('-').next().unwrap_or(s)
}

fn max_message() -> String {
    format!(
        "Above the maximum of {}",
        money(MAX_MINOR).display(proto::Currency::Ngn)
    )
}

/// The menu's entries, always in this order (SPEC 7.1).
const MENU: [&str; 7] = [
    "Catalog",
    "Refund",
    "X report",
    "Z report",
    "Last receipt",
    "Log out",
    "Unpair",
];

impl Terminal {
    // ------------------------------------------------------------ login ---

    pub(super) fn needs_login(&self) -> bool {
        !self.operators.is_empty() && self.operator.is_none()
    }

    pub(super) fn login_screen(&self) -> Screen {
        if self.login.locked_until.is_some() {
            return Screen::Locked {
                seconds: u32::try_from(self.config.lock_ms / 1000).unwrap_or(u32::MAX),
            };
        }
        Screen::Login {
            pin_len: u8::try_from(self.login.pin.len()).unwrap_or(u8::MAX),
            message: self.login.message.clone(),
        }
    }

    /// Someone is keying a PIN, or the login has something to say.
    pub(super) fn login_started(&self) -> bool {
        !self.login.pin.is_empty()
            || self.login.locked_until.is_some()
            || self.login.message.is_some()
    }

    fn may_supervise(&self) -> bool {
        self.operators.is_empty()
            || self
                .operator
                .as_ref()
                .is_some_and(|o| o.role == Role::Supervisor)
    }

    fn login_key(&mut self, now: Now, button: Button) {
        if self.login.locked_until.is_some() {
            return self.report(Report::Ignored {
                input: "button",
                why: "login locked",
            });
        }
        let pad = &mut self.login;
        match button {
            Button::Digit(d) => {
                if pad.pin.len() >= PIN_MAX {
                    return self.report(Report::Ignored {
                        input: "button",
                        why: "a PIN has at most 6 digits",
                    });
                }
                pad.pin.push(char::from(b'0' + d.min(9)));
                pad.message = None;
            }
            Button::Back => {
                pad.pin.pop();
            }
            Button::Cancel => {
                pad.pin.clear();
                pad.message = None;
            }
            Button::Ok => return self.try_login(now),
            Button::Menu | Button::Up | Button::Down => {
                return self.report(Report::Ignored {
                    input: "button",
                    why: "log in first",
                });
            }
        }
        self.rest_screen();
    }

    fn try_login(&mut self, now: Now) {
        let pin = std::mem::take(&mut self.login.pin);
        if pin.len() < PIN_MIN {
            self.login.pin = pin;
            self.login.message = Some("A PIN has 4 to 6 digits".to_string());
            return self.rest_screen();
        }
        let found = proto::pin::Pin::new(pin).ok().and_then(|pin| {
            self.operators
                .iter()
                .find(|o| proto::pin::verify_pin(&pin, &o.salt, &o.pin_hash).unwrap_or(false))
                .cloned()
        });
        match found {
            Some(op) => {
                self.report(Report::LoggedIn {
                    operator_id: op.id.clone(),
                });
                self.operator = Some(op);
                self.login = LoginPad::default();
                self.desk = Desk::Home;
                self.last_activity = now.mono;
            }
            None => {
                self.login.wrong = self.login.wrong.saturating_add(1);
                let attempts = self.login.wrong;
                self.report(Report::WrongPin { attempts });
                if attempts >= self.config.pin_attempts {
                    self.report(Report::LoginLocked);
                    self.login = LoginPad {
                        locked_until: Some(now.mono.after(self.config.lock_ms)),
                        ..LoginPad::default()
                    };
                } else {
                    self.login.message = Some(format!(
                        "Wrong PIN, try again ({attempts} of {})",
                        self.config.pin_attempts
                    ));
                }
            }
        }
        self.rest_screen();
    }

    fn logout(&mut self, why: &'static str) {
        if let Some(op) = self.operator.take() {
            self.report(Report::LoggedOut {
                operator_id: op.id,
                why,
            });
        }
        self.login = LoginPad::default();
        self.desk = Desk::Home;
        self.rest_screen();
    }

    pub(super) fn on_operators(&mut self, _now: Now, list: Vec<Operator>) {
        self.operators = list;
        if let Some(current) = &self.operator {
            match self.operators.iter().find(|o| o.id == current.id) {
                Some(updated) => self.operator = Some(updated.clone()),
                None => return self.logout("operator removed"),
            }
        }
        if self.operators.is_empty() {
            self.login = LoginPad::default();
        }
        self.rest_screen();
    }

    /// No new sales from now on: a sale being keyed, the menu or a report
    /// give way to the end-of-day screen; a refund in hand stays (refunds
    /// remain possible, SPEC 5.9).
    pub(super) fn session_ended(&mut self) {
        let keep = matches!(
            self.desk,
            Desk::Amount {
                purpose: AmountFor::Refund(_),
                ..
            } | Desk::RefundPick { .. }
                | Desk::Waiting { .. }
        );
        if !keep {
            self.desk = Desk::Home;
        }
    }

    pub(super) fn on_stopping(&mut self, now: Now) {
        self.stopping = true;
        let waiting = self.payment.as_ref().is_some_and(|p| {
            matches!(
                p.stage,
                super::Stage::WaitingCard { .. }
                    | super::Stage::Beginning { .. }
                    | super::Stage::WaitingTransfer { .. }
            )
        });
        if waiting {
            self.report(Report::Ignored {
                input: "stopping",
                why: "cancelling the payment waiting for a card",
            });
            self.abort_current(now);
        }
        if self.desk.holds_work() {
            self.desk = Desk::Home;
            self.rest_screen();
        }
    }

    pub(super) fn on_catalog(&mut self, items: Vec<crate::cashier::CatalogItem>) {
        let old = std::mem::replace(&mut self.catalog, items);
        if let Desk::Catalog(cart) = &mut self.desk {
            // Keep what the cart holds of items still sold, in the new order.
            let mut fresh = Cart::new(self.catalog.len());
            for &i in &cart.adds {
                let Some(id) = old.get(i).map(|it| &it.item_id) else {
                    continue;
                };
                if let Some(j) = self.catalog.iter().position(|it| &it.item_id == id) {
                    fresh.qty[j] += 1;
                    fresh.adds.push(j);
                }
            }
            fresh.message = Some("Catalog updated".to_string());
            *cart = fresh;
        }
        self.rest_screen();
    }

    // ------------------------------------------------------------ timers ---

    fn logout_deadline(&self) -> Option<Millis> {
        let resting = self.payment.is_none() && !matches!(self.desk, Desk::Waiting { .. });
        if self.operator.is_none() || !resting {
            return None;
        }
        self.desk_config
            .logout_after_ms
            .map(|ms| self.last_activity.after(ms))
    }

    pub(super) fn desk_timeout(&self) -> Option<Millis> {
        [self.login.locked_until, self.logout_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    pub(super) fn fire_desk_timers(&mut self, now: Now) {
        if self.login.locked_until.is_some_and(|t| now.mono >= t) {
            self.login = LoginPad::default();
            self.rest_screen();
        }
        if self.logout_deadline().is_some_and(|t| now.mono >= t) {
            self.logout("inactivity");
        }
    }

    // ----------------------------------------------------------- screens ---

    /// Re-render the resting screen if nothing else holds the display.
    fn rest_screen(&mut self) {
        if self.payment.is_none() && self.screen_until.is_none() {
            let s = self.resting_screen();
            self.set_screen(s);
        }
    }

    fn set_desk(&mut self, desk: Desk) {
        self.desk = desk;
        self.rest_screen();
    }

    /// The screen of what the cashier is doing; `None` at home.
    pub(super) fn desk_screen(&self) -> Option<Screen> {
        let currency = proto::Currency::Ngn;
        Some(match &self.desk {
            Desk::Home => return None,
            Desk::Amount {
                purpose,
                digits,
                message,
            } => Screen::AmountEntry {
                purpose: match purpose {
                    AmountFor::Sale => EntryPurpose::Sale,
                    AmountFor::Refund(_) => EntryPurpose::Refund,
                },
                amount: money(*digits),
                message: message.clone(),
            },
            Desk::Tip {
                draft,
                custom,
                message,
            } => Screen::Tip {
                amount: draft.base,
                choices: self.tip_choices(draft.base),
                custom: custom.map(money),
                message: message.clone(),
            },
            Desk::Menu { message } => Screen::Menu {
                title: "Menu".to_string(),
                entries: self.menu_entries(),
                selected: None,
                message: message.clone(),
            },
            Desk::ConfirmUnpair => Screen::Menu {
                title: "Unpair this terminal?".to_string(),
                entries: Vec::new(),
                selected: None,
                message: Some(
                    "OK to unpair (the ledger is kept), Back to keep it paired".to_string(),
                ),
            },
            Desk::Catalog(cart) => {
                let total = self.cart_total(cart);
                Screen::Catalog {
                    items: self.catalog.clone(),
                    qty: cart.qty.clone(),
                    first: cart.first,
                    keyed: cart.keyed,
                    cart_total: money(total),
                    cart_count: u32::try_from(cart.adds.len()).unwrap_or(u32::MAX),
                    message: cart.message.clone(),
                }
            }
            Desk::RefundPick {
                sales,
                keyed,
                selected,
                message,
            } => Screen::Menu {
                title: "Refund: pick the sale".to_string(),
                entries: sales
                    .iter()
                    .map(|s| MenuEntry {
                        key: None,
                        label: if s.refundable_left == s.amount {
                            format!(
                                "No. {}  {}",
                                short_reference(&s.reference),
                                s.amount.display(currency)
                            )
                        } else {
                            format!(
                                "No. {}  {} ({} left)",
                                short_reference(&s.reference),
                                s.amount.display(currency),
                                s.refundable_left.display(currency)
                            )
                        },
                        enabled: true,
                    })
                    .collect(),
                selected: *selected,
                message: message
                    .clone()
                    .or_else(|| (!keyed.is_empty()).then(|| format!("Sale no. {keyed}"))),
            },
            Desk::Report(report) => Screen::Report {
                report: report.clone(),
                names: self
                    .operators
                    .iter()
                    .filter(|o| report.totals.by_operator.contains_key(&o.id))
                    .map(|o| (o.id.clone(), o.name.clone()))
                    .collect(),
            },
            Desk::Waiting { screen, .. } => (**screen).clone(),
        })
    }

    fn menu_entries(&self) -> Vec<MenuEntry> {
        (1u8..)
            .zip(MENU)
            .map(|(key, label)| MenuEntry {
                key: Some(key),
                label: label.to_string(),
                enabled: self.menu_refusal(key).is_none(),
            })
            .collect()
    }

    /// Why menu entry `key` may not be used now (None: it may).
    fn menu_refusal(&self, key: u8) -> Option<&'static str> {
        match key {
            1 if self.catalog.is_empty() => Some("No catalog for this event"),
            1 if self.session != SessionStatus::Active => Some("Session closed: no new sales"),
            2 | 4 if !self.may_supervise() => Some("Supervisor only: ask your supervisor"),
            5 if !self.config.printer => Some("No receipt printer on this terminal"),
            5 if self.last_receipt.is_none() => Some("No receipt to print yet"),
            6 if self.operator.is_none() => Some("Nobody is logged in"),
            7 if !self.may_supervise() => Some("Supervisor only: ask your supervisor"),
            1..=7 => None,
            _ => Some("No such entry"),
        }
    }

    fn tip_choices(&self, base: Money) -> Vec<TipOption> {
        let tips = &self.desk_config.tips;
        let mut out: Vec<TipOption> = tips
            .percentages
            .iter()
            .filter_map(|&percent| {
                percent_tip(base, percent).map(|tip| TipOption::Percent { percent, tip })
            })
            .collect();
        out.extend(tips.fixed.iter().map(|&tip| TipOption::Fixed { tip }));
        if tips.custom {
            out.push(TipOption::Custom);
        }
        out.truncate(9);
        out
    }

    fn cart_total(&self, cart: &Cart) -> u64 {
        cart.qty
            .iter()
            .zip(&self.catalog)
            .map(|(&q, it)| u64::from(q).saturating_mul(it.price.minor()))
            .fold(0u64, u64::saturating_add)
    }

    // -------------------------------------------------------------- keys ---

    /// A key between payments (no result screen up).
    pub(super) fn desk_key(&mut self, now: Now, button: Button) {
        if self.needs_login() {
            return self.login_key(now, button);
        }
        match std::mem::replace(&mut self.desk, Desk::Home) {
            Desk::Home => self.home_key(button),
            Desk::Amount {
                purpose,
                digits,
                message,
            } => self.amount_key(now, purpose, digits, message, button),
            Desk::Tip {
                draft,
                custom,
                message,
            } => self.tip_key(now, draft, custom, message, button),
            Desk::Menu { message } => self.menu_key(now, message, button),
            Desk::Catalog(cart) => self.catalog_key(now, cart, button),
            Desk::RefundPick {
                sales,
                keyed,
                selected,
                message,
            } => self.pick_key(sales, keyed, selected, message, button),
            Desk::Report(r) => match button {
                Button::Ok if self.config.printer => {
                    self.outputs
                        .push_back(crate::model::Output::Print(PrintJob::Report(r)));
                    self.set_desk(Desk::Home)
                }
                Button::Ok | Button::Back | Button::Cancel => self.set_desk(Desk::Home),
                Button::Menu => self.set_desk(Desk::Menu { message: None }),
                _ => self.ignore(Desk::Report(r), "keys on the report"),
            },
            Desk::ConfirmUnpair => match button {
                Button::Ok => self.ask(Waiting::Unpair, Query::Unpair),
                Button::Back | Button::Cancel | Button::Menu => {
                    self.set_desk(Desk::Menu { message: None })
                }
                _ => self.ignore(Desk::ConfirmUnpair, "keys on the unpair question"),
            },
            w @ Desk::Waiting { .. } => self.ignore(w, "waiting for the ledger"),
        }
    }

    /// Put `desk` back unchanged and log the key as ignored.
    fn ignore(&mut self, desk: Desk, why: &'static str) {
        self.desk = desk;
        self.report(Report::Ignored {
            input: "button",
            why,
        });
        // A dismissed result screen shows the desk again.
        self.rest_screen();
    }

    fn home_key(&mut self, button: Button) {
        match button {
            Button::Digit(d) if self.session == SessionStatus::Active => {
                self.set_desk(Desk::Amount {
                    purpose: AmountFor::Sale,
                    digits: u64::from(d.min(9)),
                    message: None,
                });
            }
            Button::Menu => self.set_desk(Desk::Menu { message: None }),
            _ => self.ignore(Desk::Home, "nothing to do on the home screen"),
        }
    }

    fn amount_key(
        &mut self,
        now: Now,
        purpose: AmountFor,
        digits: u64,
        message: Option<String>,
        button: Button,
    ) {
        let keep = |digits, message| Desk::Amount {
            purpose: purpose.clone(),
            digits,
            message,
        };
        match button {
            Button::Digit(d) => {
                let next = digits
                    .saturating_mul(10)
                    .saturating_add(u64::from(d.min(9)));
                if next > MAX_MINOR {
                    self.set_desk(keep(digits, Some(max_message())));
                } else {
                    self.set_desk(keep(next, None));
                }
            }
            Button::Back => self.set_desk(keep(digits / 10, None)),
            Button::Cancel if digits > 0 => self.set_desk(keep(0, None)),
            Button::Cancel => self.set_desk(Desk::Home),
            Button::Ok => {
                if digits == 0 {
                    return self.set_desk(keep(0, Some("Enter an amount first".to_string())));
                }
                let amount = money(digits);
                let back = Box::new(keep(digits, None));
                match &purpose {
                    AmountFor::Sale => {
                        let draft = Draft {
                            kind: TxKind::Sale,
                            base: amount,
                            tip: Money::ZERO,
                            items: Vec::new(),
                            original: None,
                            back,
                        };
                        self.tip_or_confirm(now, draft);
                    }
                    AmountFor::Refund(o) => {
                        if amount > o.refundable_left {
                            let m = format!(
                                "At most {} left to refund",
                                o.refundable_left.display(proto::Currency::Ngn)
                            );
                            return self.set_desk(keep(digits, Some(m)));
                        }
                        let draft = Draft {
                            kind: TxKind::Refund,
                            base: amount,
                            tip: Money::ZERO,
                            items: Vec::new(),
                            original: Some(o.clone()),
                            back,
                        };
                        self.confirm(now, draft);
                    }
                }
            }
            Button::Menu | Button::Up | Button::Down => {
                self.ignore(keep(digits, message), "keys on amount entry")
            }
        }
    }

    fn tip_or_confirm(&mut self, now: Now, draft: Draft) {
        if draft.kind == TxKind::Sale && self.desk_config.tips.enabled {
            self.set_desk(Desk::Tip {
                draft,
                custom: None,
                message: None,
            });
        } else {
            self.confirm(now, draft);
        }
    }

    fn tip_key(
        &mut self,
        now: Now,
        mut draft: Draft,
        custom: Option<u64>,
        message: Option<String>,
        button: Button,
    ) {
        let room = MAX_MINOR.saturating_sub(draft.base.minor());
        if let Some(keyed) = custom {
            let desk = |custom, message| Desk::Tip {
                draft: draft.clone(),
                custom,
                message,
            };
            return match button {
                Button::Digit(d) => {
                    let next = keyed.saturating_mul(10).saturating_add(u64::from(d.min(9)));
                    if next > room {
                        self.set_desk(desk(Some(keyed), Some(max_message())))
                    } else {
                        self.set_desk(desk(Some(next), None))
                    }
                }
                Button::Back if keyed > 0 => self.set_desk(desk(Some(keyed / 10), None)),
                Button::Back | Button::Cancel => self.set_desk(desk(None, None)),
                Button::Ok => {
                    draft.tip = money(keyed);
                    self.confirm(now, draft);
                }
                Button::Menu | Button::Up | Button::Down => {
                    self.ignore(desk(custom, message), "keys on the tip screen")
                }
            };
        }
        let choices = self.tip_choices(draft.base);
        match button {
            Button::Digit(0) | Button::Ok => self.confirm(now, draft),
            Button::Digit(d) => match choices.get(usize::from(d) - 1) {
                Some(TipOption::Percent { tip, .. }) | Some(TipOption::Fixed { tip }) => {
                    if tip.minor() > room {
                        let desk = Desk::Tip {
                            draft,
                            custom: None,
                            message: Some(max_message()),
                        };
                        return self.set_desk(desk);
                    }
                    draft.tip = *tip;
                    self.confirm(now, draft);
                }
                Some(TipOption::Custom) => self.set_desk(Desk::Tip {
                    draft,
                    custom: Some(0),
                    message: None,
                }),
                None => self.ignore(
                    Desk::Tip {
                        draft,
                        custom,
                        message,
                    },
                    "no such tip choice",
                ),
            },
            Button::Back | Button::Cancel => self.set_desk(*draft.back),
            Button::Menu | Button::Up | Button::Down => self.ignore(
                Desk::Tip {
                    draft,
                    custom,
                    message,
                },
                "keys on the tip screen",
            ),
        }
    }

    /// The cashier (and customer) confirmed: check what can be checked
    /// before a reference exists, then ask for one.
    fn confirm(&mut self, now: Now, draft: Draft) {
        let total = draft.base.checked_add(draft.tip);
        let refuse = |this: &mut Terminal, draft: Draft, message: String| {
            this.set_desk(draft.back_with(message));
        };
        let Some(total) = total else {
            return refuse(self, draft, max_message());
        };
        if self.stopping {
            return refuse(
                self,
                draft,
                "Terminal stopping: no new payments".to_string(),
            );
        }
        if self.intake_held {
            return refuse(
                self,
                draft,
                "Terminal updating: try again in a few minutes".to_string(),
            );
        }
        if draft.kind == TxKind::Sale {
            if self.session != SessionStatus::Active {
                return refuse(self, draft, "Session closed: no new sales".to_string());
            }
            // Known offline: refuse now what could never be approved
            // offline, before the customer taps (SPEC 5.6).
            if !self.online {
                let limits = self.effective_limits();
                if let Err(refusal) = self.exposure.check(&limits, total, now.wall) {
                    return refuse(self, draft, refusal.message());
                }
            }
        }
        let screen = Box::new(Screen::Processing {
            kind: draft.kind,
            amount: total,
            tip: (!draft.tip.is_zero()).then_some(draft.tip),
        });
        self.desk = Desk::Waiting {
            what: Waiting::Mint(draft),
            screen,
        };
        self.outputs
            .push_back(crate::model::Output::Query(Query::MintReference));
        self.rest_screen();
    }

    fn menu_key(&mut self, now: Now, message: Option<String>, button: Button) {
        let key = match button {
            Button::Digit(d) => d,
            Button::Cancel | Button::Back | Button::Menu => return self.set_desk(Desk::Home),
            Button::Ok | Button::Up | Button::Down => {
                return self.ignore(Desk::Menu { message }, "keys on the menu");
            }
        };
        if let Some(why) = self.menu_refusal(key) {
            return self.set_desk(Desk::Menu {
                message: Some(why.to_string()),
            });
        }
        match key {
            1 => self.set_desk(Desk::Catalog(Cart::new(self.catalog.len()))),
            2 => self.ask(
                Waiting::RecentSales,
                Query::RecentSales {
                    limit: RECENT_SALES,
                },
            ),
            3 => self.ask(Waiting::Report, Query::XReport),
            4 => {
                let operator_id = self.operator.as_ref().map(|o| o.id.clone());
                self.ask(
                    Waiting::Report,
                    Query::CloseShift {
                        operator_id,
                        at: now.wall,
                    },
                );
            }
            5 => {
                if let Some(reference) = self.last_receipt.clone() {
                    self.outputs.push_back(crate::model::Output::Print(
                        crate::cashier::PrintJob::Receipt {
                            reference,
                            copy: crate::cashier::ReceiptCopy::Reprint,
                        },
                    ));
                }
                self.set_desk(Desk::Menu {
                    message: Some("Printing the last receipt".to_string()),
                });
            }
            6 => self.logout("log out from the menu"),
            7 => self.set_desk(Desk::ConfirmUnpair),
            _ => self.set_desk(Desk::Menu { message }),
        }
    }

    fn ask(&mut self, what: Waiting, query: Query) {
        let screen = Box::new(self.screen.clone());
        self.desk = Desk::Waiting { what, screen };
        self.outputs.push_back(crate::model::Output::Query(query));
    }

    fn catalog_key(&mut self, now: Now, mut cart: Cart, button: Button) {
        let n = u32::try_from(self.catalog.len()).unwrap_or(u32::MAX);
        cart.message = None;
        match button {
            Button::Digit(d) => {
                let d = u32::from(d.min(9));
                let joined = cart
                    .keyed
                    .filter(|_| !cart.fresh)
                    .map(|k| k.saturating_mul(10).saturating_add(d));
                let pick = match joined {
                    Some(j) if (1..=n).contains(&j) => Some(j),
                    _ if (1..=n).contains(&d) => Some(d),
                    _ => None,
                };
                match pick {
                    Some(k) => {
                        cart.keyed = Some(k);
                        cart.fresh = false;
                        cart.scroll_to(k);
                    }
                    None => cart.message = Some(format!("No item {d}")),
                }
            }
            Button::Up | Button::Down => {
                let k = match (button, cart.keyed) {
                    (_, None) => 1,
                    (Button::Up, Some(k)) => k.saturating_sub(1).max(1),
                    (_, Some(k)) => (k + 1).min(n.max(1)),
                };
                cart.keyed = Some(k);
                cart.fresh = true;
                cart.scroll_to(k);
            }
            Button::Ok => match cart.keyed {
                Some(k) => {
                    let i = usize::try_from(k - 1).unwrap_or(usize::MAX);
                    let price = self.catalog.get(i).map(|it| it.price.minor());
                    match price {
                        Some(p) if self.cart_total(&cart).saturating_add(p) <= MAX_MINOR => {
                            if let Some(q) = cart.qty.get_mut(i) {
                                *q += 1;
                                cart.adds.push(i);
                            }
                            cart.fresh = true;
                        }
                        Some(_) => cart.message = Some(max_message()),
                        None => cart.message = Some(format!("No item {k}")),
                    }
                }
                None => cart.message = Some("Key an item number, then OK".to_string()),
            },
            Button::Back => match cart.adds.pop() {
                Some(i) => {
                    if let Some(q) = cart.qty.get_mut(i) {
                        *q = q.saturating_sub(1);
                    }
                }
                None => return self.ignore(Desk::Catalog(cart), "cart already empty"),
            },
            Button::Cancel if !cart.adds.is_empty() => cart = Cart::new(self.catalog.len()),
            Button::Cancel => return self.set_desk(Desk::Home),
            Button::Menu => {
                if cart.adds.is_empty() {
                    cart.message = Some("Cart is empty: key an item number, then OK".to_string());
                } else {
                    let items: Vec<LineItem> = self
                        .catalog
                        .iter()
                        .zip(&cart.qty)
                        .filter(|(_, q)| **q > 0)
                        .map(|(it, &qty)| LineItem {
                            item_id: it.item_id.clone(),
                            name: it.name.clone(),
                            qty,
                            unit_price: it.price,
                        })
                        .collect();
                    let base = money(self.cart_total(&cart));
                    let draft = Draft {
                        kind: TxKind::Sale,
                        base,
                        tip: Money::ZERO,
                        items,
                        original: None,
                        back: Box::new(Desk::Catalog(cart)),
                    };
                    return self.tip_or_confirm(now, draft);
                }
            }
        }
        self.set_desk(Desk::Catalog(cart));
    }

    fn pick_key(
        &mut self,
        sales: Vec<OriginalSale>,
        mut keyed: String,
        mut selected: Option<usize>,
        message: Option<String>,
        button: Button,
    ) {
        match button {
            Button::Digit(d) => {
                if keyed.len() >= SALE_NO_MAX_DIGITS {
                    let desk = Desk::RefundPick {
                        sales,
                        keyed,
                        selected,
                        message,
                    };
                    return self.ignore(desk, "sale number too long");
                }
                keyed.push(char::from(b'0' + d.min(9)));
                selected = sales
                    .iter()
                    .position(|s| short_reference(&s.reference).ends_with(keyed.as_str()));
            }
            Button::Back if !keyed.is_empty() => {
                keyed.pop();
                selected = if keyed.is_empty() {
                    (!sales.is_empty()).then_some(0)
                } else {
                    sales
                        .iter()
                        .position(|s| short_reference(&s.reference).ends_with(keyed.as_str()))
                };
            }
            Button::Back => return self.set_desk(Desk::Menu { message: None }),
            Button::Cancel => return self.set_desk(Desk::Home),
            Button::Up | Button::Down if !sales.is_empty() => {
                keyed.clear();
                let last = sales.len() - 1;
                selected = Some(match (button, selected) {
                    (_, None) => 0,
                    (Button::Up, Some(i)) => i.saturating_sub(1),
                    (_, Some(i)) => (i + 1).min(last),
                });
            }
            Button::Ok => {
                if let Some(sale) = selected.and_then(|i| sales.get(i)).cloned() {
                    return self.refund_amount(sale);
                }
                if let Ok(number) = keyed.parse::<u64>() {
                    let pick = Box::new(Desk::RefundPick {
                        sales,
                        keyed,
                        selected,
                        message: None,
                    });
                    let reference = Reference::for_sequence(&self.terminal_id(), number);
                    return self.ask(
                        Waiting::Original { pick, number },
                        Query::Original { reference },
                    );
                }
                let desk = Desk::RefundPick {
                    sales,
                    keyed,
                    selected,
                    message: Some("Key the sale's number or pick one, then OK".to_string()),
                };
                return self.set_desk(desk);
            }
            Button::Up | Button::Down | Button::Menu => {
                let desk = Desk::RefundPick {
                    sales,
                    keyed,
                    selected,
                    message,
                };
                return self.ignore(desk, "keys on the refund picker");
            }
        }
        self.set_desk(Desk::RefundPick {
            sales,
            keyed,
            selected,
            message: None,
        });
    }

    fn terminal_id(&self) -> TerminalId {
        self.config.terminal_id.clone()
    }

    fn refund_amount(&mut self, sale: OriginalSale) {
        let digits = sale.refundable_left.minor();
        self.set_desk(Desk::Amount {
            purpose: AmountFor::Refund(sale),
            digits,
            message: None,
        });
    }

    // ----------------------------------------------------------- answers ---

    pub(super) fn on_answer(&mut self, now: Now, answer: Answer) {
        let Desk::Waiting { what, .. } = std::mem::replace(&mut self.desk, Desk::Home) else {
            return self.report(Report::Ignored {
                input: "answer",
                why: "no question in flight",
            });
        };
        match (what, answer) {
            (Waiting::Mint(draft), Answer::ReferenceMinted { reference }) => {
                self.begin_draft(now, draft, reference)
            }
            (Waiting::RecentSales, Answer::RecentSales(sales)) => {
                let sales: Vec<OriginalSale> = sales
                    .into_iter()
                    .filter(|s| {
                        s.kind == TxKind::Sale
                            && s.state.is_approved()
                            && !s.refundable_left.is_zero()
                    })
                    .collect();
                let message = sales
                    .is_empty()
                    .then(|| "No recent sale: key the sale's number".to_string());
                let selected = (!sales.is_empty()).then_some(0);
                self.set_desk(Desk::RefundPick {
                    sales,
                    keyed: String::new(),
                    selected,
                    message,
                });
            }
            (Waiting::Original { pick, number }, Answer::Original(found)) => match found {
                Some(o)
                    if o.kind == TxKind::Sale
                        && o.state.is_approved()
                        && !o.refundable_left.is_zero() =>
                {
                    self.refund_amount(o)
                }
                _ => {
                    let mut pick = *pick;
                    if let Desk::RefundPick { message, .. } = &mut pick {
                        *message = Some(format!("No sale no. {number} to refund"));
                    }
                    self.set_desk(pick);
                }
            },
            (Waiting::Original { pick, number }, Answer::OriginalPaidByTransfer) => {
                let mut pick = *pick;
                if let Desk::RefundPick { message, .. } = &mut pick {
                    *message = Some(format!(
                        "Sale no. {number} was paid by bank transfer: no card to tap. \
                         Refund it from the event's account"
                    ));
                }
                self.set_desk(pick);
            }
            (Waiting::Report, Answer::Report(report)) => {
                if report.kind == ReportKind::Z {
                    self.last_activity = now.mono;
                    // A Z report is printed as it closes the shift.
                    if self.config.printer {
                        self.outputs
                            .push_back(crate::model::Output::Print(PrintJob::Report(
                                report.clone(),
                            )));
                    }
                }
                self.set_desk(Desk::Report(report))
            }
            (Waiting::Unpair, Answer::Unpaired) => self.set_desk(Desk::Menu {
                message: Some("Unpaired: showing a pairing code".to_string()),
            }),
            (Waiting::Unpair, Answer::UnpairRefused { reason }) => self.set_desk(Desk::Menu {
                message: Some(reason),
            }),
            (what, Answer::Failed { error }) => {
                self.report(Report::QueryFailed { error });
                let message = "Storage error: nothing changed. Try again".to_string();
                match what {
                    Waiting::Mint(draft) => self.set_desk(draft.back_with(message)),
                    Waiting::Original { pick, .. } => self.set_desk(*pick),
                    Waiting::RecentSales | Waiting::Report | Waiting::Unpair => {
                        self.set_desk(Desk::Menu {
                            message: Some(message),
                        })
                    }
                }
            }
            (what, _) => {
                self.report(Report::Ignored {
                    input: "answer",
                    why: "not the answer to the question in flight",
                });
                // Nothing can come of the question any more: go back.
                match what {
                    Waiting::Mint(draft) => self.set_desk(*draft.back),
                    Waiting::Original { pick, .. } => self.set_desk(*pick),
                    Waiting::RecentSales | Waiting::Report | Waiting::Unpair => {
                        self.set_desk(Desk::Menu { message: None })
                    }
                }
            }
        }
    }

    /// The reference is durable: the draft becomes a payment.
    fn begin_draft(&mut self, now: Now, draft: Draft, reference: Reference) {
        let Some(total) = draft.base.checked_add(draft.tip) else {
            return self.set_desk(*draft.back);
        };
        if draft.kind == TxKind::Sale && self.session != SessionStatus::Active {
            return self.set_desk(draft.back_with("Session closed: no new sales".to_string()));
        }
        self.begin(
            now,
            Start {
                reference,
                kind: draft.kind,
                amount: total,
                command_id: None,
                payment_id: None,
                partner_reference: None,
                policy: OfflinePolicy::PreferOnline,
                original: draft.original,
                tip: (!draft.tip.is_zero()).then_some(draft.tip),
                items: draft.items,
            },
        );
    }
}

impl Draft {
    /// The desk the draft came from (amount entry or cart), saying why it
    /// did not go on.
    fn back_with(self, message: String) -> Desk {
        let mut back = *self.back;
        match &mut back {
            Desk::Amount { message: m, .. } => *m = Some(message),
            Desk::Catalog(cart) => cart.message = Some(message),
            _ => {}
        }
        back
    }
}

impl Cart {
    fn new(items: usize) -> Cart {
        Cart {
            qty: vec![0; items],
            adds: Vec::new(),
            first: 0,
            keyed: None,
            fresh: true,
            message: None,
        }
    }

    /// Scroll so that item number `k` (1-based) is on screen.
    fn scroll_to(&mut self, k: u32) {
        let i = usize::try_from(k.saturating_sub(1)).unwrap_or(0);
        if i < self.first {
            self.first = i;
        } else if i >= self.first + CATALOG_PAGE {
            self.first = i + 1 - CATALOG_PAGE;
        }
    }
}
