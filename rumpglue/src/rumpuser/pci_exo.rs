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
//! - I/O space: NetBSD's bus_space does port I/O with inline `in`/`out`;
//!   `rumpcomp_pci_iospace_init` asks the kernel for each held function's
//!   I/O BARs (`pci_io_bar`) and maps them into the process's I/O
//!   permission bitmap (`ioports_map`). No other port opens.
//! - Interrupts: the legacy line (INTx) the firmware routed the function
//!   to (`pci_irq_line`), bound level-triggered to a notification; a
//!   thread with an lwp of its own waits on it, runs the driver's handler
//!   on a virtual CPU and unmasks the line. (NetBSD's rump PCI glue offers
//!   drivers no MSI, so INTx it is.)

use crate::Memory as _;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ffi::{c_int, c_uint, c_ulong, c_void};
use exo_rt::abi::{map_flags, slot, CapKind, FOREVER, IRQ_LEVEL, PAGE_SIZE};
use exo_rt::caps::{self, IrqLine, Notification, PciFunction, Untyped, SELF};

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

/// An established interrupt: the driver's handler, run by a thread of its
/// own each time the line fires.
struct Intr {
    handler: unsafe extern "C" fn(*mut c_void) -> c_int,
    arg: *mut c_void,
    line: IrqLine,
    note: Notification,
}

/// The interrupt thread: an lwp of its own in the rump kernel; waits on
/// the notification the line signals, runs the handler on a virtual CPU,
/// then unmasks the line (the handler has made the device stop asserting
/// it: virtio's reads its ISR register).
fn interrupt_thread(arg: u64) {
    // SAFETY: `rumpcomp_pci_irq_establish` leaked this box for this thread.
    let i = unsafe { Box::from_raw(arg as *mut Intr) };
    super::sched::adopt_worker();
    let hyp = super::sched::hyp();
    loop {
        if i.note.wait(FOREVER).is_err() {
            super::sys::fatal("rumpcomp_pci: the interrupt notification is gone");
        }
        // SAFETY: the kernel's upcalls around a call into it, as its
        // interrupt contract asks; the handler and argument are the ones the
        // driver established.
        unsafe {
            if let Some(s) = hyp.and_then(|h| h.hyp_schedule) {
                s();
            }
            (i.handler)(i.arg);
            if let Some(u) = hyp.and_then(|h| h.hyp_unschedule) {
                u();
            }
        }
        if i.line.ack().is_err() {
            super::sys::fatal("rumpcomp_pci: cannot unmask the interrupt line");
        }
    }
}

/// Establishes `handler(arg)` for interrupt `cookie` (from `irq_map`):
/// the function's legacy interrupt line (`pci_irq_line`), bound
/// level-triggered to a new notification, served by a thread of its own.
/// NULL, with the reason on the console, if any step fails.
#[no_mangle]
pub extern "C" fn rumpcomp_pci_irq_establish(
    cookie: c_uint,
    handler: Option<unsafe extern "C" fn(*mut c_void) -> c_int>,
    arg: *mut c_void,
) -> *mut c_void {
    let fail = |why: &str| {
        super::misc::console_write(
            alloc::format!("rumpuser: rumpcomp_pci_irq_establish (cookie {cookie}): {why}\n").as_bytes(),
        );
        core::ptr::null_mut()
    };
    let Some(handler) = handler else { return fail("no handler") };
    let Some(bdf) = IRQS.with(|v| v.iter().find(|(c, _)| *c == cookie).map(|(_, b)| *b)) else {
        return fail("never mapped");
    };
    let Some(f) = functions().into_iter().find(|f| f.bdf() == bdf) else { return fail("function not held") };
    let line = match f.irq_line() {
        Ok(l) => l,
        Err(e) => return fail(&alloc::format!("no interrupt line for the function: {}", e.name())),
    };
    let note = match Untyped::from_slot(slot::UNTYPED).create_notification() {
        Ok(n) => n,
        Err(e) => return fail(&alloc::format!("no notification: {}", e.name())),
    };
    if let Err(e) = line.bind(note, 1, IRQ_LEVEL) {
        return fail(&alloc::format!("cannot bind the line: {}", e.name()));
    }
    let intr = Box::into_raw(Box::new(Intr { handler, arg, line, note }));
    match exo_rt::thread::spawn_with_stack(interrupt_thread, intr as u64, 64 * 1024) {
        Ok(_) => intr.cast(),
        Err(e) => {
            // SAFETY: no thread took it.
            drop(unsafe { Box::from_raw(intr) });
            fail(&alloc::format!("no interrupt thread: {}", e.name()))
        }
    }
}

/// Opens the I/O BARs of every held function to this process's `in` and
/// `out` instructions (`pci_io_bar`, then `ioports_map`): NetBSD's
/// bus_space does port I/O inline. 0, or an errno if a BAR cannot be
/// mapped.
#[no_mangle]
pub extern "C" fn rumpcomp_pci_iospace_init() -> c_int {
    for f in functions() {
        for bar in 0..6u8 {
            let ports = match f.io_bar(bar) {
                Ok(p) => p,
                Err(_) => continue, // a memory BAR, or none
            };
            if let Err(e) = ports.map() {
                super::misc::console_write(
                    alloc::format!("rumpuser: cannot open I/O BAR {bar} to the driver: {}\n", e.name()).as_bytes(),
                );
                return crate::errno::EACCES;
            }
        }
    }
    0
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

/// The physical address of `va` inside DMA memory; outside it the process
/// ends with the reason.
#[no_mangle]
pub extern "C" fn rumpcomp_pci_virt_to_mach(va: *mut c_void) -> c_ulong {
    match crate::exo::DMA.phys_of(va as u64) {
        Some(pa) => pa,
        // Any address handed to the device would be wrong: it would write
        // somewhere else. Stop this process rather than do that (callers
        // hand drivers DMA memory: rump-ld reads through a bounce buffer).
        None => super::sys::fatal(&alloc::format!(
            "rumpcomp_pci_virt_to_mach: {va:p} is not DMA memory (rumpcomp_pci_dmalloc); a device cannot reach it"
        )),
    }
}
