//! AVL data (codecs 8, 8 Extended and 16): the records of a TCP frame or a UDP datagram.
//!
//! Decoding validates the whole data field once (counts, every record, every IO group) and
//! hands out [`AvlPacketView`]s: `Copy` views over the caller's bytes whose accessors read
//! values on demand and cannot fail. [`AvlPacketView::to_owned`] copies a packet into an
//! [`AvlPacket`], which is also what the encoders take.
//!
//! Layout of one record: `u64 timestamp (ms)` · `u8 priority` · GPS element (15 bytes) ·
//! event IO id (`u8` in codec 8, `u16` otherwise) · codec 16: `u8 generation type` · IO total
//! (`u16` in 8E, `u8` otherwise) · four groups of 1-, 2-, 4- and 8-byte values (each a count,
//! then id + value pairs) · 8E only: the NX group (`u16 count`, then `u16 id · u16 len · bytes`).
//!
//! Split by job: `types` holds the values (codec, GPS element, IO values, the owned IO list),
//! `view` the borrowed views and their iterators, `decode` the one-pass validation that makes
//! views, `owned` the owned packet and record and their encoder.

mod decode;
mod owned;
mod types;
mod view;

pub(crate) use decode::parse_avl_data;
pub use owned::{AvlPacket, AvlRecord};
pub use types::{
    AvlCodec, GenerationType, Gps, IoElement, IoElementView, IoList, IoValue, IoValueView, Priority,
};
pub use view::{AvlPacketView, AvlRecordView, IoElements, MAX_TIMESTAMP_MS, Records};
