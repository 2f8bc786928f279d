//! SPI TFT panels (ST7789, ILI9341) through `mipidsi`: draw into a
//! [`Canvas`]; [`Display::flush`] sets the controller's address window to the
//! dirty rectangle and writes only those pixels.
//!
//! [`SpiPanel`] is generic over the embedded-hal 1.0 SPI device and pins, so
//! the same code runs on Linux spidev + GPIO character devices
//! ([`open_spidev`]) and on the recording fakes of the tests.
//!
//! SPI writes are blocking (embedded-hal's `SpiDevice`; on a multi-threaded
//! runtime a flush runs under `block_in_place`); a flush of a full
//! 240x320 frame is 150 KiB on the bus (about 40 ms at 32 MHz), a typical
//! screen change much less because only the changed region is sent.

use std::path::{Path, PathBuf};

use embedded_graphics::pixelcolor::Rgb565;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;
use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;
use embedded_hal::spi::SpiDevice;
use mipidsi::interface::SpiInterface;
use mipidsi::models::Model;
use mipidsi::options::{ColorInversion, ColorOrder, Orientation, Rotation};

use super::canvas::Canvas;
use crate::traits::{Display, DisplayError};

/// Bytes gathered per SPI transfer (Linux spidev's default `bufsiz`).
pub const SPI_CHUNK: usize = 4096;

/// Panel options that differ between modules of the same controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PanelOptions {
    /// The panel's native size in pixels (portrait for these controllers);
    /// with a rotation of 90 or 270 degrees the drawing area is
    /// `height` x `width`.
    pub width: u16,
    pub height: u16,
    /// Offset of the visible area in the controller's memory (before rotation).
    pub x_offset: u16,
    pub y_offset: u16,
    /// 0, 90, 180 or 270 degrees.
    pub rotation: u16,
    /// Most ST7789 modules need inverted colours; ILI9341 modules do not.
    pub invert: bool,
    /// Panels wired blue-green-red.
    pub bgr: bool,
}

impl PanelOptions {
    /// 240x320 portrait, as the screens are designed for.
    pub fn st7789() -> PanelOptions {
        PanelOptions {
            width: 240,
            height: 320,
            x_offset: 0,
            y_offset: 0,
            rotation: 0,
            invert: true,
            bgr: false,
        }
    }

    pub fn ili9341() -> PanelOptions {
        PanelOptions {
            invert: false,
            bgr: true,
            ..PanelOptions::st7789()
        }
    }
}

/// Why a panel could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SpiPanelError {
    #[error("bad panel option {key:?}={value:?}: {problem}")]
    Option {
        key: String,
        value: String,
        problem: &'static str,
    },
    #[error("SPI device {path}: {message}")]
    Spi { path: PathBuf, message: String },
    #[error("GPIO {chip} line {line} ({role}): {message}")]
    Gpio {
        chip: PathBuf,
        line: u32,
        role: &'static str,
        message: String,
    },
    #[error("panel init failed: {0}")]
    Init(String),
}

type Panel<SPI, DC, M, RST> = mipidsi::Display<SpiInterface<'static, SPI, DC>, M, ResetLine<RST>>;

/// The reset line, or none (reset tied high): then the controller is reset
/// with the SWRESET command instead of a pulse.
pub enum ResetLine<P> {
    Pin(P),
    None,
}

impl<P: OutputPin> embedded_hal::digital::ErrorType for ResetLine<P> {
    type Error = P::Error;
}

impl<P: OutputPin> OutputPin for ResetLine<P> {
    fn set_low(&mut self) -> Result<(), P::Error> {
        match self {
            ResetLine::Pin(p) => p.set_low(),
            ResetLine::None => Ok(()),
        }
    }
    fn set_high(&mut self) -> Result<(), P::Error> {
        match self {
            ResetLine::Pin(p) => p.set_high(),
            ResetLine::None => Ok(()),
        }
    }
}

/// SWRESET, and how long the controllers want before the next command.
const SWRESET: u8 = 0x01;
const SWRESET_WAIT_US: u32 = 150_000;

/// An ST7789 / ILI9341 (any `mipidsi` RGB565 model) on SPI.
pub struct SpiPanel<SPI, DC, M, RST, BL>
where
    SPI: SpiDevice,
    DC: OutputPin,
    M: Model<ColorFormat = Rgb565>,
    RST: OutputPin,
{
    panel: Panel<SPI, DC, M, RST>,
    canvas: Canvas,
    backlight: Option<BL>,
}

impl<SPI, DC, M, RST, BL> SpiPanel<SPI, DC, M, RST, BL>
where
    SPI: SpiDevice,
    DC: OutputPin,
    M: Model<ColorFormat = Rgb565>,
    RST: OutputPin,
    BL: OutputPin,
{
    /// Resets (a pulse on `reset`, or SWRESET without one) and initialises
    /// the controller (blocking, about 300 ms of delays the controller
    /// needs), then turns the backlight on. Nothing is drawn until the first
    /// flush, which sends the whole frame.
    pub fn init(
        model: M,
        spi: SPI,
        dc: DC,
        reset: Option<RST>,
        backlight: Option<BL>,
        options: PanelOptions,
        delay: &mut impl DelayNs,
    ) -> Result<Self, SpiPanelError> {
        let rotation = match options.rotation {
            0 => Rotation::Deg0,
            90 => Rotation::Deg90,
            180 => Rotation::Deg180,
            270 => Rotation::Deg270,
            _ => {
                return Err(SpiPanelError::Option {
                    key: "rotate".into(),
                    value: options.rotation.to_string(),
                    problem: "expected 0, 90, 180 or 270",
                });
            }
        };
        let (mut spi, mut dc) = (spi, dc);
        let reset = match reset {
            Some(p) => ResetLine::Pin(p),
            None => {
                let init = |e: String| SpiPanelError::Init(format!("software reset: {e}"));
                dc.set_low().map_err(|e| init(format!("{e:?}")))?;
                spi.write(&[SWRESET]).map_err(|e| init(format!("{e:?}")))?;
                delay.delay_us(SWRESET_WAIT_US);
                ResetLine::None
            }
        };
        // One transfer buffer per panel for the life of the process:
        // `SpiInterface` borrows its buffer, and a panel is opened once.
        let buffer: &'static mut [u8] = Box::leak(vec![0u8; SPI_CHUNK].into_boxed_slice());
        let di = SpiInterface::new(spi, dc, buffer);
        let (w, h) = if matches!(rotation, Rotation::Deg90 | Rotation::Deg270) {
            (options.height, options.width)
        } else {
            (options.width, options.height)
        };
        let panel = mipidsi::Builder::new(model, di)
            .reset_pin(reset)
            .display_size(options.width, options.height)
            .display_offset(options.x_offset, options.y_offset)
            .orientation(Orientation::new().rotate(rotation))
            .invert_colors(if options.invert {
                ColorInversion::Inverted
            } else {
                ColorInversion::Normal
            })
            .color_order(if options.bgr {
                ColorOrder::Bgr
            } else {
                ColorOrder::Rgb
            })
            .init(delay)
            .map_err(|e| SpiPanelError::Init(format!("{e:?}")))?;
        let mut backlight = backlight;
        if let Some(bl) = backlight.as_mut() {
            bl.set_high()
                .map_err(|e| SpiPanelError::Init(format!("backlight: {e:?}")))?;
        }
        Ok(SpiPanel {
            panel,
            canvas: Canvas::new(Size::new(u32::from(w), u32::from(h))),
            backlight,
        })
    }

    /// The region drawn since the last flush (the next flush sends the
    /// part of it that changed).
    pub fn pending(&self) -> Option<Rectangle> {
        self.canvas.dirty()
    }

    /// Sends the dirty rectangle (blocking); returns it.
    pub fn flush_now(&mut self) -> Result<Option<Rectangle>, DisplayError> {
        let Some(area) = self.canvas.take_dirty() else {
            return Ok(None);
        };
        let (x0, y0) = (area.top_left.x as u32, area.top_left.y as u32);
        let (x1, y1) = (x0 + area.size.width - 1, y0 + area.size.height - 1);
        let canvas = &self.canvas;
        let pixels = (y0..=y1).flat_map(|y| canvas.row(y, x0, area.size.width).iter().copied());
        // The canvas is at most the panel size, which mipidsi holds in u16.
        let c = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
        let sent = self.panel.set_pixels(c(x0), c(y0), c(x1), c(y1), pixels);
        if let Err(e) = sent {
            // The panel holds an unknown mix now: send everything next time.
            self.canvas.invalidate();
            return Err(DisplayError::Bus(format!("{e:?}")));
        }
        Ok(Some(area))
    }

    /// Turns the backlight off or on (if one is wired).
    pub fn set_backlight(&mut self, on: bool) -> Result<(), DisplayError> {
        if let Some(bl) = self.backlight.as_mut() {
            let r = if on { bl.set_high() } else { bl.set_low() };
            r.map_err(|e| DisplayError::Bus(format!("backlight: {e:?}")))?;
        }
        Ok(())
    }

    /// Gives the bus, DC pin and reset pin back (tests inspect them).
    pub fn release(self) -> (SPI, DC, Option<RST>, Option<BL>) {
        let (di, _model, rst) = self.panel.release();
        let (spi, dc) = di.release();
        let rst = match rst {
            Some(ResetLine::Pin(p)) => Some(p),
            _ => None,
        };
        (spi, dc, rst, self.backlight)
    }
}

impl<SPI, DC, M, RST, BL> OriginDimensions for SpiPanel<SPI, DC, M, RST, BL>
where
    SPI: SpiDevice,
    DC: OutputPin,
    M: Model<ColorFormat = Rgb565>,
    RST: OutputPin,
{
    fn size(&self) -> Size {
        self.canvas.size()
    }
}

impl<SPI, DC, M, RST, BL> DrawTarget for SpiPanel<SPI, DC, M, RST, BL>
where
    SPI: SpiDevice,
    DC: OutputPin,
    M: Model<ColorFormat = Rgb565>,
    RST: OutputPin,
{
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

impl<SPI, DC, M, RST, BL> Display for SpiPanel<SPI, DC, M, RST, BL>
where
    SPI: SpiDevice + Send,
    DC: OutputPin + Send,
    M: Model<ColorFormat = Rgb565> + Send,
    RST: OutputPin + Send,
    BL: OutputPin + Send,
{
    /// The SPI transfer blocks; on a multi-threaded runtime it runs with
    /// `block_in_place` so other tasks move to another worker meanwhile.
    async fn flush(&mut self) -> Result<(), DisplayError> {
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if multi_thread {
            tokio::task::block_in_place(|| self.flush_now()).map(|_| ())
        } else {
            self.flush_now().map(|_| ())
        }
    }
}

/// Where a panel on Linux is wired: the part of `st7789:` / `ili9341:` after
/// the colon, `/dev/spidev0.0?dc=25&reset=27&backlight=18` (see
/// `docs/hardware.md` for every key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpidevWiring {
    pub spi: PathBuf,
    pub gpiochip: PathBuf,
    pub dc: u32,
    /// `None`: reset tied high, SWRESET instead.
    pub reset: Option<u32>,
    pub backlight: Option<u32>,
    pub hz: u32,
    pub options: PanelOptions,
}

impl SpidevWiring {
    /// Parses `<spidev path>[?key=value&...]` over the model's defaults.
    /// Keys: `dc`, `reset`, `backlight` (line offsets; `none` for reset and
    /// backlight), `chip` (GPIO character device), `hz`, `width`, `height`,
    /// `xoff`, `yoff`, `rotate`, `invert`, `bgr` (`0`/`1`).
    pub fn parse(spec: &str, defaults: PanelOptions) -> Result<SpidevWiring, SpiPanelError> {
        let (path, query) = spec.split_once('?').unwrap_or((spec, ""));
        let mut w = SpidevWiring {
            spi: PathBuf::from(path),
            gpiochip: PathBuf::from("/dev/gpiochip0"),
            dc: 25,
            reset: Some(27),
            backlight: Some(18),
            hz: 32_000_000,
            options: defaults,
        };
        if !path.starts_with('/') || path.len() < 2 {
            return Err(SpiPanelError::Option {
                key: "device".into(),
                value: path.into(),
                problem: "expected an absolute spidev path",
            });
        }
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let bad = |problem| SpiPanelError::Option {
                key: key.chars().take(32).collect(),
                value: value.chars().take(64).collect(),
                problem,
            };
            let num = |max: u32| {
                value
                    .parse::<u32>()
                    .ok()
                    .filter(|v| *v <= max)
                    .ok_or_else(|| bad("expected a number in range"))
            };
            let flag = || match value {
                "0" => Ok(false),
                "1" => Ok(true),
                _ => Err(bad("expected 0 or 1")),
            };
            let small = |max: u32| num(max).map(|v| u16::try_from(v).unwrap_or(u16::MAX));
            match key {
                "dc" => w.dc = num(1023)?,
                "reset" if value == "none" => w.reset = None,
                "reset" => w.reset = Some(num(1023)?),
                "backlight" if value == "none" => w.backlight = None,
                "backlight" => w.backlight = Some(num(1023)?),
                "chip" if value.starts_with("/dev/") => w.gpiochip = PathBuf::from(value),
                "chip" => return Err(bad("expected a /dev/gpiochipN path")),
                "hz" if value.parse::<u32>().is_ok_and(|v| v >= 100_000) => w.hz = num(u32::MAX)?,
                "hz" => return Err(bad("expected a clock of at least 100000")),
                "width" => w.options.width = small(1024).and_then(nonzero(&bad))?,
                "height" => w.options.height = small(1024).and_then(nonzero(&bad))?,
                "xoff" => w.options.x_offset = small(1024)?,
                "yoff" => w.options.y_offset = small(1024)?,
                "rotate" => w.options.rotation = small(270)?,
                "invert" => w.options.invert = flag()?,
                "bgr" => w.options.bgr = flag()?,
                _ => return Err(bad("unknown key")),
            }
        }
        Ok(w)
    }
}

fn nonzero<'a>(
    bad: &'a impl Fn(&'static str) -> SpiPanelError,
) -> impl Fn(u16) -> Result<u16, SpiPanelError> + 'a {
    move |v| {
        if v == 0 {
            Err(bad("must not be 0"))
        } else {
            Ok(v)
        }
    }
}

/// A panel on Linux spidev with DC, reset and backlight on GPIO character
/// device lines.
pub type LinuxSpiPanel<M> = SpiPanel<
    linux_embedded_hal::SpidevDevice,
    linux_embedded_hal::CdevPin,
    M,
    linux_embedded_hal::CdevPin,
    linux_embedded_hal::CdevPin,
>;

/// Opens the spidev device and GPIO lines of `wiring` and initialises the
/// panel.
pub fn open_spidev<M: Model<ColorFormat = Rgb565>>(
    model: M,
    wiring: &SpidevWiring,
) -> Result<LinuxSpiPanel<M>, SpiPanelError> {
    use linux_embedded_hal::spidev::{SpiModeFlags, SpidevOptions};
    let spi_err = |path: &Path, message: String| SpiPanelError::Spi {
        path: path.to_owned(),
        message,
    };
    let mut spi = linux_embedded_hal::SpidevDevice::open(&wiring.spi)
        .map_err(|e| spi_err(&wiring.spi, e.to_string()))?;
    spi.configure(
        &SpidevOptions::new()
            .bits_per_word(8)
            .max_speed_hz(wiring.hz)
            .mode(SpiModeFlags::SPI_MODE_0)
            .build(),
    )
    .map_err(|e| spi_err(&wiring.spi, e.to_string()))?;
    let mut chip = gpio_cdev::Chip::new(&wiring.gpiochip).map_err(|e| SpiPanelError::Gpio {
        chip: wiring.gpiochip.clone(),
        line: 0,
        role: "chip",
        message: e.to_string(),
    })?;
    let mut output = |line: u32, role: &'static str, initial: u8| {
        let err = |message: String| SpiPanelError::Gpio {
            chip: wiring.gpiochip.clone(),
            line,
            role,
            message,
        };
        let handle = chip
            .get_line(line)
            .and_then(|l| l.request(gpio_cdev::LineRequestFlags::OUTPUT, initial, "pos-agent"))
            .map_err(|e| err(e.to_string()))?;
        linux_embedded_hal::CdevPin::new(handle).map_err(|e| err(e.to_string()))
    };
    let dc = output(wiring.dc, "dc", 0)?;
    let reset = match wiring.reset {
        Some(line) => Some(output(line, "reset", 1)?),
        None => None,
    };
    let backlight = match wiring.backlight {
        Some(line) => Some(output(line, "backlight", 0)?),
        None => None,
    };
    SpiPanel::init(
        model,
        spi,
        dc,
        reset,
        backlight,
        wiring.options,
        &mut linux_embedded_hal::Delay,
    )
}
