//! Hardware abstraction for the terminal: card reader, display, input,
//! indicator and receipt printer traits ([`CardReader`], [`Display`],
//! [`Input`], [`Indicator`], [`Printer`]),
//! the card data they carry ([`CardRead`], never printing the PAN), and the
//! [`virtual_device`] that implements them all in memory with a loopback
//! control API (SPEC section 6).
//!
//! Displays are embedded-graphics `DrawTarget`s plus a flush; the in-memory
//! [`Framebuffer`] (with PNG encoding) backs the virtual display. hal does
//! not know the screens: the agent draws them with `ui` and hands the
//! display an opaque, serializable state ([`Display::set_state`]).

pub mod card;
pub mod drivers;
pub mod emv;
pub mod framebuffer;
pub mod pn532;
pub mod printer;
pub mod traits;
pub mod virtual_device;

pub use card::{
    Application, CardBrand, CardDataError, CardRead, Expiry, ReaderError, ReaderInfo, SecretPan,
    brand_label, brand_of_aid,
};
pub use framebuffer::{Framebuffer, PngError, decode_png_rgb888};
pub use printer::{
    Align, CodePage, DocLine, Document, PRINTER_COLUMNS, PRINTER_COLUMNS_80MM, Paper, PaperWidth,
    Printer, PrinterError, PrinterStatus,
};
pub use traits::{
    Button, CardReader, Digit, Display, DisplayError, Indicator, IndicatorError, Input, InputError,
    ReadPurpose, ReadRequest, Signal,
};
pub use virtual_device::{
    HalError, Receipt, ScreenStateJson, TestCard, VirtualDevice, VirtualParts, VirtualPrinter,
    VirtualPrinterState, serve_control,
};
