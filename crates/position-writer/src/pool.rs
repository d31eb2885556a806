//! The deadpool-postgres connection pool, built from a URL and a size.
//!
//! Every wait is bounded (TIGER_STYLE: a limit on everything): getting a connection from a
//! full pool, opening a new one and recycling an idle one each have a timeout, so an outage
//! turns into a transient [`Error`] the retrying writer can back off from, never into a
//! task that hangs forever on a dead socket.

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::{Error, Result};

/// How to reach PostgreSQL and how many connections to keep.
#[derive(Clone)]
pub struct PoolConfig {
    /// `postgres://user[:password]@host[:port]/database[?options]` (never logged: it may
    /// carry a password).
    pub url: String,
    /// Maximum number of open connections (`DATABASE_POOL_SIZE`, 1–256).
    pub max_size: usize,
    /// Bound on opening one connection and on waiting for a free one.
    pub connect_timeout: Duration,
}

impl PoolConfig {
    /// A config with the given URL and size, and a 5 s connect timeout.
    pub fn new(url: impl Into<String>, max_size: usize) -> Self {
        Self {
            url: url.into(),
            max_size,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

impl std::fmt::Debug for PoolConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may contain a password: never print it.
        f.debug_struct("PoolConfig")
            .field("url", &"<redacted>")
            .field("max_size", &self.max_size)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// Builds the pool. No connection is opened until the first use.
///
/// ```
/// let pool = position_writer::create_pool(&position_writer::PoolConfig::new(
///     "postgres://postgres@127.0.0.1:5432/processor",
///     8,
/// ))
/// .unwrap();
/// assert_eq!(pool.status().max_size, 8);
/// ```
pub fn create_pool(config: &PoolConfig) -> Result<Pool> {
    if !(1..=256).contains(&config.max_size) {
        return Err(Error::Config(format!(
            "pool size {} is outside 1..=256",
            config.max_size
        )));
    }
    // The parse error names the bad option, never the password.
    let mut pg = tokio_postgres::Config::from_str(&config.url)
        .map_err(|err| Error::Config(format!("DATABASE_URL does not parse: {err}")))?;
    if pg.get_application_name().is_none() {
        pg.application_name("processor");
    }
    pg.connect_timeout(config.connect_timeout);
    // Detect a silently dead peer (a cut network) on idle pooled connections.
    pg.keepalives(true);
    pg.keepalives_idle(Duration::from_secs(30));

    let manager = Manager::from_config(
        pg,
        NoTls,
        ManagerConfig {
            // `Fast` only checks that the socket is open; a broken connection is caught by
            // the statement that uses it, which the writer classifies as transient.
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(config.max_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(config.connect_timeout))
        .create_timeout(Some(config.connect_timeout))
        .recycle_timeout(Some(config.connect_timeout))
        .build()
        .map_err(|err| Error::Config(format!("cannot build the connection pool: {err}")))
}
