//! The values of AVL data: codec, priority, generation type, GPS element, IO values and the
//! owned IO list.

use core::fmt;

use crate::error::{Error, Result};

use super::view::IoElements;

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
    pub(super) const fn id_len(self) -> usize {
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
    pub(super) const fn group(&self) -> usize {
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
    pub(super) codec: AvlCodec,
    pub(super) count: u32,
    pub(super) bytes: Vec<u8>,
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
