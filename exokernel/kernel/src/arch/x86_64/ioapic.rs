//! The I/O APIC: legacy (ISA) and PCI INTx interrupt lines, routed to
//! vectors for user-space drivers (`irq_line_bind`). Every line starts
//! masked; a bound line is masked again by each interrupt until its
//! driver acknowledges it (`irq_ack`), so a level-triggered line cannot
//! storm the CPU while its driver runs.
//!
//! The I/O APIC sits at its conventional address, 0xfec00000 (QEMU's PC
//! and Q35 machines, and most PCs); `init` checks that something answers
//! there. ISA line N is input N, but for the timer (ISA 0 on input 2),
//! which is never handed out; no ACPI interrupt-source overrides are read.

use super::boot::HHDM_BASE;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

const IOAPIC_PHYS: u64 = 0xfec0_0000;
const REG_SELECT: u64 = 0x00;
const REG_WINDOW: u64 = 0x10;
const VERSION: u32 = 0x01;
const REDIRECTION: u32 = 0x10;
const MASKED: u32 = 1 << 16;
const LEVEL: u32 = 1 << 15;
const ACTIVE_LOW: u32 = 1 << 13;

/// Inputs the I/O APIC has (0 until `init` found one).
static INPUTS: AtomicU32 = AtomicU32::new(0);
/// Serialises the select/window register pair (interrupt handlers and
/// system calls both program it; the kernel runs with interrupts off, so
/// this only guards against a future second CPU).
static BUSY: AtomicBool = AtomicBool::new(false);

fn with_registers<R>(f: impl FnOnce(&dyn Fn(u32) -> u32, &dyn Fn(u32, u32)) -> R) -> R {
    while BUSY.swap(true, Ordering::Acquire) {
        core::hint::spin_loop();
    }
    let base = HHDM_BASE + IOAPIC_PHYS;
    // SAFETY: the I/O APIC's two registers, in the uncached gigabyte of
    // the direct map; the select register is written before each window
    // access, under BUSY.
    let read = |index: u32| unsafe {
        ((base + REG_SELECT) as *mut u32).write_volatile(index);
        ((base + REG_WINDOW) as *mut u32).read_volatile()
    };
    // SAFETY: as for `read`.
    let write = |index: u32, value: u32| unsafe {
        ((base + REG_SELECT) as *mut u32).write_volatile(index);
        ((base + REG_WINDOW) as *mut u32).write_volatile(value)
    };
    let r = f(&read, &write);
    BUSY.store(false, Ordering::Release);
    r
}

/// Finds the I/O APIC and masks every input; the number of inputs (0:
/// none answers).
pub fn init() -> u32 {
    let inputs = with_registers(|read, write| {
        let version = read(VERSION);
        if version == u32::MAX || version & 0xff == 0 {
            return 0;
        }
        let inputs = ((version >> 16) & 0xff) + 1;
        for i in 0..inputs {
            write(REDIRECTION + 2 * i, MASKED);
            write(REDIRECTION + 2 * i + 1, 0);
        }
        inputs
    });
    INPUTS.store(inputs, Ordering::Relaxed);
    inputs
}

/// True if the I/O APIC has input `line`.
pub fn has(line: u8) -> bool {
    u32::from(line) < INPUTS.load(Ordering::Relaxed)
}

/// Routes input `line` to `vector` on the boot CPU (fixed delivery,
/// physical destination 0), masked until [`unmask`].
pub fn route(line: u8, vector: u8, level: bool, active_low: bool) {
    let low = MASKED | u32::from(vector) | if level { LEVEL } else { 0 } | if active_low { ACTIVE_LOW } else { 0 };
    with_registers(|_, write| {
        write(REDIRECTION + 2 * u32::from(line) + 1, 0);
        write(REDIRECTION + 2 * u32::from(line), low);
    });
}

fn set_mask(line: u8, masked: bool) {
    with_registers(|read, write| {
        let index = REDIRECTION + 2 * u32::from(line);
        let low = read(index);
        write(index, if masked { low | MASKED } else { low & !MASKED });
    });
}

/// Masks input `line`.
pub fn mask(line: u8) {
    set_mask(line, true);
}

/// Unmasks input `line`.
pub fn unmask(line: u8) {
    set_mask(line, false);
}

/// Input `line` is no longer bound: masked, and routed nowhere.
pub fn release(line: u8) {
    with_registers(|_, write| {
        write(REDIRECTION + 2 * u32::from(line), MASKED);
        write(REDIRECTION + 2 * u32::from(line) + 1, 0);
    });
}
