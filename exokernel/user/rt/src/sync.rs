//! Locks for the threads of one process, so that drivers, servers and the
//! POSIX library hold no `unsafe` of their own for shared state.
//!
//! [`SpinLock`] spins on an atomic flag and gives the processor away
//! between tries (`yield`), so a holder that was preempted gets to
//! finish: right for short critical sections. [`Mutex`] and [`Condvar`]
//! block: a waiter parks on a notification of its own (made from the
//! process's budget the first time it waits) until the holder, or a
//! notifier, signals it; a signal sent before the wait is kept by the
//! notification, so no wake-up is lost. A process without a budget to
//! make notifications from falls back to yielding.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, Ordering};

/// A value behind a yielding spin lock; usable in a `static`.
pub struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through a guard, and the flag allows
// one guard at a time; `T: Send` because another thread may take it.
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    /// An unlocked lock around `value`.
    pub const fn new(value: T) -> Self {
        SpinLock { locked: AtomicBool::new(false), value: UnsafeCell::new(value) }
    }

    /// Waits for the lock; the value is locked while the guard lives.
    pub fn lock(&self) -> SpinGuard<'_, T> {
        while self.locked.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            crate::sys::yield_now();
        }
        SpinGuard { lock: self }
    }

    /// Runs `f` with the value locked.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut self.lock())
    }
}

/// Access to a locked value; unlocks when dropped.
pub struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while this thread holds the lock.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`; `&mut self` makes this the only borrow.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

/// Whether the calling thread blocks in [`Mutex`] and [`Condvar`] (it has,
/// or could make, a notification to park on) rather than yielding.
pub fn blocks() -> bool {
    crate::tls::parker().is_some()
}

/// The calling thread's parking place, and a way to wake it.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Parked(Option<crate::caps::Notification>);

impl Parked {
    fn me() -> Parked {
        Parked(crate::tls::parker())
    }

    /// Waits for a wake-up (or `timeout` ns); false if the time ran out.
    /// May return early: callers look again at what they wait for.
    fn park(self, timeout: u64) -> bool {
        match self.0 {
            Some(n) => n.wait(timeout) != Err(exo_abi::Error::Timeout),
            None => {
                crate::sys::yield_now();
                true
            }
        }
    }

    fn unpark(self) {
        if let Some(n) = self.0 {
            let _ = n.signal(1);
        }
    }
}

/// A blocking lock without a value, for code that pairs locking and
/// unlocking itself (a C interface, say); [`Mutex`] is the safe form.
pub struct RawMutex {
    /// 0: free; 1: held; 2: held, and someone may be parked.
    state: core::sync::atomic::AtomicU32,
    waiters: SpinLock<alloc::collections::VecDeque<Parked>>,
}

impl Default for RawMutex {
    fn default() -> Self {
        Self::new()
    }
}

impl RawMutex {
    /// A free lock.
    pub const fn new() -> Self {
        RawMutex {
            state: core::sync::atomic::AtomicU32::new(0),
            waiters: SpinLock::new(alloc::collections::VecDeque::new()),
        }
    }

    /// Takes the lock, parking while another thread holds it.
    pub fn lock(&self) {
        if self.state.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed).is_err() {
            self.lock_slow();
        }
    }

    fn lock_slow(&self) {
        let me = Parked::me();
        loop {
            self.waiters.lock().push_back(me);
            // Marking "someone may be parked" and finding it free is taking
            // it (the unlocker will wake one waiter too many, harmlessly).
            if self.state.swap(2, Ordering::Acquire) == 0 {
                self.forget(me);
                return;
            }
            me.park(exo_abi::FOREVER);
            self.forget(me);
        }
    }

    /// Takes the lock if it is free.
    pub fn try_lock(&self) -> bool {
        self.state.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed).is_ok()
    }

    /// Whether some thread holds the lock.
    pub fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) != 0
    }

    /// Takes `me` off the waiters (if an unlocker has not already).
    fn forget(&self, me: Parked) {
        let mut w = self.waiters.lock();
        if let Some(i) = w.iter().position(|p| *p == me) {
            w.remove(i);
        }
    }

    /// Lets the lock go, waking one waiter. The caller holds it.
    pub fn unlock(&self) {
        if self.state.swap(0, Ordering::Release) == 2 {
            let next = self.waiters.lock().pop_front();
            if let Some(p) = next {
                p.unpark();
            }
        }
    }
}

/// A blocking mutual-exclusion lock around a value; usable in a `static`.
pub struct Mutex<T> {
    raw: RawMutex,
    value: UnsafeCell<T>,
}

// SAFETY: as for SpinLock: one guard at a time reaches the value.
unsafe impl<T: Send> Sync for Mutex<T> {}

impl<T> Mutex<T> {
    /// An unlocked mutex around `value`.
    pub const fn new(value: T) -> Self {
        Mutex { raw: RawMutex::new(), value: UnsafeCell::new(value) }
    }

    /// Takes the lock, parking while another thread holds it.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.raw.lock();
        MutexGuard { lock: self }
    }

    /// Takes the lock if it is free.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.raw.try_lock().then_some(MutexGuard { lock: self })
    }
}

/// Access to a value behind a [`Mutex`]; unlocks when dropped.
pub struct MutexGuard<'a, T> {
    lock: &'a Mutex<T>,
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while this thread holds the lock.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`; `&mut self` makes this the only borrow.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.raw.unlock();
    }
}

/// A condition variable for [`Mutex`]: waiters park until notified.
pub struct Condvar {
    waiters: SpinLock<alloc::collections::VecDeque<Parked>>,
}

impl Default for Condvar {
    fn default() -> Self {
        Self::new()
    }
}

impl Condvar {
    /// A condition variable nobody waits on.
    pub const fn new() -> Self {
        Condvar { waiters: SpinLock::new(alloc::collections::VecDeque::new()) }
    }

    /// Releases `guard`'s lock, waits for a notification (or `timeout`
    /// ns; `FOREVER` for none) and takes the lock again; false if the
    /// time ran out. May wake early: callers check their condition in a
    /// loop, as with every condition variable.
    pub fn wait_timeout<'a, T>(&self, guard: MutexGuard<'a, T>, timeout: u64) -> (MutexGuard<'a, T>, bool) {
        let lock = guard.lock;
        core::mem::forget(guard); // unlocked and locked again by wait_raw
        let woken = self.wait_raw(&lock.raw, timeout);
        (MutexGuard { lock }, woken)
    }

    /// [`Condvar::wait_timeout`] for a [`RawMutex`] the caller holds.
    pub fn wait_raw(&self, lock: &RawMutex, timeout: u64) -> bool {
        let me = Parked::me();
        self.waiters.lock().push_back(me);
        lock.unlock();
        let woken = me.park(timeout);
        // Still queued: nobody notified us (a timeout, or an early return).
        let mut w = self.waiters.lock();
        let notified = match w.iter().position(|p| *p == me) {
            Some(i) => {
                w.remove(i);
                false
            }
            None => true,
        };
        drop(w);
        lock.lock();
        woken || notified
    }

    /// Whether any thread waits.
    pub fn has_waiters(&self) -> bool {
        !self.waiters.lock().is_empty()
    }

    /// [`Condvar::wait_timeout`] without a time limit.
    pub fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.wait_timeout(guard, exo_abi::FOREVER).0
    }

    /// Wakes the longest waiter.
    pub fn notify_one(&self) {
        let next = self.waiters.lock().pop_front();
        if let Some(p) = next {
            p.unpark();
        }
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        let all: alloc::collections::VecDeque<Parked> = core::mem::take(&mut *self.waiters.lock());
        for p in all {
            p.unpark();
        }
    }
}

/// Something that happens once (a thread ended, a request completed):
/// [`Event::wait`] blocks until [`Event::set`] has been called.
pub struct Event {
    happened: Mutex<bool>,
    cv: Condvar,
}

impl Default for Event {
    fn default() -> Self {
        Self::new()
    }
}

impl Event {
    /// An event that has not happened.
    pub const fn new() -> Self {
        Event { happened: Mutex::new(false), cv: Condvar::new() }
    }

    /// Marks it happened, waking every waiter.
    pub fn set(&self) {
        *self.happened.lock() = true;
        self.cv.notify_all();
    }

    /// Waits until it has happened.
    pub fn wait(&self) {
        let mut happened = self.happened.lock();
        while !*happened {
            happened = self.cv.wait(happened);
        }
    }
}
