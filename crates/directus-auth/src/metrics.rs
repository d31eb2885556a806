//! Directus metrics (names and label values are part of the operations contract).
//!
//! `processor_directus_request_duration_seconds{endpoint}` (histogram, one sample per HTTP
//! request) and `processor_directus_requests_total{endpoint,outcome}` (counter, one per HTTP
//! request; answers served from the cache or by coalescing are not requests).

/// Histogram of request durations, label `endpoint`.
pub const REQUEST_DURATION_SECONDS: &str = "processor_directus_request_duration_seconds";
/// Counter of requests, labels `endpoint` and `outcome`.
pub const REQUESTS_TOTAL: &str = "processor_directus_requests_total";

/// Label values of `endpoint`.
pub mod endpoint {
    /// `GET /users/me`.
    pub const USERS_ME: &str = "users_me";
    /// `GET /items/events/<id>`.
    pub const EVENTS: &str = "events";
    /// Every endpoint label value.
    pub const ALL: [&str; 2] = [USERS_ME, EVENTS];
}

/// Label values of `outcome`.
pub mod outcome {
    /// Authenticated (users/me) or allowed (events).
    pub const OK: &str = "ok";
    /// 401 (either endpoint), 403 or `{"data":null}` on users/me.
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// 403 on events.
    pub const FORBIDDEN: &str = "forbidden";
    /// 404 on events.
    pub const NOT_FOUND: &str = "not_found";
    /// Timeout, connection failure, unexpected status, malformed body.
    pub const ERROR: &str = "error";
    /// The outcomes possible per endpoint.
    pub const USERS_ME: [&str; 3] = [OK, UNAUTHORIZED, ERROR];
    /// The outcomes possible per endpoint.
    pub const EVENTS: [&str; 5] = [OK, UNAUTHORIZED, FORBIDDEN, NOT_FOUND, ERROR];
}

/// Describes the metrics and registers every label combination at 0, so dashboards see them
/// from start-up. Call once after installing the recorder.
pub fn describe_metrics() {
    metrics::describe_histogram!(
        REQUEST_DURATION_SECONDS,
        metrics::Unit::Seconds,
        "Duration of Directus HTTP requests, by endpoint"
    );
    metrics::describe_counter!(
        REQUESTS_TOTAL,
        metrics::Unit::Count,
        "Directus HTTP requests, by endpoint and outcome"
    );
    for (endpoint, outcomes) in [
        (endpoint::USERS_ME, &outcome::USERS_ME[..]),
        (endpoint::EVENTS, &outcome::EVENTS[..]),
    ] {
        let _ = metrics::histogram!(REQUEST_DURATION_SECONDS, "endpoint" => endpoint);
        for &outcome in outcomes {
            metrics::counter!(REQUESTS_TOTAL, "endpoint" => endpoint, "outcome" => outcome)
                .increment(0);
        }
    }
}

/// Records one HTTP request.
pub(crate) fn record(endpoint: &'static str, outcome: &'static str, seconds: f64) {
    metrics::histogram!(REQUEST_DURATION_SECONDS, "endpoint" => endpoint).record(seconds);
    metrics::counter!(REQUESTS_TOTAL, "endpoint" => endpoint, "outcome" => outcome).increment(1);
}
