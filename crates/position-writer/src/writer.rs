//! The batched, idempotent position writer.
//!
//! One call writes one batch in one transaction (split into statements of at most
//! [`WriterConfig::batch_size`] rows), idempotent on `(device_id, ts)` through
//! `ON CONFLICT (device_id, ts) DO NOTHING`, and reports exactly how many rows were inserted
//! and how many were already there. Rows are sorted by `(device_id, ts)` first: two writers
//! holding overlapping rows (a claimed batch, a replay racing a live read) then take the
//! unique-index locks in the same order and wait for each other instead of deadlocking.
//!
//! Failures (docs/database.md):
//! - the database **rejects rows** (SQLSTATE class 22, class 23 other than 23505): the batch
//!   is split in halves, each half tried in its own transaction, down to single rows; the
//!   rejected rows come back in [`BatchOutcome::rejected`] with the database's message and
//!   every other row is written;
//! - the database is **unavailable** ([`Error::is_transient`]): [`PositionWriter::write_batch`]
//!   returns the error; [`PositionWriter::write_batch_retrying`] waits with capped exponential
//!   backoff and jitter and retries the same rows, never bisecting them, until they are
//!   written or the [`CancellationToken`] fires.

use std::pin::pin;
use std::time::{Duration, Instant};

use deadpool_postgres::{Object, Pool};
use teltonika_codec::stream_record::StreamRecord;
use time::OffsetDateTime;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::attributes::JsonColumn;
use crate::error::{Failure, classify};
use crate::metrics::{POSITION_WRITE_DURATION_SECONDS, count_rows};
use crate::{Backoff, Error, Result};

/// Largest batch a statement may carry (`WRITE_BATCH_SIZE` bound).
pub const MAX_BATCH_SIZE: usize = 10_000;

/// PostgreSQL's limit on bind parameters in one statement.
const MAX_BIND_PARAMETERS: usize = 65_535;

/// The columns the writer fills; `received_at` and `faulty` take their defaults.
const COLUMNS: &str = "device_id, ts, latitude, longitude, altitude, angle, speed, satellites, priority, event_io_id, attributes";
const COLUMN_COUNT: usize = 11;

const INSERT_UNNEST: &str = "INSERT INTO positions (device_id, ts, latitude, longitude, altitude, angle, speed, satellites, priority, event_io_id, attributes) \
     SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::float8[], $4::float8[], $5::float4[], $6::float4[], $7::float4[], $8::int2[], $9::int2[], $10::int4[], $11::jsonb[]) \
     ON CONFLICT (device_id, ts) DO NOTHING";

const CREATE_STAGE: &str = "CREATE TEMP TABLE IF NOT EXISTS positions_stage \
     (LIKE positions INCLUDING DEFAULTS) ON COMMIT DELETE ROWS";
const COPY_STAGE: &str = "COPY positions_stage (device_id, ts, latitude, longitude, altitude, angle, speed, satellites, priority, event_io_id, attributes) FROM STDIN BINARY";
const INSERT_FROM_STAGE: &str = "INSERT INTO positions (device_id, ts, latitude, longitude, altitude, angle, speed, satellites, priority, event_io_id, attributes) \
     SELECT device_id, ts, latitude, longitude, altitude, angle, speed, satellites, priority, event_io_id, attributes FROM positions_stage \
     ON CONFLICT (device_id, ts) DO NOTHING";
const COPY_TYPES: [Type; COLUMN_COUNT] = [
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT4,
    Type::FLOAT4,
    Type::FLOAT4,
    Type::INT2,
    Type::INT2,
    Type::INT4,
    Type::JSONB,
];

/// The SQL statement shape used to insert a chunk of rows (docs/database.md compares them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StatementShape {
    /// The measured best for each size (see the crate docs).
    #[default]
    Auto,
    /// `INSERT … SELECT * FROM unnest($1::text[], …) ON CONFLICT DO NOTHING`: 11 parameters
    /// whatever the row count, one cached prepared statement for every size.
    Unnest,
    /// Multi-row `INSERT … VALUES (…),(…) ON CONFLICT DO NOTHING`: 11 parameters per row, so
    /// at most 5 957 rows per statement; one prepared statement per distinct size.
    Values,
    /// As [`StatementShape::Values`] plus `RETURNING device_id, ts`, counting returned rows.
    ValuesReturning,
    /// Binary `COPY` into a temporary staging table, then
    /// `INSERT … SELECT … ON CONFLICT DO NOTHING` from it.
    CopyStage,
}

/// How the writer batches, times out and retries.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Rows per statement (`WRITE_BATCH_SIZE`, 1..=10 000). A larger batch is split into
    /// several statements inside the same transaction.
    pub batch_size: usize,
    /// Bound on one attempt (connection, statements, commit). An attempt that overruns it
    /// counts as a transient failure and its connection is discarded.
    pub attempt_timeout: Duration,
    /// Backoff between attempts of the retrying writer.
    pub backoff: Backoff,
    /// The statement shape (the measured best unless a benchmark picks one).
    pub shape: StatementShape,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            batch_size: 500,
            attempt_timeout: Duration::from_secs(30),
            backoff: Backoff::default(),
            shape: StatementShape::Auto,
        }
    }
}

/// A row the database refused, isolated by bisection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    /// Index of the record in the slice given to the writer.
    pub index: usize,
    /// The SQLSTATE (class 22 or 23).
    pub sqlstate: String,
    /// The database's error message (e.g. `invalid byte sequence for encoding "UTF8": 0x00`).
    pub message: String,
}

/// What happened to a batch. `inserted + duplicates + rejected.len()` equals the batch size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Rows newly stored.
    pub inserted: u64,
    /// Rows already present (a repeat within the batch counts once as inserted, then as
    /// duplicate).
    pub duplicates: u64,
    /// Rows the database rejected, in input order.
    pub rejected: Vec<RejectedRow>,
}

/// Writes batches of [`StreamRecord`]s into `positions`. Cheap to clone (shares the pool).
///
/// ```no_run
/// # async fn demo(records: Vec<teltonika_codec::stream_record::StreamRecord>) -> Result<(), position_writer::Error> {
/// use position_writer::{PoolConfig, PositionWriter, WriterConfig, create_pool, migrate};
/// let pool = create_pool(&PoolConfig::new("postgres://postgres@127.0.0.1:5432/processor", 8))?;
/// migrate(&pool).await?;
/// let writer = PositionWriter::new(pool, WriterConfig::default())?;
/// let shutdown = tokio_util::sync::CancellationToken::new();
/// let outcome = writer.write_batch_retrying(&records, &shutdown).await?;
/// println!("{} new, {} already stored, {} rejected", outcome.inserted, outcome.duplicates, outcome.rejected.len());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PositionWriter {
    pool: Pool,
    config: WriterConfig,
}

/// Why one attempt failed.
enum AttemptError {
    /// Bisect (the rows are at fault); carries (sqlstate, message).
    Data(String, String),
    /// Transient or fatal: an [`Error`].
    Other(Error),
}

impl PositionWriter {
    /// A writer over `pool`. Fails when `batch_size` is outside 1..=10 000.
    pub fn new(pool: Pool, config: WriterConfig) -> Result<Self> {
        if !(1..=MAX_BATCH_SIZE).contains(&config.batch_size) {
            return Err(Error::Config(format!(
                "write batch size {} is outside 1..={MAX_BATCH_SIZE}",
                config.batch_size
            )));
        }
        Ok(Self { pool, config })
    }

    /// The pool this writer uses.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Writes `records` once. A transient failure is returned as is (see
    /// [`Error::is_transient`]); rows the database rejects are isolated and reported.
    pub async fn write_batch(&self, records: &[StreamRecord]) -> Result<BatchOutcome> {
        self.write(records, None).await
    }

    /// Like [`PositionWriter::write_batch`], but waits out transient failures with capped
    /// exponential backoff (jittered) and retries the same rows until they are written.
    /// Returns [`Error::Cancelled`] if `cancel` fires while waiting; an attempt already
    /// running is finished first (it is bounded by [`WriterConfig::attempt_timeout`]).
    pub async fn write_batch_retrying(
        &self,
        records: &[StreamRecord],
        cancel: &CancellationToken,
    ) -> Result<BatchOutcome> {
        self.write(records, Some(cancel)).await
    }

    async fn write(
        &self,
        records: &[StreamRecord],
        cancel: Option<&CancellationToken>,
    ) -> Result<BatchOutcome> {
        let mut order: Vec<usize> = (0..records.len()).collect();
        order.sort_by(|&a, &b| {
            (records[a].device_id.as_str(), records[a].timestamp)
                .cmp(&(records[b].device_id.as_str(), records[b].timestamp))
        });

        let mut outcome = BatchOutcome::default();
        // Ranges of `order` still to write; the first half of a split is written first.
        let mut todo = Vec::new();
        if !order.is_empty() {
            todo.push(0..order.len());
        }
        while let Some(range) = todo.pop() {
            let rows: Vec<&StreamRecord> =
                order[range.clone()].iter().map(|&i| &records[i]).collect();
            match self.attempt_until_done(&rows, cancel).await {
                Ok(inserted) => {
                    outcome.inserted += inserted;
                    outcome.duplicates += rows.len() as u64 - inserted;
                }
                Err(AttemptError::Data(sqlstate, message)) if range.len() == 1 => {
                    // Not logged here: the writer does not know the row's stream entry id,
                    // and every log line about a record must name it (operations.md). The
                    // caller logs the rejection from `BatchOutcome::rejected`.
                    let index = order[range.start];
                    outcome.rejected.push(RejectedRow {
                        index,
                        sqlstate,
                        message,
                    });
                }
                Err(AttemptError::Data(sqlstate, message)) => {
                    debug!(rows = range.len(), %sqlstate, error = %message, "bisecting a rejected batch");
                    let mid = range.start + range.len() / 2;
                    todo.push(mid..range.end);
                    todo.push(range.start..mid);
                }
                Err(AttemptError::Other(err)) => return Err(err),
            }
        }
        outcome.rejected.sort_by_key(|r| r.index);
        Ok(outcome)
    }

    /// One range of rows: attempts, plus retries of transient failures when `cancel` is given.
    async fn attempt_until_done(
        &self,
        rows: &[&StreamRecord],
        cancel: Option<&CancellationToken>,
    ) -> Result<u64, AttemptError> {
        let mut retry = 0u32;
        loop {
            let err = match self.attempt(rows).await {
                Ok(inserted) => return Ok(inserted),
                Err(AttemptError::Other(err)) if err.is_transient() => err,
                Err(other) => return Err(other),
            };
            let Some(cancel) = cancel else {
                return Err(AttemptError::Other(err));
            };
            let delay = self.config.backoff.delay(retry);
            warn!(rows = rows.len(), retry, ?delay, kind = %err.kind(), error = %err, "database unavailable; retrying the batch");
            retry = retry.saturating_add(1);
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(AttemptError::Other(Error::Cancelled)),
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// One transaction over `rows`, timed and bounded.
    async fn attempt(&self, rows: &[&StreamRecord]) -> Result<u64, AttemptError> {
        let started = Instant::now();
        let limit = self.config.attempt_timeout;
        let result = match tokio::time::timeout(limit, self.attempt_inner(rows)).await {
            Ok(result) => result,
            Err(_elapsed) => Err(AttemptError::Other(Error::Timeout {
                context: "insert positions".to_owned(),
                after: limit,
            })),
        };
        metrics::histogram!(POSITION_WRITE_DURATION_SECONDS)
            .record(started.elapsed().as_secs_f64());
        if result.is_err() {
            count_rows("failed", rows.len());
        } else if let Ok(inserted) = &result {
            let inserted = usize::try_from(*inserted).unwrap_or(rows.len());
            count_rows("inserted", inserted);
            count_rows("duplicate", rows.len().saturating_sub(inserted));
        }
        result
    }

    async fn attempt_inner(&self, rows: &[&StreamRecord]) -> Result<u64, AttemptError> {
        let object = self
            .pool
            .get()
            .await
            .map_err(|e| AttemptError::Other(Error::Pool(e)))?;
        // Dropped (not returned to the pool) unless the attempt ends cleanly: a connection
        // that failed or was abandoned mid-statement may be broken or mid-transaction.
        let mut guard = Discard(Some(object));
        let result = self.transaction(guard.client(), rows).await;
        match &result {
            Ok(_) | Err(AttemptError::Data(..)) => guard.keep(),
            Err(AttemptError::Other(_)) => {}
        }
        result
    }

    async fn transaction(
        &self,
        client: &mut Object,
        rows: &[&StreamRecord],
    ) -> Result<u64, AttemptError> {
        let tx = client.transaction().await.map_err(fail("begin"))?;
        let mut inserted = 0u64;
        let shape = self.config.shape;
        let per_statement = match shape {
            StatementShape::Values | StatementShape::ValuesReturning => self
                .config
                .batch_size
                .min(MAX_BIND_PARAMETERS / COLUMN_COUNT),
            _ => self.config.batch_size,
        };
        let chunks = rows.len().div_ceil(per_statement);
        for (n, chunk) in rows.chunks(per_statement).enumerate() {
            let more = n + 1 < chunks;
            inserted += match resolve(shape, chunk.len()) {
                StatementShape::CopyStage => insert_copy_stage(&tx, chunk, more).await?,
                StatementShape::Values => insert_values(&tx, chunk, false).await?,
                StatementShape::ValuesReturning => insert_values(&tx, chunk, true).await?,
                _ => insert_unnest(&tx, chunk).await?,
            };
        }
        tx.commit().await.map_err(fail("commit"))?;
        Ok(inserted)
    }
}

/// The measured choice for `Auto` (docs/database.md, "Statement shapes, measured": unnest
/// was fastest at 500 and 5 000 rows, so it is used for every size).
fn resolve(shape: StatementShape, _rows: usize) -> StatementShape {
    match shape {
        StatementShape::Auto => StatementShape::Unnest,
        other => other,
    }
}

/// Holds a pooled connection; discards it on drop unless [`Discard::keep`] was called.
struct Discard(Option<Object>);

impl Discard {
    fn client(&mut self) -> &mut Object {
        // Invariant: the option is only emptied by `keep` and `drop`, which end the guard.
        #[allow(
            clippy::expect_used,
            reason = "set in the constructor, taken only when the guard ends"
        )]
        self.0
            .as_mut()
            .expect("connection present until the guard ends")
    }

    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for Discard {
    fn drop(&mut self) {
        if let Some(object) = self.0.take() {
            drop(Object::take(object));
        }
    }
}

fn fail(context: &'static str) -> impl Fn(tokio_postgres::Error) -> AttemptError {
    move |err| match classify(&err) {
        Failure::Data => {
            let (sqlstate, message) = match err.as_db_error() {
                Some(db) => (db.code().code().to_owned(), db.message().to_owned()),
                None => (String::new(), err.to_string()),
            };
            AttemptError::Data(sqlstate, message)
        }
        Failure::Transient | Failure::Fatal => AttemptError::Other(Error::db(context, err)),
    }
}

/// The rows as columns, in the types of the `positions` columns.
struct Columns<'a> {
    device_id: Vec<&'a str>,
    ts: Vec<OffsetDateTime>,
    latitude: Vec<f64>,
    longitude: Vec<f64>,
    altitude: Vec<Option<f32>>,
    angle: Vec<Option<f32>>,
    speed: Vec<Option<f32>>,
    satellites: Vec<Option<i16>>,
    priority: Vec<Option<i16>>,
    event_io_id: Vec<Option<i32>>,
    attributes: JsonColumn,
}

impl<'a> Columns<'a> {
    /// Row `i` as one parameter per column, in the order of `COLUMNS` (the VALUES and COPY
    /// shapes bind rows; the unnest shape binds the columns whole). `attributes` is row
    /// `i` of `self.attributes.values()`, which borrows from `self`.
    fn row<'s>(
        &'s self,
        i: usize,
        attributes: &'s (dyn ToSql + Sync),
    ) -> [&'s (dyn ToSql + Sync); COLUMN_COUNT] {
        [
            &self.device_id[i],
            &self.ts[i],
            &self.latitude[i],
            &self.longitude[i],
            &self.altitude[i],
            &self.angle[i],
            &self.speed[i],
            &self.satellites[i],
            &self.priority[i],
            &self.event_io_id[i],
            attributes,
        ]
    }

    fn new(rows: &[&'a StreamRecord]) -> Self {
        let n = rows.len();
        let mut c = Columns {
            device_id: Vec::with_capacity(n),
            ts: Vec::with_capacity(n),
            latitude: Vec::with_capacity(n),
            longitude: Vec::with_capacity(n),
            altitude: Vec::with_capacity(n),
            angle: Vec::with_capacity(n),
            speed: Vec::with_capacity(n),
            satellites: Vec::with_capacity(n),
            priority: Vec::with_capacity(n),
            event_io_id: Vec::with_capacity(n),
            attributes: JsonColumn::with_capacity(n),
        };
        for r in rows {
            c.device_id.push(r.device_id.as_str());
            c.ts.push(r.timestamp);
            c.latitude.push(r.latitude);
            c.longitude.push(r.longitude);
            c.altitude.push(r.altitude.map(f32::from));
            c.angle.push(r.angle.map(f32::from));
            c.speed.push(r.speed.map(f32::from));
            c.satellites.push(r.satellites.map(i16::from));
            c.priority.push(r.priority.map(i16::from));
            c.event_io_id.push(r.event_io_id.map(i32::from));
            c.attributes.push(&r.attributes);
        }
        c
    }
}

async fn insert_unnest(
    tx: &deadpool_postgres::Transaction<'_>,
    rows: &[&StreamRecord],
) -> Result<u64, AttemptError> {
    let stmt = tx
        .prepare_cached(INSERT_UNNEST)
        .await
        .map_err(fail("prepare insert"))?;
    let c = Columns::new(rows);
    let attributes = c.attributes.values();
    tx.execute(
        &stmt,
        &[
            &c.device_id,
            &c.ts,
            &c.latitude,
            &c.longitude,
            &c.altitude,
            &c.angle,
            &c.speed,
            &c.satellites,
            &c.priority,
            &c.event_io_id,
            &attributes,
        ],
    )
    .await
    .map_err(fail("insert positions"))
}

async fn insert_values(
    tx: &deadpool_postgres::Transaction<'_>,
    rows: &[&StreamRecord],
    returning: bool,
) -> Result<u64, AttemptError> {
    let mut sql = format!("INSERT INTO positions ({COLUMNS}) VALUES ");
    for row in 0..rows.len() {
        if row > 0 {
            sql.push(',');
        }
        sql.push('(');
        for col in 0..COLUMN_COUNT {
            if col > 0 {
                sql.push(',');
            }
            sql.push('$');
            sql.push_str(&(row * COLUMN_COUNT + col + 1).to_string());
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT (device_id, ts) DO NOTHING");
    if returning {
        sql.push_str(" RETURNING device_id, ts");
    }
    let stmt = tx
        .prepare_cached(&sql)
        .await
        .map_err(fail("prepare insert"))?;
    let c = Columns::new(rows);
    let attributes = c.attributes.values();
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(rows.len() * COLUMN_COUNT);
    for (i, attributes) in attributes.iter().enumerate() {
        params.extend_from_slice(&c.row(i, attributes));
    }
    if returning {
        let returned = tx
            .query(&stmt, &params)
            .await
            .map_err(fail("insert positions"))?;
        Ok(returned.len() as u64)
    } else {
        tx.execute(&stmt, &params)
            .await
            .map_err(fail("insert positions"))
    }
}

async fn insert_copy_stage(
    tx: &deadpool_postgres::Transaction<'_>,
    rows: &[&StreamRecord],
    more: bool,
) -> Result<u64, AttemptError> {
    tx.batch_execute(CREATE_STAGE)
        .await
        .map_err(fail("create staging table"))?;
    let c = Columns::new(rows);
    let attributes = c.attributes.values();
    let sink = tx
        .copy_in(COPY_STAGE)
        .await
        .map_err(fail("copy positions"))?;
    let mut writer = pin!(BinaryCopyInWriter::new(sink, &COPY_TYPES));
    for (i, attributes) in attributes.iter().enumerate() {
        writer
            .as_mut()
            .write(&c.row(i, attributes))
            .await
            .map_err(fail("copy positions"))?;
    }
    writer.finish().await.map_err(fail("copy positions"))?;
    let stmt = tx
        .prepare_cached(INSERT_FROM_STAGE)
        .await
        .map_err(fail("prepare insert"))?;
    let inserted = tx
        .execute(&stmt, &[])
        .await
        .map_err(fail("insert positions"))?;
    // ON COMMIT DELETE ROWS empties the stage at commit; a batch split into several
    // statements must not insert a chunk twice, so clear it in between.
    if more {
        tx.batch_execute("DELETE FROM positions_stage")
            .await
            .map_err(fail("clear staging table"))?;
    }
    Ok(inserted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_shape_stays_under_the_parameter_limit() {
        assert_eq!(MAX_BIND_PARAMETERS / COLUMN_COUNT, 5957);
    }
}
