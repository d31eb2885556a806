//! Speaking the device protocol to an ingestion server, as a tracker does: IMEI handshake,
//! then Codec 8E frames, each answered by a 4-byte ACK with the number of records accepted.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::SimError;

/// A tracker's TCP session with an ingestion server.
#[derive(Debug)]
pub struct TrackerConnection {
    stream: TcpStream,
}

impl TrackerConnection {
    /// Connects to `addr` and sends the IMEI handshake; fails if the server rejects the IMEI.
    pub async fn connect(addr: &str, imei: &str) -> Result<Self, SimError> {
        let mut stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let imei_value = teltonika_codec::Imei::from_ascii(imei.as_bytes())?;
        let handshake = teltonika_codec::encode_imei(imei_value);
        stream.write_all(&handshake).await?;
        let mut reply = [0u8; 1];
        stream.read_exact(&mut reply).await?;
        if reply[0] != 0x01 {
            return Err(SimError::Protocol(format!(
                "IMEI {imei} rejected (reply {:#04x})",
                reply[0]
            )));
        }
        Ok(Self { stream })
    }

    /// Sends one frame carrying `records` records and waits for the server's ACK; fails when
    /// it accepts fewer records than sent.
    pub async fn send_frame(&mut self, frame: &[u8], records: u32) -> Result<(), SimError> {
        self.stream.write_all(frame).await?;
        let mut ack = [0u8; 4];
        self.stream.read_exact(&mut ack).await?;
        let (accepted, _) = teltonika_codec::decode_avl_ack(&ack)?;
        if accepted != records {
            return Err(SimError::Protocol(format!(
                "server accepted {accepted} of {records} records"
            )));
        }
        Ok(())
    }
}

/// Sends every frame over one tracker connection (handshake first), waiting for each ACK.
pub async fn send_frames(
    addr: &str,
    imei: &str,
    frames: &[(Vec<u8>, u32)],
) -> Result<(), SimError> {
    let mut connection = TrackerConnection::connect(addr, imei).await?;
    for (frame, records) in frames {
        connection.send_frame(frame, *records).await?;
    }
    Ok(())
}
