//! One type per device role that is either the virtual device's part or a
//! real driver, so the agent can pick at start-up from its configuration
//! (the `Display`, `Input` and `Indicator` traits use `async fn`, so they
//! are not object-safe; these enums dispatch instead).

use embedded_graphics::pixelcolor::Rgb565;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;
use mipidsi::models::{ILI9341Rgb565, ST7789};

use super::escpos_printer::{EscPosFile, EscPosSerial};
use super::evdev_input::{self, EvdevInput};
use super::fbdev::{FbDisplay, FbError, FbPixelFormat};
use super::gpio::{self, CdevEdges, GpioButtons, GpioError, GpioIndicator, GpioWiring};
use super::printer_spec::PrinterSpec;
use super::spi_panel::{self, LinuxSpiPanel, PanelOptions, SpiPanelError, SpidevWiring};
use crate::printer::{Document, Printer, PrinterError, PrinterStatus};
use crate::traits::Signal;
use crate::traits::{Button, Display, DisplayError, Indicator, IndicatorError, Input, InputError};
use crate::virtual_device::{
    VirtualDevice, VirtualDisplay, VirtualIndicator, VirtualInput, VirtualPrinter,
};

/// Why a real device could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Fb(#[from] FbError),
    #[error(transparent)]
    Spi(#[from] SpiPanelError),
    #[error(transparent)]
    Gpio(#[from] GpioError),
    #[error("input device {device}: {source}")]
    Input {
        device: String,
        #[source]
        source: InputError,
    },
    #[error("opening the panel stopped: {0}")]
    Join(String),
}

/// Which real display driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisplayDriver {
    /// `fbdev:/dev/fbN`, or `fbdev:<file>?width=..&height=..&format=..`
    Fbdev,
    /// `st7789:/dev/spidevB.C[?options]`
    St7789,
    /// `ili9341:/dev/spidevB.C[?options]`
    Ili9341,
}

/// The display the agent draws on.
pub enum AnyDisplay {
    Virtual(VirtualDisplay),
    Fbdev(FbDisplay),
    St7789(LinuxSpiPanel<ST7789>),
    Ili9341(LinuxSpiPanel<ILI9341Rgb565>),
}

impl std::fmt::Debug for AnyDisplay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

macro_rules! each_display {
    ($self:expr, $d:ident => $e:expr) => {
        match $self {
            AnyDisplay::Virtual($d) => $e,
            AnyDisplay::Fbdev($d) => $e,
            AnyDisplay::St7789($d) => $e,
            AnyDisplay::Ili9341($d) => $e,
        }
    };
}

impl AnyDisplay {
    /// Opens a real display. `device` is the text after `fbdev:`,
    /// `st7789:` or `ili9341:`. SPI panel initialisation blocks for about
    /// 300 ms, so it runs on tokio's blocking pool.
    pub async fn open(driver: DisplayDriver, device: &str) -> Result<AnyDisplay, DriverError> {
        match driver {
            DisplayDriver::Fbdev => Ok(AnyDisplay::Fbdev(FbDisplay::open_spec(device)?)),
            DisplayDriver::St7789 => {
                let wiring = SpidevWiring::parse(device, PanelOptions::st7789())?;
                let panel =
                    tokio::task::spawn_blocking(move || spi_panel::open_spidev(ST7789, &wiring))
                        .await
                        .map_err(|e| DriverError::Join(e.to_string()))??;
                Ok(AnyDisplay::St7789(panel))
            }
            DisplayDriver::Ili9341 => {
                let wiring = SpidevWiring::parse(device, PanelOptions::ili9341())?;
                let panel = tokio::task::spawn_blocking(move || {
                    spi_panel::open_spidev(ILI9341Rgb565, &wiring)
                })
                .await
                .map_err(|e| DriverError::Join(e.to_string()))??;
                Ok(AnyDisplay::Ili9341(panel))
            }
        }
    }

    /// For the heartbeat: driver and size, e.g. `fbdev 800x480 xrgb8888`.
    pub fn describe(&self) -> String {
        let s = self.size();
        let kind = match self {
            AnyDisplay::Virtual(_) => "virtual",
            AnyDisplay::Fbdev(fb) => match fb.geometry().format {
                FbPixelFormat::Rgb565 => "fbdev rgb565",
                FbPixelFormat::Xrgb8888 => "fbdev xrgb8888",
            },
            AnyDisplay::St7789(_) => "st7789",
            AnyDisplay::Ili9341(_) => "ili9341",
        };
        format!("{kind} {}x{}", s.width, s.height)
    }
}

impl OriginDimensions for AnyDisplay {
    fn size(&self) -> Size {
        each_display!(self, d => d.size())
    }
}

impl DrawTarget for AnyDisplay {
    type Color = Rgb565;
    type Error = DisplayError;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), DisplayError>
    where
        I: IntoIterator<Item = Pixel<Rgb565>>,
    {
        each_display!(self, d => d.draw_iter(pixels))
    }

    fn fill_contiguous<I>(&mut self, area: &Rectangle, colors: I) -> Result<(), DisplayError>
    where
        I: IntoIterator<Item = Rgb565>,
    {
        each_display!(self, d => d.fill_contiguous(area, colors))
    }

    fn fill_solid(&mut self, area: &Rectangle, color: Rgb565) -> Result<(), DisplayError> {
        each_display!(self, d => d.fill_solid(area, color))
    }

    fn clear(&mut self, color: Rgb565) -> Result<(), DisplayError> {
        each_display!(self, d => d.clear(color))
    }
}

impl Display for AnyDisplay {
    async fn flush(&mut self) -> Result<(), DisplayError> {
        each_display!(self, d => d.flush().await)
    }

    fn set_state<S: serde::Serialize + ?Sized>(&mut self, state: &S) {
        each_display!(self, d => d.set_state(state))
    }
}

/// The cashier's buttons.
pub enum AnyInput {
    Virtual(VirtualInput),
    Evdev(EvdevInput<evdev::raw_stream::EventStream>),
    Gpio(GpioButtons<CdevEdges>),
}

impl AnyInput {
    /// Opens `/dev/input/eventN` (`evdev:`); a touch screen maps onto a
    /// panel of `panel` pixels.
    pub fn open_evdev(device: &str, panel: Size) -> Result<AnyInput, DriverError> {
        evdev_input::open_evdev(device, panel)
            .map(AnyInput::Evdev)
            .map_err(|source| DriverError::Input {
                device: device.to_owned(),
                source,
            })
    }

    /// GPIO buttons and, if the specification names a buzzer or LEDs, the
    /// indicator (`gpio:`; see [`GpioWiring::parse`]). Needs a tokio runtime.
    pub fn open_gpio(spec: &str) -> Result<(AnyInput, Option<AnyIndicator>), DriverError> {
        let wiring = GpioWiring::parse(spec)?;
        let buttons = gpio::open_buttons(&wiring)?;
        let indicator = gpio::open_indicator(&wiring)?.map(|i| AnyIndicator::Gpio(Box::new(i)));
        Ok((AnyInput::Gpio(buttons), indicator))
    }

    pub fn describe(&self) -> &'static str {
        match self {
            AnyInput::Virtual(_) => "virtual",
            AnyInput::Evdev(_) => "evdev",
            AnyInput::Gpio(_) => "gpio",
        }
    }
}

impl std::fmt::Debug for AnyInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

impl Input for AnyInput {
    async fn next_button(&mut self) -> Result<Button, InputError> {
        match self {
            AnyInput::Virtual(i) => i.next_button().await,
            AnyInput::Evdev(i) => i.next_button().await,
            AnyInput::Gpio(i) => i.next_button().await,
        }
    }
}

/// Beeper and LEDs.
pub enum AnyIndicator {
    Virtual(VirtualIndicator),
    Gpio(Box<GpioIndicator<linux_embedded_hal::CdevPin>>),
}

impl std::fmt::Debug for AnyIndicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AnyIndicator::Virtual(_) => "virtual",
            AnyIndicator::Gpio(_) => "gpio",
        })
    }
}

impl Indicator for AnyIndicator {
    async fn signal(&mut self, signal: Signal) -> Result<(), IndicatorError> {
        match self {
            AnyIndicator::Virtual(i) => i.signal(signal).await,
            AnyIndicator::Gpio(i) => i.signal(signal).await,
        }
    }
}

/// The receipt printer, or none.
pub enum AnyPrinter {
    /// `printer = "none"`: every print and status query is
    /// [`PrinterError::NotConfigured`], so a "print receipt" on a terminal
    /// without a printer is an answer, not silence.
    None,
    Virtual(VirtualPrinter),
    File(EscPosFile),
    Serial(EscPosSerial),
}

impl AnyPrinter {
    /// The printer `spec` names; `device` is the running virtual device
    /// (needed for `virtual` only). Nothing is opened here: ESC/POS
    /// drivers open their device per job, so a printer plugged in later
    /// works and a missing one fails that job only.
    pub fn open(
        spec: &PrinterSpec,
        device: Option<&VirtualDevice>,
    ) -> Result<AnyPrinter, PrinterError> {
        Ok(match spec {
            PrinterSpec::None => AnyPrinter::None,
            PrinterSpec::Virtual => {
                AnyPrinter::Virtual(device.ok_or(PrinterError::NoVirtualDevice)?.printer())
            }
            PrinterSpec::EscPosFile { path, options } => {
                AnyPrinter::File(EscPosFile::new(path.clone(), *options))
            }
            PrinterSpec::EscPosSerial {
                path,
                baud,
                flow,
                options,
            } => AnyPrinter::Serial(EscPosSerial::new(path.clone(), *baud, *flow, *options)),
        })
    }

    /// Whether there is a printer at all.
    pub fn is_configured(&self) -> bool {
        !matches!(self, AnyPrinter::None)
    }
}

impl std::fmt::Debug for AnyPrinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Printer for AnyPrinter {
    async fn print(&mut self, doc: &Document) -> Result<(), PrinterError> {
        match self {
            AnyPrinter::None => Err(PrinterError::NotConfigured),
            AnyPrinter::Virtual(p) => p.print(doc).await,
            AnyPrinter::File(p) => p.print(doc).await,
            AnyPrinter::Serial(p) => p.print(doc).await,
        }
    }

    async fn status(&mut self) -> Result<PrinterStatus, PrinterError> {
        match self {
            AnyPrinter::None => Err(PrinterError::NotConfigured),
            AnyPrinter::Virtual(p) => p.status().await,
            AnyPrinter::File(p) => p.status().await,
            AnyPrinter::Serial(p) => p.status().await,
        }
    }

    fn describe(&self) -> String {
        match self {
            AnyPrinter::None => "none".to_owned(),
            AnyPrinter::Virtual(p) => p.describe(),
            AnyPrinter::File(p) => p.describe(),
            AnyPrinter::Serial(p) => p.describe(),
        }
    }
}
