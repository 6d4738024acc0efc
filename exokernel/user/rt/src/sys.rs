//! Raw system calls and their typed wrappers. The only `unsafe` here is
//! the `syscall` instruction itself; the kernel checks every argument.

use core::arch::asm;
use exo_abi::{decode_result, Error, Sys};

/// Issues system call `n` with up to six arguments; returns raw `rax`.
#[inline(always)]
pub fn raw(n: Sys, a: [u64; 6]) -> u64 {
    raw_number(n as u64, a)
}

/// Issues a raw, possibly invalid system-call number (`raw` with a typed
/// number is the usual way; tests of the kernel's argument checking use
/// this directly).
#[inline(always)]
pub fn raw_number(n: u64, a: [u64; 6]) -> u64 {
    let ret: u64;
    // SAFETY: as for `raw`; an unknown number just returns an error.
    unsafe {
        asm!("syscall",
             inlateout("rax") n => ret,
             in("rdi") a[0], in("rsi") a[1], in("rdx") a[2],
             in("r10") a[3], in("r8") a[4], in("r9") a[5],
             lateout("rcx") _, lateout("r11") _,
             clobber_abi("sysv64"),
             options(nostack));
    }
    ret
}

/// Issues `n` and returns the registers the kernel writes back:
/// `[rax, rdi, rsi, rdx, r10, r9]` (the IPC results).
pub fn raw_regs(n: Sys, a: [u64; 6]) -> [u64; 6] {
    let (rax, rdi, rsi, rdx, r10, r9): (u64, u64, u64, u64, u64, u64);
    // SAFETY: as for `raw`; the kernel returns values in these registers.
    unsafe {
        asm!("syscall",
             inlateout("rax") n as u64 => rax,
             inlateout("rdi") a[0] => rdi, inlateout("rsi") a[1] => rsi, inlateout("rdx") a[2] => rdx,
             inlateout("r10") a[3] => r10, in("r8") a[4], inlateout("r9") a[5] => r9,
             lateout("rcx") _, lateout("r11") _,
             clobber_abi("sysv64"),
             options(nostack));
    }
    [rax, rdi, rsi, rdx, r10, r9]
}

/// Issues `n` and decodes the result.
pub fn call(n: Sys, a: [u64; 6]) -> Result<u64, Error> {
    decode_result(raw(n, a))
}

/// Ends the process with `code`.
pub fn exit(code: u32) -> ! {
    raw(Sys::Exit, [code as u64, 0, 0, 0, 0, 0]);
    unreachable!("exit returned")
}

/// Gives up the rest of the time slice.
pub fn yield_now() {
    raw(Sys::Yield, [0; 6]);
}

/// Nanoseconds since boot.
pub fn clock() -> u64 {
    raw(Sys::Clock, [0; 6])
}

/// Blocks for at least `ns` nanoseconds.
pub fn sleep(ns: u64) {
    raw(Sys::Sleep, [ns, 0, 0, 0, 0, 0]);
}

/// Ends the calling thread.
pub fn thread_exit() -> ! {
    raw(Sys::ThreadExit, [0; 6]);
    unreachable!("thread_exit returned")
}

/// The time-stamp counter (cycles; under QEMU's `-icount shift=0`, guest
/// instructions since reset).
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC is allowed in user mode (CR4.TSD is clear) and has no
    // effect but its result.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Fills `buf` from the kernel's random bit generator.
pub fn random(buf: &mut [u8]) -> Result<(), Error> {
    for chunk in buf.chunks_mut(exo_abi::MAX_RANDOM as usize) {
        call(Sys::Random, [chunk.as_mut_ptr() as u64, chunk.len() as u64, 0, 0, 0, 0])?;
    }
    Ok(())
}

/// Nanoseconds since 1970-01-01 UTC (the real-time clock read at boot, then
/// the monotonic clock).
pub fn wall_clock() -> u64 {
    raw(Sys::WallClock, [0; 6])
}
