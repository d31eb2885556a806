//! Decoding a stream entry into a [`StreamRecord`] with every rule of the contract.
//!
//! The payload is parsed by simd-json into a *tape* (a flat array of nodes borrowing strings
//! from the input) and the tape is walked once. simd-json parses in place, so the payload is
//! copied into a scratch buffer; the buffer, simd-json's internal buffers and the tape are kept
//! in a [`Decoder`] and reused, so a warm decode allocates only what the record owns (its
//! `device_id`, its attribute vector and any byte buffers).

use std::cell::RefCell;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use simd_json::{Buffers, INPUT_PADDING, Node, StaticNode, Tape};
use time::OffsetDateTime;

use super::error::{Problem, Result, StreamRecordError};
use super::{AttributeValue, StreamRecord, js_number, timestamp};

/// Scratch space above this is released after a decode, so one huge payload does not pin its
/// memory for the life of the thread.
const KEEP_SCRATCH_BYTES: usize = 1 << 20;

/// simd-json's nesting limit: deeper payloads are rejected as invalid JSON rather than
/// recursed into.
const MAX_DEPTH: usize = 64;

/// Reusable decoding state: a scratch copy of the payload, simd-json's buffers and its tape.
///
/// [`decode_entry`] and [`decode_payload`] use one per thread; keep your own when you want
/// to control where the memory lives.
///
/// ```
/// use teltonika_codec::stream_record::Decoder;
///
/// let mut decoder = Decoder::new();
/// for payload in [
///     r#"{"device_id":"1","timestamp":"2026-05-02T11:00:00.000Z","latitude":1,"longitude":2}"#,
///     r#"{"deviceId":"2","ts":"2026-05-02T11:00:01.000Z","latitude":3,"longitude":4}"#,
/// ] {
///     let record = decoder.decode_payload(payload.as_bytes())?;
///     assert!(record.attributes.is_empty());
/// }
/// # Ok::<(), teltonika_codec::stream_record::StreamRecordError>(())
/// ```
pub struct Decoder {
    input: Vec<u8>,
    buffers: Buffers,
    /// Always empty between calls; `Tape::reset` re-targets its allocation at each input.
    tape: Tape<'static>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("scratch_capacity", &self.input.capacity())
            .finish_non_exhaustive()
    }
}

impl Decoder {
    /// A decoder with buffers sized for typical payloads (they grow on demand).
    pub fn new() -> Self {
        Self {
            input: Vec::with_capacity(512 + INPUT_PADDING),
            buffers: Buffers::with_max_depth(512, MAX_DEPTH),
            tape: Tape(Vec::with_capacity(128)),
        }
    }

    /// Decodes a Redis entry's field/value pairs (`ts`, `device_id`, `codec`, `payload`;
    /// unknown fields are ignored). See [`decode_entry`].
    pub fn decode_entry<I, K, V>(&mut self, fields: I) -> Result<StreamRecord>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let mut ts: Option<V> = None;
        let mut device_id: Option<V> = None;
        let mut payload: Option<V> = None;
        for (key, value) in fields {
            let (slot, name) = match key.as_ref() {
                b"ts" => (&mut ts, "ts"),
                b"device_id" => (&mut device_id, "device_id"),
                b"payload" => (&mut payload, "payload"),
                _ => continue, // `codec` is informational; unknown fields are ignored
            };
            if slot.is_some() {
                return Err(StreamRecordError::new(name, Problem::DuplicateEntryField));
            }
            *slot = Some(value);
        }

        let device_id = device_id
            .ok_or_else(|| StreamRecordError::new("device_id", Problem::MissingEntryField))?;
        let device_id = std::str::from_utf8(device_id.as_ref())
            .map_err(|_| StreamRecordError::new("device_id", Problem::NotUtf8))?;
        if device_id.is_empty() {
            return Err(StreamRecordError::new("device_id", Problem::Empty));
        }
        let payload =
            payload.ok_or_else(|| StreamRecordError::new("payload", Problem::MissingEntryField))?;
        let record = self.decode_payload(payload.as_ref())?;

        if record.device_id != device_id {
            return Err(StreamRecordError::new(
                "device_id",
                Problem::Mismatch {
                    entry: device_id.to_owned(),
                    payload: record.device_id,
                },
            ));
        }
        if let Some(ts) = ts {
            let text = std::str::from_utf8(ts.as_ref())
                .map_err(|_| StreamRecordError::new("ts", Problem::NotUtf8))?;
            let entry_ts = parse_timestamp("ts", text)?;
            if floor_ms(entry_ts) != floor_ms(record.timestamp) {
                return Err(StreamRecordError::new(
                    "ts",
                    Problem::Mismatch {
                        entry: text.to_owned(),
                        payload: timestamp::to_iso(record.timestamp),
                    },
                ));
            }
        }
        Ok(record)
    }

    /// Decodes a JSON payload alone (no entry-level checks). See [`decode_payload`].
    pub fn decode_payload(&mut self, payload: &[u8]) -> Result<StreamRecord> {
        self.input.clear();
        self.input.extend_from_slice(payload);
        self.input.resize(payload.len() + INPUT_PADDING, 0);

        let mut tape: Tape<'_> = std::mem::replace(&mut self.tape, Tape(Vec::new())).reset();
        let parsed = simd_json::fill_tape_padded(
            &mut self.input,
            payload.len(),
            &mut self.buffers,
            &mut tape,
        );
        let result = match parsed {
            Ok(()) => walk_payload(&tape.0),
            Err(e) => Err(StreamRecordError::new(
                "payload",
                Problem::InvalidJson(e.to_string()),
            )),
        };
        self.tape = tape.reset();
        if self.input.capacity() > KEEP_SCRATCH_BYTES {
            self.input = Vec::with_capacity(512 + INPUT_PADDING);
            self.buffers = Buffers::with_max_depth(512, MAX_DEPTH);
            self.tape = Tape(Vec::with_capacity(128));
        }
        result
    }
}

thread_local! {
    static DECODER: RefCell<Decoder> = RefCell::new(Decoder::new());
}

/// Decodes a Redis stream entry's field/value pairs into a [`StreamRecord`], applying every
/// decoding rule of the stream contract; the error names the failing field.
///
/// Needs `device_id` and `payload`; `ts`, when present, must agree with the payload's
/// timestamp; `codec` and unknown fields are ignored. Uses a per-thread [`Decoder`].
///
/// ```
/// use teltonika_codec::stream_record::{decode_entry, Problem};
///
/// let err = decode_entry([
///     ("device_id", "356307042441013"),
///     ("payload", r#"{"device_id":"356307042441014","timestamp":"2026-05-02T11:00:00.000Z","latitude":0,"longitude":0}"#),
/// ]).unwrap_err();
/// assert_eq!(err.field(), "device_id");
/// assert!(matches!(err.problem(), Problem::Mismatch { .. }));
///
/// // Owned pairs, as a Redis client returns them, work by reference:
/// let fields: Vec<(String, String)> = vec![
///     ("device_id".into(), "356307042441013".into()),
///     ("payload".into(), r#"{"device_id":"356307042441013","timestamp":"2026-05-02T11:00:00.000Z","latitude":0,"longitude":0}"#.into()),
/// ];
/// assert!(decode_entry(fields.iter().map(|(k, v)| (k, v))).is_ok());
/// ```
pub fn decode_entry<I, K, V>(fields: I) -> Result<StreamRecord>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    DECODER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut decoder) => decoder.decode_entry(fields),
        // Re-entered from inside the caller's iterator: use a fresh decoder.
        Err(_) => Decoder::new().decode_entry(fields),
    })
}

/// Decodes a JSON payload alone into a [`StreamRecord`] (no entry-level checks), using a
/// per-thread [`Decoder`].
///
/// ```
/// use teltonika_codec::stream_record::decode_payload;
///
/// let r = decode_payload(br#"{"deviceId":"356307042441013","ts":"2026-05-02T13:00:00+02:00","latitude":41.3275,"longitude":19.8187,"speed":null}"#)?;
/// assert_eq!(r.timestamp, time::macros::datetime!(2026-05-02 11:00 UTC));
/// assert_eq!(r.speed, None);
/// # Ok::<(), teltonika_codec::stream_record::StreamRecordError>(())
/// ```
pub fn decode_payload(payload: &[u8]) -> Result<StreamRecord> {
    DECODER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut decoder) => decoder.decode_payload(payload),
        Err(_) => Decoder::new().decode_payload(payload),
    })
}

/// The instant at millisecond resolution, floored (without the slow `i128` division of
/// `unix_timestamp_nanos`).
fn floor_ms(t: OffsetDateTime) -> (i64, u32) {
    (t.unix_timestamp(), t.nanosecond() / 1_000_000)
}

fn parse_timestamp(field: &'static str, text: &str) -> Result<OffsetDateTime> {
    timestamp::parse(text).map_err(|reason| {
        StreamRecordError::new(
            field,
            Problem::BadTimestamp {
                value: text.to_owned(),
                reason,
            },
        )
    })
}

/// The number of tape nodes the value starting at `nodes[0]` spans.
fn span(node: &Node<'_>) -> usize {
    match node {
        Node::Object { count, .. } | Node::Array { count, .. } => count + 1,
        _ => 1,
    }
}

fn type_name(node: &Node<'_>) -> &'static str {
    match node {
        Node::String(_) => "a string",
        Node::Object { .. } => "an object",
        Node::Array { .. } => "an array",
        Node::Static(StaticNode::Null) => "null",
        Node::Static(StaticNode::Bool(_)) => "a boolean",
        Node::Static(StaticNode::I64(_) | StaticNode::U64(_) | StaticNode::F64(_)) => "a number",
    }
}

fn wrong_type(field: &'static str, expected: &'static str, node: &Node<'_>) -> StreamRecordError {
    StreamRecordError::new(
        field,
        Problem::WrongType {
            expected,
            found: type_name(node),
        },
    )
}

/// A JSON number as simd-json parsed it.
#[derive(Clone, Copy)]
enum Num {
    I(i64),
    U(u64),
    F(f64),
}

impl Num {
    fn of(node: &Node<'_>) -> Option<Self> {
        match node {
            Node::Static(StaticNode::I64(v)) => Some(Self::I(*v)),
            Node::Static(StaticNode::U64(v)) => Some(Self::U(*v)),
            Node::Static(StaticNode::F64(v)) => Some(Self::F(*v)),
            _ => None,
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Self::I(v) => v as f64,
            Self::U(v) => v as f64,
            Self::F(v) => v,
        }
    }

    /// The number as it would be printed back (for error messages).
    fn render(self) -> String {
        match self {
            Self::I(v) => v.to_string(),
            Self::U(v) => v.to_string(),
            Self::F(v) => {
                let mut s = String::new();
                js_number::write_f64(&mut s, v);
                s
            }
        }
    }

    /// The value as an integer when it is a whole number; `Err` names the problem.
    fn whole(self) -> Result<i128, Problem> {
        match self {
            Self::I(v) => Ok(i128::from(v)),
            Self::U(v) => Ok(i128::from(v)),
            Self::F(v) if !v.is_finite() => Err(Problem::NotFinite),
            Self::F(v) if v.fract() != 0.0 => Err(Problem::NotWhole {
                value: self.render(),
            }),
            // Whole and finite; magnitudes past i128 saturate, which any range check rejects.
            Self::F(v) => Ok(v as i128),
        }
    }
}

/// A whole number in `[min, max]`, or `None` for absent/`null`.
fn optional_int(field: &'static str, node: &Node<'_>, min: i64, max: i64) -> Result<Option<i64>> {
    if matches!(node, Node::Static(StaticNode::Null)) {
        return Ok(None);
    }
    let num = Num::of(node).ok_or_else(|| wrong_type(field, "a whole number", node))?;
    let v = num
        .whole()
        .map_err(|problem| StreamRecordError::new(field, problem))?;
    if v < i128::from(min) || v > i128::from(max) {
        return Err(StreamRecordError::new(
            field,
            Problem::OutOfRange {
                value: num.render(),
                min,
                max,
            },
        ));
    }
    // In [min, max] ⊂ i64.
    Ok(Some(v as i64))
}

fn coordinate(field: &'static str, node: &Node<'_>, limit: i64) -> Result<f64> {
    if matches!(node, Node::Static(StaticNode::Null)) {
        return Err(StreamRecordError::new(field, Problem::Missing));
    }
    let num = Num::of(node).ok_or_else(|| wrong_type(field, "a number", node))?;
    let v = num.as_f64();
    if !v.is_finite() {
        return Err(StreamRecordError::new(field, Problem::NotFinite));
    }
    if v.abs() > limit as f64 {
        return Err(StreamRecordError::new(
            field,
            Problem::OutOfRange {
                value: num.render(),
                min: -limit,
                max: limit,
            },
        ));
    }
    Ok(v)
}

// Bits of `seen` per payload field, to reject a key given twice.
const SEEN_DEVICE_ID: u16 = 1 << 0;
const SEEN_TIMESTAMP: u16 = 1 << 1;
const SEEN_PRIORITY: u16 = 1 << 2;
const SEEN_LATITUDE: u16 = 1 << 3;
const SEEN_LONGITUDE: u16 = 1 << 4;
const SEEN_ALTITUDE: u16 = 1 << 5;
const SEEN_ANGLE: u16 = 1 << 6;
const SEEN_SATELLITES: u16 = 1 << 7;
const SEEN_SPEED: u16 = 1 << 8;
const SEEN_EVENT_IO_ID: u16 = 1 << 9;
const SEEN_ATTRIBUTES: u16 = 1 << 10;

fn walk_payload(nodes: &[Node<'_>]) -> Result<StreamRecord> {
    let root = nodes
        .first()
        .ok_or_else(|| StreamRecordError::new("payload", Problem::InvalidJson("empty".into())))?;
    let Node::Object { len, .. } = *root else {
        return Err(wrong_type("payload", "a JSON object", root));
    };

    let mut seen = 0u16;
    let mut device_id: Option<&str> = None;
    let mut timestamp: Option<OffsetDateTime> = None;
    let mut latitude: Option<f64> = None;
    let mut longitude: Option<f64> = None;
    let mut record_opt = Optionals::default();
    let mut attributes = Vec::new();

    let mut i = 1;
    for _ in 0..len {
        let (Some(Node::String(key)), Some(value)) = (nodes.get(i), nodes.get(i + 1)) else {
            // simd-json guarantees key/value pairs; a short tape would be its bug.
            return Err(StreamRecordError::new(
                "payload",
                Problem::InvalidJson("truncated tape".into()),
            ));
        };
        let value_nodes = &nodes[i + 1..];
        i += 1 + span(value);

        let (bit, field): (u16, &'static str) = match *key {
            "device_id" | "deviceId" => (SEEN_DEVICE_ID, "device_id"),
            "timestamp" | "ts" => (SEEN_TIMESTAMP, "timestamp"),
            "priority" => (SEEN_PRIORITY, "priority"),
            "latitude" => (SEEN_LATITUDE, "latitude"),
            "longitude" => (SEEN_LONGITUDE, "longitude"),
            "altitude" => (SEEN_ALTITUDE, "altitude"),
            "angle" => (SEEN_ANGLE, "angle"),
            "satellites" => (SEEN_SATELLITES, "satellites"),
            "speed" => (SEEN_SPEED, "speed"),
            "event_io_id" => (SEEN_EVENT_IO_ID, "event_io_id"),
            "attributes" => (SEEN_ATTRIBUTES, "attributes"),
            _ => continue, // forward compatibility: unknown keys are ignored
        };
        if seen & bit != 0 {
            return Err(StreamRecordError::new(field, Problem::Duplicate));
        }
        seen |= bit;

        match bit {
            SEEN_DEVICE_ID => match value {
                Node::String("") => {
                    return Err(StreamRecordError::new(field, Problem::Empty));
                }
                Node::String(s) => device_id = Some(s),
                Node::Static(StaticNode::Null) => {}
                other => return Err(wrong_type(field, "a string", other)),
            },
            SEEN_TIMESTAMP => match value {
                Node::String(s) => timestamp = Some(parse_timestamp(field, s)?),
                Node::Static(StaticNode::Null) => {}
                other => return Err(wrong_type(field, "an RFC 3339 string", other)),
            },
            SEEN_LATITUDE => latitude = Some(coordinate(field, value, 90)?),
            SEEN_LONGITUDE => longitude = Some(coordinate(field, value, 180)?),
            SEEN_PRIORITY => record_opt.priority = optional_int(field, value, 0, 2)?,
            SEEN_ALTITUDE => {
                record_opt.altitude = optional_int(field, value, i16::MIN.into(), i16::MAX.into())?;
            }
            SEEN_ANGLE => record_opt.angle = optional_int(field, value, 0, 360)?,
            SEEN_SATELLITES => record_opt.satellites = optional_int(field, value, 0, 255)?,
            SEEN_SPEED => record_opt.speed = optional_int(field, value, 0, 65_535)?,
            SEEN_EVENT_IO_ID => record_opt.event_io_id = optional_int(field, value, 0, 65_535)?,
            _ => match value {
                Node::Object { .. } => attributes = walk_attributes(value_nodes)?,
                Node::Static(StaticNode::Null) => {}
                other => return Err(wrong_type(field, "an object", other)),
            },
        }
    }

    let device_id =
        device_id.ok_or_else(|| StreamRecordError::new("device_id", Problem::Missing))?;
    let timestamp =
        timestamp.ok_or_else(|| StreamRecordError::new("timestamp", Problem::Missing))?;
    let latitude = latitude.ok_or_else(|| StreamRecordError::new("latitude", Problem::Missing))?;
    let longitude =
        longitude.ok_or_else(|| StreamRecordError::new("longitude", Problem::Missing))?;

    // The casts below are lossless: each value was range-checked against its type above.
    Ok(StreamRecord {
        device_id: device_id.to_owned(),
        timestamp,
        priority: record_opt.priority.map(|v| v as u8),
        latitude,
        longitude,
        altitude: record_opt.altitude.map(|v| v as i16),
        angle: record_opt.angle.map(|v| v as u16),
        satellites: record_opt.satellites.map(|v| v as u8),
        speed: record_opt.speed.map(|v| v as u16),
        event_io_id: record_opt.event_io_id.map(|v| v as u16),
        attributes,
    })
}

#[derive(Default)]
struct Optionals {
    priority: Option<i64>,
    altitude: Option<i64>,
    angle: Option<i64>,
    satellites: Option<i64>,
    speed: Option<i64>,
    event_io_id: Option<i64>,
}

/// `"0"`…`"65535"` without sign or leading zeros.
fn parse_io_id(key: &str) -> Option<u16> {
    let b = key.as_bytes();
    if b.is_empty() || b.len() > 5 || (b.len() > 1 && b[0] == b'0') {
        return None;
    }
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    u16::try_from(v).ok()
}

fn attribute_field(id: u16) -> String {
    format!("attributes.{id}")
}

/// `nodes[0]` is the attributes object.
fn walk_attributes(nodes: &[Node<'_>]) -> Result<Vec<(u16, AttributeValue)>> {
    let Some(Node::Object { len, .. }) = nodes.first() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(*len);
    let mut sorted = true;
    let mut i = 1;
    for _ in 0..*len {
        let (Some(Node::String(key)), Some(value)) = (nodes.get(i), nodes.get(i + 1)) else {
            return Err(StreamRecordError::new(
                "attributes",
                Problem::InvalidJson("truncated tape".into()),
            ));
        };
        let value_nodes = &nodes[i + 1..];
        i += 1 + span(value);

        let id = parse_io_id(key).ok_or_else(|| {
            StreamRecordError::new(
                "attributes",
                Problem::BadAttributeKey {
                    key: (*key).to_owned(),
                },
            )
        })?;
        let value = attribute_value(value_nodes)
            .map_err(|problem| StreamRecordError::new(attribute_field(id), problem))?;
        if let Some((last, _)) = out.last() {
            sorted &= *last < id;
        }
        out.push((id, value));
    }
    if !sorted {
        out.sort_by_key(|(id, _)| *id);
        if let Some(w) = out.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(StreamRecordError::new(
                attribute_field(w[0].0),
                Problem::Duplicate,
            ));
        }
    }
    Ok(out)
}

/// `nodes[0]` is the attribute's value.
fn attribute_value(nodes: &[Node<'_>]) -> Result<AttributeValue, Problem> {
    let Some(node) = nodes.first() else {
        return Err(Problem::InvalidJson("truncated tape".into()));
    };
    if let Some(num) = Num::of(node) {
        return match num {
            Num::I(v) => Ok(AttributeValue::Number(v)),
            Num::U(v) => {
                i64::try_from(v)
                    .map(AttributeValue::Number)
                    .map_err(|_| Problem::NotAnInteger {
                        value: num.render(),
                    })
            }
            Num::F(_) => {
                let v = num.whole()?;
                // Floats are exact integers only up to 2^53.
                if v.unsigned_abs() > 1 << 53 {
                    return Err(Problem::NotAnInteger {
                        value: num.render(),
                    });
                }
                Ok(AttributeValue::Number(v as i64))
            }
        };
    }
    let Node::Object { len, .. } = *node else {
        return Err(Problem::WrongType {
            expected: "a number or a sentinel object",
            found: type_name(node),
        });
    };
    if len != 1 {
        return Err(Problem::BadSentinel {
            reason: "it must have exactly one key",
        });
    }
    match (nodes.get(1), nodes.get(2)) {
        (Some(Node::String("__bigint")), Some(Node::String(text))) => parse_bigint(text),
        (Some(Node::String("__buffer_b64")), Some(Node::String(text))) => STANDARD
            .decode(text)
            .map(AttributeValue::Bytes)
            .map_err(|e| Problem::BadBase64 {
                reason: e.to_string(),
            }),
        (Some(Node::String("__bigint" | "__buffer_b64")), _) => Err(Problem::BadSentinel {
            reason: "its value must be a string",
        }),
        _ => Err(Problem::BadSentinel {
            reason: "its key must be \"__bigint\" or \"__buffer_b64\"",
        }),
    }
}

fn parse_bigint(text: &str) -> Result<AttributeValue, Problem> {
    let bad = |reason| Problem::BadBigInt {
        value: text.to_owned(),
        reason,
    };
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() {
        return Err(bad("no digits"));
    }
    if !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(bad("only an optional '-' and decimal digits are allowed"));
    }
    text.parse::<i128>()
        .map(AttributeValue::BigInt)
        .map_err(|_| bad("outside the i128 range"))
}
