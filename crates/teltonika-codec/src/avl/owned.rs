//! The owned packet and record, and their encoder.

use time::OffsetDateTime;

use crate::error::{Error, Result};

use super::types::*;
use super::view::*;

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
