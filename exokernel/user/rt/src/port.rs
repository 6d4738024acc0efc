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

/// The 16550 UART's registers, as offsets from its first port, and the
/// bits ExoV6's serial drivers use (the console driver, the appliance's
/// bridge).
pub mod uart {
    /// Receive buffer (read), transmit holding register (write); with
    /// the divisor latch on, the divisor's low byte.
    pub const RBR: u16 = 0;
    /// Interrupt enable.
    pub const IER: u16 = 1;
    /// FIFO control.
    pub const FCR: u16 = 2;
    /// Line control.
    pub const LCR: u16 = 3;
    /// Modem control.
    pub const MCR: u16 = 4;
    /// Line status.
    pub const LSR: u16 = 5;
    /// LSR: a received byte waits.
    pub const DATA_READY: u8 = 0x01;
    /// LSR: the transmitter holds nothing.
    pub const THR_EMPTY: u8 = 0x20;
    /// IER: interrupt when a byte arrives.
    pub const RECEIVED: u8 = 0x01;
    /// MCR: DTR, RTS and OUT2 (which gates the UART's interrupt on PCs).
    pub const MCR_ON: u8 = 0x0b;
}
