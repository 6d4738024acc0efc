//! `print!` and `println!` on the console capability. A line is sent in
//! one system call, so lines from different processes never mix.

use core::fmt::{self, Write};

const LINE: usize = 512;

/// Collects formatted output and sends it in as few writes as possible.
pub struct LineWriter {
    buf: [u8; LINE],
    len: usize,
}

impl LineWriter {
    /// An empty writer.
    pub const fn new() -> Self {
        LineWriter { buf: [0; LINE], len: 0 }
    }
    /// Sends what is buffered.
    pub fn flush(&mut self) {
        if self.len > 0 {
            let _ = crate::caps::CONSOLE.write(&self.buf[..self.len]);
            self.len = 0;
        }
    }
}

impl Default for LineWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for LineWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for chunk in s.as_bytes().chunks(LINE) {
            if self.len + chunk.len() > LINE {
                self.flush();
            }
            self.buf[self.len..self.len + chunk.len()].copy_from_slice(chunk);
            self.len += chunk.len();
        }
        Ok(())
    }
}

/// Prints formatted text to the console.
pub fn print(args: fmt::Arguments) {
    let mut w = LineWriter::new();
    let _ = w.write_fmt(args);
    w.flush();
}

/// Prints to the console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::io::print(format_args!($($arg)*)) };
}

/// Prints a line to the console.
#[macro_export]
macro_rules! println {
    () => { $crate::io::print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::io::print(format_args!("{}\n", format_args!($($arg)*))) };
}
