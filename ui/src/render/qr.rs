//! The receipt's QR code (SPEC 7.4): encoded with `qrcode`, drawn as
//! rectangles with its quiet zone of 4 modules, at a whole number of pixels
//! per module (at least 2, so a phone reads it off the panel).

use embedded_graphics::pixelcolor::Rgb565;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;
use qrcode::{EcLevel, QrCode};

/// Modules of light margin around the code, as the standard asks.
pub(super) const QUIET_ZONE: u32 = 4;
/// Fewest pixels per module drawn.
pub(super) const MIN_PX: u32 = 2;
/// Most pixels per module drawn (larger gains nothing at arm's length).
pub(super) const MAX_PX: u32 = 4;

/// An encoded QR code: `n`×`n` modules, row by row, true for dark.
#[derive(Clone)]
pub(super) struct Qr {
    n: u32,
    dark: Vec<bool>,
}

impl Qr {
    /// The code of `data`, or `None` when it is too long for any version.
    pub(super) fn new(data: &str) -> Option<Qr> {
        let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::L).ok()?;
        let n = u32::try_from(code.width()).ok()?;
        let dark = code
            .to_colors()
            .into_iter()
            .map(|c| c == qrcode::Color::Dark)
            .collect();
        Some(Qr { n, dark })
    }

    /// Side of the drawn square, quiet zone included, at `px` per module.
    pub(super) fn side(&self, px: u32) -> u32 {
        (self.n + 2 * QUIET_ZONE) * px
    }

    /// The most pixels per module (up to [`MAX_PX`], at least [`MIN_PX`])
    /// at which the code fits a square of `room`; `None` if not even
    /// [`MIN_PX`] does.
    pub(super) fn px_for(&self, room: u32) -> Option<u32> {
        (MIN_PX..=MAX_PX).rev().find(|px| self.side(*px) <= room)
    }

    /// Draws the code with its quiet zone, top-left corner at `at`:
    /// `light` behind, runs of dark modules as `dark` rectangles.
    pub(super) fn draw<D: DrawTarget<Color = Rgb565>>(
        &self,
        t: &mut D,
        at: Point,
        px: u32,
        light: Rgb565,
        dark: Rgb565,
    ) -> Result<(), D::Error> {
        let side = self.side(px);
        t.fill_solid(&Rectangle::new(at, Size::new(side, side)), light)?;
        let origin = at + Point::new((QUIET_ZONE * px) as i32, (QUIET_ZONE * px) as i32);
        let n = self.n as usize;
        for (y, row) in self.dark.chunks(n).enumerate() {
            let mut x = 0;
            while x < n {
                if !row[x] {
                    x += 1;
                    continue;
                }
                let start = x;
                while x < n && row[x] {
                    x += 1;
                }
                let p = origin + Point::new((start as u32 * px) as i32, (y as u32 * px) as i32);
                let run = Size::new((x - start) as u32 * px, px);
                t.fill_solid(&Rectangle::new(p, run), dark)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_url_fits_a_small_version() {
        let qr = Qr::new(crate::samples::RECEIPT_URL).expect("encodes");
        assert!(qr.n <= 33, "version 4 or smaller: {} modules", qr.n);
        assert_eq!(qr.side(2), (qr.n + 8) * 2);
        assert_eq!(qr.px_for(qr.side(3) + 1), Some(3));
        assert_eq!(qr.px_for(qr.side(2) - 1), None);
        assert_eq!(qr.px_for(10_000), Some(MAX_PX));
    }
}
