//! The entries handed to handlers and what a handler answers about each of them.
//!
//! Field names and values are [`Bytes`]: they are slices of fred's reply buffer (no copy, no
//! allocation per field), and an entry whose bytes are not UTF-8 still reaches the handler
//! (and the dead-letter stream, byte for byte) instead of failing the parse of its whole
//! batch. `teltonika_codec::decode_entry` takes `AsRef<[u8]>` pairs, so
//! `decode_entry(entry.fields.iter().map(|(k, v)| (k, v)))` works directly.

use bytes::Bytes;

/// One stream entry delivered to this consumer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamEntry {
    /// The entry id, `<ms>-<seq>`.
    pub id: String,
    /// The field/value pairs in the order they were written. Never empty: entries deleted
    /// while pending are acknowledged and counted by the consumer, not handed to handlers.
    pub fields: Vec<(Bytes, Bytes)>,
    /// How many times Redis has delivered this entry to the group, this delivery included
    /// (1 for a first read; from `XPENDING` for re-reads and claims).
    pub deliveries: u64,
}

impl StreamEntry {
    /// The value of the first field called `name`, if any.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use stream_consumer::StreamEntry;
    ///
    /// let entry = StreamEntry {
    ///     id: "1714647600000-0".into(),
    ///     fields: vec![(Bytes::from_static(b"device_id"), Bytes::from_static(b"356307042441013"))],
    ///     deliveries: 1,
    /// };
    /// assert_eq!(entry.field_str("device_id"), Some("356307042441013"));
    /// assert_eq!(entry.field("codec"), None);
    /// assert_eq!(entry.timestamp_ms(), Some(1_714_647_600_000));
    /// ```
    pub fn field(&self, name: &str) -> Option<&[u8]> {
        field(&self.fields, name)
    }

    /// The value of the first field called `name` if it is valid UTF-8.
    pub fn field_str(&self, name: &str) -> Option<&str> {
        self.field(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The millisecond Unix time at which Redis stored the entry (the id's first part).
    pub fn timestamp_ms(&self) -> Option<u64> {
        entry_id_millis(&self.id)
    }
}

/// One entry read by the [`TailReader`](crate::TailReader) (no delivery bookkeeping: the live
/// group reads with `NOACK`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TailEntry {
    /// The entry id, `<ms>-<seq>`.
    pub id: String,
    /// The field/value pairs in order. Empty only if the entry vanished between the read's
    /// selection and its reply, which Redis does not do for `>` reads.
    pub fields: Vec<(Bytes, Bytes)>,
    /// The millisecond Unix time at which Redis stored the entry, from the id (0 if the id
    /// did not parse, which Redis-generated ids always do).
    pub redis_timestamp_ms: u64,
}

impl TailEntry {
    /// The value of the first field called `name`, if any.
    pub fn field(&self, name: &str) -> Option<&[u8]> {
        field(&self.fields, name)
    }
}

fn field<'a>(fields: &'a [(Bytes, Bytes)], name: &str) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|(k, _)| k.as_ref() == name.as_bytes())
        .map(|(_, v)| v.as_ref())
}

/// The millisecond part of a stream entry id (`"1714647600000-3"` → `1714647600000`).
///
/// ```
/// assert_eq!(stream_consumer::entry_id_millis("1714647600000-3"), Some(1_714_647_600_000));
/// assert_eq!(stream_consumer::entry_id_millis("nope"), None);
/// ```
pub fn entry_id_millis(id: &str) -> Option<u64> {
    let (ms, seq) = id.split_once('-')?;
    if ms.is_empty() || !ms.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    ms.parse().ok()
}

/// A handler's verdict on one entry of a batch.
///
/// Two ways to leave an entry pending, because they mean different things:
/// [`LeavePending`](Self::LeavePending) says "this entry failed" (it counts towards
/// dead-lettering), [`Retry`](Self::Retry) says "this entry was not judged" (it never does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Done (e.g. the row is committed or was a duplicate): acknowledge it.
    Ack,
    /// The entry failed and may never succeed (e.g. it does not decode). It stays in the
    /// pending list and is delivered again after `claim_min_idle` (or after a reconnect);
    /// once its delivery count has reached `max_deliveries` it is moved to the dead-letter
    /// stream with `reason` as its `error` field.
    ///
    /// Every delivery counts, so never answer this for a fault outside the entry (database
    /// down, shutting down): a long outage would dead-letter good records after
    /// `max_deliveries × claim_min_idle`. Answer [`Retry`](Self::Retry) for those.
    LeavePending {
        /// Why; becomes the dead-letter entry's `error` field.
        reason: String,
    },
    /// The entry was not handled (e.g. the write was abandoned for shutdown, or a dependency
    /// is down): leave it pending and never dead-letter it for this delivery, whatever its
    /// delivery count. It is delivered again like a [`LeavePending`](Self::LeavePending)
    /// entry. Redis still counts the redelivery, so an entry later answered `LeavePending`
    /// is judged on all its deliveries.
    Retry,
    /// Never going to work (e.g. the database rejects the row): move it to the dead-letter
    /// stream now, whatever its delivery count.
    DeadLetter {
        /// Why; becomes the dead-letter entry's `error` field.
        error: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_millis_is_strict() {
        assert_eq!(entry_id_millis("0-0"), Some(0));
        assert_eq!(entry_id_millis("1-2"), Some(1));
        assert_eq!(entry_id_millis("-2"), None);
        assert_eq!(entry_id_millis("1-"), None);
        assert_eq!(entry_id_millis("1"), None);
        assert_eq!(entry_id_millis("a-1"), None);
        assert_eq!(entry_id_millis("+1-1"), None);
        assert_eq!(entry_id_millis("99999999999999999999999-0"), None);
    }

    #[test]
    fn field_lookup_takes_the_first_match() {
        let e = StreamEntry {
            id: "5-0".into(),
            fields: vec![
                (Bytes::from_static(b"a"), Bytes::from_static(b"1")),
                (Bytes::from_static(b"a"), Bytes::from_static(b"2")),
                (
                    Bytes::from_static(b"bin"),
                    Bytes::from_static(&[0xff, 0xfe]),
                ),
            ],
            deliveries: 1,
        };
        assert_eq!(e.field("a"), Some(&b"1"[..]));
        assert_eq!(e.field("bin"), Some(&[0xff, 0xfe][..]));
        assert_eq!(e.field_str("bin"), None);
        assert_eq!(e.timestamp_ms(), Some(5));
    }
}
