//! AVL data (codecs 8, 8 Extended and 16): the records of a TCP frame or a UDP datagram.
//!
//! Decoding validates the whole data field once (counts, every record, every IO group) and
//! hands out [`AvlPacketView`]s: `Copy` views over the caller's bytes whose accessors read
//! values on demand and cannot fail. [`AvlPacketView::to_owned`] copies a packet into an
//! [`AvlPacket`], which is also what the encoders take.
//!
//! Layout of one record: `u64 timestamp (ms)` · `u8 priority` · GPS element (15 bytes) ·
//! event IO id (`u8` in codec 8, `u16` otherwise) · codec 16: `u8 generation type` · IO total
//! (`u16` in 8E, `u8` otherwise) · four groups of 1-, 2-, 4- and 8-byte values (each a count,
//! then id + value pairs) · 8E only: the NX group (`u16 count`, then `u16 id · u16 len · bytes`).

use core::fmt;

use time::OffsetDateTime;

use crate::error::{Error, Result};

/// The AVL codecs: the three record layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AvlCodec {
    /// Codec 8 (`0x08`): 1-byte IO ids and counts.
    Codec8,
    /// Codec 8 Extended (`0x8E`): 2-byte IO ids and counts, and variable-length (NX) values.
    Codec8Ext,
    /// Codec 16 (`0x10`): 2-byte IO ids, 1-byte counts, and a generation type.
    Codec16,
}

impl AvlCodec {
    /// The codec byte on the wire.
    pub const fn id(self) -> u8 {
        match self {
            Self::Codec8 => 0x08,
            Self::Codec8Ext => 0x8E,
            Self::Codec16 => 0x10,
        }
    }

    /// The codec for a codec byte, if it is an AVL one.
    pub const fn from_id(id: u8) -> Option<Self> {
        match id {
            0x08 => Some(Self::Codec8),
            0x8E => Some(Self::Codec8Ext),
            0x10 => Some(Self::Codec16),
            _ => None,
        }
    }

    /// Width of IO ids (and of the event IO id).
    const fn id_len(self) -> usize {
        match self {
            Self::Codec8 => 1,
            Self::Codec8Ext | Self::Codec16 => 2,
        }
    }
}

/// `8`, `8E` or `16`: the spelling of the stream record's `codec` field.
impl fmt::Display for AvlCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Codec8 => "8",
            Self::Codec8Ext => "8E",
            Self::Codec16 => "16",
        })
    }
}

/// Record priority (`0`–`2`; anything else is rejected).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Priority {
    /// 0.
    Low = 0,
    /// 1.
    High = 1,
    /// 2.
    Panic = 2,
}

impl Priority {
    /// The priority for a byte, if it is 0, 1 or 2.
    pub const fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(Self::Low),
            1 => Some(Self::High),
            2 => Some(Self::Panic),
            _ => None,
        }
    }
}

/// Why a Codec 16 record was generated (`0`–`7`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum GenerationType {
    /// 0: on exit.
    OnExit = 0,
    /// 1: on entrance.
    OnEntrance = 1,
    /// 2: on both.
    OnBoth = 2,
    /// 3: reserved.
    Reserved = 3,
    /// 4: hysteresis.
    Hysteresis = 4,
    /// 5: on change.
    OnChange = 5,
    /// 6: eventual.
    Eventual = 6,
    /// 7: periodical.
    Periodical = 7,
}

impl GenerationType {
    /// The generation type for a byte, if it is 0..=7.
    pub const fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0 => Self::OnExit,
            1 => Self::OnEntrance,
            2 => Self::OnBoth,
            3 => Self::Reserved,
            4 => Self::Hysteresis,
            5 => Self::OnChange,
            6 => Self::Eventual,
            7 => Self::Periodical,
            _ => return None,
        })
    }
}

/// The GPS element: raw integers as sent, with accessors in degrees.
///
/// 0 satellites and speed 0 may mean "no fix"; the values are kept as sent.
///
/// ```
/// use teltonika_codec::Gps;
///
/// let gps = Gps { longitude_raw: 252_560_283, latitude_raw: -546_674_250, altitude: -6,
///                 angle: 248, satellites: 11, speed: 0 };
/// assert_eq!(gps.longitude(), 25.2560283);
/// assert_eq!(gps.latitude(), -54.667425);
/// assert_eq!(Gps::from_bytes(&gps.to_bytes()), gps);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Gps {
    /// Longitude, degrees × 10^7 (two's complement).
    pub longitude_raw: i32,
    /// Latitude, degrees × 10^7 (two's complement).
    pub latitude_raw: i32,
    /// Altitude in metres (signed: trackers below sea level send `0xFFFA` = −6).
    pub altitude: i16,
    /// Course over ground, degrees.
    pub angle: u16,
    /// Satellites in use.
    pub satellites: u8,
    /// Speed, km/h.
    pub speed: u16,
}

impl Gps {
    /// Encoded size.
    pub const LEN: usize = 15;

    /// Longitude in degrees.
    pub fn longitude(&self) -> f64 {
        f64::from(self.longitude_raw) / 1e7
    }

    /// Latitude in degrees.
    pub fn latitude(&self) -> f64 {
        f64::from(self.latitude_raw) / 1e7
    }

    /// Reads the 15-byte element.
    pub const fn from_bytes(bytes: &[u8; Self::LEN]) -> Self {
        let b = bytes;
        Self {
            longitude_raw: i32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            latitude_raw: i32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            altitude: i16::from_be_bytes([b[8], b[9]]),
            angle: u16::from_be_bytes([b[10], b[11]]),
            satellites: b[12],
            speed: u16::from_be_bytes([b[13], b[14]]),
        }
    }

    /// The 15-byte element.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[0..4].copy_from_slice(&self.longitude_raw.to_be_bytes());
        out[4..8].copy_from_slice(&self.latitude_raw.to_be_bytes());
        out[8..10].copy_from_slice(&self.altitude.to_be_bytes());
        out[10..12].copy_from_slice(&self.angle.to_be_bytes());
        out[12] = self.satellites;
        out[13..15].copy_from_slice(&self.speed.to_be_bytes());
        out
    }
}

/// An IO value as sent, borrowed: the width is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IoValueView<'a> {
    /// A 1-byte value.
    U8(u8),
    /// A 2-byte value.
    U16(u16),
    /// A 4-byte value.
    U32(u32),
    /// An 8-byte value.
    U64(u64),
    /// A variable-length (NX, Codec 8 Extended) value; may be empty.
    Bytes(&'a [u8]),
}

impl IoValueView<'_> {
    /// The value as an unsigned integer, unless it is bytes.
    pub const fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::U8(value) => Some(value as u64),
            Self::U16(value) => Some(value as u64),
            Self::U32(value) => Some(value as u64),
            Self::U64(value) => Some(value),
            Self::Bytes(_) => None,
        }
    }

    /// Copies into an owned [`IoValue`].
    pub fn to_owned(&self) -> IoValue {
        match *self {
            Self::U8(value) => IoValue::U8(value),
            Self::U16(value) => IoValue::U16(value),
            Self::U32(value) => IoValue::U32(value),
            Self::U64(value) => IoValue::U64(value),
            Self::Bytes(bytes) => IoValue::Bytes(bytes.to_vec()),
        }
    }
}

/// An IO value as sent, owned: the width is kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IoValue {
    /// A 1-byte value.
    U8(u8),
    /// A 2-byte value.
    U16(u16),
    /// A 4-byte value.
    U32(u32),
    /// An 8-byte value.
    U64(u64),
    /// A variable-length (NX, Codec 8 Extended) value; may be empty.
    Bytes(Vec<u8>),
}

impl IoValue {
    /// Borrows as an [`IoValueView`].
    pub fn as_view(&self) -> IoValueView<'_> {
        match self {
            Self::U8(value) => IoValueView::U8(*value),
            Self::U16(value) => IoValueView::U16(*value),
            Self::U32(value) => IoValueView::U32(*value),
            Self::U64(value) => IoValueView::U64(*value),
            Self::Bytes(bytes) => IoValueView::Bytes(bytes),
        }
    }

    /// Index of the group this value travels in: 0..=3 for 1/2/4/8 bytes, 4 for NX.
    const fn group(&self) -> usize {
        match self {
            Self::U8(_) => 0,
            Self::U16(_) => 1,
            Self::U32(_) => 2,
            Self::U64(_) => 3,
            Self::Bytes(_) => 4,
        }
    }
}

/// One IO element, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IoElementView<'a> {
    /// The IO id (AVL id).
    pub id: u16,
    /// The raw value.
    pub value: IoValueView<'a>,
}

impl IoElementView<'_> {
    /// Copies into an owned [`IoElement`].
    pub fn to_owned(&self) -> IoElement {
        IoElement {
            id: self.id,
            value: self.value.to_owned(),
        }
    }
}

/// One IO element, owned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IoElement {
    /// The IO id (AVL id).
    pub id: u16,
    /// The raw value.
    pub value: IoValue,
}

/// A record's IO elements, owned, kept as on the wire in one allocation (the groups of 1-,
/// 2-, 4- and 8-byte values, then NX in 8E) for the codec they were decoded from or built
/// for. Iterate with [`iter`](Self::iter) (the same iterator as a view's); build with
/// [`from_elements`](Self::from_elements). Lists of different codecs are never equal.
///
/// ```
/// use teltonika_codec::{AvlCodec, IoElement, IoList, IoValue, IoValueView};
///
/// let io = IoList::from_elements(AvlCodec::Codec8Ext, &[
///     IoElement { id: 385, value: IoValue::Bytes(vec![1, 2]) },
///     IoElement { id: 21, value: IoValue::U8(4) },
/// ])?;
/// // Wire order: fixed widths first, NX last.
/// let ids: Vec<_> = io.iter().map(|element| element.id).collect();
/// assert_eq!(ids, [21, 385]);
/// assert_eq!(io.iter().nth(1).unwrap().value, IoValueView::Bytes(&[1, 2]));
/// assert!(IoList::from_elements(AvlCodec::Codec8, &[IoElement { id: 300, value: IoValue::U8(0) }]).is_err());
/// # Ok::<(), teltonika_codec::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IoList {
    codec: AvlCodec,
    count: u32,
    bytes: Vec<u8>,
}

impl IoList {
    /// An empty list for `codec`.
    pub fn new(codec: AvlCodec) -> Self {
        let groups = if codec == AvlCodec::Codec8Ext { 10 } else { 4 };
        Self {
            codec,
            count: 0,
            bytes: vec![0; groups],
        }
    }

    /// Lays `elements` out for `codec`: grouped by width, in their order within a group.
    /// Fails on what the codec cannot carry (codec 8: ids above 255; 8 and 16: NX values,
    /// more than 255 elements; 8E: more than 65535, or an NX value over 65535 bytes).
    pub fn from_elements(codec: AvlCodec, elements: &[IoElement]) -> Result<Self> {
        let mut counts = [0usize; 5];
        for element in elements {
            counts[element.value.group()] += 1;
        }
        if codec != AvlCodec::Codec8Ext && counts[4] > 0 {
            return Err(Error::Unencodable(
                "variable-length IO values exist only in codec 8E",
            ));
        }
        let max = if codec == AvlCodec::Codec8Ext {
            usize::from(u16::MAX)
        } else {
            usize::from(u8::MAX)
        };
        if elements.len() > max {
            return Err(Error::Unencodable(
                "more IO elements than the codec's total can count",
            ));
        }
        let mut bytes = Vec::with_capacity(10 + elements.len() * 6);
        let groups = if codec == AvlCodec::Codec8Ext { 5 } else { 4 };
        for (group, &count) in counts.iter().enumerate().take(groups) {
            if codec == AvlCodec::Codec8Ext {
                bytes.extend_from_slice(&(count as u16).to_be_bytes());
            } else {
                bytes.push(count as u8);
            }
            for element in elements
                .iter()
                .filter(|element| element.value.group() == group)
            {
                if codec == AvlCodec::Codec8 {
                    let id = u8::try_from(element.id)
                        .map_err(|_| Error::Unencodable("codec 8 IO id above 255"))?;
                    bytes.push(id);
                } else {
                    bytes.extend_from_slice(&element.id.to_be_bytes());
                }
                match &element.value {
                    IoValue::U8(value) => bytes.push(*value),
                    IoValue::U16(value) => bytes.extend_from_slice(&value.to_be_bytes()),
                    IoValue::U32(value) => bytes.extend_from_slice(&value.to_be_bytes()),
                    IoValue::U64(value) => bytes.extend_from_slice(&value.to_be_bytes()),
                    IoValue::Bytes(value) => {
                        let len = u16::try_from(value.len())
                            .map_err(|_| Error::Unencodable("NX value longer than 65535 bytes"))?;
                        bytes.extend_from_slice(&len.to_be_bytes());
                        bytes.extend_from_slice(value);
                    }
                }
            }
        }
        Ok(Self {
            codec,
            count: elements.len() as u32,
            bytes,
        })
    }

    /// The codec the elements are laid out for.
    pub const fn codec(&self) -> AvlCodec {
        self.codec
    }

    /// Number of elements.
    pub const fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether there are none.
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The elements, in wire order.
    pub fn iter(&self) -> IoElements<'_> {
        IoElements {
            codec: self.codec,
            rest: &self.bytes,
            remaining: self.count,
            left_in_group: 0,
            group: 0,
            next_group: 0,
        }
    }

    /// The elements as owned values.
    pub fn to_vec(&self) -> Vec<IoElement> {
        self.iter().map(|element| element.to_owned()).collect()
    }
}

impl<'a> IntoIterator for &'a IoList {
    type Item = IoElementView<'a>;
    type IntoIter = IoElements<'a>;

    fn into_iter(self) -> IoElements<'a> {
        self.iter()
    }
}

impl fmt::Debug for IoList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Largest AVL timestamp a `time::OffsetDateTime` holds: 9999-12-31T23:59:59.999Z.
pub const MAX_TIMESTAMP_MS: u64 = 253_402_300_799_999;

/// Record header: timestamp, priority, GPS.
const HEAD_LEN: usize = 8 + 1 + Gps::LEN;

fn millis_to_datetime(millis: u64) -> OffsetDateTime {
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
    codec: AvlCodec,
    bytes: &'a [u8],
    head: &'a [u8; HEAD_LEN],
    priority: Priority,
    event_io_id: u16,
    generation_type: Option<GenerationType>,
    io_total: u16,
    io_counted: u32,
    io: &'a [u8],
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
    codec: AvlCodec,
    rest: &'a [u8],
    remaining: u32,
    left_in_group: u16,
    group: u8,
    next_group: u8,
}

#[inline]
fn take<'a, const N: usize>(rest: &mut &'a [u8]) -> Option<&'a [u8; N]> {
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

#[cold]
fn truncated(offset: usize, what: &'static str, needed: usize) -> Error {
    Error::Truncated {
        offset,
        what,
        needed,
    }
}

/// Parses one record at the start of `input`; `offset` is its absolute position (for
/// errors). Returns the view, its length, and an IO-total mismatch if there is one (fatal
/// in strict mode, a deviation in lenient mode).
#[inline]
fn parse_record(
    codec: AvlCodec,
    input: &[u8],
    offset: usize,
) -> Result<(AvlRecordView<'_>, Option<Error>)> {
    let Some(head) = input.first_chunk::<HEAD_LEN>() else {
        return Err(truncated(offset, "record header", HEAD_LEN - input.len()));
    };
    let Some(priority) = Priority::from_u8(head[8]) else {
        return Err(Error::BadPriority {
            offset: offset + 8,
            value: head[8],
        });
    };
    let millis = u64::from_be_bytes([
        head[0], head[1], head[2], head[3], head[4], head[5], head[6], head[7],
    ]);
    if millis > MAX_TIMESTAMP_MS {
        return Err(Error::TimestampOutOfRange { offset, millis });
    }
    let mut pos = HEAD_LEN;
    let (event_io_id, generation_type, io_total) = match codec {
        AvlCodec::Codec8 => {
            let Some(&[event, total]) = input.get(pos..).and_then(<[u8]>::first_chunk::<2>) else {
                return Err(truncated(offset + pos, "event IO id and IO total", 2));
            };
            pos += 2;
            (u16::from(event), None, u16::from(total))
        }
        AvlCodec::Codec8Ext => {
            let Some(&[e0, e1, t0, t1]) = input.get(pos..).and_then(<[u8]>::first_chunk::<4>)
            else {
                return Err(truncated(offset + pos, "event IO id and IO total", 4));
            };
            pos += 4;
            (
                u16::from_be_bytes([e0, e1]),
                None,
                u16::from_be_bytes([t0, t1]),
            )
        }
        AvlCodec::Codec16 => {
            let Some(&[e0, e1, generation, total]) =
                input.get(pos..).and_then(<[u8]>::first_chunk::<4>)
            else {
                return Err(truncated(
                    offset + pos,
                    "event IO id, generation type and IO total",
                    4,
                ));
            };
            let Some(generation) = GenerationType::from_u8(generation) else {
                return Err(Error::BadGenerationType {
                    offset: offset + pos + 2,
                    value: generation,
                });
            };
            pos += 4;
            (
                u16::from_be_bytes([e0, e1]),
                Some(generation),
                u16::from(total),
            )
        }
    };
    let total_at = pos - if codec == AvlCodec::Codec8Ext { 2 } else { 1 };
    let io_start = pos;
    let mut counted = 0u32;
    match codec {
        AvlCodec::Codec8 | AvlCodec::Codec16 => {
            let id_len = codec.id_len();
            for width in [1usize, 2, 4, 8] {
                let Some(&count) = input.get(pos) else {
                    return Err(truncated(offset + pos, "IO group count", 1));
                };
                let group_at = pos;
                pos += 1 + usize::from(count) * (id_len + width);
                if pos > input.len() {
                    return Err(truncated(offset + group_at, "IO group", pos - input.len()));
                }
                counted += u32::from(count);
            }
        }
        AvlCodec::Codec8Ext => {
            for width in [1usize, 2, 4, 8] {
                let Some(&[c0, c1]) = input.get(pos..).and_then(<[u8]>::first_chunk::<2>) else {
                    return Err(truncated(offset + pos, "IO group count", 2));
                };
                let count = u16::from_be_bytes([c0, c1]);
                let group_at = pos;
                pos += 2 + usize::from(count) * (2 + width);
                if pos > input.len() {
                    return Err(truncated(offset + group_at, "IO group", pos - input.len()));
                }
                counted += u32::from(count);
            }
            let Some(&[c0, c1]) = input.get(pos..).and_then(<[u8]>::first_chunk::<2>) else {
                return Err(truncated(offset + pos, "NX group count", 2));
            };
            let count = u16::from_be_bytes([c0, c1]);
            pos += 2;
            for _ in 0..count {
                let Some(&[_, _, l0, l1]) = input.get(pos..).and_then(<[u8]>::first_chunk::<4>)
                else {
                    return Err(truncated(offset + pos, "NX element header", 4));
                };
                let element_at = pos;
                pos += 4 + usize::from(u16::from_be_bytes([l0, l1]));
                if pos > input.len() {
                    return Err(truncated(
                        offset + element_at,
                        "NX value",
                        pos - input.len(),
                    ));
                }
            }
            counted += u32::from(count);
        }
    }
    let mismatch = (counted != u32::from(io_total)).then_some(Error::IoTotalMismatch {
        offset: offset + total_at,
        declared: io_total,
        counted,
    });
    let (Some(bytes), Some(io)) = (input.get(..pos), input.get(io_start..pos)) else {
        // pos <= input.len() was checked after every step.
        return Err(truncated(offset + pos, "record", 0));
    };
    let view = AvlRecordView {
        codec,
        bytes,
        head,
        priority,
        event_io_id,
        generation_type,
        io_total,
        io_counted: counted,
        io,
    };
    Ok((view, mismatch))
}

/// Walks `count` records from the start of `records` with every strict check, and returns
/// where they end; on a defect, returns the start of the record that has it.
#[inline(always)]
fn walk_records<const ID: usize, const COUNT: usize, const NX: bool>(
    records: &[u8],
    count: u8,
) -> core::result::Result<usize, usize> {
    let mut pos = 0;
    for _ in 0..count {
        match record_end::<ID, COUNT, NX>(records, pos) {
            Some(end) => pos = end,
            None => return Err(pos),
        }
    }
    Ok(pos)
}

#[inline(always)]
fn read_count<const COUNT: usize>(input: &[u8], pos: usize) -> Option<usize> {
    if COUNT == 2 {
        let &[high, low] = input.get(pos..)?.first_chunk::<2>()?;
        Some(usize::from(u16::from_be_bytes([high, low])))
    } else {
        input.get(pos).map(|&count| usize::from(count))
    }
}

/// End of the record starting at `start`, if it passes every strict check. `ID` is the IO id
/// width (1 in codec 8), `COUNT` the count width (2 in 8E), `NX` whether an NX group
/// follows (8E); codec 16 is the one with `ID = 2, COUNT = 1` and a generation type.
#[inline(always)]
fn record_end<const ID: usize, const COUNT: usize, const NX: bool>(
    input: &[u8],
    start: usize,
) -> Option<usize> {
    let head = input.get(start..)?.first_chunk::<HEAD_LEN>()?;
    let millis = u64::from_be_bytes([
        head[0], head[1], head[2], head[3], head[4], head[5], head[6], head[7],
    ]);
    if head[8] > 2 || millis > MAX_TIMESTAMP_MS {
        return None;
    }
    let generation = ID == 2 && COUNT == 1;
    let mut pos = start + HEAD_LEN + ID;
    if generation {
        if *input.get(pos)? > 7 {
            return None;
        }
        pos += 1;
    }
    let declared = read_count::<COUNT>(input, pos)?;
    pos += COUNT;
    let mut counted = 0;
    for width in [1, 2, 4, 8] {
        let count = read_count::<COUNT>(input, pos)?;
        pos += COUNT + count * (ID + width);
        counted += count;
    }
    if NX {
        let count = read_count::<2>(input, pos)?;
        pos += 2;
        for _ in 0..count {
            let len = read_count::<2>(input, pos + 2)?;
            pos += 4 + len;
        }
        counted += count;
    }
    (pos <= input.len() && counted == declared).then_some(pos)
}

/// The detailed error for the record at `at` that the fast walk refused.
#[cold]
#[inline(never)]
fn record_error(codec: AvlCodec, records: &[u8], at: usize, records_at: usize) -> Error {
    let rest = records.get(at..).unwrap_or_default();
    match parse_record(codec, rest, records_at + at) {
        Err(error) | Ok((_, Some(error))) => error,
        // Unreachable: both walks apply the same checks.
        Ok((_, None)) => truncated(records_at + at, "record", 0),
    }
}

/// Validates an AVL data field (`codec id` · `count` · records · `count`), `base` being its
/// absolute offset. Strict mode returns the first defect; lenient mode walks the records
/// that are there and reports count, zero-count and IO-total defects in `deviations`.
pub(crate) fn parse_avl_data<'a>(
    codec: AvlCodec,
    data: &'a [u8],
    base: usize,
    lenient: bool,
    deviations: &mut Vec<Error>,
) -> Result<AvlPacketView<'a>> {
    let len = data.len();
    if len < 3 {
        let what = if len < 2 {
            "record count"
        } else {
            "second record count"
        };
        return Err(truncated(base + len, what, 3 - len));
    }
    let (first, second) = (data[1], data[len - 1]);
    let records = &data[2..len - 1];
    let records_at = base + 2;
    if !lenient {
        if first != second {
            return Err(Error::CountMismatch {
                offset: base + 1,
                first,
                second,
            });
        }
        if first == 0 {
            return Err(Error::ZeroRecords { offset: base + 1 });
        }
        // Fast path: walk without building views or errors; on the first defect, the
        // detailed parser names it.
        let walked = match codec {
            AvlCodec::Codec8 => walk_records::<1, 1, false>(records, first),
            AvlCodec::Codec8Ext => walk_records::<2, 2, true>(records, first),
            AvlCodec::Codec16 => walk_records::<2, 1, false>(records, first),
        };
        let pos = match walked {
            Ok(pos) => pos,
            Err(at) => return Err(record_error(codec, records, at, records_at)),
        };
        if pos != records.len() {
            return Err(Error::TrailingBytes {
                offset: records_at + pos,
                count: records.len() - pos,
            });
        }
        return Ok(AvlPacketView {
            codec,
            count: first,
            records,
        });
    }
    let mut pos = 0;
    let mut found = 0usize;
    while pos < records.len() && found < usize::from(u8::MAX) {
        let rest = records.get(pos..).unwrap_or_default();
        let (view, mismatch) = parse_record(codec, rest, records_at + pos)?;
        deviations.extend(mismatch);
        pos += view.bytes.len();
        found += 1;
    }
    if pos != records.len() {
        return Err(Error::TrailingBytes {
            offset: records_at + pos,
            count: records.len() - pos,
        });
    }
    if first != second {
        deviations.push(Error::CountMismatch {
            offset: base + 1,
            first,
            second,
        });
    }
    if first == 0 {
        deviations.push(Error::ZeroRecords { offset: base + 1 });
    }
    if found != usize::from(first) {
        deviations.push(Error::RecordsFound {
            offset: base + 1,
            declared: first,
            found,
        });
    }
    Ok(AvlPacketView {
        codec,
        count: found as u8,
        records,
    })
}

/// A validated AVL packet (the records of one TCP frame or UDP datagram), borrowed.
#[derive(Clone, Copy)]
pub struct AvlPacketView<'a> {
    codec: AvlCodec,
    count: u8,
    records: &'a [u8],
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
    codec: AvlCodec,
    rest: &'a [u8],
    remaining: u8,
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

/// One AVL record, owned. Also what the encoders take.
///
/// Its IO elements are an [`IoList`]: one allocation holding them as on the wire, so
/// copying a record out of a buffer costs one allocation and one copy, whatever its IO.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AvlRecord {
    /// GNSS timestamp (UTC); encodes as whole milliseconds since the Unix epoch.
    pub timestamp: OffsetDateTime,
    /// Priority.
    pub priority: Priority,
    /// GPS element.
    pub gps: Gps,
    /// The IO id that triggered the record (0: none; at most 255 in codec 8).
    pub event_io_id: u16,
    /// Required in codec 16, absent in 8 and 8E.
    pub generation_type: Option<GenerationType>,
    /// IO elements.
    pub io: IoList,
}

impl AvlRecord {
    /// GNSS timestamp in milliseconds since the Unix epoch, if it is a whole number of
    /// milliseconds between the epoch and [`MAX_TIMESTAMP_MS`].
    pub fn timestamp_ms(&self) -> Option<u64> {
        let nanos = (self.timestamp - OffsetDateTime::UNIX_EPOCH).whole_nanoseconds();
        if nanos < 0 || nanos % 1_000_000 != 0 {
            return None;
        }
        u64::try_from(nanos / 1_000_000)
            .ok()
            .filter(|&millis| millis <= MAX_TIMESTAMP_MS)
    }
}

/// An AVL packet (records of one frame or datagram), owned.
///
/// ```
/// use teltonika_codec::{AvlCodec, AvlPacket, AvlRecord, Gps, IoElement, IoList, IoValue,
///                       Priority, TcpFrame, decode_tcp_frame};
/// use time::macros::datetime;
///
/// let packet = AvlPacket {
///     codec: AvlCodec::Codec8Ext,
///     records: vec![AvlRecord {
///         timestamp: datetime!(2026-05-02 11:00:00 UTC),
///         priority: Priority::High,
///         gps: Gps { longitude_raw: 198_187_000, latitude_raw: 413_275_000, altitude: 112,
///                    angle: 270, satellites: 11, speed: 86 },
///         event_io_id: 0,
///         generation_type: None,
///         io: IoList::from_elements(AvlCodec::Codec8Ext, &[
///             IoElement { id: 21, value: IoValue::U8(4) },
///             IoElement { id: 385, value: IoValue::Bytes(vec![1, 2, 3, 4]) },
///         ])?,
///     }],
/// };
/// let bytes = TcpFrame::Avl(packet.clone()).encode()?;
/// let (frame, consumed) = decode_tcp_frame(&bytes)?;
/// assert_eq!(consumed, bytes.len());
/// assert_eq!(frame.to_owned(), TcpFrame::Avl(packet));
/// # Ok::<(), teltonika_codec::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AvlPacket {
    /// The codec to encode with (or that the packet was decoded from).
    pub codec: AvlCodec,
    /// The records (1 to 255).
    pub records: Vec<AvlRecord>,
}

impl AvlPacket {
    /// Appends the data field (`codec id` · `count` · records · `count`) to `out`.
    pub(crate) fn encode_data_into(&self, out: &mut Vec<u8>) -> Result<()> {
        let count = u8::try_from(self.records.len())
            .map_err(|_| Error::Unencodable("more than 255 records in one packet"))?;
        if count == 0 {
            return Err(Error::Unencodable("a packet needs at least one record"));
        }
        out.push(self.codec.id());
        out.push(count);
        for record in &self.records {
            encode_record(self.codec, record, out)?;
        }
        out.push(count);
        Ok(())
    }
}

fn encode_record(codec: AvlCodec, record: &AvlRecord, out: &mut Vec<u8>) -> Result<()> {
    let millis = record.timestamp_ms().ok_or(Error::Unencodable(
        "timestamp must be whole milliseconds between 1970 and 9999",
    ))?;
    out.extend_from_slice(&millis.to_be_bytes());
    out.push(record.priority as u8);
    out.extend_from_slice(&record.gps.to_bytes());
    match codec {
        AvlCodec::Codec8 => {
            let event = u8::try_from(record.event_io_id)
                .map_err(|_| Error::Unencodable("codec 8 event IO id above 255"))?;
            out.push(event);
        }
        AvlCodec::Codec8Ext | AvlCodec::Codec16 => {
            out.extend_from_slice(&record.event_io_id.to_be_bytes())
        }
    }
    match (codec, record.generation_type) {
        (AvlCodec::Codec16, Some(generation)) => out.push(generation as u8),
        (AvlCodec::Codec16, None) => {
            return Err(Error::Unencodable("codec 16 needs a generation type"));
        }
        (_, Some(_)) => {
            return Err(Error::Unencodable(
                "only codec 16 carries a generation type",
            ));
        }
        (_, None) => {}
    }
    let transcoded;
    let io = if record.io.codec == codec {
        &record.io
    } else {
        transcoded = IoList::from_elements(codec, &record.io.to_vec())?;
        &transcoded
    };
    // IoList::from_elements checked that the total fits the codec's count width.
    if codec == AvlCodec::Codec8Ext {
        out.extend_from_slice(&(io.count as u16).to_be_bytes());
    } else {
        out.push(io.count as u8);
    }
    out.extend_from_slice(&io.bytes);
    Ok(())
}
