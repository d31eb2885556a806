//! Dev-only test support: gives every test real services (Redis, PostgreSQL, a Directus stub).
//!
//! What it is for: integration tests across the workspace call [`redis()`] and [`postgres()`]
//! and get a real Redis 7 / PostgreSQL server, isolated per test (a fresh database, unique
//! key names), from the first provider that is available:
//!
//! 1. URLs in the environment (`TEST_REDIS_URL`, `TEST_DATABASE_URL`), e.g. CI's own services;
//! 2. a Docker engine, through `testcontainers-modules` (Redis 7, a TimescaleDB image);
//! 3. the local binaries (`redis-server`, `initdb`/`postgres`), started on free loopback ports
//!    in a temp dir, shared by the test processes of one machine and torn down by a guardian
//!    process when the last test process is gone (see [`local`]).
//!
//! `TEST_SERVICES_PROVIDER=env|docker|local` forces one provider. When none is available the
//! test prints one `SKIP …` line and the helper returns `None`; with `REQUIRE_SERVICES=1`
//! (set by CI) it panics instead.
//!
//! It also provides fault control ([`TcpProxy`], owned restartable servers in [`local`]), a
//! child-process driver for the `processor` binary ([`ChildProcess`]), the Directus stub
//! ([`DirectusStub`]), and database helpers ([`apply_migrations`], [`load_directus_schema`],
//! [`Seed`]).
//!
//! What it is NOT for: production code. Only `[dev-dependencies]` may name this crate; it
//! panics freely (it is test code) and reads the process environment.
//!
//! ```no_run
//! # async fn demo() {
//! let Some(pg) = test_support::postgres().await else { return };
//! let client = pg.client().await;
//! client.batch_execute("CREATE TABLE t (x int)").await.unwrap();
//! let Some(redis) = test_support::redis().await else { return };
//! let stream = redis.unique_key("telemetry");
//! # let _ = stream;
//! # }
//! ```

mod blocking;
pub mod directus_stub;
#[cfg(feature = "docker")]
mod docker;
pub mod local;
pub mod postgres;
pub mod process;
pub mod provider;
pub mod proxy;
pub mod redis;
mod url;

pub use directus_stub::{DirectusStub, StubUser};
pub use postgres::{Seed, TestPostgres, apply_migrations, load_directus_schema};
pub use process::ChildProcess;
pub use provider::Provider;
pub use proxy::TcpProxy;
pub use redis::TestRedis;

/// The environment variable that turns "no service available, skip" into a test failure.
pub const REQUIRE_SERVICES_VAR: &str = "REQUIRE_SERVICES";

/// True when the run demands real services (CI sets `REQUIRE_SERVICES=1`).
pub fn services_required() -> bool {
    std::env::var(REQUIRE_SERVICES_VAR).is_ok_and(|value| value == "1" || value == "true")
}

/// A fresh, isolated PostgreSQL database for this test, or `None` (after printing one `SKIP`
/// line) when no provider is available. Panics when `REQUIRE_SERVICES=1` and none is.
///
/// The database is dropped (`WITH (FORCE)`) when the returned value is dropped.
pub async fn postgres() -> Option<TestPostgres> {
    postgres::TestPostgres::create().await
}

/// A Redis server for this test with a unique key prefix, or `None` (after printing one `SKIP`
/// line) when no provider is available. Panics when `REQUIRE_SERVICES=1` and none is.
///
/// Every key under [`TestRedis::unique_key`]'s prefix is deleted when the value is dropped.
pub async fn redis() -> Option<TestRedis> {
    redis::TestRedis::create().await
}

/// The name of the running test (libtest names the test thread after it), for messages.
pub fn current_test_name() -> String {
    std::thread::current().name().unwrap_or("test").to_owned()
}

/// A short random lowercase-hex suffix for names that must not collide between tests.
pub fn unique_suffix() -> String {
    postgres::random_suffix()
}

/// Prints the one `SKIP <test>: no <what>: <reasons>` line, or panics when services are
/// required (`REQUIRE_SERVICES=1`). For tests that need something else this crate cannot
/// provide (e.g. the local binaries themselves).
pub fn skip_or_panic(what: &str, reasons: &str) {
    let line = format!("SKIP {}: no {what}: {reasons}", current_test_name());
    if services_required() {
        panic!("{line} (REQUIRE_SERVICES=1 demands real services)");
    }
    eprintln!("{line}");
}
