//! NetBSD's PCI hypercalls (`rumpcomp_pci_*`, the declarations of the rump
//! libpci component's `pci_user.h`) on ExoV6, over the capabilities the
//! manifest gave the driver process (docs/porting.md, section 3).
//!
//! - Configuration space: reads and writes go to the PCI function
//!   capabilities the process holds, through the kernel's mediation. Every
//!   other function reads as absent (all ones), so a NetBSD bus scan finds
//!   exactly the process's own devices; writes to them are dropped.
//! - Registers: `rumpcomp_pci_map` maps the memory BAR of a held function
//!   that contains the physical address (once; later calls reuse it).
//! - DMA: contiguous memory from the process's budget (rumpglue's `DMA`),
//!   with its physical address; `virt_to_mach` finds it again.
//! - Interrupts: `irq_map` records which function a cookie names;
//!   `irq_establish` is not there yet (it must program the device's MSI or
//!   MSI-X entry with a vector from `irq_bind`): it says so on the console
//!   and returns NULL, which a NetBSD driver reports as an attach failure.

use crate::Memory as _;
use alloc::vec::Vec;
use core::ffi::{c_int, c_uint, c_ulong, c_void};
use exo_rt::abi::{map_flags, CapKind, PAGE_SIZE};
use exo_rt::caps::{self, PciFunction, SELF};

use super::sys::Locked;

/// Where BARs are mapped: upwards from 80 GiB.
const MMIO_VA: u64 = 0x14_0000_0000;

/// The PCI functions this process holds (found once, by asking the
/// kernel what each slot holds).
fn functions() -> Vec<PciFunction> {
    static HELD: Locked<Option<Vec<PciFunction>>> = Locked::new(None);
    HELD.with(|h| {
        h.get_or_insert_with(|| {
            (0..exo_rt::abi::slot::COUNT)
                .filter(|s| caps::info(*s).is_ok_and(|i| i.kind == Some(CapKind::PciFunction)))
                .filter_map(|s| PciFunction::from_slot(s).ok())
                .collect()
        })
        .clone()
    })
}

fn held(bus: c_uint, dev: c_uint, fun: c_uint) -> Option<PciFunction> {
    if bus > 255 || dev > 31 || fun > 7 {
        return None;
    }
    let bdf = (bus << 8 | dev << 3 | fun) as u16;
    functions().into_iter().find(|f| f.bdf() == bdf)
}

/// Reads the configuration dword at `reg` of a function (all ones for a
/// function this process does not hold).
///
/// # Safety
/// `value` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn rumpcomp_pci_confread(
    bus: c_uint,
    dev: c_uint,
    fun: c_uint,
    reg: c_int,
    value: *mut c_uint,
) -> c_int {
    let v = match (held(bus, dev, fun), u8::try_from(reg & !3)) {
        (Some(f), Ok(r)) => f.read(r, 4).unwrap_or(u32::MAX),
        _ => u32::MAX,
    };
    // SAFETY: the caller's promise.
    unsafe { *value = v };
    0
}

/// Writes the configuration dword at `reg` of a held function (the kernel
/// refuses the IDs, BARs, ROM and bridge windows); other functions' writes
/// are dropped.
#[no_mangle]
pub extern "C" fn rumpcomp_pci_confwrite(bus: c_uint, dev: c_uint, fun: c_uint, reg: c_int, value: c_uint) -> c_int {
    if let (Some(f), Ok(r)) = (held(bus, dev, fun), u8::try_from(reg & !3)) {
        if f.write(r, 4, value).is_err() {
            return crate::errno::EACCES;
        }
    }
    0
}

/// A BAR mapped for the driver.
struct Mapped {
    phys: u64,
    len: u64,
    va: u64,
}

static MAPPED: Locked<Vec<Mapped>> = Locked::new(Vec::new());

/// Maps the registers at physical `addr` (`len` bytes) of a held
/// function's memory BAR; NULL if no held BAR contains them.
#[no_mangle]
pub extern "C" fn rumpcomp_pci_map(addr: c_ulong, len: c_ulong) -> *mut c_void {
    let inside = |m: &Mapped| addr >= m.phys && addr.saturating_add(len) <= m.phys + m.len;
    if let Some(va) = MAPPED.with(|v| v.iter().find(|m| inside(m)).map(|m| m.va + (addr - m.phys))) {
        return va as *mut c_void;
    }
    for f in functions() {
        for bar in 0..6u8 {
            let Ok(mem) = f.bar(bar) else { continue };
            let (Ok(info), Ok(phys)) = (caps::info(mem.slot()), mem.phys(0)) else {
                let _ = caps::delete(mem.slot());
                continue;
            };
            let m = Mapped { phys, len: info.pages * PAGE_SIZE, va: 0 };
            if !inside(&m) {
                let _ = caps::delete(mem.slot());
                continue;
            }
            let mapped = MAPPED.with(|v| {
                let va = MMIO_VA + v.iter().map(|m| m.len + PAGE_SIZE).sum::<u64>();
                SELF.map(mem, va, map_flags::READ | map_flags::WRITE).ok()?;
                v.push(Mapped { va, ..m });
                Some(va + (addr - phys))
            });
            return mapped.map_or(core::ptr::null_mut(), |va| va as *mut c_void);
        }
    }
    core::ptr::null_mut()
}

/// Interrupt cookies and the functions they name.
static IRQS: Locked<Vec<(c_uint, u16)>> = Locked::new(Vec::new());

/// Records that interrupt `cookie` is the one of function bus/dev/fun.
#[no_mangle]
pub extern "C" fn rumpcomp_pci_irq_map(
    bus: c_uint,
    dev: c_uint,
    fun: c_uint,
    _intrline: c_int,
    cookie: c_uint,
) -> c_int {
    match held(bus, dev, fun) {
        Some(f) => {
            IRQS.with(|v| v.push((cookie, f.bdf())));
            0
        }
        None => crate::errno::ENODEV,
    }
}

/// Not there yet (see the module documentation): NULL.
#[no_mangle]
pub extern "C" fn rumpcomp_pci_irq_establish(
    cookie: c_uint,
    _handler: Option<unsafe extern "C" fn(*mut c_void) -> c_int>,
    _arg: *mut c_void,
) -> *mut c_void {
    let known = IRQS.with(|v| v.iter().any(|(c, _)| *c == cookie));
    super::misc::console_write(
        alloc::format!(
            "rumpuser: rumpcomp_pci_irq_establish (cookie {cookie}{}): interrupts for NetBSD PCI drivers are not \
             implemented on ExoV6 yet\n",
            if known { "" } else { ", never mapped" }
        )
        .as_bytes(),
    );
    core::ptr::null_mut()
}

/// Allocates `size` bytes of DMA memory aligned to `align` (at most a
/// page: regions are page-aligned): its physical and virtual addresses.
///
/// # Safety
/// `pap` and `vap` are valid for writes.
#[no_mangle]
pub unsafe extern "C" fn rumpcomp_pci_dmalloc(
    size: usize,
    align: usize,
    pap: *mut c_ulong,
    vap: *mut c_ulong,
) -> c_int {
    if size == 0 || align > PAGE_SIZE as usize {
        return crate::errno::EINVAL;
    }
    match crate::exo::DMA.alloc_dma(size.div_ceil(PAGE_SIZE as usize)) {
        Ok(r) => {
            // SAFETY: the caller's promise.
            unsafe {
                *pap = r.phys;
                *vap = r.virt as c_ulong;
            }
            0
        }
        Err(e) => e.errno(),
    }
}

/// Gives back DMA memory from `rumpcomp_pci_dmalloc` (by its physical
/// address).
#[no_mangle]
pub extern "C" fn rumpcomp_pci_dmafree(pa: c_ulong, size: usize) {
    if let Some((virt, len)) = crate::exo::DMA.find(pa) {
        let region = crate::DmaRegion { virt, phys: pa, len: len.max(size) };
        // SAFETY: the driver gives it back, done with it.
        unsafe { crate::exo::DMA.free_dma(region) };
    }
}

/// One segment of DMA memory, as `pci_user.h` declares it.
#[repr(C)]
pub struct rumpcomp_pci_dmaseg {
    /// Physical address.
    pub ds_pa: c_ulong,
    /// Bytes.
    pub ds_len: c_ulong,
    /// The virtual address `dmalloc` returned.
    pub ds_vacookie: c_ulong,
}

/// Maps DMA segments into one virtual range: for one segment (what
/// `dmalloc` gives), the address it already has; several are refused
/// (EOPNOTSUPP).
///
/// # Safety
/// `segs` points to `nseg` segments; `vap` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn rumpcomp_pci_dmamem_map(
    segs: *mut rumpcomp_pci_dmaseg,
    nseg: usize,
    _totlen: usize,
    vap: *mut *mut c_void,
) -> c_int {
    if nseg != 1 || segs.is_null() {
        return crate::errno::EOPNOTSUPP;
    }
    // SAFETY: the caller's promise.
    unsafe { *vap = (*segs).ds_vacookie as *mut c_void };
    0
}

/// The physical address of `va` inside DMA memory (0 outside it).
#[no_mangle]
pub extern "C" fn rumpcomp_pci_virt_to_mach(va: *mut c_void) -> c_ulong {
    crate::exo::DMA.phys_of(va as u64).unwrap_or(0)
}
