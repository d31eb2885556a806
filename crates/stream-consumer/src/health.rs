//! A cheap, cloneable "is Redis reachable for this consumer?" answer for `/readyz`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use fred::prelude::*;

/// Up when both of the consumer's connections are established and its last Redis command
/// succeeded. Reading it costs two atomic loads and a read lock; no I/O.
///
/// ```no_run
/// # fn demo(consumer: &stream_consumer::Consumer) {
/// let health = consumer.health();
/// let status = if health.is_up() { 200 } else { 503 };
/// # let _ = status;
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Health {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    clients: Vec<Client>,
    last_ok: AtomicBool,
}

impl Health {
    pub(crate) fn new(clients: Vec<Client>) -> Self {
        Self {
            inner: Arc::new(Inner {
                clients,
                last_ok: AtomicBool::new(false),
            }),
        }
    }

    /// Whether Redis is reachable for this consumer right now.
    pub fn is_up(&self) -> bool {
        self.inner.last_ok.load(Ordering::Acquire)
            && self.inner.clients.iter().all(|c| c.is_connected())
    }

    pub(crate) fn clients(&self) -> &[Client] {
        &self.inner.clients
    }

    pub(crate) fn set(&self, ok: bool) {
        self.inner.last_ok.store(ok, Ordering::Release);
    }
}
