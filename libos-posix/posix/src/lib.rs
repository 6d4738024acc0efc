//! The POSIX library OS: what an ExoV6 application links to use files the
//! way it would on Unix.
//!
//! The kernel knows nothing of files. A file server process (`fs-server`)
//! serves one disk's file system over IPC; this library connects to it
//! (`mount`), keeps the file descriptors (which file, where in it, opened
//! how) in the application's own memory, and turns `open`, `read`,
//! `write`, `lseek`, `fstat`, `stat`, `readdir`, `mkdir`, `unlink`,
//! `rename` and `close` into file-protocol requests (`exo_protocols::file`)
//! through a buffer shared with the server. Errors are POSIX errno values.
//! Descriptors 0, 1 and 2 are the console (writes print; reads see end of
//! file). One file server, mounted at `/`, for now. Programs of the boot
//! image are started, waited for and stopped through the root task's
//! process service ([`process`]).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod net;
pub mod process;

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use exo_protocols::file::{self as proto, ErrorKind, Kind, Request, Response, Status};
use exo_protocols::session::client::Attached;
use exo_rt::caps::Endpoint;
use exo_rt::mem::Mapping;
use exo_rt::sync::SpinLock;

/// POSIX error numbers (the Linux values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Errno {
    /// No such file or directory.
    ENOENT = 2,
    /// I/O error (the server or the disk failed).
    EIO = 5,
    /// Bad file descriptor (or one not open for this).
    EBADF = 9,
    /// Out of memory.
    ENOMEM = 12,
    /// Illegal seek (or a file operation on a socket).
    ESPIPE = 29,
    /// File exists.
    EEXIST = 17,
    /// Not a directory.
    ENOTDIR = 20,
    /// Is a directory.
    EISDIR = 21,
    /// Invalid argument.
    EINVAL = 22,
    /// Too many open files.
    EMFILE = 24,
    /// Read-only file system.
    EROFS = 30,
    /// File name too long.
    ENAMETOOLONG = 36,
    /// Not supported.
    ENOSYS = 38,
    /// Nothing mounted, or the server went away.
    ENODEV = 19,
    /// No such process.
    ESRCH = 3,
    /// No child process of that number.
    ECHILD = 10,
    /// Try again: a non-blocking socket would have to wait.
    EAGAIN = 11,
    /// Broken pipe: this end was shut down for writing.
    EPIPE = 32,
    /// Not a socket.
    ENOTSOCK = 88,
    /// Message too long (a datagram beyond the largest carried).
    EMSGSIZE = 90,
    /// Address family not supported (IPv4 only).
    EAFNOSUPPORT = 97,
    /// Address in use.
    EADDRINUSE = 98,
    /// The network server is gone.
    ENETDOWN = 100,
    /// Connection reset (by the peer, or the network server lost it).
    ECONNRESET = 104,
    /// Already connected.
    EISCONN = 106,
    /// Not connected.
    ENOTCONN = 107,
    /// Timed out.
    ETIMEDOUT = 110,
    /// Connection refused.
    ECONNREFUSED = 111,
}

/// Results of this library.
pub type Result<T> = core::result::Result<T, Errno>;

/// A file descriptor.
pub type Fd = i32;

/// `open` flags (the Linux values).
pub mod flags {
    /// Read only.
    pub const O_RDONLY: u32 = 0;
    /// Write only.
    pub const O_WRONLY: u32 = 1;
    /// Read and write.
    pub const O_RDWR: u32 = 2;
    /// Create if missing.
    pub const O_CREAT: u32 = 0o100;
    /// Cut to length 0.
    pub const O_TRUNC: u32 = 0o1000;
    /// Every write at the end.
    pub const O_APPEND: u32 = 0o2000;
    /// Must be a directory.
    pub const O_DIRECTORY: u32 = 0o200000;
}

/// `lseek` origins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whence {
    /// From the start.
    Set,
    /// From the current position.
    Cur,
    /// From the end.
    End,
}

/// What `stat` tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// Size in bytes.
    pub size: u64,
    /// Mode bits, type included (`S_IFREG` 0o100000, `S_IFDIR` 0o040000 ...).
    pub mode: u32,
    /// Modification time, seconds since 1970.
    pub mtime: i64,
}

impl Stat {
    /// A directory?
    pub fn is_dir(&self) -> bool {
        self.mode & 0o170000 == 0o040000
    }
}

/// A directory entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// Its name.
    pub name: String,
    /// What `stat` would say.
    pub stat: Stat,
}

/// Where the buffer shared with the file server is mapped, and its size.
const BUF_VA: u64 = 0x0000_4000_0000_0000;
const BUF_PAGES: u64 = 32;
/// Most bytes one request reads or writes (the rest of the buffer holds
/// the framing).
const CHUNK: usize = 96 * 1024;
/// Most open files.
const MAX_FILES: usize = 64;

struct OpenFile {
    path: String,
    offset: u64,
    read: bool,
    write: bool,
    append: bool,
    dir: bool,
}

/// What a descriptor names.
enum Desc {
    File(OpenFile),
    /// A socket of the network server ([`net`]).
    Socket(net::Sock),
}

struct State {
    server: Option<Attached>,
    /// The buffer shared with the server (mapped while mounted).
    buffer: Option<Mapping>,
    files: Vec<Option<Desc>>,
}

static STATE: SpinLock<State> = SpinLock::new(State { server: None, buffer: None, files: Vec::new() });

fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(f)
}

/// Connects to the file server on endpoint slot `slot` and mounts it at
/// `/`: a buffer from the untyped budget is mapped and attached.
pub fn mount(endpoint_slot: u64) -> Result<()> {
    with(|s| {
        if s.server.is_some() {
            return Err(Errno::EINVAL);
        }
        let (buffer, server, _) =
            Attached::new(Endpoint::from_slot(endpoint_slot), BUF_PAGES, BUF_VA).map_err(|_| Errno::ENODEV)?;
        s.server = Some(server);
        s.buffer = Some(buffer);
        forget_files(s);
        Ok(())
    })
}

/// Closes every file's descriptor (sockets stay).
fn forget_files(s: &mut State) {
    for d in s.files.iter_mut() {
        if matches!(d, Some(Desc::File(_))) {
            *d = None;
        }
    }
}

/// Detaches from the file server; every file's descriptor is closed.
pub fn unmount() -> Result<()> {
    with(|s| {
        let server = s.server.take().ok_or(Errno::ENODEV)?;
        forget_files(s);
        server.detach();
        s.buffer = None; // unmapped
        Ok(())
    })
}

fn errno(kind: ErrorKind) -> Errno {
    match kind {
        ErrorKind::NotFound => Errno::ENOENT,
        ErrorKind::NotDir => Errno::ENOTDIR,
        ErrorKind::IsDir => Errno::EISDIR,
        ErrorKind::ReadOnly => Errno::EROFS,
        ErrorKind::Invalid => Errno::EINVAL,
        ErrorKind::Unsupported => Errno::ENOSYS,
        ErrorKind::Corrupt | ErrorKind::Io => Errno::EIO,
    }
}

/// How many times one request is made again on a restarted file server.
const MAX_REATTACH: u32 = 64;

/// True for requests that do no harm made twice (reads, and writes of
/// given bytes at a given place); not for creating, removing or renaming.
fn idempotent(r: &Request) -> bool {
    !matches!(r, Request::Create(_) | Request::Mkdir(_) | Request::Remove(_) | Request::Rename { .. })
}

/// One request to the server (state lock held).
fn ask(s: &mut State, r: &Request) -> Result<Response> {
    let server = s.server.ok_or(Errno::ENODEV)?;
    let bytes = r.encode();
    let buf = s.buffer.as_mut().ok_or(Errno::ENODEV)?.as_mut_slice();
    if bytes.len() > buf.len() {
        return Err(Errno::EINVAL);
    }
    buf[..bytes.len()].copy_from_slice(&bytes);
    // A file server the supervisor restarted gets the buffer attached
    // again and the request again (written anew: the dead instance may
    // have begun its answer), if making it twice does no harm.
    let tries = if idempotent(r) { MAX_REATTACH } else { 0 };
    let again = |_: &Attached| {
        buf[..bytes.len()].copy_from_slice(&bytes);
        true
    };
    let m = server.call([proto::REQUEST, bytes.len() as u64, 0], tries, again).map_err(|_| Errno::ENODEV)?;
    let buf = s.buffer.as_mut().ok_or(Errno::ENODEV)?.as_mut_slice();
    if m.words[0] != Status::Ok as u64 {
        return Err(Errno::EIO);
    }
    match Response::decode(&buf[..m.words[1] as usize]) {
        Ok(Response::Error(kind, _)) => Err(errno(kind)),
        Ok(r) => Ok(r),
        Err(_) => Err(Errno::EIO),
    }
}

/// `path` made absolute and tidy (`.` and `..` resolved, no doubled `/`).
fn normalize(path: &str) -> Result<String> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    if path.len() > proto::MAX_PATH {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(join_path("/", path))
}

/// `path` taken from directory `cwd` when relative, made absolute and
/// tidy: `.` and `..` resolved (`..` of `/` is `/`), no doubled `/`.
pub fn join_path(cwd: &str, path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let from = if path.starts_with('/') { "" } else { cwd };
    for p in from.split('/').chain(path.split('/')) {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    alloc::format!("/{}", parts.join("/"))
}

fn to_stat(st: &proto::Stat) -> Stat {
    let kind = match st.kind {
        Kind::File => 0o100000,
        Kind::Dir => 0o040000,
        Kind::Symlink => 0o120000,
        Kind::Other => 0,
    };
    Stat { size: st.size, mode: kind | (st.mode & 0o7777), mtime: st.mtime }
}

fn stat_locked(s: &mut State, path: &str) -> Result<Stat> {
    match ask(s, &Request::Stat(path.to_string()))? {
        Response::Stat(st) => Ok(to_stat(&st)),
        _ => Err(Errno::EIO),
    }
}

/// Metadata of `path`.
pub fn stat(path: &str) -> Result<Stat> {
    let path = normalize(path)?;
    with(|s| stat_locked(s, &path))
}

/// Opens `path` with `flags` (see [`flags`]); the lowest free descriptor.
pub fn open(path: &str, oflags: u32) -> Result<Fd> {
    let path = normalize(path)?;
    let access = oflags & 3;
    let (read, write) = match access {
        flags::O_RDONLY => (true, false),
        flags::O_WRONLY => (false, true),
        flags::O_RDWR => (true, true),
        _ => return Err(Errno::EINVAL),
    };
    with(|s| {
        let existing = match stat_locked(s, &path) {
            Ok(st) => Some(st),
            Err(Errno::ENOENT) if oflags & flags::O_CREAT != 0 => None,
            Err(e) => return Err(e),
        };
        let dir = existing.is_some_and(|st| st.is_dir());
        if dir && write {
            return Err(Errno::EISDIR);
        }
        if !dir && oflags & flags::O_DIRECTORY != 0 {
            return Err(Errno::ENOTDIR);
        }
        if existing.is_none() || (write && oflags & flags::O_TRUNC != 0) {
            match ask(s, &Request::Create(path.clone()))? {
                Response::Done => {}
                _ => return Err(Errno::EIO),
            }
        }
        let append = oflags & flags::O_APPEND != 0;
        new_desc(s, Desc::File(OpenFile { path, offset: 0, read, write, append, dir }))
    })
}

/// The lowest free descriptor, now naming `d`.
fn new_desc(s: &mut State, d: Desc) -> Result<Fd> {
    let i = match s.files.iter().position(Option::is_none) {
        Some(i) => i,
        None if s.files.len() < MAX_FILES => {
            s.files.push(None);
            s.files.len() - 1
        }
        None => return Err(Errno::EMFILE),
    };
    s.files[i] = Some(d);
    Ok(i as Fd + FIRST_FD)
}

/// The socket descriptor `fd` names: `ENOTSOCK` for a file, `EBADF` for
/// nothing.
fn socket_of(fd: Fd) -> Result<net::Sock> {
    with(|s| match desc(s, fd)? {
        Desc::Socket(k) => Ok(*k),
        Desc::File(_) => Err(Errno::ENOTSOCK),
    })
}

fn desc(s: &mut State, fd: Fd) -> Result<&mut Desc> {
    usize::try_from(fd - FIRST_FD).ok().and_then(|i| s.files.get_mut(i)).and_then(|f| f.as_mut()).ok_or(Errno::EBADF)
}

/// Descriptors below this are the console's.
const FIRST_FD: Fd = 3;

fn file(s: &mut State, fd: Fd) -> Result<&mut OpenFile> {
    match desc(s, fd)? {
        Desc::File(f) => Ok(f),
        Desc::Socket(_) => Err(Errno::ESPIPE),
    }
}

/// Reads up to `buf.len()` bytes at the descriptor's position; 0 at the
/// end of the file. On a socket: [`net::recv`].
pub fn read(fd: Fd, buf: &mut [u8]) -> Result<usize> {
    if (0..3).contains(&fd) {
        return if fd == 0 { Ok(0) } else { Err(Errno::EBADF) };
    }
    if let Ok(k) = socket_of(fd) {
        return net::recv_on(k, buf).map(|(n, _)| n);
    }
    with(|s| {
        let f = file(s, fd)?;
        if f.dir {
            return Err(Errno::EISDIR);
        }
        if !f.read {
            return Err(Errno::EBADF);
        }
        let (path, offset) = (f.path.clone(), f.offset);
        let want = buf.len().min(CHUNK) as u32;
        let data = match ask(s, &Request::Read { path, offset, len: want })? {
            Response::Data(d) => d,
            _ => return Err(Errno::EIO),
        };
        buf[..data.len()].copy_from_slice(&data);
        file(s, fd)?.offset += data.len() as u64;
        Ok(data.len())
    })
}

/// Writes `data` at the descriptor's position (or the end, with
/// `O_APPEND`); how many bytes were written. On a socket: [`net::send`].
pub fn write(fd: Fd, data: &[u8]) -> Result<usize> {
    if fd == 1 || fd == 2 {
        return exo_rt::caps::CONSOLE.write(data).map(|n| n as usize).map_err(|_| Errno::EIO);
    }
    if let Ok(k) = socket_of(fd) {
        return net::send_on(k, data, None);
    }
    with(|s| {
        let f = file(s, fd)?;
        if !f.write {
            return Err(Errno::EBADF);
        }
        let (path, append) = (f.path.clone(), f.append);
        let offset = if append { stat_locked(s, &path)?.size } else { file(s, fd)?.offset };
        let n = data.len().min(CHUNK);
        match ask(s, &Request::Write { path, offset, data: data[..n].to_vec() })? {
            Response::Done => {}
            _ => return Err(Errno::EIO),
        }
        file(s, fd)?.offset = offset + n as u64;
        Ok(n)
    })
}

/// Moves the descriptor's position; the new one.
pub fn lseek(fd: Fd, offset: i64, whence: Whence) -> Result<u64> {
    with(|s| {
        let f = file(s, fd)?;
        let base = match whence {
            Whence::Set => 0,
            Whence::Cur => f.offset as i64,
            Whence::End => {
                let path = f.path.clone();
                stat_locked(s, &path)?.size as i64
            }
        };
        let to = base.checked_add(offset).filter(|t| *t >= 0).ok_or(Errno::EINVAL)?;
        file(s, fd)?.offset = to as u64;
        Ok(to as u64)
    })
}

/// Metadata of an open file.
pub fn fstat(fd: Fd) -> Result<Stat> {
    with(|s| {
        let path = file(s, fd)?.path.clone();
        stat_locked(s, &path)
    })
}

/// Closes a descriptor (a socket's connection ends: data queued still
/// goes out, then the end of the stream).
pub fn close(fd: Fd) -> Result<()> {
    let d = with(|s| {
        desc(s, fd)?;
        Ok(s.files[(fd - FIRST_FD) as usize].take())
    })?;
    match d {
        Some(Desc::Socket(k)) => net::close_sock(k),
        _ => Ok(()),
    }
}

/// The entries of directory `path` (without `.` and `..`).
pub fn readdir(path: &str) -> Result<Vec<DirEntry>> {
    let path = normalize(path)?;
    with(|s| match ask(s, &Request::ReadDir(path))? {
        Response::Dir(entries) => {
            Ok(entries.into_iter().map(|e| DirEntry { stat: to_stat(&e.stat), name: e.name }).collect())
        }
        _ => Err(Errno::EIO),
    })
}

fn change(r: Request) -> Result<()> {
    with(|s| match ask(s, &r)? {
        Response::Done => Ok(()),
        _ => Err(Errno::EIO),
    })
}

/// Creates directory `path`.
pub fn mkdir(path: &str) -> Result<()> {
    change(Request::Mkdir(normalize(path)?))
}

/// Removes file `path` (or an empty directory: `rmdir`).
pub fn unlink(path: &str) -> Result<()> {
    change(Request::Remove(normalize(path)?))
}

/// Moves `from` to `to`.
pub fn rename(from: &str, to: &str) -> Result<()> {
    change(Request::Rename { from: normalize(from)?, to: normalize(to)? })
}

/// Sets the length of file `path`.
pub fn truncate(path: &str, size: u64) -> Result<()> {
    change(Request::Truncate { path: normalize(path)?, size })
}
