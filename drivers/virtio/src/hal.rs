//! virtio-drivers' `Hal` over ExoV6 capabilities: DMA memory from the
//! driver's untyped budget (physically contiguous, addresses from
//! `mem_phys`), device registers from the BAR capabilities mapped at
//! start, and bounce buffers for what the crate shares with the device.
//!
//! The driver is one thread, but the state sits behind a lock anyway so
//! that nothing here depends on that.

use alloc::vec::Vec;
use core::ptr::NonNull;
use exo_rt::abi::{map_flags, slot, PAGE_SIZE};
use exo_rt::caps::{self, Memory, Untyped, SELF};
use exo_rt::sync::SpinLock;
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

/// Where DMA memory is mapped: upwards from 64 GiB.
const DMA_VA: u64 = 0x10_0000_0000;
/// Where BARs are mapped: upwards from 96 GiB.
pub const BAR_VA: u64 = 0x18_0000_0000;

/// A mapped region: DMA memory or a BAR.
#[derive(Clone, Copy)]
struct Region {
    phys: u64,
    va: u64,
    pages: u64,
    mem: Memory,
    /// The BAR's number (BARs only).
    bar: u8,
}

struct State {
    /// BAR mappings (never unmapped).
    bars: Vec<Region>,
    /// DMA regions in use.
    dma: Vec<Region>,
    /// DMA regions given back, kept mapped for the next allocation of the
    /// same size (so steady-state I/O makes no memory system calls).
    spare: Vec<Region>,
    /// Next free virtual address for DMA memory.
    next_va: u64,
}

static STATE: SpinLock<State> =
    SpinLock::new(State { bars: Vec::new(), dma: Vec::new(), spare: Vec::new(), next_va: DMA_VA });

fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(f)
}

/// Maps `mem` (the registers behind BAR `bar`, `pages` pages at physical
/// `phys`) for the driver; `mmio_phys_to_virt` finds it there.
pub fn add_bar(bar: u8, mem: Memory, phys: u64, pages: u64) -> Result<u64, exo_rt::abi::Error> {
    with(|s| {
        let va = BAR_VA + s.bars.iter().map(|b| b.pages * PAGE_SIZE + PAGE_SIZE).sum::<u64>();
        SELF.map(mem, va, map_flags::READ | map_flags::WRITE)?;
        s.bars.push(Region { phys, va, pages, mem, bar });
        Ok(va)
    })
}

/// Where BAR `bar` is mapped, and its size in bytes.
pub fn bar(bar: u8) -> Option<(u64, u64)> {
    with(|s| s.bars.iter().find(|b| b.bar == bar).map(|b| (b.va, b.pages * PAGE_SIZE)))
}

/// DMA memory now in use and kept spare, in pages (for reports).
pub fn dma_pages() -> (u64, u64) {
    with(|s| (s.dma.iter().map(|r| r.pages).sum(), s.spare.iter().map(|r| r.pages).sum()))
}

fn alloc(pages: u64) -> Region {
    let spare = with(|s| s.spare.iter().position(|r| r.pages == pages).map(|i| s.spare.swap_remove(i)));
    let region = match spare {
        Some(r) => {
            // SAFETY: a region this module mapped read-write and no one uses.
            unsafe { core::ptr::write_bytes(r.va as *mut u8, 0, (pages * PAGE_SIZE) as usize) };
            r
        }
        None => {
            let mem = Untyped::from_slot(slot::UNTYPED)
                .alloc_contiguous(pages)
                .unwrap_or_else(|e| panic!("no DMA memory ({pages} pages): {}", e.name()));
            let va = with(|s| {
                let va = s.next_va;
                s.next_va += (pages + 1) * PAGE_SIZE; // a guard page between regions
                va
            });
            SELF.map(mem, va, map_flags::READ | map_flags::WRITE)
                .unwrap_or_else(|e| panic!("map DMA memory: {}", e.name()));
            let phys = mem.phys(0).unwrap_or_else(|e| panic!("DMA address: {}", e.name()));
            Region { phys, va, pages, mem, bar: 0 }
        }
    };
    with(|s| s.dma.push(region));
    region
}

fn free(phys: u64) {
    with(|s| {
        let i = s.dma.iter().position(|r| r.phys == phys).expect("freeing DMA memory that was not allocated");
        let r = s.dma.swap_remove(i);
        if s.spare.len() < 16 {
            s.spare.push(r);
        } else {
            let _ = SELF.unmap(r.va);
            let _ = caps::delete(r.mem.slot());
        }
    })
}

/// The `Hal` of ExoV6 drivers.
pub struct ExoHal;

// SAFETY: DMA memory is zeroed, page aligned, physically contiguous and
// used by nothing else until freed; MMIO addresses are translated only
// inside BARs the kernel gave us; shared buffers are copied through DMA
// memory (bounce buffers), so the device never sees other memory.
unsafe impl Hal for ExoHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let r = alloc(pages as u64);
        (r.phys, NonNull::new(r.va as *mut u8).expect("mapped above zero"))
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, _vaddr: NonNull<u8>, _pages: usize) -> i32 {
        free(paddr);
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        let va = with(|s| {
            s.bars
                .iter()
                .find(|b| paddr >= b.phys && paddr + size as u64 <= b.phys + b.pages * PAGE_SIZE)
                .map(|b| b.va + (paddr - b.phys))
        });
        let va = va.unwrap_or_else(|| panic!("MMIO at {paddr:#x}+{size:#x} is in none of our BARs"));
        NonNull::new(va as *mut u8).expect("mapped above zero")
    }

    unsafe fn share(buffer: NonNull<[u8]>, direction: BufferDirection) -> PhysAddr {
        let len = buffer.len();
        let r = alloc((len as u64).div_ceil(PAGE_SIZE).max(1));
        if direction != BufferDirection::DeviceToDriver {
            // SAFETY: the caller's buffer is valid for `len` bytes; the
            // bounce region holds at least that many.
            unsafe { core::ptr::copy_nonoverlapping(buffer.as_ptr() as *const u8, r.va as *mut u8, len) };
        }
        r.phys
    }

    unsafe fn unshare(paddr: PhysAddr, buffer: NonNull<[u8]>, direction: BufferDirection) {
        if direction != BufferDirection::DriverToDevice {
            let va = with(|s| s.dma.iter().find(|r| r.phys == paddr).map(|r| r.va)).expect("shared before");
            // SAFETY: as in `share`, the other way.
            unsafe { core::ptr::copy_nonoverlapping(va as *const u8, buffer.as_ptr() as *mut u8, buffer.len()) };
        }
        free(paddr);
    }
}
