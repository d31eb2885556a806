//! Writing the stream record exactly as tcp-ingestion (Node.js) writes it: top-level keys in
//! the contract's order, attributes sorted by IO id (the order `JSON.stringify` gives
//! integer-like keys), numbers in JavaScript notation, `bigint`/`Buffer` as sentinel objects,
//! timestamps as `toISOString()`.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{
    AttributeValue, EntryCodec, FIELD_CODEC, FIELD_DEVICE_ID, FIELD_PAYLOAD, FIELD_TS,
    StreamRecord, js_number, timestamp,
};

/// The Redis entry's field/value pairs for `record`, in the order tcp-ingestion writes them:
/// `ts`, `device_id`, `codec`, `payload`.
///
/// ```
/// use teltonika_codec::stream_record::{encode_entry, EntryCodec, StreamRecord};
///
/// let r = StreamRecord::new("356307042441013", time::macros::datetime!(2026-05-02 11:00 UTC), 41.3275, 19.8187);
/// let fields = encode_entry(&r, EntryCodec::Codec8);
/// assert_eq!(fields, vec![
///     ("ts", "2026-05-02T11:00:00.000Z".to_owned()),
///     ("device_id", "356307042441013".to_owned()),
///     ("codec", "8".to_owned()),
///     ("payload", r#"{"device_id":"356307042441013","timestamp":"2026-05-02T11:00:00.000Z","latitude":41.3275,"longitude":19.8187,"attributes":{}}"#.to_owned()),
/// ]);
/// ```
pub fn encode_entry(record: &StreamRecord, codec: EntryCodec) -> Vec<(&'static str, String)> {
    vec![
        (FIELD_TS, timestamp::to_iso(record.timestamp)),
        (FIELD_DEVICE_ID, record.device_id.clone()),
        (FIELD_CODEC, codec.as_str().to_owned()),
        (FIELD_PAYLOAD, encode_payload(record)),
    ]
}

/// The JSON payload for `record`, byte-compatible with `JSON.stringify` in tcp-ingestion.
///
/// Key order: `device_id`, `timestamp`, `priority`, `latitude`, `longitude`, `altitude`,
/// `angle`, `satellites`, `speed`, `event_io_id`, `attributes`. Absent optional fields are
/// left out (as `JSON.stringify` leaves out `undefined`); `attributes` is always written.
/// A non-finite latitude/longitude is written as `null`, as JavaScript would, and so does not
/// decode again.
///
/// ```
/// use teltonika_codec::stream_record::{encode_payload, AttributeValue, StreamRecord};
///
/// let mut r = StreamRecord::new("356307042441013", time::macros::datetime!(2026-05-02 11:00 UTC), 1e-7, -0.5);
/// r.priority = Some(1);
/// r.attributes = vec![(385, AttributeValue::Bytes(vec![1, 2, 3, 4])), (16, AttributeValue::BigInt(-5)), (21, AttributeValue::Number(4))];
/// assert_eq!(
///     encode_payload(&r),
///     r#"{"device_id":"356307042441013","timestamp":"2026-05-02T11:00:00.000Z","priority":1,"latitude":1e-7,"longitude":-0.5,"attributes":{"16":{"__bigint":"-5"},"21":4,"385":{"__buffer_b64":"AQIDBA=="}}}"#
/// );
/// ```
pub fn encode_payload(record: &StreamRecord) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("{\"device_id\":");
    write_json_string(&mut out, &record.device_id);
    out.push_str(",\"timestamp\":\"");
    timestamp::write_iso(&mut out, record.timestamp);
    out.push('"');
    // `write!` into a `String` cannot fail.
    if let Some(v) = record.priority {
        let _ = write!(out, ",\"priority\":{v}");
    }
    out.push_str(",\"latitude\":");
    js_number::write_f64(&mut out, record.latitude);
    out.push_str(",\"longitude\":");
    js_number::write_f64(&mut out, record.longitude);
    if let Some(v) = record.altitude {
        let _ = write!(out, ",\"altitude\":{v}");
    }
    if let Some(v) = record.angle {
        let _ = write!(out, ",\"angle\":{v}");
    }
    if let Some(v) = record.satellites {
        let _ = write!(out, ",\"satellites\":{v}");
    }
    if let Some(v) = record.speed {
        let _ = write!(out, ",\"speed\":{v}");
    }
    if let Some(v) = record.event_io_id {
        let _ = write!(out, ",\"event_io_id\":{v}");
    }
    out.push_str(",\"attributes\":{");
    let mut first = true;
    for (id, value) in canonical_attributes(&record.attributes) {
        if !first {
            out.push(',');
        }
        first = false;
        let _ = write!(out, "\"{id}\":");
        match value {
            AttributeValue::Number(n) => {
                let _ = write!(out, "{n}");
            }
            AttributeValue::BigInt(n) => {
                let _ = write!(out, "{{\"__bigint\":\"{n}\"}}");
            }
            AttributeValue::Bytes(bytes) => {
                out.push_str("{\"__buffer_b64\":\"");
                STANDARD.encode_string(bytes, &mut out);
                out.push_str("\"}");
            }
        }
    }
    out.push_str("}}");
    out
}

/// The attributes sorted by id, the last value winning for a duplicated id.
fn canonical_attributes(attributes: &[(u16, AttributeValue)]) -> Vec<(u16, &AttributeValue)> {
    let mut out: Vec<(u16, &AttributeValue)> = attributes.iter().map(|(id, v)| (*id, v)).collect();
    if out.windows(2).all(|w| w[0].0 < w[1].0) {
        return out;
    }
    // Stable: among equal ids the original order is kept, so the last written comes last.
    out.sort_by_key(|&(id, _)| id);
    let mut deduped: Vec<(u16, &AttributeValue)> = Vec::with_capacity(out.len());
    for (id, v) in out {
        match deduped.last_mut() {
            Some(last) if last.0 == id => last.1 = v,
            _ => deduped.push((id, v)),
        }
    }
    deduped
}

/// Appends `s` as a JSON string literal, escaped as `JSON.stringify` escapes it: `"` and `\`,
/// the short forms `\b \f \n \r \t`, other control characters as `\u00xx`; everything else,
/// U+2028/U+2029 included, verbatim.
fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let escape = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\u{8}' => "\\b",
            '\u{c}' => "\\f",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if c < ' ' => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push_str(escape);
        }
        start = i + c.len_utf8();
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_json_stringify() {
        let mut s = String::new();
        write_json_string(&mut s, "a\"b\\c\n\u{1}\u{1f}\u{7f}é\u{2028}");
        assert_eq!(s, "\"a\\\"b\\\\c\\n\\u0001\\u001f\u{7f}é\u{2028}\"");
    }

    #[test]
    fn duplicate_ids_keep_the_last_value_in_id_order() {
        let attrs = vec![
            (66, AttributeValue::Number(1)),
            (21, AttributeValue::Number(2)),
            (66, AttributeValue::Number(3)),
        ];
        let got = canonical_attributes(&attrs);
        assert_eq!(
            got,
            vec![
                (21, &AttributeValue::Number(2)),
                (66, &AttributeValue::Number(3))
            ]
        );
    }
}
