//! The body's layout: [`Item`]s stacked top to bottom in a [`Column`], each
//! measured when it is pushed (text already cut to the width), then drawn
//! only where it fits.

use embedded_graphics::pixelcolor::Rgb565;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Circle, PrimitiveStyle, Rectangle, RoundedRectangle};

use super::qr::Qr;
use super::symbols::{Symbol, draw_badge, draw_contactless};
use super::{
    BG, BODY, COMPACT_SYMBOL, COMPACT_TEXT_H, DOTS_W, GREYED, HEADER_BG, HEADER_SUB, IN_CART, INK,
    LIGHT, MARGIN, SMALL, SMALL_BOLD,
};
use crate::model::Amount;
use crate::strings::{self, Key, Language};
use crate::text::{self, TextSize};

/// Inside a list line: space left and right of its content.
const ENTRY_PAD_X: u32 = 4;
/// Between a list line's key and its label, and its label and value.
const ENTRY_GAP: u32 = 8;

pub(super) enum Item {
    Gap(u32),
    Text(String, TextSize, Rgb565),
    /// Label left, value right, on one line.
    Row(String, String, TextSize, Rgb565),
    /// A table line: label left, cells right-aligned in columns of the
    /// given widths (the last column ends at the right margin).
    Cells(Cells),
    /// Left and right text of their own sizes and colours, bottoms aligned.
    Split(Span, Span),
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
    /// A numbered line of a list (menu, tip choices, catalog).
    Entry(Entry),
    /// Key hints on one line, separated by dots.
    Hint(Vec<String>, TextSize, Rgb565),
    /// PIN slots: `filled` of `slots` discs of diameter `d`.
    PinDots {
        filled: u8,
        slots: u8,
        d: u32,
    },
    /// A QR code with its quiet zone; pixels per module.
    Qr(Qr, u32),
}

/// A table line, measured: the label fits left of the columns.
pub(super) struct Cells {
    pub label: String,
    pub cells: Vec<String>,
    pub widths: Vec<u32>,
    pub size: TextSize,
    pub color: Rgb565,
}

/// Space between the columns of a table.
pub(super) const CELL_GAP: u32 = 10;

/// The width a table's columns take, gaps included.
pub(super) fn cells_width(widths: &[u32]) -> u32 {
    widths.iter().sum::<u32>() + CELL_GAP * (widths.len().saturating_sub(1) as u32)
}

/// One side of an [`Item::Split`].
pub(super) struct Span {
    pub text: String,
    pub size: TextSize,
    pub color: Rgb565,
}

/// A list line, measured: its texts fit the column.
pub(super) struct Entry {
    /// What is drawn in the key column.
    key: Option<String>,
    /// Width of the key column (0: none), its gap included.
    key_w: u32,
    /// A key cap (a digit key) or a plain number.
    cap: bool,
    label: String,
    value: String,
    size: TextSize,
    pad: u32,
    /// The line's width (centred in the column).
    width: u32,
    look: EntryLook,
}

/// How a list line stands out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct EntryLook {
    /// Highlighted (the selection, the item being keyed).
    pub selected: bool,
    /// Cannot be used: drawn greyed.
    pub greyed: bool,
    /// Tinted (in the cart).
    pub marked: bool,
}

/// A list line before it is measured.
pub(super) struct Line {
    pub key: Option<String>,
    pub label: String,
    pub value: String,
    pub look: EntryLook,
}

/// How the key column of a list is drawn.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Keys {
    /// Digit keys, drawn as key caps.
    Caps,
    /// Item numbers, drawn plain.
    Numbers,
}

impl Item {
    pub(super) fn height(&self) -> u32 {
        match self {
            Item::Gap(h) => *h,
            Item::Text(_, size, _) | Item::Row(_, _, size, _) | Item::Hint(_, size, _) => {
                size.height()
            }
            Item::Cells(c) => c.size.height(),
            Item::Qr(qr, px) => qr.side(*px),
            Item::Split(l, r) => l.size.height().max(r.size.height()),
            Item::Rule(_) => 9,
            Item::Pill(_, _, _) => BODY.height() + 8,
            Item::Badge(_, _, d) | Item::Contactless(_, d) => *d,
            Item::Dots(_) => 12,
            Item::Entry(e) => e.size.height() + e.pad,
            Item::PinDots { d, .. } => *d,
        }
    }
}

/// Items stacked top to bottom, each centred horizontally, the stack
/// centred vertically in the body.
pub(super) struct Column {
    /// Width available to content (body width less margins).
    pub inner: u32,
    /// Height of the body the column is drawn in.
    pub avail: u32,
    /// Smaller symbols, gaps and big text, for bodies too short for the
    /// full-size stack.
    pub compact: bool,
    /// Compact and without the symbols that a receipt's code replaces, for
    /// bodies too short even for the compact stack.
    pub tight: bool,
    /// The language of the screen's own texts.
    pub lang: Language,
    items: Vec<Item>,
}

impl Column {
    pub(super) fn new(body: Size, compact: bool, lang: Language) -> Self {
        Column {
            inner: body.width.saturating_sub(2 * MARGIN),
            avail: body.height,
            compact,
            tight: false,
            lang,
            items: Vec::new(),
        }
    }

    /// The words of `key` in the screen's language.
    pub(super) fn t(&self, key: Key) -> &'static str {
        strings::text(self.lang, key)
    }

    /// The template of `key` filled with `args`.
    pub(super) fn tf(&self, key: Key, args: &[&str]) -> String {
        strings::fill(self.t(key), args)
    }

    /// An empty column of the same size, to measure a part before adding it.
    pub(super) fn scratch(&self) -> Column {
        Column {
            inner: self.inner,
            avail: self.avail,
            compact: self.compact,
            tight: self.tight,
            lang: self.lang,
            items: Vec::new(),
        }
    }

    #[cfg(test)]
    pub(super) fn items(&self) -> &[Item] {
        &self.items
    }

    pub(super) fn append(&mut self, other: Column) {
        self.items.extend(other.items);
    }

    pub(super) fn height(&self) -> u32 {
        self.items.iter().map(Item::height).sum()
    }

    /// Height still free in the body.
    pub(super) fn room(&self) -> u32 {
        self.avail.saturating_sub(self.height())
    }

    /// Takes up the free height: what was pushed so far starts at the top
    /// of the body, what is pushed next ends at its bottom.
    pub(super) fn fill(&mut self) {
        let room = self.room();
        self.items.push(Item::Gap(room));
    }

    pub(super) fn push(&mut self, item: Item) {
        let item = match item {
            Item::Badge(s, c, d) if self.compact => Item::Badge(s, c, d.min(COMPACT_SYMBOL)),
            Item::Contactless(c, d) if self.compact => Item::Contactless(c, d.min(COMPACT_SYMBOL)),
            Item::PinDots { filled, slots, d } if self.compact => Item::PinDots {
                filled,
                slots,
                d: d.min(14),
            },
            other => other,
        };
        self.items.push(item);
    }

    pub(super) fn gap(&mut self, h: u32) {
        let h = if self.compact { h / 2 } else { h };
        self.items.push(Item::Gap(h));
    }

    /// The first size in `sizes` that fits the whole text; otherwise the
    /// last size, with the text cut.
    pub(super) fn fitted(&mut self, s: &str, sizes: &[TextSize], color: Rgb565) {
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
            .find(|z| z.width(&s) <= self.inner)
            .unwrap_or(*last);
        let s = text::truncate(&s, size, self.inner);
        self.items.push(Item::Text(s, size, color));
    }

    pub(super) fn title(&mut self, s: &str, color: Rgb565) {
        self.fitted(s, &super::TITLE_SIZES, color);
    }

    pub(super) fn amount(&mut self, amount: &Amount, color: Rgb565) {
        self.fitted(&amount.display(), &super::AMOUNT_SIZES, color);
    }

    pub(super) fn line(&mut self, s: &str, size: TextSize, color: Rgb565) {
        self.fitted(s, &[size], color);
    }

    pub(super) fn wrapped(&mut self, s: &str, size: TextSize, color: Rgb565, max_lines: usize) {
        let s = text::sanitize(s);
        for line in text::wrap(&s, size, self.inner, max_lines) {
            self.items.push(Item::Text(line, size, color));
        }
    }

    /// `label   value` on one line when both fit, else label on one line
    /// and value right-aligned on the next.
    pub(super) fn row(&mut self, label: &str, value: &str) {
        let (label, value) = (text::sanitize(label), text::sanitize(value));
        if BODY.width(&label) + BODY.width("  ") + BODY.width(&value) <= self.inner {
            self.items.push(Item::Row(label, value, BODY, INK));
            return;
        }
        let label = text::truncate(&label, BODY, self.inner);
        self.items.push(Item::Row(label, String::new(), BODY, INK));
        let size = if BODY.width(&value) <= self.inner {
            BODY
        } else {
            SMALL_BOLD
        };
        let value = text::truncate(&value, size, self.inner);
        self.items.push(Item::Row(String::new(), value, size, INK));
    }

    /// `label   value` on one line in `size`: the value whole (cut only if
    /// it alone is wider than the column), the label cut to what is left.
    pub(super) fn row_cut(&mut self, label: &str, value: &str, size: TextSize, color: Rgb565) {
        let (label, value) = (text::sanitize(label), text::sanitize(value));
        let value = text::truncate(&value, size, self.inner);
        let gap = if value.is_empty() {
            0
        } else {
            size.width("  ")
        };
        let left = self.inner.saturating_sub(size.width(&value) + gap);
        let label = text::truncate(&label, size, left);
        self.items.push(Item::Row(label, value, size, color));
    }

    /// A table line in `size`: the cells right-aligned in columns of
    /// `widths` (measured in `size`), the label cut to what is left.
    pub(super) fn cells(
        &mut self,
        label: &str,
        cells: Vec<String>,
        widths: Vec<u32>,
        size: TextSize,
        color: Rgb565,
    ) {
        let label = text::sanitize(label);
        let cols = cells_width(&widths);
        let left = self.inner.saturating_sub(cols + CELL_GAP);
        let label = text::truncate(&label, size, left);
        self.items.push(Item::Cells(Cells {
            label,
            cells: cells.iter().map(|c| text::sanitize(c)).collect(),
            widths,
            size,
            color,
        }));
    }

    /// The first of `sizes` (only the last when compact) in which every
    /// label, counted up to `label_min` characters, fits beside columns of
    /// the width `columns` gives for that size; else the last.
    pub(super) fn rows_size(
        &self,
        labels: &[String],
        columns: impl Fn(TextSize) -> u32,
        sizes: &[TextSize],
        label_min: usize,
    ) -> TextSize {
        let sizes: &[TextSize] = match (self.compact, sizes.split_last()) {
            (true, Some((last, _))) => std::slice::from_ref(last),
            _ => sizes,
        };
        let fits = |z: &TextSize| {
            let cols = columns(*z);
            labels
                .iter()
                .all(|l| z.width(&prefix(l, label_min)) + CELL_GAP + cols <= self.inner)
        };
        sizes
            .iter()
            .copied()
            .find(fits)
            .or_else(|| sizes.last().copied())
            .unwrap_or(SMALL)
    }

    /// Key hints (`OK to confirm`, `Back to delete`) packed into as few
    /// lines as fit, separated by dots.
    pub(super) fn hint(&mut self, phrases: &[&str], color: Rgb565) {
        let size = SMALL;
        let sep = hint_sep(size);
        let mut line: Vec<String> = Vec::new();
        let mut width = 0;
        for phrase in phrases {
            let p = text::truncate(&text::sanitize(phrase), size, self.inner);
            let w = size.width(&p);
            if p.is_empty() {
                continue;
            }
            if !line.is_empty() && width + sep + w > self.inner {
                self.items
                    .push(Item::Hint(std::mem::take(&mut line), size, color));
                width = 0;
            }
            width += if line.is_empty() { w } else { sep + w };
            line.push(p);
        }
        if !line.is_empty() {
            self.items.push(Item::Hint(line, size, color));
        }
    }

    /// The size of a list's lines: the first of `sizes` (only the smallest
    /// when compact) in which every label keeps `label_min` characters.
    pub(super) fn list_size(
        &self,
        lines: &[Line],
        keys: Keys,
        sizes: &[TextSize],
        label_min: usize,
        max_w: u32,
    ) -> TextSize {
        let sizes: &[TextSize] = match (self.compact, sizes.split_last()) {
            (true, Some((last, _))) => std::slice::from_ref(last),
            _ => sizes,
        };
        sizes
            .iter()
            .copied()
            .find(|z| self.lines_fit(lines, keys, *z, label_min, max_w))
            .or_else(|| sizes.last().copied())
            .unwrap_or(SMALL_BOLD)
    }

    /// True when in `size` every line keeps its whole value and at least
    /// `label_min` characters of its label.
    pub(super) fn lines_fit(
        &self,
        lines: &[Line],
        keys: Keys,
        size: TextSize,
        label_min: usize,
        max_w: u32,
    ) -> bool {
        let key_w = key_width(lines, size);
        let width = self.inner.min(max_w);
        lines.iter().all(|l| {
            let (_, label_room, value) = measure(l, keys, key_w, size, width);
            let label = text::sanitize(&l.label);
            value == text::sanitize(&l.value)
                && label_room >= size.width(&prefix(&label, label_min))
        })
    }

    /// Pushes a list's lines in `size`, at most `max_w` wide and centred,
    /// texts cut to fit.
    pub(super) fn entries(&mut self, lines: Vec<Line>, keys: Keys, size: TextSize, max_w: u32) {
        let widest_key = key_width(&lines, size);
        let pad = if self.compact { 4 } else { 6 };
        let width = self.inner.min(max_w);
        for l in lines {
            let (key_w, label_room, value) = measure(&l, keys, widest_key, size, width);
            let label = text::truncate(&text::sanitize(&l.label), size, label_room);
            self.items.push(Item::Entry(Entry {
                key: l.key.map(|k| text::sanitize(&k)),
                key_w,
                cap: keys == Keys::Caps,
                label,
                value,
                size,
                pad,
                width,
                look: l.look,
            }));
        }
    }

    /// The height one list line takes in `size`.
    pub(super) fn entry_height(&self, size: TextSize) -> u32 {
        size.height() + if self.compact { 4 } else { 6 }
    }

    pub(super) fn draw<D: DrawTarget<Color = Rgb565>>(
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
                Item::Text(s, size, color) if size.width(s) <= self.inner => {
                    text::draw(t, s, Point::new(centre(size.width(s)), yi), *size, *color)?;
                }
                Item::Text(..) => {}
                Item::Row(label, value, size, color) => {
                    text::draw(t, label, Point::new(left, yi), *size, *color)?;
                    let vx = left + self.inner.saturating_sub(size.width(value)) as i32;
                    text::draw(t, value, Point::new(vx, yi), *size, *color)?;
                }
                Item::Cells(c) => {
                    let cols = cells_width(&c.widths);
                    if cols <= self.inner {
                        text::draw(t, &c.label, Point::new(left, yi), c.size, c.color)?;
                        let mut right = left + self.inner as i32;
                        for (cell, w) in c.cells.iter().zip(&c.widths).rev() {
                            let cw = c.size.width(cell).min(*w);
                            if cw == c.size.width(cell) {
                                let x = right - cw as i32;
                                text::draw(t, cell, Point::new(x, yi), c.size, c.color)?;
                            }
                            right -= (*w + CELL_GAP) as i32;
                        }
                    }
                }
                Item::Split(l, r) => {
                    let (lw, rw) = (l.size.width(&l.text), r.size.width(&r.text));
                    if lw <= self.inner {
                        let ly = yi + (h - l.size.height()) as i32;
                        text::draw(t, &l.text, Point::new(left, ly), l.size, l.color)?;
                    }
                    if lw + rw <= self.inner {
                        let ry = yi + (h - r.size.height()) as i32;
                        let rx = left + (self.inner - rw) as i32;
                        text::draw(t, &r.text, Point::new(rx, ry), r.size, r.color)?;
                    }
                }
                Item::Rule(color) => {
                    t.fill_solid(
                        &Rectangle::new(Point::new(left, yi + 4), Size::new(self.inner, 1)),
                        *color,
                    )?;
                }
                Item::Pill(word, fg, bg) => {
                    let w = BODY.width(word) + 24;
                    if w <= self.inner {
                        let x = centre(w);
                        RoundedRectangle::with_equal_corners(
                            Rectangle::new(Point::new(x, yi), Size::new(w, h)),
                            Size::new(8, 8),
                        )
                        .into_styled(PrimitiveStyle::with_fill(*bg))
                        .draw(t)?;
                        let ty = yi + (h - BODY.cap_height()) as i32 / 2;
                        text::draw(t, word, Point::new(x + 12, ty), BODY, *fg)?;
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
                Item::Entry(e) => draw_entry(t, e, Point::new(centre(e.width), yi))?,
                Item::Hint(phrases, size, color) => {
                    let sep = hint_sep(*size);
                    let w: u32 = phrases.iter().map(|p| size.width(p)).sum::<u32>()
                        + sep * (phrases.len().saturating_sub(1) as u32);
                    if w <= self.inner {
                        let mut x = centre(w);
                        for (i, p) in phrases.iter().enumerate() {
                            if i > 0 {
                                let c = Point::new(x + sep as i32 / 2, yi + h as i32 / 2);
                                Circle::with_center(c, 3)
                                    .into_styled(PrimitiveStyle::with_fill(*color))
                                    .draw(t)?;
                                x += sep as i32;
                            }
                            text::draw(t, p, Point::new(x, yi), *size, *color)?;
                            x += size.width(p) as i32;
                        }
                    }
                }
                Item::PinDots { filled, slots, d } => {
                    let step = d + d * 3 / 5;
                    let n = u32::from(*slots);
                    let w = n.saturating_sub(1) * step + d * n.min(1);
                    if w <= self.inner {
                        let x0 = centre(w);
                        for i in 0..n {
                            let at = Point::new(x0 + (i * step) as i32, yi);
                            let style = if i < u32::from(*filled) {
                                PrimitiveStyle::with_fill(INK)
                            } else {
                                PrimitiveStyle::with_stroke(super::MUTED, 2)
                            };
                            Circle::new(at, *d).into_styled(style).draw(t)?;
                        }
                    }
                }
                Item::Qr(qr, px) => {
                    let side = qr.side(*px);
                    if side <= self.inner {
                        qr.draw(t, Point::new(centre(side), yi), *px, BG, INK)?;
                    }
                }
            }
            y += h;
        }
        Ok(())
    }
}

/// Key column width, pixels left for the label, and the value cut to
/// fit, of one list line `width` wide in `size` (`widest_key`: the width
/// of the list's widest key).
fn measure(
    l: &Line,
    keys: Keys,
    widest_key: u32,
    size: TextSize,
    width: u32,
) -> (u32, u32, String) {
    let usable = width.saturating_sub(2 * ENTRY_PAD_X);
    let key_w = match (widest_key, keys) {
        (0, _) => 0,
        (w, Keys::Caps) => w + 12 + ENTRY_GAP,
        (w, Keys::Numbers) => w + ENTRY_GAP,
    };
    let key_w = if key_w <= usable { key_w } else { 0 };
    let rest = usable - key_w;
    let value = text::truncate(&text::sanitize(&l.value), size, rest);
    let value_w = if value.is_empty() {
        0
    } else {
        size.width(&value) + ENTRY_GAP
    };
    (key_w, rest.saturating_sub(value_w), value)
}

/// Width of the widest key of a list in `size`.
fn key_width(lines: &[Line], size: TextSize) -> u32 {
    lines
        .iter()
        .filter_map(|l| l.key.as_ref().map(|k| size.width(&text::sanitize(k))))
        .max()
        .unwrap_or(0)
}

/// The first `n` characters of `s`.
fn prefix(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Room for the dot between two key hints.
fn hint_sep(size: TextSize) -> u32 {
    size.width("   ").max(9)
}

/// One list line with its top-left corner at `at`.
fn draw_entry<D: DrawTarget<Color = Rgb565>>(
    t: &mut D,
    e: &Entry,
    at: Point,
) -> Result<(), D::Error> {
    let inner = e.width;
    let h = e.size.height() + e.pad;
    let band = Rectangle::new(at, Size::new(inner, h));
    let look = e.look;
    if look.selected {
        RoundedRectangle::with_equal_corners(band, Size::new(4, 4))
            .into_styled(PrimitiveStyle::with_fill(HEADER_BG))
            .draw(t)?;
    } else if look.marked {
        RoundedRectangle::with_equal_corners(band, Size::new(4, 4))
            .into_styled(PrimitiveStyle::with_fill(IN_CART))
            .draw(t)?;
    }
    let fg = match (look.selected, look.greyed) {
        (true, true) => HEADER_SUB,
        (true, false) => BG,
        (false, true) => GREYED,
        (false, false) => INK,
    };
    let ty = at.y + (e.pad / 2) as i32;
    let x = at.x + ENTRY_PAD_X as i32;
    if let (Some(key), true) = (&e.key, e.key_w > 0) {
        let kw = e.size.width(key);
        if e.cap {
            let cap_w = e.key_w - ENTRY_GAP;
            let cap = RoundedRectangle::with_equal_corners(
                Rectangle::new(Point::new(x, at.y + 1), Size::new(cap_w, h - 2)),
                Size::new(4, 4),
            );
            let (style, digit) = match (look.selected, look.greyed) {
                (_, true) => (PrimitiveStyle::with_stroke(LIGHT, 1), GREYED),
                (true, false) => (PrimitiveStyle::with_fill(BG), HEADER_BG),
                (false, false) => (PrimitiveStyle::with_fill(INK), BG),
            };
            cap.into_styled(style).draw(t)?;
            let kx = x + (cap_w.saturating_sub(kw) / 2) as i32;
            text::draw(t, key, Point::new(kx, ty), e.size, digit)?;
        } else {
            // Numbers right-aligned in their column.
            let col_w = e.key_w - ENTRY_GAP;
            let kx = x + col_w.saturating_sub(kw) as i32;
            let color = if look.selected { BG } else { super::MUTED };
            let color = if look.greyed { GREYED } else { color };
            text::draw(t, key, Point::new(kx, ty), e.size, color)?;
        }
    }
    text::draw(t, &e.label, Point::new(x + e.key_w as i32, ty), e.size, fg)?;
    if !e.value.is_empty() {
        let vw = e.size.width(&e.value);
        let vx = at.x + inner.saturating_sub(ENTRY_PAD_X + vw) as i32;
        text::draw(t, &e.value, Point::new(vx, ty), e.size, fg)?;
    }
    Ok(())
}
