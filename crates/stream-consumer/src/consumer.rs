//! The consumer-group engine: the read loop, the reclaimer, dead-lettering and the gauges.
//!
//! One task runs [`Consumer::run`]. Inside it, reading batch N+1 (on the dedicated reader
//! connection) overlaps handling and acknowledging batch N (`tokio::join!`), and nothing more:
//! at most two batches are in memory whatever the backlog. Reclaim pages and the gauge sampler
//! use the control connection; claim pages are handled without overlap so a slow batch cannot
//! be claimed back by this very consumer while it is being handled.

use std::future::Future;
use std::pin::pin;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fred::prelude::*;
use fred::types::ClientUnblockFlag;
use metrics::{counter, gauge};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::config::ConsumerConfig;
use crate::entry::{Disposition, StreamEntry, entry_id_millis};
use crate::error::{Error, Result};
use crate::health::Health;
use crate::metrics as m;
use crate::ops::{self, RawEntry, Role};

/// What the application does with a batch of entries.
///
/// `handle` returns one [`Disposition`] per entry, in order. A shorter answer is a handler
/// bug: the missing entries are treated as [`Disposition::Retry`] (logged as a warning);
/// extra dispositions are ignored (logged).
///
/// ```
/// use stream_consumer::{BatchHandler, Disposition, StreamEntry};
///
/// struct Printer;
///
/// impl BatchHandler for Printer {
///     async fn handle(&mut self, batch: &[StreamEntry]) -> Vec<Disposition> {
///         batch
///             .iter()
///             .map(|entry| match entry.field_str("payload") {
///                 Some(_) => Disposition::Ack,
///                 None => Disposition::LeavePending { reason: "no payload field".into() },
///             })
///             .collect()
///     }
/// }
/// ```
pub trait BatchHandler: Send {
    /// Handles `batch` (never empty) and says what to do with each entry.
    fn handle(&mut self, batch: &[StreamEntry]) -> impl Future<Output = Vec<Disposition>> + Send;
}

/// A consumer of one stream in one consumer group. See the crate docs for the lifecycle.
///
/// ```no_run
/// use stream_consumer::{BatchHandler, Consumer, ConsumerConfig, Disposition, StreamEntry};
/// use tokio_util::sync::CancellationToken;
///
/// struct AckAll;
/// impl BatchHandler for AckAll {
///     async fn handle(&mut self, batch: &[StreamEntry]) -> Vec<Disposition> {
///         vec![Disposition::Ack; batch.len()]
///     }
/// }
///
/// # async fn demo() -> Result<(), stream_consumer::Error> {
/// let config = ConsumerConfig::new("redis://127.0.0.1:6379", "telemetry:teltonika", "processor", "processor-1");
/// let consumer = Consumer::new(config)?;
/// let health = consumer.health(); // for /readyz
/// let cancel = CancellationToken::new();
/// let task = tokio::spawn(consumer.run(AckAll, cancel.clone()));
/// // ... on SIGTERM:
/// cancel.cancel();
/// task.await.expect("consumer task panicked")?;
/// # let _ = health;
/// # Ok(()) }
/// ```
pub struct Consumer {
    config: ConsumerConfig,
    reader: Client,
    control: Client,
    health: Health,
    /// Set once [`Consumer::connect`] succeeded: `run` then skips connecting.
    connected: bool,
    /// Whether `run` closes the Redis connections as it returns (see
    /// [`Consumer::keep_open_on_stop`]).
    close_on_stop: bool,
}

/// Closes a [`Consumer`]'s Redis connections from outside, for an application that wants
/// to close Redis at a point of its own shutdown sequence (see
/// [`Consumer::keep_open_on_stop`]).
#[derive(Clone, Debug)]
pub struct Closer {
    health: Health,
}

impl Closer {
    /// `QUIT`s both connections (each bounded by 2 s) and marks the consumer's health down.
    /// Harmless on connections that never connected or are already closed.
    pub async fn close(&self) {
        close_clients(&self.health).await;
    }
}

async fn close_clients(health: &Health) {
    health.set(false);
    for c in health.clients() {
        match tokio::time::timeout(Duration::from_secs(2), c.quit()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => debug!(error = %e, "redis quit failed"),
            Err(_) => debug!("redis quit timed out"),
        }
    }
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the config: its URL may hold a password.
        f.debug_struct("Consumer")
            .field("stream", &self.config.stream)
            .field("group", &self.config.group)
            .field("consumer", &self.config.consumer)
            .finish_non_exhaustive()
    }
}

/// Where a batch comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Source {
    /// This consumer's own pending list, entries after `after` (`XREADGROUP … <after>`).
    Pending { after: String },
    /// New entries (`XREADGROUP … >` with `BLOCK`).
    New,
    /// A reclaim page (`XAUTOCLAIM … <cursor>`).
    Claim { cursor: String },
}

/// A batch as read, before handling.
#[derive(Debug)]
struct Batch {
    source: Source,
    /// How many entries the read returned (0 ends a pending-list drain).
    read: usize,
    /// Entries with fields, for the handler.
    entries: Vec<StreamEntry>,
    /// Pending ids whose stream entry is gone: acknowledged with the batch.
    gone: Vec<String>,
    /// The last id read (the next pending-list cursor).
    last_id: Option<String>,
    /// The next `XAUTOCLAIM` cursor.
    next_cursor: Option<String>,
}

/// Which batch to read next.
#[derive(Debug)]
struct Plan {
    /// `Some(after)` while draining the own pending list.
    draining: Option<String>,
    /// `Some(cursor)` while a reclaim pass is under way.
    claiming: Option<String>,
    next_claim: Instant,
    claim_interval: Duration,
}

impl Plan {
    fn new(claim_interval: Duration) -> Self {
        Self {
            draining: Some("0".into()),
            claiming: None,
            // The first pass runs right after the initial drain.
            next_claim: Instant::now(),
            claim_interval,
        }
    }

    fn next_source(&self) -> Source {
        if let Some(after) = &self.draining {
            Source::Pending {
                after: after.clone(),
            }
        } else if let Some(cursor) = &self.claiming {
            Source::Claim {
                cursor: cursor.clone(),
            }
        } else if Instant::now() >= self.next_claim {
            Source::Claim {
                cursor: "0-0".into(),
            }
        } else {
            Source::New
        }
    }

    fn advance(&mut self, batch: &Batch) {
        match &batch.source {
            Source::Pending { .. } => {
                self.draining = match (&batch.last_id, batch.read) {
                    (Some(last), n) if n > 0 => Some(last.clone()),
                    _ => None,
                };
            }
            Source::Claim { .. } => match batch.next_cursor.as_deref() {
                Some(next) if next != "0-0" => self.claiming = Some(next.to_owned()),
                _ => {
                    self.claiming = None;
                    self.next_claim = Instant::now() + self.claim_interval;
                }
            },
            Source::New => {}
        }
    }

    /// After an error: re-read the own pending list first; restart any reclaim pass later.
    fn reset(&mut self) {
        self.draining = Some("0".into());
        self.claiming = None;
    }
}

impl Consumer {
    /// Validates `config` and builds the two Redis clients (the blocking reader and the control
    /// connection). No I/O: [`run`](Self::run) connects, and keeps reconnecting.
    pub fn new(config: ConsumerConfig) -> Result<Self> {
        config.validate()?;
        let reader = ops::build_client(
            &config.redis_url,
            Role::Reader,
            config.backoff_min,
            config.backoff_max,
        )?;
        let control = ops::build_client(
            &config.redis_url,
            Role::Control(config.command_timeout),
            config.backoff_min,
            config.backoff_max,
        )?;
        let health = Health::new(vec![reader.clone(), control.clone()]);
        Ok(Self {
            config,
            reader,
            control,
            health,
            connected: false,
            close_on_stop: true,
        })
    }

    /// Makes [`run`](Self::run) return with its Redis connections still open; close them with
    /// the [`Closer`] from [`closer`](Self::closer) (e.g. after the metrics server stopped, as
    /// the Processor's shutdown order requires).
    #[must_use]
    pub fn keep_open_on_stop(mut self) -> Self {
        self.close_on_stop = false;
        self
    }

    /// A handle that closes this consumer's Redis connections.
    pub fn closer(&self) -> Closer {
        Closer {
            health: self.health.clone(),
        }
    }

    /// Connects both Redis connections and ensures the group (`XGROUP CREATE … 0 MKSTREAM`),
    /// retrying with backoff; `false` if `cancel` fired first. [`health`](Self::health) is up
    /// from then on. Optional: [`run`](Self::run) connects when this was not called; calling
    /// it first lets an application report Redis's state while it prepares the handler.
    pub async fn connect(&mut self, cancel: &CancellationToken) -> bool {
        if self.connected {
            return true;
        }
        let mut backoff = Backoff::new(self.config.backoff_min, self.config.backoff_max);
        self.connected = self.connect_with(&mut backoff, cancel).await;
        self.connected
    }

    /// A handle answering "is Redis reachable for this consumer?" (for `/readyz`). Down until
    /// `run` has connected.
    pub fn health(&self) -> Health {
        self.health.clone()
    }

    /// The configuration this consumer runs with.
    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    /// Runs until `cancel` fires: connects (retrying), ensures the group, drains this
    /// consumer's own pending list, then reads new entries, reclaiming idle entries every
    /// `claim_interval` and sampling the gauges every `gauge_interval`. Redis failures are
    /// retried with backoff (after each, the own pending list is drained again); they are
    /// logged, never returned.
    ///
    /// On cancel it finishes the batches already delivered to it (the one being handled and
    /// at most one read ahead), acknowledges them, issues no further read, and returns.
    pub async fn run<H: BatchHandler>(
        self,
        mut handler: H,
        cancel: CancellationToken,
    ) -> Result<()> {
        let cfg = &self.config;
        let mut backoff = Backoff::new(cfg.backoff_min, cfg.backoff_max);
        if !self.connected && !self.connect_with(&mut backoff, &cancel).await {
            self.close().await;
            return Ok(());
        }
        info!(stream = %cfg.stream, group = %cfg.group, consumer = %cfg.consumer, "stream consumer connected");

        let sampler_stop = CancellationToken::new();
        let sampler = sample_gauges(&self.control, cfg, sampler_stop.clone());
        let main = async {
            self.main_loop(&mut handler, &mut backoff, &cancel).await;
            sampler_stop.cancel();
        };
        tokio::join!(main, sampler);
        self.close().await;
        info!(stream = %cfg.stream, consumer = %cfg.consumer, "stream consumer stopped");
        Ok(())
    }

    /// Closes the connections unless [`Consumer::keep_open_on_stop`] said not to.
    async fn close(&self) {
        if self.close_on_stop {
            close_clients(&self.health).await;
        }
    }

    /// Connects both clients and ensures the group; `false` if cancelled first.
    async fn connect_with(&self, backoff: &mut Backoff, cancel: &CancellationToken) -> bool {
        let cfg = &self.config;
        // Once a client's first connection succeeded, fred's reconnect policy owns it.
        let mut initialized = [false; 2];
        loop {
            if cancel.is_cancelled() {
                return false;
            }
            let attempt = async {
                for (done, c) in initialized.iter_mut().zip([&self.reader, &self.control]) {
                    if !*done {
                        c.init()
                            .await
                            .map_err(crate::error::redis("CONNECT", &cfg.stream))?;
                        *done = true;
                    }
                }
                ops::ensure_group(&self.control, &cfg.stream, &cfg.group, "0").await
            };
            let result = tokio::select! {
                r = attempt => r,
                () = cancel.cancelled() => return false,
            };
            match result {
                Ok(created) => {
                    if created {
                        info!(stream = %cfg.stream, group = %cfg.group, "consumer group created");
                    }
                    self.health.set(true);
                    backoff.reset();
                    return true;
                }
                Err(e) => {
                    self.health.set(false);
                    warn!(error = %e, "redis connect failed, retrying");
                    if !backoff.wait(cancel).await {
                        return false;
                    }
                }
            }
        }
    }

    async fn main_loop<H: BatchHandler>(
        &self,
        handler: &mut H,
        backoff: &mut Backoff,
        cancel: &CancellationToken,
    ) {
        let cfg = &self.config;
        let mut plan = Plan::new(cfg.claim_interval);
        let mut reconnects = self.reader.reconnect_rx();
        let mut ahead: Option<Result<Batch>> = None;
        loop {
            // A reconnect of the reader may have lost a reply whose entries Redis had already
            // moved into our pending list: re-read it (fred.md §4.4).
            let mut reconnected = false;
            while !matches!(
                reconnects.try_recv(),
                Err(tokio::sync::broadcast::error::TryRecvError::Empty
                    | tokio::sync::broadcast::error::TryRecvError::Closed)
            ) {
                reconnected = true;
            }
            if reconnected && plan.draining.is_none() {
                debug!("reader reconnected: draining own pending list");
                plan.reset();
            }

            let fetched = match ahead.take() {
                Some(b) => b,
                None => {
                    if cancel.is_cancelled() {
                        return;
                    }
                    self.fetch_until_cancel(plan.next_source(), cancel).await
                }
            };
            let batch = match fetched {
                Ok(b) => b,
                Err(e) => {
                    if !self.on_error(e, &mut plan, backoff, cancel).await {
                        return;
                    }
                    continue;
                }
            };
            self.health.set(true);
            backoff.reset();
            plan.advance(&batch);
            if batch.entries.is_empty() && batch.gone.is_empty() {
                continue;
            }

            let next = plan.next_source();
            // Read ahead on the reader connection only: new entries, or the next page of a
            // pending-list drain that this batch is part of (a drain starting now would
            // re-read this very batch, still unacknowledged). Never during a reclaim pass,
            // never once stopping.
            let read_ahead = matches!(
                (&next, &batch.source),
                (Source::New, _) | (Source::Pending { .. }, Source::Pending { .. })
            );
            let result = if read_ahead && !cancel.is_cancelled() {
                let (done, read) = tokio::join!(
                    self.process(handler, batch),
                    self.fetch_until_cancel(next, cancel)
                );
                ahead = Some(read);
                done
            } else {
                self.process(handler, batch).await
            };
            if let Err(e) = result {
                // What was not acknowledged is re-read from the pending list; so is a batch
                // read ahead meanwhile.
                ahead = None;
                if !self.on_error(e, &mut plan, backoff, cancel).await {
                    return;
                }
            }
        }
    }

    /// Logs, marks unhealthy, recreates the group on `NOGROUP`, backs off, and schedules a
    /// drain of the own pending list. `false` if cancelled during the backoff.
    async fn on_error(
        &self,
        e: Error,
        plan: &mut Plan,
        backoff: &mut Backoff,
        cancel: &CancellationToken,
    ) -> bool {
        let cfg = &self.config;
        self.health.set(false);
        plan.reset();
        if e.is_no_group() {
            warn!(stream = %cfg.stream, group = %cfg.group, "stream or group vanished (NOGROUP): recreating the group");
            match ops::ensure_group(&self.control, &cfg.stream, &cfg.group, "0").await {
                Ok(_) => {
                    // Nothing to wait for: the group is back.
                    backoff.reset();
                    return !cancel.is_cancelled();
                }
                Err(e) => warn!(error = %e, "recreating the consumer group failed"),
            }
        } else {
            warn!(error = %e, "stream consumer error, retrying after backoff");
        }
        backoff.wait(cancel).await
    }

    /// [`fetch`](Self::fetch), but when `cancel` fires while a blocking read is in flight the
    /// read is woken with `CLIENT UNBLOCK … TIMEOUT` (it returns empty, or with what it already
    /// had), and given up after `BLOCK` + 5 s if Redis is unreachable.
    async fn fetch_until_cancel(
        &self,
        source: Source,
        cancel: &CancellationToken,
    ) -> Result<Batch> {
        let blocking = source == Source::New;
        let mut fut = pin!(self.fetch(source.clone()));
        tokio::select! {
            r = &mut fut => return r,
            () = cancel.cancelled() => {}
        }
        if !blocking {
            return fut.await;
        }
        let deadline = tokio::time::Instant::now() + self.config.block + Duration::from_secs(5);
        loop {
            // Repeated: the read may not have reached Redis when the first unblock did.
            if let Err(e) = self
                .reader
                .unblock_self(Some(ClientUnblockFlag::Timeout))
                .await
            {
                debug!(error = %e, "CLIENT UNBLOCK failed");
            }
            tokio::select! {
                r = &mut fut => return r,
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                // Whatever that read gets stays in our pending list for the next start.
                return Ok(Batch::empty(source));
            }
        }
    }

    /// Reads one batch from `source` and fills in delivery counts.
    async fn fetch(&self, source: Source) -> Result<Batch> {
        let cfg = &self.config;
        match &source {
            Source::New | Source::Pending { .. } => {
                let (id, block) = match &source {
                    Source::Pending { after } => (after.as_str(), None),
                    _ => (">", Some(cfg.block)),
                };
                let read = ops::read_group(
                    &self.reader,
                    &cfg.stream,
                    &cfg.group,
                    &cfg.consumer,
                    cfg.read_count,
                    block,
                    false,
                    id,
                )
                .await;
                let raw = match read {
                    Ok(raw) => raw,
                    Err(e) => {
                        m::read("error");
                        return Err(e);
                    }
                };
                m::read(if raw.is_empty() { "empty" } else { "ok" });
                let mut batch = Batch::from_raw(source.clone(), raw);
                if matches!(source, Source::Pending { .. }) {
                    self.fill_deliveries(&mut batch).await?;
                }
                Ok(batch)
            }
            Source::Claim { cursor } => {
                let (next, raw, deleted) = ops::autoclaim_page(
                    &self.control,
                    &cfg.stream,
                    &cfg.group,
                    &cfg.consumer,
                    cfg.claim_min_idle,
                    cursor,
                    cfg.read_count,
                )
                .await?;
                if !deleted.is_empty() {
                    // Redis already dropped them from the pending list.
                    warn!(count = deleted.len(), first_id = %deleted[0], "pending entries were trimmed before they could be handled");
                    counter!(m::TRIMMED_TOTAL).increment(deleted.len() as u64);
                }
                if !raw.is_empty() {
                    counter!(m::CLAIMED_TOTAL).increment(raw.len() as u64);
                    debug!(count = raw.len(), first_id = %raw[0].0, "claimed idle pending entries");
                }
                let mut batch = Batch::from_raw(source.clone(), raw);
                batch.next_cursor = Some(next);
                self.fill_deliveries(&mut batch).await?;
                Ok(batch)
            }
        }
    }

    /// Sets each entry's delivery count from `XPENDING` (for re-reads and claims).
    async fn fill_deliveries(&self, batch: &mut Batch) -> Result<()> {
        let (Some(first), Some(last)) = (batch.entries.first(), batch.entries.last()) else {
            return Ok(());
        };
        let cfg = &self.config;
        let count = batch.read as u64;
        let mut counts = ops::delivery_counts(
            &self.control,
            &cfg.stream,
            &cfg.group,
            &cfg.consumer,
            &first.id,
            &last.id,
            count,
        )
        .await?;
        for entry in &mut batch.entries {
            if !counts.contains_key(&entry.id) {
                // Other pending entries of ours in the range crowded it out of the reply.
                let one = ops::delivery_counts(
                    &self.control,
                    &cfg.stream,
                    &cfg.group,
                    &cfg.consumer,
                    &entry.id,
                    &entry.id,
                    1,
                )
                .await?;
                counts.extend(one);
            }
            // Absent: no longer pending for us (acknowledged or claimed meanwhile).
            entry.deliveries = counts.get(&entry.id).copied().unwrap_or(1).max(1);
        }
        Ok(())
    }

    /// Hands the batch to the handler, dead-letters what must be, and acknowledges in one
    /// `XACK`.
    async fn process<H: BatchHandler>(&self, handler: &mut H, batch: Batch) -> Result<()> {
        let cfg = &self.config;
        counter!(m::RECORDS_TOTAL).increment(batch.read as u64);
        let mut ack_ids: Vec<String> = Vec::with_capacity(batch.read);
        if !batch.gone.is_empty() {
            warn!(count = batch.gone.len(), first_id = %batch.gone[0], "pending entries deleted from the stream: acknowledging them");
            counter!(m::TRIMMED_TOTAL).increment(batch.gone.len() as u64);
            ack_ids.extend(batch.gone);
        }

        let mut dead: Vec<(&StreamEntry, String)> = Vec::new();
        if !batch.entries.is_empty() {
            let verdicts = handler.handle(&batch.entries).await;
            if verdicts.len() != batch.entries.len() {
                warn!(
                    entries = batch.entries.len(),
                    dispositions = verdicts.len(),
                    first_id = %batch.entries[0].id,
                    "handler returned the wrong number of dispositions; unanswered entries stay pending"
                );
            }
            for (entry, verdict) in batch.entries.iter().zip(verdicts) {
                match verdict {
                    Disposition::Ack => ack_ids.push(entry.id.clone()),
                    Disposition::DeadLetter { error } => dead.push((entry, error)),
                    Disposition::LeavePending { reason } => {
                        if entry.deliveries >= cfg.max_deliveries {
                            dead.push((entry, reason));
                        } else {
                            debug!(entry_id = %entry.id, deliveries = entry.deliveries, reason = %reason, "entry left pending");
                        }
                    }
                    Disposition::Retry => {
                        debug!(entry_id = %entry.id, deliveries = entry.deliveries, "entry not handled, left pending for a retry");
                    }
                }
            }
        }

        // XADD to the dead-letter stream first, XACK after: a crash in between duplicates the
        // dead letter, it never loses the entry.
        let mut failure = None;
        for (entry, error) in dead {
            match ops::dead_letter(
                &self.control,
                &cfg.dead_letter_stream,
                &entry.id,
                &entry.fields,
                &error,
            )
            .await
            {
                Ok(dlq_id) => {
                    warn!(entry_id = %entry.id, deliveries = entry.deliveries, dead_letter_id = %dlq_id, error = %error, "entry moved to the dead-letter stream");
                    counter!(m::DEAD_LETTERED_TOTAL).increment(1);
                    ack_ids.push(entry.id.clone());
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }

        if !ack_ids.is_empty() {
            self.ack_with_retry(ack_ids).await?;
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// `XACK` is idempotent: retry it a few times before giving the batch back to the
    /// pending list (which would mean handling it again).
    async fn ack_with_retry(&self, ids: Vec<String>) -> Result<()> {
        let cfg = &self.config;
        let n = ids.len() as u64;
        let mut backoff = Backoff::new(cfg.backoff_min, cfg.backoff_max);
        let mut attempt = 1;
        loop {
            match ops::ack(&self.control, &cfg.stream, &cfg.group, ids.clone()).await {
                Ok(_) => {
                    counter!(m::ACKS_TOTAL).increment(n);
                    return Ok(());
                }
                Err(e) if attempt < 3 && !e.is_no_group() => {
                    debug!(error = %e, attempt, "XACK failed, retrying");
                    attempt += 1;
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Batch {
    fn empty(source: Source) -> Self {
        Self {
            source,
            read: 0,
            entries: Vec::new(),
            gone: Vec::new(),
            last_id: None,
            next_cursor: None,
        }
    }

    fn from_raw(source: Source, raw: Vec<RawEntry>) -> Self {
        let mut batch = Self::empty(source);
        batch.read = raw.len();
        batch.last_id = raw.last().map(|(id, _)| id.clone());
        batch.entries.reserve(raw.len());
        for (id, fields) in raw {
            if fields.is_empty() {
                batch.gone.push(id);
            } else {
                batch.entries.push(StreamEntry {
                    id,
                    fields,
                    deliveries: 1,
                });
            }
        }
        batch
    }
}

/// Samples lag, pending and oldest-pending age every `gauge_interval` until `stop`.
async fn sample_gauges(control: &Client, cfg: &ConsumerConfig, stop: CancellationToken) {
    loop {
        match ops::group_stats(control, &cfg.stream, &cfg.group).await {
            Ok(Some(stats)) => {
                match stats.lag {
                    Some(lag) => {
                        gauge!(m::LAG).set(lag as f64);
                        gauge!(m::LAG_UNKNOWN).set(0.0);
                    }
                    None => gauge!(m::LAG_UNKNOWN).set(1.0),
                }
                gauge!(m::PENDING).set(stats.pending as f64);
                let age = stats
                    .oldest_pending_id
                    .as_deref()
                    .and_then(entry_id_millis)
                    .map_or(0.0, |ms| {
                        let now_ms = SystemTime::now()
                            .duration_since(UNIX_EPOCH)
                            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
                        now_ms.saturating_sub(ms) as f64 / 1000.0
                    });
                gauge!(m::OLDEST_PENDING_AGE).set(age);
            }
            Ok(None) => {
                debug!(stream = %cfg.stream, group = %cfg.group, "group not found while sampling gauges")
            }
            Err(e) => debug!(error = %e, "sampling consumer gauges failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(cfg.gauge_interval) => {}
            () = stop.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn raw(id: &str, fields: &[(&'static str, &'static str)]) -> RawEntry {
        (
            id.to_owned(),
            fields
                .iter()
                .map(|(k, v)| {
                    (
                        Bytes::from_static(k.as_bytes()),
                        Bytes::from_static(v.as_bytes()),
                    )
                })
                .collect(),
        )
    }

    #[test]
    fn batch_separates_deleted_entries() {
        let b = Batch::from_raw(
            Source::New,
            vec![
                raw("1-0", &[("a", "1")]),
                raw("2-0", &[]),
                raw("3-0", &[("b", "2")]),
            ],
        );
        assert_eq!(b.read, 3);
        assert_eq!(b.gone, vec!["2-0".to_owned()]);
        assert_eq!(b.entries.len(), 2);
        assert_eq!(b.last_id.as_deref(), Some("3-0"));
    }

    #[test]
    fn plan_drains_then_claims_then_reads_new() {
        let mut p = Plan::new(Duration::from_secs(60));
        assert_eq!(p.next_source(), Source::Pending { after: "0".into() });
        p.advance(&Batch::from_raw(
            Source::Pending { after: "0".into() },
            vec![raw("5-0", &[("a", "1")])],
        ));
        assert_eq!(
            p.next_source(),
            Source::Pending {
                after: "5-0".into()
            }
        );
        p.advance(&Batch::empty(Source::Pending {
            after: "5-0".into(),
        }));
        assert_eq!(
            p.next_source(),
            Source::Claim {
                cursor: "0-0".into()
            }
        );
        let mut page = Batch::empty(Source::Claim {
            cursor: "0-0".into(),
        });
        page.next_cursor = Some("9-0".into());
        p.advance(&page);
        assert_eq!(
            p.next_source(),
            Source::Claim {
                cursor: "9-0".into()
            }
        );
        page.next_cursor = Some("0-0".into());
        p.advance(&page);
        assert_eq!(p.next_source(), Source::New);
        p.reset();
        assert_eq!(p.next_source(), Source::Pending { after: "0".into() });
    }
}
