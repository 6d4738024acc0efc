//! Checks rumpglue's exokernel backend, the hypercalls NetBSD rump kernels
//! and drivers are written against: threads started and joined through
//! `rumpglue::Threads` (each blocking on the shared state's lock), random
//! bytes from the kernel through `rumpglue::Random`, and the clock.
//! Prints one line per check and exits 0 only if all pass.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use exo_rt::println;
use exo_rt::sync::Mutex;
use rumpglue::{Clock, Random, Threads};

exo_rt::entry!(main);

fn main(_args: &str) -> i32 {
    let mut failed = 0;
    let mut check = |what: &str, ok: bool| {
        println!("hypercheck: {what}: {}", if ok { "ok" } else { "FAILED" });
        failed += u32::from(!ok);
    };

    // Threads: eight add their number under a shared lock, then are joined.
    let threads = &rumpglue::exo::THREADS;
    let total = Arc::new(Mutex::new(0u64));
    let handles: Vec<_> = (1..=8u64)
        .filter_map(|i| {
            let t = total.clone();
            threads.spawn("adder", Box::new(move || *t.lock() += i)).ok()
        })
        .collect();
    let started = handles.len();
    let joined = handles.into_iter().filter(|h| threads.join(rumpglue::ThreadHandle(h.0)).is_ok()).count();
    check("8 threads started and joined, their sum 36", started == 8 && joined == 8 && *total.lock() == 36);
    check("joining an unknown thread is an error", threads.join(rumpglue::ThreadHandle(999_999)).is_err());

    // Random: two fills differ, and the bytes are not constant.
    let (mut a, mut b) = ([0u8; 600], [0u8; 600]);
    let filled = rumpglue::exo::Random.fill(&mut a).is_ok() && rumpglue::exo::Random.fill(&mut b).is_ok();
    let distinct = {
        let mut seen = [false; 256];
        a.iter().for_each(|x| seen[*x as usize] = true);
        seen.iter().filter(|s| **s).count()
    };
    check("random: two 600-byte fills differ, 100+ distinct byte values", filled && a != b && distinct >= 100);

    // Clock: monotonic, and a sleep of 5 ms takes at least that.
    let clock = &rumpglue::exo::CLOCK;
    let t0 = clock.monotonic_ns();
    clock.sleep_ns(5_000_000);
    let t1 = clock.monotonic_ns();
    check("clock: a 5 ms sleep takes 5 ms or more", t1 >= t0 + 5_000_000);

    if failed == 0 {
        println!("hypercheck: all checks passed");
        0
    } else {
        1
    }
}
