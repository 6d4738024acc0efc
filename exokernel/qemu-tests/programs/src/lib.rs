//! What the demo and test programs share.
#![no_std]

use exo_rt::println;

/// A test program's checks, one console line each: `PROGRAM: NAME:
/// DETAIL ok` (or `FAILED`), then `PROGRAM: P/T checks passed` from
/// [`Checks::finish`]. The QEMU tests read these lines.
pub struct Checks {
    program: &'static str,
    passed: u32,
    total: u32,
}

impl Checks {
    /// No checks yet; lines start with `program`.
    pub const fn new(program: &'static str) -> Checks {
        Checks { program, passed: 0, total: 0 }
    }

    /// Records and prints one check.
    pub fn check(&mut self, name: &str, ok: bool, detail: core::fmt::Arguments) {
        self.total += 1;
        self.passed += ok as u32;
        println!("{}: {name}: {detail} {}", self.program, if ok { "ok" } else { "FAILED" });
    }

    /// Prints the tally; the exit code: 0 if every check passed, else 1.
    pub fn finish(&self) -> i32 {
        println!("{}: {}/{} checks passed", self.program, self.passed, self.total);
        (self.passed != self.total) as i32
    }
}
