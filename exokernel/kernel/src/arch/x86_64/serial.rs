//! COM1 (16550 UART) output: the kernel console.

use super::cpu::{inb, outb};

const COM1: u16 = 0x3f8;

/// Programs COM1 for 115200 baud, 8N1, interrupts off. Its FIFO stays
/// off: turning it on clears what it received, and a key typed while
/// ExoV6 boots must wait for the console driver (which reads a byte an
/// interrupt; QEMU holds the next ones back until it has, losing none).
pub fn init() {
    outb(COM1 + 1, 0x00); // no interrupts
    outb(COM1 + 3, 0x80); // DLAB
    outb(COM1, 0x01); // divisor 1 = 115200 baud
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03); // 8N1
    outb(COM1 + 2, 0x00); // no FIFO (see above)
    outb(COM1 + 4, 0x03); // DTR + RTS
}

/// Writes one byte, waiting for the transmitter.
pub fn write_byte(b: u8) {
    while inb(COM1 + 5) & 0x20 == 0 {
        core::hint::spin_loop();
    }
    outb(COM1, b);
}

/// Writes bytes, turning `\n` into `\r\n`.
pub fn write_bytes(bytes: &[u8]) {
    for &b in bytes {
        if b == b'\n' {
            write_byte(b'\r');
        }
        write_byte(b);
    }
}
