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

use core::ffi::{c_int, c_void};
use rumpglue::{BlockDevice, Error, Result};
use std::sync::{Condvar, Mutex};

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

/// One request's completion, signalled by the driver's thread.
#[derive(Default)]
struct Completion {
    done: Mutex<bool>,
    cv: Condvar,
}

unsafe extern "C" fn iodone(bp: *mut MdBuf) {
    // SAFETY: b_private is the Completion the submitter waits on, alive
    // until it has seen `done`.
    let c = unsafe { &*((*bp).b_private as *const Completion) };
    *c.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
    c.cv.notify_all();
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

    /// Whole-block transfer through the driver's strategy routine.
    fn strategy(&self, read: bool, blkno: i64, buf: *mut u8, len: usize) -> Result<()> {
        let c = Completion::default();
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
        let mut done = c.done.lock().unwrap_or_else(|e| e.into_inner());
        while !*done {
            done = c.cv.wait(done).unwrap_or_else(|e| e.into_inner());
        }
        drop(done);
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
        let mut staged = None;
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
