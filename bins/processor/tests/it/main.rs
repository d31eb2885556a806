//! Integration tests of the `processor` binary against real Redis and PostgreSQL: the binary
//! runs as a child process (as in production), the test feeds its stream and inspects the
//! `positions` table, the group's pending list, the dead-letter stream and `/metrics`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed step is a failed test"
)]

mod config;
mod durable;
mod failures;
mod lifecycle;
mod live;
mod scale;
mod support;
