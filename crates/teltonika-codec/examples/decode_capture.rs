//! Decodes a capture of one tracker's TCP connection (the bytes it sent, as a binary file:
//! IMEI handshake, AVL frames, keep-alives) and prints what it holds, one line per item.
//!
//! ```text
//! cargo run -p teltonika-codec --example decode_capture -- capture.bin
//! ```
//!
//! The capture is fed to the [`Framer`] in small chunks, as a socket would deliver it, to show
//! the incremental API: append what was read, decode, drop what was consumed, read more.

use std::process::ExitCode;

use teltonika_codec::{Event, Framer, Step, TcpFrameView};

/// Bytes per simulated read: small on purpose, so frames arrive in pieces.
const READ_SIZE: usize = 512;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: decode_capture <capture.bin>");
        return ExitCode::from(2);
    };
    let capture = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) => {
            eprintln!("cannot read {}: {error}", path.to_string_lossy());
            return ExitCode::from(2);
        }
    };
    match decode(&capture) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn decode(capture: &[u8]) -> Result<(), String> {
    let mut framer = Framer::new();
    let mut buffer = Vec::new();
    // Offset of `buffer[0]` in the capture, so errors name a position in the file.
    let mut buffer_start = 0usize;
    let mut chunks = capture.chunks(READ_SIZE);
    loop {
        match framer.decode(&buffer) {
            Ok(Step::Ready { event, consumed }) => {
                print_event(buffer_start, &event);
                buffer.drain(..consumed);
                buffer_start += consumed;
            }
            Ok(Step::Incomplete { .. }) => match chunks.next() {
                Some(chunk) => buffer.extend_from_slice(chunk),
                None if buffer.is_empty() => return Ok(()),
                None => {
                    return Err(format!(
                        "the capture ends inside an item: {} bytes left at byte {buffer_start}",
                        buffer.len()
                    ));
                }
            },
            // The stream cannot be resynchronised after this (bad preamble, over-long frame).
            Err(error) => return Err(format!("at byte {buffer_start} of the capture: {error}")),
        }
    }
}

fn print_event(offset: usize, event: &Event<'_>) {
    match event {
        Event::Imei(imei) => println!("{offset:>8}  handshake  IMEI {imei}"),
        Event::KeepAlive => println!("{offset:>8}  keep-alive"),
        Event::Frame {
            frame: TcpFrameView::Avl(packet),
            ..
        } => {
            println!(
                "{offset:>8}  AVL codec {:#04x}, {} records",
                packet.codec().id(),
                packet.records().len()
            );
            for record in packet.records() {
                let gps = record.gps();
                println!(
                    "          {}  {:>11.7} {:>11.7}  {:>3} km/h  {} IO elements",
                    record.timestamp(),
                    gps.latitude(),
                    gps.longitude(),
                    gps.speed,
                    record.io().count()
                );
            }
        }
        Event::Frame {
            frame: TcpFrameView::Gprs(message),
            ..
        } => println!("{offset:>8}  GPRS codec {:#04x}", message.codec().id()),
        Event::Rejected { error, codec_id } => {
            println!("{offset:>8}  rejected frame (codec {codec_id:?}): {error}");
        }
    }
}
