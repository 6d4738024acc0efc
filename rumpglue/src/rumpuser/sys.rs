//! The host primitives the hypercalls are built from: a mutex, a
//! condition variable on the monotonic clock, and a fatal-error exit.
//! This file is what an exokernel backend replaces (a mutex and a
//! condition variable over notifications, the clock from the timer
//! capability).

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;

/// Ends the process: a hypercall was used in a way the interface forbids
/// (a rump kernel bug) or the host failed where it cannot.
pub(crate) fn fatal(what: &str) -> ! {
    super::misc::console_write(format!("rumpuser: fatal: {what}\n").as_bytes());
    std::process::abort()
}

fn check(rv: i32, what: &str) {
    if rv != 0 {
        fatal(&format!("{what}: {}", std::io::Error::from_raw_os_error(rv)));
    }
}

/// A pthread mutex that reports misuse (unlocking one not held).
pub(crate) struct RawMutex(UnsafeCell<libc::pthread_mutex_t>);

// SAFETY: a pthread mutex is made to be shared between threads; it is
// only touched through pthread calls and never moved after init (it lives
// in a Box).
unsafe impl Send for RawMutex {}
// SAFETY: as above.
unsafe impl Sync for RawMutex {}

impl RawMutex {
    pub(crate) fn new() -> Box<RawMutex> {
        let m = Box::new(RawMutex(UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER)));
        let mut attr = MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        // SAFETY: the attribute object is initialised before use and
        // destroyed after; the mutex is in its final place (the Box).
        unsafe {
            check(libc::pthread_mutexattr_init(attr.as_mut_ptr()), "pthread_mutexattr_init");
            check(
                libc::pthread_mutexattr_settype(attr.as_mut_ptr(), libc::PTHREAD_MUTEX_ERRORCHECK),
                "pthread_mutexattr_settype",
            );
            check(libc::pthread_mutex_init(m.0.get(), attr.as_ptr()), "pthread_mutex_init");
            libc::pthread_mutexattr_destroy(attr.as_mut_ptr());
        }
        m
    }

    pub(crate) fn lock(&self) {
        // SAFETY: an initialised mutex.
        check(unsafe { libc::pthread_mutex_lock(self.0.get()) }, "mutex lock");
    }

    pub(crate) fn try_lock(&self) -> bool {
        // SAFETY: an initialised mutex.
        unsafe { libc::pthread_mutex_trylock(self.0.get()) == 0 }
    }

    pub(crate) fn unlock(&self) {
        // SAFETY: an initialised mutex; the error-checking type reports an
        // unlock by a thread that does not hold it.
        check(unsafe { libc::pthread_mutex_unlock(self.0.get()) }, "mutex unlock");
    }
}

impl Drop for RawMutex {
    fn drop(&mut self) {
        // SAFETY: an initialised mutex nobody can reach any more.
        check(unsafe { libc::pthread_mutex_destroy(self.0.get()) }, "mutex destroy (still held?)");
    }
}

/// A pthread condition variable whose timed waits use CLOCK_MONOTONIC.
pub(crate) struct RawCond(UnsafeCell<libc::pthread_cond_t>);

// SAFETY: as for RawMutex.
unsafe impl Send for RawCond {}
// SAFETY: as for RawMutex.
unsafe impl Sync for RawCond {}

impl RawCond {
    pub(crate) fn new() -> Box<RawCond> {
        let c = Box::new(RawCond(UnsafeCell::new(libc::PTHREAD_COND_INITIALIZER)));
        let mut attr = MaybeUninit::<libc::pthread_condattr_t>::uninit();
        // SAFETY: as in RawMutex::new.
        unsafe {
            check(libc::pthread_condattr_init(attr.as_mut_ptr()), "pthread_condattr_init");
            check(
                libc::pthread_condattr_setclock(attr.as_mut_ptr(), libc::CLOCK_MONOTONIC),
                "pthread_condattr_setclock",
            );
            check(libc::pthread_cond_init(c.0.get(), attr.as_ptr()), "pthread_cond_init");
            libc::pthread_condattr_destroy(attr.as_mut_ptr());
        }
        c
    }

    /// Waits; `m` must be held by the caller.
    pub(crate) fn wait(&self, m: &RawMutex) {
        // SAFETY: both initialised; the caller holds `m`.
        check(unsafe { libc::pthread_cond_wait(self.0.get(), m.0.get()) }, "cond wait");
    }

    /// Waits until `deadline` (monotonic nanoseconds); true if it passed.
    pub(crate) fn wait_until(&self, m: &RawMutex, deadline: u64) -> bool {
        let ts = libc::timespec { tv_sec: (deadline / 1_000_000_000) as _, tv_nsec: (deadline % 1_000_000_000) as _ };
        // SAFETY: both initialised; the caller holds `m`.
        match unsafe { libc::pthread_cond_timedwait(self.0.get(), m.0.get(), &ts) } {
            0 => false,
            libc::ETIMEDOUT => true,
            e => {
                check(e, "cond timedwait");
                false
            }
        }
    }

    pub(crate) fn signal(&self) {
        // SAFETY: initialised.
        check(unsafe { libc::pthread_cond_signal(self.0.get()) }, "cond signal");
    }

    pub(crate) fn broadcast(&self) {
        // SAFETY: initialised.
        check(unsafe { libc::pthread_cond_broadcast(self.0.get()) }, "cond broadcast");
    }
}

impl Drop for RawCond {
    fn drop(&mut self) {
        // SAFETY: initialised and unreachable.
        unsafe { libc::pthread_cond_destroy(self.0.get()) };
    }
}

/// Nanoseconds on CLOCK_MONOTONIC (the clock RawCond deadlines use).
pub(crate) fn monotonic_ns() -> u64 {
    let (s, ns) = clock(libc::CLOCK_MONOTONIC);
    s as u64 * 1_000_000_000 + ns as u64
}

/// Reads a host clock.
pub(crate) fn clock(id: libc::clockid_t) -> (i64, i64) {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec to write.
    unsafe { libc::clock_gettime(id, &mut ts) };
    (ts.tv_sec, ts.tv_nsec)
}
