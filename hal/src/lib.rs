//! Hardware abstraction for the terminal: card reader, display, input and
//! indicator traits ([`CardReader`], [`Display`], [`Input`], [`Indicator`]),
//! the card data they carry ([`CardRead`], never printing the PAN), and the
//! [`virtual_device`] that implements them all in memory with a loopback
//! control API (SPEC section 6).

pub mod card;
pub mod drivers;
pub mod emv;
pub mod framebuffer;
pub mod pn532;
pub mod traits;
pub mod virtual_device;

pub use card::{
    Application, CardBrand, CardDataError, CardRead, Expiry, ReaderError, ReaderInfo, SecretPan,
};
pub use framebuffer::{Framebuffer, PngError, decode_png_rgb888};
pub use traits::{
    Button, CardReader, Digit, Display, DisplayError, Indicator, IndicatorError, Input, InputError,
    ReadPurpose, ReadRequest, Signal,
};
pub use virtual_device::{HalError, TestCard, VirtualDevice, VirtualParts, serve_control};
