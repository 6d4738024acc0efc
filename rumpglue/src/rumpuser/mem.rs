//! Memory: the kernel's allocator backing store and anonymous mappings,
//! from the platform (`sys`).

use super::sys;
use crate::errno::{EINVAL, ENOMEM};
use core::ffi::{c_int, c_void};

/// Allocates `len` bytes aligned to `alignment` (0: the C default).
///
/// # Safety
/// `memp` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_malloc(len: usize, alignment: c_int, memp: *mut *mut c_void) -> c_int {
    if alignment < 0 || (alignment != 0 && (alignment as u32).count_ones() != 1) {
        return EINVAL;
    }
    let align = (alignment as usize).max(core::mem::size_of::<*mut c_void>());
    let p = sys::alloc(len, align);
    if p.is_null() {
        return ENOMEM;
    }
    // SAFETY: the caller's promise.
    unsafe { *memp = p };
    0
}

/// Frees what `rumpuser_malloc` returned.
///
/// # Safety
/// `mem` came from `rumpuser_malloc` and is not used again.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_free(mem: *mut c_void, _len: usize) {
    if !mem.is_null() {
        // SAFETY: the caller's promise.
        unsafe { sys::free(mem) };
    }
}

/// Maps `size` bytes of fresh zeroed memory aligned to `1 << alignbit`
/// (at least a page), near `prefaddr` if the platform can.
///
/// # Safety
/// `memp` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_anonmmap(
    prefaddr: *mut c_void,
    size: usize,
    alignbit: c_int,
    exec: c_int,
    memp: *mut *mut c_void,
) -> c_int {
    if size == 0 || !(0..48).contains(&alignbit) {
        return EINVAL;
    }
    let align = (1usize << alignbit).max(4096);
    match sys::anon_map(prefaddr, size, align, exec != 0) {
        Ok(p) => {
            // SAFETY: the caller's promise.
            unsafe { *memp = p };
            0
        }
        Err(e) => e,
    }
}

/// Unmaps what `rumpuser_anonmmap` mapped.
///
/// # Safety
/// The range came from `rumpuser_anonmmap` and is not used again.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_unmap(addr: *mut c_void, len: usize) {
    // SAFETY: the caller's promise.
    if !unsafe { sys::unmap(addr, len) } {
        sys::fatal("rumpuser_unmap of a range that was not mapped");
    }
}
