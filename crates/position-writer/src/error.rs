//! The crate's one error type, and the classification the durable path acts on.
//!
//! Three kinds of failure matter to a caller, and each is handled differently
//! (docs/database.md): the database is *unavailable* ([`Error::is_transient`]: retry the
//! whole batch later, never dead-letter it); the database *rejects some rows* (SQLSTATE class
//! 22 or class 23 other than 23505: those never surface as an [`Error`], the writer bisects
//! and reports them in [`crate::BatchOutcome::rejected`]); anything else (a missing table, a
//! permission problem, a changed migration) is a configuration fault returned as is.

use std::time::Duration;

use tokio_postgres::error::SqlState;

/// Errors of the position writer, the migration runner and the pool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection settings cannot be used (bad URL, pool size out of range…).
    #[error("invalid database configuration: {0}")]
    Config(String),
    /// No connection could be had from the pool (server down, pool exhausted, timeout).
    #[error("cannot get a database connection: {}", describe_chain(.0))]
    Pool(#[source] deadpool_postgres::PoolError),
    /// A statement failed; `context` says which one.
    #[error("{context}: {}", describe_chain(.source))]
    Database {
        /// What the crate was doing ("insert positions", "apply migration 0001_positions"…).
        context: String,
        /// The driver's error (with the server's SQLSTATE and message when it answered).
        #[source]
        source: tokio_postgres::Error,
    },
    /// A statement did not finish within the configured time; the connection was discarded.
    #[error("{context}: no answer from the database within {after:?}")]
    Timeout {
        /// What the crate was doing.
        context: String,
        /// The limit that elapsed.
        after: Duration,
    },
    /// A migration that was already applied has changed since (its checksum differs).
    #[error(
        "migration {version} was changed after it was applied (applied checksum {applied}, file checksum {file}): add a new migration instead"
    )]
    MigrationChanged {
        /// The migration's version (file name without `.sql`).
        version: String,
        /// Checksum recorded in `schema_migrations`.
        applied: String,
        /// Checksum of the embedded file.
        file: String,
    },
    /// The retrying writer stopped because shutdown was requested; nothing was acknowledged.
    #[error("write abandoned: shutdown requested")]
    Cancelled,
}

/// The error and its causes on one line. The driver's own `Display` says only `db error` or
/// `error connecting to server`; an operator needs the server's message ("database
/// \"processor\" does not exist") or the I/O cause ("Connection refused").
fn describe_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(source) = cause {
        let more = source.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = source.source();
    }
    text
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The name the crate contract gives the writer's error.
pub type WriteError = Error;

impl Error {
    pub(crate) fn db(context: impl Into<String>, source: tokio_postgres::Error) -> Self {
        Self::Database {
            context: context.into(),
            source,
        }
    }

    /// True when the failure says nothing about the data: the database is unreachable,
    /// restarting, overloaded, or picked this transaction as a deadlock/serialization victim.
    /// The same batch should be retried later, unchanged, and never dead-lettered.
    ///
    /// Transient: connection errors (no SQLSTATE), timeouts, pool errors, SQLSTATE class 08,
    /// class 53, `40001`, `40P01`, `57P01`..`57P03`, `57014` (statement timeout) and `55P03`
    /// (lock timeout).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Pool(_) | Self::Timeout { .. } => true,
            Self::Database { source, .. } => is_transient_pg(source),
            Self::Config(_) | Self::MigrationChanged { .. } | Self::Cancelled => false,
        }
    }

    /// The SQLSTATE the server answered with, if it answered.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Self::Database { source, .. } => source.code().map(SqlState::code),
            Self::Pool(deadpool_postgres::PoolError::Backend(source)) => {
                source.code().map(SqlState::code)
            }
            _ => None,
        }
    }

    /// A short, stable label for health reports and logs: `timeout`, `connection`,
    /// `sqlstate 57P03`, `config`, `migration`, `cancelled`.
    pub fn kind(&self) -> String {
        match self {
            Self::Timeout { .. } => "timeout".to_owned(),
            Self::Pool(deadpool_postgres::PoolError::Timeout(_)) => "timeout".to_owned(),
            Self::Config(_) => "config".to_owned(),
            Self::MigrationChanged { .. } => "migration".to_owned(),
            Self::Cancelled => "cancelled".to_owned(),
            _ => match self.sqlstate() {
                Some(code) => format!("sqlstate {code}"),
                None => "connection".to_owned(),
            },
        }
    }
}

/// How a failed attempt at writing rows must be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Retry unchanged later (see [`Error::is_transient`]).
    Transient,
    /// The rows are at fault: bisect to find the culprits.
    Data,
    /// Neither: report to the caller.
    Fatal,
}

/// Classifies a driver error from a write attempt.
pub(crate) fn classify(err: &tokio_postgres::Error) -> Failure {
    if is_transient_pg(err) {
        return Failure::Transient;
    }
    match err.code().map(SqlState::code) {
        Some(code) if code.starts_with("22") => Failure::Data,
        Some(code) if code.starts_with("23") && code != SqlState::UNIQUE_VIOLATION.code() => {
            Failure::Data
        }
        _ => Failure::Fatal,
    }
}

fn is_transient_pg(err: &tokio_postgres::Error) -> bool {
    match err.code() {
        // No SQLSTATE: the server did not answer (I/O error, closed connection, connect
        // failure or timeout). Client-side encoding errors cannot happen with the writer's
        // fixed parameter types.
        None => true,
        Some(state) => is_transient_code(state.code()),
    }
}

pub(crate) fn is_transient_code(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code,
            "40001" | "40P01" | "57P01" | "57P02" | "57P03" | "57014" | "55P03"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_codes() {
        for code in [
            "08006", "08001", "53300", "53100", "40001", "40P01", "57P01", "57P02", "57P03",
            "57014", "55P03",
        ] {
            assert!(is_transient_code(code), "{code}");
        }
        for code in [
            "22021", "23502", "23505", "23514", "42P01", "42501", "57000", "XX000",
        ] {
            assert!(!is_transient_code(code), "{code}");
        }
    }
}
