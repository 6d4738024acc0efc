//! x86_64 four-level page tables, over an abstract physical memory so the
//! same code runs in the kernel (through the direct map) and in host tests.

use crate::frame::FrameAllocator;

/// Access to page-table frames by physical address.
pub trait PhysMemory {
    /// Entry `index` (0..512) of the table in frame `table`.
    fn read_entry(&self, table: u64, index: usize) -> u64;
    /// Sets entry `index` of the table in frame `table`.
    fn write_entry(&mut self, table: u64, index: usize, value: u64);
    /// Fills the frame with zeros.
    fn zero_frame(&mut self, frame: u64);
}

/// Where page-table frames come from.
pub trait FrameSource {
    /// A free frame, or `None`.
    fn alloc_frame(&mut self) -> Option<u64>;
    /// Returns a frame.
    fn free_frame(&mut self, frame: u64);
}

impl FrameSource for FrameAllocator<'_> {
    fn alloc_frame(&mut self) -> Option<u64> {
        self.alloc()
    }
    fn free_frame(&mut self, frame: u64) {
        let r = self.free(frame);
        debug_assert!(r.is_ok(), "freeing page-table frame {frame:#x}: {r:?}");
    }
}

/// Page-table entry bits.
pub mod pte {
    /// Present.
    pub const PRESENT: u64 = 1;
    /// Writable.
    pub const WRITABLE: u64 = 1 << 1;
    /// User accessible.
    pub const USER: u64 = 1 << 2;
    /// Write-through caching.
    pub const WRITE_THROUGH: u64 = 1 << 3;
    /// Caching disabled.
    pub const NO_CACHE: u64 = 1 << 4;
    /// 2 MiB / 1 GiB page (in a PD / PDPT entry).
    pub const HUGE: u64 = 1 << 7;
    /// Global.
    pub const GLOBAL: u64 = 1 << 8;
    /// No execute.
    pub const NO_EXECUTE: u64 = 1 << 63;
    /// Physical address bits.
    pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
}

/// Why a mapping operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// No frame for an intermediate table.
    OutOfMemory,
    /// The page is already mapped.
    AlreadyMapped,
    /// The page is not mapped.
    NotMapped,
    /// An address is not 4 KiB aligned.
    Misaligned,
    /// The virtual address is not canonical.
    NonCanonical,
    /// A 2 MiB or 1 GiB page covers the address.
    HugePage,
}

/// End of the lower (user) half.
const LOWER_HALF_END: u64 = 0x0000_8000_0000_0000;
const PAGE: u64 = 4096;

fn canonical(va: u64) -> bool {
    let top = va >> 47;
    top == 0 || top == 0x1ffff
}

fn index(va: u64, level: u32) -> usize {
    ((va >> (12 + 9 * level)) & 0x1ff) as usize
}

/// Maps the 4 KiB page at `va` to frame `pa` with `flags` (PRESENT added).
/// Missing intermediate tables are allocated and zeroed; they get
/// PRESENT|WRITABLE, plus USER in the lower half, so the leaf decides.
/// On `OutOfMemory` tables allocated earlier in the walk stay (empty but
/// valid); they are freed with the address space.
pub fn map_page<M: PhysMemory, F: FrameSource>(
    mem: &mut M,
    frames: &mut F,
    root: u64,
    va: u64,
    pa: u64,
    flags: u64,
) -> Result<(), MapError> {
    if !va.is_multiple_of(PAGE) || !pa.is_multiple_of(PAGE) || pa & !pte::ADDR_MASK != 0 {
        return Err(MapError::Misaligned);
    }
    if !canonical(va) {
        return Err(MapError::NonCanonical);
    }
    let inter = pte::PRESENT | pte::WRITABLE | if va < LOWER_HALF_END { pte::USER } else { 0 };
    let mut table = root;
    for level in (1..4).rev() {
        let i = index(va, level);
        let e = mem.read_entry(table, i);
        if e & pte::PRESENT == 0 {
            let t = frames.alloc_frame().ok_or(MapError::OutOfMemory)?;
            mem.zero_frame(t);
            mem.write_entry(table, i, t | inter);
            table = t;
        } else if e & pte::HUGE != 0 {
            return Err(MapError::HugePage);
        } else {
            table = e & pte::ADDR_MASK;
        }
    }
    let i = index(va, 0);
    if mem.read_entry(table, i) & pte::PRESENT != 0 {
        return Err(MapError::AlreadyMapped);
    }
    mem.write_entry(table, i, pa | flags | pte::PRESENT);
    Ok(())
}

/// Walks to the leaf table of `va`; `Err` if a level is missing or huge.
fn leaf_table<M: PhysMemory>(mem: &M, root: u64, va: u64) -> Result<u64, MapError> {
    let mut table = root;
    for level in (1..4).rev() {
        let e = mem.read_entry(table, index(va, level));
        if e & pte::PRESENT == 0 {
            return Err(MapError::NotMapped);
        }
        if e & pte::HUGE != 0 {
            return Err(MapError::HugePage);
        }
        table = e & pte::ADDR_MASK;
    }
    Ok(table)
}

/// Removes the 4 KiB mapping at `va`; returns the frame it named.
pub fn unmap_page<M: PhysMemory>(mem: &mut M, root: u64, va: u64) -> Result<u64, MapError> {
    if !va.is_multiple_of(PAGE) {
        return Err(MapError::Misaligned);
    }
    if !canonical(va) {
        return Err(MapError::NonCanonical);
    }
    let table = leaf_table(mem, root, va)?;
    let i = index(va, 0);
    let e = mem.read_entry(table, i);
    if e & pte::PRESENT == 0 {
        return Err(MapError::NotMapped);
    }
    mem.write_entry(table, i, 0);
    Ok(e & pte::ADDR_MASK)
}

/// Physical address of `va` (offset included) and the leaf entry's flags;
/// understands 1 GiB and 2 MiB pages.
pub fn translate<M: PhysMemory>(mem: &M, root: u64, va: u64) -> Option<(u64, u64)> {
    if !canonical(va) {
        return None;
    }
    let mut table = root;
    for level in (0..4).rev() {
        let e = mem.read_entry(table, index(va, level));
        if e & pte::PRESENT == 0 {
            return None;
        }
        let huge = e & pte::HUGE != 0 && (level == 1 || level == 2);
        if level == 0 || huge {
            let size = 1u64 << (12 + 9 * level);
            let base = e & pte::ADDR_MASK & !(size - 1);
            return Some((base + (va & (size - 1)), e & !pte::ADDR_MASK));
        }
        table = e & pte::ADDR_MASK;
    }
    None
}

/// True iff every page touched by `[va, va + len)` is in the lower half,
/// present and USER at every level, and WRITABLE at every level when
/// `write`. An empty range is valid when `va` is in the lower half.
pub fn check_user_range<M: PhysMemory>(mem: &M, root: u64, va: u64, len: u64, write: bool) -> bool {
    let Some(end) = va.checked_add(len) else {
        return false;
    };
    if end > LOWER_HALF_END {
        return false;
    }
    if len == 0 {
        return true;
    }
    let need = pte::PRESENT | pte::USER | if write { pte::WRITABLE } else { 0 };
    let mut page = va & !(PAGE - 1);
    while page < end {
        let mut table = root;
        for level in (0..4).rev() {
            let e = mem.read_entry(table, index(page, level));
            if e & need != need || (level > 0 && e & pte::HUGE != 0) {
                return false;
            }
            table = e & pte::ADDR_MASK;
        }
        page += PAGE;
    }
    true
}

/// Frees every page-table frame under PML4 entries 0..256 (the user half)
/// and clears those entries. Mapped frames are not freed: they belong to
/// memory objects. Returns how many table frames were freed.
pub fn free_user_tables<M: PhysMemory, F: FrameSource>(mem: &mut M, frames: &mut F, root: u64) -> usize {
    fn free_level<M: PhysMemory, F: FrameSource>(mem: &mut M, frames: &mut F, table: u64, level: u32) -> usize {
        let mut n = 0;
        if level > 1 {
            for i in 0..512 {
                let e = mem.read_entry(table, i);
                if e & pte::PRESENT != 0 && e & pte::HUGE == 0 {
                    n += free_level(mem, frames, e & pte::ADDR_MASK, level - 1);
                }
            }
        }
        frames.free_frame(table);
        n + 1
    }
    let mut n = 0;
    for i in 0..256 {
        let e = mem.read_entry(root, i);
        if e & pte::PRESENT != 0 {
            n += free_level(mem, frames, e & pte::ADDR_MASK, 3);
            mem.write_entry(root, i, 0);
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{HashMap, HashSet};

    #[derive(Default)]
    struct FakeMem(HashMap<u64, Box<[u64; 512]>>);
    impl PhysMemory for FakeMem {
        fn read_entry(&self, table: u64, index: usize) -> u64 {
            self.0.get(&table).map_or(0, |t| t[index])
        }
        fn write_entry(&mut self, table: u64, index: usize, value: u64) {
            self.0.entry(table).or_insert_with(|| Box::new([0; 512]))[index] = value;
        }
        fn zero_frame(&mut self, frame: u64) {
            self.0.insert(frame, Box::new([0; 512]));
        }
    }

    struct FakeFrames {
        next: u64,
        limit: u64,
        allocated: HashSet<u64>,
        freed: Vec<u64>,
    }
    impl FakeFrames {
        fn new(limit: u64) -> Self {
            FakeFrames { next: 0x100_0000, limit, allocated: HashSet::new(), freed: Vec::new() }
        }
    }
    impl FrameSource for FakeFrames {
        fn alloc_frame(&mut self) -> Option<u64> {
            if self.allocated.len() as u64 >= self.limit {
                return None;
            }
            let f = self.next;
            self.next += PAGE;
            self.allocated.insert(f);
            Some(f)
        }
        fn free_frame(&mut self, frame: u64) {
            assert!(self.allocated.remove(&frame), "freeing unknown frame {frame:#x}");
            self.freed.push(frame);
        }
    }

    const ROOT: u64 = 0x1000;

    #[test]
    fn map_translate_unmap() {
        let (mut m, mut f) = (FakeMem::default(), FakeFrames::new(100));
        map_page(&mut m, &mut f, ROOT, 0x40_0000, 0x7000, pte::USER | pte::WRITABLE).unwrap();
        assert_eq!(f.allocated.len(), 3, "PDPT, PD, PT");
        let (pa, flags) = translate(&m, ROOT, 0x40_0123).unwrap();
        assert_eq!(pa, 0x7123);
        assert_eq!(flags & (pte::PRESENT | pte::USER | pte::WRITABLE), pte::PRESENT | pte::USER | pte::WRITABLE);
        assert_eq!(map_page(&mut m, &mut f, ROOT, 0x40_0000, 0x8000, 0), Err(MapError::AlreadyMapped));
        assert_eq!(unmap_page(&mut m, ROOT, 0x40_0000), Ok(0x7000));
        assert_eq!(unmap_page(&mut m, ROOT, 0x40_0000), Err(MapError::NotMapped));
        assert_eq!(translate(&m, ROOT, 0x40_0000), None);
        assert_eq!(unmap_page(&mut m, ROOT, 0x1234_5000), Err(MapError::NotMapped));
    }

    #[test]
    fn argument_errors() {
        let (mut m, mut f) = (FakeMem::default(), FakeFrames::new(100));
        assert_eq!(map_page(&mut m, &mut f, ROOT, 0x40_0001, 0x7000, 0), Err(MapError::Misaligned));
        assert_eq!(map_page(&mut m, &mut f, ROOT, 0x40_0000, 0x7001, 0), Err(MapError::Misaligned));
        assert_eq!(map_page(&mut m, &mut f, ROOT, 0x0000_9000_0000_0000, 0x7000, 0), Err(MapError::NonCanonical));
        assert_eq!(unmap_page(&mut m, ROOT, 0x0000_9000_0000_0000), Err(MapError::NonCanonical));
        assert_eq!(unmap_page(&mut m, ROOT, 0x11), Err(MapError::Misaligned));
        assert!(f.allocated.is_empty());
    }

    #[test]
    fn out_of_memory_is_reported() {
        let (mut m, mut f) = (FakeMem::default(), FakeFrames::new(2));
        assert_eq!(map_page(&mut m, &mut f, ROOT, 0x40_0000, 0x7000, 0), Err(MapError::OutOfMemory));
        f.limit = 3;
        map_page(&mut m, &mut f, ROOT, 0x40_0000, 0x7000, 0).unwrap();
    }

    #[test]
    fn intermediates_are_user_only_in_lower_half() {
        let (mut m, mut f) = (FakeMem::default(), FakeFrames::new(100));
        map_page(&mut m, &mut f, ROOT, 0x40_0000, 0x7000, pte::USER).unwrap();
        map_page(&mut m, &mut f, ROOT, 0xffff_8000_0000_0000, 0x8000, 0).unwrap();
        assert_ne!(m.read_entry(ROOT, 0) & pte::USER, 0);
        assert_eq!(m.read_entry(ROOT, 256) & pte::USER, 0);
        assert_eq!(m.read_entry(ROOT, 0) & pte::NO_EXECUTE, 0);
    }

    #[test]
    fn huge_pages() {
        let (mut m, mut f) = (FakeMem::default(), FakeFrames::new(100));
        // PML4[0] -> PDPT at 0x2000; PDPT[1] = 1 GiB page at 0x4000_0000;
        // PDPT[0] -> PD at 0x3000; PD[2] = 2 MiB page at 0x60_0000.
        m.write_entry(ROOT, 0, 0x2000 | pte::PRESENT | pte::USER);
        m.write_entry(0x2000, 1, 0x4000_0000 | pte::PRESENT | pte::HUGE);
        m.write_entry(0x2000, 0, 0x3000 | pte::PRESENT);
        m.write_entry(0x3000, 2, 0x60_0000 | pte::PRESENT | pte::HUGE);
        assert_eq!(translate(&m, ROOT, 0x4012_3456).unwrap().0, 0x4012_3456);
        assert_eq!(translate(&m, ROOT, 0x41_2345).unwrap().0, 0x61_2345);
        assert_eq!(map_page(&mut m, &mut f, ROOT, 0x40_1000, 0x9000, 0), Err(MapError::HugePage));
        assert_eq!(unmap_page(&mut m, ROOT, 0x4000_0000), Err(MapError::HugePage));
    }

    #[test]
    fn user_range_checks() {
        let (mut m, mut f) = (FakeMem::default(), FakeFrames::new(100));
        for (i, va) in [0x40_0000u64, 0x40_1000, 0x40_3000].iter().enumerate() {
            map_page(&mut m, &mut f, ROOT, *va, 0x10_0000 + i as u64 * PAGE, pte::USER | pte::WRITABLE).unwrap();
        }
        map_page(&mut m, &mut f, ROOT, 0x50_0000, 0x20_0000, pte::USER).unwrap();
        map_page(&mut m, &mut f, ROOT, 0x60_0000, 0x30_0000, pte::WRITABLE).unwrap();
        assert!(check_user_range(&m, ROOT, 0x40_0ff0, 0x20, true));
        assert!(!check_user_range(&m, ROOT, 0x40_1000, 0x2000, false), "hole at 0x402000");
        assert!(check_user_range(&m, ROOT, 0x50_0000, 10, false));
        assert!(!check_user_range(&m, ROOT, 0x50_0000, 10, true), "read-only");
        assert!(!check_user_range(&m, ROOT, 0x60_0000, 10, false), "not USER");
        assert!(!check_user_range(&m, ROOT, u64::MAX - 4, 10, false), "overflow");
        assert!(!check_user_range(&m, ROOT, 0xffff_8000_0000_0000, 8, false), "kernel half");
        assert!(!check_user_range(&m, ROOT, 0x0000_7fff_ffff_fff0, 0x20, false), "crosses into non-canonical");
        assert!(check_user_range(&m, ROOT, 0x1234, 0, false));
        assert!(!check_user_range(&m, ROOT, 0xffff_8000_0000_0000, 0, false));
    }

    #[test]
    fn free_user_tables_keeps_kernel_half() {
        let (mut m, mut f) = (FakeMem::default(), FakeFrames::new(100));
        map_page(&mut m, &mut f, ROOT, 0xffff_8000_0000_0000, 0x8000, 0).unwrap();
        let kernel_tables = f.allocated.clone();
        map_page(&mut m, &mut f, ROOT, 0x40_0000, 0x7000, pte::USER).unwrap();
        map_page(&mut m, &mut f, ROOT, 0x7fff_0000_0000, 0x9000, pte::USER).unwrap();
        let user_tables = f.allocated.len() - kernel_tables.len();
        assert_eq!(free_user_tables(&mut m, &mut f, ROOT), user_tables);
        assert_eq!(f.allocated, kernel_tables);
        assert_eq!(translate(&m, ROOT, 0x40_0000), None);
        assert_eq!(translate(&m, ROOT, 0xffff_8000_0000_0000).unwrap().0, 0x8000);
    }

    proptest! {
        #[test]
        fn random_mappings_match_model(pages in proptest::collection::hash_set(0u64..1 << 20, 1..60)) {
            let (mut m, mut f) = (FakeMem::default(), FakeFrames::new(10_000));
            let mut model = HashMap::new();
            for (i, p) in pages.iter().enumerate() {
                let va = (p * PAGE * 97 % 0x7fff_ffff_f000) & !(PAGE - 1);
                if model.contains_key(&va) { continue; }
                let pa = 0x1_0000_0000 + i as u64 * PAGE;
                map_page(&mut m, &mut f, ROOT, va, pa, pte::USER).unwrap();
                model.insert(va, pa);
            }
            for (va, pa) in &model {
                prop_assert_eq!(translate(&m, ROOT, va + 5).map(|t| t.0), Some(pa + 5));
            }
            for va in model.keys() {
                prop_assert_eq!(unmap_page(&mut m, ROOT, *va), Ok(model[va]));
            }
        }
    }
}
