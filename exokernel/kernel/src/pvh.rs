//! The PVH boot protocol's `hvm_start_info`: memory map, modules, command
//! line. Read once at boot through the direct map, checked, and copied
//! into plain values.

use crate::mm::phys_to_virt;

const MAGIC: u32 = 0x336e_c578;
/// Memory map entry type for usable RAM.
pub const E820_RAM: u32 = 1;
const MAX_REGIONS: usize = 64;

/// One memory map entry.
#[derive(Clone, Copy, Debug, Default)]
pub struct Region {
    /// Physical start.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
    /// E820 type (1 = RAM).
    pub kind: u32,
}

/// What the boot loader told us.
#[derive(Debug)]
pub struct BootInfo {
    /// Memory map entries (at most 64 kept).
    pub regions: [Region; MAX_REGIONS],
    /// Number of valid entries in `regions`.
    pub region_count: usize,
    /// The first module (the boot image): physical start and size.
    pub module: Option<(u64, u64)>,
    /// Physical address and size of the start-info block itself.
    pub start_info: (u64, u64),
    /// The kernel command line (QEMU's `-append`), copied; at most
    /// [`CMDLINE_MAX`] bytes are kept.
    pub cmdline: [u8; CMDLINE_MAX],
    /// Its length.
    pub cmdline_len: usize,
}

/// The longest kernel command line kept (the rest is cut off).
pub const CMDLINE_MAX: usize = 1024;

impl BootInfo {
    /// The kernel command line as given (empty without one).
    pub fn cmdline(&self) -> &[u8] {
        &self.cmdline[..self.cmdline_len]
    }
}

fn read<T: Copy>(phys: u64) -> T {
    // SAFETY: callers pass physical addresses inside the start-info block,
    // module list or memory map the boot loader gave us; all lie in the
    // first 4 GiB, which the boot tables direct-map. `read_unaligned`
    // tolerates any alignment.
    unsafe { (phys_to_virt(phys) as *const T).read_unaligned() }
}

/// Parses the start-info block at physical address `phys`.
pub fn parse(phys: u64) -> Result<BootInfo, &'static str> {
    if phys == 0 || phys >= crate::arch::boot::HHDM_SIZE {
        return Err("no PVH start info (was the kernel booted with PVH?)");
    }
    if read::<u32>(phys) != MAGIC {
        return Err("bad PVH start-info magic");
    }
    let version = read::<u32>(phys + 4);
    let nr_modules = read::<u32>(phys + 12);
    let modlist = read::<u64>(phys + 16);
    if version < 1 {
        return Err("PVH start info version 0 has no memory map");
    }
    let memmap = read::<u64>(phys + 40);
    let entries = read::<u32>(phys + 48) as usize;
    let mut info = BootInfo {
        regions: [Region::default(); MAX_REGIONS],
        region_count: entries.min(MAX_REGIONS),
        module: None,
        start_info: (phys, 56),
        cmdline: [0; CMDLINE_MAX],
        cmdline_len: 0,
    };
    // The command line, up to its NUL (or the most we keep), copied now:
    // the frames it lies in are not reserved.
    let cmdline = read::<u64>(phys + 24);
    if cmdline != 0 && cmdline < crate::arch::boot::HHDM_SIZE - CMDLINE_MAX as u64 {
        while info.cmdline_len < CMDLINE_MAX {
            let b = read::<u8>(cmdline + info.cmdline_len as u64);
            if b == 0 {
                break;
            }
            info.cmdline[info.cmdline_len] = b;
            info.cmdline_len += 1;
        }
    }
    if memmap == 0 || entries == 0 {
        return Err("PVH memory map is empty");
    }
    for i in 0..info.region_count {
        let e = memmap + 24 * i as u64;
        info.regions[i] = Region { start: read(e), len: read(e + 8), kind: read(e + 16) };
    }
    if nr_modules > 0 && modlist != 0 {
        let (start, size) = (read::<u64>(modlist), read::<u64>(modlist + 8));
        info.module = Some((start, size));
    }
    Ok(info)
}
