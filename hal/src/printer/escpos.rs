//! ESC/POS encoding: a [`Document`] to the bytes a thermal receipt printer
//! understands, and the `DLE EOT` status queries and their answers.
//!
//! | what | bytes |
//! |---|---|
//! | initialise | `ESC @` |
//! | code page | `ESC t n` (0 = CP437, 16 = CP1252) |
//! | per line | `ESC a n` alignment, `ESC E n` bold, `GS ! n` size (0x11 = double width and height), text, `LF` |
//! | QR code | `ESC a 1`, `GS ( k` functions 165 (model 2), 167 (module size), 169 (error correction M), 180 (store), 181 (print) |
//! | end | `ESC d 3` feed; `GS V 66 0` feed to the cutter and partial cut when the document asks for a cut |
//!
//! Text is mapped character by character to the code page; what the page
//! cannot show becomes `?` (₦ included: amounts come as `NGN 1,500.00`),
//! control characters are dropped.

use super::{Align, Document, PrinterError, PrinterStatus};
use super::{Paper, PaperWidth};

const ESC: u8 = 0x1B;
const GS: u8 = 0x1D;
const DLE: u8 = 0x10;
const EOT: u8 = 0x04;
const LF: u8 = 0x0A;

/// The longest QR payload `GS ( k` function 180 accepts (model 2, numeric
/// mode would allow more; bytes are what receipts carry).
pub const MAX_QR_BYTES: usize = 7089;

/// The character table the printer is switched to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CodePage {
    /// PC437 (USA, standard Europe): every printer's default.
    #[default]
    Cp437,
    /// Windows-1252 (Latin 1 with €, curly quotes and dashes).
    Cp1252,
}

impl CodePage {
    /// `n` of `ESC t n` (Epson numbering: 0 PC437, 16 WPC1252).
    pub fn esc_t(self) -> u8 {
        match self {
            CodePage::Cp437 => 0,
            CodePage::Cp1252 => 16,
        }
    }

    /// As written in a printer spec: `cp437`, `cp1252`.
    pub fn as_str(self) -> &'static str {
        match self {
            CodePage::Cp437 => "cp437",
            CodePage::Cp1252 => "cp1252",
        }
    }

    /// The byte for `c`, `None` if the page has no such character. Control
    /// characters have none.
    pub fn byte_of(self, c: char) -> Option<u8> {
        if c.is_control() {
            return None;
        }
        if c.is_ascii() {
            return u8::try_from(c).ok();
        }
        let upper = match self {
            CodePage::Cp437 => &CP437_UPPER,
            CodePage::Cp1252 => &CP1252_UPPER,
        };
        let i = upper.iter().position(|&u| u == c)?;
        u8::try_from(0x80 + i).ok()
    }

    /// `text` in this code page: unknown characters become `?`, control
    /// characters (newlines, tabs, escapes) are dropped.
    pub fn encode(self, text: &str) -> Vec<u8> {
        text.chars()
            .filter(|c| !c.is_control())
            .map(|c| self.byte_of(c).unwrap_or(b'?'))
            .collect()
    }
}

/// 0x80..=0xFF of code page 437.
const CP437_UPPER: [char; 128] = [
    'Ç', 'ü', 'é', 'â', 'ä', 'à', 'å', 'ç', 'ê', 'ë', 'è', 'ï', 'î', 'ì', 'Ä', 'Å', //
    'É', 'æ', 'Æ', 'ô', 'ö', 'ò', 'û', 'ù', 'ÿ', 'Ö', 'Ü', '¢', '£', '¥', '₧', 'ƒ', //
    'á', 'í', 'ó', 'ú', 'ñ', 'Ñ', 'ª', 'º', '¿', '⌐', '¬', '½', '¼', '¡', '«', '»', //
    '░', '▒', '▓', '│', '┤', '╡', '╢', '╖', '╕', '╣', '║', '╗', '╝', '╜', '╛', '┐', //
    '└', '┴', '┬', '├', '─', '┼', '╞', '╟', '╚', '╔', '╩', '╦', '╠', '═', '╬', '╧', //
    '╨', '╤', '╥', '╙', '╘', '╒', '╓', '╫', '╪', '┘', '┌', '█', '▄', '▌', '▐', '▀', //
    'α', 'ß', 'Γ', 'π', 'Σ', 'σ', 'µ', 'τ', 'Φ', 'Θ', 'Ω', 'δ', '∞', 'φ', 'ε', '∩', //
    '≡', '±', '≥', '≤', '⌠', '⌡', '÷', '≈', '°', '∙', '·', '√', 'ⁿ', '²', '■', '\u{A0}',
];

/// 0x80..=0xFF of Windows-1252; the five unassigned bytes map to a control
/// character, which [`CodePage::byte_of`] never looks up.
const CP1252_UPPER: [char; 128] = {
    let mut t = ['\u{0}'; 128];
    let low: [char; 32] = [
        '€', '\u{0}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{0}', 'Ž', '\u{0}',
        '\u{0}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{0}', 'ž', 'Ÿ',
    ];
    let mut i = 0;
    while i < 32 {
        t[i] = low[i];
        i += 1;
    }
    // 0xA0..=0xFF is Latin-1.
    while i < 128 {
        t[i] = match char::from_u32(0x80 + i as u32) {
            Some(c) => c,
            None => '\u{0}',
        };
        i += 1;
    }
    t
};

/// How a document is encoded for one printer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EscPosOptions {
    pub code_page: CodePage,
    pub paper: PaperWidth,
}

impl EscPosOptions {
    /// QR module size in dots: 5 on 58 mm (384 dots wide), 6 on 80 mm.
    fn qr_module(self) -> u8 {
        match self.paper {
            PaperWidth::Mm58 => 5,
            PaperWidth::Mm80 => 6,
        }
    }
}

/// The whole print job for `doc`.
pub fn encode_document(doc: &Document, options: EscPosOptions) -> Result<Vec<u8>, PrinterError> {
    let mut out = Vec::with_capacity(64 + doc.lines.len() * (options.paper.columns() + 12));
    out.extend_from_slice(&[ESC, b'@', ESC, b't', options.code_page.esc_t()]);
    for line in &doc.lines {
        out.extend_from_slice(&[ESC, b'a', align_byte(line.align)]);
        out.extend_from_slice(&[ESC, b'E', u8::from(line.bold)]);
        out.extend_from_slice(&[GS, b'!', if line.double { 0x11 } else { 0x00 }]);
        out.extend(options.code_page.encode(&line.text));
        out.push(LF);
    }
    out.extend_from_slice(&[ESC, b'E', 0, GS, b'!', 0]);
    if let Some(data) = &doc.qr {
        encode_qr(&mut out, data, options.qr_module())?;
    }
    out.extend_from_slice(&[ESC, b'a', 0, ESC, b'd', 3]);
    if doc.cut {
        out.extend_from_slice(&[GS, b'V', 66, 0]);
    }
    Ok(out)
}

fn align_byte(align: Align) -> u8 {
    match align {
        Align::Left => 0,
        Align::Center => 1,
        Align::Right => 2,
    }
}

/// `GS ( k pL pH cn fn [params]`, cn = 49 (QR code).
fn gs_k(out: &mut Vec<u8>, function: u8, params: &[u8]) -> Result<(), PrinterError> {
    let len = u16::try_from(params.len() + 2).map_err(|_| PrinterError::Encode {
        what: format!("QR parameters of {} bytes", params.len()),
    })?;
    let [pl, ph] = len.to_le_bytes();
    out.extend_from_slice(&[GS, b'(', b'k', pl, ph, 49, function]);
    out.extend_from_slice(params);
    Ok(())
}

fn encode_qr(out: &mut Vec<u8>, data: &str, module: u8) -> Result<(), PrinterError> {
    if data.is_empty() || data.len() > MAX_QR_BYTES || data.chars().any(char::is_control) {
        return Err(PrinterError::Encode {
            what: format!(
                "QR data of {} bytes (1 to {MAX_QR_BYTES} printable characters)",
                data.len()
            ),
        });
    }
    out.extend_from_slice(&[ESC, b'a', 1]);
    gs_k(out, 65, &[50, 0])?; // model 2
    gs_k(out, 67, &[module])?;
    gs_k(out, 69, &[49])?; // error correction M (15 %)
    let mut store = Vec::with_capacity(data.len() + 1);
    store.push(48);
    store.extend_from_slice(data.as_bytes());
    gs_k(out, 80, &store)?; // store the data in the symbol area
    gs_k(out, 81, &[48])?; // print it
    out.push(LF);
    Ok(())
}

/// The `DLE EOT n` real-time status queries used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusQuery {
    /// n = 1: printer status (online/offline).
    Printer = 1,
    /// n = 2: offline cause (cover, paper-end stop, error).
    OfflineCause = 2,
    /// n = 4: roll paper sensor (near end, end).
    Paper = 4,
}

impl StatusQuery {
    pub const ALL: [StatusQuery; 3] = [
        StatusQuery::Printer,
        StatusQuery::OfflineCause,
        StatusQuery::Paper,
    ];

    /// The three bytes to send.
    pub fn bytes(self) -> [u8; 3] {
        [DLE, EOT, self as u8]
    }
}

/// A status byte always has bits 1 and 4 set and bits 0 and 7 clear.
fn check(byte: u8) -> Result<u8, PrinterError> {
    if byte & 0b1001_0011 == 0b0001_0010 {
        Ok(byte)
    } else {
        Err(PrinterError::BadStatus { byte })
    }
}

/// The three answers (to [`StatusQuery::ALL`], in order) as a status.
pub fn parse_status(
    printer: u8,
    offline_cause: u8,
    paper: u8,
) -> Result<PrinterStatus, PrinterError> {
    let (printer, cause, paper) = (check(printer)?, check(offline_cause)?, check(paper)?);
    let paper_state = if paper & 0x60 != 0 || cause & 0x20 != 0 {
        Paper::Out
    } else if paper & 0x0C != 0 {
        Paper::Low
    } else {
        Paper::Ok
    };
    Ok(PrinterStatus {
        online: printer & 0x08 == 0,
        paper: paper_state,
        cover_open: cause & 0x04 != 0,
    })
}

/// A status as the printer would answer [`StatusQuery::ALL`] (for
/// emulated printers in tests).
pub fn status_answer(status: PrinterStatus) -> [u8; 3] {
    let printer = 0x12 | if status.online { 0 } else { 0x08 };
    let cause = 0x12
        | if status.cover_open { 0x04 } else { 0 }
        | if status.paper == Paper::Out { 0x20 } else { 0 };
    let paper = 0x12
        | match status.paper {
            Paper::Low => 0x0C,
            Paper::Out => 0x6C,
            Paper::Ok | Paper::Unknown => 0,
        };
    [printer, cause, paper]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::printer::DocLine;

    #[test]
    fn code_page_tables_are_complete_and_unique() {
        for upper in [&CP437_UPPER, &CP1252_UPPER] {
            let mut seen: Vec<char> = upper.iter().copied().filter(|c| *c != '\u{0}').collect();
            let n = seen.len();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), n);
        }
        assert_eq!(CP1252_UPPER.iter().filter(|c| **c == '\u{0}').count(), 5);
    }

    #[test]
    fn characters_map_to_the_code_page() {
        assert_eq!(CodePage::Cp437.encode("Adé"), b"Ad\x82");
        assert_eq!(CodePage::Cp1252.encode("Adé"), b"Ad\xE9");
        assert_eq!(CodePage::Cp437.encode("€5"), b"?5");
        assert_eq!(
            CodePage::Cp1252.encode("€5 – “ok”"),
            b"\x805 \x96 \x93ok\x94"
        );
        assert_eq!(CodePage::Cp437.encode("Ñ½°"), b"\xA5\xAB\xF8");
        assert_eq!(CodePage::Cp1252.encode("Ñ½°"), b"\xD1\xBD\xB0");
        // No naira sign on printers; emoji neither.
        assert_eq!(CodePage::Cp437.encode("₦1,500"), b"?1,500");
        assert_eq!(CodePage::Cp1252.encode("₦1,500 🍺"), b"?1,500 ?");
    }

    #[test]
    fn control_characters_are_stripped() {
        assert_eq!(
            CodePage::Cp437.encode("a\nb\tc\r\u{1B}@d\u{7F}e\u{85}f\u{0}"),
            b"abc@def"
        );
        // A line cannot smuggle a command in: ESC and GS never come through.
        let doc = Document {
            lines: vec![DocLine::new("x\u{1D}V\u{0}y")],
            qr: None,
            cut: false,
        };
        let bytes = encode_document(&doc, EscPosOptions::default()).unwrap();
        assert!(bytes.windows(3).any(|w| w == b"xVy"));
        assert!(!bytes.windows(2).any(|w| w == [GS, b'V']));
    }

    #[test]
    fn qr_command_carries_the_data_length() {
        let doc = Document {
            lines: vec![],
            qr: Some("https://x.test/r/1".into()),
            cut: false,
        };
        let bytes = encode_document(&doc, EscPosOptions::default()).unwrap();
        let store = [GS, b'(', b'k', 18 + 3, 0, 49, 80, 48];
        let at = bytes.windows(store.len()).position(|w| w == store).unwrap();
        assert_eq!(
            &bytes[at + store.len()..at + store.len() + 18],
            b"https://x.test/r/1"
        );
        let print = [GS, b'(', b'k', 3, 0, 49, 81, 48];
        assert!(bytes.windows(print.len()).any(|w| w == print));
        let model = [GS, b'(', b'k', 4, 0, 49, 65, 50, 0];
        assert!(bytes.windows(model.len()).any(|w| w == model));
    }

    #[test]
    fn bad_qr_data_is_an_encode_error() {
        for qr in [String::new(), "a\nb".into(), "x".repeat(MAX_QR_BYTES + 1)] {
            let doc = Document {
                lines: vec![],
                qr: Some(qr),
                cut: true,
            };
            let e = encode_document(&doc, EscPosOptions::default()).unwrap_err();
            assert!(matches!(e, PrinterError::Encode { .. }), "{e}");
        }
    }

    #[test]
    fn code_page_and_cut() {
        let doc = Document {
            lines: vec![DocLine::new("é")],
            qr: None,
            cut: true,
        };
        let options = EscPosOptions {
            code_page: CodePage::Cp1252,
            paper: PaperWidth::Mm80,
        };
        let bytes = encode_document(&doc, options).unwrap();
        assert_eq!(&bytes[..5], &[ESC, b'@', ESC, b't', 16]);
        assert!(bytes.ends_with(&[GS, b'V', 66, 0]));
        let uncut = Document { cut: false, ..doc };
        let bytes = encode_document(&uncut, options).unwrap();
        assert!(bytes.ends_with(&[ESC, b'd', 3]));
    }

    #[test]
    fn status_bytes_round_trip_and_are_checked() {
        for online in [true, false] {
            for cover_open in [true, false] {
                for paper in [Paper::Ok, Paper::Low, Paper::Out] {
                    let s = PrinterStatus {
                        online,
                        paper,
                        cover_open,
                    };
                    let [a, b, c] = status_answer(s);
                    assert_eq!(parse_status(a, b, c).unwrap(), s);
                }
            }
        }
        // Epson's documented idle answer: 0x16 to n = 1 (bit 2 is the
        // drawer pin), 0x12 to n = 2 and 4.
        let idle = parse_status(0x16, 0x12, 0x12).unwrap();
        assert!(idle.online && idle.paper == Paper::Ok && !idle.cover_open);
        let e = parse_status(0x16, 0x12, 0x00).unwrap_err();
        assert!(matches!(e, PrinterError::BadStatus { byte: 0 }), "{e}");
        assert_eq!(StatusQuery::Paper.bytes(), [0x10, 0x04, 0x04]);
    }
}
