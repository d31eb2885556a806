//! CRC-16/ARC (a.k.a. CRC-16/IBM: reflected polynomial 0xA001, init 0, no final XOR), the
//! checksum of every TCP frame.
//!
//! The CRC covers every byte of a frame, so it bounds how fast a strict decoder can be. Two
//! well-kept crates do the work, picked by length (measured on the 2-core Xeon this crate is
//! developed on, see the crate README):
//! - below [`FOLD_THRESHOLD`] bytes, `crc`'s slice-by-16 table (`Table<16>`, ~4 GB/s), whose
//!   start-up cost is nil;
//! - from [`FOLD_THRESHOLD`] bytes on, `crc-fast`, which folds 128 bits per carry-less
//!   multiplication (PCLMULQDQ/VPCLMULQDQ on x86-64, PMULL on aarch64, chosen at run time; a
//!   table fallback elsewhere): ~27 GB/s on a 1 KB frame, ~6x the table.
//!
//! Both are checked against the bit-by-bit definition at every length up to 2 KiB.

/// Inputs at least this long go to the carry-less-multiplication path.
pub const FOLD_THRESHOLD: usize = 128;

const TABLE: crc::Crc<u16, crc::Table<16>> = crc::Crc::<u16, crc::Table<16>>::new(&crc::CRC_16_ARC);

/// CRC-16/ARC of `data`, as carried (in the low half of a `u32`) by Teltonika TCP frames.
///
/// ```
/// // The catalogue check value of CRC-16/ARC.
/// assert_eq!(teltonika_codec::crc16(b"123456789"), 0xBB3D);
/// ```
#[inline]
pub fn crc16(data: &[u8]) -> u16 {
    if data.len() < FOLD_THRESHOLD {
        TABLE.checksum(data)
    } else {
        // CRC-16/ARC has a 16-bit result: the upper 48 bits of crc-fast's u64 are zero.
        crc_fast::checksum(crc_fast::CrcAlgorithm::Crc16Arc, data) as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bitwise(data: &[u8]) -> u16 {
        let mut crc = 0u16;
        for &byte in data {
            crc ^= u16::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 0 {
                    crc >> 1
                } else {
                    (crc >> 1) ^ 0xA001
                };
            }
        }
        crc
    }

    #[test]
    fn check_value() {
        assert_eq!(crc16(b"123456789"), 0xBB3D);
        assert_eq!(crc16(b""), 0);
    }

    #[test]
    fn both_paths_match_the_definition_at_every_length() {
        let data: Vec<u8> = (0..2048u32)
            .map(|i| (i.wrapping_mul(151) ^ (i >> 3)) as u8)
            .collect();
        for len in 0..=data.len() {
            assert_eq!(crc16(&data[..len]), bitwise(&data[..len]), "length {len}");
        }
        // Unaligned starts too.
        for start in 1..17 {
            let slice = &data[start..start + 700];
            assert_eq!(crc16(slice), bitwise(slice), "start {start}");
        }
    }
}
