//! Local APIC timer (the preemption tick) calibrated against the PIT, and
//! the legacy 8259 PICs, which are remapped and masked.

use super::boot::HHDM_BASE;
use super::cpu::{inb, outb, rdtsc};

const APIC_PHYS: u64 = 0xfee0_0000;
const REG_EOI: u64 = 0xb0;
const REG_SPURIOUS: u64 = 0xf0;
const REG_LVT_TIMER: u64 = 0x320;
const REG_TIMER_INIT: u64 = 0x380;
const REG_TIMER_CURRENT: u64 = 0x390;
const REG_TIMER_DIVIDE: u64 = 0x3e0;
const TIMER_PERIODIC: u32 = 1 << 17;
const PIT_HZ: u64 = 1_193_182;
const CALIBRATION_MS: u64 = 10;

/// Vector of the preemption timer.
pub const TIMER_VECTOR: u8 = 32;
/// Vector of spurious APIC interrupts.
pub const SPURIOUS_VECTOR: u8 = 0xff;

fn reg(offset: u64) -> *mut u32 {
    (HHDM_BASE + APIC_PHYS + offset) as *mut u32
}

fn write(offset: u64, v: u32) {
    // SAFETY: the APIC page lies in the uncached part of the direct map
    // set up at boot; `offset` is a register of the local APIC.
    unsafe { reg(offset).write_volatile(v) }
}

fn read(offset: u64) -> u32 {
    // SAFETY: as for `write`.
    unsafe { reg(offset).read_volatile() }
}

/// What calibration found.
#[derive(Clone, Copy, Debug)]
pub struct Calibration {
    /// TSC ticks per second.
    pub tsc_hz: u64,
    /// APIC timer ticks (divide-by-16) per second.
    pub apic_hz: u64,
}

fn disable_pic() {
    // ICW1..ICW4: remap master to 0x20 and slave to 0x28 so a stray legacy
    // interrupt cannot look like a CPU exception, then mask everything.
    for (cmd, data, base, cascade) in [(0x20u16, 0x21u16, 0x20u8, 4u8), (0xa0, 0xa1, 0x28, 2)] {
        outb(cmd, 0x11);
        outb(data, base);
        outb(data, cascade);
        outb(data, 0x01);
        outb(data, 0xff);
    }
}

/// A measurement of the TSC and the APIC timer against the PIT, under way
/// ([`start_calibration`]).
pub struct Calibrating {
    tsc0: u64,
    gate: u8,
}

/// PIT counts at the shortest measurement [`finish_calibration`] takes:
/// 5 ms.
const MIN_COUNTS: u64 = PIT_HZ * 5 / 1000;

/// Enables the local APIC and starts measuring the TSC and the APIC timer
/// against the PIT: channel 2 counts down from 0xffff (55 ms) in mode 0,
/// which goes on counting past zero and raises its output there. The
/// kernel's other start-up work runs meanwhile, instead of a wait.
pub fn start_calibration() -> Calibrating {
    disable_pic();
    write(REG_SPURIOUS, 0x100 | SPURIOUS_VECTOR as u32);
    write(REG_TIMER_DIVIDE, 0x3); // divide by 16
    start_pit(0xffff)
}

/// Starts PIT channel 2 counting down from `count` in mode 0 (gated by
/// port 0x61 bit 0; its output is bit 5 of port 0x61), and the APIC
/// timer, masked, from its largest count, next to a TSC reading.
fn start_pit(count: u16) -> Calibrating {
    let gate = inb(0x61) & !0x02;
    outb(0x61, gate & !0x01);
    outb(0x43, 0xb0); // channel 2, low then high byte, mode 0
    outb(0x42, count as u8);
    outb(0x42, (count >> 8) as u8);
    write(REG_LVT_TIMER, 1 << 16); // masked while counting
    write(REG_TIMER_INIT, u32::MAX);
    let tsc0 = rdtsc();
    outb(0x61, gate | 0x01);
    Calibrating { tsc0, gate }
}

/// Ends the measurement (waiting only if it has run less than 5 ms), and
/// starts a periodic timer every `tick_ns`. The PIT's count is latched
/// next to the TSC and APIC timer readings, so the measurement ends
/// where the work before it did. If more than 55 ms went by (the count
/// ran past zero), it measures again, 10 ms, waiting.
pub fn finish_calibration(c: Calibrating, tick_ns: u64) -> Calibration {
    let measured = loop {
        outb(0x43, 0x80); // latch channel 2's count
        let tsc1 = rdtsc();
        let apic_now = read(REG_TIMER_CURRENT);
        let count = u16::from_le_bytes([inb(0x42), inb(0x42)]);
        if inb(0x61) & 0x20 != 0 {
            break None; // past zero: the count does not say how far
        }
        let counts = 0xffff - u64::from(count);
        if counts >= MIN_COUNTS {
            break Some((counts, tsc1 - c.tsc0, (u32::MAX - apic_now) as u64));
        }
        core::hint::spin_loop();
    };
    outb(0x61, c.gate);
    let cal = match measured {
        Some((counts, tsc, apic)) => Calibration { tsc_hz: tsc * PIT_HZ / counts, apic_hz: apic * PIT_HZ / counts },
        None => calibrate_waiting(),
    };
    let initial = (cal.apic_hz * tick_ns / 1_000_000_000).clamp(1, u32::MAX as u64);
    write(REG_LVT_TIMER, TIMER_VECTOR as u32 | TIMER_PERIODIC);
    write(REG_TIMER_INIT, initial as u32);
    cal
}

/// Measures the TSC and the APIC timer against a 10 ms PIT one-shot,
/// waiting for it.
fn calibrate_waiting() -> Calibration {
    let c = start_pit((PIT_HZ * CALIBRATION_MS / 1000) as u16);
    while inb(0x61) & 0x20 == 0 {
        core::hint::spin_loop();
    }
    let tsc1 = rdtsc();
    let apic_ticks = (u32::MAX - read(REG_TIMER_CURRENT)) as u64;
    outb(0x61, c.gate);
    Calibration { tsc_hz: (tsc1 - c.tsc0) * 1000 / CALIBRATION_MS, apic_hz: apic_ticks * 1000 / CALIBRATION_MS }
}

/// Signals end of interrupt to the local APIC.
pub fn eoi() {
    write(REG_EOI, 0);
}
