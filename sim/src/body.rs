//! Request bodies: the 64 KiB limit and JSON decoding whose errors name
//! the field (400) or carry the `proto` money error (422).

use axum::body::{Body, Bytes};
use axum::extract::FromRequest;
use axum::http::{Request, StatusCode};
use futures_util::StreamExt;
use proto::{Currency, Money};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiErr;
use proto::wire::codes;

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// The raw request body, at most [`MAX_BODY`] bytes (413 beyond).
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiErr;

    async fn from_request(req: Request<Body>, _state: &S) -> Result<Self, ApiErr> {
        let too_large = || {
            ApiErr::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                codes::PAYLOAD_TOO_LARGE,
                format!("request body exceeds {MAX_BODY} bytes"),
            )
        };
        if let Some(len) = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        {
            if len > MAX_BODY as u64 {
                return Err(too_large());
            }
        }
        // Read frame by frame so the limit holds without a Content-Length
        // (chunked uploads) and nothing beyond it is buffered.
        let mut stream = req.into_body().into_data_stream();
        let mut buf = bytes::BytesMut::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| {
                ApiErr::bad_request("body_read_failed", "request body could not be read")
            })?;
            if buf.len() + chunk.len() > MAX_BODY {
                return Err(too_large());
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(RawBody(buf.freeze()))
    }
}

/// Fields holding an amount (validated as positive money) or a currency.
const AMOUNT_FIELDS: [&str; 2] = ["amount", "floor_limit"];
const CURRENCY_FIELDS: [&str; 1] = ["currency"];

/// Decodes a JSON body into `T`. Malformed JSON → 400 `malformed_json`;
/// a missing field → 400 `missing_<field>`; a wrong type or value → 400
/// `invalid_<path>`; an invalid amount or currency string → 422 with the
/// `proto` error code.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiErr> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiErr::bad_request(
            codes::MALFORMED_JSON,
            "request body is empty; a JSON object is expected",
        ));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiErr::bad_request(codes::MALFORMED_JSON, format!("malformed JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiErr::bad_request(
            codes::MALFORMED_JSON,
            "request body must be a JSON object",
        ));
    }
    decode_value(value)
}

/// Like [`decode`] for an already parsed value.
pub fn decode_value<T: DeserializeOwned>(value: Value) -> Result<T, ApiErr> {
    // Amount and currency strings are checked first so that their errors
    // carry the proto code (422) rather than a generic decode error.
    if let Value::Object(map) = &value {
        for f in AMOUNT_FIELDS {
            if let Some(Value::String(s)) = map.get(f) {
                Money::parse(s).map_err(|e| ApiErr::money(&e))?;
            }
        }
        for f in CURRENCY_FIELDS {
            if let Some(Value::String(s)) = map.get(f) {
                Currency::parse(s).map_err(|e| ApiErr::money(&e))?;
            }
        }
    }
    serde_path_to_error::deserialize::<_, T>(&value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.to_string();
        if let Some(field) = missing_field(&msg) {
            let full = if path == "." || path.is_empty() {
                field.to_owned()
            } else {
                format!("{path}.{field}")
            };
            return ApiErr::bad_request(
                format!("missing_{}", snake(&full)),
                format!("missing field `{full}`"),
            );
        }
        ApiErr::bad_request(
            format!("invalid_{}", snake(&path)),
            format!("field `{path}`: {msg}"),
        )
    })
}

fn missing_field(msg: &str) -> Option<&str> {
    let rest = msg.strip_prefix("missing field `")?;
    rest.split('`').next()
}

/// `card.last4` → `card_last4`; anything but `[a-z0-9_]` becomes `_`.
fn snake(path: &str) -> String {
    let s: String = path
        .chars()
        .take(48)
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let s = s.trim_matches('_').to_owned();
    if s.is_empty() { "body".into() } else { s }
}

/// Requires a positive amount (zero is a valid `Money` but not a payment).
pub fn positive(m: Money) -> Result<Money, ApiErr> {
    if m.is_zero() {
        Err(ApiErr::money(&proto::MoneyError::Zero))
    } else {
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::wire::{CreatePayment, TransactionSubmission};

    #[test]
    fn errors_name_the_field() {
        let e = decode::<CreatePayment>(br#"{"terminal_id":"t","amount":"1.00","reference":7}"#)
            .unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.code.as_str()),
            (400, "invalid_reference")
        );
        let e = decode::<CreatePayment>(br#"{"terminal_id":"t","reference":"r"}"#).unwrap_err();
        assert_eq!(e.code, "missing_amount");
        let e = decode::<CreatePayment>(br#"{"terminal_id":"t","amount":"1.5","reference":"r"}"#)
            .unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.code.as_str()),
            (422, "amount_decimals")
        );
        let e = decode::<CreatePayment>(
            br#"{"terminal_id":"t","amount":"1.50","currency":"USD","reference":"r"}"#,
        )
        .unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.code.as_str()),
            (422, "unsupported_currency")
        );
        let e = decode::<CreatePayment>(br#"{"terminal_id":"t","amount":150,"reference":"r"}"#)
            .unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.code.as_str()),
            (400, "invalid_amount")
        );
        let e = decode::<CreatePayment>(b"{not json").unwrap_err();
        assert_eq!(e.code, "malformed_json");
        let e = decode::<CreatePayment>(b"[]").unwrap_err();
        assert_eq!(e.code, "malformed_json");
        let e = decode::<TransactionSubmission>(
            br#"{"reference":"r","kind":"sale","amount":"1.00","currency":"NGN","offline":false,
                "captured_at":"2026-11-21T10:00:00Z",
                "card":{"token":"4111111111111111","last4":"1111","brand":"visa","entry_mode":"chip"}}"#,
        )
        .unwrap_err();
        assert_eq!(e.code, "invalid_card_token");
        let e = decode::<TransactionSubmission>(
            br#"{"reference":"r","kind":"sale","amount":"1.00","currency":"NGN","offline":false,
                "captured_at":"2026-11-21T10:00:00Z","card":{"last4":"1111","brand":"visa","entry_mode":"chip"}}"#,
        )
        .unwrap_err();
        assert_eq!(e.code, "missing_card_token");
    }
}
