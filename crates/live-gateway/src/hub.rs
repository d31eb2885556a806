//! The shared state of a running gateway: the subscription registry, the open connections, the
//! device→event map, and the fan-out of one stream record to every subscribed connection.
//!
//! Registry shape: topic → an immutable, shared list of subscribed connections, replaced on
//! every (un)subscribe (copy-on-write). The broadcaster clones that list's `Arc` under a read
//! lock held for a hash lookup, then pushes to each connection's queue without awaiting: it
//! never touches a socket, so a slow client cannot delay it.
//!
//! Lock order (to stay deadlock-free): a connection's state lock may be held while taking the
//! registry lock, never the reverse; the broadcaster holds neither while taking the other.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use arc_swap::ArcSwap;
use bytes::Bytes;
use live_protocol::{PositionView, Topic, encode_position};
use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};
use parking_lot::{Mutex, RwLock};

use crate::config::LiveConfig;
use crate::conn::Conn;
use crate::device_map::DeviceEventMap;
use crate::metrics as names;
use crate::outbound::EventKey;

/// Metric handles resolved once (the hot path must not look names up per frame).
pub(crate) struct LiveMetrics {
    pub(crate) connections: Gauge,
    pub(crate) subscriptions: Gauge,
    pub(crate) broadcast_records: Counter,
    pub(crate) orphans: Counter,
    pub(crate) decode_errors: Counter,
    pub(crate) messages_sent: Counter,
    pub(crate) conflated: Counter,
    pub(crate) overflow: Counter,
    pub(crate) snapshot_duration: Histogram,
    pub(crate) snapshot_errors: Counter,
    pub(crate) delivery_latency: Histogram,
}

impl LiveMetrics {
    fn new() -> Self {
        Self {
            connections: gauge!(names::CONNECTIONS),
            subscriptions: gauge!(names::SUBSCRIPTIONS),
            broadcast_records: counter!(names::BROADCAST_RECORDS),
            orphans: counter!(names::BROADCAST_ORPHANS),
            decode_errors: counter!(names::DECODE_ERRORS),
            messages_sent: counter!(names::MESSAGES_SENT),
            conflated: counter!(names::POSITIONS_DROPPED, "reason" => "conflated"),
            overflow: counter!(names::POSITIONS_DROPPED, "reason" => "overflow"),
            snapshot_duration: histogram!(names::SNAPSHOT_DURATION),
            snapshot_errors: counter!(names::SNAPSHOT_ERRORS),
            delivery_latency: histogram!(names::DELIVERY_LATENCY),
        }
    }

    /// Counts a connection attempt's result (`processor_live_connections_total`).
    pub(crate) fn connection_result(result: &'static str) {
        counter!(names::CONNECTIONS_TOTAL, "result" => result).increment(1);
    }

    /// Counts a subscribe request's result (`processor_live_subscribe_total`).
    pub(crate) fn subscribe_result(result: &'static str) {
        counter!(names::SUBSCRIBE_TOTAL, "result" => result).increment(1);
    }
}

/// The subscribers of one topic.
pub(crate) struct TopicSubscribers {
    pub(crate) topic: Topic,
    pub(crate) conns: Vec<Arc<Conn>>,
}

/// What the fan-out did with one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fanout {
    /// The device is in no event.
    Orphan,
    /// Offered to this many connections (0 when nobody watches its events).
    Delivered(usize),
}

/// The shared state. See the module doc.
pub(crate) struct Hub {
    pub(crate) config: LiveConfig,
    pub(crate) metrics: LiveMetrics,
    pub(crate) device_map: Arc<ArcSwap<DeviceEventMap>>,
    pub(crate) directus: directus_auth::DirectusClient,
    pub(crate) pool: deadpool_postgres::Pool,
    topics: RwLock<HashMap<EventKey, Arc<TopicSubscribers>>>,
    connections: Mutex<HashMap<u64, Arc<Conn>>>,
    next_conn_id: AtomicU64,
    /// Connection slots in use: upgraded connections plus upgrades in progress.
    slots: AtomicUsize,
}

impl Hub {
    pub(crate) fn new(
        config: LiveConfig,
        directus: directus_auth::DirectusClient,
        pool: deadpool_postgres::Pool,
    ) -> Self {
        Self {
            config,
            metrics: LiveMetrics::new(),
            device_map: Arc::new(ArcSwap::from_pointee(DeviceEventMap::default())),
            directus,
            pool,
            topics: RwLock::new(HashMap::new()),
            connections: Mutex::new(HashMap::new()),
            next_conn_id: AtomicU64::new(1),
            slots: AtomicUsize::new(0),
        }
    }

    /// Takes a connection slot; `false` when `max_connections` are in use.
    pub(crate) fn try_reserve_slot(&self) -> bool {
        let max = self.config.max_connections;
        self.slots
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used < max).then_some(used + 1)
            })
            .is_ok()
    }

    /// Gives a slot back.
    pub(crate) fn release_slot(&self) {
        self.slots.fetch_sub(1, Ordering::AcqRel);
    }

    /// A fresh connection id.
    pub(crate) fn next_conn_id(&self) -> u64 {
        self.next_conn_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Records an upgraded connection (for shutdown and re-validation).
    pub(crate) fn add_connection(&self, conn: &Arc<Conn>) {
        self.connections.lock().insert(conn.id, Arc::clone(conn));
        self.metrics.connections.increment(1.0);
    }

    /// Forgets a finished connection: out of the registry and the connection list.
    pub(crate) fn remove_connection(&self, conn: &Arc<Conn>) {
        let events = conn.shut();
        for event in &events {
            self.unregister(*event, conn.id);
        }
        self.metrics.subscriptions.decrement(events.len() as f64);
        if self.connections.lock().remove(&conn.id).is_some() {
            self.metrics.connections.decrement(1.0);
        }
    }

    /// Every open connection (a snapshot of the list).
    pub(crate) fn connections(&self) -> Vec<Arc<Conn>> {
        self.connections.lock().values().cloned().collect()
    }

    /// Number of open (upgraded) connections.
    pub(crate) fn connection_count(&self) -> usize {
        self.connections.lock().len()
    }

    /// Adds `conn` to `topic`'s subscribers (no-op when already there).
    pub(crate) fn register(&self, event: EventKey, topic: &Topic, conn: &Arc<Conn>) {
        let mut topics = self.topics.write();
        let current = topics.get(&event);
        if current.is_some_and(|subs| subs.conns.iter().any(|c| c.id == conn.id)) {
            return;
        }
        let mut conns = current.map_or_else(Vec::new, |subs| subs.conns.clone());
        conns.push(Arc::clone(conn));
        topics.insert(
            event,
            Arc::new(TopicSubscribers {
                topic: topic.clone(),
                conns,
            }),
        );
    }

    /// Removes connection `conn_id` from `event`'s subscribers.
    pub(crate) fn unregister(&self, event: EventKey, conn_id: u64) {
        let mut topics = self.topics.write();
        let Some(current) = topics.get(&event) else {
            return;
        };
        if !current.conns.iter().any(|c| c.id == conn_id) {
            return;
        }
        let conns: Vec<Arc<Conn>> = current
            .conns
            .iter()
            .filter(|c| c.id != conn_id)
            .cloned()
            .collect();
        if conns.is_empty() {
            topics.remove(&event);
        } else {
            let topic = current.topic.clone();
            topics.insert(event, Arc::new(TopicSubscribers { topic, conns }));
        }
    }

    fn subscribers(&self, event: EventKey) -> Option<Arc<TopicSubscribers>> {
        self.topics.read().get(&event).cloned()
    }

    /// Fans one decoded record out: serialised once per topic, the bytes shared by every
    /// subscribed connection of that topic. The connections are not woken: each topic offered
    /// to lands in `touched`, whose connections the caller wakes when its coalescing window
    /// ends ([`Touched::wake_all`]).
    pub(crate) fn fan_out(
        &self,
        position: PositionView<'_>,
        redis_ms: u64,
        touched: &mut Touched,
    ) -> Fanout {
        let map = self.device_map.load();
        let events = map.events_of(position.device_id);
        if events.is_empty() {
            return Fanout::Orphan;
        }
        let mut offered = 0;
        let mut device: Option<Arc<str>> = None;
        for &event in events {
            let Some(subs) = self.subscribers(event) else {
                continue;
            };
            let bytes: Bytes = encode_position(&subs.topic, position);
            let device = device.get_or_insert_with(|| Arc::from(position.device_id));
            for conn in &subs.conns {
                conn.offer_position(self, event, device, position.ts, &bytes, redis_ms);
                offered += 1;
            }
            // The latest list replaces an older one: a connection that subscribed meanwhile
            // got this position and must be woken; one that left needs no wake-up.
            touched.topics.insert(event, subs);
        }
        Fanout::Delivered(offered)
    }
}

/// The topics offered positions since the last wake-up (the broadcaster's coalescing window).
#[derive(Default)]
pub(crate) struct Touched {
    topics: HashMap<EventKey, Arc<TopicSubscribers>>,
}

impl Touched {
    /// True when no position waits for a wake-up.
    pub(crate) fn is_empty(&self) -> bool {
        self.topics.is_empty()
    }

    /// Wakes the writer of every connection of every touched topic, and forgets them.
    pub(crate) fn wake_all(&mut self) {
        for (_, subs) in self.topics.drain() {
            for conn in &subs.conns {
                conn.wake();
            }
        }
    }
}

/// The internal key of a topic's event.
pub(crate) fn event_key(topic: &Topic) -> EventKey {
    // A Topic always holds a canonical hyphenated UUID, which always parses.
    uuid::Uuid::parse_str(topic.event_id()).map_or(0, |id| id.as_u128())
}
