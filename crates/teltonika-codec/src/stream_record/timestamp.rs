//! RFC 3339 timestamps: a strict hand-written parser (any offset, any number of fractional
//! digits, normalised to UTC) and the JavaScript `Date.prototype.toISOString` format
//! (`YYYY-MM-DDTHH:MM:SS.mmmZ`) for output.
//!
//! Hand-written rather than `time`'s `Rfc3339` description because two timestamps are parsed
//! per record on the Processor's hot path and this is several times cheaper; it also accepts
//! the `±YYYYYY` extended years `toISOString` emits outside 0000–9999, so that every
//! `OffsetDateTime` the encoder writes decodes again.

use std::fmt::Write as _;

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Parses an RFC 3339 date-time (`T`/`t` separator, `Z`/`z` or `±HH:MM` offset, optional
/// fraction of any length — digits past nanoseconds are truncated) into UTC.
///
/// Rejected: a space separator, a missing offset, leap seconds (`:60`), out-of-range fields.
pub(crate) fn parse(s: &str) -> Result<OffsetDateTime, &'static str> {
    let b = s.as_bytes();
    let mut p = Cursor { b, i: 0 };

    let year = match b.first() {
        Some(sign @ (b'+' | b'-')) => {
            p.i = 1;
            let y = p
                .digits(6)
                .ok_or("expected a 6-digit extended year after the sign")?
                as i32;
            if *sign == b'-' {
                if y == 0 {
                    return Err("year -000000 is not allowed");
                }
                -y
            } else {
                y
            }
        }
        _ => p.digits(4).ok_or("expected a 4-digit year")? as i32,
    };
    p.expect(b'-').ok_or("expected '-' after the year")?;
    let month = p.digits(2).ok_or("expected a 2-digit month")?;
    p.expect(b'-').ok_or("expected '-' after the month")?;
    let day = p.digits(2).ok_or("expected a 2-digit day")?;
    match p.next() {
        Some(b'T' | b't') => {}
        _ => return Err("expected 'T' after the date"),
    }
    let hour = p.digits(2).ok_or("expected a 2-digit hour")?;
    p.expect(b':').ok_or("expected ':' after the hour")?;
    let minute = p.digits(2).ok_or("expected 2-digit minutes")?;
    p.expect(b':').ok_or("expected ':' after the minutes")?;
    let second = p.digits(2).ok_or("expected 2-digit seconds")?;

    let mut nanos = 0u32;
    if p.peek() == Some(b'.') {
        p.i += 1;
        let start = p.i;
        let mut scale = 100_000_000u32;
        while let Some(c @ b'0'..=b'9') = p.peek() {
            nanos += u32::from(c - b'0') * scale;
            scale /= 10; // reaches 0 after nine digits: later digits are truncated
            p.i += 1;
        }
        if p.i == start {
            return Err("expected digits after '.'");
        }
    }

    let offset_seconds: i32 = match p.next() {
        Some(b'Z' | b'z') => 0,
        Some(sign @ (b'+' | b'-')) => {
            let h = p.digits(2).ok_or("expected a 2-digit offset hour")?;
            p.expect(b':').ok_or("expected ':' in the offset")?;
            let m = p.digits(2).ok_or("expected 2-digit offset minutes")?;
            if h > 23 || m > 59 {
                return Err("offset out of range");
            }
            let secs = (h * 3600 + m * 60) as i32;
            if sign == b'-' { -secs } else { secs }
        }
        _ => return Err("expected 'Z' or a '±HH:MM' offset"),
    };
    if p.i != b.len() {
        return Err("unexpected text after the offset");
    }

    if second == 60 {
        return Err("leap seconds are not supported");
    }
    let month = u8::try_from(month)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .ok_or("month out of range")?;
    let day = u8::try_from(day).map_err(|_| "day out of range")?;
    let date = Date::from_calendar_date(year, month, day).map_err(|_| "no such date")?;
    let time = Time::from_hms_nano(
        u8::try_from(hour).map_err(|_| "hour out of range")?,
        u8::try_from(minute).map_err(|_| "minutes out of range")?,
        u8::try_from(second).map_err(|_| "seconds out of range")?,
        nanos,
    )
    .map_err(|_| "time of day out of range")?;
    let offset =
        UtcOffset::from_whole_seconds(offset_seconds).map_err(|_| "offset out of range")?;
    PrimitiveDateTime::new(date, time)
        .assume_offset(offset)
        .checked_to_offset(UtcOffset::UTC)
        .ok_or("out of the supported range once converted to UTC")
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    /// Exactly `n` ASCII digits as a number.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let end = self.i.checked_add(n)?;
        let digits = self.b.get(self.i..end)?;
        let mut v = 0u32;
        for &c in digits {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        self.i = end;
        Some(v)
    }
}

/// Appends `t` (converted to UTC) as `Date.prototype.toISOString` would: `YYYY-MM-DDTHH:MM:SS.mmmZ`,
/// with `±YYYYYY` years outside 0000–9999.
///
/// JavaScript dates have millisecond resolution, so everything tcp-ingestion writes has
/// exactly three fractional digits. Sub-millisecond precision (which only a Rust producer can
/// have) is written with six or nine digits rather than dropped, so encode → decode stays the
/// identity.
pub(crate) fn write_iso(out: &mut String, t: OffsetDateTime) {
    let t = t.to_offset(UtcOffset::UTC);
    let year = t.year();
    // `write!` into a `String` cannot fail.
    let _ = if (0..=9999).contains(&year) {
        write!(out, "{year:04}")
    } else if year < 0 {
        write!(out, "-{:06}", year.unsigned_abs())
    } else {
        write!(out, "+{year:06}")
    };
    let nanos = t.nanosecond();
    let _ = write!(
        out,
        "-{:02}-{:02}T{:02}:{:02}:{:02}.",
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let _ = if nanos.is_multiple_of(1_000_000) {
        write!(out, "{:03}Z", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        write!(out, "{:06}Z", nanos / 1_000)
    } else {
        write!(out, "{nanos:09}Z")
    };
}

/// [`write_iso`] into a new `String`.
pub(crate) fn to_iso(t: OffsetDateTime) -> String {
    let mut s = String::with_capacity(24);
    write_iso(&mut s, t);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn parses_utc_with_millis() {
        assert_eq!(
            parse("2026-05-02T11:00:00.000Z"),
            Ok(datetime!(2026-05-02 11:00:00 UTC))
        );
        assert_eq!(
            parse("2026-05-02T11:00:00.123Z"),
            Ok(datetime!(2026-05-02 11:00:00.123 UTC))
        );
    }

    #[test]
    fn normalises_offsets_to_utc() {
        let t = parse("2026-05-02T13:30:00+02:30").unwrap();
        assert_eq!(t, datetime!(2026-05-02 11:00:00 UTC));
        assert_eq!(t.offset(), UtcOffset::UTC);
        assert_eq!(
            parse("2026-05-02T00:00:00-01:00"),
            Ok(datetime!(2026-05-02 01:00:00 UTC))
        );
        assert_eq!(
            parse("2026-05-02t11:00:00z"),
            Ok(datetime!(2026-05-02 11:00:00 UTC))
        );
        assert_eq!(
            parse("2026-05-02T11:00:00-00:00"),
            Ok(datetime!(2026-05-02 11:00:00 UTC))
        );
    }

    #[test]
    fn fractions_of_any_length() {
        assert_eq!(
            parse("2026-05-02T11:00:00Z"),
            Ok(datetime!(2026-05-02 11:00:00 UTC))
        );
        assert_eq!(
            parse("2026-05-02T11:00:00.5Z"),
            Ok(datetime!(2026-05-02 11:00:00.5 UTC))
        );
        assert_eq!(
            parse("2026-05-02T11:00:00.123456789123Z"),
            Ok(datetime!(2026-05-02 11:00:00.123456789 UTC))
        );
    }

    #[test]
    fn rejects_what_is_not_rfc3339() {
        for bad in [
            "",
            "2026-05-02",
            "2026-05-02 11:00:00Z",
            "2026-05-02T11:00:00",
            "2026-05-02T11:00:00.Z",
            "2026-13-02T11:00:00Z",
            "2026-02-30T11:00:00Z",
            "2026-05-02T24:00:00Z",
            "2026-05-02T11:60:00Z",
            "2026-05-02T23:59:60Z",
            "2026-05-02T11:00:00+24:00",
            "2026-05-02T11:00:00+0200",
            "2026-05-02T11:00:00Zjunk",
            "26-05-02T11:00:00Z",
            "２０２６-05-02T11:00:00Z",
            "-000000-01-01T00:00:00.000Z",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn writes_like_to_iso_string() {
        assert_eq!(
            to_iso(datetime!(2026-05-02 11:00:00 UTC)),
            "2026-05-02T11:00:00.000Z"
        );
        assert_eq!(
            to_iso(datetime!(2026-05-02 13:00:00.042 +02:00)),
            "2026-05-02T11:00:00.042Z"
        );
        assert_eq!(
            to_iso(datetime!(1970-01-01 00:00:00.000123 UTC)),
            "1970-01-01T00:00:00.000123Z"
        );
        assert_eq!(
            to_iso(datetime!(1970-01-01 00:00:00.000000007 UTC)),
            "1970-01-01T00:00:00.000000007Z"
        );
        assert_eq!(
            to_iso(datetime!(-0001-01-01 00:00:00 UTC)),
            "-000001-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn extended_years_round_trip() {
        let t = datetime!(-9999-01-01 00:00:00 UTC);
        assert_eq!(parse(&to_iso(t)), Ok(t));
        let t = datetime!(0000-06-01 00:00:00 UTC);
        assert_eq!(parse(&to_iso(t)), Ok(t));
    }
}
