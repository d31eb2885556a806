//! Integration tests of the `teltonika` binary: run it on fixture frames (the repository's
//! `fixtures/teltonika/vectors.json`) and on invalid input.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a failure to spawn or read is a test failure"
)]

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_teltonika"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn teltonika");
    let mut pipe = child.stdin.take().expect("stdin");
    pipe.write_all(stdin.unwrap_or_default())
        .expect("write stdin");
    drop(pipe);
    child.wait_with_output().expect("wait")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("utf-8 stderr")
}

fn vectors() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/teltonika/vectors.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("read vectors")).expect("json")
}

fn hex_of(v: &Value) -> String {
    v["hex"]
        .as_str()
        .expect("hex")
        .split_whitespace()
        .collect::<String>()
        .to_lowercase()
}

/// TCP AVL vectors (codecs 8, 8E, 16).
fn tcp_avl_vectors() -> Vec<Value> {
    vectors()
        .into_iter()
        .filter(|v| {
            v["transport"] == "tcp" && matches!(v["codec"].as_str(), Some("08" | "8E" | "10"))
        })
        .collect()
}

const CODEC8: &str = "000000000000003608010000016B40D8EA30010000000000000000000000000000000105021503010101425E0F01F10000601A014E0000000000000000010000C7CF";

#[test]
fn decodes_a_codec8_frame_to_json() {
    let o = run(&["decode", CODEC8], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["type"], "avl");
    assert_eq!(v["codec"], "8");
    assert_eq!(v["records"][0]["timestamp"], "2019-06-10T10:04:46.000Z");
    assert_eq!(
        v["records"][0]["io"][2],
        serde_json::json!({"id": 66, "size": 2, "value": 24079})
    );
}

#[test]
fn hex_with_spaces_and_prefixes_from_stdin_and_file() {
    let spaced: String = CODEC8
        .as_bytes()
        .chunks(2)
        .map(|b| format!("0x{} ", std::str::from_utf8(b).unwrap()))
        .collect();
    let from_stdin = run(&["decode"], Some(spaced.as_bytes()));
    assert!(from_stdin.status.success(), "{}", stderr(&from_stdin));
    let direct = run(&["decode", CODEC8], None);
    assert_eq!(stdout(&from_stdin), stdout(&direct));

    let dir = std::env::temp_dir().join(format!("teltonika-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join("frame.bin");
    let bytes: Vec<u8> = (0..CODEC8.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&CODEC8[i..i + 2], 16).unwrap())
        .collect();
    std::fs::write(&bin, &bytes).unwrap();
    let from_file = run(
        &["decode", "--file", bin.to_str().unwrap(), "--binary"],
        None,
    );
    assert_eq!(
        stdout(&from_file),
        stdout(&direct),
        "{}",
        stderr(&from_file)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tcp_stream_with_handshake_and_keep_alive() {
    let imei = "000f333536333037303432343431303133";
    let o = run(&["decode", &format!("{imei} ff {CODEC8} {CODEC8}")], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["imei"], "356307042441013");
    assert_eq!(lines[1]["type"], "keep_alive");
    assert_eq!(lines[2]["offset"], 18);
    assert_eq!(lines[3]["offset"], 18 + CODEC8.len() / 2);
    let ack = run(&["ack", &format!("{imei} {CODEC8}")], None);
    assert_eq!(stdout(&ack), "01\n00000001\n");
}

#[test]
fn every_fixture_avl_frame_acks_and_round_trips() {
    let mut valid = 0;
    for v in tcp_avl_vectors() {
        let hex = hex_of(&v);
        let id = v["id"].as_str().unwrap_or("?");
        let decoded = run(&["decode", "--frame", &hex], None);
        if !decoded.status.success() {
            // Deliberately broken vectors: the message must point at a byte.
            assert_eq!(decoded.status.code(), Some(1), "{id}");
            assert!(
                stderr(&decoded).contains("byte"),
                "{id}: {}",
                stderr(&decoded)
            );
            continue;
        }
        valid += 1;
        let frame: Value = serde_json::from_str(stdout(&decoded).trim()).unwrap();
        let records = frame["records"].as_array().unwrap().len();
        let ack = run(&["ack", "--frame", &hex], None);
        assert!(ack.status.success(), "{id}: {}", stderr(&ack));
        assert_eq!(stdout(&ack).trim(), format!("{records:08x}"), "{id}");
        if let Some(want) = v["expect"]["server_ack_hex"].as_str() {
            assert_eq!(stdout(&ack).trim(), want.to_lowercase(), "{id}");
        }
        let encoded = run(&["encode"], Some(&decoded.stdout));
        assert!(encoded.status.success(), "{id}: {}", stderr(&encoded));
        assert_eq!(
            stdout(&encoded).trim(),
            hex,
            "{id}: decode -> encode changed the frame"
        );
    }
    assert!(valid >= 40, "only {valid} vectors decoded");
}

#[test]
fn udp_fixture_datagrams_decode_and_round_trip() {
    let mut seen = 0;
    for v in vectors().into_iter().filter(|v| v["transport"] == "udp") {
        let hex = hex_of(&v);
        let decoded = run(&["decode", "--udp", &hex], None);
        if !decoded.status.success() {
            continue; // deliberately invalid vectors; the codec's own tests cover them
        }
        seen += 1;
        let encoded = run(&["encode"], Some(&decoded.stdout));
        assert!(encoded.status.success(), "{}", stderr(&encoded));
        assert_eq!(
            stdout(&encoded).split_whitespace().collect::<String>(),
            hex,
            "{}",
            v["id"]
        );
        let ack = run(&["ack", "--udp", &hex], None);
        assert!(ack.status.success());
        assert_eq!(
            stdout(&ack).lines().count(),
            stdout(&decoded).lines().count()
        );
    }
    assert!(seen > 10, "only {seen} UDP vectors decoded");
}

#[test]
fn gprs_command_encodes_and_is_not_acked() {
    let o = run(
        &[
            "encode",
            r#"{"type":"gprs","message_type":5,"payload_text":"getinfo"}"#,
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let hex = stdout(&o).trim().to_owned();
    assert_eq!(
        hex,
        "000000000000000f0c010500000007676574696e666f0100004312"
    );
    let d = run(&["decode", &hex], None);
    let v: Value = serde_json::from_str(stdout(&d).trim()).unwrap();
    assert_eq!(v["codec"], 12);
    assert_eq!(v["payload_text"], "getinfo");
    let ack = run(&["ack", &hex], None);
    assert!(ack.status.success());
    assert_eq!(stdout(&ack), "");
    assert!(
        stderr(&ack).contains("no reply is owed"),
        "{}",
        stderr(&ack)
    );
}

#[test]
fn bad_crc_fails_strict_with_offset_and_is_reported_lenient() {
    let mut bad = CODEC8.to_owned();
    bad.replace_range(bad.len() - 2.., "00");
    let o = run(&["decode", &bad], None);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("byte"), "{err}");
    assert!(err.to_lowercase().contains("crc"), "{err}");

    let o = run(&["decode", "--lenient", &bad], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let deviations = v["deviations"].as_array().expect("deviations listed");
    assert!(!deviations.is_empty());
}

#[test]
fn invalid_input_exits_1_with_the_offset() {
    let o = run(&["decode", "00 0g"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("character 4"), "{}", stderr(&o));

    let o = run(&["decode", &CODEC8[..60]], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("at byte 0"), "{}", stderr(&o));

    let o = run(&["decode", &format!("{CODEC8}0000")], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(&format!("at byte {}", CODEC8.len() / 2)),
        "{}",
        stderr(&o)
    );

    let o = run(&["decode", "--frame", &format!("{CODEC8}{CODEC8}")], None);
    assert_eq!(o.status.code(), Some(1));

    let o = run(
        &["encode", r#"{"type":"avl","codec":"9","records":[]}"#],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("codec"), "{}", stderr(&o));
}

#[test]
fn usage_errors_exit_2_naming_the_argument() {
    let o = run(&["decode", "--bogus"], None);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("'--bogus'") && err.contains("Usage: teltonika decode"),
        "{err}"
    );
    let o = run(&["frobnicate"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("'frobnicate'"), "{}", stderr(&o));
    // Two framing modes at once is a contradiction, not "the last one wins".
    let o = run(&["decode", "--tcp", "--udp", "00"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("'--tcp' cannot be used with '--udp'"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn help_and_version_exit_0() {
    let o = run(&["--help"], None);
    assert_eq!(o.status.code(), Some(0));
    let help = String::from_utf8_lossy(&o.stdout);
    for command in ["decode", "encode", "ack", "completions"] {
        assert!(help.contains(command), "{help}");
    }
    let o = run(&["--version"], None);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("teltonika "));
}

#[test]
fn completions_name_every_command() {
    let o = run(&["completions", "bash"], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let script = String::from_utf8_lossy(&o.stdout);
    assert!(script.contains("complete -F"), "{script}");
    for word in ["decode", "encode", "ack", "--lenient", "--binary"] {
        assert!(script.contains(word), "{word} missing");
    }
}
