//! Client → server messages and their strict parser.
//!
//! Sans-IO: [`parse_client_message`] takes the bytes of one text frame and returns a typed
//! [`ClientMessage`] or an [`InboundError`] that carries the [`ErrorCode`] to answer with and,
//! whenever it could be read, the message's `id` so the error reply can echo it.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codes::{ErrorCode, MAX_ERROR_DETAIL_CHARS, MAX_INBOUND_MESSAGE_BYTES};
use crate::topic::{Topic, TopicError};

/// The optional correlation `id` of a client message: a string or an integer, echoed verbatim
/// on the reply.
///
/// Integers must fit in an `i64`; a fractional or out-of-range number is `invalid-message`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MessageId {
    /// An integer id, e.g. `"id":1`.
    Int(i64),
    /// A string id, e.g. `"id":"a7"`.
    Str(String),
}

impl From<i64> for MessageId {
    fn from(value: i64) -> Self {
        MessageId::Int(value)
    }
}

impl From<&str> for MessageId {
    fn from(value: &str) -> Self {
        MessageId::Str(value.to_owned())
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageId::Int(value) => write!(f, "{value}"),
            MessageId::Str(value) => f.write_str(value),
        }
    }
}

impl Serialize for MessageId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            MessageId::Int(value) => serializer.serialize_i64(*value),
            MessageId::Str(value) => serializer.serialize_str(value),
        }
    }
}

impl<'de> Deserialize<'de> for MessageId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;

        impl Visitor<'_> for IdVisitor {
            type Value = MessageId;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an integer")
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<MessageId, E> {
                Ok(MessageId::Int(value))
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<MessageId, E> {
                i64::try_from(value)
                    .map(MessageId::Int)
                    .map_err(|_| E::custom("integer id out of range"))
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<MessageId, E> {
                Ok(MessageId::Str(value.to_owned()))
            }

            fn visit_string<E: de::Error>(self, value: String) -> Result<MessageId, E> {
                Ok(MessageId::Str(value))
            }
        }

        deserializer.deserialize_any(IdVisitor)
    }
}

/// A parsed, valid client message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientMessage {
    /// `{"type":"subscribe","topic":"event:<uuid>","id":…}`
    Subscribe {
        /// The canonical topic.
        topic: Topic,
        /// The id to echo, when given.
        id: Option<MessageId>,
    },
    /// `{"type":"unsubscribe","topic":"event:<uuid>","id":…}`
    Unsubscribe {
        /// The canonical topic.
        topic: Topic,
        /// The id to echo, when given.
        id: Option<MessageId>,
    },
}

impl ClientMessage {
    /// The message's topic.
    pub fn topic(&self) -> &Topic {
        match self {
            ClientMessage::Subscribe { topic, .. } | ClientMessage::Unsubscribe { topic, .. } => {
                topic
            }
        }
    }

    /// The message's id, when given.
    pub fn id(&self) -> Option<&MessageId> {
        match self {
            ClientMessage::Subscribe { id, .. } | ClientMessage::Unsubscribe { id, .. } => {
                id.as_ref()
            }
        }
    }

    /// Serialises the message as JSON (what a client sends).
    pub fn to_json(&self) -> String {
        let (kind, topic, id) = match self {
            ClientMessage::Subscribe { topic, id } => ("subscribe", topic, id),
            ClientMessage::Unsubscribe { topic, id } => ("unsubscribe", topic, id),
        };
        let wire = OutboundClientMessage {
            kind,
            topic: topic.as_str(),
            id: id.as_ref(),
        };
        // Serialising a struct of strings and integers into a String cannot fail.
        serde_json::to_string(&wire).unwrap_or_default()
    }
}

#[derive(Serialize)]
struct OutboundClientMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    topic: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a MessageId>,
}

/// Why an inbound message was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InboundErrorKind {
    /// The message is larger than [`MAX_INBOUND_MESSAGE_BYTES`].
    TooLarge {
        /// Its size in bytes.
        len: usize,
    },
    /// A binary (non-text) frame.
    NotText,
    /// A text message that is not valid UTF-8.
    NotUtf8,
    /// Not JSON, not an object, unknown/missing `type`, unknown field, wrong type, duplicate
    /// field: the parser's description (cut to [`MAX_ERROR_DETAIL_CHARS`]).
    Malformed(String),
    /// A valid `subscribe`/`unsubscribe` without a `topic`.
    MissingTopic,
    /// The topic is not `event:<uuid>`.
    InvalidTopic(TopicError),
}

/// An inbound message that cannot be acted on, with the code and the id for the error reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.detail())]
pub struct InboundError {
    /// The message's `id`, when it could be read despite the error.
    pub id: Option<MessageId>,
    /// What was wrong.
    pub kind: InboundErrorKind,
}

impl InboundError {
    /// The error for a binary frame (the protocol is text only).
    pub fn not_text() -> Self {
        InboundError {
            id: None,
            kind: InboundErrorKind::NotText,
        }
    }

    /// The error for a text message that is not valid UTF-8.
    pub fn not_utf8() -> Self {
        InboundError {
            id: None,
            kind: InboundErrorKind::NotUtf8,
        }
    }

    /// The `code` of the `error` reply.
    pub fn code(&self) -> ErrorCode {
        match self.kind {
            InboundErrorKind::InvalidTopic(_) => ErrorCode::InvalidTopic,
            _ => ErrorCode::InvalidMessage,
        }
    }

    /// A short, client-safe description for the `message` of the `error` reply.
    pub fn detail(&self) -> String {
        match &self.kind {
            InboundErrorKind::TooLarge { len } => {
                format!("message of {len} bytes is over the {MAX_INBOUND_MESSAGE_BYTES} byte limit")
            }
            InboundErrorKind::NotText => "only text frames are accepted".to_owned(),
            InboundErrorKind::NotUtf8 => "the text is not valid UTF-8".to_owned(),
            InboundErrorKind::Malformed(detail) => detail.clone(),
            InboundErrorKind::MissingTopic => "missing field `topic`".to_owned(),
            InboundErrorKind::InvalidTopic(error) => error.to_string(),
        }
    }
}

/// The message types a client may send.
#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum ClientType {
    Subscribe,
    Unsubscribe,
}

/// The strict shape of a client message.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClientMessage<'a> {
    #[serde(rename = "type")]
    kind: ClientType,
    #[serde(borrow, default)]
    topic: Option<Cow<'a, str>>,
    /// Absent → `None`; `null` (neither a string nor an integer) is a wrong type.
    #[serde(default, deserialize_with = "present_id")]
    id: Option<MessageId>,
}

/// Deserialises a present `id`: a string or an integer, never `null`.
fn present_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<MessageId>, D::Error> {
    MessageId::deserialize(deserializer).map(Some)
}

/// A lenient shape used only to recover the `id` of a message that failed the strict parse.
#[derive(Deserialize)]
struct IdOnly {
    #[serde(default)]
    id: Option<MessageId>,
}

/// Parses one inbound text message strictly.
///
/// Rules (live-protocol.md): over [`MAX_INBOUND_MESSAGE_BYTES`], not JSON, not an object,
/// missing or unknown `type`, an unknown field, a field of the wrong type, a duplicate field, a
/// missing `topic` → `invalid-message`; a topic that is not `event:<uuid>` → `invalid-topic`.
/// Uppercase hex in the topic is normalised. When the message fails but its `id` can still be
/// read (the JSON is a syntactically valid object with a string/integer `id`), the error
/// carries it.
///
/// # Errors
/// An [`InboundError`] whose [`code`](InboundError::code) is the reply's error code.
///
/// ```
/// use live_protocol::{parse_client_message, ClientMessage, ErrorCode, MessageId};
/// let msg = parse_client_message(
///     br#"{"type":"subscribe","topic":"event:8D1F0C2A-5B7E-4C1D-9A3F-2E6B8C0D4F11","id":1}"#,
/// )
/// .unwrap();
/// assert_eq!(msg.topic().as_str(), "event:8d1f0c2a-5b7e-4c1d-9a3f-2e6b8c0d4f11");
/// assert_eq!(msg.id(), Some(&MessageId::Int(1)));
///
/// let err = parse_client_message(br#"{"type":"subscribe","topic":"x","id":"a"}"#).unwrap_err();
/// assert_eq!(err.code(), ErrorCode::InvalidTopic);
/// assert_eq!(err.id, Some(MessageId::Str("a".into())));
/// ```
pub fn parse_client_message(text: &[u8]) -> Result<ClientMessage, InboundError> {
    if text.len() > MAX_INBOUND_MESSAGE_BYTES {
        // Deliberately not parsed at all, not even for its id.
        return Err(InboundError {
            id: None,
            kind: InboundErrorKind::TooLarge { len: text.len() },
        });
    }
    if std::str::from_utf8(text).is_err() {
        return Err(InboundError::not_utf8());
    }
    let raw: RawClientMessage<'_> = match serde_json::from_slice(text) {
        Ok(raw) => raw,
        Err(error) => {
            let id = serde_json::from_slice::<IdOnly>(text)
                .ok()
                .and_then(|lenient| lenient.id);
            return Err(InboundError {
                id,
                kind: InboundErrorKind::Malformed(truncate(error.to_string())),
            });
        }
    };
    let Some(topic) = raw.topic else {
        return Err(InboundError {
            id: raw.id,
            kind: InboundErrorKind::MissingTopic,
        });
    };
    let topic = match Topic::parse(&topic) {
        Ok(topic) => topic,
        Err(error) => {
            return Err(InboundError {
                id: raw.id,
                kind: InboundErrorKind::InvalidTopic(error),
            });
        }
    };
    Ok(match raw.kind {
        ClientType::Subscribe => ClientMessage::Subscribe { topic, id: raw.id },
        ClientType::Unsubscribe => ClientMessage::Unsubscribe { topic, id: raw.id },
    })
}

/// Cuts a parser message to [`MAX_ERROR_DETAIL_CHARS`] characters (it may quote client input).
fn truncate(mut detail: String) -> String {
    if let Some((cut, _)) = detail.char_indices().nth(MAX_ERROR_DETAIL_CHARS) {
        detail.truncate(cut);
        detail.push('…');
    }
    detail
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "8d1f0c2a-5b7e-4c1d-9a3f-2e6b8c0d4f11";

    fn topic() -> Topic {
        Topic::for_event(ID).unwrap()
    }

    fn err(text: &str) -> InboundError {
        parse_client_message(text.as_bytes()).unwrap_err()
    }

    #[test]
    fn subscribe_and_unsubscribe_parse() {
        let sub = format!(r#"{{"type":"subscribe","topic":"event:{ID}","id":1}}"#);
        assert_eq!(
            parse_client_message(sub.as_bytes()).unwrap(),
            ClientMessage::Subscribe {
                topic: topic(),
                id: Some(MessageId::Int(1))
            }
        );
        let unsub = format!(r#"{{"id":"x-2","topic":"event:{ID}","type":"unsubscribe"}}"#);
        assert_eq!(
            parse_client_message(unsub.as_bytes()).unwrap(),
            ClientMessage::Unsubscribe {
                topic: topic(),
                id: Some(MessageId::Str("x-2".into()))
            }
        );
        let no_id = format!(" {{ \"type\" : \"subscribe\", \"topic\": \"event:{ID}\" }}\n");
        assert_eq!(
            parse_client_message(no_id.as_bytes()).unwrap(),
            ClientMessage::Subscribe {
                topic: topic(),
                id: None
            }
        );
    }

    #[test]
    fn uppercase_topic_is_normalised() {
        let text = format!(
            r#"{{"type":"subscribe","topic":"event:{}"}}"#,
            ID.to_uppercase()
        );
        assert_eq!(
            parse_client_message(text.as_bytes()).unwrap().topic(),
            &topic()
        );
    }

    #[test]
    fn escaped_topic_is_accepted() {
        // JSON escapes are decoded before the topic is checked.
        let text = format!(r#"{{"type":"subscribe","topic":"event\u003a{ID}"}}"#);
        assert_eq!(
            parse_client_message(text.as_bytes()).unwrap().topic(),
            &topic()
        );
    }

    #[test]
    fn id_forms() {
        let ok = |id: &str| {
            let text = format!(r#"{{"type":"subscribe","topic":"event:{ID}","id":{id}}}"#);
            parse_client_message(text.as_bytes()).map(|m| m.id().cloned())
        };
        assert_eq!(ok("0").unwrap(), Some(MessageId::Int(0)));
        assert_eq!(ok("-7").unwrap(), Some(MessageId::Int(-7)));
        assert_eq!(
            ok("9223372036854775807").unwrap(),
            Some(MessageId::Int(i64::MAX))
        );
        assert_eq!(ok(r#""""#).unwrap(), Some(MessageId::Str(String::new())));
        // `null` is neither a string nor an integer: a wrong type, not an absent id.
        for bad in [
            "null",
            "1.5",
            "1e3",
            "true",
            "[1]",
            "{}",
            "9223372036854775808",
        ] {
            let error = ok(bad).unwrap_err();
            assert_eq!(error.code(), ErrorCode::InvalidMessage, "{bad}");
            assert_eq!(error.id, None, "{bad}");
        }
    }

    #[test]
    fn unknown_field_is_invalid_message_with_id() {
        let e = err(&format!(
            r#"{{"type":"subscribe","topic":"event:{ID}","id":5,"extra":true}}"#
        ));
        assert_eq!(e.code(), ErrorCode::InvalidMessage);
        assert_eq!(e.id, Some(MessageId::Int(5)));
        assert!(e.detail().contains("extra"), "{}", e.detail());
    }

    #[test]
    fn wrong_types_are_invalid_message() {
        for text in [
            r#"{"type":1,"topic":"event:x","id":3}"#,
            r#"{"type":"subscribe","topic":7,"id":3}"#,
            r#"{"type":"subscribe","topic":["event:x"],"id":3}"#,
            r#"{"type":null,"id":3}"#,
        ] {
            let e = err(text);
            assert_eq!(e.code(), ErrorCode::InvalidMessage, "{text}");
            assert_eq!(e.id, Some(MessageId::Int(3)), "{text}");
        }
    }

    #[test]
    fn unknown_or_missing_type_is_invalid_message() {
        for text in [
            format!(r#"{{"type":"publish","topic":"event:{ID}","id":"q"}}"#),
            format!(r#"{{"type":"Subscribe","topic":"event:{ID}","id":"q"}}"#),
            format!(r#"{{"topic":"event:{ID}","id":"q"}}"#),
            r#"{"id":"q"}"#.to_owned(),
        ] {
            let e = err(&text);
            assert_eq!(e.code(), ErrorCode::InvalidMessage, "{text}");
            assert_eq!(e.id, Some(MessageId::Str("q".into())), "{text}");
        }
    }

    #[test]
    fn duplicate_field_is_invalid_message() {
        let e = err(&format!(
            r#"{{"type":"subscribe","type":"unsubscribe","topic":"event:{ID}"}}"#
        ));
        assert_eq!(e.code(), ErrorCode::InvalidMessage);
    }

    #[test]
    fn non_objects_and_garbage_are_invalid_message_without_id() {
        for text in [
            "",
            " ",
            "null",
            "1",
            "\"subscribe\"",
            "[]",
            "[{\"id\":1}]",
            "{",
            "{\"id\":1",
            "{\"id\":1,}",
            "\u{0}",
            "{\"type\":\"subscribe\"} trailing",
        ] {
            let e = err(text);
            assert_eq!(e.code(), ErrorCode::InvalidMessage, "{text:?}");
            assert_eq!(e.id, None, "{text:?}");
        }
        let e = parse_client_message(&[0xff, 0xfe, b'{']).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidMessage);
    }

    #[test]
    fn missing_topic_is_invalid_message() {
        let e = err(r#"{"type":"subscribe","id":9}"#);
        assert_eq!(e.kind, InboundErrorKind::MissingTopic);
        assert_eq!(e.code(), ErrorCode::InvalidMessage);
        assert_eq!(e.id, Some(MessageId::Int(9)));
        let e = err(r#"{"type":"unsubscribe","topic":null}"#);
        assert_eq!(e.kind, InboundErrorKind::MissingTopic);
    }

    #[test]
    fn bad_topic_is_invalid_topic_with_id() {
        for topic in [
            "event:nope",
            "Event:8d1f0c2a-5b7e-4c1d-9a3f-2e6b8c0d4f11",
            "8d1f0c2a-5b7e-4c1d-9a3f-2e6b8c0d4f11",
            "event:8d1f0c2a5b7e4c1d9a3f2e6b8c0d4f11",
            "",
        ] {
            let e = err(&format!(
                r#"{{"type":"unsubscribe","topic":"{topic}","id":"t"}}"#
            ));
            assert_eq!(e.code(), ErrorCode::InvalidTopic, "{topic}");
            assert_eq!(e.id, Some(MessageId::Str("t".into())));
        }
    }

    #[test]
    fn size_limit_is_inclusive_at_4_kib() {
        let base = format!(r#"{{"type":"subscribe","topic":"event:{ID}","id":""}}"#);
        let pad = MAX_INBOUND_MESSAGE_BYTES - base.len();
        let at_limit = format!(
            r#"{{"type":"subscribe","topic":"event:{ID}","id":"{}"}}"#,
            "a".repeat(pad)
        );
        assert_eq!(at_limit.len(), MAX_INBOUND_MESSAGE_BYTES);
        assert!(parse_client_message(at_limit.as_bytes()).is_ok());
        let over = format!(
            r#"{{"type":"subscribe","topic":"event:{ID}","id":"{}"}}"#,
            "a".repeat(pad + 1)
        );
        let e = parse_client_message(over.as_bytes()).unwrap_err();
        assert_eq!(e.kind, InboundErrorKind::TooLarge { len: 4097 });
        assert_eq!(e.code(), ErrorCode::InvalidMessage);
        assert_eq!(e.id, None);
    }

    #[test]
    fn not_text_is_invalid_message() {
        assert_eq!(InboundError::not_text().code(), ErrorCode::InvalidMessage);
    }

    #[test]
    fn text_that_is_not_utf8_is_invalid_message() {
        let error =
            parse_client_message(b"{\"type\":\"subscribe\",\"topic\":\"\xff\"}").unwrap_err();
        assert_eq!(error.kind, InboundErrorKind::NotUtf8);
        assert_eq!(error.code(), ErrorCode::InvalidMessage);
        assert_eq!(error.detail(), "the text is not valid UTF-8");
    }

    #[test]
    fn details_are_bounded() {
        let long_type = "x".repeat(3000);
        let e = err(&format!(r#"{{"type":"{long_type}"}}"#));
        assert!(e.detail().chars().count() <= MAX_ERROR_DETAIL_CHARS + 1);
    }

    #[test]
    fn to_json_round_trips() {
        for message in [
            ClientMessage::Subscribe {
                topic: topic(),
                id: Some(MessageId::Int(1)),
            },
            ClientMessage::Unsubscribe {
                topic: topic(),
                id: Some(MessageId::Str("z".into())),
            },
            ClientMessage::Subscribe {
                topic: topic(),
                id: None,
            },
        ] {
            let json = message.to_json();
            assert_eq!(parse_client_message(json.as_bytes()).unwrap(), message);
        }
        assert_eq!(
            ClientMessage::Subscribe {
                topic: topic(),
                id: Some(MessageId::Int(1))
            }
            .to_json(),
            format!(r#"{{"type":"subscribe","topic":"event:{ID}","id":1}}"#)
        );
    }
}
