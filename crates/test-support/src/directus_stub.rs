//! The Directus stub (`directus.md`, "The Directus stub"): a tiny in-process HTTP server.
//!
//! Configured with cookie → user and bearer token → user maps and user → allowed event ids:
//! - `GET /users/me`: 200 `{"data":{"id","email","first_name","last_name","role"}}` for a
//!   known cookie (`directus_session_token`) or bearer token, 200 `{"data":null}` for an
//!   expired one, 401 otherwise;
//! - `GET /items/events/<id>`: 200 `{"data":{"id":…}}` if the user may see it, 404 for an
//!   event marked missing, 403 otherwise, 401 without known credentials;
//! - anything else: 404.
//!
//! It can answer slowly ([`DirectusStub::set_delay`]), with 500 ([`DirectusStub::set_failing`])
//! or with a malformed body ([`DirectusStub::set_malformed`]), and counts requests per
//! endpoint (to prove coalescing and caching).
//!
//! ```no_run
//! # async fn demo() {
//! use test_support::{DirectusStub, StubUser};
//! let stub = DirectusStub::start().await;
//! let user = StubUser::new("9f0c1d2e-0000-4000-8000-000000000001", "ana@example.com");
//! stub.add_cookie("session-ana", &user);
//! stub.allow(&user.id, "3b1f0000-0000-4000-8000-0000000000e1");
//! // DIRECTUS_URL = stub.url()
//! assert_eq!(stub.requests(test_support::directus_stub::Endpoint::UsersMe), 0);
//! # }
//! ```

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The Directus session cookie's name.
pub const SESSION_COOKIE: &str = "directus_session_token";

/// A Directus user as `/users/me` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StubUser {
    /// The user's id (a UUID string).
    pub id: String,
    /// E-mail address.
    pub email: String,
    /// First name (`null` when `None`).
    pub first_name: Option<String>,
    /// Last name (`null` when `None`).
    pub last_name: Option<String>,
    /// Role id (`null` when `None`).
    pub role: Option<String>,
}

impl StubUser {
    /// A user with the given id and e-mail, named "Test User", with a fixed role id.
    pub fn new(id: impl Into<String>, email: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            email: email.into(),
            first_name: Some("Test".to_owned()),
            last_name: Some("User".to_owned()),
            role: Some("5a1e0000-0000-4000-8000-00000000a01e".to_owned()),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "role": self.role,
        })
    }
}

/// The endpoints the stub counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET /users/me`.
    UsersMe,
    /// `GET /items/events/<id>`.
    Events,
    /// Anything else.
    Other,
}

/// One request as the stub received it (for asserting that credentials are forwarded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// Which endpoint.
    pub endpoint: Endpoint,
    /// Path and query, e.g. `/users/me?fields=id,email,first_name,last_name,role`.
    pub path_and_query: String,
    /// The raw `Cookie` header, if any.
    pub cookie: Option<String>,
    /// The raw `Authorization` header, if any.
    pub authorization: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    users: HashMap<String, StubUser>,
    cookies: HashMap<String, String>,
    bearers: HashMap<String, String>,
    expired: HashSet<String>,
    allowed: HashMap<String, HashSet<String>>,
    missing_events: HashSet<String>,
    delay: Duration,
    failing: bool,
    malformed: bool,
    counts: HashMap<Endpoint, u64>,
    log: Vec<RecordedRequest>,
}

/// The running stub; stops serving when dropped.
#[derive(Debug)]
pub struct DirectusStub {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl DirectusStub {
    /// Starts the stub on a random loopback port, on the current tokio runtime.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|error| panic!("test-support: stub bind: {error}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|error| panic!("local_addr: {error}"));
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(handle(&state, request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, state, task }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The base URL, e.g. `http://127.0.0.1:41234` (for `DIRECTUS_URL`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Makes `directus_session_token=<cookie>` authenticate as `user`.
    pub fn add_cookie(&self, cookie: &str, user: &StubUser) {
        self.with(|s| {
            s.users.insert(user.id.clone(), user.clone());
            s.cookies.insert(cookie.to_owned(), user.id.clone());
            s.expired.remove(cookie);
        });
    }

    /// Makes `Authorization: Bearer <token>` authenticate as `user`.
    pub fn add_bearer(&self, token: &str, user: &StubUser) {
        self.with(|s| {
            s.users.insert(user.id.clone(), user.clone());
            s.bearers.insert(token.to_owned(), user.id.clone());
            s.expired.remove(token);
        });
    }

    /// Revokes a cookie or bearer token: it becomes unknown (401 everywhere).
    pub fn revoke(&self, credential: &str) {
        self.with(|s| {
            s.cookies.remove(credential);
            s.bearers.remove(credential);
            s.expired.remove(credential);
        });
    }

    /// Expires a cookie or bearer token: `/users/me` answers 200 `{"data":null}` (Directus's
    /// anonymous answer) and the events endpoint 401.
    pub fn expire(&self, credential: &str) {
        self.with(|s| {
            s.expired.insert(credential.to_owned());
        });
    }

    /// Lets `user_id` see `event_id`.
    pub fn allow(&self, user_id: &str, event_id: &str) {
        self.with(|s| {
            s.allowed
                .entry(user_id.to_owned())
                .or_default()
                .insert(event_id.to_owned());
        });
    }

    /// Withdraws `user_id`'s permission on `event_id`.
    pub fn disallow(&self, user_id: &str, event_id: &str) {
        self.with(|s| {
            if let Some(events) = s.allowed.get_mut(user_id) {
                events.remove(event_id);
            }
        });
    }

    /// Makes `/items/events/<event_id>` answer 404 (for any authenticated user).
    pub fn mark_missing(&self, event_id: &str) {
        self.with(|s| {
            s.missing_events.insert(event_id.to_owned());
        });
    }

    /// Delays every answer by `delay` (zero: answer at once).
    pub fn set_delay(&self, delay: Duration) {
        self.with(|s| s.delay = delay);
    }

    /// Answers every request with 500 while `failing`.
    pub fn set_failing(&self, failing: bool) {
        self.with(|s| s.failing = failing);
    }

    /// Answers every request with 200 and a body that is not JSON while `malformed`.
    pub fn set_malformed(&self, malformed: bool) {
        self.with(|s| s.malformed = malformed);
    }

    /// How many requests `endpoint` received.
    pub fn requests(&self, endpoint: Endpoint) -> u64 {
        self.with(|s| s.counts.get(&endpoint).copied().unwrap_or(0))
    }

    /// Every request received so far, in order.
    pub fn request_log(&self) -> Vec<RecordedRequest> {
        self.with(|s| s.log.clone())
    }

    /// Resets the request counters and log.
    pub fn reset_counts(&self) {
        self.with(|s| {
            s.counts.clear();
            s.log.clear();
        });
    }
}

impl Drop for DirectusStub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn header(request: &Request<Incoming>, name: hyper::header::HeaderName) -> Option<String> {
    let values: Vec<&str> = request
        .headers()
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join("; "))
}

fn session_cookie(cookie_header: &str) -> Option<&str> {
    cookie_header.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == SESSION_COOKIE).then_some(value)
    })
}

fn respond(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

fn error_body(message: &str, code: &str) -> serde_json::Value {
    serde_json::json!({"errors": [{"message": message, "extensions": {"code": code}}]})
}

enum Credential {
    Known(String),
    Expired,
    Unknown,
}

async fn handle(state: &Mutex<State>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let endpoint = if path == "/users/me" {
        Endpoint::UsersMe
    } else if path.starts_with("/items/events/") {
        Endpoint::Events
    } else {
        Endpoint::Other
    };
    let cookie = header(&request, hyper::header::COOKIE);
    let authorization = header(&request, hyper::header::AUTHORIZATION);
    let (delay, failing, malformed) = {
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        *s.counts.entry(endpoint).or_default() += 1;
        s.log.push(RecordedRequest {
            endpoint,
            path_and_query: request
                .uri()
                .path_and_query()
                .map_or_else(|| path.clone(), |pq| pq.as_str().to_owned()),
            cookie: cookie.clone(),
            authorization: authorization.clone(),
        });
        (s.delay, s.failing, s.malformed)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if failing {
        return respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            error_body("An unexpected error occurred.", "INTERNAL_SERVER_ERROR"),
        );
    }
    if malformed {
        let mut response = Response::new(Full::new(Bytes::from_static(b"<html>oops</html>")));
        *response.status_mut() = StatusCode::OK;
        return response;
    }
    if endpoint == Endpoint::Other || request.method() != hyper::Method::GET {
        return respond(
            StatusCode::NOT_FOUND,
            error_body("Route doesn't exist.", "ROUTE_NOT_FOUND"),
        );
    }

    let s = state.lock().unwrap_or_else(|e| e.into_inner());
    let lookup = |token: &str, map: &HashMap<String, String>| {
        if s.expired.contains(token) {
            Credential::Expired
        } else {
            map.get(token)
                .map_or(Credential::Unknown, |user| Credential::Known(user.clone()))
        }
    };
    let mut credential = Credential::Unknown;
    if let Some(token) = authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
    {
        credential = lookup(token.trim(), &s.bearers);
    }
    if matches!(credential, Credential::Unknown)
        && let Some(token) = cookie.as_deref().and_then(session_cookie)
    {
        credential = lookup(token, &s.cookies);
    }
    let unauthorized = || {
        respond(
            StatusCode::UNAUTHORIZED,
            error_body("Invalid user credentials.", "INVALID_CREDENTIALS"),
        )
    };
    match endpoint {
        Endpoint::UsersMe => match credential {
            Credential::Known(user_id) => match s.users.get(&user_id) {
                Some(user) => respond(StatusCode::OK, serde_json::json!({"data": user.to_json()})),
                None => unauthorized(),
            },
            Credential::Expired => respond(StatusCode::OK, serde_json::json!({"data": null})),
            Credential::Unknown => unauthorized(),
        },
        _ => {
            let Credential::Known(user_id) = credential else {
                return unauthorized();
            };
            let event_id = path.trim_start_matches("/items/events/").to_owned();
            if s.missing_events.contains(&event_id) {
                respond(
                    StatusCode::NOT_FOUND,
                    error_body("Item not found.", "NOT_FOUND"),
                )
            } else if s
                .allowed
                .get(&user_id)
                .is_some_and(|events| events.contains(&event_id))
            {
                respond(
                    StatusCode::OK,
                    serde_json::json!({"data": {"id": event_id}}),
                )
            } else {
                respond(
                    StatusCode::FORBIDDEN,
                    error_body("You don't have permission to access this.", "FORBIDDEN"),
                )
            }
        }
    }
}
