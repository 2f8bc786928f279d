//! Helpers shared by the unit tests of the wire modules.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::Timestamp;

/// Parses `literal`, checks it serializes back to the same JSON value.
pub(super) fn round_trip<T: Serialize + DeserializeOwned + fmt::Debug + PartialEq>(
    literal: Value,
) -> T {
    let parsed: T = serde_json::from_value(literal.clone()).expect("parses");
    let back = serde_json::to_value(&parsed).expect("serializes");
    assert_eq!(back, literal, "round trip of {parsed:?}");
    let again: T = serde_json::from_value(back).expect("parses again");
    assert_eq!(again, parsed);
    parsed
}

pub(super) fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

pub(super) fn card_json() -> Value {
    json!({"token": "9f2c4e1a0b7d3e6f8a1c2b4d6e8f0a1b", "last4": "1111",
           "brand": "visa", "entry_mode": "contactless"})
}
