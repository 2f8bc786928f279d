//! Linux framebuffer (`/dev/fbN`) display.
//!
//! Two parts: a *geometry* (resolution, line length, pixel format, offset of
//! the visible frame) and the *mapped pixels*. On a real device the geometry
//! comes from the `FBIOGET_VSCREENINFO` / `FBIOGET_FSCREENINFO` ioctls
//! ([`FbDisplay::open`]); for a plain file (tests, headless development) it is
//! given explicitly ([`FbDisplay::open_file`]). Both then share the drawing
//! and flush code: draw into a [`Canvas`], and on flush convert only the dirty
//! rectangle into the mapping.
//!
//! This module is the one place in the crate allowed `unsafe`: the two ioctls
//! and the `mmap` (through `memmap2`).
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use embedded_graphics::pixelcolor::{Rgb565, Rgb888};
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;
use memmap2::{MmapMut, MmapOptions};

use super::canvas::Canvas;
use crate::traits::{Display, DisplayError};

/// How pixels are laid out in framebuffer memory (little-endian words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FbPixelFormat {
    /// 16 bits: red 11..16, green 5..11, blue 0..5.
    Rgb565,
    /// 32 bits: unused 24..32, red 16..24, green 8..16, blue 0..8.
    Xrgb8888,
}

impl FbPixelFormat {
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            FbPixelFormat::Rgb565 => 2,
            FbPixelFormat::Xrgb8888 => 4,
        }
    }
}

/// Where and how the visible frame lies in framebuffer memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FbGeometry {
    pub width: u32,
    pub height: u32,
    /// Bytes from one row to the next (`line_length`; may exceed
    /// `width * bytes_per_pixel`).
    pub stride: usize,
    pub format: FbPixelFormat,
    /// Byte offset of the visible frame's first pixel (panning).
    pub offset: usize,
}

impl FbGeometry {
    /// A tightly packed frame at offset 0.
    pub fn packed(width: u32, height: u32, format: FbPixelFormat) -> FbGeometry {
        FbGeometry {
            width,
            height,
            stride: width as usize * format.bytes_per_pixel(),
            format,
            offset: 0,
        }
    }

    /// Bytes the mapping must hold.
    pub fn required_len(&self) -> Option<usize> {
        self.stride
            .checked_mul(self.height as usize)?
            .checked_add(self.offset)
    }

    fn validate(&self, path: &Path, available: usize) -> Result<(), FbError> {
        let bad = |problem: String| FbError::Geometry {
            path: path.to_owned(),
            problem,
        };
        if self.width == 0 || self.height == 0 || self.width > 8192 || self.height > 8192 {
            return Err(bad(format!("size {}x{}", self.width, self.height)));
        }
        if self.stride < self.width as usize * self.format.bytes_per_pixel() {
            return Err(bad(format!(
                "line length {} is shorter than {} pixels",
                self.stride, self.width
            )));
        }
        match self.required_len() {
            Some(n) if n <= available => Ok(()),
            _ => Err(bad(format!(
                "{}x{} with line length {} at offset {} needs more than the {available} bytes there",
                self.width, self.height, self.stride, self.offset
            ))),
        }
    }
}

/// Why a framebuffer could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum FbError {
    #[error("framebuffer {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("framebuffer {path}: {what} ioctl failed: {source}")]
    Ioctl {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "framebuffer {path}: unsupported pixel format ({bits} bits, red at {red_offset}); expected RGB565 or XRGB8888"
    )]
    UnsupportedFormat {
        path: PathBuf,
        bits: u32,
        red_offset: u32,
    },
    #[error("framebuffer {path}: bad geometry: {problem}")]
    Geometry { path: PathBuf, problem: String },
}

/// Splits a configuration value `<path>[?width=W&height=H&format=F[&stride=S][&offset=O]]`.
/// Without options the path is a framebuffer device and its geometry comes
/// from the ioctls; with them it is a file of that geometry (`format` is
/// `rgb565` or `xrgb8888`; `stride` defaults to tightly packed rows,
/// `offset` to 0).
pub fn parse_spec(spec: &str) -> Result<(&str, Option<FbGeometry>), FbError> {
    let (path, query) = spec.split_once('?').unwrap_or((spec, ""));
    if query.is_empty() {
        return Ok((path, None));
    }
    let bad = |problem: String| FbError::Geometry {
        path: PathBuf::from(path),
        problem,
    };
    let (mut width, mut height, mut format, mut stride, mut offset) = (None, None, None, None, 0);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| bad(format!("{pair:?} is not key=value")))?;
        let num = || {
            value
                .parse::<u32>()
                .map_err(|_| bad(format!("{key}: {value:?} is not a number")))
        };
        match key {
            "width" => width = Some(num()?),
            "height" => height = Some(num()?),
            "stride" => stride = Some(num()? as usize),
            "offset" => offset = num()? as usize,
            "format" => {
                format = Some(match value {
                    "rgb565" => FbPixelFormat::Rgb565,
                    "xrgb8888" => FbPixelFormat::Xrgb8888,
                    _ => return Err(bad("format must be rgb565 or xrgb8888".into())),
                })
            }
            _ => return Err(bad(format!("unknown option {key:?}"))),
        }
    }
    let (Some(width), Some(height), Some(format)) = (width, height, format) else {
        return Err(bad("a file needs width, height and format".into()));
    };
    let mut g = FbGeometry::packed(width, height, format);
    g.stride = stride.unwrap_or(g.stride);
    g.offset = offset;
    Ok((path, Some(g)))
}

/// A framebuffer display: draw with embedded-graphics, [`Display::flush`]
/// copies the changed region into the mapped frame.
pub struct FbDisplay {
    canvas: Canvas,
    geometry: FbGeometry,
    map: MmapMut,
    row: Vec<u8>,
}

impl std::fmt::Debug for FbDisplay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FbDisplay")
            .field("geometry", &self.geometry)
            .finish_non_exhaustive()
    }
}

impl FbDisplay {
    /// Opens a framebuffer device and asks it for its geometry.
    pub fn open(path: impl AsRef<Path>) -> Result<FbDisplay, FbError> {
        let path = path.as_ref();
        let file = open_rw(path)?;
        let (var, fix) = ioctl::screen_info(&file).map_err(|(what, e)| FbError::Ioctl {
            path: path.to_owned(),
            what,
            source: e.into(),
        })?;
        let format = match (
            var.bits_per_pixel,
            var.red.offset,
            var.green.offset,
            var.blue.offset,
        ) {
            (16, 11, 5, 0) => FbPixelFormat::Rgb565,
            (32, 16, 8, 0) => FbPixelFormat::Xrgb8888,
            (bits, red_offset, _, _) => {
                return Err(FbError::UnsupportedFormat {
                    path: path.to_owned(),
                    bits,
                    red_offset,
                });
            }
        };
        let stride = fix.line_length as usize;
        let geometry = FbGeometry {
            width: var.xres,
            height: var.yres,
            stride,
            format,
            offset: (var.yoffset as usize)
                .saturating_mul(stride)
                .saturating_add((var.xoffset as usize).saturating_mul(format.bytes_per_pixel())),
        };
        Self::map(path, file, geometry, fix.smem_len as usize)
    }

    /// Uses a plain file as the framebuffer memory, with the geometry given
    /// (a file has no framebuffer ioctls). The file must be large enough.
    pub fn open_file(path: impl AsRef<Path>, geometry: FbGeometry) -> Result<FbDisplay, FbError> {
        let path = path.as_ref();
        let file = open_rw(path)?;
        let len = file
            .metadata()
            .map_err(|source| FbError::Io {
                path: path.to_owned(),
                source,
            })?
            .len();
        Self::map(
            path,
            file,
            geometry,
            usize::try_from(len).unwrap_or(usize::MAX),
        )
    }

    fn map(
        path: &Path,
        file: File,
        geometry: FbGeometry,
        available: usize,
    ) -> Result<FbDisplay, FbError> {
        geometry.validate(path, available)?;
        let len = geometry
            .required_len()
            .expect("validated geometry has a length");
        // SAFETY: the mapping is a shared mapping of a framebuffer device (or
        // a file standing in for one) of at least `len` bytes (checked above).
        // We only ever write bytes into it and never hand out references to
        // its contents, so another writer (the console, a test reading the
        // file) can at worst change pixels, not break memory safety of data
        // we rely on. The file is not truncated while mapped by this process.
        let map = unsafe { MmapOptions::new().len(len).map_mut(&file) }.map_err(|source| {
            FbError::Io {
                path: path.to_owned(),
                source,
            }
        })?;
        Ok(FbDisplay {
            canvas: Canvas::new(Size::new(geometry.width, geometry.height)),
            row: Vec::with_capacity(geometry.width as usize * geometry.format.bytes_per_pixel()),
            geometry,
            map,
        })
    }

    /// [`FbDisplay::open`] or [`FbDisplay::open_file`] as [`parse_spec`]
    /// says.
    pub fn open_spec(spec: &str) -> Result<FbDisplay, FbError> {
        match parse_spec(spec)? {
            (path, None) => FbDisplay::open(path),
            (path, Some(geometry)) => FbDisplay::open_file(path, geometry),
        }
    }

    pub fn geometry(&self) -> FbGeometry {
        self.geometry
    }

    /// The region drawn since the last flush (the next flush copies the
    /// part of it that changed).
    pub fn pending(&self) -> Option<Rectangle> {
        self.canvas.dirty()
    }

    /// Copies the dirty rectangle into the mapping; returns it.
    pub fn flush_now(&mut self) -> Option<Rectangle> {
        let area = self.canvas.take_dirty()?;
        let g = self.geometry;
        let bpp = g.format.bytes_per_pixel();
        let (x0, y0) = (area.top_left.x as u32, area.top_left.y as u32);
        for y in y0..y0 + area.size.height {
            self.row.clear();
            for &c in self.canvas.row(y, x0, area.size.width) {
                match g.format {
                    FbPixelFormat::Rgb565 => {
                        self.row.extend_from_slice(&c.into_storage().to_le_bytes());
                    }
                    FbPixelFormat::Xrgb8888 => {
                        let c = Rgb888::from(c);
                        let word =
                            (u32::from(c.r()) << 16) | (u32::from(c.g()) << 8) | u32::from(c.b());
                        self.row.extend_from_slice(&word.to_le_bytes());
                    }
                }
            }
            let start = g.offset + y as usize * g.stride + x0 as usize * bpp;
            self.map[start..start + self.row.len()].copy_from_slice(&self.row);
        }
        Some(area)
    }
}

fn open_rw(path: &Path) -> Result<File, FbError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|source| FbError::Io {
            path: path.to_owned(),
            source,
        })
}

impl OriginDimensions for FbDisplay {
    fn size(&self) -> Size {
        self.canvas.size()
    }
}

impl DrawTarget for FbDisplay {
    type Color = Rgb565;
    type Error = DisplayError;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), DisplayError>
    where
        I: IntoIterator<Item = Pixel<Rgb565>>,
    {
        let Ok(()) = self.canvas.draw_iter(pixels);
        Ok(())
    }

    fn fill_solid(&mut self, area: &Rectangle, color: Rgb565) -> Result<(), DisplayError> {
        let Ok(()) = self.canvas.fill_solid(area, color);
        Ok(())
    }
}

impl Display for FbDisplay {
    /// Writes to mapped memory are what the panel shows: nothing to wait for.
    async fn flush(&mut self) -> Result<(), DisplayError> {
        self.flush_now();
        Ok(())
    }
}

/// The two framebuffer ioctls.
mod ioctl {
    use std::fs::File;

    use rustix::ioctl::{Getter, Opcode, ioctl};

    /// `FBIOGET_VSCREENINFO` and `FBIOGET_FSCREENINFO` (linux/fb.h; plain
    /// numbers, not `_IOR` encoded).
    const FBIOGET_VSCREENINFO: Opcode = 0x4600;
    const FBIOGET_FSCREENINFO: Opcode = 0x4602;

    /// `struct fb_bitfield`.
    #[repr(C)]
    #[derive(Debug, Clone, Copy)]
    pub struct FbBitfield {
        pub offset: u32,
        pub length: u32,
        pub msb_right: u32,
    }

    /// `struct fb_var_screeninfo`.
    #[repr(C)]
    #[derive(Debug, Clone, Copy)]
    pub struct FbVarScreeninfo {
        pub xres: u32,
        pub yres: u32,
        pub xres_virtual: u32,
        pub yres_virtual: u32,
        pub xoffset: u32,
        pub yoffset: u32,
        pub bits_per_pixel: u32,
        pub grayscale: u32,
        pub red: FbBitfield,
        pub green: FbBitfield,
        pub blue: FbBitfield,
        pub transp: FbBitfield,
        pub nonstd: u32,
        pub activate: u32,
        pub height: u32,
        pub width: u32,
        pub accel_flags: u32,
        pub pixclock: u32,
        pub left_margin: u32,
        pub right_margin: u32,
        pub upper_margin: u32,
        pub lower_margin: u32,
        pub hsync_len: u32,
        pub vsync_len: u32,
        pub sync: u32,
        pub vmode: u32,
        pub rotate: u32,
        pub colorspace: u32,
        pub reserved: [u32; 4],
    }

    /// `struct fb_fix_screeninfo`.
    #[repr(C)]
    #[derive(Debug, Clone, Copy)]
    pub struct FbFixScreeninfo {
        pub id: [u8; 16],
        pub smem_start: std::ffi::c_ulong,
        pub smem_len: u32,
        pub type_: u32,
        pub type_aux: u32,
        pub visual: u32,
        pub xpanstep: u16,
        pub ypanstep: u16,
        pub ywrapstep: u16,
        pub line_length: u32,
        pub mmio_start: std::ffi::c_ulong,
        pub mmio_len: u32,
        pub accel: u32,
        pub capabilities: u16,
        pub reserved: [u16; 2],
    }

    pub fn screen_info(
        file: &File,
    ) -> Result<(FbVarScreeninfo, FbFixScreeninfo), (&'static str, rustix::io::Errno)> {
        // SAFETY: FBIOGET_VSCREENINFO writes exactly one `struct
        // fb_var_screeninfo`, which `FbVarScreeninfo` mirrors field for field
        // with `repr(C)`; the getter owns the output buffer.
        let var = unsafe { ioctl(file, Getter::<FBIOGET_VSCREENINFO, FbVarScreeninfo>::new()) }
            .map_err(|e| ("FBIOGET_VSCREENINFO", e))?;
        // SAFETY: as above, for FBIOGET_FSCREENINFO and `struct
        // fb_fix_screeninfo` (`unsigned long` is `c_ulong`).
        let fix = unsafe { ioctl(file, Getter::<FBIOGET_FSCREENINFO, FbFixScreeninfo>::new()) }
            .map_err(|e| ("FBIOGET_FSCREENINFO", e))?;
        Ok((var, fix))
    }
}
