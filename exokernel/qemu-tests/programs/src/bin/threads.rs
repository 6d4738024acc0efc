//! Starts worker threads in one process; each adds to a shared counter. The
//! main thread waits for all of them, proving threads share memory and all
//! get scheduled. Argument: number of workers (default 3).
//!
//! It also checks thread-local storage the way a static C program uses it
//! (`__thread`, local-exec: `%fs:sym@tpoff`): two variables in `.tdata`
//! (one 64-byte aligned) and one in `.tbss`, each thread's copy starting
//! from the template, kept apart from the others' across switches.
//!
//! And the blocking locks: threads joined by handle add to a counter under
//! a `Mutex` while yielding inside it (so others must wait), a producer
//! hands items to consumers through a `Condvar`, and a wait with a time
//! limit and no notifier times out.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};
extern crate alloc;

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use exo_rt::sync::{Condvar, Mutex};
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
    let locks_ok = check_locks(n);
    let (bad, ids) = (TLS_BAD.load(Ordering::SeqCst) + u64::from(!main_ok), IDS.load(Ordering::SeqCst).count_ones());
    println!("threads: thread-local storage: {bad} of {} threads wrong, {ids} distinct thread numbers", n + 1);
    if sum == n * (n + 1) / 2 && bad == 0 && u64::from(ids) == n + 1 && locks_ok {
        0
    } else {
        1
    }
}

static COUNTER: Mutex<u64> = Mutex::new(0);
/// Threads inside COUNTER's critical section at once (must stay 1).
static INSIDE: AtomicU64 = AtomicU64::new(0);
static OVERLAPS: AtomicU64 = AtomicU64::new(0);
static QUEUE: Mutex<VecDeque<u64>> = Mutex::new(VecDeque::new());
static READY: Condvar = Condvar::new();
static TAKEN: AtomicU64 = AtomicU64::new(0);
static TAKEN_SUM: AtomicU64 = AtomicU64::new(0);
const ROUNDS: u64 = 300;
const ITEMS: u64 = 400;

fn add_under_lock() {
    for _ in 0..ROUNDS {
        let mut c = COUNTER.lock();
        if INSIDE.fetch_add(1, Ordering::SeqCst) != 0 {
            OVERLAPS.fetch_add(1, Ordering::SeqCst);
        }
        let v = *c;
        sys::yield_now(); // let the others find the lock taken
        *c = v + 1;
        INSIDE.fetch_sub(1, Ordering::SeqCst);
    }
}

fn consume() {
    loop {
        let mut q = QUEUE.lock();
        while q.is_empty() {
            q = READY.wait(q);
        }
        let item = q.pop_front().expect("not empty");
        drop(q);
        if item == u64::MAX {
            return; // the end marker
        }
        TAKEN.fetch_add(1, Ordering::SeqCst);
        TAKEN_SUM.fetch_add(item, Ordering::SeqCst);
    }
}

/// The blocking locks, with `n` threads at a time; prints one line.
fn check_locks(n: u64) -> bool {
    let adders: Vec<_> = (0..n).map(|_| thread::spawn_joinable(Box::new(add_under_lock))).collect();
    for a in adders {
        match a {
            Ok(h) => h.join(),
            Err(e) => {
                println!("threads: spawn failed: {}", e.name());
                return false;
            }
        }
    }
    let count = *COUNTER.lock();
    let overlaps = OVERLAPS.load(Ordering::SeqCst);

    let consumers: Vec<_> = (0..n).filter_map(|_| thread::spawn_joinable(Box::new(consume)).ok()).collect();
    for i in 1..=ITEMS {
        QUEUE.lock().push_back(i);
        READY.notify_one();
        if i % 50 == 0 {
            sys::yield_now();
        }
    }
    for _ in 0..consumers.len() {
        QUEUE.lock().push_back(u64::MAX);
    }
    READY.notify_all();
    let joined = consumers.len() as u64;
    for c in consumers {
        c.join();
    }
    let (taken, taken_sum) = (TAKEN.load(Ordering::SeqCst), TAKEN_SUM.load(Ordering::SeqCst));

    // Nobody notifies: the wait must time out, after about 20 ms.
    let lonely = Condvar::new();
    let m = Mutex::new(());
    let t0 = sys::clock();
    let (_g, woken) = lonely.wait_timeout(m.lock(), 20_000_000);
    let waited_ms = (sys::clock() - t0) / 1_000_000;

    println!(
        "threads: locks: counter {count} of {}, {overlaps} overlaps; {taken} of {ITEMS} items handed over \
         (sum {taken_sum}) to {joined} consumers; lonely wait woken {woken} after {} ms; blocking {}",
        n * ROUNDS,
        if waited_ms >= 20 { "20+" } else { "under 20" },
        exo_rt::sync::blocks()
    );
    // Without a budget for notifications the locks yield instead of
    // blocking, and a timed wait may return early (as condition variables
    // may): the lonely wait is checked only where threads block.
    let lonely_ok = !exo_rt::sync::blocks() || (!woken && waited_ms >= 20);
    count == n * ROUNDS
        && overlaps == 0
        && taken == ITEMS
        && taken_sum == ITEMS * (ITEMS + 1) / 2
        && joined == n
        && lonely_ok
}
