//! An in-memory RGB565 frame: the render target of tests, benchmarks and the
//! virtual display, with the panel wire format (RGB565 big-endian) and PNG.

use core::convert::Infallible;

use embedded_graphics::pixelcolor::raw::RawU16;
use embedded_graphics::pixelcolor::{Rgb565, RgbColor};
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;

/// Why a frame could not be encoded to or decoded from PNG.
#[derive(Debug, thiserror::Error)]
pub enum PngError {
    #[error("PNG encoding of a {width}x{height} frame failed: {source}")]
    Encode {
        width: u32,
        height: u32,
        #[source]
        source: png::EncodingError,
    },
    #[error("PNG decoding failed: {0}")]
    Decode(#[from] png::DecodingError),
    #[error("PNG has unsupported format {color:?}/{depth:?}; expected 8-bit RGB")]
    Format {
        color: png::ColorType,
        depth: png::BitDepth,
    },
}

/// A full frame of RGB565 pixels, row-major, `width * height` long.
#[derive(Clone, PartialEq, Eq)]
pub struct Framebuffer {
    size: Size,
    pixels: Vec<Rgb565>,
}

impl core::fmt::Debug for Framebuffer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Framebuffer({}x{})", self.size.width, self.size.height)
    }
}

impl Framebuffer {
    /// A black frame of `size`.
    pub fn new(size: Size) -> Self {
        let len = size.width as usize * size.height as usize;
        Framebuffer {
            size,
            pixels: vec![Rgb565::BLACK; len],
        }
    }

    /// All pixels, row-major.
    pub fn pixels(&self) -> &[Rgb565] {
        &self.pixels
    }

    /// The pixel at `p`, or `None` outside the frame.
    pub fn pixel(&self, p: Point) -> Option<Rgb565> {
        self.index(p).map(|i| self.pixels[i])
    }

    fn index(&self, p: Point) -> Option<usize> {
        let (x, y) = (usize::try_from(p.x).ok()?, usize::try_from(p.y).ok()?);
        let (w, h) = (self.size.width as usize, self.size.height as usize);
        (x < w && y < h).then_some(y * w + x)
    }

    /// The panel's wire format: RGB565, two bytes per pixel, big-endian,
    /// row-major. `out` is cleared and refilled (reuse it across frames).
    pub fn write_rgb565_be(&self, out: &mut Vec<u8>) {
        out.clear();
        out.reserve(self.pixels.len() * 2);
        out.extend(
            self.pixels
                .iter()
                .flat_map(|c| RawU16::from(*c).into_inner().to_be_bytes()),
        );
    }

    /// 8-bit RGB, three bytes per pixel (each channel expanded from 5/6 bits
    /// by bit replication, so white stays 255).
    pub fn to_rgb888(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.pixels.len() * 3);
        for c in &self.pixels {
            let (r, g, b) = (c.r(), c.g(), c.b());
            out.push((r << 3) | (r >> 2));
            out.push((g << 2) | (g >> 4));
            out.push((b << 3) | (b >> 2));
        }
        out
    }

    /// The frame as a PNG (8-bit RGB).
    pub fn to_png(&self) -> Result<Vec<u8>, PngError> {
        let (width, height) = (self.size.width, self.size.height);
        let err = |source| PngError::Encode {
            width,
            height,
            source,
        };
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, width, height);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            enc.set_compression(png::Compression::Fast);
            let mut writer = enc.write_header().map_err(err)?;
            writer.write_image_data(&self.to_rgb888()).map_err(err)?;
            writer.finish().map_err(err)?;
        }
        Ok(out)
    }
}

/// Decodes an 8-bit RGB PNG into `(width, height, rgb888 bytes)`; used to
/// compare frames with golden images pixel-exactly.
pub fn decode_png_rgb888(bytes: &[u8]) -> Result<(u32, u32, Vec<u8>), PngError> {
    let mut reader = png::Decoder::new(bytes).read_info()?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf)?;
    if info.color_type != png::ColorType::Rgb || info.bit_depth != png::BitDepth::Eight {
        return Err(PngError::Format {
            color: info.color_type,
            depth: info.bit_depth,
        });
    }
    buf.truncate(info.buffer_size());
    Ok((info.width, info.height, buf))
}

impl OriginDimensions for Framebuffer {
    fn size(&self) -> Size {
        self.size
    }
}

impl DrawTarget for Framebuffer {
    type Color = Rgb565;
    type Error = Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        for Pixel(p, c) in pixels {
            if let Some(i) = self.index(p) {
                self.pixels[i] = c;
            }
        }
        Ok(())
    }

    fn fill_contiguous<I>(&mut self, area: &Rectangle, colors: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Self::Color>,
    {
        let clipped = area.intersection(&self.bounding_box());
        if clipped == *area && !area.is_zero_sized() {
            // Fast path: fully inside, copy row by row.
            let w = self.size.width as usize;
            let (x0, y0) = (area.top_left.x as usize, area.top_left.y as usize);
            let aw = area.size.width as usize;
            let mut colors = colors.into_iter();
            for row in 0..area.size.height as usize {
                let start = (y0 + row) * w + x0;
                for (dst, c) in self.pixels[start..start + aw].iter_mut().zip(&mut colors) {
                    *dst = c;
                }
            }
            Ok(())
        } else {
            self.draw_iter(
                area.points()
                    .zip(colors)
                    .map(|(p, c)| Pixel(p, c))
                    .filter(|Pixel(p, _)| clipped.contains(*p)),
            )
        }
    }

    fn fill_solid(&mut self, area: &Rectangle, color: Self::Color) -> Result<(), Self::Error> {
        let area = area.intersection(&self.bounding_box());
        if area.is_zero_sized() {
            return Ok(());
        }
        let w = self.size.width as usize;
        let (x0, y0) = (area.top_left.x as usize, area.top_left.y as usize);
        let aw = area.size.width as usize;
        for row in 0..area.size.height as usize {
            let start = (y0 + row) * w + x0;
            self.pixels[start..start + aw].fill(color);
        }
        Ok(())
    }

    fn clear(&mut self, color: Self::Color) -> Result<(), Self::Error> {
        self.pixels.fill(color);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_is_big_endian_rgb565() {
        let mut fb = Framebuffer::new(Size::new(2, 1));
        fb.fill_solid(
            &Rectangle::new(Point::new(1, 0), Size::new(1, 1)),
            Rgb565::RED,
        )
        .unwrap();
        let mut out = Vec::new();
        fb.write_rgb565_be(&mut out);
        assert_eq!(out, vec![0x00, 0x00, 0xF8, 0x00]);
    }

    #[test]
    fn fills_clip_to_the_frame() {
        let mut fb = Framebuffer::new(Size::new(4, 4));
        fb.fill_solid(
            &Rectangle::new(Point::new(-2, -2), Size::new(4, 4)),
            Rgb565::WHITE,
        )
        .unwrap();
        let white = fb.pixels().iter().filter(|c| **c == Rgb565::WHITE).count();
        assert_eq!(white, 4);
        fb.fill_contiguous(
            &Rectangle::new(Point::new(3, 3), Size::new(2, 2)),
            [Rgb565::GREEN; 4],
        )
        .unwrap();
        assert_eq!(fb.pixel(Point::new(3, 3)), Some(Rgb565::GREEN));
        assert_eq!(fb.pixel(Point::new(4, 4)), None);
    }

    #[test]
    fn png_round_trip_is_exact() {
        let mut fb = Framebuffer::new(Size::new(3, 2));
        fb.clear(Rgb565::new(10, 20, 30)).unwrap();
        let png = fb.to_png().unwrap();
        let (w, h, rgb) = decode_png_rgb888(&png).unwrap();
        assert_eq!((w, h), (3, 2));
        assert_eq!(rgb, fb.to_rgb888());
        assert_eq!(&rgb[..3], &[82, 81, 247]);
    }
}
