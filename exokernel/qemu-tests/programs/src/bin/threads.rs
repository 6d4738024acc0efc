//! Starts worker threads in one process; each adds to a shared counter. The
//! main thread waits for all of them, proving threads share memory and all
//! get scheduled. Argument: number of workers (default 3).
//!
//! It also checks thread-local storage the way a static C program uses it
//! (`__thread`, local-exec: `%fs:sym@tpoff`): two variables in `.tdata`
//! (one 64-byte aligned) and one in `.tbss`, each thread's copy starting
//! from the template, kept apart from the others' across switches.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};
use exo_rt::{println, sys, thread, tls};

exo_rt::entry!(main);

static DONE: AtomicU64 = AtomicU64::new(0);
static SUM: AtomicU64 = AtomicU64::new(0);
/// Threads whose thread-local checks failed.
static TLS_BAD: AtomicU64 = AtomicU64::new(0);
/// The thread numbers seen, one bit each.
static IDS: AtomicU64 = AtomicU64::new(0);

const INIT: u64 = 0x1122_3344_5566_7788;
const ALIGNED_INIT: u64 = 0x0a11_9ed0_0000_0040;

core::arch::global_asm!(
    ".pushsection .tdata, \"awT\", @progbits",
    ".p2align 3",
    "TLS_INIT: .quad 0x1122334455667788",
    ".p2align 6",
    "TLS_ALIGNED: .quad 0x0a119ed000000040",
    ".popsection",
    ".pushsection .tbss, \"awT\", @nobits",
    ".p2align 3",
    "TLS_ZERO: .zero 8",
    ".popsection",
);

fn tls_init() -> u64 {
    let v: u64;
    // SAFETY: reads this thread's copy of TLS_INIT (exo_rt gave every
    // thread a block before its code runs).
    unsafe { core::arch::asm!("movq %fs:TLS_INIT@tpoff, {}", out(reg) v, options(att_syntax, nostack, readonly)) };
    v
}

fn tls_zero() -> u64 {
    let v: u64;
    // SAFETY: as in `tls_init`.
    unsafe { core::arch::asm!("movq %fs:TLS_ZERO@tpoff, {}", out(reg) v, options(att_syntax, nostack, readonly)) };
    v
}

fn set_tls(init: u64, zero: u64) {
    // SAFETY: writes this thread's own copies.
    unsafe {
        core::arch::asm!(
            "movq {a}, %fs:TLS_INIT@tpoff",
            "movq {b}, %fs:TLS_ZERO@tpoff",
            a = in(reg) init, b = in(reg) zero, options(att_syntax, nostack)
        )
    };
}

/// The address of this thread's TLS_ALIGNED and its value.
fn tls_aligned() -> (u64, u64) {
    let off: u64;
    // SAFETY: takes the link-time offset only.
    unsafe { core::arch::asm!("movq $TLS_ALIGNED@tpoff, {}", out(reg) off, options(att_syntax, nomem, nostack)) };
    let at = tls::thread_pointer().wrapping_add(off);
    // SAFETY: this thread's copy, inside its block.
    (at, unsafe { (at as *const u64).read() })
}

/// Checks this thread's thread-local variables: fresh from the template,
/// then its own values survive switches to the other threads.
fn check_tls(me: u64) -> bool {
    let (at, aligned) = tls_aligned();
    let fresh = tls_init() == INIT && tls_zero() == 0 && aligned == ALIGNED_INIT && at % 64 == 0;
    set_tls(me * 1000, me);
    for _ in 0..20 {
        sys::yield_now();
    }
    let kept = tls_init() == me * 1000 && tls_zero() == me;
    if !(fresh && kept) {
        println!(
            "threads: thread {me}: thread-local init {:#x} zero {} aligned {aligned:#x} at {at:#x}",
            tls_init(),
            tls_zero()
        );
    }
    IDS.fetch_or(1 << tls::thread_id().min(63), Ordering::SeqCst);
    fresh && kept
}

fn worker(i: u64) {
    println!("threads: worker {i} running");
    if !check_tls(i + 1) {
        TLS_BAD.fetch_add(1, Ordering::SeqCst);
    }
    SUM.fetch_add(i, Ordering::SeqCst);
    DONE.fetch_add(1, Ordering::SeqCst);
}

fn main(args: &str) -> i32 {
    let n: u64 = args.trim().parse().unwrap_or(3);
    for i in 1..=n {
        if let Err(e) = thread::spawn(worker, i) {
            println!("threads: spawn {i} failed: {}", e.name());
            return 1;
        }
    }
    let main_ok = check_tls(1);
    while DONE.load(Ordering::SeqCst) < n {
        sys::yield_now();
    }
    let sum = SUM.load(Ordering::SeqCst);
    println!("threads: all {n} workers finished, sum {sum}");
    let (bad, ids) = (TLS_BAD.load(Ordering::SeqCst) + u64::from(!main_ok), IDS.load(Ordering::SeqCst).count_ones());
    println!("threads: thread-local storage: {bad} of {} threads wrong, {ids} distinct thread numbers", n + 1);
    if sum == n * (n + 1) / 2 && bad == 0 && u64::from(ids) == n + 1 {
        0
    } else {
        1
    }
}
