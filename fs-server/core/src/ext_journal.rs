//! The ext3/4 journal replayed in memory, as `ext4-view` 1.0 replays it,
//! for the blocks `ext_layout` reads itself.
//!
//! `ext4-view` reads every block through a map from file-system block to
//! the journal block holding its newest committed copy; the map is built
//! only when the superblock says the journal needs recovery. `ext_layout`
//! reads inodes, extent trees and directories next to `ext4-view`, so it
//! must see the same bytes: this module builds the same map by the same
//! rules (journal superblock v2 with 64-bit block numbers and checksums
//! v3, descriptor, revocation and commit blocks, every checksum checked,
//! replay ending at the first block that is not a journal block, breaks
//! the sequence or fails its checksum).

use crate::bytes::be32;
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

/// File-system block -> journal block holding its newest committed copy.
pub type JournalMap = BTreeMap<u64, u64>;

/// The magic number that starts every journal block (big-endian).
const MAGIC: u32 = 0xc03b_3998;
/// Journal block types.
const DESCRIPTOR: u32 = 1;
const COMMIT: u32 = 2;
const SUPERBLOCK_V2: u32 = 4;
const REVOCATION: u32 = 5;
/// Journal features `ext4-view` requires (64-bit block numbers,
/// checksums v3) and the one more it allows (revocation).
const FEATURES_REQUIRED: u32 = 0x2 | 0x10;
const FEATURES_ALLOWED: u32 = FEATURES_REQUIRED | 0x1;
/// The journal superblock's checksum type for CRC32C.
const CRC32C: u8 = 4;
/// Descriptor tag flags: data block escaped, UUID omitted, last tag.
const TAG_ESCAPED: u32 = 0x1;
const TAG_SAME_UUID: u32 = 0x2;
const TAG_LAST: u32 = 0x8;
/// Bytes of a journal block header: magic, type, sequence.
const HEADER: usize = 12;

/// CRC32C (Castagnoli) lookup table, reflected.
const CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0x82f6_3b78 } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// CRC32C of `data` continuing from `crc`, without the final inversion:
/// ext4's `crc32c_le(crc, data)`, and what `ext4-view` computes.
pub fn crc32c(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = CRC_TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

/// What the replay needs of the file system: its block size, the journal
/// file's block at a journal offset (`None` past its end or in a hole),
/// and reading one whole block.
pub trait JournalSource {
    /// Bytes per block.
    fn block_size(&self) -> usize;
    /// The file-system block holding journal block `n`.
    fn journal_block(&self, n: u64) -> Option<u64>;
    /// Reads block `block` whole into `buf`; false if it cannot.
    fn read_block(&self, block: u64, buf: &mut [u8]) -> bool;
}

/// The journal's fixed facts.
struct Superblock {
    sequence: u32,
    start: u32,
    uuid: [u8; 16],
}

/// Why the journal cannot be used at all (`ext4-view` refuses such a
/// file system when it loads it, so in practice this does not happen).
pub type Unusable = &'static str;

fn superblock(src: &dyn JournalSource) -> Result<Superblock, Unusable> {
    let first = src.journal_block(0).ok_or("the journal is empty")?;
    let mut b = vec![0u8; src.block_size()];
    if !src.read_block(first, &mut b) {
        return Err("cannot read the journal superblock");
    }
    if b.len() < 1024 || be32(&b, 0) != MAGIC || be32(&b, 4) != SUPERBLOCK_V2 {
        return Err("no journal superblock v2");
    }
    let features = be32(&b, 0x28);
    if features & FEATURES_REQUIRED != FEATURES_REQUIRED || features & !FEATURES_ALLOWED != 0 {
        return Err("unsupported journal features");
    }
    if b[0x50] != CRC32C {
        return Err("unsupported journal checksum type");
    }
    let mut c = crc32c(!0, &b[..0xfc]);
    c = crc32c(c, &[0; 4]);
    c = crc32c(c, &b[0x100..1024]);
    if c != be32(&b, 0xfc) {
        return Err("journal superblock checksum mismatch");
    }
    if be32(&b, 0xc) as usize != src.block_size() {
        return Err("journal block size differs from the file system's");
    }
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&b[0x30..0x40]);
    Ok(Superblock { sequence: be32(&b, 0x18), start: be32(&b, 0x1c), uuid })
}

/// Replays the journal: the map of committed block copies. Ends quietly
/// where `ext4-view` ends (a corrupt or torn transaction is not applied);
/// fails where `ext4-view` fails to load the file system.
pub fn replay(src: &dyn JournalSource) -> Result<JournalMap, Unusable> {
    let sb = superblock(src)?;
    let bs = src.block_size();
    let mut map = JournalMap::new();
    let mut uncommitted = JournalMap::new();
    let mut revoked: Vec<u64> = Vec::new();
    let mut sequence = sb.sequence;
    let mut next = u64::from(sb.start);
    let mut block = vec![0u8; bs];
    let mut data = vec![0u8; bs];
    // A tagged block's checksum: over the UUID, the sequence, the data.
    let tag_sum = |seq: u32, d: &[u8]| crc32c(crc32c(crc32c(!0, &sb.uuid), &seq.to_be_bytes()), d);
    // A descriptor's or revocation block's: over all but its tail, the
    // tail read as zero.
    let tail_sum = |b: &[u8]| crc32c(crc32c(crc32c(!0, &sb.uuid), &b[..b.len() - 4]), &[0; 4]);
    while let Some(at) = src.journal_block(next) {
        next += 1;
        if !src.read_block(at, &mut block) || be32(&block, 0) != MAGIC {
            break;
        }
        if be32(&block, 8) != sequence {
            break;
        }
        match be32(&block, 4) {
            DESCRIPTOR => {
                if tail_sum(&block) != be32(&block, bs - 4) {
                    break;
                }
                let mut tags = &block[HEADER..];
                let mut ok = true;
                loop {
                    if tags.len() < 16 {
                        ok = false;
                        break;
                    }
                    let flags = be32(tags, 4);
                    let size = if flags & TAG_SAME_UUID != 0 { 16 } else { 32 };
                    if tags.len() < size {
                        ok = false;
                        break;
                    }
                    if flags & TAG_ESCAPED != 0 {
                        return Err("escaped journal blocks are not supported");
                    }
                    let target = u64::from(be32(tags, 8)) << 32 | u64::from(be32(tags, 0));
                    let Some(copy) = src.journal_block(next) else {
                        ok = false;
                        break;
                    };
                    next += 1;
                    if !src.read_block(copy, &mut data) || tag_sum(sequence, &data) != be32(tags, 12) {
                        ok = false;
                        break;
                    }
                    uncommitted.insert(target, copy);
                    if flags & TAG_LAST != 0 {
                        break;
                    }
                    tags = &tags[size..];
                }
                if !ok {
                    break;
                }
            }
            REVOCATION => {
                if tail_sum(&block) != be32(&block, bs - 4) {
                    break;
                }
                let table = &block[HEADER..bs - 4];
                let bytes = be32(table, 0) as usize;
                let entries = table.get(4..).and_then(|t| t.get(..bytes));
                let Some(entries) = entries.filter(|_| bytes.is_multiple_of(8)) else { break };
                revoked.extend(entries.chunks_exact(8).map(|e| u64::from_be_bytes(e.try_into().expect("8 bytes"))));
            }
            COMMIT => {
                let mut c = crc32c(crc32c(!0, &sb.uuid), &block[..16]);
                c = crc32c(crc32c(c, &[0; 4]), &block[20..]);
                if c != be32(&block, 16) {
                    break;
                }
                for r in revoked.drain(..) {
                    uncommitted.remove(&r);
                }
                map.append(&mut uncommitted);
                let Some(s) = sequence.checked_add(1) else { break };
                sequence = s;
            }
            _ => return Err("unknown journal block type"),
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::crc32c;

    #[test]
    fn crc32c_matches_ext4_view() {
        // ext4-view's own test vectors (its Checksum starts at !0 and
        // ends without inverting).
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&1u32.to_le_bytes());
        b[4..].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(crc32c(!0, &b), 0x858c_13d3);
        assert_eq!(crc32c(123, &b), 0xfc52_7a0a);
    }
}
