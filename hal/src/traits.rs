//! The seams between the agent and the hardware. I/O is async, and every
//! returned future is `Send` so the agent can drive devices from tokio tasks.

use std::future::Future;
use std::time::Duration;

use embedded_graphics::pixelcolor::Rgb565;
use embedded_graphics::prelude::{DrawTarget, Size};
use proto::{Currency, Money};
use tokio_util::sync::CancellationToken;

use crate::card::{CardRead, ReaderError, ReaderInfo};

/// What the card read is for (EMV transaction type 0x00 / 0x20).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadPurpose {
    Sale,
    Refund,
}

/// One card read: the terminal data an EMV kernel needs, and how long to
/// wait for a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadRequest {
    pub amount: Money,
    pub currency: Currency,
    pub purpose: ReadPurpose,
    /// Give up with [`ReaderError::Timeout`] when no card came in this time.
    pub timeout: Duration,
}

/// A contactless card reader.
pub trait CardReader: Send {
    /// Waits for a card and reads it. Ends with [`ReaderError::Timeout`]
    /// after `request.timeout`, or [`ReaderError::Cancelled`] as soon as
    /// `cancel` is cancelled. Dropping the future also abandons the read.
    fn read_card(
        &mut self,
        request: ReadRequest,
        cancel: CancellationToken,
    ) -> impl Future<Output = Result<CardRead, ReaderError>> + Send;

    /// Model and firmware of the reader (also a liveness check).
    fn info(&mut self) -> impl Future<Output = Result<ReaderInfo, ReaderError>> + Send;
}

/// Why drawing on or flushing a display failed.
#[derive(Debug, thiserror::Error)]
pub enum DisplayError {
    #[error("display I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("display bus error: {0}")]
    Bus(String),
}

/// A panel: draw with embedded-graphics, then [`Display::flush`] to show
/// the frame.
pub trait Display: DrawTarget<Color = Rgb565, Error = DisplayError> + Send {
    /// Sends the drawn frame to the panel.
    fn flush(&mut self) -> impl Future<Output = Result<(), DisplayError>> + Send;

    /// Panel size in pixels.
    fn panel_size(&self) -> Size {
        self.bounding_box().size
    }

    /// Records what the next flushed frame means: anything that serializes
    /// to a JSON object (the agent passes a `ui::ScreenState`). Real panels
    /// ignore it; the virtual device reports it at `GET /screen`.
    fn set_state<S: serde::Serialize + ?Sized>(&mut self, state: &S) {
        let _ = state;
    }
}

/// A digit key 0–9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digit(u8);

impl Digit {
    pub fn new(d: u8) -> Option<Digit> {
        (d <= 9).then_some(Digit(d))
    }

    pub fn value(self) -> u8 {
        self.0
    }
}

/// A button press.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Button {
    Cancel,
    Ok,
    Back,
    /// Opens the menu (SPEC 7.1); on the catalog, pays the cart.
    Menu,
    /// Scrolls a list up; on `transfer`, back to the card.
    Up,
    /// Scrolls a list down; on `tap_card`, switches to transfer.
    Down,
    Digit(Digit),
}

/// Why an input event could not be had.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("unknown button {0:?}; expected cancel, ok, back, menu, up, down or a digit 0-9")]
    UnknownButton(String),
    #[error("input device closed")]
    Closed,
    #[error("input device I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl Button {
    /// `cancel`, `ok`, `back`, `menu`, `up`, `down` or `0`..`9` (as in
    /// `POST /press`).
    pub fn parse(s: &str) -> Result<Button, InputError> {
        match s {
            "cancel" => Ok(Button::Cancel),
            "ok" => Ok(Button::Ok),
            "back" => Ok(Button::Back),
            "menu" => Ok(Button::Menu),
            "up" => Ok(Button::Up),
            "down" => Ok(Button::Down),
            _ => {
                let mut bytes = s.bytes();
                match (bytes.next(), bytes.next()) {
                    (Some(b @ b'0'..=b'9'), None) => Ok(Button::Digit(Digit(b - b'0'))),
                    _ => Err(InputError::UnknownButton(s.chars().take(32).collect())),
                }
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
        match self {
            Button::Cancel => "cancel",
            Button::Ok => "ok",
            Button::Back => "back",
            Button::Menu => "menu",
            Button::Up => "up",
            Button::Down => "down",
            Button::Digit(d) => DIGITS[usize::from(d.0)],
        }
    }
}

/// Buttons (keypad, touch, GPIO).
pub trait Input: Send {
    /// The next button press. Cancel-safe: dropping the future loses no
    /// press.
    fn next_button(&mut self) -> impl Future<Output = Result<Button, InputError>> + Send;
}

/// Feedback patterns of the beeper and LEDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// Short beep, LED blink: card read.
    CardRead,
    /// Two short beeps, green LED: approved.
    Success,
    /// One long beep, red LED: declined, cancelled, error.
    Failure,
}

#[derive(Debug, thiserror::Error)]
pub enum IndicatorError {
    #[error("indicator I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Beeper and LEDs.
pub trait Indicator: Send {
    fn signal(&mut self, signal: Signal)
    -> impl Future<Output = Result<(), IndicatorError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buttons_parse_and_print() {
        for s in ["cancel", "ok", "back", "menu", "up", "down", "0", "5", "9"] {
            assert_eq!(Button::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(Button::parse("menu").unwrap(), Button::Menu);
        assert_eq!(Button::parse("up").unwrap(), Button::Up);
        assert_eq!(Button::parse("down").unwrap(), Button::Down);
        for s in [
            "", "10", "x", "OK", "-1", "٣", "Menu", "UP", "left", "menu ",
        ] {
            assert!(
                matches!(Button::parse(s), Err(InputError::UnknownButton(_))),
                "{s}"
            );
        }
        assert_eq!(Digit::new(10), None);
        let Err(e) = Button::parse("enter") else {
            panic!("enter is not a button")
        };
        assert_eq!(
            e.to_string(),
            "unknown button \"enter\"; expected cancel, ok, back, menu, up, down or a digit 0-9"
        );
    }
}
