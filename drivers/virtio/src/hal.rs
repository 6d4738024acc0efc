//! virtio-drivers' `Hal` over ExoV6 capabilities: DMA memory through
//! rumpglue (`rumpglue::exo::DMA`: the driver's untyped budget,
//! physically contiguous), device registers from the BAR capabilities
//! mapped at start, and bounce buffers for what the crate shares with the
//! device, unless it lies in the driver's DMA memory already (the network
//! driver's frame slots), which the device then uses as it is.
//!
//! The driver is one thread, but the state sits behind a lock anyway so
//! that nothing here depends on that.

use alloc::vec::Vec;
use core::ptr::NonNull;
use exo_rt::abi::{map_flags, PAGE_SIZE};
use exo_rt::caps::{Memory, SELF};
use exo_rt::sync::SpinLock;
use rumpglue::exo::DMA;
use rumpglue::{DmaRegion, Memory as _};
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

/// Where BARs are mapped: upwards from 96 GiB.
pub const BAR_VA: u64 = 0x18_0000_0000;

/// A mapped BAR.
#[derive(Clone, Copy)]
struct Bar {
    phys: u64,
    va: u64,
    pages: u64,
    /// The BAR's number.
    bar: u8,
}

/// BAR mappings (never unmapped).
static BARS: SpinLock<Vec<Bar>> = SpinLock::new(Vec::new());

/// Maps `mem` (the registers behind BAR `bar`, `pages` pages at physical
/// `phys`) for the driver; `mmio_phys_to_virt` finds it there.
pub fn add_bar(bar: u8, mem: Memory, phys: u64, pages: u64) -> Result<u64, exo_rt::abi::Error> {
    BARS.with(|bars| {
        let va = BAR_VA + bars.iter().map(|b| b.pages * PAGE_SIZE + PAGE_SIZE).sum::<u64>();
        SELF.map(mem, va, map_flags::READ | map_flags::WRITE)?;
        bars.push(Bar { phys, va, pages, bar });
        Ok(va)
    })
}

/// Where BAR `bar` is mapped, and its size in bytes.
pub fn bar(bar: u8) -> Option<(u64, u64)> {
    BARS.with(|bars| bars.iter().find(|b| b.bar == bar).map(|b| (b.va, b.pages * PAGE_SIZE)))
}

/// Bounce regions handed to the device, by physical address.
static BOUNCES: SpinLock<Vec<u64>> = SpinLock::new(Vec::new());

/// DMA memory now in use and kept spare, in pages (for reports).
pub fn dma_pages() -> (u64, u64) {
    DMA.pages()
}

/// `pages` zeroed pages of DMA memory (rumpglue's exokernel backend).
fn alloc(pages: u64) -> DmaRegion {
    DMA.alloc_dma(pages as usize).unwrap_or_else(|e| panic!("no DMA memory ({pages} pages): {e}"))
}

/// Gives back the DMA region the device sees at `phys`.
fn free(phys: u64) {
    let (virt, len) = DMA.find(phys).expect("freeing DMA memory that was not allocated");
    // SAFETY: a region `alloc` gave, which the device and driver are done
    // with (virtio-drivers deallocates or unshares it).
    unsafe { DMA.free_dma(DmaRegion { virt, phys, len }) };
}

/// The `Hal` of ExoV6 drivers.
pub struct ExoHal;

// SAFETY: DMA memory is zeroed, page aligned, physically contiguous and
// used by nothing else until freed; MMIO addresses are translated only
// inside BARs the kernel gave us; shared buffers are copied through DMA
// memory (bounce buffers) unless they lie in DMA memory already, so the
// device never sees other memory.
unsafe impl Hal for ExoHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let r = alloc(pages as u64);
        (r.phys, NonNull::new(r.virt).expect("mapped above zero"))
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, _vaddr: NonNull<u8>, _pages: usize) -> i32 {
        free(paddr);
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        let va = BARS.with(|bars| {
            bars.iter()
                .find(|b| paddr >= b.phys && paddr + size as u64 <= b.phys + b.pages * PAGE_SIZE)
                .map(|b| b.va + (paddr - b.phys))
        });
        let va = va.unwrap_or_else(|| panic!("MMIO at {paddr:#x}+{size:#x} is in none of our BARs"));
        NonNull::new(va as *mut u8).expect("mapped above zero")
    }

    unsafe fn share(buffer: NonNull<[u8]>, direction: BufferDirection) -> PhysAddr {
        let len = buffer.len();
        // A buffer in the driver's own DMA memory (the network driver's
        // frame slots) goes to the device as it is.
        if let Some(phys) = DMA.phys_of_range(buffer.as_ptr() as *const u8 as u64, len) {
            return phys;
        }
        let r = alloc((len as u64).div_ceil(PAGE_SIZE).max(1));
        BOUNCES.lock().push(r.phys);
        if direction != BufferDirection::DeviceToDriver {
            // SAFETY: the caller's buffer is valid for `len` bytes; the
            // bounce region holds at least that many.
            unsafe { core::ptr::copy_nonoverlapping(buffer.as_ptr() as *const u8, r.virt, len) };
        }
        r.phys
    }

    unsafe fn unshare(paddr: PhysAddr, buffer: NonNull<[u8]>, direction: BufferDirection) {
        let bounced = BOUNCES.with(|b| b.iter().position(|p| *p == paddr).map(|i| b.swap_remove(i))).is_some();
        if !bounced {
            return; // shared as it was: the device used the driver's DMA memory
        }
        if direction != BufferDirection::DriverToDevice {
            let (va, _) = DMA.find(paddr).expect("shared before");
            // SAFETY: as in `share`, the other way.
            unsafe { core::ptr::copy_nonoverlapping(va as *const u8, buffer.as_ptr() as *mut u8, buffer.len()) };
        }
        free(paddr);
    }
}
