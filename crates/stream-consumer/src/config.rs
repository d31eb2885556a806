//! Configuration of the group consumer and the tail reader.
//!
//! Plain structs with public fields and defaults that match `operations.md`; this crate never
//! reads the environment (only `bins/processor` does). [`ConsumerConfig::validate`] checks the
//! bounds that matter for correctness, not the operator-facing bounds of the processor's config
//! (tests use a claim idle time below one second, for instance).

use std::time::Duration;

use crate::Error;

/// Settings of a [`Consumer`](crate::Consumer) on one stream and one consumer group.
///
/// ```
/// use std::time::Duration;
/// use stream_consumer::ConsumerConfig;
///
/// let mut config = ConsumerConfig::new(
///     "redis://127.0.0.1:6379",
///     "telemetry:teltonika",
///     "processor",
///     "processor-1",
/// );
/// config.claim_min_idle = Duration::from_secs(30);
/// assert_eq!(config.dead_letter_stream, "telemetry:teltonika:dead");
/// config.validate().unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// `redis://` or `rediss://` URL (may carry credentials; never logged by this crate).
    pub redis_url: String,
    /// The stream key (`REDIS_TELEMETRY_STREAM`).
    pub stream: String,
    /// The consumer group (`REDIS_CONSUMER_GROUP`), created at `0` with `MKSTREAM`.
    pub group: String,
    /// This consumer's name inside the group (`REDIS_CONSUMER_NAME`). Keep it stable across
    /// restarts: a new name orphans the old name's pending entries until they are reclaimed.
    pub consumer: String,
    /// Entries per read and per claim page (`REDIS_READ_COUNT`).
    pub read_count: u64,
    /// Server-side `BLOCK` of a read for new entries (`REDIS_READ_BLOCK_MS`).
    pub block: Duration,
    /// Entries pending longer than this are taken over by `XAUTOCLAIM`
    /// (`REDIS_CLAIM_MIN_IDLE_MS`). This includes entries this consumer left pending itself:
    /// reclaiming is how a left-pending entry gets its next delivery.
    pub claim_min_idle: Duration,
    /// How often the reclaimer scans the pending list. Default: half of
    /// [`claim_min_idle`](Self::claim_min_idle), between 100 ms and 30 s.
    pub claim_interval: Duration,
    /// Deliveries after which an entry the handler answers
    /// [`LeavePending`](crate::Disposition::LeavePending) is dead-lettered
    /// (`REDIS_MAX_DELIVERIES`). [`Retry`](crate::Disposition::Retry) answers never are.
    pub max_deliveries: u64,
    /// The dead-letter stream (`REDIS_DEAD_LETTER_STREAM`, default `<stream>:dead`).
    pub dead_letter_stream: String,
    /// How often the lag / pending / oldest-age gauges are sampled (10 s per `operations.md`).
    pub gauge_interval: Duration,
    /// Timeout of each control command (XACK, XADD, XAUTOCLAIM, XPENDING, XINFO). Never applied
    /// to the blocking read, whose connection has no client-side timeout.
    pub command_timeout: Duration,
    /// First delay of the reconnect and error backoff (capped, jittered, doubling).
    pub backoff_min: Duration,
    /// Cap of the reconnect and error backoff.
    pub backoff_max: Duration,
}

impl ConsumerConfig {
    /// A configuration with the defaults of `operations.md` for everything but the four names.
    pub fn new(
        redis_url: impl Into<String>,
        stream: impl Into<String>,
        group: impl Into<String>,
        consumer: impl Into<String>,
    ) -> Self {
        let stream = stream.into();
        let claim_min_idle = Duration::from_millis(60_000);
        Self {
            redis_url: redis_url.into(),
            dead_letter_stream: format!("{stream}:dead"),
            stream,
            group: group.into(),
            consumer: consumer.into(),
            read_count: 500,
            block: Duration::from_millis(2_000),
            claim_interval: default_claim_interval(claim_min_idle),
            claim_min_idle,
            max_deliveries: 5,
            gauge_interval: Duration::from_secs(10),
            command_timeout: Duration::from_secs(10),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
        }
    }

    /// Sets [`claim_min_idle`](Self::claim_min_idle) and derives
    /// [`claim_interval`](Self::claim_interval) from it (half, between 100 ms and 30 s).
    #[must_use]
    pub fn with_claim_min_idle(mut self, min_idle: Duration) -> Self {
        self.claim_min_idle = min_idle;
        self.claim_interval = default_claim_interval(min_idle);
        self
    }

    /// Checks the values this crate relies on; the error names the field.
    pub fn validate(&self) -> Result<(), Error> {
        validate_reader(ReaderSettings {
            stream: &self.stream,
            group: &self.group,
            consumer: &self.consumer,
            read_count: self.read_count,
            block: self.block,
            command_timeout: self.command_timeout,
            backoff_min: self.backoff_min,
            backoff_max: self.backoff_max,
        })?;
        if self.dead_letter_stream.is_empty() {
            return invalid("dead_letter_stream", "must not be empty");
        }
        if self.dead_letter_stream == self.stream {
            return invalid("dead_letter_stream", "must differ from the stream");
        }
        if self.claim_min_idle.is_zero() {
            return invalid("claim_min_idle", "must be at least 1 ms");
        }
        if self.claim_interval.is_zero() {
            return invalid("claim_interval", "must be at least 1 ms");
        }
        if self.max_deliveries == 0 {
            return invalid("max_deliveries", "must be at least 1");
        }
        if self.gauge_interval.is_zero() {
            return invalid("gauge_interval", "must be at least 1 ms");
        }
        Ok(())
    }
}

/// The settings both readers (group consumer and tail reader) share, borrowed for
/// [`validate_reader`].
struct ReaderSettings<'a> {
    stream: &'a str,
    group: &'a str,
    consumer: &'a str,
    read_count: u64,
    block: Duration,
    command_timeout: Duration,
    backoff_min: Duration,
    backoff_max: Duration,
}

/// The checks [`ConsumerConfig::validate`] and [`TailConfig::validate`] share.
fn validate_reader(s: ReaderSettings<'_>) -> Result<(), Error> {
    if s.stream.is_empty() {
        return invalid("stream", "must not be empty");
    }
    if s.group.is_empty() {
        return invalid("group", "must not be empty");
    }
    if s.consumer.is_empty() {
        return invalid("consumer", "must not be empty");
    }
    if !(1..=100_000).contains(&s.read_count) {
        return invalid("read_count", "must be 1..=100000");
    }
    if s.block.is_zero() {
        // BLOCK 0 means "forever" to Redis: a stop could then only end by unblocking.
        return invalid("block", "must be at least 1 ms");
    }
    if s.command_timeout.is_zero() {
        return invalid("command_timeout", "must be at least 1 ms");
    }
    if s.backoff_min.is_zero() || s.backoff_max < s.backoff_min {
        return invalid("backoff_min", "must be > 0 and <= backoff_max");
    }
    Ok(())
}

fn invalid(field: &'static str, reason: &str) -> Result<(), Error> {
    Err(Error::Config {
        field,
        reason: reason.to_owned(),
    })
}

fn default_claim_interval(min_idle: Duration) -> Duration {
    (min_idle / 2).clamp(Duration::from_millis(100), Duration::from_secs(30))
}

/// Settings of a [`TailReader`](crate::TailReader) (the live path).
///
/// ```
/// use stream_consumer::TailConfig;
///
/// let config = TailConfig::new("redis://127.0.0.1:6379", "telemetry:teltonika", "processor-1");
/// assert_eq!(config.group, "live-broadcast-processor-1");
/// ```
#[derive(Clone, Debug)]
pub struct TailConfig {
    /// `redis://` or `rediss://` URL (never logged by this crate).
    pub redis_url: String,
    /// The stream key.
    pub stream: String,
    /// The instance's own group, `live-broadcast-{INSTANCE_ID}`.
    pub group: String,
    /// The consumer name inside that group (the instance id).
    pub consumer: String,
    /// Entries per read.
    pub read_count: u64,
    /// Server-side `BLOCK` of each read.
    pub block: Duration,
    /// Timeout of the group-management commands (never applied to the blocking read).
    pub command_timeout: Duration,
    /// First delay of the reconnect and error backoff.
    pub backoff_min: Duration,
    /// Cap of the reconnect and error backoff.
    pub backoff_max: Duration,
}

impl TailConfig {
    /// Defaults for instance `instance_id`: group `live-broadcast-{instance_id}`, consumer
    /// `instance_id`, COUNT 500, BLOCK 2 s.
    pub fn new(
        redis_url: impl Into<String>,
        stream: impl Into<String>,
        instance_id: impl Into<String>,
    ) -> Self {
        let instance_id = instance_id.into();
        Self {
            redis_url: redis_url.into(),
            stream: stream.into(),
            group: format!("live-broadcast-{instance_id}"),
            consumer: instance_id,
            read_count: 500,
            block: Duration::from_millis(2_000),
            command_timeout: Duration::from_secs(10),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
        }
    }

    /// Checks the values this crate relies on; the error names the field.
    pub fn validate(&self) -> Result<(), Error> {
        validate_reader(ReaderSettings {
            stream: &self.stream,
            group: &self.group,
            consumer: &self.consumer,
            read_count: self.read_count,
            block: self.block,
            command_timeout: self.command_timeout,
            backoff_min: self.backoff_min,
            backoff_max: self.backoff_max,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_operations_md() {
        let c = ConsumerConfig::new("redis://x", "s", "g", "c");
        assert_eq!(c.read_count, 500);
        assert_eq!(c.block, Duration::from_millis(2000));
        assert_eq!(c.claim_min_idle, Duration::from_millis(60_000));
        assert_eq!(c.claim_interval, Duration::from_secs(30));
        assert_eq!(c.max_deliveries, 5);
        assert_eq!(c.dead_letter_stream, "s:dead");
        assert_eq!(c.gauge_interval, Duration::from_secs(10));
        c.validate().unwrap();
    }

    #[test]
    fn claim_interval_follows_min_idle() {
        let c = ConsumerConfig::new("redis://x", "s", "g", "c")
            .with_claim_min_idle(Duration::from_millis(50));
        assert_eq!(c.claim_interval, Duration::from_millis(100));
        let c = c.with_claim_min_idle(Duration::from_secs(4));
        assert_eq!(c.claim_interval, Duration::from_secs(2));
    }

    #[test]
    fn validate_names_the_field() {
        let mut c = ConsumerConfig::new("redis://x", "s", "g", "c");
        c.dead_letter_stream = "s".into();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("dead_letter_stream"), "{e}");
        let mut c = ConsumerConfig::new("redis://x", "s", "g", "c");
        c.read_count = 0;
        assert!(c.validate().unwrap_err().to_string().contains("read_count"));
        let mut c = ConsumerConfig::new("redis://x", "s", "g", "c");
        c.max_deliveries = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("max_deliveries")
        );
        let mut t = TailConfig::new("redis://x", "s", "i");
        t.block = Duration::ZERO;
        assert!(t.validate().unwrap_err().to_string().contains("block"));
    }
}
