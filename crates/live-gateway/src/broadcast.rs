//! The broadcast consumer: reads every new stream record (the instance's own group, from the
//! tail, `NOACK`), decodes it, and fans it out.
//!
//! A record the live path cannot decode is skipped and counted; a record whose device is in
//! no event is an orphan, counted and sent to no one. The fan-out never awaits a connection.

use std::sync::Arc;

use live_protocol::PositionView;
use stream_consumer::{TailEntry, TailReader};
use teltonika_codec::stream_record::Decoder;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::hub::{Fanout, Hub, Touched};

/// Batches buffered between the Redis reader and the fan-out.
const CHANNEL_BATCHES: usize = 16;

/// Reads and fans out until `cancel`.
///
/// Write coalescing: positions are queued on their connections at once, but the writers are
/// woken at most once per `coalesce_window` — at once when the previous wake-up is older than
/// the window (a quiet stream adds no delay), else when the window ends. Under load each
/// writer then sends several frames per system call, and each client reads them with one.
pub(crate) async fn run(hub: Arc<Hub>, reader: TailReader, cancel: CancellationToken) {
    let (sink, mut batches) = mpsc::channel(CHANNEL_BATCHES);
    let reading = tokio::spawn(reader.run(sink, cancel.clone()));
    let window = hub.config.coalesce_window;
    let mut decoder = Decoder::new();
    let mut touched = Touched::default();
    let mut last_wake: Option<Instant> = None;
    loop {
        let batch = if touched.is_empty() {
            batches.recv().await
        } else {
            // `last_wake` is set: `touched` fills only after a wake-up decision below.
            let deadline = last_wake.map_or_else(Instant::now, |at| at + window);
            tokio::select! {
                // `recv` is cancel-safe: a batch is never lost to the timer.
                batch = batches.recv() => batch,
                () = tokio::time::sleep_until(deadline) => {
                    touched.wake_all();
                    last_wake = Some(Instant::now());
                    continue;
                }
            }
        };
        let Some(batch) = batch else {
            break;
        };
        for entry in &batch {
            process(&hub, &mut decoder, entry, &mut touched);
        }
        if touched.is_empty() {
            continue;
        }
        let now = Instant::now();
        if last_wake.is_none_or(|at| now.duration_since(at) >= window) {
            touched.wake_all();
            last_wake = Some(now);
        }
    }
    // The stream ended (shutting down): what was queued still goes out.
    touched.wake_all();
    match reading.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => warn!(%error, "live tail reader stopped with an error"),
        Err(error) => warn!(%error, "live tail reader task failed"),
    }
}

/// Decodes one entry and fans it out.
pub(crate) fn process(hub: &Hub, decoder: &mut Decoder, entry: &TailEntry, touched: &mut Touched) {
    hub.metrics.broadcast_records.increment(1);
    let record = match decoder.decode_entry(entry.fields.iter().map(|(k, v)| (k, v))) {
        Ok(record) => record,
        Err(error) => {
            hub.metrics.decode_errors.increment(1);
            debug!(entry_id = %entry.id, %error, "live path skipped an undecodable record");
            return;
        }
    };
    let view = PositionView {
        device_id: &record.device_id,
        ts: record.timestamp_ms(),
        lat: record.latitude,
        lon: record.longitude,
        speed: record.speed,
        course: record.angle,
    };
    if hub.fan_out(view, entry.redis_timestamp_ms, touched) == Fanout::Orphan {
        hub.metrics.orphans.increment(1);
    }
}
