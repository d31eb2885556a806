//! TCP frames: `u32 preamble = 0` · `u32 data length` · data (`codec id` … second count) ·
//! `u32 CRC-16/ARC`; the server's AVL acknowledgement; and [`DecodeOptions`], which sets the
//! frame-length cap and strict or lenient checking for every decoder.
//!
//! Order of checks for one frame: preamble, length cap (both from the 8-byte header, before
//! anything else is needed), completeness, codec byte, CRC, then the content (counts,
//! records, IO groups, trailing bytes).

use crate::avl::{AvlCodec, AvlPacket, AvlPacketView, parse_avl_data};
use crate::crc::crc16;
use crate::error::{Error, Result};
use crate::gprs::{GprsCodec, GprsMessage, GprsMessageView, parse_gprs_data};

/// Bytes before the data field: preamble and data length.
pub const HEADER_LEN: usize = 8;
/// Bytes of a frame outside its data field: header and CRC.
pub const OVERHEAD: usize = HEADER_LEN + 4;

/// How to decode: the frame-length cap and strict or lenient checking.
///
/// ```
/// use teltonika_codec::DecodeOptions;
///
/// let options = DecodeOptions::lenient().with_max_frame_len(1280);
/// assert!(options.is_lenient());
/// assert_eq!(options.max_frame_len(), 1280);
/// assert_eq!(DecodeOptions::default(), DecodeOptions::strict());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    max_frame_len: usize,
    lenient: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self::strict()
    }
}

impl DecodeOptions {
    /// Default cap on a whole TCP frame, preamble to CRC: 64 KiB.
    pub const DEFAULT_MAX_FRAME_LEN: usize = 64 * 1024;

    /// Every check of the protocol; the first defect is an error. The default.
    pub const fn strict() -> Self {
        Self {
            max_frame_len: Self::DEFAULT_MAX_FRAME_LEN,
            lenient: false,
        }
    }

    /// For replaying captures from the field: a frame with a bad CRC, record counts that
    /// disagree (or are 0), or IO totals that disagree with their groups is still decoded,
    /// and each such defect is returned in [`Decoded::deviations`]. Everything else (bad
    /// preamble, length, codec, priority, generation type, a structure that does not fit)
    /// is still an error.
    pub const fn lenient() -> Self {
        Self {
            max_frame_len: Self::DEFAULT_MAX_FRAME_LEN,
            lenient: true,
        }
    }

    /// Sets the cap on a whole TCP frame (preamble to CRC), checked from the 8-byte header.
    #[must_use]
    pub const fn with_max_frame_len(self, max_frame_len: usize) -> Self {
        Self {
            max_frame_len,
            ..self
        }
    }

    /// The cap on a whole TCP frame.
    pub const fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Whether decoding is lenient.
    pub const fn is_lenient(&self) -> bool {
        self.lenient
    }

    /// How long the frame at the start of `input` is, from its header alone: checks the
    /// preamble and the cap, and says [`Error::Incomplete`] until all of it is there.
    pub fn tcp_frame_len(&self, input: &[u8]) -> Result<usize> {
        let Some((header, _)) = input.split_first_chunk::<HEADER_LEN>() else {
            // Judge the preamble on the bytes there are: a non-zero byte is fatal now.
            let seen = &input[..input.len().min(4)];
            if seen.iter().any(|&byte| byte != 0) {
                let mut found = [0u8; 4];
                found[..seen.len()].copy_from_slice(seen);
                return Err(Error::BadPreamble {
                    offset: 0,
                    found: u32::from_be_bytes(found),
                });
            }
            return Err(Error::Incomplete {
                needed: HEADER_LEN - input.len(),
            });
        };
        let [p0, p1, p2, p3, l0, l1, l2, l3] = *header;
        let preamble = u32::from_be_bytes([p0, p1, p2, p3]);
        if preamble != 0 {
            return Err(Error::BadPreamble {
                offset: 0,
                found: preamble,
            });
        }
        let declared = u64::from(u32::from_be_bytes([l0, l1, l2, l3])) + OVERHEAD as u64;
        if declared > self.max_frame_len as u64 {
            return Err(Error::FrameTooLong {
                offset: 4,
                declared,
                max: self.max_frame_len,
            });
        }
        // declared <= max_frame_len, a usize.
        let total = declared as usize;
        if input.len() < total {
            return Err(Error::Incomplete {
                needed: total - input.len(),
            });
        }
        Ok(total)
    }

    /// Decodes the TCP frame at the start of `input` (bytes after it are left alone).
    ///
    /// ```
    /// use teltonika_codec::{DecodeOptions, Error, TcpFrameView};
    ///
    /// // Wiki Codec 8 example 2, with its second record count changed from 1 to 2 and the
    /// // CRC left as it was.
    /// let mut frame = hex("000000000000002808010000016B40D9AD800100000000000000000000000000\
    ///                      00000103021503010101425E100000010000F22A");
    /// frame[47] = 2;
    /// let decoded = DecodeOptions::lenient().decode_tcp_frame(&frame)?;
    /// let TcpFrameView::Avl(packet) = decoded.value else { unreachable!() };
    /// assert_eq!(packet.record_count(), 1);
    /// assert!(matches!(decoded.deviations[0], Error::CrcMismatch { .. }));
    /// assert!(matches!(decoded.deviations[1], Error::CountMismatch { first: 1, second: 2, .. }));
    /// assert!(DecodeOptions::strict().decode_tcp_frame(&frame).is_err());
    /// # fn hex(text: &str) -> Vec<u8> {
    /// #     (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
    /// # }
    /// # Ok::<(), Error>(())
    /// ```
    pub fn decode_tcp_frame<'a>(&self, input: &'a [u8]) -> Result<Decoded<TcpFrameView<'a>>> {
        let mut deviations = Vec::new();
        let total = self.tcp_frame_len(input)?;
        let value = decode_complete_frame(input, total, self.lenient, &mut deviations)?;
        Ok(Decoded {
            value,
            consumed: total,
            deviations,
        })
    }
}

/// A decoded value, the bytes it took, and (lenient decoding only) the defects tolerated.
#[derive(Debug)]
pub struct Decoded<T> {
    /// What was decoded.
    pub value: T,
    /// Bytes of input it took.
    pub consumed: usize,
    /// Defects lenient decoding tolerated, in the order found; always empty in strict mode
    /// (and then never allocated).
    pub deviations: Vec<Error>,
}

/// Decodes a frame of `total` bytes known to be complete (header already checked).
pub(crate) fn decode_complete_frame<'a>(
    input: &'a [u8],
    total: usize,
    lenient: bool,
    deviations: &mut Vec<Error>,
) -> Result<TcpFrameView<'a>> {
    let (Some(data), Some(crc_field)) = (
        input.get(HEADER_LEN..total - 4),
        input
            .get(total - 4..total)
            .and_then(|crc| crc.first_chunk::<4>()),
    ) else {
        // tcp_frame_len returned total <= input.len() and total >= OVERHEAD.
        return Err(Error::Incomplete {
            needed: total.saturating_sub(input.len()),
        });
    };
    let Some(&codec_id) = data.first() else {
        return Err(Error::Truncated {
            offset: HEADER_LEN,
            what: "codec id",
            needed: 1,
        });
    };
    let avl = AvlCodec::from_id(codec_id);
    let gprs = GprsCodec::from_id(codec_id);
    if avl.is_none() && gprs.is_none() {
        return Err(Error::UnknownCodec {
            offset: HEADER_LEN,
            codec: codec_id,
        });
    }
    let expected = u32::from_be_bytes(*crc_field);
    let computed = crc16(data);
    if expected != u32::from(computed) {
        let error = Error::CrcMismatch {
            offset: total - 4,
            expected,
            computed,
        };
        if !lenient {
            return Err(error);
        }
        deviations.push(error);
    }
    match (avl, gprs) {
        (Some(codec), _) => {
            parse_avl_data(codec, data, HEADER_LEN, lenient, deviations).map(TcpFrameView::Avl)
        }
        (None, Some(codec)) => {
            parse_gprs_data(codec, data, HEADER_LEN, lenient, deviations).map(TcpFrameView::Gprs)
        }
        (None, None) => Err(Error::UnknownCodec {
            offset: HEADER_LEN,
            codec: codec_id,
        }),
    }
}

/// Decodes the TCP frame at the start of `input`, strictly, with the default 64 KiB cap.
///
/// Returns the frame, borrowed from `input`, and the number of bytes it took. A short input
/// gives [`Error::Incomplete`] with the exact number of bytes missing once the 8-byte header
/// is in.
///
/// ```
/// use teltonika_codec::{decode_tcp_frame, TcpFrameView};
///
/// // Teltonika wiki, Codec 8, first example.
/// let frame = hex("000000000000003608010000016B40D8EA30010000000000000000000000000000000105021503\
///                  010101425E0F01F10000601A014E0000000000000000010000C7CF");
/// let (TcpFrameView::Avl(packet), consumed) = decode_tcp_frame(&frame)? else { unreachable!() };
/// assert_eq!(consumed, frame.len());
/// let record = packet.records().next().unwrap();
/// assert_eq!(record.timestamp_ms(), 1_560_161_086_000);
/// let io: Vec<_> = record.io().map(|e| (e.id, e.value.as_u64())).collect();
/// assert_eq!(io[2], (0x42, Some(0x5E0F)));
/// # fn hex(text: &str) -> Vec<u8> {
/// #     (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
/// # }
/// # Ok::<(), teltonika_codec::Error>(())
/// ```
pub fn decode_tcp_frame(input: &[u8]) -> Result<(TcpFrameView<'_>, usize)> {
    let options = DecodeOptions::strict();
    let total = options.tcp_frame_len(input)?;
    let mut no_deviations = Vec::new();
    let frame = decode_complete_frame(input, total, false, &mut no_deviations)?;
    Ok((frame, total))
}

/// A validated TCP frame, borrowed.
#[derive(Debug, Clone, Copy)]
pub enum TcpFrameView<'a> {
    /// AVL data (codec 8, 8E or 16): acknowledge with [`encode_avl_ack`].
    Avl(AvlPacketView<'a>),
    /// A GPRS message (codec 12–15): never acknowledged.
    Gprs(GprsMessageView<'a>),
}

impl TcpFrameView<'_> {
    /// The codec byte.
    pub fn codec_id(&self) -> u8 {
        match self {
            Self::Avl(packet) => packet.codec().id(),
            Self::Gprs(message) => message.codec().id(),
        }
    }

    /// Copies into an owned [`TcpFrame`].
    pub fn to_owned(&self) -> TcpFrame {
        match self {
            Self::Avl(packet) => TcpFrame::Avl(packet.to_owned()),
            Self::Gprs(message) => TcpFrame::Gprs(message.to_owned()),
        }
    }
}

/// A TCP frame, owned: what the encoder takes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TcpFrame {
    /// AVL data (codec 8, 8E or 16).
    Avl(AvlPacket),
    /// A GPRS message (codec 12–15).
    Gprs(GprsMessage),
}

impl TcpFrame {
    /// Encodes the whole frame: preamble, length, data, CRC.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Appends the encoded frame to `out` (on error, `out` is left as it was).
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        out.extend_from_slice(&[0; HEADER_LEN]);
        let encoded = match self {
            Self::Avl(packet) => packet.encode_data_into(out),
            Self::Gprs(message) => message.encode_data_into(out),
        };
        let data_len = out.len() - start - HEADER_LEN;
        let length = encoded.and_then(|()| {
            u32::try_from(data_len).map_err(|_| Error::Unencodable("data field over 4 GiB"))
        });
        let length = match length {
            Ok(length) => length,
            Err(error) => {
                out.truncate(start);
                return Err(error);
            }
        };
        out[start + 4..start + HEADER_LEN].copy_from_slice(&length.to_be_bytes());
        let crc = crc16(&out[start + HEADER_LEN..]);
        out.extend_from_slice(&u32::from(crc).to_be_bytes());
        Ok(())
    }
}

/// The server's answer to an AVL frame: the number of records accepted, as a `u32`
/// (0 asks the tracker to send the frame again).
///
/// ```
/// assert_eq!(teltonika_codec::encode_avl_ack(2), [0, 0, 0, 2]);
/// assert_eq!(teltonika_codec::decode_avl_ack(&[0, 0, 0, 2])?, (2, 4));
/// # Ok::<(), teltonika_codec::Error>(())
/// ```
pub const fn encode_avl_ack(accepted: u32) -> [u8; 4] {
    accepted.to_be_bytes()
}

/// Decodes the server's AVL acknowledgement (what a tracker or a test client reads).
pub fn decode_avl_ack(input: &[u8]) -> Result<(u32, usize)> {
    match input.first_chunk::<4>() {
        Some(bytes) => Ok((u32::from_be_bytes(*bytes), 4)),
        None => Err(Error::Incomplete {
            needed: 4 - input.len(),
        }),
    }
}
