//! Card data: [`Card`] and its partner-side [`CardSummary`], with the
//! validated [`CardToken`] and [`Last4`] that keep a PAN off the wire.

use std::fmt;

use crate::domain::{CardBrand, EntryMode};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why card data was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    #[error("card token must be 32 to 64 lowercase hex characters")]
    InvalidToken,
    #[error("last4 must be exactly four digits")]
    InvalidLast4,
}

/// A card token (HMAC of the PAN under the device key): 32–64 lowercase hex
/// characters. A PAN (at most 19 digits) can never pass for one.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct CardToken(String);

impl CardToken {
    pub fn new(s: impl Into<String>) -> Result<Self, CardError> {
        let s = s.into();
        if (32..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(CardToken(s))
        } else {
            Err(CardError::InvalidToken)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CardToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Tokens are not secret, but there is no need to spread them in logs.
        write!(f, "CardToken({}…)", &self.0[..8.min(self.0.len())])
    }
}

impl<'de> Deserialize<'de> for CardToken {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        CardToken::new(s).map_err(serde::de::Error::custom)
    }
}

/// The last four digits of a card number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Last4([u8; 4]);

impl Last4 {
    pub fn new(s: &str) -> Result<Self, CardError> {
        let b = s.as_bytes();
        if b.len() == 4 && b.iter().all(u8::is_ascii_digit) {
            Ok(Last4([b[0], b[1], b[2], b[3]]))
        } else {
            Err(CardError::InvalidLast4)
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("????")
    }
}

impl fmt::Display for Last4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Last4 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Last4 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Last4::new(&s).map_err(serde::de::Error::custom)
    }
}

/// The card as the terminal sends it: never a PAN, never a name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Card {
    pub token: CardToken,
    pub last4: Last4,
    pub brand: CardBrand,
    pub entry_mode: EntryMode,
}

impl Card {
    pub fn summary(&self) -> CardSummary {
        CardSummary {
            brand: self.brand,
            last4: self.last4,
        }
    }
}

/// The card as the partner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CardSummary {
    pub brand: CardBrand,
    pub last4: Last4,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::wire::test_util::{card_json, round_trip};

    #[test]
    fn card_cannot_carry_a_pan() {
        let card: Card = round_trip(card_json());
        assert_eq!(card.last4.as_str(), "1111");
        for pan in ["4111111111111111", "5061000000000000007"] {
            let mut c = card_json();
            c["token"] = json!(pan);
            assert!(serde_json::from_value::<Card>(c).is_err(), "token {pan}");
            let mut c = card_json();
            c["last4"] = json!(pan);
            assert!(serde_json::from_value::<Card>(c).is_err(), "last4 {pan}");
        }
        // A "pan" field is simply ignored: it has nowhere to go.
        let mut c = card_json();
        c["pan"] = json!("4111111111111111");
        let parsed: Card = serde_json::from_value(c).unwrap();
        let out = serde_json::to_string(&parsed).unwrap();
        assert!(!out.contains("4111111111111111"));
        assert!(!format!("{parsed:?}").contains("8a1c2b4d"));
        assert!(CardToken::new("9F2C4E1A0B7D3E6F8A1C2B4D6E8F0A1B").is_err());
        assert!(Last4::new("11a1").is_err());
    }
}
