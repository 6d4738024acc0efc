//! The exokernel backend: rumpglue's hypercalls as ExoV6 capability
//! calls, for drivers and servers running as ExoV6 user processes.
//!
//! - [`Clock`]: the kernel's monotonic clock; wall time counts from
//!   2000-01-01 plus the time since boot (ExoV6 has no wall clock yet).
//! - [`Dma`]: DMA memory from the process's untyped budget, physically
//!   contiguous, mapped from [`DMA_VA`] (regions given back are kept
//!   mapped for the next request of the same size).
//! - [`BlockClient`]: a block device over the block protocol
//!   (`exo_protocols::block`) to a block driver, retried on a driver the
//!   supervisor restarted.
//! - [`Console`]: the kernel console.
//!
//! Threads, locks and the rest of rumpuser(3) on ExoV6 are to come (the
//! rump issue); what is here is what the drivers and the file server use.

mod block;
mod dma;

pub use block::BlockClient;
pub use dma::{Dma, DMA, DMA_VA};

/// ExoV6's clock.
pub struct Clock;

/// The one clock.
pub static CLOCK: Clock = Clock;

/// 2000-01-01T00:00:00Z in seconds since 1970.
const Y2K: i64 = 946_684_800;

impl crate::Clock for Clock {
    fn monotonic_ns(&self) -> u64 {
        exo_rt::sys::clock()
    }
    fn wall(&self) -> (i64, u32) {
        let ns = exo_rt::sys::clock();
        (Y2K + (ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as u32)
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
