//! The ext images `ext4-view` refuses, served by `ext_layout` alone.
//!
//! `ext4-view` 1.0 refuses file systems with features that change how
//! names, inodes or data are laid out but that a read-only extractor can
//! read all the same, as debugfs does: old ext2 without file types in
//! directory entries, 128-byte inodes on a file system with metadata
//! checksums, inline data, meta block groups, large xattr inodes,
//! casefolded directories (names are stored as created; lookups here are
//! by exact name), huge directories, multi-mount protection (nothing is
//! written, so nothing to protect). This module resolves paths (symlinks
//! followed as the kernel follows them, at most [`MAX_LINKS`]) and serves
//! the same operations as the `ext4-view` path, with the same errors.

use crate::backend::{bytes_of, FileSystem, FsResult};
use crate::ext_layout::{self, ExtLayout, Inode, ROOT};
use crate::proto::{escape_name, escape_path, Entry, ErrorKind, Info, Kind, Stat, MAX_ENTRIES};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::RefCell;

/// Most symlinks one path may pass through (Linux's `MAXSYMLINKS`).
const MAX_LINKS: u32 = 40;

/// Why `ext4-view` does not serve an image with these features, or
/// `None` if it does.
pub fn needs_direct(raw: &ExtLayout) -> Option<String> {
    let mut why = Vec::new();
    let inc = raw.incompat;
    if inc & ext_layout::INCOMPAT_FILETYPE == 0 {
        why.push("no file types in directories");
    }
    for (bit, name) in [
        (ext_layout::INCOMPAT_META_BG, "meta_bg"),
        (ext_layout::INCOMPAT_MMP, "mmp"),
        (ext_layout::INCOMPAT_EA_INODE, "ea_inode"),
        (ext_layout::INCOMPAT_DIRDATA, "dirdata"),
        (ext_layout::INCOMPAT_LARGEDIR, "large_dir"),
        (ext_layout::INCOMPAT_INLINE_DATA, "inline_data"),
        (ext_layout::INCOMPAT_CASEFOLD, "casefold"),
    ] {
        if inc & bit != 0 {
            why.push(name);
        }
    }
    if raw.has_metadata_csum() && raw.inode_size() < 256 {
        why.push("small inodes with checksums");
    }
    (!why.is_empty()).then(|| why.join(", "))
}

/// An ext file system served by `ext_layout` alone.
pub struct ExtDirect {
    pub(crate) raw: ExtLayout,
    info: Info,
    /// The file read last: its path and inode (reads come in pieces).
    open: RefCell<Option<(String, Inode)>>,
}

fn kind(i: &Inode) -> Kind {
    if i.is_file() {
        Kind::File
    } else if i.is_dir() {
        Kind::Dir
    } else if i.is_symlink() {
        Kind::Symlink
    } else {
        Kind::Other
    }
}

fn stat(i: &Inode) -> Stat {
    Stat {
        kind: kind(i),
        size: i.size,
        mode: u32::from(i.mode) & 0o7777,
        uid: i.uid,
        gid: i.gid,
        mtime: i.mtime,
        id: u64::from(i.ino),
    }
}

impl ExtDirect {
    /// Serves `raw`, described by `info`.
    pub fn new(raw: ExtLayout, info: Info) -> ExtDirect {
        ExtDirect { raw, info, open: RefCell::new(None) }
    }

    /// The inode at `path`, symlinks in it followed (the last one only if
    /// `follow`), `.` and `..` as the kernel takes them.
    fn resolve(&self, path: &str, follow: bool) -> FsResult<Inode> {
        self.resolve_noting(path, follow).map(|(inode, _)| inode)
    }

    /// [`ExtDirect::resolve`], and whether the walk looked a name up in a
    /// large directory without an htree index (where `ext4-view` scans
    /// every entry per lookup, and this reader uses the index it builds).
    pub(crate) fn resolve_noting(&self, path: &str, follow: bool) -> FsResult<(Inode, bool)> {
        let raw = bytes_of(path)?;
        let mut slow = false;
        // Names still to walk, last first; the directories walked.
        let names = |p: &[u8]| -> Vec<Vec<u8>> {
            p.split(|&b| b == b'/').filter(|c| !c.is_empty()).rev().map(<[u8]>::to_vec).collect()
        };
        let mut todo = names(&raw);
        let mut stack: Vec<Inode> = Vec::new();
        let mut links = 0;
        let mut here = self.raw.inode(ROOT)?;
        // The canonical path walked so far, while the walk has met no
        // symlink or `..`: each of its directories is looked up once,
        // not once per request (deep trees).
        let mut prefix = Some(Vec::new());
        while let Some(c) = todo.pop() {
            match &c[..] {
                b"." => continue,
                b".." => {
                    prefix = None;
                    if let Some(up) = stack.pop() {
                        here = up;
                    }
                    continue;
                }
                _ => {}
            }
            if !here.is_dir() {
                return Err((ErrorKind::NotDir, format!("{path}: a component is not a directory")));
            }
            slow |= here.is_large_unindexed();
            let ino = match prefix.as_mut() {
                Some(p) => {
                    p.push(b'/');
                    p.extend_from_slice(&c);
                    match self.raw.cached(p) {
                        Some(ino) => ino,
                        None => {
                            let ino = self.raw.child(here.ino, &c)?;
                            self.raw.remember(p, ino);
                            ino
                        }
                    }
                }
                None => self.raw.child(here.ino, &c)?,
            };
            let child = self.raw.inode(ino)?;
            if child.is_symlink() && (follow || !todo.is_empty()) {
                prefix = None;
                links += 1;
                if links > MAX_LINKS {
                    return Err((ErrorKind::Loop, format!("{path}: too many levels of symbolic links")));
                }
                let target = self.raw.link_bytes(&child)?;
                if target.starts_with(b"/") {
                    stack.clear();
                    here = self.raw.inode(ROOT)?;
                }
                todo.extend(names(&target));
                continue;
            }
            stack.push(core::mem::replace(&mut here, child));
        }
        Ok((here, slow))
    }

    /// The regular file at `path` (symlinks followed).
    pub(crate) fn file(&self, path: &str) -> FsResult<Inode> {
        if let Some((p, inode)) = self.open.borrow().as_ref() {
            if p == path {
                return Ok(inode.clone());
            }
        }
        let inode = self.resolve(path, true)?;
        if inode.is_dir() {
            return Err((ErrorKind::IsDir, format!("{path}: is a directory")));
        }
        if !inode.is_file() {
            return Err((ErrorKind::Invalid, format!("{path}: not a regular file")));
        }
        *self.open.borrow_mut() = Some((path.to_string(), inode.clone()));
        Ok(inode)
    }
}

impl FileSystem for ExtDirect {
    fn info(&self) -> Info {
        self.info.clone()
    }
    fn stat(&self, path: &str) -> FsResult<Stat> {
        Ok(stat(&self.resolve(path, false)?))
    }
    fn read_dir(&self, path: &str) -> FsResult<Vec<Entry>> {
        let dir = self.resolve(path, true)?;
        if !dir.is_dir() {
            return Err((ErrorKind::NotDir, format!("{path}: not a directory")));
        }
        let names = self.raw.with_entries(&dir, |e| e.to_vec())?;
        let mut out = Vec::new();
        for (raw, ino) in names.into_iter().filter(|(n, _)| n != b"." && n != b"..") {
            if out.len() >= MAX_ENTRIES {
                return Err((ErrorKind::Corrupt, format!("{path}: more than {MAX_ENTRIES} entries")));
            }
            if ino == ext_layout::DAMAGED {
                let why = "this directory block is damaged: its entries from here on are lost".into();
                out.push(Entry::bad(&raw, why));
                continue;
            }
            out.push(match self.raw.inode(ino) {
                Err((_, why)) => Entry::bad(&raw, why),
                Ok(i) => Entry { name: escape_name(&raw), stat: stat(&i), problem: None },
            });
        }
        Ok(out)
    }
    fn read_into(&self, path: &str, offset: u64, buf: &mut [u8]) -> FsResult<usize> {
        let inode = self.file(path)?;
        self.raw.read(&inode, inode.size, offset, buf)
    }
    fn read_link(&self, path: &str) -> FsResult<String> {
        let inode = self.resolve(path, false)?;
        if !inode.is_symlink() {
            return Err((ErrorKind::Invalid, format!("{path}: not a symbolic link")));
        }
        Ok(escape_path(&self.raw.link_bytes(&inode)?))
    }
}
