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
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::hub::{Fanout, Hub};

/// Batches buffered between the Redis reader and the fan-out.
const CHANNEL_BATCHES: usize = 16;

/// Reads and fans out until `cancel`.
pub(crate) async fn run(hub: Arc<Hub>, reader: TailReader, cancel: CancellationToken) {
    let (sink, mut batches) = mpsc::channel(CHANNEL_BATCHES);
    let reading = tokio::spawn(reader.run(sink, cancel.clone()));
    let mut decoder = Decoder::new();
    while let Some(batch) = batches.recv().await {
        for entry in &batch {
            process(&hub, &mut decoder, entry);
        }
    }
    match reading.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => warn!(%error, "live tail reader stopped with an error"),
        Err(error) => warn!(%error, "live tail reader task failed"),
    }
}

/// Decodes one entry and fans it out.
pub(crate) fn process(hub: &Hub, decoder: &mut Decoder, entry: &TailEntry) {
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
    if hub.fan_out(view, entry.redis_timestamp_ms) == Fanout::Orphan {
        hub.metrics.orphans.increment(1);
    }
}
