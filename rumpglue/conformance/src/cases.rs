//! The conformance cases of csrc/suite.c, as Rust sees them: one
//! declaration for the Linux runner (tests/conformance.rs) and the ExoV6
//! program (exo/src/main.rs), which include this file. The cases about
//! host files, signals, fork and shared objects are compiled on Linux
//! only, and declared apart.

use core::ffi::{c_char, c_int};

/// A case: writes what failed into the message buffer and returns non-zero.
pub type Case = unsafe extern "C" fn(*mut c_char, usize) -> c_int;

extern "C" {
    pub fn conf_setup() -> c_int;
    pub fn conf_init_version(msg: *mut c_char, len: usize) -> c_int;
    pub fn conf_mutex_enter_unschedules(msg: *mut c_char, len: usize) -> c_int;
    pub fn conf_cv_timedwait(msg: *mut c_char, len: usize) -> c_int;
    pub fn conf_getparam(msg: *mut c_char, len: usize) -> c_int;
    pub fn conf_clocks(msg: *mut c_char, len: usize) -> c_int;
    pub fn conf_sp_unsupported(msg: *mut c_char, len: usize) -> c_int;
    pub fn conf_dprintf();
    pub fn conf_threads(msg: *mut c_char, len: usize) -> c_int;
    pub fn conf_nowrap_keeps_the_cpu(msg: *mut c_char, len: usize) -> c_int;
    pub fn conf_rwlock(msg: *mut c_char, len: usize) -> c_int;
    pub fn conf_cv_broadcast(msg: *mut c_char, len: usize) -> c_int;
    pub fn conf_curlwp(msg: *mut c_char, len: usize) -> c_int;
    pub fn conf_memory(msg: *mut c_char, len: usize) -> c_int;
}

// The cases compiled on Linux only (host files, signals, fork, shared
// objects): the ExoV6 program does not call them.
#[allow(dead_code)]
extern "C" {
    pub fn conf_bio_async(msg: *mut c_char, len: usize) -> c_int;
    pub fn conf_iov(msg: *mut c_char, len: usize) -> c_int;
    pub fn conf_random_errno_kill(msg: *mut c_char, len: usize) -> c_int;
    pub fn conf_daemonize(msg: *mut c_char, len: usize) -> c_int;
    pub fn conf_dl_bootstrap(msg: *mut c_char, len: usize) -> c_int;
}
