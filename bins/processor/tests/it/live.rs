//! The live path through the real binary: SIGTERM closes every WebSocket client with 1001 and
//! exits 0; the live-protocol client reconnects and resubscribes after a restart.

use std::time::Duration;

use live_protocol::client::{Auth, ClientConfig, ClientEvent, spawn};
use live_protocol::{ServerMessage, Topic};
use test_support::{DirectusStub, Seed, StubUser};

use crate::support::{Env, Processor};

/// A free loopback port (bound then released), so a restarted processor listens on the same.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Live {
    env: Env,
    stub: DirectusStub,
    event: Topic,
    port: u16,
}

async fn live_env() -> Option<Live> {
    let env = Env::new().await?;
    test_support::load_directus_schema(&env.pg).await;
    let stub = DirectusStub::start().await;
    let user = StubUser::new(Seed::uuid(), "ana@example.com");
    stub.add_cookie("session-ana", &user);
    let event = Seed::new(&env.pg)
        .await
        .event_with_devices("Rally", &["356307042441013"])
        .await;
    stub.allow(&user.id, &event);
    Some(Live {
        env,
        stub,
        event: Topic::for_event(&event).unwrap(),
        port: free_port(),
    })
}

async fn spawn_live(live: &Live, instance: &str) -> Processor {
    let url = live.stub.url();
    let port = live.port.to_string();
    live.env
        .spawn(
            instance,
            &[
                ("LIVE_ENABLED", "true"),
                ("LIVE_WS_HOST", "127.0.0.1"),
                ("LIVE_WS_PORT", &port),
                ("DIRECTUS_URL", &url),
                ("DIRECTUS_CACHE_TTL_MS", "0"),
            ],
        )
        .await
}

fn client(
    live: &Live,
) -> (
    live_protocol::client::ClientHandle,
    tokio::sync::mpsc::Receiver<ClientEvent>,
) {
    let mut config = ClientConfig::new(format!("ws://127.0.0.1:{}/ws", live.port));
    config.auth = Some(Auth::Cookie(
        "directus_session_token=session-ana".to_owned(),
    ));
    config.backoff_initial = Duration::from_millis(100);
    config.backoff_max = Duration::from_millis(500);
    spawn(config)
}

/// Waits for an event matching `pred`, skipping others.
async fn wait_for(
    events: &mut tokio::sync::mpsc::Receiver<ClientEvent>,
    within: Duration,
    mut pred: impl FnMut(&ClientEvent) -> bool,
) -> ClientEvent {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("timed out waiting for a client event")
            .expect("client stopped");
        if pred(&event) {
            return event;
        }
    }
}

/// The "live server listening" log line (JSON).
fn listening_line(processor: &Processor) -> serde_json::Value {
    processor
        .child
        .output()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|v| v["message"] == "live server listening")
        .expect("no \"live server listening\" line")
}

fn is_subscribed(event: &ClientEvent) -> bool {
    matches!(
        event,
        ClientEvent::Message(ServerMessage::Subscribed { .. })
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_every_client_with_1001_and_exits_0() {
    let Some(live) = live_env().await else { return };
    let mut processor = spawn_live(&live, "live-term").await;
    // Logged before "processor running", which `spawn` waited for.
    let listening = listening_line(&processor);
    assert_eq!(listening["addr"], format!("127.0.0.1:{}", live.port));

    let mut clients = Vec::new();
    for _ in 0..3 {
        let (handle, mut events) = client(&live);
        handle.subscribe(live.event.clone()).await.unwrap();
        wait_for(&mut events, Duration::from_secs(15), is_subscribed).await;
        clients.push((handle, events));
    }
    processor.child.sigterm();
    for (_, events) in &mut clients {
        let event = wait_for(events, Duration::from_secs(15), |e| {
            matches!(e, ClientEvent::Disconnected { .. })
        })
        .await;
        let ClientEvent::Disconnected { close_code, .. } = event else {
            unreachable!()
        };
        assert_eq!(close_code, Some(1001));
    }
    let status = processor.child.wait(Duration::from_secs(20)).await;
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reconnects_and_resubscribes_after_a_restart() {
    let Some(live) = live_env().await else { return };
    let mut processor = spawn_live(&live, "live-restart").await;
    listening_line(&processor);
    let (handle, mut events) = client(&live);
    handle.subscribe(live.event.clone()).await.unwrap();
    wait_for(&mut events, Duration::from_secs(15), is_subscribed).await;

    processor.restart().await;
    wait_for(&mut events, Duration::from_secs(15), |e| {
        matches!(e, ClientEvent::Disconnected { .. })
    })
    .await;
    // Back on the same port: the client reconnects and subscribes again by itself.
    wait_for(&mut events, Duration::from_secs(30), |e| {
        matches!(e, ClientEvent::Connected)
    })
    .await;
    let again = wait_for(&mut events, Duration::from_secs(15), is_subscribed).await;
    let ClientEvent::Message(ServerMessage::Subscribed { topic, .. }) = again else {
        unreachable!()
    };
    assert_eq!(topic, live.event);
    handle.close().await.unwrap();
    processor.child.sigterm();
    let _ = processor.child.wait(Duration::from_secs(20)).await;
}
