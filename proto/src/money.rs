//! Money in integer minor units (kobo), with the wire form `"2000.00"` and the
//! display form `NGN 2,000.00`.
//!
//! There is no floating point anywhere in this module: parsing walks the ASCII
//! digits, formatting divides integers.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Largest amount accepted on the wire: `10000000.00` NGN, in kobo.
pub const MAX_MINOR: u64 = 1_000_000_000;

/// Minor units per major unit (kobo per naira).
const MINOR_PER_MAJOR: u64 = 100;

/// The only currency this terminal handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum Currency {
    /// Nigerian naira; minor unit kobo, ISO 4217 numeric 566.
    #[default]
    Ngn,
}

impl Currency {
    /// ISO 4217 alphabetic code.
    pub fn code(self) -> &'static str {
        match self {
            Currency::Ngn => "NGN",
        }
    }

    /// ISO 4217 numeric code (used in EMV terminal data).
    pub fn numeric(self) -> u16 {
        match self {
            Currency::Ngn => 566,
        }
    }

    /// Parses an ISO 4217 code. Only `NGN` is accepted, exactly as written.
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        match code {
            "NGN" => Ok(Currency::Ngn),
            other => Err(MoneyError::UnsupportedCurrency(truncate_for_error(other))),
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Currency::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Why an amount or currency was refused. Each malformed shape has its own
/// variant so callers (and the simulator's 422 answers) can say exactly what
/// was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount is empty")]
    Empty,
    #[error("amount must not be negative")]
    Negative,
    #[error("amount must be greater than zero")]
    Zero,
    #[error("amount must not contain whitespace")]
    Whitespace,
    #[error("amount must not use thousands separators")]
    ThousandsSeparator,
    #[error("amount must not use an exponent")]
    Exponent,
    #[error("amount must have exactly two decimal places, as in \"2000.00\"")]
    WrongDecimals,
    #[error("amount must not have leading zeros")]
    LeadingZero,
    #[error("amount contains a character that is not a digit: {0:?}")]
    InvalidCharacter(char),
    #[error("amount exceeds the maximum of 10000000.00")]
    TooLarge,
    #[error("unsupported currency {0:?}: only NGN is accepted")]
    UnsupportedCurrency(String),
}

impl MoneyError {
    /// A stable snake_case code for error envelopes.
    pub fn code(&self) -> &'static str {
        match self {
            MoneyError::Empty => "amount_empty",
            MoneyError::Negative => "amount_negative",
            MoneyError::Zero => "amount_zero",
            MoneyError::Whitespace => "amount_whitespace",
            MoneyError::ThousandsSeparator => "amount_thousands_separator",
            MoneyError::Exponent => "amount_exponent",
            MoneyError::WrongDecimals => "amount_decimals",
            MoneyError::LeadingZero => "amount_leading_zero",
            MoneyError::InvalidCharacter(_) => "amount_invalid_character",
            MoneyError::TooLarge => "amount_too_large",
            MoneyError::UnsupportedCurrency(_) => "unsupported_currency",
        }
    }
}

fn truncate_for_error(s: &str) -> String {
    s.chars().take(16).collect()
}

/// A non-negative amount of NGN in minor units (kobo), at most [`MAX_MINOR`].
///
/// `Money::parse` accepts zero (totals and refunds-left can be zero);
/// payments use [`Money::parse_positive`] or check [`Money::is_zero`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Money(u64);

impl Money {
    pub const ZERO: Money = Money(0);

    /// From minor units; refuses more than [`MAX_MINOR`].
    pub fn from_minor(minor: u64) -> Result<Self, MoneyError> {
        if minor > MAX_MINOR {
            return Err(MoneyError::TooLarge);
        }
        Ok(Money(minor))
    }

    /// Minor units (kobo).
    pub fn minor(self) -> u64 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Parses the wire form: ASCII digits, a dot, exactly two digits.
    /// No sign, no whitespace, no separators, no exponent, no leading zeros
    /// (except the single `0` of `"0.50"`).
    pub fn parse(s: &str) -> Result<Self, MoneyError> {
        if s.is_empty() {
            return Err(MoneyError::Empty);
        }
        // Classify the most telling problem first, so the error names it.
        if s.starts_with('-') {
            return Err(MoneyError::Negative);
        }
        if s.chars().any(char::is_whitespace) {
            return Err(MoneyError::Whitespace);
        }
        if s.contains(',') || s.contains('_') || s.contains('\'') {
            return Err(MoneyError::ThousandsSeparator);
        }
        if s.contains(['e', 'E']) {
            return Err(MoneyError::Exponent);
        }
        if let Some(c) = s.chars().find(|c| !c.is_ascii_digit() && *c != '.') {
            return Err(MoneyError::InvalidCharacter(c));
        }
        let Some((whole, frac)) = s.split_once('.') else {
            return Err(MoneyError::WrongDecimals);
        };
        if frac.len() != 2 || frac.contains('.') || whole.is_empty() {
            return Err(MoneyError::WrongDecimals);
        }
        if whole.len() > 1 && whole.starts_with('0') {
            return Err(MoneyError::LeadingZero);
        }
        // At most 8 integer digits fit under the maximum; more is too large
        // (and would overflow long before u64 matters).
        if whole.len() > 8 {
            return Err(MoneyError::TooLarge);
        }
        let mut minor: u64 = 0;
        for b in whole.bytes().chain(frac.bytes()) {
            minor = minor * 10 + u64::from(b - b'0');
        }
        Money::from_minor(minor)
    }

    /// Parses the wire form and refuses zero: what a payment or refund needs.
    pub fn parse_positive(s: &str) -> Result<Self, MoneyError> {
        let m = Money::parse(s)?;
        if m.is_zero() {
            return Err(MoneyError::Zero);
        }
        Ok(m)
    }

    /// The wire form, e.g. `"2000.00"`.
    pub fn to_wire(self) -> String {
        format!(
            "{}.{:02}",
            self.0 / MINOR_PER_MAJOR,
            self.0 % MINOR_PER_MAJOR
        )
    }

    /// The display form with thousands separators, e.g. `NGN 2,000.00`.
    pub fn display(self, currency: Currency) -> String {
        let whole = (self.0 / MINOR_PER_MAJOR).to_string();
        let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
        for (i, c) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        format!(
            "{} {}.{:02}",
            currency.code(),
            grouped,
            self.0 % MINOR_PER_MAJOR
        )
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0
            .checked_add(other.0)
            .and_then(|m| Money::from_minor(m).ok())
    }

    pub fn checked_sub(self, other: Money) -> Option<Money> {
        self.0.checked_sub(other.0).map(Money)
    }

    pub fn saturating_sub(self, other: Money) -> Money {
        Money(self.0.saturating_sub(other.0))
    }
}

impl fmt::Display for Money {
    /// The wire form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:02}",
            self.0 / MINOR_PER_MAJOR,
            self.0 % MINOR_PER_MAJOR
        )
    }
}

impl std::str::FromStr for Money {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Money::parse(s)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Money {
    /// Accepts only the wire string; a JSON number is refused (it would invite
    /// floating point on the other side).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Money::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Sums of money that may exceed the per-payment maximum (report totals,
/// offline exposure). Still integer minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Total(pub u64);

impl Total {
    #[allow(clippy::should_implement_trait)] // adds Money to a Total, not Total + Total
    pub fn add(self, m: Money) -> Total {
        Total(self.0.saturating_add(m.minor()))
    }

    /// Wire form, same shape as [`Money`]'s but without its upper bound.
    pub fn to_wire(self) -> String {
        format!(
            "{}.{:02}",
            self.0 / MINOR_PER_MAJOR,
            self.0 % MINOR_PER_MAJOR
        )
    }

    /// Parses the wire form without the per-payment upper bound.
    pub fn parse(s: &str) -> Result<Self, MoneyError> {
        match Money::parse(s) {
            Ok(m) => Ok(Total(m.minor())),
            Err(MoneyError::TooLarge) => {
                let (whole, frac) = s.split_once('.').ok_or(MoneyError::WrongDecimals)?;
                if whole.len() > 17 {
                    return Err(MoneyError::TooLarge);
                }
                let mut minor: u64 = 0;
                for b in whole.bytes().chain(frac.bytes()) {
                    minor = minor * 10 + u64::from(b - b'0');
                }
                Ok(Total(minor))
            }
            Err(e) => Err(e),
        }
    }

    pub fn display(self, currency: Currency) -> String {
        let whole = (self.0 / MINOR_PER_MAJOR).to_string();
        let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
        for (i, c) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        format!(
            "{} {}.{:02}",
            currency.code(),
            grouped,
            self.0 % MINOR_PER_MAJOR
        )
    }
}

impl Serialize for Total {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_wire())
    }
}

impl<'de> Deserialize<'de> for Total {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Total::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_formats_wire_form() {
        let m = Money::parse("2000.00").unwrap();
        assert_eq!(m.minor(), 200_000);
        assert_eq!(m.to_wire(), "2000.00");
        assert_eq!(Money::parse("0.05").unwrap().minor(), 5);
        assert_eq!(Money::parse("1500.50").unwrap().to_wire(), "1500.50");
        assert_eq!(Money::parse("10000000.00").unwrap().minor(), MAX_MINOR);
    }

    #[test]
    fn display_form_groups_thousands() {
        let d = |s: &str| Money::parse(s).unwrap().display(Currency::Ngn);
        assert_eq!(d("2000.00"), "NGN 2,000.00");
        assert_eq!(d("0.50"), "NGN 0.50");
        assert_eq!(d("999.99"), "NGN 999.99");
        assert_eq!(d("1000.00"), "NGN 1,000.00");
        assert_eq!(d("10000000.00"), "NGN 10,000,000.00");
        assert_eq!(d("123456.78"), "NGN 123,456.78");
        assert_eq!(
            Total(12_345_678_900).display(Currency::Ngn),
            "NGN 123,456,789.00"
        );
    }

    #[test]
    fn each_malformed_amount_has_its_own_error() {
        use MoneyError::*;
        let cases: &[(&str, MoneyError)] = &[
            ("", Empty),
            ("-5.00", Negative),
            (" 5.00", Whitespace),
            ("5.00\n", Whitespace),
            ("2,000.00", ThousandsSeparator),
            ("2_000.00", ThousandsSeparator),
            ("2e3", Exponent),
            ("2.00E1", Exponent),
            ("2000", WrongDecimals),
            ("2000.0", WrongDecimals),
            ("2000.000", WrongDecimals),
            (".50", WrongDecimals),
            ("1.2.34", WrongDecimals),
            ("02000.00", LeadingZero),
            ("+5.00", InvalidCharacter('+')),
            ("5.0x", InvalidCharacter('x')),
            ("NaN", InvalidCharacter('N')),
            ("10000000.01", TooLarge),
            ("99999999999999999999.00", TooLarge),
        ];
        for (input, want) in cases {
            assert_eq!(Money::parse(input).as_ref(), Err(want), "input {input:?}");
        }
        assert_eq!(Money::parse_positive("0.00"), Err(Zero));
        assert_eq!(Money::parse("0.00"), Ok(Money::ZERO));
        assert_eq!(Money::from_minor(MAX_MINOR + 1), Err(TooLarge));
    }

    #[test]
    fn currencies_other_than_ngn_are_refused() {
        assert_eq!(Currency::parse("NGN"), Ok(Currency::Ngn));
        for bad in ["USD", "ngn", "", "NGN "] {
            assert!(matches!(
                Currency::parse(bad),
                Err(MoneyError::UnsupportedCurrency(_))
            ));
        }
        let e: Result<Currency, _> = serde_json::from_str("\"EUR\"");
        assert!(e.unwrap_err().to_string().contains("only NGN"));
    }

    #[test]
    fn serde_uses_wire_strings_and_refuses_numbers() {
        let m: Money = serde_json::from_str("\"12.34\"").unwrap();
        assert_eq!(m.minor(), 1234);
        assert_eq!(serde_json::to_string(&m).unwrap(), "\"12.34\"");
        assert!(serde_json::from_str::<Money>("12.34").is_err());
        let t: Total = serde_json::from_str("\"20000000.00\"").unwrap();
        assert_eq!(t.0, 2_000_000_000);
    }

    #[test]
    fn arithmetic_stays_in_range() {
        let a = Money::from_minor(MAX_MINOR).unwrap();
        assert_eq!(a.checked_add(Money::from_minor(1).unwrap()), None);
        assert_eq!(Money::ZERO.checked_sub(a), None);
        assert_eq!(Money::ZERO.saturating_sub(a), Money::ZERO);
    }

    proptest! {
        #[test]
        fn wire_round_trip(minor in 0u64..=MAX_MINOR) {
            let m = Money::from_minor(minor).unwrap();
            prop_assert_eq!(Money::parse(&m.to_wire()), Ok(m));
        }

        #[test]
        fn display_strips_back_to_wire(minor in 0u64..=MAX_MINOR) {
            let m = Money::from_minor(minor).unwrap();
            let shown = m.display(Currency::Ngn);
            let stripped = shown.trim_start_matches("NGN ").replace(',', "");
            prop_assert_eq!(stripped, m.to_wire());
        }

        #[test]
        fn whatever_parses_formats_back_identically(s in "[-+ ,.eE0-9a]{0,14}") {
            if let Ok(m) = Money::parse(&s) {
                prop_assert_eq!(m.to_wire(), s);
            }
        }
    }
}
