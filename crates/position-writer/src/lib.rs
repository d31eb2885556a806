//! The PostgreSQL side of the Processor's durable path.
//!
//! What it is for:
//! - [`create_pool`]: the deadpool-postgres pool, every wait bounded;
//! - [`migrate`]: the migration runner over the top-level `migrations/` (embedded at compile
//!   time, advisory-locked, checksummed);
//! - [`PositionWriter`]: batched, idempotent writes of [`StreamRecord`]s into `positions`, with
//!   exact inserted/duplicate counts, bisection of rows the database rejects, and a retrying
//!   variant that backs off while the database is unavailable;
//! - [`DbHealth`]: the cached `SELECT 1` behind `/readyz`;
//! - [`DeviceState`]: the bounded per-device "last seen" cache;
//! - [`describe_metrics`]: this crate's metrics, registered at 0.
//!
//! What it is NOT for: it knows nothing about Redis (acknowledging and dead-lettering are the
//! caller's business: it only reports what was written and what was rejected), reads no
//! environment variable (callers pass typed configs), and never depends on `live-gateway`.
//!
//! See `docs/database.md` for the database contract and the statement-shape measurements.
//!
//! [`StreamRecord`]: teltonika_codec::stream_record::StreamRecord

mod attributes;
mod backoff;
mod device_state;
mod error;
mod health;
mod metrics;
mod migrate;
mod pool;
mod writer;

pub use attributes::attributes_json;
pub use backoff::Backoff;
pub use device_state::{DeviceState, LastPosition, Observed};
pub use error::{Error, Result, WriteError};
pub use health::{DbHealth, DbStatus};
pub use metrics::{
    DEVICE_STATE_EVICTIONS_TOTAL, DEVICE_STATE_SIZE, POSITION_WRITE_DURATION_SECONDS,
    POSITION_WRITES_TOTAL, WRITE_STATUSES, describe_metrics,
};
pub use migrate::{
    MIGRATION_LOCK_KEY, Migration, MigrationReport, checksum, migrate, migrations, run_migrations,
};
pub use pool::{PoolConfig, create_pool};
pub use writer::{
    BatchOutcome, MAX_BATCH_SIZE, PositionWriter, RejectedRow, StatementShape, WriterConfig,
};

/// Re-exported so callers name the pool type without depending on deadpool directly.
pub use deadpool_postgres::Pool;
