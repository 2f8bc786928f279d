//! SPEC 8.1 pairing by code: a terminal without credentials registers its
//! device ([`PairingRequest`]), shows the [`PairingCode`] it got
//! ([`PairingTicket`]), and asks `GET /v1/pairing/:code` ([`PairingPoll`])
//! until the organiser claimed the code ([`ClaimPairing`], answered with
//! [`PairingClaimed`]); that answer carries the credentials once.
//!
//! The poll is signed as in SPEC 3 with `X-API-KEY` = the device id and,
//! as the HMAC secret, the device key's hash ([`device_key_hash`]): the
//! hash is what the backend was told at registration, so it is the secret
//! both sides share; the 32 random bytes of the key itself never leave the
//! device.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};

use super::provision::ProvisionResponse;
use super::timestamp::Timestamp;
use crate::ids::{SessionId, TerminalId};

/// Characters of a pairing code: A–Z and 2–9 (no 0 or 1 to misread as O or I).
pub const PAIRING_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ23456789";
/// Length of a pairing code.
pub const PAIRING_CODE_LEN: usize = 8;
/// A code is valid this long after it was issued.
pub const PAIRING_CODE_TTL_S: i64 = 600;
/// Length of a device key in bytes.
pub const DEVICE_KEY_LEN: usize = 32;

/// Why a pairing field was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairingError {
    #[error("a pairing code is {PAIRING_CODE_LEN} characters from A-Z and 2-9")]
    BadCode,
    #[error("a device id is 8 to 64 characters: lowercase letters, digits and '-'")]
    BadDeviceId,
    #[error("a device key hash is 64 lowercase hex characters (SHA-256)")]
    BadKeyHash,
}

/// An 8-character pairing code (`A–Z`, `2–9`). Lowercase input is read as
/// uppercase: a technician may type it either way.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct PairingCode(String);

impl PairingCode {
    pub fn new(s: &str) -> Result<PairingCode, PairingError> {
        let up = s.trim().to_ascii_uppercase();
        if up.len() != PAIRING_CODE_LEN || !up.bytes().all(|b| PAIRING_ALPHABET.contains(&b)) {
            return Err(PairingError::BadCode);
        }
        Ok(PairingCode(up))
    }

    /// The code for `PAIRING_CODE_LEN` random bytes (each taken modulo the
    /// alphabet; the bias of 256 mod 34 is immaterial for a 10-minute code).
    pub fn from_random(bytes: [u8; PAIRING_CODE_LEN]) -> PairingCode {
        let n = PAIRING_ALPHABET.len();
        PairingCode(
            bytes
                .iter()
                .map(|b| char::from(PAIRING_ALPHABET[usize::from(*b) % n]))
                .collect(),
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PairingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PairingCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PairingCode::new(&s).map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for PairingCode {
    type Err = PairingError;
    fn from_str(s: &str) -> Result<Self, PairingError> {
        PairingCode::new(s)
    }
}

/// The id a device registers under (the `X-API-KEY` of its pairing poll):
/// 8–64 characters of `a–z`, `0–9` and `-` (a UUID fits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct DeviceId(String);

impl DeviceId {
    pub fn new(s: &str) -> Result<DeviceId, PairingError> {
        let ok = (8..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(DeviceId(s.to_owned()))
        } else {
            Err(PairingError::BadDeviceId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DeviceId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        DeviceId::new(&s).map_err(serde::de::Error::custom)
    }
}

/// Lowercase hex SHA-256 of a device key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct DeviceKeyHash(String);

impl DeviceKeyHash {
    pub fn new(s: &str) -> Result<DeviceKeyHash, PairingError> {
        let ok = s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if ok {
            Ok(DeviceKeyHash(s.to_owned()))
        } else {
            Err(PairingError::BadKeyHash)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for DeviceKeyHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        DeviceKeyHash::new(&s).map_err(serde::de::Error::custom)
    }
}

/// The hash a device registers for its key (and signs its polls with).
pub fn device_key_hash(key: &[u8; DEVICE_KEY_LEN]) -> DeviceKeyHash {
    DeviceKeyHash(hex::encode(Sha256::digest(key)))
}

/// `POST /v1/pairing` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PairingRequest {
    pub device_id: DeviceId,
    pub device_key_hash: DeviceKeyHash,
}

/// `POST /v1/pairing` answer (201).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PairingTicket {
    pub pairing_code: PairingCode,
    pub expires_at: Timestamp,
}

/// Where a pairing stands, as its poll tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PairingState {
    /// Not claimed yet: ask again.
    Pending,
    /// Claimed: this answer carries the credentials (once).
    Paired,
}

impl PairingState {
    /// The wire text.
    pub const fn as_str(self) -> &'static str {
        match self {
            PairingState::Pending => "pending",
            PairingState::Paired => "paired",
        }
    }
}

impl std::fmt::Display for PairingState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `GET /v1/pairing/:code` answer (200). A code that was used (its
/// credentials delivered) or that expired answers 410 instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PairingPoll {
    pub status: PairingState,
    pub expires_at: Timestamp,
    /// With `paired`: the terminal's credentials, `terminal_id` and
    /// `session_id` set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<ProvisionResponse>,
}

/// `POST /v1/sessions/:id/terminals/:terminal_id/pair` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClaimPairing {
    pub pairing_code: PairingCode,
}

/// `POST /v1/sessions/:id/terminals/:terminal_id/pair` answer (200).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PairingClaimed {
    pub terminal_id: TerminalId,
    pub session_id: SessionId,
    pub device_id: DeviceId,
    pub status: PairingState,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::wire::test_util::round_trip;

    #[test]
    fn codes_are_eight_unambiguous_characters() {
        assert_eq!(PairingCode::new("k7m2x9qa").unwrap().as_str(), "K7M2X9QA");
        for bad in [
            "K7M2X9Q",
            "K7M2X9QAB",
            "K7M2X9Q0",
            "K7M2X9Q1",
            "K7M2-9QA",
            "",
        ] {
            assert_eq!(PairingCode::new(bad), Err(PairingError::BadCode), "{bad}");
        }
        let c = PairingCode::from_random([0, 33, 34, 255, 7, 8, 9, 10]);
        assert_eq!(c.as_str().len(), PAIRING_CODE_LEN);
        assert!(PairingCode::new(c.as_str()).is_ok());
        assert!(serde_json::from_value::<PairingCode>(json!("OOOO0000")).is_err());
    }

    #[test]
    fn device_ids_and_key_hashes_are_validated() {
        assert!(DeviceId::new("0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b").is_ok());
        for bad in ["short", "UPPERCASE-ID", "with space id", &"a".repeat(65)] {
            assert!(DeviceId::new(bad).is_err(), "{bad}");
        }
        let h = device_key_hash(&[0u8; DEVICE_KEY_LEN]);
        assert_eq!(
            h.as_str(),
            "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925"
        );
        assert!(DeviceKeyHash::new(&h.as_str().to_uppercase()).is_err());
        assert!(DeviceKeyHash::new("abc").is_err());
    }

    #[test]
    fn pairing_bodies_round_trip() {
        let r: PairingRequest = round_trip(json!({
            "device_id": "dev-0001-abcd",
            "device_key_hash": "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925"
        }));
        assert_eq!(r.device_id.as_str(), "dev-0001-abcd");
        let t: PairingTicket = round_trip(json!({
            "pairing_code": "K7M2X9QA", "expires_at": "2026-12-03T10:10:00Z"
        }));
        assert_eq!(t.pairing_code.as_str(), "K7M2X9QA");
        let p: PairingPoll = round_trip(json!({
            "status": "pending", "expires_at": "2026-12-03T10:10:00Z"
        }));
        assert_eq!(p.credentials, None);
        let p: PairingPoll = round_trip(json!({
            "status": "paired", "expires_at": "2026-12-03T10:10:00Z",
            "credentials": {"api_key": "k", "secret": "s", "merchant_id": "m",
                "tenant_id": "t", "terminal_id": "pos_3f1e2d_001", "session_id": "s-1"}
        }));
        assert_eq!(p.status, PairingState::Paired);
        let c: PairingClaimed = round_trip(json!({
            "terminal_id": "pos_3f1e2d_001", "session_id": "s-1",
            "device_id": "dev-0001-abcd", "status": "paired"
        }));
        assert_eq!(c.status, PairingState::Paired);
        let _: ClaimPairing = round_trip(json!({"pairing_code": "K7M2X9QA"}));
    }
}
