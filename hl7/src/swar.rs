//! SWAR ("SIMD within a register") byte search for the short spans of field lookup and
//! escaping: a segment, a field, a value. There `memchr`'s per-call setup costs more than
//! the search, and lookup must skip *k* separators rather than find one. Eight bytes are
//! tested at a time in a `u64`; no `unsafe`, any target.
//!
//! ```text
//! eq_mask(word, splat(b)): high bit of every byte of `word` equal to b, exactly
//!   x = word ^ splat(b);  !(((x & 0x7F..7F) + 0x7F..7F) | x | 0x7F..7F)
//! (the add cannot carry across bytes, so there are no false positives and
//!  count_ones() counts matches)
//! ```
//!
//! Limits: [`find`] searches the first [`SWAR_FIND_BYTES_MAX`] bytes itself and hands the
//! rest to `memchr` (SIMD), so a multi-megabyte field is still searched at memory speed.

pub(crate) const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;
/// Past this many bytes, the first-occurrence search hands over to `memchr` (SIMD).
const SWAR_FIND_BYTES_MAX: usize = 64;

#[inline]
pub(crate) fn eq_mask(word: u64, splat: u64) -> u64 {
    let x = word ^ splat;
    !(((x & !HI).wrapping_add(!HI)) | x | !HI)
}

#[inline]
pub(crate) fn load(chunk: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(chunk);
    u64::from_le_bytes(w)
}

/// Number of bytes marked in an [`eq_mask`] result. Multiplying the 0/1 bytes by `LO`
/// sums them into the top byte: three instructions, where `count_ones` is a dozen on the
/// baseline x86-64 target (no POPCNT).
#[inline]
pub(crate) fn count_marked(m: u64) -> u32 {
    ((m >> 7).wrapping_mul(LO) >> 56) as u32
}

/// Appends the offset of every `sep` in `hay` to `out`, in order.
pub(crate) fn positions(hay: &[u8], sep: u8, out: &mut Vec<u32>) {
    let splat = LO * u64::from(sep);
    let chunks = hay.chunks_exact(8);
    let tail = chunks.remainder();
    for (ci, chunk) in chunks.enumerate() {
        let mut m = eq_mask(load(chunk), splat);
        while m != 0 {
            out.push((ci * 8) as u32 + m.trailing_zeros() / 8);
            m &= m - 1;
        }
    }
    let base = hay.len() - tail.len();
    for (j, &b) in tail.iter().enumerate() {
        if b == sep {
            out.push((base + j) as u32);
        }
    }
}

/// Offset just past the `k`-th (1-based, `k >= 1`) occurrence of `sep` in `hay`.
#[inline]
pub(crate) fn after_nth(hay: &[u8], sep: u8, mut k: u32) -> Option<usize> {
    debug_assert!(k >= 1);
    let splat = LO * u64::from(sep);
    let chunks = hay.chunks_exact(8);
    let tail = chunks.remainder();
    for (ci, chunk) in chunks.enumerate() {
        let mut m = eq_mask(load(chunk), splat);
        let count = count_marked(m);
        if count < k {
            k -= count;
            continue;
        }
        for _ in 1..k {
            m &= m - 1;
        }
        return Some(ci * 8 + (m.trailing_zeros() / 8) as usize + 1);
    }
    let base = hay.len() - tail.len();
    for (j, &b) in tail.iter().enumerate() {
        if b == sep {
            k -= 1;
            if k == 0 {
                return Some(base + j + 1);
            }
        }
    }
    None
}

/// First occurrence of `sep` in `hay`.
#[inline]
pub(crate) fn find(hay: &[u8], sep: u8) -> Option<usize> {
    let splat = LO * u64::from(sep);
    let head = &hay[..hay.len().min(SWAR_FIND_BYTES_MAX)];
    let chunks = head.chunks_exact(8);
    let tail = chunks.remainder();
    for (ci, chunk) in chunks.enumerate() {
        let m = eq_mask(load(chunk), splat);
        if m != 0 {
            return Some(ci * 8 + (m.trailing_zeros() / 8) as usize);
        }
    }
    let base = head.len() - tail.len();
    if let Some(j) = tail.iter().position(|&b| b == sep) {
        return Some(base + j);
    }
    memchr::memchr(sep, &hay[head.len()..]).map(|e| head.len() + e)
}

/// First byte of `hay` that is one of the `targets` bytes (up to 8; unused slots repeat a
/// real target).
#[inline]
pub(crate) fn find_any(hay: &[u8], targets: &[u8; 8]) -> Option<usize> {
    let splats = targets.map(|t| LO * u64::from(t));
    let chunks = hay.chunks_exact(8);
    let tail = chunks.remainder();
    for (ci, chunk) in chunks.enumerate() {
        let w = load(chunk);
        let m = splats.iter().fold(0, |acc, &s| acc | eq_mask(w, s));
        if m != 0 {
            return Some(ci * 8 + (m.trailing_zeros() / 8) as usize);
        }
    }
    let base = hay.len() - tail.len();
    tail.iter()
        .position(|b| targets.contains(b))
        .map(|j| base + j)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swar_search_agrees_with_a_byte_loop() {
        let hay: Vec<u8> = (0..300u32)
            .map(|i| {
                if i % 7 == 0 || i % 11 == 3 {
                    b'|'
                } else {
                    b'a' + (i % 26) as u8
                }
            })
            .collect();
        for len in [0, 1, 7, 8, 9, 63, 64, 65, 100, 300] {
            let h = &hay[..len];
            let positions: Vec<usize> = h
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'|')
                .map(|(i, _)| i)
                .collect();
            for k in 1..=positions.len() as u32 + 1 {
                assert_eq!(
                    after_nth(h, b'|', k),
                    positions.get(k as usize - 1).map(|p| p + 1),
                    "len {len} k {k}"
                );
            }
            assert_eq!(find(h, b'|'), positions.first().copied());
            assert_eq!(
                find(&h[h.len().min(1)..], b'|'),
                positions
                    .iter()
                    .find(|&&p| p >= 1)
                    .map(|p| p - h.len().min(1))
            );
        }
        let mut long = vec![b'x'; 1000];
        long[900] = 0xFF;
        assert_eq!(find(&long, 0xFF), Some(900));
        assert_eq!(after_nth(&long, 0xFF, 1), Some(901));
        assert_eq!(
            eq_mask(u64::from_le_bytes(*b"|\x80a||\xFF|b"), LO * u64::from(b'|')).count_ones(),
            4
        );
    }

    #[test]
    fn count_marked_counts_every_marked_byte() {
        for bits in [0u8, 1, 0x80, 0xFF, 0x5A, 0xA5, 0x7F] {
            let m = (0..8).fold(0u64, |acc, i| {
                if bits >> i & 1 == 1 {
                    acc | 0x80 << (8 * i)
                } else {
                    acc
                }
            });
            assert_eq!(count_marked(m), bits.count_ones());
        }
    }

    #[test]
    fn find_any_finds_the_first_of_several_bytes() {
        let t = *b"|^~\\&\r\n\n";
        assert_eq!(find_any(b"plain text without any", &t), None);
        assert_eq!(find_any(b"0123456789abcdef^x|", &t), Some(16));
        assert_eq!(find_any(b"ab\n", &t), Some(2));
        assert_eq!(find_any(b"", &t), None);
    }
}
