//! The exokernel backend: rumpglue's hypercalls as ExoV6 capability
//! calls, for drivers and servers running as ExoV6 user processes.
//!
//! - [`Clock`]: the kernel's monotonic clock, and its wall clock (the
//!   real-time clock read at boot).
//! - [`Dma`]: DMA memory from the process's untyped budget, physically
//!   contiguous, mapped from [`DMA_VA`] (regions given back are kept
//!   mapped for the next request of the same size).
//! - [`BlockClient`]: a block device over the block protocol
//!   (`exo_protocols::block`) to a block driver, retried on a driver the
//!   supervisor restarted.
//! - [`Console`]: the kernel console.
//! - [`Random`]: the kernel's random bit generator (`random` system call).
//! - [`Threads`]: exo-rt threads, joinable; they block in exo-rt's
//!   `Mutex` and `Condvar` on notifications of their own, and each has
//!   thread-local storage (the kernel keeps an FS base per thread).
//!
//! The rumpuser(3) C ABI on this backend is to come (the rump issue).

mod block;
mod dma;

use alloc::boxed::Box;
use alloc::vec::Vec;
use exo_rt::sync::SpinLock;

pub use block::BlockClient;
pub use dma::{Dma, DMA, DMA_VA};

/// The kernel's random bit generator.
pub struct Random;

impl crate::Random for Random {
    fn fill(&self, buf: &mut [u8]) -> crate::Result<()> {
        exo_rt::sys::random(buf).map_err(|_| crate::Error::Io(crate::errno::EIO))
    }
}

/// Threads of this process, joinable by the handle `spawn` returns.
pub struct Threads {
    running: SpinLock<Vec<exo_rt::thread::JoinHandle>>,
}

/// The process's threads.
pub static THREADS: Threads = Threads { running: SpinLock::new(Vec::new()) };

impl crate::Threads for Threads {
    fn spawn(&self, _name: &str, f: Box<dyn FnOnce() + Send>) -> crate::Result<crate::ThreadHandle> {
        let h = exo_rt::thread::spawn_joinable(f).map_err(|_| crate::Error::NoMemory)?;
        let id = h.id();
        self.running.lock().push(h);
        Ok(crate::ThreadHandle(id))
    }

    fn join(&self, t: crate::ThreadHandle) -> crate::Result<()> {
        let h = {
            let mut running = self.running.lock();
            let i = running.iter().position(|h| h.id() == t.0).ok_or(crate::Error::OutOfRange)?;
            running.swap_remove(i)
        };
        h.join();
        Ok(())
    }

    fn yield_now(&self) {
        exo_rt::sys::yield_now();
    }
}

/// ExoV6's clock.
pub struct Clock;

/// The one clock.
pub static CLOCK: Clock = Clock;

impl crate::Clock for Clock {
    fn monotonic_ns(&self) -> u64 {
        exo_rt::sys::clock()
    }
    fn wall(&self) -> (i64, u32) {
        let ns = exo_rt::sys::wall_clock();
        ((ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as u32)
    }
    fn sleep_ns(&self, ns: u64) {
        exo_rt::sys::sleep(ns);
    }
}

/// The kernel console.
pub struct Console;

impl crate::Console for Console {
    fn write(&self, bytes: &[u8]) {
        for chunk in bytes.chunks(512) {
            let _ = exo_rt::caps::CONSOLE.write(chunk);
        }
    }
}
