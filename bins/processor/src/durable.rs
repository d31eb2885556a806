//! The durable path's glue: the batch handler the consumer-group engine calls.
//!
//! For each batch: decode every entry (`teltonika_codec::stream_record`); leave malformed
//! entries pending as failed (`LeavePending`: the engine dead-letters them after
//! `REDIS_MAX_DELIVERIES`), counting `processor_consumer_decode_errors_total` and logging the
//! entry id and the failing field; write the decodable records in one batch through the
//! position writer's retrying path (a database outage is waited out there: nothing is ACKed
//! meanwhile and nothing new is read); dead-letter the rows PostgreSQL rejected, with its
//! message; ACK inserted and duplicate rows; feed the device state. Records whose write was
//! abandoned (shutdown during an outage, or a fatal fault) are answered `Retry`: they stay
//! pending and never count towards dead-lettering, since nothing is wrong with them.
//!
//! Not for: Redis mechanics (acknowledging, claiming, dead-letter writes: `stream-consumer`)
//! or SQL (`position-writer`).

use position_writer::{DeviceState, PositionWriter};
use stream_consumer::{Disposition, StreamEntry};
use teltonika_codec::stream_record::{Decoder, StreamRecord};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn};

/// Counter of stream entries that failed to decode (each delivery counts).
pub const DECODE_ERRORS_TOTAL: &str = "processor_consumer_decode_errors_total";

/// Registers this module's metrics at 0 (call after installing the recorder).
pub fn describe_metrics() {
    metrics::describe_counter!(
        DECODE_ERRORS_TOTAL,
        metrics::Unit::Count,
        "Stream entries that failed to decode (left pending, dead-lettered after REDIS_MAX_DELIVERIES)"
    );
    metrics::counter!(DECODE_ERRORS_TOTAL).increment(0);
}

/// Decodes, writes and judges each batch of the durable group.
pub struct DurableHandler {
    writer: PositionWriter,
    device_state: DeviceState,
    decoder: Decoder,
    /// Cancels a write waiting out a database outage (the shutdown of the durable stage).
    shutdown: CancellationToken,
    /// Cancelled when the handler meets a fault it cannot handle (e.g. a missing table):
    /// the process stops rather than dead-lettering good records.
    fatal: CancellationToken,
}

impl DurableHandler {
    /// A handler writing through `writer` and keeping `device_state` up to date.
    pub fn new(
        writer: PositionWriter,
        device_state: DeviceState,
        shutdown: CancellationToken,
        fatal: CancellationToken,
    ) -> Self {
        Self {
            writer,
            device_state,
            decoder: Decoder::new(),
            shutdown,
            fatal,
        }
    }

    /// One disposition per entry of `batch`, in order.
    pub async fn handle_batch(&mut self, batch: &[StreamEntry]) -> Vec<Disposition> {
        // An entry not judged below stays `Retry`: pending, and never dead-lettered for this
        // delivery (a good record must not move towards the dead-letter stream because its
        // write was interrupted).
        let mut dispositions = vec![Disposition::Retry; batch.len()];
        let mut records: Vec<StreamRecord> = Vec::with_capacity(batch.len());
        // `owners[i]` is the index in `batch` of `records[i]`.
        let mut owners: Vec<usize> = Vec::with_capacity(batch.len());

        for (index, entry) in batch.iter().enumerate() {
            let fields = entry.fields.iter().map(|(k, v)| (k.as_ref(), v.as_ref()));
            match self.decoder.decode_entry(fields) {
                Ok(record) => {
                    records.push(record);
                    owners.push(index);
                }
                Err(e) => {
                    metrics::counter!(DECODE_ERRORS_TOTAL).increment(1);
                    warn!(
                        entry_id = %entry.id,
                        field = e.field(),
                        deliveries = entry.deliveries,
                        error = %e,
                        "malformed stream entry left pending"
                    );
                    dispositions[index] = Disposition::LeavePending {
                        reason: format!("decode error: {e}"),
                    };
                }
            }
        }

        if !records.is_empty() {
            match self
                .writer
                .write_batch_retrying(&records, &self.shutdown)
                .await
            {
                Ok(outcome) => {
                    debug!(
                        rows = records.len(),
                        inserted = outcome.inserted,
                        duplicates = outcome.duplicates,
                        rejected = outcome.rejected.len(),
                        "batch written"
                    );
                    for rejected in &outcome.rejected {
                        let Some(&owner) = owners.get(rejected.index) else {
                            // The writer reports indices into the slice it was given; one
                            // outside it would be a writer bug. The owner is unknown, so no
                            // entry is dead-lettered for it.
                            error!(
                                index = rejected.index,
                                "writer reported a rejected row outside the batch"
                            );
                            continue;
                        };
                        warn!(
                            entry_id = %batch[owner].id,
                            sqlstate = %rejected.sqlstate,
                            error = %rejected.message,
                            "database rejected the row; dead-lettering the entry"
                        );
                        dispositions[owner] = Disposition::DeadLetter {
                            error: format!(
                                "database rejected the row (SQLSTATE {}): {}",
                                rejected.sqlstate, rejected.message
                            ),
                        };
                    }
                    // Every other row is committed (inserted or a duplicate).
                    for (record, &owner) in records.iter().zip(&owners) {
                        if dispositions[owner] == Disposition::Retry {
                            self.device_state.observe(record);
                            dispositions[owner] = Disposition::Ack;
                        }
                    }
                }
                Err(e) => {
                    if matches!(e, position_writer::Error::Cancelled) {
                        debug!(
                            rows = records.len(),
                            "write abandoned for shutdown; entries stay pending"
                        );
                    } else {
                        error!(
                            rows = records.len(),
                            first_entry_id = %batch[owners[0]].id,
                            error = %e,
                            "cannot write positions (not a transient outage); stopping"
                        );
                        self.fatal.cancel();
                    }
                    // The records' entries keep `Retry`: pending, never dead-lettered.
                }
            }
        }

        dispositions
    }
}

impl stream_consumer::BatchHandler for DurableHandler {
    async fn handle(&mut self, batch: &[StreamEntry]) -> Vec<Disposition> {
        self.handle_batch(batch).await
    }
}
