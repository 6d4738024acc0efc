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
//! - `hog`: makes processes, endpoints, notifications, memory objects and
//!   threads from its budget until the kernel refuses each, holds them for
//!   a while, and reports the counts and errors.
//! - `victim`: waits until the hog is full, then makes one of each from
//!   its own budget: every one must succeed.
//! - `cycles`: makes and lets go of 5000 processes from a budget that
//!   holds about ten: each one let go is ended and paid back, its entry
//!   reused.
//! - `steady`: runs 1.2 s, then fails while it is one of the first three
//!   instances (`exo_rt::generation`), ends cleanly after: with
//!   `stable_after = 1s` each failure counts as a first one.
//! - `irqs`: binds interrupt vectors for its one device until the kernel
//!   refuses; reports how many it got.
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

/// Makes objects with `make` until it fails; the count and the error.
fn exhaust(mut make: impl FnMut(u64) -> Result<(), exo_rt::abi::Error>) -> (u64, exo_rt::abi::Error) {
    let mut n = 0;
    loop {
        match make(n) {
            Ok(()) => n += 1,
            Err(e) => return (n, e),
        }
    }
}

fn hog() -> i32 {
    let untyped = Untyped::from_slot(exo_rt::abi::slot::UNTYPED);
    // Its own threads stop at the per-process limit (their stacks come
    // from its heap, which the manifest makes big enough).
    let (threads, e1) = exhaust(|_| exo_rt::thread::spawn(|_| exo_rt::sys::sleep(u64::MAX), 0).map(|_| ()));
    println!("hostile hog: {threads} threads, then {}", e1.name());
    let (procs, e2) = exhaust(|_| untyped.create_process("hogchild", exo_manifest::Label::USER.encode()).map(|_| ()));
    println!("hostile hog: {procs} processes, then {}", e2.name());
    let (eps, e3) = exhaust(|_| untyped.create_endpoint().map(|_| ()));
    println!("hostile hog: {eps} more endpoints, then {}", e3.name());
    let (pages, e4) = exhaust(|_| untyped.alloc(1).map(|_| ()));
    println!("hostile hog: {pages} more pages, then {}", e4.name());
    // Tell the victim (endpoint slot 16) and hold everything until it has
    // had its turn.
    println!("hostile hog: full; the victim goes now");
    let r = exo_rt::caps::Endpoint::from_slot(exo_manifest::ENDPOINT_SLOT_BASE).call([0; 3], None, 10_000_000_000);
    println!("hostile hog: the victim is done ({:?}); letting go", r.map(|_| ()).map_err(|e| e.name()));
    0
}

fn victim() -> i32 {
    // Wait until the hog is full (it calls on endpoint slot 16).
    let ep = exo_rt::caps::Endpoint::from_slot(exo_manifest::ENDPOINT_SLOT_BASE);
    if let Err(e) = ep.recv(None, 30_000_000_000) {
        println!("hostile victim: the hog never said it was full: {}", e.name());
        return 1;
    }
    let untyped = Untyped::from_slot(exo_rt::abi::slot::UNTYPED);
    let p = untyped.create_process("victimchild", exo_manifest::Label::USER.encode()).map(|_| ());
    let e = untyped.create_endpoint().map(|_| ());
    let n = untyped.create_notification().map(|_| ());
    let m = untyped.alloc(16).map(|_| ());
    let t = exo_rt::thread::spawn(|_| {}, 0).map(|_| ());
    let all = [p, e, n, m, t];
    println!(
        "hostile victim: process {:?}, endpoint {:?}, notification {:?}, memory {:?}, thread {:?}",
        p.map_err(|e| e.name()),
        e.map_err(|e| e.name()),
        n.map_err(|e| e.name()),
        m.map_err(|e| e.name()),
        t.map_err(|e| e.name())
    );
    let _ = exo_rt::caps::reply([0; 3], None);
    if all.iter().all(Result::is_ok) {
        println!("hostile victim: got everything it asked for beside the hog");
        0
    } else {
        1
    }
}

fn cycles() -> i32 {
    let untyped = Untyped::from_slot(exo_rt::abi::slot::UNTYPED);
    let (n, e) = exhaust(|i| {
        if i == 5000 {
            return Err(exo_rt::abi::Error::Timeout); // enough
        }
        let p = untyped.create_process("cycle", exo_manifest::Label::USER.encode())?;
        exo_rt::caps::delete(p.slot())?;
        // The kernel ends the orphan on its way out of this call.
        exo_rt::sys::yield_now();
        Ok(())
    });
    println!("hostile cycles: {n} processes made and let go, then {}", e.name());
    if n == 5000 {
        0
    } else {
        1
    }
}

fn steady() -> i32 {
    exo_rt::sys::sleep(1_200_000_000);
    let generation = exo_rt::generation();
    println!("hostile steady: instance {generation} ran 1.2 s");
    if generation < 3 {
        1
    } else {
        0
    }
}

fn irqs() -> i32 {
    let Ok(f) = exo_rt::caps::PciFunction::from_slot(exo_manifest::DEVICE_SLOT_BASE) else {
        println!("hostile irqs: no device");
        return 2;
    };
    let untyped = Untyped::from_slot(exo_rt::abi::slot::UNTYPED);
    let Ok(note) = untyped.create_notification() else {
        println!("hostile irqs: no notification");
        return 2;
    };
    let (n, e) = exhaust(|_| f.irq_bind(note, 1).map(|_| ()));
    println!("hostile irqs: {n} vectors for one device, then {}", e.name());
    0
}

fn main(args: &str) -> i32 {
    match args.trim() {
        "flags" => flags(),
        "top" => top(),
        "rsp" => rsp(),
        "umip" => umip(),
        "hog" => hog(),
        "victim" => victim(),
        "irqs" => irqs(),
        "steady" => steady(),
        "cycles" => cycles(),
        other => {
            println!("hostile: unknown mode `{other}` (flags, top, rsp, umip)");
            2
        }
    }
}
