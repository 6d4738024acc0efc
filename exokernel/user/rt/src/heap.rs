//! The global allocator over the heap the parent mapped for us, guarded by
//! a spin lock that yields (threads of one process share it).

use crate::sync::SpinLock;
use core::alloc::{GlobalAlloc, Layout};

struct Heap(SpinLock<linked_list_allocator::Heap>);

#[global_allocator]
static HEAP: Heap = Heap(SpinLock::new(linked_list_allocator::Heap::empty()));

impl Heap {
    fn with<R>(&self, f: impl FnOnce(&mut linked_list_allocator::Heap) -> R) -> R {
        self.0.with(f)
    }
}

/// Hands the heap region to the allocator (called once by `_start`).
pub fn init(base: u64, len: u64) {
    if len == 0 {
        return;
    }
    // SAFETY: the parent mapped [base, base + len) read-write for us and
    // nothing else uses it; called once before any allocation.
    HEAP.with(|h| unsafe { h.init(base as *mut u8, len as usize) });
}

/// The heap's size in bytes (the manifest's `heap`).
pub fn size() -> usize {
    HEAP.with(|h| h.size())
}

/// Bytes of the heap not allocated (perhaps not in one piece).
pub fn free() -> usize {
    HEAP.with(|h| h.free())
}

// SAFETY: `linked_list_allocator::Heap` hands out aligned, disjoint blocks;
// the lock serialises access.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.with(|h| h.allocate_first_fit(layout).map_or(core::ptr::null_mut(), |p| p.as_ptr()))
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was returned by `alloc` with this layout.
        self.with(|h| unsafe { h.deallocate(core::ptr::NonNull::new_unchecked(ptr), layout) })
    }
}
