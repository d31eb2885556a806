//! A tokio WebSocket client for the live protocol (feature `client`).
//!
//! [`spawn`] starts one background task per connection and returns a [`ClientHandle`]
//! (`subscribe` / `unsubscribe` / `close`) plus a receiver of [`ClientEvent`]s. The task:
//! connects with a cookie or bearer token ([`Auth`]), reconnects with capped, jittered
//! exponential backoff, resubscribes every held topic after a reconnect, treats
//! [`ClientConfig::idle_timeout`] (60 s) without any message as a dead link, and answers pings.
//! It stops for good on close code 4401 or an HTTP 401 refusal (the credentials are no longer
//! valid: reconnecting cannot help), and on the close codes that name a client bug — 1002
//! (protocol error), 1007 (invalid UTF-8), 1009 (frame too big) — which reconnecting would
//! only repeat (`docs/live-protocol.md`, Reconnecting).
//!
//! For load tests, [`ClientConfig::raw_positions`] hands `position` frames over as raw bytes
//! without parsing them (detected by their fixed prefix), keeping per-message cost low.
//!
//! `ws://` and `wss://`. A `wss://` URL is TLS (rustls with the `ring` provider, TLS 1.2 and
//! 1.3), the server's certificate verified against the system's trust store through
//! `rustls-platform-verifier` — or against whatever [`ClientConfig::tls`] says, e.g. a private CA.
//! A `wss://` URL never falls back to plaintext: a TLS failure is a
//! [`ClientEvent::Disconnected`] whose reason names the cause (unknown issuer, name mismatch…),
//! and the client retries with its backoff like any other connect failure.
//!
//! Implementation note: fastwebsockets' `read_frame` is not cancel-safe, so a reader task owns
//! the read half and forwards frames over a channel, while the connection task owns the write
//! half and `select!`s over frames, commands and the idle timer.

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fastwebsockets::{FragmentCollectorRead, Frame, OpCode, Payload, WebSocket, WebSocketError};
use http::header::{AUTHORIZATION, CONNECTION, COOKIE, HOST, ORIGIN, UPGRADE};
use http_body_util::Empty;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use rand::Rng;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, timeout};

use crate::{ClientMessage, ServerMessage, Topic, close};

/// The rustls this client links, for building a [`ClientConfig::tls`] of the same version.
pub use rustls;

/// How the client authenticates the upgrade. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// A raw `Cookie` header value, e.g. `directus_session_token=…`.
    Cookie(String),
    /// A bearer token, sent as `Authorization: Bearer <token>`.
    Bearer(String),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Cookie(_) => f.write_str("Auth::Cookie(<redacted>)"),
            Auth::Bearer(_) => f.write_str("Auth::Bearer(<redacted>)"),
        }
    }
}

/// Client settings. [`ClientConfig::new`] gives the protocol's defaults.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `ws://host[:port]/path` or `wss://host[:port]/path`.
    pub url: String,
    /// TLS settings for `wss://` URLs. `None` (the default): the system's trust store through
    /// the platform verifier, no client certificate. Give your own to trust a private CA or to
    /// present a client certificate (build it on [`rustls::crypto::ring`], the provider this
    /// crate links).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Credentials for the upgrade (none: the server answers 401).
    pub auth: Option<Auth>,
    /// An `Origin` header to send (browsers always do; other clients usually do not).
    pub origin: Option<String>,
    /// No message at all for this long = dead link: drop and reconnect. Default 60 s.
    pub idle_timeout: Duration,
    /// First reconnect delay. Default 500 ms.
    pub backoff_initial: Duration,
    /// Largest reconnect delay. Default 30 s.
    pub backoff_max: Duration,
    /// Timeout of the TCP connect plus the upgrade. Default 10 s.
    pub connect_timeout: Duration,
    /// Hand `position` frames over unparsed as [`ClientEvent::RawPosition`].
    pub raw_positions: bool,
    /// Capacity of the event channel (the task waits when the application lags).
    pub event_capacity: usize,
    /// Largest server message accepted (snapshots can be large). Default 16 MiB.
    pub max_message_size: usize,
}

impl ClientConfig {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        ClientConfig {
            url: url.into(),
            tls: None,
            auth: None,
            origin: None,
            idle_timeout: Duration::from_secs(60),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            raw_positions: false,
            event_capacity: 1024,
            max_message_size: 16 << 20,
        }
    }
}

/// What the client tells the application.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The upgrade succeeded; held topics have just been (re)subscribed.
    Connected,
    /// A server message.
    Message(ServerMessage),
    /// A `position` frame, unparsed (only with [`ClientConfig::raw_positions`]).
    RawPosition(Bytes),
    /// A text frame that is not a known server message (kept, not dropped).
    Unparsed(Bytes),
    /// The connection failed or was lost; the client will reconnect after a backoff.
    Disconnected {
        /// Why (no secrets).
        reason: String,
        /// The HTTP status of a refused upgrade.
        status: Option<u16>,
        /// The close code sent by the server.
        close_code: Option<u16>,
    },
    /// The client stopped for good: [`ClientHandle::close`], the session is invalid
    /// (close 4401 / HTTP 401), or the server named a client bug (close 1002, 1007, 1009).
    /// The channel ends after this event.
    Closed {
        /// Why.
        reason: String,
    },
}

/// Errors of the client's handle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The client task has stopped.
    #[error("the live client has stopped")]
    Stopped,
}

enum Command {
    Subscribe(Topic),
    Unsubscribe(Topic),
    Close,
}

/// Controls a running client. Cheap to clone; the client stops when every handle is dropped.
#[derive(Debug, Clone)]
pub struct ClientHandle {
    commands: mpsc::Sender<Command>,
}

impl ClientHandle {
    /// Subscribes to `topic` now (when connected) and after every reconnect.
    ///
    /// # Errors
    /// [`ClientError::Stopped`] when the client has stopped.
    pub async fn subscribe(&self, topic: Topic) -> Result<(), ClientError> {
        self.send(Command::Subscribe(topic)).await
    }

    /// Unsubscribes from `topic` and forgets it.
    ///
    /// # Errors
    /// [`ClientError::Stopped`] when the client has stopped.
    pub async fn unsubscribe(&self, topic: Topic) -> Result<(), ClientError> {
        self.send(Command::Unsubscribe(topic)).await
    }

    /// Closes the connection (close code 1000) and stops the client.
    ///
    /// # Errors
    /// [`ClientError::Stopped`] when the client had already stopped.
    pub async fn close(&self) -> Result<(), ClientError> {
        self.send(Command::Close).await
    }

    async fn send(&self, command: Command) -> Result<(), ClientError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| ClientError::Stopped)
    }
}

/// Starts a client on the current tokio runtime.
pub fn spawn(config: ClientConfig) -> (ClientHandle, mpsc::Receiver<ClientEvent>) {
    let (command_tx, command_rx) = mpsc::channel(64);
    let (event_tx, event_rx) = mpsc::channel(config.event_capacity.max(1));
    tokio::spawn(run(config, command_rx, event_tx));
    (
        ClientHandle {
            commands: command_tx,
        },
        event_rx,
    )
}

/// A connection that lived at least this long resets the backoff.
const STABLE_AFTER: Duration = Duration::from_secs(10);
/// Bound on one frame write (a stalled server must not wedge the client).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How a session ended.
enum End {
    /// Reconnect after a backoff.
    Lost {
        reason: String,
        close_code: Option<u16>,
    },
    /// Stop for good.
    Stop(String),
}

async fn run(
    config: ClientConfig,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<ClientEvent>,
) {
    let mut topics: BTreeSet<Topic> = BTreeSet::new();
    let mut attempt: u32 = 0;
    loop {
        let end = match connect(&config).await {
            Ok(ws) => {
                let started = Instant::now();
                let end = session(ws, &config, &mut topics, &mut commands, &events).await;
                if started.elapsed() >= STABLE_AFTER {
                    attempt = 0;
                }
                end
            }
            Err(ConnectError { reason, status }) => {
                if status == Some(401) {
                    End::Stop(format!("upgrade refused: {reason}"))
                } else {
                    let event = ClientEvent::Disconnected {
                        reason,
                        status,
                        close_code: None,
                    };
                    if events.send(event).await.is_err() {
                        return;
                    }
                    End::Lost {
                        reason: String::new(),
                        close_code: None,
                    }
                }
            }
        };
        match end {
            End::Stop(reason) => {
                let _ = events.send(ClientEvent::Closed { reason }).await;
                return;
            }
            End::Lost { reason, close_code } => {
                if !reason.is_empty() {
                    let event = ClientEvent::Disconnected {
                        reason,
                        status: None,
                        close_code,
                    };
                    if events.send(event).await.is_err() {
                        return;
                    }
                }
            }
        }
        let delay = backoff(&config, attempt);
        attempt = attempt.saturating_add(1);
        let wake = sleep(delay);
        tokio::pin!(wake);
        loop {
            tokio::select! {
                () = &mut wake => break,
                command = commands.recv() => match command {
                    Some(Command::Subscribe(topic)) => { topics.insert(topic); }
                    Some(Command::Unsubscribe(topic)) => { topics.remove(&topic); }
                    Some(Command::Close) | None => {
                        let _ = events.send(ClientEvent::Closed { reason: "closed by the application".into() }).await;
                        return;
                    }
                },
            }
        }
    }
}

/// Capped exponential backoff with "equal jitter": a random delay in `[d/2, d]` where
/// `d = min(max, initial · 2^attempt)`.
fn backoff(config: &ClientConfig, attempt: u32) -> Duration {
    let factor = 1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX);
    let full = config
        .backoff_initial
        .saturating_mul(factor)
        .min(config.backoff_max);
    let half = full / 2;
    let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
    half + Duration::from_millis(rand::rng().random_range(0..=jitter_ms))
}

struct ConnectError {
    reason: String,
    status: Option<u16>,
}

impl ConnectError {
    fn new(reason: impl Into<String>) -> Self {
        ConnectError {
            reason: reason.into(),
            status: None,
        }
    }
}

/// Ties hyper's executor to tokio.
struct SpawnExecutor;

impl<Fut> hyper::rt::Executor<Fut> for SpawnExecutor
where
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    fn execute(&self, fut: Fut) {
        tokio::spawn(fut);
    }
}

type Socket = WebSocket<TokioIo<Upgraded>>;

async fn connect(config: &ClientConfig) -> Result<Socket, ConnectError> {
    let uri: http::Uri = config
        .url
        .parse()
        .map_err(|_| ConnectError::new("invalid url"))?;
    let secure = match uri.scheme_str() {
        Some("ws") => false,
        Some("wss") => true,
        _ => return Err(ConnectError::new("the url must start with ws:// or wss://")),
    };
    let authority = uri
        .authority()
        .ok_or_else(|| ConnectError::new("url has no host"))?
        .clone();
    let port = authority
        .port_u16()
        .unwrap_or(if secure { 443 } else { 80 });
    // Checked before connecting, so a bad host name is not retried as if it were an outage.
    let tls = if secure {
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let server_name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|_| ConnectError::new(format!("invalid TLS server name {host:?}")))?;
        Some((tls_connector(config)?, server_name))
    } else {
        None
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let mut request = http::Request::builder()
        .method("GET")
        .uri(path)
        .header(HOST, authority.as_str())
        .header(UPGRADE, "websocket")
        .header(CONNECTION, "upgrade")
        .header(
            "Sec-WebSocket-Key",
            fastwebsockets::handshake::generate_key(),
        )
        .header("Sec-WebSocket-Version", "13");
    match &config.auth {
        Some(Auth::Cookie(cookie)) => request = request.header(COOKIE, cookie.as_str()),
        Some(Auth::Bearer(token)) => {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        None => {}
    }
    if let Some(origin) = &config.origin {
        request = request.header(ORIGIN, origin.as_str());
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .map_err(|_| ConnectError::new("invalid request headers"))?;
    let attempt = async {
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let stream = TcpStream::connect((host, port))
            .await
            .map_err(|error| ConnectError::new(format!("connect: {error}")))?;
        let _ = stream.set_nodelay(true);
        let upgraded = match tls {
            None => fastwebsockets::handshake::client(&SpawnExecutor, request, stream).await,
            Some((connector, server_name)) => {
                let stream = connector
                    .connect(server_name, stream)
                    .await
                    .map_err(|error| ConnectError::new(format!("TLS handshake: {error}")))?;
                fastwebsockets::handshake::client(&SpawnExecutor, request, stream).await
            }
        };
        upgraded.map_err(|error| match error {
            WebSocketError::InvalidStatusCode(status) => ConnectError {
                reason: format!("upgrade refused with HTTP {status}"),
                status: Some(status),
            },
            other => ConnectError::new(format!("handshake: {other}")),
        })
    };
    let (ws, _response) = timeout(config.connect_timeout, attempt)
        .await
        .map_err(|_| ConnectError::new("connect timed out"))??;
    Ok(ws)
}

/// The TLS connector for a `wss://` URL: the caller's settings, else the platform verifier.
fn tls_connector(config: &ClientConfig) -> Result<tokio_rustls::TlsConnector, ConnectError> {
    let tls = match &config.tls {
        Some(tls) => Arc::clone(tls),
        None => {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let tls = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .and_then(rustls_platform_verifier::BuilderVerifierExt::with_platform_verifier)
                .map_err(|error| ConnectError::new(format!("TLS set-up: {error}")))?
                .with_no_client_auth();
            Arc::new(tls)
        }
    };
    Ok(tokio_rustls::TlsConnector::from(tls))
}

/// What the reader task forwards.
enum Inbound {
    Text(Bytes),
    /// Any other data/control frame: proof of life only.
    Activity,
    Close(Option<u16>),
    Failed(String),
}

type Obligated = (OpCode, Vec<u8>);

async fn session(
    ws: Socket,
    config: &ClientConfig,
    topics: &mut BTreeSet<Topic>,
    commands: &mut mpsc::Receiver<Command>,
    events: &mpsc::Sender<ClientEvent>,
) -> End {
    let (mut read, mut write) = ws.split(tokio::io::split);
    read.set_max_message_size(config.max_message_size);
    let mut read = FragmentCollectorRead::new(read);
    let (inbound_tx, mut inbound_rx) = mpsc::channel::<Inbound>(64);
    let (obligated_tx, mut obligated_rx) = mpsc::unbounded_channel::<Obligated>();
    let reader = tokio::spawn(async move {
        loop {
            let obligated_tx = obligated_tx.clone();
            let mut send_fn = move |frame: Frame<'_>| {
                let owned = (frame.opcode, frame.payload.to_vec());
                let sent = obligated_tx.send(owned).map_err(|_| "writer gone");
                async move { sent }
            };
            let inbound = match read.read_frame(&mut send_fn).await {
                Ok(frame) => match frame.opcode {
                    OpCode::Text => Inbound::Text(Bytes::from(Vec::from(frame.payload))),
                    OpCode::Close => {
                        let code = (frame.payload.len() >= 2)
                            .then(|| u16::from_be_bytes([frame.payload[0], frame.payload[1]]));
                        Inbound::Close(code)
                    }
                    _ => Inbound::Activity,
                },
                Err(error) => Inbound::Failed(error.to_string()),
            };
            let last = matches!(inbound, Inbound::Close(_) | Inbound::Failed(_));
            if inbound_tx.send(inbound).await.is_err() || last {
                return;
            }
        }
    });
    // Abort the reader whichever way the session ends.
    let _reader = AbortOnDrop(reader);

    if events.send(ClientEvent::Connected).await.is_err() {
        return End::Stop("event receiver dropped".into());
    }
    for topic in topics.iter() {
        if let Err(reason) = send_text(&mut write, &subscribe_json(topic)).await {
            return lost(reason, None);
        }
    }

    let idle = sleep(config.idle_timeout);
    tokio::pin!(idle);
    loop {
        tokio::select! {
            () = &mut idle => {
                return lost(format!("no message for {:?}: dead link", config.idle_timeout), None);
            }
            obligated = obligated_rx.recv() => {
                let Some((opcode, payload)) = obligated else { continue };
                idle.as_mut().reset(Instant::now() + config.idle_timeout);
                let frame = Frame::new(true, opcode, None, Payload::Owned(payload));
                if let Err(reason) = write_frame(&mut write, frame).await {
                    return lost(reason, None);
                }
            }
            inbound = inbound_rx.recv() => {
                idle.as_mut().reset(Instant::now() + config.idle_timeout);
                match inbound {
                    Some(Inbound::Text(bytes)) => {
                        if events.send(to_event(bytes, config.raw_positions)).await.is_err() {
                            let _ = write_frame(&mut write, Frame::close(close::NORMAL, b"")).await;
                            return End::Stop("event receiver dropped".into());
                        }
                    }
                    Some(Inbound::Activity) => {}
                    Some(Inbound::Close(code)) => {
                        // The auto-reply Close is queued as an obligated send: flush it.
                        while let Ok((opcode, payload)) = obligated_rx.try_recv() {
                            let frame = Frame::new(true, opcode, None, Payload::Owned(payload));
                            let _ = write_frame(&mut write, frame).await;
                        }
                        match code {
                            Some(close::SESSION_INVALID) => {
                                return End::Stop("session no longer valid (4401)".into());
                            }
                            Some(code @ (close::PROTOCOL_ERROR | close::INVALID_DATA | close::TOO_BIG)) => {
                                return End::Stop(format!(
                                    "the server refused this client's frames (close {code}): a client bug that reconnecting would repeat"
                                ));
                            }
                            _ => {}
                        }
                        return lost(format!("closed by the server ({})", code.map_or("no code".into(), |c| c.to_string())), code);
                    }
                    Some(Inbound::Failed(reason)) => return lost(reason, None),
                    None => return lost("connection ended".into(), None),
                }
            }
            command = commands.recv() => match command {
                Some(Command::Subscribe(topic)) => {
                    let text = subscribe_json(&topic);
                    topics.insert(topic);
                    if let Err(reason) = send_text(&mut write, &text).await {
                        return lost(reason, None);
                    }
                }
                Some(Command::Unsubscribe(topic)) => {
                    let text = ClientMessage::Unsubscribe { topic: topic.clone(), id: None }.to_json();
                    topics.remove(&topic);
                    if let Err(reason) = send_text(&mut write, &text).await {
                        return lost(reason, None);
                    }
                }
                Some(Command::Close) | None => {
                    let _ = write_frame(&mut write, Frame::close(close::NORMAL, b"")).await;
                    return End::Stop("closed by the application".into());
                }
            },
        }
    }
}

fn lost(reason: String, close_code: Option<u16>) -> End {
    End::Lost { reason, close_code }
}

fn subscribe_json(topic: &Topic) -> String {
    ClientMessage::Subscribe {
        topic: topic.clone(),
        id: None,
    }
    .to_json()
}

/// The fixed prefix of every `position` frame (the server always writes `type` first).
const POSITION_PREFIX: &[u8] = b"{\"type\":\"position\"";

fn to_event(bytes: Bytes, raw_positions: bool) -> ClientEvent {
    if raw_positions && bytes.starts_with(POSITION_PREFIX) {
        return ClientEvent::RawPosition(bytes);
    }
    match ServerMessage::from_json(&bytes) {
        Ok(message) => ClientEvent::Message(message),
        Err(_) => ClientEvent::Unparsed(bytes),
    }
}

type Writer = fastwebsockets::WebSocketWrite<tokio::io::WriteHalf<TokioIo<Upgraded>>>;

async fn send_text(write: &mut Writer, text: &str) -> Result<(), String> {
    write_frame(write, Frame::text(Payload::Borrowed(text.as_bytes()))).await
}

async fn write_frame(write: &mut Writer, frame: Frame<'_>) -> Result<(), String> {
    match timeout(WRITE_TIMEOUT, write.write_frame(frame)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(format!("write: {error}")),
        Err(_) => Err("write timed out".into()),
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_and_jittered() {
        let mut config = ClientConfig::new("ws://x");
        config.backoff_initial = Duration::from_millis(100);
        config.backoff_max = Duration::from_millis(1_000);
        for attempt in 0..40 {
            let full =
                Duration::from_millis(100 * (1u64 << attempt.min(10))).min(config.backoff_max);
            for _ in 0..20 {
                let delay = backoff(&config, attempt);
                assert!(delay >= full / 2 && delay <= full, "{attempt}: {delay:?}");
            }
        }
    }

    #[test]
    fn auth_debug_is_redacted() {
        let debug = format!(
            "{:?}",
            ClientConfig {
                auth: Some(Auth::Cookie("directus_session_token=secret".into())),
                ..ClientConfig::new("ws://x")
            }
        );
        assert!(!debug.contains("secret"), "{debug}");
    }

    #[test]
    fn raw_mode_only_skips_positions() {
        let position = Bytes::from_static(br#"{"type":"position","topic":"event:8d1f0c2a-5b7e-4c1d-9a3f-2e6b8c0d4f11","deviceId":"1","ts":1,"lat":1.0,"lon":2.0}"#);
        assert!(matches!(
            to_event(position.clone(), true),
            ClientEvent::RawPosition(_)
        ));
        assert!(matches!(
            to_event(position, false),
            ClientEvent::Message(ServerMessage::Position { .. })
        ));
        let keepalive = Bytes::from_static(br#"{"type":"keepalive","ts":1}"#);
        assert_eq!(
            to_event(keepalive, true),
            ClientEvent::Message(ServerMessage::Keepalive { ts: 1 })
        );
        assert!(matches!(
            to_event(Bytes::from_static(b"nope"), true),
            ClientEvent::Unparsed(_)
        ));
    }
}
