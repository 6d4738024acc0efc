//! rumpglue: what a driver or server may ask of "the host".
//!
//! Drivers and file/network servers are written against these traits and
//! nothing else, so the same code runs as an ExoV6 user process (the
//! exokernel backend turns each call into capability calls: memory
//! objects, threads, notifications, the block and console protocols) and
//! as a sandboxed Linux process (the [`host`] backend turns them into
//! Linux system calls). The split follows NetBSD's rumpuser(3) hypercall
//! interface, which will sit on top of these traits (see
//! `docs/rumpglue.md` for the mapping): memory, threads and
//! synchronisation, clocks, block I/O, console, randomness.
//!
//! The crate is `no_std`; the host backend needs `std` (feature `host`).
#![cfg_attr(not(any(test, feature = "host")), no_std)]
#![warn(missing_docs)]

extern crate alloc;

pub mod errno;
#[cfg(feature = "exo")]
pub mod exo;
#[cfg(feature = "host")]
pub mod host;
#[cfg(any(feature = "rumpuser", feature = "rumpuser-exo"))]
pub mod rumpuser;

use core::fmt;

/// Everything that can go wrong in a hypercall, as an errno-like code so
/// that the rumpuser(3) layer can hand it on unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Out of memory or another resource.
    NoMemory,
    /// An offset or length outside the device or buffer.
    OutOfRange,
    /// The device or object does not allow this (e.g. writing a read-only
    /// image).
    ReadOnly,
    /// The underlying I/O failed; the NetBSD errno ([`errno`]; host
    /// backends translate their own).
    Io(i32),
    /// The operation did not finish in time.
    TimedOut,
    /// Not supported by this backend.
    Unsupported,
}

impl Error {
    /// The NetBSD errno for this error (what rumpuser(3) returns).
    pub fn errno(self) -> i32 {
        match self {
            Error::NoMemory => errno::ENOMEM,
            Error::OutOfRange => errno::EINVAL,
            Error::ReadOnly => errno::EROFS,
            Error::Io(e) => e,
            Error::TimedOut => errno::ETIMEDOUT,
            Error::Unsupported => errno::EOPNOTSUPP,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoMemory => f.write_str("out of memory"),
            Error::OutOfRange => f.write_str("offset or length out of range"),
            Error::ReadOnly => f.write_str("read-only"),
            Error::Io(e) => write!(f, "I/O error (errno {e})"),
            Error::TimedOut => f.write_str("timed out"),
            Error::Unsupported => f.write_str("not supported here"),
        }
    }
}

impl core::error::Error for Error {}

/// A result of a hypercall.
pub type Result<T> = core::result::Result<T, Error>;

/// A block device: a disk image, a partition of one, or a virtio-blk
/// device. Offsets are bytes; implementations check every range.
pub trait BlockDevice: Send + Sync {
    /// Size in bytes.
    fn size(&self) -> u64;
    /// Reads exactly `buf.len()` bytes at `offset`.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()>;
    /// Writes all of `buf` at `offset`.
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()>;
    /// Whether writes are allowed.
    fn writable(&self) -> bool;
    /// Makes written data durable.
    fn flush(&self) -> Result<()>;
}

/// A window onto part of another block device (a partition).
pub struct Slice<D> {
    inner: D,
    start: u64,
    len: u64,
}

impl<D: BlockDevice> Slice<D> {
    /// `len` bytes of `inner` from `start`; fails if that is not inside it.
    pub fn new(inner: D, start: u64, len: u64) -> Result<Slice<D>> {
        match start.checked_add(len) {
            Some(end) if end <= inner.size() => Ok(Slice { inner, start, len }),
            _ => Err(Error::OutOfRange),
        }
    }

    fn check(&self, offset: u64, n: usize) -> Result<u64> {
        match offset.checked_add(n as u64) {
            Some(end) if end <= self.len => Ok(self.start + offset),
            _ => Err(Error::OutOfRange),
        }
    }
}

impl<D: BlockDevice> BlockDevice for Slice<D> {
    fn size(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let at = self.check(offset, buf.len())?;
        self.inner.read_at(at, buf)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()> {
        let at = self.check(offset, buf.len())?;
        self.inner.write_at(at, buf)
    }
    fn writable(&self) -> bool {
        self.inner.writable()
    }
    fn flush(&self) -> Result<()> {
        self.inner.flush()
    }
}

impl<D: BlockDevice + ?Sized> BlockDevice for alloc::sync::Arc<D> {
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        (**self).read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()> {
        (**self).write_at(offset, buf)
    }
    fn writable(&self) -> bool {
        (**self).writable()
    }
    fn flush(&self) -> Result<()> {
        (**self).flush()
    }
}

/// Clocks.
pub trait Clock: Send + Sync {
    /// Nanoseconds on a monotonic clock (arbitrary origin).
    fn monotonic_ns(&self) -> u64;
    /// Wall-clock time: seconds and nanoseconds since 1970.
    fn wall(&self) -> (i64, u32);
    /// Sleeps at least `ns` nanoseconds.
    fn sleep_ns(&self, ns: u64);
}

/// The console (diagnostics).
pub trait Console: Send + Sync {
    /// Writes bytes.
    fn write(&self, bytes: &[u8]);
}

/// Random bytes.
pub trait Random: Send + Sync {
    /// Fills `buf`.
    fn fill(&self, buf: &mut [u8]) -> Result<()>;
}

/// A region of memory that a device can reach by DMA.
#[derive(Debug)]
pub struct DmaRegion {
    /// Where the driver sees it.
    pub virt: *mut u8,
    /// Where the device sees it.
    pub phys: u64,
    /// Size in bytes (whole pages).
    pub len: usize,
}

/// Memory for drivers: page-aligned, DMA-able regions (virtio queues and
/// buffers). The host backend cannot give real physical addresses and says
/// so.
pub trait Memory: Send + Sync {
    /// `pages` zeroed pages.
    fn alloc_dma(&self, pages: usize) -> Result<DmaRegion>;
    /// Gives a region back.
    ///
    /// # Safety
    /// `region` came from `alloc_dma` of this object and is no longer
    /// used by the driver or the device.
    unsafe fn free_dma(&self, region: DmaRegion);
}

/// Threads and synchronisation: what rumpuser's thread, mutex, rwlock and
/// condition-variable hypercalls map onto.
pub trait Threads: Send + Sync {
    /// Starts `f` on a new thread; returns once the thread exists.
    fn spawn(&self, name: &str, f: alloc::boxed::Box<dyn FnOnce() + Send>) -> Result<ThreadHandle>;
    /// Waits for a thread started by `spawn`.
    fn join(&self, t: ThreadHandle) -> Result<()>;
    /// Gives up the processor.
    fn yield_now(&self);
}

/// A started thread.
#[derive(Debug)]
pub struct ThreadHandle(pub u64);

/// All hypercalls, bundled: what a server receives at start-up.
pub struct Host<'a> {
    /// Clocks.
    pub clock: &'a dyn Clock,
    /// Console.
    pub console: &'a dyn Console,
    /// Randomness.
    pub random: &'a dyn Random,
    /// DMA memory.
    pub memory: &'a dyn Memory,
    /// Threads.
    pub threads: &'a dyn Threads,
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Ram(std::sync::Mutex<Vec<u8>>);

    impl BlockDevice for Ram {
        fn size(&self) -> u64 {
            self.0.lock().unwrap().len() as u64
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
            let d = self.0.lock().unwrap();
            let o = offset as usize;
            buf.copy_from_slice(d.get(o..o + buf.len()).ok_or(Error::OutOfRange)?);
            Ok(())
        }
        fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()> {
            let mut d = self.0.lock().unwrap();
            let o = offset as usize;
            d.get_mut(o..o + buf.len()).ok_or(Error::OutOfRange)?.copy_from_slice(buf);
            Ok(())
        }
        fn writable(&self) -> bool {
            true
        }
        fn flush(&self) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn slices_stay_inside() {
        let ram = alloc::sync::Arc::new(Ram(std::sync::Mutex::new((0..=255u8).collect())));
        assert!(Slice::new(ram.clone(), 250, 7).is_err());
        assert!(Slice::new(ram.clone(), u64::MAX, 2).is_err());
        let s = Slice::new(ram.clone(), 16, 16).unwrap();
        let mut b = [0u8; 4];
        s.read_at(12, &mut b).unwrap();
        assert_eq!(b, [28, 29, 30, 31]);
        assert_eq!(s.read_at(13, &mut b), Err(Error::OutOfRange));
        assert_eq!(s.read_at(u64::MAX, &mut b), Err(Error::OutOfRange));
        s.write_at(0, &[9, 9]).unwrap();
        let mut c = [0u8; 2];
        ram.read_at(16, &mut c).unwrap();
        assert_eq!(c, [9, 9]);
        assert_eq!(s.write_at(15, &[1, 2]), Err(Error::OutOfRange));
    }

    #[test]
    fn errnos_are_netbsd_values() {
        assert_eq!(Error::NoMemory.errno(), 12);
        assert_eq!(Error::ReadOnly.errno(), 30);
        assert_eq!(Error::Io(5).errno(), 5);
    }
}
