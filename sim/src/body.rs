//! Request bodies: the 64 KiB limit and JSON decoding whose errors name
//! the field (400) or carry the `proto` money error (422).

use axum::body::{Body, Bytes};
use axum::extract::FromRequest;
use axum::http::{Request, StatusCode};
use futures_util::StreamExt;
use proto::{Currency, Money};
use serde::Serialize;
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
pub fn decode<T: DeserializeOwned + Serialize>(body: &[u8]) -> Result<T, ApiErr> {
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

/// JSON (and JSON Schema, so `/openapi.json`) counts a number with a zero
/// fraction (`334.0`) as the integer 334: so does the sim, before serde
/// (whose integer types refuse a float). Money is never a number here
/// (amounts are strings).
fn integral_floats(v: &mut Value) {
    const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    match v {
        Value::Number(n) => {
            let Some(f) = n.as_f64().filter(|f| n.is_f64() && f.fract() == 0.0) else {
                return;
            };
            if (0.0..TWO_POW_64).contains(&f) {
                *v = Value::from(f as u64);
            } else if (-TWO_POW_63..0.0).contains(&f) {
                *v = Value::from(f as i64);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(integral_floats),
        Value::Object(o) => o.values_mut().for_each(integral_floats),
        _ => {}
    }
}

/// Like [`decode`] for an already parsed value.
pub fn decode_value<T: DeserializeOwned + Serialize>(mut value: Value) -> Result<T, ApiErr> {
    integral_floats(&mut value);
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
    let decoded = serde_path_to_error::deserialize::<_, T>(&value).map_err(|e| {
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
    })?;
    // serde reads a struct from an array too (its fields in order): the
    // wire says object, so an array where the value holds an object is
    // refused.
    let written = serde_json::to_value(&decoded)
        .map_err(|e| ApiErr::internal(format!("cannot write the decoded body: {e}")))?;
    if let Some(path) = array_for_object(&value, &written, String::new()) {
        let shown = if path.is_empty() {
            ".".to_owned()
        } else {
            path
        };
        return Err(ApiErr::bad_request(
            format!("invalid_{}", snake(&shown)),
            format!("field `{shown}`: an object is expected, not an array"),
        ));
    }
    Ok(decoded)
}

/// The path of the first array in `sent` where `read` (the decoded value
/// written back) has an object.
fn array_for_object(sent: &Value, read: &Value, path: String) -> Option<String> {
    match (sent, read) {
        (Value::Array(_), Value::Object(_)) => Some(path),
        (Value::Object(s), Value::Object(r)) => r.iter().find_map(|(k, rv)| {
            let sv = s.get(k)?;
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            array_for_object(sv, rv, p)
        }),
        (Value::Array(s), Value::Array(r)) => s
            .iter()
            .zip(r)
            .enumerate()
            .find_map(|(i, (sv, rv))| array_for_object(sv, rv, format!("{path}[{i}]"))),
        _ => None,
    }
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
    fn an_array_is_no_object_and_a_zero_fraction_is_an_integer() {
        use proto::wire::{Heartbeat, SetScenario};
        let e =
            decode::<Heartbeat>(br#"{"agent_version":"1","state":"idle","hal":[]}"#).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code.as_str()), (400, "invalid_hal"));
        let card = br#"{"reference":"r-1","kind":"sale","amount":"1.00","currency":"NGN",
            "card":["9f2c4e1a0b7d3e6f8a1c2b4d6e8f0a1b","1111","visa","contactless"],
            "captured_at":"2026-11-21T10:02:01Z","offline":false}"#;
        let e = decode::<TransactionSubmission>(card).unwrap_err();
        assert_eq!(e.code, "invalid_card");
        let s: SetScenario =
            decode(br#"{"terminal_id":"t","scenario":"decline","count":3.0}"#).unwrap();
        assert_eq!(s.count, 3);
        assert!(
            decode::<SetScenario>(br#"{"terminal_id":"t","scenario":"decline","count":3.5}"#)
                .is_err()
        );
    }

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
