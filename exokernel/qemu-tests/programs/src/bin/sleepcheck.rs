//! Sleeps for the number of milliseconds in its argument (default 50) and
//! checks on the monotonic clock that at least that much time passed.
#![no_std]
#![no_main]

use exo_rt::{println, sys};

exo_rt::entry!(main);

fn main(args: &str) -> i32 {
    let ms: u64 = args.trim().parse().unwrap_or(50);
    println!("sleepcheck: sleeping {ms} ms");
    let start = sys::clock();
    sys::sleep(ms * 1_000_000);
    let slept = sys::clock() - start;
    let ok = slept >= ms * 1_000_000;
    println!(
        "sleepcheck: asked for {ms} ms, clock advanced {} ms: {}",
        slept / 1_000_000,
        if ok { "ok" } else { "TOO SHORT" }
    );
    if ok {
        0
    } else {
        1
    }
}
