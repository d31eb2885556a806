//! Logging set-up: `tracing-subscriber` writing one JSON object per line to stdout (the
//! default) or human-readable lines (`LOG_FORMAT=pretty`), filtered by `LOG_LEVEL`.
//!
//! Secrets never reach a log line: URLs are logged through [`crate::config::SecretUrl`]'s
//! redacting `Display`, and no code logs a cookie or token.

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber. Fails only when `LOG_LEVEL` does not parse (the
/// configuration has checked that already) or a subscriber is already installed.
pub fn init(config: &LogConfig) -> anyhow::Result<()> {
    let filter = EnvFilter::builder().parse(&config.level)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let result = match config.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.with_ansi(false).try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))
}
