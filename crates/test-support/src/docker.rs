//! Servers from a Docker engine through `testcontainers-modules`.

/// The Docker engine's address when one is reachable.
pub(crate) fn engine() -> Option<String> {
    None
}

pub(crate) fn shared_redis(_engine: &str) -> Result<String, String> {
    Err("not implemented".to_owned())
}

pub(crate) fn shared_postgres(_engine: &str) -> Result<String, String> {
    Err("not implemented".to_owned())
}
