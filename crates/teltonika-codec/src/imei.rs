//! The IMEI: the TCP handshake that opens every session (`u16 length` + 15 ASCII digits,
//! answered by one byte), and the [`Imei`] value type shared with UDP datagrams and the
//! packed (BCD) form of codecs 14 and 15.

use core::fmt;
use core::str::FromStr;

use crate::error::{Error, Result};

/// A tracker's IMEI: exactly 15 decimal digits (leading zeros allowed), stored as a number.
///
/// `Copy`, 8 bytes, no allocation. [`Display`](fmt::Display) writes the 15 digits.
///
/// ```
/// use teltonika_codec::Imei;
///
/// let imei: Imei = "356307042441013".parse()?;
/// assert_eq!(imei.to_string(), "356307042441013");
/// assert_eq!(imei.as_u64(), 356_307_042_441_013);
/// assert_eq!(imei.to_bcd(), [0x03, 0x56, 0x30, 0x70, 0x42, 0x44, 0x10, 0x13]);
/// # Ok::<(), teltonika_codec::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Imei(u64);

impl Imei {
    /// Number of digits.
    pub const LEN: usize = 15;
    const LIMIT: u64 = 1_000_000_000_000_000;

    /// The IMEI with this numeric value, if it has at most 15 digits.
    pub const fn new(value: u64) -> Option<Self> {
        if value < Self::LIMIT {
            Some(Self(value))
        } else {
            None
        }
    }

    /// The numeric value.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// Parses exactly 15 ASCII digits. The error's offset is that of the first bad byte
    /// within `digits`.
    pub fn from_ascii(digits: &[u8]) -> Result<Self> {
        if digits.len() != Self::LEN {
            return Err(Error::BadImei {
                offset: 0,
                reason: "not 15 digits long",
            });
        }
        let mut value = 0u64;
        for (index, &byte) in digits.iter().enumerate() {
            if !byte.is_ascii_digit() {
                return Err(Error::BadImei {
                    offset: index,
                    reason: "not a decimal digit",
                });
            }
            value = value * 10 + u64::from(byte - b'0');
        }
        Ok(Self(value))
    }

    /// The 15 ASCII digits.
    pub fn to_ascii(self) -> [u8; Self::LEN] {
        let mut out = [b'0'; Self::LEN];
        let mut value = self.0;
        for slot in out.iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
        out
    }

    /// Unpacks the 8-byte form of codecs 14 and 15: 16 BCD digits, the first one 0.
    pub fn from_bcd(bytes: [u8; 8]) -> Result<Self> {
        let mut value = 0u64;
        for (index, byte) in bytes.into_iter().enumerate() {
            for nibble in [byte >> 4, byte & 0x0F] {
                if nibble > 9 {
                    return Err(Error::BadImei {
                        offset: index,
                        reason: "not a BCD digit",
                    });
                }
                value = value * 10 + u64::from(nibble);
            }
        }
        Self::new(value).ok_or(Error::BadImei {
            offset: 0,
            reason: "more than 15 digits",
        })
    }

    /// Packs into the 8-byte form of codecs 14 and 15: `0` then the 15 digits, as BCD.
    pub fn to_bcd(self) -> [u8; 8] {
        let digits = self.to_ascii();
        let mut out = [0u8; 8];
        // 16 nibbles: a leading 0, then the digits.
        for (index, slot) in out.iter_mut().enumerate() {
            let high = if index == 0 {
                0
            } else {
                digits[2 * index - 1] - b'0'
            };
            let low = digits[2 * index] - b'0';
            *slot = (high << 4) | low;
        }
        out
    }
}

impl fmt::Display for Imei {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.to_ascii();
        // Digits are ASCII, so this never fails.
        f.write_str(core::str::from_utf8(&digits).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Imei {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Imei({self})")
    }
}

impl FromStr for Imei {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        Self::from_ascii(text.as_bytes())
    }
}

/// Length of the encoded handshake: `u16` length + 15 digits.
pub const HANDSHAKE_LEN: usize = 2 + Imei::LEN;

/// Decodes the IMEI handshake a tracker sends first: `u16 length` (must be 15) + ASCII digits.
///
/// Returns the IMEI and the bytes consumed (always [`HANDSHAKE_LEN`]). A short input gives
/// [`Error::Incomplete`]; a wrong length or a non-digit gives [`Error::BadImei`].
///
/// ```
/// use teltonika_codec::{decode_imei, encode_imei};
///
/// let bytes = b"\x00\x0F356307042441013";
/// let (imei, consumed) = decode_imei(bytes)?;
/// assert_eq!((imei.to_string().as_str(), consumed), ("356307042441013", 17));
/// assert_eq!(encode_imei(imei), *bytes);
/// # Ok::<(), teltonika_codec::Error>(())
/// ```
pub fn decode_imei(input: &[u8]) -> Result<(Imei, usize)> {
    let Some(&[high, low]) = input.first_chunk::<2>() else {
        // A first byte other than 0 can already be judged: the length is 15.
        if input.first().is_some_and(|&byte| byte != 0) {
            return Err(Error::BadImei {
                offset: 0,
                reason: "length field is not 15",
            });
        }
        return Err(Error::Incomplete {
            needed: 2 - input.len(),
        });
    };
    if u16::from_be_bytes([high, low]) != Imei::LEN as u16 {
        return Err(Error::BadImei {
            offset: 0,
            reason: "length field is not 15",
        });
    }
    let Some(digits) = input.get(2..HANDSHAKE_LEN) else {
        return Err(Error::Incomplete {
            needed: HANDSHAKE_LEN - input.len(),
        });
    };
    let imei = Imei::from_ascii(digits).map_err(|error| error.shifted(2))?;
    Ok((imei, HANDSHAKE_LEN))
}

/// Encodes the IMEI handshake: `00 0F` + 15 ASCII digits.
pub fn encode_imei(imei: Imei) -> [u8; HANDSHAKE_LEN] {
    let mut out = [0u8; HANDSHAKE_LEN];
    out[1] = Imei::LEN as u8;
    out[2..].copy_from_slice(&imei.to_ascii());
    out
}

/// The server's one-byte answer to the handshake: `0x01` accept, `0x00` reject.
///
/// ```
/// assert_eq!(teltonika_codec::encode_imei_reply(true), 0x01);
/// assert_eq!(teltonika_codec::decode_imei_reply(&[0x00])?, (false, 1));
/// # Ok::<(), teltonika_codec::Error>(())
/// ```
pub const fn encode_imei_reply(accept: bool) -> u8 {
    if accept { 0x01 } else { 0x00 }
}

/// Decodes the server's handshake answer (what a tracker or a test client reads).
pub fn decode_imei_reply(input: &[u8]) -> Result<(bool, usize)> {
    match input.first() {
        None => Err(Error::Incomplete { needed: 1 }),
        Some(0x01) => Ok((true, 1)),
        Some(0x00) => Ok((false, 1)),
        Some(&found) => Err(Error::BadReply {
            offset: 0,
            what: "IMEI reply",
            found,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_errors_name_the_place() {
        assert!(matches!(
            decode_imei(b""),
            Err(Error::Incomplete { needed: 2 })
        ));
        assert!(matches!(
            decode_imei(b"\x00"),
            Err(Error::Incomplete { needed: 1 })
        ));
        assert!(matches!(
            decode_imei(b"\x00\x0F35"),
            Err(Error::Incomplete { needed: 13 })
        ));
        assert!(matches!(
            decode_imei(b"\xFF"),
            Err(Error::BadImei { offset: 0, .. })
        ));
        assert!(matches!(
            decode_imei(b"\x00\x10"),
            Err(Error::BadImei { offset: 0, .. })
        ));
        assert!(matches!(
            decode_imei(b"\x00\x0F35630704244101x"),
            Err(Error::BadImei { offset: 16, .. })
        ));
    }

    #[test]
    fn bcd_round_trip_and_checks() {
        let imei = Imei::new(352_093_081_452_251).unwrap();
        assert_eq!(
            imei.to_bcd(),
            [0x03, 0x52, 0x09, 0x30, 0x81, 0x45, 0x22, 0x51]
        );
        assert_eq!(Imei::from_bcd(imei.to_bcd()).unwrap(), imei);
        assert!(matches!(
            Imei::from_bcd([0x0A, 0, 0, 0, 0, 0, 0, 0]),
            Err(Error::BadImei { .. })
        ));
        assert!(matches!(
            Imei::from_bcd([0x10, 0, 0, 0, 0, 0, 0, 0]),
            Err(Error::BadImei { .. })
        ));
        let small = Imei::new(7).unwrap();
        assert_eq!(small.to_string(), "000000000000007");
        assert_eq!(Imei::new(1_000_000_000_000_000), None);
    }

    #[test]
    fn reply() {
        assert!(matches!(
            decode_imei_reply(&[2]),
            Err(Error::BadReply { offset: 0, .. })
        ));
        assert!(matches!(
            decode_imei_reply(&[]),
            Err(Error::Incomplete { needed: 1 })
        ));
        assert_eq!(encode_imei_reply(false), 0);
    }
}
