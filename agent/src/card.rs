//! Card tokenization (SPEC 5.10).
//!
//! The full PAN exists only inside the hardware layer's [`hal::SecretPan`]
//! (validated, wiped when dropped); [`tokenize_secret`] turns it at once into
//! a [`TokenizedCard`] (token, last four digits, brand, entry mode), the only
//! card data that leaves this module. The token is the lowercase hex HMAC-SHA256 of the PAN
//! digits under the per-device [`CardKey`], truncated to 32 hex characters:
//! the same card gives the same token on this terminal (refunds match cards by
//! it), and a token cannot be turned back into a PAN without the key.

use std::fmt;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
pub use proto::wire::{Card, CardBrand, CardToken, EntryMode, Last4};
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

/// Length of a card key in bytes.
pub const CARD_KEY_LEN: usize = 32;
/// Length of a card token in hex characters.
pub const TOKEN_LEN: usize = 32;

/// Why card data or the card key was refused.
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    #[error("cannot read card key {}: {source}", path.display())]
    KeyRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("card key {} must be exactly {CARD_KEY_LEN} bytes, found {found}", path.display())]
    KeyLength { path: PathBuf, found: usize },
    #[error("card key {} is readable by group or others (mode {mode:o}); it must be 0600", path.display())]
    KeyPermissions { path: PathBuf, mode: u32 },
}

/// The per-device tokenization key: 32 random bytes created at provisioning.
/// Never printed; wiped when dropped.
#[derive(Clone)]
pub struct CardKey(Zeroizing<[u8; CARD_KEY_LEN]>);

impl fmt::Debug for CardKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CardKey(***)")
    }
}

impl CardKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> CardKey {
        let mut key = Zeroizing::new([0u8; CARD_KEY_LEN]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        CardKey(key)
    }

    /// A key from exactly [`CARD_KEY_LEN`] bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<CardKey> {
        let arr: [u8; CARD_KEY_LEN] = bytes.try_into().ok()?;
        Some(CardKey(Zeroizing::new(arr)))
    }

    /// Reads a key file, refusing one that group or others may read.
    pub fn load(path: &Path) -> Result<CardKey, CardError> {
        let read_err = |source| CardError::KeyRead {
            path: path.to_owned(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(read_err)?;
        let mode = file.metadata().map_err(read_err)?.mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(CardError::KeyPermissions {
                path: path.to_owned(),
                mode,
            });
        }
        let mut buf = Zeroizing::new(Vec::with_capacity(CARD_KEY_LEN));
        // One byte more than a key, to detect a longer file without reading it all.
        (&mut file)
            .take(CARD_KEY_LEN as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(read_err)?;
        CardKey::from_bytes(&buf).ok_or(CardError::KeyLength {
            path: path.to_owned(),
            found: buf.len(),
        })
    }

    /// The key bytes, for writing the 0600 key file.
    pub(crate) fn expose(&self) -> &[u8; CARD_KEY_LEN] {
        &self.0
    }
}

/// Everything about a card that may be stored, sent, shown or logged: the
/// wire's [`Card`] `{token, last4, brand, entry_mode}`.
pub type TokenizedCard = Card;

/// Tokenizes a PAN read by the hardware layer without copying it; the
/// caller drops the [`hal::SecretPan`] (which wipes itself) right after.
pub fn tokenize_secret(
    key: &CardKey,
    pan: &hal::SecretPan,
    entry_mode: EntryMode,
) -> TokenizedCard {
    // `SecretPan` is validated: 12–19 ASCII digits with a good Luhn digit.
    tokenize_digits(key, pan.expose(), entry_mode)
}

/// `digits`: a validated PAN (at least 12 ASCII digits).
fn tokenize_digits(key: &CardKey, digits: &str, entry_mode: EntryMode) -> TokenizedCard {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.expose().as_slice())
        .expect("HMAC accepts keys of any length");
    mac.update(digits.as_bytes());
    let digest = mac.finalize().into_bytes();
    Card {
        token: CardToken::new(hex::encode(&digest[..TOKEN_LEN / 2]))
            .expect("32 lowercase hex characters are a valid token"),
        last4: Last4::new(&digits[digits.len().saturating_sub(4)..])
            .expect("a validated PAN ends in four digits"),
        brand: CardBrand::from_pan_digits(digits.as_bytes()),
        entry_mode,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

    fn key(b: u8) -> CardKey {
        CardKey::from_bytes(&[b; CARD_KEY_LEN]).unwrap()
    }

    fn pan(s: &str) -> hal::SecretPan {
        hal::SecretPan::new(s).unwrap()
    }

    fn tokenize(key: &CardKey, pan: hal::SecretPan, mode: EntryMode) -> TokenizedCard {
        tokenize_secret(key, &pan, mode)
    }

    #[test]
    fn same_pan_same_token_and_different_keys_different_tokens() {
        let a = tokenize(&key(1), pan("4111111111111111"), EntryMode::Contactless);
        let b = tokenize(&key(1), pan("4111111111111111"), EntryMode::Contactless);
        let c = tokenize(&key(2), pan("4111111111111111"), EntryMode::Contactless);
        let d = tokenize(&key(1), pan("5555555555554444"), EntryMode::Contactless);
        assert_eq!(a.token, b.token);
        assert_ne!(a.token, c.token);
        assert_ne!(a.token, d.token);
        assert_eq!(a.token.as_str().len(), TOKEN_LEN);
        assert!(CardToken::new(a.token.as_str()).is_ok());
    }

    #[test]
    fn token_is_truncated_hmac_sha256_of_the_digits() {
        // Independent computation: HMAC-SHA256(key = 32 x 0x01, "4111111111111111").
        let mut mac = Hmac::<Sha256>::new_from_slice(&[1u8; 32]).unwrap();
        mac.update(b"4111111111111111");
        let full = hex::encode(mac.finalize().into_bytes());
        let t = tokenize(&key(1), pan("4111111111111111"), EntryMode::Contactless);
        assert_eq!(t.token.as_str(), &full[..32]);
    }

    #[test]
    fn brand_and_last4_of_the_test_cards() {
        let cases = [
            ("4111111111111111", CardBrand::Visa, "1111"),
            ("5555555555554444", CardBrand::Mastercard, "4444"),
            ("5061000000000000007", CardBrand::Verve, "0007"),
            ("4000000000000002", CardBrand::Visa, "0002"),
            ("4000000000009995", CardBrand::Visa, "9995"),
            ("2221000000000009", CardBrand::Mastercard, "0009"),
            ("378282246310005", CardBrand::Amex, "0005"),
            ("6011111111111117", CardBrand::Discover, "1117"),
            ("6200000000000005", CardBrand::Unionpay, "0005"),
            ("9999999999999995", CardBrand::Other, "9995"),
        ];
        for (p, brand, last4) in cases {
            let t = tokenize(&key(9), pan(p), EntryMode::Contactless);
            assert_eq!(t.brand, brand, "{p}");
            assert_eq!(t.last4.as_str(), last4);
        }
    }

    #[test]
    fn debug_and_json_never_show_the_pan() {
        let p = pan("4111111111111111");
        let dbg = format!("{p:?}");
        assert!(!dbg.contains("4111111111111111"), "{dbg}");
        assert!(dbg.contains("1111"));
        let t = tokenize(&key(3), p, EntryMode::Contactless);
        let text = format!("{t:?} {}", serde_json::to_string(&t).unwrap());
        assert!(!text.contains("41111111"), "{text}");
        assert!(!format!("{:?}", key(3)).contains("3, 3"));
        let json: serde_json::Value = serde_json::to_value(&t).unwrap();
        assert_eq!(json["brand"], "visa");
        assert_eq!(json["entry_mode"], "contactless");
        assert_eq!(json["last4"], "1111");
    }

    #[test]
    fn key_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.key");
        let k = CardKey::generate();
        assert_ne!(k.expose(), key(0).expose());
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .unwrap();
        std::fs::write(&path, k.expose()).unwrap();
        let loaded = CardKey::load(&path).unwrap();
        assert_eq!(loaded.expose(), k.expose());

        std::fs::write(&path, [0u8; 31]).unwrap();
        assert!(matches!(
            CardKey::load(&path),
            Err(CardError::KeyLength { found: 31, .. })
        ));
        std::fs::write(&path, [0u8; 40]).unwrap();
        assert!(matches!(
            CardKey::load(&path),
            Err(CardError::KeyLength { found: 33, .. })
        ));

        std::fs::write(&path, k.expose()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            CardKey::load(&path),
            Err(CardError::KeyPermissions { .. })
        ));
        assert!(matches!(
            CardKey::load(&dir.path().join("absent")),
            Err(CardError::KeyRead { .. })
        ));
    }
}
