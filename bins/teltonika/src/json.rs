//! The JSON shape of frames: what `decode` prints and `encode` reads.
//!
//! A TCP AVL frame: `{"offset", "type": "avl", "transport": "tcp", "codec": "8"|"8E"|"16",
//! "records": [...]}`; a UDP datagram adds `packet_id`, `not_usable`, `avl_packet_id`, `imei`;
//! a GPRS frame: `{"type": "gprs", "codec": 12..15, "message_type", "timestamp_s"?, "imei"?,
//! "payload_hex", "payload_text"?}`; also `{"type": "imei", "imei"}` and
//! `{"type": "keep_alive"}`. A record: `timestamp` (ISO), `timestamp_ms`, `priority`,
//! `latitude`/`longitude` (degrees) and their `_raw` integers, `altitude`, `angle`,
//! `satellites`, `speed`, `event_io_id`, `generation_type` (Codec 16) and `io`: a list of
//! `{"id", "size": 1|2|4|8, "value"}` or `{"id", "bytes": "<hex>"}` (NX) in wire order.

use anyhow::{Context as _, anyhow, bail};
use serde_json::{Map, Value, json};
use teltonika_codec::stream_record::{EntryCodec, format_timestamp};
use teltonika_codec::{
    AvlCodec, AvlPacket, AvlPacketView, AvlRecord, AvlRecordView, Datagram, DatagramView,
    GenerationType, GprsMessage, GprsMessageView, Gps, Imei, IoElement, IoList, IoValue,
    IoValueView, Priority, TcpFrame, TcpFrameView, encode_imei,
};
use time::OffsetDateTime;

use crate::input::{parse_hex, to_hex};

fn codec_name(codec: AvlCodec) -> &'static str {
    EntryCodec::from(codec).as_str()
}

fn generation_number(g: GenerationType) -> Option<u8> {
    (0..=7).find(|&n| GenerationType::from_u8(n) == Some(g))
}

fn record(r: &AvlRecordView<'_>) -> Value {
    let gps = r.gps();
    let io: Vec<Value> = r
        .io()
        .map(|e| match e.value {
            IoValueView::U8(v) => json!({"id": e.id, "size": 1, "value": v}),
            IoValueView::U16(v) => json!({"id": e.id, "size": 2, "value": v}),
            IoValueView::U32(v) => json!({"id": e.id, "size": 4, "value": v}),
            IoValueView::U64(v) => json!({"id": e.id, "size": 8, "value": v}),
            IoValueView::Bytes(b) => json!({"id": e.id, "bytes": to_hex(b)}),
        })
        .collect();
    let mut out = json!({
        "timestamp": format_timestamp(r.timestamp()),
        "timestamp_ms": r.timestamp_ms(),
        "priority": r.priority() as u8,
        "latitude": gps.latitude(),
        "longitude": gps.longitude(),
        "latitude_raw": gps.latitude_raw,
        "longitude_raw": gps.longitude_raw,
        "altitude": gps.altitude,
        "angle": gps.angle,
        "satellites": gps.satellites,
        "speed": gps.speed,
        "event_io_id": r.event_io_id(),
    });
    if let Some(g) = r.generation_type().and_then(generation_number) {
        out["generation_type"] = g.into();
    }
    out["io"] = io.into();
    out
}

fn records(p: &AvlPacketView<'_>) -> Value {
    p.records().map(|r| record(&r)).collect()
}

fn gprs(offset: usize, m: &GprsMessageView<'_>) -> Value {
    let mut out = json!({
        "offset": offset,
        "type": "gprs",
        "codec": m.codec().id(),
        "message_type": m.message_type(),
    });
    if let Some(t) = m.timestamp_s() {
        out["timestamp_s"] = t.into();
    }
    if let Some(imei) = m.imei() {
        out["imei"] = imei.to_string().into();
    }
    out["payload_hex"] = to_hex(m.payload()).into();
    if let Ok(text) = std::str::from_utf8(m.payload()) {
        out["payload_text"] = text.into();
    }
    out
}

/// A TCP frame as JSON.
pub(crate) fn tcp_frame(offset: usize, frame: &TcpFrameView<'_>) -> Value {
    match frame {
        TcpFrameView::Avl(p) => json!({
            "offset": offset,
            "type": "avl",
            "transport": "tcp",
            "codec": codec_name(p.codec()),
            "records": records(p),
        }),
        TcpFrameView::Gprs(m) => gprs(offset, m),
    }
}

/// A UDP datagram as JSON.
pub(crate) fn datagram(offset: usize, d: &DatagramView<'_>) -> Value {
    json!({
        "offset": offset,
        "type": "avl",
        "transport": "udp",
        "packet_id": d.packet_id(),
        "not_usable": d.not_usable(),
        "avl_packet_id": d.avl_packet_id(),
        "imei": d.imei().to_string(),
        "codec": codec_name(d.packet().codec()),
        "records": records(&d.packet()),
    })
}

/// JSON objects from `text`: one per line, several concatenated, or an array of them.
pub(crate) fn parse_frames(text: &str) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for value in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
        match value.context("invalid JSON")? {
            Value::Array(items) => out.extend(items),
            v => out.push(v),
        }
    }
    if out.is_empty() {
        bail!("no JSON objects in the input");
    }
    Ok(out)
}

fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> anyhow::Result<&'a Value> {
    obj.get(key)
        .ok_or_else(|| anyhow!("missing field \"{key}\""))
}

fn uint<T: TryFrom<u64>>(obj: &Map<String, Value>, key: &str) -> anyhow::Result<T> {
    let v = field(obj, key)?
        .as_u64()
        .ok_or_else(|| anyhow!("field \"{key}\" must be a non-negative integer"))?;
    T::try_from(v).map_err(|_| anyhow!("field \"{key}\": {v} is out of range"))
}

fn int<T: TryFrom<i64>>(obj: &Map<String, Value>, key: &str) -> anyhow::Result<T> {
    let v = field(obj, key)?
        .as_i64()
        .ok_or_else(|| anyhow!("field \"{key}\" must be an integer"))?;
    T::try_from(v).map_err(|_| anyhow!("field \"{key}\": {v} is out of range"))
}

fn string<'a>(obj: &'a Map<String, Value>, key: &str) -> anyhow::Result<&'a str> {
    field(obj, key)?
        .as_str()
        .ok_or_else(|| anyhow!("field \"{key}\" must be a string"))
}

fn imei(obj: &Map<String, Value>) -> anyhow::Result<Imei> {
    let text = string(obj, "imei")?;
    Imei::from_ascii(text.as_bytes()).map_err(|e| anyhow!("field \"imei\": {e}"))
}

fn avl_codec(obj: &Map<String, Value>) -> anyhow::Result<AvlCodec> {
    let name = match field(obj, "codec")? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => bail!("field \"codec\" must be \"8\", \"8E\" or \"16\""),
    };
    let codec: EntryCodec = name.parse().map_err(|e| anyhow!("field \"codec\": {e}"))?;
    Ok(codec.into())
}

/// Degrees × 10^7 from `<key>_raw`, else from `<key>` in degrees.
fn coordinate(obj: &Map<String, Value>, key: &str) -> anyhow::Result<i32> {
    let raw_key = format!("{key}_raw");
    if obj.contains_key(&raw_key) {
        return int(obj, &raw_key);
    }
    let degrees = field(obj, key)?
        .as_f64()
        .ok_or_else(|| anyhow!("field \"{key}\" must be a number"))?;
    let raw = (degrees * 1e7).round();
    if !(f64::from(i32::MIN)..=f64::from(i32::MAX)).contains(&raw) {
        bail!("field \"{key}\": {degrees} is out of range");
    }
    Ok(raw as i32)
}

fn avl_record(v: &Value, codec: AvlCodec) -> anyhow::Result<AvlRecord> {
    let obj = v.as_object().context("a record must be an object")?;
    let ms: u64 = uint(obj, "timestamp_ms")?;
    let timestamp = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| anyhow!("field \"timestamp_ms\": {e}"))?;
    let priority = Priority::from_u8(uint(obj, "priority")?)
        .context("field \"priority\" must be 0, 1 or 2")?;
    let generation_type = match obj.get("generation_type") {
        None | Some(Value::Null) => None,
        Some(_) => Some(
            GenerationType::from_u8(uint(obj, "generation_type")?)
                .context("field \"generation_type\" must be 0..=7")?,
        ),
    };
    let mut io = Vec::new();
    for (i, e) in field(obj, "io")?
        .as_array()
        .context("field \"io\" must be a list")?
        .iter()
        .enumerate()
    {
        let e = e
            .as_object()
            .with_context(|| format!("io[{i}] must be an object"))?;
        let id: u16 = uint(e, "id").with_context(|| format!("io[{i}]"))?;
        let value = if let Some(hex) = e.get("bytes") {
            let hex = hex
                .as_str()
                .with_context(|| format!("io[{i}].bytes must be hex text"))?;
            IoValue::Bytes(parse_hex(hex.as_bytes()).with_context(|| format!("io[{i}].bytes"))?)
        } else {
            let size: u8 = uint(e, "size").with_context(|| format!("io[{i}]"))?;
            match size {
                1 => IoValue::U8(uint(e, "value").with_context(|| format!("io[{i}]"))?),
                2 => IoValue::U16(uint(e, "value").with_context(|| format!("io[{i}]"))?),
                4 => IoValue::U32(uint(e, "value").with_context(|| format!("io[{i}]"))?),
                8 => IoValue::U64(uint(e, "value").with_context(|| format!("io[{i}]"))?),
                other => bail!("io[{i}].size must be 1, 2, 4 or 8, not {other}"),
            }
        };
        io.push(IoElement { id, value });
    }
    Ok(AvlRecord {
        timestamp,
        priority,
        gps: Gps {
            longitude_raw: coordinate(obj, "longitude")?,
            latitude_raw: coordinate(obj, "latitude")?,
            altitude: int(obj, "altitude")?,
            angle: uint(obj, "angle")?,
            satellites: uint(obj, "satellites")?,
            speed: uint(obj, "speed")?,
        },
        event_io_id: uint(obj, "event_io_id")?,
        generation_type,
        io: IoList::from_elements(codec, &io)?,
    })
}

fn avl_packet(obj: &Map<String, Value>) -> anyhow::Result<AvlPacket> {
    let codec = avl_codec(obj)?;
    let records = field(obj, "records")?
        .as_array()
        .context("field \"records\" must be a list")?
        .iter()
        .enumerate()
        .map(|(i, r)| avl_record(r, codec).with_context(|| format!("records[{i}]")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(AvlPacket { codec, records })
}

/// The bytes for one JSON object as `decode` prints it.
pub(crate) fn encode(v: &Value) -> anyhow::Result<Vec<u8>> {
    let obj = v.as_object().context("expected a JSON object")?;
    match string(obj, "type")? {
        "imei" => Ok(encode_imei(imei(obj)?).to_vec()),
        "keep_alive" => Ok(vec![0xFF]),
        "avl" => {
            let packet = avl_packet(obj)?;
            match obj
                .get("transport")
                .and_then(Value::as_str)
                .unwrap_or("tcp")
            {
                "tcp" => TcpFrame::Avl(packet).encode().map_err(|e| anyhow!("{e}")),
                "udp" => Datagram {
                    packet_id: uint(obj, "packet_id")?,
                    not_usable: obj
                        .get("not_usable")
                        .map_or(Ok(1), |_| uint(obj, "not_usable"))?,
                    avl_packet_id: uint(obj, "avl_packet_id")?,
                    imei: imei(obj)?,
                    packet,
                }
                .encode()
                .map_err(|e| anyhow!("{e}")),
                other => bail!("field \"transport\" must be \"tcp\" or \"udp\", not {other:?}"),
            }
        }
        "gprs" => {
            let payload = match (obj.get("payload_hex"), obj.get("payload_text")) {
                (Some(Value::String(hex)), _) => {
                    parse_hex(hex.as_bytes()).context("field \"payload_hex\"")?
                }
                (None, Some(Value::String(text))) => text.clone().into_bytes(),
                _ => bail!("a gprs object needs \"payload_hex\" or \"payload_text\""),
            };
            let timestamp = match obj.get("timestamp_s") {
                None | Some(Value::Null) => None,
                Some(_) => Some(
                    OffsetDateTime::from_unix_timestamp(uint::<i64>(obj, "timestamp_s")?)
                        .map_err(|e| anyhow!("field \"timestamp_s\": {e}"))?,
                ),
            };
            let imei = match obj.get("imei") {
                None | Some(Value::Null) => None,
                Some(_) => Some(imei(obj)?),
            };
            let message = GprsMessage {
                message_type: uint(obj, "message_type")?,
                timestamp,
                imei,
                payload,
            };
            if let Some(codec) = obj.get("codec").and_then(Value::as_u64)
                && codec != u64::from(message.codec().id())
            {
                bail!(
                    "field \"codec\": {codec} does not match the fields given (they make codec {})",
                    message.codec().id()
                );
            }
            TcpFrame::Gprs(message).encode().map_err(|e| anyhow!("{e}"))
        }
        other => bail!("unknown \"type\" {other:?} (expected avl, gprs, imei or keep_alive)"),
    }
}
