//! The test harness: real Redis and PostgreSQL (test-support), the Directus stub, a gateway
//! on a port-0 listener, seeding and XADD helpers, and a Prometheus recorder to read metrics.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use directus_auth::{DirectusClient, DirectusConfig};
use fred::prelude::*;
use live_gateway::{LiveConfig, LiveGateway};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use stream_consumer::TailConfig;
use test_support::{DirectusStub, Seed, StubUser, TestPostgres, TestRedis};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The session cookie value of the harness's user.
pub(crate) const SESSION: &str = "session-ana";

/// The global Prometheus recorder of this test binary (installed once).
pub(crate) fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .install_recorder()
            .expect("install the prometheus recorder");
        live_gateway::describe_metrics();
        handle
    })
}

/// The value of a metric line `name{labels} value` (sum over lines matching `name` and every
/// `labels` fragment), 0 when absent.
pub(crate) fn metric(name: &str, labels: &[&str]) -> f64 {
    prometheus()
        .render()
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            let key = line.split_whitespace().next().unwrap_or_default();
            let bare = key.split('{').next().unwrap_or_default();
            bare == name && labels.iter().all(|l| key.contains(l))
        })
        .filter_map(|line| line.split_whitespace().last()?.parse::<f64>().ok())
        .sum()
}

/// Services and seed data for one test.
pub(crate) struct Env {
    pub(crate) pg: TestPostgres,
    pub(crate) redis: TestRedis,
    pub(crate) stub: DirectusStub,
    pub(crate) user: StubUser,
    pub(crate) stream: String,
    pub(crate) redis_client: Client,
}

/// A running gateway.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    pub(crate) cancel: CancellationToken,
    pub(crate) task: JoinHandle<Result<(), live_gateway::Error>>,
}

/// Test defaults: short intervals, no revalidation, no cache.
pub(crate) fn test_config() -> LiveConfig {
    LiveConfig {
        device_event_refresh: Duration::from_millis(200),
        revalidate_interval: None,
        ping_interval: Duration::from_secs(30),
        shutdown_timeout: Duration::from_secs(5),
        close_handshake_timeout: Duration::from_secs(2),
        ..LiveConfig::default()
    }
}

/// `Cookie` header value for a session token.
pub(crate) fn cookie(token: &str) -> String {
    format!(
        "theme=dark; {}={token}",
        test_support::directus_stub::SESSION_COOKIE
    )
}

impl Env {
    /// Provisions everything, or `None` when services are missing (skip).
    pub(crate) async fn new() -> Option<Self> {
        let _ = prometheus();
        let pg = test_support::postgres().await?;
        let redis = test_support::redis().await?;
        test_support::apply_migrations(&pg).await;
        test_support::load_directus_schema(&pg).await;
        let stub = DirectusStub::start().await;
        let user = StubUser::new(Seed::uuid(), "ana@example.com");
        stub.add_cookie(SESSION, &user);
        let stream = redis.unique_key("telemetry");
        let redis_client = redis.client().await;
        Some(Self {
            pg,
            redis,
            stub,
            user,
            stream,
            redis_client,
        })
    }

    /// Seeds an event with one device per IMEI and allows the harness user to see it.
    pub(crate) async fn event(&self, name: &str, imeis: &[&str]) -> String {
        let seed = Seed::new(&self.pg).await;
        let event = seed.event_with_devices(name, imeis).await;
        self.stub.allow(&self.user.id, &event);
        event
    }

    /// Registers an existing IMEI (already in `devices`) to another event as well.
    pub(crate) async fn register_existing(&self, event_id: &str, imei: &str) {
        let seed = Seed::new(&self.pg).await;
        let entry = seed.entry(event_id, "99").await;
        let client = self.pg.client().await;
        let row = client
            .query_one("SELECT id::text FROM devices WHERE imei = $1", &[&imei])
            .await
            .unwrap();
        let device: String = row.get(0);
        seed.entry_device(&entry, &device).await;
    }

    /// Inserts a stored position.
    pub(crate) async fn position_row(
        &self,
        imei: &str,
        ts_ms: i64,
        lat: f64,
        lon: f64,
        speed: Option<f32>,
        angle: Option<f32>,
        faulty: bool,
    ) {
        let client = self.pg.client().await;
        client
            .execute(
                "INSERT INTO positions (device_id, ts, latitude, longitude, speed, angle, faulty) \
                 VALUES ($1, to_timestamp($2::float8 / 1000.0), $3, $4, $5, $6, $7)",
                &[&imei, &(ts_ms as f64), &lat, &lon, &speed, &angle, &faulty],
            )
            .await
            .unwrap();
    }

    /// XADDs one stream record; returns its entry id.
    pub(crate) async fn xadd(
        &self,
        imei: &str,
        ts_ms: i64,
        lat: f64,
        lon: f64,
        speed: u16,
        angle: u16,
    ) -> String {
        self.xadd_raw(record_fields(imei, ts_ms, lat, lon, speed, angle))
            .await
    }

    /// XADDs raw fields (e.g. an undecodable record).
    pub(crate) async fn xadd_raw(&self, fields: Vec<(&str, String)>) -> String {
        self.redis_client
            .xadd::<String, _, _, _, _>(&self.stream, false, None, "*", fields)
            .await
            .unwrap()
    }

    /// A Directus client on the stub.
    pub(crate) fn directus(&self, cache_ttl: Duration) -> DirectusClient {
        let mut config = DirectusConfig::new(self.stub.url());
        config.timeout = Duration::from_secs(2);
        config.cache_ttl = cache_ttl;
        DirectusClient::new(config).unwrap()
    }

    /// A pool on the test database.
    pub(crate) fn pool(&self) -> deadpool_postgres::Pool {
        let mut config = deadpool_postgres::Config::new();
        config.url = Some(self.pg.url().to_owned());
        config
            .create_pool(
                Some(deadpool_postgres::Runtime::Tokio1),
                tokio_postgres::NoTls,
            )
            .unwrap()
    }

    /// Starts a gateway with `config` (no Directus cache).
    pub(crate) async fn start(&self, config: LiveConfig) -> Server {
        self.start_with(config, Duration::ZERO).await
    }

    /// Starts a gateway with `config` and a Directus cache TTL; returns once its tail reader is
    /// at the stream's tail and the device map had time to load.
    pub(crate) async fn start_with(&self, config: LiveConfig, cache_ttl: Duration) -> Server {
        let mut tail = TailConfig::new(
            self.redis.url(),
            &self.stream,
            format!("it-{}", rand_suffix()),
        );
        tail.block = Duration::from_millis(200);
        let gateway =
            LiveGateway::new(config, self.directus(cache_ttl), self.pool(), tail).unwrap();
        let health = gateway.health();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(gateway.serve(listener, cancel.clone()));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !health.is_up() {
            assert!(std::time::Instant::now() < deadline, "tail reader not up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The device map's first load runs at start; give it a moment on a busy machine.
        tokio::time::sleep(Duration::from_millis(300)).await;
        Server { addr, cancel, task }
    }
}

fn rand_suffix() -> String {
    Seed::uuid()[..8].to_owned()
}

/// The stream fields of a record (stream-record.md).
pub(crate) fn record_fields(
    imei: &str,
    ts_ms: i64,
    lat: f64,
    lon: f64,
    speed: u16,
    angle: u16,
) -> Vec<(&'static str, String)> {
    let ts = iso(ts_ms);
    let payload = serde_json::json!({
        "device_id": imei,
        "timestamp": ts,
        "priority": 1,
        "latitude": lat,
        "longitude": lon,
        "altitude": 100,
        "angle": angle,
        "satellites": 9,
        "speed": speed,
        "event_io_id": 0,
        "attributes": {"21": 4}
    });
    vec![
        ("ts", ts),
        ("device_id", imei.to_owned()),
        ("codec", "8E".to_owned()),
        ("payload", payload.to_string()),
    ]
}

/// ISO-8601 UTC with milliseconds, as tcp-ingestion writes it.
pub(crate) fn iso(ts_ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts_ms) * 1_000_000).unwrap();
    teltonika_codec::stream_record::format_timestamp(t)
}

/// Now, epoch ms.
pub(crate) fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// A 15-digit IMEI from a small number (unique per test via `base`).
pub(crate) fn imei(base: u64, n: u64) -> String {
    format!("{:015}", 350_000_000_000_000 + base * 1000 + n)
}
