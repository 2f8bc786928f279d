//! The cashier's screens (SPEC 7): amount entry, tip, login, locked, menu,
//! catalog and the shift report, stacked into a [`Column`].

use proto::{Currency, Total};

use super::column::{CELL_GAP, Column, EntryLook, Item, Keys, Line, Span, cells_width};
use super::symbols::Symbol;
use super::{BODY, INK, LIGHT, MUTED, ORANGE, RED, SMALL, SMALL_BOLD};
use crate::model::with_sign;
use crate::model::{Amount, CatalogLine, MenuEntry, ShiftReport, TipChoice, currency_sign};
use crate::strings::Key;
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
        &[
            col.t(Key::OkToConfirm),
            col.t(Key::BackToDelete),
            col.t(Key::CancelToClear),
        ],
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
    let before = col.tf(Key::SaleAmount, &[&amount.display()]);
    if let Some(custom) = custom {
        col.title(col.t(Key::TipAmount), INK);
        col.gap(4);
        col.line(&before, BODY, MUTED);
        col.gap(12);
        col.amount(custom, INK);
        col.gap(2);
        col.push(Item::Rule(LIGHT));
        let total = Total(amount.value.minor()).add(custom.value);
        let total = with_sign(&total.display(amount.currency), amount.currency);
        let total = col.tf(Key::TotalAmount, &[&total]);
        col.line(&total, BODY, INK);
        message_line(col, message, ORANGE);
        col.gap(16);
        col.hint(&[col.t(Key::OkToConfirm), col.t(Key::BackToDelete)], MUTED);
        return;
    }
    col.title(col.t(Key::AddTip), INK);
    col.gap(4);
    col.line(&before, BODY, MUTED);
    col.gap(10);
    let mut lines: Vec<Line> = choices
        .iter()
        .map(|c| {
            // A fixed tip's label already is its amount (in either form).
            let fixed = c
                .tip
                .filter(|t| c.label == t.display_code() || c.label == t.display());
            let label = match fixed {
                Some(t) => t.display(),
                None => text::sanitize(&c.label),
            };
            let value = match (fixed, c.tip) {
                (None, Some(t)) => t.display(),
                _ => String::new(),
            };
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
        label: col.t(Key::NoTip).to_owned(),
        value: String::new(),
        look: EntryLook::default(),
    });
    let size = col.list_size(&lines, Keys::Caps, &LIST_SIZES, LABEL_MIN, LIST_MAX_W);
    col.entries(lines, Keys::Caps, size, LIST_MAX_W);
    message_line(col, message, ORANGE);
}

pub(super) fn login(col: &mut Column, pin_len: u8, message: Option<&str>) {
    col.title(col.t(Key::LogIn), INK);
    col.gap(6);
    col.line(col.t(Key::EnterPin), BODY, MUTED);
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
    col.hint(&[col.t(Key::OkToLogIn), col.t(Key::BackToDelete)], MUTED);
}

pub(super) fn locked(col: &mut Column, seconds: u32, message: Option<&str>) {
    col.push(Item::Badge(Symbol::Lock, ORANGE, 64));
    col.gap(8);
    col.title(col.t(Key::Locked), ORANGE);
    col.gap(8);
    col.wrapped(
        message.unwrap_or(col.t(Key::TooManyWrongPins)),
        BODY,
        INK,
        3,
    );
    col.gap(6);
    let line = col.tf(Key::LockedFor, &[&duration(col, seconds)]);
    col.wrapped(&line, BODY, INK, 2);
}

/// `30 seconds`, `2 minutes`, `2 min 30 s`.
fn duration(col: &Column, seconds: u32) -> String {
    match seconds {
        1 => col.t(Key::OneSecond).to_owned(),
        s if s < 120 => col.tf(Key::Seconds, &[&s.to_string()]),
        s if s % 60 == 0 => col.tf(Key::Minutes, &[&(s / 60).to_string()]),
        s => col.tf(
            Key::MinutesSeconds,
            &[&(s / 60).to_string(), &(s % 60).to_string()],
        ),
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
    bottom.hint(
        &[
            col.t(Key::OkAdd),
            col.t(Key::BackRemove),
            col.t(Key::MenuPay),
        ],
        MUTED,
    );

    let shown = items.get(first..).unwrap_or_default();
    let lines = || -> Vec<Line> {
        shown
            .iter()
            .map(|l| {
                let price = l.price.display();
                let value = if l.qty > 0 {
                    format!("{}  {price}", col.tf(Key::Quantity, &[&l.qty.to_string()]))
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
    // Prices always with their sign; names are cut first. The smaller
    // size when the labels do not fit, and always when compact.
    let mut chosen = lines();
    let size = [BODY, SMALL_BOLD]
        .into_iter()
        .filter(|z| !col.compact || z.height() < BODY.height())
        .find(|z| col.lines_fit(&chosen, Keys::Numbers, *z, LABEL_MIN, u32::MAX))
        .unwrap_or(SMALL_BOLD);

    let top_h = BODY.height() + if col.compact { 2 } else { 4 };
    let list_room = col.room().saturating_sub(top_h + bottom.height() + 2);
    let fit_n = (list_room / col.entry_height(size).max(1)) as usize;
    chosen.truncate(fit_n);
    let right = match keyed {
        Some(n) => Span {
            text: col.tf(Key::ItemNo, &[&n.to_string()]),
            size: BODY,
            color: INK,
        },
        None if !chosen.is_empty() && chosen.len() < items.len() => Span {
            text: col.tf(
                Key::LinesShown,
                &[
                    &(first + 1).to_string(),
                    &(first + chosen.len()).to_string(),
                    &items.len().to_string(),
                ],
            ),
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
            text: col.t(Key::Catalog).to_owned(),
            size: BODY,
            color: INK,
        },
        Span {
            text: text::truncate(&right.text, right.size, col.inner / 2),
            ..right
        },
    ));
    col.gap(4);
    if items.is_empty() {
        col.line(col.t(Key::NoItems), BODY, MUTED);
    }
    col.entries(chosen, Keys::Numbers, size, u32::MAX);
    let rest = col.room().saturating_sub(bottom.height());
    col.push(Item::Gap(rest));
    col.append(bottom);
}

/// `Cart: 3 items   ₦4,500.00`, shortened to fit: the total whole.
fn cart_line(col: &mut Column, cart: &Cart<'_>) {
    let key = if cart.count == 1 {
        Key::ItemsOne
    } else {
        Key::ItemsMany
    };
    let items = col.tf(key, &[&cart.count.to_string()]);
    let total = cart.total.display();
    let long = col.tf(Key::CartLabel, &[&items]);
    for (label, size) in [(&long, BODY), (&items, BODY), (&items, SMALL_BOLD)] {
        if size.width(label) + size.width("  ") + BODY.width(&total) <= col.inner {
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
    col.title(&col.tf(Key::ReportTitle, &[r.kind.as_str()]), INK);
    col.gap(2);
    let no = r.shift_no.to_string();
    let (shift, times) = match &r.closed_at {
        Some(closed) => (
            col.tf(Key::ShiftClosed, &[&no]),
            col.tf(Key::FromTo, &[&r.opened_at, closed]),
        ),
        None => (
            col.tf(Key::Shift, &[&no]),
            col.tf(Key::Since, &[&r.opened_at]),
        ),
    };
    col.line(&shift, BODY, INK);
    col.line(&times, SMALL, MUTED);
    col.gap(6);
    let outcomes = [
        (Key::Sales, &r.sales),
        (Key::Refunds, &r.refunds),
        (Key::DeclinedRow, &r.declined),
    ];
    let sales = [
        (Key::Tips, &r.tips),
        (Key::OnlineRow, &r.online),
        (Key::OfflineRow, &r.offline),
    ];
    let rows: Vec<(String, u64, Total)> = outcomes
        .iter()
        .chain(&sales)
        .map(|(label, t)| (col.t(*label).to_owned(), t.count, t.total))
        .collect();
    let table = Table::new(col.t(Key::CountHeading), &rows, r.currency);
    let labels: Vec<String> = rows.iter().map(|(l, _, _)| l.clone()).collect();
    let size = col.rows_size(&labels, |z| table.width(z), &LIST_SIZES, "Declined".len());
    let gap = row_gap(size);
    table.heading(col, "", size);
    col.gap(gap);
    for (i, line) in table.lines.iter().enumerate() {
        if i == outcomes.len() {
            col.push(Item::Rule(LIGHT));
        }
        col.cells(&rows[i].0, line.to_vec(), table.widths(size), size, INK);
        col.gap(gap);
    }
}

/// Sales by operator and by item, as many lines as the room allows.
pub(super) fn report_breakdown(col: &mut Column, r: &ShiftReport) {
    let cur = r.currency;
    let operators: Vec<(String, u64, Total)> = r
        .by_operator
        .iter()
        .map(|(name, t)| (name.clone(), t.count, t.total))
        .collect();
    let table = Table::new(col.t(Key::CountHeading), &operators, cur);
    section(col, col.t(Key::ByOperator), &table, &operators);
    let items: Vec<(String, u64, Total)> = r
        .by_item
        .iter()
        .map(|i| (i.name.clone(), i.qty, i.total))
        .collect();
    let table = Table::new(col.t(Key::QtyHeading), &items, cur);
    section(col, col.t(Key::ByItem), &table, &items);
}

/// A report table's number columns: counts and amounts (without currency,
/// the column heading has its sign), each right-aligned in a column as
/// wide as its widest cell in the size drawn.
struct Table {
    /// The column headings: count, amount.
    heading: [String; 2],
    /// Count and amount of each line.
    lines: Vec<[String; 2]>,
}

impl Table {
    fn new(count_heading: &str, rows: &[(String, u64, Total)], currency: Currency) -> Table {
        Table {
            heading: [count_heading.to_owned(), currency_sign(currency).to_owned()],
            lines: rows
                .iter()
                .map(|(_, count, total)| {
                    [
                        count.to_string(),
                        without_code(total.display(currency), currency),
                    ]
                })
                .collect(),
        }
    }

    /// The columns' widths in `size`.
    fn widths(&self, size: TextSize) -> Vec<u32> {
        (0..2)
            .map(|i| {
                self.lines
                    .iter()
                    .map(|l| &l[i])
                    .chain(std::iter::once(&self.heading[i]))
                    .map(|c| size.width(c))
                    .max()
                    .unwrap_or(0)
            })
            .collect()
    }

    /// Both columns with the gap between them.
    fn width(&self, size: TextSize) -> u32 {
        cells_width(&self.widths(size))
    }

    /// The heading line: `label` and the columns' headings, muted.
    fn heading(&self, col: &mut Column, label: &str, size: TextSize) {
        col.cells(label, self.heading.to_vec(), self.widths(size), size, MUTED);
    }
}

/// A heading (with the column headings) and its lines while they fit;
/// "+ N more" for the rest.
fn section(col: &mut Column, heading: &str, table: &Table, rows: &[(String, u64, Total)]) {
    if rows.is_empty() {
        return;
    }
    let labels: Vec<String> = rows.iter().map(|(l, _, _)| l.clone()).collect();
    let size = col.rows_size(&labels, |z| table.width(z), &LIST_SIZES, LABEL_MIN);
    let gap = row_gap(size);
    let row_h = size.height() + gap;
    let more_h = SMALL.height() + gap;
    let head_h = 8 + size.height() + gap;
    let first_h = row_h + if rows.len() > 1 { more_h } else { 0 };
    // The heading on a line of its own when it does not fit beside the
    // column headings and there is room for it.
    let apart = size.width(&text::sanitize(heading)) + CELL_GAP + table.width(size) > col.inner
        && col.room() >= head_h + size.height() + first_h;
    if col.room() < head_h + row_h {
        return;
    }
    col.gap(8);
    if apart {
        col.row_cut(heading, "", size, MUTED);
        table.heading(col, "", size);
    } else {
        table.heading(col, heading, size);
    }
    col.gap(gap);
    for (i, (label, _, _)) in rows.iter().enumerate() {
        let left = rows.len() - i;
        let need = if left > 1 { row_h + more_h } else { row_h };
        if col.room() < need {
            let more = col.tf(Key::More, &[&left.to_string()]);
            col.row_cut(&more, "", SMALL, MUTED);
            break;
        }
        col.cells(
            label,
            table.lines[i].to_vec(),
            table.widths(size),
            size,
            INK,
        );
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
