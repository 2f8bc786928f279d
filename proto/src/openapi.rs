//! OpenAPI schemas (utoipa) of the types whose serde form is written by
//! hand: each says what their validation accepts (pattern, length), so the
//! simulator's `/openapi.json` describes exactly the wire. Built only with
//! the `openapi` feature (the simulator); the agent never compiles it.

use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{RefOr, schema::KnownFormat, schema::SchemaFormat};
use utoipa::{PartialSchema, ToSchema};

use crate::ids::{PaymentId, Reference, SessionId, TerminalId};
use crate::money::{Currency, Money, Total};
use crate::pin::Pin;
use crate::wire::{
    CardToken, DeviceId, DeviceKeyHash, Last4, PairingCode, Scenario, Timestamp, TransferCode,
};

#[doc(hidden)]
pub use utoipa as __utoipa;

/// A string schema with a pattern, a length range and a description.
pub fn string(
    pattern: &str,
    min: Option<usize>,
    max: Option<usize>,
    description: &str,
    example: &str,
) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .pattern(Some(pattern))
        .min_length(min)
        .max_length(max)
        .description(Some(description))
        .examples([example])
        .into()
}

/// A string enumeration (the `text_enum!` types).
pub fn text_enum(values: &[&str]) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .enum_values(Some(values.iter().copied()))
        .into()
}

macro_rules! schema {
    ($name:ty, $body:expr) => {
        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $body
            }
        }
        impl ToSchema for $name {}
    };
}

// Money: digits, a dot, exactly two digits; no leading zero; at most
// 10000000.00.
const MONEY: &str = r"^((0|[1-9][0-9]{0,6})\.[0-9]{2}|10000000\.00)$";
schema!(
    Money,
    string(
        MONEY,
        None,
        None,
        "Amount in NGN: a decimal string with exactly two fraction digits, at most 10000000.00",
        "2000.00"
    )
);
/// An amount above zero (payments, refunds, prices): [`Money`] without
/// `0.00`.
pub fn positive_money() -> RefOr<Schema> {
    string(
        r"^(0\.(0[1-9]|[1-9][0-9])|[1-9][0-9]{0,6}\.[0-9]{2}|10000000\.00)$",
        None,
        None,
        "Amount in NGN above zero: a decimal string with exactly two fraction digits, at most 10000000.00",
        "2000.00",
    )
}

/// SPEC 7.3 tip percentages: at most 9 whole percentages from 1 to 100.
pub fn tip_percentages() -> RefOr<Schema> {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::Integer))
                .minimum(Some(1))
                .maximum(Some(100)),
        )
        .max_items(Some(9))
        .into()
}

/// SPEC 7.3 fixed tips: at most 9 amounts above zero.
pub fn fixed_tips() -> RefOr<Schema> {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(positive_money())
        .max_items(Some(9))
        .into()
}

schema!(
    Total,
    string(
        r"^(0|[1-9][0-9]{0,16})\.[0-9]{2}$",
        None,
        None,
        "A sum of amounts: a decimal string with exactly two fraction digits",
        "2000.00"
    )
);
schema!(Currency, text_enum(&["NGN"]));
schema!(
    Timestamp,
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .description(Some("RFC 3339; written in UTC (Z)"))
        .examples(["2026-11-21T10:02:01Z"])
        .into()
);

macro_rules! id_schema {
    ($name:ty, $example:literal) => {
        schema!(
            $name,
            string(
                r"^[A-Za-z0-9._-]+$",
                Some(1),
                Some(<$name>::MAX_LEN),
                "1-64 of A-Z a-z 0-9 . _ -",
                $example
            )
        );
    };
}
id_schema!(Reference, "pos_3f1e2d_001-000042");
id_schema!(TerminalId, "pos_3f1e2d_001");
id_schema!(SessionId, "ses_3f1e2d");
id_schema!(PaymentId, "pay_0123456789abcdef");

schema!(
    CardToken,
    string(
        r"^[0-9a-f]{32,64}$",
        Some(32),
        Some(64),
        "card token: 32-64 lowercase hex characters (never a PAN)",
        "9f2c4e1a0b7d3e6f8a1c2b4d6e8f0a1b"
    )
);
schema!(
    Last4,
    string(
        r"^[0-9]{4}$",
        Some(4),
        Some(4),
        "the last four digits of the card",
        "1111"
    )
);
schema!(
    PairingCode,
    string(
        r"^[A-Za-z2-9]{8}$",
        Some(8),
        Some(8),
        "8 characters of A-Z 2-9 (case does not matter when sent)",
        "K7Q2M9XA"
    )
);
schema!(
    TransferCode,
    string(
        r"^[0-9]{6}$",
        Some(6),
        Some(6),
        "the 6-digit payment code a customer puts in the transfer's narration",
        "004217"
    )
);
schema!(
    DeviceId,
    string(
        r"^[a-z0-9-]{8,64}$",
        Some(8),
        Some(64),
        "8-64 of a-z 0-9 -",
        "device-0001"
    )
);
schema!(
    DeviceKeyHash,
    string(
        r"^[0-9a-f]{64}$",
        Some(64),
        Some(64),
        "lowercase hex SHA-256 of the device's 32-byte key",
        "5f0c6c3e1f7e4d0a9a573b1f2f9f4c115f0c6c3e1f7e4d0a9a573b1f2f9f4c11"
    )
);
schema!(
    Pin,
    string(
        r"^[0-9]{4,6}$",
        Some(4),
        Some(6),
        "4-6 digits; write-only",
        "1234"
    )
);
schema!(
    Scenario,
    string(
        r"^(decline|insufficient_funds|auth_timeout|http_500|http_409|drop_after_commit|slow:[0-9]{1,7})$",
        None,
        None,
        "a sandbox scenario; slow:<ms> waits that long",
        "decline"
    )
);
