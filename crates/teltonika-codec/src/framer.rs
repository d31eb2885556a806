//! Incremental framing of a tracker's TCP stream, sans I/O.
//!
//! The caller owns the buffer: it appends what it reads, asks the [`Framer`] what the start of
//! the buffer holds, and drops the bytes the answer says were consumed. Nothing is copied,
//! and a frame is never buffered before its 8-byte header has been checked against the
//! length cap. The stream is: the IMEI handshake, then frames, with lone `0xFF` keep-alive
//! bytes allowed between them.
//!
//! - A whole but invalid frame is skipped exactly ([`Event::Rejected`] with its length);
//!   AVL frames must still be answered (ACK 0), GPRS ones never.
//! - A bad preamble, a length over the cap or a bad IMEI is an `Err`: the stream cannot be
//!   resynchronised, close the connection.

use crate::error::{Error, Result};
use crate::imei::{Imei, decode_imei};
use crate::tcp::{DecodeOptions, HEADER_LEN, TcpFrameView, decode_complete_frame};

/// The keep-alive byte some trackers send between frames.
pub const KEEP_ALIVE: u8 = 0xFF;

/// Splits a TCP stream into the handshake, frames and keep-alives.
///
/// ```
/// use teltonika_codec::{Event, Framer, Step};
///
/// let mut stream = b"\x00\x0F356307042441013".to_vec();
/// stream.push(0xFF);
/// stream.extend_from_slice(&hex("000000000000000F0C010500000007676574696E666F0100004312"));
///
/// let mut framer = Framer::new();
/// let mut buffer = Vec::new();
/// let mut seen = Vec::new();
/// for &byte in &stream {
///     buffer.push(byte); // one byte per read
///     while let Step::Ready { event, consumed } = framer.decode(&buffer)? {
///         seen.push(match event {
///             Event::Imei(imei) => imei.to_string(),
///             Event::KeepAlive => "keep-alive".to_owned(),
///             Event::Frame { frame, .. } => format!("codec {:#04x}", frame.codec_id()),
///             Event::Rejected { error, .. } => error.to_string(),
///         });
///         buffer.drain(..consumed);
///     }
/// }
/// assert_eq!(seen, ["356307042441013", "keep-alive", "codec 0x0c"]);
/// # fn hex(text: &str) -> Vec<u8> {
/// #     (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
/// # }
/// # Ok::<(), teltonika_codec::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Framer {
    options: DecodeOptions,
    expects_imei: bool,
}

impl Default for Framer {
    fn default() -> Self {
        Self::new()
    }
}

/// What the start of the buffer holds.
#[derive(Debug)]
pub enum Step<'a> {
    /// Something whole: drop `consumed` bytes from the buffer once done with `event`.
    Ready {
        /// What was found.
        event: Event<'a>,
        /// Bytes it took.
        consumed: usize,
    },
    /// Read at least `needed` more bytes (exact once a frame's header is in).
    Incomplete {
        /// Bytes missing.
        needed: usize,
    },
}

/// One item of the stream.
#[derive(Debug)]
pub enum Event<'a> {
    /// The handshake: answer with [`encode_imei_reply`](crate::encode_imei_reply).
    Imei(Imei),
    /// A lone `0xFF`: nothing to answer.
    KeepAlive,
    /// A valid frame (and, in lenient mode, the defects tolerated).
    Frame {
        /// The frame, borrowed from the buffer.
        frame: TcpFrameView<'a>,
        /// Lenient mode only; empty (not allocated) otherwise.
        deviations: Vec<Error>,
    },
    /// A whole frame that is invalid; it has been skipped.
    Rejected {
        /// What is wrong (offsets from the start of the frame).
        error: Error,
        /// Its codec byte, if it has one: answer AVL frames (`0x08`, `0x8E`, `0x10`) with
        /// ACK 0 so the tracker resends them; never answer GPRS ones.
        codec_id: Option<u8>,
    },
}

impl Framer {
    /// A framer for a new connection: the IMEI handshake first, strict, 64 KiB cap.
    pub fn new() -> Self {
        Self::with_options(DecodeOptions::strict())
    }

    /// A framer for a new connection, with these options.
    pub fn with_options(options: DecodeOptions) -> Self {
        Self {
            options,
            expects_imei: true,
        }
    }

    /// A framer for a stream whose handshake is already done (or absent, as in a capture of
    /// frames only).
    pub fn after_handshake(options: DecodeOptions) -> Self {
        Self {
            options,
            expects_imei: false,
        }
    }

    /// Whether the next item must be the IMEI handshake.
    pub const fn expects_imei(&self) -> bool {
        self.expects_imei
    }

    /// The options in force.
    pub const fn options(&self) -> DecodeOptions {
        self.options
    }

    /// Looks at the start of `input` (the unconsumed bytes of the stream).
    ///
    /// `Err` means the stream cannot be resynchronised (bad preamble, length over the cap,
    /// bad IMEI); it is returned again on every later call with the same bytes.
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> Result<Step<'a>> {
        if input.first() == Some(&KEEP_ALIVE) {
            return Ok(Step::Ready {
                event: Event::KeepAlive,
                consumed: 1,
            });
        }
        if self.expects_imei {
            return match decode_imei(input) {
                Ok((imei, consumed)) => {
                    self.expects_imei = false;
                    Ok(Step::Ready {
                        event: Event::Imei(imei),
                        consumed,
                    })
                }
                Err(Error::Incomplete { needed }) => Ok(Step::Incomplete { needed }),
                Err(error) => Err(error),
            };
        }
        let total = match self.options.tcp_frame_len(input) {
            Ok(total) => total,
            Err(Error::Incomplete { needed }) => return Ok(Step::Incomplete { needed }),
            Err(error) => return Err(error),
        };
        let mut deviations = Vec::new();
        let event =
            match decode_complete_frame(input, total, self.options.is_lenient(), &mut deviations) {
                Ok(frame) => Event::Frame { frame, deviations },
                Err(error) => Event::Rejected {
                    error,
                    codec_id: input.get(HEADER_LEN).copied().filter(|_| total > 12),
                },
            };
        Ok(Step::Ready {
            event,
            consumed: total,
        })
    }
}
