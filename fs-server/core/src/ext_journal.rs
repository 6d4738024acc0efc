//! The ext3/4 journal (JBD2) replayed in memory, by the rules e2fsck and
//! the kernel follow (`recovery.c`): the result is the file system
//! e2fsck would leave, without writing a byte of the image.
//!
//! Recovery is three passes over the circular log from the superblock's
//! `s_start`: the first finds the last committed transaction, the second
//! collects revocations (a block revoked in transaction R is not replayed
//! from any transaction up to R), the third maps each file-system block
//! to the journal block holding its newest committed copy. Journal
//! superblocks v1 and v2, 32- and 64-bit block numbers, no checksums or
//! checksums v2/v3, escaped blocks and a log that wraps are all read.
//! What the kernel refuses (an unknown checksum type, a block size that
//! differs from the file system's) makes the journal [`Unusable`]: the
//! file system is then read as it is on disk, as debugfs reads it.
//!
//! Every pass reads at most one lap of the log, so a hostile journal
//! cannot keep the reader busy.

use crate::bytes::be32;
use alloc::collections::BTreeMap;
use alloc::vec;

/// Where the newest committed copy of a file-system block is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Copy {
    /// The file-system block (of the journal file) holding it.
    pub at: u64,
    /// Its first four bytes were the journal's magic number, which the
    /// journal stores as zeros: put the magic number back when reading.
    pub escaped: bool,
}

/// File-system block -> its newest committed copy in the journal.
pub type JournalMap = BTreeMap<u64, Copy>;

/// The magic number that starts every journal block (big-endian).
pub const MAGIC: u32 = 0xc03b_3998;
/// Journal block types.
const DESCRIPTOR: u32 = 1;
const COMMIT: u32 = 2;
const SUPERBLOCK_V1: u32 = 3;
const SUPERBLOCK_V2: u32 = 4;
const REVOCATION: u32 = 5;
/// Compatible journal feature: v1 checksums (CRC32 of each
/// transaction's descriptor and data blocks in its commit block).
const COMPAT_CHECKSUM: u32 = 0x1;
/// The commit block's checksum type and size for a v1 CRC32.
const CRC32_TYPE: u8 = 1;
const CRC32_SIZE: u8 = 4;
/// Incompatible journal features.
const REVOKE: u32 = 0x1;
const BIT64: u32 = 0x2;
const ASYNC_COMMIT: u32 = 0x4;
const CSUM_V2: u32 = 0x8;
const CSUM_V3: u32 = 0x10;
const FAST_COMMIT: u32 = 0x20;
const KNOWN: u32 = REVOKE | BIT64 | ASYNC_COMMIT | CSUM_V2 | CSUM_V3 | FAST_COMMIT;
/// The journal superblock's checksum type for CRC32C.
const CRC32C: u8 = 4;
/// Fast-commit blocks at the end of the log when the superblock gives
/// no number.
const DEFAULT_FC_BLOCKS: u32 = 256;
/// Descriptor tag flags: data block escaped, UUID omitted, last tag.
const TAG_ESCAPED: u32 = 0x1;
const TAG_SAME_UUID: u32 = 0x2;
const TAG_LAST: u32 = 0x8;
/// Bytes of a journal block header: magic, type, sequence.
const HEADER: usize = 12;
/// Bytes of a revocation block's header: the block header and a count.
const REVOKE_HEADER: usize = 16;
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

/// CRC32 (polynomial 0x04c11db7) most significant bit first, without
/// the final inversion: the kernel's `crc32_be`, which v1 journal
/// checksums use.
fn crc32_be(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 { (crc << 1) ^ 0x04c1_1db7 } else { crc << 1 };
        }
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
struct Journal<'a> {
    src: &'a dyn JournalSource,
    /// First and one-past-last block of the circular log.
    first: u64,
    last: u64,
    /// Where recovery starts, and with which transaction.
    start: u64,
    sequence: u32,
    features: u32,
    /// Commits carry v1 checksums.
    v1_checksums: bool,
    /// `crc32c(!0, uuid)`: where every checksum of v2/v3 starts.
    csum_seed: Option<u32>,
}

/// Why the journal cannot be used at all.
pub type Unusable = &'static str;

impl Journal<'_> {
    fn has(&self, feature: u32) -> bool {
        self.features & feature != 0
    }

    /// Bytes of a descriptor tag, its UUID not counted.
    fn tag_bytes(&self) -> usize {
        if self.has(CSUM_V3) {
            return 16;
        }
        let size = if self.has(CSUM_V2) { 14 } else { 12 };
        if self.has(BIT64) {
            size
        } else {
            size - 4
        }
    }

    /// Bytes at the end of descriptor and revocation blocks that hold
    /// their checksum.
    fn tail_bytes(&self) -> usize {
        if self.csum_seed.is_some() {
            4
        } else {
            0
        }
    }

    /// Reads log block `n` (already wrapped) into `buf`.
    fn read(&self, n: u64, buf: &mut [u8]) -> bool {
        self.src.journal_block(n).is_some_and(|b| self.src.read_block(b, buf))
    }

    /// The log block after `n`.
    fn next(&self, n: u64) -> u64 {
        if n + 1 >= self.last {
            self.first
        } else {
            n + 1
        }
    }

    /// A descriptor's or revocation block's checksum holds (or there is
    /// none to check).
    fn tail_ok(&self, b: &[u8]) -> bool {
        let Some(seed) = self.csum_seed else { return true };
        let n = b.len() - 4;
        crc32c(crc32c(seed, &b[..n]), &[0; 4]) == be32(b, n)
    }

    /// A commit block's checksum holds (or there is none to check).
    fn commit_ok(&self, b: &[u8]) -> bool {
        let Some(seed) = self.csum_seed else { return true };
        crc32c(crc32c(crc32c(seed, &b[..16]), &[0; 4]), &b[20..]) == be32(b, 16)
    }

    /// A tagged data block's checksum holds (or there is none to check).
    fn data_ok(&self, tag: &[u8], sequence: u32, data: &[u8]) -> bool {
        let Some(seed) = self.csum_seed else { return true };
        let c = crc32c(crc32c(seed, &sequence.to_be_bytes()), data);
        if self.has(CSUM_V3) {
            be32(tag, 12) == c
        } else {
            u32::from(u16::from_be_bytes([tag[4], tag[5]])) == c & 0xffff
        }
    }

    /// The tags of a descriptor block: `(target block, flags, the tag's
    /// bytes)`, up to the last one or the end of the block.
    fn tags<'b>(&self, b: &'b [u8]) -> impl Iterator<Item = (u64, u32, &'b [u8])> + 'b {
        let (size, bit64, v3) = (self.tag_bytes(), self.has(BIT64), self.has(CSUM_V3));
        let end = b.len() - self.tail_bytes();
        let mut at = HEADER;
        let mut done = false;
        core::iter::from_fn(move || {
            if done || at + size > end {
                return None;
            }
            let tag = &b[at..at + size];
            let flags = if v3 { be32(tag, 4) } else { u32::from(u16::from_be_bytes([tag[6], tag[7]])) };
            let hi = if bit64 { u64::from(be32(tag, 8)) } else { 0 };
            at += size + if flags & TAG_SAME_UUID != 0 { 0 } else { 16 };
            done = flags & TAG_LAST != 0;
            Some((hi << 32 | u64::from(be32(tag, 0)), flags, tag))
        })
    }
}

fn superblock(src: &dyn JournalSource) -> Result<Option<Journal<'_>>, Unusable> {
    let bs = src.block_size();
    let mut b = vec![0u8; bs];
    if bs < 1024 || !src.journal_block(0).is_some_and(|at| src.read_block(at, &mut b)) {
        return Err("cannot read the journal superblock");
    }
    let kind = be32(&b, 4);
    if be32(&b, 0) != MAGIC || (kind != SUPERBLOCK_V1 && kind != SUPERBLOCK_V2) {
        return Err("no journal superblock");
    }
    if be32(&b, 0xc) as usize != bs {
        return Err("the journal's block size differs from the file system's");
    }
    let features = if kind == SUPERBLOCK_V2 { be32(&b, 0x28) } else { 0 };
    if features & !KNOWN != 0 {
        return Err("unknown journal features");
    }
    let csum_seed = if features & (CSUM_V2 | CSUM_V3) != 0 {
        if b[0x50] != CRC32C {
            return Err("unknown journal checksum type");
        }
        let mut c = crc32c(!0, &b[..0xfc]);
        c = crc32c(c, &[0; 4]);
        c = crc32c(c, &b[0x100..1024]);
        if c != be32(&b, 0xfc) {
            return Err("journal superblock checksum mismatch");
        }
        Some(crc32c(!0, &b[0x30..0x40]))
    } else {
        None
    };
    let mut last = u64::from(be32(&b, 0x10));
    if features & FAST_COMMIT != 0 {
        let fc = match be32(&b, 0x54) {
            0 => DEFAULT_FC_BLOCKS,
            n => n,
        };
        last = last.saturating_sub(u64::from(fc));
    }
    let (first, start) = (u64::from(be32(&b, 0x14)), u64::from(be32(&b, 0x1c)));
    if start == 0 {
        return Ok(None); // clean: nothing to replay
    }
    if first == 0 || first >= last || !(first..last).contains(&start) {
        return Err("the journal's log bounds are corrupt");
    }
    let v1_checksums = kind == SUPERBLOCK_V2 && be32(&b, 0x24) & COMPAT_CHECKSUM != 0;
    Ok(Some(Journal { src, first, last, start, sequence: be32(&b, 0x18), features, v1_checksums, csum_seed }))
}

/// Which recovery pass is walking the log.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    Scan,
    Revoke,
    Replay,
}

/// What the passes share: where the log ends, the revocations, the map.
struct Recovery {
    /// The first transaction not committed (found by the scan).
    end: u32,
    /// Block -> the newest transaction revoking it.
    revoked: BTreeMap<u64, u32>,
    map: JournalMap,
}

/// One pass over the log, from its start to the first block that is not
/// the next one of the transaction being read (or, after the scan, to
/// the end the scan found).
fn pass(j: &Journal, pass: Pass, r: &mut Recovery) {
    let bs = j.src.block_size();
    let mut block = vec![0u8; bs];
    let mut data = vec![0u8; bs];
    let mut sequence = j.sequence;
    let mut at = j.start;
    // At most one lap of the log.
    let mut budget = j.last - j.first;
    // The v1 checksum of the transaction read so far (scan only).
    let mut v1 = !0u32;
    loop {
        if pass != Pass::Scan && sequence == r.end {
            break;
        }
        if budget == 0 || !j.read(at, &mut block) {
            break;
        }
        budget -= 1;
        at = j.next(at);
        if be32(&block, 0) != MAGIC || be32(&block, 8) != sequence {
            break;
        }
        match be32(&block, 4) {
            DESCRIPTOR => {
                if !j.tail_ok(&block) {
                    // A stale or torn descriptor: the log ends here.
                    break;
                }
                if pass == Pass::Scan && j.v1_checksums {
                    v1 = crc32_be(v1, &block);
                }
                for (target, flags, tag) in j.tags(&block) {
                    let copy = at;
                    if budget == 0 {
                        break;
                    }
                    budget -= 1;
                    at = j.next(at);
                    if pass == Pass::Scan && j.v1_checksums {
                        if !j.read(copy, &mut data) {
                            break;
                        }
                        v1 = crc32_be(v1, &data);
                    }
                    if pass != Pass::Replay {
                        continue;
                    }
                    if r.revoked.get(&target).is_some_and(|&rev| sequence.wrapping_sub(rev) as i32 <= 0) {
                        continue;
                    }
                    // A copy that fails its checksum is not replayed (the
                    // kernel and e2fsck skip it and go on).
                    if !j.read(copy, &mut data) || !j.data_ok(tag, sequence, &data) {
                        continue;
                    }
                    let Some(fs_block) = j.src.journal_block(copy) else { continue };
                    r.map.insert(target, Copy { at: fs_block, escaped: flags & TAG_ESCAPED != 0 });
                }
            }
            COMMIT => {
                // A commit whose checksum fails ends the log before its
                // transaction (with asynchronous commits as well: the
                // kernel replays nothing after it either).
                if pass == Pass::Scan {
                    let v1_ok = !j.v1_checksums || {
                        let (found, kind, size) = (be32(&block, 16), block[12], block[13]);
                        (found == v1 && kind == CRC32_TYPE && size == CRC32_SIZE)
                            || (found == 0 && kind == 0 && size == 0)
                    };
                    v1 = !0;
                    if !j.commit_ok(&block) || !v1_ok {
                        break;
                    }
                }
                sequence = sequence.wrapping_add(1);
            }
            REVOCATION => {
                if pass != Pass::Revoke || !j.tail_ok(&block) {
                    continue;
                }
                let count = be32(&block, HEADER) as usize;
                if count > bs - j.tail_bytes() {
                    continue; // the kernel refuses this block's records
                }
                let len = if j.has(BIT64) { 8 } else { 4 };
                let records = block.get(REVOKE_HEADER..count).unwrap_or(&[]);
                for rec in records.chunks_exact(len) {
                    let b = if len == 8 {
                        u64::from(be32(rec, 0)) << 32 | u64::from(be32(rec, 4))
                    } else {
                        u64::from(be32(rec, 0))
                    };
                    let newest = r.revoked.entry(b).or_insert(sequence);
                    if (sequence.wrapping_sub(*newest) as i32) > 0 {
                        *newest = sequence;
                    }
                }
            }
            _ => break,
        }
    }
    if pass == Pass::Scan {
        r.end = sequence;
    }
}

/// Replays the journal: the map of committed block copies, empty when
/// the journal is clean.
pub fn replay(src: &dyn JournalSource) -> Result<JournalMap, Unusable> {
    let Some(j) = superblock(src)? else { return Ok(JournalMap::new()) };
    let mut r = Recovery { end: j.sequence, revoked: BTreeMap::new(), map: JournalMap::new() };
    pass(&j, Pass::Scan, &mut r);
    if j.has(REVOKE) {
        pass(&j, Pass::Revoke, &mut r);
    }
    pass(&j, Pass::Replay, &mut r);
    Ok(r.map)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BS: usize = 1024;

    /// A journal of `blocks.len()` blocks, journal block n at file-system
    /// block n + 100.
    struct Mem(Vec<Vec<u8>>);

    impl JournalSource for Mem {
        fn block_size(&self) -> usize {
            BS
        }
        fn journal_block(&self, n: u64) -> Option<u64> {
            (n < self.0.len() as u64).then_some(n + 100)
        }
        fn read_block(&self, block: u64, buf: &mut [u8]) -> bool {
            buf.copy_from_slice(&self.0[(block - 100) as usize]);
            true
        }
    }

    fn header(kind: u32, sequence: u32) -> Vec<u8> {
        let mut b = vec![0u8; BS];
        b[0..4].copy_from_slice(&MAGIC.to_be_bytes());
        b[4..8].copy_from_slice(&kind.to_be_bytes());
        b[8..12].copy_from_slice(&sequence.to_be_bytes());
        b
    }

    /// A v2 superblock without checksums or 64-bit tags: log blocks 1 to
    /// `len - 1`, recovery from `start` with transaction `sequence`.
    fn superblock(len: usize, start: u32, sequence: u32) -> Vec<u8> {
        let mut b = header(SUPERBLOCK_V2, 0);
        b[0xc..0x10].copy_from_slice(&(BS as u32).to_be_bytes());
        b[0x10..0x14].copy_from_slice(&(len as u32).to_be_bytes());
        b[0x14..0x18].copy_from_slice(&1u32.to_be_bytes());
        b[0x18..0x1c].copy_from_slice(&sequence.to_be_bytes());
        b[0x1c..0x20].copy_from_slice(&start.to_be_bytes());
        b
    }

    /// A descriptor of one tag for file-system block `target` (32-bit,
    /// no checksum: 8 bytes, then the UUID), marked last.
    fn descriptor(sequence: u32, target: u32) -> Vec<u8> {
        let mut b = header(DESCRIPTOR, sequence);
        b[HEADER..HEADER + 4].copy_from_slice(&target.to_be_bytes());
        b[HEADER + 6..HEADER + 8].copy_from_slice(&(TAG_LAST as u16).to_be_bytes());
        b
    }

    #[test]
    fn a_log_that_wraps_is_replayed_in_order_and_the_newest_copy_wins() {
        // The log is blocks 1 to 7: transaction 7 in blocks 5-7, then
        // transaction 8 wrapped round to blocks 1-3; both write file-system
        // block 42.
        let mut j = vec![superblock(8, 5, 7), descriptor(8, 42), vec![2; BS], header(COMMIT, 8)];
        j.extend([vec![0; BS], descriptor(7, 42), vec![1; BS], header(COMMIT, 7)]);
        let map = replay(&Mem(j)).unwrap();
        assert_eq!(map.get(&42), Some(&Copy { at: 102, escaped: false }), "transaction 8's copy");
    }

    #[test]
    fn an_uncommitted_transaction_and_a_revoked_block_are_not_replayed() {
        let mut sb = superblock(8, 1, 1);
        sb[0x28..0x2c].copy_from_slice(&REVOKE.to_be_bytes());
        let mut revoke = header(REVOCATION, 2);
        revoke[HEADER..HEADER + 4].copy_from_slice(&((REVOKE_HEADER + 4) as u32).to_be_bytes());
        revoke[REVOKE_HEADER..REVOKE_HEADER + 4].copy_from_slice(&42u32.to_be_bytes());
        let j = vec![
            sb,
            descriptor(1, 42), // transaction 1 writes 42 ...
            vec![1; BS],
            header(COMMIT, 1),
            revoke, // ... transaction 2 revokes it ...
            header(COMMIT, 2),
            descriptor(3, 43), // ... transaction 3 never commits.
            vec![3; BS],
        ];
        let map = replay(&Mem(j)).unwrap();
        assert!(map.is_empty(), "{map:?}");
    }

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
