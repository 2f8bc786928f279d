//! What a card read yields: the PAN in a zeroizing buffer (never printed),
//! expiry, brand, application; and the typed reader errors.

use std::fmt;

use zeroize::Zeroizing;

/// Card brands this terminal recognises.
pub use proto::CardBrand;

/// The scheme of an EMV application identifier (its registered provider
/// id, the first five bytes); `None` for a scheme the terminal does not
/// accept.
pub fn brand_of_aid(aid: &[u8]) -> Option<CardBrand> {
    match aid.get(..5) {
        Some([0xA0, 0x00, 0x00, 0x00, 0x03]) => Some(CardBrand::Visa),
        Some([0xA0, 0x00, 0x00, 0x00, 0x04]) => Some(CardBrand::Mastercard),
        Some([0xA0, 0x00, 0x00, 0x03, 0x71]) => Some(CardBrand::Verve),
        _ => None,
    }
}

/// The brand as screens and receipts print it.
pub fn brand_label(brand: CardBrand) -> &'static str {
    match brand {
        CardBrand::Visa => "VISA",
        CardBrand::Mastercard => "MASTERCARD",
        CardBrand::Verve => "VERVE",
        CardBrand::Amex => "AMEX",
        CardBrand::Discover => "DISCOVER",
        CardBrand::Unionpay => "UNIONPAY",
        CardBrand::Other => "CARD",
    }
}

/// Why a PAN or expiry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardDataError {
    /// Deliberately does not carry the input.
    #[error("PAN must be 12 to 19 digits with a valid check digit (got {len} characters)")]
    InvalidPan { len: usize },
    #[error("invalid expiry {year:04}-{month:02}")]
    InvalidExpiry { year: u16, month: u8 },
}

/// A full PAN: digits only, held in memory that is wiped on drop, never
/// printed (`Debug` shows only the last four digits).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretPan(Zeroizing<String>);

impl SecretPan {
    /// Validates 12–19 ASCII digits and the Luhn check digit.
    pub fn new(digits: &str) -> Result<Self, CardDataError> {
        let invalid = CardDataError::InvalidPan { len: digits.len() };
        if !(12..=19).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid);
        }
        if !luhn_ok(digits) {
            return Err(invalid);
        }
        Ok(SecretPan(Zeroizing::new(digits.to_owned())))
    }

    /// The full PAN, for tokenization only. Never log or store it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The last four digits.
    pub fn last4(&self) -> &str {
        // Invariant from `new`: at least 12 ASCII digits.
        &self.0[self.0.len() - 4..]
    }
}

impl fmt::Debug for SecretPan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretPan(****{})", self.last4())
    }
}

fn luhn_ok(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let dd = d * 2;
                if dd > 9 { dd - 9 } else { dd }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// Card expiry (last day of `month` in `year`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Expiry {
    year: u16,
    month: u8,
}

impl Expiry {
    /// `year` with four digits (2000–2099), `month` 1–12.
    pub fn new(year: u16, month: u8) -> Result<Self, CardDataError> {
        if !(2000..=2099).contains(&year) || !(1..=12).contains(&month) {
            return Err(CardDataError::InvalidExpiry { year, month });
        }
        Ok(Expiry { year, month })
    }

    /// From EMV's two-digit year and month (tag 5F24 `YYMMDD`, track 2 `YYMM`).
    pub fn from_yymm(yy: u8, mm: u8) -> Result<Self, CardDataError> {
        if yy > 99 {
            return Err(CardDataError::InvalidExpiry {
                year: u16::from(yy),
                month: mm,
            });
        }
        Expiry::new(2000 + u16::from(yy), mm)
    }

    pub fn year(self) -> u16 {
        self.year
    }

    pub fn month(self) -> u8 {
        self.month
    }
}

/// The EMV application the card was read with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Application {
    /// Application label (tag 50), e.g. `VISA CREDIT`.
    pub label: Option<String>,
    /// Application identifier (tag 4F), 5–16 bytes.
    pub aid: Option<Vec<u8>>,
}

/// A successful card read. `Debug` never shows the PAN.
#[derive(Clone)]
pub struct CardRead {
    pan: SecretPan,
    expiry: Expiry,
    brand: CardBrand,
    application: Application,
}

impl CardRead {
    pub fn new(pan: SecretPan, expiry: Expiry, brand: CardBrand, application: Application) -> Self {
        CardRead {
            pan,
            expiry,
            brand,
            application,
        }
    }

    /// The full PAN, for tokenization only.
    pub fn pan(&self) -> &SecretPan {
        &self.pan
    }

    pub fn last4(&self) -> &str {
        self.pan.last4()
    }

    pub fn brand(&self) -> CardBrand {
        self.brand
    }

    pub fn expiry(&self) -> Expiry {
        self.expiry
    }

    pub fn application(&self) -> &Application {
        &self.application
    }
}

impl fmt::Debug for CardRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardRead")
            .field("brand", &self.brand)
            .field("last4", &self.last4())
            .field("expiry", &self.expiry)
            .field("application", &self.application)
            .finish()
    }
}

/// Reader model and firmware, for `pos-agent doctor` and the heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReaderInfo {
    pub model: String,
    pub firmware: String,
}

/// Why a card read did not yield a card.
#[derive(Debug, thiserror::Error)]
pub enum ReaderError {
    /// The card answered but its data could not be read or made no sense.
    #[error("card could not be read: {0}")]
    Misread(String),
    /// The card left the field before the read finished.
    #[error("card removed before the read finished")]
    RemovedTooEarly,
    /// No card within the read's timeout.
    #[error("no card presented within {0:?}")]
    Timeout(std::time::Duration),
    /// The read was cancelled through its token.
    #[error("card read cancelled")]
    Cancelled,
    /// The card has no application this terminal accepts.
    #[error("card not supported: {0}")]
    Unsupported(String),
    /// The reader itself misbehaves (protocol error, no answer, ...).
    #[error("card reader fault: {0}")]
    Fault(String),
    /// I/O on the reader's device failed.
    #[error("card reader I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl ReaderError {
    /// snake_case code, for logs and payment events.
    pub fn code(&self) -> &'static str {
        match self {
            ReaderError::Misread(_) => "misread",
            ReaderError::RemovedTooEarly => "removed_too_early",
            ReaderError::Timeout(_) => "timeout",
            ReaderError::Cancelled => "cancelled",
            ReaderError::Unsupported(_) => "card_not_supported",
            ReaderError::Fault(_) => "reader_fault",
            ReaderError::Io(_) => "reader_io",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brands_from_test_pans() {
        assert_eq!(
            CardBrand::from_pan_digits(b"4111111111111111"),
            CardBrand::Visa
        );
        assert_eq!(
            CardBrand::from_pan_digits(b"5555555555554444"),
            CardBrand::Mastercard
        );
        assert_eq!(
            CardBrand::from_pan_digits(b"2221000000000009"),
            CardBrand::Mastercard
        );
        assert_eq!(
            CardBrand::from_pan_digits(b"5061000000000000007"),
            CardBrand::Verve
        );
        assert_eq!(
            CardBrand::from_pan_digits(b"6500020000000000"),
            CardBrand::Verve
        );
        assert_eq!(
            CardBrand::from_pan_digits(b"3400000000000009"),
            CardBrand::Amex
        );
        assert_eq!(CardBrand::from_pan_digits(b""), CardBrand::Other);
        assert_eq!(
            brand_of_aid(&[0xA0, 0, 0, 3, 0x71, 0x00, 0x01]),
            Some(CardBrand::Verve)
        );
        assert_eq!(
            brand_of_aid(&[0xA0, 0, 0, 0, 3, 0x10, 0x10]),
            Some(CardBrand::Visa)
        );
        assert_eq!(brand_of_aid(&[0xA0, 0, 0]), None);
    }

    #[test]
    fn pan_is_validated_and_never_printed() {
        assert!(SecretPan::new("4111111111111112").is_err());
        assert!(SecretPan::new("41111111111111a1").is_err());
        assert!(SecretPan::new("41111111").is_err());
        let err = SecretPan::new("4111111111111112").unwrap_err().to_string();
        assert!(!err.contains("4111111111111112"));
        let pan = SecretPan::new("4111111111111111").unwrap();
        assert_eq!(pan.last4(), "1111");
        let read = CardRead::new(
            pan,
            Expiry::new(2030, 12).unwrap(),
            CardBrand::Visa,
            Application {
                label: Some("VISA CREDIT".into()),
                aid: Some(vec![0xA0, 0, 0, 0, 3, 0x10, 0x10]),
            },
        );
        let debug = format!("{read:?} {:?}", read.pan());
        assert!(!debug.contains("4111111111111111"), "{debug}");
        assert!(!debug.contains("411111"), "{debug}");
        assert!(debug.contains("1111"));
        assert_eq!(read.pan().expose(), "4111111111111111");
    }

    #[test]
    fn expiry_bounds() {
        assert!(Expiry::new(2030, 0).is_err());
        assert!(Expiry::new(2030, 13).is_err());
        assert_eq!(Expiry::from_yymm(30, 12).unwrap().year(), 2030);
        assert!(Expiry::from_yymm(100, 1).is_err());
    }
}
