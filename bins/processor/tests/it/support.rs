//! Shared helpers: a Redis stream + a fresh database per test, the processor as a child
//! process, record generation, and polling helpers.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use fred::prelude::*;
use teltonika_codec::stream_record::{AttributeValue, EntryCodec, StreamRecord, encode_entry};
use test_support::{ChildProcess, TestPostgres, TestRedis};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The durable group the processor uses by default.
pub(crate) const GROUP: &str = "processor";

/// A stream key and a database for one test.
pub(crate) struct Env {
    pub(crate) redis: TestRedis,
    pub(crate) pg: TestPostgres,
    pub(crate) stream: String,
    pub(crate) client: Client,
    /// Set when the stream lives on another server than `redis` (see [`Env::on_redis`]).
    redis_url: Option<String>,
}

impl Env {
    /// `None` (after a SKIP line) when Redis or PostgreSQL is unavailable.
    pub(crate) async fn new() -> Option<Self> {
        let redis = test_support::redis().await?;
        let pg = test_support::postgres().await?;
        let stream = redis.unique_key("telemetry");
        let client = redis.client().await;
        Some(Self {
            redis,
            pg,
            stream,
            client,
            redis_url: None,
        })
    }

    /// Like [`Env::new`], but the stream lives on the Redis server at `url` (e.g. an owned,
    /// restartable one).
    pub(crate) async fn on_redis(url: &str) -> Option<Self> {
        let mut env = Self::new().await?;
        env.client = connect(url).await;
        env.redis_url = Some(url.to_owned());
        Some(env)
    }

    /// Reconnects the test's own client (after a server restart; it has no reconnect policy).
    pub(crate) async fn reconnect(&mut self) {
        let url = self
            .redis_url
            .clone()
            .unwrap_or_else(|| self.redis.url().to_owned());
        self.client = connect(&url).await;
    }

    /// The processor's environment for this test (durable path only, fast reads, any port).
    pub(crate) fn env(&self, instance: &str) -> Vec<(String, String)> {
        [
            ("INSTANCE_ID", instance),
            ("LOG_FORMAT", "json"),
            ("LOG_LEVEL", "info"),
            (
                "REDIS_URL",
                self.redis_url.as_deref().unwrap_or(self.redis.url()),
            ),
            ("REDIS_TELEMETRY_STREAM", &self.stream),
            ("REDIS_READ_BLOCK_MS", "200"),
            ("DATABASE_URL", self.pg.url()),
            ("DATABASE_POOL_SIZE", "4"),
            ("METRICS_HOST", "127.0.0.1"),
            ("METRICS_PORT", "0"),
            ("LIVE_ENABLED", "false"),
            ("SHUTDOWN_TIMEOUT_MS", "10000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// Spawns a processor with [`Env::env`] plus `extra` (overriding), waits until it is
    /// running (migrations done, consumer started).
    pub(crate) async fn spawn(&self, instance: &str, extra: &[(&str, &str)]) -> Processor {
        let mut env = self.env(instance);
        for (k, v) in extra {
            env.retain(|(name, _)| name != k);
            env.push(((*k).to_owned(), (*v).to_owned()));
        }
        Processor::spawn(env).await
    }

    /// XADDs `records` (pipelined, in order); returns their ids.
    pub(crate) async fn add(&self, records: &[StreamRecord]) -> Vec<String> {
        let mut ids = Vec::with_capacity(records.len());
        for chunk in records.chunks(2000) {
            let pipe = self.client.pipeline();
            for record in chunk {
                let fields = encode_entry(record, EntryCodec::Codec8E);
                let _: () = pipe
                    .xadd(&self.stream, false, None, "*", fields)
                    .await
                    .unwrap();
            }
            let chunk_ids: Vec<String> = pipe.all().await.unwrap();
            ids.extend(chunk_ids);
        }
        ids
    }

    /// XADDs one entry with arbitrary fields; returns its id.
    pub(crate) async fn add_raw(&self, fields: Vec<(&str, String)>) -> String {
        self.client
            .xadd(&self.stream, false, None, "*", fields)
            .await
            .unwrap()
    }

    /// Rows in `positions` (0 when the table does not exist yet).
    pub(crate) async fn rows(&self) -> i64 {
        let client = self.pg.client().await;
        match client
            .query_one("SELECT count(*) FROM positions", &[])
            .await
        {
            Ok(row) => row.get(0),
            Err(_) => 0,
        }
    }

    /// Distinct `(device_id, ts)` pairs in `positions`.
    pub(crate) async fn distinct_rows(&self) -> i64 {
        let client = self.pg.client().await;
        client
            .query_one(
                "SELECT count(*) FROM (SELECT DISTINCT device_id, ts FROM positions) d",
                &[],
            )
            .await
            .unwrap()
            .get(0)
    }

    /// Entries pending in the durable group (0 when the group does not exist).
    pub(crate) async fn pending(&self) -> u64 {
        let reply: Result<Value, _> = self.client.xpending(&self.stream, GROUP, ()).await;
        match reply {
            Ok(Value::Array(parts)) => parts.first().and_then(Value::as_u64).unwrap_or(0),
            _ => 0,
        }
    }

    /// Ids pending in the durable group with their delivery counts.
    pub(crate) async fn pending_entries(&self) -> Vec<(String, u64)> {
        let rows: Vec<(String, String, u64, u64)> = self
            .client
            .xpending(&self.stream, GROUP, ("-", "+", 10_000))
            .await
            .unwrap_or_default();
        rows.into_iter().map(|(id, _, _, n)| (id, n)).collect()
    }

    /// The dead-letter stream's entries (id, fields).
    pub(crate) async fn dead_letters(&self) -> Vec<(String, Vec<(String, String)>)> {
        self.client
            .xrange(format!("{}:dead", self.stream), "-", "+", None)
            .await
            .unwrap_or_default()
    }

    /// Waits until every record is written and nothing is pending.
    pub(crate) async fn wait_drained(&self, rows: i64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let last = (self.rows().await, self.pending().await);
            if last.0 >= rows && last.1 == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not drained within {timeout:?}: rows/pending = {last:?}, expected {rows} rows"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A connected fred client without reconnect policy.
pub(crate) async fn connect(url: &str) -> Client {
    let client = Builder::from_config(Config::from_url(url).unwrap())
        .build()
        .unwrap();
    client.init().await.unwrap();
    client
}

/// A running processor and its metrics address.
pub(crate) struct Processor {
    pub(crate) child: ChildProcess,
    pub(crate) metrics: SocketAddr,
}

impl Processor {
    /// Spawns the binary with exactly `env`, reads the metrics address from its log and
    /// waits for "processor running".
    pub(crate) async fn spawn(env: Vec<(String, String)>) -> Self {
        let child = ChildProcess::spawn(env!("CARGO_BIN_EXE_processor"), env);
        let mut p = Self {
            child,
            metrics: "127.0.0.1:0".parse().unwrap(),
        };
        p.wait_started().await;
        p
    }

    /// After spawn or restart: the metrics address, then the running line.
    pub(crate) async fn wait_started(&mut self) {
        let line = self
            .child
            .wait_for_json(
                |v| v["message"] == "metrics server listening",
                Duration::from_secs(30),
            )
            .await;
        self.metrics = line["addr"].as_str().unwrap().parse().unwrap();
        self.child
            .wait_for_json(
                |v| v["message"] == "processor running",
                Duration::from_secs(30),
            )
            .await;
    }

    /// Restarts the child (SIGKILL if still running) with the same environment.
    pub(crate) async fn restart(&mut self) {
        self.child.restart().await;
        self.wait_started().await;
    }

    /// GET `path` on the metrics server: (status, body).
    pub(crate) async fn get(&self, path: &str) -> (u16, String) {
        http_get(self.metrics, path).await
    }

    /// The value of the sample named exactly `series` (e.g. `processor_acks_total` or
    /// `processor_position_writes_total{status="duplicate"}`), or `None` if absent.
    pub(crate) async fn metric(&self, series: &str) -> Option<f64> {
        let (status, body) = self.get("/metrics").await;
        assert_eq!(status, 200);
        sample(&body, series)
    }

    /// SIGTERM and wait for the exit status.
    pub(crate) async fn stop(&mut self) -> std::process::ExitStatus {
        self.child.sigterm();
        self.child.wait(Duration::from_secs(30)).await
    }
}

/// The value of `series` in a Prometheus text exposition.
pub(crate) fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}

/// A minimal HTTP/1.1 GET (the test needs nothing more).
pub(crate) async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Polls `check` every 100 ms until it is true (→ true) or `timeout` passes (→ false).
pub(crate) async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The base time of generated records.
pub(crate) fn base_time() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_777_712_400).unwrap() // 2026-05-02T09:00:00Z
}

/// A plausible record: device `device` (an IMEI-like id), `n` seconds after [`base_time`].
pub(crate) fn record(device: u32, n: u32) -> StreamRecord {
    let mut r = StreamRecord::new(
        format!("35630704{device:07}"),
        base_time() + time::Duration::seconds(i64::from(n)),
        41.3275 + f64::from(n % 1000) * 1e-5,
        19.8187 - f64::from(device % 1000) * 1e-5,
    );
    r.priority = Some(1);
    r.altitude = Some(112);
    r.angle = Some((n % 360) as u16);
    r.satellites = Some(11);
    r.speed = Some((n % 200) as u16);
    r.event_io_id = Some(0);
    r.attributes = vec![
        (21, AttributeValue::Number(4)),
        (66, AttributeValue::Number(12_450)),
        (16, AttributeValue::BigInt(i128::from(n) * 1000)),
    ];
    r
}

/// `count` records spread over `devices` devices, all distinct `(device_id, ts)`.
pub(crate) fn records(devices: u32, count: u32) -> Vec<StreamRecord> {
    (0..count)
        .map(|i| record(i % devices, i / devices))
        .collect()
}
