//! A JSON object kept as its members, in order, each value its original bytes: what the
//! body rewrites (enforced defaults, isolation's owner labels) work on, so that every member
//! they do not change is forwarded byte for byte. Members are found by ASCII-folded name, as
//! Go's `encoding/json` matches struct fields.

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;
use std::fmt;

/// A JSON object as its members, in order, with their values' original bytes.
#[derive(Debug)]
pub struct Members(pub Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Members, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, Box<RawValue>>()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

impl Serialize for Members {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl Members {
    /// The index of the member the daemon reads as field `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.0
            .iter()
            .position(|(k, _)| k.eq_ignore_ascii_case(name))
    }

    /// Sets field `name` to `value`, replacing the member the daemon would read for it.
    pub fn set(&mut self, name: &str, value: Box<RawValue>) {
        match self.position(name) {
            Some(i) => self.0[i] = (name.to_owned(), value),
            None => self.0.push((name.to_owned(), value)),
        }
    }
}
