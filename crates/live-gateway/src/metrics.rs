//! Metric names of the live path (docs/operations.md) and [`describe_metrics`].
//!
//! The gateway records through the `metrics` facade; `bins/processor` installs the recorder.

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};

/// Gauge: open WebSocket connections.
pub const CONNECTIONS: &str = "processor_live_connections";
/// Counter by `result`: upgrade attempts on the WebSocket path.
pub const CONNECTIONS_TOTAL: &str = "processor_live_connections_total";
/// Gauge: (connection, topic) subscriptions held.
pub const SUBSCRIPTIONS: &str = "processor_live_subscriptions";
/// Counter by `result`: subscribe requests.
pub const SUBSCRIBE_TOTAL: &str = "processor_live_subscribe_total";
/// Counter: stream records read by the broadcast consumer.
pub const BROADCAST_RECORDS: &str = "processor_live_broadcast_records_total";
/// Counter: records whose device is registered to no event.
pub const BROADCAST_ORPHANS: &str = "processor_live_broadcast_orphan_records_total";
/// Counter: records the live path could not decode (skipped).
pub const DECODE_ERRORS: &str = "processor_live_decode_errors_total";
/// Counter: WebSocket messages written to clients (data frames, not pings).
pub const MESSAGES_SENT: &str = "processor_live_messages_sent_total";
/// Counter by `reason`: positions dropped from a connection's queue.
pub const POSITIONS_DROPPED: &str = "processor_live_positions_dropped_total";
/// Histogram: snapshot query duration.
pub const SNAPSHOT_DURATION: &str = "processor_live_snapshot_duration_seconds";
/// Counter: failed snapshot queries (the subscription got `"snapshot": []`).
pub const SNAPSHOT_ERRORS: &str = "processor_live_snapshot_errors_total";
/// Histogram: record time in Redis (entry id) → frame written to the socket.
pub const DELIVERY_LATENCY: &str = "processor_live_delivery_latency_seconds";

/// `result` values of [`CONNECTIONS_TOTAL`].
pub const CONNECTION_RESULTS: [&str; 5] = [
    "accepted",
    "unauthorized",
    "forbidden_origin",
    "unavailable",
    "over_capacity",
];
/// `result` values of [`SUBSCRIBE_TOTAL`].
pub const SUBSCRIBE_RESULTS: [&str; 5] = ["ok", "forbidden", "not_found", "error", "invalid"];
/// `reason` values of [`POSITIONS_DROPPED`].
pub const DROP_REASONS: [&str; 2] = ["conflated", "overflow"];

/// Describes every live metric and registers each labelled counter at 0 for every label value,
/// so dashboards see them from start-up. Call once after installing the recorder.
pub fn describe_metrics() {
    describe_gauge!(CONNECTIONS, "Open live WebSocket connections");
    describe_counter!(
        CONNECTIONS_TOTAL,
        "WebSocket upgrade attempts on the live path, by result"
    );
    describe_gauge!(
        SUBSCRIPTIONS,
        "Topic subscriptions held by live connections"
    );
    describe_counter!(SUBSCRIBE_TOTAL, "Subscribe requests, by result");
    describe_counter!(
        BROADCAST_RECORDS,
        "Stream records read by the live broadcast consumer"
    );
    describe_counter!(
        BROADCAST_ORPHANS,
        "Stream records whose device is registered to no event (sent to no one)"
    );
    describe_counter!(
        DECODE_ERRORS,
        "Stream records the live path could not decode (skipped)"
    );
    describe_counter!(MESSAGES_SENT, "Messages written to live WebSocket clients");
    describe_counter!(
        POSITIONS_DROPPED,
        "Positions dropped from a connection's outbound queue, by reason"
    );
    describe_histogram!(
        SNAPSHOT_DURATION,
        Unit::Seconds,
        "Duration of the subscribe snapshot query"
    );
    describe_counter!(
        SNAPSHOT_ERRORS,
        "Snapshot queries that failed (the subscription got an empty snapshot)"
    );
    describe_histogram!(
        DELIVERY_LATENCY,
        Unit::Seconds,
        "Record time in Redis (entry id) to the frame written to the client's socket"
    );

    // Gauges move by increments (several gateways may share a recorder in tests).
    gauge!(CONNECTIONS).increment(0.0);
    gauge!(SUBSCRIPTIONS).increment(0.0);
    for result in CONNECTION_RESULTS {
        counter!(CONNECTIONS_TOTAL, "result" => result).increment(0);
    }
    for result in SUBSCRIBE_RESULTS {
        counter!(SUBSCRIBE_TOTAL, "result" => result).increment(0);
    }
    for reason in DROP_REASONS {
        counter!(POSITIONS_DROPPED, "reason" => reason).increment(0);
    }
    for name in [
        BROADCAST_RECORDS,
        BROADCAST_ORPHANS,
        DECODE_ERRORS,
        MESSAGES_SENT,
        SNAPSHOT_ERRORS,
    ] {
        counter!(name).increment(0);
    }
}
