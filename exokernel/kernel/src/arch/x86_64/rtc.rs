//! The CMOS real-time clock: read once at boot for the wall clock (the
//! monotonic clock is the TSC's). Decoding is `exo_kcore::time`'s.

use super::cpu::{inb, outb};
use exo_kcore::time::{CmosRegisters, DateTime};

fn read(reg: u8) -> u8 {
    // Bit 7 of the index port would disable NMIs: keep it clear.
    outb(0x70, reg & 0x7f);
    inb(0x71)
}

fn updating() -> bool {
    read(0x0a) & 0x80 != 0
}

fn snapshot() -> CmosRegisters {
    while updating() {
        core::hint::spin_loop();
    }
    CmosRegisters {
        seconds: read(0x00),
        minutes: read(0x02),
        hours: read(0x04),
        day: read(0x07),
        month: read(0x08),
        year: read(0x09),
        century: read(0x32),
        status_b: read(0x0b),
    }
}

/// The date and time the clock shows, read twice the same (so not torn by
/// an update in between); `None` if there is no sensible clock.
pub fn now() -> Option<DateTime> {
    let mut last = snapshot();
    for _ in 0..5 {
        let again = snapshot();
        if again == last {
            return again.decode();
        }
        last = again;
    }
    None
}
