//! The boundary of the command stream (SPEC 4.3): one event's `data` parsed
//! and validated into a [`Command`], or refused with the command id when one
//! could be read (so the terminal can reject it). Shared by the agent and
//! the fuzz targets (`hal/fuzz`), which is why it lives here.

use super::{Command, CommandBody};
use crate::ids::PaymentId;

/// Largest `data:` accepted for one command.
pub const MAX_COMMAND_BYTES: usize = 16 * 1024;

/// Why a command from the stream was refused before the core saw it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("command data is larger than {MAX_COMMAND_BYTES} bytes")]
    TooLarge,
    #[error("command is not valid JSON or not a known command: {0}")]
    Malformed(String),
    #[error("command amount must be positive")]
    ZeroAmount,
}

/// A command that passed the boundary, before references are minted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidCommand {
    pub command: Command,
}

/// Parses and validates one event's data. On failure, the command id when
/// one could be read (to reject it), and why.
pub fn parse_command(data: &str) -> Result<ValidCommand, (Option<String>, CommandError)> {
    if data.len() > MAX_COMMAND_BYTES {
        return Err((None, CommandError::TooLarge));
    }
    match serde_json::from_str::<Command>(data) {
        Ok(command) => {
            if PaymentId::new(command.command_id.clone()).is_err() {
                return Err((None, CommandError::Malformed("bad command_id".into())));
            }
            let amount = match &command.body {
                CommandBody::Sale { amount, .. } | CommandBody::Refund { amount, .. } => {
                    Some(*amount)
                }
                _ => None,
            };
            if amount.is_some_and(|a| a.is_zero()) {
                return Err((Some(command.command_id.clone()), CommandError::ZeroAmount));
            }
            Ok(ValidCommand { command })
        }
        Err(e) => {
            let id = serde_json::from_str::<serde_json::Value>(data)
                .ok()
                .and_then(|v| {
                    v.get("command_id")
                        .and_then(|c| c.as_str())
                        .map(String::from)
                })
                .filter(|id| PaymentId::new(id.clone()).is_ok());
            Err((id, CommandError::Malformed(e.to_string())))
        }
    }
}

/// The fuzzing entry point: any bytes as an event's data. Never panics; an
/// accepted command has a valid id and a positive amount, and encodes and
/// parses back to itself; a refused one names only a valid id.
pub fn fuzz_parse_command(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_command(text) {
        Ok(valid) => {
            assert!(PaymentId::new(valid.command.command_id.clone()).is_ok());
            let json = serde_json::to_string(&valid.command).unwrap_or_default();
            if json.len() > MAX_COMMAND_BYTES {
                return; // escaping may lengthen a command near the bound
            }
            let again = parse_command(&json).map(|v| v.command);
            assert_eq!(again.as_ref(), Ok(&valid.command), "re-parse differs");
        }
        Err((Some(id), _)) => assert!(PaymentId::new(id).is_ok()),
        Err((None, _)) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_entry_on_samples() {
        for sample in [
            &br#"{"command_id":"cmd_1","type":"abort","payment_id":"pay_1"}"#[..],
            br#"{"command_id":"cmd_2","type":"sale","payment_id":"pay_1","amount":"2000.00","currency":"NGN","partner_reference":"P1","expires_at":"2026-11-21T10:00:00+01:00"}"#,
            br#"{"command_id":"cmd_3","type":"session_closed"}"#,
            b"{\"command_id\":\"x\"",
            b"\xff",
        ] {
            fuzz_parse_command(sample);
        }
    }
}
