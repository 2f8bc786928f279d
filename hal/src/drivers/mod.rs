//! Drivers for real terminal hardware besides the card reader: Linux
//! framebuffer and SPI panels ([`fbdev`], [`spi_panel`]), evdev keys and
//! touch ([`evdev_input`]), GPIO buttons, buzzer and LEDs ([`gpio`]),
//! ESC/POS receipt printers ([`escpos_printer`], configured by a
//! [`PrinterSpec`]), and [`any`], which picks one of them (or the virtual
//! device) from a configuration string. See `docs/hardware.md`.

pub mod any;
pub mod canvas;
pub mod escpos_printer;
pub mod evdev_input;
pub mod fbdev;
pub mod gpio;
pub mod printer_spec;
pub mod spi_panel;

pub use any::{AnyDisplay, AnyIndicator, AnyInput, AnyPrinter, DisplayDriver, DriverError};
pub use escpos_printer::{EscPosFile, EscPosSerial, EscPosTimeouts};
pub use printer_spec::{FlowControl, PrinterSpec, PrinterSpecError};
