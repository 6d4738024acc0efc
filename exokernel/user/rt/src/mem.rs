//! Memory mapped into this process, owned: the one safe way for drivers,
//! servers and the POSIX library to reach a buffer they share with
//! another process or a device, so that they need no `unsafe` of their
//! own.
//!
//! A [`Mapping`] maps a memory capability at an address and unmaps it when
//! dropped; its bytes are reachable only through it. The kernel refuses a
//! mapping that overlaps another (`AlreadyMapped`), so two `Mapping`s never
//! cover the same bytes. What another process or a device writes into
//! shared memory while a slice of it is held is the sharing protocol's
//! business (each protocol here hands the buffer over by IPC, one side at
//! a time).

use crate::caps::{self, Memory, Untyped, SELF};
use exo_abi::{map_flags, Error, PAGE_SIZE};

/// A memory object mapped at a fixed address of this process.
pub struct Mapping {
    mem: Memory,
    va: u64,
    len: usize,
    writable: bool,
    /// The capability was made for this mapping: deleted with it.
    owns_capability: bool,
}

impl Mapping {
    /// Maps all of `mem` at `va` with `flags` (`map_flags`).
    pub fn new(mem: Memory, va: u64, flags: u64) -> Result<Mapping, Error> {
        let pages = mem.pages()?;
        let len = usize::try_from(pages * PAGE_SIZE).map_err(|_| Error::InvalidArgument)?;
        SELF.map(mem, va, flags)?;
        Ok(Mapping { mem, va, len, writable: flags & map_flags::WRITE != 0, owns_capability: false })
    }

    /// Maps all of `mem` at `va` with `flags`, taking the capability: it
    /// is deleted with the mapping, or at once if mapping fails (a
    /// capability a client passed, for example).
    pub fn adopt(mem: Memory, va: u64, flags: u64) -> Result<Mapping, Error> {
        match Mapping::new(mem, va, flags) {
            Ok(mut m) => {
                m.owns_capability = true;
                Ok(m)
            }
            Err(e) => {
                let _ = caps::delete(mem.slot());
                Err(e)
            }
        }
    }

    /// `pages` fresh zeroed pages from `untyped`, mapped read-write at `va`.
    pub fn alloc(untyped: Untyped, pages: u64, va: u64) -> Result<Mapping, Error> {
        Mapping::adopt(untyped.alloc(pages)?, va, map_flags::READ | map_flags::WRITE)
    }

    /// The memory capability behind it (to hand to another process).
    pub fn memory(&self) -> Memory {
        self.mem
    }

    /// Where it is mapped.
    pub fn va(&self) -> u64 {
        self.va
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if it is empty (never: memory objects have pages).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Its bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `len` bytes are mapped readable at `va` from `new` until
        // `drop`, and no other `Mapping` covers them (the kernel refuses
        // overlapping mappings).
        unsafe { core::slice::from_raw_parts(self.va as *const u8, self.len) }
    }

    /// Its bytes, writable. Panics if it was mapped read-only.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        assert!(self.writable, "mapping at {:#x} is read-only", self.va);
        // SAFETY: as for `as_slice`, mapped writable; `&mut self` makes
        // this the only reference into it.
        unsafe { core::slice::from_raw_parts_mut(self.va as *mut u8, self.len) }
    }

    /// Keeps it mapped for the rest of the process's life.
    pub fn leak(self) -> &'static mut [u8] {
        let this = core::mem::ManuallyDrop::new(self);
        assert!(this.writable, "mapping at {:#x} is read-only", this.va);
        // SAFETY: as for `as_mut_slice`; it is never unmapped now, and the
        // `Mapping` that could hand out another slice is gone.
        unsafe { core::slice::from_raw_parts_mut(this.va as *mut u8, this.len) }
    }

    /// Keeps it mapped read-only for the rest of the process's life.
    pub fn leak_read_only(self) -> &'static [u8] {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: as for `as_slice`; it is never unmapped now.
        unsafe { core::slice::from_raw_parts(this.va as *const u8, this.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        let _ = SELF.unmap(self.va);
        if self.owns_capability {
            let _ = caps::delete(self.mem.slot());
        }
    }
}
