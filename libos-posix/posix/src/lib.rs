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
//! Descriptors 0, 1 and 2 are the console (writes print; reads see the
//! lines typed when the shell started the program in the foreground,
//! else the end of the input), unless the program was started with its
//! output or input sent to a file: a program whose [`entry!`] is this library's opens the file
//! named by `EXO_STDOUT` (added to) as descriptor 1 and sends `print!` and
//! `println!` there, and the file named by `EXO_STDIN` as descriptor 0
//! (the shell's `> FILE`, `>> FILE` and `< FILE`; it makes or cuts the
//! file first, so that its errors are its own). Descriptor 2 stays the
//! console, as do `eprintln!` and panics. File servers are mounted at `/` or at directories (`/d0`,
//! `/d1` ... one per disk), each request going to the one whose
//! directory holds its path. Programs of the boot
//! image are started, waited for and stopped through the root task's
//! process service ([`process`]).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

/// How the shell passes a program its words (quoted ones included).
pub use exo_protocols::argv;
mod console_in;
pub mod net;
pub mod process;
pub use process::{getpid, posix_spawn, waitpid};

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
    /// Interrupted (a wait, by other news on the notification).
    EINTR = 4,
    /// I/O error (the server or the disk failed).
    EIO = 5,
    /// Argument list (here: environment) too long.
    E2BIG = 7,
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
    /// Too many open files (or mounts).
    EMFILE = 24,
    /// Busy: something is mounted there already.
    EBUSY = 16,
    /// A rename across two mounts.
    EXDEV = 18,
    /// Read-only file system.
    EROFS = 30,
    /// No space left on the device.
    ENOSPC = 28,
    /// Directory not empty.
    ENOTEMPTY = 39,
    /// File name too long.
    ENAMETOOLONG = 36,
    /// Too many levels of symbolic links.
    ELOOP = 40,
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
    /// A symbolic link?
    pub fn is_symlink(&self) -> bool {
        self.mode & 0o170000 == 0o120000
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
/// Most open descriptors of a process (files, pipes, sockets).
const MAX_FILES: usize = 256;

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
    /// An end of a pipe of the process service ([`process`]): its id, and
    /// whether it is the write end.
    Pipe(u64, bool),
    /// A device file ([`DEVICES`]).
    Device(Device),
}

/// The device files the library itself provides, under `/dev`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    /// `/dev/null`: reads find the end at once, writes are taken and
    /// dropped (`> /dev/null`).
    Null,
    /// `/dev/zero`: reads give zeros without end, writes are dropped.
    Zero,
    /// `/dev/urandom` (and `/dev/random`): reads give the kernel's random
    /// bytes (RDRAND), writes are dropped.
    Random,
}

/// The device files, by path.
pub const DEVICES: [(&str, Device); 4] = [
    ("/dev/null", Device::Null),
    ("/dev/zero", Device::Zero),
    ("/dev/urandom", Device::Random),
    ("/dev/random", Device::Random),
];

/// What `stat` says of a device file: a character device anyone may read
/// and write.
const DEVICE_STAT: Stat = Stat { size: 0, mode: 0o020666, mtime: 0 };

/// The device file at `path`, if it is one.
fn device_at(path: &str) -> Option<Device> {
    DEVICES.iter().find(|(p, _)| *p == path).map(|(_, d)| *d)
}

/// The directory of the device files (the library's, whatever a file
/// server mounted at `/` holds).
const DEV: &str = "/dev";

/// The entries of [`DEV`].
fn device_entries() -> Vec<DirEntry> {
    let names = DEVICES.iter().filter_map(|(p, _)| p.strip_prefix("/dev/"));
    names.map(|name| DirEntry { name: name.to_string(), stat: DEVICE_STAT }).collect()
}

/// A file server mounted at a directory.
struct Mount {
    /// Where: `/`, or a directory such as `/d0`.
    at: String,
    server: Attached,
    /// The buffer shared with the server.
    buffer: Mapping,
    /// Which buffer window it is mapped in.
    window: u64,
}

struct State {
    mounts: Vec<Mount>,
    files: Vec<Option<Desc>>,
}

static STATE: SpinLock<State> = SpinLock::new(State { mounts: Vec::new(), files: Vec::new() });

/// Most file servers mounted at once.
const MAX_MOUNTS: u64 = 16;

fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(f)
}

/// Connects to the file server on endpoint slot `slot` and mounts it at
/// `/`: a buffer from the untyped budget is mapped and attached.
pub fn mount(endpoint_slot: u64) -> Result<()> {
    mount_at(endpoint_slot, "/")
}

/// Connects to the file server on endpoint slot `slot` and mounts it at
/// directory `at` (`/d0`, say): paths under `at` are its. Directories
/// above mount points that no server has (`/` with disks at `/d0` and
/// `/d1`) list the mount points.
pub fn mount_at(endpoint_slot: u64, at: &str) -> Result<()> {
    let at = normalize(at)?;
    with(|s| {
        if s.mounts.iter().any(|m| m.at == at) {
            return Err(Errno::EBUSY);
        }
        let window = (0..MAX_MOUNTS).find(|w| s.mounts.iter().all(|m| m.window != *w)).ok_or(Errno::EMFILE)?;
        let va = BUF_VA + window * BUF_PAGES * 4096;
        let (buffer, server, _) =
            Attached::new(Endpoint::from_slot(endpoint_slot), BUF_PAGES, va).map_err(|_| Errno::ENODEV)?;
        s.mounts.push(Mount { at, server, buffer, window });
        Ok(())
    })
}

/// Mounts the file server of each disk this program was given: the
/// endpoint named `files` (or `files0`) at `/d0`, `files1` at `/d1` ...
/// Where they were mounted, in order; those that failed are left out.
pub fn mount_disks() -> Vec<String> {
    let mut done = Vec::new();
    for name in exo_rt::endpoint_names() {
        let n = match name.strip_prefix("files") {
            Some("") => 0,
            Some(n) => match n.parse::<u32>() {
                Ok(n) => n,
                Err(_) => continue,
            },
            None => continue,
        };
        let at = alloc::format!("/d{n}");
        let Some(ep) = exo_rt::endpoint(name) else { continue };
        // (Mounted already, by `start` say, counts.)
        if matches!(mount_at(ep.slot(), &at), Ok(()) | Err(Errno::EBUSY)) {
            done.push(at);
        }
    }
    done.sort();
    done
}

/// What the file server mounted at `at` serves, as it says: file system
/// type, label, partition, bytes, and how it is confined.
pub fn mount_info(at: &str) -> Result<proto::Info> {
    let at = normalize(at)?;
    with(|s| {
        let i = s.mounts.iter().position(|m| m.at == at).ok_or(Errno::ENOENT)?;
        match ask_mount(s, i, &Request::Info)? {
            Response::Info(info) => Ok(info),
            _ => Err(Errno::EIO),
        }
    })
}

/// Where file servers are mounted.
pub fn mounts() -> Vec<String> {
    with(|s| s.mounts.iter().map(|m| m.at.clone()).collect())
}

/// Closes every file's descriptor (sockets stay).
fn forget_files(s: &mut State) {
    for d in s.files.iter_mut() {
        if matches!(d, Some(Desc::File(_))) {
            *d = None;
        }
    }
}

/// Detaches from every file server; every file's descriptor is closed.
pub fn unmount() -> Result<()> {
    with(|s| {
        if s.mounts.is_empty() {
            return Err(Errno::ENODEV);
        }
        forget_files(s);
        for m in s.mounts.drain(..) {
            m.server.detach();
        } // buffers unmapped
        Ok(())
    })
}

/// The mount that serves `path` (the deepest whose directory holds it)
/// and the path within it.
fn route(s: &State, path: &str) -> Option<(usize, String)> {
    let (i, m) = s
        .mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| m.at == "/" || path == m.at || path.starts_with(&alloc::format!("{}/", m.at)))
        .max_by_key(|(_, m)| m.at.len())?;
    let inner = if m.at == "/" { path } else { &path[m.at.len()..] };
    Some((i, if inner.is_empty() { "/".to_string() } else { inner.to_string() }))
}

/// What `stat` says of a directory above mount points (no server has it).
const ABOVE_MOUNTS: Stat = Stat { size: 0, mode: 0o040555, mtime: 0 };

/// The names directly under `dir` on the way to mount points, if `dir`
/// is a directory above some (and served by none).
fn mount_children(s: &State, dir: &str) -> Option<Vec<String>> {
    let prefix = if dir == "/" { "/".to_string() } else { alloc::format!("{dir}/") };
    let mut names: Vec<String> = s
        .mounts
        .iter()
        .filter_map(|m| m.at.strip_prefix(prefix.as_str()))
        .filter(|rest| !rest.is_empty())
        .map(|rest| rest.split('/').next().unwrap_or(rest).to_string())
        .collect();
    names.dedup();
    (!names.is_empty()).then_some(names)
}

fn errno(kind: ErrorKind) -> Errno {
    match kind {
        ErrorKind::NotFound => Errno::ENOENT,
        ErrorKind::NotDir => Errno::ENOTDIR,
        ErrorKind::IsDir => Errno::EISDIR,
        ErrorKind::ReadOnly => Errno::EROFS,
        ErrorKind::Exists => Errno::EEXIST,
        ErrorKind::NoSpace => Errno::ENOSPC,
        ErrorKind::NotEmpty => Errno::ENOTEMPTY,
        ErrorKind::Loop => Errno::ELOOP,
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

/// The request with its path(s) taken into the mount that serves them:
/// which mount, and the request as that server sees it.
fn routed(s: &State, r: &Request) -> Result<(usize, Request)> {
    let one = |p: &String| route(s, p).ok_or(if s.mounts.is_empty() { Errno::ENODEV } else { Errno::ENOENT });
    let (i, r) = match r {
        Request::Stat(p) => one(p).map(|(i, p)| (i, Request::Stat(p)))?,
        Request::ReadDir(p) => one(p).map(|(i, p)| (i, Request::ReadDir(p)))?,
        Request::ReadDirFrom { path, skip } => {
            one(path).map(|(i, path)| (i, Request::ReadDirFrom { path, skip: *skip }))?
        }
        Request::ReadLink(p) => one(p).map(|(i, p)| (i, Request::ReadLink(p)))?,
        Request::Create(p) => one(p).map(|(i, p)| (i, Request::Create(p)))?,
        Request::Mkdir(p) => one(p).map(|(i, p)| (i, Request::Mkdir(p)))?,
        Request::Remove(p) => one(p).map(|(i, p)| (i, Request::Remove(p)))?,
        Request::Read { path, offset, len } => {
            one(path).map(|(i, path)| (i, Request::Read { path, offset: *offset, len: *len }))?
        }
        Request::Write { path, offset, data } => {
            one(path).map(|(i, path)| (i, Request::Write { path, offset: *offset, data: data.clone() }))?
        }
        Request::Truncate { path, size } => one(path).map(|(i, path)| (i, Request::Truncate { path, size: *size }))?,
        Request::Rename { from, to } => {
            let ((i, from), (j, to)) = (one(from)?, one(to)?);
            if i != j {
                return Err(Errno::EXDEV);
            }
            (i, Request::Rename { from, to })
        }
        other => (0, other.clone()),
    };
    if i >= s.mounts.len() {
        return Err(Errno::ENODEV);
    }
    Ok((i, r))
}

/// One request to the server that holds its path (state lock held).
fn ask(s: &mut State, r: &Request) -> Result<Response> {
    let (i, r) = routed(s, r)?;
    ask_mount(s, i, &r)
}

/// One request to the server of mount `i` (state lock held).
fn ask_mount(s: &mut State, i: usize, r: &Request) -> Result<Response> {
    let m = &mut s.mounts[i];
    let server = m.server;
    let bytes = r.encode();
    let buf = m.buffer.as_mut_slice();
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
    let answer = server.call([proto::REQUEST, bytes.len() as u64, 0], tries, again).map_err(|_| Errno::ENODEV)?;
    let buf = m.buffer.as_mut_slice();
    if answer.words[0] != Status::Ok as u64 {
        return Err(Errno::EIO);
    }
    match Response::decode(&buf[..answer.words[1] as usize]) {
        Ok(Response::Error(kind, _)) => Err(errno(kind)),
        Ok(r) => Ok(r),
        Err(_) => Err(Errno::EIO),
    }
}

/// The environment (`None`: the one the program started with), in the
/// order names were first set.
static ENV: SpinLock<Option<Vec<(String, String)>>> = SpinLock::new(None);

fn with_env<R>(f: impl FnOnce(&mut Vec<(String, String)>) -> R) -> R {
    ENV.with(|e| f(e.get_or_insert_with(|| exo_rt::start_env().map(|(n, v)| (n.to_string(), v.to_string())).collect())))
}

/// The value of environment variable `name`, if set (`getenv`).
pub fn getenv(name: &str) -> Option<String> {
    with_env(|e| e.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()))
}

/// Sets environment variable `name` to `value` (`setenv`): `EINVAL` for
/// an empty name or one holding `=`, and for a newline or NUL in either
/// (the environment travels as lines).
pub fn setenv(name: &str, value: &str) -> Result<()> {
    let bad = |t: &str| t.contains(['\n', '\0']);
    if name.is_empty() || name.contains('=') || bad(name) || bad(value) {
        return Err(Errno::EINVAL);
    }
    with_env(|e| match e.iter_mut().find(|(n, _)| n == name) {
        Some((_, v)) => *v = value.to_string(),
        None => e.push((name.to_string(), value.to_string())),
    });
    Ok(())
}

/// Removes environment variable `name` (`unsetenv`).
pub fn unsetenv(name: &str) {
    with_env(|e| e.retain(|(n, _)| n != name));
}

/// The whole environment, as `(NAME, VALUE)` pairs (`environ`).
pub fn environ() -> Vec<(String, String)> {
    with_env(|e| e.clone())
}

/// The environment as programs get it: `NAME=VALUE` lines.
pub(crate) fn environ_text() -> String {
    with_env(|e| e.iter().map(|(n, v)| alloc::format!("{n}={v}\n")).collect())
}

/// The working directory (`None`: the one the program started in).
static CWD: SpinLock<Option<String>> = SpinLock::new(None);

/// The working directory: relative paths start there. At first the one
/// the program was started in (the shell's, for a program it starts).
pub fn getcwd() -> String {
    CWD.with(|c| c.get_or_insert_with(|| exo_rt::start_dir().to_string()).clone())
}

/// Changes the working directory to `path` (a directory).
pub fn chdir(path: &str) -> Result<()> {
    let to = normalize(path)?;
    if !stat_follow(&to)?.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    CWD.with(|c| *c = Some(to));
    Ok(())
}

/// `path` made absolute (from the working directory when relative) and
/// tidy (`.` and `..` resolved, no doubled `/`).
fn normalize(path: &str) -> Result<String> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    if path.len() > proto::MAX_PATH {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(join_path(&getcwd(), path))
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
    if route(s, path).is_none() && mount_children(s, path).is_some() {
        return Ok(ABOVE_MOUNTS);
    }
    match ask(s, &Request::Stat(path.to_string()))? {
        Response::Stat(st) => Ok(to_stat(&st)),
        _ => Err(Errno::EIO),
    }
}

/// Metadata of `path`.
pub fn stat(path: &str) -> Result<Stat> {
    let path = normalize(path)?;
    if device_at(&path).is_some() {
        return Ok(DEVICE_STAT);
    }
    if path == DEV {
        return Ok(ABOVE_MOUNTS);
    }
    with(|s| stat_locked(s, &path))
}

/// Metadata of `path` with a final symlink to a directory followed (the
/// directory's; a symlink to anything else, or dangling, or in a loop,
/// stays itself): what `cd` and `ls` go by. The file server resolves the
/// link, inside its own image. A path that ends in `/` names a directory:
/// a symlink there that leads to none is an error (ENOTDIR, ENOENT,
/// ELOOP), as on Unix.
pub fn stat_follow(path: &str) -> Result<Stat> {
    let must_follow = path.len() > 1 && path.ends_with('/');
    let path = normalize(path)?;
    let st = stat(&path)?;
    if !st.is_symlink() {
        return Ok(st);
    }
    // The server follows every symlink before the path's last name.
    let through = alloc::format!("{}/.", path.trim_end_matches('/'));
    with(|s| match ask(s, &Request::Stat(through)) {
        Ok(Response::Stat(t)) => Ok(to_stat(&t)),
        Ok(_) if must_follow => Err(Errno::EIO),
        Err(e) if must_follow => Err(e),
        _ => Ok(st),
    })
}

/// The target of symlink `path`, as the link holds it.
pub fn readlink(path: &str) -> Result<String> {
    let path = normalize(path)?;
    with(|s| match ask(s, &Request::ReadLink(path))? {
        Response::Link(l) => Ok(l),
        _ => Err(Errno::EIO),
    })
}

/// Opens `path` with `flags` (see [`flags`]); the lowest free descriptor.
pub fn open(path: &str, oflags: u32) -> Result<Fd> {
    let path = normalize(path)?;
    if let Some(d) = device_at(&path) {
        return with(|s| new_desc(s, Desc::Device(d)));
    }
    if path == DEV {
        // The library's own directory of devices: listed (`readdir`), not
        // opened as a file.
        return Err(Errno::EISDIR);
    }
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
        Desc::File(_) | Desc::Pipe(..) | Desc::Device(_) => Err(Errno::ENOTSOCK),
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
        Desc::Socket(_) | Desc::Pipe(..) | Desc::Device(_) => Err(Errno::ESPIPE),
    }
}

/// The device file descriptor `fd` names, if it names one.
fn device_of(fd: Fd) -> Option<Device> {
    with(|s| match desc(s, fd) {
        Ok(Desc::Device(d)) => Some(*d),
        _ => None,
    })
}

/// The pipe end descriptor `fd` names, if it names one.
fn pipe_of(fd: Fd) -> Option<(u64, bool)> {
    with(|s| match desc(s, fd) {
        Ok(Desc::Pipe(id, write)) => Some((*id, *write)),
        _ => None,
    })
}

/// The notification this process's servers signal: the network server
/// ([`net`]) and the console ([`console_in`]) alike, so that one wait
/// ([`net::poll`] over sockets and the console) hears either.
static WAKE: SpinLock<Option<exo_rt::caps::Notification>> = SpinLock::new(None);

/// [`WAKE`], made at the first call.
pub(crate) fn wake_note() -> Result<exo_rt::caps::Notification> {
    let mut wake = WAKE.lock();
    if let Some(n) = *wake {
        return Ok(n);
    }
    let untyped = exo_rt::caps::Untyped::from_slot(exo_rt::abi::slot::UNTYPED);
    let n = untyped.create_notification().map_err(|_| Errno::ENOMEM)?;
    *wake = Some(n);
    Ok(n)
}

/// The files descriptors 0 and 1 stand for, when the program was started
/// with them sent to files ([`start`]).
static STDIO: SpinLock<[Option<Fd>; 2]> = SpinLock::new([None; 2]);

/// Whether descriptor 0 has input to read: a file (`< FILE`), a pipe, or
/// the console (a program the shell waits for, [`CONSOLE_STDIN`]); a
/// program in the background, or one started otherwise, has none.
pub fn stdin_redirected() -> bool {
    redirected(0).is_some() || console_in::on()
}

/// Whether descriptor 0 reads the lines typed at the console.
pub fn stdin_is_console() -> bool {
    redirected(0).is_none() && console_in::on()
}

/// [`STDIN_VAR`]'s value for a program whose standard input is the
/// console: descriptor 0 reads the lines typed (each with its newline),
/// and ^D on an empty line ends them.
pub const CONSOLE_STDIN: &str = "console";

/// What standard descriptor `fd` (0 or 1) stands for, if a file.
fn redirected(fd: Fd) -> Option<Fd> {
    STDIO.lock().get(usize::try_from(fd).ok()?).copied().flatten()
}

/// The environment variables that give a program its standard input
/// and output: an absolute file name (the output is added to the file's
/// end), or `pipe:ID`, an end of a pipe the shell made
/// ([`process::pipe`]).
pub use exo_protocols::process::{STDIN_VAR, STDOUT_VAR};

/// Sets up a program's standard descriptors from its environment
/// ([`STDIN_VAR`], [`STDOUT_VAR`]): descriptor 1 adds to the file or
/// writes to the pipe named, and `print!` and `println!` then go there;
/// descriptor 0 reads the file or pipe named. The disks are mounted first
/// for a file, the process service attached for a pipe. What failed, and
/// how.
pub fn start() -> core::result::Result<(), (String, Errno)> {
    use exo_protocols::process::pipe_named;
    let (mut input, output) = (getenv(STDIN_VAR), getenv(STDOUT_VAR));
    if input.as_deref() == Some(CONSOLE_STDIN) {
        console_in::enable();
        input = None;
    }
    if input.is_none() && output.is_none() {
        return Ok(());
    }
    let named = [&input, &output].map(|v| v.as_deref().and_then(pipe_named));
    if [&input, &output].iter().zip(named).any(|(v, p)| v.is_some() && p.is_none()) {
        mount_disks();
    }
    // (A program that connected already, as a shell does with its own
    // notification, stays connected so.)
    if named.iter().any(Option::is_some) && !process::is_attached() {
        let procs = exo_rt::endpoint("procs").ok_or_else(|| ("procs".into(), Errno::ENODEV))?;
        let note = exo_rt::caps::Untyped::from_slot(exo_rt::abi::slot::UNTYPED)
            .create_notification()
            .map_err(|_| ("procs".into(), Errno::ENOMEM))?;
        process::attach(procs.slot(), note).map_err(|e| ("procs".into(), e))?;
    }
    if let Some(path) = input {
        let fd = match named[0] {
            Some(id) => with(|s| new_desc(s, Desc::Pipe(id, false))),
            None => open(&path, flags::O_RDONLY),
        };
        STDIO.lock()[0] = Some(fd.map_err(|e| (path, e))?);
    }
    if let Some(path) = output {
        let fd = match named[1] {
            Some(id) => with(|s| new_desc(s, Desc::Pipe(id, true))),
            None => open(&path, flags::O_WRONLY | flags::O_APPEND),
        };
        STDIO.lock()[1] = Some(fd.map_err(|e| (path, e))?);
        exo_rt::io::set_output(Some(print_to_stdout));
    }
    Ok(())
}

/// `print!`'s bytes, to descriptor 1's file (failures told on the
/// console, once a line).
fn print_to_stdout(bytes: &[u8]) {
    match write_all(1, bytes) {
        Ok(()) => {}
        Err(Errno::EPIPE) => broken_pipe(),
        Err(e) => exo_rt::eprintln!("standard output: {e:?}"),
    }
}

/// Ends the program whose output nobody reads any more (its pipe's
/// readers are gone), quietly, as SIGPIPE ends it on Unix: status 141
/// (128 + 13), after detaching from the file servers.
pub fn broken_pipe() -> ! {
    if !mounts().is_empty() {
        let _ = unmount();
    }
    exo_rt::sys::exit(141)
}

/// Writes all of `data` to `fd` (a write may take less than it is
/// given).
pub fn write_all(fd: Fd, mut data: &[u8]) -> Result<()> {
    while !data.is_empty() {
        match write(fd, data)? {
            0 => return Err(Errno::EIO),
            n => data = &data[n..],
        }
    }
    Ok(())
}

/// Ends what [`start`] set up: output to the console again, the files
/// closed; and detaches from the file servers, as a program's end does
/// (a writable file system's server leaves its image clean when its last
/// client has gone).
pub fn finish() {
    exo_rt::io::set_output(None);
    let files = core::mem::take(&mut *STDIO.lock());
    for fd in files.into_iter().flatten() {
        let _ = close(fd);
    }
    if !mounts().is_empty() {
        let _ = unmount();
    }
}

/// Runs a program's `main` between [`start`] and [`finish`] (what
/// [`entry!`] does); a standard file that cannot be opened ends it with
/// status 1 and says why on the console.
pub fn run(args: &str, main: fn(&str) -> i32) -> i32 {
    if let Err((path, e)) = start() {
        exo_rt::eprintln!("{path}: {e:?}");
        finish();
        return 1;
    }
    let status = main(args);
    finish();
    status
}

/// A program's entry point, as `exo_rt::entry!`, with its standard
/// descriptors set up from its environment ([`run`]).
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        $crate::__rt::entry!(__exo_posix_main);
        fn __exo_posix_main(args: &str) -> i32 {
            $crate::run(args, $main)
        }
    };
}

#[doc(hidden)]
pub use exo_rt as __rt;

/// Reads up to `buf.len()` bytes at the descriptor's position; 0 at the
/// end of the file. On a socket: [`net::recv`].
pub fn read(fd: Fd, buf: &mut [u8]) -> Result<usize> {
    if (0..3).contains(&fd) {
        return match (fd, redirected(fd)) {
            (_, Some(file)) => read(file, buf),
            (0, None) if console_in::on() => console_in::read(buf),
            (0, None) => Ok(0),
            _ => Err(Errno::EBADF),
        };
    }
    if let Ok(k) = socket_of(fd) {
        return net::recv_on(k, buf).map(|(n, _)| n);
    }
    if let Some((id, write)) = pipe_of(fd) {
        return if write { Err(Errno::EBADF) } else { process::pipe_read(id, buf) };
    }
    match device_of(fd) {
        Some(Device::Null) => return Ok(0),
        Some(Device::Zero) => {
            buf.fill(0);
            return Ok(buf.len());
        }
        Some(Device::Random) => {
            return exo_rt::sys::random(buf).map(|()| buf.len()).map_err(|_| Errno::EIO);
        }
        None => {}
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
        if let Some(file) = redirected(fd) {
            return write(file, data);
        }
        return exo_rt::caps::CONSOLE.write(data).map(|n| n as usize).map_err(|_| Errno::EIO);
    }
    if let Ok(k) = socket_of(fd) {
        return net::send_on(k, data, None);
    }
    if let Some((id, write)) = pipe_of(fd) {
        return if write { process::pipe_write(id, data) } else { Err(Errno::EBADF) };
    }
    if device_of(fd).is_some() {
        return Ok(data.len());
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
        Some(Desc::Pipe(id, write)) => process::pipe_close(id, write),
        _ => Ok(()),
    }
}

/// The entries of directory `path` (without `.` and `..`).
pub fn readdir(path: &str) -> Result<Vec<DirEntry>> {
    let path = normalize(path)?;
    if path == DEV {
        return Ok(device_entries());
    }
    with(|s| match ask(s, &Request::ReadDirFrom { path: path.clone(), skip: 0 }) {
        Err(Errno::ENOENT | Errno::ENODEV) if route(s, &path).is_none() => {
            let mut names = mount_children(s, &path).unwrap_or_default();
            if path == "/" {
                names.push("dev".to_string());
            }
            if names.is_empty() {
                return Err(Errno::ENOENT);
            }
            Ok(names.into_iter().map(|name| DirEntry { name, stat: ABOVE_MOUNTS }).collect())
        }
        r => {
            // In parts, if the server's answer does not fit in one.
            let mut all = Vec::new();
            let mut r = r?;
            loop {
                match r {
                    Response::Dir(entries) => {
                        all.extend(entries);
                        break;
                    }
                    Response::DirPart { entries, next } if !entries.is_empty() => {
                        all.extend(entries);
                        r = ask(s, &Request::ReadDirFrom { path: path.clone(), skip: next })?;
                    }
                    _ => return Err(Errno::EIO),
                }
            }
            Ok(all.into_iter().map(|e| DirEntry { stat: to_stat(&e.stat), name: e.name }).collect())
        }
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
