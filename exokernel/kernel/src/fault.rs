//! CPU exceptions: a user fault kills its process with a one-line report;
//! a kernel fault is a bug and stops the machine.

use crate::arch::cpu;
use crate::arch::trap::TrapFrame;
use crate::kernel::Kernel;
use exo_abi::ExitStatus;

/// Mnemonic and name of exception `v`.
pub fn exception_name(v: u64) -> (&'static str, &'static str) {
    match v {
        0 => ("#DE", "divide error"),
        1 => ("#DB", "debug"),
        2 => ("NMI", "non-maskable interrupt"),
        3 => ("#BP", "breakpoint"),
        4 => ("#OF", "overflow"),
        5 => ("#BR", "bound range exceeded"),
        6 => ("#UD", "invalid opcode"),
        7 => ("#NM", "device not available"),
        8 => ("#DF", "double fault"),
        10 => ("#TS", "invalid TSS"),
        11 => ("#NP", "segment not present"),
        12 => ("#SS", "stack-segment fault"),
        13 => ("#GP", "general protection fault"),
        14 => ("#PF", "page fault"),
        16 => ("#MF", "x87 floating-point error"),
        17 => ("#AC", "alignment check"),
        18 => ("#MC", "machine check"),
        19 => ("#XM", "SIMD floating-point error"),
        20 => ("#VE", "virtualization exception"),
        21 => ("#CP", "control protection"),
        _ => ("#??", "reserved exception"),
    }
}

/// Describes a page fault's error code.
fn page_fault_detail(error: u64) -> (&'static str, &'static str) {
    let access = if error & 0x10 != 0 {
        "instruction fetch"
    } else if error & 0x2 != 0 {
        "write"
    } else {
        "read"
    };
    let why = if error & 0x1 != 0 { "protection violation" } else { "not mapped" };
    (access, why)
}

/// Kills the process of the current thread after exception `frame.vector`.
pub fn user_exception(k: &mut Kernel, frame: &TrapFrame) {
    let Some(t) = k.current else { return };
    let p = k.proc_of(t);
    let (mnemonic, name) = exception_name(frame.vector);
    let proc = k.proc(p);
    if frame.vector == 14 {
        let (access, why) = page_fault_detail(frame.error);
        crate::kprintln!(
            "process {} '{}' killed: {name} ({mnemonic}) at rip={:#x}: {access} of {:#x}, {why}",
            p.0,
            proc.name,
            frame.rip,
            cpu::read_cr2()
        );
    } else {
        crate::kprintln!(
            "process {} '{}' killed: {name} ({mnemonic}) at rip={:#x}, error code {:#x}",
            p.0,
            proc.name,
            frame.rip,
            frame.error
        );
    }
    k.exit_process(p, ExitStatus::Faulted(frame.vector as u8));
}

/// An exception in ring 0 is a kernel bug: report everything and stop.
pub fn kernel_exception(frame: &TrapFrame) -> ! {
    let (mnemonic, name) = exception_name(frame.vector);
    let cr2 = if frame.vector == 14 { cpu::read_cr2() } else { 0 };
    panic!(
        "kernel {name} ({mnemonic}, vector {}) at rip={:#x} error={:#x} cr2={cr2:#x} rsp={:#x}",
        frame.vector, frame.rip, frame.error, frame.rsp
    )
}
