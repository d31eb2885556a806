//! Server → client messages: typed DTOs with serde, plus a fast writer for `position`.
//!
//! The gateway serialises each `position` once per topic and shares the bytes among all the
//! connections subscribed to it, so [`write_position`] writes straight into a buffer without
//! building a [`ServerMessage`]; it produces byte-for-byte what serde produces (tested).

use bytes::Bytes;
use serde::ser::Serializer as _;
use serde::{Deserialize, Serialize};

use crate::codes::ErrorCode;
use crate::inbound::MessageId;
use crate::topic::Topic;

/// One device's position: the body of a `position` message and one row of a snapshot.
///
/// `speed` (km/h) and `course` (degrees, the record's angle) are omitted on the wire when 0 or
/// absent, so a value of `Some(0)` reads back as `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Position {
    /// The tracker's IMEI.
    #[serde(rename = "deviceId")]
    pub device_id: String,
    /// The record's timestamp, epoch milliseconds (UTC).
    pub ts: i64,
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// Speed in km/h; omitted when 0 or absent.
    #[serde(default, skip_serializing_if = "absent_or_zero")]
    pub speed: Option<u16>,
    /// Course in degrees (the record's angle); omitted when 0 or absent.
    #[serde(default, skip_serializing_if = "absent_or_zero")]
    pub course: Option<u16>,
}

// serde's `skip_serializing_if` hands the field by reference.
#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "signature fixed by serde"
)]
fn absent_or_zero(value: &Option<u16>) -> bool {
    matches!(value, None | Some(0))
}

impl Position {
    /// A borrowed view for [`write_position`].
    pub fn as_view(&self) -> PositionView<'_> {
        PositionView {
            device_id: &self.device_id,
            ts: self.ts,
            lat: self.lat,
            lon: self.lon,
            speed: self.speed,
            course: self.course,
        }
    }
}

/// A borrowed position, for writing a `position` message without allocating.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PositionView<'a> {
    /// The tracker's IMEI.
    pub device_id: &'a str,
    /// Epoch milliseconds.
    pub ts: i64,
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// Speed in km/h (omitted when 0 or absent).
    pub speed: Option<u16>,
    /// Course in degrees (omitted when 0 or absent).
    pub course: Option<u16>,
}

impl PositionView<'_> {
    /// An owned copy.
    pub fn to_owned_position(&self) -> Position {
        Position {
            device_id: self.device_id.to_owned(),
            ts: self.ts,
            lat: self.lat,
            lon: self.lon,
            speed: self.speed,
            course: self.course,
        }
    }
}

/// A server → client message.
///
/// Serialises exactly as live-protocol.md: `type` first, then the fields in the spec's order,
/// `id` only when the client gave one, `topic` on `error` only when it relates to one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum ServerMessage {
    /// The subscription is registered; `snapshot` holds the latest position of every device
    /// of the event (possibly empty).
    Subscribed {
        /// The canonical topic.
        topic: Topic,
        /// The subscribe message's id, when it had one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<MessageId>,
        /// Latest positions, one per device.
        snapshot: Vec<Position>,
    },
    /// The subscription is gone (or was never held).
    Unsubscribed {
        /// The canonical topic.
        topic: Topic,
        /// The unsubscribe message's id, when it had one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<MessageId>,
    },
    /// A live position on a topic.
    Position {
        /// The topic the position is for.
        topic: Topic,
        /// The position itself (its fields are inlined in the message).
        #[serde(flatten)]
        position: Position,
    },
    /// A request failed; the connection stays open.
    Error {
        /// What went wrong.
        code: ErrorCode,
        /// The topic the failed request named, when it had a valid one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic: Option<Topic>,
        /// The failed message's id, when it had one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<MessageId>,
        /// A short human-readable description.
        message: String,
    },
    /// Sent when nothing else was sent in a ping interval (browsers cannot see pings).
    Keepalive {
        /// Server time, epoch milliseconds.
        ts: i64,
    },
}

impl ServerMessage {
    /// Serialises the message as JSON bytes.
    pub fn to_json_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        self.write_json(&mut out);
        out
    }

    /// Serialises the message into `out` (appends).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        if let ServerMessage::Position { topic, position } = self {
            write_position(out, topic, position.as_view());
            return;
        }
        // Serialising these types into a Vec cannot fail: no maps with non-string keys, no
        // I/O errors; a failure would be a bug in this module, caught by the golden tests.
        let _ = serde_json::to_writer(&mut *out, self);
    }

    /// Serialises the message as shareable [`Bytes`].
    pub fn to_bytes(&self) -> Bytes {
        Bytes::from(self.to_json_vec())
    }

    /// Parses a server message (what a client receives). Lenient about unknown fields, so a
    /// newer server's additions do not break older clients.
    ///
    /// # Errors
    /// The serde error when the text is not a known server message.
    pub fn from_json(text: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(text)
    }

    /// An `error` reply.
    pub fn error(
        code: ErrorCode,
        topic: Option<Topic>,
        id: Option<MessageId>,
        message: impl Into<String>,
    ) -> Self {
        ServerMessage::Error {
            code,
            topic,
            id,
            message: message.into(),
        }
    }

    /// The `error` reply for an inbound message that could not be parsed.
    pub fn from_inbound_error(error: &crate::InboundError) -> Self {
        ServerMessage::Error {
            code: error.code(),
            topic: None,
            id: error.id.clone(),
            message: error.detail(),
        }
    }
}

/// Appends a `position` message for `topic` to `out`.
///
/// Field order and number formatting are exactly serde_json's (`ts` as an integer, `lat`/`lon`
/// shortest round-trip floats, a non-finite float as `null`), `speed`/`course` omitted when 0
/// or absent.
///
/// ```
/// use live_protocol::{write_position, PositionView, Topic};
/// let topic = Topic::for_event("8d1f0c2a-5b7e-4c1d-9a3f-2e6b8c0d4f11").unwrap();
/// let mut out = Vec::new();
/// write_position(&mut out, &topic, PositionView {
///     device_id: "356307042441013", ts: 1714647600000, lat: 41.3275, lon: 19.8187,
///     speed: Some(86), course: Some(270),
/// });
/// assert_eq!(
///     std::str::from_utf8(&out).unwrap(),
///     r#"{"type":"position","topic":"event:8d1f0c2a-5b7e-4c1d-9a3f-2e6b8c0d4f11","deviceId":"356307042441013","ts":1714647600000,"lat":41.3275,"lon":19.8187,"speed":86,"course":270}"#
/// );
/// ```
pub fn write_position(out: &mut Vec<u8>, topic: &Topic, position: PositionView<'_>) {
    out.reserve(112 + position.device_id.len());
    out.extend_from_slice(b"{\"type\":\"position\",\"topic\":\"");
    // A canonical topic is `event:` + hex digits and hyphens: nothing to escape.
    out.extend_from_slice(topic.as_str().as_bytes());
    out.extend_from_slice(b"\",\"deviceId\":");
    write_json_str(out, position.device_id);
    out.extend_from_slice(b",\"ts\":");
    let mut itoa = itoa_buffer();
    out.extend_from_slice(itoa.format(position.ts).as_bytes());
    out.extend_from_slice(b",\"lat\":");
    write_f64(out, position.lat);
    out.extend_from_slice(b",\"lon\":");
    write_f64(out, position.lon);
    if let Some(speed) = position.speed.filter(|&s| s != 0) {
        out.extend_from_slice(b",\"speed\":");
        out.extend_from_slice(itoa.format(speed).as_bytes());
    }
    if let Some(course) = position.course.filter(|&c| c != 0) {
        out.extend_from_slice(b",\"course\":");
        out.extend_from_slice(itoa.format(course).as_bytes());
    }
    out.push(b'}');
}

/// A `position` message as shareable [`Bytes`] (one allocation).
pub fn encode_position(topic: &Topic, position: PositionView<'_>) -> Bytes {
    let mut out = Vec::with_capacity(160);
    write_position(&mut out, topic, position);
    Bytes::from(out)
}

/// Writes a JSON string: a fast path for the usual IMEI (digits), serde_json's escaping
/// otherwise.
fn write_json_str(out: &mut Vec<u8>, value: &str) {
    if value
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    } else {
        // Writing a str into a Vec cannot fail.
        let _ = serde_json::Serializer::new(&mut *out).serialize_str(value);
    }
}

/// Writes an f64 exactly as serde_json does (non-finite → `null`).
fn write_f64(out: &mut Vec<u8>, value: f64) {
    // Writing a float into a Vec cannot fail.
    let _ = serde_json::Serializer::new(&mut *out).serialize_f64(value);
}

/// Minimal integer formatting without pulling a dependency: serde_json's own formatter.
fn itoa_buffer() -> IntWriter {
    IntWriter { buf: [0; 20] }
}

/// A small stack buffer that formats integers.
struct IntWriter {
    buf: [u8; 20],
}

impl IntWriter {
    fn format<I: Into<i64>>(&mut self, value: I) -> &str {
        let value: i64 = value.into();
        let negative = value < 0;
        let mut n = value.unsigned_abs();
        let mut pos = self.buf.len();
        loop {
            pos -= 1;
            // `n % 10` is below 10, so the cast cannot truncate.
            self.buf[pos] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        if negative {
            pos -= 1;
            self.buf[pos] = b'-';
        }
        // Only ASCII digits and '-' were written.
        std::str::from_utf8(&self.buf[pos..]).unwrap_or("0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "8d1f0c2a-5b7e-4c1d-9a3f-2e6b8c0d4f11";

    fn topic() -> Topic {
        Topic::for_event(ID).unwrap()
    }

    fn pos(speed: Option<u16>, course: Option<u16>) -> Position {
        Position {
            device_id: "356307042441013".into(),
            ts: 1_714_647_600_000,
            lat: 41.3275,
            lon: 19.8187,
            speed,
            course,
        }
    }

    fn json(message: &ServerMessage) -> String {
        String::from_utf8(message.to_json_vec()).unwrap()
    }

    #[test]
    fn int_writer_formats_extremes() {
        let mut w = itoa_buffer();
        for value in [0i64, 1, -1, 9, 10, 1_714_647_600_000, i64::MAX, i64::MIN] {
            assert_eq!(w.format(value), value.to_string());
        }
    }

    #[test]
    fn fast_writer_matches_serde_byte_for_byte() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            // xorshift: deterministic, good enough to sweep float formats.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut floats = vec![
            0.0,
            -0.0,
            1.0,
            -90.0,
            180.0,
            41.3275,
            1e-7,
            123_456.789,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::NAN,
            f64::INFINITY,
        ];
        for _ in 0..500 {
            #[allow(clippy::cast_precision_loss, reason = "any float will do")]
            floats.push((next() % 36_000_000) as f64 / 100_000.0 - 180.0);
            floats.push(f64::from_bits(next()));
        }
        let ids = ["356307042441013", "", "a\"b\\c", "é\u{1}\n", "x/y"];
        for (i, &lat) in floats.iter().enumerate() {
            let position = Position {
                device_id: ids[i % ids.len()].into(),
                ts: i64::try_from(next() >> 1).unwrap() - i64::MAX / 2,
                lat,
                lon: floats[(i + 7) % floats.len()],
                speed: [None, Some(0), Some(1), Some(u16::MAX)][i % 4],
                course: [Some(359), None, Some(0)][i % 3],
            };
            let message = ServerMessage::Position {
                topic: topic(),
                position: position.clone(),
            };
            let fast = message.to_json_vec();
            let serde = serde_json::to_vec(&message).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&fast),
                String::from_utf8_lossy(&serde)
            );
        }
    }

    #[test]
    fn golden_position() {
        let message = ServerMessage::Position {
            topic: topic(),
            position: pos(Some(86), Some(270)),
        };
        assert_eq!(
            json(&message),
            format!(
                r#"{{"type":"position","topic":"event:{ID}","deviceId":"356307042441013","ts":1714647600000,"lat":41.3275,"lon":19.8187,"speed":86,"course":270}}"#
            )
        );
        assert_eq!(
            ServerMessage::from_json(json(&message).as_bytes()).unwrap(),
            message
        );
    }

    #[test]
    fn zero_or_absent_speed_and_course_are_omitted() {
        for (speed, course) in [(None, None), (Some(0), Some(0)), (Some(0), None)] {
            let message = ServerMessage::Position {
                topic: topic(),
                position: pos(speed, course),
            };
            assert_eq!(
                json(&message),
                format!(
                    r#"{{"type":"position","topic":"event:{ID}","deviceId":"356307042441013","ts":1714647600000,"lat":41.3275,"lon":19.8187}}"#
                )
            );
            assert_eq!(
                serde_json::to_string(&message).unwrap(),
                json(&message),
                "serde agrees"
            );
        }
        let only_course = ServerMessage::Position {
            topic: topic(),
            position: pos(Some(0), Some(90)),
        };
        assert!(json(&only_course).ends_with(r#""lon":19.8187,"course":90}"#));
    }

    #[test]
    fn golden_subscribed_with_snapshot() {
        let message = ServerMessage::Subscribed {
            topic: topic(),
            id: Some(MessageId::Int(1)),
            snapshot: vec![pos(Some(86), Some(270)), pos(None, Some(0))],
        };
        assert_eq!(
            json(&message),
            format!(
                r#"{{"type":"subscribed","topic":"event:{ID}","id":1,"snapshot":[{{"deviceId":"356307042441013","ts":1714647600000,"lat":41.3275,"lon":19.8187,"speed":86,"course":270}},{{"deviceId":"356307042441013","ts":1714647600000,"lat":41.3275,"lon":19.8187}}]}}"#
            )
        );
        let empty = ServerMessage::Subscribed {
            topic: topic(),
            id: None,
            snapshot: vec![],
        };
        assert_eq!(
            json(&empty),
            format!(r#"{{"type":"subscribed","topic":"event:{ID}","snapshot":[]}}"#)
        );
    }

    #[test]
    fn golden_unsubscribed() {
        let message = ServerMessage::Unsubscribed {
            topic: topic(),
            id: Some(MessageId::Int(2)),
        };
        assert_eq!(
            json(&message),
            format!(r#"{{"type":"unsubscribed","topic":"event:{ID}","id":2}}"#)
        );
        let string_id = ServerMessage::Unsubscribed {
            topic: topic(),
            id: Some(MessageId::Str("b".into())),
        };
        assert_eq!(
            json(&string_id),
            format!(r#"{{"type":"unsubscribed","topic":"event:{ID}","id":"b"}}"#)
        );
    }

    #[test]
    fn golden_error() {
        let message = ServerMessage::error(
            ErrorCode::Forbidden,
            Some(topic()),
            Some(MessageId::Int(1)),
            "not allowed to view this event",
        );
        assert_eq!(
            json(&message),
            format!(
                r#"{{"type":"error","code":"forbidden","topic":"event:{ID}","id":1,"message":"not allowed to view this event"}}"#
            )
        );
        let bare = ServerMessage::error(ErrorCode::RateLimited, None, None, "slow down");
        assert_eq!(
            json(&bare),
            r#"{"type":"error","code":"rate-limited","message":"slow down"}"#
        );
    }

    #[test]
    fn error_from_inbound_echoes_id() {
        let inbound = crate::parse_client_message(br#"{"type":"subscribe","topic":"x","id":"k"}"#)
            .unwrap_err();
        let reply = ServerMessage::from_inbound_error(&inbound);
        assert_eq!(
            json(&reply),
            r#"{"type":"error","code":"invalid-topic","id":"k","message":"topic must start with `event:`"}"#
        );
    }

    #[test]
    fn golden_keepalive() {
        assert_eq!(
            json(&ServerMessage::Keepalive {
                ts: 1_714_647_600_000
            }),
            r#"{"type":"keepalive","ts":1714647600000}"#
        );
    }

    #[test]
    fn every_message_round_trips_through_from_json() {
        let messages = [
            ServerMessage::Subscribed {
                topic: topic(),
                id: Some(MessageId::Str("s".into())),
                snapshot: vec![pos(Some(3), None)],
            },
            ServerMessage::Unsubscribed {
                topic: topic(),
                id: None,
            },
            ServerMessage::Position {
                topic: topic(),
                position: pos(None, Some(5)),
            },
            ServerMessage::error(ErrorCode::Error, None, Some(MessageId::Int(-4)), "x"),
            ServerMessage::Keepalive { ts: 0 },
        ];
        for message in messages {
            let bytes = message.to_bytes();
            assert_eq!(ServerMessage::from_json(&bytes).unwrap(), message);
        }
    }

    #[test]
    fn from_json_ignores_unknown_fields_but_not_unknown_types() {
        let with_extra = r#"{"type":"keepalive","ts":5,"server":"b"}"#;
        assert_eq!(
            ServerMessage::from_json(with_extra.as_bytes()).unwrap(),
            ServerMessage::Keepalive { ts: 5 }
        );
        assert!(ServerMessage::from_json(br#"{"type":"hello"}"#).is_err());
    }
}
