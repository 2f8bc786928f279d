//! Receipt printers (SPEC 7.4): the [`Document`] a receipt is laid out as,
//! the [`Printer`] trait the agent prints through, the ESC/POS encoding
//! ([`escpos`]) and the text/PNG rendering of the virtual printer
//! ([`render`]). The drivers for real printers are in
//! [`crate::drivers::escpos_printer`]; see `docs/hardware.md`.
//!
//! A document is plain lines (bold, double size, alignment), an optional
//! QR code printed with the printer's own QR command after the lines, and
//! an optional cut. Amounts arrive already formatted (`NGN 1,500.00`):
//! printers have no ₦.

pub mod escpos;
pub mod render;

use std::future::Future;
use std::path::PathBuf;

pub use escpos::CodePage;

/// Characters per line on 58 mm paper in font A (12x24 dots).
pub const PRINTER_COLUMNS: usize = 32;
/// Characters per line on 80 mm paper in font A.
pub const PRINTER_COLUMNS_80MM: usize = 48;

/// Where a line sits across the paper.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Align {
    #[default]
    Left,
    Center,
    Right,
}

/// One line of text. Longer than the paper is wide, it wraps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocLine {
    pub text: String,
    pub bold: bool,
    /// Double width and double height: half as many characters fit.
    pub double: bool,
    pub align: Align,
}

impl DocLine {
    /// A plain left-aligned line.
    pub fn new(text: impl Into<String>) -> DocLine {
        DocLine {
            text: text.into(),
            ..DocLine::default()
        }
    }

    pub fn bold(mut self) -> DocLine {
        self.bold = true;
        self
    }

    pub fn double(mut self) -> DocLine {
        self.double = true;
        self
    }

    pub fn align(mut self, align: Align) -> DocLine {
        self.align = align;
        self
    }
}

/// A receipt as it is printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Document {
    pub lines: Vec<DocLine>,
    /// Printed as a QR code (the printer's own QR command), centred, after
    /// the lines.
    pub qr: Option<String>,
    /// Cut the paper at the end (printers without a cutter ignore it).
    pub cut: bool,
}

/// Paper width, which sets the characters per line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PaperWidth {
    /// 58 mm roll, [`PRINTER_COLUMNS`] characters.
    #[default]
    Mm58,
    /// 80 mm roll, [`PRINTER_COLUMNS_80MM`] characters.
    Mm80,
}

impl PaperWidth {
    pub fn columns(self) -> usize {
        match self {
            PaperWidth::Mm58 => PRINTER_COLUMNS,
            PaperWidth::Mm80 => PRINTER_COLUMNS_80MM,
        }
    }

    /// As written in a printer spec: `58` or `80`.
    pub fn as_str(self) -> &'static str {
        match self {
            PaperWidth::Mm58 => "58",
            PaperWidth::Mm80 => "80",
        }
    }
}

/// What the paper sensor says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Paper {
    Ok,
    /// Near the end of the roll: still prints.
    Low,
    Out,
    /// The printer did not say (it cannot answer, or did not in time).
    Unknown,
}

impl Paper {
    pub fn as_str(self) -> &'static str {
        match self {
            Paper::Ok => "ok",
            Paper::Low => "low",
            Paper::Out => "out",
            Paper::Unknown => "unknown",
        }
    }
}

/// A printer's answer to a status query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PrinterStatus {
    pub online: bool,
    pub paper: Paper,
    pub cover_open: bool,
}

/// Why a print or a status query failed. Every variant names what failed;
/// none of them ever leaves the caller waiting beyond the driver's timeouts.
#[derive(Debug, thiserror::Error)]
pub enum PrinterError {
    /// The terminal has no printer (`printer = "none"`).
    #[error("no receipt printer is configured")]
    NotConfigured,
    #[error("printer device {} does not exist", path.display())]
    NotFound { path: PathBuf },
    #[error("printer device {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("printer did not answer in time: {what}")]
    Timeout { what: String },
    #[error("printer is out of paper")]
    PaperOut,
    #[error("printer is offline")]
    Offline,
    #[error("printer cover is open")]
    CoverOpen,
    #[error("receipt cannot be encoded: {what}")]
    Encode { what: String },
    #[error("printer answered {byte:#04x} to a status query, which is not a status byte")]
    BadStatus { byte: u8 },
    #[error("the virtual printer needs the virtual device, which is not running")]
    NoVirtualDevice,
}

/// A receipt printer.
pub trait Printer: Send {
    /// Prints `doc`; returns once the bytes are with the printer (or the
    /// driver's timeout passed).
    fn print(&mut self, doc: &Document) -> impl Future<Output = Result<(), PrinterError>> + Send;

    /// Asks the printer how it is.
    fn status(&mut self) -> impl Future<Output = Result<PrinterStatus, PrinterError>> + Send;

    /// For the heartbeat and `doctor`: driver and device, e.g.
    /// `escpos /dev/usb/lp0 58mm cp437`.
    fn describe(&self) -> String;
}

/// A sample receipt (used by tests, the golden byte stream and the demo).
pub fn sample_receipt() -> Document {
    let kv = |k: &str, v: &str| {
        let pad = PRINTER_COLUMNS.saturating_sub(k.len() + v.len()).max(1);
        DocLine::new(format!("{k}{}{v}", " ".repeat(pad)))
    };
    Document {
        lines: vec![
            DocLine::new("KLER BAR")
                .bold()
                .double()
                .align(Align::Center),
            DocLine::new("Lagos Jazz Night").align(Align::Center),
            DocLine::new("Bar 2 - pos_3f1e2d_001").align(Align::Center),
            DocLine::new("2026-12-03 21:14:05"),
            DocLine::new("Ref  KLR-7Q2M-93XD"),
            DocLine::new("VISA **** 1111"),
            DocLine::new("AID  A0000000031010"),
            DocLine::new("VISA CREDIT  contactless"),
            DocLine::new("Auth 123456"),
            DocLine::new("-".repeat(PRINTER_COLUMNS)),
            kv("Amount", "NGN 1,500.00"),
            kv("Tip", "NGN 150.00"),
            kv("TOTAL", "NGN 1,650.00").bold(),
            DocLine::new("APPROVED")
                .bold()
                .double()
                .align(Align::Center),
            DocLine::new("Operator: Adé").align(Align::Center),
            DocLine::new("Merchant copy").align(Align::Right),
        ],
        qr: Some("https://api.kler.africa/r/txn_01JEXAMPLE7Q2M".to_owned()),
        cut: true,
    }
}
