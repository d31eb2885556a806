//! The stream record: the position model shared by tcp-ingestion (producer) and the
//! Processor (consumer), carried in a Redis Stream entry
//! `ts <ISO-8601> device_id <IMEI> codec <8|8E|16> payload <JSON>`.
//!
//! - [`decode_entry`] turns an entry's field/value pairs into a [`StreamRecord`], applying
//!   every decoding rule of the contract (`docs/` restates it) and naming the failing field in
//!   a [`StreamRecordError`]. The `payload` is parsed with simd-json's tape API from a
//!   reusable per-thread scratch buffer ([`Decoder`] for explicit reuse).
//! - [`encode_entry`] / [`encode_payload`] write what tcp-ingestion (Node.js `JSON.stringify`)
//!   writes, byte for byte.
//!
//! # Decisions the contract leaves open
//! - **Attribute numbers**: a plain JSON number must be a whole number in the `i64` range
//!   (JavaScript producers only write 1/2/4-byte IO values as numbers). A fraction is
//!   malformed ([`Problem::NotWhole`]); an integer above `i64::MAX` (e.g. an unsigned 8-byte
//!   value written without its `__bigint` sentinel) is malformed ([`Problem::NotAnInteger`]),
//!   as is a whole number written as a float beyond 2^53, where it may already have been
//!   rounded. `4.0` is accepted as 4. The fixed fields (`altitude`…) likewise accept `86.0`.
//! - **Attribute keys** are canonical decimals: no sign, no leading zero (`"021"` is
//!   malformed), at most 65535; a key given twice is malformed rather than silently merged.
//!   Decoded attributes are sorted by IO id, which is also the order `JSON.stringify` writes
//!   integer-like keys in.
//! - **`__bigint`** is `-?[0-9]+` within `i128`; **`__buffer_b64`** is standard, padded
//!   base64 (what Node's `Buffer#toString('base64')` writes), empty allowed.
//! - **Timestamps** are RFC 3339 with any offset and any number of fractional digits
//!   (truncated past nanoseconds), normalised to UTC. The entry's `ts` must agree with the
//!   payload timestamp to the millisecond (the resolution of the format).
//! - A payload key given twice (including `device_id` together with its alias `deviceId`) is
//!   malformed. An optional field or `attributes` that is `null` counts as absent.
//! - Unknown entry fields (e.g. a dead-letter entry's `error`, `source_id`) are ignored, like
//!   unknown payload keys. The entry's `codec` is informational and not validated.
//!
//! ```
//! use teltonika_codec::stream_record::{decode_entry, encode_entry, AttributeValue, EntryCodec};
//!
//! let payload = r#"{"device_id":"356307042441013","timestamp":"2026-05-02T11:00:00.000Z",
//!     "priority":1,"latitude":41.3275,"longitude":19.8187,"altitude":112,"angle":270,
//!     "satellites":11,"speed":86,"event_io_id":0,
//!     "attributes":{"16":{"__bigint":"18446744073709551615"},"21":4,"385":{"__buffer_b64":"AQIDBA=="}}}"#;
//! let record = decode_entry([
//!     ("ts", "2026-05-02T11:00:00.000Z"),
//!     ("device_id", "356307042441013"),
//!     ("codec", "8E"),
//!     ("payload", payload),
//! ])?;
//! assert_eq!(record.latitude, 41.3275);
//! assert_eq!(record.timestamp_ms(), 1_777_719_600_000);
//! assert_eq!(record.attributes[0], (16, AttributeValue::BigInt(u64::MAX.into())));
//! assert_eq!(record.attributes[2], (385, AttributeValue::Bytes(vec![1, 2, 3, 4])));
//!
//! let fields = encode_entry(&record, EntryCodec::Codec8E);
//! assert_eq!(fields[0], ("ts", "2026-05-02T11:00:00.000Z".to_owned()));
//! assert_eq!(decode_entry(fields)?, record);
//! # Ok::<(), teltonika_codec::stream_record::StreamRecordError>(())
//! ```

mod decode;
mod encode;
mod error;
mod from_avl;
mod js_number;
mod timestamp;

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

pub use decode::{Decoder, decode_entry, decode_payload};
pub use encode::{encode_entry, encode_payload};
pub use error::{Problem, Result, StreamRecordError};

/// Formats a time as the stream record's `timestamp` and `ts` fields carry it, the way
/// JavaScript's `Date.prototype.toISOString` writes it (UTC, three fractional digits; more only
/// for sub-millisecond times, which tcp-ingestion never produces).
///
/// ```
/// use teltonika_codec::stream_record::format_timestamp;
///
/// let t = time::OffsetDateTime::from_unix_timestamp(1_714_647_600).unwrap();
/// assert_eq!(format_timestamp(t), "2024-05-02T11:00:00.000Z");
/// ```
pub fn format_timestamp(t: OffsetDateTime) -> String {
    timestamp::to_iso(t)
}

/// Name of the entry field holding the record's timestamp (ISO-8601 UTC with milliseconds).
pub const FIELD_TS: &str = "ts";
/// Name of the entry field holding the tracker's IMEI.
pub const FIELD_DEVICE_ID: &str = "device_id";
/// Name of the entry field holding the codec the frame arrived in (`8`, `8E`, `16`).
pub const FIELD_CODEC: &str = "codec";
/// Name of the entry field holding the JSON payload.
pub const FIELD_PAYLOAD: &str = "payload";

/// One position of one tracker, as carried by the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamRecord {
    /// The tracker's IMEI (15 decimal digits from Teltonika trackers; only non-emptiness is
    /// enforced on decode).
    pub device_id: String,
    /// The record's GNSS timestamp, in UTC.
    pub timestamp: OffsetDateTime,
    /// 0 low, 1 high, 2 panic.
    pub priority: Option<u8>,
    /// Decimal degrees, WGS84, −90…90.
    pub latitude: f64,
    /// Decimal degrees, WGS84, −180…180.
    pub longitude: f64,
    /// Metres above sea level (negative below).
    pub altitude: Option<i16>,
    /// Course over ground, degrees 0…360.
    pub angle: Option<u16>,
    /// Satellites in use.
    pub satellites: Option<u8>,
    /// km/h.
    pub speed: Option<u16>,
    /// The IO id that triggered the record (0: none).
    pub event_io_id: Option<u16>,
    /// IO elements keyed by IO id. Decoding yields them sorted by id, without duplicates;
    /// the encoder writes them sorted by id (as `JSON.stringify` orders integer-like keys)
    /// and, for a duplicated id, keeps the last value (as a JavaScript object would).
    pub attributes: Vec<(u16, AttributeValue)>,
}

impl StreamRecord {
    /// The timestamp as milliseconds since the Unix epoch (floored for sub-millisecond values
    /// before 1970).
    ///
    /// ```
    /// # use teltonika_codec::stream_record::StreamRecord;
    /// let r = StreamRecord::new("356307042441013", time::macros::datetime!(1970-01-01 00:00:01.5 UTC), 0.0, 0.0);
    /// assert_eq!(r.timestamp_ms(), 1500);
    /// ```
    pub fn timestamp_ms(&self) -> i64 {
        let ms = self.timestamp.unix_timestamp_nanos().div_euclid(1_000_000);
        // `OffsetDateTime` spans ±9999 years: ±3.2e14 ms fits an i64 with room to spare.
        i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
    }

    /// A record with the required fields set, every optional field absent and no attributes.
    pub fn new(
        device_id: impl Into<String>,
        timestamp: OffsetDateTime,
        latitude: f64,
        longitude: f64,
    ) -> Self {
        Self {
            device_id: device_id.into(),
            timestamp: timestamp.to_offset(time::UtcOffset::UTC),
            priority: None,
            latitude,
            longitude,
            altitude: None,
            angle: None,
            satellites: None,
            speed: None,
            event_io_id: None,
            attributes: Vec::new(),
        }
    }
}

/// The value of one IO element.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AttributeValue {
    /// A 1-, 2- or 4-byte element (a JSON number).
    Number(i64),
    /// An 8-byte element (`{"__bigint": "<decimal>"}`); unsigned u64 from Teltonika trackers,
    /// but the stream format allows negative values.
    BigInt(i128),
    /// A variable-length (NX, Codec 8E) element (`{"__buffer_b64": "<base64>"}`).
    Bytes(Vec<u8>),
}

/// The Teltonika codec an AVL frame arrived in, as written in the entry's `codec` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryCodec {
    /// Codec 8 (`8`).
    Codec8,
    /// Codec 8 Extended (`8E`).
    Codec8E,
    /// Codec 16 (`16`).
    Codec16,
}

impl EntryCodec {
    /// The entry field's text: `8`, `8E` or `16`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Codec8 => "8",
            Self::Codec8E => "8E",
            Self::Codec16 => "16",
        }
    }
}

impl fmt::Display for EntryCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parsing a `codec` field value that is not `8`, `8E` or `16`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown codec {0:?} (expected 8, 8E or 16)")]
pub struct UnknownEntryCodec(pub String);

impl FromStr for EntryCodec {
    type Err = UnknownEntryCodec;

    /// ```
    /// # use teltonika_codec::stream_record::EntryCodec;
    /// assert_eq!("8E".parse(), Ok(EntryCodec::Codec8E));
    /// assert!("12".parse::<EntryCodec>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "8" => Ok(Self::Codec8),
            "8E" => Ok(Self::Codec8E),
            "16" => Ok(Self::Codec16),
            other => Err(UnknownEntryCodec(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;
