//! The global allocator over the heap the parent mapped for us, guarded by
//! a spin lock that yields (threads of one process share it).
//!
//! A program that holds its own budget (its `untyped` capability) is
//! started with the first part of its heap mapped and grows it itself, up
//! to the manifest's `heap`: when an allocation finds no room, more pages
//! (as many as are mapped already, or the allocation's size if more) are
//! taken from the budget and mapped right after the heap's end. Memory
//! nobody asked for is then never zeroed by the kernel, nor given to QEMU
//! by the host.

use crate::caps::Untyped;
use crate::mem::Mapping;
use crate::sync::SpinLock;
use core::alloc::{GlobalAlloc, Layout};
use exo_abi::{slot, PAGE_SIZE};

struct Heap(SpinLock<linked_list_allocator::Heap>);

#[global_allocator]
static HEAP: Heap = Heap(SpinLock::new(linked_list_allocator::Heap::empty()));

/// The heap's mapped end and the end it may grow to (addresses); taken
/// while growing, so that two threads do not map the same pages.
static ENDS: SpinLock<(u64, u64)> = SpinLock::new((0, 0));

impl Heap {
    fn with<R>(&self, f: impl FnOnce(&mut linked_list_allocator::Heap) -> R) -> R {
        self.0.with(f)
    }
}

/// Hands the heap region to the allocator (called once by `_start`):
/// `len` bytes mapped at `base`, growing up to `max`.
pub fn init(base: u64, len: u64, max: u64) {
    if len == 0 {
        return;
    }
    // SAFETY: the parent mapped [base, base + len) read-write for us and
    // nothing else uses it; called once before any allocation.
    HEAP.with(|h| unsafe { h.init(base as *mut u8, len as usize) });
    *ENDS.lock() = (base + len, base + max.max(len));
}

/// Maps `bytes` more at the heap's end (or what is left to grow by, if
/// less), if the budget has the pages: whether it grew.
fn grow(bytes: usize) -> bool {
    let mut ends = ENDS.lock();
    let (end, max) = *ends;
    let mapped = end - HEAP.with(|h| h.bottom() as u64);
    // At least what is mapped already (the heap doubles), at most the rest
    // (less than `bytes` may do: a free block at the end joins it).
    let want = (bytes as u64).max(mapped).next_multiple_of(PAGE_SIZE).min(max - end);
    if want == 0 {
        return false;
    }
    match Mapping::alloc(Untyped::from_slot(slot::UNTYPED), want / PAGE_SIZE, end) {
        Ok(m) => {
            // The heap's for good.
            m.leak();
            // SAFETY: the `want` bytes just mapped lie right after the
            // heap's end, and stay mapped for the life of the process.
            HEAP.with(|h| unsafe { h.extend(want as usize) });
            ends.0 = end + want;
            true
        }
        Err(_) => false,
    }
}

/// The heap's size in bytes: the most it may grow to (the manifest's
/// `heap`).
pub fn size() -> usize {
    let (end, max) = *ENDS.lock();
    HEAP.with(|h| h.size()) + (max - end) as usize
}

/// Bytes of the heap not allocated (perhaps not in one piece), counting
/// what it may still grow by.
pub fn free() -> usize {
    let (end, max) = *ENDS.lock();
    HEAP.with(|h| h.free()) + (max - end) as usize
}

// SAFETY: `linked_list_allocator::Heap` hands out aligned, disjoint blocks;
// the lock serialises access; the heap only grows by memory mapped after
// its end for good.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        loop {
            if let Ok(p) = self.with(|h| h.allocate_first_fit(layout)) {
                return p.as_ptr();
            }
            // No room: grow by enough for the block, its alignment and the
            // allocator's bookkeeping, then try again.
            if !grow(layout.size() + layout.align() + 64) {
                return core::ptr::null_mut();
            }
        }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was returned by `alloc` with this layout.
        self.with(|h| unsafe { h.deallocate(core::ptr::NonNull::new_unchecked(ptr), layout) })
    }
}
