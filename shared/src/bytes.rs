//! Integers of on-disk structures (superblocks, image headers), read at a byte offset.

/// The little-endian `u16` at byte `at` of `b`; None past its end.
pub fn le16(b: &[u8], at: usize) -> Option<u16> {
    array(b, at).map(u16::from_le_bytes)
}

/// The little-endian `u32` at byte `at` of `b`; None past its end.
pub fn le32(b: &[u8], at: usize) -> Option<u32> {
    array(b, at).map(u32::from_le_bytes)
}

/// The big-endian `u16` at byte `at` of `b`; None past its end.
pub fn be16(b: &[u8], at: usize) -> Option<u16> {
    array(b, at).map(u16::from_be_bytes)
}

/// The big-endian `u32` at byte `at` of `b`; None past its end.
pub fn be32(b: &[u8], at: usize) -> Option<u32> {
    array(b, at).map(u32::from_be_bytes)
}

fn array<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_order_and_bounds() {
        let b = [0x12, 0x34, 0x56, 0x78, 0x9A];
        assert_eq!(le16(&b, 0), Some(0x3412));
        assert_eq!(be16(&b, 3), Some(0x789A));
        assert_eq!(le32(&b, 1), Some(0x9A78_5634));
        assert_eq!(be32(&b, 0), Some(0x1234_5678));
        assert_eq!(be32(&b, 2), None);
        assert_eq!(le16(&b, 5), None);
        assert_eq!(le32(&b, usize::MAX), None);
    }
}
