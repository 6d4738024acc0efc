//! The PCI functions the machine has, found through the bus capability,
//! and which program drives which of them.

use alloc::vec::Vec;
use exo_abi::Error;
use exo_manifest::Device;
use exo_rt::caps::PciBus;
use exo_rt::println;

/// A function that answered on the bus.
#[derive(Clone, Copy, Debug)]
pub struct Function {
    /// `bus << 8 | device << 3 | function`.
    pub bdf: u16,
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// Given to a program already.
    pub claimed: bool,
}

fn bdf(bus: u8, device: u8, function: u8) -> u16 {
    (bus as u16) << 8 | (device as u16) << 3 | function as u16
}

/// Every function on bus 0 and on the buses behind its bridges, logged
/// as found (`root: pci 00:03.0 1af4:1001 class 010000`).
pub fn enumerate(pci: PciBus) -> Result<Vec<Function>, Error> {
    let mut found = Vec::new();
    let mut buses = alloc::vec![0u8];
    let mut seen = [false; 256];
    while let Some(bus) = buses.pop() {
        if core::mem::replace(&mut seen[bus as usize], true) {
            continue; // a loop of bridges: each bus once
        }
        for dev in 0..32 {
            let functions = match pci.read(bdf(bus, dev, 0), 0x0e, 1)? {
                _ if pci.read(bdf(bus, dev, 0), 0, 2)? == 0xffff => 0,
                t if t & 0x80 != 0 => 8, // multi-function
                _ => 1,
            };
            for func in 0..functions {
                let at = bdf(bus, dev, func);
                let ids = pci.read(at, 0, 4)?;
                if ids & 0xffff == 0xffff {
                    continue;
                }
                let class = pci.read(at, 0x08, 4)? >> 8;
                let f = Function { bdf: at, vendor: ids as u16, device: (ids >> 16) as u16, claimed: false };
                let kind = Device::ALL.iter().find(|(_, d)| d.matches(f.vendor, f.device)).map_or("", |(n, _)| *n);
                println!(
                    "root: pci {bus:02x}:{dev:02x}.{func} {:04x}:{:04x} class {class:06x}{}{kind}",
                    f.vendor,
                    f.device,
                    if kind.is_empty() { "" } else { " " }
                );
                // A PCI-to-PCI bridge: scan its secondary bus too.
                if pci.read(at, 0x0e, 1)? & 0x7f == 1 {
                    buses.push(pci.read(at, 0x19, 1)? as u8);
                }
                found.push(f);
            }
        }
    }
    found.sort_by_key(|f| f.bdf);
    Ok(found)
}

/// The next function of kind `d` nobody drives yet, now claimed.
pub fn claim(functions: &mut [Function], d: Device) -> Option<u16> {
    let f = functions.iter_mut().find(|f| !f.claimed && d.matches(f.vendor, f.device))?;
    f.claimed = true;
    Some(f.bdf)
}
