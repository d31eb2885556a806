//! Borrowed views over validated AVL data and their iterators: accessors read on demand and
//! cannot fail, because `decode` validated the bytes once.

use core::fmt;

use time::OffsetDateTime;

use super::decode::parse_record;
use super::owned::{AvlPacket, AvlRecord};
use super::types::*;

/// Largest AVL timestamp a `time::OffsetDateTime` holds: 9999-12-31T23:59:59.999Z.
pub const MAX_TIMESTAMP_MS: u64 = 253_402_300_799_999;

/// Record header: timestamp, priority, GPS.
pub(super) const HEAD_LEN: usize = 8 + 1 + Gps::LEN;

pub(super) fn millis_to_datetime(millis: u64) -> OffsetDateTime {
    // Decoding rejects timestamps above MAX_TIMESTAMP_MS, so the conversion cannot fail for a
    // decoded record; the fallback keeps the accessor total anyway.
    // Whole seconds, then the milliseconds: cheaper than the i128 nanosecond path.
    OffsetDateTime::from_unix_timestamp((millis / 1000) as i64)
        .and_then(|at| at.replace_millisecond((millis % 1000) as u16))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// One validated record, borrowed from the input.
#[derive(Clone, Copy)]
pub struct AvlRecordView<'a> {
    pub(super) codec: AvlCodec,
    pub(super) bytes: &'a [u8],
    pub(super) head: &'a [u8; HEAD_LEN],
    pub(super) priority: Priority,
    pub(super) event_io_id: u16,
    pub(super) generation_type: Option<GenerationType>,
    pub(super) io_total: u16,
    pub(super) io_counted: u32,
    pub(super) io: &'a [u8],
}

impl<'a> AvlRecordView<'a> {
    /// The codec the record was sent in.
    pub const fn codec(&self) -> AvlCodec {
        self.codec
    }

    /// The record's bytes on the wire.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// GNSS timestamp, milliseconds since the Unix epoch (UTC).
    pub const fn timestamp_ms(&self) -> u64 {
        let h = self.head;
        u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]])
    }

    /// GNSS timestamp (UTC).
    pub fn timestamp(&self) -> OffsetDateTime {
        millis_to_datetime(self.timestamp_ms())
    }

    /// Priority.
    pub const fn priority(&self) -> Priority {
        self.priority
    }

    /// The GPS element.
    pub fn gps(&self) -> Gps {
        let Some(gps) = self.head.last_chunk::<{ Gps::LEN }>() else {
            // HEAD_LEN > Gps::LEN: unreachable, kept total without a panic path.
            return Gps::default();
        };
        Gps::from_bytes(gps)
    }

    /// The IO id that triggered the record (0: none).
    pub const fn event_io_id(&self) -> u16 {
        self.event_io_id
    }

    /// Codec 16's generation type; `None` in codecs 8 and 8E.
    pub const fn generation_type(&self) -> Option<GenerationType> {
        self.generation_type
    }

    /// The IO total the record declares (with NX in 8E). Equal to the number of elements
    /// [`io`](Self::io) yields unless lenient decoding reported an
    /// [`Error::IoTotalMismatch`].
    pub const fn io_total(&self) -> u16 {
        self.io_total
    }

    /// The IO elements, in wire order (1-, 2-, 4-, 8-byte groups, then NX).
    pub fn io(&self) -> IoElements<'a> {
        IoElements {
            codec: self.codec,
            rest: self.io,
            remaining: self.io_counted,
            left_in_group: 0,
            group: 0,
            next_group: 0,
        }
    }

    /// Copies into an owned [`AvlRecord`] (one allocation: the IO list).
    pub fn to_owned(&self) -> AvlRecord {
        AvlRecord {
            timestamp: self.timestamp(),
            priority: self.priority,
            gps: self.gps(),
            event_io_id: self.event_io_id,
            generation_type: self.generation_type,
            io: IoList {
                codec: self.codec,
                count: self.io_counted,
                bytes: self.io.to_vec(),
            },
        }
    }
}

impl fmt::Debug for AvlRecordView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AvlRecordView")
            .field("timestamp", &self.timestamp())
            .field("priority", &self.priority)
            .field("gps", &self.gps())
            .field("event_io_id", &self.event_io_id)
            .field("generation_type", &self.generation_type)
            .field("io_total", &self.io_total)
            .field("io", &self.io())
            .finish()
    }
}

/// Iterator over a record's IO elements (see [`AvlRecordView::io`]).
#[derive(Clone)]
pub struct IoElements<'a> {
    pub(super) codec: AvlCodec,
    pub(super) rest: &'a [u8],
    pub(super) remaining: u32,
    pub(super) left_in_group: u16,
    pub(super) group: u8,
    pub(super) next_group: u8,
}

#[inline]
pub(super) fn take<'a, const N: usize>(rest: &mut &'a [u8]) -> Option<&'a [u8; N]> {
    let (head, tail) = rest.split_first_chunk::<N>()?;
    *rest = tail;
    Some(head)
}

impl<'a> Iterator for IoElements<'a> {
    type Item = IoElementView<'a>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        // Validated when the packet was decoded: no read below falls short.
        self.remaining = self.remaining.checked_sub(1)?;
        let wide = self.codec != AvlCodec::Codec8;
        while self.left_in_group == 0 {
            self.group = self.next_group;
            self.next_group += 1;
            self.left_in_group = if self.codec == AvlCodec::Codec8Ext {
                u16::from_be_bytes(*take::<2>(&mut self.rest)?)
            } else {
                u16::from(take::<1>(&mut self.rest)?[0])
            };
        }
        self.left_in_group -= 1;
        let id = if wide {
            u16::from_be_bytes(*take::<2>(&mut self.rest)?)
        } else {
            u16::from(take::<1>(&mut self.rest)?[0])
        };
        let value = match self.group {
            0 => IoValueView::U8(take::<1>(&mut self.rest)?[0]),
            1 => IoValueView::U16(u16::from_be_bytes(*take(&mut self.rest)?)),
            2 => IoValueView::U32(u32::from_be_bytes(*take(&mut self.rest)?)),
            3 => IoValueView::U64(u64::from_be_bytes(*take(&mut self.rest)?)),
            _ => {
                let len = usize::from(u16::from_be_bytes(*take(&mut self.rest)?));
                let (bytes, tail) = self.rest.split_at_checked(len)?;
                self.rest = tail;
                IoValueView::Bytes(bytes)
            }
        };
        Some(IoElementView { id, value })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let remaining = self.remaining as usize;
        (remaining, Some(remaining))
    }
}

impl ExactSizeIterator for IoElements<'_> {}

impl fmt::Debug for IoElements<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

/// A validated AVL packet (the records of one TCP frame or UDP datagram), borrowed.
#[derive(Clone, Copy)]
pub struct AvlPacketView<'a> {
    pub(super) codec: AvlCodec,
    pub(super) count: u8,
    pub(super) records: &'a [u8],
}

impl<'a> AvlPacketView<'a> {
    /// The codec.
    pub const fn codec(&self) -> AvlCodec {
        self.codec
    }

    /// Number of records (what the server acknowledges once it has stored them).
    pub const fn record_count(&self) -> u8 {
        self.count
    }

    /// The records, in wire order (not always time order).
    pub fn records(&self) -> Records<'a> {
        Records {
            codec: self.codec,
            rest: self.records,
            remaining: self.count,
        }
    }

    /// Copies into an owned [`AvlPacket`].
    pub fn to_owned(&self) -> AvlPacket {
        AvlPacket {
            codec: self.codec,
            records: self.records().map(|record| record.to_owned()).collect(),
        }
    }
}

impl fmt::Debug for AvlPacketView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AvlPacketView")
            .field("codec", &self.codec)
            .field("records", &self.records())
            .finish()
    }
}

/// Iterator over the records of an [`AvlPacketView`].
#[derive(Clone)]
pub struct Records<'a> {
    pub(super) codec: AvlCodec,
    pub(super) rest: &'a [u8],
    pub(super) remaining: u8,
}

impl<'a> Iterator for Records<'a> {
    type Item = AvlRecordView<'a>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.remaining = self.remaining.checked_sub(1)?;
        // Validated when the packet was decoded: parsing again cannot fail.
        let (view, _) = parse_record(self.codec, self.rest, 0).ok()?;
        self.rest = self.rest.get(view.bytes.len()..)?;
        Some(view)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (
            usize::from(self.remaining),
            Some(usize::from(self.remaining)),
        )
    }
}

impl ExactSizeIterator for Records<'_> {}

impl fmt::Debug for Records<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}
