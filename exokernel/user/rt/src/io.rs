//! `print!` and `println!` on the console capability, or wherever the
//! program's output was sent ([`set_output`]: the POSIX library's `>
//! FILE`); `eprint!` and `eprintln!` on the console always. A line is sent
//! in one system call, so lines from different processes never mix.

use crate::sync::SpinLock;
use core::fmt::{self, Write};

const LINE: usize = 512;

/// Takes the bytes of a `print!`.
pub type Output = fn(&[u8]);

/// Where `print!` sends its bytes instead of the console, if set.
static OUTPUT: SpinLock<Option<Output>> = SpinLock::new(None);

/// Sends what `print!` and `println!` write to `to` (`None`: the console
/// again). `to` must not print itself.
pub fn set_output(to: Option<Output>) {
    *OUTPUT.lock() = to;
}

/// Collects formatted output and sends it in as few writes as possible.
pub struct LineWriter {
    buf: [u8; LINE],
    len: usize,
    /// The console, whatever [`set_output`] said.
    console: bool,
}

impl LineWriter {
    /// An empty writer to the program's output.
    pub const fn new() -> Self {
        LineWriter { buf: [0; LINE], len: 0, console: false }
    }
    /// An empty writer to the console.
    pub const fn console() -> Self {
        LineWriter { buf: [0; LINE], len: 0, console: true }
    }
    /// Sends what is buffered.
    pub fn flush(&mut self) {
        if self.len > 0 {
            let to = if self.console { None } else { *OUTPUT.lock() };
            match to {
                Some(f) => f(&self.buf[..self.len]),
                None => {
                    let _ = crate::caps::CONSOLE.write(&self.buf[..self.len]);
                }
            }
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

/// Prints formatted text to the program's output.
pub fn print(args: fmt::Arguments) {
    let mut w = LineWriter::new();
    let _ = w.write_fmt(args);
    w.flush();
}

/// Prints formatted text to the console (messages, errors).
pub fn eprint(args: fmt::Arguments) {
    let mut w = LineWriter::console();
    let _ = w.write_fmt(args);
    w.flush();
}

/// Prints to the program's output (the console unless sent elsewhere).
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::io::print(format_args!($($arg)*)) };
}

/// Prints a line to the program's output.
#[macro_export]
macro_rules! println {
    () => { $crate::io::print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::io::print(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Prints to the console, wherever the program's output goes.
#[macro_export]
macro_rules! eprint {
    ($($arg:tt)*) => { $crate::io::eprint(format_args!($($arg)*)) };
}

/// Prints a line to the console, wherever the program's output goes.
#[macro_export]
macro_rules! eprintln {
    () => { $crate::io::eprint(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::io::eprint(format_args!("{}\n", format_args!($($arg)*))) };
}
