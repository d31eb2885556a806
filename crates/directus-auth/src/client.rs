//! The Directus client: the two questions of directus.md, coalesced, cached and measured.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Once};
use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

use crate::coalesce::Coalescer;
use crate::credentials::{CredentialKey, Credentials};
use crate::error::{DirectusError, Result};
use crate::metrics::{self, endpoint, outcome};

/// Default per-request timeout (`DIRECTUS_TIMEOUT_MS`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(5_000);
/// Default answer cache TTL (`DIRECTUS_CACHE_TTL_MS`).
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_millis(30_000);
/// Default bound on cached answers (per question kind).
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;
/// Largest Directus response body read, in bytes; a bigger one is malformed.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// How many distinct credentials [`DirectusClient::revalidate`] asks about at once.
pub const REVALIDATE_CONCURRENCY: usize = 16;

/// The `fields` asked of `/users/me`.
const USERS_ME_PATH: &str = "/users/me?fields=id,email,first_name,last_name,role";

/// How to reach Directus. Built by the binary from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectusConfig {
    /// Base URL (`DIRECTUS_URL`), `http://` or `https://`, with or without a path prefix.
    pub url: String,
    /// Per-request timeout (`DIRECTUS_TIMEOUT_MS`), covering connect, headers and body.
    pub timeout: Duration,
    /// How long answers are cached (`DIRECTUS_CACHE_TTL_MS`); zero disables the cache.
    pub cache_ttl: Duration,
    /// Most answers kept per question kind (least recently used evicted first).
    pub cache_capacity: NonZeroUsize,
}

impl DirectusConfig {
    /// A config for `url` with the spec's defaults.
    pub fn new(url: impl Into<String>) -> Self {
        DirectusConfig {
            url: url.into(),
            timeout: DEFAULT_TIMEOUT,
            cache_ttl: DEFAULT_CACHE_TTL,
            cache_capacity: NonZeroUsize::new(DEFAULT_CACHE_CAPACITY).unwrap_or(NonZeroUsize::MIN),
        }
    }
}

/// A Directus user, as `/users/me` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct User {
    /// The user's id (a UUID).
    pub id: String,
    /// E-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// First name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default)]
    pub last_name: Option<String>,
    /// The role's id (Directus may also expand it to an object; its `id` is kept).
    #[serde(default, deserialize_with = "role_id")]
    pub role: Option<String>,
}

/// Accepts `"role": "<id>"`, `"role": null` or `"role": {"id": "<id>", …}`.
fn role_id<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Role {
        Id(String),
        Object { id: String },
    }
    Ok(
        Option::<Role>::deserialize(deserializer)?.map(|role| match role {
            Role::Id(id) | Role::Object { id } => id,
        }),
    )
}

/// Directus's answer to "who is this?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A valid session of this user.
    User(Arc<User>),
    /// 401/403, or `{"data": null}`: expired, anonymous, or bad credentials.
    Unauthorized,
}

/// Directus's answer to "may this user see this event?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventAccess {
    /// 200: the user may read the event.
    Allowed,
    /// 403: the user's role cannot read it.
    Forbidden,
    /// 404: no such event (for this user).
    NotFound,
    /// 401: the session is no longer valid (the gateway closes the connection with 4401).
    Unauthorized,
}

/// One shared HTTP client for Directus with coalescing and a TTL cache. Cheap to clone.
///
/// ```no_run
/// # async fn demo() -> Result<(), directus_auth::DirectusError> {
/// use directus_auth::{Credentials, DirectusClient, DirectusConfig, Identity};
/// let client = DirectusClient::new(DirectusConfig::new("http://127.0.0.1:8055"))?;
/// let creds = Credentials::cookie("directus_session_token=…")?;
/// match client.who_is(&creds).await? {
///     Identity::User(user) => println!("hello {}", user.id),
///     Identity::Unauthorized => println!("log in again"),
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DirectusClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// Base URL without a trailing slash.
    base: String,
    users: Arc<Coalescer<CredentialKey, Identity>>,
    events: Arc<Coalescer<(CredentialKey, Box<str>), EventAccess>>,
}

impl std::fmt::Debug for DirectusClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectusClient").finish_non_exhaustive()
    }
}

impl DirectusClient {
    /// Builds the client (and its connection pool).
    ///
    /// Installs rustls's `ring` crypto provider as the process default if none is installed
    /// yet (reqwest is built without a provider of its own, see the crate docs).
    ///
    /// # Errors
    /// [`DirectusError::InvalidConfig`] when the URL is not an http(s) URL or the HTTP client
    /// cannot be built.
    pub fn new(config: DirectusConfig) -> Result<Self> {
        let url = reqwest::Url::parse(&config.url)
            .map_err(|error| DirectusError::InvalidConfig(format!("DIRECTUS_URL: {error}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(DirectusError::InvalidConfig(
                "DIRECTUS_URL must be an http:// or https:// URL".to_owned(),
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(DirectusError::InvalidConfig(
                "DIRECTUS_URL must not have a query or fragment".to_owned(),
            ));
        }
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            // Never retry: a 4xx is a final answer, and a 5xx/timeout is reported, not hidden.
            .retry(reqwest::retry::never())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| DirectusError::InvalidConfig(error.without_url().to_string()))?;
        let base = url.as_str().trim_end_matches('/').to_owned();
        Ok(DirectusClient {
            inner: Arc::new(Inner {
                http,
                base,
                users: Arc::new(Coalescer::new(config.cache_ttl, config.cache_capacity)),
                events: Arc::new(Coalescer::new(config.cache_ttl, config.cache_capacity)),
            }),
        })
    }

    /// Who is this? — `GET /users/me?fields=id,email,first_name,last_name,role` with the
    /// credentials forwarded unchanged.
    ///
    /// # Errors
    /// A [`DirectusError`] when Directus gave no usable answer (timeout, connection failure,
    /// unexpected status, 200 without `data` or not JSON). Never cached.
    pub async fn who_is(&self, credentials: &Credentials) -> Result<Identity> {
        self.ask_identity(credentials, true).await
    }

    /// `/users/me`, coalesced with the identical question in flight; answered from the cache
    /// only when `use_cache` ([`revalidate`](Self::revalidate) must notice a session revoked
    /// since the last answer, so it never is).
    async fn ask_identity(&self, credentials: &Credentials, use_cache: bool) -> Result<Identity> {
        let inner = Arc::clone(&self.inner);
        let credentials = credentials.clone();
        self.inner
            .users
            .ask(
                credentials.key(),
                move || async move { inner.fetch_identity(&credentials).await },
                use_cache,
            )
            .await
    }

    /// May this user see this event? — `GET /items/events/<uuid>?fields=id` with the
    /// credentials forwarded unchanged. `event_id` is a hyphenated UUID (any case).
    ///
    /// # Errors
    /// [`DirectusError::InvalidEventId`] for an id that is not a UUID (nothing is sent), or a
    /// [`DirectusError`] when Directus gave no usable answer (any status but 200/401/403/404,
    /// timeout, connection failure). Never cached.
    pub async fn may_see_event(
        &self,
        credentials: &Credentials,
        event_id: &str,
    ) -> Result<EventAccess> {
        let event_id = canonical_uuid(event_id).ok_or(DirectusError::InvalidEventId)?;
        let inner = Arc::clone(&self.inner);
        let credentials = credentials.clone();
        let key = (credentials.key(), event_id.clone().into_boxed_str());
        self.inner
            .events
            .get(key, move || async move {
                inner.fetch_event_access(&credentials, &event_id).await
            })
            .await
    }

    /// Re-asks `/users/me` for many connections' credentials: one question per distinct
    /// credential (at most [`REVALIDATE_CONCURRENCY`] at a time, coalesced like
    /// [`who_is`](Self::who_is) but never answered from the cache — a session revoked since the
    /// last answer must be noticed now; the fresh answers refresh the cache). The answer maps
    /// each distinct [`CredentialKey`] to its
    /// outcome; the caller closes (4401) the connections whose answer is
    /// `Ok(Identity::Unauthorized)` and keeps the others (an error is not a logout).
    pub async fn revalidate<'a, I>(
        &self,
        credentials: I,
    ) -> HashMap<CredentialKey, Result<Identity>>
    where
        I: IntoIterator<Item = &'a Credentials>,
    {
        let mut distinct: HashMap<CredentialKey, &'a Credentials> = HashMap::new();
        for creds in credentials {
            distinct.entry(creds.key()).or_insert(creds);
        }
        let mut pending: Vec<(CredentialKey, Credentials)> = distinct
            .into_iter()
            .map(|(key, creds)| (key, creds.clone()))
            .collect();
        let mut answers = HashMap::with_capacity(pending.len());
        let mut running = tokio::task::JoinSet::new();
        loop {
            while running.len() < REVALIDATE_CONCURRENCY
                && let Some((key, creds)) = pending.pop()
            {
                let client = self.clone();
                running.spawn(async move { (key, client.ask_identity(&creds, false).await) });
            }
            match running.join_next().await {
                Some(Ok((key, answer))) => {
                    answers.insert(key, answer);
                }
                // A panicked task: its credential is simply missing from the answer (kept).
                Some(Err(_)) => {}
                None => break,
            }
        }
        answers
    }
}

impl Inner {
    async fn fetch_identity(&self, credentials: &Credentials) -> Result<Identity> {
        let url = format!("{}{USERS_ME_PATH}", self.base);
        let started = Instant::now();
        let result = self
            .get(&url, credentials)
            .await
            .and_then(|(status, body)| match status {
                200 => parse_users_me(&body),
                401 | 403 => Ok(Identity::Unauthorized),
                other => Err(DirectusError::Status(other)),
            });
        let label = match &result {
            Ok(Identity::User(_)) => outcome::OK,
            Ok(Identity::Unauthorized) => outcome::UNAUTHORIZED,
            Err(_) => outcome::ERROR,
        };
        finish(endpoint::USERS_ME, label, started, &result);
        result
    }

    async fn fetch_event_access(
        &self,
        credentials: &Credentials,
        event_id: &str,
    ) -> Result<EventAccess> {
        let url = format!("{}/items/events/{event_id}?fields=id", self.base);
        let started = Instant::now();
        let result = self
            .get(&url, credentials)
            .await
            .and_then(|(status, _body)| match status {
                200 => Ok(EventAccess::Allowed),
                401 => Ok(EventAccess::Unauthorized),
                403 => Ok(EventAccess::Forbidden),
                404 => Ok(EventAccess::NotFound),
                other => Err(DirectusError::Status(other)),
            });
        let label = match &result {
            Ok(EventAccess::Allowed) => outcome::OK,
            Ok(EventAccess::Unauthorized) => outcome::UNAUTHORIZED,
            Ok(EventAccess::Forbidden) => outcome::FORBIDDEN,
            Ok(EventAccess::NotFound) => outcome::NOT_FOUND,
            Err(_) => outcome::ERROR,
        };
        finish(endpoint::EVENTS, label, started, &result);
        result
    }

    /// One GET with the credentials; returns the status and the (bounded) body. The whole
    /// exchange, body included, is bounded by the client's timeout.
    async fn get(&self, url: &str, credentials: &Credentials) -> Result<(u16, Vec<u8>)> {
        let (name, value) = credentials.header();
        let mut response = self
            .http
            .get(url)
            .header(name, value)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(DirectusError::from_reqwest)?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        // Read the body even when it is not used, so the connection goes back to the pool.
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(DirectusError::from_reqwest)?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(DirectusError::Malformed(format!(
                    "body over {MAX_BODY_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, body))
    }
}

/// Parses a 200 `/users/me` body: `{"data": {...}}` → user, `{"data": null}` → unauthorized,
/// anything else → malformed.
fn parse_users_me(body: &[u8]) -> Result<Identity> {
    #[derive(Deserialize)]
    struct Envelope {
        // `Option<Option<_>>` tells a missing `data` (outer None) from `"data": null`.
        #[serde(default, deserialize_with = "present")]
        data: Option<Option<User>>,
    }
    fn present<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Option<User>>, D::Error> {
        Option::<User>::deserialize(deserializer).map(Some)
    }
    let envelope: Envelope = serde_json::from_slice(body)
        .map_err(|error| DirectusError::Malformed(format!("users/me body: {error}")))?;
    match envelope.data {
        None => Err(DirectusError::Malformed(
            "users/me body has no `data` key".to_owned(),
        )),
        Some(None) => Ok(Identity::Unauthorized),
        Some(Some(user)) => Ok(Identity::User(Arc::new(user))),
    }
}

/// Records metrics and a debug line for one request (no credentials, no URL).
fn finish<T>(endpoint: &'static str, outcome: &'static str, started: Instant, result: &Result<T>) {
    let seconds = started.elapsed().as_secs_f64();
    metrics::record(endpoint, outcome, seconds);
    match result {
        Ok(_) => tracing::debug!(endpoint, outcome, seconds, "directus answered"),
        Err(error) => tracing::warn!(endpoint, outcome, seconds, %error, "directus gave no answer"),
    }
}

/// The lowercase form of a hyphenated UUID, or `None` when `id` is not one.
fn canonical_uuid(id: &str) -> Option<String> {
    let bytes = id.as_bytes();
    if bytes.len() != 36 {
        return None;
    }
    let ok = bytes.iter().enumerate().all(|(index, &byte)| {
        if matches!(index, 8 | 13 | 18 | 23) {
            byte == b'-'
        } else {
            byte.is_ascii_hexdigit()
        }
    });
    ok.then(|| id.to_ascii_lowercase())
}

/// reqwest is built with `rustls-no-provider`: install `ring` unless a provider is already set.
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Losing a race with another installer is fine: a provider is installed either way.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_me_bodies() {
        let user = parse_users_me(
            br#"{"data":{"id":"u1","email":"a@b.c","first_name":"A","last_name":null,"role":"r1"}}"#,
        )
        .unwrap();
        let Identity::User(user) = user else {
            panic!("{user:?}")
        };
        assert_eq!(user.id, "u1");
        assert_eq!(user.email.as_deref(), Some("a@b.c"));
        assert_eq!(user.last_name, None);
        assert_eq!(user.role.as_deref(), Some("r1"));

        let expanded = parse_users_me(br#"{"data":{"id":"u1","role":{"id":"r2","name":"x"}}}"#);
        let Ok(Identity::User(user)) = expanded else {
            panic!("{expanded:?}")
        };
        assert_eq!(user.role.as_deref(), Some("r2"));

        assert_eq!(
            parse_users_me(br#"{"data":null}"#),
            Ok(Identity::Unauthorized)
        );
        for malformed in [
            &br#"{}"#[..],
            br#"{"errors":[]}"#,
            br#"not json"#,
            b"",
            br#"{"data":[]}"#,
            br#"{"data":{"email":"no id"}}"#,
            br#"{"data":{"id":5}}"#,
            br#"[]"#,
        ] {
            assert!(
                matches!(parse_users_me(malformed), Err(DirectusError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(malformed)
            );
        }
    }

    #[test]
    fn event_ids_are_checked_and_lowercased() {
        assert_eq!(
            canonical_uuid("8D1F0C2A-5B7E-4C1D-9A3F-2E6B8C0D4F11").as_deref(),
            Some("8d1f0c2a-5b7e-4c1d-9a3f-2e6b8c0d4f11")
        );
        for bad in [
            "",
            "../users/me",
            "8d1f0c2a5b7e4c1d9a3f2e6b8c0d4f11",
            "8d1f0c2a-5b7e-4c1d-9a3f-2e6b8c0d4f1?",
        ] {
            assert_eq!(canonical_uuid(bad), None, "{bad}");
        }
    }

    #[test]
    fn config_is_validated() {
        for bad in ["", "ftp://x", "not a url", "http://x/?a=b"] {
            assert!(
                matches!(
                    DirectusClient::new(DirectusConfig::new(bad)),
                    Err(DirectusError::InvalidConfig(_))
                ),
                "{bad}"
            );
        }
        let client =
            DirectusClient::new(DirectusConfig::new("https://cms.example/directus/")).unwrap();
        assert_eq!(client.inner.base, "https://cms.example/directus");
    }
}
