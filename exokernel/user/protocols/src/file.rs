//! The file protocol: requests and responses, and their checked encoding.
//!
//! On ExoV6 it runs in a [`session`](crate::session) with a file server
//! (`fs-server/exo`): `ATTACH` answers `[OK, buffer bytes, 0]`; each
//! `call([REQUEST, len, 0])` carries a request encoded in the first `len`
//! bytes of the buffer, answered `[OK, rlen, 0]` with the encoded response
//! in the first `rlen` bytes (`TooLarge` with the length needed if it does
//! not fit). A malformed request gets an encoded error response, as on the
//! hosted server's socket; only what cannot carry a response gets a bad
//! status. In hosted mode the same messages go over a socket.
//!
//! Each message is a tag byte followed by fields: integers little-endian,
//! strings and byte strings as a u32 length and the bytes. Decoding checks
//! every length against the bytes present and against the limits below,
//! so a broken or hostile peer yields a [`ProtoError`], never a panic or a
//! huge allocation. On the wire each message is preceded by its u32
//! length.
//!
//! **Names and paths are escaped.** File names on Linux file systems are
//! bytes, not text: every name a server sends is [`escape_name`] of its
//! bytes (as `ls -b` shows it: `\\` for a backslash, `\xHH` for a byte
//! that is not printable UTF-8), and every path a client sends is such
//! names joined by `/` (see [`unescape_path`]). For the names people
//! write nothing changes; a name that is not UTF-8 can be listed,
//! named on a command line and extracted with its exact bytes.

use alloc::string::String;
use alloc::vec::Vec;

pub use crate::session::{Status, ATTACH, DETACH};

/// `[REQUEST, len, 0]`: a request in the buffer. Answer: `[OK, rlen, 0]`.
pub const REQUEST: u64 = crate::session::FIRST_OP;

/// Largest message (and so largest read) on the wire.
pub const MAX_MESSAGE: usize = 8 << 20;
/// Largest `Read` a client may ask for.
pub const MAX_READ: u32 = 4 << 20;
/// Longest path or name.
pub const MAX_PATH: usize = 64 << 10;
/// Most entries in one directory listing.
pub const MAX_ENTRIES: usize = 1 << 20;
/// Most files in one `ReadMany`.
pub const MAX_MANY: usize = 1024;
/// Bytes of an encoded `Stat`: kind, size, mode, uid, gid, mtime, id.
const STAT_BYTES: usize = 1 + 8 + 4 + 4 + 4 + 8 + 8;
/// Fewest bytes of an encoded directory entry: a one-byte name, its
/// `Stat` and its problem flag.
const MIN_ENTRY: usize = 4 + 1 + STAT_BYTES + 1;
/// Longest problem of an entry.
const MAX_PROBLEM: usize = 1024;

/// A client's request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// What is in the image.
    Info,
    /// Metadata of a path (symlinks not followed).
    Stat(String),
    /// Entries of a directory.
    ReadDir(String),
    /// Entries of a directory past the first `skip` (the rest of a
    /// [`Response::DirPart`]).
    ReadDirFrom {
        /// The directory.
        path: String,
        /// Entries already had.
        skip: u32,
    },
    /// Up to `len` bytes of a file from `offset`.
    Read {
        /// The file.
        path: String,
        /// Where to start.
        offset: u64,
        /// How much (at most [`MAX_READ`]).
        len: u32,
    },
    /// Target of a symbolic link.
    ReadLink(String),
    /// Creates an empty file, or empties an existing one (FAT, `--rw`).
    Create(String),
    /// Writes `data` into a file at `offset` (FAT, `--rw`).
    Write {
        /// The file.
        path: String,
        /// Where to write.
        offset: u64,
        /// The bytes (at most [`MAX_READ`]).
        data: Vec<u8>,
    },
    /// Creates a directory (FAT, `--rw`).
    Mkdir(String),
    /// Removes a file or an empty directory (FAT, `--rw`).
    Remove(String),
    /// Moves `from` to `to` (FAT, `--rw`).
    Rename {
        /// Current path.
        from: String,
        /// New path.
        to: String,
    },
    /// Sets a file's length: cuts it, or extends it with zeros (FAT,
    /// `--rw`).
    Truncate {
        /// The file.
        path: String,
        /// Its new length.
        size: u64,
    },
    /// The starts of many files at once (`(path, len)`, the lengths
    /// adding up to at most [`MAX_READ`]): one round trip for many small
    /// files.
    ReadMany(Vec<(String, u32)>),
    /// As `Read`, but the bytes go into the memory the client shares with
    /// the server, at `at`, not into the answer: bulk data is not copied
    /// through the socket.
    ReadShared {
        /// The file.
        path: String,
        /// Where to start.
        offset: u64,
        /// How much (at most [`MAX_READ`]).
        len: u32,
        /// Where in the shared buffer (`at + len` within it).
        at: u32,
    },
}

/// Kind of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Device, FIFO or socket.
    Other,
}

/// Metadata of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    /// Its kind.
    pub kind: Kind,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits (0 where the file system has none).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, seconds since 1970.
    pub mtime: i64,
    /// Which file this is within the image: two entries with the same
    /// nonzero `id` are the same file (a hard link, or a directory met
    /// again through a cycle). The inode number on ext2/3/4 and NetBSD;
    /// on FAT the first cluster (the root directory's own for the root
    /// and for directory entries that point at cluster 0, as `fatfs`
    /// reads those). 0 where the server cannot tell (an empty FAT file).
    pub id: u64,
}

/// One directory entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its name as [`escape_name`] shows it (never empty, `.`, `..`, and
    /// without `/`): what a client puts in a path to name it. For an
    /// entry with a `problem`, for display only: it names no file the
    /// server can serve.
    pub name: String,
    /// Its metadata (all zero with a `problem`).
    pub stat: Stat,
    /// Why the server cannot serve this entry (a name no path can hold,
    /// an unreadable inode, ...), or `None` for a good entry. The rest
    /// of the directory is listed all the same.
    pub problem: Option<String>,
}

impl Entry {
    /// An entry the server lists but cannot serve: `raw` is its name as
    /// the image has it (escaped here), `why` the reason.
    pub fn bad(raw: &[u8], why: String) -> Entry {
        let stat = Stat { kind: Kind::Other, size: 0, mode: 0, uid: 0, gid: 0, mtime: 0, id: 0 };
        Entry { name: escape_name(raw), stat, problem: Some(why) }
    }
}

/// A name as `ls -b` shows it: printable characters (UTF-8 included) as
/// they are, a backslash doubled, and every other byte (`/`, NUL,
/// control characters, bytes that are not UTF-8) as `\xHH`. `.` and
/// `..` become `\x2e` and `\x2e\x2e`, the empty name `\(empty)`:
/// the result is never empty, `.` or `..`, and holds no `/` or NUL.
pub fn escape_name(raw: &[u8]) -> String {
    use core::fmt::Write as _;
    let mut out = String::new();
    match raw {
        b"" => return "\\(empty)".into(),
        b"." | b".." => {
            for _ in raw {
                out.push_str("\\x2e");
            }
            return out;
        }
        _ => {}
    }
    for chunk in raw.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if c.is_control() || c == '/' => {
                    let mut b = [0u8; 4];
                    for byte in c.encode_utf8(&mut b).bytes() {
                        let _ = write!(out, "\\x{byte:02x}");
                    }
                }
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

/// The bytes of a name [`escape_name`] wrote; `None` if `name` is not
/// one it writes, or names no file (empty, `.`, `..`, a `/` or NUL).
pub fn unescape_name(name: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(name.len());
    let mut rest = name.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        rest = tail;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match rest {
            [b'\\', tail @ ..] => {
                out.push(b'\\');
                rest = tail;
            }
            [b'x', h, l, tail @ ..] => {
                let hex = |c: u8| (c as char).to_digit(16);
                out.push((hex(*h)? * 16 + hex(*l)?) as u8);
                rest = tail;
            }
            _ => return None,
        }
    }
    let names_a_file = !matches!(&out[..], b"" | b"." | b"..") && !out.contains(&b'/') && !out.contains(&0);
    names_a_file.then_some(out)
}

/// A path as bytes, from the escaped names a client joined with `/`
/// (empty components, `.` and `..` kept as they are, for the server to
/// resolve); `None` if a name is not escaped as [`escape_name`] does.
pub fn unescape_path(path: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(path.len());
    for (i, c) in path.split('/').enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        match c {
            "" | "." | ".." => out.extend_from_slice(c.as_bytes()),
            _ => out.extend(unescape_name(c)?),
        }
    }
    Some(out)
}

/// A path of bytes (a symlink's target) as a client reads paths: each
/// name escaped, `/`, `.` and `..` as they are. [`unescape_path`] gives
/// the bytes back.
pub fn escape_path(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    for (i, c) in raw.split(|&b| b == b'/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        match c {
            b"" => {}
            b"." => out.push('.'),
            b".." => out.push_str(".."),
            _ => out.push_str(&escape_name(c)),
        }
    }
    out
}

/// What is in an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    /// File-system type (`ext4`, `fat32`, ...).
    pub fs: String,
    /// Volume label.
    pub label: String,
    /// Which partition, if any (`whole disk`, `MBR 1`, `GPT 2`).
    pub partition: String,
    /// Bytes of the volume.
    pub size: u64,
    /// How the server is confined.
    pub sandbox: String,
}

/// Why a request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// No such file or directory.
    NotFound,
    /// A path component is not a directory.
    NotDir,
    /// A directory where a file was wanted.
    IsDir,
    /// The image is inconsistent.
    Corrupt,
    /// A feature this server does not handle.
    Unsupported,
    /// Reading the image failed.
    Io,
    /// The request itself is malformed.
    Invalid,
    /// The image is not writable (opened read-only, or a read-only file
    /// system).
    ReadOnly,
    /// Something of that name is there already.
    Exists,
    /// The file system (or the directory) has no room left.
    NoSpace,
    /// A directory to remove (or replace) still holds entries.
    NotEmpty,
    /// A path passes through too many symlinks (a loop of them).
    Loop,
}

/// One file of a `ReadMany`: its bytes, or why not.
pub type FileResult = Result<Vec<u8>, (ErrorKind, String)>;

/// The server's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// Answer to `Info`.
    Info(Info),
    /// Answer to `Stat`.
    Stat(Stat),
    /// Answer to `ReadDir`.
    Dir(Vec<Entry>),
    /// Answer to `ReadDir` (or `ReadDirFrom`) when the entries do not all
    /// fit in the client's buffer: the first of them, and where to go on
    /// (`ReadDirFrom` with `skip` = `next`).
    DirPart {
        /// The entries that fit.
        entries: Vec<Entry>,
        /// Entries had so far, these included.
        next: u32,
    },
    /// Answer to `Read`: the bytes (fewer than asked at end of file).
    Data(Vec<u8>),
    /// Answer to `ReadLink`.
    Link(String),
    /// A change was made.
    Done,
    /// Answer to `ReadShared`: this many bytes are in the shared buffer.
    Shared(u32),
    /// Answer to `ReadMany`: each file's bytes or why not, in order.
    Many(Vec<FileResult>),
    /// Any request can fail.
    Error(ErrorKind, String),
}

/// A malformed message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtoError(pub &'static str);

impl core::fmt::Display for ProtoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "malformed message: {}", self.0)
    }
}

impl core::error::Error for ProtoError {}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn error_kind(&mut self, k: &ErrorKind) {
        self.u8(ERROR_KINDS.iter().position(|x| x == k).expect("listed") as u8);
    }
    fn tagged_path(&mut self, tag: u8, p: &str) {
        self.u8(tag);
        self.str(p);
    }
    fn stat(&mut self, s: &Stat) {
        self.u8(match s.kind {
            Kind::File => 0,
            Kind::Dir => 1,
            Kind::Symlink => 2,
            Kind::Other => 3,
        });
        self.u64(s.size);
        self.u32(s.mode);
        self.u32(s.uid);
        self.u32(s.gid);
        self.u64(s.mtime as u64);
        self.u64(s.id);
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        if self.0.len() < n {
            return Err(ProtoError("truncated"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, ProtoError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, ProtoError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Result<u64, ProtoError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn bytes(&mut self, max: usize) -> Result<&'a [u8], ProtoError> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(ProtoError("field too long"));
        }
        self.take(n)
    }
    fn str(&mut self, max: usize) -> Result<String, ProtoError> {
        let b = self.bytes(max)?;
        String::from_utf8(b.to_vec()).map_err(|_| ProtoError("string is not UTF-8"))
    }
    fn path(&mut self) -> Result<String, ProtoError> {
        let p = self.str(MAX_PATH)?;
        if p.contains('\0') {
            return Err(ProtoError("NUL in path"));
        }
        Ok(p)
    }
    /// A count of items that follow, at most `max`.
    fn count(&mut self, max: usize, too_many: &'static str) -> Result<usize, ProtoError> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(ProtoError(too_many));
        }
        Ok(n)
    }
    fn error_kind(&mut self) -> Result<ErrorKind, ProtoError> {
        ERROR_KINDS.get(self.u8()? as usize).copied().ok_or(ProtoError("unknown error kind"))
    }
    fn stat(&mut self) -> Result<Stat, ProtoError> {
        let kind = match self.u8()? {
            0 => Kind::File,
            1 => Kind::Dir,
            2 => Kind::Symlink,
            3 => Kind::Other,
            _ => return Err(ProtoError("unknown file kind")),
        };
        Ok(Stat {
            kind,
            size: self.u64()?,
            mode: self.u32()?,
            uid: self.u32()?,
            gid: self.u32()?,
            mtime: self.u64()? as i64,
            id: self.u64()?,
        })
    }
    fn end(&self) -> Result<(), ProtoError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ProtoError("trailing bytes"))
        }
    }
}

/// The answer to a directory read whose `entries` (those past the first
/// `skip`) may not all fit in `room` bytes: [`Response::Dir`] if they do,
/// else [`Response::DirPart`] with as many as fit (at least one, if one
/// fits at all).
pub fn dir_fitting(entries: Vec<Entry>, skip: u32, room: usize) -> Response {
    let whole = Response::Dir(entries);
    if whole.encode().len() <= room {
        return whole;
    }
    let Response::Dir(mut entries) = whole else { unreachable!() };
    let mut used = 1 + 4 + 4; // tag, next, count
    let mut fit = 0;
    for e in &entries {
        // (An entry's bytes: its encoding alone, less tag and count.)
        let one = Response::Dir(alloc::vec![e.clone()]).encode().len() - 5;
        if used + one > room {
            break;
        }
        used += one;
        fit += 1;
    }
    entries.truncate(fit);
    Response::DirPart { next: skip + fit as u32, entries }
}

const ERROR_KINDS: [ErrorKind; 12] = [
    ErrorKind::NotFound,
    ErrorKind::NotDir,
    ErrorKind::IsDir,
    ErrorKind::Corrupt,
    ErrorKind::Unsupported,
    ErrorKind::Io,
    ErrorKind::Invalid,
    ErrorKind::ReadOnly,
    ErrorKind::Exists,
    ErrorKind::NoSpace,
    ErrorKind::NotEmpty,
    ErrorKind::Loop,
];

impl Request {
    /// Encodes the request.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        match self {
            Request::Info => w.u8(1),
            Request::Stat(p) => w.tagged_path(2, p),
            Request::ReadDir(p) => w.tagged_path(3, p),
            Request::ReadDirFrom { path, skip } => {
                w.u8(14);
                w.str(path);
                w.u32(*skip);
            }
            Request::Read { path, offset, len } => {
                w.u8(4);
                w.str(path);
                w.u64(*offset);
                w.u32(*len);
            }
            Request::ReadLink(p) => w.tagged_path(5, p),
            Request::Create(p) => w.tagged_path(6, p),
            Request::Write { path, offset, data } => {
                w.u8(7);
                w.str(path);
                w.u64(*offset);
                w.bytes(data);
            }
            Request::Mkdir(p) => w.tagged_path(8, p),
            Request::Remove(p) => w.tagged_path(9, p),
            Request::Rename { from, to } => {
                w.u8(10);
                w.str(from);
                w.str(to);
            }
            Request::ReadShared { path, offset, len, at } => {
                w.u8(11);
                w.str(path);
                w.u64(*offset);
                w.u32(*len);
                w.u32(*at);
            }
            Request::Truncate { path, size } => {
                w.u8(13);
                w.str(path);
                w.u64(*size);
            }
            Request::ReadMany(files) => {
                w.u8(12);
                w.u32(files.len() as u32);
                for (p, len) in files {
                    w.str(p);
                    w.u32(*len);
                }
            }
        }
        w.0
    }

    /// Decodes a request, checking everything.
    pub fn decode(b: &[u8]) -> Result<Request, ProtoError> {
        let mut r = Reader(b);
        let req = match r.u8()? {
            1 => Request::Info,
            2 => Request::Stat(r.path()?),
            3 => Request::ReadDir(r.path()?),
            tag @ (4 | 11) => {
                let path = r.path()?;
                let offset = r.u64()?;
                let len = r.u32()?;
                if len > MAX_READ {
                    return Err(ProtoError("read too large"));
                }
                if tag == 4 {
                    Request::Read { path, offset, len }
                } else {
                    Request::ReadShared { path, offset, len, at: r.u32()? }
                }
            }
            5 => Request::ReadLink(r.path()?),
            6 => Request::Create(r.path()?),
            7 => {
                let path = r.path()?;
                let offset = r.u64()?;
                let data = r.bytes(MAX_READ as usize)?.to_vec();
                Request::Write { path, offset, data }
            }
            8 => Request::Mkdir(r.path()?),
            9 => Request::Remove(r.path()?),
            10 => Request::Rename { from: r.path()?, to: r.path()? },
            13 => Request::Truncate { path: r.path()?, size: r.u64()? },
            14 => Request::ReadDirFrom { path: r.path()?, skip: r.u32()? },
            12 => {
                let n = r.count(MAX_MANY, "too many files")?;
                let mut files = Vec::with_capacity(n.min(r.0.len() / 8));
                let mut total = 0u64;
                for _ in 0..n {
                    let p = r.path()?;
                    let len = r.u32()?;
                    total += len as u64;
                    if total > MAX_READ as u64 {
                        return Err(ProtoError("read too large"));
                    }
                    files.push((p, len));
                }
                Request::ReadMany(files)
            }
            _ => return Err(ProtoError("unknown request")),
        };
        r.end()?;
        Ok(req)
    }
}

impl Response {
    /// Encodes the response.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        match self {
            Response::Info(i) => {
                w.u8(1);
                for s in [&i.fs, &i.label, &i.partition] {
                    w.str(s);
                }
                w.u64(i.size);
                w.str(&i.sandbox);
            }
            Response::Stat(s) => {
                w.u8(2);
                w.stat(s);
            }
            Response::Dir(entries) | Response::DirPart { entries, .. } => {
                match self {
                    Response::DirPart { next, .. } => {
                        w.u8(10);
                        w.u32(*next);
                    }
                    _ => w.u8(3),
                }
                w.u32(entries.len() as u32);
                for e in entries {
                    w.str(&e.name);
                    w.stat(&e.stat);
                    match &e.problem {
                        None => w.u8(0),
                        Some(p) => {
                            w.u8(1);
                            w.str(p);
                        }
                    }
                }
            }
            Response::Data(d) => {
                w.u8(4);
                w.bytes(d);
            }
            Response::Link(l) => {
                w.u8(5);
                w.str(l);
            }
            Response::Done => w.u8(7),
            Response::Shared(n) => {
                w.u8(8);
                w.u32(*n);
            }
            Response::Many(items) => {
                w.u8(9);
                w.u32(items.len() as u32);
                for item in items {
                    match item {
                        Ok(d) => {
                            w.u8(0);
                            w.bytes(d);
                        }
                        Err((k, m)) => {
                            w.u8(1);
                            w.error_kind(k);
                            w.str(m);
                        }
                    }
                }
            }
            Response::Error(k, m) => {
                w.u8(6);
                w.error_kind(k);
                w.str(m);
            }
        }
        w.0
    }

    /// Decodes a response, checking everything.
    pub fn decode(b: &[u8]) -> Result<Response, ProtoError> {
        let mut r = Reader(b);
        let resp = match r.u8()? {
            1 => Response::Info(Info {
                fs: r.str(256)?,
                label: r.str(256)?,
                partition: r.str(256)?,
                size: r.u64()?,
                sandbox: r.str(1024)?,
            }),
            2 => Response::Stat(r.stat()?),
            tag @ (3 | 10) => {
                let next = if tag == 10 { Some(r.u32()?) } else { None };
                let n = r.count(MAX_ENTRIES, "too many entries")?;
                // Each entry takes at least MIN_ENTRY bytes: bound the
                // allocation by what is actually there.
                if n > r.0.len() / MIN_ENTRY {
                    return Err(ProtoError("truncated"));
                }
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    let name = r.str(MAX_PATH)?;
                    if name.is_empty() || name.contains('/') || name.contains('\0') {
                        return Err(ProtoError("bad entry name"));
                    }
                    let stat = r.stat()?;
                    let problem = match r.u8()? {
                        0 => None,
                        1 => Some(r.str(MAX_PROBLEM)?),
                        _ => return Err(ProtoError("bad problem flag")),
                    };
                    v.push(Entry { name, stat, problem });
                }
                match next {
                    Some(next) => Response::DirPart { entries: v, next },
                    None => Response::Dir(v),
                }
            }
            4 => Response::Data(r.bytes(MAX_READ as usize)?.to_vec()),
            5 => Response::Link(r.str(MAX_PATH)?),
            7 => Response::Done,
            8 => {
                let n = r.u32()?;
                if n > MAX_READ {
                    return Err(ProtoError("read too large"));
                }
                Response::Shared(n)
            }
            9 => {
                let n = r.count(MAX_MANY, "too many files")?;
                let mut items = Vec::with_capacity(n.min(r.0.len() / 5));
                let mut total = 0usize;
                for _ in 0..n {
                    items.push(match r.u8()? {
                        0 => {
                            let d = r.bytes(MAX_READ as usize)?;
                            total += d.len();
                            if total > MAX_READ as usize {
                                return Err(ProtoError("read too large"));
                            }
                            Ok(d.to_vec())
                        }
                        1 => Err((r.error_kind()?, r.str(4096)?)),
                        _ => return Err(ProtoError("bad result flag")),
                    });
                }
                Response::Many(items)
            }
            6 => Response::Error(r.error_kind()?, r.str(4096)?),
            _ => return Err(ProtoError("unknown response")),
        };
        r.end()?;
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat() -> Stat {
        Stat { kind: Kind::Symlink, size: 5, mode: 0o777, uid: 1, gid: 2, mtime: -3, id: 7 }
    }

    #[test]
    fn round_trips() {
        let reqs = [
            Request::Info,
            Request::Stat("/a".into()),
            Request::ReadDir("/".into()),
            Request::ReadDirFrom { path: "/d".into(), skip: 2700 },
            Request::Read { path: "/f".into(), offset: u64::MAX, len: MAX_READ },
            Request::ReadLink("/l".into()),
            Request::Create("/c".into()),
            Request::Write { path: "/w".into(), offset: 7, data: vec![1, 2] },
            Request::Mkdir("/d".into()),
            Request::Remove("/r".into()),
            Request::Rename { from: "/a".into(), to: "/b".into() },
            Request::ReadShared { path: "/s".into(), offset: 9, len: 4096, at: 4096 },
            Request::ReadMany(vec![("/a".into(), 10), ("/b".into(), 0)]),
            Request::Truncate { path: "/t".into(), size: 1 << 33 },
        ];
        for r in reqs {
            assert_eq!(Request::decode(&r.encode()), Ok(r));
        }
        let resps = [
            Response::Info(Info {
                fs: "ext4".into(),
                label: "L".into(),
                partition: "GPT 1".into(),
                size: 9,
                sandbox: "s".into(),
            }),
            Response::Stat(stat()),
            Response::Dir(vec![
                Entry { name: "x".into(), stat: stat(), problem: None },
                Entry::bad(b"a/b\\\xff", "name holds a slash".into()),
            ]),
            Response::Data(vec![1, 2, 3]),
            Response::Link("../t".into()),
            Response::Error(ErrorKind::Corrupt, "bad inode".into()),
            Response::Error(ErrorKind::ReadOnly, "ro".into()),
            Response::Done,
            Response::DirPart { entries: vec![Entry { name: "y".into(), stat: stat(), problem: None }], next: 7 },
            Response::Error(ErrorKind::NoSpace, "full".into()),
            Response::Shared(4096),
            Response::Many(vec![Ok(vec![1, 2, 3]), Err((ErrorKind::NotFound, "gone".into())), Ok(vec![])]),
        ];
        for r in resps {
            assert_eq!(Response::decode(&r.encode()), Ok(r));
        }
    }

    /// A directory too large for the buffer comes in parts that fit,
    /// each going on where the last stopped, and together are all of it.
    #[test]
    fn directories_come_in_parts_that_fit() {
        let all: Vec<Entry> =
            (0..3000).map(|i| Entry { name: alloc::format!("file_{i}"), stat: stat(), problem: None }).collect();
        let room = 16 * 1024;
        let (mut got, mut skip) = (Vec::new(), 0u32);
        loop {
            let r = dir_fitting(all[skip as usize..].to_vec(), skip, room);
            assert!(r.encode().len() <= room);
            assert_eq!(Response::decode(&r.encode()), Ok(r.clone()));
            match r {
                Response::DirPart { entries, next } => {
                    assert!(!entries.is_empty());
                    got.extend(entries);
                    skip = next;
                }
                Response::Dir(entries) => {
                    got.extend(entries);
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(got, all);
        assert!(matches!(dir_fitting(all[..3].to_vec(), 0, room), Response::Dir(v) if v.len() == 3));
    }

    #[test]
    fn escaped_names_are_displayable_and_never_paths() {
        assert_eq!(escape_name(b"a/b"), "a\\x2fb");
        assert_eq!(escape_name(b"a\0b"), "a\\x00b");
        assert_eq!(escape_name(b"\\"), "\\\\");
        assert_eq!(escape_name("ü\n".as_bytes()), "ü\\x0a");
        assert_eq!(escape_name(b"\xff."), "\\xff.");
        assert_eq!(escape_name(b".."), "\\x2e\\x2e");
        for raw in [&b""[..], b".", b"..", b"/", b"\0", b"a/../b"] {
            let e = escape_name(raw);
            assert!(!e.is_empty() && e != "." && e != ".." && !e.contains('/') && !e.contains('\0'), "{e:?}");
        }
    }

    #[test]
    fn escaped_names_and_paths_give_the_exact_bytes_back() {
        for raw in [&b"plain"[..], b"caf\xe9", b"back\\slash", b"tab\tnew\nline", "ü".as_bytes(), b"\\x41"] {
            assert_eq!(unescape_name(&escape_name(raw)).as_deref(), Some(raw), "{raw:?}");
        }
        // Escapes that name no file, and malformed ones.
        for bad in ["", ".", "..", "\\x2e", "a\\x2fb", "a\\x00", "a\\", "a\\q", "a\\xg0", "a\\x4"] {
            assert_eq!(unescape_name(bad), None, "{bad:?}");
        }
        let target = b"../a\xff/./b//c\\";
        assert_eq!(escape_path(target), "../a\\xff/./b//c\\\\");
        assert_eq!(unescape_path(&escape_path(target)).as_deref(), Some(&target[..]));
        assert_eq!(unescape_path("/d/caf\\xe9").as_deref(), Some(&b"/d/caf\xe9"[..]));
        assert_eq!(unescape_path("/d/a\\x2fb"), None);
    }

    #[test]
    fn rejects_malformed_messages() {
        assert_eq!(Request::decode(&[]), Err(ProtoError("truncated")));
        assert_eq!(Request::decode(&[99]), Err(ProtoError("unknown request")));
        assert_eq!(Request::decode(&[1, 0]), Err(ProtoError("trailing bytes")));
        let mut big = Request::Read { path: "/f".into(), offset: 0, len: 1 }.encode();
        let n = big.len();
        big[n - 4..].copy_from_slice(&(MAX_READ + 1).to_le_bytes());
        assert_eq!(Request::decode(&big), Err(ProtoError("read too large")));
        let mut nul = Request::Stat("/a".into()).encode();
        let n = nul.len();
        nul[n - 1] = 0;
        assert_eq!(Request::decode(&nul), Err(ProtoError("NUL in path")));
        // A directory claiming a million entries in a few bytes.
        let mut dir = vec![3u8];
        dir.extend_from_slice(&1_000_000u32.to_le_bytes());
        assert_eq!(Response::decode(&dir), Err(ProtoError("truncated")));
        let bad_name = Response::Dir(vec![Entry { name: "a/b".into(), stat: stat(), problem: None }]).encode();
        assert_eq!(Response::decode(&bad_name), Err(ProtoError("bad entry name")));
        assert_eq!(Response::decode(&[6, 99, 0, 0, 0, 0]), Err(ProtoError("unknown error kind")));
        let mut s = Response::Stat(stat()).encode();
        s[1] = 7;
        assert_eq!(Response::decode(&s), Err(ProtoError("unknown file kind")));
    }

    #[test]
    fn every_truncation_and_byte_flip_is_an_error_not_a_panic() {
        let msgs = [
            Response::Dir(vec![Entry { name: "x".into(), stat: stat(), problem: None }]).encode(),
            Response::Info(Info {
                fs: "f".into(),
                label: "".into(),
                partition: "p".into(),
                size: 1,
                sandbox: "".into(),
            })
            .encode(),
            Request::Read { path: "/f".into(), offset: 1, len: 2 }.encode(),
        ];
        for m in msgs {
            for cut in 0..m.len() {
                assert!(Response::decode(&m[..cut]).is_err() || Request::decode(&m[..cut]).is_err());
                let _ = Request::decode(&m[..cut]);
            }
            for i in 0..m.len() {
                for v in [0u8, 0xff, 0x7f] {
                    let mut x = m.clone();
                    x[i] = v;
                    let _ = Response::decode(&x);
                    let _ = Request::decode(&x);
                }
            }
        }
    }
}
