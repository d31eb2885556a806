//! The `tokio` codec over a real loopback TCP connection: the crate README's server,
//! a tracker that handshakes, sends frames (one corrupt), a keep-alive and a GPRS response.

use futures_util::{SinkExt, StreamExt};
use teltonika_codec::tokio_codec::{Incoming, Outgoing, TeltonikaCodec};
use teltonika_codec::{Imei, TcpFrame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

use crate::support::vector;

/// The README's server, serving one connection.
async fn serve_one(listener: TcpListener) {
    let (socket, _) = listener.accept().await.unwrap();
    let mut conn = Framed::new(socket, TeltonikaCodec::new());
    while let Some(Ok(incoming)) = conn.next().await {
        let reply = match incoming {
            Incoming::Imei(_imei) => Outgoing::ImeiReply(true),
            Incoming::Frame {
                frame: TcpFrame::Avl(packet),
                ..
            } => Outgoing::AvlAck(packet.records.len() as u32),
            Incoming::Rejected {
                codec_id: Some(0x08 | 0x8E | 0x10),
                ..
            } => Outgoing::AvlAck(0),
            _ => continue,
        };
        if conn.send(reply).await.is_err() {
            break;
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_tracker_session_over_tcp() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(serve_one(listener));

    let mut tracker = TcpStream::connect(address).await.unwrap();
    let mut reply = [0u8; 4];
    // The handshake, split across two writes.
    let handshake = vector("wiki-imei-handshake");
    tracker.write_all(&handshake[..5]).await.unwrap();
    tracker.flush().await.unwrap();
    tracker.write_all(&handshake[5..]).await.unwrap();
    tracker.read_exact(&mut reply[..1]).await.unwrap();
    assert_eq!(reply[0], 1);

    // A 4-record 8E frame: ACK 4.
    tracker.write_all(&vector("traccar-L39")).await.unwrap();
    tracker.read_exact(&mut reply).await.unwrap();
    assert_eq!(u32::from_be_bytes(reply), 4);

    // A keep-alive and a GPRS response get no answer; a corrupt AVL frame gets ACK 0.
    let mut corrupt = vector("wiki-c8-ex3");
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    let mut burst = vec![0xFF];
    burst.extend_from_slice(&vector("wiki-c12-getinfo-resp"));
    burst.extend_from_slice(&corrupt);
    burst.extend_from_slice(&vector("wiki-c8-ex3"));
    tracker.write_all(&burst).await.unwrap();
    tracker.read_exact(&mut reply).await.unwrap();
    assert_eq!(u32::from_be_bytes(reply), 0);
    tracker.read_exact(&mut reply).await.unwrap();
    assert_eq!(u32::from_be_bytes(reply), 2);

    drop(tracker);
    server.await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn the_codec_also_speaks_the_tracker_side() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(serve_one(listener));
    let socket = TcpStream::connect(address).await.unwrap();
    let mut tracker = Framed::new(socket, TeltonikaCodec::new());
    let imei: Imei = "356307042441013".parse().unwrap();
    tracker.send(Outgoing::Imei(imei)).await.unwrap();
    let frame = teltonika_codec::decode_tcp_frame(&vector("wiki-c16-ex1"))
        .unwrap()
        .0
        .to_owned();
    tracker.send(Outgoing::Frame(frame)).await.unwrap();
    let mut raw = tracker.into_inner();
    let mut reply = [0u8; 5];
    raw.read_exact(&mut reply).await.unwrap();
    assert_eq!(reply, [1, 0, 0, 0, 2]);
    drop(raw);
    server.await.unwrap();
}
