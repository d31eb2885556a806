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
use clap::{CommandFactory as _, Parser, Subcommand};
use teltonika_codec::{DecodeOptions, Event, Framer, Step, TcpFrameView, UdpAck, encode_avl_ack};

/// Decode, encode and acknowledge Teltonika frames.
///
/// Input comes from the HEX/JSON argument, else --file, else standard input. Hex may contain
/// spaces, newlines and 0x prefixes; --binary reads raw bytes (files and stdin only).
///
/// Exit status: 0 on success, 1 on invalid input (the message names the byte offset), 2 on a
/// usage error.
#[derive(Debug, Parser)]
#[command(
    name = "teltonika",
    version,
    about,
    long_about,
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode frames to JSON, one object per handshake, frame or datagram.
    ///
    /// With --lenient, frames with a bad CRC or count are decoded anyway and their
    /// "deviations" listed.
    Decode {
        #[command(flatten)]
        input: InputArgs,
        #[command(flatten)]
        mode: ModeArgs,
        /// Decode frames whose CRC, record counts or IO totals are wrong, listing each defect.
        #[arg(long)]
        lenient: bool,
    },
    /// Encode JSON objects (as `decode` prints them; one per line, or an array) to frames in hex.
    Encode {
        /// The JSON text (else --file, else standard input).
        #[arg(value_name = "JSON")]
        text: Option<String>,
        /// Read the JSON from this file.
        #[arg(short, long, value_name = "PATH")]
        file: Option<String>,
    },
    /// Print, per frame, the reply a server sends (hex), and say when none is owed.
    Ack {
        #[command(flatten)]
        input: InputArgs,
        #[command(flatten)]
        mode: ModeArgs,
    },
    /// Print a completion script for SHELL (e.g. `teltonika completions bash > /etc/bash_completion.d/teltonika`).
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

/// Where the bytes come from.
#[derive(Debug, clap::Args)]
struct InputArgs {
    /// Hex of the input (else --file, else standard input).
    #[arg(value_name = "HEX")]
    text: Option<String>,
    /// Read the input from this file.
    #[arg(short, long, value_name = "PATH")]
    file: Option<String>,
    /// The file or standard input holds raw bytes, not hex.
    #[arg(long)]
    binary: bool,
}

/// How to cut the input into frames (at most one; --auto by default).
#[derive(Debug, clap::Args)]
#[group(multiple = false)]
struct ModeArgs {
    /// Guess from the first bytes (the default).
    #[arg(long)]
    auto: bool,
    /// A TCP stream: optional IMEI handshake, frames, 0xFF keep-alives.
    #[arg(long)]
    tcp: bool,
    /// Exactly one TCP frame.
    #[arg(long)]
    frame: bool,
    /// One or more UDP datagrams back to back.
    #[arg(long)]
    udp: bool,
}

impl ModeArgs {
    fn mode(&self) -> Mode {
        match (self.tcp, self.frame, self.udp) {
            (true, _, _) => Mode::Tcp,
            (_, true, _) => Mode::Frame,
            (_, _, true) => Mode::Udp,
            _ => Mode::Auto,
        }
    }
}

/// How to cut the input into frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Auto,
    Tcp,
    Frame,
    Udp,
}

/// The input of one command, as `input.rs` reads it.
#[derive(Debug)]
struct Args {
    text: Option<String>,
    file: Option<String>,
    binary: bool,
}

impl From<&InputArgs> for Args {
    fn from(input: &InputArgs) -> Self {
        Args {
            text: input.text.clone(),
            file: input.file.clone(),
            binary: input.binary,
        }
    }
}

fn main() -> ExitCode {
    // clap prints usage errors (naming the argument) and exits 2; --help/--version exit 0.
    let cli = Cli::parse();
    match run(&cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("teltonika: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(command: &Command) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match command {
        Command::Decode {
            input,
            mode,
            lenient,
        } => {
            let bytes = input::bytes(&input.into())?;
            for item in decode_all(&bytes, mode.mode(), *lenient)? {
                writeln!(out, "{}", item.json)?;
            }
        }
        Command::Ack { input, mode } => {
            let bytes = input::bytes(&input.into())?;
            for item in decode_all(&bytes, mode.mode(), false)? {
                match item.reply {
                    Some(reply) => writeln!(out, "{}", input::to_hex(&reply))?,
                    None => eprintln!("offset {}: {}: no reply is owed", item.offset, item.kind),
                }
            }
        }
        Command::Encode { text, file } => {
            let text = input::text(&Args {
                text: text.clone(),
                file: file.clone(),
                binary: false,
            })?;
            for (i, frame) in json::parse_frames(&text)?.iter().enumerate() {
                let bytes = json::encode(frame).with_context(|| format!("object {i}"))?;
                writeln!(out, "{}", input::to_hex(&bytes))?;
            }
        }
        Command::Completions { shell } => {
            // Into memory first: clap_complete panics on a failed write (e.g. a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "teltonika", &mut script);
            out.write_all(&script)?;
        }
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
