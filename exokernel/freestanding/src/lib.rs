//! The few C symbols a freestanding binary needs.
//!
//! The precompiled `core` for `x86_64-unknown-linux-gnu` expects libc to
//! provide `memcpy` and friends, and `rust_eh_personality` to exist even
//! with `panic = "abort"`. The kernel and every bare-metal user program
//! link this crate instead of libc. The copies and fills move 64 bytes a
//! loop step, eight quadword loads and stores through one general
//! register, then eight bytes a step (`rep movsq`/`rep stosq`), then the
//! odd bytes (`rep movsb`/`rep stosb`), in inline assembly so that the
//! compiler cannot turn them back into calls to themselves. Not `rep
//! movsb` alone, which hardware with fast string instructions would like:
//! QEMU's TCG runs a `rep` string instruction one step at a time, and byte
//! steps made the copies of the network path its bottleneck (16 MiB to a
//! sink: 20 MB/s with byte steps, 60 with quadwords, more with a 64-byte
//! loop). Not SSE registers either: TCG keeps them in memory, so each
//! 16-byte load or store also goes through that copy of the register, and
//! a sampling of the network path found an SSE copy taking 1.7 times the
//! samples of the general-register one for the same bytes.
#![no_std]

use core::arch::asm;

/// Copies `n` bytes from `src` to `dst`; the ranges must not overlap.
///
/// # Safety
/// `src` must be valid for `n` bytes of reads and `dst` for `n` bytes of
/// writes, and the two ranges must not overlap.
#[no_mangle]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees both ranges are valid and disjoint.
    // Every step copies forward, each word loaded before it is stored,
    // and so do the string instructions (DF is clear per the SysV ABI): a
    // destination below an overlapping source (`memmove`'s forward case)
    // comes out right too.
    unsafe {
        asm!(
            "2:",
            "cmp {n}, 64",
            "jb 3f",
            "mov {t}, [rsi]",
            "mov [rdi], {t}",
            "mov {t}, [rsi + 8]",
            "mov [rdi + 8], {t}",
            "mov {t}, [rsi + 16]",
            "mov [rdi + 16], {t}",
            "mov {t}, [rsi + 24]",
            "mov [rdi + 24], {t}",
            "mov {t}, [rsi + 32]",
            "mov [rdi + 32], {t}",
            "mov {t}, [rsi + 40]",
            "mov [rdi + 40], {t}",
            "mov {t}, [rsi + 48]",
            "mov [rdi + 48], {t}",
            "mov {t}, [rsi + 56]",
            "mov [rdi + 56], {t}",
            "add rsi, 64",
            "add rdi, 64",
            "sub {n}, 64",
            "jmp 2b",
            "3:",
            "mov rcx, {n}",
            "shr rcx, 3",
            "rep movsq",
            "mov rcx, {n}",
            "and rcx, 7",
            "rep movsb",
            n = inout(reg) n => _, t = out(reg) _,
            out("rcx") _, inout("rdi") dst => _, inout("rsi") src => _,
            options(nostack),
        );
    }
    dst
}

/// Copies `n` bytes from `src` to `dst`; the ranges may overlap.
///
/// # Safety
/// `src` must be valid for `n` bytes of reads and `dst` for `n` bytes of
/// writes.
#[no_mangle]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dst as usize) <= (src as usize) || (dst as usize) >= (src as usize).wrapping_add(n) {
        // SAFETY: forward copy is correct when dst is below src or the
        // ranges are disjoint; validity is the caller's guarantee.
        unsafe { memcpy(dst, src, n) }
    } else {
        // SAFETY: `dst` lies above `src` inside its range (so `n > 0`):
        // copy backwards with DF set, the odd bytes at the end first, then
        // the quadwords, each from the highest; DF is cleared again before
        // leaving the block as the ABI requires.
        unsafe {
            asm!("std", "rep movsb", "sub rdi, 7", "sub rsi, 7", "mov rcx, {words}", "rep movsq", "cld",
                 words = in(reg) n / 8,
                 inout("rcx") n % 8 => _, inout("rdi") dst.add(n - 1) => _,
                 inout("rsi") src.add(n - 1) => _, options(nostack));
        }
        dst
    }
}

/// Fills `n` bytes at `dst` with the low byte of `c`.
///
/// # Safety
/// `dst` must be valid for `n` bytes of writes.
#[no_mangle]
pub unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    let byte = c as u8 as u64;
    // SAFETY: the caller guarantees `dst` is valid for `n` bytes; 64-byte
    // steps, then quadwords, then the odd bytes (rax holds the byte eight
    // times).
    unsafe {
        asm!(
            "2:",
            "cmp {n}, 64",
            "jb 3f",
            "mov [rdi], rax",
            "mov [rdi + 8], rax",
            "mov [rdi + 16], rax",
            "mov [rdi + 24], rax",
            "mov [rdi + 32], rax",
            "mov [rdi + 40], rax",
            "mov [rdi + 48], rax",
            "mov [rdi + 56], rax",
            "add rdi, 64",
            "sub {n}, 64",
            "jmp 2b",
            "3:",
            "mov rcx, {n}",
            "shr rcx, 3",
            "rep stosq",
            "mov rcx, {n}",
            "and rcx, 7",
            "rep stosb",
            n = inout(reg) n => _,
            out("rcx") _, inout("rdi") dst => _, in("rax") byte * 0x0101_0101_0101_0101,
            options(nostack),
        );
    }
    dst
}

/// Compares `n` bytes; returns <0, 0 or >0 like C's `memcmp`.
///
/// # Safety
/// Both pointers must be valid for `n` bytes of reads.
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: `i < n` and the caller guarantees `n` readable bytes.
        let (x, y) = unsafe { (a.add(i).read(), b.add(i).read()) };
        if x != y {
            return x as i32 - y as i32;
        }
        i += 1;
    }
    0
}

/// Like [`memcmp`], but only equality matters.
///
/// # Safety
/// Both pointers must be valid for `n` bytes of reads.
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}

/// `strlen`, which some `core` formatting paths reference.
///
/// # Safety
/// `s` must point to a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn strlen(s: *const u8) -> usize {
    let mut n = 0;
    // SAFETY: the caller guarantees a terminating NUL within the object.
    while unsafe { s.add(n).read() } != 0 {
        n += 1;
    }
    n
}

/// Referenced by the precompiled `core` even with `panic = "abort"`; never
/// called because nothing unwinds. (Not in the unit tests, which link std.)
#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}

/// Referenced by the precompiled `alloc` (built with unwinding); never
/// called because `panic = "abort"` means nothing unwinds.
#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn _Unwind_Resume() -> ! {
    loop {
        core::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pattern no two nearby bytes of which are equal.
    fn pattern(n: usize) -> [u8; 300] {
        core::array::from_fn(|i| (i * 7 + n) as u8 ^ 0x5a)
    }

    #[test]
    fn copies_and_fills_are_exact_at_every_length_and_alignment() {
        for len in 0..270 {
            for (from, to) in [(0, 0), (1, 0), (0, 3), (5, 2), (7, 9), (8, 8)] {
                let src = pattern(len);
                let mut dst = [0xeeu8; 300];
                // SAFETY: both ranges lie inside their arrays (9 + 269 < 300).
                unsafe { memcpy(dst.as_mut_ptr().add(to), src.as_ptr().add(from), len) };
                assert_eq!(&dst[to..to + len], &src[from..from + len], "memcpy {len} {from}->{to}");
                assert!(dst[..to].iter().chain(&dst[to + len..]).all(|b| *b == 0xee), "memcpy wrote outside");

                let mut buf = [0u8; 300];
                // SAFETY: inside the array.
                unsafe { memset(buf.as_mut_ptr().add(to), 0x1ab, len) };
                assert!(buf[to..to + len].iter().all(|b| *b == 0xab), "memset {len} at {to}");
                assert!(buf[..to].iter().chain(&buf[to + len..]).all(|b| *b == 0), "memset wrote outside");
            }
        }
    }

    #[test]
    fn overlapping_moves_go_either_way() {
        for len in 0..270 {
            for (from, to) in [(0, 1), (1, 0), (0, 8), (8, 0), (3, 20), (20, 3), (5, 5), (0, 30), (30, 0)] {
                let mut buf = pattern(len);
                // The expected bytes, each chosen on its own (no copy
                // routine under test computes them).
                let want: [u8; 300] =
                    core::array::from_fn(|i| if (to..to + len).contains(&i) { buf[from + i - to] } else { buf[i] });
                // SAFETY: both ranges lie inside the array (30 + 269 < 300).
                unsafe { memmove(buf.as_mut_ptr().add(to), buf.as_ptr().add(from), len) };
                assert_eq!(buf, want, "memmove {len} {from}->{to}");
            }
        }
    }
}
