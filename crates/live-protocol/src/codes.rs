//! The protocol's fixed vocabulary: error codes, WebSocket close codes and size limits.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Largest inbound (client → server) text message, in bytes. A message of exactly this size is
/// accepted; one byte more is `invalid-message`.
pub const MAX_INBOUND_MESSAGE_BYTES: usize = 4 * 1024;

/// Longest `message` text the server puts in an `error` reply (details are cut, never the code).
pub const MAX_ERROR_DETAIL_CHARS: usize = 200;

/// WebSocket close codes used by the protocol.
pub mod close {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down (going away); reconnect with backoff.
    pub const GOING_AWAY: u16 = 1001;
    /// A WebSocket protocol error (reserved bits, unknown opcode, bad fragmentation or close
    /// frame): a client bug.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A text frame that is not valid UTF-8 (RFC 6455 §8.1): a client bug.
    pub const INVALID_DATA: u16 = 1007;
    /// Policy violation: abuse after rate limiting, a missed pong.
    pub const POLICY: u16 = 1008;
    /// A frame or message too big.
    pub const TOO_BIG: u16 = 1009;
    /// The session is no longer valid (Directus says unauthorized): log in again.
    pub const SESSION_INVALID: u16 = 4401;
}

/// The `code` of an `error` message.
///
/// ```
/// use live_protocol::ErrorCode;
/// assert_eq!(ErrorCode::TooManySubscriptions.as_str(), "too-many-subscriptions");
/// assert_eq!("not-found".parse::<ErrorCode>(), Ok(ErrorCode::NotFound));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// Unparseable, unknown type, unknown field, wrong type, non-text frame, or too large.
    InvalidMessage,
    /// The topic is not `event:<uuid>`.
    InvalidTopic,
    /// Directus answered 403 for the event.
    Forbidden,
    /// Directus answered 404 for the event.
    NotFound,
    /// Directus unreachable or failing: the client may retry.
    Error,
    /// Over the per-connection subscription limit.
    TooManySubscriptions,
    /// Over the inbound message rate.
    RateLimited,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: [ErrorCode; 7] = [
        ErrorCode::InvalidMessage,
        ErrorCode::InvalidTopic,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Error,
        ErrorCode::TooManySubscriptions,
        ErrorCode::RateLimited,
    ];

    /// The exact wire string.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidMessage => "invalid-message",
            ErrorCode::InvalidTopic => "invalid-topic",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not-found",
            ErrorCode::Error => "error",
            ErrorCode::TooManySubscriptions => "too-many-subscriptions",
            ErrorCode::RateLimited => "rate-limited",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The string is not one of the protocol's error codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown error code")]
pub struct UnknownErrorCode;

impl std::str::FromStr for ErrorCode {
    type Err = UnknownErrorCode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorCode::ALL
            .into_iter()
            .find(|code| code.as_str() == s)
            .ok_or(UnknownErrorCode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_the_exact_strings() {
        let strings: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            strings,
            [
                "invalid-message",
                "invalid-topic",
                "forbidden",
                "not-found",
                "error",
                "too-many-subscriptions",
                "rate-limited"
            ]
        );
        for code in ErrorCode::ALL {
            // serde and as_str agree, both ways.
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(code));
        }
        assert_eq!("Forbidden".parse::<ErrorCode>(), Err(UnknownErrorCode));
    }

    #[test]
    fn close_codes_match_the_spec() {
        assert_eq!(
            [
                close::NORMAL,
                close::GOING_AWAY,
                close::POLICY,
                close::TOO_BIG,
                close::SESSION_INVALID
            ],
            [1000, 1001, 1008, 1009, 4401]
        );
        assert_eq!(MAX_INBOUND_MESSAGE_BYTES, 4096);
    }
}
