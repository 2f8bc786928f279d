//! Request signing (SPEC section 3, the Klustar scheme).
//!
//! ```text
//! base = apiKey \n nonce \n timestamp \n METHOD \n requestPath \n sha256Hex(canonicalBody)
//! X-Signature = lowercase hex HMAC-SHA256(secret, base)
//! ```
//!
//! The same code signs on the terminal and verifies on the simulator, so the
//! two can never disagree about the canonical form; the SPEC's test vectors
//! (computed elsewhere) pin it down.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::Mutex;

use hmac::{Hmac, Mac};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use uuid::Uuid;
use zeroize::Zeroizing;

type HmacSha256 = Hmac<Sha256>;

pub const HEADER_TENANT: &str = "X-Tenant-ID";
pub const HEADER_API_KEY: &str = "X-API-KEY";
pub const HEADER_MERCHANT: &str = "X-Merchant-ID";
pub const HEADER_NONCE: &str = "X-Nonce";
pub const HEADER_TIMESTAMP: &str = "X-Timestamp";
pub const HEADER_SIGNATURE: &str = "X-Signature";

/// How far a request's timestamp may be from the verifier's clock.
pub const WINDOW_SECS: i64 = 300;

/// A shared secret. Never printed: `Debug` shows `Secret(***)`, and the bytes
/// are wiped when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(Zeroizing::new(s.into()))
    }

    /// The secret itself, for writing it to a 0600 file or keying an HMAC.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The identity a signed request speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub tenant_id: String,
    pub api_key: String,
    pub merchant_id: String,
    pub secret: Secret,
}

/// Why a body could not be put in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("request body must be a JSON object")]
    NotAnObject,
}

/// The canonical body: top-level keys sorted by byte order, `key=value`
/// joined with `&`; strings raw, numbers as written, booleans literal,
/// top-level `null` left out, nested values as compact JSON with keys sorted
/// at every depth (nested `null` kept). An empty body gives the empty string.
pub fn canonical_body(body: &[u8]) -> Result<String, CanonicalError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(String::new());
    }
    let text = std::str::from_utf8(body)
        .map_err(|e| CanonicalError::InvalidJson(format!("not UTF-8: {e}")))?;
    let top: &RawValue =
        serde_json::from_str(text).map_err(|e| CanonicalError::InvalidJson(e.to_string()))?;
    if !top.get().trim_start().starts_with('{') {
        return Err(CanonicalError::NotAnObject);
    }
    let fields: BTreeMap<String, &RawValue> =
        serde_json::from_str(top.get()).map_err(|e| CanonicalError::InvalidJson(e.to_string()))?;
    let mut out = String::with_capacity(body.len());
    for (key, raw) in fields {
        let raw = raw.get().trim();
        let value = match raw.as_bytes().first() {
            Some(b'n') => continue, // null: left out at the top level
            Some(b'"') => serde_json::from_str::<String>(raw)
                .map_err(|e| CanonicalError::InvalidJson(e.to_string()))?,
            Some(b'{') | Some(b'[') => {
                let mut s = String::new();
                write_compact_sorted(raw, &mut s)?;
                s
            }
            _ => raw.to_owned(), // numbers as written, true, false
        };
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&key);
        out.push('=');
        out.push_str(&value);
    }
    Ok(out)
}

/// Compact JSON with object keys sorted at every depth; numbers keep their
/// written form.
fn write_compact_sorted(raw: &str, out: &mut String) -> Result<(), CanonicalError> {
    let bad = |e: serde_json::Error| CanonicalError::InvalidJson(e.to_string());
    let raw = raw.trim();
    match raw.as_bytes().first() {
        Some(b'{') => {
            let fields: BTreeMap<String, &RawValue> = serde_json::from_str(raw).map_err(bad)?;
            out.push('{');
            for (i, (k, v)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).map_err(bad)?);
                out.push(':');
                write_compact_sorted(v.get(), out)?;
            }
            out.push('}');
        }
        Some(b'[') => {
            let items: Vec<&RawValue> = serde_json::from_str(raw).map_err(bad)?;
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_compact_sorted(v.get(), out)?;
            }
            out.push(']');
        }
        Some(b'"') => {
            let s: String = serde_json::from_str(raw).map_err(bad)?;
            out.push_str(&serde_json::to_string(&s).map_err(bad)?);
        }
        _ => out.push_str(raw),
    }
    Ok(())
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The string that is signed.
pub fn base_string(
    api_key: &str,
    nonce: &str,
    timestamp: &str,
    method: &str,
    request_path: &str,
    canonical_body: &str,
) -> String {
    format!(
        "{api_key}\n{nonce}\n{timestamp}\n{}\n{request_path}\n{}",
        method.to_ascii_uppercase(),
        sha256_hex(canonical_body.as_bytes())
    )
}

fn mac(secret: &Secret, base: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(base.as_bytes());
    mac
}

/// Lowercase hex HMAC-SHA256(secret, base).
pub fn signature(secret: &Secret, base: &str) -> String {
    hex::encode(mac(secret, base).finalize().into_bytes())
}

/// The six headers of a signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    pub tenant_id: String,
    pub api_key: String,
    pub merchant_id: String,
    pub nonce: String,
    pub timestamp: String,
    pub signature: String,
}

impl SignedHeaders {
    /// `(header name, value)` pairs, ready to put on a request.
    pub fn pairs(&self) -> [(&'static str, &str); 6] {
        [
            (HEADER_TENANT, &self.tenant_id),
            (HEADER_API_KEY, &self.api_key),
            (HEADER_MERCHANT, &self.merchant_id),
            (HEADER_NONCE, &self.nonce),
            (HEADER_TIMESTAMP, &self.timestamp),
            (HEADER_SIGNATURE, &self.signature),
        ]
    }
}

/// Signs a request: `request_path` is the path as sent plus `?query` when
/// there is one; `body` is the exact bytes sent (empty for none).
pub fn sign_request(
    creds: &Credentials,
    method: &str,
    request_path: &str,
    body: &[u8],
    now_epoch_secs: i64,
    nonce: Uuid,
) -> Result<SignedHeaders, CanonicalError> {
    let canonical = canonical_body(body)?;
    let nonce = nonce.hyphenated().to_string();
    let timestamp = now_epoch_secs.to_string();
    let base = base_string(
        &creds.api_key,
        &nonce,
        &timestamp,
        method,
        request_path,
        &canonical,
    );
    Ok(SignedHeaders {
        tenant_id: creds.tenant_id.clone(),
        api_key: creds.api_key.clone(),
        merchant_id: creds.merchant_id.clone(),
        signature: signature(&creds.secret, &base),
        nonce,
        timestamp,
    })
}

/// Why a signed request was refused. Each is its own 401 code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("unknown api key")]
    UnknownKey,
    #[error("tenant or merchant id does not match the api key")]
    CredentialMismatch,
    #[error("X-Timestamp is not an integer number of epoch seconds")]
    InvalidTimestamp,
    #[error("X-Timestamp is more than 300 s from the server clock")]
    TimestampOutOfWindow,
    #[error("X-Nonce is not a UUID v4")]
    InvalidNonce,
    #[error("X-Nonce was already used")]
    ReplayedNonce,
    #[error("too many recent requests to remember their nonces; retry shortly")]
    ReplayCacheFull,
    #[error("request body cannot be canonicalized: {0}")]
    InvalidBody(CanonicalError),
    #[error("signature does not match")]
    BadSignature,
}

impl Rejection {
    /// Stable snake_case code for the JSON error envelope.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::MissingHeader(_) => "missing_signature_header",
            Rejection::UnknownKey => "unknown_api_key",
            Rejection::CredentialMismatch => "credential_mismatch",
            Rejection::InvalidTimestamp => "invalid_timestamp",
            Rejection::TimestampOutOfWindow => "timestamp_out_of_window",
            Rejection::InvalidNonce => "invalid_nonce",
            Rejection::ReplayedNonce => "nonce_replayed",
            Rejection::ReplayCacheFull => "replay_cache_full",
            Rejection::InvalidBody(_) => "invalid_body",
            Rejection::BadSignature => "invalid_signature",
        }
    }
}

/// The signature headers as they arrived (any of them may be missing).
#[derive(Debug, Clone, Default)]
pub struct IncomingHeaders<'a> {
    pub tenant_id: Option<&'a str>,
    pub api_key: Option<&'a str>,
    pub merchant_id: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

impl<'a> IncomingHeaders<'a> {
    /// Builds from a header lookup (names as in the `HEADER_*` constants;
    /// the lookup should be case-insensitive, as HTTP header names are).
    pub fn from_fn(get: impl Fn(&str) -> Option<&'a str>) -> Self {
        IncomingHeaders {
            tenant_id: get(HEADER_TENANT),
            api_key: get(HEADER_API_KEY),
            merchant_id: get(HEADER_MERCHANT),
            nonce: get(HEADER_NONCE),
            timestamp: get(HEADER_TIMESTAMP),
            signature: get(HEADER_SIGNATURE),
        }
    }
}

/// Remembers nonces seen within the window so a captured request cannot be
/// replayed. Memory is bounded by `capacity`: when it is full of nonces that
/// are all still inside the window, new requests are refused
/// ([`Rejection::ReplayCacheFull`]) rather than forgetting a live nonce.
#[derive(Debug)]
pub struct NonceCache {
    capacity: usize,
    window: i64,
    inner: Mutex<NonceState>,
}

#[derive(Debug, Default)]
struct NonceState {
    seen: HashMap<u128, i64>,
    by_expiry: VecDeque<(i64, u128)>,
}

impl NonceCache {
    pub fn new(capacity: usize) -> Self {
        NonceCache {
            capacity: capacity.max(1),
            window: WINDOW_SECS,
            inner: Mutex::new(NonceState::default()),
        }
    }

    /// Records `nonce` as used at `now`; refuses it if already seen within
    /// the window.
    pub fn check_and_insert(&self, nonce: Uuid, now: i64) -> Result<(), Rejection> {
        let key = nonce.as_u128();
        // A poisoned lock only means another thread panicked mid-insert; the
        // maps are still consistent enough to keep refusing replays.
        let mut st = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        // Forget nonces whose window has passed (oldest first).
        while let Some(&(expiry, k)) = st.by_expiry.front() {
            if expiry > now {
                break;
            }
            st.by_expiry.pop_front();
            if st.seen.get(&k) == Some(&expiry) {
                st.seen.remove(&k);
            }
        }
        if st.seen.contains_key(&key) {
            return Err(Rejection::ReplayedNonce);
        }
        if st.seen.len() >= self.capacity {
            return Err(Rejection::ReplayCacheFull);
        }
        // A nonce must be remembered as long as its timestamp could still be
        // accepted: up to now + 2 windows covers a request stamped at the
        // far edge of the window.
        let expiry = now + 2 * self.window;
        st.seen.insert(key, expiry);
        st.by_expiry.push_back((expiry, key));
        Ok(())
    }

    /// Until when a nonce accepted at `now` is remembered.
    pub fn expiry_after(&self, now: i64) -> i64 {
        now + 2 * self.window
    }

    /// Remembers `nonce` until `expiry` (a cache restored from disk); a
    /// nonce already expired at `now`, or beyond the capacity, is skipped.
    pub fn remember(&self, nonce: Uuid, expiry: i64, now: i64) {
        if expiry <= now {
            return;
        }
        let key = nonce.as_u128();
        let mut st = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if st.seen.len() >= self.capacity || st.seen.contains_key(&key) {
            return;
        }
        st.seen.insert(key, expiry);
        // Kept in expiry order, so that forgetting stays oldest first.
        let at = st.by_expiry.partition_point(|(e, _)| *e <= expiry);
        st.by_expiry.insert(at, (expiry, key));
    }

    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .seen
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Verifies a signed request. `lookup` finds the credentials of an api key.
/// Checks, in order: headers present, key known, tenant and merchant match,
/// timestamp format and window, nonce format, signature (constant time), and
/// only then records the nonce, so unsigned junk cannot fill the cache.
#[allow(clippy::too_many_arguments)]
pub fn verify_request(
    headers: &IncomingHeaders<'_>,
    method: &str,
    request_path: &str,
    body: &[u8],
    now_epoch_secs: i64,
    nonces: &NonceCache,
    lookup: impl FnOnce(&str) -> Option<Credentials>,
) -> Result<Credentials, Rejection> {
    let api_key = headers
        .api_key
        .ok_or(Rejection::MissingHeader(HEADER_API_KEY))?;
    let tenant = headers
        .tenant_id
        .ok_or(Rejection::MissingHeader(HEADER_TENANT))?;
    let merchant = headers
        .merchant_id
        .ok_or(Rejection::MissingHeader(HEADER_MERCHANT))?;
    let nonce_s = headers
        .nonce
        .ok_or(Rejection::MissingHeader(HEADER_NONCE))?;
    let ts_s = headers
        .timestamp
        .ok_or(Rejection::MissingHeader(HEADER_TIMESTAMP))?;
    let sig = headers
        .signature
        .ok_or(Rejection::MissingHeader(HEADER_SIGNATURE))?;

    let creds = lookup(api_key).ok_or(Rejection::UnknownKey)?;
    if creds.tenant_id != tenant || creds.merchant_id != merchant {
        return Err(Rejection::CredentialMismatch);
    }
    if ts_s.is_empty() || ts_s.len() > 12 || !ts_s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Rejection::InvalidTimestamp);
    }
    let ts: i64 = ts_s.parse().map_err(|_| Rejection::InvalidTimestamp)?;
    if (now_epoch_secs - ts).abs() > WINDOW_SECS {
        return Err(Rejection::TimestampOutOfWindow);
    }
    let nonce = Uuid::try_parse(nonce_s).map_err(|_| Rejection::InvalidNonce)?;
    if nonce.get_version_num() != 4 {
        return Err(Rejection::InvalidNonce);
    }
    let canonical = canonical_body(body).map_err(Rejection::InvalidBody)?;
    let base = base_string(api_key, nonce_s, ts_s, method, request_path, &canonical);
    let provided = decode_lower_hex_32(sig).ok_or(Rejection::BadSignature)?;
    mac(&creds.secret, &base)
        .verify_slice(&provided)
        .map_err(|_| Rejection::BadSignature)?;
    nonces.check_and_insert(nonce, now_epoch_secs)?;
    Ok(creds)
}

fn decode_lower_hex_32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || s.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v1() -> Credentials {
        Credentials {
            tenant_id: "test-tenant".into(),
            api_key: "qduaTClFA3DTfakbIQGlTA".into(),
            merchant_id: "m-1".into(),
            secret: Secret::new("PZef9RE76HD-ptSJ7gMXmC9Crq9P0w9nYb_a-ieq_0I"),
        }
    }

    const V1_BODY: &str =
        r#"{"reference":"REF-123","amount":"2000.00","currency":"NGN","customerEmail":"a@b.com"}"#;
    const V2_BODY: &str = r#"{"reference":"pos_3f1e2d_001-000042","kind":"sale","amount":"1500.50",
          "currency":"NGN","offline":true,"captured_at":"2026-11-21T10:02:01Z",
          "card":{"token":"9f2c4e1a0b7d3e6f8a1c2b4d6e8f0a1b","last4":"1111",
                  "brand":"visa","entry_mode":"contactless"},"payment_id":null}"#;

    #[test]
    fn spec_vector_v1() {
        let canonical = canonical_body(V1_BODY.as_bytes()).unwrap();
        assert_eq!(
            canonical,
            "amount=2000.00&currency=NGN&customerEmail=a@b.com&reference=REF-123"
        );
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "a6e5478cc2b848d51e523d561861513b4c1cdc056cc755b3b5892d8091cdc002"
        );
        let nonce = Uuid::parse_str("5f0c6c3e-1f7e-4d0a-9a57-3b1f2f9f4c11").unwrap();
        let h = sign_request(
            &v1(),
            "POST",
            "/payment/api/payins",
            V1_BODY.as_bytes(),
            1763719200,
            nonce,
        )
        .unwrap();
        assert_eq!(
            h.signature,
            "fea95c024cd92db1d218173db723911ba05a318564ee6334caafa44f513625a1"
        );
        assert_eq!(h.timestamp, "1763719200");
        assert_eq!(h.nonce, "5f0c6c3e-1f7e-4d0a-9a57-3b1f2f9f4c11");
    }

    #[test]
    fn spec_vector_v2() {
        let canonical = canonical_body(V2_BODY.as_bytes()).unwrap();
        assert_eq!(
            canonical,
            r#"amount=1500.50&captured_at=2026-11-21T10:02:01Z&card={"brand":"visa","entry_mode":"contactless","last4":"1111","token":"9f2c4e1a0b7d3e6f8a1c2b4d6e8f0a1b"}&currency=NGN&kind=sale&offline=true&reference=pos_3f1e2d_001-000042"#
        );
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "f08f4f2950c7574a4f178d19bded42d15fb1adb1a7e2c83361471f3d6877b97f"
        );
        let creds = Credentials {
            tenant_id: "test-tenant".into(),
            api_key: "term_key_001".into(),
            merchant_id: "m-1".into(),
            secret: Secret::new("s3cr3t-terminal"),
        };
        let nonce = Uuid::parse_str("c2a1e4b7-55d1-4a0e-9f3b-7d6e5c4b3a21").unwrap();
        let h = sign_request(
            &creds,
            "POST",
            "/v1/terminals/pos_3f1e2d_001/transactions",
            V2_BODY.as_bytes(),
            1763719321,
            nonce,
        )
        .unwrap();
        assert_eq!(
            h.signature,
            "c681db3c1b1beba2d44a4cbbd975493116b0f1e117cf8e66b9ce461e3f66a840"
        );
    }

    #[test]
    fn empty_body_is_empty_string() {
        assert_eq!(canonical_body(b"").unwrap(), "");
        assert_eq!(canonical_body(b"  ").unwrap(), "");
        assert_eq!(canonical_body(b"{}").unwrap(), "");
    }

    #[test]
    fn non_object_bodies_are_refused() {
        assert_eq!(canonical_body(b"[1,2]"), Err(CanonicalError::NotAnObject));
        assert!(matches!(
            canonical_body(b"{\"a\":"),
            Err(CanonicalError::InvalidJson(_))
        ));
        assert!(matches!(
            canonical_body(&[0xff, 0xfe]),
            Err(CanonicalError::InvalidJson(_))
        ));
    }

    #[test]
    fn numbers_keep_their_written_form_and_nested_nulls_stay() {
        let c = canonical_body(
            br#"{"b":1.50,"a":1e3,"n":null,"o":{"z":null,"y":[2.0,{"q":1,"p":"\u00e9"}]}}"#,
        )
        .unwrap();
        assert_eq!(c, r#"a=1e3&b=1.50&o={"y":[2.0,{"p":"é","q":1}],"z":null}"#);
    }

    fn signed_fixture(now: i64) -> (Credentials, SignedHeaders, &'static str) {
        let creds = v1();
        let h = sign_request(
            &creds,
            "POST",
            "/v1/terminals/t1/transactions?x=1",
            V1_BODY.as_bytes(),
            now,
            Uuid::new_v4(),
        )
        .unwrap();
        (creds, h, "/v1/terminals/t1/transactions?x=1")
    }

    fn incoming(h: &SignedHeaders) -> IncomingHeaders<'_> {
        IncomingHeaders {
            tenant_id: Some(&h.tenant_id),
            api_key: Some(&h.api_key),
            merchant_id: Some(&h.merchant_id),
            nonce: Some(&h.nonce),
            timestamp: Some(&h.timestamp),
            signature: Some(&h.signature),
        }
    }

    #[test]
    fn verifier_accepts_once_then_refuses_replay() {
        let now = 1_800_000_000;
        let (creds, h, path) = signed_fixture(now);
        let cache = NonceCache::new(16);
        let body = V1_BODY.as_bytes();
        let ok = verify_request(&incoming(&h), "POST", path, body, now + 10, &cache, |_| {
            Some(creds.clone())
        });
        assert_eq!(ok.unwrap().api_key, creds.api_key);
        let again = verify_request(&incoming(&h), "POST", path, body, now + 11, &cache, |_| {
            Some(creds.clone())
        });
        assert_eq!(again, Err(Rejection::ReplayedNonce));
    }

    #[test]
    fn verifier_rejection_reasons() {
        let now = 1_800_000_000;
        let (creds, h, path) = signed_fixture(now);
        let body = V1_BODY.as_bytes();
        let run = |hdrs: IncomingHeaders<'_>, method: &str, path: &str, body: &[u8], at: i64| {
            let cache = NonceCache::new(16);
            verify_request(&hdrs, method, path, body, at, &cache, |k| {
                (k == creds.api_key).then(|| creds.clone())
            })
        };
        assert_eq!(
            run(incoming(&h), "POST", path, body, now + 301),
            Err(Rejection::TimestampOutOfWindow)
        );
        assert_eq!(
            run(incoming(&h), "POST", path, body, now - 301),
            Err(Rejection::TimestampOutOfWindow)
        );
        assert!(run(incoming(&h), "POST", path, body, now + 300).is_ok());
        assert_eq!(
            run(incoming(&h), "PUT", path, body, now),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            run(
                incoming(&h),
                "POST",
                "/v1/terminals/t1/transactions",
                body,
                now
            ),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            run(incoming(&h), "POST", path, br#"{"amount":"2000.01"}"#, now),
            Err(Rejection::BadSignature)
        );
        let mut m = incoming(&h);
        m.signature = None;
        assert_eq!(
            run(m, "POST", path, body, now),
            Err(Rejection::MissingHeader(HEADER_SIGNATURE))
        );
        let mut m = incoming(&h);
        m.api_key = Some("nobody");
        assert_eq!(run(m, "POST", path, body, now), Err(Rejection::UnknownKey));
        let mut m = incoming(&h);
        m.tenant_id = Some("other-tenant");
        assert_eq!(
            run(m, "POST", path, body, now),
            Err(Rejection::CredentialMismatch)
        );
        let mut m = incoming(&h);
        m.timestamp = Some("17e8");
        assert_eq!(
            run(m, "POST", path, body, now),
            Err(Rejection::InvalidTimestamp)
        );
        let v7 = Uuid::now_v7().to_string();
        let mut m = incoming(&h);
        m.nonce = Some(&v7);
        assert_eq!(
            run(m, "POST", path, body, now),
            Err(Rejection::InvalidNonce)
        );
        let upper = h.signature.to_ascii_uppercase();
        let mut m = incoming(&h);
        m.signature = Some(&upper);
        assert_eq!(
            run(m, "POST", path, body, now),
            Err(Rejection::BadSignature)
        );
        assert!(matches!(
            run(incoming(&h), "POST", path, b"not json", now),
            Err(Rejection::InvalidBody(_))
        ));
    }

    #[test]
    fn a_remembered_nonce_is_refused_until_it_expires() {
        let now = 1_800_000_000;
        let cache = NonceCache::new(16);
        let n = Uuid::new_v4();
        let late = Uuid::new_v4();
        cache.remember(late, cache.expiry_after(now), now);
        cache.remember(n, now + 10, now);
        cache.remember(Uuid::new_v4(), now, now); // already expired
        assert_eq!(cache.len(), 2);
        assert_eq!(
            cache.check_and_insert(n, now + 5),
            Err(Rejection::ReplayedNonce)
        );
        // Forgotten once its expiry passed, though remembered out of order.
        assert_eq!(cache.check_and_insert(n, now + 10), Ok(()));
        assert_eq!(
            cache.check_and_insert(late, now + 10),
            Err(Rejection::ReplayedNonce)
        );
    }

    #[test]
    fn a_bad_signature_does_not_burn_the_nonce() {
        let now = 1_800_000_000;
        let (creds, h, path) = signed_fixture(now);
        let cache = NonceCache::new(16);
        let body = V1_BODY.as_bytes();
        let forged = "0".repeat(64);
        let mut m = incoming(&h);
        m.signature = Some(&forged);
        let r = verify_request(&m, "POST", path, body, now, &cache, |_| Some(creds.clone()));
        assert_eq!(r, Err(Rejection::BadSignature));
        assert!(cache.is_empty());
        let r = verify_request(&incoming(&h), "POST", path, body, now, &cache, |_| {
            Some(creds.clone())
        });
        assert!(r.is_ok());
    }

    #[test]
    fn nonce_cache_is_bounded_and_forgets_after_the_window() {
        let cache = NonceCache::new(2);
        let t = 1000;
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(cache.check_and_insert(a, t), Ok(()));
        assert_eq!(cache.check_and_insert(b, t + 1), Ok(()));
        assert_eq!(
            cache.check_and_insert(c, t + 2),
            Err(Rejection::ReplayCacheFull)
        );
        assert_eq!(
            cache.check_and_insert(a, t + 3),
            Err(Rejection::ReplayedNonce)
        );
        // After the window (twice over), a's entry expires and frees room.
        assert_eq!(cache.check_and_insert(c, t + 2 * WINDOW_SECS), Ok(()));
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn secrets_are_not_printed() {
        let s = format!("{:?}", v1());
        assert!(!s.contains("PZef9RE76HD"));
        assert!(s.contains("Secret(***)"));
    }

    fn json_leaf() -> impl Strategy<Value = serde_json::Value> {
        prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(|n| serde_json::json!(n)),
            "\\PC{0,12}".prop_map(serde_json::Value::String),
        ]
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        json_leaf().prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                prop::collection::btree_map("\\PC{0,6}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Writes an object with its keys in the given order (serde_json's own
    /// map is sorted, which would hide order dependence).
    fn write_in_order(fields: &[(String, serde_json::Value)]) -> String {
        let parts: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}:{}", serde_json::to_string(k).unwrap(), v))
            .collect();
        format!("{{{}}}", parts.join(","))
    }

    fn is_sorted_compact(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::Object(m) => {
                let keys: Vec<&String> = m.keys().collect();
                keys.windows(2).all(|w| w[0] < w[1]) && m.values().all(is_sorted_compact)
            }
            serde_json::Value::Array(a) => a.iter().all(is_sorted_compact),
            _ => true,
        }
    }

    proptest! {
        #[test]
        fn key_order_does_not_change_the_canonical_body(
            fields in prop::collection::btree_map("[a-zA-Z_é0-9]{1,8}", json_value(), 0..6),
            seed in any::<u64>(),
        ) {
            let sorted: Vec<(String, serde_json::Value)> = fields.into_iter().collect();
            let mut shuffled = sorted.clone();
            // deterministic shuffle from the seed
            let n = shuffled.len();
            for i in (1..n).rev() {
                let j = (seed.wrapping_mul(6364136223846793005).wrapping_add(i as u64) % (i as u64 + 1)) as usize;
                shuffled.swap(i, j);
            }
            let a = canonical_body(write_in_order(&sorted).as_bytes()).unwrap();
            let b = canonical_body(write_in_order(&shuffled).as_bytes()).unwrap();
            prop_assert_eq!(a, b);
        }

        #[test]
        fn top_level_nulls_are_omitted_and_nested_objects_sorted(
            fields in prop::collection::btree_map("[a-z]{1,6}", json_value(), 0..6),
        ) {
            let body = serde_json::Value::Object(fields.clone().into_iter().collect());
            let c = canonical_body(body.to_string().as_bytes()).unwrap();
            let expected_keys: Vec<&String> =
                fields.iter().filter(|(_, v)| !v.is_null()).map(|(k, _)| k).collect();
            let mut seen_keys = Vec::new();
            // Split on "&key=" boundaries using the known keys in order.
            let mut rest = c.as_str();
            for (i, k) in expected_keys.iter().enumerate() {
                let prefix = format!("{k}=");
                prop_assert!(rest.starts_with(&prefix), "{rest:?} should start with {prefix:?}");
                rest = &rest[prefix.len()..];
                let value = &fields[*k];
                let rendered = match value {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Object(_) | serde_json::Value::Array(_) => {
                        let text = value.to_string();
                        prop_assert!(is_sorted_compact(value));
                        text
                    }
                    other => other.to_string(),
                };
                prop_assert!(rest.starts_with(&rendered));
                rest = &rest[rendered.len()..];
                if i + 1 < expected_keys.len() {
                    prop_assert!(rest.starts_with('&'));
                    rest = &rest[1..];
                }
                seen_keys.push(*k);
            }
            prop_assert_eq!(rest, "");
            prop_assert_eq!(seen_keys, expected_keys);
        }

        #[test]
        fn non_ascii_strings_and_query_paths_round_trip_through_verify(
            text in "\\PC{0,20}",
            query in "[a-z]{1,5}=[a-zA-Z0-9%]{0,8}",
            now in 1_700_000_000i64..1_900_000_000,
        ) {
            let creds = v1();
            let body = serde_json::json!({"note": text, "amount": "1.00"}).to_string();
            let path = format!("/v1/terminals/t/transactions?{query}");
            let h = sign_request(&creds, "POST", &path, body.as_bytes(), now, Uuid::new_v4()).unwrap();
            let cache = NonceCache::new(4);
            let ok = verify_request(&incoming(&h), "POST", &path, body.as_bytes(), now, &cache, |_| Some(creds.clone()));
            prop_assert!(ok.is_ok());
            // The same request without its query string does not verify.
            let cache = NonceCache::new(4);
            let bare = verify_request(&incoming(&h), "POST", "/v1/terminals/t/transactions", body.as_bytes(), now, &cache, |_| Some(creds.clone()));
            prop_assert_eq!(bare, Err(Rejection::BadSignature));
            // The canonical body carries the string raw.
            let c = canonical_body(body.as_bytes()).unwrap();
            prop_assert_eq!(c, format!("amount=1.00&note={text}"));
        }
    }
}
