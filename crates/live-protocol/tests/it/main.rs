//! Integration tests of live-protocol (one binary): the `client` feature against a tiny
//! in-test fastwebsockets server (reconnect + resubscribe, dead link, pings, refusals, close).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] functions"
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use fastwebsockets::{FragmentCollector, Frame, OpCode, Payload, upgrade};
use http_body_util::{Either, Empty, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use live_protocol::client::rustls;
use live_protocol::client::{Auth, ClientConfig, ClientEvent, spawn};
use live_protocol::{
    ClientMessage, Position, ServerMessage, Topic, encode_position, parse_client_message,
};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

const GOOD_COOKIE: &str = "directus_session_token=good";

fn topic() -> Topic {
    Topic::for_event("8d1f0c2a-5b7e-4c1d-9a3f-2e6b8c0d4f11").unwrap()
}

#[derive(Clone, Copy)]
enum Mode {
    /// Answers subscribe with `subscribed` + one `position`.
    Responsive,
    /// Never sends anything.
    Silent,
    /// Sends a ping right away and reports when the matching pong arrives.
    Pinging,
    /// Closes every connection right away with this code.
    CloseWith(u16),
}

struct Server {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    /// Topics subscribed, and "pong" when a pong arrived.
    seen: mpsc::UnboundedReceiver<String>,
    task: JoinHandle<()>,
    sockets: Sockets,
}

/// The WebSocket tasks (spawned after the upgrade, outside the connection set).
type Sockets = Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>;

impl Server {
    async fn start(addr: SocketAddr, mode: Mode) -> Server {
        Self::start_with(addr, mode, None).await
    }

    /// A server that speaks TLS (`wss://`) with `acceptor`'s certificate.
    async fn start_tls(mode: Mode, acceptor: TlsAcceptor) -> Server {
        Self::start_with("127.0.0.1:0".parse().unwrap(), mode, Some(acceptor)).await
    }

    async fn start_with(addr: SocketAddr, mode: Mode, tls: Option<TlsAcceptor>) -> Server {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let (seen_tx, seen) = mpsc::unbounded_channel();
        let counter = Arc::clone(&accepted);
        let sockets: Sockets = Arc::default();
        let tracked = Arc::clone(&sockets);
        let task = tokio::spawn(async move {
            // Dropping this set (when the server task is aborted) aborts every connection.
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let seen = seen_tx.clone();
                let counter = Arc::clone(&counter);
                let tracked = Arc::clone(&tracked);
                let tls = tls.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| {
                        handle(
                            req,
                            mode,
                            seen.clone(),
                            Arc::clone(&counter),
                            Arc::clone(&tracked),
                        )
                    });
                    let http = http1::Builder::new();
                    match tls {
                        None => {
                            let _ = http
                                .serve_connection(TokioIo::new(stream), service)
                                .with_upgrades()
                                .await;
                        }
                        Some(acceptor) => {
                            // A failed handshake (the client distrusts us) just ends the connection.
                            let Ok(stream) = acceptor.accept(stream).await else {
                                return;
                            };
                            let _ = http
                                .serve_connection(TokioIo::new(stream), service)
                                .with_upgrades()
                                .await;
                        }
                    }
                });
            }
        });
        Server {
            addr,
            accepted,
            seen,
            task,
            sockets,
        }
    }

    fn stop(self) -> SocketAddr {
        self.task.abort();
        for socket in self.sockets.lock().unwrap().drain(..) {
            socket.abort();
        }
        self.addr
    }
}

type Body = Either<Empty<Bytes>, Full<Bytes>>;

async fn handle(
    mut req: Request<Incoming>,
    mode: Mode,
    seen: mpsc::UnboundedSender<String>,
    accepted: Arc<AtomicUsize>,
    sockets: Sockets,
) -> Result<Response<Body>, fastwebsockets::WebSocketError> {
    let cookie = req
        .headers()
        .get(hyper::header::COOKIE)
        .and_then(|v| v.to_str().ok());
    if cookie != Some(GOOD_COOKIE) {
        return Ok(Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header(hyper::header::CONNECTION, "close")
            .body(Either::Right(Full::from(r#"{"error":"unauthorized"}"#)))
            .unwrap());
    }
    let (response, fut) = upgrade::upgrade(&mut req)?;
    accepted.fetch_add(1, Ordering::SeqCst);
    let socket = tokio::spawn(async move {
        let Ok(ws) = fut.await else { return };
        let mut ws = FragmentCollector::new(ws);
        if let Mode::CloseWith(code) = mode {
            let _ = ws.write_frame(Frame::close(code, b"")).await;
            let _ = seen.send(format!("closed {code}"));
            // Wait for the client's reply (or its going away) before dropping the socket.
            let _ = ws.read_frame().await;
            return;
        }
        if let Mode::Pinging = mode {
            ws.write_frame(Frame::new(
                true,
                OpCode::Ping,
                None,
                Payload::Borrowed(b"are-you-there"),
            ))
            .await
            .unwrap();
        }
        loop {
            let Ok(frame) = ws.read_frame().await else {
                return;
            };
            match frame.opcode {
                OpCode::Close => {
                    let _ = seen.send("close".to_owned());
                    return;
                }
                OpCode::Pong if frame.payload.as_ref() == b"are-you-there" => {
                    let _ = seen.send("pong".to_owned());
                }
                OpCode::Text => {
                    let Ok(ClientMessage::Subscribe { topic, id }) =
                        parse_client_message(&frame.payload)
                    else {
                        continue;
                    };
                    let _ = seen.send(topic.to_string());
                    if let Mode::Responsive = mode {
                        let subscribed = ServerMessage::Subscribed {
                            topic: topic.clone(),
                            id,
                            snapshot: vec![],
                        }
                        .to_json_vec();
                        let position = encode_position(&topic, sample().as_view());
                        for payload in [subscribed, position.to_vec()] {
                            ws.write_frame(Frame::text(Payload::Owned(payload)))
                                .await
                                .unwrap();
                        }
                    }
                }
                _ => {}
            }
        }
    });
    sockets.lock().unwrap().push(socket.abort_handle());
    Ok(response.map(Either::Left))
}

fn sample() -> Position {
    Position {
        device_id: "356307042441013".into(),
        ts: 1_714_647_600_000,
        lat: 41.3275,
        lon: 19.8187,
        speed: Some(86),
        course: Some(270),
    }
}

fn config(addr: SocketAddr) -> ClientConfig {
    let mut config = ClientConfig::new(format!("ws://{addr}/ws"));
    config.auth = Some(Auth::Cookie(GOOD_COOKIE.to_owned()));
    config.backoff_initial = Duration::from_millis(50);
    config.backoff_max = Duration::from_millis(200);
    config
}

async fn next(events: &mut mpsc::Receiver<ClientEvent>) -> ClientEvent {
    tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("an event within 5 s")
        .expect("the client is running")
}

async fn seen(server: &mut Server) -> String {
    tokio::time::timeout(Duration::from_secs(5), server.seen.recv())
        .await
        .expect("the server saw something within 5 s")
        .unwrap()
}

#[tokio::test]
async fn reconnects_and_resubscribes_after_a_server_restart() {
    let mut server = Server::start("127.0.0.1:0".parse().unwrap(), Mode::Responsive).await;
    let (handle, mut events) = spawn(config(server.addr));
    assert_eq!(next(&mut events).await, ClientEvent::Connected);
    handle.subscribe(topic()).await.unwrap();
    assert_eq!(seen(&mut server).await, topic().to_string());
    assert_eq!(
        next(&mut events).await,
        ClientEvent::Message(ServerMessage::Subscribed {
            topic: topic(),
            id: None,
            snapshot: vec![]
        })
    );
    assert_eq!(
        next(&mut events).await,
        ClientEvent::Message(ServerMessage::Position {
            topic: topic(),
            position: sample()
        })
    );

    let addr = server.stop();
    let lost = next(&mut events).await;
    assert!(matches!(lost, ClientEvent::Disconnected { .. }), "{lost:?}");

    // Restart on the same port: the client reconnects by itself and resubscribes.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut server = Server::start(addr, Mode::Responsive).await;
    loop {
        match next(&mut events).await {
            ClientEvent::Connected => break,
            ClientEvent::Disconnected { .. } => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen(&mut server).await, topic().to_string());
    assert!(matches!(
        next(&mut events).await,
        ClientEvent::Message(ServerMessage::Subscribed { .. })
    ));

    assert!(matches!(
        next(&mut events).await,
        ClientEvent::Message(ServerMessage::Position { .. })
    ));

    // Close ends the client with a close frame.
    handle.unsubscribe(topic()).await.unwrap();
    handle.close().await.unwrap();
    assert!(matches!(
        next(&mut events).await,
        ClientEvent::Closed { .. }
    ));
    assert_eq!(seen(&mut server).await, "close");
    assert!(events.recv().await.is_none());
}

#[tokio::test]
async fn silence_is_a_dead_link() {
    let server = Server::start("127.0.0.1:0".parse().unwrap(), Mode::Silent).await;
    let mut config = config(server.addr);
    config.idle_timeout = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let (_handle, mut events) = spawn(config);
    assert_eq!(next(&mut events).await, ClientEvent::Connected);
    let ClientEvent::Disconnected { reason, .. } = next(&mut events).await else {
        panic!("expected a disconnect");
    };
    assert!(reason.contains("dead link"), "{reason}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        next(&mut events).await,
        ClientEvent::Connected,
        "reconnects"
    );
    assert!(server.accepted.load(Ordering::SeqCst) >= 2);
}

#[tokio::test]
async fn pings_are_answered() {
    let mut server = Server::start("127.0.0.1:0".parse().unwrap(), Mode::Pinging).await;
    let (_handle, mut events) = spawn(config(server.addr));
    assert_eq!(next(&mut events).await, ClientEvent::Connected);
    assert_eq!(seen(&mut server).await, "pong");
}

#[tokio::test]
async fn a_refused_session_stops_the_client() {
    let server = Server::start("127.0.0.1:0".parse().unwrap(), Mode::Responsive).await;
    let mut config = config(server.addr);
    config.auth = Some(Auth::Cookie("directus_session_token=bad".into()));
    let (handle, mut events) = spawn(config);
    let ClientEvent::Closed { reason } = next(&mut events).await else {
        panic!("expected the client to stop");
    };
    assert!(reason.contains("401"), "{reason}");
    assert!(!reason.contains("bad"), "no secret in {reason}");
    assert!(events.recv().await.is_none());
    assert!(handle.subscribe(topic()).await.is_err());
    assert_eq!(server.accepted.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn unreachable_server_is_retried_with_backoff() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let (handle, mut events) = spawn(config(addr));
    for _ in 0..3 {
        assert!(matches!(
            next(&mut events).await,
            ClientEvent::Disconnected { status: None, .. }
        ));
    }
    // Topics asked for while disconnected are subscribed once connected.
    handle.subscribe(topic()).await.unwrap();
    let mut server = Server::start(addr, Mode::Responsive).await;
    loop {
        match next(&mut events).await {
            ClientEvent::Connected => break,
            ClientEvent::Disconnected { .. } => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen(&mut server).await, topic().to_string());
}

#[tokio::test]
async fn a_close_naming_a_client_bug_stops_the_client_other_closes_reconnect() {
    use live_protocol::close;
    for code in [close::PROTOCOL_ERROR, close::INVALID_DATA, close::TOO_BIG] {
        let mut server = Server::start("127.0.0.1:0".parse().unwrap(), Mode::CloseWith(code)).await;
        let (handle, mut events) = spawn(config(server.addr));
        assert_eq!(next(&mut events).await, ClientEvent::Connected);
        assert_eq!(seen(&mut server).await, format!("closed {code}"));
        let ClientEvent::Closed { reason } = next(&mut events).await else {
            panic!("close {code}: expected the client to stop");
        };
        assert!(reason.contains(&code.to_string()), "{reason}");
        assert!(events.recv().await.is_none());
        assert!(handle.subscribe(topic()).await.is_err());
        // No reconnect: the backoff (50–200 ms) has long passed.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(server.accepted.load(Ordering::SeqCst), 1, "close {code}");
    }
    // 1001 (and 1008) are not the client's fault: it reconnects.
    for code in [close::GOING_AWAY, close::POLICY] {
        let server = Server::start("127.0.0.1:0".parse().unwrap(), Mode::CloseWith(code)).await;
        let (_handle, mut events) = spawn(config(server.addr));
        assert_eq!(next(&mut events).await, ClientEvent::Connected);
        assert!(
            matches!(
                next(&mut events).await,
                ClientEvent::Disconnected { close_code: Some(c), .. } if c == code
            ),
            "close {code}"
        );
        assert_eq!(
            next(&mut events).await,
            ClientEvent::Connected,
            "close {code}"
        );
    }
}

/// A CA and a server certificate for `localhost` and 127.0.0.1, made for this test run.
struct TestPki {
    ca: rustls::pki_types::CertificateDer<'static>,
    acceptor: TlsAcceptor,
}

fn test_pki() -> TestPki {
    let provider = || Arc::new(rustls::crypto::ring::default_provider());
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "live-protocol test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server_params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let server = server_params.signed_by(&server_key, &ca).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(server_key.serialize_der()).unwrap();
    let server_config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![server.der().clone(), ca.der().clone()], key)
        .unwrap();
    TestPki {
        ca: ca.der().clone(),
        acceptor: TlsAcceptor::from(Arc::new(server_config)),
    }
}

/// Client TLS settings that trust only `ca`.
fn trusting(ca: rustls::pki_types::CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    Arc::new(config)
}

#[tokio::test]
async fn wss_with_a_trusted_ca_subscribes_and_receives_positions() {
    let pki = test_pki();
    let mut server = Server::start_tls(Mode::Responsive, pki.acceptor.clone()).await;
    let mut config = config(server.addr);
    config.url = format!("wss://localhost:{}/ws", server.addr.port());
    config.tls = Some(trusting(pki.ca.clone()));
    let (handle, mut events) = spawn(config);
    assert_eq!(next(&mut events).await, ClientEvent::Connected);
    handle.subscribe(topic()).await.unwrap();
    assert_eq!(seen(&mut server).await, topic().to_string());
    assert!(matches!(
        next(&mut events).await,
        ClientEvent::Message(ServerMessage::Subscribed { .. })
    ));
    assert_eq!(
        next(&mut events).await,
        ClientEvent::Message(ServerMessage::Position {
            topic: topic(),
            position: sample(),
        })
    );
    handle.close().await.unwrap();
}

#[tokio::test]
async fn wss_to_a_server_the_system_does_not_trust_fails_naming_the_certificate() {
    let pki = test_pki();
    let server = Server::start_tls(Mode::Responsive, pki.acceptor.clone()).await;
    let mut config = config(server.addr);
    config.url = format!("wss://localhost:{}/ws", server.addr.port());
    // No `tls`: the system's trust store, which does not know this run's CA.
    let (handle, mut events) = spawn(config);
    let ClientEvent::Disconnected { reason, status, .. } = next(&mut events).await else {
        panic!("expected a refused connection");
    };
    assert_eq!(status, None);
    assert!(
        reason.contains("TLS handshake") && reason.to_lowercase().contains("certificate"),
        "the reason names the TLS failure: {reason}"
    );
    assert_eq!(server.accepted.load(Ordering::SeqCst), 0, "never upgraded");
    handle.close().await.unwrap();
}

#[tokio::test]
async fn wss_never_falls_back_to_plaintext() {
    // A plain ws:// server behind a wss:// URL: the handshake fails, no upgrade is sent.
    let server = Server::start("127.0.0.1:0".parse().unwrap(), Mode::Responsive).await;
    let mut config = config(server.addr);
    config.url = format!("wss://127.0.0.1:{}/ws", server.addr.port());
    config.tls = Some(trusting(test_pki().ca));
    let (handle, mut events) = spawn(config);
    let ClientEvent::Disconnected { reason, .. } = next(&mut events).await else {
        panic!("expected a refused connection");
    };
    assert!(reason.contains("TLS handshake"), "{reason}");
    assert_eq!(
        server.accepted.load(Ordering::SeqCst),
        0,
        "no plaintext upgrade"
    );
    handle.close().await.unwrap();
}
