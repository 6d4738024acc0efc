//! Micro-benchmarks run by `scripts/bench` under `-icount shift=0`, where
//! QEMU advances the TSC by one tick per guest instruction. Each figure is
//! the median of many timed runs, printed as `bench: KEY VALUE` lines.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};
use exo_rt::abi::{map_flags, slot, Rights, Sys, FOREVER};
use exo_rt::caps::{self, Endpoint, Notification, Untyped, SELF};
use exo_rt::{println, sys, thread};

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
    unsafe { asm!("2:", "dec rcx", "jnz 2b", inout("rcx") LOOP_ITERATIONS => _, options(nomem, nostack)) };
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
    println!("bench: null_syscall {} min {}", null - empty, null_min - empty);
    println!("bench: yield_syscall {}", yield_ - empty);
    println!("bench: clock_syscall {}", clock - empty);
    ipc(empty);
    0
}

static PING: AtomicU64 = AtomicU64::new(0);
static PONG: AtomicU64 = AtomicU64::new(0);

/// The other side of the notification ping-pong: wait for a ping,
/// answer with a pong, forever.
fn ponger(_: u64) {
    let (ping, pong) =
        (Notification::from_slot(PING.load(Ordering::SeqCst)), Notification::from_slot(PONG.load(Ordering::SeqCst)));
    while ping.wait(FOREVER).is_ok() {
        let _ = pong.signal(1);
    }
}

/// IPC figures: needs the `echo` server on endpoint slot 16 and untyped.
fn ipc(empty: u64) {
    let echo = Endpoint::from_slot(exo_manifest::ENDPOINT_SLOT_BASE);
    let untyped = Untyped::from_slot(slot::UNTYPED);
    // The raw call: what the kernel costs, not the library's decoding.
    let (call, call_min) = measure(|| {
        let r = exo_rt::sys::raw_regs(Sys::Call, [echo.slot(), 1, 7, 0, exo_rt::abi::NO_CAP, FOREVER]);
        core::hint::black_box(r);
    });
    println!("bench: ipc_call_reply {} min {}", call - empty, call_min - empty);

    let ping = untyped.create_notification().expect("notification");
    let pong = untyped.create_notification().expect("notification");
    PING.store(ping.slot(), Ordering::SeqCst);
    PONG.store(pong.slot(), Ordering::SeqCst);
    thread::spawn(ponger, 0).expect("thread");
    let (round, _) = measure(|| {
        let _ = ping.signal(1);
        let _ = pong.wait(FOREVER);
    });
    println!("bench: notification_round_trip {}", round - empty);

    let mem = untyped.alloc(1).expect("memory");
    const VA: u64 = 0x7000_0000;
    let (grant, _) = measure(|| {
        let copy = SELF.give(mem.slot(), None, Rights::READ, None, None).expect("copy");
        SELF.map(caps::Memory::from_slot(copy), VA, map_flags::READ).expect("map");
        let _ = SELF.unmap(VA);
        let _ = caps::delete(copy);
    });
    println!("bench: grant_map_unmap_delete {}", grant - empty);
    let _ = echo.call([5, 0, 0], None, FOREVER);
}
