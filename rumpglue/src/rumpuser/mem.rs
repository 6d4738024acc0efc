//! Memory: the kernel's allocator backing store and anonymous mappings.

use crate::errno::{self, EINVAL, ENOMEM};
use core::ffi::{c_int, c_void};
use core::ptr;

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
    let mut p = ptr::null_mut();
    // SAFETY: `align` is a power of two and a multiple of the pointer
    // size, as posix_memalign requires.
    let rv = unsafe { libc::posix_memalign(&mut p, align, len.max(1)) };
    if rv != 0 {
        return ENOMEM;
    }
    // SAFETY: the caller passes a valid out-pointer.
    unsafe { *memp = p };
    0
}

/// Frees what `rumpuser_malloc` gave.
///
/// # Safety
/// `mem` came from `rumpuser_malloc` and is not used any more.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_free(mem: *mut c_void, _len: usize) {
    // SAFETY: the caller's promise.
    unsafe { libc::free(mem) };
}

/// Maps `size` bytes of zeroed anonymous memory aligned to 2^`alignbit`
/// (0: a page), executable if `exec`, near `prefaddr` if possible.
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
    let page = 4096usize;
    let align = (1usize << alignbit).max(page);
    let prot = libc::PROT_READ | libc::PROT_WRITE | if exec != 0 { libc::PROT_EXEC } else { 0 };
    // Over-map by the alignment, then trim both ends.
    let Some(total) = size.checked_add(align - page) else { return ENOMEM };
    // SAFETY: a fresh private anonymous mapping; the address is a hint.
    let p = unsafe { libc::mmap(prefaddr, total, prot, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0) };
    if p == libc::MAP_FAILED {
        return errno::last();
    }
    let start = p as usize;
    let aligned = (start + align - 1) & !(align - 1);
    let len = size.div_ceil(page) * page;
    // SAFETY: both trimmed pieces lie inside the mapping just made and
    // outside the part handed out.
    unsafe {
        if aligned > start {
            libc::munmap(p, aligned - start);
        }
        let end = aligned + len;
        if start + total > end {
            libc::munmap(end as *mut c_void, start + total - end);
        }
        *memp = aligned as *mut c_void;
    }
    0
}

/// Unmaps what `rumpuser_anonmmap` gave.
///
/// # Safety
/// The range came from `rumpuser_anonmmap` and is not used any more.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_unmap(addr: *mut c_void, len: usize) {
    // SAFETY: the caller's promise.
    if unsafe { libc::munmap(addr, len) } != 0 {
        super::sys::fatal("rumpuser_unmap of a range that was not mapped");
    }
}
