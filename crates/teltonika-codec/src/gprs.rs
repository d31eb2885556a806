//! GPRS messages (codecs 12, 13, 14 and 15): commands, responses and device messages,
//! framed like AVL data (same preamble, length and CRC) with a message quantity of 1.
//!
//! Data field: `codec id` · `u8 quantity = 1` · `u8 type` · `u32 size` · body (`size` bytes)
//! · `u8 quantity`. The body is, by codec:
//! - 12 (`0x0C`): the payload (command `0x05` or response `0x06`);
//! - 13 (`0x0D`): `u32` timestamp (seconds) · payload (device message);
//! - 14 (`0x0E`): 8-byte BCD IMEI · payload (command `0x05` to that IMEI; the device answers
//!   `0x06` ACK or `0x11` nACK);
//! - 15 (`0x0F`): `u32` timestamp (seconds) · 8-byte BCD IMEI · payload (device message).
//!
//! The message type is kept as the raw byte (`0x0D` photo chunks and `0x0B` messages are
//! seen in the wild); [`GprsMessage::COMMAND`], [`GprsMessage::RESPONSE`] and
//! [`GprsMessage::NACK`] name the documented ones.

use core::fmt;

use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::imei::Imei;

/// The GPRS codecs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GprsCodec {
    /// Codec 12 (`0x0C`): command / response.
    Codec12,
    /// Codec 13 (`0x0D`): device message with a timestamp.
    Codec13,
    /// Codec 14 (`0x0E`): command addressed to an IMEI, and its ACK / nACK.
    Codec14,
    /// Codec 15 (`0x0F`): device message with a timestamp and an IMEI.
    Codec15,
}

impl GprsCodec {
    /// The codec byte on the wire.
    pub const fn id(self) -> u8 {
        match self {
            Self::Codec12 => 0x0C,
            Self::Codec13 => 0x0D,
            Self::Codec14 => 0x0E,
            Self::Codec15 => 0x0F,
        }
    }

    /// The codec for a codec byte, if it is a GPRS one.
    pub const fn from_id(id: u8) -> Option<Self> {
        match id {
            0x0C => Some(Self::Codec12),
            0x0D => Some(Self::Codec13),
            0x0E => Some(Self::Codec14),
            0x0F => Some(Self::Codec15),
            _ => None,
        }
    }

    const fn has_timestamp(self) -> bool {
        matches!(self, Self::Codec13 | Self::Codec15)
    }

    const fn has_imei(self) -> bool {
        matches!(self, Self::Codec14 | Self::Codec15)
    }
}

/// A validated GPRS message, borrowed.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct GprsMessageView<'a> {
    codec: GprsCodec,
    message_type: u8,
    timestamp_s: Option<u32>,
    imei: Option<Imei>,
    payload: &'a [u8],
}

impl<'a> GprsMessageView<'a> {
    /// The codec.
    pub const fn codec(&self) -> GprsCodec {
        self.codec
    }

    /// The type byte (`0x05` command, `0x06` response/ACK, `0x11` nACK, …).
    pub const fn message_type(&self) -> u8 {
        self.message_type
    }

    /// Codecs 13 and 15: the timestamp, seconds since the Unix epoch.
    pub const fn timestamp_s(&self) -> Option<u32> {
        self.timestamp_s
    }

    /// Codecs 13 and 15: the timestamp (UTC).
    pub fn timestamp(&self) -> Option<OffsetDateTime> {
        self.timestamp_s
            .and_then(|seconds| OffsetDateTime::from_unix_timestamp(i64::from(seconds)).ok())
    }

    /// Codecs 14 and 15: the IMEI.
    pub const fn imei(&self) -> Option<Imei> {
        self.imei
    }

    /// The payload (command or response text, usually ASCII; without the timestamp and IMEI).
    pub const fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// Copies into an owned [`GprsMessage`].
    pub fn to_owned(&self) -> GprsMessage {
        GprsMessage {
            message_type: self.message_type,
            timestamp: self.timestamp(),
            imei: self.imei,
            payload: self.payload.to_vec(),
        }
    }
}

impl fmt::Debug for GprsMessageView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GprsMessageView")
            .field("codec", &self.codec)
            .field("message_type", &self.message_type)
            .field("timestamp", &self.timestamp())
            .field("imei", &self.imei)
            .field("payload", &String::from_utf8_lossy(self.payload))
            .finish()
    }
}

/// A GPRS message, owned: what the encoder takes.
///
/// The codec follows from which optional parts are present: neither → 12, timestamp → 13,
/// IMEI → 14, both → 15.
///
/// ```
/// use teltonika_codec::{GprsCodec, GprsMessage, TcpFrame};
///
/// let getinfo = GprsMessage::command("getinfo");
/// assert_eq!(getinfo.codec(), GprsCodec::Codec12);
/// let bytes = TcpFrame::Gprs(getinfo).encode()?;
/// // Teltonika wiki, Codec 12, "getinfo" command.
/// assert_eq!(bytes, [0, 0, 0, 0, 0, 0, 0, 0x0F, 0x0C, 0x01, 0x05, 0, 0, 0, 0x07,
///                    b'g', b'e', b't', b'i', b'n', b'f', b'o', 0x01, 0, 0, 0x43, 0x12]);
/// # Ok::<(), teltonika_codec::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GprsMessage {
    /// The type byte.
    pub message_type: u8,
    /// Codecs 13 and 15: whole seconds between 1970 and 2106.
    pub timestamp: Option<OffsetDateTime>,
    /// Codecs 14 and 15.
    pub imei: Option<Imei>,
    /// The payload.
    pub payload: Vec<u8>,
}

impl GprsMessage {
    /// Type of a server→device command.
    pub const COMMAND: u8 = 0x05;
    /// Type of a device→server response (and of a Codec 14 ACK).
    pub const RESPONSE: u8 = 0x06;
    /// Type of a Codec 14 nACK (the IMEI did not match).
    pub const NACK: u8 = 0x11;

    /// A Codec 12 command.
    pub fn command(text: impl Into<Vec<u8>>) -> Self {
        Self {
            message_type: Self::COMMAND,
            timestamp: None,
            imei: None,
            payload: text.into(),
        }
    }

    /// A Codec 14 command, executed only by the tracker with this IMEI.
    pub fn command_to(imei: Imei, text: impl Into<Vec<u8>>) -> Self {
        Self {
            message_type: Self::COMMAND,
            timestamp: None,
            imei: Some(imei),
            payload: text.into(),
        }
    }

    /// The codec this message encodes with.
    pub const fn codec(&self) -> GprsCodec {
        match (self.timestamp.is_some(), self.imei.is_some()) {
            (false, false) => GprsCodec::Codec12,
            (true, false) => GprsCodec::Codec13,
            (false, true) => GprsCodec::Codec14,
            (true, true) => GprsCodec::Codec15,
        }
    }

    /// Appends the data field (`codec id` … second quantity) to `out`.
    pub(crate) fn encode_data_into(&self, out: &mut Vec<u8>) -> Result<()> {
        let codec = self.codec();
        let seconds = match self.timestamp {
            None => None,
            Some(timestamp) => {
                let seconds = timestamp.unix_timestamp();
                if timestamp.nanosecond() != 0 {
                    return Err(Error::Unencodable("GPRS timestamp must be whole seconds"));
                }
                Some(
                    u32::try_from(seconds)
                        .map_err(|_| Error::Unencodable("GPRS timestamp outside 1970..2106"))?,
                )
            }
        };
        let body_len = self.payload.len()
            + 4 * usize::from(seconds.is_some())
            + 8 * usize::from(self.imei.is_some());
        let size =
            u32::try_from(body_len).map_err(|_| Error::Unencodable("GPRS payload over 4 GiB"))?;
        out.reserve(8 + body_len);
        out.extend_from_slice(&[codec.id(), 1, self.message_type]);
        out.extend_from_slice(&size.to_be_bytes());
        if let Some(seconds) = seconds {
            out.extend_from_slice(&seconds.to_be_bytes());
        }
        if let Some(imei) = self.imei {
            out.extend_from_slice(&imei.to_bcd());
        }
        out.extend_from_slice(&self.payload);
        out.push(1);
        Ok(())
    }
}

/// Validates a GPRS data field (`codec id` … second quantity), `base` being its offset.
pub(crate) fn parse_gprs_data<'a>(
    codec: GprsCodec,
    data: &'a [u8],
    base: usize,
    lenient: bool,
    deviations: &mut Vec<Error>,
) -> Result<GprsMessageView<'a>> {
    let Some((&[_codec, first, message_type, s0, s1, s2, s3], rest)) =
        data.split_first_chunk::<7>()
    else {
        return Err(Error::Truncated {
            offset: base + data.len(),
            what: "command header",
            needed: 8 - data.len(),
        });
    };
    let Some((&second, body)) = rest.split_last() else {
        return Err(Error::Truncated {
            offset: base + data.len(),
            what: "second quantity",
            needed: 1,
        });
    };
    let mut defect = |error: Error| {
        if lenient {
            deviations.push(error);
            Ok(())
        } else {
            Err(error)
        }
    };
    if first != 1 {
        defect(Error::BadQuantity {
            offset: base + 1,
            value: first,
        })?;
    }
    if second != first {
        defect(Error::CountMismatch {
            offset: base + 1,
            first,
            second,
        })?;
    }
    let size = u32::from_be_bytes([s0, s1, s2, s3]);
    if u64::from(size) != body.len() as u64 {
        return Err(Error::LengthMismatch {
            offset: base + 3,
            what: "command size",
            declared: size as usize,
            actual: body.len(),
        });
    }
    let body_at = base + 7;
    let mut pos = 0;
    let timestamp_s = if codec.has_timestamp() {
        let Some(&[t0, t1, t2, t3]) = body.first_chunk::<4>() else {
            return Err(Error::Truncated {
                offset: body_at,
                what: "timestamp",
                needed: 4 - body.len(),
            });
        };
        pos += 4;
        Some(u32::from_be_bytes([t0, t1, t2, t3]))
    } else {
        None
    };
    let imei = if codec.has_imei() {
        let Some(bcd) = body.get(pos..).and_then(<[u8]>::first_chunk::<8>) else {
            return Err(Error::Truncated {
                offset: body_at + pos,
                what: "IMEI",
                needed: 8 - (body.len() - pos),
            });
        };
        let imei = Imei::from_bcd(*bcd).map_err(|error| error.shifted(body_at + pos))?;
        pos += 8;
        Some(imei)
    } else {
        None
    };
    let payload = body.get(pos..).unwrap_or_default();
    Ok(GprsMessageView {
        codec,
        message_type,
        timestamp_s,
        imei,
        payload,
    })
}
