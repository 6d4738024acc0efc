//! Busy-loops without ever yielding and prints a line per round, so that
//! two copies interleave only if the kernel preempts them.
//! Arguments: `NAME ROUNDS` (default `? 5`).
#![no_std]
#![no_main]

use exo_rt::sys;

exo_rt::entry!(main);

/// Busy time per round.
const ROUND_NS: u64 = 30_000_000;

fn main(args: &str) -> i32 {
    let mut words = args.split_whitespace();
    let name = words.next().unwrap_or("?");
    let rounds: u32 = words.next().and_then(|w| w.parse().ok()).unwrap_or(5);
    let mut x: u64 = 1;
    for round in 1..=rounds {
        let start = sys::clock();
        while sys::clock() - start < ROUND_NS {
            for _ in 0..1000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            }
        }
        exo_rt::println!("spin {name}: round {round}/{rounds}");
    }
    exo_rt::println!("spin {name}: done ({x:#x})");
    0
}
