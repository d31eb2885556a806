//! Encoding of server → client WebSocket frames (RFC 6455 §5.2), straight into a write buffer.
//!
//! The reader side is fastwebsockets'. The writer encodes its own frames because a server frame
//! is just a 2–10 byte header plus the unmasked payload, and encoding every queued message into
//! one buffer lets the writer send a whole batch with one write (fastwebsockets'
//! `write_frame` issues one write per frame). Not for client frames (no masking here).

/// Frame opcodes the server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpCode {
    /// A text message (all protocol messages are JSON text).
    Text = 0x1,
    /// Close.
    Close = 0x8,
    /// Ping.
    Ping = 0x9,
    /// Pong.
    Pong = 0xA,
}

/// Appends one final (FIN set), unmasked frame with `payload` to `out`.
pub(crate) fn encode(out: &mut Vec<u8>, opcode: OpCode, payload: &[u8]) {
    out.push(0x80 | opcode as u8);
    let len = payload.len();
    if len < 126 {
        // Cannot truncate: len < 126.
        out.push(len as u8);
    } else if let Ok(len16) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&len16.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
}

/// Appends a Close frame with `code` and a UTF-8 `reason` (cut to fit the 125-byte limit of a
/// control frame payload).
pub(crate) fn encode_close(out: &mut Vec<u8>, code: u16, reason: &str) {
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&code.to_be_bytes());
    let mut cut = reason.len().min(123);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    payload.extend_from_slice(&reason.as_bytes()[..cut]);
    encode(out, OpCode::Close, &payload);
}

/// The end of the frame that byte `offset` of `buf` belongs to, where `buf` holds whole frames
/// encoded by [`encode`]; `offset` itself when it is a frame boundary (or past the end).
pub(crate) fn frame_end(buf: &[u8], offset: usize) -> usize {
    let mut start = 0;
    while start < buf.len() && start < offset {
        let Some(&len7) = buf.get(start + 1) else {
            return buf.len();
        };
        let (header, payload) = match len7 & 0x7f {
            126 => (
                4,
                buf.get(start + 2..start + 4)
                    .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]]))),
            ),
            127 => (
                10,
                buf.get(start + 2..start + 10)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map_or(0, |b| {
                        usize::try_from(u64::from_be_bytes(b)).unwrap_or(usize::MAX)
                    }),
            ),
            short => (2, usize::from(short)),
        };
        start = start
            .saturating_add(header)
            .saturating_add(payload)
            .min(buf.len());
    }
    start.max(offset.min(buf.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_end_finds_the_end_of_the_frame_an_offset_is_in() {
        let mut buf = Vec::new();
        encode(&mut buf, OpCode::Text, b"abc"); // 0..5
        encode(&mut buf, OpCode::Text, &[b'x'; 200]); // 5..209 (4-byte header)
        encode(&mut buf, OpCode::Text, &vec![b'y'; 70_000]); // 209..70_219 (10-byte header)
        encode(&mut buf, OpCode::Ping, b""); // 70_219..70_221
        assert_eq!(buf.len(), 70_221);
        assert_eq!(frame_end(&buf, 0), 0);
        assert_eq!(frame_end(&buf, 1), 5);
        assert_eq!(frame_end(&buf, 4), 5);
        assert_eq!(frame_end(&buf, 5), 5);
        assert_eq!(frame_end(&buf, 6), 209);
        assert_eq!(frame_end(&buf, 208), 209);
        assert_eq!(frame_end(&buf, 209), 209);
        assert_eq!(frame_end(&buf, 210), 70_219);
        assert_eq!(frame_end(&buf, 70_220), 70_221);
        assert_eq!(frame_end(&buf, 70_221), 70_221);
        assert_eq!(frame_end(&buf, 99_999), 70_221);
    }

    #[test]
    fn short_text_frame() {
        let mut out = Vec::new();
        encode(&mut out, OpCode::Text, b"hi");
        assert_eq!(out, [0x81, 2, b'h', b'i']);
    }

    #[test]
    fn medium_and_long_lengths() {
        let mut out = Vec::new();
        encode(&mut out, OpCode::Text, &[b'a'; 126]);
        assert_eq!(&out[..4], &[0x81, 126, 0, 126]);
        assert_eq!(out.len(), 4 + 126);

        let mut out = Vec::new();
        encode(&mut out, OpCode::Text, &vec![b'a'; 70_000]);
        assert_eq!(out[1], 127);
        assert_eq!(u64::from_be_bytes(out[2..10].try_into().unwrap()), 70_000);
        assert_eq!(out.len(), 10 + 70_000);
    }

    #[test]
    fn close_frame_carries_code_and_cut_reason() {
        let mut out = Vec::new();
        encode_close(&mut out, 4401, "session expired");
        assert_eq!(out[0], 0x88);
        assert_eq!(out[1] as usize, 2 + "session expired".len());
        assert_eq!(u16::from_be_bytes([out[2], out[3]]), 4401);

        let mut out = Vec::new();
        encode_close(&mut out, 1008, &"é".repeat(100));
        assert!(out[1] as usize <= 125);
        assert!(std::str::from_utf8(&out[4..]).is_ok());
    }

    #[test]
    fn fastwebsockets_client_reads_what_we_encode() {
        // Round trip through the real reader, in client role (server frames are unmasked).
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut bytes = Vec::new();
            encode(&mut bytes, OpCode::Text, br#"{"type":"keepalive","ts":1}"#);
            encode(&mut bytes, OpCode::Ping, b"p");
            encode_close(&mut bytes, 1001, "bye");
            let (mut ws, _) = fastwebsockets::after_handshake_split(
                std::io::Cursor::new(bytes),
                tokio::io::sink(),
                fastwebsockets::Role::Client,
            );
            ws.set_auto_pong(false);
            ws.set_auto_close(false);
            let mut sink = |_f| async { Ok::<(), std::convert::Infallible>(()) };
            let text = ws.read_frame(&mut sink).await.unwrap();
            assert_eq!(text.opcode, fastwebsockets::OpCode::Text);
            assert_eq!(&*text.payload, br#"{"type":"keepalive","ts":1}"#);
            let ping = ws.read_frame(&mut sink).await.unwrap();
            assert_eq!(ping.opcode, fastwebsockets::OpCode::Ping);
            let close = ws.read_frame(&mut sink).await.unwrap();
            assert_eq!(close.opcode, fastwebsockets::OpCode::Close);
            assert_eq!(&close.payload[..2], &1001u16.to_be_bytes());
        });
    }
}
