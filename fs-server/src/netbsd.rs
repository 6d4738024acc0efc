//! The `netbsd` backend: NetBSD's own file-system code (ffs, ext2fs,
//! msdosfs) serving an image, as a rump kernel inside the sandboxed
//! server, on rumpglue's rumpuser(3) hypercalls.
//!
//! The rump kernel is not shipped: a user who has built one (its shared
//! libraries: librump, librumpvfs, librumpdev, librumpdev_disk and the
//! librumpfs_* file systems) points `RUMP_SYSROOT` (or `--rump-sysroot`)
//! at it. The server loads the libraries before it sandboxes itself,
//! hands the kernel the image as a rumpglue block device (registered
//! under a name the kernel opens through etfs; the kernel can open no
//! host file at all), mounts it read-only, and then answers the file
//! protocol with `rump_sys_*` calls.
//!
//! The kernel's hypercalls bind to this executable's exported rumpglue
//! functions: they come first in the dynamic linker's lookup order. The
//! installation's own librumpuser is loaded only because librump names it
//! as a dependency; nothing of it is called.

use crate::backend::{select_volume, FileSystem, FsResult, Volume};
use crate::proto::{escape_name, escape_path, unescape_path, Entry, ErrorKind, Info, Kind, Stat};
use netbsd_sys::rump as nb;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::Path;

type InitFn = unsafe extern "C" fn() -> c_int;
type EtfsRegisterFn = unsafe extern "C" fn(*const c_char, *const c_char, nb::rump_etfs_type) -> c_int;
type OpenFn = unsafe extern "C" fn(*const c_char, c_int, ...) -> c_int;
type CloseFn = unsafe extern "C" fn(c_int) -> c_int;
type PreadFn = unsafe extern "C" fn(c_int, *mut c_void, usize, nb::netbsd_off_t) -> nb::netbsd_ssize_t;
type StatFn = unsafe extern "C" fn(*const c_char, *mut nb::netbsd_stat) -> c_int;
type GetdentsFn = unsafe extern "C" fn(c_int, *mut c_char, usize) -> c_int;
type ReadlinkFn = unsafe extern "C" fn(*const c_char, *mut c_char, usize) -> nb::netbsd_ssize_t;
type MkdirFn = unsafe extern "C" fn(*const c_char, nb::netbsd_mode_t) -> c_int;
type MountFn = unsafe extern "C" fn(*const c_char, *const c_char, c_int, *mut c_void, usize) -> c_int;

/// The rump kernel's entry points this backend calls, with the types
/// `netbsd_sys::rump` declares for them, found by the names the kernel
/// exports.
struct Calls {
    open: OpenFn,
    close: CloseFn,
    pread: PreadFn,
    lstat: StatFn,
    getdents: GetdentsFn,
    readlink: ReadlinkFn,
}

/// The libraries, in dependency order.
const LIBRARIES: &[&str] = &[
    "librump.so",
    "librumpvfs.so",
    "librumpdev.so",
    "librumpdev_disk.so",
    "librumpfs_ffs.so",
    "librumpfs_ext2fs.so",
    "librumpfs_msdos.so",
];

fn dlerror() -> String {
    // SAFETY: dlerror returns NULL or a message owned by the loader.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        "unknown error".into()
    } else {
        // SAFETY: a NUL-terminated message.
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
}

fn load(sysroot: &Path) -> Result<(), String> {
    let lib = sysroot.join("lib");
    // librump names librumpuser.so.0 as a dependency; loading it first
    // (privately) satisfies that without letting it provide a symbol.
    let deps = [("librumpuser.so.0", libc::RTLD_NOW | libc::RTLD_LOCAL)];
    let all = deps.into_iter().chain(LIBRARIES.iter().map(|l| (*l, libc::RTLD_NOW | libc::RTLD_GLOBAL)));
    for (name, flags) in all {
        let path = lib.join(name);
        let c = CString::new(path.to_string_lossy().as_bytes()).map_err(|_| "bad path".to_string())?;
        // SAFETY: loading a shared library the user pointed us at; its
        // initialisers run now, before the sandbox.
        if unsafe { libc::dlopen(c.as_ptr(), flags) }.is_null() {
            return Err(format!("cannot load the rump kernel library {}: {}", path.display(), dlerror()));
        }
    }
    Ok(())
}

fn sym<T: Copy>(name: &str) -> Result<T, String> {
    assert_eq!(std::mem::size_of::<T>(), std::mem::size_of::<*mut c_void>());
    let c = CString::new(name).expect("no NUL");
    // SAFETY: a lookup in the global scope.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c.as_ptr()) };
    if p.is_null() {
        return Err(format!("the rump kernel has no {name}"));
    }
    // SAFETY: T is a function pointer type of the symbol's declared
    // signature (see `Calls`), of pointer size (checked above).
    Ok(unsafe { std::mem::transmute_copy::<*mut c_void, T>(&p) })
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
    Ok(match crate::detect::detect(&head[..2048.min(head.len())]) {
        Some(crate::detect::FsType::Ext) => Some("ext2fs"),
        Some(crate::detect::FsType::Fat) => Some("msdos"),
        None => None,
    })
}

/// A file system mounted in the rump kernel at /mnt.
pub struct Rump {
    calls: Calls,
    info: Info,
}

/// The host path under which the image is registered with rumpglue, and
/// the rump kernel's name for it.
const IMAGE: &str = "/exo/image";
const DEVICE: &str = "/dev/exoimg";

fn nb_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// What a NetBSD errno means for the protocol.
fn error(path: &str, what: &str, e: i32) -> (ErrorKind, String) {
    use rumpglue::errno::*;
    let kind = match e {
        ENOENT => ErrorKind::NotFound,
        ENOTDIR => ErrorKind::NotDir,
        EISDIR => ErrorKind::IsDir,
        EROFS => ErrorKind::ReadOnly,
        EINVAL | ENAMETOOLONG => ErrorKind::Invalid,
        EFTYPE => ErrorKind::Corrupt,
        _ => ErrorKind::Io,
    };
    (kind, format!("{path}: {what} failed in the NetBSD kernel (errno {e})"))
}

/// NetBSD's EFTYPE, what its file systems say of a damaged on-disk
/// structure.
const EFTYPE: i32 = 79;

/// The rump kernel's path for `path`, an escaped path (see
/// `exo_fs_core::proto`): its exact bytes under the mount point.
fn cpath(path: &str) -> FsResult<CString> {
    let raw =
        unescape_path(path).ok_or_else(|| (ErrorKind::NotFound, format!("{path}: a name is not escaped right")))?;
    let rel: Vec<u8> = raw.iter().copied().skip_while(|&b| b == b'/').collect();
    if rel.split(|&b| b == b'/').any(|c| c == b"..") {
        return Err((ErrorKind::Invalid, format!("{path}: '..' is not allowed")));
    }
    CString::new([&b"/mnt/"[..], &rel].concat()).map_err(|_| (ErrorKind::Invalid, format!("{path}: contains NUL")))
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
    /// Loads the rump kernel from `sysroot`, gives it `dev` (partition
    /// `choice`) and mounts the file system read-only. Call before the
    /// sandbox: it opens the libraries and starts the kernel's threads.
    pub fn open(
        sysroot: &Path,
        dev: std::sync::Arc<dyn rumpglue::BlockDevice>,
        choice: Option<usize>,
    ) -> Result<Rump, String> {
        let (volume, partition, fstype) = select_volume(dev, choice, probe)?;
        // The kernel runs a score of threads; one malloc arena per thread
        // (64 MiB of address space each) would not fit the sandbox's
        // address-space limit.
        // SAFETY: mallopt only tunes the allocator.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
        load(sysroot)?;
        rumpglue::rumpuser::register_device(IMAGE, volume.device());
        rumpglue::rumpuser::set_host_files(false);
        // The kernel's console goes to standard error; quiet unless asked.
        if std::env::var_os("RUMP_VERBOSE").is_none() {
            rumpglue::rumpuser::set_param("RUMP_VERBOSE", "0");
        }
        std::hint::black_box(&rumpglue::rumpuser::HYPERCALLS);
        let init: InitFn = sym("rump_init")?;
        let etfs: EtfsRegisterFn = sym("rump_pub_etfs_register")?;
        let mkdir: MkdirFn = sym("rump___sysimpl_mkdir")?;
        let mount: MountFn = sym("rump___sysimpl_mount50")?;
        let calls = Calls {
            open: sym("rump___sysimpl_open")?,
            close: sym("rump___sysimpl_close")?,
            pread: sym("rump___sysimpl_pread")?,
            lstat: sym("rump___sysimpl_lstat50")?,
            getdents: sym("rump___sysimpl_getdents30")?,
            readlink: sym("rump___sysimpl_readlink")?,
        };
        let (image, device) = (CString::new(IMAGE).unwrap(), CString::new(DEVICE).unwrap());
        // SAFETY: the kernel's entry points with the arguments their
        // declarations in netbsd_sys::rump describe; strings outlive the
        // calls; the mount arguments are NetBSD's own layouts.
        unsafe {
            let rv = init();
            if rv != 0 {
                return Err(format!("rump_init failed: errno {rv}"));
            }
            let rv = etfs(device.as_ptr(), image.as_ptr(), nb::rump_etfs_type_RUMP_ETFS_BLK);
            if rv != 0 {
                return Err(format!("rump_pub_etfs_register failed: errno {rv}"));
            }
            if mkdir(c"/mnt".as_ptr(), 0o755) != 0 {
                return Err(format!("mkdir /mnt in the rump kernel failed: errno {}", nb_errno()));
            }
            let ty = CString::new(fstype).unwrap();
            let rv = match fstype {
                "msdos" => {
                    let mut a: nb::netbsd_msdosfs_args = std::mem::zeroed();
                    a.fspec = device.as_ptr().cast_mut();
                    a.version = nb::NETBSD_MSDOSFSMNT_VERSION as c_int;
                    a.flags = (nb::NETBSD_MSDOSFSMNT_LONGNAME
                        | nb::NETBSD_MSDOSFSMNT_VERSIONED
                        | nb::NETBSD_MSDOSFSMNT_UTF8) as c_int;
                    a.mask = 0o755;
                    a.dirmask = 0o755;
                    let size = std::mem::size_of_val(&a);
                    mount(ty.as_ptr(), c"/mnt".as_ptr(), nb::NETBSD_MNT_RDONLY as c_int, (&raw mut a).cast(), size)
                }
                _ => {
                    let mut a = nb::netbsd_ufs_args { fspec: device.as_ptr().cast_mut() };
                    let size = std::mem::size_of_val(&a);
                    mount(ty.as_ptr(), c"/mnt".as_ptr(), nb::NETBSD_MNT_RDONLY as c_int, (&raw mut a).cast(), size)
                }
            };
            if rv != 0 {
                return Err(format!("the NetBSD kernel cannot mount this {fstype} file system: errno {}", nb_errno()));
            }
        }
        let info = Info {
            fs: format!("{fstype} (NetBSD rump kernel)"),
            label: String::new(),
            partition,
            size: volume.len(),
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
        let fd = unsafe { (self.calls.open)(p.as_ptr(), flags as c_int) };
        if fd < 0 {
            return Err(error(path, "open", nb_errno()));
        }
        Ok(fd)
    }

    fn close(&self, fd: c_int) {
        // SAFETY: a descriptor this backend opened.
        unsafe { (self.calls.close)(fd) };
    }
}

impl FileSystem for Rump {
    fn info(&self) -> Info {
        self.info.clone()
    }

    fn stat(&self, path: &str) -> FsResult<Stat> {
        let p = cpath(path)?;
        // SAFETY: an all-zero stat is valid; lstat fills it.
        let mut s: nb::netbsd_stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid path and buffer.
        if unsafe { (self.calls.lstat)(p.as_ptr(), &mut s) } != 0 {
            return Err(error(path, "stat", nb_errno()));
        }
        Ok(to_stat(&s))
    }

    fn read_dir(&self, path: &str) -> FsResult<Vec<Entry>> {
        let fd = self.open_fd(path, nb::NETBSD_O_RDONLY | nb::NETBSD_O_DIRECTORY)?;
        let mut names = Vec::new();
        let mut bad = None;
        let mut buf = vec![0u8; 64 * 1024];
        let r = loop {
            // SAFETY: a buffer of buf.len() bytes.
            let n = unsafe { (self.calls.getdents)(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                break Err(error(path, "getdents", nb_errno()));
            }
            if n == 0 {
                break Ok(());
            }
            let mut at = 0usize;
            let fixed = std::mem::offset_of!(nb::netbsd_dirent, d_name);
            while at + fixed <= n as usize {
                let rec = &buf[at..n as usize];
                let reclen = u16::from_ne_bytes([rec[8], rec[9]]) as usize;
                let namlen = u16::from_ne_bytes([rec[10], rec[11]]) as usize;
                if reclen < fixed || reclen > rec.len() || fixed + namlen > reclen {
                    break;
                }
                let ino = u64::from_ne_bytes(rec[..8].try_into().expect("8 bytes"));
                let raw = &rec[fixed..fixed + namlen];
                at += reclen;
                // Unused slots (inode 0), as readdir(3) skips them.
                if ino == 0 || raw == b"." || raw == b".." {
                    continue;
                }
                if raw.is_empty() || raw.contains(&b'/') || raw.contains(&0) {
                    bad = Some(escape_name(raw));
                    continue;
                }
                names.push(escape_name(raw));
            }
        };
        self.close(fd);
        r?;
        if let Some(b) = bad {
            return Err((ErrorKind::Corrupt, format!("{path}: the directory holds an impossible name {b:?}")));
        }
        let base = path.trim_end_matches('/');
        names
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
                n if n < 0 => break Err(error(path, "read", nb_errno())),
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
        let n = unsafe { (self.calls.readlink)(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(error(path, "readlink", nb_errno()));
        }
        buf.truncate(n as usize);
        Ok(escape_path(&buf))
    }
}
