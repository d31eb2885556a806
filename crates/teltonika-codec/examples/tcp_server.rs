//! A minimal Teltonika TCP server (feature `tokio`): accepts trackers, answers the IMEI
//! handshake, and acknowledges every AVL frame with its record count — after "storing" the
//! records, here by printing them, since a tracker deletes what was acknowledged.
//!
//! ```text
//! cargo run -p teltonika-codec --features tokio --example tcp_server -- 127.0.0.1:5027
//! ```
//!
//! Invalid AVL frames are answered with ACK 0 (the tracker sends them again); GPRS responses
//! and keep-alives get no answer, as the protocol says.

use futures_util::{SinkExt as _, StreamExt as _};
use teltonika_codec::TcpFrame;
use teltonika_codec::tokio_codec::{Incoming, Outgoing, TeltonikaCodec};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:5027".to_owned());
    let listener = TcpListener::bind(&address).await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (socket, peer) = listener.accept().await?;
        tokio::spawn(async move {
            if let Err(error) = serve(socket).await {
                eprintln!("{peer}: {error}");
            }
        });
    }
}

async fn serve(socket: TcpStream) -> std::io::Result<()> {
    let mut connection = Framed::new(socket, TeltonikaCodec::new());
    let mut imei = None;
    while let Some(incoming) = connection.next().await {
        let reply = match incoming.map_err(std::io::Error::other)? {
            Incoming::Imei(handshake) => {
                println!("tracker {handshake} connected");
                imei = Some(handshake);
                Outgoing::ImeiReply(true)
            }
            Incoming::Frame {
                frame: TcpFrame::Avl(packet),
                ..
            } => {
                for record in &packet.records {
                    let gps = &record.gps;
                    println!(
                        "{}: {} at {:.7},{:.7}",
                        imei.map_or_else(|| "?".to_owned(), |i| i.to_string()),
                        record.timestamp,
                        gps.latitude(),
                        gps.longitude()
                    );
                }
                // Acknowledge only what was stored: the count of records in the frame.
                Outgoing::AvlAck(u32::try_from(packet.records.len()).unwrap_or(u32::MAX))
            }
            Incoming::Rejected {
                codec_id: Some(0x08 | 0x8E | 0x10),
                error,
            } => {
                eprintln!("invalid AVL frame, asking for it again: {error}");
                Outgoing::AvlAck(0)
            }
            // Keep-alives, GPRS responses and rejected GPRS frames are never answered.
            _ => continue,
        };
        connection
            .send(reply)
            .await
            .map_err(std::io::Error::other)?;
    }
    Ok(())
}
