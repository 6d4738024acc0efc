//! ext2/3/4 read directly: superblock, group descriptors, inodes, block
//! maps, extent trees, inline data and directories, through the journal
//! replayed in memory (`ext_journal`).
//!
//! Two readers serve ext images. `ext4-view` serves the ones it takes;
//! this module gives it what it lacks there: inode numbers (`Stat::id`,
//! so clients can see directory cycles), a journal replayed the way
//! e2fsck replays it (`ext4-view` reads the image through [`Mapped`]),
//! and file data that honours unwritten extents (`ext4-view` 1.0 reads
//! an extent whose length field is above 32768, the "unwritten" flag
//! fallocate sets, as that many raw blocks: a file fallocated over freed
//! blocks showed their old contents). For the images `ext4-view` refuses
//! (old ext2 without file types in directories, 128-byte inodes with
//! checksums, inline data, meta block groups, large xattr inodes,
//! casefolded directories, multi-mount protection), this module is the
//! whole reader (`ext_direct`).
//!
//! Everything is checked before use (magic numbers, depths, order, block
//! numbers inside the file system, inode and extent-block checksums) and
//! every walk is bounded.

use crate::backend::{FsResult, Volume};
use crate::bytes::{le16, le32};
use crate::ext_journal::{self, crc32c, JournalMap, JournalSource};
use crate::proto::ErrorKind;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

/// The root directory's inode.
pub const ROOT: u32 = 2;
/// Superblock feature bits this module looks at.
const COMPAT_HAS_JOURNAL: u32 = 0x4;
const COMPAT_SPARSE_SUPER2: u32 = 0x200;
pub(crate) const INCOMPAT_COMPRESSION: u32 = 0x1;
pub(crate) const INCOMPAT_FILETYPE: u32 = 0x2;
pub(crate) const INCOMPAT_RECOVER: u32 = 0x4;
pub(crate) const INCOMPAT_JOURNAL_DEV: u32 = 0x8;
pub(crate) const INCOMPAT_META_BG: u32 = 0x10;
const INCOMPAT_64BIT: u32 = 0x80;
pub(crate) const INCOMPAT_MMP: u32 = 0x100;
pub(crate) const INCOMPAT_EA_INODE: u32 = 0x400;
pub(crate) const INCOMPAT_DIRDATA: u32 = 0x1000;
const INCOMPAT_CSUM_SEED: u32 = 0x2000;
pub(crate) const INCOMPAT_LARGEDIR: u32 = 0x4000;
pub(crate) const INCOMPAT_INLINE_DATA: u32 = 0x8000;
pub(crate) const INCOMPAT_CASEFOLD: u32 = 0x2_0000;
const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
const RO_COMPAT_METADATA_CSUM: u32 = 0x400;
/// Where the superblock keeps its checksum.
const SB_CSUM: usize = 0x3fc;
/// Inode flags: data mapped by an extent tree (else by block map); data
/// kept in the inode and its `system.data` attribute.
const EXTENTS_FL: u32 = 0x8_0000;
const INLINE_DATA_FL: u32 = 0x1000_0000;
/// Inode flag: a directory with an htree index.
const INDEX_FL: u32 = 0x1000;
/// Directories larger than this without an index are served by this
/// reader's own index (see [`Inode::is_large_unindexed`]).
const LARGE_DIR: u64 = 16 << 10;
/// Where an inode keeps the low and high halves of its checksum.
const CSUM_LO: usize = 0x7c;
const CSUM_HI: usize = 0x82;
/// Bytes of an inode before its extra fields.
const GOOD_OLD_INODE: usize = 128;
/// Magic of the extended attributes kept in an inode.
const XATTR_MAGIC: u32 = 0xea02_0000;
/// Extended-attribute name index of `system.` names.
const XATTR_SYSTEM: u8 = 7;
/// Extent tree node magic.
const EXTENT_MAGIC: u16 = 0xf30a;
/// Extent length fields above this mark unwritten extents.
const MAX_INIT_LEN: u16 = 32768;
/// Deepest extent tree ext4 builds.
const MAX_DEPTH: u16 = 5;
/// Most extent-tree blocks one walk may read: far above any real file's
/// needs for one request, and a bound on hostile trees.
const MAX_NODES: u32 = 1 << 16;
/// Most directory indexes kept (the directories looked up in last: a
/// parent stays while its children are walked).
const INDEXES: usize = 8;
/// Most directory paths remembered with their inode.
const DIR_CACHE: usize = 1 << 12;
/// Longest symlink target read here (the protocol's path limit).
pub const MAX_LINK: u64 = 4096;
/// Bytes of the inode's block array, where short symlink targets and the
/// first inline data live.
const IN_INODE: usize = 60;

fn not_found(name: &str) -> (ErrorKind, String) {
    (ErrorKind::NotFound, format!("{name}: no such entry"))
}

fn corrupt(msg: String) -> (ErrorKind, String) {
    (ErrorKind::Corrupt, msg)
}

/// An inode, as far as the readers need it.
#[derive(Clone)]
pub struct Inode {
    /// Its number.
    pub ino: u32,
    /// Type and permission bits.
    pub mode: u16,
    /// Its size in bytes.
    pub size: u64,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Last modification, in seconds since 1970.
    pub mtime: i64,
    flags: u32,
    generation: u32,
    block: [u8; IN_INODE],
    /// The value of its `system.data` attribute (the rest of inline data).
    inline_tail: Vec<u8>,
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
    /// True for a symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.mode & 0xf000 == 0xa000
    }
    /// True if its data is mapped by an extent tree.
    pub fn uses_extents(&self) -> bool {
        self.flags & EXTENTS_FL != 0 && !self.is_inline()
    }
    /// True for a directory of more than [`LARGE_DIR`] bytes without an
    /// htree index: a lookup by name in it reads all of it.
    pub fn is_large_unindexed(&self) -> bool {
        self.is_dir() && self.flags & INDEX_FL == 0 && self.size > LARGE_DIR
    }
    /// True if its data lives in the inode itself.
    pub fn is_inline(&self) -> bool {
        self.flags & INLINE_DATA_FL != 0
    }
    /// Its inline data: the block array, then `system.data`.
    fn inline_data(&self) -> impl Iterator<Item = &u8> {
        self.block.iter().chain(self.inline_tail.iter())
    }
}

/// The inode of the entry [`ExtLayout::with_entries`] lists where a
/// directory block's entries are malformed (its name says which block).
pub const DAMAGED: u32 = 0;

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

/// The volume as the file system is after its journal is replayed: each
/// block read from its newest committed copy, the superblock without its
/// "needs recovery" flag (and with a checksum to match). `ext4-view`
/// reads the image through this, so it never replays the journal itself.
#[derive(Clone)]
pub struct Mapped {
    volume: Volume,
    block_size: u64,
    journal: Arc<JournalMap>,
    /// The superblock as read through the journal, its flag cleared.
    superblock: Option<Arc<[u8; 1024]>>,
}

impl Mapped {
    /// Fills `buf` from byte `at` of the recovered file system.
    pub fn read(&self, mut at: u64, buf: &mut [u8]) -> rumpglue::Result<()> {
        let bs = self.block_size;
        let mut done = 0usize;
        while done < buf.len() {
            let (b, within) = (at / bs, at % bs);
            // Up to the next block the journal holds a copy of, in one read.
            let last = (at + (buf.len() - done) as u64).div_ceil(bs);
            let next_copy = self.journal.range(b..last).next().map(|(&k, _)| k);
            let n = match next_copy {
                Some(k) if k == b => ((bs - within) as usize).min(buf.len() - done),
                Some(k) => ((k * bs - at) as usize).min(buf.len() - done),
                None => buf.len() - done,
            };
            let out = &mut buf[done..done + n];
            match self.journal.get(&b).filter(|_| next_copy == Some(b)) {
                Some(copy) => {
                    self.volume.read_at(copy.at * bs + within, out)?;
                    if copy.escaped && within < 4 {
                        // The journal stored the block's first four bytes,
                        // the journal's magic number, as zeros.
                        let magic = ext_journal::MAGIC.to_be_bytes();
                        for (i, byte) in out.iter_mut().enumerate().take(4 - within as usize) {
                            *byte = magic[within as usize + i];
                        }
                    }
                }
                None => self.volume.read_at(at, out)?,
            }
            done += n;
            at += n as u64;
        }
        if let Some(sb) = &self.superblock {
            // Bytes 1024..2048 of the volume, wherever `buf` meets them.
            let (start, end) = (at - buf.len() as u64, at);
            let (lo, hi) = (start.max(1024), end.min(2048));
            if lo < hi {
                buf[(lo - start) as usize..(hi - start) as usize]
                    .copy_from_slice(&sb[(lo - 1024) as usize..(hi - 1024) as usize]);
            }
        }
        Ok(())
    }
}

/// The indirect blocks of a block map last read, one per level (single,
/// double, triple): block number and contents.
#[derive(Default)]
struct Indirect([Option<(u64, Vec<u8>)>; 3]);

/// The file system's geometry and journal, and what was looked up.
pub struct ExtLayout {
    mapped: Mapped,
    block_size: u64,
    blocks_count: u64,
    inodes_per_group: u32,
    inode_size: u64,
    /// Superblock feature flags.
    compat: u32,
    /// Incompatible features (see the `INCOMPAT_` constants).
    pub incompat: u32,
    ro_compat: u32,
    /// The volume label.
    pub label: String,
    /// First block of each group's inode table.
    inode_tables: Vec<u64>,
    /// Seed of inode checksums, when the file system has metadata
    /// checksums.
    csum_seed: Option<u32>,
    /// What the reader could not do about the journal (read as on disk).
    pub journal_note: Option<String>,
    /// Directory paths (canonical) -> inode.
    dirs: RefCell<BTreeMap<Vec<u8>, u32>>,
    /// The entries of the directory scanned last, and its inode.
    last_dir: RefCell<Option<(u32, DirEntries)>>,
    /// The names of the directories looked up in last (most recent
    /// first, at most [`INDEXES`]), each with the inode of its first
    /// entry: built on the first lookup in one, so looking up every file
    /// of a large directory, or every subdirectory of one, is not a scan
    /// of it per name.
    indexes: RefCell<Vec<(u32, DirIndex)>>,
}

/// Reads the journal file's blocks without the journal.
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

/// True if group `g` holds a copy of the superblock (and so of the group
/// descriptors of the classic layout).
fn has_super(g: u64, compat: u32, ro_compat: u32, backups: [u64; 2]) -> bool {
    if g == 0 {
        return true;
    }
    if compat & COMPAT_SPARSE_SUPER2 != 0 {
        return backups.contains(&g);
    }
    if ro_compat & RO_COMPAT_SPARSE_SUPER == 0 || g == 1 {
        return true;
    }
    [3u64, 5, 7].iter().any(|&base| {
        let mut p = base;
        while p < g {
            p *= base;
        }
        p == g
    })
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
        let (compat, incompat, ro_compat) = (le32(&sb, 0x5c), le32(&sb, 0x60), le32(&sb, 0x64));
        if incompat & INCOMPAT_JOURNAL_DEV != 0 {
            return Err("this is an external journal, not a file system".into());
        }
        if incompat & INCOMPAT_COMPRESSION != 0 {
            return Err("compressed ext2 (e2compr) is not supported".into());
        }
        let blocks_hi = if incompat & INCOMPAT_64BIT != 0 { u64::from(le32(&sb, 0x150)) } else { 0 };
        // Blocks past the volume cannot be read anyway: counting only
        // those inside keeps every byte offset below the volume's size.
        let blocks_count = (blocks_hi << 32 | u64::from(le32(&sb, 0x4))).min(volume.len() / block_size);
        let first_data_block = u64::from(le32(&sb, 0x14));
        let blocks_per_group = u64::from(le32(&sb, 0x20));
        let inodes_per_group = le32(&sb, 0x28);
        // Revision 0 file systems have 128-byte inodes and no field for it.
        let inode_size = if le32(&sb, 0x4c) == 0 { 128 } else { u64::from(le16(&sb, 0x58)) };
        if blocks_per_group == 0 || inodes_per_group == 0 || !(128..=block_size).contains(&inode_size) {
            return Err("bad group geometry".into());
        }
        let groups = blocks_count.saturating_sub(first_data_block).div_ceil(blocks_per_group);
        let desc_size = if incompat & INCOMPAT_64BIT != 0 { u64::from(le16(&sb, 0xfe)) } else { 32 };
        if !(32..=block_size).contains(&desc_size) || groups.saturating_mul(desc_size) > volume.len() {
            return Err("bad group descriptors".into());
        }
        // Where each block of descriptors is: after the superblock, or
        // with meta block groups, in the first group (after its backup
        // superblock, if any) of the groups it describes.
        let per_block = block_size / desc_size;
        let first_meta_bg = if incompat & INCOMPAT_META_BG != 0 { u64::from(le32(&sb, 0x104)) } else { u64::MAX };
        let backups = [u64::from(le32(&sb, 0x24c)), u64::from(le32(&sb, 0x250))];
        let mut descs = vec![0u8; (groups * desc_size) as usize];
        // With 1 KiB blocks block 0 is the boot block even where the first
        // data block is 0 (bigalloc), as e2fsprogs reads it.
        let adjust = u64::from(first_data_block == 0 && block_size == 1024);
        for (i, chunk) in descs.chunks_mut(block_size as usize).enumerate() {
            let i = i as u64;
            let block = if i < first_meta_bg {
                first_data_block + adjust + 1 + i
            } else {
                let g = i * per_block;
                let zero = if i == 0 { adjust } else { 0 };
                first_data_block + g * blocks_per_group + u64::from(has_super(g, compat, ro_compat, backups)) + zero
            };
            if block >= blocks_count {
                return Err("group descriptors lie outside the file system".into());
            }
            volume.read_at(block * block_size, chunk).map_err(|e| format!("group descriptors: {e}"))?;
        }
        let inode_tables = descs
            .chunks_exact(desc_size as usize)
            .map(|d| {
                let hi = if desc_size >= 64 { u64::from(le32(d, 0x28)) } else { 0 };
                hi << 32 | u64::from(le32(d, 0x8))
            })
            .collect();
        let csum_seed = (ro_compat & RO_COMPAT_METADATA_CSUM != 0).then(|| {
            if incompat & INCOMPAT_CSUM_SEED != 0 {
                le32(&sb, 0x270)
            } else {
                crc32c(!0, &sb[0x68..0x78])
            }
        });
        let label = sb[0x78..0x88].split(|&b| b == 0).next().unwrap_or(&[]);
        let mut fs = ExtLayout {
            mapped: Mapped { volume, block_size, journal: Arc::new(JournalMap::new()), superblock: None },
            block_size,
            blocks_count,
            inodes_per_group,
            inode_size,
            compat,
            incompat,
            ro_compat,
            label: String::from_utf8_lossy(label).into_owned(),
            inode_tables,
            csum_seed,
            journal_note: None,
            dirs: RefCell::new(BTreeMap::new()),
            last_dir: RefCell::new(None),
            indexes: RefCell::new(Vec::new()),
        };
        if compat & COMPAT_HAS_JOURNAL != 0 && incompat & INCOMPAT_RECOVER != 0 {
            let journal = le32(&sb, 0xe0);
            let replayed = if journal == 0 {
                Err("the journal is on another device".to_string())
            } else {
                fs.inode(journal)
                    .map_err(|(_, m)| m)
                    .and_then(|inode| ext_journal::replay(&Unjournaled(&fs, inode)).map_err(str::to_string))
            };
            match replayed {
                Ok(map) => fs.mapped.journal = Arc::new(map),
                Err(why) => fs.journal_note = Some(format!("needs recovery, but {why}: read as it is on disk")),
            }
            // Everyone reads the recovered file system: its superblock
            // (perhaps newer in the journal) no longer needs recovery.
            let mut now = [0u8; 1024];
            fs.mapped.read(1024, &mut now).map_err(|e| format!("superblock: {e}"))?;
            let flags = le32(&now, 0x60) & !INCOMPAT_RECOVER;
            now[0x60..0x64].copy_from_slice(&flags.to_le_bytes());
            if ro_compat & RO_COMPAT_METADATA_CSUM != 0 {
                let c = crc32c(!0, &now[..SB_CSUM]);
                now[SB_CSUM..].copy_from_slice(&c.to_le_bytes());
            }
            fs.mapped.superblock = Some(Arc::new(now));
        }
        Ok(fs)
    }

    /// The volume as `ext4-view` should read it (see [`Mapped`]).
    pub fn mapped(&self) -> Mapped {
        self.mapped.clone()
    }

    /// `ext2`, `ext3` or `ext4`, as the features say: ext4 has features
    /// beyond ext3's, ext3 a journal.
    pub fn kind(&self) -> &'static str {
        const EXT3_INCOMPAT: u32 = INCOMPAT_FILETYPE | INCOMPAT_RECOVER | INCOMPAT_META_BG;
        const EXT3_RO_COMPAT: u32 = RO_COMPAT_SPARSE_SUPER | 0x2 | 0x4; // large files, B-tree dirs
        if self.incompat & !EXT3_INCOMPAT != 0 || self.ro_compat & !EXT3_RO_COMPAT != 0 {
            "ext4"
        } else if self.compat & COMPAT_HAS_JOURNAL != 0 {
            "ext3"
        } else {
            "ext2"
        }
    }

    /// True if inodes, extent blocks and directories carry checksums.
    pub fn has_metadata_csum(&self) -> bool {
        self.ro_compat & RO_COMPAT_METADATA_CSUM != 0
    }

    /// Bytes per inode.
    pub fn inode_size(&self) -> u64 {
        self.inode_size
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
        self.mapped.read(block * bs + offset, buf).map_err(|e| match e {
            rumpglue::Error::OutOfRange => corrupt("a block lies outside the volume".into()),
            e => (ErrorKind::Io, format!("reading the image: {e}")),
        })
    }

    /// Reads inode `ino`.
    pub fn inode(&self, ino: u32) -> FsResult<Inode> {
        let bad = || corrupt(format!("inode {ino} does not exist"));
        let index = ino.checked_sub(1).ok_or_else(bad)?;
        let table = *self.inode_tables.get((index / self.inodes_per_group) as usize).ok_or_else(bad)?;
        let byte = u64::from(index % self.inodes_per_group) * self.inode_size;
        let mut d = vec![0u8; self.inode_size as usize];
        self.read_at(table + byte / self.block_size, byte % self.block_size, &mut d)?;
        // The extra fields past the first 128 bytes, as far as they fit.
        let extra = if d.len() > GOOD_OLD_INODE { usize::from(le16(&d, GOOD_OLD_INODE)) } else { 0 };
        if GOOD_OLD_INODE + extra > d.len() || extra % 4 != 0 {
            return Err(corrupt(format!("inode {ino}: bad extra size {extra}")));
        }
        if let Some(seed) = self.csum_seed {
            // The whole inode, its checksum fields taken as zeros; the
            // high half exists only if the extra fields reach it.
            let has_hi = extra >= CSUM_HI + 2 - GOOD_OLD_INODE;
            let mut c = crc32c(crc32c(seed, &ino.to_le_bytes()), &d[0x64..0x68]);
            c = crc32c(c, &d[..CSUM_LO]);
            c = crc32c(c, &[0, 0]);
            if has_hi {
                c = crc32c(c, &d[CSUM_LO + 2..CSUM_HI]);
                c = crc32c(c, &[0, 0]);
                c = crc32c(c, &d[CSUM_HI + 2..]);
            } else {
                c = crc32c(c, &d[CSUM_LO + 2..]);
            }
            let (want, got) = if has_hi {
                (u32::from(le16(&d, CSUM_LO)) | u32::from(le16(&d, CSUM_HI)) << 16, c)
            } else {
                (u32::from(le16(&d, CSUM_LO)), c & 0xffff)
            };
            if got != want {
                return Err(corrupt(format!("inode {ino}: checksum mismatch")));
            }
        }
        let mut block = [0u8; IN_INODE];
        block.copy_from_slice(&d[0x28..0x64]);
        let flags = le32(&d, 0x20);
        let inline_tail = if flags & INLINE_DATA_FL != 0 {
            system_data(&d[GOOD_OLD_INODE + extra..]).ok_or_else(|| corrupt(format!("inode {ino}: bad inline data")))?
        } else {
            Vec::new()
        };
        Ok(Inode {
            ino,
            mode: le16(&d, 0),
            size: u64::from(le32(&d, 0x6c)) << 32 | u64::from(le32(&d, 0x4)),
            uid: u32::from(le16(&d, 0x2)) | u32::from(le16(&d, 0x78)) << 16,
            gid: u32::from(le16(&d, 0x18)) | u32::from(le16(&d, 0x7a)) << 16,
            mtime: i64::from(le32(&d, 0x10) as i32),
            flags,
            generation: le32(&d, 0x64),
            block,
            inline_tail,
        })
    }

    /// The file-system block holding block `n` of the file (`None`: a
    /// hole, or unwritten).
    fn file_block(&self, inode: &Inode, n: u64) -> FsResult<Option<u64>> {
        self.file_block_with(inode, n, &mut Indirect::default())
    }

    /// [`Self::file_block`], keeping the indirect blocks it reads in
    /// `seen` for the next call: a run of blocks through a block map then
    /// reads each indirect block once, not once per data block.
    fn file_block_with(&self, inode: &Inode, n: u64, seen: &mut Indirect) -> FsResult<Option<u64>> {
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
            if block >= self.blocks_count {
                return Err(corrupt(format!(
                    "inode {}: indirect block {block} lies outside the file system",
                    inode.ino
                )));
            }
            let span = per.pow(level);
            let slot = &mut seen.0[level as usize];
            if slot.as_ref().is_none_or(|(b, _)| *b != block) {
                let mut data = vec![0u8; self.block_size as usize];
                self.read_at(block, 0, &mut data)?;
                *slot = Some((block, data));
            }
            let data = &slot.as_ref().expect("just read").1;
            block = u64::from(le32(data, ((rest / span) * 4) as usize));
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

    /// The runs of blocks of a block-mapped file that meet file blocks
    /// `[lo, hi)`, as extents (consecutive blocks in one).
    fn mapped_runs(&self, inode: &Inode, lo: u64, hi: u64, out: &mut Vec<Extent>) -> FsResult<()> {
        let mut seen = Indirect::default();
        for n in lo..hi {
            let Some(b) = self.file_block_with(inode, n, &mut seen)? else { continue };
            if b >= self.blocks_count {
                return Err(corrupt(format!("inode {}: block {b} lies outside the file system", inode.ino)));
            }
            match out.last_mut() {
                Some(x) if x.logical + x.len == n && x.physical + x.len == b => x.len += 1,
                _ => out.push(Extent { logical: n, len: 1, physical: b, unwritten: false }),
            }
        }
        Ok(())
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

    /// Up to `buf.len()` bytes from `offset` of a file of `size` bytes
    /// (regular file, directory or symlink; its inode's size unless the
    /// caller knows better); holes and unwritten extents read as zeros.
    pub fn read(&self, inode: &Inode, size: u64, offset: u64, buf: &mut [u8]) -> FsResult<usize> {
        if offset >= size {
            return Ok(0);
        }
        let end = size.min(offset.saturating_add(buf.len() as u64));
        let want = (end - offset) as usize;
        if inode.is_inline() {
            let data = inode.inline_data().skip(offset as usize).take(want);
            let mut n = 0;
            for (dst, src) in buf.iter_mut().zip(data) {
                *dst = *src;
                n += 1;
            }
            buf[n..want].fill(0);
            return Ok(want);
        }
        let bs = self.block_size;
        let (lo, hi) = (offset / bs, end.div_ceil(bs));
        let mut runs = Vec::new();
        if inode.uses_extents() {
            self.extents(inode, lo, hi, &mut runs)?;
        } else {
            self.mapped_runs(inode, lo, hi, &mut runs)?;
        }
        let mut at = offset; // bytes before this are filled
        for x in runs.iter().filter(|x| !x.unwritten) {
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
        buf[(at - offset) as usize..want].fill(0);
        Ok(want)
    }

    /// Calls `f` with the entries of directory `dir` in on-disk order
    /// (`.` and `..` included, for inline directories too): `(name,
    /// inode)`. The entries of the directory read last are kept for the
    /// next call.
    pub fn with_entries<R>(&self, dir: &Inode, f: impl FnOnce(&[(Vec<u8>, u32)]) -> R) -> FsResult<R> {
        if let Some((ino, e)) = self.last_dir.borrow().as_ref() {
            if *ino == dir.ino {
                return Ok(f(e));
            }
        }
        let bad = |what: &str| corrupt(format!("directory inode {}: {what}", dir.ino));
        let mut out = Vec::new();
        if dir.is_inline() {
            // The parent's inode number, then entries in the rest of the
            // block array and in `system.data`, each area on its own.
            out.push((b".".to_vec(), dir.ino));
            out.push((b"..".to_vec(), le32(&dir.block, 0)));
            if entries(&dir.block[4..], &mut out).is_none() {
                out.push((b"(damaged inline entries)".to_vec(), DAMAGED));
            }
            if !dir.inline_tail.is_empty() && entries(&dir.inline_tail, &mut out).is_none() {
                out.push((b"(damaged inline entries)".to_vec(), DAMAGED));
            }
        } else {
            let bs = self.block_size as usize;
            let blocks = dir.size.div_ceil(self.block_size);
            if blocks > self.blocks_count {
                return Err(bad("larger than the file system"));
            }
            let mut block = vec![0u8; bs];
            for n in 0..blocks {
                let b = self.file_block(dir, n)?.ok_or_else(|| bad("a block is missing"))?;
                self.read_blocks(b, &mut block)?;
                if entries(&block, &mut out).is_none() {
                    // The entries before the damage stand; the rest of
                    // this block is lost (as e2fsck would salvage it).
                    out.push((format!("(damaged block {n})").into_bytes(), DAMAGED));
                }
            }
        }
        let r = f(&out);
        *self.last_dir.borrow_mut() = Some((dir.ino, out));
        Ok(r)
    }

    /// The inode of `name` in directory `dir` (the first entry of that
    /// name, as a lookup finds it).
    pub fn child(&self, dir: u32, name: &[u8]) -> FsResult<u32> {
        let shown = || String::from_utf8_lossy(name).into_owned();
        let cached = self.indexes.borrow().iter().position(|(ino, _)| *ino == dir);
        if let Some(i) = cached {
            let mut all = self.indexes.borrow_mut();
            let hit = all.remove(i);
            let found = hit.1.get(name).copied();
            all.insert(0, hit);
            return found.ok_or_else(|| not_found(&shown()));
        }
        let d = self.inode(dir)?;
        if !d.is_dir() {
            return Err((ErrorKind::NotDir, format!("inode {dir} is not a directory")));
        }
        let index = self.with_entries(&d, |e| {
            let mut index = BTreeMap::new();
            for (n, ino) in e.iter().filter(|(_, ino)| *ino != DAMAGED) {
                index.entry(n.clone()).or_insert(*ino);
            }
            index
        })?;
        let found = index.get(name).copied();
        let mut all = self.indexes.borrow_mut();
        all.truncate(INDEXES - 1);
        all.insert(0, (dir, index));
        found.ok_or_else(|| not_found(&shown()))
    }

    /// The inode at `path`, which must be canonical (absolute, without
    /// `.`, `..` or symlinks).
    pub fn lookup(&self, path: &[u8]) -> FsResult<u32> {
        let mut ino = ROOT;
        let mut prefix = Vec::new();
        for c in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
            prefix.push(b'/');
            prefix.extend_from_slice(c);
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

    /// The inode remembered for canonical path `prefix`, if any.
    pub(crate) fn cached(&self, prefix: &[u8]) -> Option<u32> {
        self.dirs.borrow().get(prefix).copied()
    }

    /// Remembers that canonical path `prefix` is inode `ino`.
    pub(crate) fn remember(&self, prefix: &[u8], ino: u32) {
        let mut dirs = self.dirs.borrow_mut();
        if dirs.len() >= DIR_CACHE {
            dirs.clear();
        }
        dirs.insert(prefix.to_vec(), ino);
    }

    /// The target of symlink `inode`: in its block array when short, else
    /// in its inline data or data blocks.
    pub fn link_bytes(&self, inode: &Inode) -> FsResult<Vec<u8>> {
        if inode.size > MAX_LINK {
            return Err(corrupt(format!("inode {}: the symlink claims a {}-byte target", inode.ino, inode.size)));
        }
        let size = inode.size as usize;
        let target = if !inode.is_inline() && size < IN_INODE {
            inode.block[..size].to_vec()
        } else {
            let mut buf = vec![0u8; size];
            let n = self.read(inode, inode.size, 0, &mut buf)?;
            buf.truncate(n);
            buf
        };
        if target.contains(&0) {
            return Err(corrupt(format!("inode {}: symlink target holds a NUL byte", inode.ino)));
        }
        Ok(target)
    }
}

/// Appends the entries of one directory area (a block, or a piece of
/// inline data) to `out`; `None` if an entry is malformed.
fn entries(area: &[u8], out: &mut DirEntries) -> Option<()> {
    let mut at = 0;
    while at < area.len() {
        let e = &area[at..];
        if e.len() < 8 {
            return None;
        }
        let (ino, rec_len, name_len) = (le32(e, 0), usize::from(le16(e, 4)), usize::from(e[6]));
        if rec_len < 8 || rec_len > e.len() || 8 + name_len > rec_len {
            return None;
        }
        if ino != 0 {
            out.push((e[8..8 + name_len].to_vec(), ino));
        }
        at += rec_len;
    }
    Some(())
}

/// The value of the `system.data` attribute among the attributes kept in
/// an inode (`area`: from the end of its extra fields); empty if there
/// are none. `None` if the attributes are malformed.
fn system_data(area: &[u8]) -> Option<Vec<u8>> {
    if area.len() < 4 || le32(area, 0) != XATTR_MAGIC {
        return Some(Vec::new());
    }
    let values = &area[4..];
    let mut at = 0;
    while at + 4 <= values.len() && le32(values, at) != 0 {
        let e = values.get(at..at + 16)?;
        let (name_len, index) = (usize::from(e[0]), e[1]);
        let (offset, inum, size) = (usize::from(le16(e, 2)), le32(e, 4), le32(e, 8) as usize);
        let name = values.get(at + 16..at + 16 + name_len)?;
        if index == XATTR_SYSTEM && name == b"data" {
            if inum != 0 {
                return None; // inline data is never kept in an xattr inode
            }
            return values.get(offset..offset.checked_add(size)?).map(<[u8]>::to_vec);
        }
        at += (16 + name_len).next_multiple_of(4);
    }
    Some(Vec::new())
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
        layout_on(alloc::sync::Arc::new(Counted(vec![0xaa; 1 << 20], Default::default())))
    }

    /// A layout of 1 KiB blocks over `dev`.
    fn layout_on(dev: alloc::sync::Arc<dyn rumpglue::BlockDevice>) -> ExtLayout {
        ExtLayout {
            mapped: Mapped {
                volume: Volume::new(dev),
                block_size: 1024,
                journal: Arc::new(JournalMap::new()),
                superblock: None,
            },
            block_size: 1024,
            blocks_count: 1024,
            inodes_per_group: 8,
            inode_size: 128,
            compat: 0,
            incompat: 0,
            ro_compat: 0,
            label: String::new(),
            inode_tables: vec![],
            csum_seed: None,
            journal_note: None,
            dirs: RefCell::new(BTreeMap::new()),
            last_dir: RefCell::new(None),
            indexes: RefCell::new(Vec::new()),
        }
    }

    fn inode(extents: &[(u32, u16, u32)]) -> Inode {
        Inode {
            ino: 12,
            mode: 0x8000,
            size: 8 * 1024,
            uid: 0,
            gid: 0,
            mtime: 0,
            flags: EXTENTS_FL,
            generation: 0,
            block: root(extents),
            inline_tail: Vec::new(),
        }
    }

    /// An image whose reads are counted.
    struct Counted(Vec<u8>, core::sync::atomic::AtomicUsize);
    impl rumpglue::BlockDevice for Counted {
        fn size(&self) -> u64 {
            self.0.len() as u64
        }
        fn read_at(&self, off: u64, buf: &mut [u8]) -> rumpglue::Result<()> {
            self.1.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
            buf.copy_from_slice(&self.0[off as usize..off as usize + buf.len()]);
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

    #[test]
    fn a_block_mapped_file_reads_each_indirect_block_once() {
        // 12 direct blocks (100..112), 256 through the single indirect
        // block 200 (300..556) and 100 through the double indirect block
        // 201 and its first child 202 (600..700): each data block holds
        // its own number.
        let mut img = vec![0u8; 1 << 20];
        let put = |img: &mut Vec<u8>, block: u32, i: usize, v: u32| {
            let at = block as usize * 1024 + i * 4;
            img[at..at + 4].copy_from_slice(&v.to_le_bytes());
        };
        let mut map = [0u8; 60];
        for i in 0..12u32 {
            map[i as usize * 4..i as usize * 4 + 4].copy_from_slice(&(100 + i).to_le_bytes());
        }
        map[48..52].copy_from_slice(&200u32.to_le_bytes());
        map[52..56].copy_from_slice(&201u32.to_le_bytes());
        for i in 0..256 {
            put(&mut img, 200, i, 300 + i as u32);
        }
        put(&mut img, 201, 0, 202);
        for i in 0..100 {
            put(&mut img, 202, i, 600 + i as u32);
        }
        let blocks: Vec<u32> = (100..112).chain(300..556).chain(600..700).collect();
        for &b in &blocks {
            put(&mut img, b, 0, b);
        }
        let dev = alloc::sync::Arc::new(Counted(img, Default::default()));
        let fs = layout_on(dev.clone());
        let mut ino = inode(&[]);
        (ino.flags, ino.block) = (0, map);
        let size = blocks.len() as u64 * 1024;
        let mut buf = vec![0u8; size as usize];
        assert_eq!(fs.read(&ino, size, 0, &mut buf), Ok(size as usize));
        for (n, &b) in blocks.iter().enumerate() {
            assert_eq!(le32(&buf, n * 1024), b, "file block {n}");
        }
        // Three runs of data, three indirect blocks: not one read of an
        // indirect block per data block (368 of them).
        assert_eq!(dev.1.load(core::sync::atomic::Ordering::Relaxed), 3 + 3);
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
