//! DMA memory on ExoV6: physically contiguous pages from the process's
//! untyped budget, each region mapped once and kept for reuse.

use crate::{DmaRegion, Error, Result};
use alloc::vec::Vec;
use exo_rt::abi::{map_flags, slot, PAGE_SIZE};
use exo_rt::caps::Untyped;
use exo_rt::mem::Mapping;
use exo_rt::sync::SpinLock;

/// Where DMA memory is mapped: upwards from 64 GiB.
pub const DMA_VA: u64 = 0x10_0000_0000;
/// Regions kept mapped for reuse once given back.
const SPARE: usize = 16;

/// A region: its mapping (which owns its memory capability) and where
/// the device sees it.
struct Region {
    mapping: Mapping,
    phys: u64,
}

struct State {
    used: Vec<Region>,
    spare: Vec<Region>,
    next_va: u64,
}

/// DMA memory of this process.
pub struct Dma {
    state: SpinLock<State>,
}

/// The process's DMA memory.
pub static DMA: Dma = Dma { state: SpinLock::new(State { used: Vec::new(), spare: Vec::new(), next_va: DMA_VA }) };

impl Dma {
    /// Where the driver sees the region the device sees at `phys`, and
    /// its length, if it is in use.
    pub fn find(&self, phys: u64) -> Option<(*mut u8, usize)> {
        self.state
            .with(|s| s.used.iter().find(|r| r.phys == phys).map(|r| (r.mapping.va() as *mut u8, r.mapping.len())))
    }

    /// The memory capability of the in-use region the device sees at
    /// `phys` (to share it: a driver lends received frames read-only).
    pub fn memory(&self, phys: u64) -> Option<exo_rt::caps::Memory> {
        self.state.with(|s| s.used.iter().find(|r| r.phys == phys).map(|r| r.mapping.memory()))
    }

    /// The physical address of the in-use DMA memory at virtual `va`.
    pub fn phys_of(&self, va: u64) -> Option<u64> {
        self.state.with(|s| {
            s.used.iter().find_map(|r| {
                let start = r.mapping.va();
                (start..start + r.mapping.len() as u64).contains(&va).then(|| r.phys + (va - start))
            })
        })
    }

    /// The physical address of `len` bytes at virtual `va`, if they lie
    /// inside one in-use DMA region (a buffer the device may use as it is).
    pub fn phys_of_range(&self, va: u64, len: usize) -> Option<u64> {
        self.state.with(|s| {
            s.used.iter().find_map(|r| {
                let start = r.mapping.va();
                let end = start + r.mapping.len() as u64;
                (va >= start && va.checked_add(len as u64)? <= end).then(|| r.phys + (va - start))
            })
        })
    }

    /// Pages in use and kept spare (for reports).
    pub fn pages(&self) -> (u64, u64) {
        self.state.with(|s| {
            let pages = |v: &Vec<Region>| v.iter().map(|r| r.mapping.len() as u64 / PAGE_SIZE).sum();
            (pages(&s.used), pages(&s.spare))
        })
    }
}

impl crate::Memory for Dma {
    fn alloc_dma(&self, pages: usize) -> Result<DmaRegion> {
        let len = pages * PAGE_SIZE as usize;
        let spare =
            self.state.with(|s| s.spare.iter().position(|r| r.mapping.len() == len).map(|i| s.spare.swap_remove(i)));
        let region = match spare {
            Some(mut r) => {
                r.mapping.as_mut_slice().fill(0); // fresh memory comes zeroed
                r
            }
            None => {
                let mem =
                    Untyped::from_slot(slot::UNTYPED).alloc_contiguous(pages as u64).map_err(|_| Error::NoMemory)?;
                // A guard page between regions.
                let va = self.state.with(|s| {
                    let va = s.next_va;
                    s.next_va += (pages as u64 + 1) * PAGE_SIZE;
                    va
                });
                let mapping =
                    Mapping::adopt(mem, va, map_flags::READ | map_flags::WRITE).map_err(|_| Error::NoMemory)?;
                let phys = mem.phys(0).map_err(|_| Error::NoMemory)?;
                Region { mapping, phys }
            }
        };
        let r = DmaRegion { virt: region.mapping.va() as *mut u8, phys: region.phys, len };
        self.state.with(|s| s.used.push(region));
        Ok(r)
    }

    unsafe fn free_dma(&self, region: DmaRegion) {
        self.state.with(|s| {
            let i = s.used.iter().position(|r| r.phys == region.phys).expect("freeing DMA memory not allocated here");
            let r = s.used.swap_remove(i);
            if s.spare.len() < SPARE {
                s.spare.push(r);
            } // else: dropped, unmapped and its memory given back
        })
    }
}
