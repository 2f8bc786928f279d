//! The screen state the virtual device reports: opaque to hal.

use std::fmt;
use std::sync::Arc;

use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// What the shown frame means, as the drawing side serialized it (the
/// agent serializes its `ui::ScreenState`): a JSON object whose members
/// lead the answer of `GET /screen`, in their order. hal does not look
/// inside.
#[derive(Clone)]
pub struct ScreenStateJson {
    /// The object as serialized (compact).
    json: Arc<str>,
    /// Its members in order, each value as serialized.
    members: Arc<[(String, Box<RawValue>)]>,
}

/// Why a value cannot be a screen state.
#[derive(Debug, thiserror::Error)]
pub enum ScreenStateError {
    #[error("screen state does not serialize to a JSON object: {0}")]
    NotAnObject(#[from] serde_json::Error),
}

impl ScreenStateJson {
    /// Serializes `state`, which must serialize to a JSON object.
    pub fn new<S: Serialize + ?Sized>(state: &S) -> Result<Self, ScreenStateError> {
        let json = serde_json::to_string(state)?;
        let Members(members) = serde_json::from_str(&json)?;
        Ok(ScreenStateJson {
            json: json.into(),
            members: members.into(),
        })
    }

    /// `{}`: no state was set.
    pub fn empty() -> Self {
        ScreenStateJson {
            json: "{}".into(),
            members: Arc::new([]),
        }
    }

    /// The object as compact JSON text.
    pub fn as_str(&self) -> &str {
        &self.json
    }

    /// Reads the state back as `T` (e.g. `ui::ScreenState`).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.json)
    }
}

impl Default for ScreenStateJson {
    fn default() -> Self {
        ScreenStateJson::empty()
    }
}

impl PartialEq for ScreenStateJson {
    fn eq(&self, other: &Self) -> bool {
        self.json == other.json
    }
}

impl Eq for ScreenStateJson {}

impl fmt::Debug for ScreenStateJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.json)
    }
}

/// The same object again, member by member, byte for byte (so it can be
/// flattened into a larger answer).
impl Serialize for ScreenStateJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.members.len()))?;
        for (key, value) in self.members.iter() {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// A JSON object's members in document order.
struct Members(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;

        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }

        deserializer.deserialize_map(MembersVisitor)
    }
}
