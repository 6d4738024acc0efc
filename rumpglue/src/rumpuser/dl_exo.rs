//! Loading rump components and daemon support on ExoV6.
//!
//! A rump kernel in an ExoV6 program is linked in statically, whole: it
//! finds its built-in modules and components through its own link sets,
//! so the bootstrap has nothing to add (the Linux version walks shared
//! objects the kernel cannot see). ExoV6 programs are started by the root
//! task and never fork: "going to the background" is already done.

use core::ffi::c_int;
use netbsd_sys::rumpuser as h;

/// Nothing to hand over: everything is linked into the program, where the
/// kernel walks its own link sets.
#[no_mangle]
pub extern "C" fn rumpuser_dl_bootstrap(
    _domodinit: h::rump_modinit_fn,
    _symload: h::rump_symload_fn,
    _compload: h::rump_compload_fn,
) {
}

/// Already in the background (the root task started this program): 0.
#[no_mangle]
pub extern "C" fn rumpuser_daemonize_begin() -> c_int {
    0
}

/// Nobody waits for the report: 0.
#[no_mangle]
pub extern "C" fn rumpuser_daemonize_done(_error: c_int) -> c_int {
    0
}
