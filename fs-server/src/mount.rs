//! `exo-img mount`: the image as a FUSE file system (read-only, or
//! read-write on FAT with `--rw`). Every FUSE request
//! becomes a file-protocol request to the sandboxed server, so the kernel
//! sees only what the server answers, never the image itself.

use crate::client::{Client, ClientError};
use crate::proto::{escape_name, unescape_name, unescape_path, ErrorKind, Kind, Request, Response, Stat};
use fuser::{
    BsdFileFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyWrite,
    Request as FuseRequest, TimeOrNow, WriteFlags,
};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::Mutex;
use std::time::SystemTime;
use std::time::{Duration, UNIX_EPOCH};

/// How long the kernel may cache what we answer: the image is read-only.
const TTL: Duration = Duration::from_secs(1);

/// Paths by inode number (inode 1 is `/`).
struct Inodes {
    paths: Vec<String>,
    numbers: HashMap<String, u64>,
}

impl Inodes {
    fn number(&mut self, path: &str) -> u64 {
        if let Some(n) = self.numbers.get(path) {
            return *n;
        }
        self.paths.push(path.to_string());
        let n = self.paths.len() as u64;
        self.numbers.insert(path.to_string(), n);
        n
    }
    fn path(&self, ino: INodeNo) -> Option<String> {
        self.paths.get((ino.0 as usize).checked_sub(1)?).cloned()
    }
}

/// The image, mounted.
pub struct ImageFs {
    client: Mutex<Client>,
    inodes: Mutex<Inodes>,
}

fn errno(e: &ClientError) -> Errno {
    match e {
        ClientError::Fs(ErrorKind::NotFound, _) => Errno::ENOENT,
        ClientError::Fs(ErrorKind::NotDir, _) => Errno::ENOTDIR,
        ClientError::Fs(ErrorKind::IsDir, _) => Errno::EISDIR,
        ClientError::Fs(ErrorKind::ReadOnly, _) => Errno::EROFS,
        ClientError::Fs(ErrorKind::Exists, _) => Errno::EEXIST,
        ClientError::Fs(ErrorKind::NoSpace, _) => Errno::ENOSPC,
        ClientError::Fs(ErrorKind::NotEmpty, _) => Errno::ENOTEMPTY,
        ClientError::Fs(ErrorKind::Loop, _) => Errno::ELOOP,
        ClientError::Fs(ErrorKind::Invalid, _) => Errno::EINVAL,
        ClientError::Fs(ErrorKind::Unsupported, _) => Errno::EOPNOTSUPP,
        _ => Errno::EIO,
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

fn file_type(k: Kind) -> FileType {
    match k {
        Kind::File => FileType::RegularFile,
        Kind::Dir => FileType::Directory,
        Kind::Symlink => FileType::Symlink,
        Kind::Other => FileType::RegularFile,
    }
}

fn attr(ino: u64, s: &Stat) -> FileAttr {
    let mtime = if s.mtime >= 0 {
        UNIX_EPOCH + Duration::from_secs(s.mtime as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(s.mtime.unsigned_abs())
    };
    FileAttr {
        ino: INodeNo(ino),
        size: s.size,
        blocks: s.size.div_ceil(512),
        atime: mtime,
        mtime,
        ctime: mtime,
        crtime: mtime,
        kind: file_type(s.kind),
        perm: (s.mode & 0o7777) as u16,
        nlink: if s.kind == Kind::Dir { 2 } else { 1 },
        uid: s.uid,
        gid: s.gid,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

impl ImageFs {
    /// A file system answering through `client`.
    pub fn new(client: Client) -> ImageFs {
        let mut inodes = Inodes { paths: Vec::new(), numbers: HashMap::new() };
        inodes.number("/");
        ImageFs { client: Mutex::new(client), inodes: Mutex::new(inodes) }
    }

    fn ask(&self, req: Request) -> Result<Response, Errno> {
        let mut c = self.client.lock().expect("client lock");
        c.request(&req).map_err(|e| {
            if matches!(e, ClientError::ServerDied(_) | ClientError::OutOfMemory(_)) {
                eprintln!("exo-img: {e}");
            }
            errno(&e)
        })
    }

    fn stat(&self, path: &str) -> Result<Stat, Errno> {
        match self.ask(Request::Stat(path.into()))? {
            Response::Stat(s) => Ok(s),
            _ => Err(Errno::EIO),
        }
    }

    fn path(&self, ino: INodeNo) -> Result<String, Errno> {
        self.inodes.lock().expect("inode lock").path(ino).ok_or(Errno::ENOENT)
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> Result<String, Errno> {
        Ok(join(&self.path(parent)?, &escape_name(name.as_bytes())))
    }

    /// Sends a request that changes the image.
    fn change(&self, req: Request) -> Result<(), Errno> {
        match self.ask(req)? {
            Response::Done => Ok(()),
            _ => Err(Errno::EIO),
        }
    }

    /// Metadata and inode of `path`, for answers that name a new entry.
    fn entry(&self, path: &str) -> Result<FileAttr, Errno> {
        let s = self.stat(path)?;
        let ino = self.inodes.lock().expect("inode lock").number(path);
        Ok(attr(ino, &s))
    }
}

impl Filesystem for ImageFs {
    fn lookup(&self, _req: &FuseRequest, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let r = (|| {
            let path = join(&self.path(parent)?, &escape_name(name.as_bytes()));
            let s = self.stat(&path)?;
            let ino = self.inodes.lock().expect("inode lock").number(&path);
            Ok(attr(ino, &s))
        })();
        match r {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &FuseRequest, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.path(ino).and_then(|p| self.stat(&p)) {
            Ok(s) => reply.attr(&TTL, &attr(ino.0, &s)),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &FuseRequest, ino: INodeNo, reply: ReplyData) {
        match self.path(ino).and_then(|p| self.ask(Request::ReadLink(p))) {
            Ok(Response::Link(t)) => match unescape_path(&t) {
                Some(raw) => reply.data(&raw),
                None => reply.error(Errno::EIO),
            },
            Ok(_) => reply.error(Errno::EIO),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &FuseRequest,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let len = size.min(crate::proto::MAX_READ);
        let path = match self.path(ino) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        // Through the memory shared with the server, like extraction.
        let mut c = self.client.lock().expect("client lock");
        match c.read(&path, offset, len) {
            Ok(d) => reply.data(&d),
            Err(e) => {
                if matches!(e, ClientError::ServerDied(_) | ClientError::OutOfMemory(_)) {
                    eprintln!("exo-img: {e}");
                }
                reply.error(errno(&e))
            }
        }
    }

    fn create(
        &self,
        _req: &FuseRequest,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let r =
            self.child(parent, name).and_then(|p| self.change(Request::Create(p.clone())).and_then(|_| self.entry(&p)));
        match r {
            Ok(a) => reply.created(&TTL, &a, Generation(0), FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &FuseRequest,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let r = self.path(ino).and_then(|path| self.change(Request::Write { path, offset, data: data.to_vec() }));
        match r {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &FuseRequest,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        // The length can change (truncate(2), O_TRUNC); owners, modes and
        // times are not kept on FAT.
        let r = self.path(ino).and_then(|path| {
            if let Some(size) = size {
                self.change(Request::Truncate { path: path.clone(), size })?;
            }
            self.entry(&path)
        });
        match r {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(&self, _req: &FuseRequest, parent: INodeNo, name: &OsStr, _mode: u32, _umask: u32, reply: ReplyEntry) {
        let r =
            self.child(parent, name).and_then(|p| self.change(Request::Mkdir(p.clone())).and_then(|_| self.entry(&p)));
        match r {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &FuseRequest, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.child(parent, name).and_then(|p| self.change(Request::Remove(p))) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, req: &FuseRequest, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.unlink(req, parent, name, reply)
    }

    fn rename(
        &self,
        _req: &FuseRequest,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let r = self.child(parent, name).and_then(|from| {
            let to = self.child(newparent, newname)?;
            self.change(Request::Rename { from: from.clone(), to: to.clone() })?;
            // The inode number of `from` now names `to`.
            let mut inodes = self.inodes.lock().expect("inode lock");
            if let Some(n) = inodes.numbers.remove(&from) {
                inodes.paths[(n - 1) as usize] = to.clone();
                inodes.numbers.insert(to, n);
            }
            Ok(())
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(&self, _req: &FuseRequest, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let r = (|| {
            let path = self.path(ino)?;
            let entries = match self.ask(Request::ReadDir(path.clone()))? {
                Response::Dir(d) => d,
                _ => return Err(Errno::EIO),
            };
            let mut inodes = self.inodes.lock().expect("inode lock");
            let mut all =
                vec![(ino.0, FileType::Directory, b".".to_vec()), (ino.0, FileType::Directory, b"..".to_vec())];
            for e in entries {
                // An entry the server cannot serve is left out (and said).
                if let Some(why) = &e.problem {
                    eprintln!("exo-img: {}: {why}", join(&path, &e.name));
                    continue;
                }
                // The kernel gets the name's exact bytes.
                let Some(raw) = unescape_name(&e.name) else { continue };
                let n = inodes.number(&join(&path, &e.name));
                all.push((n, file_type(e.stat.kind), raw));
            }
            Ok(all)
        })();
        match r {
            Ok(all) => {
                for (i, (n, kind, name)) in all.into_iter().enumerate().skip(offset as usize) {
                    if reply.add(INodeNo(n), i as u64 + 1, kind, OsStr::from_bytes(&name)) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }
}

/// Mounts the image at `mountpoint` (read-write only if `rw`, which the
/// server allows only on FAT) and serves it until it is unmounted
/// (`fusermount3 -u`).
pub fn mount(mut client: Client, mountpoint: &std::path::Path, rw: bool) -> std::io::Result<()> {
    // Start the server first: its answer proves the image is usable before
    // anything is mounted. (A server started later closes the FUSE device
    // it inherits, so an unmount still ends the session.)
    client.request(&Request::Info).map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut config = fuser::Config::default();
    config.mount_options = vec![fuser::MountOption::FSName("exo-img".into())];
    if !rw {
        config.mount_options.push(fuser::MountOption::RO);
    }
    fuser::mount(ImageFs::new(client), mountpoint, &config)
}
