//! The Processor's live path: a hyper 1 + fastwebsockets WebSocket server that pushes each
//! position from the Redis stream to the browsers watching the position's event.
//!
//! What it is for: the upgrade checks (capacity, `Origin`, Directus authentication), the
//! subscription registry, the subscribe snapshot from PostgreSQL, the device→event map, the
//! broadcast consumer (its own consumer group, from the tail), the fan-out with per-connection
//! bounded, conflating queues (slow clients get the latest position of each device, never a
//! backlog) and write coalescing ([`LiveConfig::coalesce_window`]), heartbeats, session re-validation and the close-1001 drain on shutdown. The wire
//! contract is `docs/live-protocol.md`; the types are `live-protocol`'s.
//!
//! What it is NOT for: writing positions (that is the durable path; this crate never depends on
//! `position-writer`), reading the environment (the binary builds [`LiveConfig`]), or deciding
//! permissions (Directus does, through `directus-auth`).
//!
//! ```no_run
//! # async fn demo(
//! #     directus: directus_auth::DirectusClient,
//! #     pool: deadpool_postgres::Pool,
//! # ) -> Result<(), live_gateway::Error> {
//! use live_gateway::{LiveConfig, LiveGateway};
//! use stream_consumer::TailConfig;
//! use tokio_util::sync::CancellationToken;
//!
//! let tail = TailConfig::new("redis://127.0.0.1:6379", "telemetry:teltonika", "processor-1");
//! let gateway = LiveGateway::new(LiveConfig::default(), directus, pool, tail)?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let cancel = CancellationToken::new();
//! gateway.serve(listener, cancel).await
//! # }
//! ```

mod broadcast;
mod config;
mod conn;
mod device_map;
mod hub;
pub mod metrics;
mod origin;
mod outbound;
mod ratelimit;
mod revalidate;
mod server;
mod snapshot;
mod wsframe;

use std::sync::Arc;

use stream_consumer::{TailConfig, TailReader};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

pub use crate::config::{DEFAULT_COALESCE_WINDOW, LiveConfig, RateLimit};
pub use crate::metrics::describe_metrics;

use crate::hub::Hub;

/// Errors at the gateway's boundary.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The broadcast consumer's configuration was refused.
    #[error("live broadcast consumer: {0}")]
    Consumer(#[from] stream_consumer::Error),
    /// A PostgreSQL connection could not be taken from the pool.
    #[error("database pool: {0}")]
    Pool(#[source] deadpool_postgres::PoolError),
    /// A PostgreSQL query failed.
    #[error("database query: {0}")]
    Query(#[from] tokio_postgres::Error),
    /// Socket-level failure (e.g. reading the listener's address).
    #[error("live server i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// The live gateway: build it with [`LiveGateway::new`], run it with [`LiveGateway::serve`].
pub struct LiveGateway {
    hub: Arc<Hub>,
    tail: TailReader,
}

impl std::fmt::Debug for LiveGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveGateway")
            .field("ws_path", &self.hub.config.ws_path)
            .finish_non_exhaustive()
    }
}

impl LiveGateway {
    /// Builds the gateway (no I/O yet).
    ///
    /// `pool` reads the Directus tables and `positions` (snapshot, device→event map); `tail`
    /// names the stream and the instance (its group is `live-broadcast-{INSTANCE_ID}`).
    ///
    /// # Errors
    /// [`Error::Consumer`] when `tail` is invalid.
    pub fn new(
        config: LiveConfig,
        directus: directus_auth::DirectusClient,
        pool: deadpool_postgres::Pool,
        tail: TailConfig,
    ) -> Result<Self, Error> {
        let tail = TailReader::new(tail)?;
        Ok(Self {
            hub: Arc::new(Hub::new(config, directus, pool)),
            tail,
        })
    }

    /// Whether the broadcast consumer's Redis connection is up.
    pub fn health(&self) -> stream_consumer::Health {
        self.tail.health()
    }

    /// Serves WebSocket clients on `listener` (already bound: tests bind port 0) until `cancel`,
    /// with the broadcast consumer, the device→event map refresher and the session
    /// re-validation running alongside. On `cancel`: stop accepting, close every connection
    /// with 1001, drain for at most `shutdown_timeout`, stop the background tasks, return.
    ///
    /// # Errors
    /// [`Error::Io`] when the listener's address cannot be read.
    pub async fn serve(
        self,
        listener: TcpListener,
        cancel: CancellationToken,
    ) -> Result<(), Error> {
        let hub = self.hub;
        let addr = listener.local_addr()?;
        info!(addr = %addr, path = %hub.config.ws_path, "live gateway serving");

        let background = CancellationToken::new();
        let refresher = tokio::spawn(device_map::refresh_loop(
            hub.pool.clone(),
            Arc::clone(&hub.device_map),
            hub.config.device_event_refresh,
            background.clone(),
        ));
        let consumer = tokio::spawn(broadcast::run(
            Arc::clone(&hub),
            self.tail,
            background.clone(),
        ));
        let revalidator = hub.config.revalidate_interval.map(|every| {
            tokio::spawn(revalidate::run(Arc::clone(&hub), every, background.clone()))
        });

        server::accept_loop(Arc::clone(&hub), listener, cancel).await;

        // Connections are closed: stop the live consumer and the refresher.
        background.cancel();
        let _ = consumer.await;
        let _ = refresher.await;
        if let Some(revalidator) = revalidator {
            let _ = revalidator.await;
        }
        info!("live server stopped");
        Ok(())
    }
}
