//! PCI configuration-space mediation: which accesses the kernel lets
//! through for a capability to one PCI function (or to the whole bus).
//!
//! A driver needs its function's configuration space: to read the IDs, the
//! BARs and the capability list (virtio keeps its structures there), and
//! to write the command register (memory space, bus mastering, INTx off)
//! and the MSI/MSI-X and vendor capabilities. What it must not do is move
//! the function's address windows: a BAR (or expansion ROM, or bridge
//! window) moved over RAM or another device's registers would hand the
//! driver memory it holds no capability for. So writes to the header
//! between the BARs and the interrupt line are refused, whoever asks; the
//! firmware's placement stands.
//!
//! Without an IOMMU a function with bus mastering enabled can still reach
//! any RAM by DMA: that needs VT-d, which this machine model does not
//! have. The kernel keeps what it can keep: who may talk to which
//! function, and where the function's registers are.

use core::fmt;
use exo_abi::Error;

/// Bytes of configuration space per function reachable through the
/// legacy mechanism (ports 0xCF8/0xCFC), which is what the kernel uses.
pub const CONFIG_SIZE: u64 = 256;

/// A PCI function address: bus (8 bits), device (5), function (3), packed
/// as in the legacy configuration address (`bus << 8 | device << 3 |
/// function`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bdf(u16);

impl Bdf {
    /// The function `function` of device `device` on `bus`.
    pub fn new(bus: u8, device: u8, function: u8) -> Option<Bdf> {
        (device < 32 && function < 8).then_some(Bdf((bus as u16) << 8 | (device as u16) << 3 | function as u16))
    }

    /// Decodes a packed address from a system-call argument.
    pub fn from_raw(raw: u64) -> Option<Bdf> {
        u16::try_from(raw).ok().map(Bdf)
    }

    /// The packed address.
    pub fn raw(self) -> u16 {
        self.0
    }

    /// Bus number.
    pub fn bus(self) -> u8 {
        (self.0 >> 8) as u8
    }

    /// Device number (0-31).
    pub fn device(self) -> u8 {
        (self.0 >> 3) as u8 & 31
    }

    /// Function number (0-7).
    pub fn function(self) -> u8 {
        self.0 as u8 & 7
    }
}

impl fmt::Display for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}:{:02x}.{}", self.bus(), self.device(), self.function())
    }
}

/// Checks the shape of an access: 1, 2 or 4 bytes, naturally aligned,
/// inside [`CONFIG_SIZE`]. Returns the offset and width as small numbers.
pub fn check_access(offset: u64, width: u64) -> Result<(u8, u8), Error> {
    if !matches!(width, 1 | 2 | 4) || !offset.is_multiple_of(width) || offset >= CONFIG_SIZE {
        return Err(Error::InvalidArgument);
    }
    Ok((offset as u8, width as u8))
}

/// Header bytes a write may not touch: from the first BAR (0x10) through
/// the interrupt line (0x3c: `pci_irq_line` hands out the line it names),
/// and from 0x3e to the end of the header
/// (0x40). In a type 0 header that is the six BARs, the CardBus pointer,
/// the subsystem IDs, the expansion ROM BAR, the capability pointer and
/// the reserved bytes; in a bridge (type 1) the BARs, bus numbers, I/O and
/// memory windows, its ROM BAR and the bridge control register.
const LOCKED: [(u8, u8); 2] = [(0x10, 0x3d), (0x3e, 0x40)];

/// Header bytes the device defines as read-only (IDs, class, interrupt
/// pin), and BIST (0x0f), which
/// starts a self-test: writes are refused as well, so that nothing but
/// the command and status registers, the cache line size and the latency
/// timer can change in the header.
const READ_ONLY: [(u8, u8); 3] = [(0x00, 0x04), (0x08, 0x0c), (0x3d, 0x3e)];

/// Whether a write of `width` bytes at `offset` (already checked by
/// [`check_access`]) may go through: anything outside the locked and
/// read-only header ranges, and the header type byte (0x0e) never.
pub fn write_allowed(offset: u8, width: u8) -> Result<(), Error> {
    let (start, end) = (offset as u16, offset as u16 + width as u16);
    let hits = |(a, b): (u8, u8)| start < b as u16 && (a as u16) < end;
    if LOCKED.into_iter().chain(READ_ONLY).any(hits) || hits((0x0e, 0x10)) {
        return Err(Error::NoRights);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_pack_and_print_like_lspci() {
        let b = Bdf::new(0, 2, 0).unwrap();
        assert_eq!((b.bus(), b.device(), b.function(), b.raw()), (0, 2, 0, 0x10));
        assert_eq!(Bdf::new(0x1f, 31, 7).unwrap().to_string(), "1f:1f.7");
        assert_eq!(Bdf::new(0, 32, 0), None);
        assert_eq!(Bdf::new(0, 0, 8), None);
        assert_eq!(Bdf::from_raw(0x1_0000), None);
        assert_eq!(Bdf::from_raw(0xffff).map(|b| b.to_string()), Some("ff:1f.7".into()));
    }

    #[test]
    fn accesses_must_be_aligned_sized_and_inside() {
        assert_eq!(check_access(0x40, 4), Ok((0x40, 4)));
        assert_eq!(check_access(0xff, 1), Ok((0xff, 1)));
        assert_eq!(check_access(0xfe, 2), Ok((0xfe, 2)));
        for (offset, width) in [(0x41, 4), (0x3, 2), (0x100, 1), (0, 3), (0, 8), (0, 0), (u64::MAX, 1)] {
            assert_eq!(check_access(offset, width), Err(Error::InvalidArgument), "{offset:#x}/{width}");
        }
    }

    #[test]
    fn bars_rom_and_ids_cannot_be_written() {
        for offset in (0x10..0x28).step_by(4).chain([0x30, 0x00, 0x08, 0x2c, 0x34, 0x38]) {
            assert_eq!(write_allowed(offset, 4), Err(Error::NoRights), "{offset:#x}");
        }
        // Any byte of a BAR, and a word that straddles into one.
        assert_eq!(write_allowed(0x13, 1), Err(Error::NoRights));
        assert_eq!(write_allowed(0x0e, 2), Err(Error::NoRights)); // header type and BIST
        assert_eq!(write_allowed(0x0f, 1), Err(Error::NoRights));
        assert_eq!(write_allowed(0x3e, 2), Err(Error::NoRights)); // bridge control
    }

    #[test]
    fn driver_registers_can_be_written() {
        assert_eq!(write_allowed(0x04, 2), Ok(())); // command
        assert_eq!(write_allowed(0x04, 4), Ok(())); // command + status
        assert_eq!(write_allowed(0x06, 2), Ok(())); // status (write 1 to clear)
        assert_eq!(write_allowed(0x0c, 2), Ok(())); // cache line size, latency
        assert_eq!(write_allowed(0x3c, 1), Err(Error::NoRights)); // interrupt line
        for offset in (0x40..0x100).step_by(4) {
            assert_eq!(write_allowed(offset as u8, 4), Ok(()), "{offset:#x}"); // capabilities
        }
        // Every single byte either way: exactly the listed ones are open.
        let open: Vec<u8> = (0..0x40u8).filter(|o| write_allowed(*o, 1).is_ok()).collect();
        assert_eq!(open, [0x04, 0x05, 0x06, 0x07, 0x0c, 0x0d]);
    }
}
