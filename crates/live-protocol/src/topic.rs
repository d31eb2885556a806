//! Topics: `event:<uuid>`, the only kind of topic the protocol knows.
//!
//! A [`Topic`] is always in canonical form: the exact prefix `event:` followed by a lowercase,
//! hyphenated UUID (`8-4-4-4-12` hex digits). Uppercase hex is accepted on input and normalised,
//! so two spellings of one event are one topic.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The exact topic prefix.
pub const EVENT_TOPIC_PREFIX: &str = "event:";

/// Length of a canonical hyphenated UUID.
const UUID_LEN: usize = 36;

/// Positions of the hyphens in a canonical hyphenated UUID.
const HYPHENS: [usize; 4] = [8, 13, 18, 23];

/// A subscription topic, `event:<uuid>` in canonical lowercase hyphenated form.
///
/// ```
/// use live_protocol::Topic;
/// let topic = Topic::parse("event:8D1F0C2A-5B7E-4C1D-9A3F-2E6B8C0D4F11").unwrap();
/// assert_eq!(topic.as_str(), "event:8d1f0c2a-5b7e-4c1d-9a3f-2e6b8c0d4f11");
/// assert_eq!(topic.event_id(), "8d1f0c2a-5b7e-4c1d-9a3f-2e6b8c0d4f11");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(Box<str>);

/// Why a string is not a valid topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// The string does not start with exactly `event:`.
    #[error("topic must start with `event:`")]
    Prefix,
    /// The part after `event:` is not a hyphenated UUID.
    #[error("topic must be `event:` followed by a hyphenated uuid (8-4-4-4-12 hex digits)")]
    Uuid,
}

impl Topic {
    /// Parses `event:<uuid>`; uppercase hex digits are accepted and normalised to lowercase.
    ///
    /// # Errors
    /// [`TopicError::Prefix`] when the prefix is not exactly `event:`, [`TopicError::Uuid`] when
    /// the rest is not a canonical hyphenated UUID (no braces, no `urn:`, no simple form).
    pub fn parse(topic: &str) -> Result<Self, TopicError> {
        let id = topic
            .strip_prefix(EVENT_TOPIC_PREFIX)
            .ok_or(TopicError::Prefix)?;
        Self::for_event(id)
    }

    /// Builds the topic of an event from its id (a hyphenated UUID, any case).
    ///
    /// # Errors
    /// [`TopicError::Uuid`] when `event_id` is not a canonical hyphenated UUID.
    pub fn for_event(event_id: &str) -> Result<Self, TopicError> {
        let bytes = event_id.as_bytes();
        if bytes.len() != UUID_LEN {
            return Err(TopicError::Uuid);
        }
        let mut canonical = String::with_capacity(EVENT_TOPIC_PREFIX.len() + UUID_LEN);
        canonical.push_str(EVENT_TOPIC_PREFIX);
        for (index, &byte) in bytes.iter().enumerate() {
            if HYPHENS.contains(&index) {
                if byte != b'-' {
                    return Err(TopicError::Uuid);
                }
                canonical.push('-');
            } else if byte.is_ascii_hexdigit() {
                canonical.push(char::from(byte.to_ascii_lowercase()));
            } else {
                return Err(TopicError::Uuid);
            }
        }
        Ok(Self(canonical.into_boxed_str()))
    }

    /// The canonical topic, `event:<lowercase uuid>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The event id part (lowercase hyphenated UUID), e.g. for `/items/events/<id>`.
    pub fn event_id(&self) -> &str {
        // Invariant: a Topic always starts with the prefix (only built by `for_event`).
        &self.0[EVENT_TOPIC_PREFIX.len()..]
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl AsRef<str> for Topic {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Topic {
    type Err = TopicError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Topic {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Topic {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "8d1f0c2a-5b7e-4c1d-9a3f-2e6b8c0d4f11";

    #[test]
    fn canonical_topic_round_trips() {
        let topic = Topic::parse(&format!("event:{ID}")).unwrap();
        assert_eq!(topic.as_str(), format!("event:{ID}"));
        assert_eq!(topic.event_id(), ID);
        assert_eq!(topic.to_string(), format!("event:{ID}"));
    }

    #[test]
    fn uppercase_is_normalised() {
        let upper = format!("event:{}", ID.to_uppercase());
        let topic = Topic::parse(&upper).unwrap();
        assert_eq!(topic.as_str(), format!("event:{ID}"));
        assert_eq!(topic, Topic::for_event(ID).unwrap());
    }

    #[test]
    fn prefix_must_be_exact() {
        for bad in [
            format!("Event:{ID}"),
            format!("EVENT:{ID}"),
            format!("events:{ID}"),
            format!(" event:{ID}"),
            ID.to_owned(),
            String::new(),
        ] {
            assert_eq!(Topic::parse(&bad), Err(TopicError::Prefix), "{bad:?}");
        }
    }

    #[test]
    fn uuid_must_be_canonical_hyphenated() {
        for bad in [
            String::new(),
            ID.replace('-', ""),
            format!("{{{ID}}}"),
            format!("urn:uuid:{ID}"),
            format!("{ID} "),
            format!("{ID}0"),
            ID[..35].to_owned(),
            "8d1f0c2a-5b7e-4c1d-9a3f-2e6b8c0d4f1g".to_owned(),
            "8d1f0c2a_5b7e-4c1d-9a3f-2e6b8c0d4f11".to_owned(),
            "8d1f0c2a-5b7e4-c1d-9a3f-2e6b8c0d4f11".to_owned(),
            "8d1f0c2a-5b7e-4c1d-9a3f-2e6b8c0d4f1é".to_owned(),
        ] {
            assert_eq!(
                Topic::parse(&format!("event:{bad}")),
                Err(TopicError::Uuid),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn serde_uses_the_canonical_string() {
        let topic: Topic =
            serde_json::from_str(&format!("\"event:{}\"", ID.to_uppercase())).unwrap();
        assert_eq!(
            serde_json::to_string(&topic).unwrap(),
            format!("\"event:{ID}\"")
        );
        assert!(serde_json::from_str::<Topic>("\"event:nope\"").is_err());
    }
}
