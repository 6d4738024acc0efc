//! Hostile-input test: issues many system calls with random numbers and
//! arguments (seeded, so a failure can be replayed) and checks that every
//! answer is a success or a known error code. The kernel must neither
//! panic nor hang. Arguments: `SEED COUNT` (default `1 20000`).
//!
//! Calls that would end or block this process (exit, thread_exit,
//! thread_create at random addresses, long sleeps) or drop its console
//! are steered away from, so the run can report.
#![no_std]
#![no_main]

use exo_rt::abi::{slot, Error, Sys};
use exo_rt::println;
use exo_rt::sys::raw_number;

exo_rt::entry!(main);

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// Where pointer arguments aim: its first 8 KiB, followed by room for
/// the longest write the kernel makes to a user buffer (64 KiB), so that
/// the kernel, writing where it is told, never reaches past it into this
/// program's other statics (a write off its end once set the lock of
/// `exo_rt`'s output hook, and the report's `println!` waited for ever).
static mut BUFFER: [u8; AIMED + 64 * 1024] = [0; AIMED + 64 * 1024];
/// The part of [`BUFFER`] pointers aim at.
const AIMED: usize = 8192;

fn argument(rng: &mut XorShift) -> u64 {
    // SAFETY: only the address is taken; the kernel reads or writes it.
    let buf = core::ptr::addr_of_mut!(BUFFER) as u64;
    match rng.next() % 10 {
        0 => 0,
        1 => rng.next() % 20,
        2 => rng.next() % 300,
        3 => buf + rng.next() % AIMED as u64,
        4 => 0xffff_8000_0000_0000 + (rng.next() % (1 << 32)),
        5 => 0xffff_ffff_8000_0000 + (rng.next() % (1 << 24)),
        6 => rng.next() % 0x0000_8000_0000_0000,
        7 => u64::MAX - rng.next() % 16,
        8 => 1 << (rng.next() % 64),
        _ => rng.next(),
    }
}

fn main(args: &str) -> i32 {
    let mut words = args.split_whitespace();
    let seed: u64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(1);
    let count: u64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(20_000);
    let mut rng = XorShift(seed.max(1));
    let (mut ok, mut failed, mut skipped) = (0u64, 0u64, 0u64);
    let mut per_error = [0u64; Error::ALL.len() + 1];
    for _ in 0..count {
        let n = rng.next() % (Sys::ALL.len() as u64 + 4);
        let mut a = [
            argument(&mut rng),
            argument(&mut rng),
            argument(&mut rng),
            argument(&mut rng),
            argument(&mut rng),
            argument(&mut rng),
        ];
        // Blocking calls keep their random arguments but wait 1 ms at most.
        match Sys::from_number(n) {
            Some(Sys::Call | Sys::Send | Sys::ReplyRecv) => a[5] %= 1_000_000,
            Some(Sys::Recv) => a[2] %= 1_000_000,
            Some(Sys::Wait) => a[1] %= 1_000_000,
            _ => {}
        }
        let dangerous = match Sys::from_number(n) {
            Some(Sys::Exit | Sys::ThreadExit | Sys::ThreadCreate) => true,
            Some(Sys::Sleep) => a[0] > 1_000_000,
            Some(Sys::CapDelete) => a[0] == slot::CONSOLE,
            _ => false,
        };
        if dangerous {
            skipped += 1;
            continue;
        }
        let r = raw_number(n, a) as i64;
        if r >= 0 {
            ok += 1;
        } else if let Some(e) = Error::from_code(-r) {
            per_error[e as usize] += 1;
        } else {
            failed += 1;
            println!("chaos: call {n} {a:x?} returned unknown code {r}");
        }
    }
    println!("chaos: seed {seed}: {count} calls, {ok} succeeded, {skipped} skipped, {failed} malformed answers");
    for e in Error::ALL {
        println!("chaos:   {:>6} x {}", per_error[e as usize], e.name());
    }
    if failed == 0 {
        println!("chaos: every answer was a success or a known error");
        0
    } else {
        1
    }
}
