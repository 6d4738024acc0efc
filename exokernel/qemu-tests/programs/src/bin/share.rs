//! Measures the processor share the scheduler gives this program: its
//! threads spin (or yield) during windows of the boot clock and it prints
//! how much work each window got, for the scheduler tests.
//!
//! Arguments: `NAME THREADS MODE WINDOW...`, where MODE is `spin` (count
//! loop iterations) or `yield` (count yields, giving the processor away at
//! once) and each WINDOW is `FROM-TO` in milliseconds since boot. Prints
//! `share NAME: window I: N` per window.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use exo_rt::{println, sys};

exo_rt::entry!(main);

/// Most windows and threads.
const MAX: usize = 8;
/// Iterations between two looks at the clock.
const BATCH: u64 = 256;

static WINDOWS: [(AtomicU64, AtomicU64); MAX] = [const { (AtomicU64::new(0), AtomicU64::new(0)) }; MAX];
static WINDOW_COUNT: AtomicUsize = AtomicUsize::new(0);
static YIELD: AtomicUsize = AtomicUsize::new(0);
static COUNTS: [AtomicU64; MAX] = [const { AtomicU64::new(0) }; MAX];
static DONE: AtomicUsize = AtomicUsize::new(0);

fn window(i: usize) -> (u64, u64) {
    (WINDOWS[i].0.load(Ordering::SeqCst), WINDOWS[i].1.load(Ordering::SeqCst))
}

/// One thread's work: in each window, spin or yield and count.
fn worker(_: u64) {
    let yielding = YIELD.load(Ordering::SeqCst) == 1;
    let mut x: u64 = 1;
    for (i, count) in COUNTS.iter().enumerate().take(WINDOW_COUNT.load(Ordering::SeqCst)) {
        let (from, to) = window(i);
        let now = sys::clock();
        if now < from {
            sys::sleep(from - now);
        }
        let mut n = 0u64;
        while sys::clock() < to {
            if yielding {
                sys::yield_now();
                n += 1;
            } else {
                for _ in 0..BATCH {
                    x = core::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
                n += BATCH;
            }
        }
        count.fetch_add(n, Ordering::SeqCst);
    }
    DONE.fetch_add(1, Ordering::SeqCst);
}

fn main(args: &str) -> i32 {
    let words: Vec<&str> = args.split_whitespace().collect();
    let usage = || {
        println!("share: usage: NAME THREADS spin|yield FROM-TO... (ms since boot), not `{args}`");
        2
    };
    let [name, threads, mode, windows @ ..] = words.as_slice() else { return usage() };
    let Ok(threads) = threads.parse::<usize>() else { return usage() };
    if !(1..=MAX).contains(&threads) || windows.is_empty() || windows.len() > MAX {
        return usage();
    }
    YIELD.store(
        match *mode {
            "spin" => 0,
            "yield" => 1,
            _ => return usage(),
        },
        Ordering::SeqCst,
    );
    for (i, w) in windows.iter().enumerate() {
        let Some((from, to)) =
            w.split_once('-').and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
        else {
            return usage();
        };
        WINDOWS[i].0.store(from * 1_000_000, Ordering::SeqCst);
        WINDOWS[i].1.store(to * 1_000_000, Ordering::SeqCst);
    }
    WINDOW_COUNT.store(windows.len(), Ordering::SeqCst);
    for _ in 1..threads {
        if let Err(e) = exo_rt::thread::spawn(worker, 0) {
            println!("share {name}: cannot start a thread: {}", e.name());
            return 1;
        }
    }
    worker(0);
    while DONE.load(Ordering::SeqCst) < threads {
        sys::sleep(1_000_000);
    }
    for (i, count) in COUNTS.iter().enumerate().take(windows.len()) {
        println!("share {name}: window {}: {}", i + 1, count.load(Ordering::SeqCst));
    }
    0
}
