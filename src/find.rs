//! Finding the first byte of a class in a slice, sixteen bytes at a time.
//!
//! The hot scans (JSON string text between escapes, logfmt tokens) look for the first of a
//! few bytes in runs that are usually 5 to 200 bytes long. A byte loop costs a compare and a
//! branch per byte; SSE2, part of every x86-64 CPU, tests sixteen at once. Elsewhere the same
//! search goes byte by byte.
//!
//! A class is a few listed bytes (and perhaps the control characters); from that list
//! [`Class`] derives both the sixteen-byte test and the one-byte test used for strings too
//! short for a vector.

/// A class of bytes: a few listed bytes, and the control characters if `CONTROLS`.
pub trait Class {
    const BYTES: &'static [u8];
    /// Whether the control characters (below 0x20) belong to the class too.
    const CONTROLS: bool = false;

    /// Bit `k` set when byte `k` of `v` is in the class.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn mask(v: std::arch::x86_64::__m128i) -> u32 {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is always present on x86-64; these only touch registers.
        unsafe {
            let mut hit = if Self::CONTROLS {
                // Unsigned v <= 0x1f exactly when min(v, 0x1f) == v.
                _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v)
            } else {
                _mm_setzero_si128()
            };
            for &b in Self::BYTES {
                hit = _mm_or_si128(hit, _mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8)));
            }
            _mm_movemask_epi8(hit) as u32
        }
    }

    /// Whether `b` is in the class.
    #[inline(always)]
    fn test(b: u8) -> bool {
        (Self::CONTROLS && b < 0x20) || Self::BYTES.contains(&b)
    }
}

/// The position of the first byte at or after `from` in class `C`, if any.
///
/// The last partial block is read as the slice's last sixteen bytes (ignoring those before
/// `from`), a slice of 8 to 15 bytes as two overlapping words (copying it into a padded
/// block would stall on store forwarding), of 4 to 7 as two half-words, a shorter one byte
/// by byte.
#[inline(always)]
pub fn first<C: Class>(bytes: &[u8], from: usize) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        let n = bytes.len();
        let mut i = from;
        let load = |at: usize| {
            let block: &[u8; 16] = bytes[at..at + 16].try_into().expect("16 bytes");
            // SAFETY: SSE2 is always present on x86-64; the load reads the 16 bytes of
            // `block`, unaligned loads are allowed.
            C::mask(unsafe { _mm_loadu_si128(block.as_ptr() as *const __m128i) })
        };
        while i + 16 <= n {
            let mask = load(i);
            if mask != 0 {
                return Some(i + mask.trailing_zeros() as usize);
            }
            i += 16;
        }
        if i >= n {
            return None;
        }
        if n >= 16 {
            let skip = i - (n - 16);
            let mask = load(n - 16) >> skip << skip;
            return (mask != 0).then(|| n - 16 + mask.trailing_zeros() as usize);
        }
        if n >= 8 {
            let word = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes")) as i64;
            // SAFETY: SSE2 is always present on x86-64.
            let v = unsafe { _mm_set_epi64x(word(&bytes[n - 8..]), word(&bytes[..8])) };
            let mask = C::mask(v);
            let low = (mask & 0xff) >> i << i;
            if low != 0 {
                return Some(low.trailing_zeros() as usize);
            }
            let skip = i.saturating_sub(n - 8);
            let high = (mask >> 8) >> skip << skip;
            return (high != 0).then(|| n - 8 + high.trailing_zeros() as usize);
        }
        if n >= 4 {
            // The same with two overlapping half-words (`at`, `GET`, `web.5`: most keys
            // and many values are this short).
            let half = |b: &[u8]| u32::from_le_bytes(b.try_into().expect("4 bytes")) as i64;
            let pair = half(&bytes[..4]) | half(&bytes[n - 4..]) << 32;
            // SAFETY: SSE2 is always present on x86-64.
            let mask = C::mask(unsafe { _mm_set_epi64x(0, pair) });
            let low = (mask & 0xf) >> i << i;
            if low != 0 {
                return Some(low.trailing_zeros() as usize);
            }
            let skip = i.saturating_sub(n - 4);
            let high = ((mask >> 4) & 0xf) >> skip << skip;
            return (high != 0).then(|| n - 4 + high.trailing_zeros() as usize);
        }
    }
    bytes
        .get(from..)?
        .iter()
        .position(|&b| C::test(b))
        .map(|p| from + p)
}

/// `bytes` as UTF-8 text, like [`std::str::from_utf8`] but quicker on the all-ASCII lines
/// that logs and events nearly always are: those are told by [`is_ascii`] and need no
/// further check.
#[inline]
pub fn utf8(bytes: &[u8]) -> Result<&str, std::str::Utf8Error> {
    if is_ascii(bytes) {
        // SAFETY: ASCII bytes are valid UTF-8.
        Ok(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes)
    }
}

/// Whether every byte of `bytes` is ASCII: the blocks of sixteen are OR-ed together and
/// their high bits tested once (`<[u8]>::is_ascii` went byte by byte on lines this short).
pub fn is_ascii(bytes: &[u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if bytes.len() >= 16 {
        use std::arch::x86_64::*;
        let n = bytes.len();
        let load = |at: usize| {
            let block: &[u8; 16] = bytes[at..at + 16].try_into().expect("16 bytes");
            // SAFETY: SSE2 is always present on x86-64; the load reads the 16 bytes of
            // `block`, unaligned loads are allowed.
            unsafe { _mm_loadu_si128(block.as_ptr() as *const __m128i) }
        };
        // SAFETY: SSE2 is always present on x86-64; these only touch registers.
        unsafe {
            // The last block may overlap the one before it.
            let mut acc = load(n - 16);
            let mut i = 0;
            while i + 16 <= n {
                acc = _mm_or_si128(acc, load(i));
                i += 16;
            }
            return _mm_movemask_epi8(acc) == 0;
        }
    }
    bytes.is_ascii()
}

/// Mark the bytes of class `C` in `bytes`: bit `k % 64` of `bits[k / 64]` is set when byte
/// `k` is in the class. Every word of `bits` is written (past the end of `bytes`, with
/// zeros); `bits` must hold `bytes.len().div_ceil(64)` words at least.
///
/// A reader of many short pieces of one text (the keys and values of an event, spans of its
/// arena) marks the text once, then tests each piece with a shift and a mask rather than a
/// search of its own.
pub fn class_bits<C: Class>(bytes: &[u8], bits: &mut [u64]) {
    let n = bytes.len();
    #[cfg(target_arch = "x86_64")]
    if n >= 16 {
        use std::arch::x86_64::*;
        let load = |at: usize| {
            let block: &[u8; 16] = bytes[at..at + 16].try_into().expect("16 bytes");
            // SAFETY: SSE2 is always present on x86-64; the load reads the 16 bytes of
            // `block`, unaligned loads are allowed.
            C::mask(unsafe { _mm_loadu_si128(block.as_ptr() as *const __m128i) }) as u64
        };
        for (w, word) in bits.iter_mut().enumerate() {
            let base = w * 64;
            if base + 64 <= n {
                *word = load(base)
                    | load(base + 16) << 16
                    | load(base + 32) << 32
                    | load(base + 48) << 48;
                continue;
            }
            let mut m = 0;
            let mut at = base;
            while at + 16 <= n {
                m |= load(at) << (at - base);
                at += 16;
            }
            if at < n {
                // The last bytes, as the top bits of the text's last sixteen.
                m |= load(n - 16) >> (16 - (n - at)) << (at - base);
            }
            *word = m;
        }
        return;
    }
    bits.fill(0);
    for (k, &b) in bytes.iter().enumerate() {
        if C::test(b) {
            bits[k / 64] |= 1 << (k % 64);
        }
    }
}

/// The first position in `from..to` whose bit is set in `bits` (as [`class_bits`] marks
/// them). Word indices wrap around `N`, a power of two (so they need no bounds check): `to`
/// must be at most `64 * (N - 1)`, and the word after the last one marked must be zero.
#[inline(always)]
pub fn next_marked<const N: usize>(bits: &[u64; N], mut from: usize, to: usize) -> Option<usize> {
    const { assert!(N.is_power_of_two()) };
    while from < to {
        let (w, shift) = (from / 64, from % 64);
        // The 64 bits from `from` on (the second shift in two steps, as 64 would overflow).
        let window = bits[w % N] >> shift | (bits[(w + 1) % N] << 1) << (63 - shift);
        let window = window & u64::MAX >> (64 - (to - from).min(64));
        if window != 0 {
            return Some(from + window.trailing_zeros() as usize);
        }
        from += 64;
    }
    None
}

/// Copy `src` (at most sixteen bytes) to the start of `dst`: two overlapping words or
/// half-words, or three single bytes, instead of a `memcpy` call for a few bytes.
#[inline(always)]
pub fn copy_short(src: &[u8], dst: &mut [u8]) {
    let n = src.len();
    match n {
        0 => {}
        1..=3 => {
            dst[0] = src[0];
            dst[n / 2] = src[n / 2];
            dst[n - 1] = src[n - 1];
        }
        4..=7 => {
            dst[..4].copy_from_slice(&src[..4]);
            dst[n - 4..n].copy_from_slice(&src[n - 4..]);
        }
        8..=16 => {
            dst[..8].copy_from_slice(&src[..8]);
            dst[n - 8..n].copy_from_slice(&src[n - 8..]);
        }
        _ => dst[..n].copy_from_slice(src),
    }
}

/// Bytes that end plain JSON string text: `"`, `\`, control characters (below 0x20) and
/// DEL (escaped on output so that it stays printable).
pub struct JsonSpecial;

impl Class for JsonSpecial {
    const BYTES: &'static [u8] = b"\"\\\x7f";
    const CONTROLS: bool = true;
}

/// A space or a tab: the end of a logfmt value.
pub struct Blank;

impl Class for Blank {
    const BYTES: &'static [u8] = b" \t";
}

/// A space, a tab, `=` or `"`: the end of a logfmt key.
pub struct KeyEnd;

impl Class for KeyEnd {
    const BYTES: &'static [u8] = b" \t=\"";
}

/// A double quote or a backslash: the end of quoted text, or an escape in it.
pub struct QuoteOrBackslash;

impl Class for QuoteOrBackslash {
    const BYTES: &'static [u8] = b"\"\\";
}

/// `=` or a double quote: whether a token is `key=...` (its first is `=`).
pub struct EqOrQuote;

impl Class for EqOrQuote {
    const BYTES: &'static [u8] = b"=\"";
}

/// A space, `=` or a double quote: whether a message's first space-delimited token is
/// `key=...`, in one search.
pub struct SpaceEqOrQuote;

impl Class for SpaceEqOrQuote {
    const BYTES: &'static [u8] = b" =\"";
}

/// A space.
pub struct Space;

impl Class for Space {
    const BYTES: &'static [u8] = b" ";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<C: Class>(bytes: &[u8]) {
        for from in 0..=bytes.len() + 1 {
            let want = bytes
                .get(from..)
                .and_then(|rest| rest.iter().position(|&b| C::test(b)))
                .map(|p| from + p);
            assert_eq!(first::<C>(bytes, from), want, "{bytes:?} from {from}");
        }
    }

    fn check_bits<C: Class>(bytes: &[u8]) {
        let mut bits = [u64::MAX; 8];
        class_bits::<C>(bytes, &mut bits[..bytes.len() / 64 + 2]);
        for from in 0..=bytes.len() {
            for to in from..=bytes.len() {
                let want = first::<C>(&bytes[..to], from);
                assert_eq!(next_marked(&bits, from, to), want, "{bytes:?} {from}..{to}");
            }
        }
        assert_eq!(bits[bytes.len() / 64 + 1], 0);
    }

    #[test]
    fn marked_bits_agree_with_first() {
        for len in (0..40).chain([63, 64, 65, 100, 127, 128, 129, 150, 191, 192]) {
            for at in (0..len.max(1)).step_by(1 + len / 40) {
                for special in [b' ', b'"', 0x01, 0x7f] {
                    let mut b: Vec<u8> = (0..len).map(|k| b'a' + (k % 26) as u8).collect();
                    if len > 0 {
                        b[at] = special;
                        b[(at + 7) % len] = special;
                        b[(at * 5 + 66) % len] = special;
                    }
                    check_bits::<JsonSpecial>(&b);
                    check_bits::<Space>(&b);
                }
            }
        }
    }

    #[test]
    fn ascii_at_every_length_and_position() {
        for len in 0..70 {
            let mut b = vec![b'a'; len];
            assert!(is_ascii(&b));
            for at in 0..len {
                for high in [0x80, 0xc3, 0xff] {
                    b[at] = high;
                    assert!(!is_ascii(&b), "{len} {at}");
                    b[at] = 0x7f;
                    assert!(is_ascii(&b));
                }
            }
        }
    }

    #[test]
    fn short_copies() {
        for n in 0..=20 {
            let src: Vec<u8> = (1..=n as u8).collect();
            let mut dst = vec![0u8; 20];
            copy_short(&src, &mut dst);
            assert_eq!(&dst[..n], &src[..]);
            assert!(dst[n..].iter().all(|&b| b == 0));
        }
    }

    #[test]
    fn every_length_position_and_start_agrees_with_the_byte_test() {
        for len in 0..40 {
            for at in 0..len.max(1) {
                for special in [b' ', b'\t', b'=', b'"', b'\\', 0x01, 0x1f, 0x7f, 0xc3] {
                    let mut b = vec![b'a'; len];
                    if len > 0 {
                        b[at] = special;
                        // A second one later, so a search from past the first finds it.
                        b[(at + 7) % len] = special;
                    }
                    check::<JsonSpecial>(&b);
                    check::<Blank>(&b);
                    check::<KeyEnd>(&b);
                    check::<QuoteOrBackslash>(&b);
                    check::<Space>(&b);
                    check::<EqOrQuote>(&b);
                    check::<SpaceEqOrQuote>(&b);
                }
            }
        }
    }
}
