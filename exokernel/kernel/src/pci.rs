//! PCI configuration-space system calls: decode, check the capability and
//! the mediation rules (`exo_kcore::pci`), then access the hardware.
//!
//! The root task holds the bus capability: it enumerates functions and
//! opens a capability to each function a driver should get. A function
//! capability reaches only that function's configuration space.

use crate::arch::pci;
use crate::kernel::Kernel;
use crate::object::*;
use exo_abi::{Error, Rights, NO_CAP, PAGE_SIZE};
use exo_kcore::pci::{check_access, write_allowed, Bdf};

/// The function `bdf` as reached through the PCI capability in `slot` of
/// `p`, which must carry `need`: any function for the bus capability,
/// its own for a function capability.
fn target(k: &Kernel, p: ProcId, slot: u64, bdf: u64, need: Rights) -> Result<Bdf, Error> {
    let cap = k.proc(p).caps.get(slot)?;
    let bdf = Bdf::from_raw(bdf).ok_or(Error::InvalidArgument)?;
    let own = match cap.object.object {
        Object::PciBus => bdf,
        Object::PciFunction(f) => f,
        _ => return Err(Error::WrongType),
    };
    if !cap.rights.contains(need) || own != bdf {
        return Err(Error::NoRights);
    }
    Ok(bdf)
}

/// `pci_open`: a capability to function `bdf`, derived from the bus
/// capability in `slot`.
pub fn open(k: &mut Kernel, p: ProcId, slot: u64, bdf: u64, dst: u64) -> Result<u64, Error> {
    let cap = k.proc(p).caps.get(slot)?;
    if cap.object.object != Object::PciBus {
        return Err(Error::WrongType);
    }
    if !cap.rights.contains(Rights::GRANT) {
        return Err(Error::NoRights);
    }
    let f = Bdf::from_raw(bdf).ok_or(Error::InvalidArgument)?;
    if pci::read(f, 0, 2) == 0xffff {
        return Err(Error::InvalidArgument); // no function answers there
    }
    let dst = (dst != NO_CAP).then_some(dst);
    k.install_cap(p, dst, Object::PciFunction(f), cap.rights, cap.object.label, Some(cap.object.node))
}

/// `pci_config_read`.
pub fn config_read(k: &Kernel, p: ProcId, slot: u64, bdf: u64, offset: u64, width: u64) -> Result<u64, Error> {
    let f = target(k, p, slot, bdf, Rights::READ)?;
    let (offset, width) = check_access(offset, width)?;
    Ok(pci::read(f, offset, width) as u64)
}

/// `pci_config_write`.
pub fn config_write(
    k: &Kernel,
    p: ProcId,
    slot: u64,
    bdf: u64,
    offset: u64,
    width: u64,
    value: u64,
) -> Result<u64, Error> {
    let f = target(k, p, slot, bdf, Rights::WRITE)?;
    let (offset, width) = check_access(offset, width)?;
    if width < 8 && value >> (8 * width as u32) != 0 {
        return Err(Error::InvalidArgument); // more bits than the width
    }
    write_allowed(offset, width)?;
    pci::write(f, offset, width, value as u32);
    Ok(0)
}

/// E820 type of reserved regions: the only kind device memory may lie in.
const E820_RESERVED: u32 = 2;

/// The six BAR registers of `f`: what each holds and the mask it reads
/// back once all ones are written (the standard probe). Probed once per
/// function, all six with the function's decoding off and everything
/// restored after, then kept: under QEMU each switch of the decoding
/// rebuilds the machine's memory map, milliseconds a time, and a driver
/// asks for its BARs one by one. The values cannot change meanwhile: no
/// one but the kernel may write the BARs (`write_allowed`).
fn bar_registers(k: &mut Kernel, f: Bdf) -> [(u32, u32); 6] {
    if let Some((_, regs)) = k.pci_bars.iter().find(|(g, _)| *g == f) {
        return *regs;
    }
    // A function that is not there has no BARs (and is not kept: the
    // table holds only what exists); a bridge (header type 1) has two,
    // the rest of its header being bus numbers and windows.
    let bars = match (pci::read(f, 0x00, 2), pci::read(f, 0x0e, 1) & 0x7f) {
        (0xffff, _) => return [(0, 0); 6],
        (_, 0) => 6,
        (_, 1) => 2,
        _ => 0,
    };
    let command = pci::read(f, 0x04, 2);
    pci::write(f, 0x04, 2, command & !0b11);
    let regs = core::array::from_fn(|i| {
        if i >= bars {
            return (0, 0);
        }
        let at = 0x10 + 4 * i as u8;
        let old = pci::read(f, at, 4);
        pci::write(f, at, 4, 0xffff_ffff);
        let mask = pci::read(f, at, 4);
        pci::write(f, at, 4, old);
        (old, mask)
    });
    pci::write(f, 0x04, 2, command);
    k.pci_bars.push((f, regs));
    regs
}

/// Base and size of memory BAR `bar` of `f` ([`bar_registers`]).
fn probe_bar(k: &mut Kernel, f: Bdf, bar: u8) -> Result<(u64, u64), Error> {
    if bar > 5 {
        return Err(Error::InvalidArgument);
    }
    let regs = bar_registers(k, f);
    let (lo, mask_lo) = regs[bar as usize];
    if lo & 1 != 0 {
        return Err(Error::WrongType); // an I/O port BAR
    }
    let wide = (lo >> 1) & 3 == 2;
    if wide && bar == 5 {
        return Err(Error::InvalidArgument);
    }
    let (hi, mask_hi) = if wide { regs[bar as usize + 1] } else { (0, 0xffff_ffff) };
    let mask_lo = mask_lo & !0xf;
    if mask_lo == 0 && (!wide || mask_hi == 0) {
        return Err(Error::InvalidArgument); // not implemented
    }
    let mask = (mask_hi as u64) << 32 | mask_lo as u64;
    Ok(((hi as u64) << 32 | (lo & !0xf) as u64, (!mask).wrapping_add(1)))
}

/// `pci_bar`: a memory capability to the registers behind memory BAR
/// `bar` of the function.
pub fn bar(k: &mut Kernel, p: ProcId, slot: u64, bdf: u64, bar: u64, dst: u64) -> Result<u64, Error> {
    let rw = Rights(Rights::READ.0 | Rights::WRITE.0);
    let f = target(k, p, slot, bdf, rw)?;
    let cap = k.proc(p).caps.get(slot)?;
    let (base, size) = probe_bar(k, f, u8::try_from(bar).map_err(|_| Error::InvalidArgument)?)?;
    let end = base.checked_add(size).ok_or(Error::InvalidArgument)?;
    let pages = size / PAGE_SIZE;
    if base == 0 || size < PAGE_SIZE || !base.is_multiple_of(PAGE_SIZE) || pages > crate::kernel::MAX_OBJECT_PAGES {
        return Err(Error::InvalidArgument);
    }
    if k.memory_map.iter().any(|(s, e, kind)| *kind != E820_RESERVED && base < *e && *s < end) {
        return Err(Error::InvalidArgument); // over RAM (or ACPI data): never
    }
    let frames = (0..pages).map(|i| base + i * PAGE_SIZE).collect();
    let generation = k.fresh_generation();
    let m = k.insert_memory(MemObject { frames, refs: 0, untyped: None, generation, device: true });
    let rights = cap.rights.intersect(Rights(rw.0 | Rights::GRANT.0));
    let dst = (dst != NO_CAP).then_some(dst);
    let r = k.install_cap(p, dst, Object::Memory(m), rights, cap.object.label, Some(cap.object.node));
    if r.is_err() {
        k.mems[m.0 as usize] = None; // nothing refers to it
    }
    r
}

/// `pci_io_bar`: an I/O-port capability to the ports behind I/O BAR `bar`
/// of the function, sized by the standard probe ([`bar_registers`]).
pub fn io_bar(k: &mut Kernel, p: ProcId, slot: u64, bdf: u64, bar: u64, dst: u64) -> Result<u64, Error> {
    let rw = Rights(Rights::READ.0 | Rights::WRITE.0);
    let f = target(k, p, slot, bdf, rw)?;
    let cap = k.proc(p).caps.get(slot)?;
    let bar = u8::try_from(bar).ok().filter(|b| *b <= 5).ok_or(Error::InvalidArgument)?;
    let (old, mask) = bar_registers(k, f)[bar as usize];
    if old & 1 == 0 {
        return Err(Error::WrongType); // a memory BAR
    }
    let mask = mask & 0xffff & !3;
    let base = u64::from(old & 0xffff & !3);
    let size = u64::from((!mask).wrapping_add(1) & 0xffff);
    // Ports above 64 KiB do not exist on x86; a BAR the firmware left at 0
    // or below the kernel's own ports is never handed out.
    if mask == 0 || old >> 16 != 0 || base < exo_abi::PCI_IO_FIRST || base + size > 0x1_0000 || size == 0 {
        return Err(Error::InvalidArgument);
    }
    let rights = cap.rights.intersect(Rights(rw.0 | Rights::GRANT.0));
    let dst = (dst != NO_CAP).then_some(dst);
    let (label, node) = (cap.object.label, cap.object.node);
    k.install_cap(p, dst, Object::IoPorts(base as u16, size as u16), rights, label, Some(node))
}

/// `pci_irq_line`: a capability to the I/O APIC line of the function's
/// legacy interrupt, as the firmware routed it.
pub fn irq_line(k: &mut Kernel, p: ProcId, slot: u64, bdf: u64, dst: u64) -> Result<u64, Error> {
    let f = target(k, p, slot, bdf, Rights::WRITE)?;
    let cap = k.proc(p).caps.get(slot)?;
    let (line, pin) = (pci::read(f, 0x3c, 1), pci::read(f, 0x3d, 1));
    let line = u64::from(line);
    if pin == 0 || !exo_abi::irq_line_allowed(line) || !crate::arch::ioapic::has(line as u8) {
        return Err(Error::InvalidArgument);
    }
    let dst = (dst != NO_CAP).then_some(dst);
    let (rights, label, node) = (cap.rights, cap.object.label, cap.object.node);
    k.install_cap(p, dst, Object::IrqLine(line as u8), rights, label, Some(node))
}

/// `irq_bind`: a free device vector that signals `bits` on the
/// notification in `ntfn_slot`, for as long as the PCI capability in
/// `slot` lasts.
pub fn irq_bind(k: &mut Kernel, p: ProcId, slot: u64, bdf: u64, ntfn_slot: u64, bits: u64) -> Result<u64, Error> {
    let function = target(k, p, slot, bdf, Rights::WRITE)?;
    let via = k.proc(p).caps.get(slot)?.object.node;
    let n = k.proc(p).caps.get(ntfn_slot)?;
    let Object::Notification(notification) = n.object.object else { return Err(Error::WrongType) };
    if !n.rights.contains(Rights::WRITE) {
        return Err(Error::NoRights);
    }
    if bits == 0 {
        return Err(Error::InvalidArgument);
    }
    // One device cannot take every vector from the others.
    if k.irqs.iter().flatten().filter(|b| b.source == IrqSource::Msi(function)).count()
        >= exo_abi::MAX_VECTORS_PER_FUNCTION
    {
        return Err(Error::Exhausted);
    }
    let first = exo_abi::DEVICE_VECTOR_FIRST as usize;
    let last = exo_abi::DEVICE_VECTOR_LAST as usize;
    let vector = (first..=last).find(|v| k.irqs[*v].is_none()).ok_or(Error::Exhausted)?;
    k.took_cap(Object::Notification(notification)); // the binding's reference
    k.irqs[vector] = Some(IrqBinding { source: IrqSource::Msi(function), notification, bits, via, count: 0 });
    Ok(vector as u64)
}

impl Kernel {
    /// Device vector `v` fired: signal its notification, if bound (an
    /// I/O APIC line stays masked until its driver acknowledges).
    pub fn device_interrupt(&mut self, v: usize) {
        let Some(b) = self.irqs.get_mut(v).and_then(|b| b.as_mut()) else { return };
        b.count += 1;
        if let IrqSource::Line(line) = b.source {
            crate::arch::ioapic::mask(line);
        }
        let (n, bits) = (b.notification, b.bits);
        self.signal(n, bits);
    }

    /// Ends the interrupt bindings and port mappings made through
    /// capability `node` (it is being deleted or revoked).
    pub fn release_bindings(&mut self, node: exo_kcore::cdt::CapId) {
        self.release_io_maps(node);
        for v in 0..self.irqs.len() {
            if self.irqs[v].is_some_and(|b| b.via == node) {
                let b = self.irqs[v].take().expect("checked");
                if let IrqSource::Line(line) = b.source {
                    crate::arch::ioapic::release(line);
                }
                self.drop_cap(Object::Notification(b.notification));
            }
        }
    }
}
