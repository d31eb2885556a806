//! Servers from the local binaries (`redis-server`, `initdb`/`postgres`).
//!
//! (Being written: the shared servers and owned restartable servers land next.)

use std::path::PathBuf;

/// The `redis-server` binary on `PATH`, if any.
pub fn find_redis_server() -> Option<PathBuf> {
    None
}

/// The directory holding `initdb` and `postgres`, if any.
pub fn find_postgres_bin_dir() -> Option<PathBuf> {
    None
}

pub(crate) fn shared_redis() -> Result<String, String> {
    Err("not implemented".to_owned())
}

pub(crate) fn shared_postgres() -> Result<String, String> {
    Err("not implemented".to_owned())
}
