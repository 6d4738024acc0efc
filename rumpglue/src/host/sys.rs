//! Clock, console, randomness, memory and threads on Linux.

use crate::{Clock, Console, DmaRegion, Error, Memory, Random, Result, ThreadHandle, Threads};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Clocks from std (CLOCK_MONOTONIC and CLOCK_REALTIME underneath).
pub struct HostClock;

fn origin() -> Instant {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

impl Clock for HostClock {
    fn monotonic_ns(&self) -> u64 {
        origin().elapsed().as_nanos() as u64
    }
    fn wall(&self) -> (i64, u32) {
        let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        (d.as_secs() as i64, d.subsec_nanos())
    }
    fn sleep_ns(&self, ns: u64) {
        std::thread::sleep(Duration::from_nanos(ns));
    }
}

/// The console is standard error.
pub struct HostConsole;

impl Console for HostConsole {
    fn write(&self, bytes: &[u8]) {
        use std::io::Write;
        let _ = std::io::stderr().write_all(bytes);
    }
}

/// Randomness from the kernel's getrandom(2).
pub struct HostRandom;

impl Random for HostRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<()> {
        let mut done = 0;
        while done < buf.len() {
            // SAFETY: getrandom writes at most `len` bytes into the buffer
            // we pass, which is valid for that many.
            let n = unsafe { libc::getrandom(buf[done..].as_mut_ptr().cast(), buf.len() - done, 0) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(Error::Io(crate::errno::from_io(&e)));
            }
            done += n as usize;
        }
        Ok(())
    }
}

/// Page-aligned heap memory. A Linux process cannot learn physical
/// addresses, so `phys` is the virtual address: fine for devices emulated
/// in-process (tests), useless for real DMA, which hosted mode never does.
pub struct HostMemory;

const PAGE: usize = 4096;

impl Memory for HostMemory {
    fn alloc_dma(&self, pages: usize) -> Result<DmaRegion> {
        let len = pages.checked_mul(PAGE).filter(|l| *l > 0).ok_or(Error::OutOfRange)?;
        let layout = std::alloc::Layout::from_size_align(len, PAGE).map_err(|_| Error::OutOfRange)?;
        // SAFETY: the layout has a non-zero size.
        let virt = unsafe { std::alloc::alloc_zeroed(layout) };
        if virt.is_null() {
            return Err(Error::NoMemory);
        }
        Ok(DmaRegion { virt, phys: virt as u64, len })
    }

    unsafe fn free_dma(&self, region: DmaRegion) {
        let layout = std::alloc::Layout::from_size_align(region.len, PAGE).expect("valid when allocated");
        // SAFETY: the caller guarantees the region came from alloc_dma
        // (same layout) and is no longer in use.
        unsafe { std::alloc::dealloc(region.virt, layout) };
    }
}

/// Threads are std threads.
#[derive(Default)]
pub struct HostThreads {
    next: Mutex<u64>,
    running: Mutex<HashMap<u64, std::thread::JoinHandle<()>>>,
}

impl Threads for HostThreads {
    fn spawn(&self, name: &str, f: Box<dyn FnOnce() + Send>) -> Result<ThreadHandle> {
        let h = std::thread::Builder::new().name(name.into()).spawn(f).map_err(|_| Error::NoMemory)?;
        let mut next = self.next.lock().expect("not poisoned");
        *next += 1;
        self.running.lock().expect("not poisoned").insert(*next, h);
        Ok(ThreadHandle(*next))
    }
    fn join(&self, t: ThreadHandle) -> Result<()> {
        let h = self.running.lock().expect("not poisoned").remove(&t.0).ok_or(Error::OutOfRange)?;
        h.join().map_err(|_| Error::Io(crate::errno::EINTR))
    }
    fn yield_now(&self) {
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[test]
    fn clocks_move_forward() {
        let c = HostClock;
        let a = c.monotonic_ns();
        c.sleep_ns(2_000_000);
        let b = c.monotonic_ns();
        assert!(b >= a + 2_000_000, "{a} -> {b}");
        assert!(c.wall().0 > 1_600_000_000);
    }

    #[test]
    fn random_bytes_differ() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        HostRandom.fill(&mut a).unwrap();
        HostRandom.fill(&mut b).unwrap();
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 32]);
    }

    #[test]
    fn dma_memory_is_zeroed_and_aligned() {
        let r = HostMemory.alloc_dma(3).unwrap();
        assert_eq!(r.len, 3 * PAGE);
        assert_eq!(r.virt as usize % PAGE, 0);
        // SAFETY: the region is 3 pages long and ours.
        assert!(unsafe { std::slice::from_raw_parts(r.virt, r.len) }.iter().all(|b| *b == 0));
        // SAFETY: allocated above, unused from here on.
        unsafe { HostMemory.free_dma(r) };
        assert!(HostMemory.alloc_dma(0).is_err());
    }

    #[test]
    fn threads_run_and_join() {
        let t = HostThreads::default();
        let n = Arc::new(AtomicU64::new(0));
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let n = n.clone();
                t.spawn(
                    "worker",
                    Box::new(move || {
                        n.fetch_add(i + 1, Ordering::SeqCst);
                    }),
                )
                .unwrap()
            })
            .collect();
        for h in handles {
            t.join(h).unwrap();
        }
        assert_eq!(n.load(Ordering::SeqCst), 10);
        assert_eq!(t.join(ThreadHandle(999)), Err(Error::OutOfRange));
    }
}
