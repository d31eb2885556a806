//! `teltonika-codec`: everything a Teltonika tracker and a server exchange, as pure functions
//! over bytes, plus the JSON *stream record* that tcp-ingestion publishes to Redis and the
//! Processor consumes.
//!
//! What it is for:
//! - decoding and encoding the binary protocol (codecs 8, 8E, 16 and the GPRS command codecs),
//!   strictly by default, with typed errors that name what is wrong and where;
//! - the [`stream_record`] module: one definition of a position shared by the producer
//!   (tcp-ingestion) and the consumer (the Processor), with the decoding rules of the stream
//!   contract and a byte-compatible encoder.
//!
//! What it is NOT for: I/O of any kind. The codec knows nothing of sockets, tokio (except an
//! optional `tokio` feature that adapts the framer to `tokio_util::codec`), Redis or
//! PostgreSQL. It never panics on outside input and contains no `unsafe` code.
//!
//! Cargo features:
//! - `stream-record` (default): the [`stream_record`] module (JSON through simd-json, base64).
//!   A team that needs only the binary protocol turns default features off and builds neither.
//! - `tokio`: `tokio_codec`, a `tokio_util::codec::{Decoder, Encoder}` over the [`Framer`].
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "stream-record")]
#[cfg_attr(docsrs, doc(cfg(feature = "stream-record")))]
pub mod stream_record;

// The binary protocol (sans I/O).
pub mod avl;
pub mod crc;
pub mod error;
pub mod framer;
pub mod gprs;
pub mod imei;
pub mod tcp;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio_codec;
pub mod udp;

pub use avl::{
    AvlCodec, AvlPacket, AvlPacketView, AvlRecord, AvlRecordView, GenerationType, Gps, IoElement,
    IoElementView, IoList, IoValue, IoValueView, Priority,
};
pub use crc::crc16;
pub use error::{Error, Result};
pub use framer::{Event, Framer, Step};
pub use gprs::{GprsCodec, GprsMessage, GprsMessageView};
pub use imei::{Imei, decode_imei, decode_imei_reply, encode_imei, encode_imei_reply};
pub use tcp::{
    DecodeOptions, Decoded, TcpFrame, TcpFrameView, decode_avl_ack, decode_tcp_frame,
    encode_avl_ack,
};
/// The README's examples, compiled as doctests so they cannot rot.
#[cfg(all(doctest, feature = "tokio", feature = "stream-record"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub use udp::{Datagram, DatagramView, UdpAck, datagrams, decode_datagram};
