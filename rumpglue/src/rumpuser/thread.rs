//! Threads and the current lwp.

use super::sched;
use super::sys::{self, fatal};
use crate::errno::EINVAL;
use alloc::boxed::Box;
use alloc::collections::BTreeSet;
use alloc::format;
use core::ffi::{c_char, c_int, c_void, CStr};
use netbsd_sys::rumpuser::{self as h, lwp};

type Body = unsafe extern "C" fn(*mut c_void) -> *mut c_void;

/// What a new thread starts from (the host shim's `rumpglue_thread_start`
/// reads the same layout).
#[repr(C)]
pub(crate) struct Start {
    pub(crate) fun: Body,
    pub(crate) arg: *mut c_void,
    pub(crate) name: [u8; 16],
}

/// Starts `fun(arg)` on a new thread. When `mustjoin`, `*cookie` names it
/// for `rumpuser_thread_join`. Priority and CPU index are hints this
/// backend does not use (one run queue).
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
    // The new thread names itself from this block (15 bytes, as hosts
    // keep them).
    let mut start = Box::new(Start { fun, arg, name: [0; 16] });
    if !thrname.is_null() {
        // SAFETY: the caller's promise.
        let name = unsafe { CStr::from_ptr(thrname) }.to_bytes();
        let n = name.len().min(15);
        start.name[..n].copy_from_slice(&name[..n]);
    }
    match sys::spawn(start, mustjoin != 0) {
        Ok(c) => {
            if mustjoin != 0 {
                // SAFETY: the caller's promise.
                unsafe { *cookie = c };
            }
            0
        }
        Err(e) => e,
    }
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
    // SAFETY: the caller's promise.
    sched::blocking(|| unsafe { sys::join(cookie) })
}

/// The lwps the kernel has announced (CREATE) and not yet retired.
static LWPS: sys::Locked<BTreeSet<usize>> = sys::Locked::new(BTreeSet::new());

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
            if !LWPS.with(|s| s.insert(l as usize)) {
                fatal(&format!("RUMPUSER_LWP_CREATE: lwp {l:p} exists already"));
            }
        }
        h::rumplwpop_RUMPUSER_LWP_DESTROY => {
            if !LWPS.with(|s| s.remove(&(l as usize))) {
                fatal(&format!("RUMPUSER_LWP_DESTROY: lwp {l:p} does not exist"));
            }
        }
        h::rumplwpop_RUMPUSER_LWP_SET => {
            if !LWPS.with(|s| s.contains(&(l as usize))) {
                fatal(&format!("RUMPUSER_LWP_SET: lwp {l:p} was never created"));
            }
            let mine = sys::curlwp();
            if !mine.is_null() {
                fatal(&format!("RUMPUSER_LWP_SET: this thread has lwp {mine:p} already"));
            }
            sys::set_curlwp(l);
        }
        h::rumplwpop_RUMPUSER_LWP_CLEAR => {
            let mine = sys::curlwp();
            if mine != l {
                fatal(&format!("RUMPUSER_LWP_CLEAR: lwp {l:p} is not this thread's ({mine:p})"));
            }
            sys::set_curlwp(core::ptr::null_mut());
        }
        _ => fatal(&format!("rumpuser_curlwpop: unknown operation {op}")),
    }
}

/// The calling thread's lwp, or NULL.
#[no_mangle]
pub extern "C" fn rumpuser_curlwp() -> *mut lwp {
    sys::curlwp()
}
