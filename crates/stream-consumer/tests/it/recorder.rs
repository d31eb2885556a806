//! A minimal global `metrics` recorder so tests can read counters.
//!
//! Counters are process-wide and tests run in parallel, so tests assert on deltas
//! (`after - before >= n`) of counters only they move, never on absolute values or gauges.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

#[derive(Default)]
struct Cell(AtomicU64);

impl CounterFn for Cell {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.0.fetch_max(value, Ordering::Relaxed);
    }
}

impl GaugeFn for Cell {
    fn increment(&self, _: f64) {}
    fn decrement(&self, _: f64) {}
    fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }
}

impl HistogramFn for Cell {
    fn record(&self, _: f64) {}
}

#[derive(Default)]
struct TestRecorder {
    cells: Mutex<HashMap<String, Arc<Cell>>>,
    described: Mutex<Vec<String>>,
}

impl TestRecorder {
    fn cell(&self, key: &Key) -> Arc<Cell> {
        self.cells
            .lock()
            .unwrap()
            .entry(render(key))
            .or_default()
            .clone()
    }
}

fn render(key: &Key) -> String {
    let mut s = key.name().to_owned();
    for label in key.labels() {
        s.push_str(&format!(",{}={}", label.key(), label.value()));
    }
    s
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, key: KeyName, _: Option<Unit>, _: SharedString) {
        self.described.lock().unwrap().push(key.as_str().to_owned());
    }
    fn describe_gauge(&self, key: KeyName, _: Option<Unit>, _: SharedString) {
        self.described.lock().unwrap().push(key.as_str().to_owned());
    }
    fn describe_histogram(&self, key: KeyName, _: Option<Unit>, _: SharedString) {
        self.described.lock().unwrap().push(key.as_str().to_owned());
    }
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.cell(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.cell(key))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.cell(key))
    }
}

fn recorder() -> &'static TestRecorder {
    static R: OnceLock<&'static TestRecorder> = OnceLock::new();
    R.get_or_init(|| {
        let r: &'static TestRecorder = Box::leak(Box::default());
        metrics::set_global_recorder(r).expect("only this module installs a recorder");
        r
    })
}

/// Installs the recorder (idempotent). Call before starting a consumer whose counters a test
/// reads.
pub(crate) fn install() {
    let _ = recorder();
}

/// The counter `name` with `labels` rendered as `,k=v` pairs (`""` for none).
pub(crate) fn counter(name: &str, labels: &str) -> u64 {
    install();
    let key = format!("{name}{labels}");
    recorder()
        .cells
        .lock()
        .unwrap()
        .get(&key)
        .map_or(0, |c| c.0.load(Ordering::Relaxed))
}

/// Whether `describe_metrics` described `name`.
pub(crate) fn described(name: &str) -> bool {
    install();
    recorder()
        .described
        .lock()
        .unwrap()
        .iter()
        .any(|d| d == name)
}

/// Whether `name` (with labels) has been registered.
pub(crate) fn registered(name: &str, labels: &str) -> bool {
    install();
    recorder()
        .cells
        .lock()
        .unwrap()
        .contains_key(&format!("{name}{labels}"))
}

#[test]
fn describe_metrics_describes_and_registers_everything() {
    install();
    stream_consumer::describe_metrics();
    use stream_consumer::metric_names::*;
    for name in [
        READS_TOTAL,
        RECORDS_TOTAL,
        LAG,
        LAG_UNKNOWN,
        PENDING,
        OLDEST_PENDING_AGE,
        CLAIMED_TOTAL,
        DEAD_LETTERED_TOTAL,
        ACKS_TOTAL,
        TRIMMED_TOTAL,
    ] {
        assert!(described(name), "{name} not described");
    }
    for result in READ_RESULTS {
        assert!(
            registered(READS_TOTAL, &format!(",result={result}")),
            "{READS_TOTAL}{{result={result}}} not registered"
        );
    }
    for name in [
        RECORDS_TOTAL,
        CLAIMED_TOTAL,
        DEAD_LETTERED_TOTAL,
        ACKS_TOTAL,
    ] {
        assert!(registered(name, ""), "{name} not registered");
    }
    assert_eq!(
        [
            RECORDS_TOTAL,
            CLAIMED_TOTAL,
            DEAD_LETTERED_TOTAL,
            ACKS_TOTAL,
            LAG,
            LAG_UNKNOWN,
            PENDING,
            OLDEST_PENDING_AGE,
        ],
        [
            "processor_consumer_records_total",
            "processor_consumer_claimed_total",
            "processor_consumer_dead_lettered_total",
            "processor_acks_total",
            "processor_consumer_lag",
            "processor_consumer_lag_unknown",
            "processor_consumer_pending",
            "processor_consumer_oldest_pending_age_seconds",
        ]
    );
    assert_eq!(READS_TOTAL, "processor_consumer_reads_total");
}
