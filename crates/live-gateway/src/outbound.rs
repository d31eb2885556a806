//! A connection's bounded outbound queue: control messages never dropped, positions conflated.
//!
//! Two queues in one structure, both consumed by the connection's writer task:
//! - **control**: `subscribed`, `unsubscribed`, `error`, pong and close replies, in order,
//!   never dropped (their number is bounded by the client's own, rate-limited, requests);
//! - **positions**: in arrival order, keyed by (event, device). When the owner asks for
//!   conflation (the client is behind), a newer position for a queued key replaces the queued
//!   one in place (`conflated`); a client that keeps up gets every record. Past
//!   `max_positions` the oldest queued one is dropped (`overflow`).
//!
//! The writer always takes control messages before positions, so a `subscribed` pushed before
//! a topic's first position is always written before it. Pure data structure: no I/O, no
//! locking (the owner wraps it in a mutex).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;

/// Internal key of an event (the UUID as a number: cheap to hash and copy).
pub(crate) type EventKey = u128;

/// Key of a queued position: one slot per (event, device).
pub(crate) type PositionKey = (EventKey, Arc<str>);

/// A serialised position ready to write, with its record's time in Redis (for the latency
/// histogram).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueuedPosition {
    /// The `position` message's JSON, shared among every connection of the topic.
    pub(crate) bytes: Bytes,
    /// Milliseconds part of the stream entry id (the time Redis accepted the record).
    pub(crate) redis_ms: u64,
}

/// A control item: written in order, never dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Control {
    /// A protocol message (JSON text frame).
    Text(Bytes),
}

/// What happened to a pushed position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued in a new slot.
    Queued,
    /// Replaced a queued position for the same (event, device).
    Conflated,
    /// Queued, after dropping this many of the oldest queued positions.
    Overflowed(usize),
}

/// One item the writer takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    /// A control item.
    Control(Control),
    /// A position.
    Position(QueuedPosition),
}

/// One queued position; `None` once purged (skipped when popped).
#[derive(Debug)]
struct Slot {
    key: PositionKey,
    position: Option<QueuedPosition>,
}

/// The queue. See the module doc.
#[derive(Debug)]
pub(crate) struct Outbound {
    control: VecDeque<Control>,
    /// Positions in arrival order. Slot `i` has sequence number `head_seq + i`.
    positions: VecDeque<Slot>,
    head_seq: u64,
    /// Sequence number of the newest queued position of each key.
    latest: HashMap<PositionKey, u64>,
    /// Queued positions (slots not purged).
    live: usize,
    max_positions: usize,
}

impl Outbound {
    /// An empty queue holding at most `max_positions` positions (at least 1).
    pub(crate) fn new(max_positions: usize) -> Self {
        Self {
            control: VecDeque::new(),
            positions: VecDeque::new(),
            head_seq: 0,
            latest: HashMap::new(),
            live: 0,
            max_positions: max_positions.max(1),
        }
    }

    /// Queues a control item (never dropped).
    pub(crate) fn push_control(&mut self, control: Control) {
        self.control.push_back(control);
    }

    /// Queues a position. With `conflate`, a queued position for the same key is replaced in
    /// place (its place in the queue, hence the device's order, is kept); without it, the
    /// position is appended (a client that keeps up gets every record). Past the bound the
    /// oldest queued positions are dropped.
    pub(crate) fn push_position(
        &mut self,
        key: PositionKey,
        position: QueuedPosition,
        conflate: bool,
    ) -> Pushed {
        if conflate && let Some(&seq) = self.latest.get(&key) {
            let index = usize::try_from(seq - self.head_seq).unwrap_or(usize::MAX);
            if let Some(slot) = self.positions.get_mut(index)
                && slot.position.is_some()
            {
                slot.position = Some(position);
                return Pushed::Conflated;
            }
        }
        let mut dropped = 0;
        while self.live >= self.max_positions {
            if self.pop_position().is_none() {
                break;
            }
            dropped += 1;
        }
        let seq = self.head_seq + self.positions.len() as u64;
        self.positions.push_back(Slot {
            key: key.clone(),
            position: Some(position),
        });
        self.latest.insert(key, seq);
        self.live += 1;
        if dropped == 0 {
            Pushed::Queued
        } else {
            Pushed::Overflowed(dropped)
        }
    }

    fn pop_position(&mut self) -> Option<QueuedPosition> {
        while let Some(slot) = self.positions.pop_front() {
            let seq = self.head_seq;
            self.head_seq += 1;
            if let Some(position) = slot.position {
                self.live -= 1;
                if self.latest.get(&slot.key) == Some(&seq) {
                    self.latest.remove(&slot.key);
                }
                return Some(position);
            }
        }
        None
    }

    /// Takes the next item: control first, then the oldest position.
    pub(crate) fn pop(&mut self) -> Option<Item> {
        if let Some(control) = self.control.pop_front() {
            return Some(Item::Control(control));
        }
        let position = self.pop_position().map(Item::Position);
        if self.live == 0 {
            self.release_memory();
        }
        position
    }

    /// Takes the next control item only (used while closing: positions are abandoned).
    pub(crate) fn pop_control(&mut self) -> Option<Control> {
        self.control.pop_front()
    }

    /// Removes every queued position of `event` (after an unsubscribe).
    pub(crate) fn purge_event(&mut self, event: EventKey) {
        self.positions
            .retain(|slot| slot.position.is_some() && slot.key.0 != event);
        self.latest.clear();
        for (index, slot) in self.positions.iter().enumerate() {
            self.latest
                .insert(slot.key.clone(), self.head_seq + index as u64);
        }
        self.live = self.positions.len();
        if self.live == 0 {
            self.release_memory();
        }
    }

    /// Queued positions.
    pub(crate) fn positions_len(&self) -> usize {
        self.live
    }

    /// The bound on queued positions.
    pub(crate) fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// True when nothing is queued.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.control.is_empty() && self.live == 0
    }

    /// An idle connection should cost as little as possible: give back the memory of a burst.
    fn release_memory(&mut self) {
        self.positions.clear();
        self.latest.clear();
        if self.positions.capacity() > 64 {
            self.positions.shrink_to_fit();
        }
        if self.latest.capacity() > 64 {
            self.latest.shrink_to_fit();
        }
        if self.control.is_empty() && self.control.capacity() > 16 {
            self.control.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(text: &str) -> QueuedPosition {
        QueuedPosition {
            bytes: Bytes::from(text.to_owned()),
            redis_ms: 1,
        }
    }

    fn key(event: u128, device: &str) -> PositionKey {
        (event, Arc::from(device))
    }

    fn drain(queue: &mut Outbound) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(item) = queue.pop() {
            out.push(match item {
                Item::Control(Control::Text(b)) => format!("c:{}", String::from_utf8_lossy(&b)),
                Item::Position(p) => format!("p:{}", String::from_utf8_lossy(&p.bytes)),
            });
        }
        out
    }

    #[test]
    fn control_goes_before_positions() {
        let mut q = Outbound::new(10);
        assert_eq!(
            q.push_position(key(1, "a"), pos("a1"), true),
            Pushed::Queued
        );
        q.push_control(Control::Text(Bytes::from_static(b"sub")));
        assert_eq!(drain(&mut q), ["c:sub", "p:a1"]);
        assert!(q.is_empty());
    }

    #[test]
    fn newer_position_replaces_the_queued_one_in_place() {
        let mut q = Outbound::new(10);
        q.push_position(key(1, "a"), pos("a1"), true);
        q.push_position(key(1, "b"), pos("b1"), true);
        assert_eq!(
            q.push_position(key(1, "a"), pos("a2"), true),
            Pushed::Conflated
        );
        // Same device, other event: its own slot.
        assert_eq!(
            q.push_position(key(2, "a"), pos("a1@2"), true),
            Pushed::Queued
        );
        assert_eq!(drain(&mut q), ["p:a2", "p:b1", "p:a1@2"]);
    }

    #[test]
    fn without_conflation_every_position_is_kept_in_order() {
        let mut q = Outbound::new(10);
        q.push_position(key(1, "a"), pos("a1"), false);
        q.push_position(key(1, "a"), pos("a2"), false);
        // Conflating now replaces the newest queued one for the key, not the oldest.
        assert_eq!(
            q.push_position(key(1, "a"), pos("a3"), true),
            Pushed::Conflated
        );
        assert_eq!(drain(&mut q), ["p:a1", "p:a3"]);
    }

    #[test]
    fn overflow_drops_the_oldest() {
        let mut q = Outbound::new(2);
        q.push_position(key(1, "a"), pos("a"), true);
        q.push_position(key(1, "b"), pos("b"), true);
        assert_eq!(
            q.push_position(key(1, "c"), pos("c"), true),
            Pushed::Overflowed(1)
        );
        assert_eq!(q.positions_len(), 2);
        assert_eq!(drain(&mut q), ["p:b", "p:c"]);
    }

    #[test]
    fn purge_removes_one_event_only() {
        let mut q = Outbound::new(10);
        q.push_position(key(1, "a"), pos("a@1"), true);
        q.push_position(key(2, "a"), pos("a@2"), true);
        q.push_position(key(1, "b"), pos("b@1"), true);
        q.purge_event(1);
        assert_eq!(drain(&mut q), ["p:a@2"]);
    }

    #[test]
    fn a_slot_taken_and_refilled_keeps_one_entry() {
        let mut q = Outbound::new(10);
        q.push_position(key(1, "a"), pos("a1"), true);
        assert_eq!(drain(&mut q), ["p:a1"]);
        q.push_position(key(1, "a"), pos("a2"), true);
        q.push_position(key(1, "a"), pos("a3"), true);
        assert_eq!(drain(&mut q), ["p:a3"]);
    }

    #[test]
    fn stale_order_entries_are_skipped_after_purge_and_refill() {
        let mut q = Outbound::new(2);
        q.push_position(key(1, "a"), pos("a1"), true);
        q.push_position(key(2, "b"), pos("b1"), true);
        q.purge_event(1);
        q.push_position(key(1, "a"), pos("a2"), true);
        // Full: the oldest live entry (b1) goes.
        assert_eq!(
            q.push_position(key(1, "c"), pos("c1"), true),
            Pushed::Overflowed(1)
        );
        assert_eq!(drain(&mut q), ["p:a2", "p:c1"]);
    }
}
