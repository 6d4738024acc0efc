//! Legacy devices for user-space drivers: I/O ports and I/O APIC
//! interrupt lines, each a capability the root task derives from its
//! platform capability and hands to one driver (the serial console's,
//! say). Which ports and lines may be handed out is `exo_abi`'s
//! (`ioports_allowed`, `irq_line_allowed`): never the ones the kernel
//! drives itself (PIT, PICs, RTC, PCI configuration).

use crate::arch::{cpu, ioapic};
use crate::kernel::Kernel;
use crate::object::*;
use exo_abi::{Error, Rights, IRQ_ACTIVE_LOW, IRQ_LEVEL, NO_CAP};
use exo_kcore::lattice::Label;

/// Rights, label and derivation node of the platform capability in
/// `slot`, which must carry `GRANT`.
fn platform(k: &Kernel, p: ProcId, slot: u64) -> Result<(Rights, Label, exo_kcore::cdt::CapId), Error> {
    let cap = k.proc(p).caps.get(slot)?;
    if cap.object.object != Object::Platform {
        return Err(Error::WrongType);
    }
    if !cap.rights.contains(Rights::GRANT) {
        return Err(Error::NoRights);
    }
    Ok((cap.rights, cap.object.label, cap.object.node))
}

/// `ioports_open`.
pub fn ioports_open(k: &mut Kernel, p: ProcId, slot: u64, first: u64, count: u64, dst: u64) -> Result<u64, Error> {
    let (rights, label, node) = platform(k, p, slot)?;
    if !exo_abi::ioports_allowed(first, count) {
        return Err(Error::InvalidArgument);
    }
    let dst = (dst != NO_CAP).then_some(dst);
    k.install_cap(p, dst, Object::IoPorts(first as u16, count as u16), rights, label, Some(node))
}

/// The port and width of an access through the I/O-port capability in
/// `slot`, which must carry `need` and cover `[port, port + width)`.
fn port_access(k: &Kernel, p: ProcId, slot: u64, port: u64, width: u64, need: Rights) -> Result<(u16, u64), Error> {
    let cap = k.proc(p).caps.get(slot)?;
    let Object::IoPorts(first, count) = cap.object.object else { return Err(Error::WrongType) };
    if !matches!(width, 1 | 2 | 4) {
        return Err(Error::InvalidArgument);
    }
    if !cap.rights.contains(need) {
        return Err(Error::NoRights);
    }
    let (first, end) = (u64::from(first), u64::from(first) + u64::from(count));
    if port < first || port.checked_add(width).is_none_or(|e| e > end) {
        return Err(Error::NoRights);
    }
    Ok((port as u16, width))
}

/// `port_in`.
pub fn port_in(k: &Kernel, p: ProcId, slot: u64, port: u64, width: u64) -> Result<u64, Error> {
    let (port, width) = port_access(k, p, slot, port, width, Rights::READ)?;
    Ok(match width {
        1 => u64::from(cpu::inb(port)),
        2 => u64::from(cpu::inw(port)),
        _ => u64::from(cpu::inl(port)),
    })
}

/// `port_out`.
pub fn port_out(k: &Kernel, p: ProcId, slot: u64, port: u64, width: u64, value: u64) -> Result<u64, Error> {
    let (port, width) = port_access(k, p, slot, port, width, Rights::WRITE)?;
    if value >> (8 * width) != 0 {
        return Err(Error::InvalidArgument);
    }
    match width {
        1 => cpu::outb(port, value as u8),
        2 => cpu::outw(port, value as u16),
        _ => cpu::outl(port, value as u32),
    }
    Ok(0)
}

/// `ioports_map`: opens the capability's ports to the process's threads.
pub fn ioports_map(k: &mut Kernel, p: ProcId, slot: u64) -> Result<u64, Error> {
    let cap = k.proc(p).caps.get(slot)?;
    let Object::IoPorts(first, count) = cap.object.object else { return Err(Error::WrongType) };
    if !cap.rights.contains(Rights(Rights::READ.0 | Rights::WRITE.0)) {
        return Err(Error::NoRights);
    }
    let via = cap.object.node;
    let maps = &mut k.proc_mut(p).io_maps;
    if maps.iter().any(|m| m.via == via) {
        return Err(Error::SlotInUse);
    }
    if maps.len() >= exo_abi::MAX_IO_MAPS {
        return Err(Error::Exhausted);
    }
    maps.push(IoMap { first, count, via });
    Ok(0)
}

impl Kernel {
    /// Ends the port access granted through capability `node` (it is being
    /// deleted or revoked); the bitmap follows when a thread next runs.
    pub fn release_io_maps(&mut self, node: exo_kcore::cdt::CapId) {
        for proc in self.procs.iter_mut() {
            proc.io_maps.retain(|m| m.via != node);
        }
    }
}

/// `irq_line_open`.
pub fn irq_line_open(k: &mut Kernel, p: ProcId, slot: u64, line: u64, dst: u64) -> Result<u64, Error> {
    let (rights, label, node) = platform(k, p, slot)?;
    if !exo_abi::irq_line_allowed(line) || !ioapic::has(line as u8) {
        return Err(Error::InvalidArgument);
    }
    let dst = (dst != NO_CAP).then_some(dst);
    k.install_cap(p, dst, Object::IrqLine(line as u8), rights, label, Some(node))
}

/// The line of the interrupt-line capability in `slot`, which must carry
/// `WRITE`.
fn line_of(k: &Kernel, p: ProcId, slot: u64) -> Result<u8, Error> {
    let cap = k.proc(p).caps.get(slot)?;
    let Object::IrqLine(line) = cap.object.object else { return Err(Error::WrongType) };
    if !cap.rights.contains(Rights::WRITE) {
        return Err(Error::NoRights);
    }
    Ok(line)
}

/// `irq_line_bind`: the vector the line now raises.
pub fn irq_line_bind(
    k: &mut Kernel,
    p: ProcId,
    slot: u64,
    ntfn_slot: u64,
    bits: u64,
    flags: u64,
) -> Result<u64, Error> {
    let line = line_of(k, p, slot)?;
    let via = k.proc(p).caps.get(slot)?.object.node;
    let n = k.proc(p).caps.get(ntfn_slot)?;
    let Object::Notification(notification) = n.object.object else { return Err(Error::WrongType) };
    if !n.rights.contains(Rights::WRITE) {
        return Err(Error::NoRights);
    }
    if bits == 0 || flags & !(IRQ_LEVEL | IRQ_ACTIVE_LOW) != 0 {
        return Err(Error::InvalidArgument);
    }
    if k.irqs.iter().flatten().any(|b| b.source == IrqSource::Line(line)) {
        return Err(Error::SlotInUse);
    }
    let first = exo_abi::DEVICE_VECTOR_FIRST as usize;
    let last = exo_abi::DEVICE_VECTOR_LAST as usize;
    let vector = (first..=last).find(|v| k.irqs[*v].is_none()).ok_or(Error::Exhausted)?;
    k.took_cap(Object::Notification(notification)); // the binding's reference
    k.irqs[vector] = Some(IrqBinding { source: IrqSource::Line(line), notification, bits, via, count: 0 });
    ioapic::route(line, vector as u8, flags & IRQ_LEVEL != 0, flags & IRQ_ACTIVE_LOW != 0);
    ioapic::unmask(line);
    Ok(vector as u64)
}

/// `irq_ack`.
pub fn irq_ack(k: &Kernel, p: ProcId, slot: u64) -> Result<u64, Error> {
    let line = line_of(k, p, slot)?;
    if !k.irqs.iter().flatten().any(|b| b.source == IrqSource::Line(line)) {
        return Err(Error::InvalidArgument);
    }
    ioapic::unmask(line);
    Ok(0)
}
