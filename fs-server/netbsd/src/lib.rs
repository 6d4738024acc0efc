//! The file server's NetBSD backend: NetBSD's own file-system code (ffs,
//! ext2fs, msdosfs), in a rump kernel, serving one volume read-only.
//!
//! `no_std` + `alloc`: the same code runs in the hosted server (a Linux
//! process that loads a user-built rump kernel's shared libraries,
//! `fs-server/src/netbsd.rs`) and in the ExoV6 program `fs-rump`, which
//! links the kernel's static archives (`fs-server/rump`). Each of them
//! finds the kernel's entry points its own way ([`Calls`]), registers the
//! volume with rumpglue's rumpuser(3) layer under a name, and calls
//! [`Rump::mount`]; from then on the rump kernel is only reached through
//! `rump_sys_*` calls, and only reaches the disk through rumpglue.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::ffi::{c_char, c_int, c_void, CStr};
use exo_fs_core::backend::{FileSystem, FsResult, Volume};
use exo_fs_core::proto::{escape_name, escape_path, unescape_path, Entry, ErrorKind, Info, Kind, Stat};
use netbsd_sys::rump as nb;

/// `rump_init`.
pub type InitFn = unsafe extern "C" fn() -> c_int;
/// `rump_pub_etfs_register`.
pub type EtfsRegisterFn = unsafe extern "C" fn(*const c_char, *const c_char, nb::rump_etfs_type) -> c_int;
/// `rump___sysimpl_open`.
pub type OpenFn = unsafe extern "C" fn(*const c_char, c_int, ...) -> c_int;
/// `rump___sysimpl_close`.
pub type CloseFn = unsafe extern "C" fn(c_int) -> c_int;
/// `rump___sysimpl_pread`.
pub type PreadFn = unsafe extern "C" fn(c_int, *mut c_void, usize, nb::netbsd_off_t) -> nb::netbsd_ssize_t;
/// `rump___sysimpl_lstat50`.
pub type StatFn = unsafe extern "C" fn(*const c_char, *mut nb::netbsd_stat) -> c_int;
/// `rump___sysimpl_getdents30`.
pub type GetdentsFn = unsafe extern "C" fn(c_int, *mut c_char, usize) -> c_int;
/// `rump___sysimpl_readlink`.
pub type ReadlinkFn = unsafe extern "C" fn(*const c_char, *mut c_char, usize) -> nb::netbsd_ssize_t;
/// `rump___sysimpl_mkdir`.
pub type MkdirFn = unsafe extern "C" fn(*const c_char, nb::netbsd_mode_t) -> c_int;
/// `rump___sysimpl_mount50`.
pub type MountFn = unsafe extern "C" fn(*const c_char, *const c_char, c_int, *mut c_void, usize) -> c_int;

/// The rump kernel's entry points this backend calls, with the types
/// `netbsd_sys::rump` declares for them, and how to read the NetBSD errno
/// of a failed call (rumpglue's `rumpuser::errno`).
#[derive(Clone, Copy)]
pub struct Calls {
    /// `rump_init`
    pub init: InitFn,
    /// `rump_pub_etfs_register`
    pub etfs_register: EtfsRegisterFn,
    /// `rump___sysimpl_mkdir`
    pub mkdir: MkdirFn,
    /// `rump___sysimpl_mount50`
    pub mount: MountFn,
    /// `rump___sysimpl_open`
    pub open: OpenFn,
    /// `rump___sysimpl_close`
    pub close: CloseFn,
    /// `rump___sysimpl_pread`
    pub pread: PreadFn,
    /// `rump___sysimpl_lstat50`
    pub lstat: StatFn,
    /// `rump___sysimpl_getdents30`
    pub getdents: GetdentsFn,
    /// `rump___sysimpl_readlink`
    pub readlink: ReadlinkFn,
    /// The calling thread's errno after a failed call.
    pub errno: fn() -> c_int,
}

/// The file system NetBSD would mount on a volume: its mount type name.
pub fn probe(v: &Volume) -> Result<Option<&'static str>, String> {
    let mut head = vec![0u8; (65536 + 1376).min(v.len() as usize)];
    v.read_at(0, &mut head).map_err(|e| format!("cannot read the image: {e}"))?;
    let le32 = |at: usize| head.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    // The superblock of UFS1 or UFS2 at 8 KiB or 64 KiB (where NetBSD
    // looks); its magic sits 1372 bytes in.
    const FS_UFS1_MAGIC: u32 = 0x0001_1954;
    const FS_UFS2_MAGIC: u32 = 0x1954_0119;
    if [8192, 65536].iter().any(|sb| matches!(le32(sb + 1372), Some(FS_UFS1_MAGIC | FS_UFS2_MAGIC))) {
        return Ok(Some("ffs"));
    }
    Ok(match exo_fs_core::detect::detect(&head[..2048.min(head.len())]) {
        Some(exo_fs_core::detect::FsType::Ext) => Some("ext2fs"),
        Some(exo_fs_core::detect::FsType::Fat) => Some("msdos"),
        None => None,
    })
}

/// A file system mounted in the rump kernel at /mnt.
pub struct Rump {
    calls: Calls,
    info: Info,
}

/// NetBSD's EFTYPE, what its file systems say of a damaged on-disk
/// structure.
const EFTYPE: i32 = 79;

/// What a NetBSD errno means for the protocol.
fn error(path: &str, what: &str, e: i32) -> (ErrorKind, String) {
    const ENOENT: i32 = 2;
    const ENOTDIR: i32 = 20;
    const EISDIR: i32 = 21;
    const EINVAL: i32 = 22;
    const EROFS: i32 = 30;
    const EEXIST: i32 = 17;
    const ENOSPC: i32 = 28;
    const ENOTEMPTY: i32 = 66;
    const ENAMETOOLONG: i32 = 63;
    const ELOOP: i32 = 62;
    let kind = match e {
        ENOENT => ErrorKind::NotFound,
        ENOTDIR => ErrorKind::NotDir,
        EISDIR => ErrorKind::IsDir,
        EROFS => ErrorKind::ReadOnly,
        EEXIST => ErrorKind::Exists,
        ENOSPC => ErrorKind::NoSpace,
        ENOTEMPTY => ErrorKind::NotEmpty,
        ELOOP => ErrorKind::Loop,
        EINVAL | ENAMETOOLONG => ErrorKind::Invalid,
        EFTYPE => ErrorKind::Corrupt,
        _ => ErrorKind::Io,
    };
    (kind, format!("{path}: {what} failed in the NetBSD kernel (errno {e})"))
}

/// A NUL-terminated copy of `bytes`, or None if they hold a NUL.
fn c_string(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.contains(&0) {
        return None;
    }
    let mut v = Vec::with_capacity(bytes.len() + 1);
    v.extend_from_slice(bytes);
    v.push(0);
    Some(v)
}

/// The rump kernel's path for `path`, an escaped path (see
/// `exo_fs_core::proto`): its exact bytes under the mount point, NUL
/// terminated.
fn cpath(path: &str) -> FsResult<Vec<u8>> {
    let raw =
        unescape_path(path).ok_or_else(|| (ErrorKind::NotFound, format!("{path}: a name is not escaped right")))?;
    let rel: Vec<u8> = raw.iter().copied().skip_while(|&b| b == b'/').collect();
    if rel.split(|&b| b == b'/').any(|c| c == b"..") {
        return Err((ErrorKind::Invalid, format!("{path}: '..' is not allowed")));
    }
    c_string(&[&b"/mnt/"[..], &rel].concat()).ok_or_else(|| (ErrorKind::Invalid, format!("{path}: contains NUL")))
}

fn to_stat(s: &nb::netbsd_stat) -> Stat {
    let kind = match s.st_mode & nb::NETBSD_S_IFMT {
        nb::NETBSD_S_IFREG => Kind::File,
        nb::NETBSD_S_IFDIR => Kind::Dir,
        nb::NETBSD_S_IFLNK => Kind::Symlink,
        _ => Kind::Other,
    };
    Stat {
        kind,
        size: s.st_size.max(0) as u64,
        mode: s.st_mode & 0o7777,
        uid: s.st_uid,
        gid: s.st_gid,
        mtime: s.st_mtim.tv_sec,
        id: s.st_ino,
    }
}

impl Rump {
    /// Starts the rump kernel, gives it the block device rumpglue's
    /// rumpuser(3) layer knows as `host_name` (registered by the caller:
    /// `rumpglue::rumpuser::register_device`), and mounts the `fstype`
    /// file system on it read-only at /mnt. `partition` and `size`
    /// describe the volume for `info`.
    ///
    /// # Safety
    ///
    /// `calls` are the entry points of one linked or loaded rump kernel,
    /// of the types their declarations give, and its hypercalls are
    /// rumpglue's; called once per process.
    pub unsafe fn mount(
        calls: Calls,
        host_name: &str,
        fstype: &str,
        partition: String,
        size: u64,
    ) -> Result<Rump, String> {
        const DEVICE: &CStr = c"/dev/exoimg";
        let image = c_string(host_name.as_bytes()).ok_or("the device name holds a NUL")?;
        let ty = c_string(fstype.as_bytes()).ok_or("the file-system name holds a NUL")?;
        let errno = calls.errno;
        // SAFETY: the kernel's entry points with the arguments their
        // declarations in netbsd_sys::rump describe (the caller's
        // promise); strings outlive the calls; the mount arguments are
        // NetBSD's own layouts.
        unsafe {
            let rv = (calls.init)();
            if rv != 0 {
                return Err(format!("rump_init failed: errno {rv}"));
            }
            let rv = (calls.etfs_register)(DEVICE.as_ptr(), image.as_ptr().cast(), nb::rump_etfs_type_RUMP_ETFS_BLK);
            if rv != 0 {
                return Err(format!("rump_pub_etfs_register failed: errno {rv}"));
            }
            if (calls.mkdir)(c"/mnt".as_ptr(), 0o755) != 0 {
                return Err(format!("mkdir /mnt in the rump kernel failed: errno {}", errno()));
            }
            // The mount arguments, by file system: NetBSD's own layouts.
            let mut msdos: nb::netbsd_msdosfs_args = core::mem::zeroed();
            let mut ufs = nb::netbsd_ufs_args { fspec: DEVICE.as_ptr().cast_mut() };
            let (args, len): (*mut c_void, usize) = match fstype {
                "msdos" => {
                    msdos.fspec = DEVICE.as_ptr().cast_mut();
                    msdos.version = nb::NETBSD_MSDOSFSMNT_VERSION as c_int;
                    msdos.flags = (nb::NETBSD_MSDOSFSMNT_LONGNAME
                        | nb::NETBSD_MSDOSFSMNT_VERSIONED
                        | nb::NETBSD_MSDOSFSMNT_UTF8) as c_int;
                    msdos.mask = 0o755;
                    msdos.dirmask = 0o755;
                    ((&raw mut msdos).cast(), core::mem::size_of_val(&msdos))
                }
                _ => ((&raw mut ufs).cast(), core::mem::size_of_val(&ufs)),
            };
            let rv = (calls.mount)(ty.as_ptr().cast(), c"/mnt".as_ptr(), nb::NETBSD_MNT_RDONLY as c_int, args, len);
            if rv != 0 {
                return Err(format!("the NetBSD kernel cannot mount this {fstype} file system: errno {}", errno()));
            }
        }
        let info = Info {
            fs: format!("{fstype} (NetBSD rump kernel)"),
            label: String::new(),
            partition,
            size,
            sandbox: String::new(),
        };
        Ok(Rump { calls, info })
    }

    /// Sets the sandbox description reported by `info`.
    pub fn set_sandbox(&mut self, description: String) {
        self.info.sandbox = description;
    }

    fn open_fd(&self, path: &str, flags: u32) -> FsResult<c_int> {
        let p = cpath(path)?;
        // SAFETY: a valid path; open takes no third argument without O_CREAT.
        let fd = unsafe { (self.calls.open)(p.as_ptr().cast(), flags as c_int) };
        if fd < 0 {
            return Err(error(path, "open", (self.calls.errno)()));
        }
        Ok(fd)
    }

    fn close(&self, fd: c_int) {
        // SAFETY: a descriptor this backend opened.
        unsafe { (self.calls.close)(fd) };
    }
}

/// The names of a directory, from what getdents returns.
#[derive(Default)]
struct Records {
    names: Vec<String>,
    /// An impossible name seen (empty, or holding '/' or NUL).
    bad: Option<String>,
}

impl Records {
    /// Takes the `struct dirent` records of one getdents answer. A record
    /// that does not fit (a damaged directory: ufs hands on an on-disk
    /// record length of 0 as a record of length 0 and does not move on)
    /// ends the listing with an error rather than asking again for ever.
    fn take(&mut self, buf: &[u8], path: &str) -> FsResult<()> {
        let fixed = core::mem::offset_of!(nb::netbsd_dirent, d_name);
        let mut at = 0usize;
        while at < buf.len() {
            let rec = &buf[at..];
            let fits = rec.len() >= fixed && {
                let reclen = u16::from_ne_bytes([rec[8], rec[9]]) as usize;
                let namlen = u16::from_ne_bytes([rec[10], rec[11]]) as usize;
                reclen >= fixed && reclen <= rec.len() && fixed + namlen <= reclen
            };
            if !fits {
                return Err((ErrorKind::Corrupt, format!("{path}: the directory holds a damaged entry")));
            }
            let reclen = u16::from_ne_bytes([rec[8], rec[9]]) as usize;
            let namlen = u16::from_ne_bytes([rec[10], rec[11]]) as usize;
            let ino = u64::from_ne_bytes(rec[..8].try_into().expect("8 bytes"));
            let raw = &rec[fixed..fixed + namlen];
            at += reclen;
            // Unused slots (inode 0), as readdir(3) skips them.
            if ino == 0 || raw == b"." || raw == b".." {
                continue;
            }
            if raw.is_empty() || raw.contains(&b'/') || raw.contains(&0) {
                self.bad = Some(escape_name(raw));
                continue;
            }
            if self.names.len() >= exo_fs_core::proto::MAX_ENTRIES {
                return Err((
                    ErrorKind::Corrupt,
                    format!("{path}: more than {} entries", exo_fs_core::proto::MAX_ENTRIES),
                ));
            }
            self.names.push(escape_name(raw));
        }
        Ok(())
    }
}

impl FileSystem for Rump {
    fn info(&self) -> Info {
        self.info.clone()
    }

    fn stat(&self, path: &str) -> FsResult<Stat> {
        let p = cpath(path)?;
        // SAFETY: an all-zero stat is valid; lstat fills it.
        let mut s: nb::netbsd_stat = unsafe { core::mem::zeroed() };
        // SAFETY: valid path and buffer.
        if unsafe { (self.calls.lstat)(p.as_ptr().cast(), &mut s) } != 0 {
            return Err(error(path, "stat", (self.calls.errno)()));
        }
        Ok(to_stat(&s))
    }

    fn read_dir(&self, path: &str) -> FsResult<Vec<Entry>> {
        let fd = self.open_fd(path, nb::NETBSD_O_RDONLY | nb::NETBSD_O_DIRECTORY)?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut records = Records::default();
        let r = loop {
            // SAFETY: a buffer of buf.len() bytes.
            let n = unsafe { (self.calls.getdents)(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                break Err(error(path, "getdents", (self.calls.errno)()));
            }
            if n == 0 {
                break Ok(());
            }
            if let Err(e) = records.take(&buf[..n as usize], path) {
                break Err(e);
            }
        };
        self.close(fd);
        r?;
        if let Some(b) = records.bad {
            return Err((ErrorKind::Corrupt, format!("{path}: the directory holds an impossible name {b:?}")));
        }
        let base = path.trim_end_matches('/');
        records
            .names
            .into_iter()
            .map(|name| {
                let stat = self.stat(&format!("{base}/{name}"))?;
                Ok(Entry { name, stat, problem: None })
            })
            .collect()
    }

    fn read_into(&self, path: &str, offset: u64, buf: &mut [u8]) -> FsResult<usize> {
        let fd = self.open_fd(path, nb::NETBSD_O_RDONLY)?;
        let mut done = 0usize;
        let r = loop {
            if done == buf.len() {
                break Ok(());
            }
            // SAFETY: the unfilled part of `buf`.
            let n = unsafe {
                (self.calls.pread)(fd, buf[done..].as_mut_ptr().cast(), buf.len() - done, (offset + done as u64) as i64)
            };
            match n {
                n if n < 0 => break Err(error(path, "read", (self.calls.errno)())),
                0 => break Ok(()),
                n => done += n as usize,
            }
        };
        self.close(fd);
        r.map(|_| done)
    }

    fn read_link(&self, path: &str) -> FsResult<String> {
        let p = cpath(path)?;
        let mut buf = vec![0u8; 4096];
        // SAFETY: a buffer of 4096 bytes.
        let n = unsafe { (self.calls.readlink)(p.as_ptr().cast(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(error(path, "readlink", (self.calls.errno)()));
        }
        buf.truncate(n as usize);
        Ok(escape_path(&buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_under_the_mount_point() {
        assert_eq!(cpath("/a/b").unwrap(), b"/mnt/a/b\0");
        assert_eq!(cpath("//a").unwrap(), b"/mnt/a\0");
        assert_eq!(cpath("/").unwrap(), b"/mnt/\0");
        assert_eq!(cpath("/a/../../etc").unwrap_err().0, ErrorKind::Invalid);
        assert_eq!(cpath("/..").unwrap_err().0, ErrorKind::Invalid);
    }

    /// A `struct dirent` record as NetBSD/amd64 lays it out.
    fn dirent(ino: u64, reclen: u16, name: &[u8]) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(&ino.to_ne_bytes());
        r.extend_from_slice(&reclen.to_ne_bytes());
        r.extend_from_slice(&(name.len() as u16).to_ne_bytes());
        r.push(8); // d_type
        r.extend_from_slice(name);
        r.resize(reclen as usize, 0);
        r
    }

    #[test]
    fn directory_records_are_read_and_damaged_ones_end_the_listing() {
        let mut ok = Records::default();
        let buf =
            [dirent(2, 24, b"."), dirent(2, 24, b".."), dirent(0, 24, b"gone"), dirent(5, 32, b"hello.txt")].concat();
        ok.take(&buf, "/").unwrap();
        assert_eq!(ok.names, ["hello.txt"]);
        // ufs hands on a record length of 0 and stays where it is: asking
        // again would loop for ever.
        let mut zero = Records::default();
        let buf = [dirent(5, 32, b"hello.txt"), vec![0; 24]].concat();
        assert_eq!(zero.take(&buf, "/").unwrap_err().0, ErrorKind::Corrupt);
        let mut long = Records::default();
        let mut rec = dirent(5, 24, b"a");
        rec[10] = 200; // a name longer than its record
        assert_eq!(long.take(&rec, "/").unwrap_err().0, ErrorKind::Corrupt);
        let mut short = Records::default();
        assert_eq!(short.take(&[1, 2, 3], "/").unwrap_err().0, ErrorKind::Corrupt);
        let mut slash = Records::default();
        slash.take(&dirent(5, 24, b"a/b"), "/").unwrap();
        assert!(slash.bad.is_some());
    }

    #[test]
    fn netbsd_errors_map_to_protocol_errors() {
        assert_eq!(error("/x", "open", 2).0, ErrorKind::NotFound);
        assert_eq!(error("/x", "open", 20).0, ErrorKind::NotDir);
        assert_eq!(error("/x", "read", EFTYPE).0, ErrorKind::Corrupt);
        assert_eq!(error("/x", "read", 5).0, ErrorKind::Io);
        assert!(error("/x", "read", 5).1.contains("errno 5"));
    }
}
