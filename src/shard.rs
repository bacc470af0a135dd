//! Sharding of stats over mergers.
//!
//! A stat belongs to shard `fnv1a64(name) % n`, where `fnv1a64` is the 64-bit FNV-1a hash
//! (offset basis `0xcbf29ce484222325`, prime `0x100000001b3`) of the stat name's UTF-8 bytes.
//! It depends on nothing but the name, so every machine and platform agrees.

pub use crate::stat::hash::{fnv1a64, shard_of};

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
