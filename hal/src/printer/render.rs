//! What a document looks like on paper, for the virtual printer: as
//! monospace text and as a PNG of the paper roll.
//!
//! Text: each line laid out in the paper's columns as the printer would
//! (wrapped, aligned); a double-size line takes two columns a character,
//! shown letter-spaced (`A P P R O V E D`); a bold line is between `**`;
//! the QR code is its data on a line `[QR] <data>`; a cut is a dashed line
//! with `cut`.
//!
//! PNG: white paper, the printable width at 8 dots/mm (384 px for 58 mm,
//! 576 for 80 mm) plus a 12 px margin each side, black text in a 12x24 cell (font A's size; the glyphs are
//! embedded-graphics' 10x20 font), double size drawn at twice the scale,
//! bold drawn twice one pixel apart, the QR code as a real QR code
//! (`qrcode`, error correction M, 5 px modules).

use embedded_graphics::Pixel;
use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::mono_font::iso_8859_1::FONT_10X20;
use embedded_graphics::pixelcolor::Rgb565;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Baseline, Text};

use super::{Align, DocLine, Document, PaperWidth, PrinterError};
use crate::framebuffer::Framebuffer;

const CELL_W: u32 = 12;
const CELL_H: u32 = 24;
const MARGIN_X: u32 = 12;
const MARGIN_Y: u32 = 16;
const QR_MODULE: u32 = 5;
const QR_QUIET: u32 = 4;

/// A line broken to fit `columns` (halved for double size), each piece
/// with its starting column.
fn layout(line: &DocLine, columns: usize) -> Vec<(usize, String)> {
    let scale = if line.double { 2 } else { 1 };
    let fit = (columns / scale).max(1);
    let chars: Vec<char> = line.text.chars().filter(|c| !c.is_control()).collect();
    if chars.is_empty() {
        return vec![(0, String::new())];
    }
    chars
        .chunks(fit)
        .map(|piece| {
            let width = piece.len() * scale;
            let start = match line.align {
                Align::Left => 0,
                Align::Center => (columns - width) / 2,
                Align::Right => columns - width,
            };
            (start, piece.iter().collect())
        })
        .collect()
}

/// The document as text, `paper`'s columns wide (bold and cut markers may
/// stick out).
pub fn to_text(doc: &Document, paper: PaperWidth) -> String {
    let columns = paper.columns();
    let mut out = String::new();
    for line in &doc.lines {
        for (start, piece) in layout(line, columns) {
            let mut shown = if line.double {
                piece.chars().flat_map(|c| [c, ' ']).collect::<String>()
            } else {
                piece
            };
            if line.bold && !shown.trim().is_empty() {
                shown = format!("**{}**", shown.trim_end());
            }
            let text = format!("{}{shown}", " ".repeat(start));
            out.push_str(text.trim_end());
            out.push('\n');
        }
    }
    if let Some(qr) = &doc.qr {
        out.push_str("[QR] ");
        out.push_str(qr);
        out.push('\n');
    }
    if doc.cut {
        let dashes = "-".repeat((columns - 5) / 2);
        out.push_str(&format!("{dashes} cut {dashes}\n"));
    }
    out
}

/// Draws onto `target` at twice the size (each pixel a 2x2 block).
struct Doubled<'a, D>(&'a mut D);

impl<D: DrawTarget<Color = Rgb565>> OriginDimensions for Doubled<'_, D> {
    fn size(&self) -> Size {
        let s = self.0.bounding_box().size;
        Size::new(s.width / 2, s.height / 2)
    }
}

impl<D: DrawTarget<Color = Rgb565>> DrawTarget for Doubled<'_, D> {
    type Color = Rgb565;
    type Error = D::Error;

    fn draw_iter<I: IntoIterator<Item = Pixel<Rgb565>>>(
        &mut self,
        pixels: I,
    ) -> Result<(), D::Error> {
        self.0.draw_iter(pixels.into_iter().flat_map(|Pixel(p, c)| {
            let o = p * 2;
            [(0, 0), (1, 0), (0, 1), (1, 1)].map(|(dx, dy)| Pixel(o + Point::new(dx, dy), c))
        }))
    }
}

fn qr_modules(data: &str) -> Result<qrcode::QrCode, PrinterError> {
    qrcode::QrCode::with_error_correction_level(data.as_bytes(), qrcode::EcLevel::M).map_err(|e| {
        PrinterError::Encode {
            what: format!("QR code of {} bytes: {e}", data.len()),
        }
    })
}

/// The document as the paper roll would come out (white, black print).
pub fn to_png(doc: &Document, paper: PaperWidth) -> Result<Vec<u8>, PrinterError> {
    let columns = paper.columns();
    let width = columns as u32 * CELL_W + 2 * MARGIN_X;
    let rows: Vec<(&DocLine, Vec<(usize, String)>)> =
        doc.lines.iter().map(|l| (l, layout(l, columns))).collect();
    let text_height: u32 = rows
        .iter()
        .map(|(l, pieces)| pieces.len() as u32 * CELL_H * if l.double { 2 } else { 1 })
        .sum();
    let qr = doc.qr.as_deref().map(qr_modules).transpose()?;
    let qr_side = qr
        .as_ref()
        .map_or(0, |q| (q.width() as u32 + 2 * QR_QUIET) * QR_MODULE);
    let cut_height = if doc.cut { CELL_H } else { 0 };
    let height = MARGIN_Y * 2 + text_height + qr_side + cut_height;

    let mut fb = Framebuffer::new(Size::new(width, height));
    let Ok(()) = fb.clear(Rgb565::WHITE);
    let normal = MonoTextStyle::new(&FONT_10X20, Rgb565::BLACK);
    let mut y = MARGIN_Y as i32;
    for (line, pieces) in rows {
        let scale = if line.double { 2 } else { 1 };
        for (start, piece) in pieces {
            // 10 px glyphs centred in a 12 px cell, 20 px glyphs in 24.
            let origin = Point::new((MARGIN_X + start as u32 * CELL_W + 1) as i32, y + 2 * scale);
            let passes: &[i32] = if line.bold { &[0, 1] } else { &[0] };
            for dx in passes {
                if line.double {
                    draw_spaced(
                        &mut Doubled(&mut fb),
                        &piece,
                        origin / 2 + Point::new(*dx, 0),
                        normal,
                    );
                } else {
                    draw_spaced(&mut fb, &piece, origin + Point::new(*dx, 0), normal);
                }
            }
            y += (CELL_H as i32) * scale;
        }
    }
    if let Some(qr) = qr {
        let side = qr.width() as u32;
        let x0 = (width.saturating_sub(qr_side) / 2 + QR_QUIET * QR_MODULE) as i32;
        let y0 = y + (QR_QUIET * QR_MODULE) as i32;
        let black = PrimitiveStyle::with_fill(Rgb565::BLACK);
        for (i, color) in qr.to_colors().iter().enumerate() {
            if *color == qrcode::Color::Dark {
                let (mx, my) = (i as u32 % side, i as u32 / side);
                let at = Point::new(x0 + (mx * QR_MODULE) as i32, y0 + (my * QR_MODULE) as i32);
                let Ok(()) = Rectangle::new(at, Size::new(QR_MODULE, QR_MODULE))
                    .into_styled(black)
                    .draw(&mut fb);
            }
        }
        y += qr_side as i32;
    }
    if doc.cut {
        let dash = PrimitiveStyle::with_fill(Rgb565::BLACK);
        let mid = y + CELL_H as i32 / 2;
        for x in (0..width).step_by(12) {
            let Ok(()) = Rectangle::new(Point::new(x as i32, mid), Size::new(6, 1))
                .into_styled(dash)
                .draw(&mut fb);
        }
    }
    fb.to_png().map_err(|e| PrinterError::Encode {
        what: format!("receipt PNG: {e}"),
    })
}

/// Draws `text` one character a cell (the font is narrower than the cell).
fn draw_spaced<D: DrawTarget<Color = Rgb565>>(
    target: &mut D,
    text: &str,
    origin: Point,
    style: MonoTextStyle<'_, Rgb565>,
) {
    let mut buf = [0u8; 4];
    for (i, c) in text.chars().enumerate() {
        let at = origin + Point::new(i as i32 * CELL_W as i32, 0);
        // Drawing into memory cannot fail; a target that can is ignored here.
        let _ = Text::with_baseline(c.encode_utf8(&mut buf), at, style, Baseline::Top).draw(target);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::printer::sample_receipt;

    #[test]
    fn text_layout() {
        let doc = Document {
            lines: vec![
                DocLine::new("KLER").double().bold().align(Align::Center),
                DocLine::new("right").align(Align::Right),
                DocLine::new("x".repeat(40)),
                DocLine::new("tab\there"),
            ],
            qr: Some("https://x.test/r/1".into()),
            cut: true,
        };
        let text = to_text(&doc, PaperWidth::Mm58);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], format!("{}**K L E R**", " ".repeat(12)));
        assert_eq!(lines[1], format!("{}right", " ".repeat(27)));
        assert_eq!(lines[2], "x".repeat(32));
        assert_eq!(lines[3], "x".repeat(8));
        assert_eq!(lines[4], "tabhere");
        assert_eq!(lines[5], "[QR] https://x.test/r/1");
        assert_eq!(lines[6], "------------- cut -------------");
    }

    #[test]
    fn the_qr_drawn_is_the_qr_of_the_data() {
        let data = "https://api.kler.africa/r/ref/KLR-7Q2M-93XD";
        let doc = Document {
            lines: vec![],
            qr: Some(data.into()),
            cut: false,
        };
        let png = to_png(&doc, PaperWidth::Mm58).unwrap();
        let (w, _, rgb) = crate::framebuffer::decode_png_rgb888(&png).unwrap();
        let qr = qr_modules(data).unwrap();
        let side = qr.width() as u32;
        let x0 = (w - (side + 2 * QR_QUIET) * QR_MODULE) / 2 + QR_QUIET * QR_MODULE;
        let y0 = MARGIN_Y + QR_QUIET * QR_MODULE;
        for (i, color) in qr.to_colors().iter().enumerate() {
            let (mx, my) = (i as u32 % side, i as u32 / side);
            let (x, y) = (x0 + mx * QR_MODULE + 2, y0 + my * QR_MODULE + 2);
            let at = ((y * w + x) * 3) as usize;
            let dark = rgb[at] == 0;
            assert_eq!(dark, *color == qrcode::Color::Dark, "module {mx},{my}");
        }
    }

    #[test]
    fn png_is_paper_wide_and_white() {
        let png = to_png(&sample_receipt(), PaperWidth::Mm58).unwrap();
        let (w, h, rgb) = crate::framebuffer::decode_png_rgb888(&png).unwrap();
        assert_eq!(w, 384 + 24);
        assert!(h > 400);
        // Top-left corner is paper.
        assert_eq!(&rgb[..3], &[255, 255, 255]);
        let wide = to_png(&sample_receipt(), PaperWidth::Mm80).unwrap();
        assert_eq!(
            crate::framebuffer::decode_png_rgb888(&wide).unwrap().0,
            576 + 24
        );
    }
}
