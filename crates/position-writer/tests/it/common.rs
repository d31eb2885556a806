//! Shared helpers: pools on the test database, record builders, row counts.

use std::time::Duration;

use position_writer::{Backoff, PoolConfig, PositionWriter, WriterConfig, create_pool, migrate};
use teltonika_codec::stream_record::{AttributeValue, StreamRecord};
use test_support::TestPostgres;
use time::OffsetDateTime;

/// A pool of `size` connections on `url`, with a 1 s connect timeout.
pub(crate) fn pool(url: &str, size: usize) -> position_writer::Pool {
    let mut config = PoolConfig::new(url, size);
    config.connect_timeout = Duration::from_secs(1);
    create_pool(&config).unwrap()
}

/// A migrated database and a writer on it.
pub(crate) async fn migrated_writer(pg: &TestPostgres, config: WriterConfig) -> PositionWriter {
    let pool = pool(pg.url(), 4);
    migrate(&pool).await.unwrap();
    PositionWriter::new(pool, config).unwrap()
}

/// Writer settings for tests: short backoff and attempt timeout.
pub(crate) fn fast_config(batch_size: usize) -> WriterConfig {
    WriterConfig {
        batch_size,
        attempt_timeout: Duration::from_secs(5),
        backoff: Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(200),
        },
        ..WriterConfig::default()
    }
}

/// 2026-04-24T… plus `secs`.
pub(crate) fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_777_000_000 + secs).unwrap()
}

/// A complete record of `imei` at `at(secs)`, its latitude derived from `secs`.
pub(crate) fn record(imei: &str, secs: i64) -> StreamRecord {
    StreamRecord {
        device_id: imei.to_owned(),
        timestamp: at(secs),
        priority: Some(1),
        latitude: 41.0 + secs as f64 * 1e-5,
        longitude: 19.8187,
        altitude: Some(112),
        angle: Some(270),
        satellites: Some(11),
        speed: Some(86),
        event_io_id: Some(0),
        attributes: vec![
            (21, AttributeValue::Number(4)),
            (66, AttributeValue::Number(12_450)),
        ],
    }
}

/// `n` records over `devices` IMEIs, one per device every 10 s.
pub(crate) fn records(n: usize, devices: usize) -> Vec<StreamRecord> {
    (0..n)
        .map(|i| {
            let device = i % devices;
            record(&format!("3563070424{device:05}"), (i / devices) as i64 * 10)
        })
        .collect()
}

/// `SELECT count(*) FROM positions`.
pub(crate) async fn count(pg: &TestPostgres) -> i64 {
    pg.client()
        .await
        .query_one("SELECT count(*) FROM positions", &[])
        .await
        .unwrap()
        .get(0)
}
