//! The service's lifecycle: start-up in order, run until a signal (or a fatal fault), then
//! the ordered, bounded shutdown of `docs/operations.md`.
//!
//! Start-up: metrics recorder and server → the durable consumer's Redis connection (in its
//! own task, alongside the next steps, so `/readyz` reports Redis's real state meanwhile) →
//! migrations → device-state rehydration → the durable consumer starts reading → live path
//! (when `LIVE_ENABLED`). Shutdown: live → durable consumer (finishes and ACKs the batch in
//! flight) → metrics server → Redis → PostgreSQL pool.

use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use position_writer::{DbHealth, DeviceState, PoolConfig, PositionWriter, WriterConfig};
use stream_consumer::{Consumer, ConsumerConfig};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::durable::DurableHandler;
use crate::http::{self, Liveness, Probe, ProbeFuture};
use crate::shutdown::{self, Deadline, Stage};

/// Runs the Processor until SIGTERM/SIGINT (`Ok` after a clean stop) or a fatal fault.
pub async fn run(config: Config) -> anyhow::Result<()> {
    info!(
        instance_id = %config.instance_id,
        redis_url = %config.redis.url,
        database_url = %config.database.url,
        stream = %config.redis.stream,
        group = %config.redis.group,
        consumer = %config.redis.consumer_name,
        live_enabled = config.live.enabled,
        "processor starting"
    );

    // Metrics first, so every component's counters exist (at 0) from start-up.
    let prometheus = http::install_recorder()?;
    stream_consumer::describe_metrics();
    position_writer::describe_metrics();
    crate::durable::describe_metrics();
    crate::live::describe_metrics(&config);

    // `stop` ends the run: a signal, or a component that failed on its own.
    let stop = CancellationToken::new();
    // Cancelled by the durable handler on a database fault that is not an outage.
    let fatal = CancellationToken::new();
    let failure = Arc::new(std::sync::Mutex::new(None::<String>));
    tokio::spawn(watch_signals(stop.clone()));

    // No I/O yet: the pool connects lazily, the consumer in `run`.
    let pool = position_writer::create_pool(&PoolConfig::new(
        config.database.url.expose(),
        config.database.pool_size as usize,
    ))?;
    // The consumer leaves its connections open when it stops: Redis is closed after the
    // metrics server, as operations.md orders.
    let consumer = Consumer::new(consumer_config(&config))?.keep_open_on_stop();
    let redis_closer = consumer.closer();
    let db_health = DbHealth::new(pool.clone());
    let redis_health = consumer.health();

    let live = Stage::new();
    let durable = Stage::new();
    let server = Stage::new();
    let liveness = Liveness::default();

    let listener = http::bind(config.metrics_addr).await?;
    let state = Arc::new(http::State {
        metrics: prometheus.clone(),
        liveness: liveness.clone(),
        probes: vec![
            Box::new(RedisProbe(redis_health)),
            Box::new(PostgresProbe(db_health)),
        ],
    });
    server.spawn(http::serve(listener, state, server.token.clone()));
    server.spawn(http::run_upkeep(prometheus, server.token.clone()));

    // The durable consumer connects to Redis now (so `/readyz` names only what is really
    // failing while the start-up waits for PostgreSQL) and starts reading once it gets its
    // handler, after the migrations.
    let (handler_tx, handler_rx) = oneshot::channel::<DurableHandler>();
    {
        let token = durable.token.clone();
        durable.spawn(supervise(
            "durable consumer",
            run_durable(consumer, handler_rx, token.clone()),
            token,
            stop.clone(),
            liveness.clone(),
            Arc::clone(&failure),
        ));
    }

    let started = async {
        let report = retry_transient("apply migrations", &stop, || {
            position_writer::migrate(&pool)
        })
        .await?;
        info!(
            applied = ?report.applied,
            skipped = report.skipped.len(),
            extensions = ?report.extensions,
            "migrations up to date"
        );
        let max = NonZeroUsize::new(config.database.device_state_max as usize)
            .unwrap_or(NonZeroUsize::MIN);
        let mut device_state = DeviceState::new(max);
        match device_state.rehydrate(&pool).await {
            Ok(rows) => info!(devices = rows, "device state rehydrated"),
            // A cache: starting empty only costs a few "new device" observations.
            Err(e) => warn!(error = %e, "device state rehydration failed; starting empty"),
        }
        Ok::<_, anyhow::Error>(Some(device_state))
    };
    // Start-up steps wait for PostgreSQL; a signal meanwhile ends the run cleanly.
    let device_state = tokio::select! {
        biased;
        () = stop.cancelled() => None,
        result = started => result?,
    };

    if let Some(device_state) = device_state {
        let writer = PositionWriter::new(
            pool.clone(),
            WriterConfig {
                batch_size: config.database.write_batch_size as usize,
                ..WriterConfig::default()
            },
        )?;
        let handler =
            DurableHandler::new(writer, device_state, durable.token.clone(), stop.clone());
        // A send fails only when the durable task already ended, which `supervise` reported.
        let _ = handler_tx.send(handler);

        if config.live.enabled {
            crate::live::start(&config, &live, stop.clone(), liveness.clone()).await?;
        }
        info!("processor running");
        tokio::select! {
            () = stop.cancelled() => {}
            () = fatal.cancelled() => {
                liveness.mark_dead();
                if let Ok(mut slot) = failure.lock() {
                    slot.get_or_insert_with(|| "durable path: the database refused the writes (see the error above)".to_owned());
                }
            }
        }
    } else {
        // Start-up interrupted by a signal: the durable task waits for its stop.
        drop(handler_tx);
    }

    // The ordered, bounded shutdown.
    info!(
        timeout_ms = config.shutdown_timeout.as_millis() as u64,
        "shutting down"
    );
    let deadline = Deadline::after(config.shutdown_timeout);
    let mut clean = live.stop("live", &deadline).await;
    clean &= durable
        .stop("durable consumer (batch in flight acknowledged)", &deadline)
        .await;
    clean &= server.stop("metrics server", &deadline).await;
    match tokio::time::timeout(deadline.remaining(), redis_closer.close()).await {
        Ok(()) => info!("redis closed"),
        Err(_) => {
            warn!("redis did not close within the shutdown timeout");
            clean = false;
        }
    }
    pool.close();
    info!("postgres pool closed");

    if let Some(message) = failure.lock().map_or(None, |mut f| f.take()) {
        anyhow::bail!("{message}");
    }
    if !clean {
        anyhow::bail!(
            "shutdown did not finish within SHUTDOWN_TIMEOUT_MS ({} ms)",
            config.shutdown_timeout.as_millis()
        );
    }
    info!("processor stopped");
    Ok(())
}

/// The stream-consumer configuration from the processor's.
pub fn consumer_config(config: &Config) -> ConsumerConfig {
    let redis = &config.redis;
    let mut c = ConsumerConfig::new(
        redis.url.expose(),
        redis.stream.clone(),
        redis.group.clone(),
        redis.consumer_name.clone(),
    )
    .with_claim_min_idle(redis.claim_min_idle);
    c.read_count = u64::from(redis.read_count);
    c.block = redis.read_block;
    c.max_deliveries = u64::from(redis.max_deliveries);
    c.dead_letter_stream = redis.dead_letter_stream.clone();
    c
}

/// The durable stage's task: connect to Redis (and ensure the group) at once, then run the
/// consumer once the start-up hands over the handler. Returns when `token` is cancelled.
async fn run_durable(
    mut consumer: Consumer,
    handler: oneshot::Receiver<DurableHandler>,
    token: CancellationToken,
) -> stream_consumer::Result<()> {
    if !consumer.connect(&token).await {
        return Ok(());
    }
    let handler = tokio::select! {
        () = token.cancelled() => return Ok(()),
        handler = handler => handler,
    };
    match handler {
        Ok(handler) => consumer.run(handler, token).await,
        // The start-up ended without a handler (a signal, or a start-up error that ends
        // the run): nothing to read; wait for the stage to be stopped.
        Err(_) => {
            token.cancelled().await;
            Ok(())
        }
    }
}

/// Waits for the first SIGTERM/SIGINT and cancels `stop`; a second signal exits at once.
async fn watch_signals(stop: CancellationToken) {
    let name = shutdown::signal().await;
    info!(signal = name, "shutdown requested");
    stop.cancel();
    let name = shutdown::signal().await;
    error!(signal = name, "second signal during shutdown: exiting now");
    std::process::exit(1);
}

/// Runs a long-lived task of a stage. If it ends while its stage is not stopping (an error,
/// or returning early), that is a fault: `/healthz` turns 503 and the process stops.
pub async fn supervise<F, E>(
    name: &'static str,
    task: F,
    token: CancellationToken,
    stop: CancellationToken,
    liveness: Liveness,
    failure: Arc<std::sync::Mutex<Option<String>>>,
) where
    F: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let result = task.await;
    if token.is_cancelled() && result.is_ok() {
        return;
    }
    let message = match result {
        Ok(()) => format!("{name} stopped unexpectedly"),
        Err(e) => format!("{name} failed: {e}"),
    };
    error!(task = name, error = %message, "a processor loop ended");
    liveness.mark_dead();
    if let Ok(mut slot) = failure.lock() {
        slot.get_or_insert(message);
    }
    stop.cancel();
}

/// Retries `op` while it fails transiently (PostgreSQL down), with capped backoff, until it
/// succeeds or fails for good. Once `stop` fires it never returns: the caller's `select!` on
/// `stop` ends the start-up instead.
async fn retry_transient<T, F, Fut>(
    what: &'static str,
    stop: &CancellationToken,
    mut op: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = position_writer::Result<T>>,
{
    let mut delay = Duration::from_millis(100);
    loop {
        match op().await {
            Ok(value) => return Ok(value),
            Err(e) if e.is_transient() => {
                warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "{what}: database unavailable, retrying");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = stop.cancelled() => std::future::pending::<()>().await,
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e).context(what),
        }
    }
}

/// `/readyz`: the durable consumer's Redis connections.
struct RedisProbe(stream_consumer::Health);

impl Probe for RedisProbe {
    fn name(&self) -> &'static str {
        "redis"
    }
    fn check(&self) -> ProbeFuture<'_> {
        let up = self.0.is_up();
        Box::pin(async move { up })
    }
}

/// `/readyz`: a cached (≤ 5 s) `SELECT 1`.
struct PostgresProbe(DbHealth);

impl Probe for PostgresProbe {
    fn name(&self) -> &'static str {
        "postgres"
    }
    fn check(&self) -> ProbeFuture<'_> {
        Box::pin(async move { self.0.status().await.is_up() })
    }
}
