//! The live path's glue: builds `live-gateway` from the processor's [`Config`] and runs it on
//! the live [`Stage`]. Started by [`crate::app::run`] only when `LIVE_ENABLED=true`.
//!
//! The gateway gets a PostgreSQL pool of its own (snapshots and the device→event map never
//! wait behind the durable writer's statements), a Directus client (`DIRECTUS_*`), and the
//! tail reader's settings (group `live-broadcast-{INSTANCE_ID}` on `REDIS_TELEMETRY_STREAM`).
//! On shutdown the stage's token is cancelled first: the gateway stops accepting, closes every
//! client with 1001, drains for at most `SHUTDOWN_TIMEOUT_MS`, then stops its consumer and
//! refresher.
//!
//! Not for: anything the durable path needs. The durable path runs unchanged whether or not
//! this module starts anything.

use std::time::Duration;

use anyhow::Context as _;
use directus_auth::{DirectusClient, DirectusConfig};
use live_gateway::{LiveConfig, LiveGateway};
use position_writer::PoolConfig;
use stream_consumer::TailConfig;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::config::Config;
use crate::http::Liveness;
use crate::shutdown::Stage;

/// Connections in the live path's own PostgreSQL pool (snapshot queries are one index probe
/// per device; a few connections serve many subscribes).
const LIVE_POOL_SIZE: usize = 4;

/// Registers the live path's metrics (labelled counters at 0). Called at start-up whatever
/// `LIVE_ENABLED` says, so dashboards see the same series on every instance.
pub fn describe_metrics(_config: &Config) {
    live_gateway::describe_metrics();
    directus_auth::describe_metrics();
}

/// The gateway's configuration from the processor's.
pub fn gateway_config(config: &Config) -> LiveConfig {
    let live = &config.live;
    LiveConfig {
        ws_path: live.path.clone(),
        allowed_origins: live.allowed_origins.clone(),
        max_connections: live.max_connections as usize,
        max_subscriptions: live.max_subscriptions as usize,
        max_queued_positions: live.max_queued_positions as usize,
        slow_client_timeout: live.slow_client_timeout,
        ping_interval: live.ping_interval,
        revalidate_interval: live.revalidate,
        device_event_refresh: live.device_event_refresh,
        shutdown_timeout: config.shutdown_timeout,
        coalesce_window: live.coalesce_window,
        ..LiveConfig::default()
    }
}

/// Starts the live path's tasks on `stage`. `stop` stops the whole process when the gateway
/// ends on its own (it only returns early on a fault).
pub async fn start(
    config: &Config,
    stage: &Stage,
    stop: CancellationToken,
    liveness: Liveness,
) -> anyhow::Result<()> {
    let mut directus = DirectusConfig::new(config.directus.url.clone());
    directus.timeout = config.directus.timeout;
    directus.cache_ttl = config.directus.cache_ttl;
    let directus = DirectusClient::new(directus).context("DIRECTUS_URL")?;

    let pool = position_writer::create_pool(&PoolConfig::new(
        config.database.url.expose(),
        LIVE_POOL_SIZE,
    ))
    .context("live path database pool")?;

    let mut tail = TailConfig::new(
        config.redis.url.expose(),
        config.redis.stream.clone(),
        config.instance_id.clone(),
    );
    tail.read_count = u64::from(config.redis.read_count);
    // The live group reads every record as soon as it lands; a long BLOCK only costs a
    // slower stop (the read is unblocked on cancel).
    tail.block = config.redis.read_block.min(Duration::from_secs(5));

    let gateway = LiveGateway::new(gateway_config(config), directus, pool, tail)?;
    let listener = tokio::net::TcpListener::bind(config.live.addr)
        .await
        .with_context(|| format!("binding the live server on {}", config.live.addr))?;

    let bound = listener.local_addr().context("live server address")?;
    // Logged here, before "processor running": tools wait for this line to learn the port.
    info!(addr = %bound, path = %config.live.path, "live server listening");

    let token = stage.token.clone();
    stage.spawn(async move {
        let result = gateway.serve(listener, token.clone()).await;
        if token.is_cancelled() && result.is_ok() {
            return;
        }
        match result {
            Ok(()) => error!("live gateway stopped unexpectedly"),
            Err(e) => error!(error = %e, "live gateway failed"),
        }
        liveness.mark_dead();
        stop.cancel();
    });
    Ok(())
}
