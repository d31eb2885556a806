//! `tokio_util::codec` adapters over the [`Framer`] (feature `tokio`): with
//! `tokio_util::codec::Framed`, a Teltonika TCP server is a few lines.
//!
//! The decoder yields owned [`Incoming`] items (the framer's events, copied out of the read
//! buffer) and reserves exactly what an incomplete frame still needs; the encoder writes
//! [`Outgoing`] items (handshake reply, ACK, commands, and the tracker's side for tests and
//! simulators).
//!
//! ```no_run
//! use futures_util::{SinkExt, StreamExt};
//! use teltonika_codec::tokio_codec::{Incoming, Outgoing, TeltonikaCodec};
//! use teltonika_codec::TcpFrame;
//! use tokio_util::codec::Framed;
//!
//! async fn serve(listener: tokio::net::TcpListener) -> std::io::Result<()> {
//!     loop {
//!         let (socket, _) = listener.accept().await?;
//!         tokio::spawn(async move {
//!             let mut conn = Framed::new(socket, TeltonikaCodec::new());
//!             while let Some(Ok(incoming)) = conn.next().await {
//!                 let reply = match incoming {
//!                     Incoming::Imei(_imei) => Outgoing::ImeiReply(true),
//!                     // Store the records first: the tracker deletes what is acknowledged.
//!                     Incoming::Frame { frame: TcpFrame::Avl(packet), .. } => {
//!                         Outgoing::AvlAck(packet.records.len() as u32)
//!                     }
//!                     Incoming::Rejected { codec_id: Some(0x08 | 0x8E | 0x10), .. } => Outgoing::AvlAck(0),
//!                     _ => continue, // keep-alives and GPRS responses get no answer
//!                 };
//!                 if conn.send(reply).await.is_err() {
//!                     break;
//!                 }
//!             }
//!         });
//!     }
//! }
//! ```

use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::error::{Error, Result};
use crate::framer::{Event, Framer, Step};
use crate::gprs::GprsMessage;
use crate::imei::{Imei, encode_imei, encode_imei_reply};
use crate::tcp::{DecodeOptions, TcpFrame, encode_avl_ack};

/// `Decoder<Item = Incoming>` + `Encoder<Outgoing>` for a tracker's TCP connection.
#[derive(Debug, Clone, Default)]
pub struct TeltonikaCodec {
    framer: Framer,
}

impl TeltonikaCodec {
    /// Server side of a new connection: handshake first, strict, 64 KiB cap.
    pub fn new() -> Self {
        Self {
            framer: Framer::new(),
        }
    }

    /// Over a framer set up as needed (options, handshake done or not).
    pub fn with_framer(framer: Framer) -> Self {
        Self { framer }
    }

    /// With these options, handshake first.
    pub fn with_options(options: DecodeOptions) -> Self {
        Self {
            framer: Framer::with_options(options),
        }
    }
}

/// An owned [`Event`].
#[derive(Debug)]
pub enum Incoming {
    /// The handshake.
    Imei(Imei),
    /// A lone `0xFF`.
    KeepAlive,
    /// A valid frame.
    Frame {
        /// The frame.
        frame: TcpFrame,
        /// Lenient mode only.
        deviations: Vec<Error>,
    },
    /// A whole invalid frame, skipped.
    Rejected {
        /// What is wrong.
        error: Error,
        /// Its codec byte, if any.
        codec_id: Option<u8>,
    },
}

impl From<Event<'_>> for Incoming {
    fn from(event: Event<'_>) -> Self {
        match event {
            Event::Imei(imei) => Self::Imei(imei),
            Event::KeepAlive => Self::KeepAlive,
            Event::Frame { frame, deviations } => Self::Frame {
                frame: frame.to_owned(),
                deviations,
            },
            Event::Rejected { error, codec_id } => Self::Rejected { error, codec_id },
        }
    }
}

/// What can be written to the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// Server: the handshake answer.
    ImeiReply(bool),
    /// Server: records accepted (0: send again).
    AvlAck(u32),
    /// Server: a command (codec 12 or 14).
    Command(GprsMessage),
    /// Tracker side (tests, simulators): the handshake.
    Imei(Imei),
    /// Tracker side (tests, simulators): a frame.
    Frame(TcpFrame),
}

impl Decoder for TeltonikaCodec {
    type Item = Incoming;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Incoming>> {
        let outcome = match self.framer.decode(src)? {
            Step::Incomplete { needed } => Err(needed),
            Step::Ready { event, consumed } => Ok((Incoming::from(event), consumed)),
        };
        match outcome {
            Err(needed) => {
                src.reserve(needed);
                Ok(None)
            }
            Ok((item, consumed)) => {
                src.advance(consumed);
                Ok(Some(item))
            }
        }
    }
}

impl Encoder<Outgoing> for TeltonikaCodec {
    type Error = Error;

    fn encode(&mut self, item: Outgoing, dst: &mut BytesMut) -> Result<()> {
        match item {
            Outgoing::ImeiReply(accept) => dst.extend_from_slice(&[encode_imei_reply(accept)]),
            Outgoing::AvlAck(accepted) => dst.extend_from_slice(&encode_avl_ack(accepted)),
            Outgoing::Command(message) => dst.extend_from_slice(&TcpFrame::Gprs(message).encode()?),
            Outgoing::Imei(imei) => dst.extend_from_slice(&encode_imei(imei)),
            Outgoing::Frame(frame) => dst.extend_from_slice(&frame.encode()?),
        }
        Ok(())
    }
}
