//! Asks Directus who a WebSocket client is and whether it may see an event.
//!
//! What it is for: the two questions of `directus.md` — `GET /users/me` ([`DirectusClient::who_is`])
//! and `GET /items/events/<uuid>` ([`DirectusClient::may_see_event`]) — asked with the
//! client's own credentials forwarded unchanged ([`Credentials`]), over one pooled HTTP client
//! with a per-request timeout and no retries. Identical concurrent questions (same
//! credentials, same event) are coalesced into one request; answers are cached for a short
//! TTL (errors never are). Final answers (unauthorized, forbidden, not found) are `Ok` values,
//! failures to get an answer are [`DirectusError`]s, so the two never mix. Every request is
//! measured ([`describe_metrics`]). [`DirectusClient::revalidate`] re-asks `/users/me` for many
//! connections with one request per distinct credential.
//!
//! What it is NOT for: interpreting cookies or tokens (Directus decides), logging credentials
//! (never: `Credentials`'s `Debug` is redacted and caches are keyed by a hash), or reading the
//! environment (the binary builds a [`DirectusConfig`]).
//!
//! TLS: reqwest is built with `rustls-no-provider` and this crate installs rustls's `ring`
//! provider when none is installed, so `https://` Directus URLs work without the slow
//! aws-lc-rs C build.

mod client;
mod coalesce;
mod credentials;
mod error;
pub mod metrics;

pub use client::{
    DEFAULT_CACHE_CAPACITY, DEFAULT_CACHE_TTL, DEFAULT_TIMEOUT, DirectusClient, DirectusConfig,
    EventAccess, Identity, MAX_BODY_BYTES, REVALIDATE_CONCURRENCY, User,
};
pub use credentials::{CredentialKey, CredentialKind, Credentials};
pub use error::{DirectusError, Result};
pub use metrics::describe_metrics;
