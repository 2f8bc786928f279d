//! Identifiers that cross the wire, validated at the boundary.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{what} is empty")]
    Empty { what: &'static str },
    #[error("{what} is longer than {max} characters")]
    TooLong { what: &'static str, max: usize },
    #[error("{what} may only contain letters, digits, '-', '_' and '.'")]
    InvalidCharacter { what: &'static str },
}

fn validate(what: &'static str, s: &str, max: usize) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty { what });
    }
    if s.len() > max {
        return Err(IdError::TooLong { what, max });
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(IdError::InvalidCharacter { what });
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const MAX_LEN: usize = $max;

            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                validate($what, &s, $max)?;
                Ok($name(s))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::new(s).map_err(serde::de::Error::custom)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                $name::new(s)
            }
        }
    };
}

id_type!(
    /// A transaction reference: created by the terminal before anything is
    /// sent, unique forever, the Idempotency-Key of every submission about
    /// the transaction. Form: `<terminal_id>-<zero-padded sequence>`.
    Reference,
    "reference",
    64
);
id_type!(
    /// A terminal id such as `pos_3f1e2d_001`.
    TerminalId,
    "terminal_id",
    64
);
id_type!(
    /// A session id.
    SessionId,
    "session_id",
    64
);
id_type!(
    /// A partner payment id (assigned by the backend).
    PaymentId,
    "payment_id",
    64
);

impl Reference {
    /// `<terminal_id>-<sequence zero-padded to 6 digits>`.
    pub fn for_sequence(terminal: &TerminalId, seq: u64) -> Reference {
        Reference(format!("{}-{:06}", terminal.as_str(), seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_terminal_and_padded_sequence() {
        let t = TerminalId::new("pos_3f1e2d_001").unwrap();
        assert_eq!(
            Reference::for_sequence(&t, 42).as_str(),
            "pos_3f1e2d_001-000042"
        );
        assert_eq!(
            Reference::for_sequence(&t, 1_234_567).as_str(),
            "pos_3f1e2d_001-1234567"
        );
    }

    #[test]
    fn ids_are_validated() {
        assert_eq!(
            Reference::new(""),
            Err(IdError::Empty { what: "reference" })
        );
        assert!(matches!(
            Reference::new("a b"),
            Err(IdError::InvalidCharacter { .. })
        ));
        assert!(matches!(
            Reference::new("a/../b"),
            Err(IdError::InvalidCharacter { .. })
        ));
        assert!(matches!(
            Reference::new("x".repeat(65)),
            Err(IdError::TooLong { .. })
        ));
        let r: Result<TerminalId, _> = serde_json::from_str("\"pos_1\"");
        assert_eq!(r.unwrap().as_str(), "pos_1");
        assert!(serde_json::from_str::<TerminalId>("\"pos 1\"").is_err());
    }
}
