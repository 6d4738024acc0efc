//! PCI configuration space through the legacy mechanism: a function and
//! dword offset written to port 0xCF8, the data read or written at 0xCFC
//! (plus the byte offset within the dword).

use super::cpu;
use exo_kcore::pci::Bdf;

const ADDRESS: u16 = 0xcf8;
const DATA: u16 = 0xcfc;

fn select(f: Bdf, offset: u8) -> u16 {
    cpu::outl(ADDRESS, 0x8000_0000 | (f.raw() as u32) << 8 | (offset & 0xfc) as u32);
    DATA + (offset & 3) as u16
}

/// Reads `width` (1, 2 or 4) bytes at `offset` (aligned, below 256) of
/// function `f`. A function that does not exist reads as all ones.
pub fn read(f: Bdf, offset: u8, width: u8) -> u32 {
    let port = select(f, offset);
    match width {
        1 => cpu::inb(port) as u32,
        2 => cpu::inw(port) as u32,
        _ => cpu::inl(port),
    }
}

/// Writes the low `width` (1, 2 or 4) bytes of `value` at `offset`
/// (aligned, below 256) of function `f`.
pub fn write(f: Bdf, offset: u8, width: u8, value: u32) {
    let port = select(f, offset);
    match width {
        1 => cpu::outb(port, value as u8),
        2 => cpu::outw(port, value as u16),
        _ => cpu::outl(port, value),
    }
}
