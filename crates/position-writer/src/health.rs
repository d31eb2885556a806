//! Database health for `/readyz`: a cached `SELECT 1`.
//!
//! operations.md: ready when "a cached (≤ 5 s old) `SELECT 1` on PostgreSQL succeeded". The
//! probe runs on demand, at most once per `max_age`; concurrent callers share one probe.

use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use tokio::sync::Mutex;

use crate::Error;

/// The database as `/readyz` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbStatus {
    /// The last probe succeeded.
    Up,
    /// The last probe failed.
    Down {
        /// `timeout`, `connection`, or `sqlstate <code>` (see [`Error::kind`]).
        kind: String,
        /// The error's message (never contains credentials).
        message: String,
    },
}

impl DbStatus {
    /// True for [`DbStatus::Up`].
    pub fn is_up(&self) -> bool {
        matches!(self, Self::Up)
    }
}

/// A cloneable handle probing the pool's database.
///
/// ```no_run
/// # async fn demo(pool: deadpool_postgres::Pool) {
/// let health = position_writer::DbHealth::new(pool);
/// if !health.status().await.is_up() { /* answer 503 */ }
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct DbHealth {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: Pool,
    max_age: Duration,
    probe_timeout: Duration,
    last: Mutex<Option<(Instant, DbStatus)>>,
}

impl DbHealth {
    /// Results are reused for up to 5 s; a probe gives up after 2 s.
    pub fn new(pool: Pool) -> Self {
        Self::with_limits(pool, Duration::from_secs(5), Duration::from_secs(2))
    }

    /// Custom cache age and probe timeout.
    pub fn with_limits(pool: Pool, max_age: Duration, probe_timeout: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                max_age,
                probe_timeout,
                last: Mutex::new(None),
            }),
        }
    }

    /// The database's status, at most `max_age` old.
    pub async fn status(&self) -> DbStatus {
        // An async mutex, held across the probe on purpose: callers arriving meanwhile wait
        // for this probe's result instead of starting their own.
        let mut last = self.inner.last.lock().await;
        if let Some((at, status)) = last.as_ref()
            && at.elapsed() < self.inner.max_age
        {
            return status.clone();
        }
        let status = self.probe().await;
        *last = Some((Instant::now(), status.clone()));
        status
    }

    async fn probe(&self) -> DbStatus {
        let run = async {
            let client = self.inner.pool.get().await.map_err(Error::Pool)?;
            client
                .simple_query("SELECT 1")
                .await
                .map_err(|err| Error::db("SELECT 1", err))?;
            Ok::<(), Error>(())
        };
        let result = match tokio::time::timeout(self.inner.probe_timeout, run).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout {
                context: "SELECT 1".to_owned(),
                after: self.inner.probe_timeout,
            }),
        };
        match result {
            Ok(()) => DbStatus::Up,
            Err(err) => DbStatus::Down {
                kind: err.kind(),
                message: err.to_string(),
            },
        }
    }
}
