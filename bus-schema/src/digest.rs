//! A content digest shared by subjects (hashed request ids) and messages (catalogue keys).
//! Its own module so that neither of those two depends on the other.

/// A content digest: 64-bit FNV-1a over the chunks (each followed by a 0 byte), in hex.
/// Cheap, stable across processes and languages, and enough to tell two catalogues apart;
/// a cache key, not a security boundary.
pub fn digest<I, C>(chunks: I) -> String
where
    I: IntoIterator<Item = C>,
    C: AsRef<[u8]>,
{
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for chunk in chunks {
        for &b in chunk.as_ref().iter().chain(&[0u8]) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}
