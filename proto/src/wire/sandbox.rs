//! SPEC 4.2 sandbox scenarios: [`Scenario`] and the requests that arm and
//! list them.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ids::TerminalId;

/// A sandbox scenario. On the wire a snake_case string; `slow:<ms>` carries
/// its delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    Decline,
    InsufficientFunds,
    AuthTimeout,
    Http500,
    /// 409 `sandbox_refused`, nothing recorded: a permanent refusal the
    /// terminal parks (then `pos-agent queue --retry`).
    Http409,
    DropAfterCommit,
    Slow {
        ms: u64,
    },
}

/// Why a scenario name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown scenario {0:?}: expected decline, insufficient_funds, auth_timeout, http_500, http_409, drop_after_commit or slow:<ms>"
)]
pub struct ScenarioError(pub String);

impl Scenario {
    pub const NAMES: [&'static str; 7] = [
        "decline",
        "insufficient_funds",
        "auth_timeout",
        "http_500",
        "http_409",
        "drop_after_commit",
        "slow:<ms>",
    ];

    pub fn parse(s: &str) -> Result<Scenario, ScenarioError> {
        Ok(match s {
            "decline" => Scenario::Decline,
            "insufficient_funds" => Scenario::InsufficientFunds,
            "auth_timeout" => Scenario::AuthTimeout,
            "http_500" => Scenario::Http500,
            "http_409" => Scenario::Http409,
            "drop_after_commit" => Scenario::DropAfterCommit,
            other => match other.strip_prefix("slow:") {
                Some(ms)
                    if !ms.is_empty()
                        && ms.len() <= 7
                        && ms.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    Scenario::Slow {
                        ms: ms.parse().map_err(|_| ScenarioError(other.into()))?,
                    }
                }
                _ => return Err(ScenarioError(other.chars().take(40).collect())),
            },
        })
    }

    pub fn name(&self) -> String {
        match self {
            Scenario::Decline => "decline".into(),
            Scenario::InsufficientFunds => "insufficient_funds".into(),
            Scenario::AuthTimeout => "auth_timeout".into(),
            Scenario::Http500 => "http_500".into(),
            Scenario::Http409 => "http_409".into(),
            Scenario::DropAfterCommit => "drop_after_commit".into(),
            Scenario::Slow { ms } => format!("slow:{ms}"),
        }
    }
}

impl Serialize for Scenario {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for Scenario {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Scenario::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn one() -> u32 {
    1
}

/// `POST /v1/sandbox/scenarios`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SetScenario {
    pub terminal_id: TerminalId,
    pub scenario: Scenario,
    #[serde(default = "one")]
    #[cfg_attr(feature = "openapi", schema(maximum = 10000))]
    pub count: u32,
}

/// A scenario armed for a terminal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActiveScenario {
    pub terminal_id: TerminalId,
    pub scenario: Scenario,
    pub remaining: u32,
}

/// `GET /v1/sandbox/scenarios`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Scenarios {
    pub available: Vec<String>,
    pub active: Vec<ActiveScenario>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::wire::test_util::round_trip;

    #[test]
    fn sandbox_scenarios() {
        let s: SetScenario = round_trip(
            json!({"terminal_id": "pos_3f1e2d_001", "scenario": "slow:250", "count": 2}),
        );
        assert_eq!(s.scenario, Scenario::Slow { ms: 250 });
        for name in [
            "decline",
            "insufficient_funds",
            "auth_timeout",
            "http_500",
            "drop_after_commit",
        ] {
            let sc = Scenario::parse(name).unwrap();
            assert_eq!(sc.name(), name);
        }
        for bad in ["slow:", "slow:-1", "slow:99999999", "explode"] {
            assert!(Scenario::parse(bad).is_err(), "{bad}");
        }
        let d: SetScenario =
            serde_json::from_value(json!({"terminal_id": "t1", "scenario": "decline"})).unwrap();
        assert_eq!(d.count, 1);
        round_trip::<Scenarios>(json!({
            "available": ["decline"],
            "active": [{"terminal_id": "t1", "scenario": "http_500", "remaining": 1}]
        }));
    }
}
