//! The file systems behind the protocol: ext2/3/4 (read-only, through
//! `ext4-view`) and FAT (through `fatfs`), each over one volume (a
//! partition or the whole image) of an image file.

use crate::codepage::CodePage;
use crate::detect::{detect, FsType};
use crate::ext_direct::{self, ExtDirect};
use crate::ext_layout::{self, ExtLayout};
use crate::fat_layout::{self, Bits, DirRef, FatLayout, RawEntry};
use crate::part::partitions;
use crate::proto::{
    escape_name, escape_path, unescape_name, unescape_path, Entry, ErrorKind, FileResult, Info, Kind, Stat, MAX_ENTRIES,
};
use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use fatfs::{Read, Seek, SeekFrom, Write};
use rumpglue::BlockDevice;

/// A failed operation, as the protocol reports it.
pub type FsResult<T> = Result<T, (ErrorKind, String)>;

/// What a server can do with a file system.
pub trait FileSystem {
    /// Type and label.
    fn info(&self) -> Info;
    /// Metadata of `path`, not following a final symlink.
    fn stat(&self, path: &str) -> FsResult<Stat>;
    /// The entries of directory `path` (without `.` and `..`).
    fn read_dir(&self, path: &str) -> FsResult<Vec<Entry>>;
    /// Up to `buf.len()` bytes of file `path` from `offset`, into `buf`
    /// (fewer only at the end of the file); how many.
    fn read_into(&self, path: &str, offset: u64, buf: &mut [u8]) -> FsResult<usize>;
    /// Up to `len` bytes of file `path` from `offset`.
    fn read(&self, path: &str, offset: u64, len: u32) -> FsResult<Vec<u8>> {
        let mut buf = vec![0u8; len as usize];
        let n = self.read_into(path, offset, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }
    /// The starts of several files (`(path, len)`), each read or failed
    /// on its own.
    fn read_many(&self, files: &[(String, u32)]) -> Vec<FileResult> {
        files.iter().map(|(p, len)| self.read(p, 0, *len)).collect()
    }
    /// Target of symlink `path`.
    fn read_link(&self, path: &str) -> FsResult<String>;
    /// Creates (or empties) file `path`.
    fn create(&self, path: &str) -> FsResult<()> {
        Err(read_only(path))
    }
    /// Writes `data` at `offset` of file `path`.
    fn write(&self, path: &str, _offset: u64, _data: &[u8]) -> FsResult<()> {
        Err(read_only(path))
    }
    /// Sets the length of file `path` (cutting, or extending with zeros).
    fn truncate(&self, path: &str, _size: u64) -> FsResult<()> {
        Err(read_only(path))
    }
    /// Creates directory `path`.
    fn mkdir(&self, path: &str) -> FsResult<()> {
        Err(read_only(path))
    }
    /// Removes a file or empty directory.
    fn remove(&self, path: &str) -> FsResult<()> {
        Err(read_only(path))
    }
    /// Moves `from` to `to`.
    fn rename(&self, from: &str, _to: &str) -> FsResult<()> {
        Err(read_only(from))
    }
    /// Leaves the image consistent on disk as it stands, as unmounting
    /// would (the server is idle: no client attached); the next change
    /// marks it in use again. Nothing to do for read-only ones.
    fn sync(&self) -> FsResult<()> {
        Ok(())
    }
}

/// A directory with more entries than one listing may hold: the image
/// is inconsistent (a FAT chain that goes round, an ext directory that
/// claims too much), and listing on would exhaust the server's memory.
fn too_many(path: &str) -> (ErrorKind, String) {
    (ErrorKind::Corrupt, format!("{path}: more than {MAX_ENTRIES} entries"))
}

fn read_only(path: &str) -> (ErrorKind, String) {
    (ErrorKind::ReadOnly, format!("{path}: this file system is read-only in this server"))
}

/// The volume a file system lives on: a rumpglue block device (the whole
/// image, or a partition of it).
#[derive(Clone)]
pub struct Volume {
    dev: Arc<dyn BlockDevice>,
}

/// An I/O error under a file system: the block device's, or a short
/// transfer that `fatfs` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoErr {
    /// The block device failed.
    Block(rumpglue::Error),
    /// Fewer bytes than needed.
    UnexpectedEof,
    /// A write made no progress.
    WriteZero,
}

impl core::fmt::Display for IoErr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            IoErr::Block(rumpglue::Error::ReadOnly) => f.write_str("image opened read-only (use --rw)"),
            IoErr::Block(e) => write!(f, "{e}"),
            IoErr::UnexpectedEof => f.write_str("unexpected end of the volume"),
            IoErr::WriteZero => f.write_str("write made no progress"),
        }
    }
}

impl fatfs::IoError for IoErr {
    fn is_interrupted(&self) -> bool {
        false
    }
    fn new_unexpected_eof_error() -> Self {
        IoErr::UnexpectedEof
    }
    fn new_write_zero_error() -> Self {
        IoErr::WriteZero
    }
}

impl Volume {
    /// The whole of `dev`.
    pub fn new(dev: Arc<dyn BlockDevice>) -> Volume {
        Volume { dev }
    }

    /// Bytes in the volume.
    pub fn len(&self) -> u64 {
        self.dev.size()
    }

    /// True for an empty volume.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads exactly `buf.len()` bytes at `offset` within the volume.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> rumpglue::Result<()> {
        self.dev.read_at(offset, buf)
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> rumpglue::Result<()> {
        self.dev.write_at(offset, buf)
    }

    /// The block device behind the volume.
    pub fn device(&self) -> Arc<dyn BlockDevice> {
        self.dev.clone()
    }
}

/// Finds the volume to serve on `dev`: the whole device if `probe` finds
/// a file system on it, else partition `choice` (1-based, among the
/// partitions found), or the only partition. Returns the volume, its
/// name (`whole disk`, `MBR 1`, ...) and what `probe` found.
pub fn select_volume<T>(
    dev: Arc<dyn BlockDevice>,
    choice: Option<usize>,
    probe: impl Fn(&Volume) -> Result<Option<T>, String>,
) -> Result<(Volume, String, T), String> {
    let whole = Volume::new(dev);
    if choice.is_none() {
        if let Some(found) = probe(&whole)? {
            return Ok((whole, "whole disk".to_string(), found));
        }
    }
    let parts = partitions(whole.len(), &mut |off, buf| whole.read_at(off, buf)).map_err(|e| e.to_string())?;
    let p = match (choice, parts.len()) {
        (_, 0) => return Err("no file system and no partition table found".into()),
        (None, 1) => &parts[0],
        (None, n) => return Err(format!("{n} partitions: choose one with --partition (1 to {n})")),
        (Some(i), n) if i == 0 || i > n => return Err(format!("no partition {i}: the image has {n}")),
        (Some(i), _) => &parts[i - 1],
    };
    let slice = rumpglue::Slice::new(whole.dev.clone(), p.start, p.len).map_err(|e| format!("{}: {e}", p.name))?;
    let v = Volume { dev: Arc::new(slice) };
    let found = probe(&v)?.ok_or_else(|| format!("{}: no file system this server knows", p.name))?;
    Ok((v, p.name.clone(), found))
}

/// The file system type in the first 2 KiB of a volume.
pub fn probe(v: &Volume) -> Result<Option<FsType>, String> {
    let mut head = vec![0u8; 2048.min(v.len() as usize)];
    v.read_at(0, &mut head).map_err(|e| format!("cannot read the image: {e}"))?;
    Ok(detect(&head))
}

/// Opens the file system on `dev` (see [`select_volume`]). FAT short
/// names are decoded with `codepage`; ext names need none.
pub fn open(
    dev: Arc<dyn BlockDevice>,
    choice: Option<usize>,
    codepage: CodePage,
    clock: &'static dyn rumpglue::Clock,
    sandbox: String,
) -> Result<Box<dyn FileSystem>, String> {
    let (volume, partition, fs) = select_volume(dev, choice, probe)?;
    match fs {
        FsType::Ext => Ext::open(volume, partition, sandbox),
        FsType::Fat => {
            Fat::open(volume, partition, codepage, clock, sandbox).map(|f| Box::new(f) as Box<dyn FileSystem>)
        }
    }
}

// ---------------------------------------------------------------- ext

/// The longest path `ext4-view` resolves (4096 bytes, 1000 steps, of
/// which symlinks it meets take some): longer ones, of trees deeper than
/// that, are resolved by `ext_direct`.
const VIEW_MAX_PATH: usize = 4096;
const VIEW_MAX_NAMES: usize = 500;

/// True if `ext4-view` may not resolve `path` (see [`VIEW_MAX_PATH`]).
fn too_long_for_view(path: &[u8]) -> bool {
    path.len() > VIEW_MAX_PATH || path.iter().filter(|&&b| b == b'/').count() > VIEW_MAX_NAMES
}

impl Ext {
    /// True if `ext_direct` should answer for `path`: it is longer than
    /// `ext4-view` resolves, or it crosses a large directory without an
    /// htree index (mke2fs -d builds none), where `ext4-view` would scan
    /// every entry per lookup: with many subdirectories, every request
    /// below them. The answers are the same (the tests compare both
    /// readers with debugfs); only the cost differs.
    fn for_direct(&self, path: &str) -> bool {
        bytes_of(path).is_ok_and(|raw| too_long_for_view(&raw))
            || self.direct.resolve_noting(path, false).is_ok_and(|(_, slow)| slow)
    }
}

/// The image as `ext4-view` reads it: recovered (see [`ext_layout::Mapped`]).
struct ExtReader(ext_layout::Mapped);

impl ext4_view::Ext4Read for ExtReader {
    fn read(&mut self, start: u64, dst: &mut [u8]) -> Result<(), Box<dyn core::error::Error + Send + Sync + 'static>> {
        self.0.read(start, dst).map_err(|e| Box::new(e) as Box<dyn core::error::Error + Send + Sync>)
    }
}

/// An ext2/3/4 file system: directories, metadata and links through
/// `ext4-view`; inode numbers and file data through `ext_layout` (which
/// reads unwritten extents as zeros), and through `ext_direct` whatever
/// `ext4-view` would resolve slowly or not at all.
pub struct Ext {
    fs: ext4_view::Ext4,
    /// The same file system through `ext_layout` alone: inode numbers,
    /// file data, and paths `ext4-view` resolves slowly or not at all.
    direct: ExtDirect,
    info: Info,
}

fn ext_error(e: ext4_view::Ext4Error) -> (ErrorKind, String) {
    use ext4_view::Ext4Error as E;
    let kind = match &e {
        E::NotFound => ErrorKind::NotFound,
        E::NotADirectory => ErrorKind::NotDir,
        E::IsADirectory => ErrorKind::IsDir,
        E::TooManySymlinks => ErrorKind::Loop,
        E::Corrupt(_) => ErrorKind::Corrupt,
        E::Incompatible(_) => ErrorKind::Unsupported,
        E::Io(_) => ErrorKind::Io,
        _ => ErrorKind::Invalid,
    };
    (kind, e.to_string())
}

fn ext_stat(m: &ext4_view::Metadata, id: u32) -> Stat {
    let t = m.file_type();
    let kind = if t.is_regular_file() {
        Kind::File
    } else if t.is_dir() {
        Kind::Dir
    } else if t.is_symlink() {
        Kind::Symlink
    } else {
        Kind::Other
    };
    Stat {
        kind,
        size: m.len(),
        mode: m.mode() as u32 & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
        mtime: m.modified().seconds(),
        id: u64::from(id),
    }
}

impl Ext {
    /// Opens the ext file system on `v`: through `ext4-view` when it
    /// takes the image, else through `ext_layout` alone (`ext_direct`).
    /// `Info::fs` says which reader serves it, and why.
    fn open(v: Volume, partition: String, sandbox: String) -> Result<Box<dyn FileSystem>, String> {
        let size = v.len();
        // ExtLayout checks the superblock first (a block size of at most
        // 64 KiB among others): `ext4-view` would take blocks of up to
        // 2 GiB and allocate one. It also replays the journal.
        let raw = ExtLayout::open(v).map_err(|e| format!("ext4: {e}"))?;
        let note = raw.journal_note.as_ref().map(|n| format!("; journal {n}")).unwrap_or_default();
        let label = raw.label.clone();
        if let Some(why) = ext_direct::needs_direct(&raw) {
            let fs = format!("{} (ExoV6 ext reader, as ext4-view lacks {why}{note})", raw.kind());
            return Ok(Box::new(ExtDirect::new(raw, Info { fs, label, partition, size, sandbox })));
        }
        let fs = match ext4_view::Ext4::load(Box::new(ExtReader(raw.mapped()))) {
            Ok(fs) => fs,
            // Refused (a superblock or group descriptor checksum that does
            // not match, among others): read as debugfs would, by ExoV6's
            // reader, which checks what it reads as it reads it.
            Err(e) => {
                let fs = format!("{} (ExoV6 ext reader, as ext4-view refused it: {e}{note})", raw.kind());
                return Ok(Box::new(ExtDirect::new(raw, Info { fs, label, partition, size, sandbox })));
            }
        };
        let info = Info { fs: format!("{} (ext4-view{note})", raw.kind()), label, partition, size, sandbox };
        let direct = ExtDirect::new(raw, info.clone());
        Ok(Box::new(Ext { fs, direct, info }))
    }

    /// `path` with every symlink resolved, as `ext4-view` resolves it.
    fn canonical(&self, path: &[u8]) -> FsResult<Vec<u8>> {
        Ok(self.fs.canonicalize(path).map_err(ext_error)?.as_ref().to_vec())
    }

    /// The inode number at `path` (bytes); a final symlink is followed
    /// unless `link` (then the link's own inode).
    fn ino(&self, path: &[u8], link: bool) -> FsResult<u32> {
        let trimmed = trim_slashes(path);
        match split_last(trimmed) {
            Some((parent, name)) if link && !name.is_empty() && name != b"." && name != b".." => {
                let dir = self.direct.raw.lookup(&self.canonical(if parent.is_empty() { b"/" } else { parent })?)?;
                self.direct.raw.child(dir, name)
            }
            _ => self.direct.raw.lookup(&self.canonical(path)?),
        }
    }
}

/// The bytes of the escaped path a client sent (see `proto`).
pub(crate) fn bytes_of(path: &str) -> FsResult<Vec<u8>> {
    unescape_path(path)
        .ok_or_else(|| (ErrorKind::NotFound, format!("{path}: no such entry (a name is not escaped right)")))
}

/// `path` without its trailing slashes (`/` stays).
fn trim_slashes(path: &[u8]) -> &[u8] {
    let mut p = path;
    while p.len() > 1 && p.ends_with(b"/") {
        p = &p[..p.len() - 1];
    }
    p
}

/// `(parent, last name)` of a path with a slash in it.
fn split_last(path: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = path.iter().rposition(|&b| b == b'/')?;
    Some((&path[..i], &path[i + 1..]))
}

/// An error of `ext4-view` that ExoV6's reader may not share: a
/// directory block or inode it finds damaged (checksums, fields it
/// checks strictly). The same request is then answered by `ext_direct`,
/// which reads what debugfs reads.
fn view_refused(r: &(ErrorKind, String)) -> bool {
    r.0 == ErrorKind::Corrupt
}

impl FileSystem for Ext {
    fn info(&self) -> Info {
        self.info.clone()
    }
    fn stat(&self, path: &str) -> FsResult<Stat> {
        self.either(path, || self.view_stat(path), || self.direct.stat(path))
    }
    fn read_dir(&self, path: &str) -> FsResult<Vec<Entry>> {
        self.either(path, || self.view_read_dir(path), || self.direct.read_dir(path))
    }
    fn read_into(&self, path: &str, offset: u64, buf: &mut [u8]) -> FsResult<usize> {
        // Files are found and read by `ext_layout` (extents and block maps
        // alike, unwritten extents as zeros): its directory indexes make
        // reading every file of a large directory cheap, and what a file
        // holds is read there in any case.
        let inode = self.direct.file(path)?;
        self.direct.raw.read(&inode, inode.size, offset, buf)
    }
    fn read_link(&self, path: &str) -> FsResult<String> {
        self.either(path, || self.view_read_link(path), || self.direct.read_link(path))
    }
}

impl Ext {
    /// Answers a request on `path` through `ext4-view` (`view`), or
    /// through `ext_direct` (`direct`) where [`Ext::for_direct`] says so
    /// or `ext4-view` refuses the request as corrupt.
    fn either<T>(
        &self,
        path: &str,
        view: impl FnOnce() -> FsResult<T>,
        direct: impl FnOnce() -> FsResult<T>,
    ) -> FsResult<T> {
        if self.for_direct(path) {
            return direct();
        }
        match view() {
            Err(e) if view_refused(&e) => direct(),
            r => r,
        }
    }

    // The `view_` requests: paths `ext4-view` resolves (see `either`).
    fn view_stat(&self, path: &str) -> FsResult<Stat> {
        let raw = bytes_of(path)?;
        let m = self.fs.symlink_metadata(raw.as_slice()).map_err(ext_error)?;
        // Without its inode number the answer is still right, only less
        // telling (a client then cannot see a cycle through this path).
        let id = self.ino(&raw, m.is_symlink()).unwrap_or(0);
        Ok(ext_stat(&m, id))
    }
    fn view_read_dir(&self, path: &str) -> FsResult<Vec<Entry>> {
        // Each entry with its name as the image has it, escaped. An entry
        // whose inode cannot be read is listed as bad (see `Entry::bad`),
        // and the rest of the directory all the same.
        let raw_path = bytes_of(path)?;
        let mut out: Vec<(Vec<u8>, Entry)> = Vec::new();
        for e in self.fs.read_dir(raw_path.as_slice()).map_err(ext_error)? {
            let e = e.map_err(ext_error)?;
            if out.len() >= MAX_ENTRIES {
                return Err(too_many(path));
            }
            let raw = e.file_name().as_ref().to_vec();
            if raw == b"." || raw == b".." {
                continue;
            }
            let entry = match e.metadata() {
                Err(err) => Entry::bad(&raw, ext_error(err).1),
                Ok(m) => Entry { name: escape_name(&raw), stat: ext_stat(&m, 0), problem: None },
            };
            out.push((raw, entry));
        }
        // Every entry's inode number, from the same directory blocks in
        // the same order: a client finds directory cycles by them, so a
        // listing whose entries cannot all be matched is refused.
        let dir = self.direct.raw.inode(self.ino(&raw_path, false)?)?;
        let unmatched = || (ErrorKind::Corrupt, format!("{path}: the directory's entries cannot be matched to inodes"));
        self.direct
            .raw
            .with_entries(&dir, |raw| {
                let mut raw = raw.iter().filter(|(n, _)| n != b"." && n != b"..");
                for (name, e) in out.iter_mut() {
                    match raw.next() {
                        Some((n, ino)) if n == name => {
                            if e.problem.is_none() {
                                e.stat.id = u64::from(*ino)
                            }
                        }
                        _ => return Err(unmatched()),
                    }
                }
                raw.next().map_or(Ok(()), |_| Err(unmatched()))
            })
            .and_then(|r| r)?;
        Ok(out.into_iter().map(|(_, e)| e).collect())
    }
    fn view_read_link(&self, path: &str) -> FsResult<String> {
        let raw = bytes_of(path)?;
        let m = self.fs.symlink_metadata(raw.as_slice()).map_err(ext_error)?;
        if !m.is_symlink() {
            return Err((ErrorKind::Invalid, format!("{path}: not a symbolic link")));
        }
        // Read by `ext_layout` (targets in the inode, inline, in blocks;
        // unwritten extents as zeros), escaped as paths are.
        let inode = self.direct.raw.inode(self.ino(&raw, true)?)?;
        Ok(escape_path(&self.direct.raw.link_bytes(&inode)?))
    }
}

// ---------------------------------------------------------------- FAT

/// The volume as the `Read + Write + Seek` stream `fatfs` wants. `fatfs`
/// reads a cluster (often 4 KiB) at a time and alternates between the FAT
/// and the data, so reads go through a small cache of 64 KiB blocks.
/// Writes go straight to the volume and drop any cached copy.
struct FatIo {
    v: Volume,
    /// FAT entries read as `fat_layout` says (loops in directories cut).
    patches: fat_layout::Patches,
    /// The volume's "in use" (dirty) flag, kept right across syncs.
    dirty: DirtyFlag,
    pos: u64,
    cache: Vec<(u64, Vec<u8>)>,
    next_victim: usize,
}

const CACHE_BLOCK: u64 = 64 << 10;
/// The device's unit of transfer: a write of part of one is a read and
/// a write for the block driver.
const SECTOR: u64 = 512;
const CACHE_BLOCKS: usize = 8;

/// The FAT "in use" flag (bit 0 of the boot sector's status byte):
/// `fatfs` sets it on disk at its first write and clears it only when
/// unmounted, which a server does at its end. [`Fat::sync`] clears it on
/// disk while the server is idle and leaves here where the byte is and its
/// clean value; the next write (which `fatfs`, believing the volume still
/// in use, makes without setting it) sets it again first.
#[derive(Clone, Default)]
struct DirtyFlag(alloc::rc::Rc<core::cell::Cell<Option<(u64, u8)>>>);

impl FatIo {
    fn new(v: Volume, patches: fat_layout::Patches, dirty: DirtyFlag) -> FatIo {
        FatIo { v, patches, dirty, pos: 0, cache: Vec::new(), next_victim: 0 }
    }

    /// Puts the patched FAT bytes into `buf`, just read from `at`.
    fn patch(&self, at: u64, buf: &mut [u8]) {
        for (off, bytes) in self.patches.borrow().iter() {
            for (i, b) in bytes.iter().enumerate() {
                let o = off + i as u64;
                if o >= at && o < at + buf.len() as u64 {
                    buf[(o - at) as usize] = *b;
                }
            }
        }
    }

    /// The cached block that starts at `start`, loading it if needed.
    fn block(&mut self, start: u64) -> Result<&[u8], IoErr> {
        if let Some(i) = self.cache.iter().position(|(s, _)| *s == start) {
            return Ok(&self.cache[i].1);
        }
        let len = CACHE_BLOCK.min(self.v.len() - start) as usize;
        // Reuse the victim's memory: no allocation or clearing per miss.
        let i = if self.cache.len() < CACHE_BLOCKS {
            self.cache.push((u64::MAX, Vec::new()));
            self.cache.len() - 1
        } else {
            let i = self.next_victim;
            self.next_victim = (i + 1) % CACHE_BLOCKS;
            i
        };
        let slot = &mut self.cache[i];
        slot.0 = u64::MAX; // invalid until the read succeeds
        slot.1.resize(len, 0);
        self.v.read_at(start, &mut slot.1).map_err(IoErr::Block)?;
        slot.0 = start;
        Ok(&self.cache[i].1)
    }
}

impl fatfs::IoBase for FatIo {
    type Error = IoErr;
}

impl Read for FatIo {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, IoErr> {
        let at = self.pos;
        let n = self.read_unpatched(buf)?;
        self.patch(at, &mut buf[..n]);
        Ok(n)
    }
}

impl FatIo {
    fn read_unpatched(&mut self, buf: &mut [u8]) -> Result<usize, IoErr> {
        let n = (buf.len() as u64).min(self.v.len().saturating_sub(self.pos)) as usize;
        if n == 0 {
            return Ok(0);
        }
        if n as u64 >= CACHE_BLOCK {
            // Large reads (file data in big clusters) bypass the cache.
            self.v.read_at(self.pos, &mut buf[..n]).map_err(IoErr::Block)?;
            self.pos += n as u64;
            return Ok(n);
        }
        let start = self.pos - self.pos % CACHE_BLOCK;
        let off = (self.pos - start) as usize;
        let pos = self.pos;
        let block = self.block(start)?;
        let n = n.min(block.len() - off);
        buf[..n].copy_from_slice(&block[off..off + n]);
        self.pos = pos + n as u64;
        Ok(n)
    }
}

impl Write for FatIo {
    fn write(&mut self, buf: &[u8]) -> Result<usize, IoErr> {
        if let Some((at, clean)) = self.dirty.0.take() {
            // In use again from this write on (see `DirtyFlag`).
            if let Err(e) = self.v.write_at(at, &[clean | 1]) {
                self.dirty.0.set(Some((at, clean)));
                return Err(IoErr::Block(e));
            }
        }
        let (lo, hi) = (self.pos, self.pos + buf.len() as u64);
        // Part of a sector (a FAT entry, a directory entry): the whole
        // sectors from a cached block that holds them, with the bytes put
        // in, instead of the device reading them first.
        let (first, end) = (lo / SECTOR * SECTOR, hi.div_ceil(SECTOR) * SECTOR);
        let whole = if (first, end) != (lo, hi) {
            self.cache.iter().find(|(s, d)| *s <= first && end <= s.saturating_add(d.len() as u64)).map(|(s, d)| {
                let mut sectors = d[(first - s) as usize..(end - s) as usize].to_vec();
                sectors[(lo - first) as usize..(hi - first) as usize].copy_from_slice(buf);
                sectors
            })
        } else {
            None
        };
        match whole {
            Some(sectors) => self.v.write_at(first, &sectors),
            None => self.v.write_at(lo, buf),
        }
        .map_err(IoErr::Block)?;
        // The cached blocks keep up with it (a FAT's entries are written a
        // few bytes at a time, between reads of the same block).
        for (s, d) in self.cache.iter_mut() {
            let (from, to) = (lo.max(*s), hi.min(s.saturating_add(d.len() as u64)));
            if from < to {
                d[(from - *s) as usize..(to - *s) as usize]
                    .copy_from_slice(&buf[(from - lo) as usize..(to - lo) as usize]);
            }
        }
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), IoErr> {
        Ok(())
    }
}

impl Seek for FatIo {
    fn seek(&mut self, to: SeekFrom) -> Result<u64, IoErr> {
        let new = match to {
            SeekFrom::Start(o) => Some(o),
            SeekFrom::End(d) => self.v.len().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = new.ok_or(IoErr::Block(rumpglue::Error::OutOfRange))?;
        Ok(self.pos)
    }
}

type FatStorage = FatIo;
type FatDir<'a> = fatfs::Dir<'a, FatStorage, UtcTime, CodePage>;
type FatEntry<'a> = fatfs::DirEntry<'a, FatStorage, UtcTime, CodePage>;

/// Contiguous bytes of a file on the volume: (disk offset, file offset,
/// length).
type Run = (u64, u64, u64);

/// A FAT12/16/32 file system: names, metadata and changes through
/// `fatfs`; cluster chains (checked for loops and cross-links) and first
/// clusters through `fat_layout`.
pub struct Fat {
    fs: fatfs::FileSystem<FatStorage, UtcTime, CodePage>,
    /// The "in use" flag, shared with the `FatIo` under `fs`.
    dirty: DirtyFlag,
    /// The same volume, for reading file data in long runs.
    volume: Volume,
    raw: FatLayout,
    /// How short names' bytes are characters.
    codepage: CodePage,
    /// The layout of the file read last (see `read_into`).
    layout: core::cell::RefCell<Option<(String, u64, Vec<Run>)>>,
    info: Info,
}

/// Whether two names are the same but for case, in any script (FAT's
/// names are looked up so).
fn same_but_case(a: &str, b: &str) -> bool {
    a.chars().flat_map(char::to_lowercase).eq(b.chars().flat_map(char::to_lowercase))
}

/// Maps a `fatfs` error to the protocol's.
fn fat_error(e: fatfs::Error<IoErr>) -> (ErrorKind, String) {
    let kind = match &e {
        fatfs::Error::Io(IoErr::Block(rumpglue::Error::ReadOnly)) => ErrorKind::ReadOnly,
        fatfs::Error::Io(_) => ErrorKind::Io,
        fatfs::Error::NotFound => ErrorKind::NotFound,
        fatfs::Error::CorruptedFileSystem | fatfs::Error::UnexpectedEof => ErrorKind::Corrupt,
        fatfs::Error::AlreadyExists => ErrorKind::Exists,
        fatfs::Error::NotEnoughSpace => ErrorKind::NoSpace,
        fatfs::Error::DirectoryIsNotEmpty => ErrorKind::NotEmpty,
        _ => ErrorKind::Invalid,
    };
    (kind, e.to_string())
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Civil date of a day count since 1970-01-01 (inverse of
/// [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Timestamps for FAT changes, in UTC from the host's wall clock (a
/// rumpglue `Clock`).
#[derive(Clone, Copy)]
pub struct UtcTime(&'static dyn rumpglue::Clock);

impl core::fmt::Debug for UtcTime {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("UtcTime")
    }
}

impl fatfs::TimeProvider for UtcTime {
    fn get_current_date(&self) -> fatfs::Date {
        self.get_current_date_time().date
    }
    fn get_current_date_time(&self) -> fatfs::DateTime {
        let secs = self.0.wall().0;
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400).clamp(3652, 50_403));
        let rem = secs.rem_euclid(86_400);
        fatfs::DateTime::new(
            fatfs::Date::new(y as u16, m as u16, d as u16),
            fatfs::Time::new((rem / 3600) as u16, (rem / 60 % 60) as u16, (rem % 60) as u16, 0),
        )
    }
}

fn fat_stat(e: &FatEntry, id: u64) -> Stat {
    let t = e.modified();
    let days = days_from_civil(t.date.year as i64, t.date.month as i64, t.date.day as i64);
    let mtime = days * 86_400 + t.time.hour as i64 * 3600 + t.time.min as i64 * 60 + t.time.sec as i64;
    let dir = e.is_dir();
    Stat {
        kind: if dir { Kind::Dir } else { Kind::File },
        size: if dir { 0 } else { e.len() },
        mode: if dir { 0o755 } else { 0o644 },
        uid: 0,
        gid: 0,
        mtime,
        id,
    }
}

/// The names of an escaped path (see `proto`), as FAT names (text: a
/// name that is not UTF-8 names no FAT file).
fn components(path: &str) -> FsResult<Vec<String>> {
    let raw = bytes_of(path)?;
    raw.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(|c| String::from_utf8(c.to_vec()).map_err(|_| (ErrorKind::NotFound, format!("{path}: no such entry"))))
        .collect()
}

impl Fat {
    fn open(
        v: Volume,
        partition: String,
        codepage: CodePage,
        clock: &'static dyn rumpglue::Clock,
        sandbox: String,
    ) -> Result<Fat, String> {
        let size = v.len();
        let volume = v.clone();
        let options = fatfs::FsOptions::new().time_provider(UtcTime(clock)).oem_cp_converter(codepage);
        let patches = fat_layout::Patches::default();
        let dirty = DirtyFlag::default();
        let fs = fatfs::FileSystem::new(FatIo::new(v, patches.clone(), dirty.clone()), options)
            .map_err(|e| format!("FAT: {e}"))?;
        let kind = match fs.fat_type() {
            fatfs::FatType::Fat12 => "fat12",
            fatfs::FatType::Fat16 => "fat16",
            fatfs::FatType::Fat32 => "fat32",
        };
        let bits = match fs.fat_type() {
            fatfs::FatType::Fat12 => Bits::Fat12,
            fatfs::FatType::Fat16 => Bits::Fat16,
            fatfs::FatType::Fat32 => Bits::Fat32,
        };
        let raw = FatLayout::open(volume.clone(), bits, patches).map_err(|e| format!("FAT: {e}"))?;
        let label = fs.volume_label().trim_end().to_string();
        Ok(Fat {
            fs,
            dirty,
            volume,
            raw,
            codepage,
            layout: Default::default(),
            info: Info { fs: kind.into(), label, partition, size, sandbox },
        })
    }

    /// The name of entry `e` (`name`, as `fatfs` gives it) as Linux and
    /// Windows show it: its long name if it has one; else the short name,
    /// with the name or extension in lower case as the entry's case byte
    /// says, in every script (`fatfs` lowers ASCII letters only, and
    /// showed `GRÜßE.TXT` as `grÜße.txt`).
    fn shown_name(&self, e: &FatEntry<'_>, raw: &RawEntry, name: String) -> String {
        if e.long_file_name_as_ucs2_units().is_some() || raw.case & 0x18 == 0 {
            return name;
        }
        let dot = raw.short.iter().position(|&b| b == b'.').unwrap_or(raw.short.len());
        let mut shown = String::new();
        for (i, &b) in raw.short.iter().enumerate() {
            let c = self.codepage.decode(b);
            let lower = if i < dot { raw.case & 0x08 != 0 } else { raw.case & 0x10 != 0 };
            match lower {
                true => shown.extend(c.to_lowercase()),
                false => shown.push(c),
            }
        }
        shown
    }

    /// Up to `buf.len()` bytes of the file `e` (found at `path`, its
    /// directory entry `raw`) from `offset`.
    fn read_entry(&self, path: &str, e: &FatEntry<'_>, raw: &RawEntry, offset: u64, buf: &mut [u8]) -> FsResult<usize> {
        let (size, runs) = self.runs(path, e, raw)?;
        self.read_runs(size, &runs, offset, buf)
    }

    /// The file's clusters as runs of contiguous on-disk bytes
    /// `(disk offset, file offset, length)`, and its size. Fails if its
    /// chain loops, ends early, leaves the volume or shares a cluster
    /// with another file (see `fat_layout`).
    fn runs(&self, path: &str, e: &FatEntry<'_>, raw: &RawEntry) -> FsResult<(u64, Vec<Run>)> {
        if e.is_dir() {
            return Err((ErrorKind::IsDir, format!("{path} is a directory")));
        }
        let size = e.len();
        if size > 0 && raw.cluster == 0 {
            return Err((ErrorKind::Corrupt, "the file has a size but no clusters".to_string()));
        }
        let mut runs: Vec<Run> = Vec::new();
        let mut pos = 0u64;
        for (disk, len) in self.raw.file_runs(raw.cluster, size)? {
            runs.push((disk, pos, len));
            pos += len;
        }
        Ok((size, runs))
    }

    /// Up to `buf.len()` bytes from `offset` of a file of `size` bytes laid
    /// out in `runs`, each run read in one go straight into `buf`.
    fn read_runs(&self, size: u64, runs: &[Run], offset: u64, buf: &mut [u8]) -> FsResult<usize> {
        if offset >= size {
            return Ok(0);
        }
        let end = size.min(offset.saturating_add(buf.len() as u64));
        for &(disk, at, len) in runs {
            let (from, to) = (at.max(offset), (at + len).min(end));
            if from < to {
                self.read_run((disk + (from - at), from, to - from), offset, buf)?;
            }
        }
        Ok((end - offset) as usize)
    }

    /// Reads one run of contiguous clusters `(disk offset, file offset,
    /// length)` into its place in `buf`, which starts at file offset
    /// `base`.
    fn read_run(&self, (disk, at, len): (u64, u64, u64), base: u64, buf: &mut [u8]) -> FsResult<()> {
        let start = (at - base) as usize;
        self.volume.read_at(disk, &mut buf[start..start + len as usize]).map_err(|e| match e {
            rumpglue::Error::OutOfRange => (ErrorKind::Corrupt, "a cluster lies outside the volume".to_string()),
            e => (ErrorKind::Io, format!("reading file data: {e}")),
        })
    }

    /// The directory at `path` (components) and where it lies, or an
    /// error. Each directory's chain is checked before `fatfs` reads it.
    fn dir(&self, parts: &[String]) -> FsResult<(FatDir<'_>, DirRef)> {
        let mut d = self.fs.root_dir();
        let mut at = DirRef::Root;
        self.raw.check_dir(at)?;
        for (i, c) in parts.iter().enumerate() {
            let (e, raw) = self.find(&d, at, c)?;
            if !e.is_dir() {
                return Err((ErrorKind::NotDir, format!("{} is not a directory", parts[..=i].join("/"))));
            }
            at = raw.dir();
            self.raw.check_dir(at).map_err(|(k, m)| (k, format!("{}: {m}", parts[..=i].join("/"))))?;
            d = e.to_dir();
        }
        Ok((d, at))
    }

    /// The entry `name` of directory `d` (which lies at `at`), with its
    /// raw directory entry.
    fn find<'a>(&'a self, d: &FatDir<'a>, at: DirRef, name: &str) -> FsResult<(FatEntry<'a>, RawEntry)> {
        for (i, e) in d.iter().enumerate() {
            let e = e.map_err(fat_error)?;
            // FAT names match whatever their case (`grüße.txt` finds the
            // short name `GRÜßE.TXT`), not only in ASCII.
            if same_but_case(&e.file_name(), name) {
                let raw = self.raw_entry(at, i, &e)?;
                return Ok((e, raw));
            }
        }
        Err((ErrorKind::NotFound, format!("{name}: no such file or directory")))
    }

    /// The raw entry `fatfs` listed `i`th in directory `at` as `e`: the
    /// same short name and kind, or the directory is refused.
    fn raw_entry(&self, at: DirRef, i: usize, e: &FatEntry<'_>) -> FsResult<RawEntry> {
        self.raw
            .with_entries(at, |raw| {
                raw.get(i).filter(|r| r.short == e.short_file_name_as_bytes() && r.is_dir() == e.is_dir()).cloned()
            })?
            .ok_or_else(|| (ErrorKind::Corrupt, format!("{}: its directory entry cannot be found", e.file_name())))
    }

    /// Writes `fatfs`'s count of free clusters into a FAT32 volume's
    /// FSInfo sector, if it differs (and the sector is one: both
    /// signatures in place).
    fn write_free_count(&self) -> FsResult<()> {
        if self.fs.fat_type() != fatfs::FatType::Fat32 {
            return Ok(());
        }
        let io = |e: rumpglue::Error| (ErrorKind::Io, format!("the FSInfo sector: {e}"));
        let mut bpb = [0u8; 0x32];
        self.volume.read_at(0, &mut bpb).map_err(io)?;
        let sector = u64::from(u16::from_le_bytes([bpb[0x30], bpb[0x31]]));
        let bytes = u64::from(u16::from_le_bytes([bpb[0x0b], bpb[0x0c]]));
        if sector == 0 || sector == 0xffff {
            return Ok(());
        }
        let mut info = [0u8; 512];
        self.volume.read_at(sector * bytes, &mut info).map_err(io)?;
        let word = |at: usize| u32::from_le_bytes([info[at], info[at + 1], info[at + 2], info[at + 3]]);
        if word(0) != 0x4161_5252 || word(484) != 0x6141_7272 {
            return Ok(());
        }
        let free = self.fs.stats().map_err(fat_error)?.free_clusters();
        if word(488) == free {
            return Ok(());
        }
        match self.volume.write_at(sector * bytes + 488, &free.to_le_bytes()) {
            Ok(()) | Err(rumpglue::Error::ReadOnly) => Ok(()),
            Err(e) => Err(io(e)),
        }
    }

    /// The raw entry at `path`, or `None` if there is none (its directory
    /// being there).
    fn exists(&self, path: &str) -> FsResult<Option<RawEntry>> {
        match self.entry(path) {
            Ok(e) => Ok(e.map(|(_, raw)| raw)),
            Err((ErrorKind::NotFound, _)) => {
                let mut parts = components(path)?;
                parts.pop();
                self.dir(&parts)?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether a new entry for `path` fits, when it goes in the fixed root
    /// directory of FAT12/16 (elsewhere a directory grows). `fatfs` takes
    /// all the slots from the first never used one to the end as free
    /// without counting them, writes the long-name slots, and fails on the
    /// short one past the end: the long-name slots stay, orphaned (and a
    /// new directory's cluster is lost). So the slots are counted here
    /// first, as `fatfs` looks for them: a run of deleted ones long
    /// enough, or enough from the first never used one on.
    fn root_has_room(&self, path: &str) -> FsResult<()> {
        let mut parts = components(path)?;
        let Some(name) = parts.pop() else { return Ok(()) };
        if !parts.is_empty() || self.fs.fat_type() == fatfs::FatType::Fat32 {
            return Ok(());
        }
        // Long-name slots of 13 UTF-16 units each, and the short one.
        let wanted = name.encode_utf16().count().div_ceil(13) + 1;
        let io = |e: rumpglue::Error| (ErrorKind::Io, format!("reading the root directory: {e}"));
        let mut bpb = [0u8; 0x18];
        self.volume.read_at(0, &mut bpb).map_err(io)?;
        let le = |at: usize| u64::from(u16::from_le_bytes([bpb[at], bpb[at + 1]]));
        let (bytes, reserved, fats, slots, fat_sectors) =
            (le(0x0b), le(0x0e), u64::from(bpb[0x10]), le(0x11), le(0x16));
        let mut root = vec![0u8; (slots * 32) as usize];
        self.volume.read_at((reserved + fats * fat_sectors) * bytes, &mut root).map_err(io)?;
        let mut run = 0;
        for (i, slot) in root.chunks_exact(32).enumerate() {
            match slot[0] {
                0 if root.len() / 32 - (i - run) >= wanted => return Ok(()),
                0 => break,
                0xe5 => {
                    run += 1;
                    if run == wanted {
                        return Ok(());
                    }
                }
                _ => run = 0,
            }
        }
        Err((ErrorKind::NoSpace, format!("{path}: the root directory is full ({slots} entries)")))
    }

    /// Checks that the cluster chain of the entry at `path` holds (stays
    /// on the volume, ends, does not loop) before `fatfs` frees it: it
    /// frees the clusters first and drops the entry after, so a chain that
    /// breaks halfway would leave the entry naming freed clusters, which
    /// the next file written would share.
    fn chain_holds(&self, path: &str, what: &str) -> FsResult<()> {
        match self.entry(path)? {
            Some((_, raw)) if raw.cluster != 0 => self
                .raw
                .chain(raw.cluster, None)
                .map(|_| ())
                .map_err(|(kind, m)| (kind, format!("{path}: {what}: {m}"))),
            _ => Ok(()),
        }
    }

    /// The `Stat::id` of the entry `raw`.
    fn id(&self, raw: &RawEntry) -> u64 {
        if raw.is_dir() {
            self.raw.dir_id(raw.dir())
        } else {
            u64::from(raw.cluster)
        }
    }

    /// The directory that holds `path`, and the last component.
    fn parent(&self, path: &str) -> FsResult<(FatDir<'_>, String)> {
        let mut parts = components(path)?;
        let last = parts.pop().ok_or((ErrorKind::Invalid, "cannot change /".to_string()))?;
        Ok((self.dir(&parts)?.0, last))
    }

    /// The entry at `path` with its raw directory entry (`None` for `/`).
    fn entry(&self, path: &str) -> FsResult<Option<(FatEntry<'_>, RawEntry)>> {
        let parts = components(path)?;
        match parts.split_last() {
            None => Ok(None),
            Some((last, dirs)) => {
                let (d, at) = self.dir(dirs)?;
                self.find(&d, at, last).map(Some)
            }
        }
    }

    /// Runs the change `f` with nothing remembered from before it, and
    /// forgets what was learnt while it ran: file layouts and what
    /// `fat_layout` read are of the image as it was.
    fn changing<R>(&self, f: impl FnOnce() -> FsResult<R>) -> FsResult<R> {
        self.layout.borrow_mut().take();
        self.raw.forget();
        let r = f();
        self.layout.borrow_mut().take();
        self.raw.forget();
        r
    }
}

impl FileSystem for Fat {
    fn info(&self) -> Info {
        self.info.clone()
    }
    fn sync(&self) -> FsResult<()> {
        // Writes go straight to the volume: only the flag is left, and
        // FAT32's count of free clusters (`fatfs` writes it when unmounted;
        // `fsck.fat` reports it wrong until then).
        self.write_free_count()?;
        let at = if self.fs.fat_type() == fatfs::FatType::Fat32 { 0x41 } else { 0x25 };
        let mut byte = [0u8];
        self.volume.read_at(at, &mut byte).map_err(|e| (ErrorKind::Io, format!("reading the status byte: {e}")))?;
        if byte[0] & 1 == 0 {
            return Ok(()); // clean already (or never written)
        }
        match self.volume.write_at(at, &[byte[0] & !1]) {
            Ok(()) => {
                self.dirty.0.set(Some((at, byte[0] & !1)));
                Ok(())
            }
            Err(rumpglue::Error::ReadOnly) => Ok(()),
            Err(e) => Err((ErrorKind::Io, format!("clearing the in-use flag: {e}"))),
        }
    }
    fn stat(&self, path: &str) -> FsResult<Stat> {
        Ok(match self.entry(path)? {
            Some((e, raw)) => fat_stat(&e, self.id(&raw)),
            None => Stat {
                kind: Kind::Dir,
                size: 0,
                mode: 0o755,
                uid: 0,
                gid: 0,
                mtime: 0,
                id: self.raw.dir_id(DirRef::Root),
            },
        })
    }
    fn read_dir(&self, path: &str) -> FsResult<Vec<Entry>> {
        let (d, at) = self.dir(&components(path)?)?;
        let mut out = Vec::new();
        for (i, e) in d.iter().enumerate() {
            let e = e.map_err(fat_error)?;
            if out.len() >= MAX_ENTRIES {
                return Err(too_many(path));
            }
            let name = e.file_name();
            if name == "." || name == ".." {
                continue;
            }
            // A name no path can hold, or an entry that does not match
            // the directory's bytes, is listed as bad (`Entry::bad`); the
            // rest of the directory all the same.
            if name.is_empty() || name.contains(['/', '\0']) {
                out.push(Entry::bad(name.as_bytes(), "the name holds '/' or NUL, or is empty".into()));
                continue;
            }
            match self.raw_entry(at, i, &e) {
                Ok(raw) => out.push(Entry {
                    stat: fat_stat(&e, self.id(&raw)),
                    name: escape_name(self.shown_name(&e, &raw, name).as_bytes()),
                    problem: None,
                }),
                Err((_, why)) => out.push(Entry::bad(name.as_bytes(), why)),
            }
        }
        if let Some(c) = self.raw.loop_cut(at) {
            let why =
                format!("the directory's cluster chain loops back after cluster {c}: only what comes before is listed");
            out.push(Entry::bad(b"(cluster chain loop)", why));
        }
        Ok(out)
    }
    fn read_into(&self, path: &str, offset: u64, buf: &mut [u8]) -> FsResult<usize> {
        // A file is usually read in several pieces: its layout is kept
        // from one to the next (until anything changes the image).
        if let Some((p, size, runs)) = self.layout.borrow().as_ref() {
            if p == path {
                return self.read_runs(*size, runs, offset, buf);
            }
        }
        let (e, raw) = self.entry(path)?.ok_or((ErrorKind::IsDir, "/ is a directory".to_string()))?;
        let (size, runs) = self.runs(path, &e, &raw)?;
        let n = self.read_runs(size, &runs, offset, buf)?;
        *self.layout.borrow_mut() = Some((path.to_string(), size, runs));
        Ok(n)
    }
    fn read_many(&self, files: &[(String, u32)]) -> Vec<FileResult> {
        // Files of one directory are found in one pass over it.
        let mut out: Vec<Option<FileResult>> = files.iter().map(|_| None).collect();
        let mut by_dir: alloc::collections::BTreeMap<&str, Vec<usize>> = alloc::collections::BTreeMap::new();
        for (i, (p, _)) in files.iter().enumerate() {
            let parent = p.rfind('/').map_or("", |k| &p[..k]);
            by_dir.entry(parent).or_default().push(i);
        }
        for (parent, idx) in by_dir {
            let (dir, at) = match components(parent).and_then(|p| self.dir(&p)) {
                Ok(d) => d,
                Err(e) => {
                    for i in idx {
                        out[i] = Some(Err(e.clone()));
                    }
                    continue;
                }
            };
            // Each file's name, as FAT names are (unescaped).
            let names: Vec<Option<String>> = idx
                .iter()
                .map(|&i| {
                    let last = files[i].0.rsplit('/').next().unwrap_or("");
                    unescape_name(last).and_then(|b| String::from_utf8(b).ok())
                })
                .collect();
            for (k, entry) in dir.iter().enumerate() {
                let Ok(entry) = entry else { break };
                let fname = entry.file_name();
                for (&i, name) in idx.iter().zip(&names) {
                    if out[i].is_none() && name.as_deref().is_some_and(|n| same_but_case(&fname, n)) {
                        let mut buf = vec![0u8; files[i].1 as usize];
                        out[i] = Some(
                            self.raw_entry(at, k, &entry)
                                .and_then(|raw| self.read_entry(&files[i].0, &entry, &raw, 0, &mut buf))
                                .map(|n| {
                                    buf.truncate(n);
                                    buf
                                }),
                        );
                    }
                }
            }
        }
        // What was not found (or not reached), the ordinary way: it says why.
        out.into_iter().enumerate().map(|(i, r)| r.unwrap_or_else(|| self.read(&files[i].0, 0, files[i].1))).collect()
    }
    fn read_link(&self, path: &str) -> FsResult<String> {
        Err((ErrorKind::Invalid, format!("{path}: FAT has no symbolic links")))
    }
    fn create(&self, path: &str) -> FsResult<()> {
        self.changing(|| {
            if self.exists(path)?.is_none() {
                self.root_has_room(path)?;
            }
            let (dir, name) = self.parent(path)?;
            let mut f = dir.create_file(&name).map_err(fat_error)?;
            f.truncate().map_err(fat_error)?;
            fatfs::Write::flush(&mut f).map_err(fat_error)
        })
    }
    fn write(&self, path: &str, offset: u64, data: &[u8]) -> FsResult<()> {
        self.changing(|| {
            let (e, _) = self.entry(path)?.ok_or((ErrorKind::IsDir, "/ is a directory".to_string()))?;
            if e.is_dir() {
                return Err((ErrorKind::IsDir, format!("{path} is a directory")));
            }
            let mut f = e.to_file();
            fatfs::Seek::seek(&mut f, fatfs::SeekFrom::Start(offset)).map_err(fat_error)?;
            fatfs::Write::write_all(&mut f, data).map_err(fat_error)?;
            fatfs::Write::flush(&mut f).map_err(fat_error)
        })
    }
    fn truncate(&self, path: &str, size: u64) -> FsResult<()> {
        self.changing(|| {
            let (e, _) = self.entry(path)?.ok_or((ErrorKind::IsDir, "/ is a directory".to_string()))?;
            if e.is_dir() {
                return Err((ErrorKind::IsDir, format!("{path} is a directory")));
            }
            if size > u32::MAX as u64 {
                return Err((ErrorKind::Invalid, format!("{path}: FAT files end at 4 GiB")));
            }
            let len = e.len();
            let mut f = e.to_file();
            if size <= len {
                fatfs::Seek::seek(&mut f, fatfs::SeekFrom::Start(size)).map_err(fat_error)?;
                f.truncate().map_err(fat_error)?;
            } else {
                fatfs::Seek::seek(&mut f, fatfs::SeekFrom::Start(len)).map_err(fat_error)?;
                let zeros = [0u8; 4096];
                let mut left = size - len;
                while left > 0 {
                    let n = left.min(zeros.len() as u64) as usize;
                    fatfs::Write::write_all(&mut f, &zeros[..n]).map_err(fat_error)?;
                    left -= n as u64;
                }
            }
            fatfs::Write::flush(&mut f).map_err(fat_error)
        })
    }
    fn mkdir(&self, path: &str) -> FsResult<()> {
        self.changing(|| {
            // (`fatfs` hands back a directory that is there already.)
            if self.exists(path)?.is_some() || components(path)?.is_empty() {
                return Err((ErrorKind::Exists, format!("{path}: exists already")));
            }
            self.root_has_room(path)?;
            let (dir, name) = self.parent(path)?;
            dir.create_dir(&name).map(|_| ()).map_err(fat_error)
        })
    }
    fn remove(&self, path: &str) -> FsResult<()> {
        self.changing(|| {
            self.chain_holds(path, "not removed")?;
            let (dir, name) = self.parent(path)?;
            dir.remove(&name).map_err(fat_error)
        })
    }
    /// As POSIX's `rename`: a file replaces a file, a directory an empty
    /// directory; a directory does not move into itself.
    fn rename(&self, from: &str, to: &str) -> FsResult<()> {
        self.changing(|| {
            let (_, src) = self.entry(from)?.ok_or((ErrorKind::Invalid, format!("{from}: / cannot move")))?;
            let dst = self.exists(to)?;
            if dst.as_ref().is_some_and(|d| self.id(d) == self.id(&src)) {
                return Ok(()); // the same entry: nothing to do
            }
            if src.is_dir() {
                // Each directory on the way to `to` must not be `from`.
                let parts = components(to)?;
                for n in 0..parts.len() {
                    let at = alloc::format!("/{}", parts[..n].join("/"));
                    if self.stat(&at).is_ok_and(|st| st.id == self.id(&src)) {
                        return Err((
                            ErrorKind::Invalid,
                            format!("{from}: cannot move a directory into itself ({to})"),
                        ));
                    }
                }
            }
            if dst.is_none() {
                self.root_has_room(to)?;
            }
            if let Some(d) = dst {
                match (src.is_dir(), d.is_dir()) {
                    (false, true) => return Err((ErrorKind::IsDir, format!("{to}: is a directory"))),
                    (true, false) => return Err((ErrorKind::NotDir, format!("{to}: not a directory"))),
                    _ => {}
                }
                self.chain_holds(to, "not replaced")?;
                let (dir, name) = self.parent(to)?;
                dir.remove(&name).map_err(fat_error)?;
            }
            let (src_dir, src_name) = self.parent(from)?;
            let (dst_dir, dst_name) = self.parent(to)?;
            src_dir.rename(&src_name, &dst_dir, &dst_name).map_err(fat_error)
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::days_from_civil(1970, 1, 1), 0);
        assert_eq!(super::days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(super::days_from_civil(1980, 1, 1), 3652);
        for days in [0, 3652, 11_017, 20_000, -1, 50_000] {
            let (y, m, d) = super::civil_from_days(days);
            assert_eq!(super::days_from_civil(y, m, d), days);
        }
    }
}
