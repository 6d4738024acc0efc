//! `uptime`: how long ExoV6 has run (the kernel's monotonic clock).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_rt::{println, sys};

exo_posix::entry!(main);

fn main(_: &str) -> i32 {
    let ms = sys::clock() / 1_000_000;
    let (s, m, h) = (ms / 1000 % 60, ms / 60_000 % 60, ms / 3_600_000);
    println!("up {}.{:03} s ({h}:{m:02}:{s:02})", ms / 1000, ms % 1000);
    0
}
