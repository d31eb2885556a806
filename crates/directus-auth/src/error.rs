//! The crate's error type: why a question to Directus got no answer.
//!
//! Final answers (unauthorized, forbidden, not found) are *not* errors: they are the `Ok`
//! values [`crate::Identity`] and [`crate::EventAccess`]. A [`DirectusError`] means "no answer"
//! (the caller may retry later) and is never cached. Messages never contain credentials or
//! the Directus URL's user info.

/// Directus could not answer the question.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DirectusError {
    /// No answer within `DIRECTUS_TIMEOUT_MS`.
    #[error("directus did not answer within the timeout")]
    Timeout,
    /// Could not connect to Directus.
    #[error("cannot connect to directus: {0}")]
    Connect(String),
    /// Directus answered with a status that is not one of the expected answers.
    #[error("directus answered with unexpected status {0}")]
    Status(u16),
    /// Directus answered 200 with a body that is not what the API documents.
    #[error("malformed directus answer: {0}")]
    Malformed(String),
    /// Another transport failure (reading the body, protocol error).
    #[error("directus request failed: {0}")]
    Request(String),
    /// The event id is not a hyphenated UUID (never sent to Directus).
    #[error("event id is not a hyphenated uuid")]
    InvalidEventId,
    /// Empty or non-header-safe credentials.
    #[error("credentials are empty or not a valid header value")]
    InvalidCredentials,
    /// The configuration is unusable (bad URL, HTTP client cannot be built).
    #[error("invalid directus configuration: {0}")]
    InvalidConfig(String),
    /// The task asking Directus ended without an answer (a bug or a runtime shutting down).
    #[error("directus request task ended without an answer")]
    Internal,
}

impl DirectusError {
    /// Builds the error for a reqwest failure, without the URL (it may carry user info).
    pub(crate) fn from_reqwest(error: reqwest::Error) -> Self {
        if error.is_timeout() {
            return DirectusError::Timeout;
        }
        let connect = error.is_connect();
        let text = error.without_url().to_string();
        if connect {
            DirectusError::Connect(text)
        } else {
            DirectusError::Request(text)
        }
    }
}

/// Shorthand for results with [`DirectusError`].
pub type Result<T, E = DirectusError> = std::result::Result<T, E>;
