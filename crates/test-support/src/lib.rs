//! Dev-only test support: gives every test real services (Redis, PostgreSQL, a Directus stub).
//!
//! Not for production code: only `[dev-dependencies]` may name this crate.

/// The environment variable that turns "no service available, skip" into a test failure.
pub const REQUIRE_SERVICES_VAR: &str = "REQUIRE_SERVICES";

/// True when the run demands real services (CI sets `REQUIRE_SERVICES=1`).
pub fn services_required() -> bool {
    std::env::var(REQUIRE_SERVICES_VAR).is_ok_and(|value| value == "1" || value == "true")
}
