//! Metric names (part of the contract in `operations.md`) and their descriptions.
//!
//! Recorded through the `metrics` facade; the binary installs the exporter.

use metrics::{Unit, counter, describe_counter, describe_gauge};

/// Counter `{result="ok|empty|error"}`: group reads (`XREADGROUP` and `XAUTOCLAIM` pages).
pub const READS_TOTAL: &str = "processor_consumer_reads_total";
/// Counter: every entry read, re-reads of pending entries and claimed entries included.
pub const RECORDS_TOTAL: &str = "processor_consumer_records_total";
/// Gauge: entries not yet delivered to the group (`XINFO GROUPS` `lag`); left untouched while
/// Redis reports the lag as unknown.
pub const LAG: &str = "processor_consumer_lag";
/// Gauge: 1 while Redis reports the group's lag as unknown (nil), else 0.
pub const LAG_UNKNOWN: &str = "processor_consumer_lag_unknown";
/// Gauge: entries delivered to the group but not acknowledged.
pub const PENDING: &str = "processor_consumer_pending";
/// Gauge: age of the oldest pending entry (now minus its id's time), 0 when none.
pub const OLDEST_PENDING_AGE: &str = "processor_consumer_oldest_pending_age_seconds";
/// Counter: entries taken over by `XAUTOCLAIM`.
pub const CLAIMED_TOTAL: &str = "processor_consumer_claimed_total";
/// Counter: entries moved to the dead-letter stream.
pub const DEAD_LETTERED_TOTAL: &str = "processor_consumer_dead_lettered_total";
/// Counter: ids sent in `XACK`.
pub const ACKS_TOTAL: &str = "processor_acks_total";
/// Counter: pending entries whose stream entry no longer existed (trimmed or deleted while
/// pending): acknowledged or dropped by Redis, never handed to the handler. Not in
/// `operations.md`'s list; added so such losses are visible.
pub const TRIMMED_TOTAL: &str = "processor_consumer_trimmed_total";

/// The `result` label values of [`READS_TOTAL`].
pub const READ_RESULTS: [&str; 3] = ["ok", "empty", "error"];

/// Describes this crate's metrics and registers every one of them, each label value included,
/// at 0 so dashboards see them from start-up. Call once after installing the recorder.
///
/// ```
/// stream_consumer::describe_metrics(); // a no-op without a recorder installed
/// ```
pub fn describe_metrics() {
    describe_counter!(
        READS_TOTAL,
        "Consumer-group reads (XREADGROUP calls) by result"
    );
    describe_counter!(
        RECORDS_TOTAL,
        "Stream entries read, re-reads of pending entries included"
    );
    describe_gauge!(
        LAG,
        "Entries not yet delivered to the consumer group (XINFO GROUPS lag)"
    );
    describe_gauge!(
        LAG_UNKNOWN,
        "1 while Redis reports the group's lag as unknown, else 0"
    );
    describe_gauge!(
        PENDING,
        "Entries delivered to the group but not acknowledged"
    );
    describe_gauge!(
        OLDEST_PENDING_AGE,
        Unit::Seconds,
        "Age of the oldest pending entry"
    );
    describe_counter!(
        CLAIMED_TOTAL,
        "Pending entries taken over from idle consumers (XAUTOCLAIM)"
    );
    describe_counter!(
        DEAD_LETTERED_TOTAL,
        "Entries moved to the dead-letter stream"
    );
    describe_counter!(ACKS_TOTAL, "Entry ids acknowledged (XACK)");
    describe_counter!(
        TRIMMED_TOTAL,
        "Pending entries whose stream entry no longer existed (trimmed or deleted)"
    );

    for result in READ_RESULTS {
        counter!(READS_TOTAL, "result" => result).increment(0);
    }
    for name in [
        RECORDS_TOTAL,
        CLAIMED_TOTAL,
        DEAD_LETTERED_TOTAL,
        ACKS_TOTAL,
        TRIMMED_TOTAL,
    ] {
        counter!(name).increment(0);
    }
    // Gauges appear with their first sample (the consumer samples right after connecting):
    // a made-up 0 for LAG is exactly the false reading LAG_UNKNOWN exists to avoid.
}

pub(crate) fn read(result: &'static str) {
    counter!(READS_TOTAL, "result" => result).increment(1);
}
