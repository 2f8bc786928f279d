//! Text on screen: sanitizing, measuring, cutting, wrapping and drawing in
//! the proportional FreeUniversal family of the U8g2 collection (regular
//! and bold, 11 to 42 px), with a naira sign of our own.
//!
//! The fonts have no ₦ (U+20A6) at any size, so [`draw`] draws it as the
//! font's own `N` crossed by two bars of the font's stroke weight: it
//! matches every size and weight without a glyph table of our own.

use std::sync::OnceLock;

use embedded_graphics::pixelcolor::Rgb565;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;
use textwrap::core::Fragment;
use u8g2_fonts::types::{FontColor, VerticalPosition};
use u8g2_fonts::{FontRenderer, fonts};

/// The naira sign.
pub(crate) const NAIRA: char = '\u{20A6}';

/// One font of the family at one size; its metrics are measured once, in
/// [`METRICS`] at its index (kept apart so that a `Face` has no interior
/// mutability and constants may refer to it).
pub(crate) struct Face {
    renderer: FontRenderer,
    index: usize,
}

/// How many faces there are (the length of [`METRICS`]).
const FACES: usize = 10;

static METRICS: [OnceLock<Metrics>; FACES] = [const { OnceLock::new() }; FACES];

/// What is measured once per face.
struct Metrics {
    /// Advance of each printable ASCII character (`' '..='~'`).
    advance: [u8; 95],
    /// Top of the capitals, relative to the baseline (negative: above).
    cap_top: i32,
    /// Height from the capitals' top to the lowest descender.
    height: u32,
    /// Height of the capitals.
    cap_height: u32,
    /// Width of a vertical stroke (the left stem of `N`).
    stem: u32,
}

impl Face {
    const fn new(renderer: FontRenderer, index: usize) -> Self {
        assert!(index < FACES);
        Face {
            renderer: renderer.with_ignore_unknown_chars(true),
            index,
        }
    }

    fn metrics(&self) -> &'static Metrics {
        METRICS[self.index].get_or_init(|| measure_face(&self.renderer))
    }
}

fn bbox(r: &FontRenderer, s: &str) -> Option<Rectangle> {
    r.get_rendered_dimensions(s, Point::zero(), VerticalPosition::Baseline)
        .ok()
        .and_then(|d| d.bounding_box)
}

fn measure_face(r: &FontRenderer) -> Metrics {
    let mut advance = [0u8; 95];
    for (i, c) in (' '..='~').enumerate() {
        let w = r
            .get_rendered_dimensions(c, Point::zero(), VerticalPosition::Baseline)
            .map(|d| d.advance.x)
            .unwrap_or(0);
        advance[i] = u8::try_from(w.max(0)).unwrap_or(u8::MAX);
    }
    let caps = bbox(r, "ABEHNZ").unwrap_or_default();
    let low = bbox(r, "gjpqy,").unwrap_or_default();
    let cap_top = caps.top_left.y;
    let bottom = (low.top_left.y + low.size.height as i32).max(0);
    let stem = stem_width(r, caps.size.height);
    Metrics {
        advance,
        cap_top,
        height: (bottom - cap_top).max(1) as u32,
        cap_height: caps.size.height.max(1),
        stem,
    }
}

/// The width of `N`'s left stem, read from its pixels near the bottom
/// (below where the diagonal meets it).
fn stem_width(r: &FontRenderer, cap_height: u32) -> u32 {
    let mut ink = Ink::default();
    let _ = r.render(
        'N',
        Point::zero(),
        VerticalPosition::Baseline,
        FontColor::Transparent(Rgb565::BLACK),
        &mut ink,
    );
    let Some(left) = ink.points.iter().map(|p| p.x).min() else {
        return 1;
    };
    let row = -((cap_height / 5).max(1) as i32);
    let mut run = 0;
    while ink.points.contains(&Point::new(left + run, row)) {
        run += 1;
    }
    run.max(1) as u32
}

/// A draw target that records where ink falls.
#[derive(Default)]
struct Ink {
    points: Vec<Point>,
}

impl Dimensions for Ink {
    fn bounding_box(&self) -> Rectangle {
        Rectangle::new(Point::new(-512, -512), Size::new(1024, 1024))
    }
}

impl DrawTarget for Ink {
    type Color = Rgb565;
    type Error = core::convert::Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        self.points.extend(pixels.into_iter().map(|Pixel(p, _)| p));
        Ok(())
    }
}

macro_rules! faces {
    ($($name:ident = $font:ident, $index:literal;)*) => {
        $(pub(crate) static $name: Face =
            Face::new(FontRenderer::new::<fonts::$font>(), $index);)*
    };
}

faces! {
    REGULAR_11 = u8g2_font_fur11_tf, 0;
    REGULAR_14 = u8g2_font_fur14_tf, 1;
    BOLD_11 = u8g2_font_fub11_tf, 2;
    BOLD_14 = u8g2_font_fub14_tf, 3;
    BOLD_17 = u8g2_font_fub17_tf, 4;
    BOLD_20 = u8g2_font_fub20_tf, 5;
    BOLD_25 = u8g2_font_fub25_tf, 6;
    BOLD_30 = u8g2_font_fub30_tf, 7;
    BOLD_35 = u8g2_font_fub35_tf, 8;
    BOLD_42 = u8g2_font_fub42_tf, 9;
}

/// A face to draw text in (a font of the family at one size).
#[derive(Clone, Copy)]
pub(crate) struct TextSize {
    pub face: &'static Face,
}

impl TextSize {
    pub const fn new(face: &'static Face) -> Self {
        TextSize { face }
    }

    /// Height of a line: from the capitals' top to the lowest descender.
    pub fn height(self) -> u32 {
        self.face.metrics().height
    }

    /// Height of the capitals (to centre a word in a box).
    pub fn cap_height(self) -> u32 {
        self.face.metrics().cap_height
    }

    /// Width of `s` (sanitized text) in pixels.
    pub fn width(self, s: &str) -> u32 {
        s.chars().map(|c| self.char_width(c)).sum()
    }

    fn char_width(self, c: char) -> u32 {
        let m = self.face.metrics();
        match c {
            ' '..='~' => u32::from(m.advance[c as usize - 0x20]),
            NAIRA => u32::from(m.advance[usize::from(b'N' - 0x20)]) + 2 * naira_overhang(m),
            _ => 0,
        }
    }
}

/// How far the naira sign's bars reach beyond the `N`'s sides.
fn naira_overhang(m: &Metrics) -> u32 {
    (m.cap_height / 10).max(1)
}

/// Replaces what the fonts cannot draw: common Latin letters lose their
/// accents, whitespace becomes a space, anything else becomes `?`; the
/// naira sign stays.
pub(crate) fn sanitize(s: &str) -> String {
    s.chars()
        .filter(|c| !('\u{0300}'..='\u{036F}').contains(c)) // combining accents
        .map(|c| match c {
            ' '..='~' | NAIRA => c,
            c if c.is_whitespace() => ' ',
            c if c.is_control() => ' ',
            c => transliterate(c).unwrap_or('?'),
        })
        .collect()
}

fn transliterate(c: char) -> Option<char> {
    let base = match c {
        'À'..='Å' => 'A',
        'à'..='å' => 'a',
        'Ç' => 'C',
        'ç' => 'c',
        'È'..='Ë' => 'E',
        'è'..='ë' => 'e',
        'Ì'..='Ï' => 'I',
        'ì'..='ï' => 'i',
        'Ñ' => 'N',
        'ñ' => 'n',
        'Ò'..='Ö' | 'Ø' => 'O',
        'ò'..='ö' | 'ø' => 'o',
        'Ù'..='Ü' => 'U',
        'ù'..='ü' => 'u',
        'Ý' => 'Y',
        'ý' | 'ÿ' => 'y',
        'ẹ' => 'e',
        'Ẹ' => 'E',
        'ọ' => 'o',
        'Ọ' => 'O',
        'ṣ' => 's',
        'Ṣ' => 'S',
        '‘' | '’' => '\'',
        '“' | '”' => '"',
        '–' | '—' => '-',
        _ => return None,
    };
    Some(base)
}

/// Cuts sanitized `s` to at most `max_w` pixels in `size`, ending with
/// `...` when cut (only dots when not even one character fits with them).
pub(crate) fn truncate(s: &str, size: TextSize, max_w: u32) -> String {
    if size.width(s) <= max_w {
        return s.to_owned();
    }
    let dots = size.width("...");
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let cw = size.char_width(c);
        if w + cw + dots > max_w {
            break;
        }
        w += cw;
        out.push(c);
    }
    let mut out = out.trim_end().to_owned();
    if out.is_empty() {
        let dot = size.char_width('.').max(1);
        return ".".repeat((max_w / dot).min(3) as usize);
    }
    out.push_str("...");
    out
}

/// A word to wrap, measured in pixels of one size.
#[derive(Debug)]
struct Word<'a> {
    text: &'a str,
    width: f64,
    space: f64,
}

impl Fragment for Word<'_> {
    fn width(&self) -> f64 {
        self.width
    }
    fn whitespace_width(&self) -> f64 {
        self.space
    }
    fn penalty_width(&self) -> f64 {
        0.0
    }
}

/// Word-wraps sanitized `s` (with `textwrap`'s first-fit, measuring in
/// `size`) into at most `max_lines` lines of at most `max_w` pixels; a
/// word longer than a line is broken, a cut last line ends with `...`.
pub(crate) fn wrap(s: &str, size: TextSize, max_w: u32, max_lines: usize) -> Vec<String> {
    if max_w == 0 || max_lines == 0 {
        return Vec::new();
    }
    let space = f64::from(size.width(" "));
    let mut pieces: Vec<&str> = Vec::new();
    for word in textwrap::WordSeparator::AsciiSpace.find_words(s) {
        let word = word.word;
        if word.is_empty() {
            continue;
        }
        if size.width(word) <= max_w {
            pieces.push(word);
        } else {
            break_word(word, size, max_w, &mut pieces);
        }
    }
    let words: Vec<Word<'_>> = pieces
        .iter()
        .map(|p| Word {
            text: p,
            width: f64::from(size.width(p)),
            space,
        })
        .collect();
    let mut lines: Vec<String> =
        textwrap::wrap_algorithms::wrap_first_fit(&words, &[f64::from(max_w)])
            .into_iter()
            .map(|line| line.iter().map(|w| w.text).collect::<Vec<_>>().join(" "))
            .filter(|l| !l.is_empty())
            .collect();
    if lines.len() > max_lines {
        lines.truncate(max_lines);
        if let Some(last) = lines.last_mut() {
            *last = ellipsize(last, size, max_w);
        }
    }
    lines
}

/// Pieces of `word` that each fit `max_w`.
fn break_word<'a>(word: &'a str, size: TextSize, max_w: u32, out: &mut Vec<&'a str>) {
    let mut start = 0;
    let mut w = 0;
    for (i, c) in word.char_indices() {
        let cw = size.char_width(c);
        if w + cw > max_w && i > start {
            out.push(&word[start..i]);
            start = i;
            w = 0;
        }
        w += cw;
    }
    if start < word.len() {
        out.push(&word[start..]);
    }
    // A character wider than the line cannot be shown at all.
    out.retain(|p| size.width(p) <= max_w);
}

/// `line` followed by `...` within `max_w`, dropping whole words first.
fn ellipsize(line: &str, size: TextSize, max_w: u32) -> String {
    let dots = size.width("...");
    let mut base = line;
    while size.width(base) + dots > max_w {
        match base.rfind(' ') {
            Some(i) => base = base[..i].trim_end(),
            None => return truncate(&format!("{base}...."), size, max_w),
        }
    }
    format!("{base}...")
}

/// Draws sanitized `text` with its top-left corner (the capitals' top) at
/// `top_left`.
pub(crate) fn draw<D: DrawTarget<Color = Rgb565>>(
    target: &mut D,
    text: &str,
    top_left: Point,
    size: TextSize,
    color: Rgb565,
) -> Result<(), D::Error> {
    let m = size.face.metrics();
    let baseline = Point::new(top_left.x, top_left.y - m.cap_top);
    let mut x = baseline.x;
    for (i, part) in text.split(NAIRA).enumerate() {
        if i > 0 {
            x += draw_naira(target, Point::new(x, baseline.y), size, color)?;
        }
        if !part.is_empty() {
            render(target, part, Point::new(x, baseline.y), size, color)?;
            x += size.width(part) as i32;
        }
    }
    Ok(())
}

fn render<D: DrawTarget<Color = Rgb565>>(
    target: &mut D,
    s: &str,
    baseline: Point,
    size: TextSize,
    color: Rgb565,
) -> Result<(), D::Error> {
    match size.face.renderer.render(
        s,
        baseline,
        VerticalPosition::Baseline,
        FontColor::Transparent(color),
        target,
    ) {
        Err(u8g2_fonts::Error::DisplayError(e)) => Err(e),
        _ => Ok(()),
    }
}

/// The naira sign at `baseline` (its left edge): the font's `N` with two
/// horizontal bars across it, as thick as the font's strokes and reaching
/// a little beyond the stems. Returns its advance.
fn draw_naira<D: DrawTarget<Color = Rgb565>>(
    target: &mut D,
    baseline: Point,
    size: TextSize,
    color: Rgb565,
) -> Result<i32, D::Error> {
    let m = size.face.metrics();
    let over = naira_overhang(m) as i32;
    let advance = size.char_width(NAIRA) as i32;
    render(target, "N", baseline + Point::new(over, 0), size, color)?;
    let Some(n) = bbox(&size.face.renderer, "N") else {
        return Ok(advance);
    };
    let left = baseline.x + n.top_left.x;
    let width = n.size.width + 2 * over as u32;
    let bar = (m.stem * 3 / 4).max(1);
    let cap = m.cap_height as i32;
    let top = baseline.y + n.top_left.y;
    for centre in [cap * 7 / 20, cap * 13 / 20] {
        let y = top + centre - bar as i32 / 2;
        target.fill_solid(
            &Rectangle::new(Point::new(left, y), Size::new(width, bar)),
            color,
        )?;
    }
    Ok(advance)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: TextSize = TextSize::new(&REGULAR_14);

    #[test]
    fn sanitize_keeps_ascii_and_the_naira_and_replaces_the_rest() {
        assert_eq!(sanitize("Café Ọlá"), "Cafe Ola");
        assert_eq!(sanitize("Ọjọ\u{301}"), "Ojo");
        assert_eq!(sanitize("Fest 🎉\tnight\n"), "Fest ? night ");
        assert_eq!(sanitize("₦1,500.00"), "₦1,500.00");
        assert!(sanitize("東京ドーム").chars().all(|c| c == '?'));
    }

    #[test]
    fn the_font_is_proportional_and_the_naira_is_wider_than_n() {
        assert!(BODY.width("i") < BODY.width("W"));
        assert!(BODY.width("₦") > BODY.width("N"));
        assert_eq!(BODY.width("₦12"), BODY.width("₦") + BODY.width("12"));
    }

    #[test]
    fn truncate_marks_the_cut_within_the_width() {
        let s = "Lagos Jazz Night";
        assert_eq!(truncate(s, BODY, 1000), s);
        let w = BODY.width(s) - 1;
        let cut = truncate(s, BODY, w);
        assert!(cut.ends_with("...") && BODY.width(&cut) <= w, "{cut}");
        assert!(BODY.width(&truncate(s, BODY, 8)) <= 8);
        assert_eq!(truncate("abcdef", BODY, 0), "");
    }

    #[test]
    fn wrap_breaks_words_and_caps_lines() {
        let w = BODY.width("declined ");
        assert_eq!(
            wrap("Card declined by bank", BODY, w, 3),
            vec!["Card", "declined", "by bank"]
        );
        for line in wrap(&"x".repeat(100), BODY, 70, 3) {
            assert!(BODY.width(&line) <= 70, "{line}");
        }
        let one = wrap("one two three four", BODY, BODY.width("one two th"), 1);
        assert_eq!(one, vec!["one two..."]);
        assert!(wrap("anything", BODY, 0, 3).is_empty());
    }

    #[test]
    fn the_naira_sign_is_an_n_with_two_bars() {
        let mut with = Ink::default();
        let mut n = Ink::default();
        let size = TextSize::new(&BOLD_42);
        let Ok(()) = draw(&mut with, "₦", Point::zero(), size, Rgb565::BLACK);
        let Ok(()) = draw(&mut n, "N", Point::zero(), size, Rgb565::BLACK);
        assert!(with.points.len() > n.points.len());
        let xs = |i: &Ink| {
            let min = i.points.iter().map(|p| p.x).min().unwrap_or(0);
            let max = i.points.iter().map(|p| p.x).max().unwrap_or(0);
            max - min
        };
        assert!(xs(&with) > xs(&n), "the bars reach beyond the stems");
        assert!(size.face.metrics().stem >= 3, "a bold stem");
    }

    #[test]
    fn every_face_has_its_own_metrics() {
        let faces = [
            &REGULAR_11,
            &REGULAR_14,
            &BOLD_11,
            &BOLD_14,
            &BOLD_17,
            &BOLD_20,
            &BOLD_25,
            &BOLD_30,
            &BOLD_35,
            &BOLD_42,
        ];
        let mut seen: Vec<usize> = faces.iter().map(|f| f.index).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), FACES);
        let heights: Vec<u32> = faces[3..]
            .iter()
            .map(|f| TextSize::new(f).height())
            .collect();
        assert!(heights.windows(2).all(|w| w[0] < w[1]), "{heights:?}");
    }
}
