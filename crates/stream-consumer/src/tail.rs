//! The live path's reader: every entry, from the tail on, no acknowledgements.
//!
//! Each instance owns a group `live-broadcast-{INSTANCE_ID}`, created at `$` with `MKSTREAM`
//! and moved to the tail (`XGROUP SETID … $`) on every start: positions written while the
//! instance was down are history, not news. Reads are `XREADGROUP … NOACK >`, so the group
//! keeps no pending list. The reader uses one client of its own (the blocking read owns its
//! connection; group commands run between reads), reconnects by itself and recreates the
//! group on `NOGROUP`.

use std::pin::pin;
use std::time::Duration;

use fred::prelude::*;
use fred::types::ClientUnblockFlag;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::config::TailConfig;
use crate::entry::{TailEntry, entry_id_millis};
use crate::error::Result;
use crate::health::Health;
use crate::ops::{self, Role};

/// Reads the stream's new entries for the live path and sends them, a batch at a time, into
/// a bounded channel.
///
/// ```no_run
/// use stream_consumer::{TailConfig, TailReader};
/// use tokio_util::sync::CancellationToken;
///
/// # async fn demo() -> Result<(), stream_consumer::Error> {
/// let reader = TailReader::new(TailConfig::new("redis://127.0.0.1:6379", "telemetry:teltonika", "processor-1"))?;
/// let (tx, mut rx) = tokio::sync::mpsc::channel(16);
/// let cancel = CancellationToken::new();
/// tokio::spawn(reader.run(tx, cancel.clone()));
/// while let Some(batch) = rx.recv().await {
///     for entry in batch {
///         let _lag_ms = entry.redis_timestamp_ms; // for the delivery-latency histogram
///         let _payload = entry.field("payload");
///     }
/// }
/// # Ok(()) }
/// ```
pub struct TailReader {
    config: TailConfig,
    client: Client,
    health: Health,
}

impl std::fmt::Debug for TailReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TailReader")
            .field("stream", &self.config.stream)
            .field("group", &self.config.group)
            .finish_non_exhaustive()
    }
}

impl TailReader {
    /// Validates `config` and builds the client (no I/O; [`run`](Self::run) connects).
    pub fn new(config: TailConfig) -> Result<Self> {
        config.validate()?;
        let client = ops::build_client(
            &config.redis_url,
            Role::Reader,
            config.backoff_min,
            config.backoff_max,
        )?;
        let health = Health::new(vec![client.clone()]);
        Ok(Self {
            config,
            client,
            health,
        })
    }

    /// Whether the reader's Redis connection is up and its last command succeeded.
    pub fn health(&self) -> Health {
        self.health.clone()
    }

    /// Reads until `cancel` fires or the receiver of `sink` is dropped. Each non-empty read
    /// becomes one `Vec<TailEntry>` sent into `sink`; when the channel is full the reader
    /// waits (the stream is the buffer), so memory stays bounded by the channel's capacity
    /// times the read count. Redis failures are retried with backoff, never returned.
    pub async fn run(
        self,
        sink: mpsc::Sender<Vec<TailEntry>>,
        cancel: CancellationToken,
    ) -> Result<()> {
        let cfg = &self.config;
        let mut backoff = Backoff::new(cfg.backoff_min, cfg.backoff_max);
        let mut initialized = false;
        // `SETID $` once per start (not after a reconnect: a short outage is caught up).
        let mut at_tail = false;
        loop {
            if cancel.is_cancelled() || sink.is_closed() {
                break;
            }
            if !initialized || !at_tail {
                let setup = async {
                    if !initialized {
                        self.client
                            .init()
                            .await
                            .map_err(crate::error::redis("CONNECT", &cfg.stream))?;
                        initialized = true;
                    }
                    self.move_to_tail().await
                };
                let r = tokio::select! {
                    r = setup => r,
                    () = cancel.cancelled() => break,
                };
                match r {
                    Ok(()) => {
                        at_tail = true;
                        self.health.set(true);
                        info!(stream = %cfg.stream, group = %cfg.group, "live tail reader at the stream's tail");
                    }
                    Err(e) => {
                        self.health.set(false);
                        warn!(error = %e, "live tail reader setup failed, retrying");
                        if !backoff.wait(&cancel).await {
                            break;
                        }
                        continue;
                    }
                }
            }

            match self.read(&cancel).await {
                Ok(batch) => {
                    self.health.set(true);
                    backoff.reset();
                    if batch.is_empty() {
                        continue;
                    }
                    tokio::select! {
                        r = sink.send(batch) => if r.is_err() { break },
                        () = cancel.cancelled() => break,
                    }
                }
                Err(e) => {
                    self.health.set(false);
                    if e.is_no_group() {
                        warn!(stream = %cfg.stream, group = %cfg.group, "live group vanished (NOGROUP): recreating it at the tail");
                        if let Err(e) =
                            ops::ensure_group(&self.group_client(), &cfg.stream, &cfg.group, "$")
                                .await
                        {
                            warn!(error = %e, "recreating the live group failed");
                        } else {
                            continue;
                        }
                    } else {
                        warn!(error = %e, "live tail read failed, retrying after backoff");
                    }
                    if !backoff.wait(&cancel).await {
                        break;
                    }
                }
            }
        }
        self.health.set(false);
        if initialized {
            let _ = tokio::time::timeout(Duration::from_secs(2), self.client.quit()).await;
        }
        Ok(())
    }

    /// The client with the group-command timeout (the blocking read itself has none).
    fn group_client(&self) -> fred::clients::WithOptions<Client> {
        self.client.with_options(&Options {
            timeout: Some(self.config.command_timeout),
            ..Default::default()
        })
    }

    async fn move_to_tail(&self) -> Result<()> {
        let cfg = &self.config;
        let c = self.group_client();
        ops::ensure_group(&c, &cfg.stream, &cfg.group, "$").await?;
        ops::set_group_to_tail(&c, &cfg.stream, &cfg.group).await
    }

    /// One `XREADGROUP … NOACK >`; on cancel the blocked read is woken (`CLIENT UNBLOCK …
    /// TIMEOUT`) and whatever it returns is dropped.
    async fn read(&self, cancel: &CancellationToken) -> Result<Vec<TailEntry>> {
        let cfg = &self.config;
        let mut fut = pin!(ops::read_group(
            &self.client,
            &cfg.stream,
            &cfg.group,
            &cfg.consumer,
            cfg.read_count,
            Some(cfg.block),
            true,
            ">",
        ));
        let raw = tokio::select! {
            r = &mut fut => r?,
            () = cancel.cancelled() => {
                let _ = self.client.unblock_self(Some(ClientUnblockFlag::Timeout)).await;
                let _ = tokio::time::timeout(Duration::from_millis(500), fut).await;
                debug!("live tail reader cancelled during a read");
                return Ok(Vec::new());
            }
        };
        Ok(raw
            .into_iter()
            .map(|(id, fields)| TailEntry {
                redis_timestamp_ms: entry_id_millis(&id).unwrap_or(0),
                id,
                fields,
            })
            .collect())
    }
}
