//! [`text_enum!`]: a fieldless enum whose wire text is written once.

/// A text that names no value of an enum (from `FromStr` of every
/// [`text_enum!`] type). The text is cut to 32 characters in the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct UnknownValue {
    /// What was being parsed, e.g. `"transaction state"`.
    pub what: &'static str,
    /// The refused text (at most 32 characters of it).
    pub value: String,
}

impl UnknownValue {
    pub fn new(what: &'static str, value: &str) -> Self {
        UnknownValue {
            what,
            value: value.chars().take(32).collect(),
        }
    }
}

/// Declares a fieldless enum with its text for each variant, written once
/// and used by serde (`#[serde(rename)]`), `as_str()`, `Display` and
/// `FromStr` (error [`UnknownValue`]); `ALL` lists the variants in order.
///
/// ```ignore
/// text_enum! {
///     /// Sale or refund.
///     pub enum TxKind: "transaction kind" {
///         Sale = "sale",
///         Refund = "refund",
///     }
/// }
/// ```
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident: $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize,
        )]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
        }

        $crate::__text_enum_schema!($name { $($text),+ });

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The wire (and stored) text.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err($crate::UnknownValue::new($what, other)),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use text_enum;

/// The OpenAPI schema of a `text_enum!` type (its values), with the
/// `openapi` feature; nothing without it.
#[cfg(feature = "openapi")]
#[doc(hidden)]
#[macro_export]
macro_rules! __text_enum_schema {
    ($name:ident { $($text:literal),+ }) => {
        impl $crate::openapi::__utoipa::PartialSchema for $name {
            fn schema() -> $crate::openapi::__utoipa::openapi::RefOr<
                $crate::openapi::__utoipa::openapi::schema::Schema,
            > {
                $crate::openapi::text_enum(&[$($text),+])
            }
        }
        impl $crate::openapi::__utoipa::ToSchema for $name {}
    };
}

#[cfg(not(feature = "openapi"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __text_enum_schema {
    ($name:ident { $($text:literal),+ }) => {};
}
