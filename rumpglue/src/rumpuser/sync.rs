//! Mutexes, reader/writer locks and condition variables.
//!
//! The rule that matters: a thread blocked here must not hold the rump
//! kernel's virtual CPU, or the thread it waits for may never run. So a
//! blocking acquire first tries without blocking, and only if that fails
//! gives the CPU back (`sched::blocking`). Spin mutexes and the `_nowrap`
//! calls are the kernel's own scheduler's tools and never touch the CPU.

use super::sched;
use super::sys::{fatal, monotonic_ns, RawCond, RawMutex};
use super::thread::rumpuser_curlwp;
use crate::errno::{EBUSY, EINVAL, ETIMEDOUT};
use alloc::boxed::Box;
use alloc::format;
use core::cell::UnsafeCell;
use core::ffi::{c_int, c_void};
use core::ptr;
use core::sync::atomic::{AtomicI32, AtomicPtr, Ordering};
use netbsd_sys::rumpuser::{self as h, lwp, rumpuser_cv, rumpuser_mtx, rumpuser_rw};

/// A kernel mutex: a host mutex, its flags, and for RUMPUSER_MTX_KMUTEX
/// the owning lwp.
pub(crate) struct Mtx {
    raw: Box<RawMutex>,
    owner: AtomicPtr<lwp>,
    flags: u32,
}

impl Mtx {
    fn is_spin(&self) -> bool {
        self.flags & h::RUMPUSER_MTX_SPIN != 0
    }
    fn is_kmutex(&self) -> bool {
        self.flags & h::RUMPUSER_MTX_KMUTEX != 0
    }
    fn entered(&self) {
        if self.is_kmutex() {
            self.owner.store(rumpuser_curlwp(), Ordering::Relaxed);
        }
    }
    fn exiting(&self) {
        if self.is_kmutex() {
            self.owner.store(ptr::null_mut(), Ordering::Relaxed);
        }
    }
}

/// # Safety
/// `m` came from `rumpuser_mutex_init` and is not destroyed.
unsafe fn mtx<'a>(m: *mut rumpuser_mtx) -> &'a Mtx {
    // SAFETY: the caller's promise.
    unsafe { &*m.cast::<Mtx>() }
}

/// Makes a mutex (RUMPUSER_MTX_SPIN and/or RUMPUSER_MTX_KMUTEX).
///
/// # Safety
/// `mtxp` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_mutex_init(mtxp: *mut *mut rumpuser_mtx, flags: c_int) {
    let known = h::RUMPUSER_MTX_SPIN | h::RUMPUSER_MTX_KMUTEX;
    if flags as u32 & !known != 0 {
        fatal(&format!("rumpuser_mutex_init: unknown flags {flags:#x}"));
    }
    let m = Box::new(Mtx { raw: RawMutex::new(), owner: AtomicPtr::new(ptr::null_mut()), flags: flags as u32 });
    // SAFETY: the caller's promise.
    unsafe { *mtxp = Box::into_raw(m).cast() };
}

/// Takes a mutex; blocks without the CPU unless it is a spin mutex.
///
/// # Safety
/// `m` is a live mutex from `rumpuser_mutex_init`.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_mutex_enter(m: *mut rumpuser_mtx) {
    // SAFETY: the caller's promise.
    let m = unsafe { mtx(m) };
    if !m.is_spin() && !m.raw.try_lock() {
        sched::blocking(|| m.raw.lock());
    } else if m.is_spin() {
        m.raw.lock();
    }
    m.entered();
}

/// Takes a spin mutex, keeping the CPU.
///
/// # Safety
/// As for `rumpuser_mutex_enter`.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_mutex_enter_nowrap(m: *mut rumpuser_mtx) {
    // SAFETY: the caller's promise.
    let m = unsafe { mtx(m) };
    if !m.is_spin() {
        fatal("rumpuser_mutex_enter_nowrap on a mutex that is not RUMPUSER_MTX_SPIN");
    }
    m.raw.lock();
    m.entered();
}

/// Takes a mutex if free: 0, else EBUSY.
///
/// # Safety
/// As for `rumpuser_mutex_enter`.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_mutex_tryenter(m: *mut rumpuser_mtx) -> c_int {
    // SAFETY: the caller's promise.
    let m = unsafe { mtx(m) };
    if m.raw.try_lock() {
        m.entered();
        0
    } else {
        EBUSY
    }
}

/// Releases a mutex held by the calling thread.
///
/// # Safety
/// As for `rumpuser_mutex_enter`.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_mutex_exit(m: *mut rumpuser_mtx) {
    // SAFETY: the caller's promise.
    let m = unsafe { mtx(m) };
    m.exiting();
    m.raw.unlock();
}

/// Destroys a free mutex.
///
/// # Safety
/// `m` is a live, unheld mutex nobody uses afterwards.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_mutex_destroy(m: *mut rumpuser_mtx) {
    // SAFETY: the caller's promise; made by Box::into_raw in init.
    let m = unsafe { Box::from_raw(m.cast::<Mtx>()) };
    if !m.raw.try_lock() {
        fatal("rumpuser_mutex_destroy of a held mutex");
    }
    m.raw.unlock();
}

/// The lwp holding a RUMPUSER_MTX_KMUTEX mutex (NULL when free).
///
/// # Safety
/// As for `rumpuser_mutex_enter`; `lp` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_mutex_owner(m: *mut rumpuser_mtx, lp: *mut *mut lwp) {
    // SAFETY: the caller's promise.
    let m = unsafe { mtx(m) };
    if !m.is_kmutex() {
        fatal("rumpuser_mutex_owner on a mutex that is not RUMPUSER_MTX_KMUTEX");
    }
    // SAFETY: the caller's promise.
    unsafe { *lp = m.owner.load(Ordering::Relaxed) };
}

/// A reader/writer lock with the operations NetBSD's rwlocks need and
/// pthread's lack (try-upgrade, atomic downgrade). Writers are preferred:
/// once one waits, new readers wait too, so writers never starve.
struct Rw {
    lock: Box<RawMutex>,
    cv: Box<RawCond>,
    state: UnsafeCell<RwState>,
}

#[derive(Default)]
struct RwState {
    readers: u32,
    writer: bool,
    owner: usize, // the writer's lwp
    writers_waiting: u32,
}

impl Rw {
    /// Runs `f` on the state with the lock held.
    fn with<T>(&self, f: impl FnOnce(&mut RwState) -> T) -> T {
        self.lock.lock();
        // SAFETY: `lock` is held.
        let r = f(unsafe { &mut *self.state.get() });
        self.lock.unlock();
        r
    }

    fn try_take(s: &mut RwState, write: bool) -> bool {
        if write {
            if s.readers == 0 && !s.writer {
                s.writer = true;
                return true;
            }
        } else if !s.writer && s.writers_waiting == 0 {
            s.readers += 1;
            return true;
        }
        false
    }

    fn take_blocking(&self, write: bool) {
        self.lock.lock();
        // SAFETY: `lock` is held (and is released only inside wait).
        let s = unsafe { &mut *self.state.get() };
        if write {
            s.writers_waiting += 1;
        }
        while !Self::try_take(s, write) {
            self.cv.wait(&self.lock);
        }
        if write {
            s.writers_waiting -= 1;
        }
        self.lock.unlock();
    }
}

/// # Safety
/// `rw` came from `rumpuser_rw_init` and is not destroyed.
unsafe fn rwl<'a>(rw: *mut rumpuser_rw) -> &'a Rw {
    // SAFETY: the caller's promise.
    unsafe { &*rw.cast::<Rw>() }
}

fn is_writer(op: c_int) -> bool {
    match op as u32 {
        h::rumprwlock_RUMPUSER_RW_WRITER => true,
        h::rumprwlock_RUMPUSER_RW_READER => false,
        _ => fatal(&format!("rumpuser rwlock: unknown lock type {op}")),
    }
}

/// Makes a reader/writer lock.
///
/// # Safety
/// `rwp` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_rw_init(rwp: *mut *mut rumpuser_rw) {
    let rw = Box::new(Rw { lock: RawMutex::new(), cv: RawCond::new(), state: UnsafeCell::default() });
    // SAFETY: the caller's promise.
    unsafe { *rwp = Box::into_raw(rw).cast() };
}

/// Takes the lock as reader or writer, blocking without the CPU.
///
/// # Safety
/// `rw` is a live lock from `rumpuser_rw_init`.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_rw_enter(op: c_int, rw: *mut rumpuser_rw) {
    // SAFETY: the caller's promise.
    let rw = unsafe { rwl(rw) };
    let write = is_writer(op);
    if !rw.with(|s| Rw::try_take(s, write)) {
        sched::blocking(|| rw.take_blocking(write));
    }
    if write {
        let me = rumpuser_curlwp() as usize;
        rw.with(|s| s.owner = me);
    }
}

/// Takes the lock if that needs no waiting: 0, else EBUSY.
///
/// # Safety
/// As for `rumpuser_rw_enter`.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_rw_tryenter(op: c_int, rw: *mut rumpuser_rw) -> c_int {
    // SAFETY: the caller's promise.
    let rw = unsafe { rwl(rw) };
    let write = match op as u32 {
        h::rumprwlock_RUMPUSER_RW_WRITER => true,
        h::rumprwlock_RUMPUSER_RW_READER => false,
        _ => return EINVAL,
    };
    let me = rumpuser_curlwp() as usize;
    let got = rw.with(|s| {
        let got = Rw::try_take(s, write);
        if got && write {
            s.owner = me;
        }
        got
    });
    if got {
        0
    } else {
        EBUSY
    }
}

/// Turns the caller's read hold into a write hold if it is the only
/// reader (0), else EBUSY and nothing changes.
///
/// # Safety
/// As for `rumpuser_rw_enter`; the caller holds it as reader.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_rw_tryupgrade(rw: *mut rumpuser_rw) -> c_int {
    // SAFETY: the caller's promise.
    let rw = unsafe { rwl(rw) };
    let me = rumpuser_curlwp() as usize;
    rw.with(|s| {
        if s.readers == 1 && !s.writer {
            s.readers = 0;
            s.writer = true;
            s.owner = me;
            0
        } else {
            EBUSY
        }
    })
}

/// Turns the caller's write hold into a read hold, letting no writer in
/// between.
///
/// # Safety
/// As for `rumpuser_rw_enter`; the caller holds it as writer.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_rw_downgrade(rw: *mut rumpuser_rw) {
    // SAFETY: the caller's promise.
    let rw = unsafe { rwl(rw) };
    rw.with(|s| {
        if !s.writer {
            fatal("rumpuser_rw_downgrade of a lock not held as writer");
        }
        s.writer = false;
        s.owner = 0;
        s.readers = 1;
    });
    rw.cv.broadcast();
}

/// Releases the caller's hold (reader or writer).
///
/// # Safety
/// As for `rumpuser_rw_enter`; the caller holds it.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_rw_exit(rw: *mut rumpuser_rw) {
    // SAFETY: the caller's promise.
    let rw = unsafe { rwl(rw) };
    rw.with(|s| {
        if s.writer {
            s.writer = false;
            s.owner = 0;
        } else if s.readers > 0 {
            s.readers -= 1;
        } else {
            fatal("rumpuser_rw_exit of a lock nobody holds");
        }
    });
    rw.cv.broadcast();
}

/// Destroys a free lock.
///
/// # Safety
/// `rw` is live, unheld, and unused afterwards.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_rw_destroy(rw: *mut rumpuser_rw) {
    // SAFETY: the caller's promise; made by Box::into_raw in init.
    let rw = unsafe { Box::from_raw(rw.cast::<Rw>()) };
    if rw.with(|s| s.writer || s.readers > 0) {
        fatal("rumpuser_rw_destroy of a held lock");
    }
}

/// Whether the calling lwp holds the lock as writer (WRITER), or anyone
/// holds it as reader (READER: a reader's identity is not kept).
///
/// # Safety
/// As for `rumpuser_rw_enter`; `heldp` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_rw_held(op: c_int, rw: *mut rumpuser_rw, heldp: *mut c_int) {
    // SAFETY: the caller's promise.
    let rw = unsafe { rwl(rw) };
    let write = is_writer(op);
    let me = rumpuser_curlwp() as usize;
    let held = rw.with(|s| if write { s.writer && s.owner == me } else { s.readers > 0 });
    // SAFETY: the caller's promise.
    unsafe { *heldp = held as c_int };
}

/// A condition variable and its number of waiters.
struct Cv {
    raw: Box<RawCond>,
    waiters: AtomicI32,
}

/// # Safety
/// `cv` came from `rumpuser_cv_init` and is not destroyed.
unsafe fn cvr<'a>(cv: *mut rumpuser_cv) -> &'a Cv {
    // SAFETY: the caller's promise.
    unsafe { &*cv.cast::<Cv>() }
}

/// Makes a condition variable.
///
/// # Safety
/// `cvp` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_cv_init(cvp: *mut *mut rumpuser_cv) {
    let cv = Box::new(Cv { raw: RawCond::new(), waiters: AtomicI32::new(0) });
    // SAFETY: the caller's promise.
    unsafe { *cvp = Box::into_raw(cv).cast() };
}

/// Destroys a condition variable nobody waits on.
///
/// # Safety
/// `cv` is live and unused afterwards.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_cv_destroy(cv: *mut rumpuser_cv) {
    // SAFETY: the caller's promise; made by Box::into_raw in init.
    let cv = unsafe { Box::from_raw(cv.cast::<Cv>()) };
    if cv.waiters.load(Ordering::Relaxed) != 0 {
        fatal("rumpuser_cv_destroy of a condition variable with waiters");
    }
}

/// Gives the CPU back before sleeping on `cv` with `m`'s host mutex.
fn unschedule_for(m: &Mtx, mp: *mut rumpuser_mtx) -> c_int {
    let n = sched::unschedule(mp.cast::<c_void>());
    m.exiting();
    n
}

/// Takes the CPU back after the sleep, with `m` held on return. A spin
/// kernel mutex is released while the CPU is being taken and entered
/// again after: taking the CPU may wait for a thread that needs `m`
/// (the lock order is CPU first, then spin mutex).
fn reschedule_for(m: &Mtx, mp: *mut rumpuser_mtx, nlocks: c_int) {
    if m.is_spin() && m.is_kmutex() {
        m.raw.unlock();
        sched::schedule(nlocks, mp.cast::<c_void>());
        m.raw.lock();
        m.entered();
    } else {
        m.entered();
        sched::schedule(nlocks, mp.cast::<c_void>());
    }
}

/// Waits on `cv`, releasing `m` (held by the caller) and the CPU while
/// asleep; returns with both.
///
/// # Safety
/// `cv` and `m` are live; the caller holds `m`.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_cv_wait(cv: *mut rumpuser_cv, m: *mut rumpuser_mtx) {
    // SAFETY: the caller's promise.
    let (c, mx) = unsafe { (cvr(cv), mtx(m)) };
    c.waiters.fetch_add(1, Ordering::Relaxed);
    let n = unschedule_for(mx, m);
    c.raw.wait(&mx.raw);
    reschedule_for(mx, m, n);
    c.waiters.fetch_sub(1, Ordering::Relaxed);
}

/// Waits on `cv` keeping the CPU (the kernel's scheduler uses this).
///
/// # Safety
/// As for `rumpuser_cv_wait`.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_cv_wait_nowrap(cv: *mut rumpuser_cv, m: *mut rumpuser_mtx) {
    // SAFETY: the caller's promise.
    let (c, mx) = unsafe { (cvr(cv), mtx(m)) };
    c.waiters.fetch_add(1, Ordering::Relaxed);
    mx.exiting();
    c.raw.wait(&mx.raw);
    mx.entered();
    c.waiters.fetch_sub(1, Ordering::Relaxed);
}

/// As `rumpuser_cv_wait`, for at most `sec` s + `nsec` ns: 0 when woken,
/// ETIMEDOUT when the time ran out (`m` is held again either way).
///
/// # Safety
/// As for `rumpuser_cv_wait`.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_cv_timedwait(
    cv: *mut rumpuser_cv,
    m: *mut rumpuser_mtx,
    sec: i64,
    nsec: i64,
) -> c_int {
    // SAFETY: the caller's promise.
    let (c, mx) = unsafe { (cvr(cv), mtx(m)) };
    // The deadline counts from the call, before the CPU is given back
    // (which can itself take time).
    let rel = (sec.max(0) as u64).saturating_mul(1_000_000_000).saturating_add(nsec.max(0) as u64);
    let deadline = monotonic_ns().saturating_add(rel);
    c.waiters.fetch_add(1, Ordering::Relaxed);
    let n = unschedule_for(mx, m);
    let timed_out = c.raw.wait_until(&mx.raw, deadline);
    reschedule_for(mx, m, n);
    c.waiters.fetch_sub(1, Ordering::Relaxed);
    if timed_out {
        ETIMEDOUT
    } else {
        0
    }
}

/// Wakes one waiter.
///
/// # Safety
/// `cv` is live.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_cv_signal(cv: *mut rumpuser_cv) {
    // SAFETY: the caller's promise.
    unsafe { cvr(cv) }.raw.signal();
}

/// Wakes every waiter.
///
/// # Safety
/// `cv` is live.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_cv_broadcast(cv: *mut rumpuser_cv) {
    // SAFETY: the caller's promise.
    unsafe { cvr(cv) }.raw.broadcast();
}

/// How many threads wait on `cv`.
///
/// # Safety
/// `cv` is live; `waitersp` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_cv_has_waiters(cv: *mut rumpuser_cv, waitersp: *mut c_int) {
    // SAFETY: the caller's promise.
    unsafe { *waitersp = cvr(cv).waiters.load(Ordering::Relaxed) };
}
