//! The `attributes` jsonb column: JSON text built directly from the IO elements, bound as
//! jsonb through a tiny [`ToSql`] newtype.
//!
//! docs/database.md: IO elements keyed by IO id (decimal string); numbers stay JSON numbers,
//! 8-byte values become decimal strings, byte arrays base64 strings (standard alphabet, with
//! padding). Writing the text straight into one buffer per batch avoids building a
//! `serde_json::Value` per row (see the crate docs for the measurement).

use std::fmt::Write as _;
use std::ops::Range;

use base64::Engine as _;
use bytes::{BufMut as _, BytesMut};
use teltonika_codec::stream_record::AttributeValue;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

/// Appends the JSON object for `attributes` to `out`.
///
/// ```
/// use teltonika_codec::stream_record::AttributeValue;
/// let mut out = String::new();
/// position_writer::attributes_json(
///     &[
///         (21, AttributeValue::Number(4)),
///         (16, AttributeValue::BigInt(u64::MAX.into())),
///         (385, AttributeValue::Bytes(vec![1, 2, 3, 4])),
///     ],
///     &mut out,
/// );
/// assert_eq!(out, r#"{"21":4,"16":"18446744073709551615","385":"AQIDBA=="}"#);
/// ```
pub fn attributes_json(attributes: &[(u16, AttributeValue)], out: &mut String) {
    out.push('{');
    for (n, (id, value)) in attributes.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        // Writing into a String cannot fail.
        let _ = write!(out, "\"{id}\":");
        match value {
            AttributeValue::Number(v) => {
                let _ = write!(out, "{v}");
            }
            AttributeValue::BigInt(v) => {
                let _ = write!(out, "\"{v}\"");
            }
            AttributeValue::Bytes(bytes) => {
                out.push('"');
                base64::engine::general_purpose::STANDARD.encode_string(bytes, out);
                out.push('"');
            }
        }
    }
    out.push('}');
}

/// The JSON texts of a batch's attribute objects, in one buffer.
#[derive(Debug, Default)]
pub(crate) struct JsonColumn {
    text: String,
    spans: Vec<Range<usize>>,
}

impl JsonColumn {
    pub(crate) fn with_capacity(rows: usize) -> Self {
        Self {
            text: String::with_capacity(rows * 64),
            spans: Vec::with_capacity(rows),
        }
    }

    pub(crate) fn push(&mut self, attributes: &[(u16, AttributeValue)]) {
        let start = self.text.len();
        attributes_json(attributes, &mut self.text);
        self.spans.push(start..self.text.len());
    }

    /// The values, ready to bind as `jsonb[]` (or one by one as `jsonb`).
    pub(crate) fn values(&self) -> Vec<Jsonb<'_>> {
        self.spans
            .iter()
            .map(|span| Jsonb(&self.text[span.clone()]))
            .collect()
    }
}

/// JSON text bound as `jsonb` in the binary format (a version byte, 1, then the text): no
/// `serde_json::Value` round trip. The text must be valid JSON; the server checks it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Jsonb<'a>(pub(crate) &'a str);

impl ToSql for Jsonb<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.put_u8(1);
        out.put_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_form() {
        let mut out = String::new();
        attributes_json(
            &[
                (0, AttributeValue::Number(0)),
                (1, AttributeValue::Number(-5)),
                (2, AttributeValue::Number(i64::from(u32::MAX))),
                (3, AttributeValue::BigInt(i128::from(i64::MIN))),
                (4, AttributeValue::BigInt(i128::from(u64::MAX))),
                (5, AttributeValue::Bytes(Vec::new())),
                (65535, AttributeValue::Bytes(vec![0xff; 5])),
            ],
            &mut out,
        );
        assert_eq!(
            out,
            r#"{"0":0,"1":-5,"2":4294967295,"3":"-9223372036854775808","4":"18446744073709551615","5":"","65535":"//////8="}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed["4"], "18446744073709551615");
    }

    #[test]
    fn empty_attributes_are_an_empty_object() {
        let mut column = JsonColumn::with_capacity(2);
        column.push(&[]);
        column.push(&[(7, AttributeValue::Number(1))]);
        let values = column.values();
        assert_eq!(values[0].0, "{}");
        assert_eq!(values[1].0, r#"{"7":1}"#);
    }
}
