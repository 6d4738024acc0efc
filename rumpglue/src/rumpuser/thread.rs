//! Threads and the current lwp.

use super::sched;
use super::sys::fatal;
use crate::errno::{self, EAGAIN, EINVAL};
use core::cell::Cell;
use core::ffi::{c_char, c_int, c_void, CStr};
use netbsd_sys::rumpuser::{self as h, lwp};
use std::collections::BTreeSet;
use std::sync::Mutex;

type Body = unsafe extern "C" fn(*mut c_void) -> *mut c_void;

/// What the shim's `rumpglue_thread_start` receives (same layout).
#[repr(C)]
struct Start {
    fun: Body,
    arg: *mut c_void,
    name: [u8; 16],
}

// SAFETY: the shim's thread entry, with this signature; it is only ever
// handed to pthread_create, never called from Rust.
unsafe extern "C" {
    safe fn rumpglue_thread_start(start: *mut c_void) -> *mut c_void;
}

/// Starts `fun(arg)` on a new host thread. When `mustjoin`, `*cookie`
/// names it for `rumpuser_thread_join`. Priority and CPU index are hints
/// the host backend does not use (one run queue).
///
/// # Safety
/// `fun` is a thread body, `thrname` NULL or a string, `cookie` valid for
/// a write when `mustjoin`.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_thread_create(
    fun: Option<Body>,
    arg: *mut c_void,
    thrname: *const c_char,
    mustjoin: c_int,
    _priority: c_int,
    _cpuidx: c_int,
    cookie: *mut *mut c_void,
) -> c_int {
    let Some(fun) = fun else { return EINVAL };
    if mustjoin != 0 && cookie.is_null() {
        return EINVAL;
    }
    // The new thread names itself (see the shim) from this block.
    let mut start = Box::new(Start { fun, arg, name: [0; 16] });
    if !thrname.is_null() {
        // Host thread names hold 15 bytes.
        // SAFETY: the caller's promise.
        let name = unsafe { CStr::from_ptr(thrname) }.to_bytes();
        let n = name.len().min(15);
        start.name[..n].copy_from_slice(&name[..n]);
    }
    let start = Box::into_raw(start);
    let mut attr = core::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
    let mut tid: libc::pthread_t = 0;
    // SAFETY: the attribute object is initialised, used and destroyed
    // here; the thread starts in the shim's C function, which takes
    // ownership of `start`.
    let rv = unsafe {
        libc::pthread_attr_init(attr.as_mut_ptr());
        let detach = if mustjoin != 0 { libc::PTHREAD_CREATE_JOINABLE } else { libc::PTHREAD_CREATE_DETACHED };
        libc::pthread_attr_setdetachstate(attr.as_mut_ptr(), detach);
        let mut rv = libc::EAGAIN;
        // A host short of threads for a moment: try a few times.
        for _ in 0..10 {
            rv = libc::pthread_create(&mut tid, attr.as_ptr(), rumpglue_thread_start, start.cast());
            if rv != libc::EAGAIN {
                break;
            }
            libc::usleep(10_000);
        }
        libc::pthread_attr_destroy(attr.as_mut_ptr());
        rv
    };
    if rv != 0 {
        // SAFETY: no thread took it.
        drop(unsafe { Box::from_raw(start) });
        return if rv == libc::EAGAIN { EAGAIN } else { errno::from_linux(rv) };
    }
    if mustjoin != 0 {
        // SAFETY: the caller's promise.
        unsafe { *cookie = Box::into_raw(Box::new(tid)).cast() };
    }
    0
}

/// Waits, without the CPU, for a thread created with `mustjoin`.
///
/// # Safety
/// `cookie` came from `rumpuser_thread_create` and is joined once.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_thread_join(cookie: *mut c_void) -> c_int {
    if cookie.is_null() {
        return EINVAL;
    }
    // SAFETY: the caller's promise: a Box<pthread_t> we made.
    let tid = unsafe { Box::from_raw(cookie.cast::<libc::pthread_t>()) };
    // SAFETY: a joinable thread not joined before.
    let rv = sched::blocking(|| unsafe { libc::pthread_join(*tid, core::ptr::null_mut()) });
    if rv == 0 {
        0
    } else {
        errno::from_linux(rv)
    }
}

thread_local! {
    static CURLWP: Cell<*mut lwp> = const { Cell::new(core::ptr::null_mut()) };
}

/// The lwps the kernel has announced (CREATE) and not yet retired.
fn lwps() -> std::sync::MutexGuard<'static, BTreeSet<usize>> {
    static LWPS: Mutex<BTreeSet<usize>> = Mutex::new(BTreeSet::new());
    LWPS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Bookkeeping of the kernel's lwps: CREATE and DESTROY announce and
/// retire one, SET and CLEAR bind one to the calling thread. Misuse is a
/// kernel bug and ends the process with a message.
#[no_mangle]
pub extern "C" fn rumpuser_curlwpop(op: c_int, l: *mut lwp) {
    if l.is_null() {
        fatal("rumpuser_curlwpop with a NULL lwp");
    }
    match op as u32 {
        h::rumplwpop_RUMPUSER_LWP_CREATE => {
            if !lwps().insert(l as usize) {
                fatal(&format!("RUMPUSER_LWP_CREATE: lwp {l:p} exists already"));
            }
        }
        h::rumplwpop_RUMPUSER_LWP_DESTROY => {
            if !lwps().remove(&(l as usize)) {
                fatal(&format!("RUMPUSER_LWP_DESTROY: lwp {l:p} does not exist"));
            }
        }
        h::rumplwpop_RUMPUSER_LWP_SET => {
            if !lwps().contains(&(l as usize)) {
                fatal(&format!("RUMPUSER_LWP_SET: lwp {l:p} was never created"));
            }
            CURLWP.with(|c| {
                if !c.get().is_null() {
                    fatal(&format!("RUMPUSER_LWP_SET: this thread has lwp {:p} already", c.get()));
                }
                c.set(l);
            });
        }
        h::rumplwpop_RUMPUSER_LWP_CLEAR => CURLWP.with(|c| {
            if c.get() != l {
                fatal(&format!("RUMPUSER_LWP_CLEAR: lwp {l:p} is not this thread's ({:p})", c.get()));
            }
            c.set(core::ptr::null_mut());
        }),
        _ => fatal(&format!("rumpuser_curlwpop: unknown operation {op}")),
    }
}

/// The calling thread's lwp, or NULL.
#[no_mangle]
pub extern "C" fn rumpuser_curlwp() -> *mut lwp {
    CURLWP.with(Cell::get)
}
