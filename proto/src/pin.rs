//! Operator PINs (SPEC 7.2): 4–6 digits, never stored or sent in clear by
//! the backend; terminals get `pin_hash` = lowercase hex
//! PBKDF2-HMAC-SHA256(pin, salt, 10,000 iterations, 32 bytes), where `salt`
//! is the operator's random salt as sent (lowercase hex, 16 bytes) and the
//! PBKDF2 salt is its bytes.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// PBKDF2 rounds of SPEC 7.2.
pub const PIN_ITERATIONS: u32 = 10_000;
/// Bytes of a PIN hash.
pub const PIN_HASH_BYTES: usize = 32;
/// Bytes of a salt.
pub const SALT_BYTES: usize = 16;

/// A PIN as a partner sends it (write-only). `Debug` never shows it; the
/// digits are wiped when it is dropped.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Pin(String);

impl Drop for Pin {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Why a PIN or a stored hash was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error("a PIN is 4 to 6 digits")]
    Format,
    #[error("the salt is not {SALT_BYTES} bytes of lowercase hex")]
    Salt,
    #[error("the PIN hash is not {PIN_HASH_BYTES} bytes of lowercase hex")]
    Hash,
}

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin(****)")
    }
}

impl Pin {
    /// A PIN of 4 to 6 ASCII digits.
    pub fn new(digits: impl Into<String>) -> Result<Pin, PinError> {
        let pin = Pin(digits.into());
        pin.validate()?;
        Ok(pin)
    }

    /// Checks the format (a PIN read from JSON is not checked until then).
    pub fn validate(&self) -> Result<(), PinError> {
        let ok = (4..=6).contains(&self.0.len()) && self.0.bytes().all(|b| b.is_ascii_digit());
        if ok { Ok(()) } else { Err(PinError::Format) }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

fn decode_hex<const N: usize>(text: &str, err: PinError) -> Result<[u8; N], PinError> {
    let mut out = [0u8; N];
    if text.len() != 2 * N || text.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(err);
    }
    hex::decode_to_slice(text, &mut out).map_err(|_| err)?;
    Ok(out)
}

/// The raw PBKDF2 output for a valid `pin` and a decoded salt.
fn derive(pin: &Pin, salt: &[u8; SALT_BYTES]) -> Zeroizing<[u8; PIN_HASH_BYTES]> {
    let mut out = Zeroizing::new([0u8; PIN_HASH_BYTES]);
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(pin.expose().as_bytes(), salt, PIN_ITERATIONS, &mut *out);
    out
}

/// `pin_hash` for `pin` under `salt_hex`.
pub fn pin_hash(pin: &Pin, salt_hex: &str) -> Result<String, PinError> {
    pin.validate()?;
    let salt = decode_hex::<SALT_BYTES>(salt_hex, PinError::Salt)?;
    Ok(hex::encode(*derive(pin, &salt)))
}

/// Whether `pin` matches `hash_hex` under `salt_hex` (constant-time
/// compare). A malformed salt or hash is an error, not a mismatch; a PIN
/// of the wrong form simply does not match.
pub fn verify_pin(pin: &Pin, salt_hex: &str, hash_hex: &str) -> Result<bool, PinError> {
    let want = decode_hex::<PIN_HASH_BYTES>(hash_hex, PinError::Hash)?;
    let salt = decode_hex::<SALT_BYTES>(salt_hex, PinError::Salt)?;
    if pin.validate().is_err() {
        return Ok(false);
    }
    Ok(bool::from(derive(pin, &salt).ct_eq(&want)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: &str = "000102030405060708090a0b0c0d0e0f";

    #[test]
    fn pins_are_four_to_six_digits_and_never_shown() {
        for ok in ["1234", "000000", "98765"] {
            assert!(Pin::new(ok).is_ok(), "{ok}");
        }
        for bad in ["123", "1234567", "12a4", "", "١٢٣٤"] {
            assert_eq!(Pin::new(bad), Err(PinError::Format), "{bad}");
        }
        let pin = Pin::new("4321").unwrap();
        assert_eq!(format!("{pin:?}"), "Pin(****)");
        let from_json: Pin = serde_json::from_str("\"12\"").unwrap();
        assert_eq!(from_json.validate(), Err(PinError::Format));
    }

    /// The hash is PBKDF2-HMAC-SHA256 with the salt's bytes, 10,000 rounds,
    /// checked against a value computed independently (Python's
    /// `hashlib.pbkdf2_hmac('sha256', b'1234', bytes.fromhex(SALT), 10000,
    /// 32).hex()`).
    #[test]
    fn the_hash_is_pbkdf2_hmac_sha256_of_the_salt_bytes() {
        let pin = Pin::new("1234").unwrap();
        let h = pin_hash(&pin, SALT).unwrap();
        assert_eq!(h.len(), 64);
        assert_eq!(h, PY_VECTOR);
        assert_eq!(verify_pin(&pin, SALT, &h), Ok(true));
        assert_eq!(verify_pin(&Pin::new("1235").unwrap(), SALT, &h), Ok(false));
        let other_salt = "ff0102030405060708090a0b0c0d0e0f";
        assert_ne!(pin_hash(&pin, other_salt).unwrap(), h);
        assert_eq!(pin_hash(&pin, "00"), Err(PinError::Salt));
        assert_eq!(pin_hash(&pin, &SALT.to_uppercase()), Err(PinError::Salt));
        assert_eq!(verify_pin(&pin, SALT, "abc"), Err(PinError::Hash));
    }

    const PY_VECTOR: &str = "91ea059bae0333a2969fc8ccd7c77851dda43f5adb96baeea246a624cdf489ec";
}
