//! The back buffer every real panel draws into, with the dirty rectangle:
//! the union of everything drawn since the last flush, narrowed at flush
//! time to the pixels that differ from what the panel shows, so a flush
//! sends only the region that changed. (The ui redraws whole screens, so
//! without the narrowing every screen change would be a full frame.)

use embedded_graphics::pixelcolor::Rgb565;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;

/// An RGB565 frame in memory plus the bounding box of what was drawn since
/// [`Canvas::take_dirty`] was last called.
#[derive(Debug, Clone)]
pub struct Canvas {
    size: Size,
    pixels: Vec<Rgb565>,
    dirty: Option<Rectangle>,
    /// What the panel holds, when known.
    shown: Option<Vec<Rgb565>>,
}

impl Canvas {
    /// A black canvas; everything is dirty so the first flush sends the whole
    /// frame (the panel's memory holds whatever was there before).
    pub fn new(size: Size) -> Canvas {
        let len = size.width as usize * size.height as usize;
        Canvas {
            size,
            pixels: vec![Rgb565::BLACK; len],
            dirty: Some(Rectangle::new(Point::zero(), size)),
            shown: None,
        }
    }

    pub fn size(&self) -> Size {
        self.size
    }

    pub fn pixels(&self) -> &[Rgb565] {
        &self.pixels
    }

    /// One row of pixels `x0..x0+width` of row `y` (the rectangle must lie in
    /// the canvas, as rectangles from [`Canvas::take_dirty`] do).
    pub fn row(&self, y: u32, x0: u32, width: u32) -> &[Rgb565] {
        let start = y as usize * self.size.width as usize + x0 as usize;
        &self.pixels[start..start + width as usize]
    }

    /// The region to send now: the bounding box of the pixels that differ
    /// from what the panel shows (all of the drawn region while that is
    /// unknown); records them as shown. `None` when nothing changed.
    pub fn take_dirty(&mut self) -> Option<Rectangle> {
        let area = self.dirty.take()?;
        let w = self.size.width as usize;
        let Some(shown) = self.shown.as_mut() else {
            self.shown = Some(self.pixels.clone());
            return Some(area);
        };
        let (x0, y0) = (area.top_left.x as usize, area.top_left.y as usize);
        let (x1, y1) = (
            x0 + area.size.width as usize,
            y0 + area.size.height as usize,
        );
        let (mut min, mut max) = ((usize::MAX, usize::MAX), (0, 0));
        for y in y0..y1 {
            let (now, was) = (
                &self.pixels[y * w + x0..y * w + x1],
                &shown[y * w + x0..y * w + x1],
            );
            let Some(first) = now.iter().zip(was).position(|(a, b)| a != b) else {
                continue;
            };
            let last = now
                .iter()
                .zip(was)
                .rposition(|(a, b)| a != b)
                .unwrap_or(first);
            min = (min.0.min(x0 + first), min.1.min(y));
            max = (max.0.max(x0 + last), max.1.max(y));
        }
        if min.0 == usize::MAX {
            return None;
        }
        for y in min.1..=max.1 {
            shown[y * w + min.0..=y * w + max.0]
                .copy_from_slice(&self.pixels[y * w + min.0..=y * w + max.0]);
        }
        // Coordinates are within the canvas, whose sides fit in i32/u32.
        Some(Rectangle::with_corners(
            Point::new(min.0 as i32, min.1 as i32),
            Point::new(max.0 as i32, max.1 as i32),
        ))
    }

    /// The region drawn since the last flush (at most what the next flush
    /// sends), without forgetting it.
    pub fn dirty(&self) -> Option<Rectangle> {
        self.dirty
    }

    /// Forgets what the panel shows and marks everything to be sent again
    /// (after a flush failed half-way).
    pub fn invalidate(&mut self) {
        self.shown = None;
        self.mark(Rectangle::new(Point::zero(), self.size));
    }

    /// Adds `area` (already clipped) to the dirty region.
    pub fn mark(&mut self, area: Rectangle) {
        if area.is_zero_sized() {
            return;
        }
        self.dirty = Some(match self.dirty {
            None => area,
            Some(d) => union(d, area),
        });
    }

    fn index(&self, p: Point) -> Option<usize> {
        let (x, y) = (u32::try_from(p.x).ok()?, u32::try_from(p.y).ok()?);
        (x < self.size.width && y < self.size.height)
            .then(|| y as usize * self.size.width as usize + x as usize)
    }
}

/// The smallest rectangle holding both (neither zero-sized).
fn union(a: Rectangle, b: Rectangle) -> Rectangle {
    let (a_br, b_br) = (a.top_left + a.size, b.top_left + b.size);
    let tl = Point::new(
        a.top_left.x.min(b.top_left.x),
        a.top_left.y.min(b.top_left.y),
    );
    let br = Point::new(a_br.x.max(b_br.x), a_br.y.max(b_br.y));
    Rectangle::new(tl, Size::new((br.x - tl.x) as u32, (br.y - tl.y) as u32))
}

impl OriginDimensions for Canvas {
    fn size(&self) -> Size {
        self.size
    }
}

impl DrawTarget for Canvas {
    type Color = Rgb565;
    type Error = core::convert::Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Rgb565>>,
    {
        let (mut min, mut max) = (Point::new(i32::MAX, i32::MAX), Point::new(-1, -1));
        for Pixel(p, c) in pixels {
            if let Some(i) = self.index(p) {
                self.pixels[i] = c;
                min = Point::new(min.x.min(p.x), min.y.min(p.y));
                max = Point::new(max.x.max(p.x), max.y.max(p.y));
            }
        }
        if max.x >= 0 {
            self.mark(Rectangle::with_corners(min, max));
        }
        Ok(())
    }

    fn fill_solid(&mut self, area: &Rectangle, color: Rgb565) -> Result<(), Self::Error> {
        let area = area.intersection(&self.bounding_box());
        if area.is_zero_sized() {
            return Ok(());
        }
        let w = self.size.width as usize;
        let (x0, y0) = (area.top_left.x as usize, area.top_left.y as usize);
        for y in y0..y0 + area.size.height as usize {
            self.pixels[y * w + x0..y * w + x0 + area.size.width as usize].fill(color);
        }
        self.mark(area);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirty_region_is_the_union_of_what_was_drawn() {
        let mut c = Canvas::new(Size::new(20, 10));
        assert_eq!(
            c.take_dirty(),
            Some(Rectangle::new(Point::zero(), Size::new(20, 10)))
        );
        assert_eq!(c.take_dirty(), None);
        Pixel(Point::new(3, 4), Rgb565::RED).draw(&mut c).unwrap();
        Pixel(Point::new(7, 2), Rgb565::RED).draw(&mut c).unwrap();
        // Outside: ignored, and does not grow the region.
        Pixel(Point::new(-1, 40), Rgb565::RED).draw(&mut c).unwrap();
        assert_eq!(
            c.take_dirty(),
            Some(Rectangle::with_corners(Point::new(3, 2), Point::new(7, 4)))
        );
        c.fill_solid(
            &Rectangle::new(Point::new(15, 8), Size::new(10, 10)),
            Rgb565::GREEN,
        )
        .unwrap();
        assert_eq!(
            c.take_dirty(),
            Some(Rectangle::new(Point::new(15, 8), Size::new(5, 2)))
        );
        assert_eq!(c.row(9, 15, 5), &[Rgb565::GREEN; 5]);
        assert_eq!(c.pixels()[4 * 20 + 3], Rgb565::RED);
    }

    #[test]
    fn only_pixels_that_differ_from_the_panel_are_sent() {
        let mut c = Canvas::new(Size::new(20, 10));
        c.clear(Rgb565::WHITE).unwrap();
        assert_eq!(c.take_dirty().map(|r| r.size), Some(Size::new(20, 10)));
        // Redrawing the same picture sends nothing.
        c.clear(Rgb565::WHITE).unwrap();
        assert_eq!(c.dirty().map(|r| r.size), Some(Size::new(20, 10)));
        assert_eq!(c.take_dirty(), None);
        // A full redraw that changes two pixels sends their bounding box.
        c.clear(Rgb565::WHITE).unwrap();
        Pixel(Point::new(4, 7), Rgb565::RED).draw(&mut c).unwrap();
        Pixel(Point::new(9, 5), Rgb565::RED).draw(&mut c).unwrap();
        assert_eq!(
            c.take_dirty(),
            Some(Rectangle::with_corners(Point::new(4, 5), Point::new(9, 7)))
        );
        // After invalidation everything goes out again.
        c.invalidate();
        assert_eq!(c.take_dirty().map(|r| r.size), Some(Size::new(20, 10)));
        assert_eq!(c.take_dirty(), None);
    }
}
