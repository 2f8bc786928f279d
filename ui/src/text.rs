//! ASCII-safe text: sanitizing, truncating, wrapping, and drawing mono fonts
//! at an integer scale (for big amounts and titles).

use embedded_graphics::mono_font::{MonoFont, MonoTextStyle};
use embedded_graphics::pixelcolor::Rgb565;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;
use embedded_graphics::text::{Baseline, Text};

/// A mono font drawn at an integer scale.
#[derive(Clone, Copy)]
pub(crate) struct TextSize {
    pub font: &'static MonoFont<'static>,
    pub scale: u32,
}

impl TextSize {
    pub const fn new(font: &'static MonoFont<'static>, scale: u32) -> Self {
        TextSize { font, scale }
    }

    /// Horizontal advance of one character, in pixels.
    pub fn advance(self) -> u32 {
        (self.font.character_size.width + self.font.character_spacing) * self.scale
    }

    pub fn height(self) -> u32 {
        self.font.character_size.height * self.scale
    }

    /// Width of `chars` characters, in pixels.
    pub fn width(self, chars: usize) -> u32 {
        u32::try_from(chars)
            .unwrap_or(u32::MAX)
            .saturating_mul(self.advance())
    }

    /// How many characters fit in `width` pixels.
    pub fn chars_in(self, width: u32) -> usize {
        (width / self.advance().max(1)) as usize
    }
}

/// Replaces what the ASCII fonts cannot draw: common Latin letters lose
/// their accents, whitespace becomes a space, anything else becomes `?`.
pub(crate) fn sanitize(s: &str) -> String {
    s.chars()
        .filter(|c| !('\u{0300}'..='\u{036F}').contains(c)) // combining accents
        .map(|c| match c {
            ' '..='~' => c,
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
        '₦' => 'N',
        _ => return None,
    };
    Some(base)
}

/// Cuts ASCII `s` to at most `max` characters, ending with `...` when cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    debug_assert!(s.is_ascii());
    if s.len() <= max {
        return s.to_owned();
    }
    if max < 4 {
        return ".".repeat(max);
    }
    let mut out = s[..max - 3].trim_end().to_owned();
    out.push_str("...");
    out
}

/// Word-wraps ASCII `s` into at most `max_lines` lines of at most `width`
/// characters; long words are broken, and a cut last line ends with `...`.
pub(crate) fn wrap(s: &str, width: usize, max_lines: usize) -> Vec<String> {
    debug_assert!(s.is_ascii());
    if width == 0 || max_lines == 0 {
        return Vec::new();
    }
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in s.split(' ').filter(|w| !w.is_empty()) {
        let mut word = word;
        loop {
            let needed = if line.is_empty() {
                word.len()
            } else {
                line.len() + 1 + word.len()
            };
            if needed <= width {
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(word);
                break;
            }
            if line.is_empty() {
                // A word longer than a line: break it.
                line.push_str(&word[..width]);
                word = &word[width..];
            }
            lines.push(std::mem::take(&mut line));
            if word.is_empty() {
                break;
            }
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    if lines.len() > max_lines {
        lines.truncate(max_lines);
        if let Some(last) = lines.last_mut() {
            *last = ellipsize(last, width);
        }
    }
    lines
}

/// `line` followed by `...` within `width`, dropping whole words first.
fn ellipsize(line: &str, width: usize) -> String {
    let mut base = line;
    while base.len() + 3 > width {
        match base.rfind(' ') {
            Some(i) => base = base[..i].trim_end(),
            None => return truncate(&format!("{base}...."), width),
        }
    }
    format!("{base}...")
}

/// Draws ASCII `text` with its top-left corner at `top_left`.
pub(crate) fn draw<D: DrawTarget<Color = Rgb565>>(
    target: &mut D,
    text: &str,
    top_left: Point,
    size: TextSize,
    color: Rgb565,
) -> Result<(), D::Error> {
    let style = MonoTextStyle::new(size.font, color);
    if size.scale <= 1 {
        Text::with_baseline(text, top_left, style, Baseline::Top).draw(target)?;
    } else {
        let mut scaled = Scaled {
            inner: target,
            origin: top_left,
            scale: size.scale,
        };
        Text::with_baseline(text, Point::zero(), style, Baseline::Top).draw(&mut scaled)?;
    }
    Ok(())
}

/// Draws each pixel as a `scale`×`scale` block at `origin + p * scale`.
struct Scaled<'a, D> {
    inner: &'a mut D,
    origin: Point,
    scale: u32,
}

impl<D: DrawTarget<Color = Rgb565>> Dimensions for Scaled<'_, D> {
    fn bounding_box(&self) -> Rectangle {
        let outer = self.inner.bounding_box();
        let s = self.scale.max(1);
        let top_left = (outer.top_left - self.origin) / s as i32;
        Rectangle::new(top_left, outer.size / s)
    }
}

impl<D: DrawTarget<Color = Rgb565>> DrawTarget for Scaled<'_, D> {
    type Color = Rgb565;
    type Error = D::Error;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        let s = self.scale;
        for Pixel(p, c) in pixels {
            let at = self.origin + p * s as i32;
            self.inner
                .fill_solid(&Rectangle::new(at, Size::new(s, s)), c)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_keeps_ascii_and_replaces_the_rest() {
        assert_eq!(sanitize("Café Ọlá"), "Cafe Ola");
        assert_eq!(sanitize("Ọjọ\u{301}"), "Ojo");
        assert_eq!(sanitize("Fest 🎉\tnight\n"), "Fest ? night ");
        assert!(sanitize("東京ドーム").chars().all(|c| c == '?'));
    }

    #[test]
    fn truncate_marks_the_cut() {
        assert_eq!(truncate("Lagos Jazz Night", 20), "Lagos Jazz Night");
        assert_eq!(truncate("Lagos Jazz Night", 10), "Lagos J...");
        assert_eq!(truncate("Lagos Jazz Night", 9), "Lagos...");
        assert_eq!(truncate("abcdef", 2), "..");
        assert_eq!(truncate("abcdef", 0), "");
    }

    #[test]
    fn wrap_breaks_words_and_caps_lines() {
        assert_eq!(
            wrap("Card declined by bank", 10, 3),
            vec!["Card", "declined", "by bank"]
        );
        assert_eq!(wrap("abcdefghijkl", 5, 5), vec!["abcde", "fghij", "kl"]);
        assert_eq!(wrap("one two three four", 9, 1), vec!["one..."]);
        assert_eq!(wrap("one two three four", 3, 1), vec!["..."]);
        for line in wrap("x".repeat(100).as_str(), 7, 3) {
            assert!(line.len() <= 7);
        }
        assert!(wrap("anything", 0, 3).is_empty());
    }
}
