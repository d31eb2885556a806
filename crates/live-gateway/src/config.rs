//! [`LiveConfig`]: every knob of the live path, as typed values.
//!
//! The environment is read by `bins/processor` only; this struct is what it hands over. Tests
//! build it directly and may use values below the environment's bounds (short intervals).

use std::time::Duration;

/// Inbound message rate limit: a token bucket per connection.
///
/// Every data frame (text, binary, continuation) and every ping the client sends takes one
/// token. The bucket holds `burst` tokens and gains one every `refill_every`. The first
/// message that finds the bucket empty is answered `rate-limited`; every further message while
/// it is still empty is answered `rate-limited` too, and the `strikes`-th consecutive one closes
/// the connection with 1008 (policy). A message that finds a token resets the strike count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Tokens the bucket holds (the burst a client may send at once).
    pub burst: u32,
    /// One token is added every this long (the sustained rate).
    pub refill_every: Duration,
    /// Consecutive over-limit messages that close the connection with 1008.
    pub strikes: u32,
}

impl Default for RateLimit {
    /// 20 messages per 10 s sustained (one token every 500 ms), bursts of 20, closed on the
    /// 5th consecutive over-limit message.
    fn default() -> Self {
        Self {
            burst: 20,
            refill_every: Duration::from_millis(500),
            strikes: 5,
        }
    }
}

/// The default [`LiveConfig::coalesce_window`] (measured in docs/performance.md).
pub const DEFAULT_COALESCE_WINDOW: Duration = Duration::from_millis(20);

/// Configuration of the live gateway (docs/operations.md, the `LIVE_*` variables).
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// `LIVE_WS_PATH`: the only path that upgrades (default `/ws`).
    pub ws_path: String,
    /// `LIVE_ALLOWED_ORIGINS`: exact `scheme://host[:port]` origins; empty = same origin only.
    pub allowed_origins: Vec<String>,
    /// `LIVE_MAX_CONNECTIONS`: open connections beyond this are refused with 503.
    pub max_connections: usize,
    /// `LIVE_MAX_SUBSCRIPTIONS`: topics per connection.
    pub max_subscriptions: usize,
    /// `LIVE_MAX_QUEUED_POSITIONS`: positions queued per connection before the oldest drop.
    pub max_queued_positions: usize,
    /// `LIVE_SLOW_CLIENT_TIMEOUT_MS`: a socket that accepts nothing this long is closed with
    /// 1008, which the client sees if it reads again within `close_handshake_timeout` (else the
    /// socket is dropped then).
    pub slow_client_timeout: Duration,
    /// `LIVE_PING_INTERVAL_MS`: WebSocket ping (and `keepalive` when idle) interval.
    pub ping_interval: Duration,
    /// `LIVE_REVALIDATE_MS`: session re-validation interval; `None` disables it.
    pub revalidate_interval: Option<Duration>,
    /// `LIVE_DEVICE_EVENT_REFRESH_MS`: device→event map refresh interval.
    pub device_event_refresh: Duration,
    /// `SHUTDOWN_TIMEOUT_MS`: how long the close-1001 drain may take.
    pub shutdown_timeout: Duration,
    /// How long a client may take to send its HTTP request headers.
    pub header_read_timeout: Duration,
    /// How long to wait for the peer's Close after sending ours before dropping the socket.
    pub close_handshake_timeout: Duration,
    /// Bound on the snapshot query (a timed-out query fails open with an empty snapshot).
    pub snapshot_timeout: Duration,
    /// Frame size limit of the reader: a frame of this many payload bytes or more is closed
    /// with 1009. Messages over 4 KiB but below this are answered `invalid-message` and the
    /// connection is kept.
    pub max_frame_bytes: usize,
    /// Inbound message rate limit.
    pub rate_limit: RateLimit,
    /// Write coalescing: positions fanned out within this window of the previous flush wait
    /// for the window's end, so that several leave in one socket write (one system call and one
    /// client wake-up for several frames). A position arriving after a quiet period goes out at
    /// once; under load each position waits at most this long. `Duration::ZERO` writes every
    /// record as soon as it is fanned out. `LIVE_COALESCE_WINDOW_MS` (a project addition to the
    /// shared contract, docs/operations.md; figures in docs/performance.md).
    pub coalesce_window: Duration,
}

impl Default for LiveConfig {
    /// The documented defaults (docs/operations.md).
    fn default() -> Self {
        Self {
            ws_path: "/ws".to_owned(),
            allowed_origins: Vec::new(),
            max_connections: 20_000,
            max_subscriptions: 32,
            max_queued_positions: 1024,
            slow_client_timeout: Duration::from_secs(30),
            ping_interval: Duration::from_secs(30),
            revalidate_interval: Some(Duration::from_secs(300)),
            device_event_refresh: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            close_handshake_timeout: Duration::from_secs(5),
            snapshot_timeout: Duration::from_secs(5),
            max_frame_bytes: 64 * 1024,
            rate_limit: RateLimit::default(),
            coalesce_window: DEFAULT_COALESCE_WINDOW,
        }
    }
}
