//! Commits the CPU fault named by its argument, so tests can check that the
//! kernel kills just this process: `pf` (bad pointer), `ud` (invalid
//! opcode), `de` (divide by zero), `wx` (write to its own code), `stack`
//! (a thread that overflows its stack: it must fault on the unmapped
//! pages below it, not write over what lies there).
#![no_std]
#![no_main]

use core::arch::asm;

exo_rt::entry!(main);

fn main(args: &str) -> i32 {
    exo_rt::println!("fault: about to commit `{args}`");
    match args.trim() {
        // SAFETY: deliberately invalid; the kernel kills us.
        "pf" => unsafe { asm!("mov rax, [{}]", in(reg) 0xdead_0000u64, out("rax") _) },
        // SAFETY: deliberately invalid; the kernel kills us.
        "ud" => unsafe { asm!("ud2") },
        // SAFETY: deliberately divides by zero; the kernel kills us.
        "de" => unsafe { asm!("xor edx, edx", "xor ecx, ecx", "div rcx", out("rax") _, out("rdx") _, out("rcx") _) },
        // SAFETY: deliberately writes to read-only code; the kernel kills us.
        "wx" => unsafe { asm!("mov byte ptr [{}], 0", in(reg) main as *const () as usize) },
        "stack" => {
            if let Err(e) = exo_rt::thread::spawn(|_| exo_rt::println!("fault: {}", deep(0)), 0) {
                exo_rt::println!("fault: no thread: {}", e.name());
                return 2;
            }
            exo_rt::sys::sleep(10_000_000_000);
        }
        other => {
            exo_rt::println!("fault: unknown fault `{other}`");
            return 2;
        }
    }
    exo_rt::println!("fault: survived `{args}` (the kernel did not stop it!)");
    1
}

/// Recurses with 512 bytes of its own a frame, until the stack ends.
#[inline(never)]
fn deep(n: u64) -> u64 {
    let mut frame = [0u8; 512];
    frame[0] = n as u8;
    core::hint::black_box(&mut frame);
    if n == u64::MAX {
        return 0;
    }
    deep(n + 1) + u64::from(frame[1])
}
