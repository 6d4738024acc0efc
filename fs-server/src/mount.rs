//! `exo-img mount`: the image as a FUSE file system. Every FUSE request
//! becomes a file-protocol request to the sandboxed server, so the kernel
//! sees only what the server answers, never the image itself.

use crate::client::{Client, ClientError};
use crate::proto::{ErrorKind, Kind, Request, Response, Stat};
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, Generation, INodeNo, LockOwner, OpenFlags, ReplyAttr, ReplyData,
    ReplyDirectory, ReplyEntry, Request as FuseRequest,
};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::sync::Mutex;
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
            if matches!(e, ClientError::ServerDied(_)) {
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
}

impl Filesystem for ImageFs {
    fn lookup(&self, _req: &FuseRequest, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let r = (|| {
            let name = name.to_str().ok_or(Errno::ENOENT)?;
            let path = join(&self.path(parent)?, name);
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
            Ok(Response::Link(t)) => reply.data(t.as_bytes()),
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
        match self.path(ino).and_then(|path| self.ask(Request::Read { path, offset, len })) {
            Ok(Response::Data(d)) => reply.data(&d),
            Ok(_) => reply.error(Errno::EIO),
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
                vec![(ino.0, FileType::Directory, ".".to_string()), (ino.0, FileType::Directory, "..".to_string())];
            for e in entries {
                let n = inodes.number(&join(&path, &e.name));
                all.push((n, file_type(e.stat.kind), e.name));
            }
            Ok(all)
        })();
        match r {
            Ok(all) => {
                for (i, (n, kind, name)) in all.into_iter().enumerate().skip(offset as usize) {
                    if reply.add(INodeNo(n), i as u64 + 1, kind, name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }
}

/// Mounts the image read-only at `mountpoint` and serves it until it is
/// unmounted (`fusermount3 -u`).
pub fn mount(mut client: Client, mountpoint: &std::path::Path) -> std::io::Result<()> {
    // Start the server first: its answer proves the image is usable before
    // anything is mounted. (A server started later closes the FUSE device
    // it inherits, so an unmount still ends the session.)
    client.request(&Request::Info).map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut config = fuser::Config::default();
    config.mount_options = vec![fuser::MountOption::RO, fuser::MountOption::FSName("exo-img".into())];
    fuser::mount(ImageFs::new(client), mountpoint, &config)
}
