//! The system-call proxy (rump_sp(7)), which lets remote client processes
//! make system calls in a rump kernel over a socket: ExoV6 gives clients
//! their own server processes instead, so a rump kernel asking to serve
//! remote clients is told the facility is not there (EOPNOTSUPP), on
//! every platform.

use super::sys::fatal;
use crate::errno::EOPNOTSUPP;
use core::ffi::{c_char, c_int, c_void};

/// Not supported: EOPNOTSUPP.
#[no_mangle]
pub extern "C" fn rumpuser_sp_init(
    _url: *const c_char,
    _ostype: *const c_char,
    _osrelease: *const c_char,
    _machine: *const c_char,
) -> c_int {
    EOPNOTSUPP
}

/// Not supported (no remote clients exist): EOPNOTSUPP.
#[no_mangle]
pub extern "C" fn rumpuser_sp_copyin(
    _arg: *mut c_void,
    _raddr: *const c_void,
    _laddr: *mut c_void,
    _len: usize,
) -> c_int {
    EOPNOTSUPP
}

/// Not supported: EOPNOTSUPP.
#[no_mangle]
pub extern "C" fn rumpuser_sp_copyinstr(
    _arg: *mut c_void,
    _raddr: *const c_void,
    _laddr: *mut c_void,
    _lenp: *mut usize,
) -> c_int {
    EOPNOTSUPP
}

/// Not supported: EOPNOTSUPP.
#[no_mangle]
pub extern "C" fn rumpuser_sp_copyout(
    _arg: *mut c_void,
    _laddr: *const c_void,
    _raddr: *mut c_void,
    _dlen: usize,
) -> c_int {
    EOPNOTSUPP
}

/// Not supported: EOPNOTSUPP.
#[no_mangle]
pub extern "C" fn rumpuser_sp_copyoutstr(
    _arg: *mut c_void,
    _laddr: *const c_void,
    _raddr: *mut c_void,
    _dlen: *mut usize,
) -> c_int {
    EOPNOTSUPP
}

/// Not supported: EOPNOTSUPP.
#[no_mangle]
pub extern "C" fn rumpuser_sp_anonmmap(_arg: *mut c_void, _howmuch: usize, _addr: *mut *mut c_void) -> c_int {
    EOPNOTSUPP
}

/// Not supported: EOPNOTSUPP.
#[no_mangle]
pub extern "C" fn rumpuser_sp_raise(_arg: *mut c_void, _signo: c_int) -> c_int {
    EOPNOTSUPP
}

/// Nothing to end: no proxy client can exist. A call means the kernel
/// believes one does, which is a bug.
#[no_mangle]
pub extern "C" fn rumpuser_sp_fini(_arg: *mut c_void) {
    fatal("rumpuser_sp_fini without a system-call proxy client");
}
