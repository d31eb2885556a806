//! The crate's one integration-test binary (see the team's test layout): each module is one
//! concern.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers and proptest strategies panic on broken invariants by design"
)]

mod alloc;
mod frames;
mod framing;
mod props;
mod support;
#[cfg(feature = "tokio")]
mod tokio_tcp;
mod vectors;
