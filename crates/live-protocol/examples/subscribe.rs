//! Subscribes to one event's live positions and prints them (feature `client`).
//!
//! ```text
//! LIVE_TOKEN=<directus static token> cargo run -p live-protocol --features client \
//!     --example subscribe -- wss://live.example.org/ws 8d1f0c2a-5b7e-4c1d-9a3f-2e6b8c0d4f11
//! ```
//!
//! Credentials come from the environment, never the command line (which other users of the
//! machine can read): `LIVE_TOKEN` is sent as a bearer token, else `LIVE_COOKIE` as the
//! `Cookie` header (e.g. `directus_session_token=…`).

use std::process::ExitCode;

use live_protocol::client::{Auth, ClientConfig, ClientEvent, spawn};
use live_protocol::{ServerMessage, Topic};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(event_id)) = (args.next(), args.next()) else {
        eprintln!("usage: subscribe <ws[s]://host/path> <event uuid>");
        return ExitCode::from(2);
    };
    let topic = match Topic::for_event(&event_id) {
        Ok(topic) => topic,
        Err(error) => {
            eprintln!("{event_id:?} is not an event id: {error}");
            return ExitCode::from(2);
        }
    };
    let mut config = ClientConfig::new(url);
    config.auth = match (std::env::var("LIVE_TOKEN"), std::env::var("LIVE_COOKIE")) {
        (Ok(token), _) => Some(Auth::Bearer(token)),
        (_, Ok(cookie)) => Some(Auth::Cookie(cookie)),
        _ => None,
    };

    let (client, mut events) = spawn(config);
    if client.subscribe(topic).await.is_err() {
        return ExitCode::FAILURE;
    }
    while let Some(event) = events.recv().await {
        match event {
            ClientEvent::Message(ServerMessage::Subscribed { snapshot, .. }) => {
                println!("subscribed: {} cars in the snapshot", snapshot.len());
                for position in snapshot {
                    println!("{position:?}");
                }
            }
            ClientEvent::Message(ServerMessage::Position { position, .. }) => {
                println!("{position:?}");
            }
            ClientEvent::Message(ServerMessage::Error { code, message, .. }) => {
                eprintln!("refused: {code}: {message}");
            }
            ClientEvent::Disconnected { reason, .. } => {
                eprintln!("disconnected ({reason}), retrying")
            }
            ClientEvent::Closed { reason } => {
                eprintln!("stopped: {reason}");
                return ExitCode::FAILURE;
            }
            _ => {}
        }
    }
    ExitCode::SUCCESS
}
