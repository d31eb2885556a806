//! Coalescing of identical concurrent questions plus a bounded TTL cache of answers.
//!
//! The first asker of a key starts the request in a spawned task (so an asker that gives up,
//! e.g. a closed socket, does not cancel the answer for the others); later askers of the same
//! key wait on a `watch` channel. Only `Ok` answers are cached; errors reach every waiter and
//! are then forgotten. One mutex guards both the cache and the in-flight map, never across an
//! `.await`.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use lru::LruCache;
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::DirectusError;

type Answer<V> = Result<V, DirectusError>;

/// The shared state: cache and in-flight requests.
pub(crate) struct Coalescer<K, V> {
    ttl: Duration,
    state: Mutex<State<K, V>>,
}

struct State<K, V> {
    cache: LruCache<K, (V, Instant)>,
    inflight: HashMap<K, watch::Receiver<Option<Answer<V>>>>,
}

impl<K, V> Coalescer<K, V>
where
    K: Hash + Eq + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A coalescer whose cache keeps at most `capacity` answers for `ttl` (0 = no cache).
    pub(crate) fn new(ttl: Duration, capacity: NonZeroUsize) -> Self {
        Coalescer {
            ttl,
            state: Mutex::new(State {
                cache: LruCache::new(capacity),
                inflight: HashMap::new(),
            }),
        }
    }

    /// The cached answer for `key`, or the answer of the request in flight for it, or the
    /// answer of a new request made with `fetch`.
    pub(crate) async fn get<F, Fut>(self: &Arc<Self>, key: K, fetch: F) -> Answer<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Answer<V>> + Send + 'static,
    {
        self.ask(key, fetch, true).await
    }

    /// The answer for `key`: from the cache when `use_cache` and it holds a fresh one, else
    /// the request in flight for `key`, else a new request made with `fetch` (whose answer is
    /// cached as usual).
    pub(crate) async fn ask<F, Fut>(
        self: &Arc<Self>,
        key: K,
        fetch: F,
        use_cache: bool,
    ) -> Answer<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Answer<V>> + Send + 'static,
    {
        let mut receiver = {
            let mut state = self.state.lock();
            if let Some((value, expires)) = state.cache.get(&key) {
                if use_cache && Instant::now() < *expires {
                    return Ok(value.clone());
                }
                state.cache.pop(&key);
            }
            if let Some(receiver) = state.inflight.get(&key) {
                receiver.clone()
            } else {
                let (sender, receiver) = watch::channel(None);
                state.inflight.insert(key.clone(), receiver.clone());
                let request = fetch();
                let guard = InflightGuard {
                    owner: Arc::clone(self),
                    key: Some(key),
                };
                tokio::spawn(async move {
                    let answer = request.await;
                    guard.finish(&answer);
                    // No receiver left is fine: every asker gave up.
                    let _ = sender.send(Some(answer));
                });
                receiver
            }
        };
        match receiver.wait_for(Option::is_some).await {
            Ok(answer) => answer.clone().unwrap_or(Err(DirectusError::Internal)),
            // The task ended without sending (panicked or the runtime is shutting down).
            Err(_) => Err(DirectusError::Internal),
        }
    }

    /// Number of cached answers (expired ones included until touched).
    #[cfg(test)]
    pub(crate) fn cached_len(&self) -> usize {
        self.state.lock().cache.len()
    }
}

/// Removes the in-flight entry when the request task ends, even by panic, so a failed task
/// cannot wedge its key.
struct InflightGuard<K: Hash + Eq, V> {
    owner: Arc<Coalescer<K, V>>,
    key: Option<K>,
}

impl<K: Hash + Eq, V: Clone> InflightGuard<K, V> {
    /// Caches an `Ok` answer (when the TTL allows) and forgets the in-flight entry, in one step.
    fn finish(mut self, answer: &Answer<V>) {
        if let Some(key) = self.key.take() {
            let mut state = self.owner.state.lock();
            state.inflight.remove(&key);
            if let Ok(value) = answer
                && !self.owner.ttl.is_zero()
            {
                let expires = Instant::now() + self.owner.ttl;
                state.cache.put(key, (value.clone(), expires));
            }
        }
    }
}

impl<K: Hash + Eq, V> Drop for InflightGuard<K, V> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.owner.state.lock().inflight.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn coalescer(ttl_ms: u64, capacity: usize) -> Arc<Coalescer<u32, u32>> {
        Arc::new(Coalescer::new(
            Duration::from_millis(ttl_ms),
            NonZeroUsize::new(capacity).unwrap(),
        ))
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_identical_asks_make_one_request() {
        let c = coalescer(0, 8);
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let c = Arc::clone(&c);
            let calls = Arc::clone(&calls);
            tasks.push(tokio::spawn(async move {
                c.get(1, || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok(7)
                })
                .await
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), Ok(7));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(c.cached_len(), 0, "ttl 0 caches nothing");
    }

    #[tokio::test(start_paused = true)]
    async fn answers_expire_after_ttl_and_errors_are_not_cached() {
        let c = coalescer(1_000, 8);
        let calls = Arc::new(AtomicUsize::new(0));
        let ask = |value: Answer<u32>| {
            let calls = Arc::clone(&calls);
            let c = Arc::clone(&c);
            async move {
                c.get(1, move || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    value
                })
                .await
            }
        };
        assert_eq!(
            ask(Err(DirectusError::Timeout)).await,
            Err(DirectusError::Timeout)
        );
        assert_eq!(ask(Ok(1)).await, Ok(1));
        assert_eq!(calls.load(Ordering::SeqCst), 2, "error not cached");
        tokio::time::advance(Duration::from_millis(999)).await;
        assert_eq!(ask(Ok(2)).await, Ok(1), "cached");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(ask(Ok(3)).await, Ok(3), "expired");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn cache_is_bounded() {
        let c = coalescer(60_000, 3);
        for key in 0..10 {
            assert_eq!(c.get(key, move || async move { Ok(key) }).await, Ok(key));
        }
        assert_eq!(c.cached_len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn an_asker_giving_up_does_not_cancel_the_others() {
        let c = coalescer(0, 8);
        let first = {
            let c = Arc::clone(&c);
            tokio::spawn(async move {
                c.get(1, || async {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok(5)
                })
                .await
            })
        };
        tokio::task::yield_now().await;
        let second = {
            let c = Arc::clone(&c);
            tokio::spawn(async move { c.get(1, || async { Ok(99) }).await })
        };
        tokio::task::yield_now().await;
        first.abort();
        assert_eq!(second.await.unwrap(), Ok(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_request_frees_its_key() {
        let c = coalescer(0, 8);
        let answer = c
            .get(1, || async {
                if true {
                    panic!("request task panics");
                }
                Ok(0)
            })
            .await;
        assert_eq!(answer, Err(DirectusError::Internal));
        assert_eq!(c.get(1, || async { Ok(4) }).await, Ok(4));
    }
}
