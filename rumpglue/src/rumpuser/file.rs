//! Files and block I/O.
//!
//! A rump kernel reaches storage by name: `rumpuser_open("/dev/image")`
//! from etfs (rump_etfs(3)), then `rumpuser_bio` for its buffer cache.
//! Names registered with [`register_device`] are served from rumpglue
//! block devices (on ExoV6: the virtio-blk protocol; hosted: the image
//! file a sandboxed server was handed). Any other name is a host file,
//! unless [`set_host_files`]`(false)` closed that door (the sandboxed
//! file server does: it can open nothing).
//!
//! Descriptors are this module's own, not the host's.

use super::sched;
use super::sys::{self, fatal, Locked, RawCond, RawMutex};
#[cfg(feature = "host")]
use crate::errno;
use crate::errno::{EBADF, EEXIST, EINVAL, ENOENT, ENOSPC, EROFS};
use crate::BlockDevice;
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ffi::{c_char, c_int, c_void, CStr};
use core::sync::atomic::{AtomicBool, Ordering};
use netbsd_sys::rumpuser as h;
#[cfg(feature = "host")]
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};

type Device = Arc<dyn BlockDevice>;

/// The registered devices, by name.
static DEVICES: Locked<BTreeMap<String, Device>> = Locked::new(BTreeMap::new());

fn device(name: &str) -> Option<Device> {
    DEVICES.with(|d| d.get(name).cloned())
}

static HOST_FILES: AtomicBool = AtomicBool::new(true);

/// Serves `dev` to the rump kernel under `name` (what it passes to
/// `rumpuser_open` and `rumpuser_getfileinfo`, i.e. the host path given
/// to `rump_pub_etfs_register`). Replaces an earlier device of that name.
pub fn register_device(name: &str, dev: Device) {
    DEVICES.with(|d| d.insert(name.into(), dev));
}

/// Stops serving `name`; open descriptors keep working.
pub fn unregister_device(name: &str) -> Option<Device> {
    DEVICES.with(|d| d.remove(name))
}

/// Whether names that are not registered devices may open host files
/// (default: yes; ExoV6 has none: only registered devices open there). A sandboxed server says no, so that a request for any
/// other file fails with ENOENT instead of tripping the sandbox.
pub fn set_host_files(allowed: bool) {
    HOST_FILES.store(allowed, Ordering::Relaxed);
}

enum Backing {
    Device(Device),
    #[cfg(feature = "host")]
    Host(std::fs::File),
}

struct Open {
    backing: Backing,
    read: bool,
    write: bool,
    /// Position for RUMPUSER_IOV_NOSEEK transfers.
    pos: Locked<u64>,
}

impl Open {
    /// Reads up to `buf.len()` bytes at `off`; fewer only at the end.
    fn read(&self, off: u64, buf: &mut [u8]) -> Result<usize, i32> {
        if !self.read {
            return Err(EBADF);
        }
        match &self.backing {
            Backing::Device(d) => {
                let n = d.size().saturating_sub(off).min(buf.len() as u64) as usize;
                d.read_at(off, &mut buf[..n]).map_err(|e| e.errno())?;
                Ok(n)
            }
            #[cfg(feature = "host")]
            Backing::Host(f) => {
                let mut done = 0;
                while done < buf.len() {
                    match f.read_at(&mut buf[done..], off + done as u64) {
                        Ok(0) => break,
                        Ok(n) => done += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(errno::from_io(&e)),
                    }
                }
                Ok(done)
            }
        }
    }

    /// Writes `buf` at `off`. A device does not grow: what does not fit is
    /// refused (ENOSPC), never silently cut.
    fn write(&self, off: u64, buf: &[u8]) -> Result<usize, i32> {
        if !self.write {
            return Err(EBADF);
        }
        match &self.backing {
            Backing::Device(d) => {
                if off.checked_add(buf.len() as u64).is_none_or(|end| end > d.size()) {
                    return Err(ENOSPC);
                }
                d.write_at(off, buf).map_err(|e| e.errno())?;
                Ok(buf.len())
            }
            #[cfg(feature = "host")]
            Backing::Host(f) => f.write_all_at(buf, off).map(|_| buf.len()).map_err(|e| errno::from_io(&e)),
        }
    }

    fn sync(&self) -> Result<(), i32> {
        match &self.backing {
            Backing::Device(d) => d.flush().map_err(|e| e.errno()),
            #[cfg(feature = "host")]
            Backing::Host(f) if self.write => f.sync_data().map_err(|e| errno::from_io(&e)),
            #[cfg(feature = "host")]
            Backing::Host(_) => Ok(()),
        }
    }
}

/// The open descriptors, by number.
static FDS: Locked<Vec<Option<Arc<Open>>>> = Locked::new(Vec::new());

fn get(fd: c_int) -> Result<Arc<Open>, i32> {
    usize::try_from(fd).ok().and_then(|i| FDS.with(|t| t.get(i).cloned().flatten())).ok_or(EBADF)
}

/// # Safety
/// `p` is NULL or a NUL-terminated string.
unsafe fn name<'a>(p: *const c_char) -> Result<&'a str, i32> {
    if p.is_null() {
        return Err(EINVAL);
    }
    // SAFETY: the caller's promise.
    unsafe { CStr::from_ptr(p) }.to_str().map_err(|_| ENOENT)
}

fn open(path: &str, mode: c_int) -> Result<Open, i32> {
    let known = h::RUMPUSER_OPEN_ACCMODE | h::RUMPUSER_OPEN_CREATE | h::RUMPUSER_OPEN_EXCL | h::RUMPUSER_OPEN_BIO;
    if mode as u32 & !known != 0 {
        return Err(EINVAL);
    }
    let (read, write) = match mode as u32 & h::RUMPUSER_OPEN_ACCMODE {
        h::RUMPUSER_OPEN_RDONLY => (true, false),
        h::RUMPUSER_OPEN_WRONLY => (false, true),
        h::RUMPUSER_OPEN_RDWR => (true, true),
        _ => return Err(EINVAL),
    };
    let create = mode as u32 & h::RUMPUSER_OPEN_CREATE != 0;
    let excl = mode as u32 & h::RUMPUSER_OPEN_EXCL != 0;
    let pos = Locked::new(0);
    if let Some(dev) = device(path) {
        if create && excl {
            return Err(EEXIST);
        }
        if write && !dev.writable() {
            return Err(EROFS);
        }
        return Ok(Open { backing: Backing::Device(dev), read, write, pos });
    }
    if !HOST_FILES.load(Ordering::Relaxed) || cfg!(not(feature = "host")) {
        return Err(ENOENT);
    }
    open_host(path, read, write, create, excl, pos)
}

#[cfg(not(feature = "host"))]
fn open_host(_: &str, _: bool, _: bool, _: bool, _: bool, _: Locked<u64>) -> Result<Open, i32> {
    Err(ENOENT)
}

#[cfg(feature = "host")]
fn open_host(path: &str, read: bool, write: bool, create: bool, excl: bool, pos: Locked<u64>) -> Result<Open, i32> {
    let mut o = std::fs::OpenOptions::new();
    o.read(read).write(write).custom_flags(libc::O_CLOEXEC);
    if create && excl {
        o.create_new(true);
    } else if create {
        o.create(true);
    }
    if create && !write {
        // Linux refuses O_CREAT without write access through std; ask the
        // kernel directly for the same thing.
        o.write(true);
    }
    let f = o.open(path).map_err(|e| errno::from_io(&e))?;
    Ok(Open { backing: Backing::Host(f), read, write, pos })
}

/// Opens `name` (see the module documentation) with RUMPUSER_OPEN_* `mode`.
///
/// # Safety
/// `name` is a string, `fdp` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_open(name_: *const c_char, mode: c_int, fdp: *mut c_int) -> c_int {
    // SAFETY: the caller's promise.
    let path = match unsafe { name(name_) } {
        Ok(p) => p,
        Err(e) => return e,
    };
    let file = match sched::blocking(|| open(path, mode)) {
        Ok(f) => Arc::new(f),
        Err(e) => return e,
    };
    let fd = FDS.with(|t| match t.iter().position(Option::is_none) {
        Some(i) => {
            t[i] = Some(file);
            i
        }
        None => {
            t.push(Some(file));
            t.len() - 1
        }
    });
    // SAFETY: the caller's promise.
    unsafe { *fdp = fd as c_int };
    0
}

/// Closes a descriptor from `rumpuser_open`.
#[no_mangle]
pub extern "C" fn rumpuser_close(fd: c_int) -> c_int {
    let closed = FDS.with(|t| usize::try_from(fd).ok().and_then(|i| t.get_mut(i)).and_then(Option::take));
    match closed {
        Some(_) => 0,
        None => EBADF,
    }
}

/// Size and type (RUMPUSER_FT_*) of `name`.
///
/// # Safety
/// `name` is a string; `size` and `type_` are NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_getfileinfo(name_: *const c_char, size: *mut u64, type_: *mut c_int) -> c_int {
    // SAFETY: the caller's promise.
    let path = match unsafe { name(name_) } {
        Ok(p) => p,
        Err(e) => return e,
    };
    let info = if let Some(dev) = device(path) {
        Ok((dev.size(), h::RUMPUSER_FT_BLK))
    } else if !HOST_FILES.load(Ordering::Relaxed) || cfg!(not(feature = "host")) {
        Err(ENOENT)
    } else {
        sched::blocking(|| host_info(path))
    };
    match info {
        Ok((s, t)) => {
            // SAFETY: the caller's promise (either may be NULL).
            unsafe {
                if !size.is_null() {
                    *size = s;
                }
                if !type_.is_null() {
                    *type_ = t as c_int;
                }
            }
            0
        }
        Err(e) => e,
    }
}

#[cfg(not(feature = "host"))]
fn host_info(_: &str) -> Result<(u64, u32), i32> {
    Err(ENOENT)
}

#[cfg(feature = "host")]
fn host_info(path: &str) -> Result<(u64, u32), i32> {
    let m = std::fs::metadata(path).map_err(|e| errno::from_io(&e))?;
    let t = m.file_type();
    Ok(if t.is_file() {
        (m.len(), h::RUMPUSER_FT_REG)
    } else if t.is_dir() {
        (m.len(), h::RUMPUSER_FT_DIR)
    } else if t.is_block_device() {
        // The size of a block device is its end.
        let f = std::fs::File::open(path).map_err(|e| errno::from_io(&e))?;
        let end = std::io::Seek::seek(&mut &f, std::io::SeekFrom::End(0)).map_err(|e| errno::from_io(&e))?;
        (end, h::RUMPUSER_FT_BLK)
    } else if t.is_char_device() {
        (0, h::RUMPUSER_FT_CHR)
    } else {
        (0, h::RUMPUSER_FT_OTHER)
    })
}

/// One block I/O request.
struct Bio {
    file: Result<Arc<Open>, i32>,
    op: c_int,
    data: *mut u8,
    len: usize,
    off: i64,
    done: unsafe extern "C" fn(*mut c_void, usize, c_int),
    arg: *mut c_void,
}

// SAFETY: the kernel hands `data` and `arg` over to the worker until it
// calls `done`; nothing else touches them meanwhile.
unsafe impl Send for Bio {}

/// How many requests may wait; the caller blocks (without the CPU) when
/// the queue is full.
const QUEUE: usize = 128;
/// Worker threads: requests complete in parallel and in any order, as a
/// disk's would.
const WORKERS: usize = 4;

struct BioQueue {
    lock: Box<RawMutex>,
    cv: Box<RawCond>,
    q: core::cell::UnsafeCell<VecDeque<Bio>>,
}

// SAFETY: `q` is only touched with `lock` held.
unsafe impl Sync for BioQueue {}
// SAFETY: as above.
unsafe impl Send for BioQueue {}

fn bio_queue() -> &'static BioQueue {
    static Q: Locked<Option<&'static BioQueue>> = Locked::new(None);
    let (q, new) = Q.with(|q| match *q {
        Some(q) => (q, false),
        None => {
            let made: &'static BioQueue =
                Box::leak(Box::new(BioQueue { lock: RawMutex::new(), cv: RawCond::new(), q: Default::default() }));
            *q = Some(made);
            (made, true)
        }
    });
    if new {
        // Started outside the lock: each worker asks for the queue first.
        for i in 0..WORKERS {
            sys::spawn_worker(&format!("rumpuser-bio{i}"), bio_worker)
                .unwrap_or_else(|e| fatal(&format!("cannot start a bio worker: {e}")));
        }
    }
    q
}

fn bio_worker() {
    sched::adopt_worker();
    let bq = bio_queue();
    loop {
        bq.lock.lock();
        let bio = loop {
            // SAFETY: `lock` is held.
            match unsafe { (*bq.q.get()).pop_front() } {
                Some(b) => break b,
                None => bq.cv.wait(&bq.lock),
            }
        };
        bq.cv.broadcast(); // room for a waiting submitter
        bq.lock.unlock();
        let (done, error) = do_bio(&bio);
        sched::schedule(0, core::ptr::null_mut());
        // SAFETY: the kernel's completion callback with the argument it
        // gave, called once, holding a CPU as it requires.
        unsafe { (bio.done)(bio.arg, done, error) };
        sched::unschedule(core::ptr::null_mut());
    }
}

fn do_bio(b: &Bio) -> (usize, c_int) {
    let file = match &b.file {
        Ok(f) => f,
        Err(e) => return (0, *e),
    };
    if b.off < 0 {
        return (0, EINVAL);
    }
    let off = b.off as u64;
    if b.op as u32 & h::RUMPUSER_BIO_READ != 0 {
        // SAFETY: the kernel lent us `len` bytes at `data` until biodone.
        let buf = unsafe { core::slice::from_raw_parts_mut(b.data, b.len) };
        match file.read(off, buf) {
            Ok(n) => (n, 0),
            Err(e) => (0, e),
        }
    } else {
        // SAFETY: as above.
        let buf = unsafe { core::slice::from_raw_parts(b.data, b.len) };
        let r = file.write(off, buf).and_then(|n| {
            if b.op as u32 & h::RUMPUSER_BIO_SYNC != 0 {
                file.sync()?;
            }
            Ok(n)
        });
        match r {
            Ok(n) => (n, 0),
            Err(e) => (0, e),
        }
    }
}

/// Starts a block transfer; `biodone(bioarg, bytes, error)` reports its
/// end later, from a worker thread holding a CPU.
///
/// # Safety
/// `data` is valid for `dlen` bytes until `biodone` is called.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_bio(
    fd: c_int,
    op: c_int,
    data: *mut c_void,
    dlen: usize,
    off: i64,
    biodone: h::rump_biodone_fn,
    bioarg: *mut c_void,
) {
    let Some(done) = biodone else { fatal("rumpuser_bio without a biodone callback") };
    let rw = op as u32 & (h::RUMPUSER_BIO_READ | h::RUMPUSER_BIO_WRITE);
    let file = if rw == h::RUMPUSER_BIO_READ || rw == h::RUMPUSER_BIO_WRITE { get(fd) } else { Err(EINVAL) };
    let bio = Bio { file, op, data: data.cast(), len: dlen, off, done, arg: bioarg };
    let bq = bio_queue();
    sched::blocking(|| {
        bq.lock.lock();
        // SAFETY: `lock` is held.
        while unsafe { (*bq.q.get()).len() } >= QUEUE {
            bq.cv.wait(&bq.lock);
        }
        // SAFETY: `lock` is held.
        unsafe { (*bq.q.get()).push_back(bio) };
        bq.cv.broadcast();
        bq.lock.unlock();
    });
}

/// # Safety
/// `iov` points to `n` iovecs.
unsafe fn iovecs<'a>(iov: *const h::rumpuser_iovec, n: usize) -> &'a [h::rumpuser_iovec] {
    if n == 0 {
        &[]
    } else {
        // SAFETY: the caller's promise.
        unsafe { core::slice::from_raw_parts(iov, n) }
    }
}

fn transfer(
    fd: c_int,
    off: i64,
    iov: &[h::rumpuser_iovec],
    mut each: impl FnMut(&Open, u64, &h::rumpuser_iovec) -> Result<usize, i32>,
) -> Result<usize, i32> {
    let file = get(fd)?;
    let seek = off == h::RUMPUSER_IOV_NOSEEK as i64;
    if !seek && off < 0 {
        return Err(EINVAL);
    }
    file.pos.with(|pos| {
        let mut at = if seek { *pos } else { off as u64 };
        let mut total = 0;
        for v in iov {
            let n = sched::blocking(|| each(&file, at, v))?;
            total += n;
            at += n as u64;
            if n < v.iov_len {
                break;
            }
        }
        if seek {
            *pos = at;
        }
        Ok(total)
    })
}

/// Scatter read at `off` (RUMPUSER_IOV_NOSEEK: at the descriptor's position).
///
/// # Safety
/// `ruiov` points to `iovlen` iovecs describing writable memory; `retv`
/// is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_iovread(
    fd: c_int,
    ruiov: *mut h::rumpuser_iovec,
    iovlen: usize,
    off: i64,
    retv: *mut usize,
) -> c_int {
    // SAFETY: the caller's promise.
    let iov = unsafe { iovecs(ruiov, iovlen) };
    let r = transfer(fd, off, iov, |f, at, v| {
        // SAFETY: each iovec describes writable memory of the caller's.
        let buf = unsafe { core::slice::from_raw_parts_mut(v.iov_base.cast::<u8>(), v.iov_len) };
        f.read(at, buf)
    });
    finish(r, retv)
}

/// Gather write; see `rumpuser_iovread`.
///
/// # Safety
/// As for `rumpuser_iovread`, with readable memory.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_iovwrite(
    fd: c_int,
    ruiov: *const h::rumpuser_iovec,
    iovlen: usize,
    off: i64,
    retv: *mut usize,
) -> c_int {
    // SAFETY: the caller's promise.
    let iov = unsafe { iovecs(ruiov, iovlen) };
    let r = transfer(fd, off, iov, |f, at, v| {
        // SAFETY: each iovec describes readable memory of the caller's.
        let buf = unsafe { core::slice::from_raw_parts(v.iov_base.cast::<u8>(), v.iov_len) };
        f.write(at, buf)
    });
    finish(r, retv)
}

fn finish(r: Result<usize, i32>, retv: *mut usize) -> c_int {
    match r {
        Ok(n) => {
            if !retv.is_null() {
                // SAFETY: the caller's promise.
                unsafe { *retv = n };
            }
            0
        }
        Err(e) => e,
    }
}

/// Makes written data durable (RUMPUSER_SYNCFD_* `flags`).
#[no_mangle]
pub extern "C" fn rumpuser_syncfd(fd: c_int, flags: c_int, _start: u64, _len: u64) -> c_int {
    let all = h::RUMPUSER_SYNCFD_BOTH | h::RUMPUSER_SYNCFD_BARRIER | h::RUMPUSER_SYNCFD_SYNC;
    if flags as u32 & !all != 0 {
        return EINVAL;
    }
    let file = match get(fd) {
        Ok(f) => f,
        Err(e) => return e,
    };
    // Writes are done when the hypercall returns (bio completes only after
    // the host has the data), so a barrier is already kept; WRITE and SYNC
    // ask for the data on stable storage.
    if flags as u32 & (h::RUMPUSER_SYNCFD_WRITE | h::RUMPUSER_SYNCFD_SYNC) != 0 {
        if let Err(e) = sched::blocking(|| file.sync()) {
            return e;
        }
    }
    0
}
