//! Integration tests of the live gateway: real Redis and PostgreSQL (test-support), the
//! Directus stub, real WebSocket clients over loopback.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_arguments,
    reason = "test helpers outside #[test] functions; seeding helpers mirror table columns"
)]

mod client;
mod common;
mod fanout;
mod flow;
mod liveness;
mod subscribe;
mod upgrade;
