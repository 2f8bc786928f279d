//! Drawing a [`Screen`]: a pure function of the model onto any RGB565
//! `DrawTarget`. Every element is measured before it is drawn; text is cut
//! to fit and an element that would not fit vertically is left out, so
//! nothing is ever drawn outside the target.

use embedded_graphics::pixelcolor::Rgb565;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Line, PrimitiveStyle, Rectangle, RoundedRectangle};

use crate::model::with_sign;
use crate::model::{
    Amount, CancelReason, DeclineReason, Screen, SessionTotals, StatusLine, Tally, View,
};
use crate::strings::{self, Key, Language};
use crate::text::{
    self, BOLD_11, BOLD_14, BOLD_17, BOLD_20, BOLD_25, BOLD_30, BOLD_35, BOLD_42, REGULAR_11,
    REGULAR_14, TextSize,
};

mod cashier;
mod column;
mod qr;
mod symbols;
mod transfer;

use column::{Column, Item};
use qr::Qr;
use symbols::{PERSON_W, Symbol, draw_person};

const fn rgb(r: u8, g: u8, b: u8) -> Rgb565 {
    Rgb565::new(r >> 3, g >> 2, b >> 3)
}

const BG: Rgb565 = rgb(255, 255, 255);
const INK: Rgb565 = rgb(16, 16, 16);
const MUTED: Rgb565 = rgb(72, 72, 72);
const HEADER_BG: Rgb565 = rgb(16, 40, 80);
const HEADER_FG: Rgb565 = rgb(255, 255, 255);
const HEADER_SUB: Rgb565 = rgb(200, 212, 232);
const GREEN: Rgb565 = rgb(0, 112, 40);
const ONLINE: Rgb565 = rgb(96, 216, 120);
const RED: Rgb565 = rgb(184, 16, 16);
const GREY: Rgb565 = rgb(64, 64, 64);
const PURPLE: Rgb565 = rgb(96, 32, 136);
const ORANGE: Rgb565 = rgb(200, 88, 0);
const AMBER: Rgb565 = rgb(255, 184, 0);
/// Text of a list line that cannot be used.
const GREYED: Rgb565 = rgb(150, 150, 150);
/// Thin lines and outlines.
const LIGHT: Rgb565 = rgb(200, 200, 200);
/// The band behind a catalog line that is in the cart.
const IN_CART: Rgb565 = rgb(214, 238, 220);

/// Titles.
const BIG: TextSize = TextSize::new(&BOLD_30);
/// Body text.
const BODY: TextSize = TextSize::new(&REGULAR_14);
/// The event's name in the status strip.
const HEADER: TextSize = TextSize::new(&BOLD_14);
const SMALL: TextSize = TextSize::new(&REGULAR_11);
const SMALL_BOLD: TextSize = TextSize::new(&BOLD_11);

/// Amounts never get "...": they drop to a smaller size instead (every
/// `Money` fits at 25 px in 240 px).
const AMOUNT_SIZES: [TextSize; 8] = [
    TextSize::new(&BOLD_42),
    TextSize::new(&BOLD_35),
    BIG,
    TextSize::new(&BOLD_25),
    TextSize::new(&BOLD_20),
    TextSize::new(&BOLD_17),
    TextSize::new(&BOLD_14),
    SMALL_BOLD,
];
const TITLE_SIZES: [TextSize; 4] = [
    BIG,
    TextSize::new(&BOLD_25),
    TextSize::new(&BOLD_20),
    TextSize::new(&BOLD_14),
];

/// Bodies at least this wide show a report in two panes.
const SPLIT_W: u32 = 440;

const MARGIN: u32 = 8;
const HEADER_ROW1: u32 = 24;
const HEADER_H: u32 = 46;
const FOOTER_H: u32 = 48;
/// Symbol size and tallest text in a compact column.
const COMPACT_SYMBOL: u32 = 40;
const COMPACT_TEXT_H: u32 = 36;
/// Width of the three "working" dots.
const DOTS_W: u32 = 12 + 2 * 24;

/// Draws `screen` onto `target` in English. Pure: no I/O, no clock; the
/// same model on the same size always gives the same pixels. Sizes from
/// 240x320 portrait to 480x320 landscape are designed for; other sizes
/// never draw outside the target but may leave elements out.
pub fn render<D: DrawTarget<Color = Rgb565>>(
    screen: &Screen,
    target: &mut D,
) -> Result<(), D::Error> {
    render_in(screen, Language::En, target)
}

/// [`render`] with the screen's own texts in `lang`.
pub fn render_in<D: DrawTarget<Color = Rgb565>>(
    screen: &Screen,
    lang: Language,
    target: &mut D,
) -> Result<(), D::Error> {
    let bb = target.bounding_box();
    let mut t = target.translated(bb.top_left);
    let size = bb.size;
    t.fill_solid(&Rectangle::new(Point::zero(), size), BG)?;
    // While booting the terminal does not know yet whether it is online.
    let link_known = !matches!(screen.view, View::Booting { .. });
    draw_header(&mut t, size, &screen.status, link_known, lang)?;

    let (body, with_footer) = body_area(screen, size);
    if with_footer {
        draw_cancel_footer(
            &mut t,
            size,
            body.top_left.y as u32 + body.size.height,
            lang,
        )?;
    }
    // Encoded once per frame: encoding costs more than drawing.
    let qr = receipt_qr(screen);
    let Panes {
        panes,
        background,
        divider,
    } = panes(screen, body, lang, qr.as_ref());
    if background != BG {
        t.fill_solid(&body, background)?;
    }
    for (i, (area, col)) in panes.iter().enumerate() {
        if i > 0 && divider && area.size.height > 16 {
            // A divider between panes.
            t.fill_solid(
                &Rectangle::new(
                    area.top_left + Point::new(0, 8),
                    Size::new(1, area.size.height - 16),
                ),
                LIGHT,
            )?;
        }
        col.draw(&mut t, *area, background)?;
    }
    Ok(())
}

/// The area below the header (and above the cancel bar, if any).
fn body_area(screen: &Screen, size: Size) -> (Rectangle, bool) {
    let body_top = HEADER_H.min(size.height);
    let with_footer = matches!(screen.view, View::TapCard { .. } | View::RefundTap { .. })
        && size.height >= body_top + FOOTER_H;
    let body_bottom = if with_footer {
        size.height - FOOTER_H
    } else {
        size.height
    };
    let body = Rectangle::new(
        Point::new(0, body_top as i32),
        Size::new(size.width, body_bottom - body_top),
    );
    (body, with_footer)
}

/// The body's columns, where each is drawn, the body's background, and
/// whether a line divides the columns.
struct Panes {
    panes: Vec<(Rectangle, Column)>,
    background: Rgb565,
    divider: bool,
}

/// The body's columns and where each is drawn: one column; two panes side
/// by side for a report on a wide body; a result with a receipt on a body
/// wider than high gets its QR code in a pane on the right.
fn panes(screen: &Screen, body: Rectangle, lang: Language, qr: Option<&Qr>) -> Panes {
    if let (View::Report { report }, true) = (&screen.view, body.size.width >= SPLIT_W) {
        let w = body.size.width / 2;
        let left = Rectangle::new(body.top_left, Size::new(w, body.size.height));
        let right = Rectangle::new(
            body.top_left + Point::new(w as i32, 0),
            Size::new(body.size.width - w, body.size.height),
        );
        let (l, _) = fit(left.size, lang, |col| {
            cashier::report_summary(col, report);
            col.fill();
            BG
        });
        let (r, _) = fit(right.size, lang, |col| {
            cashier::report_breakdown(col, report);
            col.fill();
            BG
        });
        return Panes {
            panes: vec![(left, l), (right, r)],
            background: BG,
            divider: true,
        };
    }
    if let Some((qr, px)) = side_qr(qr, body) {
        let pane_w = qr.side(px) + 2 * MARGIN;
        let left = Rectangle::new(
            body.top_left,
            Size::new(body.size.width - pane_w, body.size.height),
        );
        let right = Rectangle::new(
            body.top_left + Point::new(left.size.width as i32, 0),
            Size::new(pane_w, body.size.height),
        );
        let (l, background) = fit(left.size, lang, |col| compose(col, screen, None));
        let caption_key = match screen.view {
            View::Pairing { .. } => Key::ScanToPair,
            View::Transfer { .. } => Key::ScanToPay,
            _ => Key::ScanForReceipt,
        };
        let (r, _) = fit(right.size, lang, |col| {
            let caption = col.t(caption_key);
            let with_caption =
                SMALL.width(caption) <= col.inner && qr.side(px) + 6 + SMALL.height() <= col.avail;
            col.push(Item::Qr(qr.clone(), px));
            if with_caption {
                col.push(Item::Gap(6));
                col.line(caption, SMALL, BG);
            }
            BG
        });
        return Panes {
            panes: vec![(left, l), (right, r)],
            background,
            divider: false,
        };
    }
    let (col, background) = layout(screen, body, lang, qr);
    Panes {
        panes: vec![(body, col)],
        background,
        divider: false,
    }
}

/// The receipt of a result screen, if it has one that encodes.
fn receipt_qr(screen: &Screen) -> Option<Qr> {
    match &screen.view {
        View::Approved {
            receipt_url: Some(url),
            ..
        }
        | View::Declined {
            receipt_url: Some(url),
            ..
        } => Qr::new(url),
        View::Pairing {
            code: Some(code), ..
        } => Qr::new(code),
        View::Transfer {
            amount,
            account: Some(account),
            code: Some(code),
            status,
            ..
        } if status.open() => Qr::new(&crate::model::transfer_qr_text(account, amount, code)),
        _ => None,
    }
}

/// The receipt's QR code and its module size when it goes in a pane of
/// its own: on a body wider than high, taking at most 2/5 of its width.
fn side_qr(qr: Option<&Qr>, body: Rectangle) -> Option<(&Qr, u32)> {
    if body.size.width <= body.size.height {
        return None;
    }
    let qr = qr?;
    let room = (body.size.width * 2 / 5)
        .saturating_sub(2 * MARGIN)
        .min(body.size.height.saturating_sub(2 * MARGIN));
    let px = qr.px_for(room)?;
    Some((qr, px))
}

/// The body's column: full size first; compact when that is too tall.
/// `qr`: the receipt's code; it goes at the bottom unless it has a pane
/// of its own.
fn layout(screen: &Screen, body: Rectangle, lang: Language, qr: Option<&Qr>) -> (Column, Rgb565) {
    let inline = qr.filter(|_| side_qr(qr, body).is_none());
    fit(body.size, lang, |col| compose(col, screen, inline))
}

/// The column `build` makes for an area of `size`: full size first;
/// compact when that is too tall.
fn fit(size: Size, lang: Language, build: impl Fn(&mut Column) -> Rgb565) -> (Column, Rgb565) {
    let mut col = Column::new(size, false, lang);
    let background = build(&mut col);
    if col.height() <= size.height {
        return (col, background);
    }
    let mut col = Column::new(size, true, lang);
    let background = build(&mut col);
    if col.height() <= size.height {
        return (col, background);
    }
    // Last: compact and without the symbols a receipt code may replace.
    let mut col = Column::new(size, true, lang);
    col.tight = true;
    let background = build(&mut col);
    (col, background)
}

/// The receipt's QR code at the bottom of a result screen's column, as
/// large as the room left allows (when even the smallest does not fit,
/// the column is too tall: the compact one is tried, then the tight one,
/// where the code takes the place of the result's symbol).
fn inline_receipt(col: &mut Column, qr: Option<&Qr>) {
    let Some(qr) = qr else {
        return;
    };
    let gap = if col.compact { 6 } else { 10 };
    let room = col.room().saturating_sub(gap).min(col.inner);
    let px = qr.px_for(room).unwrap_or(qr::MIN_PX);
    col.push(Item::Gap(gap));
    col.push(Item::Qr(qr.clone(), px));
}

/// Stacks the view's items into `col`; returns the body's background.
/// `inline_qr`: a result's receipt code to put at the bottom of this column.
fn compose(col: &mut Column, screen: &Screen, inline_qr: Option<&Qr>) -> Rgb565 {
    match &screen.view {
        View::Booting { message } => {
            col.title(col.t(Key::Starting), INK);
            col.gap(12);
            col.push(Item::Dots(MUTED));
            col.gap(12);
            col.wrapped(message, BODY, MUTED, 3);
            BG
        }
        View::Idle => {
            idle(col, &screen.status);
            BG
        }
        View::TapCard { amount, tip } => {
            col.title(col.t(Key::TapCard), INK);
            col.gap(8);
            col.amount(amount, INK);
            tip_line(col, tip.as_ref(), MUTED);
            col.gap(14);
            col.push(Item::Contactless(INK, 72));
            BG
        }
        View::RefundTap { amount } => {
            col.title(col.t(Key::Refund), PURPLE);
            col.gap(8);
            col.amount(amount, INK);
            col.gap(10);
            col.push(Item::Contactless(PURPLE, 60));
            col.gap(6);
            col.line(col.t(Key::TapSameCard), BODY, PURPLE);
            BG
        }
        View::Processing {
            amount,
            message,
            tip,
        } => {
            col.title(col.t(Key::Processing), INK);
            col.gap(8);
            col.amount(amount, INK);
            tip_line(col, tip.as_ref(), MUTED);
            col.gap(14);
            col.push(Item::Dots(INK));
            col.gap(14);
            col.line(col.t(Key::PleaseWait), BODY, MUTED);
            if !message.is_empty() {
                col.gap(4);
                col.wrapped(message, BODY, MUTED, 2);
            }
            BG
        }
        View::Approved {
            amount,
            card,
            offline,
            tip,
            print_prompt,
            transfer,
            ..
        } => {
            result_badge(col, Symbol::Check, GREEN, inline_qr.is_some());
            col.title(col.t(Key::Approved), BG);
            col.gap(6);
            col.amount(amount, BG);
            tip_line(col, tip.as_ref(), BG);
            if let Some(card) = card {
                col.gap(8);
                let brand = text::sanitize(&card.brand).to_uppercase();
                let last4 = text::sanitize(&card.last4);
                col.line(&format!("{brand} **** {last4}"), BODY, BG);
            }
            if *transfer {
                col.gap(8);
                col.line(col.t(Key::TransferReceived), BODY, BG);
            }
            if *offline {
                col.gap(8);
                col.wrapped(col.t(Key::OfflineApproval), BODY, BG, 2);
            }
            if *print_prompt {
                col.gap(6);
                col.line(col.t(Key::PrintReceiptPrompt), BODY, BG);
            }
            inline_receipt(col, inline_qr);
            GREEN
        }
        View::Declined {
            amount,
            reason,
            tip,
            ..
        } => {
            declined(col, amount, reason, tip.as_ref(), inline_qr.is_some());
            inline_receipt(col, inline_qr);
            RED
        }
        View::Cancelled { amount, reason } => {
            cancelled(col, amount.as_ref(), *reason);
            GREY
        }
        View::SessionClosed { totals } => {
            session_closed(col, totals, &screen.status);
            BG
        }
        View::Error { message } => {
            col.push(Item::Badge(Symbol::Warning, ORANGE, 64));
            col.gap(8);
            col.title(col.t(Key::Error), ORANGE);
            col.gap(8);
            col.wrapped(message, BODY, INK, 5);
            BG
        }
        View::AmountEntry {
            title,
            amount,
            message,
        } => {
            cashier::amount_entry(col, title, amount, message.as_deref());
            BG
        }
        View::Tip {
            amount,
            choices,
            custom,
            message,
        } => {
            cashier::tip(col, amount, choices, custom.as_ref(), message.as_deref());
            BG
        }
        View::Login { pin_len, message } => {
            cashier::login(col, *pin_len, message.as_deref());
            BG
        }
        View::Locked { seconds, message } => {
            cashier::locked(col, *seconds, message.as_deref());
            BG
        }
        View::Menu {
            title,
            entries,
            selected,
            message,
        } => {
            cashier::menu(col, title, entries, *selected, message.as_deref());
            BG
        }
        View::Catalog {
            items,
            first,
            keyed,
            cart_total,
            cart_count,
            message,
        } => {
            let cart = cashier::Cart {
                total: cart_total,
                count: *cart_count,
            };
            cashier::catalog(col, items, *first, *keyed, cart, message.as_deref());
            BG
        }
        View::Report { report } => {
            cashier::report_summary(col, report);
            cashier::report_breakdown(col, report);
            col.fill();
            BG
        }
        View::Transfer {
            amount,
            tip,
            account,
            code,
            received,
            status,
        } => {
            let view = transfer::TransferView {
                amount,
                tip: tip.as_ref(),
                account: account.as_ref(),
                code: code.as_deref(),
                received: received.as_ref(),
                status: *status,
            };
            transfer::transfer(col, &view, inline_qr);
            BG
        }
        View::Pairing { code, status } => {
            col.title(col.t(Key::PairTitle), INK);
            col.gap(8);
            match code {
                Some(code) => col.fitted(&crate::model::grouped_code(code), &AMOUNT_SIZES, INK),
                None => col.push(Item::Dots(MUTED)),
            }
            col.gap(8);
            col.wrapped(col.t(Key::PairInDashboard), BODY, INK, 2);
            col.gap(4);
            let color = match status {
                crate::model::PairingStatus::NoNetwork => ORANGE,
                _ => MUTED,
            };
            col.wrapped(col.t(status.key()), BODY, color, 2);
            inline_receipt(col, inline_qr);
            BG
        }
    }
}

/// "incl. tip ₦150.00" under a payment's amount, when it has a tip.
fn tip_line(col: &mut Column, tip: Option<&Amount>, color: Rgb565) {
    if let Some(tip) = tip {
        col.gap(4);
        let line = col.tf(Key::InclTip, &[&tip.display()]);
        col.line(&line, BODY, color);
    }
}

fn idle(col: &mut Column, status: &StatusLine) {
    col.title(col.t(Key::Ready), GREEN);
    col.gap(4);
    col.line(col.t(Key::WaitingForSale), BODY, MUTED);
    col.gap(18);
    if status.offline {
        col.push(Item::Pill(col.t(Key::Offline).to_owned(), INK, AMBER));
        col.gap(6);
        col.wrapped(col.t(Key::StoredAndSentLater), BODY, INK, 2);
    } else {
        col.push(Item::Pill(col.t(Key::Online).to_owned(), BG, GREEN));
    }
    col.gap(12);
    let key = if status.queued == 1 {
        Key::PaymentsToSendOne
    } else {
        Key::PaymentsToSendMany
    };
    let queued = col.tf(key, &[&status.queued.to_string()]);
    col.wrapped(&queued, BODY, INK, 2);
    if status.parked > 0 {
        col.gap(6);
        let text = if status.parked == 1 {
            col.t(Key::NeedsAttentionOne).to_owned()
        } else {
            col.tf(Key::NeedsAttentionMany, &[&status.parked.to_string()])
        };
        col.wrapped(&text, BODY, ORANGE, 2);
    }
    if let Some(problem) = &status.printer_problem {
        col.gap(6);
        col.wrapped(&text::sanitize(problem), BODY, ORANGE, 2);
    }
}

/// A result's symbol in a disc, unless a tight column gives its place to
/// the receipt's code (`with_code`).
fn result_badge(col: &mut Column, symbol: Symbol, color: Rgb565, with_code: bool) {
    if col.tight && with_code {
        return;
    }
    col.push(Item::Badge(symbol, color, 72));
    col.gap(10);
}

fn declined(
    col: &mut Column,
    amount: &Amount,
    reason: &DeclineReason,
    tip: Option<&Amount>,
    with_code: bool,
) {
    result_badge(col, Symbol::Cross, RED, with_code);
    col.title(reason.headline_in(col.lang), BG);
    col.gap(6);
    col.amount(amount, BG);
    tip_line(col, tip, BG);
    col.gap(8);
    col.wrapped(reason.text_in(col.lang), BODY, BG, 3);
}

fn cancelled(col: &mut Column, amount: Option<&Amount>, reason: CancelReason) {
    col.push(Item::Badge(Symbol::Bar, GREY, 72));
    col.gap(10);
    col.title(col.t(Key::Cancelled), BG);
    if let Some(amount) = amount {
        col.gap(6);
        col.amount(amount, BG);
    }
    col.gap(8);
    col.wrapped(reason.text_in(col.lang), BODY, BG, 3);
}

fn session_closed(col: &mut Column, totals: &SessionTotals, status: &StatusLine) {
    col.title(col.t(Key::EventClosed), INK);
    col.gap(2);
    col.line(col.t(Key::NoNewSalesTotals), BODY, MUTED);
    col.gap(10);
    let cur = totals.currency;
    let rows: [(Key, Tally); 3] = [
        (Key::Sales, totals.sales),
        (Key::Refunds, totals.refunds),
        (Key::DeclinedRow, totals.declined),
    ];
    for (i, (label, tally)) in rows.into_iter().enumerate() {
        if i > 0 {
            col.push(Item::Rule(MUTED));
        }
        let label = col.tf(Key::TallyLabel, &[col.t(label), &tally.count.to_string()]);
        col.row(&label, &with_sign(&tally.total.display(cur), cur));
    }
    if status.queued > 0 {
        col.gap(10);
        let line = col.tf(Key::StillToSend, &[&status.queued.to_string()]);
        col.line(&line, BODY, INK);
    }
}

fn draw_header<D: DrawTarget<Color = Rgb565>>(
    t: &mut D,
    size: Size,
    status: &StatusLine,
    link_known: bool,
    lang: Language,
) -> Result<(), D::Error> {
    if size.height < HEADER_H || size.width < 2 * MARGIN {
        return Ok(());
    }
    t.fill_solid(
        &Rectangle::new(Point::zero(), Size::new(size.width, HEADER_H)),
        HEADER_BG,
    )?;
    let inner = size.width - 2 * MARGIN;

    // Row 1: event name on the left, the logged-in operator on the right.
    let mut event_room = inner;
    if let Some(operator) = &status.operator {
        let name_room = (inner / 2).saturating_sub(PERSON_W + 4);
        let name = text::truncate(&text::sanitize(&operator.name), SMALL_BOLD, name_room);
        if !name.trim().is_empty() {
            let w = PERSON_W + 4 + SMALL_BOLD.width(&name);
            let x = (size.width - MARGIN - w) as i32;
            let y = ((HEADER_ROW1 - SMALL_BOLD.height()) / 2) as i32;
            draw_person(t, Point::new(x, y), HEADER_SUB)?;
            text::draw(
                t,
                &name,
                Point::new(x + PERSON_W as i32 + 4, y),
                SMALL_BOLD,
                HEADER_FG,
            )?;
            event_room = inner.saturating_sub(w + MARGIN);
        }
    }
    let event = text::truncate(&text::sanitize(&status.event_name), HEADER, event_room);
    let y1 = (HEADER_ROW1 - HEADER.height()) / 2;
    text::draw(
        t,
        &event,
        Point::new(MARGIN as i32, y1 as i32),
        HEADER,
        HEADER_FG,
    )?;

    // Row 2: terminal label on the left, connection badge on the right.
    let row2 = HEADER_ROW1 as i32;
    let (badge, fg, bg) = if status.offline {
        (strings::text(lang, Key::Offline), INK, AMBER)
    } else {
        (strings::text(lang, Key::Online), HEADER_BG, ONLINE)
    };
    let badge_w = SMALL_BOLD.width(badge) + 8;
    let badge_h = SMALL_BOLD.height() + 4;
    let show_badge = link_known && badge_w <= inner;
    let label_room = if show_badge {
        inner.saturating_sub(badge_w + MARGIN)
    } else {
        inner
    };
    let label = text::truncate(&text::sanitize(&status.terminal_label), SMALL, label_room);
    text::draw(
        t,
        &label,
        Point::new(MARGIN as i32, row2 + 3),
        SMALL,
        HEADER_SUB,
    )?;
    if show_badge {
        let x = (size.width - MARGIN - badge_w) as i32;
        RoundedRectangle::with_equal_corners(
            Rectangle::new(Point::new(x, row2 + 1), Size::new(badge_w, badge_h)),
            Size::new(4, 4),
        )
        .into_styled(PrimitiveStyle::with_fill(bg))
        .draw(t)?;
        let ty = row2 + 1 + (badge_h - SMALL_BOLD.cap_height()) as i32 / 2;
        text::draw(t, badge, Point::new(x + 4, ty), SMALL_BOLD, fg)?;
    }
    Ok(())
}

fn draw_cancel_footer<D: DrawTarget<Color = Rgb565>>(
    t: &mut D,
    size: Size,
    top: u32,
    lang: Language,
) -> Result<(), D::Error> {
    let label = strings::text(lang, Key::CancelButton);
    let font = TextSize::new(&BOLD_17);
    let icon = 20u32;
    let content_w = icon + 10 + font.width(label);
    let area = Rectangle::new(Point::new(0, top as i32), Size::new(size.width, FOOTER_H));
    t.fill_solid(&area, RED)?;
    if content_w + 2 * MARGIN > size.width {
        return Ok(());
    }
    let x = ((size.width - content_w) / 2) as i32;
    let cy = (top + FOOTER_H / 2) as i32;
    let r = (icon / 2) as i32;
    let style = PrimitiveStyle::with_stroke(BG, 4);
    Line::new(
        Point::new(x + 2, cy - r + 2),
        Point::new(x + 2 * r - 2, cy + r - 2),
    )
    .into_styled(style)
    .draw(t)?;
    Line::new(
        Point::new(x + 2, cy + r - 2),
        Point::new(x + 2 * r - 2, cy - r + 2),
    )
    .into_styled(style)
    .draw(t)?;
    let tx = x + icon as i32 + 10;
    text::draw(
        t,
        label,
        Point::new(tx, cy - font.cap_height() as i32 / 2),
        font,
        BG,
    )
}

#[cfg(test)]
mod tests;
