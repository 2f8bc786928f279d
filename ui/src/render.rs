//! Drawing a [`Screen`]: a pure function of the model onto any RGB565
//! `DrawTarget`. Every element is measured before it is drawn; text is cut
//! to fit and an element that would not fit vertically is left out, so
//! nothing is ever drawn outside the target.

use embedded_graphics::mono_font::ascii::{
    FONT_6X13_BOLD, FONT_7X14_BOLD, FONT_8X13, FONT_8X13_BOLD, FONT_9X15_BOLD, FONT_9X18_BOLD,
    FONT_10X20,
};
use embedded_graphics::pixelcolor::Rgb565;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{
    Arc, Circle, Line, Polyline, PrimitiveStyle, Rectangle, RoundedRectangle, Triangle,
};

use crate::model::{
    Amount, CancelReason, DeclineReason, OFFLINE_APPROVAL_NOTE, Screen, SessionTotals, StatusLine,
    Tally, View,
};
use crate::text::{self, TextSize};

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

/// Big: 10x20 drawn at 2x (20x40 per character).
const BIG: TextSize = TextSize::new(&FONT_10X20, 2);
/// Body text.
const BODY: TextSize = TextSize::new(&FONT_10X20, 1);
const HEADER: TextSize = TextSize::new(&FONT_9X15_BOLD, 1);
const SMALL: TextSize = TextSize::new(&FONT_8X13, 1);
const SMALL_BOLD: TextSize = TextSize::new(&FONT_8X13_BOLD, 1);

/// Amounts never get "...": they drop to a smaller size instead (every
/// `Money` fits at 2x in 240 px).
const AMOUNT_SIZES: [TextSize; 8] = [
    TextSize::new(&FONT_10X20, 3),
    BIG,
    TextSize::new(&FONT_9X18_BOLD, 2),
    TextSize::new(&FONT_8X13_BOLD, 2),
    TextSize::new(&FONT_7X14_BOLD, 2),
    TextSize::new(&FONT_6X13_BOLD, 2),
    BODY,
    SMALL_BOLD,
];
const TITLE_SIZES: [TextSize; 4] = [
    BIG,
    TextSize::new(&FONT_9X18_BOLD, 2),
    TextSize::new(&FONT_8X13_BOLD, 2),
    BODY,
];

const MARGIN: u32 = 8;
const HEADER_ROW1: u32 = 24;
const HEADER_H: u32 = 46;
const FOOTER_H: u32 = 48;
/// Symbol size and tallest text in a compact column.
const COMPACT_SYMBOL: u32 = 40;
const COMPACT_TEXT_H: u32 = 36;
/// Width of the three "working" dots.
const DOTS_W: u32 = 12 + 2 * 24;

/// Draws `screen` onto `target`. Pure: no I/O, no clock; the same model on
/// the same size always gives the same pixels. Sizes from 240x320 portrait
/// to 480x320 landscape are designed for; other sizes never draw outside
/// the target but may leave elements out.
pub fn render<D: DrawTarget<Color = Rgb565>>(
    screen: &Screen,
    target: &mut D,
) -> Result<(), D::Error> {
    let bb = target.bounding_box();
    let mut t = target.translated(bb.top_left);
    let size = bb.size;
    t.fill_solid(&Rectangle::new(Point::zero(), size), BG)?;
    // While booting the terminal does not know yet whether it is online.
    let link_known = !matches!(screen.view, View::Booting { .. });
    draw_header(&mut t, size, &screen.status, link_known)?;

    let (body, with_footer) = body_area(screen, size);
    if with_footer {
        draw_cancel_footer(&mut t, size, body.top_left.y as u32 + body.size.height)?;
    }
    let (col, background) = layout(screen, body);
    if background != BG {
        t.fill_solid(&body, background)?;
    }
    col.draw(&mut t, body, background)
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

/// The body's column: full size first; compact when that is too tall.
fn layout(screen: &Screen, body: Rectangle) -> (Column, Rgb565) {
    let mut col = Column::new(body.size.width, false);
    let background = compose(&mut col, screen);
    if col.height() <= body.size.height {
        return (col, background);
    }
    let mut col = Column::new(body.size.width, true);
    let background = compose(&mut col, screen);
    (col, background)
}

/// Stacks the view's items into `col`; returns the body's background.
fn compose(col: &mut Column, screen: &Screen) -> Rgb565 {
    match &screen.view {
        View::Booting { message } => {
            col.title("STARTING", INK);
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
        View::TapCard { amount } => {
            col.title("TAP CARD", INK);
            col.gap(8);
            col.amount(amount, INK);
            col.gap(14);
            col.push(Item::Contactless(INK, 72));
            BG
        }
        View::RefundTap { amount } => {
            col.title("REFUND", PURPLE);
            col.gap(8);
            col.amount(amount, INK);
            col.gap(10);
            col.push(Item::Contactless(PURPLE, 60));
            col.gap(6);
            col.line("Tap the same card", BODY, PURPLE);
            BG
        }
        View::Processing { amount, message } => {
            col.title("PROCESSING", INK);
            col.gap(8);
            col.amount(amount, INK);
            col.gap(14);
            col.push(Item::Dots(INK));
            col.gap(14);
            col.line("Please wait", BODY, MUTED);
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
        } => {
            col.push(Item::Badge(Symbol::Check, GREEN, 72));
            col.gap(10);
            col.title("APPROVED", BG);
            col.gap(6);
            col.amount(amount, BG);
            if let Some(card) = card {
                col.gap(8);
                let brand = text::sanitize(&card.brand).to_uppercase();
                let last4 = text::sanitize(&card.last4);
                col.line(&format!("{brand} **** {last4}"), BODY, BG);
            }
            if *offline {
                col.gap(8);
                col.wrapped(OFFLINE_APPROVAL_NOTE, BODY, BG, 2);
            }
            GREEN
        }
        View::Declined { amount, reason } => {
            declined(col, amount, reason);
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
            col.title("ERROR", ORANGE);
            col.gap(8);
            col.wrapped(message, BODY, INK, 5);
            BG
        }
    }
}

fn idle(col: &mut Column, status: &StatusLine) {
    col.title("READY", GREEN);
    col.gap(4);
    col.line("Waiting for a sale", BODY, MUTED);
    col.gap(18);
    if status.offline {
        col.push(Item::Pill("OFFLINE".to_owned(), INK, AMBER));
        col.gap(6);
        col.wrapped("Payments are stored and sent later", BODY, INK, 2);
    } else {
        col.push(Item::Pill("ONLINE".to_owned(), BG, GREEN));
    }
    col.gap(12);
    let noun = if status.queued == 1 {
        "payment"
    } else {
        "payments"
    };
    col.wrapped(&format!("{} {noun} to send", status.queued), BODY, INK, 2);
    if status.parked > 0 {
        col.gap(6);
        let text = if status.parked == 1 {
            "1 needs attention: call a technician".to_owned()
        } else {
            format!("{} need attention: call a technician", status.parked)
        };
        col.wrapped(&text, BODY, ORANGE, 2);
    }
}

fn declined(col: &mut Column, amount: &Amount, reason: &DeclineReason) {
    col.push(Item::Badge(Symbol::Cross, RED, 72));
    col.gap(10);
    col.title(reason.headline(), BG);
    col.gap(6);
    col.amount(amount, BG);
    col.gap(8);
    col.wrapped(reason.text(), BODY, BG, 3);
}

fn cancelled(col: &mut Column, amount: Option<&Amount>, reason: CancelReason) {
    col.push(Item::Badge(Symbol::Bar, GREY, 72));
    col.gap(10);
    col.title("CANCELLED", BG);
    if let Some(amount) = amount {
        col.gap(6);
        col.amount(amount, BG);
    }
    col.gap(8);
    col.wrapped(reason.text(), BODY, BG, 3);
}

fn session_closed(col: &mut Column, totals: &SessionTotals, status: &StatusLine) {
    col.title("EVENT CLOSED", INK);
    col.gap(2);
    col.line("No new sales. Totals:", BODY, MUTED);
    col.gap(10);
    let cur = totals.currency;
    let rows: [(&str, Tally); 3] = [
        ("Sales", totals.sales),
        ("Refunds", totals.refunds),
        ("Declined", totals.declined),
    ];
    for (i, (label, tally)) in rows.into_iter().enumerate() {
        if i > 0 {
            col.push(Item::Rule(MUTED));
        }
        col.row(
            &format!("{label} ({})", tally.count),
            &tally.total.display(cur),
        );
    }
    if status.queued > 0 {
        col.gap(10);
        col.line(&format!("{} still to send", status.queued), BODY, INK);
    }
}

fn draw_header<D: DrawTarget<Color = Rgb565>>(
    t: &mut D,
    size: Size,
    status: &StatusLine,
    link_known: bool,
) -> Result<(), D::Error> {
    if size.height < HEADER_H || size.width < 2 * MARGIN {
        return Ok(());
    }
    t.fill_solid(
        &Rectangle::new(Point::zero(), Size::new(size.width, HEADER_H)),
        HEADER_BG,
    )?;
    let inner = size.width - 2 * MARGIN;

    let event = text::truncate(&text::sanitize(&status.event_name), HEADER.chars_in(inner));
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
        ("OFFLINE", INK, AMBER)
    } else {
        ("ONLINE", HEADER_BG, ONLINE)
    };
    let badge_w = SMALL_BOLD.width(badge.len()) + 8;
    let badge_h = SMALL_BOLD.height() + 4;
    let show_badge = link_known && badge_w <= inner;
    let label_room = if show_badge {
        inner.saturating_sub(badge_w + MARGIN)
    } else {
        inner
    };
    let label = text::truncate(
        &text::sanitize(&status.terminal_label),
        SMALL.chars_in(label_room),
    );
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
        text::draw(t, badge, Point::new(x + 4, row2 + 3), SMALL_BOLD, fg)?;
    }
    Ok(())
}

fn draw_cancel_footer<D: DrawTarget<Color = Rgb565>>(
    t: &mut D,
    size: Size,
    top: u32,
) -> Result<(), D::Error> {
    let label = "CANCEL";
    let icon = 20u32;
    let content_w = icon + 10 + BODY.width(label.len());
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
        Point::new(tx, cy - BODY.height() as i32 / 2),
        BODY,
        BG,
    )
}

#[derive(Clone, Copy)]
enum Symbol {
    Check,
    Cross,
    Bar,
    Warning,
}

enum Item {
    Gap(u32),
    Text(String, TextSize, Rgb565),
    /// Label left, value right, on one line.
    Row(String, String, TextSize, Rgb565),
    /// A thin horizontal line.
    Rule(Rgb565),
    /// A rounded box with a word in it: text colour, box colour.
    Pill(String, Rgb565, Rgb565),
    /// A white disc with a symbol in `color`; diameter.
    Badge(Symbol, Rgb565, u32),
    /// The contactless symbol; colour, size of its square.
    Contactless(Rgb565, u32),
    /// Three dots: "working".
    Dots(Rgb565),
}

impl Item {
    fn height(&self) -> u32 {
        match self {
            Item::Gap(h) => *h,
            Item::Text(_, size, _) | Item::Row(_, _, size, _) => size.height(),
            Item::Rule(_) => 9,
            Item::Pill(_, _, _) => BODY.height() + 8,
            Item::Badge(_, _, d) | Item::Contactless(_, d) => *d,
            Item::Dots(_) => 12,
        }
    }
}

/// Items stacked top to bottom, each centred horizontally, the stack
/// centred vertically in the body.
struct Column {
    /// Width available to content (body width less margins).
    inner: u32,
    /// Smaller symbols, gaps and big text, for bodies too short for the
    /// full-size stack.
    compact: bool,
    items: Vec<Item>,
}

impl Column {
    fn new(body_width: u32, compact: bool) -> Self {
        Column {
            inner: body_width.saturating_sub(2 * MARGIN),
            compact,
            items: Vec::new(),
        }
    }

    fn height(&self) -> u32 {
        self.items.iter().map(Item::height).sum()
    }

    fn push(&mut self, item: Item) {
        let item = match item {
            Item::Badge(s, c, d) if self.compact => Item::Badge(s, c, d.min(COMPACT_SYMBOL)),
            Item::Contactless(c, d) if self.compact => Item::Contactless(c, d.min(COMPACT_SYMBOL)),
            other => other,
        };
        self.items.push(item);
    }

    fn gap(&mut self, h: u32) {
        let h = if self.compact { h / 2 } else { h };
        self.items.push(Item::Gap(h));
    }

    /// The first size in `sizes` that fits the whole text; otherwise the
    /// last size, with the text cut.
    fn fitted(&mut self, s: &str, sizes: &[TextSize], color: Rgb565) {
        let s = text::sanitize(s);
        let Some(last) = sizes.last() else { return };
        let max_h = if self.compact {
            COMPACT_TEXT_H
        } else {
            u32::MAX
        };
        let size = sizes
            .iter()
            .copied()
            .filter(|z| z.height() <= max_h)
            .find(|z| z.width(s.len()) <= self.inner)
            .unwrap_or(*last);
        let s = text::truncate(&s, size.chars_in(self.inner));
        self.items.push(Item::Text(s, size, color));
    }

    fn title(&mut self, s: &str, color: Rgb565) {
        self.fitted(s, &TITLE_SIZES, color);
    }

    fn amount(&mut self, amount: &Amount, color: Rgb565) {
        self.fitted(&amount.display(), &AMOUNT_SIZES, color);
    }

    fn line(&mut self, s: &str, size: TextSize, color: Rgb565) {
        self.fitted(s, &[size], color);
    }

    fn wrapped(&mut self, s: &str, size: TextSize, color: Rgb565, max_lines: usize) {
        let s = text::sanitize(s);
        for line in text::wrap(&s, size.chars_in(self.inner), max_lines) {
            self.items.push(Item::Text(line, size, color));
        }
    }

    /// `label   value` on one line when both fit, else label on one line
    /// and value right-aligned on the next.
    fn row(&mut self, label: &str, value: &str) {
        let (label, value) = (text::sanitize(label), text::sanitize(value));
        if BODY.width(label.len() + 1 + value.len()) <= self.inner {
            self.items.push(Item::Row(label, value, BODY, INK));
            return;
        }
        let label = text::truncate(&label, BODY.chars_in(self.inner));
        self.items.push(Item::Row(label, String::new(), BODY, INK));
        let size = if BODY.width(value.len()) <= self.inner {
            BODY
        } else {
            SMALL_BOLD
        };
        let value = text::truncate(&value, size.chars_in(self.inner));
        self.items.push(Item::Row(String::new(), value, size, INK));
    }

    fn draw<D: DrawTarget<Color = Rgb565>>(
        &self,
        t: &mut D,
        body: Rectangle,
        background: Rgb565,
    ) -> Result<(), D::Error> {
        let total: u32 = self.items.iter().map(Item::height).sum();
        let top = body.top_left.y as u32;
        let bottom = top + body.size.height;
        let mut y = top + body.size.height.saturating_sub(total) / 2;
        let left = body.top_left.x + MARGIN as i32;
        let centre = |w: u32| left + (self.inner.saturating_sub(w) / 2) as i32;
        for item in &self.items {
            let h = item.height();
            if y + h > bottom {
                break;
            }
            let yi = y as i32;
            match item {
                Item::Gap(_) => {}
                Item::Text(s, size, color) => {
                    text::draw(
                        t,
                        s,
                        Point::new(centre(size.width(s.len())), yi),
                        *size,
                        *color,
                    )?;
                }
                Item::Row(label, value, size, color) => {
                    text::draw(t, label, Point::new(left, yi), *size, *color)?;
                    let vx = left + self.inner.saturating_sub(size.width(value.len())) as i32;
                    text::draw(t, value, Point::new(vx, yi), *size, *color)?;
                }
                Item::Rule(color) => {
                    t.fill_solid(
                        &Rectangle::new(Point::new(left, yi + 4), Size::new(self.inner, 1)),
                        *color,
                    )?;
                }
                Item::Pill(word, fg, bg) => {
                    let w = BODY.width(word.len()) + 24;
                    if w <= self.inner {
                        let x = centre(w);
                        RoundedRectangle::with_equal_corners(
                            Rectangle::new(Point::new(x, yi), Size::new(w, h)),
                            Size::new(8, 8),
                        )
                        .into_styled(PrimitiveStyle::with_fill(*bg))
                        .draw(t)?;
                        text::draw(t, word, Point::new(x + 12, yi + 4), BODY, *fg)?;
                    }
                }
                Item::Badge(symbol, color, d) => {
                    if *d <= self.inner {
                        let x = centre(*d);
                        draw_badge(t, Point::new(x, yi), *d, *symbol, *color, background)?;
                    }
                }
                Item::Contactless(color, s) => {
                    if *s <= self.inner {
                        draw_contactless(t, Point::new(centre(*s), yi), *s, *color)?;
                    }
                }
                Item::Dots(color) if DOTS_W <= self.inner => {
                    let (d, step) = (12u32, 24i32);
                    let x0 = centre(DOTS_W);
                    for i in 0..3 {
                        Circle::new(Point::new(x0 + i * step, yi), d)
                            .into_styled(PrimitiveStyle::with_fill(*color))
                            .draw(t)?;
                    }
                }
                Item::Dots(_) => {}
            }
            y += h;
        }
        Ok(())
    }
}

/// A disc of diameter `d` at `top_left` holding `symbol`. On a coloured
/// body the disc is white and the symbol takes `color`; on the white body
/// the disc takes `color` and the symbol is white.
fn draw_badge<D: DrawTarget<Color = Rgb565>>(
    t: &mut D,
    top_left: Point,
    d: u32,
    symbol: Symbol,
    color: Rgb565,
    background: Rgb565,
) -> Result<(), D::Error> {
    let (disc, mark) = if background == BG {
        (color, BG)
    } else {
        (BG, color)
    };
    let di = d as i32;
    let c = top_left + Point::new(di / 2, di / 2);
    let p = |fx: i32, fy: i32| c + Point::new(di * fx / 100, di * fy / 100);
    let stroke = PrimitiveStyle::with_stroke(mark, (d / 9).max(2));
    match symbol {
        Symbol::Warning => {
            // A warning triangle (not a disc): its own shape.
            Triangle::new(p(0, -50), p(-50, 42), p(49, 42))
                .into_styled(PrimitiveStyle::with_fill(color))
                .draw(t)?;
            let bar_w = (d / 9).max(2);
            t.fill_solid(
                &Rectangle::new(
                    p(0, -22) - Point::new(bar_w as i32 / 2, 0),
                    Size::new(bar_w, d * 34 / 100),
                ),
                BG,
            )?;
            t.fill_solid(
                &Rectangle::new(
                    p(0, 20) - Point::new(bar_w as i32 / 2, 0),
                    Size::new(bar_w, bar_w),
                ),
                BG,
            )?;
        }
        Symbol::Check => {
            Circle::new(top_left, d)
                .into_styled(PrimitiveStyle::with_fill(disc))
                .draw(t)?;
            Polyline::new(&[p(-26, 2), p(-8, 20), p(26, -18)])
                .into_styled(stroke)
                .draw(t)?;
        }
        Symbol::Cross => {
            Circle::new(top_left, d)
                .into_styled(PrimitiveStyle::with_fill(disc))
                .draw(t)?;
            Line::new(p(-20, -20), p(20, 20))
                .into_styled(stroke)
                .draw(t)?;
            Line::new(p(-20, 20), p(20, -20))
                .into_styled(stroke)
                .draw(t)?;
        }
        Symbol::Bar => {
            Circle::new(top_left, d)
                .into_styled(PrimitiveStyle::with_fill(disc))
                .draw(t)?;
            let (w, h) = (d * 60 / 100, (d / 6).max(2));
            t.fill_solid(
                &Rectangle::new(c - Point::new(w as i32 / 2, h as i32 / 2), Size::new(w, h)),
                mark,
            )?;
        }
    }
    Ok(())
}

/// The contactless symbol: four arcs of growing size, opening to the right,
/// inside a square of side `s` at `top_left`.
fn draw_contactless<D: DrawTarget<Color = Rgb565>>(
    t: &mut D,
    top_left: Point,
    s: u32,
    color: Rgb565,
) -> Result<(), D::Error> {
    let si = s as i32;
    let stroke = (s / 12).max(2);
    let style = PrimitiveStyle::with_stroke(color, stroke);
    let cy = top_left.y + si / 2;
    let start = Angle::from_degrees(-48.0);
    let sweep = Angle::from_degrees(96.0);
    for i in 0..4 {
        // Diameter grows with i; each arc's right edge steps right.
        let d = si * (34 + 20 * i) / 100;
        let right = top_left.x + si * (23 + 20 * i) / 100;
        let centre = Point::new(right - d / 2, cy);
        Arc::with_center(centre, d as u32, start, sweep)
            .into_styled(style)
            .draw(t)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::sample_screens;

    #[test]
    fn every_sample_fits_whole_on_common_panels() {
        // No element is left out on these panels: the full or the compact
        // column fits the body.
        for (name, screen) in sample_screens() {
            for (w, h) in [(240, 320), (480, 320), (480, 272), (320, 240), (320, 480)] {
                let (body, _) = body_area(&screen, Size::new(w, h));
                let (col, _) = layout(&screen, body);
                assert!(
                    col.height() <= body.size.height,
                    "{name} at {w}x{h}: {} px of content in a {} px body",
                    col.height(),
                    body.size.height
                );
            }
        }
    }

    #[test]
    fn compact_is_used_only_when_needed() {
        let (_, screen) = sample_screens()
            .into_iter()
            .find(|(n, _)| *n == "declined")
            .expect("declined sample");
        let (body, _) = body_area(&screen, Size::new(480, 320));
        assert!(!layout(&screen, body).0.compact);
        let (body, _) = body_area(&screen, Size::new(480, 240));
        assert!(layout(&screen, body).0.compact);
    }
}
