//! Starts worker threads in one process; each adds to a shared counter. The
//! main thread waits for all of them, proving threads share memory and all
//! get scheduled. Argument: number of workers (default 3).
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};
use exo_rt::{println, sys, thread};

exo_rt::entry!(main);

static DONE: AtomicU64 = AtomicU64::new(0);
static SUM: AtomicU64 = AtomicU64::new(0);

fn worker(i: u64) {
    println!("threads: worker {i} running");
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
    while DONE.load(Ordering::SeqCst) < n {
        sys::yield_now();
    }
    let sum = SUM.load(Ordering::SeqCst);
    println!("threads: all {n} workers finished, sum {sum}");
    if sum == n * (n + 1) / 2 {
        0
    } else {
        1
    }
}
