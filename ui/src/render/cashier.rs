//! The cashier's screens (SPEC 7): amount entry, tip, login, locked, menu,
//! catalog and the shift report, stacked into a [`Column`].

use proto::{Currency, Total};

use super::column::{Column, EntryLook, Item, Keys, Line, Span};
use super::symbols::Symbol;
use super::{BODY, INK, LIGHT, MUTED, ORANGE, RED, SMALL, SMALL_BOLD};
use crate::model::{Amount, CatalogLine, LOCKED_NOTE, MenuEntry, ShiftReport, Tally, TipChoice};
use crate::text::{self, TextSize};

/// PIN slots on the login screen (PINs have 4 to 6 digits).
const PIN_SLOTS: u8 = 6;
/// A list line keeps at least this much of its label before the list
/// drops to a smaller size.
const LABEL_MIN: usize = 12;
/// Sizes of list lines, largest first.
const LIST_SIZES: [TextSize; 2] = [BODY, SMALL_BOLD];
/// Short lists (menu, tip choices) stay this narrow on a wide screen, so
/// a value is not far from its label.
const LIST_MAX_W: u32 = 320;

pub(super) fn amount_entry(col: &mut Column, title: &str, amount: &Amount, message: Option<&str>) {
    col.title(&title.to_uppercase(), INK);
    col.gap(14);
    col.amount(amount, INK);
    col.gap(2);
    col.push(Item::Rule(LIGHT));
    if let Some(m) = message {
        col.gap(6);
        col.wrapped(m, BODY, RED, 2);
    }
    col.gap(18);
    col.hint(
        &["OK to confirm", "Back to delete", "Cancel to clear"],
        MUTED,
    );
}

pub(super) fn tip(
    col: &mut Column,
    amount: &Amount,
    choices: &[TipChoice],
    custom: Option<&Amount>,
    message: Option<&str>,
) {
    let before = format!("Sale {}", amount.display());
    if let Some(custom) = custom {
        col.title("TIP AMOUNT", INK);
        col.gap(4);
        col.line(&before, BODY, MUTED);
        col.gap(12);
        col.amount(custom, INK);
        col.gap(2);
        col.push(Item::Rule(LIGHT));
        let total = Total(amount.value.minor()).add(custom.value);
        col.line(
            &format!("Total {}", total.display(amount.currency)),
            BODY,
            INK,
        );
        message_line(col, message, ORANGE);
        col.gap(16);
        col.hint(&["OK to confirm", "Back to delete"], MUTED);
        return;
    }
    col.title("ADD A TIP?", INK);
    col.gap(4);
    col.line(&before, BODY, MUTED);
    col.gap(10);
    let mut lines: Vec<Line> = choices
        .iter()
        .map(|c| {
            let label = text::sanitize(&c.label);
            // A fixed tip's label already is its amount.
            let value = c
                .tip
                .map(|t| t.display())
                .filter(|v| *v != label)
                .unwrap_or_default();
            Line {
                key: Some(c.key.to_string()),
                label,
                value,
                look: EntryLook::default(),
            }
        })
        .collect();
    lines.push(Line {
        key: Some("0".to_owned()),
        label: "No tip".to_owned(),
        value: String::new(),
        look: EntryLook::default(),
    });
    let size = col.list_size(&lines, Keys::Caps, &LIST_SIZES, LABEL_MIN, LIST_MAX_W);
    col.entries(lines, Keys::Caps, size, LIST_MAX_W);
    message_line(col, message, ORANGE);
}

pub(super) fn login(col: &mut Column, pin_len: u8, message: Option<&str>) {
    col.title("LOG IN", INK);
    col.gap(6);
    col.line("Enter your PIN", BODY, MUTED);
    col.gap(16);
    col.push(Item::PinDots {
        filled: pin_len.min(PIN_SLOTS),
        slots: PIN_SLOTS,
        d: 20,
    });
    if let Some(m) = message {
        col.gap(14);
        col.wrapped(m, BODY, RED, 2);
    }
    col.gap(18);
    col.hint(&["OK to log in", "Back to delete"], MUTED);
}

pub(super) fn locked(col: &mut Column, seconds: u32, message: Option<&str>) {
    col.push(Item::Badge(Symbol::Lock, ORANGE, 64));
    col.gap(8);
    col.title("LOCKED", ORANGE);
    col.gap(8);
    col.wrapped(message.unwrap_or(LOCKED_NOTE), BODY, INK, 3);
    col.gap(6);
    col.wrapped(&format!("Locked for {}", duration(seconds)), BODY, INK, 2);
}

/// `30 seconds`, `2 minutes`, `2 min 30 s`.
fn duration(seconds: u32) -> String {
    match seconds {
        1 => "1 second".to_owned(),
        s if s < 120 => format!("{s} seconds"),
        s if s % 60 == 0 => format!("{} minutes", s / 60),
        s => format!("{} min {} s", s / 60, s % 60),
    }
}

pub(super) fn menu(
    col: &mut Column,
    title: &str,
    entries: &[MenuEntry],
    selected: Option<usize>,
    message: Option<&str>,
) {
    col.title(&title.to_uppercase(), INK);
    col.gap(4);
    let lines: Vec<Line> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| Line {
            key: e.key.map(|k| k.to_string()),
            label: e.label.clone(),
            value: String::new(),
            look: EntryLook {
                selected: selected == Some(i),
                greyed: !e.enabled,
                marked: false,
            },
        })
        .collect();
    let size = col.list_size(&lines, Keys::Caps, &LIST_SIZES, LABEL_MIN, LIST_MAX_W);
    col.entries(lines, Keys::Caps, size, LIST_MAX_W);
    if let Some(m) = message {
        col.gap(6);
        col.wrapped(m, BODY, ORANGE, 2);
    }
}

/// The cart under the catalog.
pub(super) struct Cart<'a> {
    pub total: &'a Amount,
    pub count: u32,
}

pub(super) fn catalog(
    col: &mut Column,
    items: &[CatalogLine],
    first: usize,
    keyed: Option<u32>,
    cart: Cart<'_>,
    message: Option<&str>,
) {
    // The cart and the keys at the bottom; the list takes what is left.
    let mut bottom = col.scratch();
    message_line(&mut bottom, message, ORANGE);
    bottom.push(Item::Rule(LIGHT));
    cart_line(&mut bottom, &cart);
    bottom.gap(4);
    bottom.hint(&["OK add", "Back remove", "Menu pay"], MUTED);

    let shown = items.get(first..).unwrap_or_default();
    let lines = |full: bool| -> Vec<Line> {
        shown
            .iter()
            .map(|l| {
                let price = if full {
                    l.price.display()
                } else {
                    plain(&l.price)
                };
                let value = if l.qty > 0 {
                    format!("x{}  {price}", l.qty)
                } else {
                    price
                };
                Line {
                    key: Some(l.number.to_string()),
                    label: l.name.clone(),
                    value,
                    look: EntryLook {
                        selected: keyed == Some(l.number),
                        greyed: false,
                        marked: l.qty > 0,
                    },
                }
            })
            .collect()
    };
    // Prices with their currency when they fit, else without (the cart's
    // total always has it); the smaller size only when compact.
    let candidates = [(BODY, true), (SMALL_BOLD, true), (SMALL_BOLD, false)];
    let (size, full) = candidates
        .into_iter()
        .filter(|(z, _)| !col.compact || z.height() < BODY.height())
        .find(|(z, full)| col.lines_fit(&lines(*full), Keys::Numbers, *z, LABEL_MIN, u32::MAX))
        .unwrap_or((SMALL_BOLD, false));
    let mut chosen = lines(full);

    let top_h = BODY.height() + if col.compact { 2 } else { 4 };
    let list_room = col.room().saturating_sub(top_h + bottom.height() + 2);
    let fit_n = (list_room / col.entry_height(size).max(1)) as usize;
    chosen.truncate(fit_n);
    let right = match keyed {
        Some(n) => Span {
            text: format!("Item no. {n}"),
            size: BODY,
            color: INK,
        },
        None if !chosen.is_empty() && chosen.len() < items.len() => Span {
            text: format!("{}-{} of {}", first + 1, first + chosen.len(), items.len()),
            size: SMALL,
            color: MUTED,
        },
        None => Span {
            text: String::new(),
            size: SMALL,
            color: MUTED,
        },
    };
    col.gap(2);
    col.push(Item::Split(
        Span {
            text: "CATALOG".to_owned(),
            size: BODY,
            color: INK,
        },
        Span {
            text: text::truncate(&right.text, right.size.chars_in(col.inner / 2)),
            ..right
        },
    ));
    col.gap(4);
    if items.is_empty() {
        col.line("No items in the catalog", BODY, MUTED);
    }
    col.entries(chosen, Keys::Numbers, size, u32::MAX);
    let rest = col.room().saturating_sub(bottom.height());
    col.push(Item::Gap(rest));
    col.append(bottom);
}

/// `Cart: 3 items   NGN 4,500.00`, shortened to fit: the total whole.
fn cart_line(col: &mut Column, cart: &Cart<'_>) {
    let noun = if cart.count == 1 { "item" } else { "items" };
    let items = format!("{} {noun}", cart.count);
    let total = cart.total.display();
    let long = format!("Cart: {items}");
    for (label, size) in [(&long, BODY), (&items, BODY), (&items, SMALL_BOLD)] {
        if size.width(label.len() + 1) + BODY.width(total.len()) <= col.inner {
            col.push(Item::Split(
                Span {
                    text: label.clone(),
                    size,
                    color: INK,
                },
                Span {
                    text: total,
                    size: BODY,
                    color: INK,
                },
            ));
            return;
        }
    }
    col.row_cut(&items, &total, SMALL_BOLD, INK);
}

/// `1,500.00`: the amount without its currency.
fn plain(a: &Amount) -> String {
    without_code(a.display(), a.currency)
}

/// A displayed amount (`NGN 1,500.00`) without its currency code.
fn without_code(shown: String, currency: Currency) -> String {
    match shown.strip_prefix(currency.code()) {
        Some(rest) => rest.trim_start().to_owned(),
        None => shown,
    }
}

/// The report's title and headline figures.
pub(super) fn report_summary(col: &mut Column, r: &ShiftReport) {
    col.gap(6);
    col.title(&format!("{} REPORT", r.kind.as_str()), INK);
    col.gap(2);
    let (shift, times) = match &r.closed_at {
        Some(closed) => (
            format!("Shift {} closed", r.shift_no),
            format!("{} - {closed}", r.opened_at),
        ),
        None => (
            format!("Shift {}", r.shift_no),
            format!("Since {}", r.opened_at),
        ),
    };
    col.line(&shift, BODY, INK);
    col.line(&times, SMALL, MUTED);
    col.gap(6);
    let outcomes = [
        ("Sales", &r.sales),
        ("Refunds", &r.refunds),
        ("Declined", &r.declined),
    ];
    let sales = [
        ("Tips", &r.tips),
        ("Online", &r.online),
        ("Offline", &r.offline),
    ];
    let table = Table::new(
        outcomes
            .iter()
            .chain(&sales)
            .map(|(_, t)| (t.count, t.total)),
        r.currency,
    );
    let rows: Vec<(String, String)> = outcomes
        .iter()
        .chain(&sales)
        .map(|(label, t)| ((*label).to_owned(), table.tally(t)))
        .collect();
    let size = col.rows_size(&rows, &LIST_SIZES, "Declined".len());
    let gap = row_gap(size);
    col.row_cut("", &table.cells("No.", r.currency.code()), size, MUTED);
    col.gap(gap);
    for (i, (label, cells)) in rows.iter().enumerate() {
        if i == outcomes.len() {
            col.push(Item::Rule(LIGHT));
        }
        col.row_cut(label, cells, size, INK);
        col.gap(gap);
    }
}

/// Sales by operator and by item, as many lines as the room allows.
pub(super) fn report_breakdown(col: &mut Column, r: &ShiftReport) {
    let cur = r.currency;
    let code = cur.code();
    let table = Table::new(r.by_operator.iter().map(|(_, t)| (t.count, t.total)), cur);
    let operators: Vec<(String, String)> = r
        .by_operator
        .iter()
        .map(|(name, t)| (name.clone(), table.tally(t)))
        .collect();
    section(col, "BY OPERATOR", &table.cells("No.", code), &operators);
    let table = Table::new(r.by_item.iter().map(|i| (i.qty, i.total)), cur);
    let items: Vec<(String, String)> = r
        .by_item
        .iter()
        .map(|i| (i.name.clone(), table.line(i.qty, i.total)))
        .collect();
    section(col, "BY ITEM", &table.cells("Qty", code), &items);
}

/// A report table's number columns: counts and amounts (without currency,
/// the column heading has it) right-aligned in widths shared by the
/// table's lines, so the columns line up in the monospace font.
struct Table {
    currency: Currency,
    count_w: usize,
    amount_w: usize,
}

impl Table {
    /// Widths for these `(count, total)` lines.
    fn new(lines: impl Iterator<Item = (u64, Total)> + Clone, currency: Currency) -> Table {
        let count_w = lines.clone().map(|(c, _)| c.to_string().len()).max();
        let amount_w = lines
            .map(|(_, t)| without_code(t.display(currency), currency).len())
            .max();
        Table {
            currency,
            count_w: count_w.unwrap_or(0).max(3),
            amount_w: amount_w.unwrap_or(0).max(3),
        }
    }

    fn cells(&self, count: &str, amount: &str) -> String {
        format!(
            "{count:>cw$} {amount:>aw$}",
            cw = self.count_w,
            aw = self.amount_w
        )
    }

    fn tally(&self, t: &Tally) -> String {
        self.line(t.count, t.total)
    }

    fn line(&self, count: u64, total: Total) -> String {
        let amount = without_code(total.display(self.currency), self.currency);
        self.cells(&count.to_string(), &amount)
    }
}

/// A heading (with the column headings) and its lines while they fit;
/// "+ N more" for the rest.
fn section(col: &mut Column, heading: &str, columns: &str, rows: &[(String, String)]) {
    if rows.is_empty() {
        return;
    }
    let size = col.rows_size(rows, &LIST_SIZES, LABEL_MIN);
    let gap = row_gap(size);
    let row_h = size.height() + gap;
    let more_h = SMALL.height() + gap;
    let head_h = 8 + size.height() + gap;
    if col.room() < head_h + row_h {
        return;
    }
    col.gap(8);
    col.row_cut(heading, columns, size, MUTED);
    col.gap(gap);
    for (i, (label, cells)) in rows.iter().enumerate() {
        let left = rows.len() - i;
        let need = if left > 1 { row_h + more_h } else { row_h };
        if col.room() < need {
            col.row_cut(&format!("+ {left} more"), "", SMALL, MUTED);
            break;
        }
        col.row_cut(label, cells, size, INK);
        col.gap(gap);
    }
}

fn row_gap(size: TextSize) -> u32 {
    if size.height() >= BODY.height() { 4 } else { 3 }
}

/// A message under a list or an amount, when there is one.
fn message_line(col: &mut Column, message: Option<&str>, color: super::Rgb565) {
    if let Some(m) = message {
        col.gap(8);
        col.wrapped(m, BODY, color, 2);
    }
}
