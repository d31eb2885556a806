//! `teltonika`: the operators' command-line tool for the Teltonika protocol. It answers "what
//! did this tracker send?" (`decode`), builds frames for tests (`encode`) and shows the reply a
//! server owes (`ack`). Not a server: it reads input once and exits.
//!
//! Exit status: 0 on success, 1 on invalid input (the message names the byte offset), 2 on a
//! usage error.

mod input;
mod json;

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use teltonika_codec::{DecodeOptions, Event, Framer, Step, TcpFrameView, UdpAck, encode_avl_ack};

const USAGE: &str = "\
usage:
  teltonika decode [HEX] [--file PATH] [--binary] [--auto|--tcp|--frame|--udp] [--lenient]
  teltonika encode [JSON] [--file PATH]
  teltonika ack    [HEX] [--file PATH] [--binary] [--auto|--tcp|--frame|--udp]

Input comes from the HEX/JSON argument, else --file, else standard input. Hex may contain
spaces, newlines and 0x prefixes; --binary reads raw bytes (files and stdin only).
Modes: --tcp a TCP stream (optional IMEI handshake, frames, 0xFF keep-alives); --frame exactly
one TCP frame; --udp one or more UDP datagrams back to back; --auto (default) guesses.
decode prints one JSON object per line (per handshake, frame or datagram); with --lenient,
frames with a bad CRC or count are decoded anyway and their \"deviations\" listed.
encode reads those JSON objects (one per line, or an array) and prints each frame as hex.
ack prints, per frame, the reply a server sends (hex), and says when none is owed.";

/// How to cut the input into frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Auto,
    Tcp,
    Frame,
    Udp,
}

#[derive(Debug)]
struct Args {
    command: String,
    text: Option<String>,
    file: Option<String>,
    binary: bool,
    mode: Mode,
    lenient: bool,
}

/// A usage error (exit 2) as opposed to invalid input (exit 1).
#[derive(Debug)]
struct Usage(String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\n\n{USAGE}", self.0)
    }
}

impl std::error::Error for Usage {}

fn parse_args(args: &[String]) -> Result<Args, Usage> {
    let mut it = args.iter();
    let command = it
        .next()
        .ok_or_else(|| Usage("no command given".into()))?
        .clone();
    let mut parsed = Args {
        command,
        text: None,
        file: None,
        binary: false,
        mode: Mode::Auto,
        lenient: false,
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--file" | "-f" => {
                parsed.file = Some(
                    it.next()
                        .ok_or_else(|| Usage("--file needs a path".into()))?
                        .clone(),
                );
            }
            "--binary" => parsed.binary = true,
            "--auto" => parsed.mode = Mode::Auto,
            "--tcp" => parsed.mode = Mode::Tcp,
            "--frame" => parsed.mode = Mode::Frame,
            "--udp" => parsed.mode = Mode::Udp,
            "--lenient" => parsed.lenient = true,
            s if s.starts_with("--") => return Err(Usage(format!("unknown option {s}"))),
            s => {
                if parsed.text.is_some() {
                    return Err(Usage(format!("unexpected argument {s:?}")));
                }
                parsed.text = Some(s.to_owned());
            }
        }
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || matches!(args[0].as_str(), "-h" | "--help" | "help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let result = parse_args(&args)
        .map_err(anyhow::Error::from)
        .and_then(|a| run(&a));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<Usage>() => {
            eprintln!("teltonika: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("teltonika: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.command.as_str() {
        "decode" => {
            let bytes = input::bytes(args)?;
            for item in decode_all(&bytes, args.mode, args.lenient)? {
                writeln!(out, "{}", item.json)?;
            }
        }
        "ack" => {
            let bytes = input::bytes(args)?;
            for item in decode_all(&bytes, args.mode, false)? {
                match item.reply {
                    Some(reply) => writeln!(out, "{}", input::to_hex(&reply))?,
                    None => eprintln!("offset {}: {}: no reply is owed", item.offset, item.kind),
                }
            }
        }
        "encode" => {
            let text = input::text(args)?;
            for (i, frame) in json::parse_frames(&text)?.iter().enumerate() {
                let bytes = json::encode(frame).with_context(|| format!("object {i}"))?;
                writeln!(out, "{}", input::to_hex(&bytes))?;
            }
        }
        other => return Err(Usage(format!("unknown command {other:?}")).into()),
    }
    Ok(())
}

/// One decoded unit of the input.
struct Item {
    offset: usize,
    kind: &'static str,
    json: serde_json::Value,
    /// The bytes a server answers with, if any.
    reply: Option<Vec<u8>>,
}

fn detect(bytes: &[u8]) -> Mode {
    match bytes {
        [0, 0, 0, 0, ..] | [0xFF, ..] => Mode::Tcp,
        [0, 15, rest @ ..] if rest.len() >= 15 && rest[..15].iter().all(u8::is_ascii_digit) => {
            Mode::Tcp
        }
        _ => Mode::Udp,
    }
}

fn decode_all(bytes: &[u8], mode: Mode, lenient: bool) -> anyhow::Result<Vec<Item>> {
    if bytes.is_empty() {
        bail!("no input bytes");
    }
    let options = if lenient {
        DecodeOptions::lenient()
    } else {
        DecodeOptions::strict()
    };
    let mode = if mode == Mode::Auto {
        detect(bytes)
    } else {
        mode
    };
    match mode {
        Mode::Udp => decode_udp(bytes, options),
        Mode::Frame => {
            let items = decode_tcp(bytes, options, false)?;
            if items.len() != 1 || items[0].kind == "imei" || items[0].kind == "keep-alive" {
                bail!(
                    "expected exactly one TCP frame, found {} items (use --tcp for a stream)",
                    items.len()
                );
            }
            Ok(items)
        }
        Mode::Tcp | Mode::Auto => {
            let handshake = matches!(bytes, [0, 15, ..]);
            decode_tcp(bytes, options, handshake)
        }
    }
}

fn decode_tcp(bytes: &[u8], options: DecodeOptions, handshake: bool) -> anyhow::Result<Vec<Item>> {
    let mut framer = if handshake {
        Framer::with_options(options)
    } else {
        Framer::after_handshake(options)
    };
    let mut items = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        match framer.decode(&bytes[pos..]) {
            Ok(Step::Ready { event, consumed }) => {
                items.push(event_item(pos, event)?);
                pos += consumed.max(1);
            }
            Ok(Step::Incomplete { needed }) => {
                bail!("truncated input at byte {pos}: the frame there needs {needed} more bytes");
            }
            Err(e) => {
                bail!("invalid input in the frame at byte {pos}: {e} (offsets within the frame)")
            }
        }
    }
    Ok(items)
}

fn event_item(offset: usize, event: Event<'_>) -> anyhow::Result<Item> {
    Ok(match event {
        Event::Imei(imei) => Item {
            offset,
            kind: "imei",
            json: serde_json::json!({"offset": offset, "type": "imei", "imei": imei.to_string()}),
            reply: Some(vec![0x01]),
        },
        Event::KeepAlive => Item {
            offset,
            kind: "keep-alive",
            json: serde_json::json!({"offset": offset, "type": "keep_alive"}),
            reply: None,
        },
        Event::Frame { frame, deviations } => {
            let mut json = json::tcp_frame(offset, &frame);
            if !deviations.is_empty() {
                json["deviations"] = deviations.iter().map(|d| d.to_string()).collect();
            }
            match frame {
                TcpFrameView::Avl(packet) => Item {
                    offset,
                    kind: "AVL frame",
                    json,
                    reply: Some(encode_avl_ack(u32::from(packet.record_count())).to_vec()),
                },
                TcpFrameView::Gprs(_) => Item {
                    offset,
                    kind: "GPRS frame (codec 12-15)",
                    json,
                    reply: None,
                },
            }
        }
        Event::Rejected { error, codec_id } => {
            bail!(
                "invalid frame at byte {offset}: {error} (offsets within the frame; codec byte {codec_id:?})"
            )
        }
    })
}

fn decode_udp(bytes: &[u8], options: DecodeOptions) -> anyhow::Result<Vec<Item>> {
    let mut items = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let decoded = options.decode_datagram(&bytes[pos..]).map_err(|e| {
            anyhow::anyhow!("invalid datagram at byte {pos}: {e} (offsets within the datagram)")
        })?;
        let mut json = json::datagram(pos, &decoded.value);
        if !decoded.deviations.is_empty() {
            json["deviations"] = decoded.deviations.iter().map(|d| d.to_string()).collect();
        }
        let ack: UdpAck = decoded.value.ack(decoded.value.packet().record_count());
        items.push(Item {
            offset: pos,
            kind: "UDP datagram",
            json,
            reply: Some(ack.encode().to_vec()),
        });
        pos += decoded.consumed.max(1);
    }
    Ok(items)
}
