//! Port I/O by `in` and `out` instructions, for drivers whose I/O-port
//! capability is mapped (`IoPorts::map`). A port the process may not use
//! faults (#GP) and the kernel ends the process: no memory of this
//! process or another is at stake, so the functions are safe.

/// Reads the byte at `port`.
pub fn inb(port: u16) -> u8 {
    let v: u8;
    // SAFETY: `in` touches no memory; the kernel's I/O permission bitmap
    // decides whether it runs or faults.
    unsafe { core::arch::asm!("in al, dx", out("al") v, in("dx") port, options(nomem, nostack, preserves_flags)) };
    v
}

/// Writes the byte `v` at `port`.
pub fn outb(port: u16, v: u8) {
    // SAFETY: as for `inb`.
    unsafe { core::arch::asm!("out dx, al", in("dx") port, in("al") v, options(nomem, nostack, preserves_flags)) };
}
