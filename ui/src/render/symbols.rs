//! The symbols drawn beside the words: result badges (check, cross, bar,
//! warning, padlock), the contactless mark and the operator's figure.

use embedded_graphics::pixelcolor::Rgb565;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{
    Arc, Circle, Line, Polyline, PrimitiveStyle, Rectangle, RoundedRectangle, Triangle,
};

use super::BG;

#[derive(Clone, Copy)]
pub(super) enum Symbol {
    Check,
    Cross,
    Bar,
    Warning,
    Lock,
}

/// A disc of diameter `d` at `top_left` holding `symbol`. On a coloured
/// body the disc is white and the symbol takes `color`; on the white body
/// the disc takes `color` and the symbol is white.
pub(super) fn draw_badge<D: DrawTarget<Color = Rgb565>>(
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
        Symbol::Lock => {
            Circle::new(top_left, d)
                .into_styled(PrimitiveStyle::with_fill(disc))
                .draw(t)?;
            // A padlock: a shackle (an arch of two posts and a half
            // circle) standing on a body with a keyhole.
            let (bw, bh) = (d * 44 / 100, d * 32 / 100);
            let body_top = p(0, -2);
            let sw = (d / 14).max(2);
            let arch = bw * 64 / 100;
            let post_h = (d * 8 / 100).max(1);
            let arch_c = body_top - Point::new(0, post_h as i32);
            let shackle = PrimitiveStyle::with_stroke(mark, sw);
            Arc::with_center(
                arch_c,
                arch,
                Angle::from_degrees(180.0),
                Angle::from_degrees(180.0),
            )
            .into_styled(shackle)
            .draw(t)?;
            let r = (arch / 2) as i32;
            for x in [arch_c.x - r, arch_c.x + r - sw as i32 + 1] {
                t.fill_solid(
                    &Rectangle::new(Point::new(x, arch_c.y), Size::new(sw, post_h + 1)),
                    mark,
                )?;
            }
            let body = Rectangle::new(body_top - Point::new(bw as i32 / 2, 0), Size::new(bw, bh));
            RoundedRectangle::with_equal_corners(body, Size::new(3, 3))
                .into_styled(PrimitiveStyle::with_fill(mark))
                .draw(t)?;
            let hole = (d / 12).max(2);
            Circle::with_center(body.center() - Point::new(0, 1), hole)
                .into_styled(PrimitiveStyle::with_fill(disc))
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
pub(super) fn draw_contactless<D: DrawTarget<Color = Rgb565>>(
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

/// Width of [`draw_person`]'s figure.
pub(super) const PERSON_W: u32 = 10;

/// A small head-and-shoulders figure, [`PERSON_W`] wide and 12 px high,
/// at `top_left`.
pub(super) fn draw_person<D: DrawTarget<Color = Rgb565>>(
    t: &mut D,
    top_left: Point,
    color: Rgb565,
) -> Result<(), D::Error> {
    Circle::new(top_left + Point::new(2, 0), 6)
        .into_styled(PrimitiveStyle::with_fill(color))
        .draw(t)?;
    RoundedRectangle::new(
        Rectangle::new(top_left + Point::new(0, 7), Size::new(PERSON_W, 5)),
        embedded_graphics::primitives::CornerRadii {
            top_left: Size::new(4, 4),
            top_right: Size::new(4, 4),
            bottom_right: Size::zero(),
            bottom_left: Size::zero(),
        },
    )
    .into_styled(PrimitiveStyle::with_fill(color))
    .draw(t)?;
    Ok(())
}
