//! The kernel's own log: `kprintln!` writes to the serial console.

use core::fmt::{self, Write};

struct Serial;

impl Write for Serial {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        crate::arch::serial::write_bytes(s.as_bytes());
        Ok(())
    }
}

/// Formats to the console. The kernel runs with interrupts off on one CPU,
/// so lines never interleave with each other.
pub fn print(args: fmt::Arguments) {
    let _ = Serial.write_fmt(args);
}

/// Prints a line prefixed with `[kernel] `.
#[macro_export]
macro_rules! kprintln {
    ($($arg:tt)*) => {
        $crate::console::print(format_args!("[kernel] {}\n", format_args!($($arg)*)))
    };
}
