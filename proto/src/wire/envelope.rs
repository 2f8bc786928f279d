//! The Kler response envelope and its errors: [`Envelope`], [`ApiError`]
//! and the shared error [`codes`].

use serde::{Deserialize, Serialize};

/// The Kler envelope: `{"success":true,"data":..}` or
/// `{"success":false,"error":{"code","message"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Envelope<T> {
    pub success: bool,
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
}

fn none<T>() -> Option<T> {
    None
}

impl<T> Envelope<T> {
    pub fn ok(data: T) -> Self {
        Envelope {
            success: true,
            data: Some(data),
            error: None,
        }
    }

    pub fn into_result(self) -> Result<T, ApiError> {
        match (self.success, self.data, self.error) {
            (true, Some(data), _) => Ok(data),
            (_, _, Some(e)) => Err(e),
            (true, None, None) => Err(ApiError::new(
                "missing_data",
                "success envelope without data",
            )),
            (false, _, None) => Err(ApiError::new(
                "missing_error",
                "failure envelope without error",
            )),
        }
    }
}

impl Envelope<()> {
    pub fn err(code: impl Into<String>, message: impl Into<String>) -> Self {
        Envelope {
            success: false,
            data: None,
            error: Some(ApiError::new(code, message)),
        }
    }
}

/// The error object of a failure envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// Error codes with a meaning both sides rely on.
pub mod codes {
    pub const IDEMPOTENCY_CONFLICT: &str = "idempotency_conflict";
    pub const IDEMPOTENCY_KEY_MISMATCH: &str = "idempotency_key_mismatch";
    pub const MISSING_IDEMPOTENCY_KEY: &str = "missing_idempotency_key";
    pub const TERMINAL_OFFLINE: &str = "terminal_offline";
    pub const TERMINAL_BUSY: &str = "terminal_busy";
    pub const ABORT_TOO_LATE: &str = "abort_too_late";
    pub const ABORT_NOT_CONFIRMED: &str = "abort_not_confirmed";
    pub const SESSION_CLOSED: &str = "session_closed";
    /// A reference that is not `<terminal_id>-…` nor a UUIDv7 (SPEC 4.3).
    pub const REFERENCE_NOT_YOURS: &str = "reference_not_yours";
    pub const NOT_FOUND: &str = "not_found";
    pub const UNAUTHORIZED: &str = "unauthorized";
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    pub const MALFORMED_JSON: &str = "malformed_json";
    /// Values that do not fit together (a tip above the amount, items that
    /// do not add up, a shift closed before it opened): 422.
    pub const INVALID_REQUEST: &str = "invalid_request";
    pub const SANDBOX_HTTP_500: &str = "sandbox_http_500";
    pub const SANDBOX_REFUSED: &str = "sandbox_refused";
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    use crate::wire::test_util::round_trip;

    #[test]
    fn envelopes() {
        let ok: Envelope<Value> = round_trip(json!({"success": true, "data": {"a": 1}}));
        assert_eq!(ok.into_result().unwrap(), json!({"a": 1}));
        let err: Envelope<Value> = round_trip(json!({
            "success": false,
            "error": {"code": "idempotency_conflict", "message": "different body"}
        }));
        assert_eq!(
            err.into_result().unwrap_err().code,
            codes::IDEMPOTENCY_CONFLICT
        );
        assert_eq!(
            serde_json::to_value(Envelope::err("not_found", "no such route")).unwrap(),
            json!({"success": false, "error": {"code": "not_found", "message": "no such route"}})
        );
        let odd: Envelope<Value> = serde_json::from_value(json!({"success": true})).unwrap();
        assert_eq!(odd.into_result().unwrap_err().code, "missing_data");
    }
}
