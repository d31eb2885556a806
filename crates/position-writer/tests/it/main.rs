//! Integration tests of position-writer against a real PostgreSQL (via test-support).
//!
//! One binary for the crate (every extra test binary costs a link on 2 cores).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] functions: a failure must fail the test"
)]

mod common;
mod device_state;
mod health;
mod migrations;
mod outage;
mod writer;
