//! FAT cluster chains and directory entries read directly, for what
//! `fatfs` neither checks nor tells: chains that loop, clusters that two
//! files share (cross-linked chains), and the first cluster of a
//! directory (its `Stat::id`, so clients can see directory cycles).
//!
//! `fatfs` follows a chain wherever it leads: a file whose chain loops
//! was read as the same clusters over and over until its size was
//! reached, and a directory whose chain loops was listed forever. Here a
//! chain is walked with Brent's cycle detection, bounded by the number of
//! clusters, and a file's clusters are checked for repeats and against a
//! census of every chain in the volume (taken once, at the first file
//! read), as `fsck.fat` and mtools do.

use crate::backend::{FsResult, Volume};
use crate::bytes::{le16, le32};
use crate::proto::ErrorKind;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

/// The first cluster number that holds data.
const FIRST_CLUSTER: u32 = 2;
/// Bytes of a directory entry.
const ENTRY: usize = 32;
/// Attribute bits `fatfs` keeps, the long-name marker, volume label and
/// directory.
const ATTR_KNOWN: u8 = 0x3f;
const ATTR_LFN: u8 = 0x0f;
const ATTR_VOLUME: u8 = 0x08;
const ATTR_DIR: u8 = 0x10;
/// Bytes of the FAT read at a time.
const FAT_WINDOW: u64 = 64 << 10;
/// Directories whose chains were found sound, remembered at most.
const CHECKED_DIRS: usize = 1 << 14;

fn corrupt(msg: String) -> (ErrorKind, String) {
    (ErrorKind::Corrupt, msg)
}

/// FAT12, FAT16 or FAT32 (as `fatfs` decided from the cluster count).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Bits {
    /// 12-bit entries.
    Fat12,
    /// 16-bit entries.
    Fat16,
    /// 28 bits of 32.
    Fat32,
}

/// A directory: the fixed root of FAT12/16, or a cluster chain.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum DirRef {
    /// The root directory (fixed region, or FAT32's root cluster).
    Root,
    /// A subdirectory's first cluster.
    Cluster(u32),
}

/// A short-name directory entry, as `fatfs` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEntry {
    /// The short name as `fatfs` shows it (`NAME.EXT`, OEM bytes).
    pub short: Vec<u8>,
    /// Attribute bits.
    pub attrs: u8,
    /// First cluster (0: none).
    pub cluster: u32,
    /// Size in bytes (files).
    pub size: u32,
    /// The case byte (offset 12): 0x08, the name shows in lower case;
    /// 0x10, the extension (as Windows and Linux write short names).
    pub case: u8,
}

impl RawEntry {
    /// True for a directory.
    pub fn is_dir(&self) -> bool {
        self.attrs & ATTR_DIR != 0
    }
    /// The directory it names (cluster 0 is the root, as `fatfs` reads
    /// it).
    pub fn dir(&self) -> DirRef {
        if self.cluster == 0 {
            DirRef::Root
        } else {
            DirRef::Cluster(self.cluster)
        }
    }
}

/// Runs of consecutive clusters: (first cluster, how many).
pub type ClusterRuns = Vec<(u32, u32)>;

/// Which clusters the volume's chains reach: a bit per cluster, and the
/// clusters reached more than once.
struct Census {
    seen: Vec<u64>,
    shared: Vec<u64>,
}

impl Census {
    fn mark(&mut self, runs: &ClusterRuns) {
        for &(start, n) in runs {
            for c in start..start + n {
                let (w, bit) = (c as usize / 64, 1u64 << (c % 64));
                if self.seen[w] & bit != 0 {
                    self.shared[w] |= bit;
                }
                self.seen[w] |= bit;
            }
        }
    }
    fn is_shared(&self, c: u32) -> bool {
        self.shared[c as usize / 64] & (1u64 << (c % 64)) != 0
    }
}

/// The volume's FAT geometry, and what was learnt from it.
pub struct FatLayout {
    volume: Volume,
    bits: Bits,
    /// Byte offset and length of the FAT `fatfs` reads (the active one).
    fat_offset: u64,
    fat_len: u64,
    /// Byte offset of cluster 2, and bytes per cluster.
    data_offset: u64,
    cluster_size: u64,
    /// Clusters 2 .. 2 + `clusters` exist (those inside the volume).
    clusters: u32,
    /// FAT12/16: the fixed root directory's byte offset and length;
    /// FAT32: the root directory's first cluster.
    root: Result<(u64, u64), u32>,
    /// The FAT window read last: (offset within the FAT, bytes).
    window: RefCell<(u64, Vec<u8>)>,
    /// Directories whose chains were walked and found sound.
    checked: RefCell<BTreeSet<DirRef>>,
    /// The entries of the directory read last.
    last_dir: RefCell<Option<(DirRef, Vec<RawEntry>)>>,
    census: RefCell<Option<Census>>,
    /// Directories whose chain loops, each with the cluster after which
    /// it is cut (see [`FatLayout::check_dir`]).
    cut: RefCell<BTreeMap<u32, u32>>,
    /// The FAT entries of those clusters as `fatfs` must read them (an
    /// end mark): `(byte offset on the volume, bytes)`.
    patches: Patches,
}

/// FAT bytes `fatfs` reads in place of the image's: `(byte offset on the
/// volume, bytes)`.
pub type Patches = Rc<RefCell<Vec<(u64, Vec<u8>)>>>;

impl FatLayout {
    /// Reads the boot sector of the FAT volume `fatfs` opened as `bits`.
    pub fn open(volume: Volume, bits: Bits, patches: Patches) -> Result<FatLayout, String> {
        let mut b = [0u8; 512];
        volume.read_at(0, &mut b).map_err(|e| format!("boot sector: {e}"))?;
        let bytes_per_sector = u64::from(le16(&b, 0x0b));
        let per_cluster = u64::from(b[0x0d]);
        let reserved = u64::from(le16(&b, 0x0e));
        let fats = u64::from(b[0x10]);
        let root_entries = u64::from(le16(&b, 0x11));
        let (fat16_size, fat32_size) = (u64::from(le16(&b, 0x16)), u64::from(le32(&b, 0x24)));
        let fat_sectors = if fat16_size == 0 { fat32_size } else { fat16_size };
        let total = match le16(&b, 0x13) {
            0 => u64::from(le32(&b, 0x20)),
            n => u64::from(n),
        };
        if bytes_per_sector == 0 || per_cluster == 0 || fats == 0 || fat_sectors == 0 {
            return Err("bad boot sector".into());
        }
        // As fatfs: mirrored FATs are read from the first, else from the
        // active one (FAT32 extended flags).
        let flags = le16(&b, 0x28);
        let active = if fat16_size == 0 && flags & 0x80 != 0 { u64::from(flags & 0x0f) } else { 0 };
        let root_sectors = (root_entries * ENTRY as u64).div_ceil(bytes_per_sector);
        let root_sector = reserved + fats * fat_sectors;
        let first_data = root_sector + root_sectors;
        let cluster_size = bytes_per_sector * per_cluster;
        let data_offset = first_data * bytes_per_sector;
        let fat_len = fat_sectors * bytes_per_sector;
        let entry_bits = match bits {
            Bits::Fat12 => 12,
            Bits::Fat16 => 16,
            Bits::Fat32 => 32,
        };
        // Clusters that exist: on the volume, in the FAT and in the boot
        // sector's count.
        let clusters = (total.saturating_sub(first_data) / per_cluster)
            .min(volume.len().saturating_sub(data_offset) / cluster_size)
            .min((fat_len * 8 / entry_bits).saturating_sub(u64::from(FIRST_CLUSTER)))
            .min(0x0fff_fff5) as u32;
        let root = if bits == Bits::Fat32 {
            Err(le32(&b, 0x2c))
        } else {
            Ok((root_sector * bytes_per_sector, root_sectors * bytes_per_sector))
        };
        Ok(FatLayout {
            volume,
            bits,
            fat_offset: (reserved + active * fat_sectors) * bytes_per_sector,
            fat_len,
            data_offset,
            cluster_size,
            clusters,
            root,
            window: RefCell::new((u64::MAX, Vec::new())),
            checked: RefCell::new(BTreeSet::new()),
            last_dir: RefCell::new(None),
            census: RefCell::new(None),
            cut: RefCell::new(BTreeMap::new()),
            patches,
        })
    }

    /// Forgets what was learnt: the image changed.
    pub fn forget(&self) {
        *self.window.borrow_mut() = (u64::MAX, Vec::new());
        self.checked.borrow_mut().clear();
        self.last_dir.borrow_mut().take();
        self.census.borrow_mut().take();
    }

    /// The identity of directory `d` (`Stat::id`): its first cluster;
    /// for the root of FAT12/16, which has none, 2^32 (no cluster's
    /// number).
    pub fn dir_id(&self, d: DirRef) -> u64 {
        match (d, self.root) {
            (DirRef::Cluster(c), _) => u64::from(c),
            (DirRef::Root, Err(c)) => u64::from(c),
            (DirRef::Root, Ok(_)) => 1 << 32,
        }
    }

    /// Byte offset of cluster `c` on the volume.
    pub fn offset(&self, c: u32) -> u64 {
        self.data_offset + u64::from(c - FIRST_CLUSTER) * self.cluster_size
    }

    /// Bytes per cluster.
    pub fn cluster_size(&self) -> u64 {
        self.cluster_size
    }

    fn valid(&self, c: u32) -> bool {
        c >= FIRST_CLUSTER && c - FIRST_CLUSTER < self.clusters
    }

    /// The FAT entry of cluster `c`: the next cluster, or `None` at the
    /// chain's end (end mark, free or bad, as `fatfs` ends it).
    fn next(&self, c: u32) -> FsResult<Option<u32>> {
        if self.cut.borrow().values().any(|&end| end == c) {
            return Ok(None);
        }
        let (at, width) = match self.bits {
            Bits::Fat12 => (u64::from(c) + u64::from(c / 2), 2),
            Bits::Fat16 => (u64::from(c) * 2, 2),
            Bits::Fat32 => (u64::from(c) * 4, 4),
        };
        if at + width > self.fat_len {
            return Err(corrupt(format!("cluster {c} has no FAT entry")));
        }
        let mut w = self.window.borrow_mut();
        if at < w.0 || at + width > w.0 + w.1.len() as u64 {
            let start = at - at % FAT_WINDOW;
            let len = FAT_WINDOW.min(self.fat_len - start) as usize;
            w.0 = u64::MAX;
            w.1.resize(len, 0);
            self.volume
                .read_at(self.fat_offset + start, &mut w.1)
                .map_err(|e| (ErrorKind::Io, format!("reading the FAT: {e}")))?;
            w.0 = start;
            if at + width > start + len as u64 {
                // An entry across the window's end (FAT12): read it alone.
                let mut e = [0u8; 2];
                w.0 = u64::MAX;
                self.volume
                    .read_at(self.fat_offset + at, &mut e)
                    .map_err(|e| (ErrorKind::Io, format!("reading the FAT: {e}")))?;
                return Ok(self.decode(c, u32::from(u16::from_le_bytes(e))));
            }
        }
        let b = &w.1[(at - w.0) as usize..];
        let raw = if width == 4 { le32(b, 0) } else { u32::from(le16(b, 0)) };
        Ok(self.decode(c, raw))
    }

    fn decode(&self, c: u32, raw: u32) -> Option<u32> {
        let (v, bad) = match self.bits {
            Bits::Fat12 => (if c & 1 == 0 { raw & 0x0fff } else { raw >> 4 }, 0xff7),
            Bits::Fat16 => (raw & 0xffff, 0xfff7),
            Bits::Fat32 => (raw & 0x0fff_ffff, 0x0fff_fff7),
        };
        (v != 0 && v < bad).then_some(v)
    }

    /// The chain from `first`: its clusters as runs, at most `limit`
    /// clusters (`None`: to its end). Errors on a cluster outside the
    /// volume and on a loop (a cluster met twice), so the caller never
    /// reads the same cluster twice for one file.
    pub fn chain(&self, first: u32, limit: Option<u64>) -> FsResult<ClusterRuns> {
        let looped = || corrupt(format!("the cluster chain from cluster {first} loops (a cluster is reached twice)"));
        let mut runs: ClusterRuns = Vec::new();
        let mut c = first;
        let mut steps = 0u64;
        // Brent: the tortoise waits at powers of two for the hare.
        let (mut tortoise, mut power, mut lam) = (first, 1u64, 0u64);
        loop {
            if !self.valid(c) {
                return Err(corrupt(format!("the cluster chain from cluster {first} leaves the volume (cluster {c})")));
            }
            match runs.last_mut() {
                Some((s, n)) if *s + *n == c => *n += 1,
                _ => runs.push((c, 1)),
            }
            steps += 1;
            if limit.is_some_and(|l| steps >= l) {
                break;
            }
            // A chain longer than the volume has clusters must repeat one.
            if steps > u64::from(self.clusters) {
                return Err(looped());
            }
            let Some(n) = self.next(c)? else { break };
            if n == tortoise {
                return Err(looped());
            }
            lam += 1;
            if lam == power {
                tortoise = n;
                power *= 2;
                lam = 0;
            }
            c = n;
        }
        // A repeat the walk stopped before noticing.
        let mut sorted = runs.clone();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| w[0].0 + w[0].1 > w[1].0) {
            return Err(looped());
        }
        Ok(runs)
    }

    /// Checks that directory `d`'s chain ends without looping (before
    /// `fatfs` reads it, which would follow a loop forever). A directory
    /// whose chain loops back is cut where it loops, on a read-only
    /// volume: `fatfs` reads an end mark there (see [`Patches`]), so the
    /// entries before the loop are listed, as mtools lists them, and
    /// [`FatLayout::loop_cut`] tells where.
    pub fn check_dir(&self, d: DirRef) -> FsResult<()> {
        if self.checked.borrow().contains(&d) {
            return Ok(());
        }
        match (d, self.root) {
            (DirRef::Root, Ok(_)) => {}
            (DirRef::Root, Err(c)) | (DirRef::Cluster(c), _) => {
                if let Err(e) = self.chain(c, None) {
                    let closing = self.loop_closing(c)?;
                    match closing {
                        Some(end) if !self.volume.device().writable() => self.cut_after(c, end)?,
                        _ => return Err(e),
                    }
                }
            }
        }
        let mut checked = self.checked.borrow_mut();
        if checked.len() >= CHECKED_DIRS {
            checked.clear();
        }
        checked.insert(d);
        Ok(())
    }

    /// Where directory `d`'s chain was cut because it loops: the last
    /// cluster read.
    pub fn loop_cut(&self, d: DirRef) -> Option<u32> {
        let first = match (d, self.root) {
            (DirRef::Root, Ok(_)) => return None,
            (DirRef::Root, Err(c)) | (DirRef::Cluster(c), _) => c,
        };
        self.cut.borrow().get(&first).copied()
    }

    /// The cluster of the chain from `first` whose FAT entry leads back
    /// into the chain, if it loops (`None` if it ends or leaves the
    /// volume).
    fn loop_closing(&self, first: u32) -> FsResult<Option<u32>> {
        let mut seen = BTreeSet::new();
        let mut c = first;
        while self.valid(c) && seen.insert(c) {
            match self.next(c)? {
                Some(n) if seen.contains(&n) => return Ok(Some(c)),
                Some(n) => c = n,
                None => return Ok(None),
            }
        }
        Ok(None)
    }

    /// Ends the chain from `first` after cluster `end`, for `fatfs`.
    fn cut_after(&self, first: u32, end: u32) -> FsResult<()> {
        let (at, width) = match self.bits {
            Bits::Fat12 => (u64::from(end) + u64::from(end / 2), 2),
            Bits::Fat16 => (u64::from(end) * 2, 2),
            Bits::Fat32 => (u64::from(end) * 4, 4),
        };
        let mut b = vec![0u8; width];
        self.volume
            .read_at(self.fat_offset + at, &mut b)
            .map_err(|e| (ErrorKind::Io, format!("reading the FAT: {e}")))?;
        match self.bits {
            Bits::Fat12 => {
                let v = u16::from_le_bytes([b[0], b[1]]);
                let v = if end & 1 == 0 { (v & 0xf000) | 0x0fff } else { (v & 0x000f) | 0xfff0 };
                b.copy_from_slice(&v.to_le_bytes());
            }
            Bits::Fat16 => b.copy_from_slice(&0xffffu16.to_le_bytes()),
            Bits::Fat32 => {
                let v = (le32(&b, 0) & 0xf000_0000) | 0x0fff_ffff;
                b.copy_from_slice(&v.to_le_bytes());
            }
        }
        self.patches.borrow_mut().push((self.fat_offset + at, b));
        self.cut.borrow_mut().insert(first, end);
        Ok(())
    }

    /// Calls `f` with the entries of directory `d` as `fatfs` lists them
    /// (`.` and `..` included; long-name parts, deleted entries and the
    /// volume label left out), in order.
    pub fn with_entries<R>(&self, d: DirRef, f: impl FnOnce(&[RawEntry]) -> R) -> FsResult<R> {
        if let Some((at, e)) = self.last_dir.borrow().as_ref() {
            if *at == d {
                return Ok(f(e));
            }
        }
        // Where the directory's bytes are: (offset, length) pieces.
        let pieces: Vec<(u64, u64)> = match (d, self.root) {
            (DirRef::Root, Ok(fixed)) => vec![fixed],
            (DirRef::Root, Err(c)) | (DirRef::Cluster(c), _) => self
                .chain(c, None)?
                .into_iter()
                .map(|(s, n)| (self.offset(s), u64::from(n) * self.cluster_size))
                .collect(),
        };
        let mut out = Vec::new();
        let mut buf = vec![0u8; self.cluster_size.min(FAT_WINDOW) as usize];
        'pieces: for (offset, len) in pieces {
            let mut done = 0;
            while done < len {
                let n = (buf.len() as u64).min(len - done) as usize;
                self.volume
                    .read_at(offset + done, &mut buf[..n])
                    .map_err(|e| corrupt(format!("reading a directory: {e}")))?;
                done += n as u64;
                for e in buf[..n].chunks_exact(ENTRY) {
                    let attrs = e[11] & ATTR_KNOWN;
                    if e[0] == 0 {
                        break 'pieces;
                    }
                    if e[0] == 0xe5 || attrs & ATTR_LFN == ATTR_LFN || attrs & ATTR_VOLUME != 0 {
                        continue;
                    }
                    let hi = if self.bits == Bits::Fat32 { u32::from(le16(e, 20)) } else { 0 };
                    out.push(RawEntry {
                        short: short_name(e[..11].try_into().expect("11 bytes")),
                        attrs,
                        cluster: hi << 16 | u32::from(le16(e, 26)),
                        size: le32(e, 28),
                        case: e[12],
                    });
                }
            }
        }
        let r = f(&out);
        *self.last_dir.borrow_mut() = Some((d, out));
        Ok(r)
    }

    /// The clusters a file of `size` bytes from cluster `first` uses, as
    /// byte runs `(disk offset, length)`; an error if its chain loops,
    /// leaves the volume, ends early, or shares a cluster with another
    /// file or directory of the volume.
    pub fn file_runs(&self, first: u32, size: u64) -> FsResult<Vec<(u64, u64)>> {
        if size == 0 {
            return Ok(Vec::new());
        }
        let needed = size.div_ceil(self.cluster_size);
        let runs = self.chain(first, Some(needed))?;
        let got: u64 = runs.iter().map(|r| u64::from(r.1)).sum();
        if got < needed {
            return Err(corrupt("the cluster chain ends before the file does".into()));
        }
        self.take_census();
        if let Some(census) = self.census.borrow().as_ref() {
            if let Some(c) = runs.iter().flat_map(|&(s, n)| s..s + n).find(|&c| census.is_shared(c)) {
                return Err(corrupt(format!(
                    "cluster {c} also belongs to another file or directory (cross-linked cluster chains)"
                )));
            }
        }
        Ok(runs.into_iter().map(|(s, n)| (self.offset(s), u64::from(n) * self.cluster_size)).collect())
    }

    /// Walks every directory and file chain of the volume once, noting
    /// which clusters more than one of them reaches. Chains that loop or
    /// leave the volume are left out (reading them fails anyway).
    fn take_census(&self) {
        if self.census.borrow().is_some() {
            return;
        }
        let words = (self.clusters as usize + FIRST_CLUSTER as usize).div_ceil(64);
        let mut census = Census { seen: vec![0; words], shared: vec![0; words] };
        let mut todo = vec![DirRef::Root];
        let mut visited = BTreeSet::new();
        while let Some(d) = todo.pop() {
            if !visited.insert(d) {
                continue;
            }
            let own = match (d, self.root) {
                (DirRef::Root, Ok(_)) => Ok(Vec::new()),
                (DirRef::Root, Err(c)) | (DirRef::Cluster(c), _) => self.chain(c, None),
            };
            let Ok(own) = own else { continue };
            census.mark(&own);
            let Ok(entries) = self.with_entries(d, |e| e.to_vec()) else { continue };
            for e in entries {
                if e.short == b"." || e.short == b".." || e.cluster == 0 {
                    continue;
                }
                if e.is_dir() {
                    todo.push(e.dir());
                } else if let Ok(runs) = self.chain(e.cluster, Some(u64::from(e.size).div_ceil(self.cluster_size))) {
                    if e.size > 0 {
                        census.mark(&runs);
                    }
                }
            }
        }
        *self.census.borrow_mut() = Some(census);
    }
}

/// A short name as `fatfs` shows it: `NAME.EXT` without padding, 0x05
/// standing for a leading 0xE5.
fn short_name(raw: [u8; 11]) -> Vec<u8> {
    let trim = |s: &[u8]| s.iter().rposition(|&b| b != b' ').map_or(0, |p| p + 1);
    let mut n = raw[..trim(&raw[..8])].to_vec();
    let ext = &raw[8..8 + trim(&raw[8..])];
    if !ext.is_empty() {
        n.push(b'.');
        n.extend_from_slice(ext);
    }
    if n.first() == Some(&0x05) {
        n[0] = 0xe5;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::short_name;

    #[test]
    fn short_names_as_fatfs_shows_them() {
        assert_eq!(short_name(*b"README  TXT"), b"README.TXT");
        assert_eq!(short_name(*b"NOEXT      "), b"NOEXT");
        assert_eq!(short_name(*b".          "), b".");
        assert_eq!(short_name(*b"..         "), b"..");
        assert_eq!(short_name(*b"\x05BC     D  "), b"\xe5BC.D");
    }
}
