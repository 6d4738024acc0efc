//! ext2/3/4 inodes, extent trees and directories read directly, for what
//! `ext4-view` 1.0 does not offer: inode numbers (`Stat::id`, so clients
//! can see directory cycles) and file data that honours unwritten
//! extents.
//!
//! `ext4-view` reads an extent whose length field is above 32768 (the
//! "unwritten" flag fallocate sets, length minus 32768 blocks) as that
//! many raw blocks: a file fallocated over freed blocks showed their old
//! contents, and the extents after it moved. Here an unwritten extent
//! reads as zeros, as Linux reads it. Everything is checked before use
//! (magic numbers, depths, order, block numbers inside the file system,
//! extent-block checksums) and every walk is bounded; reads go through
//! the same journal replay as `ext4-view`'s (`ext_journal`), so both see
//! the same inodes.

use crate::backend::{FsResult, Volume};
use crate::bytes::{le16, le32};
use crate::ext_journal::{self, crc32c, JournalMap, JournalSource};
use crate::proto::ErrorKind;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

/// The root directory's inode.
pub const ROOT: u32 = 2;
/// Superblock feature bits this module looks at.
const COMPAT_HAS_JOURNAL: u32 = 0x4;
const INCOMPAT_RECOVER: u32 = 0x4;
const INCOMPAT_64BIT: u32 = 0x80;
const INCOMPAT_CSUM_SEED: u32 = 0x2000;
const RO_COMPAT_METADATA_CSUM: u32 = 0x400;
/// Inode flag: data mapped by an extent tree (else by block map).
const EXTENTS_FL: u32 = 0x8_0000;
/// Where an inode keeps the low and high halves of its checksum.
const CSUM_LO: usize = 0x7c;
const CSUM_HI: usize = 0x82;
/// Extent tree node magic.
const EXTENT_MAGIC: u16 = 0xf30a;
/// Extent length fields above this mark unwritten extents.
const MAX_INIT_LEN: u16 = 32768;
/// Deepest extent tree ext4 builds.
const MAX_DEPTH: u16 = 5;
/// Most extent-tree blocks one walk may read: far above any real file's
/// needs for one request, and a bound on hostile trees.
const MAX_NODES: u32 = 1 << 16;
/// Most directory paths remembered with their inode.
const DIR_CACHE: usize = 1 << 12;
/// Longest symlink target read here (the protocol's path limit).
pub const MAX_LINK: u64 = 4096;

fn not_found(name: &str) -> (ErrorKind, String) {
    (ErrorKind::NotFound, format!("{name}: no such entry"))
}

fn corrupt(msg: String) -> (ErrorKind, String) {
    (ErrorKind::Corrupt, msg)
}

/// An inode, as far as this module needs it.
#[derive(Clone)]
pub struct Inode {
    /// Its number.
    pub ino: u32,
    mode: u16,
    /// Its size in bytes.
    pub size: u64,
    flags: u32,
    generation: u32,
    block: [u8; 60],
}

impl Inode {
    /// True for a regular file.
    pub fn is_file(&self) -> bool {
        self.mode & 0xf000 == 0x8000
    }
    /// True for a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & 0xf000 == 0x4000
    }
    /// True if its data is mapped by an extent tree.
    pub fn uses_extents(&self) -> bool {
        self.flags & EXTENTS_FL != 0
    }
}

/// A directory's entries: `(name, inode)`.
pub type DirEntries = Vec<(Vec<u8>, u32)>;

/// A directory's names, each with the inode of its first entry.
type DirIndex = BTreeMap<Vec<u8>, u32>;

/// One extent: `len` blocks from file block `logical` at file-system
/// block `physical`; an unwritten one reads as zeros.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Extent {
    logical: u64,
    len: u64,
    physical: u64,
    unwritten: bool,
}

/// The file system's geometry and journal, and what was looked up.
pub struct ExtLayout {
    volume: Volume,
    block_size: u64,
    blocks_count: u64,
    inodes_per_group: u32,
    inode_size: u64,
    /// First block of each group's inode table.
    inode_tables: Vec<u64>,
    /// Seed of inode checksums, when the file system has metadata
    /// checksums.
    csum_seed: Option<u32>,
    journal: JournalMap,
    /// Directory paths (as `ext4-view` canonicalizes them) -> inode.
    dirs: RefCell<BTreeMap<String, u32>>,
    /// The entries of the directory scanned last, and its inode.
    last_dir: RefCell<Option<(u32, DirEntries)>>,
    /// The names of `last_dir`'s directory, each with the inode of its
    /// first entry: built on the first lookup in it, so looking up every
    /// file of a large directory is not a scan of it per file.
    last_index: RefCell<Option<(u32, DirIndex)>>,
}

/// Reads the journal file's blocks without the journal (as `ext4-view`
/// does while it replays).
struct Unjournaled<'a>(&'a ExtLayout, Inode);

impl JournalSource for Unjournaled<'_> {
    fn block_size(&self) -> usize {
        self.0.block_size as usize
    }
    fn journal_block(&self, n: u64) -> Option<u64> {
        if n >= self.1.size.div_ceil(self.0.block_size) {
            return None;
        }
        self.0.file_block(&self.1, n).ok().flatten()
    }
    fn read_block(&self, block: u64, buf: &mut [u8]) -> bool {
        self.0.read_blocks(block, buf).is_ok()
    }
}

impl ExtLayout {
    /// Reads the superblock, group descriptors and (when it needs
    /// recovery) the journal of the ext2/3/4 file system on `volume`.
    pub fn open(volume: Volume) -> Result<ExtLayout, String> {
        let mut sb = [0u8; 1024];
        volume.read_at(1024, &mut sb).map_err(|e| format!("superblock: {e}"))?;
        if le16(&sb, 0x38) != 0xef53 {
            return Err("no ext2/3/4 superblock".into());
        }
        let log = le32(&sb, 0x18);
        if log > 6 {
            return Err("bad block size".into());
        }
        let block_size = 1024u64 << log;
        let incompat = le32(&sb, 0x60);
        let blocks_hi = if incompat & INCOMPAT_64BIT != 0 { u64::from(le32(&sb, 0x150)) } else { 0 };
        // Blocks past the volume cannot be read anyway: counting only
        // those inside keeps every byte offset below the volume's size.
        let blocks_count = (blocks_hi << 32 | u64::from(le32(&sb, 0x4))).min(volume.len() / block_size);
        let first_data_block = u64::from(le32(&sb, 0x14));
        let blocks_per_group = u64::from(le32(&sb, 0x20));
        let inodes_per_group = le32(&sb, 0x28);
        let inode_size = u64::from(le16(&sb, 0x58));
        if blocks_per_group == 0 || inodes_per_group == 0 || !(128..=block_size).contains(&inode_size) {
            return Err("bad group geometry".into());
        }
        let groups = blocks_count.saturating_sub(first_data_block).div_ceil(blocks_per_group);
        let desc_size = if incompat & INCOMPAT_64BIT != 0 { u64::from(le16(&sb, 0xfe)) } else { 32 };
        if !(32..=block_size).contains(&desc_size) || groups.saturating_mul(desc_size) > volume.len() {
            return Err("bad group descriptors".into());
        }
        // As ext4-view: the descriptors follow the superblock's block.
        let table_start = if block_size == 1024 { 2 } else { 1 } * block_size;
        let mut descs = vec![0u8; (groups * desc_size) as usize];
        volume.read_at(table_start, &mut descs).map_err(|e| format!("group descriptors: {e}"))?;
        let inode_tables = descs
            .chunks_exact(desc_size as usize)
            .map(|d| {
                let hi = if desc_size >= 64 { u64::from(le32(d, 0x28)) } else { 0 };
                hi << 32 | u64::from(le32(d, 0x8))
            })
            .collect();
        let csum_seed = (le32(&sb, 0x64) & RO_COMPAT_METADATA_CSUM != 0).then(|| {
            if incompat & INCOMPAT_CSUM_SEED != 0 {
                le32(&sb, 0x270)
            } else {
                crc32c(!0, &sb[0x68..0x78])
            }
        });
        let mut fs = ExtLayout {
            volume,
            block_size,
            blocks_count,
            inodes_per_group,
            inode_size,
            inode_tables,
            csum_seed,
            journal: JournalMap::new(),
            dirs: RefCell::new(BTreeMap::new()),
            last_dir: RefCell::new(None),
            last_index: RefCell::new(None),
        };
        if le32(&sb, 0x5c) & COMPAT_HAS_JOURNAL != 0 && incompat & INCOMPAT_RECOVER != 0 {
            let inode = fs.inode(le32(&sb, 0xe0)).map_err(|(_, m)| format!("journal: {m}"))?;
            fs.journal = ext_journal::replay(&Unjournaled(&fs, inode))?;
        }
        Ok(fs)
    }

    /// Fills `buf` from block `block` on, each block through the journal.
    fn read_blocks(&self, block: u64, buf: &mut [u8]) -> FsResult<()> {
        self.read_at(block, 0, buf)
    }

    /// Fills `buf` from byte `offset` of block `block` on (across block
    /// boundaries), each block through the journal; every block must lie
    /// inside the file system.
    fn read_at(&self, block: u64, offset: u64, buf: &mut [u8]) -> FsResult<()> {
        let bs = self.block_size;
        let last = block + (offset + buf.len() as u64).div_ceil(bs);
        if block == 0 || last > self.blocks_count {
            return Err(corrupt(format!("block {block} lies outside the file system")));
        }
        let io = |e: rumpglue::Error| match e {
            rumpglue::Error::OutOfRange => corrupt("a block lies outside the volume".into()),
            e => (ErrorKind::Io, format!("reading the image: {e}")),
        };
        if self.journal.is_empty() {
            return self.volume.read_at(block * bs + offset, buf).map_err(io);
        }
        let mut done = 0usize;
        let mut at = block * bs + offset;
        while done < buf.len() {
            let b = at / bs;
            let within = at % bs;
            let n = ((bs - within) as usize).min(buf.len() - done);
            let from = self.journal.get(&b).copied().unwrap_or(b);
            self.volume.read_at(from * bs + within, &mut buf[done..done + n]).map_err(io)?;
            done += n;
            at += n as u64;
        }
        Ok(())
    }

    /// Reads inode `ino`.
    pub fn inode(&self, ino: u32) -> FsResult<Inode> {
        let bad = || corrupt(format!("inode {ino} does not exist"));
        let index = ino.checked_sub(1).ok_or_else(bad)?;
        let table = *self.inode_tables.get((index / self.inodes_per_group) as usize).ok_or_else(bad)?;
        let byte = u64::from(index % self.inodes_per_group) * self.inode_size;
        let mut d = vec![0u8; self.inode_size as usize];
        self.read_at(table + byte / self.block_size, byte % self.block_size, &mut d)?;
        if let Some(seed) = self.csum_seed {
            // As `ext4-view` checks it: the whole inode, its two checksum
            // fields taken as zeros.
            if d.len() < CSUM_HI + 2 {
                return Err(corrupt(format!("inode {ino} is too small for its checksum")));
            }
            let want = u32::from(le16(&d, CSUM_LO)) | u32::from(le16(&d, CSUM_HI)) << 16;
            let mut c = crc32c(crc32c(seed, &ino.to_le_bytes()), &d[0x64..0x68]);
            c = crc32c(c, &d[..CSUM_LO]);
            c = crc32c(c, &[0, 0]);
            c = crc32c(c, &d[CSUM_LO + 2..CSUM_HI]);
            c = crc32c(c, &[0, 0]);
            c = crc32c(c, &d[CSUM_HI + 2..]);
            if c != want {
                return Err(corrupt(format!("inode {ino}: checksum mismatch")));
            }
        }
        let mut block = [0u8; 60];
        block.copy_from_slice(&d[0x28..0x64]);
        Ok(Inode {
            ino,
            mode: le16(&d, 0),
            size: u64::from(le32(&d, 0x6c)) << 32 | u64::from(le32(&d, 0x4)),
            flags: le32(&d, 0x20),
            generation: le32(&d, 0x64),
            block,
        })
    }

    /// The file-system block holding block `n` of the file (`None`: a
    /// hole, or unwritten).
    fn file_block(&self, inode: &Inode, n: u64) -> FsResult<Option<u64>> {
        if inode.uses_extents() {
            let mut out = Vec::new();
            self.extents(inode, n, n + 1, &mut out)?;
            return Ok(out.first().filter(|e| !e.unwritten).map(|e| e.physical + (n - e.logical)));
        }
        // Block map: 12 direct blocks, then single, double and triple
        // indirect blocks of 4-byte block numbers.
        let per = self.block_size / 4;
        let direct = |i: usize| u64::from(le32(&inode.block, i * 4));
        let (mut block, mut rest, levels) = if n < 12 {
            (direct(n as usize), 0, 0)
        } else if n - 12 < per {
            (direct(12), n - 12, 1)
        } else if n - 12 - per < per * per {
            (direct(13), n - 12 - per, 2)
        } else if n - 12 - per - per * per < per * per * per {
            (direct(14), n - 12 - per - per * per, 3)
        } else {
            return Ok(None);
        };
        for level in (0..levels).rev() {
            if block == 0 {
                return Ok(None);
            }
            let span = per.pow(level);
            let mut e = [0u8; 4];
            self.read_at(block, (rest / span) * 4, &mut e)?;
            block = u64::from(u32::from_le_bytes(e));
            rest %= span;
        }
        Ok((block != 0).then_some(block))
    }

    /// The extents of `inode` that meet file blocks `[lo, hi)`, in order.
    fn extents(&self, inode: &Inode, lo: u64, hi: u64, out: &mut Vec<Extent>) -> FsResult<()> {
        let mut nodes = 0;
        let seed = self.csum_seed.map(|s| crc32c(crc32c(s, &inode.ino.to_le_bytes()), &inode.generation.to_le_bytes()));
        self.walk(inode.ino, seed, &inode.block, None, (lo, hi), out, &mut nodes)
    }

    /// Walks the extent node `node`, visiting only children that meet
    /// `[lo, hi)`: a walk reads about as many nodes as the range needs,
    /// whatever the tree claims.
    #[allow(clippy::too_many_arguments)] // one recursive walk, its state spelled out
    fn walk(
        &self,
        ino: u32,
        seed: Option<u32>,
        node: &[u8],
        depth: Option<u16>,
        (lo, hi): (u64, u64),
        out: &mut Vec<Extent>,
        nodes: &mut u32,
    ) -> FsResult<()> {
        let bad = |what: &str| corrupt(format!("inode {ino}: {what}"));
        if node.len() < 12 || le16(node, 0) != EXTENT_MAGIC {
            return Err(bad("bad extent tree node"));
        }
        let (entries, max, d) = (le16(node, 2) as usize, le16(node, 4) as usize, le16(node, 6));
        if d > MAX_DEPTH || depth.is_some_and(|want| want != d) || 12 * (entries + 1) > node.len() || entries > max {
            return Err(bad("bad extent tree node"));
        }
        let entry = |i: usize| &node[12 * (i + 1)..12 * (i + 2)];
        if d == 0 {
            let mut end = 0u64;
            for i in 0..entries {
                let e = entry(i);
                let raw = le16(e, 4);
                let (len, unwritten) = if raw > MAX_INIT_LEN { (raw - MAX_INIT_LEN, true) } else { (raw, false) };
                let logical = u64::from(le32(e, 0));
                let x = Extent {
                    logical,
                    len: u64::from(len),
                    physical: u64::from(le16(e, 6)) << 32 | u64::from(le32(e, 8)),
                    unwritten,
                };
                if x.len == 0 || logical < end || out.last().is_some_and(|p| logical < p.logical + p.len) {
                    return Err(bad("extents overlap or are out of order"));
                }
                end = logical + x.len;
                if end > lo && logical < hi {
                    if !unwritten && (x.physical == 0 || x.physical + x.len > self.blocks_count) {
                        return Err(bad("an extent lies outside the file system"));
                    }
                    out.push(x);
                }
            }
            return Ok(());
        }
        for i in 0..entries {
            let start = u64::from(le32(entry(i), 0));
            let end = if i + 1 < entries { u64::from(le32(entry(i + 1), 0)) } else { u64::MAX };
            if end <= start {
                return Err(bad("extent index out of order"));
            }
            if end <= lo || start >= hi {
                continue;
            }
            *nodes += 1;
            if *nodes > MAX_NODES {
                return Err(bad("extent tree too large"));
            }
            let e = entry(i);
            let child = u64::from(le16(e, 8)) << 32 | u64::from(le32(e, 4));
            let mut block = vec![0u8; self.block_size as usize];
            self.read_blocks(child, &mut block)?;
            if let Some(seed) = seed {
                // The checksum follows the node's room for entries.
                let tail = 12 * (usize::from(le16(&block, 4)) + 1);
                if tail + 4 > block.len() || crc32c(seed, &block[..tail]) != le32(&block, tail) {
                    return Err(bad("extent block checksum mismatch"));
                }
            }
            self.walk(ino, seed, &block, Some(d - 1), (lo.max(start), hi.min(end)), out, nodes)?;
        }
        Ok(())
    }

    /// Up to `buf.len()` bytes from `offset` of an extent-mapped file of
    /// `size` bytes; holes and unwritten extents read as zeros.
    pub fn read(&self, inode: &Inode, size: u64, offset: u64, buf: &mut [u8]) -> FsResult<usize> {
        if offset >= size {
            return Ok(0);
        }
        let end = size.min(offset.saturating_add(buf.len() as u64));
        let bs = self.block_size;
        let mut extents = Vec::new();
        self.extents(inode, offset / bs, end.div_ceil(bs), &mut extents)?;
        let mut at = offset; // bytes before this are filled
        for x in extents.iter().filter(|x| !x.unwritten) {
            let (from, to) = ((x.logical * bs).max(offset), ((x.logical + x.len) * bs).min(end));
            if from >= to {
                continue;
            }
            buf[(at - offset) as usize..(from - offset) as usize].fill(0);
            let within = from - x.logical * bs;
            self.read_at(
                x.physical + within / bs,
                within % bs,
                &mut buf[(from - offset) as usize..(to - offset) as usize],
            )?;
            at = to;
        }
        buf[(at - offset) as usize..(end - offset) as usize].fill(0);
        Ok((end - offset) as usize)
    }

    /// Calls `f` with the entries of directory `dir` in on-disk order, as
    /// `ext4-view` reads them (`.` and `..` included): `(name, inode)`.
    /// The entries of the directory read last are kept for the next call.
    pub fn with_entries<R>(&self, dir: &Inode, f: impl FnOnce(&[(Vec<u8>, u32)]) -> R) -> FsResult<R> {
        if let Some((ino, e)) = self.last_dir.borrow().as_ref() {
            if *ino == dir.ino {
                return Ok(f(e));
            }
        }
        let bad = |what: &str| corrupt(format!("directory inode {}: {what}", dir.ino));
        let bs = self.block_size as usize;
        let blocks = dir.size.div_ceil(self.block_size);
        if blocks > self.blocks_count {
            return Err(bad("larger than the file system"));
        }
        let mut out = Vec::new();
        let mut block = vec![0u8; bs];
        for n in 0..blocks {
            let b = self.file_block(dir, n)?.ok_or_else(|| bad("a block is missing"))?;
            self.read_blocks(b, &mut block)?;
            let mut at = 0;
            while at < bs {
                let e = &block[at..];
                if e.len() < 8 || le16(e, 4) < 8 {
                    return Err(bad("bad entry"));
                }
                let (ino, name_len) = (le32(e, 0), usize::from(e[6]));
                if ino != 0 {
                    let name = e.get(8..8 + name_len).ok_or_else(|| bad("bad entry"))?;
                    out.push((name.to_vec(), ino));
                }
                at += usize::from(le16(e, 4));
            }
        }
        let r = f(&out);
        *self.last_dir.borrow_mut() = Some((dir.ino, out));
        Ok(r)
    }

    /// The inode of `name` in directory `dir` (the first entry of that
    /// name, as a lookup finds it).
    pub fn child(&self, dir: u32, name: &str) -> FsResult<u32> {
        let d = self.inode(dir)?;
        if !d.is_dir() {
            return Err((ErrorKind::NotDir, format!("inode {dir} is not a directory")));
        }
        if let Some((ino, index)) = self.last_index.borrow().as_ref() {
            if *ino == dir {
                return index.get(name.as_bytes()).copied().ok_or_else(|| not_found(name));
            }
        }
        let index = self.with_entries(&d, |e| {
            let mut index = BTreeMap::new();
            for (n, ino) in e {
                index.entry(n.clone()).or_insert(*ino);
            }
            index
        })?;
        let found = index.get(name.as_bytes()).copied();
        *self.last_index.borrow_mut() = Some((dir, index));
        found.ok_or_else(|| not_found(name))
    }

    /// The inode at `path`, which must be canonical (absolute, without
    /// `.`, `..` or symlinks, as `ext4-view` canonicalizes).
    pub fn lookup(&self, path: &str) -> FsResult<u32> {
        let mut ino = ROOT;
        let mut prefix = String::new();
        for c in path.split('/').filter(|c| !c.is_empty()) {
            prefix.push('/');
            prefix.push_str(c);
            if let Some(&known) = self.dirs.borrow().get(&prefix) {
                ino = known;
                continue;
            }
            ino = self.child(ino, c)?;
            let mut dirs = self.dirs.borrow_mut();
            if dirs.len() >= DIR_CACHE {
                dirs.clear();
            }
            dirs.insert(prefix.clone(), ino);
        }
        Ok(ino)
    }

    /// The target of an extent-mapped symlink `inode` stored in data
    /// blocks (longer than 59 bytes), read as its extents say.
    pub fn link_target(&self, inode: &Inode) -> FsResult<String> {
        if inode.size > MAX_LINK {
            return Err(corrupt(format!("inode {}: symlink target too long", inode.ino)));
        }
        let mut buf = vec![0u8; inode.size as usize];
        let n = self.read(inode, inode.size, 0, &mut buf)?;
        buf.truncate(n);
        if buf.contains(&0) {
            return Err(corrupt(format!("inode {}: symlink target holds a NUL byte", inode.ino)));
        }
        String::from_utf8(buf).map_err(|_| (ErrorKind::Unsupported, "link target is not UTF-8".to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An extent tree root holding `extents` (logical, raw length,
    /// physical).
    fn root(extents: &[(u32, u16, u32)]) -> [u8; 60] {
        let mut b = [0u8; 60];
        b[0..2].copy_from_slice(&EXTENT_MAGIC.to_le_bytes());
        b[2..4].copy_from_slice(&(extents.len() as u16).to_le_bytes());
        b[4..6].copy_from_slice(&4u16.to_le_bytes());
        for (i, &(l, n, p)) in extents.iter().enumerate() {
            let e = &mut b[12 * (i + 1)..12 * (i + 2)];
            e[0..4].copy_from_slice(&l.to_le_bytes());
            e[4..6].copy_from_slice(&n.to_le_bytes());
            e[8..12].copy_from_slice(&p.to_le_bytes());
        }
        b
    }

    fn layout() -> ExtLayout {
        struct Zero;
        impl rumpglue::BlockDevice for Zero {
            fn size(&self) -> u64 {
                1 << 20
            }
            fn read_at(&self, _off: u64, buf: &mut [u8]) -> rumpglue::Result<()> {
                buf.fill(0xaa);
                Ok(())
            }
            fn write_at(&self, _off: u64, _buf: &[u8]) -> rumpglue::Result<()> {
                Err(rumpglue::Error::ReadOnly)
            }
            fn writable(&self) -> bool {
                false
            }
            fn flush(&self) -> rumpglue::Result<()> {
                Ok(())
            }
        }
        ExtLayout {
            volume: Volume::new(alloc::sync::Arc::new(Zero)),
            block_size: 1024,
            blocks_count: 1024,
            inodes_per_group: 8,
            inode_size: 128,
            inode_tables: vec![],
            csum_seed: None,
            journal: JournalMap::new(),
            dirs: RefCell::new(BTreeMap::new()),
            last_dir: RefCell::new(None),
            last_index: RefCell::new(None),
        }
    }

    fn inode(extents: &[(u32, u16, u32)]) -> Inode {
        Inode { ino: 12, mode: 0x8000, size: 8 * 1024, flags: EXTENTS_FL, generation: 0, block: root(extents) }
    }

    #[test]
    fn unwritten_extents_and_holes_read_as_zeros() {
        let fs = layout();
        // Block 0 written, blocks 1-2 unwritten, 3 a hole, 4 written.
        let ino = inode(&[(0, 1, 100), (1, MAX_INIT_LEN + 2, 200), (4, 1, 300)]);
        let mut buf = vec![0x55u8; 8 * 1024];
        assert_eq!(fs.read(&ino, 5 * 1024, 0, &mut buf), Ok(5 * 1024));
        assert!(buf[..1024].iter().all(|&b| b == 0xaa));
        assert!(buf[1024..4096].iter().all(|&b| b == 0), "unwritten and hole must be zeros");
        assert!(buf[4096..5120].iter().all(|&b| b == 0xaa));
        // A read that starts inside the unwritten extent.
        let mut small = vec![0x55u8; 100];
        assert_eq!(fs.read(&ino, 5 * 1024, 1500, &mut small), Ok(100));
        assert!(small.iter().all(|&b| b == 0));
    }

    #[test]
    fn hostile_extent_trees_are_refused() {
        let fs = layout();
        let mut buf = vec![0u8; 4096];
        for bad in [
            &[(0, 2, 100), (1, 1, 200)][..], // overlap
            &[(2, 1, 100), (0, 1, 200)][..], // out of order
            &[(0, 0, 100)][..],              // empty
            &[(0, 1, 0)][..],                // block 0
            &[(0, 4, 1022)][..],             // past the end
        ] {
            assert_eq!(fs.read(&inode(bad), 4096, 0, &mut buf).map_err(|e| e.0), Err(ErrorKind::Corrupt), "{bad:?}");
        }
    }
}
