//! Reading the input: an argument, a file or standard input; hex text (spaces, newlines and
//! `0x` prefixes tolerated) or raw bytes.

use std::io::Read as _;

use anyhow::{Context as _, bail};

use crate::Args;

fn raw(args: &Args) -> anyhow::Result<Vec<u8>> {
    if let Some(text) = &args.text {
        return Ok(text.clone().into_bytes());
    }
    if let Some(path) = &args.file {
        return std::fs::read(path).with_context(|| format!("reading {path}"));
    }
    let mut buf = Vec::new();
    std::io::stdin()
        .read_to_end(&mut buf)
        .context("reading standard input")?;
    Ok(buf)
}

/// The input as text (for `encode`).
pub(crate) fn text(args: &Args) -> anyhow::Result<String> {
    String::from_utf8(raw(args)?).context("the input is not UTF-8 text")
}

/// The input as bytes: raw with `--binary` (files and stdin), hex otherwise.
pub(crate) fn bytes(args: &Args) -> anyhow::Result<Vec<u8>> {
    let data = raw(args)?;
    if args.binary {
        if args.text.is_some() {
            bail!("--binary reads a file or standard input, not an argument");
        }
        return Ok(data);
    }
    parse_hex(&data)
}

/// Hex digits, with whitespace and `0x`/`0X` prefixes ignored. Errors name the character
/// offset in the text.
pub(crate) fn parse_hex(text: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 2);
    let mut high: Option<(u8, usize)> = None;
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'0'
            && high.is_none()
            && matches!(text.get(i + 1), Some(b'x' | b'X'))
            && text.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
        {
            i += 2;
            continue;
        }
        let Some(v) = (c as char).to_digit(16) else {
            bail!(
                "invalid hex at character {i}: {:?} is not a hex digit (use --binary for raw bytes)",
                c as char
            );
        };
        // `to_digit(16)` is below 16.
        let v = v as u8;
        match high.take() {
            None => high = Some((v, i)),
            Some((h, _)) => out.push(h << 4 | v),
        }
        i += 1;
    }
    if let Some((_, at)) = high {
        bail!("invalid hex at character {at}: an odd number of hex digits");
    }
    Ok(out)
}

/// Lower-case hex without separators.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}"); // writing into a String cannot fail
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_with_spaces_and_prefixes() {
        assert_eq!(
            parse_hex(b"00 0f\n0x33 0X35").unwrap(),
            vec![0, 0x0f, 0x33, 0x35]
        );
        assert_eq!(parse_hex(b"0x000F").unwrap(), vec![0, 0x0f]);
        assert_eq!(to_hex(&[0, 0xab]), "00ab");
    }

    #[test]
    fn bad_hex_names_the_offset() {
        let e = parse_hex(b"00 zz").unwrap_err().to_string();
        assert!(e.contains("character 3"), "{e}");
        let e = parse_hex(b"000").unwrap_err().to_string();
        assert!(e.contains("odd number"), "{e}");
    }
}
