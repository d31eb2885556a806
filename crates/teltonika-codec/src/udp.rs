//! UDP datagrams and their ACKs.
//!
//! Datagram: `u16 length` (bytes after this field) · `u16 packet id` · `u8 not-usable byte`
//! (0x01 today, 0x00 in older firmware: kept, never rejected) · `u8 AVL packet id` ·
//! `u16 IMEI length` (15) · IMEI · AVL data (`codec id` · `count` · records · `count`; no
//! CRC). One read may hold several datagrams back to back: [`datagrams`] splits them by
//! their length.
//!
//! ACK: `u16 length = 5` · `u16 packet id` · `u8 0x01` · `u8 AVL packet id` ·
//! `u8 records accepted`.

use crate::avl::{AvlCodec, AvlPacket, AvlPacketView, parse_avl_data};
use crate::error::{Error, Result};
use crate::imei::Imei;
use crate::tcp::{DecodeOptions, Decoded};

/// Bytes before the IMEI: length, packet id, not-usable byte, AVL packet id, IMEI length.
const HEAD_LEN: usize = 8;

/// A validated UDP datagram, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct DatagramView<'a> {
    packet_id: u16,
    not_usable: u8,
    avl_packet_id: u8,
    imei: Imei,
    packet: AvlPacketView<'a>,
}

impl<'a> DatagramView<'a> {
    /// Packet id (echo it in the ACK).
    pub const fn packet_id(&self) -> u16 {
        self.packet_id
    }

    /// The byte after the packet id (0x01, or 0x00 from older firmware).
    pub const fn not_usable(&self) -> u8 {
        self.not_usable
    }

    /// AVL packet id (echo it in the ACK, or the tracker resends).
    pub const fn avl_packet_id(&self) -> u8 {
        self.avl_packet_id
    }

    /// The sender's IMEI.
    pub const fn imei(&self) -> Imei {
        self.imei
    }

    /// The records.
    pub const fn packet(&self) -> AvlPacketView<'a> {
        self.packet
    }

    /// The ACK for this datagram, saying `accepted` records were stored.
    pub const fn ack(&self, accepted: u8) -> UdpAck {
        UdpAck {
            packet_id: self.packet_id,
            avl_packet_id: self.avl_packet_id,
            accepted,
        }
    }

    /// Copies into an owned [`Datagram`].
    pub fn to_owned(&self) -> Datagram {
        Datagram {
            packet_id: self.packet_id,
            not_usable: self.not_usable,
            avl_packet_id: self.avl_packet_id,
            imei: self.imei,
            packet: self.packet.to_owned(),
        }
    }
}

/// A UDP datagram, owned: what the encoder takes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Datagram {
    /// Packet id.
    pub packet_id: u16,
    /// The byte after the packet id (send 0x01).
    pub not_usable: u8,
    /// AVL packet id.
    pub avl_packet_id: u8,
    /// The sender's IMEI.
    pub imei: Imei,
    /// The records.
    pub packet: AvlPacket,
}

impl Datagram {
    /// Encodes the datagram.
    ///
    /// ```
    /// use teltonika_codec::{decode_datagram, Datagram};
    /// # use teltonika_codec::{AvlCodec, AvlPacket, AvlRecord, Gps, Priority};
    /// # let record = AvlRecord { timestamp: time::OffsetDateTime::UNIX_EPOCH, priority: Priority::Low,
    /// #     gps: Gps::default(), event_io_id: 0, generation_type: None, io: teltonika_codec::IoList::new(AvlCodec::Codec8) };
    /// let datagram = Datagram {
    ///     packet_id: 0xCAFE,
    ///     not_usable: 0x01,
    ///     avl_packet_id: 5,
    ///     imei: "352093086403655".parse()?,
    ///     packet: AvlPacket { codec: AvlCodec::Codec8, records: vec![record] },
    /// };
    /// let bytes = datagram.encode()?;
    /// let (view, consumed) = decode_datagram(&bytes)?;
    /// assert_eq!((view.to_owned(), consumed), (datagram, bytes.len()));
    /// assert_eq!(view.ack(1).encode(), [0x00, 0x05, 0xCA, 0xFE, 0x01, 0x05, 0x01]);
    /// # Ok::<(), teltonika_codec::Error>(())
    /// ```
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Appends the encoded datagram to `out` (on error, `out` is left as it was).
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.packet_id.to_be_bytes());
        out.push(self.not_usable);
        out.push(self.avl_packet_id);
        out.extend_from_slice(&(Imei::LEN as u16).to_be_bytes());
        out.extend_from_slice(&self.imei.to_ascii());
        let length = self.packet.encode_data_into(out).and_then(|()| {
            u16::try_from(out.len() - start - 2)
                .map_err(|_| Error::Unencodable("datagram over 65537 bytes"))
        });
        match length {
            Ok(length) => {
                out[start..start + 2].copy_from_slice(&length.to_be_bytes());
                Ok(())
            }
            Err(error) => {
                out.truncate(start);
                Err(error)
            }
        }
    }
}

impl DecodeOptions {
    /// Decodes the datagram at the start of `input` (a read may hold several: the rest is
    /// left alone, see [`datagrams`]). A length field that runs past `input` is an
    /// [`Error::LengthMismatch`]: a datagram arrives whole or not at all.
    pub fn decode_datagram<'a>(&self, input: &'a [u8]) -> Result<Decoded<DatagramView<'a>>> {
        let mut deviations = Vec::new();
        let (value, consumed) = decode_one(input, self.is_lenient(), &mut deviations)?;
        Ok(Decoded {
            value,
            consumed,
            deviations,
        })
    }
}

/// Decodes the UDP datagram at the start of `input`, strictly; returns it and its length.
pub fn decode_datagram(input: &[u8]) -> Result<(DatagramView<'_>, usize)> {
    decode_one(input, false, &mut Vec::new())
}

fn decode_one<'a>(
    input: &'a [u8],
    lenient: bool,
    deviations: &mut Vec<Error>,
) -> Result<(DatagramView<'a>, usize)> {
    let Some(&[l0, l1]) = input.first_chunk::<2>() else {
        return Err(Error::Truncated {
            offset: input.len(),
            what: "datagram length",
            needed: 2 - input.len(),
        });
    };
    let declared = usize::from(u16::from_be_bytes([l0, l1]));
    let Some(datagram) = input.get(..2 + declared) else {
        return Err(Error::LengthMismatch {
            offset: 0,
            what: "UDP datagram length",
            declared,
            actual: input.len() - 2,
        });
    };
    let Some(&[_, _, p0, p1, not_usable, avl_packet_id, i0, i1]) =
        datagram.first_chunk::<HEAD_LEN>()
    else {
        return Err(Error::Truncated {
            offset: datagram.len(),
            what: "datagram header",
            needed: HEAD_LEN - datagram.len(),
        });
    };
    if u16::from_be_bytes([i0, i1]) != Imei::LEN as u16 {
        return Err(Error::BadImei {
            offset: 6,
            reason: "length field is not 15",
        });
    }
    let Some(digits) = datagram.get(HEAD_LEN..HEAD_LEN + Imei::LEN) else {
        return Err(Error::Truncated {
            offset: HEAD_LEN,
            what: "IMEI",
            needed: HEAD_LEN + Imei::LEN - datagram.len(),
        });
    };
    let imei = Imei::from_ascii(digits).map_err(|error| error.shifted(HEAD_LEN))?;
    let data_at = HEAD_LEN + Imei::LEN;
    let data = datagram.get(data_at..).unwrap_or_default();
    let Some(&codec_id) = data.first() else {
        return Err(Error::Truncated {
            offset: data_at,
            what: "codec id",
            needed: 1,
        });
    };
    let Some(codec) = AvlCodec::from_id(codec_id) else {
        if crate::gprs::GprsCodec::from_id(codec_id).is_some() {
            return Err(Error::UnexpectedCodec {
                offset: data_at,
                codec: codec_id,
                context: "a UDP datagram",
            });
        }
        return Err(Error::UnknownCodec {
            offset: data_at,
            codec: codec_id,
        });
    };
    let packet = parse_avl_data(codec, data, data_at, lenient, deviations)?;
    let view = DatagramView {
        packet_id: u16::from_be_bytes([p0, p1]),
        not_usable,
        avl_packet_id,
        imei,
        packet,
    };
    Ok((view, datagram.len()))
}

/// Splits one read into its datagrams, strictly decoding each.
///
/// A datagram that is whole but invalid yields its error and the iteration goes on with the
/// next; a length field that runs past the read (nothing after it can be found) yields its
/// error and ends the iteration. Error offsets count from the start of `input`.
///
/// ```
/// # use teltonika_codec::{AvlCodec, AvlPacket, AvlRecord, Datagram, Gps, Priority};
/// # let record = AvlRecord { timestamp: time::OffsetDateTime::UNIX_EPOCH, priority: Priority::Low,
/// #     gps: Gps::default(), event_io_id: 0, generation_type: None, io: teltonika_codec::IoList::new(AvlCodec::Codec8) };
/// # let datagram = Datagram { packet_id: 1, not_usable: 1, avl_packet_id: 1,
/// #     imei: "352093086403655".parse()?, packet: AvlPacket { codec: AvlCodec::Codec8, records: vec![record] } };
/// let mut read = datagram.encode()?;
/// read.extend_from_slice(&datagram.encode()?);
/// let acks: Vec<_> = teltonika_codec::datagrams(&read)
///     .map(|datagram| datagram.map(|d| d.ack(d.packet().record_count())))
///     .collect::<Result<_, _>>()?;
/// assert_eq!(acks.len(), 2);
/// # Ok::<(), teltonika_codec::Error>(())
/// ```
pub fn datagrams(input: &[u8]) -> Datagrams<'_> {
    Datagrams { input, offset: 0 }
}

/// Iterator over the datagrams of one read (see [`datagrams`]).
#[derive(Debug, Clone)]
pub struct Datagrams<'a> {
    input: &'a [u8],
    offset: usize,
}

impl<'a> Iterator for Datagrams<'a> {
    type Item = Result<DatagramView<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.input.get(self.offset..)?;
        if rest.is_empty() {
            return None;
        }
        let at = self.offset;
        match decode_one(rest, false, &mut Vec::new()) {
            Ok((view, consumed)) => {
                self.offset += consumed;
                Some(Ok(view))
            }
            Err(error) => {
                // Skip a whole datagram whose length is known; otherwise stop.
                match rest.first_chunk::<2>() {
                    Some(&[l0, l1])
                        if rest.len() >= 2 + usize::from(u16::from_be_bytes([l0, l1])) =>
                    {
                        self.offset += 2 + usize::from(u16::from_be_bytes([l0, l1]));
                    }
                    _ => self.offset = self.input.len(),
                }
                Some(Err(error.shifted(at)))
            }
        }
    }
}

/// The server's answer to a UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpAck {
    /// The datagram's packet id.
    pub packet_id: u16,
    /// The datagram's AVL packet id.
    pub avl_packet_id: u8,
    /// Records accepted.
    pub accepted: u8,
}

impl UdpAck {
    /// Encoded size.
    pub const LEN: usize = 7;

    /// Encodes: `00 05` · packet id · `01` · AVL packet id · accepted.
    pub const fn encode(&self) -> [u8; Self::LEN] {
        let [p0, p1] = self.packet_id.to_be_bytes();
        [0x00, 0x05, p0, p1, 0x01, self.avl_packet_id, self.accepted]
    }

    /// Decodes an ACK (what a tracker or a test client reads); returns it and its length.
    pub fn decode(input: &[u8]) -> Result<(Self, usize)> {
        let Some(&[l0, l1, p0, p1, one, avl_packet_id, accepted]) =
            input.first_chunk::<{ Self::LEN }>()
        else {
            return Err(Error::Incomplete {
                needed: Self::LEN - input.len(),
            });
        };
        let length = usize::from(u16::from_be_bytes([l0, l1]));
        if length != Self::LEN - 2 {
            return Err(Error::LengthMismatch {
                offset: 0,
                what: "UDP ACK length",
                declared: length,
                actual: 5,
            });
        }
        if one != 0x01 {
            return Err(Error::BadReply {
                offset: 4,
                what: "UDP ACK byte",
                found: one,
            });
        }
        Ok((
            Self {
                packet_id: u16::from_be_bytes([p0, p1]),
                avl_packet_id,
                accepted,
            },
            Self::LEN,
        ))
    }
}
