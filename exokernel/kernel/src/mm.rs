//! Physical memory: the direct map, the frame allocator, page-table access
//! for `exo_kcore::paging`, and the kernel heap.

use crate::arch::boot::{HHDM_BASE, HHDM_SIZE};
use crate::pvh::{BootInfo, E820_RAM};
use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use exo_kcore::frame::{FrameAllocator, FRAME_SIZE};
use exo_kcore::paging::PhysMemory;

/// Kernel virtual address of physical address `pa` (must be below 4 GiB).
pub fn phys_to_virt(pa: u64) -> u64 {
    debug_assert!(pa < HHDM_SIZE);
    HHDM_BASE + pa
}

const BITMAP_WORDS: usize = FrameAllocator::bitmap_words(HHDM_SIZE);

struct BitmapCell(UnsafeCell<[u64; BITMAP_WORDS]>);
// SAFETY: handed out exactly once, by `init_frames`, at boot.
unsafe impl Sync for BitmapCell {}
static BITMAP: BitmapCell = BitmapCell(UnsafeCell::new([0; BITMAP_WORDS]));

extern "C" {
    static __kernel_phys_start: u8;
    static __kernel_phys_end: u8;
}

/// Builds the frame allocator from the PVH memory map, keeping out the
/// first MiB, the kernel image, the boot image and the start-info block.
/// RAM above 4 GiB is ignored (the direct map covers 4 GiB); the returned
/// count says how much was left out.
pub fn init_frames(info: &BootInfo) -> (FrameAllocator<'static>, u64) {
    // SAFETY: called once at boot; this is the only reference to BITMAP.
    let bitmap: &'static mut [u64] = unsafe { &mut *BITMAP.0.get() };
    let mut frames = FrameAllocator::new(bitmap);
    let mut ignored = 0;
    for r in &info.regions[..info.region_count] {
        if r.kind != E820_RAM {
            continue;
        }
        let end = r.start.saturating_add(r.len);
        if end > HHDM_SIZE {
            ignored += end - r.start.max(HHDM_SIZE);
        }
        frames.add_free_range(r.start, end.min(HHDM_SIZE));
    }
    // Symbols from the linker script: their addresses are physical.
    let kstart = core::ptr::addr_of!(__kernel_phys_start) as u64;
    let kend = core::ptr::addr_of!(__kernel_phys_end) as u64;
    frames.reserve_range(0, 0x10_0000);
    frames.reserve_range(kstart, kend);
    if let Some((start, size)) = info.module {
        frames.reserve_range(start, start + size);
    }
    frames.reserve_range(info.start_info.0, info.start_info.0 + info.start_info.1);
    (frames, ignored)
}

/// Page tables seen through the direct map.
pub struct DirectMap;

impl PhysMemory for DirectMap {
    fn read_entry(&self, table: u64, index: usize) -> u64 {
        assert!(index < 512);
        // SAFETY: `table` is a page-table frame owned by the kernel and
        // inside the direct map; index < 512 keeps the access in the frame.
        unsafe { (phys_to_virt(table) as *const u64).add(index).read_volatile() }
    }
    fn write_entry(&mut self, table: u64, index: usize, value: u64) {
        assert!(index < 512);
        // SAFETY: as for `read_entry`.
        unsafe { (phys_to_virt(table) as *mut u64).add(index).write_volatile(value) }
    }
    fn zero_frame(&mut self, frame: u64) {
        zero_frame(frame);
    }
}

/// Fills a physical frame with zeros.
pub fn zero_frame(frame: u64) {
    // SAFETY: `frame` is a whole frame handed out by the frame allocator,
    // inside the direct map.
    unsafe { core::ptr::write_bytes(phys_to_virt(frame) as *mut u8, 0, FRAME_SIZE as usize) }
}

/// Copies `data` into physical memory at `pa` (may cross frames, which
/// must all be owned by the caller).
pub fn copy_to_phys(pa: u64, data: &[u8]) {
    // SAFETY: the caller owns [pa, pa + len) and it is direct-mapped.
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), phys_to_virt(pa) as *mut u8, data.len()) }
}

/// The kernel heap: a linked-list allocator over a contiguous block of
/// frames. The kernel is single-CPU and never interrupted, so it needs no
/// lock; `UnsafeCell` documents that.
pub struct KernelHeap(UnsafeCell<linked_list_allocator::Heap>);
// SAFETY: one CPU, interrupts off in the kernel: never accessed concurrently.
unsafe impl Sync for KernelHeap {}

#[global_allocator]
static HEAP: KernelHeap = KernelHeap(UnsafeCell::new(linked_list_allocator::Heap::empty()));

// SAFETY: `Heap` returns suitably aligned, non-overlapping blocks; access is
// never concurrent (see `KernelHeap`).
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: exclusive access, see the type's comment.
        let heap = unsafe { &mut *self.0.get() };
        heap.allocate_first_fit(layout).map_or(core::ptr::null_mut(), |p| p.as_ptr())
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: exclusive access; `ptr` came from `alloc` with `layout`.
        unsafe { (*self.0.get()).deallocate(core::ptr::NonNull::new_unchecked(ptr), layout) }
    }
}

/// Gives the heap `pages` contiguous frames. Returns the heap size in bytes.
pub fn init_heap(frames: &mut FrameAllocator, pages: usize) -> Option<u64> {
    let base = frames.alloc_contiguous(pages)?;
    let size = pages as u64 * FRAME_SIZE;
    // SAFETY: the frames were just taken from the allocator and are used
    // for nothing else; called once at boot before any allocation.
    unsafe { (*HEAP.0.get()).init(phys_to_virt(base) as *mut u8, size as usize) };
    Some(size)
}

/// Where the kernel image is linked (virtual) above its physical load
/// address.
const KERNEL_VMA: u64 = 0xffff_ffff_8000_0000;

/// Replaces the boot page tables' writable, executable mapping of the
/// kernel image with one by section: code read-only and executable,
/// read-only data read-only, data and bss writable, neither of the latter
/// executable; and makes the direct map of physical memory
/// non-executable. Returns the new top-level table (loaded already).
/// Call once, before any process exists (processes copy the kernel half).
pub fn protect_kernel(frames: &mut FrameAllocator<'static>, boot_pml4: u64) -> u64 {
    use exo_kcore::paging::{map_page, pte, PhysMemory};
    extern "C" {
        static __kernel_text: u8;
        static __kernel_rodata: u8;
        static __kernel_data: u8;
        static __kernel_end: u8;
    }
    let (text, rodata, data, end) = (
        core::ptr::addr_of!(__kernel_text) as u64,
        core::ptr::addr_of!(__kernel_rodata) as u64,
        core::ptr::addr_of!(__kernel_data) as u64,
        core::ptr::addr_of!(__kernel_end) as u64,
    );
    let mut dm = DirectMap;
    let root = frames.alloc().expect("a frame for the kernel's page table");
    zero_frame(root);
    // The direct map (entry 256): the boot tables, made non-executable
    // below once we no longer run through them.
    let direct = dm.read_entry(boot_pml4, 256);
    dm.write_entry(root, 256, direct);
    // The image, page by page.
    let mut va = text;
    while va < end {
        let flags = if va < rodata {
            pte::PRESENT | pte::GLOBAL
        } else if va < data {
            pte::PRESENT | pte::GLOBAL | pte::NO_EXECUTE
        } else {
            pte::PRESENT | pte::GLOBAL | pte::WRITABLE | pte::NO_EXECUTE
        };
        map_page(&mut dm, frames, root, va, va - KERNEL_VMA, flags).expect("mapping the kernel image");
        va += 4096;
    }
    // SAFETY: the new table maps the running code, stack and data at the
    // same addresses as before (the stack and statics are in .bss/.data),
    // and the direct map as before.
    unsafe { crate::arch::cpu::write_cr3(root) };
    // Only now: the boot tables' kernel window shares these page
    // directories, and we ran through it until the switch.
    let pdpt = direct & pte::ADDR_MASK;
    for i in 0..512 {
        let pd = dm.read_entry(pdpt, i);
        if pd & pte::PRESENT == 0 {
            continue;
        }
        for j in 0..512 {
            let e = dm.read_entry(pd & pte::ADDR_MASK, j);
            if e & pte::PRESENT != 0 {
                dm.write_entry(pd & pte::ADDR_MASK, j, e | pte::NO_EXECUTE);
            }
        }
    }
    // SAFETY: reloading the same table flushes the old direct-map entries.
    unsafe { crate::arch::cpu::write_cr3(root) };
    // Read the result back: a function, a constant, a static and a direct
    // map address, each with what it may and may not do.
    static PROBE: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
    let look = |va: u64| exo_kcore::paging::translate(&dm, root, va).map_or(0, |(_, f)| f);
    let (w, x) = (pte::WRITABLE, pte::NO_EXECUTE);
    let code = look(protect_kernel as *const () as u64);
    let constant = look(core::ptr::addr_of!(KERNEL_VMA_ANCHOR) as u64);
    let state = look(core::ptr::addr_of!(PROBE) as u64);
    let direct = look(phys_to_virt(root));
    let ok = code & (w | x) == 0
        && constant & (w | x) == x
        && state & (w | x) == (w | x)
        && direct & (w | x) == (w | x)
        && exo_kcore::paging::translate(&dm, root, 0x10_0000).is_none();
    assert!(ok, "kernel mappings: code {code:#x} rodata {constant:#x} data {state:#x} direct {direct:#x}");
    crate::kprintln!(
        "paging: kernel W^X (text {} KiB r-x, rodata {} KiB r--, data {} KiB rw-), direct map no-exec, nothing low",
        (rodata - text) >> 10,
        (data - rodata) >> 10,
        (end - data) >> 10
    );
    root
}

/// A constant in .rodata, for `protect_kernel`'s check.
static KERNEL_VMA_ANCHOR: u64 = KERNEL_VMA;
