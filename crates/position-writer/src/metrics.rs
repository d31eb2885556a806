//! Metric names (operations.md: part of the contract) and their registration.
//!
//! The crate records through the `metrics` facade; `bins/processor` installs the recorder.

/// Counter of rows, labelled `status` = `inserted` | `duplicate` | `failed`
/// (`failed` counts the rows of every failed attempt, retries and bisection halves included).
pub const POSITION_WRITES_TOTAL: &str = "processor_position_writes_total";
/// Histogram of the duration of one write statement (one transaction attempt), in seconds.
pub const POSITION_WRITE_DURATION_SECONDS: &str = "processor_position_write_duration_seconds";
/// Gauge: devices currently held in the device-state LRU.
pub const DEVICE_STATE_SIZE: &str = "processor_device_state_size";
/// Counter: devices evicted from the device-state LRU to make room.
pub const DEVICE_STATE_EVICTIONS_TOTAL: &str = "processor_device_state_evictions_total";

/// The values of the `status` label of [`POSITION_WRITES_TOTAL`].
pub const WRITE_STATUSES: [&str; 3] = ["inserted", "duplicate", "failed"];

/// Describes every metric of this crate and registers each labelled counter at 0, so
/// dashboards see them from start-up. Call once after installing the recorder.
pub fn describe_metrics() {
    metrics::describe_counter!(
        POSITION_WRITES_TOTAL,
        metrics::Unit::Count,
        "Position rows by outcome: inserted, duplicate (already stored), failed (rows of a failed attempt)"
    );
    for status in WRITE_STATUSES {
        metrics::counter!(POSITION_WRITES_TOTAL, "status" => status).increment(0);
    }
    metrics::describe_histogram!(
        POSITION_WRITE_DURATION_SECONDS,
        metrics::Unit::Seconds,
        "Duration of one position write statement (one transaction attempt)"
    );
    // Registering the handle makes the histogram visible (with empty buckets) from start-up.
    let _ = metrics::histogram!(POSITION_WRITE_DURATION_SECONDS);
    metrics::describe_gauge!(
        DEVICE_STATE_SIZE,
        metrics::Unit::Count,
        "Devices held in the device-state cache"
    );
    metrics::gauge!(DEVICE_STATE_SIZE).set(0.0);
    metrics::describe_counter!(
        DEVICE_STATE_EVICTIONS_TOTAL,
        metrics::Unit::Count,
        "Devices evicted from the device-state cache (least recently seen first)"
    );
    metrics::counter!(DEVICE_STATE_EVICTIONS_TOTAL).increment(0);
}

pub(crate) fn count_rows(status: &'static str, rows: usize) {
    if rows > 0 {
        metrics::counter!(POSITION_WRITES_TOTAL, "status" => status).increment(rows as u64);
    }
}
