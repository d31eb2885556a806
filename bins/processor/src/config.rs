//! The Processor's configuration: every environment variable of `docs/operations.md`, parsed
//! and validated together.
//!
//! This is the only place in the workspace that reads the environment. Variables are read
//! through [`Lookup`] so tests pass a map (`Config::from_lookup(|name| map.get(name))`) and
//! never mutate the process environment. A `.env` file in the working directory is read too,
//! below the real environment (a variable set in both keeps its real value).
//!
//! Validation collects **every** problem before failing: [`ConfigError`] lists each bad
//! variable with its (redacted) value, the expected form and the bound. Secrets — passwords in
//! `REDIS_URL` / `DATABASE_URL` — never appear in a message ([`SecretUrl`]).

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

/// Names of every variable the Processor reads (the contract of `docs/operations.md`).
pub mod vars {
    #![allow(missing_docs, reason = "each constant is the variable it names")]
    pub const INSTANCE_ID: &str = "INSTANCE_ID";
    pub const LOG_LEVEL: &str = "LOG_LEVEL";
    pub const LOG_FORMAT: &str = "LOG_FORMAT";
    pub const REDIS_URL: &str = "REDIS_URL";
    pub const REDIS_TELEMETRY_STREAM: &str = "REDIS_TELEMETRY_STREAM";
    pub const REDIS_CONSUMER_GROUP: &str = "REDIS_CONSUMER_GROUP";
    pub const REDIS_CONSUMER_NAME: &str = "REDIS_CONSUMER_NAME";
    pub const REDIS_READ_COUNT: &str = "REDIS_READ_COUNT";
    pub const REDIS_READ_BLOCK_MS: &str = "REDIS_READ_BLOCK_MS";
    pub const REDIS_CLAIM_MIN_IDLE_MS: &str = "REDIS_CLAIM_MIN_IDLE_MS";
    pub const REDIS_MAX_DELIVERIES: &str = "REDIS_MAX_DELIVERIES";
    pub const REDIS_DEAD_LETTER_STREAM: &str = "REDIS_DEAD_LETTER_STREAM";
    pub const DATABASE_URL: &str = "DATABASE_URL";
    pub const DATABASE_POOL_SIZE: &str = "DATABASE_POOL_SIZE";
    pub const WRITE_BATCH_SIZE: &str = "WRITE_BATCH_SIZE";
    pub const DEVICE_STATE_MAX: &str = "DEVICE_STATE_MAX";
    pub const METRICS_HOST: &str = "METRICS_HOST";
    pub const METRICS_PORT: &str = "METRICS_PORT";
    pub const LIVE_ENABLED: &str = "LIVE_ENABLED";
    pub const LIVE_WS_HOST: &str = "LIVE_WS_HOST";
    pub const LIVE_WS_PORT: &str = "LIVE_WS_PORT";
    pub const LIVE_WS_PATH: &str = "LIVE_WS_PATH";
    pub const LIVE_ALLOWED_ORIGINS: &str = "LIVE_ALLOWED_ORIGINS";
    pub const LIVE_MAX_CONNECTIONS: &str = "LIVE_MAX_CONNECTIONS";
    pub const LIVE_MAX_SUBSCRIPTIONS: &str = "LIVE_MAX_SUBSCRIPTIONS";
    pub const LIVE_MAX_QUEUED_POSITIONS: &str = "LIVE_MAX_QUEUED_POSITIONS";
    pub const LIVE_SLOW_CLIENT_TIMEOUT_MS: &str = "LIVE_SLOW_CLIENT_TIMEOUT_MS";
    pub const LIVE_PING_INTERVAL_MS: &str = "LIVE_PING_INTERVAL_MS";
    pub const LIVE_REVALIDATE_MS: &str = "LIVE_REVALIDATE_MS";
    pub const LIVE_DEVICE_EVENT_REFRESH_MS: &str = "LIVE_DEVICE_EVENT_REFRESH_MS";
    pub const LIVE_COALESCE_WINDOW_MS: &str = "LIVE_COALESCE_WINDOW_MS";
    pub const DIRECTUS_URL: &str = "DIRECTUS_URL";
    pub const DIRECTUS_TIMEOUT_MS: &str = "DIRECTUS_TIMEOUT_MS";
    pub const DIRECTUS_CACHE_TTL_MS: &str = "DIRECTUS_CACHE_TTL_MS";
    pub const SHUTDOWN_TIMEOUT_MS: &str = "SHUTDOWN_TIMEOUT_MS";

    /// Every variable, in the order of the table in `docs/operations.md`.
    pub const ALL: &[&str] = &[
        INSTANCE_ID,
        LOG_LEVEL,
        LOG_FORMAT,
        REDIS_URL,
        REDIS_TELEMETRY_STREAM,
        REDIS_CONSUMER_GROUP,
        REDIS_CONSUMER_NAME,
        REDIS_READ_COUNT,
        REDIS_READ_BLOCK_MS,
        REDIS_CLAIM_MIN_IDLE_MS,
        REDIS_MAX_DELIVERIES,
        REDIS_DEAD_LETTER_STREAM,
        DATABASE_URL,
        DATABASE_POOL_SIZE,
        WRITE_BATCH_SIZE,
        DEVICE_STATE_MAX,
        METRICS_HOST,
        METRICS_PORT,
        LIVE_ENABLED,
        LIVE_WS_HOST,
        LIVE_WS_PORT,
        LIVE_WS_PATH,
        LIVE_ALLOWED_ORIGINS,
        LIVE_MAX_CONNECTIONS,
        LIVE_MAX_SUBSCRIPTIONS,
        LIVE_MAX_QUEUED_POSITIONS,
        LIVE_SLOW_CLIENT_TIMEOUT_MS,
        LIVE_PING_INTERVAL_MS,
        LIVE_REVALIDATE_MS,
        LIVE_DEVICE_EVENT_REFRESH_MS,
        LIVE_COALESCE_WINDOW_MS,
        DIRECTUS_URL,
        DIRECTUS_TIMEOUT_MS,
        DIRECTUS_CACHE_TTL_MS,
        SHUTDOWN_TIMEOUT_MS,
    ];
}

/// Where configuration values come from: a variable name in, its value (if set) out.
///
/// Implemented for every `Fn(&str) -> Option<S>` with `S: AsRef<str>`, so a test passes a
/// closure over a map and `main` passes the process environment (see [`Config::from_env`]).
pub trait Lookup {
    /// The value of `name`, or `None` when it is not set.
    fn lookup(&self, name: &str) -> Option<String>;
}

impl<F, S> Lookup for F
where
    F: Fn(&str) -> Option<S>,
    S: AsRef<str>,
{
    fn lookup(&self, name: &str) -> Option<String> {
        self(name).map(|value| value.as_ref().to_owned())
    }
}

/// The complete, validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `INSTANCE_ID`: names this instance (consumer name, live group).
    pub instance_id: String,
    /// `LOG_LEVEL`, `LOG_FORMAT`.
    pub log: LogConfig,
    /// The durable path's Redis side.
    pub redis: RedisConfig,
    /// The durable path's PostgreSQL side.
    pub database: DatabaseConfig,
    /// `METRICS_HOST:METRICS_PORT`, where `/metrics`, `/healthz`, `/readyz` are served.
    pub metrics_addr: SocketAddr,
    /// The live path (WebSocket server); consumed by `live-gateway`.
    pub live: LiveConfig,
    /// Directus, asked by the live path who a user is and what they may see.
    pub directus: DirectusConfig,
    /// `SHUTDOWN_TIMEOUT_MS`: the bound on the whole shutdown sequence.
    pub shutdown_timeout: Duration,
}

/// Logging configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `LOG_LEVEL`: a `tracing_subscriber::EnvFilter` directive, already checked to parse.
    pub level: String,
    /// `LOG_FORMAT`.
    pub format: LogFormat,
}

/// `LOG_FORMAT`: one JSON object per line, or human-readable lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `json` (the default): one JSON object per line.
    Json,
    /// `pretty`: human-readable.
    Pretty,
}

/// The durable path's Redis settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `REDIS_URL` (its password is redacted whenever it is displayed).
    pub url: SecretUrl,
    /// `REDIS_TELEMETRY_STREAM`.
    pub stream: String,
    /// `REDIS_CONSUMER_GROUP`.
    pub group: String,
    /// `REDIS_CONSUMER_NAME` (defaults to `INSTANCE_ID`).
    pub consumer_name: String,
    /// `REDIS_READ_COUNT`: entries per read.
    pub read_count: u32,
    /// `REDIS_READ_BLOCK_MS`.
    pub read_block: Duration,
    /// `REDIS_CLAIM_MIN_IDLE_MS`.
    pub claim_min_idle: Duration,
    /// `REDIS_MAX_DELIVERIES`: deliveries before an entry is dead-lettered.
    pub max_deliveries: u32,
    /// `REDIS_DEAD_LETTER_STREAM` (defaults to `<stream>:dead`).
    pub dead_letter_stream: String,
}

/// The durable path's PostgreSQL settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseConfig {
    /// `DATABASE_URL` (its password is redacted whenever it is displayed).
    pub url: SecretUrl,
    /// `DATABASE_POOL_SIZE`.
    pub pool_size: u32,
    /// `WRITE_BATCH_SIZE`: rows per statement.
    pub write_batch_size: u32,
    /// `DEVICE_STATE_MAX`: devices kept in the LRU.
    pub device_state_max: u32,
}

/// The live path's settings (typed here, consumed by `live-gateway`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveConfig {
    /// `LIVE_ENABLED`: `false` runs the durable path alone.
    pub enabled: bool,
    /// `LIVE_WS_HOST:LIVE_WS_PORT` (port 0: any free port, logged once bound).
    pub addr: SocketAddr,
    /// `LIVE_WS_PATH`: the WebSocket upgrade path, starts with `/`.
    pub path: String,
    /// `LIVE_ALLOWED_ORIGINS`: allowed `Origin`s; empty means same origin only.
    pub allowed_origins: Vec<String>,
    /// `LIVE_MAX_CONNECTIONS`.
    pub max_connections: u32,
    /// `LIVE_MAX_SUBSCRIPTIONS` (per connection).
    pub max_subscriptions: u32,
    /// `LIVE_MAX_QUEUED_POSITIONS` (per connection).
    pub max_queued_positions: u32,
    /// `LIVE_SLOW_CLIENT_TIMEOUT_MS`.
    pub slow_client_timeout: Duration,
    /// `LIVE_PING_INTERVAL_MS`.
    pub ping_interval: Duration,
    /// `LIVE_REVALIDATE_MS`: `None` when 0 (revalidation disabled).
    pub revalidate: Option<Duration>,
    /// `LIVE_DEVICE_EVENT_REFRESH_MS`.
    pub device_event_refresh: Duration,
    /// `LIVE_COALESCE_WINDOW_MS`: longest a position waits so that positions close together
    /// leave in one socket write (an addition to the shared contract; docs/performance.md).
    pub coalesce_window: Duration,
}

/// How the live path reaches Directus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectusConfig {
    /// `DIRECTUS_URL` (http or https, no trailing slash).
    pub url: String,
    /// `DIRECTUS_TIMEOUT_MS`: per request.
    pub timeout: Duration,
    /// `DIRECTUS_CACHE_TTL_MS`: 0 disables the cache.
    pub cache_ttl: Duration,
}

/// A URL that may carry a password: [`fmt::Display`] and [`fmt::Debug`] redact it, only
/// [`SecretUrl::expose`] gives the real string (to hand to a client library).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL with its password: pass it to a client, never to a log or a message.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretUrl({:?})", redact_url(&self.0))
    }
}

/// Replaces the password of a URL's user-info (`scheme://user:password@host`) and any
/// `password=` query parameter with `***`. Works on malformed URLs too (it is used on
/// invalid values in error messages).
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(at) => url.split_at(at + 3),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let (userinfo, host) = authority.split_at(at);
            match userinfo.find(':') {
                Some(colon) => format!("{}:***{host}", &userinfo[..colon]),
                None => authority.to_owned(),
            }
        }
        None => authority.to_owned(),
    };
    let tail = match tail.find('?') {
        Some(q) => {
            let (path, query) = tail.split_at(q + 1);
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        format!("{key}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}{authority}{tail}")
}

/// One invalid variable: its name, its (redacted) value and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The variable's name.
    pub name: &'static str,
    /// Its value as found (passwords redacted).
    pub value: String,
    /// The expected form and bound, e.g. `an integer in 1..=10000 (entries per read)`.
    pub expected: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}={:?}: expected {}",
            self.name, self.value, self.expected
        )
    }
}

/// The configuration is invalid: every problem found, in the order of the variable table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// One or more variables are invalid.
    #[error("invalid configuration ({} problem(s)):\n{}", .0.len(), render(.0))]
    Invalid(Vec<Problem>),
    /// The `.env` file exists but could not be read.
    #[error("cannot read .env in the working directory: {0}")]
    DotEnv(String),
}

fn render(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Config {
    /// Reads the process environment, falling back to a `.env` file in the working directory
    /// for variables the environment does not set.
    pub fn from_env() -> Result<Self, ConfigError> {
        let dotenv = read_dotenv(".env")?;
        Self::from_lookup(|name: &str| {
            std::env::var_os(name)
                .map(|value| value.to_string_lossy().into_owned())
                .or_else(|| dotenv.get(name).cloned())
        })
    }

    /// Reads and validates every variable through `lookup`; reports every problem at once.
    pub fn from_lookup(lookup: impl Lookup) -> Result<Self, ConfigError> {
        let mut r = Reader {
            lookup: &lookup,
            problems: Vec::new(),
        };

        let instance_id = r.ident(vars::INSTANCE_ID, "processor-1");
        let log = LogConfig {
            level: r.filter(vars::LOG_LEVEL, "info"),
            format: r.log_format(vars::LOG_FORMAT),
        };

        let redis_url = r.url(
            vars::REDIS_URL,
            "redis://127.0.0.1:6379",
            &["redis", "rediss"],
        );
        let stream = r.non_empty(vars::REDIS_TELEMETRY_STREAM, "telemetry:teltonika");
        let group = r.non_empty(vars::REDIS_CONSUMER_GROUP, "processor");
        let consumer_name = r.non_empty(vars::REDIS_CONSUMER_NAME, &instance_id);
        let read_count = r.int(vars::REDIS_READ_COUNT, 500, 1, 10_000, "entries per read");
        let read_block = r.millis(vars::REDIS_READ_BLOCK_MS, 2000, 1, 60_000);
        let claim_min_idle = r.millis(vars::REDIS_CLAIM_MIN_IDLE_MS, 60_000, 1000, 3_600_000);
        let max_deliveries = r.int(vars::REDIS_MAX_DELIVERIES, 5, 1, 1000, "deliveries");
        let dead_letter_stream =
            r.non_empty(vars::REDIS_DEAD_LETTER_STREAM, &format!("{stream}:dead"));

        let database_url = r.url(
            vars::DATABASE_URL,
            "postgres://postgres@127.0.0.1:5432/processor",
            &["postgres", "postgresql"],
        );
        let pool_size = r.int(vars::DATABASE_POOL_SIZE, 8, 1, 256, "connections");
        let write_batch_size = r.int(vars::WRITE_BATCH_SIZE, 500, 1, 10_000, "rows per statement");
        let device_state_max = r.int(vars::DEVICE_STATE_MAX, 10_000, 1, 10_000_000, "devices");

        let metrics_host = r.host(vars::METRICS_HOST);
        let metrics_port = r.port(vars::METRICS_PORT, 9090);

        let live = LiveConfig {
            enabled: r.bool(vars::LIVE_ENABLED, true),
            addr: SocketAddr::new(r.host(vars::LIVE_WS_HOST), r.port(vars::LIVE_WS_PORT, 8081)),
            path: r.path(vars::LIVE_WS_PATH, "/ws"),
            allowed_origins: r.origins(vars::LIVE_ALLOWED_ORIGINS),
            max_connections: r.int(
                vars::LIVE_MAX_CONNECTIONS,
                20_000,
                1,
                1_000_000,
                "connections",
            ),
            max_subscriptions: r.int(
                vars::LIVE_MAX_SUBSCRIPTIONS,
                32,
                1,
                1024,
                "subscriptions per connection",
            ),
            max_queued_positions: r.int(
                vars::LIVE_MAX_QUEUED_POSITIONS,
                1024,
                1,
                1_000_000,
                "positions per connection",
            ),
            slow_client_timeout: r.millis(vars::LIVE_SLOW_CLIENT_TIMEOUT_MS, 30_000, 1000, 600_000),
            ping_interval: r.millis(vars::LIVE_PING_INTERVAL_MS, 30_000, 1000, 600_000),
            revalidate: r.revalidate(vars::LIVE_REVALIDATE_MS),
            device_event_refresh: r.millis(
                vars::LIVE_DEVICE_EVENT_REFRESH_MS,
                30_000,
                1000,
                3_600_000,
            ),
            coalesce_window: r.millis(vars::LIVE_COALESCE_WINDOW_MS, 20, 0, 1000),
        };

        let directus = DirectusConfig {
            url: r
                .url(
                    vars::DIRECTUS_URL,
                    "http://127.0.0.1:8055",
                    &["http", "https"],
                )
                .expose()
                .trim_end_matches('/')
                .to_owned(),
            timeout: r.millis(vars::DIRECTUS_TIMEOUT_MS, 5000, 100, 60_000),
            cache_ttl: r.millis(vars::DIRECTUS_CACHE_TTL_MS, 30_000, 0, 600_000),
        };
        let shutdown_timeout = r.millis(vars::SHUTDOWN_TIMEOUT_MS, 10_000, 0, 600_000);

        if !r.problems.is_empty() {
            return Err(ConfigError::Invalid(r.problems));
        }
        Ok(Config {
            instance_id,
            log,
            redis: RedisConfig {
                url: redis_url,
                stream,
                group,
                consumer_name,
                read_count,
                read_block,
                claim_min_idle,
                max_deliveries,
                dead_letter_stream,
            },
            database: DatabaseConfig {
                url: database_url,
                pool_size,
                write_batch_size,
                device_state_max,
            },
            metrics_addr: SocketAddr::new(metrics_host, metrics_port),
            live,
            directus,
            shutdown_timeout,
        })
    }
}

/// Reads `KEY=value` lines of a `.env` file; a missing file is an empty map.
fn read_dotenv(path: &str) -> Result<HashMap<String, String>, ConfigError> {
    let iter = match dotenvy::from_filename_iter(path) {
        Ok(iter) => iter,
        Err(e) if e.not_found() => return Ok(HashMap::new()),
        Err(e) => return Err(ConfigError::DotEnv(e.to_string())),
    };
    let mut map = HashMap::new();
    for item in iter {
        // A dotenvy line error names the line, never the value, so it is safe to print.
        let (key, value) = item.map_err(|e| ConfigError::DotEnv(e.to_string()))?;
        map.insert(key, value);
    }
    Ok(map)
}

/// Reads variables one at a time, recording a [`Problem`] and returning the default for each
/// invalid one so that every variable is checked in one pass.
struct Reader<'a, L: Lookup> {
    lookup: &'a L,
    problems: Vec<Problem>,
}

impl<L: Lookup> Reader<'_, L> {
    fn raw(&self, name: &str) -> Option<String> {
        self.lookup.lookup(name)
    }

    fn problem(
        &mut self,
        name: &'static str,
        value: impl Into<String>,
        expected: impl Into<String>,
    ) {
        self.problems.push(Problem {
            name,
            value: value.into(),
            expected: expected.into(),
        });
    }

    fn non_empty(&mut self, name: &'static str, default: &str) -> String {
        match self.raw(name) {
            None => default.to_owned(),
            Some(v) if v.trim().is_empty() => {
                self.problem(name, v, "a non-empty string");
                default.to_owned()
            }
            Some(v) => v,
        }
    }

    fn ident(&mut self, name: &'static str, default: &str) -> String {
        match self.raw(name) {
            None => default.to_owned(),
            Some(v)
                if !v.is_empty()
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) =>
            {
                v
            }
            Some(v) => {
                self.problem(name, v, "a non-empty string of [A-Za-z0-9._-]");
                default.to_owned()
            }
        }
    }

    fn filter(&mut self, name: &'static str, default: &str) -> String {
        let Some(v) = self.raw(name) else {
            return default.to_owned();
        };
        match tracing_subscriber::EnvFilter::builder().parse(&v) {
            Ok(_) if !v.trim().is_empty() => v,
            Ok(_) => {
                self.problem(
                    name,
                    v,
                    "a tracing filter such as `info` or `processor=debug,warn`",
                );
                default.to_owned()
            }
            Err(e) => {
                self.problem(
                    name,
                    v,
                    format!("a tracing filter such as `info` or `processor=debug,warn` ({e})"),
                );
                default.to_owned()
            }
        }
    }

    fn log_format(&mut self, name: &'static str) -> LogFormat {
        match self.raw(name).as_deref() {
            None | Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => {
                self.problem(name, other, "`json` or `pretty`");
                LogFormat::Json
            }
        }
    }

    fn int(&mut self, name: &'static str, default: u32, min: u32, max: u32, unit: &str) -> u32 {
        let Some(v) = self.raw(name) else {
            return default;
        };
        match v.trim().parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                self.problem(name, v, format!("an integer in {min}..={max} ({unit})"));
                default
            }
        }
    }

    fn millis(&mut self, name: &'static str, default: u32, min: u32, max: u32) -> Duration {
        Duration::from_millis(u64::from(self.int(name, default, min, max, "milliseconds")))
    }

    fn revalidate(&mut self, name: &'static str) -> Option<Duration> {
        const MIN: u64 = 10_000;
        const MAX: u64 = 86_400_000;
        let expected = "0 (disabled) or an integer in 10000..=86400000 (milliseconds)";
        let ms = match self.raw(name) {
            None => 300_000,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if n == 0 || (MIN..=MAX).contains(&n) => n,
                _ => {
                    self.problem(name, v, expected);
                    300_000
                }
            },
        };
        (ms != 0).then(|| Duration::from_millis(ms))
    }

    fn bool(&mut self, name: &'static str, default: bool) -> bool {
        let Some(v) = self.raw(name) else {
            return default;
        };
        match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => {
                self.problem(
                    name,
                    v,
                    "a bool: `true` or `false` (also 1/0, yes/no, on/off)",
                );
                default
            }
        }
    }

    fn host(&mut self, name: &'static str) -> IpAddr {
        let default = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let Some(v) = self.raw(name) else {
            return default;
        };
        let trimmed = v.trim();
        if trimmed.eq_ignore_ascii_case("localhost") {
            return IpAddr::V4(Ipv4Addr::LOCALHOST);
        }
        match IpAddr::from_str(trimmed.trim_start_matches('[').trim_end_matches(']')) {
            Ok(ip) => ip,
            Err(_) => {
                self.problem(
                    name,
                    v,
                    "an IP address to bind (e.g. `0.0.0.0`, `127.0.0.1`, `::`) or `localhost`",
                );
                default
            }
        }
    }

    fn port(&mut self, name: &'static str, default: u16) -> u16 {
        let Some(v) = self.raw(name) else {
            return default;
        };
        match v.trim().parse::<u16>() {
            Ok(p) => p,
            Err(_) => {
                self.problem(name, v, "a TCP port in 0..=65535 (0 = any free port)");
                default
            }
        }
    }

    fn path(&mut self, name: &'static str, default: &str) -> String {
        match self.raw(name) {
            None => default.to_owned(),
            Some(v) if v.starts_with('/') && !v.contains(char::is_whitespace) => v,
            Some(v) => {
                self.problem(name, v, "a URL path starting with `/`");
                default.to_owned()
            }
        }
    }

    fn origins(&mut self, name: &'static str) -> Vec<String> {
        let Some(v) = self.raw(name) else {
            return Vec::new();
        };
        if v.trim().is_empty() {
            return Vec::new();
        }
        let mut origins = Vec::new();
        for item in v.split(',') {
            let origin = item.trim();
            if is_origin(origin) {
                origins.push(origin.trim_end_matches('/').to_owned());
            } else {
                self.problem(
                    name,
                    v.clone(),
                    format!(
                        "comma-separated origins like `https://example.org` or `http://localhost:5173` (bad item: {origin:?})"
                    ),
                );
                return Vec::new();
            }
        }
        origins
    }

    /// A URL with one of `schemes` and a non-empty host. The value in a problem is redacted.
    fn url(&mut self, name: &'static str, default: &str, schemes: &[&str]) -> SecretUrl {
        let Some(v) = self.raw(name) else {
            return SecretUrl::new(default);
        };
        let form = schemes
            .iter()
            .map(|s| format!("{s}://"))
            .collect::<Vec<_>>()
            .join(" or ");
        match check_url(&v, schemes) {
            Ok(()) => SecretUrl::new(v),
            Err(why) => {
                self.problem(name, redact_url(&v), format!("a {form} URL ({why})"));
                SecretUrl::new(default)
            }
        }
    }
}

/// Checks `scheme://[userinfo@]host[:port][/path][?query]` with a scheme from `schemes`.
fn check_url(url: &str, schemes: &[&str]) -> Result<(), &'static str> {
    let (scheme, rest) = url.split_once("://").ok_or("missing `scheme://`")?;
    if !schemes.iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
        return Err("wrong scheme");
    }
    if url.contains(char::is_whitespace) {
        return Err("contains whitespace");
    }
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or("unclosed `[` in host")?;
        (host, after.strip_prefix(':'))
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err("missing host");
    }
    if let Some(port) = port
        && port.parse::<u16>().is_err()
    {
        return Err("port is not a number in 0..=65535");
    }
    Ok(())
}

/// `scheme://host[:port]` with scheme http or https, no path.
fn is_origin(origin: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    let rest = rest.trim_end_matches('/');
    matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && !rest.contains(['/', '?', '#', '@'])
        && !rest.contains(char::is_whitespace)
        && check_url(origin, &["http", "https"]).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name: &str| map.get(name))
    }

    fn problems(pairs: &[(&str, &str)]) -> Vec<Problem> {
        match config(pairs) {
            Err(ConfigError::Invalid(p)) => p,
            other => panic!("expected problems, got {other:?}"),
        }
    }

    #[test]
    fn defaults_match_the_operations_table() {
        let c = config(&[]).unwrap();
        assert_eq!(c.instance_id, "processor-1");
        assert_eq!(c.log.level, "info");
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(c.redis.url.expose(), "redis://127.0.0.1:6379");
        assert_eq!(c.redis.stream, "telemetry:teltonika");
        assert_eq!(c.redis.group, "processor");
        assert_eq!(c.redis.consumer_name, "processor-1");
        assert_eq!(c.redis.read_count, 500);
        assert_eq!(c.redis.read_block, Duration::from_millis(2000));
        assert_eq!(c.redis.claim_min_idle, Duration::from_millis(60_000));
        assert_eq!(c.redis.max_deliveries, 5);
        assert_eq!(c.redis.dead_letter_stream, "telemetry:teltonika:dead");
        assert_eq!(
            c.database.url.expose(),
            "postgres://postgres@127.0.0.1:5432/processor"
        );
        assert_eq!(c.database.pool_size, 8);
        assert_eq!(c.database.write_batch_size, 500);
        assert_eq!(c.database.device_state_max, 10_000);
        assert_eq!(c.metrics_addr, "0.0.0.0:9090".parse().unwrap());
        assert!(c.live.enabled);
        assert_eq!(c.live.addr, "0.0.0.0:8081".parse().unwrap());
        assert_eq!(c.live.path, "/ws");
        assert!(c.live.allowed_origins.is_empty());
        assert_eq!(c.live.max_connections, 20_000);
        assert_eq!(c.live.max_subscriptions, 32);
        assert_eq!(c.live.max_queued_positions, 1024);
        assert_eq!(c.live.slow_client_timeout, Duration::from_millis(30_000));
        assert_eq!(c.live.ping_interval, Duration::from_millis(30_000));
        assert_eq!(c.live.revalidate, Some(Duration::from_millis(300_000)));
        assert_eq!(c.live.device_event_refresh, Duration::from_millis(30_000));
        assert_eq!(c.live.coalesce_window, Duration::from_millis(20));
        assert_eq!(c.directus.url, "http://127.0.0.1:8055");
        assert_eq!(c.directus.timeout, Duration::from_millis(5000));
        assert_eq!(c.directus.cache_ttl, Duration::from_millis(30_000));
        assert_eq!(c.shutdown_timeout, Duration::from_millis(10_000));
    }

    #[test]
    fn derived_defaults_follow_their_source() {
        let c = config(&[("INSTANCE_ID", "edge-7"), ("REDIS_TELEMETRY_STREAM", "t:x")]).unwrap();
        assert_eq!(c.redis.consumer_name, "edge-7");
        assert_eq!(c.redis.dead_letter_stream, "t:x:dead");
        let c = config(&[("INSTANCE_ID", "edge-7"), ("REDIS_CONSUMER_NAME", "other")]).unwrap();
        assert_eq!(c.redis.consumer_name, "other");
    }

    #[test]
    fn every_value_is_read() {
        let c = config(&[
            ("INSTANCE_ID", "a.b_c-1"),
            ("LOG_LEVEL", "processor=debug,warn"),
            ("LOG_FORMAT", "pretty"),
            ("REDIS_URL", "rediss://:pw@redis.example:6380/2"),
            ("REDIS_TELEMETRY_STREAM", "s"),
            ("REDIS_CONSUMER_GROUP", "g"),
            ("REDIS_CONSUMER_NAME", "n"),
            ("REDIS_READ_COUNT", "10000"),
            ("REDIS_READ_BLOCK_MS", "1"),
            ("REDIS_CLAIM_MIN_IDLE_MS", "1000"),
            ("REDIS_MAX_DELIVERIES", "1000"),
            ("REDIS_DEAD_LETTER_STREAM", "dl"),
            ("DATABASE_URL", "postgresql://u:p@db:5433/x?sslmode=disable"),
            ("DATABASE_POOL_SIZE", "256"),
            ("WRITE_BATCH_SIZE", "1"),
            ("DEVICE_STATE_MAX", "10000000"),
            ("METRICS_HOST", "127.0.0.1"),
            ("METRICS_PORT", "0"),
            ("LIVE_ENABLED", "false"),
            ("LIVE_WS_HOST", "::"),
            ("LIVE_WS_PORT", "0"),
            ("LIVE_WS_PATH", "/live"),
            (
                "LIVE_ALLOWED_ORIGINS",
                "https://a.example, http://localhost:5173",
            ),
            ("LIVE_MAX_CONNECTIONS", "1000000"),
            ("LIVE_MAX_SUBSCRIPTIONS", "1024"),
            ("LIVE_MAX_QUEUED_POSITIONS", "1"),
            ("LIVE_SLOW_CLIENT_TIMEOUT_MS", "600000"),
            ("LIVE_PING_INTERVAL_MS", "1000"),
            ("LIVE_REVALIDATE_MS", "0"),
            ("LIVE_DEVICE_EVENT_REFRESH_MS", "3600000"),
            ("LIVE_COALESCE_WINDOW_MS", "0"),
            ("DIRECTUS_URL", "https://cms.example/"),
            ("DIRECTUS_TIMEOUT_MS", "100"),
            ("DIRECTUS_CACHE_TTL_MS", "0"),
            ("SHUTDOWN_TIMEOUT_MS", "0"),
        ])
        .unwrap();
        assert_eq!(c.instance_id, "a.b_c-1");
        assert_eq!(c.log.format, LogFormat::Pretty);
        assert_eq!(c.redis.url.expose(), "rediss://:pw@redis.example:6380/2");
        assert_eq!(c.redis.read_count, 10_000);
        assert_eq!(c.redis.read_block, Duration::from_millis(1));
        assert_eq!(c.redis.dead_letter_stream, "dl");
        assert_eq!(c.database.pool_size, 256);
        assert_eq!(c.metrics_addr, "127.0.0.1:0".parse().unwrap());
        assert!(!c.live.enabled);
        assert_eq!(c.live.addr, "[::]:0".parse().unwrap());
        assert_eq!(
            c.live.allowed_origins,
            vec!["https://a.example", "http://localhost:5173"]
        );
        assert_eq!(c.live.revalidate, None);
        assert_eq!(c.live.coalesce_window, Duration::ZERO);
        assert_eq!(c.directus.url, "https://cms.example");
        assert_eq!(c.directus.cache_ttl, Duration::ZERO);
        assert_eq!(c.shutdown_timeout, Duration::ZERO);
    }

    #[test]
    fn every_bound_is_enforced_on_both_sides() {
        let cases: &[(&str, &str, &str)] = &[
            ("REDIS_READ_COUNT", "0", "10001"),
            ("REDIS_READ_BLOCK_MS", "0", "60001"),
            ("REDIS_CLAIM_MIN_IDLE_MS", "999", "3600001"),
            ("REDIS_MAX_DELIVERIES", "0", "1001"),
            ("DATABASE_POOL_SIZE", "0", "257"),
            ("WRITE_BATCH_SIZE", "0", "10001"),
            ("DEVICE_STATE_MAX", "0", "10000001"),
            ("LIVE_MAX_CONNECTIONS", "0", "1000001"),
            ("LIVE_MAX_SUBSCRIPTIONS", "0", "1025"),
            ("LIVE_MAX_QUEUED_POSITIONS", "0", "1000001"),
            ("LIVE_SLOW_CLIENT_TIMEOUT_MS", "999", "600001"),
            ("LIVE_PING_INTERVAL_MS", "999", "600001"),
            ("LIVE_REVALIDATE_MS", "9999", "86400001"),
            ("LIVE_DEVICE_EVENT_REFRESH_MS", "999", "3600001"),
            ("LIVE_COALESCE_WINDOW_MS", "-1", "1001"),
            ("DIRECTUS_TIMEOUT_MS", "99", "60001"),
            ("DIRECTUS_CACHE_TTL_MS", "-1", "600001"),
            ("SHUTDOWN_TIMEOUT_MS", "-1", "600001"),
            ("METRICS_PORT", "-1", "65536"),
            ("LIVE_WS_PORT", "x", "65536"),
        ];
        for (name, low, high) in cases {
            for bad in [low, high] {
                let p = problems(&[(name, bad)]);
                assert_eq!(p.len(), 1, "{name}={bad}: {p:?}");
                assert_eq!(p[0].name, *name);
                assert_eq!(p[0].value, *bad);
            }
        }
    }

    #[test]
    fn forms_are_enforced() {
        let cases: &[(&str, &str)] = &[
            ("INSTANCE_ID", ""),
            ("INSTANCE_ID", "a b"),
            ("INSTANCE_ID", "a/b"),
            ("LOG_LEVEL", "info,=[{"),
            ("LOG_LEVEL", ""),
            ("LOG_FORMAT", "xml"),
            ("REDIS_URL", "http://127.0.0.1:6379"),
            ("REDIS_URL", "redis://"),
            ("REDIS_URL", "redis://host:port"),
            ("REDIS_TELEMETRY_STREAM", ""),
            ("REDIS_CONSUMER_GROUP", " "),
            ("REDIS_CONSUMER_NAME", ""),
            ("REDIS_DEAD_LETTER_STREAM", ""),
            ("DATABASE_URL", "mysql://db/x"),
            ("DATABASE_URL", "postgres:/db"),
            ("METRICS_HOST", "example.org"),
            ("LIVE_ENABLED", "maybe"),
            ("LIVE_WS_PATH", "ws"),
            ("LIVE_ALLOWED_ORIGINS", "https://a.example/path"),
            ("LIVE_ALLOWED_ORIGINS", "a.example"),
            (
                "LIVE_ALLOWED_ORIGINS",
                "https://a.example,,https://b.example",
            ),
            ("DIRECTUS_URL", "ftp://cms"),
            ("REDIS_READ_COUNT", "12abc"),
        ];
        for (name, bad) in cases {
            let p = problems(&[(name, bad)]);
            assert_eq!(p.len(), 1, "{name}={bad:?}: {p:?}");
            assert_eq!(p[0].name, *name, "{name}={bad:?}");
        }
    }

    #[test]
    fn every_problem_is_reported_at_once_with_value_form_and_bound() {
        let err = config(&[
            ("REDIS_READ_COUNT", "0"),
            ("LOG_FORMAT", "xml"),
            ("METRICS_PORT", "99999"),
            ("SHUTDOWN_TIMEOUT_MS", "forever"),
        ])
        .unwrap_err();
        let ConfigError::Invalid(p) = &err else {
            panic!("{err:?}")
        };
        let names: Vec<_> = p.iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            [
                "LOG_FORMAT",
                "REDIS_READ_COUNT",
                "METRICS_PORT",
                "SHUTDOWN_TIMEOUT_MS"
            ]
        );
        let text = err.to_string();
        assert!(
            text.contains(
                "REDIS_READ_COUNT=\"0\": expected an integer in 1..=10000 (entries per read)"
            ),
            "{text}"
        );
        assert!(
            text.contains("LOG_FORMAT=\"xml\": expected `json` or `pretty`"),
            "{text}"
        );
        assert!(text.contains("SHUTDOWN_TIMEOUT_MS=\"forever\""), "{text}");
    }

    #[test]
    fn passwords_never_appear_in_problems_or_debug() {
        let err = config(&[
            ("REDIS_URL", "http://user:hunter2@redis:6379"),
            ("DATABASE_URL", "postgres://app:s3cret@db:notaport/x"),
        ])
        .unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("user:***@redis"), "{text}");

        let c = config(&[
            ("REDIS_URL", "redis://:hunter2@redis:6379"),
            (
                "DATABASE_URL",
                "postgres://app@db/x?password=s3cret&sslmode=require",
            ),
        ])
        .unwrap();
        let text = format!("{c:?} {} {}", c.redis.url, c.database.url);
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("password=***&sslmode=require"), "{text}");
        assert_eq!(c.redis.url.expose(), "redis://:hunter2@redis:6379");
    }

    #[test]
    fn redaction_keeps_everything_but_the_password() {
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(redact_url("redis://u:p@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(redact_url("redis://:p@h"), "redis://:***@h");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("u:p@h"), "u:***@h");
        assert_eq!(redact_url("postgres://u:p:q@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("postgres://u:a@b@h/db"), "postgres://u:***@h/db");
        assert_eq!(
            redact_url("postgres://h/db?PASSWORD=x&a=b"),
            "postgres://h/db?PASSWORD=***&a=b"
        );
    }

    #[test]
    fn dotenv_missing_file_is_empty_and_present_file_is_read() {
        assert!(read_dotenv("/nonexistent/dir/.env").unwrap().is_empty());
        let dir = std::env::temp_dir().join(format!("processor-dotenv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(".env");
        std::fs::write(
            &path,
            "# comment\nREDIS_READ_COUNT=42\nLOG_FORMAT=\"pretty\"\n",
        )
        .unwrap();
        let map = read_dotenv(path.to_str().unwrap()).unwrap();
        assert_eq!(map.get("REDIS_READ_COUNT").map(String::as_str), Some("42"));
        assert_eq!(map.get("LOG_FORMAT").map(String::as_str), Some("pretty"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn all_lists_every_variable_once() {
        let mut names = vars::ALL.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), vars::ALL.len());
        // The 34 variables of the shared contract plus LIVE_COALESCE_WINDOW_MS (docs/operations.md).
        assert_eq!(names.len(), 35);
    }
}
