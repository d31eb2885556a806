//! Wire types of the Processor's live WebSocket protocol (the browser map's positions feed).
//!
//! What it is for: the JSON messages exchanged over the WebSocket (see `docs/live-protocol.md`)
//! as owned DTOs with serde, a strict parser for client messages
//! ([`parse_client_message`]), exact serialisation of server messages ([`ServerMessage`]) with a
//! fast path for `position` frames ([`write_position`]), the error codes ([`ErrorCode`]), close
//! codes ([`close`]) and size limit ([`MAX_INBOUND_MESSAGE_BYTES`]). With the `client` feature,
//! a tokio WebSocket client that reconnects and resubscribes (`client` module).
//!
//! What it is NOT for: serving WebSockets (that is `live-gateway`), authorization (that is
//! `directus-auth`), or carrying internal types onto the wire. Without the `client` feature it
//! has no I/O and no async runtime, so any team can depend on it.
//!
//! Cargo features: `client` (off by default) adds the tokio client, over `ws://` and `wss://`
//! (rustls with the `ring` provider).
//!
//! ```
//! use live_protocol::{parse_client_message, ClientMessage, ServerMessage};
//! let msg = parse_client_message(
//!     br#"{"type":"unsubscribe","topic":"event:8d1f0c2a-5b7e-4c1d-9a3f-2e6b8c0d4f11","id":2}"#,
//! ).unwrap();
//! let ClientMessage::Unsubscribe { topic, id } = msg else { unreachable!() };
//! let reply = ServerMessage::Unsubscribed { topic, id };
//! assert_eq!(
//!     reply.to_json_vec(),
//!     br#"{"type":"unsubscribed","topic":"event:8d1f0c2a-5b7e-4c1d-9a3f-2e6b8c0d4f11","id":2}"#
//! );
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

mod codes;
mod inbound;
mod outbound;
mod topic;

#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub mod client;

pub use codes::{
    ErrorCode, MAX_ERROR_DETAIL_CHARS, MAX_INBOUND_MESSAGE_BYTES, UnknownErrorCode, close,
};
pub use inbound::{ClientMessage, InboundError, InboundErrorKind, MessageId, parse_client_message};
pub use outbound::{Position, PositionView, ServerMessage, encode_position, write_position};
pub use topic::{EVENT_TOPIC_PREFIX, Topic, TopicError};

/// The README's examples, compiled as doctests so they cannot rot.
#[cfg(all(doctest, feature = "client"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
