//! Attacks the kernel from user mode the way a hostile program would, for
//! the kernel-hardening tests. Each mode either survives and says what it
//! saw, or is killed by the exception the test expects; the kernel must
//! stay up either way.
//!
//! Modes:
//! - `flags`: sets each RFLAGS bit user code can set (NT, AC, DF, ID, the
//!   arithmetic flags; IOPL and RF are tried too) and makes system calls
//!   with it set, while another program spins, so the kernel switches
//!   threads with IRETQ; checks which flags come back.
//! - `top`: runs a SYSCALL in the last two bytes of user space, so the
//!   return address is `USER_END` itself (unmapped: killed by #PF).
//! - `rsp`: makes a system call with a non-canonical stack pointer (killed
//!   by #GP: the kernel cannot return to it).
//! - `umip`: executes SGDT (killed by #GP where the CPU has UMIP).
#![no_std]
#![no_main]

use core::arch::asm;
use exo_rt::abi::{map_flags, Sys, PAGE_SIZE, USER_END};
use exo_rt::caps::{Untyped, SELF};
use exo_rt::println;

exo_rt::entry!(main);

/// RFLAGS bits: name, mask.
const FLAGS: [(&str, u64); 12] = [
    ("CF", 1 << 0),
    ("PF", 1 << 2),
    ("AF", 1 << 4),
    ("ZF", 1 << 6),
    ("SF", 1 << 7),
    ("DF", 1 << 10),
    ("OF", 1 << 11),
    ("IOPL", 3 << 12),
    ("NT", 1 << 14),
    ("RF", 1 << 16),
    ("AC", 1 << 18),
    ("ID", 1 << 21),
];

/// Sets `bit` in RFLAGS, makes system call `number`, reads RFLAGS back,
/// restores the old flags; returns the flags seen after the call.
fn syscall_with_flag(number: Sys, bit: u64) -> u64 {
    let after: u64;
    // SAFETY: the flags are restored before any Rust code runs; DF is set
    // only across the SYSCALL instruction. The call clobbers what the
    // system-call ABI says.
    unsafe {
        asm!(
            "pushfq",
            "pop r12",
            "mov r13, r12",
            "or r13, {bit}",
            "push r13",
            "popfq",
            "syscall",
            "pushfq",
            "pop r14",
            "push r12",
            "popfq",
            bit = in(reg) bit,
            out("r14") after,
            inlateout("rax") number as u64 => _,
            in("rdi") 0u64, in("rsi") 0u64, in("rdx") 0u64,
            out("r12") _, out("r13") _,
            lateout("rcx") _, lateout("r11") _,
            clobber_abi("sysv64"),
        );
    }
    after
}

fn flags() -> i32 {
    // Kernel-only bits that must never come back to user mode.
    const FORBIDDEN: u64 = (3 << 12) | (1 << 14) | (1 << 16);
    let mut bad = 0;
    for (name, bit) in FLAGS {
        let mut seen = 0;
        for round in 0..8 {
            // Yield (the kernel switches to the spinner, preempted by the
            // timer, with IRETQ) and a plain call (back by SYSRET).
            let call = if round % 2 == 0 { Sys::Yield } else { Sys::Clock };
            seen |= syscall_with_flag(call, bit) & FORBIDDEN;
        }
        if seen != 0 {
            println!("hostile flags: {name}: the kernel returned with {seen:#x} set: FAILED");
            bad += 1;
        } else {
            println!("hostile flags: {name} set across 8 system calls: ok");
        }
    }
    println!("hostile flags: the kernel is still up");
    bad
}

fn top() -> i32 {
    let untyped = Untyped::from_slot(exo_rt::abi::slot::UNTYPED);
    let va = USER_END - PAGE_SIZE;
    let page = match untyped.alloc(1) {
        Ok(m) => m,
        Err(e) => {
            println!("hostile top: no memory: {}", e.name());
            return 2;
        }
    };
    if let Err(e) = SELF.map(page, va, map_flags::READ | map_flags::WRITE) {
        println!("hostile top: cannot map the last page: {}", e.name());
        return 2;
    }
    // SAFETY: the page was just mapped writable at `va`.
    unsafe { core::ptr::write_volatile((USER_END - 2) as *mut [u8; 2], [0x0f, 0x05]) }; // syscall
    let _ = SELF.unmap(va);
    if let Err(e) = SELF.map(page, va, map_flags::READ | map_flags::EXECUTE) {
        println!("hostile top: cannot map the last page executable: {}", e.name());
        return 2;
    }
    println!("hostile top: SYSCALL at {:#x}, returning to {USER_END:#x}", USER_END - 2);
    // SAFETY: deliberately jumps to the SYSCALL instruction; the return
    // address is USER_END, where nothing is mapped: the kernel kills us.
    unsafe { asm!("jmp {}", in(reg) USER_END - 2, in("rax") Sys::Clock as u64, options(noreturn)) }
}

fn rsp() -> i32 {
    println!("hostile rsp: a system call with a non-canonical stack pointer");
    // SAFETY: deliberately leaves a stack pointer the CPU cannot return
    // with; the kernel kills us before user code runs again. If it did
    // not, the old stack pointer comes back from r12.
    unsafe {
        asm!(
            "mov r12, rsp",
            "mov rsp, {bad}",
            "syscall",
            "mov rsp, r12",
            bad = in(reg) 0x8000_0000_0000_0000u64,
            inlateout("rax") Sys::Clock as u64 => _,
            out("r12") _, lateout("rcx") _, lateout("r11") _,
        );
    }
    println!("hostile rsp: survived with a non-canonical stack pointer");
    1
}

fn umip() -> i32 {
    let mut gdtr = [0u8; 10];
    // SAFETY: SGDT stores 10 bytes into the buffer; with UMIP it faults.
    unsafe { asm!("sgdt [{}]", in(reg) gdtr.as_mut_ptr(), options(nostack)) };
    let base = u64::from_le_bytes(gdtr[2..10].try_into().expect("8 bytes"));
    println!("hostile umip: SGDT worked in user mode: the GDT is at {base:#x}");
    1
}

fn main(args: &str) -> i32 {
    match args.trim() {
        "flags" => flags(),
        "top" => top(),
        "rsp" => rsp(),
        "umip" => umip(),
        other => {
            println!("hostile: unknown mode `{other}` (flags, top, rsp, umip)");
            2
        }
    }
}
