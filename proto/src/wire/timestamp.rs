//! Timestamps on the wire: [`Timestamp`], RFC 3339 written in UTC.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A point in time on the wire: RFC 3339, written in UTC with a `Z` suffix.
/// Any RFC 3339 offset is accepted when reading and converted to UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(OffsetDateTime);

/// Why a timestamp was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("timestamp is not RFC 3339: {0}")]
    NotRfc3339(String),
    #[error("epoch seconds out of range: {0}")]
    OutOfRange(i64),
}

impl Timestamp {
    /// The current wall-clock time, truncated to whole seconds.
    pub fn now() -> Timestamp {
        let now = OffsetDateTime::now_utc();
        Timestamp(now.replace_nanosecond(0).unwrap_or(now))
    }

    pub fn from_unix(secs: i64) -> Result<Timestamp, TimestampError> {
        OffsetDateTime::from_unix_timestamp(secs)
            .map(Timestamp)
            .map_err(|_| TimestampError::OutOfRange(secs))
    }

    pub fn from_offset_date_time(t: OffsetDateTime) -> Timestamp {
        Timestamp(t.to_offset(time::UtcOffset::UTC))
    }

    pub fn parse(s: &str) -> Result<Timestamp, TimestampError> {
        OffsetDateTime::parse(s, &Rfc3339)
            .map(Timestamp::from_offset_date_time)
            .map_err(|_| TimestampError::NotRfc3339(s.chars().take(40).collect()))
    }

    pub fn unix(self) -> i64 {
        self.0.unix_timestamp()
    }

    pub fn as_offset_date_time(self) -> OffsetDateTime {
        self.0
    }

    /// This time plus whole seconds (saturating at the representable range).
    pub fn plus_secs(self, secs: i64) -> Timestamp {
        Timestamp(
            self.0
                .checked_add(time::Duration::seconds(secs))
                .unwrap_or(self.0),
        )
    }

    pub fn to_wire(self) -> String {
        // Formatting a UTC OffsetDateTime with a four-digit year cannot fail;
        // fall back to the unix form rather than panic if it ever did.
        self.0
            .format(&Rfc3339)
            .unwrap_or_else(|_| self.0.unix_timestamp().to_string())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_wire())
    }
}

impl std::str::FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timestamp::parse(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_wire())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::test_util::ts;
    use serde_json::json;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = ts("2026-11-21T11:02:01+01:00");
        assert_eq!(t.to_wire(), "2026-11-21T10:02:01Z");
        assert_eq!(t, ts("2026-11-21T10:02:01Z"));
        assert_eq!(t.unix(), 1_795_255_321);
        assert_eq!(Timestamp::from_unix(t.unix()).unwrap(), t);
        assert!(Timestamp::parse("2026-11-21 10:02:01").is_err());
        assert!(Timestamp::parse("yesterday").is_err());
        assert!(serde_json::from_value::<Timestamp>(json!(1_795_255_321)).is_err());
        assert_eq!(t.plus_secs(120).to_wire(), "2026-11-21T10:04:01Z");
        let now = Timestamp::now();
        assert_eq!(now.as_offset_date_time().nanosecond(), 0);
    }
}
