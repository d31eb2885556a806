//! test-support's own integration tests (one binary): providers, isolation, teardown, faults,
//! the child-process driver and the Directus stub.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod directus;
mod faults;
mod isolation;
mod process;
mod providers;
