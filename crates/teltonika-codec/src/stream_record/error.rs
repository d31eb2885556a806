//! The stream record's decode error: which field failed and what is wrong with it.

use std::borrow::Cow;

/// A malformed stream record: the field that failed and what is wrong with it.
///
/// Displays as `field "<name>": <problem>`, e.g. `field "latitude": 91.2 outside [-90, 90]`.
/// Payload fields are named by their JSON key (`latitude`, `timestamp`…), attributes as
/// `attributes.<id>`, and the Redis entry's own fields by their field name (`ts`, `device_id`,
/// `payload`); [`Problem`] says which side a `device_id` problem is on.
///
/// ```
/// use teltonika_codec::stream_record::{decode_payload, Problem};
///
/// let err = decode_payload(br#"{"device_id":"1","timestamp":"2026-05-02T11:00:00.000Z",
///                               "latitude":91.2,"longitude":0}"#).unwrap_err();
/// assert_eq!(err.field(), "latitude");
/// assert!(matches!(err.problem(), Problem::OutOfRange { .. }));
/// assert_eq!(err.to_string(), r#"field "latitude": 91.2 outside [-90, 90]"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field \"{field}\": {problem}")]
pub struct StreamRecordError {
    field: Cow<'static, str>,
    problem: Problem,
}

impl StreamRecordError {
    pub(crate) fn new(field: impl Into<Cow<'static, str>>, problem: Problem) -> Self {
        Self {
            field: field.into(),
            problem,
        }
    }

    /// The failing field: a payload key (`latitude`), `attributes.<id>`, or an entry field
    /// (`ts`, `device_id`, `payload`).
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What is wrong with the field.
    pub fn problem(&self) -> &Problem {
        &self.problem
    }
}

/// What is wrong with a field of a stream record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// A required field of the Redis entry (`device_id`, `payload`) is absent.
    #[error("missing from the entry")]
    MissingEntryField,
    /// A field of the Redis entry appears more than once.
    #[error("given more than once in the entry")]
    DuplicateEntryField,
    /// A field of the Redis entry that must be text is not UTF-8.
    #[error("not UTF-8 text")]
    NotUtf8,
    /// A required payload key is absent (or `null`).
    #[error("missing from the payload")]
    Missing,
    /// A text field that must not be empty is empty.
    #[error("empty")]
    Empty,
    /// A payload key appears more than once (an alias such as `deviceId` counts as its field).
    #[error("given more than once")]
    Duplicate,
    /// The entry's `payload` is not JSON.
    #[error("not valid JSON: {0}")]
    InvalidJson(String),
    /// The value has the wrong JSON type.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// What the field must be.
        expected: &'static str,
        /// The JSON type found.
        found: &'static str,
    },
    /// A number is outside the field's range.
    #[error("{value} outside [{min}, {max}]")]
    OutOfRange {
        /// The value as it was given.
        value: String,
        /// The smallest value allowed.
        min: i64,
        /// The largest value allowed.
        max: i64,
    },
    /// A number that must be whole has a fractional part.
    #[error("{value} is not a whole number")]
    NotWhole {
        /// The value as it was given.
        value: String,
    },
    /// A number is not finite.
    #[error("not a finite number")]
    NotFinite,
    /// An attribute given as a plain JSON number does not fit an `i64`, or is a whole number
    /// written as a float beyond 2^53 (where floats stop being exact).
    #[error(
        "{value} is not an exact integer in the i64 range (8-byte values are carried as {{\"__bigint\": \"<decimal>\"}})"
    )]
    NotAnInteger {
        /// The value as it was given.
        value: String,
    },
    /// A timestamp is not RFC 3339.
    #[error("invalid timestamp {value:?}: {reason}")]
    BadTimestamp {
        /// The text given.
        value: String,
        /// Why it does not parse.
        reason: &'static str,
    },
    /// The entry and the payload disagree (`device_id`, or `ts` against the payload timestamp).
    #[error("the entry has {entry:?} but the payload has {payload:?}")]
    Mismatch {
        /// The entry's value.
        entry: String,
        /// The payload's value.
        payload: String,
    },
    /// An attribute key is not a decimal IO id 0…65535.
    #[error("key {key:?} is not a decimal IO id 0..=65535")]
    BadAttributeKey {
        /// The key given.
        key: String,
    },
    /// A `{"__bigint": …}` sentinel does not hold an integer string.
    #[error("__bigint {value:?} is not an integer string: {reason}")]
    BadBigInt {
        /// The text given.
        value: String,
        /// Why it does not parse.
        reason: &'static str,
    },
    /// A `{"__buffer_b64": …}` sentinel does not hold strict (padded, standard) base64.
    #[error("__buffer_b64 is not base64: {reason}")]
    BadBase64 {
        /// The base64 decoder's complaint.
        reason: String,
    },
    /// An attribute object that is neither `{"__bigint": "…"}` nor `{"__buffer_b64": "…"}`.
    #[error(
        "object is not a sentinel ({{\"__bigint\": \"…\"}} or {{\"__buffer_b64\": \"…\"}}): {reason}"
    )]
    BadSentinel {
        /// What is off about its shape.
        reason: &'static str,
    },
}

/// `Result` with [`StreamRecordError`].
pub type Result<T, E = StreamRecordError> = std::result::Result<T, E>;
