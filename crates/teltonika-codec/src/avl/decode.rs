//! One-pass validation of an AVL data field: counts, every record, every IO group; the
//! errors name what is wrong and the byte offset.

use crate::error::{Error, Result};

use super::types::*;
use super::view::*;

#[cold]
fn truncated(offset: usize, what: &'static str, needed: usize) -> Error {
    Error::Truncated {
        offset,
        what,
        needed,
    }
}

/// Parses one record at the start of `input`; `offset` is its absolute position (for
/// errors). Returns the view, its length, and an IO-total mismatch if there is one (fatal
/// in strict mode, a deviation in lenient mode).
#[inline]
pub(super) fn parse_record(
    codec: AvlCodec,
    input: &[u8],
    offset: usize,
) -> Result<(AvlRecordView<'_>, Option<Error>)> {
    let Some(head) = input.first_chunk::<HEAD_LEN>() else {
        return Err(truncated(offset, "record header", HEAD_LEN - input.len()));
    };
    let Some(priority) = Priority::from_u8(head[8]) else {
        return Err(Error::BadPriority {
            offset: offset + 8,
            value: head[8],
        });
    };
    let millis = u64::from_be_bytes([
        head[0], head[1], head[2], head[3], head[4], head[5], head[6], head[7],
    ]);
    if millis > MAX_TIMESTAMP_MS {
        return Err(Error::TimestampOutOfRange { offset, millis });
    }
    let mut pos = HEAD_LEN;
    let (event_io_id, generation_type, io_total) = match codec {
        AvlCodec::Codec8 => {
            let Some(&[event, total]) = input.get(pos..).and_then(<[u8]>::first_chunk::<2>) else {
                return Err(truncated(offset + pos, "event IO id and IO total", 2));
            };
            pos += 2;
            (u16::from(event), None, u16::from(total))
        }
        AvlCodec::Codec8Ext => {
            let Some(&[e0, e1, t0, t1]) = input.get(pos..).and_then(<[u8]>::first_chunk::<4>)
            else {
                return Err(truncated(offset + pos, "event IO id and IO total", 4));
            };
            pos += 4;
            (
                u16::from_be_bytes([e0, e1]),
                None,
                u16::from_be_bytes([t0, t1]),
            )
        }
        AvlCodec::Codec16 => {
            let Some(&[e0, e1, generation, total]) =
                input.get(pos..).and_then(<[u8]>::first_chunk::<4>)
            else {
                return Err(truncated(
                    offset + pos,
                    "event IO id, generation type and IO total",
                    4,
                ));
            };
            let Some(generation) = GenerationType::from_u8(generation) else {
                return Err(Error::BadGenerationType {
                    offset: offset + pos + 2,
                    value: generation,
                });
            };
            pos += 4;
            (
                u16::from_be_bytes([e0, e1]),
                Some(generation),
                u16::from(total),
            )
        }
    };
    let total_at = pos - if codec == AvlCodec::Codec8Ext { 2 } else { 1 };
    let io_start = pos;
    let mut counted = 0u32;
    match codec {
        AvlCodec::Codec8 | AvlCodec::Codec16 => {
            let id_len = codec.id_len();
            for width in [1usize, 2, 4, 8] {
                let Some(&count) = input.get(pos) else {
                    return Err(truncated(offset + pos, "IO group count", 1));
                };
                let group_at = pos;
                pos += 1 + usize::from(count) * (id_len + width);
                if pos > input.len() {
                    return Err(truncated(offset + group_at, "IO group", pos - input.len()));
                }
                counted += u32::from(count);
            }
        }
        AvlCodec::Codec8Ext => {
            for width in [1usize, 2, 4, 8] {
                let Some(&[c0, c1]) = input.get(pos..).and_then(<[u8]>::first_chunk::<2>) else {
                    return Err(truncated(offset + pos, "IO group count", 2));
                };
                let count = u16::from_be_bytes([c0, c1]);
                let group_at = pos;
                pos += 2 + usize::from(count) * (2 + width);
                if pos > input.len() {
                    return Err(truncated(offset + group_at, "IO group", pos - input.len()));
                }
                counted += u32::from(count);
            }
            let Some(&[c0, c1]) = input.get(pos..).and_then(<[u8]>::first_chunk::<2>) else {
                return Err(truncated(offset + pos, "NX group count", 2));
            };
            let count = u16::from_be_bytes([c0, c1]);
            pos += 2;
            for _ in 0..count {
                let Some(&[_, _, l0, l1]) = input.get(pos..).and_then(<[u8]>::first_chunk::<4>)
                else {
                    return Err(truncated(offset + pos, "NX element header", 4));
                };
                let element_at = pos;
                pos += 4 + usize::from(u16::from_be_bytes([l0, l1]));
                if pos > input.len() {
                    return Err(truncated(
                        offset + element_at,
                        "NX value",
                        pos - input.len(),
                    ));
                }
            }
            counted += u32::from(count);
        }
    }
    let mismatch = (counted != u32::from(io_total)).then_some(Error::IoTotalMismatch {
        offset: offset + total_at,
        declared: io_total,
        counted,
    });
    let (Some(bytes), Some(io)) = (input.get(..pos), input.get(io_start..pos)) else {
        // pos <= input.len() was checked after every step.
        return Err(truncated(offset + pos, "record", 0));
    };
    let view = AvlRecordView {
        codec,
        bytes,
        head,
        priority,
        event_io_id,
        generation_type,
        io_total,
        io_counted: counted,
        io,
    };
    Ok((view, mismatch))
}

/// Walks `count` records from the start of `records` with every strict check, and returns
/// where they end; on a defect, returns the start of the record that has it.
#[inline(always)]
fn walk_records<const ID: usize, const COUNT: usize, const NX: bool>(
    records: &[u8],
    count: u8,
) -> core::result::Result<usize, usize> {
    let mut pos = 0;
    for _ in 0..count {
        match record_end::<ID, COUNT, NX>(records, pos) {
            Some(end) => pos = end,
            None => return Err(pos),
        }
    }
    Ok(pos)
}

#[inline(always)]
fn read_count<const COUNT: usize>(input: &[u8], pos: usize) -> Option<usize> {
    if COUNT == 2 {
        let &[high, low] = input.get(pos..)?.first_chunk::<2>()?;
        Some(usize::from(u16::from_be_bytes([high, low])))
    } else {
        input.get(pos).map(|&count| usize::from(count))
    }
}

/// End of the record starting at `start`, if it passes every strict check. `ID` is the IO id
/// width (1 in codec 8), `COUNT` the count width (2 in 8E), `NX` whether an NX group
/// follows (8E); codec 16 is the one with `ID = 2, COUNT = 1` and a generation type.
#[inline(always)]
fn record_end<const ID: usize, const COUNT: usize, const NX: bool>(
    input: &[u8],
    start: usize,
) -> Option<usize> {
    let head = input.get(start..)?.first_chunk::<HEAD_LEN>()?;
    let millis = u64::from_be_bytes([
        head[0], head[1], head[2], head[3], head[4], head[5], head[6], head[7],
    ]);
    if head[8] > 2 || millis > MAX_TIMESTAMP_MS {
        return None;
    }
    let generation = ID == 2 && COUNT == 1;
    let mut pos = start + HEAD_LEN + ID;
    if generation {
        if *input.get(pos)? > 7 {
            return None;
        }
        pos += 1;
    }
    let declared = read_count::<COUNT>(input, pos)?;
    pos += COUNT;
    let mut counted = 0;
    for width in [1, 2, 4, 8] {
        let count = read_count::<COUNT>(input, pos)?;
        pos += COUNT + count * (ID + width);
        counted += count;
    }
    if NX {
        let count = read_count::<2>(input, pos)?;
        pos += 2;
        for _ in 0..count {
            let len = read_count::<2>(input, pos + 2)?;
            pos += 4 + len;
        }
        counted += count;
    }
    (pos <= input.len() && counted == declared).then_some(pos)
}

/// The detailed error for the record at `at` that the fast walk refused.
#[cold]
#[inline(never)]
fn record_error(codec: AvlCodec, records: &[u8], at: usize, records_at: usize) -> Error {
    let rest = records.get(at..).unwrap_or_default();
    match parse_record(codec, rest, records_at + at) {
        Err(error) | Ok((_, Some(error))) => error,
        // Unreachable: both walks apply the same checks.
        Ok((_, None)) => truncated(records_at + at, "record", 0),
    }
}

/// Validates an AVL data field (`codec id` · `count` · records · `count`), `base` being its
/// absolute offset. Strict mode returns the first defect; lenient mode walks the records
/// that are there and reports count, zero-count and IO-total defects in `deviations`.
pub(crate) fn parse_avl_data<'a>(
    codec: AvlCodec,
    data: &'a [u8],
    base: usize,
    lenient: bool,
    deviations: &mut Vec<Error>,
) -> Result<AvlPacketView<'a>> {
    let len = data.len();
    if len < 3 {
        let what = if len < 2 {
            "record count"
        } else {
            "second record count"
        };
        return Err(truncated(base + len, what, 3 - len));
    }
    let (first, second) = (data[1], data[len - 1]);
    let records = &data[2..len - 1];
    let records_at = base + 2;
    if !lenient {
        if first != second {
            return Err(Error::CountMismatch {
                offset: base + 1,
                first,
                second,
            });
        }
        if first == 0 {
            return Err(Error::ZeroRecords { offset: base + 1 });
        }
        // Fast path: walk without building views or errors; on the first defect, the
        // detailed parser names it.
        let walked = match codec {
            AvlCodec::Codec8 => walk_records::<1, 1, false>(records, first),
            AvlCodec::Codec8Ext => walk_records::<2, 2, true>(records, first),
            AvlCodec::Codec16 => walk_records::<2, 1, false>(records, first),
        };
        let pos = match walked {
            Ok(pos) => pos,
            Err(at) => return Err(record_error(codec, records, at, records_at)),
        };
        if pos != records.len() {
            return Err(Error::TrailingBytes {
                offset: records_at + pos,
                count: records.len() - pos,
            });
        }
        return Ok(AvlPacketView {
            codec,
            count: first,
            records,
        });
    }
    let mut pos = 0;
    let mut found = 0usize;
    while pos < records.len() && found < usize::from(u8::MAX) {
        let rest = records.get(pos..).unwrap_or_default();
        let (view, mismatch) = parse_record(codec, rest, records_at + pos)?;
        deviations.extend(mismatch);
        pos += view.bytes.len();
        found += 1;
    }
    if pos != records.len() {
        return Err(Error::TrailingBytes {
            offset: records_at + pos,
            count: records.len() - pos,
        });
    }
    if first != second {
        deviations.push(Error::CountMismatch {
            offset: base + 1,
            first,
            second,
        });
    }
    if first == 0 {
        deviations.push(Error::ZeroRecords { offset: base + 1 });
    }
    if found != usize::from(first) {
        deviations.push(Error::RecordsFound {
            offset: base + 1,
            declared: first,
            found,
        });
    }
    Ok(AvlPacketView {
        codec,
        count: found as u8,
        records,
    })
}
