//! The display test pattern `pos-agent doctor` draws: eight vertical colour
//! bars (white, yellow, cyan, green, magenta, red, blue, black) and a one
//! pixel white border, so a technician sees at a glance that every colour
//! channel and every edge of the panel works.

use embedded_graphics::pixelcolor::Rgb565;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};

/// The bars, left to right.
pub const TEST_PATTERN_BARS: [Rgb565; 8] = [
    Rgb565::WHITE,
    Rgb565::YELLOW,
    Rgb565::CYAN,
    Rgb565::GREEN,
    Rgb565::MAGENTA,
    Rgb565::RED,
    Rgb565::BLUE,
    Rgb565::BLACK,
];

/// Draws the test pattern over the whole target.
pub fn test_pattern<D: DrawTarget<Color = Rgb565>>(target: &mut D) -> Result<(), D::Error> {
    let area = target.bounding_box();
    let size = area.size;
    let bars = TEST_PATTERN_BARS.len() as u32;
    for (i, colour) in TEST_PATTERN_BARS.iter().enumerate() {
        let i = i as u32;
        let x0 = size.width * i / bars;
        let x1 = size.width * (i + 1) / bars;
        Rectangle::new(
            area.top_left + Point::new(x0 as i32, 0),
            Size::new(x1 - x0, size.height),
        )
        .into_styled(PrimitiveStyle::with_fill(*colour))
        .draw(target)?;
    }
    area.into_styled(PrimitiveStyle::with_stroke(Rgb565::WHITE, 1))
        .draw(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hal::Framebuffer;

    #[test]
    fn every_bar_and_the_border_are_drawn_at_both_panel_sizes() {
        for size in [Size::new(240, 320), Size::new(480, 320)] {
            let mut fb = Framebuffer::new(size);
            test_pattern(&mut fb).unwrap();
            let bar_w = size.width / 8;
            for (i, colour) in TEST_PATTERN_BARS.iter().enumerate() {
                let centre = Point::new(
                    (bar_w * i as u32 + bar_w / 2) as i32,
                    (size.height / 2) as i32,
                );
                assert_eq!(fb.pixel(centre), Some(*colour), "bar {i} at {size:?}");
            }
            let (w, h) = (size.width as i32, size.height as i32);
            for corner in [
                Point::new(0, 0),
                Point::new(w - 1, 0),
                Point::new(0, h - 1),
                Point::new(w - 1, h - 1),
            ] {
                assert_eq!(fb.pixel(corner), Some(Rgb565::WHITE), "corner {corner:?}");
            }
        }
    }
}
