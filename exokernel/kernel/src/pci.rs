//! PCI configuration-space system calls: decode, check the capability and
//! the mediation rules (`exo_kcore::pci`), then access the hardware.
//!
//! The root task holds the bus capability: it enumerates functions and
//! opens a capability to each function a driver should get. A function
//! capability reaches only that function's configuration space.

use crate::arch::pci;
use crate::kernel::Kernel;
use crate::object::*;
use exo_abi::{Error, Rights, NO_CAP};
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
