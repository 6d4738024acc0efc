//! Access to user memory named by system-call arguments, after checking
//! every page of the range in the caller's page tables.

use crate::arch::cpu;
use crate::mm::DirectMap;
use exo_abi::Error;
use exo_kcore::paging;

/// Largest buffer a single system call may name.
pub const MAX_USER_BUFFER: u64 = 64 * 1024;

/// Borrows `[ptr, ptr + len)` of the running process (whose top-level
/// table is `pml4`) for reading. Fails with `BadAddress` unless every page
/// is mapped, user-accessible and in the lower half; `InvalidArgument` if
/// longer than [`MAX_USER_BUFFER`].
pub fn user_bytes<'k>(pml4: u64, ptr: u64, len: u64) -> Result<&'k [u8], Error> {
    if len > MAX_USER_BUFFER {
        return Err(Error::InvalidArgument);
    }
    if len == 0 {
        return Ok(&[]);
    }
    if !paging::check_user_range(&DirectMap, pml4, ptr, len, false) {
        return Err(Error::BadAddress);
    }
    assert_eq!(cpu::read_cr3(), pml4, "user copy outside the caller's address space");
    // SAFETY: the range was just checked to be mapped user memory of the
    // active address space. The kernel is not preempted and only this call
    // runs, so no mapping changes while the slice lives (it does not outlive
    // the system call). User memory may hold any bytes, which `u8` allows.
    Ok(unsafe { core::slice::from_raw_parts(ptr as *const u8, len as usize) })
}

/// Borrows `[ptr, ptr + len)` of the running process for writing; the
/// same checks as [`user_bytes`], plus every page must be writable.
pub fn user_bytes_mut<'k>(pml4: u64, ptr: u64, len: u64) -> Result<&'k mut [u8], Error> {
    if len > MAX_USER_BUFFER {
        return Err(Error::InvalidArgument);
    }
    if len == 0 {
        return Ok(&mut []);
    }
    if !paging::check_user_range(&DirectMap, pml4, ptr, len, true) {
        return Err(Error::BadAddress);
    }
    assert_eq!(cpu::read_cr3(), pml4, "user copy outside the caller's address space");
    // SAFETY: as for `user_bytes`, and every page is mapped writable. The
    // kernel holds no other reference into user memory while this lives.
    Ok(unsafe { core::slice::from_raw_parts_mut(ptr as *mut u8, len as usize) })
}
