//! What can go wrong while driving the system end to end.

use std::time::Duration;

/// A failure of the harness, the system under test, or an expectation.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("HTTP request {what} failed: {source}")]
    Http {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{what}: HTTP {status}, error code {code:?}: {message}")]
    Api {
        what: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("{what}: cannot decode the answer ({problem}); body: {body}")]
    Decode {
        what: String,
        problem: String,
        body: String,
    },
    #[error("timed out after {waited:?} waiting for {what}; last seen: {last}")]
    Timeout {
        what: String,
        waited: Duration,
        last: String,
    },
    #[error("expectation failed: {0}")]
    Check(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("agent: {0}")]
    Agent(String),
    #[error("simulator: {0}")]
    Sim(String),
}

impl HarnessError {
    /// The API error code, when the backend answered with one.
    pub fn api_code(&self) -> Option<&str> {
        match self {
            HarnessError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> HarnessError {
        let what = what.into();
        move |source| HarnessError::Io { what, source }
    }
}

/// Fails with [`HarnessError::Check`] unless `cond` holds.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::HarnessError::Check(format!($($fmt)+)));
        }
    };
}

pub type Result<T, E = HarnessError> = std::result::Result<T, E>;
