//! The `[hal]` section: which card reader, display and buttons to drive
//! ([`ReaderSpec`], [`DisplaySpec`], [`InputSpec`], parsed from strings such
//! as `pn532:/dev/ttyS0`) and the virtual device's control address.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HalConfig {
    pub reader: ReaderSpec,
    pub display: DisplaySpec,
    pub input: InputSpec,
    /// The receipt printer (SPEC 7.4); `none` by default.
    pub printer: hal::drivers::PrinterSpec,
    /// The virtual device's control API; always a loopback address.
    pub virtual_control_addr: SocketAddr,
}

impl HalConfig {
    /// Whether any device is the virtual one (so the control API is served).
    pub fn uses_virtual(&self) -> bool {
        self.reader == ReaderSpec::Virtual
            || self.display == DisplaySpec::Virtual
            || self.input == InputSpec::Virtual
            || self.printer == hal::drivers::PrinterSpec::Virtual
    }
}

/// The card reader to drive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderSpec {
    Virtual,
    /// A PN532 NFC controller on a serial line, e.g. `pn532:/dev/ttyS0`.
    Pn532 {
        device: PathBuf,
    },
}

/// The display to draw on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisplaySpec {
    Virtual,
    /// A Linux framebuffer, e.g. `fbdev:/dev/fb0`.
    Fbdev {
        device: PathBuf,
    },
    /// An ST7789 SPI panel, e.g. `st7789:/dev/spidev0.0`.
    St7789 {
        device: PathBuf,
    },
    /// An ILI9341 SPI panel, e.g. `ili9341:/dev/spidev0.0`.
    Ili9341 {
        device: PathBuf,
    },
}

impl fmt::Display for DisplaySpec {
    /// As written in the config: `virtual`, `fbdev:/dev/fb0`, ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DisplaySpec::Virtual => f.write_str("virtual"),
            DisplaySpec::Fbdev { device } => write!(f, "fbdev:{}", device.display()),
            DisplaySpec::St7789 { device } => write!(f, "st7789:{}", device.display()),
            DisplaySpec::Ili9341 { device } => write!(f, "ili9341:{}", device.display()),
        }
    }
}

impl DisplaySpec {
    /// The real driver and its device text (what follows `fbdev:` etc.), or
    /// `None` for the virtual display.
    pub fn driver(&self) -> Option<(hal::drivers::DisplayDriver, String)> {
        use hal::drivers::DisplayDriver;
        let (driver, device) = match self {
            DisplaySpec::Virtual => return None,
            DisplaySpec::Fbdev { device } => (DisplayDriver::Fbdev, device),
            DisplaySpec::St7789 { device } => (DisplayDriver::St7789, device),
            DisplaySpec::Ili9341 { device } => (DisplayDriver::Ili9341, device),
        };
        Some((driver, device.to_string_lossy().into_owned()))
    }
}

/// The cashier's buttons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSpec {
    Virtual,
    /// A Linux input device, e.g. `evdev:/dev/input/event0`.
    Evdev {
        device: PathBuf,
    },
    /// GPIO buttons; the text after `gpio:` is passed to the driver as is.
    Gpio {
        spec: String,
    },
}

fn device_after(s: &str, prefix: &str) -> Option<Result<PathBuf, String>> {
    let rest = s.strip_prefix(prefix)?.strip_prefix(':')?;
    Some(if rest.starts_with('/') && rest.len() > 1 {
        Ok(PathBuf::from(rest))
    } else {
        Err(format!(
            "`{prefix}:` must be followed by an absolute device path"
        ))
    })
}

impl FromStr for ReaderSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "virtual" {
            return Ok(ReaderSpec::Virtual);
        }
        match device_after(s, "pn532") {
            Some(r) => r.map(|device| ReaderSpec::Pn532 { device }),
            None => Err(format!(
                "unknown reader {s:?}: expected \"virtual\" or \"pn532:<serial device>\""
            )),
        }
    }
}

impl FromStr for DisplaySpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "virtual" {
            return Ok(DisplaySpec::Virtual);
        }
        if let Some(r) = device_after(s, "fbdev") {
            return r.map(|device| DisplaySpec::Fbdev { device });
        }
        if let Some(r) = device_after(s, "st7789") {
            return r.map(|device| DisplaySpec::St7789 { device });
        }
        if let Some(r) = device_after(s, "ili9341") {
            return r.map(|device| DisplaySpec::Ili9341 { device });
        }
        Err(format!(
            "unknown display {s:?}: expected \"virtual\", \"fbdev:<device>\", \
             \"st7789:<spidev>\" or \"ili9341:<spidev>\""
        ))
    }
}

impl FromStr for InputSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "virtual" {
            return Ok(InputSpec::Virtual);
        }
        if let Some(r) = device_after(s, "evdev") {
            return r.map(|device| InputSpec::Evdev { device });
        }
        if let Some(spec) = s.strip_prefix("gpio:") {
            if spec.is_empty() || spec.chars().any(char::is_whitespace) {
                return Err("`gpio:` must be followed by a pin specification".into());
            }
            return Ok(InputSpec::Gpio {
                spec: spec.to_owned(),
            });
        }
        Err(format!(
            "unknown input {s:?}: expected \"virtual\", \"evdev:<device>\" or \"gpio:<pins>\""
        ))
    }
}
