//! Runs async clean-up from synchronous code (`Drop`), on a thread with a runtime of its own.
//!
//! A `Drop` may run inside a test's runtime (where `block_on` would panic) or outside any
//! runtime; a fresh thread with a current-thread runtime works in both cases.

use std::future::Future;

/// Runs `make()`'s future to completion on a new thread with its own runtime and returns its
/// output; `None` when the runtime could not be built or the future panicked.
pub(crate) fn run_on_side_thread<F, Fut, T>(make: F) -> Option<T>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        Some(runtime.block_on(make()))
    })
    .join()
    .ok()
    .flatten()
}
