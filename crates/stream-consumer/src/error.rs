//! The crate's one error type.
//!
//! Runtime Redis failures are retried inside [`Consumer::run`](crate::Consumer::run) and
//! [`TailReader::run`](crate::TailReader::run) (they reconnect by themselves), so callers only
//! see [`Error::Config`] and [`Error::InvalidUrl`] from those; the other variants surface from
//! the lower-level helpers and in logs.

/// Everything that can go wrong in this crate. Messages never contain the Redis URL (it may
/// carry a password).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of its bounds.
    #[error("invalid consumer configuration: `{field}` {reason}")]
    Config {
        /// The offending field of [`ConsumerConfig`](crate::ConsumerConfig) /
        /// [`TailConfig`](crate::TailConfig).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The Redis URL does not parse (the URL itself is not repeated: it may hold a password).
    #[error("invalid redis url: {0}")]
    InvalidUrl(String),
    /// A Redis command failed (connection, timeout, or a server error such as `NOGROUP`).
    #[error("redis {command} on `{key}` failed: {source}")]
    Redis {
        /// The command, e.g. `XREADGROUP`.
        command: &'static str,
        /// The stream key it was sent for.
        key: String,
        /// fred's error.
        #[source]
        source: fred::error::Error,
    },
    /// Redis answered with a shape this crate does not understand.
    #[error("unexpected reply to {command} on `{key}`: {detail}")]
    Reply {
        /// The command, e.g. `XAUTOCLAIM`.
        command: &'static str,
        /// The stream key.
        key: String,
        /// What was wrong with the reply.
        detail: String,
    },
}

impl Error {
    /// Whether this is a Redis `NOGROUP` error: the stream or the group disappeared and the
    /// group has to be created again.
    pub fn is_no_group(&self) -> bool {
        match self {
            Error::Redis { source, .. } => is_no_group(source),
            _ => false,
        }
    }
}

/// `NOGROUP No such key '…' or consumer group '…'`: fred maps most server errors to
/// `ErrorKind::Unknown`, so the prefix of the details is what identifies it.
pub(crate) fn is_no_group(e: &fred::error::Error) -> bool {
    e.details().starts_with("NOGROUP")
}

/// `BUSYGROUP Consumer Group name already exists`.
pub(crate) fn is_busy_group(e: &fred::error::Error) -> bool {
    e.details().starts_with("BUSYGROUP")
}

/// Shorthand to wrap a fred error with the command and key.
pub(crate) fn redis(command: &'static str, key: &str) -> impl FnOnce(fred::error::Error) -> Error {
    let key = key.to_owned();
    move |source| Error::Redis {
        command,
        key,
        source,
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
