//! The crate's one integration-test binary (see the team's test layout): each module is one
//! concern.

mod alloc;
mod frames;
mod framing;
mod props;
mod support;
#[cfg(feature = "tokio")]
mod tokio_tcp;
mod vectors;
