//! Hash functions: [`shard_of`], which of `n` mergers owns a stat, and [`FastHasher`] for
//! in-memory maps on the hot path.
//!
//! Sharding: `pulse-merge --shard i/n` keeps the stats with `shard_of(name, n) == i`. The function is
//! FNV-1a 64 over the UTF-8 bytes of the stat name, taken modulo `n`: no seeds, no
//! platform-dependent widths or byte orders, so every machine, platform and release
//! agrees on it (and it is easy to re-implement elsewhere, say to pick Kafka partitions
//! with the same split). It is fixed by the test vectors below: changing it would split
//! a stat's fragments across mergers during an upgrade.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

/// FNV-1a, 64-bit (offset basis `0xcbf29ce484222325`, prime `0x100000001b3`).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The shard in `0..n` that owns the stat named `stat`. `n == 0` is treated as one shard.
pub fn shard_of(stat: &str, n: u32) -> u32 {
    // The remainder is below n, so it fits a u32.
    (fnv1a64(stat.as_bytes()) % u64::from(n.max(1))) as u32
}

/// A fast, deterministic hasher for the hot path (FxHash-style multiply-rotate). It is not
/// keyed like SipHash, so crafted input could collide on purpose; the maps it serves (group
/// keys and values of one chunk or state) are capped in size, which bounds that cost.
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

impl FastHasher {
    #[inline]
    fn mix(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl std::hash::Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.mix(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            // The tail as one word, so short keys cost one step rather than one per byte;
            // its length goes in the spare top byte, so `a` and `a\0` still differ.
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            w[7] = rest.len() as u8;
            self.mix(u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn write_u8(&mut self, b: u8) {
        self.mix(u64::from(b));
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }

    #[inline]
    fn write_i64(&mut self, n: i64) {
        self.mix(n as u64);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    /// Fixed outputs, computed independently: these must never change.
    #[test]
    fn shard_test_vectors() {
        assert_eq!(shard_of("a", 10), 6);
        assert_eq!(shard_of("foobar", 7), 6);
        assert_eq!(shard_of("router.requests", 2), 0);
        assert_eq!(shard_of("router.requests", 16), 0);
        assert_eq!(shard_of("dyno.memory", 3), 1);
        assert_eq!(shard_of("", 5), 2);
        assert_eq!(shard_of("héllo", 4), 0);
        assert_eq!(shard_of("anything", 1), 0);
        assert_eq!(shard_of("anything", 0), 0);
    }

    #[test]
    fn spreads_names_evenly() {
        for n in [2u32, 3, 4, 8] {
            let mut per = vec![0u32; n as usize];
            for i in 0..1000 {
                per[shard_of(&format!("router.status.{i}"), n) as usize] += 1;
            }
            let fair = 1000 / n;
            assert!(
                per.iter().all(|&c| c > fair * 8 / 10 && c < fair * 12 / 10),
                "{n}: {per:?}"
            );
        }
    }
}
