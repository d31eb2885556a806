//! A Redis Streams consumer-group engine on [fred](https://docs.rs/fred) 10, and a `NOACK`
//! tail reader for live fan-out.
//!
//! **What it is for:** reading one stream through a consumer group with at-least-once
//! delivery: resume, acknowledge, take over from dead consumers, dead-letter what never
//! succeeds, reconnect by itself, and report lag. **What it is NOT for:** it knows nothing
//! about positions, PostgreSQL or WebSockets (the handler decides what an entry means), it
//! never reads the environment (the binary builds a [`ConsumerConfig`]), and it never
//! installs a metrics recorder.
//!
//! # Lifecycle of a [`Consumer`]
//! 1. **Ensure the group**: `XGROUP CREATE <stream> <group> 0 MKSTREAM` (`BUSYGROUP` is fine).
//! 2. **Drain the own pending list** (`XREADGROUP … <id>` from `0`, cursor advancing past
//!    each batch until an empty reply): entries delivered to this consumer name before a
//!    crash, restart, reconnect or error are handled before anything new. This repeats after
//!    every error and every reconnect of the reader.
//! 3. **Read new entries** (`XREADGROUP … COUNT n BLOCK ms >`) on a dedicated connection with
//!    no client-side timeout shorter than `BLOCK` + 5 s and no re-send after a reconnect.
//!    Reading batch N+1 overlaps handling batch N; never more (memory is bounded by two
//!    batches whatever the backlog).
//! 4. The [`BatchHandler`] answers per entry: [`Disposition::Ack`],
//!    [`Disposition::LeavePending`] (failed: counts towards dead-lettering),
//!    [`Disposition::Retry`] (not handled: never dead-lettered for it) or
//!    [`Disposition::DeadLetter`]. Acknowledgements (plus
//!    dead-lettered ids, plus pending entries found deleted from the stream) go out in **one
//!    `XACK` per batch**, on a second, control connection.
//! 5. **Reclaimer**: every `claim_interval`, `XAUTOCLAIM` pages (`COUNT n`, until the cursor
//!    is back at `0-0`) take over entries idle longer than `claim_min_idle` — from dead
//!    consumers, and this consumer's own left-pending entries, which is how those get their
//!    next delivery. Claimed entries go through the same handler. Ids whose entries were
//!    trimmed (the reply's third part) are counted and are already gone from the list.
//! 6. **Dead-letter rule**: an entry answered `LeavePending` whose delivery count (`XPENDING`)
//!    has reached `max_deliveries`, or one the handler dead-letters, is `XADD`ed to
//!    `dead_letter_stream` with its original fields plus `error` and `source_id` (its id),
//!    **then** acknowledged: a crash between the two duplicates, never loses.
//! 7. `NOGROUP` (stream or group deleted) recreates the group and drains again; other errors
//!    back off (capped, jittered) while fred reconnects (exponential policy, forever).
//! 8. **Stop** (the `CancellationToken`): a blocked read is woken with
//!    `CLIENT UNBLOCK <id> TIMEOUT`; batches already delivered are handled and acknowledged;
//!    no further read is issued. `run` then closes its Redis connections, unless
//!    [`Consumer::keep_open_on_stop`] asked it not to: the application closes them later with
//!    a [`Closer`] (the Processor closes Redis after its metrics server).
//!
//! Step 1 can be taken ahead of `run` with [`Consumer::connect`], so `/readyz` reports
//! Redis's state while the application still prepares its handler.
//!
//! # Metrics (`metrics` facade; names from `operations.md`)
//! | name | kind | meaning |
//! | --- | --- | --- |
//! | `processor_consumer_reads_total{result="ok\|empty\|error"}` | counter | `XREADGROUP` calls |
//! | `processor_consumer_records_total` | counter | entries read, re-reads and claims included |
//! | `processor_consumer_claimed_total` | counter | entries taken over by `XAUTOCLAIM` |
//! | `processor_consumer_dead_lettered_total` | counter | entries moved to the dead-letter stream |
//! | `processor_acks_total` | counter | ids sent in `XACK` |
//! | `processor_consumer_trimmed_total` | counter | pending entries found deleted/trimmed (extra) |
//! | `processor_consumer_lag` | gauge | `XINFO GROUPS` `lag`, sampled every 10 s; not touched while unknown |
//! | `processor_consumer_lag_unknown` | gauge | 1 while Redis reports the lag as nil |
//! | `processor_consumer_pending` | gauge | delivered, not acknowledged (whole group) |
//! | `processor_consumer_oldest_pending_age_seconds` | gauge | now − the oldest pending id's time |
//!
//! `processor_consumer_decode_errors_total` belongs to the application's handler.
//! [`describe_metrics`] describes them all and registers the counters at 0.
//!
//! # The tail reader
//! [`TailReader`] serves the live path: group `live-broadcast-{INSTANCE_ID}` created at `$`
//! and moved to the tail on start, `XREADGROUP … NOACK >` in a loop, batches of
//! [`TailEntry`] (id, fields, Redis timestamp from the id) into a bounded channel.

mod backoff;
mod config;
mod consumer;
mod entry;
mod error;
mod health;
mod metrics;
mod ops;
mod tail;

pub use crate::config::{ConsumerConfig, TailConfig};
pub use crate::consumer::{BatchHandler, Closer, Consumer};
pub use crate::entry::{Disposition, StreamEntry, TailEntry, entry_id_millis};
pub use crate::error::{Error, Result};
pub use crate::health::Health;
pub use crate::metrics::describe_metrics;
pub use crate::tail::TailReader;

/// The metric names this crate records, for dashboards and tests.
pub mod metric_names {
    pub use crate::metrics::{
        ACKS_TOTAL, CLAIMED_TOTAL, DEAD_LETTERED_TOTAL, LAG, LAG_UNKNOWN, OLDEST_PENDING_AGE,
        PENDING, READ_RESULTS, READS_TOTAL, RECORDS_TOTAL, TRIMMED_TOTAL,
    };
}

/// Re-exported so handlers need not depend on `bytes` to name field values.
pub use bytes::Bytes;
