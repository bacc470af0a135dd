//! Sharding of stats over mergers.
//!
//! A stat belongs to shard `fnv1a64(name) % n`, where `fnv1a64` is the 64-bit FNV-1a hash
//! (offset basis `0xcbf29ce484222325`, prime `0x100000001b3`) of the stat name's UTF-8 bytes.
//! It depends on nothing but the name, so every machine and platform agrees.
//!
//! Routing through Kafka: `pulse-fragment --shards N` prefixes each line with a number and a
//! tab, which `kcat -K'\t'` takes as the message key. By default the number is the shard.
//! With `--kafka-key` it is the [`KafkaKeys`] number of the shard: one whose decimal text
//! both of Kafka's usual default partitioners put into partition = shard of an N-partition
//! topic, so each merger reads only its own partition (`kcat -C -p I`):
//! - librdkafka's `consistent_random` (kcat, and every librdkafka client, by default):
//!   CRC-32 (IEEE) of the key, modulo N;
//! - the Java client's default (and librdkafka's `murmur2_random`): Kafka's MurmurHash2 of
//!   the key, its sign bit cleared, modulo N.

pub use crate::stat::hash::{fnv1a64, shard_of};

/// The most partitions `--kafka-key` finds keys for (the search grows as N² log N).
pub const MAX_KAFKA_SHARDS: u32 = 1024;

/// CRC-32 (IEEE 802.3, reflected, as zlib's `crc32`) of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// Kafka's MurmurHash2 (seed `0x9747b28c`), as the Java client's `Utils.murmur2`, as an
/// unsigned 32-bit value.
pub fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    let mut h = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= (b as u32) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^ (h >> 15)
}

/// The partition both Kafka default partitioners give `key` in an `n`-partition topic, if
/// they agree.
pub fn kafka_partition(key: &[u8], n: u32) -> Option<u32> {
    let by_crc = crc32(key) % n;
    let by_murmur = (murmur2(key) & 0x7fff_ffff) % n;
    (by_crc == by_murmur).then_some(by_crc)
}

/// What `pulse-fragment --shards N` writes before each line: the stat's shard, or with
/// `--kafka-key` its Kafka key.
#[derive(Clone)]
pub struct Routing {
    pub count: u32,
    keys: Option<KafkaKeys>,
}

impl Routing {
    pub fn new(count: u32, kafka: bool) -> Routing {
        Routing {
            count,
            keys: kafka.then(|| KafkaKeys::new(count)),
        }
    }

    /// The number written before a line of `stat`.
    pub fn prefix(&self, stat: &str) -> u64 {
        let shard = shard_of(stat, self.count);
        self.keys.as_ref().map_or(shard as u64, |k| k.of(shard))
    }
}

/// For each shard of `n`, the smallest number whose decimal text Kafka's default
/// partitioners put into partition = shard.
#[derive(Clone)]
pub struct KafkaKeys(Vec<u64>);

impl KafkaKeys {
    pub fn new(n: u32) -> KafkaKeys {
        assert!((1..=MAX_KAFKA_SHARDS).contains(&n));
        let mut keys = vec![None; n as usize];
        let mut left = n as usize;
        let mut buf = itoa::Buffer::new();
        let mut k = 0u64;
        while left > 0 {
            if let Some(p) = kafka_partition(buf.format(k).as_bytes(), n) {
                if keys[p as usize].is_none() {
                    keys[p as usize] = Some(k);
                    left -= 1;
                }
            }
            k += 1;
        }
        KafkaKeys(keys.into_iter().flatten().collect())
    }

    pub fn of(&self, shard: u32) -> u64 {
        self.0[shard as usize]
    }
}

/// A shard selector as written on the command line: `I/N` with `0 <= I < N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub fn keeps(&self, stat: &str) -> bool {
        shard_of(stat, self.count) == self.index
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("invalid shard {s:?}: expected I/N with 0 <= I < N, e.g. 0/2");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_vectors() {
        // FNV-1a 64 reference values.
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
        assert_eq!(shard_of("foobar", 2), (0x85944171f73967e8u64 % 2) as u32);
    }

    #[test]
    fn kafka_hashes_match_their_references() {
        // zlib's check value.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        // The Java client's Utils.murmur2 on these strings, as signed ints.
        for (s, want) in [
            ("21", -973932308i32),
            ("foobar", -790332482),
            ("a-little-bit-long-string", -985981536),
            ("a-little-bit-longer-string", -1486304829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            ("abc", 479470107),
        ] {
            assert_eq!(murmur2(s.as_bytes()) as i32, want, "{s}");
        }
    }

    #[test]
    fn kafka_keys_land_in_their_shards_partition() {
        for n in [1, 2, 3, 7, 16, 100] {
            let keys = KafkaKeys::new(n);
            for shard in 0..n {
                let k = keys.of(shard).to_string();
                assert_eq!(kafka_partition(k.as_bytes(), n), Some(shard), "{n} {k}");
            }
        }
        let keys = KafkaKeys::new(256);
        assert_eq!(keys.0.len(), 256);
    }

    #[test]
    fn parses_shard_selectors() {
        assert_eq!(
            "1/3".parse::<Shard>().unwrap(),
            Shard { index: 1, count: 3 }
        );
        for bad in ["3/3", "1", "a/2", "0/0"] {
            assert!(bad.parse::<Shard>().is_err());
        }
    }
}
