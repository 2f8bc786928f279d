//! The test cards of SPEC section 6.

use crate::card::{Application, CardBrand, CardRead, Expiry, ReaderError, SecretPan};

/// A card the virtual reader can be tapped with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TestCard {
    VisaOk,
    McOk,
    VerveOk,
    VisaDeclined,
    VisaInsufficient,
    /// A read error ([`ReaderError::Misread`]).
    Misread,
}

/// The name is not one of [`TestCard::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown test card {0:?}; expected one of visa_ok, mc_ok, verve_ok, visa_declined, visa_insufficient, misread"
)]
pub struct UnknownTestCard(pub String);

/// Every test card expires at the end of this month.
const EXPIRY: (u16, u8) = (2030, 12);

impl TestCard {
    pub const ALL: [TestCard; 6] = [
        TestCard::VisaOk,
        TestCard::McOk,
        TestCard::VerveOk,
        TestCard::VisaDeclined,
        TestCard::VisaInsufficient,
        TestCard::Misread,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TestCard::VisaOk => "visa_ok",
            TestCard::McOk => "mc_ok",
            TestCard::VerveOk => "verve_ok",
            TestCard::VisaDeclined => "visa_declined",
            TestCard::VisaInsufficient => "visa_insufficient",
            TestCard::Misread => "misread",
        }
    }

    pub fn parse(name: &str) -> Result<TestCard, UnknownTestCard> {
        TestCard::ALL
            .into_iter()
            .find(|c| c.name() == name)
            .ok_or_else(|| UnknownTestCard(name.chars().take(32).collect()))
    }

    /// The card's PAN (test numbers only), or `None` for `misread`.
    pub fn pan(self) -> Option<&'static str> {
        match self {
            TestCard::VisaOk => Some("4111111111111111"),
            TestCard::McOk => Some("5555555555554444"),
            TestCard::VerveOk => Some("5061000000000000007"),
            TestCard::VisaDeclined => Some("4000000000000002"),
            TestCard::VisaInsufficient => Some("4000000000009995"),
            TestCard::Misread => None,
        }
    }

    /// What a read of this card yields.
    pub fn read(self) -> Result<CardRead, ReaderError> {
        let Some(pan) = self.pan() else {
            return Err(ReaderError::Misread(
                "virtual misread card: no readable application".to_owned(),
            ));
        };
        let pan = SecretPan::new(pan).map_err(|e| ReaderError::Fault(e.to_string()))?;
        let brand = CardBrand::from_pan_digits(pan.expose().as_bytes());
        let (label, aid): (&str, &[u8]) = match brand {
            CardBrand::Visa => ("VISA CREDIT", &[0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10]),
            CardBrand::Mastercard => ("MASTERCARD", &[0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10]),
            CardBrand::Verve => ("VERVE", &[0xA0, 0x00, 0x00, 0x03, 0x71, 0x00, 0x01]),
            _ => ("CARD", &[]),
        };
        let expiry =
            Expiry::new(EXPIRY.0, EXPIRY.1).map_err(|e| ReaderError::Fault(e.to_string()))?;
        Ok(CardRead::new(
            pan,
            expiry,
            brand,
            Application {
                label: Some(label.to_owned()),
                aid: (!aid.is_empty()).then(|| aid.to_vec()),
            },
        ))
    }
}
