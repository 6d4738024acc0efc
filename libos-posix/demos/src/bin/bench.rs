//! Micro-benchmarks run by `scripts/bench` under `-icount shift=0`, where
//! QEMU advances the TSC by one tick per guest instruction. Each figure is
//! the median of many timed runs, printed as `bench: KEY VALUE` lines.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use core::arch::asm;
use exo_rt::abi::Sys;
use exo_rt::{println, sys};

exo_rt::entry!(main);

const RUNS: usize = 1001;
const LOOP_ITERATIONS: u64 = 1_000_000;

fn rdtsc() -> u64 {
    // SAFETY: RDTSC is allowed in user mode (CR4.TSD is clear).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Median and minimum of `RUNS` timings of `f`, minus the cost of an empty
/// measurement.
fn measure(mut f: impl FnMut()) -> (u64, u64) {
    let mut samples: Vec<u64> = (0..RUNS)
        .map(|_| {
            let t0 = rdtsc();
            f();
            rdtsc() - t0
        })
        .collect();
    samples.sort_unstable();
    (samples[RUNS / 2], samples[0])
}

#[inline(never)]
extern "C" fn empty_function(x: u64) -> u64 {
    // SAFETY: an empty asm block keeps the call from being optimised away.
    unsafe { asm!("", options(nomem, nostack)) };
    x
}

fn main(_args: &str) -> i32 {
    // 1. Does one TSC tick equal one instruction? Time a loop of known
    //    length: `dec rcx; jnz` is two instructions per iteration.
    let t0 = rdtsc();
    // SAFETY: a register-only countdown loop.
    unsafe {
        asm!("2:", "dec rcx", "jnz 2b", inout("rcx") LOOP_ITERATIONS => _, options(nomem, nostack))
    };
    let ticks = rdtsc() - t0;
    println!("bench: loop_instructions {}", 2 * LOOP_ITERATIONS);
    println!("bench: loop_ticks {ticks}");

    let (empty, _) = measure(|| {});
    let (call, _) = measure(|| {
        core::hint::black_box(empty_function(core::hint::black_box(1)));
    });
    let (null, null_min) = measure(|| {
        core::hint::black_box(sys::raw_number(0xffff, [0; 6]));
    });
    let (yield_, _) = measure(sys::yield_now);
    let (clock, _) = measure(|| {
        core::hint::black_box(sys::call(Sys::Clock, [0; 6]).ok());
    });
    println!("bench: empty_measurement {empty}");
    println!("bench: function_call {}", call - empty);
    println!(
        "bench: null_syscall {} min {}",
        null - empty,
        null_min - empty
    );
    println!("bench: yield_syscall {}", yield_ - empty);
    println!("bench: clock_syscall {}", clock - empty);
    0
}
