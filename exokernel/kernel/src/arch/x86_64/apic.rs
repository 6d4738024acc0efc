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

/// Enables the local APIC, measures the TSC and APIC timer against the PIT
/// for 10 ms, and starts a periodic timer every `tick_ns`.
pub fn init(tick_ns: u64) -> Calibration {
    disable_pic();
    write(REG_SPURIOUS, 0x100 | SPURIOUS_VECTOR as u32);
    write(REG_TIMER_DIVIDE, 0x3); // divide by 16

    // PIT channel 2 in one-shot mode, gated by port 0x61 bit 0; bit 5 of
    // port 0x61 goes high when the count reaches zero.
    let count = PIT_HZ * CALIBRATION_MS / 1000;
    let gate = inb(0x61) & !0x02;
    outb(0x61, gate & !0x01);
    outb(0x43, 0xb0);
    outb(0x42, count as u8);
    outb(0x42, (count >> 8) as u8);
    write(REG_LVT_TIMER, 1 << 16); // masked while counting
    write(REG_TIMER_INIT, u32::MAX);
    let tsc0 = rdtsc();
    outb(0x61, gate | 0x01);
    while inb(0x61) & 0x20 == 0 {
        core::hint::spin_loop();
    }
    let tsc1 = rdtsc();
    let apic_ticks = (u32::MAX - read(REG_TIMER_CURRENT)) as u64;
    outb(0x61, gate);

    let cal =
        Calibration { tsc_hz: (tsc1 - tsc0) * 1000 / CALIBRATION_MS, apic_hz: apic_ticks * 1000 / CALIBRATION_MS };
    let initial = (cal.apic_hz * tick_ns / 1_000_000_000).clamp(1, u32::MAX as u64);
    write(REG_LVT_TIMER, TIMER_VECTOR as u32 | TIMER_PERIODIC);
    write(REG_TIMER_INIT, initial as u32);
    cal
}

/// Signals end of interrupt to the local APIC.
pub fn eoi() {
    write(REG_EOI, 0);
}
