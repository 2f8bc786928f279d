//! Errors: the library's own ([`SimError`]) and the HTTP answers
//! ([`ApiErr`]), always in the Kler error envelope.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use proto::MoneyError;
use proto::signing::Rejection;
use proto::wire::{Envelope, codes};

/// Why the simulator could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("state file {path}: {source}")]
    State {
        path: String,
        source: rusqlite::Error,
    },
    #[error("state file {path} holds a record that cannot be read ({kind} {id}): {reason}")]
    CorruptState {
        path: String,
        kind: String,
        id: String,
        reason: String,
    },
    #[error("state file {path} could not be written: {reason}")]
    StateWrite { path: String, reason: String },
    #[error("state writer stopped")]
    WriterStopped,
    #[error("cannot build the webhook HTTP client: {0}")]
    HttpClient(reqwest::Error),
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// An error answer: HTTP status plus `{code, message}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiErr {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

impl ApiErr {
    pub fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        ApiErr {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn bad_request(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        let shown: String = id.chars().take(64).collect();
        Self::new(
            StatusCode::NOT_FOUND,
            codes::NOT_FOUND,
            format!("{what} {shown:?} not found"),
        )
    }

    pub fn conflict(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn unprocessable(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn money(e: &MoneyError) -> Self {
        Self::unprocessable(e.code(), e.to_string())
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, codes::UNAUTHORIZED, message)
    }

    pub fn rejection(r: &Rejection) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, r.code(), r.to_string())
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiErr {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(Envelope::err(self.code, self.message)),
        )
            .into_response()
    }
}

impl From<SimError> for ApiErr {
    fn from(e: SimError) -> Self {
        ApiErr::internal(e.to_string())
    }
}
