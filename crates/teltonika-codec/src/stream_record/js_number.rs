//! Numbers written exactly as JavaScript's `JSON.stringify` writes them (ECMAScript
//! `Number::toString`): shortest round-trip digits, plain notation for exponents in
//! −7 < e < 21 and `1e-7` / `1e+21` style outside, `-0` as `0`, NaN and ±∞ as `null`.
//!
//! Rust's `Display` for `f64` also prints the shortest round-trip digits but never uses an
//! exponent (`0.0000001`) and keeps `-0`; coordinates such as 1e-7 degrees occur in real
//! data, so the layout is rebuilt here from Rust's `{:e}` digits.

use std::fmt::Write as _;

/// Appends `v` as `JSON.stringify(v)` would.
pub(crate) fn write_f64(out: &mut String, v: f64) {
    if !v.is_finite() {
        out.push_str("null");
        return;
    }
    if v == 0.0 {
        out.push('0');
        return;
    }
    if v < 0.0 {
        out.push('-');
    }
    // `{:e}` without a precision gives the shortest digits that round-trip: "4.13275e1".
    let mut sci = String::with_capacity(32);
    let _ = write!(sci, "{:e}", v.abs()); // writing into a String cannot fail
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0); // Rust always prints a valid exponent
    let (int_digit, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits_len = int_digit.len() + frac.len();
    let k = i32::try_from(digits_len).unwrap_or(i32::MAX);
    let n = exp + 1; // the decimal point sits after `n` digits
    let digits = || int_digit.chars().chain(frac.chars());

    if k <= n && n <= 21 {
        out.extend(digits());
        out.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        let n = n as usize;
        out.extend(digits().take(n));
        out.push('.');
        out.extend(digits().skip(n));
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-n) as usize));
        out.extend(digits());
    } else {
        out.push_str(int_digit);
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
        let e = n - 1;
        let _ = write!(
            out,
            "e{}{}",
            if e < 0 { '-' } else { '+' },
            e.unsigned_abs()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn js(v: f64) -> String {
        let mut s = String::new();
        write_f64(&mut s, v);
        s
    }

    #[test]
    fn matches_json_stringify() {
        // Expected values are what Node.js prints for `JSON.stringify(v)`.
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "0"),
            (41.3275, "41.3275"),
            (19.8187, "19.8187"),
            (-33.8688197, "-33.8688197"),
            (90.0, "90"),
            (-180.0, "-180"),
            (0.1, "0.1"),
            (1e-7, "1e-7"),
            (-1e-7, "-1e-7"),
            (1.5e-7, "1.5e-7"),
            (0.000001, "0.000001"),
            (0.0000012, "0.0000012"),
            (123456789012345680000.0, "123456789012345680000"),
            (1e21, "1e+21"),
            (1.2345e22, "1.2345e+22"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (0.30000000000000004, "0.30000000000000004"),
            (100.0, "100"),
            (f64::NAN, "null"),
            (f64::INFINITY, "null"),
        ];
        for &(v, want) in cases {
            assert_eq!(js(v), want, "{v:?}");
        }
    }

    #[test]
    fn round_trips_through_rust_parsing() {
        for v in [
            41.3275,
            1e-7,
            2.5e-8,
            179.9999999,
            -89.1234567,
            1e21,
            6.02e23,
        ] {
            assert_eq!(js(v).parse::<f64>().unwrap(), v);
        }
    }
}
