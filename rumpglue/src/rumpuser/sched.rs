//! The rump kernel's upcalls (`struct rumpuser_hyperup`) and the one rule
//! built on them: give the virtual CPU back while blocking.

use alloc::boxed::Box;
use alloc::format;
use core::ffi::{c_int, c_void};
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};
use netbsd_sys::rumpuser::rumpuser_hyperup;

static HYP: AtomicPtr<rumpuser_hyperup> = AtomicPtr::new(ptr::null_mut());

/// Keeps the upcalls handed to `rumpuser_init` (a copy, as the kernel's
/// structure need not outlive the call). A second init replaces them; the
/// old copy is leaked on purpose (a thread may still be reading it).
pub(crate) fn set(hyp: &rumpuser_hyperup) {
    HYP.store(Box::into_raw(Box::new(*hyp)), Ordering::Release);
}

/// The upcalls, once the rump kernel has called `rumpuser_init`.
pub(crate) fn hyp() -> Option<&'static rumpuser_hyperup> {
    // SAFETY: set() stores leaked, never-freed boxes.
    unsafe { HYP.load(Ordering::Acquire).as_ref() }
}

/// Gives the calling thread's virtual CPU back to the rump kernel;
/// returns how many of the kernel's big locks it released, for
/// [`schedule`]. Before `rumpuser_init` there is no kernel: nothing to do.
pub(crate) fn unschedule(interlock: *mut c_void) -> c_int {
    let mut nlocks = 0;
    if let Some(f) = hyp().and_then(|h| h.hyp_backend_unschedule) {
        // SAFETY: the kernel's own upcall, called as its contract says.
        unsafe { f(0, &mut nlocks, interlock) };
    }
    nlocks
}

/// Takes a virtual CPU again after [`unschedule`].
pub(crate) fn schedule(nlocks: c_int, interlock: *mut c_void) {
    if let Some(f) = hyp().and_then(|h| h.hyp_backend_schedule) {
        // SAFETY: the kernel's own upcall.
        unsafe { f(nlocks, interlock) };
    }
}

/// Runs `f`, which may block on the host, without holding the CPU.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    let n = unschedule(ptr::null_mut());
    let r = f();
    schedule(n, ptr::null_mut());
    r
}

/// Makes the calling host thread (a hypercall worker) known to the rump
/// kernel with an lwp of its own, as the kernel requires of threads that
/// call back into it.
pub(crate) fn adopt_worker() {
    if let Some(h) = hyp() {
        // SAFETY: the kernel's upcalls, in the order its contract asks:
        // schedule, make an lwp for this thread, unschedule.
        unsafe {
            if let Some(s) = h.hyp_schedule {
                s();
            }
            if let Some(n) = h.hyp_lwproc_newlwp {
                let rv = n(0);
                if rv != 0 {
                    super::sys::fatal(&format!("hyp_lwproc_newlwp failed for a bio worker: {rv}"));
                }
            }
            if let Some(u) = h.hyp_unschedule {
                u();
            }
        }
    }
}
