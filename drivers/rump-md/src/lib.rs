//! The porting guide's worked example (docs/porting.md): `md`, a memory
//! disk written in C in the shape of a NetBSD block driver (softc,
//! attach/detach, a strategy routine, completion through `iodone`) that
//! calls nothing but the rumpuser(3) hypercalls. rumpglue supplies them,
//! so the driver runs unchanged wherever rumpglue runs.
//!
//! This crate is the Rust side of the port: it declares the driver's
//! entry points and wraps them as a [`rumpglue::BlockDevice`], the one
//! interface ExoV6's file servers read from. The test formats a FAT file
//! system with the host's tools, writes it through the driver, and reads
//! it back through `exo-fs-core`, the same code the file server runs.
//!
//! The crate builds for Linux (feature `host`, the default) and for
//! ExoV6 (feature `exo`, rumpglue's rumpuser(3) on the exokernel
//! backend): the glue waits for completions with rumpuser's own mutex and
//! condition variable, so it needs nothing of the platform either.
//! `drivers/rump-md/exo` is the ExoV6 program.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

use alloc::vec;
use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicBool, Ordering};
use netbsd_sys::rumpuser as h;
use rumpglue::{BlockDevice, Error, Result};

/// Block size of the driver.
pub const BSIZE: u64 = 512;

#[repr(C)]
struct MdBuf {
    b_flags: c_int,
    b_data: *mut c_void,
    b_bcount: usize,
    b_blkno: i64,
    b_error: c_int,
    b_resid: usize,
    b_iodone: unsafe extern "C" fn(*mut MdBuf),
    b_private: *mut c_void,
    b_next: *mut MdBuf,
}

const B_WRITE: c_int = 0;
const B_READ: c_int = 1;

#[repr(C)]
struct MdSoftc {
    _opaque: [u8; 0],
}

extern "C" {
    fn md_attach(nblocks: u64, scp: *mut *mut MdSoftc) -> c_int;
    fn md_strategy(sc: *mut MdSoftc, bp: *mut MdBuf);
    fn md_size(sc: *mut MdSoftc) -> u64;
    fn md_completed(sc: *mut MdSoftc) -> u64;
    fn md_detach(sc: *mut MdSoftc);
}

/// One request's completion, signalled by the driver's thread through
/// rumpuser's mutex and condition variable.
struct Completion {
    done: AtomicBool,
    mtx: *mut h::rumpuser_mtx,
    cv: *mut h::rumpuser_cv,
}

impl Completion {
    fn new() -> Completion {
        let (mut mtx, mut cv) = (core::ptr::null_mut(), core::ptr::null_mut());
        // SAFETY: valid out-pointers.
        unsafe {
            h::rumpuser_mutex_init(&mut mtx, 0);
            h::rumpuser_cv_init(&mut cv);
        }
        Completion { done: AtomicBool::new(false), mtx, cv }
    }

    /// Waits until `iodone` has run.
    fn wait(&self) {
        // SAFETY: the mutex and condition variable made in `new`.
        unsafe {
            h::rumpuser_mutex_enter(self.mtx);
            while !self.done.load(Ordering::Acquire) {
                h::rumpuser_cv_wait(self.cv, self.mtx);
            }
            h::rumpuser_mutex_exit(self.mtx);
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        // SAFETY: made in `new`, nobody waits any more.
        unsafe {
            h::rumpuser_cv_destroy(self.cv);
            h::rumpuser_mutex_destroy(self.mtx);
        }
    }
}

unsafe extern "C" fn iodone(bp: *mut MdBuf) {
    // SAFETY: b_private is the Completion the submitter waits on, alive
    // until it has seen `done`, which is set under its mutex.
    unsafe {
        let c = &*((*bp).b_private as *const Completion);
        h::rumpuser_mutex_enter(c.mtx);
        c.done.store(true, Ordering::Release);
        h::rumpuser_cv_broadcast(c.cv);
        h::rumpuser_mutex_exit(c.mtx);
    }
}

/// An attached md disk.
pub struct MdDisk {
    sc: *mut MdSoftc,
}

// SAFETY: the driver serialises access to its softc with its own lock;
// requests may come from any thread.
unsafe impl Send for MdDisk {}
// SAFETY: as above.
unsafe impl Sync for MdDisk {}

impl MdDisk {
    /// Attaches a zeroed disk of `bytes` (a multiple of [`BSIZE`]).
    pub fn attach(bytes: u64) -> Result<MdDisk> {
        if bytes == 0 || !bytes.is_multiple_of(BSIZE) {
            return Err(Error::OutOfRange);
        }
        let mut sc = core::ptr::null_mut();
        // SAFETY: the driver's attach with a valid out-pointer.
        match unsafe { md_attach(bytes / BSIZE, &mut sc) } {
            0 => Ok(MdDisk { sc }),
            e => Err(Error::Io(e)),
        }
    }

    /// Transfers completed by the driver so far.
    pub fn completed(&self) -> u64 {
        // SAFETY: an attached softc.
        unsafe { md_completed(self.sc) }
    }

    /// Reads whole blocks from block `blkno` into `buf`.
    pub fn read_blocks(&self, blkno: u64, buf: &mut [u8]) -> Result<()> {
        self.strategy(true, i64::try_from(blkno).map_err(|_| Error::OutOfRange)?, buf.as_mut_ptr(), buf.len())
    }

    /// Writes whole blocks at block `blkno` from `buf` (the driver does
    /// not write through the pointer it is given).
    pub fn write_blocks(&self, blkno: u64, buf: &[u8]) -> Result<()> {
        let blkno = i64::try_from(blkno).map_err(|_| Error::OutOfRange)?;
        self.strategy(false, blkno, buf.as_ptr().cast_mut(), buf.len())
    }

    /// Whole-block transfer through the driver's strategy routine.
    fn strategy(&self, read: bool, blkno: i64, buf: *mut u8, len: usize) -> Result<()> {
        let c = Completion::new();
        let mut bp = MdBuf {
            b_flags: if read { B_READ } else { B_WRITE },
            b_data: buf.cast(),
            b_bcount: len,
            b_blkno: blkno,
            b_error: 0,
            b_resid: 0,
            b_iodone: iodone,
            b_private: (&c as *const Completion).cast_mut().cast(),
            b_next: core::ptr::null_mut(),
        };
        // SAFETY: `bp`, its buffer and `c` live until iodone has run,
        // which we wait for below.
        unsafe { md_strategy(self.sc, &mut bp) };
        c.wait();
        match (bp.b_error, bp.b_resid) {
            (0, 0) => Ok(()),
            (22, _) => Err(Error::OutOfRange),
            (0, _) => Err(Error::Io(rumpglue::errno::EIO)),
            (e, _) => Err(Error::Io(e)),
        }
    }

    /// Moves `len` bytes at byte `offset` through whole blocks: the
    /// driver speaks blocks, the trait bytes.
    fn transfer(&self, offset: u64, len: usize, mut apply: impl FnMut(&mut [u8], usize)) -> Result<()> {
        let end = offset.checked_add(len as u64).filter(|e| *e <= self.size()).ok_or(Error::OutOfRange)?;
        let first = offset / BSIZE;
        let last = end.div_ceil(BSIZE);
        let mut bounce = vec![0u8; ((last - first) * BSIZE) as usize];
        let skip = (offset - first * BSIZE) as usize;
        self.strategy(true, first as i64, bounce.as_mut_ptr(), bounce.len())?;
        apply(&mut bounce, skip);
        Ok(())
    }
}

impl BlockDevice for MdDisk {
    fn size(&self) -> u64 {
        // SAFETY: an attached softc.
        unsafe { md_size(self.sc) * BSIZE }
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let n = buf.len();
        self.transfer(offset, n, |b, skip| buf.copy_from_slice(&b[skip..skip + n]))
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()> {
        let n = buf.len();
        let mut staged: Option<alloc::vec::Vec<u8>> = None;
        // Read the covering blocks, change the bytes, write them back.
        self.transfer(offset, n, |b, skip| {
            b[skip..skip + n].copy_from_slice(buf);
            staged = Some(b.to_vec());
        })?;
        let mut b = staged.expect("transfer ran");
        self.strategy(false, (offset / BSIZE) as i64, b.as_mut_ptr(), b.len())
    }

    fn writable(&self) -> bool {
        true
    }

    fn flush(&self) -> Result<()> {
        Ok(()) // memory: nothing to make durable
    }
}

impl Drop for MdDisk {
    fn drop(&mut self) {
        // SAFETY: attached, and no request is in flight (each call waits
        // for its completion).
        unsafe { md_detach(self.sc) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_does_not_fit() {
        assert_eq!(MdDisk::attach(0).err(), Some(Error::OutOfRange));
        assert_eq!(MdDisk::attach(1000).err(), Some(Error::OutOfRange));
        let d = MdDisk::attach(8 * BSIZE).unwrap();
        let mut b = [0u8; 16];
        assert_eq!(d.read_at(8 * BSIZE - 8, &mut b), Err(Error::OutOfRange));
        assert_eq!(d.read_at(u64::MAX - 4, &mut b), Err(Error::OutOfRange));
        // The driver itself checks too: a request past the end completes
        // at once with EINVAL, and an unaligned count is refused.
        let mut blk = vec![0u8; 2 * BSIZE as usize];
        assert_eq!(d.strategy(true, 7, blk.as_mut_ptr(), blk.len()), Err(Error::OutOfRange));
        assert_eq!(d.strategy(true, -1, blk.as_mut_ptr(), 512), Err(Error::OutOfRange));
        assert_eq!(d.strategy(true, 0, blk.as_mut_ptr(), 100), Err(Error::OutOfRange));
        assert_eq!(d.completed(), 0, "refused requests never reach the driver thread");
    }

    #[test]
    fn unaligned_writes_keep_their_neighbours() {
        let d = MdDisk::attach(4 * BSIZE).unwrap();
        d.write_at(0, &[0xaa; 2048]).unwrap();
        d.write_at(510, &[1, 2, 3, 4]).unwrap();
        let mut b = [0u8; 8];
        d.read_at(508, &mut b).unwrap();
        assert_eq!(b, [0xaa, 0xaa, 1, 2, 3, 4, 0xaa, 0xaa]);
        assert!(d.completed() >= 4);
    }
}
