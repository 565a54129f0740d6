//! Content addresses: the BLAKE3 digest of an object's stored bytes.

use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::str::FromStr;
use std::sync::OnceLock;

use crate::Error;

/// Below this many bytes in total, hashing on one thread beats starting helper threads.
const PARALLEL_HASH_MIN: usize = 4 << 20;

/// Cores to hash on, looked up once: on Linux the lookup reads cgroup files, which costs
/// two hundred times more than hashing a small object.
fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The BLAKE3 digest of an object's stored bytes: same bytes, same key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key([u8; 32]);

/// A key hashes as its first 8 bytes (a map's hasher still mixes them, keyed, by default):
/// a digest's bytes are evenly spread already.
impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut head = [0; 8];
        head.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(head));
    }
}

/// Hashes a [`Key`] as nothing more than its first 8 bytes: for maps of keys only this process
/// chooses (the in-memory store's). Maps of keys that come from the network keep a keyed
/// hasher: a remote party could grind contents whose keys share buckets.
#[derive(Debug, Default)]
pub(crate) struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn write_u64(&mut self, head: u64) {
        self.0 = head;
    }

    /// Not called for a [`Key`]; anything else is folded in byte by byte.
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// What a map of [`Key`]s that only this process chooses is built with.
pub(crate) type BuildDigestHasher = BuildHasherDefault<DigestHasher>;

impl Key {
    /// Key length in bytes.
    pub const LEN: usize = 32;

    /// Wraps a raw 32-byte digest.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Key(bytes)
    }

    /// The raw digest.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Hashes one contiguous buffer.
    pub fn of(data: &[u8]) -> Self {
        Self::of_parts(&[data])
    }

    /// Hashes the concatenation of `parts` without concatenating them.
    ///
    /// Large inputs are hashed on all cores. The thread pool is built per call rather than
    /// taken from rayon's global pool: a global pool's threads do not survive `fork()`, and a
    /// forked child (Parsl's workers, multiprocessing) would wait on them forever.
    pub fn of_parts<T: AsRef<[u8]> + Sync>(parts: &[T]) -> Self {
        let total: usize = parts.iter().map(|p| p.as_ref().len()).sum();
        let mut hasher = blake3::Hasher::new();
        let pool = (total >= PARALLEL_HASH_MIN && cores() > 1)
            .then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(cores())
                    .build()
                    .ok()
            })
            .flatten();
        match pool {
            Some(pool) => pool.install(|| {
                for part in parts {
                    hasher.update_rayon(part.as_ref());
                }
            }),
            None => {
                for part in parts {
                    hasher.update(part.as_ref());
                }
            }
        }
        Key(*hasher.finalize().as_bytes())
    }

    /// A hasher for data that arrives in parts (a body spooled to disk as it comes).
    pub fn hasher() -> KeyHasher {
        KeyHasher(blake3::Hasher::new())
    }

    /// Lower-case hexadecimal, as shown to users and used in file names.
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }
}

/// The [`Key`] of data hashed part by part.
#[derive(Debug, Clone)]
pub struct KeyHasher(blake3::Hasher);

impl KeyHasher {
    /// Adds the next part.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The key of everything added.
    pub fn finish(&self) -> Key {
        Key(*self.0.finalize().as_bytes())
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({self})")
    }
}

impl FromStr for Key {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        blake3::Hash::from_hex(s)
            .map(|h| Key(*h.as_bytes()))
            .map_err(|_| Error::Handle(format!("not a key (64 hexadecimal digits): {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_hash_like_their_concatenation() {
        let data: Vec<u8> = (0..(9 << 20)).map(|i| (i % 251) as u8).collect();
        let (a, b) = data.split_at(3 << 20);
        assert_eq!(Key::of(&data), Key::of_parts(&[a, b]));
        assert_eq!(Key::of(&data).as_bytes(), blake3::hash(&data).as_bytes());
        let mut hasher = Key::hasher();
        data.chunks(1 << 20).for_each(|c| hasher.update(c));
        assert_eq!(hasher.finish(), Key::of(&data));
    }

    #[test]
    fn hex_round_trips_and_rejects_garbage() {
        let key = Key::of(b"hello");
        assert_eq!(key.to_string().parse::<Key>().unwrap(), key);
        assert!("zz".parse::<Key>().is_err());
        assert!(key.to_string()[..63].parse::<Key>().is_err());
    }
}
