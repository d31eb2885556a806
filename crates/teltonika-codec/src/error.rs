//! The crate's error type for the binary protocol: what is wrong with the bytes, and where.
//!
//! Every check of `docs`/`teltonika.md` has its own variant, and every variant that is about
//! bytes carries the byte `offset` (from the start of the input handed to the decoder) of the
//! field that failed. [`Error::Incomplete`] is not a defect: it says how many more bytes a
//! decoder needs, and is kept apart from every "malformed" variant.
//!
//! The same type describes the *deviations* that lenient decoding tolerates and reports (see
//! [`DecodeOptions::lenient`](crate::DecodeOptions::lenient)).

use thiserror::Error;

/// `Result` with this crate's [`Error`](enum@Error).
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Everything that can go wrong decoding or encoding the Teltonika binary protocol.
///
/// Offsets count bytes from the start of the slice given to the decoding function (for the
/// [`Framer`](crate::Framer), from the start of the buffer it was given).
///
/// ```
/// use teltonika_codec::{decode_tcp_frame, Error};
///
/// // The wiki's first Codec 8 example with its last CRC byte changed.
/// let mut frame = b"\0\0\0\0\0\0\0\x36\x08\x01".to_vec();
/// frame.extend_from_slice(&[0; 54 - 2 + 4]);
/// match decode_tcp_frame(&frame) {
///     Err(Error::CrcMismatch { offset, .. }) => assert_eq!(offset, 62),
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The input ends before the structure does: read at least `needed` more bytes and call
    /// again. Not a defect of the bytes seen so far.
    #[error("incomplete input: {needed} more bytes needed")]
    Incomplete {
        /// How many more bytes are needed at least (exact for TCP frames once the 8-byte
        /// header is in).
        needed: usize,
    },
    /// A TCP frame does not start with the 4-byte zero preamble (the stream cannot be
    /// resynchronised: close the connection).
    #[error("bad preamble at byte {offset}: expected 0x00000000, found {found:#010x}")]
    BadPreamble {
        /// Offset of the preamble.
        offset: usize,
        /// The first four bytes as a big-endian integer (bytes not yet received count as 0).
        found: u32,
    },
    /// A TCP frame header declares more bytes than the configured cap (checked from the
    /// 8-byte header, before anything is buffered).
    #[error("frame at byte {offset} declares {declared} bytes in all, over the limit of {max}")]
    FrameTooLong {
        /// Offset of the data-length field.
        offset: usize,
        /// Whole frame length the header implies (preamble to CRC).
        declared: u64,
        /// The configured maximum.
        max: usize,
    },
    /// A length field disagrees with the bytes it delimits.
    #[error("{what} at byte {offset} declares {declared} bytes, but {actual} are there")]
    LengthMismatch {
        /// Offset of the length field.
        offset: usize,
        /// Which length (e.g. "UDP datagram length", "command size").
        what: &'static str,
        /// What the field says.
        declared: usize,
        /// What the bytes say.
        actual: usize,
    },
    /// A field runs past the end of the structure that holds it.
    #[error("truncated {what} at byte {offset}: {needed} more bytes needed")]
    Truncated {
        /// Offset of the field that does not fit.
        offset: usize,
        /// Which field.
        what: &'static str,
        /// How many bytes are missing.
        needed: usize,
    },
    /// The record count after the records differs from the one before them.
    #[error("record counts differ: {first} at byte {offset}, {second} after the records")]
    CountMismatch {
        /// Offset of the first count.
        offset: usize,
        /// The count before the records.
        first: u8,
        /// The count after the records.
        second: u8,
    },
    /// The walk found a different number of records than the counts declare (lenient
    /// decoding only: strict decoding reports the first defect the walk meets instead).
    #[error("frame at byte {offset} declares {declared} records, {found} are there")]
    RecordsFound {
        /// Offset of the first count.
        offset: usize,
        /// The first count.
        declared: u8,
        /// Records actually decoded.
        found: usize,
    },
    /// An AVL frame or datagram declares zero records.
    #[error("zero record count at byte {offset}")]
    ZeroRecords {
        /// Offset of the count.
        offset: usize,
    },
    /// The CRC-16/ARC of the data field is not the one the frame carries.
    #[error(
        "CRC mismatch at byte {offset}: frame carries {expected:#010x}, data gives {computed:#06x}"
    )]
    CrcMismatch {
        /// Offset of the CRC field.
        offset: usize,
        /// The 4-byte CRC field as sent (upper 16 bits must be zero).
        expected: u32,
        /// The CRC computed over codec id … second count.
        computed: u16,
    },
    /// The codec byte is none of 0x08, 0x8E, 0x10, 0x0C, 0x0D, 0x0E, 0x0F.
    #[error("unknown codec {codec:#04x} at byte {offset}")]
    UnknownCodec {
        /// Offset of the codec byte.
        offset: usize,
        /// The byte.
        codec: u8,
    },
    /// A known codec where it cannot appear (e.g. a GPRS codec in a UDP datagram).
    #[error("codec {codec:#04x} at byte {offset} cannot appear in {context}")]
    UnexpectedCodec {
        /// Offset of the codec byte.
        offset: usize,
        /// The byte.
        codec: u8,
        /// Where it appeared.
        context: &'static str,
    },
    /// The total IO element count of a record differs from the sum of its groups (NX
    /// elements included in Codec 8 Extended).
    #[error("IO total at byte {offset} is {declared}, but the groups hold {counted}")]
    IoTotalMismatch {
        /// Offset of the total field.
        offset: usize,
        /// The declared total.
        declared: u16,
        /// The sum of the group counts.
        counted: u32,
    },
    /// Priority byte above 2.
    #[error("priority {value} at byte {offset} (must be 0, 1 or 2)")]
    BadPriority {
        /// Offset of the priority byte.
        offset: usize,
        /// The byte.
        value: u8,
    },
    /// Codec 16 generation type above 7.
    #[error("generation type {value} at byte {offset} (must be 0..=7)")]
    BadGenerationType {
        /// Offset of the generation-type byte.
        offset: usize,
        /// The byte.
        value: u8,
    },
    /// An AVL timestamp beyond 9999-12-31T23:59:59.999Z (no time type can hold it).
    #[error("timestamp {millis} ms at byte {offset} is past the year 9999")]
    TimestampOutOfRange {
        /// Offset of the timestamp.
        offset: usize,
        /// The raw value.
        millis: u64,
    },
    /// Bytes after the end of a structure that must fill its input or its declared length.
    #[error("{count} trailing bytes at byte {offset}")]
    TrailingBytes {
        /// Offset of the first extra byte.
        offset: usize,
        /// How many.
        count: usize,
    },
    /// An IMEI that is not 15 decimal digits (ASCII in the handshake and UDP, packed BCD in
    /// codecs 14 and 15).
    #[error("bad IMEI at byte {offset}: {reason}")]
    BadImei {
        /// Offset of the offending length field or digit.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A GPRS frame (codecs 12–15) whose message quantity is not 1.
    #[error("command quantity {value} at byte {offset} (must be 1)")]
    BadQuantity {
        /// Offset of the quantity byte.
        offset: usize,
        /// The byte.
        value: u8,
    },
    /// A reply byte that is not one of the allowed values (IMEI reply `0x00`/`0x01`, the
    /// `0x01` of a UDP ACK).
    #[error("unexpected {what} {found:#04x} at byte {offset}")]
    BadReply {
        /// Offset of the byte.
        offset: usize,
        /// Which byte.
        what: &'static str,
        /// The byte.
        found: u8,
    },
    /// A value that the wire format cannot carry (encoding only).
    #[error("cannot encode: {0}")]
    Unencodable(&'static str),
    /// An I/O error from the transport under the `tokio` codec.
    #[cfg(feature = "tokio")]
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// One pattern matching every [`Error`] variant that carries a byte offset, binding it to
/// `$offset`: the single list [`Error::offset`] and [`Error::shifted`] share, so a new variant
/// with an offset is added in one place (and the compiler's exhaustiveness check still names
/// any variant left out of both).
macro_rules! with_offset {
    ($offset:ident) => {
        Error::BadPreamble {
            offset: $offset,
            ..
        } | Error::FrameTooLong {
            offset: $offset,
            ..
        } | Error::LengthMismatch {
            offset: $offset,
            ..
        } | Error::Truncated {
            offset: $offset,
            ..
        } | Error::CountMismatch {
            offset: $offset,
            ..
        } | Error::RecordsFound {
            offset: $offset,
            ..
        } | Error::ZeroRecords { offset: $offset }
            | Error::CrcMismatch {
                offset: $offset,
                ..
            }
            | Error::UnknownCodec {
                offset: $offset,
                ..
            }
            | Error::UnexpectedCodec {
                offset: $offset,
                ..
            }
            | Error::IoTotalMismatch {
                offset: $offset,
                ..
            }
            | Error::BadPriority {
                offset: $offset,
                ..
            }
            | Error::BadGenerationType {
                offset: $offset,
                ..
            }
            | Error::TimestampOutOfRange {
                offset: $offset,
                ..
            }
            | Error::TrailingBytes {
                offset: $offset,
                ..
            }
            | Error::BadImei {
                offset: $offset,
                ..
            }
            | Error::BadQuantity {
                offset: $offset,
                ..
            }
            | Error::BadReply {
                offset: $offset,
                ..
            }
    };
}

impl Error {
    /// `true` for [`Error::Incomplete`]: more bytes are needed, the input is not malformed.
    pub fn is_incomplete(&self) -> bool {
        matches!(self, Self::Incomplete { .. })
    }

    /// Shifts the offset this error carries by `by` bytes (errors of an inner structure
    /// reported relative to an outer one).
    #[must_use]
    pub(crate) fn shifted(mut self, by: usize) -> Self {
        match &mut self {
            with_offset!(offset) => *offset += by,
            Self::Incomplete { .. } | Self::Unencodable(_) => {}
            #[cfg(feature = "tokio")]
            Self::Io(_) => {}
        }
        self
    }

    /// The byte offset this error points at, if it is about a place in the input.
    pub fn offset(&self) -> Option<usize> {
        match self {
            with_offset!(offset) => Some(*offset),
            Self::Incomplete { .. } | Self::Unencodable(_) => None,
            #[cfg(feature = "tokio")]
            Self::Io(_) => None,
        }
    }
}
